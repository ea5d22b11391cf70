"""Training targets: RPN anchor labels (Sec 3.1, Faster R-CNN) and RoI classes / pose targets (Sec 3.1-3.3).

All functions are batched over images, vectorised over anchors, proposals and people (no Python loop
over any of them) and graph-compatible (they run inside ``tf.function``). Boxes are xyxy pixels.

Ground-truth boxes of a person (Sec 3.1 and 4.2, "Dealing with truncation"): every annotated person has
an **upper-body box** (pose box of the head, arms and hips) and, when at least one lower-limb joint
(knee or ankle) is seen, a **full-body box** (pose box of all joints). Pose boxes are the tight box plus a
10% margin per side (:func:`lcr_tf.ops.pose_coding.pose_boxes`). :func:`people_from_batch` builds them
from an input batch.

RoI labelling (:func:`assign_roi_targets`): a candidate box is positive when its IoU with some valid
ground-truth box (full or upper) is at least ``fg_iou``; it takes the box (person and kind) of highest
IoU, ties going to the full-body box and then to the lower person index. Its class is the person's
nearest anchor ``k`` (``anchor_index``) as a full-body class ``k + 1`` when the matched box is the
full-body one, or as an upper-body class ``K + k + 1`` when it is the upper-body one. Its target is the
person's pose encoded in the *candidate's* box (:func:`lcr_tf.ops.pose_coding.encode_pose_targets`).

Ignore regions (COCO crowds, people without enough joints, people beyond the input pipeline's
``max_people``): parts of an image holding people that have no pose target. An anchor or candidate box that
is not positive and lies mostly inside one (:func:`ignored_boxes`: intersection over its *own* area above
``ignore_ioa``) is neither sampled as a negative nor as background, so the network is not taught that those
people are background; a box that is positive for an annotated person stays positive.

Randomness: ``seed`` is an int or a shape-(2,) int tensor (e.g. ``[run_seed, step]``) for the stateless
ops, or a (B, 2) int tensor of one seed per image (:func:`lcr_tf.ops.row_random.row_seeds`: an image
then samples the same whatever else is in its batch); the same seed and inputs give the same samples.
``seed=None`` uses TensorFlow's stateful global generator instead.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from lcr_tf.contracts import anchor_layout, batch_keys
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.ops import box_ops, pose_coding, row_random

# Keys of the ``people`` dict of :func:`assign_roi_targets` (built by :func:`people_from_batch`).
BOXES_FULL = "boxes_full"
BOXES_UPPER = "boxes_upper"
HAS_FULL = "has_full"
ANCHOR_INDEX = "anchor_index"
PEOPLE_KEYS = (BOXES_FULL, BOXES_UPPER, HAS_FULL, batch_keys.PERSON_MASK, ANCHOR_INDEX, batch_keys.POSE2D,
               batch_keys.POSE3D)

SeedLike = Union[None, int, Sequence[int], tf.Tensor]


def _uniform(shape, seed: SeedLike) -> tf.Tensor:
    """Uniform [0, 1) float32 of ``shape`` (B, N): stateless from ``seed`` (one, or one per row), or
    stateful when it is None."""
    if seed is None:
        return tf.random.uniform(shape, dtype=tf.float32)
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank == 2:
        return row_random.row_uniform(seed, shape[1])
    if seed.shape.rank == 0:
        seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    return tf.random.stateless_uniform(shape, seed=tf.cast(seed, tf.int64), dtype=tf.float32)


def _sample(candidates, keys, k, limit=None) -> tf.Tensor:
    """A random subset of at most ``k`` (and ``limit`` per row) candidates per row.

    Args:
      candidates: (B, N) bool. keys: (B, N) float in [0, 1), the random priorities (highest first).
      k: static int, the most a row can take. limit: (B,) int or None, a per-row cap below ``k``.
    Returns:
      (B, N) bool mask of the chosen candidates.
    """
    n = tf.shape(candidates)[1]
    k = tf.minimum(tf.constant(k, tf.int32), n)
    values, index = tf.math.top_k(tf.where(candidates, keys, -1.0), k=k)
    take = values >= 0.0
    if limit is not None:
        take = tf.logical_and(take, tf.range(k)[None, :] < tf.cast(limit, tf.int32)[:, None])
    b = tf.shape(candidates)[0]
    rows = tf.broadcast_to(tf.range(b)[:, None], tf.shape(index))
    scatter_index = tf.stack([rows, index], axis=-1)
    chosen = tf.scatter_nd(scatter_index, tf.cast(take, tf.int32), tf.shape(candidates))
    return chosen > 0


def _quota(budget: int, fraction: float) -> int:
    """floor(budget * fraction), robust to float rounding (0.29 * 100 is 28.999999999999996)."""
    return int(np.floor(budget * fraction + 1e-6))


def _inside_image(anchors, image_size, tolerance: float) -> tf.Tensor:
    h = tf.cast(image_size[0], tf.float32)
    w = tf.cast(image_size[1], tf.float32)
    return tf.reduce_all(tf.stack([anchors[:, 0] >= -tolerance, anchors[:, 1] >= -tolerance,
                                   anchors[:, 2] <= w + tolerance, anchors[:, 3] <= h + tolerance],
                                  axis=-1), axis=-1)


def assign_rpn_targets(anchors, gt_boxes, gt_mask, image_size, pos_iou: float = 0.7,
                       neg_iou: float = 0.3, batch_size_per_image: int = 256,
                       positive_fraction: float = 0.5, seed: SeedLike = None,
                       border_tolerance: Optional[float] = None,
                       box_weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
                       ignore_boxes=None, ignore_mask=None, ignore_ioa: float = 0.5, plus_one: bool = False
                       ) -> Tuple[tf.Tensor, tf.Tensor]:
    """RPN anchor labels and box targets (Faster R-CNN rules; the loss of eq 2).

    Rules, in order: an anchor is negative (0) when its best IoU with the image's ground-truth boxes is
    below ``neg_iou``, ignored (-1) between ``neg_iou`` and ``pos_iou``, positive (1) at or above
    ``pos_iou``; the anchor(s) of highest IoU with each ground-truth box are positive as well (ties all
    count; not when that IoU is 0); anchors outside the image are ignored when ``border_tolerance`` is
    set. Then at most ``batch_size_per_image * positive_fraction`` positives are kept at random, and
    negatives fill the rest of the ``batch_size_per_image`` budget; the others become -1.

    Border anchors: with ``border_tolerance=None`` (default, as in Detectron2 and the TF Model Garden)
    every anchor may be labelled. Persons truncated by the image border are common here, and their boxes
    reach the border, so keeping border anchors lets the RPN learn to propose them. A number restores the
    original Faster R-CNN rule: anchors reaching more than that many pixels outside the image are
    ignored (the original used 0).

    Ignore regions (module docstring): a would-be negative anchor (0) that lies more than ``ignore_ioa``
    inside one becomes -1 before sampling, so other negatives fill the budget.

    Args:
      anchors: (N_a, 4) xyxy pixels (:func:`lcr_tf.ops.anchor_boxes.generate_anchors`).
      gt_boxes: (B, P, 4) xyxy pixels, P >= 1 (padding rows allowed).
      gt_mask: (B, P) bool, False for padding rows.
      image_size: (height, width) pixels, the same for every image of the batch.
      pos_iou, neg_iou: IoU thresholds (Faster R-CNN: 0.7 and 0.3).
      batch_size_per_image: labelled anchors per image after sampling (Faster R-CNN: 256).
      positive_fraction: the most positives take this fraction of the budget (Faster R-CNN: 0.5).
      seed: random seed (module docstring).
      border_tolerance: pixels; None keeps every anchor (see above).
      box_weights: weights of :func:`lcr_tf.ops.box_ops.encode_deltas`.
      ignore_boxes: None, or (B, G, 4) xyxy pixels of ignore regions; ignore_mask: (B, G) bool (padding
        rows False).
      ignore_ioa: the fraction of an anchor inside a region above which it is ignored.
      plus_one: Detectron's +1 convention (``ModelConfig.rpn_convention="detectron"``) for the IoUs and
        the encoded targets, as its anchors and decoding use it.
    Returns:
      labels: (B, N_a) int32 in {1, 0, -1}.
      box_targets: (B, N_a, 4) float32 encoded (dx, dy, dw, dh) of each positive anchor's matched box
      (the ground-truth box of highest IoU); zero for other anchors.
    """
    if not 0.0 <= neg_iou <= pos_iou:
        raise ValueError(f"need 0 <= neg_iou <= pos_iou, got neg_iou={neg_iou}, pos_iou={pos_iou}")
    if not 0.0 <= positive_fraction <= 1.0 or batch_size_per_image < 1:
        raise ValueError(f"need 0 <= positive_fraction <= 1 and batch_size_per_image >= 1, got "
                         f"{positive_fraction} and {batch_size_per_image}")
    anchors = tf.cast(anchors, tf.float32)
    gt_boxes = tf.cast(gt_boxes, tf.float32)
    gt_mask = tf.cast(gt_mask, tf.bool)
    num_anchor_boxes = tf.shape(anchors)[0]

    iou = box_ops.iou(anchors[None], gt_boxes, plus_one=plus_one)  # (B, N_a, P)
    if border_tolerance is None:
        usable = tf.ones([num_anchor_boxes], tf.bool)
    else:
        usable = _inside_image(anchors, image_size, float(border_tolerance))
    iou = tf.where(tf.logical_and(gt_mask[:, None, :], usable[None, :, None]), iou, -1.0)

    best_iou = tf.reduce_max(iou, axis=-1)
    matched = tf.argmax(iou, axis=-1, output_type=tf.int32)
    labels = tf.where(best_iou >= pos_iou, 1, tf.where(best_iou < neg_iou, 0, -1))
    # Each ground-truth box's best anchors, so that every person has a positive anchor.
    gt_best = tf.reduce_max(iou, axis=1, keepdims=True)  # (B, 1, P)
    is_best = tf.reduce_any((iou == gt_best) & (gt_best > 0.0), axis=-1)
    labels = tf.where(is_best, 1, labels)
    labels = tf.where(usable[None, :], labels, -1)
    if ignore_boxes is not None:
        inside = ignored_boxes(anchors[None], ignore_boxes, ignore_mask, ignore_ioa)
        labels = tf.where(tf.logical_and(labels == 0, inside), -1, labels)

    keys = _uniform(tf.shape(labels), seed)
    max_pos = _quota(batch_size_per_image, positive_fraction)
    positive = _sample(labels == 1, keys, max_pos)
    num_pos = tf.reduce_sum(tf.cast(positive, tf.int32), axis=1)
    negative = _sample(labels == 0, keys, batch_size_per_image, limit=batch_size_per_image - num_pos)
    labels = tf.where(positive, 1, tf.where(negative, 0, -1))

    matched_boxes = tf.gather(gt_boxes, matched, batch_dims=1)
    deltas = box_ops.encode_deltas(matched_boxes, anchors[None], weights=tuple(box_weights), plus_one=plus_one)
    box_targets = tf.where(positive[..., None], tf.cast(deltas, tf.float32), 0.0)
    return tf.cast(labels, tf.int32), box_targets


def assign_roi_targets(proposals, proposal_valid, people: Mapping[str, tf.Tensor], anchors2d, anchors3d,
                       num_rois: int = 512, positive_fraction: float = 0.25, fg_iou: float = 0.5,
                       bg_iou_hi: float = 0.5, bg_iou_lo: float = 0.0, add_gt_boxes: bool = True,
                       seed: SeedLike = None, ignore_boxes=None, ignore_mask=None,
                       ignore_ioa: float = 0.5) -> Dict[str, tf.Tensor]:
    """Samples the RoIs of the classification and regression branches and their targets (Sec 3.1-3.5).

    Candidates are the proposals plus, with ``add_gt_boxes``, every valid ground-truth box (full-body
    and upper-body). Each candidate is labelled (module docstring): positive at IoU >= ``fg_iou``,
    background when ``bg_iou_lo <= IoU < bg_iou_hi`` (IoU with the best ground-truth box, 0 in an image
    without people), otherwise unused. Then up to ``int(num_rois * positive_fraction)`` positives are
    drawn at random, and background candidates fill the rest of the ``num_rois``; when there are too
    few candidates the output is padded (``roi_valid`` False, zero box, class 0, zero target and weight).
    Rows come in the order: sampled positives, sampled background, padding.

    Args:
      proposals: (B, N, 4) xyxy pixels (e.g. from :func:`lcr_tf.ops.proposals.generate_proposals`).
      proposal_valid: (B, N) bool, False for padding proposals.
      people: dict with, for P people per image (padded):
        ``boxes_full`` (B, P, 4) and ``boxes_upper`` (B, P, 4) xyxy pixels, ``has_full`` (B, P) bool
        (the full-body box exists), ``person_mask`` (B, P) bool, ``anchor_index`` (B, P) int in
        ``0..K-1`` (the person's nearest anchor), ``pose2d`` (B, P, J, 2) pixels, ``pose3d``
        (B, P, J, 3) metres, body-centred (see :func:`people_from_batch`).
      anchors2d: (2K, J, 2) box-normalised anchor-poses; anchors3d: (2K, J, 3) metres
        (:class:`lcr_tf.poses.anchors.AnchorSet` ``pose2d`` / ``pose3d``).
      num_rois: R, RoIs per image (paper: 512 with ResNet50, 32 per image with VGG16).
      positive_fraction: the most positives take this fraction of R (paper: 25%).
      fg_iou, bg_iou_hi, bg_iou_lo: IoU thresholds (paper: positive at 0.5).
      add_gt_boxes: whether the ground-truth boxes join the candidates.
      seed: random seed (module docstring).
      ignore_boxes, ignore_mask, ignore_ioa: ignore regions as in :func:`assign_rpn_targets`: a
        background candidate more than ``ignore_ioa`` inside one is not drawn.
    Returns:
      dict of
        ``rois`` (B, R, 4) float32 xyxy pixels (gradient stopped: boxes are fixed, Sec 3.5),
        ``roi_valid`` (B, R) bool,
        ``classes`` (B, R) int32 in ``0..2K``,
        ``reg_targets`` (B, R, 5J) float32 (layout of :mod:`lcr_tf.ops.pose_coding`),
        ``reg_weights`` (B, R) float32, 1 for positives, else 0,
        ``matched_iou`` (B, R) float32, IoU with the matched ground-truth box (0 for padding),
        ``matched_person`` (B, R) int32, person index of a positive, -1 otherwise.
    """
    if not 0.0 < fg_iou <= 1.0:
        raise ValueError(f"fg_iou must be in (0, 1], got {fg_iou}")
    if not 0.0 <= bg_iou_lo <= bg_iou_hi:
        raise ValueError(f"need 0 <= bg_iou_lo <= bg_iou_hi, got {bg_iou_lo} and {bg_iou_hi}")
    if num_rois < 1 or not 0.0 <= positive_fraction <= 1.0:
        raise ValueError(f"need num_rois >= 1 and 0 <= positive_fraction <= 1, got {num_rois} and "
                         f"{positive_fraction}")
    missing = [key for key in PEOPLE_KEYS if key not in people]
    if missing:
        raise ValueError(f"people lacks {missing} (expected keys {list(PEOPLE_KEYS)})")
    anchors2d = tf.convert_to_tensor(anchors2d, tf.float32)
    anchors3d = tf.convert_to_tensor(anchors3d, tf.float32)
    num_anchor_poses = anchors2d.shape[0]
    if num_anchor_poses is None or num_anchor_poses % 2:
        raise ValueError(f"anchors2d must have a static, even first dimension 2K, got {anchors2d.shape}")
    k_anchors = num_anchor_poses // 2

    boxes_full = tf.cast(people[BOXES_FULL], tf.float32)
    boxes_upper = tf.cast(people[BOXES_UPPER], tf.float32)
    person_mask = tf.cast(people[batch_keys.PERSON_MASK], tf.bool)
    full_valid = tf.logical_and(person_mask, tf.cast(people[HAS_FULL], tf.bool))
    num_people = tf.shape(boxes_full)[1]
    gt_boxes = tf.concat([boxes_full, boxes_upper], axis=1)  # (B, 2P, 4): full first wins ties
    gt_valid = tf.concat([full_valid, person_mask], axis=1)

    candidates = tf.cast(proposals, tf.float32)
    cand_valid = tf.cast(proposal_valid, tf.bool)
    if add_gt_boxes:
        candidates = tf.concat([candidates, gt_boxes], axis=1)
        cand_valid = tf.concat([cand_valid, gt_valid], axis=1)
    # At least R candidates, so that every top-k below has enough rows.
    pad = tf.maximum(num_rois - tf.shape(candidates)[1], 0)
    candidates = tf.pad(candidates, [[0, 0], [0, pad], [0, 0]])
    cand_valid = tf.pad(cand_valid, [[0, 0], [0, pad]])

    iou = box_ops.iou(candidates, gt_boxes)  # (B, N', 2P)
    iou = tf.where(gt_valid[:, None, :], tf.cast(iou, tf.float32), -1.0)
    best_iou = tf.maximum(tf.reduce_max(iou, axis=-1), 0.0)
    matched = tf.argmax(iou, axis=-1, output_type=tf.int32)
    positive = tf.logical_and(cand_valid, best_iou >= fg_iou)
    background = cand_valid & ~positive & (best_iou >= bg_iou_lo) & (best_iou < bg_iou_hi)
    if ignore_boxes is not None:
        background = background & ~ignored_boxes(candidates, ignore_boxes, ignore_mask, ignore_ioa)

    keys = _uniform(tf.shape(best_iou), seed)
    max_pos = _quota(num_rois, positive_fraction)
    pos_keys, pos_index = tf.math.top_k(tf.where(positive, keys, -1.0), k=max_pos)
    bg_keys, bg_index = tf.math.top_k(tf.where(background, keys, -1.0), k=num_rois)
    # Level 2 for drawn positives, 1 for drawn background, 0 for none, minus the position within the
    # (already random) draws: distinct priorities, so the order is positives, background, padding on
    # any device (no reliance on how top_k breaks ties), and the background beyond R - (number of
    # positives) falls off the end.
    level = tf.concat([tf.where(pos_keys >= 0.0, 2.0, 0.0), tf.where(bg_keys >= 0.0, 1.0, 0.0)], axis=1)
    span = float(max_pos + num_rois + 1)
    priority = level * span - tf.range(max_pos + num_rois, dtype=tf.float32)[None, :]
    index = tf.concat([pos_index, bg_index], axis=1)
    chosen_priority, order = tf.math.top_k(priority, k=num_rois)
    index = tf.gather(index, order, batch_dims=1)  # (B, R) candidate rows
    roi_valid = chosen_priority > 0.0
    roi_positive = chosen_priority > span

    rois = tf.where(roi_valid[..., None], tf.gather(candidates, index, batch_dims=1), 0.0)
    rois = tf.stop_gradient(rois)
    matched_box = tf.gather(matched, index, batch_dims=1)
    person = matched_box % num_people
    upper = matched_box >= num_people
    anchor_index = tf.gather(tf.cast(people[ANCHOR_INDEX], tf.int32), person, batch_dims=1)
    classes = tf.where(roi_positive, tf.where(upper, k_anchors + anchor_index + 1, anchor_index + 1), 0)
    pose2d = tf.gather(tf.cast(people[batch_keys.POSE2D], tf.float32), person, batch_dims=1)
    pose3d = tf.gather(tf.cast(people[batch_keys.POSE3D], tf.float32), person, batch_dims=1)
    reg_targets = pose_coding.encode_pose_targets(pose2d, pose3d, rois, classes, anchors2d, anchors3d)
    return {
        "rois": rois,
        "roi_valid": roi_valid,
        "classes": tf.cast(classes, tf.int32),
        "reg_targets": reg_targets,
        "reg_weights": tf.cast(roi_positive, tf.float32),
        "matched_iou": tf.where(roi_valid, tf.gather(best_iou, index, batch_dims=1), 0.0),
        "matched_person": tf.where(roi_positive, person, -1),
    }


def ignored_boxes(boxes, ignore_boxes, ignore_mask, ignore_ioa: float) -> tf.Tensor:
    """(B, N) bool: box ``n`` of image ``b`` lies more than ``ignore_ioa`` inside one of the image's valid
    ignore regions (intersection over the box's own area, :func:`lcr_tf.ops.box_ops.ioa`).

    Args:
      boxes: (B, N, 4) (or (1, N, 4), shared) xyxy pixels; ignore_boxes: (B, G, 4) xyxy pixels;
        ignore_mask: (B, G) bool.
    """
    if not 0.0 <= ignore_ioa <= 1.0:
        raise ValueError(f"ignore_ioa must be in [0, 1], got {ignore_ioa}")
    overlap = box_ops.ioa(boxes, ignore_boxes)  # (B, N, G)
    overlap = tf.where(tf.cast(ignore_mask, tf.bool)[:, None, :], overlap, 0.0)
    return tf.reduce_max(tf.pad(overlap, [[0, 0], [0, 0], [0, 1]]), axis=-1) > ignore_ioa


def people_from_batch(batch: Mapping[str, tf.Tensor], num_anchors: int, skeleton="lcr13",
                      full_body_mask: str = batch_keys.VISIBLE) -> Dict[str, tf.Tensor]:
    """The ``people`` dict of :func:`assign_roi_targets` from an input batch (:mod:`lcr_tf.data.pipeline`).

    * ``boxes_full``: the batch's pose boxes (of the completed 2D pose, all joints).
    * ``boxes_upper``: pose boxes of the completed pose's upper-body joints
      (:func:`lcr_tf.ops.pose_coding.upper_body_boxes`).
    * ``has_full``: a real person with at least one knee or ankle set in ``batch[full_body_mask]``:
      ``visible`` by default (Sec 4.2: "when at least one joint from the lower limbs is visible"), or
      ``annotated``.
    * ``anchor_index``: ``(anchor_class - 1) mod K``, the nearest anchor whichever of its two classes
      the record holds (0 for padding people).
    * ``person_mask``, ``pose2d``, ``pose3d``: copied.

    Args:
      batch: dict with ``person_mask`` (B, P), ``boxes`` (B, P, 4), ``pose2d`` (B, P, J, 2),
        ``pose3d`` (B, P, J, 3), ``anchor_class`` (B, P) and the mask named by ``full_body_mask``.
      num_anchors: K.
      skeleton: the joint set of the poses.
      full_body_mask: the batch key of the per-joint mask deciding ``has_full``.
    Raises:
      tf.errors.InvalidArgumentError: (when run) a real person's ``anchor_class`` is not in ``1..2K``
        (e.g. -1 "to be assigned" after a flip without anchors).
    """
    skel = skeleton_lib.get_skeleton(skeleton)
    person_mask = tf.cast(batch[batch_keys.PERSON_MASK], tf.bool)
    anchor_class = tf.cast(batch[batch_keys.ANCHOR_CLASS], tf.int32)
    real_class = tf.where(person_mask, anchor_class, 1)
    check = tf.debugging.assert_equal(
        tf.reduce_all((real_class >= 1) & (real_class <= 2 * num_anchors)), True,
        message=f"anchor_class of a real person is outside 1..{2 * num_anchors} (K={num_anchors}); "
                f"assign the classes (lcr_tf.data.augment.anchor_classes) before the targets")
    with tf.control_dependencies([check]):
        anchor_index = tf.where(person_mask, anchor_layout.anchor_pose(anchor_class, num_anchors), 0)
    lower = tf.gather(tf.cast(batch[full_body_mask], tf.bool), skel.lower_body, axis=-1)
    pose2d = tf.cast(batch[batch_keys.POSE2D], tf.float32)
    return {
        BOXES_FULL: tf.cast(batch[batch_keys.BOXES], tf.float32),
        BOXES_UPPER: pose_coding.upper_body_boxes(pose2d, skeleton=skel),
        HAS_FULL: tf.logical_and(person_mask, tf.reduce_any(lower, axis=-1)),
        batch_keys.PERSON_MASK: person_mask,
        ANCHOR_INDEX: anchor_index,
        batch_keys.POSE2D: pose2d,
        batch_keys.POSE3D: tf.cast(batch[batch_keys.POSE3D], tf.float32),
    }


def rpn_gt_boxes(people: Mapping[str, tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor]:
    """The RPN's ground-truth boxes: every person's full-body box (when it has one) and upper-body box.

    Args:
      people: the dict of :func:`people_from_batch`.
    Returns:
      boxes (B, 2P, 4) xyxy pixels (full-body boxes then upper-body boxes) and mask (B, 2P) bool.
    """
    person_mask = tf.cast(people[batch_keys.PERSON_MASK], tf.bool)
    boxes = tf.concat([tf.cast(people[BOXES_FULL], tf.float32), tf.cast(people[BOXES_UPPER], tf.float32)],
                      axis=1)
    mask = tf.concat([tf.logical_and(person_mask, tf.cast(people[HAS_FULL], tf.bool)), person_mask], axis=1)
    return boxes, mask
