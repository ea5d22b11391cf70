"""A released LCR-Net++ model as this package's :class:`lcr_tf.modeling.lcr_model.LCRNet`.

The release's network is a configuration of the existing model (:func:`release_model_config`):

==========================================  =====================================================
release (Detectron.pytorch)                 :class:`lcr_tf.modeling.factory.ModelConfig`
==========================================  =====================================================
ResNet-50 conv4 body, stride on the 1x1     ``backbone="resnet50"`` (Keras' ResNet-50 v1 has its
conv, AffineChannel, convs without bias     stride on the 1x1 conv too); AffineChannel ``x s + b``
                                            is its frozen batch normalisation with mean 0 and
                                            variance ``1 - epsilon`` (so ``rsqrt(var + eps)`` is 1),
                                            ``gamma = s``, ``beta = b``; the convs' biases are 0
RPN: 3x3 conv of 1024, 15 sigmoid anchors   ``rpn_channels=1024``, ``rpn_scales`` = ``RPN.SIZES``,
(sizes x ratios, ratio-major, +1 widths)    ``rpn_aspect_ratios``, ``rpn_convention="detectron"``
Detectron's test proposals                  ``rpn_pre/post_nms_top_n_test`` = ``cfg.TEST``'s,
                                            ``rpn_nms_iou``, ``rpn_convention="detectron"``
RoIAlign 14x14, no half-pixel offset,       ``roi_align="legacy"``, ``roi_sampling_ratio=0``,
adaptive sampling, average                  ``roi_pooling="avg"``
res5 (stride 2) + 7x7 average pool          ``roi_head="stage5"`` (conv5 + global average pool)
``cls_score`` 2K+1 softmax                  the LCR head's classifier
``pose_pred / 5``, per class                the LCR head's regressor, ``regression_std_2d`` =
``x(J) y(J) X(J) Y(J) Z(J)``                ``regression_std_3d`` = 0.2 (its outputs times 0.2),
                                            rows permuted to the package's per-joint layout and
                                            X, Y negated (camera axes)
BGR minus PIXEL_MEANS, short side           ``pixel_means_bgr``, ``input_resize="short_side"``,
``TEST.SCALE`` capped by ``TEST.MAX_SIZE``,  ``test_scale``, ``test_max_size``,
``cv2.resize(fx=s, fy=s)``, OpenCV's JPEG   ``jpeg_dct_method="INTEGER_ACCURATE"``
==========================================  =====================================================

Decoding is the same in both: 2D pixels = box corner + (anchor + delta) * (x2 - x1, y2 - y1), 3D = anchor +
delta. :func:`load_release` returns the Keras model, its config, its anchor-poses and its PPI settings;
:func:`write_model_dir` saves it as a model directory, which :mod:`lcr_tf.export` and
``lcr_tf.train --init_from`` read like a trained run's (:mod:`lcr_tf.predict` and :mod:`lcr_tf.evaluate` then
take the export).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.modeling import factory
from lcr_tf.postprocess import params as params_lib
from lcr_tf.release import checkpoint as checkpoint_lib

#: The release's ``pose_pred`` is divided by 5 (``lcrnet_model.py``); the head multiplies by its std.
POSE_PRED_SCALE = 0.2
#: Keras' ResNet-50 batch normalisation epsilon: the variance that makes it an AffineChannel is 1 - eps.
_KERAS_RESNET_BN_EPSILON = 1.001e-5


@dataclasses.dataclass
class ReleaseModel:
    """A converted release model.

    Attributes:
      model: the :class:`lcr_tf.modeling.lcr_model.LCRNet` with the release's weights.
      config: its :class:`lcr_tf.modeling.factory.ModelConfig`.
      anchors: the :class:`AnchorPoses` it was built with (this package's layout and axes).
      ppi_params: the release's PPI as :class:`lcr_tf.postprocess.PPIParams` (mode ``"official"``).
      checkpoint: the :class:`lcr_tf.release.checkpoint.ReleaseCheckpoint` read.
    """

    model: Any
    config: factory.ModelConfig
    anchors: Any
    ppi_params: params_lib.PPIParams
    checkpoint: checkpoint_lib.ReleaseCheckpoint

    def info(self) -> Dict[str, Any]:
        """What an export records of its source: file, SHA-256, model name, licence terms."""
        ck = self.checkpoint
        return {"source_file": os.path.basename(ck.source), "source_sha256": ck.sha256, "model_name": ck.name,
                "licence": checkpoint_lib.LICENCE, "release_ppi_params": _plain(ck.ppi_params)}


@dataclasses.dataclass(frozen=True)
class AnchorPoses:
    """The part of :class:`lcr_tf.poses.anchors.AnchorSet` that :func:`lcr_tf.modeling.factory.build_model`
    reads: ``pose2d`` (2K, J, 2) box-normalised, ``pose3d`` (2K, J, 3) metres, camera axes, body-centred."""

    pose2d: np.ndarray
    pose3d: np.ndarray
    skeleton: skeleton_lib.Skeleton

    @property
    def num_anchors(self) -> int:
        return self.pose2d.shape[0] // 2


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def release_model_config(ck: checkpoint_lib.ReleaseCheckpoint, **overrides) -> factory.ModelConfig:
    """The :class:`ModelConfig` of the release's network (module docstring's table), ``overrides`` on top.

    ``image_size`` (the training square) is the test scale rounded up to a multiple of 16.
    """
    s = ck.settings
    scale, max_size = int(s["TEST.SCALE"]), int(s["TEST.MAX_SIZE"])
    values = dict(
        backbone="resnet50", backbone_weights="none", roi_head="stage5", trainable_from="conv3",
        num_anchors=ck.num_anchors, num_joints=ck.num_joints, image_size=max(32, -(-scale // 16) * 16),
        rpn_scales=tuple(float(v) for v in s["RPN.SIZES"]),
        rpn_aspect_ratios=tuple(float(v) for v in s["RPN.ASPECT_RATIOS"]), rpn_channels=ck.rpn_channels,
        rpn_pre_nms_top_n_test=int(s["TEST.RPN_PRE_NMS_TOP_N"]),
        rpn_post_nms_top_n_test=int(s["TEST.RPN_POST_NMS_TOP_N"]), rpn_nms_iou=float(s["TEST.RPN_NMS_THRESH"]),
        rpn_min_size=0.0, roi_pooling="avg", roi_sampling_ratio=int(s["FAST_RCNN.ROI_XFORM_SAMPLING_RATIO"]),
        regression_std_2d=POSE_PRED_SCALE, regression_std_3d=POSE_PRED_SCALE,
        input_resize="short_side", test_scale=scale, test_max_size=max_size,
        pixel_means_bgr=tuple(float(v) for v in s["PIXEL_MEANS"]), jpeg_dct_method="INTEGER_ACCURATE",
        rpn_convention="detectron", roi_align="legacy")
    values.update(overrides)
    return factory.ModelConfig(**values)


def release_ppi_params(ck: checkpoint_lib.ReleaseCheckpoint, config: factory.ModelConfig) -> params_lib.PPIParams:
    """The release's PPI with the file's ``ppi_params`` (:meth:`PPIParams.from_release`), resolved for the
    ``"official"`` mode, able to take every (RoI, class) pair of the model as a candidate."""
    params = params_lib.PPIParams.from_release(ck.ppi_params, 2 * ck.num_anchors, ck.num_joints,
                                               num_rois=config.rpn_post_nms_top_n_test)
    return params.resolve("official", 2 * ck.num_anchors)


# --------------------------------------------------------------------------------------------------
# Weights: one table from the release's names to the model's layers
# --------------------------------------------------------------------------------------------------

def _conv_kernel(w: np.ndarray) -> np.ndarray:
    """torch (out, in, kh, kw) -> Keras (kh, kw, in, out)."""
    return np.transpose(w, (2, 3, 1, 0))


def _pose_rows(num_classes: int, num_joints: int) -> tuple:
    """The release's ``pose_pred`` rows in this package's order, and the sign of each.

    Release block: ``x(J), y(J), X(J), Y(J), Z(J)``; package block: ``x0 y0 .. x(J-1) y(J-1)`` then
    ``X0 Y0 Z0 ..`` in camera axes (x, y, z = -X, -Y, Z). Returns (C 5J,) int source rows and (C 5J,) signs.
    """
    j = num_joints
    joints = np.arange(j)
    within = np.concatenate([np.stack([joints, j + joints], 1).reshape(-1),  # x0 y0 x1 y1 ...
                             np.stack([2 * j + joints, 3 * j + joints, 4 * j + joints], 1).reshape(-1)])
    sign = np.concatenate([np.ones(2 * j), np.tile([-1.0, -1.0, 1.0], j)])
    rows = (np.arange(num_classes)[:, None] * 5 * j + within[None]).reshape(-1)
    return rows, np.tile(sign, num_classes).astype(np.float32)


def _keras_resnet_layers() -> Dict[str, str]:
    """Release parameter prefix -> Keras ResNet-50 layer name, for every conv and AffineChannel."""
    table = {"Conv_Body.res1.conv1": "conv1_conv", "Conv_Body.res1.bn1": "conv1_bn"}
    for stage, blocks in checkpoint_lib.RESNET50_BLOCKS.items():
        prefix = "Box_Head.res5" if stage == 5 else f"Conv_Body.res{stage}"
        for b in range(blocks):
            keras_block = f"conv{stage}_block{b + 1}"
            for i in (1, 2, 3):
                table[f"{prefix}.{b}.conv{i}"] = f"{keras_block}_{i}_conv"
                table[f"{prefix}.{b}.bn{i}"] = f"{keras_block}_{i}_bn"
            if b == 0:
                table[f"{prefix}.{b}.downsample.0"] = f"{keras_block}_0_conv"
                table[f"{prefix}.{b}.downsample.1"] = f"{keras_block}_0_bn"
    return table


def assign_weights(model, backbone, ck: checkpoint_lib.ReleaseCheckpoint) -> None:
    """Sets every weight of the built ``model`` (and its ``backbone``) from the release's state dict.

    Raises ValueError when a layer's weights do not take the release's (the message names both)."""
    w = ck.weights

    def put(variable, value, name):
        value = np.asarray(value, np.float32)
        if tuple(variable.shape) != value.shape:
            raise ValueError(f"{ck.source}: {name} {value.shape} does not fit {variable.path} {tuple(variable.shape)}")
        variable.assign(value)

    for source, layer_name in _keras_resnet_layers().items():
        layer = backbone.named_model.get_layer(layer_name)
        if layer_name.endswith("_conv"):
            put(layer.kernel, _conv_kernel(w[source + ".weight"]), source + ".weight")
            put(layer.bias, np.zeros(layer.bias.shape, np.float32), source + " (no bias)")
        else:  # AffineChannel x * weight + bias as a frozen batch normalisation
            put(layer.gamma, w[source + ".weight"], source + ".weight")
            put(layer.beta, w[source + ".bias"], source + ".bias")
            put(layer.moving_mean, np.zeros(layer.moving_mean.shape, np.float32), source + " (mean 0)")
            put(layer.moving_variance, np.full(layer.moving_variance.shape, 1.0 - layer.epsilon, np.float32),
                source + " (variance 1 - eps)")
    rpn = model.rpn_head
    for source, layer in (("RPN.RPN_conv", rpn.conv), ("RPN.RPN_cls_score", rpn.objectness),
                          ("RPN.RPN_bbox_pred", rpn.box_deltas)):
        put(layer.kernel, _conv_kernel(w[source + ".weight"]), source + ".weight")
        put(layer.bias, w[source + ".bias"], source + ".bias")
    head = model.lcr_head
    put(head.classifier.kernel, w["Pose_Outs.cls_score.weight"].T, "Pose_Outs.cls_score.weight")
    put(head.classifier.bias, w["Pose_Outs.cls_score.bias"], "Pose_Outs.cls_score.bias")
    rows, sign = _pose_rows(model.num_classes, model.num_joints)
    put(head.regressor.kernel, (w["Pose_Outs.pose_pred.weight"][rows] * sign[:, None]).T,
        "Pose_Outs.pose_pred.weight")
    put(head.regressor.bias, w["Pose_Outs.pose_pred.bias"][rows] * sign, "Pose_Outs.pose_pred.bias")


def build_release_model(ck: checkpoint_lib.ReleaseCheckpoint, config: Optional[factory.ModelConfig] = None,
                        model_class=None):
    """The model of ``ck`` (``config``: :func:`release_model_config` by default) with its weights.

    ``model_class`` as :func:`lcr_tf.modeling.factory.build_model` (the training layer passes its subclass).
    """
    config = release_model_config(ck) if config is None else config
    pose2d, pose3d = ck.anchors()
    anchors = AnchorPoses(pose2d, pose3d, skeleton_lib.get_skeleton(ck.skeleton))
    backbone = factory.build_backbone(config)
    model = factory.build_model(config, anchors, backbone, model_class=model_class)
    model(tf.zeros([1, 64, 64, 3]))
    if any(layer.name == "conv1_bn" and abs(layer.epsilon - _KERAS_RESNET_BN_EPSILON) > 1e-12
           for layer in backbone.named_model.layers):
        raise ValueError("Keras' ResNet-50 changed its batch normalisation epsilon; the AffineChannel mapping "
                         "needs it (lcr_tf.release.convert)")
    assign_weights(model, backbone, ck)
    return model, config, anchors


def load_release(path: str, **config_overrides) -> ReleaseModel:
    """Reads, checks and converts a release file (:func:`lcr_tf.release.checkpoint.read_release`)."""
    ck = checkpoint_lib.read_release(path)
    config = release_model_config(ck, **config_overrides)
    model, config, anchors = build_release_model(ck, config)
    return ReleaseModel(model=model, config=config, anchors=anchors, ppi_params=release_ppi_params(ck, config),
                        checkpoint=ck)


def write_model_dir(release: ReleaseModel, model_dir: str) -> str:
    """Saves a converted model as a model directory (``config.json`` + ``final.weights.h5``, with the
    source, its SHA-256 and the licence terms recorded in ``config.json``'s flags); returns ``model_dir``."""
    from lcr_tf.serving import inference

    inference.save_model_dir(release.model, model_dir, skeleton=release.checkpoint.skeleton,
                             flags={"converted_from": release.info()})
    return model_dir


def is_release_file(path: str) -> bool:
    """Whether ``path`` names a release model file (by its extension): ``--init_from`` takes either one or a
    model directory."""
    return os.path.isfile(path) and path.endswith(".pkl")

