"""The detections in each benchmark's own results format (``--results_format=native`` of
:mod:`lcr_tf.evaluate`), for the benchmarks that have one: the files their official tools and servers
read. Each is written per row, ``RESULTS_DIR/<row>/<file>`` (``ppi``, ``nms``), as the tools expect fixed
file names.

* ``coco``: COCO's keypoint results file (:mod:`lcr_tf.evaluation.coco_keypoints`), always written for
  ``--dataset=coco`` unless ``--results_format=none``.

Human3.6M and the synthetic benchmark have no official results file or server; their detections are in the
predictions file of ``--save_predictions``.
"""

from __future__ import annotations

from typing import Dict, Optional

RESULTS_FORMATS = ("none", "native")
NATIVE = "native"
NONE = "none"
#: Benchmark -> what ``--results_format=native`` writes.
NATIVE_FILES: Dict[str, str] = {
    "coco": "<row>/person_keypoints_<split>2017_lcrnet_results.json: COCO keypoint results (17 x 3 per "
            "detection, COCO's pixel convention; the file COCO's evaluation server reads)",
}


def resolve_results_format(dataset: str, results_format: Optional[str]) -> str:
    """The results format to write: ``results_format``, or by default ``native`` for ``coco`` (whose
    evaluation is the results file's) and ``none`` elsewhere.

    Raises:
      ValueError: an unknown format, or ``native`` for a benchmark without one (named, with those that have).
    """
    if results_format is None:
        return NATIVE if dataset == "coco" else NONE
    if results_format not in RESULTS_FORMATS:
        raise ValueError(f"--results_format must be one of {', '.join(RESULTS_FORMATS)}, got {results_format!r}")
    if results_format == NATIVE and dataset not in NATIVE_FILES:
        raise ValueError(f"--results_format=native: {dataset} has no results format of its own (no official "
                         f"results file or server; its detections are in --save_predictions' file); the "
                         f"benchmarks with one: {', '.join(sorted(NATIVE_FILES))}")
    return results_format
