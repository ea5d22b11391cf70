"""The shard manifest: what a job that writes TFRecord shards says it wrote, so that a reader can tell a
whole copy from a cut, missing or damaged one before it spends hours on it.

``PREFIX-manifest.json`` beside ``PREFIX-SSSSS-of-NNNNN.tfrecord`` (the layout of
:mod:`lcr_tf.datasets.records`)::

    {"format": "lcr_tf/shard-manifest", "version": 1, "skeleton": "lcr13",
     "shards": [{"file": "train-00000-of-00008.tfrecord", "records": 1000, "bytes": 31234567,
                 "sha256": "<64 hex>"}, ...]}

``skeleton`` (optional: manifests written before it say nothing, and their shards are LCR-13) names the
joint set of the records' people, as each record's ``schema/skeleton`` does (:mod:`lcr_tf.contracts.features`):
a reader can tell which model the shards are for without opening them.

``file`` is the shard's name relative to the manifest's folder (a copied folder stays valid). The
checksum is SHA-256 of the file's bytes: every Python has it (``hashlib``), and unlike the TFRecord
framing's CRC32C, which TensorFlow checks per record only while it reads, it covers the file as a whole
and can be compared with ``sha256sum`` on any machine.

Pure Python: :func:`scan` walks the TFRecord framing (8-byte little-endian length, 4-byte length CRC,
data, 4-byte data CRC) without checking the CRCs, so it counts records and finds a cut file in one read;
the per-record CRCs are checked by TensorFlow's reader (``python -m lcr_tf.data.verify``). Imports nothing
of the project and no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
import re
import struct
from typing import Dict, Optional, Sequence, Tuple

from lcr_tf.contracts import atomic_files

FORMAT = "lcr_tf/shard-manifest"
VERSION = 1
SUFFIX = "-manifest.json"
#: The build job's other files beside its shards (``PREFIX`` + suffix): its summary and its rejected lines.
SUMMARY_SUFFIX = "-summary.json"
REJECTED_SUFFIX = "-rejected.jsonl"
#: Every file the build job writes beside the shards: a glob ``PREFIX-*`` matches them too, and they are
#: not TFRecords.
SIDECAR_SUFFIXES = (SUFFIX, SUMMARY_SUFFIX, REJECTED_SUFFIX)
#: A shard's name: ``PREFIX-SSSSS-of-NNNNN.tfrecord``; group 1 is the prefix.
SHARD_NAME = re.compile(r"^(.*)-\d{5}-of-\d{5}\.tfrecord$")
# TFRecord framing: uint64 length, uint32 masked CRC32C of the length, data, uint32 masked CRC32C of it.
_HEADER, _FOOTER = 12, 4
_CHUNK = 1 << 20


def manifest_path(prefix: str) -> str:
    """``PREFIX-manifest.json``."""
    return prefix + SUFFIX


def manifest_of_shard(shard_path: str) -> Optional[str]:
    """The manifest a shard of this layout belongs to (whether or not it exists); None for other names."""
    match = SHARD_NAME.match(shard_path)
    return manifest_path(match.group(1)) if match else None


@dataclasses.dataclass(frozen=True)
class ShardFacts:
    """What one read of a shard file found.

    Attributes:
      records: whole records (framing complete) before the end or the cut.
      bytes: the file's size.
      sha256: hex digest of the file's bytes.
      cut_at: byte offset where a record's framing runs past the end of the file (a cut copy), else None.
    """

    records: int
    bytes: int
    sha256: str
    cut_at: Optional[int] = None


def scan(path: str) -> ShardFacts:
    """Counts the records of a TFRecord file by its framing and hashes it, in one sequential read.

    Raises:
      FileNotFoundError: no such file.
    """
    digest = hashlib.sha256()
    size = os.path.getsize(path)
    records, offset, cut_at = 0, 0, None
    with open(path, "rb") as f:
        buffer = b""

        def need(n: int) -> bool:
            nonlocal buffer
            while len(buffer) < n:
                chunk = f.read(max(_CHUNK, n - len(buffer)))
                if not chunk:
                    return False
                digest.update(chunk)
                buffer += chunk
            return True

        while offset < size:
            if not need(_HEADER):
                cut_at = offset
                break
            (length,) = struct.unpack("<Q", buffer[:8])
            total = _HEADER + length + _FOOTER
            if offset + total > size:
                cut_at = offset
                break
            if not need(total):
                cut_at = offset
                break
            buffer = buffer[total:]
            offset += total
            records += 1
        # The rest of the file (after a cut) still goes into the checksum.
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
    return ShardFacts(records=records, bytes=size, sha256=digest.hexdigest(), cut_at=cut_at)


def write(prefix: str, shard_paths: Sequence[str], skeleton: Optional[str] = None) -> str:
    """Scans the shards and writes their manifest (through a temporary name), with the records' skeleton
    name when given; returns its path."""
    folder = os.path.dirname(os.path.abspath(manifest_path(prefix)))
    entries = []
    for path in sorted(shard_paths):
        facts = scan(path)
        entries.append({"file": os.path.relpath(os.path.abspath(path), folder), "records": facts.records,
                        "bytes": facts.bytes, "sha256": facts.sha256})
    path = manifest_path(prefix)
    doc = {"format": FORMAT, "version": VERSION, "shards": entries}
    if skeleton is not None:
        doc["skeleton"] = str(skeleton)
    atomic_files.write_json(path, doc, indent=1)
    return path


def read_skeleton(path: str) -> Optional[str]:
    """The ``skeleton`` a manifest states, or None for one written before manifests stated it."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    value = doc.get("skeleton") if isinstance(doc, dict) else None
    return str(value) if value else None


def first_record(path: str) -> Optional[bytes]:
    """The data of the first record of a TFRecord file (framing read, CRCs not checked), or None when the
    file holds no whole record (empty, or cut inside its first record)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        header = f.read(_HEADER)
        if len(header) < _HEADER:
            return None
        (length,) = struct.unpack("<Q", header[:8])
        if _HEADER + length > size:  # cut, or a damaged length: never allocate what the file cannot hold
            return None
        data = f.read(length)
    return data if len(data) == length else None


def read(path: str) -> Dict[str, Dict[str, object]]:
    """The manifest at ``path`` as ``{absolute shard path: {"records", "bytes", "sha256"}}``.

    Raises:
      ValueError: not a manifest of this format and version (the message names the file and the field).
    """
    try:
        with open(path) as f:
            doc = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a shard manifest (format is not {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise ValueError(f"{path}: manifest version {doc.get('version')!r}, this reader reads {VERSION}")
    folder = os.path.dirname(os.path.abspath(path))
    out = {}
    for i, entry in enumerate(doc.get("shards", [])):
        try:
            out[os.path.normpath(os.path.join(folder, entry["file"]))] = {
                "records": int(entry["records"]), "bytes": int(entry["bytes"]), "sha256": str(entry["sha256"])}
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: shards[{i}] lacks or mangles {e}") from None
    return out


@dataclasses.dataclass(frozen=True)
class SizeCheck:
    """The result of :func:`check_sizes`: ``problems`` (one line each, naming the shard), the shards no
    manifest covers, and the records the manifests promise for the shards given (None: unknown)."""

    problems: Tuple[str, ...]
    unlisted: Tuple[str, ...]
    records: Optional[int]


def check_sizes(shards: Sequence[str], patterns: Sequence[str] = ()) -> SizeCheck:
    """Checks shards against their manifests by size only (a stat per file: milliseconds).

    A problem is a shard whose size differs from its manifest's (a cut or partial copy), a shard that its
    manifest does not list, or a shard of a manifest that matches one of ``patterns`` but is not on disk
    (a copy that lost a file; shards left out by the pattern itself are not missing).
    """
    problems, unlisted, manifests = [], [], {}
    for shard in shards:
        manifest = manifest_of_shard(os.path.abspath(shard))
        if manifest is None or not os.path.isfile(manifest):
            unlisted.append(shard)
            continue
        if manifest not in manifests:
            manifests[manifest] = read(manifest)
        entry = manifests[manifest].get(os.path.normpath(os.path.abspath(shard)))
        if entry is None:
            problems.append(f"{shard}: not listed in {manifest}")
            continue
        size = os.path.getsize(shard)
        if size != entry["bytes"]:
            problems.append(f"{shard}: {size} bytes, its manifest {manifest} says {entry['bytes']} "
                            f"(a cut or partial copy?)")
    given = {os.path.normpath(os.path.abspath(s)) for s in shards}
    absolute = [os.path.abspath(p) for p in patterns]
    records = 0
    for manifest, entries in manifests.items():
        for path, entry in entries.items():
            if path in given:
                records += entry["records"]
            elif any(fnmatch.fnmatch(path, p) for p in absolute) and not os.path.exists(path):
                problems.append(f"{path}: listed in {manifest} but missing")
    return SizeCheck(tuple(problems), tuple(unlisted), None if unlisted else records)
