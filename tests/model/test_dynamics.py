"""Tests of video_structure/model/dynamics.py (`KeypointVRNN.rollout`): shapes, best-of-many
selection, KL (tfp against the closed form), seeding, Struct-RNN, scheduled sampling, actions,
gradients, misconfiguration, and the seed state in checkpoints. The VRNN is tiny (K=2, 16 GRU
units) and runs eagerly, so `_decode` can be wrapped to record every decoded sample."""

import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from video_structure.model import dynamics
from video_structure.training import builder

K = 2


def _make_vrnn(**kwargs):
  keras.utils.set_random_seed(0)  # reproducible weights
  settings = dict(num_keypoints=K, rnn_units=16, latent_size=4, prior_net_size=4,
                  posterior_net_size=8, decoder_net_size=8, seed=1)
  settings.update(kwargs)
  vrnn = dynamics.KeypointVRNN(**settings)
  vrnn.build()
  return vrnn


def _keypoints(batch=3, steps=5, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, [batch, steps, K, 3]).astype(np.float32)


def _record_decodes(monkeypatch, vrnn):
  """Wraps `vrnn._decode`; returns the list that collects each step's `[B, N, 3K]` samples."""
  decoded_per_step = []
  original = vrnn._decode

  def recording_decode(state, latent):
    decoded = original(state, latent)
    decoded_per_step.append(decoded)
    return decoded

  monkeypatch.setattr(vrnn, "_decode", recording_decode)
  return decoded_per_step


# Shapes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("steps_in, num_observed, num_predicted, expected_steps", [
    (5, 3, 4, 7),   # m = 4 predicted steps but only 2 targets after the observed ones
    (5, 3, 1, 5),   # fewer predicted steps than targets: every target is still covered
    (3, 3, 0, 3),   # observation only
    (2, 2, 6, 8),   # pure prediction past the input
])
def test_rollout_output_shapes(steps_in, num_observed, num_predicted, expected_steps):
  vrnn = _make_vrnn()
  result = vrnn.rollout(_keypoints(steps=steps_in), num_observed, num_predicted, num_samples=3,
                        select_best=True)
  assert tuple(result["keypoints"].shape) == (3, expected_steps, K, 3)
  assert tuple(result["kl"].shape) == (3, expected_steps)
  assert tuple(result["rnn_states"].shape) == (3, expected_steps, 16)
  assert all(value.dtype == tf.float32 for value in result.values())
  assert np.all(np.abs(result["keypoints"].numpy()) <= 1.0)  # tanh head


def test_rollout_in_tf_function_with_tensor_step_counts():
  vrnn = _make_vrnn()

  @tf.function
  def run(keypoints, num_observed, num_predicted):
    return vrnn.rollout(keypoints, num_observed, num_predicted, num_samples=2,
                        select_best=True)["keypoints"]

  output = run(_keypoints(steps=4), tf.constant(2), tf.constant(5))
  assert tuple(output.shape) == (3, 7, K, 3)


# Best of many ---------------------------------------------------------------------------------

def _per_step_mse(decoded, target):
  """`[B, N, 3K]`, `[B, 3K]` -> `[B, N]` mean squared error over the 3K values."""
  return np.mean((decoded - target[:, np.newaxis]) ** 2, axis=-1)


def test_best_of_many_keeps_the_sample_closest_to_the_target(monkeypatch):
  vrnn = _make_vrnn()
  decoded_per_step = _record_decodes(monkeypatch, vrnn)
  num_samples, num_observed, steps_in, num_predicted = 6, 3, 5, 4
  keypoints = _keypoints(steps=steps_in)
  result = vrnn.rollout(keypoints, num_observed, num_predicted, num_samples=num_samples,
                        select_best=True, feed_decoded_probability_observed=0.5,
                        feed_decoded_probability_predicted=0.5)
  kept = result["keypoints"].numpy().reshape([3, 7, 3 * K])
  targets = keypoints.reshape([3, steps_in, 3 * K])

  assert len(decoded_per_step) == 7
  chosen = []
  for t, decoded in enumerate(decoded_per_step):
    decoded = decoded.numpy()
    assert decoded.shape == (3, num_samples, 3 * K)
    assert np.all(np.std(decoded, axis=1) > 0)  # the decoder output depends on z
    if t < steps_in:
      best = np.argmin(_per_step_mse(decoded, targets[:, t]), axis=1)
    else:
      best = np.zeros(3, int)  # no target: sample 0
    chosen.append(best)
    np.testing.assert_array_equal(kept[:, t], decoded[np.arange(3), best], err_msg=f"step {t}")
  # The test is only meaningful if the best sample is not always sample 0.
  assert np.any(np.array(chosen[:steps_in]) != 0)


def test_without_selection_sample_zero_is_kept(monkeypatch):
  vrnn = _make_vrnn()
  decoded_per_step = _record_decodes(monkeypatch, vrnn)
  result = vrnn.rollout(_keypoints(), 3, 2, num_samples=5, select_best=False)
  kept = result["keypoints"].numpy().reshape([3, 5, 3 * K])
  for t, decoded in enumerate(decoded_per_step):
    np.testing.assert_array_equal(kept[:, t], decoded.numpy()[:, 0], err_msg=f"step {t}")


def test_best_of_many_beats_a_single_sample_on_average():
  vrnn = _make_vrnn()
  keypoints = _keypoints(batch=8, steps=4, seed=3)
  error = lambda result: np.mean((result["keypoints"].numpy() - keypoints) ** 2)
  single = error(vrnn.rollout(keypoints, 2, 2, num_samples=1, select_best=True, seed=[5, 5]))
  many = error(vrnn.rollout(keypoints, 2, 2, num_samples=20, select_best=True, seed=[5, 5]))
  assert many < single


# KL -------------------------------------------------------------------------------------------

def test_kl_positive_at_observed_and_zero_at_predicted_steps():
  vrnn = _make_vrnn()
  kl = vrnn.rollout(_keypoints(steps=5), 3, 4, num_samples=2, select_best=True)["kl"].numpy()
  assert np.all(kl[:, :3] > 0.0)
  np.testing.assert_array_equal(kl[:, 3:], 0.0)


def _closed_form_kl(mean_q, std_q, mean_p, std_p):
  """KL(N(mean_q, std_q) || N(mean_p, std_p)) summed over the last axis, in float64:
  0.5 (log(s_p^2 / s_q^2) + (s_q^2 + (m_q - m_p)^2) / s_p^2 - 1)."""
  mean_q, std_q, mean_p, std_p = (np.asarray(v, np.float64)
                                  for v in (mean_q, std_q, mean_p, std_p))
  return np.sum(0.5 * (np.log(std_p ** 2 / std_q ** 2)
                       + (std_q ** 2 + (mean_q - mean_p) ** 2) / std_p ** 2 - 1.0), axis=-1)


@pytest.mark.parametrize("mean_q, std_q, mean_p, std_p, expected", [
    (1.0, 1.0, 0.0, 1.0, 0.5),                                   # mean shift only
    (0.0, 2.0, 0.0, 1.0, 0.5 * (4.0 - 1.0 - np.log(4.0))),        # wider posterior
    (0.0, 1.0, 0.0, 2.0, np.log(2.0) + 1.0 / 8.0 - 0.5),          # wider prior
    (3.0, 0.5, 1.0, 2.0, np.log(4.0) + (0.25 + 4.0) / 8.0 - 0.5),  # both
])
def test_tfp_kl_of_one_dimension_by_hand(mean_q, std_q, mean_p, std_p, expected):
  kl = dynamics.tfd.kl_divergence(dynamics.tfd.Normal(mean_q, std_q),
                                  dynamics.tfd.Normal(mean_p, std_p)).numpy()
  assert kl.dtype == np.float32
  np.testing.assert_allclose(kl, expected, rtol=1e-6)
  np.testing.assert_allclose(kl, _closed_form_kl([mean_q], [std_q], [mean_p], [std_p]),
                             rtol=1e-6)


def test_tfp_kl_summed_over_latents_matches_the_closed_form():
  rng = np.random.default_rng(2)
  shape = [3, 4, 5]
  mean_q, mean_p = (rng.normal(size=shape).astype(np.float32) for _ in range(2))
  std_q, std_p = (rng.uniform(0.1, 2.0, size=shape).astype(np.float32) for _ in range(2))
  kl = tf.reduce_sum(dynamics.tfd.kl_divergence(dynamics.tfd.Normal(mean_q, std_q),
                                                dynamics.tfd.Normal(mean_p, std_p)), -1)
  assert kl.shape == (3, 4)
  np.testing.assert_allclose(kl.numpy(), _closed_form_kl(mean_q, std_q, mean_p, std_p),
                             rtol=1e-5)
  same = tf.reduce_sum(dynamics.tfd.kl_divergence(dynamics.tfd.Normal(mean_q, std_q),
                                                  dynamics.tfd.Normal(mean_q, std_q)), -1)
  np.testing.assert_array_equal(same.numpy(), 0.0)


def _inverse_softplus_std(std):
  """The std head's bias that gives `std` (std = softplus(bias) + STD_EPSILON)."""
  return np.log(np.expm1(np.asarray(std, np.float64) - dynamics.STD_EPSILON))


def test_rollout_kl_by_hand_with_fixed_prior_and_posterior():
  # All kernels of the four distribution heads zero: every step's prior is N([0, 1], [1, 2])
  # and posterior N([1, 3], [1, 0.5]) whatever the state and keypoints. Per dimension:
  # 0.5 (0 + (1 + 1) / 1 - 1) = 0.5 and 0.5 (log(4 / 0.25) + (0.25 + 4) / 4 - 1); summed.
  vrnn = _make_vrnn(latent_size=2)
  heads = {"prior_mean": [0.0, 1.0], "prior_std": _inverse_softplus_std([1.0, 2.0]),
           "posterior_mean": [1.0, 3.0], "posterior_std": _inverse_softplus_std([1.0, 0.5])}
  for name, bias in heads.items():
    layer = getattr(vrnn, name)
    layer.kernel.assign(tf.zeros_like(layer.kernel))
    layer.bias.assign(np.asarray(bias, np.float32))
  expected = 0.5 + 0.5 * (np.log(16.0) + 4.25 / 4.0 - 1.0)  # 1.9175...
  assert expected == pytest.approx(1.917544, abs=1e-6)
  np.testing.assert_allclose(expected, _closed_form_kl([1, 3], [1, 0.5], [0, 1], [1, 2]),
                             rtol=1e-12)
  kl = vrnn.rollout(_keypoints(steps=5), 3, 4, num_samples=2, select_best=True)["kl"].numpy()
  assert kl.shape == (3, 7)
  np.testing.assert_allclose(kl[:, :3], expected, rtol=1e-6)
  np.testing.assert_array_equal(kl[:, 3:], 0.0)


def test_kl_is_the_closed_form_of_the_first_step():
  # At t = 0 the GRU state is zero, so prior and posterior are known functions of the target.
  vrnn = _make_vrnn()
  keypoints = _keypoints()
  kl = vrnn.rollout(keypoints, 2)["kl"].numpy()
  state = tf.zeros([3, 16])
  prior = vrnn._prior(state)
  posterior = vrnn._posterior(state, keypoints[:, 0].reshape([3, 3 * K]))
  mq, sq, mp, sp = (v.numpy().astype(np.float64) for v in
                    (posterior.loc, posterior.scale, prior.loc, prior.scale))
  np.testing.assert_allclose(kl[:, 0], _closed_form_kl(mq, sq, mp, sp), rtol=1e-5)
  assert np.all(sp >= dynamics.STD_EPSILON) and np.all(sq >= dynamics.STD_EPSILON)


# Randomness -----------------------------------------------------------------------------------

def _sampled_rollout(vrnn, seed):
  return vrnn.rollout(_keypoints(), 3, 3, num_samples=4, select_best=True,
                      feed_decoded_probability_observed=0.5,
                      feed_decoded_probability_predicted=0.5, seed=seed)


def test_seed_makes_rollouts_reproducible():
  vrnn = _make_vrnn()
  first = _sampled_rollout(vrnn, [3, 7])
  second = _sampled_rollout(vrnn, tf.constant([3, 7]))
  other = _sampled_rollout(vrnn, [4, 7])
  for key in ("keypoints", "kl", "rnn_states"):
    np.testing.assert_array_equal(first[key].numpy(), second[key].numpy(), err_msg=key)
  assert not np.allclose(first["keypoints"].numpy(), other["keypoints"].numpy())


def test_without_seed_successive_rollouts_differ():
  vrnn = _make_vrnn()
  first = _sampled_rollout(vrnn, None)["keypoints"].numpy()
  second = _sampled_rollout(vrnn, None)["keypoints"].numpy()
  assert not np.allclose(first, second)


def test_seeded_rollout_is_the_same_inside_tf_function():
  vrnn = _make_vrnn()
  eager = _sampled_rollout(vrnn, [1, 2])["keypoints"].numpy()
  graph = tf.function(lambda: _sampled_rollout(vrnn, [1, 2])["keypoints"])().numpy()
  np.testing.assert_allclose(graph, eager, rtol=1e-5, atol=1e-6)


# Struct-RNN -----------------------------------------------------------------------------------

def test_deterministic_variant_has_no_kl_and_no_randomness():
  vrnn = _make_vrnn(deterministic=True)
  assert vrnn.latent_size == 0
  assert not hasattr(vrnn, "prior_hidden") and not hasattr(vrnn, "posterior_hidden")
  keypoints = _keypoints()
  first = vrnn.rollout(keypoints, 3, 3, num_samples=7, select_best=True)
  second = vrnn.rollout(keypoints, 3, 3, num_samples=7, select_best=True)
  np.testing.assert_array_equal(first["kl"].numpy(), 0.0)
  for key in ("keypoints", "rnn_states"):
    np.testing.assert_array_equal(first[key].numpy(), second[key].numpy(), err_msg=key)


# Scheduled sampling ---------------------------------------------------------------------------

def test_feed_decoded_probability_changes_what_the_gru_sees():
  vrnn = _make_vrnn()
  keypoints = _keypoints()
  run = lambda probability: vrnn.rollout(
      keypoints, 3, 2, num_samples=2, feed_decoded_probability_observed=probability,
      feed_decoded_probability_predicted=probability, seed=[0, 0])["keypoints"].numpy()
  teacher_forced, free_running = run(0.0), run(1.0)
  # Step 0 starts from the zero state with the same noise; afterwards the fed keypoints differ.
  np.testing.assert_array_equal(teacher_forced[:, 0], free_running[:, 0])
  for t in range(1, 5):
    assert not np.allclose(teacher_forced[:, t], free_running[:, t]), f"step {t}"


def test_teacher_forcing_feeds_the_targets():
  # With probability 0 the decoded keypoints never reach the GRU: replacing the decoder's
  # output by anything else leaves the GRU states unchanged at steps that have targets.
  vrnn = _make_vrnn(deterministic=True)
  keypoints = _keypoints(steps=4)
  states = vrnn.rollout(keypoints, 2, 2, feed_decoded_probability_observed=0.0,
                        feed_decoded_probability_predicted=0.0)["rnn_states"].numpy()
  vrnn.decoder_output.bias.assign(vrnn.decoder_output.bias + 0.5)
  shifted = vrnn.rollout(keypoints, 2, 2, feed_decoded_probability_observed=0.0,
                         feed_decoded_probability_predicted=0.0)["rnn_states"].numpy()
  np.testing.assert_array_equal(states, shifted)


# Actions --------------------------------------------------------------------------------------

def test_action_conditional_predictions_depend_on_previous_actions():
  vrnn = _make_vrnn(action_size=2)
  keypoints = _keypoints(steps=3)
  rng = np.random.default_rng(5)
  actions_a = rng.normal(size=[3, 6, 2]).astype(np.float32)
  actions_b = rng.normal(size=[3, 6, 2]).astype(np.float32)
  run = lambda actions: vrnn.rollout(keypoints, 3, 3, actions=actions,
                                     seed=[2, 2])["keypoints"].numpy()
  result_a, result_b = run(actions_a), run(actions_b)
  # Step t gets a_{t-1}: step 0 sees a zero action and a_0 first changes the state used at
  # step 2.
  np.testing.assert_array_equal(result_a[:, :2], result_b[:, :2])
  assert not np.allclose(result_a[:, 2:], result_b[:, 2:])
  # The last action a_{T-1} would only affect a step after the rollout.
  actions_c = actions_a.copy()
  actions_c[:, -1] = 100.0
  np.testing.assert_array_equal(run(actions_c), result_a)


def test_action_conditional_without_actions_raises():
  vrnn = _make_vrnn(action_size=2)
  with pytest.raises(ValueError, match=r"action_size=2.*`actions`"):
    vrnn.rollout(_keypoints(), 3, 2)


def test_action_conditional_with_wrong_action_size_raises():
  vrnn = _make_vrnn(action_size=2)
  with pytest.raises(ValueError, match=r"2 values per step"):
    vrnn.rollout(_keypoints(), 3, 2, actions=np.zeros([3, 5, 3], np.float32))


# Gradients ------------------------------------------------------------------------------------

def test_only_the_kept_sample_receives_gradient(monkeypatch):
  vrnn = _make_vrnn()
  decoded_per_step = _record_decodes(monkeypatch, vrnn)
  keypoints = _keypoints(steps=5)
  with tf.GradientTape() as tape:
    # Teacher forcing everywhere, so a decoded sample reaches the output only as itself.
    result = vrnn.rollout(keypoints, 3, 2, num_samples=5, select_best=True,
                          feed_decoded_probability_observed=0.0,
                          feed_decoded_probability_predicted=0.0)
    total = tf.reduce_sum(result["keypoints"])
  gradients = tape.gradient(total, decoded_per_step)
  targets = keypoints.reshape([3, 5, 3 * K])
  for t, (decoded, gradient) in enumerate(zip(decoded_per_step, gradients)):
    best = np.argmin(_per_step_mse(decoded.numpy(), targets[:, t]), axis=1)
    expected = np.zeros([3, 5, 3 * K], np.float32)
    expected[np.arange(3), best] = 1.0
    np.testing.assert_array_equal(gradient.numpy(), expected, err_msg=f"step {t}")


def test_gradients_are_finite_and_reach_decoder_posterior_and_gru():
  vrnn = _make_vrnn()
  keypoints = _keypoints()
  with tf.GradientTape() as tape:
    result = vrnn.rollout(keypoints, 3, 2, num_samples=4, select_best=True)
    loss = tf.reduce_sum(tf.square(result["keypoints"] - keypoints)) + tf.reduce_sum(
        result["kl"])
  variables = vrnn.trainable_variables
  gradients = tape.gradient(loss, variables)
  for variable, gradient in zip(variables, gradients):
    assert gradient is not None, variable.path
    assert np.all(np.isfinite(gradient.numpy())), variable.path
  by_path = {variable.path: gradient.numpy() for variable, gradient in zip(variables, gradients)}
  for part in ("decoder_output", "decoder_hidden", "posterior_mean", "gru_cell"):
    assert any(np.any(g != 0) for path, g in by_path.items() if part in path), part


def test_prior_receives_gradient_only_through_the_kl():
  # Predicted steps draw z from the prior with its gradient stopped, so the keypoints carry no
  # gradient to the prior net; the KL does.
  vrnn = _make_vrnn()
  keypoints = _keypoints()
  prior_variables = [v for v in vrnn.trainable_variables if "prior_" in v.path]
  assert len(prior_variables) == 6
  with tf.GradientTape(persistent=True) as tape:
    result = vrnn.rollout(keypoints, 3, 3, num_samples=3, select_best=True)
    keypoint_total = tf.reduce_sum(result["keypoints"])
    kl_total = tf.reduce_sum(result["kl"])
  for gradient in tape.gradient(keypoint_total, prior_variables):
    assert gradient is None or np.all(gradient.numpy() == 0)
  assert any(np.any(g.numpy() != 0) for g in tape.gradient(kl_total, prior_variables))


# Misconfiguration -----------------------------------------------------------------------------

@pytest.mark.parametrize("argument, value", [
    ("num_keypoints", 0), ("num_keypoints", -1), ("rnn_units", 0), ("latent_size", 0),
    ("prior_net_size", 0), ("posterior_net_size", 0), ("decoder_net_size", 0),
    ("num_keypoints", 2.0), ("action_size", -1),
])
def test_bad_constructor_arguments_raise(argument, value):
  settings = dict(num_keypoints=K, rnn_units=16)
  settings[argument] = value
  with pytest.raises(ValueError, match=f"`{argument}`"):
    dynamics.KeypointVRNN(**settings)


def test_wrong_keypoint_count_raises():
  vrnn = _make_vrnn()
  with pytest.raises(ValueError, match=r"expected 2 keypoints"):
    vrnn.rollout(np.zeros([3, 4, 5, 3], np.float32), 2, 2)


@pytest.mark.parametrize("num_observed", [0, 6])
def test_num_observed_out_of_range_raises(num_observed):
  vrnn = _make_vrnn()
  with pytest.raises(ValueError, match="num_observed"):
    vrnn.rollout(_keypoints(steps=5), num_observed, 2)


def test_zero_samples_raises_naming_the_argument():
  vrnn = _make_vrnn()
  with pytest.raises(ValueError, match="num_samples"):
    vrnn.rollout(_keypoints(), 3, 2, num_samples=0, select_best=True)


def test_get_config_round_trip():
  vrnn = dynamics.KeypointVRNN(K, rnn_units=16, latent_size=4, prior_net_size=4,
                               posterior_net_size=8, decoder_net_size=8, action_size=2,
                               deterministic=True, seed=3)
  config = vrnn.get_config()
  assert config["latent_size"] == 4  # the configured size, even though the RNN has no z
  assert dynamics.KeypointVRNN.from_config(config).get_config() == config


# Checkpoints ----------------------------------------------------------------------------------

def _tiny_model():
  return builder.build_model(helpers.tiny_config())


def test_seed_state_round_trips_through_a_checkpoint(tmp_path):
  model = _tiny_model()
  for _ in range(3):  # Three training steps' draws.
    model.dynamics.seed_generator.next()
  path = str(tmp_path / "ckpt.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  np.testing.assert_array_equal(loaded.dynamics.seed_generator.state.numpy(),
                                model.dynamics.seed_generator.state.numpy())
  for _ in range(2):  # The resumed stream continues where the saved one stopped.
    np.testing.assert_array_equal(loaded.dynamics.seed_generator.next().numpy(),
                                  model.dynamics.seed_generator.next().numpy())


def test_checkpoint_without_seed_state_loads_with_the_initial_state(tmp_path):
  # Checkpoints written before the state was saved (and converted legacy ones) lack the key.
  model = _tiny_model()
  initial = model.dynamics.seed_generator.state.numpy()
  model.dynamics.seed_generator.next()
  path = str(tmp_path / "ckpt.keras")
  model.save(path)
  old_path = str(tmp_path / "old.keras")
  with zipfile.ZipFile(path) as archive, zipfile.ZipFile(old_path, "w") as old:
    for name in archive.namelist():
      data = archive.read(name)
      if name == "model.weights.h5":
        weights = tmp_path / "model.weights.h5"
        weights.write_bytes(data)
        with h5py.File(weights, "r+") as h5:
          keys = []
          h5.visit(lambda key: keys.append(key) if key.endswith(dynamics.SEED_STATE_KEY) else None)
          assert len(keys) == 1, keys
          del h5[keys[0]]
        data = weights.read_bytes()
      old.writestr(name, data)
  loaded = keras.models.load_model(old_path)
  np.testing.assert_array_equal(loaded.dynamics.seed_generator.state.numpy(), initial)
  for ours, theirs in zip(loaded.weights, model.weights):
    if "seed_generator" not in ours.path:
      np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
