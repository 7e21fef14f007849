"""End-to-end tests of `train.py` (`video_structure/cli/train.py`) on the `tiny` Basketball
data (16 train / 8 test sequences of 20 frames) with a tiny model: outputs of a full run,
resumption (after SIGKILL: tests/training/test_fault_injection.py), bad arguments and the NaN
stop.

Each `train.main` call that trains traces a new train step (~10-15 s), so runs are shared
through module-scoped fixtures.
"""

import contextlib
import glob
import io
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import train
from tests import helpers
from video_structure import presets
from video_structure.data import basketball
from video_structure.training import checkpoints

NUM_KEYPOINTS = 4
NUM_EVAL_SEQUENCES = 2
TINY_FLAGS = helpers.tiny_train_flags(num_keypoints=NUM_KEYPOINTS, image_summary_every_steps=4,
                                      num_eval_sequences=NUM_EVAL_SEQUENCES)


def run_main(argv):
  """Runs `train.main(argv)` in this process; returns (model, printed output)."""
  output = io.StringIO()
  with contextlib.redirect_stdout(output):
    model = train.main(argv)
  return model, output.getvalue()


def flags(run_dir, data_dir, *extra):
  return ["--run_dir", str(run_dir), "--data_dir", str(data_dir)] + TINY_FLAGS + list(extra)


def read_scalars(log_dir):
  """{tag: {step: value}} of every scalar summary in the event files under `log_dir`."""
  scalars = {}
  for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == "scalars":
          scalars.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
  return scalars


def read_tags(log_dir):
  return {value.tag for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))
          for event in tf.compat.v1.train.summary_iterator(path) for value in event.summary.value}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_basketball_dir):
  """A complete 4-step run (training, export, evaluation, figures) and a snapshot of its files
  taken right after it (later tests resume in the same directory)."""
  run_dir = tmp_path_factory.mktemp("runs") / "run"
  model, output = run_main(flags(run_dir, tiny_basketball_dir, "--num_steps", "4"))
  files = sorted(os.path.relpath(os.path.join(root, name), run_dir)
                 for root, _, names in os.walk(run_dir) for name in names)
  with open(run_dir / "config.json") as f:
    saved_config = json.load(f)
  latest = (run_dir / checkpoints.CHECKPOINT_DIR / checkpoints.LATEST_FILE).read_text()
  return dict(run_dir=run_dir, model=model, output=output, files=files, config=saved_config,
              latest=latest,
              scalars=read_scalars(run_dir / "tensorboard"),
              tags=read_tags(run_dir / "tensorboard"))


# A complete run. ---------------------------------------------------------------------------

@pytest.mark.slow
def test_run_writes_config_and_checkpoints(first_run):
  assert first_run["config"]["model"]["num_steps"] == 4
  assert first_run["config"]["model"]["num_keypoints"] == NUM_KEYPOINTS
  assert first_run["config"]["model"]["dataset_config"] == "tiny"
  checkpoints = [f for f in first_run["files"] if f.startswith("checkpoints/")]
  assert checkpoints == ["checkpoints/ckpt-0000002.keras", "checkpoints/ckpt-0000004.keras",
                         "checkpoints/latest"]
  assert first_run["latest"] == "ckpt-0000004.keras\n"
  assert int(first_run["model"].optimizer.iterations.numpy()) == 4
  output = first_run["output"]
  assert "step 2/4 (50%)" in output and "step 4/4 (100%)" in output
  assert "ETA" in output and "Training done at step 4" in output


@pytest.mark.slow
def test_run_writes_tensorboard_summaries(first_run):
  scalars = first_run["scalars"]
  for tag in ["loss/loss", "loss/image_loss", "loss/keypoint_loss", "loss/kl_loss",
              "loss/separation_loss", "loss/sparsity_loss", "schedule/learning_rate",
              "schedule/kl_weight", "schedule/feed_decoded_observed"]:
    assert sorted(scalars[tag]) == [2, 4], tag
    assert all(np.isfinite(v) for v in scalars[tag].values()), tag
  assert "examples" in first_run["tags"]  # The image summary at step 4.


@pytest.mark.slow
def test_run_exports_saved_model(first_run):
  assert "saved_model/saved_model.pb" in first_run["files"]
  assert not any(".tmp" in f or f.startswith("saved_model.old") for f in first_run["files"])
  assert f"Exported SavedModel to {first_run['run_dir'] / 'saved_model'}" in first_run["output"]


@pytest.mark.slow
def test_run_writes_evaluation(first_run):
  with open(first_run["run_dir"] / "evaluation.json") as f:
    report = json.load(f)
  assert report["run"]["step"] == 4 and report["settings"]["name"] == "quick"
  tracking = report["tracking"]
  per_object = tracking["detected"]["per_object_mean"]
  assert list(per_object) == list(basketball.OBJECT_NAMES) and len(per_object) == 6
  for name, errors in per_object.items():
    assert np.isfinite(errors["pixels"]) and errors["pixels"] >= 0, name
  assert tracking["num_observed"] == 8 and tracking["num_predicted"] == 8
  assert tracking["num_samples"] == 20
  assert tracking["num_test_windows"] == 8  # 8 test sequences of 20 frames: one window each.
  prediction = tracking["prediction"]
  assert len(prediction["best_of_samples_px_last_step_per_object"]) == 6
  assert np.isfinite(prediction["best_of_samples_px_last_step"])
  assert "Tracking error" in first_run["output"] and "ball" in first_run["output"]


@pytest.mark.slow
def test_run_draws_prediction_figures(first_run):
  run_dir = first_run["run_dir"]
  expected = [f"predictions/sequence_{i}.{ext}" for i in range(NUM_EVAL_SEQUENCES)
              for ext in ("gif", "png")]
  assert [f for f in first_run["files"] if f.startswith("predictions/")] == sorted(expected)
  with Image.open(run_dir / "predictions" / "sequence_0.png") as png:
    assert png.size[0] > 64 and png.size[1] > 64
  with Image.open(run_dir / "predictions" / "sequence_0.gif") as gif:
    assert gif.n_frames == 16  # One GIF frame per time step of the window.


# Resumption. ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resumed_run(first_run, tiny_basketball_dir):
  run_dir = first_run["run_dir"]
  model, output = run_main(flags(run_dir, tiny_basketball_dir, "--num_steps", "6", "--skip_final"))
  return dict(run_dir=run_dir, model=model, output=output,
              scalars=read_scalars(run_dir / "tensorboard"))


@pytest.mark.slow
def test_resume_continues_at_the_last_step(resumed_run):
  run_dir, output = resumed_run["run_dir"], resumed_run["output"]
  checkpoint = os.path.join(str(run_dir), "checkpoints", "ckpt-0000004.keras")
  assert f"Resuming from {checkpoint} at step 4." in output
  assert "step 6/6 (100%)" in output
  assert "step 2/6" not in output and "step 4/6" not in output  # Steps 1-4 not repeated.
  assert "Training done at step 6" in output
  assert int(resumed_run["model"].optimizer.iterations.numpy()) == 6
  assert checkpoints.latest_checkpoint(str(run_dir)).endswith("ckpt-0000006.keras")
  assert presets.load_run_config(str(run_dir / "config.json")).model.num_steps == 6


@pytest.mark.slow
def test_resume_continues_the_schedules(resumed_run):
  config = resumed_run["model"].config
  scalars = resumed_run["scalars"]
  assert sorted(scalars["schedule/kl_weight"]) == [2, 4, 6]
  for step in (2, 4, 6):
    assert scalars["schedule/kl_weight"][step] == pytest.approx(
        config.kl_beta * step / config.kl_anneal_steps, rel=1e-5)
    assert scalars["schedule/feed_decoded_observed"][step] == pytest.approx(
        config.scheduled_sampling_observed * step / config.scheduled_sampling_ramp_steps,
        rel=1e-5)
    assert scalars["schedule/learning_rate"][step] == pytest.approx(config.learning_rate,
                                                                    rel=1e-6)


@pytest.mark.slow
def test_resume_with_changed_log_interval_stops_at_num_steps(resumed_run, tiny_basketball_dir):
  # Resume the step-6 run with a log/checkpoint interval of 4 and num_steps 8 (both multiples
  # of 4, so train.py accepts the flags; run_dir.RESUMABLE_CHANGES allows the change).
  argv = flags(resumed_run["run_dir"], tiny_basketball_dir, "--num_steps", "8", "--skip_final")
  for flag in ("--log_every_steps", "--checkpoint_every_steps"):
    argv[argv.index(flag) + 1] = "4"
  model, output = run_main(argv)
  assert "Resuming from" in output and "at step 6." in output
  assert int(model.optimizer.iterations.numpy()) == 8, output


@pytest.mark.slow
def test_resume_with_changed_model_flag_is_refused(first_run, tiny_basketball_dir):
  run_dir = first_run["run_dir"]
  before = (run_dir / "config.json").read_text()
  argv = flags(run_dir, tiny_basketball_dir, "--num_steps", "6")
  argv[argv.index("--num_keypoints") + 1] = "5"
  with pytest.raises(ValueError, match=r"different hyperparameters.*'num_keypoints': \(4, 5\)"):
    run_main(argv)
  assert (run_dir / "config.json").read_text() == before


# Bad arguments. ----------------------------------------------------------------------------

@pytest.mark.slow
def test_reseeding_runs_at_its_interval_until_its_last_step(tmp_path, tiny_basketball_dir):
  # Steps 2 and 4 re-seed, step 6 is past reseed_until_step. At initialisation every keypoint
  # but one counts as a duplicate or draws nothing (mu is max-normalised), so each event
  # re-seeds at least one keypoint.
  run_dir = tmp_path / "run"
  model, output = run_main(flags(run_dir, tiny_basketball_dir, "--num_steps", "6", "--skip_final",
                                 "--reseed_every_steps", "2", "--reseed_until_step", "4",
                                 "--reseed_distance", "2.0"))
  events = re.findall(r"Step (\d+): re-seeded keypoints \[([\d, ]*)\]", output)
  assert [int(step) for step, _ in events] == [2, 4]
  assert all(keypoints for _, keypoints in events)
  assert int(model.optimizer.iterations.numpy()) == 6


def test_unknown_preset_stops_with_usage_message(tmp_path, tiny_basketball_dir, capsys):
  with pytest.raises(SystemExit) as exit_info:
    run_main(flags(tmp_path / "run", tiny_basketball_dir, "--preset", "gpu"))
  assert exit_info.value.code == 2
  assert "--preset: invalid choice: 'gpu'" in capsys.readouterr().err


def test_num_steps_not_a_multiple_of_log_interval(tmp_path, tiny_basketball_dir):
  with pytest.raises(ValueError,
                     match=r"--num_steps \(5\).*multiples of --log_every_steps \(2\)"):
    run_main(flags(tmp_path / "run", tiny_basketball_dir, "--num_steps", "5"))
  assert not os.path.exists(tmp_path / "run")


def test_zero_keypoints_is_refused(tmp_path, tiny_basketball_dir):
  argv = flags(tmp_path / "run", tiny_basketball_dir, "--num_steps", "4")
  argv[argv.index("--num_keypoints") + 1] = "0"
  with pytest.raises(ValueError, match=r"`num_keypoints` must be > 0, got 0"):
    run_main(argv)
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.slow
def test_nan_loss_stops_training(tmp_path, tiny_basketball_dir):
  run_dir = tmp_path / "nan"
  with pytest.raises(FloatingPointError,
                     match=r"loss became (nan|inf|-inf) at step \d+\. Lower --learning_rate"
                     ) as error:
    run_main(flags(run_dir, tiny_basketball_dir, "--num_steps", "6", "--learning_rate", "1e6",
                   "--skip_final"))
  # No checkpoint of the diverged model: the guard stops before the step is saved.
  failed_step = int(re.search(r"at step (\d+)", str(error.value)).group(1))
  latest = checkpoints.latest_checkpoint(str(run_dir))
  assert latest is None or checkpoints.checkpoint_step(latest) < failed_step


@pytest.mark.slow
def test_trains_on_a_folder_of_mp4_files(tmp_path):
  """`train.py --dataset path/to/folder`: a few short mp4 files, decoded once into TFRecords,
  train a model (issue: "your own videos")."""
  import av
  folder = tmp_path / "videos"
  folder.mkdir()
  rng = np.random.default_rng(0)
  for index in range(4):
    with av.open(str(folder / f"clip_{index}.mp4"), mode="w") as container:
      stream = container.add_stream("libx264", rate=10)
      stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
      start = rng.integers(8, 40, 2)
      for t in range(20):  # A square moving right on grey.
        frame = np.full((64, 64, 3), 128, np.uint8)
        frame[start[0]:start[0] + 8, start[1] + t:start[1] + t + 8] = (200, 30, 30)
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
          container.mux(packet)
      for packet in stream.encode():
        container.mux(packet)
  run_dir, data_dir = tmp_path / "run", tmp_path / "data"
  extra = list(TINY_FLAGS)
  extra[extra.index("--dataset_config") + 1] = "default"
  model, output = run_main(["--dataset", str(folder), "--run_dir", str(run_dir), "--data_dir",
                            str(data_dir), "--num_steps", "4", "--skip_final"] + extra)
  assert int(model.optimizer.iterations.numpy()) == 4
  with open(run_dir / "config.json") as f:
    config = json.load(f)["model"]
  assert config["dataset"] == "video_folder"
  assert config["dataset_path"] == str(folder)
  # Decoded once: the TFRecord cache is under --data_dir and is reused by a second run.
  assert glob.glob(str(data_dir / "video_folders" / "*"))
