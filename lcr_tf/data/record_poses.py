"""The 3D poses of TFRecord shards as a pose corpus: anchor-poses clustered in the records' own skeleton.

``beam_jobs.anchor_poses --poses_from_records=GLOB`` clusters these instead of a MoCap ``poses.npz``. That
is how anchor-poses of a skeleton without a MoCap corpus come about: MuPoTS-3D's 14 joints have a head top
and a neck that the LCR-13 corpus lacks, so records built with ``--skeleton=mupots14`` (from a dataset
with 3D, such as MuCo-3DHP) hold the only 3D poses of that skeleton.

Every person of every record gives one pose: ``person/pose3d`` (metres, camera axes, body-centred, in
the records' ``schema/skeleton``), with ``mocap_only`` only those whose 3D the dataset gave
(``person/pose3d_source`` MoCap; the others are pseudo ground truth, i.e. corpus poses already). The
corpus's ``trial`` is ``<shard file name>:<image id>`` and ``frame`` the person's index in the image.
"""

from __future__ import annotations

import os
from typing import Sequence, Union

import numpy as np
import tensorflow as tf

from lcr_tf.contracts import features
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.data import pipeline
from lcr_tf.poses import pose_corpus


def poses_from_records(file_pattern: Union[str, Sequence[str]], mocap_only: bool = False) -> pose_corpus.PoseCorpus:
    """The pose corpus of the people of the shards ``file_pattern`` (a glob, comma-separated globs or a
    list; the build job's files beside the shards are skipped).

    Returns:
      A :class:`lcr_tf.poses.pose_corpus.PoseCorpus`: ``poses3d`` (N, J, 3) float32 metres, camera axes,
      body-centred; metadata ``skeleton`` (the records'), ``units`` "m", ``source`` "records",
      ``records`` (the pattern), ``num_images`` and ``num_shards``.
    Raises:
      FileNotFoundError: no shard matches. ValueError: shards of two skeletons (naming a shard of each),
      no person to take, or poses that are not in metres (:func:`lcr_tf.contracts.skeleton.check_metres`).
    """
    files = pipeline.list_shards(file_pattern)
    poses, trials, frames = [], [], []
    skeleton, first_file, images = None, None, 0
    for path in files:
        name = os.path.basename(path)
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            example = features.decode_example_numpy(raw)
            images += 1
            found = example[features.SKELETON].decode()
            if skeleton is None:
                skeleton, first_file = found, path
            elif found != skeleton:
                raise ValueError(f"{path}: image {example[features.IMAGE_ID].decode()!r} is in skeleton {found!r} "
                                 f"but {first_file} is in {skeleton!r}: cluster the shards of one skeleton")
            keep = np.ones(example[features.POSE3D].shape[0], bool)
            if mocap_only:
                keep = example[features.POSE3D_SOURCE] == features.POSE3D_MOCAP
            rows = np.flatnonzero(keep)
            poses.append(example[features.POSE3D][rows])
            trials += [f"{name}:{example[features.IMAGE_ID].decode()}"] * rows.size
            frames.append(rows)
    count = sum(p.shape[0] for p in poses)
    if count == 0:
        which = "person with the dataset's own 3D" if mocap_only else "person"
        raise ValueError(f"the {len(files)} shard(s) of {file_pattern!r} ({images} images) hold no {which}")
    poses3d = np.concatenate(poses).astype(np.float32)
    skeleton_lib.check_metres(poses3d, skeleton, f"poses3d of {file_pattern!r}")
    metadata = dict(skeleton=skeleton, units="m", source="records", records=str(file_pattern),
                    num_images=images, num_shards=len(files), mocap_only=bool(mocap_only))
    return pose_corpus.PoseCorpus(poses3d, np.asarray(trials), np.concatenate(frames), metadata)
