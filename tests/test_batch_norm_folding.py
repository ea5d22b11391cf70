"""Batch normalisation folded into convolutions (lcr_tf.modeling.batch_norm_folding) and its use by
lcr_tf.serving.inference.load_model and the export."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.layers.sync_batch_norm import SyncBatchNormalization
from lcr_tf.modeling import backbones, factory
from lcr_tf.modeling import batch_norm_folding as folding
from lcr_tf.poses import anchors as anchors_lib
from lcr_tf.poses import body_model
from lcr_tf.serving import export as export_lib
from lcr_tf.serving import inference


def _randomise_statistics(model, seed=0):
    """Batch-norm parameters and statistics far from the identity, so that a wrong fold shows."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        name = v.path.rsplit("/", 1)[-1]
        if name == "moving_variance":
            v.assign(rng.uniform(0.3, 3.0, v.shape))
        elif name in ("moving_mean", "beta"):
            v.assign(rng.normal(0.0, 0.5, v.shape))
        elif name == "gamma":
            v.assign(rng.uniform(0.5, 2.0, v.shape))


def test_folded_weights_by_hand():
    """One 1x1 conv, 1 input and 2 output channels: s = gamma / sqrt(var + eps), W' = W s, b' = (b - m) s + beta."""
    kernel = np.array([[[[2.0, -1.0]]]], np.float32)
    bias = np.array([1.0, 0.5], np.float32)
    # s = (6 / sqrt(8 + 1), 1 / sqrt(0 + 1)) = (2, 1)
    w, b = folding.folded_conv_weights(kernel, bias, np.array([6.0, 1.0]), np.array([0.25, -2.0]),
                                       np.array([0.0, 0.5]), np.array([8.0, 0.0]), 1.0)
    np.testing.assert_allclose(w, [[[[4.0, -1.0]]]])
    np.testing.assert_allclose(b, [(1.0 - 0.0) * 2 + 0.25, (0.5 - 0.5) * 1 - 2.0])
    # No bias, no centre: s = (2 / sqrt(3 + 1), 2 / sqrt(15 + 1)) = (1, 0.5), b' = -mean * s.
    w, b = folding.folded_conv_weights(kernel, None, np.array([2.0, 2.0]), None, np.array([1.0, -4.0]),
                                       np.array([3.0, 15.0]), 1.0)
    np.testing.assert_allclose(w, [[[[2.0, -0.5]]]])
    np.testing.assert_allclose(b, [-1.0, 2.0])
    assert w.dtype == np.float32 and b.dtype == np.float32


def _net():
    """conv -> BN -> ReLU (folds); conv with bias -> BN (folds); a conv feeding a BN and a skip (does not
    fold: the conv's output is needed unnormalised); a BN after an add (no conv: stays); a conv with a ReLU
    of its own -> BN (the normalisation follows the non-linearity: stays); a dense layer."""
    x = keras.Input((9, 9, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="a")(x)
    a = SyncBatchNormalization(name="a_bn")(a)
    a = keras.layers.ReLU()(a)
    b = keras.layers.Conv2D(4, 1, name="b")(a)
    b = keras.layers.BatchNormalization(name="b_bn")(b)
    c = keras.layers.Conv2D(4, 3, padding="same", name="c")(b)
    c_bn = keras.layers.BatchNormalization(name="c_bn")(c)
    d = keras.layers.Add()([c, c_bn])
    d = keras.layers.BatchNormalization(name="d_bn")(d)
    e = keras.layers.Conv2D(4, 1, activation="relu", name="e")(d)
    e = keras.layers.BatchNormalization(name="e_bn")(e)
    out = keras.layers.Dense(5, name="dense")(keras.layers.GlobalAveragePooling2D()(e))
    return keras.Model(x, out)


def test_pairs_and_outputs_of_a_small_net():
    keras.utils.set_random_seed(0)
    net = _net()
    _randomise_statistics(net)
    assert {k: v.name for k, v in folding.foldable_pairs(net).items()} == {"a": "a_bn", "b": "b_bn"}
    x = tf.random.uniform([2, 9, 9, 3], -1, 1, seed=3)
    want = net(x, training=False).numpy()
    before = [w.numpy().copy() for w in net.weights]
    folded = folding.fold_batch_norm(net)
    kinds = {layer.name: type(layer).__name__ for layer in folded.layers}
    assert kinds["a_bn"] == kinds["b_bn"] == "FoldedBatchNorm"
    assert kinds["c_bn"] == kinds["d_bn"] == kinds["e_bn"] == "BatchNormalization"
    assert folded.get_layer("a").use_bias and not net.get_layer("a").use_bias
    np.testing.assert_allclose(folded(x, training=False).numpy(), want, rtol=1e-5, atol=1e-5)
    for old, w in zip(before, net.weights):  # the source network is untouched
        np.testing.assert_array_equal(old, w.numpy())
    # The copy's weights are its own: changing the source does not change the copy.
    net.get_layer("dense").kernel.assign(tf.zeros_like(net.get_layer("dense").kernel))
    np.testing.assert_allclose(folded(x, training=False).numpy(), want, rtol=1e-5, atol=1e-5)


def test_nothing_to_fold_returns_the_model():
    x = keras.Input((4,))
    dense = keras.Model(x, keras.layers.Dense(2)(keras.layers.BatchNormalization()(x)))
    assert folding.fold_batch_norm(dense) is dense


@pytest.mark.parametrize("name, trunk_input, head_input", [
    ("tiny", (1, 64, 64, 3), (3, 7, 7, 128)),
    ("resnet50", (1, 64, 64, 3), (2, 14, 14, 1024)),
])
def test_backbones_fold_every_batch_norm_and_compute_the_same(name, trunk_input, head_input):
    """Every BN of the tiny and ResNet-50 backbones (trunk and the stage-5 RoI head, a view cut from the
    same network) is folded, and both parts give the unfolded outputs in float32."""
    keras.utils.set_random_seed(0)
    bb = backbones.build_backbone(name, "none")
    _randomise_statistics(bb.weights_model)
    folded = folding.fold_backbone(bb)
    for part, source, shape in ((folded.features, bb.features, trunk_input),
                                (folded.roi_head, bb.roi_head, head_input)):
        n_bn = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in source.layers)
        assert sum(isinstance(layer, folding.FoldedBatchNorm) for layer in part.layers) == n_bn
        assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in part.layers)
        x = tf.random.uniform(shape, 0, 1, seed=5)
        want = source(x, training=False).numpy()
        got = part(x, training=False).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert len(folded.weights_model.weights) < len(bb.weights_model.weights)


def _run_folder(tmp_path):
    keras.utils.set_random_seed(0)
    anchor_set = anchors_lib.cluster_poses(body_model.sample_poses(300, seed=0).poses3d, 4, 2, seed=0)
    config = factory.ModelConfig(num_anchors=4, image_size=64, rpn_scales=(16.0, 32.0, 64.0), rpn_channels=16,
                                 rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=10, fc_dims=(32, 32), seed=0)
    model = factory.build_model(config, anchor_set)
    model(tf.zeros([1, 64, 64, 3]))
    _randomise_statistics(model)
    path = str(tmp_path / "run")
    inference.save_model_dir(model, path)
    return model, path


def test_load_model_folds_and_keeps_every_other_weight(tmp_path):
    """load_model folds by default: the same proposals, class probabilities and head inputs as the
    trained network (float32), the anchor-poses and heads carried over, the flag recorded in the export."""
    model, path = _run_folder(tmp_path)
    kept = inference.load_model(path, fold_batch_norm=False)
    folded = inference.load_model(path)
    assert folded.batch_norm_folded and not kept.batch_norm_folded
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.model.trunk.layers)
    np.testing.assert_array_equal(folded.model.anchor_pose3d.numpy(), model.anchor_pose3d.numpy())
    np.testing.assert_array_equal(folded.model.lcr_head.classifier.kernel.numpy(),
                                  model.lcr_head.classifier.kernel.numpy())
    images = tf.random.uniform([2, 64, 64, 3], 0, 255, seed=7)
    want = model.roi_features(images)
    for loaded in (kept, folded):
        got = loaded.model.roi_features(images)
        for key, value in want.items():
            np.testing.assert_allclose(got[key].numpy(), value.numpy(), rtol=1e-4, atol=1e-4, err_msg=key)

    exported = tf.saved_model.load(export_lib.export(folded, str(tmp_path / "serving"), version=1))
    info = json.loads(exported.export_info.numpy().decode())
    assert info["batch_norm_folded"] is True


def test_folded_bfloat16_model_agrees_with_the_unfolded_one(tmp_path):
    """Under mixed_bfloat16 the fold changes only rounding: the trunk's features agree to bfloat16's
    resolution (8 bits of mantissa: relative error ~ 0.4 % per op, a few ops deep)."""
    _, path = _run_folder(tmp_path)
    kept = inference.load_model(path, "mixed_bfloat16", fold_batch_norm=False)
    folded = inference.load_model(path, "mixed_bfloat16")
    assert folded.model.trunk.get_layer("block1_conv1").compute_dtype == "bfloat16"
    images = tf.random.uniform([1, 64, 64, 3], 0, 255, seed=8)
    a = tf.cast(kept.model.trunk(kept.model.preprocess(images)), tf.float32).numpy()
    b = tf.cast(folded.model.trunk(folded.model.preprocess(images)), tf.float32).numpy()
    scale = np.abs(a).max()
    assert np.abs(a - b).max() < 0.05 * scale
    assert np.abs(a - b).mean() < 0.01 * scale
