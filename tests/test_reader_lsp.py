"""The LSP / LSPET reader: the real LSPET excerpt against joints.mat read independently, a fixture in the
original LSP layout (3, 14, N) written with savemat (flags, splits, broken records), and the TFRecord job
end to end on both (written people, the head made from neck and head top, image_missing accounting)."""

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
from lcr_tf.datasets import lsp
from lcr_tf.datasets import records as records_lib
from lcr_tf.datasets.base import RecordError

LSP14 = skeleton_lib.LSP14
LCR = skeleton_lib.LCR13
# A standing person facing the camera (its right on the image's left), LSP order, package pixels (MATLAB's
# are these + 0.5: MATLAB puts pixel i's centre at i + 1, the package at i + 0.5).
TEMPLATE = np.array([[40, 110], [42, 88], [44, 66], [56, 66], [58, 88], [60, 110], [34, 66], [36, 50],
                     [40, 35], [60, 35], [64, 50], [66, 66], [50, 30], [50, 14]], np.float64)
H, W = 120, 100


def _run(reader, prefix, job_assets):
    return bt.run(reader, str(prefix), job_assets["anchors"], [], poses=job_assets["poses"], num_shards=1,
                  pseudo_gt_views=2)


def _examples(prefix):
    import tensorflow as tf
    out = {}
    for raw in tf.data.TFRecordDataset(records_lib.shard_path(str(prefix), 0, 1)).as_numpy_iterator():
        ex = features.decode_example_numpy(raw)
        out[ex[features.IMAGE_ID].decode()] = ex
    return out


def _rejected(prefix):
    with open(records_lib.rejected_path(str(prefix))) as f:
        return [json.loads(line) for line in f]


# ----------------------------------------------------------------------------- real LSPET excerpt


def test_real_lspet_matches_the_raw_file(shared_data):
    root = os.path.join(shared_data, "annotations", "lspet")
    if not os.path.exists(os.path.join(root, "joints.mat")):
        pytest.skip(f"needs the LSPET excerpt in {root}")
    raw = scipy.io.loadmat(os.path.join(root, "joints.mat"))["joints"]  # (14, 3, 10000)
    reader = datasets.get_reader("lsp", input=root)
    keys = reader.list_items()
    assert keys == list(range(1, raw.shape[2] + 1)) and reader.joints()[0] == "lspet"
    for index in (1, 3, 200, 10000):  # 10000: annotated, image absent from the excerpt
        record = reader.read(index)
        assert record.image_id == f"im{index:05d}.jpg" and record.skeleton == "lsp14"
        assert record.image_path == os.path.join(root, "images", f"im{index:05d}.jpg")
        person, = record.people
        flags = raw[:, 2, index - 1]
        np.testing.assert_array_equal(person.annotated, flags == 1)
        np.testing.assert_array_equal(person.visible, flags == 1)
        np.testing.assert_allclose(person.pose2d[flags == 1], raw[flags == 1, :2, index - 1] - 0.5, rtol=1e-6)
        assert np.isnan(person.pose2d[flags == 0]).all()
        assert record.metadata["release"] == "lspet" and record.metadata["index"] == index
    # Image 1: the right ankle (joint 1 of the README's list) has flag 0 and a placeholder (0, -26.1).
    first = reader.read(1).people[0]
    assert raw[0, 2, 0] == 0 and not first.annotated[0]
    np.testing.assert_allclose(first.pose2d[LSP14.index("neck")], [96.38513933, 56.11143933], rtol=1e-6)


def test_real_lspet_job_accounts_for_absent_images(shared_data, job_assets, tmp_path):
    root = os.path.join(shared_data, "annotations", "lspet")
    if not os.path.isdir(os.path.join(root, "images")):
        pytest.skip(f"needs the LSPET excerpt in {root}")
    absent = [i for i in (9998, 9999, 10000) if not os.path.exists(os.path.join(root, "images", f"im{i:05d}.jpg"))]
    assert absent == [9998, 9999, 10000]  # the excerpt holds the first 200 images only
    reader = lsp.LspReader(root, indices="1-12,9998-10000")
    summary = _run(reader, tmp_path / "lspet", job_assets)
    assert summary["images"]["listed"] == 15 and summary["check"]["images_accounted"]
    assert summary["images"]["rejected_by_reason"].get("image_missing") == 3
    rejected = _rejected(tmp_path / "lspet")
    missing = sorted(r["image_id"] for r in rejected if r["code"] == "image_missing")
    assert missing == ["im09998.jpg", "im09999.jpg", "im10000.jpg"]
    examples = _examples(tmp_path / "lspet")
    assert len(examples) == summary["images"]["written"] >= 10
    # im00001: LCR's head is the mid-point of neck and head top; the unannotated right ankle is completed.
    ex = examples["im00001.jpg"]
    raw = scipy.io.loadmat(os.path.join(root, "joints.mat"))["joints"][:, :, 0]
    np.testing.assert_allclose(ex[features.POSE2D][0, LCR.index("head")], raw[[12, 13], :2].mean(axis=0) - 0.5,
                               atol=1e-3)
    np.testing.assert_allclose(ex[features.POSE2D][0, LCR.index("left_wrist")], raw[11, :2] - 0.5, atol=1e-3)
    assert not ex[features.ANNOTATED][0, LCR.index("right_ankle")]
    assert ex[features.COMPLETED][0, LCR.index("right_ankle")]
    assert ex[features.IMAGE_SOURCE] == b"lsp"


# ----------------------------------------------------------------------------- LSP (original layout) fixture


def _jpeg(path, value=120):
    assert cv2.imwrite(str(path), np.full((H, W, 3), value, np.uint8))


@pytest.fixture
def lsp_root(tmp_path):
    """An LSP-layout joints.mat of 2000 images (3, 14, 2000), in LSP's MATLAB coordinates (package pixels
    + 0.5); images 1, 2, 1001, 1002, 1003 on disk.

    Image 1: the template with the left wrist and head top occluded (flag 1); image 2: shifted so that its
    right wrist is left of the image; image 1002: a NaN coordinate (broken); image 1004: no file."""
    joints = np.zeros((3, 14, 2000))
    joints[:2] = (TEMPLATE + 3.5).T[:, :, None] + np.arange(2000)[None, None, :] * 0.001
    joints[2, [11, 13], 0] = 1
    joints[:2, :, 1] = (TEMPLATE - [40, 0] + 0.5).T
    joints[0, 5, 1001] = np.nan
    scipy.io.savemat(str(tmp_path / "joints.mat"), {"joints": joints})
    (tmp_path / "images").mkdir()
    for i in (1, 2, 1001, 1002, 1003):
        _jpeg(tmp_path / "images" / f"im{i:04d}.jpg")
    return tmp_path, joints


def test_lsp_layout_flags_and_splits(lsp_root):
    root, joints = lsp_root
    reader = lsp.LspReader(str(root), split="train")
    assert reader.list_items() == list(range(1, 1001))
    assert lsp.LspReader(str(root), split="test").list_items() == list(range(1001, 2001))
    assert len(lsp.LspReader(str(root)).list_items()) == 2000
    record = reader.read(1)
    assert record.image_id == "im0001.jpg" and record.metadata["release"] == "lsp"
    person, = record.people
    np.testing.assert_allclose(person.pose2d, TEMPLATE + 3.0, atol=1e-5)
    assert person.annotated.all()  # LSP annotates occluded joints too
    expected_visible = np.ones(14, bool)
    expected_visible[[LSP14.index("left_wrist"), LSP14.index("head_top")]] = False  # flag 1 = occluded
    np.testing.assert_array_equal(person.visible, expected_visible)
    np.testing.assert_allclose(reader.read(2).people[0].pose2d[6], [-6.0, 66.0], atol=1e-5)  # x < 0 kept
    with pytest.raises(RecordError, match=r"joints.mat: joints of image 1002, joint 6 \(left_ankle\)"):
        reader.read(1002)
    with pytest.raises(ValueError, match=r"not in the train split \(1\.\.1000\)"):
        lsp.LspReader(str(root), split="train", indices="999-1001").list_items()


def test_matlab_pixel_coordinates_become_the_package_convention(tmp_path):
    """A joint at MATLAB's (1, 1), the centre of the top-left pixel, comes out at (0.5, 0.5); one at
    (30, 40), the centre of pixel column 29, row 39, at (29.5, 39.5)."""
    assert lsp.PIXEL_OFFSET == -0.5
    joints = np.zeros((14, 3, 1))
    joints[:, :2, 0] = 10.0
    joints[:, 2, 0] = 1
    joints[0, :2, 0] = [1.0, 1.0]
    joints[12, :2, 0] = [30.0, 40.0]
    scipy.io.savemat(str(tmp_path / "joints.mat"), {"joints": joints})
    pose = lsp.LspReader(str(tmp_path)).read(1).people[0].pose2d
    np.testing.assert_allclose(pose[[0, 12]], [[0.5, 0.5], [29.5, 39.5]])
    np.testing.assert_array_equal(np.floor(pose[[0, 12]]), [[0, 0], [29, 39]])  # the pixel holding it
    np.testing.assert_allclose(lsp.to_lsp_coordinates(pose[[0, 12]]), [[1.0, 1.0], [30.0, 40.0]])


def test_bad_files_and_options_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="joints.mat does not exist"):
        lsp.load_joints(str(tmp_path / "joints.mat"))
    scipy.io.savemat(str(tmp_path / "joints.mat"), {"joints": np.zeros((14, 2, 5))})
    with pytest.raises(ValueError, match=r"joints.mat: 'joints' has shape \(14, 2, 5\)"):
        lsp.load_joints(str(tmp_path / "joints.mat"))
    bad = np.zeros((14, 3, 5))
    bad[3, 2, 4] = 2
    scipy.io.savemat(str(tmp_path / "joints.mat"), {"joints": bad})
    with pytest.raises(ValueError, match=r"image 5, joint 4 \(left_hip\) is 2, expected 0 or 1"):
        lsp.load_joints(str(tmp_path / "joints.mat"))
    bad[3, 2, 4] = 1
    scipy.io.savemat(str(tmp_path / "joints.mat"), {"joints": bad})
    assert lsp.load_joints(str(tmp_path / "joints.mat"))[0] == "lspet"
    with pytest.raises(ValueError, match="LSPET has no test split"):
        lsp.LspReader(str(tmp_path), split="test").list_items()
    with pytest.raises(ValueError, match="unknown split 'val'"):
        lsp.LspReader(str(tmp_path), split="val")
    assert lsp.parse_indices("3, 1-2,2", 5) == [1, 2, 3]
    for text in ("0", "4-9", "a", "3-1"):
        with pytest.raises(ValueError, match="lsp: indices item"):
            lsp.parse_indices(text, 5)
    with pytest.raises(RecordError, match="no image 6"):
        lsp.LspReader(str(tmp_path)).read(6)


def test_lsp_job_end_to_end(lsp_root, job_assets, tmp_path):
    root, joints = lsp_root
    argv = ["build_tfrecords", "--dataset=lsp", f"--input={root}", "--split=test",
            "--reader_option=indices=1001-1004", f"--anchors={job_assets['anchors']}", f"--poses={job_assets['poses']}",
            f"--output={tmp_path / 'out' / 'lsp'}", "--num_shards=1", "--pseudo_gt_views=2",
            "--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
    assert bt.main(argv) == 0
    with open(records_lib.summary_path(str(tmp_path / "out" / "lsp"))) as f:
        summary = json.load(f)
    assert summary["images"] == {"listed": 4, "read": 3, "written": 2, "written_empty": 0, "rejected": 2,
                                 "rejected_by_reason": {"image_missing": 1, "read_error": 1}}
    by_id = {r["image_id"] or r["key"]: r for r in _rejected(tmp_path / "out" / "lsp")}
    assert by_id["im1004.jpg"]["code"] == "image_missing"
    assert "joint 6 (left_ankle) is annotated but not finite" in by_id["im1002.jpg"]["reason"]
    examples = _examples(tmp_path / "out" / "lsp")
    assert sorted(examples) == ["im1001.jpg", "im1003.jpg"]
    ex = examples["im1001.jpg"]
    expected = joints[:2, :, 1000].T - 0.5  # MATLAB's pixel centres i + 1 -> the package's i + 0.5
    np.testing.assert_allclose(ex[features.POSE2D][0, LCR.index("head")], expected[[12, 13]].mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(ex[features.POSE2D][0, LCR.index("right_knee")], expected[1], atol=1e-3)
    assert ex[features.ANNOTATED][0].all() and ex[features.VISIBLE][0].all()
    assert (ex[features.IMAGE_HEIGHT], ex[features.IMAGE_WIDTH]) == (H, W)
