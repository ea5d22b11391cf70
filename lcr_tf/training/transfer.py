"""Weights of a new model from a trained one of other anchor-poses or another skeleton: the start of a
fine-tuning run (``lcr_tf.train --init_from=<model> --anchors=<anchors of the new skeleton>``, paper Sec 4.3).

Both models are :class:`lcr_tf.modeling.lcr_model.LCRNet` of one architecture (the target's
:class:`~lcr_tf.modeling.factory.ModelConfig` is the source's but for K and J); which source class and
joint each target class and joint starts from is a :class:`lcr_tf.poses.transfer_map.TransferMap`.

* Copied exactly: everything whose shape and meaning do not depend on K or J: the backbone (trunk and
  RoI head, batch-norm statistics included), the RPN, the refinement stage's fully connected layers after
  its first one.
* Classifiers (first estimate and refinement): target class ``c`` takes the kernel column of its source
  class ``s = class_source[c]`` exactly and its bias minus ``log n_s``, n_s the number of target classes
  that share ``s``: the n_s copies then split the source class's probability evenly, so that the
  background probability and every source class's total stay those of the source model (exactly when
  every source class has a target class).
* Regressions (first estimate and refinement): the kernel column and bias of value v (x, y, X, Y or Z) of
  target joint j in the block of class c are those of the same value of joint ``joint_source[j]`` in the
  block of ``class_source[c]``, exactly (:func:`lcr_tf.ops.pose_coding.block_columns`). The regression
  predicts deltas from the anchor-pose, so a target class starts by predicting its own anchor-pose moved
  as the source predicted its matched anchor to be moved; a new joint, as its nearest source joint.
* The refinement stage's first layer reads the first estimate ([class probabilities, regression / its
  scale]): its input rows of class c are those of ``class_source[c]``, the regression rows divided by
  n_s and zero for the second copies of a joint (``feeds`` False), so that it computes at start what the
  source computed from the same image.
* The auxiliary joint-heatmap head (training only): joint j's output channel is ``joint_source[j]``'s.
* The anchor-poses are the target's own; the step counter starts at 0.

A weight of the target that no rule covers is an error naming it (a new layer needs a rule here).
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from lcr_tf.ops import pose_coding

# Layers of LCRNet whose weights do not depend on K or J, copied as they are.
SHARED_LAYERS = ("trunk", "roi_head", "rpn_head", "aligner")


def _copy_layer(source, target, name: str, done: set) -> None:
    """Assigns every weight of ``source`` to the weight at the same place of ``target``."""
    theirs, ours = source.weights, target.weights
    shapes = [tuple(v.shape) for v in theirs], [tuple(v.shape) for v in ours]
    if shapes[0] != shapes[1]:
        raise ValueError(f"the source and target networks differ in {name}: weights of shapes {shapes[0]} "
                         f"against {shapes[1]}")
    for src, dst in zip(theirs, ours):
        dst.assign(src)
        done.add(id(dst))


def _assign(variable, value, done: set) -> None:
    if tuple(variable.shape) != value.shape:
        raise ValueError(f"{variable.path}: a transferred value of shape {value.shape} for shape "
                         f"{tuple(variable.shape)}")
    variable.assign(value.astype(np.float32))
    done.add(id(variable))


def _transfer_head(source, target, tmap, done: set) -> None:
    """An :class:`lcr_tf.layers.lcr_head.LCRHead`: classifier columns and regression columns (module
    docstring)."""
    if (source.std_2d, source.std_3d) != (target.std_2d, target.std_3d):
        raise ValueError(f"{target.name}: regression scales {(target.std_2d, target.std_3d)} differ from the "
                         f"source's {(source.std_2d, source.std_3d)}")
    classes = tmap.class_source
    _assign(target.classifier.kernel, source.classifier.kernel.numpy()[:, classes], done)
    _assign(target.classifier.bias, source.classifier.bias.numpy()[classes] - np.log(tmap.class_share), done)
    columns = pose_coding.block_columns(classes, tmap.joint_source, tmap.num_source_joints)
    _assign(target.regressor.kernel, source.regressor.kernel.numpy()[:, columns], done)
    _assign(target.regressor.bias, source.regressor.bias.numpy()[columns], done)


def _transfer_refinement(source, target, tmap, done: set) -> None:
    """A :class:`lcr_tf.layers.refinement.RefinementStage`: the first layer's input rows (module docstring),
    its other layers copied, its head transferred."""
    kernel = source.estimate_fc.kernel.numpy()                      # (C_s + C_s 5J_s, hidden)
    classes = tmap.class_source
    columns = pose_coding.block_columns(classes, tmap.joint_source, tmap.num_source_joints)
    num_joints = tmap.joint_source.size
    weight = (tmap.feeds[pose_coding.block_joints(num_joints)][None, :]
              / tmap.class_share[:, None]).reshape(-1)              # (C_t 5J_t,)
    rows = np.concatenate([kernel[classes], kernel[tmap.num_source_classes + columns] * weight[:, None]])
    _assign(target.estimate_fc.kernel, rows, done)
    _assign(target.estimate_fc.bias, source.estimate_fc.bias.numpy(), done)
    for i, (theirs, ours) in enumerate(zip(source.fc_layers, target.fc_layers)):
        _copy_layer(theirs, ours, f"refinement fc {i + 1}", done)
    _transfer_head(source.head, target.head, tmap, done)


def transfer_weights(source, target, tmap) -> Dict[str, int]:
    """Sets every weight of the built model ``target`` from the built model ``source`` (module docstring).

    Args:
      source, target: :class:`lcr_tf.modeling.lcr_model.LCRNet` (or a subclass), built (called once); the
        target's anchor-poses are its own and stay.
      tmap: the :class:`lcr_tf.poses.transfer_map.TransferMap` from the source's anchor-poses to the
        target's.
    Returns:
      {"copied": weights copied as they are, "remapped": weights built by class or joint, "total": the
      target's weights}.
    Raises:
      ValueError: the networks differ where they should not, or the map does not fit them (message names
        the weight).
    """
    if source.num_classes != tmap.num_source_classes or source.num_joints != tmap.num_source_joints:
        raise ValueError(f"the transfer map is from K={tmap.num_source_anchors}, J={tmap.num_source_joints}, the "
                         f"source model has {source.num_classes} classes of {source.num_joints} joints")
    if target.num_classes != tmap.class_source.size or target.num_joints != tmap.joint_source.size:
        raise ValueError(f"the transfer map is to {tmap.class_source.size} classes of {tmap.joint_source.size} "
                         f"joints, the target model has {target.num_classes} of {target.num_joints}")
    done: set = set()
    for name in SHARED_LAYERS:
        _copy_layer(getattr(source, name), getattr(target, name), name, done)
    copied = {id(v) for name in SHARED_LAYERS for v in getattr(target, name).weights}
    _transfer_head(source.lcr_head, target.lcr_head, tmap, done)
    for name in ("refinement", "joint_heatmap_head"):
        if (getattr(source, name) is None) != (getattr(target, name) is None):
            raise ValueError(f"the source and target networks differ: only one of them has a {name}")
    if target.refinement is not None:
        copied |= {id(v) for layer in target.refinement.fc_layers for v in layer.weights}
        _transfer_refinement(source.refinement, target.refinement, tmap, done)
    if target.joint_heatmap_head is not None:
        conv, theirs = target.joint_heatmap_head.conv, source.joint_heatmap_head.conv
        _assign(conv.kernel, theirs.kernel.numpy()[..., tmap.joint_source], done)
        _assign(conv.bias, theirs.bias.numpy()[tmap.joint_source], done)
    own = {id(target.anchor_pose2d), id(target.anchor_pose3d), id(target.global_step)}
    target.global_step.assign(0)
    left: List[str] = [v.path for v in target.weights if id(v) not in done | own]
    if left:
        raise ValueError(f"no transfer rule for the target's weights {left}")
    return {"copied": len(copied), "remapped": len(done - copied), "total": len(target.weights)}
