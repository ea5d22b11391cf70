r"""Timing of the anchor-pose clustering (beam_jobs.anchor_poses) and of K-means on 10^6 poses.

    python -m benchmarks.bench_anchor_poses [--poses=poses.npz] [--num_poses=50000] [--views=20] \
        [--num_anchors=200] [--repeats=1] [--kmeans_points=1000000] [--init_samples=100000,0]

Two parts, both printed with their parameters:

1. The job's clustering (:func:`lcr_tf.poses.anchors.cluster_poses`: orient N poses to V views, K-means with
   the job's defaults) on the corpus given by ``--poses``, or else on a synthetic human-like corpus of
   ``--num_poses`` poses (hand-made templates of standing, walking, sitting, arms up, T and bending
   poses, blended pairwise, scaled and perturbed). Median of ``--repeats`` runs (run r uses seed
   ``--seed + r``); at N x V = 10^6 a run takes minutes, so the default is one run.
2. K-means alone on ``--kmeans_points`` oriented poses, once per k-means++ seeding variant of
   ``--init_samples`` (0: seeding on all points, scikit-learn's own k-means++; M: seeding on a seeded
   subsample of M points): seeding time, total time, iterations and the final inertia, to weigh the
   speed of subsample seeding against the quality of its result.
"""

from __future__ import annotations

import platform
import time

import numpy as np
from absl import flags

from lcr_tf.contracts import cli
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.poses import anchors, pose_corpus

FLAGS = flags.FLAGS
flags.DEFINE_string("poses", None, "Corpus (poses.npz); default: a synthetic corpus of --num_poses.")
flags.DEFINE_integer("num_poses", 50_000, "Synthetic corpus size when --poses is not given.")
flags.DEFINE_integer("views", 20, "Views per pose for part 1.")
flags.DEFINE_integer("num_anchors", 200, "K.")
flags.DEFINE_integer("repeats", 1, "Runs of part 1 (the median is reported).")
flags.DEFINE_integer("kmeans_points", 1_000_000, "Oriented poses for part 2 (0 skips part 2).")
flags.DEFINE_list("init_samples", ["100000", "0"], "k-means++ seeding variants for part 2 (0 = all).")
flags.DEFINE_integer("init_sample", 100_000, "Seeding subsample of part 1 (the job's default).")
flags.DEFINE_integer("threads", 2, "OpenMP threads for K-means.")
flags.DEFINE_integer("max_iter", 300, "K-means maximum iterations.")
flags.DEFINE_integer("seed", 0, "Seed.")

# Camera axes (x right, y down, z away), metres, facing the camera: the person's right side at -x.
_LEGS = [[-0.10, 0.95, 0.0], [0.10, 0.95, 0.0], [-0.10, 0.50, 0.0], [0.10, 0.50, 0.0],
         [-0.10, 0.05, 0.0], [0.10, 0.05, 0.0]]
_TORSO = [[-0.18, -0.45, 0.0], [0.18, -0.45, 0.0], [0.0, -0.68, 0.0]]  # shoulders, head
_TEMPLATES = {
    # joints 6-9: right wrist, left wrist, right elbow, left elbow
    "standing": _LEGS + [[-0.22, 0.05, 0.0], [0.22, 0.05, 0.0], [-0.22, -0.20, 0.0],
                         [0.22, -0.20, 0.0]] + _TORSO,
    "walking": [[-0.10, 0.93, -0.30], [0.10, 0.93, 0.30], [-0.10, 0.50, -0.15], [0.10, 0.52, 0.10],
                [-0.10, 0.05, 0.0], [0.10, 0.05, 0.0], [-0.22, 0.02, 0.22], [0.22, 0.02, -0.22],
                [-0.22, -0.20, 0.10], [0.22, -0.20, -0.10]] + _TORSO,
    "sitting": [[-0.12, 0.50, -0.45], [0.12, 0.50, -0.45], [-0.12, 0.05, -0.45], [0.12, 0.05, -0.45],
                [-0.10, 0.05, 0.0], [0.10, 0.05, 0.0], [-0.18, 0.02, -0.30], [0.18, 0.02, -0.30],
                [-0.22, -0.15, -0.10], [0.22, -0.15, -0.10]] + _TORSO,
    "arms_up": _LEGS + [[-0.25, -1.00, 0.0], [0.25, -1.00, 0.0], [-0.25, -0.72, 0.0],
                        [0.25, -0.72, 0.0]] + _TORSO,
    "t_pose": _LEGS + [[-0.75, -0.45, 0.0], [0.75, -0.45, 0.0], [-0.47, -0.45, 0.0],
                       [0.47, -0.45, 0.0]] + _TORSO,
    "bending": _LEGS + [[-0.20, 0.35, -0.45], [0.20, 0.35, -0.45], [-0.22, 0.10, -0.40],
                        [0.22, 0.10, -0.40], [-0.18, -0.20, -0.35], [0.18, -0.20, -0.35],
                        [0.0, -0.35, -0.60]],
}


def synthetic_corpus(n: int, seed: int) -> np.ndarray:
    """(n, 13, 3) float32 body-centred LCR-13 poses: random template pairs blended, scaled, perturbed."""
    rng = np.random.default_rng(seed)
    templates = np.array(list(_TEMPLATES.values()), dtype=np.float64)
    a, b = rng.integers(0, len(templates), n), rng.integers(0, len(templates), n)
    w = rng.uniform(0, 1, (n, 1, 1))
    poses = (w * templates[a] + (1 - w) * templates[b]) * rng.uniform(0.85, 1.15, (n, 1, 1))
    poses += rng.normal(0, 0.04, poses.shape)
    return skeleton_lib.centre_poses(poses).astype(np.float32)


def main(argv):
    del argv
    print(f"machine: {platform.machine()} {platform.processor() or ''}; K-means threads: {FLAGS.threads}")
    if FLAGS.poses:
        poses3d = pose_corpus.load(FLAGS.poses).poses3d
        source = FLAGS.poses
    else:
        poses3d = synthetic_corpus(FLAGS.num_poses, FLAGS.seed)
        source = f"synthetic ({FLAGS.num_poses} poses from {len(_TEMPLATES)} templates)"
    n, v, k = poses3d.shape[0], FLAGS.views, FLAGS.num_anchors
    print(f"corpus: {source}; N={n}, V={v}, N x V = {n * v}, K={k}, max_iter={FLAGS.max_iter}")

    runs = []
    for r in range(FLAGS.repeats):
        t0 = time.perf_counter()
        result = anchors.cluster_poses(poses3d, k, v, FLAGS.seed + r, init_sample=FLAGS.init_sample,
                                       n_threads=FLAGS.threads, max_iter=FLAGS.max_iter)
        total = time.perf_counter() - t0
        runs.append((total, result.metadata))
        km = result.metadata["kmeans"]
        print(f"  run {r}: {total:.1f} s (orient {result.metadata['timing_s']['orient']:.1f} s, K-means "
              f"{result.metadata['timing_s']['kmeans']:.1f} s, {km['iterations']} iterations, RMS joint "
              f"distance {100 * km['rms_joint_distance_m']:.2f} cm)")
    totals = [t for t, _ in runs]
    print(f"part 1, job clustering (init_sample={FLAGS.init_sample}): median {np.median(totals):.1f} s "
          f"over {len(totals)} run(s) for {n * v} oriented poses")

    m = FLAGS.kmeans_points
    if m <= 0:
        return
    views = -(-m // n)
    x = anchors.orient_poses(poses3d, views, FLAGS.seed, "lcr13")[:m].reshape(m, -1)
    print(f"part 2, K-means alone on {m} oriented poses ({views} views per pose), K={k}:")
    from sklearn.cluster import kmeans_plusplus
    from threadpoolctl import threadpool_limits
    for text in FLAGS.init_samples:
        sample = int(text) or None
        seed_points = x if sample is None or sample >= m else x[:sample]
        with threadpool_limits(limits=FLAGS.threads, user_api="openmp"):
            t0 = time.perf_counter()
            kmeans_plusplus(seed_points, k, random_state=FLAGS.seed)
            t_seed = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, labels, inertia, n_iter = anchors.kmeans(x, k, FLAGS.seed, max_iter=FLAGS.max_iter,
                                                    init_sample=sample, n_threads=FLAGS.threads)
        t_total = time.perf_counter() - t0
        sizes = np.bincount(labels, minlength=k)
        print(f"  seeding on {'all' if sample is None else sample} points: k-means++ {t_seed:.1f} s; "
              f"K-means total {t_total:.1f} s, {n_iter} iterations "
              f"({(t_total - t_seed) / max(n_iter, 1):.2f} s each), inertia {inertia:.6g} m^2 "
              f"(RMS joint distance {100 * np.sqrt(inertia / (m * 13)):.3f} cm), cluster sizes "
              f"{sizes.min()}..{sizes.max()}")


if __name__ == "__main__":
    cli.run(main)
