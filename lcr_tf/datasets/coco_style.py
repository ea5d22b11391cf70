"""What the readers of COCO-style JSON annotation files share (:mod:`lcr_tf.datasets.coco`,
:mod:`lcr_tf.datasets.muco`): one parse of the file per process, and the keys of the entries that name no
image, so that nothing in the file goes unreported.

A reader's parsed index has ``file`` (the file's name, for messages), ``image_problems`` (image id, or
``("image", position)`` for an entry without an integer id -> the reason its image is rejected) and
``orphans`` (``("annotation", position)`` -> the reason, for annotations naming no image). Integer keys
are image ids; tuple keys are those stray entries, listed after the images and rejected by
:func:`reject_listed_problem`.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Dict, List

from lcr_tf.datasets.base import RecordError, file_exists, file_name, is_url, load_json


def is_int(value) -> bool:
    """A JSON integer (``bool`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_lists(data: Any, file: str) -> None:
    """Raises ValueError naming ``file`` unless ``data`` is an object with the lists ``images`` and
    ``annotations``."""
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a JSON object with 'images' and 'annotations', got "
                         f"{type(data).__name__}")
    for field in ("images", "annotations"):
        if not isinstance(data.get(field), list):
            raise ValueError(f"{file}: field {field!r} is missing or not a list")


class ParsedFileCache:
    """One annotation file parsed once per process, even when several reader copies ask at once (Beam
    workers run several), kept while the file is unchanged: keyed by its path, size and modification time
    (a URL by its path). Only the latest file is held, a job reading one file."""

    def __init__(self, what: str):
        self.what = what  # e.g. "COCO annotation file", in messages
        self._entries: Dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def get(self, path: str, parse: Callable[[Any, str], Any]) -> Any:
        """``parse(json_data, file_name)`` of ``path`` (any ``apache_beam.io.filesystems`` path), computed once.

        Raises:
          FileNotFoundError: no such file. ValueError: not JSON (named), or what ``parse`` raises.
        """
        if not file_exists(path):
            raise FileNotFoundError(f"{self.what} {path} does not exist")
        if is_url(path):
            key = (path,)
        else:
            stat = os.stat(path)
            key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key not in self._entries:
                file = file_name(path)
                data = load_json(path, self.what, name=file)
                self._entries.clear()  # one file per job: do not hold a previous one's arrays
                self._entries[key] = parse(data, file)
            return self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def stray_keys(index) -> List[tuple]:
    """The keys of the entries that name no image (module docstring), sorted."""
    return sorted([k for k in index.image_problems if not is_int(k)] + list(index.orphans))


def stray_key_name(key: tuple) -> str:
    """``("annotation", 3)`` -> ``annotations[3]``."""
    return f"{key[0]}s[{key[1]}]"


def reject_listed_problem(index, key, name: str) -> None:
    """Raises the :class:`RecordError` of a stray key or of an image rejected at parse time (module
    docstring); returns for any other key."""
    if isinstance(key, tuple):
        reason = index.orphans.get(tuple(key)) or index.image_problems.get(tuple(key))
        raise RecordError(name, reason or f"{index.file}: no entry {name}")
    if key in index.image_problems:
        raise RecordError(name, index.image_problems[key])
