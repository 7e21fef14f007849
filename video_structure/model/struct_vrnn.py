"""Struct-VRNN: the keypoint autoencoder and the keypoint dynamics model in one `keras.Model`.

The model is composed from the parts of Figure 1, passed in (the Keras idiom
`VAE(encoder, decoder)`); `build_parts(config)` makes the paper's parts from a `Config`.

Data flow of a training step (`train_step`):
  frames [B, T, H, W, 3] in [-0.5, 0.5]
    -> detector (per frame)                 -> keypoints [B, T, K, 3], heatmaps [B, T, S, S, K]
    -> renderer + reconstructor (with the first frame's appearance and maps)
                                            -> reconstruction [B, T, H, W, 3]   (image loss)
    -> stop_gradient(keypoints) -> dynamics (VRNN, best of many, scheduled sampling)
                                            -> decoded keypoints [B, T, K, 3]   (keypoint loss)
                                               kl [B, T]                         (KL loss)
The stop-gradient keeps dynamics errors out of the vision nets (paper footnote 2).
The step counter is `optimizer.iterations`; it drives KL annealing and scheduled sampling, so a
restored optimizer resumes every schedule where it stopped.

Inputs are checked at the public entry points (`detect`, `detect_with_features`, `reconstruct`,
`call`, `predict_from_keypoints`, `predict_future`; `fit` and `evaluate` for frames in memory) by
`input_checks.InputChecks`: frames float in [-0.5, 0.5] (`ops.frames_to_model`), shapes,
counts. Failures are ValueErrors, or inside a graph InvalidArgumentErrors with the same message.
The training step checks only what is known when it is traced, so it pays nothing per step.

A training recipe (optional; the paper presets use none) plugs into the training loss only. It
is a `keras.layers.Layer` registered with Keras serialisation, constructed as
`RecipeClass(settings: dict, model_config: Config)`, with
  `part_options(settings) -> dict`   (classmethod) extra keyword arguments of `build_parts`;
  `loss_names`                       names of the loss terms it adds;
  `needs_detector_features`          whether `loss_terms` needs the detector's features;
  `schedule(step, schedule) -> dict` the step's schedule, with entries changed or added
                                     (`presence_weight` reaches the renderer);
  `loss_terms(frames, heatmaps, features, reconstruction) -> dict` weighted scalar terms;
  `settings_dict()`                  its settings, stored with the model.
"""

import keras
import numpy as np
import tensorflow as tf

from video_structure.model import config as config_lib
from video_structure.model import dynamics as dynamics_lib
from video_structure.model import input_checks
from video_structure.model import losses
from video_structure.model import ops
from video_structure.model import replicas
from video_structure.model import unstructured
from video_structure.model import vision

# The paper's loss terms, in the order they are summed (a recipe's terms follow `image`).
LOSS_NAMES = ("image", "keypoint", "kl", "separation", "sparsity", "supervised", "weight_decay")


def build_parts(config, heatmap_bias_init=0.0, heatmap_init_gain=1.0):
  """The parts of Figure 1 for `config`, created in a fixed order (weights initialise from
  Keras' global seed in construction order, so the order is part of the result).

  Args:
    config: a `Config`.
    heatmap_bias_init, heatmap_init_gain: initialisation of the keypoint detector's heatmap
      head (the paper's: 0 and 1, i.e. zero bias and Glorot-uniform kernel).

  Returns:
    dict of `detector`, `appearance_encoder`, `renderer`, `reconstructor`, `dynamics`.
  """
  cfg = config
  # The representation: keypoints (Struct-VRNN) or, for the CNN-VRNN baseline, an
  # unstructured 3K-vector shaped [K, 3] with a learned renderer; everything else is shared.
  if cfg.representation == "features":
    detector = unstructured.FeatureEncoder(
        cfg.num_keypoints, cfg.image_size, cfg.heatmap_size, cfg.initial_filters,
        cfg.layers_per_scale, cfg.weight_decay, name="keypoint_detector")
  else:
    detector = vision.KeypointDetector(
        cfg.num_keypoints, cfg.image_size, cfg.heatmap_size, cfg.initial_filters,
        cfg.layers_per_scale, cfg.weight_decay, heatmap_bias_init, heatmap_init_gain,
        name="keypoint_detector")
  appearance_encoder = vision.ImageEncoder(
      cfg.image_size, cfg.heatmap_size, cfg.initial_filters, cfg.layers_per_scale,
      cfg.weight_decay, name="appearance_encoder")
  if cfg.representation == "features":
    renderer = unstructured.FeatureRenderer(cfg.num_keypoints, cfg.heatmap_size,
                                            name="keypoint_renderer")
  else:
    renderer = vision.KeypointRenderer(cfg.heatmap_size, cfg.keypoint_width,
                                       name="keypoint_renderer")
  reconstructor = vision.ImageReconstructor(
      cfg.image_size, cfg.heatmap_size, 3, appearance_encoder.output_filters,
      cfg.layers_per_scale, cfg.weight_decay, name="image_reconstructor")
  dynamics = dynamics_lib.KeypointVRNN(
      cfg.num_keypoints, cfg.rnn_units, cfg.latent_size, cfg.prior_net_size,
      cfg.posterior_net_size, cfg.decoder_net_size, cfg.action_size,
      deterministic=cfg.dynamics == "rnn", seed=cfg.seed, name="dynamics")
  return dict(detector=detector, appearance_encoder=appearance_encoder, renderer=renderer,
              reconstructor=reconstructor, dynamics=dynamics)


@keras.saving.register_keras_serializable(package="video_structure")
class StructVRNN(keras.Model):
  """Struct-VRNN (and Struct-RNN with `config.dynamics == "rnn"`, CNN-VRNN with
  `config.representation == "features"`).

  Args:
    config: the `Config` (the paper's hyperparameters) the parts were built from.
    detector, appearance_encoder, renderer, reconstructor, dynamics: the parts (`build_parts`).
    recipe: optional training recipe (module docstring), or None for the paper's objective.
  """

  def __init__(self, config, detector, appearance_encoder, renderer, reconstructor, dynamics,
               recipe=None, **kwargs):
    # The model itself runs in float32 (no autocast of its inputs); its conv layers follow the
    # global policy, which is `mixed_bfloat16` when `config.mixed_precision` is set.
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    self.config = config.validate()
    # Attribute names and their order fix the checkpoint layout and the variable order.
    self.keypoint_detector = detector
    self.appearance_encoder = appearance_encoder
    self.keypoint_renderer = renderer
    self.image_reconstructor = reconstructor
    self.dynamics = dynamics
    self.recipe = recipe
    loss_names = LOSS_NAMES[:1] + (tuple(recipe.loss_names) if recipe else ()) + LOSS_NAMES[1:]
    self.loss_trackers = {name: keras.metrics.Mean(name=f"{name}_loss") for name in loss_names}
    self.loss_trackers["total"] = keras.metrics.Mean(name="loss")

  def get_config(self):
    recipe = None
    if self.recipe is not None:
      recipe = {"class_name": keras.saving.get_registered_name(type(self.recipe)),
                "settings": self.recipe.settings_dict()}
    return {"config": self.config.to_dict(), "recipe": recipe, "name": self.name}

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    model_config = config_lib.Config.from_dict(config.pop("config"))
    recipe_spec = config.pop("recipe", None)
    recipe_class = part_options = None
    if recipe_spec is not None:
      recipe_class = keras.saving.get_registered_object(recipe_spec["class_name"])
      if recipe_class is None:
        raise ValueError(f"StructVRNN: unknown recipe {recipe_spec['class_name']!r}; import "
                         f"the module that registers it before loading.")
      part_options = recipe_class.part_options(recipe_spec["settings"])
    parts = build_parts(model_config, **(part_options or {}))
    recipe = (None if recipe_class is None
              else recipe_class(recipe_spec["settings"], model_config))
    return cls(model_config, **parts, recipe=recipe, **config)

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
    if self.recipe is not None:
      self.recipe.build()

  @property
  def metrics(self):
    return list(self.loss_trackers.values())

  # Vision. ----------------------------------------------------------------------------------
  # The public methods check their inputs (`input_checks.InputChecks`); the training step calls the
  # unchecked `_` versions, so that it pays no per-step checks.

  def _frames_checks(self, entry_point, frames, name="frames"):
    """(input_checks.InputChecks, frames) with `frames` `[B, T, H, W, 3]` checked."""
    checks = input_checks.InputChecks(f"StructVRNN.{entry_point}")
    return checks, checks.frames(frames, name, self.config.image_size)

  def detect(self, frames):
    """Detects keypoints in every frame.

    Args:
      frames: `[B, T, H, W, 3]` float32 in [-0.5, 0.5] (`ops.frames_to_model`), B, T >= 1.

    Returns:
      keypoints `[B, T, K, 3]` float32 (CNN-VRNN: its features) and raw heatmaps
      `[B, T, S, S, K]` float32 (None for the CNN-VRNN, which has none).

    Raises:
      ValueError: bad frames (dtype, shape, values outside [-0.5, 0.5]); inside a graph, an
        InvalidArgumentError with the same message for what only the values show.
    """
    checks, frames = self._frames_checks("detect", frames)
    return self._detect(*checks.gate(frames))

  def _detect(self, frames):
    batch_size = tf.shape(frames)[0]
    keypoints, heatmaps = self.keypoint_detector(ops.fold_time(frames))
    if heatmaps is not None:
      heatmaps = ops.unfold_time(heatmaps, batch_size)
    return ops.unfold_time(keypoints, batch_size), heatmaps

  def detect_with_features(self, frames):
    """As `detect` (keypoint representation only), also returning the detector's encoder
    features `[B, T, S, S, F]` float32 (the input of its heatmap head)."""
    checks, frames = self._frames_checks("detect_with_features", frames)
    return self._detect_with_features(*checks.gate(frames))

  def _detect_with_features(self, frames):
    batch_size = tf.shape(frames)[0]
    keypoints, heatmaps, features = self.keypoint_detector.detect_with_features(
        ops.fold_time(frames))
    return tuple(ops.unfold_time(tensor, batch_size) for tensor in (keypoints, heatmaps, features))

  def reconstruct(self, keypoints, first_frame, first_frame_keypoints, presence_weight=None):
    """Renders frames from keypoints and the first frame.

    Args:
      keypoints: `[B, T, K, 3]` keypoints of the frames to render; B, T >= 1.
      first_frame: `[B, H, W, 3]` float32 in [-0.5, 0.5] (appearance and skip connection).
      first_frame_keypoints: `[B, K, 3]` keypoints detected in the first frame.
      presence_weight: optional w in [0, 1]: blobs are drawn with mu' = 1 - w (1 - mu), so
        w = 0 ignores mu (a recipe's presence warm-up); None draws mu as it is (the paper).

    Returns:
      `[B, T, H, W, 3]` float32 frames.
    """
    checks = input_checks.InputChecks("StructVRNN.reconstruct")
    num_keypoints = self.config.num_keypoints
    keypoints = checks.keypoints(keypoints, "keypoints", num_keypoints)
    first_frame = checks.frames(first_frame, "first_frame", self.config.image_size,
                                "[B, H, W, 3]")
    first_frame_keypoints = checks.keypoints(first_frame_keypoints, "first_frame_keypoints",
                                             num_keypoints, "[B, K, 3]")
    batch_size = input_checks.dim(keypoints, 0)
    checks.same_batch(first_frame, "first_frame", batch_size, "keypoints")
    checks.same_batch(first_frame_keypoints, "first_frame_keypoints", batch_size, "keypoints")
    keypoints, first_frame, first_frame_keypoints = checks.gate(
        keypoints, first_frame, first_frame_keypoints)
    return self._reconstruct(keypoints, first_frame, first_frame_keypoints, presence_weight)

  def _reconstruct(self, keypoints, first_frame, first_frame_keypoints, presence_weight=None):
    batch_size = tf.shape(keypoints)[0]
    num_frames = tf.shape(keypoints)[1]
    appearance = self.appearance_encoder(first_frame)  # once per sequence: [B, S, S, F]
    render = lambda kp: self.keypoint_renderer(kp, presence_weight=presence_weight)
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
    frames, actions = self._unpack(inputs, "call")
    keypoints, _ = self._detect(frames)
    reconstruction = self._reconstruct(keypoints, frames[:, 0], keypoints[:, 0])
    rollout = self.dynamics.rollout(tf.stop_gradient(keypoints), tf.shape(frames)[1],
                                    actions=actions, feed_decoded_probability_observed=0.0)
    return {"keypoints": keypoints, "reconstruction": reconstruction,
            "decoded_keypoints": rollout["keypoints"]}

  def _unpack(self, inputs, entry_point, static_only=False):
    """(frames float32 `[B, T, H, W, 3]`, actions float32 or None) of a batch: `[B, T, H, W, 3]`
    frames or a dict with `image` (and `actions`), checked by
    `input_checks.InputChecks(static_only)`."""
    checks = input_checks.InputChecks(f"StructVRNN.{entry_point}", static_only=static_only)
    if isinstance(inputs, dict):
      if "image" not in inputs:
        raise ValueError(f"{checks.entry_point}: the input dict needs an 'image' entry "
                         f"(frames [B, T, H, W, 3]), got keys {sorted(inputs)}.")
      frames, actions, name = inputs["image"], inputs.get("actions"), "inputs['image']"
    else:
      frames, actions, name = inputs, None, "inputs"
    frames = checks.frames(frames, name, self.config.image_size)
    frames = tf.cast(frames, tf.float32)  # Keras autocasts model inputs under mixed precision.
    actions = checks.actions(actions, self.config.action_size, input_checks.dim(frames, 0), name,
                             input_checks.dim(frames, 1), "T")
    actions = None if actions is None else tf.cast(actions, tf.float32)
    return checks.gate(frames, actions)

  # Training. --------------------------------------------------------------------------------

  def schedules(self, step):
    """The values of every step-dependent hyperparameter at training step `step`."""
    cfg = self.config
    schedule = {
        "kl_weight": losses.linear_ramp(step, cfg.kl_anneal_steps, cfg.kl_beta),
        "feed_decoded_observed": losses.linear_ramp(
            step, cfg.scheduled_sampling_ramp_steps, cfg.scheduled_sampling_observed),
        "feed_decoded_predicted": losses.linear_ramp(
            step, cfg.scheduled_sampling_ramp_steps, cfg.scheduled_sampling_predicted),
        "sparsity_weight": cfg.sparsity_weight,
    }
    if self.recipe is not None:
      schedule = self.recipe.schedule(step, schedule)
    return schedule

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
      (dict of scalar losses keyed by the tracked loss names plus `total`, dict of tensors for
      summaries)
    """
    cfg = self.config
    if cfg.supervised_weight and true_positions is None:
      raise ValueError("StructVRNN: a supervised variant (supervised_weight > 0) needs "
                       "`true_object_pos` in its training data.")
    schedule = self.schedules(self.optimizer.iterations if self.optimizer else 0)
    num_observed = cfg.observed_steps
    features = None
    if self.recipe is not None and self.recipe.needs_detector_features:
      keypoints, heatmaps, features = self._detect_with_features(frames)
    else:
      keypoints, heatmaps = self._detect(frames)
    reconstruction = self._reconstruct(keypoints, frames[:, 0], keypoints[:, 0],
                                       presence_weight=schedule.get("presence_weight"))
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
    zero = tf.constant(0.0)
    loss_terms = {"image": losses.image_loss(reconstruction, frames)}
    if self.recipe is not None:
      loss_terms.update(self.recipe.loss_terms(frames, heatmaps, features, reconstruction))
    loss_terms["keypoint"] = losses.keypoint_prediction_loss(rollout["keypoints"], detected)
    loss_terms["kl"] = schedule["kl_weight"] * losses.kl_loss(rollout["kl"], num_observed)
    # Separation and sparsity act on keypoint coordinates and heatmaps; the CNN-VRNN's features
    # have neither.
    loss_terms["separation"] = cfg.separation_weight * losses.temporal_separation_loss(
        keypoints[:, :num_observed], cfg.separation_sigma) if heatmaps is not None else zero
    loss_terms["sparsity"] = (schedule["sparsity_weight"] * losses.sparsity_loss(heatmaps)
                              if heatmaps is not None else zero)
    loss_terms["supervised"] = cfg.supervised_weight * losses.supervised_position_loss(
        keypoints, true_positions) if cfg.supervised_weight else zero
    loss_terms["weight_decay"] = (tf.add_n([tf.cast(l, tf.float32) for l in self.losses])
                                  if self.losses else zero)
    loss_terms["total"] = tf.add_n(list(loss_terms.values()))
    outputs = {"keypoints": keypoints, "reconstruction": reconstruction,
               "decoded_keypoints": rollout["keypoints"], "schedule": schedule}
    return loss_terms, outputs

  def _update_trackers(self, loss_terms):
    for name, value in loss_terms.items():
      self.loss_trackers[name].update_state(value)
    return {tracker.name: tracker.result() for tracker in self.loss_trackers.values()}

  @staticmethod
  def _true_positions(inputs):
    """The windows' ground-truth object positions if the batch has them (supervised variants)."""
    return inputs.get("true_object_pos") if isinstance(inputs, dict) else None

  def train_step(self, data):
    inputs = keras.utils.unpack_x_y_sample_weight(data)[0]
    # Static checks only: a value check per step would cost time; `fit` and `evaluate` check
    # in-memory frames once, and the data pipeline makes its frames with `frames_to_model`.
    frames, actions = self._unpack(inputs, "train_step", static_only=True)
    num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tf.GradientTape() as tape:
      loss_terms, _ = self.compute_losses(
          frames, actions, training=True, seed=replicas.replica_seed(self.dynamics.seed_generator),
          true_positions=self._true_positions(inputs))
      loss = loss_terms["total"] / num_replicas if num_replicas > 1 else loss_terms["total"]
    variables = self.trainable_variables
    gradients = tape.gradient(loss, variables)
    if replicas.needs_global_clipping(self.optimizer, num_replicas):
      gradients = replicas.global_clipped_gradients(gradients, self.optimizer, num_replicas)
    self.optimizer.apply_gradients(zip(gradients, variables))
    return self._replica_logs(loss_terms)

  def test_step(self, data):
    inputs = keras.utils.unpack_x_y_sample_weight(data)[0]
    frames, actions = self._unpack(inputs, "test_step", static_only=True)
    loss_terms, _ = self.compute_losses(
        frames, actions, training=False, seed=replicas.replica_seed(self.dynamics.seed_generator),
        true_positions=self._true_positions(inputs))
    return self._replica_logs(loss_terms)

  def _replica_logs(self, loss_terms):
    return replicas.logs_for_strategy(
        self._update_trackers(replicas.mean_over_replicas(loss_terms)))

  # Inference. -------------------------------------------------------------------------------

  def _prediction_checks(self, checks, keypoints_name, batch_size, num_observed, num_predicted,
                         num_samples, actions, seed):
    """Checks the counts, actions and seed of a prediction; returns them converted."""
    num_predicted = checks.count(num_predicted, "num_predicted", 0, "future steps to predict")
    num_samples = checks.count(num_samples, "num_samples", 1, "sampled futures per sequence")
    actions = checks.actions(actions, self.config.action_size, batch_size, keypoints_name,
                             num_observed + num_predicted, "n + m")
    return num_predicted, num_samples, actions, checks.seed(seed)

  def predict_from_keypoints(self, observed_keypoints, first_frame, num_predicted,
                             num_samples=1, actions=None, first_frame_keypoints=None,
                             decode_frames=True, seed=None):
    """Observes keypoints for n steps and samples m future steps, s times.

    This is also the counterfactual entry point (paper Fig. 6): pass edited keypoints.

    Args:
      observed_keypoints: `[B, n, K, 3]` finite keypoints of the observed steps; B, n >= 1.
      first_frame: `[B, H, W, 3]` float32 in [-0.5, 0.5]: the first observed frame.
      num_predicted: m >= 0 future steps (any number, int or integer scalar tensor).
      num_samples: s >= 1 independent stochastic rollouts per example (int or scalar tensor).
      actions: `[B, n + m, A]` for an action-conditional model (required there; ignored by
        other models).
      first_frame_keypoints: `[B, K, 3]` keypoints of the first frame for the reconstructor;
        default: detected in `first_frame`.
      decode_frames: also render the predicted keypoints into frames.
      seed: optional int32 `[2]`: makes the samples reproducible (see KeypointVRNN.rollout).

    Returns:
      dict with `keypoints` `[s, B, n + m, K, 3]` (the dynamics' decodings: observed steps are
      reconstructions through the posterior, later steps are predictions) and, if
      `decode_frames`, `frames` `[s, B, n + m, H, W, 3]` float32.

    Raises:
      ValueError: a bad input (see `input_checks.InputChecks`); inside a graph, an
        InvalidArgumentError with the same message for what only the values show.
    """
    checks = input_checks.InputChecks("StructVRNN.predict_from_keypoints")
    num_keypoints = self.config.num_keypoints
    observed_keypoints = checks.keypoints(observed_keypoints, "observed_keypoints",
                                          num_keypoints, "[B, n, K, 3]")
    first_frame = checks.frames(first_frame, "first_frame", self.config.image_size,
                                "[B, H, W, 3]")
    batch_size = input_checks.dim(observed_keypoints, 0)
    checks.same_batch(first_frame, "first_frame", batch_size, "observed_keypoints")
    if first_frame_keypoints is not None:
      first_frame_keypoints = checks.keypoints(first_frame_keypoints, "first_frame_keypoints",
                                               num_keypoints, "[B, K, 3]")
      checks.same_batch(first_frame_keypoints, "first_frame_keypoints", batch_size,
                        "observed_keypoints")
    num_predicted, num_samples, actions, seed = self._prediction_checks(
        checks, "observed_keypoints", batch_size, input_checks.dim(observed_keypoints, 1),
        num_predicted, num_samples, actions, seed)
    observed_keypoints, first_frame, first_frame_keypoints, actions = checks.gate(
        observed_keypoints, first_frame, first_frame_keypoints, actions)
    return self._predict_from_keypoints(observed_keypoints, first_frame, num_predicted,
                                        num_samples, actions, first_frame_keypoints,
                                        decode_frames, seed)

  def _predict_from_keypoints(self, observed_keypoints, first_frame, num_predicted, num_samples,
                              actions, first_frame_keypoints, decode_frames, seed):
    observed_keypoints = tf.cast(observed_keypoints, tf.float32)
    first_frame = tf.cast(first_frame, tf.float32)
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
      frames = self._reconstruct(keypoints, tile(first_frame), tile(first_frame_keypoints))
      result["frames"] = tf.reshape(frames, tf.concat(
          [[num_samples, batch_size], tf.shape(frames)[1:]], 0))
    return result

  def predict_future(self, observed_frames, num_predicted, num_samples=1, actions=None,
                     decode_frames=True, seed=None):
    """Observes n frames and samples m future steps, s times.

    Args:
      observed_frames: `[B, n, H, W, 3]` float32 in [-0.5, 0.5] (`ops.frames_to_model`);
        B, n >= 1.
      num_predicted, num_samples, actions, decode_frames, seed: see
        `predict_from_keypoints`.

    Returns:
      dict with `observed_keypoints` `[B, n, K, 3]` (detected), `keypoints`
      `[s, B, n + m, K, 3]` and optionally `frames` `[s, B, n + m, H, W, 3]`.

    Raises:
      ValueError: as `predict_from_keypoints`.
    """
    checks = input_checks.InputChecks("StructVRNN.predict_future")
    observed_frames = checks.frames(observed_frames, "observed_frames", self.config.image_size,
                                    "[B, n, H, W, 3]")
    num_predicted, num_samples, actions, seed = self._prediction_checks(
        checks, "observed_frames", input_checks.dim(observed_frames, 0),
        input_checks.dim(observed_frames, 1), num_predicted, num_samples, actions, seed)
    observed_frames, actions = checks.gate(tf.cast(observed_frames, tf.float32), actions)
    detected, _ = self._detect(observed_frames)
    result = self._predict_from_keypoints(detected, observed_frames[:, 0], num_predicted,
                                          num_samples, actions, detected[:, 0], decode_frames,
                                          seed)
    result["observed_keypoints"] = detected
    return result

  # Keras' training entry points. -----------------------------------------------------------

  def fit(self, x=None, *args, **kwargs):
    """`keras.Model.fit`; frames given in memory (an array, or a dict with `image`) are
    checked once here (the training step checks no values). Datasets are not read ahead."""
    self._check_in_memory_frames(x, "fit")
    return super().fit(x, *args, **kwargs)

  def evaluate(self, x=None, *args, **kwargs):
    """`keras.Model.evaluate`, with the in-memory frame check of `fit`."""
    self._check_in_memory_frames(x, "evaluate")
    return super().evaluate(x, *args, **kwargs)

  def _check_in_memory_frames(self, x, entry_point):
    frames = x.get("image") if isinstance(x, dict) else x
    if not (isinstance(frames, np.ndarray) or tf.is_tensor(frames) and tf.executing_eagerly()):
      return
    frames = np.asarray(frames)
    if frames.dtype.kind != "f" or not frames.size:
      return  # The training step's static check names a wrong dtype.
    low, high = frames.min(), frames.max()
    limit = 0.5 + input_checks.FRAME_RANGE_TOLERANCE
    name = "x['image']" if isinstance(x, dict) else "x"
    input_checks.InputChecks(f"StructVRNN.{entry_point}").require(
        bool(low >= -limit and high <= limit),
        f"`{name}` must have values in [-0.5, 0.5], got values in [{{}}, {{}}]; "
        f"{input_checks.CONVERT_FRAMES}.", low, high)
