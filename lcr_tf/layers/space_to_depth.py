"""Space-to-depth: a stem that folds each ``block x block`` pixel patch into the channel axis."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="lcr_tf")
class SpaceToDepth(keras.layers.Layer):
    """(B, H, W, C) -> (B, ceil(H / b), ceil(W / b), b * b * C), zero-padding the bottom and right edges
    to a multiple of ``b`` first, so that any image size keeps the ``ceil(H / stride)`` feature grid.

    Output channel ``(dy * b + dx) * C + c`` holds input channel ``c`` of pixel ``(b * y + dy, b * x + dx)``
    (``tf.nn.space_to_depth``'s order). It has no weights and costs one copy of the image: a cheap stem
    that lets the first convolution run at 1/b of the resolution with b^2 times the input channels
    instead of convolving full-resolution maps (a 3x3 conv after it sees a 3b x 3b pixel patch).
    """

    def __init__(self, block_size: int = 4, **kwargs):
        super().__init__(**kwargs)
        if int(block_size) < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.block_size = int(block_size)

    def call(self, inputs):
        b = self.block_size
        shape = tf.shape(inputs)
        pad_h, pad_w = (-shape[1]) % b, (-shape[2]) % b
        padded = tf.pad(inputs, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])
        return tf.nn.space_to_depth(padded, b)

    def compute_output_shape(self, input_shape):
        b = self.block_size

        def side(n):
            return None if n is None else -(-n // b)

        channels = None if input_shape[3] is None else input_shape[3] * b * b
        return (input_shape[0], side(input_shape[1]), side(input_shape[2]), channels)

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}
