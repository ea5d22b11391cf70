"""The MuPoTS-3D tree and predictions of ``benchmarks/official_mupots.py``: twenty sequences in the dataset's
own layout (``TS<s>/annot.mat``, ``occlusion.mat``, ``img_%06d.jpg``), one case per sequence, and an
LCR-13 predictions file whose official outcome is known by construction (:func:`expected`).

Every person's 2D is the projection of its 3D through one camera, ``univ_annot3`` is ``annot3`` shrunk by
0.95 about the pelvis, and the neck, pelvis and spine are the mid-shoulder, mid-hip and body centre, so
that LCR-13 detections convert to MuPoTS-3D's joints without error but for the head top (which LCR-13
lacks: NaN in the native files).

One case per sequence (TS9-TS20 repeat TS1 on other poses). "Expected" is the official outcome by
construction, counted on its 14 scored joints: a joint predicted exactly (error < 0.1 mm) passes the
thresholds 5 ... 150 mm of the AUC and fails 0 mm (``error < 0``), so its AUC is 30/31 of its PCK; the
others fail them all.

* TS1 exact: every joint as annotated; the head top is NaN, so 13/14 = 92.9 %.
* TS2 scaled: 3D 1.15 times too large about the pelvis; the script rescales each bone to the annotation's
  length, so 92.9 % as TS1 (the errors left are only those of the root, none here).
* TS3 missed + false positive: person 2 has no detection; a false positive carrying person 2's 3D stands
  1.2 m to the left of person 1, no joint within 40 px of person 2, so the script leaves person 2 missed
  (all: 13/28 = 46.4 %; matched: 92.9 %); a matching without a gate pairs them.
* TS4 two people 30 px apart: person 2 is person 1 shifted 30 px with the arms raised instead of hanging.
  Person 1's own detection has its elbows, wrists and right knee 45 px off, so the script (annotation order,
  most joints within 40 px on both axes) gives person 1 the detection of person 2 (9 joints against 8) and
  person 2 the other one; the arms then miss on both: 9/14 = 64.3 %. The minimum-mean-distance assignment
  pairs them the other way, exactly.
* TS5 no detections: frame 1 has none (D = 0): its two people are missed (all: 52/84 = 61.9 %).
* TS6 NaN / occluded: person 1 has no 2D for the left wrist (its 3D is there) and occluded right arm
  joints; person 2 has no 3D for the left elbow: the script scores the NaN elbow and the wrist below it as
  misses (11/14), 13/14 for person 1, 85.7 % together. Occlusion only changes the visible / occluded
  tables.
* TS7 invalid people: ``isValidFrame`` 0 for person 2 in frame 0 (a detection stands exactly on it) and for
  both people in frame 1 (no detections): invalid people are not scored, 92.9 %.
* TS8 the 40 px gate: detections exact in 3D, 2D shifted 35 px (person 1, matched) and 45 px (person 2,
  missed) to the right: all 46.4 %, matched 92.9 %.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets import mupots
from lcr_tf.evaluation import predictions_file
from lcr_tf.poses import body_model

MU = skeleton_lib.MUPOTS17
LCR = skeleton_lib.LCR13
LCR_IN_MU = MU.indices(LCR.joint_names)          # LCR-13's joints within mupots17
SIZE_PX = 512                                     # square frames
CAMERA = np.array([500.0, 500.0, 256.0, 256.0])   # fx, fy, cx, cy
DEPTH_M = 4.5
UNIV_SCALE = 0.95
ROWS = ("ppi", "nms")
SCORED_JOINTS = 14                                # the official joint groups: mupots17 joints 1-14
AUC_OF_EXACT = 30.0 / 31.0                        # thresholds 0:5:150 mm, an exact joint fails 0 mm

@dataclasses.dataclass
class Person:
    """One annotated person of one frame. ``camera_mm`` (17, 3) is the clean pose; ``nan2d`` / ``nan3d``
    name joints written as NaN in ``annot2`` / in ``annot3`` and ``univ_annot3``; ``expect``: how many of
    the 14 scored joints the official script must count correct, None when it must leave the person
    missed (not used for invalid people, which it skips)."""

    camera_mm: np.ndarray
    expect: Optional[int] = SCORED_JOINTS - 1
    valid: bool = True
    nan2d: Tuple[str, ...] = ()
    nan3d: Tuple[str, ...] = ()
    occluded: Tuple[str, ...] = ()

    @property
    def clean2d(self) -> np.ndarray:
        return project(self.camera_mm)

    @property
    def clean_univ(self) -> np.ndarray:
        pelvis = self.camera_mm[MU.index("pelvis")]
        return pelvis + UNIV_SCALE * (self.camera_mm - pelvis)

    def annot_cell(self) -> Dict[str, np.ndarray]:
        """The person's struct as MATLAB stores it: 2x17 / 3x17 doubles and a scalar flag."""
        a2, a3, u3 = self.clean2d.copy(), self.camera_mm.copy(), self.clean_univ.copy()
        a2[MU.indices(self.nan2d)] = np.nan
        a3[MU.indices(self.nan3d)] = np.nan
        u3[MU.indices(self.nan3d)] = np.nan
        return {"annot2": a2.T.copy(), "annot3": a3.T.copy(), "univ_annot3": u3.T.copy(),
                "isValidFrame": np.array([[1.0 if self.valid else 0.0]])}

    def occlusion_cell(self) -> np.ndarray:
        flags = np.zeros((1, MU.num_joints))
        flags[0, MU.indices(self.occluded)] = 1.0
        return flags


@dataclasses.dataclass
class Detection:
    """One detection as the predictions file holds it: LCR-13, (13, 2) px, (13, 3) m body-centred."""

    pose2d: np.ndarray
    pose3d: np.ndarray
    score: float = 0.9


@dataclasses.dataclass
class Frame:
    people: List[Person]
    detections: Optional[List[Detection]]   # None: the frame has no valid person, nothing is evaluated


@dataclasses.dataclass
class Case:
    name: str
    frames: List[Frame]


def project(points_mm: np.ndarray) -> np.ndarray:
    fx, fy, cx, cy = CAMERA
    return np.stack([fx * points_mm[..., 0] / points_mm[..., 2] + cx,
                     fy * points_mm[..., 1] / points_mm[..., 2] + cy], -1)


def to_mupots17(lcr_m: np.ndarray) -> np.ndarray:
    """(13, 3) LCR-13 metres -> (17, 3) mupots17 metres whose neck / pelvis / spine are what LCR-13 converts
    to (mid-shoulder, mid-hip, body centre) and whose head top is 10 cm beyond the head, away from the neck."""
    out = np.zeros((MU.num_joints, 3))
    out[LCR_IN_MU] = lcr_m
    hips = lcr_m[LCR.indices(["left_hip", "right_hip"])].mean(0)
    shoulders = lcr_m[LCR.indices(["left_shoulder", "right_shoulder"])].mean(0)
    head = lcr_m[LCR.index("head")]
    out[MU.index("pelvis")], out[MU.index("neck")], out[MU.index("spine")] = hips, shoulders, (hips + shoulders) / 2
    up = head - shoulders
    out[MU.index("head_top")] = head + 0.1 * up / np.linalg.norm(up)
    return out


def bodies(num: int, seed: int, families=None) -> np.ndarray:
    """(num, 13, 3) body-centred LCR-13 poses in metres from the package's body model."""
    return body_model.sample_poses(num, seed=seed, families=families).poses3d.astype(np.float64)


def place(lcr_m: np.ndarray, x_m: float, **flags) -> Person:
    """A person whose body centre is at (x_m, 0, DEPTH_M) metres in the camera."""
    return Person((to_mupots17(lcr_m) + [x_m, 0.0, DEPTH_M]) * 1000.0, **flags)


def exact(person: Person) -> Detection:
    """The detection that is the annotation: its 2D (the reader's pixel convention) and its univ_annot3."""
    pose2d = person.clean2d[LCR_IN_MU] + mupots.PIXEL_OFFSET
    return Detection(pose2d, skeleton_lib.centre_poses(person.clean_univ[LCR_IN_MU] / 1000.0))


def scaled(person: Person, factor: float) -> Detection:
    """The exact detection with its 3D ``factor`` times larger about the pelvis."""
    pelvis = person.clean_univ[MU.index("pelvis")]
    big = pelvis + factor * (person.clean_univ - pelvis)
    return Detection(exact(person).pose2d, skeleton_lib.centre_poses(big[LCR_IN_MU] / 1000.0))


def shifted(det: Detection, dx_px: float, joints: Sequence[str] = LCR.joint_names) -> Detection:
    pose2d = det.pose2d.copy()
    pose2d[LCR.indices(joints), 0] += dx_px
    return Detection(pose2d, det.pose3d, det.score)


def pairs(seed: int, frames: int, families=None) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Two body-model poses per frame."""
    poses = bodies(2 * frames, seed, families)
    return [(poses[2 * f], poses[2 * f + 1]) for f in range(frames)]


def case_exact(seed: int, num_frames: int = 3) -> Case:
    frames = []
    for a, b in pairs(seed, num_frames):
        people = [place(a, -0.6), place(b, 0.6)]
        frames.append(Frame(people, [exact(p) for p in people]))
    return Case("exact", frames)


def case_scaled(seed: int) -> Case:
    frames = []
    for a, b in pairs(seed, 3):
        people = [place(a, -0.6), place(b, 0.6)]
        frames.append(Frame(people, [scaled(p, 1.15) for p in people]))
    return Case("scaled x1.15", frames)


def case_missed_false_positive(seed: int) -> Case:
    frames = []
    for a, b in pairs(seed, 3):
        one, two = place(a, -0.6), place(b, 0.6, expect=None)
        ghost = place(b, -1.8)                    # person 2's pose where nobody stands
        frames.append(Frame([one, two], [exact(one), Detection(exact(ghost).pose2d, exact(two).pose3d, 0.8)]))
    return Case("missed + false pos.", frames)


def arms(lcr_m: np.ndarray, direction: float) -> np.ndarray:
    """The pose with both arms straight along the camera's y axis (+1 hanging, -1 raised), bones kept."""
    out = lcr_m.copy()
    for side in ("left_", "right_"):
        s, e, w = LCR.indices([side + "shoulder", side + "elbow", side + "wrist"])
        upper, fore = np.linalg.norm(lcr_m[e] - lcr_m[s]), np.linalg.norm(lcr_m[w] - lcr_m[e])
        out[e] = out[s] + [0.0, direction * upper, 0.0]
        out[w] = out[e] + [0.0, direction * fore, 0.0]
    return out


def case_crossed(seed: int) -> Case:
    frames = []
    gap_m = 30.0 * DEPTH_M / CAMERA[0]            # 30 px at the body centre's depth
    off = ["left_elbow", "right_elbow", "left_wrist", "right_wrist", "right_knee"]
    for a, _ in pairs(seed, 3, families="standing"):
        one = place(arms(a, 1.0), -0.15, expect=9)
        two = place(arms(a, -1.0), -0.15 + gap_m, expect=9)
        frames.append(Frame([one, two], [shifted(exact(one), 45.0, off), exact(two)]))
    return Case("two people 30 px", frames)


def case_no_detections(seed: int) -> Case:
    frames = []
    for f, (a, b) in enumerate(pairs(seed, 3)):
        hit = None if f == 1 else SCORED_JOINTS - 1
        people = [place(a, -0.6, expect=hit), place(b, 0.6, expect=hit)]
        frames.append(Frame(people, [] if f == 1 else [exact(p) for p in people]))
    return Case("frame without dets", frames)


def case_nan_occluded(seed: int) -> Case:
    frames = []
    for a, b in pairs(seed, 3):
        people = [place(a, -0.6, nan2d=("left_wrist",), occluded=("right_elbow", "right_wrist")),
                  place(b, 0.6, expect=11, nan3d=("left_elbow",), occluded=("left_knee",))]
        frames.append(Frame(people, [exact(p) for p in people]))
    return Case("NaN / occluded", frames)


def case_invalid(seed: int) -> Case:
    (a0, b0), (a1, b1), (a2, b2) = pairs(seed, 3)
    one, hidden = place(a0, -0.6), place(b0, 0.6, valid=False)
    last = [place(a2, -0.6), place(b2, 0.6)]
    return Case("invalid people", [
        Frame([one, hidden], [exact(hidden), exact(one)]),          # a detection right on the invalid person
        Frame([place(a1, -0.6, valid=False), place(b1, 0.6, valid=False)], None),
        Frame(last, [exact(p) for p in last])])


def case_gate(seed: int) -> Case:
    frames = []
    for a, b in pairs(seed, 3):
        one, two = place(a, -0.6), place(b, 0.6, expect=None)
        frames.append(Frame([one, two], [shifted(exact(one), 35.0), shifted(exact(two), 45.0)]))
    return Case("2D off 35 / 45 px", frames)


def build_cases() -> Dict[int, Case]:
    """Sequence number -> case (module docstring)."""
    cases = {1: case_exact(1), 2: case_scaled(2), 3: case_missed_false_positive(3), 4: case_crossed(4),
             5: case_no_detections(5), 6: case_nan_occluded(6), 7: case_invalid(7), 8: case_gate(8)}
    for s in range(9, 21):
        cases[s] = case_exact(100 + s, num_frames=2)
    return cases


def save_cells(path: str, variable: str, cells: List[List[object]]) -> None:
    import scipy.io
    arr = np.empty((len(cells), len(cells[0])), dtype=object)
    for f, row in enumerate(cells):
        for p, value in enumerate(row):
            arr[f, p] = value
    scipy.io.savemat(path, {variable: arr})


def write_tree(root: str, cases: Dict[int, Case]) -> None:
    """ROOT/TS<s>/annot.mat, occlusion.mat and img_%06d.jpg for every case."""
    from PIL import Image
    grey = Image.new("RGB", (SIZE_PX, SIZE_PX), (120, 120, 120))
    for s, case in cases.items():
        folder = os.path.join(root, f"TS{s}")
        os.makedirs(folder, exist_ok=True)
        save_cells(os.path.join(folder, mupots.ANNOT_FILE), mupots.ANNOT_VARIABLE,
                   [[p.annot_cell() for p in frame.people] for frame in case.frames])
        save_cells(os.path.join(folder, mupots.OCCLUSION_FILE), mupots.OCCLUSION_VARIABLE,
                   [[p.occlusion_cell() for p in frame.people] for frame in case.frames])
        for f in range(len(case.frames)):
            grey.save(os.path.join(folder, f"img_{f:06d}.jpg"), quality=90)


def write_predictions(path: str, cases: Dict[int, Case]) -> int:
    """The predictions file (rows ppi and nms identical); returns the number of frames in it."""
    images = {}
    for s, case in cases.items():
        for f, frame in enumerate(case.frames):
            if frame.detections is None:
                continue
            dets = frame.detections
            people = predictions_file.as_people([d.score for d in dets],
                                                np.array([d.pose2d for d in dets]).reshape(-1, LCR.num_joints, 2),
                                                np.array([d.pose3d for d in dets]).reshape(-1, LCR.num_joints, 3))
            images[mupots.MupotsReader.image_id((s, f))] = {row: people for row in ROWS}
    predictions_file.write_predictions(path, images, dataset="mupots")
    return len(images)


def expected(case: Case) -> Dict[str, float]:
    """The official PCK / AUC (%) of a case by construction (module docstring)."""
    scored = [p.expect for frame in case.frames for p in frame.people if p.valid]
    matched = [e for e in scored if e is not None]
    out = {}
    for mode, counts in (("all", [e or 0 for e in scored]), ("matched", matched)):
        pck = 100.0 * sum(counts) / (SCORED_JOINTS * len(counts)) if counts else math.nan
        out["pck_" + mode], out["auc_" + mode] = pck, pck * AUC_OF_EXACT
    return out
