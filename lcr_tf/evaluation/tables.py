"""The rows of the evaluation and their text tables, shared by the benchmarks, the report and the command.

Every benchmark reports the rows :data:`MODES` (``ppi``: the paper's pose proposal integration, eq 7-8;
``nms``: its NMS baseline) and ``upper_bound`` (each ground-truth person's closest candidate before
integration), in LCR-13 (:data:`SKELETON`), 2D in pixels of the original image, 3D in metres.
"""

from __future__ import annotations

import math
from typing import Any, List, Mapping, Optional

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.evaluation import mpii_toolkit, protocols

MODES = ("ppi", "nms")
#: The row of the upper bound (closest candidate), after :data:`MODES`.
UPPER_BOUND = "upper_bound"
# The integration mode of lcr_tf.postprocess for each reported row.
PPI_MODE = {"ppi": "paper", "nms": "nms"}
PCKH_ALPHA = 0.5
# Thresholds of the PCKh curve (head sizes), 0.05 to 1.
PCKH_CURVE_ALPHAS = tuple(round(0.05 * i, 2) for i in range(1, 21))
# Medians over matched people of the parts of their 2D error (lcr_tf.evaluation.error_parts).
ERROR_PART_KEYS = ("translation_hs", "shape_hs", "extent_ratio")
#: The joint set every benchmark is compared in.
SKELETON = skeleton_lib.LCR13
# A detection scoring at least this is a person the detector reports: the figures on images without
# people count these, and the report draws these. PPI scores are sums of proposal probabilities, so a
# well-supported person scores above 1 and a stray proposal far below.
DETECTION_SCORE = 0.5


def num(value) -> Optional[float]:
    """``value`` as a float, None when it is not finite (JSON has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def _pct(value, width: int = 8) -> str:
    return f"{'-':>{width}}" if value is None else f"{100.0 * value:>{width}.1f}"


def _mm(value, width: int = 8) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.1f}"


def format_real_table(results: Mapping[str, Any]) -> str:
    """The rows of a real benchmark as fixed-width text tables (mm for errors, % for rates)."""
    dataset = results["dataset"]
    methods = [m for m in MODES + (UPPER_BOUND,) if results.get(m)]
    head = (f"{dataset}: {results['num_images']} images, {results['num_people']} people, "
            f"{results.get('rejected', 0)} records rejected; joints: LCR-13 ({SKELETON.num_joints})")
    lines = [head] + ([results["protocol"]] if results.get("protocol") else [])
    if dataset == "h36m":
        actions = list(results.get("actions") or [])
        width = max([8] + [len(a) + 1 for a in actions])
        lines.append("MPJPE (mm)" + " " * 12 + "".join(f"{a[:width - 1]:>{width}}" for a in actions)
                     + f"{'Average':>{width}}{'Pooled':>{width}}{'matched':>9}{'missed':>8}")
        for method in methods:
            row = results[method]
            for label, key in (("Abs.", "mpjpe_mm"), ("Align.", "pa_mpjpe_mm")):
                cells = "".join(_mm(row["per_action"].get(a, {}).get(key), width) for a in actions)
                totals = _mm(row[key], width) + _mm(row[key + "_pooled"], width)
                lines.append(f"{method + ' ' + label:<22}{cells}{totals}{row['matched']:>9d}{row['missed']:>8d}")
    elif dataset == "mupots":
        lines += _mupots_lines(results, methods)
    elif results.get("scored") is False:  # MPII's test set: no joints, only the submission files
        lines.append(results.get("test_note", ""))
        lines += [f"{method}: {results[method]['detections']} detections" for method in MODES]
        lines += mpii_toolkit.file_lines(results)
    else:
        parts = [p for p, _ in _body_parts()]
        lines.append("package figures (LCR-13: head centre, left and right pooled; PCKh over the people paired with "
                     "a detection, 'all' counting the others' joints as missed)")
        lines.append(f"{'PCKh@0.5 (%)':<18}" + "".join(f"{p:>9}" for p in parts)
                     + f"{'total':>9}{'limbs12':>9}{'all':>9}{'matched':>9}{'missed':>8}")
        for method in methods:
            row = results[method]
            lines.append(f"{method:<18}" + "".join(_pct(row["pckh_per_part"][p], 9) for p in parts)
                         + f"{_pct(row['pckh_0.5'], 9)}{_pct(row.get('pckh_limbs12'), 9)}"
                         f"{_pct(row['pckh_0.5_all'], 9)}{row['matched']:>9d}{row['missed']:>8d}")
        names = [n.replace("left_", "l_").replace("right_", "r_") for n in SKELETON.joint_names]
        width = max(9, max(len(n) for n in names) + 1)
        lines.append(f"{'PCKh@0.5 per joint':<18}" + "".join(f"{n:>{width}}" for n in names))
        for method in methods:
            lines.append(f"{method:<18}" + "".join(_pct(v, width) for v in results[method]["pckh_per_joint"]))
        lines.append(f"{'AP@0.5 (%)':<18}" + "".join(f"{p:>9}" for p in parts)
                     + f"{'mean':>9}{'limbs12':>9}{'groups':>9}")
        for method in MODES:
            row = results[method]
            lines.append(f"{method:<18}" + "".join(_pct(row["ap_per_part"][p], 9) for p in parts)
                         + f"{_pct(row['ap'], 9)}{_pct(row.get('ap_limbs12'), 9)}{row['groups']:>9d}")
        lines += mpii_toolkit.format_lines(results, MODES)
    lines += refused_lines(results)
    for method, files in (results.get("results_files") or {}).items():
        lines.append(f"results files ({method}): {', '.join(files.values())}")
    return "\n".join(lines)


def _mupots_lines(results: Mapping[str, Any], methods: List[str]) -> List[str]:
    """MuPoTS-3D's tables: the official 14-joint figures, then the other joint sets and the per-part table
    (:mod:`lcr_tf.evaluation.mupots_benchmark`)."""
    sequences = list(results.get("sequences") or [])
    protocol = results.get("mupots_protocol") or {}
    notes = protocol.get("joint_sets") or {}
    lines = [f"protocol: {protocol.get('matching_rule', '')}; pelvis-centred; bones "
             + ("rescaled to the ground truth's" if protocol.get("rescale_bones") else "not rescaled")]
    lines.append(f"{'3DPCK@150mm / AUC (%)':<24}" + "".join(f"{s:>6}" for s in sequences)
                 + f"{'Total':>8}{'Pooled':>8}{'matched':>9}{'missed':>8}")
    official = protocol.get("official_joint_set", "")
    for joint_set in [official] + sorted(results[methods[0]].get("joint_sets", {})) if methods else []:
        lines.append(f"[{joint_set}: {notes.get(joint_set, '')}]")
        keys = (("PCK all", "pck3d_all"), ("PCK matched", "pck3d_matched"), ("AUC all", "auc_all"),
                ("AUC matched", "auc_matched"))
        for method in methods:
            row = results[method] if joint_set == official else results[method]["joint_sets"][joint_set]
            for label, key in keys if joint_set == official else keys[:2]:
                cells = "".join(_pct(row["per_sequence"][s][key], 6) for s in sequences)
                lines.append(f"{method + ' ' + label:<24}{cells}{_pct(row[key])}{_pct(row[key + '_pooled'])}"
                             f"{results[method]['matched']:>9d}{results[method]['missed']:>8d}")
    if methods:
        groups = list(results[methods[0]].get("per_group", {}))
        lines.append(f"{'official parts, PCK all':<24}" + "".join(f"{g:>7}" for g in groups)
                     + "  (mean over sequences)")
        for method in methods:
            lines.append(f"{method:<24}" + "".join(_pct(results[method]["per_group"][g]["pck3d_all"], 7)
                                                   for g in groups))
    files = results.get("mupots_native_files")
    if files:
        lines.append(f"native files: {files['note']}")
    return lines


def _body_parts():
    return protocols.BODY_PARTS


def format_table(results: Mapping[str, Any]) -> str:
    """The rows as a fixed-width text table."""
    cols = ("pckh_0.5", "mpjpe_mm", "pa_mpjpe_mm", "ap", "matched", "missed")
    lines = [f"{results.get('dataset', '')}: {results['num_images']} images, {results['num_people']} people",
             f"{'method':<12}" + "".join(f"{c:>13}" for c in cols)]
    for name in MODES + (UPPER_BOUND,):
        row = results.get(name)
        if row is None:
            lines.append(f"{name:<12}" + f"{'(no candidates)':>13}")
            continue
        cells = []
        for c in cols:
            v = row.get(c)
            cells.append(f"{'-':>13}" if v is None else f"{v:>13d}" if isinstance(v, int) else f"{v:>13.4f}")
        lines.append(f"{name:<12}" + "".join(cells))
    empty = {name: results[name] for name in MODES if (results.get(name) or {}).get("empty_images")}
    if empty:
        lines.append(f"images without people: {next(iter(empty.values()))['empty_images']}; detections scoring "
                     f">= {results.get('detection_score', DETECTION_SCORE)} per such image: "
                     + ", ".join(f"{name} {row['detections_per_empty_image']:.2f}" for name, row in empty.items()))
    lines += refused_lines(results)
    return "\n".join(lines)


def refused_lines(results: Mapping[str, Any]) -> List[str]:
    """The line saying how many images the model's limits refused (none when there were none)."""
    count = results.get("refused_images") or 0
    if not count:
        return []
    first = (results.get("refused_examples") or [{}])[0]
    return [f"images not sent (not JPEG / PNG, broken or over the model's limits), evaluated as no detection: "
            f"{count}; first: {first.get('image_id')}: {first.get('reason')}"]

