"""Evaluates an exported LCR-Net (or saved predictions) on a benchmark, with the paper's measures.

    python -m lcr_tf.evaluate --dataset=synthetic --saved_model=DIR --data='val-*.tfrecord' \\
        --output=results.json [--max_images=N] [--save_predictions=preds.json] [--report_dir=DIR]
    python -m lcr_tf.evaluate --dataset=synthetic --predictions=preds.json --data='val-*.tfrecord' \\
        --output=results.json
    python -m lcr_tf.evaluate --dataset=h36m --protocol=1 --data=H36M_ROOT --saved_model=DIR --output=r.json
    python -m lcr_tf.evaluate --dataset=mpii --split=val --data=MPII_ROOT \\
        --reader_option=val_split_file=mpii_val.json --predictions=preds.json --output=r.json \\
        [--mpii_groups=groups_v12.mat] [--results_format=native]
    python -m lcr_tf.evaluate --dataset=mpii --split=test --data=MPII_ROOT --saved_model=DIR \\
        --mpii_groups=groups_v12.mat --output=test.json   (the test-set submission files, not scored)
    python -m lcr_tf.evaluate --dataset=mupots --data=MUPOTS_ROOT --predictions=preds.json --output=r.json
    python -m lcr_tf.evaluate --dataset=coco --data=COCO_ROOT --split=val --saved_model=DIR --output=r.json \\
        [--results_dir=DIR] [--results_format=native|none]

Datasets: ``synthetic`` (TFRecords of :mod:`lcr_tf.contracts.features`, e.g. the validation split that
``beam_jobs.build_tfrecords`` writes from the synthetic renderer), and the paper's benchmarks read straight
from their native files by the readers of :mod:`lcr_tf.datasets` (``--data`` is the dataset's ROOT as
its reader takes it; ``--split`` and ``--reader_option NAME=VALUE`` go to the reader): ``h36m``
(Human3.6M, ``--protocol`` 1, 2 or 3, the reader's test split), ``mpii`` (MPII Human Pose, ``--split``
val by default: the paper's 1k validation images, the reader's option ``val_split_file`` shares the split
with training) and ``mupots`` (MuPoTS-3D, the 20 sequences). Their measures are described under "Real
benchmarks" below; what follows up to there is the synthetic benchmark.

The SavedModel's ``raw_proposals`` signature runs on batches of images (:mod:`lcr_tf.evaluation.detect`);
each image's candidates (original pixels) go through the NumPy pose proposal integration
(:func:`lcr_tf.postprocess.integrate_candidates`) twice: mode ``paper`` (PPI, eq 7-8) and mode ``nms`` (the
paper's NMS baseline), with the defaults of
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

With ``--saved_model``, ``refused_images`` counts the images not sent to the model because their header
says they are not JPEG or PNG, is broken, or declares a size over the limits the SavedModel holds (set at
export; :mod:`lcr_tf.serving.image_header`); each is evaluated as an image where the model found nobody,
and ``refused_examples`` lists the first ones with their reasons (also printed on stderr and under the
table).

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
  (mean of the left and right joints) and their mean (``ap``), per group of the evaluation toolkit's
  ``groups_v12.mat`` when ``--mpii_groups`` gives it (it is not part of the annotation release), else with
  each image's multi-person people as one group; a group's predictions are the detections not paired with
  a single-person person that the multi-person results file puts in it; predicted joints outside the
  image are not reported (as on synthetic images). ``pckh_limbs12`` / ``ap_limbs12``: the 12 limb joints.
  Beside these LCR-13 figures, ``toolkit`` holds the MPII toolkit's own (:mod:`lcr_tf.evaluation.
  mpii_toolkit`: MPII's 14 joints, its "Head" being upper neck and head top, body parts averaged left /
  right, every single-person person counted) on the results files as written; ``mpii_written_joints`` says
  how the MPII joints LCR-13 lacks are written. An image whose file cannot be read is kept
  (``unreadable_images``). ``--split=test`` (no joints) scores nothing and writes the test-set submission
  (``--results_format=native`` is then the default).
* ``mupots``: MuPoTS-3D's own protocol by default (:mod:`lcr_tf.evaluation.mupots_benchmark`, the
  computation of its ``mpii_mupots_multiperson_eval.m`` on the arrays of its native prediction files): the
  detections in MuPoTS-3D's 17 joints, matched per frame greedily in annotation order with the script's
  40 px per-axis gate (``--mupots_matching=official``; ``hungarian`` is the generic matching above, gated by
  ``--max_match_distance_px``), pelvis-centred, rescaled to the ground truth's bone lengths
  (``--[no]mupots_rescale_bones``). 3DPCK (errors strictly below 150 mm) and its AUC (0, 5, ..., 150 mm)
  per sequence and overall (mean over sequences as MuPoTS-3D reports it, and pooled), over all annotated
  people (an unmatched person misses every joint: Table 8 a) and over matched people only (Table 8 b), on
  three joint sets: the official 14 joints at the top of each row (``head_top`` is a miss for an LCR-13
  model, which caps a perfect prediction at 92.9 %; the neck is the mid-shoulder), and under
  ``joint_sets`` the 13 joints LCR-13 predicts (``lcr13``) and the 12 limb joints both share (``limbs12``);
  ``per_group`` is the official per-part table. The reference 3D is ``univ_annot3`` by default
  (``--mupots_3d=univ``): MuPoTS-3D's own evaluation scores against the poses rescaled to its universal
  skeleton, which takes out the subjects' sizes that a monocular method cannot observe;
  ``--mupots_3d=annot3`` uses the metric poses instead. People whose ``isValidFrame`` is 0 are left out by
  the reader, as MuPoTS's evaluation does.

Images are read (from the record's bytes or ``image_path``) only to run the model, for MPII's image size
(whether a predicted joint is inside the image) and for the pictures of ``--report_dir``.

Predictions file (``--save_predictions`` / ``--predictions``, :mod:`lcr_tf.evaluation.predictions_file`)::

    {"format": "lcr_tf.evaluate/predictions", "version": 3, "skeleton": "lcr13", "dataset": "h36m",
     "images": {image_id: {"ppi": {"score": [D], "pose2d_px": [D][J][2], "pose3d_body_centred_m": [D][J][3]},
                           "nms": {... same ...},
                           "candidates": {"pose2d_px": [M][J][2], "pose3d_body_centred_m": [M][J][3]}}}}

Image ids are those of the dataset's reader (e.g. ``S11_Directions_1.55011271_000064``, ``015601864.jpg``,
``TS3_000012``). 2D in pixels of the original image (x right, y down, origin top-left; written to
0.001 px), 3D in metres, camera axes (x right, y down, z away), body-centred (written to 0.01 mm).
``candidates`` may be omitted (no upper bound then); they make most of the file (up to ``max_candidates``
per image). ``dataset`` (since version 2) names the benchmark the file was made on; evaluating it on another
is refused. Versions 1 and 2 (``scores`` and ``pose3d_m`` for the same fields; version 1 has no
``dataset``) are still read.

COCO keypoints (``coco``, :mod:`lcr_tf.evaluation.coco_keypoints`; needs the optional extra
``pip install 'lcr_tf[coco]'``): every image of COCO's annotation file (``--data`` = ROOT with ``--split``,
default val, or a keypoints annotation file) is run through the model, the detections are written as COCO
keypoint results files (``--results_dir``/<row>/``person_keypoints_<split>2017_lcrnet_results.json``: 17 x 3
keypoints in COCO's pixel convention, the reader's +0.5 undone) and scored by ``pycocotools``' ``COCOeval``
(``iouType='keypoints'``): AP, AP50, AP75, AP medium / large and AR, per row ``ppi`` / ``nms``, in two
scorings: ``shared_joints``, the 12 joints LCR-13 and COCO share with COCOeval's own sigmas for them (LCR-13
has no face points: they are neither predicted nor judged), and ``coco17_head_on_nose``, the standard
17-joint figure with LCR-13's head centre placed on the nose, an approximation. ``--max_match_distance_px``
and ``--report_dir`` are not used there (COCOeval matches by OKS).

``--results_format=native`` writes the detections in the benchmark's own results format where it has one
(:mod:`lcr_tf.evaluation.native_results`), under ``--results_dir``/<row>/ (default: the folder of
``--output``): COCO's results JSON (the default for ``coco``), MPII's ``pred`` struct
(``pred_keypoints_mpii.mat``, single person, and ``pred_keypoints_mpii_multi.mat``, MATLAB 1-based pixels,
as the MPII toolkit's ``evaluatePCKh.m`` / ``evaluateAP.m`` read them: :mod:`lcr_tf.evaluation.native_mpii`)
and MuPoTS-3D's ``preds_2d_kpt_mupots.mat`` / ``preds_3d_kpt_mupots.mat`` (one variable per frame, its
joint order, pixels and millimetres). Human3.6M and synthetic have none (refused).

The code: ground truth in :mod:`lcr_tf.evaluation.ground_truth`, the pairing of predictions with it in
:mod:`lcr_tf.evaluation.pairing`, the benchmarks in :mod:`lcr_tf.evaluation.synthetic_benchmark` and
:mod:`lcr_tf.evaluation.real_benchmarks`, the tables in :mod:`lcr_tf.evaluation.tables` and the report
in :mod:`lcr_tf.evaluation.report`.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable, Dict, List

from absl import flags

from lcr_tf.contracts import atomic_files, cli
from lcr_tf.evaluation.coco_keypoints import evaluate_coco, format_coco_table
from lcr_tf.evaluation.ground_truth import MUPOTS_3D, REAL_DATASETS
from lcr_tf.evaluation.mupots_benchmark import MATCHINGS as MUPOTS_MATCHINGS
from lcr_tf.evaluation.native_mpii import SINGLE_PAIRINGS as MPII_PAIRINGS
from lcr_tf.evaluation.native_results import RESULTS_FORMATS, resolve_results_format
from lcr_tf.evaluation.real_benchmarks import evaluate_dataset
from lcr_tf.evaluation.synthetic_benchmark import evaluate_synthetic
from lcr_tf.evaluation.tables import format_real_table, format_table

FLAGS = flags.FLAGS
_DEFINED: List[str] = []

# Dataset name -> evaluation function (keyword arguments as evaluate_synthetic).
DATASETS: Dict[str, Callable[..., Dict[str, Any]]] = {
    "synthetic": evaluate_synthetic,
    **{name: functools.partial(evaluate_dataset, name) for name in REAL_DATASETS},
    "coco": evaluate_coco,
}
# The benchmarks read from their native files by the lcr_tf.datasets readers (--split, --reader_option).
READER_DATASETS = REAL_DATASETS + ("coco",)


def define_flags() -> None:
    """Defines the flags (only when run as a program, so importing the module defines none)."""
    before = set(FLAGS)
    flags.DEFINE_enum("dataset", None, sorted(DATASETS),
                      "Benchmark to evaluate on: synthetic (TFRecords), or h36m (Human3.6M), mpii (MPII Human "
                      "Pose), mupots (MuPoTS-3D), coco (COCO keypoints, scored by pycocotools' COCOeval: "
                      "pip install 'lcr_tf[coco]') read from their native files by the lcr_tf.datasets readers.")
    flags.DEFINE_string("protocol", None, "Human3.6M's protocol: 1, 2 or 3 (P1: S11 camera 2 every 64th frame; "
                        "P2: S9 and S11 every 5th frame; P3: P2 on camera 3, trial 1). Refused elsewhere: the "
                        "other benchmarks have a single protocol.")
    flags.DEFINE_string("split", None, "Split of the dataset's reader (default: test for h36m, val for mpii: the "
                        "paper's 1k validation images, all for mupots, val for coco). Not for synthetic.")
    flags.DEFINE_multi_string("reader_option", [], "NAME=VALUE option of the dataset's reader (repeatable), e.g. "
                              "--reader_option=val_split_file=mpii_val.json for mpii, "
                              "--reader_option=sequences=1,2 for mupots, "
                              "--reader_option=frame_pattern=... for h36m. Not for synthetic.")
    flags.DEFINE_enum("mupots_3d", "univ", list(MUPOTS_3D), "MuPoTS-3D's reference 3D: univ (univ_annot3, "
                      "the poses on MuPoTS-3D's universal skeleton, as its evaluation scores) or annot3 (metric "
                      "poses at the subjects' own sizes).")
    flags.DEFINE_enum("mupots_matching", "official", list(MUPOTS_MATCHINGS), "MuPoTS-3D's matching of "
                      "detections to annotated people: official (its evaluation's: greedy in annotation order, "
                      "joints 2-14 within 40 px on both axes) or hungarian (the generic one-to-one matching on "
                      "the mean 2D distance, gated by --max_match_distance_px).")
    flags.DEFINE_boolean("mupots_rescale_bones", True, "MuPoTS-3D: rescale each matched prediction to the "
                         "ground truth's bone lengths before scoring, as its evaluation does.")
    flags.DEFINE_string("mpii_groups", None, "MPII: the evaluation toolkit's groups_v12.mat (not in the "
                        "annotation release). The multi-person results file (pred_keypoints_mpii_multi.mat) then "
                        "has one entry per multi-person group, as the toolkit's evaluateAP.m reads it, and the "
                        "multi-person AP is per group; without it, both are per image.")
    flags.DEFINE_enum("mpii_pairing", "joints", list(MPII_PAIRINGS), "MPII: how the single-person results file "
                      "(pred_keypoints_mpii.mat), and so the toolkit's figures, picks each person's detection: "
                      "joints (the evaluation's pairing on the annotated joints, as the package's own PCKh) or "
                      "objpos (nearest to the person's objpos within 100 x scale px, as a test-set submission "
                      "must, which --split=test always uses: the figure such a submission would score).")
    flags.DEFINE_string("saved_model", None, "SavedModel of lcr_tf.export: a version folder or the base folder "
                        "of versions (the highest is used). Exclusive with --predictions.")
    flags.DEFINE_string("predictions", None, "JSON of detections per image id, as --save_predictions writes "
                        "it, evaluated instead of running a model. Exclusive with --saved_model.")
    flags.DEFINE_string("data", None, "Ground truth. synthetic: TFRecord glob(s) (comma-separated) of the "
                        "lcr_tf.contracts.features schema, e.g. 'synthetic/val-*.tfrecord'. h36m / mpii / mupots / "
                        "coco: the dataset's ROOT folder as its reader takes it (lcr_tf.datasets); coco also takes "
                        "a keypoints annotation file (.json), its images beside it.")
    flags.DEFINE_string("output", None, "JSON file for the results table.")
    flags.DEFINE_string("save_predictions", None, "Also write the model's detections and candidates per "
                        "image to this JSON (reusable with --predictions).")
    flags.DEFINE_integer("max_images", 0, "Evaluate the first N images of --data only (0: all).",
                         lower_bound=0)
    flags.DEFINE_float("max_match_distance_px", None, "Gate of the detection / ground-truth matching: a pair "
                       "whose mean 2D joint distance exceeds this many pixels is never matched (default: "
                       "no gate). PCKh's head size: MPII's, 0.6 x the diagonal of the head box (synthetic "
                       "images: a 0.25 m head box at the person's image scale).", lower_bound=0.0)
    flags.DEFINE_enum("results_format", None, list(RESULTS_FORMATS), "native: also write the detections in "
                      "the benchmark's own results format, the files its official tools and servers read, under "
                      "--results_dir/<row>/ (coco: the keypoint results JSON, written by default; mpii: the pred "
                      "struct .mat files; mupots: the per-frame prediction .mat files). none: do not. Refused "
                      "for h36m and synthetic, which have none.")
    flags.DEFINE_string("results_dir", None, "Folder of --results_format=native's files (default: the folder "
                        "of --output).")
    flags.DEFINE_string("report_dir", None, "Also write a markdown report with pictures here: report.md, "
                        "pck_curve.png, overlays.png (detections over the ground truth), poses3d.png.")
    _DEFINED[:] = sorted(set(FLAGS) - before)


def main(argv: List[str]) -> None:
    def fail(message: str) -> None:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)

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
    read = FLAGS.dataset in READER_DATASETS
    if not read and (FLAGS.split or FLAGS.reader_option):
        fail(f"--split and --reader_option are options of the {', '.join(READER_DATASETS)} readers")
    if FLAGS.dataset == "coco" and not os.path.exists(FLAGS.data):
        fail(f"--dataset=coco reads COCO's own files: --data must be its ROOT folder or a keypoints annotation "
             f"file ({FLAGS.data} does not exist)")
    if real and not os.path.isdir(FLAGS.data):
        # Real benchmarks are read from their native files only, not from TFRecord shards.
        fail(f"--dataset={FLAGS.dataset} reads the dataset's own files: --data must be its ROOT folder as "
             f"its reader takes it ({FLAGS.data} is not a folder)")
    kwargs: Dict[str, Any] = dict(
        data=FLAGS.data, saved_model=FLAGS.saved_model, predictions=FLAGS.predictions,
        max_images=FLAGS.max_images, save_predictions=FLAGS.save_predictions,
        max_match_distance_px=FLAGS.max_match_distance_px, protocol=FLAGS.protocol,
        report_dir=FLAGS.report_dir)
    if read:
        kwargs.update(split=FLAGS.split, reader_options=FLAGS.reader_option, mupots_3d=FLAGS.mupots_3d)
    if (FLAGS.mpii_groups or FLAGS.mpii_pairing != "joints") and FLAGS.dataset != "mpii":
        fail("--mpii_groups and --mpii_pairing are options of --dataset=mpii")
    if FLAGS.mpii_groups:
        if not os.path.isfile(FLAGS.mpii_groups):
            fail(f"--mpii_groups file {FLAGS.mpii_groups} not found")
        kwargs["mpii_groups"] = FLAGS.mpii_groups
    if FLAGS.dataset == "mpii":
        kwargs["mpii_pairing"] = FLAGS.mpii_pairing
    if FLAGS.dataset == "mupots":
        kwargs.update(mupots_matching=FLAGS.mupots_matching, mupots_rescale_bones=FLAGS.mupots_rescale_bones)
    elif FLAGS.mupots_matching != "official" or not FLAGS.mupots_rescale_bones:
        fail("--mupots_matching and --mupots_rescale_bones are options of --dataset=mupots")
    try:
        results_format = FLAGS.results_format
        if FLAGS.dataset == "mpii" and FLAGS.split == "test" and results_format is None:
            results_format = "native"  # the test set has no joints: the submission files are the result
        if resolve_results_format(FLAGS.dataset, results_format) == "native":
            kwargs["results_dir"] = FLAGS.results_dir or os.path.dirname(os.path.abspath(FLAGS.output))
        results = DATASETS[FLAGS.dataset](**kwargs)
    except (FileNotFoundError, ImportError, KeyError, ValueError) as e:
        fail(str(e).strip('"'))
    print(format_coco_table(results) if FLAGS.dataset == "coco" else
          format_real_table(results) if real else format_table(results), flush=True)
    atomic_files.write_json(FLAGS.output, results, indent=1)
    print(f"wrote {FLAGS.output}" + (f" and the report in {FLAGS.report_dir}" if FLAGS.report_dir else ""),
          flush=True)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
