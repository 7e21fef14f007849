"""`python -m datasets.human_motion --config cpu [--num_workers N] [--manual_dir ...]` (from the
repository root): generates the human-motion data with `video_structure.data.builders.
human_motion.main`."""

from video_structure.data.builders import human_motion

if __name__ == "__main__":
  human_motion.main()
