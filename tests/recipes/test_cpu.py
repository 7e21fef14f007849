"""Tests of video_structure/recipes/cpu.py: the CPU recipe as a plug-in of `StructVRNN` (detector
initialisation, warm-up schedules, loss terms, the foreground-colour decoder, serialisation with
the model). The pure loss functions: test_losses.py; re-seeding: test_reseeding.py."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from video_structure.model import config as config_lib
from video_structure.model import struct_vrnn
from video_structure.recipes import cpu
from video_structure.recipes import losses
from video_structure.recipes import settings as recipe_settings
from video_structure.training import builder

RECIPE_LOSS_NAMES = ("moving_pixels", "foreground_attention", "foreground_colour")


def _model_config(**overrides):
  return helpers.tiny_config(**overrides).model


def _recipe(model_config=None, **settings):
  """A built CpuRecipe on its own (all parts off unless given)."""
  keras.utils.set_random_seed(0)
  recipe = cpu.CpuRecipe(recipe_settings.CpuRecipeConfig(**settings),
                         model_config or _model_config())
  recipe.build()
  return recipe


def _inputs(seed=0):
  """Frames, raw heatmaps, detector features and a reconstruction of the tiny model's sizes."""
  rng = np.random.default_rng(seed)
  frames = helpers.moving_squares()
  heatmaps = rng.uniform(0, 2, [2, 16, 16, 16, 4]).astype(np.float32)
  features = rng.normal(size=[2, 16, 16, 16, 16]).astype(np.float32)
  reconstruction = frames + rng.normal(scale=0.1, size=frames.shape).astype(np.float32)
  return frames, heatmaps, features, reconstruction


# Settings and parts ---------------------------------------------------------------------------

def test_part_options_are_the_detector_initialisation():
  settings = helpers.tiny_config().recipe
  expected = dict(heatmap_bias_init=-4.0, heatmap_init_gain=10.0)
  assert cpu.CpuRecipe.part_options(settings) == expected
  assert cpu.CpuRecipe.part_options(settings.to_dict()) == expected
  assert cpu.CpuRecipe.part_options({}) == dict(heatmap_bias_init=0.0, heatmap_init_gain=1.0)


def test_the_model_is_built_with_the_recipes_detector_initialisation():
  model = builder.build_model(helpers.tiny_config(heatmap_bias_init=-3.0))
  head = model.keypoint_detector.heatmap_head
  np.testing.assert_array_equal(head.bias.numpy(), -3.0)
  assert (head.kernel_initializer.scale, head.kernel_initializer.mode) == (100.0, "fan_avg")
  assert isinstance(model.recipe, cpu.CpuRecipe)
  assert model.recipe.settings == helpers.tiny_config(heatmap_bias_init=-3.0).recipe
  # The recipe's loss terms are tracked after the image loss, in their order.
  assert list(model.loss_trackers) == (["image"] + list(RECIPE_LOSS_NAMES)
                                       + list(struct_vrnn.LOSS_NAMES[1:]) + ["total"])


@pytest.mark.parametrize("settings, match", [
    ({"moving_pixel_weight": -1.0}, r"recipe: `moving_pixel_weight` must be >= 0"),
    ({"foreground_threshold": float("nan")}, r"`foreground_threshold` must be a finite number"),
    ({"heatmap_init_gain": 0.0}, r"`heatmap_init_gain` must be > 0"),
    ({"reseed_every_steps": 2.5}, r"`reseed_every_steps` must be of type int"),
    ({"match_lighting": 1}, r"`match_lighting` must be of type bool"),
    ({"concentration_weight": 1.0}, r"unknown CPU-recipe setting\(s\) \['concentration_weight'\]"),
])
def test_bad_settings_raise(settings, match):
  with pytest.raises(ValueError, match=match):
    cpu.CpuRecipe(settings, _model_config())
  if "concentration_weight" in settings:
    with pytest.raises(ValueError, match=match):
      cpu.CpuRecipe.part_options(settings)


@pytest.mark.parametrize("representation, weight, has_decoder", [
    ("keypoints", 1.0, True), ("keypoints", 0.0, False), ("features", 1.0, False)])
def test_colour_decoder_only_for_keypoints_with_a_weight(representation, weight, has_decoder):
  recipe = _recipe(_model_config(representation=representation),
                   foreground_colour_weight=weight)
  assert (recipe.foreground_colour_decoder is not None) == has_decoder
  assert recipe.needs_detector_features == has_decoder
  if has_decoder:
    # A 1x1 conv from the detector encoder's 16 features to the 4 x 4 pixels x 3 colours of a
    # heatmap cell.
    assert tuple(recipe.foreground_colour_decoder.kernel.shape) == (1, 1, 16, 48)
  assert len(recipe.weights) == (2 if has_decoder else 0)


def test_reseeds_until_the_last_event():
  recipe = _recipe(reseed_every_steps=100, reseed_until_step=700)
  assert [recipe.reseeds(step) for step in (0, 699, 700, 1000)] == [True, True, False, False]
  assert not _recipe(reseed_every_steps=0, reseed_until_step=700).reseeds(0)
  assert not _recipe(_model_config(representation="features"), reseed_every_steps=100,
                     reseed_until_step=700).reseeds(0)


# Schedules ------------------------------------------------------------------------------------

@pytest.mark.parametrize("step, sparsity, presence", [
    (0, 0.0, 0.0), (150, 0.1 * 150 / 400, 0.5), (300, 0.1 * 300 / 400, 1.0), (400, 0.1, 1.0),
    (5000, 0.1, 1.0)])
def test_schedule_warm_ups(step, sparsity, presence):
  recipe = _recipe(sparsity_warmup_steps=400, presence_warmup_steps=300)
  paper = {"kl_weight": 0.25, "sparsity_weight": 0.1}
  schedule = recipe.schedule(step, paper)
  assert set(schedule) == {"kl_weight", "sparsity_weight", "presence_weight"}
  assert schedule["kl_weight"] == 0.25  # The paper's entries are kept...
  assert float(schedule["sparsity_weight"]) == pytest.approx(sparsity, rel=1e-6, abs=1e-9)
  assert float(schedule["presence_weight"]) == pytest.approx(presence, rel=1e-6, abs=1e-9)
  assert paper == {"kl_weight": 0.25, "sparsity_weight": 0.1}  # ...and not changed in place.


# Loss terms -----------------------------------------------------------------------------------

@pytest.mark.parametrize("weight, lighting", [(0.0, False), (5.0, False), (5.0, True)])
def test_moving_pixel_term_is_its_weight_times_the_loss(weight, lighting):
  recipe = _recipe(moving_pixel_weight=weight, moving_pixel_threshold=0.2,
                   match_lighting=lighting)
  frames, heatmaps, _, reconstruction = _inputs()
  terms = recipe.loss_terms(frames, heatmaps, None, reconstruction)
  assert set(terms) == set(RECIPE_LOSS_NAMES)
  expected = weight * float(losses.moving_pixel_loss(reconstruction, frames, 0.2, lighting))
  assert float(terms["moving_pixels"]) == pytest.approx(expected, rel=1e-6)
  assert (float(terms["moving_pixels"]) > 0.0) == (weight > 0.0)
  assert float(terms["foreground_attention"]) == float(terms["foreground_colour"]) == 0.0


@pytest.mark.parametrize("weight, lighting", [(0.0, False), (3.0, False), (3.0, True)])
def test_foreground_attention_term_is_its_weight_times_the_loss(weight, lighting):
  recipe = _recipe(foreground_attention_weight=weight, foreground_threshold=0.2,
                   match_lighting=lighting)
  frames, heatmaps, _, reconstruction = _inputs()
  terms = recipe.loss_terms(frames, heatmaps, None, reconstruction)
  mask = losses.foreground_pixel_mask(frames, 0.2, lighting)
  expected = weight * float(losses.foreground_attention_loss(heatmaps, frames, 0.2, mask))
  assert float(terms["foreground_attention"]) == pytest.approx(expected, rel=1e-6)
  assert (float(terms["foreground_attention"]) > 0.0) == (weight > 0.0)
  # Without heatmaps (CNN-VRNN) the term does not apply.
  assert float(recipe.loss_terms(frames, None, None, reconstruction)["foreground_attention"]) == 0


@pytest.mark.parametrize("weight", [0.0, 3.0])
def test_foreground_colour_term_is_its_weight_times_the_loss_of_the_decoded_features(weight):
  recipe = _recipe(foreground_colour_weight=weight, foreground_threshold=0.2)
  frames, heatmaps, features, reconstruction = _inputs()
  terms = recipe.loss_terms(frames, heatmaps, features if weight else None, reconstruction)
  if weight:
    decoder = recipe.foreground_colour_decoder
    cells = decoder(features.reshape([-1, 16, 16, 16])).numpy()  # [B*T, 16, 16, 48]
    # Depth-to-space by hand: channel (i * 4 + j) * 3 + c of a cell is its pixel (i, j).
    predicted = cells.reshape([2, 16, 16, 16, 4, 4, 3]).transpose([0, 1, 2, 4, 3, 5, 6])
    predicted = predicted.reshape(frames.shape)
    np.testing.assert_allclose(recipe.predict_foreground_colours(features).numpy(), predicted,
                               rtol=1e-6, atol=1e-6)
    expected = weight * float(losses.foreground_colour_loss(predicted, frames, 0.2))
  else:
    expected = 0.0
  assert float(terms["foreground_colour"]) == pytest.approx(expected, rel=1e-5)
  assert (float(terms["foreground_colour"]) > 0.0) == (weight > 0.0)


@pytest.fixture(scope="module")
def recipe_model():
  """The tiny CPU-preset model (every recipe part on)."""
  keras.mixed_precision.set_global_policy("float32")
  return builder.build_model(helpers.tiny_config(foreground_threshold=0.2))


def test_the_models_loss_adds_the_recipes_terms(recipe_model, frames):
  model = recipe_model
  settings = model.recipe.settings
  model.optimizer.iterations.assign(150)  # Mid warm-up: presence 0.5, sparsity 0.1 * 150/400.
  try:
    loss_terms, outputs = model.compute_losses(tf.constant(frames), training=False,
                                               seed=tf.constant([1, 1], tf.int32))
    assert list(loss_terms) == (["image"] + list(RECIPE_LOSS_NAMES)
                                + list(struct_vrnn.LOSS_NAMES[1:]) + ["total"])
    keypoints, heatmaps, features = model.detect_with_features(tf.constant(frames))
    # The presence weight reaches the renderer.
    reconstruction = model.reconstruct(keypoints, frames[:, 0], keypoints[:, 0],
                                       presence_weight=0.5)
    np.testing.assert_allclose(outputs["reconstruction"], reconstruction, atol=1e-6)
    assert np.abs(outputs["reconstruction"] - model.reconstruct(
        keypoints, frames[:, 0], keypoints[:, 0])).max() > 1e-6
    expected = model.recipe.loss_terms(tf.constant(frames), heatmaps, features, reconstruction)
    for name in RECIPE_LOSS_NAMES:
      assert float(loss_terms[name]) > 0.0, name
      assert float(loss_terms[name]) == pytest.approx(float(expected[name]), rel=1e-5), name
    assert float(loss_terms["moving_pixels"]) == pytest.approx(
        settings.moving_pixel_weight * float(losses.moving_pixel_loss(
            reconstruction, frames, settings.moving_pixel_threshold)), rel=1e-5)
    assert float(outputs["schedule"]["sparsity_weight"]) == pytest.approx(0.1 * 150 / 400)
    assert float(loss_terms["total"]) == pytest.approx(
        sum(float(v) for name, v in loss_terms.items() if name != "total"), rel=1e-6)
  finally:
    model.optimizer.iterations.assign(0)


def test_foreground_colour_term_trains_the_detector_encoder_not_its_heads(recipe_model, frames):
  """The auxiliary decoder exists to shape the detector's features: its loss reaches the
  encoder and the decoder, and nothing else (the keypoint heads, reconstructor, dynamics)."""
  model = recipe_model
  with tf.GradientTape() as tape:
    loss_terms, _ = model.compute_losses(tf.constant(frames), training=False)
    term = loss_terms["foreground_colour"]
  variables = model.trainable_variables
  gradients = tape.gradient(term, variables)
  reached = {v.path for v, g in zip(variables, gradients)
             if g is not None and float(tf.reduce_max(tf.abs(g))) > 0}
  assert any("keypoint_detector/encoder" in path for path in reached)
  assert any("foreground_colour_decoder" in path for path in reached)
  assert all("keypoint_detector/encoder" in path or "foreground_colour_decoder" in path
             for path in reached), sorted(reached)


# Serialisation with the model -----------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_recipe_model(frames):
  """A tiny CPU-preset model after one traced training step, and that step's logs."""
  keras.mixed_precision.set_global_policy("float32")
  model = builder.build_model(helpers.tiny_config())
  logs = model.train_on_batch({"image": frames}, return_dict=True)
  return model, logs


def test_training_step_logs_the_recipes_terms(trained_recipe_model):
  model, logs = trained_recipe_model
  assert int(model.optimizer.iterations.numpy()) == 1
  expected = ["loss"] + [f"{name}_loss" for name in ("image",) + RECIPE_LOSS_NAMES
                         + struct_vrnn.LOSS_NAMES[1:]]
  assert sorted(logs) == sorted(expected)
  for name, value in logs.items():
    assert np.isfinite(value), name
  for name in RECIPE_LOSS_NAMES:
    assert logs[f"{name}_loss"] > 0.0, name


def test_get_config_stores_the_recipe(trained_recipe_model):
  model = trained_recipe_model[0]
  config = model.get_config()
  assert config["recipe"] == {"class_name": "video_structure>CpuRecipe",
                              "settings": helpers.tiny_config().recipe.to_dict()}
  assert config["config"] == helpers.tiny_config().model.to_dict()
  clone = struct_vrnn.StructVRNN.from_config(config)
  assert isinstance(clone.recipe, cpu.CpuRecipe)
  assert clone.recipe.settings == model.recipe.settings
  assert clone.get_config() == config


def test_from_config_with_an_unknown_recipe_raises(trained_recipe_model):
  config = trained_recipe_model[0].get_config()
  config["recipe"] = dict(config["recipe"], class_name="video_structure>GpuRecipe")
  with pytest.raises(ValueError, match=r"unknown recipe 'video_structure>GpuRecipe'"):
    struct_vrnn.StructVRNN.from_config(config)


def _losses(model, frames):
  loss_terms, _ = model.compute_losses(tf.constant(frames), training=True,
                                       seed=tf.constant([4, 2], tf.int32))
  return {name: float(value) for name, value in loss_terms.items()}


def test_keras_save_load_round_trip_with_the_recipe(trained_recipe_model, frames, tmp_path):
  model = trained_recipe_model[0]
  path = str(tmp_path / "model.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  assert isinstance(loaded, struct_vrnn.StructVRNN) and isinstance(loaded.recipe, cpu.CpuRecipe)
  assert loaded.get_config() == model.get_config()
  assert loaded.recipe.settings == model.recipe.settings
  assert loaded.config == model.config
  # The detector was rebuilt with the recipe's initialisation (then its weights loaded).
  assert loaded.keypoint_detector.heatmap_bias_init == -4.0
  assert int(loaded.optimizer.iterations.numpy()) == 1
  assert len(loaded.weights) == len(model.weights)
  assert any("foreground_colour_decoder" in v.path for v in loaded.weights)
  for original, restored in zip(model.weights, loaded.weights):
    assert original.path == restored.path
    np.testing.assert_array_equal(original.numpy(), restored.numpy(), err_msg=original.path)
  for original, restored in zip(model.optimizer.variables, loaded.optimizer.variables):
    np.testing.assert_array_equal(original.numpy(), restored.numpy(), err_msg=original.path)
  assert _losses(loaded, frames) == _losses(model, frames)


def test_a_recipe_model_and_a_paper_model_differ_only_by_the_recipe():
  run_config = helpers.tiny_config()
  with_recipe = builder.build_model(run_config)
  without = builder.build_model(helpers.tiny_config(recipe="none"))
  assert without.recipe is None
  assert with_recipe.config == without.config == run_config.model
  paths = lambda model: {v.path.split("/", 1)[1] for v in model.weights}  # Without the model.
  recipe_paths = paths(with_recipe) - paths(without)
  assert not paths(without) - paths(with_recipe)
  assert recipe_paths and all("foreground_colour_decoder" in p for p in recipe_paths)
  assert config_lib.Config.from_dict(without.get_config()["config"]) == run_config.model
