import numpy as np
import pytest
from scipy import optimize
from scipy.spatial.transform import Rotation

from lcr_tf import evaluation as ev
from lcr_tf.contracts import skeleton as sk


def _poses(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.3, size=(n, 13, 3))


def test_shift_by_known_vector_gives_its_length_and_zero_after_body_centring():
    gt = _poses(4)
    shift = np.array([0.03, -0.04, 0.12])  # |shift| = 0.13 m
    pred = gt + shift
    np.testing.assert_allclose(ev.mpjpe(pred, gt), np.full(4, 130.0), rtol=1e-12)
    np.testing.assert_allclose(ev.mpjpe(pred, gt, skeleton="lcr13"), np.zeros(4), atol=1e-9)
    # A single joint moved: only that joint counts, and centring moves the body centre if it is one.
    pred = gt.copy()
    pred[:, 12, 0] += 0.26  # the head is not a centre joint
    np.testing.assert_allclose(ev.mpjpe(pred, gt, skeleton="lcr13"), np.full(4, 20.0), rtol=1e-9)
    pred = gt.copy()
    hip = sk.LCR13.index("left_hip")
    pred[:, hip, 0] += 0.4  # the centre moves by 0.1: 12 joints off by 100 mm, the hip by 300 mm
    np.testing.assert_allclose(ev.mpjpe(pred, gt, skeleton="lcr13"), np.full(4, (12 * 100 + 300) / 13),
                               rtol=1e-9)


def test_mpjpe_mask_averages_only_the_given_joints():
    gt = np.zeros((2, 3, 3))
    pred = np.zeros((2, 3, 3))
    pred[0, :, 0] = [0.01, 0.02, 0.3]
    pred[1, :, 1] = [0.05, 0.0, 0.0]
    pred[0, 2] = np.nan  # masked out: ignored
    mask = np.array([[True, True, False], [True, True, True]])
    np.testing.assert_allclose(ev.mpjpe(pred, gt, mask=mask), [15.0, 50.0 / 3])
    errs = ev.joint_errors_mm(pred, gt, mask=mask)
    assert np.isnan(errs[0, 2]) and errs[1, 0] == pytest.approx(50.0)


def test_procrustes_removes_a_known_similarity_transform_exactly():
    gt = _poses(5, seed=1)
    rot = Rotation.from_rotvec(np.random.default_rng(2).normal(size=(5, 3))).as_matrix()
    scale = np.array([0.5, 1.0, 1.7, 3.0, 0.9])[:, None, None]
    trans = np.array([[1.0, -2.0, 5.0]])[:, None, :]
    pred = scale * np.einsum("nij,nkj->nki", rot, gt) + trans
    assert np.all(ev.mpjpe(pred, gt) > 100.0)
    np.testing.assert_allclose(ev.pa_mpjpe(pred, gt), np.zeros(5), atol=1e-8)
    np.testing.assert_allclose(ev.procrustes_align(pred, gt), gt, atol=1e-10)


def test_procrustes_matches_a_numerical_least_squares_fit_and_refuses_reflections():
    rng = np.random.default_rng(3)
    gt = _poses(1, seed=4)[0]
    pred = gt * [1.0, 1.0, -1.0] + rng.normal(scale=0.01, size=gt.shape)  # a noisy mirror image

    def residual(params):
        r = Rotation.from_rotvec(params[:3]).as_matrix()
        return np.sum((np.exp(params[3]) * pred @ r.T + params[4:] - gt) ** 2)

    best = min((optimize.minimize(residual, np.r_[x0, 0.0, 0, 0, 0], method="BFGS", tol=1e-12)
                for x0 in rng.normal(scale=2.0, size=(8, 3))), key=lambda r: r.fun)
    aligned = ev.procrustes_align(pred[None], gt[None])[0]
    assert np.sum((aligned - gt) ** 2) == pytest.approx(best.fun, rel=1e-6)
    # A reflection would fit the mirror image up to the 1 cm noise; a rotation cannot.
    assert ev.pa_mpjpe(pred[None], gt[None])[0] > 50.0


def test_procrustes_with_a_mask_fits_on_the_masked_joints_only():
    gt = _poses(1, seed=5)
    pred = 2.0 * gt + 0.5
    pred[0, 3] = [100.0, 100.0, 100.0]  # an outlier left out of the fit
    mask = np.ones((1, 13), bool)
    mask[0, 3] = False
    assert ev.pa_mpjpe(pred, gt, mask=mask)[0] == pytest.approx(0.0, abs=1e-8)
    assert ev.pa_mpjpe(pred, gt)[0] > 1.0


def _pck_case():
    gt = np.zeros((3, 4, 3))
    pred = np.zeros((3, 4, 3))
    pred[0, :, 2] = [0.102, 0.048, 0.2, 0.0]  # mm: 102, 48, 200, 0
    pred[1, :, 0] = [0.0, 0.16, 0.0, 0.0]     # joints 2 and 3 not annotated
    pred[2] = np.nan                          # nobody matched: a placeholder row
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], bool)
    matched = np.array([True, True, False])
    return pred, gt, mask, matched


def test_3dpck_and_auc_by_hand_over_all_and_matched_people():
    pred, gt, mask, matched = _pck_case()
    # Hits below 150 mm: person 0 -> 102, 48, 0 (3 of 4); person 1 -> 0 (1 of 2); person 2 -> none of 3.
    assert ev.pck3d(pred, gt, mask=mask, matched=matched) == pytest.approx(4 / 9)
    assert ev.pck3d(pred, gt, mask=mask, matched=matched, matched_only=True) == pytest.approx(4 / 6)
    # Thresholds among 0, 5, ..., 150 mm strictly above each error: 102 -> 10 (105..150),
    # 48 -> 21 (50..150), 0 -> 30 (5..150), 200 -> 0, 160 -> 0.
    per_joint = (10 + 21 + 0 + 30) + (30 + 0)
    assert ev.pck3d_auc(pred, gt, mask=mask, matched=matched) == pytest.approx(per_joint / (31 * 9))
    assert ev.pck3d_auc(pred, gt, mask=mask, matched=matched, matched_only=True) == pytest.approx(
        per_joint / (31 * 6))
    scores = ev.mupots_scores(pred, gt, matched, mask)
    assert scores == pytest.approx({"pck3d_all": 4 / 9, "auc_all": per_joint / 279,
                                    "pck3d_matched": 4 / 6, "auc_matched": per_joint / 186})
    np.testing.assert_allclose(ev.pck3d_curve(pred, gt, [0.0, 50.0, 103.0], mask, matched),
                               [0.0, 3 / 9, 4 / 9])


def test_3dpck_can_centre_on_the_body():
    gt = _poses(2, seed=6)
    pred = gt + [1.0, 0.0, 0.0]
    assert ev.pck3d(pred, gt) == 0.0
    assert ev.pck3d(pred, gt, skeleton="lcr13") == 1.0


def test_bad_inputs_give_clear_errors():
    gt = _poses(2)
    with pytest.raises(ValueError, match="shapes differ"):
        ev.mpjpe(gt[:, :12], gt)
    with pytest.raises(ValueError, match=r"pred must have shape \(N, J, 3\)"):
        ev.pa_mpjpe(gt[..., :2], gt)
    bad = gt.copy()
    bad[1, 4, 0] = np.nan
    with pytest.raises(ValueError, match=r"gt .*first at index \(1, 4\)"):
        ev.mpjpe(gt, bad)
    with pytest.raises(ValueError, match="pred"):
        ev.pa_mpjpe(bad, gt)
    with pytest.raises(ValueError, match="body-centre"):
        ev.mpjpe(bad, gt, skeleton="lcr13")
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 13\)"):
        ev.mpjpe(gt, gt, mask=np.ones((2, 12), bool))
    with pytest.raises(ValueError, match="at least 3 joints"):
        ev.pa_mpjpe(gt, gt, mask=np.eye(2, 13, dtype=bool))
    pred, gt4, mask, matched = _pck_case()
    with pytest.raises(ValueError, match="pred"):  # a matched person's prediction must be finite
        ev.pck3d(pred, gt4, mask=mask, matched=np.ones(3, bool))
    with pytest.raises(ValueError, match=r"matched must have shape \(3,\)"):
        ev.pck3d(pred, gt4, mask=mask, matched=matched[:2])
