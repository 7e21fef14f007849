"""Small pieces shared by the tests: THE tiny model config, THE tiny train.py flags, and a
train.py process to kill.

  from tests import helpers
  run_config = helpers.tiny_config(num_keypoints=5)       # a presets.RunConfig
  argv = helpers.tiny_train_flags(num_steps=2) + ["--skip_final"]
  with helpers.training_process(argv, tmp_path) as process: ...
  script = helpers.load_script("fetch_weights")             # scripts/fetch_weights.py
"""

import contextlib
import importlib.util
import os
import subprocess
import sys
import threading

import numpy as np
import tensorflow_datasets as tfds

from video_structure import presets
from video_structure.data import sources

# A model that builds in ~2 s and trains a step in well under a second on a CPU.
TINY_MODEL = dict(batch_size=2, initial_filters=4, rnn_units=16, num_samples=3, prior_net_size=4,
                  posterior_net_size=8, decoder_net_size=8, latent_size=4, num_keypoints=4,
                  mixed_precision=False)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SCRIPT = os.path.join(REPO_ROOT, "train.py")
# The training settings of a tiny train.py run on the `tiny` Basketball data.
TINY_TRAINING = dict(dataset_config="tiny", log_every_steps=2, checkpoint_every_steps=2,
                     image_summary_every_steps=2)


def tiny_config(dataset="basketball", preset="cpu", **overrides):
  """The `presets.RunConfig` of the tiny model (TINY_MODEL, then `overrides`)."""
  return presets.get_config(dataset, preset, **dict(TINY_MODEL, **overrides))


def tiny_train_flags(**overrides):
  """train.py flags of a tiny run: `--preset cpu`, then TINY_MODEL, TINY_TRAINING and
  `overrides` (later values replace earlier ones) as `--name value` (booleans as true/false)."""
  values = dict(TINY_MODEL, **TINY_TRAINING)
  values.update(overrides)
  flags = ["--preset", "cpu"]
  for name, value in values.items():
    flags += [f"--{name}", str(value).lower() if isinstance(value, bool) else str(value)]
  return flags


def prepare_tiny_basketball(data_dir):
  """Generates (if missing) the `tiny` Basketball data (16 train / 8 test sequences of 20
  frames) under `data_dir` the way train.py does; returns its `sources.DataSource`."""
  return sources.prepare(tiny_config(dataset_config="tiny").model, str(data_dir))


def moving_squares(batch=2, num_frames=16, size=64, seed=0):
  """`[B, T, H, W, 3]` float32 in [-0.5, 0.5]: three coloured 8x8 squares moving linearly on
  a grey background (structured enough for the autoencoder to learn quickly)."""
  rng = np.random.default_rng(seed)
  frames = np.full([batch, num_frames, size, size, 3], 0.2, np.float32)
  colours = np.eye(3, dtype=np.float32)
  for b in range(batch):
    start = rng.uniform(8, size - 16, [3, 2])
    velocity = rng.uniform(-1.5, 1.5, [3, 2])
    for t in range(num_frames):
      for colour, (row, col) in zip(colours, (start + velocity * t).astype(int)):
        frames[b, t, max(row - 4, 0):row + 4, max(col - 4, 0):col + 4] = colour
  return frames - 0.5


def split_arrays(builder, split):
  """All examples of a TFDS split as numpy arrays stacked per feature, in stored order."""
  examples = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
  return {key: np.stack([example[key] for example in examples]) for key in examples[0]}


@contextlib.contextmanager
def training_process(argv, work_dir, timeout_seconds=240):
  """`python train.py argv` in a subprocess, run from `work_dir`.

  Yields the Popen: its stdout is a text pipe (read it line by line to follow the training),
  its stderr goes to `work_dir/stderr.txt`. Killed after `timeout_seconds` (never hang the
  suite) and on leaving the block, which waits for it to end.
  """
  environment = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
  with open(os.path.join(work_dir, "stderr.txt"), "w") as stderr:
    process = subprocess.Popen([sys.executable, TRAIN_SCRIPT] + list(argv), cwd=str(work_dir),
                               env=environment, text=True, stdout=subprocess.PIPE, stderr=stderr)
  watchdog = threading.Timer(timeout_seconds, process.kill)
  watchdog.start()
  try:
    yield process
  finally:
    process.kill()
    process.wait()
    watchdog.cancel()
    process.stdout.close()


def load_script(name):
  """scripts/<name>.py as a module (the scripts are not a package)."""
  spec = importlib.util.spec_from_file_location(
      name, os.path.join(REPO_ROOT, "scripts", name + ".py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
