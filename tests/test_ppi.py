"""Candidate selection / decoding and the NumPy PPI (paper, official, nms modes)."""

import numpy as np
import pytest

from lcr_tf.ops import pose_coding
from lcr_tf.postprocess import PPIParams, decoding, decoding_tf, integrate_candidates, ppi

J = 13


# ---------------------------------------------------------------- decoding


def test_select_candidates_by_hand():
    probs = np.array([[0.5, 0.3, 0.2, 0.0],
                      [0.1, 0.05, 0.25, 0.6]])
    roi, cls, sc, valid = decoding.select_candidates(probs, 0.2, 10)
    np.testing.assert_array_equal(roi, [1, 0, 1, 0])
    np.testing.assert_array_equal(cls, [3, 1, 2, 2])
    np.testing.assert_allclose(sc, [0.6, 0.3, 0.25, 0.2])
    assert valid.all()
    roi, cls, _, _ = decoding.select_candidates(probs, 0.2, 2)
    np.testing.assert_array_equal(cls, [3, 1])
    t_roi, t_cls, t_sc, t_valid = decoding_tf.select_candidates_tf(probs, 0.2, 6)
    np.testing.assert_array_equal(t_valid.numpy(), [1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(t_roi.numpy()[:4], [1, 0, 1, 0])
    np.testing.assert_array_equal(t_cls.numpy()[:4], [3, 1, 2, 2])
    np.testing.assert_allclose(t_sc.numpy(), [0.6, 0.3, 0.25, 0.2, 0, 0], atol=1e-7)
    with pytest.raises(ValueError, match="class_probs"):
        decoding.select_candidates(np.zeros((3,)), 0.1, 5)


def test_decode_by_hand():
    j = 2
    anchors2d = np.array([[[0.5, 0.25], [0.5, 0.75]], [[0.0, 0.0], [1.0, 1.0]]])
    anchors3d = np.array([[[0.0, -0.5, 0.0], [0.0, 0.5, 0.0]], [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]])
    box = np.array([[100.0, 200.0, 140.0, 300.0]])  # 40 x 100 px
    delta = np.array([[0.1, 0.0, -0.25, 0.05, 0.01, 0.02, 0.03, -0.01, -0.02, -0.03]])
    p2, p3 = decoding.decode_candidates(delta, box, np.array([1]), anchors2d, anchors3d)
    # x = 100 + (0.5 + 0.1) * 40 = 124, y = 200 + 0.25 * 100 = 225; x = 100 + 0.25 * 40, y = 200 + 0.8 * 100.
    np.testing.assert_allclose(p2[0], [[124.0, 225.0], [110.0, 280.0]])
    np.testing.assert_allclose(p3[0], [[0.01, -0.48, 0.03], [-0.01, 0.48, -0.03]])
    t2, t3 = pose_coding.decode_poses(delta[:, None], box, np.array([[1]]), anchors2d, anchors3d)
    np.testing.assert_allclose(t2.numpy()[:, 0], p2, atol=1e-4)
    np.testing.assert_allclose(t3.numpy()[:, 0], p3, atol=1e-6)
    assert j == p2.shape[1]


# ---------------------------------------------------------------- helpers


def _person(rng, centre, scale=1.0):
    pose3d = rng.normal(0.0, 0.25, (J, 3))
    pose2d = centre + 200.0 * scale * pose3d[:, :2]
    return pose2d, pose3d


def _proposals(rng, centres, per_person=8, noise2d=2.0, noise3d=0.01):
    p2, p3, boxes, scores = [], [], [], []
    for centre in centres:
        base2, base3 = _person(rng, np.asarray(centre, float))
        for _ in range(per_person):
            q2 = base2 + rng.normal(0, noise2d, base2.shape)
            p2.append(q2)
            p3.append(base3 + rng.normal(0, noise3d, base3.shape))
            lo, hi = q2.min(0) - 10, q2.max(0) + 10
            boxes.append(np.concatenate([lo, hi]))
            scores.append(rng.uniform(0.2, 0.9))
    return np.array(scores), np.array(boxes), np.array(p2), np.array(p3)


# ---------------------------------------------------------------- behaviour


@pytest.mark.parametrize("mode", ["paper", "official"])
def test_merges_near_identical_and_separates_people(mode):
    rng = np.random.default_rng(0)
    scores, boxes, p2, p3 = _proposals(rng, [(150, 200), (600, 220)])
    classes = np.ones(len(scores), int)
    det = integrate_candidates(scores, boxes, p2, p3, classes, image_size=(480, 800), mode=mode,
                               params=PPIParams(rescore=False, pose3d_threshold_m=0.1))
    assert len(det) == 2
    # Each person's score is the sum of its 8 proposals; its pose their score-weighted mean.
    for person in range(2):
        sl = slice(8 * person, 8 * person + 8)
        d = int(np.argmin(np.abs(det.pose2d[:, 0, 0] - p2[sl][:, 0, 0].mean())))
        w = scores[sl] / scores[sl].sum()
        assert det.scores[d] == pytest.approx(scores[sl].sum(), rel=1e-6)
        np.testing.assert_allclose(det.pose2d[d], np.einsum("m,mjk->jk", w, p2[sl]), atol=1e-3)
        np.testing.assert_allclose(det.pose3d[d], np.einsum("m,mjk->jk", w, p3[sl]), atol=1e-6)
    assert det.scores[0] >= det.scores[1]
    nms = integrate_candidates(scores, boxes, p2, p3, classes, mode="nms", params=PPIParams(rescore=False))
    assert len(nms) == 2
    top = np.argmax(scores[:8])
    assert {round(float(s), 6) for s in nms.scores} == {round(scores[:8].max(), 6), round(scores[8:].max(), 6)}
    np.testing.assert_allclose(nms.pose3d[np.argmin(np.abs(nms.scores - scores[top]))], p3[top], atol=1e-6)


def test_modes_split_different_3d_poses():
    # Same image region, two 3D poses 0.5 m apart: one person, whose pose is the heavier mode only.
    rng = np.random.default_rng(1)
    scores, boxes, p2, p3 = _proposals(rng, [(200, 200)], per_person=6)
    p3[:2] += 0.5
    scores[:] = [0.9, 0.8, 0.3, 0.3, 0.3, 0.3]
    det = integrate_candidates(scores, boxes, p2, p3, np.ones(6, int), mode="paper",
                               params=PPIParams(rescore=False, min_mode_score=0.0))
    assert len(det) == 1
    assert det.scores[0] == pytest.approx(1.7)  # 0.9 + 0.8 beats 4 x 0.3 = 1.2
    np.testing.assert_allclose(det.pose3d[0], (0.9 * p3[0] + 0.8 * p3[1]) / 1.7, atol=1e-6)


def test_empty_and_thresholds():
    det = integrate_candidates(np.zeros(0), np.zeros((0, 4)), np.zeros((0, J, 2)), np.zeros((0, J, 3)),
                               np.zeros(0, int))
    assert len(det) == 0 and det.pose3d.shape == (0, J, 3)
    rng = np.random.default_rng(2)
    scores, boxes, p2, p3 = _proposals(rng, [(150, 200)], per_person=2)
    det = integrate_candidates(scores * 0.001, boxes, p2, p3, np.ones(2, int), mode="paper",
                               params=PPIParams(rescore=False))
    assert len(det) == 0  # 2 x < 0.001 is below min_person_score


def test_bad_inputs_are_named():
    z2, z3 = np.zeros((2, J, 2)), np.zeros((2, J, 3))
    with pytest.raises(ValueError, match="pose3d must be"):
        integrate_candidates(np.ones(2), np.zeros((2, 4)), z2, np.zeros((2, J, 2)), np.ones(2, int))
    with pytest.raises(ValueError, match="roi_boxes must be"):
        integrate_candidates(np.ones(2), np.zeros((3, 4)), z2, z3, np.ones(2, int))
    bad = z3.copy()
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="pose3d has non-finite"):
        integrate_candidates(np.ones(2), np.zeros((2, 4)), z2, bad, np.ones(2, int))
    with pytest.raises(ValueError, match="mode"):
        integrate_candidates(np.ones(2), np.zeros((2, 4)), z2, z3, np.ones(2, int), mode="fancy")
    with pytest.raises(ValueError, match="pose2d must be"):
        ppi(np.ones((2, 3)), np.zeros((2, 4)), np.zeros((2, 3, J, 2)), np.zeros((2, 2, J, 3)))
    with pytest.raises(TypeError, match="unknown PPI parameter"):
        ppi(np.ones((2, 3)), np.zeros((2, 4)), np.zeros((2, 2, J, 2)), np.zeros((2, 2, J, 3)), foo=1)
    with pytest.raises(ValueError, match="group_by"):
        PPIParams(group_by="box")
    with pytest.raises(ValueError, match="image_size"):
        integrate_candidates(np.ones(2), np.zeros((2, 4)), z2, z3, np.ones(2, int), image_size=(0, 4))


# ---------------------------------------------------------------- official mode


def _iou_plus_one(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter)


def _official_reference(scores, boxes, pose2d, pose3d, K, th_iou=0.2, th_pose3d=0.3, min_mode=0.05,
                        min_person=0.002):
    """The release's PPI written from its description with plain loops."""
    n, c1 = scores.shape
    c = c1 - 1
    th = 0.1 / c
    cands = []  # (score, roi, class0)
    for r in range(n):
        for k in range(c):
            if scores[r, k + 1] >= th:
                cands.append((scores[r, k + 1], r, k))
    cands.sort(key=lambda t: -t[0])  # stable: equal scores keep (roi, class) order
    remaining = list(range(len(cands)))
    people = []
    while remaining:
        best = remaining[0]
        group = [i for i in remaining if i == best or
                 _iou_plus_one(boxes[cands[i][1]], boxes[cands[best][1]]) > th_iou]
        remaining = [i for i in remaining if i not in group]
        in_mode = set()
        modes = []
        while True:
            free = [i for i in group if i not in in_mode]
            if not free:
                break
            seed = free[0]
            if modes and cands[seed][0] < min_mode:
                break
            seed3d = pose3d[cands[seed][1], cands[seed][2]]
            members = []
            for i in group:
                q = pose3d[cands[i][1], cands[i][2]]
                if np.mean(np.sqrt(np.sum((q - seed3d) ** 2, axis=1))) < th_pose3d:
                    members.append(i)
            in_mode.update(members)
            j = pose2d.shape[2]
            num2 = np.zeros((j, 2))
            num3 = np.zeros((j, 3))
            den = np.zeros(j)
            total = 0.0
            for i in members:
                s, r, k = cands[i]
                total += s
                for joint in range(j):
                    w = s * 0.1 if (joint < 4 and k > K) else s
                    num2[joint] += w * pose2d[r, k, joint]
                    num3[joint] += w * pose3d[r, k, joint]
                    den[joint] += w
            modes.append((total, num2 / den[:, None], num3 / den[:, None]))
        top = max(modes, key=lambda t: t[0])  # first of equal modes
        if top[0] > min_person:
            people.append(top)
    people.sort(key=lambda t: -t[0])
    return people


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_official_matches_reference(seed):
    rng = np.random.default_rng(seed)
    n, k_full = 40, 3
    c = 2 * k_full
    centres = rng.uniform(50, 500, (4, 2))
    roi_centre = centres[rng.integers(0, 4, n)] + rng.normal(0, 15, (n, 2))
    size = rng.uniform(60, 160, (n, 2))
    boxes = np.round(np.concatenate([roi_centre - size / 2, roi_centre + size / 2], 1))
    scores = rng.dirichlet(np.full(c + 1, 0.4), size=n)
    base3d = rng.normal(0, 0.2, (J, 3)) + rng.normal(0, 0.03, (c, J, 3))  # classes mix in modes
    pose3d = base3d[None] + rng.normal(0, 0.08, (n, c, J, 3))
    pose2d = roi_centre[:, None, None] + 100 * pose3d[..., :2] + rng.normal(0, 3, (n, c, J, 2))
    got = ppi(scores, boxes, pose2d, pose3d, mode="official", num_full_body=k_full, max_detections=100)
    want = _official_reference(scores, boxes, pose2d, pose3d, k_full)
    assert len(got) == len(want) > 1
    for g, (s, p2, p3) in zip(got, want):
        assert g["score"] == pytest.approx(s, rel=1e-6)
        np.testing.assert_allclose(g["pose2d"], p2, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(g["pose3d"], p3, rtol=1e-5, atol=1e-6)
    # The lower-body down-weighting is active in this data: K = C + 1 gives other poses.
    plain = ppi(scores, boxes, pose2d, pose3d, mode="official", max_detections=100)
    assert any(not np.allclose(a["pose3d"], b["pose3d"]) for a, b in zip(plain, got))
