"""Loss terms of the CPU recipe (not in the paper): moving pixels, foreground attention and
foreground colours. Pure functions; shapes in each docstring. `cpu.CpuRecipe` weights them.
"""

import tensorflow as tf

from video_structure.model.ops import HEATMAP_EPSILON


def _change_mask(frames, reference, threshold):
  """Soft mask of the pixels that differ from `reference` (broadcast over time):
  `min(1, max_c |frames - reference| / threshold)`, shape `[B, T, H, W, 1]`."""
  change = tf.reduce_max(tf.abs(frames - reference), axis=-1, keepdims=True)
  return tf.minimum(change / threshold, 1.0)


def _heatmap_distribution(heatmaps):
  """`[B, T, S, S, K]` raw maps -> the same maps normalised to sum to one over each map (after
  adding `HEATMAP_EPSILON`, as the keypoint expectation in `ops.maps_to_keypoints` does)."""
  heatmaps = tf.cast(heatmaps, tf.float32) + HEATMAP_EPSILON
  return heatmaps / tf.reduce_sum(heatmaps, axis=[2, 3], keepdims=True)


def moving_pixel_loss(reconstructed, target, threshold):
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

  Returns:
    sum(m * (reconstructed - target)^2) / (2 * B * T), float32.
  """
  reconstructed = tf.cast(reconstructed, tf.float32)
  target = tf.cast(target, tf.float32)
  mask = _change_mask(target, target[:, :1], threshold)
  num_frames = tf.cast(tf.shape(target)[0] * tf.shape(target)[1], tf.float32)
  return tf.reduce_sum(mask * tf.square(reconstructed - target)) / (2.0 * num_frames)


def foreground_pixel_mask(frames, threshold):
  """Soft mask of the moving foreground, per pixel.

  m = min(1, max_c |frame_t - median_t(frames)| / threshold): the temporal median of the
  window is its background, as objects that move are absent from it.

  Args:
    frames: `[B, T, H, W, C]` frames.
    threshold: colour change (in the frames' units) at which a pixel counts fully.

  Returns:
    `[B, T, H, W, 1]` float32 in [0, 1].
  """
  frames = tf.cast(frames, tf.float32)
  num_frames = tf.shape(frames)[1]
  # Median over time: the mean of the two middle values of the sorted frames (T even).
  ordered = tf.sort(frames, axis=1)
  lower = ordered[:, (num_frames - 1) // 2]
  upper = ordered[:, num_frames // 2]
  background = 0.5 * (lower + upper)
  return _change_mask(frames, background[:, tf.newaxis], threshold)


def _max_pool_to_cells(mask, cells):
  """`[B, T, H, W, 1]` -> `[B, T, cells, cells, 1]`, max over each cell's pixels."""
  batch_size, num_frames = tf.shape(mask)[0], tf.shape(mask)[1]
  height, width = mask.shape[2], mask.shape[3]
  pool = height // cells
  pooled = tf.nn.max_pool2d(tf.reshape(mask, [-1, height, width, 1]), pool, pool, "VALID")
  return tf.reshape(pooled, [batch_size, num_frames, cells, width // pool, 1])


def foreground_mask(frames, threshold, cells):
  """Soft mask of the moving foreground on the heatmap grid.

  `foreground_pixel_mask` max-pooled to `cells` x `cells`, so a cell counts as foreground if
  any pixel in it does.

  Args:
    frames: `[B, T, H, W, C]` float32 frames, H and W multiples of `cells`.
    threshold: colour change (in the frames' units) at which a pixel counts fully.
    cells: side of the heatmap grid.

  Returns:
    `[B, T, cells, cells, 1]` float32 in [0, 1].
  """
  return _max_pool_to_cells(foreground_pixel_mask(frames, threshold), cells)


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
