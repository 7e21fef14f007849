"""Reading one file of the user's own videos: decoding, crop and resize, shot cuts (no TensorFlow).

Supported files: videos (.mp4, .avi, .mov, .mkv, .webm, .m4v; decoded with PyAV, `av`),
animated .gif files (imageio) and .npz files with `image` uint8 [T, H, W, 3] and optionally
`true_object_pos` float [T, N, 2]. `read_sequence_file` returns a file's frames, optionally cut
to a box of the source frame first (`--crop`), centre-cropped to a square and resized, with its
positions mapped through the same crops and resize; `video_folder` (the module docstring there
has the details) builds a folder's cache from it, and `human36m` decodes Human3.6M videos with
`iter_video_frames`.

Shot cuts (`detect_cuts`, `cut_scores`): every decoded frame, before frame_step (a cut is a
property of the source video, and subsampling would let motion between kept frames hide it),
becomes an 8 x 8 greyscale thumbnail: the block means (0-255) of the region that is stored (the
crop box's central square; `frame_thumbnails`, `grey_thumbnail`, `read_sequence_file(...,
cut_thumbnails=True)`). d[t] is the mean absolute difference between the thumbnails of frames
t - 1 and t. Within a shot d changes smoothly (it is large all through a fast pan and small in
a still scene); at a cut it jumps for one frame. The score of the boundary before frame t is

    d[t] / (max(median of the CUT_WINDOW d before t, median of the CUT_WINDOW d after t)
            + CUT_NOISE_LEVEL)

(a side that is missing at either end of the video is left out). Where d is no larger than
around it (a slow or fast pan, a brightness drift, steady motion) the score is below 1, however
large d is, and CUT_NOISE_LEVEL (grey levels) keeps the flicker of a still scene from scoring
high.
Frame t starts a new shot when its score exceeds the threshold (DEFAULT_CUT_THRESHOLD = 2: on
the clips of scripts/fetch_footage.py the five cuts of bikes.mp4 score 2.75 to 13.4, the
largest score elsewhere is 0.97 in bikes.mp4 and 0.55 in vtest.avi, 0.89 in its crop
336,96,384,384; the weakest cut follows a fast close-up of a passing taxi). Taking the larger
median of the two sides means that a camera that starts to pan (d low, then high for good) does
not count as a cut. Gradual transitions (dissolves, fades) are not detected, and a single flash
frame counts as two cuts.

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

# Shot-cut detection (module docstring): thumbnail side, the frames on either side whose median
# differences are the reference, the allowance for noise (grey levels) and the default
# threshold on the score.
CUT_THUMBNAIL_SIZE = 8
# Changes whenever the detector does, so that caches keyed by it are rebuilt (video_folder).
CUT_DETECTOR_VERSION = 1
CUT_WINDOW = 3
CUT_NOISE_LEVEL = 3.0
DEFAULT_CUT_THRESHOLD = 2.0
# ITU-R BT.601 luma weights (greyscale thumbnails).
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# Frames converted to thumbnails at a time (bounds the float copy of a long video).
_THUMBNAIL_CHUNK = 256

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


def _decode_video(path, frame_step, counts, keep_frames_before_error, thumbnails=None,
                  box=None):
  """`iter_video_frames`, filling `counts` with "announced", "estimated", "decoded" and "error".

  A decoding error after some frames raises ValueError, or with keep_frames_before_error ends
  the frames and is stored in counts["error"]. With a list `thumbnails`, the `grey_thumbnail`
  (of the crop `box`) of every decoded frame, kept or not, is appended to it.
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
        if thumbnails is not None:
          thumbnails.append(grey_thumbnail(frame.to_ndarray(format="gray"), box))
        if index % frame_step == 0:
          yield frame.to_ndarray(format="rgb24")
        index += 1
    except av.error.FFmpegError as error:
      if not keep_frames_before_error or index == 0:
        raise ValueError(f"{path}: decoding failed after {index} frames ({error}).") from error
      counts["error"] = str(error)
    finally:
      counts["decoded"] = index


def _read_gif(path):
  try:
    frames = iio.imread(path, index=None, mode="RGB")
  except Exception as error:  # imageio raises various types for broken files.
    raise ValueError(f"{path}: cannot read as a GIF ({type(error).__name__}: {error}).") from error
  frames = np.asarray(frames)
  if frames.ndim == 3:  # A single-frame GIF.
    frames = frames[None]
  return frames


def _read_npz(path):
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
    positions = positions.astype(np.float32)
  return images, positions


# ----------------------------------------------------------------------------------------
# Crop and resize
# ----------------------------------------------------------------------------------------


def centre_crop_box(height: int, width: int) -> tuple[int, int, int]:
  """(top, left, side) of the central square of an H x W frame."""
  side = min(height, width)
  return (height - side) // 2, (width - side) // 2, side


def describe_box(box) -> str:
  """A crop box as the `--crop` flag's value: LEFT,TOP,WIDTH,HEIGHT."""
  return ",".join(str(int(value)) for value in box)


def check_crop_box(box, height: int, width: int):
  """Raises ValueError unless the box (left, top, width, height) lies inside an H x W frame."""
  left, top, box_width, box_height = box
  if left + box_width > width or top + box_height > height:
    raise ValueError(f"--crop {describe_box(box)} reaches beyond the {width}x{height} frame "
                     f"(LEFT + WIDTH must be <= {width} and TOP + HEIGHT <= {height}).")


def stored_region(height: int, width: int, box=None) -> tuple[int, int, int]:
  """(top, left, side) in an H x W frame of the square `crop_resize_frame` keeps: the central
  square of `box` (or of the frame)."""
  if box is None:
    return centre_crop_box(height, width)
  check_crop_box(box, height, width)
  top, left, side = centre_crop_box(box[3], box[2])
  return box[1] + top, box[0] + left, side


def crop_resize_frame(frame: np.ndarray, image_size: int, box=None) -> np.ndarray:
  """Cuts uint8 [H, W, 3] to `box`, centre-crops it to a square and resizes it to [S, S, 3].

  Args:
    frame: uint8 [H, W, 3].
    image_size: S.
    box: None (the whole frame) or (left, top, width, height) in pixels of the frame.

  Raises:
    ValueError if the box does not lie inside the frame.
  """
  top, left, side = stored_region(frame.shape[0], frame.shape[1], box)
  square = frame[top:top + side, left:left + side]
  if side == image_size:
    return np.ascontiguousarray(square)
  return np.asarray(Image.fromarray(np.ascontiguousarray(square)).resize(
      (image_size, image_size), Image.Resampling.BILINEAR))


def crop_resize_positions(positions, height: int, width: int, image_size: int,
                          box=None) -> np.ndarray:
  """Maps (x, y) keypoint coordinates of an H x W frame through `crop_resize_frame`.

  Pixel centres follow the project convention (column j at x = -1 + 2 j / (W - 1), row i at
  y = 1 - 2 i / (H - 1)); the box keeps pixel (row, column) as (row - top, column - left); the
  resize maps output pixel j to input position (j + 0.5) * side / S - 0.5 (in crop pixels), as
  PIL does.

  Args:
    positions: float [..., 2] (x, y) in the full frame.
    height, width: H and W of the full frame.
    image_size: S of the output frame.
    box: None or (left, top, width, height), as for `crop_resize_frame`.

  Returns:
    float32 [..., 2] (x, y) in the S x S output frame.
  """
  positions = np.asarray(positions, np.float64)
  column = (positions[..., 0] + 1.0) * (width - 1) / 2.0
  row = (1.0 - positions[..., 1]) * (height - 1) / 2.0
  if box is not None:
    column, row = column - box[0], row - box[1]
    width, height = box[2], box[3]
  top, left, side = centre_crop_box(height, width)
  scale = image_size / side
  out_column = (column - left + 0.5) * scale - 0.5
  out_row = (row - top + 0.5) * scale - 0.5
  return np.stack([-1.0 + 2.0 * out_column / (image_size - 1),
                   1.0 - 2.0 * out_row / (image_size - 1)], axis=-1).astype(np.float32)


# ----------------------------------------------------------------------------------------
# Shot cuts
# ----------------------------------------------------------------------------------------


def _block_edges(length: int) -> np.ndarray:
  return (np.arange(CUT_THUMBNAIL_SIZE) * length) // CUT_THUMBNAIL_SIZE


def _block_means(grey: np.ndarray) -> np.ndarray:
  """float32 [..., n, n] block means of [..., L, L] (n = CUT_THUMBNAIL_SIZE <= L)."""
  length = grey.shape[-1]
  edges = _block_edges(length)
  sizes = np.diff(np.append(edges, length)).astype(np.float32)
  sums = np.add.reduceat(np.add.reduceat(grey.astype(np.float32), edges, axis=-2), edges,
                         axis=-1)
  return sums / (sizes[:, None] * sizes[None, :])


def grey_thumbnail(grey: np.ndarray, box=None) -> np.ndarray:
  """The cut-detection thumbnail of one greyscale frame.

  Args:
    grey: uint8 [H, W], 0-255.
    box: None or the crop box (left, top, width, height), as for `crop_resize_frame`.

  Returns:
    float32 [n, n] (n = CUT_THUMBNAIL_SIZE): block means of the stored region.
  """
  top, left, side = stored_region(grey.shape[0], grey.shape[1], box)
  return _block_means(grey[top:top + side, left:left + side])


def frame_thumbnails(frames: np.ndarray, box=None) -> np.ndarray:
  """The cut-detection thumbnails of RGB frames (luma, ITU-R BT.601 weights).

  Args:
    frames: uint8 [T, H, W, 3].
    box: None or the crop box, as for `crop_resize_frame`.

  Returns:
    float32 [T, n, n] (n = CUT_THUMBNAIL_SIZE): block means of the stored region, 0-255.
  """
  top, left, side = stored_region(frames.shape[1], frames.shape[2], box)
  thumbnails = np.empty((frames.shape[0], CUT_THUMBNAIL_SIZE, CUT_THUMBNAIL_SIZE), np.float32)
  for start in range(0, frames.shape[0], _THUMBNAIL_CHUNK):
    chunk = frames[start:start + _THUMBNAIL_CHUNK, top:top + side, left:left + side]
    thumbnails[start:start + _THUMBNAIL_CHUNK] = _block_means(chunk.astype(np.float32) @ _LUMA)
  return thumbnails


def _side_medians(values: np.ndarray, window: int) -> np.ndarray:
  """[len(values), 2]: medians of the `window` values before and after each one (NaN where a
  side is empty)."""
  padded = np.concatenate([np.full(window, np.nan), values, np.full(window, np.nan)])
  windows = np.lib.stride_tricks.sliding_window_view(padded, window)
  before = windows[:len(values)]  # values[i - window:i]
  after = windows[window + 1:window + 1 + len(values)]  # values[i + 1:i + 1 + window]
  medians = np.full((len(values), 2), np.nan)
  for side, stack in enumerate((before, after)):
    present = ~np.all(np.isnan(stack), axis=1)
    medians[present, side] = np.nanmedian(stack[present], axis=1)
  return medians


def cut_scores(thumbnails: np.ndarray) -> np.ndarray:
  """The shot-cut score of every boundary between consecutive frames (module docstring).

  Args:
    thumbnails: float [T, n, n], consecutive frames of one video (`frame_thumbnails`).

  Returns:
    float64 [max(T - 1, 0)]: element t - 1 scores the boundary before frame t.
  """
  if thumbnails.shape[0] < 2:
    return np.zeros(0)
  differences = np.abs(np.diff(thumbnails.astype(np.float64), axis=0)).mean(axis=(1, 2))
  medians = _side_medians(differences, CUT_WINDOW)
  # The larger side (fmax ignores a missing side; 0 when both are missing, a 2-frame video).
  reference = np.nan_to_num(np.fmax(medians[:, 0], medians[:, 1]), nan=0.0)
  return differences / (reference + CUT_NOISE_LEVEL)


def detect_cuts(thumbnails: np.ndarray, threshold: float = DEFAULT_CUT_THRESHOLD) -> list[int]:
  """The frames that start a new shot (module docstring).

  Args:
    thumbnails: float [T, n, n], consecutive frames of one video (`frame_thumbnails`; all
      decoded frames, before any frame_step).
    threshold: a boundary whose score exceeds it is a cut; 0 turns detection off.

  Returns:
    Sorted frame indices t (1 <= t < T): frame t is the first of a new shot.
  """
  if not threshold:
    return []
  return [int(index) + 1 for index in np.flatnonzero(cut_scores(thumbnails) > threshold)]


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
    cut_thumbnails: float32 [T_source, n, n] the cut-detection thumbnails of every frame of the
      file before frame_step (`grey_thumbnail`), if asked for; else None.
  """

  images: np.ndarray
  positions: Optional[np.ndarray]
  frames_announced: Optional[int] = None
  announced_is_estimate: bool = False
  frames_decoded: Optional[int] = None
  decode_error: Optional[str] = None
  cut_thumbnails: Optional[np.ndarray] = None

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


def read_sequence_file(path, image_size: int = 64, frame_step: int = 1, crop=None,
                       cut_thumbnails: bool = False) -> DecodedFile:
  """Reads one file and returns its frames cropped and resized.

  A truncated video (`DecodedFile.is_truncated`) is returned with the frames that decoded; the
  caller decides whether to use it.

  Args:
    path: a video, .gif or .npz file.
    image_size: S of the output frames.
    frame_step: keep frames 0, frame_step, 2 frame_step, ...
    crop: None, or a box (left, top, width, height) in source pixels cut out of every frame
      before the centre crop and resize (`crop_resize_frame`).
    cut_thumbnails: also return the cut-detection thumbnails of every frame (before
      frame_step; `DecodedFile.cut_thumbnails`).

  Returns:
    A `DecodedFile`: frames uint8 [T, S, S, 3], positions float32 [T, N, 2] or None, and for
    videos the announced and decoded frame counts.

  Raises:
    ValueError naming the file for unsupported extensions, unreadable files, bad contents or
    a crop box that does not fit the frames.
  """
  global _decode_count
  check_frame_step(frame_step)
  path = os.fspath(path)
  extension = os.path.splitext(path)[1].lower()
  _decode_count += 1
  try:
    return _read_sequence_file(path, extension, image_size, frame_step, crop, cut_thumbnails)
  except ValueError as error:
    message = str(error)
    if not message.startswith(f"{path}: "):
      message = f"{path}: {message}"
    raise ValueError(message) from error


def _read_sequence_file(path, extension, image_size, frame_step, crop, cut_thumbnails):
  if extension in VIDEO_EXTENSIONS:
    counts, thumbnails = {}, ([] if cut_thumbnails else None)
    frames = [crop_resize_frame(frame, image_size, crop)
              for frame in _decode_video(path, frame_step, counts, keep_frames_before_error=True,
                                         thumbnails=thumbnails, box=crop)]
    images = (np.stack(frames) if frames
              else np.zeros((0, image_size, image_size, 3), np.uint8))
    if thumbnails is not None:
      thumbnails = (np.stack(thumbnails) if thumbnails else
                    np.zeros((0, CUT_THUMBNAIL_SIZE, CUT_THUMBNAIL_SIZE), np.float32))
    return DecodedFile(images, None, counts["announced"], counts["estimated"],
                       counts["decoded"], counts["error"], thumbnails)
  if extension in GIF_EXTENSIONS:
    raw = _read_gif(path)
    positions = None
  elif extension in ARRAY_EXTENSIONS:
    raw, positions = _read_npz(path)
  else:
    raise ValueError(f"{path}: unsupported extension {extension!r}; expected one of "
                     f"{', '.join(SUPPORTED_EXTENSIONS)}.")
  height, width = raw.shape[1], raw.shape[2]
  if crop is not None:
    check_crop_box(crop, height, width)
  thumbnails = frame_thumbnails(raw, crop) if cut_thumbnails else None
  raw = raw[::frame_step]
  if crop is None and height == image_size and width == image_size:
    images = np.ascontiguousarray(raw)
  else:
    images = (np.stack([crop_resize_frame(frame, image_size, crop) for frame in raw]) if len(raw)
              else np.zeros((0, image_size, image_size, 3), np.uint8))
  if positions is not None:
    positions = positions[::frame_step]
    if crop is not None or height != image_size or width != image_size:
      positions = crop_resize_positions(positions, height, width, image_size, crop)
  return DecodedFile(images, positions, cut_thumbnails=thumbnails)
