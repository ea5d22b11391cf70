"""The COCO keypoints reader (lcr_tf.datasets.coco): a small dataset written in COCO's own JSON format
and folder layout (people with missing and out-of-image joints, a crowd, broken annotations, an orphan
annotation, a missing image file), the real 4-image excerpt checked against its JSON read here, and the
TFRecord job run on both."""

import json
import os
import pickle

import cv2
import numpy as np
import pytest

from beam_jobs import build_tfrecords as bt
from lcr_tf import datasets
from lcr_tf.contracts import features
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets import records as records_lib
from lcr_tf.datasets.base import RecordError

LCR = skeleton_lib.LCR13
COCO_NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
              "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
              "right_knee", "left_ankle", "right_ankle"]
# LCR-13 joints that COCO has under the same name (the head is the mid-ear point).
SAME_NAME = [n for n in LCR.joint_names if n != "head"]

# An upright person in an 80x60 image, COCO integer pixel indices (x, y) per COCO joint.
PERSON_A = [(30, 6), (31, 5), (29, 5), (33, 6), (27, 6), (35, 12), (25, 12), (37, 20), (23, 20), (38, 27),
            (22, 27), (33, 30), (27, 30), (34, 40), (26, 40), (34, 50), (26, 50)]
V_A = [2, 2, 2, 2, 1, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 2, 1]
# Person B stands at the bottom edge: ankles cut off (not annotated), the right knee just below the image
# (y = 62 > 59), the left wrist not annotated.
PERSON_B = [(60, 30), (61, 29), (59, 29), (63, 30), (57, 30), (65, 38), (55, 38), (67, 45), (53, 45), (0, 0),
            (52, 52), (63, 55), (57, 55), (64, 61), (56, 62), (0, 0), (0, 0)]
V_B = [2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 2, 2, 2, 1, 2, 0, 0]


def _keypoints(points, v):
    return [c for (x, y), vis in zip(points, v) for c in (x, y, vis)]


def _image_entry(image_id, height, width):
    return {"id": image_id, "file_name": f"{image_id:012d}.jpg", "height": height, "width": width,
            "license": 1, "coco_url": "", "date_captured": "", "flickr_url": ""}


def _annotation(ann_id, image_id, keypoints=None, bbox=(1.0, 1.0, 5.0, 5.0), iscrowd=0):
    keypoints = [0] * 51 if keypoints is None else keypoints
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": iscrowd, "bbox": list(bbox),
            "keypoints": keypoints, "num_keypoints": int(np.count_nonzero(np.asarray(keypoints[2::3]))),
            "area": float(bbox[2] * bbox[3]) if len(bbox) == 4 else 0.0, "segmentation": [[0, 0, 1, 1, 1, 0]]}


def coco_fixture():
    """(the JSON dict, {image id: (height, width)} of the image files to write)."""
    images = [_image_entry(11, 60, 80), _image_entry(5, 40, 40), _image_entry(7, 40, 40), _image_entry(9, 40, 40),
              _image_entry(12, 40, 40), _image_entry(13, 40, 40), _image_entry(20, 40, 40)]
    annotations = [
        _annotation(101, 11, _keypoints(PERSON_A, V_A), (21.5, 4.2, 18.0, 47.1)),
        _annotation(102, 11, _keypoints(PERSON_B, V_B), (51.0, 28.0, 17.5, 32.0)),
        _annotation(103, 11, None, (2.25, 40.0, 6.5, 12.0)),                  # no keypoints: ignored
        _annotation(104, 11, None, (50.0, 30.0, 40.0, 40.0), iscrowd=1),      # a crowd reaching outside
        _annotation(501, 5, _keypoints(PERSON_A, V_A)[:48]),                  # cut short
        _annotation(701, 7, _keypoints(PERSON_A, V_A), (1.0, 2.0, -3.0, 4.0)),  # negative width
        _annotation(1201, 12, _keypoints(PERSON_A, V_A)),                     # its image file is missing
        _annotation(1202, 12, None, (0.0, 0.0, 10.0, 10.0), iscrowd=1),
        _annotation(1301, 13, _keypoints(PERSON_A, V_A[:5] + [3] + V_A[6:])),  # visibility 3
        _annotation(9901, 999, _keypoints(PERSON_A, V_A)),                    # names no image
        _annotation(2001, 20, None, (0.0, 0.0, 10.0, 10.0), iscrowd=1),       # only a crowd: not listed
        dict(_annotation(3001, 11, _keypoints(PERSON_A, V_A)), category_id=2),  # not a person: skipped
    ]
    data = {"info": {"description": "test"}, "licenses": [],
            "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": COCO_NAMES,
                            "skeleton": []}, {"id": 2, "name": "dog", "supercategory": "animal"}],
            "images": images, "annotations": annotations}
    sizes = {e["id"]: (e["height"], e["width"]) for e in images if e["id"] != 12}
    return data, sizes


def write_coco_root(root, split="val"):
    """The official layout under ``root``: annotations/person_keypoints_{split}2017.json, {split}2017/*.jpg."""
    data, sizes = coco_fixture()
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    os.makedirs(os.path.join(root, f"{split}2017"), exist_ok=True)
    with open(os.path.join(root, "annotations", f"person_keypoints_{split}2017.json"), "w") as f:
        json.dump(data, f)
    rng = np.random.default_rng(0)
    for image_id, (h, w) in sizes.items():
        pixels = rng.integers(0, 255, (h, w, 3), np.uint8)
        cv2.imwrite(os.path.join(root, f"{split}2017", f"{image_id:012d}.jpg"), pixels)
    return data


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("coco"))
    write_coco_root(root)
    return root


# ----------------------------------------------------------------------------- reader on the fixture


def test_lists_images_with_people_then_stray_entries(coco_root):
    reader = datasets.get_reader("coco", input=coco_root, split="val")
    keys = reader.list_items()
    assert keys == [5, 7, 11, 12, 13, ("annotation", 9)]
    assert [reader.key_name(k) for k in keys] == ["000000000005", "000000000007", "000000000011", "000000000012",
                                                  "000000000013", "annotations[9]"]
    assert reader.images_without_people == 2  # 9 (nothing) and 20 (only a crowd)
    every = datasets.get_reader("coco", input=coco_root, split="val", include_empty=True)
    assert every.list_items() == [5, 7, 9, 11, 12, 13, 20, ("annotation", 9)]
    assert not every.read(9).negative and not every.read(20).negative  # listed, to be rejected by the job
    kept = datasets.get_reader("coco", input=coco_root, split="val", keep_empty=True)
    assert kept.list_items() == [5, 7, 9, 11, 12, 13, 20, ("annotation", 9)]


def test_keep_empty_makes_negatives_of_images_without_a_person(coco_root):
    reader = datasets.get_reader("coco", input=coco_root, split="val", keep_empty=True)
    nothing, crowd = reader.read(9), reader.read(20)
    for record in (nothing, crowd):
        assert record.negative and record.people == []
        assert (record.height, record.width) == (40, 40)
    assert nothing.image_path == os.path.join(coco_root, "val2017", "000000000009.jpg")
    assert nothing.ignore_regions.shape == (0, 4)
    np.testing.assert_array_equal(crowd.ignore_regions, [[0, 0, 10, 10]])  # the crowd's xywh as xyxy
    assert crowd.metadata["crowd_regions"] == 1
    # Images with people are never negatives, even those whose people the job will all reject.
    assert not reader.read(11).negative and not reader.read(12).negative
    assert not datasets.get_reader("coco", input=coco_root, split="val").read(20).negative


def test_people_keypoints_visibility_and_ignore_regions(coco_root):
    reader = datasets.get_reader("coco", input=coco_root, split="val")
    record = reader.read(11)
    assert (record.image_id, record.dataset, record.skeleton) == ("000000000011", "coco", "coco17")
    assert record.image_path == os.path.join(coco_root, "val2017", "000000000011.jpg")
    assert (record.height, record.width) == (60, 80) and record.image_bytes is None
    assert [p.person_id for p in record.people] == ["101", "102", "103"]
    a, b, c = record.people
    # Integer pixel indices + 0.5: the package's continuous coordinates.
    np.testing.assert_array_equal(a.pose2d, np.array(PERSON_A) + 0.5)
    assert a.annotated.all()
    np.testing.assert_array_equal(a.visible, np.array(V_A) == 2)
    expected_b = np.where((np.array(V_B) > 0)[:, None], np.array(PERSON_B) + 0.5, np.nan)
    np.testing.assert_array_equal(b.pose2d, expected_b)  # NaN where v = 0, the knee below the image kept
    np.testing.assert_array_equal(b.annotated, np.array(V_B) > 0)
    np.testing.assert_array_equal(b.visible, np.array(V_B) == 2)
    assert not c.annotated.any() and np.isnan(c.pose2d).all()
    assert a.pose3d is None and a.pose2d.dtype == np.float32
    assert a.extras == {"annotation_id": 101, "bbox": [21.5, 4.2, 39.5, 51.300000000000004], "area": 18.0 * 47.1,
                        "num_keypoints": 17, "ignored": False}
    assert c.extras["ignored"] and c.extras["num_keypoints"] == 0
    # The crowd (xywh -> xyxy, not clipped here: the job clips), then the person without keypoints.
    np.testing.assert_allclose(record.ignore_regions, [[50, 30, 90, 70], [2.25, 40, 8.75, 52]])
    assert record.ignore_regions.dtype == np.float32
    assert record.metadata == {"coco_image_id": 11, "file_name": "000000000011.jpg", "split": "val",
                               "crowd_regions": 1, "sparse_person_regions": 1}


def test_options_change_the_offset_and_the_ignore_rule(coco_root):
    reader = datasets.get_reader("coco", input=coco_root, split="val", keypoint_offset=0.0, ignore_below_joints=0)
    record = reader.read(11)
    np.testing.assert_array_equal(record.people[0].pose2d, np.array(PERSON_A, np.float32))
    np.testing.assert_allclose(record.ignore_regions, [[50, 30, 90, 70]])  # the crowd only
    # Person B has 11 LCR-13 joints: with a threshold of 12 its box joins the ignore regions.
    strict = datasets.get_reader("coco", input=coco_root, split="val", ignore_below_joints=12)
    assert [p.extras["ignored"] for p in strict.read(11).people] == [False, True, True]


def test_bad_records_name_the_file_annotation_and_field(coco_root):
    reader = datasets.get_reader("coco", input=coco_root, split="val")
    file = "person_keypoints_val2017.json"
    for key, message in (
            (5, f"{file}: annotation id 501 (annotations[4]): field 'keypoints' has 48 values, expected 51"),
            (7, f"{file}: annotation id 701 (annotations[5]): field 'bbox' [1.0, 2.0, -3.0, 4.0] is not"),
            (13, f"{file}: annotation id 1301 (annotations[8]): field 'keypoints' gives left_shoulder the "
                 "visibility 3, expected 0, 1 or 2"),
            (("annotation", 9), f"{file}: annotation id 9901 (annotations[9]): field 'image_id' 999 names no "
                                "image"),
            (404, f"{file}: no image with id 404")):
        with pytest.raises(RecordError) as info:
            reader.read(key)
        assert info.value.reason.startswith(message), info.value.reason
        assert info.value.key == reader.key_name(key)


def test_malformed_entries_and_files(tmp_path):
    data, _ = coco_fixture()
    data["images"].append(_image_entry(11, 60, 80))                       # a second image 11
    data["images"].append({"file_name": "x.jpg", "height": 1, "width": 1})  # no id
    data["images"].append(dict(_image_entry(30, 10, 10), height=0))
    data["annotations"] += [_annotation(3001, 30, _keypoints(PERSON_A, V_A)),
                            dict(_annotation(3002, 9, _keypoints(PERSON_A, V_A)), iscrowd=2),
                            {k: v for k, v in _annotation(3003, 20, _keypoints(PERSON_A, V_A)).items()
                             if k != "keypoints"}]
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(data))
    reader = datasets.get_reader("coco", annotation_file=str(path))
    keys = reader.list_items()
    assert keys == [5, 7, 9, 11, 12, 13, 20, 30, ("annotation", 9), ("image", 8)]
    reasons = {}
    for key in keys:
        try:
            reader.read(key)
        except RecordError as e:
            reasons[key] = e.reason
    assert reasons[11] == "custom.json: images has more than one entry with id 11"
    assert reasons[("image", 8)] == "custom.json: images[8] has no integer field 'id'"
    assert reasons[30].startswith("custom.json: images[9] (id 30): fields 'height', 'width' must be positive")
    assert reasons[9] == "custom.json: annotation id 3002 (annotations[13]): field 'iscrowd' is 2, expected 0 or 1"
    assert reasons[20] == "custom.json: annotation id 3003 (annotations[14]): has no field 'keypoints'"
    assert 12 not in reasons  # the reader does not look for image files: the job does
    # Images beside the file unless image_dir says otherwise.
    assert reader.read(12).image_path == str(tmp_path / "000000000012.jpg")
    other = datasets.get_reader("coco", annotation_file=str(path), image_dir="/elsewhere", split="train")
    assert other.read(12).image_path == "/elsewhere/000000000012.jpg"
    assert other.read(12).metadata["split"] == "train"

    for content, message in (("{", "custom2.json: not valid JSON"), ("[]", "custom2.json: expected a JSON object"),
                             ('{"images": []}', "custom2.json: field 'annotations' is missing or not a list"),
                             ('{"images": [], "annotations": [], "categories": [{"id": 3, "name": "cat"}]}',
                              "no category named 'person'")):
        (tmp_path / "custom2.json").write_text(content)
        with pytest.raises(ValueError, match=message):
            datasets.get_reader("coco", annotation_file=str(tmp_path / "custom2.json")).list_items()
    with pytest.raises(FileNotFoundError, match="nowhere.json does not exist"):
        datasets.get_reader("coco", annotation_file=str(tmp_path / "nowhere.json")).list_items()


@pytest.mark.parametrize("options,message", [
    ({}, "needs --input=ROOT with --split"),
    ({"input": "r"}, "--input needs --split"),
    ({"input": "r", "split": "test"}, "--split must be one of train, val"),
    ({"input": "r", "split": "val", "annotation_file": "a.json"}, "not both"),
    ({"input": "r", "split": "val", "image_dir": "d"}, "image_dir goes with annotation_file"),
    ({"annotation_file": "a.json", "ignore_below_joints": 14}, "ignore_below_joints must be an integer in"),
    ({"annotation_file": "a.json", "keypoint_offset": float("nan")}, "keypoint_offset must be finite"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        datasets.get_reader("coco", **options)


def test_the_reader_pickles_small_and_parses_once_per_process(coco_root):
    reader = datasets.get_reader("coco", input=coco_root, split="val")
    reader.list_items()
    blob = pickle.dumps(reader)
    assert len(blob) < 1000
    copy = pickle.loads(blob)
    assert copy._cache == {}
    assert copy.index() is reader.index()  # the module-level cache: one parse per process
    assert reader.describe() == {"input": coco_root, "split": "val", "annotation_file": None, "image_dir": None,
                                 "keypoint_offset": 0.5, "ignore_below_joints": 4, "include_empty": False,
                                 "keep_empty": False, "images_without_people": 2}


# ----------------------------------------------------------------------------- the job on the fixture


def _read_shards(paths):
    import tensorflow as tf
    out = {}
    for path in paths:
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            example = features.decode_example_numpy(raw)
            out[example[features.IMAGE_ID].decode()] = example
    return out


def _lcr_expected(points, v):
    """LCR-13 (J, 2) pixels and annotated mask of a COCO person, mapped by joint name here."""
    xy = np.array(points, np.float64) + 0.5
    ok = np.array(v) > 0
    out = np.full((LCR.num_joints, 2), np.nan)
    mask = np.zeros(LCR.num_joints, bool)
    for j, name in enumerate(LCR.joint_names):
        if name in SAME_NAME:
            i = COCO_NAMES.index(name)
            out[j], mask[j] = (xy[i] if ok[i] else np.nan), ok[i]
    ears = [COCO_NAMES.index("left_ear"), COCO_NAMES.index("right_ear")]
    out[LCR.index("head")], mask[LCR.index("head")] = xy[ears].mean(axis=0), True
    return out, mask


def test_the_job_writes_people_and_ignore_regions_and_reports_the_rest(coco_root, job_assets, tmp_path, capsys):
    prefix = str(tmp_path / "out" / "coco")
    status = bt.main(["build_tfrecords", "--dataset=coco", f"--input={coco_root}", "--split=val",
                      f"--anchors={job_assets['anchors']}", f"--output={prefix}", "--num_shards=1",
                      "--body_model_poses=600", "--pseudo_gt_views=2", "--runner=FnApiRunner",
                      "--direct_running_mode=in_memory", "--direct_num_workers=1"])
    assert status == 0, capsys.readouterr().err
    examples = _read_shards(records_lib.shard_paths(prefix, 1))
    assert sorted(examples) == ["000000000011"]
    ex = examples["000000000011"]
    assert ex[features.NUM_PEOPLE] == 2 and ex[features.IMAGE_SOURCE] == b"coco"
    assert (ex[features.IMAGE_HEIGHT], ex[features.IMAGE_WIDTH]) == (60, 80)
    with open(os.path.join(coco_root, "val2017", "000000000011.jpg"), "rb") as f:
        assert ex[features.IMAGE_ENCODED] == f.read()
    for p, (points, v) in enumerate(((PERSON_A, V_A), (PERSON_B, V_B))):
        expected, mask = _lcr_expected(points, v)
        np.testing.assert_array_equal(ex[features.ANNOTATED][p], mask)
        np.testing.assert_array_equal(ex[features.COMPLETED][p], ~mask)
        np.testing.assert_allclose(ex[features.POSE2D][p][mask], expected[mask], atol=1e-4)
        assert np.all(np.isfinite(ex[features.POSE2D][p]))
        assert ex[features.POSE3D_SOURCE][p] == features.POSE3D_PSEUDO_GT
    # B's missing joints: left wrist and both ankles; its knee below the image is kept as annotated.
    assert [LCR.joint_names[j] for j in np.flatnonzero(ex[features.COMPLETED][1])] == [
        "right_ankle", "left_ankle", "left_wrist"]
    np.testing.assert_allclose(ex[features.POSE2D][1][LCR.index("right_knee")], [56.5, 62.5])
    # Seen = annotated and v = 2; A's right ankle and right elbow are v = 1, B's left knee too.
    hidden_a = {LCR.index("right_ankle"), LCR.index("right_elbow")}
    assert set(np.flatnonzero(~ex[features.VISIBLE][0].astype(bool))) == hidden_a
    assert not ex[features.VISIBLE][1][LCR.index("left_knee")]
    # The crowd clipped to the 80x60 image, then the box of the person without keypoints.
    np.testing.assert_allclose(ex[features.IGNORE_BOXES], [[50, 30, 80, 60], [2.25, 40, 8.75, 52]])
    assert ex[features.NUM_IGNORE] == 2

    with open(records_lib.rejected_path(prefix)) as f:
        lines = [json.loads(line) for line in f]
    got = [(line["key"], line["kind"], line.get("person_id"), line["code"]) for line in lines]
    assert got == [("000000000005", "image", None, "read_error"), ("000000000007", "image", None, "read_error"),
                   ("000000000011", "person", "103", "too_few_joints"),
                   ("000000000012", "image", None, "image_missing"), ("000000000013", "image", None, "read_error"),
                   ("annotations[9]", "image", None, "read_error")]
    assert "annotation id 501" in lines[0]["reason"] and "'keypoints' has 48 values" in lines[0]["reason"]
    assert "000000000012.jpg does not exist" in lines[3]["reason"]
    summary = json.load(open(records_lib.summary_path(prefix)))
    assert summary["images"]["listed"] == 6 and summary["images"]["written"] == 1
    assert summary["images"]["rejected_by_reason"] == {"image_missing": 1, "read_error": 4}
    assert summary["persons"]["read"] == 4 and summary["persons"]["written"] == 2
    assert summary["persons"]["rejected_by_reason"] == {"too_few_joints": 1}
    assert summary["ignore_regions"] == {"read": 3, "written": 2, "dropped_empty_after_clipping": 0,
                                         "dropped_with_rejected_images": 1}
    by_joint = summary["completed_joints"]["by_joint"]
    assert {k: v for k, v in by_joint.items() if v} == {"right_ankle": 1, "left_ankle": 1, "left_wrist": 1}
    assert summary["parameters"]["reader_options"]["images_without_people"] == 2
    assert summary["check"]["images_accounted"] and summary["check"]["persons_accounted"]


def test_the_job_writes_negatives_with_keep_empty(coco_root, job_assets, tmp_path, capsys):
    prefix = str(tmp_path / "out" / "coco")
    status = bt.main(["build_tfrecords", "--dataset=coco", f"--input={coco_root}", "--split=val",
                      "--reader_option=keep_empty=true", f"--anchors={job_assets['anchors']}",
                      f"--output={prefix}", "--num_shards=1", "--body_model_poses=600", "--pseudo_gt_views=2",
                      "--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"])
    out = capsys.readouterr()
    assert status == 0, out.err
    assert "3 of 8 images written" in out.out and "(2 people, 2 images without people)" in out.out
    examples = _read_shards(records_lib.shard_paths(prefix, 1))
    assert sorted(examples) == ["000000000009", "000000000011", "000000000020"]
    assert examples["000000000011"][features.NUM_PEOPLE] == 2
    for image_id, boxes in (("000000000009", np.zeros((0, 4))), ("000000000020", [[0, 0, 10, 10]])):
        ex = examples[image_id]
        assert ex[features.NUM_PEOPLE] == 0 and ex[features.POSE2D].shape == (0, LCR.num_joints, 2)
        assert (ex[features.IMAGE_HEIGHT], ex[features.IMAGE_WIDTH]) == (40, 40)
        np.testing.assert_array_equal(ex[features.IGNORE_BOXES], boxes)
        with open(os.path.join(coco_root, "val2017", f"{image_id}.jpg"), "rb") as f:
            assert ex[features.IMAGE_ENCODED] == f.read()
    summary = json.load(open(records_lib.summary_path(prefix)))
    # The same rejections as without keep_empty: only the two images without people are added, as written.
    assert summary["images"]["listed"] == 8 and summary["images"]["written"] == 3
    assert summary["images"]["written_empty"] == 2
    assert summary["images"]["rejected_by_reason"] == {"image_missing": 1, "read_error": 4}
    assert summary["ignore_regions"]["written"] == 3
    assert summary["parameters"]["reader_options"]["keep_empty"] is True
    assert summary["check"]["images_accounted"] and summary["check"]["persons_accounted"]


# ----------------------------------------------------------------------------- the real excerpt


@pytest.fixture(scope="module")
def real_coco(shared_data):
    path = os.path.join(shared_data, "annotations", "coco", "test_coco.json")
    if not os.path.exists(path):
        pytest.skip(f"needs the COCO excerpt {path}")
    with open(path) as f:
        return path, json.load(f)


def test_real_excerpt_matches_its_json(real_coco):
    path, data = real_coco
    reader = datasets.get_reader("coco", annotation_file=path)
    keys = reader.list_items()
    assert keys == sorted(image["id"] for image in data["images"]) == [785, 40083, 196141, 197388]
    images = {image["id"]: image for image in data["images"]}
    people = {}
    for key in keys:
        record = reader.read(key)
        assert os.path.exists(record.image_path)
        assert (record.height, record.width) == (images[key]["height"], images[key]["width"])
        for person in record.people:
            people[int(person.person_id)] = (key, person, record)
    annotations = [a for a in data["annotations"] if not a["iscrowd"]]
    assert len(people) == len(annotations) == 14
    sparse = 0
    for a in annotations:
        key, person, record = people[a["id"]]
        assert key == a["image_id"]
        kp = np.array(a["keypoints"], np.float64).reshape(17, 3)
        np.testing.assert_array_equal(person.annotated, kp[:, 2] > 0)
        np.testing.assert_array_equal(person.visible, kp[:, 2] == 2)
        assert person.annotated.sum() == a["num_keypoints"] == person.extras["num_keypoints"]
        np.testing.assert_array_equal(person.pose2d[person.annotated], kp[kp[:, 2] > 0, :2] + 0.5)
        assert np.isnan(person.pose2d[~person.annotated]).all()
        x, y, w, h = a["bbox"]
        np.testing.assert_allclose(person.extras["bbox"], [x, y, x + w, y + h])
        if a["num_keypoints"] == 0:  # the excerpt's two people without keypoints become ignore regions
            sparse += 1
            assert any(np.allclose(box, [x, y, x + w, y + h], atol=1e-4) for box in record.ignore_regions)
    assert sparse == 2
    assert sum(reader.read(k).ignore_regions.shape[0] for k in keys) == 2


def test_real_excerpt_through_the_job(real_coco, job_assets, tmp_path):
    path, data = real_coco
    reader = datasets.get_reader("coco", annotation_file=path)
    prefix = str(tmp_path / "real")
    summary = bt.run(reader, prefix, job_assets["anchors"], ["--runner=FnApiRunner"], num_shards=1,
                     body_model_poses=600, pseudo_gt_views=2)
    assert summary["images"]["written"] == 4 and summary["images"]["rejected"] == 0
    assert summary["persons"]["read"] == 14 and summary["persons"]["written"] == 12
    assert summary["persons"]["rejected_by_reason"] == {"too_few_joints": 2}
    assert summary["ignore_regions"]["written"] == 2
    examples = _read_shards(records_lib.shard_paths(prefix, 1))
    assert sorted(examples) == ["000000000785", "000000040083", "000000196141", "000000197388"]
    ex = examples["000000000785"]
    kp = np.array(data["annotations"][0]["keypoints"], np.float64).reshape(17, 3)
    assert data["annotations"][0]["image_id"] == 785
    np.testing.assert_allclose(ex[features.POSE2D][0][LCR.index("left_knee")], kp[COCO_NAMES.index("left_knee"), :2]
                               + 0.5, atol=1e-4)
