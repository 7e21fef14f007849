"""Atomic checkpoints of a run: save, find the latest, load, and the callback that saves them.

  <run_dir>/checkpoints/ckpt-XXXXXXX.keras  model + optimizer state (incl. the step counter)
  <run_dir>/checkpoints/latest              name of the newest complete checkpoint

Both files are written through `io_utils.atomic_save` (temporary file, fsync, rename), and
`latest` only after the checkpoint it names, so a run killed at any moment leaves a loadable
checkpoint.
"""

import glob
import os
import tempfile

import keras

from video_structure import io_utils
from video_structure.model import struct_vrnn
from video_structure.training import legacy
# Registers the recipe's Keras classes, which `load_model` needs to restore a model trained
# with it.
from video_structure.recipes import cpu as _cpu_recipe  # noqa: F401  pylint: disable=unused-import

CHECKPOINT_DIR = "checkpoints"
LATEST_FILE = "latest"


def save_checkpoint(model, run_dir, keep=3):
  """Saves model and optimizer state as `checkpoints/ckpt-<step>.keras` atomically.

  The file is written under a temporary name and renamed; `latest` is updated (also by
  rename) only after that, so a run killed at any moment leaves a loadable checkpoint.
  Keeps the newest `keep` checkpoints and removes the temporary files of a save that was
  killed half-way.
  """
  directory = os.path.join(run_dir, CHECKPOINT_DIR)
  os.makedirs(directory, exist_ok=True)
  step = int(model.optimizer.iterations.numpy())
  name = f"ckpt-{step:07d}.keras"
  io_utils.atomic_save(os.path.join(directory, name), model.save)
  io_utils.atomic_write_text(os.path.join(directory, LATEST_FILE), name + "\n")
  for old in sorted(glob.glob(os.path.join(directory, "ckpt-*.keras")))[:-keep]:
    os.remove(old)
  for leftover in os.listdir(directory):  # Only the chief writes here: nothing is in flight.
    if io_utils.is_temporary(leftover):
      os.remove(os.path.join(directory, leftover))
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
  """Loads a checkpoint written by `save_checkpoint` (weights, optimizer state, step), also
  one written before the recipe became a plug-in (`legacy`); `config` is the model's `Config`
  (its `mixed_precision` sets Keras' dtype policy)."""
  keras.mixed_precision.set_global_policy("mixed_bfloat16" if config.mixed_precision
                                          else "float32")
  if legacy.is_legacy_checkpoint(path):
    # Written before the recipe became a plug-in: load a converted copy (the file stays).
    with tempfile.TemporaryDirectory() as scratch:
      model = keras.models.load_model(
          legacy.convert_checkpoint(path, os.path.join(scratch, "converted.keras")),
          compile=True)
  else:
    model = keras.models.load_model(path, compile=True)
  if not isinstance(model, struct_vrnn.StructVRNN):
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
