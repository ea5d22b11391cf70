"""Boxes at the public API and their overlap, in NumPy (the TensorFlow twin is :mod:`lcr_tf.ops.box_ops`).

A box is ``[x1, y1, x2, y2]`` in the pixel convention of :mod:`lcr_tf.contracts.geometry` (continuous, x
right, y down), ``x1 <= x2``, ``y1 <= y2``; an inverted box has area 0. ``plus_one`` selects the public
LCR-Net release's convention in which a box spans ``x2 - x1 + 1`` pixels (its pose proposal integration
uses it); everything else uses plain widths.
"""

from __future__ import annotations

import numpy as np


def areas(boxes: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """(..., 4) xyxy -> (...,) float64 areas in pixels²; 0 for empty or inverted boxes."""
    boxes = np.asarray(boxes, np.float64)
    extra = 1.0 if plus_one else 0.0
    sides = np.maximum(boxes[..., 2:] - boxes[..., :2] + extra, 0.0)
    return sides[..., 0] * sides[..., 1]


def iou(boxes_a: np.ndarray, boxes_b: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """Pairwise intersection over union: (N, 4) and (M, 4) xyxy -> (N, M) float64 in [0, 1].

    A pair whose union is empty has IoU 0, never NaN.
    """
    a = np.asarray(boxes_a, np.float64)[:, None, :]
    b = np.asarray(boxes_b, np.float64)[None, :, :]
    extra = 1.0 if plus_one else 0.0
    sides = np.maximum(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]) + extra, 0.0)
    inter = sides[..., 0] * sides[..., 1]
    union = areas(boxes_a, plus_one)[:, None] + areas(boxes_b, plus_one)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
