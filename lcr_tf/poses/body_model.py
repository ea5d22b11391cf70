"""The embedded pose source: a parametric human body that samples plausible, varied 3D poses.

The package cannot ship MoCap recordings, so this model stands in for them wherever a 3D pose corpus is
needed without external data (the demo, the synthetic image renderer, tests). :func:`sample_poses`
returns a :class:`lcr_tf.poses.pose_corpus.PoseCorpus` in the ``poses.npz`` format: LCR-13 joints, metres,
camera axes, body-centred.

Frames
------
Forward kinematics runs in a body-attached **anatomical frame**: X to the person's left, Y up, Z forward
(right-handed). Output points go to **camera axes** (x right, y down, z away from the camera) through
:data:`ANATOMICAL_TO_CAMERA` = diag(1, -1, -1), a proper rotation. With zero yaw the person faces the
camera (looks along -z), so their left side is at +x (image right) and the head is at negative y.
Finally every pose is centred with :func:`lcr_tf.contracts.skeleton.body_centre` (mean of hips and shoulders).

Kinematic tree
--------------
::

    pelvis (root: mid-point of the hip joints)
    +-- right_hip / left_hip  (pelvis +- hip_width/2 along X)
    |     +-- knee (thigh)  +-- ankle (shin)
    +-- spine (lumbar segment, up the Y axis)
          +-- thorax (thoracic segment; the mid-point of the shoulder joints)
                +-- right_shoulder / left_shoulder (thorax +- shoulder_width/2 along X)
                |     +-- elbow (upper arm) +-- wrist (forearm)
                +-- head (centre of the head, neck_head above the thorax)

``pelvis``, ``spine`` and ``thorax`` are internal points; the public output is the 13 joints of
:data:`lcr_tf.contracts.skeleton.LCR13`. :data:`POINT_NAMES` and :data:`SEGMENTS` expose the whole tree (e.g. for
drawing capsules), and :func:`forward_kinematics` can return every point.

Body dimensions
---------------
Segment lengths are fixed fractions of stature H, taken from the classic anthropometric table of segment
lengths relative to body height (Drillis and Contini, 1966, as reproduced in Winter's *Biomechanics and
Motor Control of Human Movement*): hip joint at 0.530 H above the floor, knee 0.285 H, ankle 0.039 H,
shoulder 0.818 H, elbow 0.630 H, wrist 0.485 H, chin 0.870 H, eyes 0.936 H. Hence thigh 0.245 H, shin
0.246 H, upper arm 0.188 H, forearm 0.145 H, hip-to-shoulder torso 0.288 H (split lumbar 0.40 /
thoracic 0.60) and shoulder line to head centre 0.112 H (the head centre is taken at about eye level,
half-way between skull base and crown). The table gives the bi-acromial breadth (0.259 H) at the outer
edge of the shoulders; the shoulder *joint centres* are narrower, taken 0.200 H apart, and the hip joint
centres 0.110 H apart (about 0.19 m for a 1.75 m adult).

Each sampled person has a stature uniform in ``stature_range`` (1.50-1.95 m by default), each segment
length multiplied by its own factor uniform in 1 +- :data:`LENGTH_VARIATION` (4 %) and each width by
1 +- :data:`WIDTH_VARIATION` (8 %). Left and right lengths of one person are always equal. For the
default statures the thigh is 0.353-0.497 m, the shin 0.354-0.499 m, the upper arm 0.271-0.381 m and the
forearm 0.209-0.294 m.

Joint angles and motion families
--------------------------------
The pose vector (names, meanings, limits) and the motion families that draw it live in
:mod:`lcr_tf.poses.body_angles`; this module adds the body shapes, the forward kinematics and the corpus.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Mapping, Tuple

import numpy as np

from lcr_tf.contracts import geometry
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.poses import body_angles, pose_corpus

SOURCE = "lcr_tf.poses.body_model"

# --- Body dimensions (fractions of stature; see the module docstring for the source). -------------
SEGMENT_RATIOS: Mapping[str, float] = {
    "thigh": 0.530 - 0.285,
    "shin": 0.285 - 0.039,
    "upper_arm": 0.818 - 0.630,
    "forearm": 0.630 - 0.485,
    "lumbar": 0.40 * (0.818 - 0.530),
    "thoracic": 0.60 * (0.818 - 0.530),
    "neck_head": 0.930 - 0.818,
}
WIDTH_RATIOS: Mapping[str, float] = {"hip_width": 0.110, "shoulder_width": 0.200}
DEFAULT_STATURE_RANGE_M = (1.50, 1.95)
LENGTH_VARIATION = 0.04
WIDTH_VARIATION = 0.08

# --- Points of the kinematic tree. The first 13 are the LCR-13 joints in their order. -------------
INTERNAL_POINTS = ("pelvis", "spine", "thorax")
POINT_NAMES: Tuple[str, ...] = tuple(skeleton_lib.LCR13.joint_names) + INTERNAL_POINTS
# (parent point, child point, length or width field of BodyShape): every rigid segment of the tree.
SEGMENTS: Tuple[Tuple[str, str, str], ...] = (
    ("pelvis", "right_hip", "hip_width"), ("pelvis", "left_hip", "hip_width"),
    ("right_hip", "right_knee", "thigh"), ("left_hip", "left_knee", "thigh"),
    ("right_knee", "right_ankle", "shin"), ("left_knee", "left_ankle", "shin"),
    ("pelvis", "spine", "lumbar"), ("spine", "thorax", "thoracic"),
    ("thorax", "right_shoulder", "shoulder_width"), ("thorax", "left_shoulder", "shoulder_width"),
    ("right_shoulder", "right_elbow", "upper_arm"), ("left_shoulder", "left_elbow", "upper_arm"),
    ("right_elbow", "right_wrist", "forearm"), ("left_elbow", "left_wrist", "forearm"),
    ("thorax", "head", "neck_head"),
)

# Camera axes from anatomical axes: x = X (left), y = -Y (up -> down), z = -Z (forward -> towards camera).
ANATOMICAL_TO_CAMERA = np.diag([1.0, -1.0, -1.0])


@dataclasses.dataclass
class BodyShape:
    """Per-person dimensions, each a (N,) float64 array in metres (widths are joint-centre distances)."""

    stature: np.ndarray
    thigh: np.ndarray
    shin: np.ndarray
    upper_arm: np.ndarray
    forearm: np.ndarray
    lumbar: np.ndarray
    thoracic: np.ndarray
    neck_head: np.ndarray
    hip_width: np.ndarray
    shoulder_width: np.ndarray

    def __post_init__(self):
        n = np.shape(self.stature)
        for f in dataclasses.fields(self):
            value = np.asarray(getattr(self, f.name), dtype=np.float64)
            if value.shape != n or value.ndim != 1:
                raise ValueError(f"BodyShape.{f.name} has shape {value.shape}, expected (N,) = {n}")
            if not np.all(np.isfinite(value) & (value > 0)):
                raise ValueError(f"BodyShape.{f.name} must be finite and positive")
            setattr(self, f.name, value)

    def __len__(self) -> int:
        return self.stature.shape[0]

    @classmethod
    def average(cls, stature) -> "BodyShape":
        """The table's proportions, no per-person variation; ``stature`` (N,) metres."""
        stature = np.atleast_1d(np.asarray(stature, dtype=np.float64))
        ratios = {**SEGMENT_RATIOS, **WIDTH_RATIOS}
        return cls(stature=stature, **{k: r * stature for k, r in ratios.items()})


def sample_body_shapes(num: int, rng: np.random.Generator,
                       stature_range: Tuple[float, float] = DEFAULT_STATURE_RANGE_M) -> BodyShape:
    """``num`` random people: stature uniform in ``stature_range`` (metres), lengths varied by
    +-:data:`LENGTH_VARIATION` and widths by +-:data:`WIDTH_VARIATION` (uniform, independent)."""
    lo, hi = stature_range
    if not 0.5 <= lo <= hi <= 2.5:
        raise ValueError(f"stature_range must satisfy 0.5 <= lo <= hi <= 2.5 metres, got {stature_range}")
    stature = rng.uniform(lo, hi, size=num)
    lengths = {k: r * stature * rng.uniform(1 - LENGTH_VARIATION, 1 + LENGTH_VARIATION, size=num)
               for k, r in SEGMENT_RATIOS.items()}
    widths = {k: r * stature * rng.uniform(1 - WIDTH_VARIATION, 1 + WIDTH_VARIATION, size=num)
              for k, r in WIDTH_RATIOS.items()}
    return BodyShape(stature=stature, **lengths, **widths)


# --- Forward kinematics ----------------------------------------------------------------------------

def _rot_x(deg):
    return geometry.rotation_x(np.deg2rad(deg))


def _rot_y(deg):
    return geometry.rotation_y(np.deg2rad(deg))


def _rot_z(deg):
    """(N,) degrees -> (N, 3, 3): rotation about Z; positive turns +X towards +Y."""
    return geometry.rotation_z(np.deg2rad(deg))


def _apply(rotation, vector):
    """(N, 3, 3) @ (N, 3) -> (N, 3)."""
    return np.einsum("nij,nj->ni", rotation, vector)


def _limb_rotation(flexion, abduction, rotation, side_sign):
    """Rotation of a down-pointing limb relative to its parent frame.

    Written for the left side (abduction towards +X, internal rotation turning forward towards -X); the
    right side is its mirror image through the X = 0 plane, which flips the sign of the Z and Y
    rotations and keeps the X one.
    """
    return _rot_x(-flexion) @ _rot_z(side_sign * abduction) @ _rot_y(-side_sign * rotation)


def _trunk_rotation(flexion, lateral, twist):
    """Rotation of an up-pointing segment: forward bend about X, side bend towards +X, twist about Y."""
    return _rot_x(flexion) @ _rot_z(-lateral) @ _rot_y(twist)


def forward_kinematics(angles_deg: np.ndarray, shape: BodyShape, internal: bool = False) -> np.ndarray:
    """Joint positions of posed bodies.

    Args:
      angles_deg: (N, A) joint angles in degrees, :data:`~lcr_tf.poses.body_angles.ANGLE_NAMES` order (not
        clipped here).
      shape: a :class:`BodyShape` of N people.
      internal: also return the internal points (see :data:`POINT_NAMES`).
    Returns:
      (N, 13, 3) float64 LCR-13 joints, or (N, 16, 3) in :data:`POINT_NAMES` order with ``internal``;
      metres, camera axes (x right, y down, z away), centred on the body centre of the 13 joints.
    """
    a = np.asarray(angles_deg, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != len(body_angles.ANGLE_NAMES):
        raise ValueError(f"angles must be (N, {len(body_angles.ANGLE_NAMES)}) in ANGLE_NAMES order, got {a.shape}")
    n = a.shape[0]
    if len(shape) != n:
        raise ValueError(f"angles hold {n} poses but the BodyShape holds {len(shape)} people")

    def ang(name):
        return a[:, body_angles.ANGLE_INDEX[name]]

    def along(axis, length):
        v = np.zeros((n, 3))
        v[:, axis] = length
        return v

    pts: Dict[str, np.ndarray] = {}
    pelvis_r = (_rot_y(ang("root_yaw")) @ _rot_x(ang("root_pitch")) @ _rot_z(-ang("root_roll")))
    pts["pelvis"] = np.zeros((n, 3))
    # The trunk bends at two joints (lumbo-sacral and thoraco-lumbar), half the motion each, so a bent
    # back is curved rather than hinged at one point.
    half_trunk = _trunk_rotation(0.5 * ang("spine_flexion"), 0.5 * ang("spine_lateral"),
                                 0.5 * ang("spine_twist"))
    lumbar_r = pelvis_r @ half_trunk
    pts["spine"] = _apply(lumbar_r, along(1, shape.lumbar))
    thorax_r = lumbar_r @ half_trunk
    pts["thorax"] = pts["spine"] + _apply(thorax_r, along(1, shape.thoracic))
    head_r = thorax_r @ _trunk_rotation(ang("neck_flexion"), ang("neck_lateral"), ang("neck_twist"))
    pts["head"] = pts["thorax"] + _apply(head_r, along(1, shape.neck_head))

    for side, sign in (("left", 1.0), ("right", -1.0)):
        def sa(name):
            return ang(f"{side}_{name}")
        hip = _apply(pelvis_r, along(0, sign * 0.5 * shape.hip_width))
        thigh_r = pelvis_r @ _limb_rotation(sa("hip_flexion"), sa("hip_abduction"), sa("hip_rotation"), sign)
        knee = hip + _apply(thigh_r, along(1, -shape.thigh))
        shin_r = thigh_r @ _rot_x(sa("knee_flexion"))  # the shin swings backwards
        pts[f"{side}_hip"], pts[f"{side}_knee"] = hip, knee
        pts[f"{side}_ankle"] = knee + _apply(shin_r, along(1, -shape.shin))

        shoulder = pts["thorax"] + _apply(thorax_r, along(0, sign * 0.5 * shape.shoulder_width))
        upper_r = thorax_r @ _limb_rotation(sa("shoulder_flexion"), sa("shoulder_abduction"),
                                            sa("shoulder_rotation"), sign)
        elbow = shoulder + _apply(upper_r, along(1, -shape.upper_arm))
        fore_r = upper_r @ _rot_x(-sa("elbow_flexion"))  # the forearm swings forwards
        pts[f"{side}_shoulder"], pts[f"{side}_elbow"] = shoulder, elbow
        pts[f"{side}_wrist"] = elbow + _apply(fore_r, along(1, -shape.forearm))

    points = np.stack([pts[name] for name in POINT_NAMES], axis=1) @ ANATOMICAL_TO_CAMERA.T
    num_joints = skeleton_lib.LCR13.num_joints
    points = points - skeleton_lib.body_centre(points[:, :num_joints], skeleton_lib.LCR13)
    return points if internal else points[:, :num_joints]



@dataclasses.dataclass
class PoseParameters:
    """What :func:`sample_pose_parameters` drew for N poses.

    Attributes:
      angles_deg: (N, A) float64 degrees, :data:`~lcr_tf.poses.body_angles.ANGLE_NAMES` order, within
        :data:`~lcr_tf.poses.body_angles.JOINT_LIMITS_DEG`.
      shape: the N people's :class:`BodyShape`.
      family: (N,) str, the motion family of each pose.
      frame: (N,) int32, the index of each pose within its family.
    """

    angles_deg: np.ndarray
    shape: BodyShape
    family: np.ndarray
    frame: np.ndarray

    def __len__(self) -> int:
        return self.angles_deg.shape[0]

    def angle(self, name: str) -> np.ndarray:
        """(N,) degrees of one named angle."""
        if name not in body_angles.ANGLE_INDEX:
            raise KeyError(f"unknown joint angle {name!r}; known: {list(body_angles.ANGLE_NAMES)}")
        return self.angles_deg[:, body_angles.ANGLE_INDEX[name]]



def sample_pose_parameters(num_poses: int, seed: int = 0, families: body_angles.FamiliesArg = None,
                           stature_range: Tuple[float, float] = DEFAULT_STATURE_RANGE_M) -> PoseParameters:
    """Draws joint angles and body shapes for ``num_poses`` poses, grouped by family in the order given.

    Deterministic: each family draws from its own stream seeded by (``seed``, the family's index in
    :data:`~lcr_tf.poses.body_angles.FAMILIES`), so a family's poses depend only on the seed and its count.
    """
    if isinstance(seed, (bool, np.bool_)) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    counts = body_angles.family_counts(num_poses, families)
    angles, shapes, fam, frame = [], [], [], []
    for name, count in counts.items():
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), body_angles.FAMILIES.index(name)]))
        shapes.append(sample_body_shapes(count, rng, stature_range))
        angles.append(body_angles.sample_joint_angles(name, count, rng))
        fam.append(np.full(count, name))
        frame.append(np.arange(count, dtype=np.int32))
    shape = BodyShape(**{f.name: np.concatenate([getattr(s, f.name) for s in shapes])
                         for f in dataclasses.fields(BodyShape)})
    return PoseParameters(np.concatenate(angles), shape, np.concatenate(fam).astype(str),
                          np.concatenate(frame).astype(np.int32))


def sample_poses(num_poses: int, seed: int = 0, families: body_angles.FamiliesArg = None,
                 stature_range: Tuple[float, float] = DEFAULT_STATURE_RANGE_M) -> pose_corpus.PoseCorpus:
    """Samples a corpus of plausible 3D poses from the body model.

    Args:
      num_poses: number of poses N.
      seed: random seed; the same seed gives byte-identical arrays.
      families: which motion families and in what shares (see
        :func:`~lcr_tf.poses.body_angles.family_counts`); default all of
        :data:`~lcr_tf.poses.body_angles.FAMILIES` in equal shares.
      stature_range: (min, max) stature in metres, sampled uniformly.
    Returns:
      A :class:`~lcr_tf.poses.pose_corpus.PoseCorpus`: ``poses3d`` (N, 13, 3) float32 LCR-13 joints in metres,
      camera axes (x right, y down, z away), body-centred, facing any azimuth; ``trial`` the family name;
      ``frame`` the index within the family.
    """
    params = sample_pose_parameters(num_poses, seed, families, stature_range)
    poses = forward_kinematics(params.angles_deg, params.shape)
    counts = body_angles.family_counts(num_poses, families)
    metadata = {"skeleton": skeleton_lib.LCR13.name, "units": "m", "source": SOURCE,
                "families": list(counts), "family_counts": counts, "seed": int(seed),
                "stature_range_m": [float(v) for v in stature_range]}
    return pose_corpus.PoseCorpus(poses.astype(np.float32), params.family, params.frame, metadata)
