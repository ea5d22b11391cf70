"""Shard manifests (lcr_tf.contracts.shard_manifest), the trainer's checks of damaged shards
(lcr_tf.data.shards, lcr_tf.train) and ``python -m lcr_tf.data.verify``, on shards the build job writes
here and damages in known ways."""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys

import pytest
import tensorflow as tf

from beam_jobs import anchor_poses, build_tfrecords
from lcr_tf.contracts import shard_manifest
from lcr_tf.data import shards as shards_lib
from lcr_tf.data import verify as verify_lib
from lcr_tf.poses import body_model

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NOISE = ("I0000", "W0000", "E0000", "WARNING: All log", "To enable", "oneDNN")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """12 synthetic 64-pixel images in 3 shards, with the corpus and anchors they were labelled with."""
    root = tmp_path_factory.mktemp("shards")
    body_model.sample_poses(300, seed=0).save(str(root / "poses.npz"))
    anchor_poses.run(str(root / "poses.npz"), 4, str(root / "anchors.npz"), views=2, figure="", verbose=False)
    code = build_tfrecords.main(["build_tfrecords", "--dataset=synthetic", "--num_images=12", "--num_shards=3",
                                 "--reader_option=height=64", "--reader_option=width=64",
                                 f"--poses={root / 'poses.npz'}", f"--anchors={root / 'anchors.npz'}",
                                 f"--output={root / 'data' / 'train'}"])
    assert code == 0
    return root


def _copy(built, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(built / "data", target)
    return target


def _record_starts(path):
    """Byte offsets of the records of a TFRecord file, read from its framing by hand."""
    data, starts, offset = open(path, "rb").read(), [], 0
    while offset < len(data):
        starts.append(offset)
        offset += 16 + struct.unpack("<Q", data[offset:offset + 8])[0]
    return starts


def _flip(path, record):
    """Flips a byte inside the data of the given record (same size: only the CRC tells)."""
    at = _record_starts(path)[record] + 12 + 20
    data = bytearray(open(path, "rb").read())
    data[at] ^= 0xFF
    open(path, "wb").write(bytes(data))


def _shard(folder, i):
    return str(folder / f"train-0000{i}-of-00003.tfrecord")


def test_the_build_job_writes_a_manifest_that_matches_its_shards(built):
    manifest = built / "data" / "train-manifest.json"
    doc = json.loads(manifest.read_text())
    assert doc["format"] == shard_manifest.FORMAT and doc["version"] == shard_manifest.VERSION
    assert [e["file"] for e in doc["shards"]] == [f"train-0000{i}-of-00003.tfrecord" for i in range(3)]
    for entry in doc["shards"]:
        path = str(built / "data" / entry["file"])
        assert entry["records"] == sum(1 for _ in tf.data.TFRecordDataset(path))
        assert entry["bytes"] == os.path.getsize(path)
        assert entry["sha256"] == hashlib.sha256(open(path, "rb").read()).hexdigest()
    assert sum(e["records"] for e in doc["shards"]) == 12
    # Relative names: the manifest of a copied folder still describes its shards.
    read = shard_manifest.read(str(manifest))
    assert set(read) == {os.path.normpath(str(built / "data" / e["file"])) for e in doc["shards"]}


def test_scan_counts_records_and_finds_a_cut(built, tmp_path):
    data = _copy(built, tmp_path)
    path = _shard(data, 1)
    starts = _record_starts(path)
    full = shard_manifest.scan(path)
    assert full.records == len(starts) and full.cut_at is None
    cut_at = starts[2] + 100
    with open(path, "r+b") as f:
        f.truncate(cut_at)
    cut = shard_manifest.scan(path)
    assert cut.records == 2 and cut.cut_at == starts[2] and cut.bytes == cut_at
    assert cut.sha256 == hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_size_check_names_cut_missing_and_unlisted_shards(built, tmp_path):
    data = _copy(built, tmp_path)
    pattern = str(data / "train-*.tfrecord")
    shards = sorted(str(p) for p in data.glob("train-*.tfrecord"))
    assert shards_lib.check_before_reading(shards, pattern, "--train_data") == 12
    with open(shards[2], "r+b") as f:
        f.truncate(100)
    with pytest.raises(shards_lib.ShardError, match=r"--train_data: .*train-00002-of-00003\.tfrecord: 100 bytes, "
                                                    r"its manifest .* says \d+"):
        shards_lib.check_before_reading(shards, pattern, "--train_data")
    os.remove(shards[2])
    result = shard_manifest.check_sizes(shards[:2], [pattern])
    assert len(result.problems) == 1 and "train-00002-of-00003.tfrecord: listed in" in result.problems[0]
    # A pattern that leaves the shard out on purpose does not miss it.
    assert shard_manifest.check_sizes(shards[:1], [str(data / "train-00000-*")]).problems == ()
    # Shards without a manifest: unknown count, a warning, no error.
    os.remove(data / "train-manifest.json")
    result = shard_manifest.check_sizes(shards[:2], [pattern])
    assert result.problems == () and result.records is None and len(result.unlisted) == 2
    empty = tmp_path / "empty-00000-of-00001.tfrecord"
    empty.write_bytes(b"")
    with pytest.raises(shards_lib.ShardError, match="hold no record"):
        shards_lib.check_before_reading([str(empty)], str(empty), "--val_data")


def test_verify_reports_each_shard(built, tmp_path):
    data = _copy(built, tmp_path)
    starts = _record_starts(_shard(data, 1))
    _flip(_shard(data, 1), 2)
    with open(_shard(data, 2), "r+b") as f:
        f.truncate(_record_starts(_shard(data, 2))[1] + 50)
    reports = {os.path.basename(r.path): r for r in verify_lib.verify(str(data / "train-*.tfrecord"))}
    assert reports["train-00000-of-00003.tfrecord"].problem is None
    flipped = reports["train-00001-of-00003.tfrecord"]
    assert flipped.records == 2 and flipped.bad_record == 2 and flipped.bad_offset == starts[2]
    assert "corrupted record at" in flipped.problem
    cut = reports["train-00002-of-00003.tfrecord"]
    assert cut.records == 1 and cut.bad_record == 1 and "truncated record" in cut.problem
    assert cut.bad_offset == _record_starts(str(built / "data" / "train-00002-of-00003.tfrecord"))[1]
    # Whole records in another order: every CRC, the count and the size agree; only the checksum tells.
    original = list(tf.data.TFRecordDataset(_shard(data, 0)).as_numpy_iterator())
    with tf.io.TFRecordWriter(_shard(data, 0)) as writer:
        for record in reversed(original):
            writer.write(record)
    reordered = verify_lib.verify(_shard(data, 0))[0]
    assert reordered.records == len(original) and reordered.problem.startswith("sha256 ")
    assert "the manifest says" in reordered.problem
    shutil.copy(built / "data" / "train-00000-of-00003.tfrecord", _shard(data, 0))
    os.remove(_shard(data, 2))
    reports = {os.path.basename(r.path): r for r in verify_lib.verify(str(data / "train-*.tfrecord"))}
    assert reports["train-00002-of-00003.tfrecord"].problem == "missing"
    proc = subprocess.run([sys.executable, "-m", "lcr_tf.data.verify", f"--data={data}/train-*.tfrecord",
                           f"--json={tmp_path / 'report.json'}"], cwd=_REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "1 of 3 shard(s) good" in proc.stdout and "missing" in proc.stdout
    rows = json.loads((tmp_path / "report.json").read_text())
    assert [r["problem"] is None for r in rows] == [True, False, False]
    good = subprocess.run([sys.executable, "-m", "lcr_tf.data.verify", f"--data={built}/data/train-*.tfrecord"],
                          cwd=_REPO, capture_output=True, text=True, timeout=300)
    assert good.returncode == 0 and "3 of 3 shard(s) good, 12 record(s) read" in good.stdout
    usage = subprocess.run([sys.executable, "-m", "lcr_tf.data.verify", "--help"], cwd=_REPO, capture_output=True,
                           text=True, timeout=120)
    assert usage.returncode == 0 and "--data: TFRecord shards to check" in usage.stdout and "--json" in usage.stdout


def _train(built, data, model_dir, *extra):
    cmd = [sys.executable, "-m", "lcr_tf.train", "--backbone=tiny", "--image_size=64", "--batch_size=2",
           "--num_anchors=0", f"--anchors={built / 'anchors.npz'}", "--rpn_scales=16,32,64", "--rpn_channels=16",
           "--fc_dims=32,32", "--checkpoint_every=1000", f"--train_data={data}/train-*.tfrecord",
           f"--model_dir={model_dir}", *extra]
    return subprocess.run(cmd, cwd=_REPO, capture_output=True, text=True, timeout=600)


def _errors(stderr):
    return [line for line in stderr.splitlines() if "error:" in line and not line.startswith(_NOISE)]


def test_train_refuses_a_cut_shard_at_start(built, tmp_path):
    data = _copy(built, tmp_path)
    with open(_shard(data, 0), "r+b") as f:
        f.truncate(1000)
    proc = _train(built, data, tmp_path / "run", "--train_steps=2")
    assert proc.returncode == 2
    errors = _errors(proc.stderr)
    assert len(errors) == 1 and "train-00000-of-00003.tfrecord: 1000 bytes, its manifest" in errors[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "run" / "checkpoints").exists()


def test_a_corrupt_record_stops_the_run_with_its_shard_and_a_checkpoint(built, tmp_path):
    data = _copy(built, tmp_path)
    start = _record_starts(_shard(data, 1))[2]
    _flip(_shard(data, 1), 2)
    proc = _train(built, data, tmp_path / "run", "--train_steps=40")
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = _errors(proc.stderr)
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert f"train-00001-of-00003.tfrecord: record 2 (byte offset {start}) is corrupt" in errors[0]
    step = int(errors[0].split("stopped at step ")[1].split()[0])
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith(f"ckpt-{step}")


def test_skip_corrupt_records_trains_on_and_counts_them(built, tmp_path):
    data = _copy(built, tmp_path)
    start = _record_starts(_shard(data, 1))[2]
    records = shard_manifest.read(str(data / "train-manifest.json"))[os.path.normpath(_shard(data, 1))]["records"]
    _flip(_shard(data, 1), 2)
    # Two mirrored replicas: the readers run under distribute_datasets_from_function.
    proc = _train(built, data, tmp_path / "run", "--train_steps=12", "--steps_per_epoch=6", "--cpu_replicas=2",
                  "--skip_corrupt_records")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["corrupt_records"]
    damage = metrics["shards"][_shard(data, 1)]
    # Records 0 and 1 are read; record 2 and all after it in that shard are lost in each pass.
    assert damage["record"] == 2 and damage["offset"] == start and damage["records_lost"] == records - 2
    assert metrics["events"] == damage["times"] >= 1
    assert metrics["records_skipped"] == (records - 2) * damage["times"]
    assert damage["bytes_lost"] == os.path.getsize(_shard(data, 1)) - start
    assert metrics["bytes_skipped"] == damage["bytes_lost"] * damage["times"]
    assert "skipped corrupt records:" in proc.stdout
    # One warning line for the shard, however many passes met it.
    line = f"train-00001-of-00003.tfrecord: record 2 (byte offset {start}) is corrupt"
    assert proc.stdout.count(line) + proc.stderr.count(line) == 1
