"""Throughput of the MoCap readers and of the ``beam_jobs.mocap_poses`` job on the real CMU folder.

Prints, per folder (one format / rig each), the frames per second of :func:`lcr_tf.mocap.read_trial`
(parse + forward kinematics + rig mapping + units + centring), the median of several runs over all of the
folder's files; then the frames per second of the whole Beam job (the jobs' default local runner) over the folder.

    python benchmarks/bench_mocap_poses.py [--mocap_dir=../shared/data/mocap] [--repeats=5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile


_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO)

import apache_beam as beam  # noqa: E402

from beam_jobs import mocap_poses, runner_options  # noqa: E402
from lcr_tf import mocap  # noqa: E402
from benchmarks.timing import median_time  # noqa: E402


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mocap_dir", default=os.path.join(_REPO, "..", "shared", "data", "mocap"),
                        help="folder of MoCap files (default: ../shared/data/mocap beside the repository)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement; the median is printed")
    parser.add_argument("--job_repeats", type=int, default=3, help="runs of the whole Beam job")
    parser.add_argument("--asf", default=None,
                        help="fallback ASF for AMC files without their own (default: <mocap_dir>/asf_amc/01.asf)")
    parser.add_argument("--min_distance_mm", type=float, default=30.0, help="slow-frame threshold of the job")
    args = parser.parse_args()
    if not os.path.isdir(args.mocap_dir):
        print(f"no MoCap folder at {args.mocap_dir}", file=sys.stderr)
        return 1
    asf = args.asf or os.path.join(args.mocap_dir, "asf_amc", "01.asf")
    bench_readers(args.mocap_dir, args.repeats, asf)
    bench_job(args.mocap_dir, args.job_repeats, asf, args.min_distance_mm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
