"""Reporting an evaluation: progress per phase, the human-readable summary and JSON writing."""

import math
import sys
import time

import numpy as np

from video_structure import io_utils

# The evaluation.json schema (read by compare.py). Version 2: one schema for the quick and the
# full setting (tracking gains `prediction`, `detected.mean` and `*.per_object_mean`).
SCHEMA_VERSION = 2
# The video metrics of the report, in the order they are listed.
VIDEO_METRICS = ("ssim", "psnr", "vgg_cosine", "lpips_vgg", "lpips_alex")
# Axis labels of the video metrics, in the order the figures draw them (the paper's Figure 3
# first: VGG, SSIM, PSNR; then LPIPS, a distance: lower is closer).
VIDEO_METRIC_LABELS = {"vgg_cosine": "VGG cosine similarity", "ssim": "SSIM",
                       "psnr": "PSNR (dB)", "lpips_vgg": "LPIPS (VGG16)",
                       "lpips_alex": "LPIPS (AlexNet)"}


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
  return io_utils.atomic_write_json(path, _sanitize(report), indent=1, allow_nan=False)


def summary_lines(report):
  """Human-readable lines of an evaluation report (`protocol.run_evaluation`)."""
  lines = []
  tracking_report = report.get("tracking", {})
  if "skipped" in tracking_report:
    lines.append(tracking_report["skipped"])
  elif tracking_report:
    detected = tracking_report["detected"]
    split = report.get("data", {}).get("split", "test")
    lines.append(f"Tracking error ({split}, regression from keypoints): mean "
                 f"{detected['mean']['pixels']:.2f} px = "
                 f"{detected['mean']['percent_of_width']:.2f}% of the frame width")
    for name, error in detected["per_object_mean"].items():
      lines.append(f"  {name:>10}: {error['pixels']:.2f} px ({error['percent_of_width']:.2f}%)")
    prediction = tracking_report["prediction"]
    lines.append(
        f"Prediction {tracking_report['num_predicted']} steps ahead after "
        f"{tracking_report['num_observed']} observed: best of {tracking_report['num_samples']} "
        f"samples {prediction['best_of_samples_px_last_step']:.2f} px vs repeat-last "
        f"{prediction['repeat_last_px_last_step']:.2f} px")
  placement = report.get("keypoints_on_motion")
  if placement and placement["share_on_motion"] is not None:
    lines.append(f"Keypoints on moving pixels: {100 * placement['share_on_motion']:.0f}% of the "
                 f"active keypoints (chance {100 * placement['chance']:.0f}%)")
  video = report.get("video", {})
  for name in VIDEO_METRICS:
    curves = video.get(name, {})
    if "skipped" in curves:
      continue
    if curves:
      baseline = curves.get("repeat_last")
      baseline = "" if not baseline or baseline[-1] is None else \
          f", repeat-last frame {baseline[-1]:.4g}"
      lines.append(f"{name} at the last step: closest {curves['closest'][-1]:.4g}, furthest "
                   f"{curves['furthest'][-1]:.4g}{baseline} ({video['num_samples']} samples, "
                   f"{curves.get('num_windows', video['num_windows'])} windows)")
  fvd_report = report.get("fvd", {})
  if "fvd" in fvd_report:
    lines.append(f"FVD {fvd_report['fvd']:.1f} ({fvd_report['num_real_clips']} true vs "
                 f"{fvd_report['num_generated_clips']} generated clips)")
  lines.extend(report.get("skipped", []))
  return lines
