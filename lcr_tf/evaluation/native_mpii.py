"""MPII's results files: the ``pred`` struct of the MPII Human Pose evaluation toolkit (evalMPII), as its
scripts read it, and the detections they hold (which the toolkit-style figures of
:mod:`lcr_tf.evaluation.mpii_toolkit` score exactly as written).

Both files are ``.mat`` (MATLAB 1-based pixel coordinates, :func:`lcr_tf.datasets.mpii_annotations.
to_mpii_coordinates`); a point is ``annopoints.point(k)`` with ``id`` (0-based MPII joint id, the order of
:data:`lcr_tf.contracts.skeleton.MPII16`), ``x``, ``y`` and ``score`` (the detection's score).

* ``pred_keypoints_mpii.mat`` (single person, ``evaluatePCKh.m``): ``pred(i)`` for every evaluated image,
  in the reader's order, an image whose file could not be read included (``evaluatePCKh.m`` asserts one
  entry per image). ``pred(i).image.name``; ``pred(i).annorect(r)`` for every ``annorect`` of the
  annotation, in its order, with the annotation's ``objpos`` (``x``, ``y``) and ``scale`` where it has them
  ([] where not: ``flatten_annolist.m`` keeps exactly the rects with an ``objpos``, so both flatten alike),
  ``annopoints`` and ``score``. A single-person person's rect holds its detection: on training / validation
  images by default the one the evaluation pairs with it (:func:`lcr_tf.evaluation.pairing.pair_people`,
  on the annotated joints: the figure of the detections as the package's own is), and on the test set (no
  joints), or on any split with ``single_pairing="objpos"``, the one :func:`lcr_tf.evaluation.mpii_groups.
  pair_by_objpos` gives from ``objpos`` and ``scale``, as a test-set submission must (the toolkit's figure on
  validation images is then what such a submission would score). Every other rect, and an unpaired person's, has
  ``annopoints = []``, which ``annolist2matrix.m`` reads as a missing pose (every joint missed).
* ``pred_keypoints_mpii_multi.mat`` (multi-person, ``evaluateAP.m``): with the toolkit's groups file
  (``groups_v12.mat``), one entry per multi-person group of the evaluated images
  (:func:`lcr_tf.evaluation.mpii_groups.multi_person_groups`, in image then group order, as
  ``getMultiPersonGroups.m`` lists them and ``evaluateAP.m`` asserts), holding the detections
  :func:`~lcr_tf.evaluation.mpii_groups.assign_to_groups` puts in that group. Without it, one entry per
  evaluated image holding all of its detections (the image's multi-person people being its one group).
  Either way only detections not paired with a single-person person, by decreasing score, with their
  points inside the image (a detector run on the picture does not claim points outside it); a detection
  with no point inside is not written, since ``assignGTmulti.m`` indexes every rect's
  ``annopoints.point``. Each rect holds ``annopoints`` and ``score``.

Joints. LCR-13 gives the 12 limb joints and a head centre. MPII's pelvis is the mid-hip and its thorax the
mid-shoulder (:func:`lcr_tf.contracts.skeleton.convert`). MPII's upper neck and head top, which the
toolkit's "Head" scores, are estimated on the line from the mid-shoulder point ``s`` to LCR-13's head ``h``
(:func:`mpii_points`): ``upper_neck = s + UPPER_NECK_FRACTION * (h - s)`` and ``head_top = 2 h - upper_neck``
(LCR-13's head is the midpoint of upper neck and head top, the rule its MPII ground truth is converted by).
:data:`UPPER_NECK_FRACTION` = 0.445 is the least-squares fit over the 6,367 poses of LSP extended (10,000
annotated images) whose shoulders, neck and head top are all visible, LSP's neck being MPII's upper neck
(the toolkit's ``assignGTmulti.m`` maps them so). Fitted on one half of them and measured on the other
(both ways), the estimate puts the upper neck within half a head length (|head top - neck|) of the
annotation for 93.6 % / 92.6 % of the people, against 78.6 % / 78.0 % for the mid-shoulder point; the head
top, otherwise not written (missed by the toolkit), is within it for 93.6 % / 92.6 %. A model with a head top
of its own (``mupots14``: the entries' ``native`` detections, :func:`lcr_tf.evaluation.predictions_file.
model_people`) has it written as predicted.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from lcr_tf.contracts import serving
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets import mpii_annotations
from lcr_tf.evaluation import mpii_groups
from lcr_tf.evaluation.ground_truth import GroundTruth
from lcr_tf.evaluation.predictions_file import model_people
from lcr_tf.evaluation.tables import SKELETON

SINGLE_FILE = "pred_keypoints_mpii.mat"
MULTI_FILE = "pred_keypoints_mpii_multi.mat"
MPII = skeleton_lib.MPII16
#: Where MPII's upper neck lies on the line from the mid-shoulder point to LCR-13's head (module docstring).
UPPER_NECK_FRACTION = 0.445
#: How the written MPII joints come from LCR-13, for the results and the table.
WRITTEN_JOINTS = {
    "upper_neck": f"estimated: mid-shoulder + {UPPER_NECK_FRACTION} x (LCR-13 head - mid-shoulder), fitted on LSP "
                  "extended (the mid-shoulder point itself puts it within half a head length for 78 % of people, "
                  "this for 93 %)",
    "head_top": "estimated: 2 x LCR-13 head - upper_neck (LCR-13's head is the midpoint of the two)",
    "thorax": "mid-shoulder (not scored by the toolkit)",
    "pelvis": "mid-hip (not scored by the toolkit)",
}
BY_GROUPS, BY_IMAGE = mpii_groups.BY_GROUPS, mpii_groups.BY_IMAGE
GROUPING_NOTE = {
    BY_GROUPS: "one entry per multi-person group of the toolkit's groups file, as evaluateAP.m reads it",
    BY_IMAGE: "one entry per evaluated image (no groups file given: --mpii_groups=groups_v12.mat makes the "
              "entries evaluateAP.m reads)",
}
#: How the single-person file's detections are chosen (the results count the images of each way): by the
#: evaluation's pairing, or by objpos and scale (always on test images, which have no joints).
PAIRING = {False: "images paired by the evaluation's pairing on the annotated joints (pairing.pair_people)",
           True: "images paired by objpos and scale (mpii_groups.pair_by_objpos), as a test-set submission"}
#: ``single_pairing`` of :func:`build_submission` (``--mpii_pairing``); the first is the default.
SINGLE_PAIRINGS = ("joints", "objpos")
_THORAX, _NECK, _TOP = MPII.index("thorax"), MPII.index("upper_neck"), MPII.index("head_top")
_HEAD = SKELETON.index("head")


def mpii_points(pose2d_lcr: np.ndarray, own2d: Optional[np.ndarray] = None, own_skeleton=None) -> np.ndarray:
    """LCR-13 detections -> MPII's 16 joints (module docstring), NaN where LCR-13 gives nothing.

    Args:
      pose2d_lcr: (..., 13, 2) pixels, any convention.
      own2d, own_skeleton: the same detections in the model's own joints ((..., J, 2), same convention), when
        they are not LCR-13: a head top of its own is written as predicted instead of estimated.
    Returns:
      (..., 16, 2) pixels in the same convention.
    """
    lcr = np.asarray(pose2d_lcr, np.float64)
    pose, given = skeleton_lib.convert(lcr, SKELETON, MPII)
    s, h = pose[..., _THORAX, :], lcr[..., _HEAD, :]
    ok = given[..., _THORAX] & np.all(np.isfinite(h), axis=-1)
    neck = s + UPPER_NECK_FRACTION * (h - s)
    pose[..., _NECK, :] = np.where(ok[..., None], neck, np.nan)
    pose[..., _TOP, :] = np.where(ok[..., None], 2.0 * h - neck, np.nan)
    if own2d is not None and "head_top" in skeleton_lib.get_skeleton(own_skeleton).joint_names:
        top = np.asarray(own2d, np.float64)[..., skeleton_lib.get_skeleton(own_skeleton).index("head_top"), :]
        pose[..., _TOP, :] = top
    return pose


def written_joints(skeleton=SKELETON) -> Dict[str, str]:
    """How the MPII joints LCR-13 lacks are written for a model of ``skeleton`` (for the results)."""
    out = dict(WRITTEN_JOINTS)
    skel = skeleton_lib.get_skeleton(skeleton)
    if "head_top" in skel.joint_names:
        out["head_top"] = f"as the model predicts it ({skel.name})"
    return out


@dataclasses.dataclass
class MultiEntry:
    """One entry of the multi-person file.

    Attributes:
      image: the entry's image, its index in the evaluated ground truth.
      annorects: the 1-based annorects of its people (the group's; by image: the image's multi-person
        people).
      detections: (k,) int, the image's detections in the entry, by decreasing score.
      points: (k, 16, 2) package pixels as written (NaN: not written, outside the image); scores: (k,).
    """

    image: int
    annorects: List[int]
    detections: np.ndarray
    points: np.ndarray
    scores: np.ndarray


@dataclasses.dataclass
class Submission:
    """The two files of one row, before they are written.

    Attributes:
      single: per evaluated image, per annorect (annotation order): (16, 2) package pixels of the joints
        written (NaN: not written), or None for ``annopoints = []``.
      single_scores: the same layout, the detection's score or None.
      multi: the multi-person entries. grouping: :data:`BY_GROUPS` or :data:`BY_IMAGE`.
      facts: counts for the results (images per pairing, paired single-person people, detections left out
        and why).
    """

    single: List[List[Optional[np.ndarray]]]
    single_scores: List[List[Optional[float]]]
    multi: List[MultiEntry]
    grouping: str
    facts: Dict[str, Any]


def _rects(gt: GroundTruth) -> List[Dict[str, Any]]:
    if gt.annorects is None:
        raise ValueError(f"image {gt.image_id!r}: its ground truth has no annorect table (not read by the "
                         "mpii reader)")
    return gt.annorects


def build_submission(ground_truth: Sequence[GroundTruth], predictions: Mapping[str, Mapping[str, Any]],
                     method: str, pred_to_gt: Sequence[np.ndarray],
                     groups: Optional[Sequence[Sequence[np.ndarray]]] = None,
                     single_pairing: str = SINGLE_PAIRINGS[0]) -> Submission:
    """The single- and multi-person files of one row (module docstring).

    Args:
      ground_truth: the evaluated MPII images. predictions: image id -> rows, for every image.
      method: ``ppi`` or ``nms``.
      pred_to_gt: per image, (D,) the person each detection is paired with (:class:`~lcr_tf.evaluation.
        pairing.Pairing`); on test images (``img_train = 0``, no joints) the single-person people are paired
        by objpos and scale instead.
      groups: the toolkit's groups per annolist image (:func:`lcr_tf.evaluation.mpii_groups.read_groups`),
        or None (entries by image).
      single_pairing: ``joints`` (``pred_to_gt``, where the image has joints) or ``objpos`` (every image).
    Raises:
      ValueError: a groups file that does not cover an image, or names an annorect the image lacks; an
        unknown ``single_pairing``.
    """
    if single_pairing not in SINGLE_PAIRINGS:
        raise ValueError(f"MPII single-person pairing must be one of {', '.join(SINGLE_PAIRINGS)}, got "
                         f"{single_pairing!r}")
    single: List[List[Optional[np.ndarray]]] = []
    single_scores: List[List[Optional[float]]] = []
    multi: List[MultiEntry] = []
    facts = {"single_person_pairing": {}, "single_person_rects": 0, "single_person_paired": 0,
             "detections_without_point_inside": 0, "detections_outside_groups": 0}
    for i, gt in enumerate(ground_truth):  # one image at a time; its detections are vectorised
        rects = _rects(gt)
        det = predictions[gt.image_id][method]
        scores = np.asarray(det[serving.SCORE], np.float64).reshape(-1)
        poses = np.asarray(det[serving.POSE2D], np.float64).reshape(-1, SKELETON.num_joints, 2)
        own, own_skeleton = model_people(predictions[gt.image_id], method)
        points = mpii_points(poses, None if own is det else own[serving.POSE2D], own_skeleton)
        index = {r["annorect"]: k for k, r in enumerate(rects)}
        is_single = [r["single_person"] and r["objpos"] is not None for r in rects]
        # The single-person rect (position in ``rects``) each detection answers, or -1.
        to_rect = np.full((len(scores),), -1, np.int64)
        by_objpos = single_pairing == "objpos" or gt.metadata.get("img_train") == 0
        facts["single_person_pairing"][PAIRING[by_objpos]] = facts["single_person_pairing"].get(
            PAIRING[by_objpos], 0) + 1
        if not by_objpos:
            link = np.asarray(pred_to_gt[i], np.int64)
            for d in np.flatnonzero(link >= 0):
                k = index.get(int(gt.person_ids[int(link[d])]))
                if k is not None and is_single[k]:
                    to_rect[d] = k
        else:
            cand = [k for k in range(len(rects)) if is_single[k] and rects[k]["scale"] is not None]
            pair = mpii_groups.pair_by_objpos(mpii_groups.detection_centres(poses), scores,
                                              np.array([rects[k]["objpos"] for k in cand]).reshape(-1, 2),
                                              np.array([rects[k]["scale"] for k in cand], np.float64))
            to_rect[pair >= 0] = np.asarray(cand, np.int64)[pair[pair >= 0]]
        row: List[Optional[np.ndarray]] = [None] * len(rects)
        row_scores: List[Optional[float]] = [None] * len(rects)
        for d in np.flatnonzero(to_rect >= 0):
            row[to_rect[d]], row_scores[to_rect[d]] = points[d], float(scores[d])
        single.append(row)
        single_scores.append(row_scores)
        facts["single_person_rects"] += int(sum(is_single))
        facts["single_person_paired"] += int((to_rect >= 0).sum())
        # The multi-person detections: not a single-person person's, with a point inside the image.
        inside = gt.inside(points) & np.all(np.isfinite(points), axis=-1)
        written = np.where(inside[..., None], points, np.nan)
        free = [d for d in np.argsort(-scores, kind="stable") if to_rect[d] < 0]
        facts["detections_without_point_inside"] += sum(1 for d in free if not inside[d].any())
        free = np.array([d for d in free if inside[d].any()], np.int64)
        if groups is None:
            multi.append(MultiEntry(i, [int(j) for j in gt.metadata.get("multi_person", [])], free, written[free],
                                    scores[free]))
            continue
        multi += _group_entries(i, gt, rects, index, groups, free, poses, written, scores, facts)
    return Submission(single, single_scores, multi, BY_IMAGE if groups is None else BY_GROUPS, facts)


def _group_entries(i, gt, rects, index, groups, free, poses, written, scores, facts) -> List[MultiEntry]:
    """The entries of image ``i``'s multi-person groups, each with the free detections it holds."""
    image = int(gt.metadata.get("index", -1))
    if not 0 <= image < len(groups):
        raise ValueError(f"--mpii_groups: the groups file has {len(groups)} images, image {gt.image_id!r} is "
                         f"annolist({image + 1}) (a groups file of another annotation release?)")
    single = [r["annorect"] for r in rects if r["single_person"]]
    chosen = mpii_groups.multi_person_groups(groups[image], single)
    for group in chosen:
        missing = [int(j) for j in group if int(j) not in index]
        if missing:
            raise ValueError(f"--mpii_groups: annolist({image + 1}) ({gt.image_id}) has {len(rects)} annorects, "
                             f"its group {[int(j) for j in group]} names annorect {missing[0]}")
    regions = [mpii_groups.group_region([rects[index[int(j)]]["objpos"] for j in g],
                                        [rects[index[int(j)]]["scale"] for j in g]) for g in chosen]
    known = [k for k, (box, _) in enumerate(regions) if box is not None]
    where = np.full((len(free),), -1, np.int64)
    if known and len(free):
        found = mpii_groups.assign_to_groups(mpii_groups.detection_centres(poses[free]),
                                             np.array([regions[k][0] for k in known]),
                                             np.array([regions[k][1] for k in known]))
        where[found >= 0] = np.asarray(known, np.int64)[found[found >= 0]]
    if chosen:
        facts["detections_outside_groups"] += int((where < 0).sum())
    out = []
    for k, group in enumerate(chosen):
        mine = free[where == k]
        out.append(MultiEntry(i, [int(j) for j in group], mine, written[mine], scores[mine]))
    return out


# --------------------------------------------------------------------------- the MATLAB structs

_EMPTY = np.zeros((0, 0))  # MATLAB's [] (isempty is true)
_POINT_FIELDS = ("id", "x", "y", "score")


def _struct_array(entries: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> np.ndarray:
    """A 1 x n MATLAB struct array (a structured object array, as ``savemat`` writes them)."""
    array = np.zeros((1, len(entries)), dtype=[(f, object) for f in fields])
    for i, entry in enumerate(entries):
        for f in fields:
            array[0, i][f] = entry[f]
    return array


def _annopoints(points: Optional[np.ndarray], score: Optional[float]):
    """``annopoints`` of (16, 2) package pixels (NaN: not written): a struct with ``point`` (1 x P: id, x,
    y, score) in MATLAB coordinates; [] when no point is written."""
    if points is None:
        return _EMPTY
    xy = mpii_annotations.to_mpii_coordinates(points)
    rows = [{"id": float(j), "x": float(xy[j, 0]), "y": float(xy[j, 1]), "score": float(score)}
            for j in np.flatnonzero(np.all(np.isfinite(points), axis=-1))]
    return {"point": _struct_array(rows, _POINT_FIELDS)} if rows else _EMPTY


def pred_structs(submission: Submission, ground_truth: Sequence[GroundTruth]):
    """(single-person ``pred``, multi-person ``pred``): 1 x N struct arrays ready for ``savemat``."""
    single = []
    for gt, row, row_scores in zip(ground_truth, submission.single, submission.single_scores):
        rects = []
        for rect, points, score in zip(_rects(gt), row, row_scores):
            objpos = rect["objpos"]
            rects.append({
                "objpos": _EMPTY if objpos is None else dict(zip(("x", "y"), (
                    float(v) for v in mpii_annotations.to_mpii_coordinates(np.asarray(objpos, np.float64))))),
                "scale": _EMPTY if rect["scale"] is None else float(rect["scale"]),
                "annopoints": _annopoints(points, score), "score": _EMPTY if score is None else float(score)})
        single.append({"image": {"name": gt.image_id},
                       "annorect": _struct_array(rects, ("objpos", "scale", "annopoints", "score"))})
    multi = []
    for entry in submission.multi:
        rects = [{"annopoints": _annopoints(p, s), "score": float(s)} for p, s in zip(entry.points, entry.scores)]
        multi.append({"image": {"name": ground_truth[entry.image].image_id},
                      "annorect": _struct_array(rects, ("annopoints", "score"))})
    fields = ("image", "annorect")
    return _struct_array(single, fields), _struct_array(multi, fields)


def file_variables(submission: Submission, ground_truth: Sequence[GroundTruth]) -> Dict[str, Dict[str, Any]]:
    """{file name: {variable: value}} of one row, for ``savemat``."""
    single, multi = pred_structs(submission, ground_truth)
    return {SINGLE_FILE: {"pred": single}, MULTI_FILE: {"pred": multi}}


def describe(submission: Submission) -> Dict[str, Any]:
    """What the results say about one row's files: entries, grouping, pairing and what was left out."""
    out = {"single_person_entries": len(submission.single), "multi_person_entries": len(submission.multi),
           "grouping": submission.grouping, "grouping_note": GROUPING_NOTE[submission.grouping]}
    out.update(submission.facts)
    return out
