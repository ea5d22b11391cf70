"""Where a training step runs: tf.distribute strategies, logical CPU replicas, and the chief's run folder.

Strategies (``--strategy``):

==================  ==================================================================================
``auto``            ``mirrored`` over the local GPUs when there are any, or over the logical CPU devices
                    of ``--cpu_replicas`` > 1; else ``default``
``default``         no distribution: one replica on the default device
``mirrored``        ``tf.distribute.MirroredStrategy`` over the local GPUs (or logical CPUs)
``one_device``      ``OneDeviceStrategy`` on the first GPU, else the CPU
``multi_worker``    ``MultiWorkerMirroredStrategy``; the cluster comes from ``TF_CONFIG``
==================  ==================================================================================

Logical CPU replicas (:func:`configure_cpu_replicas`): the CPU split into N logical devices that a
mirrored strategy treats as N replicas. They share the machine's cores, so they are not faster; they run
the distributed code path (per-replica batches, cross-replica sums, synchronised batch norm) where no GPU
is, for tests and for checking a configuration before a GPU run.

Global batches: ``--batch_size`` is the global batch; every replica takes ``batch_size / replicas``
images (:func:`per_replica_batch`). An image's place in the global batch is
``replica_id * per_replica_batch + i`` (:func:`global_image_index`), so anything seeded by it (the RoI
sampling) is the same whatever the number of replicas.

Multi-worker runs (:func:`worker_model_dir`): every worker runs the same program (collective ops need
them all: saving a checkpoint is one), but only the chief writes the model directory; the others write
to a temporary directory of their own that they delete at the end (:func:`cleanup_worker_dir`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Optional

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "one_device")


class DistributionError(ValueError):
    """A strategy or batch setting that cannot work; the message says which and why."""


def configure_cpu_replicas(count: int) -> None:
    """Splits the first physical CPU into ``count`` logical devices (``/cpu:0`` .. ``/cpu:{count-1}``).

    Must run before TensorFlow initialises its devices (before the first op); a second call with the
    same count is a no-op. ``count`` <= 1 leaves the CPU as it is.

    Raises:
      DistributionError: the devices are already initialised with another number of logical CPUs.
    """
    if count <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have == count:
            return
        raise DistributionError(
            f"--cpu_replicas={count}: TensorFlow's devices are already initialised with {have} logical "
            f"CPU(s); set the replicas before anything else runs TensorFlow") from None


def make_strategy(name: str, cpu_replicas: int = 1) -> tf.distribute.Strategy:
    """The strategy of ``name`` (module docstring); ``cpu_replicas`` > 1 mirrors over that many logical
    CPUs (configured here) when there is no GPU."""
    if name not in STRATEGIES:
        raise DistributionError(f"--strategy must be one of {STRATEGIES}, got {name!r}")
    if cpu_replicas < 1:
        raise DistributionError(f"--cpu_replicas must be >= 1, got {cpu_replicas}")
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise DistributionError("--strategy=multi_worker reads the cluster from the TF_CONFIG environment "
                                    "variable, which is not set")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as e:
            raise DistributionError(f"TF_CONFIG is not JSON: {e}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    configure_cpu_replicas(cpu_replicas)
    gpus = tf.config.list_physical_devices("GPU")
    cpus = [f"/cpu:{i}" for i in range(cpu_replicas)]
    if name == "auto":
        name = "mirrored" if gpus or cpu_replicas > 1 else "default"
    if name == "default":
        if cpu_replicas > 1:
            raise DistributionError(f"--cpu_replicas={cpu_replicas} needs --strategy=mirrored or auto, "
                                    f"not default")
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    return tf.distribute.MirroredStrategy(None if gpus else cpus)


def per_replica_batch(global_batch: int, strategy: tf.distribute.Strategy) -> int:
    """Images per replica of a global batch; raises :class:`DistributionError` when the replicas do not
    divide it (Keras would otherwise give the replicas unequal shares, or drop images)."""
    replicas = strategy.num_replicas_in_sync
    if global_batch < 1 or global_batch % replicas:
        raise DistributionError(
            f"--batch_size={global_batch} is the global batch and must be a positive multiple of the "
            f"{replicas} replicas of the strategy ({strategy_name(strategy)}); e.g. --batch_size="
            f"{replicas * max(1, global_batch // replicas)}")
    return global_batch // replicas


def replica_id() -> tf.Tensor:
    """() int32 id of the running replica in its sync group (0 outside a strategy's replicas)."""
    context = tf.distribute.get_replica_context()
    if context is None:
        return tf.constant(0, tf.int32)
    return tf.cast(context.replica_id_in_sync_group, tf.int32)


def num_replicas() -> int:
    """Replicas of the current strategy (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def global_image_index(local_batch) -> tf.Tensor:
    """(B,) int32 places of this replica's B images in the global batch (module docstring)."""
    local_batch = tf.cast(local_batch, tf.int32)
    return replica_id() * local_batch + tf.range(local_batch)


def cross_replica_sum(value):
    """The sum over the replicas of ``value`` (a tensor or a nest of them), on every replica; ``value``
    itself outside a replica context or with one replica."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run folder: always, except on the non-chief workers of a
    multi-worker strategy (task type ``worker`` with index > 0 when there is no ``chief`` task, or any
    task other than the chief when there is one)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    has_chief = "chief" in (resolver.cluster_spec().as_dict() or {})
    return task_type == "worker" and task_id == 0 and not has_chief


def worker_model_dir(model_dir: str, strategy: tf.distribute.Strategy) -> str:
    """``model_dir`` for the chief; a new temporary directory for any other worker (delete it with
    :func:`cleanup_worker_dir`)."""
    if is_chief(strategy):
        return model_dir
    resolver = strategy.cluster_resolver
    return tempfile.mkdtemp(prefix=f"lcr_tf_{resolver.task_type}{resolver.task_id}_")


def cleanup_worker_dir(directory: str, model_dir: str) -> None:
    """Deletes a non-chief worker's temporary directory (never ``model_dir``)."""
    if os.path.abspath(directory) != os.path.abspath(model_dir):
        shutil.rmtree(directory, ignore_errors=True)


def describe(strategy: tf.distribute.Strategy) -> dict:
    """``{"strategy": class name, "replicas": N, "workers": W}`` of a strategy, for run records."""
    resolver = getattr(strategy, "cluster_resolver", None)
    workers: Optional[int] = None
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and resolver is not None:
        spec = resolver.cluster_spec().as_dict() or {}
        workers = sum(len(spec.get(kind, [])) for kind in ("chief", "worker"))
    return {"strategy": strategy_name(strategy), "replicas": int(strategy.num_replicas_in_sync),
            "workers": workers or 1}


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The public class name of a strategy (``MultiWorkerMirroredStrategy`` is implemented by a class of
    another name); ``"default"`` for the default strategy."""
    for kind, name in ((tf.distribute.MultiWorkerMirroredStrategy, "MultiWorkerMirroredStrategy"),
                       (tf.distribute.MirroredStrategy, "MirroredStrategy"),
                       (tf.distribute.OneDeviceStrategy, "OneDeviceStrategy")):
        if isinstance(strategy, kind):
            return name
    return "default"
