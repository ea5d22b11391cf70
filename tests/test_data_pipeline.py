"""lcr_tf.data.pipeline (and the draw_samples script) on small shards written here."""

import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.contracts import batch_keys, features, shard_manifest
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.data import draw_samples, pipeline
from lcr_tf.data import shards as shards_lib
from lcr_tf.poses import anchors as anchors_lib
from lcr_tf.poses import body_model

J = features.NUM_JOINTS
LCR = skeleton_lib.LCR13
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
H, W = 48, 64


def _pose3d(index, people):
    return body_model.sample_poses(people, seed=index).poses3d if people else np.zeros((0, J, 3), np.float32)


def _annotated(people):
    annotated = np.ones((people, J), np.int64)
    annotated[::2, LCR.lower_body] = 0                        # every other person upper-body only
    return annotated


def _image(index, size=(H, W)):
    return np.random.default_rng(index).integers(0, 80, size + (3,), dtype=np.uint8)


def _record(index, people, boxes=None, anchor_class=1, size=(H, W), ignore=None, pose2d=None, anchors=None):
    """A record with ``people`` people spread over a ``size`` (48 x 64) image (each one a small figure).

    ``anchor_class``: the class written for everyone, unless ``anchors`` (an AnchorSet) is given: then
    each person's class is the build job's (``assign_classes``, full body = a knee or ankle annotated).
    ``ignore``: the record's ignore boxes. ``pose2d``: (people, J, 2) instead of random figures.
    """
    h, w = size
    rng = np.random.default_rng(index)
    image = _image(index, size)
    centre = rng.uniform([12, 12], [w - 12, h - 12], (people, 1, 2))
    if pose2d is None:
        pose2d = (centre + rng.uniform(-8, 8, (people, J, 2))).astype(np.float32)
    for p in pose2d:
        for a, b in LCR.bones:
            cv2.line(image, tuple(int(v) for v in p[a]), tuple(int(v) for v in p[b]), (255, 255, 255), 1)
    if boxes is None:
        boxes = np.concatenate([pose2d.min(1) - 2, pose2d.max(1) + 2], -1)
    ok, buf = cv2.imencode(".png", image)
    annotated = _annotated(people)
    pose3d = _pose3d(index, people)
    classes = (np.full(people, anchor_class) if anchors is None
               else anchors.assign_classes(pose3d, annotated[:, LCR.lower_body].any(1)))
    return features.encode_example({
        features.IMAGE_ENCODED: buf.tobytes(), features.IMAGE_FORMAT: "png", features.IMAGE_ID: f"im{index}",
        features.IMAGE_SOURCE: "test", features.IMAGE_HEIGHT: h, features.IMAGE_WIDTH: w,
        features.INTRINSICS: [60.0, 60.0, 32.0, 24.0],
        features.BOX: boxes, features.POSE2D: pose2d, features.ANNOTATED: annotated,
        features.COMPLETED: 1 - annotated, features.VISIBLE: np.ones((people, J), np.int64),
        features.POSE3D: pose3d,
        features.POSE3D_SOURCE: np.zeros(people, np.int64), features.PSEUDO_GT_DISTANCE: np.zeros(people),
        features.ANCHOR_CLASS: classes, features.IGNORE_BOXES: ignore,
    }).SerializeToString()


def _nearest_anchor_classes(pose3d, full_body, anchor_set):
    """NumPy reference of the class rule: nearest full-body anchor by squared distance between
    body-centred poses; class k + 1 when full body, K + k + 1 otherwise."""
    k = anchor_set.num_anchors
    centred = pose3d - pose3d[:, LCR.centre_joints].mean(1, keepdims=True)
    diff = centred[:, None].astype(np.float64) - anchor_set.pose3d[None, :k].astype(np.float64)
    d = (diff ** 2).sum((2, 3))
    nearest = d.argmin(1)
    return np.where(full_body, nearest + 1, k + nearest + 1)


def _mirror3d(pose3d):
    return pose3d[..., LCR.flip_permutation, :] * np.float32([-1, 1, 1])


def _map_boxes_np(boxes, transform, size):
    """Boxes of the original image -> output pixels through ``transform`` [sx, sy, tx, ty], clipped to
    [0, size]^2, the empty ones dropped, by decreasing area."""
    sx, sy, tx, ty = transform
    x = np.sort(np.stack([boxes[:, 0] * sx + tx, boxes[:, 2] * sx + tx], 1), 1)
    out = np.stack([x[:, 0], boxes[:, 1] * sy + ty, x[:, 1], boxes[:, 3] * sy + ty], 1).clip(0, size)
    out = out[(out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])]
    area = (out[:, 2] - out[:, 0]) * (out[:, 3] - out[:, 1])
    return out[np.argsort(-area, kind="stable")]


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
    assert [b[batch_keys.IMAGE].shape[0] for b in batches] == [4, 4, 1]        # the remainder is kept
    got = np.concatenate([b[batch_keys.IMAGE_ID] for b in batches])
    assert sorted(got) == sorted(f"im{i}".encode() for i in range(9))
    b = batches[0]
    assert b[batch_keys.IMAGE].shape == (4, 32, 32, 3) and b[batch_keys.IMAGE].dtype == np.float32
    assert b[batch_keys.BOXES].shape == (4, 3, 4) and b[batch_keys.POSE2D].shape == (4, 3, J, 2)
    assert b[batch_keys.POSE3D].shape == (4, 3, J, 3) and b[batch_keys.VISIBLE].shape == (4, 3, J)
    assert b[batch_keys.PERSON_MASK].shape == (4, 3) and b[batch_keys.PERSON_MASK].dtype == bool
    for batch in batches:
        for n, image_id in enumerate(batch[batch_keys.IMAGE_ID]):
            i = int(image_id[2:])
            people = 1 + i % 4
            record = features.decode_example_numpy(_record(i, people))
            kept = min(people, 3)
            np.testing.assert_array_equal(batch[batch_keys.PERSON_MASK][n], np.arange(3) < kept)
            assert batch[batch_keys.NUM_PEOPLE][n] == people
            assert batch[batch_keys.NUM_PEOPLE_OVER_MAX][n] == people - kept
            s = 32 / W                                               # letterbox: the width is the long side
            np.testing.assert_allclose(batch[batch_keys.TRANSFORM][n], [s, s, 0, 0])
            np.testing.assert_allclose(batch[batch_keys.INTRINSICS][n], np.float32([60, 60, 32, 24]) * s)
            # Each kept person is one of the record's, scaled; padding is all zero.
            for p in range(kept):
                match = [np.allclose(batch[batch_keys.POSE2D][n, p], q * s, atol=1e-4)
                         for q in record[features.POSE2D]]
                assert sum(match) == 1
            assert not batch[batch_keys.POSE2D][n, kept:].any() and not batch[batch_keys.BOXES][n, kept:].any()
            assert not batch[batch_keys.ANNOTATED][n, kept:].any()
            assert (batch[batch_keys.ANCHOR_CLASS][n, kept:] == 0).all()
            assert (batch[batch_keys.ANCHOR_CLASS][n, :kept] == 1).all()
            assert (batch[batch_keys.IMAGE][n, 25:] == 0).all()                 # 48 * 0.5 = 24 rows of content


def test_more_people_than_slots_keeps_the_largest(tmp_path):
    sizes = np.float32([10, 40, 20, 35, 5])
    boxes = np.stack([np.full(5, 2.0), np.full(5, 2.0), 2 + sizes, 2 + sizes], -1)
    path = _write(tmp_path / "crowd.tfrecord", [_record(0, 5, boxes=boxes)])
    config = pipeline.InputConfig(image_size=64, max_people=3, batch_size=1)
    b = _batches(pipeline.make_dataset(path, config, training=False))[0]
    np.testing.assert_allclose(b[batch_keys.BOXES][0, :, 2] - 2, [40, 35, 20])
    assert b[batch_keys.NUM_PEOPLE_OVER_MAX][0] == 2 and b[batch_keys.NUM_PEOPLE][0] == 5
    assert b[batch_keys.PERSON_MASK][0].all()


def test_training_batches_are_consistent_and_every_class_recomputed(shards, anchor_set):
    config = pipeline.InputConfig(image_size=40, max_people=4, batch_size=4, scale_range=(0.7, 2.5),
                                  num_epochs=2)
    batches = _batches(pipeline.make_dataset(shards, config, training=True, anchors=anchor_set, seed=3))
    assert len(batches) == 18 // 4                                          # remainder dropped
    flipped = 0
    for b in batches:
        assert b[batch_keys.IMAGE].shape == (4, 40, 40, 3)
        assert b[batch_keys.IMAGE].min() >= 0 and b[batch_keys.IMAGE].max() <= 255
        mask = b[batch_keys.PERSON_MASK]
        assert mask.any(axis=1).all()                                       # the crop keeps a person
        pts = b[batch_keys.POSE2D]
        inside = ((pts >= 0) & (pts < 40)).all(-1)
        assert inside.any(-1)[mask].all()                                   # no one entirely outside
        assert not (b[batch_keys.VISIBLE] & ~inside).any()                         # visible joints are inside
        for n in range(4):
            people = mask[n]
            flipped += b[batch_keys.TRANSFORM][n, 0] < 0
            # The records say class 1 for everyone; with anchors the pipeline recomputes every class.
            full = b[batch_keys.ANNOTATED][n, people][:, LCR.lower_body].any(1)
            expected = anchor_set.assign_classes(b[batch_keys.POSE3D][n, people], full)
            np.testing.assert_array_equal(b[batch_keys.ANCHOR_CLASS][n, people], expected)
        assert b[batch_keys.IGNORE_BOXES].shape == (4, 16, 4) and not b[batch_keys.IGNORE_MASK].any()
    assert 2 <= flipped <= 14


def test_without_anchors_flipped_people_are_to_be_assigned(shards):
    config = pipeline.InputConfig(image_size=24, batch_size=3, flip_probability=1.0)
    b = _batches(pipeline.make_dataset(shards, config, training=True, seed=0))[0]
    assert (b[batch_keys.TRANSFORM][:, 0] < 0).all()
    assert (b[batch_keys.ANCHOR_CLASS][b[batch_keys.PERSON_MASK]] == -1).all()


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
    assert not all(np.array_equal(a[batch_keys.IMAGE], c[batch_keys.IMAGE]) for a, c in zip(runs[0], other))
    # The two epochs differ: element seeds follow the position in the stream, not the record.
    first = {i: t for b in runs[0][:3] for i, t in zip(b[batch_keys.IMAGE_ID], b[batch_keys.TRANSFORM])}
    second = {i: t for b in runs[0][3:] for i, t in zip(b[batch_keys.IMAGE_ID], b[batch_keys.TRANSFORM])}
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
    start = len(_record(0, 1)) + 16                             # the second record's framing starts here
    data[start + 40] ^= 0xFF                                    # inside its payload: same size, bad CRC
    open(path, "wb").write(bytes(data))
    shards_lib.SKIPPED.clear()
    line = f"bad.tfrecord: record 1 (byte offset {start}) is corrupt"
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(line)):
        _batches(pipeline.make_dataset(path, pipeline.InputConfig(image_size=16, batch_size=1),
                                       training=False))
    assert shards_lib.SKIPPED.first() == (path, shards_lib.Damage(1, start, None, len(data) - start))
    with pytest.raises(ValueError, match=re.escape(line)):
        pipeline.verify_shards(path)
    junk = _write(tmp_path / "junk.tfrecord", [_record(0, 1), b"\x08\x96\x01\x12\xff\xff"])
    with pytest.raises(ValueError, match=r"junk\.tfrecord: record 1 is not a tf.train.Example"):
        pipeline.verify_shards(junk)
    assert pipeline.verify_shards(str(tmp_path / "bad.tfrecord").replace("bad", "b*d"), max_records=1) == 1


def test_skip_corrupt_records_drops_the_rest_of_the_shard_and_counts_it(tmp_path):
    """Two shards of 3 and 4 records, the second's record 2 damaged: with skipping, each of two passes reads
    3 + 2 records and logs 2 lost records (records 2 and 3) of that shard, from its manifest."""
    good = _write(tmp_path / "s-00000-of-00002.tfrecord", [_record(i, 1) for i in range(3)])
    bad = _write(tmp_path / "s-00001-of-00002.tfrecord", [_record(10 + i, 1) for i in range(4)])
    shard_manifest.write(str(tmp_path / "s"), [good, bad])
    data = bytearray(open(bad, "rb").read())
    start = len(_record(10, 1)) + len(_record(11, 1)) + 2 * 16
    data[start + 30] ^= 0xFF
    open(bad, "wb").write(bytes(data))
    shards_lib.SKIPPED.clear()
    config = pipeline.InputConfig(image_size=16, batch_size=1, num_epochs=2, skip_corrupt_records=True)
    ids = [i for b in _batches(pipeline.make_dataset(str(tmp_path / "s-*.tfrecord"), config, training=False))
           for i in b[batch_keys.IMAGE_ID]]
    assert sorted(ids) == sorted([b"im0", b"im1", b"im2", b"im10", b"im11"] * 2)
    assert shards_lib.SKIPPED.summary() == {
        "shards": {bad: {"record": 2, "offset": start, "records_lost": 2, "bytes_lost": len(data) - start,
                         "times": 2}},
        "records_skipped": 4, "bytes_skipped": 2 * (len(data) - start), "events": 2}
    # Multi-worker readers: by file (2 readers, 2 shards) and by record (3 readers: each reads every shard,
    # so each meets the damage once per pass). Together they read the good records once per pass.
    for count, times in ((2, 2), (3, 6)):
        shards_lib.SKIPPED.clear()
        ids = [i for index in range(count) for b in _batches(pipeline.make_dataset(
            str(tmp_path / "s-*.tfrecord"), config, training=False, shard=(count, index)))
            for i in b[batch_keys.IMAGE_ID]]
        assert sorted(ids) == sorted([b"im0", b"im1", b"im2", b"im10", b"im11"] * 2), count
        assert shards_lib.SKIPPED.summary()["events"] == times


def test_record_classes_beyond_the_anchor_set_are_recomputed_not_refused(tmp_path, anchor_set):
    path = _write(tmp_path / "k50.tfrecord", [_record(4, 2, anchor_class=77)])
    ds = pipeline.make_dataset(path, pipeline.InputConfig(image_size=16, batch_size=1), training=False,
                               anchors=anchor_set)
    b = _batches(ds)[0]
    full = b[batch_keys.ANNOTATED][0, :2][:, LCR.lower_body].any(1)
    np.testing.assert_array_equal(b[batch_keys.ANCHOR_CLASS][0, :2],
                                  _nearest_anchor_classes(b[batch_keys.POSE3D][0, :2], full, anchor_set))
    # Without anchors the record's class is all there is.
    config = pipeline.InputConfig(image_size=16, batch_size=1)
    b = _batches(pipeline.make_dataset(path, config, training=False))[0]
    np.testing.assert_array_equal(b[batch_keys.ANCHOR_CLASS][0], [77] * 2 + [0] * 6)


@pytest.mark.parametrize("training", [True, False])
def test_classes_written_with_another_anchor_set_are_those_of_the_given_set(tmp_path, anchor_set, training):
    other = anchors_lib.from_centres(body_model.sample_poses(100, seed=7).poses3d[5::10])   # also K = 10
    assert other.num_anchors == anchor_set.num_anchors
    people = {i: 1 + i % 4 for i in range(8)}
    path = _write(tmp_path / "a.tfrecord", [_record(i, people[i], anchors=anchor_set) for i in people])
    config = pipeline.InputConfig(image_size=48, max_people=4, batch_size=4, scale_range=(1.0, 1.0),
                                  num_epochs=3 if training else 1)
    seen = {"flipped": 0, "unflipped": 0, "differ": 0}
    for b in _batches(pipeline.make_dataset(path, config, training=training, anchors=other, seed=5)):
        for n, image_id in enumerate(b[batch_keys.IMAGE_ID]):
            i = int(image_id[2:])
            flipped = b[batch_keys.TRANSFORM][n, 0] < 0
            record3d, annotated = _pose3d(i, people[i]), _annotated(people[i])
            if flipped:
                record3d = _mirror3d(record3d)
            mask = b[batch_keys.PERSON_MASK][n]
            assert mask.sum() == people[i]
            for p in np.flatnonzero(mask):
                # Which record person this is: its 3D pose (mirrored when flipped) is in the record.
                match = [q for q in range(people[i])
                         if np.allclose(b[batch_keys.POSE3D][n, p], record3d[q], atol=1e-6)]
                assert len(match) == 1
                q = match[0]
                full = annotated[q, LCR.lower_body].any()
                want = _nearest_anchor_classes(record3d[q:q + 1], np.array([full]), other)[0]
                assert b[batch_keys.ANCHOR_CLASS][n, p] == want
                written = features.decode_example_numpy(_record(i, people[i], anchors=anchor_set))
                seen["differ"] += int(written[features.ANCHOR_CLASS][q] != want)
                seen["flipped" if flipped else "unflipped"] += 1
    assert seen["unflipped"] > 0 and (seen["flipped"] > 0) == training
    assert seen["differ"] >= (seen["flipped"] + seen["unflipped"]) // 2       # the two sets disagree


def test_crowd_boxes_follow_the_letterbox_and_the_flip_by_hand(tmp_path):
    crowds = [[10, 4, 30, 20], [40, 30, 64, 48]]
    path = _write(tmp_path / "crowd.tfrecord", [_record(0, 2, ignore=crowds)])
    config = pipeline.InputConfig(image_size=32, max_ignore=4, batch_size=1)
    b = _batches(pipeline.make_dataset(path, config, training=False))[0]
    assert b[batch_keys.IGNORE_BOXES].shape == (1, 4, 4) and b[batch_keys.IGNORE_BOXES].dtype == np.float32
    # Letterbox of 48 x 64 onto 32: scale 0.5; the larger region first.
    np.testing.assert_allclose(b[batch_keys.IGNORE_BOXES][0], [[20, 15, 32, 24], [5, 2, 15, 10], [0] * 4, [0] * 4])
    np.testing.assert_array_equal(b[batch_keys.IGNORE_MASK][0], [True, True, False, False])

    # A square 64 x 64 image at zoom 1: the training window is the whole image, [0, 64]^2, then scale 0.5
    # and a flip x -> 32 - x.
    crowds = [[10, 4, 30, 20], [0, 40, 64, 64]]
    path = _write(tmp_path / "square.tfrecord", [_record(1, 2, size=(64, 64), ignore=crowds)])
    config = pipeline.InputConfig(image_size=32, max_ignore=3, batch_size=1, scale_range=(1.0, 1.0),
                                  flip_probability=1.0)
    b = _batches(pipeline.make_dataset(path, config, training=True, seed=4))[0]
    np.testing.assert_allclose(b[batch_keys.TRANSFORM][0], [-0.5, 0.5, 32, 0])
    np.testing.assert_allclose(b[batch_keys.IGNORE_BOXES][0], [[0, 20, 32, 32], [17, 2, 27, 10], [0] * 4])
    np.testing.assert_array_equal(b[batch_keys.IGNORE_MASK][0], [True, True, False])


def test_zoomed_crops_clip_ignore_boxes_and_drop_those_left_outside(tmp_path):
    crowds = np.float32([[1, 1, 6, 6], [0, 0, 64, 64], [50, 50, 63, 60]])
    path = _write(tmp_path / "zoom.tfrecord", [_record(2, 1, size=(64, 64), ignore=crowds)])
    config = pipeline.InputConfig(image_size=32, max_ignore=4, batch_size=1, scale_range=(2.0, 2.0),
                                  num_epochs=16)
    counts = set()
    for b in _batches(pipeline.make_dataset(path, config, training=True, seed=1)):
        want = _map_boxes_np(crowds, b[batch_keys.TRANSFORM][0], 32)
        counts.add(len(want))
        got = b[batch_keys.IGNORE_BOXES][0]
        np.testing.assert_allclose(got[:len(want)], want, atol=1e-4)
        assert not got[len(want):].any()
        np.testing.assert_array_equal(b[batch_keys.IGNORE_MASK][0], np.arange(4) < len(want))
        assert (got[:, 2] >= got[:, 0]).all() and got.min() >= 0 and got.max() <= 32
        np.testing.assert_allclose(got[0], [0, 0, 32, 32])            # the whole-image region, clipped
    assert len(counts) > 1                                           # the corner regions come and go


@pytest.mark.parametrize("regions", [None, [[10, 10, 20, 20], [30, 5, 60, 45]]])
def test_people_beyond_max_people_become_the_first_ignore_boxes(tmp_path, regions):
    boxes = np.float32([[-6, 40, 4, 50],       # clipped [0, 40, 4, 50]: area 40, the smallest
                        [2, 2, 42, 42],        # 1600
                        [60, 10, 80, 30],      # clipped [60, 10, 64, 30]: area 80
                        [5, 5, 40, 40],        # 1225
                        [20, 20, 30, 30]])     # 100
    path = _write(tmp_path / "many.tfrecord", [_record(3, 5, boxes=boxes, ignore=regions)])
    regions = [] if regions is None else regions
    for max_ignore in (3, 6):
        config = pipeline.InputConfig(image_size=64, max_people=3, max_ignore=max_ignore, batch_size=1)
        b = _batches(pipeline.make_dataset(path, config, training=False))[0]
        assert b[batch_keys.NUM_PEOPLE_OVER_MAX][0] == 2
        np.testing.assert_allclose(b[batch_keys.BOXES][0], boxes[[1, 3, 4]])      # letterbox 64: scale 1
        # The two people left out, largest first, then the record's regions, largest first.
        want = [[60, 10, 64, 30], [0, 40, 4, 50]] + [[30, 5, 60, 45], [10, 10, 20, 20]][:len(regions)]
        want = np.float32(want[:max_ignore])
        got = b[batch_keys.IGNORE_BOXES][0]
        np.testing.assert_allclose(got[:len(want)], want)
        assert not got[len(want):].any()
        np.testing.assert_array_equal(b[batch_keys.IGNORE_MASK][0], np.arange(max_ignore) < len(want))


def test_people_outside_the_crop_do_not_become_ignore_boxes(tmp_path):
    pose2d = np.zeros((2, J, 2), np.float32)
    pose2d[0] = np.random.default_rng(0).uniform([10, 10], [30, 30], (J, 2))
    pose2d[1] = np.random.default_rng(1).uniform([70, 10], [90, 30], (J, 2))    # right of the 64 px image
    path = _write(tmp_path / "out.tfrecord", [_record(4, 2, pose2d=pose2d)])
    config = pipeline.InputConfig(image_size=64, max_people=1, max_ignore=2, batch_size=1)
    b = _batches(pipeline.make_dataset(path, config, training=False))[0]
    assert b[batch_keys.NUM_PEOPLE_OUTSIDE][0] == 1 and b[batch_keys.NUM_PEOPLE_OVER_MAX][0] == 0
    assert b[batch_keys.PERSON_MASK][0].all() and not b[batch_keys.IGNORE_MASK][0].any()
    assert not b[batch_keys.IGNORE_BOXES].any()


def _bilinear_rows(src, index):
    """Rows of ``src`` (H, ...) at fractional row indices ``index`` (within [0, H - 1]), interpolated."""
    lo = np.floor(index).astype(int)
    hi = np.minimum(lo + 1, src.shape[0] - 1)
    frac = (index - lo).reshape((-1,) + (1,) * (src.ndim - 1))
    return src[lo] * (1 - frac) + src[hi] * frac


def test_images_without_people_letterbox_by_hand(tmp_path):
    path = _write(tmp_path / "empty.tfrecord", [_record(5, 0), _record(6, 0, ignore=[[8, 6, 40, 30]])])
    config = pipeline.InputConfig(image_size=128, max_people=3, max_ignore=2, batch_size=2, pad_value=50.0)
    b = _batches(pipeline.make_dataset(path, config, training=False))[0]
    assert list(b[batch_keys.IMAGE_ID]) == [b"im5", b"im6"]
    assert b[batch_keys.IMAGE].shape == (2, 128, 128, 3) and b[batch_keys.POSE2D].shape == (2, 3, J, 2)
    assert b[batch_keys.BOXES].shape == (2, 3, 4) and b[batch_keys.ANCHOR_CLASS].shape == (2, 3)
    assert not b[batch_keys.PERSON_MASK].any() and (b[batch_keys.NUM_PEOPLE] == 0).all()
    assert not b[batch_keys.POSE2D].any() and not b[batch_keys.BOXES].any() and not b[batch_keys.ANCHOR_CLASS].any()
    np.testing.assert_array_equal(b[batch_keys.IGNORE_MASK], [[False, False], [True, False]])
    np.testing.assert_allclose(b[batch_keys.IGNORE_BOXES], [[[0] * 4] * 2, [[16, 12, 80, 60], [0] * 4]])
    for n, index in enumerate((5, 6)):
        src = _image(index)[..., ::-1].astype(np.float64)              # written BGR, decoded RGB
        # Letterbox of 48 x 64 onto 128: scale 2; output pixel centre i + 0.5 samples the source at
        # continuous (i + 0.5) / 2, i.e. at source index i / 2 - 0.25 between pixel centres.
        index_of = np.arange(128) / 2 - 0.25
        rows = slice(1, 95)                                            # source rows 0.25 .. 46.75
        cols = slice(1, 127)
        want = _bilinear_rows(src, index_of[rows])
        want = _bilinear_rows(want.transpose(1, 0, 2), index_of[cols]).transpose(1, 0, 2)
        np.testing.assert_allclose(b[batch_keys.IMAGE][n, rows, cols], want, atol=1e-3)
        np.testing.assert_array_equal(b[batch_keys.IMAGE][n, 96:], 50.0)         # below the content: padding


def test_images_without_people_train_on_a_random_window(tmp_path, anchor_set):
    crowd = np.float32([[8, 6, 40, 30]])
    path = _write(tmp_path / "empty.tfrecord", [_record(7, 0), _record(8, 0, ignore=crowd)])
    config = pipeline.InputConfig(image_size=64, max_people=2, max_ignore=2, batch_size=2,
                                  scale_range=(1.0, 1.0), flip_probability=1.0, brightness=0.0,
                                  contrast=(1.0, 1.0), saturation=(1.0, 1.0), hue=0.0, pad_value=50.0,
                                  num_epochs=4)
    offsets = set()
    for b in _batches(pipeline.make_dataset(path, config, training=True, anchors=anchor_set, seed=2)):
        assert b[batch_keys.IMAGE].shape == (2, 64, 64, 3) and b[batch_keys.POSE3D].shape == (2, 2, J, 3)
        assert not b[batch_keys.PERSON_MASK].any() and not b[batch_keys.ANCHOR_CLASS].any()
        for n, image_id in enumerate(b[batch_keys.IMAGE_ID]):
            sx, sy, tx, ty = b[batch_keys.TRANSFORM][n]
            # Zoom 1 of a 64-wide image: the window is [0, 64] along x, anywhere in [-16, 0] along y.
            np.testing.assert_allclose([sx, sy, tx], [-1, 1, 64])
            assert 0 <= ty <= 16
            offsets.add(round(float(ty), 3))
            src = _image(int(image_id[2:]))[..., ::-1][:, ::-1].astype(np.float64)   # RGB, mirrored
            # Output row r (centre r + 0.5) samples source row index r - ty.
            index_of = np.arange(64) - ty
            inner = (index_of >= 0) & (index_of <= H - 1)
            np.testing.assert_allclose(b[batch_keys.IMAGE][n, inner], _bilinear_rows(src, index_of[inner]),
                                       atol=1e-3)
            padding = (np.arange(64) + 1 <= ty) | (np.arange(64) >= ty + H)
            np.testing.assert_allclose(b[batch_keys.IMAGE][n, padding], 50.0, atol=1e-3)
            want = _map_boxes_np(crowd, b[batch_keys.TRANSFORM][n], 64) if image_id == b"im8" else np.zeros((0, 4))
            np.testing.assert_allclose(b[batch_keys.IGNORE_BOXES][n, :len(want)], want, atol=1e-4)
            np.testing.assert_array_equal(b[batch_keys.IGNORE_MASK][n], np.arange(2) < len(want))
    assert len(offsets) > 2


def test_missing_files_and_bad_config_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        pipeline.make_dataset(str(tmp_path / "nothing-here-*"), pipeline.InputConfig(), training=True)
    for kwargs, field in (({"image_size": 1}, "image_size"), ({"max_people": 0}, "max_people"),
                          ({"scale_range": (2.0, 1.0)}, "scale_range"), ({"flip_probability": 1.5}, "flip"),
                          ({"contrast": (0.0, 1.0)}, "contrast"), ({"num_epochs": 0}, "num_epochs"),
                          ({"hue": 0.7}, "hue"), ({"max_ignore": -1}, "max_ignore")):
        with pytest.raises(ValueError, match=field):
            pipeline.InputConfig(**kwargs)


def test_list_shards_accepts_lists_and_comma_separated_globs(shards, tmp_path):
    files = pipeline.list_shards(shards)
    assert [os.path.basename(f) for f in files] == ["train-00000-of-00002.tfrecord",
                                                   "train-00001-of-00002.tfrecord"]
    assert pipeline.list_shards(",".join(files)) == files == pipeline.list_shards(files[::-1])


def test_list_shards_leaves_out_the_build_jobs_side_files(tmp_path):
    """A glob ``PREFIX-*`` also matches the manifest, summary and rejected lines written beside the shards
    (as the build job names them): they are not shards; matching only them is no shard at all."""
    from lcr_tf.contracts import shard_manifest
    from lcr_tf.datasets import records

    prefix = str(tmp_path / "train")
    shard = records.shard_path(prefix, 0, 1)
    for path in (shard, shard_manifest.manifest_path(prefix), records.summary_path(prefix),
                 records.rejected_path(prefix), str(tmp_path / "train-notes.txt")):
        open(path, "w").write("x")
    # Only the sidecars are left out: another file the glob matches is the user's choice.
    assert pipeline.list_shards(prefix + "-*") == sorted([shard, str(tmp_path / "train-notes.txt")])
    os.remove(shard)
    os.remove(str(tmp_path / "train-notes.txt"))
    with pytest.raises(FileNotFoundError, match=r"train-\*' \(only the build job's files beside shards: "
                       r"train-manifest.json, train-rejected.jsonl, train-summary.json\)"):
        pipeline.list_shards(prefix + "-*")


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
