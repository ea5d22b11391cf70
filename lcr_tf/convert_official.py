"""Converts an LCR-Net++ model released by its authors into a SavedModel for TensorFlow Serving.

    python -m lcr_tf.convert_official --checkpoint=InTheWild-ResNet50.pkl --export_dir=/abs/path/lcr_release
    python -m lcr_tf.convert_official --name=InTheWild-ResNet50 --export_dir=/abs/path/lcr_release

reads the release file without running any of its code (:mod:`lcr_tf.release.pickle_reader`), checks its
settings, weights and anchor-poses' axes (:mod:`lcr_tf.release.checkpoint`), converts it into this package's
model (:mod:`lcr_tf.release.convert`) and writes ``<export_dir>/<version>/`` with every signature and output
of :mod:`lcr_tf.export`, the release's PPI (mode ``official`` with the file's ``ppi_params``) as the stored
defaults, and ``export_info`` naming the source file, its SHA-256, the model name and the licence terms
(GPLv3, for scientific or personal use only: the converted model keeps the authors' terms).
``--model_dir`` also writes it as a model directory, which ``lcr_tf.train --init_from`` and
:func:`lcr_tf.serving.inference.load_model` read (``lcr_tf.predict`` and ``lcr_tf.evaluate`` take the export).
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import List

from absl import flags

from lcr_tf.contracts import cli
from lcr_tf.training import precision as precision_lib

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags (only when run as a program)."""
    from lcr_tf.contracts import serving
    from lcr_tf.release import download

    flags.DEFINE_string("checkpoint", None, "A release model file <name>.pkl (the authors' format).")
    flags.DEFINE_string("name", None, f"A released model's name ({', '.join(download.KNOWN_MODELS)}): "
                        "downloaded from the authors' address into the cache first, unless already there.")
    flags.DEFINE_string("cache_dir", None, f"Folder of downloaded release files (default: "
                        f"${download.CACHE_ENV}/release, else ~/.cache/lcr_tf/release).")
    flags.DEFINE_string("base_url", download.RELEASE_BASE_URL, "Address the released files are fetched from.")
    flags.DEFINE_string("export_dir", None, "Base folder of the SavedModel versions (TF Serving's "
                        "--model_base_path); the model goes to <export_dir>/<version>/.")
    flags.DEFINE_integer("version", None, "Version number; default: one more than the highest in --export_dir.",
                         lower_bound=1)
    flags.DEFINE_string("model_dir", None, "Also write the converted model as a model directory "
                        "(config.json + final.weights.h5) here, for lcr_tf.train --init_from.")
    flags.DEFINE_enum("precision", precision_lib.AUTO, [precision_lib.AUTO, "float32", "mixed_bfloat16"],
                      "Compute precision of the exported model, as lcr_tf.export's --precision (auto: times "
                      "both where bfloat16 is native and keeps the faster).")
    flags.DEFINE_boolean("fold_batch_norm", True, "Fold the frozen normalisations (the release's "
                         "AffineChannel layers) into the convolutions, as lcr_tf.export does.")
    flags.DEFINE_integer("test_scale", None, "Short side the images are resized to (default: the model's "
                         "cfg.TEST.SCALE).", lower_bound=32)
    flags.DEFINE_integer("test_max_size", None, "Cap on the long side (default: the model's cfg.TEST.MAX_SIZE).",
                         lower_bound=32)
    flags.DEFINE_integer("max_detections", 20, "People per image in the outputs (padded).", lower_bound=1)
    flags.DEFINE_integer(serving.MAX_IMAGE_SIDE_NAME, serving.MAX_IMAGE_SIDE, "Largest width or height of an "
                         "encoded image the model decodes, as lcr_tf.export.", lower_bound=1)
    flags.DEFINE_integer(serving.MAX_IMAGE_PIXELS_NAME, serving.MAX_IMAGE_PIXELS, "Largest width x height of "
                         "an encoded image the model decodes, as lcr_tf.export.", lower_bound=1)
    flags.DEFINE_integer(serving.MAX_IMAGES_PER_REQUEST_NAME, serving.MAX_IMAGES_PER_REQUEST, "Most images in "
                         "one call of an encoded-image signature, as lcr_tf.export.", lower_bound=1)


def convert(checkpoint: str, export_dir: str, version=None, precision: str = "float32",
            fold_batch_norm: bool = True, model_dir=None, limits=None, max_detections: int = 20,
            log=print, **config_overrides) -> str:
    """Converts ``checkpoint`` and exports it (module docstring); returns the version folder written.

    ``config_overrides`` replace fields of the release's :class:`lcr_tf.modeling.factory.ModelConfig`
    (e.g. ``test_scale``). Raises FileNotFoundError / ValueError as the steps do, naming the file.
    """
    import dataclasses
    import time

    from lcr_tf.release import convert as convert_lib
    from lcr_tf.serving import export as export_lib
    from lcr_tf.serving import fastest_precision

    start = time.perf_counter()
    release = convert_lib.load_release(checkpoint, **config_overrides)
    ck = release.checkpoint
    log(f"read {ck.source}: K={ck.num_anchors} anchor-poses of J={ck.num_joints} joints ({ck.skeleton}), "
        f"test scale {release.config.test_scale} (max {release.config.test_max_size}), RPN "
        f"{release.config.rpn_pre_nms_top_n_test}/{release.config.rpn_post_nms_top_n_test} proposals; "
        f"sha256 {ck.sha256[:16]}...; converted in {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as scratch:
        folder = model_dir or os.path.join(scratch, "model")
        convert_lib.write_model_dir(release, folder)
        if model_dir:
            log(f"wrote the model directory {model_dir}")
        loaded, why = fastest_precision.load(folder, precision, fold_batch_norm)
        log(f"precision {loaded.precision} ({why})")
        params = dataclasses.replace(release.ppi_params, max_detections=int(max_detections))
        path = export_lib.export(loaded, os.path.abspath(export_dir), version, params, "official", limits,
                                 extra_info=release.info())
    log(f"exported {path} in {time.perf_counter() - start:.1f} s; licence: {ck.name} is released for "
        f"scientific or personal use only (GPLv3), and so is the converted model")
    return path


def main(argv: List[str]) -> None:
    from lcr_tf.release import download
    from lcr_tf.serving import image_header

    if bool(FLAGS.checkpoint) == bool(FLAGS.name):
        print("error: give exactly one of --checkpoint=FILE.pkl and --name=MODEL", file=sys.stderr)
        sys.exit(2)
    if not FLAGS.export_dir:
        print("error: --export_dir is required", file=sys.stderr)
        sys.exit(2)
    overrides = {k: getattr(FLAGS, k) for k in ("test_scale", "test_max_size") if getattr(FLAGS, k)}
    try:
        path = FLAGS.checkpoint or download.fetch_release(FLAGS.name, FLAGS.cache_dir, FLAGS.base_url)
        limits = image_header.Limits(**{n: getattr(FLAGS, n) for n in image_header.Limits().as_dict()})
        policy = FLAGS.precision
        if policy != precision_lib.AUTO:
            policy, _ = precision_lib.resolve(policy)
        convert(path, FLAGS.export_dir, FLAGS.version, policy, FLAGS.fold_batch_norm, FLAGS.model_dir,
                limits, FLAGS.max_detections, **overrides)
    except (FileNotFoundError, FileExistsError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
