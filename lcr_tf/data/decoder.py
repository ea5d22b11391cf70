"""Decoding one serialized ``tf.train.Example`` of the training shards into a dict of tensors.

The record schema (feature keys, types, meanings) is :mod:`lcr_tf.contracts.features`; this module reads it through
:func:`lcr_tf.contracts.features.parse_example` and never spells a feature key. What it returns is the *element*
of the input pipeline, keyed by the constants below, which :mod:`lcr_tf.data.augment` and
:mod:`lcr_tf.data.pipeline` transform and batch.

Element of one image with P people (P >= 0) and R ignore regions (R >= 0), in the joint order of the
skeleton the reader expects (J joints; :data:`lcr_tf.contracts.skeleton.LCR13` by default, J = 13; the
records' ``schema/skeleton`` must name the same one):

======================  ===============  ==================================================================
key                     shape, dtype     meaning
======================  ===============  ==================================================================
``image``               (H, W, 3) uint8  RGB (grayscale is promoted to 3 channels); after augmentation
                                         (S, S, 3) float32 in [0, 255]
``image_id``            () string        id within its source dataset
``image_source``        () string        dataset name
``source_file``         () string        shard the record came from ('' when unknown)
``original_size``       (2,) int32       [height, width] of the decoded image in pixels
``intrinsics``          (4,) float32     fx, fy, cx, cy in pixels of the current image; all 0 when unknown
``transform``           (4,) float32     [sx, sy, tx, ty]: a point (x, y) of the decoded image is at
                                         (sx * x + tx, sy * y + ty) in the current image (identity here;
                                         sx < 0 after a horizontal flip)
``num_people``          () int32         P in the record
``boxes``               (P, 4) float32   pose boxes xyxy, pixels of the current image
``pose2d``              (P, J, 2) f32    pixels (x right, y down, origin top-left), complete (no NaN)
``annotated``           (P, J) bool      the dataset annotates the joint
``visible``             (P, J) bool      the joint is seen (inside the image and not occluded)
``completed``           (P, J) bool      the joint was filled in from the pseudo ground truth
``pose3d``              (P, J, 3) f32    metres, camera axes (x right, y down, z away), body-centred
``pose3d_source``       (P,) int32       :data:`lcr_tf.contracts.features.POSE3D_MOCAP` or ``POSE3D_PSEUDO_GT``
``pseudo_gt_distance``  (P,) float32     eq-9 match distance (0 for MoCap 3D)
``anchor_class``        (P,) int32       1..2K in the layout of :mod:`lcr_tf.poses.anchors`; -1 "to be
                                         assigned" (see :func:`lcr_tf.data.augment.flip_horizontal`); 0
                                         in records built without anchors (never assigned)
``ignore_boxes``        (R, 4) float32   regions of unannotated people (COCO crowds, people with too few
                                         joints) xyxy pixels of the current image, x1 < x2, y1 < y2
======================  ===============  ==================================================================

Pixel convention: continuous coordinates in which pixel ``(i, j)`` (column i, row j) covers
``[i, i + 1) x [j, j + 1)``; its centre is at ``(i + 0.5, j + 0.5)``. The image spans ``[0, W] x [0, H]``.

Errors: a record of a schema version this reader does not read, in another skeleton than the expected
one, whose per-person fields disagree with its people count, or whose image does not have the declared
height and width fails with ``tf.errors.InvalidArgumentError``
whose message names the shard and the image id. Bytes that are not an Example, or an image that cannot
be decoded, fail with TensorFlow's own message; :func:`lcr_tf.data.pipeline.verify_shards` names the
file and record for those.
"""

from __future__ import annotations

from typing import Dict

import tensorflow as tf

from lcr_tf.contracts import batch_keys, features
from lcr_tf.contracts import skeleton as skeleton_lib

# Element key -> (record feature key, element dtype), for the per-person fields.
_PERSON_SOURCES = {
    batch_keys.BOXES: (features.BOX, tf.float32),
    batch_keys.POSE2D: (features.POSE2D, tf.float32),
    batch_keys.ANNOTATED: (features.ANNOTATED, tf.bool),
    batch_keys.VISIBLE: (features.VISIBLE, tf.bool),
    batch_keys.COMPLETED: (features.COMPLETED, tf.bool),
    batch_keys.POSE3D: (features.POSE3D, tf.float32),
    batch_keys.POSE3D_SOURCE: (features.POSE3D_SOURCE, tf.int32),
    batch_keys.PSEUDO_GT_DISTANCE: (features.PSEUDO_GT_DISTANCE, tf.float32),
    batch_keys.ANCHOR_CLASS: (features.ANCHOR_CLASS, tf.int32),
}
#: The per-person keys of an element: their first dimension is the person axis.

IDENTITY_TRANSFORM = (1.0, 1.0, 0.0, 0.0)


def error_message(template: str, *values) -> tf.Tensor:
    """A scalar tf.string: ``template`` with each ``{}`` replaced by one of ``values``.

    String tensors are inserted as they are (``tf.strings.format`` would quote them); numbers and
    numeric tensors as ``tf.strings.format`` prints them (e.g. ``[41 60]``).
    """
    pieces = template.split("{}")
    if len(pieces) != len(values) + 1:
        raise ValueError(f"template {template!r} has {len(pieces) - 1} placeholders, "
                         f"got {len(values)} values")
    parts = [pieces[0]]
    for value, piece in zip(values, pieces[1:]):
        value = tf.convert_to_tensor(value)
        parts.append(value if value.dtype == tf.string else tf.strings.format("{}", value, summarize=-1))
        parts.append(piece)
    return tf.strings.join(parts)


def _where(source_file, image_id):
    """A scalar string naming the record in error messages."""
    return error_message("{}: image {}", source_file, image_id)


def decode(serialized, source_file=None, skeleton=features.DEFAULT_SKELETON) -> Dict[str, tf.Tensor]:
    """One serialized Example -> the element dict of the module docstring.

    Works eagerly and inside ``tf.data`` / ``tf.function`` graphs.

    Args:
      serialized: scalar tf.string, a serialized ``tf.train.Example`` in the :mod:`lcr_tf.contracts.features`
        schema.
      source_file: scalar tf.string naming the shard, used in error messages and kept in the element;
        '' when None.
      skeleton: the joint set the caller expects (name or :class:`lcr_tf.contracts.skeleton.Skeleton`):
        its J shapes the per-person tensors.
    Returns:
      The element dict (P >= 0 people of J joints and R >= 0 ignore regions, image H x W as decoded).
    Raises:
      tf.errors.InvalidArgumentError: a schema version this reader does not read, a record in another
        skeleton (message names the shard, the image id and both skeletons), inconsistent people counts, an
        image whose size differs from the declared one (message names the shard and image id); unparsable
        bytes or undecodable image bytes (TensorFlow's message).
    """
    skel = skeleton_lib.get_skeleton(skeleton)
    serialized = tf.convert_to_tensor(serialized, tf.string)
    source_file = tf.constant("", tf.string) if source_file is None else tf.convert_to_tensor(
        source_file, tf.string)
    # Read the version, the skeleton (and the id for the message) first, with defaults, so that a record
    # of another version or joint set is refused with the shard named, before the full parse trips over
    # changed keys or reshapes 14-joint people into 13-joint ones.
    head = tf.io.parse_single_example(serialized, {
        features.VERSION: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        features.IMAGE_ID: tf.io.FixedLenFeature([], tf.string, default_value="?"),
        features.SKELETON: tf.io.FixedLenFeature([], tf.string, default_value=features.DEFAULT_SKELETON),
    })
    version = head[features.VERSION]
    where = _where(source_file, head[features.IMAGE_ID])
    version_ok = tf.debugging.Assert(
        tf.reduce_any(tf.equal(version, tf.constant(features.READABLE_VERSIONS, tf.int64))),
        [error_message("{}: TFRecord schema version {} (-1: missing), this reader reads versions {}",
                       where, version, ", ".join(map(str, features.READABLE_VERSIONS)))])
    with tf.control_dependencies([version_ok]):
        skeleton_ok = tf.debugging.Assert(
            tf.equal(head[features.SKELETON], skel.name),
            [error_message("{}: the record's people are in skeleton {} ({}), the reader expects skeleton {} "
                           "({} joints): build the records with --skeleton={} or train with anchors of the "
                           "records' skeleton", where, head[features.SKELETON], features.SKELETON, skel.name,
                           skel.num_joints, skel.name)])
    with tf.control_dependencies([version_ok, skeleton_ok]):
        parsed = features.parse_example(serialized, skel.num_joints)

    num_people = tf.cast(parsed[features.NUM_PEOPLE], tf.int32)
    checks = []
    for key, (feature_key, _) in _PERSON_SOURCES.items():
        count = tf.shape(parsed[feature_key])[0]
        checks.append(tf.debugging.Assert(
            tf.equal(count, num_people),
            [error_message("{}: field {} holds {} people, the record declares {}",
                           where, feature_key, count, num_people)]))

    image = tf.io.decode_image(parsed[features.IMAGE_ENCODED], channels=3, dtype=tf.uint8,
                               expand_animations=False)
    image.set_shape([None, None, 3])
    size = tf.shape(image)[:2]
    declared = tf.cast(tf.stack([parsed[features.IMAGE_HEIGHT], parsed[features.IMAGE_WIDTH]]), tf.int32)
    checks.append(tf.debugging.Assert(
        tf.reduce_all(tf.equal(size, declared)),
        [error_message("{}: the image decodes to height x width {}, the record declares {}",
                       where, size, declared)]))

    with tf.control_dependencies(checks):
        out = {
            batch_keys.IMAGE: tf.identity(image),
            batch_keys.IMAGE_ID: tf.identity(parsed[features.IMAGE_ID]),
            batch_keys.IMAGE_SOURCE: parsed[features.IMAGE_SOURCE],
            batch_keys.SOURCE_FILE: source_file,
            batch_keys.ORIGINAL_SIZE: size,
            batch_keys.INTRINSICS: tf.cast(parsed[features.INTRINSICS], tf.float32),
            batch_keys.TRANSFORM: tf.constant(IDENTITY_TRANSFORM, tf.float32),
            batch_keys.NUM_PEOPLE: num_people,
            batch_keys.IGNORE_BOXES: tf.identity(parsed[features.IGNORE_BOXES]),
        }
    for key, (feature_key, dtype) in _PERSON_SOURCES.items():
        value = parsed[feature_key]
        out[key] = tf.not_equal(value, 0) if dtype == tf.bool else tf.cast(value, dtype)
    return out

