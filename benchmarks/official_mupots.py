"""MuPoTS-3D's official MATLAB evaluation, run unchanged under GNU Octave, beside
``python -m lcr_tf.evaluate --dataset=mupots``, on a small MuPoTS-3D tree whose errors are known by construction.

    python benchmarks/official_mupots.py --toolkit_dir=DIR [--work_dir=DIR] [--octave=octave]

``--toolkit_dir`` holds the official evaluation as distributed for multi-person methods (the script that
``load``s ``preds_2d_kpt_mupots.mat`` / ``preds_3d_kpt_mupots.mat``)::

    DIR/mpii_mupots_multiperson_eval.m
    DIR/util/mpii_get_joints.m, mpii_multiperson_get_identity_matching.m, mpii_map_to_gt_bone_lengths.m,
             mpii_compute_3d_pck.m, mpii_get_pck_auc_joint_groups.m, mpii_3D_error.m,
             mpii_evaluate_multiperson_errors.m, mpii_evaluate_multiperson_errors_visibility_mask.m
    DIR/octave_shims/cell2table.m, writetable.m   (Octave has neither; a CSV writer of the cell table)

Steps: (1) writes a MuPoTS-3D tree in the dataset's own layout under the work folder, ``ROOT/TS1..TS20``
with ``annot.mat`` (``annotations``: cell frames x people of structs ``annot2`` 2x17 px, ``annot3`` and
``univ_annot3`` 3x17 mm, ``isValidFrame``), ``occlusion.mat`` (``occlusion_labels``) and grey
``img_%06d.jpg`` frames; the 2D is the projection of the 3D through one camera, ``univ_annot3`` is
``annot3`` shrunk by 0.95 about the pelvis, and every person's neck, pelvis and spine are the mid-shoulder,
mid-hip and body centre, so that LCR-13 detections convert to MuPoTS-3D's joints without error but for the
head top (which LCR-13 lacks: NaN in the native files). (2) Writes a predictions file
(:mod:`lcr_tf.evaluation.predictions_file`: LCR-13, 2D pixels, 3D metres body-centred, rows ``ppi`` and
``nms`` identical) and runs ``lcr_tf.evaluate --dataset=mupots --results_format=native``. (3) For each row,
copies the native ``preds_*_mupots.mat`` into an Octave folder with an ``mpii_mupots_config.m`` pointing at
ROOT and runs ``mpii_mupots_multiperson_eval(0, 1)`` (all annotated people, root-relative) and
``(1, 1)`` (matched people only). (4) Prints, per sequence and in total, the official 3DPCK@150 mm and AUC
(the ``Total`` column of its ``*_sequencewise.csv``; totals are means over sequences, as MuPoTS-3D
reports them) beside ``results[row]["per_sequence"][seq]`` of ``lcr_tf.evaluate`` (``pck3d_all``,
``auc_all``, ``pck3d_matched``, ``auc_matched``; any other per-sequence key is listed too), the figure each
case should get from the official script, the official figures per joint group, and its visible / occluded
joint tables.

The cases, one per sequence, and the figure each should get are in ``benchmarks/mupots_fixture.py``.

The official script needs every sequence TS1-TS20 and at least one matched person in each (its
``(1, 1)`` run indexes an empty error array otherwise); the cases keep to that. The figures of
``lcr_tf.evaluate`` differ from the official ones wherever its protocol differs (joint set, matching, bone
lengths); the expected column says what the official script must give. Prints ``skipped: ...`` and exits 0
when Octave or the toolkit folder is not there.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO)

import numpy as np  # noqa: E402

from benchmarks.mupots_fixture import ROWS, Case, build_cases, expected, write_predictions, write_tree  # noqa: E402

PROJECT_KEYS = ("pck3d_all", "auc_all", "pck3d_matched", "auc_matched")
OFFICIAL_FILES = ("mpii_mupots_multiperson_eval.m", "util/mpii_get_joints.m",
                  "util/mpii_multiperson_get_identity_matching.m", "util/mpii_map_to_gt_bone_lengths.m",
                  "util/mpii_compute_3d_pck.m", "util/mpii_get_pck_auc_joint_groups.m", "util/mpii_3D_error.m",
                  "util/mpii_evaluate_multiperson_errors.m",
                  "util/mpii_evaluate_multiperson_errors_visibility_mask.m",
                  "octave_shims/cell2table.m", "octave_shims/writetable.m")
MODES = {"all": (0, "all_annotated_"), "matched": (1, "only_matched_annotations_")}


# ------------------------------------------------------------------------------------------------ the runs

def run_project(root: str, predictions: str, work: str) -> dict:
    """``lcr_tf.evaluate --dataset=mupots --results_format=native``; returns results.json."""
    output = os.path.join(work, "results.json")
    cmd = [sys.executable, "-m", "lcr_tf.evaluate", "--dataset=mupots", f"--data={root}",
           f"--predictions={predictions}", "--results_format=native", f"--results_dir={work}/native",
           f"--output={output}"]
    print("$ " + " ".join(cmd), flush=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([_REPO] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    done = subprocess.run(cmd, cwd=_REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"lcr_tf.evaluate failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    with open(output) as f:
        return json.load(f)


def _octave_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def run_official(octave: str, toolkit: str, root: str, native_dir: str, folder: str) -> None:
    """Runs the official script on one row's native files in ``folder`` (both modes, root-relative)."""
    os.makedirs(folder, exist_ok=True)
    for name in ("preds_2d_kpt_mupots.mat", "preds_3d_kpt_mupots.mat"):
        shutil.copy(os.path.join(native_dir, name), os.path.join(folder, name))
    with open(os.path.join(folder, "mpii_mupots_config.m"), "w") as f:
        f.write(f"mpii_mupots_path = {_octave_string(root)};\n")
    util = os.path.join(folder, "util")
    if not os.path.exists(util):
        os.symlink(os.path.join(toolkit, "util"), util)      # the script's addpath('./util')
    calls = " ".join(f"mpii_mupots_multiperson_eval({mode}, 1);" for mode, _ in MODES.values())
    script = (f"addpath({_octave_string(toolkit)}); addpath({_octave_string(os.path.join(toolkit, 'octave_shims'))}); "
              f"{calls}")
    cmd = [octave, "--no-gui", "--quiet", "--no-window-system", "--eval", script]
    print(f"$ (cd {folder} && {octave} --no-gui --quiet --no-window-system --eval \"{script}\")", flush=True)
    done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    missing = [m for _, m in MODES.values() if not os.path.exists(sequencewise_csv(folder, m))]
    if done.returncode != 0 or missing:
        raise SystemExit(f"the official script failed ({done.returncode}):\n{done.stdout[-4000:]}\n"
                         f"{done.stderr[-4000:]}")


def sequencewise_csv(folder: str, prefix: str, kind: str = "") -> str:
    return os.path.join(folder, f"{prefix}{kind}multiperson_3dhp_evaluation_sequencewise.csv")


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def parse_sequencewise(path: str) -> Dict[str, Dict[str, Dict[str, float]]]:
    """{"PCK" / "AUC": {"TS<s>": {group: %, ..., "Total": %}}} from the script's sequence-wise CSV."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    out: Dict[str, Dict[str, Dict[str, float]]] = {}
    for i, row in enumerate(rows):
        if row and row[0] in ("PCK", "AUC"):
            groups = [g for g in row[1:] if g]
            table = out.setdefault(row[0], {})
            for r in rows[i + 1:]:
                if not r or not r[0].startswith("TestSeq"):
                    break
                table["TS" + r[0][len("TestSeq"):]] = {g: _float(v) for g, v in zip(groups, r[1:])}
    return out


def parse_masked(path: str) -> Dict[str, Tuple[float, int]]:
    """{"TS<s>": (PCK %, joints counted)} from a visible / occluded joints CSV (mpjpe rows, then pck rows:
    14 joints, the total, the count)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    half = len(rows) // 2
    return {f"TS{i + 1}": (100.0 * _float(r[14]), int(_float(r[15]))) for i, r in enumerate(rows[half:])}


def read_official(folder: str) -> Dict[str, dict]:
    out = {}
    for mode, (_, prefix) in MODES.items():
        out[mode] = parse_sequencewise(sequencewise_csv(folder, prefix))
        out[mode]["visible"] = parse_masked(sequencewise_csv(folder, prefix, "visible_joints_"))
        out[mode]["occluded"] = parse_masked(sequencewise_csv(folder, prefix, "occluded_joints_"))
    return out


# ---------------------------------------------------------------------------------------------- the report

def _pct(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "   -- "
    return f"{value:6.1f}"


def _flat(prefix: str, value) -> List[Tuple[str, object]]:
    if isinstance(value, dict):
        return [kv for k, v in value.items() for kv in _flat(f"{prefix}.{k}" if prefix else k, v)]
    return [(prefix, value)]


def official_total(official: Dict[str, dict], mode: str, metric: str, seq: str) -> float:
    return official[mode].get(metric, {}).get(seq, {}).get("Total", math.nan)


def print_row(row: str, cases: Dict[int, Case], official: Dict[str, dict], project_row: dict) -> None:
    """Per sequence: the expected figures, then official | lcr_tf.evaluate for the four figures."""
    per_sequence = project_row.get("per_sequence") or {}
    print(f"\n== row {row}: 3DPCK@150mm and AUC in %, official script (Octave) | lcr_tf.evaluate; "
          "expected: the official outcome by construction")
    print(f"{'seq':5} {'case':20} {'expected PCK/AUC all':>21} {'matched':>14} | "
          f"{'PCK all':>15} {'AUC all':>15} {'PCK matched':>15} {'AUC matched':>15}  official vs expected")
    figures = [(mode, metric, f"{'pck3d' if metric == 'PCK' else 'auc'}_{mode}")
               for mode in ("all", "matched") for metric in ("PCK", "AUC")]
    for s, case in cases.items():
        seq, exp = f"TS{s}", expected(case)
        off = [official_total(official, mode, metric, seq) for mode, metric, _ in figures]
        ok = all(abs(v - exp[f"{metric.lower()}_{mode}"]) < 0.05 for v, (mode, metric, _) in zip(off, figures))
        cells = " ".join(f"{_pct(v)} |{_pct(_project_pct(per_sequence.get(seq, {}), key))} "
                         for v, (_, _, key) in zip(off, figures))
        print(f"{seq:5} {case.name:20} {_pct(exp['pck_all'])} /{_pct(exp['auc_all'])}  "
              f"{_pct(exp['pck_matched'])} /{_pct(exp['auc_matched'])} | {cells}  {'ok' if ok else 'DIFFERS'}")
    means = [float(np.mean([official_total(official, mode, metric, f"TS{s}") for s in cases]))
             for mode, metric, _ in figures]
    print(f"{'total: official mean over sequences | lcr_tf':49} | " + " ".join(
        f"{_pct(v)} |{_pct(_project_pct(project_row, key))} " for v, (_, _, key) in zip(means, figures)))


def _project_pct(entry: dict, key: str):
    value = entry.get(key)
    return None if value is None else 100.0 * value


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _extras(entry: dict) -> str:
    """The keys of a per-sequence entry beyond the four compared, flattened."""
    flat = []
    stack = [("", entry)]
    while stack:
        prefix, value = stack.pop(0)
        if isinstance(value, dict):
            stack[:0] = [(f"{prefix}.{k}" if prefix else str(k), v) for k, v in value.items()]
        elif prefix not in PROJECT_KEYS:
            flat.append(f"{prefix}={_show(value)}")
    return "  ".join(flat)


def print_project_extras(row: str, cases: Dict[int, Case], project_row: dict) -> None:
    """Whatever else lcr_tf.evaluate gives per sequence: other keys of ``per_sequence``, and every other
    table of the row that has a ``per_sequence`` of its own (e.g. alternative joint sets), so that new
    ones show up here."""
    per_sequence = project_row.get("per_sequence") or {}
    lines = [f"  TS{s:<3} {_extras(per_sequence[f'TS{s}'])}" for s in cases
             if _extras(per_sequence.get(f"TS{s}", {}))]
    if lines:
        print(f"-- row {row}: other per-sequence keys of lcr_tf.evaluate")
        print("\n".join(lines))
    for name, table in sub_tables(project_row):
        print(f"-- row {row}: lcr_tf.evaluate table {name}: PCK all / AUC all, PCK matched / AUC matched (%)")
        rows = dict(table.get("per_sequence") or {})
        rows["total"] = {k: v for k, v in table.items() if k != "per_sequence"}
        for seq, entry in rows.items():
            figures = "  ".join(f"{_pct(_project_pct(entry, a))} /{_pct(_project_pct(entry, b))}"
                                for a, b in (PROJECT_KEYS[:2], PROJECT_KEYS[2:]))
            print(f"  {seq:5} {figures}   {_extras(entry)}")
    scalars = {k: v for k, v in project_row.items() if k not in PROJECT_KEYS and not isinstance(v, dict)}
    print(f"-- row {row}: other figures of lcr_tf.evaluate: {_extras(scalars)}")


def sub_tables(entry: dict, prefix: str = "") -> List[Tuple[str, dict]]:
    """(dotted name, table) for every dict below ``entry`` that holds a ``per_sequence``."""
    out = []
    for key, value in entry.items():
        if isinstance(value, dict) and key != "per_sequence":
            name = f"{prefix}{key}"
            if "per_sequence" in value:
                out.append((name, value))
            out += sub_tables(value, name + ".")
    return out


def print_groups(row: str, cases: Dict[int, Case], official: Dict[str, dict], project_row: dict) -> None:
    """The official PCK per joint group (both modes, with their means over sequences; lcr_tf.evaluate's
    ``per_group`` beside them when it has one) and the visible / occluded joint tables."""
    for mode in ("all", "matched"):
        table = official[mode].get("PCK", {})
        groups = list(next(iter(table.values()), {}))
        print(f"-- row {row}: official 3DPCK per joint group, {mode} ({MODES[mode][1]}*_sequencewise.csv)")
        print(f"  {'seq':5} " + " ".join(f"{g:>6}" for g in groups))
        for s in cases:
            values = table.get(f"TS{s}", {})
            print(f"  {'TS' + str(s):5} " + " ".join(_pct(values.get(g)) for g in groups))
        print(f"  {'mean':5} " + " ".join(_pct(float(np.mean([table.get(f'TS{s}', {}).get(g, math.nan)
                                                              for s in cases]))) for g in groups))
        per_group = project_row.get("per_group") or {}
        if any(f"pck3d_{mode}" in v for v in per_group.values() if isinstance(v, dict)):
            print(f"  {'lcr_tf':5} " + " ".join(_pct(_project_pct(per_group.get(g) or {}, f"pck3d_{mode}"))
                                                for g in groups))
    print(f"-- row {row}: official 3DPCK of visible / occluded joints (joints counted), all | matched")
    for s in cases:
        seq = f"TS{s}"
        cells = [f"{_pct(official[m][kind][seq][0])} ({official[m][kind][seq][1]:3d})"
                 for kind in ("visible", "occluded") for m in ("all", "matched")]
        print(f"  {seq:5} visible {cells[0]} | {cells[1]}   occluded {cells[2]} | {cells[3]}")


# ----------------------------------------------------------------------------------------------------- main

def missing_prerequisites(toolkit: Optional[str], octave: str) -> Optional[str]:
    if shutil.which(octave) is None:
        return f"GNU Octave ({octave!r}) is not installed or not on PATH"
    if not toolkit or not os.path.isdir(toolkit):
        return f"the toolkit folder {toolkit!r} is not there (--toolkit_dir)"
    absent = [f for f in OFFICIAL_FILES if not os.path.isfile(os.path.join(toolkit, f))]
    if absent:
        return f"the toolkit folder {toolkit} lacks {', '.join(absent)}"
    return None


def run(toolkit: str, octave: str, work: str) -> None:
    root = os.path.join(work, "MultiPersonTestSet")
    cases = build_cases()
    write_tree(root, cases)
    predictions = os.path.join(work, "predictions.json")
    frames = write_predictions(predictions, cases)
    print(f"fixture: {root} (TS1-TS20, {sum(len(c.frames) for c in cases.values())} frames); "
          f"predictions: {predictions} ({frames} frames)")
    project = run_project(root, predictions, work)
    for row in ROWS:
        folder = os.path.join(work, "official", row)
        run_official(octave, toolkit, root, os.path.join(work, "native", row), folder)
        official = read_official(folder)
        project_row = project.get(row) or {}
        print_row(row, cases, official, project_row)
        print_project_extras(row, cases, project_row)
        print_groups(row, cases, official, project_row)
    facts = {k: project.get(k) for k in ("num_images", "num_people", "rejected", "rejected_examples",
                                         "mupots_protocol", "mupots_native_files")}
    print(f"\nlcr_tf.evaluate: {_extras({k: v for k, v in facts.items() if v is not None})}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--toolkit_dir", default=None,
                        help="Folder of the official evaluation: mpii_mupots_multiperson_eval.m, util/, octave_shims/.")
    parser.add_argument("--work_dir", default=None,
                        help="Folder for the fixture, the predictions and every output (default: a temporary "
                             "folder, removed at the end).")
    parser.add_argument("--octave", default="octave", help="GNU Octave's executable.")
    args = parser.parse_args(argv)
    why = missing_prerequisites(args.toolkit_dir, args.octave)
    if why:
        print(f"skipped: {why}")
        return 0
    toolkit = os.path.abspath(args.toolkit_dir)
    if args.work_dir:
        os.makedirs(args.work_dir, exist_ok=True)
        run(toolkit, args.octave, os.path.abspath(args.work_dir))
    else:
        with tempfile.TemporaryDirectory(prefix="official_mupots_") as work:
            run(toolkit, args.octave, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
