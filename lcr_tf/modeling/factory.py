"""The model's settings and its builder: :class:`ModelConfig` and :func:`build_model`.

A :class:`ModelConfig` holds every choice that shapes the network or its training targets (paper Sec 3
and 3.5, Faster R-CNN defaults where the paper follows them). It is a frozen dataclass so that a config
can be written to and read from JSON (:meth:`ModelConfig.to_dict`, :meth:`ModelConfig.from_dict`) and
compared; :func:`build_model` turns it and an anchor-pose set into an :class:`lcr_tf.modeling.lcr_model.LCRNet`.

Units: image sizes, RPN anchor scales and minimum proposal size in pixels; aspect ratios are height /
width; IoU thresholds and fractions in [0, 1].
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

from lcr_tf.modeling import backbones as backbones_lib
from lcr_tf.ops import anchor_boxes, pose_coding
from lcr_tf.ops import proposals as proposals_lib
from lcr_tf.ops import roi_align as roi_align_lib

INPUT_RESIZES = ("letterbox", "short_side")
JPEG_DCT_METHODS = ("", "INTEGER_FAST", "INTEGER_ACCURATE")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture and target-assignment settings of LCR-Net.

    Attributes:
      backbone: ``"resnet50"``, ``"vgg16"`` or ``"tiny"`` (:mod:`lcr_tf.modeling.backbones`).
      backbone_weights: ``"imagenet"``, ``"none"`` or the path of a weights file.
      roi_head: the backbone's RoI head (``"default"``, ``"stage5"`` or ``"fc"``).
      trainable_from: first trainable backbone stage; ``"default"`` for the backbone's default, ``"all"``
        for every stage.
      fc_dims: widths of the FC RoI head; empty for the backbone's default.
      num_anchors: K, full-body anchor-poses (the classifier has 2K + 1 classes).
      num_joints: J, joints per pose (the anchor set's skeleton).
      image_size: S, side of the square training / inference images in pixels (a multiple of 16).
      rpn_scales: RPN anchor sides in pixels (:func:`lcr_tf.ops.anchor_boxes.generate_anchors`).
      rpn_aspect_ratios: RPN anchor height / width ratios.
      rpn_channels: width of the RPN's 3x3 conv.
      rpn_pre_nms_top_n_train, rpn_post_nms_top_n_train: proposals kept before / after NMS per image in
        training (Faster R-CNN: 12000 / 2000).
      rpn_pre_nms_top_n_test, rpn_post_nms_top_n_test: the same at test time (6000 / 300).
      rpn_nms_iou: NMS threshold of the proposals (0.7).
      rpn_min_size: smallest proposal side in pixels.
      rpn_batch_size_per_image: anchors sampled per image for the RPN loss (256).
      rpn_positive_fraction: most positives among them (0.5).
      rpn_pos_iou, rpn_neg_iou: RPN anchor IoU thresholds (0.7, 0.3).
      rois_per_image: RoIs sampled per image for the pose branches (paper: 512 with ResNet-50, 32 per
        image with VGG-16).
      roi_positive_fraction: most positive RoIs (paper: 25%).
      fg_iou: IoU with a ground-truth box at which a RoI is positive (paper: 0.5).
      ignore_ioa: an anchor or RoI that is not positive and lies more than this fraction of its area
        inside an ignore region (crowds, people without a pose target) is neither an RPN negative nor a
        background RoI (:mod:`lcr_tf.ops.targets`); 1 turns ignore regions off.
      roi_pooling: ``"max"`` (paper) or ``"avg"`` RoIAlign pooling; ``roi_sampling_ratio`` samples per cell
        side.
      refinement: add the iterative refinement stage (Sec 3.4).
      regression_std_2d, regression_std_3d: scales of the pose regression (box units, metres): the heads
        regress deltas divided by them and the loss compares them so (:func:`lcr_tf.ops.pose_coding.block_scale`).
      refinement_hidden, refinement_fc: its widths (:class:`lcr_tf.layers.refinement.RefinementStage`).
      joint_heatmap_weight: weight of the trunk's auxiliary joint-heatmap loss (not in the paper; 0 turns
        it off, the paper's network): a 1x1 convolution on the trunk predicts a heatmap per joint, in
        training only (:mod:`lcr_tf.ops.joint_heatmaps`). It speeds up a trunk trained from random weights.
      joint_heatmap_sigma: the Gaussian's standard deviation of its targets, in feature cells.
      nms_method: ``"combined"`` (a CPU kernel) or ``"padded"`` (TF ops, accelerators / XLA).
      weight_decay: L2 factor on every trainable kernel: the loss gets ``weight_decay * sum(w^2) / 2``
        (a gradient of ``weight_decay * w``, the SGD weight decay of Caffe). Default 1e-4, the trainer's
        (``--weight_decay``; the field's default was 0 before the trainer's flags took their defaults from
        these fields).
      seed: base seed of the RPN / RoI sampling (combined with the step number); None draws from
        TensorFlow's global generator.

    Input and detector conventions (today's defaults; the authors' released models use the second value
    of each, :func:`lcr_tf.release.convert.release_model_config`):

      input_resize: how inference brings an image to the network: ``"letterbox"`` (resized so that its long
        side is ``image_size``, on a black ``image_size`` square; a batch runs at once) or ``"short_side"``
        (Detectron's rule: scale ``test_scale / short side``, lowered so that the long side rounds to at most
        ``test_max_size``; resized as OpenCV's ``cv2.resize(fx=s, fy=s)`` bilinear does, at its own size with
        no padding, one image at a time). Training always uses ``image_size`` squares.
      test_scale, test_max_size: the target short side and the cap on the long side of ``"short_side"``, in
        pixels (0: ``image_size`` and no cap).
      pixel_means_bgr: with three values, the network's input is BGR minus these means (Detectron's
        ``PIXEL_MEANS``) instead of the backbone's own preprocessing; empty: the backbone's.
      jpeg_dct_method: the JPEG decoder's inverse DCT at inference (``tf.io.decode_jpeg``'s ``dct_method``):
        ``""`` (TensorFlow's default) or ``"INTEGER_ACCURATE"`` (libjpeg's accurate integer DCT, what OpenCV
        decodes with: needed to see the pixels the released models saw).
      rpn_convention: ``"centred"`` (continuous box coordinates, anchors centred on the cells, scale-major)
        or ``"detectron"`` (Detectron's anchors, ratio-major, +1 widths, its box decoding, clipping, size and
        centre filters and NMS: :mod:`lcr_tf.ops.anchor_boxes`, :mod:`lcr_tf.ops.proposals`).
      roi_align: ``"aligned"`` (half-pixel RoIAlign, :func:`lcr_tf.ops.roi_align.roi_align`) or ``"legacy"``
        (Detectron's, :func:`lcr_tf.ops.roi_align.roi_align_legacy`, average pooling; ``roi_sampling_ratio``
        0 samples ``ceil(bin size)`` points per bin side).
    """

    backbone: str = "tiny"
    backbone_weights: str = "none"
    roi_head: str = "default"
    trainable_from: str = "default"
    fc_dims: Tuple[int, ...] = ()
    num_anchors: int = 20
    num_joints: int = 13
    image_size: int = 256
    rpn_scales: Tuple[float, ...] = (32.0, 64.0, 128.0, 256.0)
    rpn_aspect_ratios: Tuple[float, ...] = (1.0, 2.0)
    rpn_channels: int = 256
    rpn_pre_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_train: int = 256
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_test: int = 100
    rpn_nms_iou: float = 0.7
    rpn_min_size: float = 0.0
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_pos_iou: float = 0.7
    rpn_neg_iou: float = 0.3
    rois_per_image: int = 64
    roi_positive_fraction: float = 0.25
    fg_iou: float = 0.5
    ignore_ioa: float = 0.5
    roi_pooling: str = "max"
    roi_sampling_ratio: int = 2
    regression_std_2d: float = pose_coding.DEFAULT_STD_2D
    regression_std_3d: float = pose_coding.DEFAULT_STD_3D
    refinement: bool = False
    refinement_hidden: int = 2048
    refinement_fc: Tuple[int, ...] = (2048, 2048)
    joint_heatmap_weight: float = 0.0
    joint_heatmap_sigma: float = 1.0
    nms_method: str = "combined"
    weight_decay: float = 1e-4
    seed: Optional[int] = None
    input_resize: str = "letterbox"
    test_scale: int = 0
    test_max_size: int = 0
    pixel_means_bgr: Tuple[float, ...] = ()
    jpeg_dct_method: str = ""
    rpn_convention: str = "centred"
    roi_align: str = "aligned"

    def __post_init__(self):
        def fail(field, why):
            raise ValueError(f"ModelConfig.{field} {why}, got {getattr(self, field)!r}")

        for field in ("fc_dims", "refinement_fc"):
            object.__setattr__(self, field, tuple(int(v) for v in getattr(self, field)))
        for field in ("rpn_scales", "rpn_aspect_ratios", "pixel_means_bgr"):
            object.__setattr__(self, field, tuple(float(v) for v in getattr(self, field)))
        if self.backbone not in backbones_lib.BACKBONES:
            fail("backbone", f"must be one of {', '.join(backbones_lib.BACKBONES)}")
        for field in ("num_anchors", "num_joints", "rpn_channels", "rpn_pre_nms_top_n_train",
                      "rpn_post_nms_top_n_train", "rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_test",
                      "rpn_batch_size_per_image", "rois_per_image", "refinement_hidden"):
            if int(getattr(self, field)) < 1:
                fail(field, "must be >= 1")
        if self.image_size < 32 or self.image_size % backbones_lib.STRIDE:
            fail("image_size", f"must be a multiple of {backbones_lib.STRIDE}, at least 32")
        if not self.rpn_scales or min(self.rpn_scales) <= 0:
            fail("rpn_scales", "must be positive anchor sides in pixels")
        if not self.rpn_aspect_ratios or min(self.rpn_aspect_ratios) <= 0:
            fail("rpn_aspect_ratios", "must be positive height / width ratios")
        if any(v <= 0 for v in self.fc_dims + self.refinement_fc) or not self.refinement_fc:
            fail("fc_dims" if any(v <= 0 for v in self.fc_dims) else "refinement_fc", "must be positive widths")
        for field in ("rpn_nms_iou", "rpn_positive_fraction", "rpn_pos_iou", "rpn_neg_iou",
                      "roi_positive_fraction", "fg_iou", "ignore_ioa"):
            if not 0.0 <= float(getattr(self, field)) <= 1.0:
                fail(field, "must be in [0, 1]")
        if self.rpn_neg_iou > self.rpn_pos_iou:
            fail("rpn_neg_iou", f"must not exceed rpn_pos_iou={self.rpn_pos_iou}")
        if self.roi_pooling not in roi_align_lib.POOLINGS:
            fail("roi_pooling", f"must be one of {roi_align_lib.POOLINGS}")
        if self.nms_method not in proposals_lib.NMS_METHODS:
            fail("nms_method", f"must be one of {proposals_lib.NMS_METHODS}")
        if self.weight_decay < 0:
            fail("weight_decay", "must be >= 0")
        if self.joint_heatmap_weight < 0:
            fail("joint_heatmap_weight", "must be >= 0")
        if not self.joint_heatmap_sigma > 0:
            fail("joint_heatmap_sigma", "must be > 0")
        for field in ("regression_std_2d", "regression_std_3d"):
            if not float(getattr(self, field)) > 0:
                fail(field, "must be > 0")
        if self.rpn_min_size < 0:
            fail("rpn_min_size", "must be >= 0")
        if self.roi_align not in roi_align_lib.VARIANTS:
            fail("roi_align", f"must be one of {roi_align_lib.VARIANTS}")
        if self.roi_sampling_ratio < (0 if self.roi_align == "legacy" else 1):
            fail("roi_sampling_ratio", "must be >= 1 (0, adaptive, only with roi_align='legacy')")
        if self.rpn_convention not in anchor_boxes.CONVENTIONS:
            fail("rpn_convention", f"must be one of {anchor_boxes.CONVENTIONS}")
        if self.input_resize not in INPUT_RESIZES:
            fail("input_resize", f"must be one of {INPUT_RESIZES}")
        for field in ("test_scale", "test_max_size"):
            if int(getattr(self, field)) < 0:
                fail(field, "must be >= 0 (0: image_size, no cap)")
        if len(self.pixel_means_bgr) not in (0, 3):
            fail("pixel_means_bgr", "must be empty or three values (B, G, R)")
        if self.jpeg_dct_method not in JPEG_DCT_METHODS:
            fail("jpeg_dct_method", f"must be one of {JPEG_DCT_METHODS}")

    @property
    def num_classes(self) -> int:
        """2K + 1: background, K full-body and K upper-body anchor-pose classes."""
        return 2 * self.num_anchors + 1

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown}; known: {sorted(names)}")
        return cls(**dict(values))

    @property
    def short_side(self) -> int:
        """The target short side of ``input_resize="short_side"`` in pixels."""
        return int(self.test_scale or self.image_size)


def build_backbone(config: ModelConfig) -> backbones_lib.Backbone:
    """The :class:`lcr_tf.modeling.backbones.Backbone` that ``config`` names (square ``image_size`` input)."""
    trainable_from = None if config.trainable_from == "all" else config.trainable_from
    return backbones_lib.build_backbone(
        config.backbone, weights=config.backbone_weights,
        input_shape=(None, None, 3),
        trainable_from=trainable_from, roi_head=config.roi_head,
        fc_dims=config.fc_dims or None)


def build_model(config: ModelConfig, anchor_set, backbone: Optional[backbones_lib.Backbone] = None,
                model_class=None):
    """Builds an (unbuilt-weights) :class:`lcr_tf.modeling.lcr_model.LCRNet`.

    Args:
      config: the :class:`ModelConfig`.
      anchor_set: an :class:`lcr_tf.poses.anchors.AnchorSet` with ``config.num_anchors`` anchors of
        ``config.num_joints`` joints (``pose2d`` (2K, J, 2) box-normalised, ``pose3d`` (2K, J, 3) metres).
      backbone: the backbone to wire in (e.g. a folded one for inference); None: :func:`build_backbone`.
      model_class: :class:`lcr_tf.modeling.lcr_model.LCRNet` (None) or a subclass of it with the same
        arguments (the training layer's :class:`lcr_tf.training.step.TrainableLCRNet`).
    Returns:
      The model; call it once (e.g. on zeros of shape (1, S, S, 3)) to create its weights.
    Raises:
      ValueError: the anchor set does not match ``config`` (the message gives both sizes).
    """
    from lcr_tf.modeling import lcr_model

    k, j = anchor_set.num_anchors, anchor_set.pose3d.shape[1]
    if k != config.num_anchors or j != config.num_joints:
        raise ValueError(f"the anchor set has K={k} anchors of J={j} joints but the model config asks for "
                         f"num_anchors={config.num_anchors}, num_joints={config.num_joints}")
    backbone = build_backbone(config) if backbone is None else backbone
    model_class = lcr_model.LCRNet if model_class is None else model_class
    return model_class(config, anchor_set.pose2d, anchor_set.pose3d, backbone, skeleton=anchor_set.skeleton.name)
