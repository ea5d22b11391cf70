r"""Speed of the pseudo ground-truth search (:mod:`lcr_tf.poses.pseudo_gt`) against the machine's matmul peak.

Builds a database of ``num_poses x num_views`` projected poses (10^6 by default), searches batches of
queries with random annotated masks, and prints queries per second (median of ``--runs`` runs) and the
fraction of this machine's float32 matrix-multiply throughput that the search reaches. The peak is
measured in the same run (a square ``np.matmul``, median of several runs). The search's useful flops
are ``2 Q M F`` for Q queries, M candidates and F = 2J + J(J-1)/2 feature rows (104 for 13 joints):
the coordinates' dot products plus the pair sums (module docstring of :mod:`lcr_tf.poses.pseudo_gt`).

Poses come from ``--poses=poses.npz`` (a :mod:`lcr_tf.poses.pose_corpus` file) or are random perturbations of
a few template poses (the content does not matter for speed). Example::

    python -m benchmarks.bench_pseudo_gt --num_poses=100000 --num_views=10 \
        --chunk_sizes=1024,2048,4096 --batch_sizes=128,256,512
"""

from __future__ import annotations

import os
import time

import numpy as np
from absl import flags

from lcr_tf.contracts import cli
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.poses import pose_corpus, pseudo_gt

FLAGS = flags.FLAGS
flags.DEFINE_string("poses", None, "Corpus (poses.npz); default: random template poses.")
flags.DEFINE_integer("num_poses", 100_000, "Corpus poses used (a seeded subset of --poses if smaller).")
flags.DEFINE_integer("num_views", 10, "Views per pose.")
flags.DEFINE_list("chunk_sizes", ["2048"], "Chunk sizes to try.")
flags.DEFINE_list("batch_sizes", ["256"], "Batch sizes to try.")
flags.DEFINE_integer("queries", 1024, "Queries per timed run.")
flags.DEFINE_float("visible_prob", 0.8, "Chance that a joint is annotated (at least min_joints are).")
flags.DEFINE_integer("runs", 5, "Timed runs (the median is reported).")
flags.DEFINE_integer("peak_size", 2048, "Side of the square matmul that measures the peak.")
flags.DEFINE_bool("full_masks", True, "Also time queries with every joint annotated (shared-mask path).")
flags.DEFINE_integer("seed", 0, "Seed of the corpus, the views and the queries.")

# LCR-13 templates in metres, camera axes (y down), before centring: standing, walking, sitting,
# arms raised.
_TEMPLATES = np.array([
    [[-0.10, 0.90, 0.0], [0.10, 0.90, 0.0], [-0.10, 0.48, 0.0], [0.10, 0.48, 0.0], [-0.10, 0.0, 0.0],
     [0.10, 0.0, 0.0], [-0.22, 0.02, 0.0], [0.22, 0.02, 0.0], [-0.22, -0.26, 0.0], [0.22, -0.26, 0.0],
     [-0.19, -0.52, 0.0], [0.19, -0.52, 0.0], [0.0, -0.72, 0.0]],
    [[-0.10, 0.88, -0.25], [0.10, 0.88, 0.30], [-0.10, 0.46, -0.12], [0.10, 0.45, 0.18],
     [-0.10, 0.0, 0.0], [0.10, 0.0, 0.0], [-0.24, 0.00, 0.22], [0.24, 0.00, -0.20],
     [-0.22, -0.26, 0.10], [0.22, -0.26, -0.10], [-0.19, -0.52, 0.0], [0.19, -0.52, 0.0],
     [0.0, -0.72, 0.02]],
    [[-0.12, 0.45, -0.45], [0.12, 0.45, -0.45], [-0.12, 0.00, -0.45], [0.12, 0.00, -0.45],
     [-0.10, 0.0, 0.0], [0.10, 0.0, 0.0], [-0.20, -0.05, -0.25], [0.20, -0.05, -0.25],
     [-0.22, -0.25, -0.05], [0.22, -0.25, -0.05], [-0.19, -0.52, 0.02], [0.19, -0.52, 0.02],
     [0.0, -0.72, 0.04]],
    [[-0.12, 0.90, 0.0], [0.12, 0.90, 0.0], [-0.11, 0.48, 0.02], [0.11, 0.48, 0.02], [-0.10, 0.0, 0.0],
     [0.10, 0.0, 0.0], [-0.30, -1.02, 0.05], [0.30, -1.02, 0.05], [-0.27, -0.78, 0.03],
     [0.27, -0.78, 0.03], [-0.19, -0.52, 0.0], [0.19, -0.52, 0.0], [0.0, -0.72, 0.0]],
])


def random_poses(num_poses: int, rng: np.random.Generator) -> np.ndarray:
    """(N, 13, 3) float32 metres: templates with 4 cm joint noise and a random height scale."""
    pick = rng.integers(0, len(_TEMPLATES), num_poses)
    poses = _TEMPLATES[pick] * rng.uniform(0.85, 1.15, (num_poses, 1, 1))
    poses += rng.normal(0.0, 0.04, poses.shape)
    return skeleton_lib.centre_poses(poses).astype(np.float32)


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (Linux /proc/stat), or NaN where unavailable."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)          # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def timed_runs(fn, runs: int):
    """Runs ``fn`` ``runs`` times -> (median seconds, min seconds, cores used by other processes).

    The last figure (machine busy time minus this process's CPU time, per wall second) tells whether
    the timings were disturbed: on a 2-core machine anything near 1 halves the BLAS throughput.
    """
    times = []
    busy0, own0, wall0 = _busy_seconds(), sum(os.times()[:2]), time.perf_counter()
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    wall = time.perf_counter() - wall0
    others = (_busy_seconds() - busy0 - (sum(os.times()[:2]) - own0)) / wall
    return float(np.median(times)), float(np.min(times)), max(others, 0.0)


def matmul_peak_gflops(size: int, runs: int):
    """GFLOP/s of a float32 (size x size) @ (size x size) np.matmul (median), and the others' cores."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    seconds, _, others = timed_runs(lambda: np.matmul(a, b, out=out), runs)
    return 2.0 * size ** 3 / seconds / 1e9, others


def make_queries(db: pseudo_gt.PoseDatabase, num: int, visible_prob: float, rng: np.random.Generator):
    """Noisy database projections in pixel frames, with random masks of at least min_joints joints."""
    index = rng.integers(0, len(db), num)
    pose2d, _ = db.project(index)
    scale = rng.uniform(100.0, 400.0, (num, 1, 1))
    offset = rng.uniform(0.0, 1000.0, (num, 1, 2))
    poses2d = pose2d * scale + offset + rng.normal(0.0, 3.0, pose2d.shape)
    visible = rng.random((num, db.num_joints)) < visible_prob
    # Guarantee min_joints annotated joints: switch on the first ones of a random joint order.
    order = np.argsort(rng.random((num, db.num_joints)), axis=1)
    forced = np.zeros_like(visible)
    np.put_along_axis(forced, order[:, :db.min_joints], True, axis=1)
    return poses2d, visible | forced


def main(argv) -> None:
    del argv
    rng = np.random.default_rng(FLAGS.seed)
    if FLAGS.poses:
        poses = pose_corpus.load(FLAGS.poses, skeleton="lcr13").poses3d
        if FLAGS.num_poses < len(poses):
            poses = poses[rng.choice(len(poses), FLAGS.num_poses, replace=False)]
        source = FLAGS.poses
    else:
        poses = random_poses(FLAGS.num_poses, rng)
        source = "random template poses"
    env = {k: v for k, v in os.environ.items() if "THREADS" in k or "BLAS" in k}
    print(f"threading env: {env or 'none set'}; cpu count {os.cpu_count()}")
    peak, others = matmul_peak_gflops(FLAGS.peak_size, FLAGS.runs)
    print(f"float32 matmul peak ({FLAGS.peak_size}^2, median of {FLAGS.runs}): {peak:.1f} GFLOP/s; "
          f"other processes used {others:.2f} cores")

    j = skeleton_lib.get_skeleton("lcr13").num_joints
    useful_rows = 2 * j + j * (j - 1) // 2
    for chunk in [int(c) for c in FLAGS.chunk_sizes]:
        start = time.perf_counter()
        db = pseudo_gt.PoseDatabase(poses, num_views=FLAGS.num_views, seed=FLAGS.seed, chunk_size=chunk)
        build = time.perf_counter() - start
        print(f"database: {len(poses)} poses ({source}) x {FLAGS.num_views} views = M {len(db)}, "
              f"{db.nbytes / 2**20:.0f} MiB, built in {build:.1f} s, chunk_size {chunk}")
        poses2d, visible = make_queries(db, FLAGS.queries, FLAGS.visible_prob, rng)
        full = np.ones_like(visible)
        for batch in [int(b) for b in FLAGS.batch_sizes]:
            db.batch_size = batch
            cases = [("random masks", visible)] + ([("all annotated", full)] if FLAGS.full_masks else [])
            for name, masks in cases:
                db.search(poses2d[:batch], masks[:batch])  # warm-up
                seconds, fastest, others = timed_runs(lambda: db.search(poses2d, masks), FLAGS.runs)
                qps = FLAGS.queries / seconds
                pair_ns = seconds / FLAGS.queries / len(db) * 1e9
                line = (f"  chunk_size {chunk:5d} batch_size {batch:4d} {name}: {qps:7.1f} queries/s "
                        f"(best run {FLAGS.queries / fastest:.1f}), {pair_ns:.3f} ns per (query, candidate)")
                if name == "random masks":
                    gflops = 2.0 * FLAGS.queries * len(db) * useful_rows / seconds / 1e9
                    line += f", {gflops:5.1f} useful GFLOP/s (F={useful_rows}) = {gflops / peak:5.1%} of peak"
                else:
                    line += " (shared-mask path: one product of F=26 per pair)"
                print(f"{line}; other processes used {others:.2f} cores", flush=True)


if __name__ == "__main__":
    cli.run(main)
