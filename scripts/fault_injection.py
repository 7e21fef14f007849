"""Fault injection: a training run killed with SIGKILL and restarted several times must end
exactly as an uninterrupted run of the same command (same seed): the same weights (model,
optimizer and seed state, bit for bit) and the same loss log.

  python scripts/fault_injection.py                    # CPU preset, 1000 steps, 5 kills
  python scripts/fault_injection.py --num_steps 200 --kills 3
  python scripts/fault_injection.py --work_dir /tmp/fi -- --num_keypoints 8   # more train.py flags

Runs `train.py --dataset basketball --num_steps N --skip_final` (plus the flags after `--`) twice,
in <work_dir>/uninterrupted and <work_dir>/killed (both emptied first; the second starts once the
first has its data ready). The killed run is killed `--kills` times, each time restarted with the
same command; the kill moments come from a seeded random generator (`--seed`): some while a
checkpoint is being written (as soon as a temporary checkpoint file appears), the others at a
random moment of a logging chunk (a random fraction of the last chunk's duration after a
progress line past a random step) or of the start-up. Prints the kill moments, the largest
weight and loss differences and a JSON summary (also written to `--report`); exits with 1 if
the runs differ. tests/training/test_fault_injection.py runs it on a tiny model.
"""

import argparse
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SCRIPT = os.path.join(ROOT, "train.py")
# Kept in step with video_structure: checkpoints.CHECKPOINT_DIR / LATEST_FILE,
# callbacks.LOSS_LOG_FILE and io_utils' temporary names (`.<name>.<random>.tmp<extension>`).
CHECKPOINT_DIR = "checkpoints"
LATEST_FILE = "latest"
LOSS_LOG_FILE = "losses.jsonl"
TEMPORARY_CHECKPOINT = re.compile(r"^\.ckpt-\d+\.keras\..*\.tmp\.keras$")
PROGRESS = re.compile(r"\] step (\d+)/(\d+) ")
POLL_SECONDS = 0.001  # How often the directory is checked for a temporary checkpoint file.
TIMEOUT_SECONDS = 6 * 3600  # Per process: never hang.

KILL_KINDS = ("checkpoint", "chunk", "startup")


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--num_steps", type=int, default=1000, help="Training steps of each run.")
  parser.add_argument("--kills", type=int, default=5, help="SIGKILLs of the killed run.")
  parser.add_argument("--checkpoint_kills", type=int, default=2,
                      help="How many of the kills hit a checkpoint write.")
  parser.add_argument("--startup_kills", type=int, default=1,
                      help="How many of the kills hit the start-up (loading, tracing).")
  parser.add_argument("--seed", type=int, default=0, help="Seed of the kill moments.")
  parser.add_argument("--dataset", default="basketball")
  parser.add_argument("--work_dir", default=os.path.join("runs", "fault_injection"))
  parser.add_argument("--report", default=None, help="Also write the JSON summary here.")
  parser.add_argument("--sequential", action="store_true",
                      help="Run the uninterrupted run first (default: both at once).")
  parser.add_argument("train_flags", nargs=argparse.REMAINDER,
                      help="`-- flags...`: more train.py flags (given to both runs).")
  args = parser.parse_args(argv)
  if args.train_flags[:1] == ["--"]:
    args.train_flags = args.train_flags[1:]
  if args.checkpoint_kills + args.startup_kills > args.kills:
    parser.error("--checkpoint_kills + --startup_kills must not exceed --kills.")
  return args


def plan_kills(rng, num_kills, num_checkpoint, num_startup, num_steps):
  """The kill plan: a list of {"kind", "after_step", "fraction"} in kill order.

  `after_step`: the kill waits for a progress line at or past this step (checkpoint and chunk
  kills), in the first 80% of the run so that the trainer is still running when the moment
  comes; `fraction`: of the last chunk's duration (chunk kills) or of the previous start-up's
  duration (start-up kills: from the start to the first progress line; at the latest at that
  line).
  """
  kinds = (["checkpoint"] * num_checkpoint + ["startup"] * num_startup
           + ["chunk"] * (num_kills - num_checkpoint - num_startup))
  rng.shuffle(kinds)
  if kinds and kinds[0] == "startup":  # A start-up kill needs a start-up measured before.
    first = next((i for i, kind in enumerate(kinds) if kind != "startup"), 0)
    kinds[0], kinds[first] = kinds[first], kinds[0]
  targets = sorted(rng.randint(1, max(1, int(0.8 * num_steps))) for _ in kinds)
  return [{"kind": kind, "after_step": target, "fraction": rng.random()}
          for kind, target in zip(kinds, targets)]


class Trainer:
  """One train.py process whose output lines are read (and logged) by a thread."""

  def __init__(self, command, log_path):
    self.started = time.time()
    self.log = open(log_path, "a", encoding="utf-8")  # pylint: disable=consider-using-with
    self.log.write(f"$ {' '.join(command)}\n")
    self.log.flush()
    environment = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    self.process = subprocess.Popen(  # pylint: disable=consider-using-with
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    self.lines = queue.Queue()
    self.progress = []  # (step, time) of every progress line so far.
    self.ready = threading.Event()  # Data prepared, model built or loaded.
    self.reader = threading.Thread(target=self._read, daemon=True)
    self.reader.start()

  def _read(self):
    for line in self.process.stdout:
      self.log.write(line)
      self.log.flush()
      if line.startswith("Model:") or line.startswith("Resuming from"):
        self.ready.set()
      match = PROGRESS.search(line)
      if match:
        self.progress.append((int(match.group(1)), time.time()))
      self.lines.put(line)
    self.ready.set()

  def last_step(self):
    return self.progress[-1][0] if self.progress else None

  def chunk_seconds(self):
    """Duration of the last logging chunk (between the last two progress lines), or None."""
    if len(self.progress) < 2:
      return None
    return self.progress[-1][1] - self.progress[-2][1]

  def running(self):
    return self.process.poll() is None

  def kill(self):
    os.kill(self.process.pid, signal.SIGKILL)
    self.wait()

  def wait(self):
    try:
      self.process.wait(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
      self.process.kill()
      self.process.wait()
      raise
    self.reader.join()
    self.log.close()
    return self.process.returncode


def temporary_checkpoints(run_dir):
  directory = os.path.join(run_dir, CHECKPOINT_DIR)
  try:
    return sorted(name for name in os.listdir(directory) if TEMPORARY_CHECKPOINT.match(name))
  except FileNotFoundError:
    return []


def latest_checkpoint(run_dir):
  try:
    with open(os.path.join(run_dir, CHECKPOINT_DIR, LATEST_FILE), encoding="utf-8") as f:
      return f.read().strip()
  except FileNotFoundError:
    return None


def run_with_kill(command, run_dir, log_path, kill, timing):
  """Starts a trainer and kills it as `kill` says; returns a record of what happened, or None
  if the trainer ended before the kill moment came (it then ran to completion).

  `timing` ({"startup": s, "chunk": s}, updated here): the last measured start-up (start to
  first progress line) and logging-chunk durations.
  """
  # Left by an earlier kill; the next complete checkpoint removes them.
  leftovers = set(temporary_checkpoints(run_dir))
  trainer = Trainer(command, log_path)
  startup_seconds = timing.get("startup") or 10.0
  deadline = None
  if kill["kind"] == "startup":
    deadline = trainer.started + kill["fraction"] * startup_seconds
  while trainer.running():
    now = time.time()
    step = trainer.last_step()
    if kill["kind"] == "startup":
      if now >= deadline or step is not None:  # At the latest when the first chunk ends.
        break
    elif step is not None and step >= kill["after_step"]:
      if kill["kind"] == "checkpoint":
        if set(temporary_checkpoints(run_dir)) - leftovers:  # A checkpoint is being written.
          break
      else:
        if deadline is None:
          chunk = trainer.chunk_seconds() or timing.get("chunk") or 1.0
          deadline = trainer.progress[-1][1] + kill["fraction"] * chunk
        if now >= deadline:
          break
    time.sleep(POLL_SECONDS)
  else:
    trainer.wait()
    return None
  if trainer.progress:
    timing["startup"] = trainer.progress[0][1] - trainer.started
  if trainer.chunk_seconds():
    timing["chunk"] = trainer.chunk_seconds()
  # Measured before the kill lands; the kill is what the plan asked for.
  seconds = time.time() - trainer.started
  trainer.kill()
  return {
      "kind": kill["kind"],
      "seconds_after_start": round(seconds, 3),
      "last_progress_step": trainer.last_step(),
      "latest_checkpoint_after": latest_checkpoint(run_dir),
      # Written by this trainer and never completed: it was killed during that write.
      "killed_during_checkpoint_write": sorted(set(temporary_checkpoints(run_dir)) - leftovers),
      "returncode": trainer.process.returncode,
  }


def checkpoint_arrays(path):
  """{dataset path: array} of every array in a `.keras` checkpoint's weights (model, optimizer
  and the dynamics' seed state)."""
  arrays = {}
  with tempfile.TemporaryDirectory() as scratch:
    with zipfile.ZipFile(path) as archive:
      archive.extract("model.weights.h5", scratch)
    with h5py.File(os.path.join(scratch, "model.weights.h5"), "r") as weights:
      weights.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                         if isinstance(item, h5py.Dataset) else None)
  return arrays


def read_loss_log(path):
  with open(path, encoding="utf-8") as stream:
    return [json.loads(line) for line in stream if line.strip()]


def largest_difference(first, second):
  """Largest absolute difference between two arrays (inf if their shapes differ)."""
  first, second = np.asarray(first), np.asarray(second)
  if first.shape != second.shape:
    return float("inf")
  if first.size == 0:
    return 0.0
  return float(np.max(np.abs(first.astype(np.float64) - second.astype(np.float64))))


def compare_runs(reference_dir, killed_dir):
  """The differences between the final checkpoints and loss logs of two run directories."""
  summary = {}
  reference_name, killed_name = latest_checkpoint(reference_dir), latest_checkpoint(killed_dir)
  summary["final_checkpoints"] = [reference_name, killed_name]
  reference = checkpoint_arrays(os.path.join(reference_dir, CHECKPOINT_DIR, reference_name))
  killed = checkpoint_arrays(os.path.join(killed_dir, CHECKPOINT_DIR, killed_name))
  summary["num_arrays"] = len(reference)
  summary["num_values"] = int(sum(np.asarray(a).size for a in reference.values()))
  summary["same_array_names"] = sorted(reference) == sorted(killed)
  differences = {name: largest_difference(reference[name], killed[name])
                 for name in reference if name in killed}
  summary["largest_weight_difference"] = max(differences.values())
  summary["differing_arrays"] = sorted(name for name, d in differences.items() if d != 0)
  reference_log = read_loss_log(os.path.join(reference_dir, LOSS_LOG_FILE))
  killed_log = read_loss_log(os.path.join(killed_dir, LOSS_LOG_FILE))
  summary["loss_log_rows"] = [len(reference_log), len(killed_log)]
  same_rows = ([sorted(row) for row in reference_log] == [sorted(row) for row in killed_log]
               and [row["step"] for row in reference_log] == [row["step"] for row in killed_log])
  summary["same_loss_log_rows"] = same_rows
  summary["largest_loss_difference"] = (
      max((abs(float(a[key]) - float(b[key])) for a, b in zip(reference_log, killed_log)
           for key in a), default=0.0)
      if same_rows else float("inf"))
  summary["identical"] = (summary["same_array_names"] and same_rows
                          and summary["largest_weight_difference"] == 0
                          and summary["largest_loss_difference"] == 0
                          and reference_name == killed_name)
  return summary


def main(argv=None):
  args = parse_args(argv)
  work_dir = os.path.abspath(args.work_dir)
  reference_dir = os.path.join(work_dir, "uninterrupted")
  killed_dir = os.path.join(work_dir, "killed")
  for directory in (reference_dir, killed_dir):
    shutil.rmtree(directory, ignore_errors=True)
  os.makedirs(work_dir, exist_ok=True)

  def command(run_dir):
    return ([sys.executable, TRAIN_SCRIPT, "--dataset", args.dataset, "--run_dir", run_dir,
             "--num_steps", str(args.num_steps), "--skip_final"] + args.train_flags)

  rng = random.Random(args.seed)
  plan = plan_kills(rng, args.kills, args.checkpoint_kills, args.startup_kills, args.num_steps)
  print(f"Kill plan (seed {args.seed}): {json.dumps(plan)}", flush=True)
  start = time.time()

  reference = Trainer(command(reference_dir), os.path.join(work_dir, "uninterrupted.log"))
  reference.ready.wait()  # Its data are prepared: the killed run will not generate them too.
  if args.sequential:
    if reference.wait() != 0:
      raise SystemExit(f"The uninterrupted run failed; see {work_dir}/uninterrupted.log.")

  kills = []
  timing = {}
  log_path = os.path.join(work_dir, "killed.log")
  for kill in plan:
    record = run_with_kill(command(killed_dir), killed_dir, log_path, kill, timing)
    if record is None:
      print(f"The killed run finished before kill {len(kills) + 1} ({kill}).", flush=True)
      break
    kills.append(record)
    print(f"Kill {len(kills)} ({record['kind']}): {record['seconds_after_start']} s after "
          f"start, last progress step {record['last_progress_step']}, latest checkpoint "
          f"{record['latest_checkpoint_after']}, killed during the checkpoint write of "
          f"{record['killed_during_checkpoint_write'] or 'none'}.", flush=True)
  final = Trainer(command(killed_dir), log_path)
  if final.wait() != 0:
    raise SystemExit(f"The last restart failed; see {log_path}.")
  if reference.wait() != 0:
    raise SystemExit(f"The uninterrupted run failed; see {work_dir}/uninterrupted.log.")

  summary = compare_runs(reference_dir, killed_dir)
  summary.update(num_steps=args.num_steps, kills=kills, plan=plan, seed=args.seed,
                 train_flags=args.train_flags, minutes=round((time.time() - start) / 60, 1))
  print(f"{len(kills)} kills, {sum(1 for k in kills if k['killed_during_checkpoint_write'])} "
        f"of them during a checkpoint write (its temporary file left behind).")
  print(f"Final checkpoints: {summary['final_checkpoints']}.")
  print(f"Weights: {summary['num_arrays']} arrays ({summary['num_values']:,} values: model, "
        f"optimizer, seed state), largest absolute difference "
        f"{summary['largest_weight_difference']!r}.")
  print(f"Loss log: {summary['loss_log_rows'][0]} vs {summary['loss_log_rows'][1]} rows, "
        f"largest absolute difference {summary['largest_loss_difference']!r}.")
  print("IDENTICAL" if summary["identical"] else "DIFFERENT")
  text = json.dumps(summary, indent=1)
  print(text, flush=True)
  if args.report:
    with open(args.report, "w", encoding="utf-8") as f:
      f.write(text)
  return 0 if summary["identical"] else 1


if __name__ == "__main__":
  sys.exit(main())
