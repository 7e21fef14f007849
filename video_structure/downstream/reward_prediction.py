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
`video_structure/dmcs.py`). The GRU state h_t has seen frame t and a_{t-1} but not a_t, so by
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

DATASET = "dmcs"
ALIGNMENTS = ("next_state", "same_step")
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


# Errors and the null model. -------------------------------------------------------------------

def _pair(predicted, target):
  predicted = np.asarray(predicted, np.float64)
  target = np.asarray(target, np.float64)
  if predicted.shape != target.shape or target.size == 0:
    raise ValueError(f"predicted and target must be non-empty arrays of the same shape, got "
                     f"{predicted.shape} and {target.shape}.")
  return predicted, target


def mean_squared_error(predicted, target):
  """Mean over all entries of (predicted - target)^2."""
  predicted, target = _pair(predicted, target)
  return float(np.mean(np.square(predicted - target)))


def null_prediction(train_rewards):
  """The null model's constant prediction: the mean training reward (over sequences and
  steps)."""
  train_rewards = np.asarray(train_rewards, np.float64)
  if train_rewards.size == 0:
    raise ValueError("null_prediction needs at least one training reward.")
  return float(np.mean(train_rewards))


def normalized_mse(predicted, rewards, mean_training_reward):
  """MSE of `predicted` divided by the MSE of the null model predicting the constant
  `mean_training_reward`; None when the null model is exact (zero error).

  Args:
    predicted: `[N, T]` predicted rewards; rewards: `[N, T]` true ones.
  """
  predicted, rewards = _pair(predicted, rewards)
  null_error = mean_squared_error(np.full_like(rewards, mean_training_reward), rewards)
  return None if null_error == 0 else mean_squared_error(predicted, rewards) / null_error


def normalized_mse_ci95(predicted, rewards, mean_training_reward):
  """Half-width of a 95% confidence interval of the normalised MSE's difference from the null
  model, paired over sequences: 1.96 standard errors of d_i = (model MSE_i - null MSE_i) /
  null MSE, where MSE_i is sequence i's mean over steps and null MSE the null model's over
  all sequences (so mean_i d_i = normalised MSE - 1). The null model is beaten beyond noise
  when normalised MSE + this < 1. Pairing matters: a few sequences with large rewards
  dominate both errors. None with fewer than 2 sequences or a zero null MSE.

  Args:
    predicted, rewards: `[N, T]`.
  """
  predicted, rewards = _pair(predicted, rewards)
  if rewards.ndim != 2:
    raise ValueError(f"predicted and rewards must be [N, T], got {rewards.shape}.")
  null_per_sequence = np.mean(np.square(mean_training_reward - rewards), axis=1)
  null_error = float(np.mean(null_per_sequence))
  if null_error == 0 or len(rewards) < 2:
    return None
  difference = (np.mean(np.square(predicted - rewards), axis=1) - null_per_sequence) / null_error
  return float(1.96 * difference.std(ddof=1) / np.sqrt(len(difference)))


def per_step_errors(predicted, rewards, mean_training_reward):
  """Per time step: model MSE, null MSE, their ratio and the ratio's 95% confidence
  half-width across sequences (1.96 standard errors of the per-sequence normalised squared
  error).

  Args:
    predicted, rewards: `[N, T]`.

  Returns:
    dict of lists of length T (`model_mse`, `null_mse`, `normalized_mse`,
    `normalized_mse_ci95`); None where the null MSE is zero.
  """
  predicted, rewards = _pair(predicted, rewards)
  if rewards.ndim != 2:
    raise ValueError(f"predicted and rewards must be [N, T], got {rewards.shape}.")
  model_error = np.square(predicted - rewards)  # [N, T]
  null_error = np.square(mean_training_reward - rewards)
  model_mse, null_mse = model_error.mean(axis=0), null_error.mean(axis=0)
  result = {"model_mse": model_mse.tolist(), "null_mse": null_mse.tolist(),
            "normalized_mse": [], "normalized_mse_ci95": []}
  num_sequences = len(rewards)
  for t in range(rewards.shape[1]):
    if null_mse[t] == 0:
      result["normalized_mse"].append(None)
      result["normalized_mse_ci95"].append(None)
      continue
    ratio = model_error[:, t] / null_mse[t]
    result["normalized_mse"].append(float(ratio.mean()))
    result["normalized_mse_ci95"].append(
        float(1.96 * ratio.std(ddof=1) / np.sqrt(num_sequences)) if num_sequences > 1
        else None)
  return result


# Data. ----------------------------------------------------------------------------------------

def align(rnn_states, rewards, alignment="next_state"):
  """Pairs GRU states with the rewards they predict.

  Args:
    rnn_states: `[N, T, U]` states h_t; rewards: `[N, T]` reward[t].
    alignment: `next_state` (h_{t+1} -> reward[t], T - 1 steps) or `same_step` (h_t ->
      reward[t], T steps).

  Returns:
    (inputs `[N, T', U]`, targets `[N, T']`).
  """
  rnn_states = np.asarray(rnn_states)
  rewards = np.asarray(rewards)
  if rnn_states.ndim != 3 or rewards.shape != rnn_states.shape[:2]:
    raise ValueError(f"rnn_states must be [N, T, U] and rewards [N, T], got "
                     f"{rnn_states.shape} and {rewards.shape}.")
  if alignment == "next_state":
    if rnn_states.shape[1] < 2:
      raise ValueError("alignment 'next_state' needs sequences of at least 2 steps.")
    return rnn_states[:, 1:], rewards[:, :-1]
  if alignment == "same_step":
    return rnn_states, rewards
  raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}.")


def split_per_task(labels, groups, fraction, seed):
  """80/20-style split of each task's sequences.

  Args:
    labels: int `[N]` task of every row.
    groups: int `[N]` sequence id of every row (rows of one sequence stay together).
    fraction: share of each task's sequences held out (rounded; at least 1, at most all
      but one).
    seed: permutation seed (each task gets its own stream from (seed, task)).

  Returns:
    dict {task: (train row indices, test row indices)}, tasks in increasing order.
  """
  fraction = downstream.check_fraction(fraction, "holdout_fraction")
  labels, groups = np.asarray(labels), np.asarray(groups)
  if labels.shape != groups.shape or labels.ndim != 1:
    raise ValueError(f"labels and groups must be 1-D of the same length, got {labels.shape} "
                     f"and {groups.shape}.")
  splits = {}
  for task in np.unique(labels):
    rows = np.flatnonzero(labels == task)
    sequences = np.unique(groups[rows])
    if len(sequences) < 2:
      raise ValueError(f"Task {int(task)} has {len(sequences)} sequence(s); at least 2 are "
                       f"needed to hold one out (use more sequences).")
    num_test = int(np.clip(round(fraction * len(sequences)), 1, len(sequences) - 1))
    held_out = np.random.default_rng([seed, int(task)]).permutation(sequences)[:num_test]
    test = np.isin(groups[rows], held_out)
    splits[int(task)] = (rows[~test], rows[test])
  return splits


def collect_rnn_states(functions, dataset, settings, name="dataset"):
  """The dynamics' states over every sequence window of a split.

  Returns:
    dict with `rnn_states` float32 `[N, L, U]`, `reward` `[N, L]`, `label` int64 `[N]`,
    `sequence_index` `[N]`.
  """
  def compute(batch, batch_index):
    keypoints = functions.detect(downstream.frames_to_model_input(batch["image"]))
    states = functions.rnn_states(keypoints, batch["actions"], seed=(settings.seed, batch_index))
    return {"rnn_states": states.astype(np.float32)}

  windows = downstream.map_windows(
      dataset, settings.sequence_length, ["image", "actions", "reward"], compute,
      scalar_keys=["label"], keep_keys=["reward", "label"],
      batch_size=settings.model_batch_size, max_sequences=settings.max_sequences, name=name)
  windows["label"] = windows["label"].astype(np.int64)
  return windows


# The reward model. ----------------------------------------------------------------------------

def build_reward_model(num_steps, num_features, units=128):
  """S2.3's reward model: `[B, T, U]` -> Dense(units) -> ReLU -> GRU(units) -> ReLU ->
  GRU(units) -> ReLU -> Dense(1) -> `[B, T]` rewards (one per step)."""
  import keras
  inputs = keras.Input((num_steps, num_features), name="rnn_states")
  hidden = keras.layers.Dense(units, activation="relu", name="dense")(inputs)
  hidden = keras.layers.GRU(units, return_sequences=True, name="gru_1")(hidden)
  hidden = keras.layers.ReLU(name="relu_1")(hidden)
  hidden = keras.layers.GRU(units, return_sequences=True, name="gru_2")(hidden)
  hidden = keras.layers.ReLU(name="relu_2")(hidden)
  outputs = keras.layers.Dense(1, name="reward")(hidden)
  outputs = keras.layers.Reshape((num_steps,), name="per_step")(outputs)
  return keras.Model(inputs, outputs, name="reward_model")


def train_reward_model(train_inputs, train_targets, settings, validation_inputs=None,
                       validation_targets=None, verbose=0):
  """Trains a reward model from scratch (deterministic given `settings.seed`).

  Args:
    train_inputs: `[N, T, U]`; train_targets: `[N, T]` rewards (what the model is fitted on).
    validation_inputs, validation_targets: `[M, T, U]`, `[M, T]` or None. When given, training
      stops after `settings.patience` epochs without a lower validation loss and the weights
      of the best epoch are kept; otherwise all `settings.epochs` epochs run.

  Returns:
    (predict function `[M, T, U]` -> `[M, T]` float64 rewards, history dict: `loss` and
    `val_loss` per epoch run (in standardised units when `standardize_targets`; `val_loss`
    empty without validation data), `epochs_run`, `best_epoch` (1-based; the last epoch
    without validation data)).
  """
  import keras
  train_inputs, train_targets = _check_inputs(train_inputs, train_targets, "train")
  with_validation = validation_inputs is not None or validation_targets is not None
  if with_validation:
    validation_inputs, validation_targets = _check_inputs(validation_inputs,
                                                          validation_targets, "validation")
    if validation_inputs.shape[1:] != train_inputs.shape[1:]:
      raise ValueError(f"validation_inputs must be [M, {train_inputs.shape[1]}, "
                       f"{train_inputs.shape[2]}] like train_inputs, got "
                       f"{validation_inputs.shape}.")
  offset, scale = 0.0, 1.0
  if settings.standardize_targets:
    offset = float(train_targets.mean())
    scale = max(float(train_targets.std()), 1e-6)

  def standardized(targets):
    return ((targets - offset) / scale).astype(np.float32)

  keras.utils.set_random_seed(settings.seed)
  model = build_reward_model(train_inputs.shape[1], train_inputs.shape[2], settings.units)
  total_steps = settings.epochs * downstream.steps_per_epoch(len(train_inputs),
                                                             settings.batch_size)
  model.compile(optimizer=keras.optimizers.Adam(downstream.decaying_learning_rate(
      settings.learning_rate_start, settings.learning_rate_end, total_steps)),
                loss="mse", jit_compile=False)
  callbacks, validation_data = [], None
  if with_validation:
    validation_data = (validation_inputs, standardized(validation_targets))
    callbacks.append(keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=settings.patience, restore_best_weights=True))
  history = model.fit(train_inputs, standardized(train_targets),
                      batch_size=settings.batch_size, epochs=settings.epochs, shuffle=True,
                      validation_data=validation_data, callbacks=callbacks, verbose=verbose)
  losses = [float(value) for value in history.history["loss"]]
  validation_losses = [float(value) for value in history.history.get("val_loss", [])]
  best_epoch = (int(np.argmin(validation_losses)) + 1 if validation_losses else len(losses))

  def predict(inputs, batch_size=1024):
    inputs = np.asarray(inputs, np.float32)
    outputs = [model(inputs[i:i + batch_size], training=False).numpy()
               for i in range(0, len(inputs), batch_size)]
    return np.concatenate(outputs).astype(np.float64) * scale + offset

  return predict, {"loss": losses, "val_loss": validation_losses, "epochs_run": len(losses),
                   "best_epoch": best_epoch}


def _check_inputs(inputs, targets, name):
  inputs = np.asarray(inputs, np.float32)
  targets = np.asarray(targets, np.float64)
  if inputs.ndim != 3 or targets.shape != inputs.shape[:2] or len(inputs) == 0:
    raise ValueError(f"{name}_inputs must be a non-empty [N, T, U] and {name}_targets [N, T], "
                     f"got {inputs.shape} and {targets.shape}.")
  if not (np.all(np.isfinite(inputs)) and np.all(np.isfinite(targets))):
    raise ValueError(f"reward-model {name} inputs or targets contain NaN or inf.")
  return inputs, targets


def evaluate_domain(train_inputs, train_targets, test_inputs, test_targets, settings,
                    train_groups=None):
  """Trains one domain's reward model on its training sequences and scores it against the
  null model on the held-out ones.

  Args:
    train_inputs `[N, T, U]`, train_targets `[N, T]`: the domain's training part (80%).
    test_inputs `[M, T, U]`, test_targets `[M, T]`: its held-out part (20%), used for scoring
      only.
    train_groups: int `[N]` sequence id of every training row (windows of one sequence stay
      on one side of the validation split); None: every row is its own sequence.

  Returns:
    dict with `num_train_sequences`, `num_fit_sequences`, `num_validation_sequences`,
    `num_test_sequences` (rows), `mean_training_reward` (over all N training rows),
    `null_mse`, `model_mse`, `normalized_mse`, `normalized_mse_ci95` (see
    `normalized_mse_ci95`), `train_normalized_mse` (on the rows the model
    was fitted on), `validation_normalized_mse` (None without validation), `per_time_step`
    (see `per_step_errors`), `final_train_loss`, `epochs_run`, `best_epoch`,
    `loss_per_epoch`, `validation_loss_per_epoch`.
  """
  train_inputs = np.asarray(train_inputs)
  train_targets = np.asarray(train_targets, np.float64)
  mean_reward = null_prediction(train_targets)
  fit_rows, validation_rows = np.arange(len(train_targets)), np.array([], np.int64)
  if settings.validation_fraction > 0:
    groups = (np.arange(len(train_targets)) if train_groups is None
              else np.asarray(train_groups))
    (fit_rows, validation_rows), = split_per_task(
        np.zeros(len(groups), np.int64), groups, settings.validation_fraction,
        settings.seed + 1).values()
  validation = ((train_inputs[validation_rows], train_targets[validation_rows])
                if len(validation_rows) else (None, None))
  predict, history = train_reward_model(train_inputs[fit_rows], train_targets[fit_rows],
                                        settings, *validation)
  test_predictions = predict(test_inputs)
  test_targets = np.asarray(test_targets, np.float64)
  return {
      "num_train_sequences": int(len(train_targets)),
      "num_fit_sequences": int(len(fit_rows)),
      "num_validation_sequences": int(len(validation_rows)),
      "num_test_sequences": int(len(test_targets)),
      "mean_training_reward": mean_reward,
      "null_mse": mean_squared_error(np.full_like(test_targets, mean_reward), test_targets),
      "model_mse": mean_squared_error(test_predictions, test_targets),
      "normalized_mse": normalized_mse(test_predictions, test_targets, mean_reward),
      "normalized_mse_ci95": normalized_mse_ci95(test_predictions, test_targets, mean_reward),
      "train_normalized_mse": normalized_mse(predict(train_inputs[fit_rows]),
                                             train_targets[fit_rows], mean_reward),
      "validation_normalized_mse": (
          normalized_mse(predict(validation[0]), validation[1], mean_reward)
          if len(validation_rows) else None),
      "per_time_step": per_step_errors(test_predictions, test_targets, mean_reward),
      "final_train_loss": history["loss"][-1],
      "epochs_run": history["epochs_run"],
      "best_epoch": history["best_epoch"],
      "loss_per_epoch": history["loss"],
      "validation_loss_per_epoch": history["val_loss"],
  }


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
  from datasets.dmcs import dmcs_dataset_builder  # pylint: disable=import-outside-toplevel
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


def load_states(functions, source, settings):
  """States of the chosen split(s); `sequence_index` made unique across splits."""
  parts = []
  for split in (("train", "test") if settings.split == "both" else (settings.split,)):
    windows = collect_rnn_states(functions, getattr(source, split), settings,
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
  functions = downstream.ModelFunctions(model, settings.feed_decoded_observed)
  start = time.time()
  states = load_states(functions, source, settings)
  timing = {"extract_seconds": time.time() - start}
  inputs, targets = align(states["rnn_states"], states["reward"], settings.alignment)
  splits = split_per_task(states["label"], states["group"], settings.holdout_fraction,
                          settings.seed)
  label_names = list(source.label_names) if source.label_names else None
  stream.write(f"Reward prediction ({downstream.model_type(config)}): {len(inputs)} sequences "
               f"of {inputs.shape[1]} steps, {len(splits)} domains.\n")
  stream.flush()
  domains = {}
  start = time.time()
  for task, (train_rows, test_rows) in splits.items():
    name = label_names[task] if label_names and task < len(label_names) else f"task_{task}"
    result = evaluate_domain(inputs[train_rows], targets[train_rows], inputs[test_rows],
                             targets[test_rows], settings, states["group"][train_rows])
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
      "model_type": downstream.model_type(config),
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
  return f"{downstream.model_type(config)}:{os.path.basename(os.path.normpath(run_dir))}"


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
  from video_structure import visualize
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
  visualize.save_line_panels(path, panels, num_columns=3)
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
  configs = []
  for run_dir in run_dirs:  # Check every run before the expensive work.
    config = downstream.load_run_config(run_dir)
    check_run_config(config, f"--run_dir {run_dir}")
    configs.append(config)
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
  for run_dir, checkpoint, config in zip(run_dirs, checkpoints, configs):
    run = downstream.load_run(run_dir, checkpoint, config)
    label = run_label(run_dir, config)
    reports[label] = run_reward_prediction(run.model, config, source, settings, run.info())
  if len(reports) == 1:
    (label, report), = reports.items()
    path = downstream.output_path(args.output, run_dirs[0], "reward_prediction.json")
    report["figure"] = os.path.abspath(os.path.splitext(path)[0] + ".png")
    write_figure(report["figure"], reports)
    downstream.write_json(path, report)
    result = report
  else:
    for run_dir, report in zip(run_dirs, reports.values()):
      downstream.write_json(os.path.join(run_dir, "reward_prediction.json"), report)
    path = downstream.output_path(args.output, run_dirs[0], "reward_prediction_comparison.json")
    result = comparison(reports)
    result["figure"] = os.path.abspath(os.path.splitext(path)[0] + ".png")
    write_figure(result["figure"], reports)
    downstream.write_json(path, result)
  for label, report in reports.items():
    print(f"{label}: mean normalised MSE {report['mean_normalized_mse']}")
    for name, domain in report["domains"].items():
      print(f"  {name}: {domain['normalized_mse']} +- {domain['normalized_mse_ci95']} (model "
            f"MSE {domain['model_mse']:.4g}, null MSE {domain['null_mse']:.4g}; best epoch "
            f"{domain['best_epoch']})")
  print(f"Wrote {path}")
  return result


if __name__ == "__main__":
  main()
