"""lcr_tf.training.config: one default per setting (the dataclass field's), flags checked against the fields, the
config tree through JSON and back, and the run folder's config.json."""

import dataclasses
import glob
import json
import os

import pytest
from absl import flags

from lcr_tf.contracts import run_folder
from lcr_tf.poses import anchors as anchors_lib
from lcr_tf.poses import body_model
from lcr_tf.training import config as config_lib

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Shipped flagfiles of other programs (the anchor and corpus jobs).
_NOT_TRAINER = ("anchors_h36m_k100", "anchors_k200", "cmu_corpus")


@pytest.fixture(scope="module")
def anchors_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("anchors") / "anchors.npz")
    anchors_lib.cluster_poses(body_model.sample_poses(300, seed=0).poses3d, 6, 4, seed=0).save(path)
    return path


def _args(anchors_path, *extra):
    return ["--train_data=unused-*.tfrecord", f"--anchors={anchors_path}", "--model_dir=unused", *extra]


def test_flag_defaults_are_the_field_defaults():
    for spec in config_lib.FLAG_SPECS:
        if spec.name in ("num_anchors", "num_joints"):
            assert spec.flag_default == 0  # "the anchors file's"
            continue
        fv = flags.FlagValues()
        config_lib.define_flags(fv)
        flag_default = fv[spec.name].default
        if spec.kind in ("ints", "floats"):
            cast = int if spec.kind == "ints" else float
            flag_default = tuple(cast(v) for v in flag_default)
        assert flag_default == spec.field_default, spec.name


def test_every_field_has_a_flag_or_a_reason():
    by_field = {(s.section, s.name) for s in config_lib.FLAG_SPECS}
    assert len(by_field) == len(config_lib.FLAG_SPECS)
    for section in config_lib.SECTIONS:
        cls = type(getattr(config_lib.TrainConfig(), section))
        for field in dataclasses.fields(cls):
            key = (section, field.name)
            assert (key in by_field) != (key in config_lib.DERIVED_FIELDS), key


def test_defaults_taken_from_the_trainer_flags():
    """The defaults users got from the trainer are the fields' defaults now."""
    c = config_lib.TrainConfig()
    assert c.model.weight_decay == 1e-4
    assert (c.input.batch_size, c.input.shuffle_buffer) == (4, 256)
    assert c.optimization.lr_values == (1e-3, 1e-4) and c.run.num_steps == 1000


def test_round_trip_through_json(anchors_path):
    tiny = os.path.join(_REPO, "configs/synthetic_tiny.flags")
    c = config_lib.parse(_args(anchors_path, f"--flagfile={tiny}",
                               "--refinement", "--lr_boundaries=10,20", "--lr_values=1,0.5,0.25"))
    assert config_lib.TrainConfig.from_dict(c.to_dict()) == c
    assert config_lib.TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    default = config_lib.TrainConfig()
    assert config_lib.TrainConfig.from_dict(default.to_dict()) == default
    with pytest.raises(ValueError, match="no_such_field"):
        config_lib.TrainConfig.from_dict({"run": {"no_such_field": 1}})


def test_parse_and_flags_agree(anchors_path):
    c = config_lib.parse(_args(anchors_path, "--num_steps=7", "--batch_size=2", "--image_size=128",
                               "--seed=5", "--mixed_precision", "--data=other-*.tfrecord"))
    assert (c.run.num_steps, c.input.batch_size, c.run.seed, c.model.seed) == (7, 2, 5, 5)
    assert c.model.image_size == c.input.image_size == 128 and c.input.num_epochs is None
    assert (c.model.num_anchors, c.model.num_joints) == (6, 13)  # from the anchors file
    assert c.optimization.precision == "mixed_float16" and c.optimization.loss_scale == "dynamic"
    assert c.data.train_data == "other-*.tfrecord"
    # The flag view of a config gives the config again.
    again = config_lib.parse([f"--{k}={','.join(v) if isinstance(v, list) else v}"
                              for k, v in config_lib.to_flags(c).items() if v is not None])
    assert again == c
    assert "num_steps" not in flags.FLAGS  # parse() keeps the process's flags untouched


def test_bad_settings_name_their_flag(anchors_path):
    with pytest.raises(config_lib.ConfigError, match="--lr_values"):
        config_lib.parse(_args(anchors_path, "--lr_values=0.1"))
    with pytest.raises(config_lib.ConfigError, match="--mixed_precision"):
        config_lib.parse(_args(anchors_path, "--mixed_precision", "--precision=mixed_bfloat16"))
    with pytest.raises(config_lib.ConfigError, match="--model_dir is required"):
        config_lib.parse(_args(anchors_path)[:2])
    with pytest.raises(config_lib.ConfigError, match="--anchors: no such file"):
        config_lib.parse(_args("missing.npz"))
    with pytest.raises(config_lib.ConfigError, match="--rpn_scales must be numbers"):
        config_lib.parse(_args(anchors_path, "--rpn_scales=a,b"))
    c = config_lib.parse(_args(anchors_path, "--num_anchors=200"))
    with pytest.raises(config_lib.ConfigError, match="--num_anchors=200"):
        config_lib.check_anchors(c, anchors_lib.load(anchors_path))


def test_every_trainer_flagfile_parses(anchors_path):
    for path in sorted(glob.glob(os.path.join(_REPO, "configs", "*.flags"))):
        name = os.path.basename(path)[:-len(".flags")]
        if name in _NOT_TRAINER:
            continue
        c = config_lib.parse(_args(anchors_path, f"--flagfile={path}", "--num_anchors=0", "--num_joints=0"))
        assert c.model.num_anchors == 6, name


def test_run_folder_config_records_the_skeleton(tmp_path):
    c = config_lib.TrainConfig()
    run_folder.write_config(str(tmp_path), {**c.to_dict(), "flags": config_lib.to_flags(c)},
                            skeleton="h36m17")
    run = run_folder.read_config(str(tmp_path))
    assert run_folder.skeleton_name(run) == "h36m17"
    assert config_lib.TrainConfig.from_dict(run) == c
    # A folder written before the skeleton was recorded: None, and the anchors file it names.
    old = {"flags": {"anchors": "a.npz"}, "model": c.model.to_dict()}
    (tmp_path / "old").mkdir()
    with open(tmp_path / "old" / run_folder.CONFIG_FILE, "w") as f:
        json.dump(old, f)
    run = run_folder.read_config(str(tmp_path / "old"))
    assert run_folder.skeleton_name(run) is None and run_folder.anchors_file(run) == "a.npz"
    with pytest.raises(FileNotFoundError, match="config.json"):
        run_folder.read_config(str(tmp_path / "none"))
