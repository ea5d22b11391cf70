"""Exports a trained LCR-Net as a SavedModel for TensorFlow Serving.

    python -m lcr_tf.export --model_dir=runs/tiny --export_dir=/abs/path/lcr_export [--version=N]

writes ``<export_dir>/<version>/`` (``saved_model.pb`` + ``variables/``), the layout TF Serving watches:
it serves the highest version number in ``--model_base_path``. Without ``--version`` the next number
after the highest already there is used (1 for an empty folder); an existing version is never
overwritten.

Serving it::

    tensorflow_model_server --rest_api_port=8501 --port=8500 --model_name=lcr \\
        --model_base_path=/abs/path/lcr_export

    docker run -p 8501:8501 -p 8500:8500 \\
        --mount type=bind,source=/abs/path/lcr_export,target=/models/lcr \\
        -e MODEL_NAME=lcr -t tensorflow/serving

and querying it with :mod:`lcr_tf.serving.client` (REST on 8501, gRPC on 8500).

The module saved, its signatures, the limits of its encoded-image signatures (``--max_image_side``,
``--max_image_pixels``, ``--max_images_per_request``) and the version folders are those of
:mod:`lcr_tf.serving.export`.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, List

from absl import flags

from lcr_tf.contracts import cli, serving
from lcr_tf.postprocess import params as params_lib
from lcr_tf.serving import export as export_lib
from lcr_tf.serving import image_header
from lcr_tf.training import precision as precision_lib

FLAGS = flags.FLAGS
_DEFINED: List[str] = []


# Help of the flags of the per-request PPI settings (whose values are stored as the model's defaults).
_OPTION_HELP = {
    serving.SCORE_THRESHOLD: "Default candidate threshold (default: 0.1 / 2K, the public release's rule).",
    serving.IOU_THRESHOLD: "Default IoU threshold grouping candidates into people.",
    serving.POSE3D_THRESHOLD_M: "Default T_3D in metres (default: that of --ppi_mode).",
    serving.MIN_MODE_SCORE: "Default minimum score to seed a further mode.",
    serving.MIN_PERSON_SCORE: "Default minimum score of a reported person.",
    serving.SIGMA_B_PX: "Default sigma_b of the rescoring (eq 6), pixels.",
    serving.RESCORE: "Rescore candidates by eq 6 by default.",
}


def define_flags() -> None:
    """Defines the flags (only when run as a program, so importing the module defines none)."""
    before = set(FLAGS)
    flags.DEFINE_string("model_dir", None, "Training run directory (config.json + final.weights.h5 or "
                        "checkpoints/), as lcr_tf.train writes it.")
    flags.DEFINE_string("export_dir", None, "Base folder of the SavedModel versions (TF Serving's "
                        "--model_base_path); the model goes to <export_dir>/<version>/.")
    flags.DEFINE_integer("version", None, "Version number (a positive integer); default: one more than the "
                         "highest version already in --export_dir (1 when empty).", lower_bound=1)
    flags.DEFINE_enum("precision", precision_lib.AUTO, [precision_lib.AUTO, "float32", "mixed_bfloat16"],
                      "Compute precision of the exported model (inputs and outputs stay float32). auto: where "
                      "the exporting machine computes bfloat16 natively (AVX512-BF16 / AMX CPUs, GPUs of "
                      "compute capability >= 8.0), loads the model in mixed_bfloat16 and in float32, times "
                      "3 inference calls of each and exports the faster; float32 elsewhere (bfloat16 would be "
                      "emulated); it prints which and why. A bfloat16 model still serves, correctly but "
                      "slower, on hardware without bfloat16.")
    flags.DEFINE_boolean("fold_batch_norm", True, "Fold every batch normalisation that follows a convolution "
                         "into that convolution (the same function to float32 round-off, and faster: the "
                         "bfloat16 ResNet-50 serves in 0.66-0.89 of the time, measured); --nofold_batch_norm "
                         "exports the network as trained.")
    flags.DEFINE_enum("ppi_mode", "paper", list(params_lib.MODES), "Proposal integration inside the "
                      "model: the paper's PPI (eq 7-8), the public release's rules, or the NMS baseline.")
    defaults = params_lib.PPIParams()  # the one place of the PPI defaults
    for name, text in _OPTION_HELP.items():
        define = flags.DEFINE_boolean if name in serving.BOOL_OPTIONS else flags.DEFINE_float
        define(name, getattr(defaults, name), text)
    flags.DEFINE_enum("group_by", defaults.group_by, list(params_lib.GROUP_BY), "Boxes that group candidates.")
    flags.DEFINE_integer("max_candidates", defaults.max_candidates,
                         "Candidates per image (padded size inside the graph).", lower_bound=1)
    flags.DEFINE_integer("max_detections", defaults.max_detections, "People per image in the outputs (padded).",
                         lower_bound=1)
    # The limits of the encoded-image signatures, read from each image's header before it is decoded.
    flags.DEFINE_integer(serving.MAX_IMAGE_SIDE_NAME, serving.MAX_IMAGE_SIDE, "Largest width or height, in "
                         "pixels, of an encoded image the model decodes; a larger one fails its call with "
                         "INVALID_ARGUMENT before it is decoded.", lower_bound=1)
    flags.DEFINE_integer(serving.MAX_IMAGE_PIXELS_NAME, serving.MAX_IMAGE_PIXELS, "Largest width x height of an "
                         "encoded image the model decodes (default: 40 megapixels, about 120 MB of RGB); a "
                         "larger one fails its call with INVALID_ARGUMENT before it is decoded.", lower_bound=1)
    flags.DEFINE_integer(serving.MAX_IMAGES_PER_REQUEST_NAME, serving.MAX_IMAGES_PER_REQUEST, "Most images in "
                         "one call of an encoded-image signature; more fail the call with INVALID_ARGUMENT.",
                         lower_bound=1)
    _DEFINED[:] = sorted(set(FLAGS) - before)


def params_from_flags(num_anchors: int):
    from lcr_tf.serving import inference

    overrides: Dict[str, Any] = {name: getattr(FLAGS, name) for name in serving.OPTION_NAMES}
    overrides.update(group_by=FLAGS.group_by, max_candidates=FLAGS.max_candidates,
                     max_detections=FLAGS.max_detections)
    return inference.default_params(num_anchors, FLAGS.ppi_mode, **overrides)


def limits_from_flags() -> image_header.Limits:
    return image_header.Limits(**{name: getattr(FLAGS, name) for name in serving.LIMIT_NAMES})


def main(argv: List[str]) -> None:
    for name in ("model_dir", "export_dir"):
        if not getattr(FLAGS, name):
            print(f"error: --{name} is required", file=sys.stderr)
            sys.exit(2)
    from lcr_tf.serving import fastest_precision

    try:
        loaded, why = fastest_precision.load(FLAGS.model_dir, FLAGS.precision, FLAGS.fold_batch_norm)
        print(f"precision {loaded.precision} ({why})", flush=True)
        params = params_from_flags(loaded.config.num_anchors)
        path = export_lib.export(loaded, os.path.abspath(FLAGS.export_dir), FLAGS.version, params,
                                 FLAGS.ppi_mode, limits_from_flags())
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"exported {path} (signatures: {', '.join(export_lib.SIGNATURES)})", flush=True)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
