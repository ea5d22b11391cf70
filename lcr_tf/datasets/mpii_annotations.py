r"""Parsing of the MPII Human Pose annotation release (the ``.mat`` file) into the package's records.

:func:`load_release` reads the ``RELEASE`` struct into a :class:`Release` (cached per path by
:func:`cached_release`), and :func:`parse_image` turns one ``annolist`` entry into an
:class:`~lcr_tf.datasets.base.ImageRecord` with its people in package pixel coordinates. The reader
(:class:`lcr_tf.datasets.mpii.MpiiReader`) and the evaluation of the test people both build on these;
the fields read, the file's quirks, the coordinate shift and the record layout are described below.

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

import threading
from typing import Any, Dict, List, Optional

import numpy as np

from lcr_tf.contracts import geometry
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets.base import ImageRecord, Person, RecordError, file_name, join_path, load_mat

DATASET_NAME = "mpii"

# Added to MPII's x and y: MATLAB puts the centre of pixel index i at i + 1 (the top-left pixel's centre is
# (1, 1)), the package at i + 0.5 (lcr_tf.contracts.geometry), so a coordinate moves by 0.5 - 1 = -0.5.
PIXEL_OFFSET = geometry.PIXEL_CENTRE_OFFSET - 1.0
_NUM_JOINTS = skeleton_lib.MPII16.num_joints


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


def annorect_table(record: ImageRecord) -> List[Dict[str, Any]]:
    """Every ``annorect`` of a record of :func:`parse_image`, annotated or not, in the annotation's order:
    the people the MPII toolkit's ``pred`` struct is aligned with.

    Returns:
      One dict per annorect, ``annorect`` 1..``metadata["num_annorect"]``: ``{annorect: int (1-based),
      person_id: the Person's id (str) or None for an annorect without joints, single_person: bool,
      objpos: (2,) package pixels or None, scale: float (person height / 200 px) or None, head_box: (4,)
      package pixels xyxy or None}``.
    """
    single = set(int(j) for j in record.metadata.get("single_person", ()))
    rows = {int(p.extras["annorect"]): {"person_id": p.person_id, "objpos": p.extras.get("objpos"),
                                        "scale": p.extras.get("scale"), "head_box": p.extras.get("head_box")}
            for p in record.people}
    for rect in record.metadata.get("unannotated", ()):
        rows[int(rect["annorect"])] = {"person_id": None, "objpos": rect.get("objpos"), "scale": rect.get("scale"),
                                       "head_box": rect.get("head_box")}
    return [dict(annorect=j, single_person=j in single, **rows[j]) for j in sorted(rows)]


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
    return ImageRecord(image_id=name, dataset=DATASET_NAME, skeleton=skeleton_lib.MPII16.name, people=people,
                       image_path=join_path(images_dir, name) if images_dir else name, metadata=metadata)
