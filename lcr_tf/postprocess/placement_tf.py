"""3D placement in TensorFlow (float32, graph-compatible): the twin of
:func:`lcr_tf.postprocess.placement.place_3d`; the equations are in that module."""

from __future__ import annotations

from typing import Tuple

import tensorflow as tf

from lcr_tf.postprocess.placement import linear_system


class _TFOps:
    zeros_like = staticmethod(tf.zeros_like)
    stack = staticmethod(tf.stack)
    concat = staticmethod(tf.concat)


def place_3d_tf(pose2d, pose3d, intrinsics=None, image_size=None) -> Tuple[tf.Tensor, tf.Tensor]:
    """TensorFlow version of :func:`lcr_tf.postprocess.placement.place_3d`; float32, graph-compatible.

    Args:
      pose2d: (D, J, 2) px; pose3d: (D, J, 3) m.
      intrinsics: (4,) ``fx, fy, cx, cy`` or None (then ``image_size`` (2,) (height, width) gives the
        default camera).
    Returns:
      translation (D, 3) and pose3d_camera (D, J, 3), float32. All-zero padded rows give finite values.
    """
    pose2d = tf.cast(pose2d, tf.float32)
    pose3d = tf.cast(pose3d, tf.float32)
    if intrinsics is None:
        if image_size is None:
            raise ValueError("place_3d_tf needs intrinsics or image_size (for the default camera)")
        size = tf.cast(image_size, tf.float32)
        f = tf.reduce_max(size)
        intrinsics = tf.stack([f, f, 0.5 * size[1], 0.5 * size[0]])
    intrinsics = tf.cast(intrinsics, tf.float32)
    a, b = linear_system(pose2d, pose3d, intrinsics, _TFOps)
    # Normal equations in float64: the pixel-scale columns make A^T A badly scaled for float32.
    a64 = tf.cast(a, tf.float64)
    translation = tf.cast(tf.einsum("dkr,dr->dk", tf.linalg.pinv(a64), tf.cast(b, tf.float64)), tf.float32)
    return translation, pose3d + translation[:, None, :]
