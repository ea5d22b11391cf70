"""A trained model served in float32 and in mixed_bfloat16, side by side: latency and agreement.

    python benchmarks/bench_serving_precision.py --model_dir=demo_output/model \
        --images='demo_output/heldout_images/*.jpg' [--repeats 5] [--min_score 0.5]

Exports the run folder twice (``lcr_tf.serving.export`` of ``load_model(..., precision)``), serves every
image through each ``serving_default`` and prints, per precision, the median latency per image over
``--repeats`` passes, and how the bfloat16 detections compare with the float32 ones: people scoring at
least ``--min_score`` in each, people matched one to one (Hungarian on the mean 2D joint distance), and
the mean / max joint distance in pixels and the largest score difference among matched people.
"""

from __future__ import annotations

import glob
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from benchmarks.timing import median_time  # noqa: E402
from lcr_tf.contracts import (
    cli,  # noqa: E402
    serving,  # noqa: E402
)
from lcr_tf.training import precision as precision_lib  # noqa: E402

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("model_dir", None, "Training run folder (config.json + weights).")
    flags.DEFINE_string("images", None, "Glob of the images to serve (JPEG or PNG).")
    flags.DEFINE_integer("repeats", 5, "Timed passes over the images.")
    flags.DEFINE_float("min_score", 0.5, "Detections compared: those scoring at least this.")


def people(out, i: int, min_score: float):
    keep = np.asarray(out[serving.SCORE][i]) >= min_score
    return np.asarray(out[serving.SCORE][i])[keep], np.asarray(out[serving.POSE2D][i])[keep]


def main(argv) -> int:
    import tensorflow as tf
    from scipy.optimize import linear_sum_assignment

    from lcr_tf.serving import export as export_lib
    from lcr_tf.serving import inference

    paths = sorted(glob.glob(FLAGS.images))
    if not paths:
        print(f"error: no image matches {FLAGS.images}", file=sys.stderr)
        return 2
    data = [open(p, "rb").read() for p in paths]
    native, why = precision_lib.fast_bfloat16()
    print(f"{len(paths)} images; bfloat16 native here: {native} ({why})")
    outputs, times = {}, {}
    with tempfile.TemporaryDirectory() as root:
        for policy in ("float32", "mixed_bfloat16"):
            path = export_lib.export(inference.load_model(FLAGS.model_dir, policy), os.path.join(root, policy))
            serve = tf.saved_model.load(path).signatures[serving.SERVING_DEFAULT]
            outputs[policy] = [{k: v.numpy()[0] for k, v in serve(images=tf.constant([d])).items()} for d in data]

            def one_pass():
                for d in data:
                    serve(images=tf.constant([d]))[serving.NUM_DETECTIONS].numpy()

            times[policy] = median_time(one_pass, FLAGS.repeats, warmup=True) / len(data)
    for policy, seconds in times.items():
        print(f"  {policy:15s} serving_default {1e3 * seconds:8.1f} ms per image (median of {FLAGS.repeats})")
    print(f"  float32 / mixed_bfloat16 time: {times['float32'] / times['mixed_bfloat16']:.2f}x")
    counts, dists, score_gaps, unmatched = [0, 0], [], [], 0
    for a, b in zip(outputs["float32"], outputs["mixed_bfloat16"]):
        sa, pa = people({k: [v] for k, v in a.items()}, 0, FLAGS.min_score)
        sb, pb = people({k: [v] for k, v in b.items()}, 0, FLAGS.min_score)
        counts[0] += len(sa)
        counts[1] += len(sb)
        if len(sa) and len(sb):
            cost = np.linalg.norm(pa[:, None] - pb[None], axis=-1).mean(-1)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                dists.append(np.linalg.norm(pa[r] - pb[c], axis=-1))
                score_gaps.append(abs(float(sa[r]) - float(sb[c])))
            unmatched += abs(len(sa) - len(sb))
        else:
            unmatched += len(sa) + len(sb)
    print(f"  people scoring >= {FLAGS.min_score}: float32 {counts[0]}, mixed_bfloat16 {counts[1]}, "
          f"matched {len(dists)}, unmatched {unmatched}")
    if dists:
        d = np.concatenate(dists)
        print(f"  matched joints: mean {d.mean():.3f} px, median {np.median(d):.3f} px, max {d.max():.3f} px; "
              f"largest score difference {max(score_gaps):.4f}")
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main, required=("model_dir", "images"))
