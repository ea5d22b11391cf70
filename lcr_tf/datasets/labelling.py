"""Labelling one dataset image for training: the checks, conversion and completion that
``beam_jobs.build_tfrecords`` applies to every reader's records, free of Beam.

* :func:`check_image`: the encoded image decodes (the trainer's decoder) and is JPEG or PNG.
* :func:`clip_ignore_regions`: crowd boxes clipped to the image.
* :func:`convert_people`: per-person validation (shapes, NaN, joints far outside the image, impossible
  3D, too few joints, all joints at one point) and conversion to the target skeleton (:data:`TARGETS`,
  LCR-13 by default) with the annotated and visible masks; given 3D re-centred and its missing 2D joints
  completed from it (:func:`complete_from_own_3d`).
* :func:`pseudo_ground_truth`: the 3D of people without it (eq 9, :mod:`lcr_tf.poses.pseudo_gt`) and their
  missing 2D joints from the match. The pose corpus it searches is LCR-13 (MoCap has no head top or
  MuPoTS neck), so for another target a person without the dataset's own 3D is refused
  (``pseudo_gt_refused``, the reason naming the joints the corpus lacks): records in ``mupots14`` come
  from datasets with 3D (MuCo-3DHP, MuPoTS-3D, Human3.6M).
* :class:`ImageItem`: one image as it travels through these steps; rejections are JSON-ready dicts
  (:func:`image_rejection`, :func:`person_rejection`) with a code of :data:`IMAGE_CODES` /
  :data:`PERSON_CODES`.

2D in pixels (:mod:`lcr_tf.contracts.geometry`'s convention), 3D in metres, camera axes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets.base import ImageRecord, RecordError, stack_people
from lcr_tf.poses import pseudo_gt

#: The skeletons the build writes records in (``--skeleton``): LCR-13, the package's models, and MuPoTS-3D's
#: 14 evaluation joints, for fine-tuning to that skeleton (paper Sec 4.3).
TARGETS = (skeleton_lib.LCR13.name, skeleton_lib.MUPOTS14.name)
DEFAULT_TARGET = skeleton_lib.LCR13
#: The skeleton of the pseudo ground-truth pose corpus (``poses.npz`` of ``beam_jobs.mocap_poses``).
PSEUDO_GT_SKELETON = skeleton_lib.LCR13


def _label(skel: skeleton_lib.Skeleton) -> str:
    """The joint set's name in messages (LCR-13 as the papers write it)."""
    return "LCR-13" if skel.name == skeleton_lib.LCR13.name else skel.name


def target_skeleton(name) -> skeleton_lib.Skeleton:
    """The target skeleton ``name`` (or Skeleton); ValueError naming :data:`TARGETS` for another."""
    skel = skeleton_lib.get_skeleton(name)
    if skel.name not in TARGETS:
        raise ValueError(f"records can be written in skeletons {', '.join(TARGETS)}, not {skel.name!r}")
    return skel


# An annotated joint more than this many image widths (heights) left or right of (above or below) the
# image is taken for a broken annotation: a truncated person's joints lie at most a body length or so
# outside the frame.
DEFAULT_MAX_OUTSIDE = 1.0


# A given 3D joint farther than this from the body centre is impossible for a human body (the longest
# reach, a raised wrist, is about 1.2 m from the torso centre of a tall adult).
MAX_JOINT_RADIUS_M = 2.5


_JPEG_MAGIC = b"\xff\xd8\xff"


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# Rejection codes (the summary counts them; rejected.jsonl lines carry a code and a readable reason).
IMAGE_CODES = ("read_error", "image_missing", "image_unreadable", "image_size_mismatch", "bad_intrinsics",
               "bad_ignore_regions", "unknown_skeleton", "no_usable_person", "encode_error", "duplicate_image_id")


PERSON_CODES = ("wrong_joint_count", "wrong_shape", "nan_joint", "outside_image", "bad_pose3d",
                "too_few_joints", "degenerate", "pseudo_gt_refused")


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

    People arrays hold the Q people still kept, in the order of ``skeleton`` (J joints: 13 for LCR-13), after
    :func:`convert_people`:
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
      skeleton: the target skeleton's name, set by :func:`convert_people`.
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
    skeleton: str = DEFAULT_TARGET.name

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
                   max_outside: float = DEFAULT_MAX_OUTSIDE, target=DEFAULT_TARGET
                   ) -> List[Tuple[int, Optional[str], str, str]]:
    """Validates ``item.record``'s people and fills ``item``'s people arrays, in the ``target`` skeleton
    (one of :data:`TARGETS`), with the good ones.

    Args:
      item: with ``record``, ``height`` and ``width`` set.
      min_joints: fewest annotated target joints a person needs (with or without 3D).
      max_outside: an annotated joint beyond ``max_outside`` image sizes outside the image is an error.
      target: the skeleton of the records (name or Skeleton). Given 3D must give every target joint
        (directly or by a rule of :data:`lcr_tf.contracts.skeleton.DERIVED_JOINTS`), else the person is
        rejected (``bad_pose3d``, naming the joints).
    Returns:
      ``[(person index, person_id, code, reason)]`` for the rejected people, by index. ``item``'s arrays
      hold the kept ones (possibly none); the completed mask is set for people with given 3D.
    Raises:
      KeyError: the record names an unknown skeleton. ValueError: ``target`` is not one of :data:`TARGETS`.
    """
    target = target_skeleton(target)
    item.skeleton = target.name
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

    # The target. Derived joints (e.g. a head from two ears) exist only where their sources are annotated.
    target2d, target_annotated = skeleton_lib.convert(pose2d, src, target, annotated & finite2d)
    _, target_visible = skeleton_lib.convert(pose2d, src, target, annotated & finite2d & visible)
    target_visible = np.where(has_visible[:, None], target_visible, target_annotated) & target_annotated
    target3d, target_has3d = skeleton_lib.convert(np.where(np.isfinite(pose3d), pose3d, np.nan), src, target)
    lacks3d = has_3d & ~np.all(target_has3d, axis=1)
    flag(lacks3d, "bad_pose3d",
         lambda r: f"pose3d does not give the {_label(target)} joints {_joint_list(target, ~target_has3d[r])}")
    count = target_annotated.sum(axis=1)
    flag(count < min_joints, "too_few_joints",
         lambda r: f"{int(count[r])} annotated {_label(target)} joints, fewer than min_joints={min_joints}")
    with np.errstate(invalid="ignore"):
        spread = (np.where(target_annotated[..., None], target2d, -np.inf).max(axis=1)
                  - np.where(target_annotated[..., None], target2d, np.inf).min(axis=1))
    flag(np.all(spread == 0, axis=-1), "degenerate", lambda r: "all annotated joints are at one point")

    for r, problem in reasons.items():
        rejected[int(ok[r])] = problem
    keep = ~np.isin(np.arange(ok.size), list(reasons))
    item.person_index = ok[keep]
    item.person_id = np.array([_person_id(people[i]) for i in ok], dtype=object)[keep]
    item.annotated = target_annotated[keep]
    item.visible = target_visible[keep]
    item.has_3d = has_3d[keep]
    item.pose3d = np.where(item.has_3d[:, None, None],
                           skeleton_lib.centre_poses(target3d[keep], target), np.nan)
    item.pose2d = target2d[keep]
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


def num_regions(boxes) -> int:
    """Rows of an (R, 4) ignore-region array; a malformed non-empty value counts as one region (its image
    is then rejected as ``bad_ignore_regions``)."""
    shape = np.shape(boxes)
    if len(shape) == 2:
        return int(shape[0])
    return 0 if int(np.prod(shape)) == 0 else 1


def pseudo_ground_truth(item: ImageItem, database) -> List[Tuple[int, Optional[str], str]]:
    """Pseudo ground-truth 3D (eq 9) and 2D completion for the people of ``item`` without 3D, in place.

    Args:
      item: an image after :func:`convert_people`.
      database: a :class:`lcr_tf.poses.pseudo_gt.PoseDatabase`, or a callable returning one (built only when a
        person needs it: a job whose people all have 3D never builds it).
    Returns:
      The people the database refused (too few joints for its search), as (person index in the record,
      person id, reason); they are removed from ``item``. Each person searched gets the match's 3D pose
      (metres, body-centred), their missing 2D joints completed from it (pixels), and its distance. In
      an item of another skeleton than the corpus's (:data:`PSEUDO_GT_SKELETON`) every person without 3D
      is refused, the reason naming the joints the corpus lacks, and the database is not built.
    """
    need = np.flatnonzero(~item.has_3d)
    if not need.size:
        return []
    if item.skeleton != PSEUDO_GT_SKELETON.name:
        target = skeleton_lib.get_skeleton(item.skeleton)
        # The joints that neither the corpus nor a rule of skeleton.DERIVED_JOINTS gives.
        _, derivable = skeleton_lib.convert(np.zeros((PSEUDO_GT_SKELETON.num_joints, 3)), PSEUDO_GT_SKELETON, target)
        missing = [n for n, ok in zip(target.joint_names, derivable) if not ok]
        reason = (f"no 3D pose given, and pseudo ground truth (eq 9) searches a {PSEUDO_GT_SKELETON.name} pose "
                  f"corpus, which lacks the {target.name} joints {', '.join(missing)}: records in {target.name} "
                  f"need the dataset's own 3D")
        out = [(int(item.person_index[row]), item.person_id[row], reason) for row in need]
        item.keep(item.has_3d)
        return out
    db = database if hasattr(database, "search") else database()
    refused = db.validate_queries(item.pose2d[need], item.annotated[need])
    drop = np.zeros(item.person_index.size, bool)
    out = []
    for b, reason in refused:
        row = need[b]
        drop[row] = True
        out.append((int(item.person_index[row]), item.person_id[row], reason))
    search = need[~drop[need]]
    if search.size:
        found = db.search(item.pose2d[search], item.annotated[search])
        item.pose3d[search] = found.pose3d
        item.pose2d[search] = found.completed2d
        item.completed[search] = ~item.annotated[search]
        item.distance[search] = found.distance
    if drop.any():
        item.keep(~drop)
    return out


def read_record(reader, key) -> ImageRecord:
    """``reader.read(key)``, its failures as :class:`ImageError` ``read_error`` (the reader's
    :class:`~lcr_tf.datasets.base.RecordError`, an unreadable annotation file or a value the reader met,
    or an image id that is not a non-empty string)."""
    try:
        record = reader.read(key)
    except RecordError as e:
        raise ImageError("read_error", e.reason) from e
    except (OSError, ValueError) as e:  # unreadable annotation files and values the reader met
        raise ImageError("read_error", f"{type(e).__name__}: {e}") from e
    if not isinstance(record.image_id, str) or not record.image_id:
        raise ImageError("read_error", f"the reader gave the image id {record.image_id!r}, expected a "
                                       "non-empty string")
    return record


def image_item(record: ImageRecord, key: str, dataset: str) -> ImageItem:
    """The :class:`ImageItem` of a read record: the image bytes loaded and checked (:func:`check_image`),
    its size against the annotation's, the intrinsics (4 finite fx, fy, cx, cy) and the ignore regions
    clipped (:func:`clip_ignore_regions`). Raises :class:`ImageError` with the image's code
    (``read_error`` for a negative record that lists people, ``image_missing``, ``image_unreadable``, a
    :func:`check_image` code, ``image_size_mismatch``, ``bad_intrinsics``, ``bad_ignore_regions``)."""
    persons = len(record.people)
    image_id = str(record.image_id)
    negative = bool(record.negative)
    if negative and persons:
        raise ImageError("read_error", f"the record is marked negative (an image without people) but lists "
                                       f"{persons} people")
    try:
        data = record.load_image_bytes()
    except FileNotFoundError as e:
        raise ImageError("image_missing", str(e)) from e
    except (OSError, ValueError) as e:
        raise ImageError("image_unreadable", f"{type(e).__name__}: {e}") from e
    try:
        fmt, height, width = check_image(data)
    except ImageError as e:
        where = f" ({record.image_path})" if record.image_path else ""
        raise ImageError(e.code, e.reason + where) from e
    if (record.height is not None and record.height != height) or \
            (record.width is not None and record.width != width):
        raise ImageError("image_size_mismatch", f"the image is {width}x{height} pixels, the annotation says "
                                                f"{record.width}x{record.height}")
    intrinsics = None
    if record.intrinsics is not None:
        intrinsics = np.asarray(record.intrinsics, np.float64)
        if intrinsics.shape != (4,) or not np.all(np.isfinite(intrinsics)):
            raise ImageError("bad_intrinsics", f"intrinsics must be 4 finite numbers fx, fy, cx, cy, got "
                                               f"{np.asarray(record.intrinsics).tolist()}")
    try:
        ignore_boxes, ignore_empty = clip_ignore_regions(record.ignore_regions, height, width)
    except ValueError as e:
        raise ImageError("bad_ignore_regions", str(e)) from e
    record.image_bytes = None  # the bytes travel once, in ``encoded``
    return ImageItem(key=key, image_id=image_id, dataset=dataset, encoded=data, image_format=fmt,
                     height=height, width=width, intrinsics=intrinsics, num_people=persons, record=record,
                     ignore_boxes=ignore_boxes, ignore_empty=ignore_empty, negative=negative)
