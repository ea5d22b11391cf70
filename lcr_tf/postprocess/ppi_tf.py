"""Pose proposal integration in TensorFlow, graph-compatible, for one image.

Same rules, modes and tie-breaking as the NumPy reference :mod:`lcr_tf.postprocess.integration` (its module
docstring documents them); the greedy grouping and the modes are two nested ``tf.while_loop``. Candidates
come padded to a fixed M with a ``valid`` mask (from
:func:`lcr_tf.postprocess.decoding_tf.select_candidates_tf`); outputs are padded to D = ``max_detections``.
The numeric settings may be tensors (SavedModel inputs); ``mode``, ``group_by`` and ``max_detections``
are Python values fixed at trace time.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Union

import tensorflow as tf

from lcr_tf.ops import box_ops, pose_coding
from lcr_tf.postprocess.decoding_tf import select_candidates_tf
from lcr_tf.postprocess.integration import OFFICIAL_LOWER_BODY_JOINTS, OFFICIAL_UPPER_BODY_WEIGHT
from lcr_tf.postprocess.params import DEFAULT_POSE3D_THRESHOLD_M, GROUP_BY, PPIParams, check_mode
from lcr_tf.postprocess.rescoring_tf import rescore_tf

_STATIC = ("group_by", "max_detections", "max_candidates")


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
    if settings["pose3d_threshold_m"] is None:
        settings["pose3d_threshold_m"] = DEFAULT_POSE3D_THRESHOLD_M[mode]
    return settings


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
        applies at selection).
      mode: "paper", "official" or "nms".
    Returns:
      dict: ``num_detections`` () int32, ``scores`` (D,) float32, ``boxes`` (D, 4) pose boxes,
      ``pose2d`` (D, J, 2), ``pose3d`` (D, J, 3); rows past ``num_detections`` are zero.
    """
    check_mode(mode)
    s = _settings(params, mode)
    official = mode == "official"
    nms = mode == "nms"
    max_det = int(s["max_detections"])
    scores = tf.cast(scores, tf.float32)
    roi_boxes = tf.cast(roi_boxes, tf.float32)
    pose2d = tf.cast(pose2d, tf.float32)
    pose3d = tf.cast(pose3d, tf.float32)
    classes = tf.cast(classes, tf.int32)
    valid = tf.cast(valid, tf.bool)
    del image_size

    finite = tf.reduce_all(tf.stack([
        tf.reduce_all(tf.math.is_finite(tf.where(valid, scores, 0.0))),
        tf.reduce_all(tf.math.is_finite(tf.where(valid[:, None], roi_boxes, 0.0))),
        tf.reduce_all(tf.math.is_finite(tf.where(valid[:, None, None], pose2d, 0.0))),
        tf.reduce_all(tf.math.is_finite(tf.where(valid[:, None, None], pose3d, 0.0)))]))
    with tf.control_dependencies([tf.debugging.Assert(finite, ["PPI candidates have non-finite values"])]):
        scores = tf.identity(scores)

    m = tf.shape(scores)[0]

    if not official:
        rescore = tf.cast(s["rescore"], tf.bool)
        scores = tf.where(rescore, rescore_tf(scores, pose2d, roi_boxes, s["sigma_b_px"]), scores)
    if official or s["group_by"] == "roi_box":
        group_boxes = roi_boxes
    else:
        group_boxes = pose_coding.pose_boxes(pose2d)
    factor = tf.ones_like(pose2d[..., 0])
    if official and s["num_full_body"] is not None:
        upper = (classes - 1) > tf.cast(s["num_full_body"], tf.int32)
        lower = tf.range(tf.shape(pose2d)[1]) < int(OFFICIAL_LOWER_BODY_JOINTS.size)
        factor = tf.where(upper[:, None] & lower[None, :], OFFICIAL_UPPER_BODY_WEIGHT, factor)
    weights = scores[:, None] * factor

    # Sorting once makes "the best remaining candidate" the first remaining one (stable tie-break).
    order = tf.argsort(tf.where(valid, scores, -float("inf")), direction="DESCENDING", stable=True)
    scores, group_boxes, pose2d, pose3d, weights, valid = (
        tf.gather(a, order) for a in (scores, group_boxes, pose2d, pose3d, weights, valid))

    iou_th = tf.cast(s["iou_threshold"], tf.float32)
    pose_th = tf.cast(s["pose3d_threshold_m"], tf.float32)
    min_mode = tf.cast(s["min_mode_score"], tf.float32)
    min_person = tf.cast(s["min_person_score"], tf.float32)
    index = tf.range(m)

    def first(mask):
        return tf.reduce_min(tf.where(mask, index, m))

    def modes(group):
        def body(covered, has_mode, done, best_score, best2d, best3d):
            open_ = group & ~covered
            seed = tf.minimum(first(open_), m - 1)
            stop = ~tf.reduce_any(open_) | (has_mode & (scores[seed] < min_mode))
            is_seed = tf.equal(index, seed)
            if nms:
                members = is_seed
            else:
                d3 = tf.reduce_mean(tf.norm(pose3d - pose3d[seed], axis=-1), axis=-1)
                members = (group & (d3 < pose_th)) | is_seed
            mode_score = tf.reduce_sum(tf.where(members, scores, 0.0))
            w = tf.where(members[:, None], weights, 0.0)[..., None]
            total = tf.reduce_sum(w, axis=0)
            p2 = tf.where(total > 0, tf.math.divide_no_nan(tf.reduce_sum(w * pose2d, 0), total), pose2d[seed])
            p3 = tf.where(total > 0, tf.math.divide_no_nan(tf.reduce_sum(w * pose3d, 0), total), pose3d[seed])
            better = ~stop & (~has_mode | (mode_score > best_score))
            return (tf.where(stop, covered, covered | members), has_mode | ~stop,
                    stop | tf.constant(nms), tf.where(better, mode_score, best_score),
                    tf.where(better, p2, best2d), tf.where(better, p3, best3d))

        init = (tf.zeros_like(group), tf.constant(False), tf.constant(False), tf.constant(0.0),
                tf.zeros_like(pose2d[0]), tf.zeros_like(pose3d[0]))
        out = tf.while_loop(lambda c, h, done, *_: ~done, body, init)
        return out[3], out[4], out[5]

    def group_body(remaining, count, out_scores, out2d, out3d):
        seed = first(remaining)
        group = remaining & ((box_ops.iou(group_boxes[seed][None], group_boxes, plus_one=official)[0] > iou_th)
                             | tf.equal(index, seed))
        score, p2, p3 = modes(group)
        at = [[count]]
        return (remaining & ~group, count + 1,
                tf.tensor_scatter_nd_update(out_scores, at, score[None]),
                tf.tensor_scatter_nd_update(out2d, at, p2[None]),
                tf.tensor_scatter_nd_update(out3d, at, p3[None]))

    init = (valid, tf.constant(0), tf.fill([m], -1.0), tf.zeros_like(pose2d), tf.zeros_like(pose3d))
    _, _, group_scores, group2d, group3d = tf.while_loop(
        lambda remaining, *_: tf.reduce_any(remaining), group_body, init)

    kept = group_scores > min_person
    k = tf.minimum(max_det, m)
    top, pick = tf.math.top_k(tf.where(kept, group_scores, -float("inf")), k=k, sorted=True)
    ok = top > -float("inf")
    num = tf.reduce_sum(tf.cast(ok, tf.int32))
    pad = max_det - k
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
      params: as :func:`integrate_candidates`; ``score_threshold`` None: 0.1 / C.
    Returns:
      The dict of :func:`integrate_candidates`.
    """
    check_mode(mode)
    s = _settings(params, mode)
    scores = tf.cast(scores, tf.float32)
    c = tf.shape(scores)[1] - 1
    threshold = s["score_threshold"]
    if threshold is None:
        threshold = 0.1 / tf.cast(c, tf.float32)
    roi, classes, cand_scores, valid = select_candidates_tf(scores, threshold, int(s["max_candidates"]))
    index = tf.stack([roi, classes - 1], axis=-1)
    return integrate_candidates(cand_scores, tf.gather(tf.cast(boxes, tf.float32), roi),
                                tf.gather_nd(tf.cast(pose2d, tf.float32), index),
                                tf.gather_nd(tf.cast(pose3d, tf.float32), index), classes, valid,
                                image_size, s, mode)
