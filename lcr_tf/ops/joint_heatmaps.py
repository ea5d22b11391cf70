"""Joint heatmaps on the backbone's feature grid: the targets of the trunk's auxiliary supervision.

Not part of the paper's network. LCR-Net reads poses only through RoIAlign and fully connected layers
(Sec 3.2-3.5), so a trunk trained from random weights learns where joints are from a few dozen region
vectors per image. An auxiliary 1x1 convolution on the trunk's feature map that predicts, at every
feature cell, whether a joint of each type lies there, gives the trunk a dense, spatially aligned
signal from every joint of every person (the dense supervision of keypoint detectors such as CenterNet).
The auxiliary head is used in training only; inference and the exported model never compute it.

Conventions: a pixel coordinate ``x`` lies at ``x / stride - 0.5`` on the feature map, whose cell centres
are the integers ``0..W-1`` (the half-pixel convention of :mod:`lcr_tf.ops.roi_align`). ``sigma`` is in
feature cells.
"""

from __future__ import annotations

import tensorflow as tf


def joint_heatmaps(pose2d, joint_mask, feature_size, stride: float, sigma: float = 1.0) -> tf.Tensor:
    """Gaussian heatmap targets, one channel per joint, the maximum over the people of an image.

    Args:
      pose2d: (B, P, J, 2) float pixels, x right, y down.
      joint_mask: (B, P, J) bool, joints that get a peak (False for padding people and unknown joints).
      feature_size: (H, W) ints or an int (2,) tensor, the feature map's size in cells.
      stride: pixels per feature cell.
      sigma: standard deviation of each Gaussian, in feature cells (> 0).
    Returns:
      (B, H, W, J) float32 in [0, 1]: ``max_p exp(-d^2 / (2 sigma^2))``, ``d`` the distance in cells
      from the cell centre to joint ``j`` of person ``p``; 1 only at a joint exactly on a cell centre.
    """
    if not sigma > 0 or not stride > 0:
        raise ValueError(f"need sigma > 0 and stride > 0, got sigma={sigma}, stride={stride}")
    pose2d = tf.cast(pose2d, tf.float32)
    joint_mask = tf.cast(joint_mask, tf.bool)
    size = tf.cast(feature_size, tf.int32)
    fx = pose2d[..., 0] / stride - 0.5  # (B, P, J)
    fy = pose2d[..., 1] / stride - 0.5
    xs = tf.range(size[1], dtype=tf.float32)
    ys = tf.range(size[0], dtype=tf.float32)
    # Separable: exp(-(dx^2 + dy^2) / 2s^2) = exp(-dx^2 / 2s^2) * exp(-dy^2 / 2s^2).
    gx = tf.exp(-tf.square(xs - fx[..., None]) / (2.0 * sigma * sigma))  # (B, P, J, W)
    gy = tf.exp(-tf.square(ys - fy[..., None]) / (2.0 * sigma * sigma))  # (B, P, J, H)
    gy = tf.where(joint_mask[..., None], gy, 0.0)
    maps = gy[..., :, None] * gx[..., None, :]  # (B, P, J, H, W)
    return tf.transpose(tf.reduce_max(maps, axis=1), [0, 2, 3, 1])


def heatmap_loss(logits, targets, num_instances) -> tf.Tensor:
    """Sigmoid cross-entropy of predicted joint heatmaps against soft targets.

    Args:
      logits: (B, H, W, J) heatmap logits (sigmoid gives the probability that a joint is at the cell).
      targets: (B, H, W, J) in [0, 1] (:func:`joint_heatmaps`).
      num_instances: () number of joint instances that have a peak (the sum of ``joint_mask``).
    Returns:
      () float32: the cross-entropy summed over cells and joints / ``max(num_instances, 1)``, so that
      each annotated joint weighs the same whatever the number of people (CenterNet's normalisation).
    """
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(targets, tf.float32),
                                                 logits=tf.cast(logits, tf.float32))
    return tf.reduce_sum(ce) / tf.maximum(tf.cast(num_instances, tf.float32), 1.0)
