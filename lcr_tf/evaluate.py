"""Evaluates an exported LCR-Net (or saved predictions) on a benchmark, with the paper's measures.

    python -m lcr_tf.evaluate --dataset=synthetic --saved_model=DIR --data='val-*.tfrecord' \\
        --output=results.json [--max_images=N] [--save_predictions=preds.json] [--report_dir=DIR]
    python -m lcr_tf.evaluate --dataset=synthetic --predictions=preds.json --data='val-*.tfrecord' \\
        --output=results.json
    python -m lcr_tf.evaluate --dataset=h36m --protocol=1 --data=H36M_ROOT --saved_model=DIR --output=r.json
    python -m lcr_tf.evaluate --dataset=mpii --split=val --data=MPII_ROOT \\
        --reader_option=val_split_file=mpii_val.json --predictions=preds.json --output=r.json
    python -m lcr_tf.evaluate --dataset=mupots --data=MUPOTS_ROOT --predictions=preds.json --output=r.json

Datasets: ``synthetic`` (TFRecords of :mod:`lcr_tf.contracts.features`, e.g. the validation split that
``beam_jobs.build_tfrecords`` writes from the synthetic renderer), and the paper's benchmarks read straight
from their native files by the readers of :mod:`lcr_tf.datasets` (``--data`` is the dataset's ROOT as
its reader takes it; ``--split`` and ``--reader_option NAME=VALUE`` go to the reader): ``h36m``
(Human3.6M, ``--protocol`` 1, 2 or 3, the reader's test split), ``mpii`` (MPII Human Pose, ``--split``
val by default: the paper's 1k validation images, the reader's option ``val_split_file`` shares the split
with training) and ``mupots`` (MuPoTS-3D, the 20 sequences). Their measures are described under "Real
benchmarks" below; what follows up to there is the synthetic benchmark.

For each image the SavedModel's ``raw_proposals`` signature runs once; its candidates (original pixels)
go through the NumPy pose proposal integration (:func:`lcr_tf.postprocess.integrate_candidates`) twice:
mode ``paper`` (PPI, eq 7-8) and mode ``nms`` (the paper's NMS baseline), with the defaults of
:func:`lcr_tf.serving.inference.default_params`. With ``--predictions`` those detections are read from a file
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

* images without people (pure negatives: background scenes, or only crowds) are evaluated like the
  others: every detection there is a false positive in ``ap``, and ``empty_images`` (their count) and
  ``detections_per_empty_image`` (the mean number of detections scoring at least
  :data:`DETECTION_SCORE` on them; null without such images) say how often the detector sees people in
  an empty scene. ``detections`` counts every detection, whatever its score.

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
     "detection_score": DETECTION_SCORE,
     "ppi": {"pckh_0.5", "mpjpe_mm", "pa_mpjpe_mm", "ap", "ap_per_joint" (J), "matched", "missed",
             "detections", "empty_images", "detections_per_empty_image"},
     "nms": {... same ...},
     "upper_bound": {"pckh_0.5", "mpjpe_mm", "pa_mpjpe_mm", "matched", "missed"} or null}

Each row also holds ``pckh_per_joint`` (J, LCR-13 order) and ``pckh_curve``: PCKh at the thresholds
``pckh_curve_alphas`` (0.05 to 1 head sizes), and where the 2D error comes from, as medians over the
matched people (:func:`lcr_tf.evaluation.error_parts`): ``translation_hs`` (how far the mean joint is
from the truth's, in head sizes), ``shape_hs`` (the mean joint error once both poses are centred) and
``extent_ratio`` (predicted over true spread of the joints). Fractions are in [0, 1]; a measure over no
person is null.

Real benchmarks (``h36m``, ``mpii``, ``mupots``). Everything is compared in **LCR-13**, the model's joint
set: the dataset's ground truth (2D, and 3D where it has 3D) is converted with
:func:`lcr_tf.contracts.skeleton.convert` (Human3.6M's and MPII's ``head`` is the midpoint of neck and head top,
MuPoTS-3D has its own); a joint the conversion cannot derive for a person is left out through the masks
(the JSON's ``"joints"`` names the compared joints, ``"joints_note"`` says this). Detections are matched
to the annotated people of their image by the Hungarian algorithm on the mean 2D joint distance as above
(``--max_match_distance_px`` gates it). Each table has the rows ``ppi``, ``nms`` and, when the predictions
hold candidates, ``upper_bound`` (each annotated person paired with its closest candidate in 2D). A record
the reader rejects is counted in ``"rejected"`` with its reason (the first ones in ``"rejected_examples"``).
The tables (:mod:`lcr_tf.evaluation.protocols`):

* ``h36m``: one person per frame; the detection used is the image's top-scoring one, matched (or not, if
  the gate refuses it) by the same Hungarian matching. MPJPE ("Abs.", both poses centred on their own
  body centre) and PA-MPJPE ("Align.", after Procrustes alignment) in mm, per action
  (``per_action``), and their mean over actions (``mpjpe_mm`` / ``pa_mpjpe_mm``: the literature's average
  of per-action means; ``*_pooled``: the mean over frames). Protocol 1 is conventionally reported
  aligned; both are given for every protocol.
* ``mpii``: PCKh@0.5 of the single-person people (MPII's ``single_person`` set) matched to a detection,
  per joint, per body part (head, shoulder, elbow, wrist, hip, knee, ankle) and in total
  (``pckh_0.5``; ``pckh_0.5_all`` counts the joints of unmatched people as wrong), with MPII's head size,
  0.6 x the diagonal of the person's head box (:func:`lcr_tf.evaluation.mpii_head_size`); people without a
  head box are not evaluated (``people_without_head_box``). Multi-person AP@0.5 per joint, per body part
  (mean of the left and right joints) and their mean (``ap``): the evaluation toolkit's groups file
  (``groups_v12.mat``) is not part of the annotation release, so each image's multi-person people form one
  group, whose predictions are the image's detections not matched to one of its single-person people;
  predicted joints outside the image are not reported (as on synthetic images).
* ``mupots``: 3DPCK (joints within 150 mm) and its AUC (thresholds 0, 5, ..., 150 mm) per sequence and
  overall (mean over sequences as MuPoTS-3D reports it, and pooled over all joints), over all annotated
  people (an unmatched person misses every joint: Table 8 a) and over matched people only (Table 8 b);
  3D body-centred, metres. The reference 3D is ``univ_annot3`` by default (``--mupots_3d=univ``):
  MuPoTS-3D's own evaluation scores against the poses rescaled to its universal skeleton, which takes out
  the subjects' sizes that a monocular method cannot observe; ``--mupots_3d=annot3`` uses the metric
  poses instead. People whose ``isValidFrame`` is 0 are left out by the reader, as MuPoTS's evaluation does.

Images are read (from the record's bytes or ``image_path``) only to run the model, for MPII's image size
(whether a predicted joint is inside the image) and for the pictures of ``--report_dir``.

Predictions file (``--save_predictions`` / ``--predictions``)::

    {"format": "lcr_tf.evaluate/predictions", "version": 2, "skeleton": "lcr13", "dataset": "h36m",
     "images": {image_id: {"ppi": {"scores": [D], "pose2d_px": [D][J][2], "pose3d_m": [D][J][3]},
                           "nms": {... same ...},
                           "candidates": {"pose2d_px": [M][J][2], "pose3d_m": [M][J][3]}}}}

Image ids are those of the dataset's reader (e.g. ``S11_Directions_1.55011271_000064``, ``015601864.jpg``,
``TS3_000012``). 2D in pixels of the original image (x right, y down, origin top-left; written to
0.001 px), 3D in metres, camera axes (x right, y down, z away), body-centred (written to 0.01 mm).
``candidates`` may be omitted (no upper bound then); they make most of the file (up to ``max_candidates``
per image). ``dataset`` (version 2) names the benchmark the file was made on; evaluating it on another is
refused. Version 1 files (no ``dataset``) are still read.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from absl import flags

from lcr_tf import cli
from lcr_tf.contracts import features
from lcr_tf.contracts import skeleton as skeleton_lib

FLAGS = flags.FLAGS
_DEFINED: List[str] = []

MODES = ("ppi", "nms")
# The integration mode of lcr_tf.postprocess for each reported row.
_PPI_MODE = {"ppi": "paper", "nms": "nms"}
PREDICTIONS_FORMAT = "lcr_tf.evaluate/predictions"
PREDICTIONS_VERSION = 2
# Versions read by read_predictions (1: no "dataset" field).
READABLE_VERSIONS = (1, 2)
PCKH_ALPHA = 0.5
# Thresholds of the PCKh curve (head sizes), 0.05 to 1.
PCKH_CURVE_ALPHAS = tuple(round(0.05 * i, 2) for i in range(1, 21))
# Medians over matched people of the parts of their 2D error (lcr_tf.evaluation.error_parts).
ERROR_PART_KEYS = ("translation_hs", "shape_hs", "extent_ratio")
# Side of the square head box of a synthetic person, metres (an adult head is about 0.2-0.25 m tall).
SYNTHETIC_HEAD_SIDE_M = 0.25
HEAD_SIZE_DEFINITION = ("0.6 x diagonal of a square head box of side 0.25 m projected at the person's "
                        "least-squares 2D/3D image scale (weak perspective)")
_SKELETON = skeleton_lib.LCR13
# A detection scoring at least this is a person the detector reports: the figures on images without
# people count these, and the report draws these. PPI scores are sums of proposal probabilities, so a
# well-supported person scores above 1 and a stray proposal far below.
DETECTION_SCORE = 0.5


def define_flags() -> None:
    """Defines the flags (only when run as a program, so importing the module defines none)."""
    before = set(FLAGS)
    flags.DEFINE_enum("dataset", None, sorted(DATASETS),
                      "Benchmark to evaluate on: synthetic (TFRecords), or h36m (Human3.6M), mpii (MPII Human "
                      "Pose), mupots (MuPoTS-3D) read from their native files by the lcr_tf.datasets readers.")
    flags.DEFINE_string("protocol", None, "Human3.6M's protocol: 1, 2 or 3 (P1: S11 camera 2 every 64th frame; "
                        "P2: S9 and S11 every 5th frame; P3: P2 on camera 3, trial 1). Refused elsewhere: the "
                        "other benchmarks have a single protocol.")
    flags.DEFINE_string("split", None, "Split of the dataset's reader (default: test for h36m, val for mpii: the "
                        "paper's 1k validation images, all for mupots). Not for synthetic.")
    flags.DEFINE_multi_string("reader_option", [], "NAME=VALUE option of the dataset's reader (repeatable), e.g. "
                              "--reader_option=val_split_file=mpii_val.json for mpii, "
                              "--reader_option=sequences=1,2 for mupots, "
                              "--reader_option=frame_pattern=... for h36m. Not for synthetic.")
    flags.DEFINE_enum("mupots_3d", "univ", list(MUPOTS_3D), "MuPoTS-3D's reference 3D: univ (univ_annot3, "
                      "the poses on MuPoTS-3D's universal skeleton, as its evaluation scores) or annot3 (metric "
                      "poses at the subjects' own sizes).")
    flags.DEFINE_string("saved_model", None, "SavedModel of lcr_tf.export: a version folder or the base folder "
                        "of versions (the highest is used). Exclusive with --predictions.")
    flags.DEFINE_string("predictions", None, "JSON of detections per image id, as --save_predictions writes "
                        "it, evaluated instead of running a model. Exclusive with --saved_model.")
    flags.DEFINE_string("data", None, "Ground truth. synthetic: TFRecord glob(s) (comma-separated) of the "
                        "lcr_tf.contracts.features schema, e.g. 'synthetic/val-*.tfrecord'. h36m / mpii / mupots: the "
                        "dataset's ROOT folder as its reader takes it (lcr_tf.datasets).")
    flags.DEFINE_string("output", None, "JSON file for the results table.")
    flags.DEFINE_string("save_predictions", None, "Also write the model's detections and candidates per "
                        "image to this JSON (reusable with --predictions).")
    flags.DEFINE_integer("max_images", 0, "Evaluate the first N images of --data only (0: all).",
                         lower_bound=0)
    flags.DEFINE_float("max_match_distance_px", None, "Gate of the detection / ground-truth matching: a pair "
                       "whose mean 2D joint distance exceeds this many pixels is never matched (default: "
                       "no gate). PCKh's head size: MPII's, 0.6 x the diagonal of the head box (synthetic "
                       "images: a 0.25 m head box at the person's image scale).", lower_bound=0.0)
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
      head_size: (G,) float64 px, PCKh's head size (NaN where unknown).
      width, height: the image's size, px (0 where unknown: every point is then taken as inside).
      pose3d_mask: (G, J) bool, the joints with a 3D ground truth, or None for all.
      group: the image's group in the tables (Human3.6M action, MuPoTS-3D sequence), or "".
      single_person: (G,) bool, MPII's single-person people, or None.
      load_image: returns the image file's bytes when ``encoded`` is empty (real datasets load lazily).
    """

    image_id: str
    encoded: bytes
    pose2d: np.ndarray
    annotated: np.ndarray
    pose3d: np.ndarray
    head_size: np.ndarray
    width: int
    height: int
    pose3d_mask: Optional[np.ndarray] = None
    group: str = ""
    single_person: Optional[np.ndarray] = None
    load_image: Optional[Callable[[], bytes]] = dataclasses.field(default=None, repr=False)

    def inside(self, pose2d: np.ndarray) -> np.ndarray:
        """(..., J, 2) px -> (..., J) bool, True for the joints inside the image (all when the size is
        unknown)."""
        if self.width <= 0 or self.height <= 0:
            return np.all(np.isfinite(pose2d), axis=-1)
        size = np.array([self.width, self.height], np.float64)
        return np.all((pose2d >= 0.0) & (pose2d <= size), axis=-1)

    def image_bytes(self) -> bytes:
        """The encoded image: ``encoded``, else what ``load_image`` reads."""
        if self.encoded or self.load_image is None:
            return self.encoded
        return self.load_image()


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
    """Reads the images of TFRecord shards (lcr_tf.contracts.features schema), in shard order.

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
    from lcr_tf.serving import export as export_lib
    from lcr_tf.serving import inference
    from lcr_tf.postprocess import integration
    loaded = tf.saved_model.load(export_lib.latest_version_dir(saved_model))
    signature = loaded.signatures["raw_proposals"]
    params = None
    out: Dict[str, Dict[str, Any]] = {}
    for gt in images:
        raw = {k: v.numpy()[0] for k, v in signature(images=tf.constant([gt.image_bytes()])).items()}
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


def write_predictions(path: str, predictions: Mapping[str, Mapping[str, Any]],
                      dataset: Optional[str] = None) -> None:
    """Writes :func:`predict`'s output in the predictions format of the module docstring (``dataset``: the
    benchmark's name, recorded so that the file is not evaluated on another)."""
    doc = {"format": PREDICTIONS_FORMAT, "version": PREDICTIONS_VERSION, "skeleton": _SKELETON.name,
           "images": {k: _to_lists(dict(v)) for k, v in predictions.items()}}
    if dataset:
        doc["dataset"] = dataset
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))


def read_predictions(path: str, dataset: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """Reads a predictions file (module docstring) into :func:`predict`'s structure.

    Args:
      dataset: the benchmark evaluated; a file made on another one (its ``dataset`` field) is refused.
    Raises ValueError naming the file, the image id and the field on a malformed entry.
    """
    try:
        with open(path) as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != PREDICTIONS_FORMAT:
        raise ValueError(f"{path}: not a predictions file (expected \"format\": \"{PREDICTIONS_FORMAT}\")")
    if doc.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"{path}: predictions version {doc.get('version')}, this reader reads "
                         f"{', '.join(map(str, READABLE_VERSIONS))}")
    if dataset and doc.get("dataset") not in (None, dataset):
        raise ValueError(f"{path}: predictions made on dataset {doc.get('dataset')!r}, evaluated on {dataset!r}")
    if not isinstance(doc.get("images", {}), dict):
        raise ValueError(f"{path}: field 'images' must map image ids to entries")
    if doc.get("skeleton", _SKELETON.name) != _SKELETON.name:
        raise ValueError(f"{path}: skeleton {doc.get('skeleton')!r}, expected {_SKELETON.name!r}")
    j = _SKELETON.num_joints
    out: Dict[str, Dict[str, Any]] = {}
    for image_id, entry in (doc.get("images") or {}).items():
        where = f"{path}: image {image_id!r}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: the entry must be an object with fields {', '.join(MODES)}")
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
    paired people ((N, J, ...) each), and the medians over people of their 2D error's parts
    (:func:`lcr_tf.evaluation.error_parts`: ``translation_hs``, ``shape_hs``, ``extent_ratio``); None over
    no person."""
    from lcr_tf import evaluation
    j = _SKELETON.num_joints
    if len(gt2d) == 0:
        return {"pckh_0.5": None, "mpjpe_mm": None, "pa_mpjpe_mm": None, "pckh_per_joint": [None] * j,
                "pckh_curve": [None] * len(PCKH_CURVE_ALPHAS),
                **{name: None for name in ERROR_PART_KEYS}}
    curve = evaluation.pckh_curve(pred2d, gt2d, annotated, head_size, PCKH_CURVE_ALPHAS)
    parts = evaluation.error_parts(pred2d, gt2d, annotated, head_size)
    medians = {name: _num(np.nanmedian(values)) if np.isfinite(values).any() else None
               for name, values in zip(ERROR_PART_KEYS, (parts.translation, parts.shape, parts.extent_ratio))}
    return {"pckh_0.5": _num(evaluation.pckh(pred2d, gt2d, annotated, head_size, PCKH_ALPHA)),
            "mpjpe_mm": _num(np.mean(evaluation.mpjpe(pred3d, gt3d, _SKELETON))),
            "pa_mpjpe_mm": _num(np.mean(evaluation.pa_mpjpe(pred3d, gt3d))),
            "pckh_per_joint": [_num(v) for v in evaluation.pckh_per_joint(pred2d, gt2d, annotated, head_size,
                                                                          PCKH_ALPHA)],
            "pckh_curve": [_num(v) for v in curve], **medians}


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
    _missing_images(ground_truth, predictions)
    j = _SKELETON.num_joints
    results: Dict[str, Any] = {"num_images": len(ground_truth),
                               "num_people": int(sum(len(gt.pose2d) for gt in ground_truth)),
                               "head_size": HEAD_SIZE_DEFINITION, "joints": list(_SKELETON.joint_names),
                               "pckh_curve_alphas": list(PCKH_CURVE_ALPHAS), "detection_score": DETECTION_SCORE}
    for name in MODES:
        pairs: Dict[str, List[np.ndarray]] = {k: [] for k in ("p2", "p3", "g2", "g3", "vis", "hs")}
        ap_inputs: Dict[str, List[np.ndarray]] = {k: [] for k in ("p2", "s", "g2", "vis", "hs", "in")}
        matched = detections = 0
        on_empty: List[int] = []  # reported detections of each image without people
        for gt in ground_truth:  # one image at a time; each image's people are vectorised
            people = predictions[gt.image_id][name]
            detections += len(people["scores"])
            if len(gt.pose2d) == 0:
                on_empty.append(int(np.count_nonzero(people["scores"] >= DETECTION_SCORE)))
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
        row.update(matched=int(matched), missed=int(results["num_people"] - matched), detections=int(detections),
                   empty_images=len(on_empty),
                   detections_per_empty_image=_num(np.mean(on_empty)) if on_empty else None)
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
            write_predictions(save_predictions, preds, "synthetic")
    else:
        preds = read_predictions(predictions, "synthetic")
    results = {"dataset": "synthetic"}
    results.update(evaluate_detections(ground_truth, preds, max_match_distance_px))
    if report_dir:
        from lcr_tf import report
        report.write_report(report_dir, results, ground_truth, preds, title="LCR-Net on synthetic images",
                            notes=report_notes)
    return results


# --------------------------------------------------------------------------------------------------
# Real benchmarks: ground truth from the dataset readers
# --------------------------------------------------------------------------------------------------

REAL_DATASETS = ("h36m", "mpii", "mupots")
MUPOTS_3D = ("univ", "annot3")
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
# How many rejected records are listed by name in the results.
_REJECTED_EXAMPLES = 20


def parse_h36m_protocol(protocol) -> int:
    """``1`` / ``"2"`` / ``"P3"`` -> 1, 2 or 3; ValueError naming the value otherwise."""
    text = str(protocol if protocol is not None else "").strip().upper().removeprefix("P")
    if text not in ("1", "2", "3"):
        raise ValueError(f"h36m: --protocol must be 1, 2 or 3 (or P1, P2, P3), got {protocol!r}")
    return int(text)


def make_reader(dataset: str, data: str, protocol=None, split: Optional[str] = None,
                reader_options: Sequence[str] = ()):
    """The :mod:`lcr_tf.datasets` reader of a real benchmark.

    Args:
      dataset: ``h36m``, ``mpii`` or ``mupots``. data: the dataset's ROOT folder.
      protocol: Human3.6M's protocol (required there, refused elsewhere).
      split: the reader's split (default: ``test`` for h36m, ``val`` for mpii, ``all`` for mupots).
      reader_options: ``NAME=VALUE`` items converted to the reader option's type.
    Raises:
      ValueError: unknown dataset, bad protocol / split / option (named).
    """
    from lcr_tf import datasets
    from lcr_tf.datasets import parse_reader_options
    if dataset not in REAL_DATASETS:
        raise ValueError(f"unknown real dataset {dataset!r}; known: {', '.join(REAL_DATASETS)}")
    options: Dict[str, Any] = {"input": data, "split": split or {"h36m": "test", "mpii": "val",
                                                                 "mupots": "all"}[dataset]}
    if dataset == "h36m":
        options["protocol"] = parse_h36m_protocol(protocol)
    elif protocol not in (None, "", "default"):
        raise ValueError(f"{dataset}: has a single protocol; got --protocol={protocol!r}")
    extra = parse_reader_options(datasets.reader_class(dataset), list(reader_options))
    clash = sorted(set(extra) & {"input", "split", "protocol"})
    if clash:
        raise ValueError(f"--reader_option {clash[0]}: give it as --{'data' if clash[0] == 'input' else clash[0]}")
    options.update(extra)
    return datasets.get_reader(dataset, **options)


def _image_size(record) -> Tuple[int, int]:
    """(width, height) px of a record's image, from the record or the image file's header."""
    import io
    from PIL import Image
    if record.width and record.height:
        return int(record.width), int(record.height)
    with Image.open(io.BytesIO(record.load_image_bytes())) as image:
        return int(image.size[0]), int(image.size[1])


def record_truth(record, dataset: str, mupots_3d: str = "univ") -> Tuple[GroundTruth, int]:
    """One reader record as a :class:`GroundTruth` in LCR-13.

    Args:
      record: a :class:`lcr_tf.datasets.ImageRecord` of ``dataset``.
      mupots_3d: MuPoTS-3D's reference 3D, ``univ`` (``univ_annot3``) or ``annot3`` (module docstring).
    Returns:
      (the ground truth, the number of people left out for having no head box (MPII)). Its ``pose3d`` is
      body-centred metres (NaN with ``pose3d_mask`` False where the dataset has no 3D), ``head_size`` MPII's
      (NaN elsewhere), ``group`` the action / sequence; the image is loaded lazily.
    Raises:
      ValueError naming the image: a person whose arrays do not fit the skeleton, an unreadable image
      (MPII, whose image size is not in the annotation).
    """
    from lcr_tf.datasets.base import stack_people
    from lcr_tf import evaluation
    src = record.skeleton
    ok, problems, p2, ann, _, _, p3, has3d = stack_people(record.people, record.num_joints)
    if problems:
        raise ValueError(f"image {record.image_id!r}: person {problems[0][0]}: {problems[0][2]}")
    people = [record.people[i] for i in ok]
    if dataset == "mupots" and mupots_3d == "univ":
        univ = np.asarray([p.extras["univ_pose3d_camera"] for p in people], np.float64).reshape(p3.shape)
        p3 = skeleton_lib.centre_poses(univ, src)
    mask3d_src = has3d[:, None] & np.all(np.isfinite(p3), axis=-1)
    pose2d, annotated = skeleton_lib.convert(p2, src, _SKELETON, ann)
    pose3d, mask3d = skeleton_lib.convert(p3, src, _SKELETON, mask3d_src)
    g = len(people)
    head = np.full((g,), np.nan)
    single = None
    dropped = 0
    width = height = 0
    if dataset == "mpii":
        boxes = [p.extras.get("head_box") for p in people]
        has_box = np.array([b is not None for b in boxes], bool)
        if has_box.any():
            head[has_box] = evaluation.mpii_head_size(np.asarray([b for b in boxes if b is not None], np.float64))
        dropped = int((~has_box).sum())
        keep = np.flatnonzero(has_box)
        pose2d, annotated, pose3d, mask3d, head = (a[keep] for a in (pose2d, annotated, pose3d, mask3d, head))
        single = np.array([bool(people[i].extras.get("single_person")) for i in keep], bool)
        try:
            width, height = _image_size(record)
        except Exception as e:  # a missing or broken image: the record cannot be judged (named)
            raise ValueError(f"image {record.image_id!r}: cannot read its size ({type(e).__name__}: {e})") from None
    elif record.width and record.height:
        width, height = int(record.width), int(record.height)
    group = {"h36m": lambda m: str(m.get("action", "")), "mupots": lambda m: f"TS{m.get('sequence', '')}",
             "mpii": lambda m: ""}[dataset](record.metadata)
    truth = GroundTruth(record.image_id, b"", pose2d, annotated, pose3d, head, width, height,
                        pose3d_mask=mask3d, group=group, single_person=single,
                        load_image=record.load_image_bytes)
    return truth, dropped


def read_dataset(dataset: str, data: str, protocol=None, split: Optional[str] = None,
                 reader_options: Sequence[str] = (), max_images: int = 0,
                 mupots_3d: str = "univ") -> Tuple[List[GroundTruth], Dict[str, Any]]:
    """Reads a real benchmark's ground truth through its reader (arguments as :func:`make_reader`).

    Returns:
      (the images' ground truth, in the reader's key order; facts for the results: ``reader``, ``split``,
      ``listed``, ``rejected``, ``rejected_examples`` [{key, reason}], ``people_without_head_box``).
    Raises:
      ValueError: bad options or a ROOT the reader cannot list (its message).
    """
    from lcr_tf.datasets.base import RecordError
    if mupots_3d not in MUPOTS_3D:
        raise ValueError(f"mupots_3d must be one of {', '.join(MUPOTS_3D)}, got {mupots_3d!r}")
    reader = make_reader(dataset, data, protocol, split, reader_options)
    keys = reader.list_items()
    listed = len(keys)
    if max_images:
        keys = keys[:max_images]
    truths: List[GroundTruth] = []
    rejected: List[Dict[str, str]] = []
    no_head = 0
    seen = set()
    for key in keys:  # one record at a time, as the reader gives them
        try:
            record = reader.read(key)
            truth, dropped = record_truth(record, dataset, mupots_3d)
        except RecordError as e:
            rejected.append({"key": reader.key_name(key), "reason": e.reason})
            continue
        except (OSError, ValueError) as e:
            rejected.append({"key": reader.key_name(key), "reason": str(e)})
            continue
        if truth.image_id in seen:
            raise ValueError(f"image {truth.image_id!r} appears twice in {dataset} {data}")
        seen.add(truth.image_id)
        no_head += dropped
        truths.append(truth)
    info: Dict[str, Any] = {"reader": reader.describe(), "listed": listed, "evaluated_images": len(truths),
                            "rejected": len(rejected), "rejected_examples": rejected[:_REJECTED_EXAMPLES]}
    if dataset == "h36m":
        info["protocol"] = reader.protocol_split.describe()
    if dataset == "mpii":
        info["people_without_head_box"] = no_head
    return truths, info


@dataclasses.dataclass
class Pairing:
    """The prediction paired with each ground-truth person of a list of images (N people in image order).

    Attributes:
      matched: (N,) bool.
      pose2d: (N, J, 2) px and pose3d: (N, J, 3) m of the paired prediction (NaN where unmatched).
      pred_to_gt: per image, (D_i,) int: the image's person (0-based within the image) each detection is
        paired with, or -1 (empty for the upper bound).
      detections: the number of detections.
    """

    matched: np.ndarray
    pose2d: np.ndarray
    pose3d: np.ndarray
    pred_to_gt: List[np.ndarray]
    detections: int


def pair_people(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]], method: str,
                max_match_distance_px: Optional[float] = None, top_one: bool = False) -> Pairing:
    """Pairs predictions with the ground-truth people, image by image.

    Args:
      method: ``ppi`` / ``nms`` (the detections, Hungarian matching on the mean 2D joint distance over the
        annotated joints, gated by ``max_match_distance_px``) or ``upper_bound`` (each person's closest
        candidate in 2D; several people may take the same one).
      top_one: keep only each image's top-scoring detection before matching (single-person benchmarks).
    Raises:
      ValueError naming the image when it has no predictions (or no candidates for the upper bound).
    """
    from lcr_tf import evaluation
    gate = np.inf if max_match_distance_px is None else float(max_match_distance_px)
    j = _SKELETON.num_joints
    n = int(sum(len(gt.pose2d) for gt in ground_truth))
    matched = np.zeros((n,), bool)
    p2 = np.full((n, j, 2), np.nan)
    p3 = np.full((n, j, 3), np.nan)
    pred_to_gt: List[np.ndarray] = []
    detections = start = 0
    for gt in ground_truth:  # one image at a time; its people are vectorised
        g = len(gt.pose2d)
        entry = predictions.get(gt.image_id)
        if entry is None:
            raise ValueError(f"no predictions for image {gt.image_id!r}")
        rows = np.arange(start, start + g)
        start += g
        if method == "upper_bound":
            cand = entry.get("candidates")
            if cand is None:
                raise ValueError(f"image {gt.image_id!r}: its predictions hold no candidates")
            pred_to_gt.append(np.zeros((0,), np.int64))
            if len(cand["pose2d_px"]) == 0 or g == 0:
                continue
            dist = evaluation.mean_joint_distance(cand["pose2d_px"], gt.pose2d, gt.annotated)  # (M, G)
            ok = np.isfinite(dist).any(axis=0)
            best = np.argmin(np.where(np.isfinite(dist), dist, np.inf), axis=0)
            matched[rows[ok]] = True
            p2[rows[ok]] = cand["pose2d_px"][best[ok]]
            p3[rows[ok]] = cand["pose3d_m"][best[ok]]
            continue
        people = entry[method]
        detections += len(people["scores"])
        use = np.arange(len(people["scores"]))
        if top_one and use.size:
            use = use[[int(np.argmax(people["scores"]))]]
        m = evaluation.match_detections(people["pose2d_px"][use], gt.pose2d, gt.annotated, gate)
        link = np.full((len(people["scores"]),), -1, np.int64)
        link[use[m.pred_index]] = m.gt_index
        pred_to_gt.append(link)
        matched[rows[m.gt_index]] = True
        p2[rows[m.gt_index]] = people["pose2d_px"][use[m.pred_index]]
        p3[rows[m.gt_index]] = people["pose3d_m"][use[m.pred_index]]
    return Pairing(matched, p2, p3, pred_to_gt, detections)


def _stack(ground_truth: Sequence[GroundTruth], field: str, tail) -> np.ndarray:
    return _concat([np.asarray(getattr(gt, field)) for gt in ground_truth], tail)


def _groups(ground_truth: Sequence[GroundTruth]) -> np.ndarray:
    return np.asarray([gt.group for gt in ground_truth for _ in range(len(gt.pose2d))], dtype=object)


def _methods(predictions: Mapping[str, Mapping[str, Any]], ground_truth: Sequence[GroundTruth]) -> Tuple[str, ...]:
    has_candidates = bool(ground_truth) and all(
        predictions.get(gt.image_id, {}).get("candidates") is not None for gt in ground_truth)
    return MODES + (("upper_bound",) if has_candidates else ())


def _missing_images(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Any]) -> None:
    missing = [gt.image_id for gt in ground_truth if gt.image_id not in predictions]
    if missing:
        raise ValueError(f"no predictions for image {missing[0]!r} ({len(missing)} image(s) missing)")


def _rows_3d(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
             max_match_distance_px: Optional[float], table: Callable[..., Dict[str, Any]],
             top_one: bool = False) -> Dict[str, Any]:
    """One row per method of a 3D benchmark: ``table(pred3d, gt3d, mask3d, matched, groups)`` on the people
    paired by :func:`pair_people` (``upper_bound`` None when the predictions hold no candidates)."""
    _missing_images(ground_truth, predictions)
    gt3d = _stack(ground_truth, "pose3d", (_SKELETON.num_joints, 3))
    mask3d = _concat([gt.pose3d_mask for gt in ground_truth], (_SKELETON.num_joints,)).astype(bool)
    groups = _groups(ground_truth)
    out: Dict[str, Any] = {}
    for method in _methods(predictions, ground_truth):
        pairing = pair_people(ground_truth, predictions, method, max_match_distance_px, top_one=top_one)
        row = table(pairing.pose3d, gt3d, mask3d, pairing.matched, groups)
        if method != "upper_bound":
            row["detections"] = pairing.detections
        out[method] = row
    out.setdefault("upper_bound", None)
    return out


def evaluate_h36m(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                  max_match_distance_px: Optional[float] = None) -> Dict[str, Any]:
    """Human3.6M's rows: MPJPE / PA-MPJPE per action and averaged (module docstring)."""
    from lcr_tf.evaluation import protocols
    present = set(_groups(ground_truth).tolist())
    order = [a for a in H36M_ACTIONS if a in present] + sorted(present - set(H36M_ACTIONS))
    out = _rows_3d(ground_truth, predictions, max_match_distance_px,
                   lambda p, g, m, matched, actions: protocols.h36m_table(p, g, m, matched, actions, _SKELETON,
                                                                           order),
                   top_one=True)
    out["actions"] = order
    return out


def evaluate_mupots(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                    max_match_distance_px: Optional[float] = None) -> Dict[str, Any]:
    """MuPoTS-3D's rows: 3DPCK@150 mm and AUC per sequence, all people and matched people (module docstring)."""
    from lcr_tf.evaluation import protocols
    out = _rows_3d(ground_truth, predictions, max_match_distance_px,
                   lambda p, g, m, matched, sequences: protocols.mupots_table(p, g, m, matched, sequences,
                                                                              _SKELETON))
    out["sequences"] = list(out["ppi"]["per_sequence"])
    return out


def evaluate_mpii(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                  max_match_distance_px: Optional[float] = None) -> Dict[str, Any]:
    """MPII's rows: single-person PCKh@0.5 and multi-person AP, per joint, per body part (module docstring)."""
    from lcr_tf.evaluation import protocols
    _missing_images(ground_truth, predictions)
    j = _SKELETON.num_joints
    gt2d = _stack(ground_truth, "pose2d", (j, 2))
    vis = _concat([gt.annotated for gt in ground_truth], (j,)).astype(bool)
    head = _stack(ground_truth, "head_size", ())
    single = _concat([gt.single_person for gt in ground_truth], ()).astype(bool)
    out: Dict[str, Any] = {}
    for method in _methods(predictions, ground_truth):
        pairing = pair_people(ground_truth, predictions, method, max_match_distance_px)
        row = protocols.pckh_table(pairing.pose2d[single], gt2d[single], vis[single], head[single],
                                   pairing.matched[single], _SKELETON, PCKH_ALPHA, PCKH_CURVE_ALPHAS)
        if method != "upper_bound":
            row["detections"] = pairing.detections
            row.update(_mpii_ap(ground_truth, {gt.image_id: predictions[gt.image_id][method]
                                               for gt in ground_truth}, pairing))
        out[method] = row
    out.setdefault("upper_bound", None)
    out["single_person_people"] = int(single.sum())
    out["multi_person_people"] = int((~single).sum())
    return out


def _mpii_ap(ground_truth: Sequence[GroundTruth], people: Mapping[str, Mapping[str, np.ndarray]],
             pairing: Pairing) -> Dict[str, Any]:
    """MPII's multi-person AP: each image's multi-person people one group (module docstring)."""
    from lcr_tf import evaluation
    from lcr_tf.evaluation import protocols
    j = _SKELETON.num_joints
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
        for key, value in (("p2", det["pose2d_px"][keep]), ("s", det["scores"][keep]), ("g2", gt.pose2d[multi]),
                           ("vis", gt.annotated[multi]), ("hs", gt.head_size[multi]),
                           ("in", gt.inside(det["pose2d_px"][keep]))):
            groups[key].append(value)
    if not groups["g2"]:
        return {"ap": None, "ap_per_joint": [None] * j, "ap_per_part": {p: None for p, _ in protocols.BODY_PARTS},
                "groups": 0}
    ap = evaluation.mpii_multi_person_ap(groups["p2"], groups["s"], groups["g2"], groups["vis"], groups["hs"],
                                         PCKH_ALPHA, pred_present=groups["in"])
    parts = {}
    for part, names in protocols.BODY_PARTS:
        values = ap.per_joint[_SKELETON.indices(names)]
        parts[part] = _num(np.mean(values)) if np.all(np.isfinite(values)) else None
    return {"ap": _num(ap.mean), "ap_per_joint": [_num(v) for v in ap.per_joint], "ap_per_part": parts,
            "groups": len(groups["g2"])}


_EVALUATORS = {"h36m": evaluate_h36m, "mpii": evaluate_mpii, "mupots": evaluate_mupots}


def evaluate_dataset(dataset: str, data: str, saved_model: Optional[str] = None, predictions: Optional[str] = None,
                     max_images: int = 0, save_predictions: Optional[str] = None,
                     max_match_distance_px: Optional[float] = None, protocol: Optional[str] = None,
                     split: Optional[str] = None, reader_options: Sequence[str] = (), mupots_3d: str = "univ",
                     report_dir: Optional[str] = None, report_notes: Sequence[str] = ()) -> Dict[str, Any]:
    """A real benchmark (``h36m``, ``mpii``, ``mupots``): ground truth from its reader (``data`` = ROOT),
    detections from a SavedModel or a predictions file; the tables of the module docstring.

    Raises:
      ValueError: bad options, predictions that miss an image or are malformed (named); FileNotFoundError.
    """
    if bool(saved_model) == bool(predictions):
        raise ValueError("give exactly one of saved_model and predictions")
    ground_truth, info = read_dataset(dataset, data, protocol, split, reader_options, max_images, mupots_3d)
    if saved_model:
        preds = predict(saved_model, ground_truth)
        if save_predictions:
            write_predictions(save_predictions, preds, dataset)
    else:
        preds = read_predictions(predictions, dataset)
    results: Dict[str, Any] = {"dataset": dataset, "num_images": len(ground_truth),
                               "num_people": int(sum(len(gt.pose2d) for gt in ground_truth)),
                               "joints": list(_SKELETON.joint_names), "joints_note": JOINTS_NOTE}
    results.update(info)
    if dataset == "mpii":
        results.update(head_size=MPII_HEAD_SIZE, groups_note=MPII_GROUPS_NOTE,
                       pckh_curve_alphas=list(PCKH_CURVE_ALPHAS))
    if dataset == "mupots":
        results["reference_3d"] = MUPOTS_3D_NOTE[mupots_3d]
        results["pck3d_threshold_mm"] = 150.0
        results["auc_thresholds_mm"] = [float(t) for t in np.arange(0.0, 151.0, 5.0)]
    results.update(_EVALUATORS[dataset](ground_truth, preds, max_match_distance_px))
    if report_dir:
        _write_real_report(report_dir, results, ground_truth, preds, report_notes)
    return results


def _write_real_report(report_dir: str, results: Mapping[str, Any], ground_truth: Sequence[GroundTruth],
                       predictions: Mapping[str, Mapping[str, Any]], notes: Sequence[str]) -> None:
    """The markdown report of :mod:`lcr_tf.report`, with the dataset's tables as notes; the pictures show
    the first images (loaded here). MPII has no 3D, so it gets the overlays but no 3D plot."""
    from lcr_tf import report
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


def _pct(value, width: int = 8) -> str:
    return f"{'-':>{width}}" if value is None else f"{100.0 * value:>{width}.1f}"


def _mm(value, width: int = 8) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.1f}"


def format_real_table(results: Mapping[str, Any]) -> str:
    """The rows of a real benchmark as fixed-width text tables (mm for errors, % for rates)."""
    dataset = results["dataset"]
    methods = [m for m in MODES + ("upper_bound",) if results.get(m)]
    head = (f"{dataset}: {results['num_images']} images, {results['num_people']} people, "
            f"{results.get('rejected', 0)} records rejected; joints: LCR-13 ({_SKELETON.num_joints})")
    lines = [head] + ([results["protocol"]] if results.get("protocol") else [])
    if dataset == "h36m":
        actions = list(results.get("actions") or [])
        width = max([8] + [len(a) + 1 for a in actions])
        lines.append("MPJPE (mm)" + " " * 12 + "".join(f"{a[:width - 1]:>{width}}" for a in actions)
                     + f"{'Average':>{width}}{'Pooled':>{width}}{'matched':>9}{'missed':>8}")
        for method in methods:
            row = results[method]
            for label, key in (("Abs.", "mpjpe_mm"), ("Align.", "pa_mpjpe_mm")):
                cells = "".join(_mm(row["per_action"].get(a, {}).get(key), width) for a in actions)
                totals = _mm(row[key], width) + _mm(row[key + "_pooled"], width)
                lines.append(f"{method + ' ' + label:<22}{cells}{totals}{row['matched']:>9d}{row['missed']:>8d}")
    elif dataset == "mupots":
        sequences = list(results.get("sequences") or [])
        lines.append(f"{'3DPCK@150mm / AUC (%)':<24}" + "".join(f"{s:>6}" for s in sequences)
                     + f"{'Total':>8}{'Pooled':>8}{'matched':>9}{'missed':>8}")
        for method in methods:
            row = results[method]
            for label, key in (("PCK all", "pck3d_all"), ("PCK matched", "pck3d_matched"),
                               ("AUC all", "auc_all"), ("AUC matched", "auc_matched")):
                cells = "".join(_pct(row["per_sequence"][s][key], 6) for s in sequences)
                lines.append(f"{method + ' ' + label:<24}{cells}{_pct(row[key])}{_pct(row[key + '_pooled'])}"
                             f"{row['matched']:>9d}{row['missed']:>8d}")
    else:
        parts = [p for p, _ in _body_parts()]
        lines.append(f"{'PCKh@0.5 (%)':<18}" + "".join(f"{p:>9}" for p in parts)
                     + f"{'total':>9}{'all':>9}{'matched':>9}{'missed':>8}")
        for method in methods:
            row = results[method]
            lines.append(f"{method:<18}" + "".join(_pct(row["pckh_per_part"][p], 9) for p in parts)
                         + f"{_pct(row['pckh_0.5'], 9)}{_pct(row['pckh_0.5_all'], 9)}{row['matched']:>9d}"
                         f"{row['missed']:>8d}")
        names = [n.replace("left_", "l_").replace("right_", "r_") for n in _SKELETON.joint_names]
        width = max(9, max(len(n) for n in names) + 1)
        lines.append(f"{'PCKh@0.5 per joint':<18}" + "".join(f"{n:>{width}}" for n in names))
        for method in methods:
            lines.append(f"{method:<18}" + "".join(_pct(v, width) for v in results[method]["pckh_per_joint"]))
        lines.append(f"{'AP@0.5 (%)':<18}" + "".join(f"{p:>9}" for p in parts) + f"{'mean':>9}{'groups':>9}")
        for method in MODES:
            row = results[method]
            lines.append(f"{method:<18}" + "".join(_pct(row["ap_per_part"][p], 9) for p in parts)
                         + f"{_pct(row['ap'], 9)}{row['groups']:>9d}")
    return "\n".join(lines)


def _body_parts():
    from lcr_tf.evaluation import protocols
    return protocols.BODY_PARTS


# Dataset name -> evaluation function (keyword arguments as :func:`evaluate_synthetic`).
DATASETS: Dict[str, Callable[..., Dict[str, Any]]] = {
    "synthetic": evaluate_synthetic,
    **{name: functools.partial(evaluate_dataset, name) for name in REAL_DATASETS},
}


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
    empty = {name: results[name] for name in MODES if (results.get(name) or {}).get("empty_images")}
    if empty:
        lines.append(f"images without people: {next(iter(empty.values()))['empty_images']}; detections scoring "
                     f">= {results.get('detection_score', DETECTION_SCORE)} per such image: "
                     + ", ".join(f"{name} {row['detections_per_empty_image']:.2f}" for name, row in empty.items()))
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
        fail(f"--dataset={FLAGS.dataset} is not a benchmark; available: {', '.join(sorted(DATASETS))}")
    real = FLAGS.dataset in REAL_DATASETS
    if not real and (FLAGS.split or FLAGS.reader_option):
        fail("--split and --reader_option are options of the h36m, mpii and mupots readers")
    if real and not os.path.isdir(FLAGS.data):
        # Real benchmarks are read from their native files only, not from TFRecord shards.
        fail(f"--dataset={FLAGS.dataset} reads the dataset's own files: --data must be its ROOT folder as "
             f"its reader takes it ({FLAGS.data} is not a folder)")
    kwargs: Dict[str, Any] = dict(
        data=FLAGS.data, saved_model=FLAGS.saved_model, predictions=FLAGS.predictions,
        max_images=FLAGS.max_images, save_predictions=FLAGS.save_predictions,
        max_match_distance_px=FLAGS.max_match_distance_px, protocol=FLAGS.protocol,
        report_dir=FLAGS.report_dir)
    if real:
        kwargs.update(split=FLAGS.split, reader_options=FLAGS.reader_option, mupots_3d=FLAGS.mupots_3d)
    try:
        results = DATASETS[FLAGS.dataset](**kwargs)
    except (FileNotFoundError, KeyError, ValueError) as e:
        fail(str(e).strip('"'))
    print(format_real_table(results) if real else format_table(results), flush=True)
    directory = os.path.dirname(os.path.abspath(FLAGS.output))
    os.makedirs(directory, exist_ok=True)
    with open(FLAGS.output, "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {FLAGS.output}" + (f" and the report in {FLAGS.report_dir}" if FLAGS.report_dir else ""),
          flush=True)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
