"""Reading the authors' released LCR-Net++ model files (``<name>.pkl``) safely, without torch.

The release (PyTorch 0.4, ``demo.py``: ``pickle.load(open(fname, 'rb'))``) ships each model as one plain pickle
of a dict::

    {'model': OrderedDict(parameter name -> torch tensor),   # a state dict (possibly numpy arrays instead)
     'cfg': AttrDict(...),                                   # Detectron.pytorch's config, nested AttrDicts
     'anchor_poses': numpy array (2K, 5J) float32,
     'ppi_params': dict}

A pickle can run any code while it loads, so :func:`load_release_pickle` never uses ``pickle.load``'s default
class lookup: a restricted unpickler resolves only the globals such files need, each to a stand-in of
:mod:`lcr_tf.release.pickle_globals` that checks its arguments (never to torch, which need not be installed),
and refuses everything else with
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
import os
import pickle
from typing import Any, Dict, Optional

import numpy as np

from lcr_tf.release import pickle_globals as g

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


# ---------------------------------------------------------------------------------------------------------------
# The restricted unpickler
# ---------------------------------------------------------------------------------------------------------------

_LOAD_FROM_BYTES = ("torch.storage", "_load_from_bytes")  # bound to the unpickler: it reads a nested stream


class _RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`lcr_tf.release.pickle_globals.GLOBALS` (and
    ``torch.storage._load_from_bytes``).

    ``storages`` is the table of a legacy stream's object pickle, whose persistent ids declare torch storages;
    ``None`` for any other pickle, which may hold no persistent ids.
    """

    def __init__(self, file, source: str, where: str, depth: int, storages: Optional[Dict[str, g.Storage]] = None):
        # latin1: a Python 2 pickle's byte strings (numpy array data among them) load as str, byte for byte.
        super().__init__(file, encoding="latin1")
        self._source = source
        self._where = where
        self._depth = depth
        self._storages = storages

    def find_class(self, module, name):
        if (module, name) == _LOAD_FROM_BYTES:
            return g.CheckedCall("torch.storage._load_from_bytes", self._load_from_bytes)
        found = g.GLOBALS.get((module, name))
        if found is None:
            raise UnsafePickleError(f"refusing to load {f'{module}.{name}'!r} from {self._source}{self._where}: "
                                    f"{_ALLOWED_SUMMARY}")
        return found

    def persistent_load(self, pid):
        if self._storages is None:
            raise g.Malformed(f"the pickle refers to a persistent object {_short(pid)}; a plain pickle holds none")
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise g.Malformed(f"persistent id {_short(pid)} is not a torch storage "
                             "('storage', type, key, location, size, view)")
        _, kind, key, location, size, view = pid
        if not isinstance(kind, g.StorageType):
            raise g.Malformed(f"storage {key!r} has type {kind!r}, not a torch storage type")
        if not isinstance(key, str) or not isinstance(location, str) or type(size) is not int or size < 0:
            raise g.Malformed(f"persistent id {_short(pid)} is not (str key, str location, element count)")
        storage = self._storages.get(key)
        if storage is None:
            storage = self._storages[key] = g.Storage(kind, key, size)
        elif storage.kind is not kind or storage.size != size:
            raise g.Malformed(f"storage {key!r} is declared as {storage.kind.name} of {storage.size} elements and "
                             f"as {kind.name} of {size}")
        if view is None:
            return storage
        if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[0], str)
                and type(view[1]) is int and type(view[2]) is int):
            raise g.Malformed(f"storage {key!r} has view metadata {_short(view)}, not (key, offset, size)")
        _, offset, view_size = view
        if offset < 0 or view_size < 0 or offset + view_size > size:
            raise g.Malformed(f"a view of {view_size} elements from element {offset} of storage {key!r} "
                             f"({size} elements) does not fit in it")
        return g.StorageView(storage, offset, view_size)

    def _load_from_bytes(self, data):
        """``torch.storage._load_from_bytes``: the storage a legacy ``torch.save`` stream holds."""
        data = g.as_bytes(data, "torch.storage._load_from_bytes's argument")
        if self._depth >= _MAX_STREAM_DEPTH:
            raise g.Malformed(f"storage bytes nest {self._depth} deep")
        try:
            return _read_legacy_stream(data, self._source, " (inside a tensor's storage bytes)", self._depth + 1)
        except UnsafePickleError:
            raise
        except Exception as exc:
            raise g.Malformed(f"a tensor's storage bytes (torch.storage._load_from_bytes): {_describe(exc)}") from exc


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _describe(exc: BaseException) -> str:
    if isinstance(exc, g.Malformed):
        return str(exc)
    return f"not a readable pickle ({type(exc).__name__}: {exc})"


def _load_one(stream: io.BytesIO, source: str, where: str, depth: int,
              storages: Optional[Dict[str, g.Storage]] = None):
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
        raise g.Malformed(f"not a torch.save stream: it starts with {_short(magic)}, not the magic number "
                         f"{LEGACY_MAGIC_NUMBER:#x}")
    version = _load_one(stream, source, where, depth)
    if type(version) is not int or version != LEGACY_PROTOCOL_VERSION:
        raise g.Malformed(f"torch.save protocol version {_short(version)}, not {LEGACY_PROTOCOL_VERSION}")
    sys_info = _load_one(stream, source, where, depth)
    if not isinstance(sys_info, dict) or "little_endian" not in sys_info:
        raise g.Malformed(f"torch.save's sys_info {_short(sys_info)} does not say the byte order")
    if sys_info["little_endian"] is not True:
        raise g.Malformed("written on a big-endian machine (sys_info little_endian is "
                         f"{_short(sys_info['little_endian'])}); only little-endian data is read")
    storages: Dict[str, g.Storage] = {}
    result = _load_one(stream, source, where, depth, storages)
    keys = _load_one(stream, source, where, depth)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise g.Malformed(f"the list of storage keys is {_short(keys)}, not a list of str")
    if len(set(keys)) != len(keys):
        raise g.Malformed(f"the list of storage keys {_short(keys)} repeats a key")
    unknown = [k for k in keys if k not in storages]
    if unknown:
        raise g.Malformed(f"data follows for storage {unknown[0]!r}, which nothing refers to")
    missing = sorted(set(storages) - set(keys))
    if missing:
        raise g.Malformed(f"storage {missing[0]!r} is referred to but its data is not in the stream")
    pos = stream.tell()
    for key in keys:
        pos = storages[key].read(data, pos)
    if pos != len(data):
        raise g.Malformed(f"{len(data) - pos} bytes follow the data of the last storage")
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
    if kind is g.TensorRef:
        out = memo[key] = g.tensor_array(obj)
        return out
    if kind in (g.Storage, g.StorageView):
        root, first, numel = g.storage_root(obj)
        if root.data is None:
            raise g.Malformed(f"storage {root.key!r} has no data")
        out = memo[key] = root.data[first:first + numel].copy()
        return out
    if kind is np.ndarray or isinstance(obj, (np.generic, np.dtype)):
        g.checked_dtype(obj if isinstance(obj, np.dtype) else obj.dtype, "a numpy array or scalar")
        return obj
    if kind in (dict, g.AttrDict, g.OrderedDict, collections.OrderedDict):
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
    raise g.Malformed(f"the pickle leaves {_short(obj)} ({kind.__name__}) in its result, which is not plain data")


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
            raise g.Malformed(f"{len(data) - stream.tell()} bytes follow the end of the pickle{hint}")
        return _plain(result, {})
    except UnsafePickleError:
        raise
    except RecursionError as exc:
        raise ValueError(f"{source}: nested too deeply to read") from exc
    except Exception as exc:
        raise ValueError(f"{source}: {_describe(exc)}") from exc
