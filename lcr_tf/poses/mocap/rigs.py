"""MoCap rig registry: which joints of a file give which anatomical point, and BVH length units.

A rig is recognised from its joint names (:func:`detect_rig`); it never guesses: a file whose joints
match no registered rig is refused with the joints that are missing. Each rig gives the points of one
shared vocabulary, the joint names of :mod:`lcr_tf.contracts.skeleton` (``left_hip``, ``head``, ``head_top``, ...),
so mapping to any registered skeleton follows from its joint names (:meth:`Rig.points`).

Point recipes (``Origin``/``End`` read the forward-kinematics output of :class:`lcr_tf.poses.mocap.SkeletonMotion`):

* limbs: hips are the thigh joints' origins, knees the shins', ankles the feet's, shoulders the upper
  arms', elbows the forearms', wrists the hands' (for an ASF: the start points of femur, tibia, foot,
  humerus, radius and wrist bones, i.e. the femur's start is the hip and the radius' end the wrist);
* ``head`` is the centre of the head, half-way between the base of the skull (the head joint's origin)
  and the top of the head (the head's End Site, or the ASF head bone's end). The DAZ and iClone rigs
  have no head top: their head centre is the point at eye height on the head's own up axis (the
  direction of the head joint's OFFSET, i.e. the neck's last segment at rest) above the head joint;
  the eyes sit about half-way between the skull base and the top of the head. They give no
  ``head_top`` (which would be a guess), so h36m17 / mupots17 are not available from them;
* ``head_top``: the head's End Site / ASF head bone end (CMU rigs only);
* ``neck`` and ``thorax``: the base of the neck (origin of the lowest neck joint);
* ``upper_neck`` and ``neck_nose``: the top of the neck (the head joint's origin);
* ``pelvis``: the mid-hip; ``spine``: half-way between the mid-hip and the base of the neck.

BVH files declare no length unit: :func:`infer_length_unit` picks, among :data:`LENGTH_UNITS`, the
single one that makes the rest skeleton's leg (the sum of the OFFSET lengths from the left hip joint to
the left ankle joint) an adult's, i.e. within :data:`PLAUSIBLE_LEG_M`.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Mapping, Sequence, Tuple, Union

import numpy as np

from lcr_tf.poses.mocap import MocapError, SkeletonMotion

# Metres in one unit. "cmu": CMU's ASF length unit, 1/0.45 inch (``:units length 0.45``).
LENGTH_UNITS: Mapping[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu": 0.0254 / 0.45}
# Hip-to-ankle length (straight leg) of an adult, metres. The bounds are more than the ratio of any two
# neighbouring candidate units apart (cmu/inch = 2.22, inch/cm = 2.54), so at most one unit fits.
PLAUSIBLE_LEG_M = (0.55, 1.15)


@dataclasses.dataclass(frozen=True)
class Origin:
    """A joint's origin (ASF: a bone's start)."""
    joint: str


@dataclasses.dataclass(frozen=True)
class End:
    """A joint's End Site (ASF: a bone's end)."""
    joint: str


@dataclasses.dataclass(frozen=True)
class Mean:
    """The mean of several points."""
    parts: Tuple["Point", ...]


@dataclasses.dataclass(frozen=True)
class EyeLevel:
    """The point at eye height above ``head``'s origin along the head's up axis (see module docs)."""
    head: str
    eyes: Tuple[str, str]


Point = Union[Origin, End, Mean, EyeLevel]


def _joints_of(point: Point) -> Tuple[str, ...]:
    if isinstance(point, (Origin, End)):
        return (point.joint,)
    if isinstance(point, EyeLevel):
        return (point.head,) + tuple(point.eyes)
    return tuple(j for p in point.parts for j in _joints_of(p))


@dataclasses.dataclass(frozen=True)
class Rig:
    """A known rig: ``name``, ``recipes`` (vocabulary point name -> :data:`Point`) and ``description``.

    Its identifying joints are every joint a recipe uses; a file is this rig iff it has them all.
    """

    name: str
    recipes: Mapping[str, Point]
    description: str = ""

    @property
    def identifying_joints(self) -> frozenset:
        return frozenset(j for p in self.recipes.values() for j in _joints_of(p))

    @property
    def available(self) -> Tuple[str, ...]:
        """The vocabulary points this rig gives."""
        return tuple(self.recipes)

    def missing_for(self, joint_names: Sequence[str]) -> Tuple[str, ...]:
        return tuple(n for n in joint_names if n not in self.recipes)

    def points(self, motion: SkeletonMotion, joint_names: Sequence[str]) -> np.ndarray:
        """(F, len(joint_names), 3) positions in ``motion``'s length unit and axes.

        Raises:
          MocapError: a name this rig cannot give (all such names are listed).
        """
        missing = self.missing_for(joint_names)
        if missing:
            raise MocapError(motion.path, f"rig {self.name!r} cannot give joint(s) {', '.join(missing)} "
                                          f"(it gives {', '.join(self.available)})")
        return np.stack([_evaluate(self.recipes[n], motion) for n in joint_names], axis=1)


def _evaluate(point: Point, motion: SkeletonMotion) -> np.ndarray:
    """(F, 3) position of a recipe point, vectorised over frames."""
    if isinstance(point, Origin):
        return motion.origins[:, motion.joint_index(point.joint)]
    if isinstance(point, End):
        j = motion.joint_index(point.joint)
        if np.isnan(motion.ends[:, j]).any():
            raise MocapError(motion.path, f"joint {point.joint!r} has no End Site")
        return motion.ends[:, j]
    if isinstance(point, Mean):
        return np.mean([_evaluate(p, motion) for p in point.parts], axis=0)
    head = motion.joint_index(point.head)
    norm = np.linalg.norm(motion.offsets[head])
    if norm == 0:
        raise MocapError(motion.path, f"joint {point.head!r} has a zero OFFSET, so the head has no up axis")
    up_local = motion.offsets[head] / norm
    up = motion.rotations[:, head] @ up_local  # (F, 3) unit
    origin = motion.origins[:, head]
    eyes = np.mean([motion.origins[:, motion.joint_index(e)] for e in point.eyes], axis=0)
    height = np.einsum("fi,fi->f", eyes - origin, up)
    return origin + up * height[:, None]


def _limbs(hip, knee, ankle, shoulder, elbow, wrist, left="Left", right="Right") -> Dict[str, Point]:
    out: Dict[str, Point] = {}
    for side, prefix in (("left", left), ("right", right)):
        for vocab, joint in (("hip", hip), ("knee", knee), ("ankle", ankle), ("shoulder", shoulder),
                             ("elbow", elbow), ("wrist", wrist)):
            out[f"{side}_{vocab}"] = Origin(joint.format(prefix))
    return out


def _trunk(recipes: Dict[str, Point], neck_base: str, head: str) -> Dict[str, Point]:
    pelvis = Mean((recipes["left_hip"], recipes["right_hip"]))
    recipes.update({
        "pelvis": pelvis,
        "neck": Origin(neck_base), "thorax": Origin(neck_base),
        "upper_neck": Origin(head), "neck_nose": Origin(head),
        "spine": Mean((pelvis, Origin(neck_base))),
    })
    return recipes


def _cmu_head(recipes: Dict[str, Point], head: str) -> Dict[str, Point]:
    recipes["head"] = Mean((Origin(head), End(head)))
    recipes["head_top"] = End(head)
    return recipes


CMU_ASF = Rig("cmu_asf", _cmu_head(_trunk(
    _limbs("{}femur", "{}tibia", "{}foot", "{}humerus", "{}radius", "{}wrist", left="l", right="r"),
    "lowerneck", "head"), "head"),
    "CMU ASF bones (root, lhipjoint, lfemur, ltibia, lfoot, ..., lowerneck, upperneck, head, lclavicle, "
    "lhumerus, lradius, lwrist, lhand, ...); a bone's start is its origin, its end its End Site.")

CMU_BVH_A = Rig("cmu_bvh_a", _cmu_head(_trunk(
    _limbs("{}UpLeg", "{}Leg", "{}Foot", "{}Arm", "{}ForeArm", "{}Hand"), "Neck", "Head"), "Head"),
    "CMU 31-joint BVH, naming Hips/LeftUpLeg/LeftLeg/LeftFoot, LeftShoulder (clavicle)/LeftArm/"
    "LeftForeArm/LeftHand, LowerBack/Spine/Spine1/Neck/Neck1/Head.")

CMU_BVH_B = Rig("cmu_bvh_b", _cmu_head(_trunk(
    _limbs("{}Hip", "{}Knee", "{}Ankle", "{}Shoulder", "{}Elbow", "{}Wrist"), "lowerneck", "Head"), "Head"),
    "CMU 31-joint BVH, naming Hips/LHipJoint/LeftHip (the thigh)/LeftKnee (the shin)/LeftAnkle, "
    "LeftCollar/LeftShoulder (the upper arm)/LeftElbow/LeftWrist, lowerback/Chest/Chest2/lowerneck/Neck/Head.")

_daz = _trunk(_limbs("{}Thigh", "{}Shin", "{}Foot", "{}Shldr", "{}ForeArm", "{}Hand", left="l", right="r"),
              "neck", "head")
_daz["head"] = EyeLevel("head", ("leftEye", "rightEye"))
DAZ = Rig("daz", _daz,
          "DAZ rig: hip, abdomen, chest, neck, head, leftEye, rightEye, lCollar, lShldr, lForeArm, lHand, "
          "lButtock, lThigh, lShin, lFoot, ... (no head top).")

_cc = _trunk(_limbs("CC_Base_{}_Thigh", "CC_Base_{}_Calf", "CC_Base_{}_Foot", "CC_Base_{}_Upperarm",
                    "CC_Base_{}_Forearm", "CC_Base_{}_Hand", left="L", right="R"),
             "CC_Base_NeckTwist01", "CC_Base_Head")
_cc["head"] = EyeLevel("CC_Base_Head", ("CC_Base_L_Eye", "CC_Base_R_Eye"))
ICLONE_CC = Rig("iclone_cc", _cc,
                "iClone Character Creator rig: CC_Base_Hip, CC_Base_L_Thigh, CC_Base_L_Calf, CC_Base_L_Foot, "
                "CC_Base_L_Upperarm, CC_Base_L_Forearm, CC_Base_L_Hand, CC_Base_NeckTwist01, CC_Base_Head, "
                "CC_Base_L_Eye, ... (no head top).")

RIGS: Dict[str, Rig] = {r.name: r for r in (CMU_ASF, CMU_BVH_A, CMU_BVH_B, DAZ, ICLONE_CC)}


def detect_rig(joint_names: Sequence[str], path: str = "<motion>") -> Rig:
    """The registered rig whose identifying joints are all among ``joint_names``.

    Raises:
      MocapError: no rig matches ("unknown rig: joints X, Y, ... not found", for the nearest rig), or
        several do.
    """
    present = set(joint_names)
    matches = [r for r in RIGS.values() if r.identifying_joints <= present]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise MocapError(path, f"ambiguous rig: the joints match {[r.name for r in matches]}")
    nearest = max(RIGS.values(), key=lambda r: len(r.identifying_joints & present) / len(r.identifying_joints))
    missing = sorted(nearest.identifying_joints - present)
    shown = ", ".join(list(joint_names)[:8]) + (", ..." if len(joint_names) > 8 else "")
    raise MocapError(path, f"unknown rig: joints {', '.join(missing)} not found (nearest known rig "
                           f"{nearest.name!r}; the file's joints: {shown})")


def metres_per(unit: str, path: str = "<motion>") -> float:
    """Metres in one ``unit`` of :data:`LENGTH_UNITS`."""
    try:
        return LENGTH_UNITS[unit]
    except KeyError:
        raise MocapError(path, f"unknown length unit {unit!r}; known: {', '.join(LENGTH_UNITS)}") from None


def leg_length(motion: SkeletonMotion, rig: Rig) -> float:
    """Rest-pose left leg length in file units: the OFFSET lengths summed along the hierarchy from the
    left hip's joint to the left ankle's joint (rotations do not change it)."""
    hip, ankle = rig.recipes["left_hip"], rig.recipes["left_ankle"]
    if not (isinstance(hip, Origin) and isinstance(ankle, Origin)):
        raise MocapError(motion.path, f"rig {rig.name!r}: the leg is not a joint chain")
    top, j = motion.joint_index(hip.joint), motion.joint_index(ankle.joint)
    total = 0.0
    while j != top:
        if j < 0:
            raise MocapError(motion.path, f"joint {ankle.joint!r} is not below {hip.joint!r}")
        total += float(np.linalg.norm(motion.offsets[j]))
        j = int(motion.parents[j])
    return total


def infer_length_unit(motion: SkeletonMotion, rig: Rig) -> Tuple[str, float, float]:
    """The length unit that gives the rig an adult's leg.

    Returns:
      (unit name, metres per unit, leg length in metres).
    Raises:
      MocapError: no candidate unit gives a leg within :data:`PLAUSIBLE_LEG_M` (the message gives the
        leg length in file units and suggests passing the unit explicitly).
    """
    leg = leg_length(motion, rig)
    lo, hi = PLAUSIBLE_LEG_M
    fits = [(u, s) for u, s in LENGTH_UNITS.items() if lo <= leg * s <= hi]
    if len(fits) != 1:
        raise MocapError(motion.path, f"cannot infer the length unit: the leg (hip to ankle) is {leg:g} file "
                                      f"units, and {len(fits)} of the units {', '.join(LENGTH_UNITS)} make it "
                                      f"{lo}-{hi} m; give the unit explicitly")
    unit, scale = fits[0]
    return unit, scale, leg * scale
