"""The official PPI mode equals the release's LCRNet_PPI_improved, in NumPy and in TensorFlow.

The reference is :func:`ref_lcrnet_ppi.lcrnet_ppi_improved_np`, re-written from the release's
lcr_net_ppi_improved.py (line numbers below are that file's). Inputs are float32 values held in float64, so
that the reference and the NumPy PPI compute in float64 on exactly what the TensorFlow PPI (float32) sees.
Bounds: same people in the same order, scores within 1e-5 relative, poses within 1e-4 px and 1e-6 m (the
TensorFlow PPI's float32 round-off; coordinates stay under 1024 px, where a float32 step is 6e-5 px).
"""

import numpy as np
import pytest
import tensorflow as tf
from ref_lcrnet_ppi import lcrnet_ppi_improved_np  # tests/ is on sys.path under pytest

from lcr_tf.postprocess import PPIParams, integrate_candidates, ppi, ppi_tf
from lcr_tf.postprocess.params import IOU_FUNCS, RELEASE_DEFAULTS

C = 20  # 2K anchor classes, as the released models' K = 10 (x2)
RESOLUTION = (960, 1000)


def _f32(a):
    return np.asarray(a, np.float32).astype(np.float64)


def _scene(seed, j=13, people=5, rois_per_person=12, clutter=6, flat_scores=False, spread=1.0):
    """Release-layout outputs of a plausible image: RoIs in clusters around a few people (and a few
    clutter RoIs), every class's poses a mix of the person's pose and the class's anchor, softmax scores.

    Returns scores (N, C+1), boxes (N, 4) px, pose2d (N, C, J, 2) px, pose3d (N, C, J, 3) m.
    """
    rng = np.random.default_rng(seed)
    anchors3d = rng.normal(0, 0.25, (C, j, 3))
    centres = rng.uniform(150, 850, (people, 2)) * spread
    scale = rng.uniform(80, 200, people)
    base3d = rng.normal(0, 0.25, (people, j, 3))
    owner = np.concatenate([np.repeat(np.arange(people), rois_per_person), -np.ones(clutter, int)])
    n = owner.size
    mine = np.maximum(owner, 0)
    centre = np.where(owner[:, None] >= 0, centres[mine], rng.uniform(100, 900, (n, 2)))
    size = np.where(owner >= 0, scale[mine], rng.uniform(60, 200, n))
    roi_centre = centre + rng.normal(0, 0.15, (n, 2)) * size[:, None]
    half = size[:, None] * rng.uniform(0.8, 1.2, (n, 2))
    boxes = np.concatenate([roi_centre - half, roi_centre + half], 1)
    person3d = np.where(owner[:, None, None] >= 0, base3d[mine], rng.normal(0, 0.25, (n, j, 3)))
    mix = rng.uniform(0.2, 0.8, (n, C, 1, 1))
    pose3d = mix * person3d[:, None] + (1 - mix) * anchors3d[None] + rng.normal(0, 0.03, (n, C, j, 3))
    pose2d = roi_centre[:, None, None] + size[:, None, None, None] * pose3d[..., :2] + rng.normal(0, 4, (n, C, j, 2))
    if flat_scores:  # every class of every RoI over 0.1 / C: the crowded case
        logits = rng.normal(0, 0.3, (n, C + 1)) - np.eye(1, C + 1)
    else:
        logits = rng.normal(0, 1.5, (n, C + 1))
        logits[:, 0] += np.where(owner >= 0, -1.0, 3.0)
    scores = np.exp(logits)
    scores /= scores.sum(1, keepdims=True)
    return _f32(scores), _f32(boxes), _f32(pose2d), _f32(pose3d)


def _assert_same(reference, scores, pose2d, pose3d):
    """``scores`` (D,), ``pose2d`` (D, J, 2), ``pose3d`` (D, J, 3) are the reference's people, in order."""
    assert len(scores) == len(reference)
    if not reference:
        return
    np.testing.assert_allclose(scores, [r["score"] for r in reference], rtol=1e-5, atol=0)
    np.testing.assert_allclose(pose2d, np.stack([r["pose2d"] for r in reference]), rtol=0, atol=1e-4)
    np.testing.assert_allclose(pose3d, np.stack([r["pose3d"] for r in reference]), rtol=0, atol=1e-6)


def _assert_numpy(reference, got):
    _assert_same(reference, np.array([d["score"] for d in got]),
                 np.array([d["pose2d"] for d in got]), np.array([d["pose3d"] for d in got]))


def _assert_tf(reference, out):
    n = int(out["num_detections"])
    assert n == len(reference)
    _assert_same(reference, out["scores"].numpy()[:n], out["pose2d"].numpy()[:n], out["pose3d"].numpy()[:n])
    assert not np.any(out["scores"].numpy()[n:])


def _tf_ppi(inputs, params):
    """The TensorFlow PPI of the release layout in a graph (as served): eager while-loops are slow."""
    def run(scores, boxes, pose2d, pose3d):
        return ppi_tf.ppi_tf(scores, boxes, pose2d, pose3d, params=params, mode="official")

    return tf.function(run, autograph=False)(*(tf.constant(a, tf.float32) for a in inputs))


def _release(inputs, k, ppi_params):
    return lcrnet_ppi_improved_np(*inputs, RESOLUTION, K=k, **ppi_params)


CASES = ([(13, f) for f in IOU_FUNCS] + [(14, f) for f in ("torsoheadLR", "head", "shoulderheadLR", "mje")]
         + [(17, "bbox"), (17, "mje")])


@pytest.mark.parametrize("num_joints, iou_func", CASES)
def test_every_iou_func_equals_the_release(num_joints, iou_func):
    inputs = _scene(num_joints * 7 + IOU_FUNCS.index(iou_func), j=num_joints)
    ppi_params = {"iou_func": iou_func, "th_iou": 0.2}
    reference = _release(inputs, C, ppi_params)  # K as demo.py passes it (lines 135, 153)
    assert len(reference) >= 4
    params = PPIParams.from_release(ppi_params, C, num_joints)
    _assert_numpy(reference, ppi(*inputs, mode="official", params=params))
    _assert_tf(reference, _tf_ppi(inputs, params))


@pytest.mark.parametrize("num_joints, iou_func", [(13, "bbox"), (13, "torsoLR"), (14, "mje"), (17, "mje")])
def test_lower_body_weighting_with_an_explicit_k(num_joints, iou_func):
    # K = 10 down-weights the 0-based class indices 11..19 on joints 0-3 (line 186: "> K", so index 10
    # weighs fully), for J = 13 or 14 only (line 177); J = 17 takes the plain mean (lines 191-194).
    inputs = _scene(3, j=num_joints)
    reference = _release(inputs, 10, {"iou_func": iou_func})
    params = PPIParams.from_release({"iou_func": iou_func}, C, num_joints, k=10)
    _assert_numpy(reference, ppi(*inputs, mode="official", params=params))
    _assert_tf(reference, _tf_ppi(inputs, params))
    plain = _release(inputs, None, {"iou_func": iou_func})
    moved = [not np.allclose(a["pose3d"], b["pose3d"]) for a, b in zip(reference, plain)]
    assert any(moved) == (num_joints in (13, 14))


def test_demo_k_never_weights():
    # demo.py's K = anchor_poses.shape[0] = C: no class index exceeds it, so K = C, the default K = C + 1
    # (line 82) and our default (from_release without k) all give the same people.
    inputs = _scene(4)
    reference = _release(inputs, C, {})
    for k in (None, C + 1):
        _assert_numpy(reference, [dict(score=r["score"], pose2d=r["pose2d"], pose3d=r["pose3d"])
                                  for r in _release(inputs, k, {})])
    _assert_numpy(reference, ppi(*inputs, mode="official", params=PPIParams.from_release({}, C, 13)))


def test_bbox_torsohead_is_bbox_and_the_resolution_changes_nothing():
    # Lines 90-98 build the poses' boxes, clipped to the image, but line 141 passes the RoI boxes.
    inputs = _scene(5)
    reference = _release(inputs, C, {"iou_func": "bbox"})
    for func, resolution in (("bbox_torsohead", RESOLUTION), ("bbox_torsohead", (100, 50)), ("bbox", (1, 1))):
        _assert_numpy(reference, lcrnet_ppi_improved_np(*inputs, resolution, K=C, iou_func=func))
        params = PPIParams.from_release({"iou_func": func}, C, 13)
        _assert_numpy(reference, ppi(*inputs, mode="official", params=params, image_size=resolution))


def test_crowded_image_every_candidate():
    # 150 RoIs x 20 classes nearly all over 0.1 / C: > 2000 candidates, none dropped (the release takes
    # them all); TensorFlow in a graph with the serving-style caps num_rois * C.
    inputs = _scene(6, people=10, rois_per_person=14, clutter=10, flat_scores=True)
    num_rois = inputs[0].shape[0]
    assert int(np.sum(inputs[0][:, 1:] >= 0.1 / C)) > 2000
    for iou_func in ("bbox_torsohead", "shoulderhead"):  # the InTheWild and DEMO models' settings
        reference = _release(inputs, C, {"iou_func": iou_func})
        params = PPIParams.from_release({"iou_func": iou_func}, C, 13)
        assert params.max_candidates is None and params.max_detections is None
        _assert_numpy(reference, ppi(*inputs, mode="official", params=params))
        capped = PPIParams.from_release({"iou_func": iou_func}, C, 13, num_rois=num_rois)
        people = num_rois if iou_func == "bbox_torsohead" else num_rois * C  # one group per RoI at most
        assert (capped.max_candidates, capped.max_detections) == (num_rois * C, people)
        _assert_tf(reference, _tf_ppi(inputs, capped))
    # The default cap of 1000 candidates would change the people: why from_release lifts it.
    truncated = ppi(*inputs, mode="official", params=PPIParams.from_release({}, C, 13, num_rois=50))
    assert [d["score"] for d in truncated] != pytest.approx([r["score"] for r in _release(inputs, C, {})])


def test_ties_follow_the_release():
    # Dyadic scores (exact sums in float32 and float64) with many equal values, and duplicated RoIs: the
    # seeds are the first best in RoI-major order (lines 49, 139, 159), the best mode the first of equal
    # ones (line 208), people of equal score keep their group order (line 215, stable).
    scores, boxes, pose2d, pose3d = _scene(8, people=4, rois_per_person=6, clutter=4)
    rng = np.random.default_rng(8)
    scores = rng.integers(0, 5, scores.shape) / 64.0
    twins = rng.choice(scores.shape[0], 8, replace=False)  # copies of 8 RoIs, mirrored about x = 500
    scores = np.concatenate([scores, scores[twins]])
    boxes = np.concatenate([boxes, np.stack([1000 - boxes[twins, 2], boxes[twins, 1], 1000 - boxes[twins, 0],
                                             boxes[twins, 3]], 1)])
    pose2d = np.concatenate([pose2d, np.stack([1000 - pose2d[twins, ..., 0], pose2d[twins, ..., 1]], -1)])
    pose3d = np.concatenate([pose3d, pose3d[twins]])
    inputs = (scores, boxes, _f32(pose2d), pose3d)
    for iou_func in ("bbox", "head", "mje"):
        reference = _release(inputs, 10, {"iou_func": iou_func, "min_mode_score": 0.0})
        assert len({float(r["score"]) for r in reference}) < len(reference)  # tied people exist
        params = PPIParams.from_release({"iou_func": iou_func, "min_mode_score": 0.0}, C, 13, k=10)
        _assert_numpy(reference, ppi(*inputs, mode="official", params=params))
        _assert_tf(reference, _tf_ppi(inputs, params))


def _two_mirrored(num_classes=2):
    """One RoI (300 x 300 px) with a pose and a second, same box, with the torso joints' left and right
    swapped (hips and shoulders 300 px apart); the same 3D pose."""
    rng = np.random.default_rng(9)
    p2 = rng.uniform(300, 600, (13, 2))
    p2[[4, 10], 0], p2[[5, 11], 0] = 300.0, 600.0
    mirrored = p2.copy()
    mirrored[[4, 5, 10, 11]] = p2[[5, 4, 11, 10]]
    pose2d = np.stack([np.repeat(p2[None], num_classes, 0), np.repeat(mirrored[None], num_classes, 0)])
    pose3d = np.repeat(rng.normal(0, 0.2, (1, 1, 13, 3)), 2, 0).repeat(num_classes, 1)
    boxes = np.array([[300.0, 300.0, 599.0, 599.0]] * 2)
    scores = np.array([[0.2, 0.7] + [0.1] * (num_classes - 1), [0.3, 0.5] + [0.2] * (num_classes - 1)])
    return scores, boxes, pose2d, pose3d


@pytest.mark.parametrize("iou_func, people", [("torso", 2), ("torsoLR", 1), ("bbox", 1)])
def test_lr_variants_match_mirrored_joints(iou_func, people):
    # Mean torso distance 300 px over 2 * max(299 + 1, 299 + 1) = 600 px: 0.5, not < 0.2 (lines 129-131);
    # with left and right swapped (line 126-127) it is 0.
    inputs = _two_mirrored()
    reference = _release(inputs, None, {"iou_func": iou_func})
    assert len(reference) == people
    params = PPIParams.from_release({"iou_func": iou_func}, 2, 13)
    _assert_numpy(reference, ppi(*inputs, mode="official", params=params))
    _assert_tf(reference, _tf_ppi(inputs, params))


def test_box_iou_counts_one_more_pixel():
    # Boxes 0-9 and 8-17 (lines 23-43): +1 sides give IoU 20 / 180 = 0.11 > 0.1, one person; plain widths
    # would give 9 / 153 = 0.06, two people.
    scores = np.array([[0.2, 0.8], [0.3, 0.7]])
    boxes = np.array([[0.0, 0.0, 9.0, 9.0], [8.0, 0.0, 17.0, 9.0]])
    pose2d = np.random.default_rng(11).uniform(0, 17, (2, 1, 13, 2))
    inputs = (scores, boxes, pose2d, np.zeros((2, 1, 13, 3)))
    reference = _release(inputs, None, {"th_iou": 0.1})
    assert len(reference) == 1 and reference[0]["score"] == pytest.approx(1.5)
    params = PPIParams.from_release({"th_iou": 0.1}, 1, 13)
    _assert_numpy(reference, ppi(*inputs, mode="official", params=params))
    _assert_tf(reference, _tf_ppi(inputs, params))


def test_class_index_k_weighs_fully():
    # One mode of three candidates of 0-based classes 1, 2, 3 with K = 2 (line 186): only class index 3
    # weighs 1/10 on joints 0-3; the score is the plain sum (line 180, before the 0.1).
    pose2d = np.zeros((1, 4, 13, 2))
    pose2d[0, :, :, 0] = np.array([0.0, 10.0, 20.0, 30.0])[:, None]
    pose3d = np.zeros((1, 4, 13, 3))
    scores = np.array([[0.0, 0.0, 0.5, 0.25, 0.25]])
    boxes = np.array([[0.0, 0.0, 99.0, 99.0]])
    inputs = (scores, boxes, pose2d, pose3d)
    reference = _release(inputs, 2, {"score_th": 0.1})
    assert len(reference) == 1 and reference[0]["score"] == 1.0
    lower = (0.5 * 10 + 0.25 * 20 + 0.025 * 30) / 0.775
    upper = (0.5 * 10 + 0.25 * 20 + 0.25 * 30) / 1.0
    np.testing.assert_allclose(reference[0]["pose2d"][:, 0], [lower] * 4 + [upper] * 9, rtol=1e-6)
    params = PPIParams.from_release({"score_th": 0.1}, 4, 13, k=2)
    _assert_numpy(reference, ppi(*inputs, mode="official", params=params))
    _assert_tf(reference, _tf_ppi(inputs, params))


def test_threshold_compares_in_the_scores_precision():
    # float32 scores are compared with 0.1 / C in float32 (line 49), where float32(0.005) passes; in
    # float64 it is below 0.005.
    scores = np.zeros((1, C + 1), np.float32)
    scores[0, 1] = np.float32(0.1 / C)
    assert float(scores[0, 1]) < 0.1 / C
    boxes = np.array([[0.0, 0.0, 50.0, 50.0]], np.float32)
    pose2d, pose3d = np.zeros((1, C, 13, 2), np.float32), np.zeros((1, C, 13, 3), np.float32)
    params = PPIParams.from_release({}, C, 13)
    for dtype, people in ((np.float32, 1), (np.float64, 0)):
        inputs = (scores.astype(dtype), boxes, pose2d, pose3d)
        assert len(lcrnet_ppi_improved_np(*inputs, RESOLUTION)) == people
        assert len(ppi(*inputs, mode="official", params=params)) == people
    assert int(ppi_tf.ppi_tf(scores, boxes, pose2d, pose3d, params=params, mode="official")["num_detections"]) == 1


# ---------------------------------------------------------------- from_release and its errors


def test_from_release_mapping():
    params = PPIParams.from_release({"score_th": np.float32(0.01), "th_pose3D": 0.25, "th_iou": 0.3,
                                     "iou_func": "shoulderhead", "min_mode_score": 0.1, "th_persondetect": 0.5},
                                    C, 13)
    assert (params.score_threshold, params.pose3d_threshold_m, params.iou_threshold, params.iou_func,
            params.min_mode_score, params.min_person_score) == (pytest.approx(0.01), 0.25, 0.3, "shoulderhead",
                                                                 0.1, 0.5)
    assert (params.num_full_body, params.rescore, params.max_candidates, params.max_detections) == (C, False,
                                                                                                    None, None)
    defaults = PPIParams.from_release({}, C, 17)
    assert defaults.score_threshold == 0.1 / C and defaults.iou_func == RELEASE_DEFAULTS["iou_func"] == "bbox"
    assert (defaults.pose3d_threshold_m, defaults.iou_threshold, defaults.min_mode_score,
            defaults.min_person_score) == (0.3, 0.2, 0.05, 0.002)
    capped = PPIParams.from_release({"score_th": None}, C, 13, k=10, num_rois=300)
    assert (capped.num_full_body, capped.max_candidates, capped.max_detections) == (10, 6000, 300)
    assert capped.score_threshold == 0.1 / C
    for ppi_params in ({"iou_func": "mje"}, {"th_iou": 0.9995}):
        assert PPIParams.from_release(ppi_params, C, 13, num_rois=300).max_detections == 6000


def test_from_release_errors():
    with pytest.raises(ValueError, match=r"unknown keys.*\['K', 'th_nms'\]"):
        PPIParams.from_release({"th_iou": 0.2, "K": 10, "th_nms": 0.3}, C, 13)
    with pytest.raises(ValueError, match="iou_func must be one of"):
        PPIParams.from_release({"iou_func": "iou"}, C, 13)
    with pytest.raises(ValueError, match="iou_func 'torsoLR' is defined for J in"):
        PPIParams.from_release({"iou_func": "torsoLR"}, C, 17)
    with pytest.raises(ValueError, match=r"ppi_params\['th_iou'\] must be a number"):
        PPIParams.from_release({"th_iou": "0.2"}, C, 13)
    with pytest.raises(ValueError, match="num_anchor_classes"):
        PPIParams.from_release({}, 0, 13)
    with pytest.raises(ValueError, match="num_rois"):
        PPIParams.from_release({}, C, 13, num_rois=0)
    with pytest.raises(ValueError, match="iou_func must be one of"):
        PPIParams(iou_func="box")


def test_run_time_refusals():
    # J = 17 with a joint list of the 13/14-joint bodies (line 88), and iou_func outside the official mode.
    inputs = _scene(10, j=17, people=2, rois_per_person=2, clutter=0)
    params = PPIParams(iou_func="torso")
    with pytest.raises(ValueError, match="defined for J in"):
        ppi(*inputs, mode="official", params=params)
    with pytest.raises(ValueError, match="defined for J in"):
        ppi_tf.ppi_tf(*inputs, params=params, mode="official")
    with pytest.raises(ValueError, match="setting of the official mode"):
        integrate_candidates(np.ones(1), np.zeros((1, 4)), np.zeros((1, 13, 2)), np.zeros((1, 13, 3)),
                             np.ones(1, int), mode="paper", params=PPIParams(iou_func="mje"))
    with pytest.raises(ValueError, match="setting of the official mode"):
        ppi_tf.ppi_tf(*_scene(10, people=1, rois_per_person=1, clutter=0), params=PPIParams(iou_func="mje"),
                      mode="nms")
