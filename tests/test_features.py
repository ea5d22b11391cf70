import cv2
import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.contracts import features as F

J = F.NUM_JOINTS


def _record(num_people=2, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, size=(24, 32, 3), dtype=np.uint8)
    return {
        F.IMAGE_ENCODED: cv2.imencode(".png", image)[1].tobytes(), F.IMAGE_FORMAT: "png",
        F.IMAGE_ID: "img-7", F.IMAGE_SOURCE: "synthetic", F.IMAGE_HEIGHT: 24, F.IMAGE_WIDTH: 32,
        F.INTRINSICS: [300.0, 310.0, 16.0, 12.0],
        F.BOX: rng.uniform(0, 30, (num_people, 4)), F.POSE2D: rng.uniform(0, 30, (num_people, J, 2)),
        F.ANNOTATED: rng.random((num_people, J)) > 0.2, F.COMPLETED: rng.random((num_people, J)) > 0.8,
        F.VISIBLE: rng.random((num_people, J)) > 0.5, F.POSE3D: rng.normal(size=(num_people, J, 3)),
        F.POSE3D_SOURCE: rng.integers(0, 2, num_people), F.PSEUDO_GT_DISTANCE: rng.random(num_people),
        F.ANCHOR_CLASS: rng.integers(1, 9, num_people),
    }


def _check_same(rec, decoded):
    for key in (F.IMAGE_ENCODED, F.IMAGE_ID, F.IMAGE_SOURCE, F.IMAGE_FORMAT):
        want = rec[key] if isinstance(rec[key], bytes) else rec[key].encode()
        got = decoded[key]
        assert (got.numpy() if hasattr(got, "numpy") else got) == want
    for key, (_, dtype) in F.PERSON_FIELDS.items():
        got = np.asarray(decoded[key])
        np.testing.assert_allclose(got, np.asarray(rec[key], dtype).astype(got.dtype), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(decoded[F.INTRINSICS]), rec[F.INTRINSICS])
    assert int(np.asarray(decoded[F.NUM_PEOPLE])) == len(rec[F.BOX])
    boxes = np.zeros((0, 4)) if rec.get(F.IGNORE_BOXES) is None else np.asarray(rec[F.IGNORE_BOXES])
    got = np.asarray(decoded[F.IGNORE_BOXES])
    assert got.shape == boxes.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, boxes.astype(np.float32))
    assert int(np.asarray(decoded[F.NUM_IGNORE])) == len(boxes)
    assert int(np.asarray(decoded[F.VERSION])) == F.SCHEMA_VERSION == 3


@pytest.mark.parametrize("num_people,ignore", [
    (1, None), (3, [[1.5, 2.0, 10.25, 20.0], [0.0, 0.0, 32.0, 24.0]]), (2, np.zeros((0, 4)))])
def test_round_trip_numpy_and_tensorflow(num_people, ignore):
    rec = _record(num_people)
    rec[F.IGNORE_BOXES] = ignore
    serialized = F.encode_example(rec).SerializeToString()
    _check_same(rec, F.decode_example_numpy(serialized))
    parsed = F.parse_example(tf.constant(serialized))
    _check_same(rec, parsed)
    assert parsed[F.POSE2D].shape == (num_people, J, 2)
    image = tf.io.decode_image(parsed[F.IMAGE_ENCODED]).numpy()
    assert image.shape == (24, 32, 3)


def test_parse_inside_a_dataset_graph():
    recs = [_record(1, 0), _record(4, 1)]
    ds = tf.data.Dataset.from_tensor_slices([F.encode_example(r).SerializeToString() for r in recs])
    shapes = [(ex[F.POSE3D].shape[0], ex[F.IGNORE_BOXES].shape[0]) for ex in ds.map(F.parse_example)]
    assert shapes == [(1, 0), (4, 0)]
    recs[0][F.IGNORE_BOXES] = [[1, 2, 3, 4], [5, 6, 7, 8], [0, 0, 1, 1]]
    ds = tf.data.Dataset.from_tensor_slices([F.encode_example(r).SerializeToString() for r in recs])
    got = [ex[F.IGNORE_BOXES].numpy().tolist() for ex in ds.map(F.parse_example)]
    assert got == [[[1, 2, 3, 4], [5, 6, 7, 8], [0, 0, 1, 1]], []]


def test_unknown_intrinsics_are_zero():
    rec = _record()
    rec[F.INTRINSICS] = None
    decoded = F.decode_example_numpy(F.encode_example(rec).SerializeToString())
    np.testing.assert_array_equal(decoded[F.INTRINSICS], np.zeros(4))


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r.pop(F.POSE3D), "field 'person/pose3d' is missing"),
    (lambda r: r.__setitem__(F.POSE2D, np.zeros((3, J, 2))), r"'person/pose2d' has shape \(3, 13, 2\)"),
    (lambda r: r.__setitem__(F.POSE3D, np.full((2, J, 3), np.nan)), "'person/pose3d' holds NaN"),
    (lambda r: r.__setitem__(F.IMAGE_FORMAT, "gif"), "'image/format' is 'gif'"),
    (lambda r: r.__setitem__(F.IMAGE_HEIGHT, 0), "'image/height' must be a positive"),
    (lambda r: r.__setitem__(F.INTRINSICS, [1.0, 2.0]), "'image/intrinsics' must be 4"),
    (lambda r: r.__setitem__(F.IGNORE_BOXES, [1.0, 2.0, 3.0, 4.0]), r"'image/ignore_boxes' has shape \(4,\)"),
    (lambda r: r.__setitem__(F.IGNORE_BOXES, [[1, 2, 3]]), r"'image/ignore_boxes' has shape \(1, 3\)"),
    (lambda r: r.__setitem__(F.IGNORE_BOXES, [[1, 2, 3, np.nan]]), "'image/ignore_boxes' holds NaN"),
    (lambda r: r.__setitem__(F.IGNORE_BOXES, [[0, 0, 5, 5], [4, 2, 4, 9]]),
     r"'image/ignore_boxes' box 1 \[4.0, 2.0, 4.0, 9.0\] is empty or reversed"),
    (lambda r: r.__setitem__(F.IGNORE_BOXES, [[6, 2, 4, 9]]), "'image/ignore_boxes' box 0 .* reversed"),
    (lambda r: r.__setitem__(F.IGNORE_BOXES, [[1, 2, 3, 4], [1, 2]]), "'image/ignore_boxes' is not an"),
])
def test_bad_records_name_the_image_and_the_field(mutate, message):
    rec = _record()
    mutate(rec)
    with pytest.raises(ValueError, match="image 'img-7': .*" + message):
        F.encode_example(rec)


@pytest.mark.parametrize("ignore", [None, [[4.0, 3.0, 20.0, 18.5]]])
@pytest.mark.parametrize("empty", ["sliced", "list"])
def test_an_image_without_people_round_trips(ignore, empty):
    rec = _record(1)
    for key in F.PERSON_FIELDS:
        rec[key] = np.asarray(rec[key])[:0] if empty == "sliced" else []
    rec[F.IGNORE_BOXES] = ignore
    serialized = F.encode_example(rec).SerializeToString()
    rec.update({key: np.zeros((0,) + shape, dtype) for key, (shape, dtype) in F.PERSON_FIELDS.items()})
    for decoded in (F.decode_example_numpy(serialized), F.parse_example(tf.constant(serialized))):
        _check_same(rec, decoded)
        assert int(np.asarray(decoded[F.NUM_PEOPLE])) == 0
        for key, (shape, _) in F.PERSON_FIELDS.items():
            assert tuple(decoded[key].shape) == (0,) + shape, key


def test_a_person_field_of_another_count_than_the_first_is_refused():
    rec = _record(2)
    rec[F.POSE3D] = []
    with pytest.raises(ValueError, match=r"image 'img-7': field 'person/pose3d' has shape \(0, 13, 3\), "
                                         r"expected \(2, 13, 3\)"):
        F.encode_example(rec)


def test_other_schema_version_is_refused():
    ex = F.encode_example(_record())
    ex.features.feature[F.VERSION].int64_list.value[0] = F.SCHEMA_VERSION + 1
    serialized = ex.SerializeToString()
    with pytest.raises(ValueError, match="schema version"):
        F.decode_example_numpy(serialized)
    with pytest.raises(tf.errors.InvalidArgumentError, match="schema version"):
        F.parse_example(tf.constant(serialized))


def test_ignore_box_count_must_match_the_boxes():
    rec = _record()
    rec[F.IGNORE_BOXES] = [[1, 2, 3, 4], [5, 6, 7, 8]]
    ex = F.encode_example(rec)
    assert list(ex.features.feature[F.NUM_IGNORE].int64_list.value) == [2]
    assert list(ex.features.feature[F.IGNORE_BOXES].float_list.value) == [1, 2, 3, 4, 5, 6, 7, 8]
    ex.features.feature[F.NUM_IGNORE].int64_list.value[0] = 3
    serialized = ex.SerializeToString()
    with pytest.raises(ValueError, match="image 'img-7': field 'image/ignore_boxes' holds 8 numbers, expected 4 "
                                         "per region of image/num_ignore=3"):
        F.decode_example_numpy(serialized)
    with pytest.raises(tf.errors.InvalidArgumentError, match="4 numbers per region"):
        F.parse_example(tf.constant(serialized))


def test_the_docstring_table_lists_every_key():
    keys = {v for k, v in vars(F).items() if k.isupper() and isinstance(v, str) and "/" in v}
    table = F.__doc__.split("=====  ", 1)[1]
    for key in keys:
        assert key in table, key
    assert {F.NUM_IGNORE, F.IGNORE_BOXES} <= set(F.parse_spec())
