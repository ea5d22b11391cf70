import numpy as np
import pytest

from lcr_tf import evaluation as ev


def test_mpii_head_size_is_0_6_of_the_head_box_diagonal():
    boxes = np.array([[10.0, 20.0, 40.0, 60.0], [5.0, 5.0, 0.0, -7.0]])  # diagonals 50 and 13
    np.testing.assert_allclose(ev.mpii_head_size(boxes), [30.0, 7.8])
    with pytest.raises(ValueError, match=r"head_boxes must have shape \(N, 4\)"):
        ev.mpii_head_size(boxes[:, :3])


def _pckh_case():
    gt = np.zeros((2, 3, 2))
    pred = np.zeros((2, 3, 2))
    pred[0, 0] = [3.0, 4.0]   # 5 px, head size 10, threshold 5: correct (<=)
    pred[0, 1] = [6.0, 0.0]   # 6 px: wrong
    pred[0, 2] = np.nan       # not annotated: ignored
    pred[1, 0] = [0.0, 9.9]   # head size 20, threshold 10: correct
    pred[1, 1] = [10.5, 0.0]  # wrong
    visible = np.array([[True, True, False], [True, True, True]])
    return pred, gt, visible, np.array([10.0, 20.0])


def test_pckh_by_hand():
    pred, gt, visible, head = _pckh_case()
    assert ev.pckh(pred, gt, visible, head) == pytest.approx(3 / 5)
    np.testing.assert_allclose(ev.pckh_per_joint(pred, gt, visible, head), [1.0, 0.0, 1.0])
    # At alpha 1 (thresholds 10 and 20 px) every annotated joint is correct; at 0.1 only the exact one.
    np.testing.assert_allclose(ev.pckh_curve(pred, gt, visible, head, [0.1, 1.0]), [1 / 5, 1.0])
    assert ev.pckh(pred, gt, visible, head, alpha=1.0) == 1.0
    d = ev.normalised_distances(pred, gt, visible, head)
    np.testing.assert_allclose(d[0, :2], [0.5, 0.6])
    assert np.isnan(d[0, 2])


def test_pckh_bad_inputs():
    pred, gt, visible, head = _pckh_case()
    with pytest.raises(ValueError, match="shapes differ"):
        ev.pckh(pred[:1], gt, visible, head)
    with pytest.raises(ValueError, match=r"head_size must be a scalar or have shape \(2,\)"):
        ev.pckh(pred, gt, visible, head[:1])
    with pytest.raises(ValueError, match="head_size must be positive; person 1"):
        ev.pckh(pred, gt, visible, [10.0, 0.0])
    with pytest.raises(ValueError, match=r"pred has 1 non-finite .* \(0, 2\)"):
        ev.pckh(pred, gt, np.ones((2, 3), bool), head)
    with pytest.raises(ValueError, match=r"visible must have shape \(2, 3\)"):
        ev.pckh(pred, gt, visible[:, :2], head)


def test_voc_average_precision_all_point_interpolation():
    # Ranked labels T F T with 4 positives: precision 1, 1/2, 2/3 at recall 1/4, 1/4, 1/2.
    ap = ev.voc_average_precision([0.25, 0.25, 0.5], [1.0, 0.5, 2 / 3])
    assert ap == pytest.approx(0.25 * 1.0 + 0.25 * 2 / 3)


def _groups(score_p1=0.8):
    """Two groups, two joints, head size 10 everywhere (threshold 5 px at PCKh@0.5)."""
    a = np.array([[0.0, 0.0], [0.0, 20.0]])
    b, c = a + [100.0, 0.0], a + [200.0, 0.0]
    p0 = a.copy()                             # all of A: PCKh 1
    p1 = a + np.array([[3.0, 0.0], [6.0, 0.0]])  # half of A: PCKh 0.5, loses A to p0 whatever its score
    p2 = b + np.array([[0.0, 0.0], [8.0, 0.0]])  # half of B
    pred_poses = [np.stack([p0, p1]), p2[None]]
    pred_scores = [np.array([0.9, score_p1]), np.array([0.7])]
    gt_poses = [a[None], np.stack([b, c])]
    gt_visible = [np.ones((1, 2), bool), np.array([[True, True], [True, False]])]
    head_sizes = [np.array([10.0]), np.array([10.0, 10.0])]
    return pred_poses, pred_scores, gt_poses, gt_visible, head_sizes


def test_mpii_multi_person_ap_by_hand():
    res = ev.mpii_multi_person_ap(*_groups())
    # Joint 0: positives A, B, C (3). Ranked: p0 TP, p1 FP, p2 TP -> precision 1, 1/2, 2/3 at recall
    # 1/3, 1/3, 2/3; interpolated AP = 1/3 * 1 + 1/3 * 2/3 = 5/9.
    # Joint 1: positives A, B (C's is not annotated). p0 TP, p1 FP, p2 FP (8 px) -> AP = 1/2 * 1.
    np.testing.assert_allclose(res.per_joint, [5 / 9, 1 / 2])
    assert res.mean == pytest.approx((5 / 9 + 1 / 2) / 2)
    np.testing.assert_array_equal(res.num_positives, [3, 2])
    np.testing.assert_array_equal(res.num_predictions, [3, 3])


def test_mpii_ap_leaves_out_joints_not_reported():
    # With p1 ranked first (as in the next test) joint 0 ranks FP, TP, TP and joint 1 FP, TP, FP. Marking
    # p1's joint 0 and p2's joint 1 as not reported removes those false positives: joint 0 ranks TP, TP
    # (recall 1/3, 2/3, precision 1) -> AP 2/3; joint 1 ranks FP, TP -> precision 1/2 at recall 1/2 -> 1/4.
    pred_poses, _, gt_poses, gt_visible, head_sizes = _groups()
    scores = [np.array([0.9, 0.95]), np.array([0.7])]
    present = [np.array([[True, True], [False, True]]), np.array([[True, False]])]
    res = ev.mpii_multi_person_ap(pred_poses, scores, gt_poses, gt_visible, head_sizes, pred_present=present)
    np.testing.assert_allclose(res.per_joint, [2 / 3, 1 / 4])
    np.testing.assert_array_equal(res.num_predictions, [2, 2])
    with pytest.raises(ValueError, match="pred_present"):
        ev.mpii_multi_person_ap(pred_poses, scores, gt_poses, gt_visible, head_sizes, pred_present=present[:1])


def test_mpii_ap_matches_by_pckh_and_ranks_by_score():
    # p1 now outranks p0 but still loses A to it (matching is by PCKh): joint 0 ranks FP, TP, TP ->
    # precision 0, 1/2, 2/3 at recall 0, 1/3, 2/3 -> AP = 2/3 * 2/3. Joint 1: FP, TP, FP -> 1/2 * 1/2.
    res = ev.mpii_multi_person_ap(*_groups(score_p1=0.95))
    np.testing.assert_allclose(res.per_joint, [4 / 9, 1 / 4])
    pred_poses, _, gt_poses, gt_visible, head_sizes = _groups()
    pred_to_gt, correct = ev.assign_group(pred_poses[0], gt_poses[0], gt_visible[0], head_sizes[0])
    np.testing.assert_array_equal(pred_to_gt, [0, -1])
    np.testing.assert_array_equal(correct, [[True, True], [False, False]])


def test_mpii_ap_joint_scores_and_empty_groups():
    pred_poses, pred_scores, gt_poses, gt_visible, head_sizes = _groups()
    # Per-joint scores: give p1's joint 1 the top score -> joint 1 ranks FP, TP, FP -> AP 1/4.
    pred_scores = [np.array([[0.9, 0.9], [0.8, 0.95]]), np.array([[0.7, 0.7]])]
    # A group with people but no prediction only adds positives; one with predictions only adds FPs.
    pred_poses += [np.zeros((0, 2, 2)), np.full((1, 2, 2), 500.0)]
    pred_scores += [np.zeros((0,)), np.array([0.1])]
    gt_poses += [np.zeros((1, 2, 2)), np.zeros((0, 2, 2))]
    gt_visible += [np.ones((1, 2), bool), np.zeros((0, 2), bool)]
    head_sizes += [np.array([10.0]), np.zeros((0,))]
    res = ev.mpii_multi_person_ap(pred_poses, pred_scores, gt_poses, gt_visible, head_sizes)
    # Joint 0: 4 positives, ranked TP FP TP FP -> 1/4 * 1 + 1/4 * 2/3. Joint 1: 3 positives,
    # ranked FP(p1) TP(p0) FP FP -> 1/3 * 1/2.
    np.testing.assert_allclose(res.per_joint, [1 / 4 + 1 / 6, 1 / 6])


def test_mpii_ap_bad_inputs_name_the_group():
    pred_poses, pred_scores, gt_poses, gt_visible, head_sizes = _groups()
    with pytest.raises(ValueError, match="same number of groups"):
        ev.mpii_multi_person_ap(pred_poses, pred_scores[:1], gt_poses, gt_visible, head_sizes)
    bad_scores = [pred_scores[0], np.array([0.7, 0.1])]
    with pytest.raises(ValueError, match=r"group 1: pred_scores must have shape \(1,\)"):
        ev.mpii_multi_person_ap(pred_poses, bad_scores, gt_poses, gt_visible, head_sizes)
    bad_pred = [pred_poses[0].copy(), pred_poses[1]]
    bad_pred[0][1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="group 0: pred has 1 non-finite"):
        ev.mpii_multi_person_ap(bad_pred, pred_scores, gt_poses, gt_visible, head_sizes)
    with pytest.raises(ValueError, match="group 1: expected 2 joints"):
        ev.mpii_multi_person_ap(pred_poses, pred_scores, [gt_poses[0], np.zeros((2, 3, 2))], gt_visible,
                                head_sizes)


def test_error_parts_of_a_shifted_and_scaled_pose():
    rng = np.random.default_rng(4)
    gt = rng.uniform(50, 150, size=(3, 6, 2))
    visible = np.ones((3, 6), bool)
    visible[1, 4:] = False   # unannotated joints are left out of both poses, whatever they hold
    visible[2, 1:] = False   # a single annotated joint: no shape to speak of
    centre = np.array([gt[n][visible[n]].mean(0) for n in range(3)])
    pred = centre[:, None] + 1.2 * (gt - centre[:, None]) + np.array([3.0, 4.0])  # 1.2x, then 5 px away
    pred[1, 4:] = 1e6
    head = np.array([10.0, 20.0, 10.0])
    parts = ev.error_parts(pred, gt, visible, head)
    np.testing.assert_allclose(parts.translation[:2], [0.5, 0.25])
    np.testing.assert_allclose(parts.extent_ratio[:2], [1.2, 1.2])
    spread = [np.linalg.norm(gt[n][visible[n]] - centre[n], axis=-1).mean() for n in range(2)]
    np.testing.assert_allclose(parts.shape[:2], 0.2 * np.array(spread) / head[:2])
    assert np.isnan([parts.translation[2], parts.shape[2], parts.extent_ratio[2]]).all()
    with pytest.raises(ValueError, match="head_size"):
        ev.error_parts(pred, gt, visible, np.array([10.0, 0.0, 1.0]))
