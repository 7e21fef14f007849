"""Tests of video_structure/evaluation/frame_metrics.py: SSIM and PSNR per frame against known
values and tf.image, the closest/furthest-sample reduction, and the VGG16 cosine similarity's
weight handling (never downloaded, never random: tested with random weights written to a temporary
file, which stands in for a real ImageNet file). The default torchvision weights and LPIPS per
frame are tested in test_lpips.py."""


import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.legacy.saving import legacy_h5_format

from video_structure.evaluation import frame_metrics as im


def _video(value, shape=(2, 3, 16, 16, 3)):
  return np.full(shape, value, np.float32)


# PSNR / SSIM ---------------------------------------------------------------------------------


def test_psnr_of_identical_frames_is_infinite():
  frames = np.random.RandomState(0).uniform(size=(2, 3, 16, 16, 3)).astype(np.float32)
  psnr = im.psnr_per_frame(frames, frames)
  assert psnr.shape == (2, 3) and np.all(np.isposinf(psnr))


def test_psnr_of_a_constant_offset_of_a_tenth_is_20_db():
  # MSE 0.01 with max_val 1: 10 log10(1 / 0.01) = 20.
  np.testing.assert_allclose(im.psnr_per_frame(_video(0.3), _video(0.4)), 20.0, atol=1e-4)


def test_ssim_of_identical_frames_is_one():
  frames = np.random.RandomState(1).uniform(size=(2, 3, 16, 16, 3)).astype(np.float32)
  np.testing.assert_allclose(im.ssim_per_frame(frames, frames), 1.0, atol=1e-6)


def test_ssim_of_two_constant_frames_is_the_luminance_term():
  # No variance: SSIM = (2 a b + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 1)^2 (the contrast term is
  # C2 / C2 = 1). With a = 0 every product vanishes exactly: C1 / (0.25 + C1).
  c1 = 0.01**2
  np.testing.assert_allclose(im.ssim_per_frame(_video(0.0), _video(0.5)), c1 / (0.25 + c1),
                             rtol=1e-4)
  # With a = 0.5, b = 0.6 tf.image's float32 variance E[x^2] - E[x]^2 is off by ~1e-7, which
  # against C2 = 9e-4 moves SSIM by 2e-4.
  expected = (2 * 0.5 * 0.6 + c1) / (0.5**2 + 0.6**2 + c1)
  np.testing.assert_allclose(im.ssim_per_frame(_video(0.5), _video(0.6)), expected, atol=3e-4)


def test_per_frame_values_are_tf_image_values_in_b_t_order():
  rng = np.random.RandomState(2)
  predicted = rng.uniform(size=(2, 3, 16, 16, 3)).astype(np.float32)
  target = np.clip(predicted + rng.normal(scale=0.1, size=predicted.shape), 0, 1).astype(
      np.float32)
  target[1, 2] = predicted[1, 2]  # One identical frame, to check where it lands.
  ssim, psnr = im.ssim_per_frame(predicted, target), im.psnr_per_frame(predicted, target)
  for b in range(2):
    for t in range(3):
      assert ssim[b, t] == pytest.approx(
          float(tf.image.ssim(predicted[b, t], target[b, t], max_val=1.0)), abs=1e-6)
      assert psnr[b, t] == pytest.approx(
          float(tf.image.psnr(predicted[b, t], target[b, t], max_val=1.0)), abs=1e-4)
  assert ssim[1, 2] == pytest.approx(1.0, abs=1e-6) and np.isposinf(psnr[1, 2])
  assert np.all(ssim[:, :2] < 0.99) and np.all(np.isfinite(psnr[0]))


def test_frames_must_be_floats_in_zero_one():
  with pytest.raises(ValueError, match=r"predicted has values in \[-0.5, -0.5\]; expected "
                                       r"\[0, 1\].*\+ 0.5"):
    im.psnr_per_frame(_video(-0.5), _video(0.5))
  with pytest.raises(ValueError, match="target must be float in \\[0, 1\\]; got dtype uint8"):
    im.ssim_per_frame(_video(0.5), np.zeros((2, 3, 16, 16, 3), np.uint8))
  with pytest.raises(ValueError,
                     match=r"shapes differ: \(2, 3, 16, 16, 3\) vs \(2, 2, 16, 16, 3\)"):
    im.psnr_per_frame(_video(0.5), _video(0.5, (2, 2, 16, 16, 3)))
  with pytest.raises(ValueError, match=r"predicted must have shape \[B, T, H, W, 3\]"):
    im.psnr_per_frame(np.zeros((3, 16, 16, 3), np.float32), np.zeros((3, 16, 16, 3), np.float32))
  with pytest.raises(ValueError, match="SSIM needs frames of at least 11x11; got 8x8"):
    im.ssim_per_frame(_video(0.5, (1, 1, 8, 8, 3)), _video(0.5, (1, 1, 8, 8, 3)))


# Closest / furthest sample -------------------------------------------------------------------

# [S=3 samples, B=2 examples, T=2 steps].
SCORES = np.array([
    [[0.9, 0.1], [0.5, 0.7]],
    [[0.2, 0.8], [0.6, 0.3]],
    [[0.4, 0.4], [0.1, 0.9]],
])


def test_closest_and_furthest_per_example_and_time_step():
  np.testing.assert_array_equal(im.closest_sample_scores(SCORES), [[0.9, 0.8], [0.6, 0.9]])
  np.testing.assert_array_equal(im.furthest_sample_scores(SCORES), [[0.2, 0.1], [0.1, 0.3]])


def test_curves_average_over_examples():
  closest, furthest = im.closest_and_furthest_curves(SCORES)
  np.testing.assert_allclose(closest, [0.75, 0.85])
  np.testing.assert_allclose(furthest, [0.15, 0.2])


def test_distances_take_the_lowest_as_the_closest():
  # The same SCORES read as distances (LPIPS): closest = min, furthest = max over samples.
  np.testing.assert_array_equal(im.closest_sample_scores(SCORES, higher_is_closer=False),
                                [[0.2, 0.1], [0.1, 0.3]])
  closest, furthest = im.closest_and_furthest_curves(SCORES, higher_is_closer=False)
  np.testing.assert_allclose(closest, [0.15, 0.2])
  np.testing.assert_allclose(furthest, [0.75, 0.85])
  # Whole samples by the mean over step 1: example 0 means 0.1, 0.8, 0.4 -> closest sample 0,
  # furthest 1; example 1: 0.7, 0.3, 0.9 -> closest 1, furthest 2.
  selection = im.closest_and_furthest(SCORES, slice(1, None), higher_is_closer=False)
  assert selection["closest_index"].tolist() == [0, 1]
  assert selection["furthest_index"].tolist() == [1, 2]
  np.testing.assert_array_equal(selection["closest"], [[0.9, 0.1], [0.6, 0.3]])
  curves, _ = im.metric_curves(SCORES, 1, higher_is_closer=False)
  np.testing.assert_allclose(curves["closest"], [0.75, 0.2])
  np.testing.assert_allclose(curves["furthest"], [0.15, 0.85])


def test_scores_must_be_samples_by_examples_by_time():
  with pytest.raises(ValueError, match=r"scores must have shape \[S, B, T\]"):
    im.closest_and_furthest_curves(np.zeros((2, 3)))


# VGG16 cosine similarity ---------------------------------------------------------------------


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
  """No VGG16 weights anywhere: an empty Keras cache and an empty project cache."""
  monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
  monkeypatch.setenv("VIDEO_STRUCTURE_CACHE", str(tmp_path / "empty_cache"))
  return tmp_path / "keras_home"


@pytest.fixture(scope="module")
def random_vgg_weight_files(tmp_path_factory):
  """A randomly initialised VGG16 (no top) saved in Keras' legacy .h5 format (the format of
  Keras' cached ImageNet files) and in the Keras 3 .weights.h5 format."""
  keras.utils.set_random_seed(0)
  vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
  directory = tmp_path_factory.mktemp("vgg")
  legacy = directory / "models" / im.VGG16_NOTOP_FILENAME
  legacy.parent.mkdir()
  with h5py.File(legacy, "w") as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, vgg)
  native = directory / "random_vgg16.weights.h5"
  vgg.save_weights(native)
  kernel = vgg.get_layer("block3_conv2").kernel.numpy()
  return {"keras_home": directory, "legacy": legacy, "native": native, "kernel": kernel}


def test_without_weights_the_metric_says_so(empty_keras_home):
  with pytest.raises(im.WeightsUnavailable, match=r"No ImageNet VGG16 weights on this machine, "
                                                  r"so the VGG cosine similarity is skipped"):
    im.find_vgg16_weights()
  with pytest.raises(im.WeightsUnavailable):
    im.VGGFeatures()
  assert im.try_load_vgg16_features() is None
  with pytest.raises(im.WeightsUnavailable, match="vgg_features is None"):
    im.vgg_cosine_similarity_per_frame(_video(0.5), _video(0.5), None)


def test_a_missing_explicit_file_is_an_error_not_a_skip(empty_keras_home):
  with pytest.raises(FileNotFoundError, match="weights_path '/nonexistent/vgg.h5' does not "
                                              "exist") as error:
    im.try_load_vgg16_features("/nonexistent/vgg.h5")
  assert not isinstance(error.value, im.WeightsUnavailable)


def test_without_the_fetched_weights_keras_cache_is_used(random_vgg_weight_files, monkeypatch,
                                                         tmp_path):
  monkeypatch.setenv("KERAS_HOME", str(random_vgg_weight_files["keras_home"]))
  monkeypatch.setenv("VIDEO_STRUCTURE_CACHE", str(tmp_path / "empty_cache"))
  assert im.find_vgg16_weights() == str(random_vgg_weight_files["legacy"])
  features = im.VGGFeatures(feature_layers="block3_conv2")
  assert features.weights_info["name"] == "Keras VGG16 ImageNet (caffe)"
  np.testing.assert_array_equal(features.model.get_layer("block3_conv2").kernel.numpy(),
                                random_vgg_weight_files["kernel"])


@pytest.mark.parametrize("file_kind", ["legacy", "native"])
def test_cosine_is_one_for_identical_frames(random_vgg_weight_files, file_kind):
  features = im.VGGFeatures(weights_path=random_vgg_weight_files[file_kind])
  np.testing.assert_array_equal(features.model.get_layer("block3_conv2").kernel.numpy(),
                                random_vgg_weight_files["kernel"])
  rng = np.random.RandomState(3)
  target = rng.uniform(size=(1, 2, 32, 32, 3)).astype(np.float32)
  predicted = target.copy()
  predicted[0, 1] = rng.uniform(size=(32, 32, 3))
  similarity = im.vgg_cosine_similarity_per_frame(predicted, target, features, batch_size=1)
  assert similarity.shape == (1, 2)
  assert similarity[0, 0] == pytest.approx(1.0, abs=1e-5)
  assert similarity[0, 1] < 0.99


@pytest.fixture(scope="module")
def shared_references_case(random_vgg_weight_files):
  """Three predictions of two reference frames and their plain pairwise VGG cosines, computed
  once for the batch sizes below (a VGG16 at 224x224 costs about 0.3 s a frame on a CPU)."""
  features = im.VGGFeatures(weights_path=random_vgg_weight_files["legacy"])
  rng = np.random.RandomState(4)
  references = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)
  predicted = np.clip(np.concatenate([references + rng.normal(0, scale, references.shape)
                                      for scale in (0.02, 0.1, 0.3)]), 0, 1).astype(np.float32)
  expected = im.vgg_cosine_similarity_per_frame(
      predicted[None], np.concatenate([references] * 3)[None], features)[0]
  return features, references, predicted, expected


@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_vgg_scores_against_shared_references_equal_the_pairwise_cosines(
    shared_references_case, batch_size):
  # The fused path (prepared references, one graph per batch, batches that never wrap around
  # the references) against the plain pairwise one.
  features, references, predicted, expected = shared_references_case
  scores = im.scores_against_references(features, predicted, references, batch_size=batch_size)
  assert scores.shape == (6,) and scores.dtype == np.float32
  np.testing.assert_allclose(scores, expected, rtol=1e-6)
  assert scores[0] > scores[2] > scores[4] and scores[1] > scores[3] > scores[5]


def test_unknown_feature_layer_is_rejected(random_vgg_weight_files):
  with pytest.raises(ValueError, match=r"feature_layers must be names from .*got \('fc2',\)"):
    im.VGGFeatures(weights_path=random_vgg_weight_files["legacy"], feature_layers="fc2")


def test_a_weights_file_of_another_network_is_rejected(tmp_path):
  other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
  path = tmp_path / "other.h5"
  with h5py.File(path, "w") as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, other)
  with pytest.raises(ValueError, match=r"VGG16 weights file '.*other.h5' has no layer "
                                       r"'block1_conv1'"):
    im.VGGFeatures(weights_path=path)


def test_zero_feature_vectors_count_as_identical():
  zeros = tf.zeros((1, 1, 2, 3))
  ones = tf.constant([[[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]]])
  np.testing.assert_array_equal(im._cosine_per_position(zeros, zeros).numpy(), [[[1.0, 1.0]]])
  np.testing.assert_array_equal(im._cosine_per_position(zeros, ones).numpy(), [[[0.0, 0.0]]])
  np.testing.assert_allclose(im._cosine_per_position(ones, 3 * ones).numpy(), [[[1.0, 1.0]]])


def _write_legacy_h5(path, layers):
  """A legacy Keras .h5 weights file with `layers` {name: [array shapes]} (arrays not stored:
  HDF5 allocates them on first write, so the file stays small)."""
  with h5py.File(path, "w") as f:
    f.attrs["layer_names"] = [name.encode() for name in layers]
    for name, shapes in layers.items():
      group = f.create_group(name)
      weight_names = [f"{name}_{index}:0" for index in range(len(shapes))]
      group.attrs["weight_names"] = [weight_name.encode() for weight_name in weight_names]
      for weight_name, shape in zip(weight_names, shapes):
        group.create_dataset(weight_name, shape=shape, dtype="f4")


def _vgg_shaped_h5_with_a_wrong_kernel(path):
  layers = {name: [shape, shape[-1:]] for name, shape in im.VGG16_KERNEL_SHAPES.items()}
  layers["block3_conv1"][0] = (3, 3, 128, 128)
  _write_legacy_h5(path, layers)


def _hdf5_signature_then_garbage(path):
  path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)


EXPECTED = ("expected Keras' ImageNet VGG16 weights, e.g. "
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 from "
            "keras.applications.VGG16(weights='imagenet', include_top=False).")
NOT_WEIGHTS_FILES = [
    ("random.h5", lambda p: p.write_bytes(np.random.RandomState(0).bytes(4096)),
     "is not an HDF5 (.h5) file; " + EXPECTED),
    ("notes.txt", lambda p: p.write_text("not weights\n"),
     "is not an HDF5 (.h5) file; " + EXPECTED),
    ("empty.h5", lambda p: p.write_bytes(b""), "is not an HDF5 (.h5) file; " + EXPECTED),
    ("random.weights.h5", lambda p: p.write_bytes(b"0" * 100),
     "is not an HDF5 (.h5) file; " + EXPECTED),
    ("random.keras", lambda p: p.write_bytes(b"0" * 100),
     "is not a .keras (zip) file; " + EXPECTED),
    ("truncated.h5", _hdf5_signature_then_garbage,
     "cannot be read as a Keras .h5 weights file (damaged or truncated?); " + EXPECTED),
    ("plain.h5", lambda p: h5py.File(p, "w").close(),
     "is not a Keras .h5 weights file (no layer_names attribute); " + EXPECTED),
    ("other.h5", lambda p: _write_legacy_h5(p, {"dense": [(4, 2), (2,)]}),
     "has no layer 'block1_conv1'; " + EXPECTED),
]


@pytest.mark.parametrize("name, write, problem", NOT_WEIGHTS_FILES,
                         ids=[case[0] for case in NOT_WEIGHTS_FILES])
def test_a_file_that_is_not_vgg16_weights_is_refused_naming_it(tmp_path, name, write, problem):
  path = tmp_path / name
  write(path)
  message = f"VGG16 weights file {str(path)!r} {problem}"
  with pytest.raises(ValueError) as error:
    im.check_vgg16_weights_file(path)
  assert str(error.value) == message
  with pytest.raises(ValueError) as error:
    im.try_load_vgg16_features(path)  # Refused before VGG16 is built.
  assert str(error.value) == message
  assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # Nothing written.


def test_a_vgg16_shaped_file_with_a_wrong_kernel_is_refused(tmp_path):
  path = tmp_path / "wrong.h5"
  _vgg_shaped_h5_with_a_wrong_kernel(path)
  with pytest.raises(ValueError) as error:
    im.check_vgg16_weights_file(path)
  assert str(error.value) == (
      f"VGG16 weights file {str(path)!r}: layer 'block3_conv1' has arrays of shapes "
      f"[(3, 3, 128, 128), (256,)], not VGG16's [(3, 3, 128, 256), (256,)]; " + EXPECTED)


@pytest.mark.parametrize("file_kind", ["legacy", "native"])
def test_real_vgg16_weight_files_pass_the_check(random_vgg_weight_files, file_kind):
  assert im.check_vgg16_weights_file(random_vgg_weight_files[file_kind]) is None
