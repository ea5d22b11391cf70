"""MuPoTS-3D's native prediction files: what its official MATLAB evaluation (``mpii_mupots_multiperson_eval.m``,
as distributed with its adaptations for multi-person methods) ``load``s, and the same arrays for the package's
own implementation of that evaluation (:mod:`lcr_tf.evaluation.mupots_benchmark`), so that both score
exactly what is written.

Two files, one variable per frame, ``TS<s>_img_<frame:06d>`` (the frame's image name, 0-based):

* ``preds_2d_kpt_mupots.mat``: (D, 17, 2) pixels in ``annot2``'s convention
  (:data:`lcr_tf.datasets.mupots.PIXEL_OFFSET` removed), the ``mupots17`` joint order of ``annot2``;
* ``preds_3d_kpt_mupots.mat``: (D, 17, 3) millimetres, camera axes, body-centred (the script is run with
  ``is_relative = 1``, which centres prediction and ground truth on their pelvis, joint 15).

D = 0 for a frame without detections. The detections' joints are converted from the model's joint set by
:func:`lcr_tf.contracts.skeleton.convert`: from LCR-13, ``pelvis`` is the mid-hip, ``neck`` the
mid-shoulder and ``spine`` the body centre (approximations of MuPoTS-3D's own joints), and ``head_top``
has no source: it is written as NaN, which the script counts as a miss (a perfect LCR-13 prediction
scores at most 13/14 = 92.9 % on its 14 joints). A model with a head top and a neck (``mupots14``) has them
written as predicted.

The script loops over all twenty sequences and every annotated frame of each; it fails on a variable that
is missing. When only part of the test set was evaluated (``--reader_option=sequences=...``,
``--max_images``), the other frames of the sequences found under the data root get a variable with no
detection (D = 0), so the script runs: its figures for those frames and sequences are then a model that
detected nobody, and the results list them (``placeholder_frames``, ``placeholder_sequences``).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from lcr_tf.contracts import serving
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets import mupots
from lcr_tf.evaluation.ground_truth import GroundTruth
from lcr_tf.evaluation.predictions_file import model_people
from lcr_tf.evaluation.tables import SKELETON

MUPOTS_2D_FILE = "preds_2d_kpt_mupots.mat"
MUPOTS_3D_FILE = "preds_3d_kpt_mupots.mat"
MUPOTS = skeleton_lib.get_skeleton(mupots.SKELETON)
#: The sequences the official script loops over.
OFFICIAL_SEQUENCES = tuple(range(1, 21))


def to_mupots17(pose2d, pose3d, skeleton=SKELETON) -> Tuple[np.ndarray, np.ndarray]:
    """Detections as the native files hold them (module docstring).

    Args:
      pose2d: (D, J, 2) pixels of the original image (the package's convention); pose3d: (D, J, 3) metres,
        body-centred, camera axes; both in the joint order of ``skeleton``.
    Returns:
      ((D, 17, 2) pixels in ``annot2``'s convention, (D, 17, 3) millimetres), float64, in ``mupots17``
      order; NaN for a joint the skeleton cannot give.
    """
    skel = skeleton_lib.get_skeleton(skeleton)
    j = skel.num_joints
    p2, _ = skeleton_lib.convert(np.asarray(pose2d, np.float64).reshape(-1, j, 2), skel, MUPOTS)
    p3, _ = skeleton_lib.convert(np.asarray(pose3d, np.float64).reshape(-1, j, 3), skel, MUPOTS)
    return p2 - mupots.PIXEL_OFFSET, 1000.0 * p3


def mupots_variable(image_id: str) -> str:
    """The MATLAB variable of a frame: ``TS3_000012`` (the reader's id) -> ``TS3_img_000012``."""
    sequence, frame = image_id.split("_")
    return f"{sequence}_img_{frame}"


def prediction_variables(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                         method: str) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """({variable: (D, 17, 2) px}, {variable: (D, 17, 3) mm}) of one row (``ppi`` / ``nms``) for the
    evaluated frames, from the model's own joints (:func:`lcr_tf.evaluation.predictions_file.model_people`)."""
    pred2d: Dict[str, np.ndarray] = {}
    pred3d: Dict[str, np.ndarray] = {}
    for gt in ground_truth:
        det, skeleton = model_people(predictions[gt.image_id], method)
        name = mupots_variable(gt.image_id)
        pred2d[name], pred3d[name] = to_mupots17(det[serving.POSE2D], det[serving.POSE3D], skeleton)
    return pred2d, pred3d


def placeholder_variables(data_root: Optional[str], evaluated: Sequence[str]
                          ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], Dict[str, Any]]:
    """Variables with no detection for the frames the official script reads that were not evaluated.

    Args:
      data_root: the MuPoTS-3D ROOT (``TS<s>/annot.mat``), or None (no placeholder is written).
      evaluated: the variable names already written.
    Returns:
      ({name: (0, 17, 2)}, {name: (0, 17, 3)}, facts for the results: ``placeholder_frames`` (how many of
      them the script scores: frames with a valid person), ``placeholder_sequences`` (the sequences with at
      least one such placeholder), ``sequences_missing`` (those
      of TS1-TS20 without an annot.mat under the root: the script cannot run without them), and a ``note``).
    """
    done = set(evaluated)
    empty2d: Dict[str, np.ndarray] = {}
    empty3d: Dict[str, np.ndarray] = {}
    partial, missing = [], []
    scored_placeholders = 0
    for s in OFFICIAL_SEQUENCES if data_root else ():
        name = f"TS{s}"
        try:
            sequence = mupots.load_sequence(os.path.join(data_root, name), name)
        except ValueError:  # no annot.mat, or one the reader cannot parse: the script cannot run either
            missing.append(name)
            continue
        # The script reads the variable of a frame only when someone in it is valid (it skips the others).
        scored = np.any(sequence.present & sequence.valid, axis=1)
        for f in range(sequence.num_frames):
            n = mupots_variable(mupots.MupotsReader.image_id((s, f)))
            if n in done:
                continue
            empty2d[n] = np.zeros((0, MUPOTS.num_joints, 2))
            empty3d[n] = np.zeros((0, MUPOTS.num_joints, 3))
            if scored[f]:
                scored_placeholders += 1
                if name not in partial:
                    partial.append(name)
    facts: Dict[str, Any] = {"placeholder_frames": scored_placeholders, "placeholder_sequences": partial,
                             "sequences_missing": missing}
    notes = []
    if scored_placeholders:
        notes.append(f"{scored_placeholders} frame(s) of {', '.join(partial)} were not evaluated: written with no "
                     "detection so that the official script runs; its figures for them are not this model's")
    if missing:
        notes.append(f"no readable annot.mat for {', '.join(missing)} under the data root: the official script "
                     "loops over TS1-TS20 and needs all of them")
    facts["note"] = "; ".join(notes) or "every frame the official script reads was evaluated"
    return empty2d, empty3d, facts
