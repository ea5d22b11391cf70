"""The slow-frame filter against hand-computed distances, and the Beam job ``beam_jobs.mocap_poses`` on
a folder of good and broken files and on the real MoCap folder."""

import json
import os
import subprocess
import sys

import apache_beam as beam
import numpy as np
import pytest
from conftest import assert_no_library_notices

# pytest puts the tests folder on sys.path, so the sibling test module's builders are importable.
from test_mocap_rigs import humanoid_asf_amc, humanoid_bvh, with_channel

from beam_jobs import mocap_poses, runner_options
from lcr_tf.poses import mocap, pose_corpus

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_drop_slow_frames_compares_with_the_last_kept_frame():
    # One joint of two moves along x; mean per-joint distance = |dx| / 2.
    x_mm = np.array([0, 6, 12, 18, 30, 31, 31, 50])
    poses = np.zeros((8, 2, 3))
    poses[:, 0, 0] = x_mm / 1000.0
    # D = 5 mm, i.e. |dx| >= 10 mm from the last kept: 0 kept; 6 (3 mm) no; 12 (6) kept; 18 (3) no;
    # 30 (9) kept; 31 (0.5) no; 31 no; 50 (10) kept. Comparing with the previous frame instead would
    # keep only 0, 30 and 50.
    np.testing.assert_array_equal(mocap.drop_slow_frames(poses, 5.0), [0, 2, 4, 7])
    np.testing.assert_array_equal(mocap.drop_slow_frames(poses, 5.0, window=1), [0, 2, 4, 7])
    np.testing.assert_array_equal(mocap.drop_slow_frames(poses, 0.0), np.arange(8))
    np.testing.assert_array_equal(mocap.drop_slow_frames(poses, 1e6), [0])
    assert mocap.drop_slow_frames(np.zeros((0, 2, 3)), 5.0).shape == (0,)
    with pytest.raises(ValueError, match=r"\(F, J, 3\)"):
        mocap.drop_slow_frames(np.zeros((4, 3)), 5.0)


def test_drop_slow_frames_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    poses = np.cumsum(rng.normal(0, 0.004, size=(500, 13, 3)), axis=0)
    kept, last = [0], 0
    for f in range(1, len(poses)):
        if np.linalg.norm(poses[f] - poses[last], axis=-1).mean() >= 0.02:
            kept.append(f)
            last = f
    np.testing.assert_array_equal(mocap.drop_slow_frames(poses, 20.0), kept)


def _knee_bvh(angles_deg):
    """The cmu_bvh_a humanoid (cm) at rest but for the left knee (LeftLeg) bent by ``angles_deg`` about
    x, one frame per angle."""
    head, motion = humanoid_bvh("cmu_bvh_a").split("MOTION")
    rest_row = motion.strip().split("\n")[2]  # after 'Frames:' and 'Frame Time:'
    n = len(angles_deg)
    text = f"{head}MOTION\nFrames: {n}\nFrame Time: 0.008333\n" + "\n".join([rest_row] * n) + "\n"
    return with_channel(text, "LeftLeg", "Xrotation", angles_deg)


def _make_folder(root):
    good = root / "good"
    broken = root / "broken"
    good.mkdir()
    broken.mkdir()
    # Knee angles 0, 10, 20, 25, 60 deg: only the left ankle moves, on a 45 cm shin, so the mean
    # per-joint distance between two frames is 2 * 450 mm * sin(|da| / 2) / 13: frame 1 -> 6.03 mm from
    # frame 0, frame 2 -> 12.02 mm, frame 3 -> 3.02 mm from frame 2, frame 4 -> 23.68 mm from frame 2.
    # With D = 10 mm the kept frames are 0, 2, 4.
    (good / "walk.bvh").write_text(_knee_bvh([0, 10, 20, 25, 60]))
    amc = humanoid_asf_amc(good)  # 99.asf + 99_01.amc, two frames (rest, turned 90 deg: 0.5 m apart)
    text = humanoid_bvh("daz")
    (broken / "truncated.bvh").write_text(text.rsplit("\n", 2)[0] + "\n")
    (broken / "nan.bvh").write_text(text.replace("Frame Time: 0.008333\n0 0 0", "Frame Time: 0.008333\n0 nan 0"))
    (broken / "odd.bvh").write_text(text.replace("lThigh", "leftThigh"))
    (broken / "55_01.amc").write_text(open(amc).read())  # no 55.asf: needs the fallback
    (broken / "notes.txt").write_text("not motion")
    (broken / "02.asf").write_text((good / "99.asf").read_text())
    (broken / "02_01.amc").write_text(open(amc).read().replace("head 0 0 0\n", "", 1))  # frame 0 lacks head
    return good, broken


def _run(files, output, **kwargs):
    with beam.Pipeline(options=runner_options.pipeline_options()) as p:
        mocap_poses.build_pipeline(p, files, str(output), **kwargs)
    return pose_corpus.load(str(output)), json.load(open(str(output)[:-4] + ".json"))


def test_job_on_good_and_broken_files(tmp_path):
    good, broken = _make_folder(tmp_path)
    files = mocap_poses.list_inputs(str(tmp_path))
    assert [os.path.basename(f) for f in files] == ["02_01.amc", "55_01.amc", "nan.bvh", "odd.bvh",
                                                    "truncated.bvh", "99_01.amc", "walk.bvh"]
    corpus, meta = _run(files, tmp_path / "out" / "poses.npz", min_distance_mm=10.0, input_description="tmp")
    # walk.bvh keeps frames 0, 2, 4; 99_01.amc keeps both of its frames.
    assert corpus.trial.tolist() == ["99_01.amc"] * 2 + ["walk.bvh"] * 3
    assert corpus.frame.tolist() == [0, 1, 0, 2, 4]
    assert corpus.poses3d.shape == (5, 13, 3) and meta["skeleton"] == "lcr13" and meta["units"] == "m"
    # Frame 4 of the walk: Rx(60) swings the shin (0, -45, 0) about the knee at (10, -45, 0) cm to
    # (0, -45 cos 60, -45 sin 60): the ankle is at (10, -67.5, -38.97) cm in MoCap axes, i.e. at
    # (10, -90, -38.97) from the centre (0, 22.5, 0), and (x, -y, -z) in camera axes.
    np.testing.assert_allclose(corpus.poses3d[4, 1], [0.10, 0.90, 0.45 * np.sin(np.pi / 3)], atol=1e-6)
    counts = {f["trial"]: (f["frames_total"], f["frames_kept"], f["rig"], f["length_unit"], f["format"])
              for f in meta["files"]}
    assert counts == {"99_01.amc": (2, 2, "cmu_asf", "inch/2.54", "amc"),
                      "walk.bvh": (5, 3, "cmu_bvh_a", "cm", "bvh")}
    assert meta["counts"] == {"files_read": 2, "files_rejected": 5, "frames_total": 7, "frames_kept": 5}
    reasons = {os.path.basename(r["path"]): r["reason"] for r in meta["rejected"]}
    assert set(reasons) == {"02_01.amc", "55_01.amc", "nan.bvh", "odd.bvh", "truncated.bvh"}
    assert "incomplete frame: frame 0" in reasons["02_01.amc"] and "'head'" in reasons["02_01.amc"]
    assert reasons["55_01.amc"].startswith("no skeleton file")
    assert "nan in channel hip.Yposition" in reasons["nan.bvh"]
    assert "unknown rig: joints lThigh not found" in reasons["odd.bvh"]
    assert "truncated" in reasons["truncated.bvh"]
    assert meta["parameters"] == {"input": "tmp", "min_distance_mm": 10.0, "asf_fallback": None,
                                  "bvh_length_unit": "auto"}


def test_job_fallback_asf_glob_and_unsupported_files(tmp_path):
    good, broken = _make_folder(tmp_path)
    files = mocap_poses.list_inputs(str(broken / "*"))
    assert sorted(os.path.basename(f) for f in files) == ["02_01.amc", "55_01.amc", "nan.bvh", "notes.txt",
                                                         "odd.bvh", "truncated.bvh"]
    corpus, meta = _run(files, tmp_path / "poses.npz", asf_fallback=str(good / "99.asf"))
    assert corpus.trial.tolist() == ["55_01.amc"] * 2
    assert meta["files"][0]["skeleton_file"].endswith("99.asf")
    reasons = {os.path.basename(r["path"]): r["reason"] for r in meta["rejected"]}
    assert "unsupported file type '.txt'" in reasons["notes.txt"]
    assert len(reasons) == 5


def test_job_fails_only_when_nothing_is_read(tmp_path):
    _, broken = _make_folder(tmp_path)
    files = [str(broken / "nan.bvh"), str(broken / "odd.bvh")]
    with pytest.raises(Exception, match="no MoCap file could be read"):
        _run(files, tmp_path / "poses.npz")
    assert not (tmp_path / "poses.npz").exists()


def test_trial_names_stay_distinct():
    names = mocap_poses.trial_names(["a/bvh/01_01.bvh", "a/amc/01_01.amc", "b/x/07_01.bvh", "c/y/07_01.bvh"])
    assert names == {"a/bvh/01_01.bvh": "01_01.bvh", "a/amc/01_01.amc": "01_01.amc",
                     "b/x/07_01.bvh": "x/07_01.bvh", "c/y/07_01.bvh": "y/07_01.bvh"}


def test_command_line(tmp_path, capsys):
    good, _ = _make_folder(tmp_path)
    assert mocap_poses.main(["mocap_poses", "--help"]) == 0
    assert "--min_distance_mm" in capsys.readouterr().out
    assert mocap_poses.main(["mocap_poses", "--output=x.npz"]) == 2
    assert "--input" in capsys.readouterr().err
    out = tmp_path / "cli" / "poses.npz"
    assert mocap_poses.main(["mocap_poses", f"--input={good}", f"--output={out}", "--skeleton=h36m17",
                             "--bvh_length_unit=cm", "--runner=DirectRunner"]) == 0
    corpus = pose_corpus.load(str(out), skeleton="h36m17")
    assert len(corpus) == 7 and corpus.metadata["parameters"]["bvh_length_unit"] == "cm"


@pytest.mark.slow
def test_the_module_runs_as_a_program_on_worker_processes(tmp_path):
    """``python -m beam_jobs.mocap_poses`` as users run it, on two worker processes: the same corpus, and
    no library start-up notice from the job's process or its workers."""
    good, _ = _make_folder(tmp_path)
    out = tmp_path / "program" / "poses.npz"
    done = subprocess.run([sys.executable, "-m", "beam_jobs.mocap_poses", f"--input={good}", f"--output={out}",
                           "--skeleton=h36m17", "--bvh_length_unit=cm", "--direct_running_mode=multi_processing",
                           "--direct_num_workers=2"], cwd=_REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(pose_corpus.load(str(out), skeleton="h36m17")) == 7
    assert_no_library_notices(done.stdout, done.stderr)


@pytest.mark.shared_data
def test_job_on_the_real_folder(mocap_dir, tmp_path):
    files = mocap_poses.list_inputs(mocap_dir)
    assert len(files) == 54
    corpus, meta = _run(files, tmp_path / "poses.npz", min_distance_mm=30.0, input_description=mocap_dir)
    read = {os.path.relpath(f["path"], mocap_dir) for f in meta["files"]}
    rejected = {os.path.relpath(r["path"], mocap_dir): r["reason"] for r in meta["rejected"]}
    assert read | set(rejected) == {os.path.relpath(f, mocap_dir) for f in files} and not read & set(rejected)
    # The AMC files without their subject's ASF are the only rejections, for that reason.
    no_asf = ["02_01", "05_06", "05_07", "05_13", "88_01", "90_02", "90_05", "90_08", "90_11"]
    assert sorted(rejected) == sorted(f"asf_amc/{t}.amc" for t in no_asf)
    assert all(r.startswith("no skeleton file") for r in rejected.values())
    assert {f["rig"] for f in meta["files"]} == {"cmu_asf", "cmu_bvh_a", "cmu_bvh_b", "daz", "iclone_cc"}
    assert {f["trial"] for f in meta["files"]} >= {"01_01.amc", "01_01.bvh", "standard.bvh"}
    assert sum(f["frames_kept"] for f in meta["files"]) == len(corpus)
    assert all(0 < f["frames_kept"] <= f["frames_total"] for f in meta["files"])
    assert np.isfinite(corpus.poses3d).all() and np.abs(corpus.poses3d).max() < 1.5
