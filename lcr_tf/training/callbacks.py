"""The training loop's callbacks (paper Sec 4: what a run records as it trains).

* :func:`make_callbacks`: the Keras callback of a run: checkpoints every ``--checkpoint_every`` steps,
  TensorBoard scalars (every loss part, the learning rate, images/s) and images (each validation image's
  top-scoring pose, :func:`top_poses`), the progress lines (:class:`ProgressMeter`) and the stop at
  ``--num_steps``;
* :func:`write_scalar`, :func:`write_images`: TensorBoard events written with core TensorFlow (the
  tensorboard package is not needed).
"""

from __future__ import annotations

import os
from typing import Dict, List

from lcr_tf.contracts import cli, run_folder


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
    """(B, S, S, 3) float RGB [0, 255] images with each one's top box and 2D pose drawn
    (:func:`lcr_tf.poses.viz.draw_people`: green bones, red joints, box and score in yellow) -> (B, S, S, 3)
    uint8."""
    import numpy as np

    from lcr_tf.poses import viz

    return np.stack([viz.draw_people(image, np.asarray(top["box"][i:i + 1]), np.asarray(top["pose2d"][i:i + 1]),
                                     np.asarray(top["score"][i:i + 1]), skeleton, colours=[(0, 255, 0)],
                                     box_colour=(255, 255, 0), joint_colour=(255, 0, 0), thickness=1,
                                     font_scale=0.35, score_inside=True)
                     for i, image in enumerate(np.asarray(images))])


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


#: The losses a progress line shows, when the logs have them.
PROGRESS_KEYS = ("total_loss", "classification", "regression", "rpn_objectness", "proposal_recall")


class ProgressMeter:
    """Decides when a progress line is due and writes it: at most one per ``every_s`` seconds, and the last
    step always. Pure Python with an injectable clock, so its timing is testable.

    A line reads ``step 1200/6000 (20%), 23.4 images/s, total_loss 1.2345, ..., 3 min 25 s left``; images/s
    and the time left are those of the steps since the previous line.
    """

    def __init__(self, num_steps: int, images_per_step: int, every_s: float, write, clock=None):
        import time

        self.num_steps, self.images_per_step, self.every_s = int(num_steps), int(images_per_step), float(every_s)
        self.write, self.clock = write, clock or time.perf_counter
        self.last_time, self.last_step = None, None

    def start(self, step: int) -> None:
        self.last_time, self.last_step = self.clock(), int(step)

    def update(self, step: int, logs=None) -> None:
        if self.every_s <= 0:
            return
        if self.last_time is None:
            self.start(step - 1)
        now = self.clock()
        if now - self.last_time < self.every_s and step < self.num_steps:
            return
        steps = max(step - self.last_step, 0)
        rate = steps / max(now - self.last_time, 1e-9)
        parts = [f"step {step}/{self.num_steps} ({100.0 * step / max(self.num_steps, 1):.0f}%)",
                 f"{rate * self.images_per_step:.1f} images/s"]
        parts += [f"{k} {float(logs[k]):.4f}" for k in PROGRESS_KEYS if logs and k in logs]
        if step < self.num_steps and rate > 0:
            parts.append(f"{cli.format_duration((self.num_steps - step) / rate)} left")
        self.write(", ".join(parts))
        self.last_time, self.last_step = now, step


def make_callbacks(model, manager, model_dir: str, val_images, run, images_per_step: int, progress):
    """The trainer's Keras callbacks and its throughput record (a list of images/s, one per epoch)."""
    import time

    import keras
    import tensorflow as tf

    train_writer = tf.summary.create_file_writer(os.path.join(model_dir, run_folder.TRAIN_LOGS))
    val_writer = tf.summary.create_file_writer(os.path.join(model_dir, run_folder.VALIDATION_LOGS))
    throughput: List[float] = []

    meter = ProgressMeter(run.num_steps, images_per_step, run.progress_every_s, progress)

    def step():
        return int(model.global_step.numpy())

    class Training(keras.callbacks.Callback):
        """Checkpoints, TensorBoard scalars and images, throughput, and the stop at --num_steps."""

        def on_train_begin(self, logs=None):
            meter.start(step())

        def on_epoch_begin(self, epoch, logs=None):
            self.started, self.steps, self.last_end = time.perf_counter(), 0, None

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            self.last_end = time.perf_counter()
            current = step()
            if current % run.log_every == 0 and logs:
                with train_writer.as_default():
                    for name, value in logs.items():
                        write_scalar(name, value, current)
                    write_scalar("learning_rate", model.optimizer.learning_rate.numpy(), current)
            if current % run.checkpoint_every == 0:
                manager.save(checkpoint_number=current)
            if current >= run.num_steps:
                model.stop_training = True
            meter.update(current, logs)

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
