"""The gradient step of training, right under any number of replicas: one cross-replica sum, then the
decisions that need the whole gradient.

A Keras optimizer's ``apply`` clips each replica's gradient *before* the cross-replica sum (so
``clipnorm`` means something else with every replica count), and its ``LossScaleOptimizer`` decides
whether the step is finite from the first replica's gradient alone (another replica's overflow then
reaches the weights as inf / NaN). :func:`apply_gradients` orders it the other way, on every strategy:

1. the replicas' gradients are summed (one all-reduce; every replica holds the global gradient);
2. one flag, "every replica's gradient is finite", is all-reduced (a count of the replicas with inf or
   NaN), so every replica takes the same decision;
3. the sum is divided by the loss scale (``mixed_float16``) and clipped to ``clipnorm`` by its global
   norm (:func:`tf.clip_by_global_norm`: the norm over every variable's gradient together);
4. when the flag says finite, the optimizer's ``update_step`` runs on every variable (the rule of
   SGD, Adam, ...) and its ``iterations`` advance; otherwise nothing changes but the loss scale, which
   halves.

:class:`DynamicLossScale` is the loss scaling of ``mixed_float16`` (float16 gradients underflow without
it): the loss is multiplied by ``scale`` before the gradients are taken; after ``growth_interval``
finite steps in a row the scale doubles, and a non-finite step halves it (and is skipped). bfloat16 has
float32's exponent range and needs no scaling.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import tensorflow as tf

from lcr_tf.training import distribute

INITIAL_LOSS_SCALE = 2.0 ** 15
GROWTH_INTERVAL = 2000
MIN_LOSS_SCALE = 1.0


class DynamicLossScale(tf.Module):
    """Dynamic loss scaling state (module docstring); checkpointed with the optimizer.

    Attributes:
      scale: () float32 variable, the factor applied to the loss.
      good_steps: () int64 variable, finite steps since the last change of the scale.
      growth_interval: finite steps after which the scale doubles.
    """

    def __init__(self, initial_scale: float = INITIAL_LOSS_SCALE, growth_interval: int = GROWTH_INTERVAL,
                 name: str = "loss_scale"):
        super().__init__(name=name)
        if initial_scale < MIN_LOSS_SCALE or growth_interval < 1:
            raise ValueError(f"need initial_scale >= {MIN_LOSS_SCALE} and growth_interval >= 1, got "
                             f"{initial_scale} and {growth_interval}")
        self.growth_interval = int(growth_interval)
        # ONLY_FIRST_REPLICA: updated in cross-replica context with one value for all replicas.
        aggregation = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.scale = tf.Variable(float(initial_scale), dtype=tf.float32, trainable=False,
                                 aggregation=aggregation, name="scale")
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, aggregation=aggregation,
                                      name="good_steps")

    def scale_loss(self, loss) -> tf.Tensor:
        return tf.cast(loss, tf.float32) * self.scale

    def update(self, finite) -> None:
        """After a step: grow the scale after ``growth_interval`` finite steps, halve it after a
        non-finite one (never below :data:`MIN_LOSS_SCALE`)."""
        grow = tf.logical_and(finite, self.good_steps + 1 >= self.growth_interval)
        self.scale.assign(tf.where(grow, self.scale * 2.0,
                                   tf.where(finite, self.scale, tf.maximum(self.scale * 0.5,
                                                                           MIN_LOSS_SCALE))))
        self.good_steps.assign(tf.where(tf.logical_and(finite, tf.logical_not(grow)),
                                        self.good_steps + 1, tf.zeros_like(self.good_steps)))


def all_finite(gradients: Sequence[Optional[tf.Tensor]]) -> tf.Tensor:
    """() bool: every element of every (non-None) gradient is finite."""
    checks = [tf.reduce_all(tf.math.is_finite(g)) for g in gradients if g is not None]
    return tf.reduce_all(tf.stack(checks)) if checks else tf.constant(True)


def _check_plain(optimizer) -> None:
    extras = {name: getattr(optimizer, name, None) for name in
              ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay", "gradient_accumulation_steps")}
    extras = {name: value for name, value in extras.items() if value}
    if getattr(optimizer, "use_ema", False):
        extras["use_ema"] = True
    if hasattr(optimizer, "inner_optimizer") or extras:
        raise ValueError(f"apply_gradients applies {type(optimizer).__name__}'s update rule only; clipping, "
                         f"loss scaling and weight decay belong to the step, not the optimizer (it has "
                         f"{extras or 'an inner optimizer'})")


def apply_gradients(optimizer, gradients: Sequence[Optional[tf.Tensor]], variables,
                    loss_scale: Optional[DynamicLossScale] = None, clipnorm: float = 0.0
                    ) -> Tuple[tf.Tensor, tf.Tensor]:
    """One optimizer step from this replica's gradients (module docstring), in a replica context (a
    ``train_step`` under ``strategy.run`` or Keras ``fit``) or without a strategy.

    Args:
      optimizer: a built Keras 3 optimizer, not a LossScaleOptimizer, without clipping, weight decay, EMA
        or gradient accumulation of its own (its ``update_step`` is the rule applied here).
      gradients: this replica's gradients of its share of the loss (times ``loss_scale.scale`` when
        given), one per variable, None for variables without one.
      variables: the trainable variables (Keras variables).
      loss_scale: the dynamic loss scale of ``mixed_float16``, or None.
      clipnorm: > 0 clips the summed, unscaled gradient to this global norm.
    Returns:
      (applied, norm): () bool, True when the step was applied (every replica's gradient was finite),
      and () float32, the global norm of the summed, unscaled gradient before clipping (0 when it is not
      finite).
    """
    _check_plain(optimizer)
    variables = list(variables)
    if not optimizer.built:
        # As Keras' own apply does: its slots (momentum, ...) are created on the first step.
        optimizer.build(variables)
    present = [i for i, g in enumerate(gradients) if g is not None]
    local = [tf.convert_to_tensor(gradients[i]) for i in present]
    local_bad = tf.cast(tf.logical_not(all_finite(local)), tf.float32)
    summed, bad_replicas = distribute.cross_replica_sum((local, local_bad))
    finite = tf.equal(bad_replicas, 0.0)
    if loss_scale is not None:
        summed = [g / loss_scale.scale for g in summed]
    # The norm of finite gradients only: a non-finite norm would turn the clipped gradient into NaN, and
    # that step is skipped anyway.
    norm = tf.where(finite, tf.linalg.global_norm(summed), 0.0)
    if clipnorm and clipnorm > 0:
        summed, _ = tf.clip_by_global_norm(summed, clipnorm, use_norm=norm)
    pairs = [(summed[n], variables[i]) for n, i in enumerate(present)]

    def cross_replica_step(strategy, pairs, finite):
        # Identical on every replica (it comes from an all-reduce): take the first one's.
        finite = strategy.experimental_local_results(finite)[0]

        def update():
            learning_rate = optimizer.learning_rate  # the schedule's value at this step
            for gradient, variable in pairs:
                strategy.extended.update(variable.value if hasattr(variable, "value") else variable,
                                         lambda var, grad: optimizer.update_step(grad, var, learning_rate),
                                         args=(gradient,), group=False)
            optimizer.iterations.assign_add(1)
            return tf.constant(True)

        applied = tf.cond(finite, update, lambda: tf.constant(False))
        if loss_scale is not None:
            loss_scale.update(finite)
        return applied

    context = tf.distribute.get_replica_context()
    applied = context.merge_call(cross_replica_step, args=(pairs, finite))
    return tf.convert_to_tensor(applied), norm
