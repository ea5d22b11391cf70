"""Training images / s of the tiny configuration on one replica and on N logical CPU replicas.

    python benchmarks/bench_replicas.py [--replicas 2] [--repeats 3] [--steps 60]

Each run is ``python -m lcr_tf.train --flagfile=configs/synthetic_tiny.flags --cpu_replicas=N`` (the
demo's configuration: 256-pixel images, global batch 4) on synthetic shards rendered into a temporary
folder, for ``--steps`` steps in three epochs; its figure is the median images / s of the epochs after
the first (which traces the step), read from the run's ``metrics.json``. Runs of 1 and N replicas
alternate, ``--repeats`` times, and the medians and their ratio are printed, with the mean global
gradient norm of the last epoch (the quantity ``--clipnorm`` bounds).

Logical CPU replicas share the machine's cores: they run the distributed path (per-replica batches,
all-reduces, synchronised batch norm) for checking, not for speed; the ratio says what that path costs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO)

from absl import flags  # noqa: E402

from benchmarks.bench_train import write_shards  # noqa: E402
from lcr_tf.contracts import cli  # noqa: E402


def make_data(root: str, num_images: int) -> dict:
    from lcr_tf.poses import anchors as anchors_lib
    from lcr_tf.poses import body_model

    corpus = body_model.sample_poses(2000, seed=0).poses3d
    anchor_set = anchors_lib.cluster_poses(corpus, 8, 8, seed=0)
    anchors = os.path.join(root, "anchors.npz")
    anchor_set.save(anchors)
    shard = write_shards(root, num_images, 256, anchor_set, corpus)
    return {"train": shard, "anchors": anchors}


def run(data: dict, model_dir: str, replicas: int, steps: int) -> dict:
    per_epoch = max(steps // 3, 1)
    command = [sys.executable, "-m", "lcr_tf.train", "--flagfile=configs/synthetic_tiny.flags",
               f"--train_data={data['train']}", f"--anchors={data['anchors']}", f"--model_dir={model_dir}",
               f"--cpu_replicas={replicas}", f"--num_steps={per_epoch * 3}", f"--steps_per_epoch={per_epoch}",
               f"--checkpoint_every={per_epoch * 3}", "--num_summary_images=0", "--verbose=0"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=_REPO)
    result = subprocess.run(command, cwd=_REPO, env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"training with --cpu_replicas={replicas} failed:\n{result.stderr[-3000:]}")
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    rates = metrics["images_per_second_per_epoch"][1:]
    return {"images_per_second": statistics.median(rates),
            "gradient_norm": metrics["last_epoch"].get("gradient_norm")}


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer("replicas", 2, "Logical CPU replicas to compare with one.")
    flags.DEFINE_integer("repeats", 3, "Runs of each (medians printed).")
    flags.DEFINE_integer("steps", 60, "Training steps per run (three epochs).")
    flags.DEFINE_integer("images", 64, "Synthetic training images rendered.")


def main(argv) -> None:
    args = FLAGS
    results = {1: [], args.replicas: []}
    with tempfile.TemporaryDirectory() as root:
        data = make_data(root, args.images)
        for repeat in range(args.repeats):
            for replicas in results:
                out = run(data, os.path.join(root, f"run_{replicas}_{repeat}"), replicas, args.steps)
                results[replicas].append(out)
                print(f"  run {repeat + 1}, {replicas} replica(s): {out['images_per_second']:6.1f} images/s, "
                      f"gradient norm {out['gradient_norm']:.2f}", flush=True)
    medians = {n: statistics.median(r["images_per_second"] for r in rs) for n, rs in results.items()}
    print(f"tiny config, 256 px, global batch 4, {args.steps} steps, median of {args.repeats} runs:")
    for n, value in medians.items():
        print(f"  --cpu_replicas={n}: {value:6.1f} images/s")
    print(f"  ratio {args.replicas} / 1 : {medians[args.replicas] / medians[1]:6.2f}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
