"""Reward prediction from the dynamics' hidden states (paper Sec. 5.5, S2.3, Figure 9).

  python -m video_structure.downstream.reward_prediction --run_dir runs/dmcs_struct_vrnn
  python -m video_structure.downstream.reward_prediction \\
      --run_dir runs/dmcs_struct_vrnn --run_dir runs/dmcs_cnn_vrnn      # compare variants

For every length-20 sequence of the DMCS test split, the trained action-conditional model
detects the keypoints (CNN-VRNN: its features) and runs its dynamics over all 20 steps in
observed mode with the recorded actions (`dynamics.rollout(..., num_observed=20,
feed_decoded_probability_observed=0)`: the posterior sees every frame, the GRU gets the
detected keypoints and a_{t-1}); the GRU states h_t `[20, U]` are the representation. Per
task (domain) a separate reward model (Dense 128 -> ReLU -> GRU 128 -> ReLU -> GRU 128 ->
ReLU -> Dense 1; Adam from 1e-3 decaying to 1e-4; mean squared error) is trained on 80% of the
sequences and scored on the other 20%. Its MSE is divided by that of the null model that
predicts the mean training reward at every step: normalised MSE < 1 beats the null model.

Data (`--dataset_config`): the paper collects 10,000 test sequences per domain. A run trained
on the `cpu` config (20 test sequences per task: 16 to fit a reward model on) is by default
scored on `cpu_reward`, a config of the same builder with 250 test sequences per task rendered
with the same settings and seed (its test split begins with `cpu`'s; 200 to train / 50 held
out per domain); other runs use their own config (`paper`: 10,000). With 16 fitting
sequences no domain beat the null model; the reward model overfits them within a few epochs.

Epochs (`--epochs`, `--validation_fraction`, `--patience`; the paper gives no number): a fifth
of each domain's training sequences (never the held-out 20%) is set aside, training runs for
at most 200 epochs (the learning rate decays from 1e-3 to 1e-4 over all of them), stops after
20 epochs without a lower validation loss and keeps the best epoch's weights. Why: a fixed 100
epochs (the previous default) fitted 48 `cpu` sequences per domain to normalised MSEs of
0.1-0.4 while held-out ones stayed at 0.8-1.8; on `cpu_reward` the validation loss bottoms
out after 1-32 epochs while the training loss keeps falling. `--validation_fraction 0` trains
all `--epochs` on the whole 80%.

Time alignment (`--alignment`): the DMCS data's reward[t] is earned while action[t] is held
and is computed from the physics state reached after it, i.e. the state of frame t + 1 (see
`video_structure/data/dmcs.py`). The GRU state h_t has seen frame t and a_{t-1} but not a_t, so by
default (`next_state`) reward[t] is predicted from h_{t+1} (19 steps per sequence);
`same_step` predicts reward[t] from h_t (20 steps). The paper does not say which it used.

Several `--run_dir`s (e.g. a Struct-VRNN and a CNN-VRNN trained on the same DMCS data) are
evaluated on the same sequences with the same 80/20 splits and reward-model seeds; each run's
report goes to `<run_dir>/reward_prediction.json` and the comparison (with a Figure 9-like
plot) to `<first run_dir>/reward_prediction_comparison.json` (or `--output`).
"""

import argparse
import dataclasses
import os
import sys
import time
from typing import Optional

import numpy as np

from video_structure import downstream
from video_structure.data.builders import dmcs as dmcs_dataset_builder
from video_structure.downstream import reward_model
from video_structure.evaluation import figures
from video_structure.evaluation import model_calls
from video_structure.evaluation import report as report_lib
from video_structure.training import run_dir as run_dir_lib

DATASET = "dmcs"
ALIGNMENTS = reward_model.ALIGNMENTS
SPLITS = ("test", "train", "both")
DEFAULT_EPOCHS = 200
DEFAULT_VALIDATION_FRACTION = 0.2
DEFAULT_PATIENCE = 20
# Builder configs holding more test sequences rendered like a run's training data (same
# tasks, frame size, action repeats, warm-up, look): the reward experiment's default data for
# runs trained on the key.
REWARD_DATASET_CONFIGS = {"cpu": "cpu_reward"}
# DMCS settings that define what the sequences look like; they must agree between the run's
# training data and the reward data.
_RENDERING_SETTINGS = ("tasks", "image_size", "action_repeat", "max_warmup_steps", "shadows")


@dataclasses.dataclass
class Settings:
  """Everything that decides a reward-prediction result (recorded in the JSON).

  Attributes:
    sequence_length: steps per sequence (paper: 20); longer data sequences are cut into
      consecutive windows of this length (all windows of a sequence stay on one side of the
      80/20 split).
    split: which data split's sequences are used: `test` (paper), `train` or `both`.
    max_sequences: read at most this many sequences per split (None: all).
    alignment: `next_state` or `same_step` (module docstring).
    holdout_fraction: share of each domain's sequences held out for scoring (paper: 0.2).
    epochs: at most this many reward-model epochs (the learning rate decays over all of
      them).
    validation_fraction: share of each domain's training sequences (the 80%) set aside to
      choose the epoch: training stops after `patience` epochs without a lower validation
      loss and keeps the weights of the best epoch. 0: no validation part, all `epochs` on
      the whole 80%. The held-out 20% is never used for this.
    patience: epochs without improvement of the validation loss before stopping.
    batch_size, units: reward-model batch size and width.
    learning_rate_start, learning_rate_end: Adam's exponentially decaying learning rate.
    standardize_targets: train on (reward - mean) / std of the domain's training rewards
      and map predictions back (an optimisation aid; the model class is unchanged).
    model_batch_size: sequences per call of the trained model.
    feed_decoded_observed: probability of feeding decoded keypoints to the GRU (0:
      teacher-forced, as requested for observed mode).
    seed: the 80/20 split, the validation part, reward-model initialisation and shuffling,
      and the dynamics' posterior z draws.
    dataset_config: the DMCS builder config whose sequences are used; None: the run's own
      config, or its reward-sized counterpart in REWARD_DATASET_CONFIGS (`cpu` ->
      `cpu_reward`). Resolved by `resolve_dataset_config` before the experiment.
  """
  sequence_length: int = 20
  split: str = "test"
  max_sequences: Optional[int] = None
  alignment: str = "next_state"
  holdout_fraction: float = 0.2
  epochs: int = DEFAULT_EPOCHS
  validation_fraction: float = DEFAULT_VALIDATION_FRACTION
  patience: int = DEFAULT_PATIENCE
  batch_size: int = 32
  units: int = 128
  learning_rate_start: float = 1e-3
  learning_rate_end: float = 1e-4
  standardize_targets: bool = True
  model_batch_size: int = 16
  feed_decoded_observed: float = 0.0
  seed: int = 0
  dataset_config: Optional[str] = None

  def validate(self):
    for name in ("epochs", "patience", "batch_size", "units", "model_batch_size"):
      downstream.check_positive_int(getattr(self, name), name)
    downstream.check_positive_int(self.sequence_length, "sequence_length", minimum=2)
    if self.max_sequences is not None:
      downstream.check_positive_int(self.max_sequences, "max_sequences")
    downstream.check_positive_int(self.seed, "seed", minimum=0)
    if self.alignment not in ALIGNMENTS:
      raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {self.alignment!r}.")
    if self.split not in SPLITS:
      raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}.")
    downstream.check_fraction(self.holdout_fraction, "holdout_fraction")
    if isinstance(self.validation_fraction, bool) or not isinstance(
        self.validation_fraction, (int, float)) or not 0 <= self.validation_fraction < 1:
      raise ValueError(f"validation_fraction must be 0 (no validation part) or a number "
                       f"strictly between 0 and 1, got {self.validation_fraction!r}.")
    if self.dataset_config is not None and (not isinstance(self.dataset_config, str)
                                            or not self.dataset_config):
      raise ValueError(f"dataset_config must be None or a builder config name, got "
                       f"{self.dataset_config!r}.")
    if not 0.0 <= self.feed_decoded_observed <= 1.0:
      raise ValueError(f"feed_decoded_observed must be in [0, 1], got "
                       f"{self.feed_decoded_observed!r}.")
    if not 0 < self.learning_rate_end <= self.learning_rate_start:
      raise ValueError(f"learning rates must satisfy 0 < learning_rate_end <= "
                       f"learning_rate_start, got {self.learning_rate_start} -> "
                       f"{self.learning_rate_end}.")
    return self


# Data. ----------------------------------------------------------------------------------------

def collect_rnn_states(calls, dataset, settings, name="dataset"):
  """The dynamics' states over every sequence window of a split.

  Returns:
    dict with `rnn_states` float32 `[N, L, U]`, `reward` `[N, L]`, `label` int64 `[N]`,
    `sequence_index` `[N]`.
  """
  def compute(batch, batch_index):
    keypoints = calls.detect(batch["image"])
    states = calls.rnn_states(keypoints, batch["actions"], seed=(settings.seed, batch_index))
    return {"rnn_states": states.astype(np.float32)}

  windows = downstream.map_windows(
      dataset, settings.sequence_length, ["image", "actions", "reward"], compute,
      scalar_keys=["label"], keep_keys=["reward", "label"],
      batch_size=settings.model_batch_size, max_sequences=settings.max_sequences, name=name)
  windows["label"] = windows["label"].astype(np.int64)
  return windows


# The experiment. ------------------------------------------------------------------------------

def check_run_config(config, run_dir="run"):
  """Raises ValueError unless the run is an action-conditional model trained on DMCS."""
  if config.dataset != DATASET:
    raise ValueError(f"{run_dir}: reward prediction needs a run trained on DMCS (config.dataset "
                     f"{DATASET!r}), got dataset {config.dataset!r}.")
  if not config.action_size:
    raise ValueError(f"{run_dir}: reward prediction needs an action-conditional model "
                     f"(config.action_size > 0, 6 for DMCS), got action_size "
                     f"{config.action_size}.")


def resolve_dataset_config(run_dataset_config, requested=None):
  """The DMCS builder config whose sequences the reward experiment uses.

  Args:
    run_dataset_config: the config the run was trained on (`config.dataset_config`).
    requested: `--dataset_config`, or None for the default: REWARD_DATASET_CONFIGS's
      counterpart of the run's config if it has one (`cpu` -> `cpu_reward`), else the run's
      own config.

  Returns:
    The builder config name. A config other than the run's must render sequences the same
    way (`_RENDERING_SETTINGS`: tasks, frame size, action repeats, warm-up, shadows), else
    ValueError naming --dataset_config; its test split never contains training sequences
    (test sequence indices start at the builder's TEST_FIRST_INDEX for every config).
  """
  name = requested or REWARD_DATASET_CONFIGS.get(run_dataset_config, run_dataset_config)
  if name == run_dataset_config:
    return name
  known = {config.name: config for config in dmcs_dataset_builder.PREDEFINED_CONFIGS}
  for flag, value in (("--dataset_config", name), ("the run's dataset_config",
                                                     run_dataset_config)):
    if value not in known:
      raise ValueError(f"{flag} {value!r} is not a DMCS builder config; known configs: "
                       f"{', '.join(known)}.")
  run_settings, settings = known[run_dataset_config].settings(), known[name].settings()
  differences = {key: (run_settings[key], settings[key]) for key in _RENDERING_SETTINGS
                 if run_settings[key] != settings[key]}
  if differences:
    raise ValueError(f"--dataset_config {name!r} renders sequences differently from the run's "
                     f"training data {run_dataset_config!r} ((run, requested): {differences}); "
                     f"reward prediction needs data like the model's training data.")
  return name


def load_states(calls, source, settings):
  """States of the chosen split(s); `sequence_index` made unique across splits."""
  parts = []
  for split in (("train", "test") if settings.split == "both" else (settings.split,)):
    windows = collect_rnn_states(calls, getattr(source, split), settings,
                                 f"{source.name} {split}")
    windows["group"] = windows["sequence_index"] + (
        0 if not parts else int(parts[-1]["group"].max()) + 1)
    parts.append(windows)
  return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def run_reward_prediction(model, config, source, settings, run_info=None, stream=None):
  """Collects the dynamics' states and trains and scores one reward model per domain.

  Args:
    model: the trained action-conditional `StructVRNN`.
    config: its `Config` (checked with `check_run_config`).
    source: `sources.DataSource` whose sequences carry `image`, `actions`, `reward`, `label`.
    settings: `Settings`.

  Returns:
    The report (JSON-ready dict; see docs/downstream.md).
  """
  settings.validate()
  check_run_config(config)
  stream = stream or sys.stdout
  calls = model_calls.ModelCalls(model, feed_decoded_observed=settings.feed_decoded_observed)
  start = time.time()
  states = load_states(calls, source, settings)
  timing = {"extract_seconds": time.time() - start}
  inputs, targets = reward_model.align(states["rnn_states"], states["reward"],
                                       settings.alignment)
  splits = reward_model.split_per_task(states["label"], states["group"],
                                       settings.holdout_fraction, settings.seed)
  label_names = list(source.label_names) if source.label_names else None
  stream.write(f"Reward prediction ({model_calls.model_type(config)}): {len(inputs)} sequences "
               f"of {inputs.shape[1]} steps, {len(splits)} domains.\n")
  stream.flush()
  domains = {}
  start = time.time()
  for task, (train_rows, test_rows) in splits.items():
    name = label_names[task] if label_names and task < len(label_names) else f"task_{task}"
    result = reward_model.evaluate_domain(inputs[train_rows], targets[train_rows],
                                          inputs[test_rows], targets[test_rows], settings,
                                          states["group"][train_rows])
    domains[name] = dict(result, label=task)
    stream.write(f"  {name}: normalised MSE {result['normalized_mse']} +- "
                 f"{result['normalized_mse_ci95']} (fitted "
                 f"{result['train_normalized_mse']}, best epoch {result['best_epoch']} of "
                 f"{result['epochs_run']} run)\n")
    stream.flush()
  timing["reward_models_seconds"] = time.time() - start
  normalized = [d["normalized_mse"] for d in domains.values() if d["normalized_mse"] is not None]
  return {
      "task": "reward_prediction",
      "run": run_info or {},
      "model_type": model_calls.model_type(config),
      "dataset": source.name,
      "settings": dataclasses.asdict(settings),
      "num_sequences": int(len(inputs)),
      "num_time_steps": int(inputs.shape[1]),
      "rnn_units": int(inputs.shape[2]),
      "domains": domains,
      "mean_normalized_mse": float(np.mean(normalized)) if normalized else None,
      "timing": timing,
  }


def run_label(run_dir, config):
  """How a run is named in comparisons: `<model type>:<run directory name>`."""
  return f"{model_calls.model_type(config)}:{os.path.basename(os.path.normpath(run_dir))}"


def comparison(reports):
  """Side-by-side numbers of several runs' reports (dict label -> report)."""
  domains = []
  for report in reports.values():
    domains += [name for name in report["domains"] if name not in domains]
  return {
      "task": "reward_prediction_comparison",
      "runs": list(reports),
      "normalized_mse": {domain: {label: report["domains"].get(domain, {}).get("normalized_mse")
                                  for label, report in reports.items()}
                         for domain in domains},
      "mean_normalized_mse": {label: report["mean_normalized_mse"]
                              for label, report in reports.items()},
      "reports": reports,
  }


def write_figure(path, reports):
  """Figure 9-like panels, one per domain: normalised MSE per time step of each run (band:
  95% CI across held-out sequences), the null model at 1."""
  domains = []
  for report in reports.values():
    domains += [name for name in report["domains"] if name not in domains]
  panels = []
  for domain in domains:
    lines = []
    num_steps = None
    for label, report in reports.items():
      if domain not in report["domains"]:
        continue
      steps = report["domains"][domain]["per_time_step"]
      mean = steps["normalized_mse"]
      num_steps = len(mean)
      half = [0.0 if h is None else h for h in steps["normalized_mse_ci95"]]
      lines.append({"label": f"{label} ({report['domains'][domain]['normalized_mse']:.3g})"
                             if report["domains"][domain]["normalized_mse"] is not None
                             else label,
                    "y": mean,
                    "lower": [None if m is None else m - h for m, h in zip(mean, half)],
                    "upper": [None if m is None else m + h for m, h in zip(mean, half)]})
    lines.append({"label": "null model", "y": [1.0] * (num_steps or 1), "color": "black",
                  "linestyle": "--"})
    for line in lines:  # fill_between needs numbers.
      if "lower" in line and any(v is None for v in line["lower"]):
        line.pop("lower"), line.pop("upper")
    panels.append({"title": domain, "ylabel": "normalised MSE", "lines": lines})
  figures.save_line_panels(path, panels, num_columns=3)
  return path


# Command line. --------------------------------------------------------------------------------

def build_parser():
  parser = argparse.ArgumentParser(
      prog="python -m video_structure.downstream.reward_prediction", description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--run_dir", action="append", required=True,
                      help="Run directory of an action-conditional DMCS model; repeat to "
                           "compare runs (e.g. Struct-VRNN and CNN-VRNN) on the same data.")
  parser.add_argument("--checkpoint", action="append", default=None,
                      help="Checkpoint per --run_dir, in the same order (default: latest).")
  parser.add_argument("--data_dir", default="data", help="Where the datasets live.")
  parser.add_argument("--output", default=None,
                      help="Output JSON (one run: default <run_dir>/reward_prediction.json; "
                           "several: the comparison, default <first run_dir>/"
                           "reward_prediction_comparison.json). The PNG goes next to it.")
  parser.add_argument("--dataset_config", default=None,
                      help="DMCS builder config whose sequences are used (default: the "
                           "run's, or its reward-sized counterpart: cpu -> cpu_reward, 250 "
                           "test sequences per task).")
  parser.add_argument("--split", choices=SPLITS, default="test",
                      help="Data split whose sequences are used (paper: test).")
  parser.add_argument("--max_sequences", type=int, default=None,
                      help="Read at most this many sequences per split (default all).")
  parser.add_argument("--sequence_length", type=int, default=20)
  parser.add_argument("--alignment", choices=ALIGNMENTS, default="next_state")
  parser.add_argument("--holdout_fraction", type=float, default=0.2)
  parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                      help="At most this many reward-model epochs per domain (the paper does "
                           "not say); the learning rate decays over all of them.")
  parser.add_argument("--validation_fraction", type=float,
                      default=DEFAULT_VALIDATION_FRACTION,
                      help="Share of each domain's training sequences used to choose the "
                           "epoch (early stopping, best weights kept); 0: train all epochs "
                           "on all training sequences.")
  parser.add_argument("--patience", type=int, default=DEFAULT_PATIENCE,
                      help="Epochs without a lower validation loss before stopping.")
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--model_batch_size", type=int, default=16,
                      help="Sequences per call of the trained model.")
  parser.add_argument("--feed_decoded_observed", type=float, default=0.0)
  parser.add_argument("--no_standardize_targets", action="store_true",
                      help="Train on raw rewards instead of standardised ones.")
  parser.add_argument("--seed", type=int, default=0)
  return parser


def main(argv=None, source=None):
  """Runs the experiment from the command line; `source` injects a `DataSource` (tests)."""
  args = build_parser().parse_args(argv)
  settings = Settings(
      sequence_length=args.sequence_length, split=args.split, max_sequences=args.max_sequences,
      alignment=args.alignment, holdout_fraction=args.holdout_fraction, epochs=args.epochs,
      validation_fraction=args.validation_fraction, patience=args.patience,
      batch_size=args.batch_size, model_batch_size=args.model_batch_size,
      feed_decoded_observed=args.feed_decoded_observed, dataset_config=args.dataset_config,
      standardize_targets=not args.no_standardize_targets, seed=args.seed).validate()
  run_dirs = args.run_dir
  checkpoints = args.checkpoint or [None] * len(run_dirs)
  if len(checkpoints) != len(run_dirs):
    raise ValueError(f"--checkpoint was given {len(checkpoints)} times for {len(run_dirs)} "
                     f"--run_dir; give one per run or none.")
  if len(set(os.path.abspath(d) for d in run_dirs)) != len(run_dirs):
    raise ValueError(f"--run_dir lists the same directory twice: {run_dirs}.")
  run_configs = []
  for run_dir in run_dirs:  # Check every run before the expensive work.
    run_config = run_dir_lib.load_config(run_dir)
    check_run_config(run_config.model, f"--run_dir {run_dir}")
    run_configs.append(run_config)
  configs = [run_config.model for run_config in run_configs]
  data = {(c.dataset, c.dataset_config) for c in configs}
  if len(data) > 1:
    raise ValueError(f"The compared runs were trained on different data {sorted(data)}; "
                     f"reward prediction compares runs on the same sequences.")
  settings.dataset_config = resolve_dataset_config(configs[0].dataset_config,
                                                   args.dataset_config)
  source = downstream.prepare_source(
      dataclasses.replace(configs[0], dataset_config=settings.dataset_config), args.data_dir,
      source)
  reports = {}
  for run_dir, checkpoint, run_config in zip(run_dirs, checkpoints, run_configs):
    run = run_dir_lib.load_run(run_dir, checkpoint, run_config=run_config)
    label = run_label(run_dir, run.config)
    reports[label] = run_reward_prediction(run.model, run.config, source, settings,
                                           downstream.run_info(run))
  if len(reports) == 1:
    (label, report), = reports.items()
    path = downstream.output_path(args.output, run_dirs[0], "reward_prediction.json")
    report["figure"] = os.path.abspath(os.path.splitext(path)[0] + ".png")
    write_figure(report["figure"], reports)
    report_lib.write_json(path, report)
    result = report
  else:
    for run_dir, report in zip(run_dirs, reports.values()):
      report_lib.write_json(os.path.join(run_dir, "reward_prediction.json"), report)
    path = downstream.output_path(args.output, run_dirs[0], "reward_prediction_comparison.json")
    result = comparison(reports)
    result["figure"] = os.path.abspath(os.path.splitext(path)[0] + ".png")
    write_figure(result["figure"], reports)
    report_lib.write_json(path, result)
  for label, report in reports.items():
    print(f"{label}: mean normalised MSE {report['mean_normalized_mse']}")
    for name, domain in report["domains"].items():
      print(f"  {name}: {domain['normalized_mse']} +- {domain['normalized_mse_ci95']} (model "
            f"MSE {domain['model_mse']:.4g}, null MSE {domain['null_mse']:.4g}; best epoch "
            f"{domain['best_epoch']})")
  print(f"Wrote {path}")
  return result


if __name__ == "__main__":  # Short errors and --debug, as the video-structure-downstream command.
  from video_structure.cli import console  # pylint: disable=g-import-not-at-top
  sys.exit(console.run_module(main, __spec__.name))
