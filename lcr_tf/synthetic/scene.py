"""One synthetic scene: a pinhole camera, people drawn from a pose corpus, placed in front of it (some cut
by a border), foreground occluders, blur and noise -> a :class:`~lcr_tf.synthetic.rasteriser.RenderedImage`
(:func:`render_image`); and which images hold nobody (:func:`empty_scenes`).

Pixel coordinates follow :mod:`lcr_tf.contracts.geometry` (pixel ``i`` covers ``[i, i+1)``); the image
covers ``[0, W) x [0, H)`` and its centre is ``(W / 2, H / 2)``. 3D in metres, camera axes.
"""

from __future__ import annotations

import fractions

import cv2
import numpy as np

from lcr_tf.contracts import geometry
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.synthetic import bodies
from lcr_tf.synthetic.appearance import sample_appearance
from lcr_tf.synthetic.backgrounds import make_background, random_colour
from lcr_tf.synthetic.presets import NUM_JOINTS, RenderConfig
from lcr_tf.synthetic.rasteriser import OPENCV_OFFSET, RenderedImage, render_people

# Largest denominator of the ratio that stands for ``empty_fraction``: exact for any fraction written with
# up to six decimals, and small enough that ``index * numerator`` stays far inside int64.
_EMPTY_DENOMINATOR = 1_000_000

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
    stature = bodies.standing_height(posed)
    z = f * stature / (fraction * height)
    # The nearest point drawn (a hand or a foot beyond a joint) is ~0.25 m in front of the nearest joint.
    z = np.maximum(z, config.near_plane - posed[..., 2].min(axis=1) + 0.25 * stature / bodies.REFERENCE_STATURE)
    # Box of the person relative to its projected centre, at its depth (weak perspective), padded for
    # the body's volume.
    pad = 0.12 * stature / bodies.REFERENCE_STATURE * f / z
    rel = posed[..., :2] * (f / z)[:, None, None]
    box_lo = rel.min(axis=1) - pad[:, None]
    box_hi = rel.max(axis=1) + pad[:, None]
    box_size = box_hi - box_lo
    limits = np.array([width, height], np.float64)
    inside_a, inside_b = -box_lo, limits - box_hi
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
        c[rows, ax] = np.where(low_side[rows], -span - box_lo[rows, ax],
                               limits[ax] + span - box_hi[rows, ax])
        return c

    def joints_inside(c):
        xy = (c - principal) * (z / f)[:, None]
        cam = posed + np.concatenate([xy, z[:, None]], 1)[:, None]
        uv = cam[..., :2] / cam[..., 2:] * f + principal
        ok = (uv >= 0) & (uv < limits)
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
    """Foreground objects: (polygon (K, 2) pixels, colour) pairs, placed over random people.

    ``rendered_boxes`` (P, 4) and the polygons are in the package's pixel convention. The shapes are laid
    out in OpenCV's coordinates (integer = pixel centre; ``ellipse2Poly`` takes an integer centre) and
    shifted back, so each shape covers the same pixels as the renderer has always drawn.
    """
    height, width = config.height, config.width
    rendered_boxes = np.asarray(rendered_boxes, np.float64) - OPENCV_OFFSET
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
        out.append((poly + OPENCV_OFFSET, random_colour(rng, val=(0.15, 0.9))))
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
    cx = width / 2 + rng.uniform(-1, 1) * config.principal_jitter * width
    cy = height / 2 + rng.uniform(-1, 1) * config.principal_jitter * height
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
        ``lcr_tf.poses.body_model.sample_poses(...).poses3d`` or a MoCap ``poses.npz``).
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
    # Roll: about the optical (z) axis, an in-plane turn.
    rotation = geometry.rotation_x(tilt) @ geometry.rotation_z(roll) @ geometry.rotation_y(yaw)
    scale = rng.uniform(*config.body_scale_range, num)
    # Rotating and scaling about the body centre keeps the pose body-centred.
    posed = scale[:, None, None] * geometry.rotate(source, rotation)

    f = rng.uniform(*config.focal_range) * max(height, width)
    cx = width / 2 + rng.uniform(-1, 1) * config.principal_jitter * width
    cy = height / 2 + rng.uniform(-1, 1) * config.principal_jitter * height
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

