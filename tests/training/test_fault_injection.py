"""Fault injection on a tiny model: a train.py run killed with SIGKILL 3 times (once while a
checkpoint is being written, once during the start-up, once at a random moment of a logging
chunk: one kill of each kind) and restarted each time ends with exactly the weights and loss log
of an uninterrupted run, and no kill loses more than one checkpoint interval.

Runs scripts/fault_injection.py (whose default, 5 kills of the CPU preset, is the full check) on
the `tiny` Basketball data; its kill moments come from a seeded random generator. Five train.py
start-ups (one uninterrupted run beside four of the killed one), about 3 minutes on an idle
2-core AMD EPYC with AVX2 only.
"""

import json
import os
import subprocess
import sys

import pytest

from tests import helpers
from video_structure.training import checkpoints

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO_ROOT, "scripts", "fault_injection.py")
NUM_STEPS = 16
# Checkpoints and loss rows every 2 steps, an image summary every 8 (it must not change the
# random state) and re-seeding at steps 4, 8 and 12 (it must be in the checkpoint of its step).
TRAIN_FLAGS = helpers.tiny_train_flags(image_summary_every_steps=8, reseed_every_steps=4,
                                       reseed_until_step=12, reseed_distance=2.0)


@pytest.mark.slow
def test_killed_and_restarted_run_ends_as_the_uninterrupted_one(tmp_path, tiny_basketball_dir):
  report = tmp_path / "report.json"
  command = [sys.executable, SCRIPT, "--num_steps", str(NUM_STEPS), "--kills", "3",
             "--checkpoint_kills", "1", "--startup_kills", "1", "--seed", "0",
             "--work_dir", str(tmp_path / "runs"), "--report", str(report), "--",
             "--data_dir", str(tiny_basketball_dir)] + TRAIN_FLAGS
  result = subprocess.run(command, cwd=str(tmp_path), capture_output=True, text=True,
                          timeout=1800, check=False)
  output = result.stdout + result.stderr
  assert report.exists(), output
  summary = json.loads(report.read_text())
  kills = summary["kills"]
  assert sorted(kill["kind"] for kill in kills) == ["checkpoint", "chunk", "startup"], output
  assert all(kill["returncode"] == -9 for kill in kills), output
  assert any(kill["killed_during_checkpoint_write"] for kill in kills), output
  # A kill loses at most one checkpoint interval: the progress line of step S is printed
  # before checkpoint S is written, after checkpoint S - interval (none yet: step 0).
  interval = helpers.TINY_TRAINING["checkpoint_every_steps"]
  for kill in kills:
    if kill["kind"] != "startup":
      latest = kill["latest_checkpoint_after"]
      saved_step = checkpoints.checkpoint_step(latest) if latest else 0
      assert kill["last_progress_step"] - interval <= saved_step <= kill["last_progress_step"], (
          output)
  assert summary["final_checkpoints"] == [f"ckpt-{NUM_STEPS:07d}.keras"] * 2, output
  # Bit for bit: every array of the checkpoint (model, optimizer, seed state) and every loss.
  assert summary["same_array_names"] and summary["num_arrays"] > 100, output
  assert summary["largest_weight_difference"] == 0.0, output
  assert summary["loss_log_rows"] == [NUM_STEPS // 2] * 2, output
  assert summary["same_loss_log_rows"] and summary["largest_loss_difference"] == 0.0, output
  assert summary["identical"] and result.returncode == 0, output
