"""Tests of comparing evaluated runs (`evaluation/compare.py`, `cli/compare.py`) on hand-made
evaluation JSONs with known values."""

import contextlib
import io
import json
import math
import os

import numpy as np
import pytest

from video_structure.cli import compare as compare_script
from video_structure.evaluation import compare
from video_structure.evaluation import figures
from video_structure.evaluation import report as report_lib

# Student t 0.975 quantiles (tables; scipy.stats.t.ppf agrees to 1e-14).
T_975 = {1: 12.706204736174698, 2: 4.302652729749464, 4: 2.7764451051977934,
         9: 2.2621571627982053, 29: 2.045229642132703}


def fake_report(ssim_closest, fvd_value=100.0, tracking=(1.0, 2.0, 3.0), vgg=True,
                num_observed=1):
  """A minimal evaluate.py report with the given curves (length T)."""
  curves = lambda values: {"closest": list(values), "furthest": [v - 0.1 for v in values]}
  report = {
      "schema_version": report_lib.SCHEMA_VERSION,
      "data": {"num_observed": num_observed},
      "settings": {"num_video_samples": 20, "num_tracking_samples": 50,
                   "num_video_windows": 100, "fvd_clips": 128},
      "video": {"ssim": curves(ssim_closest), "psnr": curves([20.0] * len(ssim_closest)),
                "vgg_cosine": curves(ssim_closest) if vgg else {"skipped": "no weights"}},
      "tracking": {name: {"per_time_step": {"pixels": list(tracking)}}
                   for name in ("best_of_samples", "repeat_last", "detected")},
      "fvd": {"fvd": fvd_value} if fvd_value is not None else {"skipped": "no I3D"},
  }
  return report


def write_report(directory, report):
  """Writes report as <directory>/evaluation/evaluation.json (a run directory's layout)."""
  path = directory / "evaluation" / "evaluation.json"
  path.parent.mkdir(parents=True)
  path.write_text(json.dumps(report))
  return path


def test_student_t_quantiles_match_the_table():
  for df, expected in T_975.items():
    assert compare.student_t_quantile(0.975, df) == pytest.approx(expected, rel=1e-12), df
  assert compare.student_t_quantile(0.995, 3) == pytest.approx(5.840909309733349, rel=1e-12)
  assert compare.student_t_two_sided_probability(0.0, 3) == 0.0
  assert compare.student_t_two_sided_probability(T_975[4], 4) == pytest.approx(0.95, abs=1e-14)
  with pytest.raises(ValueError, match="df must be an integer >= 1"):
    compare.student_t_two_sided_probability(1.0, 0)
  with pytest.raises(ValueError, match=r"probability must be in \(0.5, 1\)"):
    compare.student_t_quantile(0.4, 3)


def test_confidence_band_exact_numbers():
  band = compare.confidence_band([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]])
  # Mean [3, 6]; std (ddof 1) [2, 4]; half width t(0.975, 2) * std / sqrt(3).
  half_width = T_975[2] * np.array([2.0, 4.0]) / math.sqrt(3)
  assert band["num_seeds"] == 3 and band["mean"] == [3.0, 6.0] and band["std"] == [2.0, 4.0]
  np.testing.assert_allclose(band["half_width"], half_width, rtol=1e-12)
  np.testing.assert_allclose(band["lower"], [3.0, 6.0] - half_width, rtol=1e-12)
  np.testing.assert_allclose(band["upper"], [3.0, 6.0] + half_width, rtol=1e-12)
  single = compare.confidence_band([7.0])
  assert single == {"num_seeds": 1, "mean": 7.0, "std": None, "half_width": None,
                    "lower": None, "upper": None}
  with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
    compare.confidence_band([1.0, 2.0], confidence=1.0)


@pytest.fixture
def two_variants(tmp_path):
  """Variant `a`: two seeds with known values; variant `b`: one seed without VGG or FVD."""
  write_report(tmp_path / "a_seed0", fake_report([0.5, 0.6, 0.7], 100.0, (1.0, 2.0, 3.0)))
  write_report(tmp_path / "a_seed1", fake_report([0.7, 0.8, 0.9], 120.0, (3.0, 4.0, 7.0)))
  write_report(tmp_path / "b_seed0", fake_report([0.4, 0.4, 0.4], None, (2.0, 2.0, 2.0),
                                                 vgg=False))
  return tmp_path


def test_compare_draws_bands_from_two_fake_jsons(two_variants, monkeypatch):
  drawn = {}
  original = figures.save_line_panels

  def capture(path, panels, **kwargs):
    drawn[os.path.basename(path)] = panels
    return original(path, panels, **kwargs)

  monkeypatch.setattr(figures, "save_line_panels", capture)
  variants = compare.parse_run_specs([f"a={two_variants}/a_seed*",
                                      f"b={two_variants}/b_seed0"])
  output = two_variants / "comparison"
  summary = compare.compare_runs(variants, str(output))

  a = summary["variants"]["a"]
  assert a["num_seeds"] == 2 and len(a["runs"]) == 2
  ssim = a["curves"]["video.ssim.closest"]
  # Seeds differ by 0.2 at every step: std sqrt(0.02), half width t(0.975, 1) * std / sqrt(2)
  # = 12.7062... * 0.1.
  np.testing.assert_allclose(ssim["mean"], [0.6, 0.7, 0.8], rtol=1e-12)
  np.testing.assert_allclose(ssim["half_width"], [T_975[1] * 0.1] * 3, rtol=1e-9)
  np.testing.assert_allclose(ssim["lower"], np.array([0.6, 0.7, 0.8]) - T_975[1] * 0.1,
                             rtol=1e-9)
  np.testing.assert_allclose(ssim["upper"], np.array([0.6, 0.7, 0.8]) + T_975[1] * 0.1,
                             rtol=1e-9)
  tracking = a["curves"]["tracking.best_of_samples"]
  assert tracking["mean"] == [2.0, 3.0, 5.0]
  np.testing.assert_allclose(tracking["half_width"], T_975[1] * np.array([1.0, 1.0, 2.0]),
                             rtol=1e-12)
  assert a["fvd"]["values"] == [100.0, 120.0] and a["fvd"]["mean"] == 110.0
  assert a["fvd"]["half_width"] == pytest.approx(T_975[1] * 10.0, rel=1e-12)
  assert a["fvd"]["lower"] == pytest.approx(110.0 - T_975[1] * 10.0, rel=1e-12)

  b = summary["variants"]["b"]
  assert b["num_seeds"] == 1 and b["curves"]["video.ssim.closest"]["lower"] is None
  assert "video.vgg_cosine.closest" not in b["curves"]
  assert "missing" in b["fvd"] and b["notes"] == []

  # The figures: bands for `a`, none for `b`, whose legend says so.
  lines = {line["label"]: line for panel in drawn["video_metrics.png"]
           if panel["title"] == "SSIM (closest)" for line in panel["lines"]}
  assert lines["a (2 seeds)"]["lower"] == ssim["lower"]
  assert lines["b (1 seed, no band)"]["lower"] is None
  assert [panel["title"] for panel in drawn["video_metrics.png"]][:2] == [
      "VGG cosine similarity (closest)", "VGG cosine similarity (furthest)"]
  for name in ("summary.json", "video_metrics.png", "tracking_error.png", "fvd.png"):
    assert (output / name).stat().st_size > 100, name
  with open(output / "summary.json") as f:
    assert json.load(f)["variants"]["a"]["curves"]["video.ssim.closest"]["mean"] == ssim["mean"]
  text = "\n".join(compare.summary_lines(summary))
  assert "a (2 seeds): FVD 110.0 +- 127.1" in text


def test_a_metric_missing_in_some_seeds_is_left_out_with_a_note(tmp_path):
  first = write_report(tmp_path / "s0", fake_report([0.5, 0.6]))
  second = write_report(tmp_path / "s1", fake_report([0.5, 0.6], vgg=False, fvd_value=None))
  summary = compare.summarize_variants({"v": [str(first), str(second)]})
  variant = summary["variants"]["v"]
  assert "video.vgg_cosine.closest" not in variant["curves"]
  assert "video.ssim.closest" in variant["curves"]
  assert any(note.startswith("video.vgg_cosine.closest: missing or skipped in 1 of 2 runs")
             for note in variant["notes"])
  assert any(note.startswith("FVD missing or skipped in 1 of 2 runs") for note in variant["notes"])


def test_parse_run_specs_resolves_runs_outputs_and_files(two_variants):
  run_dir = two_variants / "a_seed0"
  json_file = two_variants / "a_seed1" / "evaluation" / "evaluation.json"
  output_dir = two_variants / "b_seed0" / "evaluation"
  variants = compare.parse_run_specs([f"x={run_dir},{json_file}", f"y={output_dir}"])
  assert variants == {"x": [str(run_dir / "evaluation" / "evaluation.json"), str(json_file)],
                      "y": [str(output_dir / "evaluation.json")]}


@pytest.mark.parametrize("specs, error, message", [
    ([], ValueError, "--runs needs at least one"),
    (["nodelimiter"], ValueError, "must look like NAME=PATH"),
    (["=somewhere"], ValueError, "empty variant name"),
    (["a="], ValueError, "lists no path after '='"),
    (["a={root}/nothing_*"], FileNotFoundError, "matches nothing"),
    (["a={root}/missing"], FileNotFoundError, "does not exist"),
    (["a={root}/a_seed0", "a={root}/a_seed1"], ValueError, "variant 'a' is given twice"),
    (["a={root}/a_seed0", "b={root}/a_seed0"], ValueError, "is listed for both 'a' and 'b'"),
    (["a={root}"], FileNotFoundError, "no evaluation JSON"),
])
def test_parse_run_specs_bad_arguments(two_variants, specs, error, message):
  with pytest.raises(error, match=message.replace("(", r"\(").replace("*", r"\*")):
    compare.parse_run_specs([spec.format(root=two_variants) for spec in specs])


def test_old_or_inconsistent_reports_are_refused(tmp_path):
  old = tmp_path / "old.json"
  old.write_text(json.dumps({"tracking": {}, "prediction": {}}))  # train.py's quick report.
  with pytest.raises(ValueError,
                     match="no schema_version; written by an older version of train.py"):
    compare.summarize_variants({"v": [str(old)]})
  future = tmp_path / "future.json"
  future.write_text(json.dumps(dict(fake_report([0.5]), schema_version=99)))
  with pytest.raises(ValueError, match=r"schema_version 99, this compare reads versions \(1, 2\)"):
    compare.summarize_variants({"v": [str(future)]})
  short = write_report(tmp_path / "short", fake_report([0.5, 0.6]))
  long = write_report(tmp_path / "long", fake_report([0.5, 0.6, 0.7]))
  with pytest.raises(ValueError,
                     match=r"video.vgg_cosine.closest has different lengths across runs \[2, 3\]"):
    compare.summarize_variants({"v": [str(short), str(long)]})
  other = write_report(tmp_path / "other", fake_report([0.5, 0.6], num_observed=2))
  with pytest.raises(ValueError, match=r"different numbers of frames \[1, 2\]"):
    compare.summarize_variants({"v": [str(short)], "w": [str(other)]})


def test_compare_script(two_variants, capsys):
  output = two_variants / "cli"
  with contextlib.redirect_stdout(io.StringIO()) as printed:
    summary = compare_script.main(["--runs", f"a={two_variants}/a_seed0,{two_variants}/a_seed1",
                                   f"b={two_variants}/b_seed0", "--output", str(output)])
  assert list(summary["variants"]) == ["a", "b"]
  assert "Wrote" in printed.getvalue() and (output / "fvd.png").exists()
  with pytest.raises(SystemExit) as exit_info:
    compare_script.main(["--runs", "broken", "--output", str(output)])
  assert exit_info.value.code == 2
  assert "must look like NAME=PATH" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    compare_script.main(["--runs", f"a={two_variants}/a_seed0", "--output", str(output),
                         "--confidence", "1.5"])
  assert "--confidence must be in (0, 1)" in capsys.readouterr().err
