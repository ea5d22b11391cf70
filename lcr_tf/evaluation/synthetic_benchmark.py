"""The synthetic benchmark: ground truth from TFRecords, detections from a SavedModel or a predictions file;
the rows ``ppi``, ``nms`` and ``upper_bound`` described in :mod:`lcr_tf.evaluate`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from lcr_tf import evaluation
from lcr_tf.contracts import serving
from lcr_tf.evaluation.detect import predict, refused_summary
from lcr_tf.evaluation.ground_truth import HEAD_SIZE_DEFINITION, GroundTruth, read_ground_truth
from lcr_tf.evaluation.pairing import methods, missing_images, pair_people, stack
from lcr_tf.evaluation.predictions_file import read_predictions, write_predictions
from lcr_tf.evaluation.tables import (
    DETECTION_SCORE,
    ERROR_PART_KEYS,
    PCKH_ALPHA,
    PCKH_CURVE_ALPHAS,
    SKELETON,
    UPPER_BOUND,
    num,
)


def pose_scores(pred2d, pred3d, gt2d, gt3d, annotated, head_size) -> Dict[str, Optional[float]]:
    """PCKh@0.5 (pooled, per joint, and its curve over :data:`PCKH_CURVE_ALPHAS`), MPJPE and PA-MPJPE of
    paired people ((N, J, ...) each), and the medians over people of their 2D error's parts
    (:func:`lcr_tf.evaluation.error_parts`: ``translation_hs``, ``shape_hs``, ``extent_ratio``); None over
    no person."""
    j = SKELETON.num_joints
    if len(gt2d) == 0:
        return {"pckh_0.5": None, "mpjpe_mm": None, "pa_mpjpe_mm": None, "pckh_per_joint": [None] * j,
                "pckh_curve": [None] * len(PCKH_CURVE_ALPHAS),
                **{name: None for name in ERROR_PART_KEYS}}
    curve = evaluation.pckh_curve(pred2d, gt2d, annotated, head_size, PCKH_CURVE_ALPHAS)
    parts = evaluation.error_parts(pred2d, gt2d, annotated, head_size)
    medians = {name: num(np.nanmedian(values)) if np.isfinite(values).any() else None
               for name, values in zip(ERROR_PART_KEYS, (parts.translation, parts.shape, parts.extent_ratio))}
    return {"pckh_0.5": num(evaluation.pckh(pred2d, gt2d, annotated, head_size, PCKH_ALPHA)),
            "mpjpe_mm": num(np.mean(evaluation.mpjpe(pred3d, gt3d, SKELETON))),
            "pa_mpjpe_mm": num(np.mean(evaluation.pa_mpjpe(pred3d, gt3d))),
            "pckh_per_joint": [num(v) for v in evaluation.pckh_per_joint(pred2d, gt2d, annotated, head_size,
                                                                          PCKH_ALPHA)],
            "pckh_curve": [num(v) for v in curve], **medians}



def evaluate_detections(ground_truth: List[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                        max_match_distance_px: Optional[float] = None) -> Dict[str, Any]:
    """The rows of :mod:`lcr_tf.evaluate`'s synthetic benchmark for every image of ``ground_truth``.

    Args:
      ground_truth: from :func:`lcr_tf.evaluation.ground_truth.read_ground_truth`.
      predictions: image id -> entry as :func:`lcr_tf.evaluation.detect.predict` returns or
        :func:`lcr_tf.evaluation.predictions_file.read_predictions` reads.
      max_match_distance_px: matching gate, pixels (None: no gate).
    Raises:
      ValueError naming the image when an image has no predictions.
    """
    missing_images(ground_truth, predictions)
    j = SKELETON.num_joints
    results: Dict[str, Any] = {"num_images": len(ground_truth),
                               "num_people": int(sum(len(gt.pose2d) for gt in ground_truth)),
                               "head_size": HEAD_SIZE_DEFINITION, "joints": list(SKELETON.joint_names),
                               "pckh_curve_alphas": list(PCKH_CURVE_ALPHAS), "detection_score": DETECTION_SCORE}
    gt2d, gt3d = stack(ground_truth, "pose2d", (j, 2)), stack(ground_truth, "pose3d", (j, 3))
    vis = stack(ground_truth, "annotated", (j,)).astype(bool)
    head = stack(ground_truth, "head_size", ())
    rows = methods(predictions, ground_truth)
    for name in rows:
        pairing = pair_people(ground_truth, predictions, name, max_match_distance_px)
        m = pairing.matched
        row = pose_scores(pairing.pose2d[m], pairing.pose3d[m], gt2d[m], gt3d[m], vis[m], head[m])
        matched = int(m.sum())
        if name == UPPER_BOUND:
            row.update(matched=matched, missed=int(results["num_people"] - matched))
            results[name] = row
            continue
        ap_inputs: Dict[str, List[np.ndarray]] = {k: [] for k in ("p2", "s", "g2", "vis", "hs", "in")}
        on_empty: List[int] = []  # reported detections of each image without people
        for gt in ground_truth:
            people = predictions[gt.image_id][name]
            if len(gt.pose2d) == 0:
                on_empty.append(int(np.count_nonzero(people[serving.SCORE] >= DETECTION_SCORE)))
            for key, value in (("p2", people[serving.POSE2D]), ("s", people[serving.SCORE]), ("g2", gt.pose2d),
                               ("vis", gt.annotated), ("hs", gt.head_size),
                               ("in", gt.inside(people[serving.POSE2D]))):
                ap_inputs[key].append(value)
        if ground_truth:
            ap = evaluation.mpii_multi_person_ap(ap_inputs["p2"], ap_inputs["s"], ap_inputs["g2"],
                                                 ap_inputs["vis"], ap_inputs["hs"], PCKH_ALPHA,
                                                 pred_present=ap_inputs["in"])
            row["ap"] = num(ap.mean)
            row["ap_per_joint"] = [num(v) for v in ap.per_joint]
        else:
            row["ap"], row["ap_per_joint"] = None, [None] * j
        row.update(matched=matched, missed=int(results["num_people"] - matched),
                   detections=int(pairing.detections), empty_images=len(on_empty),
                   detections_per_empty_image=num(np.mean(on_empty)) if on_empty else None)
        results[name] = row
    results.setdefault(UPPER_BOUND, None)
    return results


def evaluate_synthetic(data: str, saved_model: Optional[str] = None, predictions: Optional[str] = None,
                       max_images: int = 0, save_predictions: Optional[str] = None,
                       max_match_distance_px: Optional[float] = None, protocol: Optional[str] = None,
                       report_dir: Optional[str] = None, report_notes: Sequence[str] = ()) -> Dict[str, Any]:
    """The synthetic benchmark: ground truth from TFRecords, detections from a SavedModel or a file.

    With ``report_dir``, also writes the markdown report and its pictures there (:mod:`lcr_tf.evaluation.report`),
    with ``report_notes`` under its title.
    """
    if protocol not in (None, "", "default"):
        raise ValueError(f"the synthetic dataset has a single protocol; got --protocol={protocol!r}")
    if bool(saved_model) == bool(predictions):
        raise ValueError("give exactly one of saved_model and predictions")
    ground_truth = read_ground_truth(data, max_images)
    if saved_model:
        refused: List[Dict[str, str]] = []
        preds = predict(saved_model, ground_truth, refused=refused)
        if save_predictions:
            write_predictions(save_predictions, preds, "synthetic")
    else:
        preds = read_predictions(predictions, "synthetic")
    results = {"dataset": "synthetic"}
    results.update(evaluate_detections(ground_truth, preds, max_match_distance_px))
    if saved_model:
        results.update(refused_summary(refused))
    if report_dir:
        from lcr_tf.evaluation import report
        report.write_report(report_dir, results, ground_truth, preds, title="LCR-Net on synthetic images",
                            notes=report_notes)
    return results
