"""Tests of `video_structure/training/run_dir.py`: config.json written and checked on resume,
and `load_run`, the one loader of a run (train.py's resume, evaluate.py, the downstream
experiments)."""

import json
import os

import numpy as np
import pytest

from tests import helpers
from video_structure import presets
from video_structure.training import checkpoints
from video_structure.training import run_dir as run_dir_lib


def test_prepare_run_dir_checks_model_hyperparameters_on_resume(tmp_path):
  run_dir = str(tmp_path / "run")
  config = helpers.tiny_config(num_steps=4)
  assert run_dir_lib.prepare_run_dir(run_dir, config) == config
  config_path = os.path.join(run_dir, "config.json")
  with open(config_path) as f:
    assert json.load(f)["model"]["num_steps"] == 4

  with pytest.raises(ValueError, match=r"num_keypoints.*\(4, 5\)"):
    run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(num_steps=4, num_keypoints=5))
  with pytest.raises(ValueError, match="latent_size"):
    run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(num_steps=4, latent_size=8))
  assert presets.load_run_config(config_path) == config  # Unchanged by the refused resumes.

  longer = helpers.tiny_config(num_steps=6)
  assert run_dir_lib.prepare_run_dir(run_dir, longer) == longer
  assert presets.load_run_config(config_path).model.num_steps == 6


def test_prepare_run_dir_checks_the_recipe_on_resume(tmp_path):
  run_dir = str(tmp_path / "run")
  config = helpers.tiny_config()
  run_dir_lib.prepare_run_dir(run_dir, config)
  with pytest.raises(ValueError, match=r"different hyperparameters.*'reseed_distance'"):
    run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(reseed_distance=0.5))
  with pytest.raises(ValueError, match=r"different hyperparameters.*'recipe': \('cpu', 'none'\)"):
    run_dir_lib.prepare_run_dir(run_dir, helpers.tiny_config(recipe="none"))


def test_prepare_run_dir_without_write_only_checks(tmp_path):
  config = helpers.tiny_config()
  run_dir = tmp_path / "run"
  assert run_dir_lib.prepare_run_dir(str(run_dir), config, write=False) is config
  assert not os.path.exists(run_dir)  # A non-chief worker creates nothing.
  run_dir_lib.prepare_run_dir(str(run_dir), config)  # The chief writes config.json.
  before = os.stat(run_dir / "config.json").st_mtime_ns
  changed = helpers.tiny_config(num_keypoints=5)
  with pytest.raises(ValueError, match=r"different hyperparameters.*'num_keypoints': \(4, 5\)"):
    run_dir_lib.prepare_run_dir(str(run_dir), changed, write=False)
  run_dir_lib.prepare_run_dir(str(run_dir), config, write=False)
  assert os.stat(run_dir / "config.json").st_mtime_ns == before


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
