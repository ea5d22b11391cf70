"""ONE pairing of predictions with the ground-truth people, used by every benchmark: the detections of a
row (``ppi`` / ``nms``) matched one-to-one to the people of their image by the Hungarian algorithm on the
mean 2D joint distance over the annotated joints (:func:`lcr_tf.evaluation.match_detections`, optionally
gated), or, for the upper bound, each person's closest candidate in 2D.
"""

from __future__ import annotations

import dataclasses
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from lcr_tf import evaluation
from lcr_tf.contracts import serving
from lcr_tf.evaluation.ground_truth import GroundTruth
from lcr_tf.evaluation.tables import MODES, SKELETON, UPPER_BOUND


def concat(parts: List[np.ndarray], tail) -> np.ndarray:
    """``parts`` concatenated on the first axis; (0, *tail) when there is none."""
    return np.concatenate(parts, axis=0) if parts else np.zeros((0,) + tuple(tail))


def stack(ground_truth: Sequence[GroundTruth], field: str, tail) -> np.ndarray:
    """A field of every image's people, concatenated in image order."""
    return concat([np.asarray(getattr(gt, field)) for gt in ground_truth], tail)


def groups_of(ground_truth: Sequence[GroundTruth]) -> np.ndarray:
    """(N,) the group (action, sequence) of each person, in image order."""
    return np.asarray([gt.group for gt in ground_truth for _ in range(len(gt.pose2d))], dtype=object)


def methods(predictions: Mapping[str, Mapping[str, Any]], ground_truth: Sequence[GroundTruth]) -> Tuple[str, ...]:
    """The rows the predictions allow: :data:`MODES`, and ``upper_bound`` when every image has candidates."""
    has_candidates = bool(ground_truth) and all(
        predictions.get(gt.image_id, {}).get("candidates") is not None for gt in ground_truth)
    return MODES + ((UPPER_BOUND,) if has_candidates else ())


def missing_images(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Any]) -> None:
    """Raises ValueError naming the first image of ``ground_truth`` without predictions."""
    missing = [gt.image_id for gt in ground_truth if gt.image_id not in predictions]
    if missing:
        raise ValueError(f"no predictions for image {missing[0]!r} ({len(missing)} image(s) missing)")


@dataclasses.dataclass
class Pairing:
    """The prediction paired with each ground-truth person of a list of images (N people in image order).

    Attributes:
      matched: (N,) bool.
      pose2d: (N, J, 2) px and pose3d: (N, J, 3) m of the paired prediction (NaN where unmatched).
      pred_to_gt: per image, (D_i,) int: the image's person (0-based within the image) each detection is
        paired with, or -1 (empty for the upper bound).
      detections: the number of detections.
    """

    matched: np.ndarray
    pose2d: np.ndarray
    pose3d: np.ndarray
    pred_to_gt: List[np.ndarray]
    detections: int


def pair_people(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]], method: str,
                max_match_distance_px: Optional[float] = None, top_one: bool = False) -> Pairing:
    """Pairs predictions with the ground-truth people, image by image.

    Args:
      method: ``ppi`` / ``nms`` (the detections, Hungarian matching on the mean 2D joint distance over the
        annotated joints, gated by ``max_match_distance_px``) or ``upper_bound`` (each person's closest
        candidate in 2D; several people may take the same one).
      top_one: keep only each image's top-scoring detection before matching (single-person benchmarks).
    Raises:
      ValueError naming the image when it has no predictions (or no candidates for the upper bound).
    """
    gate = np.inf if max_match_distance_px is None else float(max_match_distance_px)
    j = SKELETON.num_joints
    n = int(sum(len(gt.pose2d) for gt in ground_truth))
    matched = np.zeros((n,), bool)
    p2 = np.full((n, j, 2), np.nan)
    p3 = np.full((n, j, 3), np.nan)
    pred_to_gt: List[np.ndarray] = []
    detections = start = 0
    for gt in ground_truth:  # one image at a time; its people are vectorised
        g = len(gt.pose2d)
        entry = predictions.get(gt.image_id)
        if entry is None:
            raise ValueError(f"no predictions for image {gt.image_id!r}")
        rows = np.arange(start, start + g)
        start += g
        if method == UPPER_BOUND:
            cand = entry.get("candidates")
            if cand is None:
                raise ValueError(f"image {gt.image_id!r}: its predictions hold no candidates")
            pred_to_gt.append(np.zeros((0,), np.int64))
            if len(cand[serving.POSE2D]) == 0 or g == 0:
                continue
            dist = evaluation.mean_joint_distance(cand[serving.POSE2D], gt.pose2d, gt.annotated)  # (M, G)
            ok = np.isfinite(dist).any(axis=0)
            best = np.argmin(np.where(np.isfinite(dist), dist, np.inf), axis=0)
            matched[rows[ok]] = True
            p2[rows[ok]] = cand[serving.POSE2D][best[ok]]
            p3[rows[ok]] = cand[serving.POSE3D][best[ok]]
            continue
        people = entry[method]
        detections += len(people[serving.SCORE])
        use = np.arange(len(people[serving.SCORE]))
        if top_one and use.size:
            use = use[[int(np.argmax(people[serving.SCORE]))]]
        m = evaluation.match_detections(people[serving.POSE2D][use], gt.pose2d, gt.annotated, gate)
        link = np.full((len(people[serving.SCORE]),), -1, np.int64)
        link[use[m.pred_index]] = m.gt_index
        pred_to_gt.append(link)
        matched[rows[m.gt_index]] = True
        p2[rows[m.gt_index]] = people[serving.POSE2D][use[m.pred_index]]
        p3[rows[m.gt_index]] = people[serving.POSE3D][use[m.pred_index]]
    return Pairing(matched, p2, p3, pred_to_gt, detections)

