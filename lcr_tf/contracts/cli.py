"""The one way to write a ``python -m`` entry point (and a benchmark script): absl flags and :func:`run`.

An entry point defines its flags with ``absl.flags`` in a ``define_flags()`` that it calls under
``if __name__ == "__main__":`` (so that importing the module defines none), writes ``main(argv)`` and
ends with::

    if __name__ == "__main__":
        define_flags()
        cli.run(main, required=("input", "output"))

:func:`run` gives every command the same behaviour:

* ``--help`` prints the module docstring and every flag the program defined (those of the modules it
  defines them from included; ``hidden`` ones left out) on stdout, and exits 0;
* a flag that does not parse, an unknown flag, a missing ``required`` flag or a positional argument
  (unless ``positional=True``) is an error on stderr that names it, with exit status 2;
* ``main``'s return value is the exit status;
* bad input that ``main`` lets through — a missing, unreadable, truncated or malformed file, a value of
  the wrong shape or unit (``OSError``, ``ValueError``, ``zipfile.BadZipFile``, TensorFlow's
  ``OpError``) — is one line on stderr, ``<program>: error: <message>``, with exit status 1 instead of
  a traceback (the readers' messages name the file and the field). ``LCR_TF_TRACEBACK=1`` in the
  environment re-raises it, for debugging.
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
import zipfile
from typing import Callable, Collection, List, Optional, Sequence

from absl import app, flags

from lcr_tf.contracts import console

_HELP = ("-h", "-?", "--help", "--helpshort", "--helpfull")
#: Modules whose flags a help page leaves out (absl's own, and those a library defines on import).
_FOREIGN = ("absl", "tensorflow", "keras", "apache_beam", "tensorboard")
USAGE_ERROR = 2
#: Exit status of a command stopped by bad input (one line on stderr).
INPUT_ERROR = 1
#: What :func:`run` reports as bad input (OSError covers missing files and folders, and permissions).
_INPUT_ERRORS = (OSError, ValueError, zipfile.BadZipFile)


def _program_flag_modules(flag_values: flags.FlagValues) -> List[str]:
    main = sys.modules.get("__main__")
    own = {sys.argv[0], getattr(main, "__file__", None), "__main__"}
    names = [m for m in flag_values.flags_by_module_dict() if m.split(".")[0] not in _FOREIGN]
    # The program's own module first, then the modules it took flags from, by name.
    return sorted(names, key=lambda m: (m not in own, m))


def _render(flag) -> str:
    name = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
    lines = textwrap.wrap(f"{name}: {flag.help or ''}", 100, initial_indent="  ", subsequent_indent="    ")
    if flag.default is not None:
        lines.append(f"    (default: {flag.default_as_str})")
    return "\n".join(lines)


def help_text(flag_values: flags.FlagValues = flags.FLAGS, doc: Optional[str] = None,
              hidden: Collection[str] = ()) -> str:
    """The ``--help`` page: the docstring of the running program (or ``doc``) and its flags."""
    if doc is None:
        doc = getattr(sys.modules.get("__main__"), "__doc__", None) or ""
    parts = [doc.strip(), "", "Flags:"]
    by_module = flag_values.flags_by_module_dict()
    for module in _program_flag_modules(flag_values):
        shown = sorted({f.name: f for f in by_module[module] if f.name not in hidden}.values(),
                       key=lambda f: f.name)
        if shown:
            parts.append(f"\n{module}:")
            parts.extend(_render(f) for f in shown)
    return "\n".join(parts)


def format_duration(seconds: float) -> str:
    """Seconds -> '1 h 02 min', '3 min 05 s' or '42 s'."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def input_error_message(error: BaseException) -> Optional[str]:
    """The one-line message of an exception that is bad input (see the module docstring), else None.

    TensorFlow's errors are recognised without importing TensorFlow: only a program that loaded it can
    raise them.
    """
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(error, tf.errors.OpError):
        text = error.message
    elif isinstance(error, _INPUT_ERRORS):
        text = str(error) or type(error).__name__
    else:
        return None
    # One line: a graph's error wraps the op's own message in a header and traces.
    return op_error_text(text) or type(error).__name__


def op_error_text(message: str) -> str:
    """The op's own message out of a TensorFlow error's text: the last line that is neither the "Graph
    execution error" header, an indented Python frame nor an op trace, without the ``{{function_node
    ...}}`` prefix and ``[Op:...]`` suffix an eager error adds."""
    lines = [line for line in message.splitlines() if line.strip() and not line[0].isspace()
             and not line.startswith(("Graph execution error", "Detected at node", "[["))]
    text = lines[-1] if lines else ""
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:[^\]]*\](\s*name:.*)?$", "", text).strip()


def debugging() -> bool:
    """``LCR_TF_TRACEBACK`` is set: bad input re-raises with its traceback."""
    return bool(os.environ.get("LCR_TF_TRACEBACK"))


def reporting_input_errors(program: str, body: Callable[[], Optional[int]]) -> Optional[int]:
    """Runs ``body()`` and returns its result; bad input that it raises (:func:`input_error_message`) is
    one line ``<program>: error: <message>`` on stderr and :data:`INPUT_ERROR`, anything else re-raises."""
    try:
        return body()
    except Exception as e:  # noqa: BLE001 - only bad input is reported in one line; the rest re-raises
        message = input_error_message(e)
        if message is None or debugging():
            raise
        print(f"{program}: error: {message}", file=sys.stderr)
        return INPUT_ERROR


def _usage_error(message: str) -> None:
    print(f"error: {message} (see --help)", file=sys.stderr)
    sys.exit(USAGE_ERROR)


def run(main: Callable[[List[str]], Optional[int]], required: Sequence[str] = (),
        positional: bool = False, hidden: Collection[str] = ()) -> None:
    """Parses the command line into ``absl.flags.FLAGS`` and calls ``main(argv)`` (``absl.app.run``),
    with the behaviour of the module docstring. ``--help`` exits 0 (absl's exits 1), so that asking for
    help is a successful command. The libraries' start-up notices are held back
    (:func:`lcr_tf.contracts.console.quiet`)."""
    console.quiet()
    if any(a in _HELP for a in sys.argv[1:]):
        print(help_text(hidden=hidden))
        sys.exit(0)
    if required:
        flags.mark_flags_as_required(list(required))

    def parse(argv: List[str]) -> List[str]:
        try:
            return flags.FLAGS(argv)
        except flags.UnrecognizedFlagError as e:
            _usage_error(f"unknown flag --{e.flagname}")
        except flags.Error as e:
            _usage_error(str(e))

    def checked(argv: List[str]):
        if len(argv) > 1 and not positional:
            _usage_error(f"unexpected arguments {argv[1:]} (every setting is a --flag)")
        return reporting_input_errors(os.path.splitext(os.path.basename(sys.argv[0] or "lcr_tf"))[0],
                                      lambda: main(argv))

    app.run(checked, flags_parser=parse)
