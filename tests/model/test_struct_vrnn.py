"""Integration tests of the Struct-VRNN model (`video_structure/model/struct_vrnn.py`) without
a training recipe (the paper's objective); the CPU recipe's plug-in: tests/recipes/test_cpu.py.

The first traced train step of a model costs ~10 s even for the tiny config, so the trained
model is a module-scoped fixture and every other test runs eagerly on an untrained model.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from video_structure import presets
from video_structure.model import struct_vrnn
from video_structure.training import builder

BATCH = helpers.TINY_MODEL["batch_size"]
NUM_SAMPLES = helpers.TINY_MODEL["num_samples"]
NUM_KEYPOINTS = helpers.TINY_MODEL["num_keypoints"]
NUM_OBSERVED, SEQUENCE_LENGTH, IMAGE_SIZE = 8, 16, 64


def tiny_config(**overrides):
  """The tiny model of tests/helpers.py without a recipe, with schedules long enough to test
  their midpoints. A `presets.RunConfig`."""
  values = dict(recipe="none", kl_anneal_steps=25000, scheduled_sampling_ramp_steps=25000,
                learning_rate_decay_steps=1000)
  values.update(overrides)
  return helpers.tiny_config(**values)


@pytest.fixture(scope="module")
def model():
  """An untrained, compiled tiny model (float32)."""
  keras.mixed_precision.set_global_policy("float32")
  return builder.build_model(tiny_config())


def _set_step(model, step):
  model.optimizer.iterations.assign(step)


# Shapes. ------------------------------------------------------------------------------------

def test_detect_shapes_and_ranges(model, frames):
  keypoints, heatmaps = model.detect(tf.constant(frames))
  assert keypoints.shape == (BATCH, SEQUENCE_LENGTH, NUM_KEYPOINTS, 3)
  assert heatmaps.shape == (BATCH, SEQUENCE_LENGTH, 16, 16, NUM_KEYPOINTS)
  assert keypoints.dtype == tf.float32 and heatmaps.dtype == tf.float32
  keypoints = keypoints.numpy()
  assert np.all(np.abs(keypoints[..., :2]) <= 1.0)
  assert np.all((keypoints[..., 2] >= 0.0) & (keypoints[..., 2] <= 1.0 + 1e-6))
  # The strongest keypoint of every frame has mu close to 1 (max normalisation).
  np.testing.assert_allclose(keypoints[..., 2].max(axis=-1), 1.0, atol=1e-3)


def test_reconstruct_shape(model, frames):
  keypoints, _ = model.detect(tf.constant(frames))
  reconstruction = model.reconstruct(keypoints[:, :5], frames[:, 0], keypoints[:, 0])
  assert reconstruction.shape == (BATCH, 5, IMAGE_SIZE, IMAGE_SIZE, 3)
  assert reconstruction.dtype == tf.float32


@pytest.mark.parametrize("as_dict", [False, True])
def test_call_shapes(model, frames, as_dict):
  outputs = model({"image": frames} if as_dict else frames)
  assert set(outputs) == {"keypoints", "reconstruction", "decoded_keypoints"}
  assert outputs["keypoints"].shape == (BATCH, SEQUENCE_LENGTH, NUM_KEYPOINTS, 3)
  assert outputs["decoded_keypoints"].shape == (BATCH, SEQUENCE_LENGTH, NUM_KEYPOINTS, 3)
  assert outputs["reconstruction"].shape == (BATCH, SEQUENCE_LENGTH, IMAGE_SIZE, IMAGE_SIZE, 3)


@pytest.mark.parametrize("num_observed, num_predicted", [(8, 3), (8, 20), (3, 0)])
def test_predict_future_shapes_and_seed(model, frames, num_observed, num_predicted):
  observed = tf.constant(frames[:, :num_observed])
  seed = tf.constant([5, 7], tf.int32)
  result = model.predict_future(observed, num_predicted, NUM_SAMPLES, seed=seed)
  total = num_observed + num_predicted
  assert result["keypoints"].shape == (NUM_SAMPLES, BATCH, total, NUM_KEYPOINTS, 3)
  assert result["frames"].shape == (NUM_SAMPLES, BATCH, total, IMAGE_SIZE, IMAGE_SIZE, 3)
  assert result["observed_keypoints"].shape == (BATCH, num_observed, NUM_KEYPOINTS, 3)
  np.testing.assert_allclose(result["observed_keypoints"], model.detect(observed)[0], atol=1e-6)
  # Same seed: same samples; another seed: other samples.
  again = model.predict_future(observed, num_predicted, NUM_SAMPLES, seed=seed)
  np.testing.assert_array_equal(result["keypoints"], again["keypoints"])
  other = model.predict_future(observed, num_predicted, NUM_SAMPLES,
                               seed=tf.constant([6, 7], tf.int32), decode_frames=False)
  assert "frames" not in other
  assert np.abs(other["keypoints"] - result["keypoints"]).max() > 1e-4
  # The samples differ from each other (the VRNN is stochastic).
  assert np.abs(result["keypoints"][0] - result["keypoints"][1]).max() > 1e-4


def test_predict_from_keypoints_follows_edited_keypoints(model, frames):
  observed = tf.constant(frames[:, :NUM_OBSERVED])
  detected = model.detect(observed)[0].numpy()
  seed = tf.constant([1, 2], tf.int32)
  num_predicted = 6
  original = model.predict_from_keypoints(detected, frames[:, 0], num_predicted, 2, seed=seed)
  assert original["keypoints"].shape == (2, BATCH, NUM_OBSERVED + num_predicted,
                                         NUM_KEYPOINTS, 3)
  assert original["frames"].shape == (2, BATCH, NUM_OBSERVED + num_predicted, IMAGE_SIZE,
                                       IMAGE_SIZE, 3)
  unedited = model.predict_from_keypoints(detected, frames[:, 0], num_predicted, 2, seed=seed)
  np.testing.assert_array_equal(original["keypoints"], unedited["keypoints"])

  edited = detected.copy()
  edited[:, :, 0, 0] += 0.5  # Move keypoint 0 to the right in every observed frame.
  counterfactual = model.predict_from_keypoints(edited, frames[:, 0], num_predicted, 2,
                                                seed=seed)
  future = slice(NUM_OBSERVED, None)
  assert np.abs(counterfactual["keypoints"][:, :, future]
                - original["keypoints"][:, :, future]).max() > 1e-3
  assert np.abs(counterfactual["frames"] - original["frames"]).max() > 1e-4


# Gradient routing. ----------------------------------------------------------------------------

def _variables(layer):
  variables = layer.trainable_variables
  assert variables, f"{layer.name} has no trainable variables"
  return variables


def test_dynamics_losses_do_not_reach_vision_weights(model, frames):
  # Mid-schedule, so that the KL term has a non-zero weight and scheduled sampling is active.
  _set_step(model, 12500)
  try:
    with tf.GradientTape(persistent=True) as tape:
      loss_terms, _ = model.compute_losses(tf.constant(frames), training=True)
      dynamics_loss = loss_terms["keypoint"] + loss_terms["kl"]
    assert float(loss_terms["kl"]) > 0.0
    vision_variables = (_variables(model.keypoint_detector)
                        + _variables(model.appearance_encoder)
                        + _variables(model.image_reconstructor))
    for variable, gradient in zip(vision_variables,
                                  tape.gradient(dynamics_loss, vision_variables)):
      assert gradient is None or not np.any(gradient.numpy()), variable.path

    image_gradients = tape.gradient(loss_terms["image"], _variables(model.keypoint_detector))
    assert sum(float(tf.norm(g)) for g in image_gradients if g is not None) > 0.0
    dynamics_variables = _variables(model.dynamics)
    keypoint_gradients = tape.gradient(loss_terms["keypoint"], dynamics_variables)
    assert sum(float(tf.norm(g)) for g in keypoint_gradients if g is not None) > 0.0
    kl_gradients = tape.gradient(loss_terms["kl"], dynamics_variables)
    assert sum(float(tf.norm(g)) for g in kl_gradients if g is not None) > 0.0
    del tape
  finally:
    _set_step(model, 0)


# Schedules and optimiser. ---------------------------------------------------------------------

def test_schedules_follow_optimizer_iterations(model, frames):
  cfg = model.config
  assert cfg.kl_anneal_steps == 25000 and cfg.scheduled_sampling_ramp_steps == 25000
  try:
    expectations = {
        0: dict(kl_weight=0.0, feed_decoded_observed=0.0, feed_decoded_predicted=0.0),
        12500: dict(kl_weight=cfg.kl_beta / 2, feed_decoded_observed=0.5,
                    feed_decoded_predicted=0.25),
        60000: dict(kl_weight=cfg.kl_beta, feed_decoded_observed=1.0,
                    feed_decoded_predicted=0.5),
    }
    for step, expected in expectations.items():
      _set_step(model, step)
      # compute_losses must read the step itself, from optimizer.iterations.
      _, outputs = model.compute_losses(tf.constant(frames[:, :NUM_OBSERVED + 1]),
                                        training=False)
      for name, value in expected.items():
        assert float(outputs["schedule"][name]) == pytest.approx(value, rel=1e-6, abs=1e-9), (
            step, name)
      schedules = model.schedules(model.optimizer.iterations)
      assert float(schedules["kl_weight"]) == pytest.approx(expected["kl_weight"], abs=1e-9)
  finally:
    _set_step(model, 0)


def test_learning_rate_halves_at_decay_steps(model):
  cfg = model.config
  decay = cfg.learning_rate_decay_steps
  try:
    for step, expected in [(0, cfg.learning_rate), (decay - 1, cfg.learning_rate),
                           (decay, cfg.learning_rate / 2), (2 * decay - 1, cfg.learning_rate / 2),
                           (2 * decay, cfg.learning_rate / 4)]:
      _set_step(model, step)
      assert float(model.optimizer.learning_rate) == pytest.approx(expected, rel=1e-6), step
  finally:
    _set_step(model, 0)


def test_optimizer_is_adam_with_per_tensor_clipnorm(model):
  optimizer = model.optimizer
  assert isinstance(optimizer, keras.optimizers.Adam)
  assert optimizer.beta_1 == 0.9 and optimizer.beta_2 == 0.999
  assert optimizer.clipnorm == model.config.clipnorm == 10.0
  assert optimizer.global_clipnorm is None and optimizer.clipvalue is None
  # Per-tensor clipping: a tensor of norm 50 comes back with norm 10, a small one unchanged.
  large, small = tf.fill([4], 25.0), tf.constant([0.3, 0.4])
  clipped = optimizer._clip_gradients([large, small])
  assert float(tf.norm(clipped[0])) == pytest.approx(10.0, rel=1e-5)
  np.testing.assert_allclose(clipped[1], small)


# Training. ---------------------------------------------------------------------------------

def paper_tiny_config(**overrides):
  """The `paper` preset (Table S1, no recipe) at the tiny sizes of tests/helpers.py."""
  return presets.get_config("basketball", "paper", **dict(helpers.TINY_MODEL, **overrides))


@pytest.fixture(scope="module")
def trained(frames):
  """The paper preset at tiny sizes, 40 steps on one fixed batch with a high learning rate; the
  image and keypoint losses before and after (same batch, evaluation mode)."""
  keras.mixed_precision.set_global_policy("float32")
  model = builder.build_model(paper_tiny_config(learning_rate=1e-2))
  batch = tf.constant(frames)
  before, _ = model.compute_losses(batch, training=False)
  dataset = tf.data.Dataset.from_tensors({"image": frames}).repeat()
  history = model.fit(dataset, epochs=4, steps_per_epoch=10, verbose=0)
  after, _ = model.compute_losses(batch, training=False)
  return model, before, after, history.history


def test_paper_preset_trains_with_only_the_papers_losses(trained):
  model, before, after, history = trained
  assert model.recipe is None
  assert model.config == paper_tiny_config(learning_rate=1e-2).model
  expected = {"loss"} | {f"{name}_loss" for name in struct_vrnn.LOSS_NAMES}
  assert set(history) == expected
  assert set(before) == set(after) == set(struct_vrnn.LOSS_NAMES) | {"total"}
  for name, values in history.items():
    assert len(values) == 4 and np.all(np.isfinite(values)), name
  assert history["supervised_loss"] == [0.0] * 4  # Not a supervised variant.
  # Table S1's schedules: at step 40 of 25k / 100k, KL and scheduled sampling barely start.
  schedule = model.schedules(model.optimizer.iterations)
  assert set(schedule) == {"kl_weight", "feed_decoded_observed", "feed_decoded_predicted",
                           "sparsity_weight"}
  assert float(schedule["kl_weight"]) == pytest.approx(0.01 * 40 / 25000, rel=1e-5)
  assert float(schedule["feed_decoded_predicted"]) == pytest.approx(0.5 * 40 / 100000,
                                                                    rel=1e-5)
  assert float(schedule["sparsity_weight"]) == pytest.approx(0.1)


def test_training_reduces_losses(trained):
  model, before, after, history = trained
  assert int(model.optimizer.iterations.numpy()) == 40
  assert float(after["image"]) < 0.7 * float(before["image"]), (before, after)
  assert history["image_loss"][-1] < 0.7 * history["image_loss"][0]
  assert history["loss"][-1] < 0.7 * history["loss"][0]


def test_trained_dynamics_predict_the_trained_keypoints_better_than_fresh_dynamics(trained,
                                                                                 frames):
  # The detected keypoints move during training, so the keypoint loss before and after is not
  # a fair comparison; fresh dynamics on the same (trained) vision are.
  model, _, after, _ = trained
  fresh = builder.build_model(paper_tiny_config(learning_rate=1e-2))
  for name in ("keypoint_detector", "appearance_encoder", "image_reconstructor"):
    getattr(fresh, name).set_weights(getattr(model, name).get_weights())
  batch = tf.constant(frames)
  np.testing.assert_allclose(fresh.detect(batch)[0].numpy(), model.detect(batch)[0].numpy(),
                             atol=1e-6)
  untrained, _ = fresh.compute_losses(batch, training=False)
  assert float(after["keypoint"]) < 0.8 * float(untrained["keypoint"]), (after, untrained)


def test_mixed_bfloat16_train_step(frames):
  try:
    model = builder.build_model(tiny_config(mixed_precision=True))
    assert model.keypoint_detector.encoder.conv_layers[0].compute_dtype == "bfloat16"
    logs = model.train_on_batch({"image": frames}, return_dict=True)
    assert int(model.optimizer.iterations.numpy()) == 1
    for name, value in logs.items():
      assert np.isfinite(value), name
    keypoints, heatmaps = model.detect(tf.constant(frames))
    assert keypoints.dtype == tf.float32 and heatmaps.dtype == tf.float32
    assert np.all(np.isfinite(keypoints.numpy()))
    loss_terms, outputs = model.compute_losses(tf.constant(frames), training=True)
    for name, value in loss_terms.items():
      assert value.dtype == tf.float32, name
      assert np.isfinite(value.numpy()), name
    assert outputs["reconstruction"].dtype == tf.float32
    assert all(v.dtype == "float32" for v in model.trainable_variables)
  finally:
    keras.mixed_precision.set_global_policy("float32")


# Bad inputs. -------------------------------------------------------------------------------

CONVERT = "convert uint8 frames with video_structure.model.ops.frames_to_model."
KEYPOINTS = np.zeros([BATCH, 3, NUM_KEYPOINTS, 3], np.float32)
FIRST_KEYPOINTS = np.zeros([BATCH, NUM_KEYPOINTS, 3], np.float32)
NAN_KEYPOINTS = np.where(np.arange(3)[:, None, None] == 1, np.nan, KEYPOINTS)


def _range_message(entry_point, name, high):
  return (f"StructVRNN.{entry_point}: `{name}` must have values in [-0.5, 0.5], got values in "
          f"[0.000, {high:.3f}]; " + CONVERT)


def _as_0_255(frames):
  """The usual mistake: unconverted frames (floats in [0, 255])."""
  return np.round((frames + 0.5) * 255.0)


# (id, call(model, frames), the exact ValueError message)
BAD_CALLS = [
    ("detect_0_255", lambda m, f: m.detect(_as_0_255(f)), _range_message("detect", "frames", 255)),
    ("detect_0_1", lambda m, f: m.detect(f + 0.5), _range_message("detect", "frames", 1)),
    ("detect_uint8", lambda m, f: m.detect(np.zeros([BATCH, 2, IMAGE_SIZE, IMAGE_SIZE, 3],
                                                    np.uint8)),
     "StructVRNN.detect: `frames` must be float frames in [-0.5, 0.5], got dtype uint8; "
     + CONVERT),
    ("detect_empty_batch", lambda m, f: m.detect(f[:0]),
     "StructVRNN.detect: `frames` must hold at least one sequence (B >= 1 in [B, T, H, W, 3]), "
     "got shape [0, 16, 64, 64, 3]."),
    ("detect_no_frames", lambda m, f: m.detect(f[:, :0]),
     "StructVRNN.detect: `frames` must hold at least one step per sequence (T >= 1 in "
     "[B, T, H, W, 3]), got shape [2, 0, 64, 64, 3]."),
    ("detect_size", lambda m, f: m.detect(f[:, :2, :32, :32]),
     "StructVRNN.detect: `frames` must be 64x64 frames (the model's image_size), got shape "
     "[2, 2, 32, 32, 3]; resize them to 64x64."),
    ("detect_rank", lambda m, f: m.detect(f[:, 0]),
     "StructVRNN.detect: `frames` must have shape [B, T, H, W, 3], got [2, 64, 64, 3]."),
    ("detect_channels", lambda m, f: m.detect(f[..., :1]),
     "StructVRNN.detect: `frames` must have shape [B, T, H, W, 3], got [2, 16, 64, 64, 1]."),
    ("detect_with_features_0_255", lambda m, f: m.detect_with_features(_as_0_255(f)),
     _range_message("detect_with_features", "frames", 255)),
    ("reconstruct_first_frame_0_255",
     lambda m, f: m.reconstruct(KEYPOINTS, _as_0_255(f[:, 0]), FIRST_KEYPOINTS),
     _range_message("reconstruct", "first_frame", 255)),
    ("reconstruct_no_steps", lambda m, f: m.reconstruct(KEYPOINTS[:, :0], f[:, 0],
                                                        FIRST_KEYPOINTS),
     "StructVRNN.reconstruct: `keypoints` must hold at least one step per sequence (T >= 1 in "
     "[B, T, K, 3]), got shape [2, 0, 4, 3]."),
    ("reconstruct_batches_differ", lambda m, f: m.reconstruct(KEYPOINTS, f[:1, 0],
                                                              FIRST_KEYPOINTS),
     "StructVRNN.reconstruct: `first_frame` has batch size 1 but `keypoints` has 2; both must "
     "hold the same sequences."),
    ("reconstruct_first_keypoints_shape", lambda m, f: m.reconstruct(KEYPOINTS, f[:, 0],
                                                                     KEYPOINTS),
     "StructVRNN.reconstruct: `first_frame_keypoints` must have shape [B, K, 3] with K = 4 (the "
     "model's num_keypoints), got shape [2, 3, 4, 3]."),
    ("reconstruct_nan", lambda m, f: m.reconstruct(NAN_KEYPOINTS, f[:, 0], FIRST_KEYPOINTS),
     "StructVRNN.reconstruct: `keypoints` contains NaN or infinite values; pass finite "
     "keypoints."),
    ("predict_future_0_1", lambda m, f: m.predict_future(f[:, :4] + 0.5, 2),
     _range_message("predict_future", "observed_frames", 1)),
    ("predict_future_no_frames", lambda m, f: m.predict_future(f[:, :0], 2),
     "StructVRNN.predict_future: `observed_frames` must hold at least one step per sequence "
     "(n >= 1 in [B, n, H, W, 3]), got shape [2, 0, 64, 64, 3]."),
    ("predict_future_dict", lambda m, f: m.predict_future({"image": f[:, :4]}, 2),
     "StructVRNN.predict_future: `observed_frames` must be a [B, n, H, W, 3] tensor, got a dict "
     "with keys ['image']."),
    ("predict_future_negative_horizon", lambda m, f: m.predict_future(f[:, :4], -1),
     "StructVRNN.predict_future: `num_predicted` must be an integer >= 0 (future steps to "
     "predict), got -1."),
    ("predict_future_negative_horizon_tensor",
     lambda m, f: m.predict_future(f[:, :4], tf.constant(-3)),
     "StructVRNN.predict_future: `num_predicted` must be an integer >= 0 (future steps to "
     "predict), got -3."),
    ("predict_future_no_samples", lambda m, f: m.predict_future(f[:, :4], 2, 0),
     "StructVRNN.predict_future: `num_samples` must be an integer >= 1 (sampled futures per "
     "sequence), got 0."),
    ("predict_future_negative_samples", lambda m, f: m.predict_future(f[:, :4], 2, -1),
     "StructVRNN.predict_future: `num_samples` must be an integer >= 1 (sampled futures per "
     "sequence), got -1."),
    ("predict_future_float_samples", lambda m, f: m.predict_future(f[:, :4], 2, 2.0),
     "StructVRNN.predict_future: `num_samples` must be an integer >= 1 (sampled futures per "
     "sequence), got 2.0."),
    ("predict_future_bool_samples", lambda m, f: m.predict_future(f[:, :4], 2, True),
     "StructVRNN.predict_future: `num_samples` must be an integer >= 1 (sampled futures per "
     "sequence), got True."),
    ("predict_future_float_tensor_samples",
     lambda m, f: m.predict_future(f[:, :4], 2, tf.constant(2.0)),
     "StructVRNN.predict_future: `num_samples` must be an integer >= 1 (sampled futures per "
     "sequence), got dtype float32 and shape []."),
    ("predict_future_seed", lambda m, f: m.predict_future(f[:, :4], 2, seed=[1, 2, 3]),
     "StructVRNN.predict_future: `seed` must be two integers (int32 [2]), got dtype int32 and "
     "shape [3]."),
    ("predict_from_keypoints_nan", lambda m, f: m.predict_from_keypoints(NAN_KEYPOINTS, f[:, 0],
                                                                         2),
     "StructVRNN.predict_from_keypoints: `observed_keypoints` contains NaN or infinite values; "
     "pass finite keypoints."),
    ("predict_from_keypoints_num_keypoints",
     lambda m, f: m.predict_from_keypoints(KEYPOINTS[:, :, :3], f[:, 0], 2),
     "StructVRNN.predict_from_keypoints: `observed_keypoints` must have shape [B, n, K, 3] with "
     "K = 4 (the model's num_keypoints), got shape [2, 3, 3, 3]."),
    ("predict_from_keypoints_empty_batch",
     lambda m, f: m.predict_from_keypoints(KEYPOINTS[:0], f[:0, 0], 2),
     "StructVRNN.predict_from_keypoints: `observed_keypoints` must hold at least one sequence "
     "(B >= 1 in [B, n, K, 3]), got shape [0, 3, 4, 3]."),
    ("predict_from_keypoints_batches_differ",
     lambda m, f: m.predict_from_keypoints(KEYPOINTS, f[:1, 0], 2),
     "StructVRNN.predict_from_keypoints: `first_frame` has batch size 1 but `observed_keypoints` "
     "has 2; both must hold the same sequences."),
    ("predict_from_keypoints_first_frame_0_255",
     lambda m, f: m.predict_from_keypoints(KEYPOINTS, _as_0_255(f[:, 0]), 2),
     _range_message("predict_from_keypoints", "first_frame", 255)),
    ("predict_from_keypoints_negative_horizon",
     lambda m, f: m.predict_from_keypoints(KEYPOINTS, f[:, 0], -2),
     "StructVRNN.predict_from_keypoints: `num_predicted` must be an integer >= 0 (future steps "
     "to predict), got -2."),
    ("fit_0_255", lambda m, f: m.fit(_as_0_255(f), epochs=1, verbose=0),
     "StructVRNN.fit: `x` must have values in [-0.5, 0.5], got values in [0.000, 255.000]; "
     + CONVERT),
    ("evaluate_0_1", lambda m, f: m.evaluate({"image": f + 0.5}, verbose=0),
     "StructVRNN.evaluate: `x['image']` must have values in [-0.5, 0.5], got values in "
     "[0.000, 1.000]; " + CONVERT),
]


@pytest.mark.parametrize("call, message", [case[1:] for case in BAD_CALLS],
                         ids=[case[0] for case in BAD_CALLS])
def test_bad_inputs_raise_clear_errors(model, frames, call, message):
  iterations = int(model.optimizer.iterations.numpy())
  with pytest.raises(ValueError) as error:
    call(model, frames)
  assert str(error.value) == message
  assert int(model.optimizer.iterations.numpy()) == iterations  # Refused before any step.


@pytest.mark.parametrize("inputs, message", [
    (lambda f: (f + 0.5) * 255.0, _range_message("call", "inputs", 255)),
    (lambda f: {"image": f + 0.5}, _range_message("call", "inputs['image']", 1)),
    (lambda f: np.zeros(f.shape, np.uint8),
     "StructVRNN.call: `inputs` must be float frames in [-0.5, 0.5], got dtype uint8; " + CONVERT),
    (lambda f: f[:, :4, :32, :32],
     "StructVRNN.call: `inputs` must be 64x64 frames (the model's image_size), got shape "
     "[2, 4, 32, 32, 3]; resize them to 64x64."),
    (lambda f: {"frames": f},
     "StructVRNN.call: the input dict needs an 'image' entry (frames [B, T, H, W, 3]), got keys "
     "['frames']."),
], ids=["0_255", "dict_0_1", "uint8", "size", "no_image_key"])
def test_bad_inputs_to_call_raise_clear_errors(model, frames, inputs, message):
  with pytest.raises(ValueError) as error:
    model(inputs(frames))
  assert message in str(error.value)  # Keras adds the call's arguments below it.


@pytest.fixture(scope="module")
def graph_calls(model):
  """`detect` and `predict_future` traced once with unknown batch, time and counts, so that
  every check can only run with the values (as in the exported SavedModel)."""
  signature = [tf.TensorSpec([None, None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32),
               tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)]
  return {
      "detect": tf.function(lambda frames, horizon, samples: model.detect(frames)[0],
                            input_signature=signature),
      "predict_future": tf.function(
          lambda frames, horizon, samples: model.predict_future(
              frames, horizon, samples, seed=[1, 2])["keypoints"], input_signature=signature),
  }


@pytest.mark.parametrize("method, inputs, horizon, samples, message", [
    ("detect", _as_0_255, 0, 1, _range_message("detect", "frames", 255)),
    ("detect", lambda f: f[:0], 0, 1,
     "StructVRNN.detect: `frames` must hold at least one sequence (B >= 1 in [B, T, H, W, 3]), "
     "got shape [0, 16, 64, 64, 3]."),
    ("predict_future", lambda f: f[:, :4] + 0.5, 2, 1,
     _range_message("predict_future", "observed_frames", 1)),
    ("predict_future", lambda f: f[:, :0], 2, 1,
     "StructVRNN.predict_future: `observed_frames` must hold at least one step per sequence "
     "(n >= 1 in [B, n, H, W, 3]), got shape [2, 0, 64, 64, 3]."),
    ("predict_future", lambda f: f[:, :4], -3, 1,
     "StructVRNN.predict_future: `num_predicted` must be an integer >= 0 (future steps to "
     "predict), got -3."),
    ("predict_future", lambda f: f[:, :4], 2, 0,
     "StructVRNN.predict_future: `num_samples` must be an integer >= 1 (sampled futures per "
     "sequence), got 0."),
], ids=["detect_0_255", "detect_empty_batch", "predict_0_1", "predict_no_frames",
        "negative_horizon", "no_samples"])
def test_inside_a_graph_the_checks_are_assertions_with_the_same_messages(
    graph_calls, frames, method, inputs, horizon, samples, message):
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    graph_calls[method](np.asarray(inputs(frames), np.float32), horizon, samples)
  assert f"assertion failed: [{message}]" in str(error.value)


def test_checks_change_no_number(model, frames):
  batch = tf.constant(frames)
  np.testing.assert_array_equal(model.detect(batch)[0], model._detect(batch)[0])
  graph_detect = tf.function(lambda x: model.detect(x)[0], input_signature=[
      tf.TensorSpec([None, None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32)])
  np.testing.assert_array_equal(graph_detect(batch), model._detect(batch)[0])
  # Valid frames at the edges of the range (and within the tolerance) are accepted.
  edges = np.clip(frames * 10.0, -0.5 - 0.5e-3, 0.5 + 0.5e-3).astype(np.float32)
  seed = tf.constant([3, 4], tf.int32)
  checked = model.predict_future(edges[:, :4], 3, 2, seed=seed)
  detected = model._detect(tf.constant(edges[:, :4]))[0]
  unchecked = model._predict_from_keypoints(detected, edges[:, 0], 3, 2, None, detected[:, 0],
                                            True, seed)
  for name in ("keypoints", "frames"):
    np.testing.assert_array_equal(checked[name], unchecked[name])


def _string_constants(concrete_function):
  """Every string constant of a traced function, nested functions (loop bodies) included."""
  graph_def = concrete_function.graph.as_graph_def()
  nodes = list(graph_def.node) + [node for function in graph_def.library.function
                                  for node in function.node_def]
  return {value.decode() for node in nodes if node.op == "Const"
          for value in node.attr["value"].tensor.string_val}


def test_the_training_step_pays_for_no_value_check():
  model = builder.build_model(tiny_config())  # Tracing creates the optimizer's variables.
  spec = {"image": tf.TensorSpec([BATCH, SEQUENCE_LENGTH, IMAGE_SIZE, IMAGE_SIZE, 3])}
  train_step = tf.function(model.train_step).get_concrete_function(spec)
  assert not [text for text in _string_constants(train_step) if "StructVRNN" in text]
  # The public entry points do check inside a graph.
  detect = tf.function(model.detect).get_concrete_function(spec["image"])
  assert any("StructVRNN.detect: `frames` must have values" in text
             for text in _string_constants(detect))


def test_action_conditional_model_checks_its_actions():
  model = builder.build_model(tiny_config(action_size=2))
  frames = np.zeros([1, 4, IMAGE_SIZE, IMAGE_SIZE, 3], np.float32)
  with pytest.raises(ValueError) as error:
    model(frames)
  assert ("StructVRNN.call: this model is action-conditional (action_size=2) and needs "
          "`actions` of shape [B, T, 2].") in str(error.value)
  for actions, message in [
      (None, "StructVRNN.predict_future: this model is action-conditional (action_size=2) and "
             "needs `actions` of shape [B, n + m, 2]."),
      (np.zeros([1, 6, 2]), "StructVRNN.predict_future: `actions` must cover the n + m = 7 "
                            "steps, got shape [1, 6, 2]."),
      (np.zeros([2, 7, 2]), "StructVRNN.predict_future: `actions` has batch size 2 but "
                            "`observed_frames` has 1; both must hold the same sequences."),
      (np.zeros([1, 7, 3]), "StructVRNN.predict_future: `actions` must have shape "
                            "[B, n + m, 2] (A = the model's action_size), got shape [1, 7, 3]."),
  ]:
    with pytest.raises(ValueError) as error:
      model.predict_future(frames, 3, actions=actions)
    assert str(error.value) == message
  result = model.predict_future(frames, 3, actions=np.zeros([1, 7, 2], np.float32))
  assert result["keypoints"].shape == (1, 1, 7, NUM_KEYPOINTS, 3)


# Serialisation. ----------------------------------------------------------------------------

def _deterministic_outputs(model, frames):
  """Every output that does not depend on a stateful random generator."""
  batch = tf.constant(frames)
  keypoints, heatmaps = model.detect(batch)
  outputs = model(batch)
  prediction = model.predict_future(batch[:, :NUM_OBSERVED], 4, 2,
                                    seed=tf.constant([3, 9], tf.int32))
  return {"keypoints": keypoints, "heatmaps": heatmaps,
          "reconstruction": outputs["reconstruction"],
          "predicted_keypoints": prediction["keypoints"], "predicted_frames": prediction["frames"]}


def _assert_same_outputs(expected, actual):
  assert set(expected) == set(actual)
  for name in expected:
    np.testing.assert_allclose(actual[name], expected[name], rtol=0, atol=1e-6, err_msg=name)


def test_get_config_from_config_round_trip(trained, frames):
  model = trained[0]
  config = model.get_config()
  assert config["recipe"] is None
  clone = struct_vrnn.StructVRNN.from_config(config)
  clone.build()
  assert clone.get_config() == config
  assert clone.config == model.config and clone.recipe is None
  clone.set_weights(model.get_weights())
  _assert_same_outputs(_deterministic_outputs(model, frames),
                       _deterministic_outputs(clone, frames))


def test_keras_save_load_round_trip(trained, frames, tmp_path):
  model = trained[0]
  path = str(tmp_path / "model.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  assert isinstance(loaded, struct_vrnn.StructVRNN)
  assert loaded.get_config() == model.get_config()
  assert loaded.config == model.config and loaded.recipe is None
  assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy())
  assert len(loaded.weights) == len(model.weights)
  for original, restored in zip(model.weights, loaded.weights):
    assert original.path == restored.path
    np.testing.assert_array_equal(original.numpy(), restored.numpy())
  _assert_same_outputs(_deterministic_outputs(model, frames),
                       _deterministic_outputs(loaded, frames))
  seed = tf.constant([4, 2], tf.int32)
  expected, _ = model.compute_losses(tf.constant(frames), training=True, seed=seed)
  actual, _ = loaded.compute_losses(tf.constant(frames), training=True, seed=seed)
  assert set(actual) == set(expected)
  for name in expected:
    assert float(actual[name]) == float(expected[name]), name
