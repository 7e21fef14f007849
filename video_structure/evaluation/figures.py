"""The figures of an evaluation: metric and tracking curves (paper Figures 3, 4), sample
diversity (Figure S3) and example predictions (PNG and GIF), and the matplotlib plots that
`compare.py` draws too.

The plots use matplotlib's object-oriented API (no pyplot), so no global backend state is
touched.
"""

from __future__ import annotations

import io
import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from video_structure import io_utils
from video_structure.evaluation import drawing
from video_structure.evaluation import report as report_lib
from video_structure.evaluation import tracking


# Plots ---------------------------------------------------------------------------------------


def _new_figure(num_panels: int, num_columns: int, panel_size=(4.2, 3.2)):
  num_columns = max(1, min(num_columns, num_panels))
  num_rows = max(1, math.ceil(num_panels / num_columns))
  figure = Figure(figsize=(panel_size[0] * num_columns, panel_size[1] * num_rows))
  FigureCanvasAgg(figure)
  axes = [figure.add_subplot(num_rows, num_columns, index + 1)
          for index in range(max(num_panels, 1))]
  return figure, axes


def _save_figure(path, figure) -> None:
  buffer = io.BytesIO()
  figure.tight_layout()
  figure.savefig(buffer, format="png", dpi=100)
  io_utils.atomic_write_bytes(path, buffer.getvalue())


def save_line_panels(path, panels, num_columns: int = 2, num_observed: int | None = None,
                     panel_size=(4.2, 3.2)) -> None:
  """Writes a PNG of line plots over time steps 1..T (one panel per entry).

  Args:
    path: output PNG.
    panels: list of dicts with `title`, `ylabel`, optional `xlabel` (default "time step") and
      `lines`: list of dicts with `label`, `y` (length T; None entries are gaps), optional
      `lower` / `upper` (a shaded band), `color`, `linestyle`, `marker`.
    num_columns: panels per row.
    num_observed: if given, observed steps 1..n are shaded grey and a line marks the
      first predicted step.
  """
  if not isinstance(panels, (list, tuple)):
    raise ValueError(f"panels must be a list of dicts, got {type(panels).__name__}.")
  figure, axes = _new_figure(len(panels), num_columns, panel_size)
  if not panels:
    axes[0].text(0.5, 0.5, "nothing to plot", ha="center", va="center")
    axes[0].set_axis_off()
  for axis, panel in zip(axes, panels):
    lines = panel.get("lines", [])
    for line in lines:
      y = np.array([np.nan if value is None else value for value in line["y"]],
                   dtype=np.float64)
      x = np.arange(1, len(y) + 1)
      drawn = axis.plot(x, y, label=line.get("label"), color=line.get("color"),
                        linestyle=line.get("linestyle", "-"), marker=line.get("marker"))[0]
      if line.get("lower") is not None and line.get("upper") is not None:
        axis.fill_between(x, np.asarray(line["lower"], np.float64),
                          np.asarray(line["upper"], np.float64), color=drawn.get_color(),
                          alpha=0.2, linewidth=0)
    if num_observed:
      axis.axvspan(0.5, num_observed + 0.5, color="0.9", zorder=0)
      axis.axvline(num_observed + 0.5, color="0.5", linewidth=0.8)
    axis.set_title(panel.get("title", ""), fontsize=9)
    axis.set_xlabel(panel.get("xlabel", "time step (grey: observed)" if num_observed
                              else "time step"), fontsize=8)
    axis.set_ylabel(panel.get("ylabel", ""), fontsize=8)
    axis.tick_params(labelsize=7)
    if any(line.get("label") for line in lines):
      axis.legend(fontsize=6)
  for axis in axes[len(panels):]:
    axis.set_axis_off()
  _save_figure(path, figure)


def save_dot_plot(path, groups, title: str = "", ylabel: str = "", notes=None) -> None:
  """Writes a PNG with one column of dots per group (e.g. FVD per seed of each variant) and
  a horizontal bar at each group's mean.

  Args:
    groups: dict {name: list of values} (insertion order = left to right).
    notes: optional dict {name: text} printed under the group's name.
  """
  if not isinstance(groups, dict):
    raise ValueError(f"groups must be a dict of name -> values, got {type(groups).__name__}.")
  figure, (axis,) = _new_figure(1, 1, (max(3.0, 1.3 * len(groups) + 1.5), 3.4))
  for index, (name, values) in enumerate(groups.items()):
    values = np.asarray(values, np.float64)
    if values.size:
      offsets = np.linspace(-0.12, 0.12, values.size) if values.size > 1 else np.zeros(1)
      axis.plot(index + offsets, values, "o", alpha=0.8)
      axis.plot([index - 0.25, index + 0.25], [values.mean()] * 2, color="black", linewidth=1.5)
  labels = [name + (f"\n{notes[name]}" if notes and notes.get(name) else "") for name in groups]
  axis.set_xticks(range(len(groups)))
  axis.set_xticklabels(labels, fontsize=8)
  axis.set_xlim(-0.6, len(groups) - 0.4)
  axis.set_title(title, fontsize=9)
  axis.set_ylabel(ylabel, fontsize=8)
  _save_figure(path, figure)


def save_trajectory_panels(path, panels, num_columns: int = 3) -> None:
  """Writes a PNG of trajectory plots in keypoint coordinates (paper Figure S3): per panel the
  true trajectory (black; dashed over the observed steps) and sampled ones (colours), with
  endpoints marked by dots, over the faded frame of the last observed step.

  Args:
    panels: list of dicts with `title`, `truth` (T, 2), `samples` (S, T, 2) in coordinates
      (x right, y up, [-1, 1]), `num_observed` n (samples are drawn from step n - 1 on, so
      they start where the observation ends), optional `background` uint8 (H, W, 3).
  """
  figure, axes = _new_figure(len(panels), num_columns, (3.2, 3.2))
  if not panels:
    axes[0].text(0.5, 0.5, "nothing to plot", ha="center", va="center")
    axes[0].set_axis_off()
  for axis, panel in zip(axes, panels):
    truth = np.asarray(panel["truth"], np.float64)
    samples = np.asarray(panel["samples"], np.float64)
    if (truth.ndim != 2 or truth.shape[1] != 2 or samples.ndim != 3
        or samples.shape[1:] != truth.shape):
      raise ValueError(f"panel {panel.get('title')!r}: truth must be (T, 2) and samples "
                       f"(S, T, 2), got {truth.shape} and {samples.shape}.")
    num_observed = int(panel.get("num_observed", 0))
    background = panel.get("background")
    if background is not None:
      background = drawing.check_frames(background, "background")
      height, width = background.shape[:2]
      # Pixel centres sit at linspace(-1, 1, W) (x) and linspace(1, -1, H) (y).
      half_x, half_y = 1.0 / (width - 1), 1.0 / (height - 1)
      axis.imshow(background, extent=(-1 - half_x, 1 + half_x, -1 - half_y, 1 + half_y),
                  alpha=0.35, origin="upper", interpolation="nearest")
    start = max(num_observed - 1, 0)
    for sample in samples:
      drawn = axis.plot(sample[start:, 0], sample[start:, 1], linewidth=0.9, alpha=0.8)[0]
      axis.plot(sample[-1, 0], sample[-1, 1], "o", markersize=2.5, color=drawn.get_color())
    axis.plot(truth[:num_observed, 0], truth[:num_observed, 1], color="black", linestyle="--",
              linewidth=1.2)
    axis.plot(truth[start:, 0], truth[start:, 1], color="black", linewidth=1.6)
    axis.plot(truth[-1, 0], truth[-1, 1], "o", color="black", markersize=4)
    axis.set_xlim(-1.05, 1.05)
    axis.set_ylim(-1.05, 1.05)
    axis.set_aspect("equal")
    axis.set_title(panel.get("title", ""), fontsize=8)
    axis.tick_params(labelsize=6)
  for axis in axes[len(panels):]:
    axis.set_axis_off()
  _save_figure(path, figure)


# The evaluation's figures --------------------------------------------------------------


def write_figures(output_dir, report, data, video, video_indices, selections, figure_metric,
                  test_keypoints, kept_keypoints, regressor, settings, draw_keypoints,
                  progress=None):
  """Draws every figure of an evaluation; returns {name: path relative to output_dir}.

  `video` is None when no video metrics were measured (then there are no video metric curves
  and no examples). `draw_keypoints` is false for a representation that is no image positions
  (a CNN-VRNN's features): no keypoints are drawn and the diversity figure shows regressed
  positions.
  """
  num_observed = settings.num_observed
  figures = {}

  # Video metric curves.
  if video is not None:
    panels = []
    for name, label in report_lib.VIDEO_METRIC_LABELS.items():
      curves = report["video"].get(name, {"skipped": "not in this report"})
      if "skipped" in curves:
        continue
      # Which VGG16 weights the VGG curves come from (a setting that changes the numbers;
      # LPIPS always has the same weights).
      weights = curves.get("weights")
      source = f" ({weights['short_name']})" if name == "vgg_cosine" and isinstance(
          weights, dict) and weights.get("short_name") else ""
      for which in ("closest", "furthest"):
        panels.append(dict(
            title=f"{label}{source}: {which} of {report['video']['num_samples']}",
            ylabel=label, lines=[
                dict(label=f"{which} (whole sample)", y=curves[which]),
                dict(label=f"{which} per step", y=curves[f"{which}_per_step"],
                     linestyle=":"),
                dict(label="mean of samples", y=curves["sample_mean"], linestyle="--",
                     color="gray")] + ([dict(label="repeat last observed frame",
                                             y=curves["repeat_last"], linestyle="-.",
                                             color="black")]
                                       if curves.get("repeat_last") is not None else [])))
    figures["video_metrics"] = "video_metrics.png"
    save_line_panels(os.path.join(output_dir, figures["video_metrics"]), panels, num_columns=2,
                     num_observed=num_observed)
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
    save_line_panels(
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
      matched = tracking.match_keypoints_to_objects(test_keypoints, data.test_positions)
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
    save_trajectory_panels(os.path.join(output_dir, figures["sample_diversity"]), panels,
                           num_columns=3)
    report["diversity"] = {"source": source, "num_samples": int(kept_keypoints.shape[0]),
                           "examples": examples,
                           "matched_keypoints": None if matched is None else matched.tolist()}
  if progress:
    progress.update(3)

  # Examples: keypoints on frames, truth vs closest vs furthest (PNG and GIF).
  if video is not None and video["figure_frames"] is not None:
    selection = selections[figure_metric]
    example_files = []
    for example in range(len(video["figure_frames"])):
      window = int(video_indices[example])
      truth = data.test_frames[window]
      rows = [int(selection["closest_index"][example]), int(selection["furthest_index"][example])]
      frames = video["figure_frames"][example][rows]
      keypoints = video["figure_keypoints"][example][rows]
      figure = drawing.prediction_figure(
          truth, frames, keypoints=test_keypoints[window] if draw_keypoints else None,
          predicted_keypoints=keypoints if draw_keypoints else None,
          num_observed=num_observed, scale=2)
      png = os.path.join("examples", f"example_{example}.png")
      drawing.save_png(os.path.join(output_dir, png), figure)
      gif = os.path.join("examples", f"example_{example}.gif")
      gif_frames = drawing.side_by_side_frames(
          [truth, frames[0], frames[1]],
          [test_keypoints[window], keypoints[0], keypoints[1]] if draw_keypoints else None,
          num_observed=num_observed)
      drawing.save_gif(os.path.join(output_dir, gif), gif_frames)
      example_files.append({"window": window, "png": png, "gif": gif,
                            "closest_sample": rows[0], "furthest_sample": rows[1]})
    figures["examples"] = example_files
    figures["examples_rows"] = (f"truth (detected keypoints), closest, furthest sample by "
                                f"{figure_metric}")
  if progress:
    progress.update(4)
  return figures
