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
                        remaining ones with IoU > iou_th of    remaining ones with IoU > iou_th of
                        their POSE boxes (``group_by=          their RoI boxes, IoU in the +1-pixel
                        "pose_box"``, default) or RoI boxes,   convention (width = x2 - x1 + 1)
                        continuous IoU (width = x2 - x1)
  mode seed             best candidate of the group not yet in a mode (both)
  stop rule             no candidate left outside the modes, or the seed scores < min_mode_score
                        while the group already has a mode (both)
  mode members          every candidate of the group (already in a mode or not) with
                        D_3D(seed, candidate) < T_3D (eq 7; both)
  T_3D default          0.13 m (Table 4)                       0.3 m
  mode pose             score-weighted mean of the members     same, except joints 0-3 (ankles, knees):
                        (eq 8), 2D and 3D                      members with 0-based class index
                                                               (background excluded) > K weigh s / 10
  mode score            S = sum of the members' scores (both)
  person                the group's best-scoring mode, kept if its score > min_person_score (both)
  output                sorted by decreasing score (stable), at most max_detections (both)

In the official mode K (``num_full_body``) defaults to 2K + 1 (one past the last class), so nothing is
down-weighted; with K set, note that class index K itself (the first upper-body class) still weighs fully,
as in the release.

``mode="nms"`` is the baseline of the paper: groups as in the paper mode, and each group's person is its
top candidate alone (score s or s', no averaging), kept if its score > min_person_score.

Ties are broken by candidate order: candidates are sorted by decreasing score (stable, so equal scores
keep their input order), the first of equal-scoring candidates seeds, and the first of equal-scoring modes
wins. :mod:`lcr_tf.postprocess.ppi_tf` implements the same rules in TensorFlow.

:func:`ppi` is the public entry point on the public release's layout (all classes of all RoIs);
:func:`integrate_candidates` works on selected candidates.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional

import numpy as np

from lcr_tf.contracts import boxes as boxes_lib
from lcr_tf.contracts import geometry
from lcr_tf.postprocess import decoding, rescoring
from lcr_tf.postprocess.params import PPIParams, check_mode

# Joints whose average down-weights upper-body classes in the official mode: the release's joints 0-3,
# which in the LCR-13 order are the ankles and knees (:attr:`lcr_tf.contracts.skeleton.Skeleton.lower_body`).
OFFICIAL_LOWER_BODY_JOINTS = np.arange(4)
OFFICIAL_UPPER_BODY_WEIGHT = 0.1


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


def joint_weight_factors(classes: np.ndarray, num_joints: int, num_full_body: Optional[int],
                         mode: str) -> np.ndarray:
    """(M,) classes -> (M, J) factors multiplying each candidate's score in the mode average."""
    factors = np.ones((classes.shape[0], num_joints))
    if mode == "official" and num_full_body is not None:
        upper = (classes - 1) > num_full_body
        lower = OFFICIAL_LOWER_BODY_JOINTS[OFFICIAL_LOWER_BODY_JOINTS < num_joints]
        factors[np.ix_(upper, lower)] = OFFICIAL_UPPER_BODY_WEIGHT
    return factors


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
    Returns:
      :class:`Detections`, at most ``params.max_detections``.
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
    if m == 0:
        return Detections(np.zeros(0, np.float32), np.zeros((0, 4), np.float32),
                          np.zeros((0, j, 2), np.float32), np.zeros((0, j, 3), np.float32))

    official = mode == "official"
    if params.rescore and not official:
        scores = rescoring.rescore(scores, pose2d, roi_boxes, params.sigma_b_px)
    if official or params.group_by == "roi_box":
        group_boxes = roi_boxes
    else:
        group_boxes = geometry.pose_box(pose2d)
    weights = scores[:, None] * joint_weight_factors(classes, j, params.num_full_body, mode)

    order = np.argsort(-scores, kind="stable")
    scores, group_boxes, pose2d, pose3d, weights = (
        a[order] for a in (scores, group_boxes, pose2d, pose3d, weights))

    people_scores, people2d, people3d = [], [], []
    remaining = np.ones(m, bool)
    while remaining.any():
        seed = int(np.argmax(remaining))  # sorted: the first remaining is the best
        group = remaining & (boxes_lib.iou(group_boxes[seed][None], group_boxes, official)[0] > params.iou_threshold)
        group[seed] = True
        remaining &= ~group
        best = None
        covered = np.zeros(m, bool)
        while True:
            open_ = group & ~covered
            if not open_.any():
                break
            mode_seed = int(np.argmax(open_))
            if best is not None and scores[mode_seed] < params.min_mode_score:
                break
            if mode == "nms":
                members = np.zeros(m, bool)
                members[mode_seed] = True
            else:
                d3 = np.mean(np.linalg.norm(pose3d - pose3d[mode_seed], axis=-1), axis=-1)
                members = group & (d3 < params.pose3d_threshold_m)
                members[mode_seed] = True
            covered |= members
            mode_score = float(np.sum(scores[members]))
            if best is None or mode_score > best[0]:
                w = weights[members][..., None]  # (Q, J, 1)
                total = w.sum(axis=0)
                safe = np.where(total > 0, total, 1.0)
                p2 = np.where(total > 0, (w * pose2d[members]).sum(axis=0) / safe, pose2d[mode_seed])
                p3 = np.where(total > 0, (w * pose3d[members]).sum(axis=0) / safe, pose3d[mode_seed])
                best = (mode_score, p2, p3)
            if mode == "nms":
                break
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
        max_detections), or ``params=PPIParams(...)``.
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
    scores, boxes, pose2d, pose3d = check_release_layout(scores, boxes, pose2d, pose3d)
    c = scores.shape[1] - 1
    settings = settings.resolve(mode, c)
    roi, classes, cand_scores, _ = decoding.select_candidates(scores, settings.score_threshold,
                                                              settings.max_candidates)
    cand2d, cand3d = decoding.gather_release_layout(roi, classes, pose2d, pose3d)
    return integrate_candidates(cand_scores, boxes[roi], cand2d, cand3d, classes, image_size=image_size,
                                mode=mode, params=settings).to_list()
