"""THE model-call wrapper: batched numpy-in / numpy-out calls of a trained model.

The evaluation protocol and the downstream experiments reach a trained model only through
`ModelCalls`. It wraps anything with the inference interface shared by every model variant:
`model.detect(frames)[0]` (the representation `[B, T, K, 3]`), `model.predict_future(observed,
num_predicted, num_samples, decode_frames=..., seed=...)` and, for the downstream experiments,
`model.predict_from_keypoints` and `model.dynamics.rollout`. A Keras `StructVRNN` (a checkpoint)
has it; `SavedModelAdapter` gives an exported SavedModel the same interface. Frames go in as
uint8 and are converted to the model's range here, with `model.ops.frames_to_model`.

`model_type(config)` names the variant a config trains (for reports and figure legends).
"""

import os

import keras
import numpy as np
import tensorflow as tf

from video_structure.model import ops


def model_type(config):
  """The paper's name of the variant a config trains: `cnn_vrnn` (features), `struct_rnn`
  (deterministic dynamics) or `struct_vrnn`, with `_supervised` appended for the supervised
  baselines. A missing config or field counts as the default (Struct-VRNN)."""
  if getattr(config, "representation", "keypoints") == "features":
    name = "cnn_vrnn"
  else:
    name = "struct_rnn" if getattr(config, "dynamics", "vrnn") == "rnn" else "struct_vrnn"
  return name + ("_supervised" if getattr(config, "supervised_weight", 0.0) else "")


def has_keypoints(config):
  """Whether the representation is keypoints (image positions that can be drawn), not the
  CNN-VRNN's features."""
  return getattr(config, "representation", "keypoints") != "features"


def _numpy(value):
  return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


class ModelCalls:
  """Batched numpy-in / numpy-out calls of a model's inference interface.

  With `compiled=True` a Keras model's calls are wrapped in `tf.function` (measured 1.5-2x
  faster than eager on this CPU); with `compiled=False`, and for anything that is not a Keras
  model (a `SavedModelAdapter`, a test double), the model is called as it is. A model whose
  `always_decodes_frames` attribute is true (the SavedModel's `predict` signature) gets at most
  `max_sequences` windows x samples per call, so that keypoint-only rollouts do not decode tens
  of thousands of frames at once.

  Args:
    model: the model (see the module docstring).
    max_sequences: see above.
    compiled: trace the calls of a Keras model with `tf.function`.
    feed_decoded_observed: `rnn_states`' probability of feeding the dynamics its own decoded
      keypoints at observed steps (the training setting of the run; 0 = teacher forcing).
  """

  def __init__(self, model, max_sequences=64, compiled=True, feed_decoded_observed=0.0):
    self.model = model
    self.max_sequences = max_sequences if getattr(model, "always_decodes_frames", False) \
        else None
    self.feed_decoded_observed = float(feed_decoded_observed)
    if not 0.0 <= self.feed_decoded_observed <= 1.0:
      raise ValueError(f"feed_decoded_observed is a probability in [0, 1], got "
                       f"{feed_decoded_observed!r}.")
    self._compiled = bool(compiled) and isinstance(model, keras.Model)
    self._predict_functions = {}
    self._detect = self._maybe_compile(lambda frames: model.detect(frames)[0])
    self._states = None

  def _maybe_compile(self, function):
    # No autograph: the model's code has no Python control flow on tensors, and converting it
    # took more than half of the first call's time (identical outputs without it).
    return (tf.function(function, reduce_retracing=True, autograph=False) if self._compiled
            else function)

  def detect(self, frames_uint8):
    """uint8 `[B, T, H, W, 3]` -> float32 `[B, T, K, 3]` representation."""
    return _numpy(self._detect(ops.frames_to_model(frames_uint8))).astype(np.float32)

  def predict(self, observed_uint8, num_predicted, num_samples, decode_frames, seed):
    """Samples futures.

    Args:
      observed_uint8: uint8 `[B, n, H, W, 3]`.
      num_predicted, num_samples: ints.
      decode_frames: also return frames.
      seed: (int, int) stateless seed.

    Returns:
      dict with `keypoints` float32 `[s, B, n + m, K, 3]` and, if `decode_frames`, `frames`
      float32 `[s, B, n + m, H, W, 3]` (the model's range, about [-0.5, 0.5]).
    """
    if self.max_sequences and len(observed_uint8) * num_samples > self.max_sequences:
      return self._predict_in_chunks(observed_uint8, num_predicted, num_samples, decode_frames,
                                     seed)
    key = (int(num_predicted), int(num_samples), bool(decode_frames))
    function = self._predict_functions.get(key)
    if function is None:
      model = self.model

      def function(observed, seed_tensor):
        return model.predict_future(observed, key[0], key[1], decode_frames=key[2],
                                    seed=seed_tensor)

      function = self._maybe_compile(function)
      self._predict_functions[key] = function
    result = function(ops.frames_to_model(observed_uint8),
                      tf.constant([int(seed[0]), int(seed[1])], tf.int32))
    output = {"keypoints": _numpy(result["keypoints"]).astype(np.float32)}
    if decode_frames:
      output["frames"] = _numpy(result["frames"]).astype(np.float32)
    return output

  def _predict_in_chunks(self, observed_uint8, num_predicted, num_samples, decode_frames, seed):
    """`predict` over groups of windows and samples of at most `max_sequences` sequences; chunk
    k > 0 uses the seed (seed[0] + 100003 k, seed[1])."""
    samples_per_call = min(num_samples, self.max_sequences)
    windows_per_call = max(1, self.max_sequences // samples_per_call)
    rows, chunk = [], 0
    for start in range(0, len(observed_uint8), windows_per_call):
      columns = []
      for sample_start in range(0, num_samples, samples_per_call):
        count = min(samples_per_call, num_samples - sample_start)
        chunk_seed = (int(seed[0]) + 100003 * chunk, int(seed[1]))
        columns.append(self.predict(observed_uint8[start:start + windows_per_call],
                                    num_predicted, count, decode_frames, chunk_seed))
        chunk += 1
      rows.append({key: np.concatenate([column[key] for column in columns], axis=0)
                   for key in columns[0]})
    return {key: np.concatenate([row[key] for row in rows], axis=1) for key in rows[0]}

  def predict_from_keypoints(self, observed_keypoints, first_frame_uint8, num_predicted,
                             num_samples, first_frame_keypoints, seed):
    """Rolls the dynamics out from given observed keypoints and decodes frames.

    Args:
      observed_keypoints: `[B, n, K, 3]` (e.g. detected keypoints, possibly manipulated).
      first_frame_uint8: uint8 `[B, H, W, 3]`, the frame the appearance is taken from.
      num_predicted, num_samples: ints.
      first_frame_keypoints: `[B, K, 3]` keypoints detected in the first frame.
      seed: (int, int) stateless seed.

    Returns:
      dict of numpy arrays: `keypoints` `[S, B, n + m, K, 3]`, `frames`
      `[S, B, n + m, H, W, 3]` (the model's range).
    """
    result = self.model.predict_from_keypoints(
        tf.constant(observed_keypoints), ops.frames_to_model(first_frame_uint8),
        num_predicted,
        num_samples=num_samples, first_frame_keypoints=tf.constant(first_frame_keypoints),
        decode_frames=True, seed=tf.constant(seed, tf.int32))
    return {"keypoints": _numpy(result["keypoints"]), "frames": _numpy(result["frames"])}

  def rnn_states(self, keypoints, actions=None, seed=(0, 0)):
    """The dynamics run over all T steps in observed mode -> `[B, T, U]` GRU states h_t.

    Args:
      keypoints: `[B, T, K, 3]` detected keypoints.
      actions: `[B, T, A]` for an action-conditional model (ignored by an unconditional one).
      seed: int `[2]`, makes the z draws reproducible.
    """
    action_size = self.model.config.action_size
    if action_size and actions is None:
      raise ValueError(f"This model is action-conditional (action_size={action_size}); the "
                       f"data must provide `actions`.")
    if actions is not None:
      actions = np.asarray(actions, np.float32)
      if not action_size:
        actions = None  # An unconditional model ignores actions.
      elif actions.shape[-1] != action_size:
        raise ValueError(f"The data's actions have {actions.shape[-1]} values per step; the "
                         f"model expects action_size={action_size}.")
    if self._states is None:
      model = self.model

      def states(keypoints, actions, seed):
        rollout = model.dynamics.rollout(
            keypoints, num_observed=tf.shape(keypoints)[1], actions=actions, num_samples=1,
            select_best=False, feed_decoded_probability_observed=self.feed_decoded_observed,
            seed=seed)
        return rollout["rnn_states"]

      self._states = self._maybe_compile(states)
    return _numpy(self._states(np.asarray(keypoints, np.float32), actions,
                               tf.constant(seed, tf.int32)))


class SavedModelAdapter:
  """The inference interface (`detect`, `predict_future`, `config`) of an exported SavedModel,
  through its signatures (`training/export.py`): frames go in as uint8 and come back as uint8,
  so the adapter converts from and to the model's float range. Note that the `predict`
  signature always decodes frames, so keypoint-only rollouts (tracking) cost as much as decoded
  ones.
  """

  always_decodes_frames = True

  def __init__(self, path, config):
    if not os.path.isdir(path) or not os.path.exists(os.path.join(path, "saved_model.pb")):
      raise FileNotFoundError(f"--saved_model {path!r} is not a SavedModel directory (no "
                              f"saved_model.pb); export.py writes <run_dir>/saved_model.")
    self.path = path
    self.config = config
    loaded = tf.saved_model.load(path)
    missing = [name for name in ("detect_keypoints", "predict") if name not in loaded.signatures]
    if missing:
      raise ValueError(f"SavedModel {path!r} lacks the signature(s) {missing}; found "
                       f"{sorted(loaded.signatures)}.")
    self._loaded = loaded
    self._detect = loaded.signatures["detect_keypoints"]
    self._predict = loaded.signatures["predict"]
    if "actions" in self._predict.structured_input_signature[1]:
      raise ValueError(f"SavedModel {path!r} is action-conditional; evaluate.py does not feed "
                       f"actions yet.")

  def detect(self, frames):
    """float32 `[B, T, H, W, 3]` in [-0.5, 0.5] -> (keypoints `[B, T, K, 3]`, None)."""
    return self._detect(frames=ops.frames_to_uint8(frames))["keypoints"], None

  def predict_future(self, observed_frames, num_predicted, num_samples=1, actions=None,
                     decode_frames=True, seed=None):
    """As `StructVRNN.predict_future` (frames come back quantised to 1/255)."""
    if actions is not None:
      raise ValueError("SavedModelAdapter.predict_future: actions are not supported.")
    seed = tf.constant([0, 0], tf.int32) if seed is None else tf.cast(seed, tf.int32)
    result = self._predict(frames=ops.frames_to_uint8(observed_frames),
                           num_predicted=tf.constant(int(num_predicted), tf.int32),
                           num_samples=tf.constant(int(num_samples), tf.int32), seed=seed)
    output = {"keypoints": result["keypoints"],
              "observed_keypoints": result["observed_keypoints"]}
    if decode_frames:
      output["frames"] = ops.frames_to_model(result["frames"])
    return output
