"""Eq 6 rescoring, checked against values computed by hand."""

import math

import numpy as np
import pytest

from lcr_tf.postprocess import rescoring, rescoring_tf

BOX = np.array([[10.0, 20.0, 110.0, 220.0]])


def _pose(points):
    return np.asarray(points, np.float64)[None]


def test_inside_keeps_score():
    pose = _pose([[10, 20], [50, 100], [110, 220], [60, 21]])  # corners count as inside
    assert rescoring.rescore([0.7], pose, BOX)[0] == pytest.approx(0.7)


def test_joint_outside_contributes_gaussian_of_distance():
    # One of 4 joints 30 px left of the box, one 30 px right of and 40 px below the box (distance 50).
    pose = _pose([[-20, 100], [50, 100], [140, 260], [60, 60]])
    expected = 0.5 * (math.exp(-30 ** 2 / 25 ** 2) + 1 + math.exp(-50 ** 2 / 25 ** 2) + 1) / 4
    got = rescoring.rescore([0.5], pose, BOX)[0]
    assert got == pytest.approx(expected, rel=1e-12)
    assert rescoring.rescore([0.5], pose, BOX, sigma_b=10.0)[0] == pytest.approx(
        0.5 * (math.exp(-9) + 1 + math.exp(-25) + 1) / 4, rel=1e-12)


def test_tf_matches_numpy():
    rng = np.random.default_rng(3)
    pose = rng.uniform(-100, 400, (50, 13, 2))
    boxes = np.sort(rng.uniform(0, 300, (50, 2, 2)), axis=1).transpose(0, 2, 1).reshape(50, 4)[:, [0, 2, 1, 3]]
    scores = rng.uniform(0, 1, 50)
    np.testing.assert_allclose(rescoring_tf.rescore_tf(scores, pose, boxes).numpy(),
                               rescoring.rescore(scores, pose, boxes), rtol=1e-5, atol=1e-7)


def test_bad_inputs():
    with pytest.raises(ValueError, match="pose2d"):
        rescoring.rescore([0.5], np.zeros((1, 13, 3)), BOX)
    with pytest.raises(ValueError, match="boxes"):
        rescoring.rescore([0.5], np.zeros((1, 13, 2)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="pose2d has non-finite"):
        rescoring.rescore([0.5], np.full((1, 13, 2), np.nan), BOX)
    with pytest.raises(ValueError, match="sigma_b"):
        rescoring.rescore([0.5], np.zeros((1, 13, 2)), BOX, sigma_b=0.0)
