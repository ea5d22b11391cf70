"""Tests of lcr_tf.ops.targets: RPN labels, RoI classes / pose targets and sampling, on hand-built cases."""

import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.contracts import batch_keys, geometry
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.ops import targets as tg
from lcr_tf.training import losses

# ---------------------------------------------------------------------------------------------- RPN


_RPN_ANCHORS = np.array([
    [0, 0, 10, 10],        # IoU 1 with gt 0 -> positive
    [0, 0, 10, 20],        # IoU 0.5 with gt 0 -> ignored
    [50, 50, 60, 60],      # IoU 0 -> negative (a padding gt sits exactly on it)
    [30, 30, 41, 41],      # IoU 100/221 with gt 1, its best anchor -> positive
    [-5, 0, 5, 10],        # IoU 1/3 with gt 0 -> ignored; crosses the left border
    [95, 95, 105, 105],    # IoU 0 -> negative; crosses the bottom-right border
], np.float32)
_RPN_GT = np.array([[[0, 0, 10, 10], [30, 30, 40, 50], [50, 50, 60, 60]]], np.float32)
_RPN_GT_MASK = np.array([[True, True, False]])


def test_rpn_labels_and_targets_by_hand():
    labels, box_targets = tg.assign_rpn_targets(_RPN_ANCHORS, _RPN_GT, _RPN_GT_MASK, (100, 100), seed=0)
    np.testing.assert_array_equal(labels.numpy(), [[1, -1, 0, 1, -1, 0]])
    # Anchor 3: centre (35.5, 35.5), side 11; gt 1: centre (35, 40), 10 x 20.
    np.testing.assert_allclose(box_targets.numpy()[0, 3],
                               [-0.5 / 11, 4.5 / 11, np.log(10 / 11), np.log(20 / 11)], rtol=1e-5)
    np.testing.assert_allclose(box_targets.numpy()[0, 0], 0.0, atol=1e-6)  # same box as its gt
    np.testing.assert_array_equal(box_targets.numpy()[0, [1, 2, 4, 5]], 0.0)


def test_rpn_border_anchors_ignored_only_with_a_tolerance():
    labels, _ = tg.assign_rpn_targets(_RPN_ANCHORS, _RPN_GT, _RPN_GT_MASK, (100, 100), seed=0,
                                      border_tolerance=0.0)
    np.testing.assert_array_equal(labels.numpy(), [[1, -1, 0, 1, -1, -1]])
    labels, _ = tg.assign_rpn_targets(_RPN_ANCHORS, _RPN_GT, _RPN_GT_MASK, (100, 100), seed=0,
                                      border_tolerance=5.0)
    np.testing.assert_array_equal(labels.numpy(), [[1, -1, 0, 1, -1, 0]])


def _grid_anchors(n_side, step=10.0, size=10.0):
    y, x = np.meshgrid(np.arange(n_side) * step, np.arange(n_side) * step, indexing="ij")
    return np.stack([x, y, x + size, y + size], -1).reshape(-1, 4).astype(np.float32)


def test_rpn_sampling_budget_and_determinism():
    anchors = _grid_anchors(10)  # 100 anchors of 10 x 10 on a 10-pixel grid
    # 20 ground-truth boxes equal to anchors 0..19: 20 positives, 80 negatives.
    gt = anchors[None, :20]
    mask = np.ones((1, 20), bool)
    labels, _ = tg.assign_rpn_targets(anchors, gt, mask, (100, 100), batch_size_per_image=8,
                                      positive_fraction=0.5, seed=3)
    labels = labels.numpy()
    assert (labels == 1).sum() == 4 and (labels == 0).sum() == 4
    assert set(np.flatnonzero(labels[0] == 1)) <= set(range(20))
    again, _ = tg.assign_rpn_targets(anchors, gt, mask, (100, 100), batch_size_per_image=8, seed=3)
    np.testing.assert_array_equal(again.numpy(), labels)
    other, _ = tg.assign_rpn_targets(anchors, gt, mask, (100, 100), batch_size_per_image=8, seed=4)
    assert not np.array_equal(other.numpy(), labels)
    # Two positives only: the negatives fill the budget.
    labels2, _ = tg.assign_rpn_targets(anchors, gt[:, :2], mask[:, :2], (100, 100),
                                       batch_size_per_image=8, seed=3)
    assert (labels2.numpy() == 1).sum() == 2 and (labels2.numpy() == 0).sum() == 6


def test_rpn_image_without_people_and_batch_independence():
    anchors = _grid_anchors(4)
    gt = np.array([[[0, 0, 10, 10]], [[0, 0, 0, 0]]], np.float32)
    mask = np.array([[True], [False]])
    labels, targets = tg.assign_rpn_targets(anchors, gt, mask, (40, 40), batch_size_per_image=6, seed=1)
    labels = labels.numpy()
    assert labels[0, 0] == 1 and (labels[0] == 0).sum() == 5
    assert (labels[1] == 1).sum() == 0 and (labels[1] == 0).sum() == 6
    assert np.all(np.isfinite(targets.numpy()))


# ---------------------------------------------------------------------------------------------- RoIs

K = 2  # anchors of the toy 2-joint skeleton: classes 1, 2 full-body; 3, 4 upper-body
_ANCHORS2D = np.array([[[0.5, 0.1], [0.5, 0.9]], [[0.4, 0.1], [0.6, 0.9]],
                       [[0.5, 0.1], [0.5, 1.8]], [[0.4, 0.1], [0.6, 1.8]]], np.float32)
_ANCHORS3D = np.array([[[0.0, -0.5, 0.0], [0.0, 0.5, 0.0]], [[0.1, -0.5, 0.0], [-0.1, 0.5, 0.0]]] * 2,
                      np.float32)


def _people():
    """Person 0: full [0,0,100,200] and upper [10,0,90,100], anchor 1. Person 1: upper-body only
    [60,0,140,100], anchor 0. Person 2: padding whose boxes would match proposals if it were read."""
    pose2d = np.array([[[50, 10], [50, 190]], [[100, 10], [100, 90]], [[0, 0], [0, 0]]], np.float32)
    pose3d = np.array([[[0.0, -0.4, 0.1], [0.0, 0.4, -0.1]], [[0.2, -0.5, 0.0], [-0.2, 0.5, 0.0]],
                       np.zeros((2, 3))], np.float32)
    return {
        tg.BOXES_FULL: np.array([[[0, 0, 100, 200], [60, 0, 160, 200], [300, 300, 400, 400]]], np.float32),
        tg.BOXES_UPPER: np.array([[[10, 0, 90, 100], [60, 0, 140, 100], [300, 300, 400, 400]]], np.float32),
        tg.HAS_FULL: np.array([[True, False, True]]),
        batch_keys.PERSON_MASK: np.array([[True, True, False]]),
        tg.ANCHOR_INDEX: np.array([[1, 0, 1]], np.int32),
        batch_keys.POSE2D: pose2d[None],
        batch_keys.POSE3D: pose3d[None],
    }


_PROPOSALS = np.array([[
    [0, 0, 100, 200],      # = full box of person 0 -> class 1 + 1 = 2
    [10, 0, 90, 100],      # = upper box of person 0 (IoU 0.4 with its full box) -> class K + 1 + 1 = 4
    [55, 0, 135, 100],     # IoU 0.88 with person 1's upper box (0.28 with person 0's) -> K + 0 + 1 = 3
    [300, 300, 400, 400],  # overlaps only the padding person -> background
    [0, 0, 100, 140],      # IoU 0.7 with full box, 0.571 with upper box of person 0 -> class 2
    [0, 0, 100, 200],      # padding proposal: never sampled
]], np.float32)
_PROPOSAL_VALID = np.array([[True, True, True, True, True, False]])


def _rows_by_box(out):
    """{tuple(box): (class, row)} of the valid RoIs of image 0; fails on a repeated box."""
    rows = {}
    for r in np.flatnonzero(out["roi_valid"].numpy()[0]):
        key = tuple(out["rois"].numpy()[0, r].tolist())
        assert key not in rows, f"box {key} sampled twice"
        rows[key] = (int(out["classes"].numpy()[0, r]), r)
    return rows


def _assign(proposals=_PROPOSALS, valid=_PROPOSAL_VALID, people=None, **kwargs):
    args = dict(num_rois=8, positive_fraction=1.0, add_gt_boxes=False, seed=0)
    args.update(kwargs)
    return tg.assign_roi_targets(proposals, valid, people or _people(), _ANCHORS2D, _ANCHORS3D, **args)


def test_roi_classes_full_vs_upper_and_nearest_anchor():
    out = _assign()
    rows = _rows_by_box(out)
    assert {box: c for box, (c, _) in rows.items()} == {
        (0, 0, 100, 200): 2, (10, 0, 90, 100): 4, (55, 0, 135, 100): 3, (300, 300, 400, 400): 0,
        (0, 0, 100, 140): 2}
    assert out["roi_valid"].numpy().sum() == 5
    # Positives come first, then background, then padding.
    np.testing.assert_array_equal(out["reg_weights"].numpy()[0], [1, 1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(out["classes"].numpy()[0, 4:], 0)
    np.testing.assert_array_equal(out["rois"].numpy()[0, 5:], 0.0)
    person = out["matched_person"].numpy()[0]
    assert person[rows[(55, 0, 135, 100)][1]] == 1 and person[rows[(0, 0, 100, 140)][1]] == 0
    assert person[rows[(300, 300, 400, 400)][1]] == -1
    np.testing.assert_allclose(out["matched_iou"].numpy()[0, rows[(0, 0, 100, 140)][1]], 0.7, rtol=1e-6)


def test_roi_regression_target_by_hand():
    out = _assign()
    rows = _rows_by_box(out)
    people = _people()
    # Proposal [0, 0, 100, 140], class 2 (anchor row 1), person 0: 2D normalised to the PROPOSAL's box.
    r = rows[(0, 0, 100, 140)][1]
    p_norm = people[batch_keys.POSE2D][0, 0] / np.array([100.0, 140.0])
    d2 = p_norm - _ANCHORS2D[1]
    d3 = people[batch_keys.POSE3D][0, 0] - _ANCHORS3D[1]
    expected = np.concatenate([d2.reshape(-1), d3.reshape(-1)])
    np.testing.assert_allclose(out["reg_targets"].numpy()[0, r], expected, atol=1e-6)
    # Upper-body class 3 of person 1 in proposal [55, 0, 135, 100]: anchor row 2.
    r = rows[(55, 0, 135, 100)][1]
    p_norm = (people[batch_keys.POSE2D][0, 1] - [55.0, 0.0]) / np.array([80.0, 100.0])
    expected = np.concatenate([(p_norm - _ANCHORS2D[2]).reshape(-1),
                               (people[batch_keys.POSE3D][0, 1] - _ANCHORS3D[2]).reshape(-1)])
    np.testing.assert_allclose(out["reg_targets"].numpy()[0, r], expected, atol=1e-6)
    # Background and padding rows have zero targets.
    negatives = out["reg_weights"].numpy()[0] == 0
    np.testing.assert_array_equal(out["reg_targets"].numpy()[0, negatives], 0.0)


def test_roi_takes_the_person_of_highest_iou():
    people = {
        tg.BOXES_FULL: np.zeros((1, 2, 4), np.float32),
        tg.BOXES_UPPER: np.array([[[20, 0, 120, 100], [0, 0, 100, 100]]], np.float32),
        tg.HAS_FULL: np.array([[False, False]]),
        batch_keys.PERSON_MASK: np.array([[True, True]]),
        tg.ANCHOR_INDEX: np.array([[0, 1]], np.int32),
        batch_keys.POSE2D: np.zeros((1, 2, 2, 2), np.float32),
        batch_keys.POSE3D: np.zeros((1, 2, 2, 3), np.float32),
    }
    # IoU 0.905 with person 0 (upper box [20, 0, 120, 100]) and 0.739 with person 1.
    proposal = np.array([[[15, 0, 115, 100]]], np.float32)
    out = _assign(proposal, np.array([[True]]), people)
    assert out["matched_person"].numpy()[0, 0] == 0
    assert out["classes"].numpy()[0, 0] == K + 0 + 1
    np.testing.assert_allclose(out["matched_iou"].numpy()[0, 0], 9500 / 10500, rtol=1e-6)
    # The same with the people swapped: the choice follows the IoU, not the order.
    swapped = {key: value[:, ::-1] for key, value in people.items()}
    out = _assign(proposal, np.array([[True]]), swapped)
    assert out["matched_person"].numpy()[0, 0] == 1
    assert out["classes"].numpy()[0, 0] == K + 0 + 1


def test_gt_boxes_join_the_candidates():
    nothing = np.zeros_like(_PROPOSAL_VALID)
    out = _assign(valid=nothing, add_gt_boxes=True)
    rows = _rows_by_box(out)
    # Person 0's full and upper boxes and person 1's upper box; not person 1's (absent) full box nor the
    # padding person's boxes.
    assert {box: c for box, (c, _) in rows.items()} == {
        (0, 0, 100, 200): 2, (10, 0, 90, 100): 4, (60, 0, 140, 100): 3}
    empty = _assign(valid=nothing, add_gt_boxes=False)
    assert not empty["roi_valid"].numpy().any()
    np.testing.assert_array_equal(empty["classes"].numpy(), 0)


def test_background_iou_band():
    proposals = np.array([[[0, 0, 100, 40], [500, 500, 600, 600]]], np.float32)  # IoU 0.2 and 0
    valid = np.ones((1, 2), bool)
    out = _assign(proposals, valid, bg_iou_lo=0.1)
    assert out["roi_valid"].numpy().sum() == 1
    np.testing.assert_array_equal(out["rois"].numpy()[0, 0], [0, 0, 100, 40])
    out = _assign(proposals, valid)
    assert out["roi_valid"].numpy().sum() == 2
    np.testing.assert_array_equal(out["classes"].numpy(), 0)


def _many_proposals(rng, n_pos, n_neg):
    jitter = rng.uniform(-5, 5, (n_pos, 4))
    pos = np.array([0, 0, 100, 200]) + jitter                    # IoU > 0.8 with person 0's full box
    corner = rng.uniform(300, 500, (n_neg, 2))
    neg = np.concatenate([corner, corner + 50], -1)             # far from everyone
    return np.concatenate([pos, neg])[None].astype(np.float32)


def test_sampling_gives_at_most_a_quarter_positives_and_exactly_num_rois():
    rng = np.random.default_rng(0)
    proposals = _many_proposals(rng, 100, 100)
    valid = np.ones(proposals.shape[:2], bool)
    out = _assign(proposals, valid, num_rois=32, positive_fraction=0.25, add_gt_boxes=True, seed=5)
    assert out["rois"].shape == (1, 32, 4) and out["reg_targets"].shape == (1, 32, 10)
    assert out["roi_valid"].numpy().all()
    assert out["reg_weights"].numpy().sum() == 8
    assert (out["classes"].numpy() > 0).sum() == 8
    again = _assign(proposals, valid, num_rois=32, positive_fraction=0.25, add_gt_boxes=True, seed=5)
    for key in out:
        np.testing.assert_array_equal(again[key].numpy(), out[key].numpy())
    other = _assign(proposals, valid, num_rois=32, positive_fraction=0.25, add_gt_boxes=True, seed=6)
    assert not np.array_equal(other["rois"].numpy(), out["rois"].numpy())
    # Few positives: all taken, background fills the rest.
    proposals = _many_proposals(rng, 3, 100)
    out = _assign(proposals, np.ones(proposals.shape[:2], bool), num_rois=32, positive_fraction=0.25,
                  add_gt_boxes=True, seed=5)
    assert out["reg_weights"].numpy().sum() == 3 + 3  # 3 proposals + 3 ground-truth boxes
    assert out["roi_valid"].numpy().sum() == 32


def test_padding_when_too_few_candidates_and_fewer_candidates_than_rois():
    rng = np.random.default_rng(1)
    proposals = _many_proposals(rng, 2, 3)
    out = _assign(proposals, np.ones((1, 5), bool), num_rois=64, positive_fraction=0.25,
                  add_gt_boxes=False, seed=0)
    assert out["rois"].shape == (1, 64, 4)
    assert out["roi_valid"].numpy().sum() == 5 and out["reg_weights"].numpy().sum() == 2
    valid = out["roi_valid"].numpy()[0]
    np.testing.assert_array_equal(out["rois"].numpy()[0, ~valid], 0.0)
    np.testing.assert_array_equal(out["matched_iou"].numpy()[0, ~valid], 0.0)


def test_roi_targets_batched_under_tf_function():
    people = _people()
    batched = {key: np.concatenate([value, value]) for key, value in people.items()}
    batched[batch_keys.PERSON_MASK] = np.array([[True, True, False], [False, False, False]])
    proposals = np.concatenate([_PROPOSALS, _PROPOSALS])
    valid = np.concatenate([_PROPOSAL_VALID, _PROPOSAL_VALID])

    @tf.function(input_signature=[tf.TensorSpec([None, None, 4]), tf.TensorSpec([None, None], tf.bool),
                                  {key: tf.TensorSpec([None, None] + list(value.shape[2:]),
                                                      tf.as_dtype(value.dtype))
                                   for key, value in batched.items()}])
    def assign(proposals, valid, people):
        return tg.assign_roi_targets(proposals, valid, people, _ANCHORS2D, _ANCHORS3D, num_rois=8,
                                     positive_fraction=1.0, add_gt_boxes=False, seed=tf.constant([7, 1]))

    out = assign(proposals, valid, batched)
    assert out["rois"].shape[1:] == (8, 4)
    eager = _assign(seed=tf.constant([7, 1]))
    for key in out:
        np.testing.assert_array_equal(out[key].numpy()[0], eager[key].numpy()[0])
    # Image 1 has no people: its 5 valid proposals are all background.
    assert out["roi_valid"].numpy()[1].sum() == 5
    np.testing.assert_array_equal(out["classes"].numpy()[1], 0)


def test_roi_argument_errors():
    with pytest.raises(ValueError, match="lacks"):
        tg.assign_roi_targets(_PROPOSALS, _PROPOSAL_VALID, {batch_keys.POSE2D: 0}, _ANCHORS2D, _ANCHORS3D)
    with pytest.raises(ValueError, match="fg_iou"):
        _assign(fg_iou=0.0)
    with pytest.raises(ValueError, match="neg_iou"):
        tg.assign_rpn_targets(_RPN_ANCHORS, _RPN_GT, _RPN_GT_MASK, (100, 100), pos_iou=0.3, neg_iou=0.7)


# ------------------------------------------------------------------------------- from a data batch


def _batch():
    skel = skeleton_lib.get_skeleton("lcr13")
    rng = np.random.default_rng(4)
    pose2d = rng.uniform(50, 250, (1, 3, skel.num_joints, 2)).astype(np.float32)
    visible = np.ones((1, 3, skel.num_joints), bool)
    visible[0, 1, skel.lower_body] = False   # person 1: legs not seen -> upper-body box only
    visible[0, 2] = False                    # padding
    return {
        batch_keys.PERSON_MASK: np.array([[True, True, False]]),
        batch_keys.BOXES: geometry.pose_box(pose2d).astype(np.float32),
        batch_keys.POSE2D: pose2d,
        batch_keys.POSE3D: rng.normal(0, 0.3, (1, 3, skel.num_joints, 3)).astype(np.float32),
        batch_keys.VISIBLE: visible,
        batch_keys.ANNOTATED: np.ones_like(visible),
        batch_keys.ANCHOR_CLASS: np.array([[3, 3 + 5, 0]], np.int32),  # K = 5: anchor 2 twice
    }


def test_people_from_batch():
    batch = _batch()
    people = tg.people_from_batch(batch, num_anchors=5)
    np.testing.assert_array_equal(people[tg.ANCHOR_INDEX].numpy(), [[2, 2, 0]])
    np.testing.assert_array_equal(people[tg.HAS_FULL].numpy(), [[True, False, False]])
    np.testing.assert_allclose(people[tg.BOXES_UPPER].numpy(), geometry.upper_body_box(batch[batch_keys.POSE2D]),
                               rtol=1e-5)
    np.testing.assert_array_equal(people[tg.BOXES_FULL].numpy(), batch[batch_keys.BOXES])
    annotated = tg.people_from_batch(batch, num_anchors=5, full_body_mask=batch_keys.ANNOTATED)
    np.testing.assert_array_equal(annotated[tg.HAS_FULL].numpy(), [[True, True, False]])
    boxes, mask = tg.rpn_gt_boxes(people)
    assert boxes.shape == (1, 6, 4)
    np.testing.assert_array_equal(mask.numpy(), [[True, False, False, True, True, False]])


def test_people_from_batch_refuses_unassigned_classes():
    batch = _batch()
    batch[batch_keys.ANCHOR_CLASS] = np.array([[3, -1, -1]], np.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside 1..10"):
        tg.people_from_batch(batch, num_anchors=5)
    batch[batch_keys.ANCHOR_CLASS] = np.array([[3, 11, 0]], np.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside 1..10"):
        tg.people_from_batch(batch, num_anchors=5)


def test_batch_to_losses_end_to_end():
    """Targets from a batch, then a prediction equal to the targets gives zero regression loss."""
    batch = _batch()
    skel = skeleton_lib.get_skeleton("lcr13")
    j, k = skel.num_joints, 5
    rng = np.random.default_rng(5)
    anchors2d = rng.uniform(0, 1, (2 * k, j, 2)).astype(np.float32)
    anchors3d = rng.normal(0, 0.3, (2 * k, j, 3)).astype(np.float32)

    @tf.function
    def run(batch):
        people = tg.people_from_batch(batch, num_anchors=k)
        out = tg.assign_roi_targets(tf.zeros((1, 4, 4)), tf.zeros((1, 4), tf.bool), people, anchors2d,
                                    anchors3d, num_rois=8, positive_fraction=0.5, seed=0)
        c = 2 * k + 1
        one_hot = tf.one_hot(out["classes"], c)
        regression = tf.reshape(one_hot[..., None] * out["reg_targets"][..., None, :], [1, 8, c * 5 * j])
        return out, losses.regression_loss(regression, out["reg_targets"], out["classes"], out["roi_valid"])

    out, loss = run(batch)
    classes = out["classes"].numpy()[0]
    # Person 0: full (3) and upper (3 + 5) boxes; person 1: upper only (8).
    assert sorted(classes[out["roi_valid"].numpy()[0]].tolist()) == [3, 8, 8]
    assert loss.numpy() == 0.0


# ----------------------------------------------------------------------------------- ignore regions


def test_ioa_by_hand():
    from lcr_tf.ops import box_ops
    boxes = np.array([[0, 0, 10, 10], [5, 5, 15, 25], [0, 0, 0, 0]], np.float32)
    regions = np.array([[0, 0, 10, 20], [10, 0, 30, 30]], np.float32)
    # Box 1 (area 200): 5 x 15 = 75 inside region 0, 5 x 20 = 100 inside region 1.
    np.testing.assert_allclose(box_ops.ioa(boxes, regions).numpy(),
                               [[1.0, 0.0], [75 / 200, 0.5], [0.0, 0.0]], rtol=1e-6)


def test_rpn_negatives_inside_a_crowd_box_are_ignored():
    """A crowd box over anchors 2 (wholly inside) and 5 (a quarter inside): anchor 2 stops being a
    negative, anchor 5 stays one; positives are untouched even inside the region; padding regions and a
    threshold above the overlap change nothing."""
    crowd = np.array([[[45, 45, 100, 100], [0, 0, 10, 10]]], np.float32)  # the second row is padding
    mask = np.array([[True, False]])
    labels, _ = tg.assign_rpn_targets(_RPN_ANCHORS, _RPN_GT, _RPN_GT_MASK, (100, 100), seed=0,
                                      ignore_boxes=crowd, ignore_mask=mask, ignore_ioa=0.5)
    np.testing.assert_array_equal(labels.numpy(), [[1, -1, -1, 1, -1, 0]])
    over_positive = np.array([[[0, 0, 12, 12]]], np.float32)
    labels, _ = tg.assign_rpn_targets(_RPN_ANCHORS, _RPN_GT, _RPN_GT_MASK, (100, 100), seed=0,
                                      ignore_boxes=over_positive, ignore_mask=[[True]])
    np.testing.assert_array_equal(labels.numpy(), [[1, -1, 0, 1, -1, 0]])
    labels, _ = tg.assign_rpn_targets(_RPN_ANCHORS, _RPN_GT, _RPN_GT_MASK, (100, 100), seed=0,
                                      ignore_boxes=crowd, ignore_mask=mask, ignore_ioa=1.0)
    np.testing.assert_array_equal(labels.numpy(), [[1, -1, 0, 1, -1, 0]])


def test_rpn_sampling_fills_the_budget_with_negatives_outside_the_crowd():
    anchors = _grid_anchors(10)  # 100 anchors of 10 x 10 on a 100 x 100 image, no person
    crowd = np.array([[[0, 0, 50, 100]]], np.float32)  # covers the left half
    labels, _ = tg.assign_rpn_targets(anchors, np.zeros((1, 1, 4), np.float32), [[False]], (100, 100),
                                      batch_size_per_image=40, seed=3, ignore_boxes=crowd,
                                      ignore_mask=[[True]])
    labels = labels.numpy().reshape(10, 10)  # rows y, columns x
    assert (labels[:, :5] == -1).all()
    assert (labels[:, 5:] == 0).sum() == 40


def test_person_beyond_max_people_is_not_background():
    """Person 1 dropped by max_people reaches the targets as an ignore box (lcr_tf.data.pipeline); a
    proposal on it is not drawn as background, one mostly outside it still is, and person 0's RoIs keep
    their classes."""
    people = _people()
    people[batch_keys.PERSON_MASK] = np.array([[True, False, False]])  # person 1 dropped ...
    dropped = people[tg.BOXES_UPPER][:, 1:2]  # ... its box [60, 0, 140, 100] is an ignore region
    proposals = np.array([[[0, 0, 100, 200], [62, 0, 138, 100], [120, 0, 200, 100]]], np.float32)
    valid = np.ones((1, 3), bool)
    kept = _rows_by_box(_assign(proposals, valid, people))
    assert {box: c for box, (c, _) in kept.items()} == {(0, 0, 100, 200): 2, (62, 0, 138, 100): 0,
                                                       (120, 0, 200, 100): 0}
    out = _assign(proposals, valid, people, ignore_boxes=dropped, ignore_mask=[[True]])
    # [120, 0, 200, 100] has a quarter of its area in the region: still background.
    assert {box: c for box, (c, _) in _rows_by_box(out).items()} == {(0, 0, 100, 200): 2,
                                                                      (120, 0, 200, 100): 0}


def test_ignore_ioa_must_be_a_fraction():
    with pytest.raises(ValueError, match="ignore_ioa"):
        tg.ignored_boxes(np.zeros((1, 1, 4), np.float32), np.zeros((1, 1, 4), np.float32), [[True]], 1.5)
