"""The run directory: what train.py writes, the checks on resume, --restart, THE run loader.

A run directory holds
  .lock                        held by the process training in it (`run_lock`)
  config.json                  the full configuration (a record; checked and rewritten on resume)
  checkpoints/ckpt-XXXXXXX.keras  model + optimizer state (incl. the step counter) and the
                               model's config, atomic; the newest that loads is resumed from
  checkpoints/ckpt-XXXXXXX.keras.corrupt  a damaged checkpoint, set aside (never deleted)
  checkpoints/latest           name of the newest checkpoint, for humans (never read)
  losses.jsonl                 every loss term per logging chunk (`callbacks.LossLogCallback`)
  tensorboard/                 scalars and images
  saved_model/                 the exported SavedModel (at the end)
  evaluation.json              the quick evaluation at the end of training
  predictions/                 prediction figures (PNG and GIF)
  replaced-YYYYmmdd-HHMMSS/    everything of a previous run, moved there by --restart

The run's settings are those of its newest intact checkpoint (`prepare_run_dir`): config.json
is rewritten from it when missing or different, and replaced when no checkpoint is beside it
(an earlier first start that failed). `--restart` deletes nothing (`move_previous_run_aside`).
`load_run` opens a run for everything that reads one (train.py when it resumes, evaluate.py,
the downstream experiments).
"""

import dataclasses
import os
import time
from typing import Optional

from video_structure import io_utils
from video_structure import presets
from video_structure.training import checkpoints
from video_structure.training import run_lock

CONFIG_FILE = "config.json"
REPLACED_PREFIX = "replaced-"

# Settings that may change when a run is resumed (they do not change the model).
RESUMABLE_CHANGES = ("num_steps", "checkpoint_every_steps", "log_every_steps",
                     "image_summary_every_steps", "num_eval_sequences")
# How many differing settings a refusal lists.
_SHOWN_DIFFERENCES = 4


def prepare_run_dir(run_dir, run_config, write=True, log=print):
  """Checks the command's settings against the run in `run_dir`; records them in config.json.

  The run's settings are those of its newest intact checkpoint (the model to be resumed).
  config.json is rewritten from that checkpoint first if it is missing or differs from it, and
  replaced if no checkpoint is beside it (each with a one-line note through `log`).

  Args:
    run_dir: the run directory (created if missing).
    run_config: the `presets.RunConfig` of the command line.
    write: False for the non-chief workers of a distributed run: check only (nothing is
      written, set aside or logged).
    log: prints a one-line note.

  Returns:
    `run_config`.

  Raises:
    ValueError: a setting that changes the model differs from the checkpoint's (the message
      names the flags to resume with), --num_steps is below the checkpoint's step, or only
      damaged checkpoints are left.
  """
  log = log if write else (lambda line: None)
  path = os.path.join(run_dir, CONFIG_FILE)
  recorded = presets.load_run_config(path) if os.path.exists(path) else None
  checkpoint = checkpoints.latest_checkpoint(run_dir, set_aside_damaged=write)
  if checkpoint is None:
    damaged = checkpoints.corrupt_checkpoints(run_dir)
    if damaged:
      raise ValueError(
          f"{os.path.dirname(damaged[0])} holds no intact checkpoint, only damaged ones set "
          f"aside ({', '.join(os.path.basename(p) for p in damaged)}); restore one, or pass "
          f"--restart to train from scratch (this run is moved aside, not deleted).")
    if recorded is not None and _differences(recorded, run_config):
      log(f"Note: {path} has no checkpoint beside it (a first start that failed); replaced "
          f"with this command's settings.")
  else:
    trained = checkpoints.checkpoint_run_config(checkpoint)
    differences = {} if recorded is None else _differences(recorded, trained)
    if recorded is None or differences:
      if write:  # The record follows the model, whatever this command then asks.
        presets.save_run_config(trained, path)
      log(f"Note: {path} was missing; rewritten from {checkpoint}." if recorded is None else
          f"Note: {path} did not match {checkpoint} ({', '.join(differences)}); rewritten "
          f"from it.")
      recorded = trained
    _check_resumable(trained, run_config, run_dir, checkpoint)
    _check_num_steps(run_config.model.num_steps, checkpoint, recorded.model.num_steps, path,
                     log)
  if write:
    os.makedirs(run_dir, exist_ok=True)
    # Records resumable changes such as a longer num_steps.
    presets.save_run_config(run_config, path)
  return run_config


def move_previous_run_aside(run_dir):
  """`--restart`: moves everything in `run_dir` into a new `replaced-<YYYYmmdd-HHMMSS>/` in it.

  Kept inside the run directory: the renames stay on one filesystem (even if `run_dir` is a
  mount point), the run directory keeps its history when it is moved or deleted, and globs over
  runs (`runs/*/evaluation.json`) do not pick it up. The lock file and earlier `replaced-*`
  directories stay where they are. Call it with the lock held.

  Returns:
    The new directory, or None if there was nothing to move.
  """
  names = sorted(name for name in os.listdir(run_dir)
                 if name != run_lock.LOCK_FILE and not name.startswith(REPLACED_PREFIX))
  if not names:
    return None
  stamp = time.strftime("%Y%m%d-%H%M%S")
  destination, number = os.path.join(run_dir, REPLACED_PREFIX + stamp), 1
  while os.path.exists(destination):  # Two restarts within a second.
    number += 1
    destination = os.path.join(run_dir, f"{REPLACED_PREFIX}{stamp}-{number}")
  os.mkdir(destination)
  for name in names:
    os.rename(os.path.join(run_dir, name), os.path.join(destination, name))
  # Durable like every other write of a run (io_utils).
  io_utils.fsync_directory(destination)
  io_utils.fsync_directory(run_dir)
  return destination


def _settings(run_config):
  """Every setting of a RunConfig by name: the recipe (`none` / `cpu`), the model's fields and
  the recipe's settings."""
  values = {"recipe": "none" if run_config.recipe is None else "cpu"}
  values.update(run_config.model.to_dict())
  if run_config.recipe is not None:
    values.update(run_config.recipe.to_dict())
  return values


def _differences(saved, requested):
  """{name: (saved value, requested value)} of the settings that differ and change the model."""
  saved, requested = _settings(saved), _settings(requested)
  return {name: (saved.get(name), requested.get(name)) for name in list(requested) + list(saved)
          if saved.get(name) != requested.get(name) and name not in RESUMABLE_CHANGES}


def _as_flag(name, value):
  """The train.py flag that sets `name` to `value`, or None if there is none."""
  if value is None or (name == "dataset" and value == "video_folder"):
    return None  # Unset, or set by --dataset <folder> (the `dataset_path` entry).
  if name == "dataset_path":
    name = "dataset"
  return f"--{name} {str(value).lower() if isinstance(value, bool) else value}"


def _check_resumable(trained, run_config, run_dir, checkpoint):
  differences = _differences(trained, run_config)
  if not differences:
    return
  shown = dict(list(differences.items())[:_SHOWN_DIFFERENCES])
  more = (f" and {len(differences) - len(shown)} more" if len(differences) > len(shown)
          else "")
  flags = " ".join(flag for flag in (_as_flag(name, saved) for name, (saved, _) in shown.items())
                   if flag)
  raise ValueError(
      f"--run_dir {run_dir} holds a run with different hyperparameters {shown}{more} (saved, "
      f"requested; from {os.path.basename(checkpoint)}); resume with {flags}, or pass a new "
      f"--run_dir, or --restart to train from scratch.")


def _check_num_steps(num_steps, checkpoint, recorded_num_steps, config_path, log):
  step = checkpoints.checkpoint_step(checkpoint)
  if num_steps < step:
    raise ValueError(
        f"--num_steps {num_steps} is below step {step} of the newest checkpoint "
        f"({checkpoint}); pass --num_steps {step} or more, or --restart to train from scratch.")
  if num_steps < recorded_num_steps:
    log(f"Note: --num_steps {num_steps} is lower than the {recorded_num_steps} recorded in "
        f"{config_path}; training stops at step {num_steps}.")


def load_config(run_dir, flag="--run_dir"):
  """The `presets.RunConfig` of a run directory (its config.json, or if that is lost, the
  config its newest intact checkpoint carries), with clear errors when it is not one.

  Raises:
    FileNotFoundError: naming `flag` and the path when the directory is missing, or has
      neither config.json nor a checkpoint.
  """
  if not run_dir or not os.path.isdir(run_dir):
    raise FileNotFoundError(f"{flag} {run_dir!r}: no such directory (expected a run directory "
                            f"written by train.py).")
  path = os.path.join(run_dir, CONFIG_FILE)
  if os.path.isfile(path):
    return presets.load_run_config(path)
  checkpoint = checkpoints.latest_checkpoint(run_dir)
  if checkpoint is not None:  # config.json was lost: every checkpoint carries the config.
    return checkpoints.checkpoint_run_config(checkpoint)
  raise FileNotFoundError(f"{flag} {run_dir!r}: no {CONFIG_FILE} in it ({path} does not "
                          f"exist; expected a run directory written by train.py).")


@dataclasses.dataclass
class Run:
  """A trained run opened by `load_run`.

  Attributes:
    run_dir: the run directory.
    run_config: its `presets.RunConfig` (model config and recipe).
    model: the restored `StructVRNN`.
    checkpoint: path of the loaded checkpoint.
    step: the training step of that checkpoint (None if unknown).
  """
  run_dir: str
  run_config: object
  model: object
  checkpoint: str
  step: Optional[int]

  @property
  def config(self):
    """The model's `Config` (what everything outside training works with)."""
    return self.run_config.model

  def info(self):
    """JSON-ready description of the run for the reports: run_dir, checkpoint and step."""
    return {"run_dir": os.path.abspath(self.run_dir),
            "checkpoint": os.path.abspath(self.checkpoint), "step": self.step}


def load_run(run_dir, checkpoint=None, run_config=None, flag="--run_dir",
             set_aside_damaged=False):
  """Opens a run: its config and the model of `checkpoint` (default: the newest that loads).

  Under a tf.distribute strategy call it inside `strategy.scope()` (the variables are then
  mirrored on every replica).

  Args:
    run_dir: a directory written by train.py.
    checkpoint: optional path of a `.keras` checkpoint.
    run_config: the run's `presets.RunConfig` if already loaded (`load_config`, or the one
      train.py resumes with).
    flag: how error messages name the run directory argument.
    set_aside_damaged: rename damaged checkpoints that are passed over to `*.corrupt` (only
      for the process that trains in `run_dir`; others just skip them with a warning).

  Returns:
    A `Run`.

  Raises:
    FileNotFoundError: no run directory, config.json or checkpoint (the message names the
      flag and the path).
    ValueError: checkpoints are there but none loads (`checkpoints.load_latest_checkpoint`).
  """
  run_config = run_config or load_config(run_dir, flag)
  if checkpoint is None:
    model, checkpoint = checkpoints.load_latest_checkpoint(run_dir, run_config.model,
                                                           set_aside_damaged)
    if model is None:
      raise FileNotFoundError(
          f"{flag} {run_dir!r}: no checkpoint in "
          f"{os.path.join(run_dir, checkpoints.CHECKPOINT_DIR)}; train first.")
  elif not os.path.isfile(checkpoint):
    raise FileNotFoundError(f"--checkpoint {checkpoint} does not exist.")
  else:
    model = checkpoints.load_checkpoint(checkpoint, run_config.model)
  optimizer = getattr(model, "optimizer", None)
  step = int(optimizer.iterations.numpy()) if optimizer is not None else None
  return Run(run_dir, run_config, model, checkpoint, step)
