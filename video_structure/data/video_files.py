"""Reading one file of the user's own videos: decoding, centre crop and resize (no TensorFlow).

Supported files: videos (.mp4, .avi, .mov, .mkv, .webm, .m4v; decoded with PyAV, `av`),
animated .gif files (imageio) and .npz files with `image` uint8 [T, H, W, 3] and optionally
`true_object_pos` float [T, N, 2]. `read_sequence_file` returns a file's frames centre-cropped
to a square and resized, with its positions mapped through the same crop and resize;
`video_folder` (the module docstring there has the details) builds a folder's cache from it,
and `human36m` decodes Human3.6M videos with `iter_video_frames`.

Truncated videos: `read_sequence_file` also reports how many frames a video's container
announces (its frame count; for containers without one, such as .mkv / .webm, about duration x
frame rate) and how many decoded, and whether decoding stopped at an error. A video is
truncated when decoding fails after some frames, or when fewer frames decode than announced by
more than TRUNCATION_TOLERANCE_FRAMES (5% as well for an estimated count): a cut download or
an interrupted recording. `video_folder` decides what to do with such a file.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator, Optional

import imageio.v3 as iio
import numpy as np
from PIL import Image

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
GIF_EXTENSIONS = (".gif",)
ARRAY_EXTENSIONS = (".npz",)
SUPPORTED_EXTENSIONS = VIDEO_EXTENSIONS + GIF_EXTENSIONS + ARRAY_EXTENSIONS

# Decoded frames may fall this far short of the announced count before a video counts as
# truncated: edit lists and codec delay can hide a frame or two of a complete file.
TRUNCATION_TOLERANCE_FRAMES = 2
# Extra margin (a fraction of the count) when the count is estimated from the duration.
ESTIMATE_TOLERANCE_FRACTION = 0.05

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
  yield from _decode_video(path, frame_step, {}, keep_frames_before_error=False)


def _announced_frames(container, stream) -> tuple[Optional[int], bool]:
  """(frames the container announces or None, whether that number is estimated)."""
  if stream.frames > 0:
    return int(stream.frames), False
  # No frame count (e.g. Matroska): duration x frame rate. The container's duration only when
  # the video is its only stream, since an audio track may last longer.
  if stream.duration is not None and stream.time_base is not None:
    seconds = float(stream.duration * stream.time_base)
  elif container.duration is not None and len(container.streams) == 1:
    seconds = container.duration / 1e6
  else:
    return None, False
  if not stream.average_rate or seconds <= 0:
    return None, False
  return int(round(seconds * float(stream.average_rate))), True


def _decode_video(path, frame_step, counts, keep_frames_before_error):
  """`iter_video_frames`, filling `counts` with "announced", "estimated", "decoded" and "error".

  A decoding error after some frames raises ValueError, or with keep_frames_before_error ends
  the frames and is stored in counts["error"].
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
    counts["announced"], counts["estimated"] = _announced_frames(container, stream)
    counts["error"] = None
    index = 0
    try:
      for frame in container.decode(stream):
        if index % frame_step == 0:
          yield frame.to_ndarray(format="rgb24")
        index += 1
    except av.error.FFmpegError as error:
      if not keep_frames_before_error or index == 0:
        raise ValueError(f"{path}: decoding failed after {index} frames ({error}).") from error
      counts["error"] = str(error)
    finally:
      counts["decoded"] = index


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


@dataclasses.dataclass(frozen=True)
class DecodedFile:
  """One file read by `read_sequence_file`.

  Attributes:
    images: uint8 [T, S, S, 3] frames after frame_step, cropped and resized.
    positions: float32 [T, N, 2] positions mapped like the frames, or None.
    frames_announced: frames the video container announces (before frame_step), or None
      (not a video, or the container does not say).
    announced_is_estimate: frames_announced is duration x frame rate, not a stored count.
    frames_decoded: frames decoded before frame_step (videos; None otherwise).
    decode_error: the decoder's message if decoding stopped at an error, else None.
  """

  images: np.ndarray
  positions: Optional[np.ndarray]
  frames_announced: Optional[int] = None
  announced_is_estimate: bool = False
  frames_decoded: Optional[int] = None
  decode_error: Optional[str] = None

  @property
  def is_truncated(self) -> bool:
    """Decoding stopped at an error, or fewer frames decoded than announced (see the module
    docstring for the tolerance)."""
    if self.decode_error is not None:
      return True
    if self.frames_announced is None or self.frames_decoded is None:
      return False
    tolerance = TRUNCATION_TOLERANCE_FRAMES
    if self.announced_is_estimate:
      tolerance += int(ESTIMATE_TOLERANCE_FRACTION * self.frames_announced)
    return self.frames_decoded < self.frames_announced - tolerance

  def truncation(self) -> str:
    """A truncated video in a few words: both counts and the decoder's error."""
    announced = ("an unknown number of" if self.frames_announced is None else
                 f"{'~' if self.announced_is_estimate else ''}{self.frames_announced}")
    error = "" if self.decode_error is None else f", then a decoding error ({self.decode_error})"
    return f"{self.frames_decoded} of {announced} frames decoded{error}"


def read_sequence_file(path, image_size: int = 64, frame_step: int = 1) -> DecodedFile:
  """Reads one file and returns its frames cropped and resized.

  A truncated video (`DecodedFile.is_truncated`) is returned with the frames that decoded; the
  caller decides whether to use it.

  Args:
    path: a video, .gif or .npz file.
    image_size: S of the output frames.
    frame_step: keep frames 0, frame_step, 2 frame_step, ...

  Returns:
    A `DecodedFile`: frames uint8 [T, S, S, 3], positions float32 [T, N, 2] or None, and for
    videos the announced and decoded frame counts.

  Raises:
    ValueError naming the file for unsupported extensions, unreadable files or bad contents.
  """
  global _decode_count
  path = os.fspath(path)
  extension = os.path.splitext(path)[1].lower()
  _decode_count += 1
  if extension in VIDEO_EXTENSIONS:
    counts = {}
    frames = [crop_resize_frame(frame, image_size)
              for frame in _decode_video(path, frame_step, counts, keep_frames_before_error=True)]
    images = (np.stack(frames) if frames
              else np.zeros((0, image_size, image_size, 3), np.uint8))
    return DecodedFile(images, None, counts["announced"], counts["estimated"],
                       counts["decoded"], counts["error"])
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
  return DecodedFile(images, positions)
