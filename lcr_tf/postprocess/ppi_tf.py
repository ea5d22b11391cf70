"""Pose proposal integration in TensorFlow, graph-compatible, for one image.

Same rules, modes and tie-breaking as the NumPy reference :mod:`lcr_tf.postprocess.integration` (its module
docstring documents them, the official mode's ``iou_func`` criteria and the release's quirks included); the
greedy grouping and the modes are two nested ``tf.while_loop``. Candidates come padded to a fixed M with a
``valid`` mask (from :func:`lcr_tf.postprocess.decoding_tf.select_candidates_tf`); outputs are padded to
D = ``max_detections`` (to M when it is None). The numeric settings may be tensors (SavedModel inputs);
``mode``, ``group_by``, ``iou_func``, ``max_candidates`` and ``max_detections`` are Python values fixed at
trace time.

Cost: the valid rows are gathered first, so padding costs nothing. Each group compares its seed with every
candidate (O(M L), L the joints of the criterion, 2 for boxes) and its modes run on the group's members
only (O(Q J) per mode for a group of Q); people go to a TensorArray. Memory is O(M J), never O(M^2).
Arithmetic is float32: a weighted mean is summed about the mode's seed (the deviations are small), so a mean
of hundreds of poses is off by about the float32 step of its result (6e-5 px between 512 and 1024 px) rather
than by hundreds of steps. A decision whose float64 margin is within float32 round-off of a
threshold (relative 1e-7) may go the other way than in float64.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Union

import tensorflow as tf

from lcr_tf.ops import box_ops, pose_coding
from lcr_tf.postprocess.decoding_tf import select_candidates_tf
from lcr_tf.postprocess.integration import (
    OFFICIAL_LOWER_BODY_JOINTS,
    OFFICIAL_UPPER_BODY_WEIGHT,
    official_weighting_applies,
    release_joint_lists,
)
from lcr_tf.postprocess.params import (
    DEFAULT_POSE3D_THRESHOLD_M,
    GROUP_BY,
    RELEASE_SCORE_FACTOR,
    PPIParams,
    check_iou_func,
    check_mode,
)
from lcr_tf.postprocess.rescoring_tf import rescore_tf

_STATIC = ("group_by", "iou_func", "max_detections", "max_candidates")


def _settings(params, mode: str) -> dict:
    """PPIParams or a mapping (tensors allowed for numeric fields) -> dict of resolved settings."""
    if params is None:
        params = PPIParams()
    if isinstance(params, PPIParams):
        params = dataclasses.asdict(params)
    settings = dataclasses.asdict(PPIParams())
    unknown = set(params) - set(settings)
    if unknown:
        raise ValueError(f"unknown PPI parameters: {sorted(unknown)}")
    settings.update(params)
    if settings["group_by"] not in GROUP_BY:
        raise ValueError(f"group_by must be one of {GROUP_BY}, got {settings['group_by']!r}")
    check_iou_func(settings["iou_func"])
    if mode != "official" and settings["iou_func"] != "bbox":
        raise ValueError(f"iou_func={settings['iou_func']!r} is a setting of the official mode, not of mode {mode!r}")
    for name in ("max_candidates", "max_detections"):  # they fix shapes: Python ints (or None)
        value = settings[name]
        if value is not None:
            if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) < 1:
                raise ValueError(f"{name} must be a positive Python int or None, got {value!r}")
            settings[name] = int(value)
    if settings["pose3d_threshold_m"] is None:
        settings["pose3d_threshold_m"] = DEFAULT_POSE3D_THRESHOLD_M[mode]
    return settings


def _release_iou(boxes, box):
    """(M, 4) and (4,) -> (M,) IoU written as the release writes it (integration.release_iou); the
    intersection's right edge is ``min(x2 + 1, x2' + 1)``; NaN (never grouped) where the union is 0."""
    w = tf.maximum(0.0, tf.minimum(boxes[:, 2] + 1, box[2] + 1) - tf.maximum(boxes[:, 0], box[0]))
    h = tf.maximum(0.0, tf.minimum(boxes[:, 3] + 1, box[3] + 1) - tf.maximum(boxes[:, 1], box[1]))
    inter = w * h
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    area_box = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    return inter / (area + area_box - inter)


def _grouping(mode: str, s: dict, roi_boxes, pose2d, num_joints):
    """The grouping criterion: ``inside(seed)`` -> (M,) bool, whether each candidate passes it against
    candidate ``seed`` (the caller restricts to the remaining ones and adds the seed)."""
    th = tf.cast(s["iou_threshold"], tf.float32)
    if mode != "official":
        boxes = roi_boxes if s["group_by"] == "roi_box" else pose_coding.pose_boxes(pose2d)
        return lambda seed: box_ops.iou(boxes[seed][None], boxes)[0] > th
    if num_joints is None:
        if s["iou_func"] not in ("bbox", "bbox_torsohead"):
            raise ValueError(f"iou_func {s['iou_func']!r} needs the number of joints J known at trace time")
        joints = swapped = None
    else:
        joints, swapped = release_joint_lists(s["iou_func"], num_joints)
    if joints is None:
        return lambda seed: _release_iou(roi_boxes, roi_boxes[seed]) > th
    # The joints the criterion reads, gathered once: (M, L, 2), and with left and right swapped.
    chosen = tf.gather(pose2d, joints, axis=1)
    flipped = None if swapped is None else tf.gather(pose2d, swapped, axis=1)

    def inside(seed):
        dist = tf.reduce_mean(tf.norm(chosen - chosen[seed], axis=-1), axis=-1)
        if flipped is not None:
            dist = tf.minimum(dist, tf.reduce_mean(tf.norm(flipped - chosen[seed], axis=-1), axis=-1))
        box = roi_boxes[seed]
        return dist / (2 * tf.reduce_max(box[2:4] - box[0:2] + 1)) < th

    return inside


def _weighted_mean(weights, poses, seed_pose):
    """(Q, J) weights, (Q, J, D) poses -> (J, D) their weighted mean, summed about ``seed_pose`` (J, D) for
    float32 accuracy; the seed's pose on joints whose weights sum to 0."""
    w = weights[..., None]
    total = tf.reduce_sum(w, axis=0)
    mean = seed_pose + tf.math.divide_no_nan(tf.reduce_sum(w * (poses - seed_pose), axis=0), total)
    return tf.where(total > 0, mean, seed_pose)


def _best_mode(scores, pose2d, pose3d, weights, pose_th, min_mode, nms: bool):
    """The first best-scoring mode of one group (its Q candidates sorted by decreasing score, stably):
    (score (), pose2d (J, 2), pose3d (J, 3))."""
    q = tf.shape(scores)[0]
    index = tf.range(q)

    def body(covered, has_mode, done, best_score, best2d, best3d):
        open_ = ~covered
        seed = tf.minimum(tf.reduce_min(tf.where(open_, index, q)), q - 1)
        stop = ~tf.reduce_any(open_) | (has_mode & (scores[seed] < min_mode))
        is_seed = tf.equal(index, seed)
        if nms:
            members = is_seed
        else:
            d3 = tf.reduce_mean(tf.norm(pose3d - pose3d[seed], axis=-1), axis=-1)
            members = (d3 < pose_th) | is_seed
        mode_score = tf.reduce_sum(tf.where(members, scores, 0.0))
        w = tf.where(members[:, None], weights, 0.0)
        p2 = _weighted_mean(w, pose2d, pose2d[seed])
        p3 = _weighted_mean(w, pose3d, pose3d[seed])
        better = ~stop & (~has_mode | (mode_score > best_score))
        return (tf.where(stop, covered, covered | members), has_mode | ~stop,
                stop | tf.constant(nms), tf.where(better, mode_score, best_score),
                tf.where(better, p2, best2d), tf.where(better, p3, best3d))

    init = (tf.zeros([q], tf.bool), tf.constant(False), tf.constant(False), tf.constant(0.0),
            tf.zeros_like(pose2d[0]), tf.zeros_like(pose3d[0]))
    out = tf.while_loop(lambda c, h, done, *_: ~done, body, init)
    return out[3], out[4], out[5]


def integrate_candidates(scores, roi_boxes, pose2d, pose3d, classes, valid, image_size=None,
                         params: Union[PPIParams, Mapping, None] = None, mode: str = "paper") -> dict:
    """PPI (or NMS) of one image's candidates in TensorFlow.

    Args:
      scores: (M,) float classification scores.
      roi_boxes: (M, 4) xyxy px.
      pose2d: (M, J, 2) px; pose3d: (M, J, 3) m, body-centred.
      classes: (M,) int in ``1..C``.
      valid: (M,) bool; rows that are False are ignored (padding).
      image_size: (2,) (height, width) or None; not used by the arithmetic.
      params: :class:`PPIParams` or a mapping of its field names; numeric fields may be scalar tensors.
        ``num_full_body`` None: nothing is down-weighted. ``score_threshold`` is not used here (it
        applies at selection). ``iou_func`` other than "bbox" needs the official mode (and J known at
        trace time).
      mode: "paper", "official" or "nms".
    Returns:
      dict: ``num_detections`` () int32, ``scores`` (D,) float32, ``boxes`` (D, 4) pose boxes,
      ``pose2d`` (D, J, 2), ``pose3d`` (D, J, 3); rows past ``num_detections`` are zero. D is
      ``max_detections``, or M when it is None.
    """
    check_mode(mode)
    s = _settings(params, mode)
    official = mode == "official"
    nms = mode == "nms"
    scores = tf.cast(scores, tf.float32)
    roi_boxes = tf.cast(roi_boxes, tf.float32)
    pose2d = tf.cast(pose2d, tf.float32)
    pose3d = tf.cast(pose3d, tf.float32)
    classes = tf.cast(classes, tf.int32)
    valid = tf.cast(valid, tf.bool)
    del image_size
    num_joints = pose2d.shape[1]
    if official and num_joints is not None:
        check_iou_func(s["iou_func"], num_joints)  # the release's assert (line 88), at trace time

    finite = tf.reduce_all(tf.stack([
        tf.reduce_all(tf.math.is_finite(tf.where(valid, scores, 0.0))),
        tf.reduce_all(tf.math.is_finite(tf.where(valid[:, None], roi_boxes, 0.0))),
        tf.reduce_all(tf.math.is_finite(tf.where(valid[:, None, None], pose2d, 0.0))),
        tf.reduce_all(tf.math.is_finite(tf.where(valid[:, None, None], pose3d, 0.0)))]))
    with tf.control_dependencies([tf.debugging.Assert(finite, ["PPI candidates have non-finite values"])]):
        scores = tf.identity(scores)

    m_in = tf.shape(scores)[0]
    max_det = s["max_detections"]
    d = m_in if max_det is None else int(max_det)

    # The valid rows only (in their order), so that padding costs nothing below.
    keep = tf.where(valid)[:, 0]
    scores, roi_boxes, pose2d, pose3d, classes = (
        tf.gather(a, keep) for a in (scores, roi_boxes, pose2d, pose3d, classes))
    m = tf.shape(scores)[0]

    if not official:
        rescore = tf.cast(s["rescore"], tf.bool)
        scores = tf.where(rescore, rescore_tf(scores, pose2d, roi_boxes, s["sigma_b_px"]), scores)
    factor = tf.ones_like(pose2d[..., 0])
    if official and s["num_full_body"] is not None:
        j_now = tf.shape(pose2d)[1]  # J where it is not static
        applies = (tf.constant(official_weighting_applies(num_joints)) if num_joints is not None
                   else (tf.equal(j_now, 13) | tf.equal(j_now, 14)))
        upper = applies & ((classes - 1) > tf.cast(s["num_full_body"], tf.int32))
        lower = tf.range(j_now) < int(OFFICIAL_LOWER_BODY_JOINTS.size)
        factor = tf.where(upper[:, None] & lower[None, :], OFFICIAL_UPPER_BODY_WEIGHT, factor)
    weights = scores[:, None] * factor

    # Sorting once makes "the best remaining candidate" the first remaining one (stable tie-break).
    order = tf.argsort(scores, direction="DESCENDING", stable=True)
    scores, roi_boxes, pose2d, pose3d, weights = (
        tf.gather(a, order) for a in (scores, roi_boxes, pose2d, pose3d, weights))
    inside = _grouping(mode, s, roi_boxes, pose2d, num_joints)

    pose_th = tf.cast(s["pose3d_threshold_m"], tf.float32)
    min_mode = tf.cast(s["min_mode_score"], tf.float32)
    min_person = tf.cast(s["min_person_score"], tf.float32)
    index = tf.range(m)

    def group_body(remaining, count, out_scores, out2d, out3d):
        seed = tf.reduce_min(tf.where(remaining, index, m))
        group = remaining & (inside(seed) | tf.equal(index, seed))
        rows = tf.where(group)[:, 0]  # the group's candidates, still sorted
        score, p2, p3 = _best_mode(tf.gather(scores, rows), tf.gather(pose2d, rows), tf.gather(pose3d, rows),
                                   tf.gather(weights, rows), pose_th, min_mode, nms)
        return (remaining & ~group, count + 1, out_scores.write(count, score), out2d.write(count, p2),
                out3d.write(count, p3))

    # One person per group, written once (a TensorArray, not an (M, J, D) tensor updated per group). Row 0
    # holds zeros and is dropped after the loop: stacking then works with no group even when J is not static.
    j_now = tf.shape(pose2d)[1]
    arrays = [tf.TensorArray(tf.float32, size=1, dynamic_size=True, element_shape=shape).write(0, tf.zeros(zeros))
              for shape, zeros in (([], []), (pose2d.shape[1:], [j_now, 2]), (pose3d.shape[1:], [j_now, 3]))]
    _, _, *arrays = tf.while_loop(lambda remaining, *_: tf.reduce_any(remaining), group_body,
                                  (tf.ones([m], tf.bool), tf.constant(1), *arrays))
    group_scores, group2d, group3d = (a.stack()[1:] for a in arrays)

    kept = group_scores > min_person
    k = tf.minimum(d, tf.shape(group_scores)[0])
    top, pick = tf.math.top_k(tf.where(kept, group_scores, -float("inf")), k=k, sorted=True)  # ties: first
    ok = top > -float("inf")
    num = tf.reduce_sum(tf.cast(ok, tf.int32))
    pad = d - k
    out2d = tf.where(ok[:, None, None], tf.gather(group2d, pick), 0.0)
    boxes = tf.where(ok[:, None], pose_coding.pose_boxes(out2d), 0.0)
    return dict(
        num_detections=num,
        scores=tf.pad(tf.where(ok, top, 0.0), [[0, pad]]),
        boxes=tf.pad(boxes, [[0, pad], [0, 0]]),
        pose2d=tf.pad(out2d, [[0, pad], [0, 0], [0, 0]]),
        pose3d=tf.pad(tf.where(ok[:, None, None], tf.gather(group3d, pick), 0.0), [[0, pad], [0, 0], [0, 0]]))


def ppi_tf(scores, boxes, pose2d, pose3d, image_size=None, params: Union[PPIParams, Mapping, None] = None,
           mode: str = "paper") -> dict:
    """TensorFlow twin of :func:`lcr_tf.postprocess.ppi` on the release layout, one image.

    Args:
      scores: (N, C+1) probabilities, background first. boxes: (N, 4) xyxy px.
      pose2d: (N, C, J, 2) px. pose3d: (N, C, J, 3) m.
      params: as :func:`integrate_candidates`; ``score_threshold`` None: 0.1 / C. ``max_candidates``
        None: every (RoI, class) pair scoring ``>=`` the threshold, as the release (its line 49); the
        candidates are then the N C pairs' valid ones, of dynamic number.
    Returns:
      The dict of :func:`integrate_candidates`.
    """
    check_mode(mode)
    s = _settings(params, mode)
    scores = tf.cast(scores, tf.float32)
    c = tf.shape(scores)[1] - 1
    threshold = s["score_threshold"]
    if threshold is None:
        # 0.1 / C in float64, then float32: the release's Python float compared with float32 scores.
        threshold = RELEASE_SCORE_FACTOR / tf.cast(c, tf.float64)
    threshold = tf.cast(threshold, tf.float32)
    if s["max_candidates"] is None:
        # Every pair over the threshold, RoI-major (integrate_candidates sorts them stably by score).
        flat = tf.reshape(scores[:, 1:], [-1])
        chosen = tf.cast(tf.where(flat >= threshold)[:, 0], tf.int32)
        roi, classes, cand_scores = chosen // c, chosen % c + 1, tf.gather(flat, chosen)
        valid = tf.ones_like(chosen, tf.bool)
    else:
        roi, classes, cand_scores, valid = select_candidates_tf(scores, threshold, s["max_candidates"])
    index = tf.stack([roi, classes - 1], axis=-1)
    return integrate_candidates(cand_scores, tf.gather(tf.cast(boxes, tf.float32), roi),
                                tf.gather_nd(tf.cast(pose2d, tf.float32), index),
                                tf.gather_nd(tf.cast(pose3d, tf.float32), index), classes, valid,
                                image_size, s, mode)
