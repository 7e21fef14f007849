"""Pure tensor operations on keypoints and heatmaps.

Conventions (see docs/architecture.md):
  * Keypoints are `(x, y, mu)` triplets. `x` runs over columns from -1 (left) to +1 (right);
    `y` runs over rows from +1 (top) to -1 (bottom); `mu` in [0, 1] is the keypoint's intensity.
  * The pixel grid of an `H x W` map is `linspace(-1, 1, W)` for x and `linspace(1, -1, H)`
    for y, so pixel centres sit exactly on the grid values (the corners are at +-1).
  * Maps are channels-last: `[B, H, W, K]`.

All functions are plain TensorFlow and work in eager mode, inside `tf.function` and in an
exported SavedModel. Keypoint maths always runs in float32, whatever the layer policy.
"""

import functools

import numpy as np
import tensorflow as tf

# The authors' constant (EPSILON in their ops.py). It enters twice, as there: added to every
# pixel before the coordinate marginals, so an all-zero map sits at the centre instead of
# dividing by zero; and added to the denominator of mu only, so an all-zero map gets mu = 0.
HEATMAP_EPSILON = 1e-6


def frames_to_model(frames):
  """uint8 frames `[...]` (0..255) -> the model's float32 range: `u / 255 - 0.5` in [-0.5, 0.5].

  The one conversion between stored video and model input (data pipeline, SavedModel,
  evaluation); `frames_to_uint8` inverts it exactly.
  """
  return tf.cast(frames, tf.float32) / 255.0 - 0.5


def frames_to_uint8(frames):
  """Model-range float frames `[...]` -> uint8: clip to [-0.5, 0.5], `(x + 0.5) * 255`, round
  half to even. Exact inverse of `frames_to_model` on its outputs."""
  return tf.cast(tf.round(tf.clip_by_value(tf.cast(frames, tf.float32) + 0.5, 0.0, 1.0) * 255.0),
                 tf.uint8)


def coordinate_grid_x(width):
  """x value of each pixel column: `linspace(-1, 1, width)`, shape `[width]`, float32."""
  return _linspace(-1.0, 1.0, width)


def coordinate_grid_y(height):
  """y value of each pixel row: `linspace(1, -1, height)` (top row is +1), shape `[height]`."""
  return _linspace(1.0, -1.0, height)


def _linspace(start, stop, num):
  """`tf.linspace(start, stop, num)`; for a Python int `num`, its values as one constant.

  tf.linspace builds about 25 ops, and the model asks for a grid in every encoder, detector
  and decoder call: as a constant, tracing and eager calls skip them (the same float32 values,
  computed once by tf.linspace itself)."""
  if isinstance(num, (int, np.integer)):
    return tf.constant(_linspace_values(start, stop, int(num)))
  return tf.linspace(start, stop, num)


@functools.lru_cache(maxsize=None)
def _linspace_values(start, stop, num):
  with tf.init_scope():  # Eagerly, also when called while tracing a graph.
    values = tf.linspace(start, stop, num).numpy()
  values.flags.writeable = False
  return values


def _size(tensor, axis):
  """`tensor`'s size along `axis`: a Python int if static, else a scalar int32 tensor."""
  return tensor.shape[axis] if tensor.shape[axis] is not None else tf.shape(tensor)[axis]


def add_coord_channels(images):
  """Appends the x and y coordinate of every pixel as two extra channels.

  Args:
    images: `[B, H, W, C]` tensor (any float dtype).

  Returns:
    `[B, H, W, C + 2]`: channel C holds the x grid (left -1, right +1), channel C + 1 the
    y grid (top +1, bottom -1), in the dtype of `images`.
  """
  batch, height, width = tf.shape(images)[0], _size(images, 1), _size(images, 2)
  x_grid = tf.broadcast_to(coordinate_grid_x(width)[tf.newaxis, :], [height, width])
  y_grid = tf.broadcast_to(coordinate_grid_y(height)[:, tf.newaxis], [height, width])
  grids = tf.stack([x_grid, y_grid], axis=-1)  # [H, W, 2]
  grids = tf.broadcast_to(grids[tf.newaxis], [batch, height, width, 2])
  return tf.concat([images, tf.cast(grids, images.dtype)], axis=-1)


def maps_to_keypoints(heatmaps):
  """Turns non-negative detection maps into keypoints by their spatial expectation.

  The authors' formula (their `ops.maps_to_keypoints`), with e = `HEATMAP_EPSILON`:
    * x: the map plus e is summed over rows to weight each column; the weights are normalised
      to sum to one and the weighted mean of the column grid is x. y likewise over rows.
    * mu: the spatial mean of the raw map (no e) divided by (e + the largest such mean among
      the K maps of the same image), so each image's strongest keypoint has mu close to 1 and
      an all-zero map gives exactly (0, 0, 0) (the authors' `testZeroMapIsZeroCoords`).

  Args:
    heatmaps: `[B, H, W, K]` non-negative maps (softplus outputs).

  Returns:
    `[B, K, 3]` float32 keypoints `(x, y, mu)`.
  """
  heatmaps = tf.cast(heatmaps, tf.float32)
  height, width = _size(heatmaps, 1), _size(heatmaps, 2)
  floored = heatmaps + HEATMAP_EPSILON  # for the position only

  column_weights = tf.reduce_sum(floored, axis=1)  # [B, W, K]
  column_weights /= tf.reduce_sum(column_weights, axis=1, keepdims=True)
  x = tf.reduce_sum(column_weights * coordinate_grid_x(width)[:, tf.newaxis], axis=1)

  row_weights = tf.reduce_sum(floored, axis=2)  # [B, H, K]
  row_weights /= tf.reduce_sum(row_weights, axis=1, keepdims=True)
  y = tf.reduce_sum(row_weights * coordinate_grid_y(height)[:, tf.newaxis], axis=1)

  # The raw mean, not the floored one: with e in the numerator too, an all-zero map would get
  # mu = e / (e + e) = 0.5 instead of the authors' 0.
  map_means = tf.reduce_mean(heatmaps, axis=[1, 2])  # [B, K]
  mu = map_means / (HEATMAP_EPSILON + tf.reduce_max(map_means, axis=-1, keepdims=True))
  return tf.stack([x, y, mu], axis=-1)


def keypoints_to_maps(keypoints, sigma, heatmap_size):
  """Renders each keypoint as an unnormalised Gaussian blob scaled by its mu.

  `map_k(u, v) = mu_k * exp(-((u - x_k)^2 + (v - y_k)^2) / (2 sigma^2))` on the
  `heatmap_size x heatmap_size` grid; the peak value equals mu, so mu = 0 switches the
  keypoint off.

  Args:
    keypoints: `[B, K, 3]` keypoints `(x, y, mu)`.
    sigma: blob standard deviation in coordinate units (a float or scalar tensor);
      `keypoint_width / heatmap_size` for a width given in heatmap pixels.
    heatmap_size: side length of the square output maps.

  Returns:
    `[B, heatmap_size, heatmap_size, K]` float32 maps.
  """
  keypoints = tf.cast(keypoints, tf.float32)
  sigma = tf.cast(sigma, tf.float32)
  x = keypoints[:, tf.newaxis, tf.newaxis, :, 0]  # [B, 1, 1, K]
  y = keypoints[:, tf.newaxis, tf.newaxis, :, 1]
  mu = keypoints[:, tf.newaxis, tf.newaxis, :, 2]
  x_grid = coordinate_grid_x(heatmap_size)[tf.newaxis, tf.newaxis, :, tf.newaxis]  # [1,1,W,1]
  y_grid = coordinate_grid_y(heatmap_size)[tf.newaxis, :, tf.newaxis, tf.newaxis]  # [1,H,1,1]
  squared_distance = tf.square(x_grid - x) + tf.square(y_grid - y)
  return mu * tf.exp(-squared_distance / (2.0 * tf.square(sigma)))


def upsample_bilinear_aligned(images, scale=2):
  """Bilinear upsampling with aligned corners (TF1 `resize_bilinear(align_corners=True)`).

  The corner pixels of input and output coincide and interior pixels are interpolated
  linearly between them, unlike Keras' `UpSampling2D`, which uses half-pixel centres.

  Args:
    images: `[B, H, W, C]`.
    scale: integer upsampling factor.

  Returns:
    `[B, scale * H, scale * W, C]` in the dtype of `images`.
  """
  height, width = tf.shape(images)[1], tf.shape(images)[2]
  resized = tf.raw_ops.ResizeBilinear(
      images=tf.cast(images, tf.float32), size=tf.stack([height * scale, width * scale]),
      align_corners=True, half_pixel_centers=False)
  return tf.cast(resized, images.dtype)


def fold_time(tensor):
  """`[B, T, ...]` -> `[B * T, ...]` (static shapes kept where known)."""
  shape = tf.shape(tensor)
  return tf.reshape(tensor, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))


def unfold_time(tensor, batch_size):
  """`[B * T, ...]` -> `[B, T, ...]` for a known (possibly dynamic) batch size B."""
  shape = tf.shape(tensor)
  return tf.reshape(tensor, tf.concat([[batch_size, shape[0] // batch_size], shape[1:]], 0))
