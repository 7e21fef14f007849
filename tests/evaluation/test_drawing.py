"""Tests of video_structure/evaluation/drawing.py (numpy + Pillow only)."""

import os

import numpy as np
import pytest
from PIL import Image

from video_structure.evaluation import drawing


def test_palette_has_64_distinct_colours():
  colors = drawing.KEYPOINT_COLORS
  assert colors.shape[0] >= 64 and colors.shape[1] == 3 and colors.dtype == np.uint8
  assert len({tuple(color) for color in colors}) == len(colors)


def test_keypoints_to_pixels_exact():
  keypoints = np.array([[-1.0, 1.0, 1.0], [1.0, -1.0, 1.0], [0.0, 0.0, 0.5]])
  np.testing.assert_array_equal(
      drawing.keypoints_to_pixels(keypoints, 64), [[0.0, 0.0], [63.0, 63.0], [31.5, 31.5]]
  )
  # Non-square (H=5, W=9): (column, row).
  np.testing.assert_array_equal(
      drawing.keypoints_to_pixels(keypoints, (5, 9)), [[0.0, 0.0], [8.0, 4.0], [4.0, 2.0]]
  )
  # Inverse of the convention: pixel column j has x = -1 + 2j/(W-1), row i has y = 1 - 2i/(H-1).
  j, i = 3, 6
  x, y = -1 + 2 * j / 7, 1 - 2 * i / 7
  np.testing.assert_allclose(drawing.keypoints_to_pixels(np.array([[x, y, 1.0]]), 8),
                             [[3.0, 6.0]], atol=1e-12)
  assert drawing.keypoints_to_pixels(np.zeros((2, 3, 4, 3)), 8).shape == (2, 3, 4, 2)


def test_keypoints_to_pixels_bad_inputs():
  with pytest.raises(ValueError, match="keypoints"):
    drawing.keypoints_to_pixels(np.zeros((4, 5)), 8)
  with pytest.raises(ValueError, match="image_size"):
    drawing.keypoints_to_pixels(np.zeros((4, 3)), 1)


def _pixel_keypoint(column, row, size, mu=1.0):
  return [-1 + 2 * column / (size - 1), 1 - 2 * row / (size - 1), mu]


def test_draw_keypoints_marker_at_expected_pixel():
  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8)
  keypoints = np.array([[_pixel_keypoint(2, 5, 8), _pixel_keypoint(6, 1, 8, mu=0.0)]] * 2)
  scale = 4
  drawn = drawing.draw_keypoints(frames, keypoints, scale=scale)
  assert drawn.shape == (2, 32, 32, 3) and drawn.dtype == np.uint8
  upscaled = np.repeat(np.repeat(frames, scale, axis=1), scale, axis=2)
  # Keypoint 0 at pixel (col 2, row 5) -> centre of block: (2*4 + 1.5, 5*4 + 1.5) = (9.5, 21.5).
  color = drawing.KEYPOINT_COLORS[0]
  for row, col in [(21, 9), (22, 10), (21, 10), (22, 9)]:
    np.testing.assert_array_equal(drawn[0, row, col], color)
    np.testing.assert_array_equal(drawn[1, row, col], color)
  # Pixels far from the marker are unchanged, including around the mu=0 keypoint.
  changed = np.any(drawn != upscaled, axis=-1)
  rows, cols = np.nonzero(changed[0])
  assert np.all(np.hypot(rows - 21.5, cols - 9.5) <= drawing.marker_radius(scale))
  np.testing.assert_array_equal(drawn[0, :12], upscaled[0, :12])


def test_draw_keypoints_below_threshold_draws_nothing():
  frames = np.full((3, 6, 6, 3), 40, dtype=np.uint8)
  keypoints = np.zeros((3, 5, 3))
  keypoints[..., 2] = 0.19
  drawn = drawing.draw_keypoints(frames, keypoints, scale=3, mu_threshold=0.2, trails=2)
  np.testing.assert_array_equal(drawn, np.full((3, 18, 18, 3), 40, dtype=np.uint8))


def test_draw_keypoints_single_frame_and_opacity():
  frame = np.zeros((5, 5, 3), dtype=np.uint8)
  keypoint = np.array([_pixel_keypoint(2, 2, 5, mu=0.5)])
  drawn = drawing.draw_keypoints(frame, keypoint, scale=1, mu_threshold=0.2)
  assert drawn.shape == (5, 5, 3)
  # Opacity = mu: half the palette colour over black.
  np.testing.assert_array_equal(drawn[2, 2],
                                np.round(drawing.KEYPOINT_COLORS[0] * 0.5).astype(np.uint8))


def test_draw_keypoints_colour_by_index_modulo_palette():
  num_colors = len(drawing.KEYPOINT_COLORS)
  frame = np.zeros((9, 9, 3), dtype=np.uint8)
  keypoints = np.zeros((num_colors + 2, 3))
  keypoints[:, 0] = 2.0  # off-image: not drawn
  keypoints[num_colors + 1] = _pixel_keypoint(4, 4, 9)
  drawn = drawing.draw_keypoints(frame, keypoints, scale=1)
  np.testing.assert_array_equal(drawn[4, 4], drawing.KEYPOINT_COLORS[1])


def test_draw_keypoints_trails():
  frames = np.zeros((3, 9, 9, 3), dtype=np.uint8)
  # One keypoint moving right along row 4: columns 0, 4, 8.
  keypoints = np.array([[_pixel_keypoint(c, 4, 9)] for c in (0, 4, 8)])
  without = drawing.draw_keypoints(frames, keypoints, scale=1)
  with_trails = drawing.draw_keypoints(frames, keypoints, scale=1, trails=2)
  color = drawing.KEYPOINT_COLORS[0]
  # Frame 2: the trail covers row 4 from column 0 to 8; without trails column 0 stays black.
  np.testing.assert_array_equal(with_trails[2, 4, 0], color)
  np.testing.assert_array_equal(with_trails[2, 4, 3], color)
  np.testing.assert_array_equal(without[2, 4, 0], [0, 0, 0])
  # Frame 0 has no past: trails change nothing there; other rows untouched.
  np.testing.assert_array_equal(with_trails[0], without[0])
  np.testing.assert_array_equal(with_trails[2, 0], np.zeros((9, 3)))
  # trails=1 only reaches back one step (columns 4..8 at frame 2).
  one = drawing.draw_keypoints(frames, keypoints, scale=1, trails=1)
  np.testing.assert_array_equal(one[2, 4, 0], [0, 0, 0])
  np.testing.assert_array_equal(one[2, 4, 5], color)


def test_draw_keypoints_bad_inputs():
  frames = np.zeros((2, 4, 4, 3), dtype=np.uint8)
  with pytest.raises(ValueError, match="uint8"):
    drawing.draw_keypoints(frames.astype(np.float32), np.zeros((2, 1, 3)))
  with pytest.raises(ValueError, match="time steps"):
    drawing.draw_keypoints(frames, np.zeros((3, 1, 3)))
  with pytest.raises(ValueError, match="keypoints"):
    drawing.draw_keypoints(frames, np.zeros((2, 1, 2)))
  with pytest.raises(ValueError, match="keypoints"):
    drawing.draw_keypoints(frames, np.zeros((1, 3)))
  with pytest.raises(ValueError, match="scale"):
    drawing.draw_keypoints(frames, np.zeros((2, 1, 3)), scale=0)
  with pytest.raises(ValueError, match="trails"):
    drawing.draw_keypoints(frames, np.zeros((2, 1, 3)), trails=-1)


def test_prediction_figure_shape_and_borders():
  num_steps, size, num_samples, scale, border, gap = 4, 5, 2, 2, 2, 2
  rng = np.random.default_rng(0)
  true_frames = rng.integers(0, 256, size=(num_steps, size, size, 3), dtype=np.uint8)
  predicted_frames = rng.integers(0, 256, size=(num_samples, num_steps, size, size, 3),
                                  dtype=np.uint8)
  keypoints = rng.uniform(-1, 1, size=(num_steps, 3, 3))
  predicted_keypoints = rng.uniform(-1, 1, size=(num_samples, num_steps, 3, 3))
  figure = drawing.prediction_figure(
      true_frames, predicted_frames, keypoints, predicted_keypoints, num_observed=2,
      scale=scale, border=border, gap=gap,
  )
  tile = size * scale + 2 * border  # 14
  expected_shape = (3 * tile + 2 * gap, 4 * tile + 3 * gap, 3)  # (46, 62, 3)
  assert figure.shape == expected_shape == (46, 62, 3)
  assert drawing.figure_shape(3, 4, size, size, scale, border, gap) == expected_shape
  assert figure.dtype == np.uint8
  green, red = drawing.OBSERVED_BORDER_COLOR, drawing.PREDICTED_BORDER_COLOR
  white = drawing.GAP_COLOR
  for row in range(3):
    top = row * (tile + gap)
    for t in range(num_steps):
      left = t * (tile + gap)
      expected = green if t < 2 else red
      for r, c in [(top, left), (top + tile - 1, left + tile - 1), (top + 1, left + tile // 2),
                   (top + tile // 2, left + 1)]:
        np.testing.assert_array_equal(figure[r, c], expected)
      if t < num_steps - 1:
        np.testing.assert_array_equal(figure[top:top + tile, left + tile:left + tile + gap],
                                      np.full((tile, gap, 3), white))
  np.testing.assert_array_equal(figure[tile:tile + gap], np.full((gap, figure.shape[1], 3), white))


def test_prediction_figure_content_without_keypoints():
  true_frames = np.full((3, 4, 4, 3), 10, dtype=np.uint8)
  predicted = np.full((3, 4, 4, 3), 200, dtype=np.uint8)  # single sample (T, H, W, 3)
  figure = drawing.prediction_figure(true_frames, predicted, None, None, num_observed=1, scale=1,
                                     border=1, gap=1)
  assert figure.shape == (2 * 6 + 1, 3 * 6 + 2, 3)
  np.testing.assert_array_equal(figure[1:5, 1:5], np.full((4, 4, 3), 10))
  np.testing.assert_array_equal(figure[8:12, 8:12], np.full((4, 4, 3), 200))
  # With keypoints, the drawn tiles equal draw_keypoints' output.
  keypoints = np.array([[_pixel_keypoint(1, 2, 4)]] * 3)
  with_keypoints = drawing.prediction_figure(true_frames, predicted, keypoints, None,
                                             num_observed=1, scale=1, border=1, gap=1)
  np.testing.assert_array_equal(with_keypoints[1:5, 1:5],
                                drawing.draw_keypoints(true_frames, keypoints, scale=1)[0])


def test_prediction_figure_bad_inputs():
  true_frames = np.zeros((3, 4, 4, 3), dtype=np.uint8)
  with pytest.raises(ValueError, match="predicted_frames"):
    drawing.prediction_figure(true_frames, np.zeros((2, 4, 4, 4, 3), dtype=np.uint8), None,
                              None, 1)
  with pytest.raises(ValueError, match="num_observed"):
    drawing.prediction_figure(true_frames, true_frames, None, None, 4)
  with pytest.raises(ValueError, match="predicted_keypoints"):
    drawing.prediction_figure(true_frames, true_frames[None], None, np.zeros((2, 3, 1, 3)), 1)
  with pytest.raises(ValueError, match="keypoints"):
    drawing.prediction_figure(true_frames, true_frames, np.zeros((2, 1, 3)), None, 1)
  with pytest.raises(ValueError, match="true_frames"):
    drawing.prediction_figure(true_frames[0], true_frames, None, None, 1)


def test_save_png_round_trip(tmp_path):
  image = np.random.default_rng(0).integers(0, 256, size=(7, 11, 3), dtype=np.uint8)
  path = tmp_path / "nested" / "dir" / "figure.png"
  drawing.save_png(path, image)
  with Image.open(path) as loaded:
    np.testing.assert_array_equal(np.asarray(loaded.convert("RGB")), image)
  assert [name for name in os.listdir(path.parent)] == ["figure.png"]  # no temp file left
  with pytest.raises(ValueError, match="image"):
    drawing.save_png(tmp_path / "bad.png", np.zeros((2, 7, 11, 3), dtype=np.uint8))


def test_save_gif_round_trip(tmp_path):
  num_frames = 5
  frames = np.zeros((num_frames, 6, 9, 3), dtype=np.uint8)
  for t in range(num_frames):
    frames[t, :, : t + 1] = 255  # every frame differs
  path = tmp_path / "out" / "video.gif"
  drawing.save_gif(path, frames, fps=6.25)
  with Image.open(path) as loaded:
    assert loaded.n_frames == num_frames
    assert loaded.size == (9, 6)
    assert loaded.info["duration"] == 160
    assert loaded.info["loop"] == 0
    loaded.seek(2)
    np.testing.assert_array_equal(np.asarray(loaded.convert("RGB")), frames[2])
  assert os.listdir(path.parent) == ["video.gif"]
  with pytest.raises(ValueError, match="fps"):
    drawing.save_gif(tmp_path / "bad.gif", frames, fps=0)
  with pytest.raises(ValueError, match="frames"):
    drawing.save_gif(tmp_path / "bad.gif", frames[0])
  assert not (tmp_path / "bad.gif").exists()
