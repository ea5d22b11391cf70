"""Stateless random numbers with one seed per row (per image), vectorised.

The training samplers (:mod:`lcr_tf.ops.targets`) draw one random priority per anchor or candidate box
of each image. Seeding each image on its own (its place in the *global* batch, see
:func:`lcr_tf.training.distribute.global_image_index`) makes an image's samples the same whether it is trained on
one replica in a batch of 4 or on the second of two replicas in a batch of 2 + 2.

TensorFlow's stateless ops take one seed per call, and mapping them over the rows becomes a loop, so the
numbers here come from a counter-based hash instead: SplitMix64's finaliser (Steele, Lea and Flood,
"Fast splittable pseudorandom number generators", 2014) over the row's seed and the column index, in
uint64 arithmetic (wrapping multiplication), which is exact and identical on every device.
"""

from __future__ import annotations

import tensorflow as tf

_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def _splitmix64(z: tf.Tensor) -> tf.Tensor:
    """SplitMix64's output function of uint64 ``z`` (a bijection that scatters every input bit)."""
    z = tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, tf.constant(30, tf.uint64)))
    z = z * tf.constant(_MIX1, tf.uint64)
    z = tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, tf.constant(27, tf.uint64)))
    z = z * tf.constant(_MIX2, tf.uint64)
    return tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, tf.constant(31, tf.uint64)))


def _as_uint64(x) -> tf.Tensor:
    return tf.bitcast(tf.cast(x, tf.int64), tf.uint64)


def row_seeds(seed, rows) -> tf.Tensor:
    """(B, 2) int64 seeds of B rows from one (2,) int seed and the rows' (B,) int ids: ``[seed[0],
    hash(seed[1], id)]``, distinct for distinct ids."""
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    rows = tf.cast(rows, tf.int64)
    mixed = _splitmix64(_as_uint64(seed[1]) * tf.constant(_GOLDEN, tf.uint64) + _as_uint64(rows))
    return tf.stack([tf.broadcast_to(seed[0], tf.shape(rows)), tf.bitcast(mixed, tf.int64)], axis=-1)


def row_uniform(seeds, num_columns) -> tf.Tensor:
    """(B, N) float32 uniform in [0, 1): row ``b`` a function of ``seeds[b]`` ((B, 2) int) and the column
    index only.

    Each value keeps the top 24 bits of the hash, so it is an exact multiple of 2^-24 (float32 holds it
    exactly) and never 1.
    """
    seeds = tf.convert_to_tensor(seeds)
    key = _splitmix64(_as_uint64(seeds[:, 0]) + tf.constant(_GOLDEN, tf.uint64))
    base = tf.bitwise.bitwise_xor(key, _as_uint64(seeds[:, 1]))
    columns = _as_uint64(tf.range(num_columns)) + tf.constant(1, tf.uint64)
    z = _splitmix64(base[:, None] + columns[None, :] * tf.constant(_GOLDEN, tf.uint64))
    top = tf.bitwise.right_shift(z, tf.constant(40, tf.uint64))
    return tf.cast(top, tf.float32) * (1.0 / (1 << 24))
