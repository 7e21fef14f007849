"""Frechet Video Distance (Unterthiner et al. 2018), as the public reference implementation
computes it:

1. Frames (values 0..255) are resized to 224x224 with TF1's legacy bilinear resize (no
   half-pixel centres, corners not aligned), then scaled to [-1, 1] by `2 x / 255 - 1`.
2. Each clip is embedded by I3D (Kinetics-400): the 400 logits averaged over time.
3. The two sets of embeddings are compared by the Frechet distance between Gaussians fitted to
   them, in float64: `|m1 - m2|^2 + tr(S1) + tr(S2) - 2 tr(sqrt(sqrt(S1) S2 sqrt(S1)))`, with
   `N - 1` covariances and SVD-based symmetric matrix square roots.

Usage:
  model = i3d.load_i3d()                        # weights from the cache; never downloads
  distance = fvd(real_uint8, predicted_uint8, model=model)
"""

import numpy as np
import tensorflow as tf

from video_structure.evaluation import i3d

MIN_FRAMES = i3d.MIN_FRAMES
I3D_SIZE = i3d.INPUT_SIZE
# Singular values below this are left as they are (not square-rooted), as in the reference.
SQRT_EPSILON = 1e-10


# Legacy bilinear resize -----------------------------------------------------------------------


def legacy_bilinear_matrix(in_size, out_size):
  """Interpolation matrix of TF1 `resize_bilinear` (align_corners=False,
  half_pixel_centers=False) along one axis.

  Output index `i` samples source coordinate `s = i * in_size / out_size` (float32, as TF):
  `(1 - f) * x[floor(s)] + f * x[min(floor(s) + 1, in_size - 1)]` with `f = s - floor(s)`.

  Returns:
    float32 `[out_size, in_size]`; row i holds the weights of output i (rows sum to 1).
  """
  if in_size < 1 or out_size < 1:
    raise ValueError(f"Resize sizes must be positive; got in_size={in_size}, "
                     f"out_size={out_size}.")
  scale = np.float32(in_size) / np.float32(out_size)
  source = np.arange(out_size, dtype=np.float32) * scale
  lower = np.floor(source)
  fraction = (source - lower).astype(np.float64)
  lower = lower.astype(np.int64)
  upper = np.minimum(lower + 1, in_size - 1)
  matrix = np.zeros((out_size, in_size), np.float64)
  rows = np.arange(out_size)
  np.add.at(matrix, (rows, lower), 1.0 - fraction)
  np.add.at(matrix, (rows, upper), fraction)
  return matrix.astype(np.float32)


def legacy_bilinear_resize(images, height, width):
  """TF1 `resize_bilinear` without half-pixel centres, as two matrix products.

  Args:
    images: `[..., H, W, C]` float tensor.
    height, width: output size.

  Returns:
    float32 `[..., height, width, C]`.
  """
  images = tf.convert_to_tensor(images, tf.float32)
  in_height, in_width = images.shape[-3], images.shape[-2]
  if in_height is None or in_width is None:
    raise ValueError("legacy_bilinear_resize needs static input height and width; got shape "
                     f"{images.shape}.")
  rows = tf.constant(legacy_bilinear_matrix(in_height, height))  # [height, H]
  cols = tf.constant(legacy_bilinear_matrix(in_width, width))  # [width, W]
  resized = tf.einsum("oh,...hwc->...owc", rows, images)
  return tf.einsum("pw,...owc->...opc", cols, resized)


# Embeddings -----------------------------------------------------------------------------------


def _check_videos(videos, value_range, argument):
  """Validates `[B, T, H, W, 3]` videos and returns (numpy array, (low, high))."""
  videos = np.asarray(videos)
  if videos.ndim != 5 or videos.shape[-1] != 3:
    raise ValueError(f"{argument} must have shape [B, T, H, W, 3]; got {videos.shape}.")
  if videos.shape[0] < 1:
    raise ValueError(f"{argument} holds no videos (shape {videos.shape}).")
  if videos.shape[1] < MIN_FRAMES:
    raise ValueError(
        f"{argument} has {videos.shape[1]} frames per clip; FVD's I3D needs at least "
        f"{MIN_FRAMES} (with fewer its last temporal pooling is empty).")
  if videos.dtype == np.uint8:
    if value_range is not None and tuple(value_range) != (0, 255):
      raise ValueError(f"{argument} is uint8, so value_range must be None or (0, 255); got "
                       f"{value_range}.")
    return videos, (0.0, 255.0)
  if videos.dtype.kind != "f":
    raise ValueError(f"{argument} must be uint8 (0..255) or float; got dtype {videos.dtype}.")
  if value_range is None:
    raise ValueError(
        f"{argument} is {videos.dtype}: pass value_range=(low, high) to say what the values "
        f"mean, e.g. (0, 255), (0, 1), or (-0.5, 0.5) for the model's frames.")
  low, high = float(value_range[0]), float(value_range[1])
  if not high > low:
    raise ValueError(f"value_range must be (low, high) with high > low; got {value_range}.")
  tolerance = 1e-5 * (high - low)
  actual_low, actual_high = float(np.min(videos)), float(np.max(videos))
  if not (actual_low >= low - tolerance and actual_high <= high + tolerance):
    raise ValueError(f"{argument} has values in [{actual_low}, {actual_high}], outside "
                     f"value_range ({low}, {high}).")
  return videos, (low, high)


def preprocess_for_i3d(videos_0_255):
  """`[B, T, H, W, 3]` float values in 0..255 -> `[B, T, 224, 224, 3]` float32 in [-1, 1]."""
  resized = legacy_bilinear_resize(videos_0_255, I3D_SIZE, I3D_SIZE)
  return 2.0 * resized / 255.0 - 1.0


def fvd_embeddings(videos, model, batch_size=8, value_range=None, progress=None):
  """I3D embeddings of videos.

  Args:
    videos: `[B, T, H, W, 3]`, uint8 in 0..255, or float with `value_range` given.
      T >= 9.
    model: `i3d.load_i3d()`.
    batch_size: clips per I3D call.
    value_range: `(low, high)` of float videos (required for floats), e.g. (-0.5, 0.5).
    progress: optional callable `progress(clips_done, clips_total)` called after each batch.

  Returns:
    float32 `[B, 400]`: logits averaged over time.
  """
  videos, (low, high) = _check_videos(videos, value_range, "videos")
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1; got {batch_size}.")

  @tf.function(input_signature=[tf.TensorSpec([None, None, *videos.shape[2:]], tf.float32)],
               reduce_retracing=True, autograph=False)
  def embed(batch_0_255):
    return model(preprocess_for_i3d(batch_0_255), training=False)

  total = videos.shape[0]
  embeddings = []
  for start in range(0, total, batch_size):
    batch = videos[start:start + batch_size].astype(np.float32)
    if (low, high) != (0.0, 255.0):
      batch = (batch - np.float32(low)) * np.float32(255.0 / (high - low))
    embeddings.append(embed(tf.constant(batch)).numpy())
    if progress is not None:
      progress(min(start + batch_size, total), total)
  return np.concatenate(embeddings, axis=0)


# Frechet distance -----------------------------------------------------------------------------


def symmetric_matrix_sqrt(matrix, epsilon=SQRT_EPSILON):
  """Square root of a symmetric PSD matrix via SVD: `U diag(sqrt(s)) V^T`, where singular
  values below `epsilon` are kept as they are (float64)."""
  u, s, vh = np.linalg.svd(np.asarray(matrix, np.float64))
  s = np.where(s < epsilon, s, np.sqrt(s))
  return (u * s) @ vh


def frechet_distance(embeddings1, embeddings2):
  """Frechet distance between Gaussians fitted to two sets of embeddings (float64).

  Args:
    embeddings1: `[N1, D]`, N1 >= 2.
    embeddings2: `[N2, D]`, N2 >= 2.

  Returns:
    float: `|m1 - m2|^2 + tr(S1) + tr(S2) - 2 tr(sqrt(sqrt(S1) S2 sqrt(S1)))` with sample
    covariances (denominator N - 1).
  """
  stats = []
  for argument, embeddings in (("embeddings1", embeddings1), ("embeddings2", embeddings2)):
    embeddings = np.asarray(embeddings, np.float64)
    if embeddings.ndim != 2 or embeddings.shape[0] < 2:
      raise ValueError(f"{argument} must have shape [N, D] with N >= 2 (the covariance divides "
                       f"by N - 1); got {embeddings.shape}.")
    if not np.all(np.isfinite(embeddings)):
      raise ValueError(f"{argument} contains non-finite values.")
    mean = embeddings.mean(axis=0)
    centred = embeddings - mean
    stats.append((mean, centred.T @ centred / (embeddings.shape[0] - 1)))
  (mean1, cov1), (mean2, cov2) = stats
  if mean1.shape != mean2.shape:
    raise ValueError(f"embeddings1 and embeddings2 have different dimensions: {mean1.shape[0]} "
                     f"vs {mean2.shape[0]}.")
  sqrt_cov1 = symmetric_matrix_sqrt(cov1)
  trace_sqrt_product = np.trace(symmetric_matrix_sqrt(sqrt_cov1 @ cov2 @ sqrt_cov1))
  mean_term = np.sum((mean1 - mean2) ** 2)
  return float(mean_term + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt_product)


def fvd(videos1, videos2, model=None, batch_size=8, value_range=None, weights_path=None,
        cache_dir=None, progress=None):
  """Frechet Video Distance between two sets of videos.

  Args:
    videos1, videos2: `[B, T, H, W, 3]`, uint8 0..255 or float with `value_range`; B >= 2,
      T >= 9.
    model: a loaded I3D (`i3d.load_i3d()`); default: load it from `weights_path` / the cache.
    batch_size, value_range, progress: as in `fvd_embeddings` (progress counts both sets).
    weights_path, cache_dir: where to find the I3D weights when `model` is None.

  Returns:
    float FVD.
  """
  for argument, videos in (("videos1", videos1), ("videos2", videos2)):
    _check_videos(videos, value_range, argument)
    if len(videos) < 2:
      raise ValueError(f"{argument} must hold at least 2 videos (the covariance divides by "
                       f"N - 1); got {len(videos)}.")
  if model is None:
    model = i3d.load_i3d(weights_path=weights_path, cache_dir=cache_dir)
  total = len(videos1) + len(videos2)
  first = None if progress is None else (lambda done, _: progress(done, total))
  second = None if progress is None else (lambda done, _: progress(len(videos1) + done, total))
  embeddings1 = fvd_embeddings(videos1, model, batch_size, value_range, first)
  embeddings2 = fvd_embeddings(videos2, model, batch_size, value_range, second)
  return frechet_distance(embeddings1, embeddings2)
