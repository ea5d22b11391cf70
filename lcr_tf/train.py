"""Trains LCR-Net on TFRecord shards (paper Sec 3, 3.5 and 4).

From Python: ``lcr_tf.train.train(config)`` with a :class:`lcr_tf.training.config.TrainConfig`
(``lcr_tf.training.config.parse(["--flagfile=configs/synthetic_tiny.flags", ...])`` builds one from flags). From
the command line:

    python -m lcr_tf.train --flagfile=configs/synthetic_tiny.flags --model_dir=runs/tiny \\
        --train_data='data/train-*.tfrecord' --val_data='data/val-*.tfrecord' --anchors=anchors.npz

SGD with momentum (or Adam, ``--optimizer``) and a piecewise-constant learning rate
(``--lr_boundaries`` / ``--lr_values``, in steps; Sec 4: 1e-3 then 1e-4), L2 weight decay on the
kernels, a precision policy (``--precision``: float32; mixed_float16 with dynamic loss scaling;
mixed_bfloat16), global-norm clipping (``--clipnorm``). The gradient step is
:func:`lcr_tf.training.optimization.apply_gradients`: one sum over the replicas, then the finiteness check, the
unscaling and the clipping of the global gradient.

Distribution (:mod:`lcr_tf.training.distribute`): ``--strategy`` picks the tf.distribute strategy; ``auto``
mirrors over the local GPUs when there are any (or over ``--cpu_replicas`` logical CPUs) and uses the
default strategy otherwise; ``multi_worker`` reads the cluster from ``TF_CONFIG``, and then only the
chief writes ``--model_dir`` (the other workers write to temporary directories they delete).
``--batch_size`` is the global batch: the replicas must divide it. An image samples its RoIs from a seed
of its place in the global batch, the losses are normalised over the global batch and the tiny
backbone's batch norm is synchronised, so a step does not depend on the replica count.

The run lives in ``--model_dir`` (:mod:`lcr_tf.contracts.run_folder`):

* ``checkpoints/``: model, optimizer and step every ``--checkpoint_every`` steps (and at the end). A run
  started again on the same directory (after a crash or a kill) restores the latest checkpoint, prints
  ``resumed from step N`` and goes on to ``--num_steps`` with the same step counter, learning rate and
  optimizer state (momentum). The input stream restarts with a seed derived from N.
* ``train/``, ``validation/``: TensorBoard logs: every loss part, the total, weight decay, proposal
  recall and the learning rate; on validation, images with each image's top-scoring pose drawn.
* ``config.json``: the run's :class:`lcr_tf.training.config.TrainConfig` (its sections, the skeleton and the same
  settings by flag name); ``final.weights.h5``: the trained weights;
  ``metrics.json``: the logs (losses, proposal recall) of the first and last epochs of the latest run,
  ``images_per_second`` (training only: the median over its epochs of images / seconds from the
  epoch's start to its last training step), the precision, the strategy and the replica count, and
  ``corrupt_records`` (:meth:`lcr_tf.data.shards.SkipLog.summary`: the shards whose rest was skipped
  with ``--skip_corrupt_records``, their bad record and byte offset, ``records_skipped`` = manifest
  records minus records read, summed over the passes, ``bytes_skipped``, ``events``; counted by this
  process's readers: with ``multi_worker``, the chief's).

Damaged shards: at start, every shard's size is checked against its manifest
(:func:`lcr_tf.data.shards.check_before_reading`; a cut or missing shard stops the run in one line). A
corrupt record met during the run stops it with one line naming the shard, the record and its byte
offset, after saving a checkpoint of the step reached; ``--skip_corrupt_records`` skips the rest of
that shard instead (:func:`lcr_tf.data.pipeline.make_dataset`).
"""

from __future__ import annotations

import sys
from typing import List

from absl import flags

from lcr_tf.contracts import cli
from lcr_tf.training import config as config_lib
from lcr_tf.training.config import ConfigError, FlagError, TrainConfig  # noqa: F401 (FlagError: the old name)
from lcr_tf.training.loop import RESUMED, TrainResult, train  # noqa: F401 (the Python API)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the trainer's flags (:func:`lcr_tf.training.config.define_flags`); called only when run as a
    program, so importing the module defines none."""
    config_lib.define_flags(flag_values)


def main(argv: List[str]) -> None:
    try:
        train(config_lib.from_flags(flags.FLAGS))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
