"""lcr_tf.contracts.boxes (NumPy IoU) against hand-computed values, and against its TensorFlow twin."""

import subprocess
import sys

import numpy as np
import pytest

from lcr_tf.contracts import boxes


def test_iou_of_hand_made_boxes():
    a = [[0, 0, 10, 10]]
    b = [[5, 5, 15, 15], [2, 2, 4, 4], [0, 0, 10, 10], [20, 20, 30, 30], [10, 0, 20, 10], [8, 8, 2, 2]]
    np.testing.assert_allclose(boxes.iou(a, b), [[1 / 7, 0.04, 1.0, 0.0, 0.0, 0.0]], rtol=1e-12)


def test_plus_one_widths():
    # [0, 0, 9, 9] spans 10 x 10 pixels; [5, 5, 14, 14] overlaps it on 5 x 5 of them: 25 / 175.
    got = boxes.iou([[0, 0, 9, 9]], [[5, 5, 14, 14], [0, 0, 0, 0]], plus_one=True)
    np.testing.assert_allclose(got, [[1 / 7, 0.01]], rtol=1e-12)
    assert boxes.areas([[0, 0, 0, 0]], plus_one=True)[0] == 1.0
    assert boxes.areas([[0, 0, 0, 0]])[0] == 0.0


@pytest.mark.parametrize("plus_one", [False, True])
def test_numpy_and_tensorflow_iou_agree(plus_one):
    from lcr_tf.ops import box_ops

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 50, (2, 7, 2))
    wh = rng.uniform(-5, 30, (2, 7, 2))  # some inverted
    a, b = np.concatenate([xy, xy + wh], -1)
    np.testing.assert_allclose(box_ops.iou(a, b, plus_one=plus_one).numpy(), boxes.iou(a, b, plus_one),
                               rtol=1e-5, atol=1e-7)


def test_numpy_post_processing_loads_no_tensorflow():
    """The NumPy PPI, decoding, rescoring and placement run where TensorFlow is not installed."""
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "from lcr_tf.postprocess import decoding, integration, placement, rescoring\n"
            "from lcr_tf.contracts import boxes\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
