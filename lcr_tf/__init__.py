"""lcr_tf: LCR-Net++ multi-person 2D and 3D human pose detection in TensorFlow 2 / Keras.

The package is a stack of layers that only look down, drawn in ``docs/architecture.md``: contracts
(:mod:`lcr_tf.contracts`: joint sets, geometry, boxes, anchor layout, keys, run folder, serving), poses
(corpus, anchor-poses of Sec 4.1-4.2, pseudo ground truth of eq 9, MoCap readers), the synthetic renderer,
the dataset readers, ops, layers, modeling, data, post-processing, serving, evaluation and the entry points.
"""

__version__ = "0.1.0"
