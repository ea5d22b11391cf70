r"""Beam job: MoCap files (BVH, ASF/AMC) -> ``poses.npz``, the 3D pose corpus of :mod:`lcr_tf.poses.pose_corpus`.

Usage::

    python -m beam_jobs.mocap_poses --input=DIR_OR_GLOB --output=poses.npz [--skeleton=lcr13] \
        [--min_distance_mm=D] [--asf=FALLBACK.asf] [--bvh_length_unit=auto|m|cm|mm|inch|cmu] \
        [any Beam pipeline option, e.g. --runner=DirectRunner --direct_num_workers=2]

One Beam element per motion file. A DoFn reads the file (:func:`lcr_tf.poses.mocap.read_trial`: parsing,
forward kinematics, the rig's points of the target skeleton, metres, camera axes, body-centred), drops
the frames closer than ``min_distance_mm`` to the last kept one (:func:`lcr_tf.poses.mocap.drop_slow_frames`),
and emits the kept poses; a file that cannot be read goes to the ``rejected`` output with the reason.
The results are gathered in path order and written with :class:`lcr_tf.poses.pose_corpus.PoseCorpus`; the
sidecar lists the parameters, per-file counts and the rejected files. The job fails only if no file
at all could be read.

A DIR input means every ``.bvh`` and ``.amc`` under it, recursively (``.asf`` files are skeletons, read
for their AMC files, not elements). A glob may match other files: ``.asf`` ones are skipped, any other
extension is listed as rejected (unsupported file type).

Trial names are the file name, e.g. ``01_01.amc`` and ``01_01.bvh`` (so the two formats of a trial stay
apart); files with the same name in different folders get the parent folder prepended
(``bvh_cmu31/01_01.bvh``).
"""

from __future__ import annotations

import glob
import os
import sys
from typing import Dict, List, Optional, Sequence

import apache_beam as beam
import numpy as np

from beam_jobs import runner_options
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.poses import mocap, pose_corpus
from lcr_tf.poses.mocap import rigs

MOTION_EXTENSIONS = (".bvh", ".amc")
SKELETON_EXTENSIONS = (".asf",)
REJECTED = "rejected"
AXES = ("camera axes: x right, y down, z away from the camera; the MoCap up axis is -y "
        "((x, y, z) -> (x, -y, -z)); each pose centred on the mean of its hips and shoulders")
_NAMESPACE = "mocap_poses"


def list_inputs(spec: str) -> List[str]:
    """The files an ``--input`` names, sorted: a directory's ``.bvh``/``.amc`` files (recursive), or the
    files a glob matches except ``.asf`` skeletons; a plain file names itself."""
    if os.path.isdir(spec):
        found = [os.path.join(root, f) for root, _, files in os.walk(spec) for f in files
                 if os.path.splitext(f)[1].lower() in MOTION_EXTENSIONS]
    else:
        found = [p for p in glob.glob(spec, recursive=True)
                 if os.path.isfile(p) and os.path.splitext(p)[1].lower() not in SKELETON_EXTENSIONS]
    return sorted(found)


def trial_names(paths: Sequence[str]) -> Dict[str, str]:
    """Path -> trial name: the file name, with the parent folder prepended where file names collide."""
    base = {p: os.path.basename(p) for p in paths}
    counts: Dict[str, int] = {}
    for b in base.values():
        counts[b] = counts.get(b, 0) + 1
    out = {}
    for p, b in base.items():
        if counts[b] > 1:
            b = os.path.basename(os.path.dirname(os.path.abspath(p))) + "/" + b
        out[p] = b
    if len(set(out.values())) != len(out):  # same folder name too: fall back to the full path
        out = {p: os.path.abspath(p) for p in paths}
    return out


class ReadTrialFn(beam.DoFn):
    """Path -> one result dict (main output) or ``{"path", "reason"}`` on the ``rejected`` output.

    Result keys: path, poses3d (K, J, 3) float32, frame (K,) int32 (indices in the file), rig,
    length_unit, frame_rate, source_format, skeleton_file, frames_total, frames_kept.
    """

    def __init__(self, skeleton: str = "lcr13", min_distance_mm: float = 0.0, asf_fallback: Optional[str] = None,
                 bvh_length_unit: Optional[str] = None):
        super().__init__()
        self.skeleton = skeleton
        self.min_distance_mm = float(min_distance_mm)
        self.asf_fallback = asf_fallback
        self.bvh_length_unit = None if bvh_length_unit in (None, "auto") else bvh_length_unit
        self.files_read = beam.metrics.Metrics.counter(_NAMESPACE, "files_read")
        self.files_rejected = beam.metrics.Metrics.counter(_NAMESPACE, "files_rejected")
        self.frames_kept = beam.metrics.Metrics.counter(_NAMESPACE, "frames_kept")
        self.frames_dropped = beam.metrics.Metrics.counter(_NAMESPACE, "frames_dropped")

    def process(self, path: str):
        is_bvh = os.path.splitext(path)[1].lower() == ".bvh"
        try:
            trial = mocap.read_trial(path, skeleton=self.skeleton, asf_path=self.asf_fallback,
                                     length_unit=self.bvh_length_unit if is_bvh else None)
        except mocap.MocapError as e:
            self.files_rejected.inc()
            yield beam.pvalue.TaggedOutput(REJECTED, {"path": path, "reason": e.reason})
            return
        except (OSError, ValueError) as e:  # unreadable bytes, a directory named like a file, ...
            self.files_rejected.inc()
            yield beam.pvalue.TaggedOutput(REJECTED, {"path": path, "reason": f"{type(e).__name__}: {e}"})
            return
        kept = mocap.drop_slow_frames(trial.poses3d, self.min_distance_mm)
        self.files_read.inc()
        self.frames_kept.inc(int(kept.size))
        self.frames_dropped.inc(trial.num_frames - int(kept.size))
        yield {"path": path, "poses3d": trial.poses3d[kept], "frame": kept.astype(np.int32), "rig": trial.rig,
               "length_unit": trial.length_unit, "frame_rate": trial.frame_rate,
               "source_format": trial.source_format, "skeleton_file": trial.skeleton_file,
               "frames_total": trial.num_frames, "frames_kept": int(kept.size)}


def write_corpus(results: List[dict], rejected: List[dict], output: str, skeleton: str,
                 parameters: dict) -> str:
    """Concatenates the per-file results in path order and writes ``output`` + sidecar; returns ``output``.

    Raises:
      RuntimeError: no file was read (the rejected files and reasons are in the message).
    """
    results = sorted(results, key=lambda r: r["path"])
    rejected = sorted(rejected, key=lambda r: r["path"])
    if not results:
        reasons = "; ".join(f"{r['path']}: {r['reason']}" for r in rejected) or "no input files"
        raise ValueError(f"no MoCap file could be read ({reasons})")
    names = trial_names([r["path"] for r in results])
    num_joints = skeleton_lib.get_skeleton(skeleton).num_joints
    poses = np.concatenate([r["poses3d"] for r in results]).reshape(-1, num_joints, 3)
    trial = np.concatenate([np.full(r["frames_kept"], names[r["path"]]) for r in results])
    frame = np.concatenate([r["frame"] for r in results])
    files = [{"path": r["path"], "trial": names[r["path"]], "format": r["source_format"], "rig": r["rig"],
              "length_unit": r["length_unit"], "frame_rate": r["frame_rate"],
              "skeleton_file": r["skeleton_file"], "frames_total": r["frames_total"],
              "frames_kept": r["frames_kept"]} for r in results]
    metadata = {
        "skeleton": skeleton, "units": "m", "axes": AXES,
        "source": "beam_jobs.mocap_poses", "parameters": parameters,
        "files": files, "rejected": rejected,
        "counts": {"files_read": len(results), "files_rejected": len(rejected),
                   "frames_total": int(sum(r["frames_total"] for r in results)),
                   "frames_kept": int(poses.shape[0])},
    }
    pose_corpus.PoseCorpus(poses, trial, frame, metadata).save(output)
    return output


def build_pipeline(pipeline: beam.Pipeline, files: Sequence[str], output: str, skeleton: str = "lcr13",
                   min_distance_mm: float = 0.0, asf_fallback: Optional[str] = None,
                   bvh_length_unit: Optional[str] = "auto", input_description: Optional[str] = None):
    """Adds the job to ``pipeline``: files -> ReadTrialFn -> gather -> ``output``. Returns the
    PCollection holding the written path (one element)."""
    skeleton_lib.get_skeleton(skeleton)  # fail at construction on an unknown skeleton name
    if bvh_length_unit not in (None, "auto"):
        rigs.metres_per(bvh_length_unit, "--bvh_length_unit")
    parameters = {"input": input_description, "min_distance_mm": float(min_distance_mm),
                  "asf_fallback": asf_fallback, "bvh_length_unit": bvh_length_unit or "auto"}
    outputs = (pipeline
               | "ListFiles" >> beam.Create(sorted(files))
               | "ReadTrials" >> beam.ParDo(ReadTrialFn(skeleton, min_distance_mm, asf_fallback, bvh_length_unit)
                                            ).with_outputs(REJECTED, main="trials"))
    results = outputs.trials | "GatherTrials" >> beam.combiners.ToList()
    rejected = outputs[REJECTED] | "GatherRejected" >> beam.combiners.ToList()
    return results | "WriteCorpus" >> beam.Map(write_corpus, rejected=beam.pvalue.AsSingleton(rejected),
                                               output=output, skeleton=skeleton, parameters=parameters)


def _define_flags(flag_values) -> None:
    # Defined on demand rather than at import, so importing this module (tests, other jobs) never
    # collides with flags of the same name defined elsewhere.
    from absl import flags
    flags.DEFINE_string("input", None, "A folder (every .bvh and .amc under it, recursively; .asf files "
                        "are read as the skeletons of the AMC files) or a glob of motion files.",
                        flag_values=flag_values)
    flags.DEFINE_string("output", None, "Output poses.npz; its sidecar poses.json is written beside it.",
                        flag_values=flag_values)
    flags.DEFINE_enum("skeleton", "lcr13", sorted(skeleton_lib.SKELETONS),
                      "Target joint set (lcr_tf.contracts.skeleton); every joint must be available from each rig "
                      "(files whose rig lacks one are listed as rejected).", flag_values=flag_values)
    flags.DEFINE_float("min_distance_mm", 0.0, "Keep a frame only if its mean per-joint distance to the "
                       "last kept frame of its trial is at least this many millimetres (0 keeps all).",
                       lower_bound=0.0, flag_values=flag_values)
    flags.DEFINE_string("asf", None, "Fallback ASF skeleton for AMC files without <subject>.asf beside them "
                        "(their bone lengths are the stand-in's).", flag_values=flag_values)
    flags.DEFINE_enum("bvh_length_unit", "auto", ["auto"] + list(rigs.LENGTH_UNITS),
                      "Length unit of the BVH files; 'auto' infers it per file from the leg length "
                      "(cmu = CMU's 1/0.45 inch).", flag_values=flag_values)


def _usage(fv) -> str:
    return f"{__doc__}\nFlags:\n{fv.get_help()}\n\nOther flags are passed to Beam as pipeline options."


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parsed = runner_options.parse_job_flags(list(sys.argv if argv is None else argv), _define_flags, _usage,
                                            ("input", "output"))
    if isinstance(parsed, int):
        return parsed
    fv, beam_args = parsed
    files = list_inputs(fv["input"].value)
    if not files:
        print(f"mocap_poses: error: no .bvh or .amc files found for --input={fv['input'].value}", file=sys.stderr)
        return 1

    def body() -> int:
        with beam.Pipeline(options=runner_options.pipeline_options(beam_args)) as p:
            build_pipeline(p, files, fv["output"].value, skeleton=fv["skeleton"].value,
                           min_distance_mm=fv["min_distance_mm"].value, asf_fallback=fv["asf"].value,
                           bvh_length_unit=fv["bvh_length_unit"].value, input_description=fv["input"].value)
        print(f"wrote {fv['output'].value} from {len(files)} file(s)")
        return 0

    return runner_options.reporting_input_errors("mocap_poses", body)


if __name__ == "__main__":
    sys.exit(main())
