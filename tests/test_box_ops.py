import math

import numpy as np
import ref_detectron_rpn as ref
import tensorflow as tf

from lcr_tf.ops import box_ops


def _iou_reference(a, b):
    """Pairwise IoU by loops, continuous convention, empty boxes -> 0."""
    out = np.zeros((len(a), len(b)))
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            area_p = max(0.0, p[2] - p[0]) * max(0.0, p[3] - p[1])
            area_q = max(0.0, q[2] - q[0]) * max(0.0, q[3] - q[1])
            union = area_p + area_q - iw * ih
            out[i, j] = iw * ih / union if union > 0 else 0.0
    return out


def test_iou_of_hand_made_boxes():
    a = [[0, 0, 10, 10]]
    b = [[5, 5, 15, 15],    # overlap 5x5 = 25, union 175
         [2, 2, 4, 4],      # nested: 4 / 100
         [0, 0, 10, 10],    # identical
         [20, 20, 30, 30],  # disjoint
         [10, 0, 20, 10],   # touching along an edge
         [0, 0, 20, 5]]     # overlap 10x5 = 50, union 100 + 100 - 50
    got = box_ops.iou(a, b).numpy()
    np.testing.assert_allclose(got, [[1 / 7, 0.04, 1.0, 0.0, 0.0, 1 / 3]], rtol=1e-6)


def test_iou_of_empty_and_inverted_boxes_is_zero_not_nan():
    boxes = [[3, 3, 3, 8],    # zero width
             [5, 5, 5, 5],    # a point
             [8, 8, 2, 2],    # inverted
             [0, 0, 10, 10]]
    got = box_ops.iou(boxes, boxes).numpy()
    assert np.all(np.isfinite(got))
    expected = np.zeros((4, 4))
    expected[3, 3] = 1.0
    np.testing.assert_array_equal(got, expected)


def test_iou_matches_a_loop_reference_and_broadcasts_over_batches():
    rng = np.random.default_rng(0)

    def boxes(*shape):
        xy = rng.uniform(0, 50, shape + (2,))
        return np.concatenate([xy, xy + rng.uniform(0, 30, shape + (2,))], -1)

    a, b, shared = boxes(3, 6), boxes(3, 5), boxes(4)
    batched = box_ops.iou(a, b).numpy()
    against_shared = box_ops.iou(a, shared).numpy()
    assert batched.shape == (3, 6, 5) and against_shared.shape == (3, 6, 4)
    for i in range(3):
        np.testing.assert_allclose(batched[i], _iou_reference(a[i], b[i]), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(against_shared[i], _iou_reference(a[i], shared), rtol=1e-10, atol=1e-12)
    assert batched.dtype == np.float64  # computes in the dtype of its input


def test_box_areas():
    areas = box_ops.box_areas([[0, 0, 4, 3], [1, 1, 1, 9], [5, 5, 2, 9], [-2, -1, 2, 1]]).numpy()
    np.testing.assert_array_equal(areas, [12, 0, 0, 8])
    assert areas.dtype == np.float32  # int input -> float32


def test_encode_deltas_hand_computed_with_and_without_weights():
    anchor = [0.0, 0.0, 10.0, 20.0]    # centre (5, 10), size 10 x 20
    box = [2.0, 4.0, 22.0, 24.0]       # centre (12, 14), size 20 x 20
    np.testing.assert_allclose(box_ops.encode_deltas(box, anchor).numpy(),
                               [0.7, 0.2, math.log(2.0), 0.0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(box_ops.encode_deltas(box, anchor, weights=(10, 10, 5, 5)).numpy(),
                               [7.0, 2.0, 5 * math.log(2.0), 0.0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(box_ops.decode_deltas([0.7, 0.2, math.log(2.0), 0.0], anchor).numpy(),
                               box, rtol=1e-6)


def test_encode_decode_round_trip_broadcasting_anchors():
    rng = np.random.default_rng(3)
    xy = rng.uniform(-50, 500, (2, 40, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 300, (2, 40, 2))], -1)
    axy = rng.uniform(-50, 500, (40, 2))
    anchors = np.concatenate([axy, axy + rng.uniform(8, 300, (40, 2))], -1)
    for weights in [(1, 1, 1, 1), (10.0, 10.0, 5.0, 5.0)]:
        deltas = box_ops.encode_deltas(boxes, anchors, weights)
        assert deltas.shape == (2, 40, 4)
        back = box_ops.decode_deltas(deltas, anchors, weights, clip=None).numpy()
        np.testing.assert_allclose(back, boxes, rtol=1e-9, atol=1e-9)


def test_decode_clips_dw_dh_from_above_only():
    anchor = [0.0, 0.0, 16.0, 16.0]
    wide = box_ops.decode_deltas([0.0, 0.0, 20.0, 20.0], anchor).numpy()
    # The side is bounded at 16 * exp(log(1000 / 16)) = 1000 px, centred on the anchor's centre.
    np.testing.assert_allclose(wide, [8 - 500, 8 - 500, 8 + 500, 8 + 500], rtol=1e-5)
    unclipped = box_ops.decode_deltas([0.0, 0.0, 20.0, 20.0], anchor, clip=None).numpy()
    assert unclipped[2] - unclipped[0] > 1e9
    custom = box_ops.decode_deltas([0.0, 0.0, 20.0, 0.0], anchor, clip=math.log(2.0)).numpy()
    np.testing.assert_allclose(custom, [-8, 0, 24, 16], rtol=1e-6)
    # No lower bound: a very negative dw gives a tiny box (centred at 0 so float32 resolves it).
    tiny = box_ops.decode_deltas([0.0, 0.0, -20.0, -20.0], [-8.0, -8.0, 8.0, 8.0]).numpy()
    np.testing.assert_allclose(tiny, 8 * math.exp(-20) * np.array([-1, -1, 1, 1]), rtol=1e-5)


def test_encode_of_empty_padding_boxes_is_finite():
    deltas = box_ops.encode_deltas(np.zeros((3, 4)), [[0, 0, 0, 0], [0, 0, 10, 10], [5, 5, 5, 5]]).numpy()
    assert np.all(np.isfinite(deltas))


def test_clip_boxes_shared_and_per_image_sizes():
    boxes = np.array([[[-5, -5, 50, 30], [10, 20, 200, 300], [300, 300, 400, 400]],
                      [[-5, -5, 50, 30], [10, 20, 200, 300], [300, 300, 400, 400]]], np.float32)
    shared = box_ops.clip_boxes(boxes, (100, 120)).numpy()  # height 100, width 120
    np.testing.assert_array_equal(shared[0], [[0, 0, 50, 30], [10, 20, 120, 100], [120, 100, 120, 100]])
    per_image = box_ops.clip_boxes(boxes, np.array([[[100, 120]], [[40, 500]]])).numpy()
    np.testing.assert_array_equal(per_image[0], shared[0])
    np.testing.assert_array_equal(per_image[1], [[0, 0, 50, 30], [10, 20, 200, 40], [300, 40, 400, 40]])
    assert np.all(box_ops.box_areas(per_image[:, 2]).numpy() == 0)  # outside the image: empty


def test_ops_run_inside_tf_function():
    @tf.function
    def f(a, b):
        deltas = box_ops.encode_deltas(a, b)
        return box_ops.iou(a, b), box_ops.clip_boxes(box_ops.decode_deltas(deltas, b), (50.0, 50.0))

    a = tf.constant([[0.0, 0.0, 10.0, 10.0], [40.0, 40.0, 70.0, 60.0]])
    ious, clipped = f(a, a)
    np.testing.assert_allclose(np.diag(ious.numpy()), [1.0, 1.0])
    np.testing.assert_allclose(clipped.numpy(), [[0, 0, 10, 10], [40, 40, 50, 50]], atol=1e-4)


def test_iou_gradient_is_finite_on_empty_boxes():
    boxes = tf.Variable([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 3.0, 3.0]])
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(box_ops.iou(boxes, boxes))
    grad = tape.gradient(total, boxes).numpy()
    assert np.all(np.isfinite(grad))


# ---------------------------------------------------------------------------------------------------
# Detectron's +1 convention, against tests/ref_detectron_rpn.py (utils/boxes.py's bbox_transform and
# clip_tiled_boxes)
# ---------------------------------------------------------------------------------------------------


def test_decode_plus_one_by_hand():
    anchor = [0.0, 0.0, 15.0, 15.0]  # 16 x 16 px in the +1 convention, centre x1 + 0.5 w = 8
    # dx 0.5 moves the centre by 8 px to 16, dw log 2 doubles the width to 32: [16 - 16, 16 + 16 - 1].
    got = box_ops.decode_deltas([0.5, 0.0, math.log(2.0), 0.0], anchor, plus_one=True).numpy()
    np.testing.assert_allclose(got, [0, 0, 31, 15], atol=1e-5)
    # A zero delta gives the anchor back; dw beyond log(1000 / 16) is clipped there: 1000 px wide.
    np.testing.assert_allclose(box_ops.decode_deltas([0.0] * 4, anchor, plus_one=True).numpy(), anchor, atol=1e-6)
    wide = box_ops.decode_deltas([0.0, 0.0, 20.0, 0.0], anchor, plus_one=True).numpy()
    np.testing.assert_allclose(wide, [8 - 500, 0, 8 + 500 - 1, 15], rtol=1e-5)


def test_decode_plus_one_matches_detectron_bbox_transform():
    rng = np.random.default_rng(7)
    xy = rng.integers(-200, 800, (500, 2)).astype(np.float64) - rng.choice([0.0, 0.5], (500, 2))
    anchors = np.concatenate([xy, xy + rng.integers(0, 400, (500, 2))], -1)  # Detectron's anchors: k / 2 px
    deltas = rng.normal(0, 1.0, (500, 4)).astype(np.float32)
    deltas[::7, 2:] = rng.uniform(4.2, 9.0, (len(deltas[::7]), 2))  # beyond BBOX_XFORM_CLIP = 4.135
    deltas[::11, 2:] = rng.uniform(-6.0, -3.0, (len(deltas[::11]), 2))  # below one pixel wide
    expected = ref._bbox_transform(anchors, deltas)  # float32, as Detectron computes it
    got = box_ops.decode_deltas(deltas, anchors.astype(np.float32), plus_one=True).numpy()
    assert got.dtype == np.float32
    # Both in float32, with bbox_transform's order of operations: a float32 step of the coordinate's
    # size at most (TensorFlow's exp against NumPy's; clipped boxes reach ~25000 px, steps of 2e-3).
    np.testing.assert_allclose(got, expected, rtol=2.5e-7, atol=2e-4)
    assert np.any(np.abs(deltas[:, 2:]) > ref.BBOX_XFORM_CLIP)


def test_clip_boxes_plus_one_matches_clip_tiled_boxes():
    boxes = np.array([[[-5, -5, 50, 30], [10, 20, 200, 300], [300, 300, 400, 400], [-9, 2, -3, 7]],
                      [[-5, -5, 50, 30], [10, 20, 200, 300], [300, 300, 400, 400], [-9, 2, -3, 7]]], np.float32)
    shared = box_ops.clip_boxes(boxes, (100, 120), plus_one=True).numpy()  # height 100, width 120
    np.testing.assert_array_equal(shared[0], [[0, 0, 50, 30], [10, 20, 119, 99], [119, 99, 119, 99], [0, 2, 0, 7]])
    per_image = box_ops.clip_boxes(boxes, np.array([[[100, 120]], [[41, 501]]]), plus_one=True).numpy()
    for b, size in enumerate([(100, 120), (41, 501)]):
        np.testing.assert_array_equal(per_image[b], ref._clip_tiled_boxes(boxes[b].copy(), size))
    # Outside the image a box becomes a sliver along the border: 1 px wide or high in the +1 convention.
    np.testing.assert_array_equal(box_ops.box_areas(per_image[0, 2:], plus_one=True).numpy(), [1, 6])


def test_detectron_encoding_inverts_its_decoding():
    """encode_deltas(plus_one=True) is Detectron's bbox_transform_inv: the inverse of its bbox_transform,
    and on a hand-computed case: anchor [0, 0, 15, 15] (w = 16, centre 8) and box [4, 2, 35, 17] (w = 32,
    centre 20; h = 16, centre 10) give dx = 12 / 16, dy = 2 / 16, dw = log 2, dh = 0."""
    anchors = tf.constant([[0.0, 0.0, 15.0, 15.0]])
    deltas = box_ops.encode_deltas(tf.constant([[4.0, 2.0, 35.0, 17.0]]), anchors, plus_one=True).numpy()
    np.testing.assert_allclose(deltas, [[0.75, 0.125, np.log(2.0), 0.0]], atol=1e-6)
    rng = np.random.default_rng(0)
    anchors = rng.uniform(0, 200, (50, 2))
    anchors = np.concatenate([anchors, anchors + rng.uniform(5, 300, (50, 2))], 1).astype(np.float32)
    d = rng.normal(0, 0.3, (50, 4)).astype(np.float32)
    boxes = box_ops.decode_deltas(d, anchors, plus_one=True)
    np.testing.assert_allclose(box_ops.encode_deltas(boxes, anchors, plus_one=True).numpy(), d, atol=2e-5)
