"""The fault matrix: every command against each kind of bad input, as a user or a damaged copy gives it.

A cell passes when the command exits non-zero with exactly one ``error:`` line on stderr that names the
file (or flag, or field) at fault, prints no traceback, and leaves nothing under its output name. The
cells here are whole command lines (the ``cli.run`` commands in a subprocess, the Beam jobs, whose
``main(argv)`` keeps its flags private, in this process). Finer cells live next to each reader and
writer and are listed in README.md ("Reliability"): bad records inside a dataset (written + rejected =
read), corrupt TFRecords during training, hostile images sent to the served model, kills in the middle.
"""

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from concurrent import futures

import pytest

from beam_jobs import build_tfrecords, mocap_poses
from lcr_tf import datasets as lcr_datasets
from lcr_tf.poses import anchors as anchors_lib
from lcr_tf.poses import body_model
from lcr_tf.training import step as training_step

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K = 4

MISSING, EMPTY, TRUNCATED, WRONG_FORMAT, WRONG_UNITS = (
    "missing input", "empty input", "truncated file", "wrong format", "wrong units or shape")
FAULTS = (MISSING, EMPTY, TRUNCATED, WRONG_FORMAT, WRONG_UNITS)


@dataclasses.dataclass(frozen=True)
class Cell:
    command: str          # the module of ``python -m``
    fault: str            # one of FAULTS
    args: tuple           # command line; "{name}" is replaced by the fixture path of that name
    message: str          # regex the one error line must match: it names the file, flag or field
    output: str = ""      # fixture name of the output path, which must not exist afterwards

    @property
    def id(self):
        return f"{self.command.split('.')[-1]}: {self.fault}: {self.message[:30]}"


def _bad_files(root):
    """Damaged inputs of every kind, beside good ones. Returns {name: path}."""
    p = {}
    corpus = body_model.sample_poses(300, seed=0)
    p["poses"] = str(root / "poses.npz")
    corpus.save(p["poses"])
    anchors_lib.cluster_poses(corpus.poses3d, K, 2, seed=0).save(str(root / "anchors.npz"))
    p["anchors"] = str(root / "anchors.npz")
    dataclasses.replace(corpus, poses3d=corpus.poses3d * 1000.0).save(str(root / "poses_mm.npz"))
    p["poses_mm"] = str(root / "poses_mm.npz")
    for name, data in (("empty.npz", b""), ("empty.json", b""), ("empty.tfrecord", b""), ("empty.jpg", b""),
                       ("text.jpg", b"not an image\n"), ("text.npz", b'{"poses3d": []}\n'),
                       ("cut.json", b'{"images": [{"id": 1,'), ("list.json", b"[1, 2, 3]\n"),
                       ("text.tfrecord", b"not a record\n" * 10), ("text.bvh", b"HIERARCHY\nROOT hips\n")):
        (root / name).write_bytes(data)
        p[name.replace(".", "_")] = str(root / name)
    data = open(p["poses"], "rb").read()
    (root / "cut.npz").write_bytes(data[: len(data) // 2])
    p["cut_npz"] = str(root / "cut.npz")
    for folder in ("empty_dir", "bvh_dir"):
        (root / folder).mkdir()
        p[folder] = str(root / folder)
    shutil.copy(p["text_bvh"], root / "bvh_dir" / "a.bvh")
    p["out"] = str(root / "out")
    return p


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    p = _bad_files(root)
    # Two good synthetic records, for the cells whose fault is elsewhere.
    assert build_tfrecords.main(["build_tfrecords", "--dataset=synthetic", "--num_images=2",
                                 "--reader_option=height=64", "--reader_option=width=64",
                                 f"--anchors={p['anchors']}", f"--poses={p['poses']}",
                                 f"--output={root / 'good' / 'val'}", "--num_shards=1"]) == 0
    p["good_data"] = str(root / "good" / "val-*.tfrecord")
    # A model folder and its export, for the commands downstream of training.
    from lcr_tf.modeling import factory
    from lcr_tf.serving import export as export_lib
    from lcr_tf.serving import inference
    anchor_set = anchors_lib.load(p["anchors"])
    config = factory.ModelConfig(num_anchors=K, image_size=64, rpn_scales=(16.0, 32.0, 64.0), rpn_channels=16,
                                 rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=10, fc_dims=(32, 32), seed=0)
    model = training_step.build_model(config, anchor_set)
    import tensorflow as tf
    model(tf.zeros([1, 64, 64, 3]))
    p["model_dir"] = str(root / "run")
    inference.save_model_dir(model, p["model_dir"])
    p["saved_model"] = export_lib.export(p["model_dir"], str(root / "serving"),
                                         params=inference.default_params(K, "paper", max_candidates=40,
                                                                         max_detections=5))
    for name, damage in (("run_cut_weights", "weights"), ("run_cut_config", "config"), ("run_empty", "all")):
        target = root / name
        shutil.copytree(p["model_dir"], target)
        if damage == "weights":
            w = target / "final.weights.h5"
            w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
        elif damage == "config":
            (target / "config.json").write_text('{"model": {"num_anchors": ')
        else:
            for f in target.iterdir():
                f.unlink()
        p[name] = str(target)
    return p


# --------------------------------------------------------------------------------------------------
# The matrix. Commands run with ``python -m``; each cell is one fault of one input.
# --------------------------------------------------------------------------------------------------

_TRAIN = ("--backbone=tiny", "--image_size=64", "--batch_size=2", "--train_steps=1", "--num_anchors=0",
          "--model_dir={out}")
SUBPROCESS_CELLS = [
    # anchor_poses: the corpus it clusters.
    Cell("beam_jobs.anchor_poses", MISSING, ("--poses={out}.npz", "--output={out}/a.npz", "--num_anchors=2"),
         r"out-\d+\.npz: no such file", "out"),
    Cell("beam_jobs.anchor_poses", EMPTY, ("--poses={empty_npz}", "--output={out}/a.npz", "--num_anchors=2"),
         r"empty\.npz: not a readable \.npz", "out"),
    Cell("beam_jobs.anchor_poses", TRUNCATED, ("--poses={cut_npz}", "--output={out}/a.npz", "--num_anchors=2"),
         r"cut\.npz: not a readable \.npz", "out"),
    Cell("beam_jobs.anchor_poses", WRONG_FORMAT, ("--poses={text_npz}", "--output={out}/a.npz",
                                                  "--num_anchors=2"), r"text\.npz: not a readable \.npz", "out"),
    Cell("beam_jobs.anchor_poses", WRONG_UNITS, ("--poses={poses_mm}", "--output={out}/a.npz",
                                                 "--num_anchors=2"), r"poses_mm\.npz: poses3d: .*millimetres",
         "out"),
    # render_synthetic: the corpus it renders.
    Cell("beam_jobs.render_synthetic", MISSING, ("--poses={out}.npz", "--output_dir={out}", "--num_images=1"),
         r"out-\d+\.npz: no such file", "out"),
    Cell("beam_jobs.render_synthetic", TRUNCATED, ("--poses={cut_npz}", "--output_dir={out}", "--num_images=1"),
         r"cut\.npz: not a readable \.npz", "out"),
    Cell("beam_jobs.render_synthetic", WRONG_UNITS, ("--poses={poses_mm}", "--output_dir={out}",
                                                     "--num_images=1"),
         r"poses_mm\.npz: poses3d: the median body extent .* millimetres", "out"),
    # train: shards and anchors.
    Cell("lcr_tf.train", MISSING, _TRAIN + ("--train_data={out}-*.tfrecord", "--anchors={anchors}"),
         r"no TFRecord shard matches '.*out-\d+-\*\.tfrecord'", "out"),
    # Not a TFRecord file: it stops like a corrupt record does, keeping a checkpoint of the step reached
    # (tests/test_shards.py), so its run folder is not checked for emptiness.
    Cell("lcr_tf.train", WRONG_FORMAT, _TRAIN + ("--train_data={text_tfrecord}", "--anchors={anchors}"),
         r"text\.tfrecord: record 0 \(byte offset 0\) is corrupt; the run stopped at step \d+"),
    Cell("lcr_tf.train", EMPTY, _TRAIN + ("--train_data={empty_tfrecord}", "--anchors={anchors}"),
         r"empty\.tfrecord", "out"),
    Cell("lcr_tf.train", WRONG_UNITS, _TRAIN + ("--train_data={text_tfrecord}", "--anchors={poses}"),
         r"poses\.npz: missing array\(s\) \['pose3d', 'pose2d', 'upper_body'\]", "out"),
    # export: the run folder.
    Cell("lcr_tf.export", MISSING, ("--model_dir={out}", "--export_dir={out}"), r"out-\d+.config\.json: no such file",
         "out"),
    Cell("lcr_tf.export", EMPTY, ("--model_dir={run_empty}", "--export_dir={out}"),
         r"run_empty.config\.json: no such file", "out"),
    Cell("lcr_tf.export", TRUNCATED, ("--model_dir={run_cut_weights}", "--export_dir={out}"),
         r"run_cut_weights.final\.weights\.h5", "out"),
    Cell("lcr_tf.export", WRONG_FORMAT, ("--model_dir={run_cut_config}", "--export_dir={out}"),
         r"run_cut_config.config\.json: not JSON", "out"),
    # predict: the model and the images.
    Cell("lcr_tf.predict", MISSING, ("--saved_model={out}", "--input={text_jpg}", "--output_dir={out}"),
         r"out-\d+: neither a SavedModel", "out"),
    Cell("lcr_tf.predict", WRONG_FORMAT, ("--saved_model={run_empty}", "--input={text_jpg}",
                                          "--output_dir={out}"), r"run_empty: neither a SavedModel", "out"),
    Cell("lcr_tf.predict", EMPTY, ("--saved_model={saved_model}", "--input={empty_jpg}", "--output_dir={out}"),
         r"empty\.jpg", "out"),
    Cell("lcr_tf.predict", TRUNCATED, ("--saved_model={saved_model}", "--input={text_jpg}",
                                       "--output_dir={out}"), r"text\.jpg", "out"),
    # evaluate: the ground truth and a predictions file.
    Cell("lcr_tf.evaluate", MISSING, ("--dataset=synthetic", "--data={out}-*.tfrecord",
                                      "--saved_model={saved_model}", "--output={out}"),
         r"no TFRecord shard matches", "out"),
    Cell("lcr_tf.evaluate", EMPTY, ("--dataset=synthetic", "--data={empty_tfrecord}",
                                    "--saved_model={saved_model}", "--output={out}"), r"empty\.tfrecord", "out"),
    Cell("lcr_tf.evaluate", WRONG_FORMAT, ("--dataset=synthetic", "--data={text_tfrecord}",
                                           "--saved_model={saved_model}", "--output={out}"),
         r"text\.tfrecord", "out"),
    Cell("lcr_tf.evaluate", TRUNCATED, ("--dataset=synthetic", "--data={good_data}",
                                        "--predictions={cut_json}", "--output={out}"),
         r"cut\.json: not JSON", "out"),
    Cell("lcr_tf.evaluate", WRONG_UNITS, ("--dataset=synthetic", "--data={good_data}",
                                          "--predictions={list_json}", "--output={out}"),
         r"list\.json: not a predictions file", "out"),
    # the serving client: what it would send.
    Cell("lcr_tf.serving.client", MISSING, ("--server=http://127.0.0.1:9", "--images={out}.jpg",
                                            "--output={out}"), r"out-\d+\.jpg", "out"),
    Cell("lcr_tf.serving.client", EMPTY, ("--server=http://127.0.0.1:9", "--images={empty_jpg}",
                                          "--output={out}"), r"empty\.jpg", "out"),
    Cell("lcr_tf.serving.client", WRONG_FORMAT, ("--server=http://127.0.0.1:9", "--images={text_jpg}",
                                                 "--signature_name=detect_with_options", "--options={{bad",
                                                 "--output={out}"), r"--options", "out"),
]

_BTF = ("--anchors={anchors}", "--poses={poses}", "--output={out}/records")
IN_PROCESS_CELLS = [
    Cell("beam_jobs.mocap_poses", MISSING, ("--input={out}", "--output={out}/poses.npz"),
         r"no \.bvh or \.amc files found for --input=.*out", "out"),
    Cell("beam_jobs.mocap_poses", EMPTY, ("--input={empty_dir}", "--output={out}/poses.npz"),
         r"no \.bvh or \.amc files found for --input=.*empty_dir", "out"),
    Cell("beam_jobs.mocap_poses", WRONG_FORMAT, ("--input={bvh_dir}", "--output={out}/poses.npz"),
         r"no MoCap file could be read \(.*a\.bvh: ", "out"),
    Cell("beam_jobs.build_tfrecords", MISSING, ("--dataset=coco", "--split=val", "--input={out}.json") + _BTF,
         r"out-\d+\.json", "out"),
    Cell("beam_jobs.build_tfrecords", EMPTY, ("--dataset=coco", "--split=val", "--input={empty_json}") + _BTF,
         r"empty\.json", "out"),
    Cell("beam_jobs.build_tfrecords", TRUNCATED, ("--dataset=coco", "--split=val", "--input={cut_json}") + _BTF,
         r"cut\.json", "out"),
    Cell("beam_jobs.build_tfrecords", WRONG_FORMAT, ("--dataset=coco", "--split=val", "--input={list_json}")
         + _BTF, r"list\.json", "out"),
    Cell("beam_jobs.build_tfrecords", MISSING, ("--dataset=mpii", "--split=train", "--input={out}") + _BTF,
         r"out-\d+.*\.mat does not exist", "out"),
    Cell("beam_jobs.build_tfrecords", MISSING, ("--dataset=lsp", "--input={empty_dir}") + _BTF,
         r"empty_dir.joints\.mat does not exist", "out"),
    Cell("beam_jobs.build_tfrecords", MISSING, ("--dataset=muco", "--input={empty_dir}") + _BTF,
         r"empty_dir.MuCo-3DHP\.json does not exist", "out"),
    Cell("beam_jobs.build_tfrecords", EMPTY, ("--dataset=mupots", "--input={empty_dir}") + _BTF,
         r"--input .*empty_dir holds none of the folders TS1", "out"),
    Cell("beam_jobs.build_tfrecords", EMPTY, ("--dataset=h36m", "--split=test", "--protocol=1",
                                              "--input={empty_dir}") + _BTF, r"empty_dir", "out"),
    Cell("beam_jobs.build_tfrecords", TRUNCATED, ("--dataset=synthetic", "--num_images=1",
                                                  "--anchors={cut_npz}", "--poses={poses}", "--output={out}/r"),
         r"cut\.npz: not a readable \.npz", "out"),
    Cell("beam_jobs.build_tfrecords", WRONG_UNITS, ("--dataset=synthetic", "--num_images=1",
                                                    "--anchors={anchors}", "--poses={poses_mm}",
                                                    "--output={out}/r"),
         r"poses_mm\.npz: poses3d: .*millimetres", "out"),
    Cell("beam_jobs.build_tfrecords", WRONG_UNITS, ("--dataset=synthetic", "--num_images=1",
                                                    "--anchors={poses}", "--poses={poses}", "--output={out}/r"),
         r"poses\.npz: missing array\(s\) \['pose3d', 'pose2d', 'upper_body'\]", "out"),
]

_MAINS = {"beam_jobs.mocap_poses": mocap_poses.main, "beam_jobs.build_tfrecords": build_tfrecords.main}


def _paths(files, index):
    """The fixture paths with ``out`` made the cell's own (cells run side by side)."""
    return dict(files, out=f"{files['out']}-{index}")


def _argv(cell, files):
    return [a.format(**files) for a in cell.args]


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if re.search(r"(^|: )error: ", line)]


def _check(cell, files, code, stderr):
    lines = _error_lines(stderr)
    assert code not in (0, None), f"{cell.id}: exit status {code}\n{stderr[-2000:]}"
    assert "Traceback" not in stderr, f"{cell.id}: traceback\n{stderr[-3000:]}"
    assert len(lines) == 1, f"{cell.id}: {len(lines)} error lines\n{stderr[-2000:]}"
    assert re.search(cell.message, lines[0]), f"{cell.id}: {lines[0]!r} does not match {cell.message!r}"
    if cell.output:  # nothing under the output name (a folder made for it may stay, empty)
        out = files[cell.output]
        left = [os.path.join(d, f) for d, _, names in os.walk(out) for f in names] if os.path.isdir(out) \
            else [out] * os.path.exists(out)
        assert not left, f"{cell.id}: left {left}"


def _run_subprocess(cell, files):
    proc = subprocess.run([sys.executable, "-m", cell.command, *_argv(cell, files)], cwd=_REPO,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stderr


def test_commands_refuse_bad_input_in_one_line(files):
    """Every subprocess cell (two at a time: each is mostly TensorFlow's import)."""
    with futures.ThreadPoolExecutor(2) as pool:
        paths = [_paths(files, i) for i in range(len(SUBPROCESS_CELLS))]
        results = list(pool.map(_run_subprocess, SUBPROCESS_CELLS, paths))
    failures = []
    for cell, (code, stderr), cell_files in zip(SUBPROCESS_CELLS, results, paths):
        try:
            _check(cell, cell_files, code, stderr)
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("index", range(len(IN_PROCESS_CELLS)), ids=lambda i: IN_PROCESS_CELLS[i].id)
def test_beam_jobs_refuse_bad_input_in_one_line(index, files, capsys):
    cell, paths = IN_PROCESS_CELLS[index], _paths(files, 1000 + index)
    code = _MAINS[cell.command]([cell.command, *_argv(cell, paths)])
    _check(cell, paths, code, capsys.readouterr().err)


def test_the_matrix_covers_every_command():
    commands = {c.command for c in SUBPROCESS_CELLS + IN_PROCESS_CELLS}
    assert commands == {"beam_jobs.mocap_poses", "beam_jobs.anchor_poses", "beam_jobs.render_synthetic",
                        "beam_jobs.build_tfrecords", "lcr_tf.train", "lcr_tf.export", "lcr_tf.predict",
                        "lcr_tf.evaluate", "lcr_tf.serving.client"}
    for cell in SUBPROCESS_CELLS + IN_PROCESS_CELLS:
        assert cell.fault in FAULTS
    # build_tfrecords has cells for every dataset reader.
    datasets = {a.split("=")[1] for c in IN_PROCESS_CELLS for a in c.args if a.startswith("--dataset=")}
    assert datasets == set(lcr_datasets.reader_names())


def test_a_misspelt_job_flag_is_refused_not_passed_to_beam(files, capsys):
    """Beam only logs the arguments it cannot parse; a job flag that does not exist (here the renderer's
    size, which is a --reader_option) must stop the job instead of being ignored."""
    paths = _paths(files, 2000)
    code = build_tfrecords.main(["build_tfrecords", "--dataset=synthetic", "--num_images=1", "--height=64",
                                 f"--anchors={paths['anchors']}", f"--poses={paths['poses']}",
                                 f"--output={paths['out']}/r"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown flag(s) --height: neither this job's" in err
    assert not os.path.exists(paths["out"])
    # Beam's own options still pass.
    from beam_jobs import runner_options
    assert runner_options.unknown_pipeline_options(["--runner=DirectRunner", "--direct_num_workers=2"]) == []
