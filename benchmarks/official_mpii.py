"""The MPII Human Pose evaluation toolkit (evalMPII), run unchanged under GNU Octave on the files of
``python -m lcr_tf.evaluate --dataset=mpii --results_format=native``, beside the package's own figures, on a
small MPII tree whose errors are known by construction.

    python benchmarks/official_mpii.py --toolkit_dir=DIR [--work_dir=DIR] [--octave=octave]

``--toolkit_dir`` is the toolkit's ``eval`` folder: ``evaluatePCKh.m``, ``evaluateAP.m``, ``getExpParams.m``,
``flatten_annolist.m``, ``annolist2matrix.m``, ``assignGTmulti.m``, ``getMultiPersonGroups.m``,
``genTablePCK.m``, ``genTableAP.m`` and the functions they call.

Steps: (1) writes an MPII tree in the release's layout (``ROOT/mpii_human_pose_v1_u12_2/
mpii_human_pose_v1_u12_1.mat`` with ``RELEASE``, grey ``ROOT/images/*.jpg``, one of them missing) and a
``groups_v12.mat`` for it; every image is a training image (``img_train = 1``), read with ``--split=train``.
(2) Writes a predictions file (LCR-13 poses made from the annotation, moved by known amounts) and runs
``lcr_tf.evaluate --dataset=mpii --split=train --results_format=native --mpii_groups=groups_v12.mat``.
(3) For each row (``ppi``, ``nms``: the same detections), sets up the folder the toolkit's scripts expect:
``ground_truth/annolist_dataset_v12.mat`` (``annolist``) and ``ground_truth/mpii_human_pose_v1_u12.mat``
(``RELEASE``), the same annotation with every image marked as a test image (the scripts evaluate
``img_train == 0``), ``groups_v12.mat``, and the two native files; runs ``evaluatePCKh(0, false)`` and
``evaluateAP(0)``. Two harness files stand in for the toolkit's own in a folder ahead of it on the path:
``getExpParams.m``, the experiment's settings the toolkit leaves to its user (its own is a template whose
ground-truth call gives no predictions folder, which ``evaluateAP.m`` needs), and ``plotCurve.m``: Octave
without a graphics toolkit cannot draw ``evaluatePCKh.m``'s curves, so it records each curve's value at the
last threshold (0.5: the total and per-part PCKh, exact) instead. (4) Prints, per row, the figures by construction, the
package's toolkit-style figures (``results[row]["toolkit"]``), the toolkit's (its printed ``genTablePCK.m``
/ ``genTableAP.m`` rows, the exact curve values and ``apAll``) and the package's own LCR-13 figures.

The tree: head boxes 11 x 20 px everywhere (head size 13.70 px, PCKh threshold 6.85 px); people are one
standing template moved about. Detections are the annotation converted to LCR-13 (head = midpoint of
upper neck and head top); the MPII files then carry the upper neck and head top estimated from LCR-13's
head and shoulders, within 0.79 px of the annotation on this template.

* ``exact.jpg``: one single-person person, detected exactly: 14 / 14 toolkit joints.
* ``wrists.jpg``: single-person, both wrists 10 px off (missed), knees 4 px off (kept): 12 / 14.
* ``missed.jpg``: a single-person person without a detection (its rect has objpos, ``annopoints = []``),
  and an annotated person without objpos (flattened by neither side): 0 / 14.
* ``unreadable.jpg``: single-person, its image file missing: kept, no detection, 0 / 14.
* ``group.jpg``: a single-person person detected exactly, and the multi-person group [2, 3]: person 2
  detected exactly (score 0.9), person 3 by a detection with its 6 leg joints 10 px off (score 0.6), and a
  false positive shifted 20 px from person 3 (score 0.95).
* ``two_groups.jpg``: groups [1, 2] and [3] far apart, each person detected exactly (scores 0.85, 0.8,
  0.75), one detection wholly outside the image (not written) and one in the image far from both groups
  (near no group: not in the multi-person file).

Single-person PCKh by construction (5 people, 70 joints): 40 / 70 = 57.1 % in total; every part 3 / 5 =
60 % but the wrist, 2 / 5 = 40 %; UBody (wrists, elbows, shoulders) 16 / 30 = 53.3 %. Multi-person AP
(3 groups, 5 people): the ranking is FP 0.95 (false), 0.9, 0.85, 0.8, 0.75 (true), 0.6 (true on the upper
body, false on the legs), so the upper body and head joints reach recall 1 at precision 5/6 (AP 83.3 %)
and the leg joints recall 0.8 at precision 0.8 (AP 64.0 %); the toolkit's total, the mean over its 14
joints, is 75.05 % (the package's LCR-13 mean, over 13 joints, 74.41 %). Prints ``skipped: ...`` and exits
0 when Octave or the toolkit folder is not there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import scipy.io  # noqa: E402

from lcr_tf.contracts import skeleton as skeleton_lib  # noqa: E402
from lcr_tf.datasets import mpii  # noqa: E402
from lcr_tf.evaluation import mpii_toolkit, native_mpii, predictions_file  # noqa: E402

MPII = skeleton_lib.MPII16
LCR = skeleton_lib.LCR13
ROWS = ("ppi", "nms")
WIDTH, HEIGHT = 640, 320
# A standing person, MPII order (ids 0..15), MATLAB pixels; head box 11 x 20 px around its head.
TEMPLATE = np.array([[40, 110], [42, 88], [44, 66], [56, 66], [58, 88], [60, 110], [50, 66], [50, 35],
                     [50, 30], [50, 14], [34, 66], [36, 50], [40, 35], [60, 35], [64, 50], [66, 66]], np.float64)
HEAD_BOX = (45.0, 10.0, 56.0, 30.0)
OBJPOS = (50.0, 60.0)
SCALE = 0.6
TOOLKIT_FILES = ("evaluatePCKh.m", "evaluateAP.m", "getExpParams.m", "flatten_annolist.m", "annolist2matrix.m",
                 "assignGTmulti.m", "getMultiPersonGroups.m", "genTablePCK.m", "genTableAP.m")
LEGS = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle")
# By construction (module docstring): toolkit parts (genTable*.m columns) and totals, fractions.
EXPECTED_PCKH = {"head": 0.6, "shoulder": 0.6, "elbow": 0.6, "wrist": 0.4, "hip": 0.6, "knee": 0.6, "ankle": 0.6,
                 "ubody": 16 / 30, "total": 40 / 70}
_UPPER_AP, _LEG_AP = 5 / 6, 0.64
EXPECTED_AP = {**{p: (_LEG_AP if p in ("hip", "knee", "ankle") else _UPPER_AP) for p, _ in mpii_toolkit.PARTS},
               "total": (6 * _LEG_AP + 8 * _UPPER_AP) / 14}
# evaluatePCKh.m's curve titles -> the part.
CURVES = {"PCKh total, MPII": "total", "PCKh ankle, MPII": "ankle", "PCKh knee, MPII": "knee",
          "PCKh hip, MPII": "hip", "PCKh wrist, MPII": "wrist", "PCKh elbow, MPII": "elbow",
          "PCKh shoulder, MPII": "shoulder", "PCKh head, MPII": "head"}
# The harness's stand-in for plotCurve.m (Octave here has no graphics toolkit): it records, instead of
# drawing, each curve's value at the last threshold of the range, i.e. PCKh@0.5.
PLOT_STAND_IN = """function plotCurve(pckAll, range, predidxs, titleName, fname, bSave, rangeLabels)
fid = fopen('curves.txt', 'a');
fprintf(fid, '%s\\t%.12f\\n', titleName, pckAll(end, 1));
fclose(fid);
end
"""
# The experiment's settings, which the toolkit leaves to its user (its getExpParams.m is the template, and
# gives no predictions file for the ground truth's call, -1, from which evaluateAP.m takes its output
# folder): ground truth in ./ground_truth, predictions and outputs in the current folder.
RUN_NAME = "lcr_tf"
SETTINGS = """function p = getExpParams(predidx)
p.gtDir = './ground_truth/';
p.name = '%s';
p.predFilename = './predictions.mat';
p.partNames = {%s};
p.colorIdxs = [1 1];
p.colorName = [0 0 1];
end
""" % (RUN_NAME, ", ".join(f"'{n.replace('_', ' ')}'" for n in mpii_toolkit.TOOLKIT_JOINTS + ("mean",)))


# ----------------------------------------------------------------------------------------------- the fixture

def _structs(rows: Sequence[Dict[str, Any]]) -> np.ndarray:
    """A 1 x n MATLAB struct array of dicts; a field missing from a row is [] there."""
    names: List[str] = []
    for row in rows:
        names += [k for k in row if k not in names]
    out = np.empty((1, len(rows)), dtype=[(n, object) for n in names])
    for i, row in enumerate(rows):
        for n in names:
            out[n][0, i] = row.get(n, np.zeros((0, 0)))
    return out


def _cell(values, shape) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    for i, v in enumerate(values):
        out.flat[i] = v
    return out


def _person(dx: float, dy: float = 0.0, objpos: bool = True) -> Dict[str, Any]:
    """An annorect: the template moved by (dx, dy), with its head box, objpos and scale (MATLAB pixels)."""
    pose = TEMPLATE + (dx, dy)
    rect: Dict[str, Any] = dict(zip(("x1", "y1", "x2", "y2"), (HEAD_BOX[0] + dx, HEAD_BOX[1] + dy,
                                                              HEAD_BOX[2] + dx, HEAD_BOX[3] + dy)))
    if objpos:
        rect.update(objpos={"x": OBJPOS[0] + dx, "y": OBJPOS[1] + dy}, scale=SCALE)
    rect["annopoints"] = {"point": _structs([{"id": float(j), "x": float(pose[j, 0]), "y": float(pose[j, 1]),
                                              "is_visible": 1.0} for j in range(16)])}
    return rect


# image -> (annorect shifts (dx, dy, has objpos), single-person annorects, groups)
IMAGES = {
    "exact.jpg": ([(0, 0, True)], [1], [[1]]),
    "wrists.jpg": ([(100, 0, True)], [1], [[1]]),
    "missed.jpg": ([(0, 0, True), (200, 0, False)], [1], [[1]]),
    "unreadable.jpg": ([(300, 0, True)], [1], [[1]]),
    "group.jpg": ([(0, 0, True), (250, 0, True), (320, 0, True)], [1], [[1], [2, 3]]),
    "two_groups.jpg": ([(0, 0, True), (70, 0, True), (450, 0, True)], [], [[1, 2], [3]]),
}


def _annolist() -> np.ndarray:
    rows = []
    for name, (shifts, _, _) in IMAGES.items():
        rows.append({"image": {"name": name}, "annorect": _structs([_person(dx, dy, o) for dx, dy, o in shifts])})
    return _structs(rows)


def _release(img_train: int) -> Dict[str, Any]:
    n = len(IMAGES)
    single = [np.array(s, np.float64).reshape(-1, 1) if s else np.zeros((0, 0)) for _, s, _ in IMAGES.values()]
    return {"annolist": _annolist(), "img_train": np.full((1, n), img_train, np.uint8),
            "single_person": _cell(single, (n, 1)),
            "act": _structs([{"act_name": "", "cat_name": "", "act_id": -1.0}] * n),
            "video_list": _cell(["vid"], (1, 1))}


def groups_variable() -> np.ndarray:
    """groups_v12.mat's layout: (N, 1) cell of (1, k) cells of (n, 1) annorect vectors."""
    return _cell([_cell([np.array(g, np.uint8).reshape(-1, 1) for g in groups], (1, len(groups)))
                  for _, _, groups in IMAGES.values()], (len(IMAGES), 1))


def write_tree(root: str, img_train: int = 1) -> str:
    """The MPII tree (module docstring), its images marked ``img_train``; returns the groups file's path."""
    path = os.path.join(root, mpii.ANNOTATION_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    scipy.io.savemat(path, {"RELEASE": _release(img_train)})
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    for name in IMAGES:
        if name != "unreadable.jpg":
            cv2.imwrite(os.path.join(root, "images", name), np.full((HEIGHT, WIDTH, 3), 90, np.uint8))
    groups = os.path.join(root, "groups_v12.mat")
    scipy.io.savemat(groups, {"groups": groups_variable()})
    return groups


def _lcr(dx: float, dy: float = 0.0) -> np.ndarray:
    """The moved template as an LCR-13 detection in the package's pixels (MATLAB's - 0.5)."""
    pose, given = skeleton_lib.convert(TEMPLATE + (dx, dy) - 0.5, MPII, LCR)
    assert given.all()
    return pose


def _moved(pose: np.ndarray, joints: Sequence[str], dx: float) -> np.ndarray:
    out = pose.copy()
    out[LCR.indices(joints), 0] += dx
    return out


def detections() -> Dict[str, List]:
    """image -> [(score, LCR-13 2D)] (module docstring)."""
    wrists = _moved(_lcr(100), ("left_wrist", "right_wrist"), 10.0)
    wrists[LCR.indices(("left_knee", "right_knee")), 1] += 4.0
    return {
        "exact.jpg": [(1.0, _lcr(0))],
        "wrists.jpg": [(1.0, wrists)],
        "missed.jpg": [],
        "group.jpg": [(1.0, _lcr(0)), (0.9, _lcr(250)), (0.6, _moved(_lcr(320), LEGS, 10.0)),
                      (0.95, _lcr(340, 20))],
        "two_groups.jpg": [(0.85, _lcr(0)), (0.8, _lcr(70)), (0.75, _lcr(450)), (0.5, _lcr(2000)),
                           (0.7, _lcr(250, 200))],
    }


def write_predictions(path: str) -> None:
    images = {}
    for name, dets in detections().items():
        people = predictions_file.as_people([s for s, _ in dets], [p for _, p in dets],
                                            np.zeros((len(dets), LCR.num_joints, 3)))
        images[name] = {row: people for row in ROWS}
    predictions_file.write_predictions(path, images, "mpii")


# ----------------------------------------------------------------------------------------------- the runs

def run_project(root: str, groups: str, work: str, split: str = "train") -> Dict[str, Any]:
    preds = os.path.join(work, "predictions.json")
    write_predictions(preds)
    out = os.path.join(work, f"project_{split}", "results.json")
    cmd = [sys.executable, "-m", "lcr_tf.evaluate", "--dataset=mpii", f"--split={split}", f"--data={root}",
           f"--predictions={preds}", f"--output={out}", "--results_format=native", f"--mpii_groups={groups}"]
    print("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=_REPO, capture_output=True, text=True, timeout=600)
    print(proc.stdout)
    if proc.returncode:
        raise RuntimeError(f"lcr_tf.evaluate failed ({proc.returncode}):\n{proc.stderr}")
    with open(out) as f:
        return json.load(f)


def run_toolkit(toolkit: str, octave: str, results: Dict[str, Any], row: str, groups: str, work: str,
                label: str = "") -> Dict:
    """The toolkit's figures of one row: {"pckh_table": printed row, "pckh": {part: exact}, "ap_table",
    "ap": (15,) exact}."""
    folder = os.path.join(work, f"toolkit_{row}{label}")
    os.makedirs(os.path.join(folder, "ground_truth"), exist_ok=True)
    test = _release(0)                      # the scripts evaluate img_train == 0
    scipy.io.savemat(os.path.join(folder, "ground_truth", "annolist_dataset_v12.mat"), {"annolist": test["annolist"]})
    scipy.io.savemat(os.path.join(folder, "ground_truth", "mpii_human_pose_v1_u12.mat"), {"RELEASE": test})
    shutil.copy(groups, os.path.join(folder, "groups_v12.mat"))
    for name, path in results["results_files"][row].items():
        shutil.copy(path, os.path.join(folder, name))
    harness = os.path.join(folder, "harness")
    os.makedirs(harness, exist_ok=True)
    for name, text in (("plotCurve.m", PLOT_STAND_IN), ("getExpParams.m", SETTINGS)):
        with open(os.path.join(harness, name), "w") as f:
            f.write(text)
    script = (f"addpath('{os.path.abspath(toolkit)}'); addpath('{harness}'); "
              "evaluatePCKh(0, false); evaluateAP(0);")
    cmd = [octave, "--no-gui", "--quiet", "--eval", script]
    print(f"$ cd {folder} && " + " ".join(cmd[:-1]) + f' "{script}"')
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=600)
    print(proc.stdout.strip())
    if proc.returncode:
        raise RuntimeError(f"octave failed ({proc.returncode}):\n{proc.stderr}")
    rows = [line for line in proc.stdout.splitlines() if line.startswith(RUN_NAME + "&")]
    curves = {}
    with open(os.path.join(folder, "curves.txt")) as f:
        for line in f:
            title, value = line.rstrip("\n").split("\t")
            curves[CURVES[title]] = float(value) / 100.0
    ap = _octave_matrix(os.path.join(folder, "apAll"), "ap").reshape(-1) / 100.0
    return {"pckh_table": rows[0], "ap_table": rows[1], "pckh": curves, "ap": ap}


def _octave_matrix(path: str, name: str) -> np.ndarray:
    """A matrix variable of a file ``save``d by Octave in its default text format (``evaluateAP.m`` saves
    ``apAll`` so; MATLAB would write ``apAll.mat``)."""
    if os.path.isfile(path + ".mat"):
        return np.asarray(scipy.io.loadmat(path + ".mat")[name], np.float64)
    with open(path) as f:
        lines = f.read().splitlines()
    start = lines.index(f"# name: {name}")
    rows = int(lines[start + 2].split(":")[1])
    return np.array([[float(v) for v in line.split()] for line in lines[start + 4:start + 4 + rows]])


# ----------------------------------------------------------------------------------------------- the report

def _numbers(row: str) -> List[float]:
    """The figures of a printed genTable*.m row."""
    return [float(v) for v in re.findall(r"-?\d+\.\d+|NaN", row.split("&", 1)[1])]


def _line(label: str, values: Sequence[Optional[float]], width: int = 9) -> str:
    return f"{label:<48}" + "".join(f"{'-':>{width}}" if v is None else f"{100 * v:>{width}.2f}" for v in values)


def report(results: Dict[str, Any], toolkit: Dict[str, Dict], rows: Sequence[str]) -> None:
    parts = [p for p, _ in mpii_toolkit.PARTS]
    print("\n=== PCKh@0.5 (%), single person: the toolkit's columns (left / right averaged, Head = upper neck "
          "and head top)")
    print(f"{'':<48}" + "".join(f"{p:>9}" for p in parts + ["ubody", "total", "limbs12"]))
    print(_line("expected by construction", [EXPECTED_PCKH[p] for p in parts + ["ubody", "total"]] + [None]))
    for row in rows:
        mine = results[row]["toolkit"]["pckh"]
        octave = toolkit[row]
        printed = _numbers(octave["pckh_table"])
        print(_line(f"{row}: lcr_tf toolkit figures", [mine["per_part"][p] for p in parts]
                    + [mine["ubody"], mine["total"], mine["limbs12"]]))
        print(_line(f"{row}: Octave evaluatePCKh.m (curves, exact)", [octave["pckh"][p] for p in parts]
                    + [None, octave["pckh"]["total"], None]))
        print(_line(f"{row}: Octave genTablePCK.m row (printed)", [v / 100 for v in printed[:7]]
                    + [printed[7] / 100, printed[8] / 100, None]))
        lcr = results[row]
        print(_line(f"{row}: lcr_tf LCR-13 (pooled; matched people)", [lcr["pckh_per_part"][p] for p in parts]
                    + [None, lcr["pckh_0.5"], lcr["pckh_limbs12"]]))
        print(_line(f"{row}: lcr_tf LCR-13, all people", [None] * 8 + [lcr["pckh_0.5_all"], lcr["pckh_limbs12_all"]]))
    print("\n=== AP@0.5 (%), multi-person, per group of groups_v12.mat")
    print(f"{'':<48}" + "".join(f"{p:>9}" for p in parts + ["total", "limbs12"]))
    print(_line("expected by construction", [EXPECTED_AP[p] for p in parts + ["total"]] + [None]))
    for row in rows:
        mine = results[row]["toolkit"]["ap"]
        octave = toolkit[row]["ap"]
        by_name = dict(zip(mpii_toolkit.TOOLKIT_JOINTS, octave[:14]))
        octave_parts = [(by_name[a] + by_name[b]) / 2 for _, (a, b) in mpii_toolkit.PARTS]
        print(_line(f"{row}: lcr_tf toolkit figures", [mine["per_part"][p] for p in parts]
                    + [mine["total"], mine["limbs12"]]))
        print(_line(f"{row}: Octave evaluateAP.m (apAll, exact)", octave_parts + [octave[14], None]))
        print(_line(f"{row}: Octave genTableAP.m row (printed)", [v / 100 for v in _numbers(toolkit[row]["ap_table"])]
                    + [None]))
        lcr = results[row]
        print(_line(f"{row}: lcr_tf LCR-13 (head centre; mean over 13)", [lcr["ap_per_part"][p] for p in parts]
                    + [lcr["ap"], lcr["ap_limbs12"]]))
    print("\n=== per joint, row " + rows[0] + " (lcr_tf toolkit figures / Octave)")
    mine_p = results[rows[0]]["toolkit"]["pckh"]["per_joint"]
    mine_a = results[rows[0]]["toolkit"]["ap"]["per_joint"]
    octave = dict(zip(mpii_toolkit.TOOLKIT_JOINTS, toolkit[rows[0]]["ap"][:14]))
    for name in mpii_toolkit.TOOLKIT_JOINTS:
        print(f"  {name:<16} PCKh {100 * mine_p[name]:6.2f}   AP {100 * mine_a[name]:6.2f} / {100 * octave[name]:6.2f}")
    worst = 0.0
    for row in rows:
        mine = results[row]["toolkit"]
        worst = max(worst, abs(mine["pckh"]["total"] - toolkit[row]["pckh"]["total"]),
                    *(abs(mine["pckh"]["per_part"][p] - toolkit[row]["pckh"][p]) for p in parts),
                    float(np.max(np.abs(np.array([mine["ap"]["per_joint"][n] for n in mpii_toolkit.TOOLKIT_JOINTS])
                                        - toolkit[row]["ap"][:14]))))
    print(f"\nlargest difference between lcr_tf's toolkit figures and Octave's: {100 * worst:.6f} points")
    print("written MPII joints: " + "; ".join(f"{k}: {v}" for k, v in native_mpii.WRITTEN_JOINTS.items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--toolkit_dir", required=True, help="the MPII toolkit's eval folder (evaluatePCKh.m, "
                        "evaluateAP.m, ...), used unchanged")
    parser.add_argument("--work_dir", default=None, help="where the tree, the results and the Octave folders go "
                        "(default: a temporary folder, removed at the end)")
    parser.add_argument("--octave", default="octave", help="the Octave program")
    args = parser.parse_args(argv)
    missing = [f for f in TOOLKIT_FILES if not os.path.isfile(os.path.join(args.toolkit_dir, f))]
    why = (f"{args.octave} not found" if shutil.which(args.octave) is None else
           f"{args.toolkit_dir} lacks {', '.join(missing)}" if missing else None)
    if why:
        print(f"skipped: {why}")
        return 0
    work = args.work_dir or tempfile.mkdtemp(prefix="official_mpii_")
    try:
        root = os.path.join(work, "mpii")
        groups = write_tree(root)
        results = run_project(root, groups, work)
        toolkit = {row: run_toolkit(args.toolkit_dir, args.octave, results, row, groups, work) for row in ROWS}
        report(results, toolkit, ROWS)
        # The same tree as MPII's test set: --split=test scores nothing, writes the submission (single-person
        # people paired by objpos and scale), and the toolkit scores it here, the fixture's test images
        # keeping their joints (MPII's do not).
        print("\n=== the test-set submission (--split=test)")
        test_root = os.path.join(work, "mpii_test")
        test_groups = write_tree(test_root, img_train=0)
        submitted = run_project(test_root, test_groups, work, split="test")
        octave = run_toolkit(args.toolkit_dir, args.octave, submitted, "ppi", test_groups, work, "_test")
        parts = [p for p, _ in mpii_toolkit.PARTS]
        print(_line("expected PCKh (objpos pairing: as above)", [EXPECTED_PCKH[p] for p in parts]
                    + [EXPECTED_PCKH["ubody"], EXPECTED_PCKH["total"]]))
        print(_line("Octave evaluatePCKh.m on the submission", [octave["pckh"][p] for p in parts]
                    + [None, octave["pckh"]["total"]]))
        print(_line("expected AP", [EXPECTED_AP[p] for p in parts + ["total"]]))
        ap = dict(zip(mpii_toolkit.TOOLKIT_JOINTS, octave["ap"][:14]))
        print(_line("Octave evaluateAP.m on the submission",
                    [(ap[a] + ap[b]) / 2 for _, (a, b) in mpii_toolkit.PARTS] + [octave["ap"][14]]))
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
