"""lcr_tf.contracts.console: the libraries' start-up notices held back from a command and its child
processes, errors kept, everything back with TF_CPP_MIN_LOG_LEVEL=0 or --verbose."""

import os
import subprocess
import sys
import textwrap

import pytest

from lcr_tf.contracts import console

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Lines as TensorFlow 2.21 and Beam 2.77 print them on a machine without a GPU (copied from their output).
NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796456696.250016    6129 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. "
    "To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796456696.251213    6129 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.",
    "E0000 00:00:1796456710.977055    6129 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1796456696.428145    6129 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX512_FP16 AVX_VNNI AMX_TILE "
    "AMX_INT8 AMX_BF16 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.",
    "WARNING:root:apitools not found, and bigquery client libraries are not available despite the import not "
    "raising an ImportError.",
    "W0000 00:00:1796456710.977055    6129 some_kernel.cc:12] a C++ warning",
]

# What a user must still see.
KEPT = [
    "E0000 00:00:1796456710.977055    6129 tfrecord_reader.cc:40] DATA_LOSS: corrupted record at 1234",
    "F0000 00:00:1796456710.977055    6129 check.cc:1] Check failed: x > 0",
    "Traceback (most recent call last):",
    "lcr_tf.train: error: data/train-00000.tfrecord: no such file",
    "[training] step 6/6 (100%), 23.4 images/s",
    "WARNING:root:something else",
    "",
]


@pytest.mark.parametrize("line", NOTICES)
def test_start_up_notices_are_recognised(line):
    assert console.is_notice(line)


@pytest.mark.parametrize("line", KEPT)
def test_errors_and_own_lines_are_kept(line):
    assert not console.is_notice(line)


def test_the_indented_lines_of_a_held_back_record_go_with_it():
    """A multi-line C++ warning (as TensorFlow writes a kernel it could not find) is held back whole; an
    indented line under a kept line is kept."""
    lines = ["W0000 00:00:1796457000.100000    6129 op_kernel.cc:1857] No OpKernel was registered to support "
             "Op 'FusedBatchNormV3' used by {{node bn}} with these attrs: [T=DT_HALF]",
             "\tRegistered devices: [CPU]", "  device='CPU'; T in [DT_FLOAT]; U in [DT_FLOAT]",
             "Traceback (most recent call last):", '  File "train.py", line 3, in <module>',
             "ValueError: bad", "  an indented line of the command's own"]
    shown = console.NoticeFilter()
    assert [line for line in lines if shown.keep(line)] == lines[3:]


# A command that starts the filter, then writes notices and its own lines from Python, from C-level
# writes to descriptor 2 and from a child process, and ends with an error line just before it exits.
_PROGRAM = textwrap.dedent('''
    import os, subprocess, sys
    from lcr_tf.contracts import console
    print("filtered", console.quiet(verbose="--verbose" in sys.argv), flush=True)
    notices, kept = {notices!r}, {kept!r}
    for line in notices:
        print(line, file=sys.stderr)
    os.write(2, (notices[1] + "\\n" + kept[0] + "\\n").encode())
    child = "import os, sys; os.write(2, sys.argv[1].encode()); os.write(2, sys.argv[2].encode())"
    subprocess.run([sys.executable, "-c", child, notices[3] + "\\n", "child line\\n"], check=True)
    print("lcr_tf.x: error: the last line", file=sys.stderr)
    sys.exit(1)
''')


def _run_program(tmp_path, *args, **env):
    path = tmp_path / "program.py"
    path.write_text(_PROGRAM.format(notices=NOTICES, kept=KEPT))
    environ = {k: v for k, v in os.environ.items() if k != console.TF_LOG_LEVEL_ENV}
    environ.update(PYTHONPATH=_REPO, **env)
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, env=environ,
                          timeout=60)


def test_a_command_and_its_children_print_no_notice_and_every_error(tmp_path):
    proc = _run_program(tmp_path)
    assert proc.returncode == 1 and proc.stdout == "filtered True\n"
    lines = proc.stderr.splitlines()
    assert lines == [KEPT[0], "child line", "lcr_tf.x: error: the last line"], proc.stderr


@pytest.mark.parametrize("args, env", [(("--verbose",), {}), ((), {"TF_CPP_MIN_LOG_LEVEL": "0"})])
def test_verbose_or_tensorflows_own_setting_bring_everything_back(tmp_path, args, env):
    proc = _run_program(tmp_path, *args, **env)
    assert proc.returncode == 1 and proc.stdout == "filtered False\n"
    for line in NOTICES + [KEPT[0], "child line", "lcr_tf.x: error: the last line"]:
        assert line in proc.stderr


def test_tensorflows_usual_quiet_setting_still_filters(tmp_path):
    """TF_CPP_MIN_LOG_LEVEL=2, often set in a user's shell, does not hold back what TensorFlow 2.21 prints
    before its logging starts; the filter does."""
    proc = _run_program(tmp_path, TF_CPP_MIN_LOG_LEVEL="2")
    assert proc.stdout == "filtered True\n" and "cuInit" not in proc.stderr and KEPT[0] in proc.stderr


def test_only_verbose_or_log_everything_turn_the_filter_off(monkeypatch):
    monkeypatch.delenv(console.TF_LOG_LEVEL_ENV, raising=False)
    assert console.wanted() and not console.wanted(verbose=True)
    for level, filtered in (("0", False), (" 0 ", False), ("1", True), ("2", True), ("3", True)):
        monkeypatch.setenv(console.TF_LOG_LEVEL_ENV, level)
        assert console.wanted() == filtered, level


def test_importing_the_package_filters_nothing():
    """Only ``python -m`` commands filter: a library user's process keeps its standard error as it is."""
    code = "import lcr_tf, beam_jobs; from lcr_tf.contracts import console; print(console._ACTIVE is None)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=_REPO, timeout=60)
    assert proc.stdout.strip() == "True", proc.stderr


def test_commands_print_no_notice_even_at_import(tmp_path):
    """``python -m lcr_tf.train`` imports TensorFlow at start-up and ``beam_jobs.build_tfrecords`` imports
    Beam: their --help has none of the notices that come with those imports."""
    from conftest import assert_no_library_notices
    env = {k: v for k, v in os.environ.items() if k != console.TF_LOG_LEVEL_ENV}
    for module in ("lcr_tf.train", "beam_jobs.build_tfrecords"):
        proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                              cwd=_REPO, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert_no_library_notices(proc.stdout, proc.stderr)
