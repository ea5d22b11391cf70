"""The main job: runs the whole system on the embedded default and reports what it measured.

    python -m lcr_tf.demo [--output_dir=demo_output] [--mocap=DIR_OR_GLOB]

Stages (about 14 minutes on 2 CPU cores with the defaults; most of it is training):

1. **Pose corpus.** By default the embedded body model (:mod:`lcr_tf.poses.body_model`) samples
   ``--num_poses`` poses; with ``--mocap`` the Beam job :mod:`beam_jobs.mocap_poses` reads real MoCap
   files (BVH, ASF/AMC) instead. Written to ``poses.npz``.
2. **Anchor-poses** (Sec 4.1-4.2): :func:`beam_jobs.anchor_poses.run` clusters the corpus seen from
   ``--views`` random views into K full-body anchors plus K upper-body ones; writes ``anchors.npz`` and
   the picture ``anchors.png``.
3. **Pseudo ground-truth 3D** (Sec 3.7, eq 9): held-out poses of the corpus are projected to random
   views and pixel frames, some joints are hidden, and :class:`lcr_tf.poses.pseudo_gt.PoseDatabase` built on
   the rest of the corpus recovers their 3D pose and completes their 2D pose. The error against the
   known truth is reported, with a picture ``pseudo_gt.png``.
4. **Synthetic training data** (Sec 4.1, Fig 8d): the Beam job :mod:`beam_jobs.build_tfrecords` renders
   ``--num_train_images`` + ``--num_val_images`` multi-person images from the corpus
   (:mod:`lcr_tf.synthetic`, scene preset ``--render_preset``; a share ``--empty_fraction`` of
   the training images and ``--val_empty_fraction`` of the validation images hold nobody, pure negatives
   written with no people), labels every person with its anchor class, and writes sharded TFRecords
   ``synthetic/train-*`` and ``synthetic/val-*`` with their ``-summary.json`` and ``-rejected.jsonl``;
   ``input_samples.png`` shows augmented samples of the input pipeline.
5. **Training** (Sec 3): :func:`lcr_tf.train.train` with ``configs/synthetic_tiny.flags`` (the tiny
   CPU backbone), in this process, trains LCR-Net on the synthetic training set for ``--train_steps``
   steps, validating on the held-out set; checkpoints, TensorBoard events and the final weights go to
   ``model/``, and the losses and proposal recall of its first and last epochs are reported.
6. **Serving** (Sec 3.6): the trained model is exported as a SavedModel in the TF Serving layout
   (``export/1/``, PPI inside the graph), and ``lcr_tf.predict`` runs it on held-out synthetic images and,
   when the folder exists, on the real photographs of ``../shared/data/images`` (or
   ``$LCR_TF_SHARED_DATA/images``): JSON, 2D overlays and 3D plots under ``predictions/``.
7. **Evaluation** (Sec 4): the exported model on the held-out validation images, which it never saw:
   PCKh@0.5, MPJPE, PA-MPJPE and multi-person AP for PPI and NMS, the detections per image without
   people, and the upper bound (the closest candidate), in ``report.json`` and ``evaluation.json``, and
   the report ``report/report.md`` with its pictures (PCKh curve, detections over the ground truth, 3D
   poses) and the time of every stage.

Everything is written under ``--output_dir``; ``summary.json`` holds the figures and the time of each
stage, which are also printed at the end.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, Dict

import numpy as np
from absl import app, flags, logging

from lcr_tf import synthetic
from lcr_tf.contracts import atomic_files, cli, console, geometry
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.evaluation import synthetic_benchmark, tables
from lcr_tf.poses import pose_corpus, pseudo_gt

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "demo_output", "Folder for everything the demo writes.")
flags.DEFINE_string("mocap", None, "Read the pose corpus from real MoCap files (a folder searched "
                    "recursively for .bvh/.amc, or a glob) with the Beam job beam_jobs.mocap_poses, "
                    "instead of sampling the embedded body model.")
flags.DEFINE_string("asf", None, "With --mocap: fallback ASF skeleton for AMC files whose own "
                    "<subject>.asf is absent.")
flags.DEFINE_float("min_distance_mm", 50.0, "With --mocap: drop a frame closer than this (mean per-joint "
                   "distance, mm) to the last kept frame of its trial.", lower_bound=0.0)
flags.DEFINE_integer("num_poses", 20000, "Poses sampled from the embedded body model (without --mocap).",
                     lower_bound=100)
flags.DEFINE_integer("num_anchors", 8, "K, the number of full-body anchor-poses (2K+1 classes).",
                     lower_bound=1)
flags.DEFINE_integer("views", 10, "Random camera views per corpus pose, for K-means and for the "
                     "pseudo-GT database.", lower_bound=1)
flags.DEFINE_integer("num_queries", 500, "Held-out poses used to measure the pseudo-GT search.",
                     lower_bound=10)
flags.DEFINE_integer("num_train_images", 8000, "Synthetic training images rendered to TFRecords.",
                     lower_bound=0)
flags.DEFINE_integer("num_val_images", 100, "Synthetic validation images (another seed: never seen in "
                     "training).", lower_bound=0)
flags.DEFINE_float("empty_fraction", 0.05, "Share of the synthetic training images rendered with nobody "
                   "(background only): negatives that teach the model to report no one there "
                   "(lcr_tf.synthetic.empty_scenes says which).", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("val_empty_fraction", 0.1, "Share of the validation images rendered with nobody; the "
                   "evaluation reports the detections per such image (10 of the default 100).",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("image_size", 256, "Side of the synthetic images, pixels.", lower_bound=64)
flags.DEFINE_enum("render_preset", "clear", sorted(synthetic.PRESETS),
                  "Scene distribution of the synthetic images (lcr_tf.synthetic.PRESETS): clear "
                  "(1-3 people of 40-95 % of the image height), studio (1-2 people of 55-95 %, plain "
                  "backgrounds, nothing cut or occluded) or wild (up to 6 people of 15-120 %, cut by borders, "
                  "occluders).")
flags.DEFINE_list("beam_args", [], "Beam pipeline options for the TFRecord job, e.g. "
                  "--beam_args=--runner=DirectRunner,--direct_running_mode=multi_processing,"
                  "--direct_num_workers=2 (default: the in-process DirectRunner, which starts fastest "
                  "for a small set).")
flags.DEFINE_integer("train_steps", 7500, "Training steps of the tiny model (batch 4); 0 skips training.",
                     lower_bound=0)
flags.DEFINE_enum("train_precision", "auto", ["float32", "mixed_bfloat16", "auto"],
                  "Compute precision of the training (lcr_tf.train --precision; auto: bfloat16 where the "
                  "hardware computes it natively, 1.4x faster here, else float32).")
flags.DEFINE_bool("deterministic", True, "Train reproducibly (lcr_tf.train --deterministic: batches in one "
                  "fixed order, deterministic ops): the same seed gives the same model and scores on the "
                  "same machine. --nodeterministic lets tf.data deliver elements as they are ready.")
flags.DEFINE_integer("num_predict_images", 8, "Held-out synthetic images run through the exported model.",
                     lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of every random choice; the same seed gives the same files.")
flags.DEFINE_bool("verbose", False, "Also print the libraries' start-up notices and log lines (TensorFlow's C++ "
                  "runtime, Beam) that the demo holds back; TF_CPP_MIN_LOG_LEVEL=0 does the same.")

# Query poses are placed in pixel frames of this many pixels per metre (a person of 1.7 m is then
# 120 to 500 px tall), so the search is shown to be independent of the pixel scale.
_PIXELS_PER_METRE = (70.0, 300.0)
_MAX_HIDDEN_JOINTS = 5
# People counted in the serving stage's report: the evaluation's threshold of a reported person.
_REPORTED_SCORE = tables.DETECTION_SCORE
_DRAWN_SCORE = 0.25


def build_corpus(out_dir: str, seed: int) -> Dict[str, Any]:
    """Stage 1: writes ``poses.npz`` from the body model or, with --mocap, from MoCap files."""
    path = os.path.join(out_dir, "poses.npz")
    if FLAGS.mocap:
        import apache_beam as beam

        from beam_jobs import mocap_poses, runner_options
        files = mocap_poses.list_inputs(FLAGS.mocap)
        if not files:
            raise app.UsageError(f"--mocap={FLAGS.mocap}: no .bvh or .amc file found")
        with beam.Pipeline(options=runner_options.pipeline_options()) as p:
            mocap_poses.build_pipeline(p, files, path, min_distance_mm=FLAGS.min_distance_mm,
                                       asf_fallback=FLAGS.asf, input_description=FLAGS.mocap)
    else:
        from lcr_tf.poses import body_model
        body_model.sample_poses(FLAGS.num_poses, seed=seed).save(path)
    corpus = pose_corpus.load(path)
    meta = corpus.metadata
    info = {"path": path, "num_poses": len(corpus), "source": meta.get("source"),
            "trials": int(np.unique(corpus.trial).size)}
    if "counts" in meta:
        info["files_read"] = meta["counts"]["files_read"]
        info["files_rejected"] = [f"{r['path']}: {r['reason']}" for r in meta.get("rejected", [])]
    return info


def build_anchors(out_dir: str, poses_path: str, seed: int) -> Dict[str, Any]:
    """Stage 2: anchor-poses by K-means, and their picture."""
    from beam_jobs import anchor_poses
    path = os.path.join(out_dir, "anchors.npz")
    anchor_set = anchor_poses.run(poses_path, FLAGS.num_anchors, path, views=FLAGS.views, seed=seed,
                                  verbose=False)
    km = anchor_set.metadata["kmeans"]
    sizes = np.asarray(anchor_set.metadata["cluster_sizes"])
    return {"path": path, "figure": anchor_poses.default_figure_path(path),
            "num_anchors": anchor_set.num_anchors, "num_classes": anchor_set.num_classes,
            "oriented_poses": anchor_set.metadata["num_oriented_poses"],
            "rms_joint_distance_to_anchor_mm": 1000.0 * km["rms_joint_distance_m"],
            "kmeans_iterations": km["iterations"],
            "cluster_size_min_max": [int(sizes.min()), int(sizes.max())]}


def make_queries(poses3d: np.ndarray, rng: np.random.Generator, skel: skeleton_lib.Skeleton):
    """Held-out 3D poses -> (true oriented 3D (B, J, 3) m, 2D (B, J, 2) px, visible (B, J) bool).

    Each pose is turned to a random view, projected orthographically, scaled to a random pixel size and
    placed at a random image position; up to ``_MAX_HIDDEN_JOINTS`` random joints are hidden.
    """
    b, j = poses3d.shape[:2]
    rot = geometry.random_view_rotations(b, rng)
    oriented = skeleton_lib.centre_poses(geometry.rotate(poses3d.astype(np.float64), rot), skel)
    scale = rng.uniform(*_PIXELS_PER_METRE, size=(b, 1, 1))
    offset = rng.uniform(200.0, 800.0, size=(b, 1, 2))
    pixels = geometry.orthographic_project(oriented) * scale + offset
    hidden = rng.integers(0, _MAX_HIDDEN_JOINTS + 1, size=b)
    order = np.argsort(rng.random((b, j)), axis=1)
    visible = np.ones((b, j), bool)
    np.put_along_axis(visible, order, np.arange(j)[None, :] >= hidden[:, None], axis=1)
    return oriented, pixels, visible


def check_pseudo_gt(out_dir: str, corpus: pose_corpus.PoseCorpus, seed: int) -> Dict[str, Any]:
    """Stage 3: pseudo-GT search on held-out poses, against their known 3D and full 2D."""
    rng = np.random.default_rng(seed)
    n = len(corpus)
    num_q = min(FLAGS.num_queries, n // 10)
    held = np.zeros(n, bool)
    held[rng.choice(n, size=num_q, replace=False)] = True
    skel = corpus.skeleton
    t0 = time.perf_counter()
    database = pseudo_gt.PoseDatabase(corpus.poses3d[~held], num_views=FLAGS.views, seed=seed, skeleton=skel)
    t_build = time.perf_counter() - t0
    oriented, pixels, visible = make_queries(corpus.poses3d[held], rng, skel)
    t0 = time.perf_counter()
    result = database.search(pixels, visible)
    t_search = time.perf_counter() - t0
    from lcr_tf import evaluation
    err3d = evaluation.mpjpe(result.pose3d, oriented, skeleton=skel)  # (B,) mm, both body-centred
    # A missing joint filled from the match, against where it really was, relative to the pose box.
    box = geometry.pose_box(pixels)
    diag = np.hypot(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
    err2d = np.linalg.norm(result.completed2d - pixels, axis=-1) / diag[:, None]
    hidden = ~visible
    _plot_pseudo_gt(os.path.join(out_dir, "pseudo_gt.png"), pixels, visible, result, oriented, skel)
    return {
        "database_size": len(database), "queries": int(num_q),
        "hidden_joints": int(hidden.sum()),
        "build_s": t_build, "search_s": t_search, "queries_per_s": num_q / t_search,
        "mpjpe_3d_mm_mean": float(err3d.mean()),
        "mpjpe_3d_mm_median": float(np.median(err3d)),
        "completed_joint_error_pct_of_box_diag": 100.0 * float(err2d[hidden].mean()) if hidden.any() else 0.0,
        "match_distance_median": float(np.median(result.distance)),
        "figure": os.path.join(out_dir, "pseudo_gt.png"),
    }


def build_synthetic_data(out_dir: str, poses_path: str, anchors_path: str, seed: int) -> Dict[str, Any]:
    """Stage 4: synthetic train / validation TFRecords, and a picture of augmented input samples."""
    from beam_jobs import build_tfrecords
    from lcr_tf.datasets.synthetic import SyntheticReader
    data_dir = os.path.join(out_dir, "synthetic")
    info: Dict[str, Any] = {}
    # Validation images come from another seed, so no training image is ever evaluated on.
    for split, num, split_seed, empty in (("train", FLAGS.num_train_images, seed, FLAGS.empty_fraction),
                                          ("val", FLAGS.num_val_images, seed + 1_000_003, FLAGS.val_empty_fraction)):
        if num == 0:
            continue
        reader = SyntheticReader(num, seed=split_seed, poses=poses_path, height=FLAGS.image_size,
                                 width=FLAGS.image_size, preset=FLAGS.render_preset, empty_fraction=empty)
        summary = build_tfrecords.run(reader, os.path.join(data_dir, split), anchors_path,
                                      pipeline_args=FLAGS.beam_args, poses=poses_path,
                                      num_shards=max(1, num // 100))
        counts = summary["images"]
        info[split] = {"written": counts["written"], "without_people": counts["written_empty"],
                       "rejected": counts["rejected"], "people": summary["persons"]["written"],
                       "accounted": summary["check"]["images_accounted"]}
    if FLAGS.num_train_images:
        from lcr_tf.data import draw_samples
        from lcr_tf.poses import anchors
        draw_samples.draw_samples(os.path.join(data_dir, "train-*.tfrecord"),
                                  os.path.join(out_dir, "input_samples.png"), num=8, seed=seed,
                                  image_size=FLAGS.image_size, anchors=anchors.load(anchors_path))
    info["path"] = data_dir
    return info


TINY_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                           "synthetic_tiny.flags")


def train_tiny_model(out_dir: str, anchors_path: str, seed: int) -> Dict[str, Any]:
    """Stage 5: trains the tiny config on the synthetic set with :func:`lcr_tf.train.train`, in this
    process; what the trainer prints goes to ``train.log``."""
    import contextlib

    from lcr_tf import train
    from lcr_tf.training import config as train_config
    if not os.path.exists(TINY_CONFIG):
        raise FileNotFoundError(f"{TINY_CONFIG} not found: run the demo from a source checkout "
                                "(pip install -e .) so that configs/ is present")
    model_dir = os.path.join(out_dir, "model")
    data_dir = os.path.join(out_dir, "synthetic")
    steps = FLAGS.train_steps
    args = [f"--flagfile={TINY_CONFIG}", f"--model_dir={model_dir}",
            f"--train_data={os.path.join(data_dir, 'train-*.tfrecord')}",
            f"--anchors={anchors_path}", f"--num_anchors={FLAGS.num_anchors}",
            f"--image_size={FLAGS.image_size}", f"--num_steps={steps}",
            # The config's two-rate schedule, its drop at nine tenths of the run: the model is still
            # learning fast at the high rate when a short run ends (a restart at the high rate after
            # 6,000 steps gained 8 PCKh points), so the low rate only settles it.
            f"--lr_boundaries={max(1, 9 * steps // 10)}", f"--steps_per_epoch={min(100, steps)}",
            f"--checkpoint_every={min(1000, steps)}", f"--seed={seed}", "--verbose=2",
            f"--precision={FLAGS.train_precision}", f"--{'' if FLAGS.deterministic else 'no'}deterministic"]
    if FLAGS.num_val_images:
        args.append(f"--val_data={os.path.join(data_dir, 'val-*.tfrecord')}")
    config = train_config.parse(args)
    screen = sys.stdout

    with open(os.path.join(out_dir, "train.log"), "w") as log:
        def progress(line: str) -> None:
            # The progress lines reach the console as well as the log: training is most of the demo.
            print(f"[training] {line}", file=screen, flush=True)
            print(line, file=log, flush=True)

        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                train.train(config, progress=progress)
        except Exception as e:
            raise RuntimeError(f"training failed ({type(e).__name__}: {e}); see {out_dir}/train.log") from e
    from lcr_tf.contracts import run_folder
    with open(run_folder.metrics_path(model_dir)) as f:
        metrics = json.load(f)
    first, last = metrics["first_epoch"], metrics["last_epoch"]
    keys = ("total_loss", "classification", "regression", "proposal_recall")
    info: Dict[str, Any] = {"steps": steps, "path": model_dir}
    for key in keys:
        if key in first:
            info[key] = [round(first[key], 4), round(last[key], 4)]
        if "val_" + key in last:
            info["val_" + key] = round(last["val_" + key], 4)
    return info


def shared_images_dir() -> str:
    """The real photographs beside a source checkout (``../shared/data/images``), if any."""
    root = os.environ.get("LCR_TF_SHARED_DATA") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "shared", "data")
    return os.path.join(root, "images")


def export_and_predict(out_dir: str, seed: int) -> Dict[str, Any]:
    """Stage 6: SavedModel export, then predictions on held-out synthetic images and real photographs."""
    import shutil

    import tensorflow as tf

    from lcr_tf import predict
    from lcr_tf.contracts import features
    from lcr_tf.data import pipeline
    from lcr_tf.serving import export, inference
    loaded = inference.load_model(os.path.join(out_dir, "model"))
    # The demo owns its output folder: a rerun replaces its export (export never overwrites a version).
    shutil.rmtree(os.path.join(out_dir, "export"), ignore_errors=True)
    version_dir = export.export(loaded, os.path.join(out_dir, "export"), version=1)
    # Held-out images: the validation set's encoded images, as files a user would have.
    held_dir = os.path.join(out_dir, "heldout_images")
    os.makedirs(held_dir, exist_ok=True)
    shards = pipeline.list_shards(os.path.join(out_dir, "synthetic", "val-*.tfrecord"))
    for record in tf.data.TFRecordDataset(shards).take(FLAGS.num_predict_images):
        example = features.decode_example_numpy(record.numpy())
        name = example[features.IMAGE_ID].decode() + "." + example[features.IMAGE_FORMAT].decode()
        with open(os.path.join(held_dir, name.replace("jpeg", "jpg")), "wb") as f:
            f.write(example[features.IMAGE_ENCODED])
    info: Dict[str, Any] = {"saved_model": version_dir}
    inputs = [("heldout", held_dir)]
    if os.path.isdir(shared_images_dir()):
        inputs.append(("photos", shared_images_dir()))
    for name, folder in inputs:
        t0 = time.perf_counter()
        with open(os.devnull, "w") as quiet:
            result = predict.run(version_dir, folder, os.path.join(out_dir, "predictions", name),
                                 plots_3d=True, draw_min_score=_DRAWN_SCORE, stream=quiet)
        elapsed = time.perf_counter() - t0
        people = []
        for item in result["written"]:
            with open(os.path.join(out_dir, "predictions", name, item + ".json")) as f:
                people.append(sum(p["score"] >= _REPORTED_SCORE for p in json.load(f)["people"]))
        info[name] = {"images": len(result["written"]), "skipped": len(result["skipped"]),
                      f"people_per_image_score_ge_{_REPORTED_SCORE}":
                          round(float(np.mean(people)), 2) if people else 0.0,
                      "seconds_per_image": round(elapsed / max(1, len(result["written"])), 3)}
    return info


REPORT_KEYS = ("pckh_0.5", "mpjpe_mm", "pa_mpjpe_mm", "ap", "empty_images", "detections_per_empty_image")


def evaluate_model(out_dir: str) -> Dict[str, Any]:
    """Stage 7: the exported model on the held-out validation set; writes ``report.json`` and the report
    (``report/report.md`` with its pictures)."""
    empty_train, empty_val = (int(synthetic.empty_scenes(np.arange(num), fraction).sum()) for num, fraction in
                              ((FLAGS.num_train_images, FLAGS.empty_fraction),
                               (FLAGS.num_val_images, FLAGS.val_empty_fraction)))
    notes = [f"The tiny model trained by `python -m lcr_tf.demo` for {FLAGS.train_steps} steps on "
             f"{FLAGS.num_train_images} synthetic images ({empty_train} without people; preset "
             f"`{FLAGS.render_preset}`, {FLAGS.image_size} px, K={FLAGS.num_anchors}), evaluated through its "
             f"exported SavedModel on {FLAGS.num_val_images} held-out images ({empty_val} without people) "
             f"rendered with another seed."]
    results = synthetic_benchmark.evaluate_synthetic(data=os.path.join(out_dir, "synthetic", "val-*.tfrecord"),
                                          saved_model=os.path.join(out_dir, "export", "1"),
                                          report_dir=os.path.join(out_dir, "report"), report_notes=notes)
    atomic_files.write_json(os.path.join(out_dir, "evaluation.json"), results, indent=1)
    report = {"images": results["num_images"], "people": results["num_people"],
              "head_size": results.get("head_size")}
    for method in ("ppi", "nms", "upper_bound"):
        if results.get(method) is not None:
            report[method] = {k: results[method].get(k) for k in REPORT_KEYS if k in results[method]}
    atomic_files.write_json(os.path.join(out_dir, "report.json"), report, indent=2)
    return {m: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in report[m].items()}
            for m in ("ppi", "nms", "upper_bound") if m in report}


def _plot_pseudo_gt(path, pixels, visible, result, oriented, skel, num: int = 4) -> None:
    from lcr_tf.poses import viz
    fig = viz.new_figure(3.2 * num, 6.4)
    order = np.argsort(-(~visible).sum(axis=1), kind="stable")[:num]  # most hidden joints first
    for col, i in enumerate(order):
        ax = fig.add_subplot(2, num, col + 1)
        viz.draw_pose_2d(ax, result.completed2d[i], skel, colours={"left": "#9ecae1", "right": "#fdae6b",
                                                                   "centre": "#bbbbbb"}, linewidth=5)
        viz.draw_pose_2d(ax, pixels[i], skel, mask=visible[i], invert_y=True)
        ax.plot(result.completed2d[i, ~visible[i], 0], result.completed2d[i, ~visible[i], 1], "x",
                color="crimson", markersize=9, markeredgewidth=2)
        ax.set_aspect("equal")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"{int((~visible[i]).sum())} hidden joints (x)", fontsize=9)
        ax3 = fig.add_subplot(2, num, num + col + 1, projection="3d")
        viz.draw_pose_3d(ax3, oriented[i], skel, colours={"left": "#888888", "right": "#888888",
                                                          "centre": "#888888"}, linewidth=4, alpha=0.5)
        viz.draw_pose_3d(ax3, result.pose3d[i], skel)
        mm = 1000.0 * np.linalg.norm(result.pose3d[i] - oriented[i], axis=-1).mean()
        ax3.set_title(f"pseudo-GT 3D vs truth (grey): {mm:.0f} mm", fontsize=9)
    fig.suptitle("Pseudo ground-truth (eq 9): annotated 2D joints, completed joints (pale), and the 3D match")
    fig.savefig(path)


#: Seconds between the "still running" lines of a long stage.
HEARTBEAT_S = 30.0
#: Stages that print their own progress lines.
OWN_PROGRESS = ("training",)


def run() -> Dict[str, Any]:
    out_dir = FLAGS.output_dir
    os.makedirs(out_dir, exist_ok=True)
    timings: Dict[str, float] = {}
    summary: Dict[str, Any] = {"flags": {k: FLAGS[k].value for k in
                                         ("mocap", "num_poses", "num_anchors", "views", "num_queries",
                                                   "num_train_images", "num_val_images", "empty_fraction",
                                                   "val_empty_fraction", "image_size", "render_preset",
                                                   "train_steps", "train_precision", "deterministic", "seed")}}

    def stage(name, fn, *args):
        t0 = time.perf_counter()
        print(f"[{name}] ...", flush=True)
        # A line every HEARTBEAT_S of a stage that prints no progress of its own (training prints its own:
        # step, images/s, losses, time left), so no stage is minutes of silence.
        done = threading.Event()

        def heartbeat():
            while not done.wait(HEARTBEAT_S):
                print(f"[{name}] still running, {cli.format_duration(time.perf_counter() - t0)} so far", flush=True)

        beat = None if name in OWN_PROGRESS else threading.Thread(target=heartbeat, daemon=True)
        if beat:
            beat.start()
        try:
            out = fn(*args)
        finally:
            done.set()
        timings[name] = time.perf_counter() - t0
        summary[name] = out
        print(f"[{name}] done in {timings[name]:.1f} s: " + ", ".join(
            f"{k}={_fmt(v)}" for k, v in out.items() if k not in ("path", "figure")), flush=True)
        return out

    corpus_info = stage("corpus", build_corpus, out_dir, FLAGS.seed)
    corpus = pose_corpus.load(corpus_info["path"])
    stage("anchors", build_anchors, out_dir, corpus_info["path"], FLAGS.seed)
    stage("pseudo_gt", check_pseudo_gt, out_dir, corpus, FLAGS.seed)
    stage("synthetic_data", build_synthetic_data, out_dir, corpus_info["path"],
          summary["anchors"]["path"], FLAGS.seed)
    if FLAGS.train_steps and FLAGS.num_train_images:
        stage("training", train_tiny_model, out_dir, summary["anchors"]["path"], FLAGS.seed)
        if FLAGS.num_val_images:
            stage("serving", export_and_predict, out_dir, FLAGS.seed)
            stage("evaluation", evaluate_model, out_dir)
    summary["timings_s"] = timings
    report_md = os.path.join(out_dir, "report", "report.md")
    if os.path.exists(report_md):
        from lcr_tf.evaluation import report
        with open(report_md, "a") as f:
            f.write("\n" + report.timings_table(timings))
    atomic_files.write_json(os.path.join(out_dir, "summary.json"), summary, indent=2, default=_json_default)
    print("\nstage        seconds")
    for name, sec in timings.items():
        print(f"{name:<12} {sec:8.1f}")
    print(f"{'total':<12} {sum(timings.values()):8.1f}")
    print(f"\nwrote {', '.join(sorted(os.listdir(out_dir)))} in {out_dir}")
    return summary


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and len(v) > 3:
        return f"[{len(v)} items]"
    return str(v)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)


def main(argv):
    if FLAGS.verbose:
        console.restore()
    else:
        logging.set_verbosity(logging.WARNING)  # Beam's per-bundle INFO lines
    run()


if __name__ == "__main__":
    cli.run(main)
