"""The CNN-VRNN baseline's representation (paper Sec. 5): an unstructured feature vector in
place of the keypoint bottleneck, with a learned renderer; shaped like K keypoints `[B, K, 3]`
so that dynamics, losses and evaluation are shared with Struct-VRNN.
"""

import keras
import tensorflow as tf

from video_structure.model import vision


class FeatureEncoder(vision.FrameEncoder):
  """Frame -> unstructured representation: the CNN-VRNN baseline's counterpart of the detector.

  Coordinate channels, `ImageEncoder`, flatten, `Dense(3K, tanh)`, reshaped to `[B, K, 3]`, so
  that the dynamics, losses and evaluation treat it exactly like K keypoints (paper Sec. 5: a
  representation of 3K elements, at least the capacity of the keypoints) but without any
  spatial structure. tanh keeps it in the dynamics decoder's output range [-1, 1].
  """

  def __init__(self, num_keypoints, image_size=64, heatmap_size=16, initial_filters=32,
               layers_per_scale=1, weight_decay=1e-4, **kwargs):
    super().__init__(num_keypoints, image_size, heatmap_size, initial_filters, layers_per_scale,
                     weight_decay, **kwargs)
    self.feature_head = keras.layers.Dense(
        3 * num_keypoints, activation="tanh", kernel_initializer="glorot_uniform",
        dtype="float32", name="feature_head")

  def call(self, images):
    """`[B, H, W, 3]` frames -> (`[B, K, 3]` features in [-1, 1], None: no heatmaps)."""
    features = self.encode(images)
    flat = tf.reshape(features, [tf.shape(features)[0], -1])
    return tf.reshape(self.feature_head(flat), [-1, self.num_keypoints, 3]), None


class FeatureRenderer(keras.layers.Layer):
  """Unstructured representation -> `[B, S, S, K]` maps with a learned dense projection.

  The CNN-VRNN's counterpart of `KeypointRenderer`: the reconstructor receives maps of the
  same shape, but they are an arbitrary learned function of the 3K features instead of
  Gaussian blobs at keypoint positions. `call` accepts (and ignores) the renderer's presence
  argument so that the model's code path is shared.
  """

  def __init__(self, num_keypoints, heatmap_size=16, **kwargs):
    super().__init__(**kwargs)
    vision.check_positive_int("num_keypoints", num_keypoints, self.name)
    vision.check_positive_int("heatmap_size", heatmap_size, self.name)
    self.num_keypoints = num_keypoints
    self.heatmap_size = heatmap_size
    self.projection = keras.layers.Dense(heatmap_size * heatmap_size * num_keypoints,
                                         kernel_initializer="he_uniform", dtype="float32",
                                         name="projection")

  def call(self, features, presence_weight=None):
    """`[B, K, 3]` -> `[B, S, S, K]` float32."""
    del presence_weight  # A Gaussian-renderer setting; no meaning here.
    flat = tf.reshape(tf.cast(features, tf.float32), [-1, 3 * self.num_keypoints])
    size = self.heatmap_size
    return tf.reshape(self.projection(flat), [-1, size, size, self.num_keypoints])

  def get_config(self):
    config = super().get_config()
    config.update(num_keypoints=self.num_keypoints, heatmap_size=self.heatmap_size)
    return config
