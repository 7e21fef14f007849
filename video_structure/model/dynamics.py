"""The stochastic dynamics model: a VRNN over keypoints (paper section 3.2 and S1.1.2).

At every step t, with the GRU state `h_{t-1}`:
  prior      p(z_t | h_{t-1})        = N(mean, std) from Dense(prior_net_size, relu) on h
  posterior  q(z_t | h_{t-1}, x_t)   = N(mean, std) from Dense(posterior_net_size, relu) on [h, x_t]
  decoder    x_hat_t = f(h_{t-1}, z_t) = Dense(3K, tanh)(Dense(decoder_net_size, relu)([h, z]))
  recurrence h_t = GRU([x_feed_t, z_t, a_{t-1}], h_{t-1})
where std = softplus(.) + 1e-4. Observed steps draw z from the posterior and pay
KL(q || p); predicted steps draw z from the prior (with its gradient stopped).

Best of many: N samples of z are drawn at every step and decoded; in training, each example
keeps the sample whose decoded keypoints are closest (mean squared error over the 3K values) to
the step's target keypoints, and only that sample receives gradient. Without targets (inference)
sample 0 is kept, which makes each trajectory an ordinary ancestral sample.

Scheduled sampling: `x_feed_t` is the decoded keypoints with probability `p` (one draw per
step for the whole batch) and the detected ones otherwise; without a target it is always the
decoded keypoints.

The GRU is Keras' `GRUCell` with its Keras 3 defaults (`reset_after=True`, sigmoid recurrent
activation, tanh activation), which differ from TF1's `reset_after=False`; both are GRUs.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

STD_EPSILON = 1e-4  # Added to the softplus of the std head, as in the published example.
# Key of the SeedGenerator's state among the layer's own saved variables (see
# `KeypointVRNN.save_own_variables`).
SEED_STATE_KEY = "seed_generator_state"


class KeypointVRNN(keras.layers.Layer):
  """VRNN over flattened keypoints; also the deterministic Struct-RNN with `deterministic=True`.

  Call `rollout` (not `__call__`) with the detected keypoints; see its docstring.
  """

  def __init__(self, num_keypoints, rnn_units=512, latent_size=16, prior_net_size=16,
               posterior_net_size=128, decoder_net_size=128, action_size=0,
               deterministic=False, seed=None, **kwargs):
    # Small: the dynamics stay in float32 under mixed precision.
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    for name, value in [("num_keypoints", num_keypoints), ("rnn_units", rnn_units),
                        ("latent_size", latent_size), ("prior_net_size", prior_net_size),
                        ("posterior_net_size", posterior_net_size),
                        ("decoder_net_size", decoder_net_size)]:
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"KeypointVRNN: `{name}` must be a positive integer, got {value!r}.")
    if action_size < 0:
      raise ValueError(f"KeypointVRNN: `action_size` must be >= 0, got {action_size}.")
    self.num_keypoints = num_keypoints
    self.rnn_units = rnn_units
    self.latent_size = 0 if deterministic else latent_size
    self.config_latent_size = latent_size
    self.prior_net_size = prior_net_size
    self.posterior_net_size = posterior_net_size
    self.decoder_net_size = decoder_net_size
    self.action_size = action_size
    self.deterministic = deterministic
    self.seed = seed

    dense = lambda units, activation, name: keras.layers.Dense(
        units, activation=activation, kernel_initializer="he_uniform", dtype=self.dtype_policy,
        name=name)
    self.gru_cell = keras.layers.GRUCell(rnn_units, dtype=self.dtype_policy, name="gru_cell")
    if not deterministic:
      self.prior_hidden = dense(prior_net_size, "relu", "prior_hidden")
      self.prior_mean = dense(latent_size, None, "prior_mean")
      self.prior_std = dense(latent_size, None, "prior_std")
      self.posterior_hidden = dense(posterior_net_size, "relu", "posterior_hidden")
      self.posterior_mean = dense(latent_size, None, "posterior_mean")
      self.posterior_std = dense(latent_size, None, "posterior_std")
    self.decoder_hidden = dense(decoder_net_size, "relu", "decoder_hidden")
    self.decoder_output = keras.layers.Dense(3 * num_keypoints, activation="tanh",
                                             kernel_initializer="glorot_uniform",
                                             dtype=self.dtype_policy, name="decoder_output")
    self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

  def build(self, input_shape=None):
    """Creates all weights (shapes do not depend on the input beyond K and the action size)."""
    if self.built:
      return
    keypoint_dim = 3 * self.num_keypoints
    self.gru_cell.build((None, keypoint_dim + self.latent_size + self.action_size))
    if not self.deterministic:
      self.prior_hidden.build((None, self.rnn_units))
      self.prior_mean.build((None, self.prior_net_size))
      self.prior_std.build((None, self.prior_net_size))
      self.posterior_hidden.build((None, self.rnn_units + keypoint_dim))
      self.posterior_mean.build((None, self.posterior_net_size))
      self.posterior_std.build((None, self.posterior_net_size))
    self.decoder_hidden.build((None, self.rnn_units + self.latent_size))
    self.decoder_output.build((None, self.decoder_net_size))
    super().build(input_shape)

  def call(self, keypoints):
    """Keras entry point (used to build the layer): a teacher-forced pass over all steps."""
    return self.rollout(keypoints, num_observed=tf.shape(keypoints)[1])["keypoints"]

  # Distribution heads. ------------------------------------------------------------------

  def _prior(self, state):
    """p(z_t | h_{t-1}): a diagonal Normal with batch shape `[B, Z]`."""
    hidden = self.prior_hidden(state)
    return tfd.Normal(self.prior_mean(hidden),
                      tf.nn.softplus(self.prior_std(hidden)) + STD_EPSILON)

  def _posterior(self, state, keypoints_flat):
    """q(z_t | h_{t-1}, x_t): a diagonal Normal with batch shape `[B, Z]`."""
    hidden = self.posterior_hidden(tf.concat([state, keypoints_flat], axis=-1))
    return tfd.Normal(self.posterior_mean(hidden),
                      tf.nn.softplus(self.posterior_std(hidden)) + STD_EPSILON)

  def _decode(self, state, latent):
    """`[B, N, U]`, `[B, N, Z]` -> `[B, N, 3K]` decoded keypoints."""
    return self.decoder_output(self.decoder_hidden(tf.concat([state, latent], axis=-1)))

  # The recurrence. ------------------------------------------------------------------------

  def rollout(self, keypoints, num_observed, num_predicted=0, actions=None, num_samples=1,
              select_best=False, feed_decoded_probability_observed=1.0,
              feed_decoded_probability_predicted=1.0, seed=None):
    """Runs the VRNN over observed steps and then predicts further steps.

    Args:
      keypoints: `[B, T_in, K, 3]` detected keypoints (the caller stops their gradient). The
        first `num_observed` steps are observed; any further steps (up to T_in) are targets
        for the predicted steps (training: best-of-many selection and teacher forcing).
      num_observed: number of observed steps n (int or scalar tensor), 1 <= n <= T_in.
      num_predicted: number of predicted steps m after the observed ones; may exceed the
        available targets (steps without a target feed their own decoded keypoints and keep
        sample 0). The rollout covers `n + max(m, T_in - n)` steps.
      actions: `[B, T, A]` with `actions[:, t]` = a_t, or None. Step t's GRU input gets
        a_{t-1} (zeros at t = 0), as in the paper's action-conditional model.
      num_samples: N, the number of z samples drawn per step for best-of-many.
      select_best: keep the sample closest to the target (training); otherwise sample 0.
      feed_decoded_probability_observed: scheduled-sampling probability of feeding the
        decoded instead of the detected keypoints at observed steps.
      feed_decoded_probability_predicted: the same at predicted steps that have a target.
      seed: optional int32 `[2]` tensor. With a seed, every random draw is a stateless op whose
        seed is derived from it and the step index, so the rollout is reproducible (the
        exported model's signatures use this); without, draws advance the layer's
        SeedGenerator.

    Returns:
      A dict with
        `keypoints`: `[B, T, K, 3]` kept decoded keypoints for every step;
        `kl`: `[B, T]` KL(q || p) summed over latent dimensions (zero at predicted steps);
        `rnn_states`: `[B, T, U]` GRU states h_t after each step.
    """
    keypoints = tf.convert_to_tensor(keypoints, tf.float32)
    batch_size = tf.shape(keypoints)[0]
    num_targets = tf.shape(keypoints)[1]
    keypoint_dim = 3 * self.num_keypoints
    if keypoints.shape[-2] is not None and keypoints.shape[-2] != self.num_keypoints:
      raise ValueError(f"KeypointVRNN: expected {self.num_keypoints} keypoints per frame, got "
                       f"keypoints of shape {keypoints.shape}.")
    targets = tf.reshape(keypoints, [batch_size, num_targets, keypoint_dim])
    static_targets = keypoints.shape[1]
    if isinstance(num_observed, int) and not (
        1 <= num_observed and (static_targets is None or num_observed <= static_targets)):
      raise ValueError(f"KeypointVRNN: `num_observed` must be in [1, {static_targets}] (the "
                       f"number of given keypoint steps), got {num_observed}.")
    if isinstance(num_observed, int):
      num_observed = tf.constant(num_observed, tf.int32)
    else:
      num_observed = tf.convert_to_tensor(num_observed, tf.int32)
      tf.debugging.assert_greater_equal(
          num_observed, 1, message="KeypointVRNN: `num_observed` must be >= 1")
      tf.debugging.assert_less_equal(
          num_observed, num_targets,
          message="KeypointVRNN: `num_observed` exceeds the given keypoint steps")
    num_steps = num_observed + tf.maximum(tf.convert_to_tensor(num_predicted, tf.int32),
                                          num_targets - num_observed)
    if self.action_size:
      if actions is None:
        raise ValueError(f"KeypointVRNN: this model is action-conditional (action_size="
                         f"{self.action_size}) and needs `actions` of shape [B, T, "
                         f"{self.action_size}].")
      actions = tf.convert_to_tensor(actions, tf.float32)
      if actions.shape[-1] is not None and actions.shape[-1] != self.action_size:
        raise ValueError(f"KeypointVRNN: expected actions with {self.action_size} values per "
                         f"step, got shape {actions.shape}.")
      # a_{t-1} for step t; a zero action before the first frame.
      previous_actions = tf.concat(
          [tf.zeros([batch_size, 1, self.action_size]), actions[:, :-1]], axis=1)
    if not isinstance(num_samples, int) or num_samples < 1:
      raise ValueError(f"KeypointVRNN: `num_samples` must be a positive integer, got "
                       f"{num_samples!r}.")
    num_samples = num_samples if self.latent_size else 1
    if seed is not None:
      seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)

    def draw_seed(index):
      """A stateless seed for draw `index` of this rollout (or the layer's next seed)."""
      if seed is None:
        # Keras' own mapping of its int64 generator state to an int32 stateless seed.
        return tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)
      return tf.random.experimental.stateless_fold_in(seed, index)

    def draw_uniform(t):
      return tf.random.stateless_uniform([], draw_seed(2 * t + 1))

    def step(t, state, keypoints_array, kl_array, state_array):
      has_target = t < num_targets
      observed = t < num_observed
      target = tf.cond(has_target, lambda: targets[:, tf.minimum(t, num_targets - 1)],
                       lambda: tf.zeros([batch_size, keypoint_dim]))
      tiled_state = tf.repeat(state[:, tf.newaxis], num_samples, axis=1)  # [B, N, U]

      if self.latent_size:
        prior = self._prior(state)
        posterior = self._posterior(state, target)
        # N samples per example from one draw of standard-normal noise, shared by the prior
        # and the posterior (only one of the two is used at a step).
        noise_seed = draw_seed(2 * t)
        posterior_z = _sample_per_example(posterior, num_samples, noise_seed)
        prior_z = tf.stop_gradient(_sample_per_example(prior, num_samples, noise_seed))
        latent = tf.where(observed, posterior_z, prior_z)  # [B, N, Z]
        kl = tf.reduce_sum(tfd.kl_divergence(posterior, prior), axis=-1)
        kl = tf.where(observed, kl, tf.zeros_like(kl))
      else:
        latent = tf.zeros([batch_size, num_samples, 0])
        kl = tf.zeros([batch_size])

      decoded = self._decode(tiled_state, latent)  # [B, N, 3K]
      if select_best:
        distance = tf.reduce_mean(tf.square(decoded - target[:, tf.newaxis]), axis=-1)
        best = tf.where(has_target, tf.argmin(distance, axis=1, output_type=tf.int32),
                        tf.zeros([batch_size], tf.int32))
      else:
        best = tf.zeros([batch_size], tf.int32)
      kept_keypoints = tf.gather(decoded, best, axis=1, batch_dims=1)  # [B, 3K]
      kept_latent = tf.gather(latent, best, axis=1, batch_dims=1)  # [B, Z]

      probability = tf.where(observed, feed_decoded_probability_observed,
                             feed_decoded_probability_predicted)
      feed_decoded = tf.logical_or(
          tf.logical_not(has_target),
          draw_uniform(t) < probability)
      fed_keypoints = tf.where(feed_decoded, kept_keypoints, target)
      rnn_input = [fed_keypoints, kept_latent]
      if self.action_size:
        rnn_input.append(previous_actions[:, t])
      new_state, _ = self.gru_cell(tf.concat(rnn_input, axis=-1), [state])
      new_state = new_state[0] if isinstance(new_state, (list, tuple)) else new_state
      return (t + 1, new_state, keypoints_array.write(t, kept_keypoints),
              kl_array.write(t, kl), state_array.write(t, new_state))

    initial = (
        tf.constant(0), tf.zeros([batch_size, self.rnn_units]),
        tf.TensorArray(tf.float32, size=num_steps, element_shape=[None, keypoint_dim]),
        tf.TensorArray(tf.float32, size=num_steps, element_shape=[None]),
        tf.TensorArray(tf.float32, size=num_steps, element_shape=[None, self.rnn_units]))
    # The batch dimension may be static on entry and unknown after one step (symbolic tracing).
    invariants = (tf.TensorShape([]), tf.TensorShape([None, self.rnn_units]),
                  tf.TensorShape(None), tf.TensorShape(None), tf.TensorShape(None))
    _, _, keypoints_array, kl_array, state_array = tf.while_loop(
        lambda t, *_: t < num_steps, step, initial, shape_invariants=invariants)

    decoded_keypoints = tf.transpose(keypoints_array.stack(), [1, 0, 2])
    return {
        "keypoints": tf.reshape(decoded_keypoints,
                                [batch_size, num_steps, self.num_keypoints, 3]),
        "kl": tf.transpose(kl_array.stack(), [1, 0]),
        "rnn_states": tf.transpose(state_array.stack(), [1, 0, 2]),
    }

  # Checkpoints. ----------------------------------------------------------------------------

  def save_own_variables(self, store):
    """Saves the layer's own variables and the state of its SeedGenerator.

    Keras saves layer variables only, not a SeedGenerator's state, so a model loaded from a
    checkpoint would restart the stream of the training step's random draws (one per step, see
    `replicas.replica_seed`) at its beginning; with the state stored under `SEED_STATE_KEY`, a
    resumed run draws what an uninterrupted one draws.
    """
    super().save_own_variables(store)
    store[SEED_STATE_KEY] = self.seed_generator.state

  def load_own_variables(self, store):
    """Loads what `save_own_variables` saved; a checkpoint written before the seed state was
    saved loads too, and keeps the SeedGenerator at its initial state."""
    if SEED_STATE_KEY in store:
      self.seed_generator.state.assign(store[SEED_STATE_KEY])
    super().load_own_variables({key: store[key] for key in store.keys() if key != SEED_STATE_KEY})

  def get_config(self):
    config = super().get_config()
    config.update(num_keypoints=self.num_keypoints, rnn_units=self.rnn_units,
                  latent_size=self.config_latent_size, prior_net_size=self.prior_net_size,
                  posterior_net_size=self.posterior_net_size,
                  decoder_net_size=self.decoder_net_size, action_size=self.action_size,
                  deterministic=self.deterministic, seed=self.seed)
    return config


def _sample_per_example(distribution, num_samples, seed):
  """`num_samples` reparameterised draws of a `[B, Z]` Normal, shaped `[B, N, Z]`
  (`loc + scale * noise`, the noise from one stateless draw of shape `[B, N, Z]`)."""
  loc = distribution.loc[:, tf.newaxis]
  scale = distribution.scale[:, tf.newaxis]
  shape = tf.stack([tf.shape(loc)[0], num_samples, tf.shape(loc)[2]])
  expanded = tfd.Normal(tf.broadcast_to(loc, shape), tf.broadcast_to(scale, shape))
  return expanded.sample(seed=seed)
