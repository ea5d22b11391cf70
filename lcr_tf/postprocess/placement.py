"""Placing body-centred 3D poses in the camera frame (paper Fig 15).

For a person with 2D pose ``(u_j, v_j)`` (pixels) and body-centred 3D pose ``(X_j, Y_j, Z_j)`` (metres,
camera axes x right, y down, z away), the translation ``t = (tx, ty, tz)`` minimises the reprojection
error of the pinhole camera ``u = fx (X + tx) / (Z + tz) + cx``, ``v = fy (Y + ty) / (Z + tz) + cy``.
Multiplying by the depth makes each joint give two equations linear in t::

    fx tx - (u_j - cx) tz = (u_j - cx) Z_j - fx X_j
    fy ty - (v_j - cy) tz = (v_j - cy) Z_j - fy Y_j

solved in the least-squares sense over the J joints (exact when the 2D pose is a perspective projection
of the 3D pose). Default camera when no intrinsics are given: focal length ``f = max(h, w)`` pixels for
both axes (a field of view of about 53 degrees across the larger side) and the principal point at the image
centre ``(w / 2, h / 2)``.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np


def default_intrinsics(image_size) -> np.ndarray:
    """(height, width) px -> (4,) float64 ``fx, fy, cx, cy`` of the default camera (module docstring)."""
    h, w = (float(v) for v in image_size)
    f = max(h, w)
    return np.array([f, f, 0.5 * w, 0.5 * h])


def linear_system(pose2d, pose3d, intrinsics, xp):
    """(D, 2J, 3) design matrices and (D, 2J) right-hand sides of the linearised equations."""
    fx, fy, cx, cy = intrinsics[0], intrinsics[1], intrinsics[2], intrinsics[3]
    du = pose2d[..., 0] - cx
    dv = pose2d[..., 1] - cy
    zeros = xp.zeros_like(du)
    rows_u = xp.stack([zeros + fx, zeros, -du], axis=-1)
    rows_v = xp.stack([zeros, zeros + fy, -dv], axis=-1)
    rhs_u = du * pose3d[..., 2] - fx * pose3d[..., 0]
    rhs_v = dv * pose3d[..., 2] - fy * pose3d[..., 1]
    return xp.concat([rows_u, rows_v], axis=-2), xp.concat([rhs_u, rhs_v], axis=-1)


def place_3d(pose2d, pose3d, intrinsics: Optional[Sequence[float]] = None, image_size=None
             ) -> Tuple[np.ndarray, np.ndarray]:
    """Translations placing each 3D pose so that it reprojects onto its 2D pose.

    Args:
      pose2d: (D, J, 2) px (x right, y down, origin top-left).
      pose3d: (D, J, 3) m, camera axes, body-centred.
      intrinsics: (4,) ``fx, fy, cx, cy`` px, or None for the default camera of ``image_size``.
      image_size: (height, width) px; required when ``intrinsics`` is None.
    Returns:
      translation (D, 3) float64 m and pose3d_camera (D, J, 3) float64 = pose3d + translation.
    """
    pose2d = np.asarray(pose2d, np.float64)
    pose3d = np.asarray(pose3d, np.float64)
    if pose2d.ndim != 3 or pose2d.shape[2] != 2:
        raise ValueError(f"pose2d must be (D, J, 2), got shape {pose2d.shape}")
    if pose3d.shape != pose2d.shape[:2] + (3,):
        raise ValueError(f"pose3d must be (D={pose2d.shape[0]}, J={pose2d.shape[1]}, 3), "
                         f"got shape {pose3d.shape}")
    if not (np.all(np.isfinite(pose2d)) and np.all(np.isfinite(pose3d))):
        raise ValueError("pose2d / pose3d have non-finite values (NaN or inf)")
    if intrinsics is None:
        if image_size is None:
            raise ValueError("place_3d needs intrinsics or image_size (for the default camera)")
        size = np.asarray(image_size, np.float64)
        if size.shape != (2,) or not np.all(size > 0):
            raise ValueError(f"image_size must be (height, width) > 0, got {image_size!r}")
        intrinsics = default_intrinsics(size)
    intrinsics = np.asarray(intrinsics, np.float64)
    if intrinsics.shape != (4,) or not np.all(np.isfinite(intrinsics)) or np.any(intrinsics[:2] <= 0):
        raise ValueError(f"intrinsics must be (fx, fy, cx, cy) with fx, fy > 0, got {intrinsics!r}")
    a, b = linear_system(pose2d, pose3d, intrinsics, _NumpyOps)
    # pinv rather than solve: a degenerate 2D pose (all joints at one pixel) has no unique depth.
    translation = np.einsum("dkr,dr->dk", np.linalg.pinv(a), b)
    return translation, pose3d + translation[:, None, :]


class _NumpyOps:
    zeros_like = staticmethod(np.zeros_like)
    stack = staticmethod(np.stack)
    concat = staticmethod(np.concatenate)
