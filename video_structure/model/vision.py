"""The vision networks: keypoint detector, appearance encoder, Gaussian renderer, reconstructor.
(The CNN-VRNN baseline's unstructured encoder and renderer are in `unstructured.py`.)

Every layer works on single frames `[B, H, W, C]`; the model folds time into the batch. Conv
defaults (architecture.md): 3x3, 'same' padding, leaky ReLU with slope 0.2, He-uniform kernels,
zero bias, L2 1e-4 on kernels. The 1x1 heatmap head uses Glorot init and no L2.
"""

import keras
import tensorflow as tf

from video_structure.model import ops

LEAKY_RELU_SLOPE = 0.2  # Keras' LeakyReLU defaults to 0.3; the paper uses 0.2.


@keras.saving.register_keras_serializable(package="video_structure")
def leaky_relu(x):
  """Leaky ReLU with the paper's slope 0.2: `max(x, 0.2 x)`."""
  return tf.nn.leaky_relu(x, alpha=LEAKY_RELU_SLOPE)


def _conv(filters, kernel_size=3, strides=1, weight_decay=1e-4, name=None):
  """A conv with the project's defaults followed by a leaky ReLU (slope 0.2)."""
  return keras.layers.Conv2D(
      filters, kernel_size, strides=strides, padding="same",
      activation=leaky_relu,
      kernel_initializer="he_uniform", bias_initializer="zeros",
      kernel_regularizer=keras.regularizers.L2(weight_decay) if weight_decay else None,
      name=name)


def check_positive_int(name, value, layer):
  if not isinstance(value, int) or isinstance(value, bool) or value < 1:
    raise ValueError(f"{layer}: `{name}` must be a positive integer, got {value!r}.")


class ImageEncoder(keras.layers.Layer):
  """Strided conv encoder from an image down to `output_size x output_size` features.

  A 3x3 conv with `initial_filters` filters plus `layers_per_scale` more at the same width;
  then, until the map is `output_size` wide: double the filters, one stride-2 3x3 conv, and
  `layers_per_scale` stride-1 3x3 convs. For 64x64 input and 32 initial filters the output is
  `[B, 16, 16, 128]`.
  """

  def __init__(self, input_size=64, output_size=16, initial_filters=32, layers_per_scale=1,
               weight_decay=1e-4, **kwargs):
    super().__init__(**kwargs)
    check_positive_int("initial_filters", initial_filters, self.name)
    check_positive_int("output_size", output_size, self.name)
    if layers_per_scale < 0:
      raise ValueError(f"{self.name}: `layers_per_scale` must be >= 0, got {layers_per_scale}.")
    num_levels = 0
    size = input_size
    while size > output_size:
      if size % 2:
        break
      size //= 2
      num_levels += 1
    if size != output_size:
      raise ValueError(
          f"{self.name}: image size {input_size} cannot be halved down to the heatmap size "
          f"{output_size}; expected image_size = heatmap_size * 2**n.")
    self.input_size = input_size
    self.output_size = output_size
    self.initial_filters = initial_filters
    self.layers_per_scale = layers_per_scale
    self.weight_decay = weight_decay
    self.output_filters = initial_filters * 2 ** num_levels

    filters = initial_filters
    self.conv_layers = [_conv(filters, weight_decay=weight_decay, name="conv_0_0")]
    for i in range(layers_per_scale):
      self.conv_layers.append(_conv(filters, weight_decay=weight_decay, name=f"conv_0_{i + 1}"))
    for level in range(1, num_levels + 1):
      filters *= 2
      self.conv_layers.append(
          _conv(filters, strides=2, weight_decay=weight_decay, name=f"conv_{level}_0"))
      for i in range(layers_per_scale):
        self.conv_layers.append(
            _conv(filters, weight_decay=weight_decay, name=f"conv_{level}_{i + 1}"))

  def call(self, images):
    """`[B, H, W, C]` -> `[B, output_size, output_size, output_filters]`."""
    features = images
    for layer in self.conv_layers:
      features = layer(features)
    return features

  def get_config(self):
    config = super().get_config()
    config.update(input_size=self.input_size, output_size=self.output_size,
                  initial_filters=self.initial_filters, layers_per_scale=self.layers_per_scale,
                  weight_decay=self.weight_decay)
    return config


class FrameEncoder(keras.layers.Layer):
  """What the keypoint detector and the CNN-VRNN's feature encoder share: the frame with
  coordinate channels through an `ImageEncoder` (`self.encoder`), and their common settings.
  Subclasses add their head after calling this constructor (weights are created in that order).
  """

  def __init__(self, num_keypoints, image_size=64, heatmap_size=16, initial_filters=32,
               layers_per_scale=1, weight_decay=1e-4, **kwargs):
    super().__init__(**kwargs)
    check_positive_int("num_keypoints", num_keypoints, self.name)
    self.num_keypoints = num_keypoints
    self.image_size = image_size
    self.heatmap_size = heatmap_size
    self.initial_filters = initial_filters
    self.layers_per_scale = layers_per_scale
    self.weight_decay = weight_decay
    self.encoder = ImageEncoder(image_size, heatmap_size, initial_filters, layers_per_scale,
                                weight_decay, name="encoder")

  def encode(self, images):
    """`[B, H, W, 3]` frames -> encoder features `[B, S, S, F]` (float32)."""
    return tf.cast(self.encoder(ops.add_coord_channels(images)), tf.float32)

  def get_config(self):
    config = super().get_config()
    config.update(num_keypoints=self.num_keypoints, image_size=self.image_size,
                  heatmap_size=self.heatmap_size, initial_filters=self.initial_filters,
                  layers_per_scale=self.layers_per_scale, weight_decay=self.weight_decay)
    return config


class KeypointDetector(FrameEncoder):
  """Frame -> K keypoints: coordinate channels, `ImageEncoder`, softplus 1x1 head, expectation.

  Returns both the keypoints `[B, K, 3]` (float32) and the raw non-negative maps
  `[B, S, S, K]` (float32; the sparsity loss penalises their mean).
  """

  def __init__(self, num_keypoints, image_size=64, heatmap_size=16, initial_filters=32,
               layers_per_scale=1, weight_decay=1e-4, heatmap_bias_init=0.0,
               heatmap_init_gain=1.0, **kwargs):
    super().__init__(num_keypoints, image_size, heatmap_size, initial_filters, layers_per_scale,
                     weight_decay, **kwargs)
    self.heatmap_bias_init = heatmap_bias_init
    self.heatmap_init_gain = heatmap_init_gain
    # The head runs in float32 so that the softplus maps and the expectation stay exact under
    # mixed precision.
    self.heatmap_head = keras.layers.Conv2D(
        num_keypoints, 1, padding="same", activation="softplus",
        # Glorot uniform is VarianceScaling(1, fan_avg, uniform); the gain scales its std.
        kernel_initializer=keras.initializers.VarianceScaling(
            heatmap_init_gain ** 2, "fan_avg", "uniform"),
        bias_initializer=keras.initializers.Constant(heatmap_bias_init),
        dtype="float32", name="heatmap_head")

  def call(self, images):
    """`[B, H, W, 3]` frames in [-0.5, 0.5] -> (`[B, K, 3]` keypoints, `[B, S, S, K]` maps)."""
    keypoints, heatmaps, _ = self.detect_with_features(images)
    return keypoints, heatmaps

  def detect_with_features(self, images):
    """As `call`, also returning the encoder's features `[B, S, S, F]` (float32)."""
    features = self.encode(images)
    heatmaps = self.heatmap_head(features)
    return ops.maps_to_keypoints(heatmaps), heatmaps, features

  def get_config(self):
    config = super().get_config()
    config.update(heatmap_bias_init=self.heatmap_bias_init,
                  heatmap_init_gain=self.heatmap_init_gain)
    return config


class KeypointRenderer(keras.layers.Layer):
  """Keypoints -> Gaussian blob maps (no weights); a thin layer around `ops.keypoints_to_maps`.

  `keypoint_width` is in heatmap pixels; the blob's standard deviation in coordinate units is
  `keypoint_width / heatmap_size` (1.5 / 16 = 0.09375 for the paper's settings).
  """

  def __init__(self, heatmap_size=16, keypoint_width=1.5, **kwargs):
    super().__init__(**kwargs)
    if keypoint_width <= 0:
      raise ValueError(f"{self.name}: `keypoint_width` must be > 0, got {keypoint_width}.")
    self.heatmap_size = heatmap_size
    self.keypoint_width = keypoint_width

  def call(self, keypoints, presence_weight=None):
    """`[B, K, 3]` -> `[B, S, S, K]` float32.

    `presence_weight` w in [0, 1] draws each blob with mu' = 1 - w (1 - mu): w = 0 ignores mu
    (a training recipe's presence warm-up); None draws mu as it is (the paper's renderer).
    """
    if presence_weight is not None:
      keypoints = tf.concat(
          [keypoints[..., :2], 1.0 - presence_weight * (1.0 - keypoints[..., 2:])], axis=-1)
    return ops.keypoints_to_maps(keypoints, self.keypoint_width / self.heatmap_size,
                                 self.heatmap_size)

  def get_config(self):
    config = super().get_config()
    config.update(heatmap_size=self.heatmap_size, keypoint_width=self.keypoint_width)
    return config


class ImageReconstructor(keras.layers.Layer):
  """Keypoint maps + first-frame features -> frame (predicts the difference to the first frame).

  Input per frame: `[maps(kp_t) (K), appearance(v_1) (F), maps(kp_1) (K)]` plus the two
  coordinate channels; a 1x1 conv to F filters; per level: halve the filters, bilinear x2
  upsampling with aligned corners, `layers_per_scale` 3x3 convs; a final 1x1 conv to the image
  channels with no activation; the first frame is added (skip connection).
  """

  def __init__(self, image_size=64, heatmap_size=16, num_channels=3, appearance_filters=128,
               layers_per_scale=1, weight_decay=1e-4, **kwargs):
    super().__init__(**kwargs)
    if image_size % heatmap_size or (image_size // heatmap_size) & (image_size // heatmap_size - 1):
      raise ValueError(f"{self.name}: image_size {image_size} must be heatmap_size "
                       f"{heatmap_size} times a power of two.")
    if layers_per_scale < 1:
      raise ValueError(f"{self.name}: `layers_per_scale` must be >= 1 for the reconstructor "
                       f"(at least one conv per upsampling level), got {layers_per_scale}.")
    self.image_size = image_size
    self.heatmap_size = heatmap_size
    self.num_channels = num_channels
    self.appearance_filters = appearance_filters
    self.layers_per_scale = layers_per_scale
    self.weight_decay = weight_decay
    self.num_levels = (image_size // heatmap_size).bit_length() - 1

    filters = appearance_filters
    self.input_projection = _conv(filters, kernel_size=1, weight_decay=weight_decay,
                                  name="input_projection")
    self.level_convs = []
    for level in range(self.num_levels):
      filters //= 2
      if filters < 1:
        raise ValueError(f"{self.name}: appearance_filters {appearance_filters} too small for "
                         f"{self.num_levels} halvings.")
      self.level_convs.append([
          _conv(filters, weight_decay=weight_decay, name=f"conv_{level}_{i}")
          for i in range(layers_per_scale)])
    # The output head runs in float32: it produces the image difference added to v_1.
    self.output_head = keras.layers.Conv2D(
        num_channels, 1, padding="same", activation=None, kernel_initializer="he_uniform",
        kernel_regularizer=keras.regularizers.L2(weight_decay) if weight_decay else None,
        dtype="float32", name="output_head")

  def call(self, maps, appearance_features, first_frame_maps, first_frame):
    """Reconstructs frames.

    Args:
      maps: `[B, S, S, K]` Gaussian maps of the frame's keypoints.
      appearance_features: `[B, S, S, F]` appearance features of the sequence's first frame.
      first_frame_maps: `[B, S, S, K]` Gaussian maps of the first frame's keypoints.
      first_frame: `[B, H, W, C]` first frame, float32 in [-0.5, 0.5].

    Returns:
      `[B, H, W, C]` float32 reconstruction.
    """
    compute_dtype = self.compute_dtype
    features = tf.concat([tf.cast(maps, compute_dtype), tf.cast(appearance_features, compute_dtype),
                          tf.cast(first_frame_maps, compute_dtype)], axis=-1)
    features = self.input_projection(ops.add_coord_channels(features))
    for convs in self.level_convs:
      features = ops.upsample_bilinear_aligned(features, 2)
      for layer in convs:
        features = layer(features)
    difference = self.output_head(tf.cast(features, tf.float32))
    return tf.cast(first_frame, tf.float32) + difference

  def get_config(self):
    config = super().get_config()
    config.update(image_size=self.image_size, heatmap_size=self.heatmap_size,
                  num_channels=self.num_channels, appearance_filters=self.appearance_filters,
                  layers_per_scale=self.layers_per_scale, weight_decay=self.weight_decay)
    return config
