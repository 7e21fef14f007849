"""Hyperparameters: one dataclass, one preset per dataset and compute budget.

`get_config(dataset, preset)` returns a `Config`; every field can be overridden from the
command line (`train.py --num_keypoints 16`) and the full config is written next to each run as
`config.json`. `docs/hyperparameters.md` is generated from the field metadata below by
`python -m video_structure.config --markdown` (a test checks it is up to date).

Presets:
  * `paper`: Table S1 of the paper (GPU budget: batch 32, 100k steps).
  * `cpu`: sized to train in minutes on a 2-core CPU and still discover the objects
    (see docs/cpu_preset.md for what was measured and why each change was made).
"""

import argparse
import dataclasses
import json
import os

_FIELD_DOCS = {}


def _field(default, doc):
  """A dataclass field with its documentation (kept for the docs table and --help)."""
  return dataclasses.field(default=default, metadata={"doc": doc})


@dataclasses.dataclass
class Config:
  # Data.
  dataset: str = _field("basketball", "Dataset name (a TFDS builder in datasets/).")
  dataset_config: str = _field("cpu", "Size of the generated dataset: the builder config "
                               "(`tiny`, `cpu`, `paper`).")
  dataset_path: str = _field("", "Folder of videos or .npz files (dataset `video_folder` "
                             "only; `train.py --dataset path/to/folder` sets it).")
  image_size: int = _field(64, "Frame height and width in pixels.")
  observed_steps: int = _field(8, "T: observed frames per training window.")
  predicted_steps: int = _field(8, "Delta T: predicted frames per training window.")
  # Model variant (paper Sec. 5: Struct-VRNN and its baselines share every code path).
  representation: str = _field("keypoints", "`keypoints` (Struct-VRNN: Gaussian-blob "
                               "bottleneck) or `features` (CNN-VRNN: an unstructured vector of "
                               "3K features per frame, no keypoint bottleneck).")
  supervised_weight: float = _field(0.0, "Weight of the supervised baseline's loss tying the "
                                    "first (x, y) entries of the representation to the "
                                    "ground-truth object positions (0: unsupervised).")
  # Vision.
  num_keypoints: int = _field(12, "K: number of keypoints (maximum number of objects/parts).")
  heatmap_size: int = _field(16, "Side of the keypoint heatmaps (the detector's output).")
  initial_filters: int = _field(32, "Filters of the first conv; doubled at each stride-2 conv.")
  layers_per_scale: int = _field(1, "Extra stride-1 3x3 convs per resolution (Table S1).")
  keypoint_width: float = _field(1.5, "sigma_k.p.: Gaussian blob std in heatmap pixels.")
  keypoint_width_start: float = _field(1.5, "Blob width at step 0, annealed linearly to "
                                       "`keypoint_width` (a wider start widens the basin in "
                                       "which a keypoint feels an object).")
  keypoint_width_anneal_steps: int = _field(0, "Steps over which the blob width is annealed.")
  heatmap_bias_init: float = _field(0.0, "Initial bias of the softplus heatmap head.")
  heatmap_init_gain: float = _field(1.0, "Multiplier on the std of the heatmap head's Glorot "
                                    "kernel init. With a negative bias, a gain > 1 makes the "
                                    "initial maps peaky (softplus ~ exp), so keypoints start on "
                                    "salient image features instead of the image centre.")
  presence_warmup_steps: int = _field(0, "Steps over which the renderer blends from ignoring mu "
                                      "(every blob at full strength) to using it: "
                                      "mu' = 1 - w (1 - mu), w rising 0 -> 1. Keeps keypoints "
                                      "from being switched off before they find an object.")
  weight_decay: float = _field(1e-4, "L2 on conv kernels.")
  # Vision losses.
  moving_pixel_weight: float = _field(0.0, "lambda_move: extra weight on the squared error of "
                                      "pixels that differ from the window's first frame "
                                      "(`losses.moving_pixel_loss`); speeds up the discovery "
                                      "of objects on a small budget. Not in the paper (0).")
  moving_pixel_threshold: float = _field(0.1, "Colour change (max over channels, frames in "
                                         "[-0.5, 0.5], so 0.1 ~ 25 of 255 levels) at which a "
                                         "pixel counts fully as moving.")
  foreground_attention_weight: float = _field(
      0.0, "lambda_fg: weight of the share of each keypoint's heatmap off the moving "
      "foreground (`losses.foreground_attention_loss`); pulls keypoints that have not found "
      "an object onto one. Not in the paper (0).")
  foreground_attention_residual: bool = _field(
      False, "Weight the foreground of `foreground_attention_weight` by the reconstruction "
      "error (relative to the frame's worst pixel), pulling keypoints to objects that are not "
      "yet reconstructed instead of ones already tracked.")
  foreground_threshold: float = _field(0.1, "Colour change from the window's temporal median "
                                       "at which a pixel counts fully as foreground.")
  concentration_weight: float = _field(
      0.0, "lambda_conc: weight of the spatial variance of each keypoint's heatmap "
      "(`losses.heatmap_concentration_loss`); keeps a keypoint on one object instead of "
      "between several. Not in the paper (0).")
  foreground_colour_weight: float = _field(
      0.0, "lambda_colour: weight of an auxiliary decoder that predicts the colours of the "
      "moving foreground from the detector's features (`losses.foreground_colour_loss`); makes "
      "the detector represent every moving object, also those no keypoint has found. Keypoint "
      "representation only. Not in the paper (0).")
  reseed_every_steps: int = _field(
      0, "Every this many steps, point keypoints that duplicate another keypoint at the worst "
      "reconstructed moving object (`reseeding.reseed`); 0 = never. Keypoint heatmap heads "
      "only (the `features` representation has none, as it has no separation or sparsity "
      "loss). Not in the paper.")
  reseed_until_step: int = _field(0, "Last step at which keypoints are re-seeded.")
  reseed_distance: float = _field(0.1, "Mean distance (coordinate units) below which two "
                                  "keypoints count as duplicates for re-seeding.")
  reseed_max_keypoints: int = _field(4, "Most keypoints re-seeded at one event.")
  sparsity_weight: float = _field(0.1, "lambda_sparse: L1 on the keypoint scales mu.")
  sparsity_warmup_steps: int = _field(0, "Steps over which lambda_sparse rises from 0.")
  separation_weight: float = _field(0.1, "lambda_sep: temporal separation loss scale.")
  separation_sigma: float = _field(0.02, "sigma_sep: separation loss width (coordinate units).")
  # Dynamics.
  dynamics: str = _field("vrnn", "`vrnn` (stochastic, Struct-VRNN) or `rnn` (deterministic, "
                         "Struct-RNN).")
  rnn_units: int = _field(512, "GRU units.")
  latent_size: int = _field(16, "Size of the latent code z.")
  prior_net_size: int = _field(16, "Hidden units of the prior net.")
  posterior_net_size: int = _field(128, "Hidden units of the posterior net.")
  decoder_net_size: int = _field(128, "Hidden units of the keypoint decoder.")
  num_samples: int = _field(50, "Best-of-many samples per step in training (1 = plain VRNN).")
  kl_beta: float = _field(0.01, "beta: KL loss scale.")
  kl_anneal_steps: int = _field(25000, "Steps over which the KL scale rises from 0 to beta.")
  scheduled_sampling_observed: float = _field(1.0, "Final probability of feeding decoded "
                                              "keypoints to the GRU at observed steps.")
  scheduled_sampling_predicted: float = _field(0.5, "Final probability of feeding decoded "
                                               "keypoints to the GRU at predicted steps.")
  scheduled_sampling_ramp_steps: int = _field(100000, "Steps over which the scheduled-sampling "
                                              "probabilities rise from 0 (the whole run).")
  action_size: int = _field(0, "Size of the action vector a_t (0: not action-conditional).")
  # Optimisation.
  batch_size: int = _field(32, "Sequences per batch.")
  num_steps: int = _field(100000, "Training steps.")
  learning_rate: float = _field(1e-3, "Initial Adam learning rate.")
  learning_rate_decay_steps: int = _field(30000, "The learning rate halves every this many "
                                          "steps.")
  clipnorm: float = _field(10.0, "Gradient clipping: max norm of each gradient tensor.")
  mixed_precision: bool = _field(False, "Run the convs in bfloat16 (`mixed_bfloat16`); "
                                 "keypoint maths, dynamics and losses stay float32.")
  seed: int = _field(0, "Random seed (weights, data order, sampling).")
  # Bookkeeping.
  checkpoint_every_steps: int = _field(1000, "Checkpoint interval (steps).")
  log_every_steps: int = _field(100, "TensorBoard scalar interval (steps).")
  image_summary_every_steps: int = _field(1000, "TensorBoard image interval (steps).")
  num_eval_sequences: int = _field(8, "Test sequences drawn in the final figures and GIFs.")

  def validate(self):
    """Raises ValueError naming the offending field."""
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      expected = {"int": int, "float": float, "bool": bool, "str": str}.get(field.type,
                                                                           field.type)
      if expected is float and isinstance(value, int) and not isinstance(value, bool):
        continue  # An integer is a fine float (e.g. `--clipnorm 10`).
      if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValueError(f"config: `{field.name}` must be of type {expected.__name__}, got "
                         f"{value!r} ({type(value).__name__}).")
    positive = ["image_size", "observed_steps", "num_keypoints", "heatmap_size",
                "initial_filters", "rnn_units", "latent_size", "prior_net_size",
                "posterior_net_size", "decoder_net_size", "num_samples", "batch_size",
                "num_steps", "learning_rate_decay_steps", "checkpoint_every_steps",
                "log_every_steps", "image_summary_every_steps"]
    for name in positive:
      if getattr(self, name) <= 0:
        raise ValueError(f"config: `{name}` must be > 0, got {getattr(self, name)!r}.")
    non_negative = ["predicted_steps", "layers_per_scale", "weight_decay", "sparsity_weight",
                    "sparsity_warmup_steps", "separation_weight", "kl_beta", "kl_anneal_steps",
                    "scheduled_sampling_ramp_steps", "action_size", "keypoint_width_anneal_steps",
                    "presence_warmup_steps", "moving_pixel_weight", "foreground_attention_weight",
                    "concentration_weight", "foreground_colour_weight", "reseed_every_steps",
                    "reseed_until_step", "reseed_max_keypoints",
                    "num_eval_sequences"]
    for name in non_negative:
      if getattr(self, name) < 0:
        raise ValueError(f"config: `{name}` must be >= 0, got {getattr(self, name)!r}.")
    for name in ["keypoint_width", "keypoint_width_start", "separation_sigma", "learning_rate",
                 "clipnorm", "heatmap_init_gain", "moving_pixel_threshold",
                 "foreground_threshold", "reseed_distance"]:
      if not getattr(self, name) > 0:
        raise ValueError(f"config: `{name}` must be > 0, got {getattr(self, name)!r}.")
    for name in ["scheduled_sampling_observed", "scheduled_sampling_predicted"]:
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f"config: `{name}` is a probability in [0, 1], got "
                         f"{getattr(self, name)!r}.")
    if self.representation not in ("keypoints", "features"):
      raise ValueError(f"config: `representation` must be 'keypoints' or 'features', got "
                       f"{self.representation!r}.")
    if self.supervised_weight < 0:
      raise ValueError(f"config: `supervised_weight` must be >= 0, got "
                       f"{self.supervised_weight!r}.")
    if self.dynamics not in ("vrnn", "rnn"):
      raise ValueError(f"config: `dynamics` must be 'vrnn' or 'rnn', got {self.dynamics!r}.")
    size = self.image_size
    while size > self.heatmap_size and size % 2 == 0:
      size //= 2
    if size != self.heatmap_size:
      raise ValueError(f"config: `image_size` ({self.image_size}) must be `heatmap_size` "
                       f"({self.heatmap_size}) times a power of two.")
    if self.layers_per_scale < 1:
      raise ValueError("config: `layers_per_scale` must be >= 1 (the reconstructor needs one "
                       "conv per upsampling level).")
    return self

  @property
  def sequence_length(self):
    return self.observed_steps + self.predicted_steps

  def to_dict(self):
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values, source="config"):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ValueError(f"{source}: unknown hyperparameter(s) {unknown}; known: {sorted(known)}.")
    return cls(**values).validate()

  def save(self, path):
    """Writes the config as JSON atomically."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
      json.dump(self.to_dict(), f, indent=2, sort_keys=True)
    os.replace(tmp, path)

  @classmethod
  def load(cls, path):
    if not os.path.exists(path):
      raise FileNotFoundError(f"No config file at {path}.")
    with open(path) as f:
      return cls.from_dict(json.load(f), source=path)


# Presets. -------------------------------------------------------------------------------------
# Table S1 (paper). The per-dataset differences to the dataclass defaults, which are Basketball's.
PAPER_PRESETS = {
    "basketball": dict(dataset_config="paper"),
    "human36m": dict(dataset_config="paper", num_keypoints=48, sparsity_weight=0.01, separation_weight=0.02,
                     separation_sigma=0.002, prior_net_size=4, layers_per_scale=2),
    "dmcs": dict(dataset_config="paper", num_keypoints=64, sparsity_weight=5.0, latent_size=128, kl_beta=0.003,
                 action_size=6),  # Actions zero-padded to the largest task (6 values).
    # A user's own videos: the paper's Basketball settings as a generic starting point.
    "video_folder": dict(dataset_config="default"),
}

# CPU presets: changes on top of the paper preset, each measured (docs/cpu_preset.md).
CPU_PRESETS = {
    "basketball": dict(
        dataset_config="cpu",
        # Compute: a quarter of the paper's conv cost per frame, batch 8 x 16 frames, ~1000
        # steps in ~12 minutes on 2 cores; float32 (bfloat16 is slower at this size here).
        initial_filters=16,
        batch_size=8,
        num_steps=1000,
        learning_rate=2e-3,
        learning_rate_decay_steps=1000,
        mixed_precision=False,
        # Discovery within ~1% of the paper's sample budget (docs/cpu_preset.md, runs N, R,
        # FG): peaky initial heatmaps, blobs that ignore mu for the first 300 steps, sparsity
        # introduced over 400 steps, narrower blobs, a stronger separation loss, the error of
        # moving pixels weighted up (objects are ~3% of the frame), heatmaps pulled onto the
        # moving foreground, twice the paper's keypoints (more of them start near an object),
        # detector features trained to represent every moving object, and duplicate keypoints
        # re-seeded at the worst reconstructed moving object (runs COL, COL-RS).
        num_keypoints=24,
        foreground_attention_weight=1.0,
        foreground_colour_weight=1.0,
        reseed_every_steps=100,
        reseed_until_step=700,
        moving_pixel_weight=20.0,
        heatmap_init_gain=10.0,
        heatmap_bias_init=-4.0,
        presence_warmup_steps=300,
        sparsity_warmup_steps=400,
        keypoint_width=1.0,
        keypoint_width_start=1.0,
        separation_weight=1.0,
        # Dynamics: smaller GRU and fewer best-of-many samples; schedules scaled to the run.
        rnn_units=256,
        num_samples=20,
        kl_anneal_steps=500,
        scheduled_sampling_ramp_steps=1000,
        checkpoint_every_steps=250,
        log_every_steps=50,
        image_summary_every_steps=250,
    ),
}
# The other datasets start from Basketball's CPU compute budget and recipe (not tuned per
# dataset; docs/cpu_preset.md) and keep their own Table S1 loss settings and keypoint counts.
# The foreground attention, the foreground colours and re-seeding were measured on Basketball
# only, after the other datasets' CPU runs.
_CPU_COMPUTE = {key: value for key, value in CPU_PRESETS["basketball"].items()
                if key not in ("dataset_config", "separation_weight", "num_keypoints",
                               "foreground_attention_weight", "foreground_colour_weight",
                               "reseed_every_steps", "reseed_until_step")}
CPU_PRESETS["human36m"] = dict(_CPU_COMPUTE, dataset_config="cpu", layers_per_scale=1,
                               keypoint_width=1.0)
CPU_PRESETS["dmcs"] = dict(_CPU_COMPUTE, dataset_config="cpu")
CPU_PRESETS["video_folder"] = dict(_CPU_COMPUTE, dataset_config="default",
                                   separation_weight=1.0)

PRESETS = ("paper", "cpu")

# Model variants of the paper's comparisons (Sec. 5, Figs. 3-5, S1-S3): overrides applied on
# top of a preset by `train.py --model NAME`; one model class serves all of them.
MODEL_VARIANTS = {
    "struct_vrnn": dict(),
    # Without best-of-many: one sample per step in training (the plain VRNN objective).
    "struct_vrnn_no_bom": dict(num_samples=1),
    # Deterministic dynamics (no latent, no KL); best-of-many is meaningless without samples.
    "struct_rnn": dict(dynamics="rnn", num_samples=1),
    # Unstructured baseline: the same VRNN over a 3K-element CNN feature vector.
    "cnn_vrnn": dict(representation="features"),
    # Supervised baselines: the representation's first (x, y) entries tied to the objects.
    "struct_vrnn_supervised": dict(supervised_weight=1.0),
    "cnn_vrnn_supervised": dict(representation="features", supervised_weight=1.0),
    # Ablations of the vision losses.
    "struct_vrnn_no_separation": dict(separation_weight=0.0),
    "struct_vrnn_no_sparsity": dict(sparsity_weight=0.0),
}


def variant_overrides(name):
  """The config overrides of model variant `name` (a key of MODEL_VARIANTS)."""
  if name not in MODEL_VARIANTS:
    raise ValueError(f"Unknown model variant {name!r}; known: {sorted(MODEL_VARIANTS)}.")
  return dict(MODEL_VARIANTS[name])


def get_config(dataset="basketball", preset="cpu", **overrides):
  """The config of a preset for a dataset, with overrides applied and validated."""
  if dataset not in PAPER_PRESETS:
    raise ValueError(f"Unknown dataset {dataset!r}; known: {sorted(PAPER_PRESETS)}.")
  if preset not in PRESETS:
    raise ValueError(f"Unknown preset {preset!r}; known: {list(PRESETS)}.")
  values = dict(dataset=dataset)
  values.update(PAPER_PRESETS[dataset])
  if preset == "cpu":
    if dataset not in CPU_PRESETS:
      raise ValueError(f"No `cpu` preset for dataset {dataset!r} yet; use --preset paper or "
                       f"one of {sorted(CPU_PRESETS)}.")
    values.update(CPU_PRESETS[dataset])
  values.update(overrides)
  return Config.from_dict(values, source=f"preset {dataset}/{preset}")


# Command line. --------------------------------------------------------------------------------

def _parse_bool(text):
  lowered = str(text).lower()
  if lowered in ("1", "true", "yes", "on"):
    return True
  if lowered in ("0", "false", "no", "off"):
    return False
  raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def add_config_arguments(parser):
  """Adds one `--<field>` flag per hyperparameter (default None = keep the preset's value)."""
  group = parser.add_argument_group("hyperparameters (override the preset)")
  for field in dataclasses.fields(Config):
    if field.name == "dataset":
      continue
    kind = _parse_bool if field.type in (bool, "bool") else {
        "int": int, "float": float, "str": str}.get(field.type, field.type)
    group.add_argument(f"--{field.name}", type=kind, default=None,
                       help=f"{field.metadata['doc']} (paper default: {field.default!r})")
  return parser


def overrides_from_args(args):
  """The hyperparameter flags the user actually set."""
  return {field.name: getattr(args, field.name) for field in dataclasses.fields(Config)
          if field.name != "dataset" and getattr(args, field.name, None) is not None}


def markdown_table():
  """The hyperparameter table of docs/hyperparameters.md: meaning and value in every preset."""
  columns = []
  for dataset in PAPER_PRESETS:
    columns.append((f"{dataset} paper", get_config(dataset, "paper")))
    if dataset in CPU_PRESETS:
      columns.append((f"{dataset} cpu", get_config(dataset, "cpu")))
  lines = ["| hyperparameter | meaning | " + " | ".join(name for name, _ in columns) + " |",
           "|---|---|" + "---|" * len(columns)]
  for field in dataclasses.fields(Config):
    values = " | ".join(f"{getattr(config, field.name)!r}".strip("'") for _, config in columns)
    lines.append(f"| `{field.name}` | {field.metadata['doc']} | {values} |")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  import sys
  if "--markdown" in sys.argv:
    print(markdown_table(), end="")
