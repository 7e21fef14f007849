"""Tests of `evaluation/motion.py` on hand-made windows with exact answers."""

import numpy as np
import pytest

from video_structure.evaluation import motion


def moving_square_windows():
  """One window of 5 frames, 8x8, grey; a white 2x2 square moves one pixel right per frame
  along rows 2-3 (columns t..t+1 at frame t)."""
  frames = np.full((1, 5, 8, 8, 3), 100, np.uint8)
  for t in range(5):
    frames[0, t, 2:4, t:t + 2] = 255
  return frames


def pixel_to_coordinates(column, row, size=8):
  return (2.0 * column / (size - 1) - 1.0, 1.0 - 2.0 * row / (size - 1))


def test_moving_masks_mark_what_differs_from_the_temporal_median():
  masks = motion.moving_masks(moving_square_windows())
  # Every pixel is white in at most 2 of the 5 frames, so the median is the grey floor and the
  # moving pixels are the square's 4 in every frame.
  assert masks.shape == (1, 5, 8, 8) and masks.sum() == 20
  np.testing.assert_array_equal(np.argwhere(masks[0, 0]), [[2, 0], [2, 1], [3, 0], [3, 1]])
  np.testing.assert_array_equal(np.argwhere(masks[0, 4]), [[2, 4], [2, 5], [3, 4], [3, 5]])
  # A pixel white in 3 of 5 frames has a white median: it moves in the 2 grey frames.
  frames = moving_square_windows()
  frames[0, :3, 6, 6] = 255
  np.testing.assert_array_equal(motion.moving_masks(frames)[0, :, 6, 6],
                                [False, False, False, True, True])
  with pytest.raises(ValueError, match=r"frames must be \[N, T, H, W, 3\]"):
    motion.moving_masks(np.zeros((5, 8, 8, 3), np.uint8))


def test_keypoints_on_motion_against_chance():
  frames = moving_square_windows()
  keypoints = np.zeros((1, 5, 3, 3))
  for t in range(5):
    keypoints[0, t, 0] = pixel_to_coordinates(t, 2) + (1.0,)      # Follows the square.
    keypoints[0, t, 1] = pixel_to_coordinates(7, 7) + (1.0,)      # A static corner.
    keypoints[0, t, 2] = pixel_to_coordinates(t, 2) + (0.1,)      # Inactive (mu < 0.2).
  keypoints[0, 4, 0] = pixel_to_coordinates(0, 6) + (1.0,)        # Off the square once.
  result = motion.keypoints_on_motion(keypoints, frames, radius=0)
  assert result["per_keypoint_share"] == [0.8, 0.0, None]
  assert result["share_on_motion"] == pytest.approx(4 / 10)
  assert result["moving_pixel_share"] == pytest.approx(20 / 320)
  assert result["chance"] == pytest.approx(20 / 320)
  assert result["active_share"] == pytest.approx(10 / 15)
  # radius 1: each 2x2 square grows to 4x4 (4x3 at frame 0, clipped at the left edge).
  grown = motion.keypoints_on_motion(keypoints, frames, radius=1)
  assert grown["per_keypoint_share"] == [0.8, 0.0, None]
  assert grown["chance"] == pytest.approx((12 + 4 * 16) / 320)
  with pytest.raises(ValueError, match=r"keypoints must be \[N, T, K, 3\]"):
    motion.keypoints_on_motion(keypoints[:, :4], frames)
