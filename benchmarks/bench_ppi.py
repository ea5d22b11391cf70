"""Times the PPI on synthetic proposals: N RoIs x C classes around a few people, NumPy and TensorFlow.

Prints the median wall time of several runs per mode, the number of candidates and of detections.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl import flags

from benchmarks.timing import median_time
from lcr_tf.contracts import cli
from lcr_tf.postprocess import PPIParams, ppi, ppi_tf

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_rois", 300, "RoIs per image.")
flags.DEFINE_integer("num_classes", 400, "Foreground classes C (2K).")
flags.DEFINE_integer("num_people", 5, "People the RoIs are drawn around.")
flags.DEFINE_integer("repeats", 7, "Timed runs per measurement (after one warm-up).")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic proposals.")


def synthetic_proposals(num_rois, num_classes, num_people, seed, num_joints=13):
    """Release-layout proposals: scores (N, C+1) peaked on a few classes, boxes, pose2d, pose3d."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(80, 560, (num_people, 2))
    owner = rng.integers(0, num_people, num_rois)
    roi_centre = centres[owner] + rng.normal(0, 15, (num_rois, 2))
    size = rng.uniform(80, 200, (num_rois, 2))
    boxes = np.concatenate([roi_centre - size / 2, roi_centre + size / 2], 1)
    logits = rng.normal(0, 1, (num_rois, num_classes + 1))
    logits[:, 0] += 2.0
    logits[np.arange(num_rois)[:, None], 1 + rng.integers(0, num_classes, (num_rois, 5))] += 4.0
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    person3d = rng.normal(0, 0.25, (num_people, num_joints, 3))
    pose3d = person3d[owner][:, None] + rng.normal(0, 0.1, (num_rois, num_classes, num_joints, 3))
    pose2d = roi_centre[:, None, None] + 180 * pose3d[..., :2]
    return scores, boxes, pose2d.astype(np.float32), pose3d.astype(np.float32)


def main(argv):
    del argv
    scores, boxes, pose2d, pose3d = synthetic_proposals(FLAGS.num_rois, FLAGS.num_classes, FLAGS.num_people,
                                                        FLAGS.seed)
    params = PPIParams()
    threshold = params.resolve("paper", FLAGS.num_classes).score_threshold
    num_candidates = min(int(np.sum(scores[:, 1:] >= threshold)), params.max_candidates)
    print(f"{FLAGS.num_rois} RoIs x {FLAGS.num_classes} classes, {FLAGS.num_people} people, "
          f"{num_candidates} candidates (threshold {threshold:.2e}, cap {params.max_candidates})")
    args = tuple(tf.constant(a, tf.float32) for a in (scores, boxes, pose2d, pose3d))
    for mode in ("paper", "official", "nms"):
        detections = ppi(scores, boxes, pose2d, pose3d, mode=mode, params=params)
        t_np = median_time(lambda: ppi(scores, boxes, pose2d, pose3d, mode=mode, params=params), FLAGS.repeats,
                           warmup=True)
        graph = tf.function(lambda s, b, p2, p3, m=mode: ppi_tf.ppi_tf(s, b, p2, p3, params=params, mode=m))
        out = graph(*args)
        t_tf = median_time(lambda: graph(*args)["num_detections"].numpy(), FLAGS.repeats, warmup=True)
        print(f"mode={mode:8s} detections numpy={len(detections)} tf={int(out['num_detections'])}  "
              f"median numpy {1e3 * t_np:8.2f} ms   tf (tf.function, CPU) {1e3 * t_tf:8.2f} ms")


if __name__ == "__main__":
    cli.run(main)
