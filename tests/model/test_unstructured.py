"""Tests of video_structure/model/unstructured.py: the CNN-VRNN baseline's feature encoder and
learned renderer (shapes, range, linearity, misconfiguration, config round trips)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from video_structure.model import unstructured


def test_feature_encoder_and_renderer_shapes_and_range():
  keras.utils.set_random_seed(0)
  encoder = unstructured.FeatureEncoder(5, 64, 16, initial_filters=4)
  features, heatmaps = encoder(tf.random.uniform([3, 64, 64, 3], -0.5, 0.5))
  assert features.shape == (3, 5, 3) and features.dtype == tf.float32 and heatmaps is None
  assert float(tf.reduce_max(tf.abs(features))) <= 1.0  # tanh head
  # The head sees the flattened 16 x 16 x 16 encoder output (4 filters doubled twice).
  assert tuple(encoder.feature_head.kernel.shape) == (16 * 16 * 16, 15)
  renderer = unstructured.FeatureRenderer(5, 16)
  maps = renderer(features)
  assert maps.shape == (3, 16, 16, 5) and maps.dtype == tf.float32
  # The presence weight is a Gaussian-renderer setting: ignored here.
  np.testing.assert_array_equal(renderer(features, presence_weight=tf.constant(0.5)).numpy(),
                                maps.numpy())


def test_feature_renderer_is_affine_in_the_features():
  keras.utils.set_random_seed(1)
  renderer = unstructured.FeatureRenderer(2, 4)
  a = tf.random.uniform([1, 2, 3])
  b = tf.random.uniform([1, 2, 3])
  zero = renderer(tf.zeros([1, 2, 3]))
  np.testing.assert_allclose(renderer(a + b) - zero, (renderer(a) - zero) + (renderer(b) - zero),
                             atol=1e-5)
  # At zero features the maps are the projection's bias (zero at initialisation).
  np.testing.assert_array_equal(zero.numpy(), 0.0)


@pytest.mark.parametrize("make, match", [
    (lambda: unstructured.FeatureEncoder(0, 64, 16, 4), r"`num_keypoints`"),
    (lambda: unstructured.FeatureEncoder(2.5, 64, 16, 4), r"`num_keypoints`"),
    (lambda: unstructured.FeatureEncoder(3, 60, 16, 4), r"image size 60"),
    (lambda: unstructured.FeatureRenderer(0, 16), r"`num_keypoints`"),
    (lambda: unstructured.FeatureRenderer(3, 0), r"`heatmap_size`"),
], ids=["enc_k_0", "enc_k_float", "enc_60", "render_k_0", "render_size_0"])
def test_misconfiguration_raises_naming_the_argument(make, match):
  with pytest.raises(ValueError, match=match):
    make()


@pytest.mark.parametrize("make", [
    lambda: unstructured.FeatureEncoder(5, 32, 16, initial_filters=4, layers_per_scale=2,
                                        weight_decay=0.0, name="features"),
    lambda: unstructured.FeatureRenderer(5, heatmap_size=8, name="renderer"),
], ids=["encoder", "renderer"])
def test_get_config_round_trip(make):
  layer = make()
  config = layer.get_config()
  assert type(layer).from_config(config).get_config() == config
