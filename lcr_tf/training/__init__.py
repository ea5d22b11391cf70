"""Training LCR-Net (paper Sec 3.5 and 4): what ``python -m lcr_tf.train`` runs.

* :mod:`lcr_tf.training.config`: the run's configuration (dataclasses) and its flags;
* :mod:`lcr_tf.training.losses`: the loss parts of eq 1;
* :mod:`lcr_tf.training.step`: the model's training and validation steps (targets, losses, trackers);
* :mod:`lcr_tf.training.optimization`: the gradient step (cross-replica sum, finiteness, loss scale, clip);
* :mod:`lcr_tf.training.distribute`: tf.distribute strategies and the global batch;
* :mod:`lcr_tf.training.precision`: the precision policy (bfloat16 where the CPU or GPU has it);
* :mod:`lcr_tf.training.loop`, :mod:`lcr_tf.training.callbacks`: the loop, checkpoints, TensorBoard
  and progress lines.
"""
