"""RPN proposals (Faster R-CNN, paper Sec 3.1): decode anchors, clip, drop small boxes, top-k, NMS.

The proposals are constants for the rest of the network (the "approximate joint training" of the
paper, Sec 3.5): every output carries a stopped gradient.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from lcr_tf.ops import box_ops

NMS_METHODS = ("combined", "padded")

# Boxes dropped before NMS get a -inf logit and the NMS keeps only logits above float32's lowest
# finite value, so they never come out, whatever the real (finite) logits are.
_SCORE_THRESHOLD = float(np.finfo(np.float32).min)

_XYXY_TO_YXYX = [1, 0, 3, 2]  # the same permutation maps yxyx back to xyxy


def _batched_nms(boxes: tf.Tensor, logits: tf.Tensor, max_output: int, iou_threshold: float,
                 method: str) -> tuple:
    """Greedy NMS per image, IoU > ``iou_threshold`` suppresses the lower-scored box.

    (B, n, 4) xyxy boxes, (B, n) float32 logits -> (B, max_output, 4) kept boxes, (B, max_output)
    their logits, (B,) int32 counts. Kept boxes come first by decreasing logit; the rest is padding.
    """
    yxyx = tf.gather(boxes, _XYXY_TO_YXYX, axis=-1)
    if method == "combined":
        # One class: a batched C++ kernel (CPU only), 2-3 times faster than the tiled version on CPU.
        out = tf.image.combined_non_max_suppression(
            yxyx[:, :, None, :], logits[:, :, None], max_output, max_output, iou_threshold=iou_threshold,
            score_threshold=_SCORE_THRESHOLD, pad_per_class=False, clip_boxes=False)
        kept, kept_logits, counts = out.nmsed_boxes, out.nmsed_scores, out.valid_detections
    else:
        # Plain TF ops (tiled suppression): every op also has accelerator kernels.
        indices, counts = tf.image.non_max_suppression_padded(
            yxyx, logits, max_output, iou_threshold=iou_threshold, score_threshold=_SCORE_THRESHOLD,
            pad_to_max_output_size=True, canonicalized_coordinates=True)
        kept = tf.gather(yxyx, indices, batch_dims=1)
        kept_logits = tf.gather(logits, indices, batch_dims=1)
    return tf.gather(kept, _XYXY_TO_YXYX, axis=-1), kept_logits, tf.cast(counts, tf.int32)


def generate_proposals(objectness_logits, deltas, anchors, image_size, pre_nms_top_n: int,
                       post_nms_top_n: int, nms_iou: float = 0.7, min_size: float = 0.0,
                       weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
                       nms_method: str = "combined") -> tuple:
    """Turns RPN outputs into at most ``post_nms_top_n`` proposals per image.

    Per image: keep the ``pre_nms_top_n`` anchors of highest objectness, decode their deltas
    (:func:`lcr_tf.ops.box_ops.decode_deltas`), clip to the image, drop boxes narrower or shorter
    than ``min_size`` pixels and empty ones, then greedy NMS (a box whose IoU with a higher-scored kept
    box exceeds ``nms_iou`` is suppressed), best first.

    Args:
      objectness_logits: (B, N_a) float RPN logits, one per anchor.
      deltas: (B, N_a, 4) float RPN box deltas (dx, dy, dw, dh) per anchor.
      anchors: (N_a, 4) xyxy anchor boxes in image pixels (:func:`lcr_tf.ops.anchor_boxes.generate_anchors`).
      image_size: ``[height, width]`` in pixels: (2,) for the whole batch, or (B, 2) per image.
      pre_nms_top_n: anchors kept per image before NMS (fewer when N_a is smaller).
      post_nms_top_n: proposals returned per image (static size of the outputs).
      nms_iou: NMS IoU threshold.
      min_size: smallest width and height in pixels of a kept (clipped) box.
      weights: (wx, wy, ww, wh) of the delta encoding.
      nms_method: "combined" (tf.image.combined_non_max_suppression, a CPU kernel) or "padded"
        (tf.image.non_max_suppression_padded, TF ops that also run on accelerators). Same result.

    Returns:
      boxes: (B, post_nms_top_n, 4) float32 xyxy proposals in pixels, best first.
      scores: (B, post_nms_top_n) float32 objectness probabilities ``sigmoid(logit)``.
      valid: (B, post_nms_top_n) bool; an image with fewer proposals is padded at the end with
        zero boxes, zero scores and False.
    """
    if nms_method not in NMS_METHODS:
        raise ValueError(f"nms_method must be one of {NMS_METHODS}, got {nms_method!r}")
    for name, value in (("pre_nms_top_n", pre_nms_top_n), ("post_nms_top_n", post_nms_top_n)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    logits = tf.cast(objectness_logits, tf.float32)
    deltas = tf.cast(deltas, tf.float32)
    anchors = tf.cast(anchors, tf.float32)
    num_anchor_boxes = logits.shape[1]
    k = min(pre_nms_top_n, num_anchor_boxes) if num_anchor_boxes is not None else tf.minimum(
        pre_nms_top_n, tf.shape(logits)[1])
    top_logits, top_index = tf.math.top_k(logits, k=k, sorted=True)
    boxes = box_ops.decode_deltas(tf.gather(deltas, top_index, batch_dims=1),
                                  tf.gather(anchors, top_index), weights=weights)
    size = tf.cast(image_size, tf.float32)
    if size.shape.rank == 2:
        size = size[:, None, :]
    boxes = box_ops.clip_boxes(boxes, size)
    width = boxes[..., 2] - boxes[..., 0]
    height = boxes[..., 3] - boxes[..., 1]
    keep = (width >= min_size) & (height >= min_size) & (width > 0) & (height > 0)
    top_logits = tf.where(keep, top_logits, float("-inf"))
    kept, kept_logits, counts = _batched_nms(boxes, top_logits, post_nms_top_n, nms_iou, nms_method)
    valid = tf.range(post_nms_top_n, dtype=tf.int32)[None, :] < counts[:, None]
    kept = tf.where(valid[..., None], kept, 0.0)
    scores = tf.where(valid, tf.sigmoid(kept_logits), 0.0)
    return tf.stop_gradient(kept), tf.stop_gradient(scores), valid
