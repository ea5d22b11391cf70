"""python -m lcr_tf.train end to end on small shards rendered here: a run, its outputs, resume after a
SIGKILL, --help and bad flags."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from lcr_tf import synthetic
from lcr_tf.contracts import features, geometry
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.poses import anchors as anchors_lib
from lcr_tf.poses import body_model

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S = 128
K = 6

# Flags of a model small enough to train a step in well under a second on a CPU.
SMALL = ["--backbone=tiny", f"--image_size={S}", "--rpn_scales=32,64,128", "--rpn_channels=32",
         "--fc_dims=64,64", "--rpn_pre_nms_top_n_train=300", "--rpn_post_nms_top_n_train=32",
         "--rpn_pre_nms_top_n_test=300", "--rpn_post_nms_top_n_test=16", "--rois_per_image=16",
         "--batch_size=2", "--max_people=3", "--shuffle_buffer=8", "--val_steps=1",
         "--num_summary_images=2", "--log_every=1", "--verbose=2", "--lr_boundaries=5",
         "--lr_values=0.01,0.001", "--deterministic"]


def _record(rendered, index, anchor_set):
    lower = skeleton_lib.LCR13.lower_body
    n = rendered.num_people
    return features.encode_example({
        features.IMAGE_ENCODED: synthetic.encode_image(rendered.image, "png"),
        features.IMAGE_FORMAT: "png", features.IMAGE_ID: f"im{index}", features.IMAGE_SOURCE: "test",
        features.IMAGE_HEIGHT: S, features.IMAGE_WIDTH: S, features.INTRINSICS: rendered.intrinsics,
        features.BOX: geometry.pose_box(rendered.pose2d), features.POSE2D: rendered.pose2d,
        features.ANNOTATED: np.ones((n, 13), np.int64), features.COMPLETED: np.zeros((n, 13), np.int64),
        features.VISIBLE: rendered.visible.astype(np.int64), features.POSE3D: rendered.pose3d,
        features.POSE3D_SOURCE: np.zeros(n, np.int64), features.PSEUDO_GT_DISTANCE: np.zeros(n),
        features.ANCHOR_CLASS: anchor_set.assign_classes(rendered.pose3d, rendered.in_image[:, lower].any(1)),
    }).SerializeToString()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_records(tmp_path_factory.mktemp("train_data"))


def write_records(root):
    """Two train shards and one validation shard of 128 x 128 synthetic images, and a K=6 anchor set, in
    the folder ``root`` (a pathlib.Path); returns their paths as the trainer's flags take them."""
    corpus = body_model.sample_poses(300, seed=0).poses3d
    anchor_set = anchors_lib.cluster_poses(corpus, K, 4, seed=0)
    anchors_path = str(root / "anchors.npz")
    anchor_set.save(anchors_path)
    config = synthetic.RenderConfig(height=S, width=S, min_people=1, max_people=2)
    shards = {"train-00000-of-00002.tfrecord": range(0, 4), "train-00001-of-00002.tfrecord": range(4, 8),
              "val-00000-of-00001.tfrecord": range(8, 10)}
    for name, indices in shards.items():
        with tf.io.TFRecordWriter(str(root / name)) as writer:
            for i in indices:
                writer.write(_record(synthetic.render_image(corpus, i, 0, config), i, anchor_set))
    return {"train": str(root / "train-*.tfrecord"), "val": str(root / "val-*.tfrecord"),
            "anchors": anchors_path}


def _command(data, model_dir, *extra):
    return [sys.executable, "-m", "lcr_tf.train", *SMALL, f"--train_data={data['train']}",
            f"--val_data={data['val']}", f"--anchors={data['anchors']}", f"--model_dir={model_dir}", *extra]


def _run(args, timeout=240):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=_REPO)
    return subprocess.run(args, cwd=_REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _checkpoint_steps(model_dir):
    state = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    if state is None:
        return []
    return [int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths]


def _variable(checkpoint_prefix, suffix):
    names = [n for n, _ in tf.train.list_variables(checkpoint_prefix) if n.endswith(suffix)]
    assert names, f"no variable ending in {suffix} in {checkpoint_prefix}"
    return tf.train.load_variable(checkpoint_prefix, names[0])


def test_help_lists_the_flags():
    result = _run([sys.executable, "-m", "lcr_tf.train", "--help"], timeout=120)
    assert result.returncode == 0, result.stderr
    for flag in ("--train_data", "--val_data", "--anchors", "--model_dir", "--strategy", "--lr_boundaries",
                 "--lr_values", "--weight_decay", "--mixed_precision", "--num_steps", "--checkpoint_every",
                 "--deterministic", "--backbone", "--refinement", "--rois_per_image", "--data", "--train_steps",
                 "--optimizer", "--joint_heatmap_weight", "--joint_heatmap_sigma", "--precision",
                 "--cpu_replicas", "--clipnorm"):
        assert flag in result.stdout.replace("--[no]", "--"), flag  # booleans print as --[no]name
    assert "resumed from step" in result.stdout  # the docstring explains resuming


def test_optimizers():
    from lcr_tf.training import loop
    # Clipping is the gradient step's (after the cross-replica sum), never the optimizer's.
    sgd = loop.make_optimizer("sgd", 0.01, momentum=0.9)
    assert type(sgd).__name__ == "SGD" and sgd.momentum == 0.9 and sgd.clipnorm is None
    adam = loop.make_optimizer("adam", 1e-3, momentum=0.8)
    assert type(adam).__name__ == "Adam" and adam.beta_1 == 0.8 and adam.clipnorm is None
    assert float(adam.learning_rate) == pytest.approx(1e-3)
    with pytest.raises(loop.ConfigError, match="--optimizer.*rmsprop"):
        loop.make_optimizer("rmsprop", 0.01, momentum=0.9)


def test_bad_flags_give_clear_errors(data, tmp_path):
    result = _run(_command(data, tmp_path / "a", "--num_steps=1") + ["--backbone=resnet18"], timeout=120)
    assert result.returncode != 0 and "resnet18" in result.stderr and "backbone" in result.stderr
    result = _run(_command(data, tmp_path / "b", "--num_steps=1",
                           f"--train_data={tmp_path}/missing-*.tfrecord"), timeout=120)
    assert result.returncode == 2
    assert "--train_data" in result.stderr and "missing-*.tfrecord" in result.stderr
    result = _run(_command(data, tmp_path / "c", "--num_steps=1", "--lr_values=0.1"), timeout=120)
    assert result.returncode == 2 and "--lr_values" in result.stderr
    result = _run(_command(data, tmp_path / "d", "--num_steps=1", "--num_anchors=200"), timeout=120)
    assert result.returncode == 2 and "--num_anchors=200" in result.stderr
    result = _run(_command(data, tmp_path / "e", "--num_steps=1", "--cpu_replicas=2", "--batch_size=3"),
                  timeout=120)
    assert result.returncode == 2 and "--batch_size=3" in result.stderr and "2 replicas" in result.stderr
    result = _run(_command(data, tmp_path / "f", "--num_steps=1", "--mixed_precision",
                           "--precision=mixed_bfloat16"), timeout=120)
    assert result.returncode == 2 and "--mixed_precision" in result.stderr


def test_two_cpu_replicas_in_bfloat16(data, tmp_path):
    """--cpu_replicas=2 mirrors over two logical CPUs; metrics.json says how the run was made."""
    model_dir = tmp_path / "run"
    result = _run(_command(data, model_dir, "--num_steps=3", "--steps_per_epoch=3", "--cpu_replicas=2",
                           "--precision=mixed_bfloat16"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(model_dir / "metrics.json") as f:
        metrics = json.load(f)
    assert (metrics["strategy"], metrics["replicas"], metrics["precision"]) == ("MirroredStrategy", 2,
                                                                                "mixed_bfloat16")
    assert metrics["images_per_second"] > 0 and np.isfinite(metrics["last_epoch"]["total_loss"])


@pytest.mark.slow
def test_run_then_resume_after_sigkill(data, tmp_path):
    model_dir = str(tmp_path / "run")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=_REPO)
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(_command(data, model_dir, "--num_steps=1000", "--checkpoint_every=3",
                                     "--steps_per_epoch=4"),
                            cwd=_REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not [s for s in _checkpoint_steps(model_dir) if s >= 6]:
            assert proc.poll() is None, open(tmp_path / "first.log").read()
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    saved = max(_checkpoint_steps(model_dir))
    assert saved >= 6 and saved % 3 == 0, _checkpoint_steps(model_dir)
    prefix = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    assert _variable(prefix, "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == saved
    assert _variable(prefix, "model/global_step/.ATTRIBUTES/VARIABLE_VALUE") == saved
    # The optimizer state that must survive the kill: momentum slots, non-zero after `saved` steps.
    assert np.any(_variable(prefix, "optimizer/_variables/1/.ATTRIBUTES/VARIABLE_VALUE") != 0)

    target = saved + 4
    result = _run(_command(data, model_dir, f"--num_steps={target}", "--checkpoint_every=3",
                           "--steps_per_epoch=4"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert f"resumed from step {saved}" in output
    # Step counter and optimizer iterations continue from the checkpoint: 4 more steps, not a new run.
    assert f"finished at step {target} (optimizer iterations {target})" in output
    final = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    assert final.endswith(f"-{target}")

    # The run's other outputs.
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    assert config["model"]["num_anchors"] == K and config["flags"]["num_steps"] == target
    assert os.path.isfile(os.path.join(model_dir, "final.weights.h5"))
    tags = set()
    for sub in ("train", "validation"):
        for name in os.listdir(os.path.join(model_dir, sub)):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(model_dir, sub, name)):
                tags.update(v.tag for v in event.summary.value)
    for tag in ("total_loss", "rpn_objectness", "rpn_box", "classification", "regression",
                "proposal_recall", "learning_rate", "top_pose"):
        assert tag in tags, (tag, sorted(tags))


def test_configs_parse_and_build_model_configs():
    """Every shipped flagfile parses with the trainer's flags and gives a valid ModelConfig (K, J and the
    paper's RoI sampling as their comments state); run from the repository root as the configs say."""
    script = r"""
import sys
from absl import flags
from lcr_tf import train
from lcr_tf.modeling import factory
train.define_flags()
for name in ("synthetic_tiny", "h36m_resnet50", "mpii_resnet50", "h36m_vgg16", "mupots_finetune"):
    fv = flags.FLAGS
    fv.unparse_flags()
    fv(["x", f"--flagfile=configs/{name}.flags"])
    c = factory.ModelConfig(backbone=fv.backbone, num_anchors=fv.num_anchors, num_joints=fv.num_joints,
                            image_size=fv.image_size, rois_per_image=fv.rois_per_image,
                            rpn_scales=tuple(float(v) for v in fv.rpn_scales))
    print(name, c.backbone, c.num_anchors, c.num_joints, c.rois_per_image, fv.batch_size, fv.lr_values[0])
"""
    result = _run([sys.executable, "-c", script], timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert lines["synthetic_tiny"].startswith("tiny 8 13 ")
    assert lines["h36m_resnet50"] == "resnet50 100 17 512 1 0.001"
    assert lines["mpii_resnet50"] == "resnet50 200 13 512 1 0.001"
    assert lines["h36m_vgg16"] == "vgg16 100 17 32 8 0.001"
    assert lines["mupots_finetune"] == "resnet50 200 14 512 1 0.0001"


def _free_ports(count):
    import socket
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


#: How a worker's log reads when its port was taken before it could bind it.
PORT_TAKEN = "Address already in use"


def _run_two_workers(data, model_dir, scratch, tmp_path):
    """Two ``--strategy=multi_worker`` trainer processes on two free localhost ports: their exit statuses
    and logs."""
    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=_REPO, TMPDIR=str(scratch),
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        log = open(tmp_path / f"worker{index}.log", "w")
        procs.append((subprocess.Popen(_command(data, str(model_dir), "--strategy=multi_worker",
                                                "--batch_size=4", "--num_steps=4", "--steps_per_epoch=2",
                                                "--checkpoint_every=2"),
                                       cwd=_REPO, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    try:
        # A worker that fails leaves the other waiting for it: that one is stopped too.
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline and any(proc.poll() is None for proc, _ in procs):
            if any(proc.poll() not in (None, 0) for proc, _ in procs):
                break
            time.sleep(0.5)
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    return [proc.returncode for proc, _ in procs], [open(tmp_path / f"worker{i}.log").read() for i in range(2)]


@pytest.mark.slow
def test_two_local_workers_train_and_only_the_chief_writes(data, tmp_path):
    """--strategy=multi_worker with two worker processes on localhost ports (TF_CONFIG): both finish, the
    chief's run folder is whole, and the other worker leaves nothing in --model_dir or behind it."""
    model_dir = tmp_path / "run"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # A free port can be taken by another process between its choice and the workers' bind: such a
    # start is tried again on new ports (it fails before any file is written).
    for attempt in range(3):
        codes, logs = _run_two_workers(data, model_dir, scratch, tmp_path)
        if not any(PORT_TAKEN in log for log in logs):
            break
        shutil.rmtree(model_dir, ignore_errors=True)
        for name in os.listdir(scratch):
            shutil.rmtree(scratch / name, ignore_errors=True)
    for code, log in zip(codes, logs):
        assert code == 0, log[-4000:]
        assert "finished at step 4 (optimizer iterations 4)" in log
    assert sorted(os.listdir(model_dir)) == ["checkpoints", "config.json", "final.weights.h5",
                                              "metrics.json", "train", "validation"]
    with open(model_dir / "metrics.json") as f:
        metrics = json.load(f)
    assert metrics["strategy"] == "MultiWorkerMirroredStrategy" and metrics["workers"] == 2
    assert metrics["replicas"] == 2 and metrics["images_per_second"] > 0
    assert _checkpoint_steps(str(model_dir)) == [2, 4]
    # One writer per event file: the chief's only.
    for sub in ("train", "validation"):
        assert len(os.listdir(model_dir / sub)) == 1, os.listdir(model_dir / sub)
    assert os.listdir(scratch) == []  # the other worker deleted its temporary directory
