"""2D pose metrics as MPII Human Pose's official evaluation computes them: PCKh and multi-person AP.

Conventions: 2D poses are (N, J, 2) pixels (x right, y down, origin top-left); ``visible`` is the (N, J)
mask of *annotated* joints (MPII's ``annopoints``, whatever their ``is_visible`` flag says); head boxes
are MPII's ``x1, y1, x2, y2`` head rectangles in pixels.

* Head size: ``0.6 * ||(x2, y2) - (x1, y1)||``, 0.6 times the diagonal of the head box (MPII's
  ``SC_BIAS``). PCKh@alpha counts a joint correct when its distance to the ground truth is at most
  ``alpha * head size``.
* :func:`pckh` pools every annotated joint of every person (MPII's "total", which weights each joint type
  by its number of annotations); :func:`pckh_per_joint` gives one value per joint type.
* :func:`mpii_multi_person_ap`: per joint type, the average precision of MPII's multi-person protocol.
  Within each group (one image region with its people), every predicted person is compared with every
  ground-truth person by PCKh@threshold over the ground truth's annotated joints; a prediction keeps only
  its best ground truth, then each ground truth takes the prediction with the highest PCKh among those
  that kept it (ties: the lower index). Matched predicted joints are true positives when within the
  threshold; joints of unmatched predictions are false positives; every annotated ground-truth joint is a
  positive. Joints are ranked over all groups by their score (here, optionally, the person's score for
  all its joints), precision and recall follow, and AP is the area under the precision-recall curve with
  PASCAL VOC's all-point interpolation (precision made monotone from the right, summed over the recall
  steps: MPII's ``VOCap``). The mean AP is the mean over joint types.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from lcr_tf.evaluation import _checks

# MPII's ratio between the head size used by PCKh and the diagonal of the annotated head rectangle.
MPII_HEAD_SIZE_RATIO = 0.6


def mpii_head_size(head_boxes) -> np.ndarray:
    """(N, 4) xyxy head rectangles, pixels -> (N,) head sizes, pixels (0.6 x the diagonal)."""
    boxes = np.asarray(head_boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"head_boxes must have shape (N, 4), got {boxes.shape}")
    _checks.check_finite("head_boxes", boxes[:, :, None])
    return MPII_HEAD_SIZE_RATIO * np.linalg.norm(boxes[:, 2:] - boxes[:, :2], axis=1)


def _head_sizes(head_size, n: int) -> np.ndarray:
    hs = np.asarray(head_size, dtype=np.float64)
    if hs.ndim == 0:
        hs = np.full((n,), float(hs))
    if hs.shape != (n,):
        raise ValueError(f"head_size must be a scalar or have shape ({n},), got {hs.shape}")
    _checks.check_finite("head_size", hs)
    if np.any(hs <= 0):
        raise ValueError(f"head_size must be positive; person {int(np.argmax(hs <= 0))} has "
                         f"{hs[np.argmax(hs <= 0)]}")
    return hs


def normalised_distances(pred, gt, visible, head_size) -> np.ndarray:
    """Joint distances divided by the person's head size.

    Args:
      pred, gt: (N, J, 2) pixels.
      visible: (N, J) bool annotated joints of ``gt``.
      head_size: (N,) pixels (see :func:`mpii_head_size`) or a scalar.
    Returns:
      (N, J) float64, in head sizes; NaN where the joint is not annotated.
    """
    p, g = _checks.as_pair(pred, gt, 2)
    vis = _checks.as_mask("visible", visible, p.shape[:2])
    hs = _head_sizes(head_size, p.shape[0])
    _checks.check_finite("pred", p, vis)
    _checks.check_finite("gt", g, vis)
    dist = np.linalg.norm(np.where(vis[..., None], p - g, 0.0), axis=-1) / hs[:, None]
    return np.where(vis, dist, np.nan)


def pckh_curve(pred, gt, visible, head_size, alphas: Sequence[float]) -> np.ndarray:
    """PCKh at several thresholds: (A,) fractions of annotated joints with distance <= alpha x head size."""
    dist = normalised_distances(pred, gt, visible, head_size)
    counted = np.isfinite(dist)
    a = np.asarray(alphas, dtype=np.float64).reshape(-1)
    total = counted.sum()
    if total == 0:
        return np.full(a.shape, np.nan)
    return (dist[counted][None, :] <= a[:, None]).sum(axis=1) / total


def pckh(pred, gt, visible, head_size, alpha: float = 0.5) -> float:
    """PCKh@alpha pooled over every annotated joint of every person.

    Args:
      pred, gt: (N, J, 2) pixels, person ``n`` of ``pred`` paired with person ``n`` of ``gt``.
      visible: (N, J) bool annotated joints.
      head_size: (N,) pixels (:func:`mpii_head_size`) or a scalar.
      alpha: threshold in head sizes (0.5 is the standard PCKh@0.5).
    Returns:
      The fraction in [0, 1] (NaN if no joint is annotated).
    """
    return float(pckh_curve(pred, gt, visible, head_size, [alpha])[0])


def pckh_per_joint(pred, gt, visible, head_size, alpha: float = 0.5) -> np.ndarray:
    """PCKh@alpha per joint type: (J,) fractions; NaN for a joint type annotated on nobody."""
    dist = normalised_distances(pred, gt, visible, head_size)
    counted = np.isfinite(dist)
    hits = (counted & (np.nan_to_num(dist, nan=np.inf) <= alpha)).sum(axis=0)
    total = counted.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, hits / np.maximum(total, 1), np.nan)


@dataclasses.dataclass(frozen=True)
class ErrorParts:
    """Where a 2D pose error comes from, per person (:func:`error_parts`); (N,) float64 each, NaN for a
    person with fewer than 2 annotated joints.

    Attributes:
      translation: distance between the mean annotated joint of the prediction and of the ground truth,
        in head sizes: how far off the person is placed.
      shape: mean joint distance once both poses are centred on their mean annotated joint, in head
        sizes: what is wrong with the articulation and size, wherever the person is.
      extent_ratio: RMS distance of the predicted joints to their mean over that of the ground truth's
        (below 1: the prediction is shrunk, as averaged poses are).
    """

    translation: np.ndarray
    shape: np.ndarray
    extent_ratio: np.ndarray


def error_parts(pred, gt, visible, head_size) -> ErrorParts:
    """Splits each person's 2D error into a translation and a shape part (:class:`ErrorParts`).

    Args:
      pred, gt: (N, J, 2) pixels, paired people.
      visible: (N, J) bool annotated joints of ``gt`` (the only joints used, in both poses).
      head_size: (N,) pixels or a scalar.
    """
    p, g = _checks.as_pair(pred, gt, 2)
    vis = _checks.as_mask("visible", visible, p.shape[:2])
    hs = _head_sizes(head_size, p.shape[0])
    _checks.check_finite("pred", p, vis)
    _checks.check_finite("gt", g, vis)
    m = vis[..., None]
    count = vis.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(m, p, 0.0).sum(axis=1) / count[:, None]
        mean_g = np.where(m, g, 0.0).sum(axis=1) / count[:, None]
        # Centred, zero at unannotated joints (whatever they hold, NaN included).
        u = np.where(m, p - mean_p[:, None], 0.0)
        v = np.where(m, g - mean_g[:, None], 0.0)
        translation = np.linalg.norm(mean_p - mean_g, axis=-1) / hs
        shape = np.linalg.norm(u - v, axis=-1).sum(axis=1) / count / hs
        extent = np.sqrt(np.sum(u * u, axis=(1, 2)) / np.sum(v * v, axis=(1, 2)))
    ok = count >= 2
    return ErrorParts(*(np.where(ok, x, np.nan) for x in (translation, shape, extent)))


@dataclasses.dataclass(frozen=True)
class MultiPersonAP:
    """MPII multi-person average precision.

    Attributes:
      per_joint: (J,) AP per joint type, fractions in [0, 1].
      mean: mean of ``per_joint`` (MPII's "total").
      num_positives: (J,) annotated ground-truth joints per joint type.
      num_predictions: (J,) predicted joints per joint type.
    """

    per_joint: np.ndarray
    mean: float
    num_positives: np.ndarray
    num_predictions: np.ndarray


def voc_average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """PASCAL VOC all-point interpolated AP (MPII's ``VOCap``).

    Args:
      recall, precision: (K,) along the ranked list (recall non-decreasing).
    Returns:
      sum over recall steps of (step) x (max precision at this recall or beyond).
    """
    mrec = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    mpre = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    step = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[step] - mrec[step - 1]) * mpre[step]))


def assign_group(pred, gt, visible, head_size, threshold: float = 0.5):
    """MPII's assignment of predicted to ground-truth people within one group.

    Args:
      pred: (P, J, 2) pixels, predicted people.
      gt: (G, J, 2) pixels, ground-truth people; visible: (G, J) bool annotated joints.
      head_size: (G,) pixels.
      threshold: PCKh threshold in head sizes.
    Returns:
      ``(pred_to_gt, correct)``: (P,) int, the ground truth each prediction is matched to or -1; and
      (P, J) bool, whether each predicted joint is a true positive.
    """
    p = _checks.as_poses("pred", pred, 2)
    g = _checks.as_poses("gt", gt, 2)
    if p.shape[1] != g.shape[1]:
        raise ValueError(f"pred has {p.shape[1]} joints, gt has {g.shape[1]}")
    vis = _checks.as_mask("visible", visible, g.shape[:2])
    hs = _head_sizes(head_size, g.shape[0])
    _checks.check_finite("pred", p)
    _checks.check_finite("gt", g, vis)
    num_p, num_g = p.shape[0], g.shape[0]
    pred_to_gt = np.full((num_p,), -1, dtype=np.int64)
    correct = np.zeros(p.shape[:2], dtype=bool)
    if num_p == 0 or num_g == 0:
        return pred_to_gt, correct
    dist = np.linalg.norm(p[:, None] - np.where(vis[..., None], g, 0.0)[None], axis=-1) / hs[None, :, None]
    match = vis[None] & (dist <= threshold)                                   # (P, G, J)
    n_annot = vis.sum(axis=1)
    pck = np.where(n_annot > 0, match.sum(axis=2) / np.maximum(n_annot, 1), 0.0)  # (P, G)
    # Each prediction keeps only its best ground truth; each ground truth then takes its best prediction.
    best_gt = np.argmax(pck, axis=1)
    keep = np.zeros_like(pck)
    keep[np.arange(num_p), best_gt] = pck[np.arange(num_p), best_gt]
    best_pred = np.argmax(keep, axis=0)
    chosen = keep[best_pred, np.arange(num_g)] > 0
    pred_to_gt[best_pred[chosen]] = np.flatnonzero(chosen)
    hit = pred_to_gt >= 0
    correct[hit] = match[np.flatnonzero(hit), pred_to_gt[hit]]
    return pred_to_gt, correct


def mpii_multi_person_ap(pred_poses: Sequence, pred_scores: Sequence, gt_poses: Sequence,
                         gt_visible: Sequence, head_sizes: Sequence,
                         threshold: float = 0.5, pred_present: Optional[Sequence] = None) -> MultiPersonAP:
    """MPII multi-person AP per joint type and its mean (see the module docstring for the protocol).

    Args (one entry per group; a loop over groups, vectorised within a group):
      pred_poses: (P_i, J, 2) pixels, the predicted people of group i (P_i may be 0).
      pred_scores: (P_i,) person scores (used for every joint of the person) or (P_i, J) joint scores.
      gt_poses: (G_i, J, 2) pixels; gt_visible: (G_i, J) bool annotated joints.
      head_sizes: (G_i,) pixels (:func:`mpii_head_size`).
      threshold: PCKh threshold in head sizes (0.5: the standard mAP@0.5).
      pred_present: None (every predicted joint is a prediction), or per group (P_i, J) bool: the joints a
        detector reports (e.g. those inside the image); the others are neither true nor false positives.
    Returns:
      :class:`MultiPersonAP`. A joint type with no annotation has AP NaN and is left out of the mean.
    """
    lengths = [len(x) for x in (pred_poses, pred_scores, gt_poses, gt_visible, head_sizes)]
    if len(set(lengths)) != 1:
        raise ValueError("pred_poses, pred_scores, gt_poses, gt_visible and head_sizes must list the "
                         f"same number of groups, got {lengths}")
    if pred_present is not None and len(pred_present) != lengths[0]:
        raise ValueError(f"pred_present lists {len(pred_present)} groups, expected {lengths[0]}")
    scores_all, labels_all, present_all, positives, num_joints = [], [], [], None, None
    for i in range(len(pred_poses)):
        try:
            p = _checks.as_poses("pred", pred_poses[i], 2)
            g = _checks.as_poses("gt", gt_poses[i], 2)
            if num_joints is None:
                num_joints = g.shape[1]
            if p.shape[1] != num_joints or g.shape[1] != num_joints:
                raise ValueError(f"expected {num_joints} joints, got pred {p.shape[1]} / gt {g.shape[1]}")
            s = np.asarray(pred_scores[i], dtype=np.float64)
            if s.shape == (p.shape[0],):
                s = np.repeat(s[:, None], num_joints, axis=1)
            if s.shape != p.shape[:2]:
                raise ValueError(f"pred_scores must have shape ({p.shape[0]},) or {p.shape[:2]}, "
                                 f"got {s.shape}")
            _checks.check_finite("pred_scores", s)
            _, correct = assign_group(p, g, gt_visible[i], head_sizes[i], threshold)
            vis = _checks.as_mask("gt_visible", gt_visible[i], g.shape[:2])
            present = (np.ones(p.shape[:2], bool) if pred_present is None
                       else _checks.as_mask("pred_present", pred_present[i], p.shape[:2]))
        except ValueError as e:
            raise ValueError(f"group {i}: {e}") from None
        scores_all.append(s)
        labels_all.append(correct)
        present_all.append(present)
        positives = vis.sum(axis=0) if positives is None else positives + vis.sum(axis=0)
    if num_joints is None:
        raise ValueError("no groups to evaluate")
    scores = np.concatenate(scores_all, axis=0)   # (sum P_i, J)
    labels = np.concatenate(labels_all, axis=0)
    present = np.concatenate(present_all, axis=0)
    ap = np.full((num_joints,), np.nan)
    for j in range(num_joints):  # a dozen joint types, each one sort
        if positives[j] == 0:
            continue
        rows = np.flatnonzero(present[:, j])
        order = rows[np.argsort(-scores[rows, j], kind="stable")]
        tp = np.cumsum(labels[order, j])
        precision = tp / np.arange(1, len(tp) + 1)
        recall = tp / positives[j]
        ap[j] = voc_average_precision(recall, precision)
    mean = float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")
    return MultiPersonAP(per_joint=ap, mean=mean, num_positives=positives.astype(np.int64),
                         num_predictions=present.sum(axis=0).astype(np.int64))
