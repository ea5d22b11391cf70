import math

import numpy as np
import pytest
import ref_detectron_rpn as ref
import tensorflow as tf
from ref_detectron_rpn import generate_anchors_np, proposals_np

from lcr_tf.ops import anchor_boxes, box_ops
from lcr_tf.ops.proposals import generate_proposals


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


# Zero deltas decode every anchor to itself, so the anchors are the candidate boxes.
HAND_ANCHORS = np.array([
    [10, 10, 50, 50],      # A
    [12, 12, 52, 52],      # B: IoU(A, B) = 38² / (2 * 40² - 38²) = 0.822
    [100, 100, 140, 140],  # C: far from both
    [200, 200, 201, 201],  # D: 1 x 1 px
], np.float32)
HAND_LOGITS = np.array([[2.0, 3.0, 1.0, 5.0]], np.float32)


def _hand_case(**kwargs):
    args = dict(image_size=(300, 300), pre_nms_top_n=10, post_nms_top_n=5, nms_iou=0.7, min_size=2.0)
    args.update(kwargs)
    boxes, scores, valid = generate_proposals(HAND_LOGITS, np.zeros((1, 4, 4), np.float32), HAND_ANCHORS,
                                              **args)
    return boxes.numpy(), scores.numpy(), valid.numpy()


@pytest.mark.parametrize("nms_method", ["combined", "padded"])
def test_overlapping_lower_score_is_suppressed_tiny_box_dropped_rest_padded(nms_method):
    boxes, scores, valid = _hand_case(nms_method=nms_method)
    # D (best logit) is narrower than min_size; A overlaps the better B by IoU 0.82 > 0.7.
    np.testing.assert_array_equal(valid, [[True, True, False, False, False]])
    np.testing.assert_allclose(boxes[0, :2], HAND_ANCHORS[[1, 2]])
    np.testing.assert_allclose(scores[0, :2], _sigmoid([3.0, 1.0]), rtol=1e-6)
    assert np.all(boxes[0, 2:] == 0) and np.all(scores[0, 2:] == 0)


def test_iou_threshold_and_min_size_are_honoured():
    _, scores, valid = _hand_case(nms_iou=0.9)  # 0.82 < 0.9: A survives
    np.testing.assert_allclose(scores[0, valid[0]], _sigmoid([3.0, 2.0, 1.0]), rtol=1e-6)
    boxes, _, valid = _hand_case(min_size=0.0)  # D is kept, first
    np.testing.assert_allclose(boxes[0, valid[0]], HAND_ANCHORS[[3, 1, 2]])
    _, _, valid = _hand_case(pre_nms_top_n=2)  # only D and B are candidates, D is too small
    assert valid.sum() == 1


def test_deltas_are_decoded_and_boxes_clipped_to_the_image():
    anchors = np.array([[0, 0, 10, 10], [-10, -10, 30, 30], [400, 400, 450, 450]], np.float32)
    deltas = np.zeros((1, 3, 4), np.float32)
    deltas[0, 0] = [0.5, 0.0, math.log(2.0), 0.0]  # centre (10, 5), size 20 x 10
    boxes, _, valid = generate_proposals(np.array([[3.0, 2.0, 1.0]]), deltas, anchors, (100, 120),
                                         pre_nms_top_n=3, post_nms_top_n=3, nms_iou=0.99)
    # The third box lies wholly outside the 100 x 120 image: it is empty once clipped and dropped.
    np.testing.assert_array_equal(valid, [[True, True, False]])
    np.testing.assert_allclose(boxes[0, :2].numpy(), [[0, 0, 20, 10], [0, 0, 30, 30]], atol=1e-5)


def _greedy_nms_reference(boxes, logits, iou_threshold, max_output):
    """Sort by logit, keep a box unless it overlaps a kept one by more than the threshold."""
    kept = []
    for i in np.argsort(-logits, kind="stable"):
        b = boxes[i]
        ok = True
        for j in kept:
            k = boxes[j]
            iw = max(0.0, min(b[2], k[2]) - max(b[0], k[0]))
            ih = max(0.0, min(b[3], k[3]) - max(b[1], k[1]))
            inter = iw * ih
            union = (b[2] - b[0]) * (b[3] - b[1]) + (k[2] - k[0]) * (k[3] - k[1]) - inter
            if inter / union > iou_threshold:
                ok = False
                break
        if ok:
            kept.append(i)
        if len(kept) == max_output:
            break
    return np.array(kept, np.int64)


def _random_rpn(seed, batch, num_anchor_boxes):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (num_anchor_boxes, 2))
    anchors = np.concatenate([xy, xy + rng.uniform(5, 80, (num_anchor_boxes, 2))], -1).astype(np.float32)
    logits = rng.normal(size=(batch, num_anchor_boxes)).astype(np.float32)
    return logits, np.zeros((batch, num_anchor_boxes, 4), np.float32), anchors


@pytest.mark.parametrize("nms_method", ["combined", "padded"])
def test_random_boxes_match_a_greedy_reference(nms_method):
    logits, deltas, anchors = _random_rpn(0, 2, 400)
    boxes, scores, valid = generate_proposals(logits, deltas, anchors, (300, 300), pre_nms_top_n=300,
                                              post_nms_top_n=100, nms_iou=0.5, nms_method=nms_method)
    for b in range(2):
        top = np.argsort(-logits[b], kind="stable")[:300]
        clipped = np.clip(anchors[top], 0, 300)
        keep = _greedy_nms_reference(clipped, logits[b, top], 0.5, 100)
        assert valid[b].numpy().sum() == len(keep)
        # float32 centre/size round trip of the zero-delta decode: ~1e-5 px.
        np.testing.assert_allclose(boxes[b, :len(keep)].numpy(), clipped[keep], atol=1e-4)
        np.testing.assert_allclose(scores[b, :len(keep)].numpy(), _sigmoid(logits[b, top][keep]), rtol=1e-6)


@pytest.mark.parametrize("nms_method", ["combined", "padded"])
def test_fewer_survivors_than_outputs_dropped_boxes_and_negative_logits(nms_method):
    """Every logit below -1 (combined_non_max_suppression pads with score -1), boxes dropped by min_size
    (non_max_suppression_padded multiplies masked scores by 0), fewer survivors than outputs."""
    logits, deltas, anchors = _random_rpn(8, 2, 400)
    logits = logits - 5.0
    boxes, scores, valid = generate_proposals(logits, deltas, anchors, (300, 300), pre_nms_top_n=400,
                                              post_nms_top_n=400, nms_iou=0.5, min_size=20.0,
                                              nms_method=nms_method)
    for b in range(2):
        top = np.argsort(-logits[b], kind="stable")
        clipped = np.clip(anchors[top], 0, 300)
        sizes = clipped[:, 2:] - clipped[:, :2]
        candidates = np.all(sizes >= 20.0, axis=1)
        keep = _greedy_nms_reference(clipped[candidates], logits[b, top][candidates], 0.5, 400)
        assert 0 < len(keep) < 400 and candidates.sum() < 400
        assert valid[b].numpy().sum() == len(keep)
        np.testing.assert_allclose(boxes[b, :len(keep)].numpy(), clipped[candidates][keep], atol=1e-4)
        np.testing.assert_allclose(scores[b, :len(keep)].numpy(), _sigmoid(logits[b, top][candidates][keep]),
                                   rtol=1e-6)


def test_images_of_a_batch_are_independent():
    logits, deltas, anchors = _random_rpn(1, 3, 200)
    deltas = np.random.default_rng(2).normal(0, 0.2, deltas.shape).astype(np.float32)
    sizes = np.array([[240, 260], [150, 300], [280, 120]], np.float32)
    batch = generate_proposals(logits, deltas, anchors, sizes, 150, 60, nms_iou=0.6, min_size=4.0)
    order = [2, 0, 1]
    shuffled = generate_proposals(logits[order], deltas[order], anchors, sizes[order], 150, 60,
                                  nms_iou=0.6, min_size=4.0)
    for b in range(3):
        alone = generate_proposals(logits[b:b + 1], deltas[b:b + 1], anchors, sizes[b], 150, 60,
                                   nms_iou=0.6, min_size=4.0)
        # Same selection; values equal up to the last float32 bit of vectorised kernels.
        np.testing.assert_array_equal(batch[2].numpy()[b], alone[2].numpy()[0])
        np.testing.assert_array_equal(shuffled[2].numpy()[order.index(b)], alone[2].numpy()[0])
        for got_batch, got_shuffled, got_alone in zip(batch[:2], shuffled[:2], alone[:2]):
            np.testing.assert_allclose(got_batch.numpy()[b], got_alone.numpy()[0], rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(got_shuffled.numpy()[order.index(b)], got_alone.numpy()[0],
                                       rtol=1e-6, atol=1e-6)
    assert not np.array_equal(batch[0].numpy()[0], batch[0].numpy()[1])
    # Per-image sizes are honoured.
    assert np.all(batch[0].numpy()[2, :, 2] <= 120) and np.all(batch[0].numpy()[1, :, 3] <= 150)


@pytest.mark.parametrize("nms_method", ["combined", "padded"])
def test_inside_tf_function_with_static_output_shapes(nms_method):
    logits, deltas, anchors = _random_rpn(4, 2, 120)

    @tf.function(input_signature=[tf.TensorSpec([None, None]), tf.TensorSpec([None, None, 4]),
                                  tf.TensorSpec([None, 4])])
    def propose(lg, dl, an):
        out = generate_proposals(lg, dl, an, (300.0, 300.0), pre_nms_top_n=500, post_nms_top_n=32,
                                 nms_method=nms_method)
        assert [t.shape.as_list() for t in out] == [[None, 32, 4], [None, 32], [None, 32]]
        return out

    in_graph = propose(logits, deltas, anchors)
    eager = generate_proposals(logits, deltas, anchors, (300, 300), 500, 32, nms_method=nms_method)
    for g, e in zip(in_graph, eager):
        np.testing.assert_array_equal(g.numpy(), e.numpy())
    # pre_nms_top_n above the anchor count keeps them all (eagerly the count is static).
    assert eager[2].numpy().sum() > 0


def test_outputs_carry_no_gradient():
    logits, deltas, anchors = _random_rpn(5, 1, 50)
    logits, deltas = tf.Variable(logits), tf.Variable(deltas)
    with tf.GradientTape(persistent=True) as tape:
        boxes, scores, _ = generate_proposals(logits, deltas, anchors, (300, 300), 50, 10)
        total = tf.reduce_sum(boxes) + tf.reduce_sum(scores)
    assert tape.gradient(total, deltas) is None and tape.gradient(total, logits) is None


def test_bad_arguments_are_named():
    logits, deltas, anchors = _random_rpn(6, 1, 10)
    with pytest.raises(ValueError, match="nms_method"):
        generate_proposals(logits, deltas, anchors, (300, 300), 10, 5, nms_method="soft")
    with pytest.raises(ValueError, match="post_nms_top_n"):
        generate_proposals(logits, deltas, anchors, (300, 300), 10, 0)
    with pytest.raises(ValueError, match="pre_nms_top_n"):
        generate_proposals(logits, deltas, anchors, (300, 300), 2.5, 5)


# ---------------------------------------------------------------------------------------------------
# Detectron's convention, against tests/ref_detectron_rpn.py (proposals_for_one_image)
# ---------------------------------------------------------------------------------------------------

DETECTRON_SIZES = (32, 64, 128, 256, 512)
DETECTRON_RATIOS = (0.5, 1.0, 2.0)


def _detectron_rpn_outputs(seed, batch, feature_height, feature_width, num_anchors):
    """(B, H, W, A) logits and (B, H, W, A, 4) deltas that exercise every rule of Detectron's proposals.

    The logits are a shuffled even grid over [-4, 4]: their float32 sigmoids are all distinct (ties would
    leave Detectron's order to its unstable sorts). Deltas: mostly small (heavily overlapping boxes around
    the anchors), some with dw, dh beyond the clip, some shrinking boxes below a few pixels (the size
    filter), some moving centres far out of the image (clipped to slivers along its border).
    """
    rng = np.random.default_rng(seed)
    shape = (batch, feature_height, feature_width, num_anchors)
    count = int(np.prod(shape))
    logits = rng.permutation(np.linspace(-4.0, 4.0, count)).reshape(shape).astype(np.float32)
    deltas = rng.normal(0.0, 0.3, shape + (4,))
    kind = rng.choice(4, shape, p=[0.7, 0.1, 0.1, 0.1])
    deltas[kind == 1, 2:] += rng.uniform(4.5, 8.0, ((kind == 1).sum(), 2))
    deltas[kind == 2, 2:] -= rng.uniform(2.5, 5.0, ((kind == 2).sum(), 2))
    deltas[kind == 3, :2] += rng.choice([-6.0, 6.0], ((kind == 3).sum(), 2))
    return logits, deltas.astype(np.float32)


def _detectron_case(logits, deltas, sizes, im_scale, rpn_min_size, pre, post, nms_thresh, nms_method):
    """Ours on the batch and the reference per image: [(ours boxes, scores), (reference boxes, scores)]."""
    batch, height, width, num_anchors = logits.shape
    anchors = anchor_boxes.generate_anchors(height, width, 16, DETECTRON_SIZES, DETECTRON_RATIOS,
                                            convention="detectron")
    boxes, scores, valid = generate_proposals(
        logits.reshape(batch, -1), deltas.reshape(batch, -1, 4), anchors, np.array(sizes), pre, post,
        nms_iou=nms_thresh, min_size=rpn_min_size * np.float32(im_scale), nms_method=nms_method,
        convention="detectron")
    cell = generate_anchors_np(16, DETECTRON_SIZES, DETECTRON_RATIOS)
    out = []
    for b in range(batch):
        probs = tf.sigmoid(logits[b]).numpy()  # the RPN's probabilities, Detectron's input
        assert len(np.unique(probs)) == probs.size
        expected = proposals_np(probs, deltas[b], sizes[b][0], sizes[b][1], im_scale, cell, 16, pre, post,
                                nms_thresh, rpn_min_size)
        mask = valid[b].numpy()
        out.append(((boxes[b].numpy()[mask], scores[b].numpy()[mask]), expected))
        # Padding after the proposals, as in the centred convention.
        assert not mask[mask.sum():].any() and np.all(boxes[b].numpy()[~mask] == 0)
    return out


@pytest.mark.parametrize("nms_method", ["combined", "padded"])
@pytest.mark.parametrize("feature, sizes, im_scale, rpn_min_size, pre, post, nms_thresh", [
    # Odd image sizes per image, smaller than the feature map's 208 x 272; min size 16 * 0.75 = 12 px.
    ((13, 17), [(199, 261), (150, 271)], 0.75, 16.0, 2000, 300, 0.7),
    # Detectron's defaults (RPN_MIN_SIZE 0), all anchors before NMS, fewer proposals than post_nms_top_n.
    ((9, 11), [(141, 175), (144, 176)], 1.0, 0.0, 10 ** 6, 2000, 0.7),
    # A lower threshold and a min size of 8 * 0.5 = 4 px.
    ((12, 8), [(187, 127), (101, 99)], 0.5, 8.0, 600, 100, 0.5),
])
def test_detectron_convention_matches_the_reference(nms_method, feature, sizes, im_scale, rpn_min_size, pre,
                                                    post, nms_thresh):
    logits, deltas = _detectron_rpn_outputs(sum(feature), len(sizes), *feature, 15)
    for (boxes, scores), (ref_boxes, ref_scores) in _detectron_case(
            logits, deltas, sizes, im_scale, rpn_min_size, pre, post, nms_thresh, nms_method):
        # The same boxes in the same order: float32 decoding, a float32 step of ~1000 px at most.
        assert boxes.shape == ref_boxes.shape and len(boxes) > 50
        np.testing.assert_allclose(boxes, ref_boxes, rtol=0, atol=1e-3)
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)


def test_detectron_cases_exercise_the_clip_the_filters_and_nms():
    """The cases above reach every rule: slivers kept on the border, small boxes dropped, overlaps."""
    logits, deltas = _detectron_rpn_outputs(30, 2, 13, 17, 15)
    (boxes, _), _ = _detectron_case(logits, deltas, [(199, 261), (150, 271)], 0.75, 16.0, 2000, 300, 0.7,
                                    "combined")[0]
    width, height = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    assert np.all(width >= 12) and np.all(height >= 12)
    assert np.any(boxes[:, 2] == 260) and np.any(boxes[:, 0] == 0)  # clipped to [0, W - 1]
    no_min = _detectron_case(logits, deltas, [(199, 261), (150, 271)], 1.0, 0.0, 2000, 300, 0.7, "combined")
    width = no_min[0][0][0][:, 2] - no_min[0][0][0][:, 0] + 1
    assert np.any(width == 1)  # a box right of the image: a 1 px sliver on its border, kept without min size
    ious = box_ops.iou(boxes, boxes, plus_one=True).numpy()
    assert ious[np.triu_indices(len(boxes), 1)].max() < 0.7  # and below, pairs up to the threshold
    assert np.sort(ious[np.triu_indices(len(boxes), 1)])[-5:].min() > 0.65


@pytest.mark.parametrize("nms_method", ["combined", "padded"])
def test_detectron_nms_suppresses_at_equal_iou(nms_method):
    # Zero deltas decode each anchor to itself. +1 IoU of A and B: 10 x 10 inside 10 x 20 = 100 / 200 = 0.5.
    anchors = np.array([[0, 0, 9, 19], [0, 0, 9, 9], [30, 30, 49, 39]], np.float32)
    logits = np.array([[2.0, 1.0, 0.0]], np.float32)

    def kept(threshold):
        _, scores, valid = generate_proposals(logits, np.zeros((1, 3, 4), np.float32), anchors, (100, 100), 3, 3,
                                              nms_iou=threshold, nms_method=nms_method, convention="detectron")
        return scores.numpy()[valid.numpy()]

    # cython_nms: suppressed when IoU >= thresh; the continuous IoU of the same boxes would be 81/171.
    np.testing.assert_allclose(kept(0.5), _sigmoid([2.0, 0.0]), rtol=1e-6)
    np.testing.assert_allclose(kept(float(np.nextafter(np.float32(0.5), np.float32(1)))),
                               _sigmoid([2.0, 1.0, 0.0]), rtol=1e-6)
    np.testing.assert_array_equal(ref._nms(np.hstack([anchors, _sigmoid(logits[0])[:, None]]), 0.5), [0, 2])


def test_centred_padded_nms_equals_combined_when_boxes_are_dropped():
    """Dropped boxes (-inf logits) must not disturb the tiled NMS, which multiplies masked scores by 0."""
    height, width = 13, 17
    anchors = anchor_boxes.generate_anchors(height, width, 16, DETECTRON_SIZES, DETECTRON_RATIOS)
    logits, deltas = _detectron_rpn_outputs(5, 2, height, width, 15)
    logits, deltas = logits.reshape(2, -1), deltas.reshape(2, -1, 4)
    sizes = np.array([[199, 261], [150, 271]], np.float32)
    for min_size in [12.0, 0.0]:
        combined, padded = (generate_proposals(logits, deltas, anchors, sizes, 2000, 300, min_size=min_size,
                                               nms_method=method) for method in ["combined", "padded"])
        np.testing.assert_array_equal(combined[2].numpy(), padded[2].numpy())
        np.testing.assert_allclose(combined[0].numpy(), padded[0].numpy(), atol=1e-6)
        np.testing.assert_allclose(combined[1].numpy(), padded[1].numpy(), rtol=1e-6)
    # The centred convention is today's, whether named or not.
    named = generate_proposals(logits, deltas, anchors, sizes, 2000, 300, convention="centred")
    for got, default in zip(named, combined):
        np.testing.assert_array_equal(got.numpy(), default.numpy())
    with pytest.raises(ValueError, match="convention"):
        generate_proposals(logits, deltas, anchors, sizes, 2000, 300, convention="caffe")
