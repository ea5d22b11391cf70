"""Where the time of one training step goes, part by part (tiny config, as benchmarks/bench_train.py).

    python benchmarks/bench_step_parts.py [--repeats 5] [--steps 10] [--precision float32]

Times, on one fixed batch of 4 rendered 256 x 256 images, nested prefixes of the training step, each a
``tf.function`` that computes the prefix forward and the gradient of a scalar of its outputs with
respect to every trainable variable:

1. trunk: preprocessing + backbone;
2. + RPN: the RPN head, anchor boxes and proposals (decode, top-k, NMS);
3. + targets: RPN and RoI target assignment and sampling (no gradient flows through them);
4. + heads: RoIAlign, the RoI head, classification and regression (and refinement when configured);
5. + losses: the whole of ``TrainableLCRNet.compute_losses`` and the weighted total with weight decay;
6. the full step: ``model.train_step`` with the optimizer update (``tf.function``);

and, beside them, ``model.fit`` on the same batch repeated, whose excess over the bare step is the cost of
Keras' training loop (callbacks, metrics, step function dispatch) rather than of the model.

Each part's cost is the difference between consecutive prefixes (medians of ``--repeats`` runs of
``--steps`` calls), printed in ms and as a share of the full step. The prefixes are separate graphs, so
the split is an estimate: a part's backward pass lands in the line of the part it belongs to.
"""

from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from benchmarks.timing import median_time  # noqa: E402
from lcr_tf.contracts import cli  # noqa: E402
from lcr_tf.training import step as training_step

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer("repeats", 5, "Runs per measurement (median printed).")
    flags.DEFINE_integer("steps", 10, "Calls per run.")
    flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "auto"], "Keras policy.")


def main(argv) -> int:
    import keras
    import tensorflow as tf

    from benchmarks.bench_train import write_shards
    from lcr_tf.contracts import batch_keys
    from lcr_tf.data import pipeline
    from lcr_tf.modeling import factory
    from lcr_tf.ops import targets as targets_lib
    from lcr_tf.poses import anchors as anchors_lib
    from lcr_tf.poses import body_model
    from lcr_tf.training import precision as precision_lib

    policy, why = precision_lib.resolve(FLAGS.precision)
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    corpus = body_model.sample_poses(2000, seed=0).poses3d
    anchor_set = anchors_lib.cluster_poses(corpus, 32, 8, seed=0)
    config = factory.ModelConfig(num_anchors=32, image_size=256, rpn_channels=128,
                                 rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=128,
                                 rpn_post_nms_top_n_test=64, rois_per_image=64, weight_decay=1e-4, seed=0)
    with tempfile.TemporaryDirectory() as root:
        shard = write_shards(root, 8, 256, anchor_set, corpus)
        ds = pipeline.make_dataset(shard, pipeline.InputConfig(image_size=256, max_people=6, batch_size=4,
                                                               num_epochs=None), training=True,
                                   anchors=anchor_set, seed=0)
        batch = {k: v for k, v in next(iter(ds)).items() if k in training_step.BATCH_KEYS}
    model = training_step.build_model(config, anchor_set)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=False)
    constant = tf.data.Dataset.from_tensors(batch).repeat()
    model.fit(constant, steps_per_epoch=1, epochs=1, verbose=0)
    variables = model.trainable_variables
    cfg = model.model_config

    def mean(*tensors):
        return tf.add_n([tf.reduce_mean(tf.cast(t, tf.float32)) for t in tensors])

    def prefix(depth):
        images = tf.cast(batch[batch_keys.IMAGE], tf.float32)
        if depth == 1:
            return mean(model.trunk(model.preprocess(images), training=True))
        features, logits, deltas, anchors = model._rpn(images, True)
        boxes, _, valid = model._proposals(images, logits, deltas, anchors, True)
        scalar = mean(features, logits, deltas, boxes)
        if depth == 2:
            return scalar
        people = targets_lib.people_from_batch(batch, cfg.num_anchors, skeleton=model.skeleton_name)
        gt_boxes, gt_mask = targets_lib.rpn_gt_boxes(people)
        labels, _ = targets_lib.assign_rpn_targets(anchors, gt_boxes, gt_mask, tf.shape(images)[1:3])
        rois = targets_lib.assign_roi_targets(boxes, valid, people, model.anchor_pose2d, model.anchor_pose3d,
                                              num_rois=cfg.rois_per_image, add_gt_boxes=True)
        scalar += mean(labels, rois["reg_targets"])
        if depth == 3:
            return scalar
        stages = model._heads(features, rois["rois"], True)
        return scalar + mean(*[t for stage in stages for t in stage])

    def step_of(depth):
        @tf.function
        def run():
            with tf.GradientTape() as tape:
                if depth == 5:
                    parts, _, _ = model.compute_losses(batch, training=True)
                    scalar = tf.add_n(list(parts.values())) + model.weight_decay_loss()
                else:
                    scalar = prefix(depth)
            grads = tape.gradient(scalar, variables)
            return tf.add_n([tf.reduce_sum(tf.cast(g, tf.float32)) for g in grads if g is not None])
        return run

    names = ["trunk", "+ RPN head and proposals", "+ targets", "+ RoIAlign and heads", "+ losses"]
    times = []
    for depth in range(1, 6):
        fn = step_of(depth)
        fn()
        times.append(median_time(lambda: [fn().numpy() for _ in range(FLAGS.steps)], FLAGS.repeats)
                     / FLAGS.steps)
    train_step = tf.function(model.train_step)
    train_step(batch)
    times.append(median_time(lambda: [train_step(batch) for _ in range(FLAGS.steps)] and
                             float(model.global_step.numpy()), FLAGS.repeats) / FLAGS.steps)
    names.append("+ optimizer (full train_step)")
    full = times[-1]
    # The same step through Keras' fit loop, on the same batch repeated (no input pipeline cost).
    t_fit = median_time(lambda: model.fit(constant, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0),
                        FLAGS.repeats) / FLAGS.steps
    print(f"tiny config, 256x256, batch 4, K=32, {policy} ({why}), CPU threads {os.cpu_count()}; "
          f"medians of {FLAGS.repeats} runs of {FLAGS.steps} calls:")
    print(f"  {'part (forward + backward)':32s} {'ms':>8s} {'share':>7s}   cumulative ms")
    previous = 0.0
    for name, t in zip(names, times):
        print(f"  {name:32s} {1e3 * (t - previous):8.1f} {(t - previous) / full:7.0%}   {1e3 * t:8.1f}")
        previous = t
    print(f"  full step: {1e3 * full:.1f} ms = {4 / full:.1f} images/s")
    print(f"  model.fit on the same batch: {1e3 * t_fit:.1f} ms per step = {4 / t_fit:.1f} images/s "
          f"({t_fit / full:.2f}x the bare step: the fit loop's own cost)")
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
