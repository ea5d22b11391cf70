"""MPII Human Pose's rows (``--dataset=mpii`` of :mod:`lcr_tf.evaluate`): the package's own LCR-13 figures
(:func:`lcr_tf.evaluation.protocols.pckh_table` and the multi-person AP of
:func:`lcr_tf.evaluation.mpii_multi_person_ap`) and, beside them, the MPII toolkit's figures on the files
of :mod:`lcr_tf.evaluation.native_mpii` (:mod:`lcr_tf.evaluation.mpii_toolkit`), each named.

Both multi-person APs take the entries of the multi-person file: with the toolkit's ``groups_v12.mat``
(``--mpii_groups``) its groups, else each image's multi-person people as one group; an entry's
predictions are the detections the file puts in it. The test split (``--split=test``: no joints) is not
scored: its submission files are written (``--results_format=native``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from lcr_tf import evaluation
from lcr_tf.contracts import serving
from lcr_tf.evaluation import mpii_groups, mpii_toolkit, native_mpii, protocols
from lcr_tf.evaluation.ground_truth import GroundTruth
from lcr_tf.evaluation.pairing import Pairing, concat, methods, missing_images, pair_people, stack
from lcr_tf.evaluation.predictions_file import CANDIDATES, as_people
from lcr_tf.evaluation.tables import MODES, PCKH_ALPHA, PCKH_CURVE_ALPHAS, SKELETON, UPPER_BOUND, num

HEAD_SIZE = "MPII: 0.6 x the diagonal of the person's head box (lcr_tf.evaluation.mpii_head_size)"
GROUPS_NOTE = {
    native_mpii.BY_IMAGE: "groups_v12.mat (the MPII toolkit's multi-person groups, not in the annotation release) "
                          "was not given (--mpii_groups): each image's multi-person people form one group, whose "
                          "predictions are the image's detections not paired with one of its single-person people",
    native_mpii.BY_GROUPS: "groups of groups_v12.mat (--mpii_groups): the multi-person groups of the evaluated "
                           "images (those without a single-person person, as getMultiPersonGroups.m); each "
                           "group's predictions are the detections not paired with a single-person person whose "
                           "body centre lies in or near the group's objpos box (lcr_tf.evaluation.mpii_groups)",
}
TOOLKIT_NOTE = ("'toolkit': the MPII toolkit's figures (evaluatePCKh.m, evaluateAP.m, genTablePCK.m, genTableAP.m) "
                "on the files as written: MPII's 14 joints (upper neck and head top for Head), each body part the "
                "mean of its left and right joints, every single-person person counted (one without a detection "
                "misses all its joints). The package's figures are LCR-13's: the head centre for head, left and "
                "right annotations pooled, pckh_0.5 over the people paired with a detection (pckh_0.5_all over all). "
                "limbs12: the 12 limb joints both share, pooled; the toolkit's equals the package's "
                "pckh_limbs12_all when every single-person person has an objpos (the toolkit leaves out those "
                "without)")
TEST_NOTE = ("MPII's test set has no joint annotations: nothing is scored; the submission files "
             "(pred_keypoints_mpii.mat, pred_keypoints_mpii_multi.mat) are written for MPII's server")


def prepare(ground_truth: Sequence[GroundTruth], predictions: Dict[str, Dict[str, Any]], groups_file: Optional[str],
            test: bool, results_dir: Optional[str]) -> Optional[List[List[np.ndarray]]]:
    """Checks the options and completes the predictions before MPII is evaluated.

    An image kept although its file could not be read gets an empty entry when the predictions have none
    (the model never saw it: its people are missed), so that both files keep one entry per image.

    Returns:
      the groups of ``groups_file`` (:func:`lcr_tf.evaluation.mpii_groups.read_groups`), or None.
    Raises:
      ValueError: the test split without ``results_dir`` (nothing to score, nothing written); a bad groups
        file (named). FileNotFoundError: no groups file there.
    """
    if test and not results_dir:
        raise ValueError("mpii --split=test: the test images have no joints, so nothing can be scored; give "
                         "--results_format=native (and --results_dir) to write the submission files")
    nobody = as_people([], [], [])
    for gt in ground_truth:
        if gt.unreadable and gt.image_id not in predictions:
            predictions[gt.image_id] = {**{m: dict(nobody) for m in MODES},
                                        CANDIDATES: {serving.POSE2D: nobody[serving.POSE2D],
                                                     serving.POSE3D: nobody[serving.POSE3D]}}
    return mpii_groups.read_groups(groups_file) if groups_file else None


def notes(groups: Optional[Sequence], test: bool, info: Mapping[str, Any], skeleton=SKELETON) -> Dict[str, Any]:
    """MPII's fields of the results that say how its figures and files are defined (``skeleton``: the
    model's joints, :func:`lcr_tf.evaluation.predictions_file.model_people`)."""
    grouping = native_mpii.BY_IMAGE if groups is None else native_mpii.BY_GROUPS
    out: Dict[str, Any] = {"head_size": HEAD_SIZE, "groups_note": GROUPS_NOTE[grouping],
                           "pckh_curve_alphas": list(PCKH_CURVE_ALPHAS), "toolkit_note": TOOLKIT_NOTE,
                           "mpii_written_joints": native_mpii.written_joints(skeleton)}
    if test:
        complete = not info.get("rejected") and info.get("evaluated_images") == info.get("listed")
        out.update(scored=False, test_note=TEST_NOTE, test_submission_complete=bool(complete))
        if not complete:
            out["test_note"] += (f"; INCOMPLETE: {info.get('evaluated_images')} of {info.get('listed')} test images "
                                 "(--max_images or rejected records): the toolkit asserts one entry per test image")
    return out


def build_submissions(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                      max_match_distance_px: Optional[float] = None, groups: Optional[Sequence] = None,
                      single_pairing: str = native_mpii.SINGLE_PAIRINGS[0]
                      ) -> Dict[str, Tuple[Pairing, native_mpii.Submission]]:
    """Per row (``ppi``, ``nms``): the evaluation's pairing of the detections with the people, and the
    MPII files' content (:func:`lcr_tf.evaluation.native_mpii.build_submission`), made once for both the
    figures and the files written."""
    missing_images(ground_truth, predictions)
    out = {}
    for method in MODES:
        pairing = pair_people(ground_truth, predictions, method, max_match_distance_px)
        out[method] = pairing, native_mpii.build_submission(ground_truth, predictions, method, pairing.pred_to_gt,
                                                            groups, single_pairing)
    return out


def evaluate_mpii(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                  max_match_distance_px: Optional[float] = None, groups: Optional[Sequence] = None,
                  test: bool = False, single_pairing: str = native_mpii.SINGLE_PAIRINGS[0],
                  built: Optional[Mapping[str, Tuple[Pairing, native_mpii.Submission]]] = None) -> Dict[str, Any]:
    """MPII's rows (module docstring): per row the package's single-person PCKh@0.5 and multi-person AP
    (per joint, per body part, the 12 limb joints), and ``toolkit`` (:mod:`lcr_tf.evaluation.mpii_toolkit`).

    Args:
      groups: the toolkit's groups per annolist image, or None (by image).
      test: the test split: only the detections are counted (nothing to score).
      single_pairing: how the single-person file's detections are chosen
        (:func:`lcr_tf.evaluation.native_mpii.build_submission`), which the ``toolkit`` figures score.
      built: :func:`build_submissions`' output when the caller has it (it writes the same files), else made here.
    """
    missing_images(ground_truth, predictions)
    if test:
        return {**{m: {"detections": int(sum(len(predictions[gt.image_id][m][serving.SCORE]) for gt in ground_truth))}
                   for m in MODES}, UPPER_BOUND: None, "single_person_people": 0, "multi_person_people": 0}
    j = SKELETON.num_joints
    gt2d = stack(ground_truth, "pose2d", (j, 2))
    vis = concat([gt.annotated for gt in ground_truth], (j,)).astype(bool)
    head = stack(ground_truth, "head_size", ())
    single = concat([gt.single_person for gt in ground_truth], ()).astype(bool)
    if built is None:
        built = build_submissions(ground_truth, predictions, max_match_distance_px, groups, single_pairing)
    out: Dict[str, Any] = {}
    for method in methods(predictions, ground_truth):
        pairing = built[method][0] if method in built else pair_people(ground_truth, predictions, method,
                                                                       max_match_distance_px)
        row = protocols.pckh_table(pairing.pose2d[single], gt2d[single], vis[single], head[single],
                                   pairing.matched[single], SKELETON, PCKH_ALPHA, PCKH_CURVE_ALPHAS)
        row["pckh_limbs12"], row["pckh_limbs12_all"] = mpii_toolkit.limbs_pckh(
            pairing.pose2d[single], gt2d[single], vis[single], head[single], pairing.matched[single], SKELETON,
            PCKH_ALPHA)
        if method != UPPER_BOUND:
            submission = built[method][1]
            row["detections"] = pairing.detections
            row.update(_mpii_ap(ground_truth, predictions, method, submission))
            row["toolkit"] = {"pckh": mpii_toolkit.single_person_pckh(submission, ground_truth, PCKH_ALPHA),
                              "ap": mpii_toolkit.multi_person_ap(submission, ground_truth, PCKH_ALPHA),
                              "files": {"single_file": native_mpii.SINGLE_FILE, "multi_file": native_mpii.MULTI_FILE,
                                        **native_mpii.describe(submission)}}
        out[method] = row
    out.setdefault(UPPER_BOUND, None)
    out["single_person_people"] = int(single.sum())
    out["multi_person_people"] = int((~single).sum())
    return out


def _mpii_ap(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]], method: str,
             submission: native_mpii.Submission) -> Dict[str, Any]:
    """The package's multi-person AP (LCR-13) on the entries of the multi-person file (module docstring)."""
    j = SKELETON.num_joints
    groups: Dict[str, List[np.ndarray]] = {k: [] for k in ("p2", "s", "g2", "vis", "hs", "in")}
    for entry in submission.multi:  # one group (or image) at a time
        if not entry.annorects:
            continue
        gt = ground_truth[entry.image]
        wanted = {str(r) for r in entry.annorects}
        members = [g for g, pid in enumerate(gt.person_ids or []) if pid in wanted]
        det = predictions[gt.image_id][method]
        poses = np.asarray(det[serving.POSE2D], np.float64)[entry.detections].reshape(-1, j, 2)
        for key, value in (("p2", poses), ("s", np.asarray(det[serving.SCORE], np.float64)[entry.detections]),
                           ("g2", gt.pose2d[members]), ("vis", gt.annotated[members]), ("hs", gt.head_size[members]),
                           ("in", gt.inside(poses))):
            groups[key].append(value)
    if not groups["g2"]:
        return {"ap": None, "ap_per_joint": [None] * j, "ap_per_part": {p: None for p, _ in protocols.BODY_PARTS},
                "ap_limbs12": None, "groups": 0}
    ap = evaluation.mpii_multi_person_ap(groups["p2"], groups["s"], groups["g2"], groups["vis"], groups["hs"],
                                         PCKH_ALPHA, pred_present=groups["in"])
    parts = {}
    for part, names in protocols.BODY_PARTS:
        values = ap.per_joint[SKELETON.indices(names)]
        parts[part] = num(np.mean(values)) if np.all(np.isfinite(values)) else None
    limbs = ap.per_joint[SKELETON.indices(mpii_toolkit.LIMB_JOINTS)]
    return {"ap": num(ap.mean), "ap_per_joint": [num(v) for v in ap.per_joint], "ap_per_part": parts,
            "ap_limbs12": num(np.mean(limbs)) if np.all(np.isfinite(limbs)) else None, "groups": len(groups["g2"])}
