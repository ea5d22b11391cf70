"""The classification and regression branches of LCR-Net (paper Sec 3.2-3.3, eq 3-5, Fig 2 and 4)."""

from __future__ import annotations

from typing import Tuple

import keras
import numpy as np
import tensorflow as tf

from lcr_tf.ops import pose_coding


@keras.saving.register_keras_serializable(package="lcr_tf")
class LCRHead(keras.layers.Layer):
    """Pose classification over the 2K + 1 anchor classes and per-class 2D-3D pose regression.

    Input: region vectors ``x`` (N, D) (the backbone's RoI head output).

    Outputs ``(class_logits, regression)``:

    * ``class_logits`` (N, C) with C = ``num_classes`` = 2K + 1 (class layout of :mod:`lcr_tf.poses.anchors`:
      0 background, 1..K full-body, K+1..2K upper-body); the softmax of eq 3 is applied by the loss
      and at inference (:meth:`class_probabilities`), not here;
    * ``regression`` (N, C * 5J): per class ``c`` the block ``[c * 5J, (c + 1) * 5J)`` of 2J
      box-normalised 2D deltas then 3J 3D deltas in metres (layout of :mod:`lcr_tf.ops.pose_coding`).

    At inference only a few classes per region are decoded; :meth:`regress_classes` computes just
    those blocks, which for K = 200 avoids most of the head's cost (the regression layer is
    D x 26065 for J = 13).

    The regression layer's outputs are multiplied by the fixed block scale of
    :func:`lcr_tf.ops.pose_coding.block_scale` (``std_2d`` for 2D values, ``std_3d`` for 3D ones), so the
    layer itself works on standardised deltas; :func:`lcr_tf.training.losses.regression_loss` divides by the same
    scale. The outputs of :meth:`call` and :meth:`regress_classes` are plain deltas.

    Initialisation follows Faster R-CNN's box branch: N(0, 0.01^2) for the classifier, N(0, 0.001^2)
    for the regressor, zero biases, so that the first estimates are the anchor-poses themselves.

    Args:
      num_classes: C = 2K + 1.
      num_joints: J.
      std_2d, std_3d: the regression scales (box units, metres).
    """

    def __init__(self, num_classes: int, num_joints: int = pose_coding.DEFAULT_NUM_JOINTS,
                 std_2d: float = pose_coding.DEFAULT_STD_2D, std_3d: float = pose_coding.DEFAULT_STD_3D,
                 **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) < 2 or int(num_joints) <= 0:
            raise ValueError(f"need num_classes >= 2 and num_joints >= 1; got {num_classes}, {num_joints}")
        self.num_classes = int(num_classes)
        self.num_joints = int(num_joints)
        self.block_size = pose_coding.block_size(self.num_joints)
        self.std_2d, self.std_3d = float(std_2d), float(std_3d)
        self.block_scale = pose_coding.block_scale(self.std_2d, self.std_3d, self.num_joints)
        self.classifier = keras.layers.Dense(
            self.num_classes, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
            name="class_logits")
        self.regressor = keras.layers.Dense(
            pose_coding.regression_size(self.num_classes, self.num_joints),
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.001), name="pose_regression")

    def build(self, input_shape):
        self.classifier.build(input_shape)
        self.regressor.build(input_shape)
        super().build(input_shape)

    def call(self, x) -> Tuple[tf.Tensor, tf.Tensor]:
        return self.classifier(x), self.regressor(x) * self.regression_scale(self.compute_dtype)

    def regression_scale(self, dtype) -> tf.Tensor:
        """(C * 5J,) the block scale of every class, in the layout of the full regression output."""
        return tf.constant(np.tile(self.block_scale, self.num_classes), dtype)

    def compute_output_shape(self, input_shape):
        n = input_shape[0]
        return (n, self.num_classes), (n, pose_coding.regression_size(self.num_classes, self.num_joints))

    @staticmethod
    def class_probabilities(class_logits) -> tf.Tensor:
        """(N, C) logits -> (N, C) softmax probabilities (eq 3)."""
        return tf.nn.softmax(class_logits, axis=-1)

    def regress_classes(self, x, classes) -> tf.Tensor:
        """The regression blocks of chosen classes only.

        Equal to gathering blocks ``classes[n, i]`` of ``call(x)[1][n]``, but it multiplies ``x`` by the
        kernel columns of the distinct chosen classes U only: cost N * D * |U| * 5J instead of
        N * D * C * 5J. Inference keeps the few best-scoring classes of each region, which concentrate
        on few anchor-poses, so |U| is usually much smaller than C; when it is more than C / 2 the full
        product is computed instead, as copying most of the kernel costs more than it saves. (Gathering one
        (D, 5J) kernel slice per region instead would copy N * C' * D * 5J floats, 160 MB for 300 regions
        and D = 2048, and is slower in practice.)

        Args:
          x: (N, D) region vectors.
          classes: (N, C') int class indices in ``[0, num_classes)``.

        Returns:
          (N, C', 5J) regression deltas in the block layout of :mod:`lcr_tf.ops.pose_coding`.
        """
        if not self.built:
            self.build(x.shape)
        x = tf.convert_to_tensor(x, self.compute_dtype)
        classes = tf.cast(classes, tf.int32)
        distinct, position = tf.unique(tf.reshape(classes, [-1]))
        depth = tf.shape(self.regressor.kernel)[0]
        # (D, C * 5J) -> (D, C, 5J) is a free reshape; the gather copies only the columns of U.
        kernel = tf.reshape(tf.cast(self.regressor.kernel, x.dtype), [depth, self.num_classes, self.block_size])
        bias = tf.reshape(tf.cast(self.regressor.bias, x.dtype), [self.num_classes, self.block_size])
        n = tf.shape(x)[0]

        def distinct_columns():
            columns = tf.reshape(tf.gather(kernel, distinct, axis=1), [depth, -1])  # (D, |U| * 5J)
            blocks = tf.reshape(tf.matmul(x, columns), [n, tf.size(distinct), self.block_size])
            return blocks + tf.gather(bias, distinct)

        def all_columns():
            # Copying most of the kernel costs more than multiplying by all of it.
            blocks = tf.reshape(tf.matmul(x, tf.reshape(kernel, [depth, -1])),
                                [n, self.num_classes, self.block_size])
            return tf.gather(blocks + bias, distinct, axis=1)

        blocks = tf.cond(2 * tf.size(distinct) > self.num_classes, all_columns, distinct_columns)
        blocks = blocks * tf.constant(self.block_scale, blocks.dtype)
        return tf.gather(blocks, tf.reshape(position, tf.shape(classes)), batch_dims=1)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, num_joints=self.num_joints, std_2d=self.std_2d,
                      std_3d=self.std_3d)
        return config
