"""The RPN's anchor boxes over a feature map (Faster R-CNN anchors, paper Sec 3.1), in two conventions.

``"centred"`` (the default): feature cell (y, x) of a map with stride ``s`` (image pixels per cell) looks
at the image around ``((x + 0.5) s, (y + 0.5) s)``: its anchors are centred there, in continuous
coordinates (a box's width is ``x2 - x1``). Each cell has A = len(scales) * len(aspect_ratios) anchors;
scale ``S`` and aspect ratio ``r = h / w`` give the box of width ``S / sqrt(r)`` and height
``S * sqrt(r)``, whose area is ``S²`` whatever the ratio. Anchors of a cell are scale-major.

``"detectron"``: the anchors of Detectron (``modeling/generate_anchors.py``), which the released
LCR-Net++ models were trained with: integer pixel boxes whose width is ``x2 - x1 + 1``, derived from
the ``s x s`` window ``[0, 0, s - 1, s - 1]`` (centre ``(s - 1) / 2``) by rounding the ratio's sides to
whole pixels first, then scaling; cell (y, x) adds ``(x s, y s)``. Anchors of a cell are ratio-major
(:func:`detectron_cell_anchors`).

A model's RPN outputs follow the order of its convention: its A objectness channels and its 4A delta
channels (``4 a + k``: coordinate k of anchor a) are anchor ``a`` of that convention's cell order.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

# Anchor and proposal conventions (:func:`generate_anchors`, :func:`lcr_tf.ops.proposals.generate_proposals`).
CONVENTIONS = ("centred", "detectron")


def anchors_per_cell(scales: Sequence[float], aspect_ratios: Sequence[float]) -> int:
    """Anchors per feature cell: ``len(scales) * len(aspect_ratios)``."""
    return len(scales) * len(aspect_ratios)


def _positive_values(name: str, values) -> np.ndarray:
    """``values`` as a (n,) float64 array; ValueError unless a non-empty list of positive finite numbers."""
    values = np.asarray(values, np.float64).reshape(-1)
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"{name} must be a non-empty list of positive numbers, got {values.tolist()}")
    return values


def check_convention(convention: str) -> str:
    """``convention`` itself; ValueError unless it is one of :data:`CONVENTIONS`."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return convention


def anchor_shapes(scales: Sequence[float], aspect_ratios: Sequence[float]) -> np.ndarray:
    """(A, 2) float64 (width, height) in pixels of one cell's anchors, scale-major.

    Row ``i * len(aspect_ratios) + j`` is scale ``scales[i]`` with ratio ``aspect_ratios[j]`` (h / w).
    Raises ValueError for an empty list or a non-positive value.
    """
    scales = _positive_values("scales", scales)
    ratios = _positive_values("aspect_ratios", aspect_ratios)
    root = np.sqrt(ratios)
    widths = scales[:, None] / root[None, :]
    heights = scales[:, None] * root[None, :]
    return np.stack([widths.reshape(-1), heights.reshape(-1)], axis=-1)


def detectron_cell_anchors(stride: float, sizes: Sequence[float], aspect_ratios: Sequence[float]) -> np.ndarray:
    """(A, 4) float64 xyxy anchors of Detectron's cell (0, 0), ratio-major: row ``j * len(sizes) + i``
    is ratio ``aspect_ratios[j]`` (h / w) with size ``sizes[i]``.

    Detectron's ``generate_anchors(stride, sizes, aspect_ratios)``: the window ``[0, 0, s - 1, s - 1]``
    (``s = stride``, width ``s`` in the +1 convention, centre ``c = (s - 1) / 2``) first takes each ratio
    ``r`` with whole-pixel sides ``w_r = round(sqrt(s² / r))``, ``h_r = round(w_r r)`` (NumPy's rounding,
    half to even), then each size ``S`` scales those sides by ``S / s``; a box of sides (w, h) about the
    centre is ``[c - (w - 1) / 2, c - (h - 1) / 2, c + (w - 1) / 2, c + (h - 1) / 2]``. With stride 16,
    sizes (32, ..., 512) and ratios (0.5, 1, 2) the first anchor is ``[-15, -4, 30, 19]`` (46 x 24 px).

    Raises ValueError for an empty list or a non-positive value.
    """
    stride = float(_positive_values("stride", [stride])[0])
    sizes = _positive_values("sizes", sizes)
    ratios = _positive_values("aspect_ratios", aspect_ratios)
    centre = 0.5 * (stride - 1.0)
    # The ratio step keeps the window's area s² up to the rounding of both sides to whole pixels.
    ratio_widths = np.round(np.sqrt(stride * stride / ratios))
    ratio_heights = np.round(ratio_widths * ratios)
    factors = sizes / stride
    widths = (ratio_widths[:, None] * factors[None, :]).reshape(-1)   # (n_ratios * n_sizes,), ratio-major
    heights = (ratio_heights[:, None] * factors[None, :]).reshape(-1)
    half_w, half_h = 0.5 * (widths - 1.0), 0.5 * (heights - 1.0)
    return np.stack([centre - half_w, centre - half_h, centre + half_w, centre + half_h], axis=-1)


def generate_anchors(feature_height, feature_width, stride, scales: Sequence[float],
                     aspect_ratios: Sequence[float], dtype: tf.DType = tf.float32,
                     convention: str = "centred") -> tf.Tensor:
    """All anchor boxes of an H x W feature map.

    Args:
      feature_height: H, feature cells (Python int or scalar int tensor, e.g. from ``tf.shape``).
      feature_width: W, feature cells (same).
      stride: image pixels per feature cell (number or scalar tensor; a number, or a constant tensor,
        with ``"detectron"``, whose cell anchors are rounded in NumPy).
      scales: anchor sides in pixels (the side of the square anchor of that scale; Detectron's
        ``RPN.SIZES``).
      aspect_ratios: height / width ratios.
      dtype: floating dtype of the result.
      convention: ``"centred"`` or ``"detectron"`` (module docstring).

    Returns:
      (H * W * A, 4) xyxy boxes in image pixels. Row ``(y * W + x) * A + a`` is anchor ``a`` of cell
      (y, x), cell-major like Detectron's ``(K, A)`` enumeration. ``"centred"``: anchor ``a`` in the
      scale-major order of :func:`anchor_shapes`, centred at ``((x + 0.5) * stride, (y + 0.5) * stride)``.
      ``"detectron"``: row ``a`` of :func:`detectron_cell_anchors` (ratio-major, +1 widths) shifted by
      ``(x * stride, y * stride)``. Anchors may reach outside the image.
    """
    check_convention(convention)
    if convention == "detectron":
        static_stride = tf.get_static_value(stride)
        if static_stride is None:
            raise ValueError("convention 'detectron' needs a stride known when tracing (a number or a constant "
                             f"tensor), got {stride!r}")
        cell = detectron_cell_anchors(float(static_stride), scales, aspect_ratios)
        step = tf.constant(float(static_stride), dtype)
        ys = tf.cast(tf.range(feature_height), dtype) * step
        xs = tf.cast(tf.range(feature_width), dtype) * step
        sy, sx = tf.meshgrid(ys, xs, indexing="ij")  # (H, W), row-major over (y, x)
        shifts = tf.stack([sx, sy, sx, sy], axis=-1)[:, :, None, :]
        boxes = shifts + tf.constant(cell, dtype)[None, None, :, :]
        return tf.reshape(boxes, [-1, 4])
    shapes = anchor_shapes(scales, aspect_ratios)
    half = 0.5 * np.concatenate([-shapes, shapes], axis=-1)  # (A, 4) offsets from the centre
    stride = tf.cast(stride, dtype)
    ys = (tf.cast(tf.range(feature_height), dtype) + 0.5) * stride
    xs = (tf.cast(tf.range(feature_width), dtype) + 0.5) * stride
    cy, cx = tf.meshgrid(ys, xs, indexing="ij")  # (H, W), row-major over (y, x)
    centres = tf.stack([cx, cy, cx, cy], axis=-1)[:, :, None, :]
    boxes = centres + tf.constant(half, dtype)[None, None, :, :]
    return tf.reshape(boxes, [-1, 4])
