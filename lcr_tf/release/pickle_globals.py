"""The stand-ins a released model file's globals resolve to (:mod:`lcr_tf.release.pickle_reader`): NumPy's array
reconstruction, plain containers, Detectron's ``AttrDict``, and torch's storages and tensors, each written here
and checking its arguments, never the real class or function.

:data:`GLOBALS` maps every ``(module, name)`` a released file may name to its stand-in; the restricted
unpickler refuses any other. Torch tensors are rebuilt as :class:`TensorRef` over :class:`Storage` (raw
little-endian data read from a legacy ``torch.save`` stream) and turned into NumPy arrays by
:func:`tensor_array`.
"""

from __future__ import annotations

import collections
import math
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np


class Malformed(ValueError):
    """The file is not what it claims; the message says what, and :func:`load_release_pickle` adds the file."""


# ---------------------------------------------------------------------------------------------------------------
# Stand-ins for the globals a released file names
# ---------------------------------------------------------------------------------------------------------------


class _Inert:
    """Base of every stand-in object handed to the unpickler: no instance dict, and a BUILD opcode aimed at it
    (which would otherwise set its attributes, e.g. a tensor's offset after its bounds were checked) is refused."""

    __slots__ = ()

    def __setstate__(self, state):
        raise Malformed(f"the pickle tries to set the state of {self!r}")


class _Marker(_Inert):
    """A global that is only meaningful as an argument of another stand-in (e.g. ``numpy.ndarray`` for
    ``_reconstruct``, ``builtins.dict`` for ``copyreg._reconstructor``); it cannot be called."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self):
        return self.name


class CheckedCall(_Inert):
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


class AttrDict(dict):
    """Stand-in for Detectron's ``AttrDict`` (a dict subclass); it becomes a plain ``dict`` in the result."""

    __slots__ = ()

    def __setstate__(self, state):
        # Detectron's AttrDict keeps only its '__immutable__' flag in its instance dict: meaningless here.
        if state is not None and not isinstance(state, dict):
            raise Malformed(f"an AttrDict's state is a {type(state).__name__}, not a dict")


class OrderedDict(collections.OrderedDict):
    """Stand-in for ``collections.OrderedDict``; it becomes a plain ``OrderedDict`` in the result."""

    def __setstate__(self, state):
        # A state dict's '_metadata' (per-module versions) arrives here; the weights do not need it.
        if state is not None and not isinstance(state, dict):
            raise Malformed(f"an OrderedDict's state is a {type(state).__name__}, not a dict")


def as_bytes(data, what: str) -> bytes:
    """``data`` as bytes: Python 2 pickles' byte strings arrive as latin-1 decoded ``str`` (``encoding='latin1'``)."""
    if isinstance(data, str):
        return data.encode("latin1")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    raise Malformed(f"{what} is a {type(data).__name__}, not bytes")


def checked_dtype(dtype, what: str) -> np.dtype:
    if not isinstance(dtype, np.dtype):
        raise Malformed(f"{what} is a {type(dtype).__name__}, not a numpy dtype")
    if dtype.hasobject:
        raise Malformed(f"{what} holds Python objects ({dtype}); only plain numeric data is read")
    return dtype


def _checked_shape(shape, what: str) -> Tuple[int, ...]:
    if not isinstance(shape, (tuple, list)) or not all(type(n) is int and n >= 0 for n in shape):
        raise Malformed(f"{what} {shape!r} is not a sequence of non-negative integers")
    return tuple(shape)


def _np_reconstruct(subtype, shape, typecode):
    """``numpy.core.multiarray._reconstruct``: numpy pickles an array as this call followed by a BUILD
    (``ndarray.__setstate__``) carrying its shape, dtype and data. Only ``numpy.ndarray`` itself is rebuilt
    (no subclass), and an empty array is made whatever ``shape`` says, so that a file cannot make this
    allocate memory its data does not fill; the BUILD gives the array its real shape."""
    if subtype is not _NDARRAY:
        raise Malformed(f"numpy's _reconstruct is asked for {subtype!r}, not numpy.ndarray")
    _checked_shape(shape, "numpy's _reconstruct shape")
    return np.ndarray((0,), dtype=np.uint8)


def _np_dtype(spec, align=False, copy=False):
    """``numpy.dtype(spec, align, copy)`` for a dtype string (``'f4'``, ``'<i8'``, ``'V16'``, ...)."""
    if isinstance(spec, bytes):
        spec = spec.decode("latin1")
    if not isinstance(spec, str):
        raise Malformed(f"numpy.dtype is called with a {type(spec).__name__}, not a dtype string")
    return np.dtype(spec, bool(align), bool(copy))


_NP_SCALAR = np.float64(0).__reduce__()[0]  # numpy's own multiarray.scalar, called only with checked arguments


def _np_scalar(dtype, data=None):
    """``numpy.core.multiarray.scalar(dtype, data)``: a numpy scalar from its raw bytes."""
    dtype = checked_dtype(dtype, "a numpy scalar's dtype")
    data = as_bytes(data, "a numpy scalar's data")
    if len(data) != dtype.itemsize:
        raise Malformed(f"a numpy {dtype} scalar has {len(data)} bytes of data, not {dtype.itemsize}")
    return _NP_SCALAR(dtype, data)


def _np_frombuffer(buf, dtype, shape, order):
    """``numpy.core.numeric._frombuffer``: how numpy pickles an array with pickle protocol 5."""
    dtype = checked_dtype(dtype, "a numpy array's dtype")
    shape = _checked_shape(shape, "a numpy array's shape")
    data = as_bytes(buf, "a numpy array's buffer")
    if order not in ("C", "F"):
        raise Malformed(f"a numpy array's order is {order!r}, not 'C' or 'F'")
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise Malformed(f"a numpy {dtype} array of shape {shape} has {len(data)} bytes of data")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy()


def _latin1_encode(text, encoding):
    """``_codecs.encode(text, 'latin1')``: how Python 3 writes ``bytes`` with pickle protocols 0-2."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise Malformed(f"_codecs.encode is called with ({type(text).__name__}, {encoding!r}); only "
                         f"(str, 'latin1'), which encodes bytes in protocols 0-2, is read")
    return text.encode("latin1")


def _empty_bytes(*args):
    """``builtins.bytes()``: how Python 3 writes ``b''`` with pickle protocols 0-2."""
    if args:
        raise Malformed("builtins.bytes is called with arguments; only bytes() (an empty bytes) is read")
    return b""


def _reconstructor(cls, base, state):
    """``copyreg._reconstructor``: how protocols 0 and 1 pickle a dict subclass such as Detectron's AttrDict
    (``base`` is ``dict`` and ``state`` its items; ``object`` with no state for an instance without items)."""
    if cls is not AttrDict and cls is not OrderedDict:
        raise Malformed(f"copyreg._reconstructor is asked for {cls!r}; only an AttrDict or OrderedDict is read")
    if base is _DICT and isinstance(state, dict):
        return cls(state)
    if base is _OBJECT and state is None:
        return cls()
    raise Malformed(f"copyreg._reconstructor is asked for base {base!r} with a {type(state).__name__} state")


# ---------------------------------------------------------------------------------------------------------------
# Torch storages and tensors
# ---------------------------------------------------------------------------------------------------------------


def _bfloat16_to_float32(raw: np.ndarray) -> np.ndarray:
    # A bfloat16 is the upper half of a float32: every value converts exactly.
    return (raw.astype(np.uint32) << 16).view(np.float32)


class StorageType(_Marker):
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


class Storage(_Inert):
    """A torch storage declared by a legacy stream: its type, key and element count; ``data`` (1-D, decoded)
    once the stream's raw section has been read."""

    __slots__ = ("kind", "key", "size", "data")

    def __init__(self, kind: StorageType, key: str, size: int):
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
            raise Malformed(f"the stream ends before the element count of storage {self.key!r}")
        count = int.from_bytes(data[pos:pos + 8], "little", signed=True)
        pos += 8
        if count != self.size:
            raise Malformed(f"storage {self.key!r} holds {count} elements but its reference declares {self.size}")
        nbytes = count * self.kind.raw_dtype.itemsize
        available = len(data) - pos
        if nbytes > available:
            raise Malformed(f"storage {self.key!r} declares {count} {self.kind.dtype_name} elements but "
                             f"{available} bytes follow")
        raw = np.frombuffer(data, dtype=self.kind.raw_dtype, count=count, offset=pos)
        self.data = self.kind.decode(raw)
        return pos + nbytes


class StorageView(_Inert):
    """A view of ``size`` elements of a storage from element ``offset`` (a legacy stream's ``view_metadata``)."""

    __slots__ = ("root", "offset", "size")

    def __init__(self, root: Storage, offset: int, size: int):
        self.root = root
        self.offset = offset
        self.size = size

    def __repr__(self):
        return f"<view of {self.size} elements from element {self.offset} of {self.root!r}>"


class TensorRef(_Inert):
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


def storage_root(storage) -> Tuple[Storage, int, int]:
    """(root storage, first element, number of elements) of a storage or a view of one."""
    if isinstance(storage, StorageView):
        return storage.root, storage.offset, storage.size
    return storage, 0, storage.size


def _check_tensor_bounds(ref: TensorRef) -> None:
    """Raises unless every element the tensor's offset, size and stride address lies inside its storage."""
    _, _, numel = storage_root(ref.storage)
    if math.prod(ref.size) == 0:
        return
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if last >= numel:
        raise Malformed(f"a tensor of size {ref.size}, stride {ref.stride} and storage offset {ref.offset} "
                         f"reaches element {last} of a storage of {numel} elements")


def _rebuild_tensor(storage, storage_offset, size, stride, *rest):
    """``torch._utils._rebuild_tensor(storage, storage_offset, size, stride)`` and ``_rebuild_tensor_v2(...,
    requires_grad, backward_hooks[, metadata])``: the checked description of a tensor (``TensorRef``)."""
    if not isinstance(storage, (Storage, StorageView)):
        raise Malformed(f"a tensor is rebuilt over a {type(storage).__name__}, not a torch storage")
    if type(storage_offset) is not int or storage_offset < 0:
        raise Malformed(f"a tensor's storage offset {storage_offset!r} is not a non-negative integer")
    size = _checked_shape(size, "a tensor's size")
    stride = _checked_shape(stride, "a tensor's stride")
    if len(stride) != len(size):
        raise Malformed(f"a tensor's size {size} and stride {stride} differ in length")
    if rest:
        requires_grad = rest[0]
        if not isinstance(requires_grad, bool):
            raise Malformed(f"a tensor's requires_grad is {requires_grad!r}, not a bool")
        # backward_hooks (an empty OrderedDict in saved tensors: hooks are functions, refused as globals) and
        # metadata (later torch) do not change the values.
    ref = TensorRef(storage, storage_offset, size, stride)
    _check_tensor_bounds(ref)
    return ref


def _rebuild_tensor_v1(*args):
    if len(args) != 4:
        raise Malformed(f"torch._utils._rebuild_tensor takes 4 arguments, not {len(args)}")
    return _rebuild_tensor(*args)


def _rebuild_tensor_v2(*args):
    if len(args) not in (6, 7):
        raise Malformed(f"torch._utils._rebuild_tensor_v2 takes 6 or 7 arguments, not {len(args)}")
    return _rebuild_tensor(*args)


def tensor_array(ref: TensorRef) -> np.ndarray:
    """The C-contiguous array of the tensor's values (a copy, independent of the storage)."""
    root, first, _ = storage_root(ref.storage)
    if root.data is None:
        raise Malformed(f"storage {root.key!r} of a tensor has no data")
    if math.prod(ref.size) == 0:
        return np.zeros(ref.size, dtype=root.data.dtype)
    _check_tensor_bounds(ref)  # again: the storage's declaration was checked before its data was read
    base = root.data[first + ref.offset:]
    strides = tuple(s * base.itemsize for s in ref.stride)
    view = np.lib.stride_tricks.as_strided(base, shape=ref.size, strides=strides, writeable=False)
    return view.copy(order="C")



_ATTRDICT_MODULES = ("utils.collections", "detectron.utils.collections", "lib.utils.collections", "core.config")

#: (module, name) -> what the unpickler gets for it. Both spellings of modules renamed in Python 3 or numpy 2
#: are listed: the unpickler hands a subclass's find_class the names exactly as the file has them.
GLOBALS: Dict[Tuple[str, str], Any] = {
    **{(m, "_reconstruct"): CheckedCall("numpy.core.multiarray._reconstruct", _np_reconstruct)
       for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): CheckedCall("numpy.core.multiarray.scalar", _np_scalar)
       for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "_frombuffer"): CheckedCall("numpy.core.numeric._frombuffer", _np_frombuffer)
       for m in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): CheckedCall("numpy.dtype", _np_dtype),
    ("_codecs", "encode"): CheckedCall("_codecs.encode", _latin1_encode),
    ("builtins", "bytes"): CheckedCall("builtins.bytes", _empty_bytes),
    ("__builtin__", "bytes"): CheckedCall("builtins.bytes", _empty_bytes),
    ("collections", "OrderedDict"): OrderedDict,
    ("copyreg", "_reconstructor"): CheckedCall("copyreg._reconstructor", _reconstructor),
    ("copy_reg", "_reconstructor"): CheckedCall("copyreg._reconstructor", _reconstructor),
    ("builtins", "object"): _OBJECT,
    ("__builtin__", "object"): _OBJECT,
    ("builtins", "dict"): _DICT,
    ("__builtin__", "dict"): _DICT,
    **{(m, "AttrDict"): AttrDict for m in _ATTRDICT_MODULES},
    ("torch._utils", "_rebuild_tensor"): CheckedCall("torch._utils._rebuild_tensor", _rebuild_tensor_v1),
    ("torch._utils", "_rebuild_tensor_v2"): CheckedCall("torch._utils._rebuild_tensor_v2", _rebuild_tensor_v2),
    **{(m, name): StorageType(f"{m}.{name}", *kind) for m in ("torch", "torch.cuda")
       for name, kind in _STORAGE_KINDS.items()},
}
