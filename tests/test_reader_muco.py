"""The MuCo-3DHP reader (lcr_tf.datasets.muco) on small trees in the release's layout (MuCo-3DHP.json and
JPEG composites, written by tests/muco_format.py): values checked by hand, the pixel offset on a known
pixel, visibility, every kind of malformed entry and file, the splits, and one end-to-end TFRecord build."""

import json
import os
import pickle

import numpy as np
import pytest
from muco_format import MucoImage, muco21_from, project, write_annotation_file, write_muco_tree

from beam_jobs import build_tfrecords as bt
from lcr_tf import datasets
from lcr_tf.contracts import features
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets import muco
from lcr_tf.datasets import records as records_lib
from lcr_tf.datasets.base import RecordError
from lcr_tf.poses import body_model

MU = skeleton_lib.MUCO21
LCR = skeleton_lib.LCR13
W, H = 256, 192
F, C = (300.0, 310.0), (130.0, 95.0)


def _poses(n, seed, offsets_m):
    """(n, 21, 3) millimetre camera poses: body-model people moved to ``offsets_m`` ((n, 3) metres)."""
    lcr = body_model.sample_poses(n, seed=seed).poses3d.astype(np.float64)
    return (muco21_from(lcr) + np.asarray(offsets_m, np.float64)[:, None, :]) * 1000.0


def _image(poses, **kwargs):
    return MucoImage(poses, **{"f": F, "c": C, "width": W, "height": H, **kwargs})


def _one(tmp_path, **kwargs):
    """A tree of one image with two people, and its reader."""
    tree = write_muco_tree(tmp_path, [_image(_poses(2, 5, [[-0.6, 0, 5], [0.6, 0, 5]]), **kwargs)])
    return tree, muco.MucoReader(tree.root)


def _rewrite(tree, edit):
    edit(tree.data)
    write_annotation_file(tree.annotation_path, tree.data)
    muco._INDEXES.clear()  # the same path may be rewritten within one mtime tick
    return muco.MucoReader(tree.root)


# --------------------------------------------------------------------------- skeleton and fixture


def test_muco21_is_the_release_order_with_its_flip_pairs_and_bones():
    release = ("Head_top", "Thorax", "R_Shoulder", "R_Elbow", "R_Wrist", "L_Shoulder", "L_Elbow", "L_Wrist",
               "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Pelvis", "Spine", "Head", "R_Hand",
               "L_Hand", "R_Toe", "L_Toe")
    words = {"R": "right", "L": "left", "Head_top": "head_top", "Thorax": "neck"}
    expected = [words.get(n) or (f"{words[n[0]]}_{n[2:].lower()}" if n[1] == "_" else n.lower()) for n in release]
    assert list(MU.joint_names) == expected and MU.joint_names[:17] == skeleton_lib.MUPOTS17.joint_names
    pairs = {(2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (17, 18), (19, 20)}
    assert {(j, int(i)) for j, i in enumerate(MU.flip_permutation) if j < i} == pairs
    limbs = {(0, 16), (16, 1), (1, 15), (15, 14), (14, 8), (14, 11), (8, 9), (9, 10), (10, 19), (11, 12),
             (12, 13), (13, 20), (1, 2), (2, 3), (3, 4), (4, 17), (1, 5), (5, 6), (6, 7), (7, 18)}
    assert {frozenset(b) for b in limbs} <= {frozenset(b) for b in MU.bones}
    pose = np.arange(21 * 3, dtype=float).reshape(21, 3)
    lcr, mask = skeleton_lib.convert(pose, MU, LCR)
    assert mask.all()
    np.testing.assert_array_equal(lcr[LCR.index("head")], pose[MU.index("head")])       # copied, not derived


def test_the_fixture_writes_the_release_format(tmp_path):
    poses = _poses(2, 1, [[0, 0, 5], [1, 0, 6]])
    tree = write_muco_tree(tmp_path, [poses, _image(poses[:1], file_name="unaugmented_set/a.jpg")],
                           first_image_id=7, first_annotation_id=100)
    data = json.load(open(tree.annotation_path))
    assert tree.annotation_path == os.path.join(str(tmp_path), "MuCo-3DHP.json")
    assert [i["id"] for i in data["images"]] == [7, 8] and tree.annotation_ids == {7: [100, 101], 8: [102]}
    assert data["images"][0] == {"id": 7, "file_name": "augmented_set/000007.jpg", "width": 256, "height": 192,
                                 "f": [300.0, 300.0], "c": [128.0, 96.0]}
    assert data["images"][1]["f"] == list(F) and data["images"][1]["c"] == list(C)
    ann = data["annotations"][2]
    np.testing.assert_allclose(ann["keypoints_cam"], poses[0])
    np.testing.assert_allclose(ann["keypoints_img"], project(poses[0], F, C))
    kp = np.asarray(ann["keypoints_img"])
    np.testing.assert_allclose(ann["bbox"], [*kp.min(0), *(kp.max(0) - kp.min(0))])
    assert os.path.isfile(tree.image_paths[8]) and tree.image_paths[8].endswith("unaugmented_set/a.jpg")


# --------------------------------------------------------------------------- values


def test_values_by_hand(tmp_path):
    """One person whose joints are placed by hand: metres, centring, 2D, intrinsics and extras."""
    cam = np.zeros((21, 3))
    cam[:, 2] = 4000.0
    cam[MU.index("left_hip")] = [600, 400, 4000]
    cam[MU.index("right_hip")] = [200, 400, 4000]
    cam[MU.index("left_shoulder")] = [700, -200, 3800]
    cam[MU.index("right_shoulder")] = [100, -200, 4200]
    cam[MU.index("pelvis")] = [400, 400, 4000]
    cam[MU.index("head")] = [400, -500, 4000]
    cam[MU.index("right_ankle")] = [-1200, 1000, 3000]    # x = 300 * -0.4 + 130 = 10, y = 310 / 3 + 95
    tree = write_muco_tree(tmp_path, [_image(cam[None])])
    record = muco.MucoReader(tree.root).read(0)
    person = record.people[0]
    assert record.image_id == "000000" and record.skeleton == "muco21" and record.dataset == "muco"
    assert (record.width, record.height) == (W, H)
    assert record.image_path == os.path.join(tree.root, "augmented_set", "000000.jpg")
    np.testing.assert_allclose(record.intrinsics, [300, 310, 130, 95])
    centre = np.array([0.4, 0.1, 4.0])                       # mean of the hips and shoulders, metres
    np.testing.assert_allclose(person.extras["centre_camera"], centre, atol=1e-6)
    np.testing.assert_allclose(person.extras["pelvis_camera"], [0.4, 0.4, 4.0], atol=1e-6)
    np.testing.assert_allclose(person.pose3d[MU.index("head")], [0.0, -0.6, 0.0], atol=1e-6)
    np.testing.assert_allclose(person.pose3d, cam / 1000.0 - centre, atol=1e-6)
    np.testing.assert_allclose(person.pose2d[MU.index("right_ankle")], [10.0, 310 / 3 + 95], atol=1e-4)
    np.testing.assert_allclose(person.pose2d[MU.index("head")], [160.0, 56.25], atol=1e-4)
    assert person.person_id == "0" and person.extras["annotation_id"] == 0
    assert person.extras["reprojection_px"] < 1e-3 and person.annotated.all()
    assert record.metadata == {"muco_image_id": 0, "file_name": "augmented_set/000000.jpg",
                               "image_set": "augmented_set", "split": "train",
                               "reprojection_px": person.extras["reprojection_px"]}
    kp = project(cam, F, C)
    np.testing.assert_allclose(person.extras["bbox"], [*kp.min(0), *kp.max(0)], atol=1e-3)


def test_the_pixel_offset_on_a_known_pixel(tmp_path):
    """A joint projecting to (160, 56.25) comes out there with the default offset (0: keypoints_img is a
    projection, already continuous); an offset moves the 2D, the box and cx, cy together."""
    assert muco.DEFAULT_KEYPOINT_OFFSET == 0.0
    cam = _poses(1, 2, [[0, 0, 5]])[0]
    cam[MU.index("head")] = [400, -500, 4000]
    tree = write_muco_tree(tmp_path, [_image(cam[None])])
    head = MU.index("head")
    base = muco.MucoReader(tree.root).read(0).people[0]
    np.testing.assert_allclose(base.pose2d[head], [160.0, 56.25], atol=1e-4)
    shifted = muco.MucoReader(tree.root, keypoint_offset=0.5).read(0)
    np.testing.assert_allclose(shifted.people[0].pose2d[head], [160.5, 56.75], atol=1e-4)
    np.testing.assert_allclose(shifted.intrinsics, [300, 310, 130.5, 95.5])
    np.testing.assert_allclose(shifted.people[0].extras["bbox"], np.asarray(base.extras["bbox"]) + 0.5, atol=1e-4)
    # The 2D stays the projection of the 3D through the shifted intrinsics.
    k = shifted.intrinsics
    absolute = shifted.people[0].pose3d + shifted.people[0].extras["centre_camera"]
    np.testing.assert_allclose(project(absolute, k[:2], k[2:]), shifted.people[0].pose2d, atol=1e-3)


def test_visibility_is_inside_the_image(tmp_path):
    poses = _poses(2, 3, [[0, 0, 5], [2.3, 0, 5]])            # the second stands across the right edge
    tree = write_muco_tree(tmp_path, [_image(poses)])
    record = muco.MucoReader(tree.root).read(0)
    kp = project(poses, F, C)
    inside = np.all((kp >= 0) & (kp < [W, H]), axis=-1)
    assert inside[0].all() and 0 < inside[1].sum() < 21
    for person, expected in zip(record.people, inside):
        np.testing.assert_array_equal(person.visible, expected)
        assert person.annotated.all()                           # outside the image, still annotated


# --------------------------------------------------------------------------- bad input


def _field(index, name, value):
    def edit(data):
        if value is _DELETE:
            del data["annotations"][index][name]
        else:
            data["annotations"][index][name] = value(data["annotations"][index][name]) if callable(value) else value
    return edit


_DELETE = object()
_BAD_ANNOTATIONS = {
    "no_keypoints_cam": (_field(1, "keypoints_cam", _DELETE), "annotation id 1 (annotations[1]): has no field "
                                                              "'keypoints_cam'"),
    "no_keypoints_img": (_field(0, "keypoints_img", _DELETE), "annotation id 0 (annotations[0]): has no field "
                                                              "'keypoints_img'"),
    "20_joints": (_field(1, "keypoints_cam", lambda v: v[:20]), "field 'keypoints_cam' has shape (20, 3), "
                                                                "expected 21 x 3 numbers"),
    "2d_as_3d": (_field(1, "keypoints_img", lambda v: [p + [1.0] for p in v]), "field 'keypoints_img' has "
                                                                               "shape (21, 3)"),
    "ragged": (_field(1, "keypoints_cam", lambda v: v[:20] + [[1.0, 2.0]]), "'keypoints_cam' has ragged rows"),
    "text": (_field(1, "keypoints_img", lambda v: v[:20] + [["1", "2"]]), "'keypoints_img' holds a value that "
                                                                         "is not a number"),
    "nan": (_field(1, "keypoints_cam", lambda v: v[:3] + [[float("nan")] * 3] + v[4:]),
            "annotation id 1 (annotations[1]): field 'keypoints_cam' holds NaN or inf (joint right_elbow)"),
    "inf_2d": (_field(0, "keypoints_img", lambda v: [[float("inf"), 1.0]] + v[1:]),
               "field 'keypoints_img' holds NaN or inf (joint head_top)"),
    "behind": (_field(1, "keypoints_cam", lambda v: v[:5] + [[1.0, 2.0, -3.0]] + v[6:]),
               "gives left_shoulder the depth Z = -3 mm, expected Z > 0"),
    "bbox": (_field(0, "bbox", [1, 2, -3, 4]), "field 'bbox' is [1, 2, -3, 4], expected 4 finite numbers"),
    "no_id": (_field(1, "id", _DELETE), "annotations[1] (image id 0): field 'id' is missing or not an integer"),
    "same_id": (_field(1, "id", 0), "annotation id 0 is used more than once (annotations[0], annotations[1])"),
    "2d_off": (_field(1, "keypoints_img", lambda v: (np.asarray(v) + [30.0, 40.0]).tolist()),
               "annotation id 1 (annotations[1]): 'keypoints_img' is 50 px from the projection of 'keypoints_cam'"),
    "metres": (lambda d: [a.update(keypoints_cam=(np.asarray(a["keypoints_cam"]) / 1000).tolist())
                          for a in d["annotations"]], "keypoints_cam / 1000: the median body extent is"),
}


@pytest.mark.parametrize("case", sorted(_BAD_ANNOTATIONS))
def test_a_bad_annotation_rejects_its_image_naming_the_file_id_and_field(case, tmp_path):
    tree, reader = _one(tmp_path)
    assert len(reader.read(0).people) == 2
    edit, message = _BAD_ANNOTATIONS[case]
    reader = _rewrite(tree, edit)
    assert reader.list_items() == [0]                           # still listed: reported, not dropped
    with pytest.raises(RecordError) as info:
        reader.read(0)
    assert info.value.reason.startswith("MuCo-3DHP.json: ") and message in info.value.reason
    assert reader.key_name(0) == "000000" and info.value.key == "000000"


def test_the_reprojection_tolerance_is_an_option(tmp_path):
    tree, _ = _one(tmp_path)
    reader = _rewrite(tree, _field(1, "keypoints_img", lambda v: (np.asarray(v) + [3.0, 4.0]).tolist()))
    record = reader.read(0)                                     # 5 px: within the default tolerance
    assert record.people[1].extras["reprojection_px"] == pytest.approx(5.0, abs=1e-3)
    assert record.metadata["reprojection_px"] == pytest.approx(5.0, abs=1e-3)
    with pytest.raises(RecordError, match=r"'keypoints_img' is 5 px from .* \(at most 4 px\)"):
        muco.MucoReader(tree.root, max_reprojection_px=4).read(0)


def test_bad_image_entries_and_strays(tmp_path):
    poses = _poses(9, 4, [[0, 0, 5]] * 9)
    specs = [_image(poses[i:i + 1]) for i in range(6)] + [_image(poses[6:7], image_id=20),
                                                          _image(poses[7:8], image_id=20), _image(np.zeros(0))]
    tree = write_muco_tree(tmp_path, specs)

    def edit(data):
        images = data["images"]
        del images[0]["f"]
        images[1]["c"] = [1.0, float("nan")]
        images[2]["width"] = 0
        images[3]["file_name"] = ""
        del images[4]["id"]
        images[5]["f"] = [300.0, -1.0]
        data["annotations"].append(dict(data["annotations"][0], id=99, image_id=12345))
        data["annotations"].append("not an object")
    reader = _rewrite(tree, edit)
    keys = reader.list_items()
    # Image 4 lost its id: its entry and its annotation (which now names no image) are strays.
    assert keys == [0, 1, 2, 3, 5, 6, 20, ("annotation", 4), ("annotation", 8), ("annotation", 9),
                    ("image", 4)]
    reasons = {}
    for key in keys:
        with pytest.raises(RecordError) as info:
            reader.read(key)
        reasons[reader.key_name(key)] = info.value.reason
    assert reasons == {
        "000000": "MuCo-3DHP.json: images[0] (id 0): field 'f' is None, expected 2 positive numbers [fx, fy] "
                  "(pixels)",
        "000001": "MuCo-3DHP.json: images[1] (id 1): field 'c' is [1.0, nan], expected 2 finite numbers [cx, cy] "
                  "(pixels)",
        "000002": "MuCo-3DHP.json: images[2] (id 2): fields 'width', 'height' must be positive integers, got 0, "
                  "192",
        "000003": "MuCo-3DHP.json: images[3] (id 3): field 'file_name' is missing or not a string",
        "000005": "MuCo-3DHP.json: images[5] (id 5): field 'f' is [300.0, -1.0], expected 2 positive numbers "
                  "[fx, fy] (pixels)",
        "000006": "MuCo-3DHP.json: image id 6 (augmented_set/000006.jpg) has no annotation",
        "000020": "MuCo-3DHP.json: images has more than one entry with id 20",
        "annotations[4]": "MuCo-3DHP.json: annotation id 4 (annotations[4]): field 'image_id' 4 names no image of "
                          "'images'",
        "annotations[8]": "MuCo-3DHP.json: annotation id 99 (annotations[8]): field 'image_id' 12345 names no "
                          "image of 'images'",
        "annotations[9]": "MuCo-3DHP.json: annotations[9] is not an object",
        "images[4]": "MuCo-3DHP.json: images[4] has no integer field 'id'",
    }
    with pytest.raises(RecordError, match="no image with id 77"):
        reader.read(77)


@pytest.mark.parametrize("content, message", [
    (b"{\"images\": [", "MuCo-3DHP.json: not valid JSON"),
    (b"[1, 2]", "MuCo-3DHP.json: expected a JSON object with 'images' and 'annotations', got list"),
    (b"{\"images\": []}", "MuCo-3DHP.json: field 'annotations' is missing or not a list"),
    (b"{\"images\": {}, \"annotations\": []}", "MuCo-3DHP.json: field 'images' is missing or not a list"),
])
def test_a_bad_annotation_file_stops_the_listing(content, message, tmp_path):
    (tmp_path / "MuCo-3DHP.json").write_bytes(content)
    with pytest.raises(ValueError) as info:
        muco.MucoReader(str(tmp_path)).list_items()
    assert str(info.value).startswith(message)


def test_a_missing_annotation_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MuCo-3DHP annotation file .*MuCo-3DHP\.json does not exist"):
        muco.MucoReader(str(tmp_path)).list_items()


# --------------------------------------------------------------------------- keys, splits, options


def test_splits_are_a_deterministic_hash_of_the_image_id(tmp_path):
    ids = np.arange(4000)
    u = muco.unit_hash(ids)
    assert np.all((u >= 0) & (u < 1)) and abs((u < 0.25).mean() - 0.25) < 0.03
    np.testing.assert_array_equal(muco.unit_hash(ids[::-1]), u[::-1])    # each id alone decides
    poses = _poses(60, 0, [[0, 0, 5]] * 60)
    specs = [_image(poses[i:i + 1], image_id=i, file_name=f"{'un' * (i % 3 == 0)}augmented_set/{i}.jpg",
                    write_image=False) for i in range(60)]
    tree = write_muco_tree(tmp_path / "a", specs)
    reader = muco.MucoReader(tree.root, split="val", val_fraction=0.25)
    val = reader.list_items()
    rest = muco.MucoReader(tree.root, split="train_minus_val", val_fraction=0.25).list_items()
    assert muco.MucoReader(tree.root).list_items() == list(range(60))
    assert sorted(val + rest) == list(range(60)) and not set(val) & set(rest) and 5 <= len(val) <= 25
    assert val == [i for i in range(60) if u[i] < 0.25]
    shuffled = write_muco_tree(tmp_path / "b", specs[::-1])       # another order, the same held-out images
    assert muco.MucoReader(shuffled.root, split="val", val_fraction=0.25).list_items() == val
    unaug = muco.MucoReader(tree.root, image_sets="unaugmented_set/").list_items()
    assert unaug == list(range(0, 60, 3)) and reader.describe()["split"] == "val"
    both = muco.MucoReader(tree.root, image_sets="unaugmented_set, augmented_set").list_items()
    assert both == list(range(60))


@pytest.mark.parametrize("options, message", [
    ({}, "needs --input=ROOT"),
    ({"input": "r", "annotation_file": "a.json"}, "not both"),
    ({"input": "r", "image_dir": "d"}, "image_dir goes with annotation_file"),
    ({"input": "r", "split": "test"}, "--split must be one of train, train_minus_val, val"),
    ({"input": "r", "val_fraction": 1.0}, "val_fraction must be in"),
    ({"input": "r", "keypoint_offset": float("nan")}, "keypoint_offset must be finite"),
    ({"input": "r", "max_reprojection_px": 0.0}, "max_reprojection_px must be > 0"),
    ({"input": "r", "image_sets": "augmented_set/x"}, "first-level folders"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        muco.MucoReader(**options)


def test_annotation_file_and_image_dir_options(tmp_path):
    tree, _ = _one(tmp_path / "root")
    moved = tmp_path / "elsewhere" / "muco.json"
    moved.parent.mkdir()
    os.replace(tree.annotation_path, moved)
    record = muco.MucoReader(annotation_file=str(moved), image_dir=tree.root).read(0)
    assert record.image_path == tree.image_paths[0] and len(record.people) == 2
    beside = muco.MucoReader(annotation_file=str(moved)).read(0)
    assert beside.image_path == os.path.join(str(moved.parent), "augmented_set", "000000.jpg")


def test_the_reader_pickles_small_and_parses_once_per_process(tmp_path):
    tree, reader = _one(tmp_path)
    assert datasets.reader_class("muco") is muco.MucoReader
    assert datasets.get_reader("muco", input=tree.root).list_items() == [0]
    reader.read(0)
    assert len(pickle.dumps(reader)) < 1000
    copy = pickle.loads(pickle.dumps(reader))
    assert copy.index() is reader.index()                        # the module-level cache


# --------------------------------------------------------------------------- the TFRecord job


@pytest.fixture(scope="module")
def job_tree(tmp_path_factory):
    """Five images: two good ones (three people, one partly outside), one whose file is missing, one with a
    broken annotation, one without annotations; and an annotation that names no image."""
    root = tmp_path_factory.mktemp("muco_job")
    poses = _poses(6, 7, [[-0.7, 0, 5], [0.7, 0, 5.5], [0, 0, 4.5], [0, 0, 5], [0, 0, 5], [2.1, 0, 5]])
    specs = [_image(poses[:2]), _image(poses[2:3], f=(280.0, 282.0), c=(121.0, 99.0),
                                       file_name="unaugmented_set/000001.jpg"),
             _image(poses[3:4], write_image=False), _image(poses[4:5]), _image(np.zeros(0)), _image(poses[5:6])]
    tree = write_muco_tree(root, specs)
    tree.data["annotations"][4]["keypoints_cam"] = tree.data["annotations"][4]["keypoints_cam"][:20]
    tree.data["annotations"].append(dict(tree.data["annotations"][0], id=50, image_id=404))
    write_annotation_file(tree.annotation_path, tree.data)
    muco._INDEXES.clear()
    return tree, poses


def test_build_tfrecords_end_to_end(job_tree, job_assets, tmp_path):
    import tensorflow as tf
    tree, poses = job_tree
    prefix = str(tmp_path / "out" / "muco")
    status = bt.main(["build_tfrecords", "--dataset=muco", f"--input={tree.root}", "--split=train",
                      f"--anchors={job_assets['anchors']}", f"--poses={job_assets['poses']}", f"--output={prefix}",
                      "--num_shards=1", "--runner=DirectRunner", "--direct_running_mode=in_memory",
                      "--direct_num_workers=1"])
    assert status == 0
    summary = json.load(open(records_lib.summary_path(prefix)))
    assert summary["parameters"]["source_skeleton"] == "muco21"
    assert summary["images"]["listed"] == 7 and summary["images"]["written"] == 3
    assert summary["images"]["rejected_by_reason"] == {"read_error": 3, "image_missing": 1}
    assert summary["persons"]["written"] == 4
    assert summary["persons"]["pose3d_mocap"] == 4 and summary["persons"]["pose3d_pseudo_gt"] == 0
    assert summary["check"]["images_accounted"] and summary["check"]["persons_accounted"]
    rejected = {r["key"]: r for r in map(json.loads, open(records_lib.rejected_path(prefix)))}
    assert set(rejected) == {"000002", "000003", "000004", "annotations[6]"}
    assert rejected["000002"]["code"] == "image_missing" and "augmented_set/000002.jpg" in rejected["000002"]["reason"]
    assert "annotation id 4 (annotations[4]): field 'keypoints_cam' has shape (20, 3)" in rejected["000003"]["reason"]
    assert rejected["000004"]["reason"].endswith("has no annotation")
    assert "'image_id' 404 names no image" in rejected["annotations[6]"]["reason"]
    examples = {}
    for raw in tf.data.TFRecordDataset(records_lib.shard_paths(prefix, 1)).as_numpy_iterator():
        ex = features.decode_example_numpy(raw)
        examples[ex[features.IMAGE_ID].decode()] = ex
    assert sorted(examples) == ["000000", "000001", "000005"]
    for image_id, people, k in (("000000", poses[:2], (*F, *C)), ("000001", poses[2:3], (280, 282, 121, 99)),
                                ("000005", poses[5:6], (*F, *C))):
        ex = examples[image_id]
        lcr3d, _ = skeleton_lib.convert(people / 1000.0, MU, LCR)
        lcr2d, _ = skeleton_lib.convert(project(people, k[:2], k[2:]), MU, LCR)
        np.testing.assert_allclose(ex[features.POSE3D], skeleton_lib.centre_poses(lcr3d), atol=1e-4)
        np.testing.assert_allclose(ex[features.POSE2D], lcr2d, atol=1e-3)
        np.testing.assert_allclose(ex[features.INTRINSICS], k, rtol=1e-6)
        np.testing.assert_array_equal(ex[features.POSE3D_SOURCE], features.POSE3D_MOCAP)
        assert ex[features.ANNOTATED].all() and not ex[features.COMPLETED].any()
        inside = np.all((lcr2d >= 0) & (lcr2d < [W, H]), axis=-1)
        np.testing.assert_array_equal(ex[features.VISIBLE], inside)
    assert not examples["000005"][features.VISIBLE].all()            # the person across the right edge
