"""COCO person keypoints (``--dataset=coco`` of :mod:`lcr_tf.evaluate`): the detections written as a COCO
keypoint results file and scored by the reference implementation, ``pycocotools``' ``COCOeval``
(``iouType='keypoints'``: OKS, AP over OKS 0.50:0.05:0.95, AP50, AP75, AP medium / large and the same
for AR, at COCO's 20 detections per image).

``pycocotools`` is an optional extra (``pip install 'lcr_tf[coco]'``), imported only here and only when
COCO is evaluated (:func:`require_pycocotools` names the extra when it is missing).

Two scorings (:data:`SCORINGS`), each one COCOeval run per row (``ppi``, ``nms``):

* ``shared_joints``: LCR-13 has no face points, so the detections are judged on the 12 joints that LCR-13
  and COCO's 17 share (:data:`SHARED_JOINTS`: shoulders, elbows, wrists, hips, knees, ankles), with
  COCOeval's own per-joint sigmas for them (:func:`coco_sigmas`, read from ``pycocotools`` at run time).
  COCOeval gets the annotation file's ground truth with every annotation's ``keypoints`` cut to those
  joints and ``num_keypoints`` recounted on them (:func:`coco_ground_truth`), so that a person annotated
  only on the face is ignored, as COCOeval ignores people without keypoints; ``area``, ``bbox`` and
  ``iscrowd`` are the file's. The five face points (:data:`FACE_POINTS`) are neither predicted nor judged.
* ``coco17_head_on_nose``: the standard 17-joint figure, an **approximation**: LCR-13's head centre is
  written as the nose (:data:`HEAD_ON_NOSE_NOTE`), and COCOeval judges the 17 points with its sigmas.
  The eyes and ears, which the model does not predict, are written at the same point with visibility 0:
  COCO derives a result's box (and the area that decides whether an unmatched detection counts in AP
  medium / large) from all 17 points, and points left at (0, 0) would stretch it to the image's corner.
  This is the results file that is written, the one COCO's evaluation server reads.

Results file (:func:`results_entries`, :func:`write_results_file`): a JSON list of ``{"image_id": int,
"category_id": the file's person category (1 in COCO), "keypoints": [51], "score": float}``, one entry per
detection, the keypoints 17 ``(x, y, v)`` in COCO's order (:data:`lcr_tf.contracts.skeleton.COCO17`) and
COCO's pixel convention: COCO's keypoints are pixel indices, the package's coordinates put the centre of
pixel ``i`` at ``i + 0.5`` (:mod:`lcr_tf.contracts.geometry`), and the COCO reader adds its
``keypoint_offset`` (0.5) to the file's values; the results subtract that same offset, so a detection equal
to a ground truth read by the reader gives back the file's integers. ``v`` is 1 for a predicted point and 0
for one that is not (a joint the detection lacks is written as ``0, 0, 0``). ``score`` is the detection's
(a PPI score, a sum of proposal probabilities, may exceed 1: COCOeval only ranks the scores). Coordinates
are written to 0.001 px, scores to 1e-6; the scores reported are those of the file's values.

Images: every image of the annotation file is evaluated (the reader's ``include_empty``), as COCO's own
evaluation judges all of them: a detection on an image without people is a false positive. A record the
reader rejects is left out of COCOeval's ``imgIds`` and counted in ``"rejected"``. With a SavedModel, an
image whose file cannot be read, or that the model's limits refuse, is evaluated as an image where the model
found nobody (``refused_images``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from lcr_tf import datasets
from lcr_tf.contracts import atomic_files, serving
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets import coco as coco_reader
from lcr_tf.datasets.base import file_exists, file_name, join_path, load_json
from lcr_tf.evaluation.detect import predict, refused_summary
from lcr_tf.evaluation.ground_truth import GroundTruth, read_records
from lcr_tf.evaluation.pairing import missing_images
from lcr_tf.evaluation.predictions_file import CANDIDATES, as_people, read_predictions, write_predictions
from lcr_tf.evaluation.tables import MODES, SKELETON

DATASET = "coco"
COCO = skeleton_lib.COCO17
#: The joints LCR-13 and COCO share (same names), in COCO's order.
SHARED_JOINTS: Tuple[str, ...] = tuple(n for n in COCO.joint_names if n in SKELETON.joint_names)
#: COCO's points that LCR-13 lacks (the face), in COCO's order.
FACE_POINTS: Tuple[str, ...] = tuple(n for n in COCO.joint_names if n not in SKELETON.joint_names)
SHARED = "shared_joints"
HEAD_ON_NOSE = "coco17_head_on_nose"
SCORINGS = (SHARED, HEAD_ON_NOSE)
SHARED_NOTE = (f"scored on the {len(SHARED_JOINTS)} joints LCR-13 and COCO share, with COCOeval's own sigmas "
               f"for them; the {len(FACE_POINTS)} face points ({', '.join(FACE_POINTS)}) are neither predicted "
               "nor judged")
HEAD_ON_NOSE_NOTE = ("APPROXIMATION: the standard 17-joint figure with LCR-13's head centre placed on the nose "
                     "(and, written with visibility 0, on the eyes and ears, which the model does not predict)")
#: COCOeval's keypoint figures, in the order of its ``stats``.
STAT_NAMES = ("ap", "ap50", "ap75", "ap_medium", "ap_large", "ar", "ar50", "ar75", "ar_medium", "ar_large")
#: The algorithm's name in the results file's name (COCO's ``[type]_[testset]_[alg]_results.json``).
RESULTS_ALGORITHM = "lcrnet"
_DECIMALS_PX = 3
_DECIMALS_SCORE = 6
_REJECTED_EXAMPLES = 20


def require_pycocotools():
    """``(pycocotools.coco, pycocotools.cocoeval)``; ImportError naming the extra when not installed."""
    try:
        from pycocotools import coco, cocoeval
    except ImportError as e:
        raise ImportError(f"--dataset=coco is scored by pycocotools' COCOeval, which cannot be imported ({e}); "
                          "install the optional extra: pip install 'lcr_tf[coco]' (or pip install pycocotools)"
                          ) from None
    return coco, cocoeval


def coco_sigmas(joint_names: Sequence[str] = COCO.joint_names) -> np.ndarray:
    """COCOeval's per-keypoint OKS sigmas (``Params(iouType='keypoints').kpt_oks_sigmas``, COCO's order) of
    ``joint_names`` (names of :data:`COCO`), (K,) float64."""
    _, cocoeval = require_pycocotools()
    sigmas = np.asarray(cocoeval.Params(iouType="keypoints").kpt_oks_sigmas, np.float64)
    if sigmas.shape != (COCO.num_joints,):
        raise ValueError(f"pycocotools' kpt_oks_sigmas has shape {sigmas.shape}, expected ({COCO.num_joints},) "
                         "in the order of the COCO17 skeleton")
    return sigmas[COCO.indices(joint_names)]


def scoring_joints(scoring: str) -> Tuple[str, ...]:
    """The COCO joints a scoring writes and judges: :data:`SHARED_JOINTS` or all 17."""
    if scoring not in SCORINGS:
        raise ValueError(f"unknown COCO scoring {scoring!r}; known: {', '.join(SCORINGS)}")
    return SHARED_JOINTS if scoring == SHARED else COCO.joint_names


def to_coco_keypoints(pose2d, scoring: str = HEAD_ON_NOSE,
                      keypoint_offset: float = coco_reader.DEFAULT_KEYPOINT_OFFSET) -> np.ndarray:
    """LCR-13 detections -> COCO keypoint triples.

    Args:
      pose2d: (D, 13, 2) px, the package's convention (LCR-13 order); NaN for a joint not predicted.
      scoring: :data:`SHARED` (the 12 shared joints) or :data:`HEAD_ON_NOSE` (17: the head centre on the
        nose, and with visibility 0 on the eyes and ears; module docstring).
      keypoint_offset: what the COCO reader added to the file's values (subtracted here).
    Returns:
      (D, K, 3) float64 ``(x, y, v)`` in COCO's pixel convention and order, K = 12 or 17; ``v`` 1 for a
      predicted point, 0 otherwise (x = y = 0 where the joint is not predicted at all).
    """
    joints = scoring_joints(scoring)
    pose2d = np.asarray(pose2d, np.float64).reshape(-1, SKELETON.num_joints, 2)
    # The shared joints are copied by name; COCO's face points have no rule from LCR-13 (NaN, mask False).
    points, predicted = skeleton_lib.convert(pose2d, SKELETON, COCO)
    written = predicted.copy()
    if scoring == HEAD_ON_NOSE:
        head = pose2d[:, SKELETON.index("head")]
        has_head = np.all(np.isfinite(head), axis=-1)
        for name in FACE_POINTS:
            points[:, COCO.index(name)] = head
            written[:, COCO.index(name)] = has_head
        predicted[:, COCO.index("nose")] = has_head
    index = COCO.indices(joints)
    xy = np.where(written[:, index, None], points[:, index] - float(keypoint_offset), 0.0)
    v = predicted[:, index].astype(np.float64)
    return np.concatenate([xy, v[..., None]], axis=-1)


def results_entries(predictions: Mapping[str, Mapping[str, Any]], coco_ids: Mapping[str, int], method: str,
                    category_id: int, scoring: str = HEAD_ON_NOSE,
                    keypoint_offset: float = coco_reader.DEFAULT_KEYPOINT_OFFSET) -> List[Dict[str, Any]]:
    """The COCO results of one row (module docstring), images in the order of ``coco_ids``.

    Args:
      predictions: image id (the reader's) -> {method: people of :mod:`lcr_tf.evaluation.predictions_file`}.
      coco_ids: the reader's image id -> COCO's integer image id, for the images to write.
      method: ``ppi`` or ``nms``.
    Returns:
      ``[{"image_id", "category_id", "keypoints" (3K floats), "score"}]``, values rounded as written.
    """
    out: List[Dict[str, Any]] = []
    for image_id, coco_id in coco_ids.items():
        people = predictions[image_id][method]
        keypoints = np.round(to_coco_keypoints(people[serving.POSE2D], scoring, keypoint_offset), _DECIMALS_PX)
        scores = np.round(np.asarray(people[serving.SCORE], np.float64), _DECIMALS_SCORE)
        for kp, score in zip(keypoints, scores):
            out.append({"image_id": int(coco_id), "category_id": int(category_id),
                        "keypoints": [float(v) for v in kp.reshape(-1)], "score": float(score)})
    return out


def results_file_name(split: Optional[str]) -> str:
    """COCO's name for a keypoint results file: ``person_keypoints_{split}2017_lcrnet_results.json``."""
    return f"person_keypoints_{split or 'val'}2017_{RESULTS_ALGORITHM}_results.json"


def write_results_file(path: str, entries: Sequence[Mapping[str, Any]]) -> None:
    """Writes a results list (:func:`results_entries`) as COCO's JSON, atomically."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    atomic_files.write_json(path, list(entries), separators=(",", ":"))


def coco_ground_truth(data: Mapping[str, Any], image_ids: Sequence[int], category_id: int,
                      joint_names: Sequence[str] = COCO.joint_names, file: str = "annotation file") -> Dict[str, Any]:
    """The ground truth given to COCOeval: the annotation file's images ``image_ids`` and their annotations
    of category ``category_id``, ``keypoints`` cut to ``joint_names`` (COCO's order kept) and
    ``num_keypoints`` recounted on them; every other field is the file's.

    Args:
      data: the loaded annotation file (``images``, ``annotations``).
      file: its name, for messages.
    Raises:
      ValueError naming the annotation: no ``area`` (OKS is scaled by it), or non-crowd ``keypoints`` that
      are not 51 numbers.
    """
    keep = set(int(i) for i in image_ids)
    index = COCO.indices(joint_names)
    images = [dict(im) for im in data.get("images", []) if isinstance(im, dict) and im.get("id") in keep]
    annotations = []
    for pos, ann in enumerate(data.get("annotations", [])):
        if not isinstance(ann, dict) or ann.get("image_id") not in keep:
            continue
        if ann.get("category_id", category_id) != category_id:
            continue
        where = f"{file}: annotation id {ann.get('id')} (annotations[{pos}])"
        crowd = bool(ann.get("iscrowd", 0))
        kp = ann.get("keypoints")
        if crowd and not (isinstance(kp, list) and len(kp) == 3 * COCO.num_joints):
            kp = [0] * (3 * COCO.num_joints)  # a crowd's keypoints are unused (all zero in COCO)
        try:
            triples = np.asarray(kp, np.float64).reshape(COCO.num_joints, 3)[index]
        except (TypeError, ValueError):
            raise ValueError(f"{where}: field 'keypoints' is not {3 * COCO.num_joints} numbers") from None
        if not isinstance(ann.get("area"), (int, float)):
            raise ValueError(f"{where}: has no numeric field 'area', by which COCOeval scales the OKS")
        entry = dict(ann)
        entry.update(category_id=category_id, iscrowd=int(crowd), keypoints=triples.reshape(-1).tolist(),
                     num_keypoints=int(np.count_nonzero(triples[:, 2] > 0)))
        annotations.append(entry)
    categories = [{"id": int(category_id), "name": "person", "supercategory": "person",
                   "keypoints": list(joint_names), "skeleton": []}]
    return {"images": images, "annotations": annotations, "categories": categories}


def cocoeval_keypoints(ground_truth: Mapping[str, Any], results: Sequence[Mapping[str, Any]],
                       sigmas, image_ids: Optional[Sequence[int]] = None):
    """Runs ``COCOeval(iouType='keypoints')`` with ``sigmas`` (K,) on the keypoint results.

    Args:
      ground_truth: a COCO dataset dict (:func:`coco_ground_truth`) whose keypoints have K points.
      results: results entries with K points each (:func:`results_entries`); they go through
        ``COCO.loadRes`` as a results file would (copies: loadRes adds fields).
      image_ids: COCOeval's ``imgIds`` (default: every image of ``ground_truth``).
    Returns:
      (the COCOeval object, evaluated, accumulated and summarised; its summary lines, as COCOeval prints
      them). pycocotools' progress prints are kept off stdout.
    """
    coco_api, cocoeval = require_pycocotools()
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        gt = coco_api.COCO()
        gt.dataset = copy.deepcopy(dict(ground_truth))  # COCOeval marks the ground truth's 'ignore' in place
        gt.createIndex()
        if results:
            dt = gt.loadRes(copy.deepcopy(list(results)))
        else:  # loadRes cannot take an empty list; no detection at all is an AP of 0, not an error
            dt = coco_api.COCO()
            dt.dataset = {"images": copy.deepcopy(gt.dataset["images"]),
                          "categories": copy.deepcopy(gt.dataset["categories"]), "annotations": []}
            dt.createIndex()
        evaluator = cocoeval.COCOeval(gt, dt, iouType="keypoints")
        evaluator.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        evaluator.params.imgIds = sorted(int(i) for i in (gt.getImgIds() if image_ids is None else image_ids))
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    summary = [line.strip() for line in log.getvalue().splitlines() if line.strip().startswith("Average")]
    return evaluator, summary


def stats_row(evaluator) -> Dict[str, Optional[float]]:
    """COCOeval's ``stats`` by name (:data:`STAT_NAMES`); None where COCOeval has no data (its -1)."""
    stats = np.asarray(evaluator.stats, np.float64)
    return {name: (None if value < 0 else float(value)) for name, value in zip(STAT_NAMES, stats)}


def make_coco_reader(data: str, split: Optional[str] = None, reader_options: Sequence[str] = ()):
    """The COCO reader of ``data``: a ROOT folder of the official layout (``split``, default ``val``), or an
    annotation file (``.json``; its images beside it or in ``--reader_option=image_dir``). Images without
    people are listed (``include_empty``; module docstring) unless ``keep_empty`` is given.

    Raises:
      ValueError: bad options (named).
    """
    options: Dict[str, Any] = datasets.parse_reader_options(datasets.reader_class(DATASET), list(reader_options))
    for clash, flag in (("input", "--data"), ("split", "--split")):
        if clash in options:
            raise ValueError(f"--reader_option {clash}: give it as {flag}")
    if os.path.isfile(data):
        if "annotation_file" in options:
            raise ValueError("coco: --data is an annotation file; --reader_option=annotation_file is not needed")
        options.update(annotation_file=data, split=split)
    else:
        if "annotation_file" in options:
            raise ValueError("coco: give --data=ROOT or --data=ANNOTATION_FILE, not "
                             "--reader_option=annotation_file")
        options.update(input=data, split=split or "val")
    if not options.get("keep_empty"):
        options["include_empty"] = True
    return datasets.get_reader(DATASET, **options)


def read_coco(reader, max_images: int = 0) -> Tuple[List[GroundTruth], Dict[str, int], Dict[str, Any]]:
    """The images of a COCO reader (the first ``max_images``, 0: all) as ground truth in LCR-13.

    Returns:
      (the images' ground truth, the reader's image id -> COCO's integer id (same order), facts for the
      results: ``reader``, ``listed``, ``evaluated_images``, ``rejected``, ``rejected_examples``).
    """
    read, rejected, listed = read_records(reader, DATASET, max_images)
    truths = [truth for truth, _ in read]
    ids = {truth.image_id: int(truth.metadata["coco_image_id"]) for truth in truths}
    info = {"reader": reader.describe(), "listed": listed, "evaluated_images": len(truths),
            "rejected": len(rejected), "rejected_examples": rejected[:_REJECTED_EXAMPLES],
            "images_without_people": reader.images_without_people}
    return truths, ids, info


def _predict_readable(saved_model: str, truths: Sequence[GroundTruth], images_path: str,
                      refused: List[Dict[str, str]]) -> Dict[str, Dict[str, Any]]:
    """:func:`lcr_tf.evaluation.detect.predict` on the images whose file is there; an image whose file is
    missing or cannot be read is not sent, gets no detection and no candidate, and is added to ``refused``
    with the reason (as the images the model's limits refuse)."""
    import dataclasses
    import sys

    reasons: Dict[str, str] = {}

    def loader(gt):
        def load() -> bytes:
            try:
                return gt.image_bytes()
            except (OSError, ValueError) as e:  # e.g. a file the reader found but cannot open
                reasons[gt.image_id] = f"cannot read the image file ({type(e).__name__}: {e})"
                return b""  # refused by predict's header check, the reason replaced below
        return load

    sent = []
    for gt in truths:
        path = join_path(images_path, str(gt.metadata.get("file_name", "")))
        if file_exists(path):
            sent.append(dataclasses.replace(gt, load_image=loader(gt)))
        else:
            reasons[gt.image_id] = f"image file {path} does not exist"
            refused.append({"image_id": gt.image_id, "reason": reasons[gt.image_id]})
            print(f"not sent to the model: image {gt.image_id}: {reasons[gt.image_id]}", file=sys.stderr)
    preds = predict(saved_model, sent, refused=refused) if sent else {}
    nobody = as_people([], [], [])
    for gt in truths:
        preds.setdefault(gt.image_id, {**{name: nobody for name in MODES},
                                       CANDIDATES: {serving.POSE2D: nobody[serving.POSE2D],
                                                    serving.POSE3D: nobody[serving.POSE3D]}})
    for item in refused:
        item["reason"] = reasons.get(item["image_id"], item["reason"])
    order = {gt.image_id: k for k, gt in enumerate(truths)}
    refused.sort(key=lambda item: order.get(item["image_id"], len(order)))
    return preds


def evaluate_coco(data: str, saved_model: Optional[str] = None, predictions: Optional[str] = None,
                  max_images: int = 0, save_predictions: Optional[str] = None, split: Optional[str] = None,
                  reader_options: Sequence[str] = (), results_dir: Optional[str] = None,
                  protocol: Optional[str] = None, max_match_distance_px: Optional[float] = None,
                  report_dir: Optional[str] = None, **unused: Any) -> Dict[str, Any]:
    """COCO keypoints: detections from a SavedModel or a predictions file, written as COCO results files
    (``results_dir/<row>/person_keypoints_<split>2017_lcrnet_results.json`` when ``results_dir`` is given)
    and scored by COCOeval in both scorings (module docstring).

    Returns:
      ``{"dataset": "coco", "num_images", "num_people" (non-crowd people with keypoints), reader facts,
      "scorings": {scoring: {"joints", "sigmas", "note", "judged_people"}}, "results_files": {row: path},
      row: {scoring: {STAT_NAMES...}, "detections", "cocoeval_summary": {scoring: [lines]}}}`` for the rows
      ``ppi`` and ``nms``.
    Raises:
      ImportError: pycocotools is missing. ValueError: bad options, predictions missing an image or
      malformed; FileNotFoundError.
    """
    require_pycocotools()  # before the model runs, not after
    if bool(saved_model) == bool(predictions):
        raise ValueError("give exactly one of saved_model and predictions")
    if protocol not in (None, "", "default"):
        raise ValueError(f"coco: has a single protocol; got --protocol={protocol!r}")
    if max_match_distance_px is not None:
        raise ValueError("coco: COCOeval matches detections to people by OKS; --max_match_distance_px is not used")
    if report_dir:
        raise ValueError("coco: --report_dir is not available; the figures are COCOeval's")
    reader = make_coco_reader(data, split, reader_options)
    ground_truth, coco_ids, info = read_coco(reader, max_images)
    if not ground_truth:
        raise ValueError(f"coco: no image to evaluate in {data} ({info['rejected']} record(s) rejected)")
    annotation_path = reader.annotation_path()
    file = file_name(annotation_path)
    raw = load_json(annotation_path, "COCO annotation file")
    category_id = coco_reader.person_category(raw, file)
    refused: List[Dict[str, str]] = []
    if saved_model:
        preds = _predict_readable(saved_model, ground_truth, reader.images_path(), refused)
        if save_predictions:
            write_predictions(save_predictions, preds, DATASET)
    else:
        preds = read_predictions(predictions, DATASET)
        missing_images(ground_truth, preds)
    truth = {scoring: coco_ground_truth(raw, coco_ids.values(), category_id, scoring_joints(scoring), file)
             for scoring in SCORINGS}
    sigmas = {scoring: coco_sigmas(scoring_joints(scoring)) for scoring in SCORINGS}

    def judged(dataset):
        return sum(1 for a in dataset["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0)

    results: Dict[str, Any] = {
        "dataset": DATASET, "num_images": len(ground_truth), "num_people": judged(truth[HEAD_ON_NOSE]),
        "split": reader.split, "annotation_file": file, "keypoint_offset": reader.keypoint_offset,
        "scorings": {scoring: {"joints": list(scoring_joints(scoring)),
                               "sigmas": [float(s) for s in sigmas[scoring]],
                               "note": SHARED_NOTE if scoring == SHARED else HEAD_ON_NOSE_NOTE,
                               "judged_people": judged(truth[scoring])} for scoring in SCORINGS},
        "measure": "pycocotools COCOeval, iouType='keypoints' (OKS), maxDets 20",
    }
    results.update(info)
    if saved_model:
        results.update(refused_summary(refused))
    files: Dict[str, str] = {}
    for method in MODES:
        row: Dict[str, Any] = {"detections": int(sum(len(preds[i][method][serving.SCORE]) for i in coco_ids)),
                               "cocoeval_summary": {}}
        for scoring in SCORINGS:
            entries = results_entries(preds, coco_ids, method, category_id, scoring, reader.keypoint_offset)
            if scoring == HEAD_ON_NOSE and results_dir:
                files[method] = os.path.join(results_dir, method, results_file_name(reader.split))
                write_results_file(files[method], entries)
            evaluator, summary = cocoeval_keypoints(truth[scoring], entries, sigmas[scoring], coco_ids.values())
            row[scoring] = stats_row(evaluator)
            row["cocoeval_summary"][scoring] = summary
        results[method] = row
    results["results_files"] = files
    return results


def format_coco_table(results: Mapping[str, Any]) -> str:
    """The COCOeval figures of :func:`evaluate_coco` as a fixed-width text table (%)."""
    lines = [f"coco: {results['num_images']} images, {results['num_people']} people (non-crowd, with keypoints), "
             f"{results.get('rejected', 0)} records rejected; {results['measure']}",
             f"{SHARED}: {SHARED_NOTE}", f"{HEAD_ON_NOSE}: {HEAD_ON_NOSE_NOTE}"]
    labels = ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L")
    lines.append(f"{'OKS (%)':<32}" + "".join(f"{label:>7}" for label in labels) + f"{'dets':>8}")
    for method in MODES:
        row = results[method]
        for scoring in SCORINGS:
            name = f"{method} {'shared 12' if scoring == SHARED else '17, head on nose (approx.)'}"
            cells = "".join(f"{'-':>7}" if row[scoring][k] is None else f"{100.0 * row[scoring][k]:>7.1f}"
                            for k in STAT_NAMES)
            lines.append(f"{name:<32}{cells}{row['detections']:>8d}")
    for method, path in (results.get("results_files") or {}).items():
        lines.append(f"COCO results file ({method}): {path}")
    if results.get("refused_images"):
        first = (results.get("refused_examples") or [{}])[0]
        lines.append(f"images not sent to the model, evaluated as no detection: {results['refused_images']}; "
                     f"first: {first.get('image_id')}: {first.get('reason')}")
    return "\n".join(lines)
