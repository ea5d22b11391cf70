"""The TensorFlow PPI agrees with the NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.postprocess import PPIParams, ppi, ppi_tf

J = 13


def _random_release(seed, n=40, c=8):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(50, 600, (5, 2))
    roi_centre = centres[rng.integers(0, 5, n)] + rng.normal(0, 20, (n, 2))
    size = rng.uniform(60, 200, (n, 2))
    boxes = np.concatenate([roi_centre - size / 2, roi_centre + size / 2], 1)
    scores = rng.dirichlet(np.full(c + 1, 0.3), size=n)
    pose3d = rng.normal(0, 0.2, (J, 3)) + rng.normal(0, 0.08, (n, c, J, 3))
    pose2d = roi_centre[:, None, None] + 150 * pose3d[..., :2] + rng.normal(0, 5, (n, c, J, 2))
    return scores, boxes, pose2d, pose3d


def _compare(np_out, tf_out):
    n = len(np_out)
    assert int(tf_out["num_detections"]) == n
    np.testing.assert_allclose(tf_out["scores"].numpy()[:n], [d["score"] for d in np_out], rtol=1e-5)
    if n:
        np.testing.assert_allclose(tf_out["pose2d"].numpy()[:n], np.stack([d["pose2d"] for d in np_out]),
                                   rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(tf_out["pose3d"].numpy()[:n], np.stack([d["pose3d"] for d in np_out]),
                                   atol=1e-5)
        np.testing.assert_allclose(tf_out["boxes"].numpy()[:n], np.stack([d["box"] for d in np_out]),
                                   rtol=1e-5, atol=1e-3)
    assert np.all(tf_out["scores"].numpy()[n:] == 0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("mode", ["paper", "nms", "official"])
def test_agrees_with_numpy(seed, mode):
    scores, boxes, pose2d, pose3d = _random_release(seed)
    params = PPIParams(group_by="roi_box" if seed % 2 else "pose_box", rescore=seed < 2,
                       num_full_body=2, max_detections=12, pose3d_threshold_m=0.25)
    _compare(ppi(scores, boxes, pose2d, pose3d, mode=mode, params=params),
             ppi_tf.ppi_tf(scores, boxes, pose2d, pose3d, params=params, mode=mode))


def test_graph_with_tensor_settings_and_padding():
    scores, boxes, pose2d, pose3d = _random_release(7)
    expected = ppi(scores, boxes, pose2d, pose3d, mode="paper", iou_threshold=0.3, pose3d_threshold_m=0.2,
                   max_detections=20)

    @tf.function
    def run(iou, pose_th, rescore):
        settings = dict(iou_threshold=iou, pose3d_threshold_m=pose_th, rescore=rescore, max_detections=20)
        return ppi_tf.ppi_tf(scores, boxes, pose2d, pose3d, params=settings, mode="paper")

    _compare(expected, run(tf.constant(0.3), tf.constant(0.2), tf.constant(True)))


def test_no_valid_candidate_and_nan():
    m = 5
    out = ppi_tf.integrate_candidates(np.zeros(m), np.zeros((m, 4)), np.zeros((m, J, 2)), np.zeros((m, J, 3)),
                                      np.ones(m, np.int32), np.zeros(m, bool), params=PPIParams(max_detections=3))
    assert int(out["num_detections"]) == 0 and out["pose3d"].shape == (3, J, 3)
    bad = np.zeros((m, J, 3))
    bad[0, 0, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="non-finite"):
        ppi_tf.integrate_candidates(np.ones(m), np.zeros((m, 4)), np.zeros((m, J, 2)), bad,
                                    np.ones(m, np.int32), np.ones(m, bool))
    with pytest.raises(ValueError, match="unknown PPI parameters"):
        ppi_tf.integrate_candidates(np.ones(m), np.zeros((m, 4)), np.zeros((m, J, 2)), np.zeros((m, J, 3)),
                                    np.ones(m, np.int32), np.ones(m, bool), params=dict(iou=0.1))
