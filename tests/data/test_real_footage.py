"""Tests of scripts/real_footage.py: the commands still to run and the printed summary."""

import json

import pytest

from tests import helpers


@pytest.fixture(scope="module")
def script():
  return helpers.load_script("real_footage")


def test_the_plan_fetches_trains_and_evaluates_what_is_missing(script, tmp_path):
  root, footage = tmp_path / "runs", tmp_path / "footage"
  labels = [label for label, _ in script.plan(str(root), ["vtest", "bikes"], str(footage))]
  assert labels == ["fetch vtest", "fetch bikes", "train on vtest", "evaluate vtest",
                    "train on bikes", "evaluate bikes"]
  commands = dict(script.plan(str(root), ["vtest"], str(footage), python="py"))
  assert commands["train on vtest"][2:] == ["--dataset", str(footage / "vtest"), "--run_dir",
                                            str(root / "vtest"), "--crop", "336,96,384,384"]
  (footage / "vtest").mkdir(parents=True)
  (root / "vtest").mkdir(parents=True)
  (root / "vtest" / "evaluation.json").write_text("{}")  # Trained: evaluate only.
  assert [label for label, _ in script.plan(str(root), ["vtest"], str(footage))] == [
      "evaluate vtest"]
  (root / "vtest" / "evaluation").mkdir()
  (root / "vtest" / "evaluation" / "evaluation.json").write_text("{}")
  assert script.plan(str(root), ["vtest"], str(footage)) == []


def test_the_summary_reads_reconstruction_prediction_and_placement(script):
  curves = lambda closest, mean, repeat: {"closest": [0.0, 0.0, closest],
                                          "sample_mean": [mean, mean + 0.2, 0.0],
                                          "repeat_last": [None, None, repeat]}
  report = {"data": {"num_observed": 2},
            "video": {"num_windows": 5, "num_samples": 20, "ssim": curves(0.7, 0.8, 0.6),
                      "psnr": curves(21.0, 25.0, 19.5), "lpips_alex": curves(0.1, 0.0, 0.2),
                      "lpips_vgg": {"skipped": "no weights"}},
            "keypoints_on_motion": {"share_on_motion": 0.834, "chance": 0.12}}
  lines = script.summary_lines("vtest", json.loads(json.dumps(report)))
  assert lines == [
      "vtest: 5 test windows x 20 samples",
      "  reconstruction SSIM (observed steps, mean of samples) 0.900; last predicted step: "
      "closest 0.700, repeat-last frame 0.600",
      "  reconstruction PSNR (observed steps, mean of samples) 25.100; last predicted step: "
      "closest 21.000, repeat-last frame 19.500",
      "  lpips_alex at the last predicted step (lower is closer): closest 0.100, repeat-last "
      "frame 0.200",
      "  keypoints on moving pixels: 83% (chance 12%)"]


def test_an_unknown_clip_is_refused(script, capsys):
  with pytest.raises(SystemExit):
    script.main(["--clips", "vtest,street", "--dry_run"])
  assert "--clips: unknown ['street']" in capsys.readouterr().err
