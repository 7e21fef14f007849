"""Comparing evaluated runs: model variants x seeds, with paper-style figures.

Reads the `evaluation.json` files of evaluate.py (or train.py's quick one; one per run), groups
them by variant, and for every per-time-step curve (closest / furthest VGG, SSIM, PSNR; tracking
errors) draws the mean across seeds with a 95% confidence band, FVD as one dot per seed, and
writes a summary JSON.

The band is the Student t interval of the mean across the n seeds of a variant, at every time
step: mean +- t_{(1 + c) / 2, n - 1} * s / sqrt(n), with s the sample standard deviation
(denominator n - 1) and c the confidence (0.95). One seed gives no band (the legend says so).

Numpy and matplotlib only (no TensorFlow), so comparing is quick.
"""

import glob
import json
import math
import os

import numpy as np

from video_structure import io_utils
from video_structure.evaluation import figures as figures_lib
from video_structure.evaluation import report as report_lib

# The evaluation.json schemas this module reads: the current one and version 1 (evaluate.py
# before train.py wrote the same schema), whose curves and FVD sit at the same places.
READABLE_SCHEMA_VERSIONS = (1, report_lib.SCHEMA_VERSION)
# The schema of the summary.json this module writes.
SUMMARY_SCHEMA_VERSION = 1
DEFAULT_CONFIDENCE = 0.95

# (key, path in evaluation.json, axis label) of every per-time-step curve.
VIDEO_CURVES = tuple(
    (f"video.{metric}.{which}", ("video", metric, which), f"{label} ({which})")
    for metric, label in report_lib.VIDEO_METRIC_LABELS.items()
    for which in ("closest", "furthest"))
TRACKING_CURVES = (
    ("tracking.best_of_samples", ("tracking", "best_of_samples", "per_time_step", "pixels"),
     "best of samples"),
    ("tracking.repeat_last", ("tracking", "repeat_last", "per_time_step", "pixels"),
     "repeat last observed"),
    ("tracking.detected", ("tracking", "detected", "per_time_step", "pixels"),
     "regression from detected"),
)
CURVES = VIDEO_CURVES + TRACKING_CURVES
FVD_PATH = ("fvd", "fvd")


# Student t quantile ---------------------------------------------------------------------------


def student_t_two_sided_probability(t, df):
  """P(|T| <= t) for Student's t with integer `df` >= 1 degrees of freedom (closed form,
  Abramowitz & Stegun 26.7.3 / 26.7.4, with theta = arctan(t / sqrt(df)))."""
  if isinstance(df, bool) or not isinstance(df, (int, np.integer)) or df < 1:
    raise ValueError(f"df must be an integer >= 1, got {df!r}.")
  if t <= 0:
    return 0.0
  theta = math.atan(t / math.sqrt(df))
  sine, cosine_squared = math.sin(theta), math.cos(theta) ** 2
  if df % 2 == 1:
    total, term = 0.0, math.cos(theta)
    if df > 1:
      total = term
      for k in range(3, df - 1, 2):  # term_k = term_{k-2} * (k - 1) / k * cos^2
        term *= (k - 1) / k * cosine_squared
        total += term
    return (2.0 / math.pi) * (theta + sine * total) if df > 1 else 2.0 * theta / math.pi
  total, term = 1.0, 1.0
  for k in range(2, df - 1, 2):  # term_k = term_{k-2} * (k - 1) / k * cos^2
    term *= (k - 1) / k * cosine_squared
    total += term
  return sine * total


def student_t_quantile(probability, df):
  """The `probability` quantile (> 0.5) of Student's t with integer `df`, e.g.
  `student_t_quantile(0.975, 1) = 12.7062...`; found by bisection on the closed-form CDF to
  float64 precision."""
  if not 0.5 < probability < 1.0:
    raise ValueError(f"probability must be in (0.5, 1), got {probability!r}.")
  two_sided = 2.0 * probability - 1.0
  low, high = 0.0, 1.0
  while student_t_two_sided_probability(high, df) < two_sided:
    high *= 2.0
  for _ in range(200):
    middle = 0.5 * (low + high)
    if middle in (low, high):
      break
    if student_t_two_sided_probability(middle, df) < two_sided:
      low = middle
    else:
      high = middle
  return 0.5 * (low + high)


def confidence_band(values, confidence=DEFAULT_CONFIDENCE):
  """Mean across seeds and its Student t confidence interval.

  Args:
    values: `[n]` or `[n, T]`: n seeds (of one curve or scalar).
    confidence: e.g. 0.95.

  Returns:
    dict: `num_seeds`, `mean`, `std` (ddof 1; None for one seed), `half_width`, `lower`,
    `upper` (None for one seed), as floats or `[T]` lists.
  """
  values = np.asarray(values, np.float64)
  if values.ndim not in (1, 2) or values.shape[0] < 1:
    raise ValueError(f"values must be [n] or [n, T] with n >= 1 seeds, got {values.shape}.")
  if not 0.0 < confidence < 1.0:
    raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
  num_seeds = values.shape[0]
  mean = values.mean(axis=0)
  convert = (lambda array: array.tolist()) if values.ndim == 2 else float
  band = {"num_seeds": int(num_seeds), "mean": convert(mean), "std": None, "half_width": None,
          "lower": None, "upper": None}
  if num_seeds >= 2:
    std = values.std(axis=0, ddof=1)
    half_width = student_t_quantile((1.0 + confidence) / 2.0, num_seeds - 1) * std / math.sqrt(
        num_seeds)
    band.update(std=convert(std), half_width=convert(half_width),
                lower=convert(mean - half_width), upper=convert(mean + half_width))
  return band


# Reading runs ---------------------------------------------------------------------------------


def resolve_evaluation_json(path):
  """An evaluation.json for `path`: the file itself, else (a directory) the full evaluation
  `<path>/evaluation/evaluation.json` of a run directory if there is one, else
  `<path>/evaluation.json` (an evaluate.py output directory, or the quick evaluation train.py
  writes into the run directory)."""
  candidates = [path] if os.path.isfile(path) else [
      os.path.join(path, "evaluation", "evaluation.json"), os.path.join(path, "evaluation.json")]
  for candidate in candidates:
    if os.path.isfile(candidate):
      return candidate
  raise FileNotFoundError(f"{path!r}: no evaluation JSON (looked for {', '.join(candidates)}); "
                          f"run evaluate.py --run_dir {path} first.")


def load_evaluation(path):
  """Reads an evaluation.json (evaluate.py or train.py), checking its schema version."""
  try:
    with open(path) as f:
      report = json.load(f)
  except ValueError as error:
    raise ValueError(f"{path}: not valid JSON ({error}).") from None
  if not isinstance(report, dict) or "schema_version" not in report:
    raise ValueError(f"{path}: no schema_version; written by an older version of train.py. "
                     f"Run evaluate.py on the run.")
  if report["schema_version"] not in READABLE_SCHEMA_VERSIONS:
    raise ValueError(f"{path}: schema_version {report['schema_version']}, this compare reads "
                     f"versions {READABLE_SCHEMA_VERSIONS}.")
  return report


def parse_run_specs(specs):
  """`["name=path1,path2", "other=runs/x_seed*"]` -> {name: [evaluation.json paths]}.

  Every path is a run directory, an evaluate.py output directory or a JSON file; globs are
  expanded (sorted). Raises ValueError / FileNotFoundError naming the bad spec.
  """
  if not specs:
    raise ValueError("--runs needs at least one NAME=PATH[,PATH...] entry.")
  variants, seen = {}, {}
  for spec in specs:
    if "=" not in spec:
      raise ValueError(f"--runs entry {spec!r} must look like NAME=PATH[,PATH...] (a variant "
                       f"name, '=', then run directories, JSON files or globs).")
    name, _, paths = spec.partition("=")
    name = name.strip()
    if not name:
      raise ValueError(f"--runs entry {spec!r} has an empty variant name before '='.")
    if name in variants:
      raise ValueError(f"--runs: variant {name!r} is given twice; list all its runs in one "
                       f"entry separated by commas.")
    items = [item.strip() for item in paths.split(",") if item.strip()]
    if not items:
      raise ValueError(f"--runs entry {spec!r} lists no path after '='.")
    resolved = []
    for item in items:
      matches = sorted(glob.glob(item)) if glob.has_magic(item) else [item]
      if not matches:
        raise FileNotFoundError(f"--runs {name}: the pattern {item!r} matches nothing.")
      for match in matches:
        if not os.path.exists(match):
          raise FileNotFoundError(f"--runs {name}: {match!r} does not exist.")
        json_path = os.path.abspath(resolve_evaluation_json(match))
        if json_path in seen:
          raise ValueError(f"--runs: {json_path} is listed for both {seen[json_path]!r} and "
                           f"{name!r}.")
        seen[json_path] = name
        resolved.append(json_path)
    variants[name] = resolved
  return variants


def _get(report, path):
  """The value at `path` in a report, or None if absent or skipped."""
  value = report
  for key in path:
    if not isinstance(value, dict) or key not in value:
      return None
    value = value[key]
  return value


# Comparing ------------------------------------------------------------------------------------


def summarize_variants(variants, confidence=DEFAULT_CONFIDENCE):
  """Confidence bands of every curve and of FVD for every variant.

  Args:
    variants: {name: [evaluation.json paths]} (see `parse_run_specs`).

  Returns:
    The summary dict (see docs/evaluation.md, "compare"): per variant `runs`, `num_seeds`,
    `fvd` and `curves` (each a `confidence_band` plus the per-seed `values`) and `notes`
    (metrics missing in some runs, settings that differ).
  """
  summary = {"schema_version": SUMMARY_SCHEMA_VERSION, "confidence": confidence,
             "interval": ("Student t interval of the mean across seeds: mean +- t_{(1+c)/2, n-1}"
                          " * s / sqrt(n), s with denominator n - 1; no band for one seed"),
             "variants": {}}
  num_observed = set()
  for name, paths in variants.items():
    if not paths:
      raise ValueError(f"Variant {name!r} has no runs.")
    reports = [load_evaluation(path) for path in paths]
    notes = []
    for report in reports:
      observed = _get(report, ("data", "num_observed"))
      if observed is not None:
        num_observed.add(int(observed))
    for key in ("num_video_samples", "num_tracking_samples", "num_video_windows", "fvd_clips"):
      values = {json.dumps(_get(report, ("settings", key))) for report in reports}
      if len(values) > 1:
        notes.append(f"settings.{key} differs between the runs: {sorted(values)}")
    curves = {}
    for key, path, _ in CURVES:
      found = [_get(report, path) for report in reports]
      present = [value for value in found if isinstance(value, list)]
      if not present:
        continue
      if len(present) < len(found):
        missing = [paths[i] for i, value in enumerate(found) if not isinstance(value, list)]
        notes.append(f"{key}: missing or skipped in {len(missing)} of {len(found)} runs "
                     f"({', '.join(missing)}); not shown for this variant")
        continue
      lengths = {len(value) for value in present}
      if len(lengths) > 1:
        raise ValueError(f"Variant {name!r}: {key} has different lengths across runs "
                         f"{[len(v) for v in present]} ({', '.join(paths)}); compare runs with "
                         f"the same window length.")
      values = np.array([[np.nan if v is None else v for v in value] for value in present],
                        np.float64)
      curves[key] = dict(confidence_band(values, confidence), values=values.tolist())
    fvd_values = [_get(report, FVD_PATH) for report in reports]
    if all(isinstance(value, (int, float)) for value in fvd_values):
      fvd = dict(confidence_band(fvd_values, confidence), values=[float(v) for v in fvd_values])
    else:
      missing = [paths[i] for i, v in enumerate(fvd_values) if not isinstance(v, (int, float))]
      fvd = {"missing": f"FVD missing or skipped in {len(missing)} of {len(reports)} runs: "
                        f"{', '.join(missing)}"}
      if len(missing) < len(reports):
        notes.append(fvd["missing"])
    summary["variants"][name] = {"runs": list(paths), "num_seeds": len(paths), "fvd": fvd,
                                 "curves": curves, "notes": notes}
  if len(num_observed) > 1:
    raise ValueError(f"The runs observe different numbers of frames {sorted(num_observed)}; "
                     f"their curves cannot share a time axis.")
  summary["num_observed"] = num_observed.pop() if num_observed else None
  return summary


def _legend(name, num_seeds):
  return f"{name} (1 seed, no band)" if num_seeds == 1 else f"{name} ({num_seeds} seeds)"


def draw_comparison(summary, output_dir):
  """Writes video_metrics.png, tracking_error.png and fvd.png; returns their file names."""
  num_observed = summary.get("num_observed")
  variants = summary["variants"]
  colors = {name: f"C{index % 10}" for index, name in enumerate(variants)}
  figures = {}

  panels = []
  for key, _, label in VIDEO_CURVES:
    lines = [dict(label=_legend(name, variant["num_seeds"]), y=variant["curves"][key]["mean"],
                  lower=variant["curves"][key]["lower"], upper=variant["curves"][key]["upper"],
                  color=colors[name])
             for name, variant in variants.items() if key in variant["curves"]]
    if lines:
      panels.append(dict(title=label, ylabel=label.split(" (")[0], lines=lines))
  if panels:
    figures["video_metrics"] = "video_metrics.png"
    figures_lib.save_line_panels(os.path.join(output_dir, figures["video_metrics"]), panels,
                                 num_columns=2, num_observed=num_observed)

  lines = []
  for name, variant in variants.items():
    for key, _, label in TRACKING_CURVES[:2]:
      if key in variant["curves"]:
        curve = variant["curves"][key]
        lines.append(dict(label=f"{_legend(name, variant['num_seeds'])}: {label}",
                          y=curve["mean"], lower=curve["lower"], upper=curve["upper"],
                          color=colors[name],
                          linestyle="-" if key == "tracking.best_of_samples" else "--"))
  if lines:
    figures["tracking_error"] = "tracking_error.png"
    figures_lib.save_line_panels(
        os.path.join(output_dir, figures["tracking_error"]),
        [dict(title="Tracking error (regression to object positions)",
              ylabel="error (pixels)", lines=lines)],
        num_columns=1, num_observed=num_observed, panel_size=(6.5, 4.0))

  groups = {name: variant["fvd"]["values"] for name, variant in variants.items()
            if "values" in variant["fvd"]}
  if groups:
    figures["fvd"] = "fvd.png"
    figures_lib.save_dot_plot(
        os.path.join(output_dir, figures["fvd"]), groups, title="FVD (dots: seeds; bar: mean)",
        ylabel="FVD (lower is better)",
        notes={name: f"{variants[name]['num_seeds']} seed"
                     + ("s" if variants[name]["num_seeds"] > 1 else "") for name in groups})
  return figures


def compare_runs(variants, output_dir, confidence=DEFAULT_CONFIDENCE):
  """Summarises, draws and writes `<output_dir>/summary.json`; returns the summary."""
  summary = summarize_variants(variants, confidence)
  os.makedirs(output_dir, exist_ok=True)
  summary["figures"] = draw_comparison(summary, output_dir)
  io_utils.atomic_write_json(os.path.join(output_dir, "summary.json"), summary, indent=1)
  return summary


def summary_lines(summary):
  """Human-readable lines: FVD and last-step values per variant."""
  lines = []
  for name, variant in summary["variants"].items():
    parts = [f"{name} ({variant['num_seeds']} seed{'s' if variant['num_seeds'] > 1 else ''})"]
    fvd = variant["fvd"]
    if "mean" in fvd:
      parts.append(f"FVD {fvd['mean']:.1f}" + (f" +- {fvd['half_width']:.1f}"
                                                if fvd["half_width"] is not None else ""))
    for key in ("tracking.best_of_samples", "video.ssim.closest"):
      if key in variant["curves"]:
        curve = variant["curves"][key]
        value = curve["mean"][-1]
        width = curve["half_width"][-1] if curve["half_width"] is not None else None
        parts.append(f"{key} last step {value:.3g}" + (f" +- {width:.2g}" if width is not None
                                                        else ""))
    lines.append(": ".join(parts[:1]) + ": " + ", ".join(parts[1:]) if len(parts) > 1
                 else parts[0])
    lines.extend(f"  note: {note}" for note in variant["notes"])
  return lines
