"""The run folder: what a training run (:mod:`lcr_tf.train`) writes and what serving reads.

Layout of a run folder (``--model_dir``)::

    config.json          the run's configuration (CONFIG_FILE): the serialised lcr_tf.training.config.TrainConfig
                         sections (model, input, optimization, run, data), "skeleton" (the joint set's
                         name), "flags" (the same settings by flag name), "precision" and the strategy
    final.weights.h5     the trained weights (FINAL_WEIGHTS)
    metrics.json         the logs of the first and last epochs of the latest run, throughput (METRICS_FILE)
    checkpoints/         model, optimizer and step checkpoints (CHECKPOINT_DIR)
    train/, validation/  TensorBoard event files (TRAIN_LOGS, VALIDATION_LOGS)

Folders written before ``config.json`` recorded the skeleton have no "skeleton" entry:
:func:`skeleton_name` then answers None and the reader falls back as it always did.

Imports nothing of the project: every layer may read and write a run folder.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Optional

from lcr_tf.contracts import atomic_files

CONFIG_FILE = "config.json"
FINAL_WEIGHTS = "final.weights.h5"
METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoints"
TRAIN_LOGS = "train"
VALIDATION_LOGS = "validation"

#: Keys of config.json beside the configuration sections.
SKELETON = "skeleton"
FLAGS = "flags"
MODEL = "model"


def config_path(model_dir: str) -> str:
    return os.path.join(model_dir, CONFIG_FILE)


def weights_path(model_dir: str) -> str:
    return os.path.join(model_dir, FINAL_WEIGHTS)


def metrics_path(model_dir: str) -> str:
    return os.path.join(model_dir, METRICS_FILE)


def checkpoint_dir(model_dir: str) -> str:
    return os.path.join(model_dir, CHECKPOINT_DIR)


def write_json(path: str, payload: Any) -> None:
    """Writes JSON through a temporary name (:mod:`lcr_tf.contracts.atomic_files`), so that a reader
    never sees half a file."""
    atomic_files.write_json(path, payload, indent=1, sort_keys=True)


def write_config(model_dir: str, run: Mapping[str, Any], skeleton: str) -> str:
    """Writes ``config.json``: ``run`` (a JSON-ready dict holding at least a "model" entry) with the
    skeleton's name recorded; returns the file's path."""
    if MODEL not in run:
        raise ValueError("a run configuration needs a 'model' entry")
    payload = dict(run)
    payload[SKELETON] = str(skeleton)
    path = config_path(model_dir)
    write_json(path, payload)
    return path


def read_config(model_dir: str) -> Dict[str, Any]:
    """The dict of ``config.json``.

    Raises:
      FileNotFoundError: no ``config.json`` (the message names the path).
      ValueError: the file is not a run configuration (no "model" entry).
    """
    path = config_path(model_dir)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (a model directory holds {CONFIG_FILE} and "
                                f"{FINAL_WEIGHTS}, as lcr_tf.train writes them)")
    try:
        with open(path) as f:
            run = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not JSON ({e}); a cut copy of the run folder?") from None
    if not isinstance(run, dict) or MODEL not in run:
        raise ValueError(f"{path}: no 'model' entry (expected the run configuration lcr_tf.train writes)")
    return run


def skeleton_name(run: Mapping[str, Any]) -> Optional[str]:
    """The skeleton recorded in a run's config, or None for a folder written before it was recorded."""
    name = run.get(SKELETON)
    return str(name) if name else None


def anchors_file(run: Mapping[str, Any]) -> Optional[str]:
    """The anchors file a run trained with (its "data" section, else its "flags"), or None."""
    for section in ("data", FLAGS):
        path = (run.get(section) or {}).get("anchors")
        if path:
            return str(path)
    return None
