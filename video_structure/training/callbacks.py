"""Callbacks of a training run: the NaN guard, the progress line, the loss log and the
TensorBoard summaries.

Training runs `Model.fit` in chunks of `log_every_steps` steps (one Keras "epoch" each), so the
loss means that TensorBoard, the loss log and the progress line show are over the last chunk.
"""

import json
import math
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from video_structure import io_utils
from video_structure.training import figures

# The loss log of a run: <run_dir>/LOSS_LOG_FILE (`LossLogCallback`).
LOSS_LOG_FILE = "losses.jsonl"


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


class LossLogCallback(keras.callbacks.Callback):
  """Appends one JSON line per logging chunk to `path`: {"step": s, <loss term>: mean, ...}.

  Every loss term of the chunk's logs, at full precision (JSON writes a float as the shortest
  decimal that reads back as the same value, so a float32 mean is exact); each line is flushed
  and fsync'ed when its chunk ends, before the checkpoint of that step is written (train.py's
  callback order). When training begins, lines after the model's step (written by a run killed
  before its next checkpoint) and a torn last line are dropped by an atomic rewrite, so a
  resumed run continues the log exactly as an uninterrupted run writes it.
  """

  def __init__(self, path):
    super().__init__()
    self.path = path

  def on_train_begin(self, logs=None):
    step = int(self.model.optimizer.iterations.numpy())
    if not os.path.exists(self.path):
      return
    with open(self.path, encoding="utf-8") as stream:
      lines = stream.read().splitlines()
    kept = []
    for line in lines:
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        continue  # A line torn by a kill (only ever the last one).
      if row["step"] <= step:
        kept.append(line)
    if kept != lines:
      io_utils.atomic_write_text(self.path, "".join(line + "\n" for line in kept))

  def on_epoch_end(self, epoch, logs=None):
    row = {"step": int(self.model.optimizer.iterations.numpy())}
    # Multi-worker logs are length-1 arrays (`replicas.logs_for_strategy`).
    row.update({name: float(np.asarray(value).reshape(()))
                for name, value in (logs or {}).items()})
    with open(self.path, "a", encoding="utf-8") as stream:
      stream.write(json.dumps(row) + "\n")
      stream.flush()
      os.fsync(stream.fileno())


def read_loss_log(path):
  """The rows of a loss log written by `LossLogCallback`: a list of dicts, in step order."""
  with open(path, encoding="utf-8") as stream:
    return [json.loads(line) for line in stream if line.strip()]


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
