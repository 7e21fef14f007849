"""Tests of the SavedModel export (`video_structure/training/export.py`).

The exported model is loaded in a fresh Python process that imports only TensorFlow and
numpy, so the test also proves that no project code is needed to run it.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from video_structure.training import builder
from video_structure.model import ops
from video_structure.training import export

BATCH, NUM_OBSERVED, NUM_KEYPOINTS, IMAGE_SIZE = 2, 8, 4, 64
SEED = [11, 3]
# Past the training horizon (8 predicted steps) and below it.
LONG_HORIZON, SHORT_HORIZON = 20, 5

# Runs in a fresh interpreter: TensorFlow and numpy only.
LOADER_SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np
    import tensorflow as tf
    path, io_dir = sys.argv[1], sys.argv[2]
    inputs = np.load(os.path.join(io_dir, "inputs.npz"))
    frames, edited, seed = inputs["frames"], inputs["edited_keypoints"], inputs["seed"]
    loaded = tf.saved_model.load(path)
    outputs = {}
    outputs["detect"] = loaded.detect_keypoints(tf.constant(frames))["keypoints"]
    for horizon in (%(short)d, %(long)d):
      result = loaded.predict(tf.constant(frames[:, :%(observed)d]), tf.constant(horizon),
                              tf.constant(3), tf.constant(seed))
      for key, value in result.items():
        outputs[f"predict_{horizon}_{key}"] = value
    result = loaded.predict_from_keypoints(tf.constant(edited), tf.constant(frames[:, 0]),
                                           tf.constant(%(short)d), tf.constant(2),
                                           tf.constant(seed))
    for key, value in result.items():
      outputs[f"from_keypoints_{key}"] = value
    outputs["reconstruct"] = loaded.reconstruct(tf.constant(edited),
                                                tf.constant(frames[:, 0]))["frames"]
    for key, value in outputs.items():
      np.save(os.path.join(io_dir, key + ".npy"), value.numpy())
    print("project modules imported:",
          sorted(m for m in sys.modules if m.startswith("video_structure")))
""") % dict(short=SHORT_HORIZON, long=LONG_HORIZON, observed=NUM_OBSERVED)


def _uint8_frames(batch=BATCH, num_frames=16, seed=0):
  """uint8 `[B, T, 64, 64, 3]`: a bright square moving right on a random dark background."""
  rng = np.random.default_rng(seed)
  frames = rng.integers(0, 60, [batch, num_frames, IMAGE_SIZE, IMAGE_SIZE, 3], dtype=np.uint8)
  for t in range(num_frames):
    frames[:, t, 20:30, 5 + 3 * t:15 + 3 * t] = [250, 200, 40]
  return frames


@pytest.fixture(scope="module")
def model():
  keras.mixed_precision.set_global_policy("float32")
  return builder.build_model(helpers.tiny_config(batch_size=BATCH, num_keypoints=NUM_KEYPOINTS))


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
  """Exports the model, runs every signature in a fresh process and returns its outputs."""
  directory = tmp_path_factory.mktemp("export")
  path = export.export_saved_model(model, str(directory / "saved_model"))
  frames = _uint8_frames()
  detected = model.detect(ops.frames_to_model(frames[:, :NUM_OBSERVED]))[0].numpy()
  edited = detected.copy()
  edited[:, :, 1, 0] = np.clip(edited[:, :, 1, 0] + 0.5, -1, 1)
  np.savez(directory / "inputs.npz", frames=frames, edited_keypoints=edited,
           seed=np.array(SEED, np.int32))
  environment = dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="2")
  completed = subprocess.run(
      [sys.executable, "-c", LOADER_SCRIPT, path, str(directory)], cwd=str(directory),
      env=environment, capture_output=True, text=True, timeout=300)
  assert completed.returncode == 0, completed.stderr[-3000:]
  outputs = {name[:-4]: np.load(directory / name) for name in os.listdir(directory)
             if name.endswith(".npy")}
  return dict(path=path, directory=directory, frames=frames, edited=edited, outputs=outputs,
              stdout=completed.stdout)


def _assert_frames_close(actual_uint8, expected_float):
  """Exported uint8 frames vs the in-memory float frames: rounding may differ by one level
  where the float value sits at a rounding boundary."""
  expected = ops.frames_to_uint8(tf.constant(expected_float)).numpy()
  assert actual_uint8.dtype == np.uint8
  assert actual_uint8.shape == expected.shape
  difference = np.abs(actual_uint8.astype(int) - expected.astype(int))
  assert difference.max() <= 1
  assert np.mean(difference == 0) > 0.999


def test_fresh_process_needed_no_project_code(exported):
  assert "project modules imported: []" in exported["stdout"]


def test_exported_detect_matches_model(model, exported):
  expected = model.detect(ops.frames_to_model(exported["frames"]))[0].numpy()
  actual = exported["outputs"]["detect"]
  assert actual.shape == (BATCH, 16, NUM_KEYPOINTS, 3) and actual.dtype == np.float32
  np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("horizon", [SHORT_HORIZON, LONG_HORIZON])
def test_exported_predict_matches_model_with_same_seed(model, exported, horizon):
  observed = ops.frames_to_model(exported["frames"][:, :NUM_OBSERVED])
  expected = model.predict_future(observed, horizon, 3, seed=tf.constant(SEED, tf.int32))
  outputs = exported["outputs"]
  total = NUM_OBSERVED + horizon
  keypoints = outputs[f"predict_{horizon}_keypoints"]
  assert keypoints.shape == (3, BATCH, total, NUM_KEYPOINTS, 3)
  assert outputs[f"predict_{horizon}_frames"].shape == (3, BATCH, total, IMAGE_SIZE,
                                                        IMAGE_SIZE, 3)
  np.testing.assert_allclose(keypoints, expected["keypoints"], rtol=0, atol=1e-5)
  np.testing.assert_allclose(outputs[f"predict_{horizon}_observed_keypoints"],
                             expected["observed_keypoints"], rtol=0, atol=1e-5)
  _assert_frames_close(outputs[f"predict_{horizon}_frames"], expected["frames"])
  # The samples are distinct draws, and the frames are not all one value.
  assert np.abs(keypoints[0] - keypoints[1]).max() > 1e-4
  assert outputs[f"predict_{horizon}_frames"].std() > 1.0


def test_exported_predict_from_keypoints_matches_model(model, exported):
  first_frame = ops.frames_to_model(exported["frames"][:, 0])
  expected = model.predict_from_keypoints(exported["edited"], first_frame, SHORT_HORIZON, 2,
                                          seed=tf.constant(SEED, tf.int32))
  outputs = exported["outputs"]
  assert outputs["from_keypoints_keypoints"].shape == (2, BATCH, NUM_OBSERVED + SHORT_HORIZON,
                                                       NUM_KEYPOINTS, 3)
  np.testing.assert_allclose(outputs["from_keypoints_keypoints"], expected["keypoints"],
                             rtol=0, atol=1e-5)
  _assert_frames_close(outputs["from_keypoints_frames"], expected["frames"])


def test_exported_reconstruct_runs(model, exported):
  first_frame = ops.frames_to_model(exported["frames"][:, 0])
  first_keypoints = model.keypoint_detector(first_frame)[0]
  expected = model.reconstruct(tf.constant(exported["edited"]), first_frame, first_keypoints)
  actual = exported["outputs"]["reconstruct"]
  assert actual.shape == (BATCH, NUM_OBSERVED, IMAGE_SIZE, IMAGE_SIZE, 3)
  _assert_frames_close(actual, expected.numpy())


def test_export_is_atomic_and_can_overwrite(model, exported):
  path = exported["path"]
  parent = os.path.dirname(path)
  assert os.path.exists(os.path.join(path, "saved_model.pb"))
  assert not os.path.exists(path + ".tmp") and not os.path.exists(path + ".old")
  # A crashed earlier export left a half-written temporary directory behind.
  os.makedirs(path + ".tmp")
  with open(os.path.join(path + ".tmp", "saved_model.pb"), "wb") as f:
    f.write(b"half written")
  # Re-export a changed model over the existing directory.
  detector_bias = model.keypoint_detector.heatmap_head.bias
  original_bias = detector_bias.numpy()
  try:
    detector_bias.assign(original_bias + np.linspace(0, 2, original_bias.size))
    assert export.export_saved_model(model, path) == path
    assert sorted(n for n in os.listdir(parent) if n.startswith("saved_model")) == [
        "saved_model"]
    frames = exported["frames"][:, :3]
    reloaded = tf.saved_model.load(path)
    np.testing.assert_allclose(reloaded.detect_keypoints(tf.constant(frames))["keypoints"],
                               model.detect(ops.frames_to_model(frames))[0], atol=1e-5)
  finally:
    detector_bias.assign(original_bias)


# Bad inputs: checked inside the graph, messages stored in the SavedModel. -------------------

def _with_nan(keypoints):
  keypoints = keypoints.copy()
  keypoints[0, 1, 2, 0] = np.nan
  return keypoints


# (id, signature, inputs(frames uint8 [2, 16, ...], keypoints [2, 8, K, 3]), exact message)
BAD_SIGNATURE_INPUTS = [
    ("detect_empty_batch", "detect_keypoints", lambda f, k: [f[:0]],
     "detect_keypoints: `frames` must hold at least one sequence (B >= 1 in [B, T, H, W, 3]), "
     "got shape [0, 16, 64, 64, 3]."),
    ("detect_no_frames", "detect_keypoints", lambda f, k: [f[:, :0]],
     "detect_keypoints: `frames` must hold at least one step per sequence (T >= 1 in "
     "[B, T, H, W, 3]), got shape [2, 0, 64, 64, 3]."),
    ("predict_empty_batch", "predict", lambda f, k: [f[:0, :8], 3, 2, SEED],
     "predict: `frames` must hold at least one sequence (B >= 1 in [B, n, H, W, 3]), got shape "
     "[0, 8, 64, 64, 3]."),
    ("predict_no_frames", "predict", lambda f, k: [f[:, :0], 3, 2, SEED],
     "predict: `frames` must hold at least one step per sequence (n >= 1 in [B, n, H, W, 3]), "
     "got shape [2, 0, 64, 64, 3]."),
    ("predict_no_samples", "predict", lambda f, k: [f[:, :8], 3, 0, SEED],
     "predict: `num_samples` must be an integer >= 1 (sampled futures per sequence), got 0."),
    ("predict_negative_samples", "predict", lambda f, k: [f[:, :8], 3, -1, SEED],
     "predict: `num_samples` must be an integer >= 1 (sampled futures per sequence), got -1."),
    ("predict_negative_horizon", "predict", lambda f, k: [f[:, :8], -1, 2, SEED],
     "predict: `num_predicted` must be an integer >= 0 (future steps to predict), got -1."),
    ("from_keypoints_empty_batch", "predict_from_keypoints",
     lambda f, k: [k[:0], f[:0, 0], 3, 2, SEED],
     "predict_from_keypoints: `keypoints` must hold at least one sequence (B >= 1 in "
     "[B, n, K, 3]), got shape [0, 8, 4, 3]."),
    ("from_keypoints_no_steps", "predict_from_keypoints",
     lambda f, k: [k[:, :0], f[:, 0], 3, 2, SEED],
     "predict_from_keypoints: `keypoints` must hold at least one step per sequence (n >= 1 in "
     "[B, n, K, 3]), got shape [2, 0, 4, 3]."),
    ("from_keypoints_batches_differ", "predict_from_keypoints",
     lambda f, k: [k, f[:1, 0], 3, 2, SEED],
     "predict_from_keypoints: `first_frame` has batch size 1 but `keypoints` has 2; both must "
     "hold the same sequences."),
    ("from_keypoints_nan", "predict_from_keypoints",
     lambda f, k: [_with_nan(k), f[:, 0], 3, 2, SEED],
     "predict_from_keypoints: `keypoints` contains NaN or infinite values; pass finite "
     "keypoints."),
    ("from_keypoints_no_samples", "predict_from_keypoints",
     lambda f, k: [k, f[:, 0], 3, 0, SEED],
     "predict_from_keypoints: `num_samples` must be an integer >= 1 (sampled futures per "
     "sequence), got 0."),
    ("from_keypoints_negative_horizon", "predict_from_keypoints",
     lambda f, k: [k, f[:, 0], -4, 2, SEED],
     "predict_from_keypoints: `num_predicted` must be an integer >= 0 (future steps to "
     "predict), got -4."),
    ("reconstruct_no_steps", "reconstruct", lambda f, k: [k[:, :0], f[:, 0]],
     "reconstruct: `keypoints` must hold at least one step per sequence (T >= 1 in "
     "[B, T, K, 3]), got shape [2, 0, 4, 3]."),
    ("reconstruct_batches_differ", "reconstruct", lambda f, k: [k, f[:1, 0]],
     "reconstruct: `first_frame` has batch size 1 but `keypoints` has 2; both must hold the "
     "same sequences."),
]


def _signature_arrays(inputs, exported):
  """A case's inputs as numpy arrays: ints become int32 scalars, the seed int32 [2]."""
  return [np.asarray(value, np.int32) if isinstance(value, (int, list)) else np.asarray(value)
          for value in inputs(exported["frames"], exported["edited"])]


@pytest.fixture(scope="module")
def loaded(exported):
  return tf.saved_model.load(exported["path"])


@pytest.mark.parametrize("signature, inputs, message",
                         [case[1:] for case in BAD_SIGNATURE_INPUTS],
                         ids=[case[0] for case in BAD_SIGNATURE_INPUTS])
def test_reloaded_signatures_refuse_bad_inputs_with_clear_messages(exported, loaded, signature,
                                                                   inputs, message):
  arguments = [tf.constant(array) for array in _signature_arrays(inputs, exported)]
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    getattr(loaded, signature)(*arguments)
  assert f"assertion failed: [{message}]" in error.value.message


# Runs in a fresh interpreter: every bad input of BAD_SIGNATURE_INPUTS, messages to JSON.
BAD_INPUTS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import tensorflow as tf
    path, io_dir = sys.argv[1], sys.argv[2]
    with open(os.path.join(io_dir, "cases.json")) as f:
      cases = json.load(f)
    arrays = np.load(os.path.join(io_dir, "bad_inputs.npz"))
    loaded = tf.saved_model.load(path)
    messages = {}
    for name, signature, count in cases:
      try:
        getattr(loaded, signature)(*[tf.constant(arrays[f"{name}_{i}"]) for i in range(count)])
        messages[name] = None
      except tf.errors.InvalidArgumentError as error:
        messages[name] = error.message
    with open(os.path.join(io_dir, "messages.json"), "w") as f:
      json.dump(messages, f)
""")


@pytest.mark.slow
def test_the_checks_survive_reloading_in_a_fresh_process(exported, tmp_path):
  arrays, cases = {}, []
  for name, signature, inputs, _ in BAD_SIGNATURE_INPUTS:
    values = _signature_arrays(inputs, exported)
    arrays.update({f"{name}_{i}": value for i, value in enumerate(values)})
    cases.append([name, signature, len(values)])
  np.savez(tmp_path / "bad_inputs.npz", **arrays)
  (tmp_path / "cases.json").write_text(json.dumps(cases))
  environment = dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="2")
  completed = subprocess.run(
      [sys.executable, "-c", BAD_INPUTS_SCRIPT, exported["path"], str(tmp_path)],
      cwd=str(tmp_path), env=environment, capture_output=True, text=True, timeout=300)
  assert completed.returncode == 0, completed.stderr[-3000:]
  messages = json.loads((tmp_path / "messages.json").read_text())
  for name, _, _, message in BAD_SIGNATURE_INPUTS:
    assert messages[name] is not None, f"{name}: accepted"
    assert f"assertion failed: [{message}]" in messages[name], name


@pytest.mark.slow
def test_action_conditional_signatures_check_the_actions(tmp_path):
  model = builder.build_model(helpers.tiny_config(batch_size=BATCH, num_keypoints=NUM_KEYPOINTS,
                                                  action_size=2))
  path = export.export_saved_model(model, str(tmp_path / "saved_model"))
  reloaded = tf.saved_model.load(path)
  frames = tf.constant(_uint8_frames()[:, :NUM_OBSERVED])
  counts = [tf.constant(SHORT_HORIZON), tf.constant(2), tf.constant(SEED)]
  total = NUM_OBSERVED + SHORT_HORIZON
  for actions, message in [
      (np.zeros([BATCH, total - 1, 2], np.float32),
       f"predict: `actions` must cover the n + m = {total} steps, got shape [2, {total - 1}, 2]."),
      (np.zeros([1, total, 2], np.float32),
       "predict: `actions` has batch size 1 but `frames` has 2; both must hold the same "
       "sequences."),
  ]:
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
      reloaded.predict(frames, *counts, tf.constant(actions))
    assert f"assertion failed: [{message}]" in error.value.message
  result = reloaded.predict(frames, *counts, tf.zeros([BATCH, total, 2]))
  assert result["keypoints"].shape == (2, BATCH, total, NUM_KEYPOINTS, 3)
