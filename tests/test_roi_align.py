import keras
import numpy as np
import pytest
import tensorflow as tf
from ref_detectron_roi_align import roi_align_legacy_np

from lcr_tf.layers import RoIAligner
from lcr_tf.ops.roi_align import VARIANTS, roi_align, roi_align_legacy


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


# ------------------------------------------------------------------- roi_align_legacy (Detectron's kernel)


def _legacy_reference(features, boxes, box_indices, output_size, spatial_scale, sampling_ratio):
    """The kernel transcription of tests/ref_detectron_roi_align.py, RoI by RoI, each on its own image."""
    return np.stack([roi_align_legacy_np(features[b], box[None], spatial_scale, output_size, output_size,
                                         sampling_ratio)[0] for box, b in zip(boxes, box_indices)])


def _legacy_case(seed):
    """3 images of 9 x 11 cells at stride 4 (36 x 44 px); the kernel clamps within one cell (4 px) of the
    border and reads 0 beyond. Boxes of every kind, then random ones of log-uniform sizes."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(3, 9, 11, 4)).astype(np.float32)
    boxes = [
        [3.3, 5.1, 30.7, 33.9],          # inside
        [-3.1, 6.2, 20.5, 30.3],         # over the left border, within the clamped cell
        [-9.7, 6.2, 20.5, 30.3],         # over the left border, beyond it
        [10.2, -6.3, 30.1, 20.7],        # over the top
        [20.4, 10.1, 49.3, 30.2],        # over the right
        [5.5, 20.3, 25.1, 41.9],         # over the bottom
        [-12.4, -7.7, 52.2, 45.3],       # over all four
        [50.1, 40.3, 90.7, 75.4],        # beyond the bottom-right
        [-30.2, -40.6, -5.3, -4.1],      # beyond the top-left
        [17.21, 12.13, 17.53, 12.39],    # tiny: less than a cell, pooled as one cell from (x1, y1)
        [12.6, 9.8, 11.2, 8.1],          # inverted: likewise
        [-100.3, -80.7, 150.2, 120.9],   # huge: 62.6 x 50.4 cells, a grid of 9 x 8 at 7 bins
        [-40.5, -30.1, 110.2, 75.3],     # large: grid 6 x 4 at 7 bins
        [2.25, 3.75, 33.5, 28.125],      # fractional
    ]
    xy = rng.uniform(-20, 50, (16, 2))
    boxes += np.concatenate([xy, xy + np.exp(rng.uniform(np.log(0.5), np.log(120), (16, 2)))], -1).tolist()
    boxes = np.array(boxes, np.float32)
    return features, boxes, rng.integers(0, 3, len(boxes)).astype(np.int32), 0.25


@pytest.mark.parametrize("output_size, sampling_ratio, max_sampling", [
    (7, 0, 8),   # adaptive: fused crops, and the sample-offset loop for the 9 x 8 grid
    (7, 0, 2),   # adaptive, most RoIs through the loop
    (3, 0, 8),   # adaptive, larger grids per bin
    (5, 2, 8),   # fixed
    (2, 1, 8),   # fixed, one sample per bin
])
def test_legacy_matches_the_kernel_transcription(output_size, sampling_ratio, max_sampling):
    features, boxes, box_indices, scale = _legacy_case(output_size + sampling_ratio)
    got = roi_align_legacy(features, boxes, box_indices, output_size, scale, sampling_ratio, max_sampling).numpy()
    expected = _legacy_reference(features, boxes, box_indices, output_size, scale, sampling_ratio)
    assert got.shape == (len(boxes), output_size, output_size, 4) and got.dtype == np.float32
    # float32 against float64: 1e-5 of the values' scale (measured: under 2e-6 absolute on values up to ~2).
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    assert np.all(got[7:9] == 0) and np.any(got[2] != got[1])  # beyond the map: 0; clamped cell matters
    if sampling_ratio == 0:  # the adaptive grids really differ between RoIs
        sides = np.maximum(boxes[:, 2:] - boxes[:, :2], 1 / scale) * scale
        assert len({tuple(g) for g in np.ceil(sides / output_size)}) >= 6


def test_legacy_hand_computed_on_a_ramp():
    # Feature value = x + 10 y on 4 x 4 cells: bilinear reads are exact, and the kernel reads a point in
    # [3, 4] (between the last cell and the border + 1) at 3.
    ys, xs = np.mgrid[0:4, 0:4].astype(np.float32)
    features = (xs + 10 * ys)[None, :, :, None]

    def pooled(box, output_size, scale=1.0, sampling_ratio=0):
        return roi_align_legacy(features, np.array([box], np.float32), [0], output_size, scale,
                                sampling_ratio).numpy()[0, :, :, 0]

    # No half-pixel offset: [0, 2] x [0, 2] in 2 x 2 bins of 1 cell, grid ceil(1) = 1, samples 0.5, 1.5.
    np.testing.assert_allclose(pooled([0, 0, 2, 2], 2), [[5.5, 6.5], [15.5, 16.5]], rtol=1e-6)
    np.testing.assert_allclose(pooled([0, 0, 4, 4], 2, scale=0.5), [[5.5, 6.5], [15.5, 16.5]], rtol=1e-6)
    # Samples 2.5, 3.5 -> 3: the clamped last cell.
    np.testing.assert_allclose(pooled([2, 2, 4, 4], 2), [[27.5, 28], [32.5, 33]], rtol=1e-6)
    # One bin of 4 cells: adaptive grid 4, samples 0.5, 1.5, 2.5, 3.5 -> 3, mean 1.875 per axis.
    np.testing.assert_allclose(pooled([0, 0, 4, 4], 1), [[1.875 * 11]], rtol=1e-6)
    # Two bins of 2 cells: grid 2, bins (0.5, 1.5) -> 1 and (2.5, 3) -> 2.75 per axis.
    np.testing.assert_allclose(pooled([0, 0, 4, 4], 2), [[11, 12.75], [28.5, 30.25]], rtol=1e-6)
    # A fixed grid of 2 samples per side in that bin: 1, 3; mean 2.
    np.testing.assert_allclose(pooled([0, 0, 4, 4], 1, sampling_ratio=2), [[2 * 11]], rtol=1e-6)
    # Smaller than a cell: 1 x 1 cell from (1, 1), sampled at its centre 1.5.
    np.testing.assert_allclose(pooled([1, 1, 1.25, 1.25], 1), [[16.5]], rtol=1e-6)


@pytest.mark.parametrize("axis", ["y", "x"])
def test_legacy_border_rules_one_by_one(axis):
    # 7 x 7 cells (the padded map spans 8 cells: the crop coordinates of dyadic points are exact). Each box
    # is 1 cell, 1 bin, 1 sample: the sample sits at the box's centre, c along `axis`, 3 on the other axis.
    rng = np.random.default_rng(11)
    fmap = rng.normal(size=(7, 7, 2)).astype(np.float32)
    points = {
        -1.125: np.zeros(2),                                   # y < -1: 0
        -1.0: fmap[0, 3],                                      # -1 itself: clamped to row 0
        -0.5: fmap[0, 3],                                      # (-1, 0]: row 0
        2.25: 0.75 * fmap[2, 3] + 0.25 * fmap[3, 3],           # inside: bilinear
        6.5: fmap[6, 3],                                       # [H - 1, H]: row H - 1
        7.0: fmap[6, 3],                                       # H itself: row H - 1
        7.1: np.zeros(2),                                      # y > H: 0
    }
    boxes = []
    for c in points:
        y_box, x_box = (c - 0.5, c + 0.5), (2.5, 3.5)
        if axis == "x":
            y_box, x_box = x_box, y_box
        boxes.append([x_box[0], y_box[0], x_box[1], y_box[1]])
    boxes = np.array(boxes, np.float32)
    features = fmap[None] if axis == "y" else fmap.transpose(1, 0, 2)[None]  # same reads along x
    got = roi_align_legacy(features, boxes, np.zeros(len(boxes), np.int32), 1, 1.0, 1).numpy()[:, 0, 0]
    np.testing.assert_allclose(got, np.array(list(points.values())), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got, roi_align_legacy_np(features[0], boxes, 1.0, 1, 1, 1)[:, 0, 0],
                               rtol=1e-6, atol=1e-7)


def test_legacy_is_aligned_avg_shifted_by_half_a_cell_inside_the_map():
    # Away from the border, the only differences are the half-pixel offset and the pooling.
    features, _, _, scale = _legacy_case(3)
    boxes = np.array([[6.1, 5.3, 30.2, 28.7], [9.9, 3.3, 22.4, 14.8]], np.float32)
    aligned = roi_align(features, boxes, [0, 2], 7, scale, 2, "avg").numpy()
    legacy = roi_align_legacy(features, boxes - 0.5 / scale, [0, 2], 7, scale, 2).numpy()
    np.testing.assert_allclose(legacy, aligned, atol=1e-5)


@pytest.mark.parametrize("dtype, tolerance", [(tf.bfloat16, 1 / 64), (tf.float16, 2e-3)])
def test_legacy_half_precision_keeps_its_dtype(dtype, tolerance):
    features, boxes, box_indices, scale = _legacy_case(4)
    half = tf.cast(features, dtype)
    got = roi_align_legacy(half, boxes, box_indices, 7, scale)
    assert got.dtype == dtype
    # The same features in float32 (the half-precision rounding of the input is not the op's).
    expected = roi_align_legacy(tf.cast(half, tf.float32), boxes, box_indices, 7, scale).numpy()
    np.testing.assert_allclose(tf.cast(got, tf.float32).numpy(), expected, rtol=tolerance, atol=tolerance)


def test_legacy_inside_tf_function_with_unknown_shapes_and_no_boxes():
    features, boxes, box_indices, scale = _legacy_case(5)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None]), tf.TensorSpec([None, 4]),
                                  tf.TensorSpec([None], tf.int32)])
    def pooled(f, b, i):
        out = roi_align_legacy(f, b, i, 7, scale)
        assert out.shape.as_list()[1:3] == [7, 7]  # static bin grid
        return out

    # Grappler's rewrites move float32 roundings: graph and eager both stay within 4e-6 of the reference.
    np.testing.assert_allclose(pooled(features, boxes, box_indices).numpy(),
                               roi_align_legacy(features, boxes, box_indices, 7, scale).numpy(), atol=1e-5)
    empty = (np.zeros((0, 4), np.float32), np.zeros((0,), np.int32))
    assert pooled(features, *empty).shape == (0, 7, 7, 4)
    assert roi_align_legacy(features, *empty, 7, scale).shape == (0, 7, 7, 4)
    assert roi_align_legacy(features, *empty, 7, scale, sampling_ratio=2).shape == (0, 7, 7, 4)


def test_legacy_gradient_matches_finite_differences():
    # The op is linear in the features: central differences of step 1 are exact up to float32 rounding.
    # All of them at once: image k of a batch holds the k-th perturbation, with the RoIs repeated on it.
    rng = np.random.default_rng(6)
    h, w, c = 3, 4, 2
    fmap = rng.normal(size=(1, h, w, c)).astype(np.float32)
    # Inside, over two borders (fused crops), and grid 3 x 2 > max_sampling 2 (the sample-offset loop).
    boxes = np.array([[2.1, 1.3, 9.8, 7.7], [-3.5, 4.4, 14.7, 13.1], [-6.3, -5.2, 18.9, 9.6]], np.float32)
    weights = rng.normal(size=(3, 2, 2, c)).astype(np.float32)
    features = tf.constant(fmap)
    with tf.GradientTape() as tape:
        tape.watch(features)
        loss = tf.reduce_sum(weights * roi_align_legacy(features, boxes, [0, 0, 0], 2, 0.25, max_sampling=2))
    grad = tape.gradient(loss, features).numpy()[0]
    basis = np.eye(h * w * c, dtype=np.float32).reshape(-1, h, w, c)
    batch = np.concatenate([fmap + basis, fmap - basis])
    k = len(batch)
    pooled = roi_align_legacy(batch, np.tile(boxes, (k, 1)), np.repeat(np.arange(k), 3), 2, 0.25,
                              max_sampling=2).numpy().reshape(k, 3, 2, 2, c)
    losses = (pooled * weights).sum(axis=(1, 2, 3, 4))
    numeric = ((losses[:k // 2] - losses[k // 2:]) / 2).reshape(h, w, c)
    assert np.abs(grad).min() > 0  # every cell is read
    np.testing.assert_allclose(grad, numeric, atol=1e-5)


def test_legacy_variant_of_the_layer():
    features, boxes, _, scale = _legacy_case(8)
    rois = boxes[:24].reshape(3, 8, 4)
    aligner = RoIAligner(output_size=7, spatial_scale=scale, sampling_ratio=0, variant="legacy")
    expected = roi_align_legacy(features, boxes[:24], np.repeat(np.arange(3), 8), 7, scale).numpy()
    np.testing.assert_array_equal(aligner(features, rois).numpy(), expected)
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(aligner))
    assert copy.get_config() == aligner.get_config() and copy.variant == "legacy" and copy.sampling_ratio == 0
    assert RoIAligner(7, scale).variant == "aligned" and VARIANTS == ("aligned", "legacy")
    with pytest.raises(ValueError, match="variant"):
        RoIAligner(7, scale, variant="detectron")
    with pytest.raises(ValueError, match="sampling_ratio"):
        RoIAligner(7, scale, sampling_ratio=0)  # adaptive sampling is the legacy variant's only


def test_legacy_bad_arguments_are_named():
    features, boxes, box_indices, scale = _legacy_case(1)
    for kwargs, name in [({"output_size": 0}, "output_size"), ({"sampling_ratio": -1}, "sampling_ratio"),
                         ({"max_sampling": 0}, "max_sampling"), ({"spatial_scale": 0.0}, "spatial_scale")]:
        args = {"output_size": 7, "spatial_scale": scale, **kwargs}
        with pytest.raises(ValueError, match=name):
            roi_align_legacy(features, boxes, box_indices, **args)
