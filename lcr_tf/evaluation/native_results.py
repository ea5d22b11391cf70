"""The detections in each benchmark's own results format (``--results_format=native`` of
:mod:`lcr_tf.evaluate`), for the benchmarks that have one: the files their official tools and servers
read. Each is written per row, ``RESULTS_DIR/<row>/<file>`` (``ppi``, ``nms``), as the tools expect fixed
file names. Joints are converted from LCR-13 by :func:`lcr_tf.contracts.skeleton.convert`: a joint of the
benchmark's set with no LCR-13 source and no rule there (MuPoTS-3D's ``head_top``) is NaN, never guessed,
and the official tool counts it as missed. MPII's upper neck and head top, which its toolkit scores as
"Head", are estimated from LCR-13's head and shoulders by a rule measured on real annotations
(:mod:`lcr_tf.evaluation.native_mpii`).

* ``coco``: COCO's keypoint results file (:mod:`lcr_tf.evaluation.coco_keypoints`), always written for
  ``--dataset=coco`` unless ``--results_format=none``.
* ``mpii``: the ``pred`` struct of the MPII Human Pose evaluation toolkit (:mod:`lcr_tf.evaluation.native_mpii`),
  ``pred_keypoints_mpii.mat`` (single person: one entry per evaluated image, its ``annorect`` aligned with
  the annotation's, with their ``objpos`` and ``scale``) and ``pred_keypoints_mpii_multi.mat``
  (multi-person: one entry per group of the toolkit's ``groups_v12.mat`` when it is given, else per
  image), MATLAB 1-based pixels; the toolkit's own figures on them are in the results
  (:mod:`lcr_tf.evaluation.mpii_toolkit`).
* ``mupots``: the prediction files of MuPoTS-3D's MATLAB evaluation, ``preds_2d_kpt_mupots.mat`` and
  ``preds_3d_kpt_mupots.mat`` (:mod:`lcr_tf.evaluation.native_mupots`: one variable per frame, (D, 17, 2)
  ``annot2`` pixels and (D, 17, 3) millimetres; frames of the twenty sequences that were not evaluated get
  an empty variable, so that the script, which reads them all, runs).

Human3.6M and the synthetic benchmark have no official results file or server; their detections are in the
predictions file of ``--save_predictions``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from lcr_tf.contracts import atomic_files
from lcr_tf.evaluation import native_mpii, native_mupots
from lcr_tf.evaluation.ground_truth import GroundTruth
from lcr_tf.evaluation.pairing import missing_images, pair_people
from lcr_tf.evaluation.tables import MODES

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
MPII_SINGLE_FILE = native_mpii.SINGLE_FILE
MPII_MULTI_FILE = native_mpii.MULTI_FILE


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
                         max_match_distance_px: Optional[float] = None, data_root: Optional[str] = None,
                         facts: Optional[Dict[str, Any]] = None,
                         mpii_groups: Optional[Sequence[Sequence[np.ndarray]]] = None,
                         mpii_pairing: str = native_mpii.SINGLE_PAIRINGS[0],
                         mpii_submissions: Optional[Mapping[str, native_mpii.Submission]] = None
                         ) -> Dict[str, Dict[str, str]]:
    """Writes the native results files of ``mpii`` or ``mupots`` (module docstring) under
    ``results_dir/<row>/``, for the rows ``ppi`` and ``nms``.

    Args:
      ground_truth: the evaluated images (:func:`lcr_tf.evaluation.ground_truth.read_dataset`).
      predictions: image id -> rows, as :func:`lcr_tf.evaluation.detect.predict` gives them.
      max_match_distance_px: the matching's gate (MPII's single-person file pairs as the evaluation does).
      data_root: the dataset's ROOT (MuPoTS-3D: the frames that were not evaluated get empty variables).
      facts: a dict that receives what the results should say about the files (MuPoTS-3D's placeholders,
        MPII's entries, grouping and pairing per row).
      mpii_groups: MPII: the toolkit's groups per annolist image (:func:`lcr_tf.evaluation.mpii_groups.
        read_groups`): the multi-person file by group, else by image.
      mpii_pairing: MPII: how the single-person file picks each person's detection
        (:func:`lcr_tf.evaluation.native_mpii.build_submission`).
      mpii_submissions: MPII: the files' content per row when the caller has built it (with the same
        options), else built here.
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
    if dataset == "mupots":  # the same for every row
        empty2d, empty3d, placeholders = native_mupots.placeholder_variables(
            data_root, [native_mupots.mupots_variable(gt.image_id) for gt in ground_truth])
        if facts is not None:
            facts["mupots_native_files"] = placeholders
    for method in MODES:
        folder = os.path.join(results_dir, method)
        if dataset == "mpii":
            if mpii_submissions is not None:
                submission = mpii_submissions[method]
            else:
                pairing = pair_people(ground_truth, predictions, method, max_match_distance_px)
                submission = native_mpii.build_submission(ground_truth, predictions, method, pairing.pred_to_gt,
                                                          mpii_groups, mpii_pairing)
            files = native_mpii.file_variables(submission, ground_truth)
            if facts is not None:
                facts.setdefault("mpii_native_files", {})[method] = native_mpii.describe(submission)
        else:
            pred2d, pred3d = native_mupots.prediction_variables(ground_truth, predictions, method)
            files = {native_mupots.MUPOTS_2D_FILE: {**pred2d, **empty2d},
                     native_mupots.MUPOTS_3D_FILE: {**pred3d, **empty3d}}
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
