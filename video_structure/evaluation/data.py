"""Evaluation windows held in memory, and where they come from.

`load_evaluation_data` cuts a run's dataset into windows with the training pipeline's own
`data.windows.make_windows_dataset` (in stored order, so a result is deterministic for a given
model) and keeps the first ones as uint8. What evaluation needs to know about a dataset (object
names, the best-sample rule, the default number of decoded samples) comes from the data
dispatcher, `data.sources.DataSource`.
"""

import dataclasses
from typing import Optional

import numpy as np

from video_structure.data import sources
from video_structure.data import windows
from video_structure.model import ops


@dataclasses.dataclass
class EvaluationData:
  """Evaluation windows held in memory as uint8 (a quarter of float32's memory).

  Attributes:
    train_frames: uint8 `[N_fit, L, H, W, 3]` windows the tracking regression is fitted on.
    train_positions: float32 `[N_fit, L, M, 2]` or None (no ground truth: no tracking).
    test_frames: uint8 `[N, L, H, W, 3]` evaluated windows.
    test_positions: float32 `[N, L, M, 2]` or None.
    object_names: M names or None.
    split: name of the evaluated split.
    best_sample_rule: the dataset's tracking rule ("per_object" or "mean"), or None.
    num_video_samples: the dataset's default number of decoded samples per video window, or
      None.
  """
  train_frames: np.ndarray
  train_positions: Optional[np.ndarray]
  test_frames: np.ndarray
  test_positions: Optional[np.ndarray]
  object_names: Optional[tuple] = None
  split: str = "test"
  best_sample_rule: Optional[str] = None
  num_video_samples: Optional[int] = None

  def validate(self):
    for name in ("train_frames", "test_frames"):
      frames = getattr(self, name)
      if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 5 \
          or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"EvaluationData.{name} must be a non-empty uint8 array "
                         f"[N, L, H, W, 3], got "
                         f"{getattr(frames, 'dtype', type(frames).__name__)} "
                         f"{getattr(frames, 'shape', '')}.")
    if self.train_frames.shape[1:] != self.test_frames.shape[1:]:
      raise ValueError(f"EvaluationData: train and test windows differ in shape "
                       f"{self.train_frames.shape[1:]} vs {self.test_frames.shape[1:]}.")
    for frames_name, positions_name in (("train_frames", "train_positions"),
                                        ("test_frames", "test_positions")):
      positions = getattr(self, positions_name)
      frames = getattr(self, frames_name)
      if positions is None:
        continue
      positions = np.asarray(positions)
      if positions.ndim != 4 or positions.shape[-1] != 2 or positions.shape[:2] != \
          frames.shape[:2]:
        raise ValueError(f"EvaluationData.{positions_name} must have shape "
                         f"[{frames.shape[0]}, {frames.shape[1]}, M, 2] to match "
                         f"{frames_name}, got {positions.shape}.")
    if (self.train_positions is None) != (self.test_positions is None):
      raise ValueError("EvaluationData: give ground-truth positions for both the train and the "
                       "test windows, or for neither.")
    if self.test_positions is not None and self.object_names is not None and \
        len(self.object_names) != self.test_positions.shape[2]:
      raise ValueError(f"EvaluationData.object_names has {len(self.object_names)} names for "
                       f"{self.test_positions.shape[2]} objects.")
    return self


def collect_uint8_windows(windows_dataset, max_windows, name="dataset"):
  """Materialises up to `max_windows` windows of a windows dataset as uint8.

  Returns:
    (frames uint8 `[N, L, H, W, 3]`, positions float32 `[N, L, M, 2]` or None), N <= max_windows.
  """
  frames, positions, count = [], [], 0
  for batch in windows_dataset:
    # The windows hold the model's range u / 255 - 0.5; back to the stored u exactly.
    frames.append(ops.frames_to_uint8(batch["image"]).numpy())
    if "true_object_pos" in batch:
      positions.append(batch["true_object_pos"].numpy().astype(np.float32))
    count += len(frames[-1])
    if count >= max_windows:
      break
  if not frames:
    raise ValueError(f"{name}: the windows dataset is empty.")
  frames = np.concatenate(frames)[:max_windows]
  positions = np.concatenate(positions)[:max_windows] if positions else None
  return frames, positions


def load_evaluation_data(config, data_dir="data", split="test", num_train_windows=480,
                         num_test_windows=600, source=None, batch_size=32, manual_dir=None):
  """The windows of a run's dataset, in memory (see `EvaluationData`).

  Args:
    config: the run's model `Config` (`dataset`, `sequence_length`, ...).
    data_dir: where the datasets live.
    split: the evaluated split.
    num_train_windows: training windows for the tracking regression (the first ones, in the
      stored order).
    num_test_windows: evaluated windows (the first ones, in the stored order).
    source: a prepared `sources.DataSource` whose test sequences are `split`; default
      `sources.prepare(config, data_dir, manual_dir, test_split=split)`.
    batch_size: windows per batch of the windows dataset.
    manual_dir: see `sources.prepare`.
  """
  source = source or sources.prepare(config, data_dir, manual_dir=manual_dir, test_split=split)

  def windows_of(sequences, which):
    return windows.make_windows_dataset(sequences, config.sequence_length, batch_size,
                                        training=False, drop_remainder=False,
                                        name=f"{source.name}/{which}")

  train_frames, train_positions = collect_uint8_windows(
      windows_of(source.train, "train"), num_train_windows, f"{config.dataset}/train")
  test_frames, test_positions = collect_uint8_windows(
      windows_of(source.test, split), num_test_windows, f"{config.dataset}/{split}")
  if (train_positions is None) != (test_positions is None):
    train_positions = test_positions = None
  names = source.object_names
  return EvaluationData(train_frames, train_positions, test_frames, test_positions,
                        None if names is None else tuple(names), split,
                        source.best_sample_rule, source.num_video_samples).validate()
