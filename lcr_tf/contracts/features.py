"""The ``tf.train.Example`` schema of the training data: feature keys and parse spec, defined once.

Written by ``beam_jobs.build_tfrecords`` and read by :mod:`lcr_tf.data`; nothing else spells a key.

One Example is one image with its P people (P >= 0), all in the joint order of one skeleton of
:mod:`lcr_tf.contracts.skeleton` named by ``schema/skeleton`` (J = its joint count: 13 for ``lcr13``, 14
for ``mupots14``), and its R ignore regions (R >= 0). Per-person fields are flattened person-major into
one list: ``person/pose2d`` holds P * J * 2 floats, i.e. ``reshape(P, J, 2)`` gives them back;
``image/ignore_boxes`` likewise holds R * 4 floats. An image without people (P = 0: a background image,
or one whose people are all ignore regions) has every per-person list empty; readers give fields of
leading size 0.

=============================  =========  ============  ==============================================
key                            type       length        meaning
=============================  =========  ============  ==============================================
schema/version                 int64      1             :data:`SCHEMA_VERSION`
schema/skeleton                bytes      1             joint set of the per-person fields (a
                                                        :mod:`lcr_tf.contracts.skeleton` name)
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
person/anchor_class            int64      P             1..2K (:mod:`lcr_tf.poses.anchors` layout), or
                                                        :data:`UNASSIGNED_CLASS` (0) in records built
                                                        without an anchor set
=============================  =========  ============  ==============================================

Bump :data:`SCHEMA_VERSION` whenever a key, a type or a meaning changes; readers refuse the versions
that are not in :data:`READABLE_VERSIONS`. Version 2 added ``image/num_ignore`` and ``image/ignore_boxes``.
Records with P = 0 are version 2 too: the on-disk format always allowed empty lists, only
:func:`encode_example` used to refuse them, and every version-2 reader reads them. Version 3 added
``schema/skeleton`` (before it, every record was LCR-13: a version-2 record reads as
:data:`DEFAULT_SKELETON`) and the anchor class :data:`UNASSIGNED_CLASS`: the trainer recomputes every
class from its own anchor set anyway, so records of a new skeleton can be written before anchor-poses of
that skeleton exist (they are clustered from the records' 3D poses). A reader of version 2 refuses
version-3 records instead of reading 14-joint people as 13-joint ones.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib

SCHEMA_VERSION = 3
#: The versions this reader reads: version 2 (always LCR-13) and the current one.
READABLE_VERSIONS = (2, SCHEMA_VERSION)
#: The skeleton of records without ``schema/skeleton`` (version 2), and of :func:`encode_example`'s records
#: that name none.
DEFAULT_SKELETON = skeleton_lib.LCR13.name
#: J of :data:`DEFAULT_SKELETON`; :data:`PERSON_FIELDS` is its layout.
NUM_JOINTS = skeleton_lib.LCR13.num_joints
#: ``person/anchor_class`` of a person whose class the build did not assign (no anchor set given).
UNASSIGNED_CLASS = 0

POSE3D_MOCAP = 0
POSE3D_PSEUDO_GT = 1

VERSION = "schema/version"
SKELETON = "schema/skeleton"
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


def person_fields(num_joints: int) -> Dict[str, tuple]:
    """The per-person fields of records of J = ``num_joints`` joints: key -> (trailing shape per person,
    numpy dtype)."""
    j = int(num_joints)
    return {
        BOX: ((4,), np.float32),
        POSE2D: ((j, 2), np.float32),
        ANNOTATED: ((j,), np.int64),
        COMPLETED: ((j,), np.int64),
        VISIBLE: ((j,), np.int64),
        POSE3D: ((j, 3), np.float32),
        POSE3D_SOURCE: ((), np.int64),
        PSEUDO_GT_DISTANCE: ((), np.float32),
        ANCHOR_CLASS: ((), np.int64),
    }


#: The per-person fields of :data:`DEFAULT_SKELETON` records.
PERSON_FIELDS: Dict[str, tuple] = person_fields(NUM_JOINTS)
IMAGE_FORMATS = ("jpeg", "png")


def skeleton_of(name) -> skeleton_lib.Skeleton:
    """The skeleton a record names (str or bytes); ValueError naming the known ones for another name."""
    name = _text(name)
    if name not in skeleton_lib.SKELETONS:
        raise ValueError(f"field {SKELETON!r} is {name!r}, not a known skeleton ({sorted(skeleton_lib.SKELETONS)})")
    return skeleton_lib.SKELETONS[name]


def encode_example(record: Mapping[str, Any]):
    """A dict keyed by the constants above (numpy arrays of the shapes in the table) -> tf.train.Example.

    ``SKELETON`` (a skeleton name) may be omitted: :data:`DEFAULT_SKELETON`; its J sets the per-person
    shapes. ``INTRINSICS`` may be omitted or None (unknown). ``IGNORE_BOXES`` ((R, 4) xyxy pixels) may be omitted
    or None (no region). ``VERSION``, ``NUM_PEOPLE`` and ``NUM_IGNORE`` are filled in. An image without
    people gives every per-person field with no element (shape (0, ...), or any empty array such as
    ``[]``).
    Raises ValueError naming the field and the image id when a field is missing or mis-shaped, or holds
    NaN / inf, or an ignore box is empty or reversed (x2 <= x1 or y2 <= y1), or the skeleton is unknown.
    """
    from tensorflow.core.example import example_pb2, feature_pb2  # protobuf only: cheap in Beam workers

    image_id = _text(record.get(IMAGE_ID, b"?"))
    where = f"image {image_id!r}"
    try:
        skeleton = skeleton_of(record.get(SKELETON) or DEFAULT_SKELETON)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    people = None
    arrays = {}
    for key, (shape, dtype) in person_fields(skeleton.num_joints).items():
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
    put_bytes(SKELETON, skeleton.name)
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
    spec[SKELETON] = tf.io.FixedLenFeature([], tf.string, default_value=DEFAULT_SKELETON)
    spec[INTRINSICS] = tf.io.FixedLenFeature([4], tf.float32)
    spec[IGNORE_BOXES] = tf.io.VarLenFeature(tf.float32)
    for key, (_, dtype) in PERSON_FIELDS.items():
        spec[key] = tf.io.VarLenFeature(tf.float32 if np.dtype(dtype).kind == "f" else tf.int64)
    return spec


def parse_example(serialized, num_joints: int = NUM_JOINTS):
    """Serialized Example (scalar tf.string) -> dict of tensors; per-person fields reshaped to
    (P, ...) as in :func:`person_fields` of ``num_joints`` (the J a graph needs statically: the caller
    checks that ``SKELETON``, () tf.string in the output, is the skeleton it expects), ``IGNORE_BOXES`` to
    (R, 4) float32 (R may be 0). Fails (``tf.errors.InvalidArgumentError``) on a schema version not in
    :data:`READABLE_VERSIONS`, or when ``NUM_IGNORE`` disagrees with the boxes."""
    import tensorflow as tf
    parsed = tf.io.parse_single_example(serialized, parse_spec())
    version_ok = tf.debugging.Assert(
        tf.reduce_any(tf.equal(parsed[VERSION], tf.constant(READABLE_VERSIONS, tf.int64))),
        [f"TFRecord schema version is not one this reader reads ({READABLE_VERSIONS})"])
    out = {}
    with tf.control_dependencies([version_ok]):
        for key in _BYTES_SCALARS + _INT_SCALARS + (INTRINSICS, SKELETON):
            out[key] = tf.identity(parsed[key])
    for key, (shape, _) in person_fields(num_joints).items():
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
    :func:`parse_example`, with numpy arrays and Python bytes/ints; the per-person shapes follow the
    record's own ``SKELETON`` (bytes in the output)."""
    from tensorflow.core.example import example_pb2
    ex = example_pb2.Example.FromString(serialized)
    f = ex.features.feature
    version = f[VERSION].int64_list.value[0]
    if version not in READABLE_VERSIONS:
        raise ValueError(f"TFRecord schema version {version}, this reader reads {READABLE_VERSIONS}")
    out: Dict[str, Any] = {k: f[k].bytes_list.value[0] for k in _BYTES_SCALARS}
    out.update({k: int(f[k].int64_list.value[0]) for k in _INT_SCALARS})
    out[SKELETON] = _skeleton_value(f).encode("utf-8")
    skeleton = skeleton_of(out[SKELETON])
    out[INTRINSICS] = np.asarray(f[INTRINSICS].float_list.value, np.float32)
    for key, (shape, dtype) in person_fields(skeleton.num_joints).items():
        values = (f[key].float_list.value if np.dtype(dtype).kind == "f" else f[key].int64_list.value)
        out[key] = np.asarray(values, dtype).reshape((-1,) + tuple(shape))
    boxes = np.asarray(f[IGNORE_BOXES].float_list.value, np.float32)
    if boxes.size != 4 * out[NUM_IGNORE]:
        raise ValueError(f"image {_text(out[IMAGE_ID])!r}: field {IGNORE_BOXES!r} holds {boxes.size} numbers, "
                         f"expected 4 per region of {NUM_IGNORE}={out[NUM_IGNORE]}")
    out[IGNORE_BOXES] = boxes.reshape(-1, 4)
    return out


def record_skeleton(serialized: bytes) -> str:
    """The skeleton name of one serialized Example, read without decoding the rest (:data:`DEFAULT_SKELETON`
    for version-2 records). Raises ValueError for bytes that are not an Example."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.example import example_pb2
    try:
        ex = example_pb2.Example.FromString(serialized)
    except DecodeError as e:
        raise ValueError(f"not a tf.train.Example ({e})") from None
    return _skeleton_value(ex.features.feature)


def _skeleton_value(fields) -> str:
    if SKELETON in fields and fields[SKELETON].bytes_list.value:
        return _text(fields[SKELETON].bytes_list.value[0])
    return DEFAULT_SKELETON


def _bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
