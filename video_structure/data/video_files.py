"""Reading one file of the user's own videos: decoding, centre crop and resize (no TensorFlow).

Supported files: videos (.mp4, .avi, .mov, .mkv, .webm, .m4v; decoded with PyAV, `av`),
animated .gif files (imageio) and .npz files with `image` uint8 [T, H, W, 3] and optionally
`true_object_pos` float [T, N, 2]. `read_sequence_file` returns a file's frames centre-cropped
to a square and resized, with its positions mapped through the same crop and resize;
`video_folder` (the module docstring there has the details) builds a folder's cache from it,
and `human36m` decodes Human3.6M videos with `iter_video_frames`.
"""

from __future__ import annotations

import os
from typing import Iterator

import imageio.v3 as iio
import numpy as np
from PIL import Image

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
GIF_EXTENSIONS = (".gif",)
ARRAY_EXTENSIONS = (".npz",)
SUPPORTED_EXTENSIONS = VIDEO_EXTENSIONS + GIF_EXTENSIONS + ARRAY_EXTENSIONS

# Number of files decoded by this process (read by the tests to check that the cache is used).
_decode_count = 0


def decoded_file_count() -> int:
  """How many files this process has decoded so far (cache hits decode nothing)."""
  return _decode_count


# ----------------------------------------------------------------------------------------
# Decoding single files
# ----------------------------------------------------------------------------------------


def _import_av():
  """PyAV, imported when a video file is read (only video files need it)."""
  try:
    import av  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise ImportError(
        "Reading video files needs PyAV: pip install av==18.1.0 (see requirements.txt).") from error
  return av


def check_frame_step(frame_step):
  """Raises ValueError unless frame_step is a positive int."""
  if (isinstance(frame_step, bool) or not isinstance(frame_step, (int, np.integer))
      or frame_step < 1):
    raise ValueError(f"frame_step must be a positive int, got {frame_step!r}.")


def iter_video_frames(path, frame_step: int = 1) -> Iterator[np.ndarray]:
  """Decodes a video file (PyAV) and yields frames 0, frame_step, 2 frame_step, ...

  Only the kept frames are converted to RGB, so a large frame_step is cheap.

  Args:
    path: a video file PyAV/FFmpeg can read (.mp4, .avi, ...).
    frame_step: keep every frame_step-th decoded frame, starting with the first.

  Yields:
    uint8 [H, W, 3] RGB frames.

  Raises:
    ValueError naming the file if it cannot be opened, has no video stream or fails to decode.
  """
  check_frame_step(frame_step)
  av = _import_av()
  path = os.fspath(path)
  try:
    container = av.open(path)
  except (av.error.FFmpegError, OSError) as error:
    raise ValueError(f"{path}: cannot open as a video ({error}).") from error
  with container:
    if not container.streams.video:
      raise ValueError(f"{path}: the file has no video stream.")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    index = 0
    try:
      for frame in container.decode(stream):
        if index % frame_step == 0:
          yield frame.to_ndarray(format="rgb24")
        index += 1
    except av.error.FFmpegError as error:
      raise ValueError(f"{path}: decoding failed after {index} frames ({error}).") from error


def _read_gif(path, frame_step):
  try:
    frames = iio.imread(path, index=None, mode="RGB")
  except Exception as error:  # imageio raises various types for broken files.
    raise ValueError(f"{path}: cannot read as a GIF ({type(error).__name__}: {error}).") from error
  frames = np.asarray(frames)
  if frames.ndim == 3:  # A single-frame GIF.
    frames = frames[None]
  return frames[::frame_step]


def _read_npz(path, frame_step):
  """Reads `image` uint8 [T, H, W, 3] and optional `true_object_pos` [T, N, 2] from a .npz."""
  try:
    with np.load(path, allow_pickle=False) as archive:
      keys = list(archive.keys())
      images = archive["image"] if "image" in keys else None
      positions = archive["true_object_pos"] if "true_object_pos" in keys else None
  except Exception as error:  # zipfile / format / pickle errors of corrupt files.
    raise ValueError(f"{path}: cannot read as .npz ({type(error).__name__}: {error}).") from error
  if images is None:
    raise ValueError(f"{path}: expected an array 'image' uint8 [T, H, W, 3], found keys {keys}.")
  if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"{path}: 'image' must be uint8 [T, H, W, 3], found {images.dtype} "
                     f"{images.shape}.")
  if positions is not None:
    if (not np.issubdtype(positions.dtype, np.floating) or positions.ndim != 3
        or positions.shape[-1] != 2 or positions.shape[0] != images.shape[0]):
      raise ValueError(
          f"{path}: 'true_object_pos' must be float [T, N, 2] with T = {images.shape[0]} "
          f"(the number of frames in 'image'), found {positions.dtype} {positions.shape}.")
    if not np.all(np.isfinite(positions)):
      raise ValueError(f"{path}: 'true_object_pos' contains NaN or infinite values.")
    positions = positions[::frame_step].astype(np.float32)
  return images[::frame_step], positions


# ----------------------------------------------------------------------------------------
# Crop and resize
# ----------------------------------------------------------------------------------------


def centre_crop_box(height: int, width: int) -> tuple[int, int, int]:
  """(top, left, side) of the central square of an H x W frame."""
  side = min(height, width)
  return (height - side) // 2, (width - side) // 2, side


def crop_resize_frame(frame: np.ndarray, image_size: int) -> np.ndarray:
  """Centre-crops uint8 [H, W, 3] to a square and resizes it to [S, S, 3] (S = image_size)."""
  top, left, side = centre_crop_box(frame.shape[0], frame.shape[1])
  square = frame[top:top + side, left:left + side]
  if side == image_size:
    return np.ascontiguousarray(square)
  return np.asarray(Image.fromarray(np.ascontiguousarray(square)).resize(
      (image_size, image_size), Image.Resampling.BILINEAR))


def crop_resize_positions(positions, height: int, width: int, image_size: int) -> np.ndarray:
  """Maps (x, y) keypoint coordinates of an H x W frame through `crop_resize_frame`.

  Pixel centres follow the project convention (column j at x = -1 + 2 j / (W - 1), row i at
  y = 1 - 2 i / (H - 1)); the resize maps output pixel j to input position
  (j + 0.5) * side / S - 0.5 (in crop pixels), as PIL does.

  Args:
    positions: float [..., 2] (x, y) in the full frame.
    height, width: H and W of the full frame.
    image_size: S of the output frame.

  Returns:
    float32 [..., 2] (x, y) in the S x S output frame.
  """
  positions = np.asarray(positions, np.float64)
  top, left, side = centre_crop_box(height, width)
  column = (positions[..., 0] + 1.0) * (width - 1) / 2.0 - left
  row = (1.0 - positions[..., 1]) * (height - 1) / 2.0 - top
  scale = image_size / side
  out_column = (column + 0.5) * scale - 0.5
  out_row = (row + 0.5) * scale - 0.5
  return np.stack([-1.0 + 2.0 * out_column / (image_size - 1),
                   1.0 - 2.0 * out_row / (image_size - 1)], axis=-1).astype(np.float32)


def read_sequence_file(path, image_size: int = 64, frame_step: int = 1):
  """Reads one file and returns its frames cropped and resized.

  Args:
    path: a video, .gif or .npz file.
    image_size: S of the output frames.
    frame_step: keep frames 0, frame_step, 2 frame_step, ...

  Returns:
    (frames uint8 [T, S, S, 3], positions float32 [T, N, 2] or None).

  Raises:
    ValueError naming the file for unsupported extensions, unreadable files or bad contents.
  """
  global _decode_count
  path = os.fspath(path)
  extension = os.path.splitext(path)[1].lower()
  _decode_count += 1
  if extension in VIDEO_EXTENSIONS:
    frames = [crop_resize_frame(frame, image_size) for frame in iter_video_frames(path, frame_step)]
    images = (np.stack(frames) if frames
              else np.zeros((0, image_size, image_size, 3), np.uint8))
    return images, None
  if extension in GIF_EXTENSIONS:
    raw = _read_gif(path, frame_step)
    positions = None
  elif extension in ARRAY_EXTENSIONS:
    raw, positions = _read_npz(path, frame_step)
  else:
    raise ValueError(f"{path}: unsupported extension {extension!r}; expected one of "
                     f"{', '.join(SUPPORTED_EXTENSIONS)}.")
  height, width = raw.shape[1], raw.shape[2]
  if height == image_size and width == image_size:
    images = np.ascontiguousarray(raw)
  else:
    images = (np.stack([crop_resize_frame(frame, image_size) for frame in raw]) if len(raw)
              else np.zeros((0, image_size, image_size, 3), np.uint8))
    if positions is not None:
      positions = crop_resize_positions(positions, height, width, image_size)
  return images, positions
