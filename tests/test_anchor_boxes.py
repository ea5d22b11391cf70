import math

import numpy as np
import pytest
import tensorflow as tf
from ref_detectron_rpn import generate_anchors_np

from lcr_tf.ops import anchor_boxes


def test_count_is_h_times_w_times_a():
    assert anchor_boxes.anchors_per_cell([32, 64, 128], [0.5, 1.0, 2.0]) == 9
    anchors = anchor_boxes.generate_anchors(3, 5, 16, [32, 64], [0.5, 1.0, 2.0])
    assert anchors.shape == (3 * 5 * 6, 4) and anchors.dtype == tf.float32


def test_first_anchors_by_hand_stride_16_scale_128():
    anchors = anchor_boxes.generate_anchors(2, 2, 16, [128], [0.5, 1.0, 2.0]).numpy()
    long_side, short_side = 128 * math.sqrt(2.0), 128 / math.sqrt(2.0)  # 181.02, 90.51
    expected = np.array([
        # ratio h/w = 0.5: wide, w = 181.02, h = 90.51, centred at (8, 8)
        [8 - long_side / 2, 8 - short_side / 2, 8 + long_side / 2, 8 + short_side / 2],
        [8 - 64, 8 - 64, 8 + 64, 8 + 64],  # ratio 1: the 128 x 128 square
        [8 - short_side / 2, 8 - long_side / 2, 8 + short_side / 2, 8 + long_side / 2],  # ratio 2: tall
    ])
    np.testing.assert_allclose(anchors[:3], expected, rtol=1e-6)
    # The next cell along x is 16 px to the right; the cell below (row 1) 16 px down.
    np.testing.assert_allclose(anchors[3:6], expected + [16, 0, 16, 0], rtol=1e-6)
    np.testing.assert_allclose(anchors[6:9], expected + [0, 16, 0, 16], rtol=1e-6)
    w = anchors[:, 2] - anchors[:, 0]
    h = anchors[:, 3] - anchors[:, 1]
    np.testing.assert_allclose(w * h, 128.0 ** 2, rtol=1e-5)
    np.testing.assert_allclose(h / w, np.tile([0.5, 1.0, 2.0], 4), rtol=1e-5)


def test_order_is_row_major_cells_then_scale_major_anchors():
    height, width, stride = 3, 4, 8.0
    scales, ratios = [10.0, 40.0], [0.25, 4.0]
    anchors = anchor_boxes.generate_anchors(height, width, stride, scales, ratios).numpy()
    a = len(scales) * len(ratios)
    centres = 0.5 * (anchors[:, :2] + anchors[:, 2:])
    sizes = anchors[:, 2:] - anchors[:, :2]
    for y in range(height):
        for x in range(width):
            for s_i, scale in enumerate(scales):
                for r_i, ratio in enumerate(ratios):
                    row = (y * width + x) * a + s_i * len(ratios) + r_i
                    np.testing.assert_allclose(centres[row], [(x + 0.5) * stride, (y + 0.5) * stride])
                    np.testing.assert_allclose(sizes[row], [scale / math.sqrt(ratio), scale * math.sqrt(ratio)],
                                               rtol=1e-6)


def test_dynamic_feature_size_inside_tf_function():
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 2])])
    def anchors_for(features):
        shape = tf.shape(features)
        return anchor_boxes.generate_anchors(shape[1], shape[2], 16, [64.0], [1.0, 2.0])

    got = anchors_for(tf.zeros([1, 5, 7, 2])).numpy()
    np.testing.assert_allclose(got, anchor_boxes.generate_anchors(5, 7, 16, [64.0], [1.0, 2.0]).numpy())
    assert got.shape == (5 * 7 * 2, 4)


def test_anchor_shapes_and_bad_arguments():
    np.testing.assert_allclose(anchor_boxes.anchor_shapes([16], [4.0]), [[8.0, 32.0]])
    with pytest.raises(ValueError, match="scales"):
        anchor_boxes.generate_anchors(2, 2, 16, [], [1.0])
    with pytest.raises(ValueError, match="aspect_ratios"):
        anchor_boxes.generate_anchors(2, 2, 16, [32.0], [1.0, -2.0])
    with pytest.raises(ValueError, match="scales"):
        anchor_boxes.anchor_shapes([0.0], [1.0])


# ---------------------------------------------------------------------------------------------------
# Detectron's convention, against tests/ref_detectron_rpn.py (a transcription of generate_anchors.py)
# ---------------------------------------------------------------------------------------------------

DETECTRON_SIZES = (32, 64, 128, 256, 512)


@pytest.mark.parametrize("stride, sizes, ratios", [
    (16, DETECTRON_SIZES, (0.5, 1, 2)),       # the released models' RPN (Detectron's defaults)
    (16, (64, 128, 256, 512), (0.5, 1, 2)),   # Detectron's RPN.SIZES default
    (8, (20, 50, 33), (0.25, 1, 3)),          # sizes not multiples of the stride, rounding of odd ratios
    (32, (24, 96), (1 / 3, 0.5, 1, 2, 3)),
    (16.0, (40,), (0.7, 1.3)),
])
def test_detectron_cell_anchors_equal_the_reference(stride, sizes, ratios):
    got = anchor_boxes.detectron_cell_anchors(stride, sizes, ratios)
    np.testing.assert_array_equal(got, generate_anchors_np(stride, sizes, ratios))
    assert got.shape == (anchor_boxes.anchors_per_cell(sizes, ratios), 4)


def test_detectron_default_anchors_well_known_values():
    anchors = anchor_boxes.detectron_cell_anchors(16, DETECTRON_SIZES, (0.5, 1.0, 2.0))
    # By hand: the 16 x 16 window [0, 0, 15, 15] (centre 7.5) at ratio 0.5 has w = round(sqrt(256 / 0.5))
    # = round(22.6) = 23, h = round(23 * 0.5) = round(11.5) = 12 (half to even); size 32 doubles them to
    # 46 x 24, so [7.5 - 22.5, 7.5 - 11.5, 7.5 + 22.5, 7.5 + 11.5]: +1 widths x2 - x1 + 1 = 46, 24.
    np.testing.assert_array_equal(anchors[0], [-15, -4, 30, 19])
    # Ratio 1, size 32 (row 1 * 5 + 0): the 32 x 32 square about 7.5.
    np.testing.assert_array_equal(anchors[5], [-8, -8, 23, 23])
    # Sizes 128, 256, 512 of each ratio are py-faster-rcnn's nine classic anchors (scales 8, 16, 32).
    classic = [[-84, -40, 99, 55], [-176, -88, 191, 103], [-360, -184, 375, 199],
               [-56, -56, 71, 71], [-120, -120, 135, 135], [-248, -248, 263, 263],
               [-36, -80, 51, 95], [-80, -168, 95, 183], [-168, -344, 183, 359]]
    np.testing.assert_array_equal(anchors.reshape(3, 5, 4)[:, 2:].reshape(-1, 4), classic)


def test_detectron_anchors_are_ratio_major_and_shifted_like_detectron():
    height, width, stride, ratios = 3, 4, 16, (0.5, 1.0, 2.0)
    got = anchor_boxes.generate_anchors(height, width, stride, DETECTRON_SIZES, ratios,
                                        convention="detectron").numpy()
    cell = generate_anchors_np(stride, DETECTRON_SIZES, ratios)
    # GenerateProposalsOp.forward: shifts (x s, y s) of the (H, W) grid, row-major, (K, 1, 4) + (1, A, 4).
    shift_x, shift_y = np.meshgrid(np.arange(width) * stride, np.arange(height) * stride)
    shifts = np.stack([shift_x.ravel(), shift_y.ravel(), shift_x.ravel(), shift_y.ravel()], axis=1)
    expected = (cell[None, :, :] + shifts[:, None, :]).reshape(-1, 4)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    # Ratio-major: anchor a = ratio index * len(sizes) + size index.
    w = cell[:, 2] - cell[:, 0] + 1
    h = cell[:, 3] - cell[:, 1] + 1
    # Up to the rounding of the ratio window to whole pixels (46 x 24 for 32 px at ratio 0.5).
    np.testing.assert_allclose((h / w).reshape(3, 5), np.repeat([[0.5], [1.0], [2.0]], 5, axis=1), rtol=0.05)
    np.testing.assert_allclose(np.sqrt(w * h).reshape(3, 5), np.tile(DETECTRON_SIZES, (3, 1)), rtol=0.04)


def test_detectron_anchors_inside_tf_function_and_bad_arguments():
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 2])])
    def anchors_for(features):
        shape = tf.shape(features)
        return anchor_boxes.generate_anchors(shape[1], shape[2], 16, [64.0, 128.0], [1.0, 2.0],
                                             convention="detectron")

    got = anchors_for(tf.zeros([1, 5, 7, 2])).numpy()
    np.testing.assert_array_equal(got, anchor_boxes.generate_anchors(5, 7, 16, [64.0, 128.0], [1.0, 2.0],
                                                                     convention="detectron").numpy())
    assert anchor_boxes.CONVENTIONS == ("centred", "detectron")
    with pytest.raises(ValueError, match="convention"):
        anchor_boxes.generate_anchors(2, 2, 16, [32.0], [1.0], convention="detectorn")
    with pytest.raises(ValueError, match="sizes"):
        anchor_boxes.generate_anchors(2, 2, 16, [], [1.0], convention="detectron")
    with pytest.raises(ValueError, match="stride"):
        anchor_boxes.detectron_cell_anchors(0, [32.0], [1.0])

    @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
    def traced_stride(stride):
        return anchor_boxes.generate_anchors(2, 2, stride, [32.0], [1.0], convention="detectron")

    with pytest.raises(ValueError, match="stride known when tracing"):
        traced_stride(16.0)
    # The centred convention is today's, whether named or not.
    np.testing.assert_array_equal(
        anchor_boxes.generate_anchors(3, 2, 16, [32.0, 64.0], [0.5, 2.0], convention="centred").numpy(),
        anchor_boxes.generate_anchors(3, 2, 16, [32.0, 64.0], [0.5, 2.0]).numpy())
