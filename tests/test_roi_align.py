import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.ops.roi_align import roi_align


def _bilinear(fmap, y, x):
    """Bilinear read of (H, W, C) at (y, x) in feature cells; 0 outside [0, H-1] x [0, W-1]."""
    h, w = fmap.shape[:2]
    if y < 0 or y > h - 1 or x < 0 or x > w - 1:
        return np.zeros(fmap.shape[2])
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * fmap[y0, x0] + (1 - ly) * lx * fmap[y0, x1]
            + ly * (1 - lx) * fmap[y1, x0] + ly * lx * fmap[y1, x1])


def _roi_align_reference(features, boxes, box_indices, output_size, spatial_scale, sampling_ratio, pooling):
    """RoIAlign straight from its definition, by loops."""
    out = np.zeros((len(boxes), output_size, output_size, features.shape[-1]))
    for n, (box, b) in enumerate(zip(boxes, box_indices)):
        x1, y1, x2, y2 = np.asarray(box, np.float64) * spatial_scale - 0.5
        cell_w, cell_h = (x2 - x1) / output_size, (y2 - y1) / output_size
        for i in range(output_size):
            for j in range(output_size):
                samples = [
                    _bilinear(features[b], y1 + (i + (si + 0.5) / sampling_ratio) * cell_h,
                              x1 + (j + (sj + 0.5) / sampling_ratio) * cell_w)
                    for si in range(sampling_ratio) for sj in range(sampling_ratio)]
                out[n, i, j] = np.max(samples, 0) if pooling == "max" else np.mean(samples, 0)
    return out


def _random_case(seed):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(3, 9, 11, 4)).astype(np.float32)
    scale = 0.25  # image of 36 x 44 px
    boxes = [
        [3.3, 5.1, 30.7, 33.9],     # inside
        [-12.4, -7.7, 15.2, 20.3],  # over the top-left corner
        [25.3, 20.6, 61.9, 47.2],   # over the bottom-right corner
        [80.1, 70.3, 120.7, 95.4],  # wholly outside
        [-30.2, -40.6, -3.3, -1.1],  # wholly outside, negative side
        [17.21, 12.13, 17.53, 12.39],  # tiny
        [1.7, 2.2, 42.6, 34.9],     # nearly the whole image
    ]
    xy = rng.uniform(-10, 40, (5, 2))
    boxes += np.concatenate([xy, xy + rng.uniform(0.5, 30, (5, 2))], -1).tolist()
    boxes = np.array(boxes, np.float32)
    box_indices = rng.integers(0, 3, len(boxes)).astype(np.int32)
    return features, boxes, box_indices, scale


@pytest.mark.parametrize("output_size", [7, 14])
@pytest.mark.parametrize("sampling_ratio", [1, 2, 3])
@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_matches_the_direct_definition(output_size, sampling_ratio, pooling):
    features, boxes, box_indices, scale = _random_case(output_size * 10 + sampling_ratio)
    got = roi_align(features, boxes, box_indices, output_size, scale, sampling_ratio, pooling).numpy()
    expected = _roi_align_reference(features, boxes, box_indices, output_size, scale, sampling_ratio, pooling)
    assert got.shape == (len(boxes), output_size, output_size, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)
    assert np.all(got[3:5] == 0)  # boxes wholly outside the feature map read zeros
    assert len(set(box_indices.tolist())) > 1


def test_hand_computed_on_a_ramp():
    # Feature value = x (column index) + 10 y: bilinear reads are exact on it.
    ys, xs = np.mgrid[0:6, 0:6].astype(np.float32)
    features = (xs + 10 * ys)[None, :, :, None]
    # spatial_scale 1: pixel box [0.5, 0.5, 4.5, 4.5] is feature box [0, 0, 4, 4]; 2 cells of 2 per side
    # sample at 0.5, 1.5 (cell 0) and 2.5, 3.5 (cell 1) along each axis.
    box = np.array([[0.5, 0.5, 4.5, 4.5]], np.float32)
    avg = roi_align(features, box, [0], 2, 1.0, 2, "avg").numpy()[0, :, :, 0]
    mx = roi_align(features, box, [0], 2, 1.0, 2, "max").numpy()[0, :, :, 0]
    np.testing.assert_allclose(avg, [[1 + 10, 3 + 10], [1 + 30, 3 + 30]], rtol=1e-6)
    np.testing.assert_allclose(mx, [[1.5 + 15, 3.5 + 15], [1.5 + 35, 3.5 + 35]], rtol=1e-6)
    # Stride 2: the same feature box from the pixel box [1, 1, 9, 9].
    half = roi_align(features, np.array([[1.0, 1.0, 9.0, 9.0]], np.float32), [0], 2, 0.5, 2, "avg").numpy()
    np.testing.assert_allclose(half[0, :, :, 0], avg, rtol=1e-6)


def test_inside_tf_function_with_unknown_box_count():
    features, boxes, box_indices, scale = _random_case(5)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 4]), tf.TensorSpec([None, 4]),
                                  tf.TensorSpec([None], tf.int32)])
    def pooled(f, b, i):
        out = roi_align(f, b, i, 7, scale, 2, "max")
        assert out.shape.as_list() == [None, 7, 7, 4]  # static cell grid and channels
        return out

    np.testing.assert_allclose(pooled(features, boxes, box_indices).numpy(),
                               roi_align(features, boxes, box_indices, 7, scale).numpy(), atol=1e-5)
    assert pooled(features, np.zeros((0, 4), np.float32), np.zeros((0,), np.int32)).shape == (0, 7, 7, 4)


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_gradients_flow_to_the_features(pooling):
    features, _, _, _ = _random_case(7)
    features = tf.Variable(features)
    # Boxes well inside image 1: every sample reads with bilinear weights summing to 1, so the
    # gradient of the sum of the outputs sums to one per cell and channel.
    boxes = tf.constant([[4.1, 5.3, 30.2, 28.7], [8.9, 3.3, 20.4, 12.8]])
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(roi_align(features, boxes, [1, 1], 7, 0.25, 2, pooling))
    grad = tape.gradient(total, features).numpy()
    assert np.all(grad[[0, 2]] == 0)
    np.testing.assert_allclose(grad[1].sum(axis=(0, 1)), np.full(4, 2 * 7 * 7), rtol=1e-5)


def test_half_precision_features_keep_their_dtype():
    features, boxes, box_indices, scale = _random_case(9)
    got = roi_align(tf.cast(features, tf.float16), boxes, box_indices, 7, scale, 2)
    assert got.dtype == tf.float16
    np.testing.assert_allclose(got.numpy(), roi_align(features, boxes, box_indices, 7, scale, 2).numpy(),
                               atol=2e-2)


def test_bad_arguments_are_named():
    features, boxes, box_indices, scale = _random_case(1)
    with pytest.raises(ValueError, match="output_size"):
        roi_align(features, boxes, box_indices, 0, scale)
    with pytest.raises(ValueError, match="sampling_ratio"):
        roi_align(features, boxes, box_indices, 7, scale, sampling_ratio=0)
    with pytest.raises(ValueError, match="pooling"):
        roi_align(features, boxes, box_indices, 7, scale, pooling="mean")
