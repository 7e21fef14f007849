"""Tests of `video_structure/data/folder_options.py`: the video-folder flags of train.py and
evaluate.py and their checks on the command line."""

import os
import subprocess
import sys

import pytest

from video_structure.cli import evaluate as evaluate_cli
from video_structure.cli import train as train_cli

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train.py", "evaluate.py"])
def test_help_lists_the_folder_flags(script):
  result = subprocess.run([sys.executable, os.path.join(REPO_ROOT, script), "--help"],
                          capture_output=True, text=True, timeout=300, check=True)
  for flag in ("--test_fraction", "--skip_bad_files", "--no-skip_bad_files",
               "--keep_truncated_videos", "--positions {auto,ignore,require}",
               "--split_by {auto,files,time}", "--crop LEFT,TOP,WIDTH,HEIGHT", "--frame_step",
               "--frames_per_sequence", "--cut_threshold"):
    assert flag in result.stdout, (script, flag)


@pytest.mark.parametrize("flag, value, message", [
    ("--crop", "1,2,3", "argument --crop: expected LEFT,TOP,WIDTH,HEIGHT: four integers"),
    ("--crop", "0,0,1,5", "argument --crop: expected LEFT,TOP,WIDTH,HEIGHT"),
    ("--crop", "a,b,c,d", "argument --crop: expected LEFT,TOP,WIDTH,HEIGHT"),
    ("--frame_step", "0", "argument --frame_step: expected a positive integer, got '0'."),
    ("--frames_per_sequence", "x", "argument --frames_per_sequence: expected a positive "
                                   "integer, got 'x'."),
    ("--cut_threshold", "1", "argument --cut_threshold: expected 0 (no cut detection) or a "
                             "number > 1, got '1'."),
    ("--split_by", "frames", "argument --split_by: invalid choice: 'frames'"),
])
def test_folder_flags_are_checked_on_the_command_line(capsys, flag, value, message):
  for parse in (train_cli.parse_args,
                lambda argv: evaluate_cli.build_parser().parse_args(["--run_dir", "run"] + argv)):
    with pytest.raises(SystemExit):
      parse([flag, value])
    assert message in capsys.readouterr().err
