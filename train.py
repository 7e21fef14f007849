"""Train Struct-VRNN: `python train.py --help` (the code is video_structure/cli/train.py)."""

from video_structure.cli.train import main

if __name__ == "__main__":
  main()
