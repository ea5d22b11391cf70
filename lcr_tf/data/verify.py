"""Reads every record of TFRecord shards and reports, per shard, whether it is whole.

    python -m lcr_tf.data.verify --data='out/train-*.tfrecord' [--json=report.json]

For each shard matched by ``--data`` (a glob or comma-separated globs): the records read (TensorFlow's
reader checks each record's CRC; each is parsed as a ``tf.train.Example`` of the schema of
:mod:`lcr_tf.contracts.features`), its bytes and SHA-256, and its agreement with the manifest that
``beam_jobs.build_tfrecords`` wrote beside it (``PREFIX-manifest.json``: records, bytes, checksum), or
the first bad record and the byte offset of its start. Shards a manifest lists that match ``--data`` but are not on
disk are reported missing. Exit status 0 when every shard is good, 1 otherwise (2: usage error).

This reads all the data (about the speed of the disk); the trainer's start check compares only sizes.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import sys
from typing import List

from absl import flags

from lcr_tf.contracts import atomic_files, cli, shard_manifest

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("data", None, "TFRecord shards to check: a glob or comma-separated globs, e.g. "
                        "'out/train-*.tfrecord'. Each shard is compared with the PREFIX-manifest.json beside it "
                        "(records, bytes, SHA-256); shards a manifest lists that match the glob but are not on "
                        "disk are reported missing.")
    flags.DEFINE_string("json", None, "Also write the report here as JSON: a list, one object per shard "
                        "(path, records, bytes, sha256, manifest, problem (null when good), bad_record and "
                        "bad_offset (the first bad record's index and start byte offset), manifest_records, "
                        "manifest_bytes).")


def verify(file_pattern: str) -> List:
    """The :class:`lcr_tf.data.shards.ShardReport` of every shard of ``file_pattern`` (sorted by path),
    including the manifest-listed shards that match it but are missing."""
    from lcr_tf.data import pipeline
    from lcr_tf.data import shards as shards_lib

    patterns = [os.path.abspath(p) for p in shards_lib.patterns_of(file_pattern)]
    try:
        paths = pipeline.list_shards(file_pattern)
    except FileNotFoundError:
        paths = []
    manifests = {}
    for path in paths:
        manifest = shard_manifest.manifest_of_shard(os.path.abspath(path))
        if manifest and os.path.isfile(manifest) and manifest not in manifests:
            manifests[manifest] = shard_manifest.read(manifest)
    reports = []
    present = {os.path.normpath(os.path.abspath(p)) for p in paths}
    for path in paths:
        manifest = shard_manifest.manifest_of_shard(os.path.abspath(path))
        entries = manifests.get(manifest)
        reports.append(shards_lib.verify_shard(path, entries, manifest if entries is not None else None))
    for manifest, entries in manifests.items():
        for path in entries:
            if path not in present and any(fnmatch.fnmatch(path, p) for p in patterns):
                reports.append(shards_lib.verify_shard(path, entries, manifest))
    if not reports:
        raise FileNotFoundError(f"no TFRecord shard matches {file_pattern!r}")
    return sorted(reports, key=lambda r: r.path)


def main(argv: List[str]) -> int:
    if not FLAGS.data:
        print("error: --data is required (see --help)", file=sys.stderr)
        return cli.USAGE_ERROR
    reports = verify(FLAGS.data)
    width = max(len(os.path.basename(r.path)) for r in reports)
    print(f"{'shard':<{width}}  {'records':>8}  {'bytes':>12}  manifest  status")
    for r in reports:
        # Whether records, bytes and SHA-256 agree with the manifest ("-": the shard could not be read whole).
        listed = "none" if r.manifest is None else "agrees" if r.problem is None else "listed" if (
            r.bad_record is not None or r.problem == "missing") else "differs"
        status = "ok" if r.problem is None else r.problem
        if r.problem is not None and r.manifest_records is not None:
            status += f"; the manifest lists {r.manifest_records} records, {r.manifest_bytes} bytes"
        print(f"{os.path.basename(r.path):<{width}}  {r.records:>8}  {r.bytes:>12}  {listed:<8}  {status}")
    bad = [r for r in reports if r.problem]
    print(f"{len(reports) - len(bad)} of {len(reports)} shard(s) good, {sum(r.records for r in reports)} "
          f"record(s) read")
    if FLAGS.json:
        atomic_files.write_json(FLAGS.json, [dataclasses.asdict(r) for r in reports], indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
