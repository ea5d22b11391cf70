"""MuPoTS-3D's figures as its official evaluation computes them (``mpii_mupots_multiperson_eval.m`` with
``is_relative = 1``), from the arrays of its native prediction files (:mod:`lcr_tf.evaluation.native_mupots`).

Per frame, the annotated people are matched to the detections by the protocol's ``matching``:

* ``official`` (default): the script's greedy matching in annotation order with its 40 px per-axis gate
  (:func:`lcr_tf.evaluation.mupots_protocol.official_matching`), on the 2D of the native file;
* ``hungarian``: the package's generic one-to-one matching on the mean 2D distance over the LCR-13 joints
  (:func:`lcr_tf.evaluation.pairing.pair_people`, gated by ``--max_match_distance_px``), the evaluation of
  earlier versions.

A matched prediction and its ground truth (``univ_annot3`` by default) are both centred on their pelvis
(joint 15; the prediction's is the mid-hip when the model has no pelvis), the prediction is rescaled to
the ground truth's bone lengths when ``rescale_bones``, as the script does
(:func:`lcr_tf.evaluation.mupots_protocol.map_to_gt_bone_lengths`), and each joint's error is the
Euclidean distance in mm. An unmatched person misses every joint (the script's ``100000``); a joint the
prediction does not give (NaN: LCR-13's head top) is a miss, as in the script. 3DPCK counts errors
strictly below 150 mm; its AUC is the mean of the PCK at 0, 5,
..., 150 mm (``mpii_compute_3d_pck.m``).

The figures are given on three joint sets, from the same errors:

* ``mupots14``, the **official** figure: the 14 joints of ``mpii_get_pck_auc_joint_groups.m`` (head top,
  neck, shoulders, elbows, wrists, hips, knees, ankles). With an LCR-13 model the head top is always
  missed and the neck is the mid-shoulder.
* ``lcr13``: the 13 joints LCR-13 predicts (the 12 limb joints and MuPoTS-3D's ``head``), the package's own
  figure.
* ``limbs12``: the 12 limb joints that both skeletons share, where neither figure approximates a joint.

Per sequence, all annotated people (``*_all``: Table 8 a) and matched people only (``*_matched``: Table 8 b);
overall, the mean over sequences (how the MuPoTS-3D tables report it) and ``*_pooled`` over all people.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from lcr_tf import evaluation
from lcr_tf.contracts import serving
from lcr_tf.evaluation import mupots_protocol
from lcr_tf.evaluation.ground_truth import GroundTruth
from lcr_tf.evaluation.native_mupots import MUPOTS, to_mupots17
from lcr_tf.evaluation.pairing import methods, missing_images, pair_people
from lcr_tf.evaluation.predictions_file import model_people
from lcr_tf.evaluation.tables import SKELETON, UPPER_BOUND, num

MATCHINGS = ("official", "hungarian")
PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = np.arange(0.0, 151.0, 5.0)
_PELVIS = MUPOTS.index("pelvis")
#: Joint set -> its joints in ``mupots17`` order (module docstring); the first is the official one.
JOINT_SETS: Dict[str, np.ndarray] = {
    "mupots14": np.arange(14),
    "lcr13": MUPOTS.indices([n for n in MUPOTS.joint_names if n in SKELETON.joint_names]),
    "limbs12": MUPOTS.indices([n for n in MUPOTS.joint_names if n in SKELETON.joint_names and n != "head"]),
}
OFFICIAL_SET = "mupots14"
JOINT_SET_NOTES = {
    "mupots14": "official: MuPoTS-3D's 14 joints as its evaluation scores them; a joint the model does not "
                "predict is missed (LCR-13: head top, so at most 13/14 = 92.9 %; neck = mid-shoulder)",
    "lcr13": "the 13 joints LCR-13 predicts (12 limb joints and MuPoTS-3D's head), same matching and errors",
    "limbs12": "the 12 limb joints both skeletons share (shoulders to ankles), no joint approximated",
}
#: The official per-part groups of ``mpii_get_pck_auc_joint_groups.m`` (0-based ``mupots17`` indices).
JOINT_GROUPS = (("Head", (0,)), ("Neck", (1,)), ("Shou", (2, 5)), ("Elbow", (3, 6)), ("Wrist", (4, 7)),
                ("Hip", (8, 11)), ("Knee", (9, 12)), ("Ankle", (10, 13)))
_KEYS = ("pck3d_all", "auc_all", "pck3d_matched", "auc_matched")


def person_errors(pred3d_mm, gt3d_mm, rescale_bones: bool = True) -> np.ndarray:
    """Per-joint errors of matched people as the script computes them.

    Args:
      pred3d_mm, gt3d_mm: (N, 17, 3) millimetres, ``mupots17`` order, any origin (both are centred on their
        pelvis here).
      rescale_bones: map the prediction to the ground truth's bone lengths first.
    Returns:
      (N, 17) float64 mm; NaN where a joint is missing on either side.
    """
    pred = np.asarray(pred3d_mm, np.float64).reshape(-1, 17, 3)
    gt = np.asarray(gt3d_mm, np.float64).reshape(-1, 17, 3)
    pred = pred - pred[:, _PELVIS:_PELVIS + 1]
    gt = gt - gt[:, _PELVIS:_PELVIS + 1]
    if rescale_bones:
        pred = mupots_protocol.map_to_gt_bone_lengths(pred, gt)
    return np.linalg.norm(pred - gt, axis=-1)


def pck_scores(errors_mm, matched) -> Dict[str, Optional[float]]:
    """3DPCK@150 mm and AUC of a set of people, as ``mpii_compute_3d_pck.m`` computes them.

    Args:
      errors_mm: (N, J) mm of the joints scored (NaN counts as a miss; unmatched rows are ignored);
      matched: (N,) bool.
    Returns:
      the four fractions of :data:`_KEYS` (None over nobody): ``*_all`` with the joints of unmatched people
      as misses, ``*_matched`` over matched people only.
    """
    err = np.asarray(errors_mm, np.float64)
    hit = np.asarray(matched, bool)
    err = np.where(hit[:, None], err, np.inf)
    with np.errstate(invalid="ignore"):
        below = err[None] < AUC_THRESHOLDS_MM[:, None, None]  # (T, N, J); NaN < t is False: a miss
        at_pck = err < PCK_THRESHOLD_MM
    out: Dict[str, Optional[float]] = {}
    for suffix, rows in (("all", np.ones_like(hit)), ("matched", hit)):
        if rows.any() and err.shape[1]:
            out["pck3d_" + suffix] = num(at_pck[rows].mean())
            out["auc_" + suffix] = num(below[:, rows].mean(axis=(1, 2)).mean())
        else:
            out["pck3d_" + suffix] = out["auc_" + suffix] = None
    return out


def _mean(values: Sequence[Optional[float]]) -> Optional[float]:
    kept = [v for v in values if v is not None]
    return num(np.mean(kept)) if kept else None


def score_table(errors_mm, matched, sequences, joints: np.ndarray) -> Dict[str, Any]:
    """One joint set's figures: per sequence, their mean over sequences and pooled (module docstring).

    Args:
      errors_mm: (N, 17) mm per annotated person; matched: (N,) bool; sequences: (N,) labels ``TS<s>``.
      joints: the ``mupots17`` indices scored.
    """
    err = np.asarray(errors_mm, np.float64)[:, joints]
    hit = np.asarray(matched, bool)
    labels = np.asarray(sequences, dtype=object)
    order = sorted(dict.fromkeys(labels.tolist()), key=lambda s: (len(str(s)), str(s)))
    per_sequence = {}
    for seq in order:
        rows = labels == seq
        per_sequence[str(seq)] = dict(pck_scores(err[rows], hit[rows]), people=int(rows.sum()),
                                      matched=int((rows & hit).sum()))
    out: Dict[str, Any] = {k: _mean([r[k] for r in per_sequence.values()]) for k in _KEYS}
    out.update({k + "_pooled": v for k, v in pck_scores(err, hit).items()})
    out["per_sequence"] = per_sequence
    return out


def _official_links(gt: GroundTruth, pred2d: np.ndarray) -> np.ndarray:
    """(G,) detection index of each annotated person (-1: missed) by the official matching."""
    return mupots_protocol.official_matching(pred2d, gt.native_pose2d).gt_to_pred


def _upper_bound_links(gt: GroundTruth, entry: Mapping[str, Any]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each person's closest candidate in 2D (LCR-13 mean distance): ((G,) index or -1, candidates 2D, 3D)."""
    cand = entry.get("candidates")
    if cand is None:
        raise ValueError(f"image {gt.image_id!r}: its predictions hold no candidates")
    p2, p3 = cand[serving.POSE2D], cand[serving.POSE3D]
    links = np.full((len(gt.pose2d),), -1, np.int64)
    if len(p2) and len(gt.pose2d):
        dist = evaluation.mean_joint_distance(p2, gt.pose2d, gt.annotated)  # (M, G)
        ok = np.isfinite(dist).any(axis=0)
        best = np.argmin(np.where(np.isfinite(dist), dist, np.inf), axis=0)
        links[ok] = best[ok]
    return links, p2, p3


def _row(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]], method: str,
         matching: str, rescale_bones: bool, max_match_distance_px: Optional[float]) -> Dict[str, Any]:
    """The figures of one row (``ppi``, ``nms`` or ``upper_bound``)."""
    hungarian = None
    if matching == "hungarian" and method != UPPER_BOUND:
        hungarian = pair_people(ground_truth, predictions, method, max_match_distance_px).pred_to_gt
    errors: List[np.ndarray] = []
    matched: List[np.ndarray] = []
    detections = 0
    for i, gt in enumerate(ground_truth):  # one frame at a time: the matching is per frame
        entry = predictions[gt.image_id]
        if gt.native_pose2d is None:
            raise ValueError(f"image {gt.image_id!r}: no MuPoTS-3D annotation in its own joints (annot2)")
        if method == UPPER_BOUND:
            links, p2, p3 = _upper_bound_links(gt, entry)
            own = SKELETON.name  # candidates are kept in LCR-13 only
        else:
            det, own = model_people(entry, method)
            p2, p3 = det[serving.POSE2D], det[serving.POSE3D]
            detections += len(p2)
        pred2d, pred3d = to_mupots17(p2, p3, own)
        if method != UPPER_BOUND:
            if hungarian is None:
                links = _official_links(gt, pred2d)
            else:
                links = np.full((len(gt.pose2d),), -1, np.int64)
                paired = np.flatnonzero(hungarian[i] >= 0)
                links[hungarian[i][paired]] = paired
        hit = links >= 0
        err = np.full((len(links), MUPOTS.num_joints), np.inf)
        if hit.any():
            err[hit] = person_errors(pred3d[links[hit]], 1000.0 * gt.native_pose3d[hit], rescale_bones)
        errors.append(err)
        matched.append(hit)
    err = np.concatenate(errors) if errors else np.zeros((0, MUPOTS.num_joints))
    hit = np.concatenate(matched) if matched else np.zeros((0,), bool)
    sequences = [gt.group for gt in ground_truth for _ in range(len(gt.pose2d))]
    sets = {name: score_table(err, hit, sequences, joints) for name, joints in JOINT_SETS.items()}
    row: Dict[str, Any] = dict(sets.pop(OFFICIAL_SET))
    row["joint_sets"] = sets
    own = err[hit][:, JOINT_SETS["lcr13"]]  # matched people, the joints the model predicts
    given = np.isfinite(own)
    count = given.sum(axis=1)
    per_person = np.where(given, own, 0.0).sum(axis=1) / np.maximum(count, 1)
    row["mpjpe_mm"] = _mean([num(v) for v, c in zip(per_person, count) if c])
    groups = {}
    for name, joints in JOINT_GROUPS:  # the official per-part table, mean over sequences as its Total
        table = score_table(err, hit, sequences, np.asarray(joints))
        groups[name] = {"pck3d_all": table["pck3d_all"], "auc_all": table["auc_all"]}
    row.update(per_group=groups, people=int(hit.size), matched=int(hit.sum()), missed=int((~hit).sum()))
    if method != UPPER_BOUND:
        row["detections"] = detections
    return row


def evaluate_mupots(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                    max_match_distance_px: Optional[float] = None, matching: str = "official",
                    rescale_bones: bool = True) -> Dict[str, Any]:
    """MuPoTS-3D's rows (module docstring).

    Args:
      ground_truth: frames read with their native annotation (:func:`lcr_tf.evaluation.ground_truth.record_truth`).
      predictions: image id -> rows (scored in the model's own joints where the entries hold them:
        :func:`lcr_tf.evaluation.predictions_file.model_people`).
      max_match_distance_px: the gate of the ``hungarian`` matching (the official one has its own).
      matching: one of :data:`MATCHINGS`. rescale_bones: the official bone-length rescaling.
    Returns:
      ``{"ppi": row, "nms": row, "upper_bound": row or None, "sequences": [...], "mupots_protocol": {...}}``;
      a row holds the official ``mupots14`` figures at its top level and the others under ``joint_sets``.
    Raises:
      ValueError: an unknown matching, a gate given with the official matching, missing predictions (named).
    """
    if matching not in MATCHINGS:
        raise ValueError(f"mupots matching must be one of {', '.join(MATCHINGS)}, got {matching!r}")
    if matching == "official" and max_match_distance_px is not None:
        raise ValueError("--max_match_distance_px applies to --mupots_matching=hungarian; the official matching "
                         f"has its own gate ({mupots_protocol.MATCHING_THRESHOLD_PX:g} px on each axis)")
    missing_images(ground_truth, predictions)
    out: Dict[str, Any] = {}
    for method in methods(predictions, ground_truth):
        out[method] = _row(ground_truth, predictions, method, matching, rescale_bones, max_match_distance_px)
    out.setdefault(UPPER_BOUND, None)
    out["sequences"] = list(out["ppi"]["per_sequence"])
    out["mupots_protocol"] = {
        "matching": matching,
        "matching_rule": ("official: greedy in annotation order, joints 2-14 within "
                          f"{mupots_protocol.MATCHING_THRESHOLD_PX:g} px on both axes (mpii_multiperson_get_identity_"
                          "matching.m)" if matching == "official" else
                          "hungarian: one-to-one on the mean 2D distance over the LCR-13 joints"),
        "rescale_bones": bool(rescale_bones),
        "root": "pelvis (the model's mid-hip when it has no pelvis)",
        "joint_sets": JOINT_SET_NOTES,
        "official_joint_set": OFFICIAL_SET,
    }
    return out
