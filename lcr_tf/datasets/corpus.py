"""The 3D pose corpus the data tools draw from: people of the synthetic images and the pseudo ground-truth
database of ``beam_jobs.build_tfrecords`` (one definition of the default corpus)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.poses import body_model, pose_corpus

# Corpus size when no poses.npz is given: that many poses of the embedded body model.
DEFAULT_BODY_MODEL_POSES = 20000


def load_corpus_poses(poses: Optional[str], body_model_poses: Optional[int], seed: int) -> np.ndarray:
    """(N, 13, 3) float32 metres, camera axes, body-centred: ``poses`` (a ``poses.npz`` in LCR-13) or, when
    None, ``body_model.sample_poses(body_model_poses or DEFAULT_BODY_MODEL_POSES, seed)``."""
    if poses:
        return pose_corpus.load(poses, skeleton=skeleton_lib.LCR13.name).poses3d
    return body_model.sample_poses(body_model_poses or DEFAULT_BODY_MODEL_POSES, seed).poses3d
