"""lcr_tf.contracts.cli.run, the one way to write an entry point: --help, usage errors (exit 2), exit status."""

import os
import subprocess
import sys

import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = '''"""A tiny program: prints its flags.

    python tiny.py --name=x
"""
from absl import flags

from lcr_tf.contracts import cli

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("name", None, "Who to greet.")
    flags.DEFINE_integer("times", 1, "How often.", lower_bound=1)
    flags.DEFINE_bool("shout", False, "Upper case.")
    flags.DEFINE_string("secret", None, "Internal.")


def main(argv):
    print(("hello " + FLAGS.name).upper() if FLAGS.shout else "hello " + FLAGS.name, FLAGS.times)
    return 3 if FLAGS.secret else 0


if __name__ == "__main__":
    define_flags()
    cli.run(main, required=("name",), hidden=("secret",))
'''


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "tiny.py"
    path.write_text(_SCRIPT)
    return str(path)


def _run(script, *args):
    env = dict(os.environ, PYTHONPATH=_REPO)
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True, env=env, timeout=60)


def test_help_prints_the_docstring_and_the_flags(script):
    result = _run(script, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("A tiny program") and "python tiny.py --name=x" in result.stdout
    for text in ("--name: Who to greet.", "--times: How often.", "(default: '1')", "--[no]shout"):
        assert text in result.stdout, text
    assert "--secret" not in result.stdout and "--logtostderr" not in result.stdout  # hidden, absl's


def test_runs_main_and_returns_its_status(script):
    result = _run(script, "--name=ann", "--times=2", "--shout")
    assert result.returncode == 0 and result.stdout.strip() == "HELLO ANN 2"
    assert _run(script, "--name=ann", "--secret=x").returncode == 3


@pytest.mark.parametrize("args, message", [
    (["--name=ann", "--nosuch=1"], "unknown flag --nosuch"),
    (["--name=ann", "--times=0"], "--times"),
    (["--times=2"], "--name"),
    (["--name=ann", "extra"], "unexpected arguments ['extra']"),
])
def test_usage_errors_exit_2_naming_the_problem(script, args, message):
    result = _run(script, *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
