"""lcr_tf: LCR-Net++ multi-person 2D and 3D human pose detection in TensorFlow 2 / Keras.

The package is a stack of layers that only look down, one folder each, drawn in ``docs/architecture.md``:
contracts (:mod:`lcr_tf.contracts`: joint sets, geometry, boxes, anchor layout, keys, run folder, serving,
the command line), poses (:mod:`lcr_tf.poses`: corpus, anchor-poses of Sec 4.1-4.2, pseudo ground truth of
eq 9, MoCap readers), the synthetic renderer, the dataset readers, ops, layers, modeling, data, training,
post-processing, serving and evaluation. The top level holds only the ``python -m`` commands: ``train``,
``export``, ``predict``, ``evaluate`` and the ``demo``.
"""

__version__ = "0.1.0"

from lcr_tf.contracts import console as _console  # noqa: E402

# ``python -m lcr_tf.<command>``: the libraries' start-up notices are held back (lcr_tf.contracts.console).
_console.quiet_command()
