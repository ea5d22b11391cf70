"""Which class and joint of a source model each class and joint of a new model starts from: fine-tuning a
model to other anchor-poses or another skeleton (paper Sec 4.3: LCR-Net++ fine-tuned to the 14 joints of
MuPoTS-3D's MoCap skeleton, ``lcr_tf.train --init_from=<13-joint model> --anchors=<14-joint anchors>``).

Both anchor sets are 3D anchor-poses (2K, J, 3) in metres, camera axes, each in its own skeleton; both are
body-centred here with the package's one body centre (mean of the hips and shoulders, which every
skeleton has), so the joints two skeletons share by name are directly comparable.

Classes. Each full-body target anchor ``k`` is matched to the source full-body anchor nearest to it over
the shared joints (squared Euclidean distance of the body-centred poses, the K-means distance restricted
to those joints); its upper-body twin ``K_t + k`` to that anchor's twin ``K_s + m(k)``; the background to
the background. Several target classes may share one source class, and a source class may have none.

Joints. A target joint with the name of a source joint takes that joint ("same name"). A new joint
(``head_top`` and ``neck`` of ``mupots14`` from ``lcr13``) takes the **nearest** source joint, where the
distance between target joint ``t`` and source joint ``i`` is the mean over the K_t full-body target
anchors of ``|| A_t[k, t] - A_s[m(k), i] ||``, each target anchor against its matched source anchor (one
body pose, one orientation). Mean positions over all anchors would not do: the anchors are oriented all
round, so every joint's mean collapses onto the vertical axis and left and right become one.

Refinement input. The refinement stage (Sec 3.4) reads the first estimate's regression: each source
joint feeds it through exactly one target joint (``feeds``), the one of the same name, else the nearest of
those that copy it; the others (a second copy) start with zero input weights, so that the stage reads at
start what the source stage read.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Tuple

import numpy as np

from lcr_tf.contracts import anchor_layout
from lcr_tf.contracts import skeleton as skeleton_lib

SAME_NAME = "same name"
NEAREST = "nearest"


@dataclasses.dataclass(frozen=True)
class TransferMap:
    """The source of every class and joint of a target model (module docstring).

    Attributes:
      source_skeleton, target_skeleton: skeleton names.
      num_source_anchors, num_target_anchors: K_s, K_t.
      joint_source: (J_t,) int, the source joint of each target joint.
      joint_rule: (J_t,) :data:`SAME_NAME` or :data:`NEAREST`.
      joint_distance_m: (J_t,) float, the mean distance between each target joint and its source joint
        over the matched anchor pairs (metres).
      feeds: (J_t,) bool, the target joint through which its source joint feeds the refinement stage.
      class_source: (2K_t + 1,) int, the source class of each target class (0, the background, for 0).
      anchor_distance_m: (K_t,) float, RMS distance per shared joint between each full-body target anchor
        and its source anchor (metres).
    """

    source_skeleton: str
    target_skeleton: str
    num_source_anchors: int
    num_target_anchors: int
    joint_source: np.ndarray
    joint_rule: Tuple[str, ...]
    joint_distance_m: np.ndarray
    feeds: np.ndarray
    class_source: np.ndarray
    anchor_distance_m: np.ndarray

    @property
    def num_source_joints(self) -> int:
        return skeleton_lib.get_skeleton(self.source_skeleton).num_joints

    @property
    def num_source_classes(self) -> int:
        return anchor_layout.num_classes(self.num_source_anchors)

    @property
    def class_share(self) -> np.ndarray:
        """(2K_t + 1,) int: how many target classes have the source class of each target class."""
        counts = np.bincount(self.class_source, minlength=self.num_source_classes)
        return counts[self.class_source]

    @property
    def unmatched_source_classes(self) -> np.ndarray:
        """The source classes no target class starts from (their weights are left behind)."""
        return np.setdiff1d(np.arange(self.num_source_classes), self.class_source)

    @property
    def unused_source_joints(self) -> Tuple[str, ...]:
        """The source joints no target joint starts from."""
        names = skeleton_lib.get_skeleton(self.source_skeleton).joint_names
        return tuple(n for i, n in enumerate(names) if i not in set(self.joint_source.tolist()))

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready: skeletons, anchor counts, one entry per target joint and the class map."""
        src = skeleton_lib.get_skeleton(self.source_skeleton)
        dst = skeleton_lib.get_skeleton(self.target_skeleton)
        return {
            "source_skeleton": src.name, "target_skeleton": dst.name,
            "num_source_anchors": self.num_source_anchors, "num_target_anchors": self.num_target_anchors,
            "joints": [{"target": dst.joint_names[t], "source": src.joint_names[int(i)], "rule": self.joint_rule[t],
                        "mean_distance_m": round(float(self.joint_distance_m[t]), 6),
                        "feeds_refinement": bool(self.feeds[t])} for t, i in enumerate(self.joint_source)],
            "unused_source_joints": list(self.unused_source_joints),
            "class_source": self.class_source.tolist(),
            "anchor_distance_m": [round(float(d), 6) for d in self.anchor_distance_m],
            "unmatched_source_classes": self.unmatched_source_classes.tolist(),
            "rules": "classes: nearest source anchor over the shared joints (body-centred, squared Euclidean), "
                     "upper-body classes as their full-body twins; joints: the source joint of the same name, "
                     "else the nearest by mean distance over the matched anchor pairs",
        }

    def describe(self) -> List[str]:
        """Lines for a log: one per target joint, then the classes."""
        src = skeleton_lib.get_skeleton(self.source_skeleton)
        dst = skeleton_lib.get_skeleton(self.target_skeleton)
        lines = [f"weight transfer {src.name} (K={self.num_source_anchors}) -> {dst.name} "
                 f"(K={self.num_target_anchors}): target joint <- source joint (rule, mean distance over the "
                 f"matched anchor pairs)"]
        for t, i in enumerate(self.joint_source):
            note = "" if self.feeds[t] else ", no refinement input (a second copy)"
            lines.append(f"  {dst.joint_names[t]:<16} <- {src.joint_names[int(i)]:<16} {self.joint_rule[t]}, "
                         f"{self.joint_distance_m[t]:.3f} m{note}")
        distinct = np.unique(self.class_source[1:]).size
        lines.append(f"  classes: {self.class_source.size - 1} target anchor classes <- {distinct} distinct of the "
                     f"{self.num_source_classes - 1} source ones (nearest anchor over the shared joints, RMS "
                     f"{self.anchor_distance_m.mean():.3f} m on average, {self.anchor_distance_m.max():.3f} m at "
                     f"most); {self.unmatched_source_classes.size} source classes unmatched")
        unused = ", ".join(self.unused_source_joints) or "none"
        lines.append(f"  source joints without a target: {unused}")
        return lines


def plan(source_pose3d, source_skeleton, target_pose3d, target_skeleton) -> TransferMap:
    """The :class:`TransferMap` from the source's anchor-poses to the target's (module docstring).

    Args:
      source_pose3d: (2K_s, J_s, 3) the source model's 3D anchor-poses, metres, in ``source_skeleton``
        (full-body rows ``0..K_s-1`` first, the layout of :mod:`lcr_tf.poses.anchors`).
      target_pose3d: (2K_t, J_t, 3) the target's, in ``target_skeleton``.
    Raises:
      ValueError: shapes that do not fit the skeletons, or skeletons sharing fewer than the four joints of
        the body centre.
    """
    src = skeleton_lib.get_skeleton(source_skeleton)
    dst = skeleton_lib.get_skeleton(target_skeleton)
    full = []
    for name, poses, skel in (("source", source_pose3d, src), ("target", target_pose3d, dst)):
        poses = np.asarray(poses, np.float64)
        if poses.ndim != 3 or poses.shape[1:] != (skel.num_joints, 3) or poses.shape[0] < 2 or poses.shape[0] % 2:
            raise ValueError(f"the {name} anchor-poses have shape {poses.shape}, expected (2K, {skel.num_joints}, 3) "
                             f"for skeleton {skel.name!r}")
        full.append(skeleton_lib.centre_poses(poses[:poses.shape[0] // 2], skel))
    a_s, a_t = full
    k_s, k_t = a_s.shape[0], a_t.shape[0]
    shared = [n for n in dst.joint_names if n in src.joint_names]
    if len(shared) < 4:
        raise ValueError(f"skeletons {src.name!r} and {dst.name!r} share only the joints {shared}")
    si, ti = src.indices(shared), dst.indices(shared)
    diff = a_t[:, None, ti, :] - a_s[None, :, si, :]                     # (K_t, K_s, S, 3)
    squared = np.einsum("tsjd,tsjd->ts", diff, diff)
    match = np.argmin(squared, axis=1)
    anchor_distance = np.sqrt(squared[np.arange(k_t), match] / len(shared))
    # Mean distance of every target joint to every source joint, each target anchor against its match.
    distance = np.linalg.norm(a_t[:, :, None, :] - a_s[match][:, None, :, :], axis=-1).mean(axis=0)  # (J_t, J_s)
    same = np.array([n in src.joint_names for n in dst.joint_names])
    by_name = np.array([src.index(n) if n in src.joint_names else -1 for n in dst.joint_names])
    joint_source = np.where(same, by_name, np.argmin(distance, axis=1)).astype(np.int64)
    joint_distance = distance[np.arange(dst.num_joints), joint_source]
    # Of the target joints copying one source joint, the same-name one feeds the refinement, else the nearest.
    order = np.lexsort((joint_distance, ~same, joint_source))
    first = np.ones(order.size, bool)
    first[1:] = joint_source[order][1:] != joint_source[order][:-1]
    feeds = np.zeros(dst.num_joints, bool)
    feeds[order[first]] = True
    class_source = np.concatenate([[anchor_layout.BACKGROUND_CLASS], anchor_layout.full_body_class(match),
                                   anchor_layout.upper_body_class(match, k_s)]).astype(np.int64)
    return TransferMap(src.name, dst.name, k_s, k_t, joint_source,
                       tuple(SAME_NAME if s else NEAREST for s in same), joint_distance, feeds, class_source,
                       anchor_distance)
