"""Drawing keypoints on frames, prediction figures, and saving PNG / GIF files.

Numpy + Pillow; no TensorFlow (the matplotlib plots are in `figures.py`). Frames are uint8
(T, H, W, 3) / (H, W, 3) RGB; the model's float frames are converted with
`model.ops.frames_to_uint8`.

Keypoints follow the project convention: (x, y, mu) with x in [-1, 1] from the left to the
right pixel column and y in [-1, 1] from the bottom (-1) to the top (+1) pixel row;
pixel column j has x = -1 + 2 j / (W - 1), pixel row i has y = 1 - 2 i / (H - 1).
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image

from video_structure import io_utils


def _make_palette(num_colors: int = 64) -> np.ndarray:
  """(num_colors, 3) uint8 palette: hues by golden-ratio steps so neighbouring keypoint
  indices get very different colours; saturation/value alternate over 4 levels so that the
  colours stay distinct even where hues come close."""
  golden = (math.sqrt(5.0) - 1) / 2
  levels = [(1.0, 1.0), (0.6, 1.0), (1.0, 0.7), (0.5, 0.8)]
  colors = []
  for index in range(num_colors):
    hue = (index * golden) % 1.0
    saturation, value = levels[(index // 16) % len(levels)]
    red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
    colors.append([round(red * 255), round(green * 255), round(blue * 255)])
  return np.array(colors, dtype=np.uint8)


# Keypoint k is drawn in KEYPOINT_COLORS[k % len(KEYPOINT_COLORS)].
KEYPOINT_COLORS: np.ndarray = _make_palette(64)
KEYPOINT_COLORS.setflags(write=False)

# Paper Figure 2 convention: green border = observed frame, red border = predicted frame.
OBSERVED_BORDER_COLOR = (0, 200, 0)
PREDICTED_BORDER_COLOR = (230, 0, 0)
GAP_COLOR = (255, 255, 255)


# ---------------------------------------------------------------------------
# Validation helpers


def check_frames(frames, name: str) -> np.ndarray:
  """Returns `frames` as a uint8 array of RGB frames (..., H, W, 3); ValueError naming `name`
  otherwise."""
  array = np.asarray(frames)
  if array.dtype != np.uint8:
    raise ValueError(f"{name} must be uint8 (model.ops.frames_to_uint8 converts the model's "
                     f"float frames), got dtype {array.dtype}.")
  if array.ndim < 3 or array.shape[-1] != 3:
    raise ValueError(f"{name} must have RGB frames (..., H, W, 3), got shape {array.shape}.")
  if array.shape[-2] < 1 or array.shape[-3] < 1:
    raise ValueError(f"{name} must have H >= 1 and W >= 1, got shape {array.shape}.")
  return array


def _check_keypoints(keypoints, name: str) -> np.ndarray:
  try:
    array = np.asarray(keypoints, dtype=np.float64)
  except (TypeError, ValueError) as error:
    raise ValueError(f"{name} must be a numeric array: {error}") from None
  if array.ndim < 2 or array.shape[-1] != 3:
    raise ValueError(f"{name} must have shape (..., K, 3) with (x, y, mu) last, got shape "
                     f"{array.shape}.")
  if not np.all(np.isfinite(array)):
    raise ValueError(f"{name} contains non-finite values (NaN or inf).")
  return array


def _check_positive_int(value, name: str) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f"{name} must be a positive integer, got {value!r}.")
  return int(value)


def _image_height_width(image_size) -> tuple[int, int]:
  if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
    height = width = int(image_size)
  else:
    try:
      height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
      raise ValueError(f"image_size must be an int or an (H, W) pair, got "
                       f"{image_size!r}.") from None
  if height < 2 or width < 2:
    raise ValueError(f"image_size must be at least 2 pixels in each dimension, got {image_size!r}.")
  return height, width


# ---------------------------------------------------------------------------
# Coordinates


def keypoints_to_pixels(keypoints, image_size) -> np.ndarray:
  """Converts keypoint coordinates to pixel coordinates (inverse of the convention).

  Args:
    keypoints: (..., K, 3) (or (..., K, 2)) array with (x, y) first.
    image_size: int (square image) or (H, W).

  Returns:
    (..., K, 2) float64 (column, row): column = (x + 1) / 2 * (W - 1),
    row = (1 - y) / 2 * (H - 1). x=-1, y=1 -> (0, 0); x=1, y=-1 -> (W-1, H-1).
  """
  array = np.asarray(keypoints, dtype=np.float64)
  if array.ndim < 2 or array.shape[-1] not in (2, 3):
    raise ValueError(f"keypoints must have shape (..., K, 3) or (..., K, 2), got shape "
                     f"{array.shape}.")
  height, width = _image_height_width(image_size)
  column = (array[..., 0] + 1.0) / 2.0 * (width - 1)
  row = (1.0 - array[..., 1]) / 2.0 * (height - 1)
  return np.stack([column, row], axis=-1)


# ---------------------------------------------------------------------------
# Drawing


def _blend_disk(image: np.ndarray, center_col: float, center_row: float, radius: float, color,
                alpha: float):
  """Blends a filled disk into image (H, W, 3) float64 in place. Pixels whose centre is
  within radius of (center_col, center_row) are covered; off-image parts are skipped."""
  height, width = image.shape[:2]
  row_start = max(0, int(np.floor(center_row - radius)))
  row_stop = min(height, int(np.ceil(center_row + radius)) + 1)
  col_start = max(0, int(np.floor(center_col - radius)))
  col_stop = min(width, int(np.ceil(center_col + radius)) + 1)
  if row_start >= row_stop or col_start >= col_stop:
    return
  rows = np.arange(row_start, row_stop)[:, None]
  cols = np.arange(col_start, col_stop)[None, :]
  inside = (rows - center_row) ** 2 + (cols - center_col) ** 2 <= radius ** 2
  region = image[row_start:row_stop, col_start:col_stop]
  region[inside] = (1.0 - alpha) * region[inside] + alpha * np.asarray(color, dtype=np.float64)


def _draw_line(image: np.ndarray, start, end, color, alpha: float):
  """Draws a 1-pixel line from start to end ((column, row) floats) into image in place."""
  length = float(np.hypot(end[0] - start[0], end[1] - start[1]))
  num_points = max(2, int(np.ceil(length * 2)) + 1)  # two samples per pixel: no gaps
  steps = np.linspace(0.0, 1.0, num_points)
  cols = np.round(start[0] + steps * (end[0] - start[0])).astype(np.int64)
  rows = np.round(start[1] + steps * (end[1] - start[1])).astype(np.int64)
  height, width = image.shape[:2]
  valid = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
  pixels = np.unique(np.stack([rows[valid], cols[valid]], axis=1), axis=0)
  if len(pixels) == 0:
    return
  rows, cols = pixels[:, 0], pixels[:, 1]
  image[rows, cols] = ((1.0 - alpha) * image[rows, cols]
                       + alpha * np.asarray(color, dtype=np.float64))


def marker_radius(scale: int) -> float:
  """Radius in output pixels of the marker of a keypoint with mu >= 1 at upscale `scale`."""
  return max(1.5, 0.75 * scale)


def draw_keypoints(frames, keypoints, scale: int = 4, mu_threshold: float = 0.2,
                   trails: int | None = None) -> np.ndarray:
  """Upscales frames and draws one coloured disk per active keypoint.

  Frames are upscaled by pixel repetition. Original pixel (row i, column j) becomes the
  scale x scale block starting at (i * scale, j * scale); a keypoint at pixel position
  (c, r) (see keypoints_to_pixels) is drawn centred on (c * scale + (scale - 1) / 2,
  r * scale + (scale - 1) / 2), i.e. the centre of the corresponding block.

  A keypoint is drawn iff mu >= mu_threshold. Its disk has radius marker_radius(scale)
  and colour KEYPOINT_COLORS[k % 64] blended with opacity min(mu, 1) (mu >= 1: exact colour).
  Parts outside the image are not drawn.

  Args:
    frames: uint8 (T, H, W, 3) or (H, W, 3).
    keypoints: (T, K, 3) or (K, 3) (x, y, mu); leading dims must match frames.
    scale: positive integer upscale factor.
    mu_threshold: minimum mu for a keypoint to be drawn.
    trails: None / 0 for no trails, or n >= 1: on frame t, also draw a 1-pixel line
      through the keypoint's positions at steps max(0, t - n) .. t (paper Fig. 2); a
      segment is drawn when mu >= mu_threshold at both of its ends. Only for (T, K, 3).

  Returns:
    uint8 (T, H*scale, W*scale, 3) or (H*scale, W*scale, 3), matching the input rank.
  """
  frames = check_frames(frames, "frames")
  keypoints = _check_keypoints(keypoints, "keypoints")
  scale = _check_positive_int(scale, "scale")
  single = frames.ndim == 3
  if frames.ndim not in (3, 4):
    raise ValueError(f"frames must have shape (T, H, W, 3) or (H, W, 3), got {frames.shape}.")
  if keypoints.ndim != frames.ndim - 1:
    expected = "(K, 3)" if single else f"(T={frames.shape[0]}, K, 3)"
    raise ValueError(f"keypoints must have shape {expected} for frames of shape {frames.shape}, "
                     f"got {keypoints.shape}.")
  if single:
    frames = frames[None]
    keypoints = keypoints[None]
  if keypoints.shape[0] != frames.shape[0]:
    raise ValueError(
        f"keypoints has {keypoints.shape[0]} time steps but frames has {frames.shape[0]} "
        f"(keypoints {keypoints.shape}, frames {frames.shape})."
    )
  if trails is not None:
    if isinstance(trails, bool) or not isinstance(trails, (int, np.integer)) or trails < 0:
      raise ValueError(f"trails must be None or a non-negative integer number of past steps, "
                       f"got {trails!r}.")
    if single and trails > 0:
      raise ValueError("trails needs keypoints with a time axis (T, K, 3); got a single frame "
                       "(K, 3).")
  trails = int(trails or 0)
  mu_threshold = float(mu_threshold)

  num_frames, height, width = frames.shape[:3]
  upscaled = np.repeat(np.repeat(frames, scale, axis=1), scale, axis=2).astype(np.float64)
  pixels = keypoints_to_pixels(keypoints, (height, width)) * scale + (scale - 1) / 2.0  # (T, K, 2)
  active = keypoints[..., 2] >= mu_threshold  # (T, K)
  opacity = np.clip(keypoints[..., 2], 0.0, 1.0)
  radius = marker_radius(scale)
  num_colors = len(KEYPOINT_COLORS)

  for t in range(num_frames):
    image = upscaled[t]
    for k in range(keypoints.shape[1]):
      color = KEYPOINT_COLORS[k % num_colors]
      for past in range(max(0, t - trails), t):
        if active[past, k] and active[past + 1, k]:
          _draw_line(image, pixels[past, k], pixels[past + 1, k], color, 1.0)
    for k in range(keypoints.shape[1]):
      if active[t, k]:
        _blend_disk(image, pixels[t, k, 0], pixels[t, k, 1], radius,
                    KEYPOINT_COLORS[k % num_colors], opacity[t, k])

  result = np.clip(np.round(upscaled), 0, 255).astype(np.uint8)
  return result[0] if single else result


def figure_shape(num_rows: int, num_columns: int, height: int, width: int, scale: int,
                 border: int, gap: int):
  """Shape of prediction_figure's output:
  (num_rows * (H*scale + 2*border) + (num_rows - 1) * gap,
   num_columns * (W*scale + 2*border) + (num_columns - 1) * gap, 3)."""
  tile_height = height * scale + 2 * border
  tile_width = width * scale + 2 * border
  return (
      num_rows * tile_height + (num_rows - 1) * gap,
      num_columns * tile_width + (num_columns - 1) * gap,
      3,
  )


def prediction_figure(
    true_frames,
    predicted_frames,
    keypoints=None,
    predicted_keypoints=None,
    num_observed: int = 0,
    scale: int = 2,
    border: int = 2,
    gap: int = 2,
    mu_threshold: float = 0.2,
) -> np.ndarray:
  """Grid of ground truth and predicted frames (paper Figure 2 convention).

  Row 0: ground-truth frames (with `keypoints` drawn if given). Rows 1..S: one row per
  sample of predicted frames (with that sample's `predicted_keypoints` drawn if given).
  Column t is time step t. Every tile is the frame upscaled by `scale` surrounded by a
  border of `border` pixels: OBSERVED_BORDER_COLOR (green) for t < num_observed,
  PREDICTED_BORDER_COLOR (red) otherwise. Tiles are separated by `gap` pixels of
  GAP_COLOR (white); there is no outer margin. Output shape (R = S + 1 rows, T columns):
    (R * (H*scale + 2*border) + (R - 1) * gap, T * (W*scale + 2*border) + (T - 1) * gap, 3)
  (see figure_shape).

  Args:
    true_frames: uint8 (T, H, W, 3).
    predicted_frames: uint8 (S, T, H, W, 3) or (T, H, W, 3) (S = 1).
    keypoints: None or (T, K, 3) keypoints for the ground-truth row.
    predicted_keypoints: None or (S, T, K, 3) (or (T, K, 3) when S = 1).
    num_observed: number of observed (conditioning) frames, 0 <= num_observed <= T.
    scale, border, gap: layout in pixels (scale >= 1, border >= 0, gap >= 0).
    mu_threshold: passed to draw_keypoints.

  Returns:
    uint8 (rows, columns, 3) image.
  """
  true_frames = check_frames(true_frames, "true_frames")
  if true_frames.ndim != 4:
    raise ValueError(f"true_frames must have shape (T, H, W, 3), got {true_frames.shape}.")
  predicted_frames = check_frames(predicted_frames, "predicted_frames")
  if predicted_frames.ndim == 4:
    predicted_frames = predicted_frames[None]
  if predicted_frames.ndim != 5 or predicted_frames.shape[1:] != true_frames.shape:
    raise ValueError(
        f"predicted_frames must have shape (S, T, H, W, 3) or (T, H, W, 3) matching true_frames "
        f"{true_frames.shape}, got {np.shape(predicted_frames)}."
    )
  num_samples, num_steps, height, width = predicted_frames.shape[:4]
  scale = _check_positive_int(scale, "scale")
  for value, name in ((border, "border"), (gap, "gap")):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
      raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")
  if (isinstance(num_observed, bool) or not isinstance(num_observed, (int, np.integer))
      or not 0 <= num_observed <= num_steps):
    raise ValueError(f"num_observed must be an integer in [0, T={num_steps}], got "
                     f"{num_observed!r}.")
  if keypoints is not None:
    keypoints = _check_keypoints(keypoints, "keypoints")
    if keypoints.ndim != 3 or keypoints.shape[0] != num_steps:
      raise ValueError(f"keypoints must have shape (T={num_steps}, K, 3), got {keypoints.shape}.")
  if predicted_keypoints is not None:
    predicted_keypoints = _check_keypoints(predicted_keypoints, "predicted_keypoints")
    if predicted_keypoints.ndim == 3:
      predicted_keypoints = predicted_keypoints[None]
    if predicted_keypoints.ndim != 4 or predicted_keypoints.shape[:2] != (num_samples, num_steps):
      raise ValueError(
          f"predicted_keypoints must have shape (S={num_samples}, T={num_steps}, K, 3), "
          f"got {predicted_keypoints.shape}."
      )

  def render_row(frames, row_keypoints):
    if row_keypoints is None:
      return np.repeat(np.repeat(frames, scale, axis=1), scale, axis=2)
    return draw_keypoints(frames, row_keypoints, scale=scale, mu_threshold=mu_threshold)

  rows = [render_row(true_frames, keypoints)]
  for sample in range(num_samples):
    rows.append(render_row(predicted_frames[sample], None if predicted_keypoints is None
                           else predicted_keypoints[sample]))

  shape = figure_shape(len(rows), num_steps, height, width, scale, border, gap)
  figure = np.empty(shape, dtype=np.uint8)
  figure[:] = GAP_COLOR
  tile_height = height * scale + 2 * border
  tile_width = width * scale + 2 * border
  for row_index, row_frames in enumerate(rows):
    top = row_index * (tile_height + gap)
    for t in range(num_steps):
      left = t * (tile_width + gap)
      color = OBSERVED_BORDER_COLOR if t < num_observed else PREDICTED_BORDER_COLOR
      figure[top:top + tile_height, left:left + tile_width] = color
      figure[top + border:top + border + height * scale,
             left + border:left + border + width * scale] = row_frames[t]
  return figure


# ---------------------------------------------------------------------------
# Saving


def save_png(path, image) -> None:
  """Writes a uint8 (H, W, 3) image as PNG (atomically, creating parent directories)."""
  image = check_frames(image, "image")
  if image.ndim != 3:
    raise ValueError(f"image must have shape (H, W, 3), got {image.shape}.")
  pil_image = Image.fromarray(np.ascontiguousarray(image))
  io_utils.atomic_save(path, lambda temporary: pil_image.save(temporary, format="PNG"))


def save_gif(path, frames, fps: float = 6.25, loop: int = 0) -> None:
  """Writes uint8 (T, H, W, 3) frames as an animated GIF (atomically, creating parent dirs).

  Each frame lasts round(1000 / fps) ms; GIF stores durations in 10 ms units, so it is
  rounded to a multiple of 10 ms (fps=6.25 -> 160 ms exactly). Colours are quantised to a
  256-colour palette per frame with Pillow's fast octree (4-6x faster than its default median
  cut). Note: Pillow merges consecutive identical frames into one frame with the summed
  duration (playback is unchanged, the stored frame count is smaller).

  Args:
    path: output file path.
    frames: uint8 (T, H, W, 3), T >= 1.
    fps: frames per second (> 0).
    loop: number of loops, 0 = forever.
  """
  frames = check_frames(frames, "frames")
  if frames.ndim != 4 or frames.shape[0] < 1:
    raise ValueError(f"frames must have shape (T, H, W, 3) with T >= 1, got {frames.shape}.")
  if (isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating))
      or not fps > 0 or not np.isfinite(fps)):
    raise ValueError(f"fps must be a positive number, got {fps!r}.")
  if isinstance(loop, bool) or not isinstance(loop, (int, np.integer)) or loop < 0:
    raise ValueError(f"loop must be a non-negative integer (0 = forever), got {loop!r}.")
  duration_ms = max(10, int(round(1000.0 / fps / 10.0)) * 10)
  images = [Image.fromarray(np.ascontiguousarray(frame)).quantize(
      256, method=Image.Quantize.FASTOCTREE) for frame in frames]

  def write(temporary):
    images[0].save(
        temporary,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=duration_ms,
        loop=int(loop),
    )

  io_utils.atomic_save(path, write)


# ---------------------------------------------------------------------------
# Side-by-side animations


def side_by_side_frames(rows, keypoints=None, num_observed: int = 0, scale: int = 4,
                        border: int = 3, trails: int = 4,
                        mu_threshold: float = 0.2) -> np.ndarray:
  """Frames of an animation showing several videos next to each other (e.g. truth, closest
  and furthest sample), each upscaled with keypoints drawn, framed by a border that is
  OBSERVED_BORDER_COLOR for t < num_observed and PREDICTED_BORDER_COLOR after.

  Args:
    rows: list of R uint8 (T, H, W, 3) videos of equal shape.
    keypoints: None or a list of R (T, K, 3) keypoint arrays (drawn with trails).
    num_observed, scale, border, trails, mu_threshold: layout and drawing.

  Returns:
    uint8 (T, H*scale + 2*border, R * (W*scale + 2*border), 3).
  """
  if not isinstance(rows, (list, tuple)) or not rows:
    raise ValueError("rows must be a non-empty list of (T, H, W, 3) uint8 videos.")
  videos = [check_frames(video, f"rows[{index}]") for index, video in enumerate(rows)]
  if any(video.ndim != 4 or video.shape != videos[0].shape for video in videos):
    raise ValueError(f"rows must all have the same shape (T, H, W, 3), got "
                     f"{[v.shape for v in videos]}.")
  if keypoints is not None and len(keypoints) != len(videos):
    raise ValueError(f"keypoints must have one entry per row ({len(videos)}), got "
                     f"{len(keypoints)}.")
  scale = _check_positive_int(scale, "scale")
  if isinstance(border, bool) or not isinstance(border, (int, np.integer)) or border < 0:
    raise ValueError(f"border must be a non-negative integer, got {border!r}.")
  drawn = []
  for index, video in enumerate(videos):
    if keypoints is None:
      drawn.append(np.repeat(np.repeat(video, scale, axis=1), scale, axis=2))
    else:
      drawn.append(draw_keypoints(video, keypoints[index], scale=scale,
                                  mu_threshold=mu_threshold, trails=trails))
  frames = []
  for t in range(videos[0].shape[0]):
    color = OBSERVED_BORDER_COLOR if t < num_observed else PREDICTED_BORDER_COLOR
    tiles = []
    for video in drawn:
      tile = np.empty((video.shape[1] + 2 * border, video.shape[2] + 2 * border, 3), np.uint8)
      tile[:] = color
      tile[border:border + video.shape[1], border:border + video.shape[2]] = video[t]
      tiles.append(tile)
    frames.append(np.concatenate(tiles, axis=1))
  return np.stack(frames)
