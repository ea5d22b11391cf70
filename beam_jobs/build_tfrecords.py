r"""Beam job: a dataset's annotated images -> TFRecord shards of ``tf.train.Example``
(:mod:`lcr_tf.contracts.features`).

Usage::

    python -m beam_jobs.build_tfrecords --dataset=NAME --input=... --poses=poses.npz \
        --anchors=anchors.npz --output=PREFIX [--skeleton=lcr13|mupots14] [--num_shards=8] [--min_joints=4] \
        [--reader_option=NAME=VALUE ...] [any Beam pipeline option]
    python -m beam_jobs.build_tfrecords --dataset=synthetic --num_images=1000 --seed=0 \
        --anchors=anchors.npz --output=data/synthetic

Writes ``PREFIX-00000-of-0000N.tfrecord`` ... (one Example per image, all N shards always exist),
``PREFIX-rejected.jsonl`` (one JSON line per rejected image or person, with the reason) and
``PREFIX-summary.json`` (the parameters and the counts of every outcome, from the Beam metrics) and,
last, ``PREFIX-manifest.json`` (records, bytes and SHA-256 of every shard and the records' skeleton,
:mod:`lcr_tf.contracts.shard_manifest`; local outputs only), which the trainer and
``python -m lcr_tf.data.verify`` check the shards against.

``--skeleton`` chooses the joint set of the records (``lcr13``, the default, or ``mupots14``, to fine-tune
to MuPoTS-3D's skeleton; every record says which in ``schema/skeleton``). ``--anchors`` must be in that
skeleton; without ``--anchors`` every person's class is written as 0, "not assigned" (the trainer always
recomputes the classes from its own anchor set): the way to build records of a skeleton whose anchor-poses
are then clustered from them (``beam_jobs.anchor_poses --poses_from_records``). People without the
dataset's own 3D need pseudo ground truth from the LCR-13 corpus, which has no head top or MuPoTS neck:
in ``mupots14`` they are rejected (``pseudo_gt_refused``, the reason names the missing joints).
Without ``--runner``, the job runs on the DirectRunner with ``--direct_running_mode=multi_processing
--direct_num_workers=2``; any other runner's options pass through unchanged. Worker processes import
``lcr_tf`` and ``beam_jobs``: install the package (``pip install -e .``) or run from the repository root.

The steps (one DoFn each; every DoFn holds only small options when pickled, heavy state is built in the
worker, once per process). What each step does to a record is Beam-free code of
:mod:`lcr_tf.datasets.labelling` (checks, conversion, pseudo ground truth) and :mod:`lcr_tf.datasets.records`
(encoding, shards, summary); the DoFns add the Beam counters and the rejected output:

1. ``Create(keys)`` from :meth:`lcr_tf.datasets.base.DatasetReader.list_items`, then ``Reshuffle`` so
   that reading spreads over the workers.
2. :class:`ReadImageFn`: ``reader.read(key)``; the image bytes are read and fully decoded (the decoder
   the trainer uses, ``tf.io.decode_jpeg`` / ``decode_png``) to check the file and measure it. A bad
   record, a missing file, a corrupt or non-JPEG/PNG image, or a size that disagrees with the annotation
   rejects the image. The record's ignore regions are clipped to the image (:func:`clip_ignore_regions`;
   those left empty are dropped and counted; malformed ones reject the image).
3. :class:`ConvertPeopleFn`: checks each person (array shapes, NaN in an annotated joint, an annotated
   joint absurdly far outside the image, non-finite or impossible 3D, fewer than ``min_joints``
   annotated joints, all joints at one point) and rejects the bad ones; converts the rest to ``--skeleton``
   (:func:`lcr_tf.contracts.skeleton.convert` with the annotated mask, then with the visible mask); re-centres
   given 3D poses and completes their missing 2D joints from their own 3D
   (:func:`lcr_tf.datasets.labelling.complete_from_own_3d`).
4. :class:`PseudoGtFn`: people without 3D get the pseudo ground truth of eq 9
   (:class:`lcr_tf.poses.pseudo_gt.PoseDatabase`, one per worker process, searched once per image with all of
   its people); their missing 2D joints are completed from the match, and the match distance is kept.
5. :class:`EncodeFn`: full body = any lower-body joint annotated (Sec 4.2), anchor class
   (:meth:`lcr_tf.poses.anchors.AnchorSet.assign_classes`), pose box (:func:`lcr_tf.contracts.geometry.pose_box` of the
   completed 2D), the ignore regions, :func:`lcr_tf.contracts.features.encode_example`, keyed by shard.
6. :class:`WriteShardFn`: writes each shard.

An image without a usable person left is rejected (``no_usable_person``), unless its reader marked it
:attr:`~lcr_tf.datasets.base.ImageRecord.negative` (no person by intent: a background, or only crowds,
which stay ignore regions): such an image is written with P = 0, a pure negative for training and
evaluation, and counted in the summary's ``images.written_empty``. A record marked negative that lists
people is a reader bug and is rejected (``read_error``). Every listed key ends either written or in
``rejected.jsonl``; the summary's ``check`` field says whether the counts add up.

Deterministic output. Beam does not order elements, so the job does not use ``WriteToTFRecord``: each
Example goes to shard ``md5(image_id) mod N`` (a hash that, unlike Python's ``hash``, is the same in every
process), the shards are grouped with ``GroupByKey``, and :class:`WriteShardFn` writes each shard's
Examples sorted by image id with ``tf.io.TFRecordWriter`` (to a temporary name, then renamed, so a
retried bundle cannot leave half a shard). Examples are serialized with ``deterministic=True`` (protobuf
map fields otherwise have no fixed order). The same inputs, flags and seeds therefore give byte-identical
shards, whatever the runner, worker count or bundle sizes. The price: one worker holds a whole shard in
memory while writing it, so choose ``--num_shards`` to keep shards to a few hundred MB. Pseudo ground
truth is searched per image (the batch is the image's people) for the same reason: a query's float32
scores may differ in the last bits with the batch it is scored in, and batches formed across images
would depend on how Beam bundles them.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import sys
import threading
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

from beam_jobs import runner_options
from lcr_tf import datasets
from lcr_tf.contracts import shard_manifest
from lcr_tf.datasets import build_settings, labelling, records
from lcr_tf.datasets.base import DatasetReader
from lcr_tf.datasets.corpus import DEFAULT_BODY_MODEL_POSES, load_corpus_poses
from lcr_tf.datasets.labelling import DEFAULT_MAX_OUTSIDE, DEFAULT_TARGET, PSEUDO_GT_SKELETON, TARGETS, ImageItem
from lcr_tf.poses import pose_corpus, pseudo_gt

NAMESPACE = "build_tfrecords"
REJECTED = "rejected"
DEFAULT_NUM_SHARDS = 8


# --------------------------------------------------------------------------- per-process state

_SHARED: Dict[tuple, Any] = {}
_SHARED_LOCK = threading.Lock()


def _shared(key: tuple, build: Callable[[], Any]) -> Any:
    """One object per worker process and key, built on first use (thread-safe)."""
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = build()
        return _SHARED[key]


def _file_key(path: str) -> tuple:
    stat = os.stat(path)
    return os.path.abspath(path), stat.st_mtime_ns, stat.st_size


# --------------------------------------------------------------------------- DoFns


class ReadImageFn(beam.DoFn):
    """Key -> :class:`ImageItem` (record read, image checked), or a rejection on ``rejected``."""

    def __init__(self, reader: DatasetReader):
        super().__init__()
        self.reader = reader

    def setup(self):
        self.reader.setup()

    def process(self, key):
        name = self.reader.key_name(key)
        dataset = self.reader.name

        def reject(code, reason, image_id=None, persons=0):
            Metrics.counter(NAMESPACE, f"images_rejected_{code}").inc()
            Metrics.counter(NAMESPACE, "persons_dropped_with_image").inc(persons)
            return beam.pvalue.TaggedOutput(REJECTED, labelling.image_rejection(name, image_id, dataset, code, reason,
                                                                      persons))

        try:
            record = labelling.read_record(self.reader, key)
        except labelling.ImageError as e:
            yield reject(e.code, e.reason)
            return
        Metrics.counter(NAMESPACE, "images_read").inc()
        persons = len(record.people)
        Metrics.counter(NAMESPACE, "persons_read").inc(persons)
        Metrics.counter(NAMESPACE, "ignore_regions_read").inc(labelling.num_regions(record.ignore_regions))
        try:
            item = labelling.image_item(record, name, dataset)
        except labelling.ImageError as e:
            yield reject(e.code, e.reason, str(record.image_id), persons)
            return
        yield item


def _reject_unusable(item: ImageItem):
    """The image rejection when no person of ``item`` is left."""
    Metrics.counter(NAMESPACE, "images_rejected_no_usable_person").inc()
    reason = ("the annotation has no person" if item.num_people == 0
              else f"none of its {item.num_people} people is usable (see their lines)")
    return beam.pvalue.TaggedOutput(REJECTED, labelling.image_rejection(item.key, item.image_id, item.dataset,
                                                              "no_usable_person", reason))


class ConvertPeopleFn(beam.DoFn):
    """Validates people and converts them to the target skeleton (:func:`convert_people`)."""

    def __init__(self, min_joints: int = pseudo_gt.DEFAULT_MIN_JOINTS, max_outside: float = DEFAULT_MAX_OUTSIDE,
                 skeleton: str = DEFAULT_TARGET.name):
        super().__init__()
        self.min_joints = int(min_joints)
        self.max_outside = float(max_outside)
        self.skeleton = str(skeleton)

    def process(self, item: ImageItem):
        try:
            problems = labelling.convert_people(item, self.min_joints, self.max_outside, self.skeleton)
        except KeyError as e:
            Metrics.counter(NAMESPACE, "images_rejected_unknown_skeleton").inc()
            Metrics.counter(NAMESPACE, "persons_dropped_with_image").inc(item.num_people)
            yield beam.pvalue.TaggedOutput(REJECTED, labelling.image_rejection(
                item.key, item.image_id, item.dataset, "unknown_skeleton", str(e.args[0]), item.num_people))
            return
        item.record = None
        for index, person_id, code, reason in problems:
            Metrics.counter(NAMESPACE, f"persons_rejected_{code}").inc()
            yield beam.pvalue.TaggedOutput(REJECTED, labelling.person_rejection(item, index, person_id, code, reason))
        if item.person_index.size == 0 and not item.negative:
            yield _reject_unusable(item)
            return
        yield item


class PseudoGtFn(beam.DoFn):
    """Pseudo ground-truth 3D (eq 9) and 2D completion for the people without 3D.

    The :class:`lcr_tf.poses.pseudo_gt.PoseDatabase` is built from the corpus once per worker process, when the
    first person without 3D arrives (a job whose people all have 3D never builds it).
    """

    def __init__(self, poses: Optional[str], num_views: int = pseudo_gt.DEFAULT_NUM_VIEWS, seed: int = 0,
                 min_joints: int = pseudo_gt.DEFAULT_MIN_JOINTS,
                 body_model_poses: int = DEFAULT_BODY_MODEL_POSES):
        super().__init__()
        self.poses = poses
        self.num_views = int(num_views)
        self.seed = int(seed)
        self.min_joints = int(min_joints)
        self.body_model_poses = int(body_model_poses)
        self._database = None

    def setup(self):
        self._database = None

    def database(self) -> pseudo_gt.PoseDatabase:
        if self._database is None:
            source = _file_key(self.poses) if self.poses else ("body_model", self.body_model_poses)
            key = ("pose_database", source, self.num_views, self.seed, self.min_joints)
            self._database = _shared(key, lambda: pseudo_gt.PoseDatabase(
                load_corpus_poses(self.poses, self.body_model_poses, self.seed), self.num_views, self.seed,
                min_joints=self.min_joints))
        return self._database

    def process(self, item: ImageItem):
        refused = labelling.pseudo_ground_truth(item, self.database)
        for person, person_id, reason in refused:
            Metrics.counter(NAMESPACE, "persons_rejected_pseudo_gt_refused").inc()
            yield beam.pvalue.TaggedOutput(REJECTED, labelling.person_rejection(item, person, person_id,
                                                                      "pseudo_gt_refused", reason))
        if refused and item.person_index.size == 0:
            yield _reject_unusable(item)
            return
        yield item


class EncodeFn(beam.DoFn):
    """Anchor classes, boxes and encoding -> ``(shard, (image_id, key, num_people, serialized, stats))``
    (``stats``: :func:`person_statistics`)."""

    def __init__(self, anchors: Optional[str], num_shards: int):
        super().__init__()
        self.anchors = anchors
        self.num_shards = int(num_shards)
        self._anchor_set = None

    def setup(self):
        from lcr_tf.poses import anchors as anchors_lib
        if self.anchors:  # none: classes left unassigned (records.encode_item)
            self._anchor_set = _shared(("anchors", _file_key(self.anchors)), lambda: anchors_lib.load(self.anchors))

    def process(self, item: ImageItem):
        try:
            serialized, values = records.encode_item(item, self._anchor_set)
        except ValueError as e:
            Metrics.counter(NAMESPACE, "images_rejected_encode_error").inc()
            Metrics.counter(NAMESPACE, "persons_dropped_with_image").inc(item.person_index.size)
            yield beam.pvalue.TaggedOutput(REJECTED, labelling.image_rejection(
                item.key, item.image_id, item.dataset, "encode_error", str(e), item.person_index.size))
            return
        yield records.shard_of(item.image_id, self.num_shards), (item.image_id, item.key, int(item.person_index.size),
                                                         serialized, records.person_statistics(item, values))


class WriteShardFn(beam.DoFn):
    """``(shard, [entries])`` -> the shard file, Examples sorted by image id; yields its summary.

    Of several records with one image id (a reader bug), the first in (key, bytes) order is written and
    the others are rejected as ``duplicate_image_id``. ``None`` entries only make empty shards exist.
    """

    def __init__(self, prefix: str, num_shards: int, dataset: str = ""):
        super().__init__()
        self.dataset = dataset
        self.prefix = prefix
        self.num_shards = int(num_shards)

    def process(self, element):
        import tensorflow as tf
        shard, entries = element
        entries = sorted((e for e in entries if e is not None), key=lambda e: e[:4])
        path = records.shard_path(self.prefix, shard, self.num_shards)
        temp = f"{path}.tmp-{uuid.uuid4().hex}"
        written = people = empty = 0
        last_id = None
        with tf.io.TFRecordWriter(temp) as writer:
            for image_id, key, num_people, serialized, stats in entries:
                if image_id == last_id:
                    Metrics.counter(NAMESPACE, "images_rejected_duplicate_image_id").inc()
                    Metrics.counter(NAMESPACE, "persons_dropped_with_image").inc(num_people)
                    yield beam.pvalue.TaggedOutput(REJECTED, labelling.image_rejection(
                        key, image_id, self.dataset, "duplicate_image_id",
                        "another record has this image id; the first in key order was written", num_people))
                    continue
                writer.write(serialized)
                for name, value in stats["counters"]:
                    Metrics.counter(NAMESPACE, name).inc(value)
                for d in stats["distances_micro"]:
                    Metrics.distribution(NAMESPACE, "pseudo_gt_distance_micro").update(d)
                last_id = image_id
                written += 1
                people += num_people
                empty += num_people == 0
        tf.io.gfile.rename(temp, path, overwrite=True)
        Metrics.counter(NAMESPACE, "images_written").inc(written)
        Metrics.counter(NAMESPACE, "images_written_empty").inc(empty)
        Metrics.counter(NAMESPACE, "persons_written").inc(people)
        yield {"shard": shard, "path": path, "images": written, "images_empty": empty, "persons": people}


def write_rejected(lines: List[Dict[str, Any]], path: str) -> str:
    """Writes the rejection lines, sorted by key (persons of an image before the image), as JSON lines."""
    from apache_beam.io.filesystems import FileSystems
    with FileSystems.create(path) as f:
        for line in records.rejection_lines(lines):
            f.write(line.encode("utf-8"))
    return path


# --------------------------------------------------------------------------- pipeline


@dataclasses.dataclass(frozen=True)
class JobOutputs:
    """What :func:`build_pipeline` adds: the number of listed keys and the files it will write."""

    num_listed: int
    shards: Tuple[str, ...]
    rejected: str
    summary: str
    parameters: Dict[str, Any]


def build_pipeline(pipeline: beam.Pipeline, reader: DatasetReader, output: str, anchors: Optional[str],
                   poses: Optional[str] = None, num_shards: int = DEFAULT_NUM_SHARDS,
                   min_joints: int = pseudo_gt.DEFAULT_MIN_JOINTS, pseudo_gt_views: int = pseudo_gt.DEFAULT_NUM_VIEWS,
                   pseudo_gt_seed: int = 0, max_outside: float = DEFAULT_MAX_OUTSIDE,
                   body_model_poses: int = DEFAULT_BODY_MODEL_POSES, keys: Optional[Sequence] = None,
                   skeleton: str = DEFAULT_TARGET.name) -> JobOutputs:
    """Adds the job to ``pipeline`` (see the module docstring).

    Args:
      reader: the dataset reader; its keys come from ``reader.list_items()`` unless ``keys`` is given.
      output: the output prefix (shards, ``-rejected.jsonl``; the summary is written by :func:`run`).
      anchors: ``anchors.npz`` in ``skeleton``; None: every class is written unassigned (0).
      poses: ``poses.npz`` (LCR-13) for the pseudo ground truth; None: the body model's
        ``body_model_poses`` poses drawn with ``pseudo_gt_seed``.
      num_shards: N >= 1 output shards.
      min_joints: fewest annotated joints of ``skeleton`` per person (>= 2).
      pseudo_gt_views, pseudo_gt_seed: the database's views per pose and seed.
      max_outside: see :func:`convert_people`.
      skeleton: the records' joint set, one of :data:`lcr_tf.datasets.labelling.TARGETS`.
    Returns:
      :class:`JobOutputs`.
    Raises:
      ValueError: a bad parameter (named), or a reader whose records the job cannot use
        (:meth:`~lcr_tf.datasets.base.DatasetReader.job_refusal`). FileNotFoundError: a missing anchors or
        poses file.
    """
    build_settings.check_settings(num_shards, min_joints, max_outside, skeleton)
    refusal = reader.job_refusal()
    if refusal:
        raise ValueError(refusal)
    anchor_set = build_settings.load_target_anchors(anchors, skeleton)  # fail at construction on a bad file
    build_settings.check_poses_file(poses)
    keys = list(reader.list_items() if keys is None else keys)
    num_shards = int(num_shards)
    parameters = build_settings.job_parameters(reader, output, num_shards, anchors,
                                               None if anchor_set is None else anchor_set.num_anchors,
                                               poses, min_joints, pseudo_gt_views, pseudo_gt_seed,
                                               max_outside, body_model_poses, skeleton)

    read = (pipeline
            | "ListKeys" >> beam.Create(keys)
            | "SpreadKeys" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(ReadImageFn(reader)).with_outputs(REJECTED, main="items"))
    converted = read.items | "Convert" >> beam.ParDo(ConvertPeopleFn(min_joints, max_outside, skeleton)).with_outputs(
        REJECTED, main="items")
    completed = converted.items | "PseudoGt" >> beam.ParDo(PseudoGtFn(
        poses, pseudo_gt_views, pseudo_gt_seed, min_joints, body_model_poses)).with_outputs(REJECTED, main="items")
    encoded = completed.items | "Encode" >> beam.ParDo(EncodeFn(anchors, num_shards)).with_outputs(
        REJECTED, main="examples")
    every_shard = pipeline | "ShardIds" >> beam.Create([(s, None) for s in range(num_shards)])
    written = ((encoded.examples, every_shard)
               | "WithEmptyShards" >> beam.Flatten()
               | "GroupShards" >> beam.GroupByKey()
               | "WriteShards" >> beam.ParDo(WriteShardFn(output, num_shards, reader.name)).with_outputs(
                   REJECTED, main="shards"))
    _ = ((read[REJECTED], converted[REJECTED], completed[REJECTED], encoded[REJECTED], written[REJECTED])
         | "AllRejected" >> beam.Flatten()
         | "GatherRejected" >> beam.combiners.ToList()
         | "WriteRejected" >> beam.Map(write_rejected, records.rejected_path(output)))
    return JobOutputs(len(keys), tuple(records.shard_paths(output, num_shards)), records.rejected_path(output),
                      records.summary_path(output), parameters)


# --------------------------------------------------------------------------- summary


def query_counts(result) -> Tuple[Dict[str, int], Dict[str, Dict[str, float]]]:
    """The job's counters {name: value} and distributions {name: {count, sum, min, max}} from a finished
    PipelineResult (committed values where the runner has them, else attempted)."""
    metrics = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))

    def value(m):
        return m.committed if m.committed is not None else m.attempted

    counters: Dict[str, int] = collections.Counter()
    for m in metrics["counters"]:
        counters[m.key.metric.name] += int(value(m))
    distributions = {}
    for m in metrics["distributions"]:
        d = value(m)
        if d is not None and d.count:
            distributions[m.key.metric.name] = {"count": d.count, "sum": d.sum, "min": d.min, "max": d.max}
    return dict(counters), distributions


def run(reader: DatasetReader, output: str, anchors: Optional[str], pipeline_args: Sequence[str] = (),
        **kwargs) -> Dict[str, Any]:
    """Builds and runs the job, waits for it, writes ``PREFIX-summary.json`` and returns the summary.

    ``pipeline_args`` are Beam pipeline options (``[]``: Beam's defaults, the in-process DirectRunner);
    ``kwargs`` go to :func:`build_pipeline`.
    """
    import tensorflow as tf
    directory = os.path.dirname(output)
    if directory:
        tf.io.gfile.makedirs(directory)
    pipeline = beam.Pipeline(options=runner_options.pipeline_options(pipeline_args))
    outputs = build_pipeline(pipeline, reader, output, anchors, **kwargs)
    result = pipeline.run()
    result.wait_until_finish()
    counters, distributions = query_counts(result)
    parameters = dict(outputs.parameters, pipeline_args=list(pipeline_args))
    summary = records.summarise(counters, distributions, outputs.num_listed, parameters, outputs.shards)
    local = "://" not in output
    if local:
        summary["manifest"] = shard_manifest.manifest_path(output)
    records.write_summary(outputs.summary, summary)
    if local:
        # Last: a manifest says the shards beside it are whole (lcr_tf.contracts.shard_manifest).
        shard_manifest.write(output, outputs.shards, skeleton=parameters["skeleton"])
    return summary


# --------------------------------------------------------------------------- command line

def pipeline_arguments(beam_args: Sequence[str]) -> List[str]:
    """The Beam options to run with: ``beam_args``, plus, when they name no runner or a local one, the
    local runner with two worker processes (:mod:`beam_jobs.runner_options`)."""
    return runner_options.pipeline_arguments(beam_args, multi_process=True)


def _define_flags(flag_values) -> None:
    # Defined on demand in a private FlagValues, so that importing this module never collides with flags
    # of the same name elsewhere and unknown flags can pass to Beam.
    from absl import flags
    flags.DEFINE_enum("dataset", None, datasets.reader_names(), "Dataset reader (lcr_tf/datasets).",
                      flag_values=flag_values)
    flags.DEFINE_string("input", None, "The dataset's files (a folder, annotation file or glob; see its "
                        "reader). Not used by the synthetic dataset.", flag_values=flag_values)
    flags.DEFINE_string("split", None, "Which part of the dataset to read, for the datasets that have parts "
                        "(e.g. coco: train or val; mpii: train, test, val or train_minus_val; muco: train, "
                        "train_minus_val or val; h36m: train or "
                        "test of --protocol); see the reader.", flag_values=flag_values)
    flags.DEFINE_integer("protocol", None, "h36m: evaluation protocol 1, 2 or 3 (which subjects, cameras and "
                         "frames make the train and test splits).", lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer("num_images", None, "synthetic: number of images to render.", lower_bound=1,
                         flag_values=flag_values)
    flags.DEFINE_integer("seed", None, "synthetic: seed of the rendered images (image i of a seed is "
                         "always the same).", lower_bound=0, flag_values=flag_values)
    flags.DEFINE_string("poses", None, "3D pose corpus poses.npz (LCR-13, from beam_jobs.mocap_poses): the "
                        "pseudo ground-truth database, and the synthetic dataset's poses. Default: poses "
                        "sampled from lcr_tf.poses.body_model.", flag_values=flag_values)
    flags.DEFINE_string("anchors", None, "anchors.npz in --skeleton (from beam_jobs.anchor_poses): gives each "
                        "person's anchor class. Without it every class is written as 0, not assigned: the "
                        "trainer assigns the classes from its own anchors (records of a skeleton whose "
                        "anchors are to be clustered from them).", flag_values=flag_values)
    flags.DEFINE_enum("skeleton", DEFAULT_TARGET.name, list(TARGETS), "Joint set of the records: lcr13 (the "
                      "package's models) or mupots14 (MuPoTS-3D's 14 joints, for fine-tuning to them; people "
                      "without the dataset's own 3D are rejected then, as pseudo ground truth comes from the "
                      f"{PSEUDO_GT_SKELETON.name} pose corpus).", flag_values=flag_values)
    flags.DEFINE_string("output", None, "Output prefix: PREFIX-SSSSS-of-NNNNN.tfrecord, PREFIX-rejected.jsonl, "
                        "PREFIX-summary.json.", flag_values=flag_values)
    flags.DEFINE_integer("num_shards", DEFAULT_NUM_SHARDS, "Number of TFRecord shards; a shard is held in "
                         "one worker's memory while written.", lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer("min_joints", pseudo_gt.DEFAULT_MIN_JOINTS, "A person needs at least this many "
                         "annotated joints of --skeleton (fewer say too little about the 3D pose).",
                         lower_bound=2, flag_values=flag_values)
    flags.DEFINE_integer("pseudo_gt_views", pseudo_gt.DEFAULT_NUM_VIEWS, "Random views per corpus pose in "
                         "the pseudo ground-truth database.", lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer("pseudo_gt_seed", 0, "Seed of the database's views (and of the body-model poses "
                         "when --poses is not given).", lower_bound=0, flag_values=flag_values)
    flags.DEFINE_integer("body_model_poses", DEFAULT_BODY_MODEL_POSES, "Corpus size when --poses is not "
                         "given.", lower_bound=1, flag_values=flag_values)
    flags.DEFINE_float("max_outside", DEFAULT_MAX_OUTSIDE, "Reject a person with an annotated joint more "
                       "than this many image widths/heights outside the image.", lower_bound=0.0,
                       flag_values=flag_values)
    flags.DEFINE_multi_string("reader_option", [], "NAME=VALUE option of the dataset reader (repeatable), "
                              "e.g. --reader_option=max_people=3.", flag_values=flag_values)


def _usage(fv) -> str:
    return (f"{__doc__}\nDatasets: {', '.join(datasets.reader_names())}\n\nFlags:\n{fv.get_help()}\n\n"
            "Other flags are passed to Beam as pipeline options.")


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parsed = runner_options.parse_job_flags(list(sys.argv if argv is None else argv), _define_flags, _usage,
                                            ("dataset", "output"))
    if isinstance(parsed, int):
        return parsed
    fv, beam_args = parsed
    name = fv["dataset"].value
    available = {n: fv[n].value for n in build_settings.READER_FLAGS}
    present = [n for n in build_settings.READER_FLAGS if fv[n].present]
    try:
        reader = build_settings.reader_from_values(name, available, present, fv["reader_option"].value)
        if fv["poses"].value:
            # Checked here too: inside the workers a bad corpus would surface as a worker's traceback.
            pose_corpus.load(fv["poses"].value, skeleton=PSEUDO_GT_SKELETON.name)
        summary = run(reader, fv["output"].value, fv["anchors"].value, pipeline_arguments(beam_args),
                      poses=fv["poses"].value, num_shards=fv["num_shards"].value,
                      min_joints=fv["min_joints"].value, pseudo_gt_views=fv["pseudo_gt_views"].value,
                      pseudo_gt_seed=fv["pseudo_gt_seed"].value, max_outside=fv["max_outside"].value,
                      body_model_poses=fv["body_model_poses"].value, skeleton=fv["skeleton"].value)
    except (KeyError, ValueError, FileNotFoundError) as e:
        print(f"build_tfrecords: error: {e}", file=sys.stderr)
        return 1
    images = summary["images"]
    print(f"{images['written']} of {images['listed']} images written to {fv['output'].value}-*{records.SHARD_SUFFIX} "
          f"({summary['persons']['written']} people, {images['written_empty']} images without people); "
          f"{images['rejected']} images rejected "
          f"{images['rejected_by_reason']}, {summary['persons']['rejected']} people rejected "
          f"{summary['persons']['rejected_by_reason']}; see {records.summary_path(fv['output'].value)}")
    return 0 if summary["check"]["images_accounted"] else 1


if __name__ == "__main__":
    # Run the module under its import name, not ``__main__``: the elements (ImageItem) are pickled by
    # reference to their class, which worker processes can import only from ``beam_jobs.build_tfrecords``.
    from beam_jobs import build_tfrecords as _job
    sys.exit(_job.main())
