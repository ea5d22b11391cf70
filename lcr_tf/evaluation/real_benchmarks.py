"""The real benchmarks (``h36m``, ``mpii``, ``mupots``): ground truth from the dataset readers, detections
from a SavedModel or a predictions file, and the tables described in :mod:`lcr_tf.evaluate`
(:mod:`lcr_tf.evaluation.protocols`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from lcr_tf import evaluation
from lcr_tf.contracts import serving
from lcr_tf.evaluation import native_results, protocols
from lcr_tf.evaluation.detect import predict, refused_summary
from lcr_tf.evaluation.ground_truth import GroundTruth, read_dataset
from lcr_tf.evaluation.pairing import Pairing, concat, groups_of, methods, missing_images, pair_people, stack
from lcr_tf.evaluation.predictions_file import read_predictions, write_predictions
from lcr_tf.evaluation.tables import PCKH_ALPHA, PCKH_CURVE_ALPHAS, SKELETON, UPPER_BOUND, format_real_table, num

JOINTS_NOTE = ("compared in LCR-13 (the model's joints): the dataset's ground truth converted with "
               "lcr_tf.contracts.skeleton.convert (head = midpoint of neck and head top where the dataset has no head "
               "centre); joints the conversion cannot derive are left out through the masks")
MPII_HEAD_SIZE = "MPII: 0.6 x the diagonal of the person's head box (lcr_tf.evaluation.mpii_head_size)"
MPII_GROUPS_NOTE = ("groups_v12.mat (the MPII toolkit's multi-person groups) is not in the annotation release: "
                    "each image's multi-person people form one group; its predictions are the image's "
                    "detections not matched to one of its single-person people")
MUPOTS_3D_NOTE = {
    "univ": "univ_annot3: the poses rescaled to MuPoTS-3D's universal skeleton, which its own evaluation "
            "scores against (it takes out the subjects' sizes, which a monocular method cannot observe)",
    "annot3": "annot3: the metric poses of the motion capture, at the subjects' own sizes",
}
# Human3.6M's actions in the column order of the literature's tables (others follow, sorted).
H36M_ACTIONS = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
                "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether")


def _rows_3d(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
             max_match_distance_px: Optional[float], table: Callable[..., Dict[str, Any]],
             top_one: bool = False) -> Dict[str, Any]:
    """One row per method of a 3D benchmark: ``table(pred3d, gt3d, mask3d, matched, groups)`` on the people
    paired by :func:`pair_people` (``upper_bound`` None when the predictions hold no candidates)."""
    missing_images(ground_truth, predictions)
    gt3d = stack(ground_truth, "pose3d", (SKELETON.num_joints, 3))
    mask3d = concat([gt.pose3d_mask for gt in ground_truth], (SKELETON.num_joints,)).astype(bool)
    groups = groups_of(ground_truth)
    out: Dict[str, Any] = {}
    for method in methods(predictions, ground_truth):
        pairing = pair_people(ground_truth, predictions, method, max_match_distance_px, top_one=top_one)
        row = table(pairing.pose3d, gt3d, mask3d, pairing.matched, groups)
        if method != UPPER_BOUND:
            row["detections"] = pairing.detections
        out[method] = row
    out.setdefault(UPPER_BOUND, None)
    return out


def evaluate_h36m(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                  max_match_distance_px: Optional[float] = None) -> Dict[str, Any]:
    """Human3.6M's rows: MPJPE / PA-MPJPE per action and averaged (module docstring)."""
    present = set(groups_of(ground_truth).tolist())
    order = [a for a in H36M_ACTIONS if a in present] + sorted(present - set(H36M_ACTIONS))
    out = _rows_3d(ground_truth, predictions, max_match_distance_px,
                   lambda p, g, m, matched, actions: protocols.h36m_table(p, g, m, matched, actions, SKELETON,
                                                                           order),
                   top_one=True)
    out["actions"] = order
    return out


def evaluate_mupots(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                    max_match_distance_px: Optional[float] = None) -> Dict[str, Any]:
    """MuPoTS-3D's rows: 3DPCK@150 mm and AUC per sequence, all people and matched people (module docstring)."""
    out = _rows_3d(ground_truth, predictions, max_match_distance_px,
                   lambda p, g, m, matched, sequences: protocols.mupots_table(p, g, m, matched, sequences,
                                                                              SKELETON))
    out["sequences"] = list(out["ppi"]["per_sequence"])
    return out


def evaluate_mpii(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                  max_match_distance_px: Optional[float] = None) -> Dict[str, Any]:
    """MPII's rows: single-person PCKh@0.5 and multi-person AP, per joint, per body part (module docstring)."""
    missing_images(ground_truth, predictions)
    j = SKELETON.num_joints
    gt2d = stack(ground_truth, "pose2d", (j, 2))
    vis = concat([gt.annotated for gt in ground_truth], (j,)).astype(bool)
    head = stack(ground_truth, "head_size", ())
    single = concat([gt.single_person for gt in ground_truth], ()).astype(bool)
    out: Dict[str, Any] = {}
    for method in methods(predictions, ground_truth):
        pairing = pair_people(ground_truth, predictions, method, max_match_distance_px)
        row = protocols.pckh_table(pairing.pose2d[single], gt2d[single], vis[single], head[single],
                                   pairing.matched[single], SKELETON, PCKH_ALPHA, PCKH_CURVE_ALPHAS)
        if method != UPPER_BOUND:
            row["detections"] = pairing.detections
            row.update(_mpii_ap(ground_truth, {gt.image_id: predictions[gt.image_id][method]
                                               for gt in ground_truth}, pairing))
        out[method] = row
    out.setdefault(UPPER_BOUND, None)
    out["single_person_people"] = int(single.sum())
    out["multi_person_people"] = int((~single).sum())
    return out


def _mpii_ap(ground_truth: Sequence[GroundTruth], people: Mapping[str, Mapping[str, np.ndarray]],
             pairing: Pairing) -> Dict[str, Any]:
    """MPII's multi-person AP: each image's multi-person people one group (module docstring)."""
    j = SKELETON.num_joints
    groups: Dict[str, List[np.ndarray]] = {k: [] for k in ("p2", "s", "g2", "vis", "hs", "in")}
    for gt, link in zip(ground_truth, pairing.pred_to_gt):
        multi = ~gt.single_person
        if not multi.any():
            continue
        det = people[gt.image_id]
        # Detections paired with a single-person person belong to that person, not to the group.
        taken = np.zeros(link.shape, bool)
        paired = link >= 0
        taken[paired] = gt.single_person[link[paired]]
        keep = ~taken
        for key, value in (("p2", det[serving.POSE2D][keep]), ("s", det[serving.SCORE][keep]), ("g2", gt.pose2d[multi]),
                           ("vis", gt.annotated[multi]), ("hs", gt.head_size[multi]),
                           ("in", gt.inside(det[serving.POSE2D][keep]))):
            groups[key].append(value)
    if not groups["g2"]:
        return {"ap": None, "ap_per_joint": [None] * j, "ap_per_part": {p: None for p, _ in protocols.BODY_PARTS},
                "groups": 0}
    ap = evaluation.mpii_multi_person_ap(groups["p2"], groups["s"], groups["g2"], groups["vis"], groups["hs"],
                                         PCKH_ALPHA, pred_present=groups["in"])
    parts = {}
    for part, names in protocols.BODY_PARTS:
        values = ap.per_joint[SKELETON.indices(names)]
        parts[part] = num(np.mean(values)) if np.all(np.isfinite(values)) else None
    return {"ap": num(ap.mean), "ap_per_joint": [num(v) for v in ap.per_joint], "ap_per_part": parts,
            "groups": len(groups["g2"])}


_EVALUATORS = {"h36m": evaluate_h36m, "mpii": evaluate_mpii, "mupots": evaluate_mupots}


def evaluate_dataset(dataset: str, data: str, saved_model: Optional[str] = None, predictions: Optional[str] = None,
                     max_images: int = 0, save_predictions: Optional[str] = None,
                     max_match_distance_px: Optional[float] = None, protocol: Optional[str] = None,
                     split: Optional[str] = None, reader_options: Sequence[str] = (), mupots_3d: str = "univ",
                     report_dir: Optional[str] = None, report_notes: Sequence[str] = (),
                     results_dir: Optional[str] = None) -> Dict[str, Any]:
    """A real benchmark (``h36m``, ``mpii``, ``mupots``): ground truth from its reader (``data`` = ROOT),
    detections from a SavedModel or a predictions file; the tables of the module docstring. With
    ``results_dir`` the detections are also written in the benchmark's own results format
    (:mod:`lcr_tf.evaluation.native_results`, ``mpii`` and ``mupots``), listed in ``"results_files"``.

    Raises:
      ValueError: bad options, predictions that miss an image or are malformed (named); FileNotFoundError.
    """
    if bool(saved_model) == bool(predictions):
        raise ValueError("give exactly one of saved_model and predictions")
    ground_truth, info = read_dataset(dataset, data, protocol, split, reader_options, max_images, mupots_3d)
    if saved_model:
        refused: List[Dict[str, str]] = []
        preds = predict(saved_model, ground_truth, refused=refused)
        if save_predictions:
            write_predictions(save_predictions, preds, dataset)
    else:
        preds = read_predictions(predictions, dataset)
    results: Dict[str, Any] = {"dataset": dataset, "num_images": len(ground_truth),
                               "num_people": int(sum(len(gt.pose2d) for gt in ground_truth)),
                               "joints": list(SKELETON.joint_names), "joints_note": JOINTS_NOTE}
    results.update(info)
    if saved_model:
        results.update(refused_summary(refused))
    if dataset == "mpii":
        results.update(head_size=MPII_HEAD_SIZE, groups_note=MPII_GROUPS_NOTE,
                       pckh_curve_alphas=list(PCKH_CURVE_ALPHAS))
    if dataset == "mupots":
        results["reference_3d"] = MUPOTS_3D_NOTE[mupots_3d]
        results["pck3d_threshold_mm"] = 150.0
        results["auc_thresholds_mm"] = [float(t) for t in np.arange(0.0, 151.0, 5.0)]
    results.update(_EVALUATORS[dataset](ground_truth, preds, max_match_distance_px))
    if results_dir:
        native_results.resolve_results_format(dataset, native_results.NATIVE)
        results["results_files"] = native_results.write_native_results(dataset, results_dir, ground_truth, preds,
                                                                       max_match_distance_px)
    if report_dir:
        _write_real_report(report_dir, results, ground_truth, preds, report_notes)
    return results


def _write_real_report(report_dir: str, results: Mapping[str, Any], ground_truth: Sequence[GroundTruth],
                       predictions: Mapping[str, Mapping[str, Any]], notes: Sequence[str]) -> None:
    """The markdown report of :mod:`lcr_tf.evaluation.report`, with the dataset's tables as notes; the pictures show
    the first images (loaded here). MPII has no 3D, so it gets the overlays but no 3D plot."""
    from lcr_tf.evaluation import report
    shown = []
    for gt in list(ground_truth)[:8]:
        try:
            encoded = gt.image_bytes()
        except (OSError, ValueError):
            continue
        width, height = gt.width, gt.height
        if not (width and height):
            import io

            from PIL import Image
            with Image.open(io.BytesIO(encoded)) as image:
                width, height = image.size
        shown.append(dataclasses.replace(gt, encoded=encoded, width=int(width), height=int(height)))
    lines = list(notes) + ["", "```", format_real_table(results), "```"]
    title = f"LCR-Net on {results['dataset']}"
    if results["dataset"] == "mpii":
        report.write_report(report_dir, results, None, None, title=title, notes=lines)
        if shown:
            report.plot_overlays(shown, predictions, os.path.join(report_dir, report.OVERLAYS_PNG))
            with open(os.path.join(report_dir, report.REPORT_MD), "a") as f:
                f.write(f"\n![Detections over the ground truth]({report.OVERLAYS_PNG})\n")
    else:
        report.write_report(report_dir, results, shown or None, predictions if shown else None, title=title,
                            notes=lines)
