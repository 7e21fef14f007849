"""The paper's downstream experiments on a trained run (paper Sec. 5.4-5.5, S2.2, S2.3, Fig. 6).

  python -m video_structure.downstream.action_recognition --run_dir RUN   (Human3.6M, Fig. 8)
  python -m video_structure.downstream.reward_prediction  --run_dir RUN   (DMCS, Fig. 9)
  python -m video_structure.downstream.counterfactual     --run_dir RUN   (Basketball, Fig. 6)

This package module holds what the three share: opening a run directory (with the one run
loader, `training.run_dir.load_run`), cutting the data source's sequences into windows and
running the trained model over them batch by batch (through the one model-call wrapper,
`evaluation.model_calls.ModelCalls`, so that no split is ever held in memory as frames), and
the learning-rate schedule of the small downstream networks. See docs/downstream.md.
"""

import math
import os

import keras
import numpy as np

from video_structure.data import sources
from video_structure.evaluation import model_calls
from video_structure.training import run_dir as run_dir_lib


# Runs. ----------------------------------------------------------------------------------------

def open_run(run_dir, checkpoint=None, check=None):
  """Opens a run directory: its config and the model of `checkpoint` (default: the latest).

  Args:
    run_dir: a directory written by train.py.
    checkpoint: optional path of a `.keras` checkpoint.
    check: optional function (model config, run description) raising ValueError when the run
      does not suit the experiment; called before the model is loaded.

  Returns:
    A `training.run_dir.Run` (`.config` is the model's `Config`).

  Raises:
    FileNotFoundError naming --run_dir / --checkpoint and the path.
  """
  run_config = run_dir_lib.load_config(run_dir)
  if check is not None:
    check(run_config.model, f"--run_dir {run_dir}")
  return run_dir_lib.load_run(run_dir, checkpoint, run_config=run_config)


def run_info(run):
  """JSON-ready description of an opened run for the reports: run_dir, checkpoint, step,
  model_type, dataset and dataset_config."""
  config = run.config
  return dict(run.info(), model_type=model_calls.model_type(config), dataset=config.dataset,
              dataset_config=config.dataset_config)


def check_positive_int(value, name, minimum=1):
  """Returns `value` as int, or raises ValueError naming the argument `name`."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
  return int(value)


def check_fraction(value, name):
  """Returns `value` as a float in (0, 1), or raises ValueError naming `name`."""
  if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not (
      0.0 < float(value) < 1.0):
    raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}.")
  return float(value)


# Windows. -------------------------------------------------------------------------------------

def map_windows(dataset, window_length, time_keys, compute, scalar_keys=(), keep_keys=(),
                batch_size=32, max_sequences=None, windows_per_sequence=None, name="dataset"):
  """Cuts every sequence into consecutive windows and runs `compute` on batches of them.

  The w-th window of a sequence covers frames [w L, (w + 1) L) for w < T // L (the last T % L frames
  are not used), like `windows.make_windows_dataset(training=False)`, but every feature of the
  sequence (labels, actions, rewards) is kept, and only one batch of frames is in memory.

  Args:
    dataset: tf.data.Dataset of sequence dicts (`sources` format).
    window_length: L.
    time_keys: features with a leading time axis `[T, ...]` that are cut into windows.
    compute: function (batch dict of numpy arrays, each `[B, ...]`, batch index) -> dict of
      numpy arrays with leading dimension B.
    scalar_keys: per-sequence features (e.g. `label`) copied to each of its windows.
    keep_keys: features of the batch passed through to the result unchanged.
    batch_size: windows per `compute` call.
    max_sequences: read at most this many sequences (None: all).
    windows_per_sequence: keep at most this many windows of each sequence (None: all).
    name: how errors refer to `dataset`.

  Returns:
    dict of numpy arrays `[N, ...]`: the outputs of `compute`, the `keep_keys`, and
    `sequence_index` / `window_start` (int64 `[N]`: which sequence and first frame).
  """
  window_length = check_positive_int(window_length, "window_length")
  batch_size = check_positive_int(batch_size, "batch_size")
  if max_sequences is not None:
    max_sequences = check_positive_int(max_sequences, "max_sequences")
    dataset = dataset.take(max_sequences)
  if windows_per_sequence is not None:
    windows_per_sequence = check_positive_int(windows_per_sequence, "windows_per_sequence")
  spec = dataset.element_spec
  needed = list(time_keys) + list(scalar_keys)
  if not isinstance(spec, dict) or any(key not in spec for key in needed):
    found = sorted(spec) if isinstance(spec, dict) else spec
    raise ValueError(f"{name}: sequences need the features {needed}, got {found}.")
  outputs = {}
  pending = []

  def flush(batch_index):
    if not pending:
      return
    batch = {key: np.stack([window[key] for window in pending]) for key in pending[0]}
    results = dict(compute(batch, batch_index))
    for key in list(keep_keys) + ["sequence_index", "window_start"]:
      results[key] = batch[key]
    for key, value in results.items():
      value = np.asarray(value)
      if value.shape[:1] != (len(pending),):
        raise ValueError(f"compute returned {key!r} with shape {value.shape}; expected a "
                         f"leading dimension of {len(pending)} (one row per window).")
      outputs.setdefault(key, []).append(value)
    pending.clear()

  num_batches = 0
  for index, sequence in enumerate(dataset.as_numpy_iterator()):
    num_frames = sequence[time_keys[0]].shape[0]
    for key in time_keys:
      if sequence[key].shape[0] != num_frames:
        raise ValueError(f"{name}: sequence {index} has {num_frames} frames of "
                         f"{time_keys[0]!r} but {sequence[key].shape[0]} of {key!r}.")
    num_windows = num_frames // window_length
    if num_windows == 0:
      raise ValueError(f"{name}: sequence {index} has {num_frames} frames, fewer than the "
                       f"window length {window_length}.")
    if windows_per_sequence is not None:
      num_windows = min(num_windows, windows_per_sequence)
    for w in range(num_windows):
      start = w * window_length
      window = {key: sequence[key][start:start + window_length] for key in time_keys}
      window.update({key: sequence[key] for key in scalar_keys})
      window["sequence_index"] = np.int64(index)
      window["window_start"] = np.int64(start)
      pending.append(window)
      if len(pending) == batch_size:
        flush(num_batches)
        num_batches += 1
  flush(num_batches)
  if not outputs:
    raise ValueError(f"{name} is empty: no sequences to cut windows from.")
  return {key: np.concatenate(values) for key, values in outputs.items()}


# Training the small downstream networks. -----------------------------------------------------

def decaying_learning_rate(start, end, total_steps):
  """Adam's schedule "from `start` successively reduced to `end`" (paper S2.2, S2.3): a
  continuous exponential decay lr(s) = start * (end / start) ** (s / total_steps), so that the
  last of `total_steps` optimizer steps runs at (about) `end`."""
  if not (start > 0 and end > 0 and end <= start):
    raise ValueError(f"learning rates must satisfy 0 < end <= start, got start={start}, "
                     f"end={end}.")
  total_steps = check_positive_int(total_steps, "total_steps")
  return keras.optimizers.schedules.ExponentialDecay(start, total_steps, end / start,
                                                     staircase=False)


def steps_per_epoch(num_examples, batch_size):
  return int(math.ceil(num_examples / batch_size))


# Output. --------------------------------------------------------------------------------------

def output_path(output, run_dir, file_name):
  """`--output` if given, else `<run_dir>/<file_name>`."""
  return output or os.path.join(run_dir, file_name)


def prepare_source(config, data_dir, source=None):
  """The run's `sources.DataSource` (built if missing), or `source` when a caller injects
  one (tests build tiny sequences in memory)."""
  if source is not None:
    return source
  return sources.prepare(config, data_dir)
