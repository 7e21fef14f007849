"""The paper's model variants (Struct-VRNN, no best-of-many, Struct-RNN, CNN-VRNN, supervised,
loss ablations): one model class, selected by config; each builds and trains."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from video_structure import config as config_lib
from video_structure import losses
from video_structure import model as model_lib
from video_structure import vision

from tests.test_model import moving_squares
from tests.test_model import tiny_config

NUM_OBJECTS = 3


def _windows(config, with_positions):
  frames = moving_squares()
  window = {"image": tf.constant(frames)}
  if with_positions:
    # Fixed targets (learnable from any frames): the supervised loss can be driven down.
    targets = np.array([[0.5, -0.5], [-0.5, 0.5], [0.0, 0.5]], np.float32)[:NUM_OBJECTS]
    window["true_object_pos"] = tf.constant(np.broadcast_to(
        targets, frames.shape[:2] + (NUM_OBJECTS, 2)))
  return tf.data.Dataset.from_tensors(window).repeat()


# Config. ------------------------------------------------------------------------------------

def test_every_variant_gives_a_valid_config():
  for name in config_lib.MODEL_VARIANTS:
    config = config_lib.get_config("basketball", "cpu", **config_lib.variant_overrides(name))
    assert config.validate() is config


@pytest.mark.parametrize("name, field, value", [
    ("struct_vrnn_no_bom", "num_samples", 1),
    ("struct_rnn", "dynamics", "rnn"),
    ("cnn_vrnn", "representation", "features"),
    ("struct_vrnn_supervised", "supervised_weight", 1.0),
    ("cnn_vrnn_supervised", "representation", "features"),
    ("struct_vrnn_no_separation", "separation_weight", 0.0),
    ("struct_vrnn_no_sparsity", "sparsity_weight", 0.0),
])
def test_variant_overrides(name, field, value):
  assert config_lib.variant_overrides(name)[field] == value


def test_unknown_variant_raises():
  with pytest.raises(ValueError, match="Unknown model variant 'svg'"):
    config_lib.variant_overrides("svg")


@pytest.mark.parametrize("field, value, message", [
    ("representation", "pixels", "`representation` must be 'keypoints' or 'features'"),
    ("supervised_weight", -1.0, "`supervised_weight` must be >= 0"),
])
def test_bad_variant_fields_raise(field, value, message):
  with pytest.raises(ValueError, match=message):
    config_lib.get_config("basketball", "cpu", **{field: value})


# Layers. ------------------------------------------------------------------------------------

def test_feature_encoder_and_renderer_shapes_and_range():
  encoder = vision.FeatureEncoder(5, 64, 16, initial_filters=4)
  features, heatmaps = encoder(tf.random.uniform([3, 64, 64, 3], -0.5, 0.5))
  assert features.shape == (3, 5, 3) and heatmaps is None
  assert float(tf.reduce_max(tf.abs(features))) <= 1.0
  maps = vision.FeatureRenderer(5, 16)(features, keypoint_width=1.0, presence_weight=0.5)
  assert maps.shape == (3, 16, 16, 5)


def test_feature_renderer_is_linear_in_the_features():
  renderer = vision.FeatureRenderer(2, 4)
  a = tf.random.uniform([1, 2, 3])
  b = tf.random.uniform([1, 2, 3])
  zero = renderer(tf.zeros([1, 2, 3]))
  np.testing.assert_allclose(renderer(a + b) - zero, (renderer(a) - zero) + (renderer(b) - zero),
                             atol=1e-5)


# Supervised loss. -----------------------------------------------------------------------------

def test_supervised_position_loss_by_hand():
  # Two keypoints, one object; only the first keypoint's (x, y) counts, mu is ignored.
  representation = tf.constant([[[[0.5, -0.5, 0.9], [0.0, 0.0, 0.1]]]])  # [1, 1, 2, 3]
  positions = tf.constant([[[[0.0, 0.0]]]])  # [1, 1, 1, 2]
  assert float(losses.supervised_position_loss(representation, positions)) == pytest.approx(0.5)


def test_supervised_position_loss_sums_objects_and_averages_batch_and_time():
  representation = tf.zeros([2, 3, 4, 3])
  positions = tf.ones([2, 3, 2, 2])  # 2 objects x 2 coordinates, each off by 1.
  assert float(losses.supervised_position_loss(representation, positions)) == pytest.approx(4.0)


def test_supervised_position_loss_needs_enough_keypoints():
  with pytest.raises(ValueError, match="3 objects need at least as many keypoints, got K = 2"):
    losses.supervised_position_loss(tf.zeros([1, 1, 2, 3]), tf.zeros([1, 1, 3, 2]))


# Building and training every variant. --------------------------------------------------------

# One variant per distinct code path (the loss ablations and no-BoM only change numbers that
# other tests cover: num_samples = 1, separation / sparsity weights of 0).
@pytest.mark.parametrize("name", ["struct_vrnn", "struct_rnn", "cnn_vrnn",
                                  "struct_vrnn_supervised", "cnn_vrnn_supervised"])
def test_every_variant_builds_and_trains(name):
  keras.mixed_precision.set_global_policy("float32")
  config = tiny_config(**config_lib.variant_overrides(name))
  model = model_lib.build_model(config)
  history = model.fit(_windows(config, config.supervised_weight > 0), steps_per_epoch=3,
                      epochs=1, verbose=0).history
  assert int(model.optimizer.iterations.numpy()) == 3
  assert np.isfinite(history["loss"][-1])
  if config.representation == "features":
    # No heatmaps, no coordinates: the keypoint-only losses are off.
    assert history["sparsity_loss"][-1] == 0.0 and history["separation_loss"][-1] == 0.0
  if config.supervised_weight:
    assert history["supervised_loss"][-1] > 0.0
  else:
    assert history["supervised_loss"][-1] == 0.0
  # The shared inference API works for every variant.
  frames = tf.constant(moving_squares()[:, :8])
  out = model.predict_future(frames, 3, num_samples=2)
  assert out["keypoints"].shape == (2, 2, 11, config.num_keypoints, 3)
  assert out["frames"].shape == (2, 2, 11, 64, 64, 3)


def test_supervised_variant_without_positions_raises():
  config = tiny_config(supervised_weight=1.0)
  model = model_lib.build_model(config)
  with pytest.raises(ValueError, match="needs `true_object_pos` in its training data"):
    model.fit(_windows(config, False), steps_per_epoch=1, epochs=1, verbose=0)


def test_supervised_training_pulls_the_keypoints_to_the_positions():
  """With a large supervised weight, the first keypoints move towards the given positions."""
  config = tiny_config(supervised_weight=100.0, learning_rate=5e-3)
  model = model_lib.build_model(config)
  dataset = _windows(config, True)
  window = next(iter(dataset))
  def error():
    keypoints = model.detect(window["image"])[0]
    return float(losses.supervised_position_loss(keypoints, window["true_object_pos"]))
  before = error()
  model.fit(dataset, steps_per_epoch=25, epochs=1, verbose=0)
  assert error() < 0.5 * before


def test_example_images_drive_an_action_conditional_model_with_its_actions():
  """The TensorBoard example figure of an action-conditional model (DMCS) uses the window's
  actions; without them the model refuses to predict."""
  from video_structure import training
  config = tiny_config(action_size=2)
  model = model_lib.build_model(config)
  frames = tf.constant(moving_squares())
  actions = tf.random.uniform([frames.shape[0], frames.shape[1], 2], -1, 1)
  figure = training.example_images(model, frames, actions=actions)
  assert figure.dtype == np.uint8 and figure.ndim == 3 and figure.shape[-1] == 3
  with pytest.raises(ValueError, match="action-conditional"):
    training.example_images(model, frames)
