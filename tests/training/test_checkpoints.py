"""Tests of `video_structure/training/checkpoints.py`: atomic checkpoints, the latest one, keeping
the newest, and the callback that writes them only on the chief.

No test traces a train step: optimizer state is created by eager `apply_gradients` calls.
"""

import os

import keras
import numpy as np
import pytest

from video_structure.model import struct_vrnn
from video_structure.training import checkpoints


def _checkpoint_dir(run_dir):
  return os.path.join(run_dir, checkpoints.CHECKPOINT_DIR)


def _values(variables):
  return {v.path: np.array(v.numpy()) for v in variables}


def test_checkpoint_round_trip_restores_weights_optimizer_and_step(model, tmp_path):
  run_dir = str(tmp_path / "run")
  model.optimizer.iterations.assign(7)
  assert checkpoints.latest_checkpoint(run_dir) is None
  path = checkpoints.save_checkpoint(model, run_dir)
  assert path == os.path.join(_checkpoint_dir(run_dir), "ckpt-0000007.keras")
  assert checkpoints.latest_checkpoint(run_dir) == path
  with open(os.path.join(_checkpoint_dir(run_dir), "latest")) as f:
    assert f.read() == "ckpt-0000007.keras\n"
  # Only the checkpoint and `latest` remain: no temporary files.
  assert sorted(os.listdir(_checkpoint_dir(run_dir))) == ["ckpt-0000007.keras", "latest"]

  loaded = checkpoints.load_checkpoint(path, model.config)
  assert isinstance(loaded, struct_vrnn.StructVRNN)
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
  good = checkpoints.save_checkpoint(model, run_dir)
  # A run killed while writing step 6: half-written temporary files (the names io_utils gives
  # them, and the `<name>.tmp` of earlier versions), and even a garbage file under a
  # final-looking name.
  leftovers = [".ckpt-0000006.keras.tmp.keras", ".ckpt-0000006.keras.k3j2x1.tmp.keras",
               "latest.tmp", ".latest.a8b7c6.tmp"]
  for name in leftovers:
    with open(os.path.join(directory, name), "wb") as f:
      f.write(b"PK\x03\x04 truncated" if "keras" in name else b"ckpt-00")
  with open(os.path.join(directory, "ckpt-0000005.keras"), "wb") as f:
    f.write(b"garbage")
  assert checkpoints.latest_checkpoint(run_dir) == good
  loaded = checkpoints.load_checkpoint(checkpoints.latest_checkpoint(run_dir), model.config)
  assert int(loaded.optimizer.iterations.numpy()) == 4

  # The next save removes the stale temporary files and moves `latest` on.
  model.optimizer.iterations.assign(6)
  newer = checkpoints.save_checkpoint(model, run_dir)
  assert checkpoints.latest_checkpoint(run_dir) == newer
  for name in leftovers:
    assert not os.path.exists(os.path.join(directory, name)), name
  assert int(checkpoints.load_checkpoint(newer, model.config).optimizer.iterations.numpy()) == 6


def test_latest_naming_a_missing_file_raises(tmp_path):
  directory = tmp_path / "run" / checkpoints.CHECKPOINT_DIR
  directory.mkdir(parents=True)
  (directory / "latest").write_text("ckpt-0000123.keras\n")
  with pytest.raises(FileNotFoundError, match=r"ckpt-0000123\.keras.*does not exist"):
    checkpoints.latest_checkpoint(str(tmp_path / "run"))


def test_only_the_newest_checkpoints_are_kept(model, tmp_path):
  run_dir = str(tmp_path / "run")
  for step in [1, 2, 3, 4, 5]:
    model.optimizer.iterations.assign(step)
    checkpoints.save_checkpoint(model, run_dir, keep=3)
  assert sorted(os.listdir(_checkpoint_dir(run_dir))) == [
      "ckpt-0000003.keras", "ckpt-0000004.keras", "ckpt-0000005.keras", "latest"]
  assert checkpoints.latest_checkpoint(run_dir).endswith("ckpt-0000005.keras")


# Chief-only writing. ---------------------------------------------------------------------------

def _small_compiled_model():
  model = keras.Sequential([keras.Input([3]), keras.layers.Dense(2)])
  model.compile(optimizer="adam", loss="mse")
  model.optimizer.build(model.trainable_variables)
  return model


def test_checkpoint_callback_writes_only_on_the_chief(tmp_path):
  model = _small_compiled_model()
  model.optimizer.iterations.assign(4)
  for is_chief, run_dir in ((False, tmp_path / "worker"), (True, tmp_path / "chief")):
    callback = checkpoints.CheckpointCallback(str(run_dir), every_steps=2, is_chief=is_chief)
    callback.set_model(model)
    callback.on_epoch_end(0)
    callback.on_train_end()
  assert not os.path.exists(tmp_path / "worker")
  assert sorted(os.listdir(tmp_path / "chief" / "checkpoints")) == ["ckpt-0000004.keras",
                                                                     "latest"]


def test_checkpoint_callback_asks_the_models_strategy(tmp_path):
  model = _small_compiled_model()  # Built outside any scope: the default strategy is the chief.
  model.optimizer.iterations.assign(2)
  callback = checkpoints.CheckpointCallback(str(tmp_path), every_steps=2)
  callback.set_model(model)
  callback.on_epoch_end(0)
  assert checkpoints.latest_checkpoint(str(tmp_path)).endswith("ckpt-0000002.keras")
