"""The paper's downstream experiments on a trained run (paper Sec. 5.4-5.5, S2.2, S2.3, Fig. 6).

  python -m video_structure.downstream.action_recognition --run_dir RUN   (Human3.6M, Fig. 8)
  python -m video_structure.downstream.reward_prediction  --run_dir RUN   (DMCS, Fig. 9)
  python -m video_structure.downstream.counterfactual     --run_dir RUN   (Basketball, Fig. 6)

This package module holds what the three share: opening a run directory, cutting the data
source's sequences into windows and running the trained model over them batch by batch (so
that no split is ever held in memory as frames), the learning-rate schedule of the small
downstream networks, and atomic JSON output. See docs/downstream.md.
"""

import dataclasses
import math
import os
from typing import Optional

import numpy as np

CONFIG_FILE = "config.json"


# Runs. ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
  """A trained run opened for a downstream experiment.

  Attributes:
    run_dir: the run directory.
    config: its `config.Config`.
    model: the restored `StructVRNN`.
    checkpoint: path of the loaded checkpoint.
    step: the training step of that checkpoint (None if unknown).
  """
  run_dir: str
  config: object
  model: object
  checkpoint: str
  step: Optional[int]

  def info(self):
    """JSON-ready description of the run (for the reports)."""
    return {"run_dir": os.path.abspath(self.run_dir),
            "checkpoint": os.path.abspath(self.checkpoint), "step": self.step, "model_type": model_type(self.config),
            "dataset": self.config.dataset, "dataset_config": self.config.dataset_config}


def load_run_config(run_dir, flag="--run_dir"):
  """The `Config` of a run directory, with clear errors when it is not one.

  Raises:
    FileNotFoundError: naming `flag` and the path when the directory or its config.json is
      missing.
  """
  if not run_dir or not os.path.isdir(run_dir):
    raise FileNotFoundError(f"{flag} {run_dir!r}: no such directory (expected a run directory "
                            f"written by train.py).")
  path = os.path.join(run_dir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{flag} {run_dir!r}: no {CONFIG_FILE} in it (expected a run "
                            f"directory written by train.py).")
  from video_structure import config as config_lib
  return config_lib.Config.load(path)


def load_run(run_dir, checkpoint=None, config=None, flag="--run_dir"):
  """Opens a run: its config and the model of `checkpoint` (default: the latest one).

  Args:
    run_dir: a directory written by train.py.
    checkpoint: optional path of a `.keras` checkpoint.
    config: the run's config if already loaded (`load_run_config`).
    flag: how error messages name the run directory argument.

  Returns:
    A `Run`.
  """
  from video_structure import training
  config = config or load_run_config(run_dir, flag)
  if checkpoint is None:
    checkpoint = training.latest_checkpoint(run_dir)
    if checkpoint is None:
      raise FileNotFoundError(f"{flag} {run_dir!r}: no checkpoint in "
                              f"{os.path.join(run_dir, training.CHECKPOINT_DIR)}; train first.")
  elif not os.path.isfile(checkpoint):
    raise FileNotFoundError(f"--checkpoint {checkpoint!r} does not exist.")
  model = training.load_checkpoint(checkpoint, config)
  optimizer = getattr(model, "optimizer", None)
  step = int(optimizer.iterations.numpy()) if optimizer is not None else None
  return Run(run_dir, config, model, checkpoint, step)


def model_type(config):
  """The paper's name of the variant a config trains (for reports and figure legends)."""
  if config.representation == "features":
    name = "cnn_vrnn"
  else:
    name = "struct_rnn" if config.dynamics == "rnn" else "struct_vrnn"
  return name + ("_supervised" if config.supervised_weight else "")


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

def frames_to_model_input(frames_uint8):
  """uint8 `[..., H, W, 3]` -> float32 in [-0.5, 0.5] (the model's input range)."""
  return np.asarray(frames_uint8, np.float32) / 255.0 - 0.5


def map_windows(dataset, window_length, time_keys, compute, scalar_keys=(), keep_keys=(),
                batch_size=32, max_sequences=None, windows_per_sequence=None, name="dataset"):
  """Cuts every sequence into consecutive windows and runs `compute` on batches of them.

  The w-th window of a sequence covers frames [w L, (w + 1) L) for w < T // L (the last T % L frames
  are not used), like `data.make_windows_dataset(training=False)`, but every feature of the
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


class ModelFunctions:
  """The trained model's calls used downstream, traced once per input shape.

  `detect(frames)`: float32 `[B, T, H, W, 3]` -> `[B, T, K, 3]` keypoints (CNN-VRNN: its
  features). `rnn_states(keypoints, actions, seed)`: the dynamics run over all T steps in
  observed mode -> `[B, T, U]` GRU states h_t.
  """

  def __init__(self, model, feed_decoded_observed=0.0):
    import tensorflow as tf
    self.model = model
    self.feed_decoded_observed = float(feed_decoded_observed)
    if not 0.0 <= self.feed_decoded_observed <= 1.0:
      raise ValueError(f"feed_decoded_observed is a probability in [0, 1], got "
                       f"{feed_decoded_observed!r}.")
    self._detect = tf.function(lambda frames: model.detect(frames)[0], reduce_retracing=True)

    def states(keypoints, actions, seed):
      rollout = model.dynamics.rollout(
          keypoints, num_observed=tf.shape(keypoints)[1], actions=actions, num_samples=1,
          select_best=False, feed_decoded_probability_observed=self.feed_decoded_observed,
          seed=seed)
      return rollout["rnn_states"]

    self._states = tf.function(states, reduce_retracing=True)

  def detect(self, frames):
    return self._detect(np.asarray(frames, np.float32)).numpy()

  def rnn_states(self, keypoints, actions=None, seed=(0, 0)):
    """Teacher-forced (observed-mode) rollout; `seed` int `[2]` makes the z draws
    reproducible."""
    import tensorflow as tf
    action_size = self.model.config.action_size
    if action_size and actions is None:
      raise ValueError(f"This model is action-conditional (action_size={action_size}); the "
                       f"data must provide `actions`.")
    if actions is not None:
      actions = np.asarray(actions, np.float32)
      if not action_size:
        actions = None  # An unconditional model ignores actions.
      elif actions.shape[-1] != action_size:
        raise ValueError(f"The data's actions have {actions.shape[-1]} values per step; the "
                         f"model expects action_size={action_size}.")
    return self._states(np.asarray(keypoints, np.float32), actions,
                        tf.constant(seed, tf.int32)).numpy()


# Training the small downstream networks. -----------------------------------------------------

def decaying_learning_rate(start, end, total_steps):
  """Adam's schedule "from `start` successively reduced to `end`" (paper S2.2, S2.3): a
  continuous exponential decay lr(s) = start * (end / start) ** (s / total_steps), so that the
  last of `total_steps` optimizer steps runs at (about) `end`."""
  import keras
  if not (start > 0 and end > 0 and end <= start):
    raise ValueError(f"learning rates must satisfy 0 < end <= start, got start={start}, "
                     f"end={end}.")
  total_steps = check_positive_int(total_steps, "total_steps")
  return keras.optimizers.schedules.ExponentialDecay(start, total_steps, end / start,
                                                     staircase=False)


def steps_per_epoch(num_examples, batch_size):
  return int(math.ceil(num_examples / batch_size))


# Output. --------------------------------------------------------------------------------------

def write_json(path, report):
  """Writes `report` atomically as JSON (numpy values converted, NaN/inf as null)."""
  from video_structure import evaluation  # pylint: disable=import-outside-toplevel
  return evaluation.write_json(path, report)


def output_path(output, run_dir, file_name):
  """`--output` if given, else `<run_dir>/<file_name>`."""
  return output or os.path.join(run_dir, file_name)


def prepare_source(config, data_dir, source=None):
  """The run's `sources.DataSource` (built if missing), or `source` when a caller injects
  one (tests build tiny sequences in memory)."""
  if source is not None:
    return source
  from video_structure import sources
  return sources.prepare(config, data_dir)
