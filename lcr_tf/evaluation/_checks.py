"""Input checks shared by the evaluation metrics: shapes, masks and NaN, with errors naming the argument."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np


def as_poses(name: str, poses, dims: int) -> np.ndarray:
    """(N, J, dims) float64 view of ``poses``; ValueError naming ``name`` if the shape is wrong."""
    arr = np.asarray(poses, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[-1] != dims:
        raise ValueError(f"{name} must have shape (N, J, {dims}), got {arr.shape}")
    return arr


def as_pair(pred, gt, dims: int) -> Tuple[np.ndarray, np.ndarray]:
    """Both pose arrays as (N, J, dims) float64, with matching shapes."""
    p = as_poses("pred", pred, dims)
    g = as_poses("gt", gt, dims)
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {p.shape} vs {g.shape}")
    return p, g


def as_mask(name: str, mask, shape: Tuple[int, ...], default: bool = True) -> np.ndarray:
    """Boolean mask of exactly ``shape`` (``default`` everywhere when ``mask`` is None)."""
    if mask is None:
        return np.full(shape, default, dtype=bool)
    arr = np.asarray(mask)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    if arr.dtype != bool:
        if not np.all((arr == 0) | (arr == 1)):
            raise ValueError(f"{name} must be boolean (or 0/1), got values outside {{0, 1}}")
        arr = arr.astype(bool)
    return arr


def check_finite(name: str, values: np.ndarray, where: Optional[np.ndarray] = None) -> None:
    """ValueError naming ``name`` and the first bad (person, joint) if ``values`` is NaN/inf where used.

    Args:
      values: (N, J, D) or (N, ...) array.
      where: (N, J) bool (or broadcastable to ``values.shape[:where.ndim]``); None checks everything.
    """
    bad = ~np.isfinite(values)
    keep = where.ndim if where is not None else min(bad.ndim, 2)
    if bad.ndim > keep:
        bad = bad.any(axis=tuple(range(keep, bad.ndim)))
    if where is not None:
        bad = bad & where
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} has {int(bad.sum())} non-finite value(s) where they are used, "
                         f"first at index {first}")
