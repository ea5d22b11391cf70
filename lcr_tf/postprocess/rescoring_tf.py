"""Eq 6 rescoring in TensorFlow: the twin of :func:`lcr_tf.postprocess.rescoring.rescore` (formula there)."""

from __future__ import annotations

import tensorflow as tf

from lcr_tf.postprocess.rescoring import DEFAULT_SIGMA_B_PX


def rescore_tf(scores, pose2d, boxes, sigma_b=DEFAULT_SIGMA_B_PX) -> tf.Tensor:
    """Eq 6 in TensorFlow; shapes and units as :func:`lcr_tf.postprocess.rescoring.rescore`; returns (M,) float32."""
    scores = tf.cast(scores, tf.float32)
    pose2d = tf.cast(pose2d, tf.float32)
    boxes = tf.cast(boxes, tf.float32)[:, None, :]
    sigma_b = tf.cast(sigma_b, tf.float32)
    gap = tf.maximum(tf.maximum(boxes[..., :2] - pose2d, pose2d - boxes[..., 2:]), 0.0)
    d2 = tf.reduce_sum(gap * gap, axis=-1)
    return scores * tf.reduce_mean(tf.exp(-d2 / (sigma_b * sigma_b)), axis=-1)
