"""The detections in each benchmark's own results format (``--results_format=native`` of
:mod:`lcr_tf.evaluate`), for the benchmarks that have one: the files their official tools and servers
read. Each is written per row, ``RESULTS_DIR/<row>/<file>`` (``ppi``, ``nms``), as the tools expect fixed
file names. Joints are converted from LCR-13 by :func:`lcr_tf.contracts.skeleton.convert`: a joint of the
benchmark's set with no LCR-13 source and no rule there (MPII's and MuPoTS-3D's ``head_top``) is not
written (MPII) or NaN (MuPoTS-3D), never guessed, and the official tools count it as missed.

* ``coco``: COCO's keypoint results file (:mod:`lcr_tf.evaluation.coco_keypoints`), always written for
  ``--dataset=coco`` unless ``--results_format=none``.
* ``mpii``: the ``pred`` struct of the MPII Human Pose evaluation toolkit, as ``.mat`` files (MATLAB 1-based
  pixel coordinates, :func:`lcr_tf.datasets.mpii_annotations.to_mpii_coordinates`): one entry per
  evaluated image, in the reader's order, ``pred(i).image.name`` and ``pred(i).annorect(r).annopoints.point(k)``
  with ``id`` (0-based MPII joint id, the order of :data:`lcr_tf.contracts.skeleton.MPII16`), ``x``, ``y`` and
  ``score``, and ``pred(i).annorect(r).score``. ``pred_keypoints_mpii.mat`` (single person): ``annorect``
  has as many entries as the image's ``annorect`` in the annotation, and entry ``r`` of a single-person
  person holds the detection paired with that person by the evaluation's matching
  (:func:`lcr_tf.evaluation.pairing.pair_people`); the others (and an unpaired person's) have empty
  ``annopoints``, which the toolkit scores as missed. ``pred_keypoints_mpii_multi.mat`` (multi-person): one
  ``annorect`` per detection not paired with a single-person person, by decreasing score, its points inside
  the image only (the package's own multi-person AP takes the same detections and points).
* ``mupots``: the prediction files of MuPoTS-3D's MATLAB evaluation (``mpii_mupots_multiperson_eval.m``,
  as distributed with its adaptations for multi-person methods, which ``load`` these two names):
  ``preds_2d_kpt_mupots.mat`` and ``preds_3d_kpt_mupots.mat``, one variable per evaluated frame,
  ``TS<s>_img_<frame:06d>`` (the frame's image name, 0-based), holding (D, 17, 2) pixels (``annot2``'s
  convention, :data:`lcr_tf.datasets.mupots.PIXEL_OFFSET`) and (D, 17, 3) millimetres (camera axes,
  body-centred: to be scored root-relative, ``is_relative = 1``, which centres both on the pelvis) in the
  ``mupots17`` order of ``annot2`` / ``annot3``; D = 0 for a frame without detections.

Human3.6M and the synthetic benchmark have no official results file or server; their detections are in the
predictions file of ``--save_predictions``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from lcr_tf.contracts import atomic_files, serving
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets import mpii_annotations, mupots
from lcr_tf.evaluation.ground_truth import GroundTruth
from lcr_tf.evaluation.pairing import missing_images, pair_people
from lcr_tf.evaluation.tables import MODES, SKELETON

RESULTS_FORMATS = ("none", "native")
NATIVE = "native"
NONE = "none"
#: Benchmark -> what ``--results_format=native`` writes.
NATIVE_FILES: Dict[str, str] = {
    "coco": "<row>/person_keypoints_<split>2017_lcrnet_results.json: COCO keypoint results (17 x 3 per "
            "detection, COCO's pixel convention; the file COCO's evaluation server reads)",
    "mpii": "<row>/pred_keypoints_mpii.mat (single person) and <row>/pred_keypoints_mpii_multi.mat "
            "(multi-person): the MPII toolkit's pred struct, MATLAB 1-based pixels",
    "mupots": "<row>/preds_2d_kpt_mupots.mat and <row>/preds_3d_kpt_mupots.mat: one variable "
              "TS<s>_img_<frame> per frame, (D, 17, 2) px and (D, 17, 3) mm in MuPoTS-3D's joint order",
}
MPII_SINGLE_FILE = "pred_keypoints_mpii.mat"
MPII_MULTI_FILE = "pred_keypoints_mpii_multi.mat"
MUPOTS_2D_FILE = "preds_2d_kpt_mupots.mat"
MUPOTS_3D_FILE = "preds_3d_kpt_mupots.mat"
MPII = skeleton_lib.MPII16
MUPOTS = skeleton_lib.get_skeleton(mupots.SKELETON)


def resolve_results_format(dataset: str, results_format: Optional[str]) -> str:
    """The results format to write: ``results_format``, or by default ``native`` for ``coco`` (whose
    evaluation is the results file's) and ``none`` elsewhere.

    Raises:
      ValueError: an unknown format, or ``native`` for a benchmark without one (named, with those that have).
    """
    if results_format is None:
        return NATIVE if dataset == "coco" else NONE
    if results_format not in RESULTS_FORMATS:
        raise ValueError(f"--results_format must be one of {', '.join(RESULTS_FORMATS)}, got {results_format!r}")
    if results_format == NATIVE and dataset not in NATIVE_FILES:
        raise ValueError(f"--results_format=native: {dataset} has no results format of its own (no official "
                         f"results file or server; its detections are in --save_predictions' file); the "
                         f"benchmarks with one: {', '.join(sorted(NATIVE_FILES))}")
    return results_format


def write_native_results(dataset: str, results_dir: str, ground_truth: Sequence[GroundTruth],
                         predictions: Mapping[str, Mapping[str, Any]],
                         max_match_distance_px: Optional[float] = None) -> Dict[str, Dict[str, str]]:
    """Writes the native results files of ``mpii`` or ``mupots`` (module docstring) under
    ``results_dir/<row>/``, for the rows ``ppi`` and ``nms``.

    Args:
      ground_truth: the evaluated images (:func:`lcr_tf.evaluation.ground_truth.read_dataset`).
      predictions: image id -> rows, as :func:`lcr_tf.evaluation.detect.predict` gives them.
      max_match_distance_px: the matching's gate (MPII's single-person file pairs as the evaluation does).
    Returns:
      row -> {file name: path}.
    Raises:
      ValueError: a dataset without a native format here; an image without predictions (named).
    """
    if dataset not in ("mpii", "mupots"):
        raise ValueError(f"no native results writer for {dataset!r} here (coco's is in "
                         "lcr_tf.evaluation.coco_keypoints)")
    missing_images(ground_truth, predictions)
    out: Dict[str, Dict[str, str]] = {}
    for method in MODES:
        folder = os.path.join(results_dir, method)
        if dataset == "mpii":
            single, multi = mpii_pred_structs(ground_truth, predictions, method, max_match_distance_px)
            files = {MPII_SINGLE_FILE: {"pred": single}, MPII_MULTI_FILE: {"pred": multi}}
        else:
            pred2d, pred3d = mupots_prediction_variables(ground_truth, predictions, method)
            files = {MUPOTS_2D_FILE: pred2d, MUPOTS_3D_FILE: pred3d}
        out[method] = {}
        for name, variables in files.items():
            path = os.path.join(folder, name)
            _save_mat(path, variables)
            out[method][name] = path
    return out


def _save_mat(path: str, variables: Mapping[str, Any]) -> None:
    """``scipy.io.savemat`` (MATLAB 5 format, compressed) through a temporary name."""
    import scipy.io
    with atomic_files.replacing(path) as tmp:
        scipy.io.savemat(tmp, dict(variables), do_compression=True, oned_as="row")


def _struct_array(entries: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> np.ndarray:
    """A 1 x n MATLAB struct array (a structured object array, as ``savemat`` writes them)."""
    array = np.zeros((1, len(entries)), dtype=[(f, object) for f in fields])
    for i, entry in enumerate(entries):
        for f in fields:
            array[0, i][f] = entry[f]
    return array


_EMPTY = np.zeros((0, 0))  # MATLAB's [] (isempty is true)
_POINT_FIELDS = ("id", "x", "y", "score")
_RECT_FIELDS = ("annopoints", "score")


def _mpii_points(pose2d_lcr: np.ndarray, score: float, present: Optional[np.ndarray] = None):
    """One detection's ``annopoints``: a struct with ``point`` (1 x P: id, x, y, score), the MPII joints that
    LCR-13 gives (from the LCR-13 joints ``present``, (13,) bool, all by default), in MATLAB coordinates;
    [] when there is none."""
    pose, given = skeleton_lib.convert(np.asarray(pose2d_lcr, np.float64)[None], SKELETON, MPII,
                                       None if present is None else np.asarray(present, bool)[None])
    xy = mpii_annotations.to_mpii_coordinates(pose[0])
    points = [{"id": float(j), "x": float(xy[j, 0]), "y": float(xy[j, 1]), "score": float(score)}
              for j in np.flatnonzero(given[0])]
    return {"point": _struct_array(points, _POINT_FIELDS)} if points else _EMPTY


def mpii_pred_structs(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                      method: str, max_match_distance_px: Optional[float] = None):
    """The single-person and multi-person ``pred`` struct arrays (1 x N images) of one row (module
    docstring), ready for ``savemat``."""
    pairing = pair_people(ground_truth, predictions, method, max_match_distance_px)
    single_entries: List[Dict[str, Any]] = []
    multi_entries: List[Dict[str, Any]] = []
    for gt, link in zip(ground_truth, pairing.pred_to_gt):
        det = predictions[gt.image_id][method]
        scores = np.asarray(det[serving.SCORE], np.float64)
        poses = np.asarray(det[serving.POSE2D], np.float64)
        ids = [int(p) for p in (gt.person_ids or [])]
        single = gt.single_person if gt.single_person is not None else np.zeros(len(ids), bool)
        num_rects = max([int(gt.metadata.get("num_annorect", 0))] + ids)
        rects = [{"annopoints": _EMPTY, "score": _EMPTY} for _ in range(num_rects)]
        for d in np.flatnonzero(link >= 0):
            g = int(link[d])
            if single[g]:
                rects[ids[g] - 1] = {"annopoints": _mpii_points(poses[d], scores[d]), "score": float(scores[d])}
        single_entries.append({"image": {"name": gt.image_id}, "annorect": _struct_array(rects, _RECT_FIELDS)})
        # The detections that are not a single-person person's, by decreasing score, points inside the image.
        free = [d for d in np.argsort(-scores, kind="stable") if not (link[d] >= 0 and single[int(link[d])])]
        inside = gt.inside(poses)
        multi = [{"annopoints": _mpii_points(poses[d], scores[d], inside[d]), "score": float(scores[d])}
                 for d in free]
        multi_entries.append({"image": {"name": gt.image_id}, "annorect": _struct_array(multi, _RECT_FIELDS)})
    fields = ("image", "annorect")
    return _struct_array(single_entries, fields), _struct_array(multi_entries, fields)


def mupots_variable(image_id: str) -> str:
    """The MATLAB variable of a frame: ``TS3_000012`` (the reader's id) -> ``TS3_img_000012``."""
    sequence, frame = image_id.split("_")
    return f"{sequence}_img_{frame}"


def mupots_prediction_variables(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                                method: str):
    """({variable: (D, 17, 2) px}, {variable: (D, 17, 3) mm}) of one row (module docstring)."""
    pred2d: Dict[str, np.ndarray] = {}
    pred3d: Dict[str, np.ndarray] = {}
    for gt in ground_truth:
        det = predictions[gt.image_id][method]
        p2, _ = skeleton_lib.convert(np.asarray(det[serving.POSE2D], np.float64), SKELETON, MUPOTS)
        p3, _ = skeleton_lib.convert(np.asarray(det[serving.POSE3D], np.float64), SKELETON, MUPOTS)
        name = mupots_variable(gt.image_id)
        pred2d[name] = (p2 - mupots.PIXEL_OFFSET).reshape(-1, MUPOTS.num_joints, 2)
        pred3d[name] = (1000.0 * p3).reshape(-1, MUPOTS.num_joints, 3)
    return pred2d, pred3d
