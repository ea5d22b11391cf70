"""The training loop (paper Sec 3.5 and 4): a run from its :class:`lcr_tf.training.config.TrainConfig` to
its run folder.

:func:`train` builds the strategy (:mod:`lcr_tf.training.distribute`), the precision policy
(:mod:`lcr_tf.training.precision`), the model with its training step
(:class:`lcr_tf.training.step.TrainableLCRNet`), the optimizer and the input pipelines, restores the
latest checkpoint or the initial weights, and runs Keras' ``fit`` with the callbacks of
:mod:`lcr_tf.training.callbacks`; ``python -m lcr_tf.train`` (:mod:`lcr_tf.train`) documents the run
folder it writes.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Callable, Dict, Optional

from lcr_tf.contracts import atomic_files, run_folder
from lcr_tf.training import callbacks as callbacks_lib
from lcr_tf.training import config as config_lib
from lcr_tf.training import distribute
from lcr_tf.training import precision as precision_lib
from lcr_tf.training.config import ConfigError, TrainConfig

OPTIMIZERS = config_lib.OPTIMIZERS
RESUMED = "resumed from step {}"


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did: the last epoch's logs (empty when the run had no step left), the first and
    last step, and the run folder."""

    logs: Dict[str, float]
    start_step: int
    end_step: int
    model_dir: str


def make_optimizer(name: str, learning_rate, momentum: float):
    """The training optimizer's update rule: ``"sgd"`` (SGD with momentum, the paper's) or ``"adam"``
    (``beta_1`` = ``momentum``); ``learning_rate`` a float or a schedule.

    Clipping, loss scaling and the cross-replica sum are the gradient step's
    (:func:`lcr_tf.training.optimization.apply_gradients`), and weight decay is the L2 term of the loss
    (:meth:`lcr_tf.training.step.TrainableLCRNet.weight_decay_loss`), the same for both.
    """
    import keras
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, beta_1=momentum)
    raise ConfigError(f"--optimizer must be one of {OPTIMIZERS}, got {name!r}")


def make_strategy(name: str, cpu_replicas: int = 1):
    """The tf.distribute strategy of ``--strategy`` and ``--cpu_replicas`` (:mod:`lcr_tf.training.distribute`)."""
    try:
        return distribute.make_strategy(name, cpu_replicas)
    except distribute.DistributionError as e:
        raise ConfigError(str(e)) from None


def train(config: TrainConfig, progress: Optional[Callable[[str], None]] = None, anchor_set=None) -> TrainResult:
    """Runs the training ``config`` describes (no global flag is read). Raises :class:`ConfigError`, naming
    the flag, on settings that cannot work.

    ``anchor_set``: the model's anchor-poses when they do not come from ``config.data.anchors`` (a model
    converted from the authors' release, whose anchors are its own: anything with ``num_anchors``,
    ``pose2d``, ``pose3d`` and ``skeleton`` as :class:`lcr_tf.poses.anchors.AnchorSet`).

    ``progress`` receives a progress line every ``config.run.progress_every_s`` seconds (default: printed
    on stdout).
    """
    if progress is None:
        def progress(line: str) -> None:
            print(line, flush=True)
    import keras
    import tensorflow as tf

    from lcr_tf.poses import anchors as anchors_lib

    config_lib.check_inputs(config)
    run = config.run
    # The strategy first: logical CPU devices must be configured before TensorFlow runs anything.
    strategy = make_strategy(run.strategy, run.cpu_replicas)
    try:
        distribute.per_replica_batch(config.input.batch_size, strategy)
    except distribute.DistributionError as e:
        raise ConfigError(str(e)) from None
    keras.utils.set_random_seed(run.seed)
    if run.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy, why = precision_lib.resolve(config.optimization.precision)
    print(f"precision {policy} ({why})", flush=True)
    # The run folder records the policy that ran, so a resumed or exported run does not depend on where.
    config = dataclasses.replace(config, optimization=dataclasses.replace(config.optimization, precision=policy))
    keras.mixed_precision.set_global_policy(policy)
    if anchor_set is None:
        anchor_set = anchors_lib.load(config.data.anchors)
    config_lib.check_anchors(config, anchor_set)
    chief = distribute.is_chief(strategy)
    model_dir = distribute.worker_model_dir(run.model_dir, strategy)
    os.makedirs(model_dir, exist_ok=True)
    try:
        return _train(config, strategy, anchor_set, model_dir, chief, progress)
    finally:
        distribute.cleanup_worker_dir(model_dir, run.model_dir)


def _train(config: TrainConfig, strategy, anchor_set, model_dir: str, chief: bool, progress) -> TrainResult:
    import statistics

    import keras
    import tensorflow as tf

    from lcr_tf.data import pipeline
    from lcr_tf.data import shards as shards_lib
    from lcr_tf.training import optimization
    from lcr_tf.training import step as step_lib

    shards_lib.SKIPPED.clear()  # counts this run's damaged shards only (train() may run twice in a process)

    run, opt, data = config.run, config.optimization, config.data
    policy = opt.precision
    with strategy.scope():
        try:
            model = step_lib.build_model(config.model, anchor_set)
        except (ValueError, FileNotFoundError) as e:
            raise ConfigError(f"cannot build the model: {e}") from None
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(list(opt.lr_boundaries),
                                                                     list(opt.lr_values))
        optimizer = make_optimizer(opt.optimizer, schedule, opt.momentum)
        loss_scale = optimization.DynamicLossScale() if opt.loss_scale == "dynamic" else None
        model.compile(optimizer=optimizer, loss_scale=loss_scale, clipnorm=opt.clipnorm, jit_compile=False)
        # Every weight and optimizer slot exists before a restore, so the restore is immediate and total.
        size = config.model.image_size
        model(tf.zeros([1, size, size, 3]))
        optimizer.build(model.trainable_variables)
        tracked = dict(model=model, optimizer=optimizer)
        if loss_scale is not None:
            tracked["loss_scale"] = loss_scale
        checkpoint = tf.train.Checkpoint(**tracked)
        # Every worker saves (saving is a collective op); only the chief's directory is the run's.
        manager = tf.train.CheckpointManager(checkpoint, run_folder.checkpoint_dir(model_dir),
                                             max_to_keep=run.keep_checkpoints)
        # Non-chief workers restore the chief's checkpoint, so that every worker resumes at one step.
        latest = tf.train.latest_checkpoint(run_folder.checkpoint_dir(run.model_dir))
        if latest:
            checkpoint.restore(latest).assert_existing_objects_matched()
            print(RESUMED.format(int(model.global_step.numpy())), flush=True)
        elif data.init_weights:
            if not os.path.isfile(data.init_weights):
                raise ConfigError(f"--init_weights: no such file {data.init_weights!r}")
            model.load_weights(data.init_weights)
            # A fine-tuning run counts its own steps (and learning-rate schedule) from 0.
            model.global_step.assign(0)
            print(f"initialised from {data.init_weights}", flush=True)
    start = int(model.global_step.numpy())
    described = distribute.describe(strategy)

    if chief:
        run_folder.write_config(model_dir, {**config.to_dict(), "flags": config_lib.to_flags(config),
                                            "precision": policy, **described}, skeleton=model.skeleton_name)

    batch_size = config.input.batch_size

    def distributed(pattern, input_config, training, seed, deterministic):
        """The dataset of ``pattern`` as the strategy feeds it: one pipeline per worker, reading its
        share of the shards (:func:`pipeline.make_dataset` ``shard``), in per-replica batches."""
        def dataset(context):
            per_replica = context.get_per_replica_batch_size(batch_size)
            ds = pipeline.make_dataset(
                pattern, dataclasses.replace(input_config, batch_size=per_replica), training=training,
                anchors=anchor_set, seed=seed, deterministic=deterministic,
                shard=(context.num_input_pipelines, context.input_pipeline_id))
            return ds.map(step_lib.select_batch)

        return strategy.distribute_datasets_from_function(dataset)

    # Training and validation stream until the step count says stop.
    input_config = dataclasses.replace(config.input, num_epochs=None)
    # A resumed run draws a new input stream (seeded by its first step), not the first one again.
    train_ds = distributed(data.train_data, input_config, True, run.seed * 1_000_003 + start,
                           run.deterministic)
    val_ds, val_images = None, None
    if data.val_data:
        val_ds = distributed(data.val_data, input_config, False, run.seed, True)
        if run.num_summary_images > 0 and chief:
            summary = pipeline.make_dataset(data.val_data, dataclasses.replace(
                input_config, batch_size=run.num_summary_images), training=False, seed=run.seed,
                deterministic=True, skeleton=anchor_set.skeleton)
            val_images = next(iter(summary.take(1)))["image"]

    remaining = run.num_steps - start
    logs: Dict[str, float] = {}
    if remaining > 0:
        per_epoch = min(run.steps_per_epoch, remaining)
        callbacks, throughput = callbacks_lib.make_callbacks(model, manager, model_dir, val_images, run, batch_size,
                                                             progress)
        try:
            history = model.fit(train_ds, epochs=math.ceil(remaining / per_epoch), steps_per_epoch=per_epoch,
                                validation_data=val_ds, validation_steps=run.val_steps if val_ds else None,
                                callbacks=callbacks, verbose=run.verbose)
        except (tf.errors.InvalidArgumentError, tf.errors.DataLossError):
            damaged = shards_lib.SKIPPED.first()
            if damaged is None or config.input.skip_corrupt_records:
                raise
            raise _stopped_on_corrupt_record(damaged, model, manager) from None
        logs = {k: float(v[-1]) for k, v in history.history.items()}
        skipped = shards_lib.SKIPPED.summary()
        if skipped["events"]:
            records = skipped["records_skipped"]
            print(f"skipped corrupt records: {'an unknown number of' if records is None else records} record(s)"
                  f" ({skipped['bytes_skipped']} bytes) in {len(skipped['shards'])} shard(s) over "
                  f"{skipped['events']} pass(es): {', '.join(skipped['shards'])}", flush=True)
        if chief:
            run_folder.write_json(run_folder.metrics_path(model_dir), {
                "first_epoch": {k: float(v[0]) for k, v in history.history.items()},
                "last_epoch": logs, "start_step": start, "epochs": len(history.epoch),
                "images_per_second": statistics.median(throughput) if throughput else None,
                "images_per_second_per_epoch": throughput, "precision": policy,
                "corrupt_records": skipped, **described})
    end = int(model.global_step.numpy())
    if manager.latest_checkpoint is None or not manager.latest_checkpoint.endswith(f"-{end}"):
        manager.save(checkpoint_number=end)
    with atomic_files.replacing(run_folder.weights_path(model_dir)) as tmp:
        model.save_weights(tmp)
    print(f"finished at step {end} (optimizer iterations {int(optimizer.iterations.numpy())})", flush=True)
    return TrainResult(logs=logs, start_step=start, end_step=end, model_dir=run.model_dir)


def _stopped_on_corrupt_record(damaged, model, manager) -> ConfigError:
    """A run whose input met a corrupt record without ``--skip_corrupt_records``: saves a checkpoint of
    the step reached (so a run that stops before its first periodic checkpoint keeps its work, and a
    rerun resumes there) and returns the one-line error naming the shard, the record and its byte offset
    (``damaged``: :meth:`lcr_tf.data.shards.SkipLog.first`)."""
    from lcr_tf.data import shards as shards_lib

    step = int(model.global_step.numpy())
    saved = manager.save(checkpoint_number=step)
    return ConfigError(f"{shards_lib.corrupt_line(*damaged)}; the run stopped at step {step} and saved "
                       f"checkpoint {os.path.basename(saved)} (rerun to resume after replacing the shard, or "
                       f"--skip_corrupt_records to skip the rest of such a shard)")
