"""Tests of lcr_tf.modeling.backbones (no download: ImageNet weights are never fetched here)."""

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.modeling import backbones


@pytest.fixture(scope="module")
def resnet():
    return backbones.build_backbone("resnet50", weights="none", input_shape=(None, None, 3))


@pytest.fixture(scope="module")
def vgg():
    return backbones.build_backbone("vgg16", weights="none")


@pytest.fixture(scope="module")
def tiny():
    return backbones.build_backbone("tiny", weights="none")


def _images(batch, height, width, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, height, width, 3)).astype(np.float32)


def _pooled(backbone, n, seed=1):
    shape = (n, backbone.roi_size, backbone.roi_size, backbone.channels)
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _trainable_names(model):
    return {w.path for w in model.trainable_weights}


def _write_legacy_h5(path, layers):
    """A weights file in the legacy Keras HDF5 layout (that of the keras.applications ImageNet files):
    attribute ``layer_names``; per layer a group with attribute ``weight_names`` and one dataset each."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode() for name in layers]
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        for name, values in layers.items():
            group = f.create_group(name)
            weight_names = [f"{name}/w{i}:0".encode() for i in range(len(values))]
            group.attrs["weight_names"] = weight_names
            for weight_name, value in zip(weight_names, values):
                group.create_dataset(weight_name.decode(), data=value)


# ------------------------------------------------------------------------------------------------ shapes

def test_resnet50_shapes(resnet):
    assert (resnet.stride, resnet.channels, resnet.roi_size, resnet.feature_dim) == (16, 1024, 14, 2048)
    assert resnet.roi_head_type == "stage5"
    features = resnet.features(resnet.preprocess(_images(2, 128, 128)))
    assert features.shape == (2, 8, 8, 1024)
    assert resnet.features(_images(1, 100, 130)).shape == (1, 7, 9, 1024)  # ceil(H / 16)
    assert resnet.roi_head(_pooled(resnet, 3)).shape == (3, 2048)
    # Stage 5 is the ImageNet network's own conv5 (shared layers), halving 14 x 14 to 7 x 7.
    conv = resnet.roi_head.get_layer("conv5_block1_1_conv")
    assert conv is resnet.named_model.get_layer("conv5_block1_1_conv") and conv.strides == (2, 2)


def test_resnet50_fc_roi_head():
    backbone = backbones.build_backbone("resnet50", roi_head="fc", fc_dims=(48, 32))
    assert (backbone.roi_size, backbone.feature_dim, backbone.roi_head_type) == (7, 32, "fc")
    assert backbone.roi_head(_pooled(backbone, 2)).shape == (2, 32)
    assert [w.shape for w in backbone.roi_head.weights] == [(7 * 7 * 1024, 48), (48,), (48, 32), (32,)]
    # The FC head is trained from the start; conv5 is not part of this backbone's weights.
    assert {"roi_fc1", "roi_fc2"} <= {w.path.split("/")[-2] for w in backbone.weights_model.trainable_weights}
    assert not any(w.path.startswith("conv5") for w in backbone.weights_model.weights)


def test_vgg16_shapes(vgg):
    assert (vgg.stride, vgg.channels, vgg.roi_size, vgg.feature_dim) == (16, 512, 7, 4096)
    assert vgg.features(vgg.preprocess(_images(1, 128, 128))).shape == (1, 8, 8, 512)
    assert vgg.features(_images(1, 100, 130)).shape == (1, 6, 8, 512)  # floor(H / 16): valid pooling
    assert vgg.roi_head(_pooled(vgg, 2)).shape == (2, 4096)
    # fc6 / fc7 are the classifier's fc1 / fc2 (so ImageNet weights reach them).
    assert vgg.roi_head.get_layer("fc1") is vgg.named_model.get_layer("fc1")
    assert vgg.roi_head.get_layer("fc1").kernel.shape == (7 * 7 * 512, 4096)
    assert "block5_pool" not in [layer.name for layer in vgg.features.layers]


def test_tiny_shapes_and_size(tiny):
    assert (tiny.stride, tiny.channels, tiny.roi_size, tiny.feature_dim) == (16, 128, 7, 256)
    assert tiny.features(tiny.preprocess(_images(2, 128, 96))).shape == (2, 8, 6, 128)
    assert tiny.features(_images(1, 100, 130)).shape == (1, 7, 9, 128)
    assert tiny.roi_head(_pooled(tiny, 4)).shape == (4, 256)
    assert 300_000 < tiny.features.count_params() < 600_000


def test_features_run_in_a_graph_with_any_image_size(tiny):
    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    def run(images):
        return tiny.features(tiny.preprocess(images), training=False)

    assert run(_images(1, 64, 80)).shape == (1, 4, 5, 128)
    assert run(_images(2, 32, 32)).shape == (2, 2, 2, 128)


def test_preprocess_hand_computed():
    pixel = np.array([[[255.0, 0.0, 10.0]]], np.float32)  # RGB
    np.testing.assert_allclose(backbones.caffe_preprocess(pixel)[0, 0],
                               [10 - 103.939, 0 - 116.779, 255 - 123.68], rtol=1e-6)
    np.testing.assert_allclose(backbones.unit_preprocess(pixel)[0, 0], [1.0, -1.0, 10 / 127.5 - 1], rtol=1e-6)


# ----------------------------------------------------------------------------------- trainability and BN

def test_resnet50_batch_norm_is_frozen(resnet):
    bns = [layer for layer in backbones._all_layers(resnet.weights_model)
           if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 53 and not any(layer.trainable for layer in bns)
    assert not any("_bn/" in path for path in _trainable_names(resnet.weights_model))
    conv3_bn = resnet.named_model.get_layer("conv3_block1_1_bn")
    stage5_bn = resnet.roi_head.get_layer("conv5_block1_1_bn")
    before = [v.numpy() for v in (conv3_bn.moving_mean, conv3_bn.moving_variance, stage5_bn.moving_mean)]
    images = resnet.preprocess(_images(2, 64, 64, seed=5))
    train_out = resnet.features(images, training=True)
    train_roi = resnet.roi_head(_pooled(resnet, 2), training=True)
    after = [v.numpy() for v in (conv3_bn.moving_mean, conv3_bn.moving_variance, stage5_bn.moving_mean)]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(b, a)
    # A training-mode call is an inference-mode call (moving statistics, not batch statistics).
    np.testing.assert_allclose(train_out, resnet.features(images, training=False), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(train_roi, resnet.roi_head(_pooled(resnet, 2), training=False), rtol=1e-5,
                               atol=1e-5)


def test_resnet50_default_trainable_from(resnet):
    names = _trainable_names(resnet.weights_model)
    assert not any(p.startswith(("conv1_", "conv2_")) for p in names)
    assert "conv3_block1_1_conv/kernel" in names and "conv4_block6_3_conv/kernel" in names
    assert "conv5_block3_3_conv/kernel" in names


def test_trainable_from_choices():
    everything = backbones.build_backbone("tiny", trainable_from=None)
    assert len(everything.weights_model.trainable_weights) == 22  # 6 convs, 6 BN x 2, 2 FC x 2
    late = backbones.build_backbone("tiny", trainable_from="block3", freeze_batch_norm=True)
    names = _trainable_names(late.weights_model)
    assert names == {"block3_conv1/kernel", "block3_conv2/kernel", "roi_fc1/kernel", "roi_fc1/bias",
                     "roi_fc2/kernel", "roi_fc2/bias"}
    with pytest.raises(ValueError, match="unknown stage 'conv3' for backbone 'tiny'"):
        backbones.build_backbone("tiny", trainable_from="conv3")


def test_vgg16_default_trainable_from(vgg):
    names = _trainable_names(vgg.weights_model)
    assert not any(p.startswith(("block1", "block2")) for p in names)
    assert {"block3_conv1/kernel", "block5_conv3/kernel", "fc1/kernel", "fc2/bias"} <= names


def test_tiny_batch_norm_trains_by_default(tiny):
    bn = tiny.features.get_layer("block1_conv1_bn")
    assert bn.trainable
    before = bn.moving_mean.numpy()
    tiny.features(tiny.preprocess(_images(2, 32, 32, seed=7)), training=True)
    assert not np.allclose(before, bn.moving_mean.numpy())
    bn.moving_mean.assign(before)


# ------------------------------------------------------------------------------------------------ weights

def test_weights_file_round_trip(tiny, tmp_path):
    path = str(tmp_path / "tiny.weights.h5")
    tiny.save_weights(path)
    loaded = backbones.build_backbone("tiny", weights=path)
    fresh = backbones.build_backbone("tiny")
    images, pooled = tiny.preprocess(_images(1, 64, 64, seed=3)), _pooled(tiny, 2, seed=4)
    np.testing.assert_array_equal(loaded.features(images), tiny.features(images))
    np.testing.assert_array_equal(loaded.roi_head(pooled), tiny.roi_head(pooled))
    assert not np.allclose(fresh.roi_head(pooled), tiny.roi_head(pooled))
    with pytest.raises(ValueError, match=r"\*\.weights\.h5"):
        tiny.save_weights(str(tmp_path / "tiny.h5"))


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_file_of_another_configuration_is_refused(tiny, tmp_path):
    path = str(tmp_path / "tiny.weights.h5")
    tiny.save_weights(path)
    with pytest.raises(ValueError, match=r"cannot load backbone weights .*tiny\.weights\.h5.* into 'tiny'"):
        backbones.build_backbone("tiny", weights=path, fc_dims=(64, 64))


def test_legacy_h5_by_layer_name_tiny(tiny, tmp_path):
    path = str(tmp_path / "tiny_model.h5")
    keras.saving.save_model(tiny.named_model, path)  # legacy whole-model HDF5
    loaded = backbones.build_backbone("tiny", weights=path)
    images, pooled = tiny.preprocess(_images(1, 48, 48, seed=8)), _pooled(tiny, 2, seed=9)
    np.testing.assert_array_equal(loaded.features(images), tiny.features(images))
    np.testing.assert_array_equal(loaded.roi_head(pooled), tiny.roi_head(pooled))

    # A file of another network (no name in common) is refused rather than silently ignored.
    foreign = str(tmp_path / "other_network.h5")
    _write_legacy_h5(foreign, {"dense_7": [np.zeros((2, 2), np.float32)]})
    with pytest.raises(ValueError, match=r"other_network\.h5.*no layer name of the file matches"):
        backbones.build_backbone("tiny", weights=foreign)


def test_legacy_h5_by_layer_name_resnet50(tmp_path):
    # A partial file in the layout of keras.applications' ImageNet files: matched layers are loaded,
    # trunk and stage-5 RoI head alike; the others keep their initialisation.
    rng = np.random.default_rng(0)
    conv1 = [rng.normal(size=(7, 7, 3, 64)).astype(np.float32), rng.normal(size=64).astype(np.float32)]
    conv5 = [rng.normal(size=(1, 1, 512, 2048)).astype(np.float32), rng.normal(size=2048).astype(np.float32)]
    path = str(tmp_path / "resnet50_partial.h5")
    _write_legacy_h5(path, {"conv1_conv": conv1, "conv5_block3_3_conv": conv5})
    backbone = backbones.build_backbone("resnet50", weights=path)
    for layer, values in ((backbone.features.get_layer("conv1_conv"), conv1),
                          (backbone.roi_head.get_layer("conv5_block3_3_conv"), conv5)):
        for variable, value in zip(layer.weights, values):
            np.testing.assert_array_equal(variable.numpy(), value)

    bad = str(tmp_path / "bad_shapes.h5")
    _write_legacy_h5(bad, {"conv1_conv": [conv1[0][:3], conv1[1]]})
    with pytest.raises(ValueError, match=r"cannot load backbone weights .*bad_shapes\.h5.* into 'resnet50'"):
        backbone.load_weights(bad)


def test_imagenet_weights_are_requested_from_keras_applications(monkeypatch):
    # The download itself never runs in tests: record what keras.applications is asked for.
    requested = []
    real = keras.applications.ResNet50

    def fake(**kwargs):
        requested.append(kwargs["weights"])
        return real(**{**kwargs, "weights": None})

    monkeypatch.setattr(keras.applications, "ResNet50", fake)
    backbone = backbones.build_backbone("resnet50", weights="imagenet", roi_head="fc", fc_dims=(8, 8))
    assert requested == ["imagenet"] and backbone.channels == 1024


# ------------------------------------------------------------------------------------------------- errors

def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown backbone 'resnet101'"):
        backbones.build_backbone("resnet101")
    missing = str(tmp_path / "nowhere.weights.h5")
    with pytest.raises(FileNotFoundError, match="nowhere.weights.h5"):
        backbones.build_backbone("tiny", weights=missing)
    with pytest.raises(ValueError, match="'imagenet', 'none' or the path"):
        backbones.build_backbone("tiny", weights=str(tmp_path / "weights.ckpt"))
    with pytest.raises(ValueError, match="no ImageNet weights"):
        backbones.build_backbone("tiny", weights="imagenet")
    with pytest.raises(ValueError, match="no RoI head 'stage5'"):
        backbones.build_backbone("tiny", roi_head="stage5")
    with pytest.raises(ValueError, match="fc6 / fc7"):
        backbones.build_backbone("vgg16", fc_dims=(1024, 1024))
    with pytest.raises(ValueError, match=r"input_shape must be \(H, W, 3\)"):
        backbones.build_backbone("tiny", input_shape=(64, 64, 1))
