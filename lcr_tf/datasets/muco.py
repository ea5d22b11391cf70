r"""MuCo-3DHP reader: the composited multi-person training set of Mehta et al. (3DV 2018), as distributed
with the public 3D multi-person pose code releases (a COCO-style ``MuCo-3DHP.json`` beside its images).

Expected layout of ``--input`` (ROOT: the release's ``MuCo/data`` folder, as its archives extract)::

    ROOT/MuCo-3DHP.json
    ROOT/augmented_set/<name>.jpg       composites with augmented appearance
    ROOT/unaugmented_set/<name>.jpg     composites without

Any file in the same format is read with ``--reader_option=annotation_file=PATH`` (then without
``--input``), its images relative to the file's folder or to ``--reader_option=image_dir=DIR``.

Fields read (everything else is ignored):

* ``images[]``: ``id`` (int), ``file_name`` (relative to ROOT, e.g. ``augmented_set/....jpg``), ``width``,
  ``height`` (pixels), ``f`` = [fx, fy] and ``c`` = [cx, cy] (the camera's intrinsics, pixels).
* ``annotations[]``, one per person: ``id`` (int), ``image_id``, ``keypoints_cam`` (21 x [X, Y, Z]
  millimetres, camera axes: x right, y down, z away from the camera), ``keypoints_img`` (21 x [x, y]
  pixels), ``bbox`` ([x, y, w, h] pixels, optional). Joints are in the ``muco21`` order of
  :mod:`lcr_tf.contracts.skeleton` (mupots17, then right/left hand, right/left toe).

What becomes of them, per person (:class:`~lcr_tf.datasets.base.Person`, ``person_id`` = the annotation id):

* ``pose2d`` = ``keypoints_img`` + ``keypoint_offset``; every joint is annotated.
* ``visible``: the joint lies inside the image (0 <= x < width, 0 <= y < height). The file has no
  occlusion flags, so an occluded joint inside the image counts as visible.
* ``pose3d`` = ``keypoints_cam`` in metres, body-centred (:func:`lcr_tf.contracts.skeleton.centre_poses`): the
  3D is given, so the job computes no pseudo ground truth for MuCo people.
* ``extras``: ``centre_camera`` (3,) metres, the body centre in camera coordinates (the absolute pose is
  ``pose3d + centre_camera``), ``pelvis_camera`` (3,) metres, ``annotation_id``, ``bbox`` (xyxy pixels,
  shifted by ``keypoint_offset`` like the 2D, or None), ``reprojection_px`` (the largest distance between
  ``pose2d`` and the projection of the 3D, pixels).

Per image: ``ImageRecord.intrinsics`` = fx, fy, cx + ``keypoint_offset``, cy + ``keypoint_offset``;
``height``, ``width`` from the file (the job checks them against the image).

Coordinates. In the release, ``keypoints_img`` is the pinhole projection of ``keypoints_cam`` through
``f`` and ``c`` (``x = fx X / Z + cx``, ``y = fy Y / Z + cy``, the formulas its loaders use both ways:
continuous values, not clicked pixel indices), and nothing states a pixel-centre rule for ``c``. The
reader takes them as the package's continuous pixels (origin at the image's top-left corner), so
``keypoint_offset`` (:data:`DEFAULT_KEYPOINT_OFFSET`) defaults to 0; a non-zero offset moves the 2D, the
boxes and cx, cy together, so that the 2D stays the projection of the 3D. The reader checks that: a
person whose 2D is more than ``max_reprojection_px`` from the projection of its 3D rejects its image
(2D and 3D of different people or frames, another image's camera, swapped axes). A projection cannot
see the scale of the 3D: its unit is checked on the body's size instead (below).

Splits (``--split``): MuCo-3DHP is a training set. ``train`` (the default) is every image;
``val`` holds out a deterministic ``val_fraction`` of the images, chosen by a hash of the image id (the
same images whatever the file's order or the other images), and ``train_minus_val`` is the rest. The
held-out images share their subjects and backgrounds with the others (the composites are drawn from the
same MPI-INF-3DHP recordings): a check of fitting, not of generalisation. ``image_sets`` (e.g.
``unaugmented_set``) lists only the images in those first-level folders of ``file_name``.

Keys are image ids (int, sorted). Rejected (:class:`~lcr_tf.datasets.base.RecordError`, reported by the job
as ``read_error`` with the file, the image id or annotation id, and the field):

* an ``images`` entry without a usable ``file_name``, ``width``, ``height``, ``f`` (2 positive numbers) or
  ``c`` (2 finite numbers), or whose id is repeated (every entry of that id);
* an image with no annotation;
* an annotation without an integer ``id`` or whose id is repeated, whose ``keypoints_cam`` is not 21 x 3
  finite numbers with Z > 0 or ``keypoints_img`` not 21 x 2 finite numbers, whose ``bbox`` (when given)
  is not 4 finite numbers with w, h >= 0, or whose 2D disagrees with its 3D (above): the whole image is
  rejected, so that no person of it goes untaught;
* an image whose people's 3D is not plausibly in millimetres (:func:`lcr_tf.contracts.skeleton.check_metres`
  after the conversion).

An ``images`` entry without an integer ``id`` and an annotation whose ``image_id`` names no image get keys
of their own, ``("image", position)`` and ``("annotation", position)``, listed in every split and rejected,
so that nothing in the file goes unreported. A missing image file is left to the job (``image_missing``,
naming the file). A file that is not JSON or has no ``images`` / ``annotations`` list stops the job.

The annotation file is parsed once per worker process (a module-level cache keyed by the file's path,
size and modification time) into compact arrays; the reader pickles as its options only.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

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

SKELETON = skeleton_lib.MUCO21
J = SKELETON.num_joints
ANNOTATION_FILE = "MuCo-3DHP.json"
SPLITS = ("train", "train_minus_val", "val")
DEFAULT_VAL_FRACTION = 0.02
# 0: keypoints_img is a projection (continuous pixels), see the module docstring.
DEFAULT_KEYPOINT_OFFSET = 0.0
# Pixels. The release's 2D is its own projection of the 3D (residuals of float rounding); room is left for
# a lens distortion of a few pixels, while another person's 2D, another image's camera or swapped axes give
# tens to hundreds of pixels.
DEFAULT_MAX_REPROJECTION_PX = 10.0
MM_PER_M = 1000.0
_FIELDS = (("keypoints_cam", 3), ("keypoints_img", 2))


@dataclasses.dataclass
class MucoIndex:
    """One parsed annotation file, in arrays (no JSON objects kept).

    Attributes:
      file: the file's base name, for messages.
      image_ids: (N,) int64 sorted ids of the well-formed ``images`` entries.
      file_names: (N,) their ``file_name``; image_sets: (N,) the first folder of it ('' for none).
      sizes: (N, 2) int64 width, height pixels. intrinsics: (N, 4) float64 fx, fy, cx, cy as in the file.
      image_problems: image id or ``("image", position)`` -> reason, for the malformed entries.
      annotation_id: (M,) int64 (-1 where missing); position: (M,) int64 index in ``annotations``.
      image_of: (M,) int64 the ``image_id`` of each row.
      keypoints_cam: (M, 21, 3) float32 millimetres; keypoints_img: (M, 21, 2) float32 pixels; NaN where
        the row is malformed.
      bbox: (M, 4) float32 ``[x, y, w, h]`` pixels (NaN where absent or malformed).
      reprojection_px: (M,) float64 largest joint distance between ``keypoints_img`` and the projection of
        ``keypoints_cam`` (NaN where either is malformed).
      problems: row -> reason, for malformed annotations.
      orphans: ``("annotation", position)`` -> reason, for annotations naming no image.
      order: (M,) int64 rows sorted by image (stable); sorted_image: (M,) ``image_of[order]``.
    """

    file: str
    image_ids: np.ndarray
    file_names: np.ndarray
    image_sets: np.ndarray
    sizes: np.ndarray
    intrinsics: np.ndarray
    image_problems: Dict[Any, str]
    annotation_id: np.ndarray
    position: np.ndarray
    image_of: np.ndarray
    keypoints_cam: np.ndarray
    keypoints_img: np.ndarray
    bbox: np.ndarray
    reprojection_px: np.ndarray
    problems: Dict[int, str]
    orphans: Dict[Tuple[str, int], str]
    order: np.ndarray
    sorted_image: np.ndarray

    def image_row(self, image_id: int) -> Optional[int]:
        """The index of ``image_id`` in :attr:`image_ids`, or None."""
        i = int(np.searchsorted(self.image_ids, image_id))
        return i if i < self.image_ids.size and self.image_ids[i] == image_id else None

    def rows_of(self, image_id: int) -> np.ndarray:
        """(A,) int64 annotation rows of ``image_id``, in file order."""
        lo, hi = np.searchsorted(self.sorted_image, [image_id, image_id + 1])
        return self.order[lo:hi]

    def where(self, row: int) -> str:
        """``"<file>: annotation id 7 (annotations[3])"``."""
        return f"{self.file}: annotation id {self.annotation_id[row]} (annotations[{self.position[row]}])"


def _numbers(value, count: int) -> Optional[List[float]]:
    """``value`` as ``count`` finite floats, or None when it is not a list of that many finite numbers."""
    if not (isinstance(value, list) and len(value) == count):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return None
    return [float(v) for v in value]


def _image_problem(entry: Dict[str, Any], where: str) -> Optional[str]:
    """Why an ``images`` entry cannot be used, or None."""
    name, width, height = entry.get("file_name"), entry.get("width"), entry.get("height")
    if not isinstance(name, str) or not name:
        return f"{where}: field 'file_name' is missing or not a string"
    if not (is_int(width) and is_int(height) and width > 0 and height > 0):
        return f"{where}: fields 'width', 'height' must be positive integers, got {width!r}, {height!r}"
    f = _numbers(entry.get("f"), 2)
    if f is None or min(f) <= 0:
        return f"{where}: field 'f' is {entry.get('f')!r}, expected 2 positive numbers [fx, fy] (pixels)"
    if _numbers(entry.get("c"), 2) is None:
        return f"{where}: field 'c' is {entry.get('c')!r}, expected 2 finite numbers [cx, cy] (pixels)"
    return None


def _stack_rows(values: Sequence[Any], dims: int, field: str, where) -> Tuple[np.ndarray, Dict[int, str]]:
    """Stacks per-annotation (21, dims) lists into (M, 21, dims) float32; malformed rows are NaN with a reason.

    One conversion of the whole list when every row is well formed (the usual case); a row-by-row look,
    for the reasons, only when it is not.
    """
    shape = (J, dims)
    try:
        stacked = np.asarray(values)
        if stacked.dtype.kind in "iuf" and stacked.shape == (len(values),) + shape:
            return stacked.astype(np.float32), {}
    except ValueError:  # ragged rows
        pass
    out = np.full((len(values),) + shape, np.nan, np.float32)
    problems: Dict[int, str] = {}
    for r, value in enumerate(values):
        if value is None:
            problems[r] = f"{where(r)}: has no field {field!r}"
            continue
        try:
            arr = np.asarray(value)
        except ValueError:
            arr = None
        if arr is None or arr.shape != shape:
            got = "ragged rows" if arr is None else f"shape {arr.shape}"
            problems[r] = f"{where(r)}: field {field!r} has {got}, expected {J} x {dims} numbers"
        elif arr.dtype.kind not in "iuf":
            problems[r] = f"{where(r)}: field {field!r} holds a value that is not a number"
        else:
            out[r] = arr
    return out, problems


def parse_index(data: Any, file: str) -> MucoIndex:
    """The :class:`MucoIndex` of a loaded ``MuCo-3DHP.json`` (``file``: its name, for messages).

    Raises:
      ValueError: not an object with ``images`` and ``annotations`` lists; problems of single entries are
        recorded, not raised.
    """
    coco_style.check_lists(data, file)

    entries: Dict[int, Dict[str, Any]] = {}
    image_problems: Dict[Any, str] = {}
    # One pass over the JSON objects: parsing, once per process, not a per-image hot path.
    for pos, entry in enumerate(data["images"]):
        image_id = entry.get("id") if isinstance(entry, dict) else None
        if not is_int(image_id):
            image_problems[("image", pos)] = f"{file}: images[{pos}] has no integer field 'id'"
            continue
        if image_id in entries or image_id in image_problems:
            image_problems[image_id] = f"{file}: images has more than one entry with id {image_id}"
            entries.pop(image_id, None)
            continue
        problem = _image_problem(entry, f"{file}: images[{pos}] (id {image_id})")
        if problem:
            image_problems[image_id] = problem
        else:
            entries[image_id] = entry
    image_ids = np.array(sorted(entries), np.int64)
    good = [entries[i] for i in image_ids.tolist()]
    file_names = np.array([e["file_name"] for e in good], dtype=object)
    image_sets = np.array([n.split("/", 1)[0] if "/" in n else "" for n in file_names], dtype=object)
    sizes = np.array([[e["width"], e["height"]] for e in good], np.int64).reshape(-1, 2)
    intrinsics = np.array([list(e["f"]) + list(e["c"]) for e in good], np.float64).reshape(-1, 4)

    ids, positions, image_of, values = [], [], [], {name: [] for name, _ in _FIELDS}
    boxes: List[Any] = []
    orphans: Dict[Tuple[str, int], str] = {}
    id_problems: Dict[int, str] = {}
    for pos, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            orphans[("annotation", pos)] = f"{file}: annotations[{pos}] is not an object"
            continue
        image_id, ann_id = ann.get("image_id"), ann.get("id")
        if not is_int(image_id) or (image_id not in entries and image_id not in image_problems):
            orphans[("annotation", pos)] = (f"{file}: annotation id {ann_id} (annotations[{pos}]): field "
                                            f"'image_id' {image_id!r} names no image of 'images'")
            continue
        if not is_int(ann_id):
            id_problems[len(ids)] = (f"{file}: annotations[{pos}] (image id {image_id}): field 'id' is "
                                     f"missing or not an integer")
        ids.append(ann_id if is_int(ann_id) else -1)
        positions.append(pos)
        image_of.append(image_id)
        for name, _ in _FIELDS:
            values[name].append(ann.get(name))
        boxes.append(ann.get("bbox"))
    m = len(ids)
    annotation_id = np.asarray(ids, np.int64).reshape(m)
    position = np.asarray(positions, np.int64).reshape(m)
    image_of_rows = np.asarray(image_of, np.int64).reshape(m)

    def where(r):
        return f"{file}: annotation id {annotation_id[r]} (annotations[{position[r]}])"

    problems: Dict[int, str] = dict(id_problems)
    arrays = {}
    for name, dims in _FIELDS:
        arrays[name], bad = _stack_rows(values[name], dims, name, where)
        for r, reason in bad.items():
            problems.setdefault(r, reason)
    cam, img = arrays["keypoints_cam"], arrays["keypoints_img"]

    # Value checks, vectorised over the rows.
    checked = np.ones(m, bool)
    checked[list(problems)] = False
    for name, arr in (("keypoints_cam", cam), ("keypoints_img", img)):
        finite = np.all(np.isfinite(arr), axis=-1)
        for r in np.flatnonzero(checked & ~finite.all(axis=1)):
            joint = SKELETON.joint_names[int(np.argmin(finite[r]))]
            problems[int(r)] = f"{where(r)}: field {name!r} holds NaN or inf (joint {joint})"
            checked[r] = False
    with np.errstate(invalid="ignore"):
        behind = cam[..., 2] <= 0
    for r in np.flatnonzero(checked & behind.any(axis=1)):
        joint = SKELETON.joint_names[int(np.argmax(behind[r]))]
        problems[int(r)] = (f"{where(r)}: field 'keypoints_cam' gives {joint} the depth Z = "
                            f"{cam[r, SKELETON.index(joint), 2]:g} mm, expected Z > 0 (in front of the camera)")
    bbox = np.full((m, 4), np.nan, np.float32)
    for r, box in enumerate(boxes):
        if box is None:
            continue
        numbers = _numbers(box, 4)
        if numbers is None or min(numbers[2:]) < 0:
            problems.setdefault(r, f"{where(r)}: field 'bbox' is {box!r}, expected 4 finite numbers "
                                   f"[x, y, w, h] with w, h >= 0")
        else:
            bbox[r] = numbers

    # Duplicate annotation ids reject every image that holds one of them.
    valid_ids = annotation_id[annotation_id >= 0] if m else annotation_id
    unique, counts = np.unique(valid_ids, return_counts=True)
    for dup in unique[counts > 1].tolist():
        rows = np.flatnonzero(annotation_id == dup)
        listed = ", ".join(f"annotations[{p}]" for p in position[rows].tolist())
        for r in rows.tolist():
            problems[r] = f"{file}: annotation id {dup} is used more than once ({listed})"

    # Reprojection residuals, vectorised over every row of a well-formed image.
    image_index = np.searchsorted(image_ids, image_of_rows)
    known = image_index < image_ids.size
    known[known] &= image_ids[image_index[known]] == image_of_rows[known]
    k = np.full((m, 4), np.nan)
    k[known] = intrinsics[image_index[known]]
    with np.errstate(invalid="ignore", divide="ignore"):
        projected = cam[..., :2] / cam[..., 2:3] * k[:, None, :2] + k[:, None, 2:]
        reprojection = np.linalg.norm(projected - img, axis=-1).max(axis=-1) if m else np.zeros(0)

    order = np.argsort(image_of_rows, kind="stable")  # stable: an image's rows stay in file order
    return MucoIndex(file=file, image_ids=image_ids, file_names=file_names, image_sets=image_sets, sizes=sizes,
                     intrinsics=intrinsics, image_problems=image_problems, annotation_id=annotation_id,
                     position=position, image_of=image_of_rows, keypoints_cam=cam, keypoints_img=img, bbox=bbox,
                     reprojection_px=reprojection, problems=problems, orphans=orphans, order=order,
                     sorted_image=image_of_rows[order])


_INDEXES = coco_style.ParsedFileCache("MuCo-3DHP annotation file")


def load_index(path: str) -> MucoIndex:
    """The :class:`MucoIndex` of annotation file ``path`` (any ``apache_beam.io.filesystems`` path), parsed
    once per process and kept while the file is unchanged (:class:`lcr_tf.datasets.coco_style.ParsedFileCache`).

    Raises:
      FileNotFoundError: no such file. ValueError: not JSON, or not a MuCo-3DHP annotation file (named).
    """
    return _INDEXES.get(path, parse_index)


def unit_hash(ids: np.ndarray) -> np.ndarray:
    """(N,) int ids -> (N,) float64 in [0, 1): a fixed mix of each id alone (SplitMix64's finaliser), so a
    split by it does not depend on the file's order or on the other ids."""
    z = np.asarray(ids).astype(np.int64).view(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):  # modular arithmetic on purpose
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def parse_image_sets(text: str) -> Tuple[str, ...]:
    """``"augmented_set, unaugmented_set"`` -> sorted folder names; ``""`` -> () (every image)."""
    names = sorted({part.strip().strip("/") for part in str(text).split(",") if part.strip()})
    if any("/" in n for n in names):
        raise ValueError(f"muco: image_sets are first-level folders of file_name, got {text!r}")
    return tuple(names)


class MucoReader(DatasetReader):
    """MuCo-3DHP composites with every person's 2D and 3D pose (see the module docstring).

    Args:
      input: ROOT, the folder holding ``MuCo-3DHP.json`` and the image folders.
      split: ``train`` (every image), ``train_minus_val`` or ``val`` (``val_fraction`` of the images by a
        hash of their id).
      annotation_file: a MuCo-3DHP-format JSON file, instead of ``input``.
      image_dir: the folder that ``file_name`` is relative to with ``annotation_file`` (default: the
        file's folder).
      val_fraction: the share of images in ``val``, in (0, 1).
      image_sets: comma-separated first-level folders of ``file_name`` to read (``unaugmented_set``); empty
        for every image.
      keypoint_offset: pixels added to ``keypoints_img``, ``bbox`` and ``c`` (0: continuous pixels).
      max_reprojection_px: a person whose 2D is farther than this from the projection of its 3D rejects
        its image (``inf`` turns the check off).
    """

    name = "muco"
    skeleton = SKELETON.name

    def __init__(self, input: Optional[str] = None, split: str = "train", annotation_file: Optional[str] = None,
                 image_dir: Optional[str] = None, val_fraction: float = DEFAULT_VAL_FRACTION,
                 image_sets: str = "", keypoint_offset: float = DEFAULT_KEYPOINT_OFFSET,
                 max_reprojection_px: float = DEFAULT_MAX_REPROJECTION_PX):
        super().__init__()
        if annotation_file and input:
            raise ValueError("muco: give --input=ROOT or --reader_option=annotation_file=PATH, not both")
        if not annotation_file and not input:
            raise ValueError(f"muco: needs --input=ROOT (the folder holding {ANNOTATION_FILE}) or "
                             "--reader_option=annotation_file=PATH")
        if image_dir and not annotation_file:
            raise ValueError("muco: image_dir goes with annotation_file; with --input the images are in ROOT")
        if split not in SPLITS:
            raise ValueError(f"muco: --split must be one of {', '.join(SPLITS)}, got {split!r}")
        if not 0.0 < float(val_fraction) < 1.0:
            raise ValueError(f"muco: val_fraction must be in (0, 1), got {val_fraction!r}")
        if not math.isfinite(float(keypoint_offset)):
            raise ValueError(f"muco: keypoint_offset must be finite, got {keypoint_offset!r}")
        if not float(max_reprojection_px) > 0:
            raise ValueError(f"muco: max_reprojection_px must be > 0, got {max_reprojection_px!r}")
        self.input = input
        self.split = split
        self.annotation_file = annotation_file
        self.image_dir = image_dir
        self.val_fraction = float(val_fraction)
        self.image_sets = parse_image_sets(image_sets)
        self.keypoint_offset = float(keypoint_offset)
        self.max_reprojection_px = float(max_reprojection_px)

    # ------------------------------------------------------------------ files

    def annotation_path(self) -> str:
        return self.annotation_file or join_path(self.input, ANNOTATION_FILE)

    def images_path(self) -> str:
        if self.annotation_file:
            return self.image_dir or os.path.dirname(self.annotation_file) or "."
        return self.input

    def index(self) -> MucoIndex:
        return self.cached("index", lambda: load_index(self.annotation_path()))

    def setup(self) -> None:
        self.index()

    # ------------------------------------------------------------------ keys

    def in_split(self, image_ids: np.ndarray) -> np.ndarray:
        """(N,) bool: which of ``image_ids`` belong to :attr:`split`."""
        ids = np.asarray(image_ids, np.int64)
        if self.split == "train":
            return np.ones(ids.shape, bool)
        held_out = unit_hash(ids) < self.val_fraction
        return held_out if self.split == "val" else ~held_out

    def list_items(self) -> List[Any]:
        """Image ids (int, sorted) of the split (and ``image_sets``), then the ``("image", position)`` and
        ``("annotation", position)`` keys of entries that name no image, sorted. Images whose entry is
        malformed are listed whatever ``image_sets`` says (their folder may be unknown), by their id's split."""
        index = self.index()
        keep = self.in_split(index.image_ids)
        if self.image_sets:
            keep &= np.isin(index.image_sets.astype(str), self.image_sets)
        broken = np.array(sorted(k for k in index.image_problems if is_int(k)), np.int64)
        ids = np.union1d(index.image_ids[keep], broken[self.in_split(broken)])
        strays = coco_style.stray_keys(index)
        return ids.tolist() + strays

    def key_name(self, key) -> str:
        return coco_style.stray_key_name(key) if isinstance(key, tuple) else f"{int(key):06d}"

    # ------------------------------------------------------------------ records

    def read(self, key) -> ImageRecord:
        index = self.index()
        name = self.key_name(key)
        coco_style.reject_listed_problem(index, key, name)
        i = index.image_row(key)
        if i is None:
            raise RecordError(name, f"{index.file}: no image with id {key}")
        rows = index.rows_of(key)
        where = f"{index.file}: image id {key} ({index.file_names[i]})"
        if rows.size == 0:
            raise RecordError(name, f"{where} has no annotation")
        bad = [index.problems[r] for r in rows.tolist() if r in index.problems]
        if bad:
            raise RecordError(name, "; ".join(bad))
        far = rows[index.reprojection_px[rows] > self.max_reprojection_px]
        if far.size:
            raise RecordError(name, "; ".join(
                f"{index.where(r)}: 'keypoints_img' is {index.reprojection_px[r]:.3g} px from the projection of "
                f"'keypoints_cam' through the image's f, c (at most {self.max_reprojection_px:g} px)"
                for r in far.tolist()))
        camera_m = index.keypoints_cam[rows].astype(np.float64) / MM_PER_M             # (Q, 21, 3)
        try:
            skeleton_lib.check_metres(camera_m, SKELETON, where=f"{where}: keypoints_cam / {MM_PER_M:g}")
        except ValueError as e:
            raise RecordError(name, str(e)) from None
        width, height = (int(v) for v in index.sizes[i])
        offset = self.keypoint_offset
        pose2d = index.keypoints_img[rows].astype(np.float64) + offset                  # (Q, 21, 2)
        visible = np.all((pose2d >= 0) & (pose2d < np.array([width, height], np.float64)), axis=-1)
        annotated = np.ones(visible.shape, bool)
        centre = skeleton_lib.body_centre(camera_m, SKELETON)[:, 0]
        centred = skeleton_lib.centre_poses(camera_m, SKELETON)
        pelvis = camera_m[:, SKELETON.index("pelvis")]
        box = index.bbox[rows].astype(np.float64)
        xyxy = np.concatenate([box[:, :2], box[:, :2] + box[:, 2:]], axis=1) + offset  # NaN where absent
        people = [Person(pose2d=pose2d[q].astype(np.float32), annotated=annotated[q], visible=visible[q],
                         pose3d=centred[q].astype(np.float32), person_id=str(index.annotation_id[r]),
                         extras={"centre_camera": centre[q].astype(np.float32),
                                 "pelvis_camera": pelvis[q].astype(np.float32),
                                 "annotation_id": int(index.annotation_id[r]),
                                 "bbox": xyxy[q].tolist() if np.all(np.isfinite(xyxy[q])) else None,
                                 "reprojection_px": float(index.reprojection_px[r])})
                  for q, r in enumerate(rows.tolist())]
        intrinsics = index.intrinsics[i] + np.array([0.0, 0.0, offset, offset])
        return ImageRecord(
            image_id=name, dataset=self.name, skeleton=self.skeleton, people=people,
            image_path=join_path(self.images_path(), str(index.file_names[i])), height=height, width=width,
            intrinsics=intrinsics.astype(np.float32),
            metadata={"muco_image_id": int(key), "file_name": str(index.file_names[i]),
                      "image_set": str(index.image_sets[i]), "split": self.split,
                      "reprojection_px": float(index.reprojection_px[rows].max())})
