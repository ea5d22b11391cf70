"""MuPoTS-3D's official matching and bone-length rescaling (lcr_tf.evaluation.mupots_protocol), on cases
computed by hand."""

import numpy as np
import pytest

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.evaluation import matching, mupots_protocol


def _standing(x_centre: float, y_top: float = 50.0) -> np.ndarray:
    """(17, 2) a person's 2D joints: every joint at x_centre (+-10 px for left / right), spread down the image."""
    names = skeleton_lib.MUPOTS17.joint_names
    pose = np.zeros((17, 2))
    for j, name in enumerate(names):
        side = -10.0 if name.startswith("right") else 10.0 if name.startswith("left") else 0.0
        pose[j] = [x_centre + side, y_top + 20.0 * j]
    return pose


def test_the_parents_form_the_mupots_tree():
    names = skeleton_lib.MUPOTS17.joint_names
    parent = {names[j]: names[p] for j, p in enumerate(mupots_protocol.PARENTS)}
    assert parent["left_wrist"] == "left_elbow" and parent["right_knee"] == "right_hip"
    assert parent["neck"] == "spine" and parent["spine"] == "pelvis" and parent["pelvis"] == "pelvis"
    assert parent["head_top"] == "neck" and parent["head"] == "neck" and parent["left_hip"] == "pelvis"
    # Parents come first in the traversal, which covers every joint but the pelvis once.
    order = list(mupots_protocol.TRAVERSAL_ORDER)
    assert sorted(order) == [j for j in range(17) if j != 14]
    assert all(mupots_protocol.PARENTS[j] == 14 or order.index(mupots_protocol.PARENTS[j]) < order.index(j)
               for j in order)


def test_a_missed_person_does_not_take_a_false_positive():
    """Person A is detected; person B is missed, and a false positive stands 90 px from B (outside the 40 px
    gate). The official rule leaves B missed; an ungated optimal assignment gives B the false positive."""
    gt = np.stack([_standing(100.0), _standing(400.0)])
    pred = np.stack([_standing(103.0), _standing(310.0)])
    official = mupots_protocol.official_matching(pred, gt)
    assert official.gt_to_pred.tolist() == [0, -1] and official.pred_to_gt.tolist() == [0, -1]
    ungated = matching.match_detections(pred, gt, np.ones((2, 17), bool))
    assert ungated.gt_to_pred.tolist() == [0, 1]


def test_two_people_close_together_are_paired_in_annotation_order():
    """A (x = 100) and B (x = 130); detection 0 at 125 (B's), detection 1 at 105 (A's). Both are within
    40 px of A on all 13 matching joints, so A, annotated first, takes the first: detection 0; B then
    takes detection 1 (25 px away). The optimal assignment would pair A-1 and B-0."""
    gt = np.stack([_standing(100.0), _standing(130.0)])
    pred = np.stack([_standing(125.0), _standing(105.0)])
    official = mupots_protocol.official_matching(pred, gt)
    assert official.gt_to_pred.tolist() == [0, 1]
    np.testing.assert_allclose(official.distance, [25.0, 25.0])
    assert matching.match_detections(pred, gt, np.ones((2, 17), bool)).gt_to_pred.tolist() == [1, 0]


def test_the_detection_with_most_joints_in_the_gate_wins():
    """Detection 0 has 3 matching joints within 40 px, detection 1 has 5: the person takes detection 1.
    Joints outside the matching set (head top, pelvis, spine, head) and joints written at (0, 0) do not
    count, and the gate is on each axis (a joint 30 px off on x and 30 px on y, 42 px away, counts)."""
    gt = _standing(200.0)[None]
    far = _standing(600.0)
    first, second = far.copy(), far.copy()
    first[[1, 2, 3]] = gt[0, [1, 2, 3]] + [30.0, 30.0]
    first[[0, 14, 15, 16]] = gt[0, [0, 14, 15, 16]]  # not matching joints
    second[[4, 5, 6, 7, 8]] = gt[0, [4, 5, 6, 7, 8]]
    second[[9, 10]] = 0.0  # invisible: written at (0, 0)
    result = mupots_protocol.official_matching(np.stack([first, second]), gt)
    assert result.gt_to_pred.tolist() == [1]
    # Without detection 1, detection 0's 3 joints suffice (one joint in the gate is enough).
    assert mupots_protocol.official_matching(first[None], gt).gt_to_pred.tolist() == [0]
    # A joint 40 px off on one axis is outside (the rule is "< 40").
    edge = far.copy()
    edge[1] = gt[0, 1] + [40.0, 0.0]
    assert mupots_protocol.official_matching(edge[None], gt).gt_to_pred.tolist() == [-1]


def test_equal_votes_go_to_the_first_detection_and_a_detection_is_used_once():
    gt = np.stack([_standing(100.0), _standing(100.0)])  # two people at one place
    pred = np.stack([_standing(110.0), _standing(90.0)])
    result = mupots_protocol.official_matching(pred, gt)
    assert result.gt_to_pred.tolist() == [0, 1]
    assert mupots_protocol.official_matching(pred[:1], gt).gt_to_pred.tolist() == [0, -1]
    assert mupots_protocol.official_matching(np.zeros((0, 17, 2)), gt).gt_to_pred.tolist() == [-1, -1]


def _pose3d(seed=0):
    rng = np.random.default_rng(seed)
    pose = rng.normal(0.0, 300.0, (17, 3))
    pose[14] = [10.0, 20.0, 3000.0]  # the pelvis
    return pose


def test_a_scaled_prediction_maps_back_to_the_ground_truth():
    """A prediction 1.15 times the ground truth about its pelvis has the ground truth's bone directions: the
    rescaling gives the ground truth back (the official script's 61.0 against 54.5 unscaled in the issue's
    measurement)."""
    gt = _pose3d()
    pred = gt[14] + 1.15 * (gt - gt[14])
    np.testing.assert_allclose(mupots_protocol.map_to_gt_bone_lengths(pred, gt), gt, atol=1e-9)


def test_one_bone_by_hand():
    """Ground-truth spine bone (pelvis -> spine) of length 100; predicted spine bone (30, -40, 0), length 50,
    is stretched to (60, -80, 0); the neck, the spine's child, moves with it, then gets its own length."""
    gt = np.zeros((17, 3))
    pred = np.zeros((17, 3))
    names = skeleton_lib.MUPOTS17.joint_names
    pelvis, spine, neck = names.index("pelvis"), names.index("spine"), names.index("neck")
    for j in range(17):  # every other bone: ground truth 10 along z, prediction 20 along z
        gt[j] = [0.0, 0.0, 10.0 * j]
        pred[j] = [0.0, 0.0, 20.0 * j]
    gt[pelvis], gt[spine], gt[neck] = [0.0, 0.0, 0.0], [0.0, -100.0, 0.0], [0.0, -150.0, 0.0]
    pred[pelvis], pred[spine], pred[neck] = [5.0, 5.0, 5.0], [35.0, -35.0, 5.0], [35.0, -35.0, 105.0]
    mapped = mupots_protocol.map_to_gt_bone_lengths(pred, gt)
    np.testing.assert_allclose(mapped[pelvis], [5.0, 5.0, 5.0])
    np.testing.assert_allclose(mapped[spine], [65.0, -75.0, 5.0])
    # Neck: predicted bone (0, 0, 100) -> length 50 (ground truth's), from the mapped spine.
    np.testing.assert_allclose(mapped[neck], [65.0, -75.0, 55.0])


def test_a_missing_head_top_stays_missing_and_touches_nothing_else():
    gt = _pose3d(1)
    pred = gt + np.random.default_rng(2).normal(0.0, 20.0, (17, 3))
    pred[0] = np.nan  # LCR-13 has no head top
    mapped = mupots_protocol.map_to_gt_bone_lengths(pred, gt)
    assert np.isnan(mapped[0]).all() and np.isfinite(mapped[1:]).all()


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        mupots_protocol.map_to_gt_bone_lengths(np.zeros((13, 3)), np.zeros((13, 3)))
