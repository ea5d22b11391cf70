"""The limits of the encoded-image signatures as a served model holds them: chosen on the command line of
lcr_tf.export, recorded in the SavedModel, enforced by the loaded model; and one loaded model under
concurrent requests, valid and invalid mixed, each answered as if it came alone."""

import concurrent.futures
import json
import os
import random
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf
from test_export import D, noise, tiny_model
from test_image_header import GIF, png_declaring

from lcr_tf.contracts import serving
from lcr_tf.serving import export as export_lib
from lcr_tf.serving import image_header, inference

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small limits, so that images just under and just over them are small too.
LIMITS = image_header.Limits(max_image_side=96, max_image_pixels=96 * 80, max_images_per_request=4)
THREADS, REQUESTS = 8, 20


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The tiny model exported by ``python -m lcr_tf.export`` with :data:`LIMITS`, loaded."""
    root = tmp_path_factory.mktemp("guards")
    model_dir = str(root / "run")
    inference.save_model_dir(tiny_model(), model_dir)
    result = subprocess.run(
        [sys.executable, "-m", "lcr_tf.export", f"--model_dir={model_dir}", f"--export_dir={root / 'serving'}",
         "--precision=float32", "--max_candidates=50", f"--max_detections={D}"]
        + [f"--{name}={value}" for name, value in LIMITS.as_dict().items()],
        cwd=_REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return tf.saved_model.load(export_lib.latest_version_dir(str(root / "serving")))


def jpeg(image, *params) -> bytes:
    ok, data = cv2.imencode(".jpg", image, list(params))
    assert ok
    return data.tobytes()


def png(image) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def test_exported_limits_are_recorded_and_enforced(served):
    info = json.loads(served.export_info.numpy().decode())
    assert info["input_limits"] == LIMITS.as_dict()
    assert image_header.Limits.of_saved_model(served) == LIMITS
    call = served.signatures[serving.SERVING_DEFAULT]
    out = call(images=tf.constant([png(noise(80, 96, 1))] * 4))  # on every limit at once
    np.testing.assert_array_equal(out[serving.NUM_DETECTIONS].shape, [4])
    for h, w in ((10, 97), (81, 96)):  # one pixel over the side, over the pixels
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=rf"images\[0\] is {w}x{h} pixels .* 96 pixels per side and 7680 pixels per image"):
            call(images=tf.constant([jpeg(noise(h, w, 2))]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="a request of 5 images: the model takes at most 4"):
        call(images=tf.constant([png(noise(8, 8, 3))] * 5))


def test_concurrent_mixed_requests_are_answered_as_alone(served):
    """8 threads send 20 one-image requests each to one loaded model, valid and invalid images mixed in a
    fixed random order. Every valid answer equals, exactly (tolerance 0), the answer to that image sent
    alone; every invalid one fails with InvalidArgumentError, and the valid requests in flight with it are
    unaffected."""
    call = served.signatures[serving.SERVING_DEFAULT]
    valid = {
        "jpeg 80x60": jpeg(noise(60, 80, 10)),
        "progressive jpeg 96x80": jpeg(noise(80, 96, 11), cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        "png 40x90": png(noise(90, 40, 12)),
        "grey png 30x30": png(noise(30, 30, 13)[..., 0]),
    }
    full_png, full_jpeg = png(noise(50, 50, 14)), jpeg(noise(50, 50, 15))
    invalid = {
        "truncated png": full_png[:len(full_png) // 2],
        "truncated jpeg": full_jpeg[:len(full_jpeg) // 2],
        "empty": b"",
        "30000x30000 header": png_declaring(30000, 30000),
        "gif": GIF,
        "over the side limit": jpeg(noise(10, 97, 16)),
    }
    alone = {name: {k: v.numpy() for k, v in call(images=tf.constant([data])).items()}
             for name, data in valid.items()}
    for name, data in invalid.items():
        with pytest.raises(tf.errors.InvalidArgumentError):
            call(images=tf.constant([data]))

    names = sorted(valid) + sorted(invalid)
    schedule = [names[i % len(names)] for i in range(THREADS * REQUESTS)]
    random.Random(0).shuffle(schedule)

    def send(name):
        data = valid.get(name, invalid.get(name))
        try:
            return name, {k: v.numpy() for k, v in call(images=tf.constant([data])).items()}
        except tf.errors.InvalidArgumentError as e:
            return name, e

    def worker(t):
        return [send(name) for name in schedule[t * REQUESTS:(t + 1) * REQUESTS]]

    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        answers = [a for thread in pool.map(worker, range(THREADS)) for a in thread]
    assert len(answers) == THREADS * REQUESTS
    assert {name for name, _ in answers} == set(names)
    for name, answer in answers:
        if name in valid:
            assert isinstance(answer, dict), (name, answer)
            for key, value in alone[name].items():
                np.testing.assert_array_equal(answer[key], value, err_msg=f"{name} {key}")
        else:
            assert isinstance(answer, tf.errors.InvalidArgumentError), (name, answer)
