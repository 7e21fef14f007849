"""Evaluating a trained model: object tracking, video prediction metrics, FVD and figures.

Two entry points:

* `evaluate` / `evaluate_on_builder` (used by train.py at the end of training): the quick
  tracking check. A linear regression from the detected keypoints (x, y, mu of all K) to the
  ground-truth object positions, fitted on training windows, measured on test windows; then
  observe `num_observed` frames, sample futures, and compare the best sample (per example and
  object, by mean error over the predicted steps) with repeating the last observed keypoints.

* `run_evaluation` (used by evaluate.py): the paper's full protocol (Figures 3, 4, S1-S3),
  documented in docs/evaluation.md:
  1. tracking: the same regression; error per time step over observed and predicted steps of
     the best of `num_tracking_samples` samples (rule per dataset: best per object for
     Basketball, best by mean over all objects for Human3.6M) and of the
     "repeat the last observed keypoints" baseline;
  2. video prediction: `num_video_samples` decoded samples per test window; per time step SSIM,
     PSNR and VGG cosine similarity of the closest and the furthest sample;
  3. FVD (I3D) between true and sampled clips;
  4. figures: metric curves, tracking curves, sample diversity (Figure S3), keypoints drawn on
     frames and GIFs of truth vs closest vs furthest sample.

The model only needs the inference interface shared by every variant: `model.detect(frames)[0]`
(the representation `[B, T, K, 3]`) and `model.predict_future(observed, num_predicted,
num_samples, decode_frames=..., seed=...)`; `SavedModelAdapter` gives an exported SavedModel
that interface. Datasets plug in through `register_dataset_source`.
Errors are distances in coordinate units, pixels and percent of the frame width.
"""

import dataclasses
import json
import math
import os
import sys
import time
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from video_structure import fvd
from video_structure import i3d
from video_structure import image_metrics
from video_structure import tracking
from video_structure import visualize


def collect_windows(windows_dataset, max_windows=None):
  """Materialises an eval windows dataset into arrays.

  Args:
    windows_dataset: batches of `{"image": [B, L, H, W, 3], "true_object_pos": [B, L, M, 2]}`.
    max_windows: stop after this many windows.

  Returns:
    (frames float32 `[N, L, H, W, 3]`, positions float32 `[N, L, M, 2]`).
  """
  frames, positions, count = [], [], 0
  for batch in windows_dataset:
    if "true_object_pos" not in batch:
      raise ValueError("Tracking evaluation needs ground-truth `true_object_pos` in the data.")
    frames.append(batch["image"].numpy())
    positions.append(batch["true_object_pos"].numpy())
    count += len(frames[-1])
    if max_windows and count >= max_windows:
      break
  if not frames:
    raise ValueError("Tracking evaluation got an empty dataset.")
  frames, positions = np.concatenate(frames), np.concatenate(positions)
  if max_windows:
    frames, positions = frames[:max_windows], positions[:max_windows]
  return frames, positions


def detect_keypoints(model, frames, batch_size=32):
  """`[N, T, H, W, 3]` float32 -> `[N, T, K, 3]` detected keypoints (numpy)."""
  return np.concatenate([model.detect(tf.constant(frames[i:i + batch_size]))[0].numpy()
                         for i in range(0, len(frames), batch_size)])


def evaluate(model, train_frames, train_positions, test_frames, test_positions,
             num_observed=8, num_samples=20, seed=0, object_names=None, batch_size=32):
  """Runs both measurements; returns a JSON-serialisable dict.

  Args:
    model: a trained `StructVRNN`.
    train_frames, train_positions: windows `[N, L, H, W, 3]`, `[N, L, M, 2]` for the fit.
    test_frames, test_positions: held-out windows of the same shapes (L > num_observed).
    num_observed: observed steps n; the remaining L - n steps are predicted.
    num_samples: stochastic samples per test window.
  """
  image_size = test_frames.shape[2]
  num_objects = test_positions.shape[2]
  window_length = test_frames.shape[1]
  if not 0 < num_observed < window_length:
    raise ValueError(f"num_observed must be in [1, {window_length - 1}] for windows of "
                     f"{window_length} frames, got {num_observed}.")
  num_predicted = window_length - num_observed

  train_keypoints = detect_keypoints(model, train_frames, batch_size)
  test_keypoints = detect_keypoints(model, test_frames, batch_size)
  regressor = tracking.fit_keypoint_regressor(train_keypoints, train_positions)
  detected_positions = tracking.predict_positions(regressor, test_keypoints, num_objects)
  report = {"tracking": tracking.tracking_report(detected_positions, test_positions,
                                                 image_size, object_names)}

  best_errors, repeat_errors = [], []
  for start in range(0, len(test_frames), batch_size):
    stop = start + batch_size
    prediction = model.predict_future(
        tf.constant(test_frames[start:stop, :num_observed]), num_predicted, num_samples,
        decode_frames=False, seed=tf.constant([seed, start], tf.int32))
    future_keypoints = prediction["keypoints"].numpy()[:, :, num_observed:]  # [S, B, m, K, 3]
    future_positions = tracking.predict_positions(regressor, future_keypoints, num_objects)
    errors = tracking.object_errors(future_positions, np.broadcast_to(
        test_positions[None, start:stop, num_observed:], future_positions.shape))
    best_errors.append(tracking.best_of_samples(errors, per_object=True))
    repeated = tracking.repeat_last_observed(test_keypoints[start:stop, :num_observed],
                                             num_predicted)
    repeat_errors.append(tracking.object_errors(
        tracking.predict_positions(regressor, repeated, num_objects),
        test_positions[start:stop, num_observed:]))
  best_errors, repeat_errors = np.concatenate(best_errors), np.concatenate(repeat_errors)
  pixels = tracking.pixels_per_unit(image_size)
  report["prediction"] = {
      "num_observed": num_observed, "num_predicted": num_predicted,
      "num_samples": num_samples, "num_test_windows": int(len(test_frames)),
      "best_of_samples_px_per_step": (best_errors.mean(axis=(0, 2)) * pixels).tolist(),
      "repeat_last_px_per_step": (repeat_errors.mean(axis=(0, 2)) * pixels).tolist(),
      "best_of_samples_px_last_step_per_object": (best_errors[:, -1].mean(0) * pixels).tolist(),
      "repeat_last_px_last_step_per_object": (repeat_errors[:, -1].mean(0) * pixels).tolist(),
  }
  report["prediction"]["best_of_samples_px_last_step"] = float(best_errors[:, -1].mean() * pixels)
  report["prediction"]["repeat_last_px_last_step"] = float(repeat_errors[:, -1].mean() * pixels)
  report["regressor"] = regressor.to_dict()
  return report


def summary_lines(report):
  """Human-readable lines of an `evaluate` report."""
  tracking_report = report["tracking"]
  lines = [f"Tracking error (test, regression from keypoints): mean "
           f"{tracking_report['mean_error']['pixels']:.2f} px = "
           f"{tracking_report['mean_error']['percent_of_width']:.2f}% of the frame width"]
  for name, error in tracking_report["per_object"].items():
    lines.append(f"  {name:>10}: {error['pixels']:.2f} px ({error['percent_of_width']:.2f}%)")
  prediction = report["prediction"]
  lines.append(
      f"Prediction {prediction['num_predicted']} steps ahead after {prediction['num_observed']} "
      f"observed: best of {prediction['num_samples']} samples "
      f"{prediction['best_of_samples_px_last_step']:.2f} px vs repeat-last "
      f"{prediction['repeat_last_px_last_step']:.2f} px")
  return lines


def evaluate_on_builder(model, builder, config, num_train_windows=480, num_test_windows=600,
                        num_samples=20, object_names=None):
  """`evaluate` on windows of a prepared TFDS builder's train and test splits.

  Fits the regression on up to `num_train_windows` consecutive training windows and measures
  on up to `num_test_windows` test windows (both in stored order, so the result is
  deterministic for a given model).
  """
  from video_structure import data  # Local import: data pulls in TFDS.
  window_length = config.sequence_length

  def windows(split, count):
    return collect_windows(data.make_windows_dataset(
        data.load_split(builder, split), window_length, 32, training=False,
        drop_remainder=False, name=f"{config.dataset}/{split}"), max_windows=count)

  train_frames, train_positions = windows("train", num_train_windows)
  test_frames, test_positions = windows("test", num_test_windows)
  report = evaluate(model, train_frames, train_positions, test_frames, test_positions,
                    config.observed_steps, num_samples=num_samples, seed=config.seed,
                    object_names=object_names)
  report["step"] = int(model.optimizer.iterations.numpy()) if model.optimizer else None
  return report, test_frames


def evaluate_on_source(model, source, config, num_train_windows=480, num_test_windows=600,
                       num_samples=20):
  """`evaluate` on windows of a `sources.DataSource` (any dataset with object positions).

  Returns:
    (report, test frames `[N, L, H, W, 3]`), or (None, test frames) when the dataset has no
    ground-truth positions to regress on.
  """
  from video_structure import data  # Local import: data pulls in TFDS.
  window_length = config.sequence_length

  def windows(sequences, count, split):
    return collect_windows(data.make_windows_dataset(
        sequences, window_length, 32, training=False, drop_remainder=False,
        name=f"{source.name}/{split}"), max_windows=count)

  if source.object_names is None:
    test_windows = data.make_windows_dataset(source.test, window_length, 32, training=False,
                                             drop_remainder=False, name=f"{source.name}/test")
    return None, np.concatenate([batch["image"].numpy() for batch in test_windows])
  test_frames, test_positions = windows(source.test, num_test_windows, "test")
  train_frames, train_positions = windows(source.train, num_train_windows, "train")
  report = evaluate(model, train_frames, train_positions, test_frames, test_positions,
                    config.observed_steps, num_samples=num_samples, seed=config.seed,
                    object_names=source.object_names)
  report["step"] = int(model.optimizer.iterations.numpy()) if model.optimizer else None
  return report, test_frames


# =============================================================================================
# The full evaluation protocol (evaluate.py). See docs/evaluation.md.
# =============================================================================================

SCHEMA_VERSION = 1
BEST_SAMPLE_RULES = ("per_object", "mean")
FVD_CONTEXTS = ("truth", "model")
DIVERSITY_SOURCES = ("matched_keypoint", "regression")
MODEL_TYPES = ("struct_vrnn", "cnn_vrnn")
VIDEO_METRICS = ("ssim", "psnr", "vgg_cosine")

# Per-dataset evaluation defaults (paper section 5.2, footnote 3, and Figure 3 / S1):
# the best-of-samples rule for tracking and the number of decoded samples per test window.
# Human3.6M: 100 samples as in the paper. Basketball: 20 samples (the paper does not say; 20
# keeps the CPU run under 15 minutes, see docs/evaluation.md). Unknown datasets: the
# conservative rule (one sample for all objects) and 20 samples.
DATASET_EVALUATION_DEFAULTS = {
    "basketball": dict(best_sample_rule="per_object", num_video_samples=20),
    "human36m": dict(best_sample_rule="mean", num_video_samples=100),
}
FALLBACK_EVALUATION_DEFAULTS = dict(best_sample_rule="mean", num_video_samples=20)


# Dataset sources -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DatasetSource:
  """Where a dataset's evaluation windows come from.

  Attributes:
    name: the `config.dataset` value this source serves.
    make_windows: `(config, data_dir, split, batch_size) -> (fit_windows, eval_windows)`, two
      `tf.data.Dataset`s of batches `{"image": float32 [B, L, H, W, 3] in [-0.5, 0.5],
      "true_object_pos": float32 [B, L, M, 2] (optional)}` in a deterministic order, with
      L = config.sequence_length: windows of the training split (the tracking regression is
      fitted on them) and of `split` (evaluated). A source that learns the object names and
      the best-sample rule only when it opens the data may return
      `(fit_windows, eval_windows, object_names, best_sample_rule)` instead.
    object_names: names of the M ground-truth objects, or None ("object_0", ...).
    best_sample_rule: "per_object" (Basketball) or "mean" (Human3.6M), see `tracking`.
    num_video_samples: default number of decoded samples per test window.
  """
  name: str
  make_windows: Callable
  object_names: Optional[tuple] = None
  best_sample_rule: str = FALLBACK_EVALUATION_DEFAULTS["best_sample_rule"]
  num_video_samples: int = FALLBACK_EVALUATION_DEFAULTS["num_video_samples"]


_DATASET_SOURCES = {}


def register_dataset_source(name, make_windows, object_names=None, best_sample_rule=None,
                            num_video_samples=None, replace=False):
  """Makes `evaluate.py` able to evaluate runs whose `config.dataset` is `name`.

  Args:
    name: dataset name (as in `config.dataset`).
    make_windows: see `DatasetSource.make_windows`.
    object_names: optional names of the ground-truth objects.
    best_sample_rule, num_video_samples: default from `DATASET_EVALUATION_DEFAULTS[name]`.
    replace: allow replacing an existing source of that name.

  Returns:
    The registered `DatasetSource`.
  """
  if not isinstance(name, str) or not name:
    raise ValueError(f"register_dataset_source: name must be a non-empty string, got {name!r}.")
  if not callable(make_windows):
    raise ValueError(f"register_dataset_source({name!r}): make_windows must be callable "
                     f"(config, data_dir, split, batch_size) -> (fit_windows, eval_windows).")
  if name in _DATASET_SOURCES and not replace:
    raise ValueError(f"A dataset source {name!r} is already registered; pass replace=True.")
  defaults = DATASET_EVALUATION_DEFAULTS.get(name, FALLBACK_EVALUATION_DEFAULTS)
  rule = best_sample_rule or defaults["best_sample_rule"]
  if rule not in BEST_SAMPLE_RULES:
    raise ValueError(f"register_dataset_source({name!r}): best_sample_rule must be one of "
                     f"{BEST_SAMPLE_RULES}, got {rule!r}.")
  samples = num_video_samples or defaults["num_video_samples"]
  source = DatasetSource(name, make_windows,
                         None if object_names is None else tuple(object_names), rule,
                         int(samples))
  _DATASET_SOURCES[name] = source
  return source


def _sources_module():
  """`video_structure.sources` (the project's common data entry point) if it is there."""
  try:
    from video_structure import sources
  except ImportError:
    return None
  return sources if hasattr(sources, "prepare") else None


def _windows_from_sources(config, data_dir, split, batch_size):
  """Windows of any dataset `sources.prepare` knows, with its object names and rule."""
  from video_structure import data  # Local import: data pulls in TFDS.
  source = _sources_module().prepare(config, data_dir, test_split=split)

  def windows(sequences, which):
    return data.make_windows_dataset(sequences, config.sequence_length, batch_size,
                                     training=False, drop_remainder=False,
                                     name=f"{source.name}/{which}")

  rule = "per_object" if getattr(source, "best_of_samples_per_object", False) else "mean"
  names = getattr(source, "object_names", None)
  return (windows(source.train, "train"), windows(source.test, split),
          None if names is None else tuple(names), rule)


def get_dataset_source(name):
  """The `DatasetSource` of dataset `name`: a registered one, else (for datasets that
  `video_structure.sources.prepare` opens) a generic one; ValueError naming the known ones."""
  if name in _DATASET_SOURCES:
    return _DATASET_SOURCES[name]
  if _sources_module() is not None:
    defaults = DATASET_EVALUATION_DEFAULTS.get(name, FALLBACK_EVALUATION_DEFAULTS)
    return DatasetSource(name, _windows_from_sources, None, defaults["best_sample_rule"],
                         defaults["num_video_samples"])
  raise ValueError(f"No evaluation dataset source for dataset {name!r}; registered: "
                   f"{sorted(_DATASET_SOURCES)}. Register one with "
                   f"evaluation.register_dataset_source.")


def _basketball_windows(config, data_dir, split, batch_size):
  """Basketball windows through `data.prepare_basketball` / `data.load_split`."""
  from video_structure import data  # Local import: data pulls in TFDS.
  builder = data.prepare_basketball(data_dir, config.dataset_config)

  def windows(which):
    return data.make_windows_dataset(
        data.load_split(builder, which), config.sequence_length, batch_size, training=False,
        drop_remainder=False, name=f"{config.dataset}/{which}")

  return windows("train"), windows(split)


def _register_builtin_sources():
  from video_structure import basketball
  register_dataset_source("basketball", _basketball_windows, basketball.OBJECT_NAMES,
                          replace=True)


_register_builtin_sources()


# Data in memory --------------------------------------------------------------------------------


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
  """
  train_frames: np.ndarray
  train_positions: Optional[np.ndarray]
  test_frames: np.ndarray
  test_positions: Optional[np.ndarray]
  object_names: Optional[tuple] = None
  split: str = "test"
  best_sample_rule: Optional[str] = None

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


def frames_to_uint8_exact(frames):
  """Model-input frames `x = u / 255 - 0.5` (float) back to their uint8 `u` (exact)."""
  return np.round((np.asarray(frames, np.float32) + 0.5) * 255.0).clip(0, 255).astype(np.uint8)


def frames_to_model_input(frames_uint8):
  """uint8 `[...]` -> float32 `u / 255 - 0.5` (the data pipeline's conversion)."""
  return np.asarray(frames_uint8, np.float32) / np.float32(255.0) - np.float32(0.5)


def collect_uint8_windows(windows_dataset, max_windows, name="dataset"):
  """Materialises up to `max_windows` windows of a windows dataset as uint8.

  Returns:
    (frames uint8 `[N, L, H, W, 3]`, positions float32 `[N, L, M, 2]` or None), N <= max_windows.
  """
  frames, positions, count = [], [], 0
  for batch in windows_dataset:
    frames.append(frames_to_uint8_exact(batch["image"].numpy()))
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


def load_evaluation_data(config, data_dir, split="test", num_train_windows=480,
                         num_test_windows=600, source=None, batch_size=32):
  """The windows of a run's dataset, in memory (see `EvaluationData`).

  Args:
    config: the run's `Config` (`dataset`, `sequence_length`, ...).
    data_dir: where the datasets live.
    split: the evaluated split.
    num_train_windows: training windows for the tracking regression (the first ones, in the
      stored order).
    num_test_windows: evaluated windows (the first ones, in the stored order).
    source: a `DatasetSource`; default `get_dataset_source(config.dataset)`.
  """
  source = source or get_dataset_source(config.dataset)
  windows = source.make_windows(config, data_dir, split, batch_size)
  if len(windows) == 4:
    fit_windows, eval_windows, object_names, rule = windows
  elif len(windows) == 2:
    (fit_windows, eval_windows), object_names, rule = windows, source.object_names, \
        source.best_sample_rule
  else:
    raise ValueError(f"Dataset source {source.name!r}: make_windows must return (fit_windows, "
                     f"eval_windows) or (fit_windows, eval_windows, object_names, "
                     f"best_sample_rule), got {len(windows)} values.")
  train_frames, train_positions = collect_uint8_windows(fit_windows, num_train_windows,
                                                        f"{config.dataset}/train")
  test_frames, test_positions = collect_uint8_windows(eval_windows, num_test_windows,
                                                      f"{config.dataset}/{split}")
  if (train_positions is None) != (test_positions is None):
    train_positions = test_positions = None
  return EvaluationData(train_frames, train_positions, test_frames, test_positions,
                        object_names, split, rule).validate()


# Settings --------------------------------------------------------------------------------------


@dataclasses.dataclass
class EvaluationSettings:
  """What `run_evaluation` measures and how much of it (evaluate.py flags of the same names).

  Window counts larger than what the data holds are reduced to what it holds (the JSON records
  both the request and what was used).
  """
  num_observed: int = 8
  num_video_windows: int = 100  # Test windows decoded for the video metrics (evenly spaced).
  num_video_samples: int = 20  # Decoded samples per video window.
  num_tracking_samples: int = 50  # Keypoint samples per test window for tracking (paper: 50).
  best_sample_rule: str = "per_object"  # Tracking: "per_object" (Basketball) or "mean".
  fvd_clips: int = 128  # Clips per side of the FVD; 0 = all true windows and all samples.
  fvd_context: str = "truth"  # Observed steps of generated clips: true frames or the model's.
  fvd_batch_size: int = 8
  skip_fvd: bool = False
  i3d_weights: Optional[str] = None  # Default: the cache (i3d.default_cache_dir()).
  vgg_weights: Optional[str] = None  # Default: Keras' cache; no weights -> VGG skipped.
  # VGG16 at 224x224 costs ~0.5 s per predicted frame on a 2-core CPU, so by default only the
  # first few video windows get the VGG metric (raise it on a GPU).
  num_vgg_windows: int = 4
  vgg_layers: tuple = image_metrics.DEFAULT_VGG_FEATURE_LAYERS
  num_diversity_examples: int = 6
  num_diversity_samples: int = 20
  diversity_source: Optional[str] = None  # None: matched_keypoint, or regression for cnn_vrnn.
  num_figure_examples: int = 4
  seed: int = 0
  batch_size: int = 32  # Windows per detect / keypoint-rollout call.
  sequences_per_call: int = 64  # Decoded sequences (windows x samples) per model call.

  def validate(self):
    """Raises ValueError naming the offending setting."""
    minimum = dict(num_observed=1, num_video_windows=1, num_video_samples=1, num_vgg_windows=1,
                   num_tracking_samples=1, fvd_clips=0, fvd_batch_size=1,
                   num_diversity_examples=0, num_diversity_samples=1, num_figure_examples=0,
                   seed=0, batch_size=1, sequences_per_call=1)
    for name, low in minimum.items():
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    if self.fvd_clips == 1:
      raise ValueError("fvd_clips must be 0 (all) or >= 2 (the FVD covariance divides by "
                       "N - 1), got 1.")
    for name, allowed in (("best_sample_rule", BEST_SAMPLE_RULES),
                          ("fvd_context", FVD_CONTEXTS)):
      if getattr(self, name) not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}.")
    if self.diversity_source is not None and self.diversity_source not in DIVERSITY_SOURCES:
      raise ValueError(f"diversity_source must be None or one of {DIVERSITY_SOURCES}, got "
                       f"{self.diversity_source!r}.")
    if self.num_diversity_samples > self.num_tracking_samples:
      raise ValueError(f"num_diversity_samples ({self.num_diversity_samples}) must be <= "
                       f"num_tracking_samples ({self.num_tracking_samples}): the diversity "
                       f"figure draws the tracking samples.")
    layers = (self.vgg_layers,) if isinstance(self.vgg_layers, str) else tuple(self.vgg_layers)
    unknown = [name for name in layers if name not in image_metrics.VGG16_CONV_LAYERS]
    if not layers or unknown:
      raise ValueError(f"vgg_layers must be names from {image_metrics.VGG16_CONV_LAYERS}, got "
                       f"{layers}.")
    self.vgg_layers = layers
    return self


def model_type(model):
  """'struct_vrnn' or 'cnn_vrnn': `model.config.model_type` if the config has one, else
  'cnn_vrnn' if `model.config.representation` is 'features', else 'struct_vrnn'."""
  config = getattr(model, "config", None)
  value = getattr(config, "model_type", None)
  if value is None:
    value = "cnn_vrnn" if getattr(config, "representation", None) == "features" \
        else "struct_vrnn"
  if value not in MODEL_TYPES:
    raise ValueError(f"model.config.model_type must be one of {MODEL_TYPES}, got {value!r}.")
  return value


# Model calls -----------------------------------------------------------------------------------


def _numpy(value):
  return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


class ModelCalls:
  """Batched numpy-in / numpy-out calls of a model's inference interface.

  A Keras model's `detect` / `predict_future` are wrapped in `tf.function` (measured 1.5-2x
  faster than eager on this CPU); anything else (a `SavedModelAdapter`, a test double) is
  called as it is. A model whose `always_decodes_frames` attribute is true (the SavedModel's
  `predict` signature) gets at most `max_sequences` windows x samples per call, so that
  keypoint-only rollouts do not decode tens of thousands of frames at once.
  """

  def __init__(self, model, max_sequences=64):
    import keras  # Local import keeps this module importable in numpy-only contexts.
    self.model = model
    self.max_sequences = max_sequences if getattr(model, "always_decodes_frames", False) \
        else None
    self._compiled = isinstance(model, keras.Model)
    self._predict_functions = {}
    self._detect = (tf.function(lambda frames: model.detect(frames)[0], reduce_retracing=True)
                    if self._compiled else (lambda frames: model.detect(frames)[0]))

  def detect(self, frames_uint8):
    """uint8 `[B, T, H, W, 3]` -> float32 `[B, T, K, 3]` representation."""
    return _numpy(self._detect(tf.constant(frames_to_model_input(frames_uint8)))).astype(
        np.float32)

  def predict(self, observed_uint8, num_predicted, num_samples, decode_frames, seed):
    """Samples futures.

    Args:
      observed_uint8: uint8 `[B, n, H, W, 3]`.
      num_predicted, num_samples: ints.
      decode_frames: also return frames.
      seed: (int, int) stateless seed.

    Returns:
      dict with `keypoints` float32 `[s, B, n + m, K, 3]` and, if `decode_frames`, `frames`
      float32 `[s, B, n + m, H, W, 3]` (the model's range, about [-0.5, 0.5]).
    """
    if self.max_sequences and len(observed_uint8) * num_samples > self.max_sequences:
      return self._predict_in_chunks(observed_uint8, num_predicted, num_samples, decode_frames,
                                     seed)
    key = (int(num_predicted), int(num_samples), bool(decode_frames))
    function = self._predict_functions.get(key)
    if function is None:
      model = self.model

      def function(observed, seed_tensor):
        return model.predict_future(observed, key[0], key[1], decode_frames=key[2],
                                    seed=seed_tensor)

      if self._compiled:
        function = tf.function(function, reduce_retracing=True)
      self._predict_functions[key] = function
    result = function(tf.constant(frames_to_model_input(observed_uint8)),
                      tf.constant([int(seed[0]), int(seed[1])], tf.int32))
    output = {"keypoints": _numpy(result["keypoints"]).astype(np.float32)}
    if decode_frames:
      output["frames"] = _numpy(result["frames"]).astype(np.float32)
    return output

  def _predict_in_chunks(self, observed_uint8, num_predicted, num_samples, decode_frames, seed):
    """`predict` over groups of windows and samples of at most `max_sequences` sequences; chunk
    k > 0 uses the seed (seed[0] + 100003 k, seed[1])."""
    samples_per_call = min(num_samples, self.max_sequences)
    windows_per_call = max(1, self.max_sequences // samples_per_call)
    rows, chunk = [], 0
    for start in range(0, len(observed_uint8), windows_per_call):
      columns = []
      for sample_start in range(0, num_samples, samples_per_call):
        count = min(samples_per_call, num_samples - sample_start)
        chunk_seed = (int(seed[0]) + 100003 * chunk, int(seed[1]))
        columns.append(self.predict(observed_uint8[start:start + windows_per_call],
                                    num_predicted, count, decode_frames, chunk_seed))
        chunk += 1
      rows.append({key: np.concatenate([column[key] for column in columns], axis=0)
                   for key in columns[0]})
    return {key: np.concatenate([row[key] for row in rows], axis=1) for key in rows[0]}


class SavedModelAdapter:
  """The inference interface (`detect`, `predict_future`, `config`) of an exported SavedModel,
  through its signatures (`export.py`): frames go in as uint8 and come back as uint8, so the
  adapter converts from and to the model's float range. Note that the `predict` signature
  always decodes frames, so keypoint-only rollouts (tracking) cost as much as decoded ones.
  """

  always_decodes_frames = True

  def __init__(self, path, config):
    if not os.path.isdir(path) or not os.path.exists(os.path.join(path, "saved_model.pb")):
      raise FileNotFoundError(f"--saved_model {path!r} is not a SavedModel directory (no "
                              f"saved_model.pb); export.py writes <run_dir>/saved_model.")
    self.path = path
    self.config = config
    loaded = tf.saved_model.load(path)
    missing = [name for name in ("detect_keypoints", "predict") if name not in loaded.signatures]
    if missing:
      raise ValueError(f"SavedModel {path!r} lacks the signature(s) {missing}; found "
                       f"{sorted(loaded.signatures)}.")
    self._loaded = loaded
    self._detect = loaded.signatures["detect_keypoints"]
    self._predict = loaded.signatures["predict"]
    if "actions" in self._predict.structured_input_signature[1]:
      raise ValueError(f"SavedModel {path!r} is action-conditional; evaluate.py does not feed "
                       f"actions yet.")

  @staticmethod
  def _to_uint8(frames):
    return tf.cast(tf.round(tf.clip_by_value(tf.convert_to_tensor(frames, tf.float32) + 0.5,
                                             0.0, 1.0) * 255.0), tf.uint8)

  def detect(self, frames):
    """float32 `[B, T, H, W, 3]` in [-0.5, 0.5] -> (keypoints `[B, T, K, 3]`, None)."""
    return self._detect(frames=self._to_uint8(frames))["keypoints"], None

  def predict_future(self, observed_frames, num_predicted, num_samples=1, actions=None,
                     decode_frames=True, seed=None):
    """As `StructVRNN.predict_future` (frames come back quantised to 1/255)."""
    if actions is not None:
      raise ValueError("SavedModelAdapter.predict_future: actions are not supported.")
    seed = tf.constant([0, 0], tf.int32) if seed is None else tf.cast(seed, tf.int32)
    result = self._predict(frames=self._to_uint8(observed_frames),
                           num_predicted=tf.constant(int(num_predicted), tf.int32),
                           num_samples=tf.constant(int(num_samples), tf.int32), seed=seed)
    output = {"keypoints": result["keypoints"],
              "observed_keypoints": result["observed_keypoints"]}
    if decode_frames:
      output["frames"] = tf.cast(result["frames"], tf.float32) / 255.0 - 0.5
    return output


# Progress --------------------------------------------------------------------------------------


class PhaseProgress:
  """A printed progress bar per phase: `[2/6] tracking |#####.....| 10/19 0:12`.

  On a terminal the bar is redrawn in place; otherwise a line is printed at every 25%.
  `seconds` holds each finished phase's wall time.
  """

  def __init__(self, phases, stream=None, width=24):
    self.phases = list(phases)
    self.stream = stream or sys.stdout
    self.width = width
    self.seconds = {}
    self._name = None
    self._dynamic = bool(getattr(self.stream, "isatty", lambda: False)())

  def start(self, name, total=1, detail=""):
    if name not in self.phases:
      raise ValueError(f"Unknown phase {name!r}; phases: {self.phases}.")
    self._name, self._total, self._start = name, max(int(total), 1), time.time()
    self._printed_quarter = 0  # Lines at 25, 50, 75 and 100%.
    index = self.phases.index(name) + 1
    self._prefix = f"[{index}/{len(self.phases)}] {name}"
    print(f"{self._prefix}: {detail}" if detail else self._prefix, file=self.stream,
          flush=True)
    self.update(0)

  def update(self, done):
    done = min(int(done), self._total)
    elapsed = time.time() - self._start
    filled = int(self.width * done / self._total)
    line = (f"{self._prefix} |{'#' * filled}{'.' * (self.width - filled)}| {done}/{self._total}"
            f" {_format_seconds(elapsed)}")
    if self._dynamic:
      print("\r" + line, end="" if done < self._total else "\n", file=self.stream, flush=True)
    else:
      quarter = 4 * done // self._total
      if quarter > self._printed_quarter and done > 0:
        self._printed_quarter = quarter
        print(line, file=self.stream, flush=True)

  def end(self, message=""):
    seconds = time.time() - self._start
    self.seconds[self._name] = seconds
    print(f"{self._prefix} done in {_format_seconds(seconds)}"
          + (f": {message}" if message else ""), file=self.stream, flush=True)
    self._name = None
    return seconds


def _format_seconds(seconds):
  minutes, seconds = divmod(int(round(seconds)), 60)
  return f"{minutes}:{seconds:02d}"


# Pure metric helpers ---------------------------------------------------------------------------


def _steps_index(selection_steps, num_steps):
  index = np.arange(num_steps)[selection_steps] if isinstance(selection_steps, slice) \
      else np.asarray(selection_steps, int)
  if index.ndim != 1 or index.size == 0 or index.min() < 0 or index.max() >= num_steps:
    raise ValueError(f"selection_steps must select at least one of the {num_steps} time steps, "
                     f"got {selection_steps!r}.")
  return index


def closest_and_furthest(scores, selection_steps=slice(None)):
  """The closest-to-truth and furthest-from-truth sample of every example, for one metric.

  A sample is a whole predicted sequence, so the choice is made once per example: the closest
  sample is the one with the highest mean similarity over `selection_steps`, the furthest the
  one with the lowest (ties: the lowest sample index). The curves then follow that sample at
  every time step.

  Args:
    scores: `[S, B, T]` similarities (higher = closer to the truth).
    selection_steps: time steps the choice is based on (slice or index list), e.g. the
      predicted steps `slice(n, None)`.

  Returns:
    dict with `closest_index`, `furthest_index` int `[B]` and `closest`, `furthest` float64
    `[B, T]` (the chosen samples' scores).
  """
  scores = np.asarray(scores, np.float64)
  if scores.ndim != 3 or min(scores.shape) < 1:
    raise ValueError(f"scores must have shape [S, B, T] (samples, examples, time steps), got "
                     f"{scores.shape}.")
  if np.any(np.isnan(scores)):
    raise ValueError("scores contains NaN.")
  index = _steps_index(selection_steps, scores.shape[2])
  with np.errstate(invalid="ignore"):
    mean = scores[:, :, index].mean(axis=2)  # [S, B]; +inf (identical frames' PSNR) stays inf.
  closest = np.argmax(mean, axis=0)
  furthest = np.argmin(mean, axis=0)
  examples = np.arange(scores.shape[1])
  return {"closest_index": closest, "furthest_index": furthest,
          "closest": scores[closest, examples], "furthest": scores[furthest, examples]}


def metric_curves(scores, num_observed):
  """JSON curves of one video metric from `[S, B, T]` scores (see docs/evaluation.md).

  Returns:
    (dict of `[T]` lists: `closest`, `furthest` (sample chosen by the mean over the predicted
    steps), `closest_per_step`, `furthest_per_step` (max / min over samples independently at
    every step, image_metrics' reduction) and `sample_mean`; and the selection of
    `closest_and_furthest`.)
  """
  scores = np.asarray(scores, np.float64)
  selection = closest_and_furthest(scores, slice(num_observed, None))
  per_step_closest, per_step_furthest = image_metrics.closest_and_furthest_curves(scores)
  curves = {
      "closest": selection["closest"].mean(axis=0).tolist(),
      "furthest": selection["furthest"].mean(axis=0).tolist(),
      "closest_per_step": per_step_closest.tolist(),
      "furthest_per_step": per_step_furthest.tolist(),
      "sample_mean": scores.mean(axis=(0, 1)).tolist(),
  }
  return curves, selection


def evenly_spaced_indices(total, count):
  """`count` distinct indices spread evenly over `range(total)` (all of them if count >= total),
  first and last included."""
  if count >= total:
    return np.arange(total)
  return np.unique(np.round(np.linspace(0, total - 1, count)).astype(int))


def _units(errors_in_coords, image_size):
  """{coords, pixels, percent_of_width} of an error array (lists) or scalar (floats)."""
  coords = np.asarray(errors_in_coords, np.float64)
  pixels = coords * tracking.pixels_per_unit(image_size)
  percent = pixels / image_size * 100.0
  if coords.ndim == 0:
    return {"coords": float(coords), "pixels": float(pixels), "percent_of_width": float(percent)}
  return {"coords": coords.tolist(), "pixels": pixels.tolist(),
          "percent_of_width": percent.tolist()}


def error_summary(errors, image_size, object_names, num_observed):
  """JSON summary of tracking errors `[N, T, M]` (coordinate units).

  Returns:
    dict: `per_time_step` (mean over N and M, length T), `per_object_per_time_step`
    ({name: mean over N}), `mean_predicted` / `mean_observed` (over the predicted / observed
    steps, N and M), `per_object_mean_predicted` ({name: ...}); each in coords, pixels and
    percent of the frame width.
  """
  errors = np.asarray(errors, np.float64)
  observed = errors[:, :num_observed]
  predicted = errors[:, num_observed:]
  summary = {
      "per_time_step": _units(errors.mean(axis=(0, 2)), image_size),
      "per_object_per_time_step": {name: _units(errors[:, :, m].mean(axis=0), image_size)
                                   for m, name in enumerate(object_names)},
      "mean_observed": _units(observed.mean(), image_size),
  }
  if predicted.shape[1]:
    summary["mean_predicted"] = _units(predicted.mean(), image_size)
    summary["per_object_mean_predicted"] = {
        name: _units(predicted[:, :, m].mean(), image_size)
        for m, name in enumerate(object_names)}
  return summary


def match_keypoints_to_objects(keypoints, positions):
  """For every object, the keypoint closest to it on average (paper Figure S3).

  Args:
    keypoints: `[N, T, K, 3]` detected keypoints (x, y, mu).
    positions: `[N, T, M, 2]` true object positions.

  Returns:
    int `[M]`: keypoint index per object (argmin over k of the mean distance).
  """
  keypoints = np.asarray(keypoints, np.float64)
  positions = np.asarray(positions, np.float64)
  distance = np.linalg.norm(keypoints[:, :, None, :, :2] - positions[:, :, :, None, :], axis=-1)
  return np.argmin(distance.mean(axis=(0, 1)), axis=-1)  # [M]


# Phases ----------------------------------------------------------------------------------------


def detect_representation(calls, frames_uint8, batch_size, progress=None, done_offset=0):
  """`ModelCalls.detect` over `[N, T, H, W, 3]` uint8 in batches -> float32 `[N, T, K, 3]`."""
  outputs = []
  for start in range(0, len(frames_uint8), batch_size):
    outputs.append(calls.detect(frames_uint8[start:start + batch_size]))
    if progress is not None:
      progress.update(done_offset + start // batch_size + 1)
  return np.concatenate(outputs)


def tracking_evaluation(calls, regressor, test_frames, test_keypoints, test_positions,
                        num_observed, num_samples, best_sample_rule, seed=0, batch_size=32,
                        object_names=None, keep_examples=0, keep_samples=0, progress=None):
  """Tracking error per time step (paper Figure 4) of the best of `num_samples` samples, of
  the regression from the detected keypoints, and of the repeat-last baseline.

  Args:
    calls: `ModelCalls`.
    regressor: `tracking.LinearRegressor` fitted on training windows.
    test_frames: uint8 `[N, L, H, W, 3]`.
    test_keypoints: `[N, L, K, 3]` detected in `test_frames`.
    test_positions: `[N, L, M, 2]`.
    num_observed: n; the remaining L - n steps are predicted.
    num_samples: samples per window.
    best_sample_rule: "per_object" or "mean" (see `tracking.best_of_samples`); the sample is
      scored by its mean error over the predicted steps and its errors at all L steps are
      reported.
    keep_examples, keep_samples: also return the keypoints of the first `keep_samples` samples
      of the first `keep_examples` windows (for the diversity figure).

  Returns:
    (report dict, kept keypoints `[keep_samples, keep_examples, L, K, 3]` float32)
  """
  num_windows, window_length, image_size = test_frames.shape[0], test_frames.shape[1], \
      test_frames.shape[2]
  num_objects = test_positions.shape[2]
  num_predicted = window_length - num_observed
  if num_predicted < 1:
    raise ValueError(f"num_observed ({num_observed}) must be smaller than the window length "
                     f"({window_length}).")
  object_names = list(object_names or [f"object_{m}" for m in range(num_objects)])
  per_object = best_sample_rule == "per_object"
  best, kept = [], []
  for index, start in enumerate(range(0, num_windows, batch_size)):
    stop = min(start + batch_size, num_windows)
    prediction = calls.predict(test_frames[start:stop, :num_observed], num_predicted,
                               num_samples, decode_frames=False, seed=(seed, start))
    sample_keypoints = prediction["keypoints"]  # [S, b, L, K, 3]
    sample_positions = tracking.predict_positions(regressor, sample_keypoints, num_objects)
    errors = tracking.object_errors(sample_positions, np.broadcast_to(
        test_positions[None, start:stop], sample_positions.shape))  # [S, b, L, M]
    best.append(tracking.best_of_samples(errors, per_object=per_object,
                                         time_steps=slice(num_observed, None)))
    if start < keep_examples:
      kept.append(sample_keypoints[:keep_samples, :keep_examples - start])
    if progress is not None:
      progress.update(index + 1)
  best = np.concatenate(best)
  detected = tracking.object_errors(
      tracking.predict_positions(regressor, test_keypoints, num_objects), test_positions)
  repeated = np.concatenate([test_keypoints[:, :num_observed], tracking.repeat_last_observed(
      test_keypoints[:, :num_observed], num_predicted)], axis=1)
  repeat_last = tracking.object_errors(
      tracking.predict_positions(regressor, repeated, num_objects), test_positions)
  report = {
      "num_test_windows": int(num_windows), "num_samples": int(num_samples),
      "num_observed": int(num_observed), "num_predicted": int(num_predicted),
      "best_sample_rule": best_sample_rule,
      "image_size": int(image_size), "pixels_per_unit": tracking.pixels_per_unit(image_size),
      "object_names": object_names,
      "best_of_samples": error_summary(best, image_size, object_names, num_observed),
      "repeat_last": error_summary(repeat_last, image_size, object_names, num_observed),
      "detected": error_summary(detected, image_size, object_names, num_observed),
  }
  kept = np.concatenate(kept, axis=1) if kept else np.zeros((0, 0) + test_keypoints.shape[1:],
                                                            np.float32)
  return report, kept


def video_evaluation(calls, frames_uint8, num_observed, num_samples, seed=0,
                     sequences_per_call=64, vgg_features=None, fvd_clip_count=0,
                     fvd_context="truth", figure_examples=0, progress=None,
                     vgg_windows=None):
  """Decoded samples and their per-frame SSIM, PSNR and VGG cosine similarity.

  Args:
    calls: `ModelCalls`.
    frames_uint8: uint8 `[V, L, H, W, 3]` windows.
    num_observed: n observed frames; L - n are predicted.
    num_samples: S decoded samples per window.
    sequences_per_call: windows x samples decoded per model call (memory bound); S larger than
      this is split into several calls with different seeds.
    vgg_features: an `image_metrics.VGGFeatures` or a stand-in, or None (VGG not computed).
    vgg_windows: compute VGG on the first this many windows only (default: all).
    fvd_clip_count: keep this many generated clips for the FVD, in sample-major order
      (sample 0 of every window, then sample 1, ...).
    fvd_context: "truth": generated clips are the true observed frames followed by the
      predicted ones; "model": the model's frames at every step.
    figure_examples: keep every sample's frames and keypoints of the first windows.

  Returns:
    dict with `scores` ({metric: float64 `[S, V, L]`; `[S, min(V, vgg_windows), L]` for
    `vgg_cosine`}), `fvd_clips` uint8 `[C, L, H, W, 3]`,
    `figure_frames` uint8 `[F, S, L, H, W, 3]`, `figure_keypoints` `[F, S, L, K, 3]`.
  """
  num_windows, window_length = frames_uint8.shape[:2]
  num_predicted = window_length - num_observed
  samples_per_call = min(num_samples, sequences_per_call)
  windows_per_call = max(1, sequences_per_call // samples_per_call)
  scores = {name: np.zeros((num_samples, num_windows, window_length))
            for name in ("ssim", "psnr")}
  vgg_count = 0
  if vgg_features is not None:
    vgg_count = num_windows if vgg_windows is None else min(vgg_windows, num_windows)
    scores["vgg_cosine"] = np.zeros((num_samples, vgg_count, window_length))
  fvd_clips = [None] * min(fvd_clip_count, num_samples * num_windows)
  figure_count = min(figure_examples, num_windows)
  figure_frames, figure_keypoints = [None] * figure_count, [None] * figure_count
  calls_done = 0
  for start in range(0, num_windows, windows_per_call):
    stop = min(start + windows_per_call, num_windows)
    truth = frames_uint8[start:stop]
    truth_unit = truth.astype(np.float32) / 255.0
    for sample_start in range(0, num_samples, samples_per_call):
      count = min(samples_per_call, num_samples - sample_start)
      prediction = calls.predict(truth[:, :num_observed], num_predicted, count,
                                 decode_frames=True, seed=(seed, 1_000_000 + start * 1_000
                                                           + sample_start))
      predicted_unit = np.clip(prediction["frames"] + 0.5, 0.0, 1.0)  # [s, b, L, H, W, 3]
      flat_predicted = predicted_unit.reshape((-1,) + predicted_unit.shape[2:])
      flat_truth = np.broadcast_to(truth_unit[None], predicted_unit.shape).reshape(
          flat_predicted.shape)
      rows = slice(sample_start, sample_start + count)
      shape = (count, stop - start, window_length)
      scores["ssim"][rows, start:stop] = image_metrics.ssim_per_frame(
          flat_predicted, flat_truth).reshape(shape)
      scores["psnr"][rows, start:stop] = image_metrics.psnr_per_frame(
          flat_predicted, flat_truth).reshape(shape)
      if start < vgg_count:
        vgg_stop = min(stop, vgg_count)
        part = predicted_unit[:, :vgg_stop - start]
        part_truth = np.broadcast_to(truth_unit[None, :vgg_stop - start], part.shape)
        flat_shape = (-1,) + part.shape[2:]
        scores["vgg_cosine"][rows, start:vgg_stop] = (
            image_metrics.vgg_cosine_similarity_per_frame(
                part.reshape(flat_shape), part_truth.reshape(flat_shape), vgg_features)
            .reshape(count, vgg_stop - start, window_length))
      predicted_uint8 = visualize.frames_to_uint8(prediction["frames"])
      for s in range(count):
        for b in range(stop - start):
          window = start + b
          clip_index = (sample_start + s) * num_windows + window
          if clip_index < len(fvd_clips):
            clip = predicted_uint8[s, b]
            if fvd_context == "truth":
              clip = np.concatenate([truth[b, :num_observed], clip[num_observed:]])
            fvd_clips[clip_index] = clip
      for window in range(start, min(stop, figure_count)):
        frames_part = predicted_uint8[:, window - start]
        keypoints_part = prediction["keypoints"][:, window - start]
        if figure_frames[window] is None:
          figure_frames[window], figure_keypoints[window] = frames_part, keypoints_part
        else:
          figure_frames[window] = np.concatenate([figure_frames[window], frames_part])
          figure_keypoints[window] = np.concatenate([figure_keypoints[window], keypoints_part])
      calls_done += 1
      if progress is not None:
        progress.update(calls_done)
  return {
      "scores": scores,
      "fvd_clips": np.stack(fvd_clips) if fvd_clips else None,
      "figure_frames": np.stack(figure_frames) if figure_count else None,
      "figure_keypoints": np.stack(figure_keypoints) if figure_count else None,
  }


def video_calls_count(num_windows, num_samples, sequences_per_call):
  """Number of model calls `video_evaluation` makes (for the progress bar)."""
  samples_per_call = min(num_samples, sequences_per_call)
  windows_per_call = max(1, sequences_per_call // samples_per_call)
  return math.ceil(num_windows / windows_per_call) * math.ceil(num_samples / samples_per_call)


def fvd_evaluation(real_clips, generated_clips, embedding_model, batch_size=8, progress=None):
  """FVD between two sets of uint8 clips `[C, L, H, W, 3]` (L >= 9).

  Args:
    embedding_model: `i3d.load_i3d()`, or a stand-in with the same call signature
      (`model(frames [B, L, 224, 224, 3] in [-1, 1], training=False) -> [B, D]`).

  Returns:
    dict: `fvd`, `num_real_clips`, `num_generated_clips`.
  """
  update = None if progress is None else (lambda done, _: progress.update(done))
  update_second = None if progress is None else (
      lambda done, _: progress.update(len(real_clips) + done))
  real = fvd.fvd_embeddings(real_clips, embedding_model, batch_size, progress=update)
  generated = fvd.fvd_embeddings(generated_clips, embedding_model, batch_size,
                                 progress=update_second)
  return {"fvd": fvd.frechet_distance(real, generated), "num_real_clips": int(len(real_clips)),
          "num_generated_clips": int(len(generated_clips))}


# Orchestration ---------------------------------------------------------------------------------

PHASES = ("load", "detect", "tracking", "video", "fvd", "figures")
_AUTO = "auto"


def _is_auto(value):
  return isinstance(value, str) and value == _AUTO


def _load_vgg(settings):
  """(VGGFeatures or None, skip message or None)."""
  try:
    return image_metrics.VGGFeatures(settings.vgg_weights, settings.vgg_layers), None
  except image_metrics.WeightsUnavailable as error:
    return None, f"VGG cosine similarity skipped: {error}"


def _fvd_availability(settings, window_length, check_weights=True):
  """None if FVD can run, else the plain message saying why not."""
  if settings.skip_fvd:
    return "FVD skipped: skip_fvd was set (--skip_fvd)."
  if window_length < fvd.MIN_FRAMES:
    return (f"FVD skipped: windows have {window_length} frames; I3D needs at least "
            f"{fvd.MIN_FRAMES}.")
  if check_weights:
    try:
      i3d.find_i3d_weights(settings.i3d_weights)
    except i3d.I3DWeightsUnavailable as error:
      return f"FVD skipped: {error}"
  return None


def _sanitize(value):
  """JSON-safe copy: numpy scalars/arrays to Python, non-finite floats to None."""
  if isinstance(value, dict):
    return {str(k): _sanitize(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_sanitize(v) for v in value]
  if isinstance(value, np.ndarray):
    return _sanitize(value.tolist())
  if isinstance(value, (bool, np.bool_)):
    return bool(value)
  if isinstance(value, (np.integer,)):
    return int(value)
  if isinstance(value, (float, np.floating)):
    return float(value) if math.isfinite(value) else None
  return value


def write_json(path, report):
  """Writes `report` as JSON atomically (numpy values converted, non-finite numbers as null);
  returns `path`."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  temporary = f"{path}.tmp"
  with open(temporary, "w") as f:
    json.dump(_sanitize(report), f, indent=1, allow_nan=False)
  os.replace(temporary, path)
  return path


def run_evaluation(model, data, settings, output_dir, vgg_features=_AUTO, fvd_model=_AUTO,
                   stream=None, run_info=None, progress=None):
  """The full evaluation (docs/evaluation.md): writes `output_dir/evaluation.json` and figures.

  Args:
    model: anything with the inference interface (`detect`, `predict_future`; a Keras
      StructVRNN, a `SavedModelAdapter`, ...).
    data: `EvaluationData`.
    settings: `EvaluationSettings`.
    output_dir: created if missing.
    vgg_features: "auto" (load per `settings.vgg_weights`; skipped with a message when there
      are no weights), None (skip), or a feature extractor (tests inject a stand-in).
    fvd_model: "auto" (I3D from `settings.i3d_weights` / the cache; skipped with a message if
      absent), None (skip), or an embedding model with I3D's call signature.
    stream: where progress goes (default stdout).
    run_info: dict stored under "run" in the JSON (checkpoint, config, ...).
    progress: a `PhaseProgress` over `PHASES` whose "load" phase the caller has run (its time
      is then reported too); default: a new one.

  Returns:
    The report dict (also written as JSON).
  """
  stream = stream or sys.stdout
  settings = settings.validate()
  data.validate()
  started = time.time()
  load_start = os.getloadavg()
  os.makedirs(output_dir, exist_ok=True)
  calls = ModelCalls(model, settings.sequences_per_call)
  kind = model_type(model)
  num_observed = settings.num_observed
  window_length = data.test_frames.shape[1]
  image_size = data.test_frames.shape[2]
  if not 0 < num_observed < window_length:
    raise ValueError(f"num_observed must be in [1, {window_length - 1}] for windows of "
                     f"{window_length} frames, got {num_observed}.")
  num_test = len(data.test_frames)
  has_positions = data.test_positions is not None
  skipped = []
  report = {
      "schema_version": SCHEMA_VERSION,
      "run": dict(run_info or {}, model_type=kind),
      "settings": dataclasses.asdict(settings),
      "data": {"split": data.split, "num_train_windows": int(len(data.train_frames)),
               "num_test_windows": int(num_test), "window_length": int(window_length),
               "image_size": int(image_size), "num_observed": int(num_observed),
               "num_predicted": int(window_length - num_observed),
               "object_names": list(data.object_names) if data.object_names else None,
               "has_positions": bool(has_positions)},
  }
  progress = progress or PhaseProgress(PHASES, stream)

  # What can be measured, decided first so that a bad weights file fails before any work.
  if _is_auto(vgg_features):
    vgg_features, vgg_message = _load_vgg(settings)
  else:
    vgg_message = None if vgg_features is not None else "VGG cosine similarity skipped."
  fvd_message = _fvd_availability(settings, window_length, check_weights=_is_auto(fvd_model))
  if fvd_model is None and not fvd_message:
    fvd_message = "FVD skipped: no embedding model."
  for message in (vgg_message, fvd_message):
    if message:
      skipped.append(message)
      print(message, file=stream, flush=True)

  # 1. Detect the representation of the fit and test windows; fit the regression.
  batches = math.ceil(len(data.train_frames) / settings.batch_size) + math.ceil(
      num_test / settings.batch_size)
  progress.start("detect", batches, f"representation of {len(data.train_frames)} training "
                 f"and {num_test} {data.split} windows")
  train_keypoints = detect_representation(calls, data.train_frames, settings.batch_size,
                                          progress)
  test_keypoints = detect_representation(
      calls, data.test_frames, settings.batch_size, progress,
      done_offset=math.ceil(len(data.train_frames) / settings.batch_size))
  regressor = None
  if has_positions:
    regressor = tracking.fit_keypoint_regressor(train_keypoints, data.train_positions)
  progress.end()

  # 2. Tracking.
  num_objects = data.test_positions.shape[2] if has_positions else 0
  object_names = list(data.object_names or [f"object_{m}" for m in range(num_objects)])
  diversity_examples = min(settings.num_diversity_examples, num_test)
  kept_keypoints = None
  if has_positions:
    progress.start("tracking", math.ceil(num_test / settings.batch_size),
                   f"best of {settings.num_tracking_samples} samples, {num_test} windows")
    report["tracking"], kept_keypoints = tracking_evaluation(
        calls, regressor, data.test_frames, test_keypoints, data.test_positions, num_observed,
        settings.num_tracking_samples, settings.best_sample_rule, settings.seed,
        settings.batch_size, object_names, diversity_examples, settings.num_diversity_samples,
        progress)
    report["tracking"]["regressor"] = regressor.to_dict()
    progress.end()
  else:
    message = "Tracking skipped: the data have no ground-truth object positions."
    skipped.append(message)
    report["tracking"] = {"skipped": message}
    progress.start("tracking", 1)
    progress.end(message)

  # 3. Video prediction metrics (and the clips FVD and the figures need).
  video_indices = evenly_spaced_indices(num_test, settings.num_video_windows)
  num_video = len(video_indices)
  num_samples = settings.num_video_samples
  if fvd_message:
    fvd_count = 0
  elif settings.fvd_clips == 0:
    fvd_count = num_video * num_samples
  else:
    fvd_count = settings.fvd_clips
  progress.start("video", video_calls_count(num_video, num_samples, settings.sequences_per_call),
                 f"{num_samples} decoded samples of {num_video} windows")
  video = video_evaluation(
      calls, data.test_frames[video_indices], num_observed, num_samples, settings.seed,
      settings.sequences_per_call, vgg_features, fvd_count, settings.fvd_context,
      settings.num_figure_examples, progress, settings.num_vgg_windows)
  video_report = {"num_windows": int(num_video), "window_indices": video_indices.tolist(),
                  "num_samples": int(num_samples), "num_observed": int(num_observed),
                  "num_time_steps": int(window_length),
                  "selection": "per example, the sample with the highest (closest) / lowest "
                               "(furthest) mean of the metric over the predicted steps"}
  selections = {}
  for name in VIDEO_METRICS:
    if name in video["scores"]:
      video_report[name], selections[name] = metric_curves(video["scores"][name], num_observed)
      video_report[name]["num_windows"] = int(video["scores"][name].shape[1])
    else:
      video_report[name] = {"skipped": vgg_message or "not computed"}
  report["video"] = video_report
  progress.end()

  # 4. FVD.
  if fvd_message:
    report["fvd"] = {"skipped": fvd_message}
    progress.start("fvd", 1)
    progress.end(fvd_message)
  else:
    real_count = num_test if settings.fvd_clips == 0 else min(settings.fvd_clips, num_test)
    real_clips = data.test_frames[evenly_spaced_indices(num_test, real_count)]
    generated = video["fvd_clips"]
    if len(real_clips) < 2 or len(generated) < 2:
      message = (f"FVD skipped: it needs at least 2 clips per side, got {len(real_clips)} true "
                 f"and {len(generated)} generated.")
      skipped.append(message)
      report["fvd"] = {"skipped": message}
      progress.start("fvd", 1)
      progress.end(message)
    else:
      progress.start("fvd", len(real_clips) + len(generated),
                     f"I3D on {len(real_clips)} true and {len(generated)} generated clips")
      embedding_model = i3d.load_i3d(settings.i3d_weights) if _is_auto(fvd_model) \
          else fvd_model
      report["fvd"] = fvd_evaluation(real_clips, generated, embedding_model,
                                     settings.fvd_batch_size, progress)
      report["fvd"].update(context=settings.fvd_context, requested_clips=settings.fvd_clips,
                           embedding="i3d" if _is_auto(fvd_model) else "injected")
      progress.end(f"FVD {report['fvd']['fvd']:.1f}")

  # 5. Figures.
  progress.start("figures", 4)
  # Figure 3 picks its examples by VGG; where VGG covers fewer windows than drawn, by SSIM.
  figure_examples = 0 if video["figure_frames"] is None else len(video["figure_frames"])
  figure_metric = "vgg_cosine" if "vgg_cosine" in selections and len(
      selections["vgg_cosine"]["closest_index"]) >= figure_examples else "ssim"
  figures = write_figures(
      output_dir, report, data, video, video_indices, selections, figure_metric,
      test_keypoints, kept_keypoints, regressor, settings, kind, progress)
  report["figures"] = figures
  progress.end()

  report["skipped"] = skipped
  report["timing"] = {"seconds_per_phase": dict(progress.seconds),
                      "total_seconds": time.time() - started + progress.seconds.get("load", 0.0),
                      "load_average_start": list(load_start),
                      "load_average_end": list(os.getloadavg()),
                      "cpu_count": os.cpu_count()}
  write_json(os.path.join(output_dir, "evaluation.json"), report)
  return report


def write_figures(output_dir, report, data, video, video_indices, selections, figure_metric,
                  test_keypoints, kept_keypoints, regressor, settings, kind, progress=None):
  """Draws every figure of an evaluation; returns {name: path relative to output_dir}."""
  num_observed = settings.num_observed
  figures = {}
  draw_keypoints = kind != "cnn_vrnn"  # A CNN-VRNN's features are no image positions.

  # Video metric curves.
  panels = []
  for name, label in (("vgg_cosine", "VGG cosine similarity"), ("ssim", "SSIM"),
                      ("psnr", "PSNR (dB)")):
    curves = report["video"][name]
    if "skipped" in curves:
      continue
    for which in ("closest", "furthest"):
      panels.append(dict(title=f"{label}: {which} of {report['video']['num_samples']} samples",
                         ylabel=label, lines=[
                             dict(label=f"{which} (whole sample)", y=curves[which]),
                             dict(label=f"{which} per step", y=curves[f"{which}_per_step"],
                                  linestyle=":"),
                             dict(label="mean of samples", y=curves["sample_mean"],
                                  linestyle="--", color="gray")]))
  figures["video_metrics"] = "video_metrics.png"
  visualize.save_line_panels(os.path.join(output_dir, figures["video_metrics"]), panels,
                             num_columns=2, num_observed=num_observed)
  if progress:
    progress.update(1)

  # Tracking error curves (Figure 4).
  if "skipped" not in report["tracking"]:
    tracking_report = report["tracking"]
    lines = [dict(label=f"best of {tracking_report['num_samples']} samples "
                        f"({tracking_report['best_sample_rule']})",
                  y=tracking_report["best_of_samples"]["per_time_step"]["pixels"]),
             dict(label="repeat last observed", linestyle="--",
                  y=tracking_report["repeat_last"]["per_time_step"]["pixels"]),
             dict(label="regression from detected", linestyle=":",
                  y=tracking_report["detected"]["per_time_step"]["pixels"])]
    per_object = [dict(label=name, y=values["pixels"]) for name, values in
                  tracking_report["best_of_samples"]["per_object_per_time_step"].items()]
    figures["tracking_error"] = "tracking_error.png"
    visualize.save_line_panels(
        os.path.join(output_dir, figures["tracking_error"]),
        [dict(title="Tracking error (mean over objects)", ylabel="error (pixels)", lines=lines),
         dict(title="Best of samples, per object", ylabel="error (pixels)", lines=per_object)],
        num_columns=2, num_observed=num_observed)
  if progress:
    progress.update(2)

  # Sample diversity (Figure S3): one object per example.
  if kept_keypoints is not None and kept_keypoints.shape[1] > 0:
    num_objects = data.test_positions.shape[2]
    object_names = report["tracking"]["object_names"]
    source = settings.diversity_source or ("matched_keypoint" if draw_keypoints
                                           else "regression")
    if source == "matched_keypoint":
      matched = match_keypoints_to_objects(test_keypoints, data.test_positions)
      trajectories = kept_keypoints[..., :2][:, :, :, matched]  # [S, E, L, M, 2]
    else:
      matched = None
      trajectories = tracking.predict_positions(regressor, kept_keypoints, num_objects)
    panels, examples = [], []
    for example in range(kept_keypoints.shape[1]):
      m = example % num_objects
      title = f"window {example}: {object_names[m]}"
      if matched is not None:
        title += f" (keypoint {int(matched[m])})"
      panels.append(dict(title=title, truth=data.test_positions[example, :, m],
                         samples=trajectories[:, example, :, m], num_observed=num_observed,
                         background=data.test_frames[example, num_observed - 1]))
      examples.append({"window": example, "object": object_names[m],
                       "keypoint": None if matched is None else int(matched[m])})
    figures["sample_diversity"] = "sample_diversity.png"
    visualize.save_trajectory_panels(os.path.join(output_dir, figures["sample_diversity"]),
                                     panels, num_columns=3)
    report["diversity"] = {"source": source, "num_samples": int(kept_keypoints.shape[0]),
                           "examples": examples,
                           "matched_keypoints": None if matched is None else matched.tolist()}
  if progress:
    progress.update(3)

  # Examples: keypoints on frames, truth vs closest vs furthest (PNG and GIF).
  if video["figure_frames"] is not None:
    selection = selections[figure_metric]
    example_files = []
    for example in range(len(video["figure_frames"])):
      window = int(video_indices[example])
      truth = data.test_frames[window]
      rows = [int(selection["closest_index"][example]), int(selection["furthest_index"][example])]
      frames = video["figure_frames"][example][rows]
      keypoints = video["figure_keypoints"][example][rows]
      figure = visualize.prediction_figure(
          truth, frames, keypoints=test_keypoints[window] if draw_keypoints else None,
          predicted_keypoints=keypoints if draw_keypoints else None,
          num_observed=num_observed, scale=2)
      png = os.path.join("examples", f"example_{example}.png")
      visualize.save_png(os.path.join(output_dir, png), figure)
      gif = os.path.join("examples", f"example_{example}.gif")
      gif_frames = visualize.side_by_side_frames(
          [truth, frames[0], frames[1]],
          [test_keypoints[window], keypoints[0], keypoints[1]] if draw_keypoints else None,
          num_observed=num_observed)
      visualize.save_gif(os.path.join(output_dir, gif), gif_frames)
      example_files.append({"window": window, "png": png, "gif": gif,
                            "closest_sample": rows[0], "furthest_sample": rows[1]})
    figures["examples"] = example_files
    figures["examples_rows"] = (f"truth (detected keypoints), closest, furthest sample by "
                                f"{figure_metric}")
  if progress:
    progress.update(4)
  return figures


def full_summary_lines(report):
  """Human-readable lines of a `run_evaluation` report."""
  lines = []
  tracking_report = report.get("tracking", {})
  if "skipped" in tracking_report:
    lines.append(tracking_report["skipped"])
  elif tracking_report:
    best = tracking_report["best_of_samples"]["per_time_step"]["pixels"]
    repeat = tracking_report["repeat_last"]["per_time_step"]["pixels"]
    detected = tracking_report["detected"]["per_time_step"]["pixels"]
    lines.append(
        f"Tracking error at the last step (px): best of {tracking_report['num_samples']} "
        f"{best[-1]:.2f}, repeat-last {repeat[-1]:.2f}; regression from detected keypoints "
        f"{np.mean(detected):.2f} (mean over steps)")
  video = report.get("video", {})
  for name in VIDEO_METRICS:
    curves = video.get(name, {})
    if "skipped" in curves:
      continue
    if curves:
      lines.append(f"{name} at the last step: closest {curves['closest'][-1]:.4g}, furthest "
                   f"{curves['furthest'][-1]:.4g} ({video['num_samples']} samples, "
                   f"{video['num_windows']} windows)")
  fvd_report = report.get("fvd", {})
  if "fvd" in fvd_report:
    lines.append(f"FVD {fvd_report['fvd']:.1f} ({fvd_report['num_real_clips']} true vs "
                 f"{fvd_report['num_generated_clips']} generated clips)")
  lines.extend(report.get("skipped", []))
  return lines
