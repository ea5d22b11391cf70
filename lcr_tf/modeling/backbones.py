"""Backbones of LCR-Net: an image network to a stride-16 feature map, and the RoI head (paper Sec 3.5).

A :class:`Backbone` is the convolutional trunk shared by the RPN and the pose branches, cut at stride
16, plus the network applied to each region's pooled features to give one vector per region (the
"two fully-connected layers shared between classification and regression" of Sec 3.4, or ResNet's
stage 5 as in Mask R-CNN)::

    images (B, H, W, 3) float32 in [0, 255], RGB
        -> preprocess -> features (B, H', W', channels), H' ~ H / 16          (RPN, RoIAlign input)
    pooled RoIs (N, roi_size, roi_size, channels)
        -> roi_head -> (N, feature_dim)                                      (LCR heads input)

Backbones
---------
============  =========================================  ==========  ===============================
name          trunk (``features``)                       roi_size    ``roi_head`` -> feature_dim
============  =========================================  ==========  ===============================
``resnet50``  ResNet-50 up to ``conv4_block6_out``,      14 / 7      ``"stage5"`` (default): conv5
              1024 channels                                          blocks (stride 2, 14 -> 7),
                                                                     global average pool -> 2048;
                                                                     ``"fc"``: flatten 7x7x1024 ->
                                                                     FC ``fc_dims`` (1024, 1024)
``vgg16``     VGG-16 up to ``block5_conv3`` (last pool   7           fc6 / fc7: flatten 7x7x512 ->
              dropped), 512 channels                                 4096 -> 4096 (the ImageNet
                                                                     classifier's ``fc1`` / ``fc2``)
``tiny``      space-to-depth 4x4 (48 channels at 1/4    7           flatten 7x7x128 -> FC
              resolution), then 3 blocks of 2 x (conv                ``fc_dims`` (256, 256)
              3x3, BN, ReLU), the first conv of blocks
              2 and 3 with stride 2; 64/96/128
              channels, ~0.46M parameters
============  =========================================  ==========  ===============================

Feature map sizes: ``resnet50`` and ``tiny`` give ``ceil(H / 16)`` x ``ceil(W / 16)``, ``vgg16`` (valid
2x2 pooling) ``floor(H / 16)`` x ``floor(W / 16)``; use image sides that are multiples of 16 to have the
same grid everywhere. Feature cell ``(y, x)`` covers the pixels around ``((x + 0.5) * 16, (y + 0.5) * 16)``.

Frozen batch normalisation
--------------------------
ResNet-50 is trained with ImageNet-sized batches; detection batches (1-8 images) are too small for batch
statistics, so its BN layers are frozen, as is usual in detection: every ``BatchNormalization`` layer gets
``trainable = False``. In Keras 3 a non-trainable BN layer runs in inference mode whatever ``training``
flag it is called with (it uses its moving mean and variance and never updates them), so calling
``features(x, training=True)`` from a training step is safe, and ``gamma`` / ``beta`` receive no update.
``tiny`` is trained from scratch, so its BN layers stay trainable by default (``freeze_batch_norm``), and
synchronised (:class:`lcr_tf.layers.SyncBatchNormalization`): with several replicas their batch
statistics are those of the global batch.
Freezing is per layer: do not set ``trainable`` on ``features`` / ``roi_head`` as a whole afterwards
(Keras would pass the value down to every layer, BN included).

Weights
-------
``weights="imagenet"`` asks ``keras.applications`` for the ImageNet weights (a download on first use);
``"none"`` leaves a random initialisation; a path loads a file:

* ``*.weights.h5``: a file written by :meth:`Backbone.save_weights` for the same configuration (trunk
  and RoI head, matched by topology);
* ``*.h5`` / ``*.hdf5``: a legacy Keras weights file (or a whole-model file) matched by layer name
  against :attr:`Backbone.named_model`, e.g. the ``keras.applications`` ImageNet files
  ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`` or
  ``vgg16_weights_tf_dim_ordering_tf_kernels.h5`` fetched by hand for a machine without internet.
  Layers absent from the file keep their initialisation (e.g. the ``"fc"`` RoI head of ``resnet50``).

Fine-tuning depth
-----------------
``trainable_from`` names the first trainable stage; the layers of earlier stages are frozen (as in
Faster R-CNN, whose first stages hold generic ImageNet filters). Stages are ``conv1`` .. ``conv5`` for
``resnet50`` (default ``conv3``), ``block1`` .. ``block5``, ``fc`` for ``vgg16`` (default ``block3``),
``block1`` .. ``block3``, ``fc`` for ``tiny`` (default: everything trainable). ``None`` makes every stage
trainable (frozen BN stays frozen).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional, Sequence, Tuple

import h5py
import keras
import tensorflow as tf

from lcr_tf.layers.space_to_depth import SpaceToDepth
from lcr_tf.layers.sync_batch_norm import SyncBatchNormalization

STRIDE = 16
BACKBONES = ("resnet50", "vgg16", "tiny")
DEFAULT = "default"

# ImageNet channel means in BGR order: the "caffe" preprocessing that the keras.applications ResNet50
# and VGG16 weights were trained with.
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

_STAGES = {
    "resnet50": ("conv1", "conv2", "conv3", "conv4", "conv5", "fc"),
    "vgg16": ("block1", "block2", "block3", "block4", "block5", "fc"),
    "tiny": ("block1", "block2", "block3", "fc"),
}
_DEFAULT_TRAINABLE_FROM = {"resnet50": "conv3", "vgg16": "block3", "tiny": None}
# The tiny trunk: a space-to-depth stem of this block size, then (width, stride of its first conv) per
# block. It replaced 4 blocks of (32, 64, 96, 128) channels each starting with a stride-2 conv, whose
# first block ran 32-channel convs at half the image resolution: 40 % of the trunk's time for little
# capacity (the new trunk trains 1.4-1.7x faster, measured in benchmarks/bench_train.py; BUILD_NOTES).
_TINY_STEM_BLOCK = 4
_TINY_BLOCKS = ((64, 1), (96, 2), (128, 2))
_DEFAULT_FC_DIMS = {"resnet50": (1024, 1024), "vgg16": (4096, 4096), "tiny": (256, 256)}
_ROI_HEADS = {"resnet50": ("stage5", "fc"), "vgg16": ("fc",), "tiny": ("fc",)}


def caffe_preprocess(images) -> tf.Tensor:
    """(..., 3) RGB float in [0, 255] -> (..., 3) BGR minus the ImageNet mean (keras "caffe" mode)."""
    images = tf.convert_to_tensor(images, tf.float32)
    return images[..., ::-1] - tf.constant(_CAFFE_BGR_MEAN, tf.float32)


def bgr_mean_preprocess(means_bgr) -> Callable[[tf.Tensor], tf.Tensor]:
    """The preprocessing (..., 3) RGB float in [0, 255] -> BGR minus ``means_bgr`` (three values, B, G, R):
    :func:`caffe_preprocess` with other means (Detectron's ``PIXEL_MEANS``, for its released models)."""
    means = tf.constant([float(v) for v in means_bgr], tf.float32)

    def preprocess(images) -> tf.Tensor:
        images = tf.convert_to_tensor(images, tf.float32)
        return images[..., ::-1] - means

    return preprocess


def unit_preprocess(images) -> tf.Tensor:
    """(..., 3) RGB float in [0, 255] -> (..., 3) RGB in [-1, 1]."""
    images = tf.convert_to_tensor(images, tf.float32)
    return images / 127.5 - 1.0


@dataclasses.dataclass(frozen=True, eq=False)
class Backbone:
    """A trunk, its RoI head and how to feed them.

    Attributes:
      name: one of :data:`BACKBONES`.
      features: keras.Model, preprocessed images (B, H, W, 3) float32 -> (B, H', W', ``channels``) at
        stride ``stride`` (see the module docstring for H').
      roi_head: keras.Model, pooled region features (N, ``roi_size``, ``roi_size``, ``channels``) ->
        (N, ``feature_dim``) float32.
      stride: 16, pixels per feature cell (RoIAlign's ``spatial_scale`` is ``1 / stride``).
      channels: feature channels C.
      roi_size: side S of the pooled region features ``roi_head`` expects.
      feature_dim: D, the length of ``roi_head``'s output vectors.
      preprocess: images (..., 3) float32 RGB in [0, 255] -> the network's input scaling.
      named_model: the network whose layer names match legacy ``.h5`` files (the ``keras.applications``
        model for ``resnet50`` / ``vgg16``); shares its layers with ``features`` and ``roi_head``.
      weights_model: a two-input, two-output model over ``features`` and ``roi_head``: holds every
        backbone weight, what :meth:`save_weights` writes.
      roi_head_type: ``"stage5"`` or ``"fc"``.
    """

    name: str
    features: keras.Model
    roi_head: keras.Model
    stride: int
    channels: int
    roi_size: int
    feature_dim: int
    preprocess: Callable[[tf.Tensor], tf.Tensor]
    named_model: keras.Model
    weights_model: keras.Model
    roi_head_type: str

    def save_weights(self, path: str) -> None:
        """Writes every weight (trunk and RoI head) to ``path``, which must end in ``.weights.h5``."""
        if not str(path).endswith(".weights.h5"):
            raise ValueError(f"backbone weights are saved as '*.weights.h5' files; got {path!r}")
        self.weights_model.save_weights(path)

    def load_weights(self, path: str) -> None:
        """Loads ``path`` (``*.weights.h5`` by topology, legacy ``*.h5`` / ``*.hdf5`` by layer name).

        Raises:
          FileNotFoundError: ``path`` does not exist.
          ValueError: an unknown file type, or weights that do not fit this backbone (the message names
            the file and the backbone).
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"backbone weights file not found: {path!r} (backbone {self.name!r})")
        try:
            if path.endswith(".weights.h5"):
                self.weights_model.load_weights(path)
            elif path.endswith((".h5", ".hdf5")):
                # By-name loading silently skips unknown names: a file of another network would leave
                # the backbone at its initialisation, so require at least one match.
                ours = {layer.name for layer in self.named_model.layers if layer.weights}
                if not ours & _legacy_h5_layer_names(path):
                    raise ValueError(f"no layer name of the file matches the {self.name} network "
                                     f"(e.g. {sorted(ours)[:3]})")
                self.named_model.load_weights(path, by_name=True)
            else:
                raise ValueError("expected a '*.weights.h5' file written by Backbone.save_weights or a "
                                 "legacy Keras '*.h5' / '*.hdf5' weights file")
        except (ValueError, KeyError, OSError) as e:
            raise ValueError(f"cannot load backbone weights {path!r} into {self.name!r} "
                             f"(roi_head={self.roi_head_type!r}): {e}") from e


def _legacy_h5_layer_names(path: str) -> set:
    """Layer names listed by a legacy Keras HDF5 weights (or whole-model) file."""
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
        names = group.attrs.get("layer_names", [])
        return {n.decode("utf8") if isinstance(n, bytes) else str(n) for n in names}


def build_backbone(name: str,
                   weights: str = "none",
                   input_shape: Tuple[Optional[int], Optional[int], int] = (None, None, 3),
                   trainable_from: Optional[str] = DEFAULT,
                   roi_head: str = DEFAULT,
                   fc_dims: Optional[Sequence[int]] = None,
                   freeze_batch_norm: Optional[bool] = None) -> Backbone:
    """Builds a backbone (see the module docstring for each one).

    Args:
      name: ``"resnet50"``, ``"vgg16"`` or ``"tiny"``.
      weights: ``"imagenet"`` (``resnet50`` / ``vgg16`` only; downloaded by keras.applications),
        ``"none"`` (random initialisation) or the path of a weights file (module docstring).
      input_shape: (H, W, 3) of the images, None for any size.
      trainable_from: first trainable stage, None for all, ``"default"`` for the backbone's default.
      roi_head: ``"stage5"`` or ``"fc"`` for ``resnet50`` (default ``"stage5"``); ``"fc"`` otherwise.
      fc_dims: widths of the FC RoI head (default: ``resnet50`` (1024, 1024), ``tiny`` (256, 256));
        ``vgg16`` has fc6 / fc7 of 4096 fixed by its classifier.
      freeze_batch_norm: make every BN layer non-trainable (inference mode); default True for
        ``resnet50`` (pretrained), False for ``tiny`` (trained from scratch). VGG-16 has no BN.

    Returns:
      a :class:`Backbone`.

    Raises:
      ValueError: an unknown name, RoI head, stage, weights value, or a weights file that does not fit.
      FileNotFoundError: ``weights`` is a path that does not exist.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
    weights = os.fspath(weights) if weights is not None else "none"
    weights_file = None
    if weights not in ("imagenet", "none"):
        if not weights.endswith((".h5", ".hdf5")):
            raise ValueError(f"weights must be 'imagenet', 'none' or the path of a '.h5' / '.weights.h5' "
                             f"file; got {weights!r}")
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"backbone weights file not found: {weights!r} (backbone {name!r})")
        weights_file = weights
    if weights == "imagenet" and name == "tiny":
        raise ValueError("the 'tiny' backbone has no ImageNet weights; use weights='none' or a file")

    if roi_head == DEFAULT:
        roi_head = _ROI_HEADS[name][0]
    if roi_head not in _ROI_HEADS[name]:
        raise ValueError(f"backbone {name!r} has no RoI head {roi_head!r}; "
                         f"expected one of {', '.join(_ROI_HEADS[name])}")
    if fc_dims is None:
        fc_dims = _DEFAULT_FC_DIMS[name]
    fc_dims = tuple(int(d) for d in fc_dims)
    if not fc_dims or min(fc_dims) <= 0:
        raise ValueError(f"fc_dims must be positive widths; got {fc_dims}")
    if name == "vgg16" and fc_dims != _DEFAULT_FC_DIMS["vgg16"]:
        raise ValueError(f"vgg16's RoI head is its classifier's fc6 / fc7 (4096, 4096); got fc_dims={fc_dims}")
    if trainable_from == DEFAULT:
        trainable_from = _DEFAULT_TRAINABLE_FROM[name]
    if trainable_from is not None and trainable_from not in _STAGES[name]:
        raise ValueError(f"unknown stage {trainable_from!r} for backbone {name!r}; "
                         f"expected one of {', '.join(_STAGES[name])} or None")
    if freeze_batch_norm is None:
        freeze_batch_norm = name != "tiny"
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"input_shape must be (H, W, 3); got {input_shape}")

    keras_weights = "imagenet" if weights == "imagenet" else None
    if name == "resnet50":
        backbone = _resnet50(keras_weights, input_shape, roi_head, fc_dims)
    elif name == "vgg16":
        backbone = _vgg16(keras_weights, input_shape)
    else:
        backbone = _tiny(input_shape, fc_dims)

    _set_trainable(backbone, trainable_from, freeze_batch_norm)
    if weights_file is not None:
        backbone.load_weights(weights_file)
    return backbone


def _stage_of(layer_name: str) -> str:
    """The stage a layer belongs to, from its name (``conv3_block1_1_conv`` -> ``conv3``)."""
    if layer_name.startswith("pool1"):
        return "conv1"
    if layer_name.startswith(("fc", "roi_fc")):
        return "fc"
    return layer_name.split("_", 1)[0]


def _all_layers(model: keras.Model):
    """Every layer of ``model``, nested models' layers included (depth first)."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _set_trainable(backbone: Backbone, trainable_from: Optional[str], freeze_batch_norm: bool) -> None:
    stages = _STAGES[backbone.name]
    first = 0 if trainable_from is None else stages.index(trainable_from)
    for layer in _all_layers(backbone.weights_model):
        if isinstance(layer, keras.Model) or not layer.weights:
            continue
        stage = _stage_of(layer.name)
        frozen = stage in stages and stages.index(stage) < first
        if isinstance(layer, keras.layers.BatchNormalization) and freeze_batch_norm:
            frozen = True
        layer.trainable = not frozen


def joined_model(name: str, features: keras.Model, roi_head: keras.Model) -> keras.Model:
    """One two-input, two-output model over ``features`` and ``roi_head`` (:attr:`Backbone.weights_model`)."""
    image = keras.Input(features.input.shape[1:], name="image")
    pooled = keras.Input(roi_head.input.shape[1:], name="pooled_rois")
    return keras.Model([image, pooled], [features(image), roi_head(pooled)], name=f"{name}_backbone")


def _fc_head(name: str, roi_size: int, channels: int, fc_dims: Sequence[int]) -> keras.Model:
    pooled = keras.Input((roi_size, roi_size, channels), name="pooled_rois")
    x = keras.layers.Flatten(name="roi_flatten")(pooled)
    for i, width in enumerate(fc_dims):
        x = keras.layers.Dense(width, activation="relu", name=f"roi_fc{i + 1}")(x)
    return keras.Model(pooled, x, name=f"{name}_roi_head")


def _resnet50(keras_weights, input_shape, roi_head: str, fc_dims) -> Backbone:
    base = keras.applications.ResNet50(include_top=False, weights=keras_weights, input_shape=input_shape)
    conv4 = base.get_layer("conv4_block6_out").output
    features = keras.Model(base.input, conv4, name="resnet50_features")
    channels = 1024
    if roi_head == "stage5":
        # A model from an intermediate tensor reuses (shares) the conv5 layers of `base`, so ImageNet
        # weights loaded into `base` are the RoI head's weights.
        conv5 = base.get_layer("conv5_block3_out").output
        pooled = keras.layers.GlobalAveragePooling2D(name="roi_avg_pool")(conv5)
        head = keras.Model(conv4, pooled, name="resnet50_roi_head")
        roi_size, feature_dim = 14, 2048
    else:
        roi_size, feature_dim = 7, fc_dims[-1]
        head = _fc_head("resnet50", roi_size, channels, fc_dims)
    return Backbone(name="resnet50", features=features, roi_head=head, stride=STRIDE, channels=channels,
                    roi_size=roi_size, feature_dim=feature_dim, preprocess=caffe_preprocess,
                    named_model=base, weights_model=joined_model("resnet50", features, head),
                    roi_head_type=roi_head)


def _vgg16(keras_weights, input_shape) -> Backbone:
    # With the classifier (include_top) so that fc1 / fc2 exist and receive the ImageNet weights; that
    # network is fixed to 224x224, so its layers are re-applied to an input of any size.
    base = keras.applications.VGG16(include_top=True, weights=keras_weights)
    image = keras.Input(input_shape, name="image")
    x = image
    for layer in base.layers:
        if layer.name.startswith("block") and layer.name != "block5_pool":
            x = layer(x)
    features = keras.Model(image, x, name="vgg16_features")
    pooled = keras.Input((7, 7, 512), name="pooled_rois")
    # Flatten of a (7, 7, 512) channels-last map: the order fc1 was trained on after block5_pool.
    y = keras.layers.Flatten(name="roi_flatten")(pooled)
    y = base.get_layer("fc2")(base.get_layer("fc1")(y))
    head = keras.Model(pooled, y, name="vgg16_roi_head")
    return Backbone(name="vgg16", features=features, roi_head=head, stride=STRIDE, channels=512,
                    roi_size=7, feature_dim=4096, preprocess=caffe_preprocess, named_model=base,
                    weights_model=joined_model("vgg16", features, head), roi_head_type="fc")


def _tiny(input_shape, fc_dims) -> Backbone:
    image = keras.Input(input_shape, name="image")
    x = SpaceToDepth(_TINY_STEM_BLOCK, name="stem_space_to_depth")(image)
    for block, (width, stride) in enumerate(_TINY_BLOCKS, start=1):
        for conv in (1, 2):
            prefix = f"block{block}_conv{conv}"
            x = keras.layers.Conv2D(width, 3, strides=stride if conv == 1 else 1, padding="same",
                                    use_bias=False, kernel_initializer="he_normal", name=prefix)(x)
            # Synchronised: under a strategy the batch statistics are the global batch's, so training
            # does not depend on how the batch is split over replicas (plain BN with one replica).
            x = SyncBatchNormalization(name=f"{prefix}_bn")(x)
            x = keras.layers.ReLU(name=f"{prefix}_relu")(x)
    channels, roi_size = _TINY_BLOCKS[-1][0], 7
    head = _fc_head("tiny", roi_size, channels, fc_dims)
    # One flat network holds every layer under its own name (for by-name .h5 loading); the trunk and the
    # head are views of it that share its layers.
    named = keras.Model([image, head.input], [x, head.output], name="tiny")
    features = keras.Model(image, x, name="tiny_features")
    return Backbone(name="tiny", features=features, roi_head=head, stride=STRIDE, channels=channels,
                    roi_size=roi_size, feature_dim=fc_dims[-1], preprocess=unit_preprocess,
                    named_model=named, weights_model=joined_model("tiny", features, head),
                    roi_head_type="fc")
