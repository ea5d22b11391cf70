"""An independent NumPy reference of the public release's pose proposal integration, for the tests.

:func:`lcrnet_ppi_improved_np` follows ``LCRNet_PPI_improved`` of ``lcr_net_ppi_improved.py`` in
naver/lcrnet-v2-improved-ppi (with its helpers ``convert_to_ppi_format``, ``iou2d``, ``overlap2d`` and
``area2d`` of the same file), written again from that file's definitions, quirks included; each step names
the lines it follows. It shares no code with :mod:`lcr_tf.postprocess`, so the tests that compare the two
check the package against the release's own rules. Plain and unhurried on purpose: it is a reference, not
a hot path.
"""

from __future__ import annotations

from typing import List

import numpy as np

# Line 57-59: joints of the 13- and 14-joint bodies (the release's joint order; lcr13's for J = 13).
_LOWER = {13: np.arange(0, 4), 14: np.arange(0, 4)}
_UPPER = {13: np.arange(4, 13), 14: np.arange(4, 14)}


def _iou_plus_one(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Lines 23-43: IoU of each of ``boxes`` (M, 4) with ``box`` (4,), sides ``x2 - x1 + 1``."""
    w = np.maximum(0, np.minimum(boxes[:, 2] + 1, box[2] + 1) - np.maximum(boxes[:, 0], box[0]))
    h = np.maximum(0, np.minimum(boxes[:, 3] + 1, box[3] + 1) - np.maximum(boxes[:, 1], box[1]))
    inter = w * h
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    area_box = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / (area + area_box - inter)


def _joint_lists(iou_func: str, num_joints: int):
    """Lines 108-122: (joints, left/right swapped joints or None) of a joint-distance iou_func."""
    j13 = num_joints == 13  # the release's "if J==13 else" (J is 13 or 14 here, line 88)
    if iou_func in ("torso", "torsoLR"):
        return [4, 5, 10, 11], [5, 4, 11, 10]
    if iou_func in ("torsohead", "torsoheadLR"):
        return ([4, 5, 10, 11, 12], [5, 4, 11, 10, 12]) if j13 else ([4, 5, 10, 11, 12, 13], [5, 4, 11, 10, 12, 13])
    if iou_func == "head":
        return ([12] if j13 else [12, 13]), None
    if iou_func in ("shoulderhead", "shoulderheadLR"):
        return ([10, 11, 12], [11, 10, 12]) if j13 else ([10, 11, 12, 13], [11, 10, 12, 13])
    if iou_func == "mje":
        return list(range(num_joints)), None
    raise ValueError(f"unknown iou_func {iou_func!r} (the release raises here, line 122)")


def _overlapping(iou_func, th_iou, boxes, poses2d, seed_box, seed_pose2d) -> np.ndarray:
    """Lines 100-131: positions (into ``boxes`` / ``poses2d``) of the candidates grouped with the seed."""
    if iou_func in ("bbox", "bbox_torsohead"):
        # Line 106: the boxes are the RoI boxes passed at line 141 (those of lines 90-98 are unused).
        return np.flatnonzero(_iou_plus_one(boxes, seed_box) > th_iou)
    joints, swapped = _joint_lists(iou_func, poses2d.shape[1])
    joints = np.asarray(joints)

    def mean_distance(columns):
        diff = poses2d[:, np.asarray(columns)] - seed_pose2d[joints][None]
        return np.mean(np.sqrt(np.sum(diff ** 2, axis=2)), axis=1)

    dist = mean_distance(joints)
    if iou_func.endswith("LR"):  # lines 124-127
        dist = np.minimum(dist, mean_distance(swapped))
    norm = 2 * np.max(seed_box[2:4] - seed_box[0:2] + 1)  # line 130: the seed's RoI box
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.flatnonzero(dist / norm < th_iou)  # line 131


def lcrnet_ppi_improved_np(scores, boxes, pose2d, pose3d, resolution, K=None, score_th=None, th_pose3D=0.3,
                           th_iou=0.2, iou_func="bbox", min_mode_score=0.05, th_persondetect=0.002
                           ) -> List[dict]:
    """The release's ``LCRNet_PPI_improved`` (lcr_net_ppi_improved.py lines 61-216), re-written.

    Args:
      scores: (N, C+1) class probabilities, background first. boxes: (N, 4) xyxy px RoI boxes.
      pose2d: (N, C, J, 2) px; pose3d: (N, C, J, 3) m. Arithmetic runs in the inputs' dtype, as there.
      resolution: (height, width); unpacked and otherwise unused (line 85; its only users, the pose
        boxes of lines 90-98, are never read).
      K: compared with the 0-based class index for the lower-body weighting (``> K`` is down-weighted,
        line 186); None: ``C + 1`` (line 82). Neither that nor demo.py's ``K = anchor_poses.shape[0] = C``
        (lines 135, 153) ever down-weights anything.
      score_th: candidate threshold (``>=``, line 49); None: ``0.1 / C`` (line 48).
      th_pose3D, th_iou, iou_func, min_mode_score, th_persondetect: as the release.
    Returns:
      list of dicts ``score`` (the mode's summed score), ``pose2d`` (J, 2), ``pose3d`` (J, 3), by
      decreasing score (stable, line 215); poses are float32 for J = 13 or 14 (lines 178-179).
    Raises:
      AssertionError: iou_func other than "bbox" or "mje" with J not 13 or 14 (line 88).
      ValueError: an unknown iou_func, once there is a candidate (the release's line 122 raises then).
      RuntimeError: where the release would loop forever (a seed outside its own group or mode).
    Omitted: the ``hand_isright`` key of J = 21 (line 196) and ``verbose``.
    """
    scores, boxes = np.asarray(scores), np.asarray(boxes)
    pose2d, pose3d = np.asarray(pose2d), np.asarray(pose3d)
    if K is None:
        K = scores.shape[1]  # line 82
    # Lines 47-55 (convert_to_ppi_format): every (RoI, class) pair over the threshold, RoI-major.
    if score_th is None:
        score_th = 0.1 / (scores.shape[1] - 1)
    roi, label = np.nonzero(scores[:, 1:] >= score_th)
    s = scores[roi, 1 + label]
    b = boxes[roi, :]
    p2 = pose2d[roi, label]
    p3 = pose3d[roi, label]
    height, width = resolution  # line 85
    del height, width
    num_joints = p2.shape[1]
    if num_joints not in (13, 14):
        assert iou_func in ("bbox", "mje"), f"iou_func {iou_func!r} needs J in (13, 14)"  # line 88

    # Lines 135-145: greedy groups; remaining candidates keep their order, np.argmax takes the first best.
    groups = []
    remaining = np.arange(s.shape[0])
    while remaining.size:
        seed = remaining[int(np.argmax(s[remaining]))]
        group = remaining[_overlapping(iou_func, th_iou, b[remaining], p2[remaining], b[seed], p2[seed])]
        if seed not in group:
            raise RuntimeError("the seed is not in its own group: the release loops forever here")
        groups.append(group)
        remaining = remaining[~np.isin(remaining, group)]

    # Lines 149-212: the modes of each group, the best one kept when its score is high enough.
    detected = []
    for group in groups:
        free = group.copy()
        modes = []
        while free.size:
            seed = free[int(np.argmax(s[free]))]  # lines 159-160
            if s[seed] < min_mode_score and len(modes) > 0:  # line 161
                break
            dist3d = np.mean(np.sqrt(np.sum((p3[seed] - p3[group]) ** 2, axis=2)), axis=1)  # line 168
            members = group[dist3d < th_pose3D]  # lines 169-172: among the whole group
            if seed not in members:
                raise RuntimeError("the mode's seed is not in its mode: the release loops forever here")
            weights = s[members]  # a copy (line 173)
            if num_joints in (13, 14):  # lines 177-190
                out3 = np.empty((num_joints, 3), np.float32)
                out2 = np.empty((num_joints, 2), np.float32)
                total = np.sum(weights)
                upper = _UPPER[num_joints]
                out3[upper] = np.sum(weights[:, None, None] * p3[members][:, upper], axis=0) / total
                out2[upper] = np.sum(weights[:, None, None] * p2[members][:, upper], axis=0) / total
                weights[label[members] > K] *= 0.1  # line 186-187: 0-based class index > K
                total_lower = np.sum(weights)
                lower = _LOWER[num_joints]
                out3[lower] = np.sum(weights[:, None, None] * p3[members][:, lower], axis=0) / total_lower
                out2[lower] = np.sum(weights[:, None, None] * p2[members][:, lower], axis=0) / total_lower
            else:  # lines 191-194
                total = np.sum(weights)
                out3 = np.sum(weights[:, None, None] * p3[members], axis=0) / total
                out2 = np.sum(weights[:, None, None] * p2[members], axis=0) / total
            modes.append({"score": total, "pose3d": out3, "pose2d": out2})  # line 198: the score before 0.1
            free = free[~np.isin(free, members)]  # line 203
        mode_scores = np.array([mode["score"] for mode in modes])
        best = int(np.argmax(mode_scores))  # line 208: the first best
        if mode_scores[best] > th_persondetect:  # line 209
            detected.append(modes[best])
    detected.sort(key=lambda d: d["score"], reverse=True)  # line 215, stable
    return detected

