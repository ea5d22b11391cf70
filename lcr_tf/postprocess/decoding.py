"""Candidate selection and pose decoding at inference (paper Sec 3.1, 3.6).

A candidate is a (RoI, class) pair whose classification probability is at least the candidate threshold.
Only candidates need their regression block, so inference selects them first and regresses those classes
only (:meth:`lcr_tf.layers.lcr_head.LCRHead.regress_classes`), then decodes them:

    2D pose (pixels)  = RoI box corner + (anchor2d_c + delta2d) * RoI box size
    3D pose (metres)  = anchor3d_c + delta3d        (camera axes, body-centred)

(:func:`lcr_tf.ops.pose_coding.decode_poses` in TensorFlow, :func:`decode_candidates` here in NumPy;
the TensorFlow candidate selection is :mod:`lcr_tf.postprocess.decoding_tf`.)

Class indices follow :mod:`lcr_tf.contracts.anchor_layout`: 0 background, ``1..2K`` foreground.
Candidates are ordered by decreasing score, ties by increasing flat index ``roi * 2K + (class - 1)``, in
both versions.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def _check_probs(class_probs: np.ndarray) -> None:
    if class_probs.ndim != 2 or class_probs.shape[1] < 2:
        raise ValueError(f"class_probs must be (N, 2K+1) with K >= 1 (background first), "
                         f"got shape {class_probs.shape}")
    if not np.all(np.isfinite(class_probs)):
        raise ValueError("class_probs has non-finite values")


def select_candidates(class_probs: np.ndarray, score_threshold: float, max_candidates: int
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The (RoI, class) pairs scoring ``>= score_threshold``, best first, at most ``max_candidates``.

    Args:
      class_probs: (N, 2K+1) probabilities, background first.
      score_threshold: candidate threshold.
      max_candidates: cap on M.
    Returns:
      roi_index (M,) int64, classes (M,) int64 in ``1..2K``, scores (M,) float64, valid (M,) bool (all
      True: the NumPy version is not padded).
    """
    class_probs = np.asarray(class_probs, np.float64)
    _check_probs(class_probs)
    if int(max_candidates) < 1:
        raise ValueError(f"max_candidates must be >= 1, got {max_candidates}")
    c = class_probs.shape[1] - 1
    flat = class_probs[:, 1:].reshape(-1)
    chosen = np.flatnonzero(flat >= score_threshold)
    order = np.argsort(-flat[chosen], kind="stable")[: int(max_candidates)]
    chosen = chosen[order]
    return (chosen // c).astype(np.int64), (chosen % c + 1).astype(np.int64), flat[chosen], \
        np.ones(chosen.shape, bool)


def decode_candidates(deltas: np.ndarray, roi_boxes: np.ndarray, classes: np.ndarray,
                      anchors2d: np.ndarray, anchors3d: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """NumPy twin of :func:`lcr_tf.ops.pose_coding.decode_poses` for one block per candidate.

    Args:
      deltas: (M, 5J) regression blocks (2J box-normalised 2D values, then 3J metres).
      roi_boxes: (M, 4) xyxy pixels. classes: (M,) int in ``1..2K``.
      anchors2d: (2K, J, 2) box-normalised; anchors3d: (2K, J, 3) metres (row ``c - 1`` for class c).
    Returns:
      pose2d (M, J, 2) float64 pixels, pose3d (M, J, 3) float64 metres.
    """
    anchors2d = np.asarray(anchors2d, np.float64)
    anchors3d = np.asarray(anchors3d, np.float64)
    j = anchors2d.shape[1]
    deltas = np.asarray(deltas, np.float64)
    classes = np.asarray(classes, np.int64)
    m = classes.shape[0]
    if deltas.shape != (m, 5 * j):
        raise ValueError(f"deltas must be (M={m}, 5J={5 * j}), got shape {deltas.shape}")
    if np.any(classes < 1) or np.any(classes > anchors2d.shape[0]):
        raise ValueError(f"classes must be in 1..{anchors2d.shape[0]}")
    boxes = np.asarray(roi_boxes, np.float64).reshape(m, 1, 4)
    d2 = deltas[:, : 2 * j].reshape(m, j, 2)
    d3 = deltas[:, 2 * j:].reshape(m, j, 3)
    pose2d = boxes[..., :2] + (anchors2d[classes - 1] + d2) * (boxes[..., 2:] - boxes[..., :2])
    return pose2d, anchors3d[classes - 1] + d3


def gather_release_layout(roi_index: np.ndarray, classes: np.ndarray, pose2d: np.ndarray,
                          pose3d: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Poses of candidates from the release layout ``pose2d`` (N, 2K, J, 2), ``pose3d`` (N, 2K, J, 3)."""
    return pose2d[roi_index, classes - 1], pose3d[roi_index, classes - 1]
