"""lcr_tf.contracts.atomic_files: a file is whole or absent under its real name, also after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lcr_tf.contracts import atomic_files, npz_io

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _leftovers(folder):
    return [n for n in os.listdir(folder) if atomic_files.TEMP_INFIX in n]


def test_replacing_commits_on_success_and_keeps_the_old_file_on_error(tmp_path):
    path = str(tmp_path / "sub" / "a.json")
    atomic_files.write_json(path, {"v": 1})
    assert json.loads(open(path).read()) == {"v": 1}
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_files.replacing(path) as tmp:
            assert tmp.endswith(".json") and atomic_files.TEMP_INFIX in tmp
            with open(tmp, "w") as f:
                f.write('{"v": 2, "half')
            raise RuntimeError("disk full")
    assert json.loads(open(path).read()) == {"v": 1}
    assert _leftovers(tmp_path / "sub") == []
    # A payload that cannot be serialised fails before anything is written.
    with pytest.raises(TypeError):
        atomic_files.write_json(str(tmp_path / "b.json"), {"x": object()})
    assert not (tmp_path / "b.json").exists() and _leftovers(tmp_path) == []
    # Every extension is kept: Keras only saves weights to a name ending in ".weights.h5".
    name = atomic_files.temp_name(os.path.join("d", "final.weights.h5"))
    assert name.startswith(os.path.join("d", "final.tmp-")) and name.endswith(".weights.h5")
    atomic_files.write_bytes(str(tmp_path / "c.bin"), b"\x00\x01")
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01"


_WRITER = """
import sys
import numpy as np
from lcr_tf.contracts import npz_io
path = sys.argv[1]
big = np.arange(4_000_000, dtype=np.float64)
i = int(sys.argv[2])
while True:
    npz_io.save(path, {"x": big + i, "tag": np.array([i])}, {"tag": i})
    i += 1
"""


def test_a_killed_writer_leaves_a_whole_npz_or_none(tmp_path):
    """SIGKILL at random moments while a 32 MB .npz is rewritten in a loop: every time, the real name
    holds a complete archive (the arrays of one iteration, consistent with each other) or nothing yet."""
    rng = np.random.default_rng(0)
    path = str(tmp_path / "poses.npz")
    seen = []
    for k, delay in enumerate(rng.uniform(0.3, 1.5, size=4)):
        # Each writer numbers its iterations from its own base, so tags only grow across writers.
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, path, str(k * 1_000_000)], cwd=_REPO)
        if k == 0:
            # The kill times count from the first whole file, not from the start of a process whose
            # start-up time depends on the machine's load: every run then checks at least one archive.
            deadline = time.monotonic() + 120
            while not os.path.exists(path) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not os.path.exists(path):
            continue
        arrays, meta = npz_io.load(path, ("x", "tag"))
        tag = int(arrays["tag"][0])
        np.testing.assert_array_equal(arrays["x"][:3], np.arange(3) + tag)
        assert arrays["x"].shape == (4_000_000,) and arrays["x"][-1] == 3_999_999 + tag
        # The sidecar is written first: it is this archive's, or that of a later write killed before its
        # archive replaced this one (the next iteration, or a later writer's first).
        assert meta["tag"] == tag or meta["tag"] == tag + 1 or meta["tag"] % 1_000_000 == 0 and meta["tag"] > tag
        seen.append(tag)
        for name in _leftovers(tmp_path):
            os.remove(tmp_path / name)
    assert seen, "the first writer never finished one file"
