"""The RPN's anchor boxes over a feature map (Faster R-CNN anchors, paper Sec 3.1).

Feature cell (y, x) of a map with stride ``s`` (image pixels per cell) looks at the image around
``((x + 0.5) s, (y + 0.5) s)``: its anchors are centred there. Each cell has A = len(scales) *
len(aspect_ratios) anchors; scale ``S`` and aspect ratio ``r = h / w`` give the box of width
``S / sqrt(r)`` and height ``S * sqrt(r)``, whose area is ``S²`` whatever the ratio.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf


def anchors_per_cell(scales: Sequence[float], aspect_ratios: Sequence[float]) -> int:
    """Anchors per feature cell: ``len(scales) * len(aspect_ratios)``."""
    return len(scales) * len(aspect_ratios)


def anchor_shapes(scales: Sequence[float], aspect_ratios: Sequence[float]) -> np.ndarray:
    """(A, 2) float64 (width, height) in pixels of one cell's anchors, scale-major.

    Row ``i * len(aspect_ratios) + j`` is scale ``scales[i]`` with ratio ``aspect_ratios[j]`` (h / w).
    Raises ValueError for an empty list or a non-positive value.
    """
    scales = np.asarray(scales, np.float64).reshape(-1)
    ratios = np.asarray(aspect_ratios, np.float64).reshape(-1)
    for name, values in (("scales", scales), ("aspect_ratios", ratios)):
        if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(f"{name} must be a non-empty list of positive numbers, got {values.tolist()}")
    root = np.sqrt(ratios)
    widths = scales[:, None] / root[None, :]
    heights = scales[:, None] * root[None, :]
    return np.stack([widths.reshape(-1), heights.reshape(-1)], axis=-1)


def generate_anchors(feature_height, feature_width, stride, scales: Sequence[float],
                     aspect_ratios: Sequence[float], dtype: tf.DType = tf.float32) -> tf.Tensor:
    """All anchor boxes of an H x W feature map.

    Args:
      feature_height: H, feature cells (Python int or scalar int tensor, e.g. from ``tf.shape``).
      feature_width: W, feature cells (same).
      stride: image pixels per feature cell (number or scalar tensor).
      scales: anchor sides in pixels (the side of the square anchor of that scale).
      aspect_ratios: height / width ratios.
      dtype: floating dtype of the result.

    Returns:
      (H * W * A, 4) xyxy boxes in image pixels. Row ``(y * W + x) * A + a`` is anchor ``a`` (in the
      scale-major order of :func:`anchor_shapes`) of cell (y, x), centred at
      ``((x + 0.5) * stride, (y + 0.5) * stride)``. Anchors may reach outside the image.
    """
    shapes = anchor_shapes(scales, aspect_ratios)
    half = 0.5 * np.concatenate([-shapes, shapes], axis=-1)  # (A, 4) offsets from the centre
    stride = tf.cast(stride, dtype)
    ys = (tf.cast(tf.range(feature_height), dtype) + 0.5) * stride
    xs = (tf.cast(tf.range(feature_width), dtype) + 0.5) * stride
    cy, cx = tf.meshgrid(ys, xs, indexing="ij")  # (H, W), row-major over (y, x)
    centres = tf.stack([cx, cy, cx, cy], axis=-1)[:, :, None, :]
    boxes = centres + tf.constant(half, dtype)[None, None, :, :]
    return tf.reshape(boxes, [-1, 4])
