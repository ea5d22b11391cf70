"""Command-line plumbing shared by the ``python -m`` entry points that use absl flags."""

from __future__ import annotations

import sys
from typing import Callable, List

from absl import app, flags

_HELP = ("-h", "-?", "--help", "--helpshort", "--helpfull")


def run(main: Callable[[List[str]], None]) -> None:
    """``absl.app.run(main)``, except that ``--help`` prints the module docstring and its flags on
    stdout and exits with status 0 (absl exits with 1), so that ``--help`` is a successful command."""
    if any(a in _HELP for a in sys.argv[1:]):
        module = sys.modules["__main__"]
        print((module.__doc__ or "").strip())
        print("\nFlags:")
        print(flags.FLAGS.module_help(module))
        sys.exit(0)
    app.run(main)
