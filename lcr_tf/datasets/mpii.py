r"""The ``mpii`` dataset: MPII Human Pose (v1, annotation release u12_2), read from its own ``.mat`` file.

Expected folder (``--input=ROOT``), as the two official archives extract::

    ROOT/images/015601864.jpg ...                                  (images archive, 24,987 JPEGs)
    ROOT/mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat     (annotation archive)

The ``.mat`` fields read, the file's quirks, the pixel offset and the layout of the people and records are
described in :mod:`lcr_tf.datasets.mpii_annotations`, which parses them.

Splits (``--split``):

* ``train``: every image with ``img_train = 1`` (18,079 in u12_2); those without an annotated person are
  listed too, so that the counts add up to the release's, and rejected by the reader (``read_error``,
  "has no annotated person").
* ``val``: the validation set of LCR-Net++ (Sec 4.2): ``val_images`` (1,000) training images with at least
  one annotated person, drawn with ``val_seed`` so that all the images of one video are on the same side
  (:func:`mpii_validation_split`). With ``--reader_option=val_split_file=PATH`` the split is read from
  PATH when it exists, else computed and written there (JSON), so that training and evaluation share it.
* ``train_minus_val``: the training images whose video has no image in ``val``.
* ``test``: every test image (``img_train = 0``, 6,908 in u12_2), for the evaluation's test-set submission
  (:mod:`lcr_tf.evaluation.native_mpii`). Test people have a head box, objpos and scale but no joints: a
  record's ``people`` is empty and its people are in ``metadata["unannotated"]``, so every listed image
  is read (none is rejected for want of people). The TFRecord job writes only people with joints and
  refuses this split (:meth:`MpiiReader.job_refusal`).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets import mpii_annotations
from lcr_tf.datasets.base import (
    DatasetReader,
    ImageRecord,
    RecordError,
    file_exists,
    is_url,
    join_path,
    load_json,
    open_file,
)

ANNOTATION_FILE = "mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat"
IMAGES_DIR = "images"
SPLITS = ("train", "val", "train_minus_val", "test")
DEFAULT_VAL_IMAGES = 1000
SPLIT_FILE_FORMAT = "lcr_tf/mpii_validation_split/1"


# --------------------------------------------------------------------------- validation split


def mpii_validation_split(release: mpii_annotations.Release, num_images: int = DEFAULT_VAL_IMAGES,
                          seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """LCR-Net++'s validation split of the MPII training images, by whole videos.

    The candidates are the training images with at least one annotated person. They are grouped by video
    (``vididx``; an image without one is a group of its own), the groups are shuffled with ``seed`` and
    taken in that order, a group being skipped when it would overflow ``num_images``, until exactly
    ``num_images`` images are taken (or the groups run out). The training side is every training image
    whose video has no image in the validation side, so no video is on both sides.

    Args:
      release: from :func:`lcr_tf.datasets.mpii_annotations.load_release`.
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


def write_split_file(path: str, release: mpii_annotations.Release, val: np.ndarray, train: np.ndarray, num_images: int,
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


def read_split_file(path: str, release: mpii_annotations.Release) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
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


def load_or_create_split(release: mpii_annotations.Release, path: Optional[str], num_images: int = DEFAULT_VAL_IMAGES,
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
      split: train, val, train_minus_val, or test (evaluation only: people without joints).
      val_split_file: JSON file of the validation split: read when it exists, else written.
      val_images: size of the validation split.
      val_seed: seed of the validation split.
      annotation_file: the ``.mat`` file, relative to ROOT (or absolute).
    Raises:
      ValueError: an unknown split or bad option values.
    """

    name = mpii_annotations.DATASET_NAME
    skeleton = skeleton_lib.MPII16.name

    def __init__(self, input: str, split: str = "train", val_split_file: Optional[str] = None,
                 val_images: int = DEFAULT_VAL_IMAGES, val_seed: int = 0, annotation_file: str = ANNOTATION_FILE):
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"mpii: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
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

    def release(self) -> mpii_annotations.Release:
        return self.cached("release", lambda: mpii_annotations.cached_release(self.annotation_path))

    def setup(self) -> None:
        self.release()

    def job_refusal(self) -> Optional[str]:
        """The test split's people have no joints, and the TFRecord job writes only people with joints."""
        if self.split != "test":
            return None
        return ("mpii --split=test: the test images' people have no joint annotations (only a head box, "
                "objpos and scale) and the TFRecord job writes only people with joints; the test split is for "
                "the evaluation's test-set submission (python -m lcr_tf.evaluate --dataset=mpii --split=test)")

    def list_items(self) -> List[int]:
        release = self.release()
        if self.split in ("train", "test"):
            return [int(i) for i in np.flatnonzero(release.img_train == (1 if self.split == "train" else 0))]
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
        record = mpii_annotations.parse_image(release, int(key), join_path(self.input, IMAGES_DIR), self.split)
        if not record.people and self.split != "test":
            # Said here, with the annotation's own terms, rather than left to the job's generic rejection.
            raise RecordError(key, f"{release.where(int(key))} ({record.image_id}) has no annotated person: "
                                   f"{record.metadata['num_annorect']} annorect entries, none with "
                                   "annopoints.point")
        return record
