"""Drawing posed bodies into an image (:func:`render_people`): the painter's algorithm over body parts with
OpenCV's anti-aliased fills, a part-index buffer giving the person under each pixel, and joint visibility.

Pixel coordinates. Labels, intrinsics and the polygons callers pass follow the package convention
(:mod:`lcr_tf.contracts.geometry`: pixel ``i`` covers ``[i, i+1)``, its centre is ``i + 0.5``). OpenCV's
drawing calls put integer coordinates at pixel centres, so every point is drawn at its label minus
:data:`OPENCV_OFFSET` (0.5): the pixel OpenCV paints for a point labelled ``(x, y)`` is
``(floor(y), floor(x))``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from lcr_tf.contracts import geometry
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.synthetic import bodies
from lcr_tf.synthetic.appearance import Appearance
from lcr_tf.synthetic.presets import NUM_JOINTS, SKELETON

# OpenCV coordinate = label - OPENCV_OFFSET: OpenCV's integer coordinates are pixel centres, the
# package's pixel centres are at i + PIXEL_CENTRE_OFFSET.
OPENCV_OFFSET = geometry.PIXEL_CENTRE_OFFSET
SHIFT = 4
ONE = float(1 << SHIFT)
# Drawn coordinates are clipped to this many pixels from the origin so they fit OpenCV's int32 maths.
_MAX_COORD = float(1 << 20)
# A part's radius is never drawn below this many pixels, so the limbs of a far person still cover their
# joints' pixels.
_MIN_RADIUS_PX = 0.6
# Points nearer than this (metres) are pushed back before projection; joints themselves must be in front.
_MIN_DRAW_Z = 0.02

# Shading layers of every part: (shrink factor, shift towards the light in part radii, brightness).
# Each layer stays inside the previous one (shrink + shift < 1), so the outer rim stays darkest.
_LAYERS = np.array([[1.00, 0.00, 0.62], [0.84, 0.12, 0.80], [0.64, 0.24, 0.93],
                    [0.42, 0.34, 1.04], [0.20, 0.42, 1.14]])

@dataclasses.dataclass
class RenderedImage:
    """One synthetic image and its ground truth (P people, J = 13 LCR joints).

    Attributes:
      image: (H, W, 3) uint8 RGB.
      intrinsics: (4,) float32 fx, fy, cx, cy in pixels (pinhole, no distortion).
      pose2d: (P, J, 2) float32 pixels, the perspective projection of ``pose3d_camera``
        (:mod:`lcr_tf.contracts.geometry`'s convention: pixel ``i`` covers ``[i, i+1)``).
      pose3d: (P, J, 3) float32 metres, camera axes, body-centred.
      pose3d_camera: (P, J, 3) float32 metres, camera frame (``pose3d`` + the person's translation).
      in_image: (P, J) bool, the joint projects inside the image, ``[0, W) x [0, H)``.
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


def _project(points: np.ndarray, intrinsics: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(..., 3) camera points -> ((..., 2) OpenCV drawing coordinates (integer = pixel centre), (...,)
    depth clipped to the drawing near limit). ``intrinsics`` are the package's (pixel centre at i + 0.5)."""
    fx, fy, cx, cy = intrinsics
    cx, cy = cx - OPENCV_OFFSET, cy - OPENCV_OFFSET
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


def fixed(x: np.ndarray) -> np.ndarray:
    """Pixels -> OpenCV fixed-point integers (``SHIFT`` fractional bits)."""
    return np.round(np.asarray(x) * ONE).astype(np.int32)


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
      intrinsics: (4,) fx, fy, cx, cy pixels, the package's convention (the image covers [0, W) x [0, H),
        its centre is (W / 2, H / 2)).
      background: (H, W, 3) uint8 RGB; not modified.
      appearance: looks of the P people (default: :meth:`Appearance.uniform`).
      light_direction: 2D image direction (x right, y down) towards the light; lit sides are brighter.
      ambient: brightness factor on every body colour.
      occluders: foreground objects drawn in front of everybody: (polygon (K, 2) pixels in the package's
        convention, RGB colour).
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
    light = bodies.unit(np.asarray(light_direction, np.float64))

    cap_a, cap_b, cap_ra, cap_rb, rings, ring_names, centre_z, size = bodies.body_geometry(poses, appearance)
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
                for _, rs, _ in bodies.HULLS]
    hull_z = np.stack([rings[..., 2][:, [ring_idx[r] for r in rs]].mean(axis=(1, 2)) for _, rs, _ in bodies.HULLS],
                      1)

    # --- Colours of every part and layer: base colour x depth shading x layer brightness.
    slots = {"skin": appearance.skin, "hair": appearance.hair, "top": appearance.top,
             "bottom": appearance.bottom, "shoes": appearance.shoes,
             "arms": np.where(appearance.long_sleeves[:, None], appearance.top, appearance.skin),
             "legs": np.where(appearance.long_legs[:, None], appearance.bottom, appearance.skin)}
    part_slots = [c[5] for c in bodies.CAPSULES] + [h[2] for h in bodies.HULLS]
    base = np.stack([slots[s] for s in part_slots], 1)  # (P, parts, 3)
    part_z = np.concatenate([0.5 * (cap_a[..., 2] + cap_b[..., 2]), hull_z], 1)  # (P, parts)
    # Parts behind the body centre are darker, in front lighter: a cue for depth within a body.
    depth_shade = 1.0 - 0.18 * np.clip((part_z - centre_z[:, None]) / (0.25 * size[:, None]), -1, 1)
    colours = np.clip(base[:, :, None] * (ambient * depth_shade)[..., None, None]
                      * bright[None, None, :, None], 0, 255)  # (P, parts, L, 3)

    # --- Fixed-point integer versions for OpenCV, converted to Python objects once.
    la_i, lb_i = fixed(la).tolist(), fixed(lb).tolist()
    lra_i, lrb_i = fixed(lra).tolist(), fixed(lrb).tolist()
    quads_i, sided_l, bigger_l = fixed(quads).tolist(), sided.tolist(), bigger_a.tolist()
    colours_l = colours.tolist()

    image = background.copy()
    part_map = np.zeros((height, width), np.int32)  # 0 background, 1 + global part index
    order = np.argsort(-part_z.ravel(), kind="stable")  # far to near
    aa, solid = cv2.LINE_AA, cv2.LINE_8
    for g in order.tolist():  # the painter's algorithm: one draw per body part, far to near
        p, k = divmod(g, bodies.NUM_PARTS)
        label = g + 1
        if k < bodies.NUM_CAPSULES:
            for lyr in range(len(_LAYERS)):
                col = colours_l[p][k][lyr]
                _draw_capsule(image, la_i[p][k][lyr], lb_i[p][k][lyr], lra_i[p][k][lyr], lrb_i[p][k][lyr],
                              quads_i[p][k][lyr], sided_l[p][k][lyr], bigger_l[p][k][lyr], col, aa)
            _draw_capsule(part_map, la_i[p][k][0], lb_i[p][k][0], lra_i[p][k][0], lrb_i[p][k][0],
                          quads_i[p][k][0], sided_l[p][k][0], bigger_l[p][k][0], label, solid)
        else:
            pts = hull_pts[k - bodies.NUM_CAPSULES][p]
            hull = cv2.convexHull(pts.astype(np.float32))[:, 0].astype(np.float64)
            centre = hull.mean(axis=0)
            area = cv2.contourArea(hull.astype(np.float32))
            perimeter = cv2.arcLength(hull.astype(np.float32), True)
            inradius = 2.0 * area / max(perimeter, 1e-6)
            for lyr in range(len(_LAYERS)):
                poly = centre + shrink[lyr] * (hull - centre) + shift[lyr] * inradius * light
                cv2.fillConvexPoly(image, fixed(poly), colours_l[p][k][lyr], aa, SHIFT)
            cv2.fillConvexPoly(part_map, fixed(hull), label, solid, SHIFT)
    occluder_label = num * bodies.NUM_PARTS + 1
    for polygon, colour in occluders:
        polygon = np.asarray(polygon, np.float64).reshape(-1, 2) - OPENCV_OFFSET
        hull = cv2.convexHull(polygon.astype(np.float32))[:, 0].astype(np.float64)
        _draw_shaded_polygon(image, hull, np.asarray(colour, np.float64), light)
        cv2.fillConvexPoly(part_map, fixed(hull), occluder_label, solid, SHIFT)

    # --- Ground truth.
    fx, fy, cx, cy = intrinsics
    pose2d = np.stack([fx * poses[..., 0] / poses[..., 2] + cx, fy * poses[..., 1] / poses[..., 2] + cy], -1)
    # The image covers [0, W) x [0, H); the joint's pixel is (floor(y), floor(x)), the one OpenCV paints
    # for the drawing coordinate (x - 0.5, y - 0.5).
    in_image = ((pose2d[..., 0] >= 0) & (pose2d[..., 0] < width)
                & (pose2d[..., 1] >= 0) & (pose2d[..., 1] < height))
    col = np.clip(np.floor(pose2d[..., 0]), 0, width - 1).astype(np.int64)
    row = np.clip(np.floor(pose2d[..., 1]), 0, height - 1).astype(np.int64)
    front = part_map[row, col]  # (P, J) label of the front-most part at each joint's pixel
    g = np.clip(front - 1, 0, num * bodies.NUM_PARTS - 1)
    owner, part = g // bodies.NUM_PARTS, g % bodies.NUM_PARTS
    joint_idx = np.broadcast_to(np.arange(NUM_JOINTS), front.shape)
    own_part = ((front >= 1) & (front < occluder_label) & (owner == np.arange(num)[:, None])
                & bodies.INCIDENT[joint_idx, part])
    visible = in_image & ((front == 0) | own_part)
    owner_of_label = np.concatenate([[-1], np.repeat(np.arange(num), bodies.NUM_PARTS), [-1]]).astype(np.int16)
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
        cv2.circle(img, a, ra, colour, -1, line_type, SHIFT)
        cv2.circle(img, b, rb, colour, -1, line_type, SHIFT)
        cv2.fillConvexPoly(img, np.array(quad, np.int32), colour, line_type, SHIFT)
    elif bigger_a:
        cv2.circle(img, a, ra, colour, -1, line_type, SHIFT)
    else:
        cv2.circle(img, b, rb, colour, -1, line_type, SHIFT)


def _draw_shaded_polygon(img, hull, colour, light):
    centre = hull.mean(axis=0)
    area = cv2.contourArea(hull.astype(np.float32))
    inradius = 2.0 * area / max(cv2.arcLength(hull.astype(np.float32), True), 1e-6)
    for shrink, shift, bright in _LAYERS[:3]:
        poly = centre + shrink * (hull - centre) + shift * inradius * light
        cv2.fillConvexPoly(img, fixed(poly), np.clip(colour * (0.4 + 0.6 * bright), 0, 255).tolist(),
                           cv2.LINE_AA, SHIFT)

