"""RoIAlign (Mask R-CNN; paper Sec 3.5) on a single ``tf.image.crop_and_resize`` call.

Conventions. ``boxes`` are xyxy in image pixels. A pixel coordinate ``x`` lies at ``x * spatial_scale - 0.5``
on the feature map, whose cell centres are the integers 0..W-1 (the half-pixel convention of "aligned"
RoIAlign). Each of the ``output_size`` x ``output_size`` cells of a box is sampled at
``sampling_ratio`` x ``sampling_ratio`` points at cell-relative offsets ``(i + 0.5) / sampling_ratio``,
read by bilinear interpolation; a point outside [0, H-1] x [0, W-1] reads 0 (crop_and_resize's
extrapolation). The samples of a cell are pooled by max (the paper) or mean.

Why the crop box is what it is. Along x, a box from ``f1`` to ``f2`` (feature coordinates) has
``n = output_size * sampling_ratio`` sample points ``f1 + (m + 0.5) (f2 - f1) / n``, m = 0..n-1: a regular
grid from ``f1 + step / 2`` to ``f2 - step / 2`` with ``step = (f2 - f1) / n``. ``crop_and_resize`` with
crop size n samples ``x1 (W - 1) + m (x2 - x1) (W - 1) / (n - 1)`` for normalised ``x1, x2`` (the centre
``(x1 + x2) / 2 (W - 1)`` when n = 1): the same grid when ``x1 = (f1 + step / 2) / (W - 1)`` and
``x2 = (f2 - step / 2) / (W - 1)``. So one crop of n x n followed by a ``sampling_ratio`` pooling gives
RoIAlign exactly. Feature maps need H, W >= 2 (with a single row or column crop_and_resize reads it at
every sample point).
"""

from __future__ import annotations

import tensorflow as tf

POOLINGS = ("max", "avg")


def _crop_coordinates(lo: tf.Tensor, hi: tf.Tensor, spatial_scale: float, num_samples: int,
                      size: tf.Tensor) -> tuple:
    """Image-pixel interval [lo, hi] (N,) -> normalised crop_and_resize interval (N,), (N,) along an axis
    of ``size`` feature cells whose n = ``num_samples`` crop samples are the RoIAlign sample points."""
    f1 = lo * spatial_scale - 0.5
    f2 = hi * spatial_scale - 0.5
    half_step = 0.5 * (f2 - f1) / num_samples
    span = tf.maximum(size - 1.0, 1.0)
    return (f1 + half_step) / span, (f2 - half_step) / span


def roi_align(features, boxes, box_indices, output_size: int, spatial_scale: float,
              sampling_ratio: int = 2, pooling: str = "max") -> tf.Tensor:
    """Pools a fixed-size feature grid for every box.

    Args:
      features: (B, H, W, C) feature maps (H, W >= 2), float16, bfloat16, float32 or float64.
      boxes: (N, 4) xyxy boxes in image pixels (they may reach outside the image; empty and inverted
        boxes are allowed: an inverted box gives a mirrored grid).
      box_indices: (N,) int, the image in [0, B) that each box pools from.
      output_size: cells per side of the pooled grid (e.g. 7 or 14).
      spatial_scale: feature cells per image pixel (1 / stride).
      sampling_ratio: bilinear samples per cell side (>= 1).
      pooling: "max" (the paper) or "avg", how the samples of a cell are combined.

    Returns:
      (N, output_size, output_size, C) pooled features in ``features``' dtype; row i, column j is
      the cell at the i-th row (y) and j-th column (x) of the box. Differentiable with respect to
      ``features`` (and, through crop_and_resize, the boxes: stop their gradient where they are fixed).
    """
    if isinstance(output_size, bool) or not isinstance(output_size, int) or output_size < 1:
        raise ValueError(f"output_size must be a positive int, got {output_size!r}")
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int) or sampling_ratio < 1:
        raise ValueError(f"sampling_ratio must be a positive int, got {sampling_ratio!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    features = tf.convert_to_tensor(features)
    boxes = tf.cast(tf.convert_to_tensor(boxes), tf.float32)
    box_indices = tf.cast(box_indices, tf.int32)
    n = output_size * sampling_ratio
    feature_hw = tf.cast(tf.shape(features)[1:3], tf.float32)
    x1, y1, x2, y2 = tf.unstack(boxes, 4, axis=-1)
    ny1, ny2 = _crop_coordinates(y1, y2, spatial_scale, n, feature_hw[0])
    nx1, nx2 = _crop_coordinates(x1, x2, spatial_scale, n, feature_hw[1])
    # crop_and_resize has no bfloat16 kernel (it computes in float32 whatever it is given anyway).
    source = tf.cast(features, tf.float32) if features.dtype == tf.bfloat16 else features
    crops = tf.image.crop_and_resize(source, tf.stack([ny1, nx1, ny2, nx2], axis=-1), box_indices,
                                     [n, n], method="bilinear", extrapolation_value=0.0)
    if sampling_ratio > 1:
        # The pooling kernels are several times faster on CPU than a reshape + reduce over the samples.
        pool = tf.nn.max_pool2d if pooling == "max" else tf.nn.avg_pool2d
        crops = pool(crops, ksize=sampling_ratio, strides=sampling_ratio, padding="VALID")
    return tf.cast(crops, features.dtype)
