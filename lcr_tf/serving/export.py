"""The SavedModel of LCR-Net for TensorFlow Serving: the ``tf.Module`` that is saved, its signatures, and
the version folders of TF Serving's layout (``<export_dir>/<version>/``). ``python -m lcr_tf.export``
is its command line.

Signatures
----------
Every name below is a constant of :mod:`lcr_tf.contracts.serving`. Every input is batched (first
dimension B): one call runs a batch of images of any sizes (each is letterboxed on its own; a converted
release model runs each at its own short-side scale, ``ModelConfig.input_resize``), and TF
Serving's REST "row" format (``{"instances": [...]}``, one object per image) carries them all.

``serving_default``
    ``images``: (B,) tf.string, encoded images (JPEG or PNG only; grey, RGB or RGBA; any size up to the
    limits below). The PPI settings are the defaults stored in the model (``default_*`` variables) and
    the camera is the default one of :mod:`lcr_tf.postprocess.placement`.
``detect_with_options``
    ``images`` as above, plus one value per image of each PPI setting that may change per request —
    ``score_threshold``, ``iou_threshold``, ``pose3d_threshold_m``, ``min_mode_score``,
    ``min_person_score``, ``sigma_b_px`` (float32 (B,)), ``rescore`` (bool (B,)) — and ``intrinsics``
    (B, 4) float32 ``fx, fy, cx, cy`` in pixels of the original image (a row with ``fx <= 0`` takes the
    default camera). TF Serving matches the inputs a request gives to those a signature declares, and
    older servers refuse a request that omits one, so optional settings are a second signature rather
    than inputs with defaults: ``serving_default`` is the no-options call.
``detect_float``
    ``images``: (B, H, W, 3) float32 RGB in [0, 255], one size per batch (already decoded frames).
``raw_proposals``
    ``images`` as ``serving_default``; returns the proposals and the candidates before PPI, in original
    pixels, for evaluation and for :func:`lcr_tf.postprocess.ppi` in NumPy: ``proposal_boxes`` (B, R, 4),
    ``proposal_valid`` (B, R), ``class_probs`` (B, R, 2K + 1) background first, and ``candidate_*``:
    ``roi_index``, ``classes``, ``score``, ``valid`` (B, M), ``roi_boxes`` (B, M, 4), ``pose2d_px``
    (B, M, J, 2), ``pose3d_body_centred_m`` (B, M, J, 3); ``image_size`` (B, 2) ``(H, W)``.

The detection signatures return, padded to D = ``max_detections`` people per image and sorted by score:
``num_detections`` (B,) int32, ``score`` (B, D), ``box_xyxy_px`` (B, D, 4) xyxy pixels, ``pose2d_px``
(B, D, J, 2) pixels, ``pose3d_body_centred_m`` (B, D, J, 3) metres body-centred, ``pose3d_camera_m``
(B, D, J, 3) metres in the camera frame, ``translation_m`` (B, D, 3) metres (body centre in the camera
frame). All pixel
values are in the original image (the letterboxing of :mod:`lcr_tf.serving.inference` is undone); rows past
``num_detections`` are zeros.

Limits of the encoded-image signatures (``serving_default``, ``detect_with_options``, ``raw_proposals``)
------------------------------------------------------------------------------------------------------
Each image's width and height are read from its header before anything is decoded (JPEG's frame header,
PNG's IHDR chunk: :func:`lcr_tf.serving.image_input.decode_checked`), and the call fails with
``INVALID_ARGUMENT``, naming the image, its size and the limit, in about a millisecond and without
allocating the image, when an image is over ``max_image_side`` pixels per side or ``max_image_pixels``
pixels, or the request holds more than ``max_images_per_request`` images. Bytes that are not a JPEG or a
PNG (GIF, BMP, a truncated or empty file, anything else) fail the call with ``INVALID_ARGUMENT`` too.
The limits are chosen at export (defaults: :data:`lcr_tf.contracts.serving.DEFAULT_LIMITS`, 8192 pixels
per side, 40 megapixels, 64 images) and held by the SavedModel. One refused image fails its whole call:
a client sends a batch of images it has checked, or one image per call. ``detect_float`` takes frames the
caller has decoded already and is not limited.

PPI runs inside the graph (:mod:`lcr_tf.postprocess.ppi_tf`) in the mode of ``--ppi_mode`` (``paper``,
``official`` for the public release's rules, or ``nms``); ``mode``, ``group_by``, ``max_candidates`` and
``max_detections`` are fixed at export, the other settings are the stored defaults or per-request inputs.

The SavedModel also holds, as variables readable after ``tf.saved_model.load``: ``skeleton`` (name),
``joint_names`` (J,), ``image_size`` (S), ``ppi_mode``, the int64 limits ``max_image_side``,
``max_image_pixels`` and ``max_images_per_request``, and ``export_info`` (JSON of the model config, every
PPI setting, the limits under ``input_limits``, the compute ``precision`` and ``batch_norm_folded``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from typing import Optional

from lcr_tf.contracts import serving
from lcr_tf.serving import image_header


def next_version(export_dir: str) -> int:
    """One more than the highest numeric sub-folder of ``export_dir`` (1 when there is none)."""
    if not os.path.isdir(export_dir):
        return 1
    versions = [int(n) for n in os.listdir(export_dir)
                if re.fullmatch(r"\d+", n) and os.path.isdir(os.path.join(export_dir, n))]
    return max(versions, default=0) + 1


def latest_version_dir(path: str) -> str:
    """``path`` itself if it holds a ``saved_model.pb``, else its highest numeric version folder (as TF
    Serving picks). Raises FileNotFoundError naming ``path`` when there is neither."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    version = next_version(path) - 1
    candidate = os.path.join(path, str(version))
    if version < 1 or not os.path.isfile(os.path.join(candidate, "saved_model.pb")):
        raise FileNotFoundError(f"{path}: neither a SavedModel nor a folder of numbered SavedModel versions")
    return candidate


def build_module(loaded, params, mode: str = "paper", limits: Optional[image_header.Limits] = None,
                 extra_info: Optional[dict] = None):
    """The ``tf.Module`` that is saved (signatures in the module docstring).

    Args:
      loaded: :class:`lcr_tf.serving.inference.LoadedModel`.
      params: resolved :class:`lcr_tf.postprocess.PPIParams` (the stored defaults).
      mode: graph PPI mode, ``"paper"``, ``"official"`` or ``"nms"``.
      limits: what the encoded-image signatures accept; None: the defaults.
      extra_info: more JSON-ready entries of ``export_info`` (a converted model's source and licence).
    """
    import tensorflow as tf

    from lcr_tf.contracts import skeleton as skeleton_lib
    from lcr_tf.serving import inference

    limits = image_header.Limits() if limits is None else limits

    if mode not in inference.GRAPH_MODES:
        raise ValueError(f"mode must be one of {inference.GRAPH_MODES}, got {mode!r}")
    model = loaded.model
    size = int(loaded.config.image_size)
    skel = skeleton_lib.get_skeleton(loaded.skeleton)
    info = {"model": loaded.config.to_dict(), "skeleton": skel.name, "ppi_mode": mode,
            "ppi_params": {k: v for k, v in vars(params).items()},
            "precision": getattr(loaded, "precision", "float32"), "input_limits": limits.as_dict(),
            "batch_norm_folded": bool(getattr(loaded, "batch_norm_folded", False))}
    info.update(extra_info or {})

    class LCRServing(tf.Module):
        def __init__(self):
            super().__init__(name="lcr_serving")
            self.model = model
            self.image_size = tf.Variable(size, trainable=False, name="image_size")
            self.skeleton = tf.Variable(skel.name, trainable=False, name="skeleton")
            self.joint_names = tf.Variable(list(skel.joint_names), trainable=False, name="joint_names")
            self.ppi_mode = tf.Variable(mode, trainable=False, name="ppi_mode")
            self.export_info = tf.Variable(json.dumps(info, sort_keys=True), trainable=False,
                                           name="export_info")
            self.defaults = {name: tf.Variable(value, trainable=False,
                                               name=serving.DEFAULT_VARIABLE_PREFIX + name)
                             for name, value in inference.runtime_tensors(params).items()}
            # Read by the signatures' checks at every call, so a loaded model checks against what was
            # exported (one attribute per limit: tf.Module tracks variables by attribute).
            for name, value in limits.as_dict().items():
                setattr(self, name, tf.Variable(value, dtype=tf.int64, trainable=False, name=name))

        def _limits(self):
            return {name: getattr(self, name).read_value() for name in serving.LIMIT_NAMES}

        def _runtime(self, batch):
            return {name: tf.fill([batch], var.read_value()) for name, var in self.defaults.items()}

        def _detect(self, features, scales, sizes, runtime, intrinsics=None):
            return inference.detect_features(model, features, scales, sizes, params, runtime=runtime,
                                             intrinsics=intrinsics, mode=mode)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=serving.IMAGES)])
        def serve_encoded(self, images):
            features, scales, sizes = inference.features_encoded(model, images, self._limits())
            return self._detect(features, scales, sizes, self._runtime(tf.shape(images)[0]))

        # The inputs are named by their specs; the arguments follow serving.OPTION_NAMES' order.
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=serving.IMAGES)] + [
            tf.TensorSpec([None], tf.bool if n in serving.BOOL_OPTIONS else tf.float32, name=n)
            for n in serving.OPTION_NAMES] + [tf.TensorSpec([None, 4], tf.float32, name=serving.INTRINSICS)])
        def serve_with_options(self, images, score_threshold, iou_threshold, pose3d_threshold_m,
                               min_mode_score, min_person_score, sigma_b_px, rescore, intrinsics):
            runtime = dict(zip(serving.OPTION_NAMES, (score_threshold, iou_threshold, pose3d_threshold_m,
                                                      min_mode_score, min_person_score, sigma_b_px, rescore)))
            features, scales, sizes = inference.features_encoded(model, images, self._limits())
            return self._detect(features, scales, sizes, runtime, intrinsics)

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name=serving.IMAGES)])
        def serve_float(self, images):
            features, scales, sizes = inference.features_float(model, images)
            return self._detect(features, scales, sizes, self._runtime(tf.shape(images)[0]))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=serving.IMAGES)])
        def serve_proposals(self, images):
            features, scales, sizes = inference.features_encoded(model, images, self._limits())
            threshold = tf.fill([tf.shape(images)[0]], self.defaults[serving.SCORE_THRESHOLD].read_value())
            out = inference.proposals_features(model, features, scales, params, threshold)
            out[serving.IMAGE_SIZE] = sizes
            return out

    return LCRServing()


SIGNATURES = serving.SIGNATURES


def export(loaded, export_dir: str, version: Optional[int] = None, params=None, mode: str = "paper",
           limits: Optional[image_header.Limits] = None, extra_info: Optional[dict] = None) -> str:
    """Saves the serving module of ``loaded`` to ``<export_dir>/<version>/``; returns that path.

    Args:
      loaded: :class:`lcr_tf.serving.inference.LoadedModel` (or a model directory path).
      export_dir: base folder of the versions.
      version: a positive int; None: :func:`next_version`.
      params: resolved :class:`lcr_tf.postprocess.PPIParams`; None: :func:`lcr_tf.serving.inference.default_params`.
      mode: graph PPI mode.
      limits: :class:`lcr_tf.serving.image_header.Limits` of the encoded-image signatures; None: the
        defaults of :mod:`lcr_tf.contracts.serving`.
      extra_info: more entries of ``export_info`` (:func:`build_module`).
    Raises:
      FileExistsError: the version folder exists already.
    """
    import tensorflow as tf

    from lcr_tf.serving import inference

    if isinstance(loaded, str):
        loaded = inference.load_model(loaded)
    if params is None:
        params = inference.default_params(loaded.config.num_anchors, mode)
    version = next_version(export_dir) if version is None else int(version)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    path = os.path.join(export_dir, str(version))
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists already; choose another --version")
    module = build_module(loaded, params, mode, limits, extra_info)
    signatures = {
        serving.SERVING_DEFAULT: module.serve_encoded.get_concrete_function(),
        serving.DETECT_WITH_OPTIONS: module.serve_with_options.get_concrete_function(),
        serving.DETECT_FLOAT: module.serve_float.get_concrete_function(),
        serving.RAW_PROPOSALS: module.serve_proposals.get_concrete_function(),
    }
    # Saved beside the versions under a name TF Serving ignores (not a number), then renamed: a server
    # watching export_dir never loads a half-written version, and a killed export leaves none.
    staging = os.path.join(export_dir, f".tmp-{version}-{uuid.uuid4().hex}")
    try:
        tf.saved_model.save(module, staging, signatures=signatures)
        os.rename(staging, path)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
    return path
