"""The command-line programs: `main(argv=None)` of each console command (pyproject.toml).

  train.py       video-structure-train       (python train.py)
  evaluate.py    video-structure-evaluate    (python evaluate.py)
  compare.py     video-structure-compare     (python compare.py)
  downstream.py  video-structure-downstream  (python -m video_structure.downstream.<name>)

`main` raises its exceptions (for Python callers and tests); each module's `run()`, the console
entry point, passes it to console.run_command: short error lines, exit statuses, --debug.
"""

# First, before the command modules set their default TF_CPP_MIN_LOG_LEVEL: console records the
# user's own value.
from video_structure.cli import console  # noqa: F401
