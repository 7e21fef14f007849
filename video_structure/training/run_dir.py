"""The run directory: what train.py writes, the config checks on resume, and THE run loader.

A run directory holds
  config.json                  the full configuration (written once, checked on resume)
  checkpoints/ckpt-XXXXXXX.keras  model + optimizer state (incl. the step counter), atomic
  checkpoints/latest           name of the newest complete checkpoint, atomic
  tensorboard/                 scalars and images
  saved_model/                 the exported SavedModel (at the end)
  evaluation.json              the quick evaluation at the end of training
  predictions/                 prediction figures (PNG and GIF)

`load_run` opens a run for everything that reads one (train.py when it resumes, evaluate.py,
the downstream experiments).
"""

import dataclasses
import os
from typing import Optional

from video_structure import presets
from video_structure.training import checkpoints

CONFIG_FILE = "config.json"

# Settings that may change when a run is resumed (they do not change the model).
RESUMABLE_CHANGES = ("num_steps", "checkpoint_every_steps", "log_every_steps",
                     "image_summary_every_steps", "num_eval_sequences")


def prepare_run_dir(run_dir, run_config, write=True):
  """Creates the run directory and writes config.json; on resume checks it matches.

  `write=False` (the non-chief workers of a distributed run) only checks an existing config.json
  and writes nothing. Returns the `presets.RunConfig` to use.
  """
  path = os.path.join(run_dir, CONFIG_FILE)
  if not write:
    if os.path.exists(path):
      _check_resumable(presets.load_run_config(path), run_config, path)
    return run_config
  os.makedirs(run_dir, exist_ok=True)
  if os.path.exists(path):
    _check_resumable(presets.load_run_config(path), run_config, path)
    # Records resumable changes such as a longer num_steps.
    presets.save_run_config(run_config, path)
    return run_config
  presets.save_run_config(run_config, path)
  return run_config


def _settings(run_config):
  """Every setting of a RunConfig by name: the recipe (`none` / `cpu`), the model's fields and
  the recipe's settings."""
  values = {"recipe": "none" if run_config.recipe is None else "cpu"}
  values.update(run_config.model.to_dict())
  if run_config.recipe is not None:
    values.update(run_config.recipe.to_dict())
  return values


def _check_resumable(saved, run_config, path):
  saved, requested = _settings(saved), _settings(run_config)
  differences = {k: (saved.get(k), requested.get(k)) for k in list(requested) + list(saved)
                 if saved.get(k) != requested.get(k) and k not in RESUMABLE_CHANGES}
  if differences:
    raise ValueError(
        f"{path} exists with different hyperparameters {differences} (saved, requested). "
        f"Use a new --run_dir, or the same flags to resume.")


def load_config(run_dir, flag="--run_dir"):
  """The `presets.RunConfig` of a run directory, with clear errors when it is not one.

  Raises:
    FileNotFoundError: naming `flag` and the path when the directory or its config.json is
      missing.
  """
  if not run_dir or not os.path.isdir(run_dir):
    raise FileNotFoundError(f"{flag} {run_dir!r}: no such directory (expected a run directory "
                            f"written by train.py).")
  path = os.path.join(run_dir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{flag} {run_dir!r}: no {CONFIG_FILE} in it ({path} does not "
                            f"exist; expected a run directory written by train.py).")
  return presets.load_run_config(path)


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


def load_run(run_dir, checkpoint=None, run_config=None, flag="--run_dir"):
  """Opens a run: its config and the model of `checkpoint` (default: the latest one).

  Under a tf.distribute strategy call it inside `strategy.scope()` (the variables are then
  mirrored on every replica).

  Args:
    run_dir: a directory written by train.py.
    checkpoint: optional path of a `.keras` checkpoint.
    run_config: the run's `presets.RunConfig` if already loaded (`load_config`, or the one
      train.py resumes with).
    flag: how error messages name the run directory argument.

  Returns:
    A `Run`.

  Raises:
    FileNotFoundError: no run directory, config.json or checkpoint (the message names the
      flag and the path).
  """
  run_config = run_config or load_config(run_dir, flag)
  if checkpoint is None:
    checkpoint = checkpoints.latest_checkpoint(run_dir)
    if checkpoint is None:
      raise FileNotFoundError(
          f"{flag} {run_dir!r}: no checkpoint in "
          f"{os.path.join(run_dir, checkpoints.CHECKPOINT_DIR)}; train first.")
  elif not os.path.isfile(checkpoint):
    raise FileNotFoundError(f"--checkpoint {checkpoint} does not exist.")
  model = checkpoints.load_checkpoint(checkpoint, run_config.model)
  optimizer = getattr(model, "optimizer", None)
  step = int(optimizer.iterations.numpy()) if optimizer is not None else None
  return Run(run_dir, run_config, model, checkpoint, step)
