"""One-shot check of a GPU machine: training speed per precision policy, serving latency, and the accuracy
of a short run of the demo's configuration, all within a wall-time budget.

    python benchmarks/gpu_check.py [--budget_s 450] [--output gpu_check.json] [--work_dir DIR]
                                   [--steps N] [--tiny_steps N] [--skip_resnet] [--skip_tiny]

Stages, each printed (flushed) as soon as it is measured, so a run cut short still shows its figures:

1. **devices**: ``tf.config.list_physical_devices``, the TensorFlow and Keras versions, the GPU's name.
2. **data**: ``python -m lcr_tf.demo --train_steps=0`` with a small corpus renders a few hundred synthetic
   images to TFRecords, with K=8 anchor-poses; with a GPU, ``beam_jobs.anchor_poses`` also builds K=200
   ones (``configs/anchors_k200.flags``) for ResNet-50.
3. **resnet50 <policy>**: ``python -m lcr_tf.train --flagfile=configs/mpii_resnet50.flags`` from random
   weights (ImageNet's cannot be downloaded) with ``--precision`` float32, mixed_float16, mixed_bfloat16.
   The float32 run is short and measures the speed; the others get the steps that fit in 45 % of the
   budget (``--steps`` sets all three). Per run: ``images_per_second`` of its ``metrics.json`` (median
   over epochs), the steady rate between its first and last logged steps, ``total_loss`` at a few steps.
4. **serving**: ``python -m lcr_tf.export`` of the float32 run (else the first that finished), then, in a
   child process, ``tf.saved_model.load`` and the median latency of ``serving_default`` on a 640 x 480 JPEG.
5. **tiny**: ``configs/synthetic_tiny.flags`` on the same data, a short run that measures its rate, resumed
   for the steps the time left allows less a margin, exported and evaluated with ``python -m
   lcr_tf.evaluate --dataset=synthetic``: PCKh@0.5, MPJPE, PA-MPJPE and AP of PPI and NMS.
6. A markdown table, also written (after every stage) as JSON to ``--output`` (default ``gpu_check.json``,
   under ``$OUT`` when that variable is set).

Without a GPU the stages run at smoke-test size (ResNet-50 at 128 pixels, 16 RoIs per image in training
and 32 proposals in serving, a few steps) and say so. Every child process has a timeout from the budget
left; a stage with too little left is skipped; a failing one prints its error and the next one runs. The
exit status is 1 if any stage failed or timed out.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from lcr_tf.contracts import cli  # noqa: E402

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
RESNET_CPU_FLAGS = ["--image_size=128", "--rois_per_image=16", "--rpn_pre_nms_top_n_train=2000",
                    "--rpn_post_nms_top_n_train=256", "--rpn_pre_nms_top_n_test=1000", "--rpn_post_nms_top_n_test=32"]
MARGIN_S = 10.0  # kept for the summary


class OutOfBudget(Exception):
    """Too little of the budget is left to start a stage: it is skipped, which is no failure."""


class Check:
    """The budget, the figures and the failures of one run."""

    def __init__(self, budget_s: float, output: str):
        self.start, self.budget, self.output = time.monotonic(), budget_s, output
        self.results: dict = {"budget_s": budget_s, "stages": {}}
        self.failed: list = []

    def save(self) -> str:
        """Writes the figures so far (after every stage: a run killed later still leaves them)."""
        self.results.update(wall_s=round(time.monotonic() - self.start, 1), failed=self.failed)
        summary = table(self.results)
        os.makedirs(os.path.dirname(os.path.abspath(self.output)), exist_ok=True)
        with open(self.output, "w") as f:
            json.dump({**self.results, "summary_markdown": summary}, f, indent=1, default=str)
        return summary

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.start)

    def stage(self, name: str, fn, *args):
        """Runs one stage; its figures (a dict) go to the results; an error is printed and recorded."""
        print(f"\n== {name} ({self.left():.0f} s of budget left)", flush=True)
        t0 = time.monotonic()
        try:
            out = fn(*args) or {}
            out.setdefault("status", "ok")
        except OutOfBudget as e:
            print(f"   skipped: {e}", flush=True)
            out = {"status": "skipped (budget)"}
        except Exception as e:  # noqa: BLE001 - any failure is reported, then the next stage runs
            print(f"   FAILED: {type(e).__name__}: {e}", flush=True)
            out = {"status": "failed", "error": f"{type(e).__name__}: {str(e)[-600:]}"}
            self.failed.append(name)
        out["seconds"] = round(time.monotonic() - t0, 1)
        self.results["stages"][name] = out
        self.save()
        return out

    def run(self, cmd, log: str, timeout: float, need: float = 5.0) -> float:
        """A child process (output to ``log``) within ``timeout`` seconds, not started with less than
        ``need`` seconds; its wall time."""
        timeout = min(timeout, self.left() - MARGIN_S)
        if timeout < max(5.0, need):
            raise OutOfBudget(f"{timeout:.0f} s of the budget left for it, {max(5.0, need):.0f} s needed")
        print("   $ " + " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd)
              + f"   (timeout {timeout:.0f} s)", flush=True)
        t0 = time.monotonic()
        with open(log, "w") as f:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc = None
        wall = time.monotonic() - t0
        if rc != 0:
            with open(log) as f:
                tail = f.read()[-1500:]
            why = f"timed out after {timeout:.0f} s" if rc is None else f"exit status {rc}"
            raise RuntimeError(f"{why} ({log}); last output:\n{tail}")
        return wall


def loss_curve(model_dir: str, tag: str = "total_loss"):
    """[(step, value, wall_time)] of a scalar in the run's train/ TensorBoard events."""
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")  # summary_iterator's deprecation notice
    points = []
    for path in sorted(glob.glob(os.path.join(model_dir, "train", "events.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                if v.tag == tag:
                    value = float(tf.make_ndarray(v.tensor)) if v.HasField("tensor") else v.simple_value
                    points.append((int(event.step), value, event.wall_time))
    return sorted(points)


def summarise_run(model_dir: str, start: int) -> dict:
    """images/s (metrics.json's, and the steady rate between the first and last steps logged after
    ``start``), total_loss at <= 6 steps; printed."""
    info: dict = {}
    points, m = loss_curve(model_dir), {}
    if os.path.exists(os.path.join(model_dir, "metrics.json")):
        with open(os.path.join(model_dir, "metrics.json")) as f:
            m = json.load(f)
    with open(os.path.join(model_dir, "config.json")) as f:
        batch = json.load(f)["flags"]["batch_size"]
    run = [p for p in points if p[0] > start]
    if len(run) >= 2 and run[-1][2] > run[0][2]:
        (s0, _, w0), (s1, _, w1) = run[0], run[-1]
        info["steady_images_per_second"] = round(batch * (s1 - s0) / (w1 - w0), 3)
    picks = sorted({round(i * (len(points) - 1) / 5) for i in range(6)}) if points else []
    info["loss_curve"] = [[points[i][0], round(points[i][1], 4)] for i in picks]
    info.update(batch_size=batch, strategy=m.get("strategy"), replicas=m.get("replicas"),
                images_per_second=round(m["images_per_second"], 3) if m.get("images_per_second") else None)
    print(f"   images/s {info.get('images_per_second')} (steady {info.get('steady_images_per_second')}), "
          f"strategy {info.get('strategy')} x{info.get('replicas')}; total_loss at step: "
          + ", ".join(f"{s}: {v:.3f}" for s, v in info["loss_curve"]), flush=True)
    return info


def train(check: Check, model_dir: str, base: list, steps: int, timeout: float, extra=(), start=0) -> dict:
    """One lcr_tf.train run to step ``steps``, resuming from step ``start`` in ``model_dir``'s checkpoints."""
    if steps <= start:
        raise OutOfBudget("no steps fit in the time left for it")
    log_every = max(1, steps // 20)
    cmd = [sys.executable, "-m", "lcr_tf.train", *base, f"--model_dir={model_dir}", f"--num_steps={steps}",
           f"--steps_per_epoch={max(1, steps // 4)}", f"--log_every={log_every}",
           f"--checkpoint_every={steps}", "--verbose=2", *extra]
    try:
        wall = check.run(cmd, os.path.join(os.path.dirname(model_dir), os.path.basename(model_dir) + ".log"),
                         timeout)
    finally:  # a run cut short still shows its curve
        info = summarise_run(model_dir, start) if os.path.exists(os.path.join(model_dir, "config.json")) else {}
    new = steps - start
    rate = info.get("steady_images_per_second")
    step_s = info["batch_size"] / rate if rate else wall / new
    info.update(steps=steps, wall_s=round(wall, 1), step_s=step_s, overhead_s=max(0.0, wall - new * step_s))
    print(f"   {new} steps in {wall:.1f} s ({1e3 * step_s:.1f} ms/step, {info['overhead_s']:.0f} s start-up)",
          flush=True)
    return info


def fit_steps(time_s: float, run: dict, cap: int) -> int:
    """Steps that fit in ``time_s`` at a measured run's start-up and step time, with a 15 % margin."""
    return max(0, min(cap, int(0.85 * (time_s - 1.1 * run["overhead_s"]) / run["step_s"])))


def devices(check: Check, gpu: bool) -> dict:
    import keras
    import tensorflow as tf
    out = {"tensorflow": tf.__version__, "keras": keras.__version__,
           "devices": [f"{d.device_type}:{d.name}" for d in tf.config.list_physical_devices()]}
    names = [tf.config.experimental.get_device_details(g).get("device_name", "?")
             for g in tf.config.list_physical_devices("GPU")]
    out["gpu"] = ", ".join(names) or None
    print(f"   TensorFlow {out['tensorflow']}, Keras {out['keras']}; devices {out['devices']}; GPU {out['gpu']}")
    if not gpu:
        print("   no GPU found: smoke-test sizes (ResNet-50 at 128 px, 16 training RoIs/image, 32 proposals "
              "in serving, a few steps, less data)")
    return out


def data(check: Check, work: str, gpu: bool) -> dict:
    out_dir = os.path.join(work, "data")
    n_train, n_val = (300, 50) if gpu else (120, 12)
    wall = check.run([sys.executable, "-m", "lcr_tf.demo", f"--output_dir={out_dir}", "--train_steps=0",
                      "--num_poses=2000", "--num_queries=100", "--views=5", f"--num_train_images={n_train}",
                      f"--num_val_images={n_val}"], os.path.join(work, "data.log"), 0.3 * check.budget)
    out = {"train_images": n_train, "val_images": n_val, "wall_s": round(wall, 1), "anchors_k": 8}
    if gpu:
        k200 = os.path.join(out_dir, "anchors_k200.npz")
        check.run([sys.executable, "-m", "beam_jobs.anchor_poses", "--flagfile=configs/anchors_k200.flags",
                   f"--poses={out_dir}/poses.npz", f"--output={k200}"], os.path.join(work, "anchors.log"), 60)
        out["anchors_k"] = 200
    print(f"   {n_train} + {n_val} images, K={out['anchors_k']} anchors for ResNet-50, {wall:.1f} s", flush=True)
    return out


def resnet(check: Check, work: str, gpu: bool, args) -> None:
    """One stage per precision policy, ``resnet50 <policy>``."""
    k = 200 if gpu else 8
    base = ["--flagfile=configs/mpii_resnet50.flags", "--backbone=resnet50", "--backbone_weights=none",
            f"--train_data={work}/data/synthetic/train-*.tfrecord", f"--num_anchors={k}", "--seed=0",
            f"--anchors={work}/data/anchors{'_k200' if gpu else ''}.npz"] + ([] if gpu else RESNET_CPU_FLAGS)
    end = time.monotonic() + min(0.45 * check.budget, check.left() - 0.3 * check.budget)
    steps, probe = args.steps or (60 if gpu else 3), {}
    for precision in PRECISIONS:
        if precision != "float32" and not args.steps and "step_s" in probe:
            if precision == PRECISIONS[1]:  # one step count for both mixed policies, if it fits
                steps = fit_steps((end - time.monotonic()) / 2, probe, cap=1000)
            steps = min(steps, fit_steps(end - time.monotonic(), probe, cap=1000))
        run = check.stage(f"resnet50 {precision}", train, check, f"{work}/r50_{precision}", base,
                          steps if steps >= 2 else 0, max(60.0, end - time.monotonic() + 0.1 * check.budget),
                          [f"--precision={precision}"])
        run.update(image_size=512 if gpu else 128, num_anchors=k)
        probe = run if precision == "float32" else probe


def serving(check: Check, work: str, keep: float, export_s: float) -> dict:
    """Export (expected to take ``export_s``) and latency, leaving ``keep`` seconds to the stages after."""
    done = [p for p in PRECISIONS if os.path.exists(f"{work}/r50_{p}/final.weights.h5")]
    if not done:
        raise RuntimeError("no finished ResNet-50 run to export")
    model = "float32" if "float32" in done else done[0]
    export_s = check.run([sys.executable, "-m", "lcr_tf.export", f"--model_dir={work}/r50_{model}",
                          f"--export_dir={work}/export_r50", "--version=1"], f"{work}/export_r50.log",
                         check.left() - keep, need=export_s)
    print(f"   exported the {model} run in {export_s:.1f} s", flush=True)
    check.run([sys.executable, os.path.abspath(__file__), f"--serve={work}/export_r50/1",
               f"--serve_image={work}/data/synthetic/val-*.tfrecord", f"--output={work}/serve.json"],
              f"{work}/serve.log", check.left() - keep)
    with open(f"{work}/serve.json") as f:
        out = json.load(f)
    out.update(model=model, export_s=round(export_s, 1))
    print(f"   serving_default on a 640x480 JPEG: {out['latency_ms']:.1f} ms (median of {out['repeats']}; "
          f"first call {out['first_call_ms']:.0f} ms, load {out['load_s']:.1f} s)", flush=True)
    return out


def serve(args) -> None:
    """Child process of the serving stage: times ``serving_default`` of the SavedModel ``--serve``."""
    import tensorflow as tf

    from benchmarks.timing import median_time
    from lcr_tf.contracts import features
    for g in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(g, True)
    record = next(iter(tf.data.TFRecordDataset(sorted(glob.glob(args.serve_image))).take(1)))
    encoded = features.decode_example_numpy(record.numpy())[features.IMAGE_ENCODED]
    image = tf.image.resize(tf.io.decode_image(encoded, channels=3, expand_animations=False), (480, 640))
    images = tf.reshape(tf.io.encode_jpeg(tf.cast(tf.round(image), tf.uint8), quality=90), [1])
    t0 = time.perf_counter()
    fn = tf.saved_model.load(args.serve).signatures["serving_default"]
    load_s = time.perf_counter() - t0
    first = median_time(lambda: fn(images=images)["num_detections"].numpy(), 1)
    repeats = 20 if tf.config.list_physical_devices("GPU") else 3
    latency = median_time(lambda: fn(images=images)["num_detections"].numpy(), repeats, warmup=True)
    with open(args.output, "w") as f:
        json.dump({"latency_ms": 1e3 * latency, "first_call_ms": 1e3 * first, "load_s": load_s,
                   "repeats": repeats}, f)


def tiny(check: Check, work: str, gpu: bool, args, export_s: float) -> dict:
    d = f"{work}/data"
    base = ["--flagfile=configs/synthetic_tiny.flags", f"--train_data={d}/synthetic/train-*.tfrecord",
            f"--anchors={d}/anchors.npz", "--num_anchors=8", "--image_size=256", "--seed=0"]
    # Kept for export + evaluation: the measured ResNet export time stands for the tiny export's.
    reserve = max(0.12 * check.budget, 0.5 * export_s + 40)
    model_dir = f"{work}/tiny"
    out: dict = {}
    steps = args.tiny_steps or (100 if gpu else 10)
    lr = [f"--lr_boundaries={max(1, 9 * steps // 10)}"] if args.tiny_steps else ["--lr_boundaries=100000000"]
    probe = train(check, model_dir, base, steps, check.left() - reserve, lr)
    out["probe"] = probe
    if not args.tiny_steps:
        total = steps + fit_steps(check.left() - reserve - MARGIN_S, probe, cap=100000)
        if total >= 2 * steps:  # resumes from the probe's checkpoint, the rate drops at 9/10 as in the demo
            print(f" - resumed to {total} steps", flush=True)
            out["resumed"] = train(check, model_dir, base, total, check.left() - reserve,
                                   [f"--lr_boundaries={9 * total // 10}"], start=steps)
            steps = total
    out["steps"] = steps
    check.run([sys.executable, "-m", "lcr_tf.export", f"--model_dir={model_dir}", f"--export_dir={work}/export_tiny",
               "--version=1"], f"{work}/export_tiny.log", check.left())
    check.run([sys.executable, "-m", "lcr_tf.evaluate", "--dataset=synthetic", f"--saved_model={work}/export_tiny/1",
               f"--data={d}/synthetic/val-*.tfrecord", f"--output={work}/tiny_eval.json"],
              f"{work}/evaluate_tiny.log", check.left())
    with open(f"{work}/tiny_eval.json") as f:
        results = json.load(f)
    for method in ("ppi", "nms"):
        row = results.get(method) or {}
        out[method] = {k: (round(row[k], 4) if isinstance(row.get(k), float) else row.get(k))
                       for k in ("pckh_0.5", "mpjpe_mm", "pa_mpjpe_mm", "ap")}
        print(f"   {method}: " + ", ".join(f"{k} {v}" for k, v in out[method].items()), flush=True)
    return out


def table(results: dict) -> str:
    """One markdown row per stage: its status and time, then its figures."""
    rows = []
    for name, st in results["stages"].items():
        figures = []
        if name == "devices" and "tensorflow" in st:
            figures.append(f"{st['gpu'] or 'CPU only'}; TF {st['tensorflow']}, Keras {st['keras']}")
        if "train_images" in st:
            figures.append(f"{st['train_images']} + {st['val_images']} images, ResNet-50 anchors K={st['anchors_k']}")
        run = st.get("resumed") or st.get("probe") or st
        if "loss_curve" in run:
            curve = run["loss_curve"]
            figures.append(f"{run['steps']} steps, {run['images_per_second']} images/s (steady "
                           f"{run.get('steady_images_per_second')}), total_loss "
                           + (f"{curve[0][1]} -> {curve[-1][1]}" if curve else "-"))
        if "latency_ms" in st:
            figures.append(f"{st['model']} model, serving_default on 640x480: {st['latency_ms']:.1f} ms")
        figures += [f"{m.upper()}: " + ", ".join(f"{k} {v}" for k, v in st[m].items())
                    for m in ("ppi", "nms") if m in st]
        rows.append(f"| {name} | {st['status']} | {st['seconds']} | {'; '.join(figures)} |")
    return "| stage | status | s | figures |\n|---|---|---|---|\n" + "\n".join(rows)


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_float("budget_s", 450.0, "Total wall-time budget in seconds.")
    flags.DEFINE_string("output", os.path.join(os.environ.get("OUT", "."), "gpu_check.json"),
                        "JSON file of the figures (default: gpu_check.json, under $OUT when set).")
    flags.DEFINE_string("work_dir", None, "Folder for the data, runs and logs (kept; default: a temporary "
                        "one, deleted).")
    flags.DEFINE_integer("steps", None, "Steps of each ResNet-50 run (default: a short float32 run, then what "
                         "fits).")
    flags.DEFINE_integer("tiny_steps", None, "Steps of the tiny run (default: as many as the time left allows).")
    flags.DEFINE_bool("skip_resnet", False, "Skip the ResNet-50 runs and serving.")
    flags.DEFINE_bool("skip_tiny", False, "Skip the tiny model's training and evaluation.")
    # The serving child process's flags (hidden from --help).
    flags.DEFINE_string("serve", None, "SavedModel version folder to time (child process).")
    flags.DEFINE_string("serve_image", None, "Shards of the image it serves (child process).")


def main(argv) -> int:
    args = FLAGS
    if args.serve:
        serve(args)
        return 0
    check = Check(args.budget_s, args.output)
    work = os.path.abspath(args.work_dir or tempfile.mkdtemp(prefix="gpu_check_"))
    os.makedirs(work, exist_ok=True)
    print(f"gpu_check: budget {args.budget_s:.0f} s, work dir {work}", flush=True)
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    for g in gpus:  # this process never computes on it; the children get all its memory
        tf.config.experimental.set_memory_growth(g, True)
    gpu = bool(gpus)
    check.stage("devices", devices, check, gpu)
    if check.stage("data", data, check, work, gpu)["status"] == "ok":
        export_s = 30.0 if gpu else 90.0
        if not args.skip_resnet:
            resnet(check, work, gpu, args)
            s = check.stage("serving", serving, check, work, 0 if args.skip_tiny else 0.25 * args.budget_s, export_s)
            export_s = s.get("export_s", export_s)
        if not args.skip_tiny:
            check.stage("tiny", tiny, check, work, gpu, args, export_s)
    summary = check.save()
    print("\n" + summary + f"\n\nwall time {check.results['wall_s']} s; failed: {check.failed or 'none'}")
    print(f"wrote {args.output}", flush=True)
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if check.failed else 0


if __name__ == "__main__":
    define_flags()
    cli.run(main, hidden=("serve", "serve_image"))
