"""Loss terms of Struct-VRNN (paper eq. 5-9; normalisation as in architecture.md).

Every function is pure, returns a float32 scalar unless stated otherwise, and documents the
shapes it expects. `struct_vrnn.StructVRNN.compute_losses` weights and sums them. The KL term's
per-step divergence comes from `tfp.distributions` in `dynamics.py`.
"""

import tensorflow as tf


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


def keypoint_prediction_loss(predicted, detected):
  """The VRNN's reconstruction and future terms: sum of squared errors over all steps and all
  three keypoint components, divided by 2 * B * T.

  Args:
    predicted: `[B, T, K, 3]` decoded keypoints (the kept best-of-many sample).
    detected: `[B, T, K, 3]` detected keypoints (the caller stops their gradient).
  """
  num_steps = tf.cast(tf.shape(detected)[0] * tf.shape(detected)[1], tf.float32)
  return tf.reduce_sum(tf.square(predicted - detected)) / (2.0 * num_steps)


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
