"""Training input pipeline: TFRecord shards -> decoded elements -> augmented, padded batches.

:mod:`lcr_tf.data.decoder` decodes one record (schema :mod:`lcr_tf.contracts.features`) into a dict of tensors;
:mod:`lcr_tf.data.augment` holds the graph-compatible, seedable augmentations (scale and crop, flip with
left/right swap and anchor re-assignment, colour jitter, letterbox); :mod:`lcr_tf.data.pipeline` builds
the ``tf.data.Dataset`` (:func:`~lcr_tf.data.pipeline.make_dataset`,
:class:`~lcr_tf.data.pipeline.InputConfig`); ``python -m lcr_tf.data.draw_samples`` draws augmented
samples to check them by eye.
"""
