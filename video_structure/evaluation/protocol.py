"""The evaluation protocol: one `EvaluationSettings`, one `run_evaluation`, one evaluation.json.

Two settings of the same protocol (docs/evaluation.md):

* `EvaluationSettings.quick(...)`, what train.py runs at the end of training: tracking only.
  A linear regression from the detected keypoints (x, y, mu of all K) to the ground-truth
  object positions is fitted on 480 training windows and measured on 600 test windows; then
  the model observes `num_observed` frames and samples 20 futures, and the best sample (per
  object) is compared with repeating the last observed keypoints.

* `EvaluationSettings()`, the full protocol of evaluate.py (paper Figures 3, 4, S1-S3):
  1. tracking: the same regression; error per time step over observed and predicted steps of
     the best of `num_tracking_samples` samples (rule per dataset: best per object for
     Basketball, best by mean over all objects for Human3.6M) and of the "repeat the last
     observed keypoints" baseline;
  2. video prediction: `num_video_samples` decoded samples per test window; per time step
     SSIM, PSNR, VGG cosine similarity and LPIPS (beyond the paper; VGG16 and AlexNet) of the
     closest and the furthest sample;
  3. FVD (I3D) between true and sampled clips;
  4. figures: metric curves, tracking curves, sample diversity (Figure S3), keypoints drawn on
     frames and GIFs of truth vs closest vs furthest sample.

The model is reached through `model_calls.ModelCalls` (a Keras StructVRNN or a
`model_calls.SavedModelAdapter`). Errors are distances in coordinate units, pixels and percent of
the frame width.
"""

import dataclasses
import math
import os
import sys
import time
from typing import Optional

import numpy as np

from video_structure.data import sources
from video_structure.evaluation import data as data_lib
from video_structure.evaluation import figures as figures_lib
from video_structure.evaluation import frame_metrics
from video_structure.evaluation import fvd
from video_structure.evaluation import i3d
from video_structure.evaluation import lpips
from video_structure.evaluation import model_calls
from video_structure.evaluation import motion
from video_structure.evaluation import pretrained
from video_structure.evaluation import report as report_lib
from video_structure.evaluation import tracking
from video_structure.model import ops

FVD_CONTEXTS = ("truth", "model")
DIVERSITY_SOURCES = ("matched_keypoint", "regression")
# Decoded samples per video window when neither the settings nor the dataset say.
DEFAULT_NUM_VIDEO_SAMPLES = 20
# Every phase of the full setting, in order (`EvaluationSettings.phases` lists a setting's).
PHASES = ("load", "detect", "tracking", "video", "fvd", "figures")
# The LPIPS metric of each network.
LPIPS_METRIC_NAMES = {"vgg16": "lpips_vgg", "alexnet": "lpips_alex"}
# Metrics computed from VGG16 at the frames' size or larger: limited to `num_vgg_windows`.
VGG16_METRICS = ("vgg_cosine", "lpips_vgg")
_AUTO = "auto"


# Settings --------------------------------------------------------------------------------------


@dataclasses.dataclass
class EvaluationSettings:
  """What `run_evaluation` measures and how much of it (evaluate.py flags of the same names).

  The defaults are the full protocol of evaluate.py; `quick` is train.py's end-of-training
  setting. Window counts larger than what the data holds are reduced to what it holds (the
  JSON records both the request and what was used). `None` settings are resolved from the
  data by `resolve`.
  """
  num_observed: int = 8
  # Test windows decoded for the video metrics (evenly spaced); 0: no video metrics, FVD or
  # example figures.
  num_video_windows: int = 100
  # Decoded samples per video window; None: the dataset's default (`EvaluationData`).
  num_video_samples: Optional[int] = None
  num_tracking_samples: int = 50  # Keypoint samples per test window for tracking (paper: 50).
  # Tracking: "per_object" (Basketball) or "mean" (Human3.6M); None: the dataset's rule.
  best_sample_rule: Optional[str] = None
  fvd_clips: int = 128  # Clips per side of the FVD; 0 = all true windows and all samples.
  fvd_context: str = "truth"  # Observed steps of generated clips: true frames or the model's.
  fvd_batch_size: int = 8
  skip_fvd: bool = False
  i3d_weights: Optional[str] = None  # Default: the cache (i3d.default_cache_dir()).
  # Default: torchvision's VGG16 from the cache (scripts/fetch_weights.py), else Keras' cache;
  # no weights -> VGG skipped.
  vgg_weights: Optional[str] = None
  # The VGG16 metrics (VGG cosine at 224x224, ~0.13 s per frame on 2 cores; LPIPS-VGG at the
  # frames' size, ~0.013 s) run on the first few video windows only (raise it on a GPU);
  # LPIPS-AlexNet (~0.0014 s per frame) on every video window.
  num_vgg_windows: int = 4
  # VGG cosine's convolutions: "float32" or "bfloat16" (evaluate.py's --vgg_precision auto
  # picks bfloat16 where the hardware computes it natively).
  vgg_precision: str = "float32"
  # LPIPS networks ("vgg16", "alexnet"; empty: no LPIPS), from the cache (fetch_weights.py).
  lpips_nets: tuple = ("vgg16", "alexnet")
  vgg_layers: tuple = frame_metrics.DEFAULT_VGG_FEATURE_LAYERS
  num_diversity_examples: int = 6
  num_diversity_samples: int = 20
  diversity_source: Optional[str] = None  # None: matched_keypoint, or regression for cnn_vrnn.
  num_figure_examples: int = 4
  seed: int = 0
  batch_size: int = 32  # Windows per detect / keypoint-rollout call.
  sequences_per_call: int = 64  # Decoded sequences (windows x samples) per model call.
  num_train_windows: int = 480  # Training windows the tracking regression is fitted on.
  num_test_windows: int = 600  # Evaluated test windows (the first ones in stored order).
  write_figures: bool = True
  # Trace the model calls with tf.function (faster); False calls the model eagerly.
  compile_model_calls: bool = True
  name: str = "full"  # Recorded in the JSON: "full", "quick" or the caller's name.

  @classmethod
  def quick(cls, num_observed=8, seed=0):
    """train.py's check at the end of training: the tracking regression and the prediction
    error of the best of 20 samples (best per object) against repeating the last observed
    keypoints, with eager model calls (train.py's numbers since its first version); no video
    metrics, FVD or figures."""
    return cls(num_observed=num_observed, num_video_windows=0, num_tracking_samples=20,
               best_sample_rule="per_object", skip_fvd=True, num_diversity_examples=0,
               num_figure_examples=0, seed=seed, write_figures=False,
               compile_model_calls=False, name="quick")

  def resolve(self, data):
    """A copy with the `None` settings taken from `data` (an `EvaluationData`): the dataset's
    decoded samples per window (else DEFAULT_NUM_VIDEO_SAMPLES) and best-sample rule (else
    "per_object")."""
    return dataclasses.replace(
        self,
        num_video_samples=(self.num_video_samples or data.num_video_samples
                           or DEFAULT_NUM_VIDEO_SAMPLES),
        best_sample_rule=self.best_sample_rule or data.best_sample_rule or "per_object")

  def phases(self):
    """The phases this setting runs (a sub-sequence of PHASES)."""
    return tuple(phase for phase in PHASES
                 if (phase not in ("video", "fvd") or self.num_video_windows)
                 and (phase != "figures" or self.write_figures))

  def validate(self):
    """Raises ValueError naming the offending setting."""
    minimum = dict(num_observed=1, num_video_windows=0, num_vgg_windows=1,
                   num_tracking_samples=1, fvd_clips=0, fvd_batch_size=1,
                   num_diversity_examples=0, num_diversity_samples=1, num_figure_examples=0,
                   seed=0, batch_size=1, sequences_per_call=1, num_train_windows=1,
                   num_test_windows=1)
    if self.num_video_samples is not None:
      minimum["num_video_samples"] = 1
    for name, low in minimum.items():
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    if self.fvd_clips == 1:
      raise ValueError("fvd_clips must be 0 (all) or >= 2 (the FVD covariance divides by "
                       "N - 1), got 1.")
    rules = sources.BEST_SAMPLE_RULES
    if self.best_sample_rule is not None and self.best_sample_rule not in rules:
      raise ValueError(f"best_sample_rule must be None or one of {rules}, got "
                       f"{self.best_sample_rule!r}.")
    if self.fvd_context not in FVD_CONTEXTS:
      raise ValueError(f"fvd_context must be one of {FVD_CONTEXTS}, got {self.fvd_context!r}.")
    if self.diversity_source is not None and self.diversity_source not in DIVERSITY_SOURCES:
      raise ValueError(f"diversity_source must be None or one of {DIVERSITY_SOURCES}, got "
                       f"{self.diversity_source!r}.")
    if self.num_diversity_samples > self.num_tracking_samples:
      raise ValueError(f"num_diversity_samples ({self.num_diversity_samples}) must be <= "
                       f"num_tracking_samples ({self.num_tracking_samples}): the diversity "
                       f"figure draws the tracking samples.")
    layers = (self.vgg_layers,) if isinstance(self.vgg_layers, str) else tuple(self.vgg_layers)
    unknown = [name for name in layers if name not in frame_metrics.VGG16_CONV_LAYERS]
    if not layers or unknown:
      raise ValueError(f"vgg_layers must be names from {frame_metrics.VGG16_CONV_LAYERS}, got "
                       f"{layers}.")
    self.vgg_layers = layers
    if self.vgg_precision not in frame_metrics.VGG_PRECISIONS:
      raise ValueError(f"vgg_precision must be one of {frame_metrics.VGG_PRECISIONS}, got "
                       f"{self.vgg_precision!r}.")
    nets = (self.lpips_nets,) if isinstance(self.lpips_nets, str) else tuple(self.lpips_nets)
    unknown = [net for net in nets if net not in LPIPS_METRIC_NAMES]
    if unknown or len(set(nets)) != len(nets):
      raise ValueError(f"lpips_nets must be distinct names from {tuple(LPIPS_METRIC_NAMES)}, "
                       f"got {nets}.")
    self.lpips_nets = nets
    return self


# Phases ----------------------------------------------------------------------------------------


def evenly_spaced_indices(total, count):
  """`count` distinct indices spread evenly over `range(total)` (all of them if count >= total),
  first and last included."""
  if count >= total:
    return np.arange(total)
  return np.unique(np.round(np.linspace(0, total - 1, count)).astype(int))


def detect_representation(calls, frames_uint8, batch_size, progress=None, done_offset=0):
  """`ModelCalls.detect` over `[N, T, H, W, 3]` uint8 in batches -> float32 `[N, T, K, 3]`."""
  outputs = []
  for start in range(0, len(frames_uint8), batch_size):
    outputs.append(calls.detect(frames_uint8[start:start + batch_size]))
    if progress is not None:
      progress.update(done_offset + start // batch_size + 1)
  return np.concatenate(outputs)


def video_evaluation(calls, frames_uint8, num_observed, num_samples, seed=0,
                     sequences_per_call=64, feature_metrics=None, fvd_clip_count=0,
                     fvd_context="truth", figure_examples=0, progress=None,
                     feature_windows=None):
  """Decoded samples and their per-frame SSIM, PSNR and network-feature metrics (VGG cosine
  similarity, LPIPS).

  Args:
    calls: `ModelCalls`.
    frames_uint8: uint8 `[V, L, H, W, 3]` windows.
    num_observed: n observed frames; L - n are predicted.
    num_samples: S decoded samples per window.
    sequences_per_call: windows x samples decoded per model call (memory bound); S larger than
      this is split into several calls with different seeds.
    feature_metrics: {name: `feature_metric.FeatureMetric`} (`frame_metrics.VGGFeatures`,
      `lpips.LPIPS` or stand-ins; see `frame_metrics.scores_against_references`), or None.
      The true frames' features are computed once per window, not once per sample.
    feature_windows: {name: W}: compute that metric on the first W windows only (default: all).
    fvd_clip_count: keep this many generated clips for the FVD, in sample-major order
      (sample 0 of every window, then sample 1, ...).
    fvd_context: "truth": generated clips are the true observed frames followed by the
      predicted ones; "model": the model's frames at every step.
    figure_examples: keep every sample's frames and keypoints of the first windows.

  Returns:
    dict with `scores` ({metric: float64 `[S, V, L]`; `[S, min(V, W), L]` for a feature
    metric limited to W windows}), `repeat_last` ({metric: float64 `[V, L]` (or
    `[min(V, W), L]`)}: the baseline that repeats the last observed true frame, scored like a
    sample; at the observed steps it is the truth itself), `fvd_clips` uint8 `[C, L, H, W, 3]`,
    `figure_frames` uint8 `[F, S, L, H, W, 3]`, `figure_keypoints` `[F, S, L, K, 3]`.
  """
  num_windows, window_length = frames_uint8.shape[:2]
  num_predicted = window_length - num_observed
  samples_per_call = min(num_samples, sequences_per_call)
  windows_per_call = max(1, sequences_per_call // samples_per_call)
  scores = {name: np.zeros((num_samples, num_windows, window_length))
            for name in ("ssim", "psnr")}
  feature_metrics = feature_metrics or {}
  feature_counts = {name: min((feature_windows or {}).get(name, num_windows), num_windows)
                    for name in feature_metrics}
  for name, count in feature_counts.items():
    scores[name] = np.zeros((num_samples, count, window_length))
  repeat_last = _repeat_last_frame_scores(frames_uint8, num_observed, feature_metrics,
                                          feature_counts)
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
      scores["ssim"][rows, start:stop] = frame_metrics.ssim_per_frame(
          flat_predicted, flat_truth).reshape(shape)
      scores["psnr"][rows, start:stop] = frame_metrics.psnr_per_frame(
          flat_predicted, flat_truth).reshape(shape)
      for name, metric in feature_metrics.items():
        covered = min(stop, feature_counts[name]) - start
        if covered > 0:
          frame_shape = predicted_unit.shape[3:]
          scores[name][rows, start:start + covered] = frame_metrics.scores_against_references(
              metric, predicted_unit[:, :covered].reshape((-1,) + frame_shape),
              truth_unit[:covered].reshape((-1,) + frame_shape)).reshape(
                  count, covered, window_length)
      predicted_uint8 = ops.frames_to_uint8(prediction["frames"]).numpy()
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
      "repeat_last": repeat_last,
      "fvd_clips": np.stack(fvd_clips) if fvd_clips else None,
      "figure_frames": np.stack(figure_frames) if figure_count else None,
      "figure_keypoints": np.stack(figure_keypoints) if figure_count else None,
  }


def _repeat_last_frame_scores(frames_uint8, num_observed, feature_metrics, feature_counts):
  """{metric: float64 `[V', L]`} of the baseline that repeats the last observed true frame
  (the frame counterpart of tracking's repeat-last); NaN at the observed steps, where it is
  the truth itself."""
  truth = frames_uint8[:, num_observed:].astype(np.float32) / 255.0  # [V, L - n, H, W, 3]
  repeated = np.broadcast_to(frames_uint8[:, num_observed - 1:num_observed].astype(np.float32)
                             / 255.0, truth.shape)
  result = {"ssim": frame_metrics.ssim_per_frame(repeated, truth),
            "psnr": frame_metrics.psnr_per_frame(repeated, truth)}
  frame_shape = truth.shape[2:]
  for name, metric in (feature_metrics or {}).items():
    count = feature_counts[name]
    result[name] = frame_metrics.scores_against_references(
        metric, repeated[:count].reshape((-1,) + frame_shape),
        truth[:count].reshape((-1,) + frame_shape)).reshape(count, -1)
  observed = lambda values: np.full((len(values), num_observed), np.nan)
  return {name: np.concatenate([observed(values), np.asarray(values, np.float64)], axis=1)
          for name, values in result.items()}


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


def _is_auto(value):
  return isinstance(value, str) and value == _AUTO


def _load_feature_metrics(settings):
  """({name: metric} of the VGG cosine and the LPIPS networks whose weights are here,
  {name: skip message} of the others)."""
  metrics, messages = {}, {}
  try:
    metrics["vgg_cosine"] = frame_metrics.VGGFeatures(
        settings.vgg_weights, settings.vgg_layers,
        precision=settings.vgg_precision)
  except frame_metrics.WeightsUnavailable as error:
    messages["vgg_cosine"] = f"VGG cosine similarity skipped: {error}"
  for net in settings.lpips_nets:
    name = LPIPS_METRIC_NAMES[net]
    try:
      metrics[name] = lpips.LPIPS(net)
    except pretrained.WeightsUnavailable as error:
      messages[name] = f"LPIPS ({net}) skipped: {error}"
  return metrics, messages


def feature_metric_windows(settings, names):
  """{name: how many video windows get that metric} (`num_vgg_windows` for VGG16's)."""
  return {name: settings.num_vgg_windows if name in VGG16_METRICS
          else settings.num_video_windows for name in names}


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


def run_evaluation(model, data, settings, output_dir, feature_metrics=_AUTO, fvd_model=_AUTO,
                   stream=None, run_info=None, progress=None):
  """Evaluates `model` on `data` as `settings` say (docs/evaluation.md); writes
  `output_dir/evaluation.json` (and, with `settings.write_figures`, the figures).

  Args:
    model: anything with the inference interface (`detect`, `predict_future`; a Keras
      StructVRNN, a `model_calls.SavedModelAdapter`, ...) and its `config`.
    data: `data.EvaluationData`.
    settings: `EvaluationSettings` (its `None` settings are resolved from `data`).
    output_dir: created if missing.
    feature_metrics: "auto" (the VGG cosine per `settings.vgg_weights` and LPIPS per
      `settings.lpips_nets`; each skipped with a message when its weights are missing), None
      (none), or {name: metric} (see `video_evaluation`; tests inject stand-ins).
    fvd_model: "auto" (I3D from `settings.i3d_weights` / the cache; skipped with a message if
      absent), None (skip), or an embedding model with I3D's call signature.
    stream: where progress goes (default stdout).
    run_info: dict stored under "run" in the JSON (checkpoint, step, config, ...).
    progress: a `report.PhaseProgress` over `settings.phases()` whose "load" phase the caller
      has run (its time is then reported too); default: a new one.

  Returns:
    The report dict (also written as JSON).
  """
  stream = stream or sys.stdout
  data.validate()
  settings = settings.resolve(data).validate()
  started = time.time()
  load_start = os.getloadavg()
  calls = model_calls.ModelCalls(model, settings.sequences_per_call,
                                 compiled=settings.compile_model_calls)
  config = getattr(model, "config", None)
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
      "schema_version": report_lib.SCHEMA_VERSION,
      "run": dict(run_info or {}, model_type=model_calls.model_type(config)),
      "settings": dataclasses.asdict(settings),
      "data": {"split": data.split, "num_train_windows": int(len(data.train_frames)),
               "num_test_windows": int(num_test), "window_length": int(window_length),
               "image_size": int(image_size), "num_observed": int(num_observed),
               "num_predicted": int(window_length - num_observed),
               "object_names": list(data.object_names) if data.object_names else None,
               "has_positions": bool(has_positions)},
  }
  progress = progress or report_lib.PhaseProgress(settings.phases(), stream)

  # What can be measured, decided first so that a bad weights file fails before any work.
  feature_messages, fvd_message = {}, None
  if not settings.num_video_windows:
    feature_metrics = {}
  else:
    if _is_auto(feature_metrics):
      feature_metrics, feature_messages = _load_feature_metrics(settings)
    feature_metrics = feature_metrics or {}
    fvd_message = _fvd_availability(settings, window_length,
                                    check_weights=_is_auto(fvd_model))
    if fvd_model is None and not fvd_message:
      fvd_message = "FVD skipped: no embedding model."
  for message in (*feature_messages.values(), fvd_message):
    if message:
      skipped.append(message)
      print(message, file=stream, flush=True)
  os.makedirs(output_dir, exist_ok=True)  # Only now: a bad weights file leaves no folder.

  # 1. Detect the representation of the fit windows (for the regression) and of the test
  # windows (for tracking and the figures); fit the regression.
  fit_frames = data.train_frames if has_positions else data.train_frames[:0]
  test_frames = data.test_frames if has_positions or settings.write_figures \
      else data.test_frames[:0]
  fit_batches = math.ceil(len(fit_frames) / settings.batch_size)
  progress.start("detect", fit_batches + math.ceil(len(test_frames) / settings.batch_size),
                 f"representation of {len(fit_frames)} training and {len(test_frames)} "
                 f"{data.split} windows")
  regressor = test_keypoints = None
  if len(fit_frames):
    train_keypoints = detect_representation(calls, fit_frames, settings.batch_size, progress)
    regressor = tracking.fit_keypoint_regressor(train_keypoints, data.train_positions)
  if len(test_frames):
    test_keypoints = detect_representation(calls, test_frames, settings.batch_size, progress,
                                           done_offset=fit_batches)
  progress.end()

  # Where the keypoints sit (also for data without positions, e.g. a user's footage).
  if test_keypoints is not None and model_calls.has_keypoints(config):
    report["keypoints_on_motion"] = motion.keypoints_on_motion(test_keypoints, test_frames)

  # 2. Tracking.
  num_objects = data.test_positions.shape[2] if has_positions else 0
  object_names = list(data.object_names or [f"object_{m}" for m in range(num_objects)])
  diversity_examples = min(settings.num_diversity_examples, num_test)
  kept_keypoints = None
  if has_positions:
    progress.start("tracking", math.ceil(num_test / settings.batch_size),
                   f"best of {settings.num_tracking_samples} samples, {num_test} windows")
    report["tracking"], kept_keypoints = tracking.tracking_evaluation(
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

  # 3. Video prediction metrics (and the clips FVD and the figures need), 4. FVD.
  video_indices = video = None
  selections = {}
  if settings.num_video_windows:
    video_indices, video, selections = _video_phase(calls, data, settings, feature_metrics,
                                                    feature_messages, fvd_message, report,
                                                    progress)
    _fvd_phase(data, settings, fvd_model, fvd_message, video, report, skipped, progress)
  else:
    report["video"] = {"skipped": "not requested (num_video_windows = 0)"}
    report["fvd"] = {"skipped": "not requested (num_video_windows = 0)"}

  # 5. Figures.
  report["figures"] = {}
  if settings.write_figures:
    progress.start("figures", 4)
    # Figure 3 picks its examples by VGG; where VGG covers fewer windows than drawn, by SSIM.
    figure_examples = 0 if video is None or video["figure_frames"] is None \
        else len(video["figure_frames"])
    figure_metric = "vgg_cosine" if "vgg_cosine" in selections and len(
        selections["vgg_cosine"]["closest_index"]) >= figure_examples else "ssim"
    report["figures"] = figures_lib.write_figures(
        output_dir, report, data, video, video_indices, selections, figure_metric,
        test_keypoints, kept_keypoints, regressor, settings, model_calls.has_keypoints(config),
        progress)
    progress.end()

  report["skipped"] = skipped
  report["timing"] = {"seconds_per_phase": dict(progress.seconds),
                      "total_seconds": time.time() - started + progress.seconds.get("load", 0.0),
                      "load_average_start": list(load_start),
                      "load_average_end": list(os.getloadavg()),
                      "cpu_count": os.cpu_count()}
  report_lib.write_json(os.path.join(output_dir, "evaluation.json"), report)
  return report


def _video_phase(calls, data, settings, feature_metrics, feature_messages, fvd_message, report,
                 progress):
  """Runs `video_evaluation` on evenly spaced test windows; fills `report["video"]`.

  Returns:
    (video window indices, `video_evaluation`'s result, {metric: `closest_and_furthest`}).
  """
  num_observed = settings.num_observed
  num_test, window_length = data.test_frames.shape[:2]
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
      settings.sequences_per_call, feature_metrics, fvd_count, settings.fvd_context,
      settings.num_figure_examples, progress, feature_metric_windows(settings, feature_metrics))
  video_report = {"num_windows": int(num_video), "window_indices": video_indices.tolist(),
                  "num_samples": int(num_samples), "num_observed": int(num_observed),
                  "num_time_steps": int(window_length),
                  "selection": "per example, the sample with the highest (closest) / lowest "
                               "(furthest) mean of the metric over the predicted steps"}
  selections = {}
  for name in report_lib.VIDEO_METRICS:
    if name in video["scores"]:
      video_report[name], selections[name] = frame_metrics.metric_curves(
          video["scores"][name], num_observed, name not in frame_metrics.DISTANCE_METRICS)
      video_report[name]["num_windows"] = int(video["scores"][name].shape[1])
      # Mean over windows; NaN (null in the JSON) at the observed steps.
      video_report[name]["repeat_last"] = video["repeat_last"][name].mean(axis=0).tolist()
      if name in feature_metrics:
        video_report[name]["weights"] = getattr(feature_metrics[name], "weights_info",
                                                "injected feature extractor")
    else:
      video_report[name] = {"skipped": feature_messages.get(name, "not computed")}
  report["video"] = video_report
  progress.end()
  return video_indices, video, selections


def _fvd_phase(data, settings, fvd_model, fvd_message, video, report, skipped, progress):
  """FVD between evenly spaced true test windows and the generated clips; fills
  `report["fvd"]` (and `skipped`)."""
  num_test = len(data.test_frames)
  if fvd_message:
    report["fvd"] = {"skipped": fvd_message}
    progress.start("fvd", 1)
    progress.end(fvd_message)
    return
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
    return
  progress.start("fvd", len(real_clips) + len(generated),
                 f"I3D on {len(real_clips)} true and {len(generated)} generated clips")
  embedding_model = i3d.load_i3d(settings.i3d_weights) if _is_auto(fvd_model) else fvd_model
  report["fvd"] = fvd_evaluation(real_clips, generated, embedding_model,
                                 settings.fvd_batch_size, progress)
  report["fvd"].update(context=settings.fvd_context, requested_clips=settings.fvd_clips,
                       embedding="i3d" if _is_auto(fvd_model) else "injected")
  progress.end(f"FVD {report['fvd']['fvd']:.1f}")


def evaluate_model(model, config, settings, output_dir, data_dir="data", split="test",
                   source=None, manual_dir=None, run_info=None, stream=None,
                   feature_metrics=_AUTO, fvd_model=_AUTO):
  """Loads the evaluation windows of `config`'s dataset and runs `run_evaluation`.

  Args:
    model, settings, output_dir, run_info, stream, feature_metrics, fvd_model: see
      `run_evaluation`.
    config: the run's model `Config`.
    data_dir, split, source, manual_dir: see `data.load_evaluation_data` (`source`: an already
      prepared `sources.DataSource`, as in train.py).

  Returns:
    (the report, the `data.EvaluationData`).
  """
  progress = report_lib.PhaseProgress(settings.phases(), stream)
  progress.start("load", 1, "evaluation windows")
  data = data_lib.load_evaluation_data(config, data_dir, split, settings.num_train_windows,
                                       settings.num_test_windows, source,
                                       settings.batch_size, manual_dir)
  progress.update(1)
  progress.end(f"{len(data.train_frames)} training and {len(data.test_frames)} {split} windows")
  report = run_evaluation(model, data, settings, output_dir, feature_metrics, fvd_model, stream,
                          run_info, progress)
  return report, data
