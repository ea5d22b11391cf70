"""The figures of the MPII Human Pose evaluation toolkit (evalMPII), computed here by its definitions on the
files of :mod:`lcr_tf.evaluation.native_mpii` exactly as written, in MPII's joints, beside the package's
own LCR-13 figures (:mod:`lcr_tf.evaluation.protocols`), which differ by definition.

The toolkit scores 14 joints (:data:`TOOLKIT_JOINTS`: MPII's 16 without pelvis and thorax, in the order of
``annolist2matrix.m`` and of ``assignGTmulti.m``'s LSP map), and labels its tables in body parts, each the
**mean of the left and right joints' figures** (``genTablePCK.m``, ``genTableAP.m``), its "Head" being the
mean of upper neck and head top. The package pools left and right annotations instead, and its "head" is
LCR-13's head centre. Where the two skeletons agree, on the 12 limb joints, both are given as their own
figure (``limbs12``).

* :func:`single_person_pckh` (``evaluatePCKh.m``): every single-person person with an ``objpos``
  (``flatten_annolist.m``), its annotated joints against the joints written in its rect of
  ``pred_keypoints_mpii.mat``; a joint not written counts as missed (the toolkit turns it into ``inf``),
  so does every joint of a person without a paired detection. Per joint, the share of annotated joints
  within ``alpha`` head sizes (``computePCK.m``); ``ubody`` pools wrists, elbows and shoulders, ``total``
  all 14 joints, ``limbs12`` the 12 limb joints (the same pooling).
* :func:`multi_person_ap` (``evaluateAP.m`` with ``assignGTmulti.m``): per entry of
  ``pred_keypoints_mpii_multi.mat``, every predicted person is compared with every ground-truth person of
  the entry by the share of the latter's annotated joints within ``alpha`` head sizes; a prediction keeps
  only its best ground truth, then each ground truth takes the prediction with the highest share (the
  first on ties), a share of 0 taking none. A matched prediction's joints are true positives where within
  ``alpha``, an unmatched one's all false positives; every annotated joint is a positive. Per joint the
  predictions of all entries are ranked by their point's score (stable on ties: ``sort(..., 'descend')``),
  and AP is PASCAL VOC's all-point AP (``getRPC.m``, ``VOCap.m``); ``total`` is the mean of the 14 APs,
  ``limbs12`` that of the 12 limb joints. Entries without ground-truth people (by image: images without
  multi-person people) are not scored.

Fractions in [0, 1] (the toolkit prints percentages); None where nothing was annotated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.evaluation import mpii_groups
from lcr_tf.evaluation import pose2d as pose2d_lib

if TYPE_CHECKING:  # the tables import this module, and the ground truth imports the tables
    from lcr_tf.evaluation.ground_truth import GroundTruth

MPII = skeleton_lib.MPII16
#: The toolkit's 14 joints, in its order (``annolist2matrix.m``, ``assignGTmulti.m``'s ``jidxMap``).
TOOLKIT_JOINTS = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
                  "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "upper_neck",
                  "head_top")
#: The 12 limb joints, which LCR-13 and MPII share.
LIMB_JOINTS = TOOLKIT_JOINTS[:12]
#: ``genTablePCK.m`` / ``genTableAP.m``'s columns: the two joints averaged into each.
PARTS = (("head", ("upper_neck", "head_top")), ("shoulder", ("right_shoulder", "left_shoulder")),
         ("elbow", ("right_elbow", "left_elbow")), ("wrist", ("right_wrist", "left_wrist")),
         ("hip", ("right_hip", "left_hip")), ("knee", ("right_knee", "left_knee")),
         ("ankle", ("right_ankle", "left_ankle")))
#: ``computePCK.m``'s "UBody": wrists, elbows and shoulders pooled.
UPPER_BODY = TOOLKIT_JOINTS[6:12]
# The multi-person file's entries, as the table says.
GROUPING_LABEL = {mpii_groups.BY_GROUPS: "the groups of groups_v12.mat",
                  mpii_groups.BY_IMAGE: "images, no --mpii_groups"}
_IDS = MPII.indices(TOOLKIT_JOINTS)
_COL = {name: k for k, name in enumerate(TOOLKIT_JOINTS)}


def _num(value) -> Optional[float]:
    value = float(value)
    return value if np.isfinite(value) else None


def _parts(per_joint: Mapping[str, Optional[float]]) -> Dict[str, Optional[float]]:
    """genTable*.m's columns: the mean of each part's two joints (None when either is None)."""
    out = {}
    for part, (a, b) in PARTS:
        va, vb = per_joint[a], per_joint[b]
        out[part] = None if va is None or vb is None else (va + vb) / 2.0
    return out


def _pooled(correct: np.ndarray, counted: np.ndarray, joints: Sequence[str]) -> Optional[float]:
    cols = [_COL[n] for n in joints]
    total = counted[:, cols].sum()
    return float(correct[:, cols].sum() / total) if total else None


def single_person_pckh(submission, ground_truth: Sequence[GroundTruth], alpha: float = 0.5) -> Dict[str, Any]:
    """The toolkit's single-person PCKh of one row (module docstring).

    Args:
      submission: :class:`lcr_tf.evaluation.native_mpii.Submission`. ground_truth: its images.
    Returns:
      ``{"per_joint": {joint: PCKh}, "per_part": {head..ankle}, "ubody", "total", "limbs12", "people",
      "paired"}``.
    """
    dist_rows: List[np.ndarray] = []
    paired = 0
    for gt, row in zip(ground_truth, submission.single):
        people = {pid: g for g, pid in enumerate(gt.person_ids or [])}
        for rect, points in zip(gt.annorects or (), row):  # a few rects per image
            g = people.get(rect["person_id"])
            if not (rect["single_person"] and rect["objpos"] is not None and g is not None):
                continue
            truth = np.asarray(gt.native_pose2d[g], np.float64)[_IDS]
            pred = np.full_like(truth, np.inf) if points is None else np.asarray(points, np.float64)[_IDS]
            pred = np.where(np.isnan(pred), np.inf, pred)   # evaluatePCKh.m: only the truth may be NaN
            paired += points is not None
            with np.errstate(invalid="ignore"):
                dist_rows.append(np.linalg.norm(pred - truth, axis=-1) / float(gt.head_size[g]))
    dist = np.stack(dist_rows) if dist_rows else np.zeros((0, len(TOOLKIT_JOINTS)))
    counted = ~np.isnan(dist)
    correct = counted & (np.nan_to_num(dist, nan=np.inf) <= alpha)
    per_joint = {name: _pooled(correct, counted, [name]) for name in TOOLKIT_JOINTS}
    return {"per_joint": per_joint, "per_part": _parts(per_joint), "ubody": _pooled(correct, counted, UPPER_BODY),
            "total": _pooled(correct, counted, TOOLKIT_JOINTS), "limbs12": _pooled(correct, counted, LIMB_JOINTS),
            "people": int(dist.shape[0]), "paired": int(paired)}


def _max_ignoring_nan(values: np.ndarray, axis: int) -> Tuple[np.ndarray, np.ndarray]:
    """MATLAB's ``[val, idx] = max(values, [], axis)``: NaN ignored unless all are NaN (then NaN, index 0);
    the first index on ties."""
    filled = np.where(np.isnan(values), -np.inf, values)
    idx = np.argmax(filled, axis=axis)
    all_nan = np.isnan(values).all(axis=axis)
    val = np.where(all_nan, np.nan, np.take_along_axis(filled, np.expand_dims(idx, axis), axis).squeeze(axis))
    return val, np.where(all_nan, 0, idx)


def assign_entry(pred: np.ndarray, truth: np.ndarray, head_size: np.ndarray, alpha: float = 0.5):
    """``assignGTmulti.m`` on one entry.

    Args:
      pred: (P, 14, 2) pixels, NaN where a joint is not written; truth: (G, 14, 2), NaN where not annotated;
      head_size: (G,) pixels.
    Returns:
      (labels (P, 14) bool: true positives; has_pred (P, 14) bool; has_truth (G, 14) bool).
    """
    has_pred = np.all(np.isfinite(pred), axis=-1)
    has_truth = np.all(np.isfinite(truth), axis=-1)
    p, g = len(pred), len(truth)
    labels = np.zeros(has_pred.shape, bool)
    if p == 0 or g == 0:
        return labels, has_pred, has_truth
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = np.linalg.norm(pred[:, None] - truth[None], axis=-1) / np.asarray(head_size, np.float64)[None, :, None]
        match = has_pred[:, None] & has_truth[None] & (dist <= alpha)          # (P, G, 14)
        share = match.sum(axis=2) / has_truth.sum(axis=1)[None]                 # 0 / 0 = NaN, as in MATLAB
    _, best = _max_ignoring_nan(share, axis=1)
    kept = np.zeros_like(share)
    kept[np.arange(p), best] = share[np.arange(p), best]
    val, pred_to_truth = _max_ignoring_nan(kept, axis=0)
    # Each ground truth with a share other than 0 (NaN included, as predToGT(val == 0) = 0 leaves it) keeps
    # its prediction. A prediction holds one non-zero share after the pruning, so it is kept by one ground
    # truth at most (only a truth without annotated joints, whose matches are all false, can add another).
    assigned = np.zeros((p,), bool)
    for j in np.flatnonzero(val != 0):
        d = int(pred_to_truth[j])
        if not assigned[d]:
            labels[d], assigned[d] = match[d, j], True
    return labels, has_pred, has_truth


def multi_person_ap(submission, ground_truth: Sequence[GroundTruth], alpha: float = 0.5) -> Dict[str, Any]:
    """The toolkit's multi-person AP of one row (module docstring).

    Returns:
      ``{"per_joint": {joint: AP}, "per_part": {head..ankle}, "total", "limbs12", "entries"}``.
    """
    scores: List[List[np.ndarray]] = [[] for _ in TOOLKIT_JOINTS]
    labels: List[List[np.ndarray]] = [[] for _ in TOOLKIT_JOINTS]
    positives = np.zeros((len(TOOLKIT_JOINTS),), np.int64)
    entries = 0
    for entry in submission.multi:  # one group (or image) at a time
        if not entry.annorects:
            continue
        gt = ground_truth[entry.image]
        people = {pid: g for g, pid in enumerate(gt.person_ids or [])}
        members = [people[str(j)] for j in entry.annorects if str(j) in people]
        entries += 1
        truth = np.asarray(gt.native_pose2d, np.float64).reshape(-1, MPII.num_joints, 2)[members][:, _IDS]
        pred = np.asarray(entry.points, np.float64).reshape(-1, MPII.num_joints, 2)[:, _IDS]
        lab, has_pred, has_truth = assign_entry(pred, truth, gt.head_size[members], alpha)
        positives += has_truth.sum(axis=0)
        for j in range(len(TOOLKIT_JOINTS)):
            rows = has_pred[:, j]
            scores[j].append(np.asarray(entry.scores, np.float64)[rows])
            labels[j].append(lab[rows, j])
    per_joint: Dict[str, Optional[float]] = {}
    for j, name in enumerate(TOOLKIT_JOINTS):
        if positives[j] == 0:
            per_joint[name] = None
            continue
        s = np.concatenate(scores[j]) if scores[j] else np.zeros((0,))
        lab = np.concatenate(labels[j]) if labels[j] else np.zeros((0,), bool)
        order = np.argsort(-s, kind="stable")
        tp = np.cumsum(lab[order])
        precision = tp / np.arange(1, len(tp) + 1)
        per_joint[name] = pose2d_lib.voc_average_precision(tp / positives[j], precision)
    values = [per_joint[n] for n in TOOLKIT_JOINTS]
    limbs = [per_joint[n] for n in LIMB_JOINTS]
    return {"per_joint": per_joint, "per_part": _parts(per_joint),
            "total": None if None in values else float(np.mean(values)),
            "limbs12": None if None in limbs else float(np.mean(limbs)), "entries": entries}


def limbs_pckh(pred2d, gt2d, visible, head_size, matched, skeleton="lcr13", alpha: float = 0.5):
    """The package's PCKh pooled over the 12 limb joints: (over matched people, with the annotated limb
    joints of unmatched people counted as missed), None where nothing is annotated.

    Args:
      pred2d, gt2d: (N, J, 2) pixels in ``skeleton``; visible: (N, J) bool; head_size: (N,); matched: (N,).
    """
    idx = skeleton_lib.get_skeleton(skeleton).indices(LIMB_JOINTS)
    hit = np.asarray(matched, bool).reshape(-1)
    vis = np.asarray(visible, bool)[:, idx]
    if not hit.any():
        return None, (0.0 if vis.any() else None)
    dist = pose2d_lib.normalised_distances(np.asarray(pred2d, np.float64)[hit][:, idx],
                                           np.asarray(gt2d, np.float64)[hit][:, idx], vis[hit],
                                           np.asarray(head_size, np.float64).reshape(-1)[hit])
    correct = (np.nan_to_num(dist, nan=np.inf) <= alpha).sum()
    counted = np.isfinite(dist).sum()
    everyone = counted + vis[~hit].sum()
    return (float(correct / counted) if counted else None), (float(correct / everyone) if everyone else None)


def _pct(value, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{100.0 * value:>{width}.1f}"


def format_lines(results: Mapping[str, Any], methods: Sequence[str]) -> List[str]:
    """The toolkit's tables (``genTablePCK.m`` / ``genTableAP.m`` columns) of the rows that have them, and
    how the head joints were written."""
    rows = [m for m in methods if (results.get(m) or {}).get("toolkit")]
    if not rows:
        return []
    parts = [p for p, _ in PARTS]
    first = results[rows[0]]["toolkit"]
    lines = [f"MPII toolkit figures (MPII joints, left/right averaged, as written in "
             f"{first['files']['single_file']} / {first['files']['multi_file']}; a person without a detection "
             "misses every joint)",
             f"{'PCKh@0.5 (%)':<18}" + "".join(f"{p:>9}" for p in parts)
             + f"{'ubody':>9}{'total':>9}{'limbs12':>9}{'people':>8}{'paired':>8}"]
    for m in rows:
        t = results[m]["toolkit"]["pckh"]
        lines.append(f"{m:<18}" + "".join(_pct(t["per_part"][p], 9) for p in parts)
                     + f"{_pct(t['ubody'], 9)}{_pct(t['total'], 9)}{_pct(t['limbs12'], 9)}"
                     f"{t['people']:>8d}{t['paired']:>8d}")
    lines.append(f"{'AP@0.5 (%)':<18}" + "".join(f"{p:>9}" for p in parts)
                 + f"{'total':>9}{'limbs12':>9}{'entries':>8}  (entries: {GROUPING_LABEL[first['files']['grouping']]})")
    for m in rows:
        t = results[m]["toolkit"]["ap"]
        lines.append(f"{m:<18}" + "".join(_pct(t["per_part"][p], 9) for p in parts)
                     + f"{_pct(t['total'], 9)}{_pct(t['limbs12'], 9)}{t['entries']:>8d}")
    written = results.get("mpii_written_joints") or {}
    lines += [f"  {name}: {how}" for name, how in written.items() if name in ("upper_neck", "head_top")]
    return lines + file_lines(results)


def file_lines(results: Mapping[str, Any]) -> List[str]:
    """How the MPII files were made (grouping of the multi-person file, single-person people paired) and
    the images kept although their file could not be read."""
    lines = []
    for method, facts in (results.get("mpii_native_files") or {}).items():
        lines.append(f"MPII files ({method}): {facts['single_person_entries']} single-person entries, "
                     f"{facts['single_person_paired']} of {facts['single_person_rects']} single-person people with a "
                     f"detection; {facts['multi_person_entries']} multi-person entries, {facts['grouping_note']}; "
                     f"detections left out: {facts['detections_without_point_inside']} without a point inside the "
                     f"image, {facts['detections_outside_groups']} near no group")
    if results.get("unreadable_images"):
        first = results["unreadable_examples"][0]
        lines.append(f"images whose file could not be read, kept (one entry each in the MPII files; no detection "
                     f"unless the predictions hold some): {results['unreadable_images']}; first: "
                     f"{first['image_id']}: {first['reason']}")
    return lines
