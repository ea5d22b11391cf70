r"""Anchor-poses from a 3D pose corpus: K-means over oriented poses (paper Sec 4.1), 2K anchors (Sec 4.2).

    python -m beam_jobs.anchor_poses --poses=poses.npz --num_anchors=200 --output=anchors.npz \
        [--views=20] [--seed=0] [--elevation_range=-10,40] [--max_poses=N] [--figure=anchors.png]
    python -m beam_jobs.anchor_poses --poses_from_records='muco/train-*.tfrecord' --num_anchors=200 \
        --output=anchors_mupots14.npz [--mocap_only] [the options above]

Steps: load the corpus (:func:`lcr_tf.poses.pose_corpus.load`; with ``--poses_from_records``, the 3D poses
of every person of the TFRecord shards, in the records' skeleton: :func:`lcr_tf.data.record_poses.
poses_from_records`, the way to anchor-poses of a skeleton that has no MoCap corpus, e.g. ``mupots14``
records of MuCo-3DHP; the anchors' metadata then names that skeleton); optionally keep a seeded random subset of
``--max_poses`` poses; turn every pose to ``--views`` random camera views of its own (azimuth all round,
elevation uniform in ``--elevation_range``) and re-centre; K-means on the flattened poses
(:func:`lcr_tf.poses.anchors.kmeans`); build the K full-body and K upper-body anchors
(:func:`lcr_tf.poses.anchors.from_centres`, class layout in :mod:`lcr_tf.poses.anchors`); write ``anchors.npz`` and
its JSON sidecar, and a PNG sheet of the anchors (:func:`lcr_tf.poses.viz.plot_anchors`).

This is a plain program, not a Beam pipeline, although it sits with the Beam jobs: K-means is a global
iterative computation in which every iteration needs all points, so it gains nothing from Beam's
element-wise parallelism; scikit-learn's Lloyd iterations already use the machine's cores.

Deterministic: the same inputs, flags and seed give identical arrays (the sidecar differs only in its
timings).
"""

from __future__ import annotations

import os
import time
from typing import Optional, Tuple

import numpy as np
from absl import flags

from lcr_tf.contracts import cli, geometry
from lcr_tf.poses import anchors as anchors_lib
from lcr_tf.poses import pose_corpus

FLAGS = flags.FLAGS


def define_flags():
    """Defines the command-line flags; called only when run as a program, so importing this module
    (tests, other programs) never clashes with flags of the same name defined elsewhere."""
    flags.DEFINE_string("poses", None, "Input 3D pose corpus (poses.npz written by "
                        "beam_jobs.mocap_poses, with its JSON sidecar). Exactly one of --poses and "
                        "--poses_from_records.")
    flags.DEFINE_string("poses_from_records", None, "TFRecord shards (a glob or comma-separated globs, "
                        "beam_jobs.build_tfrecords output): cluster the 3D poses of their people, in the "
                        "records' skeleton (e.g. mupots14), instead of a --poses corpus.")
    flags.DEFINE_boolean("mocap_only", False, "With --poses_from_records: only the people whose 3D the "
                         "dataset gave (not pseudo ground truth).")
    flags.DEFINE_integer("num_anchors", None, "K, the number of full-body anchor-poses (the classifier "
                         "gets 2K+1 classes). The paper uses 100 on Human3.6M and 200 in the wild.",
                         lower_bound=1)
    flags.DEFINE_string("output", None, "Output anchors.npz; its sidecar anchors.json is written "
                        "beside it.")
    flags.DEFINE_integer("views", 20, "Random camera views per corpus pose (V); K-means runs on N x V "
                         "poses.", lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Seed of every random choice (subset, views, K-means seeding).",
                         lower_bound=0)
    flags.DEFINE_string("elevation_range", "{},{}".format(*geometry.DEFAULT_ELEVATION_RANGE_DEG),
                        "LO,HI camera elevation in degrees (positive: camera above, looking down), "
                        "drawn uniformly per view; azimuth is uniform over the full circle.")
    flags.DEFINE_integer("max_poses", None, "Use at most this many corpus poses (a seeded random "
                         "subset).", lower_bound=1)
    flags.DEFINE_string("figure", None, "PNG sheet of the anchors. Default: the output path with .png "
                        "(anchors.npz -> anchors.png); an empty value writes no figure.")
    flags.DEFINE_integer("max_iter", 300, "Maximum K-means (Lloyd) iterations.", lower_bound=1)
    flags.DEFINE_float("tol", 1e-4, "K-means relative tolerance on the centre shift (scikit-learn's "
                       "tol).", lower_bound=0.0)
    flags.DEFINE_integer("init_sample", 100_000, "Run the k-means++ seeding on a seeded subset of this "
                         "many oriented poses (0: on all of them). For 10^6 poses and K=200 on 2 cores, "
                         "seeding on all takes 30-80 s against 4 s on 10^5, for the same final inertia; "
                         "see benchmarks/bench_anchor_poses.py.", lower_bound=0)
    flags.DEFINE_integer("threads", 2, "OpenMP threads for K-means. One or two keep runs bit-identical; "
                         "more are faster but may differ in the last bits from run to run (0: all "
                         "cores).", lower_bound=0)

def parse_range(text: str) -> Tuple[float, float]:
    """"LO,HI" -> (LO, HI) degrees, with -90 <= LO <= HI <= 90."""
    parts = text.split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--elevation_range must be LO,HI in degrees, got {text!r}") from None
    if not -90.0 <= lo <= hi <= 90.0:
        raise ValueError(f"--elevation_range needs -90 <= LO <= HI <= 90, got {text!r}")
    return lo, hi


def default_figure_path(output: str) -> str:
    return os.path.splitext(output)[0] + ".png"


def run(poses: Optional[str], num_anchors: int, output: str, views: int = 20, seed: int = 0,
        elevation_range_deg: Tuple[float, float] = geometry.DEFAULT_ELEVATION_RANGE_DEG,
        max_poses: Optional[int] = None, figure: Optional[str] = None, max_iter: int = 300,
        tol: float = 1e-4, init_sample: Optional[int] = 100_000, threads: Optional[int] = 2,
        verbose: bool = True, poses_from_records: Optional[str] = None,
        mocap_only: bool = False) -> anchors_lib.AnchorSet:
    """Computes the anchor-poses of the corpus ``poses`` (or of the people of the shards
    ``poses_from_records``: exactly one of the two) and writes ``output`` (+ sidecar, + figure).

    Args:
      mocap_only: with ``poses_from_records``, only the people whose 3D the dataset gave.
      figure: PNG path; None for :func:`default_figure_path`, "" for no figure.
      init_sample: k-means++ subsample size, None or 0 for all oriented poses.
      threads: OpenMP threads for K-means, None or 0 for scikit-learn's default.
    Raises:
      FileNotFoundError / ValueError: a missing or malformed corpus (named), K larger than the number of
        oriented poses.
    """
    t0 = time.perf_counter()
    if (poses is None) == (poses_from_records is None):
        raise ValueError("give exactly one of --poses and --poses_from_records")
    if poses_from_records is not None:
        from lcr_tf.data import record_poses  # TensorFlow only for records
        corpus = record_poses.poses_from_records(poses_from_records, mocap_only)
        poses = poses_from_records
    else:
        corpus = pose_corpus.load(poses)
    n_total = len(corpus)
    poses3d = corpus.poses3d
    if max_poses is not None and max_poses < n_total:
        rng = np.random.default_rng(anchors_lib.seed_stream(seed, "subsample"))
        poses3d = poses3d[np.sort(rng.choice(n_total, size=max_poses, replace=False))]
    n_used = poses3d.shape[0]
    if num_anchors > n_used * views:
        raise ValueError(f"--num_anchors={num_anchors} exceeds the number of oriented poses: {poses} gives "
                         f"{n_used} poses x {views} views = {n_used * views}")
    t_load = time.perf_counter() - t0
    anchor_set = anchors_lib.cluster_poses(
        poses3d, num_anchors, views, seed, skeleton=corpus.skeleton, elevation_range_deg=elevation_range_deg,
        max_iter=max_iter, tol=tol, init_sample=init_sample or None, n_threads=threads or None,
        metadata=dict(corpus=dict(path=poses, num_poses=n_total, num_used=n_used, skeleton=corpus.skeleton.name,
                                  **({"source": "records"} if poses_from_records is not None else {})),
                      max_poses=max_poses))
    anchor_set.metadata["timing_s"]["load"] = round(t_load, 3)
    anchor_set.metadata["timing_s"]["total"] = round(time.perf_counter() - t0, 3)
    anchor_set.save(output)
    if figure is None:
        figure = default_figure_path(output)
    if figure:
        os.makedirs(os.path.dirname(os.path.abspath(figure)), exist_ok=True)
        from lcr_tf.poses import viz  # matplotlib only when a figure is asked for
        viz.plot_anchors(anchor_set, figure)
    if verbose:
        meta = anchor_set.metadata
        sizes = np.asarray(meta["cluster_sizes"])
        print(f"anchor-poses: K={num_anchors} ({anchor_set.num_classes} classes), "
              f"{n_used} poses x {views} views = {n_used * views} oriented poses, "
              f"{meta['timing_s']['total']:.1f} s (K-means {meta['timing_s']['kmeans']:.1f} s, "
              f"{meta['kmeans']['iterations']} iterations)")
        print(f"  inertia {meta['kmeans']['inertia_m2']:.6g} m^2 (RMS joint distance to the anchor "
              f"{100 * meta['kmeans']['rms_joint_distance_m']:.1f} cm); cluster sizes: smallest "
              f"{sizes.min()} (anchor {sizes.argmin()}), largest {sizes.max()} (anchor {sizes.argmax()})")
        print(f"  wrote {output}" + (f" and {figure}" if figure else ""))
    return anchor_set


def main(argv):
    try:
        elevation = parse_range(FLAGS.elevation_range)
        run(FLAGS.poses, FLAGS.num_anchors, FLAGS.output, views=FLAGS.views, seed=FLAGS.seed,
            elevation_range_deg=elevation, max_poses=FLAGS.max_poses, figure=FLAGS.figure,
            max_iter=FLAGS.max_iter, tol=FLAGS.tol, init_sample=FLAGS.init_sample, threads=FLAGS.threads,
            poses_from_records=FLAGS.poses_from_records, mocap_only=FLAGS.mocap_only)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"anchor_poses: error: {e}") from None


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["num_anchors", "output"])
    cli.run(main)
