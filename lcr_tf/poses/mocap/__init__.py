"""Motion capture readers: BVH and ASF/AMC files to 3D poses in a :mod:`lcr_tf.contracts.skeleton` joint set.

The pipeline for one file (:func:`read_trial`):

1. parse the file (:mod:`lcr_tf.poses.mocap.bvh` or :mod:`lcr_tf.poses.mocap.asf_amc`) and run forward kinematics,
   vectorised over frames, into a :class:`SkeletonMotion`: world position of every joint origin (BVH) or
   bone start (ASF), of every End Site (BVH) or bone end (ASF), and every joint's world rotation, all in
   the file's length unit and axes (Y up);
2. recognise the rig from its joint names and take the points of the target joint set from it
   (:mod:`lcr_tf.poses.mocap.rigs`: e.g. LCR's ``head`` is the centre of the head, not the head joint);
3. convert the length unit to metres (declared by the ASF; inferred from the rest skeleton's leg length
   for BVH, which declares none, unless given explicitly);
4. map the MoCap axes (x, y up, z) to camera axes (x right, y down, z away) with the proper rotation
   ``(x, y, z) -> (x, -y, -z)`` (a half turn about x, so handedness is kept and left stays left);
5. centre every pose on the body centre with :func:`lcr_tf.contracts.skeleton.centre_poses`.

:func:`drop_slow_frames` then thins a trial to frames that differ enough from the previous kept one.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Tuple

import numpy as np


class MocapError(ValueError):
    """A MoCap file that cannot be read. ``str(e)`` is ``"<path>: <reason>"``; the reason names the line,
    frame, joint or field where it applies."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # Keeps the two-argument constructor working when the error crosses a process boundary.
        return (type(self), (self.path, self.reason))


@dataclasses.dataclass
class SkeletonMotion:
    """Forward-kinematics output of one MoCap file, in the file's own length unit and axes (Y up).

    F frames, J joints. For an ASF/AMC pair the "joints" are ``root`` followed by the ASF bones, a bone's
    origin is its start point and its end the start plus ``R (direction * length)``.

    Attributes:
      path: the motion file.
      source_format: ``"bvh"`` or ``"amc"``.
      joint_names: (J,) names, parents before children.
      parents: (J,) int64, parent index, -1 for the root.
      offsets: (J, 3) float64, file length unit: a joint's origin relative to its parent's origin, in
        the parent's frame at rest (the BVH OFFSET; for ASF, the parent bone's vector).
      origins: (F, J, 3) float64, world position of each joint origin / bone start.
      ends: (F, J, 3) float64, world position of each joint's End Site / bone end; NaN for a BVH joint
        without an End Site.
      rotations: (F, J, 3, 3) float64, world rotation of each joint's frame (maps its local axes, or
        for ASF the rest-pose world axes, to the world).
      frame_time: seconds between frames.
      metres_per_unit: metres in one file length unit when the file declares it (ASF), else None.
      length_unit: name of the declared unit (e.g. ``"cmu"``), else None.
    """

    path: str
    source_format: str
    joint_names: Tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    origins: np.ndarray
    ends: np.ndarray
    rotations: np.ndarray
    frame_time: float
    metres_per_unit: Optional[float] = None
    length_unit: Optional[str] = None

    @property
    def num_frames(self) -> int:
        return self.origins.shape[0]

    def joint_index(self, name: str) -> int:
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise MocapError(self.path, f"no joint {name!r}") from None


# Imported after the two classes above, which the submodules import from this package.
from lcr_tf.contracts import skeleton as skeleton_lib  # noqa: E402
from lcr_tf.poses.mocap import asf_amc, bvh, rigs  # noqa: E402

# The proper rotation from MoCap axes (Y up) to camera axes (y down): a half turn about x.
MOCAP_TO_CAMERA = np.diag([1.0, -1.0, -1.0])

# CMU's AMC files hold no frame rate; the CMU database was captured at 120 Hz.
CMU_AMC_FRAME_RATE = 120.0


@dataclasses.dataclass
class MocapTrial:
    """One MoCap trial as poses of a :mod:`lcr_tf.contracts.skeleton` joint set.

    Attributes:
      poses3d: (F, J, 3) float32, metres, camera axes (x right, y down, z away; the MoCap up axis is
        -y), each pose centred on its body centre (:func:`lcr_tf.contracts.skeleton.centre_poses`).
      frame_rate: frames per second (BVH: from ``Frame Time``; AMC: 120, the CMU rate, unless given).
      rig: the :mod:`lcr_tf.poses.mocap.rigs` name the joints were recognised as.
      length_unit: the file's length unit (``"m"``, ``"cm"``, ``"mm"``, ``"inch"``, ``"cmu"`` or, for an
        ASF with another ``:units length L``, ``"inch/L"``).
      source_format: ``"bvh"`` or ``"amc"``.
      path: the motion file; skeleton_file: the ASF used for an AMC (else None).
      skeleton: the joint set name of ``poses3d``.
    """

    poses3d: np.ndarray
    frame_rate: float
    rig: str
    length_unit: str
    source_format: str
    path: str
    skeleton: str
    skeleton_file: Optional[str] = None

    @property
    def num_frames(self) -> int:
        return int(self.poses3d.shape[0])


def find_asf(amc_path: str, asf_path: Optional[str] = None) -> str:
    """The skeleton file of an AMC: ``<subject>.asf`` beside ``<subject>_<trial>.amc``, else ``asf_path``.

    Raises:
      MocapError: neither exists ("no skeleton file").
    """
    folder, name = os.path.split(amc_path)
    subject = os.path.splitext(name)[0].split("_")[0]
    own = os.path.join(folder, subject + ".asf")
    if os.path.isfile(own):
        return own
    if asf_path is not None:
        if not os.path.isfile(asf_path):
            raise MocapError(amc_path, f"no skeleton file: {own} does not exist and the given ASF "
                                       f"{asf_path} does not exist either")
        return asf_path
    raise MocapError(amc_path, f"no skeleton file: {own} does not exist and no fallback ASF was given")


def load_motion(path: str, asf_path: Optional[str] = None) -> Tuple[SkeletonMotion, Optional[str]]:
    """Parses a ``.bvh`` or ``.amc`` file and runs forward kinematics; returns (motion, ASF used)."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".bvh":
        return bvh.read_bvh(path), None
    if ext == ".amc":
        asf = find_asf(path, asf_path)
        try:
            return asf_amc.read_asf_amc(asf, path), asf
        except MocapError as e:
            if e.path == str(path):
                raise
            # An error in the skeleton file is reported against the motion, naming the skeleton file.
            raise MocapError(path, f"skeleton file {e.path}: {e.reason}") from None
    raise MocapError(path, f"unsupported file type {ext or '(no extension)'!r}; expected .bvh or .amc")


def read_trial(path: str, skeleton="lcr13", asf_path: Optional[str] = None,
               length_unit: Optional[str] = None, amc_frame_rate: float = CMU_AMC_FRAME_RATE) -> MocapTrial:
    """Reads a BVH or AMC file into body-centred 3D poses in metres and camera axes.

    Args:
      path: a ``.bvh`` file, or a ``.amc`` file whose ASF is ``<subject>.asf`` in the same folder.
      skeleton: target :mod:`lcr_tf.contracts.skeleton` joint set; every joint must be available from the rig.
      asf_path: ASF to use for an AMC that has no ``<subject>.asf`` of its own (its bone lengths are
        the stand-in's, the angles the AMC's).
      length_unit: one of :data:`lcr_tf.poses.mocap.rigs.LENGTH_UNITS` to override the file's unit (BVH:
        otherwise inferred from the leg length; ASF: otherwise its ``:units length``).
      amc_frame_rate: frame rate reported for AMC files, which do not store one.
    Raises:
      MocapError: unreadable file, unknown rig, a joint of ``skeleton`` the rig cannot give, no
        plausible length unit.
    """
    skel = skeleton_lib.get_skeleton(skeleton)
    motion, asf_used = load_motion(path, asf_path)
    rig = rigs.detect_rig(motion.joint_names, motion.path)
    if length_unit is not None:
        unit, scale = length_unit, rigs.metres_per(length_unit, motion.path)
    elif motion.metres_per_unit is not None:
        unit, scale = motion.length_unit, motion.metres_per_unit
    else:
        unit, scale, _ = rigs.infer_length_unit(motion, rig)
    points = rig.points(motion, skel.joint_names)  # (F, J, 3) file units, MoCap axes
    poses = (points * scale) @ MOCAP_TO_CAMERA.T
    if not np.all(np.isfinite(poses)):
        frame = int(np.argmax(~np.all(np.isfinite(poses), axis=(1, 2))))
        raise MocapError(path, f"frame {frame}: forward kinematics gave a non-finite joint position")
    poses = skeleton_lib.centre_poses(poses, skel).astype(np.float32)
    frame_rate = amc_frame_rate if motion.source_format == "amc" else 1.0 / motion.frame_time
    return MocapTrial(poses3d=poses, frame_rate=float(frame_rate), rig=rig.name, length_unit=unit,
                      source_format=motion.source_format, path=str(path), skeleton=skel.name,
                      skeleton_file=asf_used)


def drop_slow_frames(poses3d: np.ndarray, min_distance_mm: float, window: int = 32) -> np.ndarray:
    """Indices of the frames kept when dropping frames too close to the previous kept one.

    The first frame is kept; a later frame is kept iff its mean per-joint Euclidean distance to the
    LAST KEPT frame is >= ``min_distance_mm``. The rule is sequential (whether a frame is kept depends
    on the kept frame before it), so a Python loop runs over the KEPT frames only: from each kept frame,
    the distances to the next ``window`` frames are computed at once in numpy and the first one at or
    beyond the threshold becomes the next kept frame; the window doubles while none is found, so the
    work is linear in the number of frames however many are dropped.

    Args:
      poses3d: (F, J, 3) metres (body-centred poses: the distance is between poses, not positions).
      min_distance_mm: threshold in millimetres; <= 0 keeps every frame.
    Returns:
      (K,) int64 increasing frame indices, K >= 1 when F >= 1.
    """
    poses = np.asarray(poses3d, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[-1] != 3:
        raise ValueError(f"poses3d must be (F, J, 3), got {poses.shape}")
    n = poses.shape[0]
    if n == 0:
        return np.zeros((0,), np.int64)
    if min_distance_mm <= 0:
        return np.arange(n, dtype=np.int64)
    threshold = min_distance_mm / 1000.0
    kept = [0]
    last, start, width = 0, 1, window
    while start < n:
        stop = min(n, start + width)
        dist = np.linalg.norm(poses[start:stop] - poses[last], axis=-1).mean(axis=-1)
        hits = np.flatnonzero(dist >= threshold)
        if hits.size:
            last = start + int(hits[0])
            kept.append(last)
            start, width = last + 1, window
        else:
            start, width = stop, width * 2
    return np.asarray(kept, dtype=np.int64)


__all__ = ["MocapError", "SkeletonMotion", "MocapTrial", "read_trial", "load_motion", "find_asf",
           "drop_slow_frames", "MOCAP_TO_CAMERA", "CMU_AMC_FRAME_RATE"]
