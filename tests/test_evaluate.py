"""lcr_tf.evaluate: the synthetic benchmark's command line, on hand-built ground truth.

Ground-truth people are built so that their 2D pose is exactly ``s * (x, y) + t`` of their 3D pose, hence
a head size of ``0.6 * sqrt(2) * 0.25 * s`` pixels known by hand. A "perfect" predictions file (the ground
truth itself) must score PCKh 1, MPJPE 0 and AP 1; shifted predictions score what is computed here by hand.
A tiny untrained model exported as in test_export.py runs the full path once.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.contracts import features, geometry, serving
from lcr_tf.evaluation import ground_truth, predictions_file, synthetic_benchmark, tables
from lcr_tf.poses import body_model

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
J = 13
# Image scales (px per m) and 2D offsets of the people of each image: image "b" holds two people.
PEOPLE = {"a": [(100.0, (60.0, 80.0))], "b": [(50.0, (40.0, 60.0)), (80.0, (120.0, 70.0))],
          "c": [(120.0, (90.0, 90.0))]}
SIZE = 192  # every joint of PEOPLE lies inside the image


def _head(scale):
    return 0.6 * math.sqrt(2.0) * 0.25 * scale


def _png(seed):
    import cv2
    image = (np.random.RandomState(seed).rand(SIZE, SIZE, 3) * 255).astype(np.uint8)
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def _ground_truth():
    """image id -> (pose2d (G, J, 2) px, pose3d (G, J, 3) m, scales (G,))."""
    poses = body_model.sample_poses(4, seed=3).poses3d.astype(np.float64)
    out, k = {}, 0
    for image_id, people in PEOPLE.items():
        p3 = poses[k:k + len(people)]
        k += len(people)
        scales = np.array([s for s, _ in people])
        offsets = np.array([t for _, t in people])
        p2 = scales[:, None, None] * p3[..., :2] + offsets[:, None, :]
        out[image_id] = (p2, p3, scales)
    return out


def _write_records(path, gt):
    with tf.io.TFRecordWriter(path) as writer:
        for n, (image_id, (p2, p3, _)) in enumerate(gt.items()):
            g = len(p2)
            record = {features.IMAGE_ENCODED: _png(n), features.IMAGE_FORMAT: b"png",
                      features.IMAGE_ID: image_id.encode(), features.IMAGE_SOURCE: b"synthetic",
                      features.IMAGE_HEIGHT: SIZE, features.IMAGE_WIDTH: SIZE,
                      features.BOX: geometry.pose_box(p2), features.POSE2D: p2,
                      features.ANNOTATED: np.ones((g, J)), features.COMPLETED: np.zeros((g, J)),
                      features.VISIBLE: np.ones((g, J)), features.POSE3D: p3,
                      features.POSE3D_SOURCE: np.zeros(g), features.PSEUDO_GT_DISTANCE: np.zeros(g),
                      features.ANCHOR_CLASS: np.ones(g)}
            writer.write(features.encode_example(record).SerializeToString())


def _predictions_file(path, gt, shift2d=None, shift3d=None, candidates=True, drop=()):
    """Writes the ground truth as detections (score 1 each), optionally shifted; ``drop`` lists
    (image id, person) pairs left out of the detections."""
    images = {}
    for image_id, (p2, p3, _) in gt.items():
        p2 = p2 + (0.0 if shift2d is None else shift2d(image_id, p2))
        p3 = p3 + (0.0 if shift3d is None else shift3d)
        keep = [i for i in range(len(p2)) if (image_id, i) not in drop]
        people = {serving.SCORE: [1.0] * len(keep), serving.POSE2D: p2[keep].tolist(),
                  serving.POSE3D: p3[keep].tolist()}
        images[image_id] = {"ppi": people, "nms": people}
        if candidates:
            images[image_id]["candidates"] = {serving.POSE2D: p2.tolist(), serving.POSE3D: p3.tolist()}
    with open(path, "w") as f:
        json.dump({"format": predictions_file.PREDICTIONS_FORMAT, "version": predictions_file.PREDICTIONS_VERSION,
                   "skeleton": "lcr13", "images": images}, f)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    gt = _ground_truth()
    _write_records(str(root / "val-00000-of-00001.tfrecord"), gt)
    return root, gt


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "lcr_tf.evaluate", *args], cwd=_REPO, capture_output=True,
                          text=True, timeout=180)


def _evaluate(root, predictions, **kw):
    return synthetic_benchmark.evaluate_synthetic(str(root / "val-*.tfrecord"), predictions=str(predictions), **kw)


def test_head_size_by_hand(data):
    _, gt = data
    p2, p3, scales = gt["b"]
    np.testing.assert_allclose(ground_truth.synthetic_head_sizes(p2, p3), [_head(50.0), _head(80.0)], rtol=1e-9)
    # Mirrored 2D (negative scale) has no meaningful head size.
    with pytest.raises(ValueError, match="person 0"):
        ground_truth.synthetic_head_sizes(-p2, p3)
    truth = ground_truth.read_ground_truth(str(data[0] / "val-*.tfrecord"))
    assert [t.image_id for t in truth] == ["a", "b", "c"]
    np.testing.assert_allclose(truth[1].head_size, [_head(50.0), _head(80.0)], rtol=1e-5)
    assert len(ground_truth.read_ground_truth(str(data[0] / "val-*.tfrecord"), max_images=2)) == 2


def test_perfect_predictions(data, tmp_path):
    root, gt = data
    preds = tmp_path / "perfect.json"
    _predictions_file(str(preds), gt)
    res = _evaluate(root, preds)
    assert res["num_images"] == 3 and res["num_people"] == 4
    for name in ("ppi", "nms", "upper_bound"):
        row = res[name]
        assert row["pckh_0.5"] == 1.0
        assert row["mpjpe_mm"] == pytest.approx(0.0, abs=1e-3)
        assert row["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-2)
        assert row["matched"] == 4 and row["missed"] == 0
    assert res["ppi"]["ap"] == pytest.approx(1.0) and res["nms"]["ap"] == pytest.approx(1.0)
    assert res["ppi"]["empty_images"] == 0 and res["ppi"]["detections_per_empty_image"] is None


def test_shifted_predictions_by_hand(data, tmp_path):
    """2D shifted by 9 px: a joint is correct at PCKh@0.5 iff 9 <= 0.5 * head size; the 3D shifted as a
    whole: body-centred MPJPE 0; one joint moved by 0.1 m: MPJPE 100 / 13 mm per person."""
    root, gt = data
    shift = np.array([5.4, 7.2])  # 9 px
    preds = tmp_path / "shifted.json"
    _predictions_file(str(preds), gt, shift2d=lambda i, p: shift, shift3d=np.array([0.5, -0.2, 1.0]))
    res = _evaluate(root, preds)
    # Half head sizes 0.5 * 0.2121 * s: s=100 -> 10.61, s=50 -> 5.30, s=80 -> 8.49, s=120 -> 12.73 px; 9 px is
    # within for s = 100 and 120 only (images a and c): 2 people x 13 joints of 4 x 13.
    halves = {s: 0.5 * _head(s) for s in (100.0, 50.0, 80.0, 120.0)}
    assert [h >= 9.0 for h in halves.values()] == [True, False, False, True]
    assert res["ppi"]["pckh_0.5"] == pytest.approx(0.5)
    assert res["ppi"]["mpjpe_mm"] == pytest.approx(0.0, abs=1e-3)
    # MPII AP per joint: true positives in images a and c, none in b; 4 positives, all scored 1, ranked in
    # input order (stable sort) [a, b1, b2, c] -> tp [1, 0, 0, 1]; precision [1, .5, 1/3, .5], recall
    # [.25, .25, .25, .5]; VOC AP = .25 * 1 + .25 * .5 = 0.375.
    assert res["ppi"]["ap"] == pytest.approx(0.375)

    head = np.zeros(3)
    head[0] = 0.1
    moved = np.zeros((J, 3))
    moved[12] = head  # the head joint is not a body-centre joint, so centring leaves it moved
    preds2 = tmp_path / "moved.json"
    _predictions_file(str(preds2), gt, shift3d=moved)
    res = _evaluate(root, preds2)
    assert res["nms"]["mpjpe_mm"] == pytest.approx(100.0 / 13, rel=1e-4)
    assert res["nms"]["pckh_0.5"] == 1.0
    # Procrustes minimises the squared error, which the identity keeps at 0.1^2 per person: the aligned
    # mean error is at most the root mean square 100 / sqrt(13) mm, and not 0 (a similarity cannot move
    # one joint alone).
    assert 1.0 < res["nms"]["pa_mpjpe_mm"] <= 100.0 / math.sqrt(13)


def test_missed_people_and_no_candidates(data, tmp_path):
    root, gt = data
    preds = tmp_path / "partial.json"
    _predictions_file(str(preds), gt, candidates=False, drop={("b", 1)})
    res = _evaluate(root, preds)
    assert res["ppi"]["matched"] == 3 and res["ppi"]["missed"] == 1 and res["ppi"]["detections"] == 3
    assert res["ppi"]["pckh_0.5"] == 1.0       # over matched people
    # 3 of 4 people found with every joint right, all scores 1: per joint precision 1 up to recall 3/4.
    assert res["ppi"]["ap"] == pytest.approx(0.75)
    assert res["upper_bound"] is None
    # A gate of 1 px refuses the 5 px shifted detections.
    shifted = tmp_path / "shifted.json"
    _predictions_file(str(shifted), gt, shift2d=lambda i, p: np.array([3.0, 4.0]))
    res = _evaluate(root, shifted, max_match_distance_px=1.0)
    assert res["ppi"]["matched"] == 0 and res["ppi"]["pckh_0.5"] is None and res["ppi"]["missed"] == 4


def test_bad_predictions_files(data, tmp_path):
    root, gt = data
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        _evaluate(root, bad)
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a predictions file"):
        _evaluate(root, bad)
    _predictions_file(str(bad), {k: v for k, v in gt.items() if k != "c"})
    with pytest.raises(ValueError, match="no predictions for image 'c'"):
        _evaluate(root, bad)
    with pytest.raises(FileNotFoundError, match="no TFRecord shard matches"):
        synthetic_benchmark.evaluate_synthetic(str(tmp_path / "nothing-*.tfrecord"), predictions=str(bad))
    with pytest.raises(ValueError, match="single protocol"):
        _evaluate(root, bad, protocol="p2")
    doc = json.loads(open(str(bad)).read())
    doc["images"]["a"]["ppi"][serving.POSE2D] = [[1.0, 2.0]]
    doc["images"]["c"] = doc["images"]["a"]
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="image 'a': field 'ppi' is malformed"):
        _evaluate(root, bad)


def test_command_line_errors(data, tmp_path):
    root, gt = data
    result = _cli("--help")
    assert result.returncode == 0 and "--saved_model" in result.stdout and "head box" in result.stdout
    result = _cli("--dataset=synthetic", f"--output={tmp_path}/r.json")
    assert result.returncode == 2 and "--data is required" in result.stderr
    result = _cli("--dataset=synthetic", f"--data={root}/val-*.tfrecord", f"--output={tmp_path}/r.json")
    assert result.returncode == 2 and "exactly one of --saved_model and --predictions" in result.stderr
    result = _cli("--dataset=mpii", f"--data={root}/val-*.tfrecord", f"--output={tmp_path}/r.json",
                  f"--predictions={tmp_path}/none.json")
    assert result.returncode == 2 and "not found" in result.stderr
    preds = tmp_path / "perfect.json"
    _predictions_file(str(preds), gt)
    result = _cli("--dataset=mupots", f"--data={root}/val-*.tfrecord", f"--output={tmp_path}/r.json",
                  f"--predictions={preds}")
    assert result.returncode == 2 and "--data must be its ROOT folder" in result.stderr
    result = _cli("--dataset=coco", f"--data={root}/val-*.tfrecord", f"--output={tmp_path}/r.json",
                  f"--predictions={preds}")
    assert result.returncode != 0 and "dataset" in result.stderr
    # The perfect file through the command line: the table and the JSON.
    out = tmp_path / "sub" / "r.json"
    result = _cli("--dataset=synthetic", f"--data={root}/val-*.tfrecord", f"--output={out}",
                  f"--predictions={preds}")
    assert result.returncode == 0, result.stderr
    assert "upper_bound" in result.stdout and "ppi" in result.stdout
    written = json.loads(out.read_text())
    assert written["dataset"] == "synthetic" and written["num_people"] == 4
    for name in ("ppi", "nms", "upper_bound"):
        assert written[name]["pckh_0.5"] == 1.0 and written[name]["mpjpe_mm"] == pytest.approx(0.0, abs=1e-3)
        assert written[name]["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-2)
    assert written["ppi"]["ap"] == pytest.approx(1.0) and written["nms"]["ap"] == pytest.approx(1.0)


def test_saved_model_end_to_end(data, tmp_path):
    """A tiny untrained model, in process (the export takes most of the time): every key present, fractions
    in [0, 1], errors finite, strict JSON; the saved predictions give the same results when read back."""
    import test_export  # the tiny model and PPI settings of the export tests

    from lcr_tf.serving import export as export_lib
    from lcr_tf.serving import inference
    root, _ = data
    model = test_export.tiny_model()
    inference.save_model_dir(model, str(tmp_path / "run"))
    path = export_lib.export(str(tmp_path / "run"), str(tmp_path / "serving"), version=1,
                             params=test_export.params())
    saved = tmp_path / "preds.json"
    res = synthetic_benchmark.evaluate_synthetic(str(root / "val-*.tfrecord"), saved_model=os.path.dirname(path),
                                      max_images=2, save_predictions=str(saved))
    assert res["num_images"] == 2 and res["num_people"] == 3
    json.dumps(res, allow_nan=False)
    # Untrained, every (RoI, class) pair passes the candidate threshold: there are people and candidates.
    assert res["ppi"]["matched"] >= 1 and res["nms"]["matched"] >= 1 and res["upper_bound"]["matched"] == 3
    for name in ("ppi", "nms", "upper_bound"):
        row = res[name]
        assert set(row) >= {"pckh_0.5", "mpjpe_mm", "pa_mpjpe_mm", "matched", "missed"}
        assert row["matched"] + row["missed"] == 3
        assert 0.0 <= row["pckh_0.5"] <= 1.0
        assert np.isfinite(row["mpjpe_mm"]) and row["mpjpe_mm"] >= 0 and row["pa_mpjpe_mm"] >= 0
    for name in ("ppi", "nms"):
        assert 0.0 <= res[name]["ap"] <= 1.0 and len(res[name]["ap_per_joint"]) == J
    again = _evaluate(root, saved, max_images=2)
    for name in ("ppi", "nms", "upper_bound"):
        for key, value in res[name].items():
            if isinstance(value, float):
                assert again[name][key] == pytest.approx(value, rel=1e-4, abs=1e-4), (name, key)


def test_joints_outside_the_image_are_not_judged(tmp_path):
    """Person 0 has its head joint beyond the right border: it is not evaluated (PCKh), and a prediction
    placed outside the image is not a prediction (AP), as MPII annotates only joints on the picture."""
    p3 = body_model.sample_poses(1, seed=5).poses3d.astype(np.float64)
    p2 = 60.0 * p3[..., :2] + np.array([100.0, 100.0])
    p2[0, 12] = [SIZE + 20.0, 50.0]
    gt = {"x": (p2, p3, np.array([60.0]))}
    _write_records(str(tmp_path / "val-00000-of-00001.tfrecord"), gt)
    truth = ground_truth.read_ground_truth(str(tmp_path / "val-*.tfrecord"))
    assert truth[0].annotated.sum() == J - 1 and not truth[0].annotated[0, 12]
    # Every joint right except the outside one, predicted 40 px away (and still outside).
    preds = tmp_path / "p.json"
    _predictions_file(str(preds), gt, shift2d=lambda i, p: np.where(np.arange(J)[:, None] == 12, [40.0, 0.0], 0.0))
    res = synthetic_benchmark.evaluate_synthetic(str(tmp_path / "val-*.tfrecord"), predictions=str(preds))
    assert res["ppi"]["pckh_0.5"] == 1.0
    assert res["ppi"]["ap"] == pytest.approx(1.0)
    assert res["ppi"]["ap_per_joint"][12] is None   # no positive for the head joint


def _with_empty_images(tmp_path):
    """The three images of ``_ground_truth`` plus "e" and "f" without people, and perfect detections on the
    three with false ones on the two (all inside the image, at person a's pose): PPI scores 2.0 and 0.3 on
    "e", nothing on "f"; NMS 0.6, 0.55, 0.1 on "e" and 0.5 on "f"."""
    gt = dict(_ground_truth())
    nobody = (np.zeros((0, J, 2)), np.zeros((0, J, 3)), np.zeros(0))
    gt.update(e=nobody, f=nobody)
    _write_records(str(tmp_path / "val-00000-of-00001.tfrecord"), gt)
    preds = tmp_path / "with_empty.json"
    _predictions_file(str(preds), {k: v for k, v in gt.items()})
    doc = json.loads(preds.read_text())
    fake = gt["a"][0][0].tolist(), gt["a"][1][0].tolist()
    for image_id, mode, scores in (("e", "ppi", [2.0, 0.3]), ("e", "nms", [0.6, 0.55, 0.1]), ("f", "nms", [0.5])):
        doc["images"][image_id][mode] = {serving.SCORE: scores, serving.POSE2D: [fake[0]] * len(scores),
                                         serving.POSE3D: [fake[1]] * len(scores)}
    preds.write_text(json.dumps(doc))
    return gt, preds


def test_images_without_people_count_their_detections_and_false_positives(tmp_path):
    gt, preds = _with_empty_images(tmp_path)
    truth = ground_truth.read_ground_truth(str(tmp_path / "val-*.tfrecord"))
    assert [t.image_id for t in truth] == ["a", "b", "c", "e", "f"]  # kept, not skipped
    assert truth[3].pose2d.shape == (0, J, 2) and truth[3].head_size.shape == (0,)
    res = synthetic_benchmark.evaluate_synthetic(str(tmp_path / "val-*.tfrecord"), predictions=str(preds))
    assert res["num_images"] == 5 and res["num_people"] == 4 and res["detection_score"] == 0.5
    ppi, nms = res["ppi"], res["nms"]
    # Scores >= 0.5 on "e" and "f": PPI 1 and 0, NMS 2 and 1 (0.5 itself counts).
    assert (ppi["empty_images"], ppi["detections_per_empty_image"]) == (2, 0.5)
    assert (nms["empty_images"], nms["detections_per_empty_image"]) == (2, 1.5)
    assert (ppi["detections"], nms["detections"]) == (4 + 2, 4 + 4)
    for row in (ppi, nms, res["upper_bound"]):
        assert row["matched"] == 4 and row["missed"] == 0 and row["pckh_0.5"] == 1.0
    # AP per joint: PPI's false positive at 2.0 ranks before the 4 true ones at 1.0: precision
    # [0, 1/2, 2/3, 3/4, 4/5] at recall [0, .25, .5, .75, 1], whose envelope is 0.8 everywhere -> AP 0.8
    # (its 0.3 ranks last and changes nothing). NMS's false positives all score below 1: AP 1.
    assert ppi["ap"] == pytest.approx(0.8) and ppi["ap_per_joint"] == [pytest.approx(0.8)] * J
    assert nms["ap"] == pytest.approx(1.0)
    table = tables.format_table(res)
    assert table.splitlines()[-1] == ("images without people: 2; detections scoring >= 0.5 per such image: "
                                      "ppi 0.50, nms 1.50")
    assert "images without people" not in tables.format_table({**res, "ppi": {**ppi, "empty_images": 0},
                                                                 "nms": {**nms, "empty_images": 0}})


def test_report_lists_the_detections_on_images_without_people(tmp_path):
    from lcr_tf.evaluation import report
    _, preds = _with_empty_images(tmp_path)
    out = tmp_path / "report"
    synthetic_benchmark.evaluate_synthetic(str(tmp_path / "val-*.tfrecord"), predictions=str(preds),
                                           report_dir=str(out))
    text = (out / report.REPORT_MD).read_text()
    assert "## Images without people" in text
    assert "| method | images without people | detections (score >= 0.5) per image |" in text
    assert "| PPI (eq 7-8) | 2 | 0.50 |" in text and "| NMS baseline | 2 | 1.50 |" in text
    assert "upper bound (closest candidate) | 2 |" not in text
    assert "| PPI (eq 7-8) | 100.0 % | 0.0 | 0.0 | 0.800 | 4 / 0 | 6 |" in text


def test_report_holds_the_figures_and_pictures(data, tmp_path):
    import cv2

    from lcr_tf.evaluation import report
    root, gt = data
    preds = tmp_path / "shifted.json"
    _predictions_file(str(preds), gt, shift2d=lambda i, p: np.array([5.4, 7.2]))
    out = tmp_path / "report"
    res = _evaluate(root, preds, report_dir=str(out), report_notes=["trained for testing"])
    # The curve: 9 px is within 0.5 head size for 2 of 4 people (see the test above) and within 1 head size
    # for all (largest half head size 10.6 px, smallest head 10.6 px > 9), within 0.05 for none.
    alphas = res["pckh_curve_alphas"]
    curve = res["ppi"]["pckh_curve"]
    assert curve[alphas.index(0.5)] == pytest.approx(0.5) and curve[-1] == 1.0 and curve[0] == 0.0
    assert all(a <= b for a, b in zip(curve, curve[1:]))
    assert res["ppi"]["pckh_per_joint"] == [pytest.approx(0.5)] * J
    # The whole error is a translation of 9 px: no shape error, the same spread.
    heads = np.concatenate([g.head_size for g in ground_truth.read_ground_truth(str(root / "val-*.tfrecord"))])
    assert res["ppi"]["translation_hs"] == pytest.approx(np.median(9.0 / heads))
    assert res["ppi"]["shape_hs"] == pytest.approx(0.0, abs=1e-4)
    assert res["ppi"]["extent_ratio"] == pytest.approx(1.0, abs=1e-4)
    text = (out / report.REPORT_MD).read_text()
    assert "trained for testing" in text
    assert "| PPI (eq 7-8) | 50.0 % | 0.0 | 0.0 | 0.375 | 4 / 0 | 4 |" in text
    assert f"| PPI (eq 7-8) | {np.median(9.0 / heads):.2f} | 0.00 | 1.00 |" in text
    assert text.count("| right_ankle |") == 1 and "| head | 50.0 % |" in text
    assert "## Images without people" not in text  # none evaluated
    for name in (report.PCK_CURVE_PNG, report.OVERLAYS_PNG, report.POSES3D_PNG):
        assert f"({name})" in text
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[0] > 100
    timings = report.timings_table({"a": 1.0, "b": 2.5})
    assert "| b | 2.5 |" in timings and "| total | 3.5 |" in timings


def test_images_the_model_would_refuse_are_not_sent():
    """Before batching, each image's header is checked against the SavedModel's limits: a refused image
    (over the limits, not JPEG / PNG) gets an entry where nobody was found, is listed with its reason, and
    the others go in batches of at most ``max_images_per_request``, in order; the table says how many were
    refused."""
    import cv2
    from test_image_header import GIF, png_declaring

    from lcr_tf.evaluation import detect
    from lcr_tf.serving import image_header

    ok = cv2.imencode(".jpg", np.zeros((30, 40, 3), np.uint8))[1].tobytes()
    blobs = {"a": ok, "huge": png_declaring(9000, 10), "b": ok, "gif": GIF, "c": ok, "d": ok}
    empty = np.zeros((0, 13, 2))
    images = [ground_truth.GroundTruth(k, v, empty, np.zeros((0, 13), bool), np.zeros((0, 13, 3)), np.zeros(0), 40,
                                       30) for k, v in blobs.items()]
    out, refused = {}, []
    batches = list(detect._checked_batches(images, 3, image_header.Limits(max_images_per_request=3), out, refused))
    assert [[gt.image_id for gt in batch] for batch, _ in batches] == [["a", "b", "c"], ["d"]]
    assert all(encoded == [ok] * len(batch) for batch, encoded in batches)
    assert [r["image_id"] for r in refused] == ["huge", "gif"]
    assert refused[0]["reason"].startswith("9000x10 pixels (width x height): over the limits of this model")
    for image_id in ("huge", "gif"):
        entry = out[image_id]
        assert all(len(entry[mode][serving.SCORE]) == 0 for mode in tables.MODES)
        assert entry[predictions_file.CANDIDATES][serving.POSE2D].shape == (0, 13, 2)
    results = {"dataset": "synthetic", "num_images": 6, "num_people": 0, **detect.refused_summary(refused)}
    assert results["refused_images"] == 2
    assert "evaluated as no detection: 2; first: huge: 9000x10 pixels" in tables.format_table(results)
