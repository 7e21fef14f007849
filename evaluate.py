"""Evaluate a trained run: `python evaluate.py --help` (code: video_structure/cli/evaluate.py)."""

from video_structure.cli.evaluate import main

if __name__ == "__main__":
  main()
