"""3D placement (Fig 15): recovering a known translation from a perspective projection."""

import numpy as np
import pytest

from lcr_tf.postprocess import placement, placement_tf


def _project(cam, k):
    return np.stack([k[0] * cam[..., 0] / cam[..., 2] + k[2], k[1] * cam[..., 1] / cam[..., 2] + k[3]], -1)


def _people(seed=0):
    rng = np.random.default_rng(seed)
    pose3d = rng.normal(0.0, 0.3, (4, 13, 3))
    pose3d -= pose3d.mean(axis=1, keepdims=True)
    translation = np.array([[0.5, -0.2, 5.0], [1.0, 0.3, 8.0], [-2.0, 0.0, 4.0], [0.0, 0.1, 3.0]])
    return pose3d, translation


@pytest.mark.parametrize("backend", ["numpy", "tf"])
def test_exact_with_given_intrinsics(backend):
    pose3d, t = _people()
    k = np.array([1000.0, 900.0, 320.0, 240.0])
    pose2d = _project(pose3d + t[:, None], k)
    fn = placement.place_3d if backend == "numpy" else placement_tf.place_3d_tf
    got, camera = fn(pose2d, pose3d, k)
    got, camera = np.asarray(got), np.asarray(camera)
    np.testing.assert_allclose(got, t, atol=1e-9 if backend == "numpy" else 1e-4)
    np.testing.assert_allclose(camera, pose3d + t[:, None], atol=1e-4)


def test_default_camera():
    h, w = 480, 640
    np.testing.assert_allclose(placement.default_intrinsics((h, w)), [640, 640, 320, 240])
    pose3d, t = _people(1)
    # Projections by the default camera are recovered exactly; by a camera with a 20% different focal
    # length the depth scales by about that factor and the people stay in front of the camera.
    exact = _project(pose3d + t[:, None], placement.default_intrinsics((h, w)))
    np.testing.assert_allclose(placement.place_3d(exact, pose3d, None, (h, w))[0], t, atol=1e-9)
    other = _project(pose3d + t[:, None], np.array([768.0, 768.0, 320.0, 240.0]))
    got, _ = placement.place_3d(other, pose3d, None, (h, w))
    np.testing.assert_allclose(got[:, 2] / t[:, 2], 640 / 768, rtol=0.1)
    tf_got, _ = placement_tf.place_3d_tf(other, pose3d, None, [h, w])
    np.testing.assert_allclose(tf_got.numpy(), got, rtol=1e-4, atol=1e-4)


def test_padding_rows_stay_finite():
    got, camera = placement_tf.place_3d_tf(np.zeros((2, 13, 2)), np.zeros((2, 13, 3)), None, [480, 640])
    assert np.all(np.isfinite(got.numpy())) and np.all(np.isfinite(camera.numpy()))


def test_bad_inputs():
    with pytest.raises(ValueError, match="pose3d must be"):
        placement.place_3d(np.zeros((2, 13, 2)), np.zeros((2, 12, 3)), None, (480, 640))
    with pytest.raises(ValueError, match="non-finite"):
        placement.place_3d(np.full((1, 13, 2), np.nan), np.zeros((1, 13, 3)), None, (480, 640))
    with pytest.raises(ValueError, match="intrinsics or image_size"):
        placement.place_3d(np.zeros((1, 13, 2)), np.zeros((1, 13, 3)))
    with pytest.raises(ValueError, match="intrinsics"):
        placement.place_3d(np.zeros((1, 13, 2)), np.zeros((1, 13, 3)), [0, 1, 2, 3])
