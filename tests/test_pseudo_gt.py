"""Tests of the masked nearest-neighbour search for pseudo ground-truth 3D poses (lcr_tf.poses.pseudo_gt).

Expected values are computed independently here: the database layout from the documented view draws,
and the nearest entries by a plain per-row loop over the database.
"""

import numpy as np
import pytest

from lcr_tf.contracts import geometry
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.poses import pseudo_gt

J = 13


def _corpus(num_poses, seed):
    """(N, 13, 3) random poses in metres, not body-centred (the database centres them)."""
    rng = np.random.default_rng(seed)
    return (rng.normal(0.0, 0.3, (num_poses, J, 3)) + rng.normal(0.0, 0.5, (num_poses, 1, 3))
            ).astype(np.float32)


def _expected_entries(poses3d, num_views, seed):
    """Independent layout: candidate m is pose m // V under the m-th of N V view draws.

    Returns (2D (M, J, 2) float64 as stored, i.e. rounded to float32; 3D (M, J, 3) float64).
    """
    centred = skeleton_lib.centre_poses(np.asarray(poses3d, np.float64))
    rotations = geometry.random_view_rotations(len(poses3d) * num_views, np.random.default_rng(seed))
    rotations = rotations.astype(np.float32).astype(np.float64)
    oriented = np.stack([centred[m // num_views] @ rotations[m].T for m in range(len(rotations))])
    return oriented[..., :2].astype(np.float32).astype(np.float64), oriented


def _random_masks(rng, num, min_joints=4):
    counts = rng.integers(min_joints, J + 1, num)
    masks = np.zeros((num, J), bool)
    for b in range(num):
        masks[b, rng.choice(J, counts[b], replace=False)] = True
    return masks


def _brute_force(entries2d, query, mask):
    """Per-row loop of eq 9: (index, sqrt(D)) of the nearest entry over the annotated joints."""
    joints = np.flatnonzero(mask)
    q = query[joints] - query[joints].mean(axis=0)
    q = q / np.linalg.norm(q)
    best, best_index = np.inf, -1
    for m in range(len(entries2d)):
        c = entries2d[m, joints] - entries2d[m, joints].mean(axis=0)
        norm = np.linalg.norm(c)
        if norm == 0.0:
            continue
        d = np.sum((q - c / norm) ** 2)
        if d < best:
            best, best_index = d, m
    return best_index, np.sqrt(best)


@pytest.fixture(scope="module")
def small():
    poses = _corpus(60, seed=1)
    db = pseudo_gt.PoseDatabase(poses, num_views=5, seed=7, chunk_size=64, batch_size=16)
    entries2d, entries3d = _expected_entries(poses, 5, 7)
    return db, poses, entries2d, entries3d


def test_database_layout_follows_the_documented_view_draws(small):
    db, poses, entries2d, entries3d = small
    assert len(db) == 300 and db.num_poses == 60
    index = np.arange(len(db))
    pose2d, pose3d = db.project(index)
    np.testing.assert_allclose(pose2d, entries2d, atol=1e-6)
    np.testing.assert_allclose(pose3d, entries3d, atol=1e-9)
    # Body-centred, and the 2D is the orthographic projection of the 3D.
    np.testing.assert_allclose(skeleton_lib.body_centre(pose3d), 0.0, atol=1e-9)
    np.testing.assert_allclose(pose2d, pose3d[..., :2], atol=1e-6)
    # Views are drawn per pose: a pose's views differ from each other.
    assert not np.allclose(pose2d[0], pose2d[1], atol=1e-3)


def test_recovers_projected_entries_with_missing_joints(small):
    db, _, entries2d, entries3d = small
    rng = np.random.default_rng(3)
    index = rng.choice(len(db), 24, replace=False)
    scale = rng.uniform(50.0, 500.0, (24, 1, 1))
    offset = rng.uniform(0.0, 2000.0, (24, 1, 2))
    framed = entries2d[index] * scale + offset
    masks = _random_masks(rng, 24)
    masks[:4] = True
    queries = np.where(masks[..., None], framed, np.nan)   # missing joints are NaN: must be ignored
    result = db.search(queries, masks)
    np.testing.assert_array_equal(result.index, index)
    np.testing.assert_array_equal(result.pose_index, index // 5)
    np.testing.assert_array_equal(result.view, index % 5)
    assert np.all(result.distance < 1e-6)
    np.testing.assert_allclose(result.pose3d, entries3d[index], atol=1e-9)
    # The full matched pose lands in the query's pixel frame, so it completes the missing joints.
    np.testing.assert_allclose(result.pose2d, framed, atol=1e-6 * 2000)
    np.testing.assert_allclose(result.completed2d, framed, atol=1e-6 * 2000)
    np.testing.assert_array_equal(result.completed2d[masks], queries[masks])
    assert result.pose3d.shape == (24, J, 3) and result.pose2d.shape == (24, J, 2) and len(result) == 24


@pytest.mark.parametrize("group_min,shortlist", [(0, 1), (4, 1), (8, 4)])
def test_agrees_with_brute_force_on_random_queries(group_min, shortlist):
    # Perturbations of a few base poses: many close candidates, as in a MoCap corpus.
    poses = np.repeat(_corpus(4, seed=10), 16, axis=0)[:50] + _corpus(50, seed=11) * np.float32(0.05)
    db = pseudo_gt.PoseDatabase(poses, num_views=8, seed=5, chunk_size=128, batch_size=32,
                                group_min=group_min, shortlist=shortlist)
    entries2d, _ = _expected_entries(poses, 8, 5)
    rng = np.random.default_rng(12)
    # Half random points, half noisy database entries (close competition between candidates).
    queries = rng.uniform(0.0, 640.0, (40, J, 2))
    near = rng.choice(len(db), 20, replace=False)
    queries[20:] = entries2d[near] * 300.0 + rng.normal(0.0, 6.0, (20, J, 2))
    masks = _random_masks(rng, 40)
    masks[:10] = True                 # shared masks exercise the grouped path when group_min > 0
    masks[10:16] = masks[10]
    masks[20:28] = True
    result = db.search(queries, masks)
    expected = [_brute_force(entries2d, queries[b], masks[b]) for b in range(40)]
    np.testing.assert_array_equal(result.index, [e[0] for e in expected])
    np.testing.assert_allclose(result.distance, [e[1] for e in expected], atol=1e-5)
    # The distance is that of the returned pose2d, normalised like the query.
    for b in (0, 17):
        joints = np.flatnonzero(masks[b])
        q = queries[b, joints] - queries[b, joints].mean(axis=0)
        p = result.pose2d[b, joints] - result.pose2d[b, joints].mean(axis=0)
        assert np.linalg.norm(q / np.linalg.norm(q) - p / np.linalg.norm(p)) == pytest.approx(
            result.distance[b], abs=1e-9)
        assert np.linalg.norm(p) == pytest.approx(np.linalg.norm(q))


def test_distance_does_not_depend_on_the_query_frame(small):
    db = small[0]
    rng = np.random.default_rng(4)
    queries = rng.uniform(0.0, 100.0, (6, J, 2))
    masks = _random_masks(rng, 6)
    a = db.search(queries, masks)
    b = db.search(queries * 37.5 + np.array([1000.0, -300.0]), masks)
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_allclose(a.distance, b.distance, atol=1e-9)
    np.testing.assert_allclose(b.pose2d, a.pose2d * 37.5 + np.array([1000.0, -300.0]), atol=1e-6)
    assert np.all((a.distance > 0.0) & (a.distance <= 2.0))


def test_chunk_and_batch_sizes_do_not_change_the_result():
    poses = _corpus(30, seed=21)
    rng = np.random.default_rng(22)
    queries = rng.normal(300.0, 80.0, (20, J, 2))
    masks = _random_masks(rng, 20)
    masks[:9] = True
    results = [pseudo_gt.PoseDatabase(poses, num_views=4, seed=2, chunk_size=c, batch_size=b,
                                      group_min=g).search(queries, masks)
               for c, b, g in ((7, 3, 0), (10_000, 256, 8), (33, 20, 2))]
    for other in results[1:]:
        np.testing.assert_array_equal(other.index, results[0].index)
        np.testing.assert_allclose(other.distance, results[0].distance, rtol=0, atol=1e-12)
        np.testing.assert_allclose(other.pose3d, results[0].pose3d, rtol=0, atol=1e-12)


def test_same_seed_same_database_and_other_seed_differs():
    poses = _corpus(20, seed=31)
    a = pseudo_gt.PoseDatabase(poses, num_views=3, seed=9)
    b = pseudo_gt.PoseDatabase(poses, num_views=3, seed=9)
    c = pseudo_gt.PoseDatabase(poses, num_views=3, seed=10)
    index = np.arange(len(a))
    assert a.project(index)[0].tobytes() == b.project(index)[0].tobytes()
    assert not np.allclose(a.project(index)[0], c.project(index)[0])
    rng = np.random.default_rng(0)
    queries, masks = rng.uniform(0, 50, (5, J, 2)), _random_masks(rng, 5)
    assert a.search(queries, masks).pose3d.tobytes() == b.search(queries, masks).pose3d.tobytes()


def _vertical_poses(rng, num_poses):
    """Poses whose joints 0-5 lie on the vertical axis through the body centre (x = z = 0) and whose
    shoulders are symmetric about it: seen at elevation 0, joints 0-5 project to the same 2D points
    whatever the azimuth, so every view of every such pose ties exactly on those joints."""
    poses = rng.normal(0.0, 0.3, (num_poses, J, 3))
    poses[:, :6] = 0.0
    poses[:, :6, 1] = [0.9, 0.85, 0.5, 0.45, 0.05, -0.05]
    poses[:, 10] = [-0.2, -0.5, 0.0]
    poses[:, 11] = [0.2, -0.5, 0.0]
    return poses.astype(np.float32)


@pytest.mark.parametrize("group_min", [0, 8])
def test_exact_ties_go_to_the_lowest_index(group_min):
    rng = np.random.default_rng(41)
    poses = np.concatenate([_corpus(1, seed=42), _vertical_poses(rng, 3)])
    db = pseudo_gt.PoseDatabase(poses, num_views=3, seed=3, chunk_size=2, shortlist=1,
                                elevation_range_deg=(0.0, 0.0), group_min=group_min)
    entries2d, _ = db.project(np.arange(len(db)))
    mask = np.zeros((8, J), bool)
    mask[:, :6] = True
    np.testing.assert_array_equal(entries2d[3:, :6], np.broadcast_to(entries2d[3, :6], (9, 6, 2)))
    queries = np.repeat(entries2d[5:6] * 120.0 + 40.0, 8, axis=0)
    result = db.search(queries, mask)
    np.testing.assert_array_equal(result.index, 3)           # 9 exact ties (indices 3-11), 3 wins
    assert np.all(result.distance < 1e-7)


def _flat_pose(rng):
    """A pose whose ankles and knees (joints 0-3) are at one point: degenerate for a 0-3 mask."""
    flat = rng.normal(0.0, 0.3, (J, 3))
    flat[:4] = flat[0]
    return flat.astype(np.float32)


def _unit_centred(points):
    centred = points - points.mean(axis=0)
    return centred / np.linalg.norm(centred)


def test_degenerate_candidates_never_win():
    rng = np.random.default_rng(51)
    other = rng.normal(0.0, 0.3, (J, 3)).astype(np.float32)
    db = pseudo_gt.PoseDatabase(np.stack([_flat_pose(rng), other]), num_views=1, seed=0, chunk_size=8)
    mask = np.zeros((1, J), bool)
    mask[0, :4] = True
    target, _ = db.project(np.array([1]))
    # The point reflection of the only usable candidate: cosine -1 (distance 2), which is worse than
    # the degenerate candidate's float32 rounding noise; the exhaustive float64 pass must still find it.
    query = -target * 100.0 + 300.0
    result = db.search(query, mask)
    assert result.index[0] == 1
    assert result.distance[0] == pytest.approx(2.0, abs=1e-9)
    only_flat = pseudo_gt.PoseDatabase(_flat_pose(rng)[None], num_views=2, seed=0)
    with pytest.raises(ValueError, match="no database entry has two distinct joints"):
        only_flat.search(query, mask)


def test_poor_matches_are_searched_again_exhaustively():
    # Chunks [flat, B] and [C]: the query has cosine -0.3 with B and -0.8 with C, so B is the nearest,
    # but B's chunk arg-max is the degenerate candidate (cosine ~ 0 from rounding); the short list then
    # holds only the degenerate candidate and C, and C's distance (sqrt 3.6) must trigger a full search.
    rng = np.random.default_rng(52)
    poses = np.stack([_flat_pose(rng)] + [rng.normal(0.0, 0.3, (J, 3)).astype(np.float32)
                                          for _ in range(2)])
    db = pseudo_gt.PoseDatabase(poses, num_views=1, seed=0, chunk_size=2)
    entries2d, _ = db.project(np.arange(3))
    b_bar, c_bar = (_unit_centred(entries2d[k, :4]).ravel() for k in (1, 2))
    basis = np.stack([b_bar, c_bar])
    coef = np.linalg.solve(basis @ basis.T, [-0.3, -0.8])
    inside = coef @ basis
    centred = _unit_centred(rng.normal(size=(4, 2))).ravel()
    orth = centred - basis.T @ np.linalg.solve(basis @ basis.T, basis @ centred)
    q = inside + np.sqrt(1.0 - inside @ inside) * orth / np.linalg.norm(orth)
    query = np.zeros((1, J, 2))
    query[0, :4] = q.reshape(4, 2) * 150.0 + 400.0
    mask = np.zeros((1, J), bool)
    mask[0, :4] = True
    result = db.search(query, mask)
    assert result.index[0] == 1
    assert result.distance[0] == pytest.approx(np.sqrt(2.0 - 2.0 * -0.3), abs=1e-6)


def test_bad_queries_are_named_and_validated_individually(small):
    db = small[0]
    rng = np.random.default_rng(61)
    queries = rng.uniform(0.0, 200.0, (5, J, 2))
    masks = np.ones((5, J), bool)
    masks[1] = False
    masks[1, :3] = True                                   # 3 < min_joints = 4
    queries[2, 5] = np.nan                               # NaN in an annotated joint
    queries[3, 7, 1] = np.inf
    queries[4] = [12.0, 34.0]                           # every joint at one point
    queries[0, 0] = np.nan
    masks[0, 0] = False                                   # NaN at a missing joint is fine
    problems = db.validate_queries(queries, masks)
    assert [b for b, _ in problems] == [1, 2, 3, 4]
    assert "3 annotated joints, fewer than min_joints=4" in problems[0][1]
    assert "[5]" in problems[1][1] and "NaN or inf" in problems[1][1]
    assert "[7]" in problems[2][1]
    assert "one point" in problems[3][1]
    with pytest.raises(ValueError, match=r"query 1: 3 annotated joints.*query 4: all annotated"):
        db.search(queries, masks)
    assert db.search(queries[:1], masks[:1]).index.shape == (1,)
    with pytest.raises(ValueError, match=r"poses2d must be \(B, 13, 2\)"):
        db.search(queries[:, :12], masks[:, :12])
    with pytest.raises(ValueError, match="visible must be"):
        db.search(queries, masks[:4])
    with pytest.raises(ValueError, match="visible must be boolean"):
        db.validate_queries(queries, np.full((5, J), 2))
    empty = db.search(np.zeros((0, J, 2)), np.zeros((0, J), bool))
    assert empty.pose3d.shape == (0, J, 3) and empty.index.shape == (0,)


def test_fewer_min_joints_can_be_allowed():
    poses = _corpus(10, seed=71)
    mask = np.zeros((1, J), bool)
    mask[0, [4, 5, 10]] = True
    strict = pseudo_gt.PoseDatabase(poses, num_views=2, seed=1)
    query = strict.project(np.array([7]))[0] * 80.0
    assert strict.validate_queries(query, mask) == [(0, "3 annotated joints, fewer than min_joints=4")]
    loose = pseudo_gt.PoseDatabase(poses, num_views=2, seed=1, min_joints=3)
    assert loose.validate_queries(query, mask) == []
    assert loose.search(query, mask).distance[0] < 1e-6


def test_bad_database_arguments():
    poses = _corpus(4, seed=81)
    with pytest.raises(ValueError, match=r"poses3d must be \(N, 13, 3\)"):
        pseudo_gt.PoseDatabase(poses[:, :12])
    bad = poses.copy()
    bad[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match=r"poses3d\[2\] holds NaN"):
        pseudo_gt.PoseDatabase(bad)
    with pytest.raises(ValueError, match="num_views"):
        pseudo_gt.PoseDatabase(poses, num_views=0)
    with pytest.raises(ValueError, match="min_joints=14 exceeds"):
        pseudo_gt.PoseDatabase(poses, min_joints=14)
    with pytest.raises(ValueError, match="no pose"):
        pseudo_gt.PoseDatabase(poses[:0])
    db = pseudo_gt.PoseDatabase(poses, num_views=2)
    with pytest.raises(ValueError, match=r"database index 8 is outside \[0, 8\)"):
        db.project(np.array([0, 8]))
