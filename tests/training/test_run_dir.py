"""Tests of `video_structure/training/run_dir.py`: the checks on resume (against the newest
checkpoint, whose config is the truth; config.json is its record), --restart's move aside, and
`load_run`, the one loader of a run (train.py's resume, evaluate.py, the downstream
experiments)."""

import json
import os
import re
import time

import numpy as np
import pytest

from tests import helpers
from video_structure import presets
from video_structure.training import checkpoints
from video_structure.training import run_dir as run_dir_lib


def _trained_run(run_dir, model, step=2, **overrides):
  """A run directory as train.py leaves it: config.json (`tiny_config(**overrides)`, the
  `model` fixture's config plus resumable changes) and a checkpoint at `step`."""
  run_config = helpers.tiny_config(**overrides)
  run_dir_lib.prepare_run_dir(run_dir, run_config)
  model.optimizer.iterations.assign(step)
  return run_config, checkpoints.save_checkpoint(model, run_dir)


def test_prepare_run_dir_checks_model_hyperparameters_on_resume(model, tmp_path):
  run_dir = str(tmp_path / "run")
  config = helpers.tiny_config(num_steps=4)
  assert run_dir_lib.prepare_run_dir(run_dir, config) == config
  config_path = os.path.join(run_dir, "config.json")
  with open(config_path) as f:
    assert json.load(f)["model"]["num_steps"] == 4
  model.optimizer.iterations.assign(2)
  checkpoints.save_checkpoint(model, run_dir)

  with pytest.raises(ValueError, match=rf"^--run_dir {re.escape(run_dir)} holds a run with "
                                       rf"different hyperparameters "
                                       rf"\{{'num_keypoints': \(4, 5\)\}} \(saved, requested; "
                                       rf"from ckpt-0000002\.keras\); resume with "
                                       rf"--num_keypoints 4, or pass a new --run_dir, or "
                                       rf"--restart to train from scratch\.$"):
    run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(num_steps=4, num_keypoints=5))
  with pytest.raises(ValueError, match=r"latent_size': \(4, 8\).*resume with --latent_size 4,"):
    run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(num_steps=4, latent_size=8))
  with pytest.raises(ValueError, match=r"'mixed_precision': \(False, True\).*resume with "
                                       r"--mixed_precision false,"):
    run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(num_steps=4, mixed_precision=True))
  assert presets.load_run_config(config_path) == config  # Unchanged by the refused resumes.

  longer = helpers.tiny_config(num_steps=6)
  assert run_dir_lib.prepare_run_dir(run_dir, longer) == longer
  assert presets.load_run_config(config_path).model.num_steps == 6


def test_prepare_run_dir_checks_the_recipe_on_resume(model, tmp_path):
  run_dir = str(tmp_path / "run")
  _trained_run(run_dir, model)
  with pytest.raises(ValueError, match=r"different hyperparameters.*'reseed_distance'.*resume "
                                       r"with --reseed_distance 0\.1,"):
    run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(reseed_distance=0.5))
  with pytest.raises(ValueError, match=r"different hyperparameters \{'recipe': \('cpu', 'none'\), "
                                       r".*\} and \d+ more .*resume with --recipe cpu "):
    run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(recipe="none"))


def test_prepare_run_dir_without_write_only_checks(model, tmp_path):
  config = helpers.tiny_config()
  run_dir = tmp_path / "run"
  assert run_dir_lib.prepare_run_dir(str(run_dir), config, write=False) is config
  assert not os.path.exists(run_dir)  # A non-chief worker creates nothing.
  _trained_run(str(run_dir), model)  # The chief writes config.json and a checkpoint.
  before = os.stat(run_dir / "config.json").st_mtime_ns
  changed = helpers.tiny_config(num_keypoints=5)
  with pytest.raises(ValueError, match=r"different hyperparameters.*'num_keypoints': \(4, 5\)"):
    run_dir_lib.prepare_run_dir(str(run_dir), changed, write=False)
  os.remove(run_dir / "checkpoints" / "latest")
  lines = []
  run_dir_lib.prepare_run_dir(str(run_dir), config, write=False, log=lines.append)
  assert os.stat(run_dir / "config.json").st_mtime_ns == before and lines == []


def test_lost_config_json_is_the_checkpoints(model, tmp_path):
  run_dir = str(tmp_path / "run")
  config, checkpoint = _trained_run(run_dir, model)
  config_path = os.path.join(run_dir, "config.json")
  os.remove(config_path)
  lines = []
  with pytest.raises(ValueError,
                     match=r"'num_keypoints': \(4, 8\).*resume with --num_keypoints 4,"):
    run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(num_keypoints=8), log=lines.append)
  assert lines == [f"Note: {config_path} was missing; rewritten from {checkpoint}."]
  assert presets.load_run_config(config_path) == config  # The checkpoint's, not the request's.

  os.remove(config_path)
  assert run_dir_lib.load_config(run_dir) == config  # Readers fall back on it too.


def test_config_json_that_is_not_the_checkpoints_is_rewritten(model, tmp_path):
  run_dir = str(tmp_path / "run")
  config, checkpoint = _trained_run(run_dir, model)
  config_path = os.path.join(run_dir, "config.json")
  # config.json recording settings the checkpoint was not trained with (e.g. a typo recorded
  # by an earlier version's failed --restart).
  presets.save_run_config(helpers.tiny_config(dataset_config="tinyy", num_keypoints=8),
                          config_path)
  lines = []
  with pytest.raises(ValueError, match=r"'num_keypoints': \(4, 8\)"):
    run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(num_keypoints=8), log=lines.append)
  assert lines == [f"Note: {config_path} did not match {checkpoint} (dataset_config, "
                   f"num_keypoints); rewritten from it."]
  assert presets.load_run_config(config_path) == config
  assert run_dir_lib.prepare_run_dir(run_dir, config, log=lines.append) == config
  assert len(lines) == 1


def test_num_steps_below_the_checkpoint_is_refused_and_a_lower_one_noted(model, tmp_path):
  run_dir = str(tmp_path / "run")
  _, checkpoint = _trained_run(run_dir, model, step=6, num_steps=10)
  config_path = os.path.join(run_dir, "config.json")
  with pytest.raises(ValueError, match=rf"^--num_steps 4 is below step 6 of the newest "
                                       rf"checkpoint \({re.escape(checkpoint)}\); pass "
                                       rf"--num_steps 6 or more, or --restart to train from "
                                       rf"scratch\.$"):
    run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(num_steps=4))
  assert presets.load_run_config(config_path).model.num_steps == 10
  lines = []
  run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(num_steps=8), log=lines.append)
  assert lines == [f"Note: --num_steps 8 is lower than the 10 recorded in {config_path}; "
                   f"training stops at step 8."]
  assert presets.load_run_config(config_path).model.num_steps == 8
  lines.clear()
  run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(num_steps=6), log=lines.append)
  assert len(lines) == 1 and "--num_steps 6 is lower than the 8 recorded" in lines[0]


def test_config_json_without_a_checkpoint_does_not_block_a_retry(tmp_path):
  run_dir = str(tmp_path / "run")
  config_path = os.path.join(run_dir, "config.json")
  run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(dataset_config="tinyy"))
  lines = []
  corrected = helpers.tiny_config(dataset_config="tiny")
  assert run_dir_lib.prepare_run_dir(run_dir, corrected, log=lines.append) == corrected
  assert lines == [f"Note: {config_path} has no checkpoint beside it (a first start that "
                   f"failed); replaced with this command's settings."]
  assert presets.load_run_config(config_path) == corrected
  lines.clear()
  run_dir_lib.prepare_run_dir(run_dir, corrected, log=lines.append)  # The same: no note.
  assert lines == []


def test_only_damaged_checkpoints_are_not_a_fresh_start(model, tmp_path):
  run_dir = str(tmp_path / "run")
  config, checkpoint = _trained_run(run_dir, model)
  with open(checkpoint, "r+b") as f:
    f.truncate(1000)
  with pytest.warns(checkpoints.CheckpointWarning, match=r"set aside as ckpt-0000002\.keras\."
                                                          r"corrupt"):
    with pytest.raises(ValueError, match=r"checkpoints holds no intact checkpoint, only damaged "
                                         r"ones set aside \(ckpt-0000002\.keras\.corrupt\); "
                                         r"restore one, or pass --restart to train from scratch"):
      run_dir_lib.prepare_run_dir(run_dir, config)
  with pytest.raises(ValueError, match=r"no intact checkpoint"):  # Also when run again.
    run_dir_lib.prepare_run_dir(run_dir, config)


# --restart. ------------------------------------------------------------------------------------

def test_move_previous_run_aside_keeps_everything(tmp_path):
  run_dir = tmp_path / "run"
  assert run_dir_lib.move_previous_run_aside(str(tmp_path)) is None  # Nothing to move.
  (run_dir / "checkpoints").mkdir(parents=True)
  (run_dir / "checkpoints" / "ckpt-0000004.keras").write_bytes(b"weights")
  (run_dir / "config.json").write_text("{}")
  (run_dir / "evaluation.json").write_text("[]")
  (run_dir / ".lock").write_text("")
  before = time.strftime("%Y%m%d-%H%M%S")
  replaced = run_dir_lib.move_previous_run_aside(str(run_dir))
  name = os.path.basename(replaced)
  assert os.path.dirname(replaced) == str(run_dir)
  assert name.startswith("replaced-") and before <= name[len("replaced-"):] <= time.strftime(
      "%Y%m%d-%H%M%S")
  assert sorted(os.listdir(run_dir)) == [".lock", name]  # The lock stays (it is held).
  assert sorted(os.listdir(replaced)) == ["checkpoints", "config.json", "evaluation.json"]
  assert (run_dir / name / "checkpoints" / "ckpt-0000004.keras").read_bytes() == b"weights"

  assert run_dir_lib.move_previous_run_aside(str(run_dir)) is None  # Nothing new to move.
  (run_dir / "config.json").write_text("{}")
  second = run_dir_lib.move_previous_run_aside(str(run_dir))
  (run_dir / "config.json").write_text("{}")
  third = run_dir_lib.move_previous_run_aside(str(run_dir))
  assert len({replaced, second, third}) == 3  # Never merged, even within one second.
  for directory in (second, third):
    assert os.listdir(directory) == ["config.json"]
  assert sorted(os.listdir(run_dir)) == sorted(
      [".lock"] + [os.path.basename(d) for d in (replaced, second, third)])


# load_run. -------------------------------------------------------------------------------------

def test_load_config_names_what_is_missing(tmp_path):
  missing = str(tmp_path / "no_such_run")
  with pytest.raises(FileNotFoundError, match=r"--run_dir .*no_such_run.*no such directory"):
    run_dir_lib.load_config(missing)
  os.makedirs(missing)
  with pytest.raises(FileNotFoundError,
                     match=rf"--other .*no config\.json in it \({missing}/config\.json does "
                           rf"not exist"):
    run_dir_lib.load_config(missing, flag="--other")


def test_load_run_opens_the_latest_or_a_given_checkpoint(model, tmp_path):
  run_dir = str(tmp_path / "run")
  run_config = helpers.tiny_config()
  run_dir_lib.prepare_run_dir(run_dir, run_config)
  with pytest.raises(FileNotFoundError, match=r"--run_dir .*: no checkpoint in .*checkpoints; "
                                              r"train first"):
    run_dir_lib.load_run(run_dir)
  for step in (3, 5):
    model.optimizer.iterations.assign(step)
    checkpoints.save_checkpoint(model, run_dir)

  run = run_dir_lib.load_run(run_dir)
  assert run.step == 5 and run.checkpoint.endswith("ckpt-0000005.keras")
  assert run.run_config == run_config and run.config == run_config.model
  assert run.model.config == model.config
  for loaded, original in zip(run.model.weights, model.weights):
    np.testing.assert_array_equal(loaded.numpy(), original.numpy())
  assert run.info() == {"run_dir": os.path.abspath(run_dir),
                        "checkpoint": os.path.abspath(run.checkpoint), "step": 5}

  first = os.path.join(run_dir, "checkpoints", "ckpt-0000003.keras")
  assert run_dir_lib.load_run(run_dir, first, run_config=run_config).step == 3
  with pytest.raises(FileNotFoundError, match=r"--checkpoint /nowhere/ckpt\.keras does not "
                                              r"exist"):
    run_dir_lib.load_run(run_dir, "/nowhere/ckpt.keras")


def test_load_run_falls_back_to_the_previous_checkpoint(model, tmp_path):
  run_dir = str(tmp_path / "run")
  run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config())
  for step in (3, 5):
    model.optimizer.iterations.assign(step)
    newest = checkpoints.save_checkpoint(model, run_dir)
  with open(newest, "r+b") as f:
    f.truncate(os.path.getsize(newest) - 100)
  # A reader (evaluate.py) skips the damaged checkpoint and leaves it where it is.
  with pytest.warns(checkpoints.CheckpointWarning, match=r"ckpt-0000005\.keras is damaged"):
    run = run_dir_lib.load_run(run_dir)
  assert run.step == 3 and run.checkpoint.endswith("ckpt-0000003.keras")
  assert os.path.exists(newest)
  # The trainer sets it aside.
  with pytest.warns(checkpoints.CheckpointWarning, match=r"set aside as ckpt-0000005\.keras\."
                                                          r"corrupt"):
    assert run_dir_lib.load_run(run_dir, set_aside_damaged=True).step == 3
  assert not os.path.exists(newest) and os.path.exists(newest + ".corrupt")
