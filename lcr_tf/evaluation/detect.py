"""The exported model on the evaluated images: the SavedModel's ``raw_proposals`` signature on batches of
encoded images, then the NumPy pose proposal integration of each image's candidates twice, mode ``paper``
(PPI, eq 7-8) and mode ``nms`` (the paper's NMS baseline), with the defaults of
:func:`lcr_tf.serving.inference.default_params`.

The signature takes a batch of encoded images of any sizes (each is letterboxed on its own), so one call
runs :data:`BATCH_SIZE` images; its outputs are padded per image (``candidate_valid``) and the integration
runs per image, so the detections do not depend on the batch.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

from lcr_tf.contracts import serving
from lcr_tf.evaluation.ground_truth import GroundTruth
from lcr_tf.evaluation.predictions_file import CANDIDATES, as_people
from lcr_tf.evaluation.tables import PPI_MODE

#: Images per call of the signature.
BATCH_SIZE = 8
# The candidate fields the integration takes.
_CANDIDATE_FIELDS = (serving.SCORE, serving.CANDIDATE_ROI_BOXES, serving.POSE2D, serving.POSE3D,
                     serving.CANDIDATE_CLASSES)


def predict(saved_model: str, images: Sequence[GroundTruth], batch_size: int = BATCH_SIZE
            ) -> Dict[str, Dict[str, Any]]:
    """Runs the SavedModel's ``raw_proposals`` on ``batch_size`` images per call, then the NumPy PPI and NMS.

    Returns:
      image id -> {"ppi": people, "nms": people, "candidates": {POSE2D (M, J, 2), POSE3D (M, J, 3)}},
      people as :func:`lcr_tf.evaluation.predictions_file.as_people` (keys of
      :mod:`lcr_tf.contracts.serving`).
    """
    import tensorflow as tf

    from lcr_tf.postprocess import integration
    from lcr_tf.serving import export as export_lib
    from lcr_tf.serving import inference

    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    loaded = tf.saved_model.load(export_lib.latest_version_dir(saved_model))
    signature = loaded.signatures[serving.RAW_PROPOSALS]
    params = None
    out: Dict[str, Dict[str, Any]] = {}
    images = list(images)
    for start in range(0, len(images), batch_size):
        batch: List[GroundTruth] = images[start:start + batch_size]
        encoded = tf.constant([gt.image_bytes() for gt in batch])
        raw = {k: v.numpy() for k, v in signature(**{serving.IMAGES: encoded}).items()}
        if params is None:
            num_anchors = (raw[serving.CLASS_PROBS].shape[-1] - 1) // 2
            params = {name: inference.default_params(num_anchors, mode) for name, mode in PPI_MODE.items()}
        for b, gt in enumerate(batch):
            valid = raw[serving.candidate_key(serving.CANDIDATE_VALID)][b].astype(bool)
            cand = {k: raw[serving.candidate_key(k)][b][valid] for k in _CANDIDATE_FIELDS}
            size = tuple(int(v) for v in raw[serving.IMAGE_SIZE][b])
            entry: Dict[str, Any] = {}
            for name, mode in PPI_MODE.items():
                det = integration.integrate_candidates(
                    *(cand[k] for k in _CANDIDATE_FIELDS), image_size=size, mode=mode, params=params[name])
                entry[name] = as_people(det.scores, det.pose2d, det.pose3d)
            cands = as_people([], cand[serving.POSE2D], cand[serving.POSE3D])
            entry[CANDIDATES] = {serving.POSE2D: cands[serving.POSE2D], serving.POSE3D: cands[serving.POSE3D]}
            out[gt.image_id] = entry
    return out
