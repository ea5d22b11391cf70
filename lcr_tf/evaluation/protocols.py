"""The tables of the paper's benchmarks, from ground-truth people already paired with predictions (NumPy).

Every function takes one row per ground-truth person, in any order, with ``matched`` (N,) bool saying
whether a prediction was paired with the person; the prediction rows of unmatched people are ignored
(they may hold NaN). Poses are in one joint order (the package compares in LCR-13); 3D in metres, any
consistent frame (both poses are centred on their own body centre when ``skeleton`` is given), 2D in
pixels. Errors come out in millimetres, rates as fractions in [0, 1]; a value over nobody is None.

* :func:`h36m_table`: MPJPE and PA-MPJPE per action and their mean over actions (the literature's
  "Average" column: the mean of the per-action means, not the mean over frames, which is given too as
  ``*_pooled``), over the matched frames.
* :func:`mupots_table`: 3DPCK@150 mm and its AUC per sequence, over all annotated people (an unmatched
  person misses every joint; Table 8 a) and over matched people only (Table 8 b); the overall figures
  are the mean over sequences (as the MuPoTS-3D tables report them) and the pooled ones over all joints.
* :func:`pckh_table`: PCKh@0.5 per joint, per body part (MPII's columns: head, shoulder, elbow, wrist, hip,
  knee, ankle, left and right pooled) and in total (pooled over every annotated joint), over matched
  people, and in total counting the annotated joints of unmatched people as wrong (``pckh_0.5_all``).
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.evaluation import pose2d as pose2d_lib
from lcr_tf.evaluation import pose3d as pose3d_lib

# MPII's table columns: body part -> joint names whose annotations are pooled.
BODY_PARTS = (("head", ("head",)), ("shoulder", ("left_shoulder", "right_shoulder")),
              ("elbow", ("left_elbow", "right_elbow")), ("wrist", ("left_wrist", "right_wrist")),
              ("hip", ("left_hip", "right_hip")), ("knee", ("left_knee", "right_knee")),
              ("ankle", ("left_ankle", "right_ankle")))


def _num(value) -> Optional[float]:
    value = float(value)
    return value if math.isfinite(value) else None


def _mean(values: np.ndarray) -> Optional[float]:
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    return _num(values.mean()) if values.size else None


def _labels(labels, n: int) -> np.ndarray:
    out = np.asarray(labels, dtype=object).reshape(-1)
    if out.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {out.shape}")
    return out


def _ordered(labels: np.ndarray, order: Optional[Sequence]) -> list:
    """The distinct labels: those of ``order`` first (in its order), then the others sorted."""
    present = list(dict.fromkeys(labels.tolist()))
    first = [g for g in (order or ()) if g in present]
    return first + sorted((g for g in present if g not in first), key=str)


def person_errors(pred3d, gt3d, mask3d, matched, skeleton="lcr13"):
    """Per-person MPJPE and PA-MPJPE of the matched people.

    Args:
      pred3d, gt3d: (N, J, 3) metres; mask3d: (N, J) bool joints to compare; matched: (N,) bool.
      skeleton: centre both poses on their own body centre first (MPJPE); None compares them as given.
    Returns:
      ((N,) MPJPE mm, (N,) PA-MPJPE mm), NaN for unmatched people.
    """
    g = np.asarray(gt3d, np.float64)
    hit = np.asarray(matched, bool).reshape(-1)
    n = g.shape[0]
    mp, pa = np.full(n, np.nan), np.full(n, np.nan)
    if hit.any():
        p = np.asarray(pred3d, np.float64)[hit]
        m = np.asarray(mask3d, bool)[hit]
        mp[hit] = pose3d_lib.mpjpe(p, g[hit], skeleton, m)
        pa[hit] = pose3d_lib.pa_mpjpe(p, g[hit], m)
    return mp, pa


def h36m_table(pred3d, gt3d, mask3d, matched, actions, skeleton="lcr13",
               action_order: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Human3.6M's MPJPE / PA-MPJPE table (see the module docstring).

    Args:
      pred3d, gt3d: (N, J, 3) metres, one row per frame's person; mask3d: (N, J) bool; matched: (N,) bool.
      actions: (N,) action names. action_order: the column order (others follow, sorted).
    Returns:
      ``{"mpjpe_mm", "pa_mpjpe_mm"`` (mean over actions with a matched frame), ``"mpjpe_mm_pooled",
      "pa_mpjpe_mm_pooled"`` (mean over matched frames), ``"frames", "matched", "missed",
      "per_action": {action: {"mpjpe_mm", "pa_mpjpe_mm", "frames", "matched"}}}``.
    """
    hit = np.asarray(matched, bool).reshape(-1)
    labels = _labels(actions, hit.size)
    mp, pa = person_errors(pred3d, gt3d, mask3d, hit, skeleton)
    per_action = {}
    for action in _ordered(labels, action_order):  # ~15 actions, each one mask
        rows = labels == action
        per_action[str(action)] = {"mpjpe_mm": _mean(mp[rows]), "pa_mpjpe_mm": _mean(pa[rows]),
                                   "frames": int(rows.sum()), "matched": int((rows & hit).sum())}
    def over_actions(key):
        return _mean([np.nan if r[key] is None else r[key] for r in per_action.values()])

    return {"mpjpe_mm": over_actions("mpjpe_mm"), "pa_mpjpe_mm": over_actions("pa_mpjpe_mm"),
            "mpjpe_mm_pooled": _mean(mp), "pa_mpjpe_mm_pooled": _mean(pa),
            "frames": int(hit.size), "matched": int(hit.sum()), "missed": int((~hit).sum()),
            "per_action": per_action}


_PCK_KEYS = ("pck3d_all", "auc_all", "pck3d_matched", "auc_matched")


def mupots_table(pred3d, gt3d, mask3d, matched, sequences, skeleton="lcr13") -> Dict[str, Any]:
    """MuPoTS-3D's 3DPCK / AUC table (see the module docstring).

    Args:
      pred3d, gt3d: (N, J, 3) metres, one row per annotated person; mask3d: (N, J) bool annotated joints;
      matched: (N,) bool. sequences: (N,) sequence labels (e.g. ``"TS1"``), ordered by their number.
    Returns:
      ``{"pck3d_all", "auc_all", "pck3d_matched", "auc_matched"`` (means over sequences), the same keys
      with ``_pooled`` (all joints together), ``"people", "matched", "missed", "mpjpe_mm"`` (matched people,
      body-centred), ``"per_sequence": {label: {the four keys, "people", "matched"}}}``.
    """
    hit = np.asarray(matched, bool).reshape(-1)
    labels = _labels(sequences, hit.size)
    p = np.asarray(pred3d, np.float64)
    g = np.asarray(gt3d, np.float64)
    m = np.asarray(mask3d, bool)
    order = sorted(dict.fromkeys(labels.tolist()), key=lambda s: (len(str(s)), str(s)))
    per_sequence = {}
    for seq in order:  # 20 sequences
        rows = labels == seq
        scores = pose3d_lib.mupots_scores(p[rows], g[rows], hit[rows], m[rows], skeleton)
        per_sequence[str(seq)] = {k: _num(scores[k]) for k in _PCK_KEYS}
        per_sequence[str(seq)].update(people=int(rows.sum()), matched=int((rows & hit).sum()))
    out: Dict[str, Any] = {}
    for key in _PCK_KEYS:
        out[key] = _mean([np.nan if r[key] is None else r[key] for r in per_sequence.values()])
    if hit.size:
        pooled = pose3d_lib.mupots_scores(p, g, hit, m, skeleton)
        out.update({k + "_pooled": _num(pooled[k]) for k in _PCK_KEYS})
    else:
        out.update({k + "_pooled": None for k in _PCK_KEYS})
    mp, _ = person_errors(p, g, m, hit, skeleton)
    out.update(people=int(hit.size), matched=int(hit.sum()), missed=int((~hit).sum()), mpjpe_mm=_mean(mp),
               per_sequence=per_sequence)
    return out


def pckh_table(pred2d, gt2d, visible, head_size, matched, skeleton="lcr13", alpha: float = 0.5,
               curve_alphas: Sequence[float] = ()) -> Dict[str, Any]:
    """PCKh per joint, per body part and in total (see the module docstring).

    Args:
      pred2d, gt2d: (N, J, 2) pixels; visible: (N, J) bool annotated joints; head_size: (N,) pixels
      (positive where the person is matched); matched: (N,) bool.
      curve_alphas: thresholds (head sizes) of ``pckh_curve``.
    Returns:
      ``{"pckh_0.5", "pckh_0.5_all", "pckh_per_joint" (J), "pckh_per_part" {part: value}, "pckh_curve",
      "people", "matched", "missed"}``.
    """
    skel = skeleton_lib.get_skeleton(skeleton)
    hit = np.asarray(matched, bool).reshape(-1)
    vis = np.asarray(visible, bool)
    j = vis.shape[1] if vis.ndim == 2 else skel.num_joints
    out: Dict[str, Any] = {"people": int(hit.size), "matched": int(hit.sum()), "missed": int((~hit).sum())}
    if hit.any():
        args = (np.asarray(pred2d, np.float64)[hit], np.asarray(gt2d, np.float64)[hit], vis[hit],
                np.asarray(head_size, np.float64).reshape(-1)[hit])
        dist = pose2d_lib.normalised_distances(*args)                      # (M, J), NaN where not annotated
        correct = np.nan_to_num(dist, nan=np.inf) <= alpha
        counted = np.isfinite(dist)
        total = counted.sum()
        out["pckh_0.5"] = _num(correct.sum() / total) if total else None
        all_total = total + vis[~hit].sum()
        out["pckh_0.5_all"] = _num(correct.sum() / all_total) if all_total else None
        per_joint = pose2d_lib.pckh_per_joint(*args, alpha=alpha)
        out["pckh_per_joint"] = [_num(v) for v in per_joint]
        parts = {}
        for part, names in BODY_PARTS:
            idx = [skel.index(n) for n in names if n in skel.joint_names]
            n_part = counted[:, idx].sum()
            parts[part] = _num(correct[:, idx].sum() / n_part) if n_part else None
        out["pckh_per_part"] = parts
        out["pckh_curve"] = ([_num(v) for v in pose2d_lib.pckh_curve(*args, curve_alphas)]
                             if len(curve_alphas) else [])
    else:
        out.update({"pckh_0.5": None, "pckh_0.5_all": (0.0 if vis.any() else None),
                    "pckh_per_joint": [None] * j, "pckh_per_part": {p: None for p, _ in BODY_PARTS},
                    "pckh_curve": [None] * len(curve_alphas)})
    return out
