"""Fine-tuning a converted release model: its network trains (the losses fall on synthetic batches), and
``python -m lcr_tf.train --init_from`` starts from a release file."""

import json
import os
import subprocess

import keras
import numpy as np
import pytest
import ref_lcrnet_release
import release_format
import test_train
from test_lcr_model import make_batch

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.poses import body_model
from lcr_tf.release import checkpoint as checkpoint_lib
from lcr_tf.release import convert as convert_lib
from lcr_tf.training import step as training_step

SMALL = dict(test_scale=160, max_size=256, pre_nms=600, post_nms=60)


class _NearestAnchor:
    """``assign_classes`` of :class:`lcr_tf.poses.anchors.AnchorSet` for a converted model's own anchors:
    the nearest full-body 3D anchor (squared distance of the body-centred poses), + K for upper bodies."""

    def __init__(self, anchors):
        self.full = anchors.pose3d[:anchors.num_anchors].reshape(anchors.num_anchors, -1)
        self.k = anchors.num_anchors

    def assign_classes(self, poses3d, full_body):
        centred = skeleton_lib.centre_poses(np.asarray(poses3d, np.float32)).reshape(len(poses3d), -1)
        nearest = ((centred[:, None] - self.full[None]) ** 2).sum(-1).argmin(1)
        return np.where(full_body, nearest + 1, nearest + 1 + self.k).astype(np.int32)


def write_release_file(folder, seed: int) -> str:
    """A random release file (``make_release_checkpoint(seed=seed)``, small settings) in ``folder``."""
    ck = ref_lcrnet_release.make_release_checkpoint(num_joints=13, seed=seed, **SMALL)
    path = os.path.join(str(folder), "InTheWild-ResNet50.pkl")
    release_format.write_release_pickle(path, ck["model"], ck["cfg"], ck["anchor_poses"], ck["ppi_params"])
    return path


def fine_tune(release_path: str, steps: int = 8):
    """Builds the release file's network for training (128-pixel squares, 32 RoIs per image), then runs
    ``steps`` SGD steps on two synthetic images. Returns (model, loss before, loss after, the kernels of a
    res2 and a res4 conv before training); the losses are ``test_on_batch``'s (the release's normalisation
    is frozen, so the inference-mode loss follows the weights, while the training-mode one also changes
    with each step's RoI sample)."""
    ck = checkpoint_lib.read_release(release_path)
    config = convert_lib.release_model_config(ck, image_size=128, rpn_pre_nms_top_n_train=400,
                                              rpn_post_nms_top_n_train=64, rois_per_image=32, seed=3,
                                              weight_decay=0.0)
    model, config, anchors = convert_lib.build_release_model(ck, config, model_class=training_step.TrainableLCRNet)
    corpus = body_model.sample_poses(400, seed=0).poses3d
    batch = make_batch(corpus, _NearestAnchor(anchors), [0, 1])
    # Random release weights give gradient norms of ~400: clipped, as lcr_tf.train's --clipnorm does.
    model.compile(optimizer=keras.optimizers.SGD(0.001, momentum=0.9), clipnorm=10.0, jit_compile=False)
    kernels = [model.trunk.get_layer(n).kernel.numpy() for n in ("conv2_block1_1_conv", "conv4_block1_1_conv")]
    before = model.test_on_batch(batch, return_dict=True)[training_step.TOTAL_LOSS]
    for _ in range(steps):
        for tracker in model.metrics:
            tracker.reset_state()
        assert np.isfinite(model.train_on_batch(batch, return_dict=True)[training_step.TOTAL_LOSS])
    after = model.test_on_batch(batch, return_dict=True)[training_step.TOTAL_LOSS]
    return model, before, after, kernels


@pytest.fixture(scope="module")
def release_file(tmp_path_factory):
    return write_release_file(tmp_path_factory.mktemp("finetune"), seed=4)


def test_the_converted_network_trains(release_file):
    """Eight SGD steps with the release's configuration (Detectron anchors and proposals, legacy RoIAlign,
    res5 head, the release's anchor-poses) lower the loss.

    Loss after / before, measured over checkpoint seeds 0-6 (benchmarks/seed_margins.py
    --only=release_finetune --seeds=7, AMX CPU): 0.46-0.73 (median 0.53); bound 0.85.
    """
    model, before, after, (res2, res4) = fine_tune(release_file)
    assert after < 0.85 * before, (before, after)
    # Detectron's FREEZE_AT = 2: res1 and res2 stay as released, later stages train; AffineChannel never does.
    np.testing.assert_array_equal(model.trunk.get_layer("conv2_block1_1_conv").kernel.numpy(), res2)
    assert not np.array_equal(model.trunk.get_layer("conv4_block1_1_conv").kernel.numpy(), res4)
    assert not model.trunk.get_layer("conv4_block1_1_bn").trainable


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return test_train.write_records(tmp_path_factory.mktemp("records"))


def test_train_init_from(release_file, records, tmp_path):
    model_dir = tmp_path / "run"
    # Without --anchors: the release's own anchor-poses (--anchors of others would transfer the weights to
    # them, tests/test_joint_transfer.py).
    command = [a for a in test_train._command(records, model_dir, "--num_steps=2", "--steps_per_epoch=2",
                                              f"--init_from={release_file}") if not a.startswith("--anchors=")]
    result = test_train._run(command, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"fine-tuning from {release_file}" in result.stdout
    config = json.load(open(model_dir / "config.json"))
    model = config["model"]
    assert model["backbone"] == "resnet50" and model["rpn_convention"] == "detectron"
    assert model["roi_align"] == "legacy" and model["num_anchors"] == 10 and model["image_size"] == 128
    assert os.path.isfile(model_dir / "final.weights.h5")
    metrics = json.load(open(model_dir / "metrics.json"))
    assert np.isfinite(metrics["last_epoch"]["total_loss"])


def test_init_from_a_missing_source_names_the_flag(records, tmp_path):
    result = subprocess.run(test_train._command(records, tmp_path / "run", "--num_steps=1",
                                                f"--init_from={tmp_path}/none.pkl"),
                            capture_output=True, text=True, timeout=200)
    assert result.returncode == 2 and "--init_from" in result.stderr, result.stderr[-2000:]
