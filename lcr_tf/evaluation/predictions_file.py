"""The predictions file of the evaluation (``--save_predictions`` / ``--predictions`` of
:mod:`lcr_tf.evaluate`): the detections and candidates of each image, so that the measures can be
recomputed without the model::

    {"format": "lcr_tf.evaluate/predictions", "version": 3, "skeleton": "lcr13", "dataset": "h36m",
     "images": {image_id: {"ppi": {"score": [D], "pose2d_px": [D][J][2], "pose3d_body_centred_m": [D][J][3]},
                           "nms": {... same ...},
                           "candidates": {"pose2d_px": [M][J][2], "pose3d_body_centred_m": [M][J][3]}}}}

An image's entry may also hold ``"native": {"skeleton": NAME, "ppi": {...}, "nms": {...}}``: the same
detections in the model's own joint set when it is not LCR-13 (e.g. ``mupots14``, with a head top and a
neck), which the benchmarks' native files write (:func:`model_people`); the other fields hold them
converted to LCR-13 (:func:`to_evaluation_skeleton`), in which every benchmark compares.

The keys of the people are those of :mod:`lcr_tf.contracts.serving`. Versions 1 and 2 (``scores`` and
``pose3d_m`` for the same fields; version 1 has no ``dataset``) are still read. In memory an image's
entry is ``{"ppi": people, "nms": people, "candidates": {POSE2D, POSE3D}}`` with people ``{SCORE (D,),
POSE2D (D, J, 2), POSE3D (D, J, 3)}`` float64 arrays.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from lcr_tf.contracts import atomic_files, serving
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.evaluation.tables import MODES, SKELETON

PREDICTIONS_FORMAT = "lcr_tf.evaluate/predictions"
PREDICTIONS_VERSION = 3
# Versions read by read_predictions (1: no "dataset" field; 1 and 2: the keys of _LEGACY_KEYS).
READABLE_VERSIONS = (1, 2, 3)
# The keys of versions 1 and 2 -> those of version 3.
_LEGACY_KEYS = {"scores": serving.SCORE, "pose2d_px": serving.POSE2D, "pose3d_m": serving.POSE3D}
CANDIDATES = "candidates"
NATIVE = "native"


def as_people(scores, pose2d, pose3d, skeleton=SKELETON) -> Dict[str, np.ndarray]:
    """The people of one image as float64 arrays: ``score`` (D,), ``pose2d_px`` (D, J, 2),
    ``pose3d_body_centred_m`` (D, J, 3), J the joints of ``skeleton`` (LCR-13 by default)."""
    j = skeleton_lib.get_skeleton(skeleton).num_joints
    return {serving.SCORE: np.asarray(scores, np.float64).reshape(-1),
            serving.POSE2D: np.asarray(pose2d, np.float64).reshape(-1, j, 2),
            serving.POSE3D: np.asarray(pose3d, np.float64).reshape(-1, j, 3)}


def to_evaluation_skeleton(people: Mapping[str, np.ndarray], skeleton) -> Dict[str, np.ndarray]:
    """People in ``skeleton``'s joints -> the same people in LCR-13 (:func:`lcr_tf.contracts.skeleton.convert`;
    3D centred again on the body centre). Raises ValueError when the skeleton cannot give every LCR-13 joint."""
    skel = skeleton_lib.get_skeleton(skeleton)
    if skel.name == SKELETON.name:
        return dict(people)
    p2, ok2 = skeleton_lib.convert(people[serving.POSE2D], skel, SKELETON)
    p3, ok3 = skeleton_lib.convert(people[serving.POSE3D], skel, SKELETON)
    if not (ok2.all() and ok3.all()):
        lacking = sorted({SKELETON.joint_names[j] for j in np.flatnonzero(~(ok2 & ok3).all(axis=0))})
        raise ValueError(f"skeleton {skel.name!r} cannot give LCR-13's {', '.join(lacking)}")
    out = dict(people)
    out.update({serving.POSE2D: p2, serving.POSE3D: skeleton_lib.centre_poses(p3, SKELETON)})
    return out


def model_people(entry: Mapping[str, Any], method: str) -> Tuple[Dict[str, np.ndarray], str]:
    """(the row ``method``'s people in the model's own joints, that skeleton's name): the entry's ``native``
    field when it has one, else its LCR-13 people."""
    native = entry.get(NATIVE)
    if native is None:
        return entry[method], SKELETON.name
    return native[method], native["skeleton"]


def _renamed(value, version):
    """An entry's fields under version 3's keys."""
    if version == PREDICTIONS_VERSION or not isinstance(value, dict):
        return value
    return {_LEGACY_KEYS.get(k, k): _renamed(v, version) for k, v in value.items()}


# Decimals kept in a predictions file: 0.001 px, 0.01 mm (a joint lying within that of the PCKh threshold
# may flip when re-evaluated from the file); the candidates make most of its size.
_DECIMALS = {serving.SCORE: 6, serving.POSE2D: 3, serving.POSE3D: 5}


def _to_lists(value, key=None):
    if isinstance(value, dict):
        return {k: _to_lists(v, k) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return np.round(value.astype(np.float64), _DECIMALS.get(key, 6)).tolist()
    return value


def write_predictions(path: str, predictions: Mapping[str, Mapping[str, Any]],
                      dataset: Optional[str] = None) -> None:
    """Writes :func:`lcr_tf.evaluation.detect.predict`'s output in the predictions format of the module
    docstring (``dataset``: the benchmark's name, recorded so that the file is not evaluated on another)."""
    doc = {"format": PREDICTIONS_FORMAT, "version": PREDICTIONS_VERSION, "skeleton": SKELETON.name,
           "images": {k: _to_lists(dict(v)) for k, v in predictions.items()}}
    if dataset:
        doc["dataset"] = dataset
    atomic_files.write_json(path, doc, separators=(",", ":"))


def read_predictions(path: str, dataset: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """Reads a predictions file (module docstring) into the structure of
    :func:`lcr_tf.evaluation.detect.predict`.

    Args:
      dataset: the benchmark evaluated; a file made on another one (its ``dataset`` field) is refused.
    Raises ValueError naming the file, the image id and the field on a malformed entry.
    """
    try:
        with open(path) as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != PREDICTIONS_FORMAT:
        raise ValueError(f"{path}: not a predictions file (expected \"format\": \"{PREDICTIONS_FORMAT}\")")
    if doc.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"{path}: predictions version {doc.get('version')}, this reader reads "
                         f"{', '.join(map(str, READABLE_VERSIONS))}")
    if dataset and doc.get("dataset") not in (None, dataset):
        raise ValueError(f"{path}: predictions made on dataset {doc.get('dataset')!r}, evaluated on {dataset!r}")
    if not isinstance(doc.get("images", {}), dict):
        raise ValueError(f"{path}: field 'images' must map image ids to entries")
    if doc.get("skeleton", SKELETON.name) != SKELETON.name:
        raise ValueError(f"{path}: skeleton {doc.get('skeleton')!r}, expected {SKELETON.name!r}")
    j = SKELETON.num_joints
    out: Dict[str, Dict[str, Any]] = {}
    for image_id, entry in (doc.get("images") or {}).items():
        where = f"{path}: image {image_id!r}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: the entry must be an object with fields {', '.join(MODES)}")
        entry = _renamed(entry, doc["version"])
        item: Dict[str, Any] = {}
        for name in MODES:
            if name not in entry:
                raise ValueError(f"{where}: field {name!r} is missing")
            try:
                people = as_people(entry[name][serving.SCORE], entry[name][serving.POSE2D],
                                   entry[name][serving.POSE3D])
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{where}: field {name!r} is malformed ({e!r}); expected {serving.SCORE} [D], "
                                 f"{serving.POSE2D} [D][{j}][2], {serving.POSE3D} [D][{j}][3]") from None
            n = len(people[serving.SCORE])
            if people[serving.POSE2D].shape[0] != n or people[serving.POSE3D].shape[0] != n:
                raise ValueError(f"{where}: field {name!r} lists {n} scores but "
                                 f"{people[serving.POSE2D].shape[0]} 2D and {people[serving.POSE3D].shape[0]} 3D poses")
            if not all(np.all(np.isfinite(a)) for a in people.values()):
                raise ValueError(f"{where}: field {name!r} holds NaN or inf")
            item[name] = people
        if entry.get(CANDIDATES) is not None:
            try:
                c = as_people([], entry[CANDIDATES][serving.POSE2D], entry[CANDIDATES][serving.POSE3D])
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{where}: field 'candidates' is malformed ({e!r})") from None
            if c[serving.POSE2D].shape[0] != c[serving.POSE3D].shape[0]:
                raise ValueError(f"{where}: field 'candidates' has different numbers of 2D and 3D poses")
            item[CANDIDATES] = {serving.POSE2D: c[serving.POSE2D], serving.POSE3D: c[serving.POSE3D]}
        if entry.get(NATIVE) is not None:
            item[NATIVE] = _read_native(entry[NATIVE], item, where)
        out[image_id] = item
    return out


def _read_native(native: Any, item: Mapping[str, Any], where: str) -> Dict[str, Any]:
    """An entry's ``native`` field (module docstring), checked against its LCR-13 rows."""
    name = native.get("skeleton") if isinstance(native, dict) else None
    if name not in skeleton_lib.SKELETONS:
        raise ValueError(f"{where}: field 'native' must name a known skeleton ({sorted(skeleton_lib.SKELETONS)}), "
                         f"got {name!r}")
    out: Dict[str, Any] = {"skeleton": name}
    for method in MODES:
        try:
            people = as_people(native[method][serving.SCORE], native[method][serving.POSE2D],
                               native[method][serving.POSE3D], name)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: field 'native.{method}' is malformed ({e!r})") from None
        if len(people[serving.SCORE]) != len(item[method][serving.SCORE]):
            raise ValueError(f"{where}: field 'native.{method}' lists {len(people[serving.SCORE])} people, "
                             f"{method!r} {len(item[method][serving.SCORE])}")
        out[method] = people
    return out
