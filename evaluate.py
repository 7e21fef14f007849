"""Evaluate a trained run: `python evaluate.py --help` (code: video_structure/cli/evaluate.py)."""

import sys

from video_structure.cli.evaluate import main, run  # noqa: F401  (main: for Python callers)

if __name__ == "__main__":
  sys.exit(run())
