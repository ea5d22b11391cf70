"""The training step of LCR-Net (paper Sec 3.5, eq 1): targets, losses and one gradient step.

:class:`TrainableLCRNet` is :class:`lcr_tf.modeling.lcr_model.LCRNet` with Keras' ``train_step`` and
``test_step``: the network's wiring and weights are its parent's (a model trained here loads into an
``LCRNet`` for inference), and this subclass adds what only training needs:

* :meth:`TrainableLCRNet.compute_losses`: the forward pass with the RPN and RoI targets
  (:mod:`lcr_tf.ops.targets`) and the loss parts of :mod:`lcr_tf.training.losses`;
* the step: each replica's share of the global batch's loss, the gradient step of
  :func:`lcr_tf.training.optimization.apply_gradients`, the step counter ``global_step``;
* the trackers: ``keras.metrics.Mean`` of the named loss parts (``*_stage2`` for the refinement stage),
  ``weight_decay``, their sum ``total_loss`` (eq 1 plus weight decay) and ``proposal_recall``: the
  fraction of ground-truth people with a proposal of IoU >= 0.5 with their full-body or upper-body box.

The steps take the batch dict of :func:`lcr_tf.data.pipeline.make_dataset` (:func:`select_batch`).
"""

from __future__ import annotations

from typing import Dict, Mapping, Tuple

import keras
import tensorflow as tf

from lcr_tf.contracts import batch_keys
from lcr_tf.modeling import factory
from lcr_tf.modeling.lcr_model import LCRNet
from lcr_tf.ops import box_ops, joint_heatmaps, row_random
from lcr_tf.ops import targets as targets_lib
from lcr_tf.training import distribute, optimization
from lcr_tf.training import losses as losses_lib

# Batch keys the training and evaluation steps read (everything else in a batch is ignored); the ignore
# regions are optional (a batch without them has none).
BATCH_KEYS = (batch_keys.IMAGE, batch_keys.PERSON_MASK, batch_keys.BOXES, batch_keys.POSE2D, batch_keys.POSE3D,
              batch_keys.ANNOTATED, batch_keys.VISIBLE, batch_keys.ANCHOR_CLASS)
IGNORE_KEYS = (batch_keys.IGNORE_BOXES, batch_keys.IGNORE_MASK)


def select_batch(batch: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """The :data:`BATCH_KEYS` (and :data:`IGNORE_KEYS` when present) of an input-pipeline batch, boolean
    masks as float32 0 / 1.

    Keras's distributed ``fit`` averages the first batch over the replicas to build the model, which it
    cannot do with bool tensors; the steps cast the masks back to bool.
    """
    keys = BATCH_KEYS + tuple(key for key in IGNORE_KEYS if key in batch)
    return {key: tf.cast(batch[key], tf.float32) if batch[key].dtype == tf.bool else batch[key]
            for key in keys}


TOTAL_LOSS = "total_loss"
SKIPPED_STEPS = "skipped_steps"
GRADIENT_NORM = "gradient_norm"  # of the global gradient before clipping, mean over the epoch's steps
LOSS_SCALE = "loss_scale"
WEIGHT_DECAY = "weight_decay"
PROPOSAL_RECALL = "proposal_recall"
STAGE2_SUFFIX = "_stage2"
RECALL_IOU = 0.5


def loss_names(refinement: bool, joint_heatmap: bool = False) -> Tuple[str, ...]:
    """Names of the loss parts a model reports, in order (the refinement stage adds two, the trunk's
    auxiliary joint heatmaps one)."""
    names = [losses_lib.RPN_OBJECTNESS, losses_lib.RPN_BOX, losses_lib.CLASSIFICATION, losses_lib.REGRESSION]
    if refinement:
        names += [losses_lib.CLASSIFICATION + STAGE2_SUFFIX, losses_lib.REGRESSION + STAGE2_SUFFIX]
    if joint_heatmap:
        names.append(losses_lib.JOINT_HEATMAP)
    return tuple(names)


def _keras_logs(logs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Step logs as Keras' ``fit`` can reduce them: under MultiWorkerMirroredStrategy Keras averages each
    log over axis 0 of the replicas' values, which a scalar does not have, so there they are (1,)."""
    if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


class TrainableLCRNet(LCRNet):
    """:class:`LCRNet` with its training and validation steps (module docstring); the same arguments.

    Its trackers and step settings (:meth:`compile`) are not weights: its weights file and an ``LCRNet``'s
    are the same.
    """

    def __init__(self, config, anchors2d, anchors3d, backbone, skeleton: str = "lcr13", **kwargs):
        super().__init__(config, anchors2d, anchors3d, backbone, skeleton=skeleton, **kwargs)
        self.loss_names = loss_names(config.refinement, self.joint_heatmap_head is not None)
        # Weights of eq 1's sum (lcr_tf.training.losses.total_loss); the paper's parts weigh 1.
        self.loss_weights = ({losses_lib.JOINT_HEATMAP: config.joint_heatmap_weight}
                             if self.joint_heatmap_head is not None else {})
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in self.loss_names + (WEIGHT_DECAY, TOTAL_LOSS, PROPOSAL_RECALL)}
        self.skipped = keras.metrics.Sum(name=SKIPPED_STEPS)
        self.gradient_norm = keras.metrics.Mean(name=GRADIENT_NORM)
        self.loss_scale = None
        self.clipnorm = 0.0

    def _seeds(self, local_batch, training: bool = True):
        """Stateless (B, 2) per-image seeds of the RPN and RoI samplers (:mod:`lcr_tf.ops.row_random`),
        from the config's seed, ``global_step`` (training; a fixed stream in validation) and each image's
        place in the global batch, so that sampling does not depend on the replica count; (None, None)
        draws from TensorFlow's global generator when the config has no seed."""
        if self.model_config.seed is None:
            return None, None
        base = tf.constant(self.model_config.seed, tf.int64)
        images = distribute.global_image_index(local_batch)
        if training:
            step = tf.cast(self.global_step, tf.int64)
            streams = (2 * step, 2 * step + 1)
        else:
            streams = (tf.constant(-1, tf.int64), tf.constant(-2, tf.int64))
        return tuple(row_random.row_seeds(tf.stack([base, stream]), images) for stream in streams)

    def compute_losses(self, batch: Mapping[str, tf.Tensor], training: bool, seeds=(None, None)
                       ) -> Tuple[Dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
        """Forward pass with targets, for training or validation.

        Args:
          batch: dict with the :data:`BATCH_KEYS` of :func:`lcr_tf.data.pipeline.make_dataset`
            (``image`` (B, S, S, 3), per-person fields (B, P, ...), ``anchor_class`` in 1..2K).
          training: training mode: train top-N proposals and batch-norm mode; else the test top-N.
          seeds: (RPN seed, RoI seed) of :mod:`lcr_tf.ops.targets`.
        Returns:
          (name -> () float32 loss part, (B, P) float32 1 for recalled people, (B, P) bool real people).
        """
        cfg = self.model_config
        images = tf.cast(batch[batch_keys.IMAGE], tf.float32)
        image_size = tf.shape(images)[1:3]
        features, logits, deltas, anchors = self._rpn(images, training)
        boxes, _, valid = self._proposals(images, logits, deltas, anchors, training)

        people = targets_lib.people_from_batch(batch, cfg.num_anchors, skeleton=self.skeleton_name)
        gt_boxes, gt_mask = targets_lib.rpn_gt_boxes(people)
        ignore = {}
        if batch_keys.IGNORE_BOXES in batch:
            ignore = dict(ignore_boxes=batch[batch_keys.IGNORE_BOXES], ignore_mask=batch[batch_keys.IGNORE_MASK],
                          ignore_ioa=cfg.ignore_ioa)
        rpn_labels, rpn_targets = targets_lib.assign_rpn_targets(
            anchors, gt_boxes, gt_mask, image_size, pos_iou=cfg.rpn_pos_iou, neg_iou=cfg.rpn_neg_iou,
            batch_size_per_image=cfg.rpn_batch_size_per_image,
            positive_fraction=cfg.rpn_positive_fraction, seed=seeds[0],
            plus_one=cfg.rpn_convention == "detectron", **ignore)
        rois = targets_lib.assign_roi_targets(
            boxes, valid, people, self.anchor_pose2d, self.anchor_pose3d, num_rois=cfg.rois_per_image,
            positive_fraction=cfg.roi_positive_fraction, fg_iou=cfg.fg_iou, add_gt_boxes=True,
            seed=seeds[1], **ignore)
        stages = self._heads(features, rois["rois"], training)

        parts = {losses_lib.RPN_OBJECTNESS: losses_lib.rpn_objectness_loss(logits, rpn_labels),
                 losses_lib.RPN_BOX: losses_lib.rpn_box_loss(deltas, rpn_targets, rpn_labels)}
        for i, (class_logits, regression) in enumerate(stages):
            suffix = STAGE2_SUFFIX if i else ""
            parts[losses_lib.CLASSIFICATION + suffix] = losses_lib.classification_loss(
                class_logits, rois["classes"], rois["roi_valid"])
            parts[losses_lib.REGRESSION + suffix] = losses_lib.regression_loss(
                regression, rois["reg_targets"], rois["classes"], rois["roi_valid"],
                num_joints=self.num_joints, scale=self.lcr_head.block_scale)
        if self.joint_heatmap_head is not None:
            parts[losses_lib.JOINT_HEATMAP] = self._joint_heatmap_loss(features, batch)

        # A person is recalled when a proposal covers its full-body or its upper-body box.
        num_people = tf.shape(people[batch_keys.PERSON_MASK])[1]
        iou = tf.where(valid[:, :, None], box_ops.iou(boxes, gt_boxes), 0.0)  # (B, R, 2P)
        hit = tf.logical_and(tf.reduce_max(iou, axis=1) >= RECALL_IOU, gt_mask)  # (B, 2P)
        recalled = tf.cast(tf.logical_or(hit[:, :num_people], hit[:, num_people:]), tf.float32)
        return parts, recalled, people[batch_keys.PERSON_MASK]

    def _joint_heatmap_loss(self, features, batch) -> tf.Tensor:
        """The trunk's auxiliary loss (:mod:`lcr_tf.ops.joint_heatmaps`) on the annotated joints of the
        real people of ``batch``, unweighted (:attr:`loss_weights` weighs it)."""
        mask = tf.logical_and(tf.cast(batch[batch_keys.ANNOTATED], tf.bool),
                              tf.cast(batch[batch_keys.PERSON_MASK], tf.bool)[..., None])
        targets = joint_heatmaps.joint_heatmaps(batch[batch_keys.POSE2D], mask, tf.shape(features)[1:3],
                                                float(self.stride), self.model_config.joint_heatmap_sigma)
        return joint_heatmaps.heatmap_loss(self.joint_heatmap_head(features), targets,
                                           losses_lib.global_count(tf.reduce_sum(tf.cast(mask, tf.float32))))

    def weight_decay_loss(self) -> tf.Tensor:
        """``weight_decay * sum(w^2) / 2`` over the trainable kernels (biases and BN are not decayed)."""
        decay = self.model_config.weight_decay
        kernels = [v for v in self.trainable_variables if "kernel" in v.name]
        if not decay or not kernels:
            return tf.constant(0.0, tf.float32)
        return decay * tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in kernels])

    def _update_trackers(self, parts, decay, total, recalled, person_mask) -> Dict[str, tf.Tensor]:
        for name, value in parts.items():
            self.trackers[name].update_state(value)
        self.trackers[WEIGHT_DECAY].update_state(decay)
        self.trackers[TOTAL_LOSS].update_state(total)
        self.trackers[PROPOSAL_RECALL].update_state(recalled, sample_weight=tf.cast(person_mask, tf.float32))
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    @staticmethod
    def _batch(data) -> Mapping[str, tf.Tensor]:
        """The batch dict of ``data`` (a dict, or ``(dict,)`` as ``train_on_batch`` packs it)."""
        if isinstance(data, (tuple, list)):
            data = data[0]
        if not isinstance(data, Mapping):
            raise TypeError(f"LCRNet trains on the batch dicts of lcr_tf.data.pipeline; got {type(data)}")
        return data

    @property
    def metrics(self):
        return list(self.trackers.values()) + [self.skipped, self.gradient_norm]

    def compile(self, optimizer, loss_scale=None, clipnorm: float = 0.0, **kwargs):
        """Keras ``compile`` plus the settings of the gradient step
        (:func:`lcr_tf.training.optimization.apply_gradients`).

        Args:
          optimizer: a plain Keras optimizer (its update rule only: no clipping or loss scaling of its own).
          loss_scale: a :class:`lcr_tf.training.optimization.DynamicLossScale` (``mixed_float16``), or None.
          clipnorm: > 0 clips the global gradient (summed over replicas) to this global norm.
        """
        super().compile(optimizer=optimizer, **kwargs)
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer) and not isinstance(
                optimizer, keras.optimizers.LossScaleOptimizer):
            # Keras wraps the optimizer under mixed_float16; the loss scale is the step's here.
            self.optimizer = optimizer
        self.loss_scale = loss_scale
        self.clipnorm = float(clipnorm)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras' distributed fit averages a first batch over the replicas to build the model
        # symbolically; MultiWorkerMirroredStrategy cannot reduce a dict batch (a ValueError at the first
        # step). A model called once and with a built optimizer (as the trainer prepares it) has nothing
        # left to build.
        if self.built and getattr(self, "optimizer", None) is not None and self.optimizer.built:
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def _global_logs(self, parts, decay, recalled, person_mask) -> Dict[str, tf.Tensor]:
        """The trackers updated with the global batch's losses: the replicas' shares summed."""
        parts = distribute.cross_replica_sum(parts)
        total = tf.add_n(list(parts.values())) + decay
        return self._update_trackers(parts, decay, total, recalled, person_mask)

    def train_step(self, data):
        """One optimizer step on a batch dict (:func:`compute_losses`); returns the running means of the
        trackers (module docstring), ``skipped_steps`` (steps of the epoch whose gradient was not
        finite), ``gradient_norm`` (the epoch's mean global norm of the gradient before clipping) and,
        with loss scaling, ``loss_scale``.

        Under a strategy each replica computes its share of the global batch's loss (:mod:`lcr_tf.training.losses`:
        normalisers count the global batch; weight decay is split evenly), and
        :func:`lcr_tf.training.optimization.apply_gradients` sums the shares' gradients once, skips the step on
        every replica when any replica's gradient is not finite, and clips after the sum.
        """
        batch = self._batch(data)
        with tf.GradientTape() as tape:
            parts, recalled, person_mask = self.compute_losses(
                batch, training=True, seeds=self._seeds(tf.shape(batch[batch_keys.IMAGE])[0]))
            share, parts = losses_lib.total_loss(parts, self.loss_weights)
            decay = self.weight_decay_loss()
            share = share + decay / float(distribute.num_replicas())
            scaled = share if self.loss_scale is None else self.loss_scale.scale_loss(share)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        applied, norm = optimization.apply_gradients(self.optimizer, gradients, variables, self.loss_scale,
                                                     self.clipnorm)
        self.global_step.assign_add(1)
        self.skipped.update_state(1.0 - tf.cast(applied, tf.float32))
        self.gradient_norm.update_state(norm, sample_weight=tf.cast(applied, tf.float32))
        logs = self._global_logs(parts, decay, recalled, person_mask)
        logs[SKIPPED_STEPS] = self.skipped.result()
        logs[GRADIENT_NORM] = self.gradient_norm.result()
        if self.loss_scale is not None:
            logs[LOSS_SCALE] = tf.identity(self.loss_scale.scale)
        return _keras_logs(logs)

    def test_step(self, data):
        """Losses and proposal recall on a batch dict, with the test-time proposals and fixed sampling."""
        batch = self._batch(data)
        parts, recalled, person_mask = self.compute_losses(
            batch, training=False, seeds=self._seeds(tf.shape(batch[batch_keys.IMAGE])[0], training=False))
        _, parts = losses_lib.total_loss(parts, self.loss_weights)
        return _keras_logs(self._global_logs(parts, self.weight_decay_loss(), recalled, person_mask))


def build_model(config: factory.ModelConfig, anchor_set, backbone=None) -> TrainableLCRNet:
    """:func:`lcr_tf.modeling.factory.build_model` for training: the same network, as a
    :class:`TrainableLCRNet`."""
    return factory.build_model(config, anchor_set, backbone, model_class=TrainableLCRNet)
