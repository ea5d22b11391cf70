"""The body of a synthetic person: its parts (tapered capsules for limbs, neck, hands and feet; spheres for
the head and hair; convex hulls of elliptic rings for the pelvis and chest), which parts each joint
belongs to (for visibility), the standing height implied by a pose, and the 3D geometry of every part.
3D in metres, camera frame (x right, y down, z away)."""

from __future__ import annotations

from typing import Tuple

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.synthetic.appearance import Appearance
from lcr_tf.synthetic.presets import NUM_JOINTS, SKELETON

REFERENCE_STATURE = 1.75
# Ankle-to-head-centre height over stature (Drillis-Contini proportions: 0.930 - 0.039), used to turn
# the summed leg, trunk and neck bone lengths into a standing height.
_ANKLE_TO_HEAD_CENTRE = 0.891

_J = SKELETON.index
# Tapered capsules: (name, start point, end point, start radius, end radius in metres for a person of
# REFERENCE_STATURE, colour slot, radius follows the limb-thickness factor). A sphere has start == end.
CAPSULES = (
    ("right_thigh", "right_hip", "right_knee", 0.085, 0.058, "bottom", True),
    ("left_thigh", "left_hip", "left_knee", 0.085, 0.058, "bottom", True),
    ("right_shin", "right_knee", "right_ankle", 0.056, 0.040, "legs", True),
    ("left_shin", "left_knee", "left_ankle", 0.056, 0.040, "legs", True),
    ("right_foot", "right_heel", "right_toe", 0.042, 0.036, "shoes", False),
    ("left_foot", "left_heel", "left_toe", 0.042, 0.036, "shoes", False),
    ("right_upper_arm", "right_shoulder", "right_elbow", 0.052, 0.040, "top", True),
    ("left_upper_arm", "left_shoulder", "left_elbow", 0.052, 0.040, "top", True),
    ("right_forearm", "right_elbow", "right_wrist", 0.039, 0.029, "arms", True),
    ("left_forearm", "left_elbow", "left_wrist", 0.039, 0.029, "arms", True),
    ("right_hand", "right_wrist", "right_hand_end", 0.030, 0.036, "skin", False),
    ("left_hand", "left_wrist", "left_hand_end", 0.030, 0.036, "skin", False),
    ("neck", "neck_base", "head", 0.052, 0.050, "skin", True),
    ("head", "head", "head", 0.102, 0.102, "skin", False),
    ("hair", "hair_centre", "hair_centre", 0.106, 0.106, "hair", False),
)
# Convex hulls of elliptic rings around the trunk: (name, rings, colour slot).
HULLS = (
    ("pelvis", ("hip_ring", "waist_ring"), "bottom"),
    ("chest", ("waist_ring", "chest_ring", "collar_ring"), "top"),
)
PART_NAMES: Tuple[str, ...] = tuple(c[0] for c in CAPSULES) + tuple(h[0] for h in HULLS)
_PART_INDEX = {n: i for i, n in enumerate(PART_NAMES)}
NUM_CAPSULES = len(CAPSULES)
NUM_PARTS = len(PART_NAMES)
_RING_POINTS = 16
_RING_ANGLES = np.linspace(0.0, 2.0 * np.pi, _RING_POINTS, endpoint=False)

# The parts each joint belongs to: the front-most surface at a visible joint's pixel is one of these.
JOINT_PARTS = {
    "right_ankle": ("right_shin", "right_foot"), "left_ankle": ("left_shin", "left_foot"),
    "right_knee": ("right_thigh", "right_shin"), "left_knee": ("left_thigh", "left_shin"),
    "right_hip": ("right_thigh", "pelvis"), "left_hip": ("left_thigh", "pelvis"),
    "right_wrist": ("right_forearm", "right_hand"), "left_wrist": ("left_forearm", "left_hand"),
    "right_elbow": ("right_upper_arm", "right_forearm"), "left_elbow": ("left_upper_arm", "left_forearm"),
    "right_shoulder": ("right_upper_arm", "chest"), "left_shoulder": ("left_upper_arm", "chest"),
    "head": ("head", "hair", "neck"),
}
INCIDENT = np.zeros((NUM_JOINTS, NUM_PARTS), bool)
for _name, _parts in JOINT_PARTS.items():
    INCIDENT[_J(_name), [_PART_INDEX[p] for p in _parts]] = True


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def standing_height(poses3d: np.ndarray) -> np.ndarray:
    """Standing height (metres) implied by the bone lengths of (..., 13, 3) poses -> (...,).

    Mean thigh + mean shin + hip-to-shoulder + shoulder-to-head-centre lengths, divided by the share of
    stature between ankle and head centre (0.891). Posture-independent: a crouching person gets the
    height they would have standing.
    """
    p = np.asarray(poses3d, np.float64)

    def length(a, b):
        return np.linalg.norm(p[..., _J(a), :] - p[..., _J(b), :], axis=-1)

    mid_hip = 0.5 * (p[..., _J("left_hip"), :] + p[..., _J("right_hip"), :])
    mid_sh = 0.5 * (p[..., _J("left_shoulder"), :] + p[..., _J("right_shoulder"), :])
    legs = 0.5 * (length("left_hip", "left_knee") + length("right_hip", "right_knee")
                  + length("left_knee", "left_ankle") + length("right_knee", "right_ankle"))
    trunk = np.linalg.norm(mid_sh - mid_hip, axis=-1)
    neck = np.linalg.norm(p[..., _J("head"), :] - mid_sh, axis=-1)
    return (legs + trunk + neck) / _ANKLE_TO_HEAD_CENTRE


def body_geometry(poses: np.ndarray, appearance: Appearance):
    """3D geometry of every part of P people.

    Args:
      poses: (P, 13, 3) float64 camera frame, metres.
    Returns:
      cap_a, cap_b: (P, C, 3) capsule end points; cap_ra, cap_rb: (P, C) radii in metres;
      rings: (P, R, K, 3) ring points (R rings of K points) keyed by ``ring_names``; ring_names;
      centre_z: (P,) body-centre depth; size: (P,) stature / reference stature.
    """
    j = {n: poses[:, _J(n)] for n in SKELETON.joint_names}
    size = standing_height(poses) / REFERENCE_STATURE
    s = size[:, None]
    mid_hip = 0.5 * (j["left_hip"] + j["right_hip"])
    mid_sh = 0.5 * (j["left_shoulder"] + j["right_shoulder"])
    up = unit(mid_sh - mid_hip)
    hip_axis = j["left_hip"] - j["right_hip"]
    sh_axis = j["left_shoulder"] - j["right_shoulder"]

    def frame(left):
        # Right-handed body frame: left x up = forward (the body model's anatomical X, Y, Z).
        fwd = unit(np.cross(left, up))
        return unit(np.cross(up, fwd)), fwd

    l_hip, f_hip = frame(hip_axis)
    l_sh, f_sh = frame(sh_axis)
    l_mid, f_mid = frame(unit(hip_axis) + unit(sh_axis))
    pts = dict(j)
    for side in ("left", "right"):
        shin = unit(j[f"{side}_ankle"] - j[f"{side}_knee"])
        foot = unit(f_hip - np.sum(f_hip * shin, -1, keepdims=True) * shin)
        pts[f"{side}_heel"] = j[f"{side}_ankle"] + s * (0.03 * shin - 0.035 * foot)
        pts[f"{side}_toe"] = j[f"{side}_ankle"] + s * (0.035 * shin + 0.15 * foot)
        fore = unit(j[f"{side}_wrist"] - j[f"{side}_elbow"])
        pts[f"{side}_hand_end"] = j[f"{side}_wrist"] + s * 0.085 * fore
    head_up = unit(j["head"] - mid_sh)
    pts["neck_base"] = mid_sh + s * 0.02 * up
    pts["hair_centre"] = j["head"] + s * (0.022 * head_up - 0.03 * f_sh)

    cap_a = np.stack([pts[c[1]] for c in CAPSULES], 1)
    cap_b = np.stack([pts[c[2]] for c in CAPSULES], 1)
    thick = np.array([c[6] for c in CAPSULES])
    factor = size[:, None] * np.where(thick, appearance.thickness[:, None], 1.0)
    cap_ra = np.array([c[3] for c in CAPSULES]) * factor
    cap_rb = np.array([c[4] for c in CAPSULES]) * factor

    tw = (appearance.torso_width * size)[:, None]
    hip_half = 0.5 * np.linalg.norm(hip_axis, axis=-1, keepdims=True)
    sh_half = 0.5 * np.linalg.norm(sh_axis, axis=-1, keepdims=True)
    # (centre, left axis, forward axis, half width, half depth) of each ring.
    ring_specs = {
        "hip_ring": (mid_hip - s * 0.04 * up, l_hip, f_hip, hip_half + 0.075 * tw, 0.10 * tw),
        "waist_ring": (0.5 * (mid_hip + mid_sh), l_mid, f_mid, 0.135 * tw + 0.2 * hip_half, 0.095 * tw),
        "chest_ring": (mid_sh - s * 0.08 * up, l_sh, f_sh, sh_half + 0.02 * tw, 0.11 * tw),
        "collar_ring": (mid_sh + s * 0.035 * up, l_sh, f_sh, 0.7 * sh_half, 0.07 * tw),
    }
    ring_names = tuple(ring_specs)
    cos, sin = np.cos(_RING_ANGLES)[None, :, None], np.sin(_RING_ANGLES)[None, :, None]
    rings = np.stack([c[:, None] + hw[:, None] * cos * lft[:, None] + hd[:, None] * sin * fwd[:, None]
                      for c, lft, fwd, hw, hd in ring_specs.values()], 1)
    centre_z = skeleton_lib.body_centre(poses)[:, 0, 2]
    return cap_a, cap_b, cap_ra, cap_rb, rings, ring_names, centre_z, size

