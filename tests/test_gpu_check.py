"""benchmarks/gpu_check.py: its command line only (the check itself is run by hand on a GPU machine)."""

import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "gpu_check.py")


def test_help_lists_every_flag():
    proc = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for flag in ("--budget_s", "--output", "--work_dir", "--steps", "--tiny_steps", "--skip_resnet", "--skip_tiny"):
        assert flag in proc.stdout, flag
    assert "python benchmarks/gpu_check.py" in proc.stdout
    assert "--serve" not in proc.stdout  # the child process's flags stay hidden


def test_unknown_flag_is_refused():
    proc = subprocess.run([sys.executable, SCRIPT, "--no_such_flag"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--no_such_flag" in proc.stderr
