"""Tests of video_structure/evaluation/fvd.py: the legacy bilinear resize against hand-computed
pixels and TF1's kernel, the input checks, batching, the Frechet distance against closed forms,
and the golden FVD of the reference implementation (needs the fetched I3D weights)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from video_structure.evaluation import fvd
from video_structure.evaluation import i3d


def _has_i3d_weights():
  try:
    i3d.find_i3d_weights()
    return True
  except i3d.I3DWeightsUnavailable:
    return False


# Legacy bilinear resize ----------------------------------------------------------------------


def test_matrix_upsampling_2_to_4_by_hand():
  # Source coordinates i * 2 / 4 = 0, 0.5, 1, 1.5; the last clamps to pixel 1.
  np.testing.assert_array_equal(fvd.legacy_bilinear_matrix(2, 4),
                                [[1, 0], [0.5, 0.5], [0, 1], [0, 1]])


def test_matrix_downsampling_3_to_2_by_hand():
  # Source coordinates 0 and 1.5 (no half-pixel shift).
  np.testing.assert_array_equal(fvd.legacy_bilinear_matrix(3, 2), [[1, 0, 0], [0, 0.5, 0.5]])


def test_matrix_64_to_224_by_hand():
  matrix = fvd.legacy_bilinear_matrix(64, 224)
  assert matrix.shape == (224, 64)
  np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)
  # Output 3 samples 3 * 64 / 224 = 6 / 7: weight 1/7 on pixel 0 and 6/7 on pixel 1.
  np.testing.assert_allclose(matrix[3, :3], [1 / 7, 6 / 7, 0], atol=1e-6)
  # Output 7 samples exactly pixel 2.
  np.testing.assert_allclose(matrix[7, 1:4], [0, 1, 0], atol=1e-6)
  # Output 223 samples 63.714...: beyond the last pixel, clamped to it.
  np.testing.assert_allclose(matrix[223, 62:], [0, 1], atol=1e-6)


def test_resize_of_a_2x2_image_by_hand():
  image = np.array([[0.0, 10.0], [20.0, 30.0]], np.float32)[None, :, :, None]
  resized = fvd.legacy_bilinear_resize(image, 4, 4).numpy()[0, :, :, 0]
  np.testing.assert_allclose(resized, [[0, 5, 10, 10],
                                       [10, 15, 20, 20],
                                       [20, 25, 30, 30],
                                       [20, 25, 30, 30]], atol=1e-5)


def test_resize_matches_tf1_resize_bilinear_and_not_half_pixel_resize():
  images = np.random.RandomState(0).uniform(0, 255, (2, 3, 64, 48, 3)).astype(np.float32)
  ours = fvd.legacy_bilinear_resize(images, 224, 100).numpy()
  flat = images.reshape((6, 64, 48, 3))
  tf1 = tf.compat.v1.image.resize_bilinear(flat, (224, 100), align_corners=False,
                                           half_pixel_centers=False).numpy()
  np.testing.assert_allclose(ours.reshape(tf1.shape), tf1, atol=1e-3)
  half_pixel = tf.image.resize(flat, (224, 100), method="bilinear").numpy()
  assert np.abs(ours.reshape(tf1.shape) - half_pixel).max() > 10


def test_preprocessing_maps_0_and_255_to_minus_one_and_one():
  videos = np.zeros((1, 9, 8, 8, 3), np.float32)
  videos[:, :, :, :, 1] = 255
  out = fvd.preprocess_for_i3d(videos).numpy()
  assert out.shape == (1, 9, 224, 224, 3)
  np.testing.assert_allclose(out[..., 0], -1.0, atol=1e-6)
  np.testing.assert_allclose(out[..., 1], 1.0, atol=1e-6)


# Embeddings: input checks and batching (with a stand-in for I3D) ------------------------------


def _mean_colour_model(frames, training=False):
  """Stand-in for I3D: `[B, T, 224, 224, 3]` -> mean over time of the centre pixel `[B, 3]`
  (a float32 mean over all pixels would itself be off by ~1e-3)."""
  assert frames.shape[2:] == (224, 224, 3) and not training
  return tf.reduce_mean(frames[:, :, 112, 112, :], axis=1)


def _constant_videos(values, frames=9):
  """uint8 `[len(values), frames, 16, 16, 3]`, video i filled with values[i]."""
  return np.stack([np.full((frames, 16, 16, 3), v, np.uint8) for v in values])


def test_embeddings_of_uint8_and_of_float_videos_with_their_range_agree():
  values = [0, 51, 255, 128, 7]
  progress = []
  uint8_embeddings = fvd.fvd_embeddings(_constant_videos(values), _mean_colour_model,
                                        batch_size=2, progress=lambda *a: progress.append(a))
  assert progress == [(2, 5), (4, 5), (5, 5)]
  expected = (2 * np.array(values, np.float64) / 255 - 1)[:, None] * np.ones(3)
  np.testing.assert_allclose(uint8_embeddings, expected, atol=1e-5)
  model_range = _constant_videos(values).astype(np.float32) / 255 - 0.5
  float_embeddings = fvd.fvd_embeddings(model_range, _mean_colour_model, batch_size=3,
                                        value_range=(-0.5, 0.5))
  np.testing.assert_allclose(float_embeddings, expected, atol=1e-5)


def test_clips_need_nine_frames():
  with pytest.raises(ValueError, match="videos has 8 frames per clip; FVD's I3D needs at least 9"):
    fvd.fvd_embeddings(_constant_videos([0], frames=8), _mean_colour_model)


def test_float_videos_need_a_value_range():
  with pytest.raises(ValueError, match=r"pass value_range=\(low, high\)"):
    fvd.fvd_embeddings(np.zeros((1, 9, 8, 8, 3), np.float32), _mean_colour_model)


def test_values_outside_the_value_range_are_rejected():
  with pytest.raises(ValueError,
                     match=r"videos has values in \[2.0, 2.0\], outside value_range \(0.0, 1.0\)"):
    fvd.fvd_embeddings(np.full((1, 9, 8, 8, 3), 2.0, np.float32), _mean_colour_model,
                       value_range=(0, 1))


def test_uint8_videos_cannot_take_another_range():
  with pytest.raises(ValueError, match=r"uint8, so value_range must be None or \(0, 255\)"):
    fvd.fvd_embeddings(_constant_videos([0]), _mean_colour_model, value_range=(0, 1))


def test_video_shape_is_checked():
  with pytest.raises(ValueError,
                     match=r"videos1 must have shape \[B, T, H, W, 3\]; got \(9, 8, 8, 3\)"):
    fvd.fvd(np.zeros((9, 8, 8, 3), np.uint8), _constant_videos([0, 1]), model=_mean_colour_model)


def test_fvd_needs_two_videos_per_set():
  with pytest.raises(ValueError, match="videos2 must hold at least 2 videos"):
    fvd.fvd(_constant_videos([0, 1]), _constant_videos([0]), model=_mean_colour_model)


def test_fvd_with_a_stand_in_model_is_the_squared_mean_difference():
  # Within each set all videos are equal: covariances vanish and FVD = |m1 - m2|^2.
  progress = []
  distance = fvd.fvd(_constant_videos([0, 0, 0]), _constant_videos([255, 255]),
                     model=_mean_colour_model, batch_size=2,
                     progress=lambda *a: progress.append(a))
  assert progress == [(2, 5), (3, 5), (5, 5)]
  assert distance == pytest.approx(3 * 2.0**2, abs=1e-5)


# Frechet distance ----------------------------------------------------------------------------


def _samples_with_exact_moments(mean, cov, n, seed):
  """`[n, d]` float64 samples whose sample mean is `mean` and (N-1) covariance is `cov`."""
  rng = np.random.RandomState(seed)
  d = len(mean)
  z = rng.normal(size=(n, d))
  z -= z.mean(axis=0)
  whitening = np.linalg.cholesky(z.T @ z / (n - 1))  # z's covariance = L L^T.
  z = np.linalg.solve(whitening, z.T).T  # Now exactly identity covariance.
  return np.asarray(mean) + z @ np.linalg.cholesky(cov).T


def test_exact_moment_construction():
  cov = np.array([[2.0, 1.0], [1.0, 2.0]])
  x = _samples_with_exact_moments([1.0, -3.0], cov, 20, 0)
  np.testing.assert_allclose(x.mean(axis=0), [1.0, -3.0], atol=1e-12)
  np.testing.assert_allclose(np.cov(x, rowvar=False), cov, atol=1e-12)


def test_identical_sets_have_distance_zero():
  x = np.random.RandomState(1).normal(size=(40, 6))
  assert abs(fvd.frechet_distance(x, x)) < 1e-6


def test_commuting_covariances_closed_form():
  # Same eigenvectors: distance = |m1 - m2|^2 + sum_i (sqrt(l1_i) - sqrt(l2_i))^2
  #                             = 9 + (2 - 1)^2 + (1 - 3)^2 + 0 = 14.
  rotation, _ = np.linalg.qr(np.random.RandomState(2).normal(size=(3, 3)))
  cov1 = rotation @ np.diag([4.0, 1.0, 0.25]) @ rotation.T
  cov2 = rotation @ np.diag([1.0, 9.0, 0.25]) @ rotation.T
  x1 = _samples_with_exact_moments([0.0, 0.0, 0.0], cov1, 30, 3)
  x2 = _samples_with_exact_moments([1.0, 2.0, 2.0], cov2, 50, 4)
  assert fvd.frechet_distance(x1, x2) == pytest.approx(14.0, abs=1e-6)


def test_non_commuting_covariances_closed_form():
  # For 2x2 PSD M, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)). With M = S1^1/2 S2 S1^1/2:
  # tr M = tr(S1 S2) = 10, det M = det S1 det S2 = 3 * 4 = 12.
  cov1 = np.array([[2.0, 1.0], [1.0, 2.0]])
  cov2 = np.array([[1.0, 0.0], [0.0, 4.0]])
  x1 = _samples_with_exact_moments([0.0, 0.0], cov1, 25, 5)
  x2 = _samples_with_exact_moments([3.0, 4.0], cov2, 25, 6)
  expected = 25.0 + 4.0 + 5.0 - 2.0 * math.sqrt(10.0 + 2.0 * math.sqrt(12.0))
  assert fvd.frechet_distance(x1, x2) == pytest.approx(expected, abs=1e-6)


def test_distance_is_computed_in_float64():
  # A float32 mean of 1e4-scale values would lose the 1e-3 offset.
  x1 = np.full((4, 2), 1e4, np.float32) + np.array([[0, 0], [1, 1], [0, 1], [1, 0]], np.float32)
  x2 = x1 + np.float32(0.5)
  assert fvd.frechet_distance(x1, x2) == pytest.approx(0.5, abs=1e-9)


def test_frechet_distance_input_checks():
  with pytest.raises(ValueError, match=r"embeddings2 must have shape \[N, D\] with N >= 2"):
    fvd.frechet_distance(np.zeros((3, 4)), np.zeros((1, 4)))
  with pytest.raises(ValueError, match="different dimensions: 4 vs 5"):
    fvd.frechet_distance(np.zeros((3, 4)), np.zeros((3, 5)))
  with pytest.raises(ValueError, match="embeddings1 contains non-finite values"):
    fvd.frechet_distance(np.full((3, 4), np.nan), np.zeros((3, 4)))


def test_symmetric_sqrt_leaves_tiny_singular_values_unchanged():
  matrix = np.diag([4.0, 1e-12, 0.0])
  np.testing.assert_allclose(np.diag(fvd.symmetric_matrix_sqrt(matrix)), [2.0, 1e-12, 0.0],
                             atol=1e-15)


# Golden value (real Kinetics-400 I3D) ---------------------------------------------------------


@pytest.mark.skipif(
    not _has_i3d_weights(),
    reason="I3D weights not in the cache; run `python scripts/fetch_weights.py`")
def test_golden_fvd_of_black_against_white_videos():
  # The reference implementation's documented value: 16 all-zero vs 16 all-255 videos of 15
  # 64x64 frames give FVD 133.9 (+- 0.1). Identical videos have identical embeddings, so each
  # set's covariance is zero and the mean is one video's embedding for any number of videos:
  # 2 per set give the same FVD as 16 (133.908 both) for an eighth of the I3D work.
  zeros = np.zeros((2, 15, 64, 64, 3), np.uint8)
  whites = np.full((2, 15, 64, 64, 3), 255, np.uint8)
  assert fvd.fvd(zeros, whites, batch_size=4) == pytest.approx(133.9, abs=0.1)
