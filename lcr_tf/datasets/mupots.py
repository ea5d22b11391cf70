r"""MuPoTS-3D reader: the multi-person 3D test set, its ``annot.mat`` / ``occlusion.mat`` and frames.

Expected layout of ``--input`` (ROOT), as ``MultiPersonTestSet.zip`` extracts::

    ROOT/TS1/annot.mat          variable ``annotations``
    ROOT/TS1/occlusion.mat      variable ``occlusion_labels`` (optional)
    ROOT/TS1/img_000000.jpg     frame 0 (0-based), img_000001.jpg, ...
    ROOT/TS2/ ... ROOT/TS20/

``annotations`` is a MATLAB cell array, frames x people, of structs with the fields

* ``annot2``: 2 x 17 pixels (x right, y down, origin top-left),
* ``annot3``: 3 x 17 millimetres in the camera's coordinates (x right, y down, z away),
* ``univ_annot3``: 3 x 17 millimetres, the same pose rescaled to the universal skeleton (evaluation),
* ``isValidFrame``: scalar, 0 where the person's annotation in that frame is not valid.

``occlusion_labels`` is a cell array of the same frames x people, each cell 17 flags (1 = occluded). Joints
are in the order of ``lcr_tf.contracts.skeleton`` ``mupots17`` (head_top, neck, right shoulder/elbow/wrist, left
shoulder/elbow/wrist, right hip/knee/ankle, left hip/knee/ankle, pelvis, spine, head). A cell that is an
empty array holds no person and is skipped.

Per person: ``pose2d`` = ``annot2`` (annotated where finite), ``visible`` = annotated, inside the image
(its size read from the frame's header) and, when ``occlusion.mat`` is there, not occluded; ``pose3d`` =
``annot3`` in metres, body-centred (:func:`lcr_tf.contracts.skeleton.centre_poses`); ``extras``: ``centre_camera``
(3,) metres (the body centre in camera coordinates: the absolute pose is ``pose3d + centre_camera``),
``pelvis_camera`` (3,), ``univ_pose3d_camera`` (17, 3) metres (``univ_annot3`` as given, camera
coordinates), ``occluded`` (17,) bool or None, ``valid`` (bool). Person ids are ``TS<s>_p<column>``
(1-based column of the cell array).

People whose ``isValidFrame`` is 0 are left out of the record (their 3D is unreliable and MuPoTS's
evaluation skips them); ``metadata["invalid_people"]`` lists them, and ``keep_invalid=True`` keeps them
(``extras["valid"]`` False). A frame with no valid person is rejected with that reason.

Camera intrinsics: the files give none, but every person's 2D is the projection of its 3D, so fx, fy, cx,
cy of a sequence are fitted by least squares on all valid, finite annotations of the sequence
(``x = fx X / Z + cx``, ``y = fy Y / Z + cy``; :func:`fit_intrinsics`), once per sequence, and set on every
record of the sequence; ``metadata["intrinsics_rms_px"]`` is the fit's residual.

Coordinates. ``annot2`` is the projection of ``annot3`` through the sequence's camera (continuous values, not
clicked MATLAB pixel indices), and the files state no pixel-centre rule for its principal point: the reader
takes it as continuous pixels (:data:`PIXEL_OFFSET`, 0). The offset is added before the intrinsics are
fitted, so that cx, cy always follow the 2D.

``split`` is ``all`` (the dataset is a test set); ``sequences`` (e.g. ``1,2,5``) reads a subset. Keys are
``(sequence, frame)``. Rejected, with the file and field named (MATLAB's 1-based indices): a cell that is
not a struct, lacks a field, or has a field of the wrong shape (the whole frame is rejected, so that no
ground-truth person of it goes missing); an ``occlusion.mat`` whose shape disagrees with ``annot.mat``.
A sequence whose ``annot.mat`` is missing or unreadable is listed as one key with frame -1, rejected with
the reason. A missing frame image is rejected by the job (``image_missing``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets.base import (
    DatasetReader,
    ImageRecord,
    Person,
    RecordError,
    file_exists,
    join_path,
    load_mat,
    open_file,
)

SKELETON = skeleton_lib.MUPOTS17
J = SKELETON.num_joints
NUM_SEQUENCES = 20
ANNOT_FILE = "annot.mat"
ANNOT_VARIABLE = "annotations"
OCCLUSION_FILE = "occlusion.mat"
OCCLUSION_VARIABLE = "occlusion_labels"
IMAGE_PATTERN = "TS{sequence}/img_{frame:06d}.jpg"
_FIELDS = (("annot2", 2), ("annot3", 3), ("univ_annot3", 3))
# Added to annot2's x and y (and so to the fitted cx, cy): 0, as annot2 is a pinhole projection of annot3
# (continuous coordinates in the frame of the camera's principal point), not a MATLAB pixel index.
PIXEL_OFFSET = 0.0


def fit_intrinsics(points3d: np.ndarray, points2d: np.ndarray) -> Tuple[np.ndarray, float]:
    """Least-squares pinhole intrinsics from 3D points and their projections.

    Args:
      points3d: (N, 3) camera coordinates (any unit), z > 0.
      points2d: (N, 2) pixels.
    Returns:
      ((4,) float64 fx, fy, cx, cy; RMS residual in pixels over both axes).
    Raises:
      ValueError: fewer than two points, or all points on one line of sight per axis (singular fit).
    """
    points3d = np.asarray(points3d, np.float64).reshape(-1, 3)
    points2d = np.asarray(points2d, np.float64).reshape(-1, 2)
    if points3d.shape[0] < 2:
        raise ValueError(f"{points3d.shape[0]} point(s): at least 2 are needed to fit intrinsics")
    ratio = points3d[:, :2] / points3d[:, 2:3]                          # (N, 2) X/Z, Y/Z
    params, residuals = np.zeros(4), []
    for axis in (0, 1):  # two independent 2-parameter fits
        design = np.stack([ratio[:, axis], np.ones(ratio.shape[0])], -1)
        if np.linalg.matrix_rank(design) < 2:
            raise ValueError("the points do not spread across the image: intrinsics are not determined")
        (f, c), *_ = np.linalg.lstsq(design, points2d[:, axis], rcond=None)
        params[axis], params[2 + axis] = f, c
        residuals.append(points2d[:, axis] - design @ np.array([f, c]))
    return params, float(np.sqrt(np.mean(np.square(residuals))))


@dataclasses.dataclass
class Sequence:
    """One parsed sequence (F frames, P people columns).

    Attributes:
      annot2: (F, P, 17, 2) pixels; annot3, univ3: (F, P, 17, 3) millimetres; NaN where absent.
      present: (F, P) bool, the cell holds a person; valid: (F, P) bool, ``isValidFrame`` nonzero.
      occluded: (F, P, 17) bool, or None without ``occlusion.mat``.
      frame_errors: {frame: reason} for frames with a broken cell.
      intrinsics: (4,) fx, fy, cx, cy or None; intrinsics_rms: the fit's residual (pixels) or None;
      intrinsics_error: why there are none.
    """

    annot2: np.ndarray
    annot3: np.ndarray
    univ3: np.ndarray
    present: np.ndarray
    valid: np.ndarray
    occluded: Optional[np.ndarray]
    frame_errors: Dict[int, str]
    intrinsics: Optional[np.ndarray]
    intrinsics_rms: Optional[float]
    intrinsics_error: Optional[str]

    @property
    def num_frames(self) -> int:
        return self.annot2.shape[0]


def _cells(value: Any, file: str, variable: str) -> np.ndarray:
    """A MATLAB cell array (object ndarray) or struct array as loaded by scipy, as a 2D array of cells."""
    if (not isinstance(value, np.ndarray) or value.ndim != 2
            or (value.dtype != object and value.dtype.names is None)):
        raise ValueError(f"{file}: {variable} is not a cell or struct array (got {type(value).__name__} "
                         f"{getattr(value, 'dtype', '')} {np.shape(value)})")
    return value


def _struct_field(cell: Any, field: str):
    """``cell.field`` of a 1x1 struct (a structured ndarray as scipy loads it) or a numpy void."""
    if isinstance(cell, np.ndarray) and cell.dtype.names is not None:
        if cell.size != 1:
            raise ValueError(f"is a {'x'.join(map(str, cell.shape))} struct array, expected 1x1")
        cell = cell.reshape(-1)[0]
    if isinstance(cell, np.void) and cell.dtype.names is not None:
        if field not in cell.dtype.names:
            raise KeyError(field)
        return cell[field]
    raise TypeError(type(cell).__name__)


def parse_annotations(annotations: np.ndarray, occlusion: Optional[np.ndarray], file: str,
                      occlusion_file: str = OCCLUSION_FILE) -> Sequence:
    """Parses ``annotations`` (and ``occlusion_labels``) as loaded by ``scipy.io.loadmat``.

    Args:
      annotations: (F, P) object array of 1x1 structs (a cell array), or an (F, P) struct array.
      occlusion: (F, P) object array of 17-flag arrays, or None.
      file, occlusion_file: names used in error messages (e.g. ``TS3/annot.mat``).
    Returns:
      :class:`Sequence` (intrinsics fitted).
    Raises:
      ValueError: ``annotations`` is not a 2D cell/struct array, or ``occlusion`` disagrees in shape.
    """
    cells = _cells(annotations, file, ANNOT_VARIABLE)
    f_count, p_count = cells.shape
    arrays = {name: np.full((f_count, p_count, J, d), np.nan) for name, d in _FIELDS}
    present = np.zeros((f_count, p_count), bool)
    valid = np.zeros((f_count, p_count), bool)
    frame_errors: Dict[int, str] = {}
    # MATLAB cells are Python objects: one visit per cell, once per sequence (not per image).
    for f in range(f_count):
        for p in range(p_count):
            cell = cells[f, p]
            where = f"{file}: {ANNOT_VARIABLE}{{{f + 1},{p + 1}}}"
            if isinstance(cell, np.ndarray) and cell.dtype.names is None and cell.size == 0:
                continue  # an empty cell: no person
            try:
                for name, d in _FIELDS:
                    value = np.asarray(_struct_field(cell, name), np.float64)
                    if value.shape != (d, J):
                        raise ValueError(f"{where}.{name} has shape {value.shape}, expected ({d}, {J})")
                    arrays[name][f, p] = value.T
                flag = np.asarray(_struct_field(cell, "isValidFrame"), np.float64)
                if flag.size != 1:
                    raise ValueError(f"{where}.isValidFrame has shape {flag.shape}, expected a scalar")
            except KeyError as e:
                frame_errors.setdefault(f, f"{where} has no field {e.args[0]!r}")
                continue
            except TypeError as e:
                frame_errors.setdefault(f, f"{where} is a {e.args[0]}, expected a struct")
                continue
            except ValueError as e:
                message = str(e)
                frame_errors.setdefault(f, message if message.startswith(file) else f"{where} {message}")
                continue
            present[f, p] = True
            valid[f, p] = bool(flag.reshape(-1)[0])
    occluded = None
    if occlusion is not None:
        occ_cells = _cells(occlusion, occlusion_file, OCCLUSION_VARIABLE)
        if occ_cells.shape != cells.shape:
            raise ValueError(f"{occlusion_file}: {OCCLUSION_VARIABLE} is {occ_cells.shape[0]}x{occ_cells.shape[1]}, "
                             f"{file} {ANNOT_VARIABLE} is {f_count}x{p_count}")
        occluded = np.zeros((f_count, p_count, J), bool)
        for f in range(f_count):
            for p in range(p_count):
                if not present[f, p]:
                    continue
                flags = np.asarray(occ_cells[f, p])
                if flags.size != J or flags.dtype == object:
                    frame_errors.setdefault(f, f"{occlusion_file}: {OCCLUSION_VARIABLE}{{{f + 1},{p + 1}}} has "
                                               f"shape {flags.shape}, expected 17 flags")
                    continue
                occluded[f, p] = flags.reshape(-1).astype(np.float64) != 0
    arrays["annot2"] += PIXEL_OFFSET
    # Intrinsics from every usable (valid, finite, in front of the camera) joint of the sequence.
    usable = (valid[..., None] & np.all(np.isfinite(arrays["annot2"]), -1)
              & np.all(np.isfinite(arrays["annot3"]), -1))
    usable &= np.where(usable, arrays["annot3"][..., 2], 0.0) > 0
    for f in frame_errors:
        usable[f] = False
    try:
        intrinsics, rms = fit_intrinsics(arrays["annot3"][usable], arrays["annot2"][usable])
        error = None
    except ValueError as e:
        intrinsics, rms, error = None, None, f"{file}: no intrinsics: {e}"
    return Sequence(arrays["annot2"], arrays["annot3"], arrays["univ_annot3"], present, valid, occluded,
                    frame_errors, intrinsics, rms, error)


def load_sequence(folder: str, name: str) -> Sequence:
    """Loads and parses ``folder/annot.mat`` (and ``occlusion.mat`` when present).

    Args:
      folder: the ``TS<s>`` folder; name: its name in messages (``TS3``).
    Raises:
      ValueError: a missing or unreadable file or variable (message names it).
    """
    annot_path = join_path(folder, ANNOT_FILE)
    file = f"{name}/{ANNOT_FILE}"
    if not file_exists(annot_path):
        raise ValueError(f"{file} does not exist")
    annotations = _load_variable(annot_path, ANNOT_VARIABLE, file)
    occlusion = None
    occ_path = join_path(folder, OCCLUSION_FILE)
    if file_exists(occ_path):
        occlusion = _load_variable(occ_path, OCCLUSION_VARIABLE, f"{name}/{OCCLUSION_FILE}")
    return parse_annotations(annotations, occlusion, file, f"{name}/{OCCLUSION_FILE}")


def _load_variable(path: str, variable: str, file: str) -> np.ndarray:
    try:
        data = load_mat(path, "MuPoTS annotation file", name=file, variable_names=[variable])
    except OSError as e:  # the reader's callers take a ValueError as a bad sequence
        raise ValueError(str(e)) from None
    if variable not in data:
        raise ValueError(f"{file}: has no variable {variable!r}")
    return data[variable]


def image_size(path: str) -> Optional[Tuple[int, int]]:
    """(width, height) pixels of an image file from its header, or None when it cannot be read."""
    from PIL import Image
    try:
        with open_file(path, "rb", "image file") as f, Image.open(f) as image:
            return int(image.size[0]), int(image.size[1])
    except Exception:  # the job reports a missing or broken image itself
        return None


def parse_sequences(text: str) -> Tuple[int, ...]:
    """``"1,2,5"`` -> (1, 2, 5); ``""`` -> all of 1..20. ValueError names a bad entry."""
    if not str(text).strip():
        return tuple(range(1, NUM_SEQUENCES + 1))
    out = []
    for part in str(text).split(","):
        part = part.strip().upper().removeprefix("TS")
        if not part.isdigit() or not 1 <= int(part) <= NUM_SEQUENCES:
            raise ValueError(f"mupots: sequences must be numbers in 1..{NUM_SEQUENCES} separated by commas, "
                             f"got {text!r}")
        out.append(int(part))
    return tuple(sorted(set(out)))


class MupotsReader(DatasetReader):
    """MuPoTS-3D frames with every person's 2D and 3D pose.

    Args:
      input: ROOT, the folder holding ``TS1`` .. ``TS20`` (local or mounted: ``.mat`` files are read with
        scipy; frames through Beam's file systems).
      split: ``all`` (the only one).
      sequences: comma-separated sequence numbers (``1,2,5`` or ``TS1,TS2``); empty for all 20.
      keep_invalid: keep people whose ``isValidFrame`` is 0 (``extras["valid"]`` False).
    """

    name = "mupots"
    skeleton = SKELETON.name

    def __init__(self, input: str, split: str = "all", sequences: str = "", keep_invalid: bool = False):
        super().__init__()
        if split != "all":
            raise ValueError(f"mupots: split must be 'all' (MuPoTS-3D is a test set), got {split!r}")
        self.input = str(input)
        self.split = split
        self.sequences = parse_sequences(sequences)
        self.keep_invalid = bool(keep_invalid)

    def list_items(self) -> List[Tuple[int, int]]:
        import scipy.io
        if not os.path.isdir(self.input):
            raise ValueError(f"mupots: --input {self.input} is not a folder")
        if not any(os.path.isdir(self._folder(s)) for s in self.sequences):
            raise ValueError(f"mupots: --input {self.input} holds none of the folders "
                             f"{', '.join(f'TS{s}' for s in self.sequences)}")
        keys = []
        for s in self.sequences:
            path = os.path.join(self._folder(s), ANNOT_FILE)
            try:
                shapes = dict((n, shape) for n, shape, _ in scipy.io.whosmat(path))
                num_frames = int(shapes[ANNOT_VARIABLE][0])
            except Exception:  # the reason is found again, and reported, when the key is read
                keys.append((s, -1))
                continue
            keys.extend((s, f) for f in range(num_frames))
        return keys

    def _folder(self, sequence: int) -> str:
        return os.path.join(self.input, f"TS{sequence}")

    def sequence(self, sequence: int) -> Sequence:
        """The parsed sequence (cached per reader); ValueError when it cannot be read."""
        def build():
            try:
                return load_sequence(self._folder(sequence), f"TS{sequence}")
            except ValueError as e:
                return e
        value = self.cached(f"TS{sequence}", build)
        if isinstance(value, ValueError):
            raise value
        return value

    def key_name(self, key) -> str:
        sequence, frame = key
        return f"TS{sequence}" if frame < 0 else self.image_id(key)

    @staticmethod
    def image_id(key) -> str:
        """``TS3_000012`` for ``(3, 12)``."""
        sequence, frame = key
        return f"TS{int(sequence)}_{int(frame):06d}"

    def read(self, key) -> ImageRecord:
        s, frame = int(key[0]), int(key[1])
        try:
            seq = self.sequence(s)
        except ValueError as e:
            raise RecordError(key, str(e)) from None
        file = f"TS{s}/{ANNOT_FILE}"
        if frame < 0 or frame >= seq.num_frames:
            raise RecordError(key, f"frame {frame} is not in {file} ({seq.num_frames} frames)")
        if frame in seq.frame_errors:
            raise RecordError(key, seq.frame_errors[frame])
        columns = np.flatnonzero(seq.present[frame])
        invalid = columns[~seq.valid[frame, columns]]
        kept = columns if self.keep_invalid else columns[seq.valid[frame, columns]]
        if kept.size == 0:
            raise RecordError(key, f"{file}: {ANNOT_VARIABLE}{{{frame + 1},:}}.isValidFrame is 0 for every person"
                              if columns.size else f"{file}: {ANNOT_VARIABLE}{{{frame + 1},:}} holds no person")
        path = os.path.join(self.input, IMAGE_PATTERN.format(sequence=s, frame=frame))
        pose2d = seq.annot2[frame, kept]                                      # (Q, 17, 2)
        annotated = np.all(np.isfinite(pose2d), axis=-1)
        visible = annotated.copy()
        size = image_size(path)
        if size is not None:
            with np.errstate(invalid="ignore"):
                visible &= np.all((pose2d >= 0) & (pose2d < np.array(size, np.float64)), axis=-1)
        occluded = None if seq.occluded is None else seq.occluded[frame, kept]
        if occluded is not None:
            visible &= ~occluded
        has_visibility = size is not None or occluded is not None
        camera_m = seq.annot3[frame, kept] / 1000.0                           # (Q, 17, 3)
        centre = skeleton_lib.body_centre(camera_m, SKELETON)[:, 0]
        centred = skeleton_lib.centre_poses(camera_m, SKELETON)
        univ = seq.univ3[frame, kept] / 1000.0
        people = [Person(pose2d=pose2d[q].astype(np.float32), annotated=annotated[q],
                         visible=visible[q] if has_visibility else None,
                         pose3d=centred[q].astype(np.float32), person_id=f"TS{s}_p{c + 1}",
                         extras={"centre_camera": centre[q].astype(np.float32),
                                 "pelvis_camera": camera_m[q, SKELETON.index("pelvis")].astype(np.float32),
                                 "univ_pose3d_camera": univ[q].astype(np.float32),
                                 "occluded": None if occluded is None else occluded[q],
                                 "valid": bool(seq.valid[frame, c])})
                  for q, c in enumerate(kept)]
        return ImageRecord(
            image_id=self.image_id(key), dataset=self.name, skeleton=self.skeleton, people=people,
            image_path=path, intrinsics=None if seq.intrinsics is None else seq.intrinsics.astype(np.float32),
            metadata={"sequence": s, "frame": frame, "split": self.split,
                      "invalid_people": [f"TS{s}_p{c + 1}" for c in invalid],
                      "intrinsics_rms_px": seq.intrinsics_rms,
                      "intrinsics_error": seq.intrinsics_error})
