"""MPII's results files as the MPII toolkit (evalMPII) reads them, and its figures as it labels them
(lcr_tf.evaluation.native_mpii, mpii_toolkit, mpii_groups, mpii_benchmark): the files are read back with
SciPy in the struct shapes the toolkit's scripts index (flatten_annolist.m: ``annorect(r).objpos``;
annolist2matrix.m: ``annopoints.point(k).id / x / y``, [] for a missing pose; assignGTmulti.m:
``annopoints.point`` of every multi-person rect; evaluatePCKh.m / evaluateAP.m: one entry per image / per
group of groups_v12.mat), and the toolkit's figures (genTablePCK.m / genTableAP.m: left / right averaged,
Head = upper neck and head top) are checked against numbers computed by hand.

The tree (MPII_W x MPII_H px): train image a.jpg with single-person people 1 (detected, left wrist 10 px
off: a miss at 0.5 x 13.70 px) and 2 (objpos, no detection), person 3 without objpos, and the multi-person
group 4, 5 (person 4 detected exactly, score 0.9; a detection of person 5 shifted 20 px, a miss on every
joint, score 0.95; a detection wholly outside the image); train image b.jpg, single-person, whose file is
missing; test images c.jpg and d.jpg (objpos, scale and head boxes, no joints)."""

import math
import os

import cv2
import numpy as np
import pytest
import scipy.io
from test_evaluate_real import _lcr, _write
from test_reader_mpii import TEMPLATE, _points, _rect, write_release

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.evaluation import mpii_groups, mpii_toolkit, native_mpii, native_results, real_benchmarks, tables
from lcr_tf.evaluation.ground_truth import GroundTruth

LCR = skeleton_lib.LCR13
MPII = skeleton_lib.MPII16
W, H = 400, 200
HEAD_SIZE = 0.6 * math.hypot(11, 20)        # every head box is 11 x 20 px: 13.70 px, threshold 6.85 px
SHIFTS = {1: (0, 0), 2: (100, 0), 3: (200, 0), 4: (250, 0), 5: (300, 0)}   # a.jpg's people
GATE = 30.0   # px: detections pair with the people they stand on only


def _box(dx, dy=0.0):
    return (45.0 + dx, 10.0 + dy, 56.0 + dx, 30.0 + dy)


def _objpos(dx, dy=0.0):
    return (50.0 + dx, 60.0 + dy)


def _groups(cells):
    """groups_v12.mat's layout: an (N, 1) cell of (1, k) cells of (n, 1) uint8 annorect vectors."""
    out = np.empty((len(cells), 1), dtype=object)
    for i, groups in enumerate(cells):
        row = np.empty((1, len(groups)), dtype=object)
        for k, g in enumerate(groups):
            row[0, k] = np.array(g, np.uint8).reshape(-1, 1)
        out[i, 0] = row
    return out


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Returns (root, groups file, {image id: [LCR-13 pose per annotated person]})."""
    root = tmp_path_factory.mktemp("mpii_toolkit")
    a = [_rect(_points(TEMPLATE + s), _box(*s), _objpos(*s) if j != 3 else None, 0.6 if j != 3 else None)
         for j, s in SHIFTS.items()]
    test_rects = [_rect(None, _box(dx), _objpos(dx), 0.6) for dx in (0, 100, 250, 300)]
    images = [{"name": "a.jpg", "train": 1, "vididx": 1, "single": [1, 2], "rects": a},
              {"name": "b.jpg", "train": 1, "vididx": 2, "single": [1],
               "rects": [_rect(_points(TEMPLATE + (20, 10)), _box(20, 10), _objpos(20, 10), 0.6)]},
              {"name": "c.jpg", "train": 0, "single": [1, 2], "rects": test_rects},
              {"name": "d.jpg", "train": 0, "single": [1], "rects": [_rect(None, _box(0), _objpos(0), 0.6)]}]
    from lcr_tf.datasets import mpii
    write_release(str(root / mpii.ANNOTATION_FILE), images, ["vidA", "vidB"])
    (root / "images").mkdir()
    for name in ("a.jpg", "c.jpg", "d.jpg"):   # b.jpg is missing
        assert cv2.imwrite(str(root / "images" / name), np.full((H, W, 3), 90, np.uint8))
    groups = str(root / "groups_v12.mat")
    scipy.io.savemat(groups, {"groups": _groups([[[1], [2], [4, 5]], [[1]], [[1], [2], [3, 4]], [[1]]])})
    truth = {"a.jpg": {j: _lcr(TEMPLATE + np.array(s, float), "mpii16") for j, s in SHIFTS.items()}}
    return str(root), groups, truth


def _predictions(truth):
    """a.jpg: d0 person 1 with the left wrist 10 px off (score 1), d1 person 4 exact (0.9), d2 person 5
    shifted 20 px (0.95), d3 wholly outside the image (0.5); b.jpg: none (its file is missing). c.jpg: e1 on
    person 1 (score 1), e2 a weaker one 5 px below it (0.2), e3 on person 4 (0.8); d.jpg: none."""
    p = truth["a.jpg"]
    zero = np.zeros((LCR.num_joints, 3))
    d0 = p[1].copy()
    d0[LCR.index("left_wrist"), 0] += 10.0
    dets = [(1.0, d0, zero), (0.9, p[4], zero), (0.95, p[5] + 20.0, zero), (0.5, p[1] + 1000.0, zero)]
    template = _lcr(TEMPLATE, "mpii16")
    test = [(1.0, template, zero), (0.2, template + np.array([0.0, 5.0]), zero),
            (0.8, template + np.array([250.0, 0.0]), zero)]
    return {"a.jpg": {"ppi": dets, "nms": dets}, "c.jpg": {"ppi": test, "nms": test},
            "d.jpg": {"ppi": [], "nms": []}}


def _load(path):
    return scipy.io.loadmat(path, struct_as_record=False, squeeze_me=True)["pred"]


def _raw(path):
    """The file as the toolkit indexes it (no squeezing): pred is 1 x N, annorect 1 x R."""
    return scipy.io.loadmat(path)["pred"]


def _ids(annopoints):
    """The ids of an unsqueezed annopoints, [] for MATLAB's []."""
    if annopoints.size == 0:
        return []
    points = annopoints[0, 0]["point"]
    assert points.shape[0] == 1 and set(points.dtype.names) == {"id", "x", "y", "score"}
    return [int(points[0, k]["id"][0, 0]) for k in range(points.shape[1])]


def _evaluate(tree, tmp_path, groups=True, split="train"):
    root, groups_file, truth = tree
    tmp_path.mkdir(parents=True, exist_ok=True)
    preds = tmp_path / "mpii.json"
    _write(str(preds), _predictions(truth), "mpii")
    return real_benchmarks.evaluate_dataset("mpii", root, predictions=str(preds), split=split,
                                            max_match_distance_px=GATE, results_dir=str(tmp_path / "native"),
                                            mpii_groups=groups_file if groups else None)


def test_single_person_file_in_the_shapes_evaluatePCKh_indexes(tree, tmp_path):
    res = _evaluate(tree, tmp_path)
    path = res["results_files"]["ppi"][native_results.MPII_SINGLE_FILE]
    raw = _raw(path)
    # One entry per evaluated image, the unreadable b.jpg included (evaluatePCKh.m asserts the count).
    assert raw.shape == (1, 2) and res["unreadable_images"] == 1
    assert [str(raw[0, i]["image"][0, 0]["name"][0]) for i in range(2)] == ["a.jpg", "b.jpg"]
    rects = raw[0, 0]["annorect"]
    assert rects.shape == (1, 5) and set(rects.dtype.names) == {"objpos", "scale", "annopoints", "score"}
    # flatten_annolist.m keeps the rects with an objpos: all but rect 3, as in the annotation (MATLAB 1-based).
    objpos = [(float(r["objpos"][0, 0]["x"][0, 0]), float(r["objpos"][0, 0]["y"][0, 0])) if r["objpos"].size
              else None for r in rects[0]]
    assert objpos == [(50.0, 60.0), (150.0, 60.0), None, (300.0, 60.0), (350.0, 60.0)]
    assert [r["scale"].size and float(r["scale"][0, 0]) for r in rects[0]] == [0.6, 0.6, 0, 0.6, 0.6]
    # Rect 1 holds its detection: 16 points with id, x, y, score; rect 2 (objpos, no detection) and the
    # multi-person rects have annopoints [] (annolist2matrix.m: a missing pose, every joint missed).
    assert _ids(rects[0, 0]["annopoints"]) == list(range(16))
    assert [rects[0, k]["annopoints"].size for k in range(1, 5)] == [0, 0, 0, 0]
    point = rects[0, 0]["annopoints"][0, 0]["point"][0, MPII.index("left_wrist")]
    assert float(point["x"][0, 0]) == pytest.approx(TEMPLATE[MPII.index("left_wrist"), 0] + 10.0 + 0.5)
    assert float(point["score"][0, 0]) == 1.0
    # b.jpg: its rect is there with its objpos and an empty pose.
    b = raw[0, 1]["annorect"]
    assert b.shape == (1, 1) and b[0, 0]["annopoints"].size == 0 and b[0, 0]["objpos"].size == 1
    files = res["mpii_native_files"]["ppi"]
    assert (files["single_person_rects"], files["single_person_paired"]) == (3, 1)


def test_multi_person_file_per_group_and_per_image(tree, tmp_path):
    res = _evaluate(tree, tmp_path)
    raw = _raw(res["results_files"]["ppi"][native_results.MPII_MULTI_FILE])
    # groups_v12: a.jpg's groups [1], [2] hold single-person people; only [4, 5] is scored; b.jpg has none.
    assert raw.shape == (1, 1) and res["mpii_native_files"]["ppi"]["grouping"] == native_mpii.BY_GROUPS
    rects = raw[0, 0]["annorect"]
    # Its detections by decreasing score: d2 (0.95), d1 (0.9); d3 has no point inside the image and is
    # not written (assignGTmulti.m indexes every rect's annopoints.point).
    assert rects.shape == (1, 2) and [float(rects[0, k]["score"][0, 0]) for k in range(2)] == [0.95, 0.9]
    assert all(_ids(rects[0, k]["annopoints"]) == list(range(16)) for k in range(2))
    assert res["mpii_native_files"]["ppi"]["detections_without_point_inside"] == 1
    # Without the groups file: one entry per evaluated image, and the results say so.
    by_image = _evaluate(tree, tmp_path / "i", groups=False)
    raw = _raw(by_image["results_files"]["ppi"][native_results.MPII_MULTI_FILE])
    assert raw.shape == (1, 2) and raw[0, 1]["annorect"].size == 0
    assert by_image["mpii_native_files"]["ppi"]["grouping"] == native_mpii.BY_IMAGE
    assert "--mpii_groups" in by_image["groups_note"] and "one entry per evaluated image" in \
        tables.format_real_table(by_image)


def test_toolkit_figures_by_hand(tree, tmp_path):
    res = _evaluate(tree, tmp_path)
    row = res["ppi"]
    pck = row["toolkit"]["pckh"]
    # Three single-person people with an objpos (a.jpg 1 and 2, b.jpg 1), 14 toolkit joints each. Person 1
    # hits 13 (the left wrist misses; the upper neck and head top estimated from LCR-13's head lie 0.785 px
    # from the annotation); persons 2 and b.jpg's have no detection and miss all.
    assert (pck["people"], pck["paired"]) == (3, 1)
    assert pck["per_joint"]["left_wrist"] == 0.0 and pck["per_joint"]["right_wrist"] == pytest.approx(1 / 3)
    assert pck["per_joint"]["head_top"] == pytest.approx(1 / 3)
    # genTablePCK.m: the mean of left and right (wrist: (1/3 + 0) / 2), Head = upper neck and head top.
    assert pck["per_part"]["wrist"] == pytest.approx(1 / 6) and pck["per_part"]["head"] == pytest.approx(1 / 3)
    assert pck["ubody"] == pytest.approx(5 / 18) and pck["total"] == pytest.approx(13 / 42)
    assert pck["limbs12"] == pytest.approx(11 / 36)
    # The package's LCR-13 figures: matched people only (12 of 13), or all (12 of 39); its 12 limb joints
    # over all people agree with the toolkit's.
    assert row["pckh_0.5"] == pytest.approx(12 / 13) and row["pckh_0.5_all"] == pytest.approx(12 / 39)
    assert row["pckh_limbs12"] == pytest.approx(11 / 12) and row["pckh_limbs12_all"] == pytest.approx(11 / 36)
    # AP of group [4, 5]: d2 (0.95) matches nobody, d1 (0.9) person 4 on all joints; 2 positives per joint:
    # precision 0, 1/2 at recall 0, 1/2 -> VOCap 1/2 x 1/2 = 1/4 for every joint, part and the mean.
    ap = row["toolkit"]["ap"]
    assert ap["entries"] == 1 and ap["total"] == pytest.approx(0.25) and ap["limbs12"] == pytest.approx(0.25)
    assert ap["per_part"] == {p: pytest.approx(0.25) for p, _ in mpii_toolkit.PARTS}
    assert row["ap"] == pytest.approx(0.25) and row["groups"] == 1 and row["ap_limbs12"] == pytest.approx(0.25)
    # By image, a.jpg's multi-person people are 3, 4 and 5: 3 positives per joint, AP 1/2 x 1/3 = 1/6.
    by_image = _evaluate(tree, tmp_path / "i", groups=False)
    assert by_image["ppi"]["toolkit"]["ap"]["total"] == pytest.approx(1 / 6)
    assert by_image["ppi"]["ap"] == pytest.approx(1 / 6) and by_image["ppi"]["groups"] == 1
    text = tables.format_real_table(res)
    for label in ("MPII toolkit figures", "limbs12", "upper_neck: estimated", "head_top: estimated"):
        assert label in text, label
    assert "upper_neck" in res["mpii_written_joints"] and "toolkit" in res["toolkit_note"]


def test_test_split_submission(tree, tmp_path):
    res = _evaluate(tree, tmp_path, split="test")
    assert res["scored"] is False and res["test_submission_complete"] and "pckh_0.5" not in res["ppi"]
    single = _raw(res["results_files"]["ppi"][native_results.MPII_SINGLE_FILE])
    assert single.shape == (1, 2)   # c.jpg, d.jpg: every test image
    c = single[0, 0]["annorect"]
    # e1 (score 1) pairs with person 1, whose objpos lies 9 px from its body centre (radius 0.5 x 200 x 0.6
    # = 60 px); e2 (0.2) also lies within it but comes second and finds it taken; person 2 has nothing
    # within 60 px; rects 3, 4 are the multi-person group.
    assert c.shape == (1, 4) and _ids(c[0, 0]["annopoints"]) == list(range(16))
    assert float(c[0, 0]["score"][0, 0]) == 1.0 and [c[0, k]["annopoints"].size for k in (1, 2, 3)] == [0, 0, 0]
    assert single[0, 1]["annorect"][0, 0]["annopoints"].size == 0
    # The multi-person file: c.jpg's group [3, 4] holds e3; e2 is near no group (left out, counted).
    multi = _raw(res["results_files"]["ppi"][native_results.MPII_MULTI_FILE])
    assert multi.shape == (1, 1) and [float(r["score"][0, 0]) for r in multi[0, 0]["annorect"][0]] == [0.8]
    files = res["mpii_native_files"]["ppi"]
    assert files["detections_outside_groups"] == 1 and files["single_person_paired"] == 1
    assert any("objpos" in k for k in files["single_person_pairing"])
    text = tables.format_real_table(res)
    assert "test set has no joint annotations" in text and "2 single-person entries" in text
    with pytest.raises(ValueError, match="--split=test: the test images have no joints"):
        real_benchmarks.evaluate_dataset("mpii", tree[0], predictions=str(tmp_path / "mpii.json"), split="test")


def test_pairing_and_group_geometry():
    # Greedy by score: the stronger detection takes the person it is nearest to; a person 0.5 heights
    # (60 px at scale 0.6) away is still in reach, 61 px is not.
    link = mpii_groups.pair_by_objpos([[0, 0], [0, 4], [200, 0]], [0.2, 1.0, 0.5], [[0, 5], [260, 0]], [0.6, 0.6])
    assert link.tolist() == [-1, 0, 1]
    assert mpii_groups.pair_by_objpos([[0, 0]], [1.0], [[0, 61]], [0.6]).tolist() == [-1]
    # Groups: inside a box is distance 0; the nearest box wins; 60 px (0.5 x 200 x 0.6) away still counts,
    # 100 px does not.
    boxes = np.array([[0, 0, 100, 0], [300, 0, 300, 0]], float)
    found = mpii_groups.assign_to_groups([[50, 10], [250, 0], [160, 0], [200, 0]], boxes, [0.6, 0.6])
    assert found.tolist() == [0, 1, 0, -1]
    # getMultiPersonGroups.m: a group with any single-person person is not a multi-person group.
    groups = [np.array([1]), np.array([2, 3]), np.array([4, 5])]
    assert [g.tolist() for g in mpii_groups.multi_person_groups(groups, [1, 3])] == [[4, 5]]
    box, scale = mpii_groups.group_region([np.array([1.0, 2.0]), None, np.array([5.0, 0.0])], [1.0, 0.5, 2.0])
    assert box.tolist() == [1.0, 0.0, 5.0, 2.0] and scale == 1.5


def test_groups_file_is_checked(tmp_path):
    bad = str(tmp_path / "bad.mat")
    scipy.io.savemat(bad, {"other": 1})
    with pytest.raises(ValueError, match="has no variable 'groups'"):
        mpii_groups.read_groups(bad)
    scipy.io.savemat(bad, {"groups": _groups([[[1]], [[0, 2]]])})
    with pytest.raises(ValueError, match=r"groups\{2\}\{1\} is not a vector of 1-based annorect indices"):
        mpii_groups.read_groups(bad)
    good = str(tmp_path / "good.mat")
    scipy.io.savemat(good, {"groups": _groups([[[1], [2, 3]], []])})
    assert [[g.tolist() for g in image] for image in mpii_groups.read_groups(good)] == [[[1], [2, 3]], []]


def _truth(native, single, head=10.0):
    """A GroundTruth of people given in MPII's 16 joints (NaN: not annotated), all with head size ``head``."""
    g = len(native)
    rects = [{"annorect": j + 1, "person_id": str(j + 1), "single_person": single[j], "objpos": np.zeros(2),
              "scale": 1.0, "head_box": None} for j in range(g)]
    return GroundTruth("x.jpg", b"", np.zeros((g, 13, 2)), np.ones((g, 13), bool), np.zeros((g, 13, 3)),
                       np.full(g, head), 0, 0, single_person=np.array(single), person_ids=[str(j + 1) for j in
                       range(g)], native_pose2d=np.asarray(native, float), annorects=rects)


def test_part_averaging_differs_from_pooling_by_hand():
    """genTablePCK.m averages the left and right joints' PCKh; pooling weights them by their annotations.
    Two people: the right wrist annotated on both and hit twice, the left wrist annotated on one and missed:
    toolkit wrist (1 + 0) / 2 = 1/2, pooled 2/3."""
    base = np.where(np.isfinite(TEMPLATE), TEMPLATE, np.nan)
    first, second = base.copy(), base.copy() + 50.0
    second[MPII.index("left_wrist")] = np.nan
    gt = _truth([first, second], [True, True])
    pred1, pred2 = first.copy(), second.copy()
    pred1[MPII.index("left_wrist"), 0] += 6.0                      # 6 px > 0.5 x 10 px: a miss
    sub = native_mpii.Submission([[pred1, pred2]], [[1.0, 1.0]], [], native_mpii.BY_IMAGE, {})
    pck = mpii_toolkit.single_person_pckh(sub, [gt])
    assert pck["per_joint"]["right_wrist"] == 1.0 and pck["per_joint"]["left_wrist"] == 0.0
    assert pck["per_part"]["wrist"] == 0.5 and pck["ubody"] == pytest.approx(10 / 11)
    assert pck["total"] == pytest.approx(26 / 27)
    # A joint not written counts as missed (evaluatePCKh.m turns it into inf); one not annotated is left out.
    pred1[MPII.index("head_top")] = np.nan
    pck = mpii_toolkit.single_person_pckh(sub, [gt])
    assert pck["per_joint"]["head_top"] == 0.5 and pck["per_part"]["head"] == 0.75


def test_assignment_keeps_each_predictions_best_truth():
    """assignGTmulti.m: a prediction keeps only its best ground truth; each truth takes the prediction with
    the highest share of its joints within 0.5 head sizes. p0 has all of truth A's joints, p1 half of
    them and none of B's: A takes p0, p1 keeps only A, where it loses, and B (share 0) takes nobody."""
    a = np.zeros((14, 2))
    b = a + 100.0
    p0 = a.copy()
    p1 = a.copy()
    p1[7:] += 50.0
    labels, has_pred, has_truth = mpii_toolkit.assign_entry(np.stack([p0, p1]), np.stack([a, b]),
                                                            np.array([10.0, 10.0]))
    assert labels[0].all() and not labels[1].any() and has_pred.all() and has_truth.all()
    # A prediction without some joints: those are neither true nor false positives (has_pred False).
    p0[3] = np.nan
    labels, has_pred, _ = mpii_toolkit.assign_entry(p0[None], a[None], np.array([10.0]))
    assert not has_pred[0, 3] and labels[0].sum() == 13


def test_head_estimate_against_lsp_extended(shared_data):
    """The upper-neck fraction is the least-squares fit on LSP extended's annotations (native_mpii's
    docstring), and beats the mid-shoulder point by the margin the docstring states."""
    path = os.path.join(shared_data, "annotations", "lspet", "joints.mat")
    if not os.path.isfile(path):
        pytest.skip(f"needs LSP extended's joints.mat; not found at {path}")
    joints = scipy.io.loadmat(path)["joints"].transpose(2, 0, 1)           # (N, 14, x / y / visible)
    keep = (joints[:, [8, 9, 12, 13], 2] == 1).all(axis=1)
    p = joints[keep, :, :2]
    s, neck, top = p[:, [8, 9]].mean(axis=1), p[:, 12], p[:, 13]
    length = np.linalg.norm(top - neck, axis=1)
    p, s, neck, top, length = (x[length > 1] for x in (p, s, neck, top, length))
    v = (neck + top) / 2 - s
    assert len(p) == 6367
    fraction = float(np.sum((neck - s) * v) / np.sum(v * v))
    assert fraction == pytest.approx(native_mpii.UPPER_NECK_FRACTION, abs=5e-4)
    lcr = np.zeros((len(p), 13, 2))
    lcr[:, LCR.indices(["left_shoulder", "right_shoulder"])] = p[:, [9, 8]]
    lcr[:, LCR.index("head")] = (neck + top) / 2
    est = native_mpii.mpii_points(lcr)
    half = len(p) // 2
    for name, truth, rate, base in (("upper_neck", neck, 0.936, 0.786), ("head_top", top, 0.936, 0.0)):
        hit = np.linalg.norm(est[:, MPII.index(name)] - truth, axis=1) <= 0.5 * length
        hit_mid = np.linalg.norm(s - truth, axis=1) <= 0.5 * length if name == "upper_neck" else np.zeros(len(p))
        assert hit[half:].mean() == pytest.approx(rate, abs=0.005) and hit_mid[half:].mean() == \
            pytest.approx(base, abs=0.005)



def test_command_line_test_split_and_groups_flag(tree, tmp_path):
    import subprocess
    import sys
    root, groups_file, truth = tree
    preds = tmp_path / "mpii.json"
    _write(str(preds), _predictions(truth), "mpii")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "r" / "test.json"
    base = [sys.executable, "-m", "lcr_tf.evaluate", f"--data={root}", f"--predictions={preds}", f"--output={out}"]
    # --split=test writes the submission by default (nothing else to do with it), by group here.
    proc = subprocess.run(base + ["--dataset=mpii", "--split=test", f"--mpii_groups={groups_file}"], cwd=repo,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r" / "ppi" / native_mpii.SINGLE_FILE).is_file()
    assert "group of the toolkit's groups file" in proc.stdout
    proc = subprocess.run(base + ["--dataset=mupots", f"--mpii_groups={groups_file}"], cwd=repo,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--mpii_groups and --mpii_pairing are options of --dataset=mpii" in proc.stderr


def test_unreadable_image_is_refused_by_the_model_run():
    """With --saved_model an image whose file cannot be read is not sent (it would fail its batch): it gets
    an entry where nobody was found, listed with the reason, like an image over the model's limits."""
    from lcr_tf.contracts import serving
    from lcr_tf.evaluation import detect
    from lcr_tf.serving import image_header

    def missing():
        raise FileNotFoundError("image file /data/images/b.jpg does not exist")

    gt = GroundTruth("b.jpg", b"", np.zeros((0, 13, 2)), np.zeros((0, 13), bool), np.zeros((0, 13, 3)), np.zeros(0),
                     0, 0, load_image=missing, unreadable="image 'b.jpg': cannot read its size")
    out, refused = {}, []
    assert list(detect._checked_batches([gt], 2, image_header.Limits(), out, refused)) == []
    assert refused == [{"image_id": "b.jpg", "reason": "cannot read the image file (FileNotFoundError: image file "
                                                       "/data/images/b.jpg does not exist)"}]
    assert len(out["b.jpg"]["ppi"][serving.SCORE]) == 0


def test_validation_files_paired_as_a_test_submission(tree, tmp_path):
    """``mpii_pairing="objpos"`` picks each single-person person's detection as a test-set submission must,
    by objpos and scale: on a.jpg d0 (score 1) stands 9 px from person 1's objpos and pairs with it; d2,
    d1 and d3 stand 100 px or more from person 2's (radius 0.5 x 200 x 0.6 = 60 px) and pair with nobody.
    The same detections as the joint pairing, so the same toolkit figures; every image is counted as paired
    by objpos."""
    root, groups_file, truth = tree
    preds = tmp_path / "mpii.json"
    _write(str(preds), _predictions(truth), "mpii")
    kwargs = dict(predictions=str(preds), split="train", max_match_distance_px=GATE, mpii_groups=groups_file)
    joints = real_benchmarks.evaluate_dataset("mpii", root, **kwargs)
    objpos = real_benchmarks.evaluate_dataset("mpii", root, mpii_pairing="objpos", **kwargs)
    files = objpos["ppi"]["toolkit"]["files"]
    assert files["single_person_pairing"] == {native_mpii.PAIRING[True]: 2}
    assert (files["single_person_rects"], files["single_person_paired"]) == (3, 1)
    assert joints["ppi"]["toolkit"]["files"]["single_person_pairing"] == {native_mpii.PAIRING[False]: 2}
    assert objpos["ppi"]["toolkit"]["pckh"] == joints["ppi"]["toolkit"]["pckh"]
    assert objpos["ppi"]["pckh_0.5"] == joints["ppi"]["pckh_0.5"]  # the package's own figure: joint pairing
    with pytest.raises(ValueError, match="mpii_pairing must be one of joints, objpos"):
        real_benchmarks.evaluate_dataset("mpii", root, mpii_pairing="nearest", **kwargs)


def test_a_model_with_a_head_top_has_it_written(tree, tmp_path):
    """Detections of a 14-joint (mupots14) model: the MPII files carry its own head top (MATLAB pixels: +0.5)
    instead of the estimate, and the results say so; the upper neck is still estimated from LCR-13's head,
    here the midpoint of the model's neck and head top."""
    from lcr_tf.contracts import serving
    from lcr_tf.evaluation import predictions_file

    root, groups_file, truth = tree
    mu14 = skeleton_lib.MUPOTS14
    images = {}
    for image_id, rows in _predictions(truth).items():
        people = rows["ppi"]
        own2d = np.zeros((len(people), 14, 2))
        for d, (_, lcr, _) in enumerate(people):
            p14, _ = skeleton_lib.convert(np.asarray(lcr, float), LCR, mu14)
            p14[mu14.index("head_top")] = np.asarray(lcr, float)[LCR.index("head")] + [3.0, -12.0]
            own2d[d] = p14
        own = predictions_file.as_people([s for s, _, _ in people], own2d, np.zeros((len(people), 14, 3)), mu14)
        lcr = predictions_file.to_evaluation_skeleton(own, mu14)
        images[image_id] = {"ppi": lcr, "nms": lcr, "candidates": None,
                            predictions_file.NATIVE: {"skeleton": "mupots14", "ppi": own, "nms": own}}
    path = str(tmp_path / "p.json")
    predictions_file.write_predictions(path, images, "mpii")
    res = real_benchmarks.evaluate_dataset("mpii", root, predictions=path, split="train", max_match_distance_px=GATE,
                                           results_dir=str(tmp_path / "native"), mpii_groups=groups_file)
    assert res["mpii_written_joints"]["head_top"] == "as the model predicts it (mupots14)"
    assert res["mpii_written_joints"]["upper_neck"].startswith("estimated")
    raw = _raw(res["results_files"]["ppi"][native_results.MPII_SINGLE_FILE])
    points = raw[0, 0]["annorect"][0, 0]["annopoints"][0, 0]["point"]
    top = [points[0, k] for k in range(points.shape[1]) if int(points[0, k]["id"][0, 0]) == MPII.index("head_top")]
    want = images["a.jpg"][predictions_file.NATIVE]["ppi"][serving.POSE2D][0, mu14.index("head_top")] + 0.5
    assert (float(top[0]["x"][0, 0]), float(top[0]["y"][0, 0])) == pytest.approx(tuple(want))
