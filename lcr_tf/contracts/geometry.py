"""Pose geometry shared by the data tools and the model: views, projections, pose boxes.

Coordinate conventions (DESIGN.md sec 3):
  * 3D: metres, camera axes (x right, y down, z away from the camera), body-centred
    (see :func:`lcr_tf.contracts.skeleton.centre_poses`). An upright person has the head at negative y.
  * 2D: pixels, x right, y down, origin at the top-left image corner; or, for a pose in a box,
    box-normalised coordinates ``(p - [x1, y1]) / [w, h]``, where the box lies in [0, 1]^2.
  * Pixels are continuous: pixel index ``i`` (column, or row) covers ``[i, i + 1)`` and its centre is at
    ``i + PIXEL_CENTRE_OFFSET`` (0.5). An image of width W covers ``[0, W)``, its centre is ``W / 2``, and
    a horizontal flip is exactly ``x -> W - x``. Every dataset reader converts its annotation to this
    (each states its offset as a named constant) and the synthetic renderer writes labels in it.
  * Boxes: ``[x1, y1, x2, y2]`` in the same unit as the points they hold.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from scipy.spatial.transform import Rotation

from lcr_tf.contracts import skeleton as skeleton_lib

# The pose box is the tight box around the joints grown by this fraction of its width (height) on the
# left and right (top and bottom) sides: the paper's "fixed additional margin of 10%" (Sec 3.1).
POSE_BOX_MARGIN = 0.1
# A box side is never shorter than this fraction of the other side, so box-normalised coordinates stay
# finite for a person seen edge-on (all joints nearly on a vertical line).
MIN_BOX_ASPECT = 0.1

# The centre of pixel index i is at coordinate i + PIXEL_CENTRE_OFFSET (see the module docstring); the
# pixel holding a point x is floor(x).
PIXEL_CENTRE_OFFSET = 0.5

DEFAULT_ELEVATION_RANGE_DEG = (-10.0, 40.0)


def axis_rotation(axis: int, angle) -> np.ndarray:
    """Right-handed rotation about camera axis 0 (x), 1 (y) or 2 (z): (...,) radians -> (..., 3, 3) float64.

    About x, a positive angle turns +z towards -y (a camera above the person looking down); about y
    (vertical, y down) it is the azimuth, turning +x towards -z.
    """
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    angle = np.asarray(angle, np.float64)
    rotvec = np.zeros(angle.shape + (3,))
    rotvec[..., axis] = angle
    return Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(angle.shape + (3, 3))


def rotation_x(angle) -> np.ndarray:
    """(...,) radians -> (..., 3, 3): :func:`axis_rotation` about x (the elevation)."""
    return axis_rotation(0, angle)


def rotation_y(angle) -> np.ndarray:
    """(...,) radians -> (..., 3, 3): :func:`axis_rotation` about the vertical y axis (the azimuth)."""
    return axis_rotation(1, angle)


def rotation_z(angle) -> np.ndarray:
    """(...,) radians -> (..., 3, 3): :func:`axis_rotation` about the optical z axis (the roll)."""
    return axis_rotation(2, angle)


def euler_to_matrix(angles_deg, axes: Sequence[int]) -> np.ndarray:
    """Intrinsic rotations composed in the order given: (..., K) degrees about ``axes`` (K,) ->
    ``R_axes[0] @ R_axes[1] @ ...`` (..., 3, 3). With no axis, the identity. (Rotations about fixed axes
    in the order given are the same product reversed.)"""
    angles = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    out = np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3)).copy()
    for k, axis in enumerate(axes):  # at most three factors, each vectorised over frames
        out = out @ axis_rotation(axis, angles[..., k])
    return out


def view_rotations(azimuth: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """Rotations that turn a body by ``azimuth`` about the vertical, then tilt it by ``elevation``.

    A positive elevation is a camera above the person looking down. Both (V,) radians -> (V, 3, 3).
    """
    return rotation_x(np.asarray(elevation, np.float64)) @ rotation_y(np.asarray(azimuth, np.float64))


def random_view_rotations(num_views: int, rng: np.random.Generator,
                          elevation_range_deg: Tuple[float, float] = DEFAULT_ELEVATION_RANGE_DEG
                          ) -> np.ndarray:
    """``num_views`` random camera views: azimuth uniform all round, elevation uniform in the range.

    Returns (V, 3, 3) float64 rotation matrices; apply as ``poses @ R.T``.
    """
    lo, hi = elevation_range_deg
    if not -90.0 <= lo <= hi <= 90.0:
        raise ValueError(f"elevation range must satisfy -90 <= lo <= hi <= 90 degrees, got {elevation_range_deg}")
    azimuth = rng.uniform(0.0, 2.0 * np.pi, size=num_views)
    elevation = np.deg2rad(rng.uniform(lo, hi, size=num_views))
    return view_rotations(azimuth, elevation)


def rotate(poses3d: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Rotates (..., J, 3) poses by (..., 3, 3) rotations (broadcast): ``P @ R^T``."""
    return np.einsum("...jk,...ik->...ji", poses3d, rotations)


def orthographic_project(poses3d: np.ndarray) -> np.ndarray:
    """(..., J, 3) camera-frame points -> (..., J, 2): drops z (x right, y down are kept)."""
    return np.asarray(poses3d)[..., :2]


def tight_box(pose2d: np.ndarray, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """(..., J, 2) points (+ (..., J) mask) -> (..., 4) xyxy box around the annotated ones.

    A pose with no annotated joint gets a NaN box.
    """
    pose2d = np.asarray(pose2d, dtype=np.float64)
    if mask is None:
        mask = np.all(np.isfinite(pose2d), axis=-1)
    m = np.asarray(mask, bool)[..., None]
    with np.errstate(invalid="ignore"):
        lo = np.where(m, pose2d, np.inf).min(axis=-2)
        hi = np.where(m, pose2d, -np.inf).max(axis=-2)
    box = np.concatenate([lo, hi], axis=-1)
    return np.where(np.isfinite(box), box, np.nan)


def pose_box(pose2d: np.ndarray, mask: Optional[np.ndarray] = None,
             margin: float = POSE_BOX_MARGIN) -> np.ndarray:
    """The box of a pose: tight box of the annotated joints, grown by ``margin`` on each side.

    Each side is first made at least :data:`MIN_BOX_ASPECT` times the other (about the same centre).
    Args:
      pose2d: (..., J, 2). mask: (..., J) bool or None (finite joints).
    Returns:
      (..., 4) float64 xyxy.
    """
    box = tight_box(pose2d, mask)
    centre = 0.5 * (box[..., :2] + box[..., 2:])
    size = box[..., 2:] - box[..., :2]
    size = np.maximum(size, MIN_BOX_ASPECT * size[..., ::-1])
    size = size * (1.0 + 2.0 * margin)
    return np.concatenate([centre - 0.5 * size, centre + 0.5 * size], axis=-1)


def upper_body_box(pose2d: np.ndarray, mask: Optional[np.ndarray] = None, skeleton="lcr13",
                   margin: float = POSE_BOX_MARGIN) -> np.ndarray:
    """The pose box of the upper-body joints only (Sec 4.2, 'Dealing with truncation')."""
    skel = skeleton_lib.get_skeleton(skeleton)
    pose2d = np.asarray(pose2d)
    if mask is None:
        mask = np.all(np.isfinite(pose2d), axis=-1)
    upper = np.zeros(skel.num_joints, bool)
    upper[skel.upper_body] = True
    return pose_box(pose2d, np.asarray(mask, bool) & upper, margin)


def normalise_to_box(pose2d: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(..., J, 2) points and (..., 4) xyxy boxes -> (..., J, 2) box-normalised coordinates."""
    box = np.asarray(box, dtype=np.float64)[..., None, :]
    return (np.asarray(pose2d) - box[..., :2]) / (box[..., 2:] - box[..., :2])
