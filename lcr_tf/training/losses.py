"""The training losses of LCR-Net (paper Sec 3, eq 1-5), each a small function of batched tensors.

    L = L_Loc + L_Classif + L_Reg                                                  (eq 1)
    L_Loc = L_RPN  (objectness log loss + smooth-L1 box regression, Faster R-CNN)  (eq 2)
    L_Classif(u, c_B) = -log u(c_B)                                                (eq 3)
    L_Reg(v, t_cB) = [c_B >= 1] ||t_cB - v_cB||_S                                  (eq 4)
    ||x||_S = 0.5 x^2 if |x| < 1 else |x| - 0.5   (summed over the coordinates)    (eq 5)

Normalisation (the paper gives per-box losses; these are their means over a minibatch):

* RPN losses: divided by the number of *sampled* anchors (label 0 or 1) in the batch, as Faster R-CNN
  does; the box loss sums over positive anchors only.
* Classification: mean over the valid (non-padding) RoIs.
* Regression: eq 4 averaged over the valid RoIs, i.e. the sum over positive RoIs divided by the number
  of valid RoIs (negatives count in the denominator with a zero loss, as in Fast R-CNN).

Every normaliser is floored at 1 so an empty batch gives 0, never NaN. Under a distribution strategy the
normalisers count the *global* batch (summed over the replicas, :func:`lcr_tf.training.distribute.cross_replica_sum`):
each replica's loss is then its share of the global mean, the shares sum to it, and the summed gradient
is the same for any split of the batch over replicas. Inputs of any float dtype are
computed in float32 (mixed-precision models return float16/bfloat16 logits).

The smooth-L1 ``beta`` generalises eq 5: ``0.5 x^2 / beta`` if ``|x| < beta`` else ``|x| - 0.5 beta``;
``beta = 1`` is eq 5 exactly (the pose regression default). The RPN box loss defaults to ``beta = 1/9``,
the value of the Faster R-CNN release (its ``sigma = 3``, ``beta = 1 / sigma^2``).
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

import tensorflow as tf

from lcr_tf.ops import pose_coding
from lcr_tf.training import distribute

POSE_BETA = 1.0
RPN_BOX_BETA = 1.0 / 9.0

# Names of the parts of eq 1 as the trainer reports them (a refinement stage adds e.g. "_stage2").
RPN_OBJECTNESS = "rpn_objectness"
RPN_BOX = "rpn_box"
CLASSIFICATION = "classification"
REGRESSION = "regression"
# The trunk's auxiliary supervision (not in the paper; lcr_tf.ops.joint_heatmaps).
JOINT_HEATMAP = "joint_heatmap"


def smooth_l1(x, beta: float = POSE_BETA) -> tf.Tensor:
    """Element-wise smooth-L1 of eq 5 with transition point ``beta`` (> 0); same shape as ``x``."""
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    x = tf.abs(tf.cast(x, tf.float32))
    return tf.where(x < beta, 0.5 * tf.square(x) / beta, x - 0.5 * beta)


def _count(mask) -> tf.Tensor:
    """The normaliser of a loss: the number of True in ``mask`` over the global batch, at least 1."""
    return global_count(tf.reduce_sum(tf.cast(mask, tf.float32)))


def global_count(local_count) -> tf.Tensor:
    """() float32: a replica's count summed over the replicas (module docstring), floored at 1."""
    return tf.maximum(distribute.cross_replica_sum(tf.cast(local_count, tf.float32)), 1.0)


def rpn_objectness_loss(logits, labels) -> tf.Tensor:
    """Objectness log loss of the RPN (eq 2, Faster R-CNN).

    Args:
      logits: (B, N_a) objectness logits (sigmoid: > 0 means object).
      labels: (B, N_a) int, 1 object, 0 background, -1 ignored
        (:func:`lcr_tf.ops.targets.assign_rpn_targets`).
    Returns:
      () float32: binary cross-entropy summed over sampled anchors (label >= 0) / their number.
    """
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.int32)
    sampled = labels >= 0
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels > 0, tf.float32), logits=logits)
    return tf.reduce_sum(tf.where(sampled, bce, 0.0)) / _count(sampled)


def rpn_box_loss(deltas, targets, labels, beta: float = RPN_BOX_BETA) -> tf.Tensor:
    """Box regression loss of the RPN (eq 2, Faster R-CNN).

    Args:
      deltas: (B, N_a, 4) predicted (dx, dy, dw, dh) (:func:`lcr_tf.ops.box_ops.encode_deltas` layout).
      targets: (B, N_a, 4) encoded ground-truth deltas.
      labels: (B, N_a) int in {1, 0, -1}; only label-1 anchors contribute.
      beta: smooth-L1 transition point (module docstring).
    Returns:
      () float32: smooth-L1 summed over the 4 coordinates of positive anchors / number of sampled
      anchors (label >= 0).
    """
    labels = tf.cast(labels, tf.int32)
    per_anchor = tf.reduce_sum(smooth_l1(tf.cast(deltas, tf.float32) - tf.cast(targets, tf.float32),
                                         beta), axis=-1)
    return tf.reduce_sum(tf.where(labels > 0, per_anchor, 0.0)) / _count(labels >= 0)


def classification_loss(logits, classes, valid) -> tf.Tensor:
    """Log loss of the true class over the 2K + 1 classes (eq 3).

    Args:
      logits: (B, R, 2K + 1) class logits (softmax over the last axis gives u).
      classes: (B, R) int in ``0..2K``, the true class c_B (0 background).
      valid: (B, R) bool, False for padding RoIs.
    Returns:
      () float32: ``-log u(c_B)`` averaged over valid RoIs.
    """
    logits = tf.cast(logits, tf.float32)
    valid = tf.cast(valid, tf.bool)
    classes = tf.where(valid, tf.cast(classes, tf.int32), 0)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=classes, logits=logits)
    return tf.reduce_sum(tf.where(valid, ce, 0.0)) / _count(valid)


def regression_loss(regression, targets, classes, valid, beta: float = POSE_BETA,
                    num_joints: Optional[int] = None, scale=None) -> tf.Tensor:
    """Anchor-pose-specific pose regression loss (eq 4 with eq 5).

    Only the block of the true class enters (:func:`lcr_tf.ops.pose_coding.select_class_block`), and
    only for positive RoIs (``c_B >= 1``); other classes' blocks and negatives get no gradient.

    Args:
      regression: (B, R, (2K + 1) * 5J) regression outputs v (layout of :mod:`lcr_tf.ops.pose_coding`).
      targets: (B, R, 5J) targets t_cB (:func:`lcr_tf.ops.pose_coding.encode_pose_targets`).
      classes: (B, R) int in ``0..2K``.
      valid: (B, R) bool, False for padding RoIs.
      beta: smooth-L1 transition point; 1 is eq 5.
      num_joints: J; None reads it from ``targets`` (its last dimension / 5).
      scale: None, or (5J,) the heads' block scale (:func:`lcr_tf.ops.pose_coding.block_scale`): the
        residual of each coordinate is divided by it before eq 5, i.e. the loss of standardised deltas.
    Returns:
      () float32: smooth-L1 summed over the 5J coordinates of positive RoIs / number of valid RoIs.
    """
    targets = tf.cast(targets, tf.float32)
    if num_joints is None:
        width = targets.shape[-1]
        if width is None or width % pose_coding.COORDS_PER_JOINT:
            raise ValueError(f"targets have last dimension {width}; pass num_joints")
        num_joints = width // pose_coding.COORDS_PER_JOINT
    valid = tf.cast(valid, tf.bool)
    classes = tf.where(valid, tf.cast(classes, tf.int32), 0)
    block = tf.cast(pose_coding.select_class_block(regression, classes, num_joints), tf.float32)
    residual = block - targets
    if scale is not None:
        residual = residual / tf.cast(scale, tf.float32)
    per_roi = tf.reduce_sum(smooth_l1(residual, beta), axis=-1)
    positive = tf.logical_and(valid, classes > 0)
    return tf.reduce_sum(tf.where(positive, per_roi, 0.0)) / _count(valid)


def total_loss(parts: Mapping[str, tf.Tensor], weights: Optional[Mapping[str, float]] = None
               ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    """The weighted sum of named losses (eq 1 with optional weights).

    Args:
      parts: name -> () loss, e.g. ``{RPN_OBJECTNESS: ..., RPN_BOX: ..., CLASSIFICATION: ...,
        REGRESSION: ...}`` (a refinement stage adds its own names).
      weights: name -> weight; names missing here weigh 1 (the paper's plain sum). A weight for a name
        that is not in ``parts`` is an error (it would be a silently ignored typo).
    Returns:
      (total () float32, name -> weighted part () float32); the weighted parts sum to the total.
    """
    if not parts:
        raise ValueError("total_loss needs at least one part")
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(parts))
    if unknown:
        raise ValueError(f"weights name losses that are not among the parts: {unknown} "
                         f"(parts: {sorted(parts)})")
    weighted = {name: tf.cast(value, tf.float32) * float(weights.get(name, 1.0))
                for name, value in parts.items()}
    total = tf.add_n(list(weighted.values()))
    return total, weighted
