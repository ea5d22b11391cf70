"""Tests of lcr_tf.training.losses (eq 1-5): hand-computed values, zero at the target, masking, tf.function."""

import math

import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.training import losses


def _softplus(x):
    return math.log1p(math.exp(x))


def test_smooth_l1_is_eq5():
    x = np.array([0.0, 0.5, -0.5, 0.999, 1.0, 2.0, -3.0], np.float32)
    np.testing.assert_allclose(losses.smooth_l1(x).numpy(),
                               [0.0, 0.125, 0.125, 0.5 * 0.999 ** 2, 0.5, 1.5, 2.5], rtol=1e-6)
    beta = 1.0 / 9.0
    np.testing.assert_allclose(losses.smooth_l1(np.array([0.1, -1.0]), beta).numpy(),
                               [0.5 * 0.01 / beta, 1.0 - 0.5 * beta], rtol=1e-6)
    with pytest.raises(ValueError, match="beta must be > 0"):
        losses.smooth_l1(x, 0.0)


def test_rpn_objectness_loss_by_hand():
    logits = np.array([[0.0, 2.0, -1.0, 5.0], [3.0, 0.0, 0.0, 0.0]], np.float32)
    labels = np.array([[1, 0, -1, 1], [-1, -1, 0, -1]])
    # sampled: (0, 1)->log 2, (2, 0)->softplus(2), (5, 1)->softplus(-5), (0, 0)->log 2; 4 sampled
    expected = (2 * math.log(2.0) + _softplus(2.0) + _softplus(-5.0)) / 4
    assert losses.rpn_objectness_loss(logits, labels).numpy() == pytest.approx(expected, rel=1e-6)


def test_rpn_objectness_loss_is_zero_when_confidently_right_and_zero_when_nothing_sampled():
    labels = np.array([[1, 0, -1, 0]])
    logits = np.array([[100.0, -100.0, 3.0, -100.0]], np.float32)
    assert losses.rpn_objectness_loss(logits, labels).numpy() == pytest.approx(0.0, abs=1e-30)
    assert losses.rpn_objectness_loss(logits, -np.ones_like(labels)).numpy() == 0.0


def test_rpn_box_loss_by_hand():
    targets = np.zeros((1, 3, 4), np.float32)
    deltas = np.array([[[0.05, 0.0, 1.0, 0.0],     # positive
                        [9.0, 9.0, 9.0, 9.0],      # negative: ignored
                        [0.0, -0.2, 0.0, 0.0]]],   # positive
                      np.float32)
    labels = np.array([[1, 0, 1]])
    beta = 1.0 / 9.0
    per = [0.5 * 0.05 ** 2 / beta + (1.0 - 0.5 * beta), 0.2 - 0.5 * beta]
    expected = sum(per) / 3  # three sampled anchors
    assert losses.rpn_box_loss(deltas, targets, labels).numpy() == pytest.approx(expected, rel=1e-6)
    assert losses.rpn_box_loss(targets, targets, labels).numpy() == 0.0
    # beta = 1 is eq 5
    per1 = [0.5 * 0.05 ** 2 + 0.5, 0.5 * 0.04]
    assert losses.rpn_box_loss(deltas, targets, labels, beta=1.0).numpy() == pytest.approx(sum(per1) / 3,
                                                                                           rel=1e-6)


def test_classification_loss_by_hand():
    logits = np.array([[[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [50.0, -50.0, 3.0]]], np.float32)
    classes = np.array([[1, 2, 0]])
    valid = np.array([[True, True, False]])
    lse = math.log(math.exp(1) + math.exp(2) + 1)
    expected = ((lse - 2.0) + math.log(3.0)) / 2
    assert losses.classification_loss(logits, classes, valid).numpy() == pytest.approx(expected, rel=1e-6)
    # An out-of-range class on a padding row is not read.
    assert losses.classification_loss(logits, np.array([[1, 2, 99]]), valid).numpy() == pytest.approx(
        expected, rel=1e-6)


def test_classification_loss_zero_at_target():
    logits = np.full((2, 3, 5), -100.0, np.float32)
    classes = np.array([[0, 4, 2], [1, 3, 0]])
    np.put_along_axis(logits, classes[..., None], 100.0, axis=-1)
    got = losses.classification_loss(logits, classes, np.ones((2, 3), bool)).numpy()
    assert got == pytest.approx(0.0, abs=1e-30)


def _regression_case():
    """K = 1 (C = 3), J = 1 (5J = 5): RoI 0 positive class 2, RoI 1 negative, RoI 2 padding."""
    targets = np.array([[[0.1, 0.2, 0.3, 0.4, 0.5], np.zeros(5), np.zeros(5)]], np.float32)
    regression = np.full((1, 3, 15), 7.0, np.float32)  # other blocks are wildly wrong
    regression[0, 0, 10:15] = [0.1, 0.2, 0.3, 0.4, 0.5]
    classes = np.array([[2, 0, 1]])
    valid = np.array([[True, True, False]])
    return regression, targets, classes, valid


def test_regression_loss_zero_at_target_ignores_other_blocks_negatives_and_padding():
    regression, targets, classes, valid = _regression_case()
    assert losses.regression_loss(regression, targets, classes, valid).numpy() == 0.0


def test_regression_loss_by_hand():
    regression, targets, classes, valid = _regression_case()
    regression[0, 0, 10] += 0.5   # 0.5 * 0.25
    regression[0, 0, 14] -= 3.0   # 3 - 0.5
    expected = (0.125 + 2.5) / 2  # two valid RoIs
    got = losses.regression_loss(regression, targets, classes, valid).numpy()
    assert got == pytest.approx(expected, rel=1e-6)
    assert losses.regression_loss(regression, targets, classes, valid, num_joints=1).numpy() == pytest.approx(
        expected, rel=1e-6)


def test_regression_loss_gradient_reaches_only_the_true_block_of_positives():
    regression, targets, classes, valid = _regression_case()
    regression[0, 0, 10:15] += 0.3
    v = tf.Variable(regression)
    with tf.GradientTape() as tape:
        loss = losses.regression_loss(v, targets, classes, valid)
    grad = tape.gradient(loss, v).numpy()
    assert np.all(grad[0, 0, 10:15] != 0)
    grad[0, 0, 10:15] = 0
    assert np.all(grad == 0)


def test_regression_loss_needs_a_known_width():
    with pytest.raises(ValueError, match="pass num_joints"):
        losses.regression_loss(np.zeros((1, 1, 21)), np.zeros((1, 1, 7)), [[1]], [[True]])


def test_total_loss():
    parts = {losses.RPN_OBJECTNESS: tf.constant(1.0), losses.RPN_BOX: tf.constant(2.0),
             losses.CLASSIFICATION: tf.constant(3.0), losses.REGRESSION: tf.constant(4.0)}
    total, named = losses.total_loss(parts)
    assert total.numpy() == 10.0
    total, named = losses.total_loss(parts, {losses.REGRESSION: 0.5, losses.RPN_BOX: 0.0})
    assert total.numpy() == 1.0 + 0.0 + 3.0 + 2.0
    assert named[losses.REGRESSION].numpy() == 2.0
    assert sum(v.numpy() for v in named.values()) == total.numpy()
    with pytest.raises(ValueError, match=r"not among the parts: \['regresion'\]"):
        losses.total_loss(parts, {"regresion": 1.0})
    with pytest.raises(ValueError, match="at least one part"):
        losses.total_loss({})


def test_all_losses_under_tf_function_and_mixed_precision():
    regression, targets, classes, valid = _regression_case()
    regression[0, 0, 11] += 2.0

    @tf.function
    def all_losses(regression, cls_logits, rpn_logits, rpn_deltas, rpn_labels):
        parts = {
            losses.RPN_OBJECTNESS: losses.rpn_objectness_loss(rpn_logits, rpn_labels),
            losses.RPN_BOX: losses.rpn_box_loss(rpn_deltas, tf.zeros_like(rpn_deltas), rpn_labels),
            losses.CLASSIFICATION: losses.classification_loss(cls_logits, classes, valid),
            losses.REGRESSION: losses.regression_loss(regression, targets, classes, valid),
        }
        return losses.total_loss(parts)

    total, named = all_losses(tf.constant(regression, tf.float16), tf.zeros((1, 3, 3), tf.bfloat16),
                              tf.zeros((1, 2)), tf.zeros((1, 2, 4)), tf.constant([[1, 0]]))
    assert named[losses.REGRESSION].dtype == tf.float32
    # float16 inputs round 2.2 to 2.19921875
    assert named[losses.REGRESSION].numpy() == pytest.approx(1.5 / 2, rel=1e-3)
    assert named[losses.CLASSIFICATION].numpy() == pytest.approx(math.log(3.0), rel=1e-5)
    assert named[losses.RPN_OBJECTNESS].numpy() == pytest.approx(math.log(2.0), rel=1e-6)
    assert total.numpy() == pytest.approx(0.75 + math.log(3.0) + math.log(2.0), rel=1e-3)
