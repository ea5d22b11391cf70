import numpy as np
import pytest

from lcr_tf.contracts import geometry as g


def test_rotations_are_proper_and_follow_the_stated_conventions():
    np.testing.assert_allclose(g.rotation_y(np.pi / 2) @ [1, 0, 0], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(g.rotation_x(np.pi / 2) @ [0, 0, 1], [0, -1, 0], atol=1e-12)
    rot = g.random_view_rotations(50, np.random.default_rng(0))
    np.testing.assert_allclose(rot @ np.swapaxes(rot, 1, 2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0)


def test_positive_elevation_brings_the_head_towards_a_camera_above():
    head = np.array([[0.0, -1.0, 0.0]])  # y down: the head is above the centre
    r = g.view_rotations(np.array([0.0]), np.deg2rad([30.0]))[0]
    out = g.rotate(head, r)
    assert out[0, 2] < 0 and out[0, 1] < 0


def test_random_views_are_seeded_and_cover_the_elevation_range():
    a = g.random_view_rotations(1000, np.random.default_rng(7), (10.0, 20.0))
    b = g.random_view_rotations(1000, np.random.default_rng(7), (10.0, 20.0))
    np.testing.assert_array_equal(a, b)
    # The vertical axis after the view tilt has a z component of -sin(elevation).
    up_z = -g.rotate(np.array([[0.0, -1.0, 0.0]]), a)[:, 0, 2]
    elev = np.rad2deg(np.arcsin(up_z))
    assert elev.min() >= 10 - 1e-9 and elev.max() <= 20 + 1e-9
    with pytest.raises(ValueError, match="elevation range"):
        g.random_view_rotations(3, np.random.default_rng(0), (30.0, 10.0))


def test_rotate_broadcasts_per_pose_rotations():
    rng = np.random.default_rng(1)
    poses = rng.normal(size=(4, 13, 3))
    rot = g.random_view_rotations(4, rng)
    out = g.rotate(poses, rot)
    for i in range(4):
        np.testing.assert_allclose(out[i], poses[i] @ rot[i].T)


def test_pose_box_margin_and_minimum_aspect_by_hand():
    pose = np.array([[0.0, 0.0], [10.0, 20.0], [5.0, 5.0]])
    np.testing.assert_allclose(g.tight_box(pose), [0, 0, 10, 20])
    np.testing.assert_allclose(g.pose_box(pose), [-1, -2, 11, 22])
    line = np.array([[0.0, 0.0], [0.0, 20.0]])
    np.testing.assert_allclose(g.pose_box(line), [-1.2, -2, 1.2, 22])
    masked = g.pose_box(pose, mask=np.array([True, False, True]))
    np.testing.assert_allclose(masked, [-0.5, -0.5, 5.5, 5.5])
    assert np.isnan(g.tight_box(pose, np.zeros(3, bool))).all()


def test_normalise_round_trip_and_extent():
    rng = np.random.default_rng(2)
    pose = rng.uniform(50, 300, size=(5, 13, 2))
    box = g.pose_box(pose)
    norm = g.normalise_to_box(pose, box)
    m = g.POSE_BOX_MARGIN
    np.testing.assert_allclose(norm.min(axis=1), m / (1 + 2 * m), atol=1e-12)
    np.testing.assert_allclose(norm.max(axis=1), (1 + m) / (1 + 2 * m), atol=1e-12)
    np.testing.assert_allclose(box[:, None, :2] + norm * (box[:, None, 2:] - box[:, None, :2]), pose)


def test_upper_body_box_ignores_knees_and_ankles():
    pose = np.zeros((13, 2))
    pose[:4] = [[0, 100], [10, 100], [0, 60], [10, 60]]  # legs far below
    pose[4:] = np.array([[0, 40], [10, 40], [-5, 30], [15, 30], [-2, 20], [12, 20], [0, 10], [10, 10],
                         [5, 0]])
    np.testing.assert_allclose(g.upper_body_box(pose), g.pose_box(pose[4:]))
    norm = g.normalise_to_box(pose, g.upper_body_box(pose))
    assert (norm[:4, 1] > 1).all()


def test_axis_rotations_are_the_right_handed_matrices_and_euler_composes_in_listed_order():
    a = np.deg2rad(np.array([[10.0, -35.0], [120.0, 0.0]]))  # any leading shape
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)

    def mat(rows):
        return np.stack([np.stack(r, -1) for r in rows], -2)

    np.testing.assert_allclose(g.rotation_x(a), mat([[o, z, z], [z, c, -s], [z, s, c]]), atol=1e-12)
    np.testing.assert_allclose(g.rotation_y(a), mat([[c, z, s], [z, o, z], [-s, z, c]]), atol=1e-12)
    np.testing.assert_allclose(g.rotation_z(a), mat([[c, -s, z], [s, c, z], [z, z, o]]), atol=1e-12)
    r = g.euler_to_matrix(np.array([30.0, 40.0, 50.0]), (2, 0, 1))
    expected = g.rotation_z(np.deg2rad(30)) @ g.rotation_x(np.deg2rad(40)) @ g.rotation_y(np.deg2rad(50))
    np.testing.assert_allclose(r, expected, atol=1e-12)
    np.testing.assert_array_equal(g.euler_to_matrix(np.zeros((4, 0)), ()), np.broadcast_to(np.eye(3), (4, 3, 3)))
    with pytest.raises(ValueError, match="axis"):
        g.axis_rotation(3, 0.0)
