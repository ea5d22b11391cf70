"""Which compute precision this machine runs fastest: detected from the hardware, never assumed.

bfloat16 pays where the hardware multiplies it natively: CPUs with AVX512-BF16 or AMX (their
bfloat16 matrix products and convolutions run several times faster than float32; see BUILD_NOTES.md,
"Precision"), and GPUs of compute capability 8.0 or more. Elsewhere TensorFlow emulates it, slower than
float32, so ``auto`` means float32 there.

``auto`` resolves to one of the Keras policies the trainer and the export take:

=================  ====================================================================================
``float32``        everything in float32
``mixed_bfloat16`` float32 variables, bfloat16 compute (no loss scaling: bfloat16 has float32's range)
``mixed_float16``  float32 variables, float16 compute with dynamic loss scaling (GPUs); never chosen by
                   ``auto``
=================  ====================================================================================
"""

from __future__ import annotations

import os
from typing import FrozenSet, Optional, Tuple

AUTO = "auto"
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
#: CPU feature flags (Linux ``/proc/cpuinfo`` spelling) with native bfloat16 arithmetic.
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
#: The first GPU compute capability with bfloat16 tensor cores.
BFLOAT16_GPU_CAPABILITY = (8, 0)
CPUINFO = "/proc/cpuinfo"


def cpu_flags(cpuinfo: str = CPUINFO) -> FrozenSet[str]:
    """The feature flags of the first CPU in ``cpuinfo`` (Linux format); empty where it cannot be read."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def gpu_capabilities() -> Tuple[Tuple[int, int], ...]:
    """Compute capabilities of the visible GPUs (TensorFlow's device details); () without GPU."""
    import tensorflow as tf

    found = []
    for device in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(device).get("compute_capability")
        if capability:
            found.append(tuple(int(v) for v in capability))
    return tuple(found)


def fast_bfloat16(cpuinfo: str = CPUINFO, gpus: Optional[Tuple[Tuple[int, int], ...]] = None
                  ) -> Tuple[bool, str]:
    """(whether bfloat16 compute is native here, the reason in words).

    With GPUs (``gpus``: their compute capabilities; None asks TensorFlow) the answer is theirs: every
    GPU must reach :data:`BFLOAT16_GPU_CAPABILITY`. Without, it is the CPU's :data:`BFLOAT16_CPU_FLAGS`.
    """
    if gpus is None:
        gpus = gpu_capabilities()
    if gpus:
        ok = all(tuple(c) >= BFLOAT16_GPU_CAPABILITY for c in gpus)
        shown = ", ".join(f"{a}.{b}" for a, b in gpus)
        return ok, f"GPU compute capability {shown} ({'>=' if ok else '<'} 8.0)"
    flags = cpu_flags(cpuinfo) & set(BFLOAT16_CPU_FLAGS)
    if flags:
        return True, f"CPU has {', '.join(sorted(flags))}"
    where = "" if os.path.exists(cpuinfo) else f" ({cpuinfo} not readable)"
    return False, f"CPU has none of {', '.join(BFLOAT16_CPU_FLAGS)}{where}"


def resolve(precision: str, cpuinfo: str = CPUINFO, gpus: Optional[Tuple[Tuple[int, int], ...]] = None
            ) -> Tuple[str, str]:
    """``precision`` (a policy of :data:`POLICIES` or ``auto``) -> (Keras policy, why it was chosen)."""
    if precision in POLICIES:
        return precision, "as asked"
    if precision != AUTO:
        raise ValueError(f"precision must be {AUTO!r} or one of {POLICIES}, got {precision!r}")
    native, reason = fast_bfloat16(cpuinfo, gpus)
    return ("mixed_bfloat16" if native else "float32"), f"auto: {reason}"
