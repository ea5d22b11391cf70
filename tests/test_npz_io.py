import hashlib
import time

import numpy as np
import pytest

from lcr_tf.contracts import npz_io
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.poses import anchors, body_model, pose_corpus


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_round_trip_without_pickle_and_identical_bytes(tmp_path):
    arrays = {"poses3d": np.random.default_rng(0).normal(size=(4, 13, 3)).astype(np.float32),
              "trial": np.array(["01_01.bvh", "walking", "x", "y"]), "frame": np.arange(4, dtype=np.int32)}
    a, b = str(tmp_path / "a.npz"), str(tmp_path / "b.npz")
    npz_io.save(a, arrays, {"skeleton": "lcr13", "n": np.int64(4)})
    time.sleep(2.1)  # zip timestamps have a 2 s resolution: a time-stamped writer would differ here
    npz_io.save(b, arrays, {"skeleton": "lcr13", "n": np.int64(4)})
    assert _digest(a) == _digest(b)
    got, meta = npz_io.load(a, required=("poses3d", "trial"))
    assert meta == {"skeleton": "lcr13", "n": 4}
    for k, v in arrays.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].dtype == v.dtype
    with np.load(a, allow_pickle=False) as plain:  # a standard archive
        assert sorted(plain.files) == ["frame", "poses3d", "trial"]


def test_errors_name_the_file_and_the_field(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        npz_io.load(str(tmp_path / "nope.npz"))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz: not a readable"):
        npz_io.load(str(bad))
    path = str(tmp_path / "c.npz")
    npz_io.save(path, {"poses3d": np.zeros((1, 13, 3))}, {})
    with pytest.raises(ValueError, match=r"c.npz: missing array\(s\) \['trial', 'frame'\]"):
        pose_corpus.load(path)
    with pytest.raises(TypeError, match="'obj' has dtype object"):
        npz_io.save(path, {"obj": np.array([{}, 1], dtype=object)}, {})


def test_pose_corpus_checks(tmp_path):
    path = str(tmp_path / "p.npz")
    poses = np.zeros((2, 13, 3))
    poses[1, 3, 0] = np.nan
    npz_io.save(path, {"poses3d": poses, "trial": np.array(["a", "b"]), "frame": np.zeros(2)}, {})
    with pytest.raises(ValueError, match=r"p.npz: poses3d\[1\] holds NaN"):
        pose_corpus.load(path)
    with pytest.raises(ValueError, match="skeleton 'coco17' has 17"):
        pose_corpus.PoseCorpus(np.zeros((2, 13, 3)), ["a", "b"], [0, 1], {"skeleton": "coco17"})
    real = body_model.sample_poses(20, seed=0).poses3d
    corpus = pose_corpus.PoseCorpus(real, ["a"] * 20, np.arange(20))
    corpus.save(path)
    with pytest.raises(ValueError, match="expected 'h36m17'"):
        pose_corpus.load(path, skeleton="h36m17")


def test_pose_units_are_checked(tmp_path):
    """A corpus (or anchor set) in millimetres or centimetres, or collapsed to a point, is refused by its
    median body extent; the same poses in metres load."""
    real = body_model.sample_poses(50, seed=1).poses3d
    extent = np.median(np.linalg.norm(skeleton_lib.centre_poses(real), axis=-1).max(-1))
    assert 0.5 < extent < 1.2  # an adult: centre to the farthest joint
    assert skeleton_lib.check_metres(real) == pytest.approx(extent, rel=1e-6)
    path = str(tmp_path / "u.npz")
    for scale, word in ((1000.0, "millimetres"), (100.0, "centimetres"), (0.0, "collapsed")):
        pose_corpus.PoseCorpus(real * scale, ["a"] * 50, np.arange(50)).save(path)
        with pytest.raises(ValueError, match=rf"u.npz: poses3d: the median body extent .* \(it looks like {word}"):
            pose_corpus.load(path)
    pose_corpus.PoseCorpus(real, ["a"] * 50, np.arange(50)).save(path)
    assert len(pose_corpus.load(path)) == 50
    anchor_set = anchors.cluster_poses(real, 2, 1, seed=0)
    with pytest.raises(ValueError, match="pose3d: the median body extent"):
        anchors.from_centres(anchor_set.pose3d[:2] * 1000.0)
