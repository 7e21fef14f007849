"""The paper's model variants (Struct-VRNN, no best-of-many, Struct-RNN, CNN-VRNN, supervised,
loss ablations): one model class, selected by config (video_structure/model/config.py
MODEL_VARIANTS); each builds, runs and computes its losses, and every distinct graph trains."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from tests.model.test_struct_vrnn import tiny_config
from video_structure.model import config as config_lib
from video_structure.model import losses
from video_structure.model import struct_vrnn
from video_structure.training import builder
from video_structure.training import figures

NUM_OBJECTS = 3
KEYPOINT_ONLY_LOSSES = ("separation", "sparsity")


def _window(with_positions):
  frames = helpers.moving_squares()
  window = {"image": tf.constant(frames)}
  if with_positions:
    # Fixed targets (learnable from any frames): the supervised loss can be driven down.
    targets = np.array([[0.5, -0.5], [-0.5, 0.5], [0.0, 0.5]], np.float32)[:NUM_OBJECTS]
    window["true_object_pos"] = tf.constant(np.broadcast_to(
        targets, frames.shape[:2] + (NUM_OBJECTS, 2)))
  return window


def _windows(with_positions):
  return tf.data.Dataset.from_tensors(_window(with_positions)).repeat()


# Config. ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset", sorted(config_lib.PAPER_PRESETS))
@pytest.mark.parametrize("name", sorted(config_lib.MODEL_VARIANTS))
def test_every_variant_gives_a_valid_config(dataset, name):
  config = config_lib.paper_config(dataset, **config_lib.variant_overrides(name))
  assert config.validate() is config
  for field, value in config_lib.variant_overrides(name).items():
    assert getattr(config, field) == value


VARIANT_OVERRIDES = [
    ("struct_vrnn", {}),
    ("struct_vrnn_no_bom", dict(num_samples=1)),
    ("struct_rnn", dict(dynamics="rnn", num_samples=1)),
    ("cnn_vrnn", dict(representation="features")),
    ("struct_vrnn_supervised", dict(supervised_weight=1.0)),
    ("cnn_vrnn_supervised", dict(representation="features", supervised_weight=1.0)),
    ("struct_vrnn_no_separation", dict(separation_weight=0.0)),
    ("struct_vrnn_no_sparsity", dict(sparsity_weight=0.0)),
]


@pytest.mark.parametrize("name, expected", VARIANT_OVERRIDES)
def test_variant_overrides(name, expected):
  assert config_lib.variant_overrides(name) == expected


def test_every_variant_has_an_overrides_case():
  assert set(config_lib.MODEL_VARIANTS) == {name for name, _ in VARIANT_OVERRIDES}


def test_variant_overrides_are_a_copy():
  config_lib.variant_overrides("struct_rnn")["dynamics"] = "vrnn"
  assert config_lib.MODEL_VARIANTS["struct_rnn"]["dynamics"] == "rnn"


def test_unknown_variant_raises():
  with pytest.raises(ValueError, match="Unknown model variant 'svg'"):
    config_lib.variant_overrides("svg")


@pytest.mark.parametrize("field, value, message", [
    ("representation", "pixels", "`representation` must be 'keypoints' or 'features'"),
    ("supervised_weight", -1.0, "`supervised_weight` must be >= 0"),
    ("dynamics", "lstm", "`dynamics` must be 'vrnn' or 'rnn'"),
])
def test_bad_variant_fields_raise(field, value, message):
  with pytest.raises(ValueError, match=message):
    config_lib.paper_config("basketball", **{field: value})


# Forward pass and loss of every variant (eager). ---------------------------------------------

@pytest.mark.parametrize("name", sorted(config_lib.MODEL_VARIANTS))
def test_every_variant_runs_forward_and_computes_its_losses(name):
  overrides = config_lib.variant_overrides(name)
  model = builder.build_model(tiny_config(**overrides))
  config = model.config
  window = _window(config.supervised_weight > 0)
  outputs = model(window["image"])
  shape = (2, 16, config.num_keypoints, 3)
  assert outputs["keypoints"].shape == shape and outputs["decoded_keypoints"].shape == shape
  assert outputs["reconstruction"].shape == (2, 16, 64, 64, 3)
  loss_terms, _ = model.compute_losses(window["image"], training=True,
                                       seed=tf.constant([1, 2], tf.int32),
                                       true_positions=window.get("true_object_pos"))
  assert set(loss_terms) == set(struct_vrnn.LOSS_NAMES) | {"total"}
  for term, value in loss_terms.items():
    assert value.dtype == tf.float32 and np.isfinite(value.numpy()), term
  assert float(loss_terms["total"]) == pytest.approx(
      sum(float(v) for term, v in loss_terms.items() if term != "total"), rel=1e-6)
  for term in ("image", "keypoint", "weight_decay"):
    assert float(loss_terms[term]) > 0.0, term
  # At step 0 the KL weight is 0 (annealing), whatever the variant.
  assert float(loss_terms["kl"]) == 0.0
  zero_terms = {"supervised"} if not config.supervised_weight else set()
  if config.representation == "features":
    zero_terms |= set(KEYPOINT_ONLY_LOSSES)  # No heatmaps, no coordinates.
  zero_terms |= {term for term in KEYPOINT_ONLY_LOSSES if not getattr(config, f"{term}_weight")}
  for term in KEYPOINT_ONLY_LOSSES + ("supervised",):
    assert (float(loss_terms[term]) == 0.0) == (term in zero_terms), term
  if config.supervised_weight:
    expected = config.supervised_weight * losses.supervised_position_loss(
        model.detect(window["image"])[0], window["true_object_pos"])
    assert float(loss_terms["supervised"]) == pytest.approx(float(expected), rel=1e-6)
  # The shared inference API works for every variant.
  out = model.predict_future(window["image"][:, :8], 3, num_samples=2)
  assert out["keypoints"].shape == (2, 2, 11, config.num_keypoints, 3)
  assert out["frames"].shape == (2, 2, 11, 64, 64, 3)


# Training (traced train steps). ------------------------------------------------------------------

# The graphs not trained elsewhere: Struct-VRNN trains in test_struct_vrnn.py (`trained`) and
# its supervised variant below; the ablations and no-BoM only change numbers of that graph.
@pytest.mark.parametrize("name", ["struct_rnn", "cnn_vrnn_supervised"])
def test_variant_trains(name):
  keras.mixed_precision.set_global_policy("float32")
  model = builder.build_model(tiny_config(**config_lib.variant_overrides(name)))
  config = model.config
  history = model.fit(_windows(config.supervised_weight > 0), steps_per_epoch=2, epochs=1,
                      verbose=0).history
  assert int(model.optimizer.iterations.numpy()) == 2
  assert set(history) == {"loss"} | {f"{term}_loss" for term in struct_vrnn.LOSS_NAMES}
  for term, values in history.items():
    assert np.all(np.isfinite(values)), term
  if config.dynamics == "rnn":
    assert history["kl_loss"] == [0.0]  # No latent, no KL.
  if config.representation == "features":
    assert history["sparsity_loss"][-1] == 0.0 and history["separation_loss"][-1] == 0.0
  assert (history["supervised_loss"][-1] > 0.0) == (config.supervised_weight > 0)


def test_supervised_variant_without_positions_raises():
  model = builder.build_model(tiny_config(supervised_weight=1.0))
  with pytest.raises(ValueError, match="needs `true_object_pos` in its training data"):
    model.compute_losses(_window(False)["image"])


def test_supervised_training_pulls_the_keypoints_to_the_positions():
  """With a large supervised weight, the first keypoints move towards the given positions."""
  model = builder.build_model(tiny_config(supervised_weight=100.0, learning_rate=5e-3))
  dataset = _windows(True)
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
  model = builder.build_model(tiny_config(action_size=2))
  frames = tf.constant(helpers.moving_squares())
  actions = tf.random.uniform([frames.shape[0], frames.shape[1], 2], -1, 1)
  figure = figures.example_images(model, frames, actions=actions)
  assert figure.dtype == np.uint8 and figure.ndim == 3 and figure.shape[-1] == 3
  with pytest.raises(ValueError, match="action-conditional"):
    figures.example_images(model, frames)
