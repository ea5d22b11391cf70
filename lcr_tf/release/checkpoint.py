"""A released LCR-Net++ model file, read and checked: its weights, settings, anchor-poses and PPI settings.

A release file ``<name>.pkl`` (the authors' LCR-Net v2 release, run by Detectron.pytorch) is a pickle of a
dict::

    model         parameter name -> weight, the state dict of the release's ``LCRNet`` (torch layouts:
                  conv (out, in, kh, kw), linear (out, in))
    cfg           Detectron's configuration (nested AttrDicts; only the settings that differ from
                  Detectron's defaults need be there, and some values are strings to ``literal_eval``)
    anchor_poses  (2K, 5J) float32, per class ``x(J), y(J), X(J), Y(J), Z(J)``: 2D box-normalised (x right,
                  y down), 3D metres body-centred with X to the image's left, Y up, Z away from the camera
    ppi_params    keyword arguments of the release's ``LCRNet_PPI_improved``

:func:`read_release` reads it with :mod:`lcr_tf.release.pickle_reader` (no code of the file runs), resolves
the settings against Detectron's defaults (:data:`DETECTRON_DEFAULTS`, from Detectron.pytorch's
``lib/core/config.py``), refuses a network this package does not reproduce (naming the setting), and checks
the weights' names and shapes against the release's network, listing in one message what is missing,
unexpected or mis-shaped.

Axes. This package's 3D axes are the camera's (x right, y down, z away), so ``x, y, z = -X, -Y, Z``.
:func:`check_anchor_axes` checks that mapping on the file's own anchor-poses before anything is converted:
each 2D anchor must be (close to) the projection of its 3D anchor once mapped (2D against 3D), and the
knees must bend forward of the body, which fixes which side is left (left against right).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import os
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.release import pickle_reader

#: The terms the authors release their models under; converted files keep them.
LICENCE = ("LCR-Net release v2.0 models: GNU General Public License v3, for scientific or personal use "
           "only (the authors' terms); a converted model keeps these terms")

#: Detectron.pytorch's defaults (``lib/core/config.py``) of every setting the release's test path reads.
DETECTRON_DEFAULTS: Dict[str, Any] = {
    "PIXEL_MEANS": (102.9801, 115.9465, 122.7717),  # BGR
    "TEST.SCALE": 600,
    "TEST.MAX_SIZE": 1000,
    "TEST.RPN_PRE_NMS_TOP_N": 12000,
    "TEST.RPN_POST_NMS_TOP_N": 2000,
    "TEST.RPN_NMS_THRESH": 0.7,
    "TEST.RPN_MIN_SIZE": 0,
    "RPN.SIZES": (64, 128, 256, 512),
    "RPN.ASPECT_RATIOS": (0.5, 1, 2),
    "RPN.STRIDE": 16,
    "RPN.CLS_ACTIVATION": "sigmoid",
    "FPN.FPN_ON": False,
    "MODEL.CONV_BODY": "",
    "MODEL.CLS_AGNOSTIC_BBOX_REG": False,
    "FAST_RCNN.ROI_BOX_HEAD": "",
    "FAST_RCNN.ROI_XFORM_METHOD": "RoIPoolF",
    "FAST_RCNN.ROI_XFORM_RESOLUTION": 14,
    "FAST_RCNN.ROI_XFORM_SAMPLING_RATIO": 0,
    "RESNETS.STRIDE_1X1": True,
    "RESNETS.NUM_GROUPS": 1,
    "RESNETS.WIDTH_PER_GROUP": 64,
    "RESNETS.TRANS_FUNC": "bottleneck_transformation",
    "RESNETS.STEM_FUNC": "basic_bn_stem",
    "RESNETS.SHORTCUT_FUNC": "basic_bn_shortcut",
    "RESNETS.RES5_DILATION": 1,
    "RESNETS.USE_GN": False,
}

#: The settings the conversion reproduces: any other value is refused (setting -> accepted values).
_REQUIRED = {
    "MODEL.CONV_BODY": ("ResNet.ResNet50_conv4_body",),
    "FAST_RCNN.ROI_BOX_HEAD": ("ResNet.ResNet_roi_conv5_head",),
    "FAST_RCNN.ROI_XFORM_METHOD": ("RoIAlign",),
    "FAST_RCNN.ROI_XFORM_RESOLUTION": (14,),
    "RPN.STRIDE": (16,),
    "RPN.CLS_ACTIVATION": ("sigmoid",),
    "FPN.FPN_ON": (False,),
    "MODEL.CLS_AGNOSTIC_BBOX_REG": (False,),
    "RESNETS.STRIDE_1X1": (True,),
    "RESNETS.NUM_GROUPS": (1,),
    "RESNETS.WIDTH_PER_GROUP": (64,),
    "RESNETS.TRANS_FUNC": ("bottleneck_transformation",),
    "RESNETS.STEM_FUNC": ("basic_bn_stem",),
    "RESNETS.SHORTCUT_FUNC": ("basic_bn_shortcut",),
    "RESNETS.RES5_DILATION": (1,),
    "RESNETS.USE_GN": (False,),
    # Detectron scales RPN_MIN_SIZE by the image's scale; every released cfg seen keeps 0 (1 pixel).
    "TEST.RPN_MIN_SIZE": (0,),
}

#: The release's joint orders by J (``demo.py`` draws the bones of both). J = 13 is this package's
#: ``lcr13``; for J = 17 the names are read from the bones ``demo.py`` draws (13 joins the hips, 15 the
#: shoulders, 14 lies between them, 16 between 15 and 12): ``lcr17``.
SKELETONS = {13: "lcr13", 17: "lcr17"}

# ResNet-50: blocks per stage; res2-res4 are the conv4 body, res5 the RoI head.
RESNET50_BLOCKS = {2: 3, 3: 4, 4: 6, 5: 3}
_STAGE_WIDTH = {2: 64, 3: 128, 4: 256, 5: 512}  # bottleneck width; the output is 4x


@dataclasses.dataclass(frozen=True)
class ReleaseCheckpoint:
    """A checked release file.

    Attributes:
      weights: parameter name -> float32 array (torch layouts).
      settings: the effective Detectron settings (:data:`DETECTRON_DEFAULTS` keys), the file's values over
        the defaults, literals evaluated.
      anchor_poses: (2K, 5J) float32, as in the file.
      ppi_params: the file's PPI keyword arguments.
      num_anchors: K (2K anchor-pose classes).
      num_joints: J.
      skeleton: this package's name of the joint order (:data:`SKELETONS`).
      source: the file's path; sha256: its SHA-256 (hex); name: the model's name (the file's stem).
    """

    weights: Mapping[str, np.ndarray]
    settings: Mapping[str, Any]
    anchor_poses: np.ndarray
    ppi_params: Mapping[str, Any]
    num_anchors: int
    num_joints: int
    skeleton: str
    source: str
    sha256: str
    name: str

    @property
    def rpn_channels(self) -> int:
        """Width of the RPN's 3x3 conv (the conv4 body's 1024 in the released models)."""
        return int(self.weights["RPN.RPN_conv.weight"].shape[0])

    def anchors(self) -> Tuple[np.ndarray, np.ndarray]:
        """The anchor-poses in this package's layout and axes: (2K, J, 2) box-normalised and (2K, J, 3)
        metres, camera axes (``x, y, z = -X, -Y, Z``), body-centred."""
        return split_anchor_poses(self.anchor_poses)


def split_anchor_poses(anchor_poses) -> Tuple[np.ndarray, np.ndarray]:
    """(2K, 5J) release anchor-poses -> (2K, J, 2) box-normalised 2D and (2K, J, 3) 3D in camera axes."""
    a = np.asarray(anchor_poses, np.float32)
    j = a.shape[1] // 5
    planes = a.reshape(a.shape[0], 5, j)  # x, y, X, Y, Z planes
    pose2d = np.stack([planes[:, 0], planes[:, 1]], axis=-1)
    pose3d = np.stack([-planes[:, 2], -planes[:, 3], planes[:, 4]], axis=-1)
    return pose2d, pose3d


def _flatten(cfg: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    out = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _literal(value):
    """A cfg value: strings that spell a Python literal (``'(32, 64)'``, ``'800'``) are evaluated safely,
    numpy values become Python ones, tuples and lists become tuples."""
    if isinstance(value, bytes):
        value = value.decode("latin1")
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    if isinstance(value, np.ndarray):
        value = value.reshape(-1).tolist() if value.size != 1 else value.reshape(()).item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return tuple(_literal(v) for v in value)
    return value


def effective_settings(cfg: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """:data:`DETECTRON_DEFAULTS` overridden by the file's ``cfg`` (nested dicts), literals evaluated."""
    given = _flatten(cfg or {})
    settings = dict(DETECTRON_DEFAULTS)
    for key in DETECTRON_DEFAULTS:
        if key in given:
            settings[key] = _literal(given[key])
    # TEST.SCALE is one size in Detectron.pytorch's test path; accept a one-element sequence.
    if isinstance(settings["TEST.SCALE"], tuple):
        settings["TEST.SCALE"] = settings["TEST.SCALE"][0]
    return settings


def release_weight_shapes(num_anchors: int, num_joints: int, rpn_channels: int = 1024
                          ) -> Dict[str, Tuple[int, ...]]:
    """Name -> shape of every parameter of the release's network (ResNet-50 conv4 body, single-scale RPN
    with 15 anchors, res5 RoI head, ``Pose_Outs``), in torch layouts."""
    shapes: Dict[str, Tuple[int, ...]] = {
        "Conv_Body.res1.conv1.weight": (64, 3, 7, 7),
        "Conv_Body.res1.bn1.weight": (64,), "Conv_Body.res1.bn1.bias": (64,),
    }
    dim_in = 64
    for stage, blocks in RESNET50_BLOCKS.items():
        inner = _STAGE_WIDTH[stage]
        out = 4 * inner
        prefix = "Box_Head.res5" if stage == 5 else f"Conv_Body.res{stage}"
        for b in range(blocks):
            p = f"{prefix}.{b}"
            block_in = dim_in if b == 0 else out
            for i, shape in ((1, (inner, block_in, 1, 1)), (2, (inner, inner, 3, 3)), (3, (out, inner, 1, 1))):
                shapes[f"{p}.conv{i}.weight"] = shape
                shapes[f"{p}.bn{i}.weight"] = shapes[f"{p}.bn{i}.bias"] = (shape[0],)
            if b == 0:
                shapes[f"{p}.downsample.0.weight"] = (out, block_in, 1, 1)
                shapes[f"{p}.downsample.1.weight"] = shapes[f"{p}.downsample.1.bias"] = (out,)
        dim_in = out
    a = 15  # 5 sizes x 3 ratios
    shapes.update({
        "RPN.RPN_conv.weight": (rpn_channels, 1024, 3, 3), "RPN.RPN_conv.bias": (rpn_channels,),
        "RPN.RPN_cls_score.weight": (a, rpn_channels, 1, 1), "RPN.RPN_cls_score.bias": (a,),
        "RPN.RPN_bbox_pred.weight": (4 * a, rpn_channels, 1, 1), "RPN.RPN_bbox_pred.bias": (4 * a,),
    })
    c = 2 * num_anchors + 1
    shapes.update({
        "Pose_Outs.cls_score.weight": (c, 2048), "Pose_Outs.cls_score.bias": (c,),
        "Pose_Outs.pose_pred.weight": (c * 5 * num_joints, 2048), "Pose_Outs.pose_pred.bias": (c * 5 * num_joints,),
    })
    return shapes


def check_weights(weights: Mapping[str, Any], expected: Mapping[str, Tuple[int, ...]], source: str) -> None:
    """Raises ValueError listing, in one message, the missing, unexpected and mis-shaped parameters."""
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    misshaped = sorted(f"{k} {tuple(np.shape(weights[k]))} (expected {expected[k]})"
                       for k in set(expected) & set(weights) if tuple(np.shape(weights[k])) != expected[k])
    if missing or unexpected or misshaped:
        parts = []
        for what, names in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
            if names:
                shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
                parts.append(f"{len(names)} {what}: {shown}")
        raise ValueError(f"{source}: the weights do not fit the release's network "
                         f"(ResNet-50 conv4 body, RPN, res5 head, Pose_Outs): " + "; ".join(parts))


def check_anchor_axes(anchor_poses, skeleton: str, source: str = "anchor_poses",
                      min_agreement: float = 0.9) -> Dict[str, float]:
    """Checks the axes mapping ``x, y, z = -X, -Y, Z`` on the file's own anchor-poses (module docstring).

    2D against 3D: per anchor, the correlation over joints of the 2D x (y) with the mapped 3D x (y); the
    2D anchors are projections of the 3D ones, so it is close to 1 with the right mapping and close to -1
    with a flipped axis. Left against right: the facing direction ``(left hip - right hip) x up`` (camera
    axes; up = shoulders' mid-point minus hips' mid-point) and each knee's offset from the middle of its hip
    and ankle; knees bend forward, so their projection on the facing direction is positive on most anchors
    whose knees bend (by over 2 cm). A swapped left/right or a flipped depth makes it negative.

    Returns:
      the fractions measured: ``x``, ``y`` (anchors with correlation > 0.5) and ``knees`` (bent knees in
      front). Raises ValueError naming ``source`` when one is under ``min_agreement``.
    """
    pose2d, pose3d = split_anchor_poses(anchor_poses)
    skel = skeleton_lib.get_skeleton(skeleton)
    idx = {n: i for i, n in enumerate(skel.joint_names)}

    def corr(a, b):
        a = a - a.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
        return (a * b).sum(1) / np.maximum(np.sqrt((a * a).sum(1) * (b * b).sum(1)), 1e-12)

    found = {"x": float(np.mean(corr(pose2d[..., 0], pose3d[..., 0]) > 0.5)),
             "y": float(np.mean(corr(pose2d[..., 1], pose3d[..., 1]) > 0.5))}
    p = pose3d.astype(np.float64)
    hips = (p[:, idx["left_hip"]] + p[:, idx["right_hip"]]) / 2
    up = (p[:, idx["left_shoulder"]] + p[:, idx["right_shoulder"]]) / 2 - hips
    facing = np.cross(p[:, idx["left_hip"]] - p[:, idx["right_hip"]], up)
    facing /= np.maximum(np.linalg.norm(facing, axis=-1, keepdims=True), 1e-9)
    bends = []
    for side in ("left_", "right_"):
        knee, hip, ankle = (p[:, idx[side + j]] for j in ("knee", "hip", "ankle"))
        bends.append(((knee - (hip + ankle) / 2) * facing).sum(-1))
    bends = np.concatenate(bends)
    bent = np.abs(bends) > 0.02
    found["knees"] = float(np.mean(bends[bent] > 0)) if bent.any() else 1.0
    bad = {k: v for k, v in found.items() if v < min_agreement}
    if bad:
        what = {"x": "2D x against 3D X (image left)", "y": "2D y against 3D Y (up)",
                "knees": "left against right (knees bend forward)"}
        raise ValueError(f"{source}: the anchor-poses disagree with the release's axes (x, y, z = -X, -Y, Z): "
                         + "; ".join(f"{what[k]} holds on {100 * v:.0f}% of the anchors" for k, v in bad.items())
                         + f" (at least {100 * min_agreement:.0f}% expected)")
    return found


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_release(path: str) -> ReleaseCheckpoint:
    """Reads and checks a release file (module docstring).

    Raises:
      FileNotFoundError: no such file.
      ValueError: not a release file (the message names the file and what is wrong: a refused class, a
        missing entry, a setting the conversion does not reproduce, missing / unexpected / mis-shaped
        weights, anchor-poses whose axes disagree).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"release model file not found: {path}")
    content = pickle_reader.load_release_pickle(path)
    if not isinstance(content, Mapping):
        raise ValueError(f"{path}: a release file holds a dict, found {type(content).__name__}")
    lacking = [k for k in ("model", "cfg", "anchor_poses") if k not in content]
    if lacking:
        raise ValueError(f"{path}: not a release model file: no {', '.join(lacking)} (entries: {sorted(content)})")
    anchor_poses = np.asarray(content["anchor_poses"], np.float32)
    if anchor_poses.ndim != 2 or anchor_poses.shape[1] % 5 or anchor_poses.shape[0] % 2 or not anchor_poses.size:
        raise ValueError(f"{path}: anchor_poses must be (2K, 5J), found {anchor_poses.shape}")
    if not np.all(np.isfinite(anchor_poses)):
        raise ValueError(f"{path}: anchor_poses hold non-finite values")
    num_anchors, num_joints = anchor_poses.shape[0] // 2, anchor_poses.shape[1] // 5
    if num_joints not in SKELETONS:
        raise ValueError(f"{path}: anchor-poses of {num_joints} joints; the release's bodies have "
                         f"{' or '.join(map(str, SKELETONS))}")
    settings = effective_settings(content["cfg"])
    for key, accepted in _REQUIRED.items():
        if settings[key] not in accepted:
            raise ValueError(f"{path}: cfg {key} = {settings[key]!r}; the conversion reproduces "
                             f"{' or '.join(map(repr, accepted))} only")
    if len(settings["RPN.SIZES"]) * len(settings["RPN.ASPECT_RATIOS"]) != 15:
        raise ValueError(f"{path}: cfg RPN.SIZES {settings['RPN.SIZES']} x RPN.ASPECT_RATIOS "
                         f"{settings['RPN.ASPECT_RATIOS']} do not make the release's 15 anchors")
    weights = content["model"]
    if not isinstance(weights, Mapping):
        raise ValueError(f"{path}: 'model' must map parameter names to arrays, found {type(weights).__name__}")
    weights = {str(k): np.asarray(v) for k, v in weights.items()}
    rpn = weights.get("RPN.RPN_conv.weight")
    check_weights(weights, release_weight_shapes(num_anchors, num_joints,
                                                 int(rpn.shape[0]) if rpn is not None and rpn.ndim else 1024),
                  path)
    for name, value in weights.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{path}: weight {name} holds non-finite values")
    skeleton = SKELETONS[num_joints]
    check_anchor_axes(anchor_poses, skeleton, f"{path}: anchor_poses")
    ppi_params = dict(content.get("ppi_params") or {})
    return ReleaseCheckpoint(weights={k: v.astype(np.float32) for k, v in weights.items()}, settings=settings,
                             anchor_poses=anchor_poses, ppi_params=ppi_params, num_anchors=num_anchors,
                             num_joints=num_joints, skeleton=skeleton, source=path, sha256=sha256_of(path),
                             name=os.path.splitext(os.path.basename(path))[0])
