"""Which detections answer which MPII people in the files of the MPII Human Pose evaluation toolkit, where
the ground-truth joints cannot say it: the single-person people of the test set (paired by their
``objpos`` and ``scale``, as the MPII benchmark allows single-person methods to use them) and the groups
of the multi-person evaluation (``groups_v12.mat``, the toolkit's own file, which is not in the
annotation release).

Geometry. A detection stands at its LCR-13 body centre (:func:`lcr_tf.contracts.skeleton.body_centre`, the
mean of hips and shoulders, package pixels), the point nearest in meaning to MPII's ``objpos`` ("a rough
body centre"). MPII's ``scale`` is the person's height / 200 px, so ``200 * scale`` px is a person's
height; distances below are in those heights.

* :func:`pair_by_objpos`: the detections in decreasing score, each to the nearest still unpaired
  single-person person whose ``objpos`` lies within :data:`OBJPOS_RADIUS` heights (0.5: half the person's
  height) of the detection's centre. Single-person people are, by MPII's definition, sufficiently far
  apart that these discs rarely overlap; a low-scoring stray detection nearer to ``objpos`` loses to a
  person-sized one, as the greedy order serves the best-scored first.
* :func:`multi_person_groups`: the toolkit's ``getMultiPersonGroups.m``: the image's groups of
  ``groups_v12.mat`` none of whose people is a single-person person.
* :func:`assign_to_groups`: the toolkit's README localises a group by the box of its people's ``objpos``
  and its scale by their mean ``scale`` (a method crops around it). A detection goes to the group whose
  box is nearest to its centre (0 inside), if within :data:`GROUP_MARGIN` heights of the group's mean
  scale (0.5: a person whose centre is at the box's edge still has half its height around it); ties go to
  the group listed first. A detection near no group is in no entry, as it would be outside every crop.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets.base import load_mat

#: The groupings of the multi-person file: by the groups of ``groups_v12.mat``, or one entry per image.
BY_GROUPS = "groups_v12"
BY_IMAGE = "image"
#: MPII's ``scale`` unit: a person ``scale`` tall is ``PERSON_HEIGHT_PX * scale`` pixels tall.
PERSON_HEIGHT_PX = 200.0
#: Pairing radius of a test single-person person, in person heights (module docstring).
OBJPOS_RADIUS = 0.5
#: How far outside a group's ``objpos`` box a detection's centre may be, in the group's person heights.
GROUP_MARGIN = 0.5


def read_groups(path: str) -> List[List[np.ndarray]]:
    """The toolkit's ``groups_v12.mat``: ``groups`` is a cell array with one cell per ``annolist`` image (all
    images of the release, training and test), each a cell array of groups, each a vector of the group's
    1-based ``annorect`` indices.

    Returns:
      per image (0-based annolist index), its groups as (k,) int64 1-based annorect indices.
    Raises:
      FileNotFoundError; ValueError naming the file and the cell that is not of that form.
    """
    mat = load_mat(path, "MPII groups file (groups_v12.mat)")
    if "groups" not in mat:
        raise ValueError(f"{path}: has no variable 'groups' (found {sorted(k for k in mat if not k.startswith('__'))})")
    cells = mat["groups"]
    if not (isinstance(cells, np.ndarray) and cells.dtype == object):
        raise ValueError(f"{path}: 'groups' is not a cell array")
    out: List[List[np.ndarray]] = []
    for i, cell in enumerate(cells.reshape(-1)):  # ~25k images, a few groups each
        items = cell.reshape(-1) if isinstance(cell, np.ndarray) and cell.dtype == object else None
        if items is None and not (isinstance(cell, np.ndarray) and cell.size == 0):
            raise ValueError(f"{path}: groups{{{i + 1}}} is not a cell array of index vectors")
        image_groups = []
        for k, group in enumerate(items if items is not None else ()):
            values = np.asarray(group, np.float64).reshape(-1)
            if values.size == 0 or not np.all((values >= 1) & (values == np.round(values))):
                raise ValueError(f"{path}: groups{{{i + 1}}}{{{k + 1}}} is not a vector of 1-based annorect "
                                 f"indices ({values.tolist()})")
            image_groups.append(values.astype(np.int64))
        out.append(image_groups)
    return out


def multi_person_groups(image_groups: Sequence[np.ndarray], single_person: Sequence[int]) -> List[np.ndarray]:
    """The groups of one image that the multi-person evaluation scores (``getMultiPersonGroups.m``): those
    with no single-person person.

    Args:
      image_groups: the image's groups (:func:`read_groups`). single_person: its single-person annorects
        (1-based).
    """
    single = set(int(j) for j in single_person)
    return [g for g in image_groups if not any(int(j) in single for j in g)]


def detection_centres(pose2d_lcr: np.ndarray) -> np.ndarray:
    """(D, 13, 2) LCR-13 pixels -> (D, 2) body centres (mean of hips and shoulders), pixels."""
    poses = np.asarray(pose2d_lcr, np.float64).reshape(-1, skeleton_lib.LCR13.num_joints, 2)
    return skeleton_lib.body_centre(poses, skeleton_lib.LCR13)[:, 0, :]


def pair_by_objpos(centres: np.ndarray, scores: np.ndarray, objpos: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Test single-person people <- detections (module docstring).

    Args:
      centres: (D, 2) detection centres, pixels; scores: (D,).
      objpos: (R, 2) the people's ``objpos``, pixels (same convention); scale: (R,) their ``scale``.
    Returns:
      (D,) int: the person (0..R-1) each detection is paired with, or -1.
    """
    c = np.asarray(centres, np.float64).reshape(-1, 2)
    o = np.asarray(objpos, np.float64).reshape(-1, 2)
    radius = OBJPOS_RADIUS * PERSON_HEIGHT_PX * np.asarray(scale, np.float64).reshape(-1)
    link = np.full((c.shape[0],), -1, np.int64)
    if not (c.size and o.size):
        return link
    # (D, R) distances in units of each person's radius; NaN centres (a detection without hips and
    # shoulders) never pair.
    dist = np.linalg.norm(c[:, None] - o[None], axis=-1) / radius[None]
    free = np.ones((o.shape[0],), bool)
    for d in np.argsort(-np.asarray(scores, np.float64).reshape(-1), kind="stable"):  # a few per image
        ok = free & (dist[d] <= 1.0)
        if ok.any():
            r = int(np.flatnonzero(ok)[np.argmin(dist[d][ok])])
            link[d], free[r] = r, False
    return link


def assign_to_groups(centres: np.ndarray, boxes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Detections -> the group whose region holds them (module docstring).

    Args:
      centres: (D, 2) detection centres, pixels.
      boxes: (K, 4) the groups' ``objpos`` boxes x1, y1, x2, y2, pixels; scales: (K,) their mean ``scale``.
    Returns:
      (D,) int: the group (0..K-1) of each detection, or -1.
    """
    c = np.asarray(centres, np.float64).reshape(-1, 2)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    out = np.full((c.shape[0],), -1, np.int64)
    if not (c.size and b.size):
        return out
    gap = np.maximum(np.maximum(b[None, :, :2] - c[:, None], c[:, None] - b[None, :, 2:]), 0.0)  # (D, K, 2)
    dist = np.linalg.norm(gap, axis=-1) / (PERSON_HEIGHT_PX * np.asarray(scales, np.float64).reshape(1, -1))
    dist = np.where(np.isfinite(dist), dist, np.inf)
    best = np.argmin(dist, axis=1)
    near = dist[np.arange(c.shape[0]), best] <= GROUP_MARGIN
    out[near] = best[near]
    return out


def group_region(objpos: Sequence[Optional[np.ndarray]], scales: Sequence[Optional[float]]):
    """A group's ``objpos`` box (4,) and mean scale from its people's (None where a person lacks one);
    (None, None) when no person of the group has both."""
    points = [np.asarray(o, np.float64) for o, s in zip(objpos, scales) if o is not None and s is not None]
    values = [float(s) for o, s in zip(objpos, scales) if o is not None and s is not None]
    if not points:
        return None, None
    p = np.stack(points)
    return np.concatenate([p.min(axis=0), p.max(axis=0)]), float(np.mean(values))
