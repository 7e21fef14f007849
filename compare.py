"""Compare evaluated runs: `python compare.py --help` (code: video_structure/cli/compare.py)."""

import sys

from video_structure.cli.compare import main, run  # noqa: F401  (main: for Python callers)

if __name__ == "__main__":
  sys.exit(run())
