"""Callbacks of a training run: the NaN guard, the progress line and the TensorBoard summaries.

Training runs `Model.fit` in chunks of `log_every_steps` steps (one Keras "epoch" each), so the
loss means that TensorBoard and the progress line show are over the last chunk.
"""

import math
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from video_structure.training import figures


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
        tf.summary.image("examples", figures.example_images(
            self.model, self.example_frames, actions=self.example_actions)[None])
    self.writer.flush()

  def on_train_end(self, logs=None):
    self.writer.flush()

  def close(self):
    self.writer.close()
