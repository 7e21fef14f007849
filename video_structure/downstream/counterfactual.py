"""Counterfactual manipulation of observed keypoints (paper Sec. 5.4, Figure 6).

  python -m video_structure.downstream.counterfactual --run_dir runs/basketball_cpu
  python -m video_structure.downstream.counterfactual --run_dir RUN --shift 0 0.4 --mode ramp

For each of a few Basketball test sequences: detect the keypoints of the observed frames (8),
find the keypoint that is on average closest to the ground-truth position of `--object`
(default player_1) over those frames (the matching of the paper's Figure S3), move that
keypoint's observed coordinates (`--mode shift`: the whole observed trajectory by the vector
`--shift DX DY`; `ramp`: by t / (n - 1) times the vector at observed step t, which changes the
player's velocity), and roll the dynamics out with `StructVRNN.predict_from_keypoints` from the
original and from the manipulated observations. Both rollouts use the same random seed, so
their latent noise is identical and every difference between them is caused by the
manipulation. Every other object is matched to a keypoint the same way, and the report says how
far each object's keypoint moved in the manipulated rollouts relative to the original ones: the
manipulated player's (which should move by about the shift) and the other players' (non-zero
means the manipulation propagates to them through the dynamics).

Writes `<run_dir>/counterfactual.json` (every number; schema in docs/downstream.md) and one
figure per sequence, `counterfactual_<i>.png` next to the JSON: the trajectories of all
matched objects over the first frame (original blue, manipulated red; observed light,
predicted dark, one line per sample; crosses at the initial positions, dots at the final
ones) above a strip of frames (truth with detected keypoints; decoded sample 0 of the original
and of the manipulated rollout).
"""

import argparse
import dataclasses
import io
import os
import sys
from typing import Optional, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from video_structure import downstream
from video_structure import io_utils
from video_structure.evaluation import drawing
from video_structure.evaluation import model_calls
from video_structure.evaluation import report as report_lib
from video_structure.model import ops

MODES = ("shift", "ramp")
# Figure colours (matplotlib): original / manipulated, observed (light) / predicted (dark).
ORIGINAL_OBSERVED, ORIGINAL_PREDICTED = "#6baed6", "#08306b"
MANIPULATED_OBSERVED, MANIPULATED_PREDICTED = "#fc9272", "#99000d"


@dataclasses.dataclass
class Settings:
  """Everything that decides a counterfactual result (recorded in the JSON).

  Attributes:
    object_name: the object whose keypoint is moved (one of the data's object names).
    shift: (dx, dy) in keypoint coordinates (x right, y up; the frame spans [-1, 1]).
    mode: `shift` (constant offset) or `ramp` (offset growing linearly to `shift` at the last
      observed step).
    num_sequences: test sequences manipulated, from `first_sequence` on.
    first_sequence: index of the first test sequence used.
    num_samples: stochastic rollouts per sequence (original and manipulated each).
    num_observed: observed steps (None: the run's `observed_steps`).
    num_predicted: predicted steps (None: the run's `predicted_steps`).
    seed: the rollouts' seed (sequence i uses (seed, i) for both rollouts).
    figure_samples: samples drawn per object in the figure.
  """
  object_name: str = "player_1"
  shift: Tuple[float, float] = (-0.3, 0.0)
  mode: str = "shift"
  num_sequences: int = 3
  first_sequence: int = 0
  num_samples: int = 5
  num_observed: Optional[int] = None
  num_predicted: Optional[int] = None
  seed: int = 0
  figure_samples: int = 5

  def validate(self):
    if self.mode not in MODES:
      raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}.")
    shift = np.asarray(self.shift, np.float64)
    if shift.shape != (2,) or not np.all(np.isfinite(shift)):
      raise ValueError(f"shift must be two finite numbers (dx, dy), got {self.shift!r}.")
    for name in ("num_sequences", "num_samples", "figure_samples"):
      downstream.check_positive_int(getattr(self, name), name)
    downstream.check_positive_int(self.first_sequence, "first_sequence", minimum=0)
    downstream.check_positive_int(self.seed, "seed", minimum=0)
    if self.num_observed is not None:
      downstream.check_positive_int(self.num_observed, "num_observed")
    if self.num_predicted is not None:
      downstream.check_positive_int(self.num_predicted, "num_predicted")
    return self


# Pure functions. ------------------------------------------------------------------------------

def match_object_keypoints(keypoints, positions):
  """For every object, the keypoint closest to it on average over the frames (Figure S3).

  Args:
    keypoints: `[T, K, 3]` (x, y, mu) keypoints of one sequence.
    positions: `[T, M, 2]` true (x, y) object positions of the same frames.

  Returns:
    (int `[M]` keypoint index per object, float64 `[M, K]` mean distance of every keypoint
    to every object).
  """
  keypoints = np.asarray(keypoints, np.float64)
  positions = np.asarray(positions, np.float64)
  if keypoints.ndim != 3 or keypoints.shape[-1] != 3:
    raise ValueError(f"keypoints must be [T, K, 3], got {keypoints.shape}.")
  if positions.ndim != 3 or positions.shape[-1] != 2 or positions.shape[0] != keypoints.shape[0]:
    raise ValueError(f"positions must be [T, M, 2] with T = {keypoints.shape[0]} to match "
                     f"keypoints, got {positions.shape}.")
  distance = np.linalg.norm(positions[:, :, None, :] - keypoints[:, None, :, :2], axis=-1)
  mean_distance = distance.mean(axis=0)  # [M, K]
  return np.argmin(mean_distance, axis=-1), mean_distance


def manipulate_keypoints(keypoints, index, shift, mode="shift"):
  """Moves one keypoint's observed trajectory.

  Args:
    keypoints: `[T, K, 3]` observed keypoints.
    index: the keypoint to move.
    shift: (dx, dy).
    mode: `shift`: (dx, dy) added at every step; `ramp`: t / (T - 1) * (dx, dy) added at step
      t (0 at the first step, the full vector at the last; T = 1 gets the full vector).

  Returns:
    float32 `[T, K, 3]` copy with keypoint `index`'s (x, y) moved and clipped to [-1, 1]
    (its mu and every other keypoint unchanged).
  """
  keypoints = np.array(keypoints, np.float32)
  if keypoints.ndim != 3 or keypoints.shape[-1] != 3:
    raise ValueError(f"keypoints must be [T, K, 3], got {keypoints.shape}.")
  num_steps, num_keypoints = keypoints.shape[:2]
  if not 0 <= int(index) < num_keypoints:
    raise ValueError(f"keypoint index must be in [0, {num_keypoints}), got {index}.")
  shift = np.asarray(shift, np.float32)
  if shift.shape != (2,):
    raise ValueError(f"shift must be (dx, dy), got {shift!r}.")
  if mode == "shift":
    weights = np.ones(num_steps, np.float32)
  elif mode == "ramp":
    weights = (np.arange(num_steps, dtype=np.float32) / (num_steps - 1) if num_steps > 1
               else np.ones(1, np.float32))
  else:
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
  keypoints[:, index, :2] = np.clip(keypoints[:, index, :2] + weights[:, None] * shift, -1, 1)
  return keypoints


def displacements(original, manipulated):
  """Distance between corresponding keypoints of two rollouts.

  Args:
    original, manipulated: `[S, T, K, 3]` keypoints (same samples, same seed).

  Returns:
    float64 `[S, T, K]` Euclidean (x, y) distances.
  """
  original = np.asarray(original, np.float64)
  manipulated = np.asarray(manipulated, np.float64)
  if original.shape != manipulated.shape or original.ndim != 4:
    raise ValueError(f"original and manipulated must both be [S, T, K, 3], got "
                     f"{original.shape} and {manipulated.shape}.")
  return np.linalg.norm(original[..., :2] - manipulated[..., :2], axis=-1)


def sample_spread(keypoints):
  """Mean distance between two different samples' keypoints, per step and keypoint: the
  scale of the rollouts' own randomness. `[S, T, K, 3]` -> `[T, K]` (zeros when S = 1)."""
  keypoints = np.asarray(keypoints, np.float64)
  num_samples = keypoints.shape[0]
  if num_samples < 2:
    return np.zeros(keypoints.shape[1:3])
  total = np.zeros(keypoints.shape[1:3])
  for a in range(num_samples):
    for b in range(a + 1, num_samples):
      total += np.linalg.norm(keypoints[a, ..., :2] - keypoints[b, ..., :2], axis=-1)
  return total / (num_samples * (num_samples - 1) / 2)


def sequence_report(detected, positions, manipulated_input, original, manipulated, indices,
                    mean_distance, object_names, object_index, num_observed):
  """The numbers of one manipulated sequence.

  Args:
    detected: `[n, K, 3]` observed keypoints; manipulated_input: their manipulated copy.
    positions: `[n, M, 2]` true positions over the observed frames.
    original, manipulated: `[S, n + m, K, 3]` rollouts.
    indices: `[M]` matched keypoint per object; mean_distance `[M, K]`.
    object_index: the manipulated object.

  Returns:
    JSON-ready dict (docs/downstream.md).
  """
  moved = displacements(original, manipulated)  # [S, T, K]
  spread = sample_spread(original)  # [T, K]
  manipulated_keypoint = int(indices[object_index])
  objects = {}
  for m, name in enumerate(object_names):
    k = int(indices[m])
    objects[name] = {
        "keypoint": k,
        "match_distance": float(mean_distance[m, k]),
        "shares_manipulated_keypoint": bool(k == manipulated_keypoint),
        "observed_mean_displacement": float(moved[:, :num_observed, k].mean()),
        "predicted_mean_displacement": float(moved[:, num_observed:, k].mean())
                                       if moved.shape[1] > num_observed else None,
        "final_displacement": float(moved[:, -1, k].mean()),
        "displacement_per_step": moved[:, :, k].mean(axis=0).tolist(),
        "predicted_sample_spread": float(spread[num_observed:, k].mean())
                                   if moved.shape[1] > num_observed else None,
    }
  others = [k for k in range(moved.shape[2]) if k != manipulated_keypoint]
  input_shift = np.linalg.norm(manipulated_input[:, manipulated_keypoint, :2]
                               - detected[:, manipulated_keypoint, :2], axis=-1)
  return {
      "manipulated_keypoint": manipulated_keypoint,
      "input_displacement_mean": float(input_shift.mean()),
      "input_displacement_per_step": input_shift.tolist(),
      "objects": objects,
      "other_keypoints_predicted_mean_displacement":
          float(moved[:, num_observed:, others].mean())
          if others and moved.shape[1] > num_observed else None,
  }


def summarize(sequences, object_name):
  """Means over sequences: the manipulated object, the other objects (those matched to a
  different keypoint than the manipulated one), every object, all other keypoints."""
  def mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None
  names = list(sequences[0]["objects"])
  manipulated = mean([s["objects"][object_name]["predicted_mean_displacement"]
                      for s in sequences])
  other = mean([s["objects"][name]["predicted_mean_displacement"] for s in sequences
                for name in names if name != object_name
                and not s["objects"][name]["shares_manipulated_keypoint"]])
  return {
      "manipulated_object": {
          "name": object_name,
          "input_displacement_mean": mean([s["input_displacement_mean"] for s in sequences]),
          "predicted_mean_displacement": manipulated},
      "other_objects_predicted_mean_displacement": other,
      "other_to_manipulated_ratio": (other / manipulated if other is not None and manipulated
                                     else None),
      "other_keypoints_predicted_mean_displacement": mean(
          [s["other_keypoints_predicted_mean_displacement"] for s in sequences]),
      "per_object_predicted_mean_displacement": {
          name: mean([s["objects"][name]["predicted_mean_displacement"] for s in sequences])
          for name in names},
      "per_object_predicted_sample_spread": {
          name: mean([s["objects"][name]["predicted_sample_spread"] for s in sequences])
          for name in names},
  }


# The experiment. ------------------------------------------------------------------------------

def check_run_config(config, run_dir="run"):
  """Raises ValueError for runs whose representation cannot be manipulated."""
  if config.representation != "keypoints":
    raise ValueError(f"{run_dir}: counterfactual manipulation moves keypoints; this run's "
                     f"representation is {config.representation!r} (a CNN-VRNN's features "
                     f"have no positions to move).")
  if config.action_size:
    raise ValueError(f"{run_dir}: counterfactual rollouts of action-conditional models "
                     f"(action_size={config.action_size}) are not supported; use a Basketball "
                     f"run.")


def load_sequences(source, settings, window_length):
  """The first `window_length` frames and positions of the chosen test sequences.

  Returns:
    (uint8 `[N, L, H, W, 3]`, float32 `[N, L, M, 2]`, int `[N]` test-sequence indices).
  """
  spec = source.test.element_spec
  if not isinstance(spec, dict) or "image" not in spec or "true_object_pos" not in spec:
    raise ValueError(f"{source.name}: counterfactual manipulation needs test sequences with "
                     f"`image` and `true_object_pos` (ground-truth object positions).")
  dataset = source.test.skip(settings.first_sequence).take(settings.num_sequences)
  frames, positions = [], []
  for sequence in dataset.as_numpy_iterator():
    if len(sequence["image"]) < window_length:
      raise ValueError(f"{source.name}: a test sequence has {len(sequence['image'])} frames; "
                       f"{window_length} (observed + predicted) are needed.")
    frames.append(sequence["image"][:window_length])
    positions.append(sequence["true_object_pos"][:window_length])
  if not frames:
    raise ValueError(f"{source.name}: no test sequence at index {settings.first_sequence} "
                     f"(--first_sequence).")
  indices = np.arange(settings.first_sequence, settings.first_sequence + len(frames))
  return np.stack(frames), np.stack(positions).astype(np.float32), indices


def run_counterfactual(model, config, source, settings, output_dir, run_info=None,
                       stream=None):
  """Manipulates, rolls out, measures and draws every chosen test sequence.

  Args:
    model: the trained `StructVRNN` (keypoint representation, not action-conditional).
    config: its `Config`.
    source: `sources.DataSource` with `object_names` and test sequences carrying `image` and
      `true_object_pos`.
    settings: `Settings`.
    output_dir: where the figures go.

  Returns:
    The report (JSON-ready dict; see docs/downstream.md).
  """
  settings.validate()
  check_run_config(config)
  stream = stream or sys.stdout
  object_names = list(source.object_names or [])
  if not object_names:
    raise ValueError(f"{source.name}: the data have no named objects (object_names); "
                     f"counterfactual manipulation needs ground-truth object positions.")
  if settings.object_name not in object_names:
    raise ValueError(f"--object {settings.object_name!r} is not an object of {source.name}; "
                     f"known: {object_names}.")
  object_index = object_names.index(settings.object_name)
  num_observed = settings.num_observed or config.observed_steps
  num_predicted = (config.predicted_steps if settings.num_predicted is None
                   else settings.num_predicted)
  frames_uint8, positions, sequence_indices = load_sequences(
      source, settings, num_observed + num_predicted)
  if positions.shape[2] != len(object_names):
    raise ValueError(f"{source.name}: true_object_pos has {positions.shape[2]} objects but "
                     f"object_names lists {len(object_names)}.")
  os.makedirs(output_dir, exist_ok=True)
  # Eager calls, as this experiment has always made them.
  calls = model_calls.ModelCalls(model, compiled=False)
  sequences, figures = [], []
  for i, (frames_u8, truth, sequence_index) in enumerate(
      zip(frames_uint8, positions, sequence_indices)):
    detected = calls.detect(frames_u8[None])[0]  # [L, K, 3]
    observed = detected[:num_observed]
    indices, mean_distance = match_object_keypoints(observed, truth[:num_observed])
    manipulated_input = manipulate_keypoints(observed, indices[object_index], settings.shift,
                                             settings.mode)

    def rollout(observed_keypoints):
      result = calls.predict_from_keypoints(
          observed_keypoints[None], frames_u8[None, 0], num_predicted, settings.num_samples,
          detected[None, 0], (settings.seed, i))
      return result["keypoints"][:, 0], result["frames"][:, 0]

    original, original_frames = rollout(observed)  # [S, L, K, 3], [S, L, H, W, 3]
    manipulated, manipulated_frames = rollout(manipulated_input)
    report = sequence_report(observed, truth[:num_observed], manipulated_input, original,
                             manipulated, indices, mean_distance, object_names, object_index,
                             num_observed)
    report["sequence_index"] = int(sequence_index)
    path = os.path.join(output_dir, f"counterfactual_{i}.png")
    write_figure(path, frames_u8, detected, observed, manipulated_input, original, manipulated,
                 original_frames[0], manipulated_frames[0], indices, object_names,
                 object_index, num_observed, settings.figure_samples,
                 title=f"test sequence {sequence_index}: {settings.object_name} "
                       f"{settings.mode} by ({settings.shift[0]:+.2f}, "
                       f"{settings.shift[1]:+.2f})")
    report["figure"] = os.path.abspath(path)
    figures.append(report["figure"])
    sequences.append(report)
    moved = report["objects"][settings.object_name]["predicted_mean_displacement"]
    stream.write(f"sequence {sequence_index}: {settings.object_name} = keypoint "
                 f"{report['manipulated_keypoint']}, its predicted positions moved "
                 f"{moved if moved is None else round(moved, 4)}; other keypoints "
                 f"{report['other_keypoints_predicted_mean_displacement']}\n")
    stream.flush()
  settings_dict = dataclasses.asdict(settings)
  settings_dict.update(shift=list(settings.shift), num_observed=num_observed,
                       num_predicted=num_predicted)
  return {
      "task": "counterfactual",
      "run": run_info or {},
      "dataset": source.name,
      "settings": settings_dict,
      "object_names": object_names,
      "sequences": sequences,
      "summary": summarize(sequences, settings.object_name),
      "figures": figures,
  }


# Figure. --------------------------------------------------------------------------------------

def write_figure(path, true_frames, detected, observed, manipulated_input, original,
                 manipulated, original_frames, manipulated_frames, indices, object_names,
                 object_index, num_observed, num_figure_samples, title=""):
  """Trajectory panel over the first frame plus a frame strip (module docstring).

  Args:
    true_frames: uint8 `[L, H, W, 3]`; detected `[L, K, 3]` keypoints of all true frames.
    observed, manipulated_input: `[n, K, 3]` original and manipulated observed keypoints.
    original, manipulated: `[S, L, K, 3]` rollouts; original_frames, manipulated_frames:
      float `[L, H, W, 3]` decoded frames of sample 0.
    indices: `[M]` matched keypoint per object.
  """
  strip = drawing.prediction_figure(
      true_frames, ops.frames_to_uint8(np.stack([original_frames, manipulated_frames])).numpy(),
      keypoints=detected, predicted_keypoints=np.stack([original[0], manipulated[0]]),
      num_observed=num_observed, scale=2)
  figure = Figure(figsize=(12, 6 + 12 * strip.shape[0] / strip.shape[1]))
  FigureCanvasAgg(figure)
  grid = figure.add_gridspec(2, 1, height_ratios=[6, 12 * strip.shape[0] / strip.shape[1]])
  axis = figure.add_subplot(grid[0])
  height, width = true_frames.shape[1:3]
  half_x, half_y = 1.0 / (width - 1), 1.0 / (height - 1)
  axis.imshow(true_frames[0], extent=(-1 - half_x, 1 + half_x, -1 - half_y, 1 + half_y),
              origin="upper", interpolation="nearest", alpha=0.5)
  manipulated_keypoint = int(indices[object_index])
  drawn = set()
  for m, name in enumerate(object_names):
    k = int(indices[m])
    if k in drawn:
      continue
    drawn.add(k)
    names = [object_names[j] for j in range(len(object_names)) if int(indices[j]) == k]
    width_scale = 1.8 if k == manipulated_keypoint else 1.0
    for observed_kp, rollout, light, dark in (
        (observed, original, ORIGINAL_OBSERVED, ORIGINAL_PREDICTED),
        (manipulated_input, manipulated, MANIPULATED_OBSERVED, MANIPULATED_PREDICTED)):
      axis.plot(observed_kp[:, k, 0], observed_kp[:, k, 1], color=light,
                linewidth=2.0 * width_scale, alpha=0.9)
      axis.plot(observed_kp[0, k, 0], observed_kp[0, k, 1], "x", color=light, markersize=7,
                markeredgewidth=2)
      for sample in rollout[:num_figure_samples]:
        path_xy = np.concatenate([observed_kp[-1:, k, :2], sample[num_observed:, k, :2]])
        axis.plot(path_xy[:, 0], path_xy[:, 1], color=dark, linewidth=0.9 * width_scale,
                  alpha=0.7)
        axis.plot(path_xy[-1, 0], path_xy[-1, 1], "o", color=dark, markersize=3)
    axis.annotate(", ".join(names), (observed[0, k, 0], observed[0, k, 1]), fontsize=7,
                  xytext=(4, 4), textcoords="offset points",
                  fontweight="bold" if k == manipulated_keypoint else "normal")
  axis.set_xlim(-1.05, 1.05)
  axis.set_ylim(-1.05, 1.05)
  axis.set_aspect("equal")
  axis.set_title(title, fontsize=9)
  axis.legend(handles=[
      Line2D([], [], color=ORIGINAL_OBSERVED, linewidth=2, label="original, observed"),
      Line2D([], [], color=ORIGINAL_PREDICTED, label="original, predicted"),
      Line2D([], [], color=MANIPULATED_OBSERVED, linewidth=2, label="manipulated, observed"),
      Line2D([], [], color=MANIPULATED_PREDICTED, label="manipulated, predicted"),
      Line2D([], [], color="grey", marker="x", linestyle="", label="initial position"),
      Line2D([], [], color="grey", marker="o", linestyle="", label="final position")],
      fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  strip_axis = figure.add_subplot(grid[1])
  strip_axis.imshow(strip, interpolation="nearest")
  strip_axis.set_axis_off()
  strip_axis.set_title("rows: truth (detected keypoints), original sample 0, manipulated "
                       "sample 0; green: observed, red: predicted", fontsize=8)
  figure.tight_layout()
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=100)
  return io_utils.atomic_write_bytes(path, buffer.getvalue())


# Command line. --------------------------------------------------------------------------------

def build_parser():
  parser = argparse.ArgumentParser(
      prog="python -m video_structure.downstream.counterfactual", description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--run_dir", required=True, help="Run directory (Basketball model).")
  parser.add_argument("--checkpoint", default=None, help="Default: the run's latest.")
  parser.add_argument("--data_dir", default="data", help="Where the datasets live.")
  parser.add_argument("--output", default=None, help="Output JSON (default <run_dir>/"
                      "counterfactual.json); figures go next to it.")
  parser.add_argument("--object", dest="object_name", default="player_1",
                      help="Object whose keypoint is moved.")
  parser.add_argument("--shift", type=float, nargs=2, default=(-0.3, 0.0),
                      metavar=("DX", "DY"),
                      help="Displacement in keypoint coordinates (x right, y up; the frame "
                           "spans [-1, 1], 0.3 is ~10 pixels of a 64-pixel frame).")
  parser.add_argument("--mode", choices=MODES, default="shift")
  parser.add_argument("--num_sequences", type=int, default=3)
  parser.add_argument("--first_sequence", type=int, default=0)
  parser.add_argument("--num_samples", type=int, default=5)
  parser.add_argument("--num_observed", type=int, default=None)
  parser.add_argument("--num_predicted", type=int, default=None)
  parser.add_argument("--seed", type=int, default=0)
  return parser


def main(argv=None, source=None):
  """Runs the experiment from the command line; `source` injects a `DataSource` (tests)."""
  args = build_parser().parse_args(argv)
  settings = Settings(
      object_name=args.object_name, shift=tuple(args.shift), mode=args.mode,
      num_sequences=args.num_sequences, first_sequence=args.first_sequence,
      num_samples=args.num_samples, num_observed=args.num_observed,
      num_predicted=args.num_predicted, seed=args.seed,
      figure_samples=min(args.num_samples, 5)).validate()
  run = downstream.open_run(args.run_dir, args.checkpoint, check_run_config)
  config = run.config
  source = downstream.prepare_source(config, args.data_dir, source)
  path = downstream.output_path(args.output, args.run_dir, "counterfactual.json")
  report = run_counterfactual(run.model, config, source, settings,
                              os.path.dirname(os.path.abspath(path)), downstream.run_info(run))
  report_lib.write_json(path, report)
  summary = report["summary"]
  manipulated = summary["manipulated_object"]
  print(f"{settings.object_name}: input moved {manipulated['input_displacement_mean']:.4f}, "
        f"predicted positions moved {manipulated['predicted_mean_displacement']}; "
        f"other objects moved {summary['other_objects_predicted_mean_displacement']} "
        f"(ratio {summary['other_to_manipulated_ratio']})\n"
        f"Wrote {path} and {len(report['figures'])} figure(s)")
  return report


if __name__ == "__main__":  # Short errors and --debug, as the video-structure-downstream command.
  from video_structure.cli import console  # pylint: disable=g-import-not-at-top
  sys.exit(console.run_module(main, __spec__.name))
