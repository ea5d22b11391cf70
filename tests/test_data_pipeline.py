"""lcr_tf.data.pipeline (and the draw_samples script) on small shards written here."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from lcr_tf import anchors as anchors_lib
from lcr_tf import body_model
from lcr_tf import features
from lcr_tf import skeleton as skeleton_lib
from lcr_tf.data import decoder as dec
from lcr_tf.data import draw_samples
from lcr_tf.data import pipeline

J = features.NUM_JOINTS
LCR = skeleton_lib.LCR13
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
H, W = 48, 64


def _record(index, people, boxes=None, anchor_class=1):
    """A record with ``people`` people spread over a 48 x 64 image (each one a small figure)."""
    rng = np.random.default_rng(index)
    image = rng.integers(0, 80, (H, W, 3), dtype=np.uint8)
    centre = rng.uniform([12, 12], [W - 12, H - 12], (people, 1, 2))
    pose2d = (centre + rng.uniform(-8, 8, (people, J, 2))).astype(np.float32)
    for p in pose2d:
        for a, b in LCR.bones:
            cv2.line(image, tuple(int(v) for v in p[a]), tuple(int(v) for v in p[b]), (255, 255, 255), 1)
    if boxes is None:
        boxes = np.concatenate([pose2d.min(1) - 2, pose2d.max(1) + 2], -1)
    ok, buf = cv2.imencode(".png", image)
    annotated = np.ones((people, J), np.int64)
    annotated[::2, LCR.lower_body] = 0
    return features.encode_example({
        features.IMAGE_ENCODED: buf.tobytes(), features.IMAGE_FORMAT: "png", features.IMAGE_ID: f"im{index}",
        features.IMAGE_SOURCE: "test", features.IMAGE_HEIGHT: H, features.IMAGE_WIDTH: W,
        features.INTRINSICS: [60.0, 60.0, 32.0, 24.0],
        features.BOX: boxes, features.POSE2D: pose2d, features.ANNOTATED: annotated,
        features.COMPLETED: 1 - annotated, features.VISIBLE: np.ones((people, J), np.int64),
        features.POSE3D: body_model.sample_poses(people, seed=index).poses3d,
        features.POSE3D_SOURCE: np.zeros(people, np.int64), features.PSEUDO_GT_DISTANCE: np.zeros(people),
        features.ANCHOR_CLASS: np.full(people, anchor_class),
    }).SerializeToString()


def _write(path, records):
    with tf.io.TFRecordWriter(str(path)) as w:
        for r in records:
            w.write(r)
    return str(path)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Two shards, 5 + 4 records, 1-4 people each; returns the glob."""
    d = tmp_path_factory.mktemp("shards")
    _write(d / "train-00000-of-00002.tfrecord", [_record(i, 1 + i % 4) for i in range(5)])
    _write(d / "train-00001-of-00002.tfrecord", [_record(i, 1 + i % 4) for i in range(5, 9)])
    return str(d / "train-*.tfrecord")


@pytest.fixture(scope="module")
def anchor_set():
    return anchors_lib.from_centres(body_model.sample_poses(100, seed=2).poses3d[::10])   # K = 10


def _batches(ds):
    return [{k: v.numpy() for k, v in b.items()} for b in ds]


def test_evaluation_batches_letterbox_every_record_once_and_pad(shards):
    config = pipeline.InputConfig(image_size=32, max_people=3, batch_size=4)
    batches = _batches(pipeline.make_dataset(shards, config, training=False))
    assert [b[dec.IMAGE].shape[0] for b in batches] == [4, 4, 1]        # the remainder is kept
    got = np.concatenate([b[dec.IMAGE_ID] for b in batches])
    assert sorted(got) == sorted(f"im{i}".encode() for i in range(9))
    b = batches[0]
    assert b[dec.IMAGE].shape == (4, 32, 32, 3) and b[dec.IMAGE].dtype == np.float32
    assert b[dec.BOXES].shape == (4, 3, 4) and b[dec.POSE2D].shape == (4, 3, J, 2)
    assert b[dec.POSE3D].shape == (4, 3, J, 3) and b[dec.VISIBLE].shape == (4, 3, J)
    assert b[pipeline.PERSON_MASK].shape == (4, 3) and b[pipeline.PERSON_MASK].dtype == bool
    for batch in batches:
        for n, image_id in enumerate(batch[dec.IMAGE_ID]):
            i = int(image_id[2:])
            people = 1 + i % 4
            record = features.decode_example_numpy(_record(i, people))
            kept = min(people, 3)
            np.testing.assert_array_equal(batch[pipeline.PERSON_MASK][n], np.arange(3) < kept)
            assert batch[dec.NUM_PEOPLE][n] == people
            assert batch[pipeline.NUM_PEOPLE_OVER_MAX][n] == people - kept
            s = 32 / W                                               # letterbox: the width is the long side
            np.testing.assert_allclose(batch[dec.TRANSFORM][n], [s, s, 0, 0])
            np.testing.assert_allclose(batch[dec.INTRINSICS][n], np.float32([60, 60, 32, 24]) * s)
            # Each kept person is one of the record's, scaled; padding is all zero.
            for p in range(kept):
                match = [np.allclose(batch[dec.POSE2D][n, p], q * s, atol=1e-4)
                         for q in record[features.POSE2D]]
                assert sum(match) == 1
            assert not batch[dec.POSE2D][n, kept:].any() and not batch[dec.BOXES][n, kept:].any()
            assert not batch[dec.ANNOTATED][n, kept:].any() and (batch[dec.ANCHOR_CLASS][n, kept:] == 0).all()
            assert (batch[dec.ANCHOR_CLASS][n, :kept] == 1).all()
            assert (batch[dec.IMAGE][n, 25:] == 0).all()                 # 48 * 0.5 = 24 rows of content


def test_more_people_than_slots_keeps_the_largest(tmp_path):
    sizes = np.float32([10, 40, 20, 35, 5])
    boxes = np.stack([np.full(5, 2.0), np.full(5, 2.0), 2 + sizes, 2 + sizes], -1)
    path = _write(tmp_path / "crowd.tfrecord", [_record(0, 5, boxes=boxes)])
    config = pipeline.InputConfig(image_size=64, max_people=3, batch_size=1)
    b = _batches(pipeline.make_dataset(path, config, training=False))[0]
    np.testing.assert_allclose(b[dec.BOXES][0, :, 2] - 2, [40, 35, 20])
    assert b[pipeline.NUM_PEOPLE_OVER_MAX][0] == 2 and b[dec.NUM_PEOPLE][0] == 5
    assert b[pipeline.PERSON_MASK][0].all()


def test_training_batches_are_consistent_and_flipped_classes_reassigned(shards, anchor_set):
    config = pipeline.InputConfig(image_size=40, max_people=4, batch_size=4, scale_range=(0.7, 2.5),
                                  num_epochs=2)
    batches = _batches(pipeline.make_dataset(shards, config, training=True, anchors=anchor_set, seed=3))
    assert len(batches) == 18 // 4                                          # remainder dropped
    flipped = 0
    for b in batches:
        assert b[dec.IMAGE].shape == (4, 40, 40, 3)
        assert b[dec.IMAGE].min() >= 0 and b[dec.IMAGE].max() <= 255
        mask = b[pipeline.PERSON_MASK]
        assert mask.any(axis=1).all()                                       # the crop keeps a person
        pts = b[dec.POSE2D]
        inside = ((pts >= 0) & (pts < 40)).all(-1)
        assert inside.any(-1)[mask].all()                                   # no one entirely outside
        assert not (b[dec.VISIBLE] & ~inside).any()                         # visible joints are inside
        for n in range(4):
            people = mask[n]
            if b[dec.TRANSFORM][n, 0] < 0:
                flipped += 1
                full = b[dec.ANNOTATED][n, people][:, LCR.lower_body].any(1)
                expected = anchor_set.assign_classes(b[dec.POSE3D][n, people], full)
                np.testing.assert_array_equal(b[dec.ANCHOR_CLASS][n, people], expected)
            else:
                assert (b[dec.ANCHOR_CLASS][n, people] == 1).all()
    assert 2 <= flipped <= 14


def test_without_anchors_flipped_people_are_to_be_assigned(shards):
    config = pipeline.InputConfig(image_size=24, batch_size=3, flip_probability=1.0)
    b = _batches(pipeline.make_dataset(shards, config, training=True, seed=0))[0]
    assert (b[dec.TRANSFORM][:, 0] < 0).all()
    assert (b[dec.ANCHOR_CLASS][b[pipeline.PERSON_MASK]] == -1).all()


def test_deterministic_option_gives_identical_batches(shards):
    config = pipeline.InputConfig(image_size=24, max_people=2, batch_size=3, num_epochs=2)
    runs = [_batches(pipeline.make_dataset(shards, config, training=True, seed=11, deterministic=True))
            for _ in range(2)]
    other = _batches(pipeline.make_dataset(shards, config, training=True, seed=12, deterministic=True))
    assert len(runs[0]) == len(runs[1]) == 6
    for a, b in zip(*runs):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not all(np.array_equal(a[dec.IMAGE], c[dec.IMAGE]) for a, c in zip(runs[0], other))
    # The two epochs differ: element seeds follow the position in the stream, not the record.
    first = {i: t for b in runs[0][:3] for i, t in zip(b[dec.IMAGE_ID], b[dec.TRANSFORM])}
    second = {i: t for b in runs[0][3:] for i, t in zip(b[dec.IMAGE_ID], b[dec.TRANSFORM])}
    assert any(not np.array_equal(first[i], second[i]) for i in set(first) & set(second))


def test_other_schema_version_fails_naming_the_shard(tmp_path):
    example = tf.train.Example.FromString(_record(1, 2))
    example.features.feature[features.VERSION].int64_list.value[0] = features.SCHEMA_VERSION + 1
    path = _write(tmp_path / "old-00000-of-00001.tfrecord", [_record(0, 1), example.SerializeToString()])
    ds = pipeline.make_dataset(path, pipeline.InputConfig(image_size=16, batch_size=1), training=False)
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        _batches(ds)
    assert "old-00000-of-00001.tfrecord" in str(e.value) and "schema version" in str(e.value)
    with pytest.raises(ValueError, match=r"old-00000-of-00001\.tfrecord: record 1 \(image im1\) has schema"):
        pipeline.verify_shards(path)


def test_corrupt_records_fail_and_verify_shards_names_them(tmp_path):
    path = _write(tmp_path / "bad.tfrecord", [_record(i, 1) for i in range(3)])
    data = bytearray(open(path, "rb").read())
    second = len(_record(0, 1)) + 16 + 40                      # inside the second record's payload
    data[second] ^= 0xFF
    open(path, "wb").write(bytes(data))
    with pytest.raises(tf.errors.DataLossError, match="corrupted record"):
        _batches(pipeline.make_dataset(path, pipeline.InputConfig(image_size=16, batch_size=1),
                                       training=False))
    with pytest.raises(ValueError, match=r"bad\.tfrecord: record 1 is corrupt"):
        pipeline.verify_shards(path)
    junk = _write(tmp_path / "junk.tfrecord", [_record(0, 1), b"\x08\x96\x01\x12\xff\xff"])
    with pytest.raises(ValueError, match=r"junk\.tfrecord: record 1 is not a tf.train.Example"):
        pipeline.verify_shards(junk)
    assert pipeline.verify_shards(str(tmp_path / "bad.tfrecord").replace("bad", "b*d"), max_records=1) == 1


def test_anchor_classes_beyond_the_anchor_set_fail(tmp_path, anchor_set):
    path = _write(tmp_path / "k50.tfrecord", [_record(4, 2, anchor_class=77)])
    ds = pipeline.make_dataset(path, pipeline.InputConfig(image_size=16, batch_size=1), training=False,
                               anchors=anchor_set)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"k50\.tfrecord: image im4: anchor classes"):
        _batches(ds)


def test_missing_files_and_bad_config_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        pipeline.make_dataset(str(tmp_path / "nothing-here-*"), pipeline.InputConfig(), training=True)
    for kwargs, field in (({"image_size": 1}, "image_size"), ({"max_people": 0}, "max_people"),
                          ({"scale_range": (2.0, 1.0)}, "scale_range"), ({"flip_probability": 1.5}, "flip"),
                          ({"contrast": (0.0, 1.0)}, "contrast"), ({"num_epochs": 0}, "num_epochs"),
                          ({"hue": 0.7}, "hue")):
        with pytest.raises(ValueError, match=field):
            pipeline.InputConfig(**kwargs)


def test_list_shards_accepts_lists_and_comma_separated_globs(shards, tmp_path):
    files = pipeline.list_shards(shards)
    assert [os.path.basename(f) for f in files] == ["train-00000-of-00002.tfrecord",
                                                   "train-00001-of-00002.tfrecord"]
    assert pipeline.list_shards(",".join(files)) == files == pipeline.list_shards(files[::-1])


def test_draw_samples_writes_a_png(shards, tmp_path):
    out = tmp_path / "samples.png"
    assert draw_samples.draw_samples(shards, str(out), num=3, seed=2, image_size=48) == 3
    assert open(out, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 1000
    with pytest.raises(FileNotFoundError, match="no TFRecord shard matches"):
        draw_samples.draw_samples(str(tmp_path / "none-*.tfrecord"), str(out))


def test_draw_samples_command_line_explains_its_flags():
    proc = subprocess.run([sys.executable, "-m", "lcr_tf.data.draw_samples", "--help"], cwd=_REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for flag in ("--input", "--output", "--num", "--seed", "--image_size", "--anchors", "--[no]augment"):
        assert flag in proc.stdout
