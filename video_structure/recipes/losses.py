"""Loss terms of the CPU recipe (not in the paper): moving pixels, foreground attention and
foreground colours. Pure functions; shapes in each docstring. `cpu.CpuRecipe` weights them.
"""

import tensorflow as tf

from video_structure.model.ops import HEATMAP_EPSILON

# Pulls a frame's fitted gain towards 1 where the reference has little contrast (a flat
# background says little about contrast); in squared frame units, ~8 grey levels of spread.
_GAIN_PRIOR = 1e-3
# A fitted gain is kept within these bounds, so a frame that fades to black is not blown up.
_GAIN_RANGE = (0.25, 4.0)


def _change_mask(frames, reference, threshold):
  """Soft mask of the pixels that differ from `reference` (broadcast over time):
  `min(1, max_c |frames - reference| / threshold)`, shape `[B, T, H, W, 1]`."""
  change = tf.reduce_max(tf.abs(frames - reference), axis=-1, keepdims=True)
  return tf.minimum(change / threshold, 1.0)


def _temporal_median(frames):
  """`[B, T, H, W, C]` -> `[B, 1, H, W, C]`, the median over time of each pixel (the mean of
  the two middle values when T is even)."""
  num_frames = tf.shape(frames)[1]
  ordered = tf.sort(frames, axis=1)
  lower = ordered[:, (num_frames - 1) // 2]
  upper = ordered[:, num_frames // 2]
  return (0.5 * (lower + upper))[:, tf.newaxis]


def _fit_lighting(frames, reference, weights):
  """Per-frame gain and offset with frames ~ gain * reference + offset: weighted least squares
  over the pixels and channels, the gain pulled towards 1 by `_GAIN_PRIOR`.

  Args:
    frames: `[B, T, H, W, C]`.
    reference: `[B, 1, H, W, C]`.
    weights: `[B, T, H, W, 1]` non-negative pixel weights.

  Returns:
    gain, offset: `[B, T, 1, 1, 1]` each.
  """
  axes = [2, 3, 4]
  weights = weights * tf.ones_like(frames) + 1e-6  # Never an empty fit.
  total = tf.reduce_sum(weights, axis=axes, keepdims=True)
  mean_reference = tf.reduce_sum(weights * reference, axis=axes, keepdims=True) / total
  mean_frame = tf.reduce_sum(weights * frames, axis=axes, keepdims=True) / total
  centred = reference - mean_reference
  variance = tf.reduce_sum(weights * tf.square(centred), axis=axes, keepdims=True) / total
  covariance = tf.reduce_sum(weights * centred * (frames - mean_frame), axis=axes,
                             keepdims=True) / total
  gain = tf.clip_by_value((covariance + _GAIN_PRIOR) / (variance + _GAIN_PRIOR), *_GAIN_RANGE)
  return gain, mean_frame - gain * mean_reference


def match_lighting(frames, reference, threshold):
  """Frames with each one's brightness and contrast brought to those of `reference`.

  A change of the light multiplies and shifts a whole frame (frame = gain * scene + offset);
  to a mask that compares pixels with a reference, it looks like motion everywhere. Each
  frame's gain and offset against the reference are fitted by least squares (`_fit_lighting`),
  twice: on every pixel, then only on the pixels that the first fit does not call changed
  (`_change_mask` below 1 at `threshold`), so that the objects do not bias the fit. The frame
  is then mapped back: (frame - offset) / gain. A window without lighting changes comes back
  nearly unchanged (gain ~ 1, offset ~ 0).

  Args:
    frames: `[B, T, H, W, C]` float32.
    reference: `[B, 1, H, W, C]` float32, e.g. the window's first frame or temporal median.
    threshold: colour change at which a pixel counts fully as changed.

  Returns:
    `[B, T, H, W, C]` float32.
  """
  gain, offset = _fit_lighting(frames, reference, tf.ones_like(frames[..., :1]))
  changed = _change_mask(frames, gain * reference + offset, threshold)
  gain, offset = _fit_lighting(frames, reference, 1.0 - changed)
  return (frames - offset) / gain


def _heatmap_distribution(heatmaps):
  """`[B, T, S, S, K]` raw maps -> the same maps normalised to sum to one over each map (after
  adding `HEATMAP_EPSILON`, as the keypoint expectation in `ops.maps_to_keypoints` does)."""
  heatmaps = tf.cast(heatmaps, tf.float32) + HEATMAP_EPSILON
  return heatmaps / tf.reduce_sum(heatmaps, axis=[2, 3], keepdims=True)


def moving_pixel_loss(reconstructed, target, threshold, lighting=False):
  """Squared error on the pixels that change from the window's first frame (a CPU recipe aid).

  The reconstructor gets the first frame's features, so the static background costs it little;
  the pixels that carry the objects' motion are a few percent of the frame, and while keypoints
  have not yet found an object its pixels hardly move the image loss. Adding their error again
  with a weight (recipe setting `moving_pixel_weight`) raises their share of the
  gradient. The mask is soft: m = min(1, max_c |target_t - target_0| / threshold).

  Args:
    reconstructed: `[B, T, H, W, C]` reconstructed frames.
    target: `[B, T, H, W, C]` true frames in [-0.5, 0.5]; frame 0 is the reference.
    threshold: colour change (in the frames' units) at which the mask reaches 1.
    lighting: if True, each frame's brightness and contrast are first matched to frame 0's
      (`match_lighting`), so a change of the light does not count as moving.

  Returns:
    sum(m * (reconstructed - target)^2) / (2 * B * T), float32.
  """
  reconstructed = tf.cast(reconstructed, tf.float32)
  target = tf.cast(target, tf.float32)
  reference = target[:, :1]
  compared = match_lighting(target, reference, threshold) if lighting else target
  mask = _change_mask(compared, reference, threshold)
  num_frames = tf.cast(tf.shape(target)[0] * tf.shape(target)[1], tf.float32)
  return tf.reduce_sum(mask * tf.square(reconstructed - target)) / (2.0 * num_frames)


def foreground_pixel_mask(frames, threshold, lighting=False):
  """Soft mask of the moving foreground, per pixel.

  m = min(1, max_c |frame_t - median_t(frames)| / threshold): the temporal median of the
  window is its background, as objects that move are absent from it.

  Args:
    frames: `[B, T, H, W, C]` frames.
    threshold: colour change (in the frames' units) at which a pixel counts fully.
    lighting: if True, each frame's brightness and contrast are first matched to the temporal
      median's (`match_lighting`), and the median is taken again over the matched frames, so a
      change of the light does not count as foreground.

  Returns:
    `[B, T, H, W, 1]` float32 in [0, 1].
  """
  frames = tf.cast(frames, tf.float32)
  if lighting:
    frames = match_lighting(frames, _temporal_median(frames), threshold)
  return _change_mask(frames, _temporal_median(frames), threshold)


def _max_pool_to_cells(mask, cells):
  """`[B, T, H, W, 1]` -> `[B, T, cells, cells, 1]`, max over each cell's pixels."""
  batch_size, num_frames = tf.shape(mask)[0], tf.shape(mask)[1]
  height, width = mask.shape[2], mask.shape[3]
  pool = height // cells
  pooled = tf.nn.max_pool2d(tf.reshape(mask, [-1, height, width, 1]), pool, pool, "VALID")
  return tf.reshape(pooled, [batch_size, num_frames, cells, width // pool, 1])


def foreground_mask(frames, threshold, cells, lighting=False):
  """Soft mask of the moving foreground on the heatmap grid.

  `foreground_pixel_mask` max-pooled to `cells` x `cells`, so a cell counts as foreground if
  any pixel in it does.

  Args:
    frames: `[B, T, H, W, C]` float32 frames, H and W multiples of `cells`.
    threshold: colour change (in the frames' units) at which a pixel counts fully.
    cells: side of the heatmap grid.
    lighting: match each frame's lighting first (`foreground_pixel_mask`).

  Returns:
    `[B, T, cells, cells, 1]` float32 in [0, 1].
  """
  return _max_pool_to_cells(foreground_pixel_mask(frames, threshold, lighting), cells)


def foreground_attention_loss(heatmaps, frames, threshold, pixel_mask=None):
  """Share of each keypoint's heatmap that lies off the moving foreground (a CPU recipe aid).

  A keypoint whose blob sits on the static background gets no gradient from the image loss
  once the reconstructor has learned to ignore it, so on a small budget most keypoints never
  find an object. This term pulls every keypoint's heatmap mass onto pixels that differ from
  the window's background, estimated per pixel as the temporal median of the window (objects
  that move are absent from it); the separation loss then spreads keypoints over different
  objects. Recipe setting `foreground_attention_weight`.

  The foreground mask is m = min(1, max_c |frame_t - median_t(frames)| / threshold), max-pooled
  to the heatmap grid, so a heatmap cell counts as foreground if any pixel in it does.

  Args:
    heatmaps: `[B, T, S, S, K]` raw non-negative detection maps.
    frames: `[B, T, H, W, C]` frames in [-0.5, 0.5], H and W multiples of S.
    threshold: colour change (in the frames' units) at which a pixel counts fully as
      foreground.
    pixel_mask: optional `foreground_pixel_mask(frames, threshold)`, computed once by the
      caller when several terms need it.

  Returns:
    Scalar in [0, 1]: the mean over B, T and K of `1 - sum_cells(p_k * m)`, where p_k is the
    heatmap normalised to sum to one (after adding `ops.HEATMAP_EPSILON`, as the keypoint
    expectation does).
  """
  frames = tf.cast(frames, tf.float32)
  if pixel_mask is None:
    pixel_mask = foreground_pixel_mask(frames, threshold)
  mask = _max_pool_to_cells(pixel_mask, heatmaps.shape[2])
  distribution = _heatmap_distribution(heatmaps)
  return 1.0 - tf.reduce_mean(tf.reduce_sum(distribution * mask, axis=[2, 3]))


def foreground_colour_loss(predicted, frames, threshold, pixel_mask=None):
  """Squared error of predicted frames on the moving foreground (a CPU recipe aid).

  The detector's encoder learns features only for objects some keypoint already explains, so
  an object no keypoint has found stays invisible to every keypoint head. An auxiliary decoder
  that must predict the foreground's colours from the same features (recipe setting
  `foreground_colour_weight`) makes the encoder represent every moving object.

  Args:
    predicted: `[B, T, H, W, C]` frames predicted from the detector's features.
    frames: `[B, T, H, W, C]` true frames in [-0.5, 0.5].
    threshold: colour change from the window's temporal median at which a pixel counts fully
      as foreground (`foreground_pixel_mask`).
    pixel_mask: optional `foreground_pixel_mask(frames, threshold)`, computed once by the
      caller when several terms need it.

  Returns:
    sum(m * (predicted - frames)^2) / (2 * B * T), float32.
  """
  predicted = tf.cast(predicted, tf.float32)
  frames = tf.cast(frames, tf.float32)
  mask = foreground_pixel_mask(frames, threshold) if pixel_mask is None else pixel_mask
  num_frames = tf.cast(tf.shape(frames)[0] * tf.shape(frames)[1], tf.float32)
  return tf.reduce_sum(mask * tf.square(predicted - frames)) / (2.0 * num_frames)
