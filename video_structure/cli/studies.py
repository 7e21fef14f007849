"""Running a study: a list of train.py / evaluate.py commands, one after the other, that can be
stopped at any time and started again (scripts/paper_figures.py, scripts/dev_suite.py).

A study's `plan` lists only the commands still to do (a run whose output exists is skipped and
train.py resumes an unfinished run from its last checkpoint), so running the study again goes
on where it stopped.
"""

import os
import subprocess
import sys
import time


def training_finished(run_dir):
  """Whether train.py finished `run_dir` (its own evaluation.json is the last file it writes)."""
  return os.path.isfile(os.path.join(run_dir, "evaluation.json"))


def evaluation_json(run_dir):
  """Where evaluate.py writes a run's report by default."""
  return os.path.join(run_dir, "evaluation", "evaluation.json")


def remaining_commands(run_dir, train, evaluate):
  """The commands of one run still to do: [`train`, `evaluate`] (each `(label, argv)`), less
  the training when it finished and both when the run is evaluated."""
  if os.path.isfile(evaluation_json(run_dir)):
    return []
  return ([] if training_finished(run_dir) else [train]) + [evaluate]


def run_commands(commands, cwd, dry_run=False, stream=None):
  """Runs `[(label, argv)]` in order in `cwd`, printing each and its wall time.

  Returns:
    (exit status: 0, or the first failing command's; {label: seconds} of the commands run).
  """
  stream = stream or sys.stdout
  seconds = {}
  for index, (label, command) in enumerate(commands, 1):
    print(f"[{index}/{len(commands)}] {label}: {' '.join(command)}", file=stream, flush=True)
    if dry_run:
      continue
    started = time.time()
    status = subprocess.call(command, cwd=cwd)
    if status:
      print(f"{label} failed (exit status {status}); run the same command again to resume.",
            file=sys.stderr, flush=True)
      return status, seconds
    seconds[label] = time.time() - started
    print(f"[{index}/{len(commands)}] {label} done in {seconds[label] / 60:.1f} min",
          file=stream, flush=True)
  return 0, seconds


def parse_names(text, allowed, flag):
  """A comma-separated list of names from `allowed`; ValueError naming `flag` otherwise."""
  names = [name.strip() for name in text.split(",") if name.strip()]
  unknown = [name for name in names if name not in allowed]
  if not names or unknown:
    raise ValueError(f"{flag}: unknown {unknown or 'empty list'}; choose from "
                     f"{', '.join(allowed)}.")
  return names


def parse_seeds(text):
  """`"0,1,2"` -> [0, 1, 2]; ValueError naming --seeds otherwise."""
  seeds = [seed.strip() for seed in text.split(",") if seed.strip()]
  if not seeds or not all(seed.isdigit() for seed in seeds):
    raise ValueError(f"--seeds must be comma-separated non-negative integers, got {text!r}.")
  return [int(seed) for seed in seeds]
