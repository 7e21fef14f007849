"""Train Struct-VRNN: `python train.py --help` (the code is video_structure/cli/train.py)."""

import sys

from video_structure.cli.train import main, run  # noqa: F401  (main: for Python callers)

if __name__ == "__main__":
  sys.exit(run())
