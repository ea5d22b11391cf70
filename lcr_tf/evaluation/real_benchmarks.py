"""The real benchmarks (``h36m``, ``mpii``, ``mupots``): ground truth from the dataset readers, detections
from a SavedModel or a predictions file, and the tables described in :mod:`lcr_tf.evaluate`
(:mod:`lcr_tf.evaluation.protocols`; MPII's rows in :mod:`lcr_tf.evaluation.mpii_benchmark`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from lcr_tf.evaluation import mpii_benchmark, mupots_benchmark, native_mpii, native_results, protocols
from lcr_tf.evaluation.detect import predict, refused_summary
from lcr_tf.evaluation.ground_truth import GroundTruth, read_dataset
from lcr_tf.evaluation.pairing import concat, groups_of, methods, missing_images, pair_people, stack
from lcr_tf.evaluation.predictions_file import NATIVE, model_people, read_predictions, write_predictions
from lcr_tf.evaluation.tables import SKELETON, UPPER_BOUND, format_real_table

JOINTS_NOTE = ("compared in LCR-13 (the model's joints): the dataset's ground truth converted with "
               "lcr_tf.contracts.skeleton.convert (head = midpoint of neck and head top where the dataset has no head "
               "centre); joints the conversion cannot derive are left out through the masks")
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


_EVALUATORS = {"h36m": evaluate_h36m}


def evaluate_dataset(dataset: str, data: str, saved_model: Optional[str] = None, predictions: Optional[str] = None,
                     max_images: int = 0, save_predictions: Optional[str] = None,
                     max_match_distance_px: Optional[float] = None, protocol: Optional[str] = None,
                     split: Optional[str] = None, reader_options: Sequence[str] = (), mupots_3d: str = "univ",
                     report_dir: Optional[str] = None, report_notes: Sequence[str] = (),
                     results_dir: Optional[str] = None, mupots_matching: str = "official",
                     mupots_rescale_bones: bool = True, mpii_groups: Optional[str] = None,
                     mpii_pairing: str = "joints") -> Dict[str, Any]:
    """A real benchmark (``h36m``, ``mpii``, ``mupots``): ground truth from its reader (``data`` = ROOT),
    detections from a SavedModel or a predictions file; the tables of the module docstring. With
    ``results_dir`` the detections are also written in the benchmark's own results format
    (:mod:`lcr_tf.evaluation.native_results`, ``mpii`` and ``mupots``), listed in ``"results_files"``.
    ``mupots_matching`` / ``mupots_rescale_bones``: MuPoTS-3D's protocol
    (:mod:`lcr_tf.evaluation.mupots_benchmark`; the official one by default). ``mpii_groups``: the MPII
    toolkit's ``groups_v12.mat`` (the multi-person file and AP by its groups; :mod:`lcr_tf.evaluation.
    mpii_benchmark`); ``mpii_pairing``: how MPII's single-person file picks each person's detection, ``joints``
    (the evaluation's pairing) or ``objpos`` (as a test-set submission must;
    :func:`lcr_tf.evaluation.native_mpii.build_submission`); MPII's ``split="test"`` writes the submission
    files without scoring them.

    Raises:
      ValueError: bad options, predictions that miss an image or are malformed (named); FileNotFoundError.
    """
    if bool(saved_model) == bool(predictions):
        raise ValueError("give exactly one of saved_model and predictions")
    if mpii_pairing not in native_mpii.SINGLE_PAIRINGS:
        raise ValueError(f"mpii_pairing must be one of {', '.join(native_mpii.SINGLE_PAIRINGS)}, got {mpii_pairing!r}")
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
    groups = built = None
    if dataset == "mpii":
        test = info["reader"].get("split") == "test"
        groups = mpii_benchmark.prepare(ground_truth, preds, mpii_groups, test, results_dir)
        own = next((model_people(e, "ppi")[1] for e in preds.values() if NATIVE in e), SKELETON.name)
        results.update(mpii_benchmark.notes(groups, test, info, own))
        built = mpii_benchmark.build_submissions(ground_truth, preds, max_match_distance_px, groups, mpii_pairing)
        results.update(mpii_benchmark.evaluate_mpii(ground_truth, preds, max_match_distance_px, groups, test,
                                                    mpii_pairing, built))
    if dataset == "mupots":
        results["reference_3d"] = MUPOTS_3D_NOTE[mupots_3d]
        results["pck3d_threshold_mm"] = mupots_benchmark.PCK_THRESHOLD_MM
        results["auc_thresholds_mm"] = [float(t) for t in mupots_benchmark.AUC_THRESHOLDS_MM]
        results.update(mupots_benchmark.evaluate_mupots(ground_truth, preds, max_match_distance_px, mupots_matching,
                                                        mupots_rescale_bones))
    elif dataset != "mpii":
        results.update(_EVALUATORS[dataset](ground_truth, preds, max_match_distance_px))
    if results_dir:
        native_results.resolve_results_format(dataset, native_results.NATIVE)
        results["results_files"] = native_results.write_native_results(
            dataset, results_dir, ground_truth, preds, max_match_distance_px, data_root=data, facts=results,
            mpii_groups=groups, mpii_pairing=mpii_pairing,
            mpii_submissions=None if built is None else {m: sub for m, (_, sub) in built.items()})
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
