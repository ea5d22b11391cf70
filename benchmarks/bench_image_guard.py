"""What the size limits of the encoded-image signatures cost and save: the time and peak memory of refusing
an oversized PNG, next to serving an ordinary 640 x 480 JPEG, through a loaded SavedModel on CPU.

    python benchmarks/bench_image_guard.py [--repeats 5] [--config tiny|resnet50]

Builds an untrained model of ``--config`` (those of ``benchmarks/bench_serving.py``), exports it with the
default limits (:data:`lcr_tf.contracts.serving.DEFAULT_LIMITS`) and runs each case in a fresh process
(so that its peak memory is its own): the process loads the SavedModel, serves one 640 x 480 JPEG (the
warm-up; the baseline peak is that of serving), then calls ``serving_default`` ``--repeats`` times on
the case's image and prints the median time and how far the process's peak resident memory
(``ru_maxrss``) rose above the baseline. Cases:

* ``jpeg 640x480``: an ordinary image, served;
* ``png 30000x30000 header``: a 100-byte PNG declaring 30000 x 30000 pixels, refused;
* ``png 12000x12000``: a complete 420 KB PNG of 12000 x 12000 black pixels (432 MB of RGB), refused;
* ``decode png 12000x12000``: for scale, what the model started doing with that file before the limits:
  ``tf.io.decode_png`` alone (no letterbox, no network), once.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO)
sys.path.insert(0, os.path.join(_REPO, "tests"))

from absl import flags  # noqa: E402

from benchmarks.bench_serving import CONFIGS  # noqa: E402
from benchmarks.timing import median_time  # noqa: E402
from lcr_tf.contracts import cli  # noqa: E402

FLAGS = flags.FLAGS
CASES = ("jpeg 640x480", "png 30000x30000 header", "png 12000x12000", "decode png 12000x12000")
# Cases that run once whatever --repeats says (their single run is long).
_ONCE = ("decode png 12000x12000",)
# Flags of the per-case child process (not for the command line).
_CHILD_FLAGS = ("case", "saved_model")


def define_flags() -> None:
    flags.DEFINE_integer("repeats", 5, "Timed calls per case (median).", lower_bound=1)
    flags.DEFINE_enum("config", "tiny", sorted(CONFIGS), "Model configuration (as bench_serving.py).")
    flags.DEFINE_enum("case", None, list(CASES), "Run one case on --saved_model and print its JSON (the child "
                      "process).")
    flags.DEFINE_string("saved_model", None, "SavedModel version folder of the child process.")


def _case_image(case: str) -> bytes:
    import cv2
    import numpy as np
    from test_image_header import png_declaring

    if case == "jpeg 640x480":
        return cv2.imencode(".jpg", (np.random.RandomState(0).rand(480, 640, 3) * 255).astype(np.uint8))[1].tobytes()
    if case == "png 30000x30000 header":
        return png_declaring(30000, 30000)
    return png_declaring(12000, 12000, complete=True)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def child(case: str, path: str, repeats: int) -> None:
    import tensorflow as tf

    data = _case_image(case)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    serve(images=tf.constant([_case_image("jpeg 640x480")]))["num_detections"].numpy()  # warm-up
    baseline = _peak_mb()
    outcome = []

    def one():
        try:
            if case.startswith("decode"):
                tf.io.decode_png(data, channels=3).numpy()
                outcome[:] = ["decoded"]
            else:
                serve(images=tf.constant([data]))["num_detections"].numpy()
                outcome[:] = ["served"]
        except tf.errors.InvalidArgumentError as e:
            lines = [line.strip() for line in e.message.splitlines() if "assertion failed" in line]
            outcome[:] = ["refused: " + (lines or [e.message])[0][:160]]

    seconds = median_time(one, 1 if case in _ONCE else repeats)
    print(json.dumps({"case": case, "bytes": len(data), "median_ms": 1e3 * seconds,
                      "peak_growth_mb": _peak_mb() - baseline, "baseline_peak_mb": baseline,
                      "outcome": outcome[0]}))


def main(argv) -> None:
    if FLAGS.case:
        child(FLAGS.case, FLAGS.saved_model, FLAGS.repeats)
        return
    import keras
    import tensorflow as tf

    from lcr_tf.modeling import factory
    from lcr_tf.poses import anchors as anchors_lib
    from lcr_tf.poses import body_model
    from lcr_tf.serving import export as export_lib
    from lcr_tf.serving import image_header, inference

    keras.utils.set_random_seed(0)
    values = CONFIGS[FLAGS.config]
    k = values["num_anchors"]
    anchor_set = anchors_lib.cluster_poses(body_model.sample_poses(4000, seed=0).poses3d, k, 2, seed=0)
    model = factory.build_model(factory.ModelConfig(backbone_weights="none", seed=0, **values), anchor_set)
    model(tf.zeros([1, values["image_size"], values["image_size"], 3]))
    with tempfile.TemporaryDirectory() as root:
        model_dir = os.path.join(root, "run")
        inference.save_model_dir(model, model_dir)
        path = export_lib.export(inference.load_model(model_dir), os.path.join(root, "serving"),
                                 params=inference.default_params(k, "paper"))
        rows = []
        for case in CASES:
            result = subprocess.run([sys.executable, os.path.abspath(__file__), f"--case={case}",
                                     f"--saved_model={path}", f"--repeats={FLAGS.repeats}"],
                                    cwd=_REPO, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"case {case!r} failed:\n{result.stderr[-3000:]}")
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    limits = image_header.Limits()
    print(f"config {FLAGS.config}, limits {limits.max_image_side} px per side, {limits.max_image_pixels} px per "
          f"image; CPU ({os.cpu_count()} cores); each case in its own process, after serving one 640x480 JPEG "
          f"(baseline peak {rows[0]['baseline_peak_mb']:.0f} MB)")
    print(f"{'case':<26}{'file (bytes)':>13}{'median':>12}{'peak growth':>14}  outcome")
    for row in rows:
        runs = 1 if row["case"] in _ONCE else FLAGS.repeats
        print(f"{row['case']:<26}{row['bytes']:>13,d}{row['median_ms']:>9.1f} ms"
              f"{row['peak_growth_mb']:>11.0f} MB  {row['outcome']} ({runs} run{'s' if runs > 1 else ''})")


if __name__ == "__main__":
    define_flags()
    cli.run(main, hidden=_CHILD_FLAGS)
