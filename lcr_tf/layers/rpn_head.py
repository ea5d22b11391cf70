"""The Region Proposal Network head (paper Sec 3.1, Faster R-CNN's RPN)."""

from __future__ import annotations

from typing import Tuple

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="lcr_tf")
class RPNHead(keras.layers.Layer):
    """3x3 conv + ReLU, then per feature cell A objectness logits and A box deltas.

    Input: a feature map (B, H, W, C_in) at the backbone stride.

    Outputs ``(objectness_logits, deltas)``:

    * ``objectness_logits`` (B, H * W * A): person-vs-background logits (sigmoid gives the probability);
    * ``deltas`` (B, H * W * A, 4): Faster R-CNN box deltas (dx, dy, dw, dh) w.r.t. the anchor boxes
      (:func:`lcr_tf.ops.box_ops.decode_deltas`).

    Both are flattened in the order of :func:`lcr_tf.ops.anchor_boxes.generate_anchors`: row-major over
    the cells (y, then x), then the A anchors of a cell, so index ``(y * W + x) * A + a`` is anchor ``a``
    at cell ``(y, x)``. The delta conv's 4A channels are grouped per anchor: channel ``4 * a + k`` is
    coordinate ``k`` of anchor ``a``.

    Weights are drawn from N(0, 0.01^2) with zero biases, the RPN's usual initialisation.

    Args:
      anchors_per_cell: A, anchors per feature cell (``lcr_tf.ops.anchor_boxes.anchors_per_cell``).
      channels: width of the 3x3 conv (512 in Faster R-CNN's VGG RPN).
    """

    def __init__(self, anchors_per_cell: int, channels: int = 512, **kwargs):
        super().__init__(**kwargs)
        if int(anchors_per_cell) <= 0 or int(channels) <= 0:
            raise ValueError(f"anchors_per_cell and channels must be positive; got {anchors_per_cell}, {channels}")
        self.anchors_per_cell = int(anchors_per_cell)
        self.channels = int(channels)
        init = keras.initializers.RandomNormal(stddev=0.01)
        self.conv = keras.layers.Conv2D(self.channels, 3, padding="same", activation="relu",
                                        kernel_initializer=init, name="rpn_conv")
        self.objectness = keras.layers.Conv2D(self.anchors_per_cell, 1, kernel_initializer=init,
                                              name="rpn_objectness")
        self.box_deltas = keras.layers.Conv2D(4 * self.anchors_per_cell, 1, kernel_initializer=init,
                                              name="rpn_deltas")

    def build(self, input_shape):
        self.conv.build(input_shape)
        hidden_shape = tuple(input_shape[:-1]) + (self.channels,)
        self.objectness.build(hidden_shape)
        self.box_deltas.build(hidden_shape)
        super().build(input_shape)

    def call(self, features) -> Tuple[tf.Tensor, tf.Tensor]:
        hidden = self.conv(features)
        logits = self.objectness(hidden)
        deltas = self.box_deltas(hidden)
        batch = tf.shape(features)[0]
        # (B, H, W, A) and (B, H, W, 4A) are row-major over (y, x, a[, k]): a reshape keeps the order.
        return tf.reshape(logits, [batch, -1]), tf.reshape(deltas, [batch, -1, 4])

    def compute_output_shape(self, input_shape):
        batch, height, width = input_shape[0], input_shape[1], input_shape[2]
        cells = None if height is None or width is None else height * width * self.anchors_per_cell
        return (batch, cells), (batch, cells, 4)

    def get_config(self):
        config = super().get_config()
        config.update(anchors_per_cell=self.anchors_per_cell, channels=self.channels)
        return config
