"""The evaluation report: a markdown page with the measures of :mod:`lcr_tf.evaluate` and its pictures.

:func:`write_report` writes, into one folder::

    report.md          the table of the rows (PPI, NMS, upper bound), PCKh per joint, where the 2D error
                       comes from (translation, shape, extent), the detections on images without people,
                       the figures' links
    pck_curve.png      PCKh against its threshold (0.05 to 1 head size) for each row
    overlays.png       held-out images with the ground truth (white) and the detections (coloured)
    poses3d.png        3D poses of matched people: detection (coloured) over the ground truth (grey)

Conventions are those of :mod:`lcr_tf.evaluate`: 2D in pixels of the original image, 3D in metres,
camera axes (x right, y down, z away), body-centred.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from lcr_tf import evaluation
from lcr_tf.contracts import serving
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.evaluation.tables import DETECTION_SCORE
from lcr_tf.poses import viz

REPORT_MD = "report.md"
PCK_CURVE_PNG = "pck_curve.png"
OVERLAYS_PNG = "overlays.png"
POSES3D_PNG = "poses3d.png"
ROWS = (("ppi", "PPI (eq 7-8)"), ("nms", "NMS baseline"), ("upper_bound", "upper bound (closest candidate)"))
_ROW_STYLE = {"ppi": ("#d62728", "-"), "nms": ("#1f77b4", "--"), "upper_bound": ("#7f7f7f", ":")}
_GT_COLOURS = {"left": "white", "right": "white", "centre": "white"}


def _fmt(value, digits: int, scale: float = 1.0, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value * scale:.{digits}f}{suffix}"


def results_table(results: Mapping[str, Any]) -> str:
    """The markdown table of the rows of ``results``
    (:func:`lcr_tf.evaluation.synthetic_benchmark.evaluate_detections`)."""
    lines = ["| method | PCKh@0.5 | MPJPE (mm) | PA-MPJPE (mm) | AP | matched / missed | detections |",
             "|---|---|---|---|---|---|---|"]
    for key, label in ROWS:
        row = results.get(key)
        if not row:
            continue
        lines.append(f"| {label} | {_fmt(row.get('pckh_0.5'), 1, 100, ' %')} | {_fmt(row.get('mpjpe_mm'), 1)} | "
                     f"{_fmt(row.get('pa_mpjpe_mm'), 1)} | {_fmt(row.get('ap'), 3)} | "
                     f"{row.get('matched', 'n/a')} / {row.get('missed', 'n/a')} | {row.get('detections', '-')} |")
    return "\n".join(lines)


def per_joint_table(results: Mapping[str, Any]) -> str:
    """Markdown table of PCKh@0.5 per joint for each row that has it."""
    names = results.get("joints") or list(skeleton_lib.LCR13.joint_names)
    rows = [(label, results[key]["pckh_per_joint"]) for key, label in ROWS
            if results.get(key) and results[key].get("pckh_per_joint")]
    if not rows:
        return ""
    lines = ["| joint | " + " | ".join(label for label, _ in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for j, name in enumerate(names):
        lines.append(f"| {name} | " + " | ".join(_fmt(values[j], 1, 100, " %") for _, values in rows) + " |")
    return "\n".join(lines)


def error_parts_table(results: Mapping[str, Any]) -> str:
    """Markdown table of where the 2D error comes from (medians over matched people of
    :func:`lcr_tf.evaluation.error_parts`), for each row that has it; empty when none has."""
    rows = [(label, results[key]) for key, label in ROWS
            if results.get(key) and results[key].get("translation_hs") is not None]
    if not rows:
        return ""
    lines = ["| method | translation (head sizes) | shape (head sizes) | extent ratio |", "|---|---|---|---|"]
    lines += [f"| {label} | {_fmt(row.get('translation_hs'), 2)} | {_fmt(row.get('shape_hs'), 2)} | "
              f"{_fmt(row.get('extent_ratio'), 2)} |" for label, row in rows]
    return "\n".join(lines)


def empty_images_table(results: Mapping[str, Any]) -> str:
    """Markdown table of the detections on images without people (pure negatives), for each row that
    evaluated some; empty when none did."""
    rows = [(label, results[key]) for key, label in ROWS if (results.get(key) or {}).get("empty_images")]
    if not rows:
        return ""
    score = results.get("detection_score", DETECTION_SCORE)
    lines = [f"| method | images without people | detections (score >= {score:g}) per image |", "|---|---|---|"]
    lines += [f"| {label} | {row['empty_images']} | {_fmt(row.get('detections_per_empty_image'), 2)} |"
              for label, row in rows]
    return "\n".join(lines)


def timings_table(timings: Mapping[str, float]) -> str:
    """A markdown section with the seconds of each stage and their total."""
    lines = ["## Time per stage", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {sec:.1f} |" for name, sec in timings.items()]
    lines += [f"| total | {sum(timings.values()):.1f} |", ""]
    return "\n".join(lines)


def plot_pck_curve(results: Mapping[str, Any], path: str) -> None:
    """PCKh (%) against its threshold in head sizes, one line per row of ``results``."""
    alphas = results.get("pckh_curve_alphas")
    fig = viz.new_figure(5.5, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    for key, label in ROWS:
        row = results.get(key)
        if not row or not alphas or not row.get("pckh_curve"):
            continue
        values = np.array([np.nan if v is None else 100.0 * v for v in row["pckh_curve"]])
        colour, style = _ROW_STYLE[key]
        ax.plot(alphas, values, style, color=colour, linewidth=2, label=label)
    ax.axvline(0.5, color="black", linewidth=0.8, alpha=0.5)
    ax.set_xlim(0.0, max(alphas) if alphas else 1.0)
    ax.set_ylim(0.0, 100.0)
    ax.set_xlabel("threshold (head sizes)")
    ax.set_ylabel("PCKh (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"PCKh on {results.get('num_images', '?')} images, {results.get('num_people', '?')} people",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def _decode(encoded: bytes) -> np.ndarray:
    import cv2
    image = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("an evaluated image cannot be decoded")
    return image[..., ::-1]


def plot_overlays(ground_truth: Sequence, predictions: Mapping[str, Mapping[str, Any]], path: str,
                  method: str = "ppi", num_images: int = 8, min_score: float = DETECTION_SCORE,
                  columns: int = 4) -> None:
    """The first ``num_images`` images with their ground truth (white) and detections of ``method``
    scoring at least ``min_score`` (coloured by side), titled with the counts."""
    shown = list(ground_truth)[:num_images]
    if not shown:
        return
    rows = (len(shown) + columns - 1) // columns
    fig = viz.new_figure(3.2 * columns, 3.4 * rows)
    for i, gt in enumerate(shown):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(_decode(gt.encoded))
        for g in range(len(gt.pose2d)):
            viz.draw_pose_2d(ax, gt.pose2d[g], mask=gt.annotated[g], colours=_GT_COLOURS, linewidth=4,
                             marker_size=0, alpha=0.6)
        people = predictions[gt.image_id][method]
        keep = np.flatnonzero(np.asarray(people[serving.SCORE]) >= min_score)
        for d in keep:
            viz.draw_pose_2d(ax, people[serving.POSE2D][d], linewidth=1.8, marker_size=2)
        ax.set_xlim(-0.5, gt.width - 0.5)
        ax.set_ylim(gt.height - 0.5, -0.5)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"{gt.image_id}: {len(gt.pose2d)} people, {len(keep)} found", fontsize=8)
    fig.suptitle(f"{method.upper()} detections (score >= {min_score}) over the ground truth (white)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def plot_poses3d(ground_truth: Sequence, predictions: Mapping[str, Mapping[str, Any]], path: str,
                 method: str = "ppi", num_people: int = 6) -> None:
    """3D poses of the first ``num_people`` matched people: detection over the ground truth (grey),
    with each one's MPJPE after rigid alignment in the title."""
    pairs: List[tuple] = []
    for gt in ground_truth:
        people = predictions[gt.image_id][method]
        m = evaluation.match_detections(people[serving.POSE2D], gt.pose2d, gt.annotated, np.inf)
        # People without 3D ground truth (e.g. MPII) have nothing to compare with.
        pairs += [(people[serving.POSE3D][p], gt.pose3d[g]) for p, g in zip(m.pred_index, m.gt_index)
                  if np.all(np.isfinite(gt.pose3d[g]))]
        if len(pairs) >= num_people:
            break
    pairs = pairs[:num_people]
    if not pairs:
        return
    fig = viz.new_figure(3.0 * len(pairs), 3.4)
    grey = {"left": "#999999", "right": "#999999", "centre": "#999999"}
    for i, (pred, truth) in enumerate(pairs):
        ax = fig.add_subplot(1, len(pairs), i + 1, projection="3d")
        viz.draw_pose_3d(ax, truth - skeleton_lib.body_centre(truth, "lcr13"), colours=grey, linewidth=4,
                         alpha=0.6)
        viz.draw_pose_3d(ax, pred - skeleton_lib.body_centre(pred, "lcr13"))
        error = float(evaluation.pa_mpjpe(pred[None], truth[None])[0])
        ax.set_title(f"PA-MPJPE {error:.0f} mm", fontsize=9)
    fig.suptitle(f"{method.upper()} 3D poses (colour) and the ground truth (grey)", fontsize=10)
    fig.savefig(path)


def write_report(out_dir: str, results: Mapping[str, Any], ground_truth: Optional[Sequence] = None,
                 predictions: Optional[Mapping[str, Mapping[str, Any]]] = None, title: str = "Evaluation",
                 notes: Sequence[str] = (), timings: Optional[Mapping[str, float]] = None) -> Dict[str, str]:
    """Writes the report (module docstring) into ``out_dir``; returns name -> path of what it wrote.

    Args:
      results: the dict of :func:`lcr_tf.evaluation.synthetic_benchmark.evaluate_detections`.
      ground_truth, predictions: what was evaluated (:class:`lcr_tf.evaluation.ground_truth.GroundTruth` list and the
        detections per image id); without them the report has no overlays or 3D plots.
      notes: lines added under the title (e.g. how the model was trained).
      timings: stage name -> seconds, shown as a table.
    """
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    if any(any(v is not None for v in (results.get(key) or {}).get("pckh_curve") or []) for key, _ in ROWS):
        written["pck_curve"] = os.path.join(out_dir, PCK_CURVE_PNG)
        plot_pck_curve(results, written["pck_curve"])
    if ground_truth is not None and predictions is not None:
        written["overlays"] = os.path.join(out_dir, OVERLAYS_PNG)
        plot_overlays(ground_truth, predictions, written["overlays"])
        written["poses3d"] = os.path.join(out_dir, POSES3D_PNG)
        plot_poses3d(ground_truth, predictions, written["poses3d"])
    lines = [f"# {title}", ""]
    lines += [f"{note}" for note in notes] + ([""] if notes else [])
    lines += [f"{results.get('num_images', '?')} images, {results.get('num_people', '?')} people "
              f"(dataset: {results.get('dataset', '?')}). PCKh head size: {results.get('head_size', 'n/a')}.",
              "", results_table(results), ""]
    joint_table = per_joint_table(results)
    if joint_table:
        lines += ["## PCKh@0.5 per joint", "", joint_table, ""]
    parts_table = error_parts_table(results)
    if parts_table:
        lines += ["## Where the 2D error comes from", "",
                  "Medians over the matched people: how far the mean joint is from the truth's "
                  "(translation), the mean joint error once both poses are centred (shape), and the "
                  "predicted over the true spread of the joints (extent ratio).", "", parts_table, ""]
    empty_table = empty_images_table(results)
    if empty_table:
        lines += ["## Images without people", "",
                  "Every detection on an image without people is a false positive (AP counts them too); "
                  "the mean number of detections the detector reports on such an image.", "", empty_table, ""]
    lines += ["## Figures", ""]
    for key, name, caption in (("pck_curve", PCK_CURVE_PNG, "PCKh curve"),
                               ("overlays", OVERLAYS_PNG, "Detections over the ground truth"),
                               ("poses3d", POSES3D_PNG, "3D poses against the ground truth")):
        if key in written and os.path.exists(written[key]):
            lines += [f"![{caption}]({name})", ""]
    if timings:
        lines.append(timings_table(timings))
    written["report"] = os.path.join(out_dir, REPORT_MD)
    with open(written["report"], "w") as f:
        f.write("\n".join(lines))
    return {k: v for k, v in written.items() if os.path.exists(v)}
