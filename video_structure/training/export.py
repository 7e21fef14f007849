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
"""

import keras
import tensorflow as tf

from video_structure import io_utils
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

  def detect_keypoints(frames):
    return {"keypoints": model.detect(ops.frames_to_model(frames))[0]}

  def reconstruct(keypoints, first_frame):
    first = ops.frames_to_model(first_frame)
    first_keypoints = model.keypoint_detector(first)[0]
    return {"frames": ops.frames_to_uint8(model.reconstruct(keypoints, first, first_keypoints))}

  def predict(frames, num_predicted, num_samples, seed, *actions):
    result = model.predict_future(ops.frames_to_model(frames), num_predicted, num_samples,
                                  actions[0] if actions else None, seed=seed)
    return {"observed_keypoints": result["observed_keypoints"],
            "keypoints": result["keypoints"], "frames": ops.frames_to_uint8(result["frames"])}

  def predict_from_keypoints(keypoints, first_frame, num_predicted, num_samples, seed,
                             *actions):
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
