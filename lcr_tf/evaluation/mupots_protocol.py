"""MuPoTS-3D's own evaluation rules, as its official script applies them (``mpii_mupots_multiperson_eval.m``
and its ``util/``), for figures comparable with the published ones.

Two rules differ from this package's generic evaluation (:mod:`lcr_tf.evaluation.matching`, scoring the
prediction as it is):

* **Matching** (``mpii_multiperson_get_identity_matching.m``, called with a threshold of 40): the annotated
  people are taken in annotation order; each is given the not yet matched detection with the most
  *matching joints* (MuPoTS joints 2-14, 1-based: neck to left ankle) that are visible on both sides and
  within ``threshold`` pixels on *both* axes; ties go to the first such detection in the file; a person
  with no detection having at least one such joint is missed. A detection's joint is invisible when it is
  written at (0, 0). Greedy, in annotation order: a missed person never takes a false positive's joints
  unless one of them lies within 40 px, and two people close together are paired as the script pairs
  them, whatever the optimal assignment would be.
* **Bone lengths** (``mpii_map_to_gt_bone_lengths.m``): before the 3D errors are computed, each matched
  prediction's bones are rescaled to the ground truth's lengths, keeping their directions, joint by joint
  from the pelvis outwards in the script's ``safe_traversal_order`` (the pelvis stays where it is
  predicted): ``mapped[j] = mapped[parent(j)] + (pred[j] - pred[parent(j)]) * |gt bone| / |pred bone|``.
  Errors of scale then count only through the root: a pose predicted 15 % too large scores as if it had
  the right size.

Joint indices here are 0-based, in the order of the ``mupots17`` skeleton (:mod:`lcr_tf.contracts.skeleton`),
the order of MuPoTS-3D's ``annot2`` / ``annot3``.
"""

from __future__ import annotations

import numpy as np

from lcr_tf.evaluation import matching as matching_lib

#: The script's matching threshold in pixels (its call of ``mpii_multiperson_get_identity_matching``).
MATCHING_THRESHOLD_PX = 40.0
#: ``matching_joints = [2:14]`` (1-based): neck .. left ankle; head top, pelvis, spine and head are not used.
MATCHING_JOINTS = np.arange(1, 14)
#: Parent of each of the 17 joints (``mpii_get_joints('relevant')``'s ``o1``, 0-based); the pelvis (14) is
#: its own parent.
PARENTS = np.array([1, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, 14, 14, 1])
#: ``safe_traversal_order(2:end)`` of the script (0-based): every joint but the pelvis, parents first.
TRAVERSAL_ORDER = np.array([15, 1, 0, 16, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])


def official_matching(pred2d, gt2d, pred_visible=None, gt_visible=None,
                      threshold: float = MATCHING_THRESHOLD_PX) -> matching_lib.Matching:
    """The official greedy matching (module docstring).

    Args:
      pred2d: (P, 17, 2) pixels, detections in file order; a joint at exactly (0, 0) is invisible unless
        ``pred_visible`` says otherwise.
      gt2d: (G, 17, 2) pixels, annotated people in annotation order.
      pred_visible: (P, 17) bool or None (the (0, 0) rule); gt_visible: (G, 17) bool or None (all visible:
        the script passes ones).
      threshold: pixels, on each axis.
    Returns:
      :class:`lcr_tf.evaluation.matching.Matching`; ``distance`` is the mean distance over the matching
      joints of each pair (for reports; the rule does not use it).
    """
    pred2d = np.asarray(pred2d, np.float64).reshape(-1, 17, 2)
    gt2d = np.asarray(gt2d, np.float64).reshape(-1, 17, 2)
    num_p, num_g = len(pred2d), len(gt2d)
    if pred_visible is None:
        pred_visible = ~np.all(pred2d == 0.0, axis=-1)
    if gt_visible is None:
        gt_visible = np.ones((num_g, 17), bool)
    joints = MATCHING_JOINTS
    close = np.all(np.abs(gt2d[:, None, joints] - pred2d[None, :, joints]) < threshold, axis=-1)  # (G, P, 13)
    both = np.asarray(gt_visible, bool)[:, None, joints] & np.asarray(pred_visible, bool)[None, :, joints]
    votes = (close & both).sum(-1)  # (G, P): matching joints of each pair
    gt_to_pred = np.full((num_g,), -1, np.int64)
    pred_to_gt = np.full((num_p,), -1, np.int64)
    for g in range(num_g):  # annotation order: each person's choice depends on the earlier ones'
        if num_p == 0:
            break
        scores = np.where(pred_to_gt >= 0, 0, votes[g])
        best = int(np.argmax(scores))  # the first of equal scores
        if scores[best] > 0:
            gt_to_pred[g], pred_to_gt[best] = best, g
    gt_index = np.nonzero(gt_to_pred >= 0)[0]
    pred_index = gt_to_pred[gt_index]
    distance = np.linalg.norm(pred2d[pred_index][:, joints] - gt2d[gt_index][:, joints], axis=-1).mean(-1) \
        if len(gt_index) else np.zeros((0,))
    return matching_lib.Matching(pred_index, gt_index, distance, gt_to_pred, pred_to_gt)


def map_to_gt_bone_lengths(pred3d, gt3d) -> np.ndarray:
    """Each predicted skeleton with the ground truth's bone lengths (module docstring).

    Args:
      pred3d: (..., 17, 3) predicted joints (any unit); gt3d: (..., 17, 3) the matched ground truth (same unit).
    Returns:
      (..., 17, 3) float64: the pelvis as predicted, every other joint moved so that its bone has the
      ground truth's length and the prediction's direction. A bone of zero predicted length gives NaN, as
      the script's division does; a NaN joint (e.g. a head top the model does not predict) stays NaN and
      makes NaN only the joints below it (none, for the head top).
    """
    pred = np.asarray(pred3d, np.float64)
    gt = np.asarray(gt3d, np.float64)
    if pred.shape[-2:] != (17, 3) or gt.shape != pred.shape:
        raise ValueError(f"need two (..., 17, 3) arrays of one shape, got {pred.shape} and {gt.shape}")
    mapped = pred.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        for joint in TRAVERSAL_ORDER:  # parents first: a joint moves with its parent
            parent = PARENTS[joint]
            gt_length = np.linalg.norm(gt[..., joint, :] - gt[..., parent, :], axis=-1, keepdims=True)
            bone = pred[..., joint, :] - pred[..., parent, :]
            mapped[..., joint, :] = mapped[..., parent, :] + bone * gt_length / np.linalg.norm(
                bone, axis=-1, keepdims=True)
    return mapped
