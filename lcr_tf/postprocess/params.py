"""Settings of the pose proposal integration (PPI, paper Sec 3.6) and of its NMS baseline.

One frozen dataclass, :class:`PPIParams`, shared by the NumPy (:mod:`lcr_tf.postprocess.integration`) and the
TensorFlow (:mod:`lcr_tf.postprocess.ppi_tf`) implementations. Fields left to ``None`` take a value that
depends on the mode or on the number of classes; :meth:`PPIParams.resolve` fills them in.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

MODES = ("paper", "official", "nms")
GROUP_BY = ("pose_box", "roi_box")

# T_3D per mode, metres. The paper reports T_3D = 130 mm with IoU 0.12 for its VGG model on MPII (Table 4);
# the public release uses 0.3 m.
DEFAULT_POSE3D_THRESHOLD_M = {"paper": 0.13, "official": 0.3, "nms": 0.13}
# Candidate threshold of the public release: 0.1 / C, C the number of foreground classes.
RELEASE_SCORE_FACTOR = 0.1


@dataclasses.dataclass(frozen=True)
class PPIParams:
    """PPI settings.

    Attributes:
      score_threshold: a (RoI, class) pair is a candidate when its classification probability is
        ``>= score_threshold``; None: ``0.1 / C`` with C foreground classes (the public release's rule).
      iou_threshold: two candidates belong to the same person when the IoU of their boxes is ``>`` this.
      pose3d_threshold_m: T_3D (eq 7), metres, on the mean per-joint 3D distance; None: 0.13 in the paper
        and nms modes, 0.3 in the official mode.
      min_mode_score: within a person, no further mode is seeded by a candidate scoring below this once the
        person has one mode (0 to iterate until every candidate is covered).
      min_person_score: a person is reported only if its score is ``>`` this.
      group_by: "pose_box" (the box around the candidate's 2D joints, as in the paper) or "roi_box" (the
        RoI's box). The official mode always groups by RoI box.
      rescore: apply eq 6 to the candidate scores before grouping (paper and nms modes; the official mode
        never rescores).
      sigma_b_px: sigma_b of eq 6, pixels.
      num_full_body: K, the number of full-body classes (classes ``1..K``); used by the official mode's
        lower-body weighting. None: every class counts as full-body.
      max_candidates: at most this many (RoI, class) candidates per image, the best-scoring ones.
      max_detections: at most this many people per image (the best-scoring ones).
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
    max_candidates: int = 1000
    max_detections: int = 20

    def __post_init__(self):
        if self.group_by not in GROUP_BY:
            raise ValueError(f"PPIParams.group_by must be one of {GROUP_BY}, got {self.group_by!r}")
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
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PPIParams.{name} must be a positive int, got {value!r}")
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


def check_mode(mode: str, allowed=MODES) -> str:
    if mode not in allowed:
        raise ValueError(f"PPI mode must be one of {tuple(allowed)}, got {mode!r}")
    return mode
