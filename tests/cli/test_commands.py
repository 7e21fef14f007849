"""Tests of the command-line entry points: the top-level scripts, the console commands of
pyproject.toml, the downstream dispatcher, and the package layout that `pip install .` ships."""

import ast
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


@pytest.mark.slow
@pytest.mark.parametrize("experiment", downstream_cli.EXPERIMENTS)
def test_downstream_module_errors_are_short(experiment, tmp_path):
  """`python -m video_structure.downstream.<experiment>` reports a user error in two lines."""
  environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
      p for p in [REPO_ROOT, os.environ.get("PYTHONPATH")] if p),
                     VIDEO_STRUCTURE_CACHE=str(tmp_path))
  missing = str(tmp_path / "missing_run")
  completed = subprocess.run(
      [sys.executable, "-m", f"video_structure.downstream.{experiment}", "--run_dir", missing],
      cwd=str(tmp_path), env=environment, capture_output=True, text=True, timeout=300)
  assert completed.returncode == 2, completed.stderr
  ours = completed.stderr.split(f"python -m video_structure.downstream.{experiment}: error: ")
  assert len(ours) == 2, completed.stderr
  assert ours[1].splitlines() == [
      f"--run_dir {missing!r}: no such directory (expected a run directory written by "
      "train.py).",
      f"(traceback in {tmp_path}/logs/{experiment}-error.log; --debug prints it here)"]


@pytest.mark.slow
def test_model_package_imports_nothing_else_of_the_project():
  """`video_structure.model` is Figure 1 only: importing it (and every module in it) must not
  load the data, training, evaluation, downstream or recipe code."""
  script = (
      "import pkgutil, importlib, sys\n"
      "import video_structure.model as model\n"
      "for info in pkgutil.iter_modules(model.__path__):\n"
      "  importlib.import_module('video_structure.model.' + info.name)\n"
      "print(sorted(m for m in sys.modules if m.startswith('video_structure')))\n")
  environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                     PYTHONPATH=os.pathsep.join(
                         p for p in [REPO_ROOT, os.environ.get("PYTHONPATH")] if p))
  completed = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=environment,
                             capture_output=True, text=True, timeout=300)
  assert completed.returncode == 0, completed.stderr[-3000:]
  loaded = ast.literal_eval(completed.stdout.strip().splitlines()[-1])
  assert "video_structure.model.struct_vrnn" in loaded
  outside = [name for name in loaded
             if name not in ("video_structure", "video_structure.model")
             and not name.startswith("video_structure.model.")]
  assert outside == [], outside
