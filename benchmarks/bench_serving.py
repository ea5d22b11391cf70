"""Latency of the exported SavedModel per 640 x 480 image on CPU, next to the model's forward pass alone and
the share of the pose proposal integration (PPI).

    python benchmarks/bench_serving.py [--repeats 20] [--config tiny|resnet50] [--image PATH]

Builds an untrained model of the chosen size (weights do not change the cost of the network; they do
change PPI's, so the candidate count is printed), writes it as a model directory, exports it with
:func:`lcr_tf.export.export`, loads it with ``tf.saved_model.load`` and times, as the median of
``--repeats`` calls after one warm-up call, for one JPEG image of 640 x 480 (random noise or ``--image``
resized):

* ``serving_default``: decode + letterbox + network + candidates + PPI + placement, for the default
  export (batch normalisation folded into the convolutions) and, side by side, the export of
  ``--nofold_batch_norm`` and (when the default is not float32) the float32 export;
* ``raw_proposals``: the same up to the candidates (no PPI);
* the network alone (``LCRNet.roi_features`` in a ``tf.function``, letterboxed input) and the full
  ``LCRNet.call`` that regresses all 2K + 1 classes, for comparison with class-selective regression;
* PPI + placement alone (:func:`lcr_tf.serving.inference.integrate` in a ``tf.function``) on the candidates of the
  same image; its share of the ``serving_default`` call.

Configs: ``tiny`` is configs/synthetic_tiny.flags (tiny backbone, 256-pixel input, K = 32, 64 proposals);
``resnet50`` is the paper's ResNet-50 at 512 pixels with K = 200 and 300 proposals.

``--config=release`` times a model converted from the authors' release format instead
(:mod:`lcr_tf.convert_official`): a random checkpoint of the InTheWild-ResNet50 network (the release's names
and shapes, K = 10, J = 13; tests/ref_lcrnet_release.py), served at the release's input size (800-pixel
short side, long side at most 1333: a 640 x 480 image runs at 1067 x 800) with ``--release_pre_nms`` /
``--release_post_nms`` proposals, exported in float32 and with ``--precision`` (auto: the faster of
float32 and bfloat16 where bfloat16 is native), side by side; it prints the conversion time too.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import cv2
import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from benchmarks.timing import median_time  # noqa: E402
from lcr_tf.contracts import cli  # noqa: E402
from lcr_tf.modeling import factory  # noqa: E402
from lcr_tf.poses import anchors as anchors_lib  # noqa: E402
from lcr_tf.poses import body_model  # noqa: E402
from lcr_tf.serving import export as export_lib  # noqa: E402
from lcr_tf.serving import fastest_precision, image_input, inference  # noqa: E402

CONFIGS = {
    "tiny": dict(backbone="tiny", image_size=256, num_anchors=32, rpn_channels=128,
                 rpn_pre_nms_top_n_test=1000, rpn_post_nms_top_n_test=64),
    "resnet50": dict(backbone="resnet50", image_size=512, num_anchors=200, rpn_pre_nms_top_n_test=6000,
                     rpn_post_nms_top_n_test=300),
}


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer("repeats", 20, "Timed requests per measurement.")
    flags.DEFINE_enum("config", "tiny", sorted(CONFIGS) + ["release"], "Model configuration (release: a "
                      "converted release model, see the module docstring).")
    flags.DEFINE_string("image", None, "An image file, resized to 640 x 480.")
    flags.DEFINE_integer("max_candidates", 1000, "Candidates kept before pose integration.")
    flags.DEFINE_integer("release_pre_nms", 6000, "--config=release: RPN proposals before NMS.")
    flags.DEFINE_integer("release_post_nms", 1000, "--config=release: RPN proposals after NMS.")
    flags.DEFINE_enum("precision", "auto", ["auto", "float32", "mixed_bfloat16"], "Compute precision of the "
                      "timed export (as python -m lcr_tf.export --precision); when it is not float32, a float32 "
                      "export is timed beside it and the ratio printed.")


def _image():
    if FLAGS.image:
        return cv2.resize(cv2.imread(FLAGS.image), (640, 480))
    return (np.random.RandomState(0).rand(480, 640, 3) * 255).astype(np.uint8)


def release_main() -> None:
    """``--config=release`` (module docstring)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    import ref_lcrnet_release
    import release_format

    from lcr_tf import convert_official

    args = FLAGS
    ck = ref_lcrnet_release.make_release_checkpoint(num_joints=13, seed=0, pre_nms=args.release_pre_nms,
                                                    post_nms=args.release_post_nms)
    jpeg = tf.constant([cv2.imencode(".jpg", _image())[1].tobytes()])
    timed = {}
    with tempfile.TemporaryDirectory() as root:
        path = os.path.join(root, "InTheWild-ResNet50.pkl")
        release_format.write_release_pickle(path, ck["model"], ck["cfg"], ck["anchor_poses"], ck["ppi_params"])
        for precision in dict.fromkeys(["float32", args.precision]):
            lines = []
            start = time.perf_counter()
            export = convert_official.convert(path, os.path.join(root, precision), precision=precision,
                                              log=lines.append)
            seconds = time.perf_counter() - start
            loaded = tf.saved_model.load(export)
            serve, raw = loaded.signatures["serving_default"], loaded.signatures["raw_proposals"]
            t_serve = median_time(lambda: serve(images=jpeg)["num_detections"].numpy(), args.repeats, warmup=True)
            out = raw(images=jpeg)
            timed[precision] = (t_serve, seconds, [line for line in lines if line.startswith("precision")],
                                int(serve(images=jpeg)["num_detections"].numpy()[0]),
                                int(tf.reduce_sum(tf.cast(out["candidate_valid"], tf.int32))))
    print(f"config release: InTheWild-ResNet50's network (random weights), 640x480 JPEG served at 1067x800, "
          f"RPN {args.release_pre_nms}/{args.release_post_nms} proposals; medians of {args.repeats} calls, "
          f"CPU ({os.cpu_count()} cores)")
    base = timed["float32"][0]
    for precision, (t, seconds, why, people, candidates) in timed.items():
        print(f"  --precision={precision:8s} serving_default {1e3 * t:9.1f} ms  ({t / base:.2f}x float32)  "
              f"conversion + export {seconds:.0f} s; {candidates} candidates, {people} people; {' '.join(why)}")


def main(argv) -> None:
    args = FLAGS
    if args.config == "release":
        release_main()
        return

    keras.utils.set_random_seed(0)
    values = CONFIGS[args.config]
    k = values["num_anchors"]
    anchor_set = anchors_lib.cluster_poses(body_model.sample_poses(4000, seed=0).poses3d, k, 2, seed=0)
    config = factory.ModelConfig(backbone_weights="none", seed=0, **values)
    model = factory.build_model(config, anchor_set)
    size = config.image_size
    model(tf.zeros([1, size, size, 3]))

    jpeg = tf.constant([cv2.imencode(".jpg", _image())[1].tobytes()])
    params = inference.default_params(k, "paper", max_candidates=args.max_candidates)

    with tempfile.TemporaryDirectory() as root:
        model_dir = os.path.join(root, "run")
        inference.save_model_dir(model, model_dir)
        start = time.perf_counter()
        # The default export: --precision=auto as python -m lcr_tf.export takes it (timed where bfloat16
        # is native, so its choice is part of the export time).
        chosen, why = fastest_precision.load(model_dir, args.precision)
        policy = chosen.precision
        path = export_lib.export(chosen, os.path.join(root, "serving"), params=params)
        export_s = time.perf_counter() - start
        loaded = tf.saved_model.load(path)
        serve = loaded.signatures["serving_default"]
        raw = loaded.signatures["raw_proposals"]
        t_serve = median_time(lambda: serve(images=jpeg)["num_detections"].numpy(), args.repeats, warmup=True)
        t_raw = median_time(lambda: raw(images=jpeg)["candidate_valid"].numpy(), args.repeats, warmup=True)
        detections = int(serve(images=jpeg)["num_detections"].numpy()[0])
        unfolded = export_lib.export(inference.load_model(model_dir, policy, fold_batch_norm=False),
                                     os.path.join(root, "unfolded"), params=params)
        serve_unfolded = tf.saved_model.load(unfolded).signatures["serving_default"]
        t_unfolded = median_time(lambda: serve_unfolded(images=jpeg)["num_detections"].numpy(), args.repeats,
                                 warmup=True)
        t_serve32 = None
        if policy != "float32":
            path32 = export_lib.export(inference.load_model(model_dir, "float32"), os.path.join(root, "f32"),
                                       params=params)
            serve32 = tf.saved_model.load(path32).signatures["serving_default"]
            t_serve32 = median_time(lambda: serve32(images=jpeg)["num_detections"].numpy(), args.repeats,
                                    warmup=True)

    canvases, scales, sizes = image_input.prepare_encoded(jpeg, size)
    forward = tf.function(lambda x: model.roi_features(x))
    full = tf.function(lambda x: model(x))
    t_forward = median_time(lambda: forward(canvases)["class_probs"].numpy(), args.repeats, warmup=True)
    t_full = median_time(lambda: full(canvases)["regression"].numpy(), args.repeats, warmup=True)

    runtime = inference.runtime_tensors(params, 1)
    cands = tf.function(lambda x, s: inference.candidates(model, model.roi_features(x), s,
                                                          runtime["score_threshold"], params.max_candidates))
    c = cands(canvases, scales)
    num_candidates = int(tf.reduce_sum(tf.cast(c["valid"], tf.int32)))
    ppi = tf.function(lambda c, s: inference.integrate(c, s, params, runtime))
    t_ppi = median_time(lambda: ppi(c, sizes)["num_detections"].numpy(), args.repeats, warmup=True)

    print(f"config {args.config}: {config.backbone}, {size}-pixel letterboxed input, K={k}, "
          f"{config.rpn_post_nms_top_n_test} proposals; {num_candidates} candidates (cap {params.max_candidates}), "
          f"{detections} detections; untrained weights")
    print(f"export (precision choice + trace + save): {export_s:.1f} s; precision {policy} ({why})")
    print(f"medians of {args.repeats} calls, one 640x480 JPEG, CPU ({os.cpu_count()} cores):")
    print(f"  SavedModel serving_default          {1e3 * t_serve:8.1f} ms")
    print(f"  serving_default, batch norm kept    {1e3 * t_unfolded:8.1f} ms   "
          f"({t_unfolded / t_serve:.2f}x the time of the default export, whose batch norm is folded)")
    if t_serve32 is not None:
        print(f"  serving_default, float32 export     {1e3 * t_serve32:8.1f} ms   "
              f"({t_serve32 / t_serve:.2f}x the time of the {policy} export)")
    print(f"  SavedModel raw_proposals (no PPI)   {1e3 * t_raw:8.1f} ms")
    print(f"  network alone (roi_features)        {1e3 * t_forward:8.1f} ms   "
          f"({t_forward / t_serve:.0%} of serving_default)")
    print(f"  network, full regression (call)     {1e3 * t_full:8.1f} ms")
    print(f"  PPI + placement alone               {1e3 * t_ppi:8.1f} ms   ({t_ppi / t_serve:.0%} of serving_default)")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
