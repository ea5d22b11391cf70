"""The distributions behind the bounds of the tests that train: each test's measured quantity over N
initialisation seeds, with the test's bound and the margin to it.

A test that trains runs deterministically (tests/conftest.py: op determinism, the same seed before each
test), so on one machine it computes the same numbers every run; on another CPU (AVX2 against AMX
kernels) the numbers differ as another seed's would. Its bound is therefore set from the distribution
over seeds this script prints, with a margin, and the test says so.

    python benchmarks/seed_margins.py --seeds=20            # every test below
    python benchmarks/seed_margins.py --only=overfit --seeds=20

Each line: the quantity, min / median / max over the seeds, the bound and the worst seed's margin.
"""

import os
import statistics
import sys
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [_REPO, os.path.join(_REPO, "tests")]

from absl import flags  # noqa: E402

from lcr_tf.contracts import cli  # noqa: E402

FLAGS = flags.FLAGS
CASES = ("overfit", "train_steps", "precision", "heatmaps", "release_finetune", "joint_transfer")
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def define_flags():
    flags.DEFINE_integer("seeds", 20, "Initialisation seeds per case (0 .. seeds - 1).", lower_bound=1)
    flags.DEFINE_multi_enum("only", list(CASES), list(CASES), "Cases to run.")
    flags.DEFINE_multi_enum("policies", list(POLICIES), list(POLICIES), "Precision policies of the precision "
                            "case (mixed_float16 is emulated on a CPU: about 100 s a seed).")


def _step_losses(model, batch, steps, key):
    """The loss ``key`` that each of ``steps`` training steps computes before its update (training mode;
    the trackers reset so that each value is its own step's), as the tests read it."""
    losses = []
    for _ in range(steps):
        for tracker in model.metrics:
            tracker.reset_state()
        losses.append(model.train_on_batch(batch, return_dict=True)[key])
    return losses


def _overfit(seed, corpus, anchor_set):
    """tests/test_lcr_model.py::test_overfits_two_images with initialisation seed ``seed``."""
    import keras
    import numpy as np
    from test_lcr_model import K, make_batch, small_config

    from lcr_tf.training import callbacks
    from lcr_tf.training import losses as losses_lib
    from lcr_tf.training import step as training_step

    keras.utils.set_random_seed(seed)
    batch = make_batch(corpus, anchor_set, [5, 6], seed=1)
    model = training_step.build_model(small_config(rpn_post_nms_top_n_test=30, rois_per_image=32,
                                                   weight_decay=0.0), anchor_set)
    model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9), clipnorm=10.0, jit_compile=False)
    first = model.test_on_batch(batch, return_dict=True)
    for _ in range(400):
        model.train_on_batch(batch)
    last = model.test_on_batch(batch, return_dict=True)
    top = callbacks.top_poses(model(batch["image"]), model.anchor_pose2d, model.anchor_pose3d)
    pose2d, mask = batch["pose2d"].numpy(), batch["person_mask"].numpy()
    errors = [np.linalg.norm(top["pose2d"][b].numpy()[None] - pose2d[b], axis=-1).mean(-1)[mask[b]].min()
              for b in range(2)]
    classes = [int(c) for c in top["class"].numpy()]
    return {"classification last/first": last[losses_lib.CLASSIFICATION] / first[losses_lib.CLASSIFICATION],
            "regression last/first": last[losses_lib.REGRESSION] / first[losses_lib.REGRESSION],
            "proposal recall": last[training_step.PROPOSAL_RECALL],
            "top pose error px (worse image)": max(errors),
            "top pose score (worse image)": float(np.min(top["score"].numpy())),
            "top class in 1..2K": float(all(1 <= c <= 2 * K for c in classes))}


def _train_steps(seed, corpus, anchor_set):
    """tests/test_lcr_model.py::test_train_steps_lower_the_loss_and_count_steps."""
    import keras
    from test_lcr_model import make_batch, small_config

    from lcr_tf.training import step as training_step

    keras.utils.set_random_seed(seed)
    batch = make_batch(corpus, anchor_set, [0, 1])
    model = training_step.build_model(small_config(refinement=True, refinement_hidden=32,
                                                   refinement_fc=(32, 32)), anchor_set)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=False)
    first = model.test_on_batch(batch, return_dict=True)
    losses = _step_losses(model, batch, 16, training_step.TOTAL_LOSS)
    after = model.test_on_batch(batch, return_dict=True)
    return {"inference loss after/first": after[training_step.TOTAL_LOSS] / first[training_step.TOTAL_LOSS],
            "training loss step 16/step 1": losses[-1] / losses[0]}


def _precision(seed, corpus, anchor_set):
    """tests/test_precision.py::test_training_steps_lower_the_loss_under_each_policy, each policy."""
    import keras
    from test_lcr_model import make_batch, small_config

    from lcr_tf.training import optimization
    from lcr_tf.training import step as training_step

    batch = training_step.select_batch(make_batch(corpus, anchor_set, [0, 1], seed=4))
    out = {}
    for name in FLAGS.policies:
        keras.mixed_precision.set_global_policy(name)
        try:
            keras.utils.set_random_seed(seed)
            model = training_step.build_model(small_config(refinement=True, refinement_hidden=32,
                                                           refinement_fc=(32, 32), joint_heatmap_weight=0.5),
                                              anchor_set)
            loss_scale = optimization.DynamicLossScale(2.0 ** 10) if name == "mixed_float16" else None
            model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss_scale=loss_scale,
                          jit_compile=False)
            model(batch["image"])  # as the test: built by a call first
            first = model.test_on_batch(batch, return_dict=True)
            losses = _step_losses(model, batch, 12, training_step.TOTAL_LOSS)
            last = model.test_on_batch(batch, return_dict=True)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        out[f"{name} inference loss last/first"] = last[training_step.TOTAL_LOSS] / first[training_step.TOTAL_LOSS]
        out[f"{name} training loss step 12/step 1"] = losses[-1] / losses[0]
    return out


def _heatmaps(seed, corpus, anchor_set):
    """tests/test_trunk_heatmaps.py::test_lcr_net_trains_the_heatmaps_only_when_asked."""
    import keras
    from test_lcr_model import make_batch, small_config

    from lcr_tf.training import losses as losses_lib
    from lcr_tf.training import step as training_step

    batch = make_batch(corpus, anchor_set, [0, 1])
    keras.utils.set_random_seed(seed)
    model = training_step.build_model(small_config(joint_heatmap_weight=0.5), anchor_set)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)
    losses = _step_losses(model, batch, 16, losses_lib.JOINT_HEATMAP)
    return {"heatmap loss last/first": losses[-1] / losses[0]}


def _release_finetune(seed, corpus, anchor_set):
    """tests/test_release_finetune.py::test_the_converted_network_trains, the random release file of ``seed``."""
    import tempfile

    from test_release_finetune import fine_tune, write_release_file

    with tempfile.TemporaryDirectory() as folder:
        _, before, after, _ = fine_tune(write_release_file(folder, seed))
    return {"release fine-tuning loss after/before": after / before}


_JOINT_TRANSFER = {}


def _joint_transfer(seed, corpus, anchor_set):
    """tests/test_joint_transfer.py::test_the_transferred_model_fine_tunes_on_14_joint_records with
    initialisation seed ``seed`` (the 14-joint records and anchors are built once)."""
    import tempfile
    from pathlib import Path

    from test_joint_transfer import fall, fine_tune_losses, lcr13_anchor_set
    from test_skeleton_records import build_mupots14_records

    if not _JOINT_TRANSFER:
        folder = tempfile.mkdtemp(prefix="joint_transfer_")
        _JOINT_TRANSFER["records"] = build_mupots14_records(Path(folder))
        _JOINT_TRANSFER["lcr_anchors"] = lcr13_anchor_set()
    losses = fine_tune_losses(seed, _JOINT_TRANSFER["records"], _JOINT_TRANSFER["lcr_anchors"])
    return {"14-joint fine-tuning last 4/first 2": fall(losses)}


#: case -> (function, {quantity: (bound, "<" or ">")}), the bounds as the tests assert them.
BOUNDS = {
    "overfit": (_overfit, {"classification last/first": (0.3, "<"), "regression last/first": (0.3, "<"),
                           "proposal recall": (0.9, ">"), "top pose error px (worse image)": (8.0, "<"),
                           "top pose score (worse image)": (0.5, ">"), "top class in 1..2K": (0.5, ">")}),
    "train_steps": (_train_steps, {"inference loss after/first": (None, "<"),
                                   "training loss step 16/step 1": (0.8, "<")}),
    "precision": (_precision, {**{f"{p} inference loss last/first": (None, "<") for p in POLICIES},
                               **{f"{p} training loss step 12/step 1": (0.85, "<") for p in POLICIES}}),
    "heatmaps": (_heatmaps, {"heatmap loss last/first": (0.7, "<")}),
    "release_finetune": (_release_finetune, {"release fine-tuning loss after/before": (0.85, "<")}),
    "joint_transfer": (_joint_transfer, {"14-joint fine-tuning last 4/first 2": (0.8, "<")}),
}


def main(argv):

    import conftest  # noqa: F401 (the tests' set-up: op determinism, two logical CPU devices)

    from lcr_tf.poses import anchors as anchors_lib
    from lcr_tf.poses import body_model
    from lcr_tf.training import precision
    bf16 = sorted(precision.cpu_flags() & {"avx512_bf16", "amx_bf16"})
    print(f"CPU bfloat16 features: {', '.join(bf16) or 'none (AVX2 / AVX-512 without BF16)'}")
    corpus = body_model.sample_poses(400, seed=0).poses3d
    anchor_set = anchors_lib.cluster_poses(corpus, 8, 4, seed=0)
    for case in FLAGS.only:
        function, bounds = BOUNDS[case]
        values = {}
        start = time.perf_counter()
        for seed in range(FLAGS.seeds):
            for name, value in function(seed, corpus, anchor_set).items():
                values.setdefault(name, []).append(float(value))
            print(f"  {case} seed {seed}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in values.items()), flush=True)
        print(f"\n{case}: {FLAGS.seeds} seeds in {time.perf_counter() - start:.0f} s")
        for name, series in values.items():
            bound, side = bounds[name]
            line = (f"  {name:36s} min {min(series):8.4f}  median {statistics.median(series):8.4f}  "
                    f"max {max(series):8.4f}")
            if bound is None:  # what the test no longer bounds, and why (the test's comment)
                print(line + "  (not asserted)")
                continue
            worst = max(series) if side == "<" else min(series)
            margin = bound - worst if side == "<" else worst - bound
            print(f"{line}  bound {side} {bound:g}  worst margin {margin:+.4f}{'' if margin > 0 else '  <- FAILS'}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
