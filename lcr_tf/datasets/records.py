"""Writing labelled images: the tf.train.Example of an image (:func:`encode_item`: full-body flag, anchor
class, pose box), the shard an image goes to and the job's file names, the figures each written image
adds to the summary (:func:`person_statistics`) and the summary itself (:func:`summarise`). Free of Beam:
``beam_jobs.build_tfrecords`` runs these in its DoFns and feeds the summary from its counters.
"""

from __future__ import annotations

import collections
import hashlib
import json
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from lcr_tf.contracts import features, geometry, shard_manifest
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets.labelling import DEFAULT_TARGET, ImageItem

SHARD_SUFFIX = ".tfrecord"


# Histogram bin width of the pseudo-GT distance counters (distances lie in [0, 2]).
DISTANCE_BIN = 0.01


def shard_of(image_id: str, num_shards: int) -> int:
    """The shard of an image: ``md5(image_id) mod num_shards``, the same in every process."""
    digest = hashlib.md5(image_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") % num_shards


def shard_path(prefix: str, shard: int, num_shards: int) -> str:
    """``PREFIX-SSSSS-of-NNNNN.tfrecord`` (Beam's default shard name template)."""
    return f"{prefix}-{shard:05d}-of-{num_shards:05d}{SHARD_SUFFIX}"


def shard_paths(prefix: str, num_shards: int) -> List[str]:
    return [shard_path(prefix, s, num_shards) for s in range(num_shards)]


def rejected_path(prefix: str) -> str:
    return prefix + shard_manifest.REJECTED_SUFFIX


def summary_path(prefix: str) -> str:
    return prefix + shard_manifest.SUMMARY_SUFFIX


def encode_item(item: ImageItem, anchor_set=None) -> Tuple[bytes, Dict[str, np.ndarray]]:
    """The serialized Example of a finished item, and the per-person values that went into it.

    Args:
      item: people completed (no NaN in ``pose2d`` / ``pose3d``), in the skeleton ``item.skeleton``.
      anchor_set: :class:`lcr_tf.poses.anchors.AnchorSet` in that skeleton, or None: every class is then
        :data:`lcr_tf.contracts.features.UNASSIGNED_CLASS` (the trainer assigns classes from its anchors).
    Returns:
      (bytes of ``features.encode_example(...)`` serialized deterministically, {"full_body" (Q,) bool,
      "anchor_class" (Q,) int, "box" (Q, 4) float64}).
    Raises:
      ValueError: from :func:`lcr_tf.contracts.features.encode_example`, or anchors of another skeleton.
    """
    skel = skeleton_lib.get_skeleton(item.skeleton)
    full_body = np.any(item.annotated[:, skel.lower_body], axis=1)
    if anchor_set is None:
        classes = np.full(full_body.shape, features.UNASSIGNED_CLASS, np.int32)
    elif anchor_set.skeleton.name != skel.name:
        raise ValueError(f"the anchor set is in skeleton {anchor_set.skeleton.name!r}, the records in {skel.name!r}")
    else:
        classes = anchor_set.assign_classes(item.pose3d, full_body)
    boxes = geometry.pose_box(item.pose2d)
    record = {
        features.SKELETON: skel.name,
        features.IMAGE_ENCODED: item.encoded,
        features.IMAGE_FORMAT: item.image_format,
        features.IMAGE_ID: item.image_id,
        features.IMAGE_SOURCE: item.dataset,
        features.IMAGE_HEIGHT: item.height,
        features.IMAGE_WIDTH: item.width,
        features.INTRINSICS: item.intrinsics,
        features.BOX: boxes,
        features.POSE2D: item.pose2d,
        features.ANNOTATED: item.annotated,
        features.COMPLETED: item.completed,
        features.VISIBLE: item.visible,
        features.POSE3D: item.pose3d,
        features.POSE3D_SOURCE: np.where(item.has_3d, features.POSE3D_MOCAP, features.POSE3D_PSEUDO_GT),
        features.PSEUDO_GT_DISTANCE: item.distance,
        features.ANCHOR_CLASS: classes,
        features.IGNORE_BOXES: item.ignore_boxes,
    }
    example = features.encode_example(record)
    return (example.SerializeToString(deterministic=True),
            {"full_body": full_body, "anchor_class": classes, "box": boxes})


def person_statistics(item: ImageItem, values: Mapping[str, np.ndarray]) -> Dict[str, Any]:
    """The figures of an encoded image for the summary: {"counters": ((name, value), ...),
    "distances_micro": (pseudo-GT distances in millionths, ...)}: per-person counts (3D source, body
    part, anchor class, completed joints per person and per joint of the item's skeleton) and the image's
    ignore regions
    (written, dropped as empty). They are counted when the image is written, so that the summary
    describes exactly the written images."""
    counts = collections.Counter()
    counts["persons_pose3d_mocap"] = int(item.has_3d.sum())
    counts["persons_pose3d_pseudo_gt"] = int((~item.has_3d).sum())
    counts["persons_full_body"] = int(values["full_body"].sum())
    counts["persons_upper_body"] = int((~values["full_body"]).sum())
    counts["joints_completed"] = int(item.completed.sum())
    counts["joints_visible"] = int(item.visible.sum())
    counts.update(f"anchor_class_{c:04d}" for c in values["anchor_class"].tolist())
    counts.update(f"completed_joints_{n:02d}" for n in item.completed.sum(axis=1).tolist())
    for name, n in zip(skeleton_lib.get_skeleton(item.skeleton).joint_names, item.completed.sum(axis=0).tolist()):
        counts[f"completed_by_joint_{name}"] = int(n)
    counts["ignore_regions_written"] = int(item.ignore_boxes.shape[0])
    counts["ignore_regions_empty"] = int(item.ignore_empty)
    distances = item.distance[~item.has_3d]
    counts.update(f"pseudo_gt_distance_bin_{int(d / DISTANCE_BIN):04d}" for d in distances.tolist())
    return {"counters": tuple(sorted((k, v) for k, v in counts.items() if v)),
            "distances_micro": tuple(int(round(d * 1e6)) for d in distances.tolist())}


def _sort_key(line: Mapping[str, Any]):
    return (str(line.get("key")), line.get("kind") != "person", line.get("person", -1), line.get("code"))


def _prefixed(counters: Mapping[str, int], prefix: str) -> Dict[str, int]:
    return {k[len(prefix):]: v for k, v in sorted(counters.items()) if k.startswith(prefix) and v}


def _histogram_percentiles(bins: Mapping[int, int], width: float, qs: Sequence[float]) -> Dict[str, float]:
    """Upper bin edges below which a fraction q of the histogram's values lie."""
    if not bins:
        return {}
    edges = np.array(sorted(bins))
    cumulative = np.cumsum([bins[b] for b in edges])
    out = {}
    for q in qs:
        i = int(np.searchsorted(cumulative, q * cumulative[-1], side="left"))
        out[f"p{q * 100:g}"] = round(float((edges[min(i, edges.size - 1)] + 1) * width), 6)
    return out


def summarise(counters: Mapping[str, int], distributions: Mapping[str, Mapping[str, float]],
              num_listed: int, parameters: Mapping[str, Any], shards: Sequence[str] = ()) -> Dict[str, Any]:
    """The summary dict written to ``PREFIX-summary.json``.

    ``images.written_empty`` counts the written images without people (those marked negative by the
    reader; they are part of ``images.written``). ``check.images_accounted`` is true when every listed key
    ended written or rejected (written + rejected = listed), ``check.persons_accounted`` when every person
    read ended written, rejected, or dropped with a rejected image. ``ignore_regions`` counts the records'
    ignore regions:
    read, written, dropped because clipping to the image left nothing, and the rest (those of rejected
    images). ``completed_joints.by_joint`` counts the completed joints of the written people per joint name
    of the records' skeleton (``parameters["skeleton"]``, LCR-13 when the parameters name none).
    """
    c = collections.Counter(counters)
    images_rejected = _prefixed(c, "images_rejected_")
    persons_rejected = _prefixed(c, "persons_rejected_")
    images_rejected_total = sum(images_rejected.values())
    persons_rejected_total = sum(persons_rejected.values())
    distance = {}
    micro = distributions.get("pseudo_gt_distance_micro")
    bins = {int(k): v for k, v in _prefixed(c, "pseudo_gt_distance_bin_").items()}
    if micro:
        distance = {"count": int(micro["count"]), "min": micro["min"] / 1e6, "max": micro["max"] / 1e6,
                    "mean": micro["sum"] / micro["count"] / 1e6,
                    "percentiles": _histogram_percentiles(bins, DISTANCE_BIN, (0.5, 0.9, 0.99)),
                    "percentile_resolution": DISTANCE_BIN,
                    "histogram_by_bin_start": {f"{b * DISTANCE_BIN:.2f}": n for b, n in sorted(bins.items())}}
    completed_hist = {str(int(k)): v for k, v in _prefixed(c, "completed_joints_").items()}
    skel = skeleton_lib.get_skeleton(parameters.get("skeleton") or DEFAULT_TARGET.name)
    completed_by_joint = {name: c[f"completed_by_joint_{name}"] for name in skel.joint_names}
    ignore_read, ignore_written, ignore_empty = (c["ignore_regions_read"], c["ignore_regions_written"],
                                                 c["ignore_regions_empty"])
    shard_info = []
    for path in shards:
        try:
            import tensorflow as tf
            size = int(tf.io.gfile.stat(path).length)
        except Exception:  # a missing shard is reported as such, the summary is still written
            size = None
        shard_info.append({"path": path, "bytes": size})
    written = c["images_written"]
    persons_read = c["persons_read"]
    persons_end = c["persons_written"] + persons_rejected_total + c["persons_dropped_with_image"]
    return {
        "parameters": dict(parameters),
        "images": {"listed": int(num_listed), "read": c["images_read"], "written": written,
                   "written_empty": c["images_written_empty"], "rejected": images_rejected_total,
                   "rejected_by_reason": images_rejected},
        "persons": {"read": persons_read, "written": c["persons_written"], "rejected": persons_rejected_total,
                    "rejected_by_reason": persons_rejected,
                    "dropped_with_rejected_images": c["persons_dropped_with_image"],
                    "pose3d_mocap": c["persons_pose3d_mocap"], "pose3d_pseudo_gt": c["persons_pose3d_pseudo_gt"],
                    "full_body": c["persons_full_body"], "upper_body": c["persons_upper_body"]},
        "pseudo_gt_distance": distance,
        "completed_joints": {"total": c["joints_completed"], "people_by_count": completed_hist,
                             "by_joint": completed_by_joint},
        "visible_joints": c["joints_visible"],
        "anchor_classes": {str(int(k)): v for k, v in _prefixed(c, "anchor_class_").items()},
        "ignore_regions": {"read": ignore_read, "written": ignore_written,
                           "dropped_empty_after_clipping": ignore_empty,
                           "dropped_with_rejected_images": ignore_read - ignore_written - ignore_empty},
        "shards": shard_info,
        "check": {"images_accounted": written + images_rejected_total == num_listed,
                  "written_plus_rejected": written + images_rejected_total, "listed": int(num_listed),
                  "persons_accounted": persons_end == persons_read},
    }


def rejection_lines(lines: Sequence[Mapping[str, Any]]) -> List[str]:
    """The rejection dicts as JSON lines (with their newline), sorted by key, persons of an image before
    the image."""
    return [json.dumps(line, sort_keys=True) + "\n" for line in sorted(lines, key=_sort_key)]


def write_summary(path: str, summary: Mapping[str, Any]) -> None:
    """Writes the summary (:func:`summarise`) to ``path`` (any ``tf.io.gfile`` path) as indented JSON, keys
    sorted."""
    import tensorflow as tf
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
