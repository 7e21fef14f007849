"""The paper's downstream experiments on a trained run (docs/downstream.md).

  video-structure-downstream action_recognition --run_dir RUN   (Human3.6M, Fig. 8)
  video-structure-downstream reward_prediction  --run_dir RUN   (DMCS, Fig. 9)
  video-structure-downstream counterfactual     --run_dir RUN   (Basketball, Fig. 6)

The first argument names the experiment; the others go to it unchanged (the same as
`python -m video_structure.downstream.<experiment> ...`; `<experiment> --help` lists them).
"""

import importlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXPERIMENTS = ("action_recognition", "reward_prediction", "counterfactual")
PROGRAM = "video-structure-downstream"


def usage():
  return (f"usage: {PROGRAM} {{{','.join(EXPERIMENTS)}}} [arguments ...]\n\n{__doc__}")


def main(argv=None):
  """Runs the experiment named by `argv[0]` with the remaining arguments; returns its result."""
  argv = sys.argv[1:] if argv is None else list(argv)
  if argv and argv[0] in ("-h", "--help"):
    print(usage())
    return None
  if not argv or argv[0] not in EXPERIMENTS:
    problem = (f"unknown experiment {argv[0]!r}" if argv else "the experiment is missing")
    sys.stderr.write(f"{PROGRAM}: error: {problem}; choose from {', '.join(EXPERIMENTS)} "
                     f"(see {PROGRAM} --help).\n")
    raise SystemExit(2)
  name = argv[0]
  # Imported on demand: each experiment loads TensorFlow and its own dependencies.
  module = importlib.import_module(f"video_structure.downstream.{name}")
  return module.main(argv[1:])


def run():
  """The `video-structure-downstream` command: `main()` with short error lines and --debug
  (cli/console.py); returns the exit status."""
  from video_structure.cli import console  # pylint: disable=import-outside-toplevel
  return console.run_command(main, "downstream")
