"""One-to-one matching of detected people to ground-truth people on 2D joint distance.

The cost of pairing detection ``p`` with ground-truth person ``g`` is the mean 2D distance (pixels) between
their joints over the joints annotated on ``g``. The matching is the optimal assignment (Hungarian
algorithm, :func:`scipy.optimize.linear_sum_assignment`) among the pairs whose cost is at most
``max_distance``: it first matches as many people as the gate allows, then minimises the summed cost of
those pairs. Unlike greedy matching (closest pair first), a detection is not taken by one person when it
is the only good detection for another.

Used to pair predictions with annotations before per-person metrics (MPJPE, PCKh, 3DPCK over matched
people), and to tell which annotated people were missed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import optimize

from lcr_tf.evaluation import _checks


@dataclasses.dataclass(frozen=True)
class Matching:
    """Result of :func:`match_detections`.

    Attributes:
      pred_index: (M,) int, matched detections, in increasing order of ``gt_index``.
      gt_index: (M,) int, their ground-truth people (increasing).
      distance: (M,) float pixels, the mean joint distance of each pair.
      gt_to_pred: (G,) int, the detection matched to each ground-truth person or -1.
      pred_to_gt: (P,) int, the ground-truth person matched to each detection or -1.
    """

    pred_index: np.ndarray
    gt_index: np.ndarray
    distance: np.ndarray
    gt_to_pred: np.ndarray
    pred_to_gt: np.ndarray

    @property
    def matched_gt(self) -> np.ndarray:
        """(G,) bool: whether each ground-truth person has a detection."""
        return self.gt_to_pred >= 0


def mean_joint_distance(pred, gt, gt_visible) -> np.ndarray:
    """Pairwise pose distances.

    Args:
      pred: (P, J, 2) pixels, detections (all joints must be finite).
      gt: (G, J, 2) pixels; gt_visible: (G, J) bool annotated joints of ``gt``.
    Returns:
      (P, G) float64 pixels: mean over the joints annotated on g of |pred_p - gt_g|; +inf for a person
      with no annotated joint.
    """
    p = _checks.as_poses("pred", pred, 2)
    g = _checks.as_poses("gt", gt, 2)
    if p.shape[1] != g.shape[1]:
        raise ValueError(f"pred has {p.shape[1]} joints, gt has {g.shape[1]}")
    vis = _checks.as_mask("gt_visible", gt_visible, g.shape[:2])
    _checks.check_finite("pred", p)
    _checks.check_finite("gt", g, vis)
    d = np.linalg.norm(p[:, None] - np.where(vis[..., None], g, 0.0)[None], axis=-1)   # (P, G, J)
    count = vis.sum(axis=1)
    total = np.where(vis[None], d, 0.0).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count[None] > 0, total / np.maximum(count, 1)[None], np.inf)


def match_detections(pred, gt, gt_visible, max_distance: float = np.inf) -> Matching:
    """Optimal one-to-one matching of detections to ground-truth people (see the module docstring).

    Args:
      pred: (P, J, 2) pixels; gt: (G, J, 2) pixels; gt_visible: (G, J) bool.
      max_distance: gate in pixels: a pair whose mean joint distance exceeds it is never matched.
    Returns:
      :class:`Matching`.
    """
    if not (max_distance >= 0):
        raise ValueError(f"max_distance must be >= 0, got {max_distance}")
    cost = mean_joint_distance(pred, gt, gt_visible)
    num_p, num_g = cost.shape
    allowed = cost <= max_distance
    gt_to_pred = np.full((num_g,), -1, dtype=np.int64)
    pred_to_gt = np.full((num_p,), -1, dtype=np.int64)
    if not allowed.any():
        empty = np.zeros((0,), np.int64)
        return Matching(empty, empty, np.zeros((0,)), gt_to_pred, pred_to_gt)
    # A forbidden pair costs more than any set of allowed pairs, so the solver uses one only where no
    # assignment of the same size avoids it; those pairs are dropped afterwards.
    finite_max = float(cost[allowed].max())
    big = (finite_max + 1.0) * (min(num_p, num_g) + 1)
    rows, cols = optimize.linear_sum_assignment(np.where(allowed, cost, big))
    keep = allowed[rows, cols]
    rows, cols = rows[keep], cols[keep]
    order = np.argsort(cols, kind="stable")
    rows, cols = rows[order], cols[order]
    gt_to_pred[cols] = rows
    pred_to_gt[rows] = cols
    return Matching(rows.astype(np.int64), cols.astype(np.int64), cost[rows, cols], gt_to_pred, pred_to_gt)
