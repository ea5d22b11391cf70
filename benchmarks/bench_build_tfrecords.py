"""Throughput of ``beam_jobs.build_tfrecords`` on the synthetic dataset, next to decoding alone.

For each mode, runs the whole job (render + encode JPEG + decode check + convert + [pseudo-GT] + anchors +
encode Example + write shards) on the DirectRunner with 2 worker processes, at two dataset sizes N and
4N; prints the median wall time of ``--repeats`` runs at each size, the images per second, and the
marginal images per second between the two sizes (start-up cost removed: worker processes importing
TensorFlow, building the pose database). Then times decoding the written JPEGs alone, once with
``tf.io.decode_jpeg`` and once with OpenCV, and prints the ratio job time / decode time per image.

Modes:
  mocap3d    the synthetic people as rendered: exact 3D given, all joints annotated.
  pseudo_gt  the same images with the 3D withheld and only the visible joints annotated, so every person
             goes through the pseudo ground-truth search (``--corpus_poses`` x ``--views`` candidates).

    python benchmarks/bench_build_tfrecords.py [--num_images=100] [--repeats=3] [--modes=mocap3d,pseudo_gt]
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO)

from absl import flags  # noqa: E402

from beam_jobs import anchor_poses  # noqa: E402
from beam_jobs import build_tfrecords as bt  # noqa: E402
from benchmarks.timing import median_time  # noqa: E402
from lcr_tf import datasets  # noqa: E402
from lcr_tf.contracts import cli  # noqa: E402
from lcr_tf.datasets import records as records_lib  # noqa: E402
from lcr_tf.datasets.base import DatasetReader  # noqa: E402
from lcr_tf.poses import body_model  # noqa: E402

PIPELINE = ["--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]


class TwoDOnlyReader(DatasetReader):
    """The synthetic dataset with the 3D withheld and only the visible joints annotated."""

    name = "synthetic_2d"
    skeleton = "lcr13"

    def __init__(self, **options):
        super().__init__()
        self.synthetic = datasets.get_reader("synthetic", **options)

    def list_items(self):
        return self.synthetic.list_items()

    def key_name(self, key):
        return self.synthetic.key_name(key)

    def setup(self):
        self.synthetic.setup()

    def read(self, key):
        record = self.synthetic.read(key)
        for person in record.people:
            person.annotated = person.visible.copy()
            person.pose2d = np.where(person.visible[:, None], person.pose2d, np.nan)
            person.pose3d = None
        return record


def _decode_times(paths, repeats):
    import cv2
    import tensorflow as tf

    from lcr_tf.contracts import features
    blobs = [features.decode_example_numpy(raw)[features.IMAGE_ENCODED]
             for p in paths for raw in tf.data.TFRecordDataset(p).as_numpy_iterator()]
    tf.io.decode_jpeg(blobs[0], channels=3)  # warm-up
    t_tf = median_time(lambda: [tf.io.decode_jpeg(b, channels=3) for b in blobs], repeats)
    t_cv = median_time(lambda: [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in blobs],
                        repeats)
    return len(blobs), t_tf, t_cv


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer("num_images", 100, "N; the second size is 4N.")
    flags.DEFINE_integer("repeats", 3, "Runs per measurement (the median is printed).")
    flags.DEFINE_integer("size", 256, "Image height and width.")
    flags.DEFINE_integer("corpus_poses", 20000, "Poses of the body-model corpus.")
    flags.DEFINE_integer("views", 10, "Pseudo-GT views per corpus pose.")
    flags.DEFINE_integer("num_anchors", 50, "K of the anchor set.")
    flags.DEFINE_integer("num_shards", 4, "Output shards.")
    flags.DEFINE_string("modes", "mocap3d,pseudo_gt", "Comma-separated modes to time.")


def main(argv):
    args = FLAGS

    with tempfile.TemporaryDirectory() as tmp:
        poses = os.path.join(tmp, "poses.npz")
        anchors = os.path.join(tmp, "anchors.npz")
        body_model.sample_poses(args.corpus_poses, seed=0).save(poses)
        anchor_poses.run(poses, args.num_anchors, anchors, views=2, figure="", verbose=False)
        print(f"build_tfrecords, synthetic {args.size}x{args.size} images, 1-6 people each; DirectRunner, "
              f"2 worker processes; corpus {args.corpus_poses} poses, K={args.num_anchors}; median of "
              f"{args.repeats} runs")
        print(f"{'mode':<10} {'images':>6} {'people':>6} {'seconds':>8} {'images/s':>9}")
        for mode in args.modes.split(","):
            results = {}
            for n in (args.num_images, 4 * args.num_images):
                options = dict(num_images=n, seed=0, poses=poses, height=args.size, width=args.size)
                reader = (datasets.get_reader("synthetic", **options) if mode == "mocap3d"
                          else TwoDOnlyReader(**options))
                prefix = os.path.join(tmp, f"{mode}_{n}", "out")
                summary = {}

                def job():
                    summary.update(bt.run(reader, prefix, anchors, PIPELINE, poses=poses,
                                          num_shards=args.num_shards, pseudo_gt_views=args.views))

                seconds = median_time(job, args.repeats)
                written, people = summary["images"]["written"], summary["persons"]["written"]
                results[n] = (seconds, written, prefix)
                print(f"{mode:<10} {written:>6} {people:>6} {seconds:>8.2f} {written / seconds:>9.1f}")
            (t1, n1, _), (t4, n4, prefix4) = results[args.num_images], results[4 * args.num_images]
            marginal = (n4 - n1) / (t4 - t1)
            count, t_tf, t_cv = _decode_times(records_lib.shard_paths(prefix4, args.num_shards), args.repeats)
            print(f"{mode:<10} marginal {marginal:.1f} images/s ({1000 / marginal:.1f} ms/image; start-up "
                  f"{t1 - n1 / marginal:.1f} s)")
            print(f"{mode:<10} decode only, {count} JPEGs: tf.io.decode_jpeg {count / t_tf:.0f} images/s "
                  f"({1000 * t_tf / count:.2f} ms), cv2.imdecode {count / t_cv:.0f} images/s "
                  f"({1000 * t_cv / count:.2f} ms)")
            print(f"{mode:<10} ratio job (marginal) / tf decode per image: {(1 / marginal) / (t_tf / count):.0f}x; "
                  f"whole job at {4 * args.num_images} images / tf decode: {(t4 / n4) / (t_tf / count):.0f}x")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
