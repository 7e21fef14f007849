"""Compare evaluated runs: `python compare.py --help` (code: video_structure/cli/compare.py)."""

from video_structure.cli.compare import main

if __name__ == "__main__":
  main()
