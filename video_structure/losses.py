"""Loss terms of Struct-VRNN (paper eq. 5-9; normalisation as in architecture.md).

Every function is pure, returns a float32 scalar unless stated otherwise, and documents the
shapes it expects. The model weights and sums them in `model.StructVRNN.compute_losses`.
"""

import tensorflow as tf

from video_structure.ops import HEATMAP_EPSILON, coordinate_grid_x, coordinate_grid_y


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


def image_loss(reconstructed, target):
  """Sum of squared errors over pixels and channels, divided by 2 * B * T.

  Args:
    reconstructed: `[B, T, H, W, C]` reconstructed frames.
    target: `[B, T, H, W, C]` true frames (same scale, [-0.5, 0.5]).
  """
  reconstructed = tf.cast(reconstructed, tf.float32)
  target = tf.cast(target, tf.float32)
  num_frames = tf.cast(tf.shape(target)[0] * tf.shape(target)[1], tf.float32)
  return tf.reduce_sum(tf.square(reconstructed - target)) / (2.0 * num_frames)


def moving_pixel_loss(reconstructed, target, threshold):
  """Squared error on the pixels that change from the window's first frame (a CPU recipe aid).

  The reconstructor gets the first frame's features, so the static background costs it little;
  the pixels that carry the objects' motion are a few percent of the frame, and while keypoints
  have not yet found an object its pixels hardly move the image loss. Adding their error again
  with a weight (config `moving_pixel_weight`; 0 in the paper) raises their share of the
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


def foreground_mask(frames, threshold, cells, pixel_weights=None):
  """Soft mask of the moving foreground on the heatmap grid.

  `foreground_pixel_mask`, optionally multiplied by `pixel_weights`, then max-pooled to
  `cells` x `cells`, so a cell counts as foreground if any pixel in it does.

  Args:
    frames: `[B, T, H, W, C]` float32 frames, H and W multiples of `cells`.
    threshold: colour change (in the frames' units) at which a pixel counts fully.
    cells: side of the heatmap grid.
    pixel_weights: optional `[B, T, H, W, 1]` weights applied before pooling.

  Returns:
    `[B, T, cells, cells, 1]` float32 in [0, 1].
  """
  mask = foreground_pixel_mask(frames, threshold)
  if pixel_weights is not None:
    mask *= pixel_weights
  return _max_pool_to_cells(mask, cells)


def foreground_attention_loss(heatmaps, frames, threshold, reconstruction=None,
                              pixel_mask=None):
  """Share of each keypoint's heatmap that lies off the moving foreground (a CPU recipe aid).

  A keypoint whose blob sits on the static background gets no gradient from the image loss
  once the reconstructor has learned to ignore it, so on a small budget most keypoints never
  find an object. This term pulls every keypoint's heatmap mass onto pixels that differ from
  the window's background, estimated per pixel as the temporal median of the window (objects
  that move are absent from it); the separation loss then spreads keypoints over different
  objects. Config `foreground_attention_weight`; 0 in the paper.

  The foreground mask is m = min(1, max_c |frame_t - median_t(frames)| / threshold), max-pooled
  to the heatmap grid, so a heatmap cell counts as foreground if any pixel in it does.

  Args:
    heatmaps: `[B, T, S, S, K]` raw non-negative detection maps.
    frames: `[B, T, H, W, C]` frames in [-0.5, 0.5], H and W multiples of S.
    threshold: colour change (in the frames' units) at which a pixel counts fully as
      foreground.
    reconstruction: optional `[B, T, H, W, C]` reconstructed frames; if given, the mask is
      multiplied by each pixel's reconstruction error (max over channels, no gradient)
      divided by the frame's largest such error.
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
  if reconstruction is not None:
    # Weight the foreground by how badly it is reconstructed (relative to the frame's worst
    # pixel; no gradient), so keypoints are pulled to objects no keypoint explains yet rather
    # than crowding onto the ones already tracked.
    error = tf.reduce_max(tf.abs(tf.cast(tf.stop_gradient(reconstruction), tf.float32) - frames),
                          axis=-1, keepdims=True)
    worst = tf.reduce_max(error, axis=[2, 3], keepdims=True)
    pixel_mask *= tf.math.divide_no_nan(error, worst)
  mask = _max_pool_to_cells(pixel_mask, heatmaps.shape[2])
  distribution = _heatmap_distribution(heatmaps)
  return 1.0 - tf.reduce_mean(tf.reduce_sum(distribution * mask, axis=[2, 3]))


def foreground_colour_loss(predicted, frames, threshold, pixel_mask=None):
  """Squared error of predicted frames on the moving foreground (a CPU recipe aid).

  The detector's encoder learns features only for objects some keypoint already explains, so
  an object no keypoint has found stays invisible to every keypoint head. An auxiliary decoder
  that must predict the foreground's colours from the same features (config
  `foreground_colour_weight`; 0 in the paper) makes the encoder represent every moving object.

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


def heatmap_concentration_loss(heatmaps):
  """Spatial variance of each keypoint's normalised heatmap (a CPU recipe aid).

  A keypoint sits at its heatmap's expectation, so a heatmap spread over several objects puts
  the keypoint between them, on none. Penalising the variance (the "concentration" prior of
  unsupervised landmark discovery) makes every heatmap a single compact blob. Config
  `concentration_weight`; 0 in the paper.

  Args:
    heatmaps: `[B, T, S, S, K]` raw non-negative detection maps.

  Returns:
    Scalar: the mean over B, T and K of `sum_cells p_k * |c - E_p[c]|^2`, with cell centres c
    on the keypoint coordinate grid ([-1, 1]) and p_k the heatmap normalised to sum to one
    (after adding `ops.HEATMAP_EPSILON`). 0 for a single cell; about 0.75 for a uniform map.
  """
  height, width = heatmaps.shape[2], heatmaps.shape[3]
  distribution = _heatmap_distribution(heatmaps)
  x = coordinate_grid_x(width)[tf.newaxis, :, tf.newaxis]   # [1, W, 1]
  y = coordinate_grid_y(height)[:, tf.newaxis, tf.newaxis]  # [H, 1, 1]
  mean_x = tf.reduce_sum(distribution * x, axis=[2, 3], keepdims=True)
  mean_y = tf.reduce_sum(distribution * y, axis=[2, 3], keepdims=True)
  variance = tf.reduce_sum(distribution * (tf.square(x - mean_x) + tf.square(y - mean_y)),
                           axis=[2, 3])
  return tf.reduce_mean(variance)


def keypoint_prediction_loss(predicted, detected):
  """The VRNN's reconstruction and future terms: sum of squared errors over all steps and all
  three keypoint components, divided by 2 * B * T.

  Args:
    predicted: `[B, T, K, 3]` decoded keypoints (the kept best-of-many sample).
    detected: `[B, T, K, 3]` detected keypoints (the caller stops their gradient).
  """
  num_steps = tf.cast(tf.shape(detected)[0] * tf.shape(detected)[1], tf.float32)
  return tf.reduce_sum(tf.square(predicted - detected)) / (2.0 * num_steps)


def kl_divergence_diagonal_gaussians(mean_q, std_q, mean_p, std_p):
  """KL(N(mean_q, std_q^2) || N(mean_p, std_p^2)) for diagonal Gaussians, summed over the last
  axis (closed form).

  Args:
    mean_q, std_q, mean_p, std_p: `[..., Z]`.

  Returns:
    `[...]`: `sum_z log(std_p / std_q) + (std_q^2 + (mean_q - mean_p)^2) / (2 std_p^2) - 1/2`.
  """
  variance_ratio = tf.square(std_q / std_p)
  mean_term = tf.square((mean_q - mean_p) / std_p)
  return 0.5 * tf.reduce_sum(variance_ratio + mean_term - 1.0 - tf.math.log(variance_ratio),
                             axis=-1)


def kl_loss(kl, num_observed):
  """Mean KL over the batch and the observed steps.

  Args:
    kl: `[B, T]` per-step KL summed over latent dimensions.
    num_observed: number of observed steps n; steps >= n are ignored.
  """
  return tf.reduce_mean(kl[:, :num_observed])


def temporal_separation_loss(keypoints, sigma):
  """Penalises keypoints whose (temporally centred) trajectories overlap (paper eq. 5).

  `d_kk'` is the mean over time of the squared distance between the centred (x, y)
  trajectories of keypoints k and k'; the loss sums `exp(-d_kk' / (2 sigma^2))` over all pairs,
  averages over the batch and maps the result to [0, 1] with `(L - K) / (K (K - 1))`, which
  removes the K diagonal terms. Parallel trajectories give 1, well separated ones 0.

  Args:
    keypoints: `[B, T, K, 3]` (only x and y are used); pass the observed steps only.
    sigma: the separation width sigma_sep in coordinate units.

  Returns:
    Scalar in [0, 1] (0 for K = 1).
  """
  coordinates = tf.cast(keypoints[..., :2], tf.float32)
  num_keypoints = tf.cast(tf.shape(coordinates)[2], tf.float32)
  centred = coordinates - tf.reduce_mean(coordinates, axis=1, keepdims=True)
  # [B, T, K, 1, 2] - [B, T, 1, K, 2] -> [B, K, K]
  difference = centred[:, :, :, tf.newaxis] - centred[:, :, tf.newaxis]
  distance = tf.reduce_mean(tf.reduce_sum(tf.square(difference), axis=-1), axis=1)
  overlap = tf.reduce_sum(tf.exp(-distance / (2.0 * sigma ** 2)), axis=[1, 2])
  overlap = tf.reduce_mean(overlap)
  return tf.math.divide_no_nan(overlap - num_keypoints, num_keypoints * (num_keypoints - 1.0))


def sparsity_loss(heatmaps):
  """The paper's L1 penalty on mu, on the raw maps as in the published example: the mean over
  batch and keypoints of |spatial mean of R|, added for every frame (summed over time).

  Args:
    heatmaps: `[B, T, S, S, K]` raw non-negative detection maps R.
  """
  heatmaps = tf.cast(heatmaps, tf.float32)
  map_means = tf.abs(tf.reduce_mean(heatmaps, axis=[2, 3]))  # [B, T, K]
  return tf.reduce_sum(tf.reduce_mean(map_means, axis=[0, 2]))


def linear_ramp(step, ramp_steps, final_value, start_value=0.0):
  """`start_value` at step 0 rising linearly to `final_value` at `ramp_steps`, then constant.

  Drives KL annealing (0 -> beta over 25k steps), scheduled sampling (0 -> 1.0 / 0.5 over the
  run) and the optional warm-ups of the CPU presets. `ramp_steps <= 0` gives `final_value`.
  """
  step = tf.cast(step, tf.float32)
  ramp_steps = tf.cast(ramp_steps, tf.float32)
  fraction = tf.where(ramp_steps > 0,
                      tf.clip_by_value(tf.math.divide_no_nan(step, ramp_steps), 0.0, 1.0), 1.0)
  return start_value + (final_value - start_value) * fraction


def supervised_position_loss(representation, true_positions):
  """The supervised baselines' loss: the representation's first N (x, y) entries = the objects.

  Args:
    representation: `[B, T, K, 3]` keypoints (or CNN-VRNN features), K >= N.
    true_positions: `[B, T, N, 2]` ground-truth (x, y) of the N objects.

  Returns:
    Scalar: squared distance summed over objects and coordinates, averaged over B and T.
  """
  representation = tf.convert_to_tensor(representation, tf.float32)
  true_positions = tf.convert_to_tensor(true_positions, tf.float32)
  num_objects = true_positions.shape[-2]
  num_keypoints = representation.shape[-2]
  if num_objects is not None and num_keypoints is not None and num_objects > num_keypoints:
    raise ValueError(f"supervised_position_loss: {num_objects} objects need at least as many "
                     f"keypoints, got K = {num_keypoints}.")
  difference = representation[..., :tf.shape(true_positions)[-2], :2] - true_positions
  return tf.reduce_mean(tf.reduce_sum(tf.square(difference), axis=[-2, -1]))
