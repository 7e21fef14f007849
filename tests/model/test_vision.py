"""Tests of video_structure/model/vision.py: shapes, conv defaults, the reconstructor's skip
connection, the renderer's presence weight, misconfiguration errors and config round trips. All
networks are tiny (few filters)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from video_structure.model import ops
from video_structure.model import vision


def _encoder_convs(layer):
  return list(layer.conv_layers)


def _reconstructor_convs(layer):
  return [layer.input_projection] + [conv for convs in layer.level_convs for conv in convs]


def _frames(batch, size, seed=0):
  return np.random.default_rng(seed).uniform(-0.5, 0.5, [batch, size, size, 3]).astype(
      np.float32)


# Shapes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("image_size, initial_filters, layers_per_scale, expected", [
    (64, 32, 1, (1, 16, 16, 128)),  # the paper's detector: 32 -> 64 -> 128 filters
    (64, 4, 2, (1, 16, 16, 16)),
    (32, 4, 1, (1, 16, 16, 8)),
    (16, 4, 0, (1, 16, 16, 4)),     # already heatmap-sized: no stride-2 conv
])
def test_image_encoder_output_shape(image_size, initial_filters, layers_per_scale, expected):
  encoder = vision.ImageEncoder(image_size, 16, initial_filters, layers_per_scale)
  features = encoder(_frames(1, image_size))
  assert tuple(features.shape) == expected
  assert encoder.output_filters == expected[-1]


@pytest.mark.parametrize("image_size, layers_per_scale, expected_convs", [
    (64, 1, [(1, 4), (1, 4), (2, 8), (1, 8), (2, 16), (1, 16)]),
    (64, 2, [(1, 4), (1, 4), (1, 4), (2, 8), (1, 8), (1, 8), (2, 16), (1, 16), (1, 16)]),
    (32, 0, [(1, 4), (2, 8)]),
])
def test_image_encoder_layer_structure(image_size, layers_per_scale, expected_convs):
  encoder = vision.ImageEncoder(image_size, 16, 4, layers_per_scale)
  assert [(conv.strides[0], conv.filters) for conv in encoder.conv_layers] == expected_convs
  assert all(conv.kernel_size == (3, 3) and conv.padding == "same"
             for conv in encoder.conv_layers)


@pytest.mark.parametrize("layers_per_scale", [1, 2])
def test_keypoint_detector_outputs(layers_per_scale):
  detector = vision.KeypointDetector(5, image_size=64, initial_filters=4,
                                     layers_per_scale=layers_per_scale)
  keypoints, heatmaps = detector(_frames(2, 64))
  assert tuple(keypoints.shape) == (2, 5, 3) and keypoints.dtype == tf.float32
  assert tuple(heatmaps.shape) == (2, 16, 16, 5) and heatmaps.dtype == tf.float32
  assert np.all(heatmaps.numpy() >= 0.0)  # softplus
  assert np.all(np.abs(keypoints.numpy()[..., :2]) <= 1.0)
  np.testing.assert_allclose(keypoints.numpy()[..., 2].max(axis=-1), 1.0, atol=1e-4)
  # The keypoints are the spatial expectation of the returned maps.
  np.testing.assert_allclose(keypoints.numpy(), ops.maps_to_keypoints(heatmaps).numpy(),
                             rtol=1e-6)


def test_keypoint_detector_sees_coordinate_channels():
  detector = vision.KeypointDetector(3, image_size=32, initial_filters=4)
  detector(_frames(1, 32))
  assert tuple(detector.encoder.conv_layers[0].kernel.shape) == (3, 3, 5, 4)
  assert tuple(detector.heatmap_head.kernel.shape) == (1, 1, 8, 3)


def test_keypoint_detector_head_is_softplus():
  # With a zero kernel the maps are softplus(bias) everywhere: softplus(0) = log 2 and
  # softplus(log(e - 1)) = 1; both keypoints sit at the centre, mu = log 2 / 1.
  detector = vision.KeypointDetector(2, image_size=32, initial_filters=4)
  detector(_frames(1, 32))
  detector.heatmap_head.kernel.assign(tf.zeros_like(detector.heatmap_head.kernel))
  detector.heatmap_head.bias.assign([0.0, np.log(np.e - 1.0)])
  keypoints, heatmaps = detector(_frames(2, 32, seed=1))
  np.testing.assert_allclose(heatmaps.numpy()[..., 0], np.log(2.0), rtol=1e-6)
  np.testing.assert_allclose(heatmaps.numpy()[..., 1], 1.0, rtol=1e-6)
  np.testing.assert_allclose(keypoints.numpy()[..., :2], 0.0, atol=1e-6)
  np.testing.assert_allclose(keypoints.numpy()[:, 0, 2], np.log(2.0), rtol=1e-5)


def test_keypoint_detector_under_mixed_precision_returns_float32():
  keras.mixed_precision.set_global_policy("mixed_bfloat16")  # reset by conftest
  detector = vision.KeypointDetector(3, image_size=32, initial_filters=4)
  keypoints, heatmaps = detector(_frames(1, 32))
  assert detector.encoder.compute_dtype == "bfloat16"
  assert keypoints.dtype == tf.float32 and heatmaps.dtype == tf.float32


def test_keypoint_renderer_matches_ops():
  renderer = vision.KeypointRenderer(heatmap_size=16, keypoint_width=1.5)
  keypoints = np.array([[[0.1, -0.3, 0.8], [-1.0, 1.0, 1.0]]], np.float32)
  maps = renderer(keypoints).numpy()
  assert maps.shape == (1, 16, 16, 2)
  np.testing.assert_array_equal(maps, ops.keypoints_to_maps(keypoints, 0.09375, 16).numpy())


@pytest.mark.parametrize("presence_weight, drawn_mu", [
    (0.0, [1.0, 1.0, 1.0]),      # mu ignored: every blob at full strength
    (0.5, [0.9, 0.5, 1.0]),      # mu' = 1 - 0.5 (1 - mu)
    (1.0, [0.8, 0.0, 1.0]),      # mu as it is
])
def test_keypoint_renderer_presence_weight_blends_mu(presence_weight, drawn_mu):
  renderer = vision.KeypointRenderer(heatmap_size=16, keypoint_width=1.5)
  keypoints = np.array([[[0.1, -0.3, 0.8], [0.5, 0.5, 0.0], [-1.0, 1.0, 1.0]]], np.float32)
  maps = renderer(keypoints, presence_weight=tf.constant(presence_weight)).numpy()
  expected_keypoints = keypoints.copy()
  expected_keypoints[..., 2] = drawn_mu
  np.testing.assert_allclose(
      maps, ops.keypoints_to_maps(expected_keypoints, 0.09375, 16).numpy(), rtol=1e-6, atol=1e-7)
  # The corner keypoint (mu 1) peaks at its pixel with its drawn mu.
  assert maps[0, 0, 0, 2] == pytest.approx(1.0, abs=1e-7)


@pytest.mark.parametrize("image_size, layers_per_scale", [(64, 1), (64, 2), (32, 1)])
def test_image_reconstructor_output_shape(image_size, layers_per_scale):
  reconstructor = vision.ImageReconstructor(image_size, 16, 3, appearance_filters=8,
                                            layers_per_scale=layers_per_scale)
  num_keypoints = 4
  maps = np.random.default_rng(0).uniform(size=[2, 16, 16, num_keypoints]).astype(np.float32)
  appearance = np.random.default_rng(1).normal(size=[2, 16, 16, 8]).astype(np.float32)
  output = reconstructor(maps, appearance, maps, _frames(2, image_size))
  assert tuple(output.shape) == (2, image_size, image_size, 3)
  assert output.dtype == tf.float32
  # Input: [maps K, appearance F, first maps K] + 2 coordinate channels -> 1x1 conv to F.
  assert tuple(reconstructor.input_projection.kernel.shape) == (1, 1, 4 + 8 + 4 + 2, 8)
  assert reconstructor.num_levels == {64: 2, 32: 1}[image_size]


def test_image_reconstructor_uses_aligned_upsampling_once_per_level(monkeypatch):
  calls = []
  original = ops.upsample_bilinear_aligned

  def recording_upsample(images, scale=2):
    calls.append((tuple(images.shape), scale))
    return original(images, scale)

  monkeypatch.setattr(vision.ops, "upsample_bilinear_aligned", recording_upsample)
  reconstructor = vision.ImageReconstructor(64, 16, 3, appearance_filters=8)
  maps = np.zeros([1, 16, 16, 2], np.float32)
  appearance = np.zeros([1, 16, 16, 8], np.float32)
  reconstructor(maps, appearance, maps, _frames(1, 64))  # the first call also builds
  calls.clear()
  reconstructor(maps, appearance, maps, _frames(1, 64))
  assert calls == [((1, 16, 16, 8), 2), ((1, 32, 32, 4), 2)]


def test_image_reconstructor_predicts_the_difference_to_the_first_frame():
  reconstructor = vision.ImageReconstructor(64, 16, 3, appearance_filters=8)
  rng = np.random.default_rng(2)
  maps = rng.uniform(size=[2, 16, 16, 3]).astype(np.float32)
  first_maps = rng.uniform(size=[2, 16, 16, 3]).astype(np.float32)
  appearance = rng.normal(size=[2, 16, 16, 8]).astype(np.float32)
  first_frame = _frames(2, 64, seed=3)
  before = reconstructor(maps, appearance, first_maps, first_frame).numpy()
  assert not np.allclose(before, first_frame)  # the random head adds something

  head = reconstructor.output_head
  head.kernel.assign(tf.zeros_like(head.kernel))
  head.bias.assign(tf.zeros_like(head.bias))
  output = reconstructor(maps, appearance, first_maps, first_frame).numpy()
  np.testing.assert_array_equal(output, first_frame)

  # A constant head bias is added to every pixel of the first frame.
  head.bias.assign([0.1, -0.2, 0.3])
  output = reconstructor(maps, appearance, first_maps, first_frame).numpy()
  np.testing.assert_allclose(output, first_frame + np.array([0.1, -0.2, 0.3], np.float32),
                             rtol=1e-6, atol=1e-7)


# Conv defaults --------------------------------------------------------------------------------

def test_leaky_relu_slope_is_0_2():
  assert vision.LEAKY_RELU_SLOPE == 0.2
  values = vision.leaky_relu(tf.constant([-2.0, -1.0, 0.0, 3.0])).numpy()
  np.testing.assert_allclose(values, [-0.4, -0.2, 0.0, 3.0], rtol=1e-7)


def _all_hidden_convs():
  detector = vision.KeypointDetector(3, image_size=32, initial_filters=4, layers_per_scale=2)
  reconstructor = vision.ImageReconstructor(32, 16, 3, appearance_filters=8)
  return _encoder_convs(detector.encoder) + _reconstructor_convs(reconstructor)


def test_hidden_convs_use_leaky_relu_0_2():
  for conv in _all_hidden_convs():
    np.testing.assert_allclose(conv.activation(tf.constant([-1.0, 1.0])).numpy(), [-0.2, 1.0],
                               err_msg=conv.name)


def test_hidden_convs_have_he_uniform_l2_and_zero_bias():
  for conv in _all_hidden_convs():
    assert isinstance(conv.kernel_initializer, keras.initializers.HeUniform), conv.name
    assert isinstance(conv.bias_initializer, keras.initializers.Zeros), conv.name
    assert isinstance(conv.kernel_regularizer, keras.regularizers.L2), conv.name
    assert conv.kernel_regularizer.l2 == pytest.approx(1e-4), conv.name
    assert conv.bias_regularizer is None, conv.name


def test_heatmap_head_has_glorot_init_and_no_regulariser():
  head = vision.KeypointDetector(3, image_size=32, initial_filters=4).heatmap_head
  # Glorot uniform is VarianceScaling(scale=1, mode="fan_avg", distribution="uniform").
  init = head.kernel_initializer
  assert isinstance(init, keras.initializers.VarianceScaling)
  assert (init.scale, init.mode, init.distribution) == (1.0, "fan_avg", "uniform")
  assert head.kernel_regularizer is None
  assert head.kernel_size == (1, 1)


@pytest.mark.parametrize("gain", [1.0, 10.0])
def test_heatmap_init_gain_scales_the_kernel_std(gain):
  detector = vision.KeypointDetector(3, image_size=32, initial_filters=64, heatmap_init_gain=gain)
  detector(tf.zeros([1, 32, 32, 3]))
  fan_in, fan_out = 128, 3  # 1x1 head on 2 * 64 encoder filters.
  expected_std = gain * np.sqrt(2.0 / (fan_in + fan_out))
  assert np.std(detector.heatmap_head.kernel.numpy()) == pytest.approx(expected_std, rel=0.15)


def test_reconstructor_output_head_is_linear_1x1():
  head = vision.ImageReconstructor(32, 16, 3, appearance_filters=8).output_head
  assert head.kernel_size == (1, 1) and head.filters == 3
  assert head.activation(tf.constant(-1.0)).numpy() == -1.0  # no activation


def test_detector_regularisation_loss_is_1e_4_times_sum_of_squared_conv_kernels():
  detector = vision.KeypointDetector(3, image_size=32, initial_filters=4)
  detector(_frames(1, 32))
  expected = 1e-4 * sum(np.sum(np.square(conv.kernel.numpy()))
                        for conv in detector.encoder.conv_layers)
  assert len(detector.losses) == len(detector.encoder.conv_layers)  # none for the head
  np.testing.assert_allclose(float(sum(detector.losses)), expected, rtol=1e-5)


@pytest.mark.parametrize("weight_decay", [0.0, None])
def test_weight_decay_can_be_switched_off(weight_decay):
  encoder = vision.ImageEncoder(32, 16, 4, 1, weight_decay=weight_decay)
  assert all(conv.kernel_regularizer is None for conv in encoder.conv_layers)


# Misconfiguration -----------------------------------------------------------------------------

@pytest.mark.parametrize("make, match", [
    (lambda: vision.ImageEncoder(60, 16, 4, 1), r"image size 60.*heatmap size 16"),
    (lambda: vision.ImageEncoder(48, 16, 4, 1), r"image size 48"),
    (lambda: vision.ImageEncoder(8, 16, 4, 1), r"image size 8"),
    (lambda: vision.ImageEncoder(64, 16, 0, 1), r"`initial_filters`"),
    (lambda: vision.ImageEncoder(64, 16, 4, -1), r"`layers_per_scale`"),
    (lambda: vision.KeypointDetector(0, image_size=64, initial_filters=4), r"`num_keypoints`"),
    (lambda: vision.KeypointDetector(-2, image_size=64, initial_filters=4), r"`num_keypoints`"),
    (lambda: vision.KeypointDetector(2.5, image_size=64, initial_filters=4), r"`num_keypoints`"),
    (lambda: vision.KeypointDetector(4, image_size=60, initial_filters=4), r"image size 60"),
    (lambda: vision.KeypointRenderer(16, keypoint_width=0.0), r"`keypoint_width`"),
    (lambda: vision.KeypointRenderer(16, keypoint_width=-1.5), r"`keypoint_width`"),
    (lambda: vision.ImageReconstructor(64, 16, 3, 8, layers_per_scale=0), r"`layers_per_scale`"),
    (lambda: vision.ImageReconstructor(48, 16, 3, 8), r"image_size 48.*heatmap_size 16"),
    (lambda: vision.ImageReconstructor(60, 16, 3, 8), r"image_size 60"),
    (lambda: vision.ImageReconstructor(64, 16, 3, 2), r"appearance_filters 2"),
], ids=["enc_60", "enc_48", "enc_8", "enc_filters_0", "enc_lps_-1", "det_k_0", "det_k_-2",
        "det_k_float", "det_60", "render_w_0", "render_w_neg", "rec_lps_0", "rec_48", "rec_60",
        "rec_filters_2"])
def test_misconfiguration_raises_naming_the_argument(make, match):
  with pytest.raises(ValueError, match=match):
    make()


# Serialisation --------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: vision.ImageEncoder(32, 16, 4, 2, weight_decay=2e-4, name="enc"),
    lambda: vision.KeypointDetector(5, image_size=32, heatmap_size=16, initial_filters=4,
                                    layers_per_scale=2, weight_decay=0.0, heatmap_bias_init=-1.0),
    lambda: vision.KeypointRenderer(heatmap_size=8, keypoint_width=2.5),
    lambda: vision.ImageReconstructor(32, 16, 1, appearance_filters=8, layers_per_scale=2,
                                      weight_decay=3e-4),
], ids=["encoder", "detector", "renderer", "reconstructor"])
def test_get_config_round_trip(make):
  layer = make()
  config = layer.get_config()
  rebuilt = type(layer).from_config(config)
  assert rebuilt.get_config() == config


def test_leaky_relu_is_serialisable():
  name = keras.saving.get_registered_name(vision.leaky_relu)
  assert keras.saving.get_registered_object(name) is vision.leaky_relu
