r"""The ``lsp`` dataset: Leeds Sports Pose (LSP, 2,000 images) or LSP extended (LSPET, 10,000 images).

Expected folder (``--input=ROOT``), as either official archive extracts::

    ROOT/joints.mat                     the MATLAB matrix 'joints'
    ROOT/images/im0001.jpg ...          LSP:   im0001.jpg .. im2000.jpg  (im%04d.jpg)
    ROOT/images/im00001.jpg ...         LSPET: im00001.jpg .. im10000.jpg (im%05d.jpg)
    ROOT/README.txt                     (not read)

One person per image, 14 joints in the order of :data:`lcr_tf.contracts.skeleton.LSP14` (right ankle, right knee,
right hip, left hip, left knee, left ankle, right wrist, right elbow, right shoulder, left shoulder, left
elbow, left wrist, neck, head top), x and y in pixels of the image. The release is told by the layout of
``joints`` (float64), and the two releases use the third value, the flag, differently:

* **LSP**: ``joints`` is (3, 14, 2000) = (x / y / flag, joint, image). Every joint is annotated
  (occluded ones at their guessed position); the flag is 1 for an **occluded** joint and 0 for a visible
  one (the reading of the pose-estimation literature, which inverts it to a visibility). Here:
  ``annotated`` = all 14 joints, ``visible`` = ``flag == 0``.
* **LSPET**: ``joints`` is (14, 3, 10000) = (joint, x / y / flag, image). The flag is 1 for a joint that
  was annotated, which the annotators did only for joints they could see, and 0 for a joint that was not
  (occluded or outside the image): its x / y are placeholders (0, or negative values), not positions.
  Here: ``annotated`` = ``visible`` = ``flag == 1``, and the other joints are NaN.

Any other layout, or a flag other than 0 / 1, is refused (``ValueError`` naming ``joints.mat``); a
non-finite coordinate of an annotated joint makes that image a bad record (``RecordError``).

The LCR-13 ``head`` is made by the job from ``neck`` and ``head_top`` (their midpoint, the rule of
:data:`lcr_tf.contracts.skeleton.DERIVED_JOINTS`).

Splits (``--split``): LSP: ``train`` (im0001..im1000), ``test`` (im1001..im2000), ``all``; LSPET: ``all``
(``train`` is accepted as the same: LSPET is a training set). ``--reader_option=indices=1-12,9999``
keeps only those 1-based image numbers of the split (ranges inclusive). Images absent from the folder
(a partial download) are listed all the same and the job reports them as ``image_missing``.

``image_id`` is the image file name (``im0001.jpg``); ``person_id`` is ``"1"``. ``ImageRecord.metadata``:
``release`` (``lsp`` / ``lspet``), ``index`` (1-based image number), ``split``, ``flags`` ((14,) the raw
flags). Image sizes are not in the annotation, so they are not checked against it.

Coordinates. ``joints.mat`` is MATLAB output in MATLAB's pixel coordinates, like MPII's (the centre of the
top-left pixel is (1, 1)); the reader adds :data:`PIXEL_OFFSET` (-0.5) to every annotated x and y so that
they follow the package's convention (:mod:`lcr_tf.contracts.geometry`: that centre is (0.5, 0.5)).
:func:`to_lsp_coordinates` undoes it. :func:`load_joints` returns the file's values unchanged.
"""

from __future__ import annotations

import re
import threading
from typing import Dict, List, Tuple

import numpy as np

from lcr_tf.contracts import geometry
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets.base import DatasetReader, ImageRecord, Person, RecordError, file_name, join_path, load_mat

JOINTS_FILE = "joints.mat"
IMAGES_DIR = "images"
_NUM_JOINTS = skeleton_lib.LSP14.num_joints
# release -> (image name pattern, number of images of the full release)
RELEASES = {"lsp": ("im{:04d}.jpg", 2000), "lspet": ("im{:05d}.jpg", 10000)}
LSP_TRAIN_IMAGES = 1000
# Added to LSP's x and y: joints.mat is MATLAB's, whose pixel index i has its centre at i + 1, the package's
# at i + 0.5 (lcr_tf.contracts.geometry), so a coordinate moves by 0.5 - 1 = -0.5 (as MPII's).
PIXEL_OFFSET = geometry.PIXEL_CENTRE_OFFSET - 1.0


def load_joints(path: str) -> Tuple[str, np.ndarray]:
    """Reads ``joints.mat`` and tells the release from its layout.

    Returns:
      (release ``"lsp"`` or ``"lspet"``, joints (N, 14, 3) float64 = (image, joint, x / y / flag)) with the
      file's values unchanged.
    Raises:
      FileNotFoundError: no such file. OSError: it cannot be read.
      ValueError: not a MATLAB file, no ``joints``, a layout that is neither (3, 14, N) nor (14, 3, N), or
        flags other than 0 / 1 (the message names the file and the first bad image and joint).
    """
    name = file_name(path)
    mat = load_mat(path, "LSP annotation file")
    if "joints" not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{name}: has no variable 'joints' (found {found})")
    raw = np.asarray(mat["joints"], dtype=np.float64)
    if raw.ndim == 2:  # a single image saved without its trailing dimension
        raw = raw[..., None]
    if raw.ndim == 3 and raw.shape[:2] == (3, _NUM_JOINTS):
        release, joints = "lsp", raw.transpose(2, 1, 0)
    elif raw.ndim == 3 and raw.shape[:2] == (_NUM_JOINTS, 3):
        release, joints = "lspet", raw.transpose(2, 0, 1)
    else:
        raise ValueError(f"{name}: 'joints' has shape {raw.shape}, expected (3, 14, N) (LSP) or (14, 3, N) (LSPET)")
    bad = ~np.isin(joints[..., 2], (0.0, 1.0))
    if bad.any():
        image, joint = np.argwhere(bad)[0]
        raise ValueError(f"{name}: joints flag of image {image + 1}, joint {joint + 1} "
                         f"({skeleton_lib.LSP14.joint_names[joint]}) is {float(joints[image, joint, 2]):g}, "
                         "expected 0 or 1")
    return release, joints


def to_lsp_coordinates(xy: np.ndarray) -> np.ndarray:
    """Package pixel coordinates (..., 2) -> LSP's (MATLAB) coordinates, same shape."""
    return np.asarray(xy, np.float64) - PIXEL_OFFSET


def joint_masks(release: str, flags: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(annotated, visible), both (..., 14) bool, from the flags (..., 14) of ``release`` (module docstring)."""
    flags = np.asarray(flags)
    if release == "lsp":
        return np.ones(flags.shape, bool), flags == 0
    if release == "lspet":
        return flags == 1, flags == 1
    raise ValueError(f"unknown LSP release {release!r}; expected lsp or lspet")


def parse_indices(text: str, count: int) -> List[int]:
    """``"1-12,9999"`` -> sorted unique 1-based numbers in 1..count.

    Raises:
      ValueError: malformed text or a number outside 1..count (named).
    """
    out = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(f"lsp: indices item {part!r} is not N or N-M")
        lo, hi = int(match.group(1)), int(match.group(2) or match.group(1))
        if not 1 <= lo <= hi <= count:
            raise ValueError(f"lsp: indices item {part!r} is outside 1..{count}")
        out.update(range(lo, hi + 1))
    return sorted(out)


_CACHE: Dict[str, Tuple[str, np.ndarray]] = {}
_LOCK = threading.Lock()


def cached_joints(path: str) -> Tuple[str, np.ndarray]:
    """:func:`load_joints`, once per process and path."""
    with _LOCK:
        if path not in _CACHE:
            _CACHE[path] = load_joints(path)
        return _CACHE[path]


class LspReader(DatasetReader):
    """LSP / LSPET images, one person each (14 LSP joints, 2D only).

    Args:
      input: ROOT (see the module docstring).
      split: LSP: train, test or all; LSPET: all (or train).
      indices: comma-separated 1-based image numbers or ranges (``1-12,9999``) to keep; '' for all.
    Raises:
      ValueError: an unknown split (checked against the release in :meth:`list_items`).
    """

    name = "lsp"
    skeleton = skeleton_lib.LSP14.name

    def __init__(self, input: str, split: str = "all", indices: str = ""):
        super().__init__()
        if split not in ("train", "test", "all"):
            raise ValueError(f"lsp: unknown split {split!r}; expected train, test (LSP only) or all")
        self.input = input
        self.split = split
        self.indices = indices or ""

    def joints(self) -> Tuple[str, np.ndarray]:
        """(release, joints (N, 14, 3) float64), parsed once per process."""
        return self.cached("joints", lambda: cached_joints(join_path(self.input, JOINTS_FILE)))

    def setup(self) -> None:
        self.joints()

    def split_range(self) -> Tuple[int, int]:
        """The 1-based image numbers [first, last] of the split."""
        release, joints = self.joints()
        count = joints.shape[0]
        if release == "lspet" or self.split == "all":
            if release == "lspet" and self.split == "test":
                raise ValueError("lsp: LSPET has no test split (it is a training set); use --split=all")
            return 1, count
        half = min(LSP_TRAIN_IMAGES, count)
        return (1, half) if self.split == "train" else (half + 1, count)

    def list_items(self) -> List[int]:
        first, last = self.split_range()
        if not self.indices:
            return list(range(first, last + 1))
        chosen = parse_indices(self.indices, self.joints()[1].shape[0])
        outside = [i for i in chosen if not first <= i <= last]
        if outside:
            raise ValueError(f"lsp: indices {outside[:5]} are not in the {self.split} split ({first}..{last})")
        return chosen

    def image_name(self, index: int) -> str:
        return RELEASES[self.joints()[0]][0].format(int(index))

    def key_name(self, key) -> str:
        return self.image_name(key)

    def read(self, key) -> ImageRecord:
        release, joints = self.joints()
        index = int(key)
        if not 1 <= index <= joints.shape[0]:
            raise RecordError(key, f"{JOINTS_FILE}: no image {index} (the file has {joints.shape[0]})")
        values = joints[index - 1]
        flags = values[:, 2]
        annotated, visible = joint_masks(release, flags)
        pose = np.where(annotated[:, None], values[:, :2] + PIXEL_OFFSET, np.nan)
        bad = annotated & ~np.isfinite(values[:, :2]).all(axis=1)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise RecordError(key, f"{JOINTS_FILE}: joints of image {index}, joint {j + 1} "
                                   f"({skeleton_lib.LSP14.joint_names[j]}) is annotated but not finite")
        name = self.image_name(index)
        person = Person(pose2d=pose.astype(np.float32), annotated=annotated, visible=visible, person_id="1")
        return ImageRecord(image_id=name, dataset=self.name, skeleton=self.skeleton, people=[person],
                           image_path=join_path(self.input, IMAGES_DIR, name),
                           metadata={"release": release, "index": index, "split": self.split,
                                     "flags": flags.astype(np.int64)})
