"""The 3D pose corpus: ``poses.npz`` as written by ``beam_jobs.mocap_poses`` and the body model.

Arrays (see :mod:`lcr_tf.contracts.npz_io` for the on-disk rules):
  * ``poses3d``: (N, J, 3) float32, metres, camera axes (x right, y down, z away), body-centred
    (:func:`lcr_tf.contracts.skeleton.centre_poses`); the MoCap's up axis is -y.
  * ``trial``: (N,) unicode, the trial (or motion family) each pose comes from.
  * ``frame``: (N,) int32, the frame index of each pose within its trial.
Sidecar: at least ``skeleton`` (a :mod:`lcr_tf.contracts.skeleton` name) and ``units`` ("m").
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

import numpy as np

from lcr_tf.contracts import npz_io
from lcr_tf.contracts import skeleton as skeleton_lib

REQUIRED_ARRAYS = ("poses3d", "trial", "frame")


@dataclasses.dataclass
class PoseCorpus:
    poses3d: np.ndarray
    trial: np.ndarray
    frame: np.ndarray
    metadata: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.poses3d = np.asarray(self.poses3d, dtype=np.float32)
        self.trial = np.asarray(self.trial).astype(str)
        self.frame = np.asarray(self.frame, dtype=np.int32)
        n = self.poses3d.shape[0]
        if self.poses3d.ndim != 3 or self.poses3d.shape[-1] != 3:
            raise ValueError(f"poses3d must be (N, J, 3), got {self.poses3d.shape}")
        if self.trial.shape != (n,) or self.frame.shape != (n,):
            raise ValueError(f"trial {self.trial.shape} and frame {self.frame.shape} must be ({n},)")
        self.metadata.setdefault("units", "m")
        skel = skeleton_lib.get_skeleton(self.metadata.setdefault("skeleton", "lcr13"))
        if skel.num_joints != self.poses3d.shape[1]:
            raise ValueError(f"poses3d has {self.poses3d.shape[1]} joints, skeleton {skel.name!r} "
                             f"has {skel.num_joints}")

    @property
    def skeleton(self) -> skeleton_lib.Skeleton:
        return skeleton_lib.get_skeleton(self.metadata["skeleton"])

    def __len__(self) -> int:
        return self.poses3d.shape[0]

    def save(self, path: str) -> None:
        npz_io.save(path, {"poses3d": self.poses3d, "trial": self.trial, "frame": self.frame},
                    self.metadata)


def load(path: str, skeleton: Optional[str] = None) -> PoseCorpus:
    """Reads ``poses.npz``; with ``skeleton`` given, checks the corpus is in that joint set."""
    arrays, meta = npz_io.load(path, REQUIRED_ARRAYS)
    if not np.all(np.isfinite(arrays["poses3d"])):
        bad = int(np.argmax(~np.all(np.isfinite(arrays["poses3d"]), axis=(1, 2))))
        raise ValueError(f"{path}: poses3d[{bad}] holds NaN or inf")
    corpus = PoseCorpus(arrays["poses3d"], arrays["trial"], arrays["frame"], meta)
    skeleton_lib.check_metres(corpus.poses3d, corpus.skeleton, f"{path}: poses3d")
    if skeleton is not None and corpus.metadata["skeleton"] != skeleton:
        raise ValueError(f"{path}: corpus skeleton is {corpus.metadata['skeleton']!r}, expected {skeleton!r}")
    return corpus
