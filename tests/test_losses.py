"""Exact numeric tests of video_structure/losses.py on hand-made tensors."""

import numpy as np
import pytest
import tensorflow as tf

from video_structure import losses


# image_loss / keypoint_prediction_loss ------------------------------------------------------

def test_image_loss_by_hand():
  # B=2, T=3, 2x2x1 frames: 24 pixels off by 0.5 -> 24 * 0.25 / (2 * 2 * 3) = 0.5.
  reconstructed = np.zeros([2, 3, 2, 2, 1], np.float32)
  target = np.full([2, 3, 2, 2, 1], 0.5, np.float32)
  assert losses.image_loss(reconstructed, target).numpy() == pytest.approx(0.5, rel=1e-7)


def test_image_loss_single_pixel():
  # One channel of one pixel off by 3 in B=1, T=2: 9 / (2 * 1 * 2) = 2.25, whatever H, W, C.
  target = np.zeros([1, 2, 4, 4, 3], np.float32)
  reconstructed = target.copy()
  reconstructed[0, 1, 2, 3, 1] = 3.0
  assert losses.image_loss(reconstructed, target).numpy() == pytest.approx(2.25, rel=1e-7)


def test_image_loss_matches_numpy_and_casts():
  rng = np.random.default_rng(0)
  a = rng.uniform(-0.5, 0.5, size=[3, 2, 5, 5, 3]).astype(np.float32)
  b = rng.uniform(-0.5, 0.5, size=[3, 2, 5, 5, 3]).astype(np.float32)
  expected = np.sum((a.astype(np.float64) - b) ** 2) / (2 * 3 * 2)
  result = losses.image_loss(tf.cast(a, tf.bfloat16), b)
  assert result.dtype == tf.float32
  np.testing.assert_allclose(losses.image_loss(a, b).numpy(), expected, rtol=1e-6)


def test_moving_pixel_loss_by_hand():
  # B=1, T=2, 1x3 pixels, 2 channels. Frame 0 is the reference (mask 0). In frame 1 pixel 0
  # is unchanged (mask 0), pixel 1 changed by 0.05 in one channel (mask 0.5 at threshold 0.1)
  # and pixel 2 by 0.3 (mask 1). Every reconstructed value is off by 0.2 (squared 0.04 per
  # channel, 0.08 per pixel): (0.5 * 0.08 + 1 * 0.08) / (2 * 1 * 2) = 0.03.
  target = np.zeros([1, 2, 1, 3, 2], np.float32)
  target[0, 1, 0, 1, 1] = 0.05
  target[0, 1, 0, 2, 0] = -0.3
  reconstructed = target + 0.2
  result = losses.moving_pixel_loss(reconstructed, target, threshold=0.1)
  assert result.numpy() == pytest.approx(0.03, rel=1e-6)


def test_moving_pixel_loss_of_a_static_window_is_zero_and_of_a_saturated_mask_is_the_image_loss():
  rng = np.random.default_rng(1)
  static = np.repeat(rng.uniform(-0.5, 0.5, [2, 1, 4, 4, 3]), 3, axis=1).astype(np.float32)
  off = static + rng.normal(size=static.shape).astype(np.float32)
  assert losses.moving_pixel_loss(off, static, 0.1).numpy() == 0.0
  # Every later frame differs from frame 0 by >= threshold in some channel: mask 1 there, so
  # the loss is the image loss of frames 1.. alone.
  moving = static.copy()
  moving[:, 1:, ..., 0] += 0.5
  expected = np.sum((off[:, 1:] - moving[:, 1:]).astype(np.float64) ** 2) / (2 * 2 * 3)
  np.testing.assert_allclose(losses.moving_pixel_loss(off, moving, 0.5).numpy(), expected,
                             rtol=1e-5)


def _object_visiting_each_cell():
  """B=1, T=4, 4x4x3 frames (2x2 cells of 2x2 pixels) on a black background; in frame t an
  object (0.5 in the red channel) sits in one pixel of cell t, so every pixel shows it in at
  most one frame and the temporal median is the background."""
  frames = np.zeros([1, 4, 4, 4, 3], np.float32)
  for t, (row, col) in enumerate([(0, 1), (1, 2), (2, 0), (3, 3)]):
    frames[0, t, row, col, 0] = 0.5
  return frames


def test_foreground_attention_loss_by_hand():
  frames = _object_visiting_each_cell()
  cell_of_frame = [(0, 0), (0, 1), (1, 0), (1, 1)]
  heatmaps = np.zeros([1, 4, 2, 2, 2], np.float32)
  for t, (row, col) in enumerate(cell_of_frame):
    heatmaps[0, t, row, col, 0] = 1.0  # Keypoint 0 follows the object: 0 off the foreground.
  heatmaps[..., 1] = 1.0               # Keypoint 1 is uniform: 3 of 4 cells are background.
  result = losses.foreground_attention_loss(heatmaps, frames, threshold=0.1)
  assert result.numpy() == pytest.approx((0.0 + 0.75) / 2, abs=1e-5)
  # A change of half the threshold makes the object's cell count half: keypoint 0 keeps half
  # of its mass off the foreground, keypoint 1 seven eighths.
  result = losses.foreground_attention_loss(heatmaps, frames, threshold=1.0)
  assert result.numpy() == pytest.approx((0.5 + 0.875) / 2, abs=1e-5)


def test_foreground_attention_loss_weighted_by_the_reconstruction_error():
  # The reconstruction misses the object in frames 0 and 1 (error 0.5 there: the frame's
  # worst pixel, weight 1) and is perfect in frames 2 and 3 (weight 0 everywhere). Keypoint 0
  # follows the object: 0 in frames 0-1, 1 in frames 2-3. Keypoint 1 is uniform: 0.75, then 1.
  frames = _object_visiting_each_cell()
  reconstruction = frames.copy()
  reconstruction[0, :2] = 0.0
  heatmaps = np.zeros([1, 4, 2, 2, 2], np.float32)
  for t, (row, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
    heatmaps[0, t, row, col, 0] = 1.0
  heatmaps[..., 1] = 1.0
  result = losses.foreground_attention_loss(heatmaps, frames, 0.1, reconstruction)
  assert result.numpy() == pytest.approx((0.5 + 0.875) / 2, abs=1e-5)


def test_foreground_attention_loss_of_a_static_window_is_one():
  rng = np.random.default_rng(2)
  static = np.repeat(rng.uniform(-0.5, 0.5, [2, 1, 8, 8, 3]), 4, axis=1).astype(np.float32)
  heatmaps = rng.uniform(0, 3, [2, 4, 4, 4, 5]).astype(np.float32)
  assert losses.foreground_attention_loss(heatmaps, static, 0.1).numpy() == pytest.approx(1.0)


def test_foreground_attention_loss_uses_the_temporal_median_not_the_first_frame():
  # The object sits in cell (0, 0) in frames 1-3 but not in frame 0: the median is the object,
  # so frame 0 (without it) is the odd one out, and a heatmap on cell (0, 0) in frames 1-3
  # gets no credit.
  frames = np.zeros([1, 4, 4, 4, 3], np.float32)
  frames[0, 1:, 0, 0, 2] = -0.4
  heatmaps = np.zeros([1, 4, 2, 2, 1], np.float32)
  heatmaps[0, :, 0, 0, 0] = 1.0
  result = losses.foreground_attention_loss(heatmaps, frames, 0.1)
  assert result.numpy() == pytest.approx(0.0 * 0.25 + 1.0 * 0.75, abs=1e-5)


def test_heatmap_concentration_loss_by_hand():
  # 2x2 grid: cell centres at x, y = +-1. Keypoint 0: all mass on one cell -> variance 0.
  # Keypoint 1: half on the top-left and half on the bottom-right cell -> mean (0, 0) and
  # squared distance 2 for both halves -> 2. Keypoint 2: uniform -> variance of x and of y is
  # 1 each -> 2. Keypoint 3: 3/4 on the left column, 1/4 on the right, same row -> mean
  # x = -0.5, variance 0.75 (y constant).
  heatmaps = np.zeros([1, 1, 2, 2, 4], np.float32)
  heatmaps[0, 0, 1, 0, 0] = 7.0
  heatmaps[0, 0, 0, 0, 1] = heatmaps[0, 0, 1, 1, 1] = 1.0
  heatmaps[0, 0, :, :, 2] = 0.3
  heatmaps[0, 0, 0, 0, 3] = 3.0
  heatmaps[0, 0, 0, 1, 3] = 1.0
  result = losses.heatmap_concentration_loss(heatmaps)
  assert result.numpy() == pytest.approx((0.0 + 2.0 + 2.0 + 0.75) / 4, abs=1e-5)


def test_heatmap_concentration_loss_of_a_uniform_16x16_map():
  # Var of linspace(-1, 1, 16) is (1/16) sum x^2 = 0.37778 per axis.
  grid = np.linspace(-1, 1, 16)
  expected = 2 * np.mean(grid ** 2)
  result = losses.heatmap_concentration_loss(np.ones([2, 3, 16, 16, 5], np.float32))
  assert result.numpy() == pytest.approx(expected, rel=1e-5)


def test_keypoint_prediction_loss_by_hand():
  # B=2, T=2, K=3: errors 1 and 2 in two components -> (1 + 4) / (2 * 2 * 2) = 0.625.
  predicted = np.zeros([2, 2, 3, 3], np.float32)
  detected = np.zeros([2, 2, 3, 3], np.float32)
  detected[0, 1, 2, 0] = 1.0   # an x
  predicted[1, 0, 0, 2] = 2.0  # a mu
  assert losses.keypoint_prediction_loss(predicted, detected).numpy() == pytest.approx(0.625)


def test_keypoint_prediction_loss_matches_numpy():
  rng = np.random.default_rng(1)
  predicted = rng.uniform(-1, 1, size=[4, 5, 6, 3]).astype(np.float32)
  detected = rng.uniform(-1, 1, size=[4, 5, 6, 3]).astype(np.float32)
  expected = np.sum((predicted.astype(np.float64) - detected) ** 2) / (2 * 4 * 5)
  np.testing.assert_allclose(losses.keypoint_prediction_loss(predicted, detected).numpy(),
                             expected, rtol=1e-6)


# KL -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mean_q, std_q, mean_p, std_p, expected", [
    (1.0, 1.0, 0.0, 1.0, 0.5),                                   # mean shift only
    (0.0, 2.0, 0.0, 1.0, 0.5 * (4.0 - 1.0 - np.log(4.0))),        # wider posterior
    (0.0, 1.0, 0.0, 2.0, np.log(2.0) + 1.0 / 8.0 - 0.5),          # wider prior
    (3.0, 0.5, 1.0, 2.0, np.log(4.0) + (0.25 + 4.0) / 8.0 - 0.5),  # both
])
def test_kl_single_dimension_by_hand(mean_q, std_q, mean_p, std_p, expected):
  as_tensor = lambda v: tf.constant([[v]], tf.float32)
  kl = losses.kl_divergence_diagonal_gaussians(
      as_tensor(mean_q), as_tensor(std_q), as_tensor(mean_p), as_tensor(std_p)).numpy()
  assert kl.shape == (1,)
  np.testing.assert_allclose(kl[0], expected, rtol=1e-6)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # tfp imports distutils
def test_kl_sums_over_the_last_axis_and_matches_tfp():
  import tensorflow_probability as tfp  # only this test needs it

  rng = np.random.default_rng(2)
  shape = [3, 4, 5]
  mean_q, mean_p = (rng.normal(size=shape).astype(np.float32) for _ in range(2))
  std_q, std_p = (rng.uniform(0.1, 2.0, size=shape).astype(np.float32) for _ in range(2))
  kl = losses.kl_divergence_diagonal_gaussians(mean_q, std_q, mean_p, std_p).numpy()
  assert kl.shape == (3, 4)

  closed_form = np.sum(np.log(std_p / std_q.astype(np.float64))
                       + (std_q.astype(np.float64) ** 2 + (mean_q - mean_p) ** 2)
                       / (2 * std_p.astype(np.float64) ** 2) - 0.5, axis=-1)
  np.testing.assert_allclose(kl, closed_form, rtol=1e-5)

  reference = tf.reduce_sum(tfp.distributions.kl_divergence(
      tfp.distributions.Normal(mean_q, std_q), tfp.distributions.Normal(mean_p, std_p)), -1)
  np.testing.assert_allclose(kl, reference.numpy(), rtol=1e-5, atol=1e-6)


def test_kl_of_identical_distributions_is_zero():
  rng = np.random.default_rng(3)
  mean = rng.normal(size=[4, 16]).astype(np.float32)
  std = rng.uniform(0.01, 3.0, size=[4, 16]).astype(np.float32)
  kl = losses.kl_divergence_diagonal_gaussians(mean, std, mean, std).numpy()
  np.testing.assert_array_equal(kl, np.zeros([4], np.float32))


def test_kl_loss_averages_observed_steps_only():
  kl = np.array([[1.0, 2.0, 100.0], [3.0, 6.0, 100.0]], np.float32)
  assert losses.kl_loss(kl, 2).numpy() == pytest.approx(3.0)
  assert losses.kl_loss(kl, 1).numpy() == pytest.approx(2.0)


# temporal separation --------------------------------------------------------------------------

def _trajectories(x, y, mu=0.5):
  """`x`, `y`: `[B, T, K]` -> `[B, T, K, 3]` keypoints."""
  x = np.asarray(x, np.float32)
  return np.stack([x, np.asarray(y, np.float32), np.full_like(x, mu)], -1)


@pytest.mark.parametrize("num_keypoints", [2, 3, 5])
def test_separation_parallel_trajectories_give_one(num_keypoints):
  # All keypoints follow the same motion, offset by constants (exact binary fractions so that
  # the centred trajectories are bit-identical).
  motion_x = np.array([0.0, 0.125, 0.25, -0.5])
  motion_y = np.array([0.5, 0.25, -0.25, 0.0])
  offsets = 0.0625 * np.arange(num_keypoints)
  x = (motion_x[:, np.newaxis] + offsets)[np.newaxis]
  y = (motion_y[:, np.newaxis] - offsets)[np.newaxis]
  loss = losses.temporal_separation_loss(_trajectories(x, y), 0.02).numpy()
  assert loss == pytest.approx(1.0, abs=1e-6)


def test_separation_well_separated_trajectories_give_zero():
  # K=3 with large, orthogonal/opposite motions: d >= 0.5 >> 2 sigma^2 = 8e-4.
  wave = np.array([-0.5, 0.5, -0.5, 0.5])
  zero = np.zeros(4)
  x = np.stack([wave, zero, -wave], -1)[np.newaxis]
  y = np.stack([zero, wave, zero], -1)[np.newaxis]
  assert losses.temporal_separation_loss(_trajectories(x, y), 0.02).numpy() == pytest.approx(
      0.0, abs=1e-12)


@pytest.mark.parametrize("amplitude, sigma", [(0.02, 0.02), (0.05, 0.02), (0.003, 0.002)])
def test_separation_two_keypoints_by_hand(amplitude, sigma):
  # Keypoint 0 is static, keypoint 1 moves x = [-a, a]: d_01 = a^2, so
  # L = 2 + 2 exp(-a^2 / (2 sigma^2)) and (L - 2) / 2 = exp(-a^2 / (2 sigma^2)).
  x = np.array([[[0.3, -amplitude], [0.3, amplitude]]])
  y = np.array([[[0.1, 0.2], [0.1, 0.2]]])
  loss = losses.temporal_separation_loss(_trajectories(x, y), sigma).numpy()
  np.testing.assert_allclose(loss, np.exp(-amplitude ** 2 / (2 * sigma ** 2)), rtol=1e-5)


def test_separation_averages_over_the_batch_and_ignores_mu():
  x = np.array([[[0.0, -0.02], [0.0, 0.02]], [[0.0, 0.0], [0.0, 0.0]]])
  y = np.zeros_like(x)
  low_mu = losses.temporal_separation_loss(_trajectories(x, y, mu=0.0), 0.02).numpy()
  high_mu = losses.temporal_separation_loss(_trajectories(x, y, mu=1.0), 0.02).numpy()
  # Example 0: exp(-0.5); example 1 (both static): 1.
  np.testing.assert_allclose(low_mu, (np.exp(-0.5) + 1.0) / 2, rtol=1e-6)
  assert low_mu == high_mu


def test_separation_single_keypoint_gives_zero():
  keypoints = np.random.default_rng(4).uniform(-1, 1, size=[2, 5, 1, 3]).astype(np.float32)
  assert losses.temporal_separation_loss(keypoints, 0.02).numpy() == 0.0


@pytest.mark.parametrize("sigma", [0.002, 0.02, 0.2, 2.0])
def test_separation_in_unit_interval_on_random_input(sigma):
  keypoints = np.random.default_rng(5).uniform(-1, 1, size=[3, 8, 6, 3]).astype(np.float32)
  loss = losses.temporal_separation_loss(keypoints, sigma).numpy()
  assert 0.0 <= loss <= 1.0


def test_separation_matches_numpy_on_random_input():
  keypoints = np.random.default_rng(6).uniform(-1, 1, size=[3, 8, 5, 3])
  sigma = 0.3
  centred = keypoints[..., :2] - keypoints[..., :2].mean(axis=1, keepdims=True)
  distance = np.mean(np.sum((centred[:, :, :, None] - centred[:, :, None]) ** 2, -1), axis=1)
  total = np.mean(np.sum(np.exp(-distance / (2 * sigma ** 2)), axis=(1, 2)))
  expected = (total - 5) / (5 * 4)
  np.testing.assert_allclose(
      losses.temporal_separation_loss(keypoints.astype(np.float32), sigma).numpy(), expected,
      rtol=1e-5)


# sparsity -------------------------------------------------------------------------------------

def test_sparsity_loss_by_hand():
  # [B=2, T=2, 2x2, K=2]. t=0: map (b0, k0) has spatial mean 4 -> mean over (b, k) = 1.
  # t=1: map (b1, k1) has one pixel 8 -> spatial mean 2 -> mean over (b, k) = 0.5. Sum: 1.5.
  heatmaps = np.zeros([2, 2, 2, 2, 2], np.float32)
  heatmaps[0, 0, :, :, 0] = 4.0
  heatmaps[1, 1, 0, 0, 1] = 8.0
  assert losses.sparsity_loss(heatmaps).numpy() == pytest.approx(1.5, rel=1e-7)


def test_sparsity_loss_scales_with_the_number_of_frames():
  one_frame = np.full([3, 1, 4, 4, 5], 0.2, np.float32)
  four_frames = np.full([3, 4, 4, 4, 5], 0.2, np.float32)
  assert losses.sparsity_loss(one_frame).numpy() == pytest.approx(0.2)
  assert losses.sparsity_loss(four_frames).numpy() == pytest.approx(0.8)


# linear_ramp ----------------------------------------------------------------------------------

@pytest.mark.parametrize("step, ramp_steps, final_value, expected", [
    # KL annealing 0 -> beta over 25k steps.
    (0, 25000, 0.01, 0.0),
    (12500, 25000, 0.01, 0.005),
    (25000, 25000, 0.01, 0.01),
    (60000, 25000, 0.01, 0.01),
    # Scheduled sampling 0 -> 0.5 (predicted) and 0 -> 1.0 (observed) over the run.
    (0, 100000, 0.5, 0.0),
    (50000, 100000, 0.5, 0.25),
    (100000, 100000, 0.5, 0.5),
    (250000, 100000, 0.5, 0.5),
    (25000, 100000, 1.0, 0.25),
    # Negative steps clip at the start value; ramp_steps 0 gives the final value at once.
    (-10, 100, 1.0, 0.0),
    (0, 0, 0.01, 0.01),
    (7, 0, 0.5, 0.5),
    (0, -5, 0.5, 0.5),
])
def test_linear_ramp_values(step, ramp_steps, final_value, expected):
  value = losses.linear_ramp(step, ramp_steps, final_value)
  assert value.dtype == tf.float32
  assert value.numpy() == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_linear_ramp_with_start_value():
  # Blob width curriculum style: 3.0 -> 1.5 over 10 steps.
  values = [losses.linear_ramp(step, 10, 1.5, start_value=3.0).numpy() for step in (0, 5, 10, 20)]
  np.testing.assert_allclose(values, [3.0, 2.25, 1.5, 1.5], rtol=1e-6)


def test_linear_ramp_accepts_the_optimizer_step_variable():
  step = tf.Variable(12500, dtype=tf.int64)
  assert losses.linear_ramp(step, 25000, 0.01).numpy() == pytest.approx(0.005)
  compiled = tf.function(lambda: losses.linear_ramp(step, 25000, 0.01))
  step.assign(20000)
  assert compiled().numpy() == pytest.approx(0.008)


def test_linear_ramp_tensor_zero_ramp_steps_gives_final_value():
  assert losses.linear_ramp(0, tf.constant(0), 0.5).numpy() == pytest.approx(0.5)


# foreground_mask / foreground_colour_loss -----------------------------------------------------

def test_foreground_mask_on_the_pixel_grid_and_pooled_to_cells():
  frames = _object_visiting_each_cell()
  pixels = losses.foreground_mask(frames, 0.1, 4).numpy()
  assert pixels.shape == (1, 4, 4, 4, 1)
  expected = np.zeros([1, 4, 4, 4, 1], np.float32)
  for t, (row, col) in enumerate([(0, 1), (1, 2), (2, 0), (3, 3)]):
    expected[0, t, row, col, 0] = 1.0
  np.testing.assert_allclose(pixels, expected)
  cells = losses.foreground_mask(frames, 1.0, 2).numpy()[0, ..., 0]  # A change of 0.5 of 1.
  expected_cells = np.zeros([4, 2, 2], np.float32)
  for t, (row, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
    expected_cells[t, row, col] = 0.5
  np.testing.assert_allclose(cells, expected_cells)


def test_foreground_mask_weights_pixels_before_pooling():
  frames = _object_visiting_each_cell()
  weights = np.full([1, 4, 4, 4, 1], 0.25, np.float32)
  cells = losses.foreground_mask(frames, 0.1, 2, weights).numpy()
  assert cells.sum() == pytest.approx(4 * 0.25)


def test_foreground_colour_loss_by_hand():
  frames = _object_visiting_each_cell()
  # Predicting black everywhere misses the object's 0.5 in one pixel per frame; the errors on
  # the background (here 0.3 in the green channel) are not counted.
  predicted = np.zeros_like(frames)
  predicted[..., 1] = 0.3
  result = losses.foreground_colour_loss(predicted, frames, 0.1)
  # Per frame: one foreground pixel with squared error 0.25 + 0.09; / (2 * B * T) * T frames.
  assert result.numpy() == pytest.approx(4 * (0.25 + 0.09) / (2 * 4), rel=1e-6)
  assert losses.foreground_colour_loss(frames, frames, 0.1).numpy() == 0.0
