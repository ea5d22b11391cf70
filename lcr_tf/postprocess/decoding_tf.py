"""Candidate selection in TensorFlow, graph-compatible and padded to a fixed size: the twin of
:func:`lcr_tf.postprocess.decoding.select_candidates` (same order, same ties; see that module)."""

from __future__ import annotations

import tensorflow as tf


def select_candidates_tf(class_probs, score_threshold, max_candidates: int):
    """TensorFlow version of :func:`lcr_tf.postprocess.decoding.select_candidates`, padded to a fixed size.

    Args:
      class_probs: (N, 2K+1) float probabilities, background first.
      score_threshold: () float.
      max_candidates: python int, the padded size M (``min(max_candidates, N * 2K)`` when N * 2K is static,
        else ``max_candidates`` with extra rows padded).
    Returns:
      roi_index (M,) int32, classes (M,) int32 in ``1..2K`` (1 in padding), scores (M,) float32 (0 in
      padding), valid (M,) bool.
    """
    class_probs = tf.cast(class_probs, tf.float32)
    c = tf.shape(class_probs)[1] - 1
    flat = tf.reshape(class_probs[:, 1:], [-1])
    k = tf.minimum(int(max_candidates), tf.size(flat))
    top, index = tf.math.top_k(flat, k=k, sorted=True)
    valid = top >= tf.cast(score_threshold, tf.float32)
    pad = int(max_candidates) - k
    top = tf.pad(tf.where(valid, top, 0.0), [[0, pad]])
    index = tf.pad(tf.where(valid, index, 0), [[0, pad]])
    valid = tf.pad(valid, [[0, pad]])
    return index // c, index % c + 1, top, valid
