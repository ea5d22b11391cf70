"""Batch normalisation folded into the convolution before it, for inference.

In inference mode a batch-normalisation layer is an affine map per channel,
``y = (x - mean) * gamma / sqrt(var + eps) + beta``; after a convolution ``x = conv(z, W) + b`` (channels
last, the output channel on ``W``'s last axis) the two are one convolution::

    s  = gamma / sqrt(var + eps)           (C_out,)
    W' = W * s                             (kh, kw, C_in, C_out), s broadcast on the last axis
    b' = (b - mean) * s + beta             (C_out,), b = 0 for a convolution without bias

The folded network computes the same function (float32 round-off) with one op per conv instead of
conv + normalisation, and TensorFlow fuses the conv with its bias and ReLU. Under ``mixed_bfloat16`` the
gain is larger: Keras' batch normalisation casts its bfloat16 input to float32 and back, three passes
over every activation (ResNet-50's stage-5 RoI head on 300 regions: 0.71-0.85 s -> 0.56-0.60 s,
measured; BUILD_NOTES "Serving speed").

Only inference may use a folded network: its batch normalisation is gone, so training it would not
normalise, and its weights no longer fit a training checkpoint.
"""

from __future__ import annotations

import dataclasses
from typing import Dict

import keras
import numpy as np

from lcr_tf.modeling.backbones import Backbone, joined_model


@keras.saving.register_keras_serializable(package="lcr_tf")
class FoldedBatchNorm(keras.layers.Layer):
    """Where a batch-normalisation layer was: passes its input through (the conv before it holds the
    normalisation). Takes the arguments a batch-normalisation call gets (``training``, ``mask``)."""

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def foldable_pairs(model: keras.Model) -> Dict[str, keras.layers.BatchNormalization]:
    """Conv name -> the batch-normalisation layer it feeds, for every pair of ``model`` that folds: in
    ``model``'s own graph, a ``Conv2D`` (channels last, no activation) whose output goes only to one channels-last batch
    normalisation, each of the two called once there.

    Reads the graph of the functional model (Keras' node records: the layers a view such as the
    ResNet-50 RoI head shares with the network it was cut from have a node per graph)."""
    nodes = [node for depth in model._nodes_by_depth.values() for node in depth]
    calls: Dict[int, int] = {}
    consumers: Dict[int, int] = {}
    for node in nodes:
        if node.operation is not None:
            calls[id(node.operation)] = calls.get(id(node.operation), 0) + 1
        for tensor in node.input_tensors:
            consumers[id(tensor)] = consumers.get(id(tensor), 0) + 1
    pairs = {}
    for node in nodes:
        bn = node.operation
        if not isinstance(bn, keras.layers.BatchNormalization) or calls[id(bn)] != 1:
            continue
        if len(node.input_tensors) != 1:
            continue
        tensor = node.input_tensors[0]
        if bn.axis not in (-1, len(tensor.shape) - 1):
            continue
        conv = tensor._keras_history.operation
        # A conv with its own activation normalises after the non-linearity: nothing to fold.
        if (type(conv) is keras.layers.Conv2D and conv.data_format == "channels_last"
                and conv.get_config()["activation"] == "linear"
                and calls.get(id(conv)) == 1 and consumers[id(tensor)] == 1):
            pairs[conv.name] = bn
    return pairs


def folded_conv_weights(kernel, bias, gamma, beta, mean, variance, epsilon):
    """(W', b') of the module docstring, computed in float64 and returned in ``kernel``'s dtype.

    Args:
      kernel: (kh, kw, C_in, C_out); bias: (C_out,) or None; gamma, beta, mean, variance: (C_out,) or None
        for an absent scale (1) / centre (0).
    """
    dtype = np.asarray(kernel).dtype
    kernel = np.asarray(kernel, np.float64)
    out = kernel.shape[-1]
    bias = np.zeros(out) if bias is None else np.asarray(bias, np.float64)
    gamma = np.ones(out) if gamma is None else np.asarray(gamma, np.float64)
    beta = np.zeros(out) if beta is None else np.asarray(beta, np.float64)
    scale = gamma / np.sqrt(np.asarray(variance, np.float64) + epsilon)
    return (kernel * scale).astype(dtype), ((bias - np.asarray(mean, np.float64)) * scale + beta).astype(dtype)


def _bn_weights(bn: keras.layers.BatchNormalization):
    gamma = bn.gamma.numpy() if bn.scale else None
    beta = bn.beta.numpy() if bn.center else None
    return gamma, beta, bn.moving_mean.numpy(), bn.moving_variance.numpy()


def fold_batch_norm(model: keras.Model) -> keras.Model:
    """A copy of the functional ``model`` with every pair of :func:`foldable_pairs` folded; the other
    layers are copies with the same weights, names and dtype policies. ``model`` is unchanged.

    Returns ``model`` itself when it has nothing to fold (VGG-16, an FC head).
    """
    pairs = foldable_pairs(model)
    if not pairs:
        return model
    folded_bn = {bn.name for bn in pairs.values()}

    def clone(layer):
        config = layer.get_config()
        if layer.name in pairs:
            config["use_bias"] = True
        elif layer.name in folded_bn:
            return FoldedBatchNorm(name=layer.name, dtype=layer.dtype_policy)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in copy.layers:
        if not layer.weights:
            continue  # inputs (a head's input is named after the tensor it was cut at), activations
        source = model.get_layer(layer.name)
        if layer.name in pairs:
            conv = source
            bias = conv.bias.numpy() if conv.use_bias else None
            bn = pairs[layer.name]
            layer.set_weights(list(folded_conv_weights(conv.kernel.numpy(), bias, *_bn_weights(bn),
                                                       bn.epsilon)))
        else:
            layer.set_weights(source.get_weights())
    return copy


def fold_backbone(backbone: Backbone) -> Backbone:
    """The backbone with its trunk and RoI head folded (:func:`fold_batch_norm`), for inference.

    The copy's ``named_model`` is its ``weights_model``: the legacy by-name loading of ImageNet files
    belongs to training, which a folded backbone is not for."""
    features = fold_batch_norm(backbone.features)
    roi_head = fold_batch_norm(backbone.roi_head)
    if features is backbone.features and roi_head is backbone.roi_head:
        return backbone
    both = joined_model(backbone.name, features, roi_head)
    return dataclasses.replace(backbone, features=features, roi_head=roi_head, named_model=both,
                               weights_model=both)
