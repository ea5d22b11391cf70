"""Rescoring of pose proposals by how much of the 2D pose lies inside its box (paper eq 6).

    s' = s * (1 / J) * sum_j f(p_j, B),   f(p_j, B) = exp(-D(p_j, B)^2 / sigma_b^2)

where ``D(p_j, B)`` is the Euclidean distance (pixels) from joint j to the box B (0 inside or on the box),
so a pose entirely inside its box keeps its score. B is the box the proposal was regressed in (the RoI
box). This is the NumPy version (:func:`rescore`); :func:`lcr_tf.postprocess.rescoring_tf.rescore_tf` computes the
same in TensorFlow.
"""

from __future__ import annotations

import numpy as np

DEFAULT_SIGMA_B_PX = 25.0


def _check(scores, pose2d, boxes):
    if scores.ndim != 1:
        raise ValueError(f"scores must be (M,), got shape {scores.shape}")
    m = scores.shape[0]
    if pose2d.ndim != 3 or pose2d.shape[0] != m or pose2d.shape[2] != 2:
        raise ValueError(f"pose2d must be (M={m}, J, 2), got shape {pose2d.shape}")
    if boxes.shape != (m, 4):
        raise ValueError(f"boxes must be (M={m}, 4), got shape {boxes.shape}")
    for name, array in (("scores", scores), ("pose2d", pose2d), ("boxes", boxes)):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} has non-finite values")


def inside_fraction(pose2d: np.ndarray, boxes: np.ndarray, sigma_b: float = DEFAULT_SIGMA_B_PX) -> np.ndarray:
    """(M, J, 2) px and (M, 4) xyxy px -> (M,) mean over joints of f(p_j, B) in [0, 1]."""
    pose2d = np.asarray(pose2d, np.float64)
    boxes = np.asarray(boxes, np.float64)[:, None, :]
    # Per axis, how far the joint is beyond the nearer side (0 between the sides).
    gap = np.maximum(np.maximum(boxes[..., :2] - pose2d, pose2d - boxes[..., 2:]), 0.0)
    d2 = np.sum(gap * gap, axis=-1)
    return np.mean(np.exp(-d2 / (float(sigma_b) ** 2)), axis=-1)


def rescore(scores: np.ndarray, pose2d: np.ndarray, boxes: np.ndarray,
            sigma_b: float = DEFAULT_SIGMA_B_PX) -> np.ndarray:
    """Eq 6 in NumPy.

    Args:
      scores: (M,) classification scores s.
      pose2d: (M, J, 2) pixels (x right, y down): the regressed 2D poses.
      boxes: (M, 4) xyxy pixels: the box each pose was regressed in.
      sigma_b: pixels.
    Returns:
      (M,) float64 rescored s'.
    """
    scores = np.asarray(scores, np.float64)
    pose2d = np.asarray(pose2d, np.float64)
    boxes = np.asarray(boxes, np.float64)
    _check(scores, pose2d, boxes)
    if not sigma_b > 0:
        raise ValueError(f"sigma_b must be > 0, got {sigma_b}")
    return scores * inside_fraction(pose2d, boxes, sigma_b)
