"""Pose proposal integration (PPI, paper Sec 3.6, eq 7-8) and its NMS baseline, in NumPy.

Input: candidates, i.e. (RoI, class) pairs whose classification score passed the candidate threshold,
each with a score s (M,), the RoI box (M, 4) xyxy px, a decoded 2D pose (M, J, 2) px and 3D pose
(M, J, 3) m (body-centred), and its class (M,) in ``1..2K``. Output: people, each with a score, a 2D and a
3D pose and the pose box of its 2D pose, sorted by decreasing score. D_3D is the mean over joints of the
Euclidean distance between two 3D poses (metres).

The modes side by side (``mode=``)::

                        "paper" (Sec 3.6)                      "official" (public LCR-Net release)
  candidate scores      s, or s' of eq 6 if ``rescore``        s (never rescored)
  person grouping       greedy: best remaining candidate +     greedy: best remaining candidate +
                        remaining ones with IoU > iou_th of    remaining ones that pass ``iou_func``
                        their POSE boxes (``group_by=          against it (below; default "bbox": IoU
                        "pose_box"``, default) or RoI boxes,   > iou_th of their RoI boxes in the
                        continuous IoU (width = x2 - x1)       +1-pixel convention, width = x2 - x1 + 1)
  mode seed             best candidate of the group not yet in a mode (both)
  stop rule             no candidate left outside the modes, or the seed scores < min_mode_score
                        while the group already has a mode (both)
  mode members          every candidate of the group (already in a mode or not) with
                        D_3D(seed, candidate) < T_3D (eq 7; both)
  T_3D default          0.13 m (Table 4)                       0.3 m
  mode pose             score-weighted mean of the members     same, except, for J = 13 or 14 only,
                        (eq 8), 2D and 3D                      joints 0-3 (ankles, knees): members with
                                                               0-based class index (background
                                                               excluded) > K weigh s / 10
  mode score            S = sum of the members' scores (both)
  person                the group's best-scoring mode, kept if its score > min_person_score (both)
  output                sorted by decreasing score (stable), at most max_detections (both)

In the official mode K (``num_full_body``) defaults to 2K + 1 (one past the last class), so nothing is
down-weighted; with K set, note that class index K itself (the first upper-body class) still weighs fully,
as in the release.

The official mode is the release's ``LCRNet_PPI_improved`` (lcr_net_ppi_improved.py of
naver/lcrnet-v2-improved-ppi; :meth:`lcr_tf.postprocess.params.PPIParams.from_release` maps a model file's
``ppi_params``), with these of its rules, quirks included (line numbers of that file):

* ``iou_func`` (lines 100-131), criterion of a remaining candidate against the group's seed:
  "bbox" and "bbox_torsohead": IoU(RoI box, seed's RoI box) > iou_th, +1 convention (lines 23-43). Both
  use the RoI boxes: the boxes of the 2D poses, clipped to the image (the torso-and-head joints only for
  "bbox_torsohead", lines 90-98), are computed but never used, since line 141 passes ``s_boxes``; so the
  image size changes nothing. The others: mean over the listed joints of the 2D distance between the
  candidate's joint and the seed's same joint, divided by ``2 * max(w + 1, h + 1)`` of the seed's RoI box,
  ``< iou_th`` (lines 126-131); the "LR" variants take the smaller of that mean and the mean with the
  candidate's left and right joints swapped (lines 124-127). Joint lists (:data:`RELEASE_JOINT_LISTS`,
  lines 108-120, in the release's joint order, which is ``lcr13``'s for J = 13): "torso" 4, 5, 10, 11;
  "torsohead" adds 12 (and 13 for J = 14); "head" 12 (12, 13); "shoulderhead" 10, 11, 12 (10-13); "mje"
  every joint. For J other than 13 and 14 only "bbox" and "mje" are accepted (line 88).
* the lower-body weighting happens for J = 13 or 14 only (line 177); for other J (17 for Human3.6M) the
  mode pose is the plain score-weighted mean (lines 191-194). It down-weights 0-based class indices
  ``> K`` (line 186) where K is the caller's argument; demo.py passes ``K = anchor_poses.shape[0]``, the
  number of classes 2K (lines 135, 153), so in the release as run it never applies (``from_release``
  keeps that).
* candidates: every (RoI, class) pair with ``score >= score_th`` (line 49), score_th None meaning
  ``0.1 / C``, C the columns less the background (line 48); :func:`ppi` compares in the scores' own
  precision, as NumPy does there. No cap, and every person is returned: ``from_release`` sets
  ``max_candidates`` and ``max_detections`` to None (or, for a fixed number of RoIs, to bounds that are
  never reached).
* ties: the release takes ``np.argmax`` (the first) over the remaining candidates in their original
  order, RoI-major as ``np.where`` lists them (lines 49, 139, 159), and keeps that order when it removes
  some (lines 145, 203); sorting the candidates once by decreasing score, stably from that order, gives
  the same seeds. The best mode is the first of equal ones (line 208), people of equal score keep their
  group order (Python's sort is stable, line 215).
* where the release would loop forever (a seed that fails its own criterion: a degenerate RoI box, or
  ``th_pose3D <= 0``), the seed is counted in its group and its mode here.

``mode="nms"`` is the baseline of the paper: groups as in the paper mode, and each group's person is its
top candidate alone (score s or s', no averaging), kept if its score > min_person_score.

Ties are broken by candidate order: candidates are sorted by decreasing score (stable, so equal scores
keep their input order), the first of equal-scoring candidates seeds, and the first of equal-scoring modes
wins. :mod:`lcr_tf.postprocess.ppi_tf` implements the same rules in TensorFlow.

Cost: each group compares its seed with the remaining candidates (O(M) per group), and its modes look at
the group's members only, so memory stays O(M J).

:func:`ppi` is the public entry point on the public release's layout (all classes of all RoIs);
:func:`integrate_candidates` works on selected candidates.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

import numpy as np

from lcr_tf.contracts import boxes as boxes_lib
from lcr_tf.contracts import geometry
from lcr_tf.postprocess import decoding, rescoring
from lcr_tf.postprocess.params import BOX_IOU_FUNCS, RELEASE_BODY_JOINTS, PPIParams, check_iou_func, check_mode

# Joints whose average down-weights upper-body classes in the official mode: the release's joints 0-3,
# which in the LCR-13 order are the ankles and knees (:attr:`lcr_tf.contracts.skeleton.Skeleton.lower_body`).
OFFICIAL_LOWER_BODY_JOINTS = np.arange(4)
OFFICIAL_UPPER_BODY_WEIGHT = 0.1

# The joints of the release's joint-distance criteria (lcr_net_ppi_improved.py lines 108-120), in its joint
# order: iou_func -> J -> (joints, the same joints with left and right swapped, or None). "mje" is every joint.
RELEASE_JOINT_LISTS = {
    "torso": {13: ([4, 5, 10, 11], None), 14: ([4, 5, 10, 11], None)},
    "torsoLR": {13: ([4, 5, 10, 11], [5, 4, 11, 10]), 14: ([4, 5, 10, 11], [5, 4, 11, 10])},
    "torsohead": {13: ([4, 5, 10, 11, 12], None), 14: ([4, 5, 10, 11, 12, 13], None)},
    "torsoheadLR": {13: ([4, 5, 10, 11, 12], [5, 4, 11, 10, 12]),
                    14: ([4, 5, 10, 11, 12, 13], [5, 4, 11, 10, 12, 13])},
    "head": {13: ([12], None), 14: ([12, 13], None)},
    "shoulderhead": {13: ([10, 11, 12], None), 14: ([10, 11, 12, 13], None)},
    "shoulderheadLR": {13: ([10, 11, 12], [11, 10, 12]), 14: ([10, 11, 12, 13], [11, 10, 12, 13])},
}


def release_joint_lists(iou_func: str, num_joints: int) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """The joints of an official-mode ``iou_func`` for J = ``num_joints``.

    Returns:
      (joints (L,) int, swapped (L,) int or None): the joints whose 2D distances are averaged and, for the
      "LR" variants, the candidate's joints compared with them once left and right are swapped; (None, None)
      for the box criteria. Raises ValueError where the release refuses the pair.
    """
    check_iou_func(iou_func, num_joints)
    if iou_func in BOX_IOU_FUNCS:
        return None, None
    if iou_func == "mje":
        return np.arange(int(num_joints)), None
    joints, swapped = RELEASE_JOINT_LISTS[iou_func][int(num_joints)]
    return np.asarray(joints), None if swapped is None else np.asarray(swapped)


def release_iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(M, 4) and (4,) xyxy -> (M,) IoU as the release writes it (lcr_net_ppi_improved.py lines 23-43):
    +1-pixel sides, the intersection's right edge ``min(x2 + 1, x2' + 1)``; NaN where the union is 0."""
    inter = np.ones(boxes.shape[0])
    for lo, hi in ((0, 2), (1, 3)):
        side = np.minimum(boxes[:, hi] + 1, box[hi] + 1) - np.maximum(boxes[:, lo], box[lo])
        inter = inter * np.maximum(0, side)
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    area_box = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / (area + area_box - inter)


def release_joint_distance(pose2d: np.ndarray, seed_pose2d: np.ndarray, seed_box: np.ndarray,
                           joints: np.ndarray, swapped: Optional[np.ndarray]) -> np.ndarray:
    """(M, J, 2) and the seed's (J, 2) px, RoI box (4,) -> (M,) the release's normalised joint distance
    (lines 124-130): mean over ``joints`` of the 2D distances (the smaller with ``swapped`` joints), over
    ``2 * max(w + 1, h + 1)`` of the seed's RoI box. Grouped when ``< iou_threshold``."""
    target = seed_pose2d[joints]
    dist = np.mean(np.sqrt(np.sum((pose2d[:, joints] - target) ** 2, axis=2)), axis=1)
    if swapped is not None:
        dist = np.minimum(dist, np.mean(np.sqrt(np.sum((pose2d[:, swapped] - target) ** 2, axis=2)), axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return dist / (2 * np.max(seed_box[2:4] - seed_box[0:2] + 1))


@dataclasses.dataclass
class Detections:
    """People found in one image, sorted by decreasing score.

    Attributes:
      scores: (D,) float32.
      boxes: (D, 4) float32 xyxy px, the pose box (:func:`lcr_tf.contracts.geometry.pose_box`) of ``pose2d``.
      pose2d: (D, J, 2) float32 px (x right, y down, origin top-left).
      pose3d: (D, J, 3) float32 m, camera axes (x right, y down, z away), body-centred.
    """

    scores: np.ndarray
    boxes: np.ndarray
    pose2d: np.ndarray
    pose3d: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def to_list(self) -> List[dict]:
        """One dict per person: ``score`` float, ``box`` (4,), ``pose2d`` (J, 2), ``pose3d`` (J, 3)."""
        return [dict(score=float(s), box=b, pose2d=p2, pose3d=p3)
                for s, b, p2, p3 in zip(self.scores, self.boxes, self.pose2d, self.pose3d)]


def _check_image_size(image_size) -> None:
    if image_size is None:
        return
    size = np.asarray(image_size)
    if size.shape != (2,) or not np.all(np.isfinite(size)) or np.any(size <= 0):
        raise ValueError(f"image_size must be (height, width) > 0, got {image_size!r}")


def _check_candidates(scores, roi_boxes, pose2d, pose3d, classes) -> None:
    if scores.ndim != 1:
        raise ValueError(f"scores must be (M,), got shape {scores.shape}")
    m = scores.shape[0]
    if roi_boxes.shape != (m, 4):
        raise ValueError(f"roi_boxes must be (M={m}, 4), got shape {roi_boxes.shape}")
    if pose2d.ndim != 3 or pose2d.shape[0] != m or pose2d.shape[2] != 2:
        raise ValueError(f"pose2d must be (M={m}, J, 2), got shape {pose2d.shape}")
    j = pose2d.shape[1]
    if pose3d.shape != (m, j, 3):
        raise ValueError(f"pose3d must be (M={m}, J={j}, 3), got shape {pose3d.shape}")
    if classes.shape != (m,):
        raise ValueError(f"classes must be (M={m},), got shape {classes.shape}")
    for name, array in (("scores", scores), ("roi_boxes", roi_boxes), ("pose2d", pose2d),
                        ("pose3d", pose3d)):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} has non-finite values (NaN or inf)")
    if m and np.min(classes) < 1:
        raise ValueError("classes must be foreground classes (>= 1)")


def official_weighting_applies(num_joints: int) -> bool:
    """Whether the official mode's lower-body weighting applies to J = ``num_joints`` (release line 177)."""
    return int(num_joints) in RELEASE_BODY_JOINTS


def joint_weight_factors(classes: np.ndarray, num_joints: int, num_full_body: Optional[int],
                         mode: str) -> np.ndarray:
    """(M,) classes -> (M, J) factors multiplying each candidate's score in the mode average: 0.1 on
    joints 0-3 of classes whose 0-based index is ``> num_full_body`` in the official mode with J = 13 or
    14 (release lines 177-190), 1 elsewhere."""
    factors = np.ones((classes.shape[0], num_joints))
    if mode == "official" and num_full_body is not None and official_weighting_applies(num_joints):
        upper = (classes - 1) > num_full_body
        lower = OFFICIAL_LOWER_BODY_JOINTS[OFFICIAL_LOWER_BODY_JOINTS < num_joints]
        factors[np.ix_(upper, lower)] = OFFICIAL_UPPER_BODY_WEIGHT
    return factors


def _grouping(mode: str, params: PPIParams, roi_boxes: np.ndarray, pose2d: np.ndarray):
    """The grouping criterion: ``inside(seed, rows)`` -> bool (len(rows),), whether each candidate of
    ``rows`` joins the group of candidate ``seed`` (indices into the arrays given here)."""
    th = params.iou_threshold
    if mode != "official":
        boxes = roi_boxes if params.group_by == "roi_box" else geometry.pose_box(pose2d)
        return lambda seed, rows: boxes_lib.iou(boxes[seed][None], boxes[rows])[0] > th
    joints, swapped = release_joint_lists(params.iou_func, pose2d.shape[1])
    if joints is None:
        return lambda seed, rows: release_iou(roi_boxes[rows], roi_boxes[seed]) > th
    return lambda seed, rows: release_joint_distance(pose2d[rows], pose2d[seed], roi_boxes[seed], joints,
                                                     swapped) < th


def _best_mode(scores, pose2d, pose3d, weights, params: PPIParams, nms: bool):
    """The best mode of one group, whose candidates come sorted by decreasing score (stably).

    Args:
      scores: (Q,); pose2d: (Q, J, 2) px; pose3d: (Q, J, 3) m; weights: (Q, J) the scores times the joint
        factors.
    Returns:
      (score, pose2d (J, 2), pose3d (J, 3)) of the first best-scoring mode.
    """
    covered = np.zeros(scores.shape[0], bool)
    best = None
    while True:
        open_ = np.flatnonzero(~covered)
        if not open_.size:
            return best
        seed = int(open_[0])  # sorted: the first not yet in a mode is the best
        if best is not None and scores[seed] < params.min_mode_score:
            return best
        if nms:
            members = np.zeros(scores.shape[0], bool)
        else:
            members = np.mean(np.linalg.norm(pose3d - pose3d[seed], axis=-1), axis=-1) < params.pose3d_threshold_m
        members[seed] = True
        covered |= members
        mode_score = float(np.sum(scores[members]))
        if best is None or mode_score > best[0]:
            w = weights[members][..., None]  # (Q', J, 1)
            total = w.sum(axis=0)
            safe = np.where(total > 0, total, 1.0)
            p2 = np.where(total > 0, (w * pose2d[members]).sum(axis=0) / safe, pose2d[seed])
            p3 = np.where(total > 0, (w * pose3d[members]).sum(axis=0) / safe, pose3d[seed])
            best = (mode_score, p2, p3)
        if nms:
            return best


def integrate_candidates(scores, roi_boxes, pose2d, pose3d, classes, *, image_size=None,
                         mode: str = "paper", params: Optional[PPIParams] = None) -> Detections:
    """PPI (or NMS) of one image's candidates; see the module docstring for the modes.

    Args:
      scores: (M,) classification scores (probabilities) of the candidates.
      roi_boxes: (M, 4) xyxy px, the box each candidate was regressed in.
      pose2d: (M, J, 2) px. pose3d: (M, J, 3) m, body-centred.
      classes: (M,) int in ``1..2K``.
      image_size: (height, width) px or None; checked, not used by the arithmetic.
      mode: "paper", "official" or "nms".
      params: :class:`PPIParams` (default: ``PPIParams()``); None fields are resolved with
        2K = ``max(classes)`` (only T_3D and K matter here; the score threshold applies at selection).
        ``iou_func`` other than "bbox" needs the official mode.
    Returns:
      :class:`Detections`, at most ``params.max_detections`` (every person if None).
    """
    check_mode(mode)
    scores = np.asarray(scores, np.float64)
    roi_boxes = np.asarray(roi_boxes, np.float64)
    pose2d = np.asarray(pose2d, np.float64)
    pose3d = np.asarray(pose3d, np.float64)
    classes = np.asarray(classes, np.int64)
    _check_candidates(scores, roi_boxes, pose2d, pose3d, classes)
    _check_image_size(image_size)
    m, j = pose2d.shape[:2]
    params = (params or PPIParams()).resolve(mode, max(int(classes.max()) if m else 1, 1))
    official = mode == "official"
    if official:
        check_iou_func(params.iou_func, j)
    elif params.iou_func != "bbox":
        raise ValueError(f"iou_func={params.iou_func!r} is a setting of the official mode, not of mode {mode!r}")
    if m == 0:
        return Detections(np.zeros(0, np.float32), np.zeros((0, 4), np.float32),
                          np.zeros((0, j, 2), np.float32), np.zeros((0, j, 3), np.float32))

    if params.rescore and not official:
        scores = rescoring.rescore(scores, pose2d, roi_boxes, params.sigma_b_px)
    weights = scores[:, None] * joint_weight_factors(classes, j, params.num_full_body, mode)

    order = np.argsort(-scores, kind="stable")
    scores, roi_boxes, pose2d, pose3d, weights = (a[order] for a in (scores, roi_boxes, pose2d, pose3d, weights))
    inside = _grouping(mode, params, roi_boxes, pose2d)

    people_scores, people2d, people3d = [], [], []
    remaining = np.arange(m)  # candidates in no group yet, in (sorted) order
    while remaining.size:
        seed = remaining[0]  # sorted: the first remaining is the best
        joins = inside(seed, remaining)
        joins[0] = True  # the seed, even where its own criterion fails (the release would loop forever)
        group = remaining[joins]
        remaining = remaining[~joins]
        best = _best_mode(scores[group], pose2d[group], pose3d[group], weights[group], params, mode == "nms")
        if best[0] > params.min_person_score:
            people_scores.append(best[0])
            people2d.append(best[1])
            people3d.append(best[2])

    if not people_scores:
        return integrate_candidates(np.zeros(0), np.zeros((0, 4)), np.zeros((0, j, 2)),
                                    np.zeros((0, j, 3)), np.zeros(0, np.int64))
    people_scores = np.asarray(people_scores)
    keep = np.argsort(-people_scores, kind="stable")[: params.max_detections]
    p2 = np.stack(people2d)[keep]
    return Detections(scores=people_scores[keep].astype(np.float32),
                      boxes=geometry.pose_box(p2).astype(np.float32),
                      pose2d=p2.astype(np.float32),
                      pose3d=np.stack(people3d)[keep].astype(np.float32))


def check_release_layout(scores, boxes, pose2d, pose3d):
    """Validates and converts the public release's layout; returns float64 arrays."""
    scores = np.asarray(scores, np.float64)
    boxes = np.asarray(boxes, np.float64)
    pose2d = np.asarray(pose2d, np.float64)
    pose3d = np.asarray(pose3d, np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must be (N, 2K+1) with background first, got shape {scores.shape}")
    n, c = scores.shape[0], scores.shape[1] - 1
    if boxes.shape != (n, 4):
        raise ValueError(f"boxes must be (N={n}, 4), got shape {boxes.shape}")
    if pose2d.ndim != 4 or pose2d.shape[:2] != (n, c) or pose2d.shape[3] != 2:
        raise ValueError(f"pose2d must be (N={n}, 2K={c}, J, 2), got shape {pose2d.shape}")
    j = pose2d.shape[2]
    if pose3d.shape != (n, c, j, 3):
        raise ValueError(f"pose3d must be (N={n}, 2K={c}, J={j}, 3), got shape {pose3d.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores has non-finite values (NaN or inf)")
    if not np.all(np.isfinite(boxes)):
        raise ValueError("boxes has non-finite values (NaN or inf)")
    return scores, boxes, pose2d, pose3d


def ppi(scores, boxes, pose2d, pose3d, *, image_size=None, mode: str = "paper",
        **params) -> List[dict]:
    """PPI on the public LCR-Net release's layout.

    Args:
      scores: (N, 2K+1) class probabilities per RoI, background first.
      boxes: (N, 4) xyxy px RoI boxes.
      pose2d: (N, 2K, J, 2) px, the decoded 2D pose of every foreground class of every RoI.
      pose3d: (N, 2K, J, 3) m, body-centred.
      image_size: (height, width) px or None.
      mode: "paper", "official" or "nms" (module docstring).
      **params: fields of :class:`PPIParams` (score_threshold, iou_threshold, pose3d_threshold_m,
        min_mode_score, min_person_score, group_by, rescore, sigma_b_px, num_full_body, max_candidates,
        max_detections, iou_func), or ``params=PPIParams(...)`` (e.g. :meth:`PPIParams.from_release`).
    Returns:
      Detections sorted by decreasing score, each a dict with ``score`` (float), ``box`` (4,) the pose box,
      ``pose2d`` (J, 2) px, ``pose3d`` (J, 3) m body-centred.
    """
    check_mode(mode)
    base = params.pop("params", None) or PPIParams()
    try:
        settings = dataclasses.replace(base, **params)
    except TypeError as error:
        raise TypeError(f"unknown PPI parameter: {error}") from None
    score_dtype = np.asarray(scores).dtype
    scores, boxes, pose2d, pose3d = check_release_layout(scores, boxes, pose2d, pose3d)
    n, c = scores.shape[0], scores.shape[1] - 1
    settings = settings.resolve(mode, c)
    threshold = settings.score_threshold
    if mode == "official" and score_dtype.kind == "f" and score_dtype.itemsize < 8:
        # The release compares float32 scores with the Python float threshold in float32 (line 49): the
        # same as comparing in float64 with the threshold rounded to float32.
        threshold = float(np.asarray(threshold, score_dtype))
    cap = settings.max_candidates if settings.max_candidates is not None else max(n * c, 1)
    roi, classes, cand_scores, _ = decoding.select_candidates(scores, threshold, cap)
    cand2d, cand3d = decoding.gather_release_layout(roi, classes, pose2d, pose3d)
    return integrate_candidates(cand_scores, boxes[roi], cand2d, cand3d, classes, image_size=image_size,
                                mode=mode, params=settings).to_list()
