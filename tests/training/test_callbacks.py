"""Tests of `video_structure/training/callbacks.py`: the NaN guard, the progress line, the loss
log, that the TensorBoard example images leave the random state alone (the summaries are checked
on a real run in tests/cli/test_train.py), and the order of train.py's callbacks."""

import glob
import io
import json
import os
import re
import time

import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from video_structure.cli import train as train_cli
from video_structure.model import struct_vrnn
from video_structure.recipes import reseeding
from video_structure.training import callbacks


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_nan_guard_names_the_loss(model, bad_value):
  model.optimizer.iterations.assign(17)
  guard = callbacks.NaNGuard()
  guard.set_model(model)
  guard.on_train_batch_end(0, {"loss": 1.0, "image_loss": 0.5})  # Finite: no error.
  with pytest.raises(FloatingPointError,
                     match=rf"keypoint_loss became {bad_value} at step 17"):
    guard.on_train_batch_end(1, {"loss": 1.0, "keypoint_loss": bad_value})


def test_progress_line_shows_step_total_rate_and_eta(model):
  stream = io.StringIO()
  progress = callbacks.ProgressCallback(total_steps=100, frames_per_step=32, stream=stream)
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


# The loss log. ------------------------------------------------------------------------------

def _write_rows(path, steps):
  path.write_text("".join(json.dumps({"step": s, "loss": s / 3}) + "\n" for s in steps))


def test_loss_log_appends_one_row_per_chunk_at_full_precision(model, tmp_path):
  path = tmp_path / callbacks.LOSS_LOG_FILE
  log = callbacks.LossLogCallback(str(path))
  log.set_model(model)
  model.optimizer.iterations.assign(0)
  log.on_train_begin()
  values = {"loss": np.float32(1) / np.float32(3), "image_loss": np.float32(2.5e-7)}
  for step in (2, 4):
    model.optimizer.iterations.assign(step)
    log.on_epoch_end(step // 2 - 1, dict(values, kl_loss=np.array([step], np.float32)))
  rows = callbacks.read_loss_log(str(path))
  assert [row["step"] for row in rows] == [2, 4]
  assert rows[1]["kl_loss"] == 4.0
  for row in rows:  # Every float32 reads back bit for bit.
    assert np.float32(row["loss"]) == values["loss"] and row["loss"] == float(values["loss"])
    assert np.float32(row["image_loss"]) == values["image_loss"]


def test_loss_log_drops_the_rows_after_the_resumed_step(model, tmp_path, monkeypatch):
  path = tmp_path / callbacks.LOSS_LOG_FILE
  _write_rows(path, [2, 4, 6, 8])
  with open(path, "a", encoding="utf-8") as f:
    f.write('{"step": 10, "lo')  # Torn by the kill.
  rewrites = []
  original = callbacks.io_utils.atomic_write_text
  monkeypatch.setattr(callbacks.io_utils, "atomic_write_text",
                      lambda *args: rewrites.append(args[0]) or original(*args))
  log = callbacks.LossLogCallback(str(path))
  log.set_model(model)
  model.optimizer.iterations.assign(4)  # Resumed from the checkpoint of step 4.
  log.on_train_begin()
  assert rewrites == [str(path)]  # Atomically: a kill now leaves the old or the new file.
  assert [row["step"] for row in callbacks.read_loss_log(str(path))] == [2, 4]
  model.optimizer.iterations.assign(6)
  log.on_epoch_end(2, {"loss": 1.5})
  assert callbacks.read_loss_log(str(path))[-1] == {"step": 6, "loss": 1.5}


def test_loss_log_is_left_alone_when_nothing_is_after_the_step(model, tmp_path):
  path = tmp_path / callbacks.LOSS_LOG_FILE
  _write_rows(path, [2, 4])
  before = os.stat(path)
  log = callbacks.LossLogCallback(str(path))
  log.set_model(model)
  model.optimizer.iterations.assign(4)
  log.on_train_begin()
  assert os.stat(path).st_ino == before.st_ino  # Not rewritten.
  model.optimizer.iterations.assign(0)  # A fresh start (--restart) drops every row.
  log.on_train_begin()
  assert path.read_text() == ""


# TensorBoard. -------------------------------------------------------------------------------

def test_tensorboard_example_images_advance_no_random_state(model, frames, tmp_path):
  board = callbacks.TensorBoardCallback(str(tmp_path / "tensorboard"), tf.constant(frames), 2)
  board.set_model(model)
  model.optimizer.iterations.assign(2)  # An image step.
  seed_state = model.dynamics.seed_generator.state.numpy()
  weights = [w.numpy() for w in model.weights]
  board.on_epoch_end(0, {"loss": 1.0})
  board.close()
  np.testing.assert_array_equal(model.dynamics.seed_generator.state.numpy(), seed_state)
  for before, weight in zip(weights, model.weights):
    np.testing.assert_array_equal(weight.numpy(), before)
  assert glob.glob(str(tmp_path / "tensorboard" / "events.out.tfevents.*"))


# train.py's callbacks. ----------------------------------------------------------------------

def test_train_py_checkpoints_after_every_other_callback(tmp_path, tiny_basketball_dir,
                                                         monkeypatch):
  # Re-seeding changes the weights of a step and the loss log and TensorBoard record it: all
  # run before the checkpoint of that step, so a run resumed from it neither skips nor loses
  # any of them (Keras calls callbacks in list order; re-seeding acts at the step's end).
  fits = []
  monkeypatch.setattr(struct_vrnn.StructVRNN, "fit",
                      lambda self, data, **kwargs: fits.append(kwargs["callbacks"]))
  train_cli.main(["--run_dir", str(tmp_path / "run"), "--data_dir", str(tiny_basketball_dir),
                  "--num_steps", "4", "--skip_final", "--reseed_every_steps", "2",
                  "--reseed_until_step", "4"] + helpers.tiny_train_flags())
  assert [[type(c).__name__ for c in callback_list] for callback_list in fits] == [[
      "NaNGuard", "KeypointReseeding", "ProgressCallback", "LossLogCallback",
      "TensorBoardCallback", "CheckpointCallback"]]
  assert isinstance(fits[0][1], reseeding.KeypointReseeding)
  assert fits[0][3].path == str(tmp_path / "run" / callbacks.LOSS_LOG_FILE)
