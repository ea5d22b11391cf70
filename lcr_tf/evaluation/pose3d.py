"""3D pose metrics: MPJPE (body-centred), Procrustes-aligned MPJPE, 3DPCK and its AUC.

Conventions: poses are (N, J, 3) arrays in **metres** in any consistent frame (the package uses camera axes,
x right / y down / z away); errors come out in **millimetres**. Person ``n`` of ``pred`` is compared with
person ``n`` of ``gt`` (pair them first, e.g. with :func:`lcr_tf.evaluation.match_detections`).

* :func:`mpjpe` — mean Euclidean joint error. With ``skeleton`` given, both poses are first centred on their
  own body centre (mean of hips and shoulders, :func:`lcr_tf.contracts.skeleton.centre_poses`), so a global shift
  does not count: the paper's "Abs." protocol on body-centred poses. With ``skeleton=None`` the poses are
  compared as given (use it when they are already centred, as the package's 3D outputs are).
* :func:`pa_mpjpe` — MPJPE after the similarity transform (rotation, translation, isotropic scale) that best
  maps the prediction onto the ground truth in the least-squares sense (Procrustes / Umeyama, reflections
  excluded): the literature's "Align." / PA-MPJPE (Human3.6M protocols P1-P3).
* :func:`pck3d`, :func:`pck3d_curve`, :func:`pck3d_auc` — MuPoTS-3D / MPI-INF-3DHP 3DPCK: the fraction of
  annotated joints whose 3D error is below 150 mm, and its area under the curve over the thresholds
  0, 5, ..., 150 mm (the mean of the 31 PCK values, as the MPI-INF-3DHP evaluation computes it). Both can
  be taken over all annotated people, with people that no detection was matched to counting every joint
  as a miss (Table 8 a), or over matched people only (Table 8 b).
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.evaluation import _checks

# Thresholds of the 3DPCK curve whose mean is the AUC (MPI-INF-3DHP / MuPoTS-3D), millimetres.
AUC_THRESHOLDS_MM = np.arange(0.0, 151.0, 5.0)
PCK3D_THRESHOLD_MM = 150.0


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, J) values, (N, J) bool -> (N,) mean over masked joints; NaN for a person with none."""
    count = mask.sum(axis=1)
    total = np.where(mask, values, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def joint_errors_mm(pred, gt, skeleton=None, mask=None) -> np.ndarray:
    """Per-joint Euclidean errors.

    Args:
      pred, gt: (N, J, 3) metres.
      skeleton: a skeleton (or its name) to centre both poses on their body centre first; None compares
        the poses as given.
      mask: (N, J) bool, the joints to evaluate (default all). Unused joints may hold NaN, but the four
        centre joints must be finite when ``skeleton`` is given.
    Returns:
      (N, J) float64 millimetres; NaN where ``mask`` is False.
    """
    p, g = _checks.as_pair(pred, gt, 3)
    m = _checks.as_mask("mask", mask, p.shape[:2])
    if skeleton is not None:
        skel = skeleton_lib.get_skeleton(skeleton)
        centre = np.zeros_like(m)
        centre[:, skel.centre_joints] = True
        _checks.check_finite("pred (body-centre joints)", p, centre)
        _checks.check_finite("gt (body-centre joints)", g, centre)
        p = skeleton_lib.centre_poses(p, skel)
        g = skeleton_lib.centre_poses(g, skel)
    _checks.check_finite("pred", p, m)
    _checks.check_finite("gt", g, m)
    err = 1000.0 * np.linalg.norm(np.where(m[..., None], p - g, 0.0), axis=-1)
    return np.where(m, err, np.nan)


def mpjpe(pred, gt, skeleton=None, mask=None) -> np.ndarray:
    """Mean per-joint position error.

    Args:
      pred, gt: (N, J, 3) metres.
      skeleton: None compares the poses as given; a skeleton (or its name, e.g. ``"lcr13"``) first
        subtracts from each pose, predicted and ground truth alike, its own body centre (mean of hips and
        shoulders), so the error ignores where the person is.
      mask: (N, J) bool joints to average over (default all).
    Returns:
      (N,) float64 millimetres; NaN for a person with no joint in ``mask``.
    """
    p, _ = _checks.as_pair(pred, gt, 3)
    m = _checks.as_mask("mask", mask, p.shape[:2])
    return _masked_mean(joint_errors_mm(pred, gt, skeleton, m), m)


def procrustes_align(pred, gt, mask=None) -> np.ndarray:
    """Maps each predicted pose onto its ground truth by the best similarity transform.

    Solves ``min_{s, R, t} sum_j m_j |s R p_j + t - g_j|^2`` per person in closed form (SVD of the 3x3
    cross-covariance; the sign of the last singular direction is flipped when needed so that R is a proper
    rotation, det R = +1, never a reflection). Vectorised over people.

    Args:
      pred, gt: (N, J, 3) metres.
      mask: (N, J) bool, the joints the transform is fitted on (default all); at least 3 per person.
    Returns:
      (N, J, 3) float64: ``s R pred + t`` for every joint (also the unmasked ones, where finite).
    """
    p, g = _checks.as_pair(pred, gt, 3)
    m = _checks.as_mask("mask", mask, p.shape[:2])
    _checks.check_finite("pred", p, m)
    _checks.check_finite("gt", g, m)
    few = m.sum(axis=1) < 3
    if few.any():
        raise ValueError(f"Procrustes alignment needs at least 3 joints per person; person "
                         f"{int(np.argmax(few))} has {int(m.sum(axis=1)[np.argmax(few)])}")
    w = m[..., None].astype(np.float64)
    count = w.sum(axis=1, keepdims=True)
    p0 = np.where(m[..., None], p, 0.0)
    g0 = np.where(m[..., None], g, 0.0)
    mu_p = p0.sum(axis=1, keepdims=True) / count
    mu_g = g0.sum(axis=1, keepdims=True) / count
    x = (p0 - mu_p) * w
    y = (g0 - mu_g) * w
    # Row-vector convention: aligned = s * x @ A + mu_g with A = U D V^T from svd(x^T y) = U S V^T.
    h = np.einsum("nji,njk->nik", x, y)
    u, sing, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    d = np.where(d == 0, 1.0, d)
    signs = np.ones_like(sing)
    signs[:, -1] = d
    a = np.einsum("nij,nj,njk->nik", u, signs, vt)
    var_p = (x ** 2).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(var_p > 0, (sing * signs).sum(axis=1) / var_p, 0.0)
    return scale[:, None, None] * np.einsum("nji,nik->njk", p - mu_p, a) + mu_g


def pa_mpjpe(pred, gt, mask=None) -> np.ndarray:
    """MPJPE after Procrustes alignment (rotation, translation and scale), the "Align." protocol.

    Args:
      pred, gt: (N, J, 3) metres.
      mask: (N, J) bool joints to fit and average over (default all; at least 3 per person).
    Returns:
      (N,) float64 millimetres.
    """
    p, g = _checks.as_pair(pred, gt, 3)
    m = _checks.as_mask("mask", mask, p.shape[:2])
    aligned = procrustes_align(p, g, m)
    return mpjpe(np.where(m[..., None], aligned, 0.0), np.where(m[..., None], g, 0.0), None, m)


def _pck_errors(pred, gt, mask, matched, matched_only, skeleton):
    """(N, J) errors in mm with +inf for unmatched people, and the (N, J) mask of joints that count."""
    g = _checks.as_poses("gt", gt, 3)
    p = _checks.as_poses("pred", pred, 3)
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {p.shape} vs {g.shape}")
    m = _checks.as_mask("mask", mask, g.shape[:2])
    hit = _checks.as_mask("matched", matched, g.shape[:1])
    # An unmatched person's prediction row is a placeholder (often NaN): never read it.
    use = m & hit[:, None]
    _checks.check_finite("gt", g, m)
    err = joint_errors_mm(np.where(hit[:, None, None], p, 0.0), g, skeleton, use)
    err = np.where(use, err, np.inf)
    counted = use if matched_only else m
    return err, counted


def pck3d_curve(pred, gt, thresholds_mm: Sequence[float], mask=None, matched=None,
                matched_only: bool = False, skeleton=None) -> np.ndarray:
    """3DPCK at several thresholds: fraction of counted joints whose 3D error is strictly below each.

    Args:
      pred: (N, J, 3) metres, the prediction paired with each ground-truth person; rows of unmatched
        people are ignored (they may hold NaN).
      gt: (N, J, 3) metres, every annotated person.
      thresholds_mm: (T,) millimetres.
      mask: (N, J) bool annotated joints (default all).
      matched: (N,) bool, whether a detection was matched to the person (default all).
      matched_only: False counts the joints of unmatched people as misses (Table 8 a); True leaves those
        people out (Table 8 b).
      skeleton: as in :func:`mpjpe` (centre both poses on the body centre first), or None.
    Returns:
      (T,) float64 fractions in [0, 1]; NaN where no joint counts.
    """
    err, counted = _pck_errors(pred, gt, mask, matched, matched_only, skeleton)
    t = np.asarray(thresholds_mm, dtype=np.float64).reshape(-1)
    hits = ((err[counted][None, :] < t[:, None])).sum(axis=1)
    total = counted.sum()
    return hits / total if total else np.full(t.shape, np.nan)


def pck3d(pred, gt, threshold_mm: float = PCK3D_THRESHOLD_MM, mask=None, matched=None,
          matched_only: bool = False, skeleton=None) -> float:
    """3DPCK: fraction of counted joints within ``threshold_mm`` (default 150 mm). See :func:`pck3d_curve`."""
    return float(pck3d_curve(pred, gt, [threshold_mm], mask, matched, matched_only, skeleton)[0])


def pck3d_auc(pred, gt, thresholds_mm: Sequence[float] = AUC_THRESHOLDS_MM, mask=None, matched=None,
              matched_only: bool = False, skeleton=None) -> float:
    """Area under the 3DPCK curve: the mean of the PCK values at 0, 5, ..., 150 mm (a fraction)."""
    return float(np.mean(pck3d_curve(pred, gt, thresholds_mm, mask, matched, matched_only, skeleton)))


def mupots_scores(pred, gt, matched=None, mask=None, skeleton=None) -> Dict[str, float]:
    """The four MuPoTS-3D figures of Table 8 for one set of people (e.g. a sequence).

    Args: as :func:`pck3d_curve`.
    Returns:
      ``{"pck3d_all", "auc_all", "pck3d_matched", "auc_matched"}`` fractions: 3DPCK@150 mm and its AUC
      over all annotated people (unmatched people miss every joint) and over matched people only.
    """
    out = {}
    for key, only in (("all", False), ("matched", True)):
        out["pck3d_" + key] = pck3d(pred, gt, PCK3D_THRESHOLD_MM, mask, matched, only, skeleton)
        out["auc_" + key] = pck3d_auc(pred, gt, AUC_THRESHOLDS_MM, mask, matched, only, skeleton)
    return out
