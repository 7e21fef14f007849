"""The training run: checkpoints, resumption, progress, TensorBoard and NaN checks.

A run directory holds
  config.json                  the full configuration (written once, checked on resume)
  checkpoints/ckpt-XXXXXXX.keras  model + optimizer state (incl. the step counter), atomic
  checkpoints/latest           name of the newest complete checkpoint, atomic
  tensorboard/                 scalars and images
  saved_model/                 the exported SavedModel (at the end)
Training runs `Model.fit` in chunks of `log_every_steps` steps (one Keras "epoch" each), so
the loss means that TensorBoard and the progress line show are over the last chunk.
"""

import glob
import math
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from video_structure import config as config_lib
from video_structure import model as model_lib
from video_structure import visualize

CHECKPOINT_DIR = "checkpoints"
LATEST_FILE = "latest"


def _atomic_write_text(path, text):
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def save_checkpoint(model, run_dir, keep=3):
  """Saves model and optimizer state as `checkpoints/ckpt-<step>.keras` atomically.

  The file is written under a temporary name and renamed; `latest` is updated (also by
  rename) only after that, so a run killed at any moment leaves a loadable checkpoint.
  Keeps the newest `keep` checkpoints.
  """
  directory = os.path.join(run_dir, CHECKPOINT_DIR)
  os.makedirs(directory, exist_ok=True)
  step = int(model.optimizer.iterations.numpy())
  name = f"ckpt-{step:07d}.keras"
  tmp = os.path.join(directory, f".{name}.tmp.keras")
  model.save(tmp)
  os.replace(tmp, os.path.join(directory, name))
  _atomic_write_text(os.path.join(directory, LATEST_FILE), name + "\n")
  for old in sorted(glob.glob(os.path.join(directory, "ckpt-*.keras")))[:-keep]:
    os.remove(old)
  return os.path.join(directory, name)


def latest_checkpoint(run_dir):
  """Path of the newest complete checkpoint in `run_dir`, or None."""
  latest = os.path.join(run_dir, CHECKPOINT_DIR, LATEST_FILE)
  if not os.path.exists(latest):
    return None
  with open(latest) as f:
    path = os.path.join(run_dir, CHECKPOINT_DIR, f.read().strip())
  if not os.path.exists(path):
    raise FileNotFoundError(f"{latest} names {path}, which does not exist; delete {latest} to "
                            f"start over or restore the file.")
  return path


def load_checkpoint(path, config):
  """Loads a checkpoint written by `save_checkpoint` (weights, optimizer state, step)."""
  keras.mixed_precision.set_global_policy("mixed_bfloat16" if config.mixed_precision
                                          else "float32")
  model = keras.models.load_model(path, compile=True)
  if not isinstance(model, model_lib.StructVRNN):
    raise ValueError(f"{path} does not hold a StructVRNN model.")
  model.jit_compile = False  # XLA is slower on CPU (see README).
  return model


class CheckpointCallback(keras.callbacks.Callback):
  """Saves a checkpoint every `every_steps` steps and at the end of training.

  Under a tf.distribute strategy only the chief writes (`strategy.extended.should_checkpoint`,
  from the model's strategy unless `is_chief` is given): the checkpoint holds one copy of the
  mirrored variables (no collective op is involved in saving), so the other workers carry on and
  any number of replicas can load it later (inside their strategy's scope).
  """

  def __init__(self, run_dir, every_steps, keep=3, is_chief=None):
    super().__init__()
    self.run_dir, self.every_steps, self.keep = run_dir, every_steps, keep
    self.is_chief = is_chief
    self.last_saved = None

  def _should_write(self):
    if self.is_chief is not None:
      return self.is_chief
    return bool(self.model.distribute_strategy.extended.should_checkpoint)

  def on_epoch_end(self, epoch, logs=None):
    step = int(self.model.optimizer.iterations.numpy())
    if step % self.every_steps == 0:
      if self._should_write():
        save_checkpoint(self.model, self.run_dir, self.keep)
      self.last_saved = step

  def on_train_end(self, logs=None):
    step = int(self.model.optimizer.iterations.numpy())
    if step != self.last_saved and self._should_write():
      save_checkpoint(self.model, self.run_dir, self.keep)


class NaNGuard(keras.callbacks.Callback):
  """Stops training with a clear error when a loss becomes NaN or infinite."""

  def on_train_batch_end(self, batch, logs=None):
    for name, value in (logs or {}).items():
      if not np.isfinite(float(value)):
        step = int(self.model.optimizer.iterations.numpy())
        raise FloatingPointError(
            f"{name} became {float(value)} at step {step}. Lower --learning_rate or "
            f"--clipnorm, check the input frames, or resume from the last checkpoint.")


class ProgressCallback(keras.callbacks.Callback):
  """One line per logging chunk: step, percent, steps/s, frames/s, ETA and the losses."""

  def __init__(self, total_steps, frames_per_step, stream=None):
    super().__init__()
    self.total_steps, self.frames_per_step = total_steps, frames_per_step
    self.stream = stream or sys.stdout
    self.start_time = self.start_step = None

  def on_train_begin(self, logs=None):
    self.start_time = time.time()
    self.start_step = int(self.model.optimizer.iterations.numpy())

  def on_epoch_end(self, epoch, logs=None):
    step = int(self.model.optimizer.iterations.numpy())
    elapsed = time.time() - self.start_time
    rate = (step - self.start_step) / max(elapsed, 1e-9)
    eta = (self.total_steps - step) / rate if rate > 0 else float("inf")
    filled = int(30 * step / self.total_steps)
    losses = " ".join(f"{k.replace('_loss', '')}={v:.4g}" for k, v in (logs or {}).items())
    self.stream.write(
        f"[{'#' * filled}{'.' * (30 - filled)}] step {step}/{self.total_steps} "
        f"({100 * step / self.total_steps:.0f}%) {rate:.2f} steps/s "
        f"{rate * self.frames_per_step:.0f} frames/s ETA {_format_seconds(eta)} | {losses}\n")
    self.stream.flush()


def _format_seconds(seconds):
  if not math.isfinite(seconds):
    return "?"
  minutes, seconds = divmod(int(seconds), 60)
  return f"{minutes}m{seconds:02d}s"


class TensorBoardCallback(keras.callbacks.Callback):
  """Writes every loss term, the learning rate and the schedules every chunk, and example
  frames with detected keypoints, reconstructions and open-loop predictions every
  `image_every_steps` steps."""

  def __init__(self, log_dir, example_frames, image_every_steps, example_actions=None):
    super().__init__()
    self.writer = tf.summary.create_file_writer(log_dir)
    self.example_frames = example_frames  # [B, T, H, W, 3] float32
    self.example_actions = example_actions  # [B, T, A] for action-conditional models, or None
    self.image_every_steps = image_every_steps

  def on_epoch_end(self, epoch, logs=None):
    step = int(self.model.optimizer.iterations.numpy())
    with self.writer.as_default(step=step):
      for name, value in (logs or {}).items():
        tf.summary.scalar(f"loss/{name}", value)
      learning_rate = self.model.optimizer.learning_rate
      tf.summary.scalar("schedule/learning_rate", learning_rate)
      for name, value in self.model.schedules(step).items():
        tf.summary.scalar(f"schedule/{name}", value)
      if step % self.image_every_steps == 0:
        tf.summary.image("examples", example_images(self.model, self.example_frames,
                                                    actions=self.example_actions)[None])
    self.writer.flush()

  def on_train_end(self, logs=None):
    self.writer.flush()

  def close(self):
    self.writer.close()


def example_images(model, frames, num_observed=None, num_samples=2, seed=(0, 0), actions=None):
  """A figure (uint8 `[H', W', 3]`) of ground truth with detected keypoints and open-loop
  predictions (observed frames with a green border, predicted with a red one) for the first
  sequence of `frames` (`[B, T, H, W, 3]` float32); `actions` `[B, T, A]` drive an
  action-conditional model's predictions (the window's true actions)."""
  num_observed = num_observed or model.config.observed_steps
  frames = frames[:1]
  if actions is not None:
    actions = actions[:1]
  detected = model.detect(frames)[0]
  prediction = model.predict_future(frames[:, :num_observed],
                                    int(frames.shape[1]) - num_observed, num_samples,
                                    actions=actions, seed=tf.constant(seed, tf.int32))
  return visualize.prediction_figure(
      visualize.frames_to_uint8(frames[0].numpy()),
      visualize.frames_to_uint8(prediction["frames"][:, 0].numpy()),
      keypoints=detected[0].numpy(), predicted_keypoints=prediction["keypoints"][:, 0].numpy(),
      num_observed=num_observed, scale=2)


def prepare_run_dir(run_dir, config, write=True):
  """Creates the run directory and writes config.json; on resume checks it matches.

  `write=False` (the non-chief workers of a distributed run) only checks an existing config.json
  and writes nothing. Returns the config to use (the saved one when resuming).
  """
  path = os.path.join(run_dir, "config.json")
  if not write:
    if os.path.exists(path):
      _check_resumable(config_lib.Config.load(path), config, path)
    return config
  os.makedirs(run_dir, exist_ok=True)
  if os.path.exists(path):
    _check_resumable(config_lib.Config.load(path), config, path)
    config.save(path)  # Records resumable changes such as a longer num_steps.
    return config
  config.save(path)
  return config


def _check_resumable(saved, config, path):
  differences = {k: (saved.to_dict()[k], v) for k, v in config.to_dict().items()
                 if saved.to_dict()[k] != v and k not in RESUMABLE_CHANGES}
  if differences:
    raise ValueError(
        f"{path} exists with different hyperparameters {differences} (saved, requested). "
        f"Use a new --run_dir, or the same flags to resume.")


# Settings that may change when a run is resumed (they do not change the model).
RESUMABLE_CHANGES = ("num_steps", "checkpoint_every_steps", "log_every_steps",
                     "image_summary_every_steps", "num_eval_sequences")


def write_prediction_figures(model, frames, output_dir, num_samples=3, seed=0):
  """Draws observed and predicted frames with keypoints for a few test windows.

  For each window i of `frames` (`[N, L, H, W, 3]` float32) writes `sequence_<i>.png` (rows:
  ground truth with detected keypoints, then `num_samples` sampled futures with their
  keypoints; green borders mark observed frames, red ones predicted) and `sequence_<i>.gif`
  (the same rows side by side, one GIF frame per time step). Returns the written paths.
  """
  num_observed = model.config.observed_steps
  num_predicted = int(frames.shape[1]) - num_observed
  detected = model.detect(tf.constant(frames))[0].numpy()
  prediction = model.predict_future(tf.constant(frames[:, :num_observed]), num_predicted,
                                    num_samples, seed=tf.constant([seed, 0], tf.int32))
  predicted_frames = visualize.frames_to_uint8(prediction["frames"].numpy())  # [S, N, L, ...]
  predicted_keypoints = prediction["keypoints"].numpy()
  true_frames = visualize.frames_to_uint8(frames)
  paths = []
  for i in range(len(frames)):
    figure = visualize.prediction_figure(
        true_frames[i], predicted_frames[:, i], keypoints=detected[i],
        predicted_keypoints=predicted_keypoints[:, i], num_observed=num_observed, scale=2)
    paths.append(os.path.join(output_dir, f"sequence_{i}.png"))
    visualize.save_png(paths[-1], figure)
    rows = [visualize.draw_keypoints(true_frames[i], detected[i], scale=4, trails=4)]
    rows += [visualize.draw_keypoints(predicted_frames[s, i], predicted_keypoints[s, i],
                                      scale=4, trails=4) for s in range(num_samples)]
    gif_frames = []
    for t in range(frames.shape[1]):
      color = (visualize.OBSERVED_BORDER_COLOR if t < num_observed
               else visualize.PREDICTED_BORDER_COLOR)
      tiles = [np.pad(row[t], ((3, 3), (3, 3), (0, 0)), constant_values=0) for row in rows]
      for tile in tiles:
        tile[:3], tile[-3:], tile[:, :3], tile[:, -3:] = color, color, color, color
      gif_frames.append(np.concatenate(tiles, axis=1))
    paths.append(os.path.join(output_dir, f"sequence_{i}.gif"))
    visualize.save_gif(paths[-1], np.stack(gif_frames))
  return paths
