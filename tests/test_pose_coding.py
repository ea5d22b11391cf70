"""Tests of lcr_tf.ops.pose_coding: the regression layout, pose encoding / decoding, pose boxes."""

import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.contracts import geometry
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.ops import pose_coding as pc


def _toy_anchors():
    """K = 1 anchors of a 2-joint skeleton: row 0 full-body (class 1), row 1 upper-body (class 2)."""
    anchors2d = np.array([[[0.5, 0.1], [0.5, 0.9]],
                          [[0.4, 0.2], [0.6, 1.5]]], np.float32)
    anchors3d = np.array([[[0.0, -0.5, 0.1], [0.0, 0.5, -0.1]],
                          [[0.0, -0.5, 0.1], [0.0, 0.5, -0.1]]], np.float32)
    return anchors2d, anchors3d


def test_sizes_follow_the_paper_count():
    # 5 x J x (2K + 1): class 0 keeps its block.
    assert pc.block_size(13) == 65
    assert pc.regression_size(2 * 100 + 1, 13) == 5 * 13 * 201
    assert pc.regression_size(3, 2) == 30


def test_encode_equals_hand_computation_for_a_two_joint_skeleton():
    anchors2d, anchors3d = _toy_anchors()
    pose2d = np.array([[[10.0, 20.0], [30.0, 60.0]]], np.float32)
    pose3d = np.array([[[0.1, -0.4, 0.3], [-0.1, 0.6, 0.0]]], np.float32)
    box = np.array([[10.0, 20.0, 50.0, 100.0]], np.float32)  # w 40, h 80
    # p~ = ((10-10)/40, (20-20)/80), ((30-10)/40, (60-20)/80) = (0, 0), (0.5, 0.5)
    # class 2 -> anchor row 1: a~ = (0.4, 0.2), (0.6, 1.5); A = (0, -.5, .1), (0, .5, -.1)
    expected = np.array([[0.0 - 0.4, 0.0 - 0.2, 0.5 - 0.6, 0.5 - 1.5,
                          0.1, 0.1, 0.2, -0.1, 0.1, 0.1]], np.float32)
    got = pc.encode_pose_targets(pose2d, pose3d, box, np.array([2]), anchors2d, anchors3d)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)
    # class 1 -> anchor row 0
    got1 = pc.encode_pose_targets(pose2d, pose3d, box, np.array([1]), anchors2d, anchors3d)
    np.testing.assert_allclose(got1.numpy()[0, :4], [-0.5, -0.1, 0.0, -0.4], atol=1e-6)


def test_background_class_encodes_to_zero():
    anchors2d, anchors3d = _toy_anchors()
    pose2d = np.full((2, 2, 2), 7.0, np.float32)
    pose3d = np.full((2, 2, 3), 0.3, np.float32)
    boxes = np.array([[0, 0, 10, 10], [5, 5, 8, 9]], np.float32)
    got = pc.encode_pose_targets(pose2d, pose3d, boxes, np.array([0, 1]), anchors2d, anchors3d).numpy()
    np.testing.assert_array_equal(got[0], np.zeros(10))
    assert np.any(got[1] != 0)


def test_degenerate_box_gives_finite_targets():
    anchors2d, anchors3d = _toy_anchors()
    got = pc.encode_pose_targets(np.ones((1, 2, 2)), np.zeros((1, 2, 3)), np.array([[3, 3, 3, 3.0]]),
                                 np.array([1]), anchors2d, anchors3d)
    assert np.all(np.isfinite(got.numpy()))


def test_encode_decode_round_trip_13_joints():
    rng = np.random.default_rng(0)
    n, k, j = 50, 4, 13
    anchors2d = rng.uniform(0, 1, (2 * k, j, 2)).astype(np.float32)
    anchors3d = rng.normal(0, 0.3, (2 * k, j, 3)).astype(np.float32)
    pose2d = rng.uniform(0, 500, (n, j, 2)).astype(np.float32)
    pose3d = rng.normal(0, 0.3, (n, j, 3)).astype(np.float32)
    corner = rng.uniform(0, 300, (n, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(20, 200, (n, 2))], -1).astype(np.float32)
    classes = rng.integers(1, 2 * k + 1, n)
    t = pc.encode_pose_targets(pose2d, pose3d, boxes, classes, anchors2d, anchors3d)
    assert t.shape == (n, 5 * j)
    p2, p3 = pc.decode_poses(t[:, None, :], boxes, classes[:, None], anchors2d, anchors3d)
    assert p2.shape == (n, 1, j, 2) and p3.shape == (n, 1, j, 3)
    np.testing.assert_allclose(p2.numpy()[:, 0], pose2d, atol=2e-3)
    np.testing.assert_allclose(p3.numpy()[:, 0], pose3d, atol=1e-6)


def test_decode_several_classes_per_row_by_hand():
    anchors2d, anchors3d = _toy_anchors()
    box = np.array([[100.0, 200.0, 110.0, 220.0]], np.float32)  # w 10, h 20
    deltas = np.zeros((1, 2, 10), np.float32)
    deltas[0, 1, 0] = 0.1      # x0 of the second block
    deltas[0, 1, 4 + 2] = 0.2  # Z0 of the second block
    p2, p3 = pc.decode_poses(deltas, box, np.array([[1, 2]]), anchors2d, anchors3d)
    # class 1 (row 0), zero deltas: anchor placed in the box
    np.testing.assert_allclose(p2.numpy()[0, 0], [[105.0, 202.0], [105.0, 218.0]], atol=1e-4)
    # class 2 (row 1): x0 = 100 + (0.4 + 0.1) * 10
    np.testing.assert_allclose(p2.numpy()[0, 1], [[105.0, 204.0], [106.0, 230.0]], atol=1e-4)
    np.testing.assert_allclose(p3.numpy()[0, 1], [[0.0, -0.5, 0.3], [0.0, 0.5, -0.1]], atol=1e-6)


def test_decode_accepts_a_batch_dimension():
    anchors2d, anchors3d = _toy_anchors()
    rng = np.random.default_rng(1)
    deltas = rng.normal(size=(3, 4, 2, 10)).astype(np.float32)
    boxes = np.tile(np.array([0, 0, 10, 20], np.float32), (3, 4, 1))
    classes = rng.integers(1, 3, (3, 4, 2))
    p2, p3 = pc.decode_poses(deltas, boxes, classes, anchors2d, anchors3d)
    flat2, flat3 = pc.decode_poses(deltas.reshape(12, 2, 10), boxes.reshape(12, 4),
                                   classes.reshape(12, 2), anchors2d, anchors3d)
    np.testing.assert_allclose(p2.numpy().reshape(12, 2, 2, 2), flat2.numpy())
    np.testing.assert_allclose(p3.numpy().reshape(12, 2, 2, 3), flat3.numpy())


def test_pack_unpack_layout():
    d2 = np.arange(6, dtype=np.float32).reshape(1, 3, 2)         # x0 y0 x1 y1 x2 y2
    d3 = 100 + np.arange(9, dtype=np.float32).reshape(1, 3, 3)   # X0 Y0 Z0 ...
    block = pc.pack_block(d2, d3).numpy()
    np.testing.assert_array_equal(block[0], [0, 1, 2, 3, 4, 5, 100, 101, 102, 103, 104, 105, 106, 107, 108])
    u2, u3 = pc.unpack_block(block, 3)
    np.testing.assert_array_equal(u2.numpy(), d2)
    np.testing.assert_array_equal(u3.numpy(), d3)
    with pytest.raises(ValueError, match="last dimension 15, expected 10"):
        pc.unpack_block(block, 2)


def test_select_class_block():
    j, c = 2, 3
    regression = np.arange(2 * 4 * c * 5 * j, dtype=np.float32).reshape(2, 4, c * 5 * j)
    classes = np.array([[0, 1, 2, 1], [2, 2, 0, 1]])
    got = pc.select_class_block(regression, classes, num_joints=j).numpy()
    assert got.shape == (2, 4, 10)
    for b in range(2):
        for r in range(4):
            cls = classes[b, r]
            np.testing.assert_array_equal(got[b, r], regression[b, r, cls * 10:(cls + 1) * 10])
    flat = pc.select_class_block(regression.reshape(8, -1), classes.reshape(8), num_joints=j)
    np.testing.assert_array_equal(flat.numpy(), got.reshape(8, 10))
    with pytest.raises(ValueError, match="not a multiple of 5J = 65"):
        pc.select_class_block(regression, classes)


def _random_poses(rng, n, j):
    pose2d = rng.uniform(0, 400, (n, j, 2))
    mask = rng.uniform(size=(n, j)) < 0.7
    # Edge cases: one joint only, a vertical line (aspect rule), a horizontal line, no joint.
    mask[0] = False
    mask[0, 3] = True
    pose2d[1, :, 0] = 50.0
    mask[1] = True
    pose2d[2, :, 1] = 80.0
    mask[2] = True
    mask[3] = False
    return pose2d, mask


def test_pose_boxes_match_geometry():
    rng = np.random.default_rng(2)
    j = skeleton_lib.get_skeleton("lcr13").num_joints
    pose2d, mask = _random_poses(rng, 40, j)
    got = pc.pose_boxes(pose2d, mask).numpy()
    ref = geometry.pose_box(pose2d, mask)
    has = mask.any(axis=1)
    np.testing.assert_allclose(got[has], ref[has], rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(got[~has], 0.0)
    # The vertical pose's box is 10% as wide as it is tall (before the margin).
    w, h = got[1, 2] - got[1, 0], got[1, 3] - got[1, 1]
    assert w == pytest.approx(geometry.MIN_BOX_ASPECT * h, rel=1e-5)
    assert np.isnan(pc.pose_boxes(pose2d[3:4], mask[3:4], fill=np.nan).numpy()).all()
    # Other margin, no mask (finite joints), a batch dimension.
    got2 = pc.pose_boxes(pose2d.reshape(4, 10, j, 2), margin=0.25).numpy().reshape(40, 4)
    np.testing.assert_allclose(got2, geometry.pose_box(pose2d, margin=0.25), rtol=1e-5, atol=1e-3)


def test_upper_body_boxes_match_geometry():
    rng = np.random.default_rng(3)
    j = skeleton_lib.get_skeleton("lcr13").num_joints
    pose2d, mask = _random_poses(rng, 40, j)
    upper = np.zeros(j, bool)
    upper[skeleton_lib.get_skeleton("lcr13").upper_body] = True
    has = (mask & upper).any(axis=1)
    got = pc.upper_body_boxes(pose2d, mask).numpy()
    np.testing.assert_allclose(got[has], geometry.upper_body_box(pose2d, mask)[has], rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(got[~has], 0.0)
    got_all = pc.upper_body_boxes(pose2d).numpy()
    np.testing.assert_allclose(got_all, geometry.upper_body_box(pose2d), rtol=1e-5, atol=1e-3)
    # Knees and ankles moved far away do not change the upper-body box.
    moved = pose2d.copy()
    moved[:, skeleton_lib.get_skeleton("lcr13").lower_body] += 1000.0
    np.testing.assert_allclose(pc.upper_body_boxes(moved).numpy(), got_all, rtol=1e-6)
    with pytest.raises(ValueError, match="has 2 joints but skeleton 'lcr13' has 13"):
        pc.upper_body_boxes(np.zeros((1, 2, 2)))


def test_everything_runs_under_tf_function():
    anchors2d, anchors3d = _toy_anchors()

    @tf.function(input_signature=[tf.TensorSpec([None, 2, 2]), tf.TensorSpec([None, 2, 3]),
                                  tf.TensorSpec([None, 4]), tf.TensorSpec([None], tf.int32)])
    def round_trip(p2, p3, boxes, classes):
        t = pc.encode_pose_targets(p2, p3, boxes, classes, anchors2d, anchors3d)
        regression = tf.concat([tf.zeros_like(t), t, 2.0 * t], axis=-1)  # C = 3 blocks
        block = pc.select_class_block(regression, tf.ones_like(classes), num_joints=2)
        d2, d3 = pc.decode_poses(block[:, None], boxes, classes[:, None], anchors2d, anchors3d)
        return d2[:, 0], d3[:, 0], pc.pose_boxes(p2)

    p2 = np.array([[[1.0, 2.0], [5.0, 9.0]], [[10.0, 10.0], [20.0, 40.0]]], np.float32)
    p3 = np.array([[[0.1, 0.2, 0.3], [0.0, 0.0, 0.1]], [[0.0, 0.1, 0.0], [0.2, 0.2, 0.2]]], np.float32)
    boxes = np.array([[0, 0, 10, 10], [5, 5, 30, 50]], np.float32)
    d2, d3, b = round_trip(p2, p3, boxes, np.array([1, 2], np.int32))
    np.testing.assert_allclose(d2.numpy(), p2, atol=1e-4)
    np.testing.assert_allclose(d3.numpy(), p3, atol=1e-6)
    np.testing.assert_allclose(b.numpy(), geometry.pose_box(p2), rtol=1e-5)
