"""Exact numeric tests of video_structure/model/losses.py (the paper's loss terms) on hand-made
tensors. The CPU recipe's terms: tests/recipes/test_losses.py."""

import numpy as np
import pytest
import tensorflow as tf

from video_structure.model import losses


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


# KL (the divergence itself is tfp's: tests/model/test_dynamics.py) -----------------------------

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


@pytest.mark.parametrize("batch_size", [1, 8, 32])
def test_sparsity_loss_is_not_divided_by_the_batch_size(batch_size):
  # Our documented choice (docs/architecture.md, Losses): B copies of one example give that
  # example's loss. t=0: map k0 has spatial mean 4 -> mean over K=2 is 2; t=1: map k1 has one
  # pixel 8 -> spatial mean 2 -> 1. Sum 3, whatever B; the authors' tf.keras activity
  # regulariser gave 3 / B.
  example = np.zeros([1, 2, 2, 2, 2], np.float32)
  example[0, 0, :, :, 0] = 4.0
  example[0, 1, 0, 0, 1] = 8.0
  batch = np.tile(example, [batch_size, 1, 1, 1, 1])
  assert losses.sparsity_loss(batch).numpy() == pytest.approx(3.0, rel=1e-7)


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
  # 3.0 -> 1.5 over 10 steps.
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


# supervised_position_loss ---------------------------------------------------------------------

def test_supervised_position_loss_by_hand():
  # Two keypoints, one object; only the first keypoint's (x, y) counts, mu is ignored.
  representation = tf.constant([[[[0.5, -0.5, 0.9], [0.0, 0.0, 0.1]]]])  # [1, 1, 2, 3]
  positions = tf.constant([[[[0.0, 0.0]]]])  # [1, 1, 1, 2]
  assert float(losses.supervised_position_loss(representation, positions)) == pytest.approx(0.5)


def test_supervised_position_loss_sums_objects_and_averages_batch_and_time():
  representation = tf.zeros([2, 3, 4, 3])
  positions = tf.ones([2, 3, 2, 2])  # 2 objects x 2 coordinates, each off by 1.
  assert float(losses.supervised_position_loss(representation, positions)) == pytest.approx(4.0)


def test_supervised_position_loss_needs_enough_keypoints():
  with pytest.raises(ValueError, match="3 objects need at least as many keypoints, got K = 2"):
    losses.supervised_position_loss(tf.zeros([1, 1, 2, 3]), tf.zeros([1, 1, 3, 2]))
