"""COCO keypoints through pycocotools' COCOeval (lcr_tf.evaluation.coco_keypoints), on hand-built cases:
detections equal to the ground truth give AP 1.0; a known pixel shift gives the OKS of the formula
exp(-d^2 / (2 s^2 k^2)) and the AP it implies; a detection on a crowd region is ignored (and counts as a false
positive once the crowd is gone); the +0.5 pixel offset of the COCO reader is undone by the results file,
so a detection equal to the reader's ground truth writes back the file's integers; the whole evaluation,
from the reader's files to COCOeval, on a small dataset in COCO's layout."""

import json
import math
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

pytest.importorskip("pycocotools")

from pycocotools import cocoeval  # noqa: E402

from lcr_tf.contracts import serving  # noqa: E402
from lcr_tf.contracts import skeleton as skeleton_lib  # noqa: E402
from lcr_tf.evaluation import coco_keypoints as ck  # noqa: E402
from lcr_tf.evaluation import predictions_file  # noqa: E402

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO = skeleton_lib.COCO17
LCR = skeleton_lib.LCR13
THRESHOLDS = np.linspace(0.5, 0.95, 10)

# An upright person, COCO pixel indices (x, y) per COCO joint, all visible.
PERSON = [(30, 6), (31, 5), (29, 5), (33, 6), (27, 6), (35, 12), (25, 12), (37, 20), (23, 20), (38, 27),
          (22, 27), (33, 30), (27, 30), (34, 40), (26, 40), (34, 50), (26, 50)]


def _keypoints(points, v=None, shift=(0, 0)):
    v = [2] * len(points) if v is None else v
    return [float(c) for (x, y), vis in zip(points, v) for c in (x + shift[0], y + shift[1], vis)]


def _annotation(ann_id, image_id, keypoints, bbox, area, iscrowd=0):
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": iscrowd, "bbox": list(bbox),
            "area": float(area), "keypoints": keypoints,
            "num_keypoints": int(np.count_nonzero(np.asarray(keypoints[2::3]) > 0))}


def _dataset(images, annotations):
    return {"images": [{"id": i, "file_name": f"{i:012d}.jpg", "height": h, "width": w} for i, h, w in images],
            "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "supercategory": "person",
                            "keypoints": list(COCO.joint_names), "skeleton": []}]}


def _result(image_id, keypoints, score):
    return {"image_id": image_id, "category_id": 1, "keypoints": list(keypoints), "score": score}


def _ap(dataset, results, scoring=ck.HEAD_ON_NOSE):
    joints = ck.scoring_joints(scoring)
    truth = ck.coco_ground_truth(dataset, [im["id"] for im in dataset["images"]], 1, joints)
    evaluator, summary = ck.cocoeval_keypoints(truth, results, ck.coco_sigmas(joints))
    return evaluator, ck.stats_row(evaluator), summary


def _cut(keypoints, joints):
    """51 numbers -> the 3K numbers of ``joints`` (COCO order)."""
    return np.asarray(keypoints, float).reshape(17, 3)[COCO.indices(joints)].reshape(-1).tolist()


def test_sigmas_are_cocoevals_own():
    params = cocoeval.Params(iouType="keypoints")
    np.testing.assert_array_equal(ck.coco_sigmas(), params.kpt_oks_sigmas)
    assert ck.SHARED_JOINTS == ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                                "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                                "right_ankle")
    assert ck.FACE_POINTS == ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
    np.testing.assert_array_equal(ck.coco_sigmas(ck.SHARED_JOINTS), params.kpt_oks_sigmas[5:])


def test_detections_equal_to_the_ground_truth_give_ap_one():
    b = [(x + 40, y + 3) for x, y in PERSON]
    v_b = [2] * 13 + [1, 1, 0, 0]                       # occluded knees, ankles not annotated
    dataset = _dataset([(1, 60, 80), (2, 60, 80)], [
        _annotation(1, 1, _keypoints(PERSON), (21, 4, 18, 47), 600.0),
        _annotation(2, 1, _keypoints(b, v_b), (61, 7, 18, 40), 500.0),
        _annotation(3, 2, _keypoints(PERSON, shift=(5, 2)), (26, 6, 18, 47), 650.0)])
    for scoring in ck.SCORINGS:
        joints = ck.scoring_joints(scoring)
        results = [_result(a["image_id"], _cut(a["keypoints"], joints), 1.0 - 0.1 * k)
                   for k, a in enumerate(dataset["annotations"])]
        evaluator, row, summary = _ap(dataset, results, scoring)
        assert row["ap"] == pytest.approx(1.0) and row["ap50"] == pytest.approx(1.0)
        assert row["ap75"] == pytest.approx(1.0) and row["ar"] == pytest.approx(1.0)
        assert row["ap_medium"] is None and row["ap_large"] is None   # all three are small (area < 32^2)
        assert len(summary) == 10 and summary[0].startswith("Average Precision")
        assert evaluator.params.kpt_oks_sigmas.shape == (len(joints),)


@pytest.mark.parametrize("shift", [(1.0, 0.0), (1.0, 1.5), (3.0, -2.0), (6.0, 4.0)])
def test_pixel_shift_gives_the_oks_of_the_formula(shift):
    area = 1500.0
    dataset = _dataset([(1, 60, 80)], [_annotation(1, 1, _keypoints(PERSON), (21, 4, 18, 47), area)])
    shifted = _keypoints(PERSON, shift=shift)
    for scoring in ck.SCORINGS:
        joints = ck.scoring_joints(scoring)
        evaluator, row, _ = _ap(dataset, [_result(1, _cut(shifted, joints), 0.9)], scoring)
        # OKS = mean over the annotated joints of exp(-d^2 / (2 s^2 k_i^2)), s^2 the area, k_i = 2 sigma_i.
        k = 2.0 * cocoeval.Params(iouType="keypoints").kpt_oks_sigmas[COCO.indices(joints)]
        d2 = shift[0] ** 2 + shift[1] ** 2
        oks = float(np.mean(np.exp(-d2 / (2.0 * area * k ** 2))))
        assert evaluator.ious[(1, 1)][0, 0] == pytest.approx(oks, rel=1e-12)
        # One person, one detection: matched at the OKS thresholds it reaches, precision 1 there, else 0.
        assert not np.any(np.isclose(THRESHOLDS, oks, atol=1e-6))
        assert row["ap"] == pytest.approx(np.mean(THRESHOLDS <= oks))
        assert row["ap50"] == pytest.approx(1.0 if oks >= 0.5 else 0.0)


def test_crowd_region_takes_its_detections():
    person = _annotation(1, 1, _keypoints(PERSON), (21, 4, 18, 47), 600.0)
    crowd = _annotation(2, 1, [0.0] * 51, (50, 10, 20, 30), 400.0, iscrowd=1)
    # A detection standing inside the crowd's box, scored above the exact one.
    in_crowd = _keypoints([(x + 30, y + 8) for x, y in PERSON[:5]] + [(60, 20)] * 12, [1] * 17)
    for scoring in ck.SCORINGS:
        joints = ck.scoring_joints(scoring)
        results = [_result(1, _cut(in_crowd, joints), 0.95), _result(1, _cut(person["keypoints"], joints), 0.9)]
        evaluator, with_crowd, _ = _ap(_dataset([(1, 60, 80)], [person, crowd]), results, scoring)
        assert evaluator.ious[(1, 1)].shape == (2, 2)
        assert with_crowd["ap"] == pytest.approx(1.0) and with_crowd["ar"] == pytest.approx(1.0)
        # Without the crowd the same detection is a false positive ranked before the true one: precision
        # 1/2 at every recall.
        _, without, _ = _ap(_dataset([(1, 60, 80)], [person]), results, scoring)
        assert without["ap"] == pytest.approx(0.5) and without["ar"] == pytest.approx(1.0)


def test_no_detection_is_ap_zero():
    dataset = _dataset([(1, 60, 80)], [_annotation(1, 1, _keypoints(PERSON), (21, 4, 18, 47), 600.0)])
    _, row, _ = _ap(dataset, [])
    assert row["ap"] == 0.0 and row["ar"] == 0.0


def test_to_coco_keypoints_undoes_the_offset_and_puts_the_head_on_the_nose():
    rng = np.random.default_rng(0)
    pose = rng.uniform(10, 50, (2, LCR.num_joints, 2))
    pose[1, LCR.index("left_ankle")] = np.nan
    head = pose[:, LCR.index("head")]
    full = ck.to_coco_keypoints(pose, ck.HEAD_ON_NOSE, 0.5)
    assert full.shape == (2, 17, 3)
    for name in ck.SHARED_JOINTS:
        j = COCO.index(name)
        if name == "left_ankle":
            np.testing.assert_array_equal(full[1, j], [0.0, 0.0, 0.0])
            np.testing.assert_allclose(full[0, j], list(pose[0, LCR.index(name)] - 0.5) + [1.0])
        else:
            np.testing.assert_allclose(full[:, j, :2], pose[:, LCR.index(name)] - 0.5)
            np.testing.assert_array_equal(full[:, j, 2], 1.0)
    for name in ck.FACE_POINTS:
        np.testing.assert_allclose(full[:, COCO.index(name), :2], head - 0.5)
        np.testing.assert_array_equal(full[:, COCO.index(name), 2], 1.0 if name == "nose" else 0.0)
    shared = ck.to_coco_keypoints(pose, ck.SHARED, 0.0)
    assert shared.shape == (2, 12, 3)
    np.testing.assert_allclose(shared[0, :, :2], pose[0, LCR.indices(ck.SHARED_JOINTS)])


def test_missing_pycocotools_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    with pytest.raises(ImportError, match=r"lcr_tf\[coco\]"):
        ck.require_pycocotools()


# --------------------------------------------------------------------------------- reader to COCOeval

# Person B of image 11 has its ankles not annotated and its left knee occluded; image 12 has no person but
# a crowd; image 13 has no annotation at all.
PERSON_B = [(x + 40, y + 3) for x, y in PERSON]
V_B = [2] * 13 + [1, 2, 0, 0]


def _write_root(root):
    data = _dataset([(11, 60, 80), (12, 40, 40), (13, 40, 40)], [
        _annotation(101, 11, _keypoints(PERSON), (21.5, 4.2, 18.0, 47.1), 610.0),
        _annotation(102, 11, _keypoints(PERSON_B, V_B), (61.0, 7.0, 18.0, 40.0), 480.0),
        _annotation(103, 12, [0.0] * 51, (0.0, 0.0, 20.0, 20.0), 300.0, iscrowd=1)])
    os.makedirs(os.path.join(root, "annotations"))
    os.makedirs(os.path.join(root, "val2017"))
    with open(os.path.join(root, "annotations", "person_keypoints_val2017.json"), "w") as f:
        json.dump(data, f)
    rng = np.random.default_rng(0)
    for image in data["images"]:
        pixels = rng.integers(0, 255, (image["height"], image["width"], 3), np.uint8)
        cv2.imwrite(os.path.join(root, "val2017", image["file_name"]), pixels)
    return data


@pytest.fixture()
def coco_root(tmp_path):
    root = str(tmp_path / "coco")
    return root, _write_root(root)


def _predictions_from_truth(root, path, extra=None, reader_options=()):
    """A predictions file whose ppi and nms detections are the reader's ground truth in LCR-13 (joints the
    ground truth lacks filled with the person's mean joint, which COCOeval does not judge)."""
    reader = ck.make_coco_reader(root, "val", reader_options)
    truths, ids, _ = ck.read_coco(reader)
    images = {}
    for gt in truths:
        pose = gt.pose2d.copy()
        for p in range(len(pose)):
            pose[p][~gt.annotated[p]] = np.nanmean(pose[p], axis=0)
        scores = [0.9 - 0.1 * p for p in range(len(pose))]
        people = {serving.SCORE: scores, serving.POSE2D: pose.tolist(),
                  serving.POSE3D: np.zeros((len(pose), LCR.num_joints, 3)).tolist()}
        if extra and gt.image_id in extra:
            people = {k: people[k] + [v] for k, v in extra[gt.image_id].items()}
        images[gt.image_id] = {"ppi": people, "nms": people}
    with open(path, "w") as f:
        json.dump({"format": predictions_file.PREDICTIONS_FORMAT, "version": predictions_file.PREDICTIONS_VERSION,
                   "skeleton": "lcr13", "dataset": "coco", "images": images}, f)
    return truths, ids


@pytest.mark.parametrize("offset", [None, 0.0])
def test_pixel_round_trip_through_the_reader_and_the_results_file(coco_root, tmp_path, offset):
    root, data = coco_root
    options = () if offset is None else (f"keypoint_offset={offset}",)
    preds = str(tmp_path / "preds.json")
    truths, ids = _predictions_from_truth(root, preds, reader_options=options)
    assert ids == {"000000000011": 11, "000000000012": 12, "000000000013": 13}
    if offset is None:   # the reader's +0.5
        np.testing.assert_allclose(truths[0].pose2d[0, LCR.index("left_knee")], np.add(PERSON[13], 0.5))
    res = ck.evaluate_coco(root, predictions=preds, split="val", reader_options=options,
                           results_dir=str(tmp_path / "results"))
    path = res["results_files"]["ppi"]
    assert path.endswith(os.path.join("ppi", "person_keypoints_val2017_lcrnet_results.json"))
    with open(path) as f:
        written = json.load(f)
    assert [(r["image_id"], r["category_id"]) for r in written] == [(11, 1), (11, 1)]
    by_annotation = {a["id"]: np.asarray(a["keypoints"]).reshape(17, 3) for a in data["annotations"]}
    for entry, ann in zip(written, (101, 102)):
        kp = np.asarray(entry["keypoints"]).reshape(17, 3)
        truth = by_annotation[ann]
        shared = COCO.indices(ck.SHARED_JOINTS)
        annotated = truth[shared, 2] > 0
        # The file's own integers back, exactly.
        np.testing.assert_array_equal(kp[shared][annotated, :2], truth[shared][annotated, :2])
        assert set(kp[:, 2]) <= {0.0, 1.0}
    for method in ("ppi", "nms"):
        shared_row = res[method][ck.SHARED]
        assert shared_row["ap"] == pytest.approx(1.0) and shared_row["ar"] == pytest.approx(1.0)
        # The head centre (mid-ears) is not the nose: the 17-joint approximation is below 1.
        assert res[method][ck.HEAD_ON_NOSE]["ap"] < 1.0
        assert res[method]["detections"] == 2
    assert res["num_images"] == 3 and res["num_people"] == 2 and res["rejected"] == 0
    assert res["scorings"][ck.SHARED]["joints"] == list(ck.SHARED_JOINTS)
    assert res["scorings"][ck.SHARED]["judged_people"] == 2
    json.dumps(res, allow_nan=False)


def test_false_positive_on_an_image_without_people(coco_root, tmp_path):
    root, _ = coco_root
    preds = str(tmp_path / "preds.json")
    # A detection scored above both true ones on image 13 (no annotation): precision 2/3 at recall 1
    # once the false positive is ranked first.
    fp = np.tile([[20.0, 20.0]], (LCR.num_joints, 1)) + np.arange(LCR.num_joints)[:, None]
    _predictions_from_truth(root, preds, extra={"000000000013": {
        serving.SCORE: 2.0, serving.POSE2D: fp.tolist(), serving.POSE3D: np.zeros((LCR.num_joints, 3)).tolist()}})
    res = ck.evaluate_coco(root, predictions=preds)
    row = res["ppi"][ck.SHARED]
    # Precision after the FP, TP, TP is 1/2 at recall 1/2 and 2/3 at recall 1; COCO's interpolated precision
    # is 2/3 at every recall threshold.
    assert row["ap"] == pytest.approx(2.0 / 3.0, abs=1e-9) and row["ar"] == pytest.approx(1.0)
    assert res["ppi"]["detections"] == 3


def test_options_refused_and_missing_image_named(coco_root, tmp_path):
    root, _ = coco_root
    preds = str(tmp_path / "preds.json")
    _predictions_from_truth(root, preds)
    with pytest.raises(ValueError, match="max_match_distance_px"):
        ck.evaluate_coco(root, predictions=preds, max_match_distance_px=10.0)
    with pytest.raises(ValueError, match="single protocol"):
        ck.evaluate_coco(root, predictions=preds, protocol="2")
    with open(preds) as f:
        doc = json.load(f)
    del doc["images"]["000000000012"]
    with open(preds, "w") as f:
        json.dump(doc, f)
    with pytest.raises(ValueError, match="000000000012"):
        ck.evaluate_coco(root, predictions=preds)


def test_annotation_without_area_is_named():
    dataset = _dataset([(1, 60, 80)], [_annotation(7, 1, _keypoints(PERSON), (21, 4, 18, 47), 600.0)])
    del dataset["annotations"][0]["area"]
    with pytest.raises(ValueError, match=r"annotation id 7 .*'area'"):
        ck.coco_ground_truth(dataset, [1], 1, file="x.json")


def test_format_table_names_the_approximation(coco_root, tmp_path):
    root, _ = coco_root
    preds = str(tmp_path / "preds.json")
    _predictions_from_truth(root, preds)
    text = ck.format_coco_table(ck.evaluate_coco(root, predictions=preds))
    assert "APPROXIMATION" in text and "head on nose (approx.)" in text
    assert "12 joints LCR-13 and COCO share" in text
    assert math.isclose(float(text.splitlines()[4].split()[3]), 100.0)


def test_command_line_writes_the_results_file_and_prints_the_table(coco_root, tmp_path):
    root, _ = coco_root
    preds = str(tmp_path / "preds.json")
    _predictions_from_truth(root, preds)
    out = tmp_path / "out" / "coco.json"
    proc = subprocess.run([sys.executable, "-m", "lcr_tf.evaluate", "--dataset=coco", f"--data={root}", "--split=val",
                           f"--predictions={preds}", f"--output={out}"], cwd=_REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "ppi shared 12" in proc.stdout and "APPROXIMATION" in proc.stdout
    res = json.loads(out.read_text())
    written = tmp_path / "out" / "ppi" / "person_keypoints_val2017_lcrnet_results.json"
    assert res["results_files"]["ppi"] == str(written) and written.is_file()
    assert res["ppi"][ck.SHARED]["ap"] == pytest.approx(1.0)
    # A benchmark without a results format of its own refuses native; coco's can be turned off.
    proc = subprocess.run([sys.executable, "-m", "lcr_tf.evaluate", "--dataset=coco", f"--data={root}",
                           f"--predictions={preds}", f"--output={tmp_path / 'none' / 'c.json'}",
                           "--results_format=none"], cwd=_REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "none" / "ppi").exists()
    proc = subprocess.run([sys.executable, "-m", "lcr_tf.evaluate", "--dataset=h36m", f"--data={root}",
                           "--protocol=1", f"--predictions={preds}", f"--output={tmp_path / 'h.json'}",
                           "--results_format=native"], cwd=_REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "h36m has no results format of its own" in proc.stderr


def test_images_whose_file_is_missing_are_evaluated_as_no_detection(coco_root, tmp_path):
    """No file to send: the model is not even loaded; each image is refused with its reason and its people
    are missed (AP 0), as a server that cannot read an image would leave them."""
    root, data = coco_root
    for image in data["images"]:
        os.remove(os.path.join(root, "val2017", image["file_name"]))
    res = ck.evaluate_coco(root, saved_model=str(tmp_path / "no_model_needed"), results_dir=str(tmp_path / "r"))
    assert res["refused_images"] == 3
    assert [e["image_id"] for e in res["refused_examples"]] == ["000000000011", "000000000012", "000000000013"]
    assert res["refused_examples"][0]["reason"].endswith("000000000011.jpg does not exist")
    assert res["ppi"][ck.SHARED]["ap"] == 0.0 and res["ppi"]["detections"] == 0
    with open(res["results_files"]["nms"]) as f:
        assert json.load(f) == []
