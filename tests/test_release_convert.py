"""The authors' released LCR-Net++ models in lcr_tf: conversion, its checks, and parity with the release.

A random, non-degenerate checkpoint in the release's exact format (``ref_lcrnet_release.make_release_checkpoint``:
the release's parameter names and shapes, cfg fields, anchor-poses in its layout and axes; written as PyTorch
0.4 pickles it by ``release_format.write_release_pickle``) is converted with ``python -m lcr_tf.convert_official``'s
function, and the SavedModel's outputs on real photographs are compared with an independent NumPy
implementation of the release's forward pass (``ref_lcrnet_release.release_forward``, written from
``detect_pose.py``, ``lcrnet_model.py`` and Detectron.pytorch) and PPI (``ref_lcrnet_ppi``, from
``lcr_net_ppi_improved.py``).

Tolerances (float32), asserted below: proposal boxes within 0.01 px of the network's input, class probabilities
within 1e-4, decoded 2D poses within 0.05 px of the original image, 3D within 0.1 mm, and the same people after
PPI (scores within 5e-4 relative, poses as above). ``benchmarks/release_parity.py`` prints the figures reached.
"""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import ref_lcrnet_ppi
import ref_lcrnet_release
import release_format
import tensorflow as tf

from lcr_tf import convert_official
from lcr_tf.release import checkpoint as checkpoint_lib
from lcr_tf.release import convert as convert_lib
from lcr_tf.serving import image_input, inference


@pytest.fixture(scope="session")
def photos(shared_data):
    """The real photographs of ../shared/data/images (the test skips without them)."""
    return os.path.join(shared_data, "images")

# Small settings keep the suite fast: 160-pixel short side, 600 / 60 proposals.
SMALL = dict(test_scale=160, max_size=256, pre_nms=600, post_nms=60)


def _write(tmp_path, ck, name="InTheWild-ResNet50", tensors="torch"):
    path = str(tmp_path / f"{name}.pkl")
    release_format.write_release_pickle(path, ck["model"], ck["cfg"], ck["anchor_poses"], ck["ppi_params"],
                                        tensors=tensors)
    return path


@pytest.fixture(scope="module")
def small_release(tmp_path_factory):
    """(checkpoint dict, its file, the SavedModel exported from it (float32, batch norm not folded))."""
    root = tmp_path_factory.mktemp("release")
    ck = ref_lcrnet_release.make_release_checkpoint(num_joints=13, seed=0, **SMALL)
    path = _write(root, ck)
    export = convert_official.convert(path, str(root / "export"), precision="float32", fold_batch_norm=False,
                                      model_dir=str(root / "model"), log=lambda _: None)
    return ck, path, export, str(root / "model")


def _encoded(photos, name):
    """The file's bytes for a JPEG; a PNG is re-encoded from OpenCV's reading (3 channels, as the release)."""
    path = os.path.join(photos, name)
    if name.endswith(".jpg"):
        with open(path, "rb") as f:
            return f.read()
    return cv2.imencode(".png", cv2.imread(path))[1].tobytes()


def _match_proposals(served, ref):
    """The served proposal matching each of the release's: (R,) index ``m`` with ``served[m[i]] ~ ref[i]``.

    Both rank proposals by objectness, computed in float32 in a different order of operations: two
    proposals whose scores differ by round-off (1e-7) may come out swapped (at 800 pixels with 1000
    proposals, 4 such pairs on messi5.jpg). So the proposals are matched by their boxes, each must be
    within 0.05 px of its match (:func:`parity` reports the exact figure), and a proposal may only sit at
    another place than the release's where the release's scores of the two places are within 1e-5.
    """
    r = len(ref["rois"])
    assert served["proposal_valid"].sum() == r, "the same number of proposals"
    dist = np.abs(served["proposal_boxes"][:r, None, :] - ref["rois"][None, :, :]).max(-1)  # (served, ref)
    match = dist.argmin(0)
    assert np.array_equal(np.sort(match), np.arange(r)), "the same set of proposals"
    box_err = dist[match, np.arange(r)].max()
    assert box_err < 0.05, f"proposal boxes differ by {box_err} px"
    moved = np.where(match != np.arange(r))[0]
    swap = np.abs(ref["rpn_scores"][moved] - ref["rpn_scores"][match[moved]])
    assert swap.size == 0 or swap.max() < 1e-5, f"proposals out of the release's order: {moved}"
    return match


def _release_axes(pose3d):
    """The package's camera axes back to the release's (X, Y, Z) = (-x, -y, z)."""
    return pose3d * np.array([-1.0, -1.0, 1.0], np.float32)


# --------------------------------------------------------------------------------------------------
# Parity with the release
# --------------------------------------------------------------------------------------------------

def parity(ck, export: str, data: bytes) -> dict:
    """The SavedModel ``export`` of the release checkpoint ``ck`` against the NumPy release on the encoded
    image ``data``: the largest differences per output, and the counts compared.

    Returns a dict: ``proposals`` (R), ``box_px`` (proposal boxes, original pixels; ``box_input_px`` in the
    network input's, where the network computes them: a photograph shrunk to the tests' 160-pixel short side
    magnifies the same error 3-4 times in original pixels), ``swapped`` (proposals
    at another rank, :func:`_match_proposals`), ``class_prob``, ``candidates`` (M, pairs >= 0.1 / 2K),
    ``pose2d_px``, ``pose3d_m`` (the candidates' decoded poses), ``people`` (after PPI, both sides),
    ``person_score_rel``, ``person_pose2d_px``, ``person_pose3d_m``.
    """
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    loaded = tf.saved_model.load(export)
    served = {k: v.numpy()[0] for k, v in loaded.signatures["raw_proposals"](images=tf.constant([data])).items()}
    out = {k: v.numpy()[0] for k, v in loaded.signatures["serving_default"](images=tf.constant([data])).items()}
    ref = ref_lcrnet_release.release_forward(ck, bgr)
    assert tuple(served["image_size"]) == bgr.shape[:2]
    match = _match_proposals(served, ref)
    r = len(match)
    box_err = np.abs(served["proposal_boxes"][match] - ref["rois"]).max()
    found = {"proposals": r, "swapped": int((match != np.arange(r)).sum()), "box_px": float(box_err),
             "box_input_px": float(box_err * float(np.ravel(ref["im_scale"])[0])),
             "class_prob": float(np.abs(served["class_probs"][match] - ref["scores"]).max())}
    # The candidates: every (RoI, class) pair scoring >= 0.1 / 2K on both sides, and the release's decoded
    # pose for each. A pair whose probability is within round-off of the threshold may be a candidate on one
    # side only.
    keep = served["candidate_valid"]
    release_index = np.argsort(match)  # served proposal -> the release's
    roi, cls = release_index[served["candidate_roi_index"][keep]], served["candidate_classes"][keep]
    threshold = 0.1 / (ref["scores"].shape[1] - 1)
    ours = set(zip(roi.tolist(), cls.tolist()))
    theirs = {(i, c + 1) for i, c in zip(*np.nonzero(ref["scores"][:, 1:] >= threshold))}
    for i, c in ours ^ theirs:
        assert abs(ref["scores"][i, c] - threshold) < 1e-4, f"(RoI {i}, class {c}) is a candidate on one side only"
    both = np.array([(i, c) in theirs for i, c in zip(roi.tolist(), cls.tolist())])
    found["candidates"] = int(both.sum())
    found["pose2d_px"] = float(np.abs(served["candidate_pose2d_px"][keep][both]
                                      - ref["pose2d"][roi[both], cls[both] - 1]).max())
    found["pose3d_m"] = float(np.abs(_release_axes(served["candidate_pose3d_body_centred_m"][keep][both])
                                     - ref["pose3d"][roi[both], cls[both] - 1]).max())
    # demo.py: K = anchor_poses.shape[0], resolution from the image, the file's ppi_params.
    people = ref_lcrnet_ppi.lcrnet_ppi_improved_np(ref["scores"], ref["rois"], ref["pose2d"], ref["pose3d"],
                                                    bgr.shape[:2], K=ck["anchor_poses"].shape[0], **ck["ppi_params"])
    n = int(out["num_detections"])
    found["people"] = (n, len(people))
    n = min(n, len(people))
    found["person_score_rel"] = max((abs(out["score"][i] / p["score"] - 1) for i, p in enumerate(people[:n])),
                                    default=0.0)
    found["person_pose2d_px"] = max((float(np.abs(out["pose2d_px"][i] - p["pose2d"]).max())
                                     for i, p in enumerate(people[:n])), default=0.0)
    found["person_pose3d_m"] = max((float(np.abs(_release_axes(out["pose3d_body_centred_m"][i]) - p["pose3d"]).max())
                                    for i, p in enumerate(people[:n])), default=0.0)
    return found


def _assert_parity(found, max_detections=20):
    assert found["box_input_px"] < 0.01, found
    assert found["class_prob"] < 1e-4, found
    assert found["candidates"] > 50, found
    assert found["pose2d_px"] < 0.05 and found["pose3d_m"] < 1e-4, found
    served, release = found["people"]
    assert served == min(release, max_detections) and served > 0, found
    # A person's score sums its mode's class probabilities (each within 1e-4): 7.6e-5 relative at worst
    # on the shared photographs (benchmarks/release_parity.py); bound 5e-4.
    assert found["person_score_rel"] < 5e-4 and found["person_pose2d_px"] < 0.05, found
    assert found["person_pose3d_m"] < 1e-4, found


@pytest.mark.shared_data
@pytest.mark.parametrize("image", ["messi5.jpg", "vtest_0400.jpg", "basketball1.png"])
def test_proposals_classes_poses_and_people_match_the_release(small_release, photos, image):
    ck, _, export, _ = small_release
    _assert_parity(parity(ck, export, _encoded(photos, image)))


@pytest.mark.shared_data
@pytest.mark.slow
def test_parity_at_the_release_size(tmp_path, photos):
    """InTheWild's settings: 800-pixel short side (max 1333), 6000 / 1000 proposals."""
    ck = ref_lcrnet_release.make_release_checkpoint(num_joints=13, seed=1)
    export = convert_official.convert(_write(tmp_path, ck), str(tmp_path / "export"), precision="float32",
                                      fold_batch_norm=False, log=lambda _: None)
    _assert_parity(parity(ck, export, _encoded(photos, "messi5.jpg")))


# --------------------------------------------------------------------------------------------------
# The export's contract
# --------------------------------------------------------------------------------------------------

def test_export_info_names_the_source_and_its_terms(small_release):
    ck, path, export, _ = small_release
    loaded = tf.saved_model.load(export)
    info = json.loads(loaded.export_info.numpy().decode())
    assert info["source_file"] == "InTheWild-ResNet50.pkl"
    assert info["model_name"] == "InTheWild-ResNet50"
    assert info["source_sha256"] == checkpoint_lib.sha256_of(path)
    assert "scientific or personal use only" in info["licence"]
    assert info["ppi_mode"] == "official"
    assert info["ppi_params"]["iou_threshold"] == ck["ppi_params"]["th_iou"]
    assert info["model"]["input_resize"] == "short_side" and info["model"]["test_scale"] == 160
    assert loaded.skeleton.numpy().decode() == "lcr13"
    assert set(loaded.signatures) == {"serving_default", "detect_with_options", "detect_float", "raw_proposals"}


@pytest.mark.shared_data
def test_detect_float_takes_decoded_frames_at_their_own_size(small_release, photos):
    """detect_float on the decoded pixels gives the people of serving_default on the PNG of those pixels."""
    _, _, export, _ = small_release
    bgr = cv2.imread(os.path.join(photos, "vtest_0100.jpg"))
    loaded = tf.saved_model.load(export)
    png = cv2.imencode(".png", bgr)[1].tobytes()
    a = loaded.signatures["serving_default"](images=tf.constant([png]))
    b = loaded.signatures["detect_float"](images=tf.constant(bgr[None, ..., ::-1].astype(np.float32)))
    assert int(a["num_detections"][0]) == int(b["num_detections"][0]) > 0
    np.testing.assert_allclose(a["pose2d_px"].numpy(), b["pose2d_px"].numpy(), atol=1e-3)


@pytest.mark.shared_data
def test_a_batch_of_images_of_different_sizes(small_release, photos):
    _, _, export, _ = small_release
    serve = tf.saved_model.load(export).signatures["serving_default"]
    one = [_encoded(photos, "messi5.jpg"), _encoded(photos, "vtest_0400.jpg")]
    both = serve(images=tf.constant(one))
    for i, data in enumerate(one):
        alone = serve(images=tf.constant([data]))
        assert int(alone["num_detections"][0]) == int(both["num_detections"][i])
        np.testing.assert_allclose(alone["pose2d_px"].numpy()[0], both["pose2d_px"].numpy()[i], atol=1e-3)


def test_the_model_directory_loads(small_release):
    ck, _, _, model_dir = small_release
    loaded = inference.load_model(model_dir)
    assert loaded.skeleton == "lcr13" and loaded.config.rpn_convention == "detectron"
    pose2d, pose3d = checkpoint_lib.split_anchor_poses(ck["anchor_poses"])
    np.testing.assert_array_equal(loaded.model.anchor_pose2d.numpy(), pose2d)
    np.testing.assert_array_equal(loaded.model.anchor_pose3d.numpy(), pose3d)
    config = json.load(open(os.path.join(model_dir, "config.json")))
    assert config["flags"]["converted_from"]["model_name"] == "InTheWild-ResNet50"


# --------------------------------------------------------------------------------------------------
# What the conversion checks
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint13():
    return ref_lcrnet_release.make_release_checkpoint(num_joints=13, seed=2, **SMALL)


def test_numpy_weights_read_like_torch_ones(tmp_path, checkpoint13):
    a = checkpoint_lib.read_release(_write(tmp_path, checkpoint13, "a", "torch"))
    b = checkpoint_lib.read_release(_write(tmp_path, checkpoint13, "b", "numpy"))
    assert a.weights.keys() == b.weights.keys() == checkpoint13["model"].keys()
    for k in a.weights:
        np.testing.assert_array_equal(a.weights[k], b.weights[k])
        np.testing.assert_array_equal(a.weights[k], checkpoint13["model"][k])
    assert a.settings["TEST.SCALE"] == 160 and a.settings["RPN.SIZES"] == (32, 64, 128, 256, 512)
    # Left at Detectron's defaults by the file:
    assert a.settings["PIXEL_MEANS"] == (102.9801, 115.9465, 122.7717)


def test_mismatched_weights_are_listed_in_one_message(tmp_path, checkpoint13):
    model = dict(checkpoint13["model"])
    del model["Conv_Body.res3.1.bn2.bias"]
    model["Conv_Body.res9.conv1.weight"] = np.zeros((1,), np.float32)
    model["RPN.RPN_cls_score.weight"] = np.zeros((9, 1024, 1, 1), np.float32)
    path = _write(tmp_path, dict(checkpoint13, model=model))
    with pytest.raises(ValueError) as e:
        checkpoint_lib.read_release(path)
    text = str(e.value)
    assert path in text
    assert "1 missing: Conv_Body.res3.1.bn2.bias" in text
    assert "1 unexpected: Conv_Body.res9.conv1.weight" in text
    assert "1 mis-shaped: RPN.RPN_cls_score.weight (9, 1024, 1, 1) (expected (15, 1024, 1, 1))" in text


@pytest.mark.parametrize("section, key, value, message", [
    ("FPN", "FPN_ON", True, "FPN.FPN_ON = True"),
    ("RESNETS", "STRIDE_1X1", False, "RESNETS.STRIDE_1X1 = False"),
    ("FAST_RCNN", "ROI_XFORM_METHOD", "RoIPoolF", "ROI_XFORM_METHOD = 'RoIPoolF'"),
    ("TEST", "RPN_MIN_SIZE", 8, "RPN_MIN_SIZE = 8"),
])
def test_settings_the_conversion_does_not_reproduce_are_refused(tmp_path, checkpoint13, section, key, value, message):
    cfg = {k: dict(v) if isinstance(v, dict) else v for k, v in checkpoint13["cfg"].items()}
    cfg.setdefault(section, {})[key] = value
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        checkpoint_lib.read_release(_write(tmp_path, dict(checkpoint13, cfg=cfg)))


@pytest.mark.parametrize("flip, what", [((-1.0, 1.0, 1.0), "2D x against 3D X"), ((1.0, -1.0, 1.0), "2D y"),
                                        ((1.0, 1.0, -1.0), "left against right")])
def test_anchor_poses_in_other_axes_are_refused(tmp_path, checkpoint13, flip, what):
    """The file's anchors with one 3D axis flipped (X, Y or Z) contradict the release's axes."""
    ap = checkpoint13["anchor_poses"].copy()
    j = ap.shape[1] // 5
    for axis, sign in enumerate(flip):
        ap[:, (2 + axis) * j:(3 + axis) * j] *= sign
    with pytest.raises(ValueError, match=what):
        checkpoint_lib.read_release(_write(tmp_path, dict(checkpoint13, anchor_poses=ap)))


def test_the_axes_check_holds_on_the_release_anchors(checkpoint13):
    found = checkpoint_lib.check_anchor_axes(checkpoint13["anchor_poses"], "lcr13")
    assert min(found.values()) >= 0.9, found


def test_a_file_that_is_not_a_release_model(tmp_path):
    path = tmp_path / "other.pkl"
    path.write_bytes(release_format.dumps({"weights": {}}))
    with pytest.raises(ValueError, match=r"other\.pkl: not a release model file: no model, cfg, anchor_poses"):
        checkpoint_lib.read_release(str(path))


def test_seventeen_joints(tmp_path):
    """The Human3.6M model's J = 17: the lcr17 skeleton, the regression permuted per joint."""
    # The release's PPI takes 'bbox' or 'mje' only for J other than 13 and 14.
    ck = ref_lcrnet_release.make_release_checkpoint(num_joints=17, seed=3, ppi_params={"iou_func": "bbox"}, **SMALL)
    release = convert_lib.load_release(_write(tmp_path, ck, "Human3.6-17J-ResNet50"))
    assert release.checkpoint.skeleton == "lcr17" and release.model.num_joints == 17
    rois = np.array([[10.0, 20.0, 90.0, 150.0], [40.0, 5.0, 130.0, 140.0]], np.float32)
    image = (np.random.default_rng(0).random((150, 200, 3)) * 255).astype(np.uint8)
    ref = ref_lcrnet_release.release_forward(ck, image, rois=rois)
    model = release.model
    net_input, s = image_input.resize_short_side(tf.constant(image[..., ::-1]), 160, 256)
    features = model.trunk(model.preprocess(net_input[None]))
    vectors = model.roi_head(model.aligner(features, tf.constant(rois[None])))
    logits, regression = model.lcr_head(vectors)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), ref["scores"], atol=1e-4)
    c, j = 21, 17
    blocks = regression.numpy().reshape(2, c, 5 * j)[:, 1:]
    deltas3d = blocks[..., 2 * j:].reshape(2, c - 1, j, 3)
    ref_blocks = ref["pose_deltas"].reshape(2, c, 5, j)[:, 1:]
    np.testing.assert_allclose(deltas3d, _release_axes(np.moveaxis(ref_blocks[:, :, 2:], 2, 3)), atol=1e-5)


# --------------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------------

def test_help_explains_the_flags():
    out = subprocess.run([sys.executable, "-m", "lcr_tf.convert_official", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for flag in ("--checkpoint", "--name", "--export_dir", "--precision", "--[no]fold_batch_norm", "--cache_dir",
                 "--model_dir"):
        assert flag in out.stdout, flag


def test_command_line_errors_name_the_problem(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "lcr_tf.convert_official", *args], capture_output=True,
                              text=True, timeout=120)

    both = run("--checkpoint=a.pkl", "--name=DEMO_ECCV18", f"--export_dir={tmp_path}")
    assert both.returncode == 2 and "exactly one of --checkpoint" in both.stderr
    missing = run(f"--checkpoint={tmp_path}/none.pkl", f"--export_dir={tmp_path}")
    assert missing.returncode == 2 and "release model file not found" in missing.stderr
