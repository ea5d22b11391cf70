"""The ``coco`` dataset: COCO 2017 person keypoints (Lin et al., "Microsoft COCO", ECCV 2014).

Expected layout (as the official ``annotations_trainval2017.zip``, ``train2017.zip`` and ``val2017.zip``
extract into one folder ROOT, given as ``--input=ROOT --split=train|val``)::

    ROOT/annotations/person_keypoints_train2017.json
    ROOT/annotations/person_keypoints_val2017.json
    ROOT/train2017/000000000009.jpg ...
    ROOT/val2017/000000000139.jpg ...

Any other file in the same format is read with ``--reader_option=annotation_file=PATH`` (then without
``--input``; ``--split`` is optional and only recorded), its images beside it or in
``--reader_option=image_dir=DIR``.

Fields read (everything else is ignored):

* ``images[]``: ``id`` (int), ``file_name`` (relative to the image folder), ``height``, ``width`` (pixels).
* ``categories[]``: the id of the category named ``person`` (1 when the list is absent). Annotations of
  other categories are not people and are skipped.
* ``annotations[]``: ``id``, ``image_id``, ``iscrowd`` (0 or 1, default 0), ``bbox`` (``[x, y, w, h]``
  pixels, floats), ``area``, ``num_keypoints`` and ``keypoints``: 51 numbers, 17 ``(x, y, v)`` triples in the
  ``coco17`` order of :mod:`lcr_tf.contracts.skeleton`, where ``v = 0`` not annotated (x = y = 0), ``v = 1``
  annotated but not visible (occluded), ``v = 2`` annotated and visible.

What becomes of them:

* Each image is one key (its integer id; keys sorted). An image is listed when it has at least one
  non-crowd person annotation. With ``keep_empty=True`` the images without one (no person annotation at
  all, or only crowds) are listed too and become pure negatives: records with no people, marked
  :attr:`~lcr_tf.datasets.base.ImageRecord.negative`, that keep their crowds as ignore regions; the
  job writes them with P = 0. With ``include_empty=True`` (and ``keep_empty`` off) they are listed but not
  marked, so the job rejects them as ``no_usable_person`` (a count of them in ``rejected.jsonl``).
  :attr:`CocoReader.images_without_people` counts them, listed or not, once :meth:`CocoReader.list_items`
  ran. An image whose non-crowd people all fail the job's checks (e.g. none has enough keypoints) is not
  a negative: it is rejected as ``no_usable_person``, with its people's reasons.
* Each non-crowd person annotation becomes a :class:`~lcr_tf.datasets.base.Person` (``person_id`` =
  the annotation id): ``annotated = v > 0``, ``visible = v == 2``, ``pose2d`` NaN where ``v = 0``. People
  with too few keypoints are *not* dropped here: the job rejects those with fewer than ``--min_joints``
  LCR-13 joints as ``too_few_joints`` and lists them in ``rejected.jsonl`` (COCO has many people with no
  keypoint at all: small or hidden ones).
* ``iscrowd = 1`` annotations become ignore regions (their ``bbox`` as xyxy), never people. So do the
  boxes of people whose keypoints give fewer than ``ignore_below_joints`` LCR-13 joints (default the job's
  default ``--min_joints``): they are real people the job will not write, and a detector that finds them
  should not be taught they are background (COCO's own keypoint evaluation likewise ignores people without
  keypoints). Set ``ignore_below_joints`` to the job's ``--min_joints`` when changing it; 0 turns it off.
* Pixel convention: COCO's keypoints are integers in ``[0, W-1]``, the index of the pixel clicked, while
  this package's 2D coordinates are continuous with the origin at the image's top-left *corner* (pixel
  ``i`` covers ``[i, i+1)``, whose centre is ``i + 0.5``; a flip is ``x -> W - x``). The reader therefore
  adds ``keypoint_offset`` (default 0.5) to every keypoint. Boxes (``bbox``) are already continuous
  (taken from the polygon outlines, in ``[0, W]``) and are not shifted. An evaluation against COCO's own
  tools must subtract the offset from predicted keypoints.

Rejected records (:class:`~lcr_tf.datasets.base.RecordError`, reported by the job as ``read_error``
with the file, the annotation id and the field): an ``images`` entry without a usable ``file_name``,
``height`` or ``width``, or whose id is repeated; an annotation whose ``keypoints`` are not 51 numbers or
hold a ``v`` outside {0, 1, 2} or a non-finite coordinate, whose ``bbox`` is not 4 finite numbers with
``w, h >= 0``, or whose ``iscrowd`` is not 0 or 1 (the whole image is rejected: its other people would be
taught without that person). An annotation whose ``image_id`` names no image (or an ``images`` entry
without an integer ``id``) gets a key of its own, ``("annotation", position)`` (``("image", position)``),
that is rejected, so nothing in the file goes unreported. A missing image file is left to the job
(``image_missing``).

The annotation file is parsed once per worker process (a module-level cache keyed by the file's path,
size and modification time) into compact arrays; the reader pickles as its options only.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets import coco_style
from lcr_tf.datasets.base import (
    DatasetReader,
    ImageRecord,
    Person,
    RecordError,
    join_path,
)
from lcr_tf.datasets.coco_style import is_int
from lcr_tf.poses import pseudo_gt

SPLITS = ("train", "val")
COCO = skeleton_lib.COCO17
NUM_KEYPOINTS = COCO.num_joints
DEFAULT_KEYPOINT_OFFSET = 0.5


def annotation_path(root: str, split: str) -> str:
    """``ROOT/annotations/person_keypoints_{split}2017.json``."""
    return join_path(root, "annotations", f"person_keypoints_{split}2017.json")


def image_folder(root: str, split: str) -> str:
    """``ROOT/{split}2017``."""
    return join_path(root, f"{split}2017")


@dataclasses.dataclass
class CocoIndex:
    """One parsed annotation file, in arrays (no JSON objects kept).

    Attributes:
      file: the file's base name, for messages.
      images: image id -> (file_name, height, width), for the well-formed ``images`` entries.
      image_problems: image id or ``("image", position)`` -> reason, for the malformed ones.
      rows: image id -> (A,) int64 rows of its person annotations, in file order.
      annotation_id: (N,) int64 annotation ids (-1 where missing).
      position: (N,) int64 position of each row in the file's ``annotations`` list.
      iscrowd: (N,) bool.
      keypoints: (N, 17, 3) float64 ``(x, y, v)`` as in the file (NaN where the row is malformed).
      bbox: (N, 4) float64 ``[x, y, w, h]`` pixels as in the file (NaN where malformed).
      area: (N,) float64 (NaN where missing).
      num_keypoints: (N,) int64 as the file says (-1 where missing).
      problems: row -> reason, for malformed annotations.
      orphans: ``("annotation", position)`` -> reason, for person annotations naming no image.
    """

    file: str
    images: Dict[int, Tuple[str, int, int]]
    image_problems: Dict[Any, str]
    rows: Dict[int, np.ndarray]
    annotation_id: np.ndarray
    position: np.ndarray
    iscrowd: np.ndarray
    keypoints: np.ndarray
    bbox: np.ndarray
    area: np.ndarray
    num_keypoints: np.ndarray
    problems: Dict[int, str]
    orphans: Dict[Tuple[str, int], str]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def person_category(data: Dict[str, Any], file: str) -> int:
    """The id of the category named ``person`` of a loaded annotation file (1 when it lists no categories).

    Raises:
      ValueError: naming ``file``, when ``categories`` is not a list or has no ``person``.
    """
    categories = data.get("categories")
    if categories is None:
        return 1
    if not isinstance(categories, list):
        raise ValueError(f"{file}: field 'categories' is not a list")
    ids = [c.get("id") for c in categories if isinstance(c, dict) and c.get("name") == "person"]
    if not ids:
        raise ValueError(f"{file}: 'categories' has no category named 'person'")
    return ids[0]


def parse_index(data: Dict[str, Any], file: str) -> CocoIndex:
    """The :class:`CocoIndex` of a loaded annotation file (``file``: its name, for messages).

    Raises:
      ValueError: the file is not a COCO annotation file at all (not an object, no ``images`` or
        ``annotations`` list); problems of single entries are recorded, not raised.
    """
    coco_style.check_lists(data, file)
    person = person_category(data, file)

    images: Dict[int, Tuple[str, int, int]] = {}
    image_problems: Dict[Any, str] = {}
    # One pass over the JSON objects: parsing, not a per-person hot path.
    for pos, entry in enumerate(data["images"]):
        image_id = entry.get("id") if isinstance(entry, dict) else None
        if not is_int(image_id):
            image_problems[("image", pos)] = f"{file}: images[{pos}] has no integer field 'id'"
            continue
        where = f"{file}: images[{pos}] (id {image_id})"
        if image_id in images or image_id in image_problems:
            image_problems[image_id] = f"{file}: images has more than one entry with id {image_id}"
            images.pop(image_id, None)
            continue
        name, height, width = entry.get("file_name"), entry.get("height"), entry.get("width")
        if not isinstance(name, str) or not name:
            image_problems[image_id] = f"{where}: field 'file_name' is missing or not a string"
        elif not (is_int(height) and is_int(width) and height > 0 and width > 0):
            image_problems[image_id] = (f"{where}: fields 'height', 'width' must be positive integers, got "
                                        f"{height!r}, {width!r}")
        else:
            images[image_id] = (name, height, width)

    annotation_id, position, iscrowd, keypoints, bbox, area, num_keypoints, image_of = ([] for _ in range(8))
    problems: Dict[int, str] = {}
    orphans: Dict[Tuple[str, int], str] = {}
    nan_keypoints = [math.nan] * (3 * NUM_KEYPOINTS)
    for pos, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            orphans[("annotation", pos)] = f"{file}: annotations[{pos}] is not an object"
            continue
        if ann.get("category_id", person) != person:
            continue
        ann_id = ann.get("id")
        where = f"{file}: annotation id {ann_id} (annotations[{pos}])"
        image_id = ann.get("image_id")
        if not is_int(image_id) or (image_id not in images and image_id not in image_problems):
            orphans[("annotation", pos)] = f"{where}: field 'image_id' {image_id!r} names no image of 'images'"
            continue
        row = len(annotation_id)
        problem = None
        crowd = ann.get("iscrowd", 0)
        if crowd not in (0, 1) or isinstance(crowd, float):
            problem, crowd = f"{where}: field 'iscrowd' is {crowd!r}, expected 0 or 1", 0
        box = ann.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(b) for b in box)):
            problem = problem or (f"{where}: has no field 'bbox'" if box is None else
                                  f"{where}: field 'bbox' is {box!r}, expected 4 numbers [x, y, w, h]")
            box = [math.nan] * 4
        kp = ann.get("keypoints")
        if crowd:
            kp = nan_keypoints  # a crowd's keypoints are unused (all zero in COCO)
        elif not (isinstance(kp, list) and len(kp) == 3 * NUM_KEYPOINTS and all(_is_number(k) for k in kp)):
            if kp is None:
                problem = problem or f"{where}: has no field 'keypoints'"
            elif not isinstance(kp, list):
                problem = problem or f"{where}: field 'keypoints' is not a list"
            elif len(kp) != 3 * NUM_KEYPOINTS:
                problem = problem or (f"{where}: field 'keypoints' has {len(kp)} values, expected "
                                      f"{3 * NUM_KEYPOINTS} ({NUM_KEYPOINTS} x, y, v triples)")
            else:
                problem = problem or f"{where}: field 'keypoints' holds a value that is not a number"
            kp = nan_keypoints
        if problem:
            problems[row] = problem
        annotation_id.append(ann_id if is_int(ann_id) else -1)
        position.append(pos)
        iscrowd.append(bool(crowd))
        keypoints.append(kp)
        bbox.append(box)
        a = ann.get("area")
        area.append(float(a) if _is_number(a) else math.nan)
        n = ann.get("num_keypoints")
        num_keypoints.append(n if is_int(n) else -1)
        image_of.append(image_id)

    n_rows = len(annotation_id)
    kp = np.asarray(keypoints, np.float64).reshape(n_rows, NUM_KEYPOINTS, 3)
    bb = np.asarray(bbox, np.float64).reshape(n_rows, 4)
    crowd = np.asarray(iscrowd, bool).reshape(n_rows)
    positions = np.asarray(position, np.int64)
    ids = np.asarray(annotation_id, np.int64)

    def where(r):
        return f"{file}: annotation id {ids[r]} (annotations[{positions[r]}])"

    # Value checks, vectorised over the rows that passed the structural ones.
    checked = np.ones(n_rows, bool)
    checked[list(problems)] = False
    v = kp[..., 2]
    bad_v = checked & ~crowd & ~np.all(np.isin(v, (0.0, 1.0, 2.0)), axis=1)
    for r in np.flatnonzero(bad_v):
        j = int(np.argmax(~np.isin(v[r], (0.0, 1.0, 2.0))))
        problems[int(r)] = (f"{where(r)}: field 'keypoints' gives {COCO.joint_names[j]} the visibility "
                            f"{v[r, j]:g}, expected 0, 1 or 2")
    bad_xy = checked & ~crowd & ~bad_v & ~np.all(np.isfinite(kp[..., :2]), axis=(1, 2))
    for r in np.flatnonzero(bad_xy):
        problems[int(r)] = f"{where(r)}: field 'keypoints' holds NaN or inf"
    bad_box = checked & ~(np.all(np.isfinite(bb), axis=1) & np.all(bb[:, 2:] >= 0, axis=1))
    for r in np.flatnonzero(bad_box):
        problems.setdefault(int(r), f"{where(r)}: field 'bbox' {bb[r].tolist()} is not [x, y, w, h] with "
                                    f"finite values and w, h >= 0")

    image_of = np.asarray(image_of, np.int64).reshape(n_rows)
    order = np.argsort(image_of, kind="stable")  # stable: an image's rows stay in file order
    ids_of_rows, starts = np.unique(image_of[order], return_index=True)
    ends = np.r_[starts[1:], n_rows].astype(np.int64)
    rows = {int(i): order[s:e] for i, s, e in zip(ids_of_rows.tolist(), starts.tolist(), ends.tolist())}
    return CocoIndex(file=file, images=images, image_problems=image_problems, rows=rows, annotation_id=ids,
                     position=positions, iscrowd=crowd, keypoints=kp, bbox=bb,
                     area=np.asarray(area, np.float64).reshape(n_rows),
                     num_keypoints=np.asarray(num_keypoints, np.int64).reshape(n_rows), problems=problems,
                     orphans=orphans)


_INDEXES = coco_style.ParsedFileCache("COCO annotation file")


def load_index(path: str) -> CocoIndex:
    """The :class:`CocoIndex` of annotation file ``path`` (any ``apache_beam.io.filesystems`` path), parsed
    once per process and kept while the file is unchanged (:class:`lcr_tf.datasets.coco_style.ParsedFileCache`).

    Raises:
      FileNotFoundError: no such file. ValueError: not JSON, or not a COCO annotation file (named).
    """
    return _INDEXES.get(path, parse_index)


class CocoReader(DatasetReader):
    """COCO person keypoints (see the module docstring for the layout and the rules).

    Args:
      input: ROOT of the official layout; needs ``split``.
      split: ``train`` or ``val``: picks ``annotations/person_keypoints_{split}2017.json`` and
        ``{split}2017/``. With ``annotation_file`` it is only recorded in the metadata.
      annotation_file: a COCO keypoints JSON file, instead of ``input``.
      image_dir: folder of the images of ``annotation_file`` (default: the file's folder).
      keypoint_offset: pixels added to COCO's integer keypoint coordinates (0.5: pixel index -> the
        package's continuous coordinates).
      ignore_below_joints: people whose keypoints give fewer LCR-13 joints than this also become ignore
        regions (0: none); match it to the job's ``--min_joints``.
      include_empty: also list images without a non-crowd person annotation, unmarked (the job rejects
        them as ``no_usable_person``).
      keep_empty: also list images without a non-crowd person annotation, as negative records without
        people (their crowds as ignore regions) that the job writes.
    """

    name = "coco"
    skeleton = COCO.name

    def __init__(self, input: Optional[str] = None, split: Optional[str] = None,
                 annotation_file: Optional[str] = None, image_dir: Optional[str] = None,
                 keypoint_offset: float = DEFAULT_KEYPOINT_OFFSET,
                 ignore_below_joints: int = pseudo_gt.DEFAULT_MIN_JOINTS, include_empty: bool = False,
                 keep_empty: bool = False):
        super().__init__()
        if annotation_file and input:
            raise ValueError("coco: give --input (with --split) or --reader_option=annotation_file, not both")
        if not annotation_file and not input:
            raise ValueError("coco: needs --input=ROOT with --split=train|val, or "
                             "--reader_option=annotation_file=PATH")
        if split is not None and split not in SPLITS:
            raise ValueError(f"coco: --split must be one of {', '.join(SPLITS)}, got {split!r}")
        if input and split is None:
            raise ValueError(f"coco: --input needs --split ({' or '.join(SPLITS)})")
        if image_dir and not annotation_file:
            raise ValueError("coco: image_dir goes with annotation_file; with --input the images are in "
                             "ROOT/{split}2017")
        if not math.isfinite(float(keypoint_offset)):
            raise ValueError(f"coco: keypoint_offset must be finite, got {keypoint_offset!r}")
        if int(ignore_below_joints) != ignore_below_joints or not \
                0 <= ignore_below_joints <= skeleton_lib.LCR13.num_joints:
            raise ValueError(f"coco: ignore_below_joints must be an integer in [0, "
                             f"{skeleton_lib.LCR13.num_joints}], got {ignore_below_joints!r}")
        self.input = input
        self.split = split
        self.annotation_file = annotation_file
        self.image_dir = image_dir
        self.keypoint_offset = float(keypoint_offset)
        self.ignore_below_joints = int(ignore_below_joints)
        self.include_empty = bool(include_empty)
        self.keep_empty = bool(keep_empty)
        self.images_without_people: Optional[int] = None  # set by list_items

    # ------------------------------------------------------------------ files

    def annotation_path(self) -> str:
        return self.annotation_file or annotation_path(self.input, self.split)

    def images_path(self) -> str:
        if self.annotation_file:
            return self.image_dir or os.path.dirname(self.annotation_file) or "."
        return image_folder(self.input, self.split)

    def index(self) -> CocoIndex:
        return self.cached("index", lambda: load_index(self.annotation_path()))

    def setup(self) -> None:
        self.index()

    # ------------------------------------------------------------------ keys

    def list_items(self) -> List[Any]:
        """Image ids (int, sorted) of the images with a non-crowd person annotation (every image with
        ``include_empty`` or ``keep_empty``), then the ``("image", position)`` and ``("annotation", position)`` keys of
        entries that name no image, sorted."""
        index = self.index()
        with_people = {image_id for image_id, rows in index.rows.items() if not index.iscrowd[rows].all()}
        all_ids = set(index.images) | {k for k in index.image_problems if is_int(k)}
        listed = all_ids if self.include_empty or self.keep_empty else all_ids & with_people
        self.images_without_people = len(all_ids - with_people)
        strays = coco_style.stray_keys(index)
        return sorted(listed) + strays

    def key_name(self, key) -> str:
        return coco_style.stray_key_name(key) if isinstance(key, tuple) else f"{int(key):012d}"

    # ------------------------------------------------------------------ records

    def read(self, key) -> ImageRecord:
        index = self.index()
        name = self.key_name(key)
        coco_style.reject_listed_problem(index, key, name)
        if key not in index.images:
            raise RecordError(name, f"{index.file}: no image with id {key}")
        file_name, height, width = index.images[key]
        rows = index.rows.get(key, np.zeros(0, np.int64))
        bad = [index.problems[int(r)] for r in rows if int(r) in index.problems]
        if bad:
            raise RecordError(name, "; ".join(bad))

        crowd = index.iscrowd[rows]
        people_rows = rows[~crowd]
        kp = index.keypoints[people_rows]
        v = kp[..., 2]
        annotated = v > 0
        pose2d = np.where(annotated[..., None], kp[..., :2] + self.keypoint_offset, np.nan)
        xyxy = np.concatenate([index.bbox[rows, :2], index.bbox[rows, :2] + index.bbox[rows, 2:]], axis=1)
        person_boxes = xyxy[~crowd]
        _, lcr_mask = skeleton_lib.convert(pose2d, COCO, skeleton_lib.LCR13, annotated)
        sparse = lcr_mask.sum(axis=1) < self.ignore_below_joints
        ignore = np.concatenate([xyxy[crowd], person_boxes[sparse]], axis=0).astype(np.float32)

        people = [Person(pose2d=pose2d[p].astype(np.float32), annotated=annotated[p], visible=v[p] == 2,
                         person_id=str(index.annotation_id[r]),
                         extras={"annotation_id": int(index.annotation_id[r]),
                                 "bbox": person_boxes[p].tolist(), "area": float(index.area[r]),
                                 "num_keypoints": int(index.num_keypoints[r]), "ignored": bool(sparse[p])})
                  for p, r in enumerate(people_rows)]
        return ImageRecord(
            image_id=name, dataset=self.name, skeleton=self.skeleton, people=people,
            image_path=join_path(self.images_path(), file_name), height=height, width=width,
            ignore_regions=ignore.reshape(-1, 4), negative=self.keep_empty and not people,
            metadata={"coco_image_id": int(key), "file_name": file_name, "split": self.split,
                      "crowd_regions": int(crowd.sum()), "sparse_person_regions": int(sparse.sum())})
