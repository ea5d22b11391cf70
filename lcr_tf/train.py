"""Trains LCR-Net on TFRecord shards (paper Sec 3, 3.5 and 4).

From Python: ``lcr_tf.train.train(config)`` with a :class:`lcr_tf.config.TrainConfig`
(``lcr_tf.config.parse(["--flagfile=configs/synthetic_tiny.flags", ...])`` builds one from flags). From
the command line:

    python -m lcr_tf.train --flagfile=configs/synthetic_tiny.flags --model_dir=runs/tiny \\
        --train_data='data/train-*.tfrecord' --val_data='data/val-*.tfrecord' --anchors=anchors.npz

SGD with momentum (or Adam, ``--optimizer``) and a piecewise-constant learning rate
(``--lr_boundaries`` / ``--lr_values``, in steps; Sec 4: 1e-3 then 1e-4), L2 weight decay on the
kernels, a precision policy (``--precision``: float32; mixed_float16 with dynamic loss scaling;
mixed_bfloat16), global-norm clipping (``--clipnorm``). The gradient step is
:func:`lcr_tf.optimization.apply_gradients`: one sum over the replicas, then the finiteness check, the
unscaling and the clipping of the global gradient.

Distribution (:mod:`lcr_tf.distribute`): ``--strategy`` picks the tf.distribute strategy; ``auto``
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
* ``config.json``: the run's :class:`lcr_tf.config.TrainConfig` (its sections, the skeleton and the same
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

import dataclasses
import math
import os
import sys
from typing import Callable, Dict, List, Optional

from absl import flags

from lcr_tf import cli, distribute
from lcr_tf import config as config_lib
from lcr_tf import precision as precision_lib
from lcr_tf.config import ConfigError, FlagError, TrainConfig  # noqa: F401 (FlagError: the old name)
from lcr_tf.contracts import atomic_files, run_folder

OPTIMIZERS = config_lib.OPTIMIZERS
PRECISIONS = config_lib.PRECISIONS
CHECKPOINT_DIR = run_folder.CHECKPOINT_DIR
CONFIG_FILE = run_folder.CONFIG_FILE
METRICS_FILE = run_folder.METRICS_FILE  # the first and last epochs' logs of the latest run
FINAL_WEIGHTS = run_folder.FINAL_WEIGHTS
RESUMED = "resumed from step {}"


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the trainer's flags (:func:`lcr_tf.config.define_flags`); called only when run as a
    program, so importing the module defines none."""
    config_lib.define_flags(flag_values)


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
    (:func:`lcr_tf.optimization.apply_gradients`), and weight decay is the L2 term of the loss
    (:meth:`LCRNet.weight_decay_loss`), the same for both.
    """
    import keras
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, beta_1=momentum)
    raise ConfigError(f"--optimizer must be one of {OPTIMIZERS}, got {name!r}")


def make_strategy(name: str, cpu_replicas: int = 1):
    """The tf.distribute strategy of ``--strategy`` and ``--cpu_replicas`` (:mod:`lcr_tf.distribute`)."""
    try:
        return distribute.make_strategy(name, cpu_replicas)
    except distribute.DistributionError as e:
        raise ConfigError(str(e)) from None


def top_poses(outputs: Dict, anchors2d, anchors3d) -> Dict:
    """The top-scoring pose of each image of :meth:`lcr_tf.modeling.lcr_model.LCRNet.call` outputs.

    The best (valid proposal, foreground class) pair by class probability; its class block is decoded with
    :func:`lcr_tf.ops.pose_coding.decode_poses`.

    Args:
      outputs: the model's outputs for B images (R proposals, C = 2K + 1 classes).
      anchors2d: (2K, J, 2) box-normalised; anchors3d: (2K, J, 3) metres.
    Returns:
      dict of ``box`` (B, 4) xyxy pixels, ``class`` (B,) int in 1..2K, ``score`` (B,) float32 (0 when the
      image has no valid proposal), ``pose2d`` (B, J, 2) pixels and ``pose3d`` (B, J, 3) metres.
    """
    import tensorflow as tf

    from lcr_tf.modeling import lcr_model
    from lcr_tf.ops import pose_coding

    probs = outputs[lcr_model.CLASS_PROBS][..., 1:]  # (B, R, 2K)
    probs = tf.where(outputs[lcr_model.VALID][..., None], probs, -1.0)
    batch, fg = tf.shape(probs)[0], tf.shape(probs)[2]
    flat = tf.argmax(tf.reshape(probs, [batch, -1]), axis=-1, output_type=tf.int32)
    region, cls = flat // fg, flat % fg + 1
    score = tf.maximum(tf.gather(tf.reshape(probs, [batch, -1]), flat, batch_dims=1), 0.0)
    box = tf.gather(outputs[lcr_model.BOXES], region, batch_dims=1)
    regression = tf.gather(outputs[lcr_model.REGRESSION], region, batch_dims=1)  # (B, C 5J)
    num_joints = int(anchors2d.shape[1])
    block = pose_coding.select_class_block(regression, cls, num_joints)
    pose2d, pose3d = pose_coding.decode_poses(block[:, None], box, cls[:, None], anchors2d, anchors3d)
    return {"box": box, "class": cls, "score": score, "pose2d": pose2d[:, 0], "pose3d": pose3d[:, 0]}


def draw_top_poses(images, top: Dict, skeleton="lcr13"):
    """(B, S, S, 3) float RGB [0, 255] images with each one's top box and 2D pose drawn
    (:func:`lcr_tf.viz.draw_people`: green bones, red joints, box and score in yellow) -> (B, S, S, 3)
    uint8."""
    import numpy as np

    from lcr_tf import viz

    return np.stack([viz.draw_people(image, np.asarray(top["box"][i:i + 1]), np.asarray(top["pose2d"][i:i + 1]),
                                     np.asarray(top["score"][i:i + 1]), skeleton, colours=[(0, 255, 0)],
                                     box_colour=(255, 255, 0), joint_colour=(255, 0, 0), thickness=1,
                                     font_scale=0.35, score_inside=True)
                     for i, image in enumerate(np.asarray(images))])


def _metadata(plugin: str):
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = plugin
    return meta


def write_scalar(name: str, value: float, step: int) -> None:
    """A TensorBoard scalar, written with core TensorFlow (``tf.summary.scalar`` needs the tensorboard
    package; this writes the same event: a float32 tensor tagged for the "scalars" plugin)."""
    import tensorflow as tf

    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step, metadata=_metadata("scalars"))


def write_images(name: str, images, step: int) -> None:
    """TensorBoard images from (N, H, W, 3) uint8 RGB: the "images" plugin's tensor ``[width, height,
    png_1, ..., png_N]`` of strings, written with core TensorFlow (as :func:`write_scalar`)."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images, tf.uint8)
    height, width = int(images.shape[1]), int(images.shape[2])
    encoded = tf.map_fn(tf.image.encode_png, images, fn_output_signature=tf.string)
    tensor = tf.concat([tf.constant([str(width), str(height)]), encoded], axis=0)
    tf.summary.write(name, tensor, step=step, metadata=_metadata("images"))


#: The losses a progress line shows, when the logs have them.
PROGRESS_KEYS = ("total_loss", "classification", "regression", "rpn_objectness", "proposal_recall")


class ProgressMeter:
    """Decides when a progress line is due and writes it: at most one per ``every_s`` seconds, and the last
    step always. Pure Python with an injectable clock, so its timing is testable.

    A line reads ``step 1200/6000 (20%), 23.4 images/s, total_loss 1.2345, ..., 3 min 25 s left``; images/s
    and the time left are those of the steps since the previous line.
    """

    def __init__(self, num_steps: int, images_per_step: int, every_s: float, write, clock=None):
        import time

        self.num_steps, self.images_per_step, self.every_s = int(num_steps), int(images_per_step), float(every_s)
        self.write, self.clock = write, clock or time.perf_counter
        self.last_time, self.last_step = None, None

    def start(self, step: int) -> None:
        self.last_time, self.last_step = self.clock(), int(step)

    def update(self, step: int, logs=None) -> None:
        if self.every_s <= 0:
            return
        if self.last_time is None:
            self.start(step - 1)
        now = self.clock()
        if now - self.last_time < self.every_s and step < self.num_steps:
            return
        steps = max(step - self.last_step, 0)
        rate = steps / max(now - self.last_time, 1e-9)
        parts = [f"step {step}/{self.num_steps} ({100.0 * step / max(self.num_steps, 1):.0f}%)",
                 f"{rate * self.images_per_step:.1f} images/s"]
        parts += [f"{k} {float(logs[k]):.4f}" for k in PROGRESS_KEYS if logs and k in logs]
        if step < self.num_steps and rate > 0:
            parts.append(f"{cli.format_duration((self.num_steps - step) / rate)} left")
        self.write(", ".join(parts))
        self.last_time, self.last_step = now, step


def _callbacks(model, manager, model_dir: str, val_images, run, images_per_step: int, progress):
    """The trainer's Keras callbacks and its throughput record (a list of images/s, one per epoch)."""
    import time

    import keras
    import tensorflow as tf

    train_writer = tf.summary.create_file_writer(os.path.join(model_dir, run_folder.TRAIN_LOGS))
    val_writer = tf.summary.create_file_writer(os.path.join(model_dir, run_folder.VALIDATION_LOGS))
    throughput: List[float] = []

    meter = ProgressMeter(run.num_steps, images_per_step, run.progress_every_s, progress)

    def step():
        return int(model.global_step.numpy())

    class Training(keras.callbacks.Callback):
        """Checkpoints, TensorBoard scalars and images, throughput, and the stop at --num_steps."""

        def on_train_begin(self, logs=None):
            meter.start(step())

        def on_epoch_begin(self, epoch, logs=None):
            self.started, self.steps, self.last_end = time.perf_counter(), 0, None

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            self.last_end = time.perf_counter()
            current = step()
            if current % run.log_every == 0 and logs:
                with train_writer.as_default():
                    for name, value in logs.items():
                        write_scalar(name, value, current)
                    write_scalar("learning_rate", model.optimizer.learning_rate.numpy(), current)
            if current % run.checkpoint_every == 0:
                manager.save(checkpoint_number=current)
            if current >= run.num_steps:
                model.stop_training = True
            meter.update(current, logs)

        def on_epoch_end(self, epoch, logs=None):
            if self.steps and self.last_end is not None:
                # Training only: validation runs after the epoch's last training step.
                throughput.append(self.steps * images_per_step / max(self.last_end - self.started, 1e-9))
            current = step()
            with val_writer.as_default():
                for name, value in (logs or {}).items():
                    if name.startswith("val_"):
                        write_scalar(name[4:], value, current)
                if val_images is not None:
                    outputs = model(val_images, training=False)
                    top = top_poses(outputs, model.anchor_pose2d, model.anchor_pose3d)
                    drawn = draw_top_poses(val_images, top, model.skeleton_name)
                    write_images("top_pose", drawn, current)
            with train_writer.as_default():
                if throughput:
                    write_scalar("images_per_second", throughput[-1], current)
            train_writer.flush()
            val_writer.flush()

    return [Training()], throughput


def train(config: TrainConfig, progress: Optional[Callable[[str], None]] = None) -> TrainResult:
    """Runs the training ``config`` describes (no global flag is read). Raises :class:`ConfigError`, naming
    the flag, on settings that cannot work.

    ``progress`` receives a progress line every ``config.run.progress_every_s`` seconds (default: printed
    on stdout).
    """
    if progress is None:
        def progress(line: str) -> None:
            print(line, flush=True)
    import keras
    import tensorflow as tf

    from lcr_tf import anchors as anchors_lib

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

    from lcr_tf import optimization
    from lcr_tf.data import pipeline
    from lcr_tf.data import shards as shards_lib
    from lcr_tf.modeling import factory, lcr_model

    shards_lib.SKIPPED.clear()  # counts this run's damaged shards only (train() may run twice in a process)

    run, opt, data = config.run, config.optimization, config.data
    policy = opt.precision
    with strategy.scope():
        try:
            model = factory.build_model(config.model, anchor_set)
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
            return ds.map(lcr_model.select_batch)

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
                deterministic=True)
            val_images = next(iter(summary.take(1)))["image"]

    remaining = run.num_steps - start
    logs: Dict[str, float] = {}
    if remaining > 0:
        per_epoch = min(run.steps_per_epoch, remaining)
        callbacks, throughput = _callbacks(model, manager, model_dir, val_images, run, batch_size, progress)
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


def main(argv: List[str]) -> None:
    try:
        train(config_lib.from_flags(flags.FLAGS))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
