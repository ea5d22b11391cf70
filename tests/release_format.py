"""Writes files in the byte layout of the authors' released LCR-Net++ models, without torch (a test helper).

A released ``<name>.pkl`` is what PyTorch 0.4 on Python 3 writes for::

    pickle.dump({'model': OrderedDict(name -> torch tensor), 'cfg': AttrDict(...),
                 'anchor_poses': ndarray, 'ppi_params': dict}, f, protocol)

where (``torch/_tensor.py``, ``torch/storage.py``, ``torch/serialization.py`` of that version)

* a tensor reduces to ``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, False,
  OrderedDict())`` (size and stride in elements);
* its storage reduces to ``torch.storage._load_from_bytes(data)``, ``data`` being ``torch.save(storage)``: the
  legacy stream of :func:`legacy_stream` (pickle protocol 2, whatever the outer protocol);
* ``cfg`` is Detectron.pytorch's ``utils.collections.AttrDict``, a dict subclass whose instance dict holds only
  ``'__immutable__'``: with protocol >= 2 it pickles as ``NEWOBJ`` + its items + ``BUILD`` of that state,
  with protocols 0-1 as ``copy_reg._reconstructor(AttrDict, dict, <its items as a dict>)`` + ``BUILD``.

``pickle.Pickler`` cannot write those globals without importing them, so :class:`PickleWriter` writes the
opcodes itself. It follows CPython's C pickler (``Modules/_pickle.c``) opcode for opcode, memo and protocol 4
framing included, for the types used here (None, bool, int, float, str, bytes, tuple, list, dict, bytearray,
PickleBuffer, classes and functions, and anything with ``__reduce_ex__`` such as numpy arrays); the tests
compare its output with ``pickle.dumps`` wherever real, importable objects give the same structure. Object
graphs name what cannot be imported with :class:`Global`, :class:`Reduce`, :class:`DictSubclass` and
:class:`PersistentId`; :class:`Py2Str` writes a Python 2 byte string.

The lower-level pieces (:func:`dumps`, :func:`global_call_pickle`, :func:`legacy_stream`, :func:`storage_pid`,
:func:`rebuild_tensor_v2`, :func:`load_from_bytes`) let tests craft hostile and damaged files.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import math
import pickle
import struct
import sys
import types
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

import numpy as np

#: ``torch.serialization.MAGIC_NUMBER`` and ``PROTOCOL_VERSION`` of the legacy ``torch.save`` format.
MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
#: ``sys_info`` of ``torch.save`` on a little-endian 64-bit Linux machine.
DEFAULT_SYS_INFO = {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
                    "type_sizes": {"short": 2, "int": 4, "long": 8}}

#: numpy dtype -> torch storage class name (``torch.<name>``).
STORAGE_TYPES = {
    np.dtype("float32"): "FloatStorage", np.dtype("float64"): "DoubleStorage", np.dtype("float16"): "HalfStorage",
    np.dtype("int64"): "LongStorage", np.dtype("int32"): "IntStorage", np.dtype("int16"): "ShortStorage",
    np.dtype("int8"): "CharStorage", np.dtype("uint8"): "ByteStorage", np.dtype("bool"): "BoolStorage",
}

_FRAME_SIZE_TARGET = 64 * 1024  # _pickle.c: a frame is committed once it holds this much
_FRAME_SIZE_MIN = 4  # _pickle.c: a smaller frame is written without its FRAME header
_BATCHSIZE = 1000  # _pickle.c: items per APPENDS / SETITEMS
_END = object()


class Global:
    """A module-level class or function named in the pickle (``GLOBAL`` / ``STACK_GLOBAL``), not imported."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str):
        # Interned like CPython's module and qualified names, so that with protocol >= 4 the same names are
        # memoised exactly as the C pickler memoises them (by identity).
        self.module = sys.intern(module)
        self.name = sys.intern(name)

    @classmethod
    def of(cls, obj) -> "Global":
        return cls(obj.__module__, obj.__qualname__)

    def __repr__(self):
        return f"Global({self.module!r}, {self.name!r})"


class Reduce:
    """An object pickled as ``func(*args)`` (REDUCE), then ``listitems`` / ``dictitems`` (APPENDS / SETITEMS)
    and ``state`` (BUILD), as a ``__reduce__`` returning ``(func, args, state, listitems, dictitems)`` does."""

    def __init__(self, func, args: tuple, state=None, listitems: Optional[Sequence] = None,
                 dictitems: Optional[Sequence] = None):
        self.func, self.args, self.state = func, tuple(args), state
        self.listitems, self.dictitems = listitems, dictitems


class DictSubclass:
    """An instance of a dict subclass (defined in Python, e.g. Detectron's AttrDict) with ``items`` and instance
    dict ``state``, pickled as ``object.__reduce_ex__(protocol)`` does: NEWOBJ (protocol >= 2) or
    ``copyreg._reconstructor(cls, dict, items)`` (protocols 0-1)."""

    def __init__(self, cls: Global, items: Mapping, state: Optional[dict]):
        self.cls, self.items, self.state = cls, dict(items), state


class PersistentId:
    """A persistent id in place of an object (BINPERSID), as a ``persistent_id`` hook returns it."""

    def __init__(self, pid):
        self.pid = pid


class Py2Str(bytes):
    """A Python 2 ``str`` (bytes): written with the STRING opcodes Python 2 uses (loaded as latin-1 ``str``)."""


def _encode_long(x: int) -> bytes:
    """Two's complement little-endian bytes of ``x`` in the fewest bytes, as LONG1 / LONG4 carry it."""
    nbytes = (x.bit_length() >> 3) + 1
    data = x.to_bytes(nbytes, "little", signed=True)
    if x < 0 and nbytes > 1 and data[-1] == 0xFF and data[-2] & 0x80:
        data = data[:-1]
    return data


def _raw_unicode_escape(text: str) -> bytes:
    """_pickle.c ``raw_unicode_escape``: protocol 0's UNICODE argument."""
    out = bytearray()
    for ch in text:
        code = ord(ch)
        if code >= 0x10000:
            out += b"\\U%08x" % code
        elif code >= 256 or ch in "\\\0\n\r\x1a":
            out += b"\\u%04x" % code
        else:
            out.append(code)
    return bytes(out)


def _py2_repr(data: bytes) -> bytes:
    """Python 2's ``repr`` of a byte string (single-quoted), protocol 0's STRING argument."""
    escapes = {0x5C: b"\\\\", 0x27: b"\\'", 0x09: b"\\t", 0x0A: b"\\n", 0x0D: b"\\r"}
    body = b"".join(escapes.get(c, bytes([c]) if 0x20 <= c < 0x7F else b"\\x%02x" % c) for c in data)
    return b"'" + body + b"'"


class PickleWriter:
    """Writes one pickle of an object graph, opcode for opcode as CPython's C pickler does (protocols 0-5).

    Memo: by object identity (the writer keeps the objects alive, as the C memo does), classes and functions
    and :class:`Global` by their module and name. Protocols >= 4: frames of >= 64 KiB, committed at the start
    of each object; a str or bytes payload of >= 64 KiB goes outside frames; a frame under 4 bytes loses its
    header.
    """

    def __init__(self, protocol: int = 2, fix_imports: bool = True):
        if not 0 <= protocol <= 5:
            raise ValueError(f"pickle protocol {protocol} is not 0-5")
        self.proto = protocol
        self.bin = protocol >= 1
        self.fix_imports = fix_imports and protocol < 3
        self.out = bytearray()
        self.memo: Dict[Any, tuple] = {}
        self.framing = False
        self.frame_start = -1

    def dumps(self, obj) -> bytes:
        if self.proto >= 2:
            self._write(pickle.PROTO + bytes([self.proto]))
            self.framing = self.proto >= 4
        self.save(obj)
        self._write(pickle.STOP)
        self._commit_frame()
        self.framing = False
        return bytes(self.out)

    # -- output and frames ----------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.framing and self.frame_start == -1:
            self.frame_start = len(self.out)
            self.out += b"\xfe" * 9
        self.out += data

    def _commit_frame(self) -> None:
        if not self.framing or self.frame_start == -1:
            return
        start = self.frame_start
        length = len(self.out) - start - 9
        if length >= _FRAME_SIZE_MIN:
            self.out[start:start + 9] = pickle.FRAME + struct.pack("<Q", length)
        else:
            del self.out[start:start + 9]
        self.frame_start = -1

    def _opcode_boundary(self) -> None:
        if self.framing and self.frame_start != -1 and len(self.out) - self.frame_start - 9 >= _FRAME_SIZE_TARGET:
            self._commit_frame()

    def _write_payload(self, header: bytes, payload: bytes) -> None:
        big = len(payload) >= _FRAME_SIZE_TARGET
        framing = self.framing
        if big:
            self._commit_frame()
            self.framing = False
        self._write(header)
        self._write(payload)
        self.framing = framing

    # -- memo ----------------------------------------------------------------------------------------------

    @staticmethod
    def _key(obj):
        if isinstance(obj, Global):
            return ("global", obj.module, obj.name)
        if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            return ("global", obj.__module__, obj.__qualname__)
        return id(obj)

    def _memoize(self, obj) -> None:
        index = len(self.memo)
        self.memo[self._key(obj)] = (index, obj)
        if self.proto >= 4:
            self._write(pickle.MEMOIZE)
        elif self.bin:
            self._write(pickle.BINPUT + bytes([index]) if index < 256
                        else pickle.LONG_BINPUT + struct.pack("<I", index))
        else:
            self._write(pickle.PUT + str(index).encode("ascii") + b"\n")

    def _get(self, index: int) -> None:
        if self.bin:
            self._write(pickle.BINGET + bytes([index]) if index < 256
                        else pickle.LONG_BINGET + struct.pack("<I", index))
        else:
            self._write(pickle.GET + str(index).encode("ascii") + b"\n")

    # -- objects -------------------------------------------------------------------------------------------

    def save(self, obj) -> None:
        self._opcode_boundary()
        kind = type(obj)
        if kind is PersistentId:
            if not self.bin:
                raise ValueError("persistent ids here are tuples, which protocol 0 cannot carry")
            self.save(obj.pid)
            self._write(pickle.BINPERSID)
        elif obj is None:
            self._write(pickle.NONE)
        elif obj is True or obj is False:
            if self.proto >= 2:
                self._write(pickle.NEWTRUE if obj else pickle.NEWFALSE)
            else:
                self._write(b"I01\n" if obj else b"I00\n")
        elif kind is int:
            self._save_int(obj)
        elif kind is float:
            self._write(pickle.BINFLOAT + struct.pack(">d", obj) if self.bin
                        else pickle.FLOAT + repr(obj).encode("ascii") + b"\n")
        elif self._key(obj) in self.memo:
            self._get(self.memo[self._key(obj)][0])
        else:
            self._save_memoisable(obj, kind)

    def _save_int(self, x: int) -> None:
        if -0x80000000 <= x <= 0x7FFFFFFF:
            if not self.bin:
                self._write(pickle.INT + str(x).encode("ascii") + b"\n")
            elif 0 <= x <= 0xFF:
                self._write(pickle.BININT1 + bytes([x]))
            elif 0 <= x <= 0xFFFF:
                self._write(pickle.BININT2 + struct.pack("<H", x))
            else:
                self._write(pickle.BININT + struct.pack("<i", x))
        elif self.proto >= 2:
            data = _encode_long(x)
            header = (pickle.LONG1 + bytes([len(data)]) if len(data) < 256
                      else pickle.LONG4 + struct.pack("<i", len(data)))
            self._write(header + data)
        else:
            self._write(pickle.LONG + repr(x).encode("ascii") + b"L\n")

    def _save_memoisable(self, obj, kind) -> None:
        if kind is Py2Str:
            self._save_py2str(obj)
        elif kind is bytes:
            self._save_bytes(obj)
        elif kind is str:
            self._save_str(obj)
        elif kind is dict:
            self._write(pickle.EMPTY_DICT if self.bin else pickle.MARK + pickle.DICT)
            self._memoize(obj)
            if obj:
                if self.bin:
                    self._batch_dict_exact(obj)
                else:
                    self._batch_setitems(obj.items())
        elif kind is list:
            self._write(pickle.EMPTY_LIST if self.bin else pickle.MARK + pickle.LIST)
            self._memoize(obj)
            if obj:
                if self.bin:
                    self._batch_list_exact(obj)
                else:
                    self._batch_appends(obj)
        elif kind is tuple:
            self._save_tuple(obj)
        elif kind is bytearray:
            if self.proto >= 5:
                self._write_payload(pickle.BYTEARRAY8 + struct.pack("<Q", len(obj)), bytes(obj))
                self._memoize(obj)
            else:
                self._save_reduce(bytearray, (bytes(obj),) if obj else (), obj=obj)
        elif kind is pickle.PickleBuffer:
            self._save_picklebuffer(obj)
        elif kind is Global or isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            self._save_global(obj if kind is Global else Global.of(obj), obj)
        elif kind is Reduce:
            self._save_reduce(obj.func, obj.args, obj.state, obj.listitems, obj.dictitems, obj)
        elif kind is DictSubclass:
            self._save_dict_subclass(obj)
        else:
            reduced = obj.__reduce_ex__(self.proto)
            if isinstance(reduced, str):
                self._save_global(Global(obj.__module__, reduced), obj)
                return
            func, args, state, listitems, dictitems = (tuple(reduced) + (None,) * 5)[:5]
            if self.proto >= 2 and getattr(func, "__name__", "") == "__newobj__":
                self._save_reduce(None, args[1:], state, listitems, dictitems, obj, cls=args[0])
            else:
                self._save_reduce(func, args, state, listitems, dictitems, obj)

    def _save_str(self, text: str) -> None:
        if self.bin:
            data = text.encode("utf-8", "surrogatepass")
            if len(data) <= 0xFF and self.proto >= 4:
                header = pickle.SHORT_BINUNICODE + bytes([len(data)])
            elif len(data) <= 0xFFFFFFFF:
                header = pickle.BINUNICODE + struct.pack("<I", len(data))
            else:
                header = pickle.BINUNICODE8 + struct.pack("<Q", len(data))
            self._write_payload(header, data)
        else:
            self._write(pickle.UNICODE + _raw_unicode_escape(text) + b"\n")
        self._memoize(text)

    def _bytes_header(self, size: int) -> bytes:
        if size <= 0xFF:
            return pickle.SHORT_BINBYTES + bytes([size])
        if size <= 0xFFFFFFFF:
            return pickle.BINBYTES + struct.pack("<I", size)
        return pickle.BINBYTES8 + struct.pack("<Q", size)

    def _save_bytes(self, data: bytes) -> None:
        if self.proto < 3:
            # Python 3 writes bytes for protocols 0-2 as codecs.encode(<latin-1 text>, 'latin1') (or bytes()).
            if not data:
                self._save_reduce(bytes, (), obj=data)
            else:
                self._save_reduce(codecs.encode, (data.decode("latin1"), "latin1"), obj=data)
            return
        self._write_payload(self._bytes_header(len(data)), data)
        self._memoize(data)

    def _save_py2str(self, data: Py2Str) -> None:
        if not self.bin:
            self._write(pickle.STRING + _py2_repr(data) + b"\n")
        elif len(data) < 256:
            self._write(pickle.SHORT_BINSTRING + bytes([len(data)]) + bytes(data))
        else:
            self._write(pickle.BINSTRING + struct.pack("<i", len(data)) + bytes(data))
        self._memoize(data)

    def _save_picklebuffer(self, buf: pickle.PickleBuffer) -> None:
        if self.proto < 5:
            raise ValueError("PickleBuffer needs pickle protocol 5")
        with buf.raw() as view:
            data, readonly = view.tobytes(), view.readonly
        if readonly:
            self._write_payload(self._bytes_header(len(data)), data)
        else:
            self._write_payload(pickle.BYTEARRAY8 + struct.pack("<Q", len(data)), data)
        self._memoize(buf)

    def _save_tuple(self, items: tuple) -> None:
        if not items:
            self._write(pickle.EMPTY_TUPLE if self.bin else pickle.MARK + pickle.TUPLE)
            return
        key = self._key(items)
        if len(items) <= 3 and self.proto >= 2:
            for item in items:
                self.save(item)
            if key in self.memo:  # recursive: the tuple was pickled while pickling its items
                self._write(pickle.POP * len(items))
                self._get(self.memo[key][0])
                return
            self._write((pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3)[len(items) - 1])
        else:
            self._write(pickle.MARK)
            for item in items:
                self.save(item)
            if key in self.memo:
                self._write(pickle.POP_MARK if self.bin else pickle.POP * (len(items) + 1))
                self._get(self.memo[key][0])
                return
            self._write(pickle.TUPLE)
        self._memoize(items)

    def _save_global(self, name: Global, obj) -> None:
        module, qualname = name.module, name.name
        if self.proto >= 4:
            self.save(module)
            self.save(qualname)
            self._write(pickle.STACK_GLOBAL)
        else:
            if "." in qualname:
                raise ValueError(f"{qualname!r}: nested names need protocol 4 here")
            if self.fix_imports:
                if (module, qualname) in _compat_pickle.REVERSE_NAME_MAPPING:
                    module, qualname = _compat_pickle.REVERSE_NAME_MAPPING[(module, qualname)]
                elif module in _compat_pickle.REVERSE_IMPORT_MAPPING:
                    module = _compat_pickle.REVERSE_IMPORT_MAPPING[module]
            encoding = "utf-8" if self.proto == 3 else "ascii"
            self._write(pickle.GLOBAL + module.encode(encoding) + b"\n" + qualname.encode(encoding) + b"\n")
        self._memoize(obj)

    def _save_reduce(self, func, args: tuple, state=None, listitems=None, dictitems=None, obj=None, cls=None) -> None:
        if cls is not None:
            self.save(cls)
            self.save(tuple(args))
            self._write(pickle.NEWOBJ)
        else:
            self.save(func)
            self.save(tuple(args))
            self._write(pickle.REDUCE)
        if obj is not None:
            key = self._key(obj)
            if key in self.memo:  # recursive: obj was pickled while pickling its arguments
                self._write(pickle.POP)
                self._get(self.memo[key][0])
                return
            self._memoize(obj)
        if listitems is not None:
            self._batch_appends(listitems)
        if dictitems is not None:
            self._batch_setitems(dictitems)
        if state is not None:
            self.save(state)
            self._write(pickle.BUILD)

    def _save_dict_subclass(self, obj: DictSubclass) -> None:
        state = obj.state or None  # object.__reduce_ex__ omits an empty instance dict
        if self.proto >= 2:
            self._save_reduce(None, (), state, None, list(obj.items.items()), obj, cls=obj.cls)
        else:
            args = (obj.cls, Global("builtins", "dict"), dict(obj.items))
            self._save_reduce(Global("copyreg", "_reconstructor"), args, state, obj=obj)

    # -- batches (batch_list / batch_dict for iterators, the *_exact variants for lists and dicts) ----------

    def _batch_appends(self, items: Iterable) -> None:
        it = iter(items)
        if not self.bin:
            for item in it:
                self.save(item)
                self._write(pickle.APPEND)
            return
        while True:
            first, item = next(it, _END), None
            if first is _END:
                return
            item = next(it, _END)
            if item is _END:
                self.save(first)
                self._write(pickle.APPEND)
                return
            self._write(pickle.MARK)
            self.save(first)
            n = 1
            while item is not _END:
                self.save(item)
                n += 1
                if n == _BATCHSIZE:
                    break
                item = next(it, _END)
            self._write(pickle.APPENDS)
            if n != _BATCHSIZE:
                return

    def _batch_setitems(self, items: Iterable) -> None:
        it = iter(items)
        if not self.bin:
            for key, value in it:
                self.save(key)
                self.save(value)
                self._write(pickle.SETITEM)
            return
        while True:
            first = next(it, _END)
            if first is _END:
                return
            pair = next(it, _END)
            if pair is _END:
                self.save(first[0])
                self.save(first[1])
                self._write(pickle.SETITEM)
                return
            self._write(pickle.MARK)
            self.save(first[0])
            self.save(first[1])
            n = 1
            while pair is not _END:
                self.save(pair[0])
                self.save(pair[1])
                n += 1
                if n == _BATCHSIZE:
                    break
                pair = next(it, _END)
            self._write(pickle.SETITEMS)
            if n != _BATCHSIZE:
                return

    def _batch_list_exact(self, items: list) -> None:
        if len(items) == 1:
            self.save(items[0])
            self._write(pickle.APPEND)
            return
        total = 0
        while True:
            self._write(pickle.MARK)
            batch = 0
            while total < len(items):
                self.save(items[total])
                total += 1
                batch += 1
                if batch == _BATCHSIZE:
                    break
            self._write(pickle.APPENDS)
            if total >= len(items):
                return

    def _batch_dict_exact(self, mapping: dict) -> None:
        items = list(mapping.items())
        if len(items) == 1:
            self.save(items[0][0])
            self.save(items[0][1])
            self._write(pickle.SETITEM)
            return
        pos = 0
        while True:
            self._write(pickle.MARK)
            batch = 0
            while pos < len(items):
                self.save(items[pos][0])
                self.save(items[pos][1])
                pos += 1
                batch += 1
                if batch == _BATCHSIZE:
                    break
            self._write(pickle.SETITEMS)
            if batch != _BATCHSIZE:  # _pickle.c writes an empty MARK SETITEMS after exactly 1000 items
                return


def dumps(obj, protocol: int = 2) -> bytes:
    """One pickle of ``obj`` (an object graph, see the module docstring), as CPython's C pickler writes it."""
    return PickleWriter(protocol).dumps(obj)


def global_call_pickle(module: str, name: str, args: Sequence = (), protocol: int = 2) -> bytes:
    """A pickle whose loading calls ``module.name(*args)``: the shape of a hostile file."""
    return dumps(Reduce(Global(module, name), tuple(args)), protocol)


# ---------------------------------------------------------------------------------------------------------------
# torch 0.4 tensors and the legacy torch.save stream
# ---------------------------------------------------------------------------------------------------------------


def fake_storage_key(index: int) -> str:
    """A storage key like torch 0.4's (``str(storage._cdata)``, the decimal address of the C storage)."""
    return str(0x55D0_4A00_0000 + 0x40 * index)


def storage_type_name(dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype not in STORAGE_TYPES:
        raise ValueError(f"no torch storage type for numpy dtype {dtype}")
    return STORAGE_TYPES[dtype]


def storage_pid(key: str, values: np.ndarray, *, location: str = "cpu", view=None,
                type_name: Optional[str] = None) -> PersistentId:
    """The persistent id torch 0.4's ``_save`` gives a storage: ``('storage', torch.<Type>Storage, key,
    location, element count, view_metadata)``."""
    type_name = type_name or storage_type_name(values.dtype)
    return PersistentId(("storage", Global("torch", type_name), key, location, int(values.size), view))


def storage_record(values: np.ndarray, count: Optional[int] = None) -> bytes:
    """A storage's raw record after the key list: int64 little-endian element count, little-endian elements."""
    values = np.asarray(values)
    data = values.astype(values.dtype.newbyteorder("<")).tobytes()
    return struct.pack("<q", values.size if count is None else count) + data


def legacy_stream(obj, storages: Mapping[str, np.ndarray], *, magic=MAGIC_NUMBER, version=PROTOCOL_VERSION,
                  sys_info=None, keys: Optional[Sequence[str]] = None, counts: Optional[Mapping[str, int]] = None,
                  protocol: int = 2) -> bytes:
    """The legacy ``torch.save(obj)`` stream (torch 0.4 ``_save``): pickles of ``magic``, ``version``,
    ``sys_info`` (default :data:`DEFAULT_SYS_INFO`), ``obj`` (storages in it as :func:`storage_pid` ids) and
    the storage keys (default: sorted, as torch writes them), then each storage's :func:`storage_record`
    (``counts`` overrides the element count written for a key). Every part can be set to craft damaged streams.
    """
    keys = sorted(storages) if keys is None else list(keys)
    counts = counts or {}
    parts = [dumps(magic, protocol), dumps(version, protocol),
             dumps(DEFAULT_SYS_INFO if sys_info is None else sys_info, protocol), dumps(obj, protocol),
             dumps(keys, protocol)]
    parts += [storage_record(storages[k], counts.get(k)) for k in keys if k in storages]
    return b"".join(parts)


def storage_bytes(values: np.ndarray, key: str, location: str = "cpu") -> bytes:
    """``torch.save(storage)`` of a storage holding ``values`` (1-D): what its pickle passes to
    ``torch.storage._load_from_bytes``."""
    values = np.asarray(values).reshape(-1)
    return legacy_stream(storage_pid(key, values, location=location), {key: values})


def load_from_bytes(data) -> Reduce:
    """A storage as a plain pickle holds it: ``torch.storage._load_from_bytes(data)``."""
    return Reduce(Global("torch.storage", "_load_from_bytes"), (data,))


def rebuild_tensor_v2(storage, offset: int, size: Sequence[int], stride: Sequence[int]) -> Reduce:
    """A torch 0.4 tensor: ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False,
    OrderedDict())``; ``storage`` is a :func:`load_from_bytes` node or, inside a legacy stream, a
    :func:`storage_pid`."""
    return Reduce(Global("torch._utils", "_rebuild_tensor_v2"),
                  (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict()))


def contiguous_strides(shape: Sequence[int]) -> tuple:
    """torch's contiguous strides in elements: each the product of the sizes after it."""
    return tuple(math.prod(shape[i + 1:]) for i in range(len(shape)))


def torch_tensor(array: np.ndarray, key: str) -> Reduce:
    """A contiguous torch tensor holding ``array`` (its own storage, key ``key``) as a plain pickle holds it."""
    array = np.asarray(array)
    storage = load_from_bytes(storage_bytes(array.reshape(-1), key))
    return rebuild_tensor_v2(storage, 0, array.shape, contiguous_strides(array.shape))


def attr_dict(cfg: Mapping, immutable: bool = False, module: str = "utils.collections") -> DictSubclass:
    """Detectron's ``AttrDict`` of a nested plain dict (nested dicts become AttrDicts too)."""
    items = {k: attr_dict(v, immutable, module) if isinstance(v, Mapping) else v for k, v in cfg.items()}
    return DictSubclass(Global(module, "AttrDict"), items, {"__immutable__": immutable})


def write_release_pickle(path, model: Mapping[str, np.ndarray], cfg: Mapping, anchor_poses: np.ndarray,
                         ppi_params: Mapping, tensors: str = "torch", protocol: int = 2) -> None:
    """Writes a file laid out as the released ``<name>.pkl`` (see the module docstring).

    Args:
      path: the file to write.
      model: parameter name -> numpy array (float32 in the release; any dtype of :data:`STORAGE_TYPES`).
      cfg: nested plain dict of settings, written as nested ``utils.collections.AttrDict``.
      anchor_poses: (2K, 5J) array, written as a numpy array.
      ppi_params: dict, written as is.
      tensors: ``"torch"``: model values as torch 0.4 tensors (each with its own storage); ``"numpy"``: as numpy
        arrays.
      protocol: pickle protocol of the file (its storages' inner streams are protocol 2, as torch writes them).
    """
    if tensors == "torch":
        weights = collections.OrderedDict((name, torch_tensor(value, fake_storage_key(i)))
                                          for i, (name, value) in enumerate(model.items()))
    elif tensors == "numpy":
        weights = collections.OrderedDict((name, np.asarray(value)) for name, value in model.items())
    else:
        raise ValueError(f"tensors must be 'torch' or 'numpy', not {tensors!r}")
    release = {"model": weights, "cfg": attr_dict(cfg), "anchor_poses": np.asarray(anchor_poses),
               "ppi_params": dict(ppi_params)}
    data = dumps(release, protocol)
    with open(path, "wb") as f:
        f.write(data)
