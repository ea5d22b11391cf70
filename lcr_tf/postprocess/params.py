"""Settings of the pose proposal integration (PPI, paper Sec 3.6) and of its NMS baseline.

One frozen dataclass, :class:`PPIParams`, shared by the NumPy (:mod:`lcr_tf.postprocess.integration`) and the
TensorFlow (:mod:`lcr_tf.postprocess.ppi_tf`) implementations. Fields left to ``None`` take a value that
depends on the mode or on the number of classes; :meth:`PPIParams.resolve` fills them in.
:meth:`PPIParams.from_release` maps the ``ppi_params`` dict of a released model file (the keyword arguments
of the release's ``LCRNet_PPI_improved``) to the settings of the official mode.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Mapping, Optional

MODES = ("paper", "official", "nms")
GROUP_BY = ("pose_box", "roi_box")
# The grouping criteria of the release's LCRNet_PPI_improved (``iou_func``, lcr_net_ppi_improved.py lines
# 105-122), in the official mode. "bbox" and "bbox_torsohead" both take the IoU of the RoI boxes; the others
# a mean 2D joint distance (:mod:`lcr_tf.postprocess.integration` documents each).
IOU_FUNCS = ("bbox", "bbox_torsohead", "torso", "torsoLR", "torsohead", "torsoheadLR", "head", "shoulderhead",
             "shoulderheadLR", "mje")
# The release's joint lists are written for its 13- and 14-joint bodies; for any other J it asserts that
# iou_func is one of these (line 88).
RELEASE_BODY_JOINTS = (13, 14)
ANY_J_IOU_FUNCS = ("bbox", "mje")
# The iou_func values that group by the IoU of the RoI boxes (line 105).
BOX_IOU_FUNCS = ("bbox", "bbox_torsohead")
# Below this IoU threshold, every candidate of the seed's RoI joins its group (a box's IoU with itself is 1 up
# to round-off), so a box iou_func makes at most one person per RoI.
_SAME_BOX_IOU = 0.999

# T_3D per mode, metres. The paper reports T_3D = 130 mm with IoU 0.12 for its VGG model on MPII (Table 4);
# the public release uses 0.3 m.
DEFAULT_POSE3D_THRESHOLD_M = {"paper": 0.13, "official": 0.3, "nms": 0.13}
# Candidate threshold of the public release: 0.1 / C, C the number of foreground classes.
RELEASE_SCORE_FACTOR = 0.1
# The keys of a released model's ``ppi_params`` (keyword arguments of LCRNet_PPI_improved, line 61) -> fields.
RELEASE_KEYS = {"score_th": "score_threshold", "th_pose3D": "pose3d_threshold_m", "th_iou": "iou_threshold",
                "iou_func": "iou_func", "min_mode_score": "min_mode_score", "th_persondetect": "min_person_score"}
# The release's defaults for the keys a model file leaves out (line 61; score_th None is 0.1 / C, line 48).
RELEASE_DEFAULTS = {"score_th": None, "th_pose3D": 0.3, "th_iou": 0.2, "iou_func": "bbox", "min_mode_score": 0.05,
                    "th_persondetect": 0.002}


@dataclasses.dataclass(frozen=True)
class PPIParams:
    """PPI settings.

    Attributes:
      score_threshold: a (RoI, class) pair is a candidate when its classification probability is
        ``>= score_threshold``; None: ``0.1 / C`` with C foreground classes (the public release's rule).
      iou_threshold: two candidates belong to the same person when the IoU of their boxes is ``>`` this
        (with a joint-distance ``iou_func`` of the official mode: when the normalised distance is ``<`` this).
      pose3d_threshold_m: T_3D (eq 7), metres, on the mean per-joint 3D distance; None: 0.13 in the paper
        and nms modes, 0.3 in the official mode.
      min_mode_score: within a person, no further mode is seeded by a candidate scoring below this once the
        person has one mode (0 to iterate until every candidate is covered).
      min_person_score: a person is reported only if its score is ``>`` this.
      group_by: "pose_box" (the box around the candidate's 2D joints, as in the paper) or "roi_box" (the
        RoI's box), in the paper and nms modes. The official mode groups by ``iou_func``.
      iou_func: the official mode's grouping criterion, one of :data:`IOU_FUNCS` (the release's names):
        "bbox" (default) and "bbox_torsohead" group by the +1 IoU of the RoI boxes; the others by a mean 2D
        distance of joints (:mod:`lcr_tf.postprocess.integration`). Only "bbox" and "mje" exist for J other
        than 13 and 14. The paper and nms modes refuse anything but "bbox".
      rescore: apply eq 6 to the candidate scores before grouping (paper and nms modes; the official mode
        never rescores).
      sigma_b_px: sigma_b of eq 6, pixels.
      num_full_body: K, the number of full-body classes (classes ``1..K``); used by the official mode's
        lower-body weighting (J = 13 or 14 only), which down-weights 0-based class indices ``> K``. None:
        every class counts as full-body.
      max_candidates: at most this many (RoI, class) candidates per image, the best-scoring ones; None: every
        candidate (the release's rule; NumPy :func:`~lcr_tf.postprocess.integration.ppi` and
        :func:`~lcr_tf.postprocess.ppi_tf.ppi_tf` only: the serving graph needs an int).
      max_detections: at most this many people per image (the best-scoring ones); None: every person (the
        release's rule; outputs of the TensorFlow PPI are then padded to its number of input rows M).
    """

    score_threshold: Optional[float] = None
    iou_threshold: float = 0.2
    pose3d_threshold_m: Optional[float] = None
    min_mode_score: float = 0.05
    min_person_score: float = 0.002
    group_by: str = "pose_box"
    rescore: bool = True
    sigma_b_px: float = 25.0
    num_full_body: Optional[int] = None
    max_candidates: Optional[int] = 1000
    max_detections: Optional[int] = 20
    iou_func: str = "bbox"

    def __post_init__(self):
        if self.group_by not in GROUP_BY:
            raise ValueError(f"PPIParams.group_by must be one of {GROUP_BY}, got {self.group_by!r}")
        check_iou_func(self.iou_func)
        for name in ("iou_threshold", "min_mode_score", "min_person_score", "sigma_b_px"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"PPIParams.{name} must be a finite number, got {value!r}")
        if self.sigma_b_px <= 0:
            raise ValueError(f"PPIParams.sigma_b_px must be > 0, got {self.sigma_b_px}")
        for name in ("score_threshold", "pose3d_threshold_m"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"PPIParams.{name} must be a finite number or None, got {value!r}")
        for name in ("max_candidates", "max_detections"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"PPIParams.{name} must be a positive int or None, got {value!r}")
        if self.num_full_body is not None and (not isinstance(self.num_full_body, int)
                                               or self.num_full_body < 0):
            raise ValueError(f"PPIParams.num_full_body must be a non-negative int or None, "
                             f"got {self.num_full_body!r}")

    def resolve(self, mode: str, num_classes: int) -> "PPIParams":
        """A copy with every None replaced by its value for ``mode`` and C = ``num_classes`` foreground
        classes (score threshold 0.1 / C, T_3D of the mode, K = C + 1)."""
        check_mode(mode)
        c = int(num_classes)
        if c < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        return dataclasses.replace(
            self,
            score_threshold=(RELEASE_SCORE_FACTOR / c if self.score_threshold is None
                             else float(self.score_threshold)),
            pose3d_threshold_m=(DEFAULT_POSE3D_THRESHOLD_M[mode] if self.pose3d_threshold_m is None
                                else float(self.pose3d_threshold_m)),
            num_full_body=c + 1 if self.num_full_body is None else self.num_full_body)

    @classmethod
    def from_release(cls, ppi_params: Mapping, num_anchor_classes: int, num_joints: int, *,
                     k: Optional[int] = None, num_rois: Optional[int] = None) -> "PPIParams":
        """The official-mode settings that reproduce the release's ``LCRNet_PPI_improved(scores, boxes,
        pose2d, pose3d, resolution, K=k, **ppi_params)`` (lcr_net_ppi_improved.py, called by demo.py
        line 153).

        Args:
          ppi_params: a released model file's ``ppi_params`` dict; keys among :data:`RELEASE_KEYS`, those
            left out take the release's defaults (:data:`RELEASE_DEFAULTS`).
          num_anchor_classes: the number of anchor-pose classes, 2K in the paper's notation (the release's
            ``anchor_poses.shape[0]``, i.e. the scores' columns less the background).
          num_joints: J of the model; with J other than 13 and 14 only iou_func "bbox" and "mje" are
            accepted, as the release asserts (line 88).
          k: the release's ``K`` argument; None: ``num_anchor_classes``, which is what demo.py passes
            (``K = anchor_poses.shape[0]``, lines 135, 153). The lower-body weighting down-weights 0-based
            class indices ``> K`` (line 186), so with demo.py's K it never applies.
          num_rois: the number of RoIs per image when it is fixed (a serving graph): ``max_candidates``
            becomes ``num_rois * num_anchor_classes`` and ``max_detections`` the most people there can be:
            ``num_rois`` with a box iou_func ("bbox", "bbox_torsohead") and ``th_iou < 0.999`` (the classes
            of one RoI share its box, so they always join the same group, the seed's own RoI included as
            its IoU with itself is 1 up to round-off, for sides ``x2 - x1 + 1 > 0``), else
            ``num_rois * num_anchor_classes``. Neither truncates. None: both None (no cap), as the
            release takes every candidate and returns every person.
        Returns:
          :class:`PPIParams` for ``mode="official"``; ``score_threshold`` is ``0.1 / num_anchor_classes``
          where ``score_th`` is None or absent (line 48).
        Raises:
          ValueError: naming unknown keys, a bad value or an iou_func the release refuses for ``num_joints``.
        """
        unknown = sorted(set(ppi_params) - set(RELEASE_KEYS), key=str)
        if unknown:
            raise ValueError(f"unknown keys in the release's ppi_params: {unknown}; known: {sorted(RELEASE_KEYS)}")
        c = _int_at_least(num_anchor_classes, "num_anchor_classes", 1)
        j = _int_at_least(num_joints, "num_joints", 1)
        release = {**RELEASE_DEFAULTS, **dict(ppi_params)}
        check_iou_func(release["iou_func"], j)
        fields = {"iou_func": release.pop("iou_func")}
        for key, value in release.items():
            # A pickled model file may hold NumPy scalars; anything not a real number is refused by name.
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
                raise ValueError(f"ppi_params[{key!r}] must be a number, got {value!r}")
            fields[RELEASE_KEYS[key]] = None if value is None else float(value)
        if fields["score_threshold"] is None:
            fields["score_threshold"] = RELEASE_SCORE_FACTOR / c
        if fields["pose3d_threshold_m"] is None:
            raise ValueError("ppi_params['th_pose3D'] must be a number, got None")
        candidates = people = None
        if num_rois is not None:
            candidates = people = _int_at_least(num_rois, "num_rois", 1) * c
            if fields["iou_func"] in BOX_IOU_FUNCS and fields["iou_threshold"] < _SAME_BOX_IOU:
                people = int(num_rois)
        return cls(rescore=False, num_full_body=c if k is None else _int_at_least(k, "k", 0),
                   max_candidates=candidates, max_detections=people, **fields)


def _int_at_least(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def check_iou_func(iou_func: str, num_joints: Optional[int] = None) -> str:
    """Validates an official-mode ``iou_func`` (for ``num_joints`` J when given); returns it."""
    if not isinstance(iou_func, str) or iou_func not in IOU_FUNCS:
        raise ValueError(f"iou_func must be one of {IOU_FUNCS} (the release's names), got {iou_func!r}")
    if num_joints is not None and int(num_joints) not in RELEASE_BODY_JOINTS and iou_func not in ANY_J_IOU_FUNCS:
        raise ValueError(f"iou_func {iou_func!r} is defined for J in {RELEASE_BODY_JOINTS} only (the release "
                         f"asserts iou_func in {list(ANY_J_IOU_FUNCS)} for other J), got J = {num_joints}")
    return iou_func


def check_mode(mode: str, allowed=MODES) -> str:
    if mode not in allowed:
        raise ValueError(f"PPI mode must be one of {tuple(allowed)}, got {mode!r}")
    return mode
