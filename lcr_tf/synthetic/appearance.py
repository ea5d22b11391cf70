"""How the synthetic people look: clothes, skin, hair and build (:class:`Appearance`), and their random
draw (:func:`sample_appearance`). Colours are float RGB in [0, 255]."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from lcr_tf.synthetic.presets import RenderConfig


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


def hsv_colours(rng: np.random.Generator, n: int, sat=(0.15, 0.9), val=(0.12, 0.95)) -> np.ndarray:
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
    top = hsv_colours(rng, n)
    bottom = hsv_colours(rng, n, val=(0.1, 0.75))
    jeans = rng.random(n) < 0.3
    bottom[jeans] = np.array([45, 70, 125]) * rng.uniform(0.6, 1.3, (int(jeans.sum()), 1))
    shoes = np.where(rng.random((n, 1)) < 0.75, rng.uniform(20, 90, (n, 1)) * np.ones(3),
                     hsv_colours(rng, n, val=(0.3, 1.0)))
    thickness = rng.uniform(*config.thickness_range, n)
    torso = rng.uniform(*config.torso_width_range, n)
    return Appearance(np.clip(skin, 0, 255), np.clip(hair, 0, 255), top, bottom, shoes, thickness, torso,
                      rng.random(n) < 0.6, rng.random(n) < 0.75)

