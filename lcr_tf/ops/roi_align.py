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

The legacy variant. :func:`roi_align_legacy` is Detectron's RoIAlign (``aligned=False``), the one the
released LCR-Net++ models were trained with (Detectron.pytorch, ``lib/modeling/roi_xfrom/roi_align/src/
roi_align_kernel.cu``: ``ROIAlignForward`` and ``bilinear_interpolate``; caffe2's ``RoIAlignOp`` has the
same maths). It differs from :func:`roi_align` in five ways:

* no half-pixel offset: pixel ``x`` lies at ``x * spatial_scale`` on the feature map;
* a RoI is at least 1 x 1 feature cell (``max(x2 - x1, 1)`` after scaling; an inverted box is 1 cell wide,
  not mirrored);
* ``sampling_ratio`` 0 samples adaptively, ``ceil(roi side / output_size)`` points per bin side, per RoI
  and per axis (e.g. 2 x 3 for a RoI of 20 x 40 cells at output size 14);
* border rules: a point with ``y < -1`` or ``y > H`` (or ``x`` likewise) reads 0; a point in [-1, 0] reads
  row 0 and a point in [H - 1, H] reads row H - 1 (the kernel clamps it), whereas :func:`roi_align` reads 0
  anywhere outside [0, H - 1];
* the samples of a bin are averaged (no max).

How it is computed. The feature map is padded by one edge-replicated row and column on each side: on the
padded map (H + 2 rows, row r at r + 1) bilinear interpolation reads row 0 between -1 and 0 and row H - 1
between H - 1 and H, exactly what the kernel's clamping reads, and crop_and_resize's extrapolation value
0 beyond -1 and H, what the kernel returns there. The samples of one RoI along an axis are the regular grid
``start + (k + 0.5) side / (output_size * grid)``, k = 0..output_size * grid - 1, so one crop of
``output_size * grid`` points per side and an average pool over grid x grid blocks give the kernel's
bins (the derivation above, with the grid starting at the box's edge). The adaptive grid differs per RoI:
the RoIs are partitioned by their (grid_h, grid_w), one such crop per group up to ``max_sampling`` samples
per side, so each RoI costs the kernel's samples; RoIs with larger grids (sides over 1792 px at 14 cells,
stride 16 and the default 8) are pooled exactly too, by a loop over the sample offsets within the bins
(each offset's samples form an output_size x output_size grid of spacing one bin: one small crop each).
"""

from __future__ import annotations

import tensorflow as tf

POOLINGS = ("max", "avg")
# RoIAlign variants a model may choose: "aligned" (:func:`roi_align`), "legacy" (:func:`roi_align_legacy`).
VARIANTS = ("aligned", "legacy")
# Beyond this many samples per bin side the legacy variant's int32 loop counts could overflow: grids are
# clamped there (a RoI side over 2**15 * output_size cells, 7.3e6 px at 14 cells and stride 16).
_MAX_GRID = 2 ** 15


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


def _legacy_extent(lo: tf.Tensor, hi: tf.Tensor, spatial_scale: float) -> tuple:
    """Image-pixel interval [lo, hi] (N,) -> the kernel's ``roi_start`` and RoI side (N,), (N,) in feature
    cells: no half-pixel offset, and at least one cell (``ROIAlignForward``: "Force malformed ROIs to be
    1x1"). float32 like the kernel, so that the adaptive grid's ``ceil`` falls the same way."""
    start = lo * spatial_scale
    return start, tf.maximum(hi * spatial_scale - start, 1.0)


def _adaptive_grid(side: tf.Tensor, output_size: int) -> tf.Tensor:
    """RoI side (N,) in feature cells -> samples per bin side (N,), float32 integers in [1, _MAX_GRID]:
    ``ceil(side / output_size)`` (``roi_bin_grid_h`` / ``roi_bin_grid_w`` of ``ROIAlignForward``)."""
    grid = tf.math.ceil(side / float(output_size))
    # A NaN side (a non-finite box) gets 1 rather than an undefined int cast downstream.
    return tf.where(grid >= 1.0, tf.minimum(grid, float(_MAX_GRID)), 1.0)


def _padded_interval(first: tf.Tensor, last: tf.Tensor, span: tf.Tensor) -> tuple:
    """First and last sample (N,) along an axis, in feature cells -> crop_and_resize's normalised interval
    on the padded map, where feature row r is row r + 1 and the rows span ``span`` = H + 1 cells."""
    return (first + 1.0) / span, (last + 1.0) / span


def _grid_crop_boxes(geometry, grid_y, grid_x, output_size: int, span_hw) -> tf.Tensor:
    """Crop boxes (N, 4), normalised [y1, x1, y2, x2] on the padded map, whose ``output_size * grid``
    points per side are the kernel's samples: along y, ``start_y + (k + 0.5) side_y / (output_size *
    grid_y)``, k = 0..output_size * grid_y - 1 (likewise x).

    ``geometry`` (N, 4) is [start_y, side_y, start_x, side_x] in feature cells (:func:`_legacy_extent`);
    ``grid_y``, ``grid_x`` samples per bin side, (N,) float32 or Python ints.
    """
    start_y, side_y, start_x, side_x = tf.unstack(geometry, 4, axis=-1)
    half_y = 0.5 * side_y / (output_size * grid_y)
    half_x = 0.5 * side_x / (output_size * grid_x)
    y1, y2 = _padded_interval(start_y + half_y, start_y + side_y - half_y, span_hw[0])
    x1, x2 = _padded_interval(start_x + half_x, start_x + side_x - half_x, span_hw[1])
    return tf.stack([y1, x1, y2, x2], axis=-1)


def _pool_fixed_grid(padded, crop_boxes, box_indices, output_size: int, grid_h: int, grid_w: int) -> tf.Tensor:
    """Legacy RoIAlign of RoIs that all take ``grid_h`` x ``grid_w`` samples per bin (static ints): one
    crop of ``output_size * grid`` points per side (``crop_boxes`` from :func:`_grid_crop_boxes`), then the
    mean of each grid_h x grid_w block. ``padded`` is the edge-padded (B, H + 2, W + 2, C) map. Returns
    (n, output_size, output_size, C) float32."""
    crops = tf.image.crop_and_resize(padded, crop_boxes, box_indices, [output_size * grid_h, output_size * grid_w],
                                     method="bilinear", extrapolation_value=0.0)
    if grid_h * grid_w > 1:
        crops = tf.nn.avg_pool2d(crops, ksize=(grid_h, grid_w), strides=(grid_h, grid_w), padding="VALID")
    return crops


def _pool_by_sample_offsets(padded, geometry, box_indices, output_size: int, span_hw) -> tf.Tensor:
    """Legacy RoIAlign with adaptive grids of any size, for the RoIs too large for the fused crops.

    Step t of a loop takes, in every RoI, the sample at offset (iy, ix) = divmod(t, grid_w) of each of its
    bins: these form a regular ``output_size`` x ``output_size`` grid of spacing one bin (a crop of that
    size), added to a running sum. Memory stays that of the output whatever the grids; the loop runs
    max(grid_h * grid_w) steps (a RoI whose own count is reached adds nothing more), each RoI costing the
    kernel's samples. ``geometry`` as for :func:`_grid_crop_boxes`; returns (n, output_size, output_size, C)
    float32.
    """
    start_y, side_y, start_x, side_x = tf.unstack(geometry, 4, axis=-1)
    grid_y, grid_x = _adaptive_grid(side_y, output_size), _adaptive_grid(side_x, output_size)
    bin_y, bin_x = side_y / output_size, side_x / output_size
    rows, cols = tf.cast(grid_y, tf.int32), tf.cast(grid_x, tf.int32)
    counts = rows * cols  # at most _MAX_GRID ** 2 = 2 ** 30: fits int32
    steps = tf.reduce_max(tf.concat([counts, [0]], axis=0))
    total = tf.zeros(tf.stack([tf.shape(geometry)[0], output_size, output_size, tf.shape(padded)[3]]))

    def body(t, total):
        iy = tf.minimum(t // cols, rows - 1)  # finished RoIs: any point of their box, discarded below
        ix = t % cols
        # ROIAlignForward: y = roi_start_h + ph * bin_size_h + (iy + .5f) * bin_size_h / roi_bin_grid_h.
        first_y = start_y + (tf.cast(iy, tf.float32) + 0.5) * bin_y / grid_y
        first_x = start_x + (tf.cast(ix, tf.float32) + 0.5) * bin_x / grid_x
        y1, y2 = _padded_interval(first_y, first_y + (output_size - 1) * bin_y, span_hw[0])
        x1, x2 = _padded_interval(first_x, first_x + (output_size - 1) * bin_x, span_hw[1])
        crops = tf.image.crop_and_resize(padded, tf.stack([y1, x1, y2, x2], axis=-1), box_indices,
                                         [output_size, output_size], method="bilinear",
                                         extrapolation_value=0.0)
        # tf.where, not a 0/1 weight: a discarded non-finite read must not turn the sum into NaN.
        return t + 1, total + tf.where((t < counts)[:, None, None, None], crops, 0.0)

    _, total = tf.while_loop(lambda t, _: t < steps, body, (tf.constant(0), total))
    return total / tf.cast(counts, tf.float32)[:, None, None, None]


def _pool_adaptive(padded, geometry, box_indices, output_size: int, max_sampling: int, span_hw) -> tf.Tensor:
    """Legacy RoIAlign with the adaptive grid: RoIs partitioned by (grid_h, grid_w), each group of grids up
    to ``max_sampling`` per side pooled by one fused crop of its own size, the rest by the sample-offset
    loop; results stitched back into the RoIs' order."""
    grid_y = _adaptive_grid(geometry[:, 1], output_size)
    grid_x = _adaptive_grid(geometry[:, 3], output_size)
    fused = (grid_y <= max_sampling) & (grid_x <= max_sampling)
    num_fused = max_sampling * max_sampling
    group = tf.where(fused, (tf.cast(grid_y, tf.int32) - 1) * max_sampling + tf.cast(grid_x, tf.int32) - 1,
                     num_fused)
    # Crop boxes for every RoI at once, before the partition: each group then adds two ops to the graph.
    crop_boxes = _grid_crop_boxes(geometry, grid_y, grid_x, output_size, span_hw)
    positions = tf.dynamic_partition(tf.range(tf.shape(geometry)[0]), group, num_fused + 1)
    crop_boxes = tf.dynamic_partition(crop_boxes, group, num_fused + 1)
    indices = tf.dynamic_partition(box_indices, group, num_fused + 1)
    pooled = [_pool_fixed_grid(padded, crop_boxes[g], indices[g], output_size, g // max_sampling + 1,
                               g % max_sampling + 1) for g in range(num_fused)]
    overflow = tf.dynamic_partition(geometry, tf.cast(group == num_fused, tf.int32), 2)[1]
    pooled.append(_pool_by_sample_offsets(padded, overflow, indices[-1], output_size, span_hw))
    return tf.dynamic_stitch(positions, pooled)


# Its Python control flow is all static (dtype, argument values): AutoGraph has nothing to convert, and
# converting the helpers of the ~65 groups took over 3 s of each trace (measured on CPU).
@tf.autograph.experimental.do_not_convert
def roi_align_legacy(features, boxes, box_indices, output_size: int, spatial_scale: float,
                     sampling_ratio: int = 0, max_sampling: int = 8) -> tf.Tensor:
    """Detectron's RoIAlign (``aligned=False``, average pooled), the released LCR-Net++ models' RoI pooling.

    The maths of Detectron.pytorch's ``ROIAlignForward`` / ``bilinear_interpolate``
    (``lib/modeling/roi_xfrom/roi_align/src/roi_align_kernel.cu``); how it differs from :func:`roi_align`
    and how it is computed: the module docstring. For a box, ``start = x1 * spatial_scale``,
    ``side = max(x2 * spatial_scale - start, 1)`` (feature cells), ``bin = side / output_size``, and bin
    ``pw`` averages the bilinear reads at ``start + pw * bin + (ix + 0.5) * bin / grid``, ix < grid, with
    ``grid = sampling_ratio`` or, for 0, ``ceil(side / output_size)`` (likewise along y).

    Args:
      features: (B, H, W, C) feature maps (H, W >= 1), float16, bfloat16, float32 or float64.
      boxes: (N, 4) xyxy boxes in image pixels, finite (they may reach outside the image; empty and
        inverted boxes are allowed and pooled as 1 x 1 cell RoIs from (x1, y1)).
      box_indices: (N,) int, the image in [0, B) that each box pools from.
      output_size: cells per side of the pooled grid (14 for the released models).
      spatial_scale: feature cells per image pixel (1 / stride, 1/16 for the released models).
      sampling_ratio: bilinear samples per bin side; 0 (the released models) samples
        ``ceil(side / output_size)`` per bin side, per RoI and per axis.
      max_sampling: adaptive grids up to this many samples per side are pooled by one fused crop per
        (grid_h, grid_w) group (``max_sampling ** 2`` groups in the graph); RoIs with a larger grid, a side
        over ``max_sampling * output_size / spatial_scale`` pixels (1792 px for 8, 14, 1/16), take a loop
        over their sample offsets, slower but exact as well. No cap on the grid (short of 2**15 samples per
        bin side, a RoI side of 7.3e6 px at 14, 1/16). Unused when ``sampling_ratio`` > 0. Memory: a fused
        crop holds (output_size * grid_h) x (output_size * grid_w) x C float32 per RoI, as
        :func:`roi_align` holds (output_size * sampling_ratio) ** 2 x C.

    Returns:
      (N, output_size, output_size, C) pooled features in ``features``' dtype (computed in float32, as
      crop_and_resize computes); row i, column j is the bin at the i-th row (y) and j-th column (x) of the
      box. Differentiable with respect to ``features``; boxes should be treated as constants (the grid
      choice is piecewise constant in them).
    """
    if isinstance(output_size, bool) or not isinstance(output_size, int) or output_size < 1:
        raise ValueError(f"output_size must be a positive int, got {output_size!r}")
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int) or sampling_ratio < 0:
        raise ValueError(f"sampling_ratio must be an int >= 0 (0: adaptive), got {sampling_ratio!r}")
    if isinstance(max_sampling, bool) or not isinstance(max_sampling, int) or max_sampling < 1:
        raise ValueError(f"max_sampling must be a positive int, got {max_sampling!r}")
    if not float(spatial_scale) > 0:
        raise ValueError(f"spatial_scale must be > 0, got {spatial_scale!r}")
    features = tf.convert_to_tensor(features)
    boxes = tf.cast(tf.convert_to_tensor(boxes), tf.float32)
    box_indices = tf.cast(box_indices, tf.int32)
    # crop_and_resize has no bfloat16 kernel (it computes in float32 whatever it is given anyway).
    source = tf.cast(features, tf.float32) if features.dtype == tf.bfloat16 else features
    # One edge-replicated row and column on each side (SYMMETRIC mirrors about the edge, so repeats it):
    # the kernel's clamping within one cell of the border, and 0 beyond (see the module docstring).
    padded = tf.pad(source, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    span_hw = tf.cast(tf.shape(features)[1:3] + 1, tf.float32)
    x1, y1, x2, y2 = tf.unstack(boxes, 4, axis=-1)
    start_y, side_y = _legacy_extent(y1, y2, float(spatial_scale))
    start_x, side_x = _legacy_extent(x1, x2, float(spatial_scale))
    geometry = tf.stack([start_y, side_y, start_x, side_x], axis=-1)
    if sampling_ratio > 0:
        crop_boxes = _grid_crop_boxes(geometry, sampling_ratio, sampling_ratio, output_size, span_hw)
        pooled = _pool_fixed_grid(padded, crop_boxes, box_indices, output_size, sampling_ratio, sampling_ratio)
    else:
        pooled = _pool_adaptive(padded, geometry, box_indices, output_size, max_sampling, span_hw)
    return tf.cast(pooled, features.dtype)
