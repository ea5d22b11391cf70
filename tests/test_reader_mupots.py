"""The MuPoTS-3D reader (lcr_tf.datasets.mupots) on small sequences in the dataset's real layout:
annot.mat / occlusion.mat written with scipy.io.savemat as MATLAB cell arrays (frames x people) of structs,
whose 2D is the projection of the 3D with known per-sequence intrinsics, and tiny JPEG frames; a missing
joint, a truncated person, invalid people, broken cells and files; one end-to-end run of the TFRecord job."""

import json
import os

import cv2
import numpy as np
import pytest
import scipy.io
from conftest import lift_lcr13

from beam_jobs import build_tfrecords as bt
from lcr_tf import datasets
from lcr_tf.contracts import features
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets import mupots
from lcr_tf.datasets import records as records_lib
from lcr_tf.datasets.base import RecordError
from lcr_tf.poses import body_model

MU = skeleton_lib.MUPOTS17
LCR = skeleton_lib.LCR13
W, H = 256, 192
# fx, fy, cx, cy of the two sequences.
K1 = np.array([300.0, 310.0, 130.0, 95.0])
K3 = np.array([280.0, 282.0, 121.0, 99.0])


def _mupots_from_lcr(lcr):
    """(N, 13, 3) LCR-13 metres -> (N, 17, 3) MuPoTS-17 metres."""
    def extras(hips, shoulders, head):
        neck = shoulders + [0, -0.05, 0]
        return {"head_top": head + [0, -0.1, 0], "neck": neck, "pelvis": hips, "spine": (hips + neck) / 2}
    return lift_lcr13(lcr, MU, extras)


def _project(points_mm, k):
    return np.stack([k[0] * points_mm[..., 0] / points_mm[..., 2] + k[2],
                     k[1] * points_mm[..., 1] / points_mm[..., 2] + k[3]], -1)


def _people(num_frames, num_people, seed, k, offsets_m):
    """(F, P, 17, 3) mm camera coordinates and (F, P, 17, 2) px projections."""
    lcr = body_model.sample_poses(num_frames * num_people, seed=seed).poses3d.astype(np.float64)
    pose3d = (_mupots_from_lcr(lcr).reshape(num_frames, num_people, MU.num_joints, 3)
              + np.asarray(offsets_m, np.float64)[None, :, None, :]) * 1000.0
    return pose3d, _project(pose3d, k)


def _cell(annot2, annot3, valid=1.0):
    """One person's struct, as MATLAB stores it: fields of 2x17 / 3x17 doubles and a scalar flag."""
    return {"annot2": annot2.T.copy(), "annot3": annot3.T.copy(), "univ_annot3": (annot3 * 0.95).T.copy(),
            "isValidFrame": np.array([[valid]])}


def _save_cells(path, variable, cells):
    arr = np.empty((len(cells), len(cells[0])), dtype=object)
    for f, row in enumerate(cells):
        for p, value in enumerate(row):
            arr[f, p] = value
    scipy.io.savemat(path, {variable: arr})


def _write_images(folder, frames):
    for f in frames:
        cv2.imwrite(os.path.join(folder, f"img_{f:06d}.jpg"), np.full((H, W, 3), 120, np.uint8))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("mupots")
    ts1, ts3 = root / "TS1", root / "TS3"
    for d in (ts1, ts3, root / "TS4", root / "TS5"):
        d.mkdir()
    # TS1: 4 frames x 3 people. Person 2 of frame 1 stands at the right edge (partly outside the image).
    p3d, p2d = _people(4, 3, seed=3, k=K1, offsets_m=[[-1.0, 0, 6], [0.3, 0, 6], [1.2, 0, 7]])
    p3d[1, 1] += [2200.0, 0, 0]
    p2d[1, 1] = _project(p3d[1, 1], K1)
    p2d[0, 2, MU.index("left_wrist")] = np.nan                        # a joint without 2D
    cells = [[_cell(p2d[f, p], p3d[f, p]) for p in range(3)] for f in range(4)]
    # Invalid people: 2D deliberately off their 3D, so a fit that used them would be wrong.
    cells[1][2] = _cell(p2d[1, 2] + 40.0, p3d[1, 2], valid=0.0)
    cells[3] = [_cell(p2d[3, p] + 40.0, p3d[3, p], valid=0.0) for p in range(3)]
    cells[2][1]["annot3"] = cells[2][1]["annot3"][:, :16]              # broken: 16 joints
    _save_cells(str(ts1 / "annot.mat"), "annotations", cells)
    occlusion = [[np.zeros((1, 17)) for _ in range(3)] for _ in range(4)]
    occlusion[0][0][0, MU.index("right_wrist")] = 1.0
    _save_cells(str(ts1 / "occlusion.mat"), "occlusion_labels", occlusion)
    _write_images(str(ts1), range(4))
    # TS3: 3 frames x 2 people, no occlusion.mat; a cell without univ_annot3; an empty cell (no person).
    q3d, q2d = _people(3, 2, seed=4, k=K3, offsets_m=[[-0.6, 0, 5], [0.6, 0, 5]])
    cells3 = [[_cell(q2d[f, p], q3d[f, p]) for p in range(2)] for f in range(3)]
    del cells3[1][1]["univ_annot3"]
    cells3[2][1] = np.zeros((0, 0))
    _save_cells(str(ts3 / "annot.mat"), "annotations", cells3)
    _write_images(str(ts3), range(2))                                  # frame 2's image is missing
    scipy.io.savemat(str(root / "TS4" / "annot.mat"), {"annots": np.zeros((2, 2))})  # wrong variable
    return str(root), {"TS1": (p3d, p2d), "TS3": (q3d, q2d)}


def test_fit_intrinsics_recovers_the_camera():
    rng = np.random.default_rng(0)
    points = rng.uniform([-2, -1, 3], [2, 1, 8], (50, 3))
    k, rms = mupots.fit_intrinsics(points, _project(points, K1))
    np.testing.assert_allclose(k, K1, rtol=1e-9)
    assert rms < 1e-9
    with pytest.raises(ValueError, match="at least 2"):
        mupots.fit_intrinsics(points[:1], _project(points[:1], K1))
    with pytest.raises(ValueError, match="not determined"):
        same = np.repeat(points[:1], 5, axis=0)
        mupots.fit_intrinsics(same, _project(same, K1))


def test_2d_is_continuous_pixels_and_the_fit_follows_it(tmp_path):
    """An annot2 joint at (100, 50) comes out at (100, 50) + PIXEL_OFFSET (0: annot2 is a projection of
    annot3, already continuous); the fitted cx, cy are those of the 2D as read."""
    assert mupots.PIXEL_OFFSET == 0.0
    p3d, p2d = _people(2, 1, seed=3, k=K1, offsets_m=[[0.0, 0, 6]])
    cells = [[_cell(p2d[f, 0], p3d[f, 0])] for f in range(2)]
    cells[1][0]["annot2"][:, 0] = [100.0, 50.0]
    cells[1][0]["isValidFrame"] = np.array([[0.0]])  # kept out of the fit
    _save_cells(str(tmp_path / "annot.mat"), "annotations", cells)
    seq = mupots.load_sequence(str(tmp_path), "TS1")
    np.testing.assert_allclose(seq.annot2[1, 0, 0], [100.0 + mupots.PIXEL_OFFSET, 50.0 + mupots.PIXEL_OFFSET])
    np.testing.assert_allclose(seq.intrinsics, K1 + [0, 0, mupots.PIXEL_OFFSET, mupots.PIXEL_OFFSET], rtol=1e-6)


def test_list_items_and_sequences_option(tree):
    root, _ = tree
    reader = mupots.MupotsReader(root, sequences="1,TS3,4,5")
    assert reader.sequences == (1, 3, 4, 5)
    assert reader.list_items() == [(1, f) for f in range(4)] + [(3, f) for f in range(3)] + [(4, -1), (5, -1)]
    with pytest.raises(RecordError, match="TS5/annot.mat does not exist"):
        reader.read((5, -1))
    with pytest.raises(RecordError, match="TS4/annot.mat: has no variable 'annotations'"):
        reader.read((4, -1))
    assert reader.key_name((5, -1)) == "TS5" and reader.key_name((3, 2)) == "TS3_000002"
    assert mupots.MupotsReader(root).sequences == tuple(range(1, 21))
    for bad in ("0", "21", "1,x"):
        with pytest.raises(ValueError, match="sequences"):
            mupots.MupotsReader(root, sequences=bad)
    with pytest.raises(ValueError, match="split"):
        mupots.MupotsReader(root, split="test")
    with pytest.raises(ValueError, match="holds none of the folders"):
        mupots.MupotsReader(root, sequences="7").list_items()
    assert datasets.reader_class("mupots") is mupots.MupotsReader
    import pickle
    reader.read((1, 0))  # fills the cache, which is not pickled
    assert len(pickle.dumps(reader)) < 1000


def test_read_parses_the_cell_array(tree):
    root, truth = tree
    p3d, p2d = truth["TS1"]
    reader = mupots.MupotsReader(root, sequences="1,3")
    record = reader.read((1, 0))
    assert record.image_id == "TS1_000000" and record.skeleton == "mupots17"
    assert record.image_path == os.path.join(root, "TS1", "img_000000.jpg")
    np.testing.assert_allclose(record.intrinsics, K1, rtol=1e-5)     # fitted on valid people only
    assert record.metadata["intrinsics_rms_px"] < 1e-6 and record.metadata["invalid_people"] == []
    assert [p.person_id for p in record.people] == ["TS1_p1", "TS1_p2", "TS1_p3"]
    for q, person in enumerate(record.people):
        camera_m = p3d[0, q] / 1000.0
        centre = camera_m[MU.centre_joints].mean(0)
        np.testing.assert_allclose(person.pose3d, camera_m - centre, atol=1e-5)
        np.testing.assert_allclose(person.extras["centre_camera"], centre, atol=1e-5)
        np.testing.assert_allclose(person.extras["pelvis_camera"], camera_m[MU.index("pelvis")], atol=1e-5)
        np.testing.assert_allclose(person.extras["univ_pose3d_camera"], camera_m * 0.95, atol=1e-5)
        assert person.extras["valid"]
    # The joint without 2D is not annotated (nor visible); the occluded joint is annotated, not visible.
    third = record.people[2]
    assert third.annotated.sum() == 16 and not third.annotated[MU.index("left_wrist")]
    assert np.isnan(third.pose2d[MU.index("left_wrist")]).all()
    np.testing.assert_allclose(third.pose2d[third.annotated], p2d[0, 2][third.annotated], atol=1e-3)
    first = record.people[0]
    assert first.annotated.all() and first.extras["occluded"].sum() == 1
    assert not first.visible[MU.index("right_wrist")] and first.visible.sum() == 16


def test_truncated_and_invalid_people(tree):
    root, truth = tree
    reader = mupots.MupotsReader(root, sequences="1")
    record = reader.read((1, 1))
    assert [p.person_id for p in record.people] == ["TS1_p1", "TS1_p2"]
    assert record.metadata["invalid_people"] == ["TS1_p3"]
    edge = record.people[1]
    inside = (edge.pose2d[:, 0] < W)
    assert 0 < inside.sum() < 17                                       # some joints are past the right edge
    np.testing.assert_array_equal(edge.visible, inside)                # visibility: inside the image
    assert edge.annotated.all()
    kept = mupots.MupotsReader(root, sequences="1", keep_invalid=True).read((1, 1))
    assert [p.extras["valid"] for p in kept.people] == [True, True, False]
    with pytest.raises(RecordError, match=r"TS1/annot.mat: annotations\{4,:\}.isValidFrame is 0 for every "):
        reader.read((1, 3))


def test_broken_cells_reject_their_frame(tree):
    root, truth = tree
    reader = mupots.MupotsReader(root, sequences="1,3")
    with pytest.raises(RecordError) as info:
        reader.read((1, 2))
    assert info.value.reason == "TS1/annot.mat: annotations{3,2}.annot3 has shape (3, 16), expected (3, 17)"
    with pytest.raises(RecordError) as info:
        reader.read((3, 1))
    assert info.value.reason == "TS3/annot.mat: annotations{2,2} has no field 'univ_annot3'"
    with pytest.raises(RecordError, match="frame 9 is not in TS3/annot.mat"):
        reader.read((3, 9))
    # An empty cell is no person; without occlusion.mat, visibility is the image bounds only.
    record = reader.read((3, 0))
    assert len(record.people) == 2 and record.people[0].extras["occluded"] is None
    assert record.people[0].visible.all()
    np.testing.assert_allclose(record.intrinsics, K3, rtol=1e-5)
    record = reader.read((3, 2))
    assert [p.person_id for p in record.people] == ["TS3_p1"]
    assert record.people[0].visible is None                            # no image to measure, no occlusion file


def test_parse_rejects_inconsistent_files():
    cells = np.empty((2, 1), dtype=object)
    cells[0, 0] = cells[1, 0] = np.zeros((0, 0))
    occlusion = np.empty((3, 1), dtype=object)
    with pytest.raises(ValueError, match="occlusion_labels is 3x1, TS2/annot.mat annotations is 2x1"):
        mupots.parse_annotations(cells, occlusion, "TS2/annot.mat", "TS2/occlusion.mat")
    with pytest.raises(ValueError, match="not a cell or struct array"):
        mupots.parse_annotations(np.zeros((2, 3)), None, "TS2/annot.mat")
    cells[0, 0] = np.array([[1.0, 2.0]])
    parsed = mupots.parse_annotations(cells, None, "TS2/annot.mat")
    assert parsed.frame_errors == {0: "TS2/annot.mat: annotations{1,1} is a ndarray, expected a struct"}
    assert parsed.intrinsics is None and "no intrinsics" in parsed.intrinsics_error


def test_build_tfrecords_end_to_end(tree, job_assets, tmp_path):
    import tensorflow as tf
    root, truth = tree
    prefix = str(tmp_path / "out" / "mupots")
    status = bt.main(["build_tfrecords", "--dataset=mupots", f"--input={root}", "--reader_option=sequences=1,3,5",
                      f"--anchors={job_assets['anchors']}", f"--poses={job_assets['poses']}", f"--output={prefix}",
                      "--num_shards=1", "--runner=DirectRunner", "--direct_running_mode=in_memory",
                      "--direct_num_workers=1"])
    assert status == 0
    summary = json.load(open(records_lib.summary_path(prefix)))
    assert summary["images"]["listed"] == 8
    assert summary["images"]["written"] == 3                           # TS1 0, 1 and TS3 0
    assert summary["images"]["rejected_by_reason"] == {"read_error": 4, "image_missing": 1}
    assert summary["persons"]["written"] == 7 and summary["persons"]["pose3d_mocap"] == 7
    assert summary["check"]["images_accounted"] and summary["check"]["persons_accounted"]
    rejected = {r["key"]: r for r in map(json.loads, open(records_lib.rejected_path(prefix)))}
    assert rejected["TS3_000002"]["code"] == "image_missing"
    assert "annotations{3,2}.annot3" in rejected["TS1_000002"]["reason"]
    assert rejected["TS5"]["reason"] == "TS5/annot.mat does not exist"
    examples = {}
    for raw in tf.data.TFRecordDataset(records_lib.shard_paths(prefix, 1)).as_numpy_iterator():
        ex = features.decode_example_numpy(raw)
        examples[ex[features.IMAGE_ID].decode()] = ex
    ex = examples["TS1_000000"]
    p3d, p2d = truth["TS1"]
    lcr3d, _ = skeleton_lib.convert(p3d[0] / 1000.0, MU, LCR)
    np.testing.assert_allclose(ex[features.POSE3D], skeleton_lib.centre_poses(lcr3d), atol=1e-4)
    np.testing.assert_allclose(ex[features.INTRINSICS], K1, rtol=1e-5)
    # Person 1's occluded right wrist is annotated but not visible; person 3's missing wrist is completed.
    assert not ex[features.VISIBLE][0, LCR.index("right_wrist")] and ex[features.ANNOTATED][0].all()
    assert ex[features.COMPLETED][2, LCR.index("left_wrist")] and not ex[features.ANNOTATED][2, LCR.index("left_wrist")]
