"""The interface between a dataset's native files and ``beam_jobs.build_tfrecords``.

A reader turns one dataset, in its own format (COCO json, MPII / LSP .mat, Human3.6M .cdf + frames,
MuPoTS annot.mat, the synthetic renderer), into :class:`ImageRecord` objects, one per image, holding the
people exactly as the dataset gives them: its own joint order (:attr:`ImageRecord.skeleton`, a
:mod:`lcr_tf.contracts.skeleton` name), its own annotation mask, 3D where it has 3D. Everything that is the same for
every dataset happens once, in the job: image decoding and checks, validation of joints, conversion to
the records' skeleton (LCR-13, or MuPoTS-3D's 14 joints with ``--skeleton=mupots14``), pseudo ground-truth
3D, completion of missing 2D joints, anchor classes, pose boxes, encoding.
A reader therefore stays one small module.

A reader has two halves, because Beam runs them in different places:

* :meth:`DatasetReader.list_items` runs once, on the machine that launches the job. It returns a list of
  small picklable keys (image ids, file paths, or small tuples/dicts such as one image's annotation rows)
  that become the elements of ``beam.Create``. It must be cheap in memory: no pixels.
* :meth:`DatasetReader.read` runs in the workers, once per key, and returns the :class:`ImageRecord`.
  State that is expensive to build (a parsed annotation file, a pose corpus) is built on first use with
  :meth:`DatasetReader.cached` and never pickled, so a reader travels to the workers as its options only.
  :meth:`DatasetReader.setup` is called once per worker before the first ``read`` (Beam's
  ``DoFn.setup``), for readers that prefer to load eagerly.

A bad record (a key whose annotation cannot be read, a frame missing from a video) raises
:class:`RecordError`; the job lists it in ``rejected.jsonl`` with the reason and goes on. Problems the job
can detect itself (a corrupt image file, NaN joints, too few joints) need no code in the reader.

A reader for image files typically sets :attr:`ImageRecord.image_path` and leaves the bytes to the job
(read through ``apache_beam.io.filesystems``, so local paths and cloud URLs both work); a reader that
produces pixels itself (the renderer, a video decoder) sets :attr:`ImageRecord.image_bytes`.

Files: readers open their files through :func:`file_exists`, :func:`open_file`, :func:`read_bytes`,
:func:`load_json` and :func:`load_mat` (local paths with Python's own I/O, URLs such as ``gs://`` through
``apache_beam.io.filesystems``), so that a missing file is a ``FileNotFoundError`` and an unreadable one an
``OSError`` or ``ValueError`` whose message names the file, the same in every reader.

Conventions (the package's): 2D in pixels, x right, y down, origin at the image's top-left corner;
3D in metres, camera axes (x right, y down, z away), centred on the body centre
(:func:`lcr_tf.contracts.skeleton.centre_poses`); boxes ``[x1, y1, x2, y2]`` pixels.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import io
import json
import os
import posixpath
from typing import IO, Any, Callable, ClassVar, Dict, Hashable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib


class RecordError(Exception):
    """One bad record: the job rejects the key with ``reason`` instead of failing.

    Attributes:
      key: the key given to :meth:`DatasetReader.read` (or its name).
      reason: one line saying what is wrong, naming the file and field where it can.
    """

    def __init__(self, key: Any, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason

    def __reduce__(self):  # keeps (key, reason) when the exception crosses a process boundary
        return RecordError, (self.key, self.reason)


# --------------------------------------------------------------------------- file access


def is_url(path: str) -> bool:
    """True for a URL (``gs://bucket/x``), False for a local path."""
    return "://" in str(path)


def join_path(*parts: str) -> str:
    """Joins path parts with ``/`` for a URL, with the local separator otherwise."""
    return posixpath.join(*parts) if is_url(parts[0]) else os.path.join(*parts)


def file_name(path: str) -> str:
    """The last part of a path or URL (``joints.mat``), for messages."""
    return posixpath.basename(str(path).replace("\\", "/").rstrip("/"))


def file_exists(path: str) -> bool:
    """Whether ``path`` (local or URL) exists."""
    if not is_url(path):
        return os.path.exists(path)
    from apache_beam.io.filesystems import FileSystems
    return FileSystems.exists(path)


@contextlib.contextmanager
def open_file(path: str, mode: str = "rb", what: str = "file") -> Iterator[IO]:
    """Opens ``path`` (local or URL) in ``mode`` (``r``, ``rb``, ``w``, ``wb``); text is UTF-8.

    Raises:
      FileNotFoundError: reading a file that does not exist (``"<what> <path> does not exist"``).
      OSError: it cannot be opened (``"cannot read <what> <path>: ..."``).
    """
    if mode not in ("r", "rb", "w", "wb"):
        raise ValueError(f"open_file: mode must be r, rb, w or wb, got {mode!r}")
    reading = mode.startswith("r")
    if reading and not file_exists(path):
        raise FileNotFoundError(f"{what} {path} does not exist")
    verb = "read" if reading else "write"
    if not is_url(path):
        try:
            f = open(path, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
        except FileNotFoundError:
            raise FileNotFoundError(f"{what} {path} does not exist") from None
        except OSError as e:
            raise OSError(f"cannot {verb} {what} {path}: {e}") from e
    else:
        from apache_beam.io.filesystem import BeamIOError
        from apache_beam.io.filesystems import FileSystems
        try:
            f = (FileSystems.open(path, compression_type="uncompressed") if reading
                 else FileSystems.create(path, compression_type="uncompressed"))
        except BeamIOError as e:
            raise OSError(f"cannot {verb} {what} {path}: {e}") from e
        if "b" not in mode:
            f = io.TextIOWrapper(f, encoding="utf-8")
    with f:
        yield f


def read_bytes(path: str, what: str = "file") -> bytes:
    """The contents of ``path`` (local or URL). Raises as :func:`open_file`."""
    with open_file(path, "rb", what) as f:
        try:
            return f.read()
        except Exception as e:  # Beam's file systems raise their own types
            if isinstance(e, OSError) and str(path) in str(e):
                raise
            raise OSError(f"cannot read {what} {path}: {e}") from e


def load_json(path: str, what: str = "file", name: Optional[str] = None) -> Any:
    """The JSON value of ``path``.

    Raises:
      FileNotFoundError, OSError: as :func:`open_file`.
      ValueError: not JSON (``"<name>: not valid JSON: ..."``; ``name`` defaults to the file's name).
    """
    data = read_bytes(path, what)
    try:
        return json.loads(data)
    except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
        raise ValueError(f"{name or file_name(path)}: not valid JSON: {e}") from None


def load_mat(path: str, what: str = "file", name: Optional[str] = None, **loadmat_kwargs) -> Dict[str, Any]:
    """``scipy.io.loadmat`` of ``path`` (local or URL), with ``loadmat_kwargs``.

    Raises:
      FileNotFoundError, OSError: as :func:`open_file`.
      ValueError: not a MATLAB file (``"<name>: not a readable MATLAB file: ..."``).
    """
    import scipy.io
    with open_file(path, "rb", what) as f:
        try:
            return scipy.io.loadmat(f, **loadmat_kwargs)
        except Exception as e:  # scipy raises assorted types for a truncated or foreign file
            raise ValueError(f"{name or file_name(path)}: not a readable MATLAB file: "
                             f"{type(e).__name__}: {e}") from None


@dataclasses.dataclass
class Person:
    """One annotated person, in the joint order of its image's :attr:`ImageRecord.skeleton`.

    Attributes:
      pose2d: (J_src, 2) float pixels (x right, y down); NaN (or anything) where not annotated.
      annotated: (J_src,) bool, True where the dataset gives the joint's 2D position.
      visible: (J_src,) bool, True where the joint is seen (inside the image and not occluded), or None
        when the dataset does not say (the job then takes ``annotated``).
      pose3d: (J_src, 3) float metres, camera axes, body-centred, for all J_src joints, or None when the
        dataset has no 3D (the job computes pseudo ground truth from the 2D).
      person_id: the dataset's name for this person (e.g. a COCO annotation id), used in rejection
        reports; None to use the person's index in the image.
      extras: anything else the dataset knows (scale, centre, track id, ...); not written to TFRecords.
    """

    pose2d: np.ndarray
    annotated: np.ndarray
    visible: Optional[np.ndarray] = None
    pose3d: Optional[np.ndarray] = None
    person_id: Optional[str] = None
    extras: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_points(cls, pose2d: np.ndarray, **kwargs) -> "Person":
        """A person whose annotated joints are the finite rows of ``pose2d`` ((J_src, 2) pixels)."""
        pose2d = np.asarray(pose2d, dtype=np.float32)
        return cls(pose2d=pose2d, annotated=np.all(np.isfinite(pose2d), axis=-1), **kwargs)


@dataclasses.dataclass
class ImageRecord:
    """One image and the people annotated in it, as a dataset gives them.

    Attributes:
      image_id: unique within the dataset (it names the image in the TFRecords and in reports, and
        orders the records within a shard).
      dataset: the reader's name (``coco``, ``mpii``, ``synthetic``, ...).
      skeleton: :mod:`lcr_tf.contracts.skeleton` name of the people's joint order (``coco17``, ``lcr13``, ...).
      people: the annotated people; may be empty (the job then rejects the image, unless ``negative``).
      image_bytes: the encoded image (JPEG or PNG file bytes), or None to read ``image_path``.
      image_path: where to read the bytes from (any ``apache_beam.io.filesystems`` path) when
        ``image_bytes`` is None.
      height, width: pixels, when the annotation states them (the job checks them against the decoded
        image); None when unknown.
      intrinsics: (4,) fx, fy, cx, cy in pixels, or None when unknown.
      ignore_regions: (R, 4) xyxy pixel boxes of unannotated crowds (COCO ``iscrowd``), where a detector
        should be neither rewarded nor penalised.
      metadata: anything else (sequence, frame, camera name, ...); not written to TFRecords.
      negative: True when the image has no person to learn by intent (a background, or an image whose only
        people are unannotated crowds, given as ``ignore_regions``): ``people`` must then be empty, and the
        job writes the image with P = 0 as a pure negative. False (the default): an image left without a
        usable person is rejected, so that images whose people all fail validation are reported rather
        than written as background.
    """

    image_id: str
    dataset: str
    skeleton: str
    people: List[Person]
    image_bytes: Optional[bytes] = None
    image_path: Optional[str] = None
    height: Optional[int] = None
    width: Optional[int] = None
    intrinsics: Optional[np.ndarray] = None
    ignore_regions: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 4), np.float32))
    metadata: Dict[str, Any] = dataclasses.field(default_factory=dict)
    negative: bool = False

    @property
    def num_joints(self) -> int:
        return skeleton_lib.get_skeleton(self.skeleton).num_joints

    def load_image_bytes(self) -> bytes:
        """The encoded image: ``image_bytes``, else the contents of ``image_path``.

        Raises:
          FileNotFoundError: ``image_path`` does not exist.
          OSError: it cannot be read.
          ValueError: neither is set.
        """
        if self.image_bytes is not None:
            return bytes(self.image_bytes)
        if not self.image_path:
            raise ValueError(f"image {self.image_id!r} has neither image_bytes nor image_path")
        return read_bytes(self.image_path, "image file")


class DatasetReader(abc.ABC):
    """Base class of the dataset readers (see the module docstring).

    Subclasses set :attr:`name` and :attr:`skeleton`, take their options as keyword arguments of
    ``__init__`` (the job passes the flags of the same names: ``input``, ``seed``, ``num_images``,
    ``poses``, ...), store them as plain attributes, and implement :meth:`list_items` and :meth:`read`.
    A reader must pickle small: expensive state goes through :meth:`cached`.
    """

    name: ClassVar[str] = ""
    skeleton: ClassVar[str] = ""

    def __init__(self) -> None:
        self._cache: Dict[str, Any] = {}

    @abc.abstractmethod
    def list_items(self) -> List[Hashable]:
        """The keys of every image to read: small picklable values, in a deterministic order."""

    @abc.abstractmethod
    def read(self, key) -> ImageRecord:
        """The record of one key.

        Raises :class:`RecordError` for a bad record. The job also reports an ``OSError`` or ``ValueError``
        as a bad record (with the exception's text); any other exception is taken for a bug and stops the
        job.
        """

    def setup(self) -> None:
        """Called once in each worker before the first :meth:`read`; the default does nothing."""

    def key_name(self, key) -> str:
        """A short, stable text naming ``key`` in reports (the default is ``str(key)``)."""
        return str(key)

    def describe(self) -> Dict[str, Any]:
        """The reader's options, for the job summary (the default: its public plain attributes)."""
        return {k: v for k, v in vars(self).items()
                if not k.startswith("_") and isinstance(v, (str, int, float, bool, type(None), list, tuple))}

    def job_refusal(self) -> Optional[str]:
        """Why the TFRecord job cannot use this reader's records (e.g. a split whose people have no joints,
        kept for evaluation), or None (the default)."""
        return None

    def cached(self, name: str, build: Callable[[], Any]) -> Any:
        """``build()`` on first use by this reader object, then the same object; never pickled.

        Beam may unpickle a few copies of a reader per worker process (one per thread), each with its own
        cache; state too large for that belongs in a module-level cache of the reader's module.
        """
        cache = self.__dict__.setdefault("_cache", {})
        if name not in cache:
            cache[name] = build()
        return cache[name]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state


def stack_people(people: Sequence[Person], num_joints: int):
    """Checks the people's array shapes and stacks the well-formed ones.

    Args:
      people: P persons of one image.
      num_joints: J_src of the image's skeleton.
    Returns:
      ``(ok, problems, pose2d, annotated, visible, has_visible, pose3d, has_3d)``: ``ok`` (Q,) int indices
      into ``people`` of the well-formed persons, ``problems`` ``[(index, code, reason)]`` for the others
      (code ``wrong_joint_count`` or ``wrong_shape``), and
      the stacked arrays of the Q good ones: pose2d (Q, J, 2) float64, annotated (Q, J) bool, visible
      (Q, J) bool (False where not given), has_visible (Q,) bool, pose3d (Q, J, 3) float64 (NaN where
      not given), has_3d (Q,) bool.
    """
    j = num_joints
    ok, problems = [], []
    # Per-person shape checks: ragged input cannot be stacked before it is checked.
    for i, person in enumerate(people):
        problem = _shape_problem(person, j)
        if problem is None:
            ok.append(i)
        else:
            problems.append((i,) + problem)
    q = len(ok)
    good = [people[i] for i in ok]
    # dtype given: an image without people must still give (0, J) bool masks.
    pose2d = np.asarray([np.asarray(p.pose2d, np.float64) for p in good], np.float64).reshape(q, j, 2)
    annotated = np.asarray([np.asarray(p.annotated, bool) for p in good], bool).reshape(q, j)
    has_visible = np.array([p.visible is not None for p in good], bool)
    visible = np.asarray([np.zeros(j, bool) if p.visible is None else np.asarray(p.visible, bool)
                          for p in good], bool).reshape(q, j)
    has_3d = np.array([p.pose3d is not None for p in good], bool)
    pose3d = np.asarray([np.full((j, 3), np.nan) if p.pose3d is None else np.asarray(p.pose3d, np.float64)
                         for p in good], np.float64).reshape(q, j, 3)
    return np.asarray(ok, np.int64), problems, pose2d, annotated, visible, has_visible, pose3d, has_3d


def _shape_problem(person: Person, num_joints: int) -> Optional[Tuple[str, str]]:
    """(code, reason) saying why ``person``'s arrays do not fit a ``num_joints`` skeleton, or None."""
    fields = (("pose2d", person.pose2d, (num_joints, 2)), ("annotated", person.annotated, (num_joints,)),
              ("visible", person.visible, (num_joints,)), ("pose3d", person.pose3d, (num_joints, 3)))
    for name, value, expected in fields:
        if value is None and name in ("visible", "pose3d"):
            continue
        got = np.shape(value)
        if got != expected:
            code = ("wrong_joint_count" if len(got) == len(expected) and got[1:] == expected[1:]
                    else "wrong_shape")
            return code, f"{name} has shape {got}, expected {expected} for the image's skeleton"
    return None
