"""SavedModel export (lcr_tf.export) and the inference path (lcr_tf.serving.inference) on a tiny untrained model.

The model directory is written as lcr_tf.train writes it, exported once through the command line, and
reloaded with tf.saved_model.load; its signatures are checked against the Keras model, the inference
functions run eagerly, and the NumPy PPI run on the exported candidates.
"""

import json
import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.contracts import serving
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.modeling import factory, lcr_model
from lcr_tf.ops import pose_coding
from lcr_tf.poses import anchors as anchors_lib
from lcr_tf.poses import body_model
from lcr_tf.postprocess import integration as ppi_lib
from lcr_tf.postprocess import placement
from lcr_tf.serving import export as export_lib
from lcr_tf.serving import fastest_precision, image_input, inference

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K, S, R, M, D = 4, 64, 10, 50, 5


def tiny_model():
    keras.utils.set_random_seed(0)
    corpus = body_model.sample_poses(300, seed=0).poses3d
    anchor_set = anchors_lib.cluster_poses(corpus, K, 2, seed=0)
    config = factory.ModelConfig(num_anchors=K, image_size=S, rpn_scales=(16.0, 32.0, 64.0), rpn_channels=16,
                                 rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=R, fc_dims=(32, 32),
                                 seed=0)
    model = factory.build_model(config, anchor_set)
    model(tf.zeros([1, S, S, 3]))
    return model


def png(image) -> bytes:
    image = np.asarray(image, np.uint8)
    ok, data = cv2.imencode(".png", image if image.ndim == 2 else image[..., ::-1])
    assert ok
    return data.tobytes()


def noise(h, w, seed):
    return (np.random.RandomState(seed).rand(h, w, 3) * 255).astype(np.uint8)


def params():
    return inference.default_params(K, "paper", max_candidates=M, max_detections=D)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(Keras model, model dir, version dir, loaded SavedModel)."""
    root = tmp_path_factory.mktemp("export")
    model = tiny_model()
    model_dir = str(root / "run")
    inference.save_model_dir(model, model_dir)
    path = export_lib.export(model_dir, str(root / "serving"), version=3, params=params())
    assert path == str(root / "serving" / "3")
    return model, model_dir, path, tf.saved_model.load(path)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "lcr_tf.export", *args], cwd=_REPO, capture_output=True,
                          text=True, timeout=120)


def test_command_line_help_and_flag_errors(tmp_path):
    """The command imports TensorFlow only to export, so these answers come fast."""
    result = _cli("--help")
    assert result.returncode == 0 and "--export_dir" in result.stdout and "tensorflow_model_server" in result.stdout
    for name in serving.LIMIT_NAMES:
        assert f"--{name}" in result.stdout, name
    result = _cli(f"--export_dir={tmp_path}")
    assert result.returncode == 2 and "--model_dir is required" in result.stderr


def test_layout_metadata_and_versions(exported, tmp_path):
    _, model_dir, path, loaded = exported
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert os.path.isdir(os.path.join(path, "variables"))
    assert set(export_lib.SIGNATURES) <= set(loaded.signatures)
    assert loaded.skeleton.numpy().decode() == "lcr13"
    assert [n.decode() for n in loaded.joint_names.numpy()] == list(skeleton_lib.LCR13.joint_names)
    assert int(loaded.image_size.numpy()) == S
    info = json.loads(loaded.export_info.numpy().decode())
    assert info["model"]["num_anchors"] == K and info["ppi_params"]["max_detections"] == D
    # The limits of the encoded-image signatures: the defaults, as variables and in export_info.
    assert info["input_limits"] == serving.DEFAULT_LIMITS
    assert {name: int(getattr(loaded, name).numpy()) for name in serving.LIMIT_NAMES} == serving.DEFAULT_LIMITS
    # Stored defaults: the release's threshold 0.1 / 2K and the paper mode's T_3D.
    assert float(loaded.defaults["score_threshold"].numpy()) == pytest.approx(0.1 / (2 * K))
    assert float(loaded.defaults["pose3d_threshold_m"].numpy()) == pytest.approx(0.13)
    base = os.path.dirname(path)
    assert export_lib.next_version(base) == 4 and export_lib.next_version(str(tmp_path / "none")) == 1
    assert export_lib.latest_version_dir(base) == path and export_lib.latest_version_dir(path) == path
    with pytest.raises(FileExistsError, match="exists already"):
        export_lib.export(model_dir, base, version=3)
    with pytest.raises(FileNotFoundError, match="numbered SavedModel versions"):
        export_lib.latest_version_dir(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="config.json"):
        inference.load_model(str(tmp_path))


def test_load_model_restores_weights_and_anchors(exported):
    model, model_dir, _, _ = exported
    loaded = inference.load_model(model_dir)
    np.testing.assert_array_equal(loaded.model.anchor_pose3d.numpy(), model.anchor_pose3d.numpy())
    image = tf.constant(noise(S, S, 1)[None], tf.float32)
    a, b = model(image), loaded.model(image)
    for key in (lcr_model.BOXES, lcr_model.CLASS_PROBS, lcr_model.REGRESSION):
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), atol=1e-5)


def test_letterbox_places_image_top_left():
    image = noise(32, 64, 2)
    canvas, scales = image_input.letterbox(image, 64)
    np.testing.assert_allclose(canvas.numpy()[:32], image, atol=1e-3)  # scale 1: the image itself
    assert np.all(canvas.numpy()[32:] == 0)
    np.testing.assert_allclose(scales.numpy(), [1.0, 1.0])
    canvas, scales = image_input.letterbox(np.full((90, 30, 3), 100, np.uint8), 64)  # 64 / 90
    np.testing.assert_allclose(scales.numpy(), [21 / 30, 64 / 90], rtol=1e-6)  # round(30 * 64 / 90) = 21
    np.testing.assert_allclose(canvas.numpy()[:, :21], 100.0, atol=1e-3)
    assert np.all(canvas.numpy()[:, 21:] == 0)


def test_proposals_and_candidates_match_the_keras_model(exported):
    """raw_proposals: the full forward pass of LCRNet.call, mapped to original pixels; the candidates'
    class-selective regression equals the blocks of the full regression, decoded by hand."""
    model, _, _, loaded = exported
    image = noise(128, 96, 3)  # letterboxed at scale 0.5 to 64 x 48
    out = {k: v.numpy()[0] for k, v in loaded.signatures["raw_proposals"](images=tf.constant([png(image)])).items()}
    canvas, scales = image_input.letterbox(image, S)
    np.testing.assert_allclose(scales.numpy(), [0.5, 0.5])
    ref = {k: v.numpy()[0] for k, v in model(canvas[None]).items()}
    np.testing.assert_array_equal(out["image_size"], [128, 96])
    np.testing.assert_allclose(out["proposal_boxes"], ref[lcr_model.BOXES] * 2.0, atol=1e-3)
    np.testing.assert_allclose(out["class_probs"], ref[lcr_model.CLASS_PROBS], atol=1e-5)
    valid = out["candidate_valid"]
    assert valid.sum() == min(M, ref[lcr_model.VALID].sum() * 2 * K)  # untrained: every pair > 0.1 / 2K
    roi, cls = out["candidate_roi_index"][valid], out["candidate_classes"][valid]
    probs = ref[lcr_model.CLASS_PROBS][roi, cls]
    np.testing.assert_allclose(out[serving.candidate_key(serving.SCORE)][valid], probs, atol=1e-5)
    assert np.all(np.diff(out[serving.candidate_key(serving.SCORE)][valid]) <= 0)
    # Hand decoding of the full regression: corner + (anchor + delta) * size, anchor + delta.
    blocks = ref[lcr_model.REGRESSION].reshape(R, 2 * K + 1, 5 * 13)[roi, cls]
    boxes = ref[lcr_model.BOXES][roi]
    a2, a3 = model.anchor_pose2d.numpy()[cls - 1], model.anchor_pose3d.numpy()[cls - 1]
    pose2d = boxes[:, None, :2] + (a2 + blocks[:, :26].reshape(-1, 13, 2)) * (boxes[:, None, 2:] - boxes[:, None, :2])
    np.testing.assert_allclose(out[serving.candidate_key(serving.POSE2D)][valid], pose2d * 2.0, atol=2e-3)
    np.testing.assert_allclose(out[serving.candidate_key(serving.POSE3D)][valid],
                               a3 + blocks[:, 26:].reshape(-1, 13, 3), atol=1e-5)
    np.testing.assert_allclose(out["candidate_roi_boxes"][valid], boxes * 2.0, atol=1e-3)


def test_serving_default_matches_eager_inference_and_numpy_ppi(exported):
    model, _, _, loaded = exported
    images = [png(noise(48, 80, 4)), png(noise(100, 70, 5))]  # two sizes in one batch
    out = {k: v.numpy() for k, v in loaded.signatures["serving_default"](images=tf.constant(images)).items()}
    assert set(out) == set(inference.DETECTION_KEYS)
    canvases, scales, sizes = image_input.prepare_encoded(tf.constant(images), S)
    eager = {k: v.numpy() for k, v in inference.detect(model, canvases, scales, sizes, params()).items()}
    for key in inference.DETECTION_KEYS:
        np.testing.assert_allclose(out[key], eager[key], atol=2e-3, err_msg=key)
    raw = {k: v.numpy() for k, v in loaded.signatures["raw_proposals"](images=tf.constant(images)).items()}
    for b in range(2):
        n = int(out["num_detections"][b])
        assert 1 <= n <= D
        assert np.all(np.diff(out[serving.SCORE][b, :n]) <= 0) and np.all(out[serving.SCORE][b, n:] == 0)
        for key in (serving.POSE2D, serving.POSE3D_CAMERA, serving.TRANSLATION):
            assert np.all(out[key][b, n:] == 0)
        v = raw["candidate_valid"][b]
        ref = ppi_lib.integrate_candidates(
            raw[serving.candidate_key(serving.SCORE)][b][v], raw["candidate_roi_boxes"][b][v],
            raw[serving.candidate_key(serving.POSE2D)][b][v], raw[serving.candidate_key(serving.POSE3D)][b][v],
            raw["candidate_classes"][b][v], image_size=tuple(sizes[b].numpy()),
            mode="paper", params=params())
        assert len(ref) == n
        np.testing.assert_allclose(out[serving.SCORE][b, :n], ref.scores, rtol=1e-4)
        np.testing.assert_allclose(out[serving.POSE2D][b, :n], ref.pose2d, atol=2e-2)
        np.testing.assert_allclose(out[serving.POSE3D][b, :n], ref.pose3d, atol=1e-4)
        # Placement with the default camera of the original image size.
        t, cam = placement.place_3d(ref.pose2d, ref.pose3d, None, tuple(sizes[b].numpy()))
        np.testing.assert_allclose(out[serving.TRANSLATION][b, :n], t, rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(out[serving.POSE3D_CAMERA][b, :n] - out[serving.POSE3D][b, :n],
                                   np.repeat(out[serving.TRANSLATION][b, :n, None], 13, 1), atol=1e-5)


def test_options_signature(exported):
    _, _, _, loaded = exported
    images = tf.constant([png(noise(60, 60, 6))])
    base = {k: v.numpy() for k, v in loaded.signatures["serving_default"](images=images).items()}
    defaults = {k: tf.reshape(v, [1]) for k, v in loaded.defaults.items()}
    same = loaded.signatures["detect_with_options"](images=images, intrinsics=tf.zeros([1, 4]), **defaults)
    for key in inference.DETECTION_KEYS:
        np.testing.assert_allclose(same[key].numpy(), base[key], atol=1e-5)
    # Given intrinsics move the people as place_3d says.
    intrinsics = np.array([[300.0, 310.0, 20.0, 40.0]], np.float32)
    moved = loaded.signatures["detect_with_options"](images=images, intrinsics=intrinsics, **defaults)
    n = int(base["num_detections"][0])
    t, _ = placement.place_3d(base[serving.POSE2D][0, :n], base[serving.POSE3D][0, :n], intrinsics[0], (60, 60))
    np.testing.assert_allclose(moved[serving.TRANSLATION].numpy()[0, :n], t, rtol=1e-3, atol=1e-3)
    # A threshold no candidate reaches: nobody.
    none = loaded.signatures["detect_with_options"](images=images, intrinsics=intrinsics,
                                                   **{**defaults, "score_threshold": tf.constant([1.1])})
    assert int(none["num_detections"][0]) == 0 and np.all(none[serving.POSE3D_CAMERA].numpy() == 0)


def test_grey_and_float_inputs(exported):
    _, _, _, loaded = exported
    grey = (np.random.RandomState(7).rand(50, 40) * 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, -1)
    a = loaded.signatures["serving_default"](images=tf.constant([png(grey)]))
    b = loaded.signatures["serving_default"](images=tf.constant([png(rgb)]))
    c = loaded.signatures["detect_float"](images=tf.constant(rgb[None], tf.float32))
    for key in inference.DETECTION_KEYS:
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), atol=1e-5)
        np.testing.assert_allclose(c[key].numpy(), b[key].numpy(), atol=1e-4)
    ok, jpeg = cv2.imencode(".jpg", rgb)
    d = loaded.signatures["serving_default"](images=tf.constant([jpeg.tobytes()]))
    assert d[serving.POSE2D].shape == (1, D, 13, 2)


def encoded_calls(loaded):
    """name -> function of a list of encoded images calling that encoded-image signature (the options of
    detect_with_options at the stored defaults)."""
    def with_options(images):
        n = len(images)
        defaults = {k: tf.fill([n], v) for k, v in loaded.defaults.items()}
        return loaded.signatures[serving.DETECT_WITH_OPTIONS](images=tf.constant(images), intrinsics=tf.zeros([n, 4]),
                                                             **defaults)

    calls = {name: (lambda images, f=loaded.signatures[name]: f(images=tf.constant(images)))
             for name in (serving.SERVING_DEFAULT, serving.RAW_PROPOSALS)}
    calls[serving.DETECT_WITH_OPTIONS] = with_options
    assert set(calls) == set(serving.ENCODED_SIGNATURES)
    return calls


def test_malformed_bytes_are_invalid_argument(exported):
    """Truncated, empty, GIF, BMP and random bytes fail every encoded-image signature with
    InvalidArgumentError; so do an image over the limits and a request of too many images."""
    from test_image_header import broken_files, png_declaring

    _, _, _, loaded = exported
    good = png(noise(30, 30, 9))
    jpeg = cv2.imencode(".jpg", noise(40, 50, 8))[1].tobytes()
    junk = [data for _, data in broken_files()] + [png(noise(20, 20, 8))[:40], jpeg[:len(jpeg) // 2]]
    for name, call in encoded_calls(loaded).items():
        for data in junk:
            with pytest.raises(tf.errors.InvalidArgumentError):
                call([good, data])
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"images\[1\] is 30000x30000 pixels \(width x height\): over the limits of this "
                                 r"model, "
                                 f"{serving.MAX_IMAGE_SIDE} pixels per side and {serving.MAX_IMAGE_PIXELS}"):
            call([good, png_declaring(30000, 30000)])
        too_many = serving.MAX_IMAGES_PER_REQUEST + 1
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=f"a request of {too_many} images: the model takes at most "
                                 f"{serving.MAX_IMAGES_PER_REQUEST} images per request"):
            call([good] * too_many)
    # The module still serves afterwards.
    served = loaded.signatures["serving_default"](images=tf.constant([good]))
    assert served[serving.SCORE].shape == (1, D)


_REFUSAL_SCRIPT = """
import json, resource, sys
import tensorflow as tf
sys.path.insert(0, sys.argv[2])
from test_export import encoded_calls, noise, png
from test_image_header import png_declaring
loaded = tf.saved_model.load(sys.argv[1])
calls = encoded_calls(loaded)
for call in calls.values():  # warm-up: the cost of serving an ordinary image is in the baseline
    call([png(noise(48, 64, 1))])
huge = [png_declaring(12000, 12000, complete=True), png_declaring(30000, 30000)]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
messages = []
for call in calls.values():
    for data in huge:
        try:
            call([data])
            messages.append("served")
        except tf.errors.InvalidArgumentError as e:
            messages.append(e.message)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"messages": messages, "grown_kb": grown}))
"""


def test_oversized_images_are_refused_without_being_decoded(exported):
    """A 420 KB PNG that decodes to 12000 x 12000 (432 MB of RGB, several GB through the letterbox) and a
    100-byte one declaring 30000 x 30000: every encoded-image signature refuses both, and the process's
    peak memory grows by less than 150 MB over that of serving a small image (a decode would add at least
    the 432 MB of the first image). Measured in a fresh process, whose peak is that of this call alone."""
    _, _, path, _ = exported
    result = subprocess.run([sys.executable, "-c", _REFUSAL_SCRIPT, path, os.path.dirname(__file__)], cwd=_REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report["messages"]) == 2 * len(serving.ENCODED_SIGNATURES)
    for message, side in zip(report["messages"], [12000, 30000] * 3):
        assert f"{side}x{side} pixels (width x height): over the limits of this model," in message, message
    assert report["grown_kb"] < 150 * 1024, report


def test_blank_image_with_a_model_that_sees_nobody():
    """A model whose classifier puts everything on the background yields no candidate, hence zero
    detections and all-zero padded outputs (the empty paths of selection, PPI and placement)."""
    nobody = tiny_model()
    bias = nobody.lcr_head.classifier.bias
    bias.assign(np.r_[30.0, np.zeros(2 * K)].astype(np.float32))
    canvases, scales, sizes = image_input.prepare_encoded(tf.constant([png(np.zeros((40, 50, 3)))]), S)
    out = inference.detect(nobody, canvases, scales, sizes, params())
    assert int(out["num_detections"][0]) == 0
    for key in inference.DETECTION_KEYS[1:]:
        assert np.all(out[key].numpy() == 0), key
        assert np.all(np.isfinite(out[key].numpy())), key


def test_roi_features_regress_classes_equal_call():
    """LCRNet.roi_features + regress_classes equal LCRNet.call, also with the refinement stage."""
    keras.utils.set_random_seed(1)
    anchor_set = anchors_lib.cluster_poses(body_model.sample_poses(200, seed=1).poses3d, 3, 2, seed=0)
    config = factory.ModelConfig(num_anchors=3, image_size=S, rpn_scales=(16.0, 32.0), rpn_channels=8,
                                 rpn_post_nms_top_n_test=6, fc_dims=(16, 16), refinement=True,
                                 refinement_hidden=8, refinement_fc=(8, 8))
    model = factory.build_model(config, anchor_set)
    images = tf.constant(np.stack([noise(S, S, 10), noise(S, S, 11)]), tf.float32)
    full = model(images)
    feats = model.roi_features(images)
    np.testing.assert_allclose(feats[lcr_model.CLASS_PROBS].numpy(), full[lcr_model.CLASS_PROBS].numpy(), atol=1e-6)
    np.testing.assert_array_equal(feats[lcr_model.BOXES].numpy(), full[lcr_model.BOXES].numpy())
    classes = tf.constant(np.random.RandomState(0).randint(0, 7, size=(12, 2)), tf.int32)
    got = model.regress_classes(tf.reshape(feats[lcr_model.HEAD_INPUTS], [12, -1]), classes)
    want = pose_coding.select_class_block(
        tf.repeat(tf.reshape(full[lcr_model.REGRESSION], [12, -1]), 2, axis=0), tf.reshape(classes, [-1]))
    np.testing.assert_allclose(got.numpy().reshape(24, -1), want.numpy(), atol=1e-5)


def test_bfloat16_export_serves_float32_in_and_out(exported, tmp_path):
    """A mixed_bfloat16 export: bfloat16 layers over the same float32 weights, float32 signature outputs,
    its precision recorded; serving the same image gives finite detections of the same shapes."""
    import json

    _, model_dir, path32, loaded32 = exported
    bf16 = inference.load_model(model_dir, "mixed_bfloat16")
    assert bf16.precision == "mixed_bfloat16"
    assert bf16.model.lcr_head.compute_dtype == "bfloat16"
    # Every floating variable stays float32 (the step counter is int64).
    assert {str(v.dtype) for v in bf16.model.weights} == {"float32", "int64"}

    assert keras.mixed_precision.global_policy().name == "float32"  # the caller's policy is back
    path = export_lib.export(bf16, str(tmp_path / "serving"), version=1, params=params())
    served = tf.saved_model.load(path)
    assert json.loads(served.export_info.numpy().decode())["precision"] == "mixed_bfloat16"
    images = tf.constant([png(noise(48, 60, 5)), png(noise(30, 30, 6))])
    out = served.signatures["serving_default"](images=images)
    ref = loaded32.signatures["serving_default"](images=images)
    for key, value in ref.items():
        assert out[key].dtype == value.dtype and out[key].shape == value.shape, key
        assert np.all(np.isfinite(out[key].numpy())), key
    with pytest.raises(ValueError, match="serving precision"):
        inference.load_model(model_dir, "mixed_float16")


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n")
    return str(path)


def test_auto_without_native_bfloat16_is_float32_untimed(exported, tmp_path, monkeypatch):
    _, model_dir, _, _ = exported
    monkeypatch.setattr(fastest_precision, "inference_seconds", lambda *a, **k: pytest.fail("timed without bfloat16"))
    loaded, why = fastest_precision.load_fastest(model_dir, cpuinfo=_cpuinfo(tmp_path, ""), gpus=())
    assert loaded.precision == "float32" and loaded.model.lcr_head.compute_dtype == "float32"
    assert why.startswith("auto: CPU has none of") and "not timed" in why


@pytest.mark.parametrize("bf16_ms, f32_ms, expected", [(11.0, 17.0, "mixed_bfloat16"),
                                                       (17.4, 17.3, "float32")])
def test_auto_with_native_bfloat16_keeps_the_faster_policy(exported, tmp_path, monkeypatch, bf16_ms, f32_ms,
                                                           expected):
    """Where bfloat16 is native, both policies are loaded and timed and the faster is exported, whichever it
    is (a narrow model can serve no faster in bfloat16); the reason gives both times."""
    _, model_dir, _, _ = exported
    seconds = {"bfloat16": bf16_ms / 1e3, "float32": f32_ms / 1e3}
    timed = []

    def fake_seconds(loaded, calls=fastest_precision.AUTO_TIMING_CALLS, clock=None):
        timed.append(loaded.precision)
        return seconds[loaded.model.lcr_head.compute_dtype]

    monkeypatch.setattr(fastest_precision, "inference_seconds", fake_seconds)
    loaded, why = fastest_precision.load_fastest(model_dir, cpuinfo=_cpuinfo(tmp_path, "avx512_bf16 amx_bf16"), gpus=())
    assert sorted(timed) == ["float32", "mixed_bfloat16"]
    assert loaded.precision == expected and loaded.batch_norm_folded
    assert why == (f"auto: CPU has amx_bf16, avx512_bf16; measured per inference call here: "
                   f"mixed_bfloat16 {bf16_ms:.1f} ms, float32 {f32_ms:.1f} ms")


def test_inference_seconds_times_real_calls(exported):
    """One warm-up call, then the median of the timed ones (a clock that advances 1, 5, 2, 9 s per call)."""
    _, model_dir, _, _ = exported
    loaded = inference.load_model(model_dir)
    assert 0 < fastest_precision.inference_seconds(loaded, calls=1) < 60
    # (start, end) of each call: warm-up 1 s, then 5, 2 and 9 s; the gaps between calls are not counted.
    ticks = iter([0, 1, 2, 7, 12, 14, 16, 25])
    assert fastest_precision.inference_seconds(loaded, calls=3, clock=lambda: next(ticks)) == 5


def test_an_export_that_fails_midway_leaves_no_version(exported, tmp_path, monkeypatch):
    """The SavedModel is written under a staging name TF Serving ignores and renamed when whole: an export
    that dies while writing leaves no version folder (which a server watching the folder would load)."""
    _, model_dir, _, _ = exported
    real_save = tf.saved_model.save

    def dies_midway(module, path, signatures=None):
        os.makedirs(os.path.join(path, "variables"))
        with open(os.path.join(path, "saved_model.pb"), "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", dies_midway)
    with pytest.raises(OSError, match="disk full"):
        export_lib.export(model_dir, str(tmp_path / "serving"), version=1, params=params())
    assert os.listdir(tmp_path / "serving") == []
    monkeypatch.setattr(tf.saved_model, "save", real_save)
    path = export_lib.export(model_dir, str(tmp_path / "serving"), version=1, params=params())
    assert sorted(os.listdir(tmp_path / "serving")) == ["1"] and os.path.isfile(os.path.join(path, "saved_model.pb"))
