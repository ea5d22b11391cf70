"""Tests of lcr_tf.layers: RPN head, RoIAligner, LCR head, refinement stage, space-to-depth stem."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.layers import LCRHead, RefinementStage, RoIAligner, RPNHead, SpaceToDepth, SyncBatchNormalization
from lcr_tf.ops import anchor_boxes

J = 13
BLOCK = 5 * J


def _round_trip(layer):
    """serialize -> deserialize through the registered name; returns the copy."""
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(copy) is type(layer)
    assert copy.get_config() == layer.get_config()
    return copy


# ----------------------------------------------------------------------------------------------- RPNHead

def test_rpn_head_shapes_and_dynamic_size():
    head = RPNHead(anchors_per_cell=6, channels=16)
    logits, deltas = head(tf.zeros((2, 5, 7, 8)))
    assert logits.shape == (2, 5 * 7 * 6) and deltas.shape == (2, 5 * 7 * 6, 4)

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 8), tf.float32)])
    def run(features):
        return head(features)

    logits, deltas = run(tf.zeros((1, 3, 4, 8)))
    assert logits.shape == (1, 3 * 4 * 6) and deltas.shape == (1, 3 * 4 * 6, 4)


def test_rpn_head_flattening_order_matches_anchor_order():
    b, h, w, a = 2, 3, 4, 2
    head = RPNHead(anchors_per_cell=a, channels=4 * a)
    head.build((None, h, w, 4 * a))
    # The 3x3 conv copies the input (centre tap = identity), the 1x1 convs pick channels, so each output
    # equals a hand-made input value that encodes (image, y, x, anchor, coordinate).
    kernel = np.zeros((3, 3, 4 * a, 4 * a), np.float32)
    kernel[1, 1] = np.eye(4 * a)
    head.conv.set_weights([kernel, np.zeros(4 * a, np.float32)])
    head.objectness.set_weights([np.eye(4 * a, a, dtype=np.float32)[None, None], np.zeros(a, np.float32)])
    head.box_deltas.set_weights([np.eye(4 * a, dtype=np.float32)[None, None], np.zeros(4 * a, np.float32)])
    bi, yi, xi, ci = np.meshgrid(np.arange(b), np.arange(h), np.arange(w), np.arange(4 * a), indexing="ij")
    features = (1000 * bi + 100 * yi + 10 * xi + ci + 1).astype(np.float32)
    logits, deltas = (t.numpy() for t in head(features))

    anchors = anchor_boxes.generate_anchors(h, w, 16, scales=[32.0, 64.0], aspect_ratios=[1.0]).numpy()
    assert anchors.shape[0] == logits.shape[1]
    for index in (0, 5, 13, h * w * a - 1):
        cell, anchor = divmod(index, a)
        y, x = divmod(cell, w)
        # generate_anchors puts this row at cell (y, x), anchor `anchor`.
        centre = (anchors[index, :2] + anchors[index, 2:]) / 2
        np.testing.assert_allclose(centre, [(x + 0.5) * 16, (y + 0.5) * 16])
        np.testing.assert_allclose(anchors[index, 2] - anchors[index, 0], [32.0, 64.0][anchor])
        for image in range(b):
            base = 1000 * image + 100 * y + 10 * x + 1
            assert logits[image, index] == base + anchor
            np.testing.assert_array_equal(deltas[image, index], base + 4 * anchor + np.arange(4))


def test_rpn_head_config_round_trip_and_errors():
    head = RPNHead(anchors_per_cell=9, channels=32, name="rpn")
    copy = _round_trip(head)
    assert copy.anchors_per_cell == 9 and copy.channels == 32 and copy.name == "rpn"
    with pytest.raises(ValueError, match="anchors_per_cell"):
        RPNHead(anchors_per_cell=0)


# -------------------------------------------------------------------------------------------- RoIAligner

def test_roi_aligner_hand_computed_values():
    # Feature value = column index x (2 images, the second shifted by 100). Box x in [0, 64] px at
    # stride 16 spans feature x from -0.5 to 3.5; 2 cells x 2 samples sample x = 0, 1 | 2, 3; max -> 1, 3.
    width = 8
    column = np.arange(width, dtype=np.float32)
    features = np.stack([np.broadcast_to(column[None, :, None], (6, width, 3)),
                         np.broadcast_to(column[None, :, None] + 100, (6, width, 3))])
    rois = np.array([[[0, 0, 64, 64], [32, 16, 96, 80]],
                     [[0, 0, 64, 64], [16, 0, 48, 32]]], np.float32)
    pooled = RoIAligner(output_size=2, spatial_scale=1 / 16)(features, rois).numpy()
    assert pooled.shape == (4, 2, 2, 3)
    # Rows are image-major: b * R + r.
    np.testing.assert_allclose(pooled[0, :, :, 0], [[1, 3], [1, 3]])
    np.testing.assert_allclose(pooled[1, :, :, 0], [[3, 5], [3, 5]])
    np.testing.assert_allclose(pooled[2, :, :, 0], [[101, 103], [101, 103]])
    # [16, 48] px -> feature [0.5, 2.5], step 0.5: samples 0.75, 1.25 | 1.75, 2.25 -> max 1.25, 2.25.
    np.testing.assert_allclose(pooled[3, :, :, 0], [[101.25, 102.25]] * 2)
    mean = RoIAligner(output_size=2, spatial_scale=1 / 16, pooling="avg")(features, rois).numpy()
    np.testing.assert_allclose(mean[0, :, :, 0], [[0.5, 2.5], [0.5, 2.5]])


def test_roi_aligner_gradients_and_graph():
    aligner = RoIAligner(output_size=7, spatial_scale=1 / 16, sampling_ratio=2)
    features = tf.random.stateless_normal((2, 8, 8, 4), seed=(1, 2))
    rois = tf.constant(np.tile([[[0, 0, 64, 64], [8, 8, 120, 100], [0, 0, 0, 0]]], (2, 1, 1)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([features, rois])
        loss = tf.reduce_sum(aligner(features, rois))
    assert tape.gradient(loss, rois) is None  # boxes are constants
    assert float(tf.reduce_sum(tf.abs(tape.gradient(loss, features)))) > 0

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 4)), tf.TensorSpec((None, None, 4))])
    def run(f, r):
        return aligner(f, r)

    assert run(features, rois).shape == (6, 7, 7, 4)
    symbolic = aligner(keras.Input((8, 8, 4), batch_size=2), keras.Input((3, 4), batch_size=2))
    assert tuple(symbolic.shape) == (6, 7, 7, 4)


def test_roi_aligner_config_round_trip_and_errors():
    copy = _round_trip(RoIAligner(output_size=14, spatial_scale=0.0625, sampling_ratio=3, pooling="avg"))
    assert (copy.output_size, copy.spatial_scale, copy.sampling_ratio, copy.pooling) == (14, 0.0625, 3, "avg")
    with pytest.raises(ValueError, match="pooling"):
        RoIAligner(7, 1 / 16, pooling="median")
    with pytest.raises(ValueError, match="spatial_scale"):
        RoIAligner(7, 0.0)


# ----------------------------------------------------------------------------------------------- LCRHead

def test_lcr_head_shapes_and_probabilities():
    head = LCRHead(num_classes=9, num_joints=J)
    logits, regression = head(tf.random.stateless_normal((5, 32), seed=(0, 1)))
    assert logits.shape == (5, 9) and regression.shape == (5, 9 * BLOCK)
    np.testing.assert_allclose(tf.reduce_sum(LCRHead.class_probabilities(logits), -1), np.ones(5), rtol=1e-6)
    assert head.classifier.kernel.shape == (32, 9) and head.regressor.kernel.shape == (32, 9 * BLOCK)


def test_regress_classes_equals_slicing_the_full_regression():
    num_classes = 11
    head = LCRHead(num_classes=num_classes, num_joints=J)
    x = tf.random.stateless_normal((6, 24), seed=(3, 4))
    head(x)
    # Non-trivial biases so that their gathering is checked too.
    head.regressor.bias.assign(tf.random.stateless_normal((num_classes * BLOCK,), seed=(5, 6)))
    full = head(x)[1].numpy().reshape(6, num_classes, BLOCK)
    rows = np.arange(6)[:, None]
    # All 11 classes used (the full-product branch), duplicates, background and the last class.
    many = np.array([[0, 10, 3], [3, 3, 3], [1, 2, 4], [10, 9, 8], [5, 0, 5], [7, 6, 2]])
    # Two distinct classes (the branch that multiplies by their columns only).
    few = np.array([[4, 9], [9, 9], [4, 4], [9, 4], [4, 9], [9, 9]])
    for classes in (many, few, many[:, :1], np.full((6, 1), 4)):
        np.testing.assert_allclose(head.regress_classes(x, classes), full[rows, classes], rtol=1e-5, atol=1e-6)

    @tf.function(input_signature=[tf.TensorSpec((None, 24)), tf.TensorSpec((None, None), tf.int32)])
    def run(v, c):
        return head.regress_classes(v, c)

    for classes in (many, few):
        np.testing.assert_allclose(run(x, classes), full[rows, classes], rtol=1e-5, atol=1e-6)
    assert run(x[:0], few[:0]).shape == (0, 2, BLOCK)


def test_lcr_head_config_round_trip_and_errors():
    copy = _round_trip(LCRHead(num_classes=401, num_joints=17))
    assert copy.num_classes == 401 and copy.num_joints == 17 and copy.block_size == 85
    with pytest.raises(ValueError, match="num_classes"):
        LCRHead(num_classes=1)


# --------------------------------------------------------------------------------------- RefinementStage

def _first_estimate(n=4, depth=20, num_classes=7, seed=0):
    features = tf.random.stateless_normal((n, depth), seed=(seed, 1))
    logits, regression = LCRHead(num_classes, J)(features)
    return features, logits, regression


def test_refinement_shapes_and_layer_widths():
    features, logits, regression = _first_estimate()
    stage = RefinementStage(num_classes=7, num_joints=J, hidden=16, fc=(12, 10))
    new_logits, new_regression = stage(features, logits, regression)
    assert new_logits.shape == (4, 7) and new_regression.shape == (4, 7 * BLOCK)
    assert stage.estimate_fc.kernel.shape == (7 + 7 * BLOCK, 16)
    assert stage.fc_layers[0].kernel.shape == (16 + 20, 12)  # first estimate + region vector
    assert stage.fc_layers[1].kernel.shape == (12, 10)
    assert stage.head.regressor.kernel.shape == (10, 7 * BLOCK)

    symbolic = stage(keras.Input((20,)), keras.Input((7,)), keras.Input((7 * BLOCK,)))
    assert [tuple(t.shape) for t in symbolic] == [(None, 7), (None, 7 * BLOCK)]


def test_refinement_reads_the_first_estimate():
    features, logits, regression = _first_estimate(seed=2)
    stage = RefinementStage(num_classes=7, num_joints=J, hidden=16, fc=(12, 10))
    base = stage(features, logits, regression)[1].numpy()
    # Softmax scores do not change when every logit of a region moves by the same amount ...
    np.testing.assert_allclose(stage(features, logits + 3.0, regression)[1], base, rtol=1e-5, atol=1e-6)
    # ... but the output depends on the first regression and, with raw logits, on the logits.
    assert not np.allclose(stage(features, logits, regression + 1.0)[1], base)
    raw = RefinementStage(num_classes=7, num_joints=J, hidden=16, fc=(12,), use_probabilities=False)
    assert not np.allclose(raw(features, logits + 3.0, regression)[1], raw(features, logits, regression)[1])
    with tf.GradientTape() as tape:
        tape.watch(regression)
        out = tf.reduce_sum(stage(features, logits, regression)[1])
    assert float(tf.reduce_sum(tf.abs(tape.gradient(out, regression)))) > 0


def test_refinement_regress_classes_matches_call():
    features, logits, regression = _first_estimate(n=5, seed=3)
    stage = RefinementStage(num_classes=7, num_joints=J, hidden=8, fc=(8, 8))
    full_logits, full = stage(features, logits, regression)
    classes = np.array([[1], [6], [0], [3], [3]])
    sel_logits, selected = stage.regress_classes(features, logits, regression, classes)
    np.testing.assert_allclose(sel_logits, full_logits, rtol=1e-5, atol=1e-6)
    expected = full.numpy().reshape(5, 7, BLOCK)[np.arange(5)[:, None], classes]
    np.testing.assert_allclose(selected, expected, rtol=1e-5, atol=1e-6)


def test_refinement_config_round_trip_and_errors():
    stage = RefinementStage(num_classes=7, num_joints=J, hidden=32, fc=(24, 16), use_probabilities=False)
    copy = _round_trip(stage)
    assert (copy.hidden, copy.fc, copy.use_probabilities) == (32, (24, 16), False)
    features, logits, regression = _first_estimate(n=2, num_classes=7, seed=4)
    out = copy(features, logits, regression)
    assert out[1].shape == (2, 7 * BLOCK)
    with pytest.raises(ValueError, match=r"class_logits \(N, 9\)"):
        RefinementStage(num_classes=9, num_joints=J)(features, logits, regression)
    with pytest.raises(ValueError, match="positive"):
        RefinementStage(num_classes=7, fc=())


def test_space_to_depth_moves_each_patch_into_channels_and_pads_to_the_block():
    # 1 image of 5 x 6 pixels, 2 channels, every value distinct: value = 100 * y + 10 * x + c.
    y, x, c = np.meshgrid(np.arange(5), np.arange(6), np.arange(2), indexing="ij")
    image = (100 * y + 10 * x + c).astype(np.float32)[None] + 1.0  # + 1: the padding's zeros stand out
    out = SpaceToDepth(4)(image).numpy()
    assert out.shape == (1, 2, 2, 32)  # ceil(5 / 4) x ceil(6 / 4), 4 * 4 * 2 channels
    for oy in range(2):
        for ox in range(2):
            for dy in range(4):
                for dx in range(4):
                    for ch in range(2):
                        py, px = 4 * oy + dy, 4 * ox + dx
                        expected = 100 * py + 10 * px + ch + 1.0 if py < 5 and px < 6 else 0.0
                        assert out[0, oy, ox, (dy * 4 + dx) * 2 + ch] == expected
    assert SpaceToDepth(4).compute_output_shape((None, 5, None, 3)) == (None, 2, None, 48)
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        SpaceToDepth(0)


def test_space_to_depth_round_trips_through_keras_serialization():
    restored = _round_trip(SpaceToDepth(2, name="stem"))
    assert restored.block_size == 2
    image = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    np.testing.assert_array_equal(restored(image), tf.nn.space_to_depth(image, 2))


# -------------------------------------------------------------------------------- SyncBatchNormalization

@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_path_equals_keras_batch_norm(training):
    """One replica: the fused kernel gives Keras' outputs, input and weight gradients, and moving averages."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, (2, 5, 6, 4)), tf.float32)
    ours, reference = SyncBatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    for layer in (ours, reference):
        layer.build(x.shape)
        layer.gamma.assign(rng.uniform(0.5, 2.0, 4).astype(np.float32) if layer is ours else ours.gamma)
        layer.beta.assign(np.arange(4, dtype=np.float32) if layer is ours else ours.beta)
        layer.moving_mean.assign(np.full(4, 0.5, np.float32))
        layer.moving_variance.assign(np.full(4, 2.0, np.float32))
    results = []
    for layer in (ours, reference):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            loss = tf.reduce_sum(y * tf.reshape(tf.range(4.0), [1, 1, 1, 4]) ** 2)
        results.append([y, *tape.gradient(loss, [x, layer.gamma, layer.beta]), layer.moving_mean,
                        layer.moving_variance])
    for got, expected in zip(*results):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    if training:  # hand-computed: 0.9 * old + 0.1 * batch statistic (biased variance)
        np.testing.assert_allclose(ours.moving_mean, 0.45 + 0.1 * np.mean(x, (0, 1, 2)), rtol=1e-5)
        np.testing.assert_allclose(ours.moving_variance, 1.8 + 0.1 * np.var(x, (0, 1, 2)), rtol=1e-5)


def test_fused_batch_norm_path_runs_in_bfloat16():
    x = tf.constant(np.random.default_rng(1).normal(0.0, 1.0, (2, 8, 8, 16)), tf.float32)
    layer = SyncBatchNormalization(dtype="mixed_bfloat16")
    y = layer(tf.cast(x, tf.bfloat16), training=True)
    assert y.dtype == tf.bfloat16 and layer.moving_mean.dtype == tf.float32
    # Normalised per channel: mean 0 and unit spread, to bfloat16's 3 digits.
    np.testing.assert_allclose(np.mean(tf.cast(y, tf.float32), (0, 1, 2)), 0.0, atol=2e-2)
    np.testing.assert_allclose(np.std(tf.cast(y, tf.float32), (0, 1, 2)), 1.0, atol=2e-2)
    traced = tf.function(lambda t: layer(t, training=True)).get_concrete_function(tf.cast(x, tf.bfloat16))
    assert "FusedBatchNormV3" in {op.type for op in traced.graph.get_operations()}
