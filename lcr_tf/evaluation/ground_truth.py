"""The ground truth of the benchmarks, one :class:`GroundTruth` per image in LCR-13: from TFRecords of
:mod:`lcr_tf.contracts.features` (the synthetic benchmark) or from the readers of :mod:`lcr_tf.datasets`
(Human3.6M, MPII, MuPoTS-3D, read from their native files). The conventions are those of
:mod:`lcr_tf.evaluate`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lcr_tf import datasets, evaluation
from lcr_tf.contracts import features
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets import mpii_annotations, mupots, parse_reader_options
from lcr_tf.datasets.base import RecordError, stack_people
from lcr_tf.evaluation.tables import SKELETON

# Side of the square head box of a synthetic person, metres (an adult head is about 0.2-0.25 m tall).
SYNTHETIC_HEAD_SIDE_M = 0.25
HEAD_SIZE_DEFINITION = ("0.6 x diagonal of a square head box of side 0.25 m projected at the person's "
                        "least-squares 2D/3D image scale (weak perspective)")
REAL_DATASETS = ("h36m", "mpii", "mupots")
MUPOTS_3D = ("univ", "annot3")
# How many rejected records are listed by name in the results.
_REJECTED_EXAMPLES = 20


@dataclasses.dataclass
class GroundTruth:
    """The people of one image.

    Attributes:
      image_id: str.
      encoded: the image file's bytes.
      pose2d: (G, J, 2) float64 px (x right, y down, origin top-left).
      annotated: (G, J) bool, the joints evaluated in 2D: annotated by the dataset and inside the image.
      pose3d: (G, J, 3) float64 m, camera axes, body-centred.
      head_size: (G,) float64 px, PCKh's head size (NaN where unknown).
      width, height: the image's size, px (0 where unknown: every point is then taken as inside).
      pose3d_mask: (G, J) bool, the joints with a 3D ground truth, or None for all.
      group: the image's group in the tables (Human3.6M action, MuPoTS-3D sequence), or "".
      single_person: (G,) bool, MPII's single-person people, or None.
      load_image: returns the image file's bytes when ``encoded`` is empty (real datasets load lazily).
      person_ids: (G,) the reader's ``person_id`` of each person (MPII: the 1-based ``annorect`` index), or
        None (synthetic images); the benchmarks' own results files are written by them.
      metadata: the reader record's ``metadata`` (real datasets), else empty.
      native_pose2d, native_pose3d: the people in the dataset's own joint set, for a benchmark scored in it
        by its own rules (MuPoTS-3D: (G, 17, 2) ``annot2`` pixels and (G, 17, 3) metres, camera axes, of the
        reference 3D chosen by ``mupots_3d``; MPII: (G, 16, 2) package pixels in the MPII order, NaN where a
        joint has no point, for the MPII toolkit's figures), or None.
      annorects: MPII: every ``annorect`` of the image, annotated or not, in the annotation's order
        (:func:`lcr_tf.datasets.mpii_annotations.annorect_table`: objpos, scale, head box, single-person flag,
        person_id), which the toolkit's ``pred`` struct is aligned with; else None.
      unreadable: MPII: why the image file could not be read ("" when it could). Such an image is kept, so
        that the toolkit's files keep one entry per image; it is evaluated with no detections unless the
        predictions hold some.
    """

    image_id: str
    encoded: bytes
    pose2d: np.ndarray
    annotated: np.ndarray
    pose3d: np.ndarray
    head_size: np.ndarray
    width: int
    height: int
    pose3d_mask: Optional[np.ndarray] = None
    group: str = ""
    single_person: Optional[np.ndarray] = None
    load_image: Optional[Callable[[], bytes]] = dataclasses.field(default=None, repr=False)
    person_ids: Optional[List[str]] = None
    metadata: Dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    native_pose2d: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)
    native_pose3d: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)
    annorects: Optional[List[Dict[str, Any]]] = dataclasses.field(default=None, repr=False)
    unreadable: str = ""

    def inside(self, pose2d: np.ndarray) -> np.ndarray:
        """(..., J, 2) px -> (..., J) bool, True for the joints inside the image (all when the size is
        unknown)."""
        if self.width <= 0 or self.height <= 0:
            return np.all(np.isfinite(pose2d), axis=-1)
        size = np.array([self.width, self.height], np.float64)
        return np.all((pose2d >= 0.0) & (pose2d <= size), axis=-1)

    def image_bytes(self) -> bytes:
        """The encoded image: ``encoded``, else what ``load_image`` reads."""
        if self.encoded or self.load_image is None:
            return self.encoded
        return self.load_image()


def synthetic_head_sizes(pose2d, pose3d) -> np.ndarray:
    """PCKh head sizes of people without a head box (see the module docstring).

    Args:
      pose2d: (G, J, 2) px. pose3d: (G, J, 3) m, camera axes (only x, y are used).
    Returns:
      (G,) float64 px: ``0.6 * sqrt(2) * SYNTHETIC_HEAD_SIDE_M * s``, ``s`` the least-squares image scale
      in px / m. Raises ValueError naming the person when the scale is not positive.
    """
    p2 = np.asarray(pose2d, np.float64)
    p3 = np.asarray(pose3d, np.float64)[..., :2]
    u = p2 - p2.mean(axis=1, keepdims=True)
    v = p3 - p3.mean(axis=1, keepdims=True)
    num = np.sum(u * v, axis=(1, 2))
    den = np.sum(v * v, axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = num / den
    bad = ~(np.isfinite(scale) & (scale > 0))
    if bad.any():
        raise ValueError(f"person {int(np.argmax(bad))}: 2D and 3D poses give no positive image scale "
                         f"({scale[bad][0]})")
    return 0.6 * math.sqrt(2.0) * SYNTHETIC_HEAD_SIDE_M * scale


def read_ground_truth(data: str, max_images: int = 0) -> List[GroundTruth]:
    """Reads the images of TFRecord shards (lcr_tf.contracts.features schema), in shard order.

    Args:
      data: glob or comma-separated globs. max_images: the first N images only (0: all).
    Raises:
      FileNotFoundError when nothing matches; ValueError naming the image on a duplicate id or a person
      whose head size cannot be derived.
    """

    from google.protobuf.message import DecodeError

    from lcr_tf.data import pipeline
    shards = pipeline.list_shards(data)
    out, seen = [], set()
    for serialized, path, index in _records(shards, max_images):
        try:
            ex = features.decode_example_numpy(serialized)
        except (ValueError, DecodeError) as e:
            raise ValueError(f"{path}: record {index} is not an example of this schema ({e})") from None
        image_id = ex[features.IMAGE_ID].decode("utf-8", "replace")
        if image_id in seen:
            raise ValueError(f"image {image_id!r} appears twice in {data!r}")
        seen.add(image_id)
        pose2d = ex[features.POSE2D].astype(np.float64)
        pose3d = ex[features.POSE3D].astype(np.float64)
        try:
            head = synthetic_head_sizes(pose2d, pose3d)
        except ValueError as e:
            raise ValueError(f"image {image_id!r}: {e}") from None
        truth = GroundTruth(image_id, ex[features.IMAGE_ENCODED], pose2d, ex[features.ANNOTATED].astype(bool),
                            pose3d, head, int(ex[features.IMAGE_WIDTH]), int(ex[features.IMAGE_HEIGHT]))
        truth.annotated &= truth.inside(pose2d)
        out.append(truth)
    if not out:
        raise ValueError(f"no image to evaluate: the shards of {data!r} ({', '.join(shards)}) hold no record")
    return out


def _records(shards: Sequence[str], limit: int = 0):
    """``(serialized, shard path, index in the shard)`` of the shards' records in order, at most ``limit``
    (0: all). A corrupt or truncated record raises ValueError naming the shard and the record."""
    import tensorflow as tf

    count = 0
    for path in shards:
        index = -1
        try:
            for index, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
                if limit and count >= limit:
                    return
                count += 1
                yield record, path, index
        except tf.errors.DataLossError as e:
            raise ValueError(f"{path}: record {index + 1} is corrupt or truncated "
                             f"({e.message.strip().splitlines()[0]})") from None



def parse_h36m_protocol(protocol) -> int:
    """``1`` / ``"2"`` / ``"P3"`` -> 1, 2 or 3; ValueError naming the value otherwise."""
    text = str(protocol if protocol is not None else "").strip().upper().removeprefix("P")
    if text not in ("1", "2", "3"):
        raise ValueError(f"h36m: --protocol must be 1, 2 or 3 (or P1, P2, P3), got {protocol!r}")
    return int(text)


def make_reader(dataset: str, data: str, protocol=None, split: Optional[str] = None,
                reader_options: Sequence[str] = ()):
    """The :mod:`lcr_tf.datasets` reader of a real benchmark.

    Args:
      dataset: ``h36m``, ``mpii`` or ``mupots``. data: the dataset's ROOT folder.
      protocol: Human3.6M's protocol (required there, refused elsewhere).
      split: the reader's split (default: ``test`` for h36m, ``val`` for mpii, ``all`` for mupots).
      reader_options: ``NAME=VALUE`` items converted to the reader option's type.
    Raises:
      ValueError: unknown dataset, bad protocol / split / option (named).
    """
    if dataset not in REAL_DATASETS:
        raise ValueError(f"unknown real dataset {dataset!r}; known: {', '.join(REAL_DATASETS)}")
    options: Dict[str, Any] = {"input": data, "split": split or {"h36m": "test", "mpii": "val",
                                                                 "mupots": "all"}[dataset]}
    if dataset == "h36m":
        options["protocol"] = parse_h36m_protocol(protocol)
    elif protocol not in (None, "", "default"):
        raise ValueError(f"{dataset}: has a single protocol; got --protocol={protocol!r}")
    extra = parse_reader_options(datasets.reader_class(dataset), list(reader_options))
    clash = sorted(set(extra) & {"input", "split", "protocol"})
    if clash:
        raise ValueError(f"--reader_option {clash[0]}: give it as --{'data' if clash[0] == 'input' else clash[0]}")
    options.update(extra)
    return datasets.get_reader(dataset, **options)


def _image_size(record) -> Tuple[int, int]:
    """(width, height) px of a record's image, from the record or the image file's header."""
    import io

    from PIL import Image
    if record.width and record.height:
        return int(record.width), int(record.height)
    with Image.open(io.BytesIO(record.load_image_bytes())) as image:
        return int(image.size[0]), int(image.size[1])


def record_truth(record, dataset: str, mupots_3d: str = "univ") -> Tuple[GroundTruth, int]:
    """One reader record as a :class:`GroundTruth` in LCR-13.

    Args:
      record: a :class:`lcr_tf.datasets.ImageRecord` of ``dataset`` (``h36m``, ``mpii``, ``mupots``, or
        ``coco``, whose records give the image's size and have no 3D).
      mupots_3d: MuPoTS-3D's reference 3D, ``univ`` (``univ_annot3``) or ``annot3`` (module docstring).
    Returns:
      (the ground truth, the number of people left out for having no head box (MPII)). Its ``pose3d`` is
      body-centred metres (NaN with ``pose3d_mask`` False where the dataset has no 3D), ``head_size`` MPII's
      (NaN elsewhere), ``group`` the action / sequence; the image is loaded lazily. An MPII image whose
      file cannot be read (its size is not in the annotation) is kept with size 0 and ``unreadable`` saying
      why.
    Raises:
      ValueError naming the image: a person whose arrays do not fit the skeleton.
    """
    src = record.skeleton
    ok, problems, p2, ann, _, _, p3, has3d = stack_people(record.people, record.num_joints)
    if problems:
        raise ValueError(f"image {record.image_id!r}: person {problems[0][0]}: {problems[0][2]}")
    people = [record.people[i] for i in ok]
    native = None
    if dataset == "mupots":
        if mupots_3d == "univ":
            univ = np.asarray([p.extras["univ_pose3d_camera"] for p in people], np.float64).reshape(p3.shape)
            p3 = skeleton_lib.centre_poses(univ, src)
        # The official evaluation centres both poses on the pelvis, so the body-centred pose is enough.
        native = (np.asarray(p2, np.float64) - mupots.PIXEL_OFFSET, np.asarray(p3, np.float64))
    mask3d_src = has3d[:, None] & np.all(np.isfinite(p3), axis=-1)
    pose2d, annotated = skeleton_lib.convert(p2, src, SKELETON, ann)
    pose3d, mask3d = skeleton_lib.convert(p3, src, SKELETON, mask3d_src)
    g = len(people)
    head = np.full((g,), np.nan)
    single = None
    dropped = 0
    width = height = 0
    annorects = None
    unreadable = ""
    if dataset == "mpii":
        boxes = [p.extras.get("head_box") for p in people]
        has_box = np.array([b is not None for b in boxes], bool)
        if has_box.any():
            head[has_box] = evaluation.mpii_head_size(np.asarray([b for b in boxes if b is not None], np.float64))
        dropped = int((~has_box).sum())
        keep = np.flatnonzero(has_box)
        pose2d, annotated, pose3d, mask3d, head = (a[keep] for a in (pose2d, annotated, pose3d, mask3d, head))
        people = [people[i] for i in keep]
        single = np.array([bool(p.extras.get("single_person")) for p in people], bool)
        native = (np.where(ann[..., None], np.asarray(p2, np.float64), np.nan)[keep], None)
        annorects = mpii_annotations.annorect_table(record)
        try:
            width, height = _image_size(record)
        except Exception as e:  # a missing or broken image: kept, named, so the toolkit's files stay aligned
            unreadable = f"image {record.image_id!r}: cannot read its size ({type(e).__name__}: {e})"
    elif record.width and record.height:
        width, height = int(record.width), int(record.height)
    group = {"h36m": lambda m: str(m.get("action", "")), "mupots": lambda m: f"TS{m.get('sequence', '')}"}.get(
        dataset, lambda m: "")(record.metadata)
    truth = GroundTruth(record.image_id, b"", pose2d, annotated, pose3d, head, width, height,
                        pose3d_mask=mask3d, group=group, single_person=single,
                        load_image=record.load_image_bytes, person_ids=[p.person_id for p in people],
                        metadata=dict(record.metadata), native_pose2d=None if native is None else native[0],
                        native_pose3d=None if native is None else native[1], annorects=annorects,
                        unreadable=unreadable)
    return truth, dropped


def read_records(reader, dataset: str, max_images: int = 0, mupots_3d: str = "univ"
                 ) -> Tuple[List[Tuple[GroundTruth, int]], List[Dict[str, str]], int]:
    """Every record of a reader (the first ``max_images``, 0: all) as ground truth, one at a time.

    Returns:
      ([(truth, people dropped for want of a head box)] in the reader's key order, the rejected records
      [{key, reason}], the number of keys listed).
    Raises:
      ValueError: two records with one image id.
    """
    keys = reader.list_items()
    listed = len(keys)
    if max_images:
        keys = keys[:max_images]
    out: List[Tuple[GroundTruth, int]] = []
    rejected: List[Dict[str, str]] = []
    seen = set()
    for key in keys:
        try:
            truth, dropped = record_truth(reader.read(key), dataset, mupots_3d)
        except RecordError as e:
            rejected.append({"key": reader.key_name(key), "reason": e.reason})
            continue
        except (OSError, ValueError) as e:
            rejected.append({"key": reader.key_name(key), "reason": str(e)})
            continue
        if truth.image_id in seen:
            raise ValueError(f"image {truth.image_id!r} appears twice in {dataset} {reader.describe()}")
        seen.add(truth.image_id)
        out.append((truth, dropped))
    return out, rejected, listed


def read_dataset(dataset: str, data: str, protocol=None, split: Optional[str] = None,
                 reader_options: Sequence[str] = (), max_images: int = 0,
                 mupots_3d: str = "univ") -> Tuple[List[GroundTruth], Dict[str, Any]]:
    """Reads a real benchmark's ground truth through its reader (arguments as :func:`make_reader`).

    Returns:
      (the images' ground truth, in the reader's key order; facts for the results: ``reader``, ``split``,
      ``listed``, ``rejected``, ``rejected_examples`` [{key, reason}]; MPII: ``people_without_head_box``,
      ``unreadable_images`` and ``unreadable_examples`` [{image_id, reason}], the images kept although their
      file could not be read).
    Raises:
      ValueError: bad options or a ROOT the reader cannot list (its message).
    """
    if mupots_3d not in MUPOTS_3D:
        raise ValueError(f"mupots_3d must be one of {', '.join(MUPOTS_3D)}, got {mupots_3d!r}")
    reader = make_reader(dataset, data, protocol, split, reader_options)
    read, rejected, listed = read_records(reader, dataset, max_images, mupots_3d)
    truths = [truth for truth, _ in read]
    no_head = sum(dropped for _, dropped in read)
    info: Dict[str, Any] = {"reader": reader.describe(), "listed": listed, "evaluated_images": len(truths),
                            "rejected": len(rejected), "rejected_examples": rejected[:_REJECTED_EXAMPLES]}
    if dataset == "h36m":
        info["protocol"] = reader.protocol_split.describe()
    if dataset == "mpii":
        info["people_without_head_box"] = no_head
        unreadable = [{"image_id": t.image_id, "reason": t.unreadable} for t in truths if t.unreadable]
        info.update(unreadable_images=len(unreadable), unreadable_examples=unreadable[:_REJECTED_EXAMPLES])
    return truths, info

