"""The Human3.6M reader (lcr_tf.datasets.h36m) on a small tree in the dataset's real layout: CDF pose
files written with cdflib (one record of F x 96 / F x 64 float32, as the dataset ships them), whose 2D is
the pinhole projection of the 3D with the published intrinsics, and 1000x1000 JPEG frames; broken files,
NaN frames, a short 2D file; protocol splits; one end-to-end run of the TFRecord job."""

import json
import os

import cv2
import numpy as np
import pytest

cdflib = pytest.importorskip("cdflib")
from cdflib import cdfwrite  # noqa: E402
from conftest import lift_lcr13  # noqa: E402

from beam_jobs import build_tfrecords as bt  # noqa: E402
from lcr_tf import datasets  # noqa: E402
from lcr_tf.contracts import features
from lcr_tf.contracts import skeleton as skeleton_lib  # noqa: E402
from lcr_tf.datasets import h36m  # noqa: E402
from lcr_tf.datasets import records as records_lib  # noqa: E402
from lcr_tf.datasets.base import RecordError  # noqa: E402
from lcr_tf.poses import body_model  # noqa: E402

H36M = skeleton_lib.H36M17
LCR = skeleton_lib.LCR13
CAM2, CAM3 = "55011271", "58860488"
FRAMES = 12


def _h36m17_from_lcr(lcr):
    """(N, 13, 3) LCR-13 metres -> (N, 17, 3) H36M17 metres."""
    return lift_lcr13(lcr, H36M, lambda hips, shoulders, head: {
        "pelvis": hips, "spine": (hips + shoulders) / 2, "thorax": shoulders,
        "neck_nose": head - [0, -0.07, 0], "head_top": head + [0, -0.09, 0]})


def _sequence(seed, offset_mm, frames=FRAMES):
    """(F, 17, 3) mm camera coordinates: body-model poses placed at ``offset_mm``."""
    lcr = body_model.sample_poses(frames, seed=seed).poses3d.astype(np.float64)
    return _h36m17_from_lcr(lcr) * 1000.0 + np.asarray(offset_mm, np.float64)


def _write_cdf(path, data, variable="Pose"):
    """``data`` (F, W) written as the dataset does: one record of an F x W float32 array."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = np.asarray(data, np.float32)
    cdf = cdfwrite.CDF(path, delete=True)
    spec = {"Variable": variable, "Data_Type": cdfwrite.CDF.CDF_FLOAT, "Num_Elements": 1, "Rec_Vary": True,
            "Dim_Sizes": list(data.shape)}
    cdf.write_var(spec, var_data=data[None])
    cdf.close()


def _to32(poses17, dims):
    """(F, 17, D) -> (F, 32 * D): the 17 joints at their MoCap indices, the other 15 at the pelvis."""
    full = np.repeat(poses17[:, :1], 32, axis=1).copy()
    full[:, h36m.MOCAP_INDICES] = poses17
    return full.reshape(poses17.shape[0], 32 * dims)


def _write_sequence(root, subject, sequence, camera, pose3d_mm, d2_frames=None):
    base = f"{sequence}.{camera}.cdf"
    pose2d = h36m.project(pose3d_mm, h36m.CAMERAS[camera].intrinsics)
    _write_cdf(os.path.join(root, subject, h36m.D3_FOLDER, base), _to32(pose3d_mm, 3))
    _write_cdf(os.path.join(root, subject, h36m.D2_FOLDER, base), _to32(pose2d, 2)[:d2_frames])
    return pose2d


def _write_frame(root, subject, sequence, camera, frame, size=(1000, 1000)):
    path = os.path.join(root, h36m.DEFAULT_FRAME_PATTERN.format(
        subject=subject, sequence=sequence, camera=camera, frame=frame))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.full((size[1], size[0], 3), 100, np.uint8))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """ROOT with S9, S11 (P2/P3 test subjects) and S1; returns (root, {name: (pose3d_mm, pose2d)})."""
    root = str(tmp_path_factory.mktemp("h36m"))
    truth = {}
    for name, subject, sequence, camera, seed, offset in (
            ("dir", "S11", "Directions", CAM3, 1, [0, 0, 5000]),
            ("dir1", "S11", "Directions 1", CAM3, 2, [300, 100, 4500]),
            ("dir_cam2", "S11", "Directions", CAM2, 3, [-200, 0, 5200]),
            # The left of this person is past the right edge of the 1000-pixel image (kept: a truncation).
            ("edge", "S9", "Sitting 1", CAM3, 4, [1500, 0, 4000]),
            ("sit2", "S9", "Sitting 2", CAM3, 5, [0, 0, 5000]),
            ("walk", "S1", "Walking", "54138969", 6, [0, 0, 5000])):
        pose3d = _sequence(seed, offset)
        if name == "edge":
            pose3d[5, H36M.index("right_knee"), 1] = np.nan  # frame 5 of the 3D is broken
        truth[name] = (pose3d, _write_sequence(root, subject, sequence, camera, pose3d))
    # 2D file shorter than the 3D one: frames 10 and 11 have no 2D.
    pose3d = _sequence(7, [0, 0, 5000])
    truth["greet"] = (pose3d, _write_sequence(root, "S9", "Greeting", CAM3, pose3d, d2_frames=10))
    # Wrong width (95 values per frame) in the 3D file; a 2D file whose variable has another name.
    _write_cdf(os.path.join(root, "S9", h36m.D3_FOLDER, f"Eating.{CAM3}.cdf"), np.zeros((FRAMES, 95)))
    _write_cdf(os.path.join(root, "S9", h36m.D2_FOLDER, f"Eating.{CAM3}.cdf"), np.zeros((FRAMES, 64)))
    _write_cdf(os.path.join(root, "S9", h36m.D3_FOLDER, f"Posing.{CAM3}.cdf"), _to32(pose3d, 3))
    _write_cdf(os.path.join(root, "S9", h36m.D2_FOLDER, f"Posing.{CAM3}.cdf"), np.zeros((FRAMES, 64)),
               variable="Position")
    _write_cdf(os.path.join(root, "S9", h36m.D3_FOLDER, f"_ALL.{CAM3}.cdf"), np.zeros((3, 96)))  # skipped
    with open(os.path.join(root, "S9", h36m.D3_FOLDER, f"Purchases.{CAM2}.cdf"), "wb") as f:  # not a CDF
        f.write(b"garbage" * 10)
    # Frames of the P3 test split; one missing (Greeting 5), one at the wrong size (Sitting 2, frame 10).
    for subject, sequence, frames in (("S11", "Directions", (0, 5, 10)), ("S9", "Sitting 1", (0, 5, 10)),
                                      ("S9", "Sitting 2", (0, 5)), ("S9", "Greeting", (0, 10))):
        for f in frames:
            _write_frame(root, subject, sequence, CAM3, f)
    _write_frame(root, "S9", "Sitting 2", CAM3, 10, size=(640, 480))
    return root, truth


def test_joint_indices_follow_the_h36m17_names():
    # The 32 MoCap joints by name (Human3.6M's skeleton), the 17 kept ones, in h36m17 order.
    mocap = {0: "pelvis", 1: "right_hip", 2: "right_knee", 3: "right_ankle", 6: "left_hip", 7: "left_knee",
             8: "left_ankle", 12: "spine", 13: "thorax", 14: "neck_nose", 15: "head_top", 17: "left_shoulder",
             18: "left_elbow", 19: "left_wrist", 25: "right_shoulder", 26: "right_elbow", 27: "right_wrist"}
    assert [mocap[int(i)] for i in h36m.MOCAP_INDICES] == list(H36M.joint_names)


def test_protocol_splits():
    p1 = h36m.protocol_split(1, "test")
    assert (p1.subjects, p1.cameras, p1.trials, p1.stride) == (("S11",), ("55011271",), None, 64)
    assert h36m.protocol_split(1, "train", 10).subjects == ("S1", "S5", "S6", "S7", "S8", "S9")
    assert h36m.protocol_split(1, "train", 10).stride == 10
    p2 = h36m.protocol_split(2, "test")
    assert (p2.subjects, p2.cameras, p2.trials, p2.stride) == (("S9", "S11"), None, None, 5)
    assert h36m.protocol_split(2, "train").subjects == ("S1", "S5", "S6", "S7", "S8")
    p3 = h36m.protocol_split(3, "test")
    assert (p3.subjects, p3.cameras, p3.trials, p3.stride) == (("S9", "S11"), ("58860488",), (1,), 5)
    p3_train = h36m.protocol_split(3, "train")
    assert (p3_train.subjects, p3_train.cameras, p3_train.trials) == (("S1", "S5", "S6", "S7", "S8"), None, None)
    assert "camera 3 (58860488), trial 1" in p3.describe()
    for args, message in (((4, "test"), "protocol"), ((1, "val"), "split"), ((1, "train", 0), "train_every")):
        with pytest.raises(ValueError, match=message):
            h36m.protocol_split(*args)


def test_trials_and_actions():
    assert h36m.trials_of(["Sitting 2", "Directions 1", "Sitting 1", "Directions", "TakingPhoto",
                           "TakingPhoto 1"]) == {"Directions": 1, "Directions 1": 2, "Sitting 1": 1,
                                                 "Sitting 2": 2, "TakingPhoto": 1, "TakingPhoto 1": 2}
    assert h36m.action_of("WalkingDog 1") == "WalkDog" and h36m.action_of("Phoning 2") == "Phoning"


def test_list_items_follows_the_protocol(tree):
    root, _ = tree
    p3 = h36m.H36MReader(root, "test", 3).list_items()
    # Camera 3, trial 1 only: S9's Eating, Greeting, Posing, Sitting 1 and S11's Directions; every 5th frame.
    assert p3 == ([("S9", s, CAM3, f) for s in ("Eating", "Greeting", "Posing", "Sitting 1") for f in (0, 5, 10)]
                  + [("S11", "Directions", CAM3, f) for f in (0, 5, 10)])
    p1 = h36m.H36MReader(root, "test", 1).list_items()
    assert p1 == [("S11", "Directions", CAM2, 0)]
    p2 = h36m.H36MReader(root, "test", 2).list_items()
    # A sequence whose files cannot be counted is one key, rejected with the reason.
    assert ("S9", "Purchases", CAM2, -1) in p2
    with pytest.raises(RecordError) as info:
        h36m.H36MReader(root, "test", 2).read(("S9", "Purchases", CAM2, -1))
    assert info.value.reason.startswith("S9/MyPoseFeatures/D3_Positions_mono/Purchases.55011271.cdf: cannot read "
                                        "the header of variable 'Pose'")
    assert len(p2) == 5 * 3 + 3 * 3 + 1
    assert ("S9", "Sitting 2", CAM3, 10) in p2 and ("S11", "Directions 1", CAM3, 5) in p2
    # Subjects of the split without pose files become one rejected key each.
    train = h36m.H36MReader(root, "train", 2, train_every=4)
    keys = train.list_items()
    assert keys == [("S1", "Walking", "54138969", f) for f in (0, 4, 8)] + [(s, "", "", -1) for s in
                                                                           ("S5", "S6", "S7", "S8")]
    with pytest.raises(RecordError, match="S5/MyPoseFeatures/D3_Positions_mono and .* hold no .cdf"):
        train.read(keys[3])
    with pytest.raises(ValueError, match="holds none of the subjects"):
        h36m.H36MReader(os.path.join(root, "S1"), "test", 1).list_items()
    with pytest.raises(ValueError, match="not a folder"):
        h36m.H36MReader(os.path.join(root, "nowhere"), "test", 1).list_items()


def test_read_gives_metres_body_centred_and_consistent_intrinsics(tree):
    root, truth = tree
    reader = h36m.H36MReader(root, "test", 2)
    key = ("S11", "Directions 1", CAM3, 5)
    record = reader.read(key)
    pose3d_mm, pose2d = truth["dir1"]
    assert record.image_id == "S11_Directions_1.58860488_000005" == reader.key_name(key)
    assert record.image_path == os.path.join(root, "S11", "Images", "Directions 1.58860488", "frame_000005.jpg")
    assert (record.height, record.width) == (1000, 1000) and record.skeleton == "h36m17"
    np.testing.assert_allclose(record.intrinsics, [1149.1407470703125, 1148.7989501953125, 519.8158569335938,
                                                   501.40264892578125])
    assert record.metadata == {"subject": "S11", "sequence": "Directions 1", "action": "Directions", "trial": 2,
                               "camera": CAM3, "camera_index": 3, "frame": 5, "split": "test", "protocol": 2}
    (person,) = record.people
    camera_m = pose3d_mm[5] / 1000.0
    centre = (camera_m[H36M.index("left_hip")] + camera_m[H36M.index("right_hip")]
              + camera_m[H36M.index("left_shoulder")] + camera_m[H36M.index("right_shoulder")]) / 4
    np.testing.assert_allclose(person.pose3d, camera_m - centre, atol=1e-5)
    np.testing.assert_allclose(person.extras["centre_camera"], centre, atol=1e-5)
    np.testing.assert_allclose(person.extras["pelvis_camera"], camera_m[0], atol=1e-5)
    np.testing.assert_allclose(person.pose2d, pose2d[5], atol=1e-3)
    assert person.annotated.all() and person.visible is None and person.person_id == "S11"
    # The axes are the package's: projecting the absolute 3D with the intrinsics gives the 2D.
    absolute = person.pose3d + person.extras["centre_camera"]
    np.testing.assert_allclose(h36m.project(absolute, record.intrinsics), person.pose2d, atol=0.05)
    assert person.extras["reprojection_px"] < 0.05
    # y points down: the head is above the ankles.
    assert person.pose3d[H36M.index("head_top"), 1] < person.pose3d[H36M.index("right_ankle"), 1]


def test_2d_and_principal_point_are_continuous_pixels(tmp_path):
    """A D2_Positions joint at (500, 400) comes out at (500, 400) + PIXEL_OFFSET (0: the 2D is a projection
    through the published calibration, already continuous), and cx, cy move by the same offset."""
    assert h36m.PIXEL_OFFSET == 0.0
    pose3d = _sequence(1, [0, 0, 5000], frames=1)
    _write_cdf(os.path.join(tmp_path, "S11", h36m.D3_FOLDER, f"Directions.{CAM3}.cdf"), _to32(pose3d, 3))
    pose2d = h36m.project(pose3d, h36m.CAMERAS[CAM3].intrinsics)
    pose2d[0, H36M.index("pelvis")] = [500.0, 400.0]
    _write_cdf(os.path.join(tmp_path, "S11", h36m.D2_FOLDER, f"Directions.{CAM3}.cdf"), _to32(pose2d, 2))
    record = h36m.H36MReader(str(tmp_path), "test", 3).read(("S11", "Directions", CAM3, 0))
    np.testing.assert_allclose(record.people[0].pose2d[H36M.index("pelvis")], [500.0, 400.0])
    cam = h36m.CAMERAS[CAM3]
    np.testing.assert_allclose(record.intrinsics, [cam.fx, cam.fy, cam.cx + h36m.PIXEL_OFFSET,
                                                   cam.cy + h36m.PIXEL_OFFSET])


def test_truncated_person_is_kept_with_joints_outside(tree):
    root, truth = tree
    record = h36m.H36MReader(root, "test", 3).read(("S9", "Sitting 1", CAM3, 0))
    pose2d = record.people[0].pose2d
    assert pose2d[:, 0].max() > 1000 > pose2d[:, 0].min()
    np.testing.assert_allclose(pose2d, truth["edge"][1][0], atol=1e-3)


def test_bad_records_name_file_and_field(tree):
    root, truth = tree
    reader = h36m.H36MReader(root, "test", 2)
    cases = {
        ("S9", "Sitting 1", CAM3, 5): "S9/MyPoseFeatures/D3_Positions_mono/Sitting 1.58860488.cdf: Pose frame 5 "
                                      "holds NaN or inf for right_knee",
        ("S9", "Greeting", CAM3, 10): "frame 10 is beyond S9/MyPoseFeatures/D2_Positions/Greeting.58860488.cdf "
                                      "(10 frames)",
        ("S9", "Eating", CAM3, 0): "S9/MyPoseFeatures/D3_Positions_mono/Eating.58860488.cdf: Pose has shape "
                                   "(12, 95), expected (1, F, 96) (32 joints x 3 per frame)",
        ("S9", "Posing", CAM3, 0): "S9/MyPoseFeatures/D2_Positions/Posing.58860488.cdf: has no variable 'Pose' "
                                   "(variables: ['Position'])",
        ("S9", "Sitting 1", "12345678", 0): "S9/Sitting 1.12345678.cdf: unknown camera id '12345678'",
        ("S9", "Sitting 1", CAM2, 0): "S9/MyPoseFeatures/D3_Positions_mono/Sitting 1.55011271.cdf does not exist",
    }
    for key, reason in cases.items():
        with pytest.raises(RecordError) as info:
            reader.read(key)
        assert info.value.reason.startswith(reason), info.value.reason
        assert info.value.key == key
    # The frame before the broken one and the last one the 2D file has are fine.
    # (Frame 4 is off the split's stride of 5: read from the file at stride 1.)
    np.testing.assert_allclose(reader.read(("S9", "Sitting 1", CAM3, 4)).people[0].pose2d, truth["edge"][1][4],
                               atol=1e-3)
    assert reader.read(("S9", "Greeting", CAM3, 9)).metadata["frame"] == 9


def test_options_and_pickling(tree):
    import pickle
    root, _ = tree
    reader = h36m.H36MReader(root, "test", 1, frame_pattern="{subject}/{action}-{trial}/{camera_index}/"
                                                            "img_{frame1:05d}.png", check_size=False)
    record = reader.read(("S11", "Directions", CAM2, 0))
    assert record.image_path == os.path.join(root, "S11", "Directions-1", "2", "img_00001.png")
    assert record.height is None and record.width is None
    assert len(pickle.dumps(reader)) < 1000
    for kwargs, message in (({"frame_pattern": "{subject}/{nope}.jpg"}, "frame_pattern"),
                            ({"protocol": 5}, "protocol"), ({"split": "val"}, "split")):
        with pytest.raises(ValueError, match=message):
            h36m.H36MReader(**{"input": root, "split": "test", "protocol": 1, **kwargs})
    # The job's option parsing reaches these options by name and type.
    options = datasets.parse_reader_options(h36m.H36MReader, ["train_every=3", "check_size=false",
                                                        "frame_pattern=x/{frame}.jpg"])
    assert options == {"train_every": 3, "check_size": False, "frame_pattern": "x/{frame}.jpg"}
    assert datasets.reader_class("h36m") is h36m.H36MReader


def test_build_tfrecords_end_to_end(tree, job_assets, tmp_path):
    import tensorflow as tf
    root, truth = tree
    prefix = str(tmp_path / "out" / "h36m_p3")
    status = bt.main(["build_tfrecords", "--dataset=h36m", f"--input={root}", "--split=test", "--protocol=3",
                      f"--anchors={job_assets['anchors']}", f"--poses={job_assets['poses']}", f"--output={prefix}",
                      "--num_shards=1", "--runner=DirectRunner", "--direct_running_mode=in_memory",
                      "--direct_num_workers=1"])
    assert status == 0
    summary = json.load(open(records_lib.summary_path(prefix)))
    # 15 listed: written S11 Directions 0/5/10, S9 Sitting 1 0/10, Greeting 0; the rest rejected.
    assert summary["images"]["listed"] == 15
    assert summary["images"]["written"] == 6
    assert summary["images"]["rejected_by_reason"] == {"read_error": 8, "image_missing": 1}
    assert summary["persons"]["pose3d_mocap"] == 6 and summary["persons"]["pose3d_pseudo_gt"] == 0
    assert summary["check"]["images_accounted"]
    rejected = {r["key"]: r for r in map(json.loads, open(records_lib.rejected_path(prefix)))}
    assert rejected["S9_Greeting.58860488_000005"]["code"] == "image_missing"
    assert "beyond" in rejected["S9_Greeting.58860488_000010"]["reason"]
    assert "(12, 95)" in rejected["S9_Eating.58860488_000000"]["reason"]
    assert "right_knee" in rejected["S9_Sitting_1.58860488_000005"]["reason"]
    examples = {}
    for raw in tf.data.TFRecordDataset(records_lib.shard_paths(prefix, 1)).as_numpy_iterator():
        ex = features.decode_example_numpy(raw)
        examples[ex[features.IMAGE_ID].decode()] = ex
    ex = examples["S11_Directions.58860488_000010"]
    pose3d_mm, pose2d = truth["dir"]
    lcr3d, _ = skeleton_lib.convert(pose3d_mm[10] / 1000.0, H36M, LCR)
    np.testing.assert_allclose(ex[features.POSE3D][0], skeleton_lib.centre_poses(lcr3d), atol=1e-4)
    lcr2d, _ = skeleton_lib.convert(pose2d[10], H36M, LCR)
    np.testing.assert_allclose(ex[features.POSE2D][0], lcr2d, atol=1e-2)
    np.testing.assert_allclose(ex[features.INTRINSICS], h36m.CAMERAS[CAM3].intrinsics, rtol=1e-6)
