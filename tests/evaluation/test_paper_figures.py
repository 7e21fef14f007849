"""Tests of scripts/paper_figures.py: which commands remain, and the figures drawn from
hand-made evaluation JSONs."""

import io
import json
import sys

import pytest

from tests import helpers
from tests.evaluation.test_compare import fake_report
from tests.evaluation.test_compare import T_975
from tests.evaluation.test_compare import write_report
from video_structure.model import config as config_lib


@pytest.fixture(scope="module")
def script():
  return helpers.load_script("paper_figures")


def test_the_figures_cover_every_model_variant(script):
  assert set(script.VARIANTS) == set(config_lib.MODEL_VARIANTS)
  assert script.VARIANTS[:2] == ("struct_vrnn", "cnn_vrnn")  # Figure 3's first.


def test_the_plan_trains_then_evaluates_and_skips_what_is_done(script, tmp_path):
  root = str(tmp_path)
  commands = script.plan(root, ["struct_vrnn", "struct_rnn"], [0, 1], "/data", python="py")
  assert [label for label, _ in commands] == [
      "train struct_vrnn seed 0", "evaluate struct_vrnn seed 0",
      "train struct_vrnn seed 1", "evaluate struct_vrnn seed 1",
      "train struct_rnn seed 0", "evaluate struct_rnn seed 0",
      "train struct_rnn seed 1", "evaluate struct_rnn seed 1"]
  train = commands[0][1]
  assert train[0] == "py" and train[1].endswith("train.py")
  assert train[2:] == ["--dataset", "basketball", "--model", "struct_vrnn", "--seed", "0",
                       "--run_dir", f"{root}/struct_vrnn/seed0", "--data_dir", "/data"]
  # Video metrics and FVD only for the Figure 3 variants.
  assert commands[1][1][2:] == ["--run_dir", f"{root}/struct_vrnn/seed0", "--data_dir", "/data"]
  assert commands[5][1][-3:] == ["--num_video_windows", "0", "--skip_fvd"]
  # Training finished (train.py's evaluation.json): evaluate only; evaluated: nothing.
  (tmp_path / "struct_vrnn" / "seed0").mkdir(parents=True)
  (tmp_path / "struct_vrnn" / "seed0" / "evaluation.json").write_text("{}")
  write_report(tmp_path / "struct_rnn" / "seed1", fake_report([0.5, 0.4]))
  labels = [label for label, _ in script.plan(root, ["struct_vrnn", "struct_rnn"], [0, 1],
                                              "/data")]
  assert labels == ["evaluate struct_vrnn seed 0", "train struct_vrnn seed 1",
                    "evaluate struct_vrnn seed 1", "train struct_rnn seed 0",
                    "evaluate struct_rnn seed 0"]


def test_figures_are_drawn_from_the_evaluated_runs_with_bands(script, tmp_path):
  for seed, value in enumerate((0.5, 0.7)):
    write_report(tmp_path / "struct_vrnn" / f"seed{seed}", fake_report([value, value]))
    write_report(tmp_path / "cnn_vrnn" / f"seed{seed}", fake_report([0.3, 0.3],
                                                                     fvd_value=200.0 + seed))
  stream = io.StringIO()
  summaries = script.draw_figures(str(tmp_path), list(script.VARIANTS), [0, 1, 2], stream)
  figure3 = summaries["figure3"]["variants"]
  assert set(figure3) == {"struct_vrnn", "cnn_vrnn"}
  curve = figure3["struct_vrnn"]["curves"]["video.ssim.closest"]
  assert figure3["struct_vrnn"]["num_seeds"] == 2
  # Mean 0.6, half-width t(0.975, 1) * std(0.5, 0.7) / sqrt(2) = 12.706 * 0.1.
  assert curve["mean"] == pytest.approx([0.6, 0.6])
  assert curve["half_width"][0] == pytest.approx(T_975[1] * 0.1, rel=1e-9)
  assert figure3["cnn_vrnn"]["fvd"]["values"] == [200.0, 201.0]
  assert set(summaries["figure4"]["variants"]) == {"struct_vrnn", "cnn_vrnn"}
  assert set(summaries["figure5"]["variants"]) == {"struct_vrnn"}
  for figure in ("figure3", "figure4", "figure5"):
    assert json.loads((tmp_path / figure / "summary.json").read_text())["variants"]
    assert (tmp_path / figure / "tracking_error.png").stat().st_size > 1000
  assert (tmp_path / "figure3" / "fvd.png").stat().st_size > 1000
  assert "figure5" in stream.getvalue()


def test_bad_flags_are_refused_naming_the_flag(script, capsys):
  for argv, message in ((["--variants", "struct_vrnn,foo"], "--variants: unknown ['foo']"),
                        (["--seeds", "0,x"], "--seeds must be comma-separated")):
    with pytest.raises(SystemExit):
      script.main(argv + ["--dry_run"])
    assert message in capsys.readouterr().err


def test_a_dry_run_lists_the_commands(script, tmp_path, capsys):
  assert script.main(["--root", str(tmp_path), "--seeds", "4", "--variants", "cnn_vrnn",
                      "--dry_run"]) == 0
  output = capsys.readouterr().out
  assert "2 commands to run (1 variants x 1 seeds" in output
  assert f"--run_dir {tmp_path}/cnn_vrnn/seed4" in output and sys.executable in output
  assert not (tmp_path / "cnn_vrnn").exists()
