"""The TFRecord build job beam_jobs.build_tfrecords: its pure steps against hand-computed values, the
pseudo ground-truth path on 2D-only people projected from known corpus poses, the synthetic dataset end
to end with broken images and annotations (multi-process DirectRunner), and byte-identical reruns."""

import json
import os

import cv2
import numpy as np
import pytest
from conftest import assert_no_library_notices

from beam_jobs import anchor_poses
from beam_jobs import build_tfrecords as bt
from lcr_tf import datasets
from lcr_tf.contracts import features, geometry
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets import corpus as corpus_lib
from lcr_tf.datasets import labelling
from lcr_tf.datasets import records as records_lib
from lcr_tf.datasets.base import DatasetReader, ImageRecord, Person, RecordError
from lcr_tf.poses import anchors as anchors_lib
from lcr_tf.poses import body_model, pseudo_gt

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LCR = skeleton_lib.LCR13
J = LCR.num_joints
VIEWS, DB_SEED = 3, 5
IN_PROCESS = []  # Beam's default: the in-process DirectRunner
MULTI_PROCESS = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A 2000-pose body-model corpus and its K=8 anchors (2 views), written as the job reads them."""
    d = tmp_path_factory.mktemp("assets")
    corpus = body_model.sample_poses(2000, seed=1)
    corpus.save(str(d / "poses.npz"))
    anchor_poses.run(str(d / "poses.npz"), 8, str(d / "anchors.npz"), views=2, figure="", verbose=False)
    return {"poses": str(d / "poses.npz"), "anchors": str(d / "anchors.npz"), "corpus": corpus.poses3d,
            "anchor_set": anchors_lib.load(str(d / "anchors.npz"))}


def _jpeg(height=256, width=256, value=90):
    ok, buf = cv2.imencode(".jpg", np.full((height, width, 3), value, np.uint8))
    return buf.tobytes()


def _png(height=256, width=256):
    ok, buf = cv2.imencode(".png", np.full((height, width, 3), 30, np.uint8))
    return buf.tobytes()


def _read_shards(paths):
    import tensorflow as tf
    out = {}
    for path in paths:
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            example = features.decode_example_numpy(raw)
            out[example[features.IMAGE_ID].decode()] = (example, path)
    return out


def _shard_ids(path):
    import tensorflow as tf
    return [features.decode_example_numpy(raw)[features.IMAGE_ID].decode()
            for raw in tf.data.TFRecordDataset(path).as_numpy_iterator()]


def _rejected(prefix):
    with open(records_lib.rejected_path(prefix)) as f:
        return [json.loads(line) for line in f]


# ----------------------------------------------------------------------------- pure steps


def test_check_image_decodes_fully_and_names_the_problem():
    assert labelling.check_image(_jpeg(48, 64)) == ("jpeg", 48, 64)
    assert labelling.check_image(_png(20, 30)) == ("png", 20, 30)
    noisy = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))[1].tobytes()
    for data, message in ((noisy[:len(noisy) // 2], "jpeg decoder failed"), (b"GIF89a....", "not a JPEG or PNG"),
                          (b"", "not a JPEG or PNG"), (_png()[:60], "png decoder failed")):
        with pytest.raises(labelling.ImageError, match=message) as info:
            labelling.check_image(data)
        assert info.value.code == "image_unreadable"


def test_shard_assignment_is_a_fixed_hash():
    # md5("abc") = 900150983cd24fb0...: its first 8 bytes read little-endian are 0xb04fd23c98500190.
    assert records_lib.shard_of("abc", 1000) == 0xb04fd23c98500190 % 1000 == 392
    assert records_lib.shard_of("abc", 1) == 0
    counts = np.bincount([records_lib.shard_of(f"img{i}", 4) for i in range(4000)], minlength=4)
    assert counts.min() > 900  # spread evenly
    assert records_lib.shard_path("out/x", 3, 12) == "out/x-00003-of-00012.tfrecord"
    assert records_lib.rejected_path("p") == "p-rejected.jsonl" and records_lib.summary_path("p") == "p-summary.json"


def test_clip_ignore_regions_clips_drops_empty_and_refuses_malformed():
    boxes = [[-5.0, -2.0, 30.0, 40.0],   # clipped at the top-left
             [90.0, 10.0, 130.0, 70.0],  # clipped at the right (width 100) and bottom (height 60)
             [100.0, 5.0, 120.0, 9.0],   # starts at the right edge: nothing inside
             [10.0, -8.0, 20.0, 0.0],    # above the image
             [20.0, 20.0, 20.0, 30.0],   # zero width
             [1.0, 2.0, 3.0, 4.0]]
    kept, empty = labelling.clip_ignore_regions(boxes, 60, 100)
    np.testing.assert_array_equal(kept, [[0, 0, 30, 40], [90, 10, 100, 60], [1, 2, 3, 4]])
    assert empty == 3
    for value in (np.zeros((0, 4)), np.zeros((0,)), []):
        kept, empty = labelling.clip_ignore_regions(value, 60, 100)
        assert kept.shape == (0, 4) and empty == 0
    for bad, message in (([1, 2, 3, 4], r"shape \(4,\)"), ([[0, 0, 5, 5], [1, 2, np.inf, 4]], "region 1 holds NaN"),
                         ([[0, 0, 5, 5], [0, 0, 1, 1], [9, 0, 5, 5]], r"region 2 \[9.0, 0.0, 5.0, 5.0\] is reversed")):
        with pytest.raises(ValueError, match=message):
            labelling.clip_ignore_regions(bad, 60, 100)


def test_complete_from_own_3d_fits_scale_and_translation():
    pose3d = np.zeros((1, 4, 3))
    pose3d[0, :, :2] = [[0, 0], [1, 0], [0, 2], [1, 2]]
    # Annotated joints 0..2 are the projection times 50 px/m, shifted by (10, 20); joint 3 is missing.
    pose2d = np.array([[[10, 20], [60, 20], [10, 120], [np.nan, np.nan]]])
    annotated = np.array([[True, True, True, False]])
    out = labelling.complete_from_own_3d(pose2d, annotated, pose3d)
    np.testing.assert_allclose(out[0], [[10, 20], [60, 20], [10, 120], [60, 120]])
    # Annotated joints stay as given even when they do not fit exactly.
    pose2d[0, 0] = [12, 20]
    assert tuple(labelling.complete_from_own_3d(pose2d, annotated, pose3d)[0, 0]) == (12, 20)


def _item(record, height=256, width=256):
    return labelling.ImageItem(key="k", image_id=record.image_id, dataset=record.dataset, encoded=b"",
                               image_format="jpeg", height=height, width=width, intrinsics=None,
                               num_people=len(record.people), record=record)


def test_convert_people_rejects_bad_people_with_reasons(assets):
    truth = assets["corpus"][:8].astype(np.float64)
    pose2d = truth[..., :2] * 100 + 128
    people = [Person(pose2d[i].copy(), np.ones(J, bool), pose3d=truth[i].copy()) for i in range(8)]
    people[1].pose2d[4] = np.nan                                # annotated joint holds NaN
    people[2].pose2d[6] = [600.0, 30.0]                          # > 1 image width right of a 256 image
    people[3].annotated[:] = False
    people[3].annotated[[4, 5, 10]] = True                       # 3 joints
    people[3].pose3d = None
    people[4].pose3d[12] = [0.0, -3.0, 0.0]                      # head 3 m above the body
    people[5].pose3d[0, 0] = np.inf
    people[6] = Person(np.full((J, 2), 50.0), np.ones(J, bool))  # all joints at one point
    people[7] = Person(pose2d[7, :12], np.ones(12, bool))        # 12 joints for a 13-joint skeleton
    people.append(Person(pose2d[0].copy(), np.ones(J, bool), person_id="ok"))  # good, without 3D
    item = _item(ImageRecord("img", "d", "lcr13", people))
    problems = labelling.convert_people(item, min_joints=4, max_outside=1.0)
    assert [(i, code) for i, _, code, _ in problems] == [
        (1, "nan_joint"), (2, "outside_image"), (3, "too_few_joints"), (4, "bad_pose3d"), (5, "bad_pose3d"),
        (6, "degenerate"), (7, "wrong_joint_count")]
    reasons = {i: reason for i, _, _, reason in problems}
    assert reasons[1] == "annotated joints hold NaN or inf: right_hip"
    assert "right_wrist" in reasons[2] and "256x256" in reasons[2]
    assert reasons[3] == "3 annotated LCR-13 joints, fewer than min_joints=4"
    assert "head is 3.0" in reasons[4] or "head is 2.9" in reasons[4]
    np.testing.assert_array_equal(item.person_index, [0, 8])
    assert list(item.person_id) == [None, "ok"]
    np.testing.assert_array_equal(item.has_3d, [True, False])
    np.testing.assert_allclose(item.pose3d[0], skeleton_lib.centre_poses(truth[0]), atol=1e-12)
    assert np.isnan(item.pose3d[1]).all()
    np.testing.assert_allclose(item.pose2d, pose2d[[0, 0]])
    assert item.visible.all() and not item.completed.any()  # visibility unknown: taken as annotated
    # With a looser limit the far joint passes.
    item = _item(ImageRecord("img", "d", "lcr13", [people[2]]))
    assert labelling.convert_people(item, max_outside=2.0) == [] and item.person_index.tolist() == [0]


def test_convert_people_maps_other_joint_sets_to_lcr13():
    # A COCO person: LCR's head is the mid-ear point; the left ear is missing, so it falls back on the eyes.
    coco = skeleton_lib.COCO17
    pose = np.zeros((coco.num_joints, 2))
    pose[:, 0] = np.arange(coco.num_joints) * 10.0 + 5
    pose[:, 1] = np.arange(coco.num_joints) * 7.0 + 3
    annotated = np.ones(coco.num_joints, bool)
    annotated[[coco.index("left_ear"), coco.index("left_ankle")]] = False
    visible = annotated.copy()
    visible[coco.index("right_eye")] = False
    visible[coco.index("left_wrist")] = False
    person = Person(pose, annotated, visible=visible)
    item = _item(ImageRecord("c", "coco", "coco17", [person]), height=300, width=300)
    assert labelling.convert_people(item) == []
    eyes = pose[[coco.index("left_eye"), coco.index("right_eye")]].mean(axis=0)
    np.testing.assert_allclose(item.pose2d[0, LCR.index("head")], eyes)
    np.testing.assert_allclose(item.pose2d[0, LCR.index("right_knee")], pose[coco.index("right_knee")])
    assert np.isnan(item.pose2d[0, LCR.index("left_ankle")]).all()
    expected_annotated = np.ones(J, bool)
    expected_annotated[LCR.index("left_ankle")] = False
    np.testing.assert_array_equal(item.annotated[0], expected_annotated)
    # The head's position comes from the eyes, but one eye is hidden: it counts as seen through the next
    # rule that applies to the visible joints (the nose).
    expected_visible = expected_annotated.copy()
    expected_visible[LCR.index("left_wrist")] = False
    np.testing.assert_array_equal(item.visible[0], expected_visible)


# ----------------------------------------------------------------------------- pseudo ground truth


class ProjectedReader(DatasetReader):
    """2D-only people made by projecting known entries of the job's pseudo-GT database, plus broken
    records of every kind. Images are 256x256; the poses are drawn at 300 px/m around (128, 128)."""

    name = "projected"
    skeleton = "lcr13"
    SCALE, OFFSET = 300.0, 128.0
    # key -> [(database index, missing joints)] for the 2D-only people.
    PEOPLE = {0: [(7, [0, 7]), (1401, [1, 3])], 1: [(2208, [6]), (3005, [])],
              2: [(4507, [12, 9]), (91, [4])], 3: [(5000, [0, 7]), (612, [0, 1, 2, 3])],
              4: [(333, [2])], 7: [(4300, [])], 8: [(4100, [])], 9: [(4200, [5])]}
    WRITTEN = (0, 1, 2, 3, 4, 8)  # of the keys above (7: its image file is missing; 9: a duplicate id)
    # Ignore regions (xyxy px): key 0's first reaches out of the 256x256 image, its second lies outside it;
    # key 5's image is rejected; key 11's region is reversed, which rejects its image.
    IGNORE = {0: [[-10.0, 5.0, 40.0, 60.0], [300.0, 0.0, 400.0, 50.0], [10.0, 10.0, 20.5, 20.0]],
              5: [[0.0, 0.0, 9.0, 9.0]], 11: [[50.0, 50.0, 40.0, 60.0]]}

    def __init__(self, poses: str, folder: str):
        super().__init__()
        self.poses = poses
        self.folder = folder

    def list_items(self):
        return list(range(12))

    def database(self):
        return self.cached("db", lambda: pseudo_gt.PoseDatabase(corpus_lib.load_corpus_poses(self.poses, 1, 0), VIEWS,
                                                                DB_SEED))

    def truth(self, index):
        """(2D pixels (J, 2), 3D (J, 3)) of database entry ``index``."""
        pose2d, pose3d = self.database().project(np.array([index]))
        return pose2d[0] * self.SCALE + self.OFFSET, pose3d[0]

    def person(self, index, missing, **kwargs):
        pose2d, _ = self.truth(index)
        annotated = np.ones(J, bool)
        annotated[missing] = False
        return Person(np.where(annotated[:, None], pose2d, np.nan), annotated, **kwargs)

    def read(self, key):
        if key == 6:
            raise RecordError(key, "annotation row 6 is cut short")
        people = [self.person(i, m) for i, m in self.PEOPLE.get(key, [])]
        image_id, data, path = f"p{key:02d}", _jpeg(), None
        if key == 4:  # one good person, one with 3 joints, one with a NaN joint
            few = self.person(400, [j for j in range(J) if j not in (4, 5, 10)], person_id="few")
            nan = self.person(401, [])
            nan.pose2d[8, 1] = np.nan
            people += [few, nan]
        elif key == 5:  # nobody usable
            people = [self.person(500, list(range(2, J)))]
        elif key == 7:
            data, path = None, os.path.join(self.folder, "missing.jpg")
        elif key in (8, 9):
            image_id = "dup"
        elif key == 10:  # 3D given in MPII's joint order, 2D incomplete: completed from its own 3D
            data = _png()
            people = [self.mpii_person()]
        elif key == 11:
            people = [self.person(1100, [])]
        record = ImageRecord(image_id, self.name, "mpii16" if key == 10 else "lcr13", people, image_bytes=data,
                             image_path=path, height=256, width=256)
        if key in self.IGNORE:
            record.ignore_regions = np.array(self.IGNORE[key])
        return record

    def mpii_truth(self):
        """LCR-13 3D truth (J, 3) metres and its 2D (J, 2): 250 px/m, shifted by (100, 120)."""
        pose3d = skeleton_lib.centre_poses(self.database().project(np.array([2500]))[1][0])
        return pose3d, pose3d[:, :2] * 250.0 + [100.0, 120.0]

    def mpii_person(self):
        mpii = skeleton_lib.MPII16
        pose3d, _ = self.mpii_truth()
        full = np.zeros((mpii.num_joints, 3))
        for j, name in enumerate(mpii.joint_names):
            if name in LCR.joint_names:
                full[j] = pose3d[LCR.index(name)]
        up = np.array([0.0, -0.08, 0.0])
        full[mpii.index("upper_neck")] = pose3d[LCR.index("head")] - up
        full[mpii.index("head_top")] = pose3d[LCR.index("head")] + up
        full[mpii.index("pelvis")] = pose3d[[LCR.index("left_hip"), LCR.index("right_hip")]].mean(0)
        full[mpii.index("thorax")] = pose3d[[LCR.index("left_shoulder"), LCR.index("right_shoulder")]].mean(0)
        annotated = np.ones(mpii.num_joints, bool)
        annotated[[mpii.index("right_ankle"), mpii.index("left_wrist")]] = False
        pose2d = np.where(annotated[:, None], full[:, :2] * 250.0 + [100.0, 120.0], np.nan)
        return Person(pose2d, annotated, pose3d=full, person_id="mpii")


def _run_projected(assets, prefix, folder):
    reader = ProjectedReader(assets["poses"], str(folder))
    return reader, bt.run(reader, str(prefix), assets["anchors"], IN_PROCESS, poses=assets["poses"], num_shards=3,
                          pseudo_gt_views=VIEWS, pseudo_gt_seed=DB_SEED)


@pytest.fixture(scope="module")
def projected_run(assets, tmp_path_factory):
    d = tmp_path_factory.mktemp("projected")
    reader, summary = _run_projected(assets, d / "out" / "proj", d)
    return reader, summary, str(d / "out" / "proj")


def test_pseudo_gt_recovers_the_projected_poses(assets, projected_run):
    reader, summary, prefix = projected_run
    examples = _read_shards(records_lib.shard_paths(prefix, 3))
    assert sorted(examples) == ["dup", "p00", "p01", "p02", "p03", "p04", "p10"]
    anchor_set = assets["anchor_set"]
    for key, people in ProjectedReader.PEOPLE.items():
        if key not in ProjectedReader.WRITTEN or key == 8:
            continue
        ex, path = examples[f"p{key:02d}"]
        assert records_lib.shard_of(f"p{key:02d}", 3) == int(path.split("-")[-3])
        assert ex[features.NUM_PEOPLE] == len(people) and ex[features.IMAGE_SOURCE] == b"projected"
        assert (ex[features.IMAGE_HEIGHT], ex[features.IMAGE_WIDTH]) == (256, 256)
        assert ex[features.IMAGE_FORMAT] == b"jpeg" and ex[features.IMAGE_ENCODED] == _jpeg()
        np.testing.assert_array_equal(ex[features.INTRINSICS], np.zeros(4))  # unknown
        expected_ignore = [[0, 5, 40, 60], [10, 10, 20.5, 20]] if key == 0 else np.zeros((0, 4))
        np.testing.assert_array_equal(ex[features.IGNORE_BOXES], expected_ignore)
        assert ex[features.NUM_IGNORE] == len(expected_ignore)
        for p, (index, missing) in enumerate(people):
            truth2d, truth3d = reader.truth(index)
            expected_missing = np.zeros(J, bool)
            expected_missing[missing] = True
            assert ex[features.PSEUDO_GT_DISTANCE][p] < 1e-5
            np.testing.assert_allclose(ex[features.POSE3D][p], truth3d, atol=2e-5)
            np.testing.assert_allclose(ex[features.POSE2D][p], truth2d, atol=2e-3)
            np.testing.assert_array_equal(ex[features.COMPLETED][p], expected_missing)
            np.testing.assert_array_equal(ex[features.ANNOTATED][p], ~expected_missing)
            np.testing.assert_array_equal(ex[features.VISIBLE][p], ~expected_missing)
            assert ex[features.POSE3D_SOURCE][p] == features.POSE3D_PSEUDO_GT
            np.testing.assert_allclose(ex[features.BOX][p], geometry.pose_box(truth2d), atol=2e-3)
            full_body = not expected_missing[LCR.lower_body].all()
            expected_class = anchor_set.assign_classes(truth3d[None], np.array([full_body]))[0]
            assert ex[features.ANCHOR_CLASS][p] == expected_class
            assert (expected_class > anchor_set.num_anchors) == (not full_body)
    # Key 10: MPII 3D converted to LCR-13 (head = mid upper-neck/head-top), 2D completed from its own 3D.
    ex, _ = examples["p10"]
    truth3d, truth2d = reader.mpii_truth()
    np.testing.assert_allclose(ex[features.POSE3D][0], truth3d, atol=1e-6)
    np.testing.assert_allclose(ex[features.POSE2D][0], truth2d, atol=1e-3)
    missing = np.isin(np.arange(J), [LCR.index("right_ankle"), LCR.index("left_wrist")])
    np.testing.assert_array_equal(ex[features.COMPLETED][0], missing)
    assert ex[features.POSE3D_SOURCE][0] == features.POSE3D_MOCAP and ex[features.PSEUDO_GT_DISTANCE][0] == 0
    assert ex[features.IMAGE_FORMAT] == b"png"
    # Shards hold their images sorted by id.
    for path in records_lib.shard_paths(prefix, 3):
        ids = _shard_ids(path)
        assert ids == sorted(ids)


def test_every_rejection_is_listed_with_its_reason(projected_run):
    reader, summary, prefix = projected_run
    lines = _rejected(prefix)
    got = [(line["key"], line["kind"], line.get("person"), line["code"]) for line in lines]
    assert got == [("11", "image", None, "bad_ignore_regions"),  # keys sort as text
                   ("4", "person", 1, "too_few_joints"), ("4", "person", 2, "nan_joint"),
                   ("5", "person", 0, "too_few_joints"), ("5", "image", None, "no_usable_person"),
                   ("6", "image", None, "read_error"), ("7", "image", None, "image_missing"),
                   ("9", "image", None, "duplicate_image_id")]
    by_key = {(line["key"], line["kind"], line.get("person")): line for line in lines}
    assert by_key[("4", "person", 1)]["person_id"] == "few"
    assert by_key[("4", "person", 2)]["reason"] == "annotated joints hold NaN or inf: right_elbow"
    assert by_key[("6", "image", None)]["reason"] == "annotation row 6 is cut short"
    assert "missing.jpg does not exist" in by_key[("7", "image", None)]["reason"]
    assert by_key[("9", "image", None)]["image_id"] == "dup" and by_key[("9", "image", None)]["persons"] == 1
    assert by_key[("11", "image", None)]["reason"] == "ignore region 0 [50.0, 50.0, 40.0, 60.0] is reversed " \
                                                      "(x2 < x1 or y2 < y1)"
    assert by_key[("11", "image", None)]["persons"] == 1
    assert all(line["dataset"] == "projected" for line in lines)


def test_summary_counts_every_outcome(projected_run):
    reader, summary, prefix = projected_run
    with open(records_lib.summary_path(prefix)) as f:
        assert json.load(f) == json.loads(json.dumps(summary))
    assert summary["images"] == {"listed": 12, "read": 11, "written": 7, "written_empty": 0, "rejected": 5,
                                 "rejected_by_reason": {
        "bad_ignore_regions": 1, "duplicate_image_id": 1, "image_missing": 1, "no_usable_person": 1,
        "read_error": 1}}
    # Read: 8 (keys 0-3) + 3 + 1 + 1 (key 7, dropped with its image) + 1 + 1 (duplicates) + 1 (key 10)
    # + 1 (key 11, dropped with its image).
    written_people = {k: len(ProjectedReader.PEOPLE[k]) for k in ProjectedReader.WRITTEN}
    persons = summary["persons"]
    assert persons["read"] == 17 and persons["written"] == sum(written_people.values()) + 1 == 11
    assert persons["rejected_by_reason"] == {"nan_joint": 1, "too_few_joints": 2}
    assert persons["dropped_with_rejected_images"] == 3
    assert (persons["pose3d_mocap"], persons["pose3d_pseudo_gt"]) == (1, 10)
    assert (persons["full_body"], persons["upper_body"]) == (10, 1)
    # Completed joints: the missing ones of the written 2D-only people, plus 2 for the MPII person.
    missing = [len(m) for k in ProjectedReader.WRITTEN for _, m in ProjectedReader.PEOPLE[k]] + [2]
    assert summary["completed_joints"]["total"] == sum(missing)
    expected_hist = {str(n): missing.count(n) for n in sorted(set(missing))}
    assert summary["completed_joints"]["people_by_count"] == expected_hist
    by_joint = dict.fromkeys(LCR.joint_names, 0)
    for k in ProjectedReader.WRITTEN:
        for _, m in ProjectedReader.PEOPLE[k]:
            for j in m:
                by_joint[LCR.joint_names[j]] += 1
    by_joint["right_ankle"] += 1  # the MPII person's
    by_joint["left_wrist"] += 1
    assert summary["completed_joints"]["by_joint"] == by_joint
    # Key 0: 3 read, 2 written, 1 outside the image; keys 5 and 11: 1 each, with their rejected images.
    assert summary["ignore_regions"] == {"read": 5, "written": 2, "dropped_empty_after_clipping": 1,
                                         "dropped_with_rejected_images": 2}
    distance = summary["pseudo_gt_distance"]
    assert distance["count"] == 10 and distance["max"] < 1e-5
    assert distance["percentiles"] == {"p50": 0.01, "p90": 0.01, "p99": 0.01}
    assert sum(summary["anchor_classes"].values()) == 11
    assert summary["check"] == {"images_accounted": True, "written_plus_rejected": 12, "listed": 12,
                                "persons_accounted": True}
    assert summary["parameters"]["pseudo_gt_views"] == VIEWS and summary["parameters"]["num_anchors"] == 8
    assert [s["path"] for s in summary["shards"]] == records_lib.shard_paths(prefix, 3)
    assert [s["bytes"] for s in summary["shards"]] == [os.path.getsize(p) for p in records_lib.shard_paths(prefix, 3)]


def test_a_rerun_writes_byte_identical_files(assets, projected_run, tmp_path):
    _, _, first = projected_run
    _, summary = _run_projected(assets, tmp_path / "again", tmp_path)
    for a, b in zip(records_lib.shard_paths(first, 3), records_lib.shard_paths(str(tmp_path / "again"), 3)):
        assert open(a, "rb").read() == open(b, "rb").read()
    rejected_a, rejected_b = _rejected(first), _rejected(str(tmp_path / "again"))
    for line in rejected_a + rejected_b:  # the missing file's path names the run's folder
        line["reason"] = line["reason"].replace(str(os.path.dirname(os.path.dirname(first))), "")
        line["reason"] = line["reason"].replace(str(tmp_path), "")
    assert rejected_a == rejected_b


# ----------------------------------------------------------------------------- images without people


class NegativesReader(DatasetReader):
    """Images without people: keys 0 and 1 are negatives by intent (1 with a crowd's ignore region),
    2 has no person but is not marked, 3's only person has no annotated joint, 4 is marked negative but
    lists a person (a reader bug), 5 holds one person with its 3D."""

    name = "negatives"
    skeleton = "lcr13"
    CROWD = [[10.0, 10.0, 50.0, 90.0]]

    def __init__(self, poses: str):
        super().__init__()
        self.poses = poses

    def list_items(self):
        return list(range(6))

    def truth(self):
        """(2D (J, 2) px at 300 px/m around (128, 128), 3D (J, 3) m body-centred) of corpus pose 0."""
        pose3d = skeleton_lib.centre_poses(corpus_lib.load_corpus_poses(self.poses, 1, 0)[0].astype(np.float64))
        return pose3d[:, :2] * 300.0 + 128.0, pose3d

    def read(self, key):
        pose2d, pose3d = self.truth()
        people = {3: [Person.from_points(np.full((J, 2), np.nan), person_id="blank")],
                  4: [Person.from_points(pose2d, pose3d=pose3d)],
                  5: [Person.from_points(pose2d, pose3d=pose3d)]}.get(key, [])
        record = ImageRecord(f"n{key}", self.name, self.skeleton, people, image_bytes=_jpeg(), height=256,
                             width=256, negative=key in (0, 1, 4))
        if key == 1:
            record.ignore_regions = np.array(self.CROWD)
        return record


def test_negative_images_are_written_without_people_and_the_others_still_rejected(assets, tmp_path):
    reader = NegativesReader(assets["poses"])
    prefix = str(tmp_path / "neg")
    summary = bt.run(reader, prefix, assets["anchors"], IN_PROCESS, poses=assets["poses"], num_shards=2)
    examples = _read_shards(records_lib.shard_paths(prefix, 2))
    assert sorted(examples) == ["n0", "n1", "n5"]
    for image_id, boxes in (("n0", np.zeros((0, 4))), ("n1", NegativesReader.CROWD)):
        ex, _ = examples[image_id]
        assert ex[features.NUM_PEOPLE] == 0 and ex[features.IMAGE_ENCODED] == _jpeg()
        for key, (shape, _) in features.PERSON_FIELDS.items():
            assert ex[key].shape == (0,) + shape, key
        np.testing.assert_array_equal(ex[features.IGNORE_BOXES], boxes)
    ex, _ = examples["n5"]
    truth2d, truth3d = reader.truth()
    assert ex[features.NUM_PEOPLE] == 1
    np.testing.assert_allclose(ex[features.POSE2D][0], truth2d, atol=1e-3)
    np.testing.assert_allclose(ex[features.POSE3D][0], truth3d, atol=1e-6)

    lines = _rejected(prefix)
    got = [(line["key"], line["kind"], line["code"]) for line in lines]
    assert got == [("2", "image", "no_usable_person"), ("3", "person", "too_few_joints"),
                   ("3", "image", "no_usable_person"), ("4", "image", "read_error")]
    assert lines[0]["reason"] == "the annotation has no person"
    assert lines[2]["reason"] == "none of its 1 people is usable (see their lines)"
    assert lines[3]["reason"] == "the record is marked negative (an image without people) but lists 1 people"
    assert lines[3]["persons"] == 1
    assert summary["images"] == {"listed": 6, "read": 6, "written": 3, "written_empty": 2, "rejected": 3,
                                 "rejected_by_reason": {"no_usable_person": 2, "read_error": 1}}
    persons = summary["persons"]
    assert (persons["read"], persons["written"], persons["rejected"]) == (3, 1, 1)
    assert persons["dropped_with_rejected_images"] == 1
    assert summary["ignore_regions"] == {"read": 1, "written": 1, "dropped_empty_after_clipping": 0,
                                         "dropped_with_rejected_images": 0}
    assert summary["check"] == {"images_accounted": True, "written_plus_rejected": 6, "listed": 6,
                                "persons_accounted": True}


def test_synthetic_empty_fraction_writes_background_records_and_keeps_the_others(assets, tmp_path, capsys):
    """Six 64x64 images, a third empty: floor((i + 1) / 3) > floor(i / 3) for images 2 and 5. The other
    four are written byte for byte as without empty images."""
    pytest.importorskip("lcr_tf.synthetic")
    prefix = str(tmp_path / "empty" / "s")
    status = bt.main(["build_tfrecords", "--dataset=synthetic", "--num_images=6", "--seed=2",
                      f"--poses={assets['poses']}", f"--anchors={assets['anchors']}", f"--output={prefix}",
                      "--num_shards=1", "--reader_option=height=64", "--reader_option=width=64",
                      "--reader_option=empty_fraction=0.3333333333", "--runner=DirectRunner",
                      "--direct_running_mode=in_memory", "--direct_num_workers=1"])
    assert status == 0
    assert "6 of 6 images written" in capsys.readouterr().out
    summary = json.load(open(records_lib.summary_path(prefix)))
    assert summary["images"]["written_empty"] == 2
    assert summary["parameters"]["reader_options"]["empty_fraction"] == 0.3333333333
    examples = _read_shards(records_lib.shard_paths(prefix, 1))
    empty = sorted(i for i, (ex, _) in examples.items() if ex[features.NUM_PEOPLE] == 0)
    assert empty == ["s2_0000002", "s2_0000005"]
    for image_id in empty:
        ex, _ = examples[image_id]
        assert (ex[features.IMAGE_HEIGHT], ex[features.IMAGE_WIDTH]) == (64, 64)
        assert ex[features.POSE2D].shape == (0, J, 2) and ex[features.IGNORE_BOXES].shape == (0, 4)

    plain = datasets.get_reader("synthetic", num_images=6, seed=2, poses=assets["poses"], height=64, width=64)
    other = str(tmp_path / "plain" / "s")
    bt.run(plain, other, assets["anchors"], IN_PROCESS, poses=assets["poses"], num_shards=1)
    import tensorflow as tf
    raw = {features.decode_example_numpy(r)[features.IMAGE_ID].decode(): r
           for r in tf.data.TFRecordDataset(records_lib.shard_path(other, 0, 1)).as_numpy_iterator()}
    with_empty = {features.decode_example_numpy(r)[features.IMAGE_ID].decode(): r
                  for r in tf.data.TFRecordDataset(records_lib.shard_path(prefix, 0, 1)).as_numpy_iterator()}
    assert all(features.decode_example_numpy(raw[i])[features.NUM_PEOPLE] >= 1 for i in empty)
    for image_id in ("s2_0000000", "s2_0000001", "s2_0000003", "s2_0000004"):
        assert with_empty[image_id] == raw[image_id], image_id


# ----------------------------------------------------------------------------- synthetic end to end


class SyntheticFilesReader(DatasetReader):
    """The synthetic dataset as image files in a folder (the file-based reader pattern): annotations
    from the renderer, pixels read lazily from ``folder/<image id>.jpg``; ``nan_key``'s first person gets a
    NaN in an annotated joint."""

    name = "synthetic_files"
    skeleton = "lcr13"

    def __init__(self, folder: str, num_images: int, seed: int, poses: str, nan_key: int = -1):
        super().__init__()
        self.folder = folder
        self.nan_key = nan_key
        self.synthetic = datasets.get_reader("synthetic", num_images=num_images, seed=seed, poses=poses,
                                             height=160, width=160, max_people=4)

    def list_items(self):
        return self.synthetic.list_items()

    def key_name(self, key):
        return self.synthetic.key_name(key)

    def read(self, key):
        record = self.synthetic.read(key)
        record.image_bytes, record.image_path = None, os.path.join(self.folder, record.image_id + ".jpg")
        if key == self.nan_key:
            record.people[0].pose2d[3, 0] = np.nan
        return record


@pytest.fixture(scope="module")
def synthetic_files(assets, tmp_path_factory):
    """20 synthetic images as files: two corrupt, one deleted, one person with a NaN joint."""
    pytest.importorskip("lcr_tf.synthetic")
    folder = tmp_path_factory.mktemp("synthetic_images")
    reader = SyntheticFilesReader(str(folder), 20, 3, assets["poses"])
    records = {k: reader.synthetic.read(k) for k in reader.list_items()}
    for k, record in records.items():
        (folder / f"{record.image_id}.jpg").write_bytes(record.image_bytes)
    truncated, garbage, deleted = 2, 5, 11
    data = records[truncated].image_bytes
    (folder / f"{records[truncated].image_id}.jpg").write_bytes(data[:len(data) // 3])
    (folder / f"{records[garbage].image_id}.jpg").write_bytes(b"\x00\x01 not an image" * 50)
    os.remove(folder / f"{records[deleted].image_id}.jpg")
    nan_key = next(k for k, r in records.items() if len(r.people) >= 2 and k not in (truncated, garbage, deleted))
    reader.nan_key = nan_key
    return reader, records, {"truncated": truncated, "garbage": garbage, "deleted": deleted, "nan": nan_key}


@pytest.fixture(scope="module")
def synthetic_run(assets, synthetic_files, tmp_path_factory):
    reader, _, _ = synthetic_files
    prefix = str(tmp_path_factory.mktemp("synthetic_out") / "synth")
    # Worker processes unpickle the test's reader class by reference: they need this folder on their path.
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([_REPO, os.path.join(_REPO, "tests")] + ([old] if old else []))
    try:
        summary = bt.run(reader, prefix, assets["anchors"], MULTI_PROCESS, poses=assets["poses"], num_shards=4)
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    return prefix, summary


def test_synthetic_job_end_to_end_in_worker_processes(assets, synthetic_files, synthetic_run):
    reader, records, bad = synthetic_files
    prefix, summary = synthetic_run
    rendered_people = {k: len(r.people) for k, r in records.items()}
    total_people = sum(rendered_people.values())
    broken = {bad["truncated"], bad["garbage"], bad["deleted"]}

    lines = _rejected(prefix)
    got = sorted((line["key"], line["kind"], line["code"]) for line in lines)
    name = reader.key_name
    assert got == sorted([(name(bad["truncated"]), "image", "image_unreadable"),
                          (name(bad["garbage"]), "image", "image_unreadable"),
                          (name(bad["deleted"]), "image", "image_missing"),
                          (name(bad["nan"]), "person", "nan_joint")])
    reasons = {line["key"]: line["reason"] for line in lines if line["kind"] == "image"}
    assert "jpeg decoder failed" in reasons[name(bad["truncated"])]
    assert "not a JPEG or PNG file" in reasons[name(bad["garbage"])]
    nan_line = next(line for line in lines if line["kind"] == "person")
    assert nan_line["person"] == 0 and nan_line["reason"] == "annotated joints hold NaN or inf: left_knee"

    assert summary["images"]["listed"] == 20 and summary["images"]["written"] == 17
    assert summary["images"]["rejected_by_reason"] == {"image_missing": 1, "image_unreadable": 2}
    persons = summary["persons"]
    assert persons["read"] == total_people
    assert persons["dropped_with_rejected_images"] == sum(rendered_people[k] for k in broken)
    assert persons["written"] == total_people - persons["dropped_with_rejected_images"] - 1
    assert persons["pose3d_mocap"] == persons["written"] == persons["full_body"]
    assert persons["pose3d_pseudo_gt"] == 0 and summary["pseudo_gt_distance"] == {}
    assert summary["completed_joints"]["total"] == 0
    assert summary["check"]["images_accounted"] and summary["check"]["persons_accounted"]
    assert summary["parameters"]["pipeline_args"] == MULTI_PROCESS

    examples = _read_shards(records_lib.shard_paths(prefix, 4))
    assert sorted(examples) == sorted(name(k) for k in records if k not in broken)
    anchor_set = assets["anchor_set"]
    from lcr_tf import synthetic
    config = reader.synthetic.render_config()
    for k, record in records.items():
        if k in broken:
            continue
        ex, _ = examples[name(k)]
        truth = synthetic.render_image(assets["corpus"], k, 3, config)
        keep = np.arange(truth.pose2d.shape[0])
        if k == bad["nan"]:
            keep = keep[1:]
        assert ex[features.NUM_PEOPLE] == keep.size
        assert ex[features.IMAGE_ENCODED] == record.image_bytes  # the file's bytes, untouched
        assert ex[features.IMAGE_SOURCE] == b"synthetic_files" and ex[features.IMAGE_FORMAT] == b"jpeg"
        assert (ex[features.IMAGE_HEIGHT], ex[features.IMAGE_WIDTH]) == truth.image.shape[:2]
        np.testing.assert_allclose(ex[features.INTRINSICS], truth.intrinsics, rtol=1e-6)
        np.testing.assert_allclose(ex[features.POSE2D], truth.pose2d[keep], atol=1e-3)
        np.testing.assert_allclose(ex[features.POSE3D], truth.pose3d[keep], atol=1e-5)
        np.testing.assert_array_equal(ex[features.VISIBLE], truth.visible[keep])
        assert ex[features.ANNOTATED].all() and not ex[features.COMPLETED].any()
        assert (ex[features.POSE3D_SOURCE] == features.POSE3D_MOCAP).all()
        assert (ex[features.PSEUDO_GT_DISTANCE] == 0).all()
        np.testing.assert_allclose(ex[features.BOX], geometry.pose_box(truth.pose2d[keep]), atol=1e-3)
        np.testing.assert_array_equal(ex[features.ANCHOR_CLASS],
                                      anchor_set.assign_classes(truth.pose3d[keep], True))


def test_synthetic_rerun_in_process_gives_the_same_bytes(assets, synthetic_files, synthetic_run, tmp_path):
    reader, _, _ = synthetic_files
    prefix, _ = synthetic_run
    again = str(tmp_path / "synth")
    bt.run(reader, again, assets["anchors"], IN_PROCESS, poses=assets["poses"], num_shards=4)
    for a, b in zip(records_lib.shard_paths(prefix, 4), records_lib.shard_paths(again, 4)):
        assert open(a, "rb").read() == open(b, "rb").read()
    assert open(records_lib.rejected_path(prefix)).read() == open(records_lib.rejected_path(again)).read()


# ----------------------------------------------------------------------------- command line


def test_main_runs_the_synthetic_dataset(assets, tmp_path, capsys):
    pytest.importorskip("lcr_tf.synthetic")
    prefix = str(tmp_path / "cli" / "s")
    status = bt.main(["build_tfrecords", "--dataset=synthetic", "--num_images=3", "--seed=1",
                      f"--poses={assets['poses']}", f"--anchors={assets['anchors']}", f"--output={prefix}",
                      "--num_shards=2", "--reader_option=height=96", "--reader_option=width=128",
                      "--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"])
    assert status == 0
    assert "3 of 3 images written" in capsys.readouterr().out
    summary = json.load(open(records_lib.summary_path(prefix)))
    assert summary["parameters"]["reader_options"]["height"] == 96
    assert summary["parameters"]["pipeline_args"] == ["--runner=DirectRunner", "--direct_running_mode=in_memory",
                                                      "--direct_num_workers=1"]
    examples = _read_shards(records_lib.shard_paths(prefix, 2))
    assert sorted(examples) == ["s1_0000000", "s1_0000001", "s1_0000002"]
    assert all((ex[features.IMAGE_HEIGHT], ex[features.IMAGE_WIDTH]) == (96, 128) for ex, _ in examples.values())


@pytest.mark.slow
def test_the_module_runs_as_a_program_on_worker_processes(assets, tmp_path):
    # As users run it: ``python -m`` (the module is ``__main__``), default multi-process DirectRunner.
    import subprocess
    import sys
    pytest.importorskip("lcr_tf.synthetic")
    prefix = str(tmp_path / "m")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_REPO, os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-m", "beam_jobs.build_tfrecords", "--dataset=synthetic", "--num_images=4",
                           f"--poses={assets['poses']}", f"--anchors={assets['anchors']}", f"--output={prefix}",
                           "--num_shards=2", "--reader_option=height=64", "--reader_option=width=64"],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 of 4 images written" in done.stdout
    assert_no_library_notices(done.stdout, done.stderr)  # the job's process and its two workers'
    summary = json.load(open(records_lib.summary_path(prefix)))
    assert summary["parameters"]["pipeline_args"] == MULTI_PROCESS
    assert sorted(_read_shards(records_lib.shard_paths(prefix, 2))) == [f"s0_000000{i}" for i in range(4)]


def test_main_help_and_bad_flags(assets, tmp_path, capsys):
    assert bt.main(["build_tfrecords", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--dataset" in out and "--num_shards" in out and "synthetic" in out
    assert bt.main(["build_tfrecords", "--dataset=synthetic"]) == 2
    assert "--output" in capsys.readouterr().err  # --anchors is optional: without it classes stay unassigned
    common = [f"--anchors={assets['anchors']}", f"--output={tmp_path}/x"]
    assert bt.main(["b", "--dataset=synthetic"] + common) == 1
    assert "needs --num_images" in capsys.readouterr().err
    assert bt.main(["b", "--dataset=synthetic", "--num_images=2", "--input=somewhere"] + common) == 1
    assert "does not use --input" in capsys.readouterr().err
    assert bt.main(["b", "--dataset=synthetic", "--num_images=2", "--reader_option=height=tall"] + common) == 1
    assert "height=tall: expected int" in capsys.readouterr().err
    assert bt.main(["b", "--dataset=synthetic", "--num_images=2", f"--anchors={tmp_path}/none.npz",
                    f"--output={tmp_path}/x"]) == 1
    assert "none.npz" in capsys.readouterr().err


def test_pipeline_arguments_default_to_two_worker_processes():
    assert bt.pipeline_arguments([]) == MULTI_PROCESS
    assert bt.pipeline_arguments(["--direct_num_workers=4"]) == [
        "--direct_num_workers=4", "--runner=FnApiRunner", "--direct_running_mode=multi_processing"]
    # A DirectRunner named explicitly is kept (Beam then tries Prism first) and gets the worker defaults.
    assert bt.pipeline_arguments(["--runner=DirectRunner"]) == [
        "--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    other = ["--runner=PortableRunner", "--job_endpoint=localhost:8099"]
    assert bt.pipeline_arguments(other) == other


def test_build_pipeline_refuses_bad_parameters(assets, tmp_path):
    import apache_beam as beam
    reader = ProjectedReader(assets["poses"], str(tmp_path))
    for kwargs, message in (({"num_shards": 0}, "num_shards"), ({"min_joints": 1}, "min_joints"),
                            ({"max_outside": -1.0}, "max_outside"),
                            ({"poses": str(tmp_path / "no.npz")}, "no.npz")):
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            bt.build_pipeline(beam.Pipeline(), reader, str(tmp_path / "x"), assets["anchors"], **kwargs)
