"""The pose regression layout, pose encoding / decoding, and pose boxes in TensorFlow (paper Sec 3.1-3.3).

This module is the one place that defines how the regression branch lays out its outputs.

Regression layout
-----------------
With K full-body anchor-poses, the classifier has ``C = 2K + 1`` classes (class layout of
:mod:`lcr_tf.poses.anchors`: 0 background, ``1..K`` full-body, ``K+1..2K`` upper-body) and the regression layer
has ``C * 5J`` outputs, the paper's ``5 x J x (K + 1)`` with K doubled for the upper-body classes. Class 0
keeps its (never trained) block so that block ``c`` starts at ``c * 5J`` for every class.

The block of class ``c`` is ``v[c * 5J : (c + 1) * 5J]``::

    offset in the block   0   1   2   3  ...  2J-2  2J-1 | 2J  2J+1 2J+2 ... 5J-3 5J-2 5J-1
    value                 x0  y0  x1  y1 ...  xJ-1  yJ-1 | X0  Y0   Z0   ... XJ-1 YJ-1 ZJ-1
                          \\------- 2D: 2J values ------/   \\----------- 3D: 3J values -----------/

Encoding (the regression target of Sec 3.1) of a pose ``(p, P)`` in a box ``B = [x1, y1, x2, y2]`` for
class ``c`` with anchor-pose ``(a_c, A_c)`` (anchor-pose arrays row ``c - 1``)::

    t_c = (p~ - a~_c,  P - A_c),      p~ = (p - [x1, y1]) / [x2 - x1, y2 - y1]

2D values are box-normalised (the box is [0, 1]^2, x right, y down); ``a~_c`` is already box-normalised
(:attr:`lcr_tf.poses.anchors.AnchorSet.pose2d`). 3D values are metres, camera axes (x right, y down, z away),
body-centred. Decoding inverts it: 2D pixels = box corner + (anchor + delta) * box size, 3D metres =
anchor + delta.

Pose boxes
----------
:func:`pose_boxes` and :func:`upper_body_boxes` are the TensorFlow twins of
:func:`lcr_tf.contracts.geometry.pose_box` and :func:`lcr_tf.contracts.geometry.upper_body_box` (same margin and minimum
aspect rule), for code that builds ground-truth boxes inside a graph.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import tensorflow as tf

from lcr_tf.contracts import geometry
from lcr_tf.contracts import skeleton as skeleton_lib

# 2D (x, y) then 3D (X, Y, Z) per joint.
COORDS_PER_JOINT = 5
DEFAULT_NUM_JOINTS = skeleton_lib.get_skeleton("lcr13").num_joints


# Default regression scales (``ModelConfig.regression_std_2d`` / ``_3d``): the typical size of a 2D
# delta (box units) and of a 3D delta (metres) with tens of anchor-poses.
DEFAULT_STD_2D = 0.1
DEFAULT_STD_3D = 0.1


def block_scale(std_2d: float, std_3d: float, num_joints: int = DEFAULT_NUM_JOINTS) -> np.ndarray:
    """(5J,) float32 scale of one class block: ``std_2d`` for its 2J 2D values, ``std_3d`` for its 3J 3D.

    The pose heads predict ``scale * z`` and the regression loss compares ``z`` with ``target / scale``
    (Faster R-CNN's target normalisation): with raw deltas of ~0.05 box units or metres, eq 5 with
    ``beta = 1`` would stay deep in its quadratic zone and the regression would get gradients ~10x
    smaller than the classification's.
    """
    if not (std_2d > 0 and std_3d > 0):
        raise ValueError(f"regression scales must be > 0, got std_2d={std_2d}, std_3d={std_3d}")
    j = int(num_joints)
    return np.concatenate([np.full(2 * j, std_2d), np.full(3 * j, std_3d)]).astype(np.float32)


def block_size(num_joints: int = DEFAULT_NUM_JOINTS) -> int:
    """5J: the length of one class block."""
    return COORDS_PER_JOINT * int(num_joints)


def regression_size(num_classes: int, num_joints: int = DEFAULT_NUM_JOINTS) -> int:
    """C * 5J: the output width of the regression layer for ``num_classes = 2K + 1`` classes."""
    return int(num_classes) * block_size(num_joints)


def block_joints(num_joints: int) -> np.ndarray:
    """(5J,) int: the joint of each value of a class block (``[0, 0, 1, 1, ..., 0, 0, 0, 1, 1, 1, ...]``)."""
    j = np.arange(int(num_joints))
    return np.concatenate([np.repeat(j, 2), np.repeat(j, 3)])


def block_columns(class_index, joint_index, source_num_joints: int) -> np.ndarray:
    """Where each regression value of one layout comes from in another: the column map of a weight
    transfer between models of other anchor sets or skeletons.

    Value ``v`` (x, y, X, Y or Z) of joint ``j`` in the block of class ``c`` of the new layout is taken from
    the same value of joint ``joint_index[j]`` in the block of class ``class_index[c]`` of the source layout
    (J_s = ``source_num_joints`` joints per block).

    Args:
      class_index: (C',) int source class of each class of the new layout.
      joint_index: (J',) int source joint of each joint of the new layout.
    Returns:
      (C' * 5J',) int64 source columns, in the new layout's order: ``new[..., n] = source[..., columns[n]]``.
    """
    class_index = np.asarray(class_index, np.int64)
    joint_index = np.asarray(joint_index, np.int64)
    js, jt = int(source_num_joints), joint_index.size
    source_joint = joint_index[block_joints(jt)]
    is_2d = np.arange(COORDS_PER_JOINT * jt) < 2 * jt
    coordinate = np.concatenate([np.tile([0, 1], jt), np.tile([0, 1, 2], jt)])
    in_block = np.where(is_2d, 2 * source_joint + coordinate, 2 * js + 3 * source_joint + coordinate)
    return (class_index[:, None] * block_size(js) + in_block[None, :]).reshape(-1)


def pack_block(delta2d, delta3d) -> tf.Tensor:
    """(..., J, 2) and (..., J, 3) -> (..., 5J) in the block layout (2D first, then 3D, joint-major)."""
    delta2d = tf.convert_to_tensor(delta2d)
    delta3d = tf.convert_to_tensor(delta3d, dtype=delta2d.dtype)
    lead = tf.shape(delta2d)[:-2]
    flat2d = tf.reshape(delta2d, tf.concat([lead, [-1]], axis=0))
    flat3d = tf.reshape(delta3d, tf.concat([lead, [-1]], axis=0))
    return tf.concat([flat2d, flat3d], axis=-1)


def unpack_block(block, num_joints: int = DEFAULT_NUM_JOINTS) -> Tuple[tf.Tensor, tf.Tensor]:
    """(..., 5J) -> ((..., J, 2) 2D values, (..., J, 3) 3D values); inverse of :func:`pack_block`."""
    block = tf.convert_to_tensor(block)
    j = int(num_joints)
    _check_last_dim(block, block_size(j), "block")
    lead = tf.shape(block)[:-1]
    d2 = tf.reshape(block[..., :2 * j], tf.concat([lead, [j, 2]], axis=0))
    d3 = tf.reshape(block[..., 2 * j:], tf.concat([lead, [j, 3]], axis=0))
    return d2, d3


def _check_last_dim(tensor: tf.Tensor, expected: int, name: str) -> None:
    last = tensor.shape[-1]
    if last is not None and last != expected:
        raise ValueError(f"{name} has last dimension {last}, expected {expected}")


def _anchor_rows(anchors, classes, dtype) -> Tuple[tf.Tensor, tf.Tensor]:
    """Anchor-pose rows of ``classes`` (row ``c - 1``), zeroed for class 0; and the foreground mask."""
    anchors = tf.convert_to_tensor(anchors, dtype=dtype)
    classes = tf.cast(classes, tf.int32)
    foreground = classes > 0
    rows = tf.gather(anchors, tf.maximum(classes - 1, 0))
    rows = tf.where(foreground[..., None, None], rows, tf.zeros_like(rows))
    return rows, foreground


def normalise_to_boxes(pose2d, boxes) -> tf.Tensor:
    """(..., J, 2) pixels and (..., 4) xyxy pixel boxes -> (..., J, 2) box-normalised coordinates.

    A box of zero width (height) gives 0 for x (y) rather than inf or NaN; such a box overlaps nothing,
    so it is never a positive RoI whose target matters.
    """
    pose2d = tf.convert_to_tensor(pose2d)
    boxes = tf.convert_to_tensor(boxes, dtype=pose2d.dtype)[..., None, :]
    return tf.math.divide_no_nan(pose2d - boxes[..., :2], boxes[..., 2:] - boxes[..., :2])


def encode_pose_targets(pose2d, pose3d, boxes, classes, anchors2d, anchors3d) -> tf.Tensor:
    """Regression targets ``t_c = (p~ - a~_c, P - A_c)`` in the block layout (Sec 3.1).

    Any number of leading dimensions ``...`` (written N below) is accepted, the same for every input.

    Args:
      pose2d: (N, J, 2) float, pixels (x right, y down): the ground-truth 2D pose.
      pose3d: (N, J, 3) float, metres, camera axes, body-centred: the ground-truth 3D pose.
      boxes: (N, 4) xyxy pixels: the box the pose is encoded in (for training, the RoI's box).
      classes: (N,) int in ``0..2K``: the class whose anchor-pose is subtracted; class 0 (background)
        gives an all-zero row.
      anchors2d: (2K, J, 2) box-normalised anchor-poses (row ``c - 1`` for class ``c``).
      anchors3d: (2K, J, 3) metres.
    Returns:
      (N, 5J) float32 targets (layout in the module docstring).
    """
    pose2d = tf.cast(pose2d, tf.float32)
    pose3d = tf.cast(pose3d, tf.float32)
    a2, foreground = _anchor_rows(anchors2d, classes, tf.float32)
    a3, _ = _anchor_rows(anchors3d, classes, tf.float32)
    delta2d = normalise_to_boxes(pose2d, tf.cast(boxes, tf.float32)) - a2
    delta3d = pose3d - a3
    block = pack_block(delta2d, delta3d)
    return tf.where(foreground[..., None], block, tf.zeros_like(block))


def decode_poses(deltas, boxes, classes, anchors2d, anchors3d) -> Tuple[tf.Tensor, tf.Tensor]:
    """Poses of regression blocks: 2D = box corner + (anchor + delta) * box size, 3D = anchor + delta.

    Any number of leading dimensions ``...`` (written N below, e.g. (B, R)) is accepted.

    Args:
      deltas: (N, C', 5J) regression blocks, one per candidate class (block layout of this module).
      boxes: (N, 4) xyxy pixels, the RoI boxes (shared by the C' blocks of a row).
      classes: (N, C') int in ``1..2K``: the class of each block. Class 0 (background) has no anchor:
        its block decodes with a zero anchor-pose (callers decode foreground classes only).
      anchors2d: (2K, J, 2) box-normalised. anchors3d: (2K, J, 3) metres.
    Returns:
      pose2d (N, C', J, 2) float32 pixels (x right, y down, image origin top-left) and
      pose3d (N, C', J, 3) float32 metres (camera axes, body-centred).
    """
    deltas = tf.cast(deltas, tf.float32)
    anchors2d = tf.convert_to_tensor(anchors2d, tf.float32)
    num_joints = anchors2d.shape[-2]
    d2, d3 = unpack_block(deltas, num_joints)
    a2, _ = _anchor_rows(anchors2d, classes, tf.float32)
    a3, _ = _anchor_rows(anchors3d, classes, tf.float32)
    boxes = tf.cast(boxes, tf.float32)[..., None, None, :]
    corner, size = boxes[..., :2], boxes[..., 2:] - boxes[..., :2]
    return corner + (a2 + d2) * size, a3 + d3


def select_class_block(regression, classes, num_joints: int = DEFAULT_NUM_JOINTS) -> tf.Tensor:
    """The block of one class per row: ``regression[..., c * 5J : (c + 1) * 5J]``.

    Args:
      regression: (N, C * 5J) regression outputs (any number of leading dimensions, e.g. (B, R)).
      classes: (N,) int in ``0..C-1``, same leading dimensions.
      num_joints: J.
    Returns:
      (N, 5J), the dtype of ``regression``.
    """
    regression = tf.convert_to_tensor(regression)
    classes = tf.cast(classes, tf.int32)
    width = block_size(num_joints)
    last = regression.shape[-1]
    if last is not None and last % width:
        raise ValueError(f"regression has last dimension {last}, not a multiple of 5J = {width}")
    lead = tf.shape(regression)[:-1]
    blocks = tf.reshape(regression, tf.concat([lead, [-1, width]], axis=0))
    rank = classes.shape.rank
    if rank is None:
        raise ValueError("classes must have a known rank")
    return tf.gather(blocks, classes[..., None], batch_dims=rank)[..., 0, :]


def pose_boxes(pose2d, mask=None, margin: float = geometry.POSE_BOX_MARGIN,
               min_aspect: float = geometry.MIN_BOX_ASPECT, fill: float = 0.0) -> tf.Tensor:
    """Pose boxes in TensorFlow, as :func:`lcr_tf.contracts.geometry.pose_box`.

    The tight box of the masked joints; each side made at least ``min_aspect`` times the other (about the
    centre), then grown by ``margin`` times its size on each side.

    Args:
      pose2d: (..., J, 2) float pixels.
      mask: (..., J) bool, the joints to box; None: the finite joints.
      margin: fraction of the size added on each side (default: the paper's 10%).
      min_aspect: minimum ratio of a side to the other.
      fill: the value of every coordinate of the box of a pose with no masked joint. The NumPy function
        gives NaN there; 0 (an empty box, IoU 0 with everything) keeps padded people harmless in a graph.
    Returns:
      (..., 4) float32 xyxy pixels.
    """
    pose2d = tf.cast(pose2d, tf.float32)
    finite = tf.reduce_all(tf.math.is_finite(pose2d), axis=-1)
    mask = finite if mask is None else tf.logical_and(tf.cast(mask, tf.bool), finite)
    m = mask[..., None]
    inf = tf.constant(np.inf, tf.float32)
    lo = tf.reduce_min(tf.where(m, pose2d, inf), axis=-2)
    hi = tf.reduce_max(tf.where(m, pose2d, -inf), axis=-2)
    any_joint = tf.reduce_any(mask, axis=-1)[..., None]
    # Replace the +-inf of empty poses before arithmetic so no NaN is ever formed (and no NaN gradient).
    lo = tf.where(any_joint, lo, 0.0)
    hi = tf.where(any_joint, hi, 0.0)
    centre = 0.5 * (lo + hi)
    size = hi - lo
    size = tf.maximum(size, min_aspect * tf.reverse(size, axis=[-1]))
    size = size * (1.0 + 2.0 * margin)
    box = tf.concat([centre - 0.5 * size, centre + 0.5 * size], axis=-1)
    return tf.where(any_joint, box, tf.cast(fill, tf.float32))


def upper_body_boxes(pose2d, mask=None, skeleton="lcr13", margin: float = geometry.POSE_BOX_MARGIN,
                     min_aspect: float = geometry.MIN_BOX_ASPECT, fill: float = 0.0) -> tf.Tensor:
    """Upper-body pose boxes (Sec 4.2), as :func:`lcr_tf.contracts.geometry.upper_body_box`.

    The :func:`pose_boxes` of the masked joints that are not knees or ankles
    (:attr:`lcr_tf.contracts.skeleton.Skeleton.upper_body`). Shapes as in :func:`pose_boxes`.
    """
    skel = skeleton_lib.get_skeleton(skeleton)
    pose2d = tf.convert_to_tensor(pose2d)
    j = pose2d.shape[-2]
    if j is not None and j != skel.num_joints:
        raise ValueError(f"pose2d has {j} joints but skeleton {skel.name!r} has {skel.num_joints}")
    upper = np.zeros(skel.num_joints, bool)
    upper[skel.upper_body] = True
    upper = tf.constant(upper)
    mask = upper if mask is None else tf.logical_and(tf.cast(mask, tf.bool), upper)
    mask = tf.broadcast_to(mask, tf.shape(pose2d)[:-1])
    return pose_boxes(pose2d, mask, margin=margin, min_aspect=min_aspect, fill=fill)
