"""Tests of `video_structure/training/checkpoints.py`: atomic checkpoints, the newest intact one
(the directory, not `latest`, decides), damaged ones set aside, pruning only after a verified
save, the config each checkpoint carries, and the callback that writes them only on the chief.

No test traces a train step: optimizer state is created by eager `apply_gradients` calls.
"""

import json
import os
import types
import warnings
import zipfile

import keras
import numpy as np
import pytest

from tests import helpers
from video_structure import presets
from video_structure.model import struct_vrnn
from video_structure.training import builder
from video_structure.training import checkpoints

LEGACY_RUN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "reference", "legacy_run")


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
  with pytest.warns(checkpoints.CheckpointWarning,
                    match=r"ckpt-0000005\.keras is damaged \(not a complete zip file"):
    assert checkpoints.latest_checkpoint(run_dir) == good
  loaded = checkpoints.load_checkpoint(good, model.config)
  assert int(loaded.optimizer.iterations.numpy()) == 4

  # The next save removes the stale temporary files and moves `latest` on.
  model.optimizer.iterations.assign(6)
  newer = checkpoints.save_checkpoint(model, run_dir)
  assert checkpoints.latest_checkpoint(run_dir) == newer
  for name in leftovers:
    assert not os.path.exists(os.path.join(directory, name)), name
  assert int(checkpoints.load_checkpoint(newer, model.config).optimizer.iterations.numpy()) == 6


def test_latest_file_never_decides(model, tmp_path):
  run_dir = str(tmp_path / "run")
  directory = _checkpoint_dir(run_dir)
  assert checkpoints.latest_checkpoint(run_dir) is None
  for step in (2, 4):
    model.optimizer.iterations.assign(step)
    checkpoints.save_checkpoint(model, run_dir)
  newest = os.path.join(directory, "ckpt-0000004.keras")
  latest = os.path.join(directory, "latest")
  for content in ("ckpt-0000123.keras\n", "ckpt-0000002.keras\n", "garbage", None):
    if content is None:
      os.remove(latest)  # Deleted, or never written after a crash.
    else:
      with open(latest, "w") as f:
        f.write(content)
    assert checkpoints.latest_checkpoint(run_dir) == newest, content
    loaded, path = checkpoints.load_latest_checkpoint(run_dir, model.config)
    assert path == newest and int(loaded.optimizer.iterations.numpy()) == 4, content


def test_checkpoints_are_ordered_by_step_not_by_name(tmp_path):
  directory = tmp_path / "run" / checkpoints.CHECKPOINT_DIR
  directory.mkdir(parents=True)
  names = ["ckpt-0000500.keras", "ckpt-12000000.keras", "ckpt-0000040.keras",
           "ckpt-0000600.keras.corrupt", ".ckpt-0000700.keras.x1.tmp.keras", "latest"]
  for name in names:
    (directory / name).write_bytes(b"")
  assert [os.path.basename(p) for p in checkpoints.checkpoint_paths(str(tmp_path / "run"))] == [
      "ckpt-12000000.keras", "ckpt-0000500.keras", "ckpt-0000040.keras"]
  assert checkpoints.checkpoint_step(str(directory / "ckpt-0000500.keras")) == 500
  assert checkpoints.checkpoint_paths(str(tmp_path / "no_run")) == []


def _truncate(path):
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:len(data) // 2])
  return data[:len(data) // 2]


def _flip_a_byte(path):
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    value = f.read(1)[0]
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([value ^ 0xFF]))


def test_checkpoint_problem_finds_truncated_and_flipped_files(model, tmp_path):
  run_dir = str(tmp_path / "run")
  model.optimizer.iterations.assign(2)
  path = checkpoints.save_checkpoint(model, run_dir)
  assert checkpoints.checkpoint_problem(path) is None
  flipped, truncated, empty, member_missing = (str(tmp_path / name) for name in (
      "flipped.keras", "truncated.keras", "empty.keras", "member_missing.keras"))
  for copy in (flipped, truncated):
    with open(path, "rb") as source, open(copy, "wb") as target:
      target.write(source.read())
  _flip_a_byte(flipped)
  _truncate(truncated)
  open(empty, "wb").close()
  with zipfile.ZipFile(member_missing, "w") as archive:
    archive.writestr("config.json", "{}")
  assert checkpoints.checkpoint_problem(flipped) == "bad CRC in model.weights.h5"
  assert checkpoints.checkpoint_problem(truncated).startswith("not a complete zip file")
  assert checkpoints.checkpoint_problem(empty).startswith("not a complete zip file")
  assert checkpoints.checkpoint_problem(member_missing) == "no model.weights.h5 in it"
  assert checkpoints.checkpoint_problem(str(tmp_path / "gone.keras")).startswith("unreadable")


def test_damaged_newest_checkpoint_is_set_aside_and_the_previous_one_used(model, tmp_path):
  run_dir = str(tmp_path / "run")
  directory = _checkpoint_dir(run_dir)
  for step in (2, 4, 6):
    model.optimizer.iterations.assign(step)
    checkpoints.save_checkpoint(model, run_dir)
  newest, previous = (os.path.join(directory, f"ckpt-000000{step}.keras") for step in (6, 4))
  truncated_bytes = _truncate(newest)

  # A reader (evaluate.py) skips it with a warning and leaves the run directory as it is.
  with pytest.warns(checkpoints.CheckpointWarning,
                    match=r"ckpt-0000006\.keras is damaged \(not a complete zip file.*skipped"):
    assert checkpoints.latest_checkpoint(run_dir) == previous
  assert os.path.exists(newest)

  # The trainer sets it aside: renamed, not deleted; the next one is used.
  with pytest.warns(checkpoints.CheckpointWarning,
                    match=r"ckpt-0000006\.keras is damaged .*set aside as "
                          r"ckpt-0000006\.keras\.corrupt\."):
    assert checkpoints.latest_checkpoint(run_dir, set_aside_damaged=True) == previous
  assert sorted(os.listdir(directory)) == ["ckpt-0000002.keras", "ckpt-0000004.keras",
                                           "ckpt-0000006.keras.corrupt", "latest"]
  with open(newest + ".corrupt", "rb") as f:
    assert f.read() == truncated_bytes
  assert checkpoints.corrupt_checkpoints(run_dir) == [newest + ".corrupt"]
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # Nothing damaged is left to warn about.
    loaded, path = checkpoints.load_latest_checkpoint(run_dir, model.config)
  assert path == previous and int(loaded.optimizer.iterations.numpy()) == 4

  # Saving step 6 again keeps the damaged copy; a second damaged step 6 gets its own name.
  model.optimizer.iterations.assign(6)
  checkpoints.save_checkpoint(model, run_dir)
  _flip_a_byte(newest)
  with pytest.warns(checkpoints.CheckpointWarning, match=r"ckpt-0000006\.keras\.corrupt-2"):
    assert checkpoints.latest_checkpoint(run_dir, set_aside_damaged=True) == previous
  assert checkpoints.corrupt_checkpoints(run_dir) == [newest + ".corrupt", newest + ".corrupt-2"]


def _unloadable_checkpoint(path):
  """A zip that passes the cheap check (members and CRCs fine) but that Keras cannot load."""
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("metadata.json", "{}")
    archive.writestr("config.json", json.dumps({"class_name": "StructVRNN", "config": {}}))
    archive.writestr("model.weights.h5", b"not hdf5")


def test_checkpoint_keras_cannot_load_falls_back_to_an_older_one(model, tmp_path):
  run_dir = str(tmp_path / "run")
  directory = _checkpoint_dir(run_dir)
  model.optimizer.iterations.assign(4)
  previous = checkpoints.save_checkpoint(model, run_dir)
  newest = os.path.join(directory, "ckpt-0000006.keras")
  _unloadable_checkpoint(newest)
  assert checkpoints.checkpoint_problem(newest) is None
  with pytest.warns(checkpoints.CheckpointWarning,
                    match=r"ckpt-0000006\.keras is damaged \(Keras cannot load it: .*set aside"):
    loaded, path = checkpoints.load_latest_checkpoint(run_dir, model.config,
                                                      set_aside_damaged=True)
  assert path == previous and int(loaded.optimizer.iterations.numpy()) == 4
  assert os.path.exists(newest + ".corrupt") and not os.path.exists(newest)


def test_no_checkpoint_that_loads_is_an_error_not_a_fresh_start(model, tmp_path):
  run_dir = str(tmp_path / "run")
  assert checkpoints.load_latest_checkpoint(run_dir, model.config) == (None, None)
  newest = os.path.join(_checkpoint_dir(run_dir), "ckpt-0000006.keras")
  os.makedirs(os.path.dirname(newest))
  _unloadable_checkpoint(newest)
  # Nothing loads, so the code (not the file) is the likely cause: nothing is set aside.
  with pytest.raises(ValueError, match=r"Cannot load checkpoint .*ckpt-0000006\.keras \(.*\), "
                                       r"nor any older one\."):
    checkpoints.load_latest_checkpoint(run_dir, model.config, set_aside_damaged=True)
  assert os.path.exists(newest) and not checkpoints.corrupt_checkpoints(run_dir)


def test_checkpoint_carries_its_run_config(model, tmp_path):
  path = checkpoints.save_checkpoint(model, str(tmp_path / "run"))
  assert checkpoints.checkpoint_run_config(path) == helpers.tiny_config()
  without_recipe = helpers.tiny_config(recipe="none")
  path_without_recipe = checkpoints.save_checkpoint(builder.build_model(without_recipe),
                                                    str(tmp_path / "run_without_recipe"))
  assert checkpoints.checkpoint_run_config(path_without_recipe) == without_recipe
  # A checkpoint written before the recipe became a plug-in: its flat config.
  legacy_checkpoint = os.path.join(LEGACY_RUN, "checkpoints", "ckpt-0000004.keras")
  assert checkpoints.checkpoint_run_config(legacy_checkpoint) == presets.load_run_config(
      os.path.join(LEGACY_RUN, "config.json"))
  other = str(tmp_path / "other.keras")
  keras.Sequential([keras.Input([3]), keras.layers.Dense(2)]).save(other)
  with pytest.raises(ValueError, match=r"other\.keras does not hold a StructVRNN model"):
    checkpoints.checkpoint_run_config(other)


class _SaveThatWritesGarbage:
  """Stands in for a model whose save is cut short on a failing disk."""

  def __init__(self, step):
    self.optimizer = types.SimpleNamespace(iterations=keras.Variable(step))

  def save(self, path):
    with open(path, "wb") as f:
      f.write(b"PK\x03\x04 cut short")


def test_older_checkpoints_are_pruned_only_after_a_verified_save(model, tmp_path):
  run_dir = str(tmp_path / "run")
  directory = _checkpoint_dir(run_dir)
  for step in (2, 4, 6):
    model.optimizer.iterations.assign(step)
    checkpoints.save_checkpoint(model, run_dir, keep=3)
  with pytest.warns(checkpoints.CheckpointWarning, match=r"ckpt-0000008\.keras\.corrupt"):
    with pytest.raises(OSError, match=r"ckpt-0000008\.keras does not read back \(not a "
                                      r"complete zip file.*\); the older checkpoints are kept\."):
      checkpoints.save_checkpoint(_SaveThatWritesGarbage(8), run_dir, keep=3)
  assert sorted(os.listdir(directory)) == ["ckpt-0000002.keras", "ckpt-0000004.keras",
                                           "ckpt-0000006.keras", "ckpt-0000008.keras.corrupt",
                                           "latest"]
  with open(os.path.join(directory, "latest")) as f:
    assert f.read() == "ckpt-0000006.keras\n"


def test_pruning_never_removes_a_newer_checkpoint(model, tmp_path):
  run_dir = str(tmp_path / "run")
  # Saving 8 prunes 2 (keep=2); step 3 saved after 8 (not what a run does) prunes nothing.
  for step in (2, 4, 8, 3):
    model.optimizer.iterations.assign(step)
    checkpoints.save_checkpoint(model, run_dir, keep=2)
  assert sorted(os.listdir(_checkpoint_dir(run_dir))) == [
      "ckpt-0000003.keras", "ckpt-0000004.keras", "ckpt-0000008.keras", "latest"]


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
