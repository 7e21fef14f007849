"""Synthetic Basketball videos: court, renderer and trajectory files (numpy only).

The paper renders real STATS SportVU trajectories (Zhan et al., ICLR 2019) as coloured dots on
a top-down basketball court. Those trajectories are proprietary, so the project

* simulates multi-agent plays in the same array layout (`basketball_plays.simulate_plays`),
* imports a user's own copy of the real trajectories (`load_trajectories`, this module), and
* renders either as 64x64 videos of the 5 offensive players and the ball (`render_frames`,
  this module).

Trajectory layout, shared by the real data and the simulator: float arrays `(N, T, 22)` in feet
on the left half court, x in [0, 47] (baseline at x = 0, basket at (5.25, 25)), y in [0, 50];
columns 0-1 ball (x, y), 2-11 five offensive players (x1, y1, ..., x5, y5), 12-21 five
defenders. Frames are 6.25 Hz apart.

Feet -> image mapping (identical for every image size): the view is the 52 x 52 ft square
centred on the half court, x_ft in [-2.5, 49.5] and y_ft in [-1, 51] (so a small margin of
out-of-bounds floor is visible). In the project's keypoint coordinates

    kx = (x_ft - 23.5) / 26        (baseline/basket on the left, half-court line on the right)
    ky = (y_ft - 25.0) / 26        (y_ft = 0 sideline at the bottom, y_ft = 50 at the top)

and in pixels (pixel centres on linspace(-1, 1, W) / linspace(1, -1, H), see common.md)

    column = (kx + 1) * (W - 1) / 2,    row = (1 - ky) * (H - 1) / 2.

At 64x64 that is 63 / 52 = 1.21 px per foot. Dot centres are drawn exactly at these
(sub-pixel) positions, which is what `object_positions` returns.
"""

import functools
import os

import numpy as np

FRAME_RATE_HZ = 6.25
COURT_LENGTH_FT = 47.0  # Half court: x in [0, 47] ft, basket end at x ~ 5.25 ft.
COURT_WIDTH_FT = 50.0  # y in [0, 50] ft.
NUM_OBJECTS = 6  # Ball + 5 offensive players (the rendered objects).
OBJECT_NAMES = ("ball", "player_1", "player_2", "player_3", "player_4", "player_5")
TRAJECTORY_DIM = 22  # Columns 0-1 ball; 2-11 five offensive players; 12-21 five defenders.

NUM_PLAYERS_PER_TEAM = 5
BASKET_FT = (5.25, 25.0)  # Centre of the rim.
TIME_STEP_S = 1.0 / FRAME_RATE_HZ

# Validation tolerance: real tracking data strays slightly outside the lines.
COURT_TOLERANCE_FT = 3.0

# View (feet -> keypoint coordinates); see the module docstring.
VIEW_CENTRE_FT = (23.5, 25.0)
VIEW_HALF_SPAN_FT = 26.0

# Colours (RGB). Players are saturated hues far from the tan floor and from each other; the
# ball is orange (darker and more saturated than the floor) and drawn smaller, on top.
FLOOR_COLOUR = (214, 174, 122)
PAINT_COLOUR = (196, 150, 104)
OUT_OF_BOUNDS_COLOUR = (120, 90, 62)
LINE_COLOUR = (250, 250, 245)
PLAYER_COLOURS = (
    (220, 20, 20),  # red
    (20, 60, 230),  # blue
    (0, 150, 40),  # green
    (200, 0, 210),  # magenta
    (0, 205, 225),  # cyan
)
BALL_COLOUR = (255, 125, 0)  # orange
OBJECT_COLOURS = (BALL_COLOUR,) + PLAYER_COLOURS  # In OBJECT_NAMES order.
# Radii in pixels at 64x64; scaled linearly with image_size.
PLAYER_RADIUS_PX_AT_64 = 2.75
BALL_RADIUS_PX_AT_64 = 2.0
LINE_HALF_WIDTH_PX_AT_64 = 0.5


def _check_image_size(image_size):
  if (isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer))
      or image_size < 8):
    raise ValueError(f"image_size must be an integer >= 8, got {image_size!r}.")


def _check_trajectory_array(trajectories_feet, caller):
  array = np.asarray(trajectories_feet)
  if array.ndim < 1 or array.shape[-1] != TRAJECTORY_DIM:
    raise ValueError(
        f"{caller}: trajectories_feet must have shape (..., {TRAJECTORY_DIM}), got {array.shape}.")
  if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
    raise ValueError(f"{caller}: trajectories_feet must be real numbers, got dtype {array.dtype}.")
  if not np.all(np.isfinite(array)):
    raise ValueError(f"{caller}: trajectories_feet contains NaN or infinite values.")
  return array


def feet_to_keypoints(x_feet, y_feet):
  """Court feet -> keypoint coordinates (x right, y up, [-1, 1] spans the 52 ft view)."""
  x_keypoint = (np.asarray(x_feet, np.float64) - VIEW_CENTRE_FT[0]) / VIEW_HALF_SPAN_FT
  y_keypoint = (np.asarray(y_feet, np.float64) - VIEW_CENTRE_FT[1]) / VIEW_HALF_SPAN_FT
  return x_keypoint, y_keypoint


def object_positions(trajectories_feet, image_size=64):
  """Positions of the rendered objects in keypoint coordinates.

  Args:
    trajectories_feet: [..., 22] feet (SportVU layout).
    image_size: frame size; the mapping (module docstring) does not depend on it.

  Returns:
    [..., 6, 2] float32 (x, y): ball first, then offensive players 1-5; exactly the dot centres
    drawn by render_frames.
  """
  _check_image_size(image_size)
  array = _check_trajectory_array(trajectories_feet, "object_positions")
  feet = array[..., :2 * NUM_OBJECTS].astype(np.float64).reshape(
      array.shape[:-1] + (NUM_OBJECTS, 2))
  x_keypoint, y_keypoint = feet_to_keypoints(feet[..., 0], feet[..., 1])
  return np.stack([x_keypoint, y_keypoint], axis=-1).astype(np.float32)


def _pixel_grid_feet(image_size):
  """Feet coordinates of the pixel centres: x [W] (per column), y [H] (per row)."""
  grid = np.linspace(-1.0, 1.0, image_size)
  x_feet = VIEW_CENTRE_FT[0] + VIEW_HALF_SPAN_FT * grid
  y_feet = VIEW_CENTRE_FT[1] - VIEW_HALF_SPAN_FT * grid  # Row 0 is the top (y = +1).
  return x_feet, y_feet


def _segment_distance(x, y, start, end):
  """Distance (ft) from points (x, y) [H, W] to the segment start-end."""
  start = np.asarray(start, np.float64)
  direction = np.asarray(end, np.float64) - start
  t = ((x - start[0]) * direction[0] + (y - start[1]) * direction[1]) / np.dot(direction, direction)
  t = np.clip(t, 0.0, 1.0)
  return np.hypot(x - start[0] - t * direction[0], y - start[1] - t * direction[1])


def _box_signed_distance(x, y, x_range, y_range):
  """Signed distance (ft, negative inside) to an axis-aligned box; [H, W]."""
  dx = np.maximum(x_range[0] - x, x - x_range[1])
  dy = np.maximum(y_range[0] - y, y - y_range[1])
  outside = np.hypot(np.maximum(dx, 0.0), np.maximum(dy, 0.0))
  return outside + np.minimum(np.maximum(dx, dy), 0.0)


@functools.lru_cache(maxsize=8)
def _empty_court_float(image_size):
  """Court background [H, W, 3] float32 (0-255), read-only; cached per image size."""
  x_1d, y_1d = _pixel_grid_feet(image_size)
  x, y = np.meshgrid(x_1d, y_1d)  # [H, W]
  pixels_per_foot = (image_size - 1) / (2.0 * VIEW_HALF_SPAN_FT)
  half_width_px = LINE_HALF_WIDTH_PX_AT_64 * image_size / 64.0

  def fill(image, colour, coverage):
    image += coverage[..., None] * (np.asarray(colour, np.float64) - image)

  def inside_coverage(signed_distance_feet):
    return np.clip(0.5 - signed_distance_feet * pixels_per_foot, 0.0, 1.0)

  image = np.empty((image_size, image_size, 3))
  image[:] = OUT_OF_BOUNDS_COLOUR
  fill(image, FLOOR_COLOUR,
       inside_coverage(_box_signed_distance(x, y, (0.0, COURT_LENGTH_FT), (0.0, COURT_WIDTH_FT))))
  fill(image, PAINT_COLOUR, inside_coverage(_box_signed_distance(x, y, (0.0, 19.0), (17.0, 33.0))))

  # Line distances (ft): boundary, key, free-throw semicircle, three-point line, backboard, rim.
  basket_x, basket_y = BASKET_FT
  line_distance = [
      np.abs(_box_signed_distance(x, y, (0.0, COURT_LENGTH_FT), (0.0, COURT_WIDTH_FT))),
      _segment_distance(x, y, (0.0, 17.0), (19.0, 17.0)),
      _segment_distance(x, y, (0.0, 33.0), (19.0, 33.0)),
      _segment_distance(x, y, (19.0, 17.0), (19.0, 33.0)),
      _segment_distance(x, y, (4.0, 22.0), (4.0, 28.0)),  # Backboard.
  ]
  free_throw_radius = np.hypot(x - 19.0, y - 25.0)
  line_distance.append(np.where(x >= 19.0, np.abs(free_throw_radius - 6.0),
                                np.hypot(x - 19.0, np.abs(y - 25.0) - 6.0)))
  # NBA three-point line: straight corners 22 ft from the basket, arc of radius 23.75 ft.
  arc_radius, corner_offset = 23.75, 22.0
  corner_end_x = basket_x + np.sqrt(arc_radius**2 - corner_offset**2)
  line_distance.append(_segment_distance(x, y, (0.0, basket_y - corner_offset),
                                         (corner_end_x, basket_y - corner_offset)))
  line_distance.append(_segment_distance(x, y, (0.0, basket_y + corner_offset),
                                         (corner_end_x, basket_y + corner_offset)))
  from_basket = np.hypot(x - basket_x, y - basket_y)
  on_arc = (x >= corner_end_x) & (np.abs(y - basket_y) <= corner_offset)
  line_distance.append(np.where(on_arc, np.abs(from_basket - arc_radius), np.inf))
  rim_radius = max(0.75, 1.0 / pixels_per_foot)  # At least 1 px, so it stays visible.
  line_distance.append(np.abs(from_basket - rim_radius))
  distance_px = np.min(np.stack(line_distance), axis=0) * pixels_per_foot
  fill(image, LINE_COLOUR, np.clip(half_width_px + 0.5 - distance_px, 0.0, 1.0))
  image = image.astype(np.float32)
  image.setflags(write=False)
  return image


def render_empty_court(image_size=64):
  """The court without objects: uint8 [H, W, 3] (H = W = image_size)."""
  _check_image_size(image_size)
  return np.rint(_empty_court_float(int(image_size))).astype(np.uint8)


def object_radii_px(image_size=64):
  """Dot radii in pixels [6] (ball first, then players), scaled with image_size."""
  scale = image_size / 64.0
  return np.array([BALL_RADIUS_PX_AT_64] + [PLAYER_RADIUS_PX_AT_64] * 5) * scale


def render_frames(trajectories_feet, image_size=64, frames_per_chunk=256):
  """Draws the ball and the 5 offensive players as anti-aliased dots on the court.

  Each dot's coverage of a pixel is clip(radius + 0.5 - distance_to_centre_px, 0, 1); players
  are drawn first (player 1 .. 5) and the ball last, on top. Defenders are not drawn.

  Args:
    trajectories_feet: [N, T, 22] or [T, 22] feet.
    image_size: H = W of the frames.
    frames_per_chunk: frames blended at once (bounds the temporary buffers).

  Returns:
    uint8 [N, T, H, W, 3] or [T, H, W, 3].
  """
  _check_image_size(image_size)
  array = _check_trajectory_array(trajectories_feet, "render_frames")
  if array.ndim not in (2, 3):
    raise ValueError(
        f"render_frames: trajectories_feet must be (N, T, {TRAJECTORY_DIM}) or "
        f"(T, {TRAJECTORY_DIM}), got shape {array.shape}.")
  image_size = int(image_size)
  positions = object_positions(array, image_size).astype(np.float64).reshape(-1, NUM_OBJECTS, 2)
  columns = (positions[..., 0] + 1.0) * (image_size - 1) / 2.0  # [F, 6]
  rows = (1.0 - positions[..., 1]) * (image_size - 1) / 2.0
  radii = object_radii_px(image_size)
  # A dot covers only pixels within radius + 1 of its nearest pixel, so a square patch of
  # patch_size^2 pixels around that pixel holds all of it.
  half_patch = int(np.ceil(radii.max() + 1.0))
  patch_size = 2 * half_patch + 1  # <= image_size for every image_size >= 8.
  num_frames = positions.shape[0]
  output = np.empty((num_frames, image_size, image_size, 3), dtype=np.uint8)
  output[:] = render_empty_court(image_size)
  # windows[f, top, left] is the patch output[f, top:top + P, left:left + P] as P rows of P * 3
  # bytes (a view): long contiguous rows make numpy's gathers and scatters fast.
  num_positions = image_size - patch_size + 1
  frame_stride, row_stride, column_stride, _ = output.strides
  windows = np.lib.stride_tricks.as_strided(
      output, (num_frames, num_positions, num_positions, patch_size, patch_size * 3),
      (frame_stride, row_stride, column_stride, row_stride, 1), writeable=True)
  # Patch corners: around the nearest pixel, moved inside the frame where that patch would
  # cross the border. The moved patch still holds every covered pixel of the frame, and the
  # pixels it adds have zero coverage, so they are written back unchanged.
  lefts = np.clip(np.floor(columns + 0.5) - half_patch, 0, num_positions - 1).astype(np.int64)
  tops = np.clip(np.floor(rows + 0.5) - half_patch, 0, num_positions - 1).astype(np.int64)
  offsets = np.arange(patch_size)
  colour_rows = np.tile(np.asarray(OBJECT_COLOURS, np.float32), (1, patch_size * patch_size))
  chunk = max(1, min(frames_per_chunk, num_frames))
  # Buffers reused across chunks and objects; flat patches keep numpy's inner loops long.
  squared_distance = np.empty((chunk, patch_size, patch_size))
  coverage = np.empty((chunk, patch_size * patch_size * 3), np.float32)
  patch = np.empty_like(coverage)
  blended = np.empty_like(coverage)
  draw_order = list(range(1, NUM_OBJECTS)) + [0]  # Players, then the ball on top.
  for start in range(0, num_frames, chunk):
    stop = min(start + chunk, num_frames)
    count = stop - start
    frame_index = np.arange(start, stop)
    for obj in draw_order:
      top, left = tops[start:stop, obj], lefts[start:stop, obj]
      dx = (left - columns[start:stop, obj])[:, None] + offsets  # [F, P] pixel - centre
      dy = (top - rows[start:stop, obj])[:, None] + offsets
      distance = squared_distance[:count]
      np.add(np.square(dx)[:, None, :], np.square(dy)[:, :, None], out=distance)
      np.sqrt(distance, out=distance)
      np.subtract(radii[obj] + 0.5, distance, out=distance)
      np.clip(distance, 0.0, 1.0, out=distance)
      alpha = coverage[:count]
      np.copyto(alpha, np.repeat(distance.reshape(count, -1), 3, axis=1))  # Per channel.
      background, result = patch[:count], blended[:count]
      np.copyto(background, windows[frame_index, top, left].reshape(count, -1))
      # background + alpha * (colour - background), rounded: the same float32 operations in
      # the same order as the reference formula, so frames are reproducible bit for bit.
      np.subtract(colour_rows[obj], background, out=result)
      result *= alpha
      result += background
      np.rint(result, out=result)
      windows[frame_index, top, left] = result.astype(np.uint8).reshape(
          count, patch_size, patch_size * 3)
  return output.reshape(array.shape[:-1] + (image_size, image_size, 3))


def validate_trajectories(trajectories, source):
  """Checks a trajectory array in the SportVU layout and returns it as float32.

  Expects shape (N, T, 22) with T >= 2, finite real values, x columns (even) within
  [-3, 50] ft and y columns (odd) within [-3, 53] ft (the half court plus a 3 ft tolerance).

  Raises:
    ValueError naming `source`, what was expected and what was found.
  """
  array = np.asarray(trajectories)
  if array.ndim != 3 or array.shape[-1] != TRAJECTORY_DIM or array.shape[1] < 2:
    raise ValueError(
        f"{source}: expected trajectories of shape (N, T, {TRAJECTORY_DIM}) with T >= 2 "
        f"(ball, 5 offensive and 5 defensive players, feet), found shape {array.shape}.")
  if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
    raise ValueError(f"{source}: expected real numbers (feet), found dtype {array.dtype}.")
  array = array.astype(np.float32)
  finite = np.isfinite(array)
  if not np.all(finite):
    first = tuple(int(i) for i in np.argwhere(~finite)[0])
    raise ValueError(
        f"{source}: expected finite values, found {np.count_nonzero(~finite)} NaN/inf values "
        f"(first at index (sequence, frame, column) = {first}).")
  tolerance = COURT_TOLERANCE_FT
  for axis_name, columns, limit in (("x", slice(0, None, 2), COURT_LENGTH_FT),
                                    ("y", slice(1, None, 2), COURT_WIDTH_FT)):
    values = array[..., columns]
    low, high = float(values.min()), float(values.max())
    if low < -tolerance or high > limit + tolerance:
      raise ValueError(
          f"{source}: expected {axis_name} positions on the half court, within "
          f"[{-tolerance}, {limit + tolerance}] ft, found range [{low:.3f}, {high:.3f}] ft "
          f"(are the values in feet and on the left half court?).")
  return array


def load_trajectories(path):
  """Loads real SportVU-layout trajectories: .npy (N, T, 22) or .npz with one array (or key
  'trajectories'), in feet. Returns validated float32 [N, T, 22].

  Raises:
    FileNotFoundError if the path does not exist; ValueError (naming the path) for an
    unsupported suffix, an unreadable file, an ambiguous .npz or invalid contents.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Basketball trajectories file not found: {path}")
  suffix = os.path.splitext(path)[1].lower()
  if suffix not in (".npy", ".npz"):
    raise ValueError(f"{path}: expected a .npy or .npz file of (N, T, {TRAJECTORY_DIM}) "
                     f"trajectories, found suffix {suffix!r}.")
  try:
    loaded = np.load(path, allow_pickle=False)
  except Exception as error:  # Corrupt file or pickled objects: report which file.
    raise ValueError(f"{path}: could not read as {suffix} ({error}).") from error
  if suffix == ".npz":
    with loaded:
      keys = list(loaded.keys())
      if "trajectories" in keys:
        array = loaded["trajectories"]
      elif len(keys) == 1:
        array = loaded[keys[0]]
      else:
        raise ValueError(f"{path}: expected one array or a key 'trajectories', found keys {keys}.")
  else:
    array = loaded
  return validate_trajectories(array, source=path)
