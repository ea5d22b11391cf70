"""What the synthetic renderer draws: :class:`RenderConfig` and the named scene distributions
(:data:`PRESETS`). Distances in metres, angles in degrees, fractions in [0, 1], sizes in pixels."""

from __future__ import annotations

import dataclasses
from typing import Tuple

from lcr_tf.contracts import skeleton as skeleton_lib

SKELETON = skeleton_lib.LCR13
NUM_JOINTS = SKELETON.num_joints
BACKGROUND_KINDS = ("gradient_noise", "room", "stripes", "checks", "blobs")


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
