"""The main job end to end on the embedded default, at a small size."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_no_library_notices

from lcr_tf.poses import anchors, pose_corpus

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow  # the whole system twice (determinism), ~1.5 min on 2 cores
def test_demo_runs_on_the_embedded_default(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "lcr_tf.demo", f"--output_dir={out}", "--num_poses=3000",
           "--num_anchors=12", "--views=4", "--num_queries=200", "--num_train_images=24",
           "--num_val_images=6", "--image_size=128", "--train_steps=6", "--seed=3"]
    proc = subprocess.run(cmd, cwd=_REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "total" in proc.stdout
    # Every stage, the Beam jobs' worker processes included, prints no library start-up notice.
    assert_no_library_notices(proc.stdout, proc.stderr)
    # The trainer's progress reaches the console: its last step always gets a line (train.log has it too).
    assert "[training] step 6/6 (100%)" in proc.stdout
    assert "step 6/6 (100%)" in (out / "train.log").read_text()
    for name in ("poses.npz", "poses.json", "anchors.npz", "anchors.json", "anchors.png", "pseudo_gt.png",
                 "summary.json", "input_samples.png", "train.log", "model/metrics.json", "synthetic/train-summary.json",
                 "synthetic/val-summary.json", "synthetic/train-00000-of-00001.tfrecord"):
        assert (out / name).stat().st_size > 0, name
    corpus = pose_corpus.load(str(out / "poses.npz"), skeleton="lcr13")
    assert len(corpus) == 3000 and corpus.metadata["source"] == "lcr_tf.poses.body_model"
    anchor_set = anchors.load(str(out / "anchors.npz"))
    assert anchor_set.num_anchors == 12 and anchor_set.num_classes == 25
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["timings_s"]) == {"corpus", "anchors", "pseudo_gt", "synthetic_data", "training",
                                         "serving", "evaluation"}
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == 6
    for method in ("ppi", "nms"):
        assert set(report[method]) == {"pckh_0.5", "mpjpe_mm", "pa_mpjpe_mm", "ap", "empty_images",
                                       "detections_per_empty_image"}
        assert 0.0 <= report[method]["pckh_0.5"] <= 1.0 and 0.0 <= report[method]["ap"] <= 1.0
        # 10 % of 6 validation images rounds down to no image without people.
        assert report[method]["empty_images"] == 0 and report[method]["detections_per_empty_image"] is None
    text = (out / "report" / "report.md").read_text()
    assert "| PPI (eq 7-8) |" in text and "| NMS baseline |" in text and "## Time per stage" in text
    assert "| total |" in text and (out / "report" / "overlays.png").stat().st_size > 0
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["num_images"] == 6
    if evaluation["ppi"]["matched"]:  # a 6-step model may find nobody: then there is no curve to draw
        assert "![PCKh curve](pck_curve.png)" in text and (out / "report" / "pck_curve.png").stat().st_size > 0
    assert (out / "export" / "1" / "saved_model.pb").is_file()
    held = summary["serving"]["heldout"]
    assert held["images"] == 6 and held["skipped"] == 0  # --num_predict_images is 8 but only 6 are held out
    predictions = json.loads(next((out / "predictions" / "heldout").glob("*.json")).read_text())
    assert predictions["joint_names"][12] == "head" and predictions["image_size"]["height"] == 128
    assert summary["training"]["steps"] == 6 and (out / "model" / "final.weights.h5").stat().st_size > 0
    assert all(np.isfinite(v).all() for k, v in summary["training"].items() if k.endswith("loss"))
    data = summary["synthetic_data"]
    for split, num in (("train", 24), ("val", 6)):
        assert data[split]["accounted"] and data[split]["written"] + data[split]["rejected"] == num
        assert data[split]["people"] >= data[split]["written"]
    from lcr_tf.contracts import features
    records = list(tf_record_iterator(out / "synthetic" / "train-00000-of-00001.tfrecord"))
    assert len(records) == data["train"]["written"]
    example = features.decode_example_numpy(records[0])
    assert example[features.IMAGE_HEIGHT] == 128 and example[features.IMAGE_SOURCE] == b"synthetic"
    assert np.all((example[features.ANCHOR_CLASS] >= 1) & (example[features.ANCHOR_CLASS] <= 24))
    pgt = summary["pseudo_gt"]
    assert pgt["queries"] == 200 and pgt["database_size"] == (3000 - 200) * 4
    # Two random oriented poses of the corpus are ~0.3-0.4 m apart per joint; the eq-9 match of a held-out
    # pose, seen from a random view with up to 5 joints hidden, must be far closer than that.
    assert pgt["mpjpe_3d_mm_mean"] < 200.0
    assert pgt["completed_joint_error_pct_of_box_diag"] < 15.0
    with open(out / "poses.npz", "rb") as f:
        first = f.read()
    with open(out / "synthetic" / "train-00000-of-00001.tfrecord", "rb") as f:
        first_shard = f.read()
    # Same seed, same bytes.
    proc = subprocess.run(cmd, cwd=_REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0
    with open(out / "poses.npz", "rb") as f:
        assert f.read() == first
    with open(out / "synthetic" / "train-00000-of-00001.tfrecord", "rb") as f:
        assert f.read() == first_shard
    np.testing.assert_array_equal(anchors.load(str(out / "anchors.npz")).pose3d, anchor_set.pose3d)


def tf_record_iterator(path):
    import tensorflow as tf
    return (r.numpy() for r in tf.data.TFRecordDataset(str(path)))


def test_demo_help_explains_its_flags():
    proc = subprocess.run([sys.executable, "-m", "lcr_tf.demo", "--help"], cwd=_REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0
    for flag in ("--output_dir", "--mocap", "--num_anchors", "--views", "--num_queries", "--seed",
                 "--empty_fraction", "--val_empty_fraction", "--[no]verbose"):
        assert flag in proc.stdout
    # Training images are 5 % negatives, validation images 10 %: 10 of the default 100 to evaluate on.
    assert "(default: '0.05')" in proc.stdout.split("--empty_fraction:")[1].split("\n  --")[0]
    assert "(default: '0.1')" in proc.stdout.split("--val_empty_fraction:")[1].split("\n  --")[0]
