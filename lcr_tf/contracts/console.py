"""What a command prints: its own lines and its errors, not the libraries' start-up notices.

TensorFlow's C++ runtime and Apache Beam print notices on the standard error of every process that
imports them, the commands' own and the Beam worker processes they start: ``oneDNN custom operations are
on ...``, ``Could not find cuda drivers ...``, ``failed call to cuInit ...`` on a machine without a GPU,
``apitools not found ...``. A user reads them as errors, in the middle of the progress lines. TensorFlow
2.21 writes them before its logging reads ``TF_CPP_MIN_LOG_LEVEL`` (``All log messages before
absl::InitializeLog() is called are written to STDERR``), and a Beam worker prints them while it imports
Beam, before any code of this package runs in it, so neither a log level nor a logger setting can hold
them back.

:func:`quiet` therefore filters the process's standard error at the file-descriptor level: descriptor 2
becomes a pipe that a thread reads line by line, writing every line that is not a known notice
(:func:`is_notice`) to the real standard error. Child processes inherit descriptor 2, so the Beam
workers' notices are filtered by the same thread. Errors stay visible: a traceback, an ``error:`` line,
a C++ ``E``/``F`` line other than the listed start-up ones and every line of unknown shape pass through.

Everything comes back with ``--verbose`` (the demo's) or with ``TF_CPP_MIN_LOG_LEVEL=0``, TensorFlow's
own setting for "log everything": then nothing is filtered.

A ``python -m`` command of the package starts the filter before it imports anything heavy: the packages'
``__init__`` calls :func:`quiet_command` (Python sets ``sys.argv[0]`` to ``"-m"`` while it locates the
module of ``python -m``), and :func:`lcr_tf.contracts.cli.run` calls :func:`quiet` for the scripts.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
from typing import Optional

#: TensorFlow's own log-level variable: "0" (log everything) turns the filter off.
TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"

# An absl / TensorFlow C++ log line: severity letter, MMDD, time (seconds since the epoch before absl
# logging starts: "I0000 00:00:1796456696.250016"), thread id, file:line].
_CPP_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] (.*)$")

#: Notices that are not errors, by their text (C++ lines at level E included: a machine without a GPU
#: makes TensorFlow log its failed CUDA probe as an error).
_NOTICES = tuple(re.compile(p) for p in (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    r"failed call to cuInit",
    r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$",
    r"^WARNING:root:apitools not found, and bigquery client libraries are not available",
))


def is_notice(line: str) -> bool:
    """True for a library start-up notice that :func:`quiet` holds back (``line`` without its newline):
    a TensorFlow / absl C++ line at level I or W, or one of the known notices. Errors (C++ ``E`` / ``F``
    lines other than the failed CUDA probe, tracebacks, the commands' own lines) are not notices."""
    if any(p.search(line) for p in _NOTICES):
        return True
    cpp = _CPP_LINE.match(line)
    return bool(cpp) and cpp.group(1) in "IW"


class NoticeFilter:
    """Line by line, whether a line is shown: not a notice (:func:`is_notice`), nor an indented line that
    continues a held-back C++ record (TensorFlow writes some multi-line warnings, such as a kernel it
    could not find, as one header line and tab- or space-indented lines under it)."""

    def __init__(self):
        self.holding = False

    def keep(self, line: str) -> bool:
        if self.holding and line[:1] in ("\t", " "):
            return False
        self.holding = is_notice(line)
        return not self.holding


class _Filter:
    """Descriptor 2 replaced by a pipe; a daemon thread forwards the pipe's lines that are not notices to
    the saved descriptor of the real standard error."""

    def __init__(self):
        self.target = os.dup(2)
        read, write = os.pipe()
        sys.stderr.flush()
        os.dup2(write, 2)
        os.close(write)
        self.read = read
        self.thread = threading.Thread(target=self._pump, name="stderr-filter", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        shown = NoticeFilter()
        with os.fdopen(self.read, "rb", buffering=0) as pipe:
            pending = b""
            while True:
                chunk = pipe.read(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = [line + b"\n" for line in lines if shown.keep(line.decode("utf-8", "replace").rstrip("\r"))]
                if kept:
                    os.write(self.target, b"".join(kept))
            if pending and shown.keep(pending.decode("utf-8", "replace")):
                os.write(self.target, pending)

    def close(self, timeout_s: float = 5.0) -> None:
        """Puts the real standard error back and lets the thread forward what is left in the pipe (it
        ends when no process holds the pipe's write end any more, or after ``timeout_s``)."""
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self.target, 2)
        self.thread.join(timeout_s)


_ACTIVE: Optional[_Filter] = None


def wanted(verbose: bool = False) -> bool:
    """Whether :func:`quiet` filters this process: not with ``verbose`` nor with ``TF_CPP_MIN_LOG_LEVEL=0``.

    A command started by a filtered one filters its own standard error too: its parent may have given it
    another one (a pipe it reads), and a second filter over the same lines changes nothing."""
    return not (verbose or os.environ.get(TF_LOG_LEVEL_ENV, "").strip() == "0")


def quiet(verbose: bool = False) -> bool:
    """Filters the library notices out of this process's standard error and its children's (module
    docstring), once per process; returns whether a filter is active. Call it first thing in a command,
    before TensorFlow or Beam are imported."""
    global _ACTIVE
    if _ACTIVE is not None:
        return True
    if not wanted(verbose):
        return False
    try:
        _ACTIVE = _Filter()
    except OSError:
        return False  # no descriptor 2 to filter (a closed or odd standard error): print as it comes
    atexit.register(_ACTIVE.close)
    return True


def quiet_command() -> bool:
    """:func:`quiet` when this process is a ``python -m`` command still being located (the caller is a
    package's ``__init__``), so that the filter is on before the command's module imports TensorFlow or
    Beam; a plain import of the package changes nothing."""
    return sys.argv[:1] == ["-m"] and quiet()


def restore() -> None:
    """Ends :func:`quiet`'s filter now (the real standard error back, the pipe drained)."""
    global _ACTIVE
    if _ACTIVE is None:
        return
    atexit.unregister(_ACTIVE.close)
    _ACTIVE.close()
    _ACTIVE = None
