"""Tests of `video_structure/training/callbacks.py`: the NaN guard and the progress line (the
TensorBoard summaries are checked on a real run in tests/cli/test_train.py)."""

import io
import re
import time

import pytest

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
