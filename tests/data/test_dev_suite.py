"""Tests of scripts/dev_suite.py: reading a finished run, the verdict against the targets, the
table, and resuming (no training here: the runs are hand-made evaluation JSONs)."""

import json

import pytest

from tests import helpers
from video_structure.data import synthetic_scenes


@pytest.fixture(scope="module")
def script():
  return helpers.load_script("dev_suite")


def write_run(directory, per_object_percent, mean_percent, best_px, repeat_px):
  """A run directory holding train.py's end-of-training evaluation.json."""
  directory.mkdir(parents=True)
  tracking = {
      "num_samples": 20,
      "detected": {"per_object_mean": {name: {"percent_of_width": value}
                                       for name, value in per_object_percent.items()},
                   "mean": {"percent_of_width": mean_percent}},
      "prediction": {"best_of_samples_px_last_step": best_px,
                     "repeat_last_px_last_step": repeat_px}}
  (directory / "evaluation.json").write_text(json.dumps({"tracking": tracking}))


def test_a_finished_run_is_read_and_judged(script, tmp_path):
  assert script.read_result(str(tmp_path / "missing")) is None
  write_run(tmp_path / "a", {"object_0": 1.0, "object_1": 6.5}, 3.75, 5.0, 9.0)
  result = script.read_result(str(tmp_path / "a"))
  assert result["worst_object_percent"] == 6.5 and result["mean_percent"] == 3.75
  assert script.verdict(result, 12.0) == ["object_1 6.5% > 5.0%", "mean 3.8% > 3.0%"]
  write_run(tmp_path / "b", {"object_0": 1.0, "object_1": 2.0}, 1.5, 9.5, 9.0)
  result = script.read_result(str(tmp_path / "b"))
  assert script.verdict(result, 16.0) == ["best of samples not below repeat-last",
                                          "16.0 min > 15 min"]
  write_run(tmp_path / "c", {"object_0": 5.0}, 3.0, 4.0, 9.0)
  assert script.verdict(script.read_result(str(tmp_path / "c")), 15.0) == []


def test_finished_runs_are_not_retrained_and_the_table_shows_the_worst_seed(
    script, tmp_path, capsys, monkeypatch):
  name = "pair_collide"
  data_root, root = tmp_path / "data", tmp_path / "runs"
  calls = []
  monkeypatch.setattr(script.synthetic_scenes, "write_scene_set",
                      lambda spec, directory: calls.append(directory))
  write_run(root / name / "seed0", {"object_0": 0.8, "object_1": 1.2}, 1.0, 4.0, 9.0)
  write_run(root / name / "seed1", {"object_0": 0.9, "object_1": 7.0}, 3.9, 4.0, 9.0)
  assert script.main(["--sets", name, "--seeds", "0,1", "--root", str(root),
                      "--data_root", str(data_root)]) == 0
  output = capsys.readouterr().out
  assert calls == [str(data_root / name)]
  assert "[1/1] train" not in output  # Nothing retrained.
  assert "worst seed 1: mean 3.9%, worst object 7.0%" in output
  assert "object_1 7.0% > 5.0%; mean 3.9% > 3.0%" in output
  summary = json.loads((root / "summary.json").read_text())
  assert set(summary["sets"][name]) == {"0", "1"}
  assert summary["sets"][name]["0"]["misses"] == []


def test_a_dry_run_lists_the_training_commands(script, tmp_path, capsys):
  assert script.main(["--sets", "pair_collide", "--random_sets", "5", "--seeds", "2",
                      "--root", str(tmp_path / "runs"), "--data_root", str(tmp_path / "d"),
                      "--dry_run"]) == 0
  output = capsys.readouterr().out
  random_name = synthetic_scenes.make_random_spec(5).name
  for set_name in ("pair_collide", random_name):
    assert (f"--dataset {tmp_path / 'd' / set_name} --seed 2 --run_dir "
            f"{tmp_path / 'runs' / set_name / 'seed2'}") in output
  assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("argv, message", [
    (["--sets", "pair_collide,nonexistent"], "--sets: unknown ['nonexistent']"),
    (["--seeds", "one"], "--seeds must be comma-separated"),
    (["--sets", "", "--random_sets", ""], "nothing to run"),
])
def test_bad_flags_are_refused_naming_the_flag(script, capsys, argv, message):
  with pytest.raises(SystemExit):
    script.main(argv + ["--dry_run"])
  assert message in capsys.readouterr().err
