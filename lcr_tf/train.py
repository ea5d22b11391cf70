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
    flags.DEFINE_string("init_from", None, "Fine-tuning from a converted model: a model directory (as "
                        "lcr_tf.convert_official --model_dir or lcr_tf.train writes) or a release file <name>.pkl "
                        "of the authors (converted on the fly). Its network and anchor-poses replace the model "
                        "flags but the training ones (image_size, the RPN / RoI sampling and IoU settings, "
                        "trainable_from, weight_decay, seed, nms_method); --anchors is then not needed.",
                        flag_values=flag_values)


#: ModelConfig fields a fine-tuning run takes from its own flags; every other field is the source's network.
TRAINING_FIELDS = ("image_size", "rpn_pre_nms_top_n_train", "rpn_post_nms_top_n_train", "rpn_batch_size_per_image",
                   "rpn_positive_fraction", "rpn_pos_iou", "rpn_neg_iou", "rois_per_image", "roi_positive_fraction",
                   "fg_iou", "ignore_ioa", "trainable_from", "weight_decay", "seed", "nms_method")


def init_source(path: str, work_dir: str):
    """The network, anchor-poses and weights file a fine-tuning run starts from.

    Args:
      path: a model directory, or a release file ``<name>.pkl`` (converted into ``work_dir/model``).
    Returns:
      (ModelConfig, anchor-poses (:class:`lcr_tf.release.convert.AnchorPoses`), weights file path).
    Raises:
      ConfigError: naming ``--init_from`` and what is wrong.
    """
    import os

    from lcr_tf.contracts import run_folder
    from lcr_tf.contracts import skeleton as skeleton_lib
    from lcr_tf.release import convert as convert_lib
    from lcr_tf.serving import inference

    try:
        if convert_lib.is_release_file(path):
            path = convert_lib.write_model_dir(convert_lib.load_release(path), os.path.join(work_dir, "model"))
        loaded = inference.load_model(path, fold_batch_norm=False)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(f"--init_from: {e}") from None
    model = loaded.model
    anchors = convert_lib.AnchorPoses(model.anchor_pose2d.numpy(), model.anchor_pose3d.numpy(),
                                      skeleton_lib.get_skeleton(loaded.skeleton))
    return loaded.config, anchors, run_folder.weights_path(path)


def fine_tuning_config(config: TrainConfig, source_config) -> TrainConfig:
    """``config`` with the source's network: its ModelConfig but the :data:`TRAINING_FIELDS` of ``config``."""
    import dataclasses

    model = dataclasses.replace(source_config, backbone_weights="none",
                                **{f: getattr(config.model, f) for f in TRAINING_FIELDS})
    return dataclasses.replace(config, model=model)


def main(argv: List[str]) -> None:
    try:
        if flags.FLAGS.init_from:
            run_with_init_from(flags.FLAGS)
        else:
            train(config_lib.from_flags(flags.FLAGS))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def run_with_init_from(flag_values) -> TrainResult:
    """``--init_from``: converts or reads the source into ``<model_dir>/init_from/``, then trains from it."""
    import dataclasses
    import os

    import numpy as np

    if not flag_values.model_dir:
        raise ConfigError("--model_dir is required")
    work_dir = os.path.join(flag_values.model_dir, "init_from")
    source_config, anchors, weights = init_source(flag_values.init_from, work_dir)
    # The flags' K and J are the source's; --anchors names a record of its anchor-poses (read for K, J only).
    record = os.path.join(work_dir, "anchor_poses.npz")
    os.makedirs(work_dir, exist_ok=True)
    np.savez(record, pose3d=anchors.pose3d, pose2d=anchors.pose2d)
    flag_values.anchors = record
    flag_values.num_anchors, flag_values.num_joints = anchors.num_anchors, int(anchors.pose3d.shape[1])
    config = fine_tuning_config(config_lib.from_flags(flag_values), source_config)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, init_weights=weights))
    print(f"fine-tuning from {flag_values.init_from}", flush=True)
    return train(config, anchor_set=anchors)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
