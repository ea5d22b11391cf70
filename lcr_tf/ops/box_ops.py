"""Box arithmetic in TensorFlow: IoU, areas, clipping, Faster R-CNN deltas, TF's normalised boxes.

Boxes are ``[x1, y1, x2, y2]`` in pixels (x right, y down, origin at the top-left image corner), with the
continuous convention: a box's width is ``x2 - x1`` and its area ``(x2 - x1) * (y2 - y1)`` (no "+1").
A box with ``x2 <= x1`` or ``y2 <= y1`` is empty: its area is 0 and it overlaps nothing. Functions with a
``plus_one`` option also take Detectron's convention, where ``x1`` and ``x2`` are the first and last
pixel of the box and its width is ``x2 - x1 + 1``.

Every function accepts tensors, NumPy arrays or nested lists, broadcasts leading (batch) dimensions, and
computes in the floating dtype of its first argument (float32 when that argument is not floating).
"""

from __future__ import annotations

import math
from typing import Sequence

import tensorflow as tf

# Largest dw/dh a decoded box may take: a box at most 1000/16 times its anchor's side, which keeps
# exp() finite for wild early-training regressions (the bound of Faster R-CNN).
DEFAULT_SCALE_CLIP = math.log(1000.0 / 16.0)

# Sides are floored at this many pixels when encoding, so that an empty box (the zero padding of a
# batch) encodes to finite deltas: a masked-out -inf target would still turn a loss into NaN.
_MIN_SIDE = 1e-6


def _float(x, dtype=None) -> tf.Tensor:
    """``x`` as a floating tensor: cast to ``dtype`` when given, else kept floating (float32 otherwise)."""
    x = tf.convert_to_tensor(x)
    if dtype is not None:
        return tf.cast(x, dtype) if x.dtype != dtype else x
    return x if x.dtype.is_floating else tf.cast(x, tf.float32)


def _unstack_image_size(image_size, dtype) -> tuple:
    """(2,) or (..., 2) ``[height, width]`` -> (height, width), each (...,) in ``dtype``."""
    size = _float(image_size, dtype)
    return size[..., 0], size[..., 1]


def box_areas(boxes, plus_one: bool = False) -> tf.Tensor:
    """(..., 4) xyxy boxes -> (...,) areas in pixels²; empty (or inverted) boxes have area 0.

    ``plus_one``: a box spans ``x2 - x1 + 1`` pixels (see :mod:`lcr_tf.contracts.boxes`).
    """
    boxes = _float(boxes)
    extra = 1.0 if plus_one else 0.0
    x1, y1, x2, y2 = tf.unstack(boxes, 4, axis=-1)
    return tf.nn.relu(x2 - x1 + extra) * tf.nn.relu(y2 - y1 + extra)


def iou(boxes_a, boxes_b, plus_one: bool = False) -> tf.Tensor:
    """Pairwise intersection over union (the TensorFlow twin of :func:`lcr_tf.contracts.boxes.iou`).

    Args:
      boxes_a: (..., N, 4) xyxy boxes.
      boxes_b: (..., M, 4) xyxy boxes; leading dimensions broadcast against those of ``boxes_a``
        (e.g. (B, N, 4) against (M, 4) gives (B, N, M)).
      plus_one: a box spans ``x2 - x1 + 1`` pixels (the public release's PPI convention).

    Returns:
      (..., N, M) IoU in [0, 1]. A pair whose union is empty (two empty boxes) has IoU 0, never NaN.
    """
    boxes_a = _float(boxes_a)
    boxes_b = _float(boxes_b, boxes_a.dtype)
    a = boxes_a[..., :, None, :]
    b = boxes_b[..., None, :, :]
    top_left = tf.maximum(a[..., :2], b[..., :2])
    bottom_right = tf.minimum(a[..., 2:], b[..., 2:])
    extra = 1.0 if plus_one else 0.0
    inter_wh = tf.nn.relu(bottom_right - top_left + extra)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    union = box_areas(boxes_a, plus_one)[..., :, None] + box_areas(boxes_b, plus_one)[..., None, :] - inter
    return tf.math.divide_no_nan(inter, union)


def ioa(boxes, regions) -> tf.Tensor:
    """Pairwise intersection over the area of the first box: how much of each box lies in each region.

    Args:
      boxes: (..., N, 4) xyxy boxes (anchors, RoIs).
      regions: (..., M, 4) xyxy boxes (ignore regions); leading dimensions broadcast as in :func:`iou`.
    Returns:
      (..., N, M) in [0, 1]; 0 for an empty box, never NaN.
    """
    boxes = _float(boxes)
    regions = _float(regions, boxes.dtype)
    a = boxes[..., :, None, :]
    b = regions[..., None, :, :]
    inter_wh = tf.nn.relu(tf.minimum(a[..., 2:], b[..., 2:]) - tf.maximum(a[..., :2], b[..., :2]))
    return tf.math.divide_no_nan(inter_wh[..., 0] * inter_wh[..., 1], box_areas(boxes)[..., :, None])


def _centres_sizes(boxes: tf.Tensor) -> tuple:
    """(..., 4) xyxy -> (cx, cy, w, h), each (...,)."""
    x1, y1, x2, y2 = tf.unstack(boxes, 4, axis=-1)
    return 0.5 * (x1 + x2), 0.5 * (y1 + y2), x2 - x1, y2 - y1


def encode_deltas(boxes, anchors, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0), plus_one: bool = False
                  ) -> tf.Tensor:
    """Faster R-CNN regression targets of ``boxes`` relative to ``anchors``.

    ``dx = wx (cx - cx_a) / w_a``, ``dy = wy (cy - cy_a) / h_a``, ``dw = ww log(w / w_a)``,
    ``dh = wh log(h / h_a)`` with box centres ``cx, cy`` and sizes ``w, h`` in pixels.

    Args:
      boxes: (..., 4) xyxy target boxes, pixels.
      anchors: (..., 4) xyxy reference boxes, pixels, broadcastable against ``boxes``.
      weights: (wx, wy, ww, wh) multipliers of the four deltas.
      plus_one: Detectron's ``bbox_transform_inv`` (``utils/boxes.py``): widths ``x2 - x1 + 1`` and
        centres ``x1 + 0.5 w`` for both boxes; the inverse of :func:`decode_deltas` with ``plus_one``.

    Returns:
      (..., 4) deltas (dx, dy, dw, dh), unitless. Sides below 1e-6 px are floored there, so empty
      (padding) boxes give finite values.
    """
    boxes = _float(boxes)
    anchors = _float(anchors, boxes.dtype)
    if plus_one:
        # A +1-convention box [x1, x2] is the continuous box [x1 - 0.5, x2 + 0.5] (same centre, width + 1).
        half = tf.constant([-0.5, -0.5, 0.5, 0.5], boxes.dtype)
        boxes, anchors = boxes + half, anchors + half
    cx, cy, w, h = _centres_sizes(boxes)
    cxa, cya, wa, ha = _centres_sizes(anchors)
    w, h = tf.maximum(w, _MIN_SIDE), tf.maximum(h, _MIN_SIDE)
    wa, ha = tf.maximum(wa, _MIN_SIDE), tf.maximum(ha, _MIN_SIDE)
    wx, wy, ww, wh = (float(v) for v in weights)
    return tf.stack([wx * (cx - cxa) / wa, wy * (cy - cya) / ha,
                     ww * tf.math.log(w / wa), wh * tf.math.log(h / ha)], axis=-1)


def decode_deltas(deltas, anchors, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
                  clip: float = DEFAULT_SCALE_CLIP, plus_one: bool = False) -> tf.Tensor:
    """Inverse of :func:`encode_deltas`: applies (dx, dy, dw, dh) to anchors.

    Args:
      deltas: (..., 4) (dx, dy, dw, dh) as produced by :func:`encode_deltas` with the same ``weights``.
      anchors: (..., 4) xyxy reference boxes, pixels, broadcastable against ``deltas``.
      weights: (wx, wy, ww, wh) the deltas were multiplied by.
      clip: upper bound on ``dw / ww`` and ``dh / wh`` before ``exp`` (a box grows at most ``exp(clip)``
        times its anchor side); ``None`` for no bound.
      plus_one: Detectron's ``bbox_transform`` (``utils/boxes.py``), the +1 convention: the anchor's
        width is ``w = x2 - x1 + 1`` and its centre ``x1 + 0.5 w``; the box of centre ``cx'`` and width
        ``w' = exp(dw) w`` is ``[cx' - 0.5 w', ..., cx' + 0.5 w' - 1, ...]`` (the "- 1" makes its +1
        width ``w'``). Same clip (Detectron's ``BBOX_XFORM_CLIP`` is :data:`DEFAULT_SCALE_CLIP`).

    Returns:
      (..., 4) xyxy boxes in pixels, in the dtype of ``deltas``.
    """
    deltas = _float(deltas)
    anchors = _float(anchors, deltas.dtype)
    wx, wy, ww, wh = (float(v) for v in weights)
    dx, dy, dw, dh = tf.unstack(deltas, 4, axis=-1)
    dw, dh = dw / ww, dh / wh
    if clip is not None:
        dw, dh = tf.minimum(dw, clip), tf.minimum(dh, clip)
    if plus_one:
        # Operations in bbox_transform's order, so that float32 results match it to the last bit or so.
        x1, y1, x2, y2 = tf.unstack(anchors, 4, axis=-1)
        wa, ha = x2 - x1 + 1.0, y2 - y1 + 1.0
        cxa, cya = x1 + 0.5 * wa, y1 + 0.5 * ha
        cx = dx / wx * wa + cxa
        cy = dy / wy * ha + cya
        w, h = tf.exp(dw) * wa, tf.exp(dh) * ha
        return tf.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w - 1.0, cy + 0.5 * h - 1.0], axis=-1)
    cxa, cya, wa, ha = _centres_sizes(anchors)
    cx = cxa + dx / wx * wa
    cy = cya + dy / wy * ha
    half_w = 0.5 * tf.exp(dw) * wa
    half_h = 0.5 * tf.exp(dh) * ha
    return tf.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1)


def clip_boxes(boxes, image_size, plus_one: bool = False) -> tf.Tensor:
    """Clips xyxy boxes to the image: x into [0, width], y into [0, height].

    Args:
      boxes: (..., 4) xyxy boxes, pixels.
      image_size: ``[height, width]`` in pixels, shape (2,) for one size, or (..., 2) broadcastable
        to ``boxes.shape[:-1] + (2,)`` for one size per image (e.g. (B, 1, 2) for boxes (B, N, 4)).
      plus_one: the +1 convention (Detectron's ``clip_tiled_boxes``): x into [0, width - 1], y into
        [0, height - 1], the centres of the first and last pixels.

    Returns:
      (..., 4) clipped boxes. A box wholly outside the image becomes empty (zero width or height; with
      ``plus_one``, one pixel wide or high along the border it passed).
    """
    boxes = _float(boxes)
    height, width = _unstack_image_size(image_size, boxes.dtype)
    if plus_one:
        height, width = height - 1.0, width - 1.0
    limits = tf.stack([width, height, width, height], axis=-1)
    return tf.minimum(tf.nn.relu(boxes), limits)
