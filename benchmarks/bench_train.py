"""Training and forward speed of LCR-Net.

    python benchmarks/bench_train.py [--repeats 5] [--steps 40] [--skip_resnet]

Prints medians over ``--repeats`` runs of:

1. the tiny config (configs/synthetic_tiny.flags sizes, 256-pixel images, batch 4, K=32) on synthetic
   shards rendered into a temporary folder: training images / s of ``model.fit`` (fits of ``--steps``
   steps, each starting its own iterator), in float32 and in the policy ``--precision=auto`` picks,
   next to the input pipeline's images / s alone,
   in the same process;
2. the forward time (inside ``tf.function``) of the ResNet-50 model at 640 x 480 with 300 proposals and
   K=200 (J=13), next to its backbone trunk alone, and their ratio;
3. with a GPU: ResNet-50 training steps / s under each precision policy.
"""

from __future__ import annotations

import os
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from benchmarks.timing import median_time  # noqa: E402
from lcr_tf import synthetic  # noqa: E402
from lcr_tf.contracts import (
    cli,  # noqa: E402
    features,  # noqa: E402
    geometry,  # noqa: E402
    shard_manifest,  # noqa: E402
)
from lcr_tf.contracts import skeleton as skeleton_lib  # noqa: E402
from lcr_tf.data import pipeline  # noqa: E402
from lcr_tf.modeling import (
    factory,  # noqa: E402
)
from lcr_tf.poses import anchors as anchors_lib  # noqa: E402
from lcr_tf.poses import body_model  # noqa: E402
from lcr_tf.training import precision as precision_lib  # noqa: E402
from lcr_tf.training import step as training_step


def write_shards(root: str, num_images: int, size: int, anchor_set, corpus) -> str:
    config = synthetic.RenderConfig(height=size, width=size)
    lower = skeleton_lib.LCR13.lower_body
    path = os.path.join(root, "train-00000-of-00001.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(num_images):
            r = synthetic.render_image(corpus, i, 0, config)
            n = r.num_people
            writer.write(features.encode_example({
                features.IMAGE_ENCODED: synthetic.encode_image(r.image), features.IMAGE_FORMAT: "jpeg",
                features.IMAGE_ID: f"im{i}", features.IMAGE_SOURCE: "bench", features.IMAGE_HEIGHT: size,
                features.IMAGE_WIDTH: size, features.INTRINSICS: r.intrinsics,
                features.BOX: geometry.pose_box(r.pose2d), features.POSE2D: r.pose2d,
                features.ANNOTATED: np.ones((n, 13), np.int64), features.COMPLETED: np.zeros((n, 13), np.int64),
                features.VISIBLE: r.visible.astype(np.int64), features.POSE3D: r.pose3d,
                features.POSE3D_SOURCE: np.zeros(n, np.int64), features.PSEUDO_GT_DISTANCE: np.zeros(n),
                features.ANCHOR_CLASS: anchor_set.assign_classes(r.pose3d, r.in_image[:, lower].any(1)),
            }).SerializeToString())
    shard_manifest.write(os.path.join(root, "train"), [path])  # as the build job does: sizes are checked
    return path


def bench_tiny(repeats: int, steps: int) -> None:
    corpus = body_model.sample_poses(2000, seed=0).poses3d
    anchor_set = anchors_lib.cluster_poses(corpus, 32, 8, seed=0)
    config = factory.ModelConfig(num_anchors=32, image_size=256, rpn_channels=128,
                                 rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=128,
                                 rpn_post_nms_top_n_test=64, rois_per_image=64, weight_decay=1e-4, seed=0)
    batch_size = 4
    with tempfile.TemporaryDirectory() as root:
        shard = write_shards(root, 64, 256, anchor_set, corpus)
        input_config = pipeline.InputConfig(image_size=256, max_people=6, batch_size=batch_size,
                                            shuffle_buffer=64, num_epochs=None)
        ds = pipeline.make_dataset(shard, input_config, training=True, anchors=anchor_set, seed=0)
        ds = ds.map(lambda b: {k: b[k] for k in training_step.BATCH_KEYS})
        iterator = iter(ds)
        next(iterator)

        def read():
            for _ in range(steps):
                next(iterator)

        t_input = median_time(read, repeats)
        # float32 always; beside it the policy --precision=auto picks here, when it is another one.
        auto, why = precision_lib.resolve("auto")
        t_train = {}
        for policy in dict.fromkeys(("float32", auto)):
            keras.mixed_precision.set_global_policy(policy)
            keras.utils.set_random_seed(0)
            model = training_step.build_model(config, anchor_set)
            model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=False)
            model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)  # trace
            # Each fit call starts a new iterator (its shuffle buffer refills): with 10-step fits that fixed
            # cost was a third of the measured step, hence 40 steps per fit by default.
            t_train[policy] = median_time(lambda: model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0),
                                          repeats)
        keras.mixed_precision.set_global_policy("float32")
    n = steps * batch_size
    print(f"tiny config, 256x256, batch {batch_size}, K=32, CPU threads {os.cpu_count()}; auto precision: "
          f"{auto} ({why}):")
    print(f"  input pipeline alone : {n / t_input:8.1f} images/s")
    for policy, t in t_train.items():
        print(f"  training, {policy:14s}: {n / t:8.1f} images/s  ({t / steps * 1000:.0f} ms/step)")
    if len(t_train) > 1:
        print(f"  {auto} / float32 speed: {t_train['float32'] / t_train[auto]:8.2f}x")
    print(f"  ratio input / train  : {t_train['float32'] / t_input:8.1f}x")


def bench_resnet(repeats: int) -> None:
    corpus = body_model.sample_poses(2000, seed=0).poses3d
    anchor_set = anchors_lib.cluster_poses(corpus, 200, 8, seed=0)
    config = factory.ModelConfig(backbone="resnet50", num_anchors=200, image_size=640,
                                 rpn_scales=(32.0, 64.0, 128.0, 256.0, 512.0), rpn_aspect_ratios=(0.5, 1.0, 2.0),
                                 rpn_channels=512, rpn_pre_nms_top_n_test=6000, rpn_post_nms_top_n_test=300)
    model = training_step.build_model(config, anchor_set)
    images = tf.random.uniform([1, 480, 640, 3], 0, 255)
    forward = tf.function(lambda x: model(x, training=False))
    trunk = tf.function(lambda x: model.trunk(model.preprocess(x), training=False))
    forward(images), trunk(images)
    t_model = median_time(lambda: forward(images)["regression"].numpy(), repeats)
    t_trunk = median_time(lambda: trunk(images).numpy(), repeats)
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"ResNet-50 model, 640x480, 300 proposals, K=200 ({device}):")
    print(f"  full forward   : {t_model * 1000:8.1f} ms")
    print(f"  backbone trunk : {t_trunk * 1000:8.1f} ms")
    print(f"  ratio          : {t_model / t_trunk:8.2f}x")


def bench_precisions(repeats: int, steps: int) -> None:
    """ResNet-50 training steps / s under each precision policy (GPU only: float16 is slow on CPUs)."""
    from lcr_tf.training import optimization

    corpus = body_model.sample_poses(2000, seed=0).poses3d
    anchor_set = anchors_lib.cluster_poses(corpus, 200, 8, seed=0)
    rng = np.random.default_rng(0)
    p2 = rng.uniform(100, 400, (1, 2, 13, 2)).astype(np.float32)
    batch = {"image": tf.random.uniform([1, 512, 512, 3], 0, 255), "person_mask": tf.constant([[1.0, 1.0]]),
             "boxes": tf.constant(np.concatenate([p2.min(2), p2.max(2)], -1)), "pose2d": tf.constant(p2),
             "pose3d": tf.constant(corpus[:2][None]), "annotated": tf.ones([1, 2, 13]),
             "visible": tf.ones([1, 2, 13]), "anchor_class": tf.constant([[1, 2]], tf.int32)}
    ds = tf.data.Dataset.from_tensors(batch).repeat()
    for policy in ("float32", "mixed_float16", "mixed_bfloat16"):
        keras.mixed_precision.set_global_policy(policy)
        config = factory.ModelConfig(backbone="resnet50", num_anchors=200, image_size=512,
                                     rpn_channels=512, rois_per_image=512, rpn_pre_nms_top_n_train=12000,
                                     rpn_post_nms_top_n_train=2000, nms_method="padded", seed=0,
                                     weight_decay=0.0)
        model = training_step.build_model(config, anchor_set)
        loss_scale = optimization.DynamicLossScale() if policy == "mixed_float16" else None
        model.compile(optimizer=keras.optimizers.SGD(0.001, momentum=0.9), loss_scale=loss_scale,
                      jit_compile=False)
        model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0)
        t = median_time(lambda: model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0), repeats)
        print(f"ResNet-50 training, 512x512, 512 RoIs, K=200, {policy:14s}: {steps / t:6.2f} steps/s")
    keras.mixed_precision.set_global_policy("float32")


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer("repeats", 5, "Runs per measurement (median printed).")
    flags.DEFINE_integer("steps", 40, "Training steps per run (one fit call; its iterator start-up included).")
    flags.DEFINE_bool("skip_resnet", False, "Only the tiny config.")


def main(argv) -> None:
    args = FLAGS
    bench_tiny(args.repeats, args.steps)
    if not args.skip_resnet:
        bench_resnet(args.repeats)
    if tf.config.list_physical_devices("GPU"):
        bench_precisions(args.repeats, args.steps)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
