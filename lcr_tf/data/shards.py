"""Damaged TFRecord shards: found before a run (sizes against the manifest, :func:`check_before_reading`),
met during one (:func:`on_damage`, called by :func:`lcr_tf.data.pipeline.make_dataset`'s per-shard
readers: skipped and counted with ``--skip_corrupt_records``, else the run stops naming them), and
verified record by record (:func:`verify_shard`, ``python -m lcr_tf.data.verify``).

The TFRecord format cannot resynchronise after a bad record (a record's length is only in its own
header), so "skipping a corrupt record" means reading the shard up to it and dropping the rest of that
shard for this pass. What is counted, per shard (:class:`Damage`): the bad record's index, the byte
offset of its start (the bytes of the whole records before it, framing included), the records lost in
a pass (the manifest's count minus the records read: the bad one and all after it; None without a
manifest), the bytes lost in a pass (the file's size minus that offset), and the passes that met it.
Byte offsets here are always a record's start; TensorFlow's own messages give the offset of the check
that failed (12 bytes further, the data, for a bad data CRC).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Dict, List, Optional, Sequence, Tuple, Union

import tensorflow as tf

from lcr_tf.contracts import cli, features, shard_manifest
from lcr_tf.contracts import skeleton as skeleton_lib

#: Bytes a TFRecord adds around each record's data: uint64 length, its CRC, the data's CRC.
FRAMING_BYTES = 16
# TFRecordDataset's own read-ahead; larger than its 256 KiB default (see lcr_tf.data.pipeline).
_BUFFER_BYTES = 4 << 20


class ShardError(ValueError):
    """A shard that differs from its manifest, or holds a corrupt record: the message is one line that
    names the shard (and the record and byte offset)."""


def patterns_of(file_pattern: Union[str, Sequence[str]]) -> List[str]:
    return [p for p in (file_pattern.split(",") if isinstance(file_pattern, str) else file_pattern) if p]


def check_before_reading(shards: Sequence[str], file_pattern: Union[str, Sequence[str]], what: str) -> Optional[int]:
    """Checks the shards against their manifests by size, before a run reads them.

    Returns the records the manifests promise (None when some shard has no manifest; a warning line
    says which). Raises :class:`ShardError` naming the first shard that differs, or when the shards hold
    no record at all.
    """
    result = shard_manifest.check_sizes(shards, patterns_of(file_pattern))
    if result.problems:
        more = f" (and {len(result.problems) - 1} more)" if len(result.problems) > 1 else ""
        raise ShardError(f"{what}: {result.problems[0]}{more}")
    if result.unlisted:
        print(f"warning: {what}: {len(result.unlisted)} shard(s) without a manifest (e.g. {result.unlisted[0]}):"
              f" their sizes are not checked", flush=True)
    if result.records == 0 or all(os.path.getsize(s) == 0 for s in shards):
        raise ShardError(f"{what}: the shards ({', '.join(shards[:3])}{', ...' if len(shards) > 3 else ''}) "
                         f"hold no record")
    return result.records


def shard_skeleton(path: str) -> Optional[str]:
    """The skeleton of a shard's records: its first record's ``schema/skeleton``
    (:data:`lcr_tf.contracts.features.DEFAULT_SKELETON` for version-2 records), or None for a shard with
    no whole record. A first record that is not an Example raises :class:`ShardError` naming the shard."""
    record = shard_manifest.first_record(path)
    if record is None:
        return None
    try:
        return features.record_skeleton(record)
    except ValueError as e:
        raise ShardError(f"{path}: record 0 {e}") from None


def check_skeleton(shards: Sequence[str], expected: str, what: str, model: str) -> None:
    """Checks that every shard holds records of skeleton ``expected`` (each shard's first record: a build
    writes one skeleton per job, and the input pipeline checks every record as it reads it).

    Args:
      what: the flag the shards come from (``--train_data``), for the message.
      model: what fixes ``expected`` (e.g. ``--anchors anchors.npz``), for the message.
    Raises:
      ShardError: one line naming the first shard in another skeleton, both skeletons and their joint
        counts.
    """
    want = skeleton_lib.get_skeleton(expected)
    for path in shards:
        found = shard_skeleton(path)
        if found is not None and found != want.name:
            count = (f"{skeleton_lib.SKELETONS[found].num_joints} joints" if found in skeleton_lib.SKELETONS
                     else "an unknown skeleton")
            raise ShardError(f"{what}: shard {path} holds records in skeleton {found!r} ({count}) but the model "
                             f"({model}) is in skeleton {want.name!r} ({want.num_joints} joints): build the "
                             f"records with beam_jobs.build_tfrecords --skeleton={want.name}, or train with "
                             f"anchors of skeleton {found!r}")


@dataclasses.dataclass
class Damage:
    """A corrupt or cut record met while reading a shard.

    Attributes:
      record: index of the bad record (the records before it were read).
      offset: byte offset of its start (its length header): the bytes of the records read before it.
      records_lost: records not read in one pass: the manifest's count minus ``record`` (the bad record
        and every one after it); None without a manifest.
      bytes_lost: bytes not read in one pass (the file's size minus ``offset``).
      times: passes that met it (a repeated dataset reads the shard again every epoch).
    """

    record: int
    offset: int
    records_lost: Optional[int]
    bytes_lost: int
    times: int = 1


class SkipLog:
    """Thread-safe record of the damaged shards met, per shard path (the readers run in tf.data's
    threads)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.damage: Dict[str, Damage] = {}

    def add(self, path: str, damage: Damage) -> bool:
        """Counts one pass that met ``damage``; True the first time for this shard."""
        with self._lock:
            if path in self.damage:
                self.damage[path].times += 1
                return False
            self.damage[path] = damage
            return True

    def clear(self) -> None:
        with self._lock:
            self.damage.clear()

    def first(self) -> Optional[Tuple[str, Damage]]:
        """The damaged shard met first (dicts keep insertion order), or None."""
        with self._lock:
            return next(iter(self.damage.items()), None)

    def summary(self) -> Dict[str, object]:
        """JSON-ready: ``{"shards": {path: Damage fields}, "records_skipped": sum over shards of
        records_lost x times (None when a damaged shard has no manifest), "bytes_skipped": the same sum of
        bytes_lost, "events": passes that met a damaged shard}``."""
        with self._lock:
            shards = {p: dataclasses.asdict(d) for p, d in sorted(self.damage.items())}
        damages = list(shards.values())
        lost = [d["records_lost"] for d in damages]
        return {"shards": shards,
                "records_skipped": None if None in lost else sum(d["records_lost"] * d["times"] for d in damages),
                "bytes_skipped": sum(d["bytes_lost"] * d["times"] for d in damages),
                "events": sum(d["times"] for d in damages)}


#: The damaged shards met by this process's input pipelines (skipped with ``--skip_corrupt_records``;
#: without it, the one that stopped the run). The trainer clears it when it starts and reports it.
SKIPPED = SkipLog()


def corrupt_line(path: str, damage: Damage) -> str:
    """One line naming a damaged shard, its bad record and the record's byte offset."""
    return f"{path}: record {damage.record} (byte offset {damage.offset}) is corrupt"


def on_damage(path: bytes, records_read, offset, size, expected, skip: bool) -> bool:
    """Called by the pipeline (through ``tf.py_function``, once per pass over a damaged shard, never for a
    whole one) when a shard's reader stopped before the end of the file: ``records_read`` whole records
    of ``offset`` bytes were read out of ``size``; ``expected``: the manifest's record count (-1:
    none). Logs the damage in :data:`SKIPPED`; returns False (the pass over the shard ends there) when
    ``skip``, else raises :class:`CorruptShardError`."""
    path = path.numpy().decode() if hasattr(path, "numpy") else str(path)
    records_read, offset, size, expected = (int(getattr(v, "numpy", lambda: v)()) for v in
                                            (records_read, offset, size, expected))
    damage = Damage(records_read, offset, None if expected < 0 else max(expected - records_read, 1),
                    size - offset)
    if SKIPPED.add(path, damage) and skip:  # once per shard; the later passes are counted in ``times``
        lost = "an unknown number of" if damage.records_lost is None else str(damage.records_lost)
        print(f"warning: {corrupt_line(path, damage)}: skipped with the rest of the shard in every pass "
              f"({lost} record(s), {damage.bytes_lost} bytes)", flush=True)
    return False


def first_line(message: str) -> str:
    """TensorFlow's message of a read error, in one line."""
    return cli.op_error_text(message) or message.strip()


@dataclasses.dataclass(frozen=True)
class ShardReport:
    """``python -m lcr_tf.data.verify``'s finding for one shard: the records read and the file's bytes and
    SHA-256; ``problem`` (None for a good shard); the first bad record and its start offset; the manifest
    and what it lists for the shard (None: not listed, or no manifest)."""

    path: str
    records: int
    bytes: int
    sha256: str
    manifest: Optional[str]
    problem: Optional[str]
    bad_record: Optional[int] = None
    bad_offset: Optional[int] = None
    manifest_records: Optional[int] = None
    manifest_bytes: Optional[int] = None


def example_problem(record: bytes) -> Optional[str]:
    """What is wrong with a record's bytes as an Example of :mod:`lcr_tf.contracts.features` (not an
    Example, another schema version; the image id when readable), or None."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.example import example_pb2

    try:
        example = example_pb2.Example.FromString(record)
    except DecodeError as e:
        return f"is not a tf.train.Example ({e})"
    fields = example.features.feature
    version = (fields[features.VERSION].int64_list.value[:1] or [None])[0] if features.VERSION in fields else None
    if version in features.READABLE_VERSIONS:
        return None
    image_id = (fields[features.IMAGE_ID].bytes_list.value[:1] or [b"?"])[0] if features.IMAGE_ID in fields else b"?"
    return (f"(image {image_id.decode('utf-8', 'replace')}) has schema version {version}, this reader reads "
            f"{', '.join(map(str, features.READABLE_VERSIONS))}")


def verify_shard(path: str, manifest_entries: Optional[Dict[str, Dict[str, object]]] = None,
                 manifest: Optional[str] = None, max_records: Optional[int] = None) -> ShardReport:
    """Reads the records of a shard (TensorFlow checks each record's CRC; each is parsed as an Example of
    the schema), and compares the file with its manifest entry (records, bytes, SHA-256; not with
    ``max_records``, which reads at most that many records)."""
    entry = (manifest_entries or {}).get(os.path.normpath(os.path.abspath(path)))
    listed = (entry["records"], entry["bytes"]) if entry is not None else (None, None)
    if not os.path.isfile(path):
        return ShardReport(path, 0, 0, "", manifest, "missing", None, None, *listed)
    facts = shard_manifest.scan(path)
    count, offset, problem, bad_record, bad_offset = 0, 0, None, None, None
    records = tf.data.TFRecordDataset(path, buffer_size=_BUFFER_BYTES)
    if max_records is not None:
        records = records.take(max_records)
    try:
        for record in records.as_numpy_iterator():
            wrong = example_problem(record)
            if wrong is not None:
                bad_record, bad_offset, problem = count, offset, f"record {count} {wrong}"
                break
            count += 1
            offset += len(record) + FRAMING_BYTES
    except tf.errors.DataLossError as e:
        # TensorFlow's offset is where its check failed (the data, for a bad data CRC): the record's start
        # is reported instead, as the trainer does.
        bad_record, bad_offset = count, offset
        problem = f"record {count} (byte offset {offset}) is corrupt ({first_line(e.message)})"
    whole = problem is None and max_records is None  # only a whole read can agree with the manifest
    if whole and entry is not None:
        for field, value in (("bytes", facts.bytes), ("records", count), ("sha256", facts.sha256)):
            if entry[field] != value:
                problem = f"{field} {value}, the manifest says {entry[field]}"
                break
    elif whole and manifest_entries is not None:
        problem = "not listed in its manifest"
    return ShardReport(path, count, facts.bytes, facts.sha256, manifest, problem, bad_record, bad_offset, *listed)
