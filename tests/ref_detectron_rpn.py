"""NumPy reference of Detectron's RPN anchors and proposals, written from Detectron's own definitions.

A helper module for the tests (not a test file): plain NumPy, written independently of :mod:`lcr_tf`, one
step per function of Detectron (as run by Detectron.pytorch, the code of the released LCR-Net++ models):

* :func:`generate_anchors_np` follows ``modeling/generate_anchors.py`` (``generate_anchors``,
  ``_generate_anchors``, ``_ratio_enum``, ``_scale_enum``, ``_whctrs``, ``_mkanchors``);
* :func:`proposals_np` follows ``modeling/generate_proposals.py`` (``GenerateProposalsOp.forward``'s
  anchor shifts, ``proposals_for_one_image``, ``_filter_boxes``), with ``utils/boxes.py``
  (``bbox_transform``, ``clip_tiled_boxes``) and ``utils/cython_nms.pyx`` (``nms``).

Detectron computes the proposals in float32 (the network's outputs), its anchors in float64; so does
this module. ``BBOX_XFORM_CLIP`` is ``core/config.py``'s ``log(1000 / 16)``.
"""

from __future__ import annotations

import numpy as np

BBOX_XFORM_CLIP = np.log(1000.0 / 16.0)


# ------------------------------------------------------------------------------------------------------
# Anchors (generate_anchors.py)
# ------------------------------------------------------------------------------------------------------

def _widths_heights_centre(box):
    """``_whctrs``: a +1-convention box -> (w, h, x centre, y centre)."""
    w = box[2] - box[0] + 1
    h = box[3] - box[1] + 1
    return w, h, box[0] + 0.5 * (w - 1), box[1] + 0.5 * (h - 1)


def _boxes_around(ws, hs, x_ctr, y_ctr):
    """``_mkanchors``: (n,) widths and heights about one centre -> (n, 4) +1-convention boxes."""
    ws = np.asarray(ws, np.float64)[:, None]
    hs = np.asarray(hs, np.float64)[:, None]
    return np.hstack([x_ctr - 0.5 * (ws - 1), y_ctr - 0.5 * (hs - 1),
                      x_ctr + 0.5 * (ws - 1), y_ctr + 0.5 * (hs - 1)])


def generate_anchors_np(stride=16, sizes=(32, 64, 128, 256, 512), aspect_ratios=(0.5, 1, 2)):
    """(A, 4) float64 anchors of cell (0, 0), Detectron's ``generate_anchors``.

    ``_generate_anchors(stride, sizes / stride, aspect_ratios)``: the reference window
    ``[0, 0, stride - 1, stride - 1]``; ``_ratio_enum`` (``ws = round(sqrt(w h / r))``,
    ``hs = round(ws r)``), then ``_scale_enum`` of each ratio's box by every scale, stacked ratio by ratio.
    """
    scales = np.array(sizes, dtype=np.float64) / stride
    ratios = np.array(aspect_ratios, dtype=np.float64)
    window = np.array([1, 1, stride, stride], dtype=np.float64) - 1
    # _ratio_enum
    w, h, x_ctr, y_ctr = _widths_heights_centre(window)
    ws = np.round(np.sqrt(w * h / ratios))
    hs = np.round(ws * ratios)
    ratio_boxes = _boxes_around(ws, hs, x_ctr, y_ctr)
    # _scale_enum of each ratio box, vstacked in ratio order
    out = []
    for box in ratio_boxes:
        w, h, x_ctr, y_ctr = _widths_heights_centre(box)
        out.append(_boxes_around(w * scales, h * scales, x_ctr, y_ctr))
    return np.vstack(out)


# ------------------------------------------------------------------------------------------------------
# Proposals (generate_proposals.py, boxes.py, cython_nms.pyx)
# ------------------------------------------------------------------------------------------------------

def _bbox_transform(boxes, deltas, weights=(1.0, 1.0, 1.0, 1.0)):
    """``utils.boxes.bbox_transform``: (N, 4) boxes, (N, 4) deltas -> (N, 4) boxes in ``deltas``' dtype."""
    if boxes.shape[0] == 0:
        return np.zeros((0, deltas.shape[1]), dtype=deltas.dtype)
    boxes = boxes.astype(deltas.dtype, copy=False)
    widths = boxes[:, 2] - boxes[:, 0] + 1.0
    heights = boxes[:, 3] - boxes[:, 1] + 1.0
    ctr_x = boxes[:, 0] + 0.5 * widths
    ctr_y = boxes[:, 1] + 0.5 * heights
    wx, wy, ww, wh = weights
    dx = deltas[:, 0::4] / wx
    dy = deltas[:, 1::4] / wy
    dw = np.minimum(deltas[:, 2::4] / ww, BBOX_XFORM_CLIP)
    dh = np.minimum(deltas[:, 3::4] / wh, BBOX_XFORM_CLIP)
    pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
    pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
    pred_w = np.exp(dw) * widths[:, None]
    pred_h = np.exp(dh) * heights[:, None]
    pred = np.zeros(deltas.shape, dtype=deltas.dtype)
    pred[:, 0::4] = pred_ctr_x - 0.5 * pred_w
    pred[:, 1::4] = pred_ctr_y - 0.5 * pred_h
    pred[:, 2::4] = pred_ctr_x + 0.5 * pred_w - 1
    pred[:, 3::4] = pred_ctr_y + 0.5 * pred_h - 1
    return pred


def _clip_tiled_boxes(boxes, im_shape):
    """``utils.boxes.clip_tiled_boxes``: x into [0, width - 1], y into [0, height - 1], in place."""
    boxes[:, 0::4] = np.maximum(np.minimum(boxes[:, 0::4], im_shape[1] - 1), 0)
    boxes[:, 1::4] = np.maximum(np.minimum(boxes[:, 1::4], im_shape[0] - 1), 0)
    boxes[:, 2::4] = np.maximum(np.minimum(boxes[:, 2::4], im_shape[1] - 1), 0)
    boxes[:, 3::4] = np.maximum(np.minimum(boxes[:, 3::4], im_shape[0] - 1), 0)
    return boxes


def _filter_boxes(boxes, min_size, im_info):
    """``generate_proposals._filter_boxes`` (Detectron.pytorch's): indices of the boxes with both +1
    sides >= ``min_size * im_scale`` and centre inside the image."""
    min_size = min_size * im_info[2]
    ws = boxes[:, 2] - boxes[:, 0] + 1
    hs = boxes[:, 3] - boxes[:, 1] + 1
    x_ctr = boxes[:, 0] + ws / 2.0
    y_ctr = boxes[:, 1] + hs / 2.0
    return np.where((ws >= min_size) & (hs >= min_size) & (x_ctr < im_info[1]) & (y_ctr < im_info[0]))[0]


def _nms(dets, thresh):
    """``utils.cython_nms.nms``: greedy NMS of (N, 5) float32 [x1, y1, x2, y2, score] rows, +1 areas,
    a later box suppressed at IoU >= ``thresh`` (float32 arithmetic); kept indices in increasing order."""
    if dets.shape[0] == 0:
        return np.zeros(0, np.int64)
    dets = dets.astype(np.float32, copy=False)
    thresh = np.float32(thresh)
    x1, y1, x2, y2, scores = (dets[:, i] for i in range(5))
    one = np.float32(1)
    areas = (x2 - x1 + one) * (y2 - y1 + one)
    order = scores.argsort()[::-1]
    suppressed = np.zeros(len(dets), bool)
    for position, i in enumerate(order):
        if suppressed[i]:
            continue
        # The inner loop over the later boxes j, vectorised: same float32 operations per pair.
        rest = order[position + 1:]
        rest = rest[~suppressed[rest]]
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + one)
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + one)
        inter = w * h
        overlap = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest[overlap >= thresh]] = True
    return np.where(~suppressed)[0]


def proposals_np(cls_prob, bbox_pred, im_h, im_w, im_scale, cell_anchors, stride, pre_nms_top_n,
                 post_nms_top_n, nms_thresh, min_size):
    """Detectron's RPN proposals of one image, ``GenerateProposalsOp`` (forward + ``proposals_for_one_image``).

    Args:
      cls_prob: (H, W, A) objectness probabilities (sigmoid of the logits), the (A, H, W) conv output
        after Detectron's transpose.
      bbox_pred: (H, W, A, 4) deltas (dx, dy, dw, dh), the (4A, H, W) conv output after its transpose.
      im_h, im_w: the network input's image size in pixels (``im_info[:2]``), without padding.
      im_scale: network input pixels per original pixel (``im_info[2]``); scales ``min_size``.
      cell_anchors: (A, 4) anchors of cell (0, 0) (:func:`generate_anchors_np`).
      stride: feature stride in pixels (``1 / spatial_scale``).
      pre_nms_top_n, post_nms_top_n, nms_thresh: ``RPN_PRE_NMS_TOP_N``, ``RPN_POST_NMS_TOP_N``,
        ``RPN_NMS_THRESH`` (<= 0 disables the limit; ``nms_thresh <= 0`` skips NMS and the post limit).
      min_size: ``RPN_MIN_SIZE``, in original image pixels.

    Returns:
      boxes: (R, 4) float32 xyxy (+1 convention) proposals in the network input's pixels, best first.
      scores: (R,) float32 their probabilities.
    """
    cls_prob = np.asarray(cls_prob, np.float32)
    bbox_pred = np.asarray(bbox_pred, np.float32)
    height, width, num_anchors = cls_prob.shape
    # forward: shifted anchors, (K, A) with K = H * W cells in row-major (y, x) order
    shift_x, shift_y = np.meshgrid(np.arange(0, width) * stride, np.arange(0, height) * stride)
    shifts = np.vstack([shift_x.ravel(), shift_y.ravel(), shift_x.ravel(), shift_y.ravel()]).transpose()
    all_anchors = (np.asarray(cell_anchors)[None, :, :] + shifts[:, None, :]).reshape(-1, 4)
    im_info = np.array([im_h, im_w, im_scale], np.float32)  # Detectron's im_info blob is float32
    # proposals_for_one_image: rows in (H, W, A) order
    deltas = bbox_pred.reshape(-1, 4)
    scores = cls_prob.reshape(-1, 1)
    if pre_nms_top_n <= 0 or pre_nms_top_n >= len(scores):
        order = np.argsort(-scores.squeeze(1))
    else:
        inds = np.argpartition(-scores.squeeze(1), pre_nms_top_n)[:pre_nms_top_n]
        order = inds[np.argsort(-scores[inds].squeeze(1))]
    deltas, anchors, scores = deltas[order, :], all_anchors[order, :], scores[order]
    proposals = _bbox_transform(anchors, deltas, (1.0, 1.0, 1.0, 1.0))
    proposals = _clip_tiled_boxes(proposals, im_info[:2])
    keep = _filter_boxes(proposals, min_size, im_info)
    proposals, scores = proposals[keep, :], scores[keep]
    if nms_thresh > 0:
        keep = _nms(np.hstack([proposals, scores]), nms_thresh)
        if post_nms_top_n > 0:
            keep = keep[:post_nms_top_n]
        proposals, scores = proposals[keep, :], scores[keep]
    return proposals, scores.reshape(-1)
