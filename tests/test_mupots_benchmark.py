"""MuPoTS-3D's figures under its official protocol (lcr_tf.evaluation.mupots_benchmark), on people built by
hand: a standing body in millimetres whose 17 joints are chosen so that LCR-13's derived joints (neck =
mid-shoulder, pelvis = mid-hip, spine = body centre) are exact, projected through a known camera. The
expected figures are counted by hand from ``mpii_mupots_multiperson_eval.m`` (its matching, its pelvis
centring and bone rescaling) and ``mpii_compute_3d_pck.m`` (errors strictly below 150 mm, AUC over
0:5:150 mm, ``mpii_get_pck_auc_joint_groups.m``'s 14 joints)."""

import numpy as np
import pytest

from lcr_tf.contracts import serving
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.evaluation import mupots_benchmark as mb
from lcr_tf.evaluation import native_mupots, predictions_file
from lcr_tf.evaluation.ground_truth import GroundTruth

MU = skeleton_lib.MUPOTS17
LCR = skeleton_lib.LCR13
F, C, DEPTH = 1000.0, 500.0, 5000.0  # focal length and principal point (px), the people's depth (mm)

# A standing body, mm, pelvis at the origin (x right, y down): mupots17 order.
STANDING = np.array([
    [0, -700, 0], [0, -500, 0], [-200, -500, 0], [-200, -250, 0], [-200, 0, 0], [200, -500, 0], [200, -250, 0],
    [200, 0, 0], [-100, 0, 0], [-100, 400, 0], [-100, 800, 0], [100, 0, 0], [100, 400, 0], [100, 800, 0],
    [0, 0, 0], [0, -250, 0], [0, -600, 0]], float)
# The same body with both legs swung forward (knees and ankles 400 mm nearer the camera).
LEGS_FORWARD = STANDING.copy()
LEGS_FORWARD[MU.indices(["right_knee", "right_ankle", "left_knee", "left_ankle"]), 2] = -400.0


def _project(camera_mm):
    return F * camera_mm[..., :2] / camera_mm[..., 2:] + C


def _person(body, x_mm):
    """(17, 3) camera mm and (17, 2) px of ``body`` with its pelvis at (x_mm, 0, DEPTH)."""
    camera = body + [x_mm, 0.0, DEPTH]
    return camera, _project(camera)


def _truth(image_id, people):
    """A frame's GroundTruth from [(camera mm (17, 3), px (17, 2))], in annotation order."""
    cam = np.stack([p[0] for p in people])
    px = np.stack([p[1] for p in people])
    lcr2d, ann = skeleton_lib.convert(px, MU, LCR)
    lcr3d, _ = skeleton_lib.convert(cam / 1000.0, MU, LCR)
    return GroundTruth(image_id, b"", lcr2d, ann, skeleton_lib.centre_poses(lcr3d, LCR), np.full(len(people), np.nan),
                       0, 0, group=image_id.split("_")[0], native_pose2d=px, native_pose3d=cam / 1000.0)


def _detections(people):
    """The rows' people from [(camera mm (17, 3), px (17, 2))] in file order, as LCR-13 predictions."""
    cam = np.array([p[0] for p in people], float).reshape(-1, 17, 3)
    px = np.array([p[1] for p in people], float).reshape(-1, 17, 2)
    p2, _ = skeleton_lib.convert(px, MU, LCR)
    p3, _ = skeleton_lib.convert(cam / 1000.0, MU, LCR)
    det = {serving.SCORE: np.ones(len(cam)), serving.POSE2D: p2, serving.POSE3D: skeleton_lib.centre_poses(p3, LCR)}
    return {"ppi": det, "nms": det, "candidates": None}


def test_pck_scores_by_hand():
    errors = np.array([[100.0, 200.0, np.nan], [10.0, 10.0, 10.0]])
    got = mb.pck_scores(errors, np.array([True, False]))
    # One hit (100 mm) of 6 joints (the unmatched person's 3 are misses, the NaN one too); of 3 matched.
    assert got["pck3d_all"] == pytest.approx(1 / 6) and got["pck3d_matched"] == pytest.approx(1 / 3)
    # 100 mm is strictly below 105, 110, ..., 150: 10 of the 31 thresholds.
    assert got["auc_all"] == pytest.approx(10 / 31 / 6) and got["auc_matched"] == pytest.approx(10 / 31 / 3)
    assert mb.pck_scores(np.zeros((0, 3)), np.zeros((0,), bool))["pck3d_all"] is None
    exactly = mb.pck_scores(np.array([[150.0]]), np.array([True]))
    assert exactly["pck3d_all"] == 0.0  # strictly below, as the script's "<"


def test_person_errors_centre_and_rescale():
    gt, _ = _person(STANDING, 0.0)
    pred = 1.15 * (gt - gt[14]) + [40.0, 0.0, 300.0]  # 15 % too large, elsewhere
    np.testing.assert_allclose(mb.person_errors(pred[None], gt[None])[0], 0.0, atol=1e-9)
    raw = mb.person_errors(pred[None], gt[None], rescale_bones=False)[0]
    np.testing.assert_allclose(raw, 0.15 * np.linalg.norm(STANDING, axis=-1), atol=1e-9)


def test_exact_lcr13_prediction_misses_only_the_head_top():
    person = _person(STANDING, 0.0)
    truth = [_truth("TS1_000000", [person])]
    res = mb.evaluate_mupots(truth, {"TS1_000000": _detections([person])})
    row = res["ppi"]
    # Errors of 0 mm are below every threshold but the first (0 mm): 30 of 31.
    assert row["pck3d_all"] == pytest.approx(13 / 14) and row["auc_all"] == pytest.approx(13 / 14 * 30 / 31)
    assert row["joint_sets"]["lcr13"]["pck3d_all"] == 1.0 and row["joint_sets"]["limbs12"]["pck3d_all"] == 1.0
    assert row["per_group"]["Head"]["pck3d_all"] == 0.0 and row["per_group"]["Neck"]["pck3d_all"] == 1.0
    assert row["mpjpe_mm"] == pytest.approx(0.0, abs=1e-9) and res["upper_bound"] is None
    assert res["mupots_protocol"]["official_joint_set"] == "mupots14" and res["sequences"] == ["TS1"]


def test_missed_person_beside_a_false_positive():
    """A detected; B's only detection is 200 px to its right (its 3D is B's): the official gate leaves B
    missed, the Hungarian pairing gives it the false positive's joints and the all-people figure rises."""
    a, b = _person(STANDING, -1000.0), _person(STANDING, 1000.0)
    false_positive = (b[0], b[1] + [200.0, 0.0])
    truth = [_truth("TS6_000000", [a, b])]
    preds = {"TS6_000000": _detections([a, false_positive])}
    official = mb.evaluate_mupots(truth, preds)["ppi"]
    assert (official["matched"], official["missed"]) == (1, 1)
    assert official["pck3d_all"] == pytest.approx(13 / 28) and official["pck3d_matched"] == pytest.approx(13 / 14)
    hungarian = mb.evaluate_mupots(truth, preds, matching="hungarian")["ppi"]
    assert (hungarian["matched"], hungarian["missed"]) == (2, 0)
    assert hungarian["pck3d_all"] == pytest.approx(26 / 28)


def test_two_people_close_together_pair_in_annotation_order():
    """A (standing) and B (legs forward) 150 mm apart, 30 px in the image. The file lists B's detection
    first; every matching joint of it lies within 40 px of A, as does A's own detection: a tie, which the
    script gives to the first detection. So A takes B's legs and B takes A's: 4 leg joints missed each,
    after rescaling too (hip-knee 400 vs 566 mm, other directions)."""
    a, b = _person(STANDING, 0.0), _person(LEGS_FORWARD, 150.0)
    assert np.all(np.abs(a[1][1:14] - b[1][1:14]) < 40.0)
    truth = [_truth("TS2_000000", [a, b])]
    preds = {"TS2_000000": _detections([b, a])}
    official = mb.evaluate_mupots(truth, preds)["ppi"]
    assert (official["matched"], official["missed"]) == (2, 0)
    assert official["pck3d_all"] == pytest.approx(18 / 28)
    assert official["joint_sets"]["limbs12"]["pck3d_all"] == pytest.approx(16 / 24)
    no_rescale = mb.evaluate_mupots(truth, preds, rescale_bones=False)["ppi"]
    assert no_rescale["pck3d_all"] == pytest.approx(18 / 28)
    hungarian = mb.evaluate_mupots(truth, preds, matching="hungarian")["ppi"]
    assert hungarian["pck3d_all"] == pytest.approx(26 / 28)


def test_scaled_prediction_is_exact_after_rescaling_only():
    gt = _person(STANDING, 0.0)
    cam = 1.15 * (gt[0] - gt[0][14]) + gt[0][14]
    scaled = (cam, gt[1])
    truth = [_truth("TS3_000000", [gt])]
    preds = {"TS3_000000": _detections([scaled])}
    assert mb.evaluate_mupots(truth, preds)["ppi"]["pck3d_all"] == pytest.approx(13 / 14)
    raw = mb.evaluate_mupots(truth, preds, rescale_bones=False)["ppi"]
    # Without rescaling, a joint is off by 15 % of its distance to the pelvis: the ankles (810 mm away)
    # by 122 mm, still hits; the head top is missed anyway; so only the AUC shows the scale.
    assert raw["pck3d_all"] == pytest.approx(13 / 14) and raw["auc_all"] < 13 / 14 - 0.1


def test_frames_without_detections_and_bad_options():
    a = _person(STANDING, 0.0)
    truth = [_truth("TS1_000000", [a]), _truth("TS2_000000", [a])]
    preds = {"TS1_000000": _detections([a]), "TS2_000000": _detections([])}
    row = mb.evaluate_mupots(truth, preds)["ppi"]
    assert row["per_sequence"]["TS2"]["pck3d_all"] == 0.0 and row["per_sequence"]["TS2"]["pck3d_matched"] is None
    assert row["pck3d_all"] == pytest.approx((13 / 14 + 0) / 2) and row["pck3d_matched"] == pytest.approx(13 / 14)
    assert row["pck3d_all_pooled"] == pytest.approx(13 / 28) and row["detections"] == 1
    with pytest.raises(ValueError, match="must be one of official, hungarian"):
        mb.evaluate_mupots(truth, preds, matching="greedy")
    with pytest.raises(ValueError, match="applies to --mupots_matching=hungarian"):
        mb.evaluate_mupots(truth, preds, max_match_distance_px=50.0)
    with pytest.raises(ValueError, match="no predictions for image 'TS2_000000'"):
        mb.evaluate_mupots(truth, {"TS1_000000": preds["TS1_000000"]})


def _mupots14_entry(people):
    """An entry whose detections come from a 14-joint (``mupots14``) model: LCR-13 fields and ``native``."""
    cam = np.array([p[0] for p in people], float).reshape(-1, 17, 3)
    px = np.array([p[1] for p in people], float).reshape(-1, 17, 2)
    own = predictions_file.as_people(np.ones(len(cam)), px[:, :14], cam[:, :14] / 1000.0, "mupots14")
    lcr = predictions_file.to_evaluation_skeleton(own, "mupots14")
    return {"ppi": lcr, "nms": lcr, "candidates": None,
            predictions_file.NATIVE: {"skeleton": "mupots14", "ppi": own, "nms": own}}


def test_a_14_joint_model_is_scored_on_its_own_head_top_and_neck(tmp_path):
    person = _person(STANDING, 0.0)
    truth = [_truth("TS1_000000", [person])]
    entry = _mupots14_entry([person])
    # LCR-13's head is the midpoint of the neck and the head top: (0, -600) mm, MuPoTS-3D's head here.
    np.testing.assert_allclose(entry["ppi"][serving.POSE3D][0, LCR.index("head")] -
                               entry["ppi"][serving.POSE3D][0, LCR.indices(["left_hip", "right_hip"])].mean(0),
                               [0.0, -0.6, 0.0], atol=1e-12)
    path = str(tmp_path / "p.json")
    predictions_file.write_predictions(path, {"TS1_000000": entry}, "mupots")
    back = predictions_file.read_predictions(path, "mupots")["TS1_000000"]
    assert back[predictions_file.NATIVE]["skeleton"] == "mupots14"
    assert back[predictions_file.NATIVE]["ppi"][serving.POSE2D].shape == (1, 14, 2)
    row = mb.evaluate_mupots(truth, {"TS1_000000": back})["ppi"]
    assert row["pck3d_all"] == 1.0 and row["per_group"]["Head"]["pck3d_all"] == 1.0
    pred2d, pred3d = native_mupots.prediction_variables(truth, {"TS1_000000": back}, "ppi")
    np.testing.assert_allclose(pred3d["TS1_img_000000"][0, 0] - pred3d["TS1_img_000000"][0, 14],
                               STANDING[0], atol=0.01)  # the head top as predicted (written to 0.01 mm)
    with pytest.raises(ValueError, match="cannot give LCR-13's head"):
        predictions_file.to_evaluation_skeleton({serving.SCORE: np.ones(1), serving.POSE2D: np.full((1, 14, 2), np.nan),
                                                 serving.POSE3D: np.full((1, 14, 3), np.nan)}, "mupots14")
    bad = dict(entry)
    bad[predictions_file.NATIVE] = {"skeleton": "nope", "ppi": entry["ppi"], "nms": entry["nms"]}
    predictions_file.write_predictions(path, {"TS1_000000": bad}, "mupots")
    with pytest.raises(ValueError, match="field 'native' must name a known skeleton"):
        predictions_file.read_predictions(path, "mupots")
