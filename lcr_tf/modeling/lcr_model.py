"""LCR-Net as a ``keras.Model``: the wiring of the backbone, RPN, RoIAlign and pose heads (paper Fig 2, 4).

::

    images (B, S, S, 3) float32 RGB in [0, 255]
      -> backbone trunk                        features (B, S/16, S/16, C)
      -> RPN head (Sec 3.1)                    objectness (B, N_a), box deltas (B, N_a, 4)
      -> proposals (decode, clip, NMS)         boxes (B, R, 4) xyxy pixels, valid (B, R)
         [training: + ground-truth boxes, RoI sampling and targets (lcr_tf.ops.targets)]
      -> RoIAlign (Sec 3.5) -> backbone RoI head   region vectors (B * R, D)
      -> LCRHead (Sec 3.2-3.3)                 class logits (B, R, 2K + 1), regression (B, R, (2K + 1) 5J)
      -> [RefinementStage (Sec 3.4)]           a second estimate of both; the last one is the output

This module only wires layers and ops together: the maths lives in :mod:`lcr_tf.ops`, :mod:`lcr_tf.layers`
and :mod:`lcr_tf.modeling.backbones`. Inference (:meth:`LCRNet.call`) returns the proposals and the raw
class probabilities and regression; decoding poses and PPI belong to post-processing. Training (targets,
losses, the gradient step and its trackers) is a subclass of the training layer,
:class:`lcr_tf.training.step.TrainableLCRNet`, which reads the same weights: a model trained there
loads here.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Tuple

import keras
import numpy as np
import tensorflow as tf

from lcr_tf.contracts import batch_keys
from lcr_tf.layers import JointHeatmapHead, LCRHead, RefinementStage, RoIAligner, RPNHead
from lcr_tf.modeling import backbones
from lcr_tf.ops import anchor_boxes
from lcr_tf.ops import proposals as proposals_lib

# Output keys of LCRNet.call.
BOXES = "boxes"
VALID = "valid"
RPN_SCORES = "rpn_scores"
CLASS_PROBS = "class_probs"
REGRESSION = "regression"
HEAD_INPUTS = "head_inputs"  # roi_features only


class LCRNet(keras.Model):
    """The LCR-Net++ network (module docstring).

    Args:
      config: :class:`lcr_tf.modeling.factory.ModelConfig`.
      anchors2d: (2K, J, 2) box-normalised anchor-poses (:class:`lcr_tf.poses.anchors.AnchorSet` ``pose2d``).
      anchors3d: (2K, J, 3) metres, body-centred (``AnchorSet.pose3d``).
      backbone: :class:`lcr_tf.modeling.backbones.Backbone` (trunk, RoI head, preprocessing).
      skeleton: joint set of the poses (a :mod:`lcr_tf.contracts.skeleton` name), for the upper-body boxes.

    The anchor-poses are held as non-trainable float32 weights (``anchor_pose2d``, ``anchor_pose3d``), so
    that checkpoints and exported models carry them; ``global_step`` (int64) counts training steps.
    """

    def __init__(self, config, anchors2d, anchors3d, backbone, skeleton: str = "lcr13", **kwargs):
        kwargs.setdefault("name", "lcr_net")
        super().__init__(**kwargs)
        anchors2d = np.asarray(anchors2d, np.float32)
        anchors3d = np.asarray(anchors3d, np.float32)
        k, j = config.num_anchors, config.num_joints
        if anchors2d.shape != (2 * k, j, 2) or anchors3d.shape != (2 * k, j, 3):
            raise ValueError(f"anchor-poses of shapes {anchors2d.shape} and {anchors3d.shape} do not fit "
                             f"num_anchors={k}, num_joints={j}: expected {(2 * k, j, 2)} and {(2 * k, j, 3)}")
        self.model_config = config
        self.skeleton_name = skeleton
        self.num_classes = config.num_classes
        self.num_joints = j
        self.stride = backbone.stride
        self.preprocess = (backbones.bgr_mean_preprocess(config.pixel_means_bgr) if config.pixel_means_bgr
                           else backbone.preprocess)
        self.backbone_name = backbone.name
        self.trunk = backbone.features
        self.roi_head = backbone.roi_head
        self.rpn_head = RPNHead(anchor_boxes.anchors_per_cell(config.rpn_scales, config.rpn_aspect_ratios),
                                channels=config.rpn_channels, name="rpn_head")
        self.aligner = RoIAligner(backbone.roi_size, 1.0 / backbone.stride,
                                  sampling_ratio=config.roi_sampling_ratio, pooling=config.roi_pooling,
                                  variant=config.roi_align, name="roi_aligner")
        stds = dict(std_2d=config.regression_std_2d, std_3d=config.regression_std_3d)
        self.lcr_head = LCRHead(self.num_classes, j, name="lcr_head", **stds)
        self.refinement = (RefinementStage(self.num_classes, j, hidden=config.refinement_hidden,
                                           fc=config.refinement_fc, name="refinement", **stds)
                           if config.refinement else None)
        # Training-only auxiliary supervision of the trunk; inference never calls it.
        self.joint_heatmap_head = (JointHeatmapHead(j, name="joint_heatmap_head")
                                   if config.joint_heatmap_weight > 0 else None)
        self.anchor_pose2d = self.add_weight(shape=anchors2d.shape, dtype="float32", trainable=False,
                                             initializer=keras.initializers.Constant(anchors2d),
                                             autocast=False, name="anchor_pose2d")
        self.anchor_pose3d = self.add_weight(shape=anchors3d.shape, dtype="float32", trainable=False,
                                             initializer=keras.initializers.Constant(anchors3d),
                                             autocast=False, name="anchor_pose3d")
        self.global_step = self.add_weight(shape=(), dtype="int64", trainable=False, initializer="zeros",
                                           aggregation="only_first_replica", name="global_step")

    # ----------------------------------------------------------------------------------------------
    # Wiring
    # ----------------------------------------------------------------------------------------------

    def _rpn(self, images, training):
        """images (B, S, S, 3) -> features (B, h, w, C), logits (B, N_a), deltas (B, N_a, 4), anchors (N_a, 4)."""
        features = self.trunk(self.preprocess(images), training=training)
        if self.joint_heatmap_head is not None and not self.joint_heatmap_head.built:
            # Its weights exist as soon as the model's do (optimizer slots, checkpoints), though only
            # the training losses compute it.
            self.joint_heatmap_head.build(features.shape)
        logits, deltas = self.rpn_head(features)
        shape = tf.shape(features)
        cfg = self.model_config
        anchors = anchor_boxes.generate_anchors(shape[1], shape[2], self.stride, cfg.rpn_scales,
                                                cfg.rpn_aspect_ratios, convention=cfg.rpn_convention)
        return features, logits, deltas, anchors

    def _proposals(self, images, logits, deltas, anchors, training):
        """(B, R, 4) boxes, (B, R) scores, (B, R) valid; R = the train or test post-NMS top-N."""
        cfg = self.model_config
        pre, post = ((cfg.rpn_pre_nms_top_n_train, cfg.rpn_post_nms_top_n_train) if training
                     else (cfg.rpn_pre_nms_top_n_test, cfg.rpn_post_nms_top_n_test))
        return proposals_lib.generate_proposals(
            logits, deltas, anchors, tf.shape(images)[1:3], pre_nms_top_n=pre, post_nms_top_n=post,
            nms_iou=cfg.rpn_nms_iou, min_size=cfg.rpn_min_size, nms_method=cfg.nms_method,
            convention=cfg.rpn_convention)

    def _heads(self, features, rois, training) -> List[Tuple[tf.Tensor, tf.Tensor]]:
        """RoIAlign + RoI head + pose heads on rois (B, R, 4): [(logits (B, R, C), regression (B, R, C 5J))]
        for the first estimate and, with refinement, the second."""
        pooled = self.aligner(features, rois)
        vectors = self.roi_head(pooled, training=training)
        logits, regression = self.lcr_head(vectors)
        stages = [(logits, regression)]
        if self.refinement is not None:
            stages.append(self.refinement(vectors, logits, regression))
        shape = tf.shape(rois)
        return [(tf.reshape(lg, [shape[0], shape[1], self.num_classes]),
                 tf.reshape(rg, [shape[0], shape[1], -1])) for lg, rg in stages]

    def call(self, images, training=False) -> Dict[str, tf.Tensor]:
        """Inference on a batch of images.

        Args:
          images: (B, H, W, 3) float RGB in [0, 255]: the S x S squares of training and letterboxed
            inference, or any size (a released model's short-side input; sides that are multiples of 16
            keep the feature grid aligned with the pixels).
          training: the mode of the backbone layers (batch norm).
        Returns:
          dict of ``boxes`` (B, R, 4) float32 proposals xyxy pixels, ``valid`` (B, R) bool (False for
          padding), ``rpn_scores`` (B, R) float32 objectness, ``class_probs`` (B, R, 2K + 1) float32
          softmax over the classes (eq 3, class layout of :mod:`lcr_tf.poses.anchors`) and ``regression``
          (B, R, (2K + 1) * 5J) float32 (layout of :mod:`lcr_tf.ops.pose_coding`), of the last
          estimate; R = ``rpn_post_nms_top_n_test``.
        """
        images = tf.cast(images, tf.float32)
        features, logits, deltas, anchors = self._rpn(images, training)
        boxes, scores, valid = self._proposals(images, logits, deltas, anchors, training=False)
        class_logits, regression = self._heads(features, boxes, training)[-1]
        return {BOXES: boxes, VALID: valid, RPN_SCORES: scores,
                CLASS_PROBS: tf.nn.softmax(tf.cast(class_logits, tf.float32), axis=-1),
                REGRESSION: tf.cast(regression, tf.float32)}

    def roi_features(self, images, training=False) -> Dict[str, tf.Tensor]:
        """Inference up to the last pose head's input, for class-selective regression.

        The same proposals and class probabilities as :meth:`call`, without the regression of all
        2K + 1 classes (with refinement, the first stage's full regression is still computed: it is the
        second stage's input). :meth:`regress_classes` then regresses chosen classes only.

        Args:
          images: (B, H, W, 3) float RGB in [0, 255] (as :meth:`call`).
        Returns:
          dict of ``boxes`` (B, R, 4) xyxy pixels, ``valid`` (B, R) bool, ``rpn_scores`` (B, R),
          ``class_probs`` (B, R, 2K + 1) float32 and ``head_inputs`` (B, R, D'): the vectors the last
          LCRHead reads.
        """
        images = tf.cast(images, tf.float32)
        features, logits, deltas, anchors = self._rpn(images, training)
        boxes, scores, valid = self._proposals(images, logits, deltas, anchors, training=False)
        vectors = self.roi_head(self.aligner(features, boxes), training=training)
        if self.refinement is not None:
            class_logits, regression = self.lcr_head(vectors)
            vectors = self.refinement.embed(vectors, class_logits, regression)
            class_logits = self.refinement.head.classifier(vectors)
        else:
            class_logits = self.lcr_head.classifier(vectors)
        shape = tf.shape(boxes)
        return {BOXES: boxes, VALID: valid, RPN_SCORES: scores,
                CLASS_PROBS: tf.reshape(tf.nn.softmax(tf.cast(class_logits, tf.float32), axis=-1),
                                        [shape[0], shape[1], self.num_classes]),
                HEAD_INPUTS: tf.reshape(vectors, [shape[0], shape[1], -1])}

    def regress_classes(self, head_inputs, classes) -> tf.Tensor:
        """(N, D') vectors of :meth:`roi_features` and (N, C') int classes -> (N, C', 5J) float32 regression
        blocks of those classes only (:meth:`lcr_tf.layers.lcr_head.LCRHead.regress_classes`)."""
        head = self.lcr_head if self.refinement is None else self.refinement.head
        return tf.cast(head.regress_classes(head_inputs, classes), tf.float32)

    def predict_step(self, data):
        images = data[batch_keys.IMAGE] if isinstance(data, Mapping) else data
        return self(images, training=False)
