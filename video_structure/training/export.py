"""Export a trained model as a TensorFlow SavedModel with inference signatures.

The exported directory loads with `tf.saved_model.load(path)` alone (no project code, no
Keras). Frames cross the boundary as uint8 `[B, T, H, W, 3]` and come back as uint8; keypoints
are float32 `(x, y, mu)` in the project convention. Signatures:

  detect_keypoints(frames)                     -> {keypoints [B, T, K, 3]}
  reconstruct(keypoints, first_frame)          -> {frames [B, T, H, W, 3] uint8}
  predict(frames, num_predicted, num_samples, seed)
      -> {observed_keypoints [B, n, K, 3], keypoints [s, B, n + m, K, 3],
          frames [s, B, n + m, H, W, 3] uint8}
  predict_from_keypoints(keypoints, first_frame, num_predicted, num_samples, seed)
      -> {keypoints [s, B, n + m, K, 3], frames [s, B, n + m, H, W, 3] uint8}
`seed` is an int32 `[2]`; equal seeds give equal samples. For action-conditional models the
prediction signatures take an extra `actions` `[B, n + m, A]` input.

Every signature checks its inputs in the graph (`input_checks.InputChecks`): B >= 1, n >= 1
(T >= 1), `num_predicted` >= 0, `num_samples` >= 1, finite keypoints, one first frame (and one
actions row covering n + m steps) per sequence. A failed check raises InvalidArgumentError whose
message names the signature, the input and what it must be, e.g. "predict: `num_samples` must
be an integer >= 1 (sampled futures per sequence), got 0." uint8 frames are always in range;
the model's own checks (`StructVRNN`'s public methods) then run on the converted frames.
"""

import keras
import tensorflow as tf

from video_structure import io_utils
from video_structure.model import input_checks
from video_structure.model import ops


def export_saved_model(model, path):
  """Writes `model` as a SavedModel at `path` atomically (a temporary directory is renamed).

  Returns the path.
  """
  cfg = model.config
  size, num_keypoints = cfg.image_size, cfg.num_keypoints
  frames_spec = tf.TensorSpec([None, None, size, size, 3], tf.uint8, name="frames")
  first_frame_spec = tf.TensorSpec([None, size, size, 3], tf.uint8, name="first_frame")
  keypoints_spec = tf.TensorSpec([None, None, num_keypoints, 3], tf.float32, name="keypoints")
  scalar_spec = lambda name: tf.TensorSpec([], tf.int32, name=name)
  seed_spec = tf.TensorSpec([2], tf.int32, name="seed")
  action_specs = ([tf.TensorSpec([None, None, cfg.action_size], tf.float32, name="actions")]
                  if cfg.action_size else [])

  def checked(signature, frames_or_keypoints, first_frame=None, counts=None, actions=()):
    """The signature's inputs after `input_checks.InputChecks` named after the signature's
    inputs (`frames` uint8 `[B, n, H, W, 3]` or `keypoints` `[B, n, K, 3]`, first)."""
    checks = input_checks.InputChecks(signature)
    if frames_or_keypoints.dtype == tf.uint8:
      name = "frames"
      checks.not_empty(frames_or_keypoints, name, "[B, n, H, W, 3]" if counts else
                       "[B, T, H, W, 3]", "n" if counts else "T")
    else:
      name = "keypoints"
      frames_or_keypoints = checks.keypoints(frames_or_keypoints, name, num_keypoints,
                                             "[B, n, K, 3]" if counts else "[B, T, K, 3]")
    batch_size, num_steps = tf.shape(frames_or_keypoints)[0], tf.shape(frames_or_keypoints)[1]
    if first_frame is not None:
      checks.same_batch(first_frame, "first_frame", batch_size, name)
    if counts:
      num_predicted, num_samples = counts
      checks.count(num_predicted, "num_predicted", 0, "future steps to predict")
      checks.count(num_samples, "num_samples", 1, "sampled futures per sequence")
      if actions:
        checks.actions(actions[0], cfg.action_size, batch_size, name,
                       num_steps + num_predicted, "n + m")
    return checks.gate(frames_or_keypoints, first_frame, *(counts or ()), *actions)

  def detect_keypoints(frames):
    frames, _ = checked("detect_keypoints", frames)
    return {"keypoints": model.detect(ops.frames_to_model(frames))[0]}

  def reconstruct(keypoints, first_frame):
    keypoints, first_frame = checked("reconstruct", keypoints, first_frame)
    first = ops.frames_to_model(first_frame)
    first_keypoints = model.keypoint_detector(first)[0]
    return {"frames": ops.frames_to_uint8(model.reconstruct(keypoints, first, first_keypoints))}

  def predict(frames, num_predicted, num_samples, seed, *actions):
    frames, _, num_predicted, num_samples, *actions = checked(
        "predict", frames, counts=(num_predicted, num_samples), actions=actions)
    result = model.predict_future(ops.frames_to_model(frames), num_predicted, num_samples,
                                  actions[0] if actions else None, seed=seed)
    return {"observed_keypoints": result["observed_keypoints"],
            "keypoints": result["keypoints"], "frames": ops.frames_to_uint8(result["frames"])}

  def predict_from_keypoints(keypoints, first_frame, num_predicted, num_samples, seed,
                             *actions):
    keypoints, first_frame, num_predicted, num_samples, *actions = checked(
        "predict_from_keypoints", keypoints, first_frame, (num_predicted, num_samples), actions)
    result = model.predict_from_keypoints(
        keypoints, ops.frames_to_model(first_frame), num_predicted, num_samples,
        actions[0] if actions else None, seed=seed)
    return {"keypoints": result["keypoints"], "frames": ops.frames_to_uint8(result["frames"])}

  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint("detect_keypoints", detect_keypoints, [frames_spec])
  archive.add_endpoint("reconstruct", reconstruct, [keypoints_spec, first_frame_spec])
  archive.add_endpoint("predict", predict,
                       [frames_spec, scalar_spec("num_predicted"), scalar_spec("num_samples"),
                        seed_spec] + action_specs)
  archive.add_endpoint("predict_from_keypoints", predict_from_keypoints,
                       [keypoints_spec, first_frame_spec, scalar_spec("num_predicted"),
                        scalar_spec("num_samples"), seed_spec] + action_specs)

  return io_utils.atomic_save_directory(
      path, lambda temporary: archive.write_out(temporary, verbose=False))
