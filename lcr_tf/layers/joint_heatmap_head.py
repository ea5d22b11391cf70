"""The trunk's auxiliary joint-heatmap head (training only; :mod:`lcr_tf.ops.joint_heatmaps`)."""

from __future__ import annotations

import math

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="lcr_tf")
class JointHeatmapHead(keras.layers.Layer):
    """A 1x1 convolution from the trunk's features to one heatmap logit per joint and cell.

    Input: the feature map (B, H, W, C). Output: (B, H, W, J) logits.

    One linear layer, on purpose: the trunk itself must then hold where each joint is, in a form that
    the RoI head (RoIAlign + fully connected layers) can read. The bias starts at the logit of
    ``prior`` so that the first losses are not dominated by the many empty cells (focal-loss
    initialisation).

    Args:
      num_joints: J.
      prior: initial probability of a joint at a cell.
    """

    def __init__(self, num_joints: int, prior: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        if int(num_joints) < 1 or not 0.0 < float(prior) < 1.0:
            raise ValueError(f"need num_joints >= 1 and 0 < prior < 1; got {num_joints}, {prior}")
        self.num_joints = int(num_joints)
        self.prior = float(prior)
        self.conv = keras.layers.Conv2D(
            self.num_joints, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
            bias_initializer=keras.initializers.Constant(math.log(self.prior / (1.0 - self.prior))),
            name="joint_logits")

    def build(self, input_shape):
        self.conv.build(input_shape)
        super().build(input_shape)

    def call(self, features) -> tf.Tensor:
        return self.conv(features)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_joints,)

    def get_config(self):
        config = super().get_config()
        config.update(num_joints=self.num_joints, prior=self.prior)
        return config
