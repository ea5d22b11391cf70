"""Throughput of the MoCap readers and of the ``beam_jobs.mocap_poses`` job on the real CMU folder.

Prints, per folder (one format / rig each), the frames per second of :func:`lcr_tf.poses.mocap.read_trial`
(parse + forward kinematics + rig mapping + units + centring), the median of several runs over all of the
folder's files; then the frames per second of the whole Beam job (the jobs' default local runner) over the folder.

    python benchmarks/bench_mocap_poses.py [--mocap_dir=../shared/data/mocap] [--repeats=5]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO)

import apache_beam as beam  # noqa: E402
from absl import flags  # noqa: E402

from beam_jobs import mocap_poses, runner_options  # noqa: E402
from benchmarks.timing import median_time  # noqa: E402
from lcr_tf.contracts import cli  # noqa: E402
from lcr_tf.poses import mocap  # noqa: E402


def bench_readers(mocap_dir: str, repeats: int, asf_fallback: str) -> None:
    print(f"read_trial (parse + FK + mapping + centring), median of {repeats} runs")
    print(f"{'folder':<20} {'files':>5} {'frames':>7} {'joints':>6} {'seconds':>8} {'frames/s':>9}")
    for folder in sorted(os.listdir(mocap_dir)):
        if not os.path.isdir(os.path.join(mocap_dir, folder)):
            continue
        files = mocap_poses.list_inputs(os.path.join(mocap_dir, folder))
        if not files:
            continue
        trials = [mocap.read_trial(f, asf_path=asf_fallback) for f in files]  # also warms the caches
        frames = sum(t.num_frames for t in trials)
        joints = len(mocap.load_motion(files[0], asf_fallback)[0].joint_names)
        seconds = median_time(lambda: [mocap.read_trial(f, asf_path=asf_fallback) for f in files], repeats)
        print(f"{folder:<20} {len(files):>5} {frames:>7} {joints:>6} {seconds:>8.3f} {frames / seconds:>9.0f}")


def bench_job(mocap_dir: str, repeats: int, asf_fallback: str, min_distance_mm: float) -> None:
    files = mocap_poses.list_inputs(mocap_dir)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "poses.npz")

        def run():
            with beam.Pipeline(options=runner_options.pipeline_options()) as p:
                mocap_poses.build_pipeline(p, files, out, min_distance_mm=min_distance_mm,
                                           asf_fallback=asf_fallback)

        run()
        with open(os.path.join(tmp, "poses.json")) as f:
            meta = json.load(f)
        seconds = median_time(run, repeats)
    total = meta["counts"]["frames_total"]
    print(f"\nBeam job (local FnApiRunner) on {len(files)} files, min_distance_mm={min_distance_mm}: "
          f"{meta['counts']['files_read']} read, {meta['counts']['files_rejected']} rejected, "
          f"{total} frames -> {meta['counts']['frames_kept']} kept")
    print(f"median of {repeats} runs: {seconds:.2f} s, {total / seconds:.0f} frames/s")


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("mocap_dir", os.path.join(_REPO, "..", "shared", "data", "mocap"),
                        "Folder of MoCap files (default: ../shared/data/mocap beside the repository).")
    flags.DEFINE_integer("repeats", 5, "Runs per measurement; the median is printed.")
    flags.DEFINE_integer("job_repeats", 3, "Runs of the whole Beam job.")
    flags.DEFINE_string("asf", None, "Fallback ASF for AMC files without their own (default: "
                        "<mocap_dir>/asf_amc/01.asf).")
    flags.DEFINE_float("min_distance_mm", 30.0, "Slow-frame threshold of the job.")


def main(argv) -> int:
    args = FLAGS
    if not os.path.isdir(args.mocap_dir):
        print(f"no MoCap folder at {args.mocap_dir}", file=sys.stderr)
        return 1
    asf = args.asf or os.path.join(args.mocap_dir, "asf_amc", "01.asf")
    bench_readers(args.mocap_dir, args.repeats, asf)
    bench_job(args.mocap_dir, args.job_repeats, asf, args.min_distance_mm)
    return 0


if __name__ == "__main__":
    define_flags()
    cli.run(main)
