r"""The ``mpii`` dataset: MPII Human Pose (v1, annotation release u12_2), read from its own ``.mat`` file.

Expected folder (``--input=ROOT``), as the two official archives extract::

    ROOT/images/015601864.jpg ...                                  (images archive, 24,987 JPEGs)
    ROOT/mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat     (annotation archive)

The ``.mat`` file holds one struct, ``RELEASE``, read with ``scipy.io.loadmat(struct_as_record=False,
squeeze_me=True)``. The fields used (MATLAB indices are 1-based):

* ``annolist(i).image.name``: the image file name under ``images/``.
* ``annolist(i).annorect(j)``: the people of image i. ``x1 y1 x2 y2``: the head box (pixels);
  ``objpos.x / .y``: a rough body centre (pixels); ``scale``: the person's height / 200 px;
  ``annopoints.point``: the joints, a struct array with ``id`` (0..15, the order of
  :data:`lcr_tf.contracts.skeleton.MPII16`), ``x``, ``y`` (pixels) and ``is_visible`` (0 / 1 as a number or a
  ``'0'`` / ``'1'`` string; empty or absent when the annotators did not say).
* ``annolist(i).vididx`` (1-based into ``video_list``, the YouTube id) and ``frame_sec``: the video and the
  time the frame comes from; empty for a few images.
* ``img_train(i)``: 1 for a training image, 0 for a test image (test images have no joints).
* ``single_person{i}``: the 1-based ``annorect`` indices of the single-person evaluation's people
  (sufficiently separated people); the other annotated people of an image form its multi-person set.
* ``act(i)``: ``act_name``, ``cat_name``, ``act_id`` (the activity; -1 / empty when unknown).

The real file's quirks are handled: one-element struct arrays come squeezed to a bare struct, missing
values come as empty arrays, a field may be absent from one struct array and present in another, and
``annorect`` entries without ``annopoints`` (every person of the test images, and unannotated people of
training images) are not people with joints: they are kept in ``ImageRecord.metadata["unannotated"]``
(head box, objpos, scale) and counted in ``metadata["num_unannotated"]``, never given invented joints.

Coordinates. MPII's are MATLAB pixel coordinates (the centre of the top-left pixel is (1, 1)); the reader
adds :data:`PIXEL_OFFSET` (-0.5) to every x and y it returns (joints, head boxes, objpos) so that they
follow the package's convention (:mod:`lcr_tf.contracts.geometry`: the centre of the top-left pixel is
(0.5, 0.5)).
:func:`to_mpii_coordinates` undoes it, for writing predictions in MPII's own format.

Splits (``--split``):

* ``train``: every image with ``img_train = 1`` (18,079 in u12_2); those without an annotated person are
  listed too, so that the counts add up to the release's, and rejected by the reader (``read_error``,
  "has no annotated person").
* ``val``: the validation set of LCR-Net++ (Sec 4.2): ``val_images`` (1,000) training images with at least
  one annotated person, drawn with ``val_seed`` so that all the images of one video are on the same side
  (:func:`mpii_validation_split`). With ``--reader_option=val_split_file=PATH`` the split is read from
  PATH when it exists, else computed and written there (JSON), so that training and evaluation share it.
* ``train_minus_val``: the training images whose video has no image in ``val``.
* ``test``: refused by the reader (``ValueError``): test images have no joints and the TFRecord job writes
  only people with joints. Evaluation reads the test people (head box, objpos, scale) with
  :func:`load_release` and :func:`parse_image`, which this reader also uses.

People. ``Person.pose2d`` is (16, 2) pixels in the MPII order, NaN where a joint has no point;
``annotated`` marks the points given; ``visible`` is ``is_visible``, with a joint whose flag is missing
taken as visible (as the job takes unflagged joints) and listed in ``extras["visibility_unknown"]``.
``person_id`` is the 1-based ``annorect`` index (as text). ``extras``: ``annorect`` (that index),
``head_box`` ((4,) xyxy pixels, or None; PCKh's head size is 0.6 x its diagonal), ``objpos`` ((2,) pixels
or None), ``scale`` (float or None), ``single_person`` (bool), ``visibility_unknown`` ((16,) bool).
``ImageRecord.metadata``: ``index`` (0-based annolist index), ``split``, ``img_train``, ``activity``
(act_name, cat_name, act_id), ``video_id``, ``vididx``, ``frame_sec``, ``single_person`` and
``multi_person`` (1-based annorect indices of the annotated people in and outside the single-person set;
MPII's multi-person AP evaluates the latter, split into groups by the evaluation toolkit's own groups file,
which is not part of this release), ``num_annorect``, ``num_unannotated``, ``unannotated``.

Bad records raise :class:`~lcr_tf.datasets.base.RecordError` naming the file and field, e.g.
``mpii_human_pose_v1_u12_1.mat: annolist(17).annorect(2).annopoints.point(3) has no field 'x'``. A missing
image file is left to the job (``image_missing``). Image sizes are not in the annotation, so they are not
checked against it.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from lcr_tf.datasets.base import (DatasetReader, ImageRecord, Person, RecordError, file_exists, file_name,
                                  is_url, join_path, load_json, load_mat, open_file)
from lcr_tf.contracts import geometry
from lcr_tf.contracts import skeleton as skeleton_lib

ANNOTATION_FILE = "mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat"
IMAGES_DIR = "images"
# Added to MPII's x and y: MATLAB puts the centre of pixel index i at i + 1 (the top-left pixel's centre is
# (1, 1)), the package at i + 0.5 (lcr_tf.contracts.geometry), so a coordinate moves by 0.5 - 1 = -0.5.
PIXEL_OFFSET = geometry.PIXEL_CENTRE_OFFSET - 1.0
SPLITS = ("train", "val", "train_minus_val", "test")
DEFAULT_VAL_IMAGES = 1000
SPLIT_FILE_FORMAT = "lcr_tf/mpii_validation_split/1"
_NUM_JOINTS = skeleton_lib.MPII16.num_joints


# --------------------------------------------------------------------------- file access


# --------------------------------------------------------------------------- .mat helpers


def _items(value) -> List[Any]:
    """A squeezed MATLAB array as a list: [] for an empty array, [x] for a squeezed scalar or struct."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return list(value.ravel()) if value.size else []
    return [value]


def _is_empty(value) -> bool:
    return value is None or (isinstance(value, (np.ndarray, str)) and len(np.ravel(value)) == 0)


def _field(struct, name: str, where: str, required: bool = True):
    """``struct.name``; None when absent and not required; RecordError naming ``where`` otherwise."""
    if hasattr(struct, "_fieldnames") and name in struct._fieldnames:
        return getattr(struct, name)
    if not hasattr(struct, "_fieldnames"):
        raise _FieldError(f"{where} is not a struct (got {type(struct).__name__})")
    if required:
        raise _FieldError(f"{where} has no field {name!r}")
    return None


class _FieldError(ValueError):
    """A malformed field; the text names the file's field path."""


def _number(value, where: str, optional: bool = False) -> Optional[float]:
    """A finite scalar from a number, a 1-element array or a numeric string; None when empty and optional."""
    if _is_empty(value):
        if optional:
            return None
        raise _FieldError(f"{where} is empty")
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise _FieldError(f"{where} holds {value.size} values, expected one")
        value = value.ravel()[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _FieldError(f"{where} is not a number: {value!r}") from None
    if not np.isfinite(number):
        raise _FieldError(f"{where} is not finite: {number}")
    return number


def _text(value) -> str:
    if _is_empty(value):
        return ""
    if isinstance(value, np.ndarray):
        value = value.ravel()[0]
    return str(value)


# --------------------------------------------------------------------------- the release


class Release:
    """The parsed ``RELEASE`` struct: per-image lists, all of length N (the number of images).

    Attributes:
      path: the ``.mat`` file.
      annolist: N ``scipy.io.matlab.mat_struct`` (``image``, ``annorect``, ``vididx``, ``frame_sec``).
      img_train: (N,) int, 1 for training images, 0 for test images.
      single_person: N (k,) int64 arrays of 1-based annorect indices.
      act: N act structs, or None when the file has no ``act``.
      video_list: the video ids (``vididx`` - 1 indexes it).
    """

    def __init__(self, path: str, annolist, img_train, single_person, act, video_list):
        self.path = path
        self.annolist = annolist
        self.img_train = img_train
        self.single_person = single_person
        self.act = act
        self.video_list = video_list
        self._names: Optional[List[str]] = None

    @property
    def num_images(self) -> int:
        return len(self.annolist)

    @property
    def file_name(self) -> str:
        return file_name(self.path)

    def where(self, index: int) -> str:
        """``FILE: annolist(i)`` for messages (MATLAB's 1-based index)."""
        return f"{self.file_name}: annolist({index + 1})"

    def image_name(self, index: int) -> str:
        where = self.where(index)
        return _text(_field(_field(self.annolist[index], "image", where), "name", where + ".image"))

    def image_names(self) -> List[str]:
        """The N image names ('' where unreadable)."""
        if self._names is None:
            names = []
            for i in range(self.num_images):
                try:
                    names.append(self.image_name(i))
                except _FieldError:
                    names.append("")
            self._names = names
        return self._names

    def vididx(self, index: int) -> Optional[int]:
        """The 1-based video index of image ``index``, or None when the image has none."""
        value = _field(self.annolist[index], "vididx", self.where(index), required=False)
        number = _number(value, self.where(index) + ".vididx", optional=True)
        return None if number is None else int(number)

    def has_annotated_person(self, index: int) -> bool:
        """Whether some annorect of image ``index`` has at least one annopoints point (no validation)."""
        rects = _field(self.annolist[index], "annorect", self.where(index), required=False)
        for rect in _items(rects):
            if not hasattr(rect, "_fieldnames") or "annopoints" not in rect._fieldnames:
                continue
            points = rect.annopoints
            if hasattr(points, "_fieldnames") and "point" in points._fieldnames and _items(points.point):
                return True
        return False


def load_release(path: str) -> Release:
    """Reads ``mpii_human_pose_v1_u12_1.mat`` (a local path or a URL, see :func:`lcr_tf.datasets.base.open_file`).

    Raises:
      FileNotFoundError: no such file.
      ValueError: not a MATLAB file, or a ``RELEASE`` without the fields above or with lists of different
        lengths (the message names the file and field).
    """
    name = file_name(path)
    mat = load_mat(path, "MPII annotation file", struct_as_record=False, squeeze_me=True)
    if "RELEASE" not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{name}: has no variable 'RELEASE' (found {found})")
    release = mat["RELEASE"]
    try:
        annolist = _items(_field(release, "annolist", f"{name}: RELEASE"))
        img_train = np.array([_number(v, f"{name}: RELEASE.img_train({i + 1})")
                              for i, v in enumerate(_items(_field(release, "img_train", f"{name}: RELEASE")))],
                             dtype=np.int64)
        single_raw = _field(release, "single_person", f"{name}: RELEASE", required=False)
        if single_raw is None:
            single = [np.zeros(0, np.int64)] * len(annolist)
        else:
            # A cell array of per-image index lists; squeezing turns a one-person list into a scalar.
            cells = single_raw if isinstance(single_raw, np.ndarray) and single_raw.dtype == object \
                else np.array([single_raw], dtype=object)
            single = [np.array([int(_number(v, f"{name}: RELEASE.single_person{{{i + 1}}}")) for v in _items(cell)],
                               dtype=np.int64) for i, cell in enumerate(cells.ravel())]
        act_raw = _field(release, "act", f"{name}: RELEASE", required=False)
        act = None if act_raw is None else _items(act_raw)
        videos = [_text(v) for v in _items(_field(release, "video_list", f"{name}: RELEASE", required=False))]
    except _FieldError as e:
        raise ValueError(str(e)) from None
    for label, values in (("img_train", img_train), ("single_person", single), ("act", act)):
        if values is not None and len(values) != len(annolist):
            raise ValueError(f"{name}: RELEASE.{label} has {len(values)} entries, annolist has {len(annolist)}")
    if not set(np.unique(img_train)) <= {0, 1}:
        raise ValueError(f"{name}: RELEASE.img_train holds values other than 0 and 1")
    return Release(path, annolist, img_train, single, act, videos)


_RELEASE_CACHE: Dict[str, Release] = {}
_RELEASE_LOCK = threading.Lock()


def cached_release(path: str) -> Release:
    """:func:`load_release`, once per process and path (the parsed release is large: one copy is shared by
    every reader object of a worker process)."""
    with _RELEASE_LOCK:
        if path not in _RELEASE_CACHE:
            if len(_RELEASE_CACHE) >= 2:
                _RELEASE_CACHE.pop(next(iter(_RELEASE_CACHE)))
            _RELEASE_CACHE[path] = load_release(path)
        return _RELEASE_CACHE[path]


# --------------------------------------------------------------------------- one image


def _visibility(value, where: str) -> Optional[bool]:
    """is_visible as True / False, or None when empty (unknown)."""
    if _is_empty(value):
        return None
    if isinstance(value, np.ndarray):
        value = value.ravel()[0]
    text = str(value).strip()
    if text in ("1", "1.0", "True", "true"):
        return True
    if text in ("0", "0.0", "False", "false"):
        return False
    raise _FieldError(f"{where} is {value!r}, expected 0 or 1")


def _points(rect, where: str):
    """The joints of one annorect: (pose2d (16, 2), annotated (16,), visible (16,), unknown (16,)) with
    MATLAB coordinates, or None when the rect has no annopoints (an unannotated person)."""
    annopoints = _field(rect, "annopoints", where, required=False)
    if _is_empty(annopoints):
        return None
    points = _items(_field(annopoints, "point", where + ".annopoints"))
    if not points:
        return None
    pose = np.full((_NUM_JOINTS, 2), np.nan)
    annotated = np.zeros(_NUM_JOINTS, bool)
    visible = np.zeros(_NUM_JOINTS, bool)
    unknown = np.zeros(_NUM_JOINTS, bool)
    for k, point in enumerate(points):  # at most 16 points, a handful of fields each
        pw = f"{where}.annopoints.point({k + 1})"
        joint = _number(_field(point, "id", pw), pw + ".id")
        if joint != int(joint) or not 0 <= joint < _NUM_JOINTS:
            raise _FieldError(f"{pw}.id is {joint:g}, expected an integer in 0..{_NUM_JOINTS - 1}")
        joint = int(joint)
        if annotated[joint]:
            raise _FieldError(f"{pw}.id {joint} repeats a joint of the same person")
        pose[joint] = [_number(_field(point, "x", pw), pw + ".x"), _number(_field(point, "y", pw), pw + ".y")]
        annotated[joint] = True
        flag = _visibility(_field(point, "is_visible", pw, required=False), pw + ".is_visible")
        unknown[joint] = flag is None
        visible[joint] = True if flag is None else flag
    return pose, annotated, visible, unknown


def _rect_facts(rect, where: str) -> Dict[str, Any]:
    """Head box (4,) xyxy, objpos (2,), scale of one annorect, in MATLAB coordinates; None where absent."""
    corners = [_field(rect, n, where, required=False) for n in ("x1", "y1", "x2", "y2")]
    if all(_is_empty(c) for c in corners):
        head_box = None
    else:
        head_box = np.array([_number(c, f"{where}.{n}") for c, n in zip(corners, ("x1", "y1", "x2", "y2"))])
    objpos_raw = _field(rect, "objpos", where, required=False)
    if _is_empty(objpos_raw):
        objpos = None
    else:
        objpos = np.array([_number(_field(objpos_raw, n, where + ".objpos"), f"{where}.objpos.{n}")
                           for n in ("x", "y")])
    scale = _number(_field(rect, "scale", where, required=False), where + ".scale", optional=True)
    if scale is not None and scale <= 0:
        raise _FieldError(f"{where}.scale is {scale:g}, expected > 0")
    return {"head_box": head_box, "objpos": objpos, "scale": scale}


def _shift(values: Optional[np.ndarray]) -> Optional[np.ndarray]:
    return None if values is None else (np.asarray(values, np.float64) + PIXEL_OFFSET).astype(np.float32)


def to_mpii_coordinates(xy: np.ndarray) -> np.ndarray:
    """Package pixel coordinates (..., 2) or boxes (..., 4) -> MPII's (MATLAB) coordinates, same shape."""
    return np.asarray(xy, np.float64) - PIXEL_OFFSET


def parse_image(release: Release, index: int, images_dir: str = "", split: str = "") -> ImageRecord:
    """The people of ``annolist(index + 1)`` as an :class:`ImageRecord` (skeleton ``mpii16``).

    Annotated people become :class:`Person` objects; annorects without points go to
    ``metadata["unannotated"]`` as dicts ``{annorect, head_box, objpos, scale}`` (all of a test image's
    people). See the module docstring for every field. Coordinates are the package's (MPII's plus
    :data:`PIXEL_OFFSET`).

    Args:
      release: from :func:`load_release`.
      index: 0-based image index.
      images_dir: folder of the images (``image_path`` is ``images_dir/name``).
      split: recorded in ``metadata["split"]``.
    Raises:
      RecordError: a malformed annotation (the reason names the file and field).
    """
    where = release.where(index)
    try:
        name = release.image_name(index)
        if not name:
            raise _FieldError(f"{where}.image.name is empty")
        anno = release.annolist[index]
        rects = _items(_field(anno, "annorect", where, required=False))
        single = set(int(v) for v in release.single_person[index])
        if single and max(single) > len(rects):
            raise _FieldError(f"{release.file_name}: RELEASE.single_person{{{index + 1}}} names annorect "
                              f"{max(single)} of {len(rects)}")
        people, unannotated = [], []
        for j, rect in enumerate(rects, start=1):  # a few people per image
            rw = f"{where}.annorect({j})"
            facts = _rect_facts(rect, rw)
            facts = {"head_box": _shift(facts["head_box"]), "objpos": _shift(facts["objpos"]),
                     "scale": facts["scale"]}
            joints = _points(rect, rw)
            if joints is None:
                unannotated.append(dict(annorect=j, **facts))
                continue
            pose, annotated, visible, unknown = joints
            people.append(Person(pose2d=_shift(pose), annotated=annotated, visible=visible, person_id=str(j),
                                 extras=dict(annorect=j, single_person=j in single, visibility_unknown=unknown,
                                             **facts)))
        vididx = release.vididx(index)
        frame_sec = _number(_field(anno, "frame_sec", where, required=False), where + ".frame_sec", optional=True)
        activity = None
        if release.act is not None:
            act, aw = release.act[index], f"{release.file_name}: RELEASE.act({index + 1})"
            act_id = _number(_field(act, "act_id", aw, required=False), aw + ".act_id", optional=True)
            activity = {"act_name": _text(_field(act, "act_name", aw, required=False)),
                        "cat_name": _text(_field(act, "cat_name", aw, required=False)),
                        "act_id": None if act_id is None else int(act_id)}
    except _FieldError as e:
        raise RecordError(index, str(e)) from None
    if vididx is not None and not 1 <= vididx <= len(release.video_list):
        raise RecordError(index, f"{where}.vididx is {vididx}, but RELEASE.video_list has "
                                 f"{len(release.video_list)} videos")
    annotated_rects = [p.extras["annorect"] for p in people]
    metadata = {
        "index": int(index), "split": split, "img_train": int(release.img_train[index]), "activity": activity,
        "vididx": vididx, "video_id": None if vididx is None else release.video_list[vididx - 1],
        "frame_sec": frame_sec, "single_person": sorted(single),
        "multi_person": [j for j in annotated_rects if j not in single],
        "num_annorect": len(rects), "num_unannotated": len(unannotated), "unannotated": unannotated,
    }
    return ImageRecord(image_id=name, dataset=MpiiReader.name, skeleton=MpiiReader.skeleton, people=people,
                       image_path=join_path(images_dir, name) if images_dir else name, metadata=metadata)


# --------------------------------------------------------------------------- validation split


def mpii_validation_split(release: Release, num_images: int = DEFAULT_VAL_IMAGES,
                          seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """LCR-Net++'s validation split of the MPII training images, by whole videos.

    The candidates are the training images with at least one annotated person. They are grouped by video
    (``vididx``; an image without one is a group of its own), the groups are shuffled with ``seed`` and
    taken in that order, a group being skipped when it would overflow ``num_images``, until exactly
    ``num_images`` images are taken (or the groups run out). The training side is every training image
    whose video has no image in the validation side, so no video is on both sides.

    Args:
      release: from :func:`load_release`.
      num_images: size of the validation side (>= 1).
      seed: the shuffle's seed; the same release and seed give the same split.
    Returns:
      (val_indices, train_indices): sorted int64 0-based annolist indices.
    Raises:
      ValueError: num_images < 1, or more than there are candidates.
    """
    if int(num_images) != num_images or num_images < 1:
        raise ValueError(f"mpii_validation_split: num_images must be an integer >= 1, got {num_images!r}")
    train = np.flatnonzero(release.img_train == 1)
    videos = {int(i): release.vididx(int(i)) for i in train}
    group_of = {i: ("v", v) if v is not None else ("i", i) for i, v in videos.items()}
    candidates = [i for i in videos if release.has_annotated_person(i)]
    if num_images > len(candidates):
        raise ValueError(f"mpii_validation_split: {num_images} images asked, only {len(candidates)} training "
                         "images have an annotated person")
    groups: Dict[Tuple[str, int], List[int]] = {}
    for i in candidates:
        groups.setdefault(group_of[i], []).append(i)
    keys = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    chosen, count = set(), 0
    for g in order:
        size = len(groups[keys[g]])
        if count + size <= num_images:
            chosen.add(keys[g])
            count += size
            if count == num_images:
                break
    val = np.array(sorted(i for k in chosen for i in groups[k]), np.int64)
    rest = np.array(sorted(i for i in videos if group_of[i] not in chosen), np.int64)
    return val, rest


def write_split_file(path: str, release: Release, val: np.ndarray, train: np.ndarray, num_images: int,
                     seed: int) -> None:
    """Writes a validation split as JSON: indices (0-based) and image names, with how it was made."""
    names = release.image_names()
    payload = {"format": SPLIT_FILE_FORMAT, "annotation_file": release.file_name, "num_images": int(num_images),
               "seed": int(seed), "val_indices": [int(i) for i in val], "val_names": [names[i] for i in val],
               "train_indices": [int(i) for i in train]}
    directory = os.path.dirname(path) if not is_url(path) else ""
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open_file(path, "w", "validation split file") as f:
        f.write(json.dumps(payload, indent=1) + "\n")


def read_split_file(path: str, release: Release) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
    """Reads a split written by :func:`write_split_file` and checks it against ``release``.

    Returns:
      (val_indices, train_indices, the file's other fields).
    Raises:
      ValueError: not such a file, or indices / names that do not fit ``release`` (named).
    """
    payload = load_json(path, "validation split file", name=f"validation split file {path}")
    if not isinstance(payload, dict) or payload.get("format") != SPLIT_FILE_FORMAT:
        raise ValueError(f"validation split file {path}: 'format' is not {SPLIT_FILE_FORMAT!r}")
    names = release.image_names()
    out = []
    for key in ("val_indices", "train_indices"):
        values = payload.get(key)
        if not isinstance(values, list) or not all(isinstance(v, int) and 0 <= v < len(names) for v in values):
            raise ValueError(f"validation split file {path}: {key!r} must be a list of indices in "
                             f"0..{len(names) - 1}")
        out.append(np.array(sorted(values), np.int64))
    val_names = payload.get("val_names")
    if not isinstance(val_names, list) or len(val_names) != len(payload["val_indices"]):
        raise ValueError(f"validation split file {path}: 'val_names' must list one name per val index")
    for k, (i, n) in enumerate(zip(payload["val_indices"], val_names)):
        if names[i] != n:
            raise ValueError(f"validation split file {path}: val_names[{k}] is {n!r} but annolist({i + 1}) of "
                             f"{release.file_name} is {names[i]!r} (made from another annotation file?)")
    if np.intersect1d(out[0], out[1]).size:
        raise ValueError(f"validation split file {path}: an image is on both sides")
    return out[0], out[1], {k: v for k, v in payload.items() if not k.endswith(("_indices", "_names"))}


def load_or_create_split(release: Release, path: Optional[str], num_images: int = DEFAULT_VAL_IMAGES,
                         seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """The validation split: read from ``path`` when it exists, else computed (and written to ``path`` when
    given).

    Raises:
      ValueError: the file exists but was made with another ``num_images`` or ``seed``, or is malformed.
    """
    if path and file_exists(path):
        val, train, info = read_split_file(path, release)
        if info.get("num_images") != num_images or info.get("seed") != seed:
            raise ValueError(f"validation split file {path} was made with num_images={info.get('num_images')}, "
                             f"seed={info.get('seed')}; asked for num_images={num_images}, seed={seed} "
                             "(remove the file or change the options)")
        return val, train
    val, train = mpii_validation_split(release, num_images, seed)
    if path:
        write_split_file(path, release, val, train, num_images, seed)
    return val, train


# --------------------------------------------------------------------------- the reader


class MpiiReader(DatasetReader):
    """MPII Human Pose images with their annotated people (16 MPII joints, 2D only).

    Args:
      input: ROOT (see the module docstring).
      split: train, val, train_minus_val (test is refused: no joints).
      val_split_file: JSON file of the validation split: read when it exists, else written.
      val_images: size of the validation split.
      val_seed: seed of the validation split.
      annotation_file: the ``.mat`` file, relative to ROOT (or absolute).
    Raises:
      ValueError: an unknown split, the test split, or bad option values.
    """

    name = "mpii"
    skeleton = skeleton_lib.MPII16.name

    def __init__(self, input: str, split: str = "train", val_split_file: Optional[str] = None,
                 val_images: int = DEFAULT_VAL_IMAGES, val_seed: int = 0, annotation_file: str = ANNOTATION_FILE):
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"mpii: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        if split == "test":
            raise ValueError("mpii: the test split has no joint annotations and the TFRecord job writes only "
                             "people with joints; evaluation reads the test people (head box, objpos, scale) "
                             "with lcr_tf.datasets.mpii.load_release and parse_image")
        for label, value, lo in (("val_images", val_images, 1), ("val_seed", val_seed, 0)):
            if int(value) != value or value < lo:
                raise ValueError(f"mpii: {label} must be an integer >= {lo}, got {value!r}")
        self.input = input
        self.split = split
        self.val_split_file = val_split_file or None
        self.val_images = int(val_images)
        self.val_seed = int(val_seed)
        self.annotation_file = annotation_file

    @property
    def annotation_path(self) -> str:
        if os.path.isabs(self.annotation_file) or is_url(self.annotation_file):
            return self.annotation_file
        return join_path(self.input, self.annotation_file)

    def release(self) -> Release:
        return self.cached("release", lambda: cached_release(self.annotation_path))

    def setup(self) -> None:
        self.release()

    def list_items(self) -> List[int]:
        release = self.release()
        if self.split == "train":
            return [int(i) for i in np.flatnonzero(release.img_train == 1)]
        val, train = load_or_create_split(release, self.val_split_file, self.val_images, self.val_seed)
        return [int(i) for i in (val if self.split == "val" else train)]

    def key_name(self, key) -> str:
        names = self.release().image_names()
        return names[key] if 0 <= key < len(names) and names[key] else f"annolist({int(key) + 1})"

    def read(self, key) -> ImageRecord:
        release = self.release()
        if not 0 <= int(key) < release.num_images:
            raise RecordError(key, f"{release.file_name}: no annolist({int(key) + 1}) "
                                   f"(the release has {release.num_images} images)")
        record = parse_image(release, int(key), join_path(self.input, IMAGES_DIR), self.split)
        if not record.people:
            # Said here, with the annotation's own terms, rather than left to the job's generic rejection.
            raise RecordError(key, f"{release.where(int(key))} ({record.image_id}) has no annotated person: "
                                   f"{record.metadata['num_annorect']} annorect entries, none with "
                                   "annopoints.point")
        return record
