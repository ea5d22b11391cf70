"""Which precision a trained model serves fastest on this machine: ``python -m lcr_tf.export --precision=auto``.

Native bfloat16 is a property of the hardware (:mod:`lcr_tf.training.precision`); whether it pays is a property of
the model: a narrow network can leave the bfloat16 units idle and pay only the casts. So where the
hardware has it, both policies are loaded and timed, and the faster is kept.
"""

from __future__ import annotations

import statistics
import time
from typing import Tuple

import tensorflow as tf

from lcr_tf.serving import inference
from lcr_tf.training import precision as precision_lib

#: Timed calls per policy when ``auto`` measures which one this machine serves faster.
AUTO_TIMING_CALLS = 3


def inference_seconds(loaded: inference.LoadedModel, calls: int = AUTO_TIMING_CALLS,
                      clock=time.perf_counter) -> float:
    """Median wall-clock seconds of one inference call of ``loaded.model`` (inside ``tf.function``: trunk,
    RPN, proposals, RoI head and regression; the post-processing after it runs in float32 whatever the
    policy) on one fixed random image of the model's side ``config.image_size``, after a warm-up call that
    also traces it (``clock``: seconds, as ``time.perf_counter``)."""
    size = loaded.config.image_size
    image = tf.random.stateless_uniform([1, size, size, 3], seed=[0, 0], maxval=255.0)
    call = tf.function(lambda x: loaded.model(x, training=False))

    def once() -> float:
        start = clock()
        tf.nest.map_structure(lambda t: t.numpy(), call(image))
        return clock() - start

    once()
    return statistics.median(once() for _ in range(max(1, int(calls))))


def load(model_dir: str, precision: str = precision_lib.AUTO, fold_batch_norm: bool = True
         ) -> Tuple[inference.LoadedModel, str]:
    """The model of ``model_dir`` in ``precision`` as the export takes it (``auto``: :func:`load_fastest`;
    a policy: :func:`lcr_tf.training.precision.resolve`, "as asked"), and why in words."""
    if precision == precision_lib.AUTO:
        return load_fastest(model_dir, fold_batch_norm)
    policy, why = precision_lib.resolve(precision)
    return inference.load_model(model_dir, policy, fold_batch_norm), why


def load_fastest(model_dir: str, fold_batch_norm: bool = True, calls: int = AUTO_TIMING_CALLS,
                 cpuinfo: str = precision_lib.CPUINFO, gpus=None) -> Tuple[inference.LoadedModel, str]:
    """The model of ``model_dir`` (:func:`lcr_tf.serving.inference.load_model`) in the policy this machine
    serves it fastest, and why in words.

    Where the hardware lacks native bfloat16 (:func:`lcr_tf.training.precision.fast_bfloat16`: ``cpuinfo``,
    ``gpus``) TensorFlow would emulate it, slower than float32: float32, untimed. Where it has it, both
    policies are loaded and timed (:func:`inference_seconds`, ``calls`` calls each), and the faster is kept.
    """
    native, reason = precision_lib.fast_bfloat16(cpuinfo, gpus)
    if not native:
        return (inference.load_model(model_dir, "float32", fold_batch_norm),
                f"auto: {reason}, so bfloat16 would be emulated; not timed")
    timed = {}
    for policy in ("mixed_bfloat16", "float32"):
        loaded = inference.load_model(model_dir, policy, fold_batch_norm)
        timed[policy] = (inference_seconds(loaded, calls), loaded)
    best = min(timed, key=lambda p: timed[p][0])
    measured = ", ".join(f"{p} {1e3 * seconds:.1f} ms" for p, (seconds, _) in timed.items())
    return timed[best][1], f"auto: {reason}; measured per inference call here: {measured}"
