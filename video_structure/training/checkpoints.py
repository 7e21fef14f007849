"""Checkpoints of a run: save, find the newest intact one, load it (or an older one), and the
callback that saves them.

  <run_dir>/checkpoints/ckpt-XXXXXXX.keras          model + optimizer state (incl. the step
                                                    counter) and the model's config
  <run_dir>/checkpoints/ckpt-XXXXXXX.keras.corrupt  a damaged checkpoint, set aside (kept)
  <run_dir>/checkpoints/latest                      name of the newest checkpoint, for humans

The directory is the truth, not `latest`: the newest checkpoint that loads wins. A checkpoint is
written through `io_utils.atomic_save` (temporary file, fsync, rename) and then checked (zip
CRCs and Keras' members, `checkpoint_problem`); only then are older ones pruned. A damaged
checkpoint found later (a truncated copy, a bad disk) is set aside by renaming it to
`*.corrupt` (never deleted) with a `CheckpointWarning` naming it, and the next older one is used.
Every `.keras` file also holds the model's config (`StructVRNN.get_config`), read by
`checkpoint_run_config` without loading the weights.
"""

import glob
import json
import os
import re
import tempfile
import warnings
import zipfile

import keras

from video_structure import io_utils
from video_structure import presets
from video_structure.model import struct_vrnn
from video_structure.training import legacy
# Registers the recipe's Keras classes, which `load_model` needs to restore a model trained
# with it.
from video_structure.recipes import cpu as _cpu_recipe  # noqa: F401  pylint: disable=unused-import

CHECKPOINT_DIR = "checkpoints"
LATEST_FILE = "latest"
CORRUPT_SUFFIX = ".corrupt"
_CHECKPOINT_NAME = re.compile(r"ckpt-(\d+)\.keras")
# What `keras.models.load_model` needs from the zip.
_REQUIRED_MEMBERS = ("config.json", "model.weights.h5")


class CheckpointWarning(UserWarning):
  """A damaged checkpoint was skipped (and, by a trainer, set aside)."""


def checkpoint_step(path):
  """The training step in a checkpoint's file name (`ckpt-0000500.keras` -> 500)."""
  return int(_CHECKPOINT_NAME.fullmatch(os.path.basename(path)).group(1))


def checkpoint_paths(run_dir):
  """Paths of every `ckpt-<step>.keras` file of `run_dir`, newest step first (whether intact
  or not; temporary and `.corrupt` files are not checkpoints)."""
  directory = os.path.join(run_dir, CHECKPOINT_DIR)
  if not os.path.isdir(directory):
    return []
  paths = [os.path.join(directory, name) for name in os.listdir(directory)
           if _CHECKPOINT_NAME.fullmatch(name)]
  return sorted(paths, key=checkpoint_step, reverse=True)


def corrupt_checkpoints(run_dir):
  """Paths of the checkpoints of `run_dir` set aside as damaged, sorted by name."""
  return sorted(glob.glob(os.path.join(run_dir, CHECKPOINT_DIR, f"*.keras{CORRUPT_SUFFIX}*")))


def checkpoint_problem(path):
  """What is wrong with the checkpoint file at `path`, or None if it looks intact.

  A cheap check (it reads the file once, without building the model): a zip whose members all
  match their CRC and that has Keras' `config.json` and `model.weights.h5`.
  """
  try:
    with zipfile.ZipFile(path) as archive:
      missing = [name for name in _REQUIRED_MEMBERS if name not in archive.namelist()]
      if missing:
        return f"no {', '.join(missing)} in it"
      damaged = archive.testzip()
  except zipfile.BadZipFile as error:
    return f"not a complete zip file ({error})"
  except OSError as error:
    return f"unreadable ({error})"
  if damaged is not None:
    return f"bad CRC in {damaged}"
  return None


def set_aside(path, problem):
  """Renames a damaged checkpoint to `<path>.corrupt` (or `.corrupt-2`, ... if taken), with a
  `CheckpointWarning` naming it and `problem`; returns the new path."""
  destination, number = path + CORRUPT_SUFFIX, 1
  while os.path.exists(destination):
    number += 1
    destination = f"{path}{CORRUPT_SUFFIX}-{number}"
  io_utils.rename_durably(path, destination)
  warnings.warn(f"Checkpoint {path} is damaged ({problem}); set aside as "
                f"{os.path.basename(destination)}.", CheckpointWarning, stacklevel=2)
  return destination


def _skip(path, problem, set_aside_damaged):
  """Warns about a damaged checkpoint that is passed over, and sets it aside if asked."""
  if set_aside_damaged:
    set_aside(path, problem)
  else:
    warnings.warn(f"Checkpoint {path} is damaged ({problem}); skipped.", CheckpointWarning,
                  stacklevel=2)


def latest_checkpoint(run_dir, set_aside_damaged=False):
  """Path of the newest intact checkpoint in `run_dir` (`checkpoint_problem`), or None.

  Damaged newer ones are skipped with a `CheckpointWarning`; with `set_aside_damaged` (only
  the process that trains in `run_dir` may) they are also renamed to `*.corrupt`. The `latest`
  file is not read.
  """
  for path in checkpoint_paths(run_dir):
    problem = checkpoint_problem(path)
    if problem is None:
      return path
    if os.path.exists(path):  # Not just pruned by a training that runs meanwhile.
      _skip(path, problem, set_aside_damaged)
  return None


def checkpoint_run_config(path):
  """The `presets.RunConfig` a checkpoint was saved with, read from its zip (no weights are
  loaded).

  Raises:
    ValueError: the file does not hold a StructVRNN.
  """
  with zipfile.ZipFile(path) as archive:
    saved = json.loads(archive.read("config.json"))
  if saved.get("class_name") != "StructVRNN":
    raise ValueError(f"{path} does not hold a StructVRNN model.")
  model_values = saved["config"]
  if "recipe" not in model_values:
    # Written before the recipe became a plug-in (`legacy`): one flat dict of every setting.
    return presets.RunConfig.from_dict(model_values["config"], source=path)
  recipe = model_values["recipe"]
  return presets.RunConfig(
      presets.Config.from_dict(model_values["config"], path),
      None if recipe is None else presets.CpuRecipeConfig.from_dict(recipe["settings"], path))


def save_checkpoint(model, run_dir, keep=3):
  """Saves model and optimizer state as `checkpoints/ckpt-<step>.keras` atomically.

  The file is written under a temporary name, renamed, and checked (`checkpoint_problem`);
  only then are `latest` updated and the older checkpoints pruned to the newest `keep` in all
  (newer ones, which a normal run never has, are left alone), and the temporary files of a save
  that was killed half-way removed.

  Raises:
    OSError: the written file does not read back (it is set aside; the older ones are kept).
  """
  directory = os.path.join(run_dir, CHECKPOINT_DIR)
  os.makedirs(directory, exist_ok=True)
  step = int(model.optimizer.iterations.numpy())
  name = f"ckpt-{step:07d}.keras"
  path = io_utils.atomic_save(os.path.join(directory, name), model.save)
  problem = checkpoint_problem(path)
  if problem is not None:
    set_aside(path, problem)
    raise OSError(f"Checkpoint {path} does not read back ({problem}); the older checkpoints "
                  f"are kept. Check the disk (space, errors), then run the same command to "
                  f"resume.")
  io_utils.atomic_write_text(os.path.join(directory, LATEST_FILE), name + "\n")
  older = [old for old in checkpoint_paths(run_dir) if checkpoint_step(old) < step]
  for old in older[max(keep - 1, 0):]:
    os.remove(old)
  for leftover in os.listdir(directory):  # Only the locked chief writes here: none in flight.
    if io_utils.is_temporary(leftover):
      os.remove(os.path.join(directory, leftover))
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


def load_latest_checkpoint(run_dir, config, set_aside_damaged=False):
  """Loads the newest checkpoint of `run_dir` that loads; returns (model, path), or (None,
  None) if there is no intact checkpoint.

  A checkpoint that fails the cheap check is skipped (`latest_checkpoint`). One that passes it
  but that Keras cannot load counts as damaged only if an older one then loads (the code is
  fine, the file is not); it is then skipped or set aside like the others.

  Raises:
    ValueError: no intact-looking checkpoint loads (names the newest and Keras' error; nothing
      is set aside, as the cause is likely this code, not the files).
  """
  failures = []  # (path, error) of intact-looking checkpoints that Keras could not load.
  for path in checkpoint_paths(run_dir):
    problem = checkpoint_problem(path)
    if problem is not None:
      if os.path.exists(path):  # Not just pruned by a training that runs meanwhile.
        _skip(path, problem, set_aside_damaged)
      continue
    try:
      model = load_checkpoint(path, config)
    except Exception as error:  # pylint: disable=broad-except  (Keras raises many types)
      if os.path.exists(path):
        failures.append((path, error))
      continue
    for failed, error in failures:
      _skip(failed, f"Keras cannot load it: {_first_line(error)}", set_aside_damaged)
    return model, path
  if failures:
    path, error = failures[0]
    raise ValueError(f"Cannot load checkpoint {path} ({type(error).__name__}: "
                     f"{_first_line(error)}), nor any older one.") from error
  return None, None


def _first_line(error):
  return (str(error).strip().splitlines() or [""])[0][:200]


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
