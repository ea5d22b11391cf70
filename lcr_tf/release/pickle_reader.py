"""Reading the authors' released LCR-Net++ model files (``<name>.pkl``) safely, without torch.

The release (PyTorch 0.4, ``demo.py``: ``pickle.load(open(fname, 'rb'))``) ships each model as one plain pickle
of a dict::

    {'model': OrderedDict(parameter name -> torch tensor),   # a state dict (possibly numpy arrays instead)
     'cfg': AttrDict(...),                                   # Detectron.pytorch's config, nested AttrDicts
     'anchor_poses': numpy array (2K, 5J) float32,
     'ppi_params': dict}

A pickle can run any code while it loads, so :func:`load_release_pickle` never uses ``pickle.load``'s default
class lookup: a restricted unpickler resolves only the globals such files need, each to a stand-in written here
that checks its arguments (never to torch, which need not be installed), and refuses everything else with
:class:`UnsafePickleError` before anything runs.

How torch 0.4 tensors travel in a plain pickle:

* a tensor reduces to ``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
  backward_hooks)`` (``size`` and ``stride`` in elements, C or any other layout);
* its storage reduces to ``torch.storage._load_from_bytes(data)``, where ``data`` is a legacy ``torch.save``
  stream of that storage (see :func:`_read_legacy_stream`), read here with the same restricted unpickler.

A whole file in that legacy ``torch.save`` format (``torch.save`` before torch 1.6) is read as well. The zip
format of later ``torch.save`` is refused with a message saying so.

The result is plain Python: tensors become C-contiguous ``numpy.ndarray`` of the tensor's dtype (little-endian
data, native byte order in memory; ``bfloat16``, which NumPy lacks, becomes float32 exactly), AttrDicts become
``dict`` and OrderedDicts stay ``OrderedDict`` (state attached to them, such as a state dict's ``_metadata``
versions, is dropped), numpy arrays and scalars stay themselves, containers are rebuilt around converted items.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

__all__ = ["LEGACY_MAGIC_NUMBER", "LEGACY_PROTOCOL_VERSION", "UnsafePickleError", "load_release_pickle"]

#: First pickle of a legacy ``torch.save`` stream (``torch/serialization.py`` ``MAGIC_NUMBER``).
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
#: Second pickle of a legacy ``torch.save`` stream (``PROTOCOL_VERSION``).
LEGACY_PROTOCOL_VERSION = 1001

_ZIP_SIGNATURE = b"PK\x03\x04"
# Legacy streams nest only one level in real files (a plain pickle's tensor holds one torch.save of its
# storage); the bound stops a crafted file from recursing through nested storage bytes.
_MAX_STREAM_DEPTH = 4
_ALLOWED_SUMMARY = "only numpy arrays, plain containers, torch tensors and Detectron's AttrDict are allowed"


class UnsafePickleError(ValueError):
    """A pickle refers to a global (class or function) outside the small set a released model file needs.

    Raised before that global is looked up, so nothing it names is imported or run.
    """


class _Malformed(ValueError):
    """The file is not what it claims; the message says what, and :func:`load_release_pickle` adds the file."""


# ---------------------------------------------------------------------------------------------------------------
# Stand-ins for the globals a released file names
# ---------------------------------------------------------------------------------------------------------------


class _Inert:
    """Base of every stand-in object handed to the unpickler: no instance dict, and a BUILD opcode aimed at it
    (which would otherwise set its attributes, e.g. a tensor's offset after its bounds were checked) is refused."""

    __slots__ = ()

    def __setstate__(self, state):
        raise _Malformed(f"the pickle tries to set the state of {self!r}")


class _Marker(_Inert):
    """A global that is only meaningful as an argument of another stand-in (e.g. ``numpy.ndarray`` for
    ``_reconstruct``, ``builtins.dict`` for ``copyreg._reconstructor``); it cannot be called."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self):
        return self.name


class _Callable(_Inert):
    """A checked stand-in for a function the pickle calls (REDUCE); a BUILD cannot change it."""

    __slots__ = ("name", "_fn")

    def __init__(self, name: str, fn: Callable):
        self.name = name
        self._fn = fn

    def __call__(self, *args):
        return self._fn(*args)

    def __repr__(self):
        return self.name


_NDARRAY = _Marker("numpy.ndarray")
_OBJECT = _Marker("builtins.object")
_DICT = _Marker("builtins.dict")


class _AttrDict(dict):
    """Stand-in for Detectron's ``AttrDict`` (a dict subclass); it becomes a plain ``dict`` in the result."""

    __slots__ = ()

    def __setstate__(self, state):
        # Detectron's AttrDict keeps only its '__immutable__' flag in its instance dict: meaningless here.
        if state is not None and not isinstance(state, dict):
            raise _Malformed(f"an AttrDict's state is a {type(state).__name__}, not a dict")


class _OrderedDict(collections.OrderedDict):
    """Stand-in for ``collections.OrderedDict``; it becomes a plain ``OrderedDict`` in the result."""

    def __setstate__(self, state):
        # A state dict's '_metadata' (per-module versions) arrives here; the weights do not need it.
        if state is not None and not isinstance(state, dict):
            raise _Malformed(f"an OrderedDict's state is a {type(state).__name__}, not a dict")


def _as_bytes(data, what: str) -> bytes:
    """``data`` as bytes: Python 2 pickles' byte strings arrive as latin-1 decoded ``str`` (``encoding='latin1'``)."""
    if isinstance(data, str):
        return data.encode("latin1")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    raise _Malformed(f"{what} is a {type(data).__name__}, not bytes")


def _checked_dtype(dtype, what: str) -> np.dtype:
    if not isinstance(dtype, np.dtype):
        raise _Malformed(f"{what} is a {type(dtype).__name__}, not a numpy dtype")
    if dtype.hasobject:
        raise _Malformed(f"{what} holds Python objects ({dtype}); only plain numeric data is read")
    return dtype


def _checked_shape(shape, what: str) -> Tuple[int, ...]:
    if not isinstance(shape, (tuple, list)) or not all(type(n) is int and n >= 0 for n in shape):
        raise _Malformed(f"{what} {shape!r} is not a sequence of non-negative integers")
    return tuple(shape)


def _np_reconstruct(subtype, shape, typecode):
    """``numpy.core.multiarray._reconstruct``: numpy pickles an array as this call followed by a BUILD
    (``ndarray.__setstate__``) carrying its shape, dtype and data. Only ``numpy.ndarray`` itself is rebuilt
    (no subclass), and an empty array is made whatever ``shape`` says, so that a file cannot make this
    allocate memory its data does not fill; the BUILD gives the array its real shape."""
    if subtype is not _NDARRAY:
        raise _Malformed(f"numpy's _reconstruct is asked for {subtype!r}, not numpy.ndarray")
    _checked_shape(shape, "numpy's _reconstruct shape")
    return np.ndarray((0,), dtype=np.uint8)


def _np_dtype(spec, align=False, copy=False):
    """``numpy.dtype(spec, align, copy)`` for a dtype string (``'f4'``, ``'<i8'``, ``'V16'``, ...)."""
    if isinstance(spec, bytes):
        spec = spec.decode("latin1")
    if not isinstance(spec, str):
        raise _Malformed(f"numpy.dtype is called with a {type(spec).__name__}, not a dtype string")
    return np.dtype(spec, bool(align), bool(copy))


_NP_SCALAR = np.float64(0).__reduce__()[0]  # numpy's own multiarray.scalar, called only with checked arguments


def _np_scalar(dtype, data=None):
    """``numpy.core.multiarray.scalar(dtype, data)``: a numpy scalar from its raw bytes."""
    dtype = _checked_dtype(dtype, "a numpy scalar's dtype")
    data = _as_bytes(data, "a numpy scalar's data")
    if len(data) != dtype.itemsize:
        raise _Malformed(f"a numpy {dtype} scalar has {len(data)} bytes of data, not {dtype.itemsize}")
    return _NP_SCALAR(dtype, data)


def _np_frombuffer(buf, dtype, shape, order):
    """``numpy.core.numeric._frombuffer``: how numpy pickles an array with pickle protocol 5."""
    dtype = _checked_dtype(dtype, "a numpy array's dtype")
    shape = _checked_shape(shape, "a numpy array's shape")
    data = _as_bytes(buf, "a numpy array's buffer")
    if order not in ("C", "F"):
        raise _Malformed(f"a numpy array's order is {order!r}, not 'C' or 'F'")
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise _Malformed(f"a numpy {dtype} array of shape {shape} has {len(data)} bytes of data")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy()


def _latin1_encode(text, encoding):
    """``_codecs.encode(text, 'latin1')``: how Python 3 writes ``bytes`` with pickle protocols 0-2."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Malformed(f"_codecs.encode is called with ({type(text).__name__}, {encoding!r}); only "
                         f"(str, 'latin1'), which encodes bytes in protocols 0-2, is read")
    return text.encode("latin1")


def _empty_bytes(*args):
    """``builtins.bytes()``: how Python 3 writes ``b''`` with pickle protocols 0-2."""
    if args:
        raise _Malformed("builtins.bytes is called with arguments; only bytes() (an empty bytes) is read")
    return b""


def _reconstructor(cls, base, state):
    """``copyreg._reconstructor``: how protocols 0 and 1 pickle a dict subclass such as Detectron's AttrDict
    (``base`` is ``dict`` and ``state`` its items; ``object`` with no state for an instance without items)."""
    if cls is not _AttrDict and cls is not _OrderedDict:
        raise _Malformed(f"copyreg._reconstructor is asked for {cls!r}; only an AttrDict or OrderedDict is read")
    if base is _DICT and isinstance(state, dict):
        return cls(state)
    if base is _OBJECT and state is None:
        return cls()
    raise _Malformed(f"copyreg._reconstructor is asked for base {base!r} with a {type(state).__name__} state")


# ---------------------------------------------------------------------------------------------------------------
# Torch storages and tensors
# ---------------------------------------------------------------------------------------------------------------


def _bfloat16_to_float32(raw: np.ndarray) -> np.ndarray:
    # A bfloat16 is the upper half of a float32: every value converts exactly.
    return (raw.astype(np.uint32) << 16).view(np.float32)


class _StorageType(_Marker):
    """A torch storage class (``torch.FloatStorage`` ...): the element type of its raw little-endian data."""

    __slots__ = ("raw_dtype", "decode", "dtype_name")

    def __init__(self, name: str, raw_dtype: str, decode: Callable[[np.ndarray], np.ndarray], dtype_name: str):
        super().__init__(name)
        self.raw_dtype = np.dtype(raw_dtype)
        self.decode = decode
        self.dtype_name = dtype_name


def _native(dtype: str) -> Callable[[np.ndarray], np.ndarray]:
    return lambda raw: raw.astype(np.dtype(dtype).newbyteorder("="))


#: torch storage class name -> (raw little-endian element type, decoding to the result's dtype, dtype name).
_STORAGE_KINDS = {
    "FloatStorage": ("<f4", _native("f4"), "float32"),
    "DoubleStorage": ("<f8", _native("f8"), "float64"),
    "HalfStorage": ("<f2", _native("f2"), "float16"),
    "BFloat16Storage": ("<u2", _bfloat16_to_float32, "bfloat16"),
    "LongStorage": ("<i8", _native("i8"), "int64"),
    "IntStorage": ("<i4", _native("i4"), "int32"),
    "ShortStorage": ("<i2", _native("i2"), "int16"),
    "CharStorage": ("i1", _native("i1"), "int8"),
    "ByteStorage": ("u1", _native("u1"), "uint8"),
    "BoolStorage": ("u1", lambda raw: raw != 0, "bool"),
}


class _Storage(_Inert):
    """A torch storage declared by a legacy stream: its type, key and element count; ``data`` (1-D, decoded)
    once the stream's raw section has been read."""

    __slots__ = ("kind", "key", "size", "data")

    def __init__(self, kind: _StorageType, key: str, size: int):
        self.kind = kind
        self.key = key
        self.size = size
        self.data: Optional[np.ndarray] = None

    def __repr__(self):
        return f"<{self.kind.name} {self.key!r} of {self.size} elements>"

    def read(self, data: bytes, pos: int) -> int:
        """Reads this storage's raw record at ``data[pos:]``: an int64 little-endian element count, then the
        elements. Returns the position after it."""
        if len(data) - pos < 8:
            raise _Malformed(f"the stream ends before the element count of storage {self.key!r}")
        count = int.from_bytes(data[pos:pos + 8], "little", signed=True)
        pos += 8
        if count != self.size:
            raise _Malformed(f"storage {self.key!r} holds {count} elements but its reference declares {self.size}")
        nbytes = count * self.kind.raw_dtype.itemsize
        available = len(data) - pos
        if nbytes > available:
            raise _Malformed(f"storage {self.key!r} declares {count} {self.kind.dtype_name} elements but "
                             f"{available} bytes follow")
        raw = np.frombuffer(data, dtype=self.kind.raw_dtype, count=count, offset=pos)
        self.data = self.kind.decode(raw)
        return pos + nbytes


class _StorageView(_Inert):
    """A view of ``size`` elements of a storage from element ``offset`` (a legacy stream's ``view_metadata``)."""

    __slots__ = ("root", "offset", "size")

    def __init__(self, root: _Storage, offset: int, size: int):
        self.root = root
        self.offset = offset
        self.size = size

    def __repr__(self):
        return f"<view of {self.size} elements from element {self.offset} of {self.root!r}>"


class _TensorRef(_Inert):
    """A tensor over a storage, resolved into an array once every storage's data is read (a legacy stream
    pickles its tensors before the raw data of their storages)."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset: int, size: Tuple[int, ...], stride: Tuple[int, ...]):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride

    def __repr__(self):
        return f"<tensor of size {self.size}, stride {self.stride}, offset {self.offset} in {self.storage!r}>"


def _storage_root(storage) -> Tuple[_Storage, int, int]:
    """(root storage, first element, number of elements) of a storage or a view of one."""
    if isinstance(storage, _StorageView):
        return storage.root, storage.offset, storage.size
    return storage, 0, storage.size


def _check_tensor_bounds(ref: _TensorRef) -> None:
    """Raises unless every element the tensor's offset, size and stride address lies inside its storage."""
    _, _, numel = _storage_root(ref.storage)
    if math.prod(ref.size) == 0:
        return
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if last >= numel:
        raise _Malformed(f"a tensor of size {ref.size}, stride {ref.stride} and storage offset {ref.offset} "
                         f"reaches element {last} of a storage of {numel} elements")


def _rebuild_tensor(storage, storage_offset, size, stride, *rest):
    """``torch._utils._rebuild_tensor(storage, storage_offset, size, stride)`` and ``_rebuild_tensor_v2(...,
    requires_grad, backward_hooks[, metadata])``: the checked description of a tensor (``_TensorRef``)."""
    if not isinstance(storage, (_Storage, _StorageView)):
        raise _Malformed(f"a tensor is rebuilt over a {type(storage).__name__}, not a torch storage")
    if type(storage_offset) is not int or storage_offset < 0:
        raise _Malformed(f"a tensor's storage offset {storage_offset!r} is not a non-negative integer")
    size = _checked_shape(size, "a tensor's size")
    stride = _checked_shape(stride, "a tensor's stride")
    if len(stride) != len(size):
        raise _Malformed(f"a tensor's size {size} and stride {stride} differ in length")
    if rest:
        requires_grad = rest[0]
        if not isinstance(requires_grad, bool):
            raise _Malformed(f"a tensor's requires_grad is {requires_grad!r}, not a bool")
        # backward_hooks (an empty OrderedDict in saved tensors: hooks are functions, refused as globals) and
        # metadata (later torch) do not change the values.
    ref = _TensorRef(storage, storage_offset, size, stride)
    _check_tensor_bounds(ref)
    return ref


def _rebuild_tensor_v1(*args):
    if len(args) != 4:
        raise _Malformed(f"torch._utils._rebuild_tensor takes 4 arguments, not {len(args)}")
    return _rebuild_tensor(*args)


def _rebuild_tensor_v2(*args):
    if len(args) not in (6, 7):
        raise _Malformed(f"torch._utils._rebuild_tensor_v2 takes 6 or 7 arguments, not {len(args)}")
    return _rebuild_tensor(*args)


def _tensor_array(ref: _TensorRef) -> np.ndarray:
    """The C-contiguous array of the tensor's values (a copy, independent of the storage)."""
    root, first, _ = _storage_root(ref.storage)
    if root.data is None:
        raise _Malformed(f"storage {root.key!r} of a tensor has no data")
    if math.prod(ref.size) == 0:
        return np.zeros(ref.size, dtype=root.data.dtype)
    _check_tensor_bounds(ref)  # again: the storage's declaration was checked before its data was read
    base = root.data[first + ref.offset:]
    strides = tuple(s * base.itemsize for s in ref.stride)
    view = np.lib.stride_tricks.as_strided(base, shape=ref.size, strides=strides, writeable=False)
    return view.copy(order="C")


# ---------------------------------------------------------------------------------------------------------------
# The restricted unpickler
# ---------------------------------------------------------------------------------------------------------------

_ATTRDICT_MODULES = ("utils.collections", "detectron.utils.collections", "lib.utils.collections", "core.config")

#: (module, name) -> what the unpickler gets for it. Both spellings of modules renamed in Python 3 or numpy 2
#: are listed: the unpickler hands a subclass's find_class the names exactly as the file has them.
_GLOBALS: Dict[Tuple[str, str], Any] = {
    **{(m, "_reconstruct"): _Callable("numpy.core.multiarray._reconstruct", _np_reconstruct)
       for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): _Callable("numpy.core.multiarray.scalar", _np_scalar)
       for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "_frombuffer"): _Callable("numpy.core.numeric._frombuffer", _np_frombuffer)
       for m in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _Callable("numpy.dtype", _np_dtype),
    ("_codecs", "encode"): _Callable("_codecs.encode", _latin1_encode),
    ("builtins", "bytes"): _Callable("builtins.bytes", _empty_bytes),
    ("__builtin__", "bytes"): _Callable("builtins.bytes", _empty_bytes),
    ("collections", "OrderedDict"): _OrderedDict,
    ("copyreg", "_reconstructor"): _Callable("copyreg._reconstructor", _reconstructor),
    ("copy_reg", "_reconstructor"): _Callable("copyreg._reconstructor", _reconstructor),
    ("builtins", "object"): _OBJECT,
    ("__builtin__", "object"): _OBJECT,
    ("builtins", "dict"): _DICT,
    ("__builtin__", "dict"): _DICT,
    **{(m, "AttrDict"): _AttrDict for m in _ATTRDICT_MODULES},
    ("torch._utils", "_rebuild_tensor"): _Callable("torch._utils._rebuild_tensor", _rebuild_tensor_v1),
    ("torch._utils", "_rebuild_tensor_v2"): _Callable("torch._utils._rebuild_tensor_v2", _rebuild_tensor_v2),
    **{(m, name): _StorageType(f"{m}.{name}", *kind) for m in ("torch", "torch.cuda")
       for name, kind in _STORAGE_KINDS.items()},
}
_LOAD_FROM_BYTES = ("torch.storage", "_load_from_bytes")  # bound to the unpickler: it reads a nested stream


class _RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`_GLOBALS` (and ``torch.storage._load_from_bytes``).

    ``storages`` is the table of a legacy stream's object pickle, whose persistent ids declare torch storages;
    ``None`` for any other pickle, which may hold no persistent ids.
    """

    def __init__(self, file, source: str, where: str, depth: int, storages: Optional[Dict[str, _Storage]] = None):
        # latin1: a Python 2 pickle's byte strings (numpy array data among them) load as str, byte for byte.
        super().__init__(file, encoding="latin1")
        self._source = source
        self._where = where
        self._depth = depth
        self._storages = storages

    def find_class(self, module, name):
        if (module, name) == _LOAD_FROM_BYTES:
            return _Callable("torch.storage._load_from_bytes", self._load_from_bytes)
        found = _GLOBALS.get((module, name))
        if found is None:
            raise UnsafePickleError(f"refusing to load {f'{module}.{name}'!r} from {self._source}{self._where}: "
                                    f"{_ALLOWED_SUMMARY}")
        return found

    def persistent_load(self, pid):
        if self._storages is None:
            raise _Malformed(f"the pickle refers to a persistent object {_short(pid)}; a plain pickle holds none")
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise _Malformed(f"persistent id {_short(pid)} is not a torch storage "
                             "('storage', type, key, location, size, view)")
        _, kind, key, location, size, view = pid
        if not isinstance(kind, _StorageType):
            raise _Malformed(f"storage {key!r} has type {kind!r}, not a torch storage type")
        if not isinstance(key, str) or not isinstance(location, str) or type(size) is not int or size < 0:
            raise _Malformed(f"persistent id {_short(pid)} is not (str key, str location, element count)")
        storage = self._storages.get(key)
        if storage is None:
            storage = self._storages[key] = _Storage(kind, key, size)
        elif storage.kind is not kind or storage.size != size:
            raise _Malformed(f"storage {key!r} is declared as {storage.kind.name} of {storage.size} elements and "
                             f"as {kind.name} of {size}")
        if view is None:
            return storage
        if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[0], str)
                and type(view[1]) is int and type(view[2]) is int):
            raise _Malformed(f"storage {key!r} has view metadata {_short(view)}, not (key, offset, size)")
        _, offset, view_size = view
        if offset < 0 or view_size < 0 or offset + view_size > size:
            raise _Malformed(f"a view of {view_size} elements from element {offset} of storage {key!r} "
                             f"({size} elements) does not fit in it")
        return _StorageView(storage, offset, view_size)

    def _load_from_bytes(self, data):
        """``torch.storage._load_from_bytes``: the storage a legacy ``torch.save`` stream holds."""
        data = _as_bytes(data, "torch.storage._load_from_bytes's argument")
        if self._depth >= _MAX_STREAM_DEPTH:
            raise _Malformed(f"storage bytes nest {self._depth} deep")
        try:
            return _read_legacy_stream(data, self._source, " (inside a tensor's storage bytes)", self._depth + 1)
        except UnsafePickleError:
            raise
        except Exception as exc:
            raise _Malformed(f"a tensor's storage bytes (torch.storage._load_from_bytes): {_describe(exc)}") from exc


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _Malformed):
        return str(exc)
    return f"not a readable pickle ({type(exc).__name__}: {exc})"


def _load_one(stream: io.BytesIO, source: str, where: str, depth: int,
              storages: Optional[Dict[str, _Storage]] = None):
    return _RestrictedUnpickler(stream, source, where, depth, storages).load()


def _read_legacy_stream(data: bytes, source: str, where: str, depth: int):
    """Reads a legacy ``torch.save`` stream (torch < 1.6, ``_legacy_save``): a sequence of pickles

    1. the magic number :data:`LEGACY_MAGIC_NUMBER`, 2. the protocol version :data:`LEGACY_PROTOCOL_VERSION`,
    3. ``sys_info`` (``little_endian``, ``type_sizes``), 4. the object, whose persistent ids are
    ``('storage', storage type, root key, location, element count, view_metadata)`` with ``view_metadata``
    None or ``(view key, offset, view size)``, 5. the list of storage keys in the order of their data,

    then per key an int64 little-endian element count and the elements' raw little-endian bytes.
    Returns the object, its storages filled.
    """
    stream = io.BytesIO(data)
    magic = _load_one(stream, source, where, depth)
    if type(magic) is not int or magic != LEGACY_MAGIC_NUMBER:
        raise _Malformed(f"not a torch.save stream: it starts with {_short(magic)}, not the magic number "
                         f"{LEGACY_MAGIC_NUMBER:#x}")
    version = _load_one(stream, source, where, depth)
    if type(version) is not int or version != LEGACY_PROTOCOL_VERSION:
        raise _Malformed(f"torch.save protocol version {_short(version)}, not {LEGACY_PROTOCOL_VERSION}")
    sys_info = _load_one(stream, source, where, depth)
    if not isinstance(sys_info, dict) or "little_endian" not in sys_info:
        raise _Malformed(f"torch.save's sys_info {_short(sys_info)} does not say the byte order")
    if sys_info["little_endian"] is not True:
        raise _Malformed("written on a big-endian machine (sys_info little_endian is "
                         f"{_short(sys_info['little_endian'])}); only little-endian data is read")
    storages: Dict[str, _Storage] = {}
    result = _load_one(stream, source, where, depth, storages)
    keys = _load_one(stream, source, where, depth)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise _Malformed(f"the list of storage keys is {_short(keys)}, not a list of str")
    if len(set(keys)) != len(keys):
        raise _Malformed(f"the list of storage keys {_short(keys)} repeats a key")
    unknown = [k for k in keys if k not in storages]
    if unknown:
        raise _Malformed(f"data follows for storage {unknown[0]!r}, which nothing refers to")
    missing = sorted(set(storages) - set(keys))
    if missing:
        raise _Malformed(f"storage {missing[0]!r} is referred to but its data is not in the stream")
    pos = stream.tell()
    for key in keys:
        pos = storages[key].read(data, pos)
    if pos != len(data):
        raise _Malformed(f"{len(data) - pos} bytes follow the data of the last storage")
    return result


# ---------------------------------------------------------------------------------------------------------------
# Plain Python out
# ---------------------------------------------------------------------------------------------------------------


def _plain(obj, memo: Dict[int, Any]):
    """``obj`` with tensors as arrays, AttrDicts as dicts; shared or recursive containers stay shared."""
    key = id(obj)
    if key in memo:
        return memo[key]
    kind = type(obj)
    if obj is None or kind in (bool, int, float, complex, str, bytes, bytearray):
        return obj
    if kind is _TensorRef:
        out = memo[key] = _tensor_array(obj)
        return out
    if kind in (_Storage, _StorageView):
        root, first, numel = _storage_root(obj)
        if root.data is None:
            raise _Malformed(f"storage {root.key!r} has no data")
        out = memo[key] = root.data[first:first + numel].copy()
        return out
    if kind is np.ndarray or isinstance(obj, (np.generic, np.dtype)):
        _checked_dtype(obj if isinstance(obj, np.dtype) else obj.dtype, "a numpy array or scalar")
        return obj
    if kind in (dict, _AttrDict, _OrderedDict, collections.OrderedDict):
        out = memo[key] = collections.OrderedDict() if issubclass(kind, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[_plain(k, memo)] = _plain(v, memo)
        return out
    if kind is list:
        out = memo[key] = []
        out.extend(_plain(v, memo) for v in obj)
        return out
    if kind in (tuple, set, frozenset):
        out = memo[key] = kind(_plain(v, memo) for v in obj)
        return out
    raise _Malformed(f"the pickle leaves {_short(obj)} ({kind.__name__}) in its result, which is not plain data")


def load_release_pickle(path) -> object:
    """Reads a released LCR-Net++ model file (or any pickle of plain data, numpy arrays and torch tensors)
    without running code from it and without torch.

    Args:
      path: the ``<name>.pkl`` file: a plain pickle (protocols 0-5, written by Python 2 or 3), or a whole
        legacy ``torch.save`` file (torch < 1.6).
    Returns:
      The unpickled object as plain Python (for a release file the dict ``model``, ``cfg``, ``anchor_poses``,
      ``ppi_params``): every torch tensor a C-contiguous ``numpy.ndarray`` of its values (its dtype, shape,
      strides and storage offset applied), AttrDicts ``dict``, OrderedDicts ``OrderedDict``, numpy arrays as
      they are.
    Raises:
      UnsafePickleError: the file names a global outside the allowed set (nothing was imported or run).
      ValueError: the file is empty, truncated, not a pickle, a zip-format (torch >= 1.6) file, or its legacy
        stream or tensors are inconsistent; the message names the file and what is wrong.
      OSError: the file cannot be opened.
    """
    source = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise ValueError(f"{source}: the file is empty, not a pickle")
    if data.startswith(_ZIP_SIGNATURE):
        raise ValueError(f"{source}: a zip archive, the format of torch.save since torch 1.6; the released "
                         "LCR-Net++ models are plain pickles written with PyTorch 0.4, and this reader does not "
                         "read the zip format")
    try:
        stream = io.BytesIO(data)
        result = _load_one(stream, source, "", 0)
        if type(result) is int and result == LEGACY_MAGIC_NUMBER:
            result = _read_legacy_stream(data, source, "", 0)
        elif stream.tell() != len(data):
            hint = ""
            if type(result) is int:  # likely a damaged torch.save file: say what its first pickle should be
                hint = (f" (it holds the number {_short(result)}, not the magic number {LEGACY_MAGIC_NUMBER:#x} "
                        "that starts a torch.save file)")
            raise _Malformed(f"{len(data) - stream.tell()} bytes follow the end of the pickle{hint}")
        return _plain(result, {})
    except UnsafePickleError:
        raise
    except RecursionError as exc:
        raise ValueError(f"{source}: nested too deeply to read") from exc
    except Exception as exc:
        raise ValueError(f"{source}: {_describe(exc)}") from exc
