"""RPN proposals (Faster R-CNN, paper Sec 3.1): decode anchors, clip, drop small boxes, top-k, NMS.

The proposals are constants for the rest of the network (the "approximate joint training" of the
paper, Sec 3.5): every output carries a stopped gradient.

Two conventions (:data:`lcr_tf.ops.anchor_boxes.CONVENTIONS`): ``"centred"``, continuous coordinates;
``"detectron"``, the rules of Detectron's ``GenerateProposalsOp.proposals_for_one_image``
(``modeling/generate_proposals.py``), which the released LCR-Net++ models ran with: the +1 box
convention in decoding, clipping, the size filter and NMS, and its centre filter.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from lcr_tf.ops import anchor_boxes, box_ops

NMS_METHODS = ("combined", "padded")

_XYXY_TO_YXYX = [1, 0, 3, 2]  # the same permutation maps yxyx back to xyxy

# Adding 1 to x2 and y2 turns a +1-convention box into the continuous box of the same extent, so that
# TF's (continuous) NMS kernels compute Detectron's +1 IoU: ((min x2 + 1) - max x1) is its +1 overlap.
_PLUS_ONE_SHIFT = (0.0, 0.0, 1.0, 1.0)

# The kernels see ranks, not logits: candidate i of k (sorted by decreasing logit) scores k - i >= 1, a
# dropped one 0, and they keep scores above 0.5. Ranks are exact in float32 up to 2^24 candidates.
_RANK_THRESHOLD = 0.5
_MAX_CANDIDATES = 2 ** 24


def _batched_nms(boxes: tf.Tensor, keep: tf.Tensor, max_output: int, iou_threshold: float, method: str,
                 plus_one: bool = False) -> tuple:
    """Greedy NMS per image over candidates sorted best first: a box whose IoU with a kept, earlier box is
    too high is suppressed.

    Args:
      boxes: (B, k, 4) xyxy candidates, sorted by decreasing score (``tf.math.top_k``'s order), k <= 2^24.
      keep: (B, k) bool, False for candidates dropped before NMS.
      max_output: kept boxes per image at most.
      iou_threshold: NMS threshold.
      method: see :func:`generate_proposals`.
      plus_one: the IoU and the comparison of Detectron's ``nms`` (``utils/cython_nms.pyx``).

    Returns:
      (B, max_output) int32 indices into the k candidates, kept ones first in candidate order (the
      rest: 0), and (B,) int32 counts.

    The kernels are given ranks instead of the logits: combined_non_max_suppression pads its output with
    score -1 and sorts it by score, which would put the padding before kept boxes of logit below -1;
    non_max_suppression_padded masks scores by multiplying them by 0, which turns a -inf into NaN. Ranks
    also make both kernels follow the candidates' order whatever their ties, and give the combined
    kernel's indices (the kernel returns boxes and scores only).

    ``plus_one=False``: continuous IoU; "combined" suppresses at IoU > ``iou_threshold``, "padded" at
    IoU >= ``iou_threshold`` (TF's tiled kernel): they differ only for an IoU equal to the threshold in
    float32. ``plus_one=True``: the +1 IoU, computed by the kernels on boxes ``[x1, y1, x2 + 1, y2 + 1]``,
    and suppression at IoU >= ``iou_threshold`` for both methods.
    """
    k = tf.shape(boxes)[1]
    ranks = tf.cast(k - tf.range(k), tf.float32)[None, :]
    scores = tf.where(keep, ranks, 0.0)
    nms_boxes = boxes + tf.constant(_PLUS_ONE_SHIFT, boxes.dtype) if plus_one else boxes
    yxyx = tf.gather(nms_boxes, _XYXY_TO_YXYX, axis=-1)
    if method == "combined":
        threshold = iou_threshold
        if plus_one:
            # The kernel suppresses at IoU > threshold; on float32 IoUs "> the float below t" is ">= t".
            threshold = float(np.nextafter(np.float32(iou_threshold), np.float32(-np.inf)))
        # One class: a batched C++ kernel (CPU only), 2-3 times faster than the tiled version on CPU.
        out = tf.image.combined_non_max_suppression(
            yxyx[:, :, None, :], scores[:, :, None], max_output, max_output, iou_threshold=threshold,
            score_threshold=_RANK_THRESHOLD, pad_per_class=False, clip_boxes=False)
        counts = tf.cast(out.valid_detections, tf.int32)
        indices = k - tf.cast(tf.round(out.nmsed_scores), tf.int32)
    else:
        # Plain TF ops (tiled suppression): every op also has accelerator kernels.
        indices, counts = tf.image.non_max_suppression_padded(
            yxyx, scores, max_output, iou_threshold=iou_threshold, score_threshold=_RANK_THRESHOLD,
            pad_to_max_output_size=True, canonicalized_coordinates=True)
        counts = tf.cast(counts, tf.int32)
    valid = tf.range(max_output, dtype=tf.int32)[None, :] < counts[:, None]
    return tf.where(valid, tf.cast(indices, tf.int32), 0), counts


def generate_proposals(objectness_logits, deltas, anchors, image_size, pre_nms_top_n: int,
                       post_nms_top_n: int, nms_iou: float = 0.7, min_size: float = 0.0,
                       weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
                       nms_method: str = "combined", convention: str = "centred") -> tuple:
    """Turns RPN outputs into at most ``post_nms_top_n`` proposals per image.

    Per image: keep the ``pre_nms_top_n`` anchors of highest objectness, decode their deltas
    (:func:`lcr_tf.ops.box_ops.decode_deltas`), clip to the image, drop small boxes, then greedy NMS,
    best first. By ``convention``:

    * ``"centred"``: continuous coordinates; boxes clipped to [0, width] x [0, height]; a box is dropped
      when narrower or shorter than ``min_size`` or empty; a box whose IoU with a higher-scored kept box
      exceeds ``nms_iou`` is suppressed ("padded" also suppresses at equality, :func:`_batched_nms`).
    * ``"detectron"``: Detectron's ``proposals_for_one_image``: +1 decoding (``bbox_transform``), clip
      to [0, width - 1] x [0, height - 1] (``clip_tiled_boxes``), keep boxes with ``x2 - x1 + 1 >=
      min_size``, ``y2 - y1 + 1 >= min_size`` and centre ``x1 + (x2 - x1 + 1) / 2 < width``, ``y1 + (y2
      - y1 + 1) / 2 < height`` (``_filter_boxes``; after the clip the centre test always holds, as in
      Detectron, and a box outside the image survives as a 1 px sliver on its border), then NMS with
      the +1 IoU, suppressing at IoU >= ``nms_iou`` (``cython_nms.nms``). ``anchors`` should come from
      :func:`lcr_tf.ops.anchor_boxes.generate_anchors` with ``convention="detectron"``.

    Candidates are ranked by logit: Detectron ranks by the probability, the same order except for
    logits whose float32 sigmoids are equal (e.g. every logit above ~17 gives exactly 1.0), which
    Detectron's unstable sorts leave in an arbitrary order.

    Args:
      objectness_logits: (B, N_a) float RPN logits, one per anchor.
      deltas: (B, N_a, 4) float RPN box deltas (dx, dy, dw, dh) per anchor.
      anchors: (N_a, 4) xyxy anchor boxes in image pixels (:func:`lcr_tf.ops.anchor_boxes.generate_anchors`).
      image_size: ``[height, width]`` in pixels: (2,) for the whole batch, or (B, 2) per image. With
        ``"detectron"``, its ``im_info[:2]``: at test time the size of the input blob, the resized
        image's (``utils/blob.py``'s ``get_image_blob``; padded to ``FPN.COARSEST_STRIDE`` with FPN).
      pre_nms_top_n: anchors kept per image before NMS (fewer when N_a is smaller).
      post_nms_top_n: proposals returned per image (static size of the outputs).
      nms_iou: NMS IoU threshold.
      min_size: smallest width and height in pixels of a kept (clipped) box, in the network input's
        pixels (for Detectron, its ``RPN_MIN_SIZE * im_scale``).
      weights: (wx, wy, ww, wh) of the delta encoding.
      nms_method: "combined" (tf.image.combined_non_max_suppression, a CPU kernel) or "padded"
        (tf.image.non_max_suppression_padded, TF ops that also run on accelerators). Same result.
      convention: ``"centred"`` or ``"detectron"`` (above).

    Returns:
      boxes: (B, post_nms_top_n, 4) float32 xyxy proposals in pixels, best first (with ``"detectron"``,
        in the +1 convention).
      scores: (B, post_nms_top_n) float32 objectness probabilities ``sigmoid(logit)``.
      valid: (B, post_nms_top_n) bool; an image with fewer proposals is padded at the end with
        zero boxes, zero scores and False.
    """
    if nms_method not in NMS_METHODS:
        raise ValueError(f"nms_method must be one of {NMS_METHODS}, got {nms_method!r}")
    anchor_boxes.check_convention(convention)
    for name, value in (("pre_nms_top_n", pre_nms_top_n), ("post_nms_top_n", post_nms_top_n)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if pre_nms_top_n > _MAX_CANDIDATES:
        raise ValueError(f"pre_nms_top_n must be at most 2^24 (float32 ranks in NMS), got {pre_nms_top_n}")
    detectron = convention == "detectron"
    logits = tf.cast(objectness_logits, tf.float32)
    deltas = tf.cast(deltas, tf.float32)
    anchors = tf.cast(anchors, tf.float32)
    num_anchor_boxes = logits.shape[1]
    k = min(pre_nms_top_n, num_anchor_boxes) if num_anchor_boxes is not None else tf.minimum(
        pre_nms_top_n, tf.shape(logits)[1])
    top_logits, top_index = tf.math.top_k(logits, k=k, sorted=True)
    boxes = box_ops.decode_deltas(tf.gather(deltas, top_index, batch_dims=1),
                                  tf.gather(anchors, top_index), weights=weights, plus_one=detectron)
    size = tf.cast(image_size, tf.float32)
    if size.shape.rank == 2:
        size = size[:, None, :]
    boxes = box_ops.clip_boxes(boxes, size, plus_one=detectron)
    if detectron:
        width = boxes[..., 2] - boxes[..., 0] + 1.0
        height = boxes[..., 3] - boxes[..., 1] + 1.0
        keep = ((width >= min_size) & (height >= min_size)
                & (boxes[..., 0] + width / 2.0 < size[..., 1]) & (boxes[..., 1] + height / 2.0 < size[..., 0]))
    else:
        width = boxes[..., 2] - boxes[..., 0]
        height = boxes[..., 3] - boxes[..., 1]
        keep = (width >= min_size) & (height >= min_size) & (width > 0) & (height > 0)
    indices, counts = _batched_nms(boxes, keep, post_nms_top_n, nms_iou, nms_method, plus_one=detectron)
    valid = tf.range(post_nms_top_n, dtype=tf.int32)[None, :] < counts[:, None]
    kept = tf.where(valid[..., None], tf.gather(boxes, indices, batch_dims=1), 0.0)
    scores = tf.where(valid, tf.sigmoid(tf.gather(top_logits, indices, batch_dims=1)), 0.0)
    return tf.stop_gradient(kept), tf.stop_gradient(scores), valid
