"""The MPII Human Pose reader on fixtures written with savemat in the release's own nested layout (RELEASE
struct, annolist / annorect / annopoints.point struct arrays, single_person cells, squeezed one-element
arrays, missing fields, string flags): parsed values against the values written, bad records named by
file and field, the video-grouped validation split and its JSON file, and the TFRecord job end to end."""

import json
import os

import cv2
import numpy as np
import pytest
import scipy.io

from beam_jobs import build_tfrecords as bt
from lcr_tf import datasets
from lcr_tf.contracts import features
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets import mpii, mpii_annotations
from lcr_tf.datasets import records as records_lib
from lcr_tf.datasets.base import RecordError

MPII16 = skeleton_lib.MPII16
LCR = skeleton_lib.LCR13
# A standing person facing the camera, MPII order (ids 0..15), package pixels (MATLAB's are these + 0.5:
# MATLAB puts pixel i's centre at i + 1, the package at i + 0.5).
TEMPLATE = np.array([[40, 110], [42, 88], [44, 66], [56, 66], [58, 88], [60, 110], [50, 66], [50, 35],
                     [50, 30], [50, 14], [34, 66], [36, 50], [40, 35], [60, 35], [64, 50], [66, 66]], np.float64)
H, W = 120, 100
EMPTY = np.zeros((0, 0))


# ----------------------------------------------------------------------------- writing the native layout


def _structs(rows):
    """A 1 x n MATLAB struct array of dicts; a field missing from a row is an empty array."""
    names = []
    for row in rows:
        names += [k for k in row if k not in names]
    out = np.empty((1, len(rows)), dtype=[(n, object) for n in names])
    for i, row in enumerate(rows):
        for n in names:
            out[n][0, i] = row.get(n, EMPTY)
    return out


def _cell(values):
    out = np.empty((len(values), 1), dtype=object)
    for i, v in enumerate(values):
        out[i, 0] = v
    return out


def _points(pose, ids=None, visible=None, drop=()):
    """Point structs (MATLAB coordinates) of joints ``ids``; ``visible[k]`` is written as given (1, '0', [])
    or the field is left out when ``visible`` is None; ``drop``: fields to leave out."""
    ids = range(16) if ids is None else ids
    rows = []
    for k, j in enumerate(ids):
        row = {"id": j, "x": float(pose[j, 0] + 0.5), "y": float(pose[j, 1] + 0.5)}
        if visible is not None:
            row["is_visible"] = visible[k]
        rows.append({n: v for n, v in row.items() if n not in drop})
    return _structs(rows)


def _rect(points=None, head=None, objpos=None, scale=None):
    rect = {}
    if head is not None:
        rect.update(x1=float(head[0]), y1=float(head[1]), x2=float(head[2]), y2=float(head[3]))
    if scale is not None:
        rect["scale"] = float(scale)
    if objpos is not None:
        rect["objpos"] = {"x": float(objpos[0]), "y": float(objpos[1])}
    rect["annopoints"] = EMPTY if points is None else {"point": points}
    return rect


def write_release(path, images, videos):
    """images: dicts with name, train, rects (dicts or a ready struct array), single, vididx, act."""
    annolist = _structs([{"image": {"name": im["name"]},
                          "annorect": im["rects"] if not isinstance(im["rects"], list)
                          else (_structs(im["rects"]) if im["rects"] else EMPTY),
                          "frame_sec": im.get("frame_sec", EMPTY),
                          "vididx": EMPTY if im.get("vididx") is None else im["vididx"]} for im in images])
    release = {"annolist": annolist,
               "img_train": np.array([[im["train"] for im in images]], np.uint8),
               "single_person": _cell([np.array(im.get("single", []), float).reshape(-1, 1) if im.get("single")
                                       else EMPTY for im in images]),
               "act": _structs([im.get("act", {"act_name": EMPTY, "cat_name": EMPTY, "act_id": -1})
                                for im in images]).T,
               "video_list": _cell(list(videos)).T}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    scipy.io.savemat(path, {"RELEASE": release})


HEAD1, OBJ1 = (45.0, 10.0, 56.0, 30.0), (51.0, 60.0)
# is_visible of person a.jpg/1 as the file has them: numbers, strings, and one empty (unknown, joint 10).
VIS1 = [1, "1", 1, "1", 1, 1, 1, 1, 1, "0", [], 1, 1, 1, 1, 0]
SHIFT2 = np.array([-45.0, 0.0])


def _fixture_images():
    second = [j for j in range(16) if j != 5]  # no left ankle
    return [
        {"name": "a.jpg", "train": 1, "vididx": 1, "frame_sec": 12,
         "act": {"act_name": "running, general", "cat_name": "running", "act_id": 7},
         "single": [1, 3],
         "rects": [_rect(_points(TEMPLATE, visible=VIS1), HEAD1, OBJ1, 0.6),
                   _rect(_points(TEMPLATE + SHIFT2, ids=second, visible=[1] * 15), (0, 10, 11, 30), (6, 60), 0.5),
                   _rect(None, (70, 5, 80, 20), (75, 40), 0.3),
                   _rect(_points(TEMPLATE + 1, ids=[7], visible=[1]), (1, 1, 9, 9), (5, 5), 0.2)]},
        {"name": "b.jpg", "train": 1, "vididx": 1, "single": [1],
         "rects": [_rect(_points(TEMPLATE + 2), (46, 11, 57, 31), (52, 61), 0.6)]},
        {"name": "c.jpg", "train": 0, "rects": _structs([{"objpos": {"x": 30.0, "y": 40.0}, "scale": 1.5}])},
        {"name": "d.jpg", "train": 1, "vididx": 2,
         "rects": [_rect(_points(TEMPLATE, visible=[1] * 16, drop=("x",)), HEAD1, OBJ1, 0.6)]},
        {"name": "e.jpg", "train": 1, "vididx": 3, "rects": []},
        {"name": "f.jpg", "train": 1, "rects": [_rect(_points(TEMPLATE), HEAD1, OBJ1, 0.6)]},
        {"name": "g.jpg", "train": 1, "vididx": 2,
         "rects": [_rect(_structs([{"id": 16, "x": 3.0, "y": 4.0, "is_visible": 1}]), HEAD1, OBJ1, 0.6)]},
    ]


@pytest.fixture
def mpii_root(tmp_path):
    write_release(str(tmp_path / mpii.ANNOTATION_FILE), _fixture_images(), ["vidA", "vidB", "vidC"])
    (tmp_path / "images").mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "g.jpg"):  # f.jpg is missing
        assert cv2.imwrite(str(tmp_path / "images" / name), np.full((H, W, 3), 90, np.uint8))
    return tmp_path


# ----------------------------------------------------------------------------- parsing


def test_people_and_image_facts_match_the_file(mpii_root):
    reader = datasets.get_reader("mpii", input=str(mpii_root), split="train")
    assert reader.list_items() == [0, 1, 3, 4, 5, 6]  # c.jpg is a test image
    record = reader.read(0)
    assert record.image_id == "a.jpg" and record.skeleton == "mpii16" and record.dataset == "mpii"
    assert record.image_path == os.path.join(str(mpii_root), "images", "a.jpg")
    assert [p.person_id for p in record.people] == ["1", "2", "4"]
    first, second, single = record.people
    np.testing.assert_allclose(first.pose2d, TEMPLATE, atol=1e-5)  # MATLAB's (1, 1) pixel centre is (0.5, 0.5)
    assert first.annotated.all()
    expected_visible = np.ones(16, bool)
    expected_visible[[MPII16.index("head_top"), MPII16.index("left_wrist")]] = False
    np.testing.assert_array_equal(first.visible, expected_visible)  # joint 10's empty flag: taken as seen
    np.testing.assert_array_equal(first.extras["visibility_unknown"], np.arange(16) == 10)
    np.testing.assert_allclose(first.extras["head_box"], np.array(HEAD1) - 0.5)
    np.testing.assert_allclose(first.extras["objpos"], np.array(OBJ1) - 0.5)
    assert first.extras["scale"] == 0.6 and first.extras["single_person"] and first.extras["annorect"] == 1
    assert not second.annotated[MPII16.index("left_ankle")] and second.annotated.sum() == 15
    assert np.isnan(second.pose2d[MPII16.index("left_ankle")]).all()
    np.testing.assert_allclose(second.pose2d[10], TEMPLATE[10] + SHIFT2, atol=1e-5)  # x < 0: partly outside
    assert not second.extras["single_person"]
    assert single.annotated.sum() == 1 and single.extras["annorect"] == 4  # squeezed one-point struct
    np.testing.assert_allclose(single.pose2d[7], TEMPLATE[7] + 1, atol=1e-5)
    meta = record.metadata
    assert meta["single_person"] == [1, 3] and meta["multi_person"] == [2, 4]
    assert meta["num_annorect"] == 4 and meta["num_unannotated"] == 1
    unannotated, = meta["unannotated"]
    assert unannotated["annorect"] == 3 and unannotated["scale"] == 0.3
    np.testing.assert_allclose(unannotated["objpos"], [74.5, 39.5])
    assert meta["activity"] == {"act_name": "running, general", "cat_name": "running", "act_id": 7}
    assert (meta["vididx"], meta["video_id"], meta["frame_sec"]) == (1, "vidA", 12.0)
    assert meta["split"] == "train" and meta["img_train"] == 1 and meta["index"] == 0
    # b.jpg: a one-element annorect, points without is_visible, a one-person single_person cell.
    b = reader.read(1)
    person, = b.people
    np.testing.assert_allclose(person.pose2d, TEMPLATE + 2, atol=1e-5)
    assert person.visible.all() and person.extras["visibility_unknown"].all()
    assert b.metadata["single_person"] == [1] and b.metadata["activity"]["act_id"] == -1
    assert mpii_annotations.parse_image(reader.release(), 4).people == []
    assert reader.read(5).metadata["video_id"] is None
    with pytest.raises(RecordError, match=r"annolist\(5\) \(e.jpg\) has no annotated person"):
        reader.read(4)
    assert reader.key_name(3) == "d.jpg"


def test_bad_records_name_file_and_field(mpii_root):
    reader = mpii.MpiiReader(str(mpii_root))
    with pytest.raises(RecordError) as info:
        reader.read(3)
    assert info.value.reason == ("mpii_human_pose_v1_u12_1.mat: annolist(4).annorect(1).annopoints.point(1) "
                                 "has no field 'x'")
    with pytest.raises(RecordError, match=r"annolist\(7\)\.annorect\(1\)\.annopoints\.point\(1\)\.id is 16"):
        reader.read(6)
    with pytest.raises(RecordError, match=r"no annolist\(8\)"):
        reader.read(7)
    path = str(mpii_root / mpii.ANNOTATION_FILE)
    images = _fixture_images()[:2]
    images[1]["rects"] = [_rect(_points(TEMPLATE, visible=["y"] * 16), HEAD1, OBJ1, 0.6)]
    images[0]["rects"][0]["x2"] = "wide"
    write_release(path, images, ["vidA"])
    release = mpii_annotations.load_release(path)
    with pytest.raises(RecordError, match=r"annolist\(1\)\.annorect\(1\)\.x2 is not a number: 'wide'"):
        mpii_annotations.parse_image(release, 0)
    with pytest.raises(RecordError, match=r"annolist\(2\)\.annorect\(1\)\.annopoints\.point\(1\)\.is_visible is "
                                          r"'y', expected 0 or 1"):
        mpii_annotations.parse_image(release, 1)
    scipy.io.savemat(path, {"OTHER": np.zeros(2)})
    with pytest.raises(ValueError, match=r"has no variable 'RELEASE' \(found \['OTHER'\]\)"):
        mpii_annotations.load_release(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mpii_annotations.load_release(str(mpii_root / "nothing.mat"))


def test_matlab_pixel_coordinates_become_the_package_convention():
    """MATLAB's (1, 1) is the centre of the top-left pixel, (N, M) the centre of pixel column N - 1, row
    M - 1: the package puts those centres at (0.5, 0.5) and (N - 0.5, M - 0.5)."""
    assert mpii_annotations.PIXEL_OFFSET == -0.5
    matlab = np.array([[1.0, 1.0], [30.0, 40.0]])
    package = np.array([[0.5, 0.5], [29.5, 39.5]])
    np.testing.assert_allclose(matlab + mpii_annotations.PIXEL_OFFSET, package)
    np.testing.assert_allclose(mpii_annotations.to_mpii_coordinates(package), matlab)
    # The pixel holding the point is floor(x): MATLAB (1, 1) lies in pixel index (0, 0).
    np.testing.assert_array_equal(np.floor(package), [[0, 0], [29, 39]])


def test_test_split_reads_people_without_joints_and_the_job_refuses_it(mpii_root, job_assets, tmp_path):
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        mpii.MpiiReader(str(mpii_root), split="dev")
    reader = mpii.MpiiReader(str(mpii_root), split="test")
    assert reader.list_items() == [2]                  # c.jpg, the one test image
    record = reader.read(2)
    assert record.people == [] and record.metadata["img_train"] == 0 and record.metadata["vididx"] is None
    rect, = record.metadata["unannotated"]
    assert rect["head_box"] is None and rect["scale"] == 1.5
    np.testing.assert_allclose(rect["objpos"], [29.5, 39.5])
    np.testing.assert_allclose(mpii_annotations.to_mpii_coordinates(rect["objpos"]), [30, 40])
    # The annorect table the evaluation's files are aligned with: every rect, annotated or not.
    table = mpii_annotations.annorect_table(record)
    assert [(r["annorect"], r["person_id"], r["single_person"], r["scale"]) for r in table] == [(1, None, False, 1.5)]
    first = mpii_annotations.annorect_table(mpii.MpiiReader(str(mpii_root), split="train").read(0))
    assert [(r["annorect"], r["person_id"], r["single_person"]) for r in first] == [
        (1, "1", True), (2, "2", False), (3, None, True), (4, "4", False)]
    np.testing.assert_allclose(first[2]["objpos"], np.array([75, 40]) - 0.5)
    # The TFRecord job writes people with joints only: it refuses the split, saying why.
    assert mpii.MpiiReader(str(mpii_root), split="train").job_refusal() is None
    with pytest.raises(ValueError, match=r"mpii --split=test: the test images' people have no joint annotations"):
        bt.run(reader, str(tmp_path / "out"), job_assets["anchors"], [], poses=job_assets["poses"])


# ----------------------------------------------------------------------------- validation split


def _split_release(path):
    """36 training images: 30 over 12 videos of 1..4 images, 6 without a video; 4 test images; the 5
    training images i with i % 7 == 3 (3, 10, 17, 24, 31) have no annotated person."""
    images, v = [], 0
    sizes = [1, 2, 3, 4] * 3
    for size in sizes:
        v += 1
        for _ in range(size):
            images.append({"vididx": v})
    images += [{"vididx": None} for _ in range(6)]
    for i, im in enumerate(images):
        im.update(name=f"{i:03d}.jpg", train=1,
                  rects=[_rect(None if i % 7 == 3 else _points(TEMPLATE), HEAD1, OBJ1, 0.6)])
    images += [{"name": f"t{i}.jpg", "train": 0, "vididx": 1, "rects": [_rect(None, HEAD1, OBJ1, 0.6)]}
               for i in range(4)]
    write_release(path, images, [f"vid{i}" for i in range(1, 13)])
    return mpii_annotations.load_release(path)


def test_validation_split_keeps_videos_whole(tmp_path):
    release = _split_release(str(tmp_path / "r.mat"))
    training = np.flatnonzero(release.img_train == 1)
    annotated = {int(i) for i in training if release.has_annotated_person(int(i))}
    video = {int(i): release.vididx(int(i)) for i in training}
    for seed in range(4):
        val, train = mpii.mpii_validation_split(release, num_images=10, seed=seed)
        assert len(val) == 10 and set(val) <= annotated
        assert not set(val) & set(train) and set(train) <= set(training.tolist())
        val_videos = {video[i] for i in val} - {None}
        assert not val_videos & {video[i] for i in train}          # no video on both sides
        # the training side is everything else, except unannotated images of validation videos
        assert set(train) == {i for i in video if video[i] not in val_videos and i not in set(val)}
        again = mpii.mpii_validation_split(release, num_images=10, seed=seed)
        np.testing.assert_array_equal(again[0], val)
    splits = {tuple(mpii.mpii_validation_split(release, 10, seed=s)[0]) for s in range(4)}
    assert len(splits) > 1  # the seed matters
    with pytest.raises(ValueError, match="only 31 training images have an annotated person"):
        mpii.mpii_validation_split(release, num_images=60)


def test_validation_split_file_round_trip_and_checks(tmp_path):
    release = _split_release(str(tmp_path / "r.mat"))
    path = str(tmp_path / "splits" / "val.json")
    val, train = mpii.load_or_create_split(release, path, num_images=8, seed=3)
    with open(path) as f:
        payload = json.load(f)
    assert payload["val_indices"] == val.tolist() and payload["train_indices"] == train.tolist()
    assert payload["val_names"] == [f"{i:03d}.jpg" for i in val] and payload["seed"] == 3
    again = mpii.load_or_create_split(release, path, num_images=8, seed=3)
    np.testing.assert_array_equal(again[0], val)
    with pytest.raises(ValueError, match="made with num_images=8, seed=3; asked for num_images=8, seed=4"):
        mpii.load_or_create_split(release, path, num_images=8, seed=4)
    payload["val_names"][0] = "other.jpg"
    with open(path, "w") as f:
        json.dump(payload, f)
    with pytest.raises(ValueError, match=r"val_names\[0\] is 'other.jpg' but annolist"):
        mpii.read_split_file(path, release)
    # The reader's val / train_minus_val splits come from the same file.
    images = str(tmp_path)
    os.replace(str(tmp_path / "r.mat"), str(tmp_path / "release.mat"))
    path2 = str(tmp_path / "val2.json")
    reader = mpii.MpiiReader(images, split="val", val_split_file=path2, val_images=8, val_seed=3,
                             annotation_file=str(tmp_path / "release.mat"))
    assert reader.list_items() == val.tolist() and os.path.exists(path2)
    rest = mpii.MpiiReader(images, split="train_minus_val", val_split_file=path2, val_images=8, val_seed=3,
                           annotation_file=str(tmp_path / "release.mat"))
    assert rest.list_items() == train.tolist()


# ----------------------------------------------------------------------------- the job


def test_job_end_to_end(mpii_root, job_assets, tmp_path):
    reader = mpii.MpiiReader(str(mpii_root), split="train")
    prefix = str(tmp_path / "out" / "mpii")
    summary = bt.run(reader, prefix, job_assets["anchors"], [], poses=job_assets["poses"], num_shards=1,
                     pseudo_gt_views=2)
    assert summary["check"]["images_accounted"] and summary["check"]["persons_accounted"]
    assert summary["images"]["listed"] == 6 and summary["images"]["written"] == 2
    assert summary["images"]["rejected_by_reason"] == {"image_missing": 1, "read_error": 3}
    assert summary["persons"]["written"] == 3 and summary["persons"]["rejected_by_reason"] == {"too_few_joints": 1}
    with open(records_lib.rejected_path(prefix)) as f:
        rejected = {(r["key"], r["kind"]): r for r in map(json.loads, f)}
    assert rejected[("d.jpg", "image")]["reason"].endswith("annopoints.point(1) has no field 'x'")
    assert rejected[("f.jpg", "image")]["code"] == "image_missing"
    assert rejected[("e.jpg", "image")]["reason"] == (
        "mpii_human_pose_v1_u12_1.mat: annolist(5) (e.jpg) has no annotated person: 0 annorect entries, none "
        "with annopoints.point")
    assert rejected[("a.jpg", "person")]["person_id"] == "4"
    import tensorflow as tf
    examples = {}
    for raw in tf.data.TFRecordDataset(records_lib.shard_path(prefix, 0, 1)).as_numpy_iterator():
        ex = features.decode_example_numpy(raw)
        examples[ex[features.IMAGE_ID].decode()] = ex
    assert sorted(examples) == ["a.jpg", "b.jpg"]
    a = examples["a.jpg"]
    assert a[features.NUM_PEOPLE] == 2 and a[features.IMAGE_SOURCE] == b"mpii"
    head = TEMPLATE[[MPII16.index("upper_neck"), MPII16.index("head_top")]].mean(axis=0)
    np.testing.assert_allclose(a[features.POSE2D][0, LCR.index("head")], head, atol=1e-3)
    np.testing.assert_allclose(a[features.POSE2D][0, LCR.index("right_elbow")], TEMPLATE[11], atol=1e-3)
    assert not a[features.VISIBLE][0, LCR.index("left_wrist")] and a[features.VISIBLE][0, LCR.index("right_knee")]
    assert not a[features.ANNOTATED][1, LCR.index("left_ankle")] and a[features.COMPLETED][1, LCR.index("left_ankle")]
