"""Writing a file so that no reader ever takes part of it for the whole: through a temporary name in the
same folder, then one ``os.replace`` (atomic on POSIX and Windows within a file system).

A command killed in the middle (SIGKILL, a full disk, a crash) leaves the previous file, or none, under
the real name, and at worst a ``<name>.tmp-<hex>`` beside it, never a truncated ``poses.npz`` or
``results.json`` that the next stage would read. Every file a command hands to another stage or to the
user goes through here (TFRecord shards and SavedModels, written by TensorFlow, follow the same rule in
their writers).

Imports nothing of the project and no TensorFlow: local paths only (the TFRecord writers, which accept
``gs://`` paths, rename with ``tf.io.gfile``).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from typing import Any, Iterator

#: Infix of the temporary names: ``<path>.tmp-<32 hex>``, recognisable (and removable) after a kill.
TEMP_INFIX = ".tmp-"


def temp_name(path: str) -> str:
    """A fresh temporary name beside ``path`` that keeps every extension (``a.npz`` -> ``a.tmp-<hex>.npz``,
    ``final.weights.h5`` -> ``final.tmp-<hex>.weights.h5``), for writers that choose their format from it
    (``cv2.imwrite``, matplotlib, Keras' ``save_weights``)."""
    folder, name = os.path.split(path)
    stem, dot, exts = name.partition(".")
    return os.path.join(folder, f"{stem}{TEMP_INFIX}{uuid.uuid4().hex}{dot}{exts}")


@contextlib.contextmanager
def replacing(path: str) -> Iterator[str]:
    """``with replacing(path) as tmp:`` write ``tmp`` in the body; on success it becomes ``path``, on an
    exception it is removed and ``path`` is untouched. The folder is created when missing."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path: str, data: bytes) -> None:
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path: str, text: str) -> None:
    with replacing(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def write_json(path: str, payload: Any, **dump_kwargs) -> None:
    """``json.dump(payload, f, **dump_kwargs)`` into ``path`` through a temporary name; the text is
    built first, so a payload that cannot be serialised leaves nothing behind."""
    write_text(path, json.dumps(payload, **dump_kwargs))
