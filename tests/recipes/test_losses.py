"""Exact numeric tests of video_structure/recipes/losses.py (the CPU recipe's loss terms:
moving pixels, foreground masks, foreground attention, foreground colours) on hand-made
tensors."""

import numpy as np
import pytest

from video_structure.recipes import losses


# moving_pixel_loss ----------------------------------------------------------------------------

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


# foreground attention -------------------------------------------------------------------------

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

def test_foreground_attention_loss_with_a_precomputed_mask_is_the_same():
  frames = _object_visiting_each_cell()
  heatmaps = np.random.default_rng(3).uniform(0, 2, [1, 4, 2, 2, 3]).astype(np.float32)
  mask = losses.foreground_pixel_mask(frames, 0.1)
  assert mask.shape == (1, 4, 4, 4, 1)
  np.testing.assert_array_equal(
      losses.foreground_attention_loss(heatmaps, frames, 0.1, pixel_mask=mask).numpy(),
      losses.foreground_attention_loss(heatmaps, frames, 0.1).numpy())


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


# match_lighting -------------------------------------------------------------------------------

def _relit(frames, gains, contrasts):
  """The development suite's light (synthetic_scenes): contrast c about mid-grey, then
  brightness g, on frames in [-0.5, 0.5]: x' = g * (c * x + 0.5) - 0.5, per frame."""
  gains = np.asarray(gains, np.float32)[None, :, None, None, None]
  contrasts = np.asarray(contrasts, np.float32)[None, :, None, None, None]
  return (gains * (contrasts * frames + 0.5) - 0.5).astype(np.float32)


_GAINS = [1.0, 0.7, 1.3, 0.85, 1.15, 1.0]
_CONTRASTS = [1.0, 1.15, 0.85, 1.0, 0.9, 1.1]


def _textured_window_with_a_moving_object(num_frames=6):
  """B=1, T frames of a static 8x8 texture in [-0.3, 0.1] with an object (0.45 in every
  channel) on pixel (t, t) of frame t; returns (frames, object mask [1, T, 8, 8, 1])."""
  rng = np.random.default_rng(4)
  scene = rng.uniform(-0.3, 0.1, [1, 1, 8, 8, 3]).astype(np.float32)
  frames = np.repeat(scene, num_frames, axis=1)
  on_object = np.zeros([1, num_frames, 8, 8, 1], bool)
  for t in range(num_frames):
    frames[0, t, t, t] = 0.45
    on_object[0, t, t, t] = True
  return frames, on_object


def test_match_lighting_undoes_a_gain_and_offset():
  reference = np.random.default_rng(5).uniform(-0.5, 0.5, [2, 1, 8, 8, 3]).astype(np.float32)
  frames = _relit(np.repeat(reference, 6, axis=1), _GAINS, _CONTRASTS)
  matched = losses.match_lighting(frames, reference, 0.1).numpy()
  # Exact but for the prior pulling the gain towards 1 (relative bias prior / variance ~ 1%).
  np.testing.assert_allclose(matched, np.repeat(reference, 6, axis=1), atol=5e-3)
  assert np.max(np.abs(frames - reference)) > 0.2  # ...which the light had moved by this much.


def test_foreground_mask_with_lighting_ignores_the_light_but_not_the_object():
  frames, on_object = _textured_window_with_a_moving_object()
  relit = _relit(frames, _GAINS, _CONTRASTS)
  unmatched = losses.foreground_pixel_mask(relit, 0.1).numpy()
  matched = losses.foreground_pixel_mask(relit, 0.1, lighting=True).numpy()
  # Without matching, the light alone marks most of the static background as foreground.
  assert np.mean(unmatched[~on_object] > 0.5) > 0.5
  # With it, the background stays below a tenth of the threshold and the object is foreground.
  assert np.max(matched[~on_object]) < 0.1
  assert np.min(matched[on_object]) == 1.0


def test_foreground_mask_with_lighting_is_nearly_the_same_without_a_change_of_light():
  frames, on_object = _textured_window_with_a_moving_object()
  unmatched = losses.foreground_pixel_mask(frames, 0.1).numpy()
  matched = losses.foreground_pixel_mask(frames, 0.1, lighting=True).numpy()
  np.testing.assert_array_equal(unmatched, on_object.astype(np.float32))
  np.testing.assert_allclose(matched, unmatched, atol=0.02)


def test_moving_pixel_loss_with_lighting_ignores_the_light():
  rng = np.random.default_rng(6)
  static = np.repeat(rng.uniform(-0.3, 0.3, [2, 1, 8, 8, 3]), 6, axis=1).astype(np.float32)
  relit = _relit(static, _GAINS, _CONTRASTS)
  off = relit + 0.2
  # Frames whose light changed count as moving without matching (frames 1, 2, 4 and 5 of 6 by
  # more than the threshold almost everywhere); with it, almost nothing is left.
  unmatched = losses.moving_pixel_loss(off, relit, 0.1).numpy()
  matched = losses.moving_pixel_loss(off, relit, 0.1, lighting=True).numpy()
  image_loss = np.sum((off - relit).astype(np.float64) ** 2) / (2 * 2 * 6)
  assert unmatched > 0.5 * image_loss
  assert matched < 0.01 * image_loss
