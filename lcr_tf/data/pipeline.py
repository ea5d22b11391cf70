"""The training and evaluation input pipeline: TFRecord shards -> batches of images and padded people.

:func:`make_dataset` reads the shards written by ``beam_jobs.build_tfrecords`` (schema:
:mod:`lcr_tf.contracts.features`) and yields dicts of batched tensors, B images of S x S pixels, at most
``max_people`` people and ``max_ignore`` ignore regions each (J joints in the order of the pipeline's
skeleton: the anchors' when ``anchors`` are given, else ``skeleton``, LCR-13 by default; every record
must hold that skeleton, see :func:`lcr_tf.data.decoder.decode`; keys are the constants of
:mod:`lcr_tf.data.decoder` plus :data:`PERSON_MASK`, :data:`IGNORE_MASK` and the counters below):

=========================  =====================  ================================================
key                        shape, dtype           meaning
=========================  =====================  ================================================
``image``                  (B, S, S, 3) float32   RGB in [0, 255]; the backbone normalises
``image_id``, ...source    (B,) string            record id and dataset name
``source_file``            (B,) string            shard of the record
``original_size``          (B, 2) int32           [height, width] of the decoded image
``intrinsics``             (B, 4) float32         fx, fy, cx, cy in output pixels (0: unknown)
``transform``              (B, 4) float32         [sx, sy, tx, ty]: original (x, y) -> output
                                                  (sx x + tx, sy y + ty); sx < 0 when flipped
``person_mask``            (B, maxP) bool         True for real people, False for padding
``boxes``                  (B, maxP, 4) float32   pose boxes xyxy output pixels (not clipped)
``pose2d``                 (B, maxP, J, 2)        output pixels, x right, y down
``pose3d``                 (B, maxP, J, 3)        metres, camera axes, body-centred
``annotated``, ``visible``,
``completed``              (B, maxP, J) bool      per-joint flags (visible: also inside the image)
``anchor_class``           (B, maxP) int32        1..2K; with anchors recomputed for everyone;
                                                  without, the record's (0: built without
                                                  anchors), -1 when flipped
``pose3d_source``          (B, maxP) int32        MoCap or pseudo ground truth
``pseudo_gt_distance``     (B, maxP) float32      eq-9 distance
``num_people``             (B,) int32             people in the record
``num_people_outside``     (B,) int32             dropped: no joint left inside the crop
``num_people_over_max``    (B,) int32             dropped: beyond ``max_people``
``ignore_boxes``           (B, maxI, 4) float32   ignore regions xyxy output pixels, clipped to the
                                                  image, x1 < x2, y1 < y2 (0 for padding)
``ignore_mask``            (B, maxI) bool         True for real regions, False for padding
=========================  =====================  ================================================

Padding people have every field zero (``anchor_class`` 0, the background class). The people of an image
are ordered by decreasing area of their box clipped to the output image; when there are more than
``max_people`` the largest are kept, the others are counted in ``num_people_over_max`` and become ignore
regions (their pose box clipped to the output image): annotated people that are not targets must not
count as false positives either. People dropped because no joint is left inside the crop do not: they
are out of the picture.

Ignore regions (maxI = ``max_ignore``) are the record's (COCO crowds, people with too few joints), moved
with the image by every geometric augmentation exactly as the pose boxes, clipped to the output image,
those left without area dropped; the people beyond ``max_people`` come first, then the record's regions
by decreasing area; beyond ``max_ignore`` the last are dropped (so the smallest of the record's regions
go first).

Images without people (P = 0) go through like any other: the training crop is then a random window of
the same scale range over the whole image; ``person_mask`` is all False.

Anchor classes: with ``anchors`` given, every person's class is recomputed from its 3D pose (mirrored
when flipped) and annotation with :func:`lcr_tf.data.augment.anchor_classes`, the rule the build job
uses, so records written with another anchor set cannot give contradictory labels; the record's class
is used only without ``anchors`` (and is then -1, "to be assigned", for a flipped person).

Training (``training=True``): file order shuffled, files interleaved, records shuffled, each image
randomly scaled and cropped around a random person (anywhere over an image without people), flipped
with ``flip_probability`` (left and right joints swapped by the skeleton's flip permutation) and colour
jittered (:mod:`lcr_tf.data.augment`; the jitter applies to the
padding too), incomplete last batch dropped. Evaluation: files in sorted order, interleaved, not
shuffled (the order is exact with ``deterministic=True``), a letterbox resize only
(:func:`lcr_tf.data.augment.letterbox`), last batch kept.

Randomness: every random draw is stateless, from a seed derived from ``seed`` and the element's position
in the stream (after shuffling and repeating), so each epoch augments differently. With
``deterministic=True`` (seed 0 when none is given) the order is fixed too (deterministic interleave,
map and shuffle), and two datasets made with the same arguments yield identical batches.
"""

from __future__ import annotations

import dataclasses
import glob as glob_lib
import os
import secrets
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from lcr_tf.contracts import batch_keys, features, shard_manifest
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.data import augment
from lcr_tf.data import decoder as dec
from lcr_tf.data import shards as shards_lib

_STEP_CROP, _STEP_FLIP, _STEP_JITTER = 0, 1, 2
# Read-ahead per open shard; TFRecordDataset's default is 256 KiB, a few images at most.
_READ_BUFFER_BYTES = 4 << 20


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """Input pipeline settings.

    Attributes:
      image_size: S, side of the square output images in pixels.
      max_people: people slots per image (maxP); more are dropped, smallest first, and become ignore
        regions.
      max_ignore: ignore-region slots per image (maxI); more are dropped, smallest record region first
        (the people beyond ``max_people`` are kept before any record region).
      batch_size: images per batch (default 4, the trainer's ``--batch_size``; it was 8 before the
        trainer's flags took their defaults from these fields).
      scale_range: (lo, hi) zoom range of the training crop (see
        :func:`lcr_tf.data.augment.random_window`): 1 fits the whole image, 2 zooms in 2x.
      flip_probability: chance of a horizontal flip in training.
      brightness: maximum brightness shift, fraction of the [0, 255] range.
      contrast, saturation: (lo, hi) factor ranges; (1, 1) disables.
      hue: maximum hue shift, fraction of the colour circle.
      pad_value: grey level of the padding outside the image content.
      shuffle_buffer: records in the training shuffle buffer (default 256, the trainer's; it was 512).
      interleave_cycle: shards read at once.
      num_epochs: passes over the data; None repeats forever.
      skip_corrupt_records: a corrupt or cut record ends its shard's pass (the rest of that shard is not
        read) and is counted in :data:`lcr_tf.data.shards.SKIPPED`; without it, the first one stops the
        pipeline with an error naming the shard, the record and its byte offset (:func:`_shard_reader`).
    """

    image_size: int = 256
    max_people: int = 8
    max_ignore: int = 16
    batch_size: int = 4
    scale_range: Tuple[float, float] = (0.75, 1.5)
    flip_probability: float = 0.5
    brightness: float = 0.1
    contrast: Tuple[float, float] = (0.8, 1.2)
    saturation: Tuple[float, float] = (0.8, 1.2)
    hue: float = 0.02
    pad_value: float = 0.0
    shuffle_buffer: int = 256
    interleave_cycle: int = 4
    num_epochs: Optional[int] = 1
    skip_corrupt_records: bool = False

    def __post_init__(self):
        def bad(field, why):
            raise ValueError(f"InputConfig.{field} {why}, got {getattr(self, field)!r}")

        for field in ("image_size", "max_people", "batch_size", "shuffle_buffer", "interleave_cycle"):
            if int(getattr(self, field)) < 1:
                bad(field, "must be >= 1")
        if int(self.max_ignore) < 0:
            bad("max_ignore", "must be >= 0")
        if self.image_size < 2:
            bad("image_size", "must be >= 2")
        if self.num_epochs is not None and self.num_epochs < 1:
            bad("num_epochs", "must be >= 1 or None")
        for field in ("scale_range", "contrast", "saturation"):
            value = getattr(self, field)
            if len(value) != 2 or not 0.0 < value[0] <= value[1]:
                bad(field, "must be (lo, hi) with 0 < lo <= hi")
            object.__setattr__(self, field, (float(value[0]), float(value[1])))
        if not 0.0 <= self.flip_probability <= 1.0:
            bad("flip_probability", "must be in [0, 1]")
        if not 0.0 <= self.brightness <= 1.0:
            bad("brightness", "must be in [0, 1]")
        if not 0.0 <= self.hue <= 0.5:
            bad("hue", "must be in [0, 0.5]")


def list_shards(file_pattern: Union[str, Sequence[str]]) -> List[str]:
    """The sorted files matching a glob (or a comma-separated list of globs, or a list of them), less the
    build job's files beside its shards (:data:`lcr_tf.contracts.shard_manifest.SIDECAR_SUFFIXES`: the
    manifest, summary and rejected lines, which a glob ``PREFIX-*`` also matches).

    Raises FileNotFoundError naming the pattern when nothing is left.
    """
    patterns = file_pattern.split(",") if isinstance(file_pattern, str) else list(file_pattern)
    matched = {f for p in patterns if p for f in glob_lib.glob(p) if os.path.isfile(f)}
    files = sorted(f for f in matched if not f.endswith(shard_manifest.SIDECAR_SUFFIXES))
    if not files:
        only = (f" (only the build job's files beside shards: {', '.join(sorted(map(os.path.basename, matched)))})"
                if matched else "")
        raise FileNotFoundError(f"no TFRecord shard matches {file_pattern!r}{only}")
    return files


def verify_shards(file_pattern: Union[str, Sequence[str]], max_records: Optional[int] = None) -> int:
    """Reads the records of the shards (eagerly, slowly; at most ``max_records`` per shard) and checks
    them (:func:`lcr_tf.data.shards.verify_shard`, what ``python -m lcr_tf.data.verify`` runs); returns
    the number of records read.

    Catches what the graph pipeline reports without a record index: a corrupt or truncated record (bad
    CRC), bytes that are not a ``tf.train.Example``, another schema version.

    Raises:
      ValueError: naming the file and the record's index (and its byte offset, or image id when readable).
    """
    total = 0
    for path in list_shards(file_pattern):
        report = shards_lib.verify_shard(path, max_records=max_records)
        if report.problem is not None:
            raise ValueError(f"{path}: {report.problem}")
        total += report.records
    return total


def _manifest_counts(files: Sequence[str]) -> Dict[str, int]:
    """Shard path -> the records its manifest lists (shards without a manifest are left out)."""
    counts, read = {}, {}
    for path in files:
        manifest = shard_manifest.manifest_of_shard(os.path.abspath(path))
        if manifest is None or not os.path.isfile(manifest):
            continue
        if manifest not in read:
            read[manifest] = shard_manifest.read(manifest)
        entry = read[manifest].get(os.path.normpath(os.path.abspath(path)))
        if entry is not None:
            counts[path] = int(entry["records"])
    return counts


def _shard_reader(files: Sequence[str], skip_corrupt: bool):
    """The function ``path -> Dataset of (path, serialized record)`` that the interleave maps over the
    shards, which knows the shard of a corrupt record.

    TensorFlow's reader stops at a corrupt or cut record with an error that gives a byte offset but no
    file. Here each shard's reader ignores its errors (``ignore_errors``: the rest of that shard is not
    read, the TFRecord framing cannot resynchronise after a bad length), and a last element counts the
    records read and their bytes with their framing (a ``scan``: graph ops, no Python per record). When
    those bytes fall short of the file's size (taken now, when the dataset is made), the reader stopped
    early: :func:`lcr_tf.data.shards.on_damage` (Python, once per pass over a damaged shard) logs the
    shard, the bad record's index and its start offset in :data:`lcr_tf.data.shards.SKIPPED`; then the
    shard's pass ends (``skip_corrupt``), or an assertion stops the pipeline with an
    ``InvalidArgumentError`` whose message names them. A cut that falls exactly between two records is
    not seen here (the file reads whole): the trainer's start check compares sizes with the manifest.
    """
    sizes = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(files), tf.string), tf.constant([os.path.getsize(f) for f in files], tf.int64)), -1)
    manifest = _manifest_counts(files)
    expected = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(files), tf.string), tf.constant([manifest.get(f, -1) for f in files], tf.int64)), -1)
    framing = tf.constant(shards_lib.FRAMING_BYTES, tf.int64)
    zero = tf.constant(0, tf.int64)

    def read(path):
        records = tf.data.TFRecordDataset(path, buffer_size=_READ_BUFFER_BYTES).ignore_errors()
        tagged = records.map(lambda r: (r, False)).concatenate(
            tf.data.Dataset.from_tensors((tf.constant(b""), True)))

        def count(state, element):
            record, last = element
            n, consumed = state
            if_record = tf.where(last, zero, tf.constant(1, tf.int64))
            length = tf.cast(tf.strings.length(record, unit="BYTE"), tf.int64)
            state = (n + if_record, consumed + if_record * (length + framing))
            return state, (record, last) + state

        def keep(record, last, n, consumed):
            size = sizes.lookup(path)

            def damaged():
                logged = tf.reshape(tf.py_function(lambda *a: shards_lib.on_damage(*a, skip=skip_corrupt),
                                                   [path, n, consumed, size, expected.lookup(path)], tf.bool), [])
                if skip_corrupt:
                    return logged
                # The line of lcr_tf.data.shards.corrupt_line, as an error of the pipeline.
                line = tf.strings.join([path, ": record ", tf.strings.as_string(n), " (byte offset ",
                                        tf.strings.as_string(consumed), ") is corrupt"])
                with tf.control_dependencies([logged]):
                    stop = tf.debugging.Assert(False, [line])
                with tf.control_dependencies([stop]):
                    return tf.identity(logged)

            return tf.cond(last, lambda: tf.cond(tf.equal(consumed, size), lambda: tf.constant(False), damaged),
                           lambda: tf.constant(True))

        return (tagged.scan((zero, zero), count).filter(keep)
                .map(lambda record, last, n, consumed: (path, record)))

    return read


def _base_seed(seed: Optional[int], deterministic: bool) -> int:
    if seed is not None:
        return int(seed)
    return 0 if deterministic else secrets.randbits(62)


def _clip_to_image(boxes, size) -> Tuple[tf.Tensor, tf.Tensor]:
    """(N, 4) xyxy, (2,) float [H, W] -> ((N, 4) boxes clipped to ``[0, W] x [0, H]``, (N,) their area)."""
    clipped = tf.clip_by_value(boxes, 0.0, tf.stack([size[1], size[0], size[1], size[0]]))
    return clipped, (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])


def _pad_rows(value, rows: int):
    """(N, ...) with N <= rows -> (rows, ...), zero rows appended."""
    pad = [[0, rows - tf.shape(value)[0]]] + [[0, 0]] * (value.shape.rank - 1)
    return tf.ensure_shape(tf.pad(value, pad), [rows] + value.shape.as_list()[1:])


def limit_and_pad(example: Dict[str, tf.Tensor], max_people: int, max_ignore: int) -> Dict[str, tf.Tensor]:
    """Orders the people by decreasing box area (box clipped to the image), keeps the first
    ``max_people`` and pads every per-person field with zeros to ``max_people``; the people beyond
    become ignore regions, padded with the element's own to ``max_ignore``.

    Args:
      example: element dict with ``image`` (S, S, 3), P people and, optionally, ``ignore_boxes``
        (R, 4) xyxy pixels of that image (clipped to it, as :func:`lcr_tf.data.augment.crop_and_resize`
        leaves them).
      max_people: people slots.
      max_ignore: ignore-region slots.
    Returns:
      The element with per-person fields of leading size ``max_people``, :data:`PERSON_MASK`
      (max_people,) bool, :data:`NUM_PEOPLE_OVER_MAX` () int32, ``ignore_boxes`` (max_ignore, 4)
      float32 and :data:`IGNORE_MASK` (max_ignore,) bool. The ignore rows are: the pose boxes of the
      people beyond ``max_people`` clipped to the image (largest first, those without area left out),
      then the element's regions by decreasing area; the rows beyond ``max_ignore`` are dropped, then
      zero rows (mask False) fill the slots.
    """
    size = tf.cast(tf.shape(example[batch_keys.IMAGE])[:2], tf.float32)
    box = example[batch_keys.BOXES]
    clipped, area = _clip_to_image(box, size)
    ranked = tf.argsort(area, direction="DESCENDING", stable=True)
    order = ranked[:max_people]
    count = tf.shape(order)[0]
    out = dict(example)
    for key in batch_keys.PERSON_KEYS:
        out[key] = _pad_rows(tf.gather(example[key], order), max_people)
    out[batch_keys.PERSON_MASK] = tf.range(max_people) < count
    out[batch_keys.NUM_PEOPLE_OVER_MAX] = tf.shape(box)[0] - count

    # Annotated people that are not targets first: they are certain, the record's regions come second.
    over_max = tf.gather(clipped, ranked[max_people:])
    has_area = (over_max[:, 2] > over_max[:, 0]) & (over_max[:, 3] > over_max[:, 1])
    over_max = tf.boolean_mask(over_max, has_area)
    regions = tf.reshape(tf.cast(example.get(batch_keys.IGNORE_BOXES, tf.zeros([0, 4])), tf.float32), [-1, 4])
    _, region_area = _clip_to_image(regions, size)
    regions = tf.gather(regions, tf.argsort(region_area, direction="DESCENDING", stable=True))
    ignore = tf.concat([over_max, regions], axis=0)[:max_ignore]
    out[batch_keys.IGNORE_BOXES] = _pad_rows(ignore, max_ignore)
    out[batch_keys.IGNORE_MASK] = tf.range(max_ignore) < tf.shape(ignore)[0]
    return out


def pipeline_skeleton(anchors=None, skeleton=None) -> skeleton_lib.Skeleton:
    """The joint set of a pipeline: ``skeleton`` (name or Skeleton), else the anchors', else
    :data:`lcr_tf.contracts.features.DEFAULT_SKELETON`. Raises ValueError naming both when the anchors
    are in another one than ``skeleton``."""
    if anchors is not None:
        if skeleton is not None and skeleton_lib.get_skeleton(skeleton).name != anchors.skeleton.name:
            raise ValueError(f"the anchor set is in skeleton {anchors.skeleton.name!r} but the pipeline was "
                             f"asked for {skeleton_lib.get_skeleton(skeleton).name!r}")
        return anchors.skeleton
    return skeleton_lib.get_skeleton(features.DEFAULT_SKELETON if skeleton is None else skeleton)


def make_element_fn(config: InputConfig, training: bool, anchors=None, skeleton=None):
    """The per-record function ``(element_seed, source_file, serialized) -> element`` of the pipeline:
    decode, augment (training) or letterbox, order and pad the people and the ignore regions.

    ``element_seed`` is the (2,) int64 stateless seed of that element. ``anchors``, an optional
    :class:`lcr_tf.poses.anchors.AnchorSet` in the records' skeleton: when given, every person's
    ``anchor_class`` is recomputed, after the augmentation, from its (possibly mirrored) 3D pose and
    annotated joints with :func:`lcr_tf.data.augment.anchor_classes`, the TensorFlow form of the
    :meth:`~lcr_tf.poses.anchors.AnchorSet.assign_classes` call of ``lcr_tf.datasets.records.encode_item``
    (full body = any knee or ankle annotated); the record's class, whatever anchor set it was built
    with, is then not read. Without ``anchors`` the record's class is kept, and flipped people get -1.
    ``skeleton``: the joint set of the records (:func:`pipeline_skeleton`).
    """
    skel = pipeline_skeleton(anchors, skeleton)
    anchor_pose3d = None if anchors is None else augment.full_body_anchor_poses(anchors, skel)

    def element(element_seed, source_file, serialized):
        ex = dec.decode(serialized, source_file, skel)
        if training:
            ex = augment.random_scale_crop(ex, augment.substream(element_seed, _STEP_CROP), config.image_size,
                                           config.scale_range, config.pad_value)
            # No anchors here: the classes of everyone, flipped or not, are recomputed below.
            ex = augment.random_flip(ex, augment.substream(element_seed, _STEP_FLIP), config.flip_probability,
                                     skeleton=skel)
            ex[batch_keys.IMAGE] = augment.photometric_jitter(
                ex[batch_keys.IMAGE], augment.substream(element_seed, _STEP_JITTER), config.brightness,
                config.contrast, config.saturation, config.hue)
        else:
            ex = augment.letterbox(ex, config.image_size, config.pad_value)
        if anchor_pose3d is not None:
            ex[batch_keys.ANCHOR_CLASS] = augment.anchor_classes(ex[batch_keys.POSE3D], ex[batch_keys.ANNOTATED],
                                                                 anchor_pose3d, skel)
        ex[batch_keys.IMAGE] = tf.ensure_shape(ex[batch_keys.IMAGE], [config.image_size, config.image_size, 3])
        return limit_and_pad(ex, config.max_people, config.max_ignore)

    return element


def make_dataset(file_pattern: Union[str, Sequence[str]], config: InputConfig, training: bool,
                 anchors=None, seed: Optional[int] = None, deterministic: bool = False,
                 shard: Tuple[int, int] = (1, 0), skeleton=None) -> tf.data.Dataset:
    """Batched input pipeline over TFRecord shards (see the module docstring for the batch layout).

    Args:
      file_pattern: glob, comma-separated globs, or a list of them.
      config: :class:`InputConfig`.
      training: augment, shuffle and drop the last incomplete batch; else letterbox only, in file order.
      anchors: optional :class:`lcr_tf.poses.anchors.AnchorSet` in the records' skeleton: every person's
        class is recomputed with it (see :func:`make_element_fn`), in training and in evaluation; without
        it the record's class is kept, -1 for flipped people.
      seed: seed of the shuffles and augmentations (None: 0 if deterministic, else random).
      deterministic: fixed element order and seeds, so that the same arguments give the same batches.
      shard: (count, index): this reader's share of the data, for multi-worker training (every worker
        calls with the same arguments and its own index). With at least ``count`` shards, the reader
        takes every count-th file from ``index`` (disjoint files); otherwise every count-th record of
        one fixed order (file interleave and record shuffle made deterministic so that the readers
        agree on it).
      skeleton: the records' joint set (name or Skeleton; :func:`pipeline_skeleton`: the anchors' by
        default, LCR-13 without anchors). A record in another one stops the pipeline with an error naming
        its shard and both skeletons.
    Returns:
      A ``tf.data.Dataset`` of dicts of batched tensors.
    Raises:
      FileNotFoundError: nothing matches ``file_pattern``. ValueError: ``anchors`` not in ``skeleton``.
    """
    files = list_shards(file_pattern)
    count, index = shard
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard must be (count >= 1, 0 <= index < count), got {shard}")
    by_record = count > 1 and len(files) < count
    if count > 1 and not by_record:
        files = files[index::count]
    order_fixed = deterministic or by_record
    base = _base_seed(seed, deterministic)
    # Derived op-level seeds of tf.data's shuffles (one per use) and the augmentation base seed.
    seeds = np.random.SeedSequence(base).generate_state(4, dtype=np.uint32).astype(np.int64)
    aug_seed = tf.constant(seeds[2:], tf.int64)

    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:
        ds = ds.shuffle(len(files), seed=int(seeds[0]), reshuffle_each_iteration=True)
    cycle = min(config.interleave_cycle, len(files))

    read = _shard_reader(files, config.skip_corrupt_records)
    ds = ds.interleave(read, cycle_length=cycle, block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=order_fixed or None)
    if training:
        ds = ds.shuffle(config.shuffle_buffer, seed=int(seeds[1]), reshuffle_each_iteration=True)
    if config.num_epochs != 1:
        ds = ds.repeat(config.num_epochs)
    if by_record:
        ds = ds.shard(count, index)
    element = make_element_fn(config, training, anchors, skeleton)
    ds = ds.enumerate().map(
        lambda i, fr: element(tf.random.experimental.stateless_fold_in(aug_seed, i), fr[0], fr[1]),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic or None)
    ds = ds.batch(config.batch_size, drop_remainder=training)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = bool(deterministic)
    return ds.with_options(options)
