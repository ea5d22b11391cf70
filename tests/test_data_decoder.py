"""lcr_tf.data.decoder: records written with lcr_tf.contracts.features decode back to the values encoded."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.contracts import batch_keys, features
from lcr_tf.data import decoder as dec

J = features.NUM_JOINTS


def _record(image_bgr, fmt="png", people=2, image_id="img-0", seed=0, intrinsics=(500.0, 510.0, 80.0, 60.0)):
    """A record dict of hand-chosen values; the image is encoded with OpenCV (BGR in memory)."""
    rng = np.random.default_rng(seed)
    h, w = image_bgr.shape[:2]
    ok, buf = cv2.imencode(".png" if fmt == "png" else ".jpg", image_bgr)
    assert ok
    pose2d = rng.uniform([0, 0], [w, h], (people, J, 2)).astype(np.float32)
    return {
        features.IMAGE_ENCODED: buf.tobytes(), features.IMAGE_FORMAT: fmt.encode(),
        features.IMAGE_ID: image_id, features.IMAGE_SOURCE: "handmade",
        features.IMAGE_HEIGHT: h, features.IMAGE_WIDTH: w, features.INTRINSICS: intrinsics,
        features.BOX: np.concatenate([pose2d.min(1) - 3, pose2d.max(1) + 3], -1),
        features.POSE2D: pose2d,
        features.ANNOTATED: rng.integers(0, 2, (people, J)),
        features.COMPLETED: rng.integers(0, 2, (people, J)),
        features.VISIBLE: rng.integers(0, 2, (people, J)),
        features.POSE3D: rng.normal(0, 0.3, (people, J, 3)).astype(np.float32),
        features.POSE3D_SOURCE: np.arange(people) % 2, features.PSEUDO_GT_DISTANCE: rng.uniform(0, 1, people),
        features.ANCHOR_CLASS: np.arange(people) + 3,
    }


def _image(h=40, w=60):
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.arange(w)[None, :] * 4           # blue channel varies along x
    img[..., 1] = np.arange(h)[:, None] * 6           # green along y
    img[5:9, 10:20, 2] = 255                          # a red bar
    return img


def _serialize(record):
    return features.encode_example(record).SerializeToString()


def test_png_round_trip_gives_the_encoded_values():
    bgr = _image()
    record = _record(bgr, people=3)
    out = dec.decode(_serialize(record), "shard-a")
    np.testing.assert_array_equal(out[batch_keys.IMAGE].numpy(), bgr[..., ::-1])  # RGB, lossless
    assert out[batch_keys.IMAGE].dtype == tf.uint8
    assert out[batch_keys.IMAGE_ID].numpy() == b"img-0" and out[batch_keys.IMAGE_SOURCE].numpy() == b"handmade"
    assert out[batch_keys.SOURCE_FILE].numpy() == b"shard-a"
    np.testing.assert_array_equal(out[batch_keys.ORIGINAL_SIZE].numpy(), [40, 60])
    np.testing.assert_array_equal(out[batch_keys.INTRINSICS].numpy(), np.float32([500, 510, 80, 60]))
    np.testing.assert_array_equal(out[batch_keys.TRANSFORM].numpy(), [1, 1, 0, 0])
    assert int(out[batch_keys.NUM_PEOPLE]) == 3
    for key, feature_key in ((batch_keys.BOXES, features.BOX), (batch_keys.POSE2D, features.POSE2D),
                             (batch_keys.POSE3D, features.POSE3D),
                             (batch_keys.PSEUDO_GT_DISTANCE, features.PSEUDO_GT_DISTANCE)):
        np.testing.assert_array_equal(out[key].numpy(), np.asarray(record[feature_key], np.float32), key)
    for key, feature_key in ((batch_keys.ANNOTATED, features.ANNOTATED), (batch_keys.VISIBLE, features.VISIBLE),
                             (batch_keys.COMPLETED, features.COMPLETED)):
        assert out[key].dtype == tf.bool
        np.testing.assert_array_equal(out[key].numpy(), record[feature_key] == 1, key)
    np.testing.assert_array_equal(out[batch_keys.ANCHOR_CLASS].numpy(), [3, 4, 5])
    np.testing.assert_array_equal(out[batch_keys.POSE3D_SOURCE].numpy(), [0, 1, 0])
    assert out[batch_keys.POSE2D].shape == (3, J, 2) and out[batch_keys.POSE3D].shape == (3, J, 3)


def test_jpeg_and_grayscale_images_decode_to_rgb():
    bgr = _image()
    out = dec.decode(_serialize(_record(bgr, fmt="jpeg")))
    decoded = out[batch_keys.IMAGE].numpy().astype(float)
    assert decoded.shape == (40, 60, 3)
    assert np.abs(decoded - bgr[..., ::-1]).mean() < 4.0  # lossy, but the same picture
    assert out[batch_keys.SOURCE_FILE].numpy() == b""
    gray = (np.arange(60)[None, :] * 4 + np.zeros((40, 1))).astype(np.uint8)
    ok, buf = cv2.imencode(".png", gray)
    record = _record(bgr)
    record[features.IMAGE_ENCODED] = buf.tobytes()
    img = dec.decode(_serialize(record))[batch_keys.IMAGE].numpy()
    assert img.shape == (40, 60, 3)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], gray)


def test_unknown_intrinsics_stay_zero():
    record = _record(_image())
    record[features.INTRINSICS] = None
    np.testing.assert_array_equal(dec.decode(_serialize(record))[batch_keys.INTRINSICS].numpy(), np.zeros(4))


def test_decode_runs_in_a_graph():
    serialized = _serialize(_record(_image(), people=2))
    fn = tf.function(lambda s: dec.decode(s, "f")[batch_keys.POSE2D])
    assert fn(tf.constant(serialized)).shape == (2, J, 2)


def _mutated(record, mutate):
    example = features.encode_example(record)
    mutate(example.features.feature)
    return example.SerializeToString()


def test_other_schema_version_is_refused_naming_the_shard_and_image():
    def bump(f):
        f[features.VERSION].int64_list.value[0] = features.SCHEMA_VERSION + 1
    serialized = _mutated(_record(_image(), image_id="frame-7"), bump)
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        dec.decode(serialized, "data/train-00003-of-00008.tfrecord")
    msg = str(e.value)
    assert "schema version" in msg and f"version {features.SCHEMA_VERSION + 1}" in msg
    assert "train-00003-of-00008.tfrecord" in msg and "frame-7" in msg

    def drop(f):
        del f[features.VERSION]
    with pytest.raises(tf.errors.InvalidArgumentError, match="schema version -1"):
        dec.decode(_mutated(_record(_image()), drop), "x.tfrecord")


def test_inconsistent_people_count_is_refused_naming_the_field():
    def extra_class(f):
        f[features.ANCHOR_CLASS].int64_list.value.append(7)
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        dec.decode(_mutated(_record(_image(), people=2, image_id="im9"), extra_class), "s.tfrecord")
    msg = str(e.value)
    assert features.ANCHOR_CLASS in msg and "holds 3 people" in msg and "declares 2" in msg and "im9" in msg


def test_image_of_another_size_than_declared_is_refused():
    record = _record(_image(40, 60), image_id="wrong-size")
    record[features.IMAGE_HEIGHT] = 41
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        dec.decode(_serialize(record), "s.tfrecord")
    assert "wrong-size" in str(e.value) and "[41 60]" in str(e.value) and "[40 60]" in str(e.value)


def test_bytes_that_are_not_an_example_or_not_an_image_fail():
    with pytest.raises(tf.errors.InvalidArgumentError):
        dec.decode(b"not a protocol buffer")
    record = _record(_image())
    record[features.IMAGE_ENCODED] = b"these are not image bytes"
    with pytest.raises(tf.errors.InvalidArgumentError):
        dec.decode(_serialize(record))


def test_ignore_boxes_decode_to_pixels_of_the_image():
    record = _record(_image(), people=1)
    record[features.IGNORE_BOXES] = [[1.5, 2.0, 10.25, 20.0], [0.0, 0.0, 60.0, 40.0]]
    out = dec.decode(_serialize(record))
    assert out[batch_keys.IGNORE_BOXES].dtype == tf.float32
    np.testing.assert_array_equal(out[batch_keys.IGNORE_BOXES].numpy(), [[1.5, 2.0, 10.25, 20.0], [0, 0, 60, 40]])
    none = dec.decode(_serialize(_record(_image(), people=1)))[batch_keys.IGNORE_BOXES]
    assert none.shape == (0, 4)


def test_an_image_without_people_decodes_to_empty_person_fields():
    record = _record(_image(), people=0)
    record[features.IGNORE_BOXES] = [[5.0, 6.0, 30.0, 35.0]]
    out = dec.decode(_serialize(record), "s.tfrecord")
    assert int(out[batch_keys.NUM_PEOPLE]) == 0
    assert out[batch_keys.BOXES].shape == (0, 4) and out[batch_keys.POSE2D].shape == (0, J, 2)
    assert out[batch_keys.POSE3D].shape == (0, J, 3) and out[batch_keys.VISIBLE].shape == (0, J)
    assert out[batch_keys.VISIBLE].dtype == tf.bool and out[batch_keys.ANCHOR_CLASS].shape == (0,)
    np.testing.assert_array_equal(out[batch_keys.IGNORE_BOXES].numpy(), [[5, 6, 30, 35]])
    np.testing.assert_array_equal(out[batch_keys.IMAGE].numpy(), _image()[..., ::-1])
    fn = tf.function(lambda s: dec.decode(s)[batch_keys.POSE2D])
    assert fn(tf.constant(_serialize(record))).shape == (0, J, 2)
