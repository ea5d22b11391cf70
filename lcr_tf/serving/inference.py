"""From a trained model directory to people with 2D and 3D poses: the inference path (paper Sec 3.6, Fig 15).

::

    encoded image bytes (JPEG or PNG, any size up to the limits, grey or colour)
      -> size read from the header, checked against the limits (nothing decoded yet)
      -> decode (3 channels) -> letterbox to S x S            images (B, S, S, 3), scales (B, 2)
         (a released model: each image at Detectron's short-side scale, on its own: features_encoded)
      -> LCRNet.roi_features                                  proposals (B, R, 4), class probs (B, R, 2K+1)
      -> candidate selection (score >= threshold, best M)     (RoI, class) pairs (B, M)
      -> LCRNet.regress_classes (per RoI, for the classes that some candidate has: never more than the
         full regression, much less when candidates concentrate on few anchor-poses) -> pose decoding
         (box corner + (anchor + delta) * box size; anchor + delta)
      -> back to original pixels (divide by the letterbox scale)
      -> PPI (eq 6-8, lcr_tf.postprocess.ppi_tf)              people padded to D = max_detections
      -> 3D placement (Fig 15, lcr_tf.postprocess.placement)  camera-frame 3D poses

The images' checks, decoding, letterbox and short-side resize are :mod:`lcr_tf.serving.image_input`'s.
Candidate boxes and 2D poses are mapped back to the original image before PPI, so PPI's pixel
parameters (sigma_b of eq 6) and the 3D placement's camera are those of the original image.

Units and frames of every output: 2D in pixels of the original image (x right, y down, origin top-left),
boxes xyxy pixels, 3D in metres with camera axes (x right, y down, z away), ``pose3d_body_centred_m``
body-centred (centre = mean of hips and shoulders, :func:`lcr_tf.contracts.skeleton.body_centre`) and
``pose3d_camera_m`` placed in the camera frame (keys of :mod:`lcr_tf.contracts.serving`).

A model directory is what :mod:`lcr_tf.train` writes (the run folder of
:mod:`lcr_tf.contracts.run_folder`): ``config.json`` (its "model" entry is ``ModelConfig.to_dict()``, its
"skeleton" the joint set) and ``final.weights.h5`` (or, failing that, the latest checkpoint in
``checkpoints/``). The anchor-poses are weights of the model, so the anchors file is not needed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any, Dict, Mapping, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from lcr_tf.contracts import run_folder, serving
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.modeling import batch_norm_folding, factory, lcr_model
from lcr_tf.ops import pose_coding
from lcr_tf.postprocess import decoding_tf, placement_tf, ppi_tf
from lcr_tf.postprocess import params as params_lib
from lcr_tf.serving import image_input

# Files of a model directory (names owned by lcr_tf.train).
CONFIG_FILE = run_folder.CONFIG_FILE
FINAL_WEIGHTS = run_folder.FINAL_WEIGHTS
CHECKPOINT_DIR = run_folder.CHECKPOINT_DIR

# PPI settings that can change per request (tensors in the graph). The others (mode, group_by,
# num_full_body, max_candidates, max_detections) fix shapes or code paths and are set at export.
RUNTIME_PARAMS = serving.OPTION_NAMES
# PPI modes of the graph (lcr_tf.postprocess.ppi_tf).
GRAPH_MODES = params_lib.MODES

# Output keys of the detection functions and of the SavedModel's detection signatures.
DETECTION_KEYS = serving.DETECTION_KEYS


#: Policies a served model may compute in (float16, whose narrow range needs loss scaling in training, is
#: not offered for serving).
SERVING_PRECISIONS = ("float32", "mixed_bfloat16")


def float32_features(features: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """:meth:`LCRNet.roi_features` with every floating output but the head inputs in float32: the
    post-processing runs in float32 whatever the model computes in."""
    return {k: (tf.cast(v, tf.float32) if v.dtype.is_floating and k != lcr_model.HEAD_INPUTS else v)
            for k, v in features.items()}


@dataclasses.dataclass
class LoadedModel:
    """A model rebuilt from a model directory.

    Attributes:
      model: the :class:`lcr_tf.modeling.lcr_model.LCRNet` with its trained weights.
      config: its :class:`lcr_tf.modeling.factory.ModelConfig`.
      skeleton: the joint set of its poses (a :mod:`lcr_tf.contracts.skeleton` name).
      precision: the Keras policy it computes in (``float32`` or ``mixed_bfloat16``; variables, inputs and
        the serving outputs are float32 either way).
      batch_norm_folded: whether its batch normalisation is folded into the convolutions (inference only).
    """

    model: Any
    config: Any
    skeleton: str
    precision: str = "float32"
    batch_norm_folded: bool = False


class _Placeholders:
    """The part of :class:`lcr_tf.poses.anchors.AnchorSet` that :func:`lcr_tf.modeling.factory.build_model`
    reads, with zero anchor-poses: the real ones are weights, restored with the others."""

    def __init__(self, num_anchors: int, num_joints: int, skeleton: str):
        self.num_anchors = num_anchors
        self.pose2d = np.zeros((2 * num_anchors, num_joints, 2), np.float32)
        self.pose3d = np.zeros((2 * num_anchors, num_joints, 3), np.float32)
        self.skeleton = skeleton_lib.get_skeleton(skeleton)


def _skeleton_name(run: Mapping[str, Any], num_joints: int) -> str:
    """The skeleton of a run: the one ``config.json`` records; a folder written before it was recorded
    falls back to that of the anchors file it names when it still exists, else the registered skeleton
    with ``num_joints`` joints (LCR-13 first)."""
    recorded = run_folder.skeleton_name(run)
    if recorded:
        return recorded
    path = run_folder.anchors_file(run)
    if path and os.path.isfile(path):
        from lcr_tf.poses import anchors as anchors_lib
        return anchors_lib.load(path).skeleton.name
    if skeleton_lib.LCR13.num_joints == num_joints:
        return skeleton_lib.LCR13.name
    for name, skel in skeleton_lib.SKELETONS.items():
        if skel.num_joints == num_joints:
            return name
    raise ValueError(f"no registered skeleton has {num_joints} joints")


def load_model(model_dir: str, precision: str = "float32", fold_batch_norm: bool = True) -> LoadedModel:
    """Rebuilds the model of a training run (module docstring) with its weights, computing in
    ``precision`` (a Keras policy; the trained float32 weights load into either).

    With ``fold_batch_norm`` (the default) every batch normalisation that follows a convolution is folded
    into it (:mod:`lcr_tf.modeling.batch_norm_folding`): the same function to float32 round-off, and
    faster, but for inference only; ``False`` keeps the network as trained.

    Raises:
      FileNotFoundError: ``model_dir`` lacks ``config.json`` or any weights (the message names the path).
      ValueError: ``config.json`` is not a run configuration.
    """

    run = run_folder.read_config(model_dir)
    config = factory.ModelConfig.from_dict(run["model"])
    skeleton = _skeleton_name(run, config.num_joints)
    # Building never reads the backbone's weight file: the trained weights replace them all.
    config_no_init = dataclasses.replace(config, backbone_weights="none")
    if precision not in SERVING_PRECISIONS:
        raise ValueError(f"serving precision must be one of {SERVING_PRECISIONS}, got {precision!r}")
    anchors = _Placeholders(config.num_anchors, config.num_joints, skeleton)
    with _global_policy(precision):
        backbone = factory.build_backbone(config_no_init)
        model = _built(factory.build_model(config_no_init, anchors, backbone), config.image_size)
    weights = run_folder.weights_path(model_dir)
    if os.path.isfile(weights):
        try:
            model.load_weights(weights)
        except (OSError, ValueError) as e:
            # h5py says "truncated file: eof = ..." without the path; Keras names layers, not files.
            raise ValueError(f"{weights}: cannot be read as this model's weights ({e})") from None
    else:
        latest = tf.train.latest_checkpoint(run_folder.checkpoint_dir(model_dir))
        if latest is None:
            raise FileNotFoundError(f"{model_dir}: neither {FINAL_WEIGHTS} nor a checkpoint in "
                                    f"{CHECKPOINT_DIR}/")
        tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    folded = False
    if fold_batch_norm:
        folded_backbone = batch_norm_folding.fold_backbone(backbone)
        if folded_backbone is not backbone:
            with _global_policy(precision):
                copy = _built(factory.build_model(config_no_init, anchors, folded_backbone), config.image_size)
            _copy_weights_outside(model, copy)
            model, folded = copy, True
    return LoadedModel(model=model, config=config, skeleton=skeleton, precision=precision,
                       batch_norm_folded=folded)


@contextlib.contextmanager
def _global_policy(precision: str):
    """Layers take the global policy when they are built; the caller's policy is put back after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _built(model, image_size: int):
    model(tf.zeros([1, image_size, image_size, 3]))
    return model


def _copy_weights_outside(source, target) -> None:
    """Assigns every weight of the LCRNet ``source`` outside its backbone (trunk and RoI head) to the same
    weight of ``target`` (matched by path: the same wiring around another backbone)."""
    def outside(model):
        inside = {id(v) for v in model.trunk.weights + model.roi_head.weights}
        return [v for v in model.weights if id(v) not in inside]

    theirs, ours = outside(source), outside(target)
    if [(v.path, tuple(v.shape)) for v in theirs] != [(v.path, tuple(v.shape)) for v in ours]:
        raise ValueError("the folded model's weights outside the backbone do not match the trained model's")
    for src, dst in zip(theirs, ours):
        dst.assign(src)


def save_model_dir(model, model_dir: str, skeleton: Optional[str] = None,
                   flags: Optional[Mapping[str, Any]] = None) -> None:
    """Writes ``config.json`` and ``final.weights.h5`` as :mod:`lcr_tf.train` does (for a model trained
    or built elsewhere); ``skeleton`` is recorded so that no anchors file is needed to load it."""
    os.makedirs(model_dir, exist_ok=True)
    run_folder.write_config(model_dir, {"flags": dict(flags or {}), "model": model.model_config.to_dict()},
                            skeleton=skeleton or model.skeleton_name)
    model.save_weights(run_folder.weights_path(model_dir))


def _per_image_features(model, images, prepare) -> Tuple[Dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
    """Runs :meth:`LCRNet.roi_features` on each image at its own size (``input_resize="short_side"``).

    ``images`` is a tuple of per-image tensors for ``tf.map_fn`` and ``prepare(element)`` turns one into
    ``(network input (h, w, 3) float32, scale () float32, original (H, W) int32)``. Returns the features
    stacked (B, R, ...) in float32 but the head inputs, the scales (B, 2) ``(s, s)`` and the sizes (B, 2).
    """
    cfg = model.model_config
    r = cfg.rpn_post_nms_top_n_test
    c = model.num_classes
    compute = tf.as_dtype(model.compute_dtype)

    def one(element):
        net_input, s, size = prepare(element)
        f = float32_features(model.roi_features(net_input[None], training=False))
        f = {k: v[0] for k, v in f.items()}
        return f, s, size

    spec = {lcr_model.BOXES: tf.TensorSpec([r, 4], tf.float32), lcr_model.VALID: tf.TensorSpec([r], tf.bool),
            lcr_model.RPN_SCORES: tf.TensorSpec([r], tf.float32),
            lcr_model.CLASS_PROBS: tf.TensorSpec([r, c], tf.float32),
            lcr_model.HEAD_INPUTS: tf.TensorSpec([r, None], compute)}  # the RoI head's width
    return tf.map_fn(one, images, fn_output_signature=(spec, tf.TensorSpec([2], tf.float32),
                                                      tf.TensorSpec([2], tf.int32)))


def features_encoded(model, encoded, limits: Optional[Mapping[str, Any]] = None
                     ) -> Tuple[Dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
    """(B,) tf.string encoded images -> :meth:`LCRNet.roi_features` of the model's inputs (float32 but the
    head inputs), (B, 2) float32 scales ``(s_x, s_y)`` (original pixel = network pixel / s) and (B, 2) int32
    original sizes ``(H, W)``, following the model's ``input_resize`` (letterboxed batch, or each image at
    its own short-side scale) and ``jpeg_dct_method``. Checks and errors as :func:`prepare_encoded`."""
    cfg = model.model_config
    if cfg.input_resize == "letterbox" and not cfg.jpeg_dct_method:
        images, scales, sizes = image_input.prepare_encoded(encoded, cfg.image_size, limits)
        return float32_features(model.roi_features(images, training=False)), scales, sizes
    encoded, limits = image_input.checked_request(encoded, limits)

    def prepare(element):
        data, index = element
        image = image_input.decode_checked(data, index, limits, cfg.jpeg_dct_method)
        if cfg.input_resize == "letterbox":
            canvas, scales = image_input.letterbox(image, cfg.image_size)
            return canvas, scales, tf.shape(image)[:2]
        resized, s = image_input.resize_short_side(image, cfg.short_side, cfg.test_max_size)
        return resized, tf.stack([s, s]), tf.shape(image)[:2]

    return _per_image_features(model, (encoded, tf.range(tf.size(encoded))), prepare)


def features_float(model, images) -> Tuple[Dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
    """(B, H, W, 3) float RGB in [0, 255] (one size for the batch) -> as :func:`features_encoded`."""
    cfg = model.model_config
    if cfg.input_resize == "letterbox":
        canvases, scales, sizes = image_input.prepare_float(images, cfg.image_size)
        return float32_features(model.roi_features(canvases, training=False)), scales, sizes
    images = tf.cast(images, tf.float32)

    def prepare(image):
        resized, s = image_input.resize_short_side(image, cfg.short_side, cfg.test_max_size)
        return resized, tf.stack([s, s]), tf.shape(image)[:2]

    return _per_image_features(model, images, prepare)


# --------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------

def default_params(num_anchors: int, mode: str = "paper", **overrides) -> params_lib.PPIParams:
    """The :class:`lcr_tf.postprocess.PPIParams` of a model with K = ``num_anchors`` (2K foreground
    classes, the first K full-body), every None resolved for ``mode``; ``overrides`` replace fields."""
    params = params_lib.PPIParams(num_full_body=int(num_anchors), **overrides)
    return params.resolve(mode, 2 * int(num_anchors))


def runtime_tensors(params: params_lib.PPIParams, batch_size=None) -> Dict[str, tf.Tensor]:
    """The :data:`RUNTIME_PARAMS` of ``params`` as float32 / bool tensors, () or, with ``batch_size``,
    repeated to (B,) (one value per image)."""
    out = {}
    for name in RUNTIME_PARAMS:
        value = getattr(params, name)
        is_bool = name in serving.BOOL_OPTIONS
        tensor = tf.constant(bool(value)) if is_bool else tf.constant(float(value), tf.float32)
        out[name] = tensor if batch_size is None else tf.fill([batch_size], tensor)
    return out


def candidates(model, features: Mapping[str, tf.Tensor], scales, score_threshold, max_candidates: int
               ) -> Dict[str, tf.Tensor]:
    """Candidate selection, class-selective regression and decoding, in original pixels.

    Args:
      model: the LCRNet.
      features: :meth:`LCRNet.roi_features` of B letterboxed images (R proposals).
      scales: (B, 2) letterbox scales ``(s_x, s_y)``.
      score_threshold: (B,) float32 candidate threshold per image.
      max_candidates: M, the padded number of candidates per image.
    Returns:
      dict of the :data:`lcr_tf.contracts.serving.CANDIDATE_FIELDS`: ``roi_index`` (B, M) int32,
      ``classes`` (B, M) int32 in 1..2K, ``score`` (B, M) float32, ``valid`` (B, M) bool, ``roi_boxes``
      (B, M, 4) xyxy original pixels, ``pose2d_px`` (B, M, J, 2) original pixels,
      ``pose3d_body_centred_m`` (B, M, J, 3) metres; padding rows have ``valid`` False.
    """

    probs = features[lcr_model.CLASS_PROBS]
    # Padding proposals score nothing, so they never become candidates.
    probs = tf.where(features[lcr_model.VALID][..., None], probs, 0.0)
    m = int(max_candidates)

    def select(args):
        p, threshold = args
        roi, cls, score, valid = decoding_tf.select_candidates_tf(p, threshold, m)
        return (tf.ensure_shape(tf.cast(roi, tf.int32), [m]), tf.ensure_shape(tf.cast(cls, tf.int32), [m]),
                tf.ensure_shape(score, [m]), tf.ensure_shape(valid, [m]))

    roi, cls, score, valid = tf.map_fn(select, (probs, tf.cast(score_threshold, tf.float32)),
                                       fn_output_signature=(tf.int32, tf.int32, tf.float32, tf.bool))
    # Candidates share RoIs (M is often several times R), so the regression runs once per RoI for the
    # classes some candidate has (U), not once per candidate: B R D |U| 5J multiply-adds at most, the cost
    # of the full regression when U is most classes.
    head = features[lcr_model.HEAD_INPUTS]  # (B, R, D)
    batch, num_rois = tf.shape(roi)[0], tf.shape(head)[1]
    distinct, position = tf.unique(tf.reshape(cls, [-1]))  # (U,), (B M,)
    blocks = tf.cast(model.regress_classes(tf.reshape(head, [batch * num_rois, -1]),
                                           tf.tile(distinct[None], [batch * num_rois, 1])), tf.float32)  # (B R, U, 5J)
    rows = tf.reshape(roi + tf.range(batch)[:, None] * num_rois, [-1])
    deltas = tf.gather_nd(blocks, tf.stack([rows, position], axis=-1))[:, None]  # (B M, 1, 5J)
    boxes = tf.gather(features[lcr_model.BOXES], roi, batch_dims=1)  # (B, M, 4) letterbox pixels
    pose2d, pose3d = pose_coding.decode_poses(deltas, tf.reshape(boxes, [-1, 4]), tf.reshape(cls, [-1, 1]),
                                              model.anchor_pose2d, model.anchor_pose3d)
    j = model.num_joints
    scales = tf.cast(scales, tf.float32)
    pose2d = tf.reshape(pose2d, [batch, m, j, 2]) / scales[:, None, None, :]
    pose3d = tf.reshape(pose3d, [batch, m, j, 3])
    boxes = boxes / tf.tile(scales, [1, 2])[:, None, :]
    return {serving.CANDIDATE_ROI_INDEX: roi, serving.CANDIDATE_CLASSES: cls, serving.SCORE: score,
            serving.CANDIDATE_VALID: valid, serving.CANDIDATE_ROI_BOXES: boxes, serving.POSE2D: pose2d,
            serving.POSE3D: pose3d}


def integrate(cands: Mapping[str, tf.Tensor], image_sizes, params: params_lib.PPIParams,
              runtime: Mapping[str, tf.Tensor], intrinsics=None, mode: str = "paper") -> Dict[str, tf.Tensor]:
    """PPI and 3D placement per image of a batch of candidates (:func:`candidates`).

    Args:
      cands: candidates of B images.
      image_sizes: (B, 2) int32 original ``(H, W)``.
      params: the export-time PPI settings (structural fields and defaults).
      runtime: :data:`RUNTIME_PARAMS` name -> (B,) tensor, one value per image.
      intrinsics: (B, 4) float32 ``fx, fy, cx, cy`` pixels of the original images; a row whose fx is not
        positive (or None for all) takes the default camera of :mod:`lcr_tf.postprocess.placement`.
      mode: ``"paper"``, ``"official"`` or ``"nms"``.
    Returns:
      dict of :data:`DETECTION_KEYS` (:mod:`lcr_tf.contracts.serving`): ``num_detections`` (B,) int32,
      ``score`` (B, D), ``box_xyxy_px`` (B, D, 4), ``pose2d_px`` (B, D, J, 2), ``pose3d_body_centred_m``
      (B, D, J, 3), ``pose3d_camera_m`` (B, D, J, 3), ``translation_m`` (B, D, 3); rows past
      ``num_detections`` are zeros.
    """

    if mode not in GRAPH_MODES:
        raise ValueError(f"graph PPI mode must be one of {GRAPH_MODES}, got {mode!r}")
    batch = tf.shape(cands[serving.SCORE])[0]
    if intrinsics is None:
        intrinsics = tf.zeros([batch, 4], tf.float32)
    image_sizes = tf.cast(image_sizes, tf.int32)
    d = params.max_detections

    def one(args):
        c, size, run, intr = args
        det = ppi_tf.integrate_candidates(
            c[serving.SCORE], c[serving.CANDIDATE_ROI_BOXES], c[serving.POSE2D], c[serving.POSE3D],
            c[serving.CANDIDATE_CLASSES], c[serving.CANDIDATE_VALID], size,
            _ppi_tensor_params(params, run), mode=mode)
        # The keys of det are those of lcr_tf.postprocess.ppi_tf.
        n = tf.cast(det["num_detections"], tf.int32)
        translation, camera = tf.cond(
            intr[0] > 0,
            lambda: placement_tf.place_3d_tf(det["pose2d"], det["pose3d"], intr, size),
            lambda: placement_tf.place_3d_tf(det["pose2d"], det["pose3d"], None, size))
        keep = tf.range(d) < n
        def zero(t):
            return tf.where(tf.reshape(keep, [d] + [1] * (t.shape.rank - 1)), t, tf.zeros_like(t))

        return {serving.NUM_DETECTIONS: n, serving.SCORE: zero(det["scores"]), serving.BOX: zero(det["boxes"]),
                serving.POSE2D: zero(det["pose2d"]), serving.POSE3D: zero(det["pose3d"]),
                serving.POSE3D_CAMERA: zero(camera), serving.TRANSLATION: zero(translation)}

    j = cands[serving.POSE2D].shape[-2]
    signature = {serving.NUM_DETECTIONS: tf.TensorSpec([], tf.int32), serving.SCORE: tf.TensorSpec([d], tf.float32),
                 serving.BOX: tf.TensorSpec([d, 4], tf.float32),
                 serving.POSE2D: tf.TensorSpec([d, j, 2], tf.float32),
                 serving.POSE3D: tf.TensorSpec([d, j, 3], tf.float32),
                 serving.POSE3D_CAMERA: tf.TensorSpec([d, j, 3], tf.float32),
                 serving.TRANSLATION: tf.TensorSpec([d, 3], tf.float32)}
    per_image = {k: cands[k] for k in (serving.SCORE, serving.CANDIDATE_ROI_BOXES, serving.POSE2D, serving.POSE3D,
                                       serving.CANDIDATE_CLASSES, serving.CANDIDATE_VALID)}
    return tf.map_fn(one, (per_image, image_sizes, dict(runtime), tf.cast(intrinsics, tf.float32)),
                     fn_output_signature=signature)


def _ppi_tensor_params(params: params_lib.PPIParams, runtime: Mapping[str, tf.Tensor]) -> Dict[str, Any]:
    """The PPI settings of one image for :func:`lcr_tf.postprocess.ppi_tf.integrate_candidates`: the
    export-time ``params`` with the per-request values of ``runtime`` (scalar tensors)."""
    settings = dataclasses.asdict(params)
    settings.update({k: runtime[k] for k in RUNTIME_PARAMS})
    return settings


def detect(model, images, scales, image_sizes, params: params_lib.PPIParams,
           runtime: Optional[Mapping[str, tf.Tensor]] = None, intrinsics=None, mode: str = "paper"
           ) -> Dict[str, tf.Tensor]:
    """People in letterboxed images: model -> candidates -> PPI -> placement (module docstring).

    Args:
      model: the LCRNet.
      images: (B, S, S, 3) float32 letterboxed RGB in [0, 255] (:func:`prepare_encoded`,
        :func:`prepare_float`).
      scales: (B, 2) letterbox scales; image_sizes: (B, 2) int32 original ``(H, W)``.
      params: resolved PPI settings (:func:`default_params`).
      runtime: per-image :data:`RUNTIME_PARAMS` ((B,) tensors); None: those of ``params``.
      intrinsics: (B, 4) ``fx, fy, cx, cy`` or None (see :func:`integrate`).
      mode: graph PPI mode.
    Returns:
      the dict of :func:`integrate`.
    """
    features = float32_features(model.roi_features(images, training=False))
    return detect_features(model, features, scales, image_sizes, params, runtime, intrinsics, mode)


def detect_features(model, features, scales, image_sizes, params: params_lib.PPIParams,
                    runtime: Optional[Mapping[str, tf.Tensor]] = None, intrinsics=None, mode: str = "paper"
                    ) -> Dict[str, tf.Tensor]:
    """:func:`detect` from the model's features (:func:`features_encoded`, :func:`features_float`)."""
    if runtime is None:
        runtime = runtime_tensors(params, tf.shape(scales)[0])
    cands = candidates(model, features, scales, runtime["score_threshold"], params.max_candidates)
    return integrate(cands, image_sizes, params, runtime, intrinsics, mode)


def proposals(model, images, scales, params: params_lib.PPIParams, score_threshold=None
              ) -> Dict[str, tf.Tensor]:
    """Raw proposals and candidates of letterboxed images, in original pixels, for evaluation.

    Returns:
      dict of ``proposal_boxes`` (B, R, 4) xyxy pixels, ``proposal_valid`` (B, R) bool,
      ``class_probs`` (B, R, 2K + 1) (background first, the public release's ``scores`` layout), and the
      candidates of :func:`candidates` under the prefix ``candidate_`` (M = ``params.max_candidates``):
      the :data:`lcr_tf.contracts.serving.PROPOSAL_KEYS` but ``image_size``.
    """

    features = float32_features(model.roi_features(images, training=False))
    return proposals_features(model, features, scales, params, score_threshold)


def proposals_features(model, features, scales, params: params_lib.PPIParams, score_threshold=None
                       ) -> Dict[str, tf.Tensor]:
    """:func:`proposals` from the model's features (:func:`features_encoded`)."""
    batch = tf.shape(scales)[0]
    if score_threshold is None:
        score_threshold = tf.fill([batch], tf.constant(float(params.score_threshold), tf.float32))
    cands = candidates(model, features, scales, score_threshold, params.max_candidates)
    scales = tf.cast(scales, tf.float32)
    out = {serving.PROPOSAL_BOXES: features[lcr_model.BOXES] / tf.tile(scales, [1, 2])[:, None, :],
           serving.PROPOSAL_VALID: features[lcr_model.VALID], serving.CLASS_PROBS: features[lcr_model.CLASS_PROBS]}
    out.update({serving.candidate_key(k): v for k, v in cands.items()})
    return out
