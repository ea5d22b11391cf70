import math

import numpy as np
import pytest
import tensorflow as tf

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
