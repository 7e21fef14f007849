"""Tests of the training-run machinery (`video_structure/training.py`): atomic checkpoints and
resumption, the NaN guard, the progress line and the run-directory config check.

No test traces a train step: optimizer state is created by eager `apply_gradients` calls.
"""

import io
import json
import os
import re
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from video_structure import config as config_lib
from video_structure import model as model_lib
from video_structure import training


def tiny_config(**overrides):
  values = dict(batch_size=2, initial_filters=4, rnn_units=16, num_samples=3, prior_net_size=4,
                posterior_net_size=8, decoder_net_size=8, latent_size=4, num_keypoints=4,
                mixed_precision=False)
  values.update(overrides)
  return config_lib.get_config("basketball", "cpu", **values)


@pytest.fixture(scope="module")
def model():
  """A tiny model whose Adam moments are non-zero (two eager updates with random gradients)."""
  keras.mixed_precision.set_global_policy("float32")
  model = model_lib.build_model(tiny_config())
  rng = np.random.default_rng(0)
  for _ in range(2):
    gradients = [tf.constant(rng.normal(size=v.shape), tf.float32)
                 for v in model.trainable_variables]
    model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
  return model


def _checkpoint_dir(run_dir):
  return os.path.join(run_dir, training.CHECKPOINT_DIR)


def _values(variables):
  return {v.path: np.array(v.numpy()) for v in variables}


def test_checkpoint_round_trip_restores_weights_optimizer_and_step(model, tmp_path):
  run_dir = str(tmp_path / "run")
  model.optimizer.iterations.assign(7)
  assert training.latest_checkpoint(run_dir) is None
  path = training.save_checkpoint(model, run_dir)
  assert path == os.path.join(_checkpoint_dir(run_dir), "ckpt-0000007.keras")
  assert training.latest_checkpoint(run_dir) == path
  with open(os.path.join(_checkpoint_dir(run_dir), "latest")) as f:
    assert f.read() == "ckpt-0000007.keras\n"
  # Only the checkpoint and `latest` remain: no temporary files.
  assert sorted(os.listdir(_checkpoint_dir(run_dir))) == ["ckpt-0000007.keras", "latest"]

  loaded = training.load_checkpoint(path, model.config)
  assert isinstance(loaded, model_lib.StructVRNN)
  assert loaded.config == model.config
  assert int(loaded.optimizer.iterations.numpy()) == 7
  expected_weights, restored_weights = _values(model.weights), _values(loaded.weights)
  assert list(restored_weights) == list(expected_weights)
  for name, value in expected_weights.items():
    np.testing.assert_array_equal(restored_weights[name], value, err_msg=name)
  expected_slots, restored_slots = (_values(model.optimizer.variables),
                                    _values(loaded.optimizer.variables))
  assert list(restored_slots) == list(expected_slots)
  assert any(np.any(value) for name, value in expected_slots.items() if "momentum" in name)
  for name, value in expected_slots.items():
    np.testing.assert_array_equal(restored_slots[name], value, err_msg=name)
  # The optimiser hyperparameters come back too: the same learning rate at the same step.
  assert loaded.optimizer.clipnorm == model.optimizer.clipnorm
  assert float(loaded.optimizer.learning_rate) == float(model.optimizer.learning_rate)
  assert loaded.jit_compile is False


def test_crash_leftovers_never_become_latest(model, tmp_path):
  run_dir = str(tmp_path / "run")
  directory = _checkpoint_dir(run_dir)
  model.optimizer.iterations.assign(4)
  good = training.save_checkpoint(model, run_dir)
  # A run killed while writing step 6: the half-written model file under its temporary name,
  # a half-written `latest.tmp`, and even a garbage file under a final-looking name.
  with open(os.path.join(directory, ".ckpt-0000006.keras.tmp.keras"), "wb") as f:
    f.write(b"PK\x03\x04 truncated")
  with open(os.path.join(directory, "latest.tmp"), "w") as f:
    f.write("ckpt-00")
  with open(os.path.join(directory, "ckpt-0000005.keras"), "wb") as f:
    f.write(b"garbage")
  assert training.latest_checkpoint(run_dir) == good
  loaded = training.load_checkpoint(training.latest_checkpoint(run_dir), model.config)
  assert int(loaded.optimizer.iterations.numpy()) == 4

  # The next save replaces the stale temporary files and moves `latest` on.
  model.optimizer.iterations.assign(6)
  newer = training.save_checkpoint(model, run_dir)
  assert training.latest_checkpoint(run_dir) == newer
  assert not os.path.exists(os.path.join(directory, ".ckpt-0000006.keras.tmp.keras"))
  assert not os.path.exists(os.path.join(directory, "latest.tmp"))
  assert int(training.load_checkpoint(newer, model.config).optimizer.iterations.numpy()) == 6


def test_latest_naming_a_missing_file_raises(tmp_path):
  directory = tmp_path / "run" / training.CHECKPOINT_DIR
  directory.mkdir(parents=True)
  (directory / "latest").write_text("ckpt-0000123.keras\n")
  with pytest.raises(FileNotFoundError, match=r"ckpt-0000123\.keras.*does not exist"):
    training.latest_checkpoint(str(tmp_path / "run"))


def test_only_the_newest_checkpoints_are_kept(model, tmp_path):
  run_dir = str(tmp_path / "run")
  for step in [1, 2, 3, 4, 5]:
    model.optimizer.iterations.assign(step)
    training.save_checkpoint(model, run_dir, keep=3)
  assert sorted(os.listdir(_checkpoint_dir(run_dir))) == [
      "ckpt-0000003.keras", "ckpt-0000004.keras", "ckpt-0000005.keras", "latest"]
  assert training.latest_checkpoint(run_dir).endswith("ckpt-0000005.keras")


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_nan_guard_names_the_loss(model, bad_value):
  model.optimizer.iterations.assign(17)
  guard = training.NaNGuard()
  guard.set_model(model)
  guard.on_train_batch_end(0, {"loss": 1.0, "image_loss": 0.5})  # Finite: no error.
  with pytest.raises(FloatingPointError,
                     match=rf"keypoint_loss became {bad_value} at step 17"):
    guard.on_train_batch_end(1, {"loss": 1.0, "keypoint_loss": bad_value})


def test_progress_line_shows_step_total_rate_and_eta(model):
  stream = io.StringIO()
  progress = training.ProgressCallback(total_steps=100, frames_per_step=32, stream=stream)
  progress.set_model(model)
  model.optimizer.iterations.assign(0)
  progress.on_train_begin()
  progress.start_time = time.time() - 10.0  # 50 steps in 10 s: 5 steps/s, 10 s to go.
  model.optimizer.iterations.assign(50)
  progress.on_epoch_end(0, {"loss": 1.25, "image_loss": 0.5})
  line = stream.getvalue()
  assert line.endswith("\n") and line.count("\n") == 1
  assert "step 50/100 (50%)" in line
  assert re.search(r"\b(4\.9\d|5\.00) steps/s", line), line
  assert re.search(r"\b1(5[5-9]|60) frames/s", line), line
  assert re.search(r"ETA 0m(09|10)s", line), line
  assert "loss=1.25" in line and "image=0.5" in line
  assert "[" + "#" * 15 + "." * 15 + "]" in line


def test_prepare_run_dir_checks_model_hyperparameters_on_resume(tmp_path):
  run_dir = str(tmp_path / "run")
  config = tiny_config(num_steps=4)
  assert training.prepare_run_dir(run_dir, config) == config
  config_path = os.path.join(run_dir, "config.json")
  with open(config_path) as f:
    assert json.load(f)["num_steps"] == 4

  with pytest.raises(ValueError, match=r"num_keypoints.*\(4, 5\)"):
    training.prepare_run_dir(run_dir, tiny_config(num_steps=4, num_keypoints=5))
  with pytest.raises(ValueError, match="latent_size"):
    training.prepare_run_dir(run_dir, tiny_config(num_steps=4, latent_size=8))
  assert config_lib.Config.load(config_path) == config  # Unchanged by the refused resumes.

  longer = tiny_config(num_steps=6)
  assert training.prepare_run_dir(run_dir, longer) == longer
  assert config_lib.Config.load(config_path).num_steps == 6
