"""Tests of the command-line entry points: the top-level scripts, the console commands of
pyproject.toml, the downstream dispatcher, and the package layout that `pip install .` ships."""

import json
import os
import subprocess
import sys
import tomllib
import types

import pytest

import compare
import evaluate
import train
from video_structure.cli import compare as compare_cli
from video_structure.cli import downstream as downstream_cli
from video_structure.cli import evaluate as evaluate_cli
from video_structure.cli import train as train_cli

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pyproject():
  with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as f:
    return tomllib.load(f)


def test_top_level_scripts_run_the_cli_mains():
  assert train.main is train_cli.main
  assert evaluate.main is evaluate_cli.main
  assert compare.main is compare_cli.main


def test_console_commands_name_existing_functions():
  scripts = _pyproject()["project"]["scripts"]
  assert sorted(scripts) == ["video-structure-compare", "video-structure-downstream",
                             "video-structure-evaluate", "video-structure-train"]
  for command, target in scripts.items():
    module_name, function_name = target.split(":")
    module = __import__(module_name, fromlist=[function_name])
    assert callable(getattr(module, function_name)), command


def test_install_ships_only_the_video_structure_packages():
  config = _pyproject()["tool"]["setuptools"]
  assert config["packages"]["find"]["include"] == ["video_structure", "video_structure.*"]
  assert config["packages"]["find"]["namespaces"] is False
  assert config["dynamic"]["dependencies"] == {"file": ["requirements.txt"]}
  # Without namespace packages a folder without __init__.py would silently be left out of the
  # install: every folder of Python files in the package must have one.
  for root, directories, files in os.walk(os.path.join(REPO_ROOT, "video_structure")):
    directories[:] = [d for d in directories if d != "__pycache__"]
    if any(name.endswith(".py") for name in files):
      assert "__init__.py" in files, root


def test_downstream_dispatches_to_the_named_experiment(monkeypatch):
  calls = []
  fake = types.ModuleType("video_structure.downstream.counterfactual")
  fake.main = lambda argv: calls.append(argv) or "report"
  monkeypatch.setitem(sys.modules, "video_structure.downstream.counterfactual", fake)
  assert downstream_cli.main(["counterfactual", "--run_dir", "RUN", "--num_samples", "2"]) == (
      "report")
  assert calls == [["--run_dir", "RUN", "--num_samples", "2"]]


def test_downstream_help_and_errors(capsys):
  assert downstream_cli.main(["--help"]) is None
  printed = capsys.readouterr().out
  for name in downstream_cli.EXPERIMENTS:
    assert name in printed
  for argv, problem in (([], "the experiment is missing"),
                        (["tracking"], "unknown experiment 'tracking'")):
    with pytest.raises(SystemExit) as exit_info:
      downstream_cli.main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        f"video-structure-downstream: error: {problem}; choose from action_recognition, "
        "reward_prediction, counterfactual (see video-structure-downstream --help).\n")


# Each module as `python -m` runs it (runpy, with `__name__ == "__main__"`), all in one fresh
# interpreter: one TensorFlow start-up instead of one per module.
RUN_MODULES_SCRIPT = """
import contextlib, io, json, runpy, sys
missing, experiments = sys.argv[1], sys.argv[2:]
results = {}
for experiment in experiments:
  sys.argv = [experiment, "--run_dir", missing]
  stderr = io.StringIO()
  with contextlib.redirect_stderr(stderr):
    try:
      runpy.run_module(f"video_structure.downstream.{experiment}", run_name="__main__",
                       alter_sys=True)
      status = 0
    except SystemExit as exit_info:
      status = exit_info.code
  results[experiment] = [status, stderr.getvalue()]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def downstream_module_errors(tmp_path_factory):
  """{experiment: (exit status, stderr, cache dir, missing run dir)} of `python -m
  video_structure.downstream.<experiment> --run_dir <missing>`."""
  tmp_path = tmp_path_factory.mktemp("downstream_modules")
  environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
      p for p in [REPO_ROOT, os.environ.get("PYTHONPATH")] if p),
                     VIDEO_STRUCTURE_CACHE=str(tmp_path))
  missing = str(tmp_path / "missing_run")
  completed = subprocess.run(
      [sys.executable, "-c", RUN_MODULES_SCRIPT, missing] + list(downstream_cli.EXPERIMENTS),
      cwd=str(tmp_path), env=environment, capture_output=True, text=True, timeout=300)
  assert completed.returncode == 0, completed.stderr[-3000:]
  results = json.loads(completed.stdout.strip().splitlines()[-1])
  return {name: (status, stderr, tmp_path, missing) for name, (status, stderr) in results.items()}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", downstream_cli.EXPERIMENTS)
def test_downstream_module_errors_are_short(experiment, downstream_module_errors):
  """`python -m video_structure.downstream.<experiment>` reports a user error in two lines."""
  status, stderr, tmp_path, missing = downstream_module_errors[experiment]
  assert status == 2, stderr
  ours = stderr.split(f"python -m video_structure.downstream.{experiment}: error: ")
  assert len(ours) == 2, stderr
  assert ours[1].splitlines() == [
      f"--run_dir {missing!r}: no such directory (expected a run directory written by "
      "train.py).",
      f"(traceback in {tmp_path}/logs/{experiment}-error.log; --debug prints it here)"]


