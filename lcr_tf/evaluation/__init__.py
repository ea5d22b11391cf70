"""Evaluation metrics of the paper's protocols, on NumPy arrays.

* 3D (:mod:`~lcr_tf.evaluation.pose3d`): :func:`mpjpe` and :func:`pa_mpjpe` ((N, J, 3) metres -> (N,) mm),
  :func:`procrustes_align`, 3DPCK at 150 mm and its AUC (:func:`pck3d`, :func:`pck3d_auc`,
  :func:`mupots_scores`).
* 2D (:mod:`~lcr_tf.evaluation.pose2d`): :func:`pckh` with MPII's head size (:func:`mpii_head_size`),
  :func:`pckh_per_joint`, MPII multi-person AP (:func:`mpii_multi_person_ap`), and the split of a 2D
  error into where the person is and how it is posed (:func:`error_parts`).
* Matching (:mod:`~lcr_tf.evaluation.matching`): :func:`match_detections`, Hungarian on 2D distance.
"""

from lcr_tf.evaluation.matching import Matching, match_detections, mean_joint_distance
from lcr_tf.evaluation.pose2d import (
                                      ErrorParts,
                                      MultiPersonAP,
                                      assign_group,
                                      error_parts,
                                      mpii_head_size,
                                      mpii_multi_person_ap,
                                      normalised_distances,
                                      pckh,
                                      pckh_curve,
                                      pckh_per_joint,
                                      voc_average_precision,
)
from lcr_tf.evaluation.pose3d import (
                                      AUC_THRESHOLDS_MM,
                                      PCK3D_THRESHOLD_MM,
                                      joint_errors_mm,
                                      mpjpe,
                                      mupots_scores,
                                      pa_mpjpe,
                                      pck3d,
                                      pck3d_auc,
                                      pck3d_curve,
                                      procrustes_align,
)

__all__ = [
    "AUC_THRESHOLDS_MM", "PCK3D_THRESHOLD_MM", "ErrorParts", "Matching", "MultiPersonAP", "assign_group",
    "error_parts", "joint_errors_mm", "match_detections", "mean_joint_distance", "mpii_head_size",
    "mpii_multi_person_ap",
    "mpjpe", "mupots_scores", "normalised_distances", "pa_mpjpe", "pck3d", "pck3d_auc", "pck3d_curve",
    "pckh", "pckh_curve", "pckh_per_joint", "procrustes_align", "voc_average_precision",
]
