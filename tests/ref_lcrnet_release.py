"""An independent NumPy reference of the authors' released LCR-Net++ network (forward pass only), for parity tests.

This helper (not a test file) re-implements, straight from the release's and Detectron.pytorch's code, what
``detect_pose.detect_pose`` of the release (github.com/naver/lcrnet-v2-improved-ppi, ``detect_pose.py`` +
``lcrnet_model.py``) computes for one image with the configuration of the released models:

* ``MODEL.CONV_BODY = 'ResNet.ResNet50_conv4_body'`` (Detectron.pytorch ``lib/modeling/ResNet.py``), frozen
  batch norm as ``AffineChannel2d`` (``lib/nn/modules/affine.py``: ``x * weight + bias`` per channel);
* a single-scale RPN (``lib/modeling/rpn_heads.py`` ``single_scale_rpn_outputs``: 3x3 conv + ReLU, 1x1
  objectness logits -> sigmoid, 1x1 box deltas) and its proposals (``lib/modeling/generate_proposals.py``);
* RoIAlign (``lib/modeling/roi_xfrom/roi_align/src/roi_align_kernel.cu``, the legacy, un-shifted version with
  adaptive sampling), the ``ResNet_roi_conv5_head`` box head (res5 + 7x7 average pool);
* the release's ``lcrnet_outputs`` (``cls_score`` softmax and ``pose_pred / 5``) and ``detect_pose``'s decoding of
  the pose deltas into 2D poses (image pixels) and 3D poses (metres).

It also builds a random but non-degenerate checkpoint with exactly the release's parameter names and shapes
(:func:`make_release_checkpoint`), so that a converter of the released ``<name>.pkl`` files can be checked against
this reference without the (non-redistributable) files themselves.

The RPN proposals and RoIAlign come from the sibling helpers :mod:`ref_detectron_rpn` and
:mod:`ref_detectron_roi_align` (``tests/`` is on ``sys.path`` under pytest; import this module by its bare name).

Layouts and conventions (all checked in the sources named above):

* Images are OpenCV BGR uint8 (H, W, 3), as ``cv2.imread`` gives them; the network input ("blob") is float32 BGR
  minus ``PIXEL_MEANS``; activations here are NHWC (the release's are NCHW; the weights stay in torch layout:
  conv ``(out, in, kh, kw)``, linear ``(out, in)``).
* Boxes are ``x1, y1, x2, y2`` in pixels (Detectron's inclusive-corner convention, ``x2 - x1 + 1`` wide).
* Anchor poses ``(2K, 5J)``: per class ``x(J), y(J), X(J), Y(J), Z(J)``; ``x, y`` box-normalised (x right,
  y down, the box is [0, 1]^2); ``X, Y, Z`` metres, body-centred (origin = mean of the hips and shoulders), in
  the release's axes: X to the image's LEFT, Y UP, Z away from the camera (X = -x_cam, Y = -y_cam, Z = z_cam of
  a camera frame with x right, y down, z away). The release's ``demo.py`` shows it: its scene placement fits a
  translation (and a homogeneous scale) with ``standard_projmat.npy``, whose rows map +x_cam to +u and +y_cam
  to +v, then adds the translation to X and Y but *subtracts* it from Z -- consistent with a pose in
  (-x_cam, -y_cam, z_cam) axes recovered with a negative homogeneous scale. Classes 1..K are full-body
  anchors, K+1..2K upper-body ones (2D anchor placed in a box around the upper body), class 0 the background.
* Joint orders. J = 13 (the release's; ``demo.py`` draws left bones (9,11), (7,9), (1,3), (3,5), right bones
  (0,2), (2,4), (8,10), (6,8), the hips (4,5) and shoulders (10,11), and the head 12 joined to the shoulders'
  middle): right_ankle, left_ankle, right_knee, left_knee, right_hip, left_hip, right_wrist, left_wrist,
  right_elbow, left_elbow, right_shoulder, left_shoulder, head.
  J = 17, read from ``demo.py``'s ``display_poses`` bones for ``njts == 17``: the same limb bones on 0-11, then
  (4,13), (5,13): 13 joins both hips = pelvis; (13,14), (14,15): 14 = spine, between pelvis and 15;
  (10,15), (11,15): 15 joins both shoulders = thorax; (15,16), (12,16): 16 lies between the thorax and joint
  12, which is a leaf. This is Human3.6M's chain pelvis-spine-thorax-neck/nose-head, with the first 13 joints
  kept as in the 13-joint model: 12 = head (H36M's 'Head', the end of the chain), 13 = pelvis, 14 = spine,
  15 = thorax, 16 = neck/nose. (``demo.py`` writes the score at joint 16; that places a label, it does not name
  the joint.) This order is our reading of the drawing code; the release does not name its joints.
"""

from __future__ import annotations

import ast
import copy
import time
from collections import OrderedDict
from typing import Any, Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from ref_detectron_roi_align import roi_align_legacy_np
from ref_detectron_rpn import generate_anchors_np, proposals_np

# ---------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------

#: The defaults of Detectron.pytorch's ``lib/core/config.py`` for every setting the release's ``LCRNet`` /
#: ``detect_pose`` read, nested like the config; values a released file does not set take these. Read at HEAD
#: (1b1c4ba); the release needs a Detectron.pytorch of 2018-05-15 or later (it reads
#: ``cfg.PYTORCH_VERSION_LESS_THAN_040``, added then), and none of these values, nor the ResNet / RPN / RoIAlign /
#: blob code used here, changed in behaviour between then and HEAD. Note: ``TEST.RPN_PRE_NMS_TOP_N`` is 12000 and
#: ``TEST.RPN_POST_NMS_TOP_N`` 2000 there (6000 / 1000 were the defaults only before commit fac7b8c, 2018-04-03);
#: ``RPN.SIZES`` defaults to (64, 128, 256, 512) and ``FAST_RCNN.ROI_XFORM_METHOD`` to 'RoIPoolF', so a released
#: file with 15 RPN anchors and RoIAlign sets both; ``TEST.BBOX_REG`` defaults to True, which ``LCRNet`` refuses, so
#: the files set it False. ``RPN.STRIDE`` is not read by the single-scale RPN (its stride is ``1 /
#: Conv_Body.spatial_scale`` = 16).
DETECTRON_DEFAULTS: Dict[str, Any] = {
    "PIXEL_MEANS": np.array([[[102.9801, 115.9465, 122.7717]]]),  # BGR, (1, 1, 3) float64
    "BBOX_XFORM_CLIP": float(np.log(1000.0 / 16.0)),  # clip of dw, dh in utils/boxes.py bbox_transform
    "MODEL": {
        "TYPE": "",
        "CONV_BODY": "",
        "NUM_CLASSES": -1,
        "CLS_AGNOSTIC_BBOX_REG": False,
        "FASTER_RCNN": False,
        "MASK_ON": False,
        "KEYPOINTS_ON": False,
        "RPN_ONLY": False,
        "SHARE_RES5": False,
        "LOAD_IMAGENET_PRETRAINED_WEIGHTS": True,
    },
    "RPN": {
        "RPN_ON": False,  # inferred True by assert_and_infer_cfg when MODEL.FASTER_RCNN
        "OUT_DIM_AS_IN_DIM": True,
        "OUT_DIM": 512,
        "CLS_ACTIVATION": "sigmoid",
        "SIZES": (64, 128, 256, 512),
        "STRIDE": 16,
        "ASPECT_RATIOS": (0.5, 1, 2),
    },
    "FPN": {
        "FPN_ON": False,
        "MULTILEVEL_ROIS": False,
        "MULTILEVEL_RPN": False,
    },
    "FAST_RCNN": {
        "ROI_BOX_HEAD": "",
        "ROI_XFORM_METHOD": "RoIPoolF",
        "ROI_XFORM_SAMPLING_RATIO": 0,
        "ROI_XFORM_RESOLUTION": 14,
    },
    "RESNETS": {
        "NUM_GROUPS": 1,
        "WIDTH_PER_GROUP": 64,
        "STRIDE_1X1": True,
        "TRANS_FUNC": "bottleneck_transformation",
        "STEM_FUNC": "basic_bn_stem",
        "SHORTCUT_FUNC": "basic_bn_shortcut",
        "RES5_DILATION": 1,
        "FREEZE_AT": 2,
        "USE_GN": False,
    },
    "TEST": {
        "SCALE": 600,
        "MAX_SIZE": 1000,
        "NMS": 0.3,
        "BBOX_REG": True,
        "RPN_NMS_THRESH": 0.7,
        "RPN_PRE_NMS_TOP_N": 12000,
        "RPN_POST_NMS_TOP_N": 2000,
        "RPN_MIN_SIZE": 0,
    },
}

#: ``<name>.pkl``'s ``ppi_params`` of :func:`make_release_checkpoint` by default: the keyword defaults of the
#: release's ``lcr_net_ppi_improved.LCRNet_PPI_improved`` with ``iou_func='bbox_torsohead'``. The values in the
#: real released files are not known here.
DEFAULT_PPI_PARAMS: Dict[str, Any] = {
    "th_pose3D": 0.3, "th_iou": 0.2, "iou_func": "bbox_torsohead", "min_mode_score": 0.05,
    "th_persondetect": 0.002,
}

CONV_BODY = "ResNet.ResNet50_conv4_body"
ROI_BOX_HEAD = "ResNet.ResNet_roi_conv5_head"
#: (stage name, number of blocks, bottleneck width, output width, stride of the first block) of
#: ``ResNet50_conv4_body`` (res2-res4) and of ``ResNet_roi_conv5_head`` (res5, stride ROI_XFORM_RESOLUTION // 7).
BODY_STAGES = (("res2", 3, 64, 256, 1), ("res3", 4, 128, 512, 2), ("res4", 6, 256, 1024, 2))
RES5_STAGE = ("res5", 3, 512, 2048)
NT = 5  # detect_pose.NT: x, y (2D) and X, Y, Z (3D) per joint


def _decode_value(value):
    """Detectron.pytorch ``core/config.py`` ``_decode_cfg_value``: strings go through ``ast.literal_eval``
    (left as they are when they are not a literal), dicts stay dicts, anything else passes."""
    if isinstance(value, dict):
        return dict(value)
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _coerce(value, default, full_key: str):
    """Detectron.pytorch ``core/config.py`` ``_check_and_coerce_cfg_value_type``: the type of the default wins;
    tuple <-> list and anything -> str (or -> ndarray) are coerced, other mismatches raise ValueError."""
    if type(value) is type(default):
        return value
    if isinstance(default, np.ndarray):
        return np.array(value, dtype=default.dtype)
    if isinstance(default, str):
        return str(value)
    if isinstance(value, tuple) and isinstance(default, list):
        return list(value)
    if isinstance(value, list) and isinstance(default, tuple):
        return tuple(value)
    raise ValueError(f"Type mismatch ({type(default)} vs. {type(value)}) with values ({default} vs. {value}) "
                     f"for config key: {full_key}")


def _merge(a: dict, b: dict, stack: Tuple[str, ...] = ()) -> None:
    """Detectron.pytorch ``core/config.py`` ``_merge_a_into_b`` (as ``detect_pose`` calls it with the file's
    ``cfg``), on plain dicts. Unlike the release, a key absent from :data:`DETECTRON_DEFAULTS` (which holds only
    the settings this network reads) is kept as given (decoded) rather than refused."""
    for key, raw in a.items():
        full_key = ".".join(stack + (str(key),))
        value = _decode_value(copy.deepcopy(raw))
        if key not in b:
            b[key] = _decoded_tree(value)
            continue
        if full_key == "TEST.SCALE" and isinstance(value, (tuple, list)):
            # Detectron.pytorch tests at one scale ("Scale to use during testing (can NOT list multiple
            # scales)"): the release cannot run with a sequence here (_merge_a_into_b refuses the type against
            # the int default, and get_image_blob's float(target_size) could not take one). Leniency of this
            # reference: a one-element sequence is unwrapped to its element.
            if len(value) != 1:
                raise ValueError(f"TEST.SCALE {value!r}: Detectron.pytorch tests at one scale only")
            value = value[0]
        value = _coerce(value, b[key], full_key)
        if isinstance(value, dict):
            _merge(value, b[key], stack + (str(key),))
        else:
            b[key] = value


def _decoded_tree(value):
    """A cfg value with no default: nested dicts decoded entry by entry (:func:`_decode_value`)."""
    if isinstance(value, dict):
        return {k: _decoded_tree(_decode_value(v)) for k, v in value.items()}
    return value


def release_cfg(cfg: dict) -> dict:
    """The release's effective settings: :data:`DETECTRON_DEFAULTS` overridden by a file's ``cfg``.

    Follows ``detect_pose.detect_pose``: ``_merge_a_into_b(cfg_dict, cfg)`` (strings literal-eval'd, e.g.
    ``'(32, 64, 128, 256, 512)'``, tuple/list coerced to the default's type), then
    ``cfg.MODEL.LOAD_IMAGENET_PRETRAINED_WEIGHTS = False`` and ``assert_and_infer_cfg`` (``MODEL.FASTER_RCNN``
    or ``MODEL.RPN_ONLY`` -> ``RPN.RPN_ON = True``).

    Args:
      cfg: nested dict (``{'MODEL': {...}, 'TEST': {...}, ...}``), values possibly strings. An ``AttrDict`` is
        a dict and works as is.
    Returns:
      A new nested dict with every key of :data:`DETECTRON_DEFAULTS` (plus the file's other keys).
      ``TEST.SCALE`` is an int (a one-element sequence is unwrapped; a longer one raises ValueError).
    """
    out = copy.deepcopy(DETECTRON_DEFAULTS)
    _merge(dict(cfg), out)
    out["MODEL"]["LOAD_IMAGENET_PRETRAINED_WEIGHTS"] = False
    if out["MODEL"]["RPN_ONLY"] or out["MODEL"]["FASTER_RCNN"]:
        out["RPN"]["RPN_ON"] = True
    return out


def _check_supported(cfg: dict) -> None:
    """Raises ValueError unless ``cfg`` (from :func:`release_cfg`) is the released models' architecture, which is
    all this reference implements (and the asserts of the release's ``LCRNet.__init__``)."""
    want = {
        ("MODEL", "CONV_BODY"): CONV_BODY, ("FAST_RCNN", "ROI_BOX_HEAD"): ROI_BOX_HEAD,
        ("FAST_RCNN", "ROI_XFORM_METHOD"): "RoIAlign", ("MODEL", "FASTER_RCNN"): True,
        ("MODEL", "MASK_ON"): False, ("MODEL", "KEYPOINTS_ON"): False, ("MODEL", "RPN_ONLY"): False,
        ("TEST", "BBOX_REG"): False, ("MODEL", "CLS_AGNOSTIC_BBOX_REG"): False, ("FPN", "FPN_ON"): False,
        ("RPN", "CLS_ACTIVATION"): "sigmoid", ("RPN", "OUT_DIM_AS_IN_DIM"): True,
        ("RESNETS", "NUM_GROUPS"): 1, ("RESNETS", "WIDTH_PER_GROUP"): 64,
        ("RESNETS", "TRANS_FUNC"): "bottleneck_transformation", ("RESNETS", "STEM_FUNC"): "basic_bn_stem",
        ("RESNETS", "SHORTCUT_FUNC"): "basic_bn_shortcut", ("RESNETS", "USE_GN"): False,
    }
    for (section, key), value in want.items():
        if cfg[section][key] != value:
            raise ValueError(f"{section}.{key} = {cfg[section][key]!r}: this reference implements the released "
                             f"models' {value!r} only")
    if cfg["FAST_RCNN"]["ROI_XFORM_RESOLUTION"] < 7:
        raise ValueError("FAST_RCNN.ROI_XFORM_RESOLUTION must be >= 7 (res5 then a 7x7 average pool)")


# ---------------------------------------------------------------------------------------------------------------
# Layers (NHWC float32; torch-layout weights)
# ---------------------------------------------------------------------------------------------------------------

def conv2d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None, stride: int = 1,
           pad: int = 0) -> np.ndarray:
    """``torch.nn.Conv2d`` (groups=1, dilation=1, zero padding) by im2col + matmul.

    Args:
      x: (N, H, W, Cin) float32.
      weight: (Cout, Cin, kh, kw), torch layout. bias: (Cout,) or None.
    Returns:
      (N, Ho, Wo, Cout) float32 with ``Ho = (H + 2 pad - kh) // stride + 1`` (likewise Wo).
    """
    cout, cin, kh, kw = weight.shape
    if x.shape[-1] != cin:
        raise ValueError(f"conv2d: input has {x.shape[-1]} channels, weight expects {cin}")
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n = x.shape[0]
    if kh == kw == 1:
        cols = x[:, ::stride, ::stride, :]
        ho, wo = cols.shape[1:3]
        cols = cols.reshape(n * ho * wo, cin)
    else:
        win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # (N, Ho, Wo, Cin, kh, kw)
        ho, wo = win.shape[1:3]
        cols = win.reshape(n * ho * wo, cin * kh * kw)
    out = cols @ weight.reshape(cout, cin * kh * kw).T
    if bias is not None:
        out += bias
    return out.reshape(n, ho, wo, cout)


def affine_channel(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``AffineChannel2d`` (Detectron.pytorch ``lib/nn/modules/affine.py``): ``x * weight + bias`` per channel
    (the last axis here). Computed in place in ``x`` (always a fresh convolution output here), returned."""
    x *= weight
    x += bias
    return x


def relu(x: np.ndarray) -> np.ndarray:
    """ReLU, in place in ``x`` (a fresh array wherever it is called), returned."""
    return np.maximum(x, 0, out=x)


def max_pool_3x3_s2_p1(x: np.ndarray) -> np.ndarray:
    """``nn.MaxPool2d(kernel_size=3, stride=2, padding=1)`` of ``basic_bn_stem`` (padding with -inf, floor
    mode): (N, H, W, C) -> (N, (H - 1) // 2 + 1, (W - 1) // 2 + 1, C)."""
    x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    return sliding_window_view(x, (3, 3), axis=(1, 2))[:, ::2, ::2].max(axis=(-2, -1))


def avg_pool(x: np.ndarray, k: int) -> np.ndarray:
    """``nn.AvgPool2d(k)`` (stride k, no padding, floor mode): (N, H, W, C) -> (N, H // k, W // k, C)."""
    n, h, w, c = x.shape
    ho, wo = h // k, w // k
    return x[:, :ho * k, :wo * k].reshape(n, ho, k, wo, k, c).mean(axis=(2, 4))


def bottleneck(x: np.ndarray, model: Dict[str, np.ndarray], prefix: str, stride: int,
               stride_1x1: bool = True) -> np.ndarray:
    """``ResNet.bottleneck_transformation`` (Detectron.pytorch ``lib/modeling/ResNet.py``).

    conv1 1x1 -> bn1 -> ReLU -> conv2 3x3 pad 1 -> bn2 -> ReLU -> conv3 1x1 -> bn3, plus the shortcut
    (``downsample``: 1x1 conv with the block's stride + AffineChannel, when ``prefix.downsample.0.weight``
    exists; else the input), then ReLU. The stride is on conv1 when ``RESNETS.STRIDE_1X1`` (the original ResNet,
    Detectron's default), else on conv2. ``bn*`` are AffineChannel2d.

    Args:
      x: (N, H, W, Cin) float32. model: the state dict. prefix: e.g. ``'Conv_Body.res3.0'``.
    Returns:
      (N, Ho, Wo, Cout) float32.
    """
    s1, s3 = (stride, 1) if stride_1x1 else (1, stride)
    out = conv2d(x, model[prefix + ".conv1.weight"], stride=s1)
    out = relu(affine_channel(out, model[prefix + ".bn1.weight"], model[prefix + ".bn1.bias"]))
    out = conv2d(out, model[prefix + ".conv2.weight"], stride=s3, pad=1)
    out = relu(affine_channel(out, model[prefix + ".bn2.weight"], model[prefix + ".bn2.bias"]))
    out = conv2d(out, model[prefix + ".conv3.weight"])
    out = affine_channel(out, model[prefix + ".bn3.weight"], model[prefix + ".bn3.bias"])
    if prefix + ".downsample.0.weight" in model:
        residual = conv2d(x, model[prefix + ".downsample.0.weight"], stride=stride)
        residual = affine_channel(residual, model[prefix + ".downsample.1.weight"],
                                  model[prefix + ".downsample.1.bias"])
    else:
        residual = x
    out += residual
    return relu(out)


def res_stage(x: np.ndarray, model: Dict[str, np.ndarray], prefix: str, num_blocks: int, stride_init: int,
              stride_1x1: bool = True) -> np.ndarray:
    """``ResNet.add_stage``: ``num_blocks`` bottlenecks, the first with stride ``stride_init`` (and the
    downsample shortcut), the others stride 1. x: (N, H, W, C) float32."""
    for b in range(num_blocks):
        x = bottleneck(x, model, f"{prefix}.{b}", stride_init if b == 0 else 1, stride_1x1)
    return x


def conv4_body(model: Dict[str, np.ndarray], blob: np.ndarray, stride_1x1: bool = True) -> np.ndarray:
    """``ResNet.ResNet50_conv4_body`` = ``ResNet_convX_body((3, 4, 6))``: ``basic_bn_stem`` (7x7/2 conv pad 3
    without bias, AffineChannel, ReLU, 3x3/2 max pool pad 1), then res2 (3 blocks, stride 1), res3 (4, stride 2),
    res4 (6, stride 2).

    Args:
      blob: (h, w, 3) float32 network input (BGR minus PIXEL_MEANS).
    Returns:
      (Hf, Wf, 1024) float32 conv4 features, stride 16 (``spatial_scale = 1/16``).
    """
    x = blob[None].astype(np.float32, copy=False)
    x = conv2d(x, model["Conv_Body.res1.conv1.weight"], stride=2, pad=3)
    x = relu(affine_channel(x, model["Conv_Body.res1.bn1.weight"], model["Conv_Body.res1.bn1.bias"]))
    x = max_pool_3x3_s2_p1(x)
    for name, blocks, _, _, stride in BODY_STAGES:
        x = res_stage(x, model, "Conv_Body." + name, blocks, stride, stride_1x1)
    return x[0]


def rpn_outputs(model: Dict[str, np.ndarray], features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``rpn_heads.single_scale_rpn_outputs.forward`` at test time, before the proposals.

    ``RPN_conv`` (3x3, pad 1, bias) + ReLU, ``RPN_cls_score`` (1x1) -> sigmoid (``RPN.CLS_ACTIVATION =
    'sigmoid'``), ``RPN_bbox_pred`` (1x1).

    Args:
      features: (Hf, Wf, C) conv4 features.
    Returns:
      ``cls_prob`` (Hf, Wf, A) objectness in [0, 1] and ``bbox_pred`` (Hf, Wf, A, 4) deltas (dx, dy, dw, dh);
      anchor index a is torch channel a of the scores and channels 4a..4a+3 of the deltas (the order
      ``generate_proposals`` reshapes them in).
    """
    x = relu(conv2d(features[None], model["RPN.RPN_conv.weight"], model["RPN.RPN_conv.bias"], pad=1))
    logits = conv2d(x, model["RPN.RPN_cls_score.weight"], model["RPN.RPN_cls_score.bias"])[0]
    deltas = conv2d(x, model["RPN.RPN_bbox_pred.weight"], model["RPN.RPN_bbox_pred.bias"])[0]
    prob = (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)
    return prob, deltas.reshape(deltas.shape[0], deltas.shape[1], -1, 4)


def box_head(model: Dict[str, np.ndarray], pooled: np.ndarray, stride_init: int = 2, stride_1x1: bool = True,
             chunk: int = 64) -> np.ndarray:
    """``ResNet.ResNet_roi_conv5_head`` after its RoI transform: res5 (3 bottlenecks, 1024 -> 2048, first stride
    ``ROI_XFORM_RESOLUTION // 7``) then ``nn.AvgPool2d(7)``.

    Args:
      pooled: (R, P, P, 1024) RoIAligned features (P = ROI_XFORM_RESOLUTION).
    Returns:
      (R, 2048) float32 (the pooled map must be 1x1, as ``lcrnet_outputs`` squeezes it).
    """
    name, blocks, _, dim_out = RES5_STAGE
    out = np.empty((pooled.shape[0], dim_out), np.float32)
    for i in range(0, pooled.shape[0], chunk):
        x = res_stage(pooled[i:i + chunk].astype(np.float32, copy=False), model, "Box_Head." + name, blocks,
                      stride_init, stride_1x1)
        x = avg_pool(x, 7)
        if x.shape[1:3] != (1, 1):
            raise ValueError(f"res5 + AvgPool2d(7) gives {x.shape[1:3]} maps, lcrnet_outputs needs 1x1")
        out[i:i + chunk] = x[:, 0, 0]
    return out


def lcrnet_outputs(model: Dict[str, np.ndarray], x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The release's ``lcrnet_model.lcrnet_outputs.forward`` in eval mode.

    Args:
      x: (R, 2048) box-head features.
    Returns:
      ``scores`` (R, 2K+1) softmax of ``cls_score`` (class 0 = background) and ``pose_deltas``
      (R, (2K+1) * 5J) = ``pose_pred(x) / 5`` (per class ``x(J), y(J), X(J), Y(J), Z(J)``).
    """
    logits = x @ model["Pose_Outs.cls_score.weight"].T + model["Pose_Outs.cls_score.bias"]
    logits = logits.astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    pose = (x @ model["Pose_Outs.pose_pred.weight"].T + model["Pose_Outs.pose_pred.bias"]) / np.float32(5.0)
    return scores, pose.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Blob, decoding, whole forward
# ---------------------------------------------------------------------------------------------------------------

def image_blob(image_bgr: np.ndarray, target_size: int, max_size: int,
               pixel_means: np.ndarray = DETECTRON_DEFAULTS["PIXEL_MEANS"]) -> Tuple[np.ndarray, float]:
    """``utils/blob.py`` ``get_image_blob`` -> ``prep_im_for_blob`` (one target size) and ``get_target_scale``.

    float32 copy, minus ``pixel_means`` (in place, as the release: computed in float64, stored in float32),
    ``im_scale = target_size / short side``, or ``max_size / long side`` when ``round(im_scale * long side) >
    max_size``; ``cv2.resize(im, None, None, fx=im_scale, fy=im_scale, interpolation=cv2.INTER_LINEAR)``. No
    padding (``im_list_to_blob`` pads only to the largest image of the batch, and to ``FPN.COARSEST_STRIDE`` with
    FPN, off here).

    Args:
      image_bgr: (H, W, 3) uint8 BGR (``cv2.imread``).
    Returns:
      ``blob`` (h, w, 3) float32 BGR minus means, and ``im_scale`` (float).
    """
    im = image_bgr.astype(np.float32, copy=True)
    im -= pixel_means
    size_min, size_max = np.min(im.shape[:2]), np.max(im.shape[:2])
    im_scale = float(target_size) / float(size_min)
    if np.round(im_scale * size_max) > max_size:
        im_scale = float(max_size) / float(size_max)
    blob = cv2.resize(im, None, None, fx=im_scale, fy=im_scale, interpolation=cv2.INTER_LINEAR)
    return blob, im_scale


def decode_poses(boxes: np.ndarray, pose_deltas: np.ndarray, anchor_poses: np.ndarray
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """``detect_pose.detect_pose``'s decoding ("project poses on boxes").

    2D: ``x = x1 + (anchor_x + delta_x) * (x2 - x1)``, ``y = y1 + (anchor_y + delta_y) * (y2 - y1)`` (no +1 on
    the box size); 3D: ``anchor + delta`` (offset 0, scale 1). The deltas of the background class (the first
    5J columns) are skipped: class k of the anchors (row k, 0-based) uses column block k + 1.

    Args:
      boxes: (R, 4) xyxy in original-image pixels (``rois / im_scale``).
      pose_deltas: (R, (2K+1) * 5J). anchor_poses: (2K, 5J).
    Returns:
      ``pose2d`` (R, 2K, J, 2) original-image pixels (x right, y down) and ``pose3d`` (R, 2K, J, 3) metres in
      the release's axes (X left, Y up, Z away), float64.
    """
    boxes = np.asarray(boxes, np.float64)
    anchors = np.asarray(anchor_poses, np.float64)
    n_cls, five_j = anchors.shape
    j = five_j // NT
    r = boxes.shape[0]
    deltas = np.asarray(pose_deltas, np.float64).reshape(r, n_cls + 1, NT, j)[:, 1:]
    offset = np.zeros((r, 1, NT, 1))
    offset[:, 0, 0, 0], offset[:, 0, 1, 0] = boxes[:, 0], boxes[:, 1]
    scale = np.ones((r, 1, NT, 1))
    scale[:, 0, 0, 0], scale[:, 0, 1, 0] = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    pred = offset + anchors.reshape(1, n_cls, NT, j) * scale + scale * deltas  # (R, 2K, 5, J)
    pred = pred.transpose(0, 1, 3, 2)
    return pred[..., :2], pred[..., 2:]


def release_forward(checkpoint: Dict[str, Any], image_bgr: np.ndarray, rois: Optional[np.ndarray] = None,
                    max_rois: Optional[int] = None, timings: Optional[Dict[str, float]] = None
                    ) -> Dict[str, Any]:
    """The release's ``detect_pose.detect_pose`` for one image (``LCRNet._forward`` in eval mode + decoding).

    Steps: blob (:func:`image_blob` with ``TEST.SCALE``, ``TEST.MAX_SIZE``, ``PIXEL_MEANS``), conv4 body, RPN,
    proposals (``ref_detectron_rpn.proposals_np`` with ``generate_anchors(stride=16, RPN.SIZES,
    RPN.ASPECT_RATIOS)`` and the ``TEST.RPN_*`` settings; ``im_info`` = blob height, width, im_scale), RoIAlign
    (``ref_detectron_roi_align.roi_align_legacy_np``, spatial scale 1/16, ``FAST_RCNN.ROI_XFORM_RESOLUTION``,
    ``ROI_XFORM_SAMPLING_RATIO``), res5 box head, ``lcrnet_outputs``, :func:`decode_poses`.

    Args:
      checkpoint: ``{'model': state dict (name -> ndarray, torch layouts), 'cfg': nested dict, 'anchor_poses':
        (2K, 5J)}`` as in a released ``.pkl`` (or :func:`make_release_checkpoint`).
      image_bgr: (H, W, 3) uint8 BGR.
      rois: optional (R, 4) xyxy boxes in network-input pixels to run the heads on instead of the RPN's.
      max_rois: keep only the first ``max_rois`` proposals (the best by objectness; in the RPN's order).
      timings: optional dict filled with seconds per step.
    Returns:
      dict with ``im_scale`` (float), ``blob`` (h, w, 3) float32, ``features`` (h/16, w/16, 1024) float32,
      ``rpn_cls_prob`` (Hf, Wf, A), ``rpn_bbox_pred`` (Hf, Wf, A, 4), ``rois_input`` (R, 4) network-input
      pixels, ``rois`` (R, 4) original-image pixels, ``rpn_scores`` (R,) (None when ``rois`` were given),
      ``box_features`` (R, 2048), ``scores`` (R, 2K+1) float32 softmax, ``pose_deltas`` (R, (2K+1) 5J) float32
      (after / 5), ``pose2d`` (R, 2K, J, 2) original-image pixels, ``pose3d`` (R, 2K, J, 3) metres in the
      release's axes (X left, Y up, Z away), and ``cfg`` (the effective settings).
    """
    times = timings if timings is not None else {}
    cfg = release_cfg(checkpoint["cfg"])
    _check_supported(cfg)
    model = {k: np.asarray(v, np.float32) for k, v in checkpoint["model"].items()}
    anchor_poses = np.asarray(checkpoint["anchor_poses"], np.float32)
    num_classes = cfg["MODEL"]["NUM_CLASSES"]
    five_j = anchor_poses.shape[1]
    if (model["Pose_Outs.cls_score.weight"].shape[0] != num_classes or anchor_poses.shape[0] + 1 != num_classes
            or model["Pose_Outs.pose_pred.weight"].shape[0] != num_classes * five_j or five_j % NT):
        raise ValueError(f"MODEL.NUM_CLASSES {num_classes}, anchor_poses {anchor_poses.shape}, cls_score "
                         f"{model['Pose_Outs.cls_score.weight'].shape} and pose_pred "
                         f"{model['Pose_Outs.pose_pred.weight'].shape} disagree (want 2K + 1 classes, 5J per class)")
    stride_1x1 = bool(cfg["RESNETS"]["STRIDE_1X1"])
    spatial_scale = 1.0 / 16.0

    t = time.perf_counter()
    blob, im_scale = image_blob(image_bgr, cfg["TEST"]["SCALE"], cfg["TEST"]["MAX_SIZE"], cfg["PIXEL_MEANS"])
    times["blob"] = time.perf_counter() - t

    t = time.perf_counter()
    features = conv4_body(model, blob, stride_1x1)
    times["conv4_body"] = time.perf_counter() - t

    t = time.perf_counter()
    cls_prob, bbox_pred = rpn_outputs(model, features)
    if rois is None:
        cell_anchors = generate_anchors_np(stride=1.0 / spatial_scale, sizes=tuple(cfg["RPN"]["SIZES"]),
                                           aspect_ratios=tuple(cfg["RPN"]["ASPECT_RATIOS"]))
        if cell_anchors.shape[0] != cls_prob.shape[-1]:
            raise ValueError(f"RPN.SIZES x RPN.ASPECT_RATIOS give {cell_anchors.shape[0]} anchors, the "
                             f"checkpoint's RPN_cls_score has {cls_prob.shape[-1]} channels")
        test = cfg["TEST"]
        rois_in, rpn_scores = proposals_np(
            cls_prob, bbox_pred, blob.shape[0], blob.shape[1], im_scale, cell_anchors, 1.0 / spatial_scale,
            test["RPN_PRE_NMS_TOP_N"], test["RPN_POST_NMS_TOP_N"], test["RPN_NMS_THRESH"], test["RPN_MIN_SIZE"])
        rpn_scores = np.asarray(rpn_scores).reshape(-1)
    else:
        rois_in, rpn_scores = np.asarray(rois, np.float32).reshape(-1, 4), None
    if max_rois is not None:
        rois_in = rois_in[:max_rois]
        rpn_scores = None if rpn_scores is None else rpn_scores[:max_rois]
    rois_in = np.asarray(rois_in, np.float32)
    times["rpn"] = time.perf_counter() - t

    t = time.perf_counter()
    res = int(cfg["FAST_RCNN"]["ROI_XFORM_RESOLUTION"])
    pooled = roi_align_legacy_np(features, rois_in, spatial_scale, res, res,
                                 int(cfg["FAST_RCNN"]["ROI_XFORM_SAMPLING_RATIO"]))
    times["roi_align"] = time.perf_counter() - t

    t = time.perf_counter()
    box_features = box_head(model, np.asarray(pooled, np.float32), res // 7, stride_1x1)
    scores, pose_deltas = lcrnet_outputs(model, box_features)
    times["box_head"] = time.perf_counter() - t

    boxes = rois_in.astype(np.float64) / im_scale
    pose2d, pose3d = decode_poses(boxes, pose_deltas, anchor_poses)
    return {
        "im_scale": im_scale, "blob": blob, "features": features, "rpn_cls_prob": cls_prob,
        "rpn_bbox_pred": bbox_pred, "rois_input": rois_in, "rois": boxes, "rpn_scores": rpn_scores,
        "box_features": box_features, "scores": scores, "pose_deltas": pose_deltas, "pose2d": pose2d,
        "pose3d": pose3d, "cfg": cfg,
    }


# ---------------------------------------------------------------------------------------------------------------
# A random release-shaped checkpoint
# ---------------------------------------------------------------------------------------------------------------

#: Joint indices of the hips and shoulders (their mean is the body centre) in both joint orders.
_CENTRE_JOINTS = (4, 5, 10, 11)
#: Knees and ankles: left out of the upper-body box.
_LOWER_JOINTS = (0, 1, 2, 3)


def _yaw(points: np.ndarray, angle: float) -> np.ndarray:
    """Rotates (..., 3) camera-axes points about the vertical (y) axis by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return points @ rot.T


def _limb(side: float, abduction: float, flexion: float) -> np.ndarray:
    """Unit direction (camera axes, person facing the camera) of a limb hanging down, raised by ``flexion``
    towards the front (-z) and by ``abduction`` away from the body (towards the person's ``side``: +1 left =
    +x, -1 right = -x); radians."""
    return np.array([side * np.sin(abduction) * np.cos(flexion), np.cos(abduction) * np.cos(flexion),
                     -np.sin(flexion)])


def random_body_pose(rng: np.random.Generator, num_joints: int = 13) -> np.ndarray:
    """A plausible random 3D body pose, (J, 3) metres, camera axes (x right, y down, z away), body-centred.

    A simple kinematic stick figure of an adult (thigh 0.44 m, shin 0.43 m, upper arm 0.30 m, forearm 0.26 m,
    hips 0.20 m and shoulders 0.36 m apart, 0.50 m from mid-hip to mid-shoulder), facing the camera (its left
    side at +x) before a random yaw about the vertical axis, with random hip/knee/shoulder/elbow angles and a
    forward lean. Joint orders: the release's 13 or 17 (module docstring); for 13 joints ``head`` is the head
    centre, for 17 joint 12 is the top of the head and 16 the neck/nose.
    """
    if num_joints not in (13, 17):
        raise ValueError(f"num_joints must be 13 or 17, got {num_joints}")
    d = np.deg2rad
    p = np.zeros((17, 3))
    lean = d(rng.uniform(-5, 30))
    up = np.array([0.0, -np.cos(lean), -np.sin(lean)])  # trunk axis, leaning forward (-z)
    for side, hip, knee, ankle in ((-1.0, 4, 2, 0), (1.0, 5, 3, 1)):
        flex, abd, bend = d(rng.uniform(-25, 75)), d(rng.uniform(-5, 25)), d(rng.uniform(0, 100))
        p[hip] = [0.10 * side, 0.0, 0.0]
        p[knee] = p[hip] + 0.44 * _limb(side, abd, flex)
        p[ankle] = p[knee] + 0.43 * _limb(side, abd, flex - bend)
    thorax = 0.50 * up
    for side, shoulder, elbow, wrist in ((-1.0, 10, 8, 6), (1.0, 11, 9, 7)):
        flex, abd, bend = d(rng.uniform(-30, 160)), d(rng.uniform(0, 100)), d(rng.uniform(0, 130))
        p[shoulder] = thorax + [0.18 * side, 0.0, 0.0]
        p[elbow] = p[shoulder] + 0.30 * _limb(side, abd, flex)
        p[wrist] = p[elbow] + 0.26 * _limb(side, abd, flex + bend)
    forward = np.array([0.0, np.sin(lean), -np.cos(lean)])
    if num_joints == 13:
        p[12] = thorax + 0.20 * up
    else:
        p[12] = thorax + 0.30 * up  # head (top)
        p[13] = 0.0  # pelvis
        p[14] = 0.45 * up  # spine
        p[15] = thorax
        p[16] = thorax + 0.15 * up + 0.06 * forward  # neck / nose
    p = _yaw(p[:num_joints], rng.uniform(-np.pi, np.pi))
    return p - p[list(_CENTRE_JOINTS)].mean(axis=0)


def _pose_box(points2d: np.ndarray, margin: float = 0.1, min_aspect: float = 0.3) -> Tuple[np.ndarray, np.ndarray]:
    """(P, 2) points -> (corner (2,), size (2,)) of their tight box, each side made at least ``min_aspect``
    times the other (about the same centre), then grown by ``margin`` of its size on each side."""
    lo, hi = points2d.min(axis=0), points2d.max(axis=0)
    size = hi - lo
    size = np.maximum(size, min_aspect * size[::-1]) * (1.0 + 2.0 * margin)
    return 0.5 * (lo + hi) - 0.5 * size, size


def make_anchor_poses(num_joints: int = 13, num_anchors: int = 10, seed: int = 0) -> np.ndarray:
    """(2K, 5J) float32 anchor poses in the release's layout (per row ``x(J), y(J), X(J), Y(J), Z(J)``).

    Rows 0..K-1 are full-body anchors: :func:`random_body_pose`, its 2D anchor the orthographic projection
    (x_cam, y_cam) normalised to the pose's box (:func:`_pose_box`, 10 % margin). Rows K..2K-1 repeat the same
    3D poses with the 2D anchor normalised to the box of the upper body only (all joints but the knees and
    ankles), so that the legs of an upright pose fall below it (y > 1). 3D in the release's axes: X = -x_cam (to
    the image's left), Y = -y_cam (up), Z = z_cam (away), metres, body-centred (mean of hips and shoulders).
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), num_joints]))
    poses = [random_body_pose(rng, num_joints) for _ in range(num_anchors)]
    upper = [j for j in range(num_joints) if j not in _LOWER_JOINTS]
    rows = []
    for upper_body in (False, True):
        for pose in poses:
            proj = pose[:, :2]
            corner, size = _pose_box(proj[upper] if upper_body else proj)
            n2d = (proj - corner) / size
            xyz = pose * np.array([-1.0, -1.0, 1.0])
            rows.append(np.concatenate([n2d[:, 0], n2d[:, 1], xyz[:, 0], xyz[:, 1], xyz[:, 2]]))
    return np.asarray(rows, np.float32)


def release_param_shapes(num_joints: int = 13, num_classes: int = 21, num_anchors: int = 15,
                         rpn_dim: int = 1024) -> "OrderedDict[str, Tuple[int, ...]]":
    """Names and shapes of the release's ``LCRNet`` state dict, in ``state_dict()`` order.

    ``Conv_Body`` (``ResNet50_conv4_body``: ``res1.conv1`` / ``res1.bn1``, then ``res2``-``res4`` blocks with
    ``conv1, bn1, conv2, bn2, conv3, bn3`` and, on each stage's block 0, ``downsample.0`` (1x1 conv) /
    ``downsample.1`` (AffineChannel2d)), ``RPN`` (``RPN_conv`` 3x3 with bias, ``RPN_cls_score`` A channels for the
    sigmoid, ``RPN_bbox_pred`` 4A), ``Box_Head.res5`` (3 blocks), ``Pose_Outs`` (``cls_score`` (C, 2048),
    ``pose_pred`` (5J C, 2048), C = 2K + 1). Convolutions have no bias except the RPN's; AffineChannel2d has a
    ``weight`` and a ``bias`` and no buffers.
    """
    shapes: "OrderedDict[str, Tuple[int, ...]]" = OrderedDict()
    shapes["Conv_Body.res1.conv1.weight"] = (64, 3, 7, 7)
    shapes["Conv_Body.res1.bn1.weight"] = (64,)
    shapes["Conv_Body.res1.bn1.bias"] = (64,)

    def stage(prefix, blocks, inner, dim_in, dim_out):
        for b in range(blocks):
            p = f"{prefix}.{b}"
            cin = dim_in if b == 0 else dim_out
            for i, (co, ci, k) in enumerate(((inner, cin, 1), (inner, inner, 3), (dim_out, inner, 1)), 1):
                shapes[f"{p}.conv{i}.weight"] = (co, ci, k, k)
                shapes[f"{p}.bn{i}.weight"] = (co,)
                shapes[f"{p}.bn{i}.bias"] = (co,)
            if b == 0:  # add_residual_block: stride != 1 or inplanes != outplanes on every first block here
                shapes[f"{p}.downsample.0.weight"] = (dim_out, dim_in, 1, 1)
                shapes[f"{p}.downsample.1.weight"] = (dim_out,)
                shapes[f"{p}.downsample.1.bias"] = (dim_out,)

    dim_in = 64
    for name, blocks, inner, dim_out, _ in BODY_STAGES:
        stage("Conv_Body." + name, blocks, inner, dim_in, dim_out)
        dim_in = dim_out
    shapes["RPN.RPN_conv.weight"] = (rpn_dim, dim_in, 3, 3)
    shapes["RPN.RPN_conv.bias"] = (rpn_dim,)
    shapes["RPN.RPN_cls_score.weight"] = (num_anchors, rpn_dim, 1, 1)
    shapes["RPN.RPN_cls_score.bias"] = (num_anchors,)
    shapes["RPN.RPN_bbox_pred.weight"] = (4 * num_anchors, rpn_dim, 1, 1)
    shapes["RPN.RPN_bbox_pred.bias"] = (4 * num_anchors,)
    name, blocks, inner, dim_out = RES5_STAGE
    stage("Box_Head." + name, blocks, inner, rpn_dim, dim_out)
    shapes["Pose_Outs.cls_score.weight"] = (num_classes, dim_out)
    shapes["Pose_Outs.cls_score.bias"] = (num_classes,)
    shapes["Pose_Outs.pose_pred.weight"] = (num_classes * NT * num_joints, dim_out)
    shapes["Pose_Outs.pose_pred.bias"] = (num_classes * NT * num_joints,)
    return shapes


#: The random initialisation of :func:`make_release_checkpoint`. Body and res5: He-normal convolutions and these
#: AffineChannel2d scales (each times U(0.75, 1.25)), which keep activations O(1) through the 50 layers (measured:
#: RMS 0.4-1 after every block on photos). Heads: calibrated on a synthetic image (:func:`calibration_image`) to
#: these targets.
INIT = {
    "stem_scale": 1.0 / 80.0,  # res1.bn1 weight: the 7x7 conv of pixels minus means has std ~90
    "bn_scale": 1.0,  # bn1, bn2: He-scaled convs keep the variance of the pre-activations
    "bn3_scale": 0.3,  # end of each residual branch: the sum grows slowly over the blocks
    "shortcut_scale": 0.5,  # downsample.1 weight
    "bn_bias": 0.1,  # std of every AffineChannel2d bias
    "rpn_logit_std": 1.0,  # std over positions of each anchor's objectness logit
    "rpn_logit_mean": -1.0,  # mean objectness logit (plus N(0, 0.5) per anchor)
    "rpn_delta_std": 0.2,  # std over positions of each RPN box delta
    "cls_logit_std": 1.5,  # std over RoIs of each class logit
    "cls_logit_prior": 0.5,  # std of the per-class logit offsets
    "bg_logit": 1.0,  # extra logit of the background class
    "pose_delta_std": 0.025,  # std over RoIs of each pose delta (pose_pred / 5)
}


def calibration_image(seed: int = 0, height: int = 160, width: int = 240) -> np.ndarray:
    """A deterministic synthetic BGR uint8 (height, width, 3) picture: a colour gradient with soft random
    ellipses and rectangles and a little noise; used to calibrate the heads of :func:`make_release_checkpoint`."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7]))
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    c0, cx, cy = rng.uniform(40, 215, 3), rng.uniform(-80, 80, 3), rng.uniform(-80, 80, 3)
    img = c0 + cx * xx[..., None] + cy * yy[..., None]
    for _ in range(14):
        layer = np.zeros((height, width), np.float32)
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(6, width // 3)), int(rng.integers(6, height // 3)))
        if rng.random() < 0.5:
            cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        else:
            cv2.rectangle(layer, (centre[0] - axes[0], centre[1] - axes[1]), (centre[0] + axes[0], centre[1] + axes[1]),
                          1.0, -1)
        layer = cv2.GaussianBlur(layer, (0, 0), float(rng.uniform(0.5, 3.0)))[..., None]
        img = img * (1 - layer) + rng.uniform(0, 255, 3) * layer
    img += rng.normal(0, 4, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _calibration_rois(rng: np.random.Generator, height: int, width: int, num: int = 48) -> np.ndarray:
    """``num`` random xyxy boxes inside a (height, width) image: sides 16 px to the image size (log-uniform),
    aspect ratios 1:2 to 2:1."""
    side = np.exp(rng.uniform(np.log(16), np.log(min(height, width)), num))
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0), num))
    w, h = np.minimum(side * np.sqrt(aspect), width - 1), np.minimum(side / np.sqrt(aspect), height - 1)
    x1, y1 = rng.uniform(0, width - 1 - w), rng.uniform(0, height - 1 - h)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1).astype(np.float32)


def _nearest_crops(features: np.ndarray, rois: np.ndarray, spatial_scale: float, size: int) -> np.ndarray:
    """(H, W, C) features, (N, 4) xyxy image-pixel boxes -> (N, size, size, C) nearest-cell crops. A cheap
    stand-in for RoIAlign, used only to gather calibration statistics (not a model of the release)."""
    h, w = features.shape[:2]
    t = (np.arange(size) + 0.5) / size
    out = []
    for x1, y1, x2, y2 in np.asarray(rois, np.float64) * spatial_scale:
        ys = np.clip(np.floor(y1 + t * (y2 - y1)).astype(int), 0, h - 1)
        xs = np.clip(np.floor(x1 + t * (x2 - x1)).astype(int), 0, w - 1)
        out.append(features[ys][:, xs])
    return np.stack(out).astype(np.float32)


def _centred_layer(raw: np.ndarray, weight: np.ndarray, std: float, mean: np.ndarray
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """Rescales the rows of a random layer ``weight`` (out, in, ...) so that its outputs ``raw`` (samples, out)
    on calibration inputs get ``std`` per output, and gives the bias that moves their mean to ``mean``."""
    scale = std / np.maximum(raw.std(axis=0), 1e-12)
    weight = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1)).astype(np.float32)
    bias = mean - raw.mean(axis=0) * scale
    return weight.astype(np.float32), bias.astype(np.float32)


def make_release_checkpoint(num_joints: int = 13, seed: int = 0, rpn_dim: int = 1024, test_scale: int = 800,
                            max_size: int = 1333, pre_nms: int = 6000, post_nms: int = 1000,
                            anchor_poses: Optional[np.ndarray] = None, ppi_params: Optional[dict] = None,
                            small: bool = False) -> Dict[str, Any]:
    """A random checkpoint shaped exactly like a released LCR-Net++ ``<name>.pkl`` (ResNet-50 conv4 body, res5 box
    head, single-scale RPN with 15 anchors, K = 10 anchor poses per body part type, so 2K + 1 = 21 classes).

    Weights (float32, torch layouts, names in ``state_dict()`` order, :func:`release_param_shapes`):

    * body and res5 convolutions He-normal (std sqrt(2 / fan_in)); AffineChannel2d (frozen batch norm) weights
      ``scale * U(0.75, 1.25)`` with the scales of :data:`INIT` (small on each residual branch's ``bn3`` so that
      the sums stay O(1) over the blocks), biases N(0, 0.1);
    * ``RPN_conv`` He-normal, bias N(0, 0.1);
    * the 1x1 / linear output layers random normal, then calibrated like LSUV on :func:`calibration_image` (its
      conv4 features for the RPN; res5 features of 48 random boxes, cropped without RoIAlign, for the heads): each
      output row rescaled to the spread of :data:`INIT` and its bias set to centre it (RPN objectness logits
      std 2 around -0.5, RPN deltas std 0.25 around 0, class logits std 1.5 around random offsets with +1 on the
      background, pose deltas ``pose_pred / 5`` std 0.05 around 0). A linear layer on the pooled features of a
      random network otherwise sees mostly their image-independent mean: the class probabilities come out flat.

    Args:
      num_joints: J, 13 or 17. seed: random seed (weights; anchor poses and calibration use the same seed).
      rpn_dim: width of ``RPN_conv``. The release builds ``Box_Head`` with ``RPN.dim_out`` as its input width, so
        only 1024 (= conv4 width, ``RPN.OUT_DIM_AS_IN_DIM``) gives a runnable model; other values raise.
      test_scale, max_size, pre_nms, post_nms: ``TEST.SCALE``, ``TEST.MAX_SIZE``, ``TEST.RPN_PRE_NMS_TOP_N``,
        ``TEST.RPN_POST_NMS_TOP_N`` written in the cfg.
      anchor_poses: (20, 5J) or None for :func:`make_anchor_poses` (``num_joints``, K = 10, ``seed``).
      ppi_params: dict or None for :data:`DEFAULT_PPI_PARAMS` (the real files' values are not known here).
      small: test-speed settings in the cfg (TEST.SCALE 192, MAX_SIZE 320, RPN_PRE_NMS_TOP_N 1000,
        RPN_POST_NMS_TOP_N 100), overriding the four previous arguments; names and shapes never change.
    Returns:
      ``{'model': OrderedDict name -> float32 ndarray, 'cfg': nested dict, 'anchor_poses': (20, 5J) float32,
      'ppi_params': dict}``. The cfg sets what the released files must set (architecture, RoIAlign,
      ``TEST.BBOX_REG = False``, 15 RPN anchors, ``MODEL.FASTER_RCNN``), the RPN sizes and ratios as strings for
      ``literal_eval`` as Detectron configs may hold them, and leaves other settings (``PIXEL_MEANS``,
      ``TEST.RPN_NMS_THRESH``, ``TEST.RPN_MIN_SIZE``, ``RESNETS.*`` but ``STRIDE_1X1`` and ``TRANS_FUNC``, ...) to
      :data:`DETECTRON_DEFAULTS`.
    """
    if rpn_dim != 1024:
        raise ValueError("rpn_dim must be 1024: LCRNet builds Box_Head(self.RPN.dim_out, ...), so an RPN width "
                         "other than conv4's 1024 channels gives a res5 that cannot take the conv4 features")
    if small:
        test_scale, max_size, pre_nms, post_nms = 192, 320, 1000, 100
    num_anchor_poses = 10
    if anchor_poses is None:
        anchor_poses = make_anchor_poses(num_joints, num_anchor_poses, seed)
    anchor_poses = np.asarray(anchor_poses, np.float32)
    if anchor_poses.shape != (2 * num_anchor_poses, NT * num_joints):
        raise ValueError(f"anchor_poses has shape {anchor_poses.shape}, expected "
                         f"({2 * num_anchor_poses}, {NT * num_joints})")
    num_classes = anchor_poses.shape[0] + 1
    sizes, ratios = (32, 64, 128, 256, 512), (0.5, 1, 2)
    shapes = release_param_shapes(num_joints, num_classes, len(sizes) * len(ratios), rpn_dim)

    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2024]))
    init = INIT
    model: Dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        layer, kind = name.rsplit(".", 1)
        module = layer.rsplit(".", 1)[-1]
        if len(shape) == 4:  # convolution: He normal (the RPN's 1x1 outputs are rescaled below)
            fan_in = shape[1] * shape[2] * shape[3]
            model[name] = rng.standard_normal(shape, np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        elif len(shape) == 2:  # Pose_Outs linear layers: rescaled below
            model[name] = rng.standard_normal(shape, np.float32)
        elif kind == "weight":  # AffineChannel2d scale
            scale = {"bn3": init["bn3_scale"], "1": init["shortcut_scale"]}.get(module, init["bn_scale"])
            if layer == "Conv_Body.res1.bn1":
                scale = init["stem_scale"]
            model[name] = (scale * rng.uniform(0.75, 1.25, shape)).astype(np.float32)
        else:  # AffineChannel2d and RPN_conv biases (the output layers' are set below)
            model[name] = (init["bn_bias"] * rng.standard_normal(shape)).astype(np.float32)

    # Calibration of the output layers on a synthetic picture at scale 1.
    blob, _ = image_blob(calibration_image(seed), 160, 240)
    features = conv4_body(model, blob)
    rpn = relu(conv2d(features[None], model["RPN.RPN_conv.weight"], model["RPN.RPN_conv.bias"], pad=1))
    rpn = rpn.reshape(-1, rpn.shape[-1])
    num_anchors = shapes["RPN.RPN_cls_score.bias"][0]
    for head, std, mean in (
            ("RPN.RPN_cls_score", init["rpn_logit_std"],
             init["rpn_logit_mean"] + 0.5 * rng.standard_normal(num_anchors)),
            ("RPN.RPN_bbox_pred", init["rpn_delta_std"], np.zeros(4 * num_anchors))):
        w = model[head + ".weight"]
        model[head + ".weight"], model[head + ".bias"] = _centred_layer(rpn @ w[:, :, 0, 0].T, w, std, mean)
    box = box_head(model, _nearest_crops(features, _calibration_rois(rng, *blob.shape[:2]), 1.0 / 16, 14))
    prior = init["cls_logit_prior"] * rng.standard_normal(num_classes)
    prior[0] += init["bg_logit"]
    w = model["Pose_Outs.cls_score.weight"]
    model["Pose_Outs.cls_score.weight"], model["Pose_Outs.cls_score.bias"] = _centred_layer(
        box @ w.T, w, init["cls_logit_std"], prior)
    w = model["Pose_Outs.pose_pred.weight"]  # pose_pred / 5 gets the target spread
    model["Pose_Outs.pose_pred.weight"], model["Pose_Outs.pose_pred.bias"] = _centred_layer(
        box @ w.T, w, 5.0 * init["pose_delta_std"], np.zeros(w.shape[0]))
    model = OrderedDict((k, model[k]) for k in shapes)

    cfg = {
        "MODEL": {"CONV_BODY": CONV_BODY, "NUM_CLASSES": num_classes, "FASTER_RCNN": True,
                  "CLS_AGNOSTIC_BBOX_REG": False},
        "RPN": {"SIZES": str(sizes), "ASPECT_RATIOS": str(ratios)},
        "FAST_RCNN": {"ROI_BOX_HEAD": ROI_BOX_HEAD, "ROI_XFORM_METHOD": "RoIAlign", "ROI_XFORM_RESOLUTION": 14,
                      "ROI_XFORM_SAMPLING_RATIO": 0},
        "RESNETS": {"STRIDE_1X1": True, "TRANS_FUNC": "bottleneck_transformation"},
        "TEST": {"SCALE": int(test_scale), "MAX_SIZE": int(max_size), "RPN_PRE_NMS_TOP_N": int(pre_nms),
                 "RPN_POST_NMS_TOP_N": int(post_nms), "BBOX_REG": False},
    }
    return {"model": model, "cfg": cfg, "anchor_poses": anchor_poses,
            "ppi_params": dict(DEFAULT_PPI_PARAMS if ppi_params is None else ppi_params)}


# ---------------------------------------------------------------------------------------------------------------
# Self-check by hand: python tests/ref_lcrnet_release.py [image ...] [--seeds 0 1 2 3 4] [--joints 13]
# ---------------------------------------------------------------------------------------------------------------

def self_check(image_paths: Sequence[str], seeds: Sequence[int] = (0,), num_joints: int = 13,
               max_rois: Optional[int] = None) -> None:
    """Runs :func:`release_forward` with ``make_release_checkpoint(small=True)`` (TEST.SCALE 192, MAX_SIZE 320,
    100 proposals) on each image and prints the spreads the parity tests rely on: objectness percentiles over
    the whole map and over the kept proposals, RPN delta std, max class probability percentiles over RoIs, the
    number of (RoI, class) pairs with probability >= 0.1 / 2K (the release's PPI threshold), pose delta std,
    and the run times."""
    for seed in seeds:
        t0 = time.perf_counter()
        ckpt = make_release_checkpoint(num_joints=num_joints, seed=seed, small=True)
        build = time.perf_counter() - t0
        for path in image_paths:
            image = cv2.imread(path)
            if image is None:
                raise FileNotFoundError(path)
            times: Dict[str, float] = {}
            t0 = time.perf_counter()
            out = release_forward(ckpt, image, max_rois=max_rois, timings=times)
            total = time.perf_counter() - t0
            finite = all(np.all(np.isfinite(out[k])) for k in ("features", "scores", "pose_deltas", "pose2d",
                                                               "pose3d"))
            prob, scores = out["rpn_cls_prob"], out["scores"]
            threshold = 0.1 / (scores.shape[1] - 1)
            pairs = scores[:, 1:] >= threshold
            print(f"seed {seed} J {num_joints} {path.rsplit('/', 1)[-1]} {image.shape[:2]} -> blob "
                  f"{out['blob'].shape[:2]}, {len(scores)} RoIs, finite {finite}\n"
                  f"  objectness map p1/p50/p99 {np.percentile(prob, [1, 50, 99]).round(3).tolist()}, kept "
                  f"{out['rpn_scores'].min():.3f}-{out['rpn_scores'].max():.3f}; RPN delta std "
                  f"{out['rpn_bbox_pred'].std():.3f}\n"
                  f"  max class prob p0/p50/p100 {np.percentile(scores.max(1), [0, 50, 100]).round(3).tolist()}, "
                  f"background median {np.median(scores[:, 0]):.3f}; pairs >= {threshold:.4f}: "
                  f"{int(pairs.sum())}/{pairs.size} (median {int(np.median(pairs.sum(1)))} classes per RoI); "
                  f"pose delta std {out['pose_deltas'].std():.3f}\n"
                  f"  build {build:.1f} s, forward {total:.2f} s "
                  f"({', '.join(f'{k} {v:.2f}' for k, v in times.items())})")


if __name__ == "__main__":
    import argparse
    import glob

    parser = argparse.ArgumentParser(description=self_check.__doc__)
    parser.add_argument("images", nargs="*")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--joints", type=int, default=13)
    parser.add_argument("--max_rois", type=int, default=None)
    args = parser.parse_args()
    self_check(args.images or sorted(glob.glob("/work/shared/data/images/*.[jp][pn]g")), args.seeds, args.joints,
               args.max_rois)
