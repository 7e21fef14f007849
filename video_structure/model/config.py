"""The paper's hyperparameters: one dataclass, Table S1 per dataset, the model variants.

`paper_config(dataset)` gives Table S1's settings. The CPU presets (model settings plus the CPU
recipe's) live in `video_structure.recipes.presets`; `video_structure.presets.get_config`
combines either with command-line overrides. `docs/hyperparameters.md` is generated from the
field metadata below (`python -m video_structure.presets --markdown`; a test keeps it current).
"""

import dataclasses
import math


def setting(default, doc):
  """A dataclass field with its documentation (kept for the docs table and --help)."""
  return dataclasses.field(default=default, metadata={"doc": doc})


class Settings:
  """What the settings dataclasses (`Config`, the CPU recipe's) share: typed and finite values,
  plain dicts in and out. Subclasses set `KIND` (how messages name them) and `validate`."""
  KIND = "config"
  UNKNOWN = "hyperparameter(s)"

  def check_types(self):
    """Raises ValueError naming a field whose value has the wrong type or is NaN / inf."""
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      expected = {"int": int, "float": float, "bool": bool, "str": str}.get(field.type,
                                                                           field.type)
      if expected is float and isinstance(value, int) and not isinstance(value, bool):
        continue  # An integer is a fine float (e.g. `--clipnorm 10`).
      if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValueError(f"{self.KIND}: `{field.name}` must be of type {expected.__name__}, "
                         f"got {value!r} ({type(value).__name__}).")
      if expected is float and not math.isfinite(value):
        raise ValueError(f"{self.KIND}: `{field.name}` must be a finite number, got {value!r}; "
                         f"give --{field.name} a finite value.")

  def to_dict(self):
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values, source=None):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ValueError(f"{source or cls.KIND}: unknown {cls.UNKNOWN} {unknown}; known: "
                       f"{sorted(known)}.")
    return cls(**values).validate()


@dataclasses.dataclass
class Config(Settings):
  # Data.
  dataset: str = setting("basketball", "Dataset name (a TFDS builder in datasets/).")
  dataset_config: str = setting("cpu", "Size of the generated dataset: the builder config "
                               "(`tiny`, `cpu`, `paper`).")
  dataset_path: str = setting("", "Folder of videos or .npz files (dataset `video_folder` "
                             "only; `train.py --dataset path/to/folder` sets it).")
  image_size: int = setting(64, "Frame height and width in pixels.")
  observed_steps: int = setting(8, "T: observed frames per training window.")
  predicted_steps: int = setting(8, "Delta T: predicted frames per training window.")
  # Model variant (paper Sec. 5: Struct-VRNN and its baselines share every code path).
  representation: str = setting("keypoints", "`keypoints` (Struct-VRNN: Gaussian-blob "
                               "bottleneck) or `features` (CNN-VRNN: an unstructured vector of "
                               "3K features per frame, no keypoint bottleneck).")
  supervised_weight: float = setting(0.0, "Weight of the supervised baseline's loss tying the "
                                    "first (x, y) entries of the representation to the "
                                    "ground-truth object positions (0: unsupervised).")
  # Vision.
  num_keypoints: int = setting(12, "K: number of keypoints (maximum number of objects/parts).")
  heatmap_size: int = setting(16, "Side of the keypoint heatmaps (the detector's output).")
  initial_filters: int = setting(32, "Filters of the first conv; doubled at each stride-2 conv.")
  layers_per_scale: int = setting(1, "Extra stride-1 3x3 convs per resolution (Table S1).")
  keypoint_width: float = setting(1.5, "sigma_k.p.: Gaussian blob std in heatmap pixels.")
  weight_decay: float = setting(1e-4, "L2 on conv kernels.")
  # Vision losses.
  sparsity_weight: float = setting(0.1, "lambda_sparse: L1 on the keypoint scales mu.")
  separation_weight: float = setting(0.1, "lambda_sep: temporal separation loss scale.")
  separation_sigma: float = setting(0.02, "sigma_sep: separation loss width (coordinate units).")
  # Dynamics.
  dynamics: str = setting("vrnn", "`vrnn` (stochastic, Struct-VRNN) or `rnn` (deterministic, "
                         "Struct-RNN).")
  rnn_units: int = setting(512, "GRU units.")
  latent_size: int = setting(16, "Size of the latent code z.")
  prior_net_size: int = setting(16, "Hidden units of the prior net.")
  posterior_net_size: int = setting(128, "Hidden units of the posterior net.")
  decoder_net_size: int = setting(128, "Hidden units of the keypoint decoder.")
  num_samples: int = setting(50, "Best-of-many samples per step in training (1 = plain VRNN).")
  kl_beta: float = setting(0.01, "beta: KL loss scale.")
  kl_anneal_steps: int = setting(25000, "Steps over which the KL scale rises from 0 to beta.")
  scheduled_sampling_observed: float = setting(1.0, "Final probability of feeding decoded "
                                              "keypoints to the GRU at observed steps.")
  scheduled_sampling_predicted: float = setting(0.5, "Final probability of feeding decoded "
                                               "keypoints to the GRU at predicted steps.")
  scheduled_sampling_ramp_steps: int = setting(100000, "Steps over which the scheduled-sampling "
                                              "probabilities rise from 0 (the whole run).")
  action_size: int = setting(0, "Size of the action vector a_t (0: not action-conditional).")
  # Optimisation.
  batch_size: int = setting(32, "Sequences per batch.")
  num_steps: int = setting(100000, "Training steps.")
  learning_rate: float = setting(1e-3, "Initial Adam learning rate.")
  learning_rate_decay_steps: int = setting(30000, "The learning rate halves every this many "
                                          "steps.")
  clipnorm: float = setting(10.0, "Gradient clipping: max norm of each gradient tensor.")
  mixed_precision: bool = setting(False, "Run the convs in bfloat16 (`mixed_bfloat16`); "
                                 "keypoint maths, dynamics and losses stay float32.")
  seed: int = setting(0, "Random seed (weights, data order, sampling).")
  # Bookkeeping.
  checkpoint_every_steps: int = setting(1000, "Checkpoint interval (steps).")
  log_every_steps: int = setting(100, "TensorBoard scalar interval (steps).")
  image_summary_every_steps: int = setting(1000, "TensorBoard image interval (steps).")
  num_eval_sequences: int = setting(8, "Test sequences drawn in the final figures and GIFs.")

  def validate(self):
    """Raises ValueError naming the offending field."""
    self.check_types()
    positive = ["image_size", "observed_steps", "num_keypoints", "heatmap_size",
                "initial_filters", "rnn_units", "latent_size", "prior_net_size",
                "posterior_net_size", "decoder_net_size", "num_samples", "batch_size",
                "num_steps", "learning_rate_decay_steps", "checkpoint_every_steps",
                "log_every_steps", "image_summary_every_steps"]
    for name in positive:
      if getattr(self, name) <= 0:
        raise ValueError(f"config: `{name}` must be > 0, got {getattr(self, name)!r}.")
    non_negative = ["predicted_steps", "layers_per_scale", "weight_decay", "sparsity_weight",
                    "separation_weight", "kl_beta", "kl_anneal_steps",
                    "scheduled_sampling_ramp_steps", "action_size", "num_eval_sequences"]
    for name in non_negative:
      if getattr(self, name) < 0:
        raise ValueError(f"config: `{name}` must be >= 0, got {getattr(self, name)!r}.")
    for name in ["keypoint_width", "separation_sigma", "learning_rate", "clipnorm"]:
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


# Table S1: each dataset's differences to the dataclass defaults (which are Basketball's).
PAPER_PRESETS = {
    "basketball": dict(dataset_config="paper"),
    "human36m": dict(dataset_config="paper", num_keypoints=48, sparsity_weight=0.01,
                     separation_weight=0.02, separation_sigma=0.002, prior_net_size=4,
                     layers_per_scale=2),
    "dmcs": dict(dataset_config="paper", num_keypoints=64, sparsity_weight=5.0, latent_size=128,
                 kl_beta=0.003, action_size=6),  # Actions zero-padded to the largest task (6).
    # A user's own videos: the paper's Basketball settings as a generic starting point.
    "video_folder": dict(dataset_config="default"),
}

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


def paper_config(dataset="basketball", **overrides):
  """The paper's (Table S1) config for `dataset`, with overrides applied and validated."""
  if dataset not in PAPER_PRESETS:
    raise ValueError(f"Unknown dataset {dataset!r}; known: {sorted(PAPER_PRESETS)}.")
  values = dict(dataset=dataset, **PAPER_PRESETS[dataset])
  values.update(overrides)
  return Config.from_dict(values, source=f"preset {dataset}/paper")
