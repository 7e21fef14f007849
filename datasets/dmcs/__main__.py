"""`python -m datasets.dmcs --config cpu [--num_workers N]` (from the repository root): generates
the DeepMind Control Suite data with `video_structure.data.builders.dmcs.main`."""

from video_structure.data.builders import dmcs

if __name__ == "__main__":
  dmcs.main()
