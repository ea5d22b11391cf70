"""--results_format=native for MPII and MuPoTS-3D (lcr_tf.evaluation.native_results): the files written
from the small native trees of tests/test_evaluate_real.py are read back with SciPy as the benchmarks'
MATLAB tools read them: MPII's pred struct (1-based MATLAB pixels, 0-based joint ids, annorect aligned with
the annotation's for the single-person file, the unpaired detections by score for the multi-person file)
and MuPoTS-3D's per-frame (D, 17, 2) px and (D, 17, 3) mm variables in its joint order."""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
from test_evaluate_real import (  # noqa: F401  (fixtures)
    _mpii_predictions,
    _mupots_predictions,
    _write,
    mpii_tree,
    mupots_tree,
)

from lcr_tf.contracts import serving
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.evaluation import native_mupots, native_results, predictions_file, real_benchmarks

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LCR = skeleton_lib.LCR13
MPII = skeleton_lib.MPII16
MUPOTS = skeleton_lib.MUPOTS17


def _items(value):
    """A squeezed MATLAB struct array as a list (one element comes back bare, none as an empty array)."""
    if isinstance(value, np.ndarray):
        return list(value.reshape(-1))
    return [value]


def _points(rect):
    """{0-based MPII id: (x, y, score)} of a loaded annorect; {} when its annopoints are empty."""
    if isinstance(rect.annopoints, np.ndarray) and rect.annopoints.size == 0:
        return {}
    return {int(p.id): (float(p.x), float(p.y), float(p.score)) for p in _items(rect.annopoints.point)}


def _load(path):
    return scipy.io.loadmat(path, struct_as_record=False, squeeze_me=True)


def _mpii_expected(pose_lcr):
    """{MPII id: (x, y)} in MATLAB coordinates (the package's + 0.5): the 12 limb joints copied, pelvis the
    mid-hip, thorax the mid-shoulder s, and, on the line from s to LCR-13's head h, upper neck
    s + 0.445 (h - s) and head top 2 h - upper neck."""
    p = np.asarray(pose_lcr, float)
    out = {MPII.index(n): tuple(p[LCR.index(n)] + 0.5) for n in LCR.joint_names if n != "head"}
    s = p[LCR.indices(["left_shoulder", "right_shoulder"])].mean(0)
    h = p[LCR.index("head")]
    neck = s + 0.445 * (h - s)
    out.update({MPII.index("pelvis"): tuple(p[LCR.indices(["left_hip", "right_hip"])].mean(0) + 0.5),
                MPII.index("thorax"): tuple(s + 0.5), MPII.index("upper_neck"): tuple(neck + 0.5),
                MPII.index("head_top"): tuple(2 * h - neck + 0.5)})
    return out


def test_mpii_pred_structs_read_back(mpii_tree, tmp_path):
    root, truth = mpii_tree
    preds = tmp_path / "mpii.json"
    images = _mpii_predictions(truth)
    _write(str(preds), images, "mpii")
    res = real_benchmarks.evaluate_dataset("mpii", root, predictions=str(preds), reader_options=["val_images=2"],
                                           results_dir=str(tmp_path / "native"))
    files = res["results_files"]["ppi"]
    assert files[native_results.MPII_SINGLE_FILE] == str(tmp_path / "native" / "ppi" / "pred_keypoints_mpii.mat")
    single = _items(_load(files[native_results.MPII_SINGLE_FILE])["pred"])
    assert [e.image.name for e in single] == ["a.jpg", "b.jpg"]
    # a.jpg: 3 annorects; rect 1 (single person) holds its paired detection (the one with the moved wrists,
    # not the false positive of score 2); rects 2, 3 (multi-person) are empty. Each carries the
    # annotation's objpos (50, 60) and scale 0.6 (written MATLAB 1-based, as the annotation has them).
    rects = _items(single[0].annorect)
    assert len(rects) == 3 and _points(rects[1]) == {} and _points(rects[2]) == {}
    assert [(float(r.objpos.x), float(r.objpos.y), float(r.scale)) for r in rects] == [(50.0, 60.0, 0.6)] * 3
    got = _points(rects[0])
    want = _mpii_expected(np.asarray(images["a.jpg"]["ppi"][0][1], float))
    assert sorted(got) == list(range(16))
    for j, (x, y) in want.items():
        assert got[j][:2] == pytest.approx((x, y), abs=1e-9) and got[j][2] == 1.0
    lw = MPII.index("left_wrist")
    assert got[lw][0] == pytest.approx(truth["a.jpg"][0][LCR.index("left_wrist"), 0] + 10.0 + 0.5)
    assert float(rects[0].score) == 1.0
    # nms has no detection on b.jpg: its single-person rect is there, empty.
    nms_single = _items(_load(res["results_files"]["nms"][native_results.MPII_SINGLE_FILE])["pred"])
    assert [_points(r) for r in _items(nms_single[1].annorect)] == [{}]
    # Multi-person: a.jpg's detections other than the single-person one, by decreasing score (the false
    # positive first), each with its score on every point.
    multi = _items(_load(files[native_results.MPII_MULTI_FILE])["pred"])
    rects = _items(multi[0].annorect)
    assert [float(r.score) for r in rects] == [2.0, 1.0, 1.0]
    first = _points(rects[0])
    for j, (x, y) in _mpii_expected(np.asarray(images["a.jpg"]["ppi"][3][1], float)).items():
        assert first[j] == pytest.approx((x, y, 2.0), abs=1e-9)
    assert _items(multi[1].annorect) == []   # b.jpg's one detection is its single-person person's


def test_mpii_multi_person_points_outside_the_image_are_left_out(mpii_tree, tmp_path):
    root, truth = mpii_tree
    images = _mpii_predictions(truth)
    outside = np.asarray(images["a.jpg"]["ppi"][3][1], float).copy()
    outside[LCR.index("left_ankle"), 1] = 400.0   # below the 150 px image
    images["a.jpg"]["ppi"][3] = (2.0, outside, images["a.jpg"]["ppi"][3][2])
    preds = tmp_path / "mpii.json"
    _write(str(preds), images, "mpii")
    res = real_benchmarks.evaluate_dataset("mpii", root, predictions=str(preds), reader_options=["val_images=2"],
                                           results_dir=str(tmp_path))
    multi = _items(_load(res["results_files"]["ppi"][native_results.MPII_MULTI_FILE])["pred"])
    got = _points(_items(multi[0].annorect)[0])
    assert MPII.index("left_ankle") not in got and len(got) == 15


def test_mupots_prediction_files_read_back(mupots_tree, tmp_path):
    root, truth = mupots_tree
    images = _mupots_predictions(truth)
    preds = tmp_path / "mupots.json"
    _write(str(preds), images, "mupots")
    res = real_benchmarks.evaluate_dataset("mupots", root, predictions=str(preds), results_dir=str(tmp_path / "n"))
    files = res["results_files"]["ppi"]
    assert files[native_mupots.MUPOTS_2D_FILE] == str(tmp_path / "n" / "ppi" / "preds_2d_kpt_mupots.mat")
    p2 = _load(files[native_mupots.MUPOTS_2D_FILE])
    p3 = _load(files[native_mupots.MUPOTS_3D_FILE])
    names = sorted(k for k in p2 if not k.startswith("__"))
    assert names == ["TS1_img_000000", "TS1_img_000001", "TS2_img_000000", "TS2_img_000001"]
    assert sorted(k for k in p3 if not k.startswith("__")) == names
    raw2 = scipy.io.loadmat(files[native_mupots.MUPOTS_2D_FILE])
    raw3 = scipy.io.loadmat(files[native_mupots.MUPOTS_3D_FILE])
    assert raw2["TS1_img_000000"].shape == (2, 17, 2) and raw3["TS1_img_000000"].shape == (2, 17, 3)
    assert raw2["TS1_img_000001"].shape == (1, 17, 2)     # one of the two people not detected
    for image_id, entry in images.items():
        name = image_id.replace("_", "_img_")
        for d, (_, pose2d, pose3d) in enumerate(entry["ppi"]):
            want2, given = skeleton_lib.convert(np.asarray(pose2d, float), LCR, MUPOTS)
            want3, _ = skeleton_lib.convert(np.asarray(pose3d, float), LCR, MUPOTS)
            np.testing.assert_allclose(raw2[name][d][given], want2[given], atol=1e-9)   # annot2: offset 0
            np.testing.assert_allclose(raw3[name][d][given], 1000.0 * want3[given], atol=1e-6)  # millimetres
            # LCR-13 has no head top: NaN, never guessed; the others are all given.
            assert list(np.flatnonzero(~given)) == [MUPOTS.index("head_top")]
            assert np.isnan(raw3[name][d][MUPOTS.index("head_top")]).all()
    # The head (its own joint in MuPoTS-3D) and the pelvis (mid-hip) where the MATLAB evaluation expects them.
    name, (_, pose2d, _) = "TS2_img_000000", images["TS2_000000"]["ppi"][0]
    np.testing.assert_allclose(raw2[name][0][MUPOTS.index("head")], np.asarray(pose2d)[LCR.index("head")])
    np.testing.assert_allclose(raw2[name][0][MUPOTS.index("pelvis")],
                               np.asarray(pose2d)[LCR.indices(["left_hip", "right_hip"])].mean(0))


def test_frame_without_detections_is_an_empty_variable(mupots_tree, tmp_path):
    root, truth = mupots_tree
    images = _mupots_predictions(truth)
    images["TS2_000001"] = {"ppi": [], "nms": [], "candidates": None}
    preds = tmp_path / "mupots.json"
    _write(str(preds), images, "mupots")
    res = real_benchmarks.evaluate_dataset("mupots", root, predictions=str(preds), results_dir=str(tmp_path))
    raw2 = scipy.io.loadmat(res["results_files"]["nms"][native_mupots.MUPOTS_2D_FILE])
    assert raw2["TS2_img_000001"].size == 0


def test_results_format_refused_where_there_is_none(mupots_tree, tmp_path):
    with pytest.raises(ValueError, match="h36m has no results format of its own"):
        native_results.resolve_results_format("h36m", "native")
    with pytest.raises(ValueError, match="synthetic has no results format"):
        native_results.resolve_results_format("synthetic", "native")
    assert native_results.resolve_results_format("coco", None) == "native"
    assert native_results.resolve_results_format("mpii", None) == "none"
    root, truth = mupots_tree
    preds = tmp_path / "mupots.json"
    _write(str(preds), _mupots_predictions(truth), "mupots")
    out = tmp_path / "r" / "r.json"
    proc = subprocess.run([sys.executable, "-m", "lcr_tf.evaluate", "--dataset=mupots", f"--data={root}",
                           f"--predictions={preds}", f"--output={out}", "--results_format=native"],
                          cwd=_REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r" / "ppi" / "preds_3d_kpt_mupots.mat").is_file()
    assert "results files (ppi):" in proc.stdout


def test_mupots_subset_gets_placeholders_the_script_can_read(mupots_tree, tmp_path):
    """Only TS1 evaluated: TS2's frames get empty variables (the official script reads every frame of every
    sequence), and the results say so; the sequences absent from the root are named."""
    root, truth = mupots_tree
    preds = tmp_path / "mupots.json"
    _write(str(preds), {k: v for k, v in _mupots_predictions(truth).items() if k.startswith("TS1_")}, "mupots")
    res = real_benchmarks.evaluate_dataset("mupots", root, predictions=str(preds), reader_options=["sequences=1"],
                                           results_dir=str(tmp_path / "n"))
    raw2 = scipy.io.loadmat(res["results_files"]["ppi"][native_mupots.MUPOTS_2D_FILE])
    raw3 = scipy.io.loadmat(res["results_files"]["ppi"][native_mupots.MUPOTS_3D_FILE])
    assert sorted(k for k in raw2 if not k.startswith("__")) == [
        "TS1_img_000000", "TS1_img_000001", "TS2_img_000000", "TS2_img_000001"]
    assert raw2["TS2_img_000001"].size == 0 and raw3["TS2_img_000000"].size == 0
    assert raw2["TS1_img_000000"].shape == (2, 17, 2)
    facts = res["mupots_native_files"]
    assert facts["placeholder_frames"] == 2 and facts["placeholder_sequences"] == ["TS2"]
    assert facts["sequences_missing"] == [f"TS{s}" for s in range(3, 21)]
    assert "not this model's" in facts["note"] and "needs all of them" in facts["note"]


def test_a_14_joint_saved_model_writes_its_head_top(mupots_tree, tmp_path):
    """A tiny untrained model on MuPoTS-3D's 14 joints, exported and evaluated end to end: the detections
    keep the model's joints (``native``), MuPoTS-3D's files carry its head top and neck as predicted (not
    NaN, not the mid-shoulder), and the other benchmarks' LCR-13 poses are derived from them."""
    import tensorflow as tf
    import test_export
    from conftest import lift_lcr13
    from keras import utils

    from lcr_tf.modeling import factory
    from lcr_tf.poses import anchors as anchors_lib
    from lcr_tf.poses import body_model
    from lcr_tf.serving import export as export_lib
    from lcr_tf.serving import inference

    utils.set_random_seed(0)
    lcr = body_model.sample_poses(300, seed=0).poses3d.astype(np.float64)
    extras = lambda hips, shoulders, head: {"head_top": 2 * head - shoulders, "neck": shoulders,  # noqa: E731
                                            "pelvis": hips, "spine": (hips + shoulders) / 2}
    corpus = skeleton_lib.centre_poses(lift_lcr13(lcr, MUPOTS, extras)[:, :14], "mupots14")
    anchor_set = anchors_lib.cluster_poses(corpus, test_export.K, 2, seed=0, skeleton="mupots14")
    config = factory.ModelConfig(num_anchors=test_export.K, num_joints=14, image_size=test_export.S,
                                 rpn_scales=(16.0, 32.0, 64.0), rpn_channels=16, rpn_pre_nms_top_n_test=100,
                                 rpn_post_nms_top_n_test=test_export.R, fc_dims=(32, 32), seed=0)
    model = factory.build_model(config, anchor_set)
    model(tf.zeros([1, test_export.S, test_export.S, 3]))
    inference.save_model_dir(model, str(tmp_path / "run"))
    path = export_lib.export(str(tmp_path / "run"), str(tmp_path / "serving"), version=1,
                             params=inference.default_params(test_export.K, "paper", max_candidates=test_export.M,
                                                             max_detections=test_export.D))
    root, _ = mupots_tree
    res = real_benchmarks.evaluate_dataset("mupots", root, saved_model=os.path.dirname(path), max_images=1,
                                           save_predictions=str(tmp_path / "p.json"),
                                           results_dir=str(tmp_path / "n"))
    raw3 = scipy.io.loadmat(res["results_files"]["ppi"][native_mupots.MUPOTS_3D_FILE])["TS1_img_000000"]
    assert raw3.shape[0] >= 1 and raw3.shape[1:] == (17, 3)  # untrained: every candidate passes
    assert np.all(np.isfinite(raw3[:, MUPOTS.index("head_top")]))
    predictions = predictions_file.read_predictions(str(tmp_path / "p.json"), "mupots")["TS1_000000"]
    own = predictions[predictions_file.NATIVE]
    assert own["skeleton"] == "mupots14" and own["ppi"][serving.POSE3D].shape[1:] == (14, 3)
    np.testing.assert_allclose(raw3[:, MUPOTS.index("neck")],
                               1000.0 * own["ppi"][serving.POSE3D][:, skeleton_lib.MUPOTS14.index("neck")],
                               atol=0.02)
    head = own["ppi"][serving.POSE2D][:, skeleton_lib.MUPOTS14.indices(["neck", "head_top"])].mean(1)
    np.testing.assert_allclose(predictions["ppi"][serving.POSE2D][:, LCR.index("head")], head, atol=2e-3)
    assert res["ppi"]["people"] == 2 and res["num_images"] == 1
