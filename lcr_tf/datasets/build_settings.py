"""The settings of a TFRecord build, checked and described without Beam: the numeric options of
``beam_jobs.build_tfrecords`` (:func:`check_settings`), its anchors file (:func:`load_target_anchors`,
which must be in the skeleton the job writes, ``--skeleton``), the ``parameters`` block of the job's summary
(:func:`job_parameters`) and the dataset reader built from the job's command-line values and
``NAME=VALUE`` reader options (:func:`reader_from_values`). The job itself only adds the Beam pipeline,
its counters and its flags.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Sequence

from lcr_tf import datasets
from lcr_tf.contracts import features
from lcr_tf.datasets.base import DatasetReader
from lcr_tf.datasets.labelling import DEFAULT_TARGET, MAX_JOINT_RADIUS_M, target_skeleton

#: The job's flags that a reader may take as constructor options (see :func:`reader_from_values`).
READER_FLAGS = ("input", "split", "protocol", "num_images", "seed", "poses", "body_model_poses")
#: Of :data:`READER_FLAGS`, those that exist only for readers: giving one a reader does not use is an error.
READER_ONLY_FLAGS = ("input", "split", "protocol", "num_images", "seed")


def check_settings(num_shards, min_joints, max_outside, skeleton=DEFAULT_TARGET.name) -> None:
    """Raises ValueError (naming the option) unless ``skeleton`` is one of
    :data:`lcr_tf.datasets.labelling.TARGETS`, ``num_shards`` >= 1 is an integer, ``min_joints`` an
    integer in [2, J] (joints of ``skeleton``) and ``max_outside`` >= 0 (image widths/heights)."""
    target = target_skeleton(skeleton)
    if int(num_shards) != num_shards or num_shards < 1:
        raise ValueError(f"num_shards must be a positive integer, got {num_shards!r}")
    if int(min_joints) != min_joints or not 2 <= min_joints <= target.num_joints:
        raise ValueError(f"min_joints must be an integer in [2, {target.num_joints}] ({target.name} joints), "
                         f"got {min_joints!r}")
    if not max_outside >= 0:
        raise ValueError(f"max_outside must be >= 0, got {max_outside!r}")


def load_target_anchors(anchors: Optional[str], skeleton=DEFAULT_TARGET.name):
    """The :class:`lcr_tf.poses.anchors.AnchorSet` of ``anchors.npz`` (None: no anchor set, the records'
    classes are left unassigned); ValueError unless it is in ``skeleton``, and the loader's error on a
    missing or malformed file."""
    if anchors is None:
        return None
    from lcr_tf.poses import anchors as anchors_lib
    anchor_set = anchors_lib.load(anchors)
    if anchor_set.skeleton.name != target_skeleton(skeleton).name:
        raise ValueError(f"{anchors}: anchors are in skeleton {anchor_set.skeleton.name!r}, the job writes "
                         f"{target_skeleton(skeleton).name!r} (--skeleton)")
    return anchor_set


def check_poses_file(poses: Optional[str]) -> None:
    """FileNotFoundError when a ``poses.npz`` is named but does not exist (None: the body model's poses)."""
    if poses and not os.path.exists(poses):
        raise FileNotFoundError(f"--poses file {poses} does not exist")


def job_parameters(reader: DatasetReader, output: str, num_shards: int, anchors: Optional[str],
                   num_anchors: Optional[int], poses: Optional[str], min_joints: int, pseudo_gt_views: int,
                   pseudo_gt_seed: int, max_outside: float, body_model_poses: int,
                   skeleton: str = DEFAULT_TARGET.name) -> Dict[str, Any]:
    """The summary's ``parameters``: the reader and its options, the outputs, the records' skeleton and
    every labelling setting (``poses`` names the body-model draw when no file is given; ``anchors`` and
    ``num_anchors`` are None for a build without anchors)."""
    return {
        "dataset": reader.name, "reader_options": reader.describe(), "source_skeleton": reader.skeleton,
        "skeleton": target_skeleton(skeleton).name,
        "output": output, "num_shards": num_shards, "anchors": anchors,
        "num_anchors": num_anchors, "poses": poses or f"body_model.sample_poses({body_model_poses}, "
                                                      f"seed={pseudo_gt_seed})",
        "min_joints": int(min_joints), "pseudo_gt_views": int(pseudo_gt_views),
        "pseudo_gt_seed": int(pseudo_gt_seed), "max_outside": float(max_outside),
        "max_joint_radius_m": MAX_JOINT_RADIUS_M, "schema_version": features.SCHEMA_VERSION,
    }


def reader_from_values(name: str, available: Mapping[str, Any], present: Sequence[str],
                       reader_option: Sequence[str]) -> DatasetReader:
    """The reader ``name`` built from the job's values.

    Args:
      name: a registered reader name (:func:`lcr_tf.datasets.reader_names`).
      available: {flag: value} of :data:`READER_FLAGS`; the reader takes those its constructor names.
      present: the flags given on the command line; one of :data:`READER_ONLY_FLAGS` that the reader does
        not take is an error.
      reader_option: ``NAME=VALUE`` strings (:func:`lcr_tf.datasets.parse_reader_options`).
    Raises:
      KeyError: an unknown reader. ValueError: an unused flag or a bad reader option.
    """
    cls = datasets.reader_class(name)
    options = datasets.reader_options(name, available)
    unused = [n for n in READER_ONLY_FLAGS if n in present and n not in options]
    if unused:
        raise ValueError(f"dataset {name!r} does not use {', '.join('--' + n for n in unused)}")
    options.update(datasets.parse_reader_options(cls, reader_option))
    return datasets.get_reader(name, **options)
