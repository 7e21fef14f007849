"""Exact numeric tests of video_structure/model/ops.py (frame conversion, keypoint <-> heatmap
maths, coord channels, aligned-corner upsampling, time folding). Expected values are computed by
hand from the formulas in docs/architecture.md, in float64."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from video_structure.model import ops

EPS = ops.HEATMAP_EPSILON
SIGMA = 1.5 / 16  # keypoint_width 1.5 heatmap pixels on a 16x16 map.


def _x_of_column(j, width):
  return -1.0 + 2.0 * j / (width - 1)


def _y_of_row(i, height):
  return 1.0 - 2.0 * i / (height - 1)


def test_epsilon_is_the_published_value():
  assert EPS == 1e-6


# frames_to_model / frames_to_uint8 ----------------------------------------------------------

def test_frames_to_model_by_hand():
  frames = np.array([0, 1, 128, 254, 255], np.uint8)
  converted = ops.frames_to_model(frames)
  assert converted.dtype == tf.float32
  np.testing.assert_allclose(converted.numpy(), [-0.5, 1 / 255 - 0.5, 128 / 255 - 0.5,
                                                 254 / 255 - 0.5, 0.5], rtol=0, atol=1e-7)


def test_frames_to_uint8_inverts_frames_to_model_on_every_level():
  codes = np.arange(256, dtype=np.uint8).reshape([1, 16, 16, 1])
  back = ops.frames_to_uint8(ops.frames_to_model(codes))
  assert back.dtype == tf.uint8
  np.testing.assert_array_equal(back.numpy(), codes)


def test_frames_to_uint8_clips_and_rounds():
  # Out-of-range values clip to 0 and 255; 0.0 maps to 127.5 (the only exact tie), rounded to
  # 128; 0.1 -> 153 and -0.1 -> 102 (102.0 and 153.0 up to float32 rounding).
  frames = np.array([-0.7, 0.9, -0.5, 0.5, 0.0, 0.1, -0.1], np.float32)
  np.testing.assert_array_equal(ops.frames_to_uint8(frames).numpy(),
                                [0, 255, 0, 255, 128, 153, 102])


# coordinate grids -------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 2, 5, 16, 64])
def test_grids_of_a_static_size_are_tf_linspace_bit_for_bit(size):
  # A Python int size gives cached constants; a size known only in the graph, tf.linspace.
  dynamic = tf.function(lambda n: (ops.coordinate_grid_x(n), ops.coordinate_grid_y(n)))
  dynamic_x, dynamic_y = dynamic(tf.constant(size))
  for static, expected, traced in ((ops.coordinate_grid_x(size), tf.linspace(-1.0, 1.0, size),
                                    dynamic_x),
                                   (ops.coordinate_grid_y(size), tf.linspace(1.0, -1.0, size),
                                    dynamic_y)):
    assert static.dtype == tf.float32 and static.shape == (size,)
    np.testing.assert_array_equal(static.numpy(), expected.numpy())
    np.testing.assert_array_equal(traced.numpy(), expected.numpy())
  if size > 1:
    np.testing.assert_allclose(ops.coordinate_grid_x(size).numpy(),
                               [_x_of_column(j, size) for j in range(size)], rtol=0, atol=3e-7)


def test_keypoints_of_maps_with_a_dynamic_size_equal_the_static_ones():
  maps = np.random.default_rng(0).uniform(size=[2, 16, 12, 3]).astype(np.float32)
  dynamic = tf.function(ops.maps_to_keypoints,
                        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
  np.testing.assert_array_equal(dynamic(maps).numpy(), ops.maps_to_keypoints(maps).numpy())


# maps_to_keypoints --------------------------------------------------------------------------

# (row, column) of the single bright pixel on a 5x7 map: the four corners and the centre.
BRIGHT_PIXELS = {
    "top_left": (0, 0),
    "top_right": (0, 6),
    "bottom_left": (4, 0),
    "bottom_right": (4, 6),
    "centre": (2, 3),
}


@pytest.mark.parametrize("value", [1.0, 0.01])
@pytest.mark.parametrize("name", sorted(BRIGHT_PIXELS))
def test_maps_to_keypoints_single_bright_pixel(name, value):
  height, width = 5, 7
  row, column = BRIGHT_PIXELS[name]
  heatmaps = np.zeros([1, height, width, 1], np.float32)
  heatmaps[0, row, column, 0] = value
  keypoints = ops.maps_to_keypoints(heatmaps).numpy()

  # With eps added to every pixel, column weights are (H eps + v [j == column]) / (H W eps + v);
  # the grid sums to zero, so x = v * x_column / (v + H W eps) (likewise for y).
  shrink = value / (value + height * width * EPS)
  assert keypoints.shape == (1, 1, 3)
  assert keypoints.dtype == np.float32
  np.testing.assert_allclose(keypoints[0, 0, 0], shrink * _x_of_column(column, width),
                             rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(keypoints[0, 0, 1], shrink * _y_of_row(row, height),
                             rtol=1e-6, atol=1e-7)
  # A single keypoint is its own strongest: mu = mean / (eps + mean), of the raw map's mean.
  mean = value / (height * width)
  np.testing.assert_allclose(keypoints[0, 0, 2], mean / (EPS + mean), rtol=1e-6)


def test_maps_to_keypoints_epsilon_pulls_weak_maps_to_the_centre():
  # A faint pixel (1e-5) at the right edge of a 16x16 map: the epsilon floor (256e-6) dominates.
  heatmaps = np.zeros([1, 16, 16, 1], np.float32)
  heatmaps[0, 8, 15, 0] = 1e-5
  x = ops.maps_to_keypoints(heatmaps).numpy()[0, 0, 0]
  np.testing.assert_allclose(x, 1e-5 / (1e-5 + 256e-6), rtol=1e-4)


def test_maps_to_keypoints_mu_is_the_ratio_of_map_means():
  height, width = 4, 4
  values = [2.0, 1.0, 0.5]  # one bright pixel per map, at different places
  heatmaps = np.zeros([1, height, width, 3], np.float32)
  for k, (value, (row, column)) in enumerate(zip(values, [(0, 0), (1, 2), (3, 3)])):
    heatmaps[0, row, column, k] = value
  mu = ops.maps_to_keypoints(heatmaps).numpy()[0, :, 2]

  means = np.array(values) / (height * width)
  expected = means / (EPS + means.max())
  np.testing.assert_allclose(mu, expected, rtol=1e-6)
  np.testing.assert_allclose(mu[0], 1.0, atol=1e-5)  # the strongest map
  np.testing.assert_allclose(mu[1], 0.5, atol=1e-5)  # half the strongest's mean
  np.testing.assert_allclose(mu[2], 0.25, atol=1e-5)


def test_maps_to_keypoints_mu_is_normalised_per_image():
  heatmaps = np.zeros([2, 4, 4, 2], np.float32)
  heatmaps[0, 0, 0] = [4.0, 1.0]
  heatmaps[1, 0, 0] = [0.1, 0.4]
  mu = ops.maps_to_keypoints(heatmaps).numpy()[..., 2]
  np.testing.assert_allclose(mu, [[1.0, 0.25], [0.25, 1.0]], atol=1e-4)


def test_maps_to_keypoints_all_zero_map_lands_at_the_origin():
  heatmaps = np.zeros([2, 16, 16, 3], np.float32)
  heatmaps[:, 3, 5, 1] = 1.0  # another map of the same image is bright
  keypoints = ops.maps_to_keypoints(heatmaps).numpy()
  np.testing.assert_allclose(keypoints[:, [0, 2], :2], 0.0, atol=1e-6)
  # Its mu is 0 / (eps + mean of the bright map): exactly zero.
  assert np.all(keypoints[:, [0, 2], 2] == 0.0)
  np.testing.assert_allclose(keypoints[:, 1, 2], (1 / 256) / (EPS + 1 / 256), rtol=1e-6)


def test_maps_to_keypoints_uniform_maps():
  # A constant map sits at the centre; two equally strong maps both have mu ~1.
  keypoints = ops.maps_to_keypoints(np.full([1, 6, 6, 2], 3.0, np.float32)).numpy()
  np.testing.assert_allclose(keypoints[0, :, :2], 0.0, atol=1e-6)
  np.testing.assert_allclose(keypoints[0, :, 2], 3.0 / (3.0 + EPS), rtol=1e-7)


def test_maps_to_keypoints_matches_numpy_on_random_maps():
  rng = np.random.default_rng(0)
  heatmaps = rng.uniform(0.0, 2.0, size=[3, 8, 10, 4]).astype(np.float32)
  keypoints = ops.maps_to_keypoints(heatmaps).numpy()

  maps = heatmaps.astype(np.float64) + EPS  # the floor enters the position only
  column_weights = maps.sum(axis=1) / maps.sum(axis=(1, 2))[:, np.newaxis]  # [B, W, K]
  row_weights = maps.sum(axis=2) / maps.sum(axis=(1, 2))[:, np.newaxis]  # [B, H, K]
  x = np.einsum("bwk,w->bk", column_weights, np.linspace(-1, 1, 10))
  y = np.einsum("bhk,h->bk", row_weights, np.linspace(1, -1, 8))
  means = heatmaps.astype(np.float64).mean(axis=(1, 2))
  mu = means / (EPS + means.max(axis=-1, keepdims=True))
  np.testing.assert_allclose(keypoints, np.stack([x, y, mu], -1), rtol=1e-5, atol=1e-6)


# The authors' MapsToKeypointsTest (google-research/video_structure, ops_test.py): a 33x33
# map with one keypoint, expected (x, y, mu) to 2 decimals, as they assert.
AUTHORS_MAP_SHAPE = (1, 33, 33, 1)
AUTHORS_CASES = {
    "zero_map": (None, [0.0, 0.0, 0.0]),  # testZeroMapIsZeroCoords
    "top_left": ((0, 0), [-1.0, 1.0, 1.0]),  # testObjectInTopLeft
    "bottom_right": ((-1, -1), [1.0, -1.0, 1.0]),  # testObjectInBottomRight
    "centre": ((16, 16), [0.0, 0.0, 1.0]),  # testObjectInCenter
}


@pytest.mark.parametrize("name", sorted(AUTHORS_CASES))
def test_maps_to_keypoints_authors_cases(name):
  pixel, expected = AUTHORS_CASES[name]
  heatmaps = np.zeros(AUTHORS_MAP_SHAPE, np.float32)
  if pixel is not None:
    heatmaps[0, pixel[0], pixel[1], 0] = 1.0
  keypoints = ops.maps_to_keypoints(heatmaps).numpy()
  np.testing.assert_array_almost_equal(np.squeeze(keypoints), expected, decimal=2)


def test_maps_to_keypoints_zero_map_is_exactly_zero():
  # Tighter than the authors' 2 decimals: mu is 0 / eps = 0 exactly, and x, y are the mean of
  # a symmetric grid, zero up to float32 rounding of the grid.
  keypoints = ops.maps_to_keypoints(np.zeros(AUTHORS_MAP_SHAPE, np.float32)).numpy()
  assert keypoints[0, 0, 2] == 0.0
  np.testing.assert_allclose(keypoints[0, 0, :2], 0.0, atol=1e-7)


def test_maps_to_keypoints_epsilon_only_in_mu_denominator():
  # Uniform maps of height 1e-6 (= eps) and 2e-6 on a 4x4 grid: raw means 1e-6 and 2e-6, so
  # mu = 1e-6 / (1e-6 + 2e-6) = 1/3 and 2e-6 / (1e-6 + 2e-6) = 2/3. Adding eps to the map
  # before the mean as well (the old formula) would give 2/4 and 3/4.
  heatmaps = np.empty([1, 4, 4, 2], np.float32)
  heatmaps[..., 0], heatmaps[..., 1] = 1e-6, 2e-6
  keypoints = ops.maps_to_keypoints(heatmaps).numpy()
  np.testing.assert_allclose(keypoints[0, :, 2], [1 / 3, 2 / 3], rtol=1e-6)
  np.testing.assert_allclose(keypoints[0, :, :2], 0.0, atol=1e-6)


def test_maps_to_keypoints_exact_values_on_a_3x3_map():
  # By hand, e = 1e-6: map 0 has 2.0 at the top-right pixel, map 1 is 1.0 everywhere.
  # Map 0: the column sums of (map + e) are (3e, 3e, 2 + 3e), total 2 + 9e, grid (-1, 0, 1), so
  # x = 2 / (2 + 9e); the top row is y = +1 and the same sums give y = 2 / (2 + 9e).
  # Raw means 2/9 and 1; the largest is 1, so mu = (2/9) / (1 + e) and 1 / (1 + e).
  heatmaps = np.zeros([1, 3, 3, 2], np.float32)
  heatmaps[0, 0, 2, 0] = 2.0
  heatmaps[..., 1] = 1.0
  keypoints = ops.maps_to_keypoints(heatmaps).numpy()[0]
  shift = 2 / (2 + 9 * EPS)
  np.testing.assert_allclose(keypoints[0], [shift, shift, (2 / 9) / (1 + EPS)], rtol=1e-6)
  np.testing.assert_allclose(keypoints[1], [0.0, 0.0, 1 / (1 + EPS)], rtol=1e-7, atol=1e-7)
  # The old formula's mu for map 0, (2/9 + e) / (1 + 2e), is 7.8e-7 above this: 35 float32 ulps.
  assert abs(keypoints[0, 2] - (2 / 9 + EPS) / (1 + 2 * EPS)) > 5e-7


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32])
def test_maps_to_keypoints_returns_float32(dtype):
  heatmaps = tf.cast(tf.ones([1, 4, 4, 2]), dtype)
  assert ops.maps_to_keypoints(heatmaps).dtype == tf.float32


# keypoints_to_maps -------------------------------------------------------------------------

@pytest.mark.parametrize("x, y, peak", [
    (-1.0, 1.0, (0, 0)),     # top-left
    (1.0, 1.0, (0, 15)),     # top-right
    (-1.0, -1.0, (15, 0)),   # bottom-left
    (1.0, -1.0, (15, 15)),   # bottom-right
])
@pytest.mark.parametrize("mu", [1.0, 0.3])
def test_keypoints_to_maps_peak_location_and_value(x, y, peak, mu):
  maps = ops.keypoints_to_maps(np.array([[[x, y, mu]]], np.float32), SIGMA, 16).numpy()
  assert maps.shape == (1, 16, 16, 1)
  assert maps.dtype == np.float32
  assert np.unravel_index(np.argmax(maps[0, :, :, 0]), (16, 16)) == peak
  np.testing.assert_allclose(maps[0, peak[0], peak[1], 0], mu, rtol=1e-7)


def test_keypoints_to_maps_mu_zero_gives_an_all_zero_map():
  keypoints = np.array([[[0.2, -0.4, 0.0], [-1.0, 1.0, 1.0]]], np.float32)
  maps = ops.keypoints_to_maps(keypoints, SIGMA, 16).numpy()
  assert np.all(maps[..., 0] == 0.0)
  assert maps[0, 0, 0, 1] == 1.0  # the other keypoint is unaffected


@pytest.mark.parametrize("neighbour, squared_distance", [
    ((0, 1), (2.0 / 15) ** 2),              # one column to the right
    ((1, 0), (2.0 / 15) ** 2),              # one row down
    ((1, 1), 2 * (2.0 / 15) ** 2),          # diagonal
    ((0, 3), (6.0 / 15) ** 2),              # three columns to the right
])
def test_keypoints_to_maps_gaussian_falloff(neighbour, squared_distance):
  mu = 0.7
  maps = ops.keypoints_to_maps(np.array([[[-1.0, 1.0, mu]]], np.float32), SIGMA, 16).numpy()
  expected = mu * np.exp(-squared_distance / (2 * SIGMA ** 2))
  np.testing.assert_allclose(maps[0, neighbour[0], neighbour[1], 0], expected, rtol=1e-5)


def test_keypoints_to_maps_matches_formula_on_random_keypoints():
  rng = np.random.default_rng(1)
  keypoints = rng.uniform(-1, 1, size=[2, 3, 3]).astype(np.float32)
  keypoints[..., 2] = np.abs(keypoints[..., 2])
  sigma, size = 0.2, 8
  maps = ops.keypoints_to_maps(keypoints, sigma, size).numpy()

  u = np.linspace(-1, 1, size)[np.newaxis, np.newaxis, :, np.newaxis]
  v = np.linspace(1, -1, size)[np.newaxis, :, np.newaxis, np.newaxis]
  x, y, mu = (keypoints[:, np.newaxis, np.newaxis, :, i].astype(np.float64) for i in range(3))
  expected = mu * np.exp(-((u - x) ** 2 + (v - y) ** 2) / (2 * sigma ** 2))
  assert maps.shape == (2, size, size, 3)
  np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("x, y", [(0.0, 0.0), (0.3, -0.2), (-0.55, 0.41)])
def test_round_trip_recovers_interior_keypoint(x, y):
  keypoints = np.array([[[x, y, 1.0], [0.1, 0.1, 0.5]]], np.float32)
  maps = ops.keypoints_to_maps(keypoints, SIGMA, 16)
  recovered = ops.maps_to_keypoints(maps).numpy()
  np.testing.assert_allclose(recovered[0, :, :2], keypoints[0, :, :2], atol=2e-3)
  # The blobs have the same shape, so mu comes back as the ratio of the mus.
  np.testing.assert_allclose(recovered[0, :, 2], [1.0, 0.5], atol=2e-3)


# add_coord_channels -------------------------------------------------------------------------

def test_add_coord_channels_values():
  rng = np.random.default_rng(2)
  images = rng.normal(size=[2, 4, 6, 3]).astype(np.float32)
  result = ops.add_coord_channels(images).numpy()
  assert result.shape == (2, 4, 6, 5)
  np.testing.assert_array_equal(result[..., :3], images)
  x_channel, y_channel = result[..., 3], result[..., 4]
  np.testing.assert_allclose(x_channel[:, :, 0], -1.0)   # left column
  np.testing.assert_allclose(x_channel[:, :, -1], 1.0)   # right column
  np.testing.assert_allclose(y_channel[:, 0, :], 1.0)    # top row
  np.testing.assert_allclose(y_channel[:, -1, :], -1.0)  # bottom row
  np.testing.assert_allclose(x_channel[0, 2], [-1.0, -0.6, -0.2, 0.2, 0.6, 1.0], atol=1e-6)
  np.testing.assert_allclose(y_channel[1, :, 4], [1.0, 1.0 / 3, -1.0 / 3, -1.0], atol=1e-6)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32])
def test_add_coord_channels_keeps_dtype(dtype):
  assert ops.add_coord_channels(tf.zeros([1, 3, 3, 2], dtype)).dtype == dtype


def test_coordinate_grids():
  np.testing.assert_allclose(ops.coordinate_grid_x(5).numpy(), [-1, -0.5, 0, 0.5, 1])
  np.testing.assert_allclose(ops.coordinate_grid_y(5).numpy(), [1, 0.5, 0, -0.5, -1])


# upsample_bilinear_aligned ------------------------------------------------------------------

def test_upsample_2x2_to_4x4_by_hand():
  # Output pixel i samples input position i * (2 - 1) / (4 - 1) = i / 3; the input is the
  # linear ramp 6 r + 3 c, so the output is 6 (i / 3) + 3 (j / 3) = 2 i + j.
  images = np.array([[0.0, 3.0], [6.0, 9.0]], np.float32)[np.newaxis, :, :, np.newaxis]
  result = ops.upsample_bilinear_aligned(images, 2).numpy()[0, :, :, 0]
  expected = [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]]
  np.testing.assert_allclose(result, expected, atol=1e-5)


def test_upsample_2x2_non_linear_by_hand():
  # Only one bright corner: out[i, j] = (i / 3) * (j / 3) * 9.
  images = np.array([[0.0, 0.0], [0.0, 9.0]], np.float32)[np.newaxis, :, :, np.newaxis]
  result = ops.upsample_bilinear_aligned(images, 2).numpy()[0, :, :, 0]
  np.testing.assert_allclose(result, np.outer(np.arange(4), np.arange(4)), atol=1e-5)


@pytest.mark.parametrize("height, width, scale", [(2, 2, 2), (2, 2, 4), (3, 5, 2), (4, 4, 2)])
def test_upsample_linear_ramp_is_exact(height, width, scale):
  rows, columns = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
  images = np.stack([6.0 * rows + 3.0 * columns, -columns], -1)[np.newaxis].astype(np.float32)
  result = ops.upsample_bilinear_aligned(images, scale).numpy()
  assert result.shape == (1, scale * height, scale * width, 2)
  out_rows, out_columns = np.meshgrid(np.arange(scale * height), np.arange(scale * width),
                                      indexing="ij")
  source_row = out_rows * (height - 1) / (scale * height - 1)
  source_column = out_columns * (width - 1) / (scale * width - 1)
  np.testing.assert_allclose(result[0, ..., 0], 6 * source_row + 3 * source_column, atol=1e-4)
  np.testing.assert_allclose(result[0, ..., 1], -source_column, atol=1e-5)


def test_upsample_preserves_corners_exactly():
  images = np.random.default_rng(3).normal(size=[2, 3, 5, 4]).astype(np.float32)
  result = ops.upsample_bilinear_aligned(images, 2).numpy()
  for row, column in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
    np.testing.assert_array_equal(result[:, row, column], images[:, row, column])


def test_upsample_differs_from_half_pixel_keras_upsampling():
  images = np.array([[0.0, 3.0], [6.0, 9.0]], np.float32)[np.newaxis, :, :, np.newaxis]
  keras_result = keras.layers.UpSampling2D(interpolation="bilinear")(images).numpy()
  assert not np.allclose(keras_result, ops.upsample_bilinear_aligned(images, 2).numpy())


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32])
def test_upsample_keeps_dtype(dtype):
  assert ops.upsample_bilinear_aligned(tf.zeros([1, 2, 2, 1], dtype)).dtype == dtype


# fold_time / unfold_time --------------------------------------------------------------------

def test_fold_unfold_round_trip():
  tensor = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape([2, 3, 4, 5])
  folded = ops.fold_time(tensor)
  assert folded.shape == (6, 4, 5)
  np.testing.assert_array_equal(folded.numpy(), tensor.reshape([6, 4, 5]))
  np.testing.assert_array_equal(folded.numpy()[4], tensor[1, 1])  # b * T + t
  unfolded = ops.unfold_time(folded, 2)
  assert unfolded.shape == (2, 3, 4, 5)
  np.testing.assert_array_equal(unfolded.numpy(), tensor)


def test_fold_time_keeps_known_static_dimensions_in_a_graph():
  static_shapes = []

  @tf.function(input_signature=[tf.TensorSpec([None, 4, 8, 8, 3])])
  def fold(tensor):
    folded = ops.fold_time(tensor)
    static_shapes.append(folded.shape.as_list())
    return folded

  fold.get_concrete_function()
  assert static_shapes == [[None, 8, 8, 3]]
