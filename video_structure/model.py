"""Struct-VRNN: the keypoint autoencoder and the keypoint dynamics model in one `keras.Model`.

Data flow of a training step (`train_step`):
  frames [B, T, H, W, 3] in [-0.5, 0.5]
    -> keypoint_detector (per frame)        -> keypoints [B, T, K, 3], heatmaps [B, T, S, S, K]
    -> keypoint_renderer + image_reconstructor (with the first frame's appearance and maps)
                                            -> reconstruction [B, T, H, W, 3]   (image loss)
    -> stop_gradient(keypoints) -> dynamics (VRNN, best of many, scheduled sampling)
                                            -> decoded keypoints [B, T, K, 3]   (keypoint loss)
                                               kl [B, T]                         (KL loss)
The stop-gradient keeps dynamics errors out of the vision nets (paper footnote 2).
The step counter is `optimizer.iterations`; it drives KL annealing, scheduled sampling and the
optional warm-ups, so a restored optimizer resumes every schedule where it stopped.
"""

import keras
import tensorflow as tf

from video_structure import config as config_lib
from video_structure import distribute as distribute_lib
from video_structure import dynamics as dynamics_lib
from video_structure import losses
from video_structure import ops
from video_structure import vision

LOSS_NAMES = ("image", "moving_pixels", "foreground_attention", "foreground_colour",
              "concentration", "keypoint", "kl", "separation", "sparsity", "supervised",
              "weight_decay")


@keras.saving.register_keras_serializable(package="video_structure")
class StructVRNN(keras.Model):
  """Struct-VRNN (and Struct-RNN with `config.dynamics == "rnn"`)."""

  def __init__(self, config, **kwargs):
    # The model itself runs in float32 (no autocast of its inputs); its conv layers follow the
    # global policy, which is `mixed_bfloat16` when `config.mixed_precision` is set.
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    if isinstance(config, dict):
      config = config_lib.Config.from_dict(config)
    self.config = config.validate()
    cfg = self.config
    # The representation: keypoints (Struct-VRNN) or, for the CNN-VRNN baseline, an
    # unstructured 3K-vector shaped [K, 3] with a learned renderer; everything else is shared.
    if cfg.representation == "features":
      self.keypoint_detector = vision.FeatureEncoder(
          cfg.num_keypoints, cfg.image_size, cfg.heatmap_size, cfg.initial_filters,
          cfg.layers_per_scale, cfg.weight_decay, name="keypoint_detector")
    else:
      self.keypoint_detector = vision.KeypointDetector(
          cfg.num_keypoints, cfg.image_size, cfg.heatmap_size, cfg.initial_filters,
          cfg.layers_per_scale, cfg.weight_decay, cfg.heatmap_bias_init, cfg.heatmap_init_gain,
          name="keypoint_detector")
    self.appearance_encoder = vision.ImageEncoder(
        cfg.image_size, cfg.heatmap_size, cfg.initial_filters, cfg.layers_per_scale,
        cfg.weight_decay, name="appearance_encoder")
    if cfg.representation == "features":
      self.keypoint_renderer = vision.FeatureRenderer(cfg.num_keypoints, cfg.heatmap_size,
                                                      name="keypoint_renderer")
    else:
      self.keypoint_renderer = vision.KeypointRenderer(cfg.heatmap_size, cfg.keypoint_width,
                                                       name="keypoint_renderer")
    self.image_reconstructor = vision.ImageReconstructor(
        cfg.image_size, cfg.heatmap_size, 3, self.appearance_encoder.output_filters,
        cfg.layers_per_scale, cfg.weight_decay, name="image_reconstructor")
    self.dynamics = dynamics_lib.KeypointVRNN(
        cfg.num_keypoints, cfg.rnn_units, cfg.latent_size, cfg.prior_net_size,
        cfg.posterior_net_size, cfg.decoder_net_size, cfg.action_size,
        deterministic=cfg.dynamics == "rnn", seed=cfg.seed, name="dynamics")
    # Auxiliary decoder of the foreground colours from the detector's features (a CPU recipe
    # aid, `losses.foreground_colour_loss`): one 1x1 conv to each cell's pixels.
    self.foreground_colour_decoder = None
    if cfg.foreground_colour_weight and cfg.representation != "features":
      pool = cfg.image_size // cfg.heatmap_size
      self.foreground_colour_decoder = keras.layers.Conv2D(
          3 * pool * pool, 1, dtype="float32", name="foreground_colour_decoder")
    self.loss_trackers = {name: keras.metrics.Mean(name=f"{name}_loss") for name in LOSS_NAMES}
    self.loss_trackers["total"] = keras.metrics.Mean(name="loss")

  def get_config(self):
    return {"config": self.config.to_dict(), "name": self.name}

  @classmethod
  def from_config(cls, config):
    return cls(**config)

  def build(self, input_shape=None):
    """Creates every weight by running the model once on a zero window of the configured
    size (the sub-layers create their weights on their first call); the input shape is
    taken from the config, so this also serves `keras.models.load_model`."""
    if self.built:
      return
    self.built = True  # Set first: the call below must not recurse into build.
    cfg = self.config
    inputs = {"image": tf.zeros([1, cfg.sequence_length, cfg.image_size, cfg.image_size, 3])}
    if cfg.action_size:
      inputs["actions"] = tf.zeros([1, cfg.sequence_length, cfg.action_size])
    self.call(inputs)
    if self.foreground_colour_decoder is not None:
      self.foreground_colour_decoder.build(
          [None, cfg.heatmap_size, cfg.heatmap_size, self.keypoint_detector.encoder.output_filters])

  @property
  def metrics(self):
    return list(self.loss_trackers.values())

  # Vision. ----------------------------------------------------------------------------------

  def detect(self, frames):
    """Detects keypoints in every frame.

    Args:
      frames: `[B, T, H, W, 3]` float32 in [-0.5, 0.5].

    Returns:
      keypoints `[B, T, K, 3]` float32 (CNN-VRNN: its features) and raw heatmaps
      `[B, T, S, S, K]` float32 (None for the CNN-VRNN, which has none).
    """
    batch_size = tf.shape(frames)[0]
    keypoints, heatmaps = self.keypoint_detector(ops.fold_time(frames))
    if heatmaps is not None:
      heatmaps = ops.unfold_time(heatmaps, batch_size)
    return ops.unfold_time(keypoints, batch_size), heatmaps

  def detect_with_features(self, frames):
    """As `detect` (keypoint representation only), also returning the detector's encoder
    features `[B, T, S, S, F]` float32 (the input of its heatmap head)."""
    batch_size = tf.shape(frames)[0]
    keypoints, heatmaps, features = self.keypoint_detector.detect_with_features(
        ops.fold_time(frames))
    return tuple(ops.unfold_time(tensor, batch_size) for tensor in (keypoints, heatmaps, features))

  def reconstruct(self, keypoints, first_frame, first_frame_keypoints, keypoint_width=None,
                  presence_weight=None):
    """Renders frames from keypoints and the first frame.

    Args:
      keypoints: `[B, T, K, 3]` keypoints of the frames to render.
      first_frame: `[B, H, W, 3]` float32 in [-0.5, 0.5] (appearance and skip connection).
      first_frame_keypoints: `[B, K, 3]` keypoints detected in the first frame.
      keypoint_width: optional blob width (heatmap pixels) overriding the configured one.
      presence_weight: optional w in [0, 1]: blobs are drawn with mu' = 1 - w (1 - mu), so
        w = 0 ignores mu (the presence warm-up of the CPU preset); None means 1.

    Returns:
      `[B, T, H, W, 3]` float32 frames.
    """
    batch_size = tf.shape(keypoints)[0]
    num_frames = tf.shape(keypoints)[1]
    appearance = self.appearance_encoder(first_frame)  # once per sequence: [B, S, S, F]
    render = lambda kp: self.keypoint_renderer(kp, keypoint_width, presence_weight)
    first_maps = render(first_frame_keypoints)  # [B, S, S, K]
    maps = render(ops.fold_time(keypoints))  # [B*T, S, S, K]
    repeat = lambda tensor: tf.repeat(tensor, num_frames, axis=0)  # row b*T + t <- b
    frames = self.image_reconstructor(maps, repeat(appearance), repeat(first_maps),
                                      repeat(first_frame))
    return ops.unfold_time(frames, batch_size)

  def call(self, inputs, training=False):
    """Autoencodes the frames and runs the dynamics teacher-forced over them.

    Args:
      inputs: `[B, T, H, W, 3]` frames in [-0.5, 0.5], or a dict with `image` (and `actions`).

    Returns:
      dict with `keypoints` `[B, T, K, 3]`, `reconstruction` `[B, T, H, W, 3]` and
      `decoded_keypoints` `[B, T, K, 3]` (the dynamics' one-step decodings).
    """
    frames, actions = self._unpack(inputs)
    keypoints, _ = self.detect(frames)
    reconstruction = self.reconstruct(keypoints, frames[:, 0], keypoints[:, 0])
    rollout = self.dynamics.rollout(tf.stop_gradient(keypoints), tf.shape(frames)[1],
                                    actions=actions, feed_decoded_probability_observed=0.0)
    return {"keypoints": keypoints, "reconstruction": reconstruction,
            "decoded_keypoints": rollout["keypoints"]}

  def _unpack(self, inputs):
    if isinstance(inputs, dict):
      if "image" not in inputs:
        raise ValueError(f"StructVRNN: input dict needs an 'image' entry, got {list(inputs)}.")
      frames, actions = inputs["image"], inputs.get("actions")
    else:
      frames, actions = inputs, None
    frames = tf.convert_to_tensor(frames)
    if not frames.dtype.is_floating:
      raise ValueError(f"StructVRNN: frames must be float32 in [-0.5, 0.5] (uint8 / 255 - 0.5), "
                       f"got dtype {frames.dtype.name}; see data.make_windows_dataset.")
    if frames.shape.rank != 5 or frames.shape[-1] != 3:
      raise ValueError(f"StructVRNN: frames must have shape [B, T, H, W, 3], got {frames.shape}.")
    frames = tf.cast(frames, tf.float32)  # Keras autocasts model inputs under mixed precision.
    size = self.config.image_size
    if frames.shape[2] not in (None, size) or frames.shape[3] not in (None, size):
      raise ValueError(f"StructVRNN: this model takes {size}x{size} frames, got "
                       f"{frames.shape[2]}x{frames.shape[3]}.")
    if actions is not None:
      actions = tf.cast(actions, tf.float32)
    return frames, actions

  # Training. --------------------------------------------------------------------------------

  def schedules(self, step):
    """The values of every step-dependent hyperparameter at training step `step`."""
    cfg = self.config
    return {
        "kl_weight": losses.linear_ramp(step, cfg.kl_anneal_steps, cfg.kl_beta),
        "feed_decoded_observed": losses.linear_ramp(
            step, cfg.scheduled_sampling_ramp_steps, cfg.scheduled_sampling_observed),
        "feed_decoded_predicted": losses.linear_ramp(
            step, cfg.scheduled_sampling_ramp_steps, cfg.scheduled_sampling_predicted),
        "keypoint_width": losses.linear_ramp(
            step, cfg.keypoint_width_anneal_steps, cfg.keypoint_width, cfg.keypoint_width_start),
        "sparsity_weight": losses.linear_ramp(
            step, cfg.sparsity_warmup_steps, cfg.sparsity_weight),
        "presence_weight": losses.linear_ramp(step, cfg.presence_warmup_steps, 1.0),
    }

  def compute_losses(self, frames, actions=None, training=True, seed=None,
                     true_positions=None):
    """Runs the model on a training window and returns every (weighted) loss term.

    Args:
      frames: `[B, T_obs + T_pred, H, W, 3]` float32 in [-0.5, 0.5].
      actions: optional `[B, T, A]`.
      training: True: best of many and scheduled sampling; False: sample 0, decoded feed.
      true_positions: `[B, T, N, 2]` ground-truth object positions; needed only by the
        supervised baselines (`supervised_weight` > 0).
      seed: optional int32 `[2]` stateless seed of the dynamics' random draws (train_step and
        test_step pass one per step and replica); None draws from the layer's SeedGenerator.

    Returns:
      (dict of scalar losses keyed by LOSS_NAMES plus `total`, dict of tensors for summaries)
    """
    cfg = self.config
    if cfg.supervised_weight and true_positions is None:
      raise ValueError("StructVRNN: a supervised variant (supervised_weight > 0) needs "
                       "`true_object_pos` in its training data.")
    schedule = self.schedules(self.optimizer.iterations if self.optimizer else 0)
    num_observed = cfg.observed_steps
    if self.foreground_colour_decoder is not None:
      keypoints, heatmaps, features = self.detect_with_features(frames)
    else:
      keypoints, heatmaps = self.detect(frames)
    # The foreground mask (a sort over time) is shared by the terms that use it.
    foreground = (losses.foreground_pixel_mask(frames, cfg.foreground_threshold)
                  if self.foreground_colour_decoder is not None
                  or (cfg.foreground_attention_weight and heatmaps is not None) else None)
    reconstruction = self.reconstruct(keypoints, frames[:, 0], keypoints[:, 0],
                                      schedule["keypoint_width"], schedule["presence_weight"])
    detected = tf.stop_gradient(keypoints)  # No dynamics error reaches the vision nets.
    if training:
      rollout = self.dynamics.rollout(
          detected, num_observed, actions=actions, num_samples=cfg.num_samples,
          select_best=True,
          feed_decoded_probability_observed=schedule["feed_decoded_observed"],
          feed_decoded_probability_predicted=schedule["feed_decoded_predicted"], seed=seed)
    else:
      rollout = self.dynamics.rollout(
          detected, num_observed, actions=actions, num_samples=1, select_best=False,
          feed_decoded_probability_observed=1.0, feed_decoded_probability_predicted=1.0,
          seed=seed)
    loss_terms = {
        "image": losses.image_loss(reconstruction, frames),
        "moving_pixels": cfg.moving_pixel_weight * losses.moving_pixel_loss(
            reconstruction, frames, cfg.moving_pixel_threshold) if cfg.moving_pixel_weight
                         else tf.constant(0.0),
        "foreground_attention": cfg.foreground_attention_weight
                                * losses.foreground_attention_loss(
                                    heatmaps, frames, cfg.foreground_threshold,
                                    reconstruction if cfg.foreground_attention_residual
                                    else None, pixel_mask=foreground)
                                if cfg.foreground_attention_weight and heatmaps is not None
                                else tf.constant(0.0),
        "foreground_colour": cfg.foreground_colour_weight * losses.foreground_colour_loss(
            self._predict_foreground_colours(features), frames, cfg.foreground_threshold,
            pixel_mask=foreground) if self.foreground_colour_decoder is not None
                             else tf.constant(0.0),
        "concentration": cfg.concentration_weight * losses.heatmap_concentration_loss(heatmaps)
                         if cfg.concentration_weight and heatmaps is not None
                         else tf.constant(0.0),
        "keypoint": losses.keypoint_prediction_loss(rollout["keypoints"], detected),
        "kl": schedule["kl_weight"] * losses.kl_loss(rollout["kl"], num_observed),
        # Separation and sparsity act on keypoint coordinates and heatmaps; the CNN-VRNN's
        # features have neither.
        "separation": cfg.separation_weight * losses.temporal_separation_loss(
            keypoints[:, :num_observed], cfg.separation_sigma) if heatmaps is not None
                      else tf.constant(0.0),
        "sparsity": schedule["sparsity_weight"] * losses.sparsity_loss(heatmaps)
                    if heatmaps is not None else tf.constant(0.0),
        "supervised": cfg.supervised_weight * losses.supervised_position_loss(
            keypoints, true_positions) if cfg.supervised_weight
                      else tf.constant(0.0),
        "weight_decay": tf.add_n([tf.cast(l, tf.float32) for l in self.losses])
                        if self.losses else tf.constant(0.0),
    }
    loss_terms["total"] = tf.add_n(list(loss_terms.values()))
    outputs = {"keypoints": keypoints, "reconstruction": reconstruction,
               "decoded_keypoints": rollout["keypoints"], "schedule": schedule}
    return loss_terms, outputs

  def _predict_foreground_colours(self, features):
    """`[B, T, S, S, F]` detector features -> `[B, T, H, W, 3]` frames predicted by the
    auxiliary decoder (each cell's pixels from its features, depth-to-space)."""
    pool = self.config.image_size // self.config.heatmap_size
    pixels = tf.nn.depth_to_space(self.foreground_colour_decoder(ops.fold_time(features)), pool)
    return ops.unfold_time(pixels, tf.shape(features)[0])

  def _update_trackers(self, loss_terms):
    for name, value in loss_terms.items():
      self.loss_trackers[name].update_state(value)
    return {tracker.name: tracker.result() for tracker in self.loss_trackers.values()}

  # Distribution (tf.distribute, Keras 3 TF trainer; verified against one device in
  # tests/test_distribute.py): each replica sees batch_size / R windows of the global batch and
  # its loss is the mean over them; Keras' optimizer clips each replica's gradients and then
  # all-reduces them with SUM. Hence the loss is divided by R, and with gradient clipping the
  # gradients are summed and clipped here first, as one device would clip the global gradient.

  def _replica_seed(self):
    """int32 `[2]`: this step's stateless seed, different on every replica. The SeedGenerator
    advances once per step, identically on all replicas (its mirrored copies stay equal and a
    checkpoint resumes the stream); folding in the replica id gives each replica its own
    best-of-many samples and scheduled-sampling draws."""
    context = tf.distribute.get_replica_context()
    replica_id = context.replica_id_in_sync_group if context is not None else 0
    step_seed = tf.cast(self.dynamics.seed_generator.next(), tf.int32)
    return tf.random.experimental.stateless_fold_in(step_seed, tf.cast(replica_id, tf.int32))

  def _global_clipped_gradients(self, gradients, num_replicas):
    """Per-replica gradients of loss / R -> 1/R of the clipped global gradient on every replica
    (the optimizer's own clip is then a no-op and its SUM all-reduce rebuilds the clipped global
    gradient)."""
    present = [g for g in gradients if g is not None]
    summed = iter(tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, present))
    summed = [None if g is None else next(summed) for g in gradients]
    optimizer = self.optimizer
    if optimizer.clipnorm:
      summed = [None if g is None else tf.clip_by_norm(g, optimizer.clipnorm) for g in summed]
    elif optimizer.global_clipnorm:
      clipped, _ = tf.clip_by_global_norm([g for g in summed if g is not None],
                                          optimizer.global_clipnorm)
      clipped = iter(clipped)
      summed = [None if g is None else next(clipped) for g in summed]
    elif optimizer.clipvalue:
      summed = [None if g is None else tf.clip_by_value(g, -optimizer.clipvalue,
                                                        optimizer.clipvalue) for g in summed]
    return [None if g is None else g / num_replicas for g in summed]

  def _mean_over_replicas(self, loss_terms):
    """The global-batch mean of every loss term on every replica, so the trackers agree and any
    reduction Keras applies to the logs (mean; first replica on TPU) reports the global batch."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
      return loss_terms
    names = sorted(loss_terms)
    means = context.all_reduce(tf.distribute.ReduceOp.MEAN, [loss_terms[n] for n in names])
    return dict(zip(names, means))

  @staticmethod
  def _true_positions(inputs):
    """The windows' ground-truth object positions if the batch has them (supervised variants)."""
    return inputs.get("true_object_pos") if isinstance(inputs, dict) else None

  def train_step(self, data):
    inputs = keras.utils.unpack_x_y_sample_weight(data)[0]
    frames, actions = self._unpack(inputs)
    num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tf.GradientTape() as tape:
      loss_terms, _ = self.compute_losses(frames, actions, training=True,
                                          seed=self._replica_seed(),
                                          true_positions=self._true_positions(inputs))
      loss = loss_terms["total"] / num_replicas if num_replicas > 1 else loss_terms["total"]
    variables = self.trainable_variables
    gradients = tape.gradient(loss, variables)
    optimizer = self.optimizer
    if num_replicas > 1 and (optimizer.clipnorm or optimizer.global_clipnorm
                             or optimizer.clipvalue):
      gradients = self._global_clipped_gradients(gradients, num_replicas)
    optimizer.apply_gradients(zip(gradients, variables))
    return self._replica_logs(loss_terms)

  def test_step(self, data):
    inputs = keras.utils.unpack_x_y_sample_weight(data)[0]
    frames, actions = self._unpack(inputs)
    loss_terms, _ = self.compute_losses(frames, actions, training=False,
                                        seed=self._replica_seed(),
                                        true_positions=self._true_positions(inputs))
    return self._replica_logs(loss_terms)

  def _replica_logs(self, loss_terms):
    logs = self._update_trackers(self._mean_over_replicas(loss_terms))
    if distribute_lib.num_workers(tf.distribute.get_strategy()) > 1:
      # Keras 3.15 reduces multi-worker logs with strategy.reduce(MEAN, axis=0), which fails on
      # scalars (tensorflow/tensorflow#72388); give each a length-1 axis, reduced away there.
      logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs

  # Inference. -------------------------------------------------------------------------------

  def predict_from_keypoints(self, observed_keypoints, first_frame, num_predicted,
                             num_samples=1, actions=None, first_frame_keypoints=None,
                             decode_frames=True, seed=None):
    """Observes keypoints for n steps and samples m future steps, s times.

    This is also the counterfactual entry point (paper Fig. 6): pass edited keypoints.

    Args:
      observed_keypoints: `[B, n, K, 3]` keypoints of the observed steps.
      first_frame: `[B, H, W, 3]` float32 in [-0.5, 0.5]: the first observed frame.
      num_predicted: m >= 0 future steps (any number, int or scalar tensor).
      num_samples: s independent stochastic rollouts per example.
      actions: optional `[B, n + m, A]` for an action-conditional model.
      first_frame_keypoints: `[B, K, 3]` keypoints of the first frame for the reconstructor;
        default: detected in `first_frame`.
      decode_frames: also render the predicted keypoints into frames.
      seed: optional int32 `[2]`: makes the samples reproducible (see KeypointVRNN.rollout).

    Returns:
      dict with `keypoints` `[s, B, n + m, K, 3]` (the dynamics' decodings: observed steps are
      reconstructions through the posterior, later steps are predictions) and, if
      `decode_frames`, `frames` `[s, B, n + m, H, W, 3]` float32.
    """
    observed_keypoints = tf.convert_to_tensor(observed_keypoints, tf.float32)
    first_frame = tf.convert_to_tensor(first_frame, tf.float32)
    batch_size = tf.shape(observed_keypoints)[0]
    num_observed = tf.shape(observed_keypoints)[1]
    if first_frame_keypoints is None:
      first_frame_keypoints = self.keypoint_detector(first_frame)[0]
    tile = lambda tensor: tf.tile(tensor, tf.concat(
        [[num_samples], tf.ones([tf.rank(tensor) - 1], tf.int32)], 0))
    tiled_actions = None if actions is None else tile(tf.cast(actions, tf.float32))
    rollout = self.dynamics.rollout(tile(observed_keypoints), num_observed, num_predicted,
                                    actions=tiled_actions, num_samples=1, select_best=False,
                                    seed=seed)
    keypoints = rollout["keypoints"]  # [s*B, n+m, K, 3], sample-major
    result = {"keypoints": tf.reshape(keypoints, tf.concat(
        [[num_samples, batch_size], tf.shape(keypoints)[1:]], 0))}
    if decode_frames:
      frames = self.reconstruct(keypoints, tile(first_frame), tile(first_frame_keypoints))
      result["frames"] = tf.reshape(frames, tf.concat(
          [[num_samples, batch_size], tf.shape(frames)[1:]], 0))
    return result

  def predict_future(self, observed_frames, num_predicted, num_samples=1, actions=None,
                     decode_frames=True, seed=None):
    """Observes n frames and samples m future steps, s times.

    Args:
      observed_frames: `[B, n, H, W, 3]` float32 in [-0.5, 0.5].
      num_predicted, num_samples, actions, decode_frames, seed: see
        `predict_from_keypoints`.

    Returns:
      dict with `observed_keypoints` `[B, n, K, 3]` (detected), `keypoints`
      `[s, B, n + m, K, 3]` and optionally `frames` `[s, B, n + m, H, W, 3]`.
    """
    observed_frames, _ = self._unpack(observed_frames)
    detected, _ = self.detect(observed_frames)
    result = self.predict_from_keypoints(detected, observed_frames[:, 0], num_predicted,
                                         num_samples, actions, detected[:, 0], decode_frames,
                                         seed)
    result["observed_keypoints"] = detected
    return result


def build_model(config):
  """Creates a StructVRNN, builds its weights on a dummy window and compiles it with Adam.

  The learning rate halves every `learning_rate_decay_steps` (staircase) and every gradient
  tensor is clipped to norm `clipnorm` (Keras' per-tensor `clipnorm`).
  """
  if config.mixed_precision:
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
  else:
    keras.mixed_precision.set_global_policy("float32")
  keras.utils.set_random_seed(config.seed)
  model = StructVRNN(config)
  model.build()
  learning_rate = keras.optimizers.schedules.ExponentialDecay(
      config.learning_rate, config.learning_rate_decay_steps, 0.5, staircase=True)
  model.compile(optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.9, beta_2=0.999,
                                                clipnorm=config.clipnorm),
                jit_compile=False)  # XLA is 2-2.5x slower on this CPU (measured).
  # Creating the optimizer's slots here, not inside the first traced train step, saves a
  # second trace of the whole step.
  model.optimizer.build(model.trainable_variables)
  return model
