"""The ``tf.train.Example`` schema of the training data: feature keys and parse spec, defined once.

Written by ``beam_jobs.build_tfrecords`` and read by :mod:`lcr_tf.data`; nothing else spells a key.

One Example is one image with its P people (P >= 0), all in the LCR-13 joint order
(:data:`lcr_tf.contracts.skeleton.LCR13`, J = 13), and its R ignore regions (R >= 0). Per-person fields are
flattened person-major into one list: ``person/pose2d`` holds P * J * 2 floats, i.e. ``reshape(P, J, 2)``
gives them back; ``image/ignore_boxes`` likewise holds R * 4 floats. An image without people (P = 0: a
background image, or one whose people are all ignore regions) has every per-person list empty; readers
give fields of leading size 0.

=============================  =========  ============  ==============================================
key                            type       length        meaning
=============================  =========  ============  ==============================================
schema/version                 int64      1             :data:`SCHEMA_VERSION`
image/encoded                  bytes      1             the image file's bytes (JPEG or PNG)
image/format                   bytes      1             ``jpeg`` or ``png``
image/id                       bytes      1             unique id within its source dataset
image/source                   bytes      1             dataset name (``synthetic``, ``coco``, ...)
image/height, image/width      int64      1             pixels
image/intrinsics               float      4             fx, fy, cx, cy in pixels; all 0 when unknown
image/num_people               int64      1             P
image/num_ignore               int64      1             R
image/ignore_boxes             float      R * 4         regions of unannotated people (COCO crowds, ...)
                                                        xyxy pixels inside the image, x1 < x2, y1 < y2:
                                                        a detection there is neither a true nor a false
                                                        positive
person/box                     float      P * 4         pose box (Sec 3.1) xyxy pixels, of all J joints
person/pose2d                  float      P * J * 2     pixels (x right, y down), completed: no NaN
person/annotated               int64      P * J         1 where the dataset annotates the joint
person/completed               int64      P * J         1 where the joint was filled from pseudo-GT
person/visible                 int64      P * J         1 where the joint is seen (in the image and not
                                                        occluded), as far as the dataset knows
person/pose3d                  float      P * J * 3     metres, camera axes, body-centred
person/pose3d_source           int64      P             :data:`POSE3D_MOCAP` or :data:`POSE3D_PSEUDO_GT`
person/pseudo_gt_distance      float      P             eq-9 match distance (0 for MoCap 3D)
person/anchor_class            int64      P             1..2K (:mod:`lcr_tf.poses.anchors` layout)
=============================  =========  ============  ==============================================

Bump :data:`SCHEMA_VERSION` whenever a key, a type or a meaning changes; readers refuse other versions.
Version 2 added ``image/num_ignore`` and ``image/ignore_boxes``. Records with P = 0 are version 2 too:
the on-disk format always allowed empty lists, only :func:`encode_example` used to refuse them, and every
version-2 reader reads them.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib

SCHEMA_VERSION = 2
NUM_JOINTS = skeleton_lib.LCR13.num_joints

POSE3D_MOCAP = 0
POSE3D_PSEUDO_GT = 1

VERSION = "schema/version"
IMAGE_ENCODED = "image/encoded"
IMAGE_FORMAT = "image/format"
IMAGE_ID = "image/id"
IMAGE_SOURCE = "image/source"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
INTRINSICS = "image/intrinsics"
NUM_PEOPLE = "image/num_people"
NUM_IGNORE = "image/num_ignore"
IGNORE_BOXES = "image/ignore_boxes"
BOX = "person/box"
POSE2D = "person/pose2d"
ANNOTATED = "person/annotated"
COMPLETED = "person/completed"
VISIBLE = "person/visible"
POSE3D = "person/pose3d"
POSE3D_SOURCE = "person/pose3d_source"
PSEUDO_GT_DISTANCE = "person/pseudo_gt_distance"
ANCHOR_CLASS = "person/anchor_class"

_BYTES_SCALARS = (IMAGE_ENCODED, IMAGE_FORMAT, IMAGE_ID, IMAGE_SOURCE)
_INT_SCALARS = (VERSION, IMAGE_HEIGHT, IMAGE_WIDTH, NUM_PEOPLE, NUM_IGNORE)
# Per-person fields: key -> (trailing shape per person, numpy dtype).
PERSON_FIELDS: Dict[str, tuple] = {
    BOX: ((4,), np.float32),
    POSE2D: ((NUM_JOINTS, 2), np.float32),
    ANNOTATED: ((NUM_JOINTS,), np.int64),
    COMPLETED: ((NUM_JOINTS,), np.int64),
    VISIBLE: ((NUM_JOINTS,), np.int64),
    POSE3D: ((NUM_JOINTS, 3), np.float32),
    POSE3D_SOURCE: ((), np.int64),
    PSEUDO_GT_DISTANCE: ((), np.float32),
    ANCHOR_CLASS: ((), np.int64),
}
IMAGE_FORMATS = ("jpeg", "png")


def encode_example(record: Mapping[str, Any]):
    """A dict keyed by the constants above (numpy arrays of the shapes in the table) -> tf.train.Example.

    ``INTRINSICS`` may be omitted or None (unknown). ``IGNORE_BOXES`` ((R, 4) xyxy pixels) may be omitted
    or None (no region). ``VERSION``, ``NUM_PEOPLE`` and ``NUM_IGNORE`` are filled in. An image without
    people gives every per-person field with no element (shape (0, ...), or any empty array such as
    ``[]``).
    Raises ValueError naming the field and the image id when a field is missing or mis-shaped, or holds
    NaN / inf, or an ignore box is empty or reversed (x2 <= x1 or y2 <= y1).
    """
    from tensorflow.core.example import example_pb2, feature_pb2  # protobuf only: cheap in Beam workers

    image_id = _text(record.get(IMAGE_ID, b"?"))
    where = f"image {image_id!r}"
    people = None
    arrays = {}
    for key, (shape, dtype) in PERSON_FIELDS.items():
        if key not in record:
            raise ValueError(f"{where}: field {key!r} is missing")
        a = np.asarray(record[key], dtype=dtype)
        if a.size == 0 and a.ndim:
            a = a.reshape((0,) + shape)     # [] for "no person", whatever the field's trailing shape
        if people is None:
            people = a.shape[0] if a.ndim else -1
        if a.shape != (people,) + shape:
            raise ValueError(f"{where}: field {key!r} has shape {a.shape}, expected ({people}, "
                             f"{', '.join(map(str, shape))})".replace(", )", ")"))
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ValueError(f"{where}: field {key!r} holds NaN or inf")
        arrays[key] = a
    fmt = _text(record.get(IMAGE_FORMAT, b""))
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"{where}: field {IMAGE_FORMAT!r} is {fmt!r}, expected one of {IMAGE_FORMATS}")
    intrinsics = record.get(INTRINSICS)
    intrinsics = np.zeros(4, np.float32) if intrinsics is None else np.asarray(intrinsics, np.float32)
    if intrinsics.shape != (4,) or not np.all(np.isfinite(intrinsics)):
        raise ValueError(f"{where}: field {INTRINSICS!r} must be 4 finite numbers, got {intrinsics}")
    ignore = record.get(IGNORE_BOXES)
    try:
        ignore = np.zeros((0, 4), np.float32) if ignore is None else np.asarray(ignore, np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: field {IGNORE_BOXES!r} is not an (R, 4) array of numbers: {e}") from None
    if ignore.size == 0:
        ignore = ignore.reshape(0, 4)
    if ignore.ndim != 2 or ignore.shape[1] != 4:
        raise ValueError(f"{where}: field {IGNORE_BOXES!r} has shape {ignore.shape}, expected (R, 4)")
    if not np.all(np.isfinite(ignore)):
        raise ValueError(f"{where}: field {IGNORE_BOXES!r} holds NaN or inf")
    flat = ~np.all(ignore[:, 2:] > ignore[:, :2], axis=1)
    if flat.any():
        raise ValueError(f"{where}: field {IGNORE_BOXES!r} box {int(np.argmax(flat))} "
                         f"{ignore[np.argmax(flat)].tolist()} is empty or reversed (needs x1 < x2, y1 < y2)")

    feature = {}

    def put_bytes(key, value):
        feature[key] = feature_pb2.Feature(bytes_list=feature_pb2.BytesList(value=[_bytes(value)]))

    def put_ints(key, values):
        feature[key] = feature_pb2.Feature(int64_list=feature_pb2.Int64List(value=np.ravel(values).tolist()))

    def put_floats(key, values):
        feature[key] = feature_pb2.Feature(float_list=feature_pb2.FloatList(value=np.ravel(values).tolist()))

    for key in _BYTES_SCALARS:
        if key not in record:
            raise ValueError(f"{where}: field {key!r} is missing")
        put_bytes(key, record[key])
    for key in (IMAGE_HEIGHT, IMAGE_WIDTH):
        if key not in record or int(record[key]) < 1:
            raise ValueError(f"{where}: field {key!r} must be a positive integer")
        put_ints(key, [int(record[key])])
    put_ints(VERSION, [SCHEMA_VERSION])
    put_ints(NUM_PEOPLE, [people])
    put_ints(NUM_IGNORE, [ignore.shape[0]])
    put_floats(INTRINSICS, intrinsics)
    put_floats(IGNORE_BOXES, ignore)
    for key, a in arrays.items():
        (put_floats if a.dtype.kind == "f" else put_ints)(key, a)
    return example_pb2.Example(features=feature_pb2.Features(feature=feature))


def parse_spec() -> Dict[str, Any]:
    """The ``tf.io.parse_single_example`` spec of the schema."""
    import tensorflow as tf
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in _BYTES_SCALARS}
    spec.update({k: tf.io.FixedLenFeature([], tf.int64) for k in _INT_SCALARS})
    spec[INTRINSICS] = tf.io.FixedLenFeature([4], tf.float32)
    spec[IGNORE_BOXES] = tf.io.VarLenFeature(tf.float32)
    for key, (_, dtype) in PERSON_FIELDS.items():
        spec[key] = tf.io.VarLenFeature(tf.float32 if np.dtype(dtype).kind == "f" else tf.int64)
    return spec


def parse_example(serialized):
    """Serialized Example (scalar tf.string) -> dict of tensors; per-person fields reshaped to
    (P, ...) as in :data:`PERSON_FIELDS`, ``IGNORE_BOXES`` to (R, 4) float32 (R may be 0). Fails
    (``tf.errors.InvalidArgumentError``) on another schema version, or when ``NUM_IGNORE`` disagrees with
    the boxes."""
    import tensorflow as tf
    parsed = tf.io.parse_single_example(serialized, parse_spec())
    version_ok = tf.debugging.assert_equal(
        parsed[VERSION], tf.constant(SCHEMA_VERSION, tf.int64),
        message=f"TFRecord schema version differs from this reader's ({SCHEMA_VERSION})")
    out = {}
    with tf.control_dependencies([version_ok]):
        for key in _BYTES_SCALARS + _INT_SCALARS + (INTRINSICS,):
            out[key] = tf.identity(parsed[key])
    for key, (shape, _) in PERSON_FIELDS.items():
        dense = tf.sparse.to_dense(parsed[key])
        out[key] = tf.reshape(dense, (-1,) + tuple(shape))
    boxes = tf.sparse.to_dense(parsed[IGNORE_BOXES])
    boxes_ok = tf.debugging.assert_equal(
        tf.size(boxes, out_type=tf.int64), 4 * parsed[NUM_IGNORE],
        message=f"{IGNORE_BOXES} does not hold 4 numbers per region of {NUM_IGNORE}")
    with tf.control_dependencies([boxes_ok]):
        out[IGNORE_BOXES] = tf.reshape(boxes, (-1, 4))
    return out


def decode_example_numpy(serialized: bytes) -> Dict[str, Any]:
    """Pure-numpy decoding of one serialized Example (tests, tools): the same dict as
    :func:`parse_example`, with numpy arrays and Python bytes/ints."""
    from tensorflow.core.example import example_pb2
    ex = example_pb2.Example.FromString(serialized)
    f = ex.features.feature
    version = f[VERSION].int64_list.value[0]
    if version != SCHEMA_VERSION:
        raise ValueError(f"TFRecord schema version {version}, this reader reads {SCHEMA_VERSION}")
    out: Dict[str, Any] = {k: f[k].bytes_list.value[0] for k in _BYTES_SCALARS}
    out.update({k: int(f[k].int64_list.value[0]) for k in _INT_SCALARS})
    out[INTRINSICS] = np.asarray(f[INTRINSICS].float_list.value, np.float32)
    for key, (shape, dtype) in PERSON_FIELDS.items():
        values = (f[key].float_list.value if np.dtype(dtype).kind == "f" else f[key].int64_list.value)
        out[key] = np.asarray(values, dtype).reshape((-1,) + tuple(shape))
    boxes = np.asarray(f[IGNORE_BOXES].float_list.value, np.float32)
    if boxes.size != 4 * out[NUM_IGNORE]:
        raise ValueError(f"image {_text(out[IMAGE_ID])!r}: field {IGNORE_BOXES!r} holds {boxes.size} numbers, "
                         f"expected 4 per region of {NUM_IGNORE}={out[NUM_IGNORE]}")
    out[IGNORE_BOXES] = boxes.reshape(-1, 4)
    return out


def _bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
