"""No run is ever lost (issue 15): `train.py` on a run directory that lost its `latest` file or
its config.json, holds a damaged checkpoint, is given a bad --restart or --num_steps, or is
already being trained by another process.

The run directories start as copies of `four_step_run`, a directory as `train.py --num_steps 4`
with the tiny flags leaves it, made without training. Tests that get as far as loading or
building a model are marked slow; refusals stop before that.
"""

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import zipfile

import pytest

import train
from tests import helpers
from video_structure import presets
from video_structure.training import builder
from video_structure.training import checkpoints
from video_structure.training import run_dir as run_dir_lib



def run_main(argv):
  """Runs `train.main(argv)` in this process; returns (model, printed output)."""
  output = io.StringIO()
  with contextlib.redirect_stdout(output):
    model = train.main(argv)
  return model, output.getvalue()


def flags(run_dir, data_dir, num_steps, *extra, **overrides):
  return (["--run_dir", str(run_dir), "--data_dir", str(data_dir)]
          + helpers.tiny_train_flags(num_steps=num_steps, **overrides) + list(extra))


def snapshot(directory):
  """{relative path: sha256} of every file under `directory` but the lock file."""
  files = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      if os.path.relpath(path, directory) != ".lock":
        with open(path, "rb") as f:
          files[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
  return files


@pytest.fixture(scope="module")
def four_step_run(tmp_path_factory):
  """A run directory as `train.py <tiny flags> --num_steps 4` leaves it: config.json and
  checkpoints at steps 2 and 4 (untrained weights; the step counter says 2 and 4)."""
  run_dir = str(tmp_path_factory.mktemp("template") / "run")
  run_config = helpers.tiny_config(num_steps=4, **helpers.TINY_TRAINING)
  run_dir_lib.prepare_run_dir(run_dir, run_config)
  model = builder.build_model(run_config)
  for step in (2, 4):
    model.optimizer.iterations.assign(step)
    checkpoints.save_checkpoint(model, run_dir)
  return run_dir


@pytest.fixture
def run_dir(four_step_run, tmp_path):
  copy = tmp_path / "run"
  shutil.copytree(four_step_run, copy)
  return copy


# Case 1: a missing or wrong `latest` file. -------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("latest", [None, "ckpt-0000009.keras\n"],
                         ids=["latest_deleted", "latest_names_a_missing_file"])
def test_latest_file_does_not_decide_where_training_resumes(run_dir, tiny_basketball_dir, latest):
  before = snapshot(run_dir / "checkpoints")
  latest_path = run_dir / "checkpoints" / "latest"
  if latest is None:
    os.remove(latest_path)
  else:
    latest_path.write_text(latest)
  model, output = run_main(flags(run_dir, tiny_basketball_dir, 4, "--skip_final"))
  assert f"Resuming from {run_dir}/checkpoints/ckpt-0000004.keras at step 4." in output
  assert int(model.optimizer.iterations.numpy()) == 4
  del before["latest"]
  after = snapshot(run_dir / "checkpoints")
  assert {name: after[name] for name in before} == before  # Not trained over from step 0.


# Case 2: --restart with a bad flag; what --restart does. --------------------------------------

def test_restart_with_a_bad_flag_leaves_the_run_as_it_was(run_dir, tiny_basketball_dir):
  before = snapshot(run_dir)
  argv = flags(run_dir, tiny_basketball_dir, 4, "--restart", dataset_config="tinyy")
  with pytest.raises(ValueError, match=r"Unknown basketball config 'tinyy'"):
    run_main(argv)
  assert snapshot(run_dir) == before


@pytest.mark.slow
def test_restart_moves_the_previous_run_aside(run_dir, tiny_basketball_dir):
  before = snapshot(run_dir)
  model, output = run_main(flags(run_dir, tiny_basketball_dir, 2, "--restart", "--skip_final"))
  moved = re.search(r"--restart: moved the previous run's files to (\S+) \(nothing was "
                    r"deleted\)\.", output)
  assert moved, output
  replaced = moved.group(1)
  assert os.path.dirname(replaced) == str(run_dir)
  assert re.fullmatch(r"replaced-\d{8}-\d{6}", os.path.basename(replaced))
  assert snapshot(replaced) == before  # Every file of the previous run, unchanged.
  assert "Resuming" not in output and int(model.optimizer.iterations.numpy()) == 2
  assert sorted(os.listdir(run_dir / "checkpoints")) == ["ckpt-0000002.keras", "latest"]
  with open(run_dir / "config.json") as f:
    assert json.load(f)["model"]["num_steps"] == 2


# Case 3: a damaged newest checkpoint. ---------------------------------------------------------

@pytest.mark.slow
def test_damaged_newest_checkpoint_is_set_aside_and_the_previous_one_resumed(
    run_dir, tiny_basketball_dir):
  newest = run_dir / "checkpoints" / "ckpt-0000004.keras"
  damaged = newest.read_bytes()[:newest.stat().st_size // 2]
  newest.write_bytes(damaged)  # Truncated, e.g. by a full disk during a copy.
  with pytest.warns(UserWarning, match=r"ckpt-0000004\.keras is damaged .*set aside as "
                                       r"ckpt-0000004\.keras\.corrupt"):
    model, output = run_main(flags(run_dir, tiny_basketball_dir, 4, "--skip_final"))
  assert f"Resuming from {run_dir}/checkpoints/ckpt-0000002.keras at step 2." in output
  assert int(model.optimizer.iterations.numpy()) == 4
  assert (run_dir / "checkpoints" / "ckpt-0000004.keras.corrupt").read_bytes() == damaged
  assert sorted(os.listdir(run_dir / "checkpoints")) == [
      "ckpt-0000002.keras", "ckpt-0000004.keras", "ckpt-0000004.keras.corrupt", "latest"]
  with zipfile.ZipFile(newest) as archive:  # Written anew by the resumed training.
    assert archive.testzip() is None


# Case 4: two trainings on one run directory. --------------------------------------------------

@pytest.mark.slow
def test_second_training_on_the_same_run_dir_is_refused(run_dir, tiny_basketball_dir, tmp_path):
  with helpers.training_process(flags(run_dir, tiny_basketball_dir, 400, "--skip_final"),
                                tmp_path) as process:
    lines = []
    for line in process.stdout:  # Until the first training is under way.
      lines.append(line)
      if re.search(r"step \d+/400", line):
        break
    assert process.poll() is None, ("".join(lines), (tmp_path / "stderr.txt").read_text())
    # --num_steps 4: a second training that got past the lock would have nothing to train.
    with pytest.raises(RuntimeError, match=rf"--run_dir {re.escape(str(run_dir))} is in use by "
                                           rf"another training \(process {process.pid}, "
                                           rf"started [^)]+\); wait for it to finish or stop it "
                                           rf"\(kill {process.pid}\)"):
      run_main(flags(run_dir, tiny_basketball_dir, 4, "--skip_final"))
  # The killed training's lock went with it: the same directory resumes at once.
  newest_step = checkpoints.checkpoint_step(checkpoints.checkpoint_paths(str(run_dir))[0])
  model, output = run_main(flags(run_dir, tiny_basketball_dir, newest_step, "--skip_final"))
  assert f"at step {newest_step}." in output
  assert int(model.optimizer.iterations.numpy()) == newest_step


# Settings on resume. ------------------------------------------------------------------------

def test_lost_config_json_does_not_let_a_flag_change_the_model(run_dir, tiny_basketball_dir):
  os.remove(run_dir / "config.json")
  argv = flags(run_dir, tiny_basketball_dir, 4, "--skip_final", num_keypoints=8)
  with pytest.raises(ValueError, match=r"'num_keypoints': \(4, 8\).*resume with "
                                       r"--num_keypoints 4,"):
    run_main(argv)
  with open(run_dir / "config.json") as f:  # Rewritten from the checkpoint.
    assert json.load(f)["model"]["num_keypoints"] == 4


def test_num_steps_below_the_checkpoint_is_refused(run_dir, tiny_basketball_dir):
  before = snapshot(run_dir)
  with pytest.raises(ValueError, match=r"^--num_steps 2 is below step 4 of the newest checkpoint "
                                       r"\(.*ckpt-0000004\.keras\); pass --num_steps 4 or more"):
    run_main(flags(run_dir, tiny_basketball_dir, 2, "--skip_final"))
  assert snapshot(run_dir) == before


@pytest.mark.slow
def test_lower_num_steps_than_recorded_is_noted(run_dir, tiny_basketball_dir):
  config_path = run_dir / "config.json"
  presets.save_run_config(helpers.tiny_config(num_steps=8, **helpers.TINY_TRAINING),
                          str(config_path))  # A run started for 8 steps, stopped at 4.
  model, output = run_main(flags(run_dir, tiny_basketball_dir, 4, "--skip_final"))
  assert (f"Note: --num_steps 4 is lower than the 8 recorded in {config_path}; training stops "
          f"at step 4.") in output
  assert int(model.optimizer.iterations.numpy()) == 4


@pytest.mark.slow
def test_failed_first_start_does_not_block_the_corrected_retry(tmp_path, tiny_basketball_dir):
  run_dir = tmp_path / "fresh"
  with pytest.raises(ValueError, match=r"Unknown basketball config 'tinyy'"):
    run_main(flags(run_dir, tiny_basketball_dir, 2, "--skip_final", dataset_config="tinyy"))
  model, output = run_main(flags(run_dir, tiny_basketball_dir, 2, "--skip_final"))
  assert (f"Note: {run_dir / 'config.json'} has no checkpoint beside it (a first start that "
          f"failed); replaced with this command's settings.") in output
  assert int(model.optimizer.iterations.numpy()) == 2
  with open(run_dir / "config.json") as f:
    assert json.load(f)["model"]["dataset_config"] == "tiny"
