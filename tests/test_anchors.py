"""Tests of lcr_tf.poses.anchors and the beam_jobs.anchor_poses program."""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_no_library_notices

from beam_jobs import anchor_poses
from lcr_tf.contracts import anchor_layout, npz_io
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.poses import anchors, pose_corpus

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A standing LCR-13 pose, camera axes (x right, y down), metres, facing the camera (its right side at
# negative x). Hips and shoulders are placed so the body centre is exactly the origin:
# mean x = 0, mean y = (0.2 + 0.2 - 0.2 - 0.2) / 4 = 0, mean z = 0.
STANDING = np.array([
    [-0.10, 1.00, 0.05],   # right_ankle
    [0.10, 1.00, -0.05],   # left_ankle
    [-0.10, 0.50, 0.02],   # right_knee
    [0.10, 0.50, 0.00],    # left_knee
    [-0.10, 0.20, 0.00],   # right_hip
    [0.10, 0.20, 0.00],    # left_hip
    [-0.30, 0.20, 0.10],   # right_wrist
    [0.30, 0.20, -0.10],   # left_wrist
    [-0.25, -0.10, 0.00],  # right_elbow
    [0.25, -0.10, 0.00],   # left_elbow
    [-0.20, -0.20, 0.00],  # right_shoulder
    [0.20, -0.20, 0.00],   # left_shoulder
    [0.00, -0.50, 0.03],   # head
])
LOWER = [0, 1, 2, 3]
UPPER = list(range(4, 13))


def yaw(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def make_poses(n, seed, noise=0.03):
    """n upright poses: STANDING turned about the vertical by a random angle, plus joint noise."""
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0, 2 * np.pi, n)
    c, s = np.cos(angles), np.sin(angles)
    rot = np.zeros((n, 3, 3))
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, s, 1, -s, c
    poses = np.einsum("nij,kj->nki", rot, STANDING) + rng.normal(0, noise, (n, 13, 3))
    return skeleton_lib.centre_poses(poses).astype(np.float32)


# ---------------------------------------------------------------- kmeans

def blobs(seed=0, per_blob=80, sigma=0.01):
    """5 well separated blobs of 39-D points (flattened poses) and the blob of each point."""
    rng = np.random.default_rng(seed)
    means = make_poses(5, seed + 1, noise=0.0).reshape(5, -1) + 2.0 * np.eye(5, 39)  # >= 2 apart
    truth = np.repeat(np.arange(5), per_blob)
    x = means[truth] + rng.normal(0, sigma, (truth.size, 39))
    perm = rng.permutation(truth.size)
    return x[perm].astype(np.float32), truth[perm], means


@pytest.mark.parametrize("init_sample", [None, 100])
def test_kmeans_recovers_planted_clusters(init_sample):
    x, truth, means = blobs()
    centres, labels, inertia, n_iter = anchors.kmeans(x, 5, seed=3, init_sample=init_sample)
    assert centres.shape == (5, 39) and centres.dtype == np.float32
    assert labels.shape == (400,) and n_iter >= 1
    # Labels are a relabelling of the truth: each blob maps to exactly one cluster and vice versa.
    mapping = {t: set(labels[truth == t].tolist()) for t in range(5)}
    assert all(len(v) == 1 for v in mapping.values())
    found = np.array([mapping[t].pop() for t in range(5)])
    assert sorted(found.tolist()) == list(range(5))
    # Centres are the blobs' sample means (so within sigma/sqrt(80) of the planted means).
    for t in range(5):
        np.testing.assert_allclose(centres[found[t]], x[truth == t].astype(np.float64).mean(0), atol=1e-6)
        assert np.abs(centres[found[t]] - means[t]).max() < 0.01
    expected_inertia = sum(((x[truth == t] - x[truth == t].mean(0)) ** 2).sum() for t in range(5))
    assert inertia == pytest.approx(expected_inertia, rel=1e-5)


def test_kmeans_is_deterministic():
    x, _, _ = blobs(seed=5, sigma=0.5)  # overlapping blobs: the seeding matters
    before = x.copy()
    a = anchors.kmeans(x, 7, seed=11)
    b = anchors.kmeans(x, 7, seed=11)
    assert x.tobytes() == before.tobytes()  # the input is left alone
    assert a[0].tobytes() == b[0].tobytes() and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_kmeans_errors():
    x, _, _ = blobs()
    with pytest.raises(ValueError, match="k=401 .* N=400"):
        anchors.kmeans(x, 401, seed=0)
    with pytest.raises(ValueError, match="k=0"):
        anchors.kmeans(x, 0, seed=0)
    bad = x.copy()
    bad[17, 3] = np.nan
    with pytest.raises(ValueError, match=r"x\[17\] holds NaN"):
        anchors.kmeans(bad, 3, seed=0)
    with pytest.raises(ValueError, match="shape"):
        anchors.kmeans(x.reshape(-1), 3, seed=0)
    with pytest.raises(ValueError, match="init_sample=2 must be at least k=3"):
        anchors.kmeans(x, 3, seed=0, init_sample=2)


# ---------------------------------------------------------------- from_centres

def test_from_centres_by_hand():
    anchor_set = anchors.from_centres(STANDING[None], "lcr13", {"note": "hand"})
    assert anchor_set.num_anchors == 1 and anchor_set.num_classes == 3
    assert anchor_set.upper_body.tolist() == [False, True]
    np.testing.assert_array_equal(anchor_set.pose3d[0], STANDING.astype(np.float32))
    np.testing.assert_array_equal(anchor_set.pose3d[1], anchor_set.pose3d[0])
    # Full body: tight box x [-0.3, 0.3], y [-0.5, 1.0] (w 0.6, h 1.5); +10% a side -> [-0.36, -0.65,
    # 0.36, 1.15], size 0.72 x 1.8.
    full = (STANDING[:, :2] - [-0.36, -0.65]) / [0.72, 1.8]
    np.testing.assert_allclose(anchor_set.pose2d[0], full, atol=1e-6)
    np.testing.assert_allclose(anchor_set.pose2d[0][12], [0.5, 0.15 / 1.8], atol=1e-6)  # head
    # The tight extent is the box shrunk by the margin: 0.1 / 1.2 = 1/12 on each side.
    np.testing.assert_allclose(anchor_set.pose2d[0].min(0), [1 / 12, 1 / 12], atol=1e-6)
    np.testing.assert_allclose(anchor_set.pose2d[0].max(0), [11 / 12, 11 / 12], atol=1e-6)
    # Upper body: joints 4..12 span x [-0.3, 0.3], y [-0.5, 0.2] (w 0.6, h 0.7) -> [-0.36, -0.57,
    # 0.36, 0.27], size 0.72 x 0.84. Knees at y (0.5 + 0.57) / 0.84, ankles at (1.0 + 0.57) / 0.84.
    upper = (STANDING[:, :2] - [-0.36, -0.57]) / [0.72, 0.84]
    np.testing.assert_allclose(anchor_set.pose2d[1], upper, atol=1e-6)
    np.testing.assert_allclose(anchor_set.pose2d[1][[2, 0], 1], [1.07 / 0.84, 1.57 / 0.84], atol=1e-6)
    assert anchor_set.metadata["note"] == "hand" and anchor_set.metadata["skeleton"] == "lcr13"


def test_from_centres_full_and_upper_body_boxes():
    centres = make_poses(10, seed=2)
    anchor_set = anchors.from_centres(centres + 0.5, "lcr13")  # not centred: from_centres centres them
    k = 10
    np.testing.assert_allclose(anchor_set.pose3d[:k], centres, atol=1e-6)
    full, upper = anchor_set.pose2d[:k], anchor_set.pose2d[k:]
    assert full.min() >= 0 and full.max() <= 1
    np.testing.assert_allclose(full.min(1), 1 / 12, atol=1e-5)
    np.testing.assert_allclose(full.max(1), 11 / 12, atol=1e-5)
    assert upper[:, UPPER].min() >= 0 and upper[:, UPPER].max() <= 1
    np.testing.assert_allclose(upper[:, UPPER].min(1), 1 / 12, atol=1e-5)
    assert (upper[:, LOWER, 1] > 1).all()  # upright: knees and ankles hang below the box
    np.testing.assert_array_equal(anchor_set.pose3d[k:], anchor_set.pose3d[:k])


def test_from_centres_errors():
    with pytest.raises(ValueError, match=r"expected \(K, 13, 3\)"):
        anchors.from_centres(np.zeros((2, 12, 3)), "lcr13")
    bad = STANDING[None].copy()
    bad[0, 3, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        anchors.from_centres(bad, "lcr13")


def test_class_helpers():
    assert anchor_layout.BACKGROUND_CLASS == 0
    assert anchor_layout.full_body_class(np.array([0, 4])).tolist() == [1, 5]
    assert anchor_layout.upper_body_class(np.array([0, 4]), 5).tolist() == [6, 10]
    assert anchor_layout.anchor_row(np.array([1, 6, 10])).tolist() == [0, 5, 9]
    assert anchor_layout.anchor_pose(np.array([1, 5, 6, 10]), 5).tolist() == [0, 4, 0, 4]
    assert (anchor_layout.num_pose_classes(5), anchor_layout.num_classes(5)) == (10, 11)


# ---------------------------------------------------------------- assign_classes

def brute_force_classes(anchor_pose3d, k, poses, full_body):
    out = []
    for pose, fb in zip(poses, full_body):
        centred = pose.astype(np.float64) - pose[[4, 5, 10, 11]].astype(np.float64).mean(0)
        dists = [np.sum((centred - anchor_pose3d[a].astype(np.float64)) ** 2) for a in range(k)]
        best = int(np.argmin(dists))
        out.append(best + 1 if fb else k + best + 1)
    return np.array(out)


def test_assign_classes_equals_brute_force():
    anchor_set = anchors.from_centres(make_poses(7, seed=4), "lcr13")
    poses = make_poses(300, seed=5, noise=0.05)
    full_body = np.random.default_rng(6).random(300) < 0.5
    expected = brute_force_classes(anchor_set.pose3d, 7, poses, full_body)
    got = anchor_set.assign_classes(poses, full_body)
    assert got.dtype == np.int32 and got.shape == (300,)
    np.testing.assert_array_equal(got, expected)
    assert set(np.unique(got[full_body])) <= set(range(1, 8))
    assert set(np.unique(got[~full_body])) <= set(range(8, 15))
    np.testing.assert_array_equal(anchor_set.assign_classes(poses, full_body, chunk_size=16), expected)
    # Poses are centred before comparison: a translation changes nothing.
    np.testing.assert_array_equal(anchor_set.assign_classes(poses + [1.0, -2.0, 5.0], full_body), expected)
    # The same k for a full-body and an upper-body pose.
    np.testing.assert_array_equal(anchor_set.assign_classes(poses, True) + 7,
                                  anchor_set.assign_classes(poses, False))
    # An anchor is its own nearest.
    np.testing.assert_array_equal(anchor_set.assign_classes(anchor_set.pose3d[:7], True), np.arange(1, 8))
    assert anchor_set.assign_classes(np.zeros((0, 13, 3)), True).shape == (0,)


def test_assign_classes_errors():
    anchor_set = anchors.from_centres(make_poses(3, seed=4), "lcr13")
    poses = make_poses(5, seed=1)
    with pytest.raises(ValueError, match=r"expected \(N, 13, 3\)"):
        anchor_set.assign_classes(poses[:, :12], True)
    with pytest.raises(ValueError, match=r"\(5,\) bool"):
        anchor_set.assign_classes(poses, np.ones(4, bool))
    with pytest.raises(ValueError, match=r"\(5,\) bool"):
        anchor_set.assign_classes(poses, np.ones(5, int))
    bad = poses.copy()
    bad[3, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"poses3d\[3\] holds NaN"):
        anchor_set.assign_classes(bad, True, chunk_size=2)


# ---------------------------------------------------------------- save / load / validation

def test_save_load_round_trip(tmp_path):
    anchor_set = anchors.from_centres(make_poses(6, seed=7), "lcr13", {"seed": 3, "views": [1, 2]})
    path = str(tmp_path / "anchors.npz")
    anchor_set.save(path)
    assert os.path.exists(tmp_path / "anchors.json")
    loaded = anchors.load(path)
    for name in anchors.ARRAYS:
        a, b = getattr(anchor_set, name), getattr(loaded, name)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name
    assert loaded.metadata["seed"] == 3 and loaded.metadata["views"] == [1, 2]
    assert loaded.metadata["num_anchors"] == 6 and loaded.num_classes == 13
    assert loaded.skeleton.name == "lcr13"
    with pytest.raises(ValueError, match="read-only"):
        loaded.pose3d[0, 0, 0] = 1.0


def _write(path, anchor_set, **changes):
    arrays = {"pose3d": anchor_set.pose3d, "pose2d": anchor_set.pose2d, "upper_body": anchor_set.upper_body}
    meta = dict(anchor_set.metadata)
    for key, value in changes.items():
        if key == "meta":
            meta = value
        elif value is None:
            del arrays[key]
        else:
            arrays[key] = value
    npz_io.save(path, arrays, meta)


def test_load_errors_name_file_and_field(tmp_path):
    good = anchors.from_centres(make_poses(4, seed=8), "lcr13")
    path = str(tmp_path / "bad.npz")
    shifted_pose2d = good.pose2d.copy()
    shifted_pose2d[5, 3] += 0.01
    off_centre = good.pose3d.copy()
    off_centre[[2, 6]] += np.float32(0.1)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        anchors.load(str(tmp_path / "missing.npz"))
    cases = [
        (dict(upper_body=None), "upper_body"),
        (dict(pose2d=good.pose2d[:, :12]), "'pose2d' has shape"),
        (dict(pose3d=good.pose3d[:7]), "'pose3d' has shape"),
        (dict(pose3d=good.pose3d.astype(np.int32)), "'pose3d' has dtype int32"),
        (dict(upper_body=good.upper_body.astype(np.int8)), "'upper_body' has dtype int8"),
        (dict(upper_body=good.upper_body[::-1].copy()), "'upper_body' must be False"),
        (dict(pose2d=shifted_pose2d), "'pose2d' of anchor 5 disagrees"),
        (dict(pose3d=np.concatenate([good.pose3d[:4], good.pose3d[:4] * 1.01])),
         "'pose3d' of upper-body anchor 4 differs"),
        (dict(pose3d=off_centre), "'pose3d' anchor 2 is not body-centred"),
        (dict(meta={}), "'skeleton' is missing"),
        (dict(meta={"skeleton": "nope"}), "'skeleton' is 'nope', not a known"),
        (dict(meta={"skeleton": "lcr13", "num_anchors": 5}), "'num_anchors' is 5"),
    ]
    for changes, message in cases:
        _write(path, good, **changes)
        with pytest.raises(ValueError, match=message) as info:
            anchors.load(path)
        assert path in str(info.value), message
    nan = good.pose2d.copy()
    nan[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="AnchorSet: field 'pose2d' holds NaN or inf \\(anchor 2\\)"):
        anchors.AnchorSet(good.pose3d, nan, good.upper_body, dict(good.metadata))


# ---------------------------------------------------------------- orientation

def test_orient_poses():
    poses = make_poses(20, seed=9)
    out = anchors.orient_poses(poses, 3, seed=1)
    assert out.shape == (60, 13, 3) and out.dtype == np.float32
    np.testing.assert_allclose(skeleton_lib.body_centre(out)[:, 0], 0, atol=1e-6)
    # Row n * V + v is pose n: rotations keep every pairwise joint distance.
    def pairwise(p):
        return np.linalg.norm(p[:, :, None] - p[:, None, :], axis=-1)
    np.testing.assert_allclose(pairwise(out), np.repeat(pairwise(poses), 3, axis=0), atol=1e-5)
    assert not np.allclose(out[0], out[1])  # each view its own
    np.testing.assert_array_equal(out, anchors.orient_poses(poses, 3, seed=1))
    # Elevation 0: turning about the vertical only, the heights (y) are kept.
    flat = anchors.orient_poses(poses, 2, seed=1, elevation_range_deg=(0.0, 0.0))
    np.testing.assert_allclose(flat[:, :, 1], np.repeat(poses[:, :, 1], 2, axis=0), atol=1e-6)
    with pytest.raises(ValueError, match="num_views"):
        anchors.orient_poses(poses, 0, seed=1)


# ---------------------------------------------------------------- the program

def write_corpus(path, n=300, seed=0):
    poses = make_poses(n, seed)
    pose_corpus.PoseCorpus(poses, np.array([f"trial{i % 3}" for i in range(n)]), np.arange(n),
                           {"skeleton": "lcr13"}).save(path)
    return poses


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_job_end_to_end_and_determinism(tmp_path):
    corpus = str(tmp_path / "poses.npz")
    write_corpus(corpus)
    out1, out2 = str(tmp_path / "a" / "anchors.npz"), str(tmp_path / "b" / "anchors.npz")
    a = anchor_poses.run(corpus, 8, out1, views=2, seed=4, verbose=False)
    anchor_poses.run(corpus, 8, out2, views=2, seed=4, figure="", verbose=False)
    assert os.path.exists(tmp_path / "a" / "anchors.json")
    width, height = png_size(str(tmp_path / "a" / "anchors.png"))
    assert width > 300 and height > 300 and os.path.getsize(tmp_path / "a" / "anchors.png") > 20_000
    assert not os.path.exists(tmp_path / "b" / "anchors.png")
    loaded1, loaded2 = anchors.load(out1), anchors.load(out2)
    for name in anchors.ARRAYS:
        assert getattr(loaded1, name).tobytes() == getattr(loaded2, name).tobytes(), name
    assert loaded1.num_anchors == 8 and loaded1.pose3d.shape == (16, 13, 3)
    with open(tmp_path / "a" / "anchors.json") as f:
        meta = json.load(f)
    assert meta["num_anchors"] == 8 and meta["skeleton"] == "lcr13" and meta["views"] == 2
    assert meta["seed"] == 4 and meta["elevation_range_deg"] == [-10.0, 40.0]
    assert meta["corpus"] == {"path": corpus, "num_poses": 300, "num_used": 300, "skeleton": "lcr13"}
    assert meta["num_oriented_poses"] == 600 and sum(meta["cluster_sizes"]) == 600
    assert len(meta["cluster_sizes"]) == 8 and min(meta["cluster_sizes"]) >= 1
    assert meta["kmeans"]["iterations"] >= 1 and meta["kmeans"]["inertia_m2"] > 0
    assert set(meta["timing_s"]) >= {"load", "orient", "kmeans", "total"}
    # A different seed gives different anchors; a subset is recorded.
    c = anchor_poses.run(corpus, 8, str(tmp_path / "c.npz"), views=2, seed=5, max_poses=100,
                         figure="", verbose=False)
    assert not np.array_equal(c.pose3d, a.pose3d)
    assert c.metadata["corpus"]["num_used"] == 100 and c.metadata["num_oriented_poses"] == 200


def test_job_errors(tmp_path):
    corpus = str(tmp_path / "poses.npz")
    write_corpus(corpus, n=10)
    with pytest.raises(ValueError, match=r"num_anchors=21 exceeds .*poses.npz gives 10 poses x 2 views = 20"):
        anchor_poses.run(corpus, 21, str(tmp_path / "x.npz"), views=2, verbose=False)
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        anchor_poses.run(str(tmp_path / "nothere.npz"), 2, str(tmp_path / "x.npz"), verbose=False)
    malformed = str(tmp_path / "malformed.npz")
    npz_io.save(malformed, {"poses3d": np.zeros((4, 13, 3), np.float32)}, {"skeleton": "lcr13"})
    with pytest.raises(ValueError, match=r"malformed.npz: missing array\(s\) \['trial', 'frame'\]"):
        anchor_poses.run(malformed, 2, str(tmp_path / "x.npz"), verbose=False)
    assert not os.path.exists(tmp_path / "x.npz")
    assert anchor_poses.parse_range("-5,30") == (-5.0, 30.0)
    for text in ("5", "a,b", "30,-5", "-100,0"):
        with pytest.raises(ValueError, match="elevation_range"):
            anchor_poses.parse_range(text)


def test_command_line(tmp_path):
    corpus = str(tmp_path / "poses.npz")
    write_corpus(corpus, n=40)
    out = str(tmp_path / "anchors.npz")
    cmd = [sys.executable, "-m", "beam_jobs.anchor_poses", f"--poses={corpus}", "--num_anchors=4",
           f"--output={out}", "--views=2", "--seed=1", "--elevation_range=0,20", "--figure="]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "K=4" in done.stdout and "40 poses x 2 views = 80" in done.stdout
    assert_no_library_notices(done.stdout, done.stderr)
    assert anchors.load(out).metadata["elevation_range_deg"] == [0.0, 20.0]
    done = subprocess.run(cmd[:4] + ["--num_anchors=81", f"--output={out}", "--views=2"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "exceeds the number of oriented poses" in done.stderr
