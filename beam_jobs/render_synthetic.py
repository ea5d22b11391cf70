r"""Synthetic multi-person images with exact 2D and 3D ground truth (paper Sec 4.1, Fig 8d).

Usage::

    python -m beam_jobs.render_synthetic --num_images=N --seed=S --output_dir=DIR [--poses=poses.npz] \
        [--height=H --width=W] [--min_people=A --max_people=B] [--empty_fraction=F] \
        [--contact_sheet=sheet.png]

The paper renders SMPL bodies driven by CMU MoCap poses to add multi-person training images. This module
stands in for that renderer without any external asset: each person is a shaded articulated body (tapered
capsules for the limbs, neck, hands and feet, spheres for the head and hair, convex hulls of elliptic
rings for the pelvis and chest) posed by a 3D pose of a corpus, seen through a pinhole camera over a
random textured background. Every image comes with exact ground truth.

Scene (:func:`render_image`, fully determined by ``(poses3d, index, seed, config)``)
--------------------------------------------------------------------------------
* A pinhole camera: ``fx = fy`` uniform in ``focal_range`` times ``max(height, width)``; the principal
  point near the image centre.
* Empty scenes: a share ``empty_fraction`` of the images holds nobody (background, blur and noise
  only), the pure negatives a detector must learn to leave alone. Image ``i`` is empty when
  ``floor((i + 1) f) > floor(i f)`` (:func:`empty_scenes`), so exactly ``floor(N f)`` of images
  ``0..N-1`` are empty, spread evenly, whatever the seed. The choice uses no random number: an image with
  people is the same pixel for pixel whatever ``empty_fraction``, and an empty image draws its camera and
  background from its own ``[seed, index]`` stream like any other.
* P people, P uniform in ``[min_people, max_people]``. Each takes a random corpus pose (re-centred on
  its body centre), a random turn about the vertical (camera y) axis, a small tilt and roll, and a body
  scale uniform in ``body_scale_range``.
* Its standing height on the image (estimated from the bone lengths, so a crouching person looks
  smaller) is log-uniform in ``person_height_range`` (fractions of the image height); that fixes the
  depth ``Z = f * stature / (fraction * height)``, never nearer than ``near_plane`` metres to any joint.
* Its projected body centre is placed so the whole person is in the frame, or, with probability
  ``truncation_prob``, so that a fraction (``truncation_range``) of its box lies beyond one border
  (the bottom one more often, as in photographs). Every person keeps at least ``min_joints_in_image``
  joints inside the image when the geometry allows.

Rendering (:func:`render_people`)
---------------------------------
Body parts of all people are drawn far to near (painter's algorithm on each part's mean depth) with
OpenCV's anti-aliased filled circles and convex polygons at 1/16 pixel precision. Each part is drawn as
nested layers, smaller, brighter and shifted towards the light, which reads as a rounded surface; parts
behind the person's centre are darker. Sizes are perspective-correct (radius in pixels = radius in metres
* f / Z). The same shapes, without anti-aliasing, are drawn into a part-index buffer, which gives the
person under every pixel (:attr:`RenderedImage.person_map`) and the joint visibility.

Ground truth and conventions
----------------------------
* 3D: metres, camera axes (x right, y down, z away). ``pose3d`` is body-centred
  (:func:`lcr_tf.contracts.skeleton.centre_poses`); ``pose3d_camera = pose3d + translation``.
* 2D: pixels, x right, y down, origin top-left, **integer coordinates at pixel centres** (OpenCV's
  drawing convention): pixel ``(row, col)`` covers ``[col - 0.5, col + 0.5) x [row - 0.5, row + 0.5)``,
  the image covers ``[-0.5, W - 0.5) x [-0.5, H - 0.5)``. ``pose2d = (fx X / Z + cx, fy Y / Z + cy)``.
* ``in_image``: the joint projects inside the image. ``visible``: in the image and the front-most surface
  at its pixel is one of the body parts the joint belongs to (e.g. the thigh or the pelvis for a hip),
  or nothing at all; a joint covered by another person, by a foreground object or by another part of its
  own body (an arm across the chest, the far hip in profile) is not visible.
"""

from __future__ import annotations

import dataclasses
import fractions
import json
import os
import time
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from lcr_tf.contracts import geometry
from lcr_tf.contracts import skeleton as skeleton_lib

SKELETON = skeleton_lib.LCR13
NUM_JOINTS = SKELETON.num_joints
IMAGE_FORMATS = ("jpeg", "png")
BACKGROUND_KINDS = ("gradient_noise", "room", "stripes", "checks", "blobs")

# Sub-pixel precision of the OpenCV drawing calls: coordinates are passed times 2**_SHIFT.
_SHIFT = 4
_ONE = float(1 << _SHIFT)
# Drawn coordinates are clipped to this many pixels from the origin so they fit OpenCV's int32 maths.
_MAX_COORD = float(1 << 20)
# A part's radius is never drawn below this many pixels, so the limbs of a far person still cover their
# joints' pixels.
_MIN_RADIUS_PX = 0.6
# Points nearer than this (metres) are pushed back before projection; joints themselves must be in front.
_MIN_DRAW_Z = 0.02
# Average adult stature (metres): radii in metres below are for a person of this height.
_REFERENCE_STATURE = 1.75
# Ankle-to-head-centre height over stature (Drillis-Contini proportions: 0.930 - 0.039), used to turn
# the summed leg, trunk and neck bone lengths into a standing height.
_ANKLE_TO_HEAD_CENTRE = 0.891

# Shading layers of every part: (shrink factor, shift towards the light in part radii, brightness).
# Each layer stays inside the previous one (shrink + shift < 1), so the outer rim stays darkest.
_LAYERS = np.array([[1.00, 0.00, 0.62], [0.84, 0.12, 0.80], [0.64, 0.24, 0.93],
                    [0.42, 0.34, 1.04], [0.20, 0.42, 1.14]])
# Largest denominator of the ratio that stands for ``empty_fraction``: exact for any fraction written with
# up to six decimals, and small enough that ``index * numerator`` stays far inside int64.
_EMPTY_DENOMINATOR = 1_000_000


# --------------------------------------------------------------------------------------------------
# Configuration and results
# --------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RenderConfig:
    """What :func:`render_image` draws. Distances in metres, angles in degrees, fractions in [0, 1].

    Attributes:
      height, width: image size in pixels.
      min_people, max_people: the number of people is uniform in this inclusive range.
      focal_range: focal length in pixels as a multiple of ``max(height, width)``, uniform (0.7-1.8 is
        a horizontal field of view of about 71 to 31 degrees on a square image).
      principal_jitter: the principal point is the image centre moved by up to this fraction of the size.
      person_height_range: standing height of a person on the image, as a fraction of the image height,
        log-uniform. Fixes the person's depth.
      body_scale_range: each corpus pose is scaled by a factor uniform in this range.
      tilt_sigma_deg, roll_sigma_deg: Gaussian tilt (about camera x) and roll (about camera z) of people.
      truncation_prob: probability that a person is placed across an image border.
      truncation_range: fraction of such a person's box that lies beyond the border, uniform.
      min_joints_in_image: each person is moved towards the image until this many joints are inside.
      near_plane: no joint is nearer to the camera than this (metres).
      thickness_range: per-person factor on limb radii (slim to heavy).
      torso_width_range: per-person factor on the torso's width and depth.
      occluder_prob: probability that the image gets foreground objects (poles, boxes, blobs) in front
        of everybody; joints they cover are not visible.
      noise_sigma_range: per-image Gaussian pixel noise, standard deviation uniform in this range (0-255).
      blur_prob: probability of a slight Gaussian blur of the whole image.
      background_kinds: background generators to draw from (see :data:`BACKGROUND_KINDS`).
      empty_fraction: share of the images rendered without people, in [0, 1] (:func:`empty_scenes`).
    """

    height: int = 256
    width: int = 256
    min_people: int = 1
    max_people: int = 6
    focal_range: Tuple[float, float] = (0.7, 1.8)
    principal_jitter: float = 0.03
    person_height_range: Tuple[float, float] = (0.15, 1.2)
    body_scale_range: Tuple[float, float] = (0.85, 1.1)
    tilt_sigma_deg: float = 6.0
    roll_sigma_deg: float = 3.0
    truncation_prob: float = 0.3
    truncation_range: Tuple[float, float] = (0.15, 0.6)
    min_joints_in_image: int = 4
    near_plane: float = 0.5
    thickness_range: Tuple[float, float] = (0.85, 1.3)
    torso_width_range: Tuple[float, float] = (0.9, 1.25)
    occluder_prob: float = 0.15
    noise_sigma_range: Tuple[float, float] = (0.0, 4.0)
    blur_prob: float = 0.25
    background_kinds: Tuple[str, ...] = BACKGROUND_KINDS
    empty_fraction: float = 0.0

    def __post_init__(self):
        def check(ok, what):
            if not ok:
                raise ValueError(f"RenderConfig: {what}")

        check(self.height >= 8 and self.width >= 8, f"image size must be at least 8x8, got "
              f"{self.height}x{self.width}")
        check(1 <= self.min_people <= self.max_people, f"need 1 <= min_people <= max_people, got "
              f"{self.min_people}, {self.max_people}")
        for name in ("focal_range", "person_height_range", "body_scale_range", "thickness_range",
                     "torso_width_range"):
            lo, hi = getattr(self, name)
            check(0 < lo <= hi, f"{name} must satisfy 0 < lo <= hi, got {(lo, hi)}")
        for name in ("truncation_range", "noise_sigma_range"):
            lo, hi = getattr(self, name)
            check(0 <= lo <= hi, f"{name} must satisfy 0 <= lo <= hi, got {(lo, hi)}")
        check(self.truncation_range[1] < 1,
              f"truncation_range must stay below 1, got {self.truncation_range}")
        for name in ("truncation_prob", "occluder_prob", "blur_prob", "empty_fraction"):
            check(0 <= getattr(self, name) <= 1, f"{name} must be in [0, 1], got {getattr(self, name)}")
        check(self.near_plane > 0, f"near_plane must be positive, got {self.near_plane}")
        check(0 <= self.min_joints_in_image <= NUM_JOINTS,
              f"min_joints_in_image must be in [0, {NUM_JOINTS}], got {self.min_joints_in_image}")
        check(len(self.background_kinds) > 0, "background_kinds is empty")
        unknown = set(self.background_kinds) - set(BACKGROUND_KINDS)
        check(not unknown, f"unknown background kind(s) {sorted(unknown)}; known: {BACKGROUND_KINDS}")


# Named scene distributions (RenderConfig fields that differ from the defaults):
# * ``wild``: the defaults; crowds of up to six, people from 15 % to 120 % of the image height, 30 % cut
#   by a border, foreground occluders, noise and blur. Hard for a small model at 256 pixels: a person 40
#   pixels tall gives a PCKh@0.5 tolerance of 2.5 pixels.
# * ``clear``: the demo's benchmark; one to three people of 40 % to 95 % of the image height, rarely cut by
#   a border, few occluders, little noise. The same bodies, poses, cameras and backgrounds.
# * ``studio``: one or two people of 55 % to 95 % of the image height, never cut by a border, no occluders,
#   noise or blur, plain (gradient) or room backgrounds: the easiest scenes, to tell the model's learning
#   speed apart from the scenes' difficulty (the tiny model gains about 6 PCKh points over ``clear`` at
#   3,000 steps).
PRESETS = {
    "wild": {},
    "clear": dict(min_people=1, max_people=3, person_height_range=(0.4, 0.95), truncation_prob=0.1,
                  truncation_range=(0.1, 0.3), occluder_prob=0.05, noise_sigma_range=(0.0, 2.0), blur_prob=0.1),
    "studio": dict(min_people=1, max_people=2, person_height_range=(0.55, 0.95), truncation_prob=0.0,
                   occluder_prob=0.0, noise_sigma_range=(0.0, 0.0), blur_prob=0.0,
                   background_kinds=("gradient_noise", "room")),
}


def preset_config(name: str, **overrides) -> RenderConfig:
    """The :class:`RenderConfig` of preset ``name`` (:data:`PRESETS`) with ``overrides`` applied.

    Raises:
      ValueError: unknown preset (the message lists the known ones) or an invalid field value.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown render preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return RenderConfig(**{**PRESETS[name], **overrides})


@dataclasses.dataclass
class RenderedImage:
    """One synthetic image and its ground truth (P people, J = 13 LCR joints).

    Attributes:
      image: (H, W, 3) uint8 RGB.
      intrinsics: (4,) float32 fx, fy, cx, cy in pixels (pinhole, no distortion).
      pose2d: (P, J, 2) float32 pixels, the perspective projection of ``pose3d_camera``.
      pose3d: (P, J, 3) float32 metres, camera axes, body-centred.
      pose3d_camera: (P, J, 3) float32 metres, camera frame (``pose3d`` + the person's translation).
      in_image: (P, J) bool, the joint projects inside the image.
      visible: (P, J) bool, in the image and not occluded (by another person, an object, or itself).
      person_map: (H, W) int16, the person drawn in front at each pixel, -1 for none (background or a
        foreground object).
      depth_order: (P,) int64, people from the nearest to the farthest (by body-centre depth).
      corpus_index: (P,) int64, the corpus pose of each person (-1 when not drawn from a corpus).
      body_scale: (P,) float32, the factor applied to the corpus pose (1 when not from a corpus).
    """

    image: np.ndarray
    intrinsics: np.ndarray
    pose2d: np.ndarray
    pose3d: np.ndarray
    pose3d_camera: np.ndarray
    in_image: np.ndarray
    visible: np.ndarray
    person_map: Optional[np.ndarray] = None
    depth_order: Optional[np.ndarray] = None
    corpus_index: Optional[np.ndarray] = None
    body_scale: Optional[np.ndarray] = None

    @property
    def num_people(self) -> int:
        return int(self.pose3d.shape[0])


@dataclasses.dataclass
class Appearance:
    """How P people look. Colours are (P, 3) float RGB in [0, 255]; factors are (P,) floats.

    Attributes:
      skin, hair, top, bottom, shoes: colours of the skin, hair, upper-body and lower-body clothes, shoes.
      thickness: factor on limb radii. torso_width: factor on torso width and depth.
      long_sleeves: (P,) bool, forearms in the top's colour (else bare). long_legs: (P,) bool, shins in
        the bottom's colour (trousers; else shorts).
    """

    skin: np.ndarray
    hair: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    shoes: np.ndarray
    thickness: np.ndarray
    torso_width: np.ndarray
    long_sleeves: np.ndarray
    long_legs: np.ndarray

    def __post_init__(self):
        n = None
        for f in dataclasses.fields(self):
            value = np.asarray(getattr(self, f.name))
            value = value.astype(bool) if f.name.startswith("long_") else value.astype(np.float64)
            n = value.shape[0] if n is None else n
            expected = (n, 3) if f.name in _COLOUR_FIELDS else (n,)
            if value.shape != expected:
                raise ValueError(f"Appearance.{f.name} has shape {value.shape}, expected {expected}")
            setattr(self, f.name, value)

    def __len__(self) -> int:
        return int(self.skin.shape[0])

    @classmethod
    def uniform(cls, num_people: int, skin=(205, 160, 130), hair=(60, 40, 30), top=(60, 110, 180),
                bottom=(50, 60, 90), shoes=(40, 40, 40)) -> "Appearance":
        """Everybody dressed the same, average build (handy for hand-built scenes)."""
        def rep(c):
            return np.tile(np.asarray(c, np.float64), (num_people, 1))
        return cls(rep(skin), rep(hair), rep(top), rep(bottom), rep(shoes), np.ones(num_people),
                   np.ones(num_people), np.ones(num_people, bool), np.ones(num_people, bool))


_COLOUR_FIELDS = ("skin", "hair", "top", "bottom", "shoes")

_SKIN_TONES = np.array([[255, 226, 204], [241, 194, 160], [224, 172, 130], [198, 134, 96],
                        [160, 100, 66], [120, 74, 48], [82, 52, 36]], np.float64)
_HAIR_COLOURS = np.array([[20, 16, 14], [55, 36, 24], [96, 64, 40], [150, 110, 60], [210, 180, 120],
                          [140, 60, 30], [170, 170, 170], [230, 230, 225]], np.float64)
_HAIR_WEIGHTS = np.array([0.3, 0.22, 0.15, 0.1, 0.08, 0.05, 0.06, 0.04])


def _hsv_colours(rng: np.random.Generator, n: int, sat=(0.15, 0.9), val=(0.12, 0.95)) -> np.ndarray:
    """(n, 3) random RGB colours in [0, 255]: hue uniform, saturation and value uniform in the given
    ranges, one in five nearly grey."""
    hsv = np.stack([rng.uniform(0, 360, n), rng.uniform(*sat, n), rng.uniform(*val, n)], -1)
    hsv[rng.random(n) < 0.2, 1] *= 0.15
    # Float HSV in OpenCV: hue in degrees, saturation and value in [0, 1].
    rgb = cv2.cvtColor(hsv.astype(np.float32)[None], cv2.COLOR_HSV2RGB)
    return rgb[0].astype(np.float64) * 255.0


def sample_appearance(num_people: int, rng: np.random.Generator,
                      config: RenderConfig = RenderConfig()) -> Appearance:
    """Random clothes, skin, hair and build for ``num_people`` people."""
    n = int(num_people)
    t = rng.uniform(0, len(_SKIN_TONES) - 1, n)
    i = np.floor(t).astype(int)
    skin = _SKIN_TONES[i] + (t - i)[:, None] * (_SKIN_TONES[np.minimum(i + 1, len(_SKIN_TONES) - 1)] -
                                               _SKIN_TONES[i])
    skin = skin + rng.normal(0, 6, (n, 3))
    hair = _HAIR_COLOURS[rng.choice(len(_HAIR_COLOURS), n, p=_HAIR_WEIGHTS)] + rng.normal(0, 8, (n, 3))
    top = _hsv_colours(rng, n)
    bottom = _hsv_colours(rng, n, val=(0.1, 0.75))
    jeans = rng.random(n) < 0.3
    bottom[jeans] = np.array([45, 70, 125]) * rng.uniform(0.6, 1.3, (int(jeans.sum()), 1))
    shoes = np.where(rng.random((n, 1)) < 0.75, rng.uniform(20, 90, (n, 1)) * np.ones(3),
                     _hsv_colours(rng, n, val=(0.3, 1.0)))
    thickness = rng.uniform(*config.thickness_range, n)
    torso = rng.uniform(*config.torso_width_range, n)
    return Appearance(np.clip(skin, 0, 255), np.clip(hair, 0, 255), top, bottom, shoes, thickness, torso,
                      rng.random(n) < 0.6, rng.random(n) < 0.75)


# --------------------------------------------------------------------------------------------------
# Body parts
# --------------------------------------------------------------------------------------------------

_J = SKELETON.index
# Tapered capsules: (name, start point, end point, start radius, end radius in metres for a person of
# _REFERENCE_STATURE, colour slot, radius follows the limb-thickness factor). A sphere has start == end.
_CAPSULES = (
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
_HULLS = (
    ("pelvis", ("hip_ring", "waist_ring"), "bottom"),
    ("chest", ("waist_ring", "chest_ring", "collar_ring"), "top"),
)
PART_NAMES: Tuple[str, ...] = tuple(c[0] for c in _CAPSULES) + tuple(h[0] for h in _HULLS)
_PART_INDEX = {n: i for i, n in enumerate(PART_NAMES)}
_NUM_CAPSULES = len(_CAPSULES)
_NUM_PARTS = len(PART_NAMES)
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
_INCIDENT = np.zeros((NUM_JOINTS, _NUM_PARTS), bool)
for _name, _parts in JOINT_PARTS.items():
    _INCIDENT[_J(_name), [_PART_INDEX[p] for p in _parts]] = True


def _unit(v: np.ndarray) -> np.ndarray:
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


def _body_geometry(poses: np.ndarray, appearance: Appearance):
    """3D geometry of every part of P people.

    Args:
      poses: (P, 13, 3) float64 camera frame, metres.
    Returns:
      cap_a, cap_b: (P, C, 3) capsule end points; cap_ra, cap_rb: (P, C) radii in metres;
      rings: (P, R, K, 3) ring points (R rings of K points) keyed by ``ring_names``; ring_names;
      centre_z: (P,) body-centre depth; size: (P,) stature / reference stature.
    """
    j = {n: poses[:, _J(n)] for n in SKELETON.joint_names}
    size = standing_height(poses) / _REFERENCE_STATURE
    s = size[:, None]
    mid_hip = 0.5 * (j["left_hip"] + j["right_hip"])
    mid_sh = 0.5 * (j["left_shoulder"] + j["right_shoulder"])
    up = _unit(mid_sh - mid_hip)
    hip_axis = j["left_hip"] - j["right_hip"]
    sh_axis = j["left_shoulder"] - j["right_shoulder"]

    def frame(left):
        # Right-handed body frame: left x up = forward (the body model's anatomical X, Y, Z).
        fwd = _unit(np.cross(left, up))
        return _unit(np.cross(up, fwd)), fwd

    l_hip, f_hip = frame(hip_axis)
    l_sh, f_sh = frame(sh_axis)
    l_mid, f_mid = frame(_unit(hip_axis) + _unit(sh_axis))
    pts = dict(j)
    for side in ("left", "right"):
        shin = _unit(j[f"{side}_ankle"] - j[f"{side}_knee"])
        foot = _unit(f_hip - np.sum(f_hip * shin, -1, keepdims=True) * shin)
        pts[f"{side}_heel"] = j[f"{side}_ankle"] + s * (0.03 * shin - 0.035 * foot)
        pts[f"{side}_toe"] = j[f"{side}_ankle"] + s * (0.035 * shin + 0.15 * foot)
        fore = _unit(j[f"{side}_wrist"] - j[f"{side}_elbow"])
        pts[f"{side}_hand_end"] = j[f"{side}_wrist"] + s * 0.085 * fore
    head_up = _unit(j["head"] - mid_sh)
    pts["neck_base"] = mid_sh + s * 0.02 * up
    pts["hair_centre"] = j["head"] + s * (0.022 * head_up - 0.03 * f_sh)

    cap_a = np.stack([pts[c[1]] for c in _CAPSULES], 1)
    cap_b = np.stack([pts[c[2]] for c in _CAPSULES], 1)
    thick = np.array([c[6] for c in _CAPSULES])
    factor = size[:, None] * np.where(thick, appearance.thickness[:, None], 1.0)
    cap_ra = np.array([c[3] for c in _CAPSULES]) * factor
    cap_rb = np.array([c[4] for c in _CAPSULES]) * factor

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


def _project(points: np.ndarray, intrinsics: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(..., 3) camera points -> ((..., 2) pixels, (...,) depth clipped to the drawing near limit)."""
    fx, fy, cx, cy = intrinsics
    z = np.maximum(points[..., 2], _MIN_DRAW_Z)
    uv = np.stack([fx * points[..., 0] / z + cx, fy * points[..., 1] / z + cy], -1)
    return np.clip(uv, -_MAX_COORD, _MAX_COORD), z


def _capsule_polygons(a, b, ra, rb):
    """Outer tangent quadrilaterals of pairs of circles (the straight sides of tapered capsules).

    Args: a, b (..., 2) centres; ra, rb (...,) radii (pixels).
    Returns: (..., 4, 2) quadrilaterals; (...,) bool, False where one circle contains the other (then
      only the bigger circle is drawn).
    """
    d = b - a
    length = np.linalg.norm(d, axis=-1)
    has_sides = length > np.abs(ra - rb) + 1e-6
    safe = np.where(has_sides, length, 1.0)
    u = d / safe[..., None]
    n = np.stack([-u[..., 1], u[..., 0]], -1)
    sin_phi = np.where(has_sides, (ra - rb) / safe, 0.0)
    cos_phi = np.sqrt(np.maximum(1.0 - sin_phi ** 2, 0.0))
    m1 = n * cos_phi[..., None] + u * sin_phi[..., None]
    m2 = -n * cos_phi[..., None] + u * sin_phi[..., None]
    quad = np.stack([a + ra[..., None] * m1, b + rb[..., None] * m1, b + rb[..., None] * m2,
                     a + ra[..., None] * m2], -2)
    return quad, has_sides


def _fixed(x: np.ndarray) -> np.ndarray:
    """Pixels -> OpenCV fixed-point integers (``_SHIFT`` fractional bits)."""
    return np.round(np.asarray(x) * _ONE).astype(np.int32)


# --------------------------------------------------------------------------------------------------
# Rendering people
# --------------------------------------------------------------------------------------------------

def render_people(poses3d_camera: np.ndarray, intrinsics: np.ndarray, background: np.ndarray,
                  appearance: Optional[Appearance] = None, light_direction=(-0.45, -0.9),
                  ambient: float = 1.0, occluders: Sequence[Tuple[np.ndarray, Sequence[float]]] = (),
                  ) -> RenderedImage:
    """Draws P posed bodies over ``background`` and works out their ground truth.

    Args:
      poses3d_camera: (P, 13, 3) LCR-13 joints in metres, camera frame (x right, y down, z away); every
        joint must have Z > 0.
      intrinsics: (4,) fx, fy, cx, cy pixels.
      background: (H, W, 3) uint8 RGB; not modified.
      appearance: looks of the P people (default: :meth:`Appearance.uniform`).
      light_direction: 2D image direction (x right, y down) towards the light; lit sides are brighter.
      ambient: brightness factor on every body colour.
      occluders: foreground objects drawn in front of everybody: (polygon (K, 2) pixels, RGB colour).
        Each polygon is filled as its convex hull; joints under it are not visible.
    Returns:
      A :class:`RenderedImage` (``corpus_index`` -1 and ``body_scale`` 1 for every person).
    Raises:
      ValueError: bad shapes, non-finite values, or a joint at Z <= 0 (named by person and joint).
    """
    poses = np.asarray(poses3d_camera, np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (NUM_JOINTS, 3) or poses.shape[0] < 1:
        raise ValueError(f"poses3d_camera must be (P >= 1, {NUM_JOINTS}, 3), got {poses.shape}")
    if not np.all(np.isfinite(poses)):
        raise ValueError("poses3d_camera holds NaN or inf")
    behind = poses[..., 2] <= 0
    if behind.any():
        p, jnt = np.argwhere(behind)[0]
        raise ValueError(f"person {p} joint {SKELETON.joint_names[jnt]!r} is at Z = "
                         f"{poses[p, jnt, 2]:.3f} m, not in front of the camera")
    intrinsics = np.asarray(intrinsics, np.float64)
    if intrinsics.shape != (4,) or not np.all(np.isfinite(intrinsics)) or np.any(intrinsics[:2] <= 0):
        raise ValueError(f"intrinsics must be 4 finite numbers fx, fy > 0, cx, cy; got {intrinsics}")
    background = np.asarray(background)
    if background.ndim != 3 or background.shape[2] != 3 or background.dtype != np.uint8:
        raise ValueError(f"background must be (H, W, 3) uint8, got {background.shape} {background.dtype}")
    num = poses.shape[0]
    appearance = Appearance.uniform(num) if appearance is None else appearance
    if len(appearance) != num:
        raise ValueError(f"appearance describes {len(appearance)} people, poses3d_camera {num}")
    height, width = background.shape[:2]
    light = _unit(np.asarray(light_direction, np.float64))

    cap_a, cap_b, cap_ra, cap_rb, rings, ring_names, centre_z, size = _body_geometry(poses, appearance)
    # --- 2D geometry of the capsules and their shading layers, all people at once.
    a2, za = _project(cap_a, intrinsics)
    b2, zb = _project(cap_b, intrinsics)
    f = intrinsics[0]
    ra = np.maximum(cap_ra * f / za, _MIN_RADIUS_PX)
    rb = np.maximum(cap_rb * f / zb, _MIN_RADIUS_PX)
    shrink, shift, bright = _LAYERS[:, 0], _LAYERS[:, 1], _LAYERS[:, 2]
    la = a2[:, :, None] + (shift[:, None] * light)[None, None] * ra[..., None, None]  # (P, C, L, 2)
    lb = b2[:, :, None] + (shift[:, None] * light)[None, None] * rb[..., None, None]
    lra, lrb = ra[..., None] * shrink, rb[..., None] * shrink
    quads, sided = _capsule_polygons(la, lb, lra, lrb)
    bigger_a = lra >= lrb
    # --- Hulls: projected ring points per hull part.
    ring_idx = {n: i for i, n in enumerate(ring_names)}
    hull_pts = [_project(rings[:, [ring_idx[r] for r in rs]].reshape(num, -1, 3), intrinsics)[0]
                for _, rs, _ in _HULLS]
    hull_z = np.stack([rings[..., 2][:, [ring_idx[r] for r in rs]].mean(axis=(1, 2)) for _, rs, _ in _HULLS],
                      1)

    # --- Colours of every part and layer: base colour x depth shading x layer brightness.
    slots = {"skin": appearance.skin, "hair": appearance.hair, "top": appearance.top,
             "bottom": appearance.bottom, "shoes": appearance.shoes,
             "arms": np.where(appearance.long_sleeves[:, None], appearance.top, appearance.skin),
             "legs": np.where(appearance.long_legs[:, None], appearance.bottom, appearance.skin)}
    part_slots = [c[5] for c in _CAPSULES] + [h[2] for h in _HULLS]
    base = np.stack([slots[s] for s in part_slots], 1)  # (P, parts, 3)
    part_z = np.concatenate([0.5 * (cap_a[..., 2] + cap_b[..., 2]), hull_z], 1)  # (P, parts)
    # Parts behind the body centre are darker, in front lighter: a cue for depth within a body.
    depth_shade = 1.0 - 0.18 * np.clip((part_z - centre_z[:, None]) / (0.25 * size[:, None]), -1, 1)
    colours = np.clip(base[:, :, None] * (ambient * depth_shade)[..., None, None]
                      * bright[None, None, :, None], 0, 255)  # (P, parts, L, 3)

    # --- Fixed-point integer versions for OpenCV, converted to Python objects once.
    la_i, lb_i = _fixed(la).tolist(), _fixed(lb).tolist()
    lra_i, lrb_i = _fixed(lra).tolist(), _fixed(lrb).tolist()
    quads_i, sided_l, bigger_l = _fixed(quads).tolist(), sided.tolist(), bigger_a.tolist()
    colours_l = colours.tolist()

    image = background.copy()
    part_map = np.zeros((height, width), np.int32)  # 0 background, 1 + global part index
    order = np.argsort(-part_z.ravel(), kind="stable")  # far to near
    aa, solid = cv2.LINE_AA, cv2.LINE_8
    for g in order.tolist():  # the painter's algorithm: one draw per body part, far to near
        p, k = divmod(g, _NUM_PARTS)
        label = g + 1
        if k < _NUM_CAPSULES:
            for lyr in range(len(_LAYERS)):
                col = colours_l[p][k][lyr]
                _draw_capsule(image, la_i[p][k][lyr], lb_i[p][k][lyr], lra_i[p][k][lyr], lrb_i[p][k][lyr],
                              quads_i[p][k][lyr], sided_l[p][k][lyr], bigger_l[p][k][lyr], col, aa)
            _draw_capsule(part_map, la_i[p][k][0], lb_i[p][k][0], lra_i[p][k][0], lrb_i[p][k][0],
                          quads_i[p][k][0], sided_l[p][k][0], bigger_l[p][k][0], label, solid)
        else:
            pts = hull_pts[k - _NUM_CAPSULES][p]
            hull = cv2.convexHull(pts.astype(np.float32))[:, 0].astype(np.float64)
            centre = hull.mean(axis=0)
            area = cv2.contourArea(hull.astype(np.float32))
            perimeter = cv2.arcLength(hull.astype(np.float32), True)
            inradius = 2.0 * area / max(perimeter, 1e-6)
            for lyr in range(len(_LAYERS)):
                poly = centre + shrink[lyr] * (hull - centre) + shift[lyr] * inradius * light
                cv2.fillConvexPoly(image, _fixed(poly), colours_l[p][k][lyr], aa, _SHIFT)
            cv2.fillConvexPoly(part_map, _fixed(hull), label, solid, _SHIFT)
    occluder_label = num * _NUM_PARTS + 1
    for polygon, colour in occluders:
        polygon = np.asarray(polygon, np.float64).reshape(-1, 2)
        hull = cv2.convexHull(polygon.astype(np.float32))[:, 0].astype(np.float64)
        _draw_shaded_polygon(image, hull, np.asarray(colour, np.float64), light)
        cv2.fillConvexPoly(part_map, _fixed(hull), occluder_label, solid, _SHIFT)

    # --- Ground truth.
    fx, fy, cx, cy = intrinsics
    pose2d = np.stack([fx * poses[..., 0] / poses[..., 2] + cx, fy * poses[..., 1] / poses[..., 2] + cy], -1)
    in_image = ((pose2d[..., 0] >= -0.5) & (pose2d[..., 0] < width - 0.5)
                & (pose2d[..., 1] >= -0.5) & (pose2d[..., 1] < height - 0.5))
    col = np.clip(np.floor(pose2d[..., 0] + 0.5), 0, width - 1).astype(np.int64)
    row = np.clip(np.floor(pose2d[..., 1] + 0.5), 0, height - 1).astype(np.int64)
    front = part_map[row, col]  # (P, J) label of the front-most part at each joint's pixel
    g = np.clip(front - 1, 0, num * _NUM_PARTS - 1)
    owner, part = g // _NUM_PARTS, g % _NUM_PARTS
    joint_idx = np.broadcast_to(np.arange(NUM_JOINTS), front.shape)
    own_part = ((front >= 1) & (front < occluder_label) & (owner == np.arange(num)[:, None])
                & _INCIDENT[joint_idx, part])
    visible = in_image & ((front == 0) | own_part)
    owner_of_label = np.concatenate([[-1], np.repeat(np.arange(num), _NUM_PARTS), [-1]]).astype(np.int16)
    person_map = owner_of_label[part_map]
    pose3d = skeleton_lib.centre_poses(poses)
    return RenderedImage(
        image=image, intrinsics=intrinsics.astype(np.float32), pose2d=pose2d.astype(np.float32),
        pose3d=pose3d.astype(np.float32), pose3d_camera=poses.astype(np.float32), in_image=in_image,
        visible=visible, person_map=person_map, depth_order=np.argsort(centre_z, kind="stable"),
        corpus_index=np.full(num, -1, np.int64), body_scale=np.ones(num, np.float32))


def _draw_capsule(img, a, b, ra, rb, quad, sided, bigger_a, colour, line_type):
    """One tapered capsule in fixed-point coordinates (see :func:`_capsule_polygons`)."""
    if sided:
        cv2.circle(img, a, ra, colour, -1, line_type, _SHIFT)
        cv2.circle(img, b, rb, colour, -1, line_type, _SHIFT)
        cv2.fillConvexPoly(img, np.array(quad, np.int32), colour, line_type, _SHIFT)
    elif bigger_a:
        cv2.circle(img, a, ra, colour, -1, line_type, _SHIFT)
    else:
        cv2.circle(img, b, rb, colour, -1, line_type, _SHIFT)


def _draw_shaded_polygon(img, hull, colour, light):
    centre = hull.mean(axis=0)
    area = cv2.contourArea(hull.astype(np.float32))
    inradius = 2.0 * area / max(cv2.arcLength(hull.astype(np.float32), True), 1e-6)
    for shrink, shift, bright in _LAYERS[:3]:
        poly = centre + shrink * (hull - centre) + shift * inradius * light
        cv2.fillConvexPoly(img, _fixed(poly), np.clip(colour * (0.4 + 0.6 * bright), 0, 255).tolist(),
                           cv2.LINE_AA, _SHIFT)


# --------------------------------------------------------------------------------------------------
# Backgrounds
# --------------------------------------------------------------------------------------------------

def _smooth_noise(rng, height, width, cells, channels=3):
    """(H, W, channels) float32 noise in about [0, 1], smooth at the scale of ``cells`` per side."""
    ch = max(2, int(round(cells * height / max(height, width))))
    cw = max(2, int(round(cells * width / max(height, width))))
    small = rng.random((ch, cw, channels)).astype(np.float32)
    out = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return out.reshape(height, width, channels)


def _random_colour(rng, n=None, val=(0.1, 0.95)):
    c = _hsv_colours(rng, 1 if n is None else n, sat=(0.05, 0.8), val=val).astype(np.float32)
    return c[0] if n is None else c


def _grid(height, width):
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return yy, xx


def _bg_gradient_noise(rng, height, width):
    yy, xx = _grid(height, width)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx + np.sin(angle) * yy)
    t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
    img = _random_colour(rng) * (1 - t[..., None]) + _random_colour(rng) * t[..., None]
    img += (_smooth_noise(rng, height, width, rng.integers(3, 8)) - 0.5) * rng.uniform(40, 120)
    img += (_smooth_noise(rng, height, width, rng.integers(12, 40)) - 0.5) * rng.uniform(10, 50)
    return img


def _bg_room(rng, height, width):
    """A wall with framed rectangles over a floor with perspective tiles or boards."""
    yy, xx = _grid(height, width)
    horizon = rng.uniform(0.25, 0.75) * height
    wall = _random_colour(rng, val=(0.35, 0.95))
    img = np.empty((height, width, 3), np.float32)
    img[:] = wall
    img *= (0.85 + 0.3 * (yy / height))[..., None]
    img += (_smooth_noise(rng, height, width, 6) - 0.5) * 30
    # Floor: ground-plane coordinates of each pixel below the horizon, for tiles that shrink with depth.
    below = yy > horizon
    depth = 1.0 / np.maximum(yy - horizon, 1.0)
    gx = (xx - rng.uniform(0, width)) * depth
    gz = depth * height
    tile = rng.uniform(0.08, 0.4)
    floor_a, floor_b = _random_colour(rng), _random_colour(rng)
    if rng.random() < 0.5:
        pattern = (np.floor(gx / tile) + np.floor(gz / (tile * 4))) % 2
    else:
        pattern = (np.floor(gx / (tile * 0.5)) % 2) * 0.5 + 0.25 * np.sin(gz * 3.0)
    # Tiles far away are smaller than a pixel: fade the pattern to its mean towards the horizon instead
    # of aliasing into moire.
    contrast = np.clip((yy - horizon) / (0.2 * height), 0.0, 1.0)
    pattern = 0.5 + (pattern - 0.5) * contrast
    floor = floor_a * (1 - pattern[..., None]) + floor_b * pattern[..., None]
    img = np.where(below[..., None], floor, img)
    for _ in range(int(rng.integers(1, 5))):  # windows, doors, pictures on the wall
        w, h = rng.uniform(0.08, 0.35) * width, rng.uniform(0.1, 0.5) * height
        x0, y0 = rng.uniform(-0.1, 1.0) * width, rng.uniform(0.0, max(horizon - h, 1.0))
        cv2.rectangle(img, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)),
                      _random_colour(rng).tolist(), -1)
        cv2.rectangle(img, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), _random_colour(rng).tolist(),
                      int(rng.integers(1, 4)))
    cv2.line(img, (0, int(horizon)), (width, int(horizon)), (wall * 0.5).tolist(), int(rng.integers(1, 4)))
    return img


def _bg_stripes(rng, height, width):
    yy, xx = _grid(height, width)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(6, 60)
    t = (np.cos(angle) * xx + np.sin(angle) * yy) / period
    wave = np.sin(2 * np.pi * t) if rng.random() < 0.5 else np.sign(np.sin(2 * np.pi * t))
    w = 0.5 + 0.5 * wave[..., None]
    img = _random_colour(rng) * w + _random_colour(rng) * (1 - w)
    return img + (_smooth_noise(rng, height, width, 5) - 0.5) * 50


def _bg_checks(rng, height, width):
    yy, xx = _grid(height, width)
    angle = rng.uniform(0, np.pi / 2)
    cell = rng.uniform(8, 64)
    u = (np.cos(angle) * xx + np.sin(angle) * yy) / cell
    v = (-np.sin(angle) * xx + np.cos(angle) * yy) / cell
    check = ((np.floor(u) + np.floor(v)) % 2)[..., None]
    img = _random_colour(rng) * check + _random_colour(rng) * (1 - check)
    return img + (_smooth_noise(rng, height, width, 4) - 0.5) * 60


def _bg_blobs(rng, height, width):
    img = np.empty((height, width, 3), np.float32)
    img[:] = _random_colour(rng)
    img += (_smooth_noise(rng, height, width, 4) - 0.5) * 60
    size = max(height, width)
    for _ in range(int(rng.integers(8, 30))):
        centre = (int(rng.uniform(0, width) * _ONE), int(rng.uniform(0, height) * _ONE))
        colour = _random_colour(rng).tolist()
        if rng.random() < 0.5:
            axes = (int(rng.uniform(0.02, 0.25) * size * _ONE), int(rng.uniform(0.02, 0.25) * size * _ONE))
            cv2.ellipse(img, centre, axes, rng.uniform(0, 180), 0, 360, colour, -1, cv2.LINE_AA, _SHIFT)
        else:
            half = rng.uniform(0.02, 0.2, 2) * size
            box = cv2.boxPoints(((centre[0] / _ONE, centre[1] / _ONE), (2 * half[0], 2 * half[1]),
                                 rng.uniform(0, 180)))
            cv2.fillConvexPoly(img, _fixed(box), colour, cv2.LINE_AA, _SHIFT)
    sigma = rng.uniform(0.0, 2.5)
    return cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0.3 else img


_BACKGROUNDS = {"gradient_noise": _bg_gradient_noise, "room": _bg_room, "stripes": _bg_stripes,
                "checks": _bg_checks, "blobs": _bg_blobs}


def make_background(rng: np.random.Generator, height: int, width: int, kind: Optional[str] = None,
                    clutter_prob: float = 0.5) -> np.ndarray:
    """A random textured background, (H, W, 3) uint8 RGB.

    Args:
      kind: one of :data:`BACKGROUND_KINDS`, or None to draw one at random.
      clutter_prob: probability of a few extra random shapes on top.
    """
    kind = BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))] if kind is None else kind
    if kind not in _BACKGROUNDS:
        raise ValueError(f"unknown background kind {kind!r}; known: {BACKGROUND_KINDS}")
    img = _BACKGROUNDS[kind](rng, height, width).astype(np.float32)
    if rng.random() < clutter_prob:
        size = max(height, width)
        for _ in range(int(rng.integers(1, 6))):
            x, y = rng.uniform(0, width), rng.uniform(0, height)
            half = rng.uniform(0.02, 0.15, 2) * size
            box = cv2.boxPoints(((x, y), (2 * half[0], 2 * half[1]), rng.uniform(0, 180)))
            cv2.fillConvexPoly(img, _fixed(box), _random_colour(rng).tolist(), cv2.LINE_AA, _SHIFT)
    # Global contrast and brightness, as different cameras and exposures give.
    img = (img - 128.0) * rng.uniform(0.7, 1.2) + 128.0 + rng.uniform(-25, 25)
    return np.clip(img, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Scenes
# --------------------------------------------------------------------------------------------------

def _rotation_z(angle: np.ndarray) -> np.ndarray:
    """(...,) radians -> (..., 3, 3) rotation about the camera's optical (z) axis: an in-plane roll."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _check_corpus(poses3d: np.ndarray) -> np.ndarray:
    poses3d = np.asarray(poses3d)
    if poses3d.ndim != 3 or poses3d.shape[1:] != (NUM_JOINTS, 3) or poses3d.shape[0] < 1:
        raise ValueError(f"poses3d must be a corpus (N >= 1, {NUM_JOINTS}, 3) of LCR-13 poses in metres, "
                         f"got shape {poses3d.shape}")
    return poses3d


def _place_people(rng, posed, f, cx, cy, config: RenderConfig):
    """Translations (P, 3) metres putting posed, body-centred people (P, J, 3) in front of the camera."""
    num = posed.shape[0]
    height, width = config.height, config.width
    lo_h, hi_h = config.person_height_range
    fraction = np.exp(rng.uniform(np.log(lo_h), np.log(hi_h), num))
    stature = standing_height(posed)
    z = f * stature / (fraction * height)
    # The nearest point drawn (a hand or a foot beyond a joint) is ~0.25 m in front of the nearest joint.
    z = np.maximum(z, config.near_plane - posed[..., 2].min(axis=1) + 0.25 * stature / _REFERENCE_STATURE)
    # Box of the person relative to its projected centre, at its depth (weak perspective), padded for
    # the body's volume.
    pad = 0.12 * stature / _REFERENCE_STATURE * f / z
    rel = posed[..., :2] * (f / z)[:, None, None]
    box_lo = rel.min(axis=1) - pad[:, None]
    box_hi = rel.max(axis=1) + pad[:, None]
    box_size = box_hi - box_lo
    limits = np.array([width, height], np.float64)
    inside_a, inside_b = -0.5 - box_lo, limits - 0.5 - box_hi
    centre = rng.uniform(np.minimum(inside_a, inside_b), np.maximum(inside_a, inside_b))
    cut = rng.random(num) < config.truncation_prob
    side = rng.choice(4, num, p=[0.2, 0.2, 0.2, 0.4])  # left, right, top, bottom
    outside = rng.uniform(*config.truncation_range, num)
    axis = side // 2
    low_side = np.isin(side, (0, 2))  # left or top: the box sticks out towards negative coordinates
    principal = np.array([cx, cy])

    def centres(out_fraction, cut_mask):
        c = centre.copy()
        rows = np.flatnonzero(cut_mask)
        ax = axis[rows]
        span = box_size[rows, ax] * out_fraction[rows]
        c[rows, ax] = np.where(low_side[rows], -0.5 - span - box_lo[rows, ax],
                               limits[ax] - 0.5 + span - box_hi[rows, ax])
        return c

    def joints_inside(c):
        xy = (c - principal) * (z / f)[:, None]
        cam = posed + np.concatenate([xy, z[:, None]], 1)[:, None]
        uv = cam[..., :2] / cam[..., 2:] * f + principal
        ok = (uv >= -0.5) & (uv < limits - 0.5)
        return np.sum(ok.all(-1), axis=1)

    c = centres(outside, cut)
    for _ in range(3):  # bring people whose cut leaves too few joints in the image back in, in steps
        short = joints_inside(c) < config.min_joints_in_image
        if not short.any():
            break
        outside = np.where(short, outside * 0.4, outside)
        c = np.where(short[:, None], centres(outside, cut), c)
    short = joints_inside(c) < config.min_joints_in_image
    if short.any():  # still too few: centre them (e.g. a very close person spanning the image)
        c = np.where(short[:, None], centres(outside, np.zeros(num, bool)), c)
        c = np.where((joints_inside(c) < config.min_joints_in_image)[:, None],
                     principal - 0.5 * (box_lo + box_hi), c)
    xy = (c - principal) * (z / f)[:, None]
    return np.concatenate([xy, z[:, None]], 1)


def _occluders(rng, rendered_boxes, config: RenderConfig):
    """Foreground objects: (polygon (K, 2) pixels, colour) pairs, placed over random people."""
    height, width = config.height, config.width
    out = []
    for _ in range(int(rng.integers(1, 3))):
        x1, y1, x2, y2 = rendered_boxes[int(rng.integers(len(rendered_boxes)))]
        kind = rng.integers(3)
        cx = rng.uniform(x1, x2)
        if kind == 0:  # a pole or a door frame
            half = rng.uniform(0.02, 0.08) * width
            poly = np.array([[cx - half, -1], [cx + half, -1], [cx + half, height], [cx - half, height]])
        elif kind == 1:  # a box, table or railing rising from the bottom
            top = rng.uniform(y1 + 0.3 * (y2 - y1), y2)
            half = rng.uniform(0.3, 1.0) * max(x2 - x1, 0.1 * width)
            poly = np.array([[cx - half, top], [cx + half, top], [cx + half, height], [cx - half, height]])
        else:  # a bush or a ball
            r = rng.uniform(0.15, 0.5) * max(y2 - y1, 0.05 * height)
            cy = rng.uniform(y1, y2)
            poly = cv2.ellipse2Poly((int(cx), int(cy)), (int(r * rng.uniform(0.6, 1.4)), int(r)),
                                    int(rng.uniform(0, 180)), 0, 360, 20).astype(np.float64)
        out.append((poly, _random_colour(rng, val=(0.15, 0.9))))
    return out


def empty_scenes(indices, fraction: float) -> np.ndarray:
    """Which images are rendered without people: index ``i`` is empty when ``floor((i + 1) f) > floor(i f)``.

    So exactly ``floor(N f)`` of the indices ``0..N-1`` are empty, about one every ``1 / f`` images (for
    f = 0.05: 19, 39, 59, ...), the same for every seed. ``f`` is taken as the nearest ratio p / q with
    q <= 10^6 (0.05 is 1/20 exactly), so the count does not depend on float rounding.

    Args:
      indices: non-negative integer image indices, any shape.
      fraction: f in [0, 1].
    Returns:
      bool array of the shape of ``indices``.
    """
    if not 0.0 <= float(fraction) <= 1.0:
        raise ValueError(f"empty_fraction must be in [0, 1], got {fraction!r}")
    ratio = fractions.Fraction(float(fraction)).limit_denominator(_EMPTY_DENOMINATOR)
    i = np.asarray(indices, np.int64)
    p, q = ratio.numerator, ratio.denominator
    return (i + 1) * p // q > i * p // q


def _finish_image(rng: np.random.Generator, image: np.ndarray, config: RenderConfig) -> np.ndarray:
    """The camera's blur and pixel noise on an (H, W, 3) float32 image -> uint8."""
    if rng.random() < config.blur_prob:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.1))
    sigma = rng.uniform(*config.noise_sigma_range)
    if sigma > 0:
        image += np.float32(sigma) * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def _render_empty(rng: np.random.Generator, config: RenderConfig) -> RenderedImage:
    """An image without people: camera, background, blur and noise drawn as for a scene with people."""
    height, width = config.height, config.width
    f = rng.uniform(*config.focal_range) * max(height, width)
    cx = (width - 1) / 2 + rng.uniform(-1, 1) * config.principal_jitter * width
    cy = (height - 1) / 2 + rng.uniform(-1, 1) * config.principal_jitter * height
    kind = config.background_kinds[int(rng.integers(len(config.background_kinds)))]
    background = make_background(rng, height, width, kind)
    image = _finish_image(rng, background.astype(np.float32), config)
    nobody = np.zeros((0, NUM_JOINTS), bool)
    return RenderedImage(image=image, intrinsics=np.array([f, f, cx, cy], np.float32),
                         pose2d=np.zeros((0, NUM_JOINTS, 2), np.float32),
                         pose3d=np.zeros((0, NUM_JOINTS, 3), np.float32),
                         pose3d_camera=np.zeros((0, NUM_JOINTS, 3), np.float32), in_image=nobody,
                         visible=nobody.copy(), person_map=np.full((height, width), -1, np.int16),
                         depth_order=np.zeros(0, np.int64), corpus_index=np.zeros(0, np.int64),
                         body_scale=np.zeros(0, np.float32))


def render_image(poses3d: np.ndarray, index: int, seed: int,
                 config: RenderConfig = RenderConfig()) -> RenderedImage:
    """Renders synthetic image ``index`` of the set ``seed``.

    The result depends only on ``(poses3d, index, seed, config)`` (the random stream is seeded by
    ``[seed, index]``), so images can be rendered in any order, on any worker, with identical bytes.

    Args:
      poses3d: (N, 13, 3) LCR-13 pose corpus, metres, camera axes (e.g.
        ``lcr_tf.body_model.sample_poses(...).poses3d`` or a MoCap ``poses.npz``).
      index, seed: non-negative integers.
    Returns:
      A :class:`RenderedImage` with ``corpus_index`` and ``body_scale`` of each person filled in; without
      people (P = 0) when :func:`empty_scenes` says so for ``index`` and ``config.empty_fraction``.
    """
    poses3d = _check_corpus(poses3d)
    for name, value in (("index", index), ("seed", seed)):
        if isinstance(value, (bool, np.bool_)) or int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    if config.empty_fraction and empty_scenes(int(index), config.empty_fraction):
        return _render_empty(rng, config)
    height, width = config.height, config.width
    num = int(rng.integers(config.min_people, config.max_people + 1))
    corpus_index = rng.integers(0, poses3d.shape[0], num)
    source = skeleton_lib.centre_poses(poses3d[corpus_index].astype(np.float64))
    yaw = rng.uniform(-np.pi, np.pi, num)
    tilt = np.deg2rad(rng.normal(0.0, config.tilt_sigma_deg, num))
    roll = np.deg2rad(rng.normal(0.0, config.roll_sigma_deg, num))
    rotation = geometry.rotation_x(tilt) @ _rotation_z(roll) @ geometry.rotation_y(yaw)
    scale = rng.uniform(*config.body_scale_range, num)
    # Rotating and scaling about the body centre keeps the pose body-centred.
    posed = scale[:, None, None] * geometry.rotate(source, rotation)

    f = rng.uniform(*config.focal_range) * max(height, width)
    cx = (width - 1) / 2 + rng.uniform(-1, 1) * config.principal_jitter * width
    cy = (height - 1) / 2 + rng.uniform(-1, 1) * config.principal_jitter * height
    intrinsics = np.array([f, f, cx, cy])
    translation = _place_people(rng, posed, f, cx, cy, config)
    camera = posed + translation[:, None, :]

    kind = config.background_kinds[int(rng.integers(len(config.background_kinds)))]
    background = make_background(rng, height, width, kind)
    appearance = sample_appearance(num, rng, config)
    light_angle = rng.uniform(-np.pi, 0.0)  # light from above, any side
    light = (np.cos(light_angle), np.sin(light_angle))
    ambient = rng.uniform(0.8, 1.15)
    occluders = []
    if rng.random() < config.occluder_prob:
        uv = camera[..., :2] / camera[..., 2:] * f + np.array([cx, cy])
        occluders = _occluders(rng, np.concatenate([uv.min(1), uv.max(1)], 1), config)
    out = render_people(camera, intrinsics, background, appearance, light, ambient, occluders)

    out.image = _finish_image(rng, out.image.astype(np.float32), config)
    # pose3d straight from the posed corpus pose (not re-derived from the camera frame), so the bone
    # lengths are exactly scale x the corpus's up to float32 rounding.
    out.pose3d = posed.astype(np.float32)
    out.corpus_index = corpus_index.astype(np.int64)
    out.body_scale = scale.astype(np.float32)
    return out


# --------------------------------------------------------------------------------------------------
# Encoding, writing, contact sheet
# --------------------------------------------------------------------------------------------------

def encode_image(image: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """Encodes an (H, W, 3) uint8 RGB image as JPEG (``quality`` 0-100) or PNG bytes."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"unknown image format {fmt!r}; expected one of {IMAGE_FORMATS}")
    if not 0 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be in [0, 100], got {quality}")
    bgr = np.ascontiguousarray(image[..., ::-1])  # OpenCV encoders expect BGR channel order
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    else:
        ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {image.shape} image as {fmt}")
    return buf.tobytes()


def ground_truth_record(rendered: RenderedImage, file_name: str, index: int, seed: int) -> dict:
    """JSON-ready ground truth of one image (pixels rounded to 1e-3, metres to 1e-5)."""
    return {
        "file": file_name, "index": int(index), "seed": int(seed),
        "height": int(rendered.image.shape[0]), "width": int(rendered.image.shape[1]),
        "num_people": rendered.num_people,
        "intrinsics": np.round(rendered.intrinsics.astype(np.float64), 3).tolist(),
        "pose2d": np.round(rendered.pose2d.astype(np.float64), 3).tolist(),
        "pose3d": np.round(rendered.pose3d.astype(np.float64), 5).tolist(),
        "pose3d_camera": np.round(rendered.pose3d_camera.astype(np.float64), 5).tolist(),
        "in_image": rendered.in_image.tolist(),
        "visible": rendered.visible.tolist(),
        "corpus_index": rendered.corpus_index.tolist(),
        "body_scale": np.round(rendered.body_scale.astype(np.float64), 5).tolist(),
    }


def write_contact_sheet(renders: Sequence[RenderedImage], path: str, columns: int = 4,
                        cell_inches: float = 2.2, dpi: float = 100.0) -> None:
    """PNG grid of images with their 2D skeletons: visible joints filled, occluded ones hollow, joints
    outside the image not marked (bones are drawn between every pair of joints and clipped)."""
    from lcr_tf import viz

    if not renders:
        raise ValueError("no image for the contact sheet")
    cols = min(columns, len(renders))
    rows = -(-len(renders) // cols)
    title_inches = 0.3
    fig = viz.new_figure(cols * cell_inches, rows * cell_inches + title_inches, dpi)
    fig.suptitle("synthetic images: filled dots visible joints, hollow dots occluded joints", fontsize=8,
                 y=1.0 - 0.1 * title_inches / (rows * cell_inches + title_inches))
    grid = fig.add_gridspec(rows, cols, left=0.005, right=0.995, bottom=0.005, wspace=0.02, hspace=0.02,
                            top=1.0 - title_inches / (rows * cell_inches + title_inches))
    for i, r in enumerate(renders):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        h, w = r.image.shape[:2]
        ax.imshow(r.image, interpolation="bilinear")
        for p in range(r.num_people):
            viz.draw_pose_2d(ax, r.pose2d[p], SKELETON, linewidth=0.9, marker_size=0, alpha=0.9)
            vis, occ = r.visible[p], r.in_image[p] & ~r.visible[p]
            ax.plot(r.pose2d[p, vis, 0], r.pose2d[p, vis, 1], "o", markersize=2.6, color="yellow",
                    markeredgecolor="black", markeredgewidth=0.4, linestyle="none")
            ax.plot(r.pose2d[p, occ, 0], r.pose2d[p, occ, 1], "o", markersize=2.8, markerfacecolor="none",
                    markeredgecolor="white", markeredgewidth=0.7, linestyle="none")
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_axis_off()
    fig.savefig(path, format="png", dpi=dpi)


def render_dataset(poses3d: np.ndarray, num_images: int, seed: int, output_dir: str,
                   config: RenderConfig = RenderConfig(), contact_sheet: Optional[str] = None,
                   sheet_images: int = 12, quality: int = 90) -> dict:
    """Renders images 0..num_images-1 of set ``seed`` into ``output_dir``: ``NNNNNN.jpg`` files and
    ``ground_truth.json`` (a list of :func:`ground_truth_record`; an empty scene has ``num_people`` 0 and
    empty lists), plus an optional contact sheet of the first ``sheet_images``. Returns a summary dict:
    ``num_images``, ``num_people``, ``num_empty`` (images without people) and timings."""
    if num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    os.makedirs(output_dir, exist_ok=True)
    records, sheet, times, people, empty = [], [], [], 0, 0
    for index in range(num_images):
        start = time.perf_counter()
        rendered = render_image(poses3d, index, seed, config)
        times.append(time.perf_counter() - start)
        name = f"{index:06d}.jpg"
        with open(os.path.join(output_dir, name), "wb") as fh:
            fh.write(encode_image(rendered.image, "jpeg", quality))
        records.append(ground_truth_record(rendered, name, index, seed))
        people += rendered.num_people
        empty += rendered.num_people == 0
        if len(sheet) < sheet_images:
            sheet.append(rendered)
    with open(os.path.join(output_dir, "ground_truth.json"), "w") as fh:
        json.dump({"seed": int(seed), "config": dataclasses.asdict(config),
                   "conventions": "pose2d pixels (x right, y down, integer = pixel centre); pose3d metres, "
                                  "camera axes (x right, y down, z away), body-centred; pose3d_camera = "
                                  "pose3d + translation; intrinsics fx, fy, cx, cy",
                   "joints": list(SKELETON.joint_names), "images": records}, fh)
    if contact_sheet:
        write_contact_sheet(sheet, contact_sheet)
    return {"num_images": num_images, "num_people": people, "num_empty": int(empty),
            "median_render_ms": 1e3 * float(np.median(times)), "total_render_s": float(np.sum(times))}


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------

def define_flags(flag_values=None) -> None:
    """Defines the command-line flags (on demand, so importing this module defines none)."""
    from absl import flags
    fv = flags.FLAGS if flag_values is None else flag_values
    flags.DEFINE_integer("num_images", 16, "Number of images to render (indices 0..N-1).", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Seed of the image set; image i depends only on (poses, i, seed, "
                         "config).", lower_bound=0, flag_values=fv)
    flags.DEFINE_string("output_dir", None, "Folder for NNNNNN.jpg and ground_truth.json.", flag_values=fv)
    flags.DEFINE_string("poses", None, "A poses.npz LCR-13 corpus (beam_jobs.mocap_poses); default: "
                        "--body_model_poses poses of lcr_tf.body_model sampled with --seed.", flag_values=fv)
    flags.DEFINE_integer("body_model_poses", 20000, "Corpus size when --poses is not given.", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer("height", RenderConfig.height, "Image height in pixels.", lower_bound=8,
                         flag_values=fv)
    flags.DEFINE_integer("width", RenderConfig.width, "Image width in pixels.", lower_bound=8, flag_values=fv)
    flags.DEFINE_enum("preset", "wild", sorted(PRESETS), "Scene distribution: wild (crowds, small and cut "
                      "people, occluders), clear (1-3 large people) or studio (1-2 large whole people, plain "
                      "backgrounds); see PRESETS.", flag_values=fv)
    flags.DEFINE_integer("min_people", None, "Fewest people per image (default: the preset's).", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer("max_people", None, "Most people per image (default: the preset's).", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_float("empty_fraction", RenderConfig.empty_fraction, "Share of the images rendered with no "
                       "people (background only: pure negatives); image i is empty when floor((i+1) f) > "
                       "floor(i f), so floor(N f) of N images are, spread evenly; the others are the same "
                       "images as without it.", lower_bound=0.0, upper_bound=1.0, flag_values=fv)
    flags.DEFINE_integer("jpeg_quality", 90, "JPEG quality of the written images.", lower_bound=0,
                         upper_bound=100, flag_values=fv)
    flags.DEFINE_string("contact_sheet", None, "Optional PNG: a grid of the first images with their 2D "
                        "skeletons (visible joints filled, occluded hollow).", flag_values=fv)
    flags.DEFINE_integer("sheet_images", 12, "Number of images on the contact sheet.", lower_bound=1,
                         flag_values=fv)


def main(argv: List[str]) -> None:
    from absl import flags
    from lcr_tf import body_model
    from lcr_tf import pose_corpus

    from absl import app

    fv = flags.FLAGS
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    if fv.output_dir is None:
        raise app.UsageError("--output_dir is required")
    try:
        people = {k: fv[k].value for k in ("min_people", "max_people") if fv[k].value is not None}
        config = preset_config(fv.preset, height=fv.height, width=fv.width, empty_fraction=fv.empty_fraction,
                               **people)
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    if fv.poses:
        poses3d = pose_corpus.load(fv.poses, skeleton=SKELETON.name).poses3d
    else:
        poses3d = body_model.sample_poses(num_poses=fv.body_model_poses, seed=fv.seed).poses3d
    summary = render_dataset(poses3d, fv.num_images, fv.seed, fv.output_dir, config, fv.contact_sheet,
                             fv.sheet_images, fv.jpeg_quality)
    print(f"wrote {summary['num_images']} images with {summary['num_people']} people "
          f"({summary['num_empty']} images without people) to {fv.output_dir} "
          f"(median {summary['median_render_ms']:.1f} ms per image to render)"
          + (f"; contact sheet {fv.contact_sheet}" if fv.contact_sheet else ""))


if __name__ == "__main__":
    from lcr_tf import cli

    define_flags()
    cli.run(main)
