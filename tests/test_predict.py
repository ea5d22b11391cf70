"""python -m lcr_tf.predict on a folder of images, a non-image file, a broken image and a short video."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf
from test_export import D, K, noise, tiny_model
from test_image_header import GIF, png_declaring

from lcr_tf import predict
from lcr_tf.contracts import serving
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.serving import export as export_lib
from lcr_tf.serving import inference

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMES = 3


def write_video(path, frames):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame[..., ::-1])
    writer.release()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Exports the tiny model, writes the inputs and runs the command once; returns the paths."""
    root = tmp_path_factory.mktemp("predict")
    model_dir = str(root / "run")
    inference.save_model_dir(tiny_model(), model_dir)
    params = inference.default_params(K, "paper", max_candidates=40, max_detections=D)
    base = str(root / "serving")
    export_lib.export(model_dir, base, params=params)
    inputs = root / "inputs"
    (inputs / "sub").mkdir(parents=True)
    cv2.imwrite(str(inputs / "a.png"), noise(48, 64, 30))
    cv2.imwrite(str(inputs / "sub" / "b.jpg"), noise(40, 30, 31)[..., 0])  # grey JPEG
    (inputs / "notes.txt").write_text("not an image\n")
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (inputs / "huge.png").write_bytes(png_declaring(30000, 30000))  # over the model's limits
    (inputs / "anim.gif").write_bytes(GIF)  # an image, but not one the model serves
    frames = [np.full((48, 64, 3), 40, np.uint8) for _ in range(FRAMES)]
    for i, frame in enumerate(frames):
        frame[8:40, 10 + 15 * i: 25 + 15 * i] = 230  # a bright bar moving right: the frames differ
    write_video(str(inputs / "clip.avi"), frames)
    out = str(root / "out")
    result = subprocess.run([sys.executable, "-m", "lcr_tf.predict", f"--saved_model={base}",
                             f"--input={inputs}", f"--output_dir={out}"],
                            cwd=_REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"base": base, "inputs": str(inputs), "out": out, "result": result}


def load(out, name):
    with open(os.path.join(out, name + ".json")) as f:
        return json.load(f)


def test_outputs_per_image_and_frame(run):
    out = run["out"]
    names = ["a", "sub__b"] + [f"clip_frame{i:06d}" for i in range(FRAMES)]
    for name in names:
        for suffix in (".json", ".png", "_3d.png"):
            assert os.path.isfile(os.path.join(out, name + suffix)), name + suffix
    record = load(out, "a")
    assert record["joint_names"] == list(skeleton_lib.LCR13.joint_names) and record["skeleton"] == "lcr13"
    assert record["image_size"] == {"height": 48, "width": 64} and record["frame"] is None
    assert "metres" in record["units"]["pose3d_camera_m"] and "y down" in record["frames"]["2d"]
    people = record["people"]
    assert 1 <= len(people) <= D
    assert [p["score"] for p in people] == sorted((p["score"] for p in people), reverse=True)
    for p in people:
        assert np.asarray(p["pose2d_px"]).shape == (13, 2) and np.asarray(p["pose3d_camera_m"]).shape == (13, 3)
        np.testing.assert_allclose(np.asarray(p["pose3d_camera_m"]) - p["pose3d_body_centred_m"],
                                   np.tile(p["translation_m"], (13, 1)), atol=2e-4)
    overlay = cv2.imread(os.path.join(out, "a.png"))
    assert overlay.shape == (48, 64, 3)
    assert cv2.imread(os.path.join(out, "a_3d.png")) is not None
    assert load(out, "sub__b")["image_size"] == {"height": 40, "width": 30}


def test_non_images_reported_and_skipped(run):
    """Files that are not JPEG or PNG, broken, or over the model's limits are skipped with the reason the
    header reader gives (before anything is decoded); the others are written."""
    stderr = run["result"].stderr
    skipped = {line.split(": ", 1)[0].rsplit(os.sep, 1)[-1]: line.split(": ", 1)[1]
               for line in stderr.splitlines() if line.startswith("skipped ")}
    assert set(skipped) == {"notes.txt", "broken.png", "huge.png", "anim.gif"}, stderr[-2000:]
    assert skipped["notes.txt"].startswith("not a JPEG or PNG image") and "GIF89a" in skipped["anim.gif"]
    assert skipped["broken.png"].startswith("PNG cut short: 28 bytes")
    assert skipped["huge.png"].startswith("30000x30000 pixels (width x height): over the limits of this model, "
                                          f"{serving.MAX_IMAGE_SIDE} pixels per side")
    assert "wrote 5 results" in run["result"].stdout and "skipped 4 file(s)" in run["result"].stdout
    assert "7/7" in stderr  # the progress bar counted every file
    assert not any(n.startswith(("notes", "broken", "huge", "anim")) for n in os.listdir(run["out"]))


def test_video_frames_in_order(run):
    """Each frame's JSON holds the answer of the float signature on that frame, read independently."""
    loaded = tf.saved_model.load(export_lib.latest_version_dir(run["base"]))
    capture = cv2.VideoCapture(os.path.join(run["inputs"], "clip.avi"))
    answers = []
    for i in range(FRAMES):
        ok, bgr = capture.read()
        assert ok
        out = loaded.signatures["detect_float"](images=tf.constant(bgr[None, ..., ::-1], tf.float32))
        record = load(run["out"], f"clip_frame{i:06d}")
        assert record["frame"] == i and record["source"].endswith("clip.avi")
        n = int(out["num_detections"][0])
        assert len(record["people"]) == n
        np.testing.assert_allclose([p["score"] for p in record["people"]], out[serving.SCORE].numpy()[0, :n], atol=1e-5)
        answers.append(out[serving.POSE2D].numpy()[0, :n])
    capture.release()
    assert not np.allclose(answers[0][:1], answers[2][:1])  # different frames, different answers


def test_helpers(tmp_path):
    assert predict.is_video("x/y.MP4") and not predict.is_video("x.png")
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        predict.list_inputs(str(tmp_path / "missing"))
    (tmp_path / ".hidden").write_text("")
    (tmp_path / "b.png").write_text("")
    (tmp_path / "a.png").write_text("")
    assert [os.path.basename(p) for p in predict.list_inputs(str(tmp_path))] == ["a.png", "b.png"]
    record = predict.to_record({"num_detections": np.int32(1), serving.SCORE: np.array([0.5, 0.0]),
                                serving.BOX: np.zeros((2, 4)), serving.POSE2D: np.zeros((2, 13, 2)),
                                serving.POSE3D: np.zeros((2, 13, 3)), serving.POSE3D_CAMERA: np.ones((2, 13, 3)),
                                serving.TRANSLATION: np.ones((2, 3))}, "s", 4, (10, 20), "lcr13",
                               list(skeleton_lib.LCR13.joint_names), min_score=0.6)
    assert record["people"] == [] and record["frame"] == 4
