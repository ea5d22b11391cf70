"""Fetching a released model file by name, into a cache.

The authors publish their models at :data:`RELEASE_BASE_URL` as ``<name>.pkl`` (their ``demo.py`` downloads
from there). :func:`fetch_release` downloads one once into the cache folder (``$LCR_TF_CACHE/release``,
default ``~/.cache/lcr_tf/release``) and returns its path; later calls return the cached file. A download
goes to a temporary file beside its target and is renamed only once complete, so an interrupted one leaves
nothing that looks cached.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from typing import Optional

#: Where the authors publish their models (``demo.py`` of the release).
RELEASE_BASE_URL = "http://pascal.inrialpes.fr/data2/grogez/LCR-Net/pthmodels/"
#: Names the authors publish (their site lists them; any other well-formed name is tried as well).
KNOWN_MODELS = ("InTheWild-ResNet50", "DEMO_ECCV18", "Human3.6-17J-ResNet50")
CACHE_ENV = "LCR_TF_CACHE"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PICKLE_START = (b"\x80", b"(", b"}", b"]")  # protocol 2+ header, or protocol 0/1 opening opcodes


def cache_dir(root: Optional[str] = None) -> str:
    """The folder of cached release files: ``root``, else ``$LCR_TF_CACHE/release``, else
    ``~/.cache/lcr_tf/release``."""
    if root:
        return root
    base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "lcr_tf")
    return os.path.join(base, "release")


def fetch_release(name: str, cache: Optional[str] = None, base_url: str = RELEASE_BASE_URL,
                  timeout: float = 60.0, log=print) -> str:
    """The path of the release file ``<name>.pkl``, downloaded from ``base_url`` into the cache first if it
    is not there.

    Raises:
      ValueError: a name that is not a plain file name (letters, digits, ``.``, ``_``, ``-``).
      OSError: the download failed (the message names the address and the HTTP status or the reason), or
        what came back is empty, shorter than announced, or not a pickle (an error page).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.endswith(".pkl"):
        raise ValueError(f"a released model's name is a plain name such as {KNOWN_MODELS[0]!r} (no path, no "
                         f"'.pkl'); got {name!r}")
    folder = cache_dir(cache)
    target = os.path.join(folder, name + ".pkl")
    if os.path.isfile(target):
        log(f"using the cached {target}")
        return target
    url = base_url.rstrip("/") + "/" + name + ".pkl"
    os.makedirs(folder, exist_ok=True)
    log(f"downloading {url} to {target}")
    handle, partial = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    expected = response.headers.get("Content-Length")
                    shutil.copyfileobj(response, out, 1 << 20)
            except urllib.error.HTTPError as e:
                raise OSError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
            except (urllib.error.URLError, OSError) as e:
                raise OSError(f"cannot download {url}: {getattr(e, 'reason', e)}") from None
            size = out.tell()
        if expected is not None and int(expected) != size:
            raise OSError(f"cannot download {url}: {size} bytes arrived of the {expected} announced")
        with open(partial, "rb") as f:
            head = f.read(1)
        if not size or head not in _PICKLE_START:
            raise OSError(f"{url} did not return a model file ({size} bytes starting with {head!r}: not a pickle)")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    log(f"saved {target} ({size / 1e6:.1f} MB)")
    return target
