"""Iterative estimation: a second classification and regression from the first (paper Sec 3.4, Fig 4)."""

from __future__ import annotations

from typing import Sequence, Tuple

import keras
import tensorflow as tf

from lcr_tf.layers.lcr_head import LCRHead
from lcr_tf.ops import pose_coding


@keras.saving.register_keras_serializable(package="lcr_tf")
class RefinementStage(keras.layers.Layer):
    """One refinement step of LCR-Net++ (Sec 3.4)::

        first estimate: class scores (N, C), regression (N, C * 5J)
            -> concatenate -> FC ``hidden`` + ReLU          (a size independent of K: 2048 in the paper)
            -> concatenate with the region vector (N, D)
            -> FC ``fc[0]`` + ReLU -> FC ``fc[1]`` + ReLU    (as the two FC before the first estimate)
            -> LCRHead -> second estimate: class logits (N, C), regression (N, C * 5J)

    "The convolutional features pooled over the RoI" of the paper are taken as the region vector D that
    the first estimate was computed from (the backbone's RoI head output), which keeps the stage the
    same size for every backbone. The losses apply to both estimates; inference uses the last one.

    Call: ``stage(features, class_logits, regression)`` with ``features`` (N, D), ``class_logits``
    (N, C) the first head's logits and ``regression`` (N, C * 5J) its regression, C = ``num_classes``.
    Returns ``(class_logits, regression)`` of the second estimate, same shapes and layout as
    :class:`lcr_tf.layers.lcr_head.LCRHead`.

    Args:
      num_classes: C = 2K + 1.
      num_joints: J.
      hidden: width of the FC over the concatenated first estimate.
      fc: widths of the FC layers after concatenating the region vector.
      use_probabilities: feed the softmax of the first class logits (bounded, as the scores the
        first estimate means) rather than the raw logits.
      std_2d, std_3d: regression scales of both heads (:class:`LCRHead`); the first estimate's deltas
        are divided by them before the FC, so that its inputs are of order one.
    """

    def __init__(self, num_classes: int, num_joints: int = pose_coding.DEFAULT_NUM_JOINTS,
                 hidden: int = 2048, fc: Sequence[int] = (2048, 2048), use_probabilities: bool = True,
                 std_2d: float = pose_coding.DEFAULT_STD_2D, std_3d: float = pose_coding.DEFAULT_STD_3D,
                 **kwargs):
        super().__init__(**kwargs)
        fc = tuple(int(w) for w in fc)
        if int(hidden) <= 0 or not fc or min(fc) <= 0:
            raise ValueError(f"hidden and fc must be positive widths; got hidden={hidden}, fc={fc}")
        self.num_classes = int(num_classes)
        self.num_joints = int(num_joints)
        self.hidden = int(hidden)
        self.fc = fc
        self.use_probabilities = bool(use_probabilities)
        self.estimate_fc = keras.layers.Dense(self.hidden, activation="relu", name="estimate_fc")
        self.fc_layers = [keras.layers.Dense(w, activation="relu", name=f"refine_fc{i + 1}")
                          for i, w in enumerate(self.fc)]
        self.head = LCRHead(self.num_classes, self.num_joints, std_2d=std_2d, std_3d=std_3d,
                            name="refined_head")

    def build(self, features_shape, class_logits_shape, regression_shape):
        n = features_shape[0]
        expected = self.num_classes * pose_coding.block_size(self.num_joints)
        if class_logits_shape[-1] != self.num_classes or regression_shape[-1] != expected:
            raise ValueError(f"RefinementStage({self.num_classes} classes, {self.num_joints} joints) needs "
                             f"class_logits (N, {self.num_classes}) and regression (N, {expected}); got "
                             f"{tuple(class_logits_shape)} and {tuple(regression_shape)}")
        self.estimate_fc.build((n, self.num_classes + expected))
        width = self.hidden + features_shape[-1]
        for layer in self.fc_layers:
            layer.build((n, width))
            width = layer.units
        self.head.build((n, width))
        super().build(features_shape)

    def embed(self, features, class_logits, regression) -> tf.Tensor:
        """The vector (N, ``fc[-1]``) the second head reads (for :meth:`LCRHead.regress_classes`)."""
        scores = tf.nn.softmax(class_logits, axis=-1) if self.use_probabilities else class_logits
        estimate = self.estimate_fc(tf.concat([scores, regression / self.head.regression_scale(regression.dtype)],
                                              axis=-1))
        x = tf.concat([estimate, features], axis=-1)
        for layer in self.fc_layers:
            x = layer(x)
        return x

    def call(self, features, class_logits, regression) -> Tuple[tf.Tensor, tf.Tensor]:
        return self.head(self.embed(features, class_logits, regression))

    def regress_classes(self, features, class_logits, regression, classes) -> Tuple[tf.Tensor, tf.Tensor]:
        """Second estimate with the regression of chosen classes only.

        Args:
          features, class_logits, regression: as for ``call``.
          classes: (N, C') int class indices in ``[0, num_classes)``.

        Returns:
          ``(class_logits (N, C), regression (N, C', 5J))``.
        """
        x = self.embed(features, class_logits, regression)
        return self.head.classifier(x), self.head.regress_classes(x, classes)

    def compute_output_shape(self, features_shape, class_logits_shape, regression_shape):
        return tuple(class_logits_shape), tuple(regression_shape)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, num_joints=self.num_joints, hidden=self.hidden,
                      fc=list(self.fc), use_probabilities=self.use_probabilities,
                      std_2d=self.head.std_2d, std_3d=self.head.std_3d)
        return config
