"""Joint angles and posture sampling of the embedded body model (:mod:`lcr_tf.poses.body_model`).

A pose of the body model is a vector of :data:`ANGLE_NAMES` in degrees; this module names those angles,
holds their anatomical limits (:data:`JOINT_LIMITS_DEG`, :func:`clip_to_limits`) and draws them from the
motion families (:data:`FAMILIES`, :func:`sample_joint_angles`, :func:`family_counts`). It knows nothing
of segment lengths or joint positions: :func:`lcr_tf.poses.body_model.forward_kinematics` turns the angles into
3D joints, and the sign conventions below are those of its anatomical frame (X to the person's left,
Y up, Z forward).

Joint angles
------------
A pose is a vector of :data:`ANGLE_NAMES` in degrees; :data:`JOINT_LIMITS_DEG` holds the allowed range of
each, and every sampled pose is clipped into it (:func:`clip_to_limits`). Meanings (positive direction):

* ``root_yaw``: the facing azimuth, turning the person to their left about the vertical; any value
  (wrapped to [-180, 180)).
* ``root_pitch``: forward tilt of the pelvis (and everything above it) about the left-right axis;
  ``root_roll``: sideways lean towards the person's left. Together with the yaw these orient the pelvis.
* ``spine_flexion`` (forward bend), ``spine_lateral`` (bend towards the left), ``spine_twist`` (chest
  turns towards the left): the total trunk motion between pelvis and thorax, shared equally between the
  lumbar and thoracic joints.
* ``neck_flexion`` (chin down), ``neck_lateral`` (tilt towards the left), ``neck_twist`` (face turns
  towards the left): the head relative to the thorax, pivoting at the thorax point. The head centre lies
  on the neck axis, so ``neck_twist`` moves no output joint; it orients the head for a renderer.
* ``{side}_hip_flexion`` (thigh forward; negative is extension), ``{side}_hip_abduction`` (thigh away
  from the midline), ``{side}_hip_rotation`` (internal rotation: the knee turns towards the midline),
  relative to the pelvis; applied in that order (flexion, then abduction, then axial rotation).
* ``{side}_knee_flexion``: 0 is a straight leg; the shin swings backwards. No hyper-extension.
* ``{side}_shoulder_flexion`` (arm forward and up; 180 is straight up in front; negative is
  extension behind the back), ``{side}_shoulder_abduction`` (arm sideways away from the body; 180 is
  straight up at the side), ``{side}_shoulder_rotation`` (internal rotation: a bent forearm turns towards
  the belly), relative to the thorax, same order as the hip.
* ``{side}_elbow_flexion``: 0 is a straight arm; the forearm swings towards the front of the upper arm.

The ranges follow the usual clinical ranges of motion for healthy adults (e.g. the AAOS tables: hip
flexion 120-130 / extension 30, abduction 45 / adduction 30, rotation 40-45; knee 0-150; shoulder
flexion 180 / extension 50, abduction 180, internal 70 / external 90 rotation; elbow 0-150;
thoraco-lumbar flexion ~75 / extension 25, lateral bend 35, rotation 45; neck flexion/extension 50,
lateral bend 40, rotation 70).

Motion families
---------------
:data:`FAMILIES`: ``standing``, ``walking``, ``running`` (gait cycles at a random phase, opposite arm/leg
swing, a knee-flexion profile with a stance and a swing peak), ``sitting`` (hips and knees near 90
degrees), ``crouching`` (deep knee and hip flexion), ``reaching`` (one or both arms forward, sideways or
up), ``arms_raised`` (both hands above the head), ``bending`` (trunk forward over nearly straight legs).
Each draws the angles from its own distribution; every pose then gets a small random jitter on all
joints, a slight random lean and a facing azimuth uniform all round, so the corpus looks like MoCap with
arbitrary facing.
"""

from __future__ import annotations

from typing import Callable, Dict, Mapping, Sequence, Tuple, Union

import numpy as np

SIDES = ("right", "left")

# --- Joint angles ----------------------------------------------------------------------------------
_LIMB_ANGLES = ("hip_flexion", "hip_abduction", "hip_rotation", "knee_flexion",
                "shoulder_flexion", "shoulder_abduction", "shoulder_rotation", "elbow_flexion")
ANGLE_NAMES: Tuple[str, ...] = (
    ("root_yaw", "root_pitch", "root_roll", "spine_flexion", "spine_lateral", "spine_twist",
     "neck_flexion", "neck_lateral", "neck_twist")
    + tuple(f"{s}_{a}" for s in SIDES for a in _LIMB_ANGLES))
ANGLE_INDEX: Mapping[str, int] = {n: i for i, n in enumerate(ANGLE_NAMES)}

_LIMB_LIMITS = {
    "hip_flexion": (-30.0, 130.0), "hip_abduction": (-25.0, 45.0), "hip_rotation": (-45.0, 40.0),
    "knee_flexion": (0.0, 150.0),
    "shoulder_flexion": (-50.0, 180.0), "shoulder_abduction": (-20.0, 180.0),
    "shoulder_rotation": (-90.0, 70.0), "elbow_flexion": (0.0, 150.0),
}
JOINT_LIMITS_DEG: Mapping[str, Tuple[float, float]] = {
    "root_yaw": (-180.0, 180.0), "root_pitch": (-30.0, 90.0), "root_roll": (-30.0, 30.0),
    "spine_flexion": (-25.0, 75.0), "spine_lateral": (-35.0, 35.0), "spine_twist": (-45.0, 45.0),
    "neck_flexion": (-50.0, 50.0), "neck_lateral": (-40.0, 40.0), "neck_twist": (-70.0, 70.0),
    **{f"{s}_{a}": lim for s in SIDES for a, lim in _LIMB_LIMITS.items()},
}
_LOWER = np.array([JOINT_LIMITS_DEG[n][0] for n in ANGLE_NAMES])
_UPPER = np.array([JOINT_LIMITS_DEG[n][1] for n in ANGLE_NAMES])

# Every pose gets this much Gaussian jitter on each joint angle (degrees), a slight lean, and any yaw.
JITTER_DEG = 3.0
LEAN_SIGMA_DEG = 3.0



def clip_to_limits(angles_deg: np.ndarray) -> np.ndarray:
    """(N, A) degrees -> (N, A): each angle clipped into :data:`JOINT_LIMITS_DEG`, the yaw wrapped."""
    angles = np.asarray(angles_deg, dtype=np.float64)
    if angles.ndim != 2 or angles.shape[1] != len(ANGLE_NAMES):
        raise ValueError(f"angles must be (N, {len(ANGLE_NAMES)}) in ANGLE_NAMES order, got {angles.shape}")
    out = np.clip(angles, _LOWER, _UPPER)
    yaw = ANGLE_INDEX["root_yaw"]
    out[:, yaw] = np.mod(angles[:, yaw] + 180.0, 360.0) - 180.0
    return out




# --- Motion families -------------------------------------------------------------------------------
# Each sampler takes (n, rng) and returns {angle name: (n,) degrees} for the angles it sets (the others
# stay 0). Left/right are drawn independently unless the motion couples them.

def _u(rng, lo, hi, n):
    return rng.uniform(lo, hi, size=n)


def _bump(phase, centre, concentration):
    """A periodic bump in [0, 1] peaking at ``centre`` (radians), width set by ``concentration``."""
    return np.exp(concentration * (np.cos(phase - centre) - 1.0))


def _standing_legs(n, rng) -> Dict[str, np.ndarray]:
    out = {}
    for s in SIDES:
        out[f"{s}_hip_flexion"] = _u(rng, -5, 10, n)
        out[f"{s}_hip_abduction"] = _u(rng, -3, 10, n)
        out[f"{s}_hip_rotation"] = _u(rng, -15, 10, n)
        out[f"{s}_knee_flexion"] = _u(rng, 0, 15, n)
    return out


def _resting_arms(n, rng) -> Dict[str, np.ndarray]:
    """Arms hanging by the sides, or (one pose in three) forearms held in front of the body."""
    out = {}
    for s in SIDES:
        folded = rng.random(n) < 1 / 3
        out[f"{s}_shoulder_flexion"] = np.where(folded, _u(rng, 0, 40, n), _u(rng, -15, 25, n))
        out[f"{s}_shoulder_abduction"] = np.where(folded, _u(rng, 0, 25, n), _u(rng, 3, 20, n))
        out[f"{s}_shoulder_rotation"] = np.where(folded, _u(rng, 20, 70, n), _u(rng, -20, 40, n))
        out[f"{s}_elbow_flexion"] = np.where(folded, _u(rng, 60, 120, n), _u(rng, 0, 35, n))
    return out


def _head_and_trunk(n, rng, flexion=(-5, 10)) -> Dict[str, np.ndarray]:
    return {"spine_flexion": _u(rng, *flexion, n), "spine_lateral": rng.normal(0, 4, n),
            "spine_twist": rng.normal(0, 8, n), "neck_flexion": _u(rng, -15, 20, n),
            "neck_lateral": rng.normal(0, 5, n), "neck_twist": rng.normal(0, 25, n)}


def _standing(n, rng):
    out = {**_standing_legs(n, rng), **_resting_arms(n, rng), **_head_and_trunk(n, rng)}
    out["root_roll"] = rng.normal(0, 3, n)  # weight shifted onto one leg
    return out


def _gait(n, rng, running: bool):
    """A gait cycle at a uniform random phase; phase 0 is the left heel strike (left hip most flexed).

    The right leg runs half a cycle behind; each arm swings with the opposite leg. The knee flexion has
    a small stance peak (loading response) and a large swing peak.
    """
    phase = rng.uniform(0, 2 * np.pi, n)
    amp = rng.uniform(0.8, 1.2, n)
    if running:
        hip0, hip_amp, knee0, stance_peak, swing_peak = 20.0, 35.0, 15.0, 30.0, 95.0
        arm0, arm_amp, twist_amp = 10.0, 40.0, 10.0
        elbow = _u(rng, 70, 110, n)
        lean = _u(rng, 5, 15, n)
    else:
        hip0, hip_amp, knee0, stance_peak, swing_peak = 10.0, 22.0, 5.0, 15.0, 55.0
        arm0, arm_amp, twist_amp = 5.0, 18.0, 6.0
        elbow = None
        lean = _u(rng, -3, 5, n)
    out = {"root_pitch": lean}
    for s, leg_phase in (("left", phase), ("right", phase + np.pi)):
        arm_phase = leg_phase + np.pi
        # The whole body leans by ``lean``; hip flexion is relative to the pelvis, so it carries the lean.
        out[f"{s}_hip_flexion"] = hip0 + hip_amp * amp * np.cos(leg_phase) + lean
        out[f"{s}_hip_abduction"] = _u(rng, -3, 5, n)
        out[f"{s}_hip_rotation"] = _u(rng, -10, 5, n)
        out[f"{s}_knee_flexion"] = (knee0 + amp * (stance_peak * _bump(leg_phase, 0.12 * 2 * np.pi, 8.0)
                                                   + swing_peak * _bump(leg_phase, 0.72 * 2 * np.pi, 5.0)))
        out[f"{s}_shoulder_flexion"] = arm0 + arm_amp * amp * np.cos(arm_phase)
        out[f"{s}_shoulder_abduction"] = _u(rng, 5, 20 if running else 12, n)
        out[f"{s}_shoulder_rotation"] = _u(rng, 0, 40, n)
        out[f"{s}_elbow_flexion"] = (elbow if elbow is not None
                                     else 20 + 10 * np.cos(arm_phase) + rng.normal(0, 5, n))
    out.update(_head_and_trunk(n, rng, flexion=(0, 15) if running else (-5, 10)))
    # The chest counter-rotates against the pelvis: left leg forward brings the right shoulder forward.
    out["spine_twist"] = twist_amp * amp * np.cos(phase) + rng.normal(0, 3, n)
    out["neck_twist"] = rng.normal(0, 10, n)
    return out


def _walking(n, rng):
    return _gait(n, rng, running=False)


def _running(n, rng):
    return _gait(n, rng, running=True)


def _sitting(n, rng):
    # Pelvis rocked back a little (slouch); hip flexion is relative to it, so thigh_world + tilt.
    tilt = _u(rng, -15, 5, n)
    out = {"root_pitch": tilt, **_head_and_trunk(n, rng, flexion=(-5, 25))}
    for s in SIDES:
        out[f"{s}_hip_flexion"] = _u(rng, 78, 102, n) - tilt
        out[f"{s}_hip_abduction"] = _u(rng, 0, 20, n)
        out[f"{s}_hip_rotation"] = _u(rng, -15, 15, n)
        out[f"{s}_knee_flexion"] = _u(rng, 70, 110, n)
        out[f"{s}_shoulder_flexion"] = _u(rng, 0, 50, n)
        out[f"{s}_shoulder_abduction"] = _u(rng, 0, 20, n)
        out[f"{s}_shoulder_rotation"] = _u(rng, 0, 60, n)
        out[f"{s}_elbow_flexion"] = _u(rng, 30, 100, n)
    return out


def _crouching(n, rng):
    tilt = _u(rng, 10, 30, n)
    out = {"root_pitch": tilt, **_head_and_trunk(n, rng, flexion=(0, 30))}
    out["neck_flexion"] = -_u(rng, 0, 30, n)  # looking ahead, not at the floor
    for s in SIDES:
        out[f"{s}_hip_flexion"] = _u(rng, 70, 100, n) + tilt
        out[f"{s}_hip_abduction"] = _u(rng, 10, 35, n)
        out[f"{s}_hip_rotation"] = _u(rng, -25, 5, n)
        out[f"{s}_knee_flexion"] = _u(rng, 110, 150, n)
        out[f"{s}_shoulder_flexion"] = _u(rng, 0, 80, n)
        out[f"{s}_shoulder_abduction"] = _u(rng, 0, 30, n)
        out[f"{s}_shoulder_rotation"] = _u(rng, 0, 40, n)
        out[f"{s}_elbow_flexion"] = _u(rng, 10, 100, n)
    return out


_REACH_DIRECTIONS = {  # (shoulder flexion range, shoulder abduction range) in degrees
    "forward": ((60, 110), (-10, 20)),
    "sideways": ((-10, 30), (60, 110)),
    "up": ((120, 175), (0, 30)),
}


def _reaching(n, rng):
    out = {**_standing_legs(n, rng), **_resting_arms(n, rng), **_head_and_trunk(n, rng, flexion=(-5, 20))}
    # One foot a step forward on some poses.
    step = rng.random(n) < 0.4
    out["left_hip_flexion"] = np.where(step, _u(rng, 5, 25, n), out["left_hip_flexion"])
    arms = rng.integers(0, 3, n)  # 0: right arm, 1: left arm, 2: both
    direction = rng.integers(0, len(_REACH_DIRECTIONS), n)
    flex = np.zeros(n)
    abd = np.zeros(n)
    for d, (flex_range, abd_range) in enumerate(_REACH_DIRECTIONS.values()):
        pick = direction == d
        flex = np.where(pick, _u(rng, *flex_range, n), flex)
        abd = np.where(pick, _u(rng, *abd_range, n), abd)
    for s, arm_id in (("right", 0), ("left", 1)):
        reach = (arms == arm_id) | (arms == 2)
        out[f"{s}_shoulder_flexion"] = np.where(reach, flex + rng.normal(0, 5, n), out[f"{s}_shoulder_flexion"])
        out[f"{s}_shoulder_abduction"] = np.where(reach, abd + rng.normal(0, 5, n),
                                                  out[f"{s}_shoulder_abduction"])
        out[f"{s}_shoulder_rotation"] = np.where(reach, _u(rng, -30, 30, n), out[f"{s}_shoulder_rotation"])
        out[f"{s}_elbow_flexion"] = np.where(reach, _u(rng, 0, 30, n), out[f"{s}_elbow_flexion"])
    # Reaching with one arm turns the chest to bring that shoulder forward.
    one_arm_sign = np.select([arms == 0, arms == 1], [1.0, -1.0], 0.0)
    out["spine_twist"] = out["spine_twist"] + one_arm_sign * _u(rng, 0, 25, n)
    return out


def _arms_raised(n, rng):
    out = {**_standing_legs(n, rng), **_head_and_trunk(n, rng, flexion=(-15, 5))}
    out["neck_flexion"] = _u(rng, -30, 5, n)
    for s in SIDES:
        out[f"{s}_shoulder_flexion"] = _u(rng, 155, 180, n)
        out[f"{s}_shoulder_abduction"] = _u(rng, 0, 25, n)
        out[f"{s}_shoulder_rotation"] = _u(rng, -30, 30, n)
        out[f"{s}_elbow_flexion"] = _u(rng, 0, 30, n)
    return out


def _bending(n, rng):
    # The bend comes mostly from the pelvis rolling forward over the thighs (hip flexion = tilt + thigh
    # angle from the vertical), plus some trunk flexion; the arms hang towards the floor.
    tilt = _u(rng, 40, 85, n)
    out = {"root_pitch": tilt, **_head_and_trunk(n, rng, flexion=(0, 40))}
    out["neck_flexion"] = -_u(rng, 0, 40, n)
    trunk = tilt + out["spine_flexion"]
    for s in SIDES:
        out[f"{s}_hip_flexion"] = tilt + _u(rng, -10, 5, n)
        out[f"{s}_hip_abduction"] = _u(rng, -3, 12, n)
        out[f"{s}_hip_rotation"] = _u(rng, -15, 10, n)
        out[f"{s}_knee_flexion"] = _u(rng, 0, 25, n)
        out[f"{s}_shoulder_flexion"] = trunk + _u(rng, -30, 20, n)
        out[f"{s}_shoulder_abduction"] = _u(rng, 0, 25, n)
        out[f"{s}_shoulder_rotation"] = _u(rng, -20, 40, n)
        out[f"{s}_elbow_flexion"] = _u(rng, 0, 40, n)
    return out


FAMILY_SAMPLERS: Mapping[str, Callable[[int, np.random.Generator], Dict[str, np.ndarray]]] = {
    "standing": _standing, "walking": _walking, "running": _running, "sitting": _sitting,
    "crouching": _crouching, "reaching": _reaching, "arms_raised": _arms_raised, "bending": _bending,
}
FAMILIES: Tuple[str, ...] = tuple(FAMILY_SAMPLERS)


def sample_joint_angles(family: str, num: int, rng: np.random.Generator) -> np.ndarray:
    """``num`` poses of one motion family: (num, A) degrees in :data:`ANGLE_NAMES` order, within limits.

    Adds the jitter, the slight random lean and a uniform facing azimuth to the family's distribution.
    """
    if family not in FAMILY_SAMPLERS:
        raise ValueError(f"unknown motion family {family!r}; known: {list(FAMILIES)}")
    angles = np.zeros((num, len(ANGLE_NAMES)))
    for name, values in FAMILY_SAMPLERS[family](num, rng).items():
        angles[:, ANGLE_INDEX[name]] = values
    angles += rng.normal(0.0, JITTER_DEG, size=angles.shape)
    angles[:, ANGLE_INDEX["root_pitch"]] += rng.normal(0.0, LEAN_SIGMA_DEG, num)
    angles[:, ANGLE_INDEX["root_roll"]] += rng.normal(0.0, LEAN_SIGMA_DEG, num)
    angles[:, ANGLE_INDEX["root_yaw"]] = rng.uniform(-180.0, 180.0, num)
    return clip_to_limits(angles)



FamiliesArg = Union[None, str, Sequence[str], Mapping[str, float]]


def family_counts(num_poses: int, families: FamiliesArg = None) -> Dict[str, int]:
    """How many poses each family gets.

    ``families``: None (all of :data:`FAMILIES`), one name, a sequence of names (equal shares), or a
    mapping name -> non-negative weight (shares proportional to the weights). Counts sum to
    ``num_poses``; the remainder of the division goes, one each, to the largest fractional parts (ties:
    first listed).
    """
    if isinstance(num_poses, (bool, np.bool_)) or int(num_poses) != num_poses or num_poses < 0:
        raise ValueError(f"num_poses must be a non-negative integer, got {num_poses!r}")
    num_poses = int(num_poses)
    if families is None:
        families = FAMILIES
    if isinstance(families, str):
        families = (families,)
    if isinstance(families, Mapping):
        names = list(families)
        weights = np.array([float(families[f]) for f in names])
    else:
        names = list(families)
        weights = np.ones(len(names))
    if not names:
        raise ValueError("families is empty")
    unknown = [f for f in names if f not in FAMILY_SAMPLERS]
    if unknown:
        raise ValueError(f"unknown motion family(ies) {unknown}; known: {list(FAMILIES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"families repeat a name: {names}")
    if not np.all(np.isfinite(weights) & (weights >= 0)) or weights.sum() <= 0:
        raise ValueError(f"family weights must be non-negative with a positive sum, got {dict(zip(names, weights))}")
    exact = num_poses * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:num_poses - counts.sum()]] += 1
    return {f: int(c) for f, c in zip(names, counts)}
