r"""Beam job: a dataset's annotated images -> TFRecord shards of ``tf.train.Example`` (:mod:`lcr_tf.contracts.features`).

Usage::

    python -m beam_jobs.build_tfrecords --dataset=NAME --input=... --poses=poses.npz \
        --anchors=anchors.npz --output=PREFIX [--num_shards=8] [--min_joints=4] \
        [--reader_option=NAME=VALUE ...] [any Beam pipeline option]
    python -m beam_jobs.build_tfrecords --dataset=synthetic --num_images=1000 --seed=0 \
        --anchors=anchors.npz --output=data/synthetic

Writes ``PREFIX-00000-of-0000N.tfrecord`` ... (one Example per image, all N shards always exist),
``PREFIX-rejected.jsonl`` (one JSON line per rejected image or person, with the reason) and
``PREFIX-summary.json`` (the parameters and the counts of every outcome, from the Beam metrics).
Without ``--runner``, the job runs on the DirectRunner with ``--direct_running_mode=multi_processing
--direct_num_workers=2``; any other runner's options pass through unchanged. Worker processes import
``lcr_tf`` and ``beam_jobs``: install the package (``pip install -e .``) or run from the repository root.

The steps (one DoFn each; every DoFn holds only small options when pickled, heavy state is built in the
worker, once per process):

1. ``Create(keys)`` from :meth:`lcr_tf.datasets.base.DatasetReader.list_items`, then ``Reshuffle`` so
   that reading spreads over the workers.
2. :class:`ReadImageFn`: ``reader.read(key)``; the image bytes are read and fully decoded (the decoder
   the trainer uses, ``tf.io.decode_jpeg`` / ``decode_png``) to check the file and measure it. A bad
   record, a missing file, a corrupt or non-JPEG/PNG image, or a size that disagrees with the annotation
   rejects the image. The record's ignore regions are clipped to the image (:func:`clip_ignore_regions`;
   those left empty are dropped and counted; malformed ones reject the image).
3. :class:`ConvertPeopleFn`: checks each person (array shapes, NaN in an annotated joint, an annotated
   joint absurdly far outside the image, non-finite or impossible 3D, fewer than ``min_joints``
   annotated joints, all joints at one point) and rejects the bad ones; converts the rest to LCR-13
   (:func:`lcr_tf.contracts.skeleton.convert` with the annotated mask, then with the visible mask); re-centres
   given 3D poses and completes their missing 2D joints from their own 3D (:func:`complete_from_own_3d`).
4. :class:`PseudoGtFn`: people without 3D get the pseudo ground truth of eq 9
   (:class:`lcr_tf.pseudo_gt.PoseDatabase`, one per worker process, searched once per image with all of
   its people); their missing 2D joints are completed from the match, and the match distance is kept.
5. :class:`EncodeFn`: full body = any lower-body joint annotated (Sec 4.2), anchor class
   (:meth:`lcr_tf.anchors.AnchorSet.assign_classes`), pose box (:func:`lcr_tf.contracts.geometry.pose_box` of the
   completed 2D), the ignore regions, :func:`lcr_tf.contracts.features.encode_example`, keyed by shard.
6. :class:`WriteShardFn`: writes each shard.

An image without a usable person left is rejected (``no_usable_person``), unless its reader marked it
:attr:`~lcr_tf.datasets.base.ImageRecord.negative` (no person by intent: a background, or only crowds,
which stay ignore regions): such an image is written with P = 0, a pure negative for training and
evaluation, and counted in the summary's ``images.written_empty``. A record marked negative that lists
people is a reader bug and is rejected (``read_error``). Every listed key ends either written or in
``rejected.jsonl``; the summary's ``check`` field says whether the counts add up.

Deterministic output. Beam does not order elements, so the job does not use ``WriteToTFRecord``: each
Example goes to shard ``md5(image_id) mod N`` (a hash that, unlike Python's ``hash``, is the same in every
process), the shards are grouped with ``GroupByKey``, and :class:`WriteShardFn` writes each shard's
Examples sorted by image id with ``tf.io.TFRecordWriter`` (to a temporary name, then renamed, so a
retried bundle cannot leave half a shard). Examples are serialized with ``deterministic=True`` (protobuf
map fields otherwise have no fixed order). The same inputs, flags and seeds therefore give byte-identical
shards, whatever the runner, worker count or bundle sizes. The price: one worker holds a whole shard in
memory while writing it, so choose ``--num_shards`` to keep shards to a few hundred MB. Pseudo ground
truth is searched per image (the batch is the image's people) for the same reason: a query's float32
scores may differ in the last bits with the batch it is scored in, and batches formed across images
would depend on how Beam bundles them.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import sys
import threading
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

from beam_jobs import runner_options
from lcr_tf import datasets
from lcr_tf.datasets.base import DatasetReader, ImageRecord, RecordError, stack_people
from lcr_tf.contracts import features
from lcr_tf.contracts import geometry
from lcr_tf import pseudo_gt
from lcr_tf.contracts import skeleton as skeleton_lib

NAMESPACE = "build_tfrecords"
REJECTED = "rejected"
TARGET = skeleton_lib.LCR13
SHARD_SUFFIX = ".tfrecord"
DEFAULT_NUM_SHARDS = 8
# An annotated joint more than this many image widths (heights) left or right of (above or below) the
# image is taken for a broken annotation: a truncated person's joints lie at most a body length or so
# outside the frame.
DEFAULT_MAX_OUTSIDE = 1.0
# A given 3D joint farther than this from the body centre is impossible for a human body (the longest
# reach, a raised wrist, is about 1.2 m from the torso centre of a tall adult).
MAX_JOINT_RADIUS_M = 2.5
DEFAULT_BODY_MODEL_POSES = 20000
# Histogram bin width of the pseudo-GT distance counters (distances lie in [0, 2]).
DISTANCE_BIN = 0.01
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Rejection codes (the summary counts them; rejected.jsonl lines carry a code and a readable reason).
IMAGE_CODES = ("read_error", "image_missing", "image_unreadable", "image_size_mismatch", "bad_intrinsics",
               "bad_ignore_regions", "unknown_skeleton", "no_usable_person", "encode_error", "duplicate_image_id")
PERSON_CODES = ("wrong_joint_count", "wrong_shape", "nan_joint", "outside_image", "bad_pose3d",
                "too_few_joints", "degenerate", "pseudo_gt_refused")


# --------------------------------------------------------------------------- pure functions


class ImageError(ValueError):
    """An image file that cannot be used; ``code`` is one of :data:`IMAGE_CODES`."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def check_image(data: bytes) -> Tuple[str, int, int]:
    """Decodes an encoded image completely to check it.

    Args:
      data: file bytes.
    Returns:
      (format ``"jpeg"`` or ``"png"``, height, width) in pixels.
    Raises:
      ImageError: (``image_unreadable``) not a JPEG or PNG file, or a file the decoder refuses
        (truncated, corrupt); the reason says which.
    """
    import tensorflow as tf  # the decoder of the training input pipeline
    if data.startswith(_JPEG_MAGIC):
        fmt, decode = "jpeg", tf.io.decode_jpeg
    elif data.startswith(_PNG_MAGIC):
        fmt, decode = "png", tf.io.decode_png
    else:
        raise ImageError("image_unreadable", f"not a JPEG or PNG file ({len(data)} bytes, starting "
                                             f"{data[:8]!r})")
    try:
        shape = decode(data, channels=3).shape
    except tf.errors.OpError as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ImageError("image_unreadable", f"{fmt} decoder failed ({len(data)} bytes): {message}") from None
    if shape[0] < 1 or shape[1] < 1:
        raise ImageError("image_unreadable", f"{fmt} image has size {shape[1]}x{shape[0]}")
    return fmt, int(shape[0]), int(shape[1])


def shard_of(image_id: str, num_shards: int) -> int:
    """The shard of an image: ``md5(image_id) mod num_shards``, the same in every process."""
    digest = hashlib.md5(image_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") % num_shards


def shard_path(prefix: str, shard: int, num_shards: int) -> str:
    """``PREFIX-SSSSS-of-NNNNN.tfrecord`` (Beam's default shard name template)."""
    return f"{prefix}-{shard:05d}-of-{num_shards:05d}{SHARD_SUFFIX}"


def shard_paths(prefix: str, num_shards: int) -> List[str]:
    return [shard_path(prefix, s, num_shards) for s in range(num_shards)]


def rejected_path(prefix: str) -> str:
    return f"{prefix}-rejected.jsonl"


def summary_path(prefix: str) -> str:
    return f"{prefix}-summary.json"


def complete_from_own_3d(pose2d: np.ndarray, annotated: np.ndarray, pose3d: np.ndarray) -> np.ndarray:
    """Fills the missing 2D joints of people whose 3D pose is known.

    The orthographic projection of the 3D pose (its x, y: camera axes, y down like the image) is fitted
    to the annotated 2D joints by a scale and a translation (least squares), and the fitted projection
    gives the missing joints. Annotated joints are kept as they are.

    Args:
      pose2d: (P, J, 2) pixels; missing joints may hold NaN.
      annotated: (P, J) bool, at least two distinct annotated joints per person.
      pose3d: (P, J, 3) metres, camera axes, finite.
    Returns:
      (P, J, 2) float64 pixels without NaN.
    """
    w = np.asarray(annotated, bool)[..., None].astype(np.float64)
    q = np.where(w > 0, np.asarray(pose2d, np.float64), 0.0)
    c = np.asarray(pose3d, np.float64)[..., :2]
    n = w.sum(axis=1, keepdims=True)
    q_mean = (q * w).sum(axis=1, keepdims=True) / n
    c_mean = (c * w).sum(axis=1, keepdims=True) / n
    qc, cc = (q - q_mean) * w, (c - c_mean) * w
    scale = np.einsum("pjk,pjk->p", qc, cc) / np.einsum("pjk,pjk->p", cc, cc)
    fitted = q_mean + scale[:, None, None] * (c - c_mean)
    return np.where(w > 0, q, fitted)


def clip_ignore_regions(boxes, height: int, width: int) -> Tuple[np.ndarray, int]:
    """Clips a record's ignore regions to its image and drops those left without area.

    Args:
      boxes: (R, 4) xyxy pixels (:attr:`~lcr_tf.datasets.base.ImageRecord.ignore_regions`); may reach
        outside the image.
      height, width: the image size in pixels.
    Returns:
      (kept (R', 4) float64 xyxy pixels inside ``[0, width] x [0, height]`` with x1 < x2 and y1 < y2 also in
      float32, the schema's type; number of regions dropped because nothing of them is left inside).
    Raises:
      ValueError: not an (R, 4) array, NaN / inf, or a reversed box (x2 < x1 or y2 < y1); the message
        names the region.
    """
    b = np.asarray(boxes, np.float64)
    if b.size == 0:
        return np.zeros((0, 4)), 0
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"ignore_regions has shape {b.shape}, expected (R, 4) xyxy boxes")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"ignore region {int(np.argmin(np.all(np.isfinite(b), axis=1)))} holds NaN or inf")
    reversed_ = np.any(b[:, 2:] < b[:, :2], axis=1)
    if reversed_.any():
        r = int(np.argmax(reversed_))
        raise ValueError(f"ignore region {r} {b[r].tolist()} is reversed (x2 < x1 or y2 < y1)")
    clipped = np.clip(b, 0.0, np.array([width, height, width, height], np.float64))
    # Judged in float32, as written: a sliver that collapses there would be refused by the encoder.
    as_written = clipped.astype(np.float32)
    keep = np.all(as_written[:, 2:] > as_written[:, :2], axis=1)
    return clipped[keep], int(np.count_nonzero(~keep))


@dataclasses.dataclass
class ImageItem:
    """One image travelling through the job (the element type between the DoFns).

    People arrays hold the Q people still kept, in LCR-13 order (J = 13), after :class:`ConvertPeopleFn`:
      person_index: (Q,) int64, index of each person in the reader's ``people`` list.
      person_id: (Q,) object, the reader's person ids (str or None).
      pose2d: (Q, J, 2) float64 pixels; NaN at missing joints until they are completed.
      annotated, visible, completed: (Q, J) bool.
      pose3d: (Q, J, 3) float64 metres, camera axes, body-centred; NaN rows until pseudo-GT.
      has_3d: (Q,) bool, True where the dataset gave the 3D pose.
      distance: (Q,) float64 pseudo-GT match distance (0 for the dataset's 3D).

    Image-level, from :class:`ReadImageFn`:
      ignore_boxes: (R, 4) float64 xyxy pixels, the record's ignore regions clipped to the image.
      ignore_empty: number of the record's ignore regions dropped as empty after clipping.
      negative: the record's :attr:`~lcr_tf.datasets.base.ImageRecord.negative` (then Q = 0 always).
    """

    key: str
    image_id: str
    dataset: str
    encoded: bytes
    image_format: str
    height: int
    width: int
    intrinsics: Optional[np.ndarray]
    num_people: int
    record: Optional[ImageRecord] = None
    person_index: Optional[np.ndarray] = None
    person_id: Optional[np.ndarray] = None
    pose2d: Optional[np.ndarray] = None
    annotated: Optional[np.ndarray] = None
    visible: Optional[np.ndarray] = None
    completed: Optional[np.ndarray] = None
    pose3d: Optional[np.ndarray] = None
    has_3d: Optional[np.ndarray] = None
    distance: Optional[np.ndarray] = None
    ignore_boxes: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 4)))
    ignore_empty: int = 0
    negative: bool = False

    def keep(self, rows: np.ndarray) -> None:
        """Keeps only the people ``rows`` ((Q',) int or (Q,) bool) of the arrays."""
        for f in ("person_index", "person_id", "pose2d", "annotated", "visible", "completed", "pose3d", "has_3d",
                  "distance"):
            setattr(self, f, getattr(self, f)[rows])


def image_rejection(key: str, image_id: Optional[str], dataset: str, code: str, reason: str,
                    persons: int = 0) -> Dict[str, Any]:
    """A ``rejected.jsonl`` line for an image (``persons``: people dropped with it)."""
    return {"kind": "image", "key": key, "image_id": image_id, "dataset": dataset, "code": code,
            "reason": reason, "persons": int(persons)}


def person_rejection(item: ImageItem, person: int, person_id: Optional[str], code: str,
                     reason: str) -> Dict[str, Any]:
    """A ``rejected.jsonl`` line for one person of an image (its index in the reader's list)."""
    return {"kind": "person", "key": item.key, "image_id": item.image_id, "dataset": item.dataset,
            "person": int(person), "person_id": person_id, "code": code, "reason": reason}


def _joint_list(skel: skeleton_lib.Skeleton, mask_row: np.ndarray) -> str:
    return ", ".join(skel.joint_names[j] for j in np.flatnonzero(mask_row))


def convert_people(item: ImageItem, min_joints: int = pseudo_gt.DEFAULT_MIN_JOINTS,
                   max_outside: float = DEFAULT_MAX_OUTSIDE) -> List[Tuple[int, Optional[str], str, str]]:
    """Validates ``item.record``'s people and fills ``item``'s LCR-13 people arrays with the good ones.

    Args:
      item: with ``record``, ``height`` and ``width`` set.
      min_joints: fewest annotated LCR-13 joints a person needs (with or without 3D).
      max_outside: an annotated joint beyond ``max_outside`` image sizes outside the image is an error.
    Returns:
      ``[(person index, person_id, code, reason)]`` for the rejected people, by index. ``item``'s arrays
      hold the kept ones (possibly none); the completed mask is set for people with given 3D.
    Raises:
      KeyError: the record names an unknown skeleton.
    """
    record = item.record
    src = skeleton_lib.get_skeleton(record.skeleton)
    people = record.people
    ok, problems, pose2d, annotated, visible, has_visible, pose3d, has_3d = stack_people(people, src.num_joints)
    rejected = {i: (code, reason) for i, code, reason in problems}
    reasons: Dict[int, Tuple[str, str]] = {}  # row of the stacked arrays -> its first problem

    def flag(mask: np.ndarray, code: str, reason_of: Callable[[int], str]) -> None:
        for r in np.flatnonzero(mask):  # only the flagged rows: their reasons are texts
            if int(r) not in reasons:
                reasons[int(r)] = (code, reason_of(r))

    finite2d = np.all(np.isfinite(pose2d), axis=-1)
    flag(np.any(annotated & ~finite2d, axis=1), "nan_joint",
         lambda r: f"annotated joints hold NaN or inf: {_joint_list(src, annotated[r] & ~finite2d[r])}")
    size = np.array([item.width, item.height], np.float64)
    with np.errstate(invalid="ignore"):
        outside = np.any((pose2d < -max_outside * size) | (pose2d > (1.0 + max_outside) * size), axis=-1)
    outside &= annotated & finite2d
    flag(np.any(outside, axis=1), "outside_image",
         lambda r: f"annotated joints more than {max_outside:g} image sizes outside the "
                   f"{item.width}x{item.height} image: {_joint_list(src, outside[r])}")
    finite3d = np.all(np.isfinite(pose3d), axis=(1, 2))
    flag(has_3d & ~finite3d, "bad_pose3d", lambda r: "pose3d holds NaN or inf")
    with np.errstate(invalid="ignore"):
        radius = np.linalg.norm(pose3d - skeleton_lib.body_centre(pose3d, src), axis=-1)
    far = has_3d & finite3d & np.any(radius > MAX_JOINT_RADIUS_M, axis=1)
    flag(far, "bad_pose3d", lambda r: f"pose3d joint {src.joint_names[int(np.nanargmax(radius[r]))]} is "
                                      f"{np.nanmax(radius[r]):.2f} m from the body centre "
                                      f"(> {MAX_JOINT_RADIUS_M} m)")

    # LCR-13. Derived joints (e.g. a head from two ears) exist only where their sources are annotated.
    lcr2d, lcr_annotated = skeleton_lib.convert(pose2d, src, TARGET, annotated & finite2d)
    _, lcr_visible = skeleton_lib.convert(pose2d, src, TARGET, annotated & finite2d & visible)
    lcr_visible = np.where(has_visible[:, None], lcr_visible, lcr_annotated) & lcr_annotated
    lcr3d, lcr_has3d = skeleton_lib.convert(np.where(np.isfinite(pose3d), pose3d, np.nan), src, TARGET)
    lacks3d = has_3d & ~np.all(lcr_has3d, axis=1)
    flag(lacks3d, "bad_pose3d",
         lambda r: f"pose3d does not give the LCR-13 joints {_joint_list(TARGET, ~lcr_has3d[r])}")
    count = lcr_annotated.sum(axis=1)
    flag(count < min_joints, "too_few_joints",
         lambda r: f"{int(count[r])} annotated LCR-13 joints, fewer than min_joints={min_joints}")
    with np.errstate(invalid="ignore"):
        spread = (np.where(lcr_annotated[..., None], lcr2d, -np.inf).max(axis=1)
                  - np.where(lcr_annotated[..., None], lcr2d, np.inf).min(axis=1))
    flag(np.all(spread == 0, axis=-1), "degenerate", lambda r: "all annotated joints are at one point")

    for r, problem in reasons.items():
        rejected[int(ok[r])] = problem
    keep = ~np.isin(np.arange(ok.size), list(reasons))
    item.person_index = ok[keep]
    item.person_id = np.array([_person_id(people[i]) for i in ok], dtype=object)[keep]
    item.annotated = lcr_annotated[keep]
    item.visible = lcr_visible[keep]
    item.has_3d = has_3d[keep]
    item.pose3d = np.where(item.has_3d[:, None, None],
                           skeleton_lib.centre_poses(lcr3d[keep], TARGET), np.nan)
    item.pose2d = lcr2d[keep]
    item.completed = np.zeros_like(item.annotated)
    item.distance = np.zeros(item.person_index.size)
    own = item.has_3d & ~np.all(item.annotated, axis=1)
    if own.any():
        item.pose2d[own] = complete_from_own_3d(item.pose2d[own], item.annotated[own], item.pose3d[own])
        item.completed[own] = ~item.annotated[own]
    return [(i, _person_id(people[i]), code, reason) for i, (code, reason) in sorted(rejected.items())]


def _person_id(person) -> Optional[str]:
    pid = getattr(person, "person_id", None)
    return None if pid is None else str(pid)


def encode_item(item: ImageItem, anchor_set) -> Tuple[bytes, Dict[str, np.ndarray]]:
    """The serialized Example of a finished item, and the per-person values that went into it.

    Args:
      item: people completed (no NaN in ``pose2d`` / ``pose3d``).
      anchor_set: :class:`lcr_tf.anchors.AnchorSet` in LCR-13.
    Returns:
      (bytes of ``features.encode_example(...)`` serialized deterministically, {"full_body" (Q,) bool,
      "anchor_class" (Q,) int, "box" (Q, 4) float64}).
    Raises:
      ValueError: from :func:`lcr_tf.contracts.features.encode_example`.
    """
    full_body = np.any(item.annotated[:, TARGET.lower_body], axis=1)
    classes = anchor_set.assign_classes(item.pose3d, full_body)
    boxes = geometry.pose_box(item.pose2d)
    record = {
        features.IMAGE_ENCODED: item.encoded,
        features.IMAGE_FORMAT: item.image_format,
        features.IMAGE_ID: item.image_id,
        features.IMAGE_SOURCE: item.dataset,
        features.IMAGE_HEIGHT: item.height,
        features.IMAGE_WIDTH: item.width,
        features.INTRINSICS: item.intrinsics,
        features.BOX: boxes,
        features.POSE2D: item.pose2d,
        features.ANNOTATED: item.annotated,
        features.COMPLETED: item.completed,
        features.VISIBLE: item.visible,
        features.POSE3D: item.pose3d,
        features.POSE3D_SOURCE: np.where(item.has_3d, features.POSE3D_MOCAP, features.POSE3D_PSEUDO_GT),
        features.PSEUDO_GT_DISTANCE: item.distance,
        features.ANCHOR_CLASS: classes,
        features.IGNORE_BOXES: item.ignore_boxes,
    }
    example = features.encode_example(record)
    return (example.SerializeToString(deterministic=True),
            {"full_body": full_body, "anchor_class": classes, "box": boxes})


# --------------------------------------------------------------------------- per-process state

_SHARED: Dict[tuple, Any] = {}
_SHARED_LOCK = threading.Lock()


def _shared(key: tuple, build: Callable[[], Any]) -> Any:
    """One object per worker process and key, built on first use (thread-safe)."""
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = build()
        return _SHARED[key]


def _file_key(path: str) -> tuple:
    stat = os.stat(path)
    return os.path.abspath(path), stat.st_mtime_ns, stat.st_size


def load_corpus_poses(poses: Optional[str], body_model_poses: Optional[int], seed: int) -> np.ndarray:
    """(N, 13, 3) float32 metres, camera axes, body-centred: ``poses`` (a ``poses.npz`` in LCR-13) or, when
    None, ``body_model.sample_poses(body_model_poses or DEFAULT_BODY_MODEL_POSES, seed)``."""
    from lcr_tf import pose_corpus
    if poses:
        return pose_corpus.load(poses, skeleton=TARGET.name).poses3d
    from lcr_tf import body_model
    return body_model.sample_poses(body_model_poses or DEFAULT_BODY_MODEL_POSES, seed).poses3d


# --------------------------------------------------------------------------- DoFns


class ReadImageFn(beam.DoFn):
    """Key -> :class:`ImageItem` (record read, image checked), or a rejection on ``rejected``."""

    def __init__(self, reader: DatasetReader):
        super().__init__()
        self.reader = reader

    def setup(self):
        self.reader.setup()

    def process(self, key):
        name = self.reader.key_name(key)
        dataset = self.reader.name

        def reject(code, reason, image_id=None, persons=0):
            Metrics.counter(NAMESPACE, f"images_rejected_{code}").inc()
            Metrics.counter(NAMESPACE, "persons_dropped_with_image").inc(persons)
            return beam.pvalue.TaggedOutput(REJECTED, image_rejection(name, image_id, dataset, code, reason,
                                                                      persons))

        try:
            record = self.reader.read(key)
        except RecordError as e:
            yield reject("read_error", e.reason)
            return
        except (OSError, ValueError) as e:  # unreadable annotation files and values the reader met
            yield reject("read_error", f"{type(e).__name__}: {e}")
            return
        if not isinstance(record.image_id, str) or not record.image_id:
            yield reject("read_error", f"the reader gave the image id {record.image_id!r}, expected a non-empty "
                                       "string")
            return
        Metrics.counter(NAMESPACE, "images_read").inc()
        persons = len(record.people)
        Metrics.counter(NAMESPACE, "persons_read").inc(persons)
        Metrics.counter(NAMESPACE, "ignore_regions_read").inc(_num_regions(record.ignore_regions))
        image_id = str(record.image_id)
        negative = bool(record.negative)
        if negative and persons:
            yield reject("read_error", f"the record is marked negative (an image without people) but lists "
                                       f"{persons} people", image_id, persons)
            return
        try:
            data = record.load_image_bytes()
        except FileNotFoundError as e:
            yield reject("image_missing", str(e), image_id, persons)
            return
        except (OSError, ValueError) as e:
            yield reject("image_unreadable", f"{type(e).__name__}: {e}", image_id, persons)
            return
        try:
            fmt, height, width = check_image(data)
        except ImageError as e:
            where = f" ({record.image_path})" if record.image_path else ""
            yield reject(e.code, e.reason + where, image_id, persons)
            return
        if (record.height is not None and record.height != height) or \
                (record.width is not None and record.width != width):
            yield reject("image_size_mismatch", f"the image is {width}x{height} pixels, the annotation says "
                                                f"{record.width}x{record.height}", image_id, persons)
            return
        intrinsics = None
        if record.intrinsics is not None:
            intrinsics = np.asarray(record.intrinsics, np.float64)
            if intrinsics.shape != (4,) or not np.all(np.isfinite(intrinsics)):
                yield reject("bad_intrinsics", f"intrinsics must be 4 finite numbers fx, fy, cx, cy, got "
                                               f"{np.asarray(record.intrinsics).tolist()}", image_id, persons)
                return
        try:
            ignore_boxes, ignore_empty = clip_ignore_regions(record.ignore_regions, height, width)
        except ValueError as e:
            yield reject("bad_ignore_regions", str(e), image_id, persons)
            return
        record.image_bytes = None  # the bytes travel once, in ``encoded``
        yield ImageItem(key=name, image_id=image_id, dataset=dataset, encoded=data, image_format=fmt,
                        height=height, width=width, intrinsics=intrinsics, num_people=persons, record=record,
                        ignore_boxes=ignore_boxes, ignore_empty=ignore_empty, negative=negative)


def _num_regions(boxes) -> int:
    """Rows of an (R, 4) ignore-region array; a malformed non-empty value counts as one region (its image
    is then rejected as ``bad_ignore_regions``)."""
    shape = np.shape(boxes)
    if len(shape) == 2:
        return int(shape[0])
    return 0 if int(np.prod(shape)) == 0 else 1


def _reject_unusable(item: ImageItem):
    """The image rejection when no person of ``item`` is left."""
    Metrics.counter(NAMESPACE, "images_rejected_no_usable_person").inc()
    reason = ("the annotation has no person" if item.num_people == 0
              else f"none of its {item.num_people} people is usable (see their lines)")
    return beam.pvalue.TaggedOutput(REJECTED, image_rejection(item.key, item.image_id, item.dataset,
                                                              "no_usable_person", reason))


class ConvertPeopleFn(beam.DoFn):
    """Validates people and converts them to LCR-13 (:func:`convert_people`)."""

    def __init__(self, min_joints: int = pseudo_gt.DEFAULT_MIN_JOINTS, max_outside: float = DEFAULT_MAX_OUTSIDE):
        super().__init__()
        self.min_joints = int(min_joints)
        self.max_outside = float(max_outside)

    def process(self, item: ImageItem):
        try:
            problems = convert_people(item, self.min_joints, self.max_outside)
        except KeyError as e:
            Metrics.counter(NAMESPACE, "images_rejected_unknown_skeleton").inc()
            Metrics.counter(NAMESPACE, "persons_dropped_with_image").inc(item.num_people)
            yield beam.pvalue.TaggedOutput(REJECTED, image_rejection(
                item.key, item.image_id, item.dataset, "unknown_skeleton", str(e.args[0]), item.num_people))
            return
        item.record = None
        for index, person_id, code, reason in problems:
            Metrics.counter(NAMESPACE, f"persons_rejected_{code}").inc()
            yield beam.pvalue.TaggedOutput(REJECTED, person_rejection(item, index, person_id, code, reason))
        if item.person_index.size == 0 and not item.negative:
            yield _reject_unusable(item)
            return
        yield item


class PseudoGtFn(beam.DoFn):
    """Pseudo ground-truth 3D (eq 9) and 2D completion for the people without 3D.

    The :class:`lcr_tf.pseudo_gt.PoseDatabase` is built from the corpus once per worker process, when the
    first person without 3D arrives (a job whose people all have 3D never builds it).
    """

    def __init__(self, poses: Optional[str], num_views: int = pseudo_gt.DEFAULT_NUM_VIEWS, seed: int = 0,
                 min_joints: int = pseudo_gt.DEFAULT_MIN_JOINTS,
                 body_model_poses: int = DEFAULT_BODY_MODEL_POSES):
        super().__init__()
        self.poses = poses
        self.num_views = int(num_views)
        self.seed = int(seed)
        self.min_joints = int(min_joints)
        self.body_model_poses = int(body_model_poses)
        self._database = None

    def setup(self):
        self._database = None

    def database(self) -> pseudo_gt.PoseDatabase:
        if self._database is None:
            source = _file_key(self.poses) if self.poses else ("body_model", self.body_model_poses)
            key = ("pose_database", source, self.num_views, self.seed, self.min_joints)
            self._database = _shared(key, lambda: pseudo_gt.PoseDatabase(
                load_corpus_poses(self.poses, self.body_model_poses, self.seed), self.num_views, self.seed,
                min_joints=self.min_joints))
        return self._database

    def process(self, item: ImageItem):
        need = np.flatnonzero(~item.has_3d)
        if need.size:
            db = self.database()
            refused = db.validate_queries(item.pose2d[need], item.annotated[need])
            drop = np.zeros(item.person_index.size, bool)
            for b, reason in refused:
                row = need[b]
                drop[row] = True
                Metrics.counter(NAMESPACE, "persons_rejected_pseudo_gt_refused").inc()
                yield beam.pvalue.TaggedOutput(REJECTED, person_rejection(
                    item, int(item.person_index[row]), item.person_id[row], "pseudo_gt_refused", reason))
            search = need[~drop[need]]
            if search.size:
                found = db.search(item.pose2d[search], item.annotated[search])
                item.pose3d[search] = found.pose3d
                item.pose2d[search] = found.completed2d
                item.completed[search] = ~item.annotated[search]
                item.distance[search] = found.distance
            if drop.any():
                item.keep(~drop)
                if item.person_index.size == 0:
                    yield _reject_unusable(item)
                    return
        yield item


def person_statistics(item: ImageItem, values: Mapping[str, np.ndarray]) -> Dict[str, Any]:
    """The figures of an encoded image for the summary: {"counters": ((name, value), ...),
    "distances_micro": (pseudo-GT distances in millionths, ...)}: per-person counts (3D source, body
    part, anchor class, completed joints per person and per LCR-13 joint) and the image's ignore regions
    (written, dropped as empty). They are counted when the image is written, so that the summary
    describes exactly the written images."""
    counts = collections.Counter()
    counts["persons_pose3d_mocap"] = int(item.has_3d.sum())
    counts["persons_pose3d_pseudo_gt"] = int((~item.has_3d).sum())
    counts["persons_full_body"] = int(values["full_body"].sum())
    counts["persons_upper_body"] = int((~values["full_body"]).sum())
    counts["joints_completed"] = int(item.completed.sum())
    counts["joints_visible"] = int(item.visible.sum())
    counts.update(f"anchor_class_{c:04d}" for c in values["anchor_class"].tolist())
    counts.update(f"completed_joints_{n:02d}" for n in item.completed.sum(axis=1).tolist())
    for name, n in zip(TARGET.joint_names, item.completed.sum(axis=0).tolist()):
        counts[f"completed_by_joint_{name}"] = int(n)
    counts["ignore_regions_written"] = int(item.ignore_boxes.shape[0])
    counts["ignore_regions_empty"] = int(item.ignore_empty)
    distances = item.distance[~item.has_3d]
    counts.update(f"pseudo_gt_distance_bin_{int(d / DISTANCE_BIN):04d}" for d in distances.tolist())
    return {"counters": tuple(sorted((k, v) for k, v in counts.items() if v)),
            "distances_micro": tuple(int(round(d * 1e6)) for d in distances.tolist())}


class EncodeFn(beam.DoFn):
    """Anchor classes, boxes and encoding -> ``(shard, (image_id, key, num_people, serialized, stats))``
    (``stats``: :func:`person_statistics`)."""

    def __init__(self, anchors: str, num_shards: int):
        super().__init__()
        self.anchors = anchors
        self.num_shards = int(num_shards)
        self._anchor_set = None

    def setup(self):
        from lcr_tf import anchors as anchors_lib
        self._anchor_set = _shared(("anchors", _file_key(self.anchors)), lambda: anchors_lib.load(self.anchors))

    def process(self, item: ImageItem):
        try:
            serialized, values = encode_item(item, self._anchor_set)
        except ValueError as e:
            Metrics.counter(NAMESPACE, "images_rejected_encode_error").inc()
            Metrics.counter(NAMESPACE, "persons_dropped_with_image").inc(item.person_index.size)
            yield beam.pvalue.TaggedOutput(REJECTED, image_rejection(
                item.key, item.image_id, item.dataset, "encode_error", str(e), item.person_index.size))
            return
        yield shard_of(item.image_id, self.num_shards), (item.image_id, item.key, int(item.person_index.size),
                                                         serialized, person_statistics(item, values))


class WriteShardFn(beam.DoFn):
    """``(shard, [entries])`` -> the shard file, Examples sorted by image id; yields its summary.

    Of several records with one image id (a reader bug), the first in (key, bytes) order is written and
    the others are rejected as ``duplicate_image_id``. ``None`` entries only make empty shards exist.
    """

    def __init__(self, prefix: str, num_shards: int, dataset: str = ""):
        super().__init__()
        self.dataset = dataset
        self.prefix = prefix
        self.num_shards = int(num_shards)

    def process(self, element):
        import tensorflow as tf
        shard, entries = element
        entries = sorted((e for e in entries if e is not None), key=lambda e: e[:4])
        path = shard_path(self.prefix, shard, self.num_shards)
        temp = f"{path}.tmp-{uuid.uuid4().hex}"
        written = people = empty = 0
        last_id = None
        with tf.io.TFRecordWriter(temp) as writer:
            for image_id, key, num_people, serialized, stats in entries:
                if image_id == last_id:
                    Metrics.counter(NAMESPACE, "images_rejected_duplicate_image_id").inc()
                    Metrics.counter(NAMESPACE, "persons_dropped_with_image").inc(num_people)
                    yield beam.pvalue.TaggedOutput(REJECTED, image_rejection(
                        key, image_id, self.dataset, "duplicate_image_id",
                        "another record has this image id; the first in key order was written", num_people))
                    continue
                writer.write(serialized)
                for name, value in stats["counters"]:
                    Metrics.counter(NAMESPACE, name).inc(value)
                for d in stats["distances_micro"]:
                    Metrics.distribution(NAMESPACE, "pseudo_gt_distance_micro").update(d)
                last_id = image_id
                written += 1
                people += num_people
                empty += num_people == 0
        tf.io.gfile.rename(temp, path, overwrite=True)
        Metrics.counter(NAMESPACE, "images_written").inc(written)
        Metrics.counter(NAMESPACE, "images_written_empty").inc(empty)
        Metrics.counter(NAMESPACE, "persons_written").inc(people)
        yield {"shard": shard, "path": path, "images": written, "images_empty": empty, "persons": people}


def _sort_key(line: Mapping[str, Any]):
    return (str(line.get("key")), line.get("kind") != "person", line.get("person", -1), line.get("code"))


def write_rejected(lines: List[Dict[str, Any]], path: str) -> str:
    """Writes the rejection lines, sorted by key (persons of an image before the image), as JSON lines."""
    from apache_beam.io.filesystems import FileSystems
    with FileSystems.create(path) as f:
        for line in sorted(lines, key=_sort_key):
            f.write((json.dumps(line, sort_keys=True) + "\n").encode("utf-8"))
    return path


# --------------------------------------------------------------------------- pipeline


@dataclasses.dataclass(frozen=True)
class JobOutputs:
    """What :func:`build_pipeline` adds: the number of listed keys and the files it will write."""

    num_listed: int
    shards: Tuple[str, ...]
    rejected: str
    summary: str
    parameters: Dict[str, Any]


def build_pipeline(pipeline: beam.Pipeline, reader: DatasetReader, output: str, anchors: str,
                   poses: Optional[str] = None, num_shards: int = DEFAULT_NUM_SHARDS,
                   min_joints: int = pseudo_gt.DEFAULT_MIN_JOINTS, pseudo_gt_views: int = pseudo_gt.DEFAULT_NUM_VIEWS,
                   pseudo_gt_seed: int = 0, max_outside: float = DEFAULT_MAX_OUTSIDE,
                   body_model_poses: int = DEFAULT_BODY_MODEL_POSES, keys: Optional[Sequence] = None
                   ) -> JobOutputs:
    """Adds the job to ``pipeline`` (see the module docstring).

    Args:
      reader: the dataset reader; its keys come from ``reader.list_items()`` unless ``keys`` is given.
      output: the output prefix (shards, ``-rejected.jsonl``; the summary is written by :func:`run`).
      anchors: ``anchors.npz`` in LCR-13.
      poses: ``poses.npz`` (LCR-13) for the pseudo ground truth; None: the body model's
        ``body_model_poses`` poses drawn with ``pseudo_gt_seed``.
      num_shards: N >= 1 output shards.
      min_joints: fewest annotated LCR-13 joints per person (>= 2).
      pseudo_gt_views, pseudo_gt_seed: the database's views per pose and seed.
      max_outside: see :func:`convert_people`.
    Returns:
      :class:`JobOutputs`.
    Raises:
      ValueError: a bad parameter (named). FileNotFoundError: a missing anchors or poses file.
    """
    if int(num_shards) != num_shards or num_shards < 1:
        raise ValueError(f"num_shards must be a positive integer, got {num_shards!r}")
    if int(min_joints) != min_joints or not 2 <= min_joints <= TARGET.num_joints:
        raise ValueError(f"min_joints must be an integer in [2, {TARGET.num_joints}], got {min_joints!r}")
    if not max_outside >= 0:
        raise ValueError(f"max_outside must be >= 0, got {max_outside!r}")
    from lcr_tf import anchors as anchors_lib
    anchor_set = anchors_lib.load(anchors)  # fail at construction on a missing or malformed file
    if anchor_set.skeleton.name != TARGET.name:
        raise ValueError(f"{anchors}: anchors are in skeleton {anchor_set.skeleton.name!r}, the job writes "
                         f"{TARGET.name!r}")
    if poses and not os.path.exists(poses):
        raise FileNotFoundError(f"--poses file {poses} does not exist")
    keys = list(reader.list_items() if keys is None else keys)
    num_shards = int(num_shards)
    parameters = {
        "dataset": reader.name, "reader_options": reader.describe(), "source_skeleton": reader.skeleton,
        "output": output, "num_shards": num_shards, "anchors": anchors,
        "num_anchors": anchor_set.num_anchors, "poses": poses or f"body_model.sample_poses({body_model_poses}, "
                                                                  f"seed={pseudo_gt_seed})",
        "min_joints": int(min_joints), "pseudo_gt_views": int(pseudo_gt_views),
        "pseudo_gt_seed": int(pseudo_gt_seed), "max_outside": float(max_outside),
        "max_joint_radius_m": MAX_JOINT_RADIUS_M, "schema_version": features.SCHEMA_VERSION,
    }

    read = (pipeline
            | "ListKeys" >> beam.Create(keys)
            | "SpreadKeys" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(ReadImageFn(reader)).with_outputs(REJECTED, main="items"))
    converted = read.items | "Convert" >> beam.ParDo(ConvertPeopleFn(min_joints, max_outside)).with_outputs(
        REJECTED, main="items")
    completed = converted.items | "PseudoGt" >> beam.ParDo(PseudoGtFn(
        poses, pseudo_gt_views, pseudo_gt_seed, min_joints, body_model_poses)).with_outputs(REJECTED, main="items")
    encoded = completed.items | "Encode" >> beam.ParDo(EncodeFn(anchors, num_shards)).with_outputs(
        REJECTED, main="examples")
    every_shard = pipeline | "ShardIds" >> beam.Create([(s, None) for s in range(num_shards)])
    written = ((encoded.examples, every_shard)
               | "WithEmptyShards" >> beam.Flatten()
               | "GroupShards" >> beam.GroupByKey()
               | "WriteShards" >> beam.ParDo(WriteShardFn(output, num_shards, reader.name)).with_outputs(
                   REJECTED, main="shards"))
    _ = ((read[REJECTED], converted[REJECTED], completed[REJECTED], encoded[REJECTED], written[REJECTED])
         | "AllRejected" >> beam.Flatten()
         | "GatherRejected" >> beam.combiners.ToList()
         | "WriteRejected" >> beam.Map(write_rejected, rejected_path(output)))
    return JobOutputs(len(keys), tuple(shard_paths(output, num_shards)), rejected_path(output),
                      summary_path(output), parameters)


# --------------------------------------------------------------------------- summary


def query_counts(result) -> Tuple[Dict[str, int], Dict[str, Dict[str, float]]]:
    """The job's counters {name: value} and distributions {name: {count, sum, min, max}} from a finished
    PipelineResult (committed values where the runner has them, else attempted)."""
    metrics = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))

    def value(m):
        return m.committed if m.committed is not None else m.attempted

    counters: Dict[str, int] = collections.Counter()
    for m in metrics["counters"]:
        counters[m.key.metric.name] += int(value(m))
    distributions = {}
    for m in metrics["distributions"]:
        d = value(m)
        if d is not None and d.count:
            distributions[m.key.metric.name] = {"count": d.count, "sum": d.sum, "min": d.min, "max": d.max}
    return dict(counters), distributions


def _prefixed(counters: Mapping[str, int], prefix: str) -> Dict[str, int]:
    return {k[len(prefix):]: v for k, v in sorted(counters.items()) if k.startswith(prefix) and v}


def _histogram_percentiles(bins: Mapping[int, int], width: float, qs: Sequence[float]) -> Dict[str, float]:
    """Upper bin edges below which a fraction q of the histogram's values lie."""
    if not bins:
        return {}
    edges = np.array(sorted(bins))
    cumulative = np.cumsum([bins[b] for b in edges])
    out = {}
    for q in qs:
        i = int(np.searchsorted(cumulative, q * cumulative[-1], side="left"))
        out[f"p{q * 100:g}"] = round(float((edges[min(i, edges.size - 1)] + 1) * width), 6)
    return out


def summarise(counters: Mapping[str, int], distributions: Mapping[str, Mapping[str, float]],
              num_listed: int, parameters: Mapping[str, Any], shards: Sequence[str] = ()) -> Dict[str, Any]:
    """The summary dict written to ``PREFIX-summary.json``.

    ``images.written_empty`` counts the written images without people (those marked negative by the
    reader; they are part of ``images.written``). ``check.images_accounted`` is true when every listed key
    ended written or rejected (written + rejected = listed), ``check.persons_accounted`` when every person read ended written,
    rejected, or dropped with a rejected image. ``ignore_regions`` counts the records' ignore regions:
    read, written, dropped because clipping to the image left nothing, and the rest (those of rejected
    images). ``completed_joints.by_joint`` counts the completed joints of the written people per LCR-13
    joint name.
    """
    c = collections.Counter(counters)
    images_rejected = _prefixed(c, "images_rejected_")
    persons_rejected = _prefixed(c, "persons_rejected_")
    images_rejected_total = sum(images_rejected.values())
    persons_rejected_total = sum(persons_rejected.values())
    distance = {}
    micro = distributions.get("pseudo_gt_distance_micro")
    bins = {int(k): v for k, v in _prefixed(c, "pseudo_gt_distance_bin_").items()}
    if micro:
        distance = {"count": int(micro["count"]), "min": micro["min"] / 1e6, "max": micro["max"] / 1e6,
                    "mean": micro["sum"] / micro["count"] / 1e6,
                    "percentiles": _histogram_percentiles(bins, DISTANCE_BIN, (0.5, 0.9, 0.99)),
                    "percentile_resolution": DISTANCE_BIN,
                    "histogram_by_bin_start": {f"{b * DISTANCE_BIN:.2f}": n for b, n in sorted(bins.items())}}
    completed_hist = {str(int(k)): v for k, v in _prefixed(c, "completed_joints_").items()}
    completed_by_joint = {name: c[f"completed_by_joint_{name}"] for name in TARGET.joint_names}
    ignore_read, ignore_written, ignore_empty = (c["ignore_regions_read"], c["ignore_regions_written"],
                                                 c["ignore_regions_empty"])
    shard_info = []
    for path in shards:
        try:
            import tensorflow as tf
            size = int(tf.io.gfile.stat(path).length)
        except Exception:  # a missing shard is reported as such, the summary is still written
            size = None
        shard_info.append({"path": path, "bytes": size})
    written = c["images_written"]
    persons_read = c["persons_read"]
    persons_end = c["persons_written"] + persons_rejected_total + c["persons_dropped_with_image"]
    return {
        "parameters": dict(parameters),
        "images": {"listed": int(num_listed), "read": c["images_read"], "written": written,
                   "written_empty": c["images_written_empty"], "rejected": images_rejected_total,
                   "rejected_by_reason": images_rejected},
        "persons": {"read": persons_read, "written": c["persons_written"], "rejected": persons_rejected_total,
                    "rejected_by_reason": persons_rejected,
                    "dropped_with_rejected_images": c["persons_dropped_with_image"],
                    "pose3d_mocap": c["persons_pose3d_mocap"], "pose3d_pseudo_gt": c["persons_pose3d_pseudo_gt"],
                    "full_body": c["persons_full_body"], "upper_body": c["persons_upper_body"]},
        "pseudo_gt_distance": distance,
        "completed_joints": {"total": c["joints_completed"], "people_by_count": completed_hist,
                             "by_joint": completed_by_joint},
        "visible_joints": c["joints_visible"],
        "anchor_classes": {str(int(k)): v for k, v in _prefixed(c, "anchor_class_").items()},
        "ignore_regions": {"read": ignore_read, "written": ignore_written,
                           "dropped_empty_after_clipping": ignore_empty,
                           "dropped_with_rejected_images": ignore_read - ignore_written - ignore_empty},
        "shards": shard_info,
        "check": {"images_accounted": written + images_rejected_total == num_listed,
                  "written_plus_rejected": written + images_rejected_total, "listed": int(num_listed),
                  "persons_accounted": persons_end == persons_read},
    }


def run(reader: DatasetReader, output: str, anchors: str, pipeline_args: Sequence[str] = (),
        **kwargs) -> Dict[str, Any]:
    """Builds and runs the job, waits for it, writes ``PREFIX-summary.json`` and returns the summary.

    ``pipeline_args`` are Beam pipeline options (``[]``: Beam's defaults, the in-process DirectRunner);
    ``kwargs`` go to :func:`build_pipeline`.
    """
    import tensorflow as tf
    directory = os.path.dirname(output)
    if directory:
        tf.io.gfile.makedirs(directory)
    pipeline = beam.Pipeline(options=runner_options.pipeline_options(pipeline_args))
    outputs = build_pipeline(pipeline, reader, output, anchors, **kwargs)
    result = pipeline.run()
    result.wait_until_finish()
    counters, distributions = query_counts(result)
    parameters = dict(outputs.parameters, pipeline_args=list(pipeline_args))
    summary = summarise(counters, distributions, outputs.num_listed, parameters, outputs.shards)
    with tf.io.gfile.GFile(outputs.summary, "w") as f:
        f.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


# --------------------------------------------------------------------------- command line

def pipeline_arguments(beam_args: Sequence[str]) -> List[str]:
    """The Beam options to run with: ``beam_args``, plus, when they name no runner or a local one, the
    local runner with two worker processes (:mod:`beam_jobs.runner_options`)."""
    return runner_options.pipeline_arguments(beam_args, multi_process=True)


def parse_reader_options(cls, items: Sequence[str]) -> Dict[str, Any]:
    """``["name=value", ...]`` -> {name: value}, each value converted to the type of the reader option's
    default (bool from true/false/1/0; str when the default is None).

    Raises:
      ValueError: a malformed item, or a value that does not convert (named).
    """
    import inspect
    params = inspect.signature(cls.__init__).parameters
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--reader_option must be NAME=VALUE, got {item!r}")
        name, text = item.split("=", 1)
        if name not in params or name == "self":
            raise ValueError(f"--reader_option {name}: the reader takes no option {name!r}")
        default = params[name].default
        kind = type(default) if default not in (inspect.Parameter.empty, None) else str
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                value = text.lower() in ("true", "1")
            else:
                value = kind(text)
        except ValueError:
            raise ValueError(f"--reader_option {name}={text}: expected {kind.__name__}") from None
        out[name] = value
    return out


def _define_flags(flag_values) -> None:
    # Defined on demand in a private FlagValues, so that importing this module never collides with flags
    # of the same name elsewhere and unknown flags can pass to Beam.
    from absl import flags
    flags.DEFINE_enum("dataset", None, datasets.reader_names(), "Dataset reader (lcr_tf/datasets).",
                      flag_values=flag_values)
    flags.DEFINE_string("input", None, "The dataset's files (a folder, annotation file or glob; see its "
                        "reader). Not used by the synthetic dataset.", flag_values=flag_values)
    flags.DEFINE_string("split", None, "Which part of the dataset to read, for the datasets that have parts "
                        "(e.g. coco: train or val; mpii: train, test, val or train_minus_val; h36m: train or "
                        "test of --protocol); see the reader.", flag_values=flag_values)
    flags.DEFINE_integer("protocol", None, "h36m: evaluation protocol 1, 2 or 3 (which subjects, cameras and "
                         "frames make the train and test splits).", lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer("num_images", None, "synthetic: number of images to render.", lower_bound=1,
                         flag_values=flag_values)
    flags.DEFINE_integer("seed", None, "synthetic: seed of the rendered images (image i of a seed is "
                         "always the same).", lower_bound=0, flag_values=flag_values)
    flags.DEFINE_string("poses", None, "3D pose corpus poses.npz (LCR-13, from beam_jobs.mocap_poses): the "
                        "pseudo ground-truth database, and the synthetic dataset's poses. Default: poses "
                        "sampled from lcr_tf.body_model.", flag_values=flag_values)
    flags.DEFINE_string("anchors", None, "anchors.npz (LCR-13, from beam_jobs.anchor_poses): gives each "
                        "person's anchor class.", flag_values=flag_values)
    flags.DEFINE_string("output", None, "Output prefix: PREFIX-SSSSS-of-NNNNN.tfrecord, PREFIX-rejected.jsonl, "
                        "PREFIX-summary.json.", flag_values=flag_values)
    flags.DEFINE_integer("num_shards", DEFAULT_NUM_SHARDS, "Number of TFRecord shards; a shard is held in "
                         "one worker's memory while written.", lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer("min_joints", pseudo_gt.DEFAULT_MIN_JOINTS, "A person needs at least this many "
                         "annotated LCR-13 joints (fewer say too little about the 3D pose).",
                         lower_bound=2, upper_bound=TARGET.num_joints, flag_values=flag_values)
    flags.DEFINE_integer("pseudo_gt_views", pseudo_gt.DEFAULT_NUM_VIEWS, "Random views per corpus pose in "
                         "the pseudo ground-truth database.", lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer("pseudo_gt_seed", 0, "Seed of the database's views (and of the body-model poses "
                         "when --poses is not given).", lower_bound=0, flag_values=flag_values)
    flags.DEFINE_integer("body_model_poses", DEFAULT_BODY_MODEL_POSES, "Corpus size when --poses is not "
                         "given.", lower_bound=1, flag_values=flag_values)
    flags.DEFINE_float("max_outside", DEFAULT_MAX_OUTSIDE, "Reject a person with an annotated joint more "
                       "than this many image widths/heights outside the image.", lower_bound=0.0,
                       flag_values=flag_values)
    flags.DEFINE_multi_string("reader_option", [], "NAME=VALUE option of the dataset reader (repeatable), "
                              "e.g. --reader_option=max_people=3.", flag_values=flag_values)


def _usage(fv) -> str:
    return (f"{__doc__}\nDatasets: {', '.join(datasets.reader_names())}\n\nFlags:\n{fv.get_help()}\n\n"
            "Other flags are passed to Beam as pipeline options.")


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parsed = runner_options.parse_job_flags(list(sys.argv if argv is None else argv), _define_flags, _usage,
                                            ("dataset", "anchors", "output"))
    if isinstance(parsed, int):
        return parsed
    fv, beam_args = parsed
    name = fv["dataset"].value
    available = {n: fv[n].value for n in ("input", "split", "protocol", "num_images", "seed", "poses",
                                          "body_model_poses")}
    try:
        cls = datasets.reader_class(name)
        options = datasets.reader_options(name, available)
        unused = [n for n in ("input", "split", "protocol", "num_images", "seed")
                  if fv[n].present and n not in options]
        if unused:
            raise ValueError(f"dataset {name!r} does not use {', '.join('--' + n for n in unused)}")
        options.update(parse_reader_options(cls, fv["reader_option"].value))
        reader = datasets.get_reader(name, **options)
        summary = run(reader, fv["output"].value, fv["anchors"].value, pipeline_arguments(beam_args),
                      poses=fv["poses"].value, num_shards=fv["num_shards"].value,
                      min_joints=fv["min_joints"].value, pseudo_gt_views=fv["pseudo_gt_views"].value,
                      pseudo_gt_seed=fv["pseudo_gt_seed"].value, max_outside=fv["max_outside"].value,
                      body_model_poses=fv["body_model_poses"].value)
    except (KeyError, ValueError, FileNotFoundError) as e:
        print(f"build_tfrecords: error: {e}", file=sys.stderr)
        return 1
    images = summary["images"]
    print(f"{images['written']} of {images['listed']} images written to {fv['output'].value}-*{SHARD_SUFFIX} "
          f"({summary['persons']['written']} people, {images['written_empty']} images without people); "
          f"{images['rejected']} images rejected "
          f"{images['rejected_by_reason']}, {summary['persons']['rejected']} people rejected "
          f"{summary['persons']['rejected_by_reason']}; see {summary_path(fv['output'].value)}")
    return 0 if summary["check"]["images_accounted"] else 1


if __name__ == "__main__":
    # Run the module under its import name, not ``__main__``: the elements (ImageItem) are pickled by
    # reference to their class, which worker processes can import only from ``beam_jobs.build_tfrecords``.
    from beam_jobs import build_tfrecords as _job
    sys.exit(_job.main())
