"""Joint sets (skeletons), their flip permutations, the body centre, and mappings between sets.

This module is the single source of truth for joint orders. Every array of poses in the package is laid
out in the order of one of the skeletons registered here, and every conversion between two orders goes
through :func:`convert`.

Conventions
-----------
* Joint names use one shared vocabulary (``left_knee``, ``head_top``, ...), so the same name in two sets
  means the same anatomical point and mappings follow from the names.
* The left/right flip permutation is derived from the names (``left_*`` <-> ``right_*``), never written
  by hand, so it cannot disagree with the joint order.
* The **body centre** is the mean of the two hips and the two shoulders (the torso centre of the paper,
  Sec 3: "3D location of each joint relative to the body center"). Every skeleton here has those four
  joints, so a pose is centred the same way whichever set it comes in. :func:`body_centre` and
  :func:`centre_poses` are the only implementation.
* ``head`` (LCR-Net's joint 12) is the centre of the head, half-way between the base of the skull and
  the top of the head. Sets that lack it derive it (see :data:`DERIVED_JOINTS`):

  - COCO: midpoint of the two ears; if an ear is missing, midpoint of the two eyes; else the nose.
  - MPII: midpoint of ``upper_neck`` and ``head_top``.  LSP: midpoint of ``neck`` and ``head_top``.
  - Human3.6M: midpoint of ``neck_nose`` (H36M joint 9, "Neck/Nose") and ``head_top`` (joint 10).
  - MuPoTS-3D has a ``head`` joint of its own (joint 16) and uses it directly; so does MuCo-3DHP.

  Going the other way, ``pelvis`` is the mid-hip, ``thorax`` and ``neck`` the mid-shoulder, ``spine``
  the body centre. A joint with no rule and no source (``head_top`` from LCR-13, COCO's face points from
  anything but COCO) comes out as NaN with its mask False: it is reported missing, never guessed.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

_LEFT, _RIGHT = "left_", "right_"


@dataclasses.dataclass(frozen=True)
class Skeleton:
    """An ordered joint set.

    Attributes:
      name: registry key, e.g. ``"lcr13"``.
      joint_names: the joint order; ``joint_names[j]`` is joint ``j``.
      bones: pairs of joint indices drawn as limbs (parent first).
      description: where the order comes from.
    """

    name: str
    joint_names: Tuple[str, ...]
    bones: Tuple[Tuple[int, int], ...]
    description: str = ""

    def __post_init__(self):
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"skeleton {self.name!r} repeats a joint name")
        for a, b in self.bones:
            if not (0 <= a < self.num_joints and 0 <= b < self.num_joints):
                raise ValueError(f"skeleton {self.name!r}: bone ({a}, {b}) is out of range")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, joint_name: str) -> int:
        """Index of ``joint_name``; KeyError naming the skeleton if it is not there."""
        try:
            return self.joint_names.index(joint_name)
        except ValueError:
            raise KeyError(f"skeleton {self.name!r} has no joint {joint_name!r}") from None

    def indices(self, joint_names: Sequence[str]) -> np.ndarray:
        return np.array([self.index(n) for n in joint_names], dtype=np.int64)

    @functools.cached_property
    def flip_permutation(self) -> np.ndarray:
        """(J,) int: ``pose[..., flip_permutation, :]`` swaps left and right joints (an involution)."""
        perm = []
        for n in self.joint_names:
            if n.startswith(_LEFT):
                perm.append(self.index(_RIGHT + n[len(_LEFT):]))
            elif n.startswith(_RIGHT):
                perm.append(self.index(_LEFT + n[len(_RIGHT):]))
            else:
                perm.append(self.index(n))
        return np.array(perm, dtype=np.int64)

    @functools.cached_property
    def centre_joints(self) -> np.ndarray:
        """(4,) int: the hips and shoulders whose mean is the body centre."""
        return self.indices(_CENTRE_JOINT_NAMES)

    @functools.cached_property
    def lower_body(self) -> np.ndarray:
        """(L,) int: the knees and ankles, whose presence decides full-body vs upper-body (Sec 4.2)."""
        return np.array([j for j, n in enumerate(self.joint_names)
                         if n.endswith("_knee") or n.endswith("_ankle")], dtype=np.int64)

    @functools.cached_property
    def upper_body(self) -> np.ndarray:
        """(J - L,) int: every joint that is not in :attr:`lower_body`."""
        return np.setdiff1d(np.arange(self.num_joints), self.lower_body)


_CENTRE_JOINT_NAMES = ("left_hip", "right_hip", "left_shoulder", "right_shoulder")


def _bones(names: Sequence[str], pairs: Sequence[Tuple[str, str]]) -> Tuple[Tuple[int, int], ...]:
    return tuple((names.index(a), names.index(b)) for a, b in pairs)


def _limbs() -> list:
    """The limb chains common to every set: hip-knee-ankle, shoulder-elbow-wrist, and the torso."""
    pairs = []
    for s in ("left_", "right_"):
        pairs += [(s + "hip", s + "knee"), (s + "knee", s + "ankle"),
                  (s + "shoulder", s + "elbow"), (s + "elbow", s + "wrist")]
    pairs += [("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"),
              ("left_hip", "left_shoulder"), ("right_hip", "right_shoulder")]
    return pairs


def _make(name: str, names: Sequence[str], extra_bones: Sequence[Tuple[str, str]], description: str,
          torso: bool = True) -> Skeleton:
    pairs = _limbs()
    if not torso:
        pairs = [p for p in pairs if p not in (("left_hip", "left_shoulder"), ("right_hip", "right_shoulder"))]
    return Skeleton(name, tuple(names), _bones(names, list(pairs) + list(extra_bones)), description)


LCR13 = _make(
    "lcr13",
    ["right_ankle", "left_ankle", "right_knee", "left_knee", "right_hip", "left_hip", "right_wrist",
     "left_wrist", "right_elbow", "left_elbow", "right_shoulder", "left_shoulder", "head"],
    [("left_shoulder", "head"), ("right_shoulder", "head")],
    "LCR-Net's 13 joints, in the order of its public release; joints 0-3 are the lower body.")

LCR17 = _make(
    "lcr17",
    ["right_ankle", "left_ankle", "right_knee", "left_knee", "right_hip", "left_hip", "right_wrist",
     "left_wrist", "right_elbow", "left_elbow", "right_shoulder", "left_shoulder", "head_top", "pelvis",
     "spine", "thorax", "neck_nose"],
    [("pelvis", "left_hip"), ("pelvis", "right_hip"), ("pelvis", "spine"), ("spine", "thorax"),
     ("thorax", "neck_nose"), ("neck_nose", "head_top"), ("thorax", "left_shoulder"),
     ("thorax", "right_shoulder")],
    "LCR-Net's 17 joints (its released Human3.6M model): the first 12 of lcr13, then the joints that the "
    "release's demo draws as joined to the hips (pelvis), the shoulders (thorax), between them (spine), and "
    "between the thorax and joint 12 (neck_nose, joint 12 being the head top).", torso=False)

H36M17 = _make(
    "h36m17",
    ["pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "spine",
     "thorax", "neck_nose", "head_top", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder",
     "right_elbow", "right_wrist"],
    [("pelvis", "spine"), ("spine", "thorax"), ("thorax", "neck_nose"), ("neck_nose", "head_top"),
     ("thorax", "left_shoulder"), ("thorax", "right_shoulder"), ("pelvis", "left_hip"),
     ("pelvis", "right_hip")],
    "Human3.6M's 17 joints (the 32 of the MoCap reduced as in the literature).", torso=False)

MPII16 = _make(
    "mpii16",
    ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
     "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder",
     "left_elbow", "left_wrist"],
    [("pelvis", "thorax"), ("thorax", "upper_neck"), ("upper_neck", "head_top"),
     ("thorax", "left_shoulder"), ("thorax", "right_shoulder"), ("pelvis", "left_hip"),
     ("pelvis", "right_hip")],
    "MPII Human Pose's 16 joints, ids 0-15 of annopoints.point.", torso=False)

COCO17 = _make(
    "coco17",
    ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
     "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
     "right_knee", "left_ankle", "right_ankle"],
    [("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear")],
    "COCO person keypoints, in the order of the annotation files' 'keypoints' list.")

LSP14 = _make(
    "lsp14",
    ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
     "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "neck", "head_top"],
    [("neck", "head_top"), ("neck", "left_shoulder"), ("neck", "right_shoulder")],
    "Leeds Sports Pose (and LSP extended) 14 joints, the order of joints.mat.")

_MUPOTS_NAMES = ["head_top", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
                 "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
                 "left_knee", "left_ankle", "pelvis", "spine", "head"]
MUPOTS17 = _make(
    "mupots17", _MUPOTS_NAMES,
    [("head_top", "head"), ("head", "neck"), ("neck", "left_shoulder"), ("neck", "right_shoulder"),
     ("pelvis", "spine"), ("spine", "neck"), ("pelvis", "left_hip"), ("pelvis", "right_hip")],
    "MuPoTS-3D / MPI-INF-3DHP 17 joints, the order of annot2 / annot3.", torso=False)

MUPOTS14 = _make(
    "mupots14", _MUPOTS_NAMES[:14],
    [("head_top", "neck"), ("neck", "left_shoulder"), ("neck", "right_shoulder")],
    "MuPoTS-3D's 14-joint evaluation subset (the first 14 of mupots17).")

# MuCo-3DHP's file calls joint 1 "Thorax"; it is the same MPI-INF-3DHP point as MuPoTS-3D's joint 1, so it
# keeps mupots17's name and the first 17 joints of the two sets coincide.
MUCO21 = _make(
    "muco21", _MUPOTS_NAMES + ["right_hand", "left_hand", "right_toe", "left_toe"],
    [("head_top", "head"), ("head", "neck"), ("neck", "left_shoulder"), ("neck", "right_shoulder"),
     ("pelvis", "spine"), ("spine", "neck"), ("pelvis", "left_hip"), ("pelvis", "right_hip"),
     ("right_wrist", "right_hand"), ("left_wrist", "left_hand"), ("right_ankle", "right_toe"),
     ("left_ankle", "left_toe")],
    "MuCo-3DHP's 21 joints, the order of keypoints_cam / keypoints_img in MuCo-3DHP.json: mupots17, then "
    "the hands and the toes of MPI-INF-3DHP.", torso=False)

SKELETONS: Dict[str, Skeleton] = {s.name: s for s in
                                  (LCR13, LCR17, H36M17, MPII16, COCO17, LSP14, MUPOTS17, MUPOTS14, MUCO21)}


def get_skeleton(name_or_skeleton) -> Skeleton:
    """Looks a skeleton up by name (or passes a :class:`Skeleton` through)."""
    if isinstance(name_or_skeleton, Skeleton):
        return name_or_skeleton
    try:
        return SKELETONS[name_or_skeleton]
    except KeyError:
        raise KeyError(f"unknown skeleton {name_or_skeleton!r}; known: {sorted(SKELETONS)}") from None


# For a joint that a source set lacks: alternatives in order of preference, each a group of source joints
# whose mean gives it. The first alternative whose joints all exist in the source set and are annotated
# in the given pose is used, pose by pose.
DERIVED_JOINTS: Mapping[str, Tuple[Tuple[str, ...], ...]] = {
    "head": (("left_ear", "right_ear"), ("left_eye", "right_eye"), ("upper_neck", "head_top"),
             ("neck", "head_top"), ("neck_nose", "head_top"), ("nose",)),
    "pelvis": (("left_hip", "right_hip"),),
    "thorax": (("left_shoulder", "right_shoulder"),),
    "neck": (("left_shoulder", "right_shoulder"),),
    "upper_neck": (("left_shoulder", "right_shoulder"),),
    "spine": (_CENTRE_JOINT_NAMES,),
}


def body_centre(poses: np.ndarray, skeleton="lcr13") -> np.ndarray:
    """The body centre: mean of the hips and shoulders.

    Args:
      poses: (..., J, D) joint positions in any unit, in the order of ``skeleton``.
    Returns:
      (..., 1, D), broadcastable against ``poses``.
    """
    skel = get_skeleton(skeleton)
    poses = np.asarray(poses)
    if poses.shape[-2] != skel.num_joints:
        raise ValueError(f"poses have {poses.shape[-2]} joints, skeleton {skel.name!r} has {skel.num_joints}")
    return poses[..., skel.centre_joints, :].mean(axis=-2, keepdims=True)


def centre_poses(poses: np.ndarray, skeleton="lcr13") -> np.ndarray:
    """Poses minus their body centre, same shape and dtype as ``poses``."""
    poses = np.asarray(poses)
    return (poses - body_centre(poses, skeleton)).astype(poses.dtype, copy=False)


#: Accepted median body extent (largest joint distance from the body centre) of 3D poses in metres. An
#: adult is ~0.6-1.0 m from centre to ankle or raised wrist; a child crouching ~0.3 m. Centimetres give
#: ~60-100, millimetres ~600-1000, which this range refuses instead of training on them.
BODY_EXTENT_RANGE_M = (0.15, 3.0)


def check_metres(poses3d: np.ndarray, skeleton="lcr13", where: str = "poses3d") -> float:
    """Checks that (N, J, 3) poses are in metres by their median body extent; returns it (metres).

    Raises:
      ValueError: naming ``where``, the extent found and the unit it suggests.
    """
    poses3d = np.asarray(poses3d, dtype=np.float64)
    if poses3d.shape[0] == 0:
        return 0.0
    extent = float(np.median(np.linalg.norm(centre_poses(poses3d, skeleton), axis=-1).max(-1)))
    lo, hi = BODY_EXTENT_RANGE_M
    if not lo <= extent <= hi:
        guess = ("millimetres" if extent > 100 * hi else "centimetres" if extent > hi else
                 "collapsed poses, or kilometres")
        raise ValueError(f"{where}: the median body extent is {extent:.4g}, outside [{lo}, {hi}] m for "
                         f"poses in metres (it looks like {guess})")
    return extent


def convert(poses: np.ndarray, src, dst, mask: Optional[np.ndarray] = None
            ) -> Tuple[np.ndarray, np.ndarray]:
    """Converts poses between joint sets.

    A joint present in both sets is copied. A joint of ``dst`` that ``src`` lacks is derived by the
    first applicable rule of :data:`DERIVED_JOINTS` (all of its source joints annotated in that pose),
    else it is NaN with a False mask.

    Args:
      poses: (..., J_src, D) float, any unit (2D pixels or 3D metres).
      src, dst: skeleton names or :class:`Skeleton` objects.
      mask: (..., J_src) bool, True where a joint is annotated; all True when omitted.
    Returns:
      (poses (..., J_dst, D) float, mask (..., J_dst) bool). Unannotated joints are NaN.
    """
    src, dst = get_skeleton(src), get_skeleton(dst)
    poses = np.asarray(poses, dtype=np.float64)
    if poses.shape[-2] != src.num_joints:
        raise ValueError(f"poses have {poses.shape[-2]} joints, skeleton {src.name!r} has {src.num_joints}")
    if mask is None:
        mask = np.ones(poses.shape[:-1], dtype=bool)
    mask = np.asarray(mask, dtype=bool) & np.all(np.isfinite(poses), axis=-1)
    out = np.full(poses.shape[:-2] + (dst.num_joints, poses.shape[-1]), np.nan)
    out_mask = np.zeros(poses.shape[:-2] + (dst.num_joints,), dtype=bool)
    for j, name in enumerate(dst.joint_names):  # loops over joint names, vectorised over poses
        if name in src.joint_names:
            i = src.index(name)
            out_mask[..., j] = mask[..., i]
            out[..., j, :] = np.where(mask[..., i, None], poses[..., i, :], np.nan)
            continue
        for group in DERIVED_JOINTS.get(name, ()):
            if not all(g in src.joint_names for g in group):
                continue
            idx = src.indices(group)
            usable = mask[..., idx].all(axis=-1) & ~out_mask[..., j]
            value = poses[..., idx, :].mean(axis=-2)
            out[..., j, :] = np.where(usable[..., None], value, out[..., j, :])
            out_mask[..., j] |= usable
    return out, out_mask
