"""Writes MuCo-3DHP trees in the layout of the public release, for tests (a test helper, no reader code).

The release (``MuCo-3DHP.json`` with its composited images) is one folder ROOT::

    ROOT/MuCo-3DHP.json
    ROOT/augmented_set/<name>.jpg       composites with augmented appearance
    ROOT/unaugmented_set/<name>.jpg     composites without

``MuCo-3DHP.json`` is a COCO-style object:

* ``images``: ``{"id": int, "file_name": "augmented_set/....jpg" (relative to ROOT), "width": int,
  "height": int, "f": [fx, fy], "c": [cx, cy]}`` (pixels);
* ``annotations``: ``{"id": int, "image_id": int, "category_id": 1, "iscrowd": 0,
  "keypoints_cam": 21 x [X, Y, Z] (millimetres, camera axes: x right, y down, z away),
  "keypoints_img": 21 x [x, y] (pixels: the pinhole projection x = fx X / Z + cx, y = fy Y / Z + cy),
  "bbox": [x, y, w, h] (pixels), "area": w * h}``, one per person;
* ``categories``: ``[{"id": 1, "name": "person"}]``.

Joints are in the ``muco21`` order of :mod:`lcr_tf.contracts.skeleton`.

Typical use::

    tree = write_muco_tree(tmp_path, [poses_a, poses_b])           # (P, 21, 3) mm each, default camera
    tree = write_muco_tree(tmp_path, [MucoImage(poses, f=(500, 510), c=(120, 90), width=256, height=192)])
    data = tree.data; data["annotations"][0]["keypoints_cam"] = None; write_annotation_file(tree.annotation_path, data)

:func:`muco21_from` builds 21-joint poses from poses of another skeleton (e.g. LCR-13 from
``lcr_tf.poses.body_model``), placing the joints that cannot be derived (head top, hands, toes) plausibly.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib

MUCO = skeleton_lib.MUCO21
NUM_JOINTS = MUCO.num_joints
ANNOTATION_FILE = "MuCo-3DHP.json"
IMAGE_FOLDERS = ("augmented_set", "unaugmented_set")
PERSON_CATEGORY = 1
DEFAULT_SIZE = (256, 192)          # width, height in pixels
DEFAULT_FOCAL = (300.0, 300.0)     # fx, fy in pixels
DEFAULT_GREY = 120


def project(points_mm: np.ndarray, f: Sequence[float], c: Sequence[float]) -> np.ndarray:
    """Pinhole projection: (..., 3) camera coordinates (any unit, z > 0) -> (..., 2) pixels
    ``x = fx X / Z + cx``, ``y = fy Y / Z + cy`` (float64)."""
    p = np.asarray(points_mm, np.float64)
    f, c = np.asarray(f, np.float64), np.asarray(c, np.float64)
    return p[..., :2] / p[..., 2:3] * f + c


def tight_bbox(points2d: np.ndarray) -> np.ndarray:
    """(..., J, 2) pixels -> (..., 4) ``[x, y, w, h]`` of the joints' bounding box."""
    p = np.asarray(points2d, np.float64)
    lo, hi = p.min(axis=-2), p.max(axis=-2)
    return np.concatenate([lo, hi - lo], axis=-1)


@dataclasses.dataclass
class MucoImage:
    """One image to write.

    Attributes:
      poses_mm: (P, 21, 3) float, millimetres, camera coordinates (x right, y down, z away, z > 0), in the
        ``muco21`` order; P >= 0 (P = 0 writes an image without annotations).
      f: (fx, fy) pixels. c: (cx, cy) pixels; None for the image centre (width / 2, height / 2).
      width, height: pixels of the image written (and stated in ``images``).
      image_id: the ``images`` id; None for the next free one (see :func:`muco_json`).
      file_name: relative to ROOT; None for ``augmented_set/<image_id as 6 digits>.jpg``.
      keypoints_img: (P, 21, 2) pixels to write instead of the projection (e.g. to test consistency checks);
        None to project ``poses_mm`` through ``f``, ``c``.
      pixels: (height, width, 3) uint8 BGR content; None for a plain grey image.
      write_image: False to leave the image file out (a missing image).
    """

    poses_mm: Any
    f: Sequence[float] = DEFAULT_FOCAL
    c: Optional[Sequence[float]] = None
    width: int = DEFAULT_SIZE[0]
    height: int = DEFAULT_SIZE[1]
    image_id: Optional[int] = None
    file_name: Optional[str] = None
    keypoints_img: Optional[Any] = None
    pixels: Optional[np.ndarray] = None
    write_image: bool = True

    @property
    def principal_point(self) -> Tuple[float, float]:
        """(cx, cy) pixels, ``c`` or the image centre."""
        if self.c is None:
            return self.width / 2.0, self.height / 2.0
        return float(self.c[0]), float(self.c[1])

    @property
    def intrinsics(self) -> np.ndarray:
        """(4,) float64 fx, fy, cx, cy pixels."""
        return np.array([float(self.f[0]), float(self.f[1]), *self.principal_point])

    def poses(self) -> np.ndarray:
        """(P, 21, 3) float64 millimetres; ValueError for another shape."""
        poses = np.asarray(self.poses_mm, np.float64)
        if poses.size == 0:  # [] or np.zeros(0): an image without people
            poses = poses.reshape(0, NUM_JOINTS, 3)
        if poses.ndim != 3 or poses.shape[1:] != (NUM_JOINTS, 3):
            raise ValueError(f"poses_mm must be (P, {NUM_JOINTS}, 3), got {poses.shape}")
        return poses

    def keypoints(self) -> np.ndarray:
        """(P, 21, 2) float64 pixels: ``keypoints_img`` when given, else the projection of the poses."""
        if self.keypoints_img is not None:
            return np.asarray(self.keypoints_img, np.float64).reshape(-1, NUM_JOINTS, 2)
        return project(self.poses(), self.f, self.principal_point)


ImageSpec = Union[MucoImage, np.ndarray, Sequence]


def _as_image(spec: ImageSpec) -> MucoImage:
    return spec if isinstance(spec, MucoImage) else MucoImage(poses_mm=spec)


@dataclasses.dataclass
class MucoTree:
    """What :func:`write_muco_tree` wrote.

    Attributes:
      root: ROOT. annotation_path: ROOT/MuCo-3DHP.json (or the name given).
      data: the JSON object written (edit it and rewrite it with :func:`write_annotation_file`).
      images: the :class:`MucoImage` specs with ``image_id`` and ``file_name`` filled in, in file order.
      image_paths: image id -> absolute path of its image file (also for images not written).
      annotation_ids: image id -> the ids of its annotations, in file order (person order).
    """

    root: str
    annotation_path: str
    data: Dict[str, Any]
    images: List[MucoImage]
    image_paths: Dict[int, str]
    annotation_ids: Dict[int, List[int]]


def muco_json(images: Sequence[ImageSpec], first_image_id: int = 0, first_annotation_id: int = 0
              ) -> Tuple[Dict[str, Any], List[MucoImage]]:
    """The ``MuCo-3DHP.json`` object of ``images`` (no file written).

    Args:
      images: :class:`MucoImage` objects or bare (P, 21, 3) millimetre pose arrays (default camera and size).
      first_image_id: the id of the first image without an explicit ``image_id``; later ones count up
        (skipping ids already taken explicitly).
      first_annotation_id: the id of the first annotation; annotations are numbered in file order.
    Returns:
      (the JSON object, the specs with ``image_id`` and ``file_name`` filled in).
    """
    specs = [dataclasses.replace(_as_image(s)) for s in images]
    taken = {s.image_id for s in specs if s.image_id is not None}
    next_id = first_image_id
    for s in specs:
        if s.image_id is None:
            while next_id in taken:
                next_id += 1
            s.image_id = next_id
            taken.add(next_id)
        if s.file_name is None:
            s.file_name = f"{IMAGE_FOLDERS[0]}/{s.image_id:06d}.jpg"
    image_entries, annotations = [], []
    ann_id = first_annotation_id
    for s in specs:
        fx, fy = (float(v) for v in s.f)
        image_entries.append({"id": int(s.image_id), "file_name": s.file_name, "width": int(s.width),
                              "height": int(s.height), "f": [fx, fy], "c": list(s.principal_point)})
        poses, keypoints = s.poses(), s.keypoints()
        if keypoints.shape[0] != poses.shape[0]:
            raise ValueError(f"image {s.image_id}: {keypoints.shape[0]} keypoints_img for {poses.shape[0]} poses")
        boxes = tight_bbox(keypoints) if poses.shape[0] else np.zeros((0, 4))
        for p in range(poses.shape[0]):
            box = [float(v) for v in boxes[p]]
            annotations.append({"id": ann_id, "image_id": int(s.image_id), "category_id": PERSON_CATEGORY,
                                "iscrowd": 0, "keypoints_cam": poses[p].tolist(),
                                "keypoints_img": keypoints[p].tolist(), "bbox": box, "area": box[2] * box[3]})
            ann_id += 1
    data = {"images": image_entries, "annotations": annotations,
            "categories": [{"id": PERSON_CATEGORY, "name": "person"}]}
    return data, specs


def write_annotation_file(path: str, data: Any) -> str:
    """Writes ``data`` (any JSON value) to ``path`` as JSON; returns ``path``. NaN is written as the
    ``NaN`` token that Python's json module reads back."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)
    return path


def write_image(path: str, width: int, height: int, pixels: Optional[np.ndarray] = None) -> str:
    """Writes a JPEG of ``width`` x ``height`` (``pixels`` (H, W, 3) uint8 BGR, or plain grey)."""
    if pixels is None:
        pixels = np.full((height, width, 3), DEFAULT_GREY, np.uint8)
    pixels = np.asarray(pixels, np.uint8)
    if pixels.shape != (height, width, 3):
        raise ValueError(f"pixels must be ({height}, {width}, 3), got {pixels.shape}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, pixels):
        raise OSError(f"cannot write {path}")
    return path


def write_muco_tree(root: Union[str, os.PathLike], images: Sequence[ImageSpec], *, first_image_id: int = 0,
                    first_annotation_id: int = 0, annotation_file: str = ANNOTATION_FILE) -> MucoTree:
    """Writes ``ROOT/MuCo-3DHP.json`` and the JPEG images of ``images``.

    Args:
      root: ROOT (created if needed).
      images: per image, a :class:`MucoImage` or a bare (P, 21, 3) array of camera-space poses in
        millimetres (``muco21`` order), which gets the default camera (``f`` = :data:`DEFAULT_FOCAL`, ``c`` the
        image centre) and size (:data:`DEFAULT_SIZE`). The 2D (``keypoints_img``) is the projection of the
        poses through ``f``, ``c`` unless a :class:`MucoImage` gives its own; ``bbox`` is the 2D's tight box.
      first_image_id, first_annotation_id: see :func:`muco_json`.
      annotation_file: the JSON file's name in ROOT.
    Returns:
      :class:`MucoTree`.
    """
    root = os.path.abspath(os.fspath(root))
    data, specs = muco_json(images, first_image_id, first_annotation_id)
    path = write_annotation_file(os.path.join(root, annotation_file), data)
    image_paths, annotation_ids = {}, {s.image_id: [] for s in specs}
    for s in specs:
        image_paths[s.image_id] = os.path.join(root, *s.file_name.split("/"))
        if s.write_image:
            write_image(image_paths[s.image_id], s.width, s.height, s.pixels)
    for ann in data["annotations"]:
        annotation_ids[ann["image_id"]].append(ann["id"])
    return MucoTree(root, path, data, specs, image_paths, annotation_ids)


def muco21_from(poses: np.ndarray, skeleton="lcr13") -> np.ndarray:
    """(..., J, 3) poses of ``skeleton`` (any unit; camera or body axes with y down) -> (..., 21, 3) ``muco21``.

    Joints of the same name are copied and those with a rule in
    :data:`lcr_tf.contracts.skeleton.DERIVED_JOINTS` derived (``convert``); the rest are placed plausibly
    for tests: ``head_top`` beyond ``head`` (away from the neck, 0.8 of their distance), a hand beyond
    its wrist (0.4 of the forearm), a toe in front of its ankle (0.3 of the shin, turned forward). A
    joint that can be neither copied nor placed raises ValueError.
    """
    out, mask = skeleton_lib.convert(poses, skeleton, MUCO)
    j = MUCO.index

    def put(name, value):
        missing = ~mask[..., j(name)]
        out[..., j(name), :] = np.where(missing[..., None], value, out[..., j(name), :])
        mask[..., j(name)] |= missing

    put("head_top", out[..., j("head"), :] + 0.8 * (out[..., j("head"), :] - out[..., j("neck"), :]))
    hips = out[..., [j("left_hip"), j("right_hip")], :].mean(-2)
    shoulders = out[..., [j("left_shoulder"), j("right_shoulder")], :].mean(-2)
    for side in ("left", "right"):
        wrist, elbow = out[..., j(f"{side}_wrist"), :], out[..., j(f"{side}_elbow"), :]
        put(f"{side}_hand", wrist + 0.4 * (wrist - elbow))
        ankle, knee = out[..., j(f"{side}_ankle"), :], out[..., j(f"{side}_knee"), :]
        shin = np.linalg.norm(ankle - knee, axis=-1, keepdims=True)
        across = out[..., j("left_hip"), :] - out[..., j("right_hip"), :]
        forward = np.cross(hips - shoulders, across)  # down x left = forward (x right, y down, z away)
        forward /= np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-12)
        put(f"{side}_toe", ankle + 0.3 * shin * forward)
    if not mask.all():
        missing = sorted({MUCO.joint_names[i] for i in np.argwhere(~mask)[:, -1]})
        raise ValueError(f"muco21_from({skeleton!r}): cannot place {', '.join(missing)}")
    return out
