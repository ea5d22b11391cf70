"""The exported model on the evaluated images: the SavedModel's ``raw_proposals`` signature on batches of
encoded images, then the NumPy pose proposal integration of each image's candidates twice, mode ``paper``
(PPI, eq 7-8) and mode ``nms`` (the paper's NMS baseline), with the defaults of
:func:`lcr_tf.serving.inference.default_params`.

The signature takes a batch of encoded images of any sizes (each is letterboxed on its own), so one call
runs :data:`BATCH_SIZE` images; its outputs are padded per image (``candidate_valid``) and the integration
runs per image, so the detections do not depend on the batch.

Before an image is sent its header is read (:mod:`lcr_tf.serving.image_header`): one that is not a JPEG or
PNG, is broken, or is over the limits the SavedModel holds would fail its whole batch, so it is not sent;
nor is an image whose file cannot be read.
It is evaluated as an image where the model found nobody and no candidate (its people are missed, as a
server refusing it would leave them), and is listed, with the reason, in the ``refused`` argument.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, Sequence

from lcr_tf.contracts import serving
from lcr_tf.evaluation.ground_truth import GroundTruth
from lcr_tf.evaluation.predictions_file import CANDIDATES, NATIVE, as_people, to_evaluation_skeleton
from lcr_tf.evaluation.tables import PPI_MODE, SKELETON
from lcr_tf.serving import image_header

#: Images per call of the signature.
BATCH_SIZE = 8
# How many refused images are listed by name in the results.
_REFUSED_EXAMPLES = 20
# The candidate fields the integration takes.
_CANDIDATE_FIELDS = (serving.SCORE, serving.CANDIDATE_ROI_BOXES, serving.POSE2D, serving.POSE3D,
                     serving.CANDIDATE_CLASSES)


def predict(saved_model: str, images: Sequence[GroundTruth], batch_size: int = BATCH_SIZE,
            refused: Optional[List[Dict[str, str]]] = None) -> Dict[str, Dict[str, Any]]:
    """Runs the SavedModel's ``raw_proposals`` on ``batch_size`` images per call, then the NumPy PPI and NMS.

    Args:
      refused: a list that gets ``{"image_id", "reason"}`` for every image not sent (module docstring),
        which is also reported on stderr.
    Returns:
      image id -> {"ppi": people, "nms": people, "candidates": {POSE2D (M, J, 2), POSE3D (M, J, 3)}},
      people as :func:`lcr_tf.evaluation.predictions_file.as_people` (keys of
      :mod:`lcr_tf.contracts.serving`) in LCR-13, and ``"native"`` with the model's own joints when they
      are not LCR-13 (:mod:`lcr_tf.evaluation.predictions_file`).
    """
    import tensorflow as tf

    from lcr_tf.postprocess import integration
    from lcr_tf.serving import export as export_lib
    from lcr_tf.serving import inference

    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    loaded = tf.saved_model.load(export_lib.latest_version_dir(saved_model))
    signature = loaded.signatures[serving.RAW_PROPOSALS]
    limits = image_header.Limits.of_saved_model(loaded)
    # The model's joint set (every export records it); LCR-13 for a SavedModel without the variable.
    skeleton = loaded.skeleton.numpy().decode() if hasattr(loaded, "skeleton") else SKELETON.name
    batch_size = min(batch_size, limits.max_images_per_request)
    params = None
    out: Dict[str, Dict[str, Any]] = {}
    for batch, encoded in _checked_batches(images, batch_size, limits, out, refused):
        raw = {k: v.numpy() for k, v in signature(**{serving.IMAGES: tf.constant(encoded)}).items()}
        if params is None:
            num_anchors = (raw[serving.CLASS_PROBS].shape[-1] - 1) // 2
            params = {name: inference.default_params(num_anchors, mode) for name, mode in PPI_MODE.items()}
        for b, gt in enumerate(batch):
            valid = raw[serving.candidate_key(serving.CANDIDATE_VALID)][b].astype(bool)
            cand = {k: raw[serving.candidate_key(k)][b][valid] for k in _CANDIDATE_FIELDS}
            size = tuple(int(v) for v in raw[serving.IMAGE_SIZE][b])
            entry: Dict[str, Any] = {}
            native: Dict[str, Any] = {"skeleton": skeleton}
            for name, mode in PPI_MODE.items():
                det = integration.integrate_candidates(
                    *(cand[k] for k in _CANDIDATE_FIELDS), image_size=size, mode=mode, params=params[name])
                native[name] = as_people(det.scores, det.pose2d, det.pose3d, skeleton)
                entry[name] = to_evaluation_skeleton(native[name], skeleton)
            cands = to_evaluation_skeleton(as_people([], cand[serving.POSE2D], cand[serving.POSE3D], skeleton),
                                           skeleton)
            entry[CANDIDATES] = {serving.POSE2D: cands[serving.POSE2D], serving.POSE3D: cands[serving.POSE3D]}
            if skeleton != SKELETON.name:  # the model's own joints, for the benchmarks' native files
                entry[NATIVE] = native
            out[gt.image_id] = entry
    return out


def refused_summary(refused: Sequence[Dict[str, str]]) -> Dict[str, Any]:
    """The results' fields of the images :func:`predict` did not send: ``refused_images`` (count, each
    evaluated as an image where the model found nobody) and ``refused_examples`` (the first ones, with
    their reasons)."""
    return {"refused_images": len(refused), "refused_examples": list(refused[:_REFUSED_EXAMPLES])}


def _checked_batches(images: Sequence[GroundTruth], batch_size: int, limits: image_header.Limits,
                     out: Dict[str, Dict[str, Any]], refused: Optional[List[Dict[str, str]]]):
    """Yields (ground truths, their encoded images) of at most ``batch_size`` images whose headers pass
    ``limits``, reading each image once; a refused image gets its empty entry in ``out`` (module
    docstring) and is added to ``refused``."""
    batch: List[GroundTruth] = []
    encoded: List[bytes] = []
    for gt in images:
        try:
            data = gt.image_bytes()
            image_header.check(data, f"image {gt.image_id}", limits)
        except (image_header.ImageRefused, OSError, ValueError) as e:
            # An image file that cannot be read (MPII keeps such images, lcr_tf.evaluation.ground_truth) is
            # refused like one the model's limits refuse: its people are missed.
            reason = e.reason if isinstance(e, image_header.ImageRefused) else (
                f"cannot read the image file ({type(e).__name__}: {e})")
            nobody = as_people([], [], [])  # the shapes of an image without candidates
            out[gt.image_id] = {**{name: nobody for name in PPI_MODE},
                                CANDIDATES: {serving.POSE2D: nobody[serving.POSE2D],
                                             serving.POSE3D: nobody[serving.POSE3D]}}
            if refused is not None:
                refused.append({"image_id": gt.image_id, "reason": reason})
            print(f"not sent to the model: image {gt.image_id}: {reason}", file=sys.stderr)
            continue
        batch.append(gt)
        encoded.append(data)
        if len(batch) == batch_size:
            yield batch, encoded
            batch, encoded = [], []
    if batch:
        yield batch, encoded
