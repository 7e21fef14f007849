"""Tests of the console wrapper (video_structure/cli/console.py): what a command prints on an
error, Ctrl-C and --debug, its exit status and its log file; TensorFlow's start-up lines are
kept off the console.

The subprocess tests run `python train.py` and `video-structure-train` the way a user does: with
TF_CPP_MIN_LOG_LEVEL unset (conftest.py sets it for this process) and every output line counted.
"""

import argparse
import os
import subprocess
import sys

import pytest
from absl import logging as absl_logging

from video_structure import presets
from video_structure.cli import console

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_SCRIPT = os.path.join(REPO_ROOT, "train.py")
TRAIN_COMMAND = os.path.join(os.path.dirname(sys.executable), "video-structure-train")


@pytest.fixture(name="cache_dir")
def fixture_cache_dir(tmp_path, monkeypatch):
  """The cache directory (and so the error logs) of this test."""
  monkeypatch.setenv("VIDEO_STRUCTURE_CACHE", str(tmp_path / "cache"))
  return tmp_path / "cache"


def run_in_process(function, capsys, argv=(), **kwargs):
  """`console.run_command(function, "test", argv, prog="prog")`: (status, stderr lines)."""
  status = console.run_command(function, "test", argv=list(argv), prog="prog", **kwargs)
  return status, capsys.readouterr().err.splitlines()


def raiser(error):
  def main(argv):  # pylint: disable=unused-argument
    raise error
  return main


# In process: the classification of errors, the lines and the log. ------------------------------

def test_success_passes_the_arguments_without_debug_and_returns_0(cache_dir, capsys):
  calls = []
  status, lines = run_in_process(calls.append, capsys, ["--a", "1", "--debug", "--b"])
  assert (status, lines, calls) == (0, [], [["--a", "1", "--b"]])
  assert not os.path.exists(cache_dir)


def test_bug_prints_its_first_line_and_the_log_path(cache_dir, capsys):
  status, lines = run_in_process(raiser(RuntimeError("boom\nsecond line")), capsys)
  log_path = os.path.join(cache_dir, "logs", "test-error.log")
  assert status == 1
  assert lines == ["prog: unexpected error, probably a bug: RuntimeError: boom",
                   f"(traceback in {log_path}, for a bug report; --debug prints it here)"]
  with open(log_path, encoding="utf-8") as log:
    text = log.read()
  assert "Traceback (most recent call last):" in text
  assert "RuntimeError: boom\nsecond line" in text
  assert "in main\n    raise error" in text


def test_value_error_of_a_library_is_a_bug(cache_dir, capsys):
  # Raised outside video_structure/ (here: by this test), so not a validation message of ours.
  status, lines = run_in_process(raiser(ValueError("shapes differ")), capsys)
  assert status == 1
  assert lines[0] == "prog: unexpected error, probably a bug: ValueError: shapes differ"


def test_value_error_of_the_project_is_a_user_error(cache_dir, capsys):
  def main(argv):  # pylint: disable=unused-argument
    presets.get_config("basketball", "cpu", num_keypoints=0)

  status, lines = run_in_process(main, capsys)
  log_path = os.path.join(cache_dir, "logs", "test-error.log")
  assert status == 2
  assert len(lines) == 2
  assert lines[0].startswith("prog: error: ") and "num_keypoints" in lines[0]
  assert lines[1] == f"(traceback in {log_path}; --debug prints it here)"


class RunLockedError(RuntimeError):
  """Stands for training/run_lock.py's class: a user error by its name."""


class ConfigMissing(console.UserError):
  pass


@pytest.mark.parametrize("error", [
    FileNotFoundError("--run_dir 'x': no such directory."),
    FileExistsError("exists"), NotADirectoryError("not a folder"), PermissionError("read-only"),
    RunLockedError("runs/a is in use by process 12"), ConfigMissing("no config.json in runs/a"),
])
def test_user_errors_print_the_message_and_the_log_path(error, cache_dir, capsys):
  status, lines = run_in_process(raiser(error), capsys)
  log_path = os.path.join(cache_dir, "logs", "test-error.log")
  assert status == 2
  assert lines == [f"prog: error: {error}", f"(traceback in {log_path}; --debug prints it here)"]
  assert os.path.isfile(log_path)


def test_debug_prints_the_traceback_too(cache_dir, capsys):
  status, lines = run_in_process(raiser(FileNotFoundError("missing")), capsys, ["--debug"])
  log_path = os.path.join(cache_dir, "logs", "test-error.log")
  assert status == 2
  assert lines[0] == "Traceback (most recent call last):"
  assert lines[-3:] == ["FileNotFoundError: missing", "prog: error: missing",
                        f"(traceback in {log_path})"]


def test_log_falls_back_to_the_temporary_directory(tmp_path, monkeypatch, capsys):
  blocked = tmp_path / "file"
  blocked.write_text("")  # A file where the cache directory should be: not writable.
  monkeypatch.setenv("VIDEO_STRUCTURE_CACHE", str(blocked))
  monkeypatch.setenv("TMPDIR", str(tmp_path))
  monkeypatch.setattr(console.tempfile, "tempdir", None)  # Reads TMPDIR again.
  status, lines = run_in_process(raiser(FileExistsError("exists")), capsys)
  log_path = os.path.join(tmp_path, "video_structure-test-error.log")
  assert status == 2
  assert lines[1] == f"(traceback in {log_path}; --debug prints it here)"
  assert os.path.isfile(log_path)


def test_ctrl_c_prints_one_line_with_the_hint(cache_dir, capsys):
  status, lines = run_in_process(raiser(KeyboardInterrupt()), capsys,
                                 interrupted_hint="start it again to resume")
  assert (status, lines) == (130, ["prog: interrupted; start it again to resume."])
  assert not os.path.exists(cache_dir)


def test_argparse_errors_are_one_line_and_argparse_is_restored(cache_dir, capsys):
  def main(argv):
    parser = argparse.ArgumentParser(prog="prog")
    parser.add_argument("--number", type=int, required=True)
    parser.parse_args(argv)

  status, lines = run_in_process(main, capsys, ["--number", "x"])
  assert (status, lines) == (
      2, ["prog: error: argument --number: invalid int value: 'x'; see --help."])
  with pytest.raises(SystemExit):  # Outside the console, argparse prints and exits as usual.
    main(["--number", "x"])
  assert "usage: prog [-h] --number NUMBER" in capsys.readouterr().err


def test_absl_warnings_are_hidden_unless_debug(cache_dir, capsys):
  before = absl_logging.get_verbosity()
  seen = []
  run_in_process(lambda argv: seen.append(absl_logging.get_verbosity()), capsys)
  run_in_process(lambda argv: seen.append(absl_logging.get_verbosity()), capsys, ["--debug"])
  assert seen == [absl_logging.ERROR, absl_logging.INFO]
  assert absl_logging.get_verbosity() == before


def test_native_stderr_filter_keeps_only_lines_at_the_level(capfd):
  banner = ("WARNING: All log messages before absl::InitializeLog() is called are written to "
            "STDERR\n")
  info = ("I0000 00:00:1796591642.216106   18979 port.cc:153] oneDNN custom operations are on.\n")
  warning = "W0612 10:11:12.345678   18979 file.cc:9] a warning\n"
  error = "E0000 00:00:1796591646.883694   18979 cuda_platform.cc:52] failed call to cuInit\n"
  with console._filtered_native_stderr(2):  # pylint: disable=protected-access
    os.write(2, (banner + info + warning + error + "Some other line\n").encode())
  assert capfd.readouterr().err == error + "Some other line\n"


# Subprocesses: what the user sees. --------------------------------------------------------------

def run_command_line(command, tmp_path):
  """Runs `command` like a user's shell (no TF_CPP_MIN_LOG_LEVEL); returns (status, lines,
  path of the train error log)."""
  environment = {name: value for name, value in os.environ.items()
                 if name != "TF_CPP_MIN_LOG_LEVEL"}
  environment["VIDEO_STRUCTURE_CACHE"] = str(tmp_path / "cache")
  completed = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True,
                             text=True, timeout=600, check=False)
  lines = (completed.stdout + completed.stderr).splitlines()
  return completed.returncode, lines, str(tmp_path / "cache" / "logs" / "train-error.log")


@pytest.mark.slow
# One error of the data source and one of the config (the config's checks themselves are
# tested in process, tests/test_presets.py); each case is a fresh TensorFlow start-up.
@pytest.mark.parametrize("flags, flag_name", [
    (["--dataset", "/no/such/folder"], "/no/such/folder"),
    (["--kl_beta", "-1"], "kl_beta"),
])
def test_train_error_is_two_lines(flags, flag_name, tmp_path):
  command = [sys.executable, TRAIN_SCRIPT, "--run_dir", str(tmp_path / "run"), "--data_dir",
             str(tmp_path / "data")] + flags
  status, lines, log_path = run_command_line(command, tmp_path)
  assert status == 2, lines
  assert len(lines) == 2, lines  # Nothing else: no TensorFlow start-up lines.
  assert lines[0].startswith("train.py: error: ") and flag_name in lines[0]
  assert lines[1] == f"(traceback in {log_path}; --debug prints it here)"
  with open(log_path, encoding="utf-8") as log:
    text = log.read()
  assert f"train.py --run_dir {tmp_path / 'run'}" in text.splitlines()[0]
  assert "Traceback (most recent call last):" in text
  assert lines[0].removeprefix("train.py: error: ") in text


@pytest.mark.slow
def test_train_argument_error_is_one_line(tmp_path):
  status, lines, _ = run_command_line(
      [sys.executable, TRAIN_SCRIPT, "--num_keypoints", "x"], tmp_path)
  assert (status, lines) == (
      2, ["train.py: error: argument --num_keypoints: invalid int value: 'x'; see --help."])


@pytest.mark.slow
def test_train_debug_shows_the_traceback(tmp_path):
  status, lines, log_path = run_command_line(
      [sys.executable, TRAIN_SCRIPT, "--kl_beta", "-1", "--debug"], tmp_path)
  assert status == 2
  assert "Traceback (most recent call last):" in lines
  message = next(line for line in lines if line.startswith("ValueError: "))
  assert lines[-2:] == [f"train.py: error: {message.removeprefix('ValueError: ')}",
                        f"(traceback in {log_path})"]


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(TRAIN_COMMAND),
                    reason="the package is not installed (pip install -e .)")
def test_console_command_behaves_the_same(tmp_path):
  status, lines, log_path = run_command_line(
      [TRAIN_COMMAND, "--dataset", "/no/such/folder", "--data_dir", str(tmp_path / "data")],
      tmp_path)
  assert status == 2, lines
  assert len(lines) == 2, lines
  assert lines[0].startswith("video-structure-train: error: ") and "/no/such/folder" in lines[0]
  assert lines[1] == f"(traceback in {log_path}; --debug prints it here)"
