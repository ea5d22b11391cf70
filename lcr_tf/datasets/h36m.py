r"""Human3.6M reader: the MoCap pose files (``.cdf``) and the video frames, extracted to image files.

Expected layout of ``--input`` (ROOT), as the official archives extract, plus the extracted frames::

    ROOT/S1/MyPoseFeatures/D3_Positions_mono/Directions 1.54138969.cdf
    ROOT/S1/MyPoseFeatures/D2_Positions/Directions 1.54138969.cdf
    ROOT/S1/Images/Directions 1.54138969/frame_000000.jpg        (frame_pattern, below)
    ROOT/S5/...  ROOT/S6/...  ROOT/S7/...  ROOT/S8/...  ROOT/S9/...  ROOT/S11/...

Pose files: one per sequence and camera, named ``<Sequence>.<camera id>.cdf`` in both folders, where the
sequence is an action and a trial (``Directions``, ``Directions 1``, ``Sitting 2``, ...). Each holds the
variable ``Pose`` read with ``cdflib``: shape (1, F, 96) (one CDF record of F frames; (F, 96) also
accepted) of 32 joints x 3 millimetres in the camera's coordinates (``D3_Positions_mono``: x right, y down,
z forward, the axes of the package), and shape (1, F, 64) of 32 joints x 2 pixels (``D2_Positions``:
x right, y down, origin top-left). Frame ``f`` of a file is video frame ``f`` (0-based, 50 fps).
Sequence names starting with ``_`` (e.g. ``_ALL``) are not recordings and are skipped.

Frames: the videos must be extracted to image files beforehand; ``frame_pattern`` (relative to ROOT) says
where frame ``f`` is, with the fields ``{subject}`` (``S1``), ``{sequence}`` (``Directions 1``),
``{action}`` (``Directions``), ``{trial}`` (1, 2), ``{camera}`` (``54138969``), ``{camera_index}`` (1..4),
``{frame}`` (0-based) and ``{frame1}`` (1-based). The default,
``{subject}/Images/{sequence}.{camera}/frame_{frame:06d}.jpg``, is 0-based: ``frame_000000.jpg`` is the
first frame of the video and of the CDF. Frames must keep the video's size (1000x1002 for cameras 1 and 4,
1000x1000 for cameras 2 and 3; ``check_size`` lets the job reject others), or the intrinsics do not hold.

The 17 joints kept from the 32 are the usual ones (indices 0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19,
25, 26, 27 of the 32: hip, right hip/knee/ankle, left hip/knee/ankle, spine, thorax, neck/nose, head,
left shoulder/elbow/wrist, right shoulder/elbow/wrist), in the order of ``lcr_tf.contracts.skeleton`` ``h36m17``.
One person per image, every joint annotated (visibility is not given: ``visible`` is None). Its 3D pose is
``D3_Positions_mono`` in metres, body-centred (:func:`lcr_tf.contracts.skeleton.centre_poses`); ``extras`` keeps
``centre_camera`` (3,) and ``pelvis_camera`` (3,) metres, the body centre and the hip joint in camera
coordinates (so the absolute pose is ``pose3d + centre_camera``), and ``reprojection_px``, the mean
distance between the 2D and the pinhole projection of the 3D with :data:`CAMERAS` (a few pixels: the
dataset's 2D includes the lens distortion). ``ImageRecord.intrinsics`` is the camera's fx, fy, cx, cy.

Coordinates. The 2D is the release's own projection of the 3D through :data:`CAMERAS` (continuous values,
``fx X / Z + cx`` then distortion, not clicked pixel indices), so it is in the frame of that calibration's
principal point, which the release gives no pixel-centre rule for: the reader takes both as continuous
pixels (:data:`PIXEL_OFFSET`, 0) and would move the 2D and cx, cy together, keeping one the projection of
the other.

Protocols (:func:`protocol_split`; ``--protocol`` 1, 2 or 3 and ``--split`` train or test):

* P1: train S1, S5, S6, S7, S8, S9; test every 64th frame of S11, camera 2 (55011271) (928 frames).
* P2: train S1, S5, S6, S7, S8; test every 5th frame of S9 and S11, all cameras.
* P3: P2's subjects; test every 5th frame of S9 and S11, camera 3 (58860488), trial 1 only.

Training splits take every ``train_every``-th frame (default 5) of every camera. Strides start at frame 0.
The trial of a sequence is its rank among the subject's sequences of the same action in sorted name order
(``Directions`` is trial 1, ``Directions 1`` trial 2; ``Sitting 1`` trial 1, ``Sitting 2`` trial 2).
``TakingPhoto`` and ``WalkingDog`` (S1's names) are reported as the actions ``Photo`` and ``WalkDog``.

Keys are ``(subject, sequence, camera, frame)``. Rejected (``rejected.jsonl``, reason naming the file and
field): a CDF without a ``Pose`` variable or with the wrong number of values per frame, a frame whose 17
joints hold NaN in either file, a frame beyond the length of either file (their lengths can differ; keys
go up to the longer), an unknown camera id. A subject folder or sequence whose files cannot be listed or
counted is listed as one key with frame -1 that is rejected with the reason, so that nothing disappears
silently. A missing frame image is rejected by the job (``image_missing``).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import threading
from typing import Dict, List, Optional, Tuple

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets.base import DatasetReader, ImageRecord, Person, RecordError, file_exists

SKELETON = skeleton_lib.H36M17
POSE_VARIABLE = "Pose"
D3_FOLDER = os.path.join("MyPoseFeatures", "D3_Positions_mono")
D2_FOLDER = os.path.join("MyPoseFeatures", "D2_Positions")
NUM_MOCAP_JOINTS = 32
# Indices of the 17 joints of H36M17 (lcr_tf.contracts.skeleton order) among the 32 of the MoCap files.
MOCAP_INDICES = np.array([0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27], np.int64)
DEFAULT_FRAME_PATTERN = "{subject}/Images/{sequence}.{camera}/frame_{frame:06d}.jpg"
DEFAULT_TRAIN_EVERY = 5
SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
# Added to the 2D's x and y and to cx, cy: 0, as the 2D is a projection with the published calibration
# (continuous coordinates in the frame of its principal point), not a MATLAB pixel index.
PIXEL_OFFSET = 0.0


@dataclasses.dataclass(frozen=True)
class Camera:
    """One Human3.6M camera's intrinsics (pixels) and image size."""

    index: int
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def intrinsics(self) -> np.ndarray:
        """(4,) float64 fx, fy, cx, cy pixels."""
        return np.array([self.fx, self.fy, self.cx, self.cy], np.float64)


# The dataset's published calibration (focal length and centre of each camera, identical for all subjects),
# from the Human3.6M release's camera metadata (metadata.xml of the official code), as float32 values.
CAMERAS: Dict[str, Camera] = {
    "54138969": Camera(1, 1145.0494384765625, 1143.7811279296875, 512.54150390625, 515.4514770507812, 1000, 1002),
    "55011271": Camera(2, 1149.6756591796875, 1147.5916748046875, 508.8486328125, 508.0649108886719, 1000, 1000),
    "58860488": Camera(3, 1149.1407470703125, 1148.7989501953125, 519.8158569335938, 501.40264892578125, 1000,
                       1000),
    "60457274": Camera(4, 1145.5113525390625, 1144.77392578125, 514.9682006835938, 501.88201904296875, 1000, 1002),
}
_ACTION_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}


@dataclasses.dataclass(frozen=True)
class ProtocolSplit:
    """Which frames make one split of one protocol.

    Attributes:
      protocol: 1, 2 or 3.
      split: ``train`` or ``test``.
      subjects: subject folder names (``S1``, ...).
      cameras: camera ids kept, or None for all four.
      trials: trials kept (1-based), or None for all.
      stride: every ``stride``-th frame, from frame 0.
    """

    protocol: int
    split: str
    subjects: Tuple[str, ...]
    cameras: Optional[Tuple[str, ...]]
    trials: Optional[Tuple[int, ...]]
    stride: int

    def describe(self) -> str:
        cams = "all cameras" if self.cameras is None else "camera " + ", ".join(
            f"{CAMERAS[c].index} ({c})" for c in self.cameras)
        trials = "" if self.trials is None else ", trial " + ", ".join(map(str, self.trials))
        return (f"Human3.6M P{self.protocol} {self.split}: {', '.join(self.subjects)}, {cams}{trials}, "
                f"every {self.stride} frame(s)")


def protocol_split(protocol: int, split: str, train_every: int = DEFAULT_TRAIN_EVERY) -> ProtocolSplit:
    """The subjects, cameras, trials and frame stride of ``split`` of ``protocol`` (see the module docstring).

    Args:
      protocol: 1, 2 or 3.
      split: ``train`` or ``test``.
      train_every: frame stride of the training splits (>= 1).
    Raises:
      ValueError: an unknown protocol or split, or a bad stride.
    """
    if protocol not in (1, 2, 3):
        raise ValueError(f"h36m: protocol must be 1, 2 or 3, got {protocol!r}")
    if split not in ("train", "test"):
        raise ValueError(f"h36m: split must be 'train' or 'test', got {split!r}")
    if int(train_every) != train_every or train_every < 1:
        raise ValueError(f"h36m: train_every must be an integer >= 1, got {train_every!r}")
    if split == "train":
        subjects = ("S1", "S5", "S6", "S7", "S8", "S9") if protocol == 1 else ("S1", "S5", "S6", "S7", "S8")
        return ProtocolSplit(protocol, split, subjects, None, None, int(train_every))
    if protocol == 1:
        return ProtocolSplit(1, split, ("S11",), ("55011271",), None, 64)
    if protocol == 2:
        return ProtocolSplit(2, split, ("S9", "S11"), None, None, 5)
    return ProtocolSplit(3, split, ("S9", "S11"), ("58860488",), (1,), 5)


def action_of(sequence: str) -> str:
    """The action of a sequence name: ``"Directions 1"`` -> ``"Directions"``, ``"TakingPhoto"`` -> ``"Photo"``."""
    base = re.sub(r"\s+\d+$", "", sequence.strip())
    return _ACTION_ALIASES.get(base, base)


def trials_of(sequences) -> Dict[str, int]:
    """{sequence: trial} for one subject's sequence names: the 1-based rank among those of the same action,
    in sorted name order."""
    by_action = collections.defaultdict(list)
    for s in sorted(set(sequences)):
        by_action[action_of(s)].append(s)
    return {s: i + 1 for names in by_action.values() for i, s in enumerate(names)}


def package_intrinsics(camera: Camera) -> np.ndarray:
    """(4,) float64 fx, fy, cx, cy of ``camera`` in the package's pixels (cx, cy + :data:`PIXEL_OFFSET`)."""
    return camera.intrinsics + np.array([0.0, 0.0, PIXEL_OFFSET, PIXEL_OFFSET])


def project(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pinhole projection: (..., 3) camera coordinates (any unit, z > 0) -> (..., 2) pixels,
    ``x = fx X / Z + cx``, ``y = fy Y / Z + cy``; ``intrinsics`` (4,) fx, fy, cx, cy."""
    points = np.asarray(points, np.float64)
    fx, fy, cx, cy = np.asarray(intrinsics, np.float64)
    return np.stack([fx * points[..., 0] / points[..., 2] + cx, fy * points[..., 1] / points[..., 2] + cy], -1)


# --------------------------------------------------------------------------- CDF parsing

# Parsed pose files shared by the reader copies of a worker process, keeping only the frames on the reader's
# stride, in float32 (the files' type): a whole training split at the default stride then takes ~35 MB per
# subject. Bounded, because a worker may meet any file (Beam hands out frames in random order); a file that
# falls out is parsed again (milliseconds).
CACHE_BYTES = 256 << 20
_SEQUENCES: "collections.OrderedDict[tuple, _Poses]" = collections.OrderedDict()
_CACHE_USED = [0]
_LOCK = threading.Lock()


@dataclasses.dataclass
class _Poses:
    """One pose file: its frame count and every ``stride``-th frame, (ceil(F / stride), 17, D) float32 in
    the file's unit, or the error that makes it unusable."""

    num_frames: int
    stride: int
    poses: Optional[np.ndarray]
    error: Optional[str]


def _relative(root: str, path: str) -> str:
    return os.path.relpath(path, root) if root else path


def read_pose_file(path: str, dims: int, name: Optional[str] = None) -> np.ndarray:
    """The 17 joints of every frame of one Human3.6M pose file.

    Args:
      path: a ``.cdf`` of ``D3_Positions_mono`` (``dims`` 3, mm) or ``D2_Positions`` (``dims`` 2, px).
      name: how errors name the file (default ``path``).
    Returns:
      (F, 17, dims) float64, H36M17 order, the file's unit; NaN kept (checked per frame by the reader).
    Raises:
      ValueError: the file cannot be read, has no ``Pose`` variable, or not 32 x ``dims`` values per frame.
    """
    import cdflib
    name = name or path
    try:  # cdflib opens the file by its path itself (it seeks through it), not through base.open_file
        cdf = cdflib.CDF(path)
        info = cdf.cdf_info()
    except Exception as e:  # cdflib raises assorted types for a truncated or foreign file
        raise ValueError(f"{name}: not a readable CDF file ({type(e).__name__}: {e})") from None
    variables = list(info.zVariables) + list(info.rVariables)
    if POSE_VARIABLE not in variables:
        raise ValueError(f"{name}: has no variable {POSE_VARIABLE!r} (variables: {variables or 'none'})")
    try:
        data = np.asarray(cdf.varget(POSE_VARIABLE), np.float64)
    except Exception as e:
        raise ValueError(f"{name}: cannot read variable {POSE_VARIABLE!r} ({type(e).__name__}: {e})") from None
    width = NUM_MOCAP_JOINTS * dims
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2 or data.shape[1] != width:
        raise ValueError(f"{name}: {POSE_VARIABLE} has shape {data.shape}, expected (1, F, {width}) "
                         f"({NUM_MOCAP_JOINTS} joints x {dims} per frame)")
    return data.reshape(-1, NUM_MOCAP_JOINTS, dims)[:, MOCAP_INDICES]


def count_frames(path: str) -> int:
    """Frames in a pose file, from its header only (cheap).

    Raises:
      ValueError: unreadable file or no ``Pose`` variable.
    """
    import cdflib
    try:
        info = cdflib.CDF(path).varinq(POSE_VARIABLE)
    except Exception as e:
        raise ValueError(f"{path}: cannot read the header of variable {POSE_VARIABLE!r} "
                         f"({type(e).__name__}: {e})") from None
    dims = list(info.Dim_Sizes)
    records = int(info.Last_Rec) + 1
    # One record of (F, width) as the dataset writes it, or F records of (width,).
    return int(dims[0]) if len(dims) == 2 and records == 1 else records


def _parsed(path: str, dims: int, name: str, stride: int) -> _Poses:
    try:
        stat = os.stat(path)
    except OSError:
        return _Poses(0, stride, None, f"{name} does not exist")
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size, dims, stride)
    with _LOCK:
        if key in _SEQUENCES:
            _SEQUENCES.move_to_end(key)
            return _SEQUENCES[key]
    try:
        poses = read_pose_file(path, dims, name)
        entry = _Poses(poses.shape[0], stride, poses[::stride].astype(np.float32), None)
    except ValueError as e:
        entry = _Poses(0, stride, None, str(e))
    with _LOCK:
        if key not in _SEQUENCES:
            _SEQUENCES[key] = entry
            _CACHE_USED[0] += _size(entry)
        while _CACHE_USED[0] > CACHE_BYTES and len(_SEQUENCES) > 1:
            _CACHE_USED[0] -= _size(_SEQUENCES.popitem(last=False)[1])
    return entry


def _size(entry: _Poses) -> int:
    return 256 + (0 if entry.poses is None else entry.poses.nbytes)


# --------------------------------------------------------------------------- the reader


class H36MReader(DatasetReader):
    """Human3.6M frames with their 2D and 3D pose (one person per image).

    Args:
      input: ROOT, the folder holding ``S1``, ``S5``, ... (a local or mounted folder: the pose files are
        read with ``cdflib``; the frames may be anywhere Beam's file systems reach, through
        ``frame_pattern`` relative to ROOT).
      split: ``train`` or ``test``.
      protocol: 1, 2 or 3.
      frame_pattern: where frame images are, relative to ROOT (fields in the module docstring).
      train_every: frame stride of the training splits.
      check_size: give the job the cameras' image sizes, so that a frame of another size is rejected.
    """

    name = "h36m"
    skeleton = SKELETON.name

    def __init__(self, input: str, split: str, protocol: int, frame_pattern: str = DEFAULT_FRAME_PATTERN,
                 train_every: int = DEFAULT_TRAIN_EVERY, check_size: bool = True):
        super().__init__()
        self.input = str(input)
        self.split = str(split)
        self.protocol = int(protocol)
        self.train_every = int(train_every)
        self.frame_pattern = str(frame_pattern)
        self.check_size = bool(check_size)
        protocol_split(self.protocol, self.split, self.train_every)  # validates
        try:
            self.frame_pattern.format(**_pattern_fields("S1", "Directions 1", 2, "54138969", 0))
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"h36m: frame_pattern {self.frame_pattern!r} is not a valid pattern "
                             f"({type(e).__name__}: {e}); fields: subject, sequence, action, trial, camera, "
                             f"camera_index, frame, frame1") from None

    @property
    def protocol_split(self) -> ProtocolSplit:
        return protocol_split(self.protocol, self.split, self.train_every)

    # ---- launcher side

    def list_items(self) -> List[tuple]:
        if not os.path.isdir(self.input):
            raise ValueError(f"h36m: --input {self.input} is not a folder")
        chosen = self.protocol_split
        if not any(os.path.isdir(os.path.join(self.input, s)) for s in chosen.subjects):
            raise ValueError(f"h36m: --input {self.input} holds none of the subjects {', '.join(chosen.subjects)} "
                             f"of {chosen.describe()}")
        keys = []
        for subject in chosen.subjects:
            sequences = self._sequences(subject)
            if isinstance(sequences, str):
                keys.append((subject, "", "", -1))
                continue
            trials = trials_of(s for s, _ in sequences)
            for sequence, camera in sequences:
                if chosen.cameras is not None and camera not in chosen.cameras:
                    continue
                if chosen.trials is not None and trials[sequence] not in chosen.trials:
                    continue
                try:
                    num_frames = max(self._count(subject, sequence, camera))
                except ValueError:
                    keys.append((subject, sequence, camera, -1))
                    continue
                keys.extend((subject, sequence, camera, f) for f in range(0, num_frames, chosen.stride))
        return keys

    def _sequences(self, subject: str):
        """Sorted [(sequence, camera)] with a pose file in either folder, or the reason there is none."""
        folders = [os.path.join(self.input, subject, f) for f in (D3_FOLDER, D2_FOLDER)]
        names = set()
        for folder in folders:
            if os.path.isdir(folder):
                names.update(n[:-4] for n in os.listdir(folder) if n.endswith(".cdf") and not n.startswith("_"))
        if not names:
            return (f"{subject}/{D3_FOLDER.replace(os.sep, '/')} and {D2_FOLDER.replace(os.sep, '/')} hold "
                    "no .cdf pose file")
        return sorted(tuple(n.rsplit(".", 1)) if "." in n else (n, "") for n in names)

    def _paths(self, subject: str, sequence: str, camera: str) -> Tuple[str, str]:
        base = f"{sequence}.{camera}.cdf"
        return (os.path.join(self.input, subject, D3_FOLDER, base), os.path.join(self.input, subject, D2_FOLDER, base))

    def _count(self, subject, sequence, camera) -> Tuple[int, int]:
        """Frames of the 3D and the 2D file (0 for a missing one); ValueError when neither is countable."""
        counts, errors = [], []
        for path in self._paths(subject, sequence, camera):
            try:
                counts.append(count_frames(path) if file_exists(path) else 0)
            except ValueError as e:
                counts.append(0)
                errors.append(str(e))
        if max(counts) == 0 and errors:
            raise ValueError("; ".join(errors))
        return counts[0], counts[1]

    # ---- worker side

    def key_name(self, key) -> str:
        subject, sequence, camera, frame = key
        if frame < 0:
            return f"{subject}_{sequence.replace(' ', '_')}.{camera}" if sequence else subject
        return self.image_id(key)

    @staticmethod
    def image_id(key) -> str:
        """``S11_Directions_1.55011271_000064`` for ``("S11", "Directions 1", "55011271", 64)``."""
        subject, sequence, camera, frame = key
        return f"{subject}_{sequence.replace(' ', '_')}.{camera}_{int(frame):06d}"

    def read(self, key) -> ImageRecord:
        subject, sequence, camera, frame = key
        frame = int(frame)
        if frame < 0:
            raise RecordError(key, self._listing_problem(subject, sequence, camera))
        cam = CAMERAS.get(camera)
        if cam is None:
            raise RecordError(key, f"{subject}/{sequence}.{camera}.cdf: unknown camera id {camera!r} "
                                   f"(known: {', '.join(CAMERAS)})")
        # Keys come on the split's stride; another frame (keys given by hand) reads the file at stride 1.
        stride = self.protocol_split.stride
        stride = stride if frame % stride == 0 else 1
        poses = []
        for path, dims in zip(self._paths(subject, sequence, camera), (3, 2)):
            name = _relative(self.input, path).replace(os.sep, "/")
            entry = _parsed(path, dims, name, stride)
            if entry.error:
                raise RecordError(key, entry.error)
            if frame >= entry.num_frames:
                raise RecordError(key, f"frame {frame} is beyond {name} ({entry.num_frames} frames)")
            values = entry.poses[frame // stride].astype(np.float64)
            bad = ~np.all(np.isfinite(values), axis=-1)
            if bad.any():
                joints = ", ".join(SKELETON.joint_names[j] for j in np.flatnonzero(bad))
                raise RecordError(key, f"{name}: {POSE_VARIABLE} frame {frame} holds NaN or inf for {joints}")
            poses.append(values)
        pose3d_mm, pose2d = poses
        camera_m = pose3d_mm / 1000.0
        centre = skeleton_lib.body_centre(camera_m, SKELETON)[0]
        reprojection = float(np.mean(np.linalg.norm(project(pose3d_mm, cam.intrinsics) - pose2d, axis=-1)))
        pose2d = pose2d + PIXEL_OFFSET
        person = Person(
            pose2d=pose2d.astype(np.float32), annotated=np.ones(SKELETON.num_joints, bool), visible=None,
            pose3d=skeleton_lib.centre_poses(camera_m, SKELETON).astype(np.float32), person_id=subject,
            extras={"centre_camera": centre.astype(np.float32),
                    "pelvis_camera": camera_m[SKELETON.index("pelvis")].astype(np.float32),
                    "reprojection_px": reprojection})
        trials = self.cached(f"trials/{subject}", lambda: self._trials(subject))
        trial = trials.get(sequence, 0)
        fields = _pattern_fields(subject, sequence, trial, camera, frame)
        return ImageRecord(
            image_id=self.image_id(key), dataset=self.name, skeleton=self.skeleton, people=[person],
            image_path=os.path.join(self.input, self.frame_pattern.format(**fields)),
            height=cam.height if self.check_size else None, width=cam.width if self.check_size else None,
            intrinsics=package_intrinsics(cam).astype(np.float32),
            metadata={"subject": subject, "sequence": sequence, "action": fields["action"], "trial": trial,
                      "camera": camera, "camera_index": cam.index, "frame": frame, "split": self.split,
                      "protocol": self.protocol})

    def _trials(self, subject: str) -> Dict[str, int]:
        sequences = self._sequences(subject)
        return {} if isinstance(sequences, str) else trials_of(s for s, _ in sequences)

    def _listing_problem(self, subject: str, sequence: str, camera: str) -> str:
        if not sequence:
            found = self._sequences(subject)
            return found if isinstance(found, str) else f"{subject}: its pose files could not be listed"
        try:
            self._count(subject, sequence, camera)
        except ValueError as e:
            return str(e).replace(self.input.rstrip(os.sep) + os.sep, "")
        return f"{subject}/{sequence}.{camera}: its pose files could not be counted"


def _pattern_fields(subject: str, sequence: str, trial: int, camera: str, frame: int) -> Dict[str, object]:
    cam = CAMERAS.get(camera)
    return {"subject": subject, "sequence": sequence, "action": action_of(sequence), "trial": int(trial),
            "camera": camera, "camera_index": cam.index if cam else 0, "frame": int(frame),
            "frame1": int(frame) + 1}
