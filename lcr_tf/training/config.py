"""A training run's configuration as data: :class:`TrainConfig` and its flags.

A :class:`TrainConfig` is a tree of frozen dataclasses:

* ``model``: :class:`lcr_tf.modeling.factory.ModelConfig` (architecture, targets, weight decay);
* ``input``: :class:`lcr_tf.data.pipeline.InputConfig` (batch, augmentation);
* ``optimization``: :class:`OptimizationConfig` (update rule, learning-rate schedule, clipping,
  precision policy and its loss scaling);
* ``run``: :class:`RunConfig` (model folder, steps, seed, strategy, checkpoints, TensorBoard);
* ``data``: :class:`DataConfig` (training and validation shards, anchors, initial weights).

Every default lives once, in these dataclass fields. The trainer's flags (:func:`define_flags`) take their
defaults from the fields and :func:`from_flags` turns parsed flags into a config; a flagfile only
overrides. :meth:`TrainConfig.to_dict` is the JSON that ``config.json`` of a run folder holds
(:mod:`lcr_tf.contracts.run_folder`) and :meth:`TrainConfig.from_dict` reads it back.

Fields set from others, without a flag of their own: ``input.image_size`` is ``model.image_size``
(``--image_size``), ``model.seed`` is ``run.seed`` (``--seed``) and ``input.num_epochs`` is None for
training. ``--num_anchors`` / ``--num_joints`` default to 0, "the anchors file's"; :func:`from_flags`
reads K and J from ``--anchors`` then.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from absl import flags

from lcr_tf.data.pipeline import InputConfig
from lcr_tf.modeling.factory import ModelConfig
from lcr_tf.training import distribute
from lcr_tf.training import precision as precision_lib

OPTIMIZERS = ("sgd", "adam")
PRECISIONS = precision_lib.POLICIES + (precision_lib.AUTO,)


class ConfigError(ValueError):
    """A setting that cannot work; the message names its flag."""


FlagError = ConfigError


@dataclasses.dataclass(frozen=True)
class OptimizationConfig:
    """The update rule and its numerics.

    Attributes:
      optimizer: ``"sgd"`` (momentum, the paper's) or ``"adam"`` (``beta_1`` = ``momentum``).
      momentum: SGD momentum, or Adam's beta_1.
      lr_boundaries: steps where the piecewise-constant learning rate changes (increasing).
      lr_values: the learning rates, one more than ``lr_boundaries``.
      clipnorm: clip the global gradient (all replicas, all variables) to this norm; 0 does not clip.
      precision: Keras precision policy, one of :data:`PRECISIONS`.
    Weight decay is the model's L2 loss term (``ModelConfig.weight_decay``); the loss scale follows the
    precision (:attr:`loss_scale`).
    """

    optimizer: str = "sgd"
    momentum: float = 0.9
    lr_boundaries: Tuple[int, ...] = (100000,)
    lr_values: Tuple[float, ...] = (0.001, 0.0001)
    clipnorm: float = 0.0
    precision: str = "float32"

    def __post_init__(self):
        object.__setattr__(self, "lr_boundaries", tuple(int(v) for v in self.lr_boundaries))
        object.__setattr__(self, "lr_values", tuple(float(v) for v in self.lr_values))
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"--optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {PRECISIONS}, got {self.precision!r}")
        bounds, values = list(self.lr_boundaries), list(self.lr_values)
        if len(values) != len(bounds) + 1 or sorted(bounds) != bounds:
            raise ConfigError(f"--lr_values needs one more value than the increasing --lr_boundaries; got "
                              f"{len(values)} values for boundaries {bounds}")
        if self.clipnorm < 0:
            raise ConfigError(f"--clipnorm must be >= 0, got {self.clipnorm}")

    @property
    def loss_scale(self) -> Optional[str]:
        """``"dynamic"`` under mixed_float16 (dynamic loss scaling), else None (no scaling)."""
        return "dynamic" if self.precision == "mixed_float16" else None


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Where and how long a run trains, and what it records.

    Attributes:
      model_dir: the run folder (:mod:`lcr_tf.contracts.run_folder`); one holding checkpoints resumes.
      num_steps: total training steps (a resumed run stops there too).
      steps_per_epoch: steps between validations and image summaries (a Keras epoch).
      checkpoint_every, keep_checkpoints: steps between checkpoints; checkpoints kept.
      log_every: steps between TensorBoard scalar writes.
      val_steps: validation batches per evaluation.
      num_summary_images: validation images drawn with their top pose in TensorBoard.
      seed: seed of the initialisation, sampling and input stream.
      deterministic: deterministic ops and a fixed input order.
      strategy: tf.distribute strategy (:data:`lcr_tf.training.distribute.STRATEGIES`).
      cpu_replicas: logical CPU devices to mirror over.
      verbose: Keras progress output (0, 1 or 2).
      progress_every_s: seconds between progress lines (step, images/s, losses, time left); 0: none.
    """

    model_dir: Optional[str] = None
    num_steps: int = 1000
    steps_per_epoch: int = 100
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    val_steps: int = 10
    num_summary_images: int = 4
    seed: int = 0
    deterministic: bool = False
    strategy: str = "auto"
    cpu_replicas: int = 1
    verbose: int = 1
    progress_every_s: float = 30.0

    def __post_init__(self):
        for name in ("num_steps", "steps_per_epoch", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.cpu_replicas < 1:
            raise ConfigError(f"--cpu_replicas must be >= 1, got {self.cpu_replicas}")
        if not self.progress_every_s >= 0:
            raise ConfigError(f"--progress_every_s must be >= 0, got {self.progress_every_s}")
        if self.strategy not in distribute.STRATEGIES:
            raise ConfigError(f"--strategy must be one of {distribute.STRATEGIES}, got {self.strategy!r}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What a run reads.

    Attributes:
      train_data: TFRecord shards to train on (a glob or comma-separated globs).
      val_data: shards for validation (optional).
      anchors: the anchors.npz of the anchor-poses (fixes K and J).
      init_weights: fine-tuning: a final.weights.h5 loaded before training (not when resuming).
    """

    train_data: Optional[str] = None
    val_data: Optional[str] = None
    anchors: Optional[str] = None
    init_weights: Optional[str] = None


SECTIONS = ("model", "input", "optimization", "run", "data")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run: the sections of the module docstring."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    input: InputConfig = dataclasses.field(default_factory=InputConfig)
    optimization: OptimizationConfig = dataclasses.field(default_factory=OptimizationConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)

    def __post_init__(self):
        if self.input.image_size != self.model.image_size:
            raise ConfigError(f"input.image_size={self.input.image_size} differs from model.image_size="
                              f"{self.model.image_size} (both are --image_size)")

    def to_dict(self) -> Dict[str, Dict[str, Any]]:
        """JSON-ready dict of the sections (tuples become lists)."""
        return {name: _section_dict(getattr(self, name)) for name in SECTIONS}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; other keys (config.json's "flags", "skeleton", ...) are ignored,
        unknown fields within a section are an error naming them. A missing section takes its defaults."""
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        classes = dict(model=ModelConfig, input=InputConfig, optimization=OptimizationConfig, run=RunConfig,
                       data=DataConfig)
        assert set(types) == set(classes)
        return cls(**{name: _section_from_dict(classes[name], values.get(name) or {}) for name in SECTIONS})

    def replace(self, **sections) -> "TrainConfig":
        """A copy with some fields changed, e.g.
        ``replace(run=dict(num_steps=10), model=dict(refinement=True))``."""
        return dataclasses.replace(self, **{
            name: dataclasses.replace(getattr(self, name), **changes) for name, changes in sections.items()})


def _section_dict(section) -> Dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(section).items()}


def _section_from_dict(cls, values: Mapping[str, Any]):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}; known: {sorted(names)}")
    return cls(**dict(values))


def field_default(cls, name: str) -> Any:
    """The default of dataclass ``cls``'s field ``name``."""
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()


# --------------------------------------------------------------------------------------------------
# Flags
# --------------------------------------------------------------------------------------------------

_CLASSES = dict(model=ModelConfig, input=InputConfig, optimization=OptimizationConfig, run=RunConfig,
                data=DataConfig)


@dataclasses.dataclass(frozen=True)
class FlagSpec:
    """A trainer flag: its config field (``section.field``), kind and help. ``default`` overrides the
    field's default only for the flags whose value means something else (``num_anchors`` 0: "the anchors
    file's")."""

    name: str
    section: str
    kind: str  # string, integer, float, boolean, enum, ints, floats
    help: str
    choices: Tuple[str, ...] = ()
    lower_bound: Optional[float] = None
    upper_bound: Optional[float] = None
    default: Any = None  # None: the field's default

    @property
    def field_default(self) -> Any:
        return field_default(_CLASSES[self.section], self.name)

    @property
    def flag_default(self) -> Any:
        value = self.field_default if self.default is None else self.default
        if self.kind in ("ints", "floats"):
            return [_format_number(v) for v in value]
        return value


def _format_number(v) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _spec(name, section, kind, help, **kw) -> FlagSpec:
    return FlagSpec(name, section, kind, help, **kw)


FLAG_SPECS: Tuple[FlagSpec, ...] = (
    # --- data ---
    _spec("train_data", "data", "string", "TFRecord shards to train on: a glob or comma-separated globs "
          "(beam_jobs/build_tfrecords.py output, e.g. 'out/train-*.tfrecord'). Before training, each shard's "
          "size is checked against the PREFIX-manifest.json the build job wrote beside it (a stat, no read): "
          "a shard cut, missing or not listed stops the run in one line; shards without a manifest (older "
          "outputs, your own) get a warning line and are used unchecked. python -m lcr_tf.data.verify reads "
          "them all."),
    _spec("val_data", "data", "string", "TFRecord shards for validation losses, recall and images "
          "(optional)."),
    _spec("anchors", "data", "string", "anchors.npz of the anchor-poses (beam_jobs/anchor_poses.py); fixes K "
          "and J."),
    _spec("model_dir", "run", "string", "Directory of checkpoints, TensorBoard logs, config.json and the "
          "final weights. A directory holding checkpoints resumes from the latest one."),
    # --- input pipeline ---
    _spec("batch_size", "input", "integer", "Global batch size in images (split over replicas)."),
    _spec("max_people", "input", "integer", "People slots per image; the smallest of the others become "
          "ignore regions (see --ignore_ioa)."),
    _spec("max_ignore", "input", "integer", "Ignore-region slots per image (the people beyond --max_people "
          "come first).", lower_bound=0),
    _spec("scale_range", "input", "floats", "Zoom range lo,hi of the random training crop."),
    _spec("flip_probability", "input", "float", "Probability of a horizontal flip in training."),
    _spec("brightness", "input", "float", "Training colour jitter: largest brightness shift, fraction of "
          "the [0, 255] range."),
    _spec("contrast", "input", "floats", "Training colour jitter: contrast factor range lo,hi (1,1: off)."),
    _spec("saturation", "input", "floats", "Training colour jitter: saturation factor range lo,hi "
          "(1,1: off)."),
    _spec("hue", "input", "float", "Training colour jitter: largest hue shift, fraction of the colour "
          "circle."),
    _spec("pad_value", "input", "float", "Grey level of the padding outside the image content."),
    _spec("shuffle_buffer", "input", "integer", "Records in the training shuffle buffer."),
    _spec("interleave_cycle", "input", "integer", "Shards read at once."),
    _spec("skip_corrupt_records", "input", "boolean", "A corrupt record (bad CRC, cut file) ends its shard's "
          "pass: the rest of that shard is skipped (TFRecords cannot resynchronise) and counted in the log "
          "and in metrics.json 'corrupt_records' (records: the manifest's count minus those read, per pass; "
          "bytes). Default: the run stops with one line naming the shard, the record and its byte offset, "
          "after saving a checkpoint of the step reached."),
    # --- model (lcr_tf.modeling.factory.ModelConfig) ---
    _spec("backbone", "model", "enum", "Backbone network.", choices=("resnet50", "vgg16", "tiny")),
    _spec("backbone_weights", "model", "string", "'imagenet' (downloads), 'none' (random) or a .h5 / "
          ".weights.h5 file."),
    _spec("roi_head", "model", "string", "Backbone RoI head: default, stage5 (resnet50) or fc."),
    _spec("trainable_from", "model", "string", "First trainable backbone stage (e.g. conv3, block3), "
          "'default' or 'all'."),
    _spec("fc_dims", "model", "ints", "Widths of the FC RoI head (empty: the backbone's default)."),
    _spec("num_anchors", "model", "integer", "K; 0 takes it from --anchors, another value must match it.",
          default=0),
    _spec("num_joints", "model", "integer", "J; 0 takes it from --anchors, another value must match it.",
          default=0),
    _spec("image_size", "model", "integer", "Side of the square training images in pixels (multiple of 16)."),
    _spec("rpn_scales", "model", "floats", "RPN anchor sides in pixels."),
    _spec("rpn_aspect_ratios", "model", "floats", "RPN anchor height / width ratios."),
    _spec("rpn_channels", "model", "integer", "Width of the RPN 3x3 conv."),
    _spec("rpn_pre_nms_top_n_train", "model", "integer", "Proposals before NMS per image, training."),
    _spec("rpn_post_nms_top_n_train", "model", "integer", "Proposals after NMS per image, training."),
    _spec("rpn_pre_nms_top_n_test", "model", "integer", "Proposals before NMS per image, test."),
    _spec("rpn_post_nms_top_n_test", "model", "integer", "Proposals after NMS per image, test."),
    _spec("rpn_nms_iou", "model", "float", "NMS IoU threshold of the proposals."),
    _spec("rpn_min_size", "model", "float", "Smallest proposal side in pixels.", lower_bound=0.0),
    _spec("rpn_batch_size_per_image", "model", "integer", "Anchors sampled per image for the RPN loss."),
    _spec("rpn_positive_fraction", "model", "float", "Most positive anchors, fraction of "
          "--rpn_batch_size_per_image.", lower_bound=0.0, upper_bound=1.0),
    _spec("rpn_pos_iou", "model", "float", "IoU with a ground-truth box at which an RPN anchor is positive.",
          lower_bound=0.0, upper_bound=1.0),
    _spec("rpn_neg_iou", "model", "float", "IoU below which an RPN anchor is negative.",
          lower_bound=0.0, upper_bound=1.0),
    _spec("rois_per_image", "model", "integer", "RoIs sampled per image for the pose branches (paper: 512 "
          "with ResNet-50, 32 with VGG-16)."),
    _spec("roi_positive_fraction", "model", "float", "Most positive RoIs, fraction of --rois_per_image."),
    _spec("fg_iou", "model", "float", "IoU with a ground-truth box at which a RoI is positive."),
    _spec("ignore_ioa", "model", "float", "An anchor or RoI that is not positive and lies more than this "
          "fraction of its area inside an ignore region (crowds, people without a pose, people beyond "
          "--max_people) is neither an RPN negative nor a background RoI; 1 turns it off.",
          lower_bound=0.0, upper_bound=1.0),
    _spec("roi_pooling", "model", "enum", "RoIAlign pooling.", choices=("max", "avg")),
    _spec("roi_sampling_ratio", "model", "integer", "RoIAlign samples per cell side.", lower_bound=1),
    _spec("regression_std_2d", "model", "float", "Scale of the 2D pose deltas (box units): the heads "
          "regress deltas / scale and the loss compares them so (target normalisation).", lower_bound=1e-6),
    _spec("regression_std_3d", "model", "float", "Scale of the 3D pose deltas (metres), as "
          "--regression_std_2d.", lower_bound=1e-6),
    _spec("joint_heatmap_weight", "model", "float", "Weight of the trunk's auxiliary joint-heatmap loss "
          "(not in the paper; 0 = off): a 1x1 conv on the trunk predicts one heatmap per joint, in "
          "training only. Speeds up a backbone trained from random weights.", lower_bound=0.0),
    _spec("joint_heatmap_sigma", "model", "float", "Standard deviation of the joint-heatmap targets, in "
          "feature cells.", lower_bound=1e-3),
    _spec("refinement", "model", "boolean", "Add the iterative refinement stage (Sec 3.4)."),
    _spec("refinement_hidden", "model", "integer", "Refinement: width of the FC over the first estimate."),
    _spec("refinement_fc", "model", "ints", "Refinement: widths of its two FC layers."),
    _spec("nms_method", "model", "enum", "Proposal NMS: 'combined' (CPU kernel) or 'padded' (TF ops, for "
          "accelerators).", choices=("combined", "padded")),
    _spec("weight_decay", "model", "float", "L2 factor on kernels: loss += weight_decay * sum(w^2) / 2."),
    # --- optimisation ---
    _spec("strategy", "run", "enum", "tf.distribute strategy: auto (mirrored with GPUs or --cpu_replicas > "
          "1, else default), default, mirrored, multi_worker (cluster from TF_CONFIG; only the chief writes "
          "--model_dir), one_device.", choices=tuple(distribute.STRATEGIES)),
    _spec("cpu_replicas", "run", "integer", "Split the CPU into this many logical devices and mirror over "
          "them (no GPU needed): runs the distributed path, e.g. to check a config before a GPU run. They "
          "share the cores, so they are not faster.", lower_bound=1),
    _spec("lr_boundaries", "optimization", "ints", "Steps where the learning rate changes (piecewise "
          "constant)."),
    _spec("lr_values", "optimization", "floats", "Learning rates, one more than --lr_boundaries."),
    _spec("optimizer", "optimization", "enum", "sgd: SGD with --momentum (the paper's); adam: Adam (beta_1 "
          "= --momentum, beta_2 = 0.999), which learns faster than SGD from random weights in short runs "
          "(the tiny config); weight decay is the L2 term of --weight_decay in both.", choices=OPTIMIZERS),
    _spec("momentum", "optimization", "float", "SGD momentum, or Adam's beta_1 with --optimizer=adam."),
    _spec("clipnorm", "optimization", "float", "Clip the global gradient (summed over the replicas, all "
          "variables together) to this norm (0: no clipping).", lower_bound=0.0),
    _spec("precision", "optimization", "enum", "Keras precision policy: float32; mixed_float16 (float16 "
          "compute, dynamic loss scaling: for GPUs); mixed_bfloat16 (bfloat16 compute: for CPUs with AMX / "
          "AVX512-BF16 and recent GPUs); auto (mixed_bfloat16 where the hardware computes bfloat16 natively, "
          "float32 elsewhere; the run folder records the policy chosen). Variables, losses and the exported "
          "model's inputs and outputs stay float32.", choices=PRECISIONS),
    _spec("num_steps", "run", "integer", "Total training steps (a resumed run stops there too)."),
    _spec("steps_per_epoch", "run", "integer", "Steps between validations / image summaries (a Keras "
          "epoch)."),
    _spec("checkpoint_every", "run", "integer", "Steps between checkpoints."),
    _spec("keep_checkpoints", "run", "integer", "Checkpoints kept."),
    _spec("log_every", "run", "integer", "Steps between TensorBoard scalar writes."),
    _spec("val_steps", "run", "integer", "Validation batches per evaluation."),
    _spec("num_summary_images", "run", "integer", "Validation images drawn with their top pose in "
          "TensorBoard."),
    _spec("init_weights", "data", "string", "Fine-tuning: a final.weights.h5 of an earlier run of the same "
          "architecture, loaded before training (ignored when resuming from a checkpoint)."),
    _spec("seed", "run", "integer", "Seed of the initialisation, sampling and input stream."),
    _spec("deterministic", "run", "boolean", "Reproducible runs: deterministic ops, fixed input order."),
    _spec("verbose", "run", "integer", "Keras progress output: 0 silent, 1 progress bar, 2 one line per "
          "epoch."),
    _spec("progress_every_s", "run", "float", "Seconds between progress lines on stdout (step, images/s, "
          "losses, time left), whatever --verbose says; 0: none."),
)

#: Fields without a flag of their own, and why.
DERIVED_FIELDS = {
    ("input", "image_size"): "--image_size (model.image_size)",
    ("input", "num_epochs"): "None: training streams until --num_steps",
    ("model", "seed"): "--seed (run.seed)",
    **{("model", f): "a released model's convention (lcr_tf.convert_official sets it; --init_from keeps the "
                     "source's)" for f in ("input_resize", "test_scale", "test_max_size", "pixel_means_bgr",
                                          "jpeg_dct_method", "rpn_convention", "roi_align")},
}
#: Flags that are not a field: --mixed_precision (alias of --precision=mixed_float16) and the short names.
ALIASES = {"data": "train_data", "train_steps": "num_steps"}


def flag_names() -> List[str]:
    """The trainer's flags, aliases excluded, sorted."""
    return sorted([s.name for s in FLAG_SPECS] + ["mixed_precision"])


def define_flags(flag_values: flags.FlagValues = flags.FLAGS, module_name: Optional[str] = None) -> None:
    """Defines the trainer's flags (defaults from the dataclass fields) in ``flag_values``."""
    kw = dict(flag_values=flag_values, module_name=module_name)
    for s in FLAG_SPECS:
        bounds = {k: v for k, v in (("lower_bound", s.lower_bound), ("upper_bound", s.upper_bound))
                  if v is not None}
        if s.kind == "string":
            flags.DEFINE_string(s.name, s.flag_default, s.help, **kw)
        elif s.kind == "integer":
            flags.DEFINE_integer(s.name, s.flag_default, s.help, **bounds, **kw)
        elif s.kind == "float":
            flags.DEFINE_float(s.name, s.flag_default, s.help, **bounds, **kw)
        elif s.kind == "boolean":
            flags.DEFINE_boolean(s.name, s.flag_default, s.help, **kw)
        elif s.kind == "enum":
            flags.DEFINE_enum(s.name, s.flag_default, list(s.choices), s.help, **kw)
        elif s.kind in ("ints", "floats"):
            flags.DEFINE_list(s.name, s.flag_default, s.help, **kw)
        else:
            raise AssertionError(s.kind)
    flags.DEFINE_boolean("mixed_precision", False, "Alias of --precision=mixed_float16.", **kw)
    # Short names: --data for --train_data, --train_steps for --num_steps.
    for alias, original in ALIASES.items():
        flags.DEFINE_alias(alias, original, flag_values=flag_values, module_name=module_name)


def _numbers(values: Sequence[str], name: str, kind: str) -> Tuple:
    cast = int if kind == "ints" else float
    try:
        return tuple(cast(v) for v in values)
    except ValueError:
        what = "integers" if kind == "ints" else "numbers"
        raise ConfigError(f"--{name} must be {what}, got {','.join(values)!r}") from None


def precision_of(precision: str, mixed_precision: bool) -> str:
    """The policy of ``--precision`` and its alias ``--mixed_precision``."""
    if mixed_precision and precision not in ("float32", "mixed_float16"):
        raise ConfigError(f"--mixed_precision is --precision=mixed_float16, but --precision={precision}")
    return "mixed_float16" if mixed_precision else precision


def from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> TrainConfig:
    """The :class:`TrainConfig` of parsed trainer flags. ``--num_anchors`` / ``--num_joints`` of 0 are read
    from ``--anchors``. Raises :class:`ConfigError` naming the flag."""
    for name in ("train_data", "anchors", "model_dir"):
        if not flag_values[name].value:
            raise ConfigError(f"--{name} is required")
    values: Dict[str, Dict[str, Any]] = {name: {} for name in SECTIONS}
    for s in FLAG_SPECS:
        value = flag_values[s.name].value
        if s.kind in ("ints", "floats"):
            value = _numbers(value, s.name, s.kind)
        values[s.section][s.name] = value
    values["optimization"]["precision"] = precision_of(flag_values["precision"].value,
                                                       flag_values["mixed_precision"].value)
    model = values["model"]
    if 0 in (model["num_anchors"], model["num_joints"]):
        k, j = anchors_shape(values["data"]["anchors"])
        model["num_anchors"] = model["num_anchors"] or k
        model["num_joints"] = model["num_joints"] or j
    model["seed"] = values["run"]["seed"]
    values["input"].update(image_size=model["image_size"], num_epochs=None)
    if values["input"]["batch_size"] < 1:
        raise ConfigError(f"--batch_size must be >= 1, got {values['input']['batch_size']}")
    try:
        return TrainConfig.from_dict(values)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(str(e)) from None


def parse(argv: Sequence[str]) -> TrainConfig:
    """The :class:`TrainConfig` of trainer command-line arguments (``["--flagfile=configs/x.flags",
    "--num_steps=10"]``), parsed into flags of their own: the process's global flags are not touched."""
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    flag_values(["lcr_tf.train", *argv])
    return from_flags(flag_values)


def to_flags(config: TrainConfig) -> Dict[str, Any]:
    """The flag values (as absl holds them: lists of strings) that give ``config``."""
    out: Dict[str, Any] = {}
    for s in FLAG_SPECS:
        value = getattr(getattr(config, s.section), s.name)
        out[s.name] = [_format_number(v) for v in value] if s.kind in ("ints", "floats") else value
    out["mixed_precision"] = False
    return out


def anchors_shape(path: str) -> Tuple[int, int]:
    """(K, J) of an anchors file."""
    from lcr_tf.poses import anchors as anchors_lib

    if not os.path.isfile(path):
        raise ConfigError(f"--anchors: no such file {path!r}")
    anchor_set = anchors_lib.load(path)
    return anchor_set.num_anchors, int(anchor_set.pose3d.shape[1])


def check_inputs(config: TrainConfig) -> None:
    """Fails early, naming the flag, on inputs that do not exist."""
    from lcr_tf.data import pipeline

    for name in ("train_data", "anchors"):
        if not getattr(config.data, name):
            raise ConfigError(f"--{name} is required")
    if not config.run.model_dir:
        raise ConfigError("--model_dir is required")
    from lcr_tf.data import shards as shards_lib

    for name in ("train_data", "val_data"):
        pattern = getattr(config.data, name)
        if not pattern:
            continue
        try:
            # Sizes against the build job's manifest: a stat per shard, before hours are spent on them.
            shards_lib.check_before_reading(pipeline.list_shards(pattern), pattern, f"--{name}")
        except (FileNotFoundError, shards_lib.ShardError) as e:
            raise ConfigError(f"--{name}: {e}" if isinstance(e, FileNotFoundError) else str(e)) from None
    if not os.path.isfile(config.data.anchors):
        raise ConfigError(f"--anchors: no such file {config.data.anchors!r}")


def check_anchors(config: TrainConfig, anchor_set) -> None:
    """The anchor set must be the model's (K, J), and the training and validation records must hold its
    skeleton (each shard's first record; the input pipeline checks every record as it reads it)."""
    from lcr_tf.data import pipeline
    from lcr_tf.data import shards as shards_lib

    k, j = anchor_set.num_anchors, int(anchor_set.pose3d.shape[1])
    for name, value in (("num_anchors", k), ("num_joints", j)):
        if getattr(config.model, name) != value:
            raise ConfigError(f"--{name}={getattr(config.model, name)} but --anchors {config.data.anchors!r} "
                              f"has {value}")
    for name in ("train_data", "val_data"):
        pattern = getattr(config.data, name)
        if pattern:
            try:
                shards_lib.check_skeleton(pipeline.list_shards(pattern), anchor_set.skeleton.name, f"--{name}",
                                          f"--anchors {config.data.anchors}")
            except shards_lib.ShardError as e:
                raise ConfigError(str(e)) from None
