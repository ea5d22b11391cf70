"""Evaluates an exported LCR-Net (or saved predictions) on a benchmark, with the paper's measures.

    python -m lcr_tf.evaluate --dataset=synthetic --saved_model=DIR --data='val-*.tfrecord' \\
        --output=results.json [--max_images=N] [--save_predictions=preds.json] [--report_dir=DIR]
    python -m lcr_tf.evaluate --dataset=synthetic --predictions=preds.json --data='val-*.tfrecord' \\
        --output=results.json

Datasets: ``synthetic`` (TFRecords of :mod:`lcr_tf.features`, e.g. the validation split that
``beam_jobs.build_tfrecords`` writes from the synthetic renderer). ``h36m``, ``mpii`` and ``mupots`` are
named but not available yet (their readers are not written).

For each image the SavedModel's ``raw_proposals`` signature runs once; its candidates (original pixels)
go through the NumPy pose proposal integration (:func:`lcr_tf.postprocess.integrate_candidates`) twice:
mode ``paper`` (PPI, eq 7-8) and mode ``nms`` (the paper's NMS baseline), with the defaults of
:func:`lcr_tf.inference.default_params`. With ``--predictions`` those detections are read from a file
written earlier by ``--save_predictions`` instead, so the measures can be recomputed without the model.

Measures, for each of ``ppi`` and ``nms``:

* detections are matched one-to-one to the ground-truth people of their image by the Hungarian algorithm
  on the mean 2D joint distance over the annotated joints (:func:`lcr_tf.evaluation.match_detections`,
  optionally gated by ``--max_match_distance_px``); ``matched`` / ``missed`` count ground-truth people;
* ``pckh_0.5``: PCKh@0.5 over the evaluated joints of the matched people (:func:`lcr_tf.evaluation.pckh`):
  the annotated joints that lie inside the image, as in MPII, whose annotators mark only joints they can
  place on the picture (a joint of a person cut by the border has no position in the image to judge);
* ``mpjpe_mm``: 3D MPJPE in mm over all joints of the matched people, each pose centred on its own body
  centre (mean of hips and shoulders); ``pa_mpjpe_mm``: MPJPE after Procrustes alignment (rotation,
  translation, scale);
* ``ap``: MPII multi-person AP@0.5 (mean over joint types; each image is one group, every detection with its
  person score; :func:`lcr_tf.evaluation.mpii_multi_person_ap`). Predicted joints outside the image are
  not reported, as a detector run on the picture would not claim them.

``upper_bound`` (paper Fig 10 / 14): for each ground-truth person, the single candidate (before PPI / NMS)
closest to it in 2D (mean joint distance), and the PCKh@0.5 / MPJPE / PA-MPJPE of those candidates.

Head size of PCKh on synthetic images (which have no head box): MPII's rule, 0.6 x the diagonal of the
head box, applied to a square head box of side :data:`SYNTHETIC_HEAD_SIDE_M` (0.25 m) projected at the
person's image scale. The scale ``s`` (pixels per metre) is the least-squares fit of the ground truth's
centred 2D pose to the x, y of its centred 3D pose (camera axes), ``s = sum <u_j, v_j> / sum |v_j|^2``
(u_j 2D centred on their mean, v_j the 3D x, y centred on their mean), i.e. weak perspective. So the head
size is ``0.6 * sqrt(2) * 0.25 * s`` pixels (:func:`synthetic_head_sizes`).

Output: the rows are printed as a table and written to ``--output`` as JSON::

    {"dataset": "synthetic", "num_images": N, "num_people": G, "head_size": "<definition>",
     "ppi": {"pckh_0.5", "mpjpe_mm", "pa_mpjpe_mm", "ap", "ap_per_joint" (J), "matched", "missed",
             "detections"},
     "nms": {... same ...},
     "upper_bound": {"pckh_0.5", "mpjpe_mm", "pa_mpjpe_mm", "matched", "missed"} or null}

Each row also holds ``pckh_per_joint`` (J, LCR-13 order) and ``pckh_curve``: PCKh at the thresholds
``pckh_curve_alphas`` (0.05 to 1 head sizes). Fractions are in [0, 1]; a measure over no person is null.

Predictions file (``--save_predictions`` / ``--predictions``)::

    {"format": "lcr_tf.evaluate/predictions", "version": 1, "skeleton": "lcr13",
     "images": {image_id: {"ppi": {"scores": [D], "pose2d_px": [D][J][2], "pose3d_m": [D][J][3]},
                           "nms": {... same ...},
                           "candidates": {"pose2d_px": [M][J][2], "pose3d_m": [M][J][3]}}}}

2D in pixels of the original image (x right, y down, origin top-left; written to 0.001 px), 3D in metres,
camera axes (x right, y down, z away), body-centred (written to 0.01 mm). ``candidates`` may be omitted
(no upper bound then); they make most of the file (up to ``max_candidates`` per image).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
from absl import flags

from lcr_tf import cli
from lcr_tf import features
from lcr_tf import skeleton as skeleton_lib

FLAGS = flags.FLAGS
_DEFINED: List[str] = []

MODES = ("ppi", "nms")
# The integration mode of lcr_tf.postprocess for each reported row.
_PPI_MODE = {"ppi": "paper", "nms": "nms"}
PREDICTIONS_FORMAT = "lcr_tf.evaluate/predictions"
PREDICTIONS_VERSION = 1
PCKH_ALPHA = 0.5
# Thresholds of the PCKh curve (head sizes), 0.05 to 1.
PCKH_CURVE_ALPHAS = tuple(round(0.05 * i, 2) for i in range(1, 21))
# Side of the square head box of a synthetic person, metres (an adult head is about 0.2-0.25 m tall).
SYNTHETIC_HEAD_SIDE_M = 0.25
HEAD_SIZE_DEFINITION = ("0.6 x diagonal of a square head box of side 0.25 m projected at the person's "
                        "least-squares 2D/3D image scale (weak perspective)")
_SKELETON = skeleton_lib.LCR13


def define_flags() -> None:
    """Defines the flags (only when run as a program, so importing the module defines none)."""
    before = set(FLAGS)
    flags.DEFINE_enum("dataset", None, sorted(set(DATASETS) | set(PLANNED_DATASETS)),
                      "Benchmark to evaluate on. Only 'synthetic' is available now; the others are "
                      "reserved for their readers.")
    flags.DEFINE_string("protocol", None, "Protocol of the dataset (e.g. Human3.6M's P1 / P2); unused for "
                        "synthetic, which has a single protocol.")
    flags.DEFINE_string("saved_model", None, "SavedModel of lcr_tf.export: a version folder or the base folder "
                        "of versions (the highest is used). Exclusive with --predictions.")
    flags.DEFINE_string("predictions", None, "JSON of detections per image id, as --save_predictions writes "
                        "it, evaluated instead of running a model. Exclusive with --saved_model.")
    flags.DEFINE_string("data", None, "Ground truth: TFRecord glob(s) (comma-separated) of the "
                        "lcr_tf.features schema, e.g. 'synthetic/val-*.tfrecord'.")
    flags.DEFINE_string("output", None, "JSON file for the results table.")
    flags.DEFINE_string("save_predictions", None, "Also write the model's detections and candidates per "
                        "image to this JSON (reusable with --predictions).")
    flags.DEFINE_integer("max_images", 0, "Evaluate the first N images of --data only (0: all).",
                         lower_bound=0)
    flags.DEFINE_float("max_match_distance_px", None, "Gate of the detection / ground-truth matching: a pair "
                       "whose mean 2D joint distance exceeds this many pixels is never matched (default: "
                       "no gate).", lower_bound=0.0)
    flags.DEFINE_string("report_dir", None, "Also write a markdown report with pictures here: report.md, "
                        "pck_curve.png, overlays.png (detections over the ground truth), poses3d.png.")
    _DEFINED[:] = sorted(set(FLAGS) - before)


# --------------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class GroundTruth:
    """The people of one image.

    Attributes:
      image_id: str.
      encoded: the image file's bytes.
      pose2d: (G, J, 2) float64 px (x right, y down, origin top-left).
      annotated: (G, J) bool, the joints evaluated in 2D: annotated by the dataset and inside the image.
      pose3d: (G, J, 3) float64 m, camera axes, body-centred.
      head_size: (G,) float64 px, PCKh's head size.
      width, height: the image's size, px.
    """

    image_id: str
    encoded: bytes
    pose2d: np.ndarray
    annotated: np.ndarray
    pose3d: np.ndarray
    head_size: np.ndarray
    width: int
    height: int

    def inside(self, pose2d: np.ndarray) -> np.ndarray:
        """(..., J, 2) px -> (..., J) bool, True for the joints inside the image."""
        size = np.array([self.width, self.height], np.float64)
        return np.all((pose2d >= 0.0) & (pose2d <= size), axis=-1)


def synthetic_head_sizes(pose2d, pose3d) -> np.ndarray:
    """PCKh head sizes of people without a head box (see the module docstring).

    Args:
      pose2d: (G, J, 2) px. pose3d: (G, J, 3) m, camera axes (only x, y are used).
    Returns:
      (G,) float64 px: ``0.6 * sqrt(2) * SYNTHETIC_HEAD_SIDE_M * s``, ``s`` the least-squares image scale
      in px / m. Raises ValueError naming the person when the scale is not positive.
    """
    p2 = np.asarray(pose2d, np.float64)
    p3 = np.asarray(pose3d, np.float64)[..., :2]
    u = p2 - p2.mean(axis=1, keepdims=True)
    v = p3 - p3.mean(axis=1, keepdims=True)
    num = np.sum(u * v, axis=(1, 2))
    den = np.sum(v * v, axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = num / den
    bad = ~(np.isfinite(scale) & (scale > 0))
    if bad.any():
        raise ValueError(f"person {int(np.argmax(bad))}: 2D and 3D poses give no positive image scale "
                         f"({scale[bad][0]})")
    return 0.6 * math.sqrt(2.0) * SYNTHETIC_HEAD_SIDE_M * scale


def read_ground_truth(data: str, max_images: int = 0) -> List[GroundTruth]:
    """Reads the images of TFRecord shards (lcr_tf.features schema), in shard order.

    Args:
      data: glob or comma-separated globs. max_images: the first N images only (0: all).
    Raises:
      FileNotFoundError when nothing matches; ValueError naming the image on a duplicate id or a person
      whose head size cannot be derived.
    """
    import tensorflow as tf
    from lcr_tf.data import pipeline
    shards = pipeline.list_shards(data)
    dataset = tf.data.TFRecordDataset(shards)
    if max_images:
        dataset = dataset.take(max_images)
    out, seen = [], set()
    for record in dataset:
        ex = features.decode_example_numpy(record.numpy())
        image_id = ex[features.IMAGE_ID].decode("utf-8", "replace")
        if image_id in seen:
            raise ValueError(f"image {image_id!r} appears twice in {data!r}")
        seen.add(image_id)
        pose2d = ex[features.POSE2D].astype(np.float64)
        pose3d = ex[features.POSE3D].astype(np.float64)
        try:
            head = synthetic_head_sizes(pose2d, pose3d)
        except ValueError as e:
            raise ValueError(f"image {image_id!r}: {e}") from None
        truth = GroundTruth(image_id, ex[features.IMAGE_ENCODED], pose2d, ex[features.ANNOTATED].astype(bool),
                            pose3d, head, int(ex[features.IMAGE_WIDTH]), int(ex[features.IMAGE_HEIGHT]))
        truth.annotated &= truth.inside(pose2d)
        out.append(truth)
    return out


# --------------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------------


def _people(scores, pose2d, pose3d) -> Dict[str, np.ndarray]:
    j = _SKELETON.num_joints
    return {"scores": np.asarray(scores, np.float64).reshape(-1),
            "pose2d_px": np.asarray(pose2d, np.float64).reshape(-1, j, 2),
            "pose3d_m": np.asarray(pose3d, np.float64).reshape(-1, j, 3)}


def predict(saved_model: str, images: List[GroundTruth]) -> Dict[str, Dict[str, Any]]:
    """Runs the SavedModel's ``raw_proposals`` once per image, then the NumPy PPI and NMS.

    Returns:
      image id -> {"ppi": people, "nms": people, "candidates": {"pose2d_px" (M, J, 2), "pose3d_m"
      (M, J, 3)}}, people = {"scores" (D,), "pose2d_px" (D, J, 2) px, "pose3d_m" (D, J, 3) m}.
    """
    import tensorflow as tf
    from lcr_tf import export as export_lib
    from lcr_tf import inference
    from lcr_tf.postprocess import integration
    loaded = tf.saved_model.load(export_lib.latest_version_dir(saved_model))
    signature = loaded.signatures["raw_proposals"]
    params = None
    out: Dict[str, Dict[str, Any]] = {}
    for gt in images:
        raw = {k: v.numpy()[0] for k, v in signature(images=tf.constant([gt.encoded])).items()}
        if params is None:
            num_anchors = (raw["class_probs"].shape[-1] - 1) // 2
            params = {name: inference.default_params(num_anchors, mode) for name, mode in _PPI_MODE.items()}
        valid = raw["candidate_valid"].astype(bool)
        cand = {k: raw["candidate_" + k][valid] for k in ("scores", "roi_boxes", "pose2d", "pose3d", "classes")}
        entry: Dict[str, Any] = {}
        for name, mode in _PPI_MODE.items():
            det = integration.integrate_candidates(
                cand["scores"], cand["roi_boxes"], cand["pose2d"], cand["pose3d"], cand["classes"],
                image_size=tuple(int(v) for v in raw["image_size"]), mode=mode, params=params[name])
            entry[name] = _people(det.scores, det.pose2d, det.pose3d)
        cands = _people([], cand["pose2d"], cand["pose3d"])
        entry["candidates"] = {"pose2d_px": cands["pose2d_px"], "pose3d_m": cands["pose3d_m"]}
        out[gt.image_id] = entry
    return out


# Decimals kept in a predictions file: 0.001 px, 0.01 mm (a joint lying within that of the PCKh threshold
# may flip when re-evaluated from the file); the candidates make most of its size.
_DECIMALS = {"scores": 6, "pose2d_px": 3, "pose3d_m": 5}


def _to_lists(value, key=None):
    if isinstance(value, dict):
        return {k: _to_lists(v, k) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return np.round(value.astype(np.float64), _DECIMALS.get(key, 6)).tolist()
    return value


def write_predictions(path: str, predictions: Mapping[str, Mapping[str, Any]]) -> None:
    """Writes :func:`predict`'s output in the predictions format of the module docstring."""
    doc = {"format": PREDICTIONS_FORMAT, "version": PREDICTIONS_VERSION, "skeleton": _SKELETON.name,
           "images": {k: _to_lists(dict(v)) for k, v in predictions.items()}}
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))


def read_predictions(path: str) -> Dict[str, Dict[str, Any]]:
    """Reads a predictions file (module docstring) into :func:`predict`'s structure.

    Raises ValueError naming the file, the image id and the field on a malformed entry.
    """
    try:
        with open(path) as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != PREDICTIONS_FORMAT:
        raise ValueError(f"{path}: not a predictions file (expected \"format\": \"{PREDICTIONS_FORMAT}\")")
    if doc.get("version") != PREDICTIONS_VERSION:
        raise ValueError(f"{path}: predictions version {doc.get('version')}, this reader reads "
                         f"{PREDICTIONS_VERSION}")
    if doc.get("skeleton", _SKELETON.name) != _SKELETON.name:
        raise ValueError(f"{path}: skeleton {doc.get('skeleton')!r}, expected {_SKELETON.name!r}")
    j = _SKELETON.num_joints
    out: Dict[str, Dict[str, Any]] = {}
    for image_id, entry in (doc.get("images") or {}).items():
        where = f"{path}: image {image_id!r}"
        item: Dict[str, Any] = {}
        for name in MODES:
            if name not in entry:
                raise ValueError(f"{where}: field {name!r} is missing")
            try:
                people = _people(entry[name]["scores"], entry[name]["pose2d_px"], entry[name]["pose3d_m"])
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{where}: field {name!r} is malformed ({e!r}); expected scores [D], "
                                 f"pose2d_px [D][{j}][2], pose3d_m [D][{j}][3]") from None
            n = len(people["scores"])
            if people["pose2d_px"].shape[0] != n or people["pose3d_m"].shape[0] != n:
                raise ValueError(f"{where}: field {name!r} lists {n} scores but "
                                 f"{people['pose2d_px'].shape[0]} 2D and {people['pose3d_m'].shape[0]} 3D poses")
            if not all(np.all(np.isfinite(a)) for a in people.values()):
                raise ValueError(f"{where}: field {name!r} holds NaN or inf")
            item[name] = people
        if entry.get("candidates") is not None:
            try:
                c = _people([], entry["candidates"]["pose2d_px"], entry["candidates"]["pose3d_m"])
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{where}: field 'candidates' is malformed ({e!r})") from None
            if c["pose2d_px"].shape[0] != c["pose3d_m"].shape[0]:
                raise ValueError(f"{where}: field 'candidates' has different numbers of 2D and 3D poses")
            item["candidates"] = {"pose2d_px": c["pose2d_px"], "pose3d_m": c["pose3d_m"]}
        out[image_id] = item
    return out


# --------------------------------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------------------------------


def _pose_scores(pred2d, pred3d, gt2d, gt3d, annotated, head_size) -> Dict[str, Optional[float]]:
    """PCKh@0.5 (pooled, per joint, and its curve over :data:`PCKH_CURVE_ALPHAS`), MPJPE and PA-MPJPE of
    paired people ((N, J, ...) each); None over no person."""
    from lcr_tf import evaluation
    j = _SKELETON.num_joints
    if len(gt2d) == 0:
        return {"pckh_0.5": None, "mpjpe_mm": None, "pa_mpjpe_mm": None, "pckh_per_joint": [None] * j,
                "pckh_curve": [None] * len(PCKH_CURVE_ALPHAS)}
    curve = evaluation.pckh_curve(pred2d, gt2d, annotated, head_size, PCKH_CURVE_ALPHAS)
    return {"pckh_0.5": _num(evaluation.pckh(pred2d, gt2d, annotated, head_size, PCKH_ALPHA)),
            "mpjpe_mm": _num(np.mean(evaluation.mpjpe(pred3d, gt3d, _SKELETON))),
            "pa_mpjpe_mm": _num(np.mean(evaluation.pa_mpjpe(pred3d, gt3d))),
            "pckh_per_joint": [_num(v) for v in evaluation.pckh_per_joint(pred2d, gt2d, annotated, head_size,
                                                                          PCKH_ALPHA)],
            "pckh_curve": [_num(v) for v in curve]}


def _num(value) -> Optional[float]:
    value = float(value)
    return value if math.isfinite(value) else None


def _concat(parts: List[np.ndarray], tail) -> np.ndarray:
    return np.concatenate(parts, axis=0) if parts else np.zeros((0,) + tuple(tail))


def evaluate_detections(ground_truth: List[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                        max_match_distance_px: Optional[float] = None) -> Dict[str, Any]:
    """The rows of the module docstring for every image of ``ground_truth``.

    Args:
      ground_truth: from :func:`read_ground_truth`.
      predictions: image id -> entry as :func:`predict` returns or :func:`read_predictions` reads.
      max_match_distance_px: matching gate, pixels (None: no gate).
    Raises:
      ValueError naming the image when an image has no predictions.
    """
    from lcr_tf import evaluation
    gate = np.inf if max_match_distance_px is None else float(max_match_distance_px)
    missing = [gt.image_id for gt in ground_truth if gt.image_id not in predictions]
    if missing:
        raise ValueError(f"no predictions for image {missing[0]!r} ({len(missing)} image(s) missing)")
    j = _SKELETON.num_joints
    results: Dict[str, Any] = {"num_images": len(ground_truth),
                               "num_people": int(sum(len(gt.pose2d) for gt in ground_truth)),
                               "head_size": HEAD_SIZE_DEFINITION, "joints": list(_SKELETON.joint_names),
                               "pckh_curve_alphas": list(PCKH_CURVE_ALPHAS)}
    for name in MODES:
        pairs: Dict[str, List[np.ndarray]] = {k: [] for k in ("p2", "p3", "g2", "g3", "vis", "hs")}
        ap_inputs: Dict[str, List[np.ndarray]] = {k: [] for k in ("p2", "s", "g2", "vis", "hs", "in")}
        matched = detections = 0
        for gt in ground_truth:  # one image at a time; each image's people are vectorised
            people = predictions[gt.image_id][name]
            detections += len(people["scores"])
            m = evaluation.match_detections(people["pose2d_px"], gt.pose2d, gt.annotated, gate)
            matched += len(m.gt_index)
            for key, value in (("p2", people["pose2d_px"][m.pred_index]), ("p3", people["pose3d_m"][m.pred_index]),
                               ("g2", gt.pose2d[m.gt_index]), ("g3", gt.pose3d[m.gt_index]),
                               ("vis", gt.annotated[m.gt_index]), ("hs", gt.head_size[m.gt_index])):
                pairs[key].append(value)
            for key, value in (("p2", people["pose2d_px"]), ("s", people["scores"]), ("g2", gt.pose2d),
                               ("vis", gt.annotated), ("hs", gt.head_size),
                               ("in", gt.inside(people["pose2d_px"]))):
                ap_inputs[key].append(value)
        row = _pose_scores(_concat(pairs["p2"], (j, 2)), _concat(pairs["p3"], (j, 3)),
                           _concat(pairs["g2"], (j, 2)), _concat(pairs["g3"], (j, 3)),
                           _concat(pairs["vis"], (j,)).astype(bool), _concat(pairs["hs"], ()))
        if ground_truth:
            ap = evaluation.mpii_multi_person_ap(ap_inputs["p2"], ap_inputs["s"], ap_inputs["g2"],
                                                 ap_inputs["vis"], ap_inputs["hs"], PCKH_ALPHA,
                                                 pred_present=ap_inputs["in"])
            row["ap"] = _num(ap.mean)
            row["ap_per_joint"] = [_num(v) for v in ap.per_joint]
        else:
            row["ap"], row["ap_per_joint"] = None, [None] * j
        row.update(matched=int(matched), missed=int(results["num_people"] - matched), detections=int(detections))
        results[name] = row
    results["upper_bound"] = _upper_bound(ground_truth, predictions)
    return results


def _upper_bound(ground_truth: List[GroundTruth], predictions: Mapping[str, Mapping[str, Any]]):
    """For each GT person the candidate closest in 2D (several people may pick the same one); None when the
    predictions hold no candidates."""
    from lcr_tf import evaluation
    if any("candidates" not in predictions[gt.image_id] for gt in ground_truth) or not ground_truth:
        return None
    j = _SKELETON.num_joints
    parts: Dict[str, List[np.ndarray]] = {k: [] for k in ("p2", "p3", "g2", "g3", "vis", "hs")}
    for gt in ground_truth:
        cand = predictions[gt.image_id]["candidates"]
        if len(cand["pose2d_px"]) == 0 or len(gt.pose2d) == 0:
            continue
        dist = evaluation.mean_joint_distance(cand["pose2d_px"], gt.pose2d, gt.annotated)  # (M, G)
        ok = np.isfinite(dist).any(axis=0)
        best = np.argmin(np.where(np.isfinite(dist), dist, np.inf), axis=0)[ok]
        for key, value in (("p2", cand["pose2d_px"][best]), ("p3", cand["pose3d_m"][best]),
                           ("g2", gt.pose2d[ok]), ("g3", gt.pose3d[ok]), ("vis", gt.annotated[ok]),
                           ("hs", gt.head_size[ok])):
            parts[key].append(value)
    row = _pose_scores(_concat(parts["p2"], (j, 2)), _concat(parts["p3"], (j, 3)), _concat(parts["g2"], (j, 2)),
                       _concat(parts["g3"], (j, 3)), _concat(parts["vis"], (j,)).astype(bool),
                       _concat(parts["hs"], ()))
    matched = int(sum(len(p) for p in parts["g2"]))
    row.update(matched=matched, missed=int(sum(len(gt.pose2d) for gt in ground_truth) - matched))
    return row


def evaluate_synthetic(data: str, saved_model: Optional[str] = None, predictions: Optional[str] = None,
                       max_images: int = 0, save_predictions: Optional[str] = None,
                       max_match_distance_px: Optional[float] = None, protocol: Optional[str] = None,
                       report_dir: Optional[str] = None, report_notes: Sequence[str] = ()) -> Dict[str, Any]:
    """The synthetic benchmark: ground truth from TFRecords, detections from a SavedModel or a file.

    With ``report_dir``, also writes the markdown report and its pictures there (:mod:`lcr_tf.report`),
    with ``report_notes`` under its title.
    """
    if protocol not in (None, "", "default"):
        raise ValueError(f"the synthetic dataset has a single protocol; got --protocol={protocol!r}")
    if bool(saved_model) == bool(predictions):
        raise ValueError("give exactly one of saved_model and predictions")
    ground_truth = read_ground_truth(data, max_images)
    if saved_model:
        preds = predict(saved_model, ground_truth)
        if save_predictions:
            write_predictions(save_predictions, preds)
    else:
        preds = read_predictions(predictions)
    results = {"dataset": "synthetic"}
    results.update(evaluate_detections(ground_truth, preds, max_match_distance_px))
    if report_dir:
        from lcr_tf import report
        report.write_report(report_dir, results, ground_truth, preds, title="LCR-Net on synthetic images",
                            notes=report_notes)
    return results


# Dataset name -> evaluation function (keyword arguments as :func:`evaluate_synthetic`).
DATASETS: Dict[str, Callable[..., Dict[str, Any]]] = {
    "synthetic": evaluate_synthetic,
}
# The paper's benchmarks, accepted by --dataset but refused until their readers exist.
PLANNED_DATASETS = ("h36m", "mpii", "mupots")


def format_table(results: Mapping[str, Any]) -> str:
    """The rows as a fixed-width text table."""
    cols = ("pckh_0.5", "mpjpe_mm", "pa_mpjpe_mm", "ap", "matched", "missed")
    lines = [f"{results.get('dataset', '')}: {results['num_images']} images, {results['num_people']} people",
             f"{'method':<12}" + "".join(f"{c:>13}" for c in cols)]
    for name in MODES + ("upper_bound",):
        row = results.get(name)
        if row is None:
            lines.append(f"{name:<12}" + f"{'(no candidates)':>13}")
            continue
        cells = []
        for c in cols:
            v = row.get(c)
            cells.append(f"{'-':>13}" if v is None else f"{v:>13d}" if isinstance(v, int) else f"{v:>13.4f}")
        lines.append(f"{name:<12}" + "".join(cells))
    return "\n".join(lines)


def main(argv: List[str]) -> None:
    def fail(message: str) -> None:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)

    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]}")
    for name in ("dataset", "data", "output"):
        if not getattr(FLAGS, name):
            fail(f"--{name} is required")
    if bool(FLAGS.saved_model) == bool(FLAGS.predictions):
        fail("give exactly one of --saved_model and --predictions")
    if FLAGS.save_predictions and not FLAGS.saved_model:
        fail("--save_predictions needs --saved_model")
    if FLAGS.predictions and not os.path.isfile(FLAGS.predictions):
        fail(f"--predictions file {FLAGS.predictions} not found")
    if FLAGS.dataset not in DATASETS:
        fail(f"--dataset={FLAGS.dataset} is not available yet: its reader is not written; "
             f"available: {', '.join(sorted(DATASETS))}")
    try:
        results = DATASETS[FLAGS.dataset](
            data=FLAGS.data, saved_model=FLAGS.saved_model, predictions=FLAGS.predictions,
            max_images=FLAGS.max_images, save_predictions=FLAGS.save_predictions,
            max_match_distance_px=FLAGS.max_match_distance_px, protocol=FLAGS.protocol,
            report_dir=FLAGS.report_dir)
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    print(format_table(results), flush=True)
    directory = os.path.dirname(os.path.abspath(FLAGS.output))
    os.makedirs(directory, exist_ok=True)
    with open(FLAGS.output, "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {FLAGS.output}" + (f" and the report in {FLAGS.report_dir}" if FLAGS.report_dir else ""),
          flush=True)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
