"""Trains LCR-Net on TFRecord shards (paper Sec 3, 3.5 and 4).

    python -m lcr_tf.train --flagfile=configs/synthetic_tiny.flags --model_dir=runs/tiny \\
        --train_data='data/train-*.tfrecord' --val_data='data/val-*.tfrecord' --anchors=anchors.npz

SGD with momentum (or Adam, ``--optimizer``) and a piecewise-constant learning rate
(``--lr_boundaries`` / ``--lr_values``, in steps; Sec 4: 1e-3 then 1e-4), L2 weight decay on the
kernels, a precision policy (``--precision``: float32; mixed_float16 with dynamic loss scaling;
mixed_bfloat16), global-norm clipping (``--clipnorm``). The gradient step is
:func:`lcr_tf.optimization.apply_gradients`: one sum over the replicas, then the finiteness check, the
unscaling and the clipping of the global gradient.

Distribution (:mod:`lcr_tf.distribute`): ``--strategy`` picks the tf.distribute strategy; ``auto``
mirrors over the local GPUs when there are any (or over ``--cpu_replicas`` logical CPUs) and uses the
default strategy otherwise; ``multi_worker`` reads the cluster from ``TF_CONFIG``, and then only the
chief writes ``--model_dir`` (the other workers write to temporary directories they delete).
``--batch_size`` is the global batch: the replicas must divide it. An image samples its RoIs from a seed
of its place in the global batch, the losses are normalised over the global batch and the tiny
backbone's batch norm is synchronised, so a step does not depend on the replica count.

The run lives in ``--model_dir``:

* ``checkpoints/``: model, optimizer and step every ``--checkpoint_every`` steps (and at the end). A run
  started again on the same directory (after a crash or a kill) restores the latest checkpoint, prints
  ``resumed from step N`` and goes on to ``--num_steps`` with the same step counter, learning rate and
  optimizer state (momentum). The input stream restarts with a seed derived from N.
* ``train/``, ``validation/``: TensorBoard logs: every loss part, the total, weight decay, proposal
  recall and the learning rate; on validation, images with each image's top-scoring pose drawn.
* ``config.json``: the flags and the model config; ``final.weights.h5``: the trained weights;
  ``metrics.json``: the logs (losses, proposal recall) of the first and last epochs of the latest run,
  ``images_per_second`` (training only: the median over its epochs of images / seconds from the
  epoch's start to its last training step), the precision, the strategy and the replica count.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Dict, List, Sequence

from absl import flags

from lcr_tf import cli
from lcr_tf import distribute

OPTIMIZERS = ("sgd", "adam")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
CHECKPOINT_DIR = "checkpoints"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"  # the first and last epochs' logs of the latest run
FINAL_WEIGHTS = "final.weights.h5"
RESUMED = "resumed from step {}"

FLAGS = flags.FLAGS

_DEFINED: List[str] = []


def define_flags() -> None:
    """Defines the flags; called only when run as a program, so importing the module defines none."""
    before = set(FLAGS)
    # --- data ---
    flags.DEFINE_string("train_data", None, "TFRecord shards to train on: a glob or comma-separated globs "
                        "(beam_jobs/build_tfrecords.py output, e.g. 'out/train-*.tfrecord').")
    flags.DEFINE_string("val_data", None, "TFRecord shards for validation losses, recall and images (optional).")
    flags.DEFINE_string("anchors", None, "anchors.npz of the anchor-poses (beam_jobs/anchor_poses.py); fixes K "
                        "and J.")
    flags.DEFINE_string("model_dir", None, "Directory of checkpoints, TensorBoard logs, config.json and the "
                        "final weights. A directory holding checkpoints resumes from the latest one.")
    # --- input pipeline ---
    flags.DEFINE_integer("batch_size", 4, "Global batch size in images (split over replicas).")
    flags.DEFINE_integer("max_people", 8, "People slots per image; the smallest of the others become ignore "
                         "regions (see --ignore_ioa).")
    flags.DEFINE_list("scale_range", ["0.75", "1.5"], "Zoom range lo,hi of the random training crop.")
    flags.DEFINE_float("flip_probability", 0.5, "Probability of a horizontal flip in training.")
    flags.DEFINE_integer("shuffle_buffer", 256, "Records in the training shuffle buffer.")
    # --- model (lcr_tf.modeling.factory.ModelConfig) ---
    flags.DEFINE_enum("backbone", "tiny", ["resnet50", "vgg16", "tiny"], "Backbone network.")
    flags.DEFINE_string("backbone_weights", "none", "'imagenet' (downloads), 'none' (random) or a .h5 / "
                        ".weights.h5 file.")
    flags.DEFINE_string("roi_head", "default", "Backbone RoI head: default, stage5 (resnet50) or fc.")
    flags.DEFINE_string("trainable_from", "default", "First trainable backbone stage (e.g. conv3, block3), "
                        "'default' or 'all'.")
    flags.DEFINE_list("fc_dims", [], "Widths of the FC RoI head (empty: the backbone's default).")
    flags.DEFINE_integer("num_anchors", 0, "K; 0 takes it from --anchors, another value must match it.")
    flags.DEFINE_integer("num_joints", 0, "J; 0 takes it from --anchors, another value must match it.")
    flags.DEFINE_integer("image_size", 256, "Side of the square training images in pixels (multiple of 16).")
    flags.DEFINE_list("rpn_scales", ["32", "64", "128", "256"], "RPN anchor sides in pixels.")
    flags.DEFINE_list("rpn_aspect_ratios", ["1", "2"], "RPN anchor height / width ratios.")
    flags.DEFINE_integer("rpn_channels", 256, "Width of the RPN 3x3 conv.")
    flags.DEFINE_integer("rpn_pre_nms_top_n_train", 2000, "Proposals before NMS per image, training.")
    flags.DEFINE_integer("rpn_post_nms_top_n_train", 256, "Proposals after NMS per image, training.")
    flags.DEFINE_integer("rpn_pre_nms_top_n_test", 1000, "Proposals before NMS per image, test.")
    flags.DEFINE_integer("rpn_post_nms_top_n_test", 100, "Proposals after NMS per image, test.")
    flags.DEFINE_float("rpn_nms_iou", 0.7, "NMS IoU threshold of the proposals.")
    flags.DEFINE_integer("rpn_batch_size_per_image", 256, "Anchors sampled per image for the RPN loss.")
    flags.DEFINE_integer("rois_per_image", 64, "RoIs sampled per image for the pose branches (paper: 512 with "
                         "ResNet-50, 32 with VGG-16).")
    flags.DEFINE_float("roi_positive_fraction", 0.25, "Most positive RoIs, fraction of --rois_per_image.")
    flags.DEFINE_float("fg_iou", 0.5, "IoU with a ground-truth box at which a RoI is positive.")
    flags.DEFINE_float("ignore_ioa", 0.5, "An anchor or RoI that is not positive and lies more than this "
                       "fraction of its area inside an ignore region (crowds, people without a pose, people "
                       "beyond --max_people) is neither an RPN negative nor a background RoI; 1 turns it off.",
                       lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_enum("roi_pooling", "max", ["max", "avg"], "RoIAlign pooling.")
    flags.DEFINE_float("regression_std_2d", 0.1, "Scale of the 2D pose deltas (box units): the heads regress "
                       "deltas / scale and the loss compares them so (target normalisation).", lower_bound=1e-6)
    flags.DEFINE_float("regression_std_3d", 0.1, "Scale of the 3D pose deltas (metres), as --regression_std_2d.",
                       lower_bound=1e-6)
    flags.DEFINE_float("joint_heatmap_weight", 0.0, "Weight of the trunk's auxiliary joint-heatmap loss "
                       "(not in the paper; 0 = off): a 1x1 conv on the trunk predicts one heatmap per "
                       "joint, in training only. Speeds up a backbone trained from random weights.",
                       lower_bound=0.0)
    flags.DEFINE_float("joint_heatmap_sigma", 1.0, "Standard deviation of the joint-heatmap targets, in "
                       "feature cells.", lower_bound=1e-3)
    flags.DEFINE_boolean("refinement", False, "Add the iterative refinement stage (Sec 3.4).")
    flags.DEFINE_integer("refinement_hidden", 2048, "Refinement: width of the FC over the first estimate.")
    flags.DEFINE_list("refinement_fc", ["2048", "2048"], "Refinement: widths of its two FC layers.")
    flags.DEFINE_enum("nms_method", "combined", ["combined", "padded"], "Proposal NMS: 'combined' (CPU kernel) "
                      "or 'padded' (TF ops, for accelerators).")
    # --- optimisation ---
    flags.DEFINE_enum("strategy", "auto", list(distribute.STRATEGIES), "tf.distribute strategy: auto (mirrored "
                      "with GPUs or --cpu_replicas > 1, else default), default, mirrored, multi_worker "
                      "(cluster from TF_CONFIG; only the chief writes --model_dir), one_device.")
    flags.DEFINE_integer("cpu_replicas", 1, "Split the CPU into this many logical devices and mirror over them "
                         "(no GPU needed): runs the distributed path, e.g. to check a config before a GPU "
                         "run. They share the cores, so they are not faster.", lower_bound=1)
    flags.DEFINE_list("lr_boundaries", ["100000"], "Steps where the learning rate changes (piecewise constant).")
    flags.DEFINE_list("lr_values", ["0.001", "0.0001"], "Learning rates, one more than --lr_boundaries.")
    flags.DEFINE_enum("optimizer", "sgd", list(OPTIMIZERS), "sgd: SGD with --momentum (the paper's); adam: "
                      "Adam (beta_1 = --momentum, beta_2 = 0.999), which learns faster than SGD from random "
                      "weights in short runs (the tiny config); weight decay is the L2 term of "
                      "--weight_decay in both.")
    flags.DEFINE_float("momentum", 0.9, "SGD momentum, or Adam's beta_1 with --optimizer=adam.")
    flags.DEFINE_float("weight_decay", 1e-4, "L2 factor on kernels: loss += weight_decay * sum(w^2) / 2.")
    flags.DEFINE_float("clipnorm", 0.0, "Clip the global gradient (summed over the replicas, all variables "
                       "together) to this norm (0: no clipping).", lower_bound=0.0)
    flags.DEFINE_enum("precision", "float32", list(PRECISIONS), "Keras precision policy: float32; "
                      "mixed_float16 (float16 compute, dynamic loss scaling: for GPUs); mixed_bfloat16 "
                      "(bfloat16 compute: for CPUs with AMX / AVX512-BF16 and recent GPUs). Variables, "
                      "losses and the exported model's inputs and outputs stay float32.")
    flags.DEFINE_boolean("mixed_precision", False, "Alias of --precision=mixed_float16.")
    flags.DEFINE_integer("num_steps", 1000, "Total training steps (a resumed run stops there too).")
    flags.DEFINE_integer("steps_per_epoch", 100, "Steps between validations / image summaries (a Keras epoch).")
    flags.DEFINE_integer("checkpoint_every", 500, "Steps between checkpoints.")
    flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept.")
    flags.DEFINE_integer("log_every", 10, "Steps between TensorBoard scalar writes.")
    flags.DEFINE_integer("val_steps", 10, "Validation batches per evaluation.")
    flags.DEFINE_integer("num_summary_images", 4, "Validation images drawn with their top pose in TensorBoard.")
    flags.DEFINE_string("init_weights", None, "Fine-tuning: a final.weights.h5 of an earlier run of the same "
                        "architecture, loaded before training (ignored when resuming from a checkpoint).")
    flags.DEFINE_integer("seed", 0, "Seed of the initialisation, sampling and input stream.")
    flags.DEFINE_boolean("deterministic", False, "Reproducible runs: deterministic ops, fixed input order.")
    flags.DEFINE_integer("verbose", 1, "Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch.")
    # Short names: --data for --train_data, --train_steps for --num_steps.
    flags.DEFINE_alias("data", "train_data")
    flags.DEFINE_alias("train_steps", "num_steps")
    _DEFINED[:] = sorted(set(FLAGS) - before - {"data", "train_steps"})


class FlagError(ValueError):
    """A flag value that cannot work; the message names the flag."""


def _floats(values: Sequence[str], name: str) -> List[float]:
    try:
        return [float(v) for v in values]
    except ValueError:
        raise FlagError(f"--{name} must be numbers, got {','.join(values)!r}") from None


def _ints(values: Sequence[str], name: str) -> List[int]:
    try:
        return [int(v) for v in values]
    except ValueError:
        raise FlagError(f"--{name} must be integers, got {','.join(values)!r}") from None


def check_flags() -> None:
    """Fails early, with the flag's name, on values that cannot work (missing data, bad schedule)."""
    from lcr_tf.data import pipeline

    for name in ("train_data", "anchors", "model_dir"):
        if not getattr(FLAGS, name):
            raise FlagError(f"--{name} is required")
    try:
        pipeline.list_shards(FLAGS.train_data)
        if FLAGS.val_data:
            pipeline.list_shards(FLAGS.val_data)
    except FileNotFoundError as e:
        raise FlagError(f"--train_data / --val_data: {e}") from None
    if not os.path.isfile(FLAGS.anchors):
        raise FlagError(f"--anchors: no such file {FLAGS.anchors!r}")
    bounds, values = _ints(FLAGS.lr_boundaries, "lr_boundaries"), _floats(FLAGS.lr_values, "lr_values")
    if len(values) != len(bounds) + 1 or sorted(bounds) != bounds:
        raise FlagError(f"--lr_values needs one more value than the increasing --lr_boundaries; got "
                        f"{len(values)} values for boundaries {bounds}")
    for name in ("num_steps", "steps_per_epoch", "checkpoint_every", "log_every", "batch_size"):
        if getattr(FLAGS, name) < 1:
            raise FlagError(f"--{name} must be >= 1, got {getattr(FLAGS, name)}")
    precision()


def precision() -> str:
    """The precision policy of ``--precision`` and its alias ``--mixed_precision``."""
    if FLAGS.mixed_precision and FLAGS.precision not in ("float32", "mixed_float16"):
        raise FlagError(f"--mixed_precision is --precision=mixed_float16, but --precision={FLAGS.precision}")
    return "mixed_float16" if FLAGS.mixed_precision else FLAGS.precision


def model_config(anchor_set):
    """The :class:`lcr_tf.modeling.factory.ModelConfig` of the flags and the anchor set."""
    from lcr_tf.modeling import factory

    k, j = anchor_set.num_anchors, anchor_set.pose3d.shape[1]
    for name, value in (("num_anchors", k), ("num_joints", j)):
        if getattr(FLAGS, name) not in (0, value):
            raise FlagError(f"--{name}={getattr(FLAGS, name)} but --anchors {FLAGS.anchors!r} has {value}")
    from lcr_tf.contracts import features
    if j != features.NUM_JOINTS:
        raise FlagError(f"--anchors {FLAGS.anchors!r} has {j} joints but the training records hold "
                        f"{features.NUM_JOINTS} (lcr_tf.contracts.features); use anchors of that skeleton")
    try:
        return factory.ModelConfig(
            backbone=FLAGS.backbone, backbone_weights=FLAGS.backbone_weights, roi_head=FLAGS.roi_head,
            trainable_from=FLAGS.trainable_from, fc_dims=tuple(_ints(FLAGS.fc_dims, "fc_dims")),
            num_anchors=k, num_joints=j, image_size=FLAGS.image_size,
            rpn_scales=tuple(_floats(FLAGS.rpn_scales, "rpn_scales")),
            rpn_aspect_ratios=tuple(_floats(FLAGS.rpn_aspect_ratios, "rpn_aspect_ratios")),
            rpn_channels=FLAGS.rpn_channels,
            rpn_pre_nms_top_n_train=FLAGS.rpn_pre_nms_top_n_train,
            rpn_post_nms_top_n_train=FLAGS.rpn_post_nms_top_n_train,
            rpn_pre_nms_top_n_test=FLAGS.rpn_pre_nms_top_n_test,
            rpn_post_nms_top_n_test=FLAGS.rpn_post_nms_top_n_test, rpn_nms_iou=FLAGS.rpn_nms_iou,
            rpn_batch_size_per_image=FLAGS.rpn_batch_size_per_image, rois_per_image=FLAGS.rois_per_image,
            roi_positive_fraction=FLAGS.roi_positive_fraction, fg_iou=FLAGS.fg_iou, ignore_ioa=FLAGS.ignore_ioa,
            roi_pooling=FLAGS.roi_pooling, regression_std_2d=FLAGS.regression_std_2d,
            regression_std_3d=FLAGS.regression_std_3d, refinement=FLAGS.refinement,
            refinement_hidden=FLAGS.refinement_hidden,
            refinement_fc=tuple(_ints(FLAGS.refinement_fc, "refinement_fc")), nms_method=FLAGS.nms_method,
            joint_heatmap_weight=FLAGS.joint_heatmap_weight, joint_heatmap_sigma=FLAGS.joint_heatmap_sigma,
            weight_decay=FLAGS.weight_decay, seed=FLAGS.seed)
    except ValueError as e:
        raise FlagError(str(e)) from None


def make_optimizer(name: str, learning_rate, momentum: float):
    """The training optimizer's update rule: ``"sgd"`` (SGD with momentum, the paper's) or ``"adam"``
    (``beta_1`` = ``momentum``); ``learning_rate`` a float or a schedule.

    Clipping, loss scaling and the cross-replica sum are the gradient step's
    (:func:`lcr_tf.optimization.apply_gradients`), and weight decay is the L2 term of the loss
    (:meth:`LCRNet.weight_decay_loss`), the same for both.
    """
    import keras
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, beta_1=momentum)
    raise FlagError(f"--optimizer must be one of {OPTIMIZERS}, got {name!r}")


def make_strategy(name: str, cpu_replicas: int = 1):
    """The tf.distribute strategy of ``--strategy`` and ``--cpu_replicas`` (:mod:`lcr_tf.distribute`)."""
    try:
        return distribute.make_strategy(name, cpu_replicas)
    except distribute.DistributionError as e:
        raise FlagError(str(e)) from None


def top_poses(outputs: Dict, anchors2d, anchors3d) -> Dict:
    """The top-scoring pose of each image of :meth:`lcr_tf.modeling.lcr_model.LCRNet.call` outputs.

    The best (valid proposal, foreground class) pair by class probability; its class block is decoded with
    :func:`lcr_tf.ops.pose_coding.decode_poses`.

    Args:
      outputs: the model's outputs for B images (R proposals, C = 2K + 1 classes).
      anchors2d: (2K, J, 2) box-normalised; anchors3d: (2K, J, 3) metres.
    Returns:
      dict of ``box`` (B, 4) xyxy pixels, ``class`` (B,) int in 1..2K, ``score`` (B,) float32 (0 when the
      image has no valid proposal), ``pose2d`` (B, J, 2) pixels and ``pose3d`` (B, J, 3) metres.
    """
    import tensorflow as tf
    from lcr_tf.modeling import lcr_model
    from lcr_tf.ops import pose_coding

    probs = outputs[lcr_model.CLASS_PROBS][..., 1:]  # (B, R, 2K)
    probs = tf.where(outputs[lcr_model.VALID][..., None], probs, -1.0)
    batch, fg = tf.shape(probs)[0], tf.shape(probs)[2]
    flat = tf.argmax(tf.reshape(probs, [batch, -1]), axis=-1, output_type=tf.int32)
    region, cls = flat // fg, flat % fg + 1
    score = tf.maximum(tf.gather(tf.reshape(probs, [batch, -1]), flat, batch_dims=1), 0.0)
    box = tf.gather(outputs[lcr_model.BOXES], region, batch_dims=1)
    regression = tf.gather(outputs[lcr_model.REGRESSION], region, batch_dims=1)  # (B, C 5J)
    num_joints = int(anchors2d.shape[1])
    block = pose_coding.select_class_block(regression, cls, num_joints)
    pose2d, pose3d = pose_coding.decode_poses(block[:, None], box, cls[:, None], anchors2d, anchors3d)
    return {"box": box, "class": cls, "score": score, "pose2d": pose2d[:, 0], "pose3d": pose3d[:, 0]}


def draw_top_poses(images, top: Dict, skeleton="lcr13"):
    """(B, S, S, 3) float RGB [0, 255] images with each one's top box and 2D pose drawn (cv2) ->
    (B, S, S, 3) uint8."""
    import cv2
    import numpy as np
    from lcr_tf.contracts import skeleton as skeleton_lib

    skel = skeleton_lib.get_skeleton(skeleton)
    out = []
    for i, image in enumerate(np.asarray(images)):
        canvas = np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))
        box = np.round(np.asarray(top["box"][i])).astype(int)
        cv2.rectangle(canvas, (box[0], box[1]), (box[2], box[3]), (255, 255, 0), 1)
        points = np.round(np.nan_to_num(np.asarray(top["pose2d"][i]))).astype(int)
        for a, b in skel.bones:
            cv2.line(canvas, tuple(points[a]), tuple(points[b]), (0, 255, 0), 2, cv2.LINE_AA)
        for p in points:
            cv2.circle(canvas, tuple(p), 2, (255, 0, 0), -1)
        cv2.putText(canvas, f"{float(top['score'][i]):.2f}", (box[0] + 2, max(box[1] + 10, 10)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0), 1, cv2.LINE_AA)
        out.append(canvas)
    return np.stack(out)


def _metadata(plugin: str):
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = plugin
    return meta


def write_scalar(name: str, value: float, step: int) -> None:
    """A TensorBoard scalar, written with core TensorFlow (``tf.summary.scalar`` needs the tensorboard
    package; this writes the same event: a float32 tensor tagged for the "scalars" plugin)."""
    import tensorflow as tf

    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step, metadata=_metadata("scalars"))


def write_images(name: str, images, step: int) -> None:
    """TensorBoard images from (N, H, W, 3) uint8 RGB: the "images" plugin's tensor ``[width, height,
    png_1, ..., png_N]`` of strings, written with core TensorFlow (as :func:`write_scalar`)."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images, tf.uint8)
    height, width = int(images.shape[1]), int(images.shape[2])
    encoded = tf.map_fn(tf.image.encode_png, images, fn_output_signature=tf.string)
    tensor = tf.concat([tf.constant([str(width), str(height)]), encoded], axis=0)
    tf.summary.write(name, tensor, step=step, metadata=_metadata("images"))


def _callbacks(model, manager, model_dir: str, val_images, num_steps: int, images_per_step: int):
    """The trainer's Keras callbacks and its throughput record (a list of images/s, one per epoch)."""
    import time

    import keras
    import tensorflow as tf

    train_writer = tf.summary.create_file_writer(os.path.join(model_dir, "train"))
    val_writer = tf.summary.create_file_writer(os.path.join(model_dir, "validation"))
    throughput: List[float] = []

    def step():
        return int(model.global_step.numpy())

    class Training(keras.callbacks.Callback):
        """Checkpoints, TensorBoard scalars and images, throughput, and the stop at --num_steps."""

        def on_epoch_begin(self, epoch, logs=None):
            self.started, self.steps, self.last_end = time.perf_counter(), 0, None

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            self.last_end = time.perf_counter()
            current = step()
            if current % FLAGS.log_every == 0 and logs:
                with train_writer.as_default():
                    for name, value in logs.items():
                        write_scalar(name, value, current)
                    write_scalar("learning_rate", model.optimizer.learning_rate.numpy(), current)
            if current % FLAGS.checkpoint_every == 0:
                manager.save(checkpoint_number=current)
            if current >= num_steps:
                model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if self.steps and self.last_end is not None:
                # Training only: validation runs after the epoch's last training step.
                throughput.append(self.steps * images_per_step / max(self.last_end - self.started, 1e-9))
            current = step()
            with val_writer.as_default():
                for name, value in (logs or {}).items():
                    if name.startswith("val_"):
                        write_scalar(name[4:], value, current)
                if val_images is not None:
                    outputs = model(val_images, training=False)
                    top = top_poses(outputs, model.anchor_pose2d, model.anchor_pose3d)
                    drawn = draw_top_poses(val_images, top, model.skeleton_name)
                    write_images("top_pose", drawn, current)
            with train_writer.as_default():
                if throughput:
                    write_scalar("images_per_second", throughput[-1], current)
            train_writer.flush()
            val_writer.flush()

    return [Training()], throughput


def _write_json(path: str, payload) -> None:
    """Writes JSON through a temporary name, so that a reader never sees half a file."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def train() -> Dict[str, float]:
    """Runs the training the flags describe; returns the last logs."""
    import keras
    import tensorflow as tf

    from lcr_tf import anchors as anchors_lib

    check_flags()
    policy = precision()
    # The strategy first: logical CPU devices must be configured before TensorFlow runs anything.
    strategy = make_strategy(FLAGS.strategy, FLAGS.cpu_replicas)
    try:
        distribute.per_replica_batch(FLAGS.batch_size, strategy)
    except distribute.DistributionError as e:
        raise FlagError(str(e)) from None
    scale_range = tuple(_floats(FLAGS.scale_range, "scale_range"))
    keras.utils.set_random_seed(FLAGS.seed)
    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(policy)
    anchor_set = anchors_lib.load(FLAGS.anchors)
    config = model_config(anchor_set)
    chief = distribute.is_chief(strategy)
    model_dir = distribute.worker_model_dir(FLAGS.model_dir, strategy)
    os.makedirs(model_dir, exist_ok=True)
    try:
        return _train(strategy, policy, config, anchor_set, model_dir, chief, scale_range)
    finally:
        distribute.cleanup_worker_dir(model_dir, FLAGS.model_dir)


def _train(strategy, policy, config, anchor_set, model_dir, chief, scale_range) -> Dict[str, float]:
    import dataclasses
    import statistics

    import keras
    import tensorflow as tf

    from lcr_tf import optimization
    from lcr_tf.data import pipeline
    from lcr_tf.modeling import factory
    from lcr_tf.modeling import lcr_model

    with strategy.scope():
        try:
            model = factory.build_model(config, anchor_set)
        except (ValueError, FileNotFoundError) as e:
            raise FlagError(f"cannot build the model: {e}") from None
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            _ints(FLAGS.lr_boundaries, "lr_boundaries"), _floats(FLAGS.lr_values, "lr_values"))
        optimizer = make_optimizer(FLAGS.optimizer, schedule, FLAGS.momentum)
        loss_scale = optimization.DynamicLossScale() if policy == "mixed_float16" else None
        model.compile(optimizer=optimizer, loss_scale=loss_scale, clipnorm=FLAGS.clipnorm, jit_compile=False)
        # Every weight and optimizer slot exists before a restore, so the restore is immediate and total.
        model(tf.zeros([1, config.image_size, config.image_size, 3]))
        optimizer.build(model.trainable_variables)
        tracked = dict(model=model, optimizer=optimizer)
        if loss_scale is not None:
            tracked["loss_scale"] = loss_scale
        checkpoint = tf.train.Checkpoint(**tracked)
        # Every worker saves (saving is a collective op); only the chief's directory is the run's.
        manager = tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, CHECKPOINT_DIR),
                                             max_to_keep=FLAGS.keep_checkpoints)
        # Non-chief workers restore the chief's checkpoint, so that every worker resumes at one step.
        latest = tf.train.latest_checkpoint(os.path.join(FLAGS.model_dir, CHECKPOINT_DIR))
        if latest:
            checkpoint.restore(latest).assert_existing_objects_matched()
            print(RESUMED.format(int(model.global_step.numpy())), flush=True)
        elif FLAGS.init_weights:
            if not os.path.isfile(FLAGS.init_weights):
                raise FlagError(f"--init_weights: no such file {FLAGS.init_weights!r}")
            model.load_weights(FLAGS.init_weights)
            # A fine-tuning run counts its own steps (and learning-rate schedule) from 0.
            model.global_step.assign(0)
            print(f"initialised from {FLAGS.init_weights}", flush=True)
    start = int(model.global_step.numpy())
    described = distribute.describe(strategy)

    if chief:
        _write_json(os.path.join(model_dir, CONFIG_FILE),
                    {"flags": {name: FLAGS[name].value for name in _own_flags()},
                     "model": config.to_dict(), "precision": policy, **described})

    input_config = pipeline.InputConfig(
        image_size=config.image_size, max_people=FLAGS.max_people, batch_size=FLAGS.batch_size,
        scale_range=scale_range, flip_probability=FLAGS.flip_probability,
        shuffle_buffer=FLAGS.shuffle_buffer, num_epochs=None)

    def distributed(pattern, config, training, seed, deterministic):
        """The dataset of ``pattern`` as the strategy feeds it: one pipeline per worker, reading its
        share of the shards (:func:`pipeline.make_dataset` ``shard``), in per-replica batches."""
        def dataset(context):
            per_replica = context.get_per_replica_batch_size(FLAGS.batch_size)
            ds = pipeline.make_dataset(
                pattern, dataclasses.replace(config, batch_size=per_replica), training=training,
                anchors=anchor_set, seed=seed, deterministic=deterministic,
                shard=(context.num_input_pipelines, context.input_pipeline_id))
            return ds.map(lcr_model.select_batch)

        return strategy.distribute_datasets_from_function(dataset)

    # A resumed run draws a new input stream (seeded by its first step), not the first one again.
    train_ds = distributed(FLAGS.train_data, input_config, True, FLAGS.seed * 1_000_003 + start,
                           FLAGS.deterministic)
    val_ds, val_images = None, None
    if FLAGS.val_data:
        val_config = pipeline.InputConfig(image_size=config.image_size, max_people=FLAGS.max_people,
                                          batch_size=FLAGS.batch_size, num_epochs=None)
        val_ds = distributed(FLAGS.val_data, val_config, False, FLAGS.seed, True)
        if FLAGS.num_summary_images > 0 and chief:
            summary = pipeline.make_dataset(FLAGS.val_data, dataclasses.replace(
                val_config, batch_size=FLAGS.num_summary_images), training=False, seed=FLAGS.seed,
                deterministic=True)
            val_images = next(iter(summary.take(1)))["image"]

    remaining = FLAGS.num_steps - start
    logs: Dict[str, float] = {}
    if remaining > 0:
        per_epoch = min(FLAGS.steps_per_epoch, remaining)
        callbacks, throughput = _callbacks(model, manager, model_dir, val_images, FLAGS.num_steps,
                                           FLAGS.batch_size)
        history = model.fit(train_ds, epochs=math.ceil(remaining / per_epoch), steps_per_epoch=per_epoch,
                            validation_data=val_ds, validation_steps=FLAGS.val_steps if val_ds else None,
                            callbacks=callbacks, verbose=FLAGS.verbose)
        logs = {k: float(v[-1]) for k, v in history.history.items()}
        if chief:
            _write_json(os.path.join(model_dir, METRICS_FILE), {
                "first_epoch": {k: float(v[0]) for k, v in history.history.items()},
                "last_epoch": logs, "start_step": start, "epochs": len(history.epoch),
                "images_per_second": statistics.median(throughput) if throughput else None,
                "images_per_second_per_epoch": throughput, "precision": policy, **described})
    end = int(model.global_step.numpy())
    if manager.latest_checkpoint is None or not manager.latest_checkpoint.endswith(f"-{end}"):
        manager.save(checkpoint_number=end)
    model.save_weights(os.path.join(model_dir, FINAL_WEIGHTS))
    print(f"finished at step {end} (optimizer iterations {int(optimizer.iterations.numpy())})", flush=True)
    return logs


def _own_flags() -> List[str]:
    """Names of the flags :func:`define_flags` defined."""
    return list(_DEFINED)


def main(argv: List[str]) -> None:
    if len(argv) > 1:
        raise FlagError(f"unexpected arguments {argv[1:]}")
    try:
        train()
    except FlagError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
