import itertools

import numpy as np
import pytest

from lcr_tf import evaluation as ev


def _person(x, num_joints=3):
    """A pose whose joints all lie at horizontal position x (pixels), stacked vertically."""
    return np.stack([np.full(num_joints, float(x)), 10.0 * np.arange(num_joints)], axis=-1)


def test_hungarian_beats_greedy_on_a_crafted_case():
    # GT A at x=0, B at x=10. Detection 0 at x=1 (1 from A, 9 from B), detection 1 at x=-2 (2 from A,
    # 12 from B). Greedy takes the closest pair (0, A) first and leaves (1, B): 1 + 12 = 13 px.
    # The optimum is (0, B) + (1, A): 9 + 2 = 11 px.
    pred = np.stack([_person(1), _person(-2)])
    gt = np.stack([_person(0), _person(10)])
    vis = np.ones((2, 3), bool)
    np.testing.assert_allclose(ev.mean_joint_distance(pred, gt, vis), [[1, 9], [2, 12]])
    m = ev.match_detections(pred, gt, vis)
    np.testing.assert_array_equal(m.gt_index, [0, 1])
    np.testing.assert_array_equal(m.pred_index, [1, 0])
    np.testing.assert_allclose(m.distance, [2, 9])
    np.testing.assert_array_equal(m.gt_to_pred, [1, 0])
    np.testing.assert_array_equal(m.pred_to_gt, [1, 0])
    assert m.matched_gt.all()


def test_gate_forbids_far_pairs():
    pred = np.stack([_person(1), _person(-2)])
    gt = np.stack([_person(0), _person(10)])
    vis = np.ones((2, 3), bool)
    # With a 5 px gate only (0, A) and (1, A) are allowed: one match, the cheaper one.
    m = ev.match_detections(pred, gt, vis, max_distance=5.0)
    np.testing.assert_array_equal(m.gt_to_pred, [0, -1])
    np.testing.assert_array_equal(m.pred_to_gt, [0, -1])
    np.testing.assert_array_equal(m.matched_gt, [True, False])
    # A gate of 9 allows (0, B): both people are matched, as without a gate.
    m = ev.match_detections(pred, gt, vis, max_distance=9.0)
    np.testing.assert_array_equal(m.gt_to_pred, [1, 0])
    m = ev.match_detections(pred, gt, vis, max_distance=0.5)
    assert m.pred_index.size == 0 and (m.gt_to_pred == -1).all()


def test_distance_uses_the_annotated_joints_only():
    gt = np.stack([_person(0), _person(50)])
    gt[0, 2] = np.nan  # not annotated, never read
    vis = np.array([[True, True, False], [False, False, False]])
    pred = _person(0)[None].copy()
    pred[0, 2, 0] = 30.0
    pred[0, 1, 0] = 4.0
    np.testing.assert_allclose(ev.mean_joint_distance(pred, gt, vis), [[2.0, np.inf]])
    m = ev.match_detections(pred, gt, vis)
    np.testing.assert_array_equal(m.gt_to_pred, [0, -1])  # nothing to match a person without joints on


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)
    num_p, num_g = (int(v) for v in rng.integers(1, 6, size=2))
    pred = rng.uniform(0, 100, size=(num_p, 4, 2))
    gt = rng.uniform(0, 100, size=(num_g, 4, 2))
    vis = rng.random((num_g, 4)) < 0.8
    vis[:, 0] = True
    cost = ev.mean_joint_distance(pred, gt, vis)
    # Independent cost: an explicit double loop.
    for p, g in itertools.product(range(num_p), range(num_g)):
        assert cost[p, g] == pytest.approx(np.linalg.norm(pred[p] - gt[g], axis=1)[vis[g]].mean())
    if num_p >= num_g:
        best = min(sum(cost[perm[g], g] for g in range(num_g))
                   for perm in itertools.permutations(range(num_p), num_g))
    else:
        best = min(sum(cost[p, perm[p]] for p in range(num_p))
                   for perm in itertools.permutations(range(num_g), num_p))
    m = ev.match_detections(pred, gt, vis)
    assert m.pred_index.size == min(num_p, num_g)
    assert m.distance.sum() == pytest.approx(best)


def test_bad_inputs():
    gt = _person(0)[None]
    vis = np.ones((1, 3), bool)
    with pytest.raises(ValueError, match="pred has 2 joints, gt has 3"):
        ev.match_detections(_person(0, 2)[None], gt, vis)
    with pytest.raises(ValueError, match=r"gt_visible must have shape \(1, 3\)"):
        ev.match_detections(gt, gt, vis[:, :2])
    bad = gt.copy()
    bad[0, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"pred has 1 non-finite .* \(0, 1\)"):
        ev.match_detections(bad, gt, vis)
    with pytest.raises(ValueError, match="gt has 1 non-finite"):
        ev.match_detections(gt, bad, vis)
    with pytest.raises(ValueError, match="max_distance must be >= 0"):
        ev.match_detections(gt, gt, vis, max_distance=-1.0)
    with pytest.raises(ValueError, match=r"pred must have shape \(N, J, 2\)"):
        ev.match_detections(gt[0], gt, vis)
