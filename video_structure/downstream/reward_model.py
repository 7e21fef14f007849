"""The reward model of the reward-prediction experiment (paper S2.3) and its scores.

Pure functions of arrays: the errors against the null model (which predicts the mean training
reward at every step), pairing the dynamics' states with the rewards they predict, the per-task
80/20 split, and training and scoring one domain's reward model (Dense 128 -> ReLU -> GRU 128 ->
ReLU -> GRU 128 -> ReLU -> Dense 1; Adam from 1e-3 decaying to 1e-4; mean squared error). The
experiment itself (data, runs, command line) is `reward_prediction.py`.
"""

import keras
import numpy as np

from video_structure import downstream

ALIGNMENTS = ("next_state", "same_step")


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


# States and rewards. --------------------------------------------------------------------------

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


# The reward model. ----------------------------------------------------------------------------

def build_reward_model(num_steps, num_features, units=128):
  """S2.3's reward model: `[B, T, U]` -> Dense(units) -> ReLU -> GRU(units) -> ReLU ->
  GRU(units) -> ReLU -> Dense(1) -> `[B, T]` rewards (one per step)."""
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
