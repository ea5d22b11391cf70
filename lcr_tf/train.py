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

Fine-tuning (``--init_from``, paper Sec 4.3): the network and weights of a model directory or release file.
Without ``--anchors`` the model keeps the source's anchor-poses. With ``--anchors`` of other anchor-poses or
another skeleton (e.g. ``mupots14`` anchors clustered from MuCo-3DHP records by
``beam_jobs.anchor_poses --poses_from_records``), the model is built with those, and its weights come from the
source (:mod:`lcr_tf.training.transfer`): everything that does not depend on K or J is copied, and each class
and joint of the pose heads starts from the source class of the nearest anchor-pose and the source joint of
the same name, or the nearest one for a new joint (:mod:`lcr_tf.poses.transfer_map`). The mapping is printed
and written to ``<model_dir>/init_from/weight_transfer.json``, the weights to
``<model_dir>/init_from/transferred.weights.h5`` (config.json's ``data.init_weights``).

Damaged shards: at start, every shard's size is checked against its manifest
(:func:`lcr_tf.data.shards.check_before_reading`; a cut or missing shard stops the run in one line). A
corrupt record met during the run stops it with one line naming the shard, the record and its byte
offset, after saving a checkpoint of the step reached; ``--skip_corrupt_records`` skips the rest of
that shard instead (:func:`lcr_tf.data.pipeline.make_dataset`).
"""

from __future__ import annotations

import sys
from typing import Any, List, NamedTuple

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
                        "of the authors (converted on the fly). Its network replaces the model flags but the "
                        "training ones (image_size, the RPN / RoI sampling and IoU settings, trainable_from, "
                        "weight_decay, seed, nms_method). Without --anchors the source's anchor-poses are kept; "
                        "--anchors of other anchor-poses or another skeleton (e.g. mupots14) builds the model with "
                        "them and transfers the weights: the pose heads' classes and joints start from the source "
                        "class of the nearest anchor-pose and the source joint of the same name, or the nearest "
                        "one (the mapping is printed and written to <model_dir>/init_from/weight_transfer.json).",
                        flag_values=flag_values)


#: ModelConfig fields a fine-tuning run takes from its own flags; every other field is the source's network.
TRAINING_FIELDS = ("image_size", "rpn_pre_nms_top_n_train", "rpn_post_nms_top_n_train", "rpn_batch_size_per_image",
                   "rpn_positive_fraction", "rpn_pos_iou", "rpn_neg_iou", "rois_per_image", "roi_positive_fraction",
                   "fg_iou", "ignore_ioa", "trainable_from", "weight_decay", "seed", "nms_method")


class InitSource(NamedTuple):
    """What a fine-tuning run starts from: the source's ModelConfig, anchor-poses
    (:class:`lcr_tf.release.convert.AnchorPoses`), weights file and built model (its weights loaded, batch
    norm not folded)."""

    config: Any
    anchors: Any
    weights: str
    model: Any


def init_source(path: str, work_dir: str) -> InitSource:
    """The network, anchor-poses and weights a fine-tuning run starts from.

    Args:
      path: a model directory, or a release file ``<name>.pkl`` (converted into ``work_dir/model``).
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
    return InitSource(loaded.config, anchors, run_folder.weights_path(path), model)


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


def _new_anchor_set(flag_values, source: InitSource):
    """The AnchorSet of ``--anchors`` when it differs from the source's anchor-poses (another skeleton, K or
    poses), else None (no ``--anchors``, or the source's own)."""
    import numpy as np

    from lcr_tf.poses import anchors as anchors_lib

    if not flag_values.anchors:
        return None
    try:
        anchor_set = anchors_lib.load(flag_values.anchors)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(f"--anchors: {e}") from None
    same = (anchor_set.skeleton.name == source.anchors.skeleton.name
            and anchor_set.pose3d.shape == source.anchors.pose3d.shape
            and np.allclose(anchor_set.pose3d, source.anchors.pose3d, atol=1e-6))
    if same:
        print(f"--anchors {flag_values.anchors} are the source's own anchor-poses", flush=True)
    return None if same else anchor_set


def transfer_init(source: InitSource, model_config, anchor_set, work_dir: str) -> str:
    """Builds the model of ``model_config`` and ``anchor_set``, sets its weights from the source's
    (:func:`lcr_tf.training.transfer.transfer_weights` with the :func:`lcr_tf.poses.transfer_map.plan` of the
    two anchor sets), prints the mapping and writes ``work_dir/weight_transfer.json`` and the weights file,
    whose path it returns."""
    import dataclasses
    import os

    import tensorflow as tf

    from lcr_tf.contracts import run_folder
    from lcr_tf.modeling import factory
    from lcr_tf.poses import transfer_map
    from lcr_tf.training import transfer

    tmap = transfer_map.plan(source.anchors.pose3d, source.anchors.skeleton, anchor_set.pose3d, anchor_set.skeleton)
    for line in tmap.describe():
        print(line, flush=True)
    target = factory.build_model(dataclasses.replace(model_config, backbone_weights="none"), anchor_set)
    target(tf.zeros([1, model_config.image_size, model_config.image_size, 3]))
    try:
        counts = transfer.transfer_weights(source.model, target, tmap)
    except ValueError as e:
        raise ConfigError(f"--init_from: {e}") from None
    weights = os.path.join(work_dir, TRANSFERRED_WEIGHTS)
    target.save_weights(weights)
    run_folder.write_json(os.path.join(work_dir, TRANSFER_FILE),
                          {**tmap.to_dict(), "weights": counts, "source_weights": source.weights,
                           "target_weights": weights})
    print(f"weights: {counts['copied']} copied, {counts['remapped']} remapped by class and joint, of "
          f"{counts['total']}; written to {weights}", flush=True)
    return weights


#: Files of ``<model_dir>/init_from/`` when ``--anchors`` differ from the source's.
TRANSFER_FILE = "weight_transfer.json"
TRANSFERRED_WEIGHTS = "transferred.weights.h5"


def run_with_init_from(flag_values) -> TrainResult:
    """``--init_from``: converts or reads the source into ``<model_dir>/init_from/``, then trains from it (with
    ``--anchors`` of other anchor-poses, from the weights :func:`transfer_init` makes)."""
    import dataclasses
    import os

    import numpy as np

    if not flag_values.model_dir:
        raise ConfigError("--model_dir is required")
    work_dir = os.path.join(flag_values.model_dir, "init_from")
    source = init_source(flag_values.init_from, work_dir)
    anchor_set = _new_anchor_set(flag_values, source)
    if anchor_set is not None:
        os.makedirs(work_dir, exist_ok=True)
        for name, value in (("num_anchors", anchor_set.num_anchors), ("num_joints", anchor_set.skeleton.num_joints)):
            if flag_values[name].value not in (0, value):  # 0: the anchors' (a flagfile may state what it expects)
                raise ConfigError(f"--{name}={flag_values[name].value} but --anchors {flag_values.anchors} has {value}")
        flag_values.num_anchors, flag_values.num_joints = anchor_set.num_anchors, anchor_set.skeleton.num_joints
        config = fine_tuning_config(config_lib.from_flags(flag_values), source.config)
        model = dataclasses.replace(config.model, num_anchors=anchor_set.num_anchors,
                                    num_joints=anchor_set.skeleton.num_joints)
        weights = transfer_init(source, model, anchor_set, work_dir)
        del source  # the source network is not needed while training
        config = dataclasses.replace(config, model=model,
                                     data=dataclasses.replace(config.data, init_weights=weights))
        print(f"fine-tuning from {flag_values.init_from} to the {anchor_set.skeleton.name} anchor-poses of "
              f"{flag_values.anchors}", flush=True)
        return train(config, anchor_set=anchor_set)
    source_config, anchors, weights = source.config, source.anchors, source.weights
    del source
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
