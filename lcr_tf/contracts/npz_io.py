"""Arrays on disk: an ``.npz`` read with ``allow_pickle=False`` plus a JSON sidecar for metadata.

``foo.npz`` has its metadata in ``foo.json``. Nothing is ever pickled: string arrays are stored as
fixed-width unicode (``<U``), which ``np.load(..., allow_pickle=False)`` reads back.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from lcr_tf.contracts import atomic_files

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def sidecar_path(npz_path: str) -> str:
    """``dir/name.npz`` -> ``dir/name.json``."""
    root, _ = os.path.splitext(npz_path)
    return root + ".json"


def save(npz_path: str, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> None:
    """Writes ``arrays`` to ``npz_path`` (uncompressed) and ``metadata`` to its JSON sidecar.

    The ``.npz`` is a plain NumPy archive (``np.load`` reads it); equal arrays give identical bytes.
    """
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TypeError(f"array {key!r} has dtype object, which would need pickle; use a fixed dtype")
    directory = os.path.dirname(os.path.abspath(npz_path))
    os.makedirs(directory, exist_ok=True)
    # Both files go through temporary names, the sidecar first: a kill leaves no half-written file, and
    # the .npz, written last, only exists once its sidecar does.
    atomic_files.write_text(sidecar_path(npz_path), json.dumps(metadata, indent=2, sort_keys=True,
                                                               default=_json_default) + "\n")
    with atomic_files.replacing(npz_path) as tmp, \
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(arrays[key]), allow_pickle=False)
            # A fixed timestamp (np.savez stamps the current time) so that the same arrays give the same
            # bytes: a seeded job is reproducible to the byte.
            zf.writestr(zipfile.ZipInfo(key + ".npy", date_time=_ZIP_EPOCH), buffer.getvalue())


def load(npz_path: str, required: Tuple[str, ...] = ()) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """Reads an ``.npz`` and its sidecar (an absent sidecar gives ``{}``).

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file is not a readable npz, or lacks one of ``required`` (named in the message).
    """
    if not os.path.exists(npz_path):
        raise FileNotFoundError(f"{npz_path}: no such file")
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        # A truncated copy (a cut zip directory) surfaces as BadZipFile, not as an OSError.
        raise ValueError(f"{npz_path}: not a readable .npz file ({e})") from e
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ValueError(f"{npz_path}: missing array(s) {missing}; found {sorted(arrays)}")
    meta: Dict[str, Any] = {}
    side = sidecar_path(npz_path)
    if os.path.exists(side):
        with open(side) as f:
            meta = json.load(f)
    return arrays, meta


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot write {type(o).__name__} to JSON")
