"""evaluate.py (`cli/evaluate.py`) on a tiny trained run: one module fixture trains it for 2 steps
with train.py and evaluates its checkpoint and its SavedModel (end to end, hence slow); the
argument checks need only the run's config.json.
"""

import contextlib
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from video_structure import presets
from video_structure.cli import evaluate
from video_structure.cli import train
from video_structure.evaluation import model_calls
from video_structure.evaluation import protocol
from video_structure.evaluation import report as report_lib
from video_structure.training import export
from video_structure.training import precision
from video_structure.training import run_dir as run_dir_lib


TINY_FLAGS = helpers.tiny_train_flags(num_steps=2) + ["--skip_final"]
EVAL_FLAGS = ["--num_train_windows", "6", "--num_test_windows", "8", "--num_video_windows", "3",
              "--num_samples", "2", "--num_tracking_samples", "3",
              "--num_diversity_examples", "2", "--num_diversity_samples", "2",
              "--num_figure_examples", "2", "--fvd_clips", "4"]


def run_quietly(function, argv):
  output = io.StringIO()
  with contextlib.redirect_stdout(output):
    result = function(argv)
  return result, output.getvalue()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """A 2-step tiny run (train.py), its SavedModel, and its data."""
  root = tmp_path_factory.mktemp("evaluate")
  data_dir, run_dir = root / "data", root / "run"
  model, _ = run_quietly(train.main, ["--run_dir", str(run_dir), "--data_dir", str(data_dir)]
                         + TINY_FLAGS)
  export.export_saved_model(model, str(run_dir / "saved_model"))
  return dict(root=root, data_dir=data_dir, run_dir=run_dir)


@pytest.fixture(scope="module")
def evaluated(tiny_run):
  """evaluate.py on the checkpoint and on the SavedModel (empty I3D cache: FVD skipped)."""
  environment = os.environ.get("VIDEO_STRUCTURE_CACHE")
  os.environ["VIDEO_STRUCTURE_CACHE"] = str(tiny_run["root"] / "empty_cache")
  try:
    results = {}
    for name, extra in (("checkpoint", []), ("saved_model", ["--saved_model"])):
      output_dir = tiny_run["root"] / f"out_{name}"
      report, printed = run_quietly(evaluate.main, [
          "--run_dir", str(tiny_run["run_dir"]), "--data_dir", str(tiny_run["data_dir"]),
          "--output", str(output_dir)] + EVAL_FLAGS + extra)
      results[name] = dict(report=report, printed=printed, output_dir=output_dir)
  finally:
    if environment is None:
      del os.environ["VIDEO_STRUCTURE_CACHE"]
    else:
      os.environ["VIDEO_STRUCTURE_CACHE"] = environment
  return results


@pytest.mark.slow
def test_evaluate_script_writes_json_pngs_and_gifs(evaluated):
  result = evaluated["checkpoint"]
  output_dir = result["output_dir"]
  with open(output_dir / "evaluation.json") as f:
    report = json.load(f)
  assert report["schema_version"] == report_lib.SCHEMA_VERSION
  assert report["run"]["step"] == 2 and report["run"]["checkpoint"].endswith(
      "ckpt-0000002.keras")
  assert report["settings"]["best_sample_rule"] == "per_object"  # Basketball's rule.
  assert report["data"]["num_test_windows"] == 8 and report["data"]["num_train_windows"] == 6
  assert report["tracking"]["object_names"][0] == "ball"
  assert len(report["tracking"]["best_of_samples"]["per_time_step"]["pixels"]) == 16
  assert len(report["video"]["ssim"]["closest"]) == 16
  assert "fetch_weights.py" in report["fvd"]["skipped"]
  assert set(report["timing"]["seconds_per_phase"]) == set(protocol.PHASES)
  for name in ("video_metrics.png", "tracking_error.png", "sample_diversity.png",
               "examples/example_0.png", "examples/example_0.gif", "examples/example_1.png",
               "examples/example_1.gif"):
    assert (output_dir / name).stat().st_size > 100, name
  printed = result["printed"]
  assert "[1/6] load" in printed and "[6/6] figures done" in printed
  assert "Time per phase: load" in printed and "FVD skipped" in printed


@pytest.mark.slow
def test_evaluate_script_on_the_saved_model_agrees_with_the_checkpoint(evaluated):
  checkpoint, saved = evaluated["checkpoint"]["report"], evaluated["saved_model"]["report"]
  assert saved["run"]["saved_model"].endswith("saved_model") and saved["run"]["step"] is None
  # Detection sees the same uint8 frames and the keypoint samples use the same seeds.
  for which in ("detected", "best_of_samples", "repeat_last"):
    np.testing.assert_allclose(saved["tracking"][which]["per_time_step"]["coords"],
                               checkpoint["tracking"][which]["per_time_step"]["coords"],
                               rtol=1e-3, atol=1e-4, err_msg=which)
  # The SavedModel returns frames quantised to uint8: the image metrics agree closely.
  np.testing.assert_allclose(saved["video"]["psnr"]["closest"],
                             checkpoint["video"]["psnr"]["closest"], atol=0.05)


@pytest.mark.slow
def test_evaluate_script_tracking_only(tiny_run, evaluated):
  # --num_video_windows 0: what scripts/paper_figures.py asks of the Figure 4 and 5 variants.
  output_dir = tiny_run["root"] / "out_tracking_only"
  report, _ = run_quietly(evaluate.main, [
      "--run_dir", str(tiny_run["run_dir"]), "--data_dir", str(tiny_run["data_dir"]),
      "--output", str(output_dir)] + EVAL_FLAGS + ["--num_video_windows", "0", "--skip_fvd"])
  assert "skipped" in report["video"] and "skipped" in report["fvd"]
  full = evaluated["checkpoint"]["report"]["tracking"]
  assert report["tracking"]["detected"] == full["detected"]
  assert report["tracking"]["best_of_samples"] == full["best_of_samples"]
  assert os.path.isfile(output_dir / "tracking_error.png")


@pytest.mark.parametrize("flags, gpu, expected", [
    ({"fpu", "avx512f", "amx_bf16"}, False, "bfloat16"),
    ({"fpu", "avx512f", "avx512_bf16"}, False, "bfloat16"),
    ({"fpu", "avx512f", "avx512_vnni"}, False, "float32"),
    (set(), True, "bfloat16"),
])
def test_vgg_precision_auto_follows_the_hardware(monkeypatch, flags, gpu, expected):
  monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
  monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
  monkeypatch.setattr(tf.config, "list_physical_devices",
                      lambda kind: ["gpu:0"] if gpu and kind == "GPU" else [])
  assert evaluate.resolve_vgg_precision("auto") == expected
  assert evaluate.resolve_vgg_precision("float32") == "float32"


def test_saved_model_adapter_needs_a_saved_model(tmp_path):
  with pytest.raises(FileNotFoundError, match="is not a SavedModel directory"):
    model_calls.SavedModelAdapter(str(tmp_path), None)


@pytest.fixture
def configured_run_dir(tmp_path):
  """A run directory holding only the config.json of a tiny Basketball run."""
  run_dir = tmp_path / "run"
  run_dir.mkdir()
  presets.save_run_config(helpers.tiny_config(dataset_config="tiny"),
                          str(run_dir / run_dir_lib.CONFIG_FILE))
  return run_dir


@pytest.mark.parametrize("flags, message", [
    (["--num_samples", "0"], "--num_samples must be >= 1, got 0"),
    (["--fvd_clips", "1"], "--fvd_clips must be 0 (all) or >= 2"),
    (["--num_video_windows", "-1"], "--num_video_windows must be >= 0, got -1"),
    (["--num_figure_examples", "-1"], "--num_figure_examples must be >= 0, got -1"),
    (["--checkpoint", "/nonexistent/ckpt.keras"], "--checkpoint /nonexistent/ckpt.keras does "
                                                  "not exist"),
    (["--saved_model", "/nonexistent/sm"], "--saved_model /nonexistent/sm is not a SavedModel "
                                           "directory"),
    (["--vgg_weights", "/nonexistent/vgg.h5"], "--vgg_weights /nonexistent/vgg.h5 does not "
                                               "exist"),
    (["--checkpoint", "a", "--saved_model", "b"], "not allowed with argument"),
    (["--best_sample_rule", "max"], "invalid choice: 'max'"),
    (["--vgg_layers", "fc1"], "vgg_layers must be names from"),
])
def test_evaluate_script_bad_arguments(configured_run_dir, capsys, flags, message):
  with pytest.raises(SystemExit) as exit_info:
    evaluate.main(["--run_dir", str(configured_run_dir), "--data_dir",
                   str(configured_run_dir / "data")] + flags)
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


def test_evaluate_script_needs_a_run_directory(tmp_path, capsys):
  with pytest.raises(SystemExit):
    evaluate.main(["--run_dir", str(tmp_path)])
  assert f"{tmp_path}/config.json does not exist" in capsys.readouterr().err
