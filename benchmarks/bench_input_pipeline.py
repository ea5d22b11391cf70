r"""Speed of the training input pipeline (:mod:`lcr_tf.data.pipeline`): images per second.

Writes its own shards first: ``--num_images`` JPEG images of ``--height`` x ``--width`` pixels, each with
1-4 stick figures drawn from 3D poses of the embedded body model (:func:`lcr_tf.poses.body_model.sample_poses`)
seen through a pinhole camera, over a noisy background, in ``--shards`` files (the records follow
:mod:`lcr_tf.contracts.features`). Then it runs full passes of :func:`lcr_tf.data.pipeline.make_dataset` (decode,
scale and crop, flip, colour jitter, pad, batch) and prints the median images per second of
``--epochs`` passes (the first pass, which builds the graphs, is run and reported apart), in training
mode and, for comparison, in evaluation mode (decode and letterbox only). Example::

    python -m benchmarks.bench_input_pipeline --num_images=200 --image_size=256 --batch_size=8

``--shard_dir`` keeps the shards (e.g. to look at them with ``python -m lcr_tf.data.draw_samples``).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import cv2
import numpy as np
from absl import flags

from lcr_tf.contracts import cli, features, geometry
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.poses import body_model

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_images", 200, "Images written to the shards.", lower_bound=1)
flags.DEFINE_integer("height", 480, "Height of the written images in pixels.", lower_bound=16)
flags.DEFINE_integer("width", 640, "Width of the written images in pixels.", lower_bound=16)
flags.DEFINE_integer("shards", 4, "Number of shard files.", lower_bound=1)
flags.DEFINE_integer("image_size", 256, "Network input side S.", lower_bound=2)
flags.DEFINE_integer("batch_size", 8, "Images per batch.", lower_bound=1)
flags.DEFINE_integer("epochs", 5, "Timed passes over the data (median reported).", lower_bound=1)
flags.DEFINE_string("shard_dir", None, "Write (and keep) the shards here; default: a temporary folder.")
flags.DEFINE_integer("seed", 0, "Seed of the images and of the pipeline.")

_SKELETON = skeleton_lib.LCR13
_FOCAL_FRACTION = 1.0  # focal length as a fraction of the image width (a ~53 degree field of view)


def make_records(num_images: int, height: int, width: int, seed: int):
    """Yields serialized Examples of synthetic stick-figure images (see the module docstring)."""
    rng = np.random.default_rng(seed)
    poses = body_model.sample_poses(num_images * 4, seed=seed).poses3d
    focal = _FOCAL_FRACTION * width
    intrinsics = np.array([focal, focal, width / 2.0, height / 2.0], np.float32)
    used = 0
    for i in range(num_images):
        num = int(rng.integers(1, 5))
        pose3d = poses[used:used + num]
        used += num
        # Place each person 3-8 m away, spread across the field of view, feet about on the ground.
        depth = rng.uniform(3.0, 8.0, num)
        lateral = rng.uniform(-0.35, 0.35, num) * depth * width / focal
        placed = pose3d + np.stack([lateral, np.full(num, 0.4), depth], -1)[:, None, :]
        pose2d = (focal * placed[..., :2] / placed[..., 2:3] + intrinsics[2:]).astype(np.float32)
        image = rng.integers(60, 120, (height, width, 3), dtype=np.uint8)
        image = cv2.GaussianBlur(image, (0, 0), 3)
        for person in pose2d:
            thickness = max(2, int(0.02 * (person[:, 1].max() - person[:, 1].min())))
            for a, b in _SKELETON.bones:
                colour = (40, 40, 230) if "right" in _SKELETON.joint_names[b] else (230, 120, 40)
                start, end = np.round(person[[a, b]]).astype(int)
                cv2.line(image, tuple(start), tuple(end), colour, thickness, cv2.LINE_AA)
            head = np.round(person[_SKELETON.index("head")]).astype(int)
            cv2.circle(image, tuple(head), 2 * thickness, (200, 200, 200), -1, cv2.LINE_AA)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        inside = ((pose2d >= 0) & (pose2d < [width, height])).all(-1)
        ones = np.ones((num, _SKELETON.num_joints), np.int64)
        record = {
            features.IMAGE_ENCODED: buf.tobytes(), features.IMAGE_FORMAT: b"jpeg",
            features.IMAGE_ID: f"bench_{i:05d}", features.IMAGE_SOURCE: b"synthetic",
            features.IMAGE_HEIGHT: height, features.IMAGE_WIDTH: width, features.INTRINSICS: intrinsics,
            features.BOX: geometry.pose_box(pose2d).astype(np.float32), features.POSE2D: pose2d,
            features.ANNOTATED: ones, features.COMPLETED: 0 * ones, features.VISIBLE: inside.astype(np.int64),
            features.POSE3D: pose3d, features.POSE3D_SOURCE: np.full(num, features.POSE3D_MOCAP),
            features.PSEUDO_GT_DISTANCE: np.zeros(num, np.float32),
            features.ANCHOR_CLASS: np.ones(num, np.int64),
        }
        yield features.encode_example(record).SerializeToString()


def write_shards(folder: str, num_images: int, height: int, width: int, num_shards: int, seed: int) -> str:
    """Writes ``bench-0000i-of-0000N.tfrecord`` files (records dealt round-robin); returns the glob."""
    import tensorflow as tf
    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, f"bench-{i:05d}-of-{num_shards:05d}.tfrecord") for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(p) for p in paths]
    try:
        for i, record in enumerate(make_records(num_images, height, width, seed)):
            writers[i % num_shards].write(record)
    finally:
        for w in writers:
            w.close()
    from lcr_tf.contracts import shard_manifest
    shard_manifest.write(os.path.join(folder, "bench"), paths)  # as the build job does
    return os.path.join(folder, "bench-*.tfrecord")


def _time_pass(dataset) -> tuple:
    start = time.perf_counter()
    images = 0
    for batch in dataset:
        images += int(batch["image"].shape[0])
    return images, time.perf_counter() - start


def main(argv):
    del argv
    from lcr_tf.data import pipeline

    folder = FLAGS.shard_dir or tempfile.mkdtemp(prefix="bench_input_pipeline_")
    start = time.perf_counter()
    pattern = write_shards(folder, FLAGS.num_images, FLAGS.height, FLAGS.width, FLAGS.shards, FLAGS.seed)
    print(f"wrote {FLAGS.num_images} images of {FLAGS.height}x{FLAGS.width} in {FLAGS.shards} shards "
          f"({time.perf_counter() - start:.1f} s): {pattern}")
    print(f"CPU cores visible: {os.cpu_count()}")
    for training in (True, False):
        config = pipeline.InputConfig(image_size=FLAGS.image_size, batch_size=FLAGS.batch_size,
                                      num_epochs=1)
        dataset = pipeline.make_dataset(pattern, config, training=training, seed=FLAGS.seed)
        first_images, first_s = _time_pass(dataset)
        rates = []
        for _ in range(FLAGS.epochs):
            images, seconds = _time_pass(dataset)
            rates.append(images / seconds)
        mode = "training (decode, scale+crop, flip, jitter)" if training else "evaluation (decode, letterbox)"
        print(f"{mode}, {FLAGS.image_size}x{FLAGS.image_size}, batch {FLAGS.batch_size}: "
              f"median {statistics.median(rates):.1f} images/s over {FLAGS.epochs} passes "
              f"(min {min(rates):.1f}, max {max(rates):.1f}); first pass "
              f"{first_images / first_s:.1f} images/s")


if __name__ == "__main__":
    cli.run(main)
