"""lcr_tf.training.precision: bfloat16 chosen from the hardware's features (never assumed), and the trainer's
progress lines (lcr_tf.training.callbacks.ProgressMeter) on a fake clock."""

import pytest

from lcr_tf.contracts.cli import format_duration
from lcr_tf.training import precision
from lcr_tf.training.callbacks import ProgressMeter


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t: none\n")
    return str(path)


def test_cpu_flags_of_the_first_processor(tmp_path):
    assert precision.cpu_flags(_cpuinfo(tmp_path, "fpu sse2 avx512_bf16")) == {"fpu", "sse2", "avx512_bf16"}
    assert precision.cpu_flags(str(tmp_path / "missing")) == frozenset()


@pytest.mark.parametrize("flags, expected", [
    ("fpu avx2 avx512f avx512_bf16", "mixed_bfloat16"),
    ("fpu avx2 amx_tile amx_bf16", "mixed_bfloat16"),
    ("fpu avx2 avx512f avx512_vnni", "float32"),   # AVX-512 without its bfloat16 extension
])
def test_auto_follows_the_cpu_flags(tmp_path, flags, expected):
    policy, why = precision.resolve("auto", cpuinfo=_cpuinfo(tmp_path, flags), gpus=())
    assert policy == expected and why.startswith("auto: CPU has")


def test_auto_without_cpuinfo_is_float32(tmp_path):
    policy, why = precision.resolve("auto", cpuinfo=str(tmp_path / "missing"), gpus=())
    assert policy == "float32" and "not readable" in why


def test_gpus_decide_when_present(tmp_path):
    bf16_cpu = _cpuinfo(tmp_path, "avx512_bf16")
    assert precision.resolve("auto", cpuinfo=bf16_cpu, gpus=((8, 0), (9, 0)))[0] == "mixed_bfloat16"
    assert precision.resolve("auto", cpuinfo=bf16_cpu, gpus=((7, 5),))[0] == "float32"
    assert precision.resolve("auto", cpuinfo=bf16_cpu, gpus=((8, 6), (7, 0)))[0] == "float32"


def test_explicit_policies_pass_and_others_fail():
    for policy in precision.POLICIES:
        assert precision.resolve(policy) == (policy, "as asked")
    with pytest.raises(ValueError, match="precision must be"):
        precision.resolve("bfloat16")


def test_format_duration():
    assert [format_duration(s) for s in (0, 42.4, 185, 3725)] == ["0 s", "42 s", "3 min 05 s", "1 h 02 min"]


def test_progress_lines_every_interval_and_at_the_last_step():
    now = [100.0]
    lines = []
    meter = ProgressMeter(num_steps=10, images_per_step=4, every_s=30.0, write=lines.append, clock=lambda: now[0])
    meter.start(0)
    for step in range(1, 11):
        now[0] += 10.0  # 10 s per step: 0.4 images/s
        meter.update(step, {"total_loss": 2.0 / step, "classification": 0.5, "other": 1.0})
    # Due after 30 s (steps 3, 6, 9) and at the last step.
    assert len(lines) == 4
    assert lines[0] == "step 3/10 (30%), 0.4 images/s, total_loss 0.6667, classification 0.5000, 1 min 10 s left"
    assert lines[-1].startswith("step 10/10 (100%), 0.4 images/s") and "left" not in lines[-1]


def test_progress_can_be_switched_off():
    lines = []
    meter = ProgressMeter(num_steps=2, images_per_step=1, every_s=0.0, write=lines.append, clock=lambda: 0.0)
    meter.start(0)
    meter.update(1)
    meter.update(2)
    assert lines == []
