"""NumPy reference of Detectron's RoIAlign (``aligned=False``), transcribed loop for loop from its kernel.

Source: Detectron.pytorch, ``lib/modeling/roi_xfrom/roi_align/src/roi_align_kernel.cu``, the forward
functions ``ROIAlignForward`` (RoI geometry, the adaptive sampling grid, the average over the bin) and
``bilinear_interpolate`` (the border rules); caffe2's ``RoIAlignOp`` computes the same. The kernel runs one
thread per output element (n, c, ph, pw); here the loops run over RoIs, bins and samples, every channel at
once (the channels never mix). Arithmetic is float64 where the kernel's is float32: the two agree to float32
rounding, except that the adaptive grid's ``ceil`` could fall differently for a RoI side within float32
rounding of a multiple of the pooled size.

Independent of :mod:`lcr_tf.ops.roi_align` (no TensorFlow, no crop_and_resize): tests compare the two, and
the NumPy reference of the whole released network imports :func:`roi_align_legacy_np`.
"""

import math

import numpy as np


def bilinear_interpolate(fmap: np.ndarray, y: float, x: float) -> np.ndarray:
    """``bilinear_interpolate`` of the kernel: (H, W, C) map read at (y, x) feature cells -> (C,).

    A point with y < -1 or y > H (x likewise) reads 0; y <= 0 is clamped to 0; when the row below
    ``int(y)`` would be past the last row, the point reads row H - 1 (x likewise).
    """
    height, width = fmap.shape[:2]
    # "deal with cases that inverse elements are out of feature map boundary"
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return np.zeros(fmap.shape[2], np.float64)
    if y <= 0:
        y = 0.0
    if x <= 0:
        x = 0.0
    y_low = int(y)  # y >= 0 here: truncation is floor, as the kernel's (int) cast
    x_low = int(x)
    if y_low >= height - 1:
        y_high = y_low = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_high = x_low = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly = y - y_low
    lx = x - x_low
    hy = 1.0 - ly
    hx = 1.0 - lx
    v1 = fmap[y_low, x_low]
    v2 = fmap[y_low, x_high]
    v3 = fmap[y_high, x_low]
    v4 = fmap[y_high, x_high]
    w1, w2, w3, w4 = hy * hx, hy * lx, ly * hx, ly * lx
    return w1 * v1 + w2 * v2 + w3 * v3 + w4 * v4


def roi_align_legacy_np(features, rois, spatial_scale, pooled_h, pooled_w, sampling_ratio=0):
    """``ROIAlignForward`` of the kernel, for the RoIs of one image.

    Args:
      features: (H, W, C) feature map (float64; other floats are converted).
      rois: (N, 4) boxes ``[x1, y1, x2, y2]`` in image pixels (the kernel's ``bottom_rois`` without their
        leading batch index).
      spatial_scale: feature cells per image pixel (1/16).
      pooled_h, pooled_w: bins per side (the kernel's ``aligned_height``, ``aligned_width``).
      sampling_ratio: samples per bin side; 0 takes ``ceil(roi side / pooled side)`` per RoI and axis.

    Returns:
      (N, pooled_h, pooled_w, C) float64: the mean of each bin's grid of bilinear reads.
    """
    features = np.asarray(features, np.float64)
    rois = np.asarray(rois, np.float64).reshape(-1, 4)
    out = np.zeros((len(rois), pooled_h, pooled_w, features.shape[2]), np.float64)
    for n, roi in enumerate(rois):
        # "Do not using rounding; this implementation detail is critical"
        roi_start_w = roi[0] * spatial_scale
        roi_start_h = roi[1] * spatial_scale
        roi_end_w = roi[2] * spatial_scale
        roi_end_h = roi[3] * spatial_scale
        # "Force malformed ROIs to be 1x1"
        roi_width = max(roi_end_w - roi_start_w, 1.0)
        roi_height = max(roi_end_h - roi_start_h, 1.0)
        bin_size_h = roi_height / pooled_h
        bin_size_w = roi_width / pooled_w
        roi_bin_grid_h = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_height / pooled_h))
        roi_bin_grid_w = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_width / pooled_w))
        count = roi_bin_grid_h * roi_bin_grid_w
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                output_val = np.zeros(features.shape[2], np.float64)
                for iy in range(roi_bin_grid_h):
                    y = roi_start_h + ph * bin_size_h + (iy + 0.5) * bin_size_h / roi_bin_grid_h
                    for ix in range(roi_bin_grid_w):
                        x = roi_start_w + pw * bin_size_w + (ix + 0.5) * bin_size_w / roi_bin_grid_w
                        output_val += bilinear_interpolate(features, y, x)
                out[n, ph, pw] = output_val / count
    return out
