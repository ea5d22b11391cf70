"""Random textured backgrounds of synthetic images (:func:`make_background`): gradients with noise, rooms
with perspective floors, stripes, checks, blobs. (H, W, 3) RGB."""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from lcr_tf.synthetic.appearance import hsv_colours
from lcr_tf.synthetic.presets import BACKGROUND_KINDS
from lcr_tf.synthetic.rasteriser import ONE, SHIFT, fixed


def _smooth_noise(rng, height, width, cells, channels=3):
    """(H, W, channels) float32 noise in about [0, 1], smooth at the scale of ``cells`` per side."""
    ch = max(2, int(round(cells * height / max(height, width))))
    cw = max(2, int(round(cells * width / max(height, width))))
    small = rng.random((ch, cw, channels)).astype(np.float32)
    out = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return out.reshape(height, width, channels)


def random_colour(rng, n=None, val=(0.1, 0.95)):
    c = hsv_colours(rng, 1 if n is None else n, sat=(0.05, 0.8), val=val).astype(np.float32)
    return c[0] if n is None else c


def _grid(height, width):
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return yy, xx


def _bg_gradient_noise(rng, height, width):
    yy, xx = _grid(height, width)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx + np.sin(angle) * yy)
    t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
    img = random_colour(rng) * (1 - t[..., None]) + random_colour(rng) * t[..., None]
    img += (_smooth_noise(rng, height, width, rng.integers(3, 8)) - 0.5) * rng.uniform(40, 120)
    img += (_smooth_noise(rng, height, width, rng.integers(12, 40)) - 0.5) * rng.uniform(10, 50)
    return img


def _bg_room(rng, height, width):
    """A wall with framed rectangles over a floor with perspective tiles or boards."""
    yy, xx = _grid(height, width)
    horizon = rng.uniform(0.25, 0.75) * height
    wall = random_colour(rng, val=(0.35, 0.95))
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
    floor_a, floor_b = random_colour(rng), random_colour(rng)
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
                      random_colour(rng).tolist(), -1)
        cv2.rectangle(img, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), random_colour(rng).tolist(),
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
    img = random_colour(rng) * w + random_colour(rng) * (1 - w)
    return img + (_smooth_noise(rng, height, width, 5) - 0.5) * 50


def _bg_checks(rng, height, width):
    yy, xx = _grid(height, width)
    angle = rng.uniform(0, np.pi / 2)
    cell = rng.uniform(8, 64)
    u = (np.cos(angle) * xx + np.sin(angle) * yy) / cell
    v = (-np.sin(angle) * xx + np.cos(angle) * yy) / cell
    check = ((np.floor(u) + np.floor(v)) % 2)[..., None]
    img = random_colour(rng) * check + random_colour(rng) * (1 - check)
    return img + (_smooth_noise(rng, height, width, 4) - 0.5) * 60


def _bg_blobs(rng, height, width):
    img = np.empty((height, width, 3), np.float32)
    img[:] = random_colour(rng)
    img += (_smooth_noise(rng, height, width, 4) - 0.5) * 60
    size = max(height, width)
    for _ in range(int(rng.integers(8, 30))):
        centre = (int(rng.uniform(0, width) * ONE), int(rng.uniform(0, height) * ONE))
        colour = random_colour(rng).tolist()
        if rng.random() < 0.5:
            axes = (int(rng.uniform(0.02, 0.25) * size * ONE), int(rng.uniform(0.02, 0.25) * size * ONE))
            cv2.ellipse(img, centre, axes, rng.uniform(0, 180), 0, 360, colour, -1, cv2.LINE_AA, SHIFT)
        else:
            half = rng.uniform(0.02, 0.2, 2) * size
            box = cv2.boxPoints(((centre[0] / ONE, centre[1] / ONE), (2 * half[0], 2 * half[1]),
                                 rng.uniform(0, 180)))
            cv2.fillConvexPoly(img, fixed(box), colour, cv2.LINE_AA, SHIFT)
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
            cv2.fillConvexPoly(img, fixed(box), random_colour(rng).tolist(), cv2.LINE_AA, SHIFT)
    # Global contrast and brightness, as different cameras and exposures give.
    img = (img - 128.0) * rng.uniform(0.7, 1.2) + 128.0 + rng.uniform(-25, 25)
    return np.clip(img, 0, 255).astype(np.uint8)

