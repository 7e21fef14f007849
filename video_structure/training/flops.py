"""How much arithmetic a training step is, and how fast this machine does such arithmetic.

  count = flops.training_step(run_config.model, run_config.recipe)
  count.flops / seconds_per_step / 1e9        # achieved GFLOP/s of a training step
  flops.measure_peak("float32")               # this machine's conv / matmul GFLOP/s
  flops.cpu_info()                            # CPU model and the flags that matter for speed

The count is analytic: from a model `Config` (and the CPU recipe's settings, whose foreground
colour decoder adds a conv) it lists every convolution and dense / GRU matrix product of a
training step with its shape and how often it runs, and counts their multiply-adds (MACs);
FLOPs = 2 x MACs. For B sequences of T frames (`batch_size`, `sequence_length`) a step runs
  per frame (B T):   the detector's encoder convs and its 1x1 heatmap head (CNN-VRNN: a dense
                     feature head), the reconstructor's convs, the CPU recipe's colour decoder;
                     the CNN-VRNN's dense renderer (also once per sequence, on the first frame);
  per sequence (B):  the appearance encoder (on the first frame only);
  per step (B T):    the dynamics: prior and posterior nets (both at every step), the keypoint
                     decoder on each of the N best-of-many samples, and the GRU's input and
                     recurrent products (Keras' GRUCell, `reset_after=True`: two matmuls).

Backward pass: a conv or matmul `y = x W` needs the input gradient (dy W^T) and the weight
gradient (x^T dy), each as many MACs as the forward product, so backward = 2 x forward and a
step = 3 x forward, except that the first conv of the detector and of the appearance encoder
take the frames (plus constant coordinate channels), which need no gradient: TensorFlow builds
their input gradient but prunes it, as nothing uses it (tests/training/test_flops.py checks
this against TensorFlow's own count of the traced step). Every dynamics product gets both
gradients: each input depends on the GRU state or on sampled latents. The best-of-many decoder
also gets its full backward pass for all N samples: the gradient is zero for all but the kept
sample, but it is computed densely. So a step is slightly less than 3 x forward (2.98 x for the
paper preset, 2.96 x for the CPU preset).

Not counted: element-wise work (biases, activations, the Gaussian renderer, the keypoint
expectation, bilinear upsampling, sampling, the losses, Adam's update): a few FLOPs per value
against k x k x C_in MACs per conv output value (in the presets 16 to 154 for the 1x1 convs,
45 at the detector's first conv, 144 to 1152 for the other 3x3 convs). In the paper preset's
traced step, TensorFlow's profiler finds 0.9 GFLOP of element-wise ops it has counts for, and
about 1 G values pass through activations and upsampling, against 1,001 GFLOP of convs and
matmuls: about 0.2%. Convs are counted as TensorFlow's profiler counts them: every output value
costs k x k x C_in MACs, also at a 'same'-padded border.
"""

import dataclasses
import os
import platform
import time

from video_structure.training import precision as precision_lib

# CPU flags (Linux /proc/cpuinfo names) that decide how fast convs and matmuls can run here.
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
# The peak microbenchmark's shapes: a 3x3 conv with the model's widest channel count (128) at
# 32x32, batch 32 (4.8 G MACs), and a square float matmul of side 2048 (8.6 G MACs).
PEAK_CONV = dict(batch=32, size=32, in_channels=128, out_channels=128, kernel_size=3)
PEAK_MATMUL_SIZE = 2048


def conv_macs(height, width, in_channels, out_channels, kernel_size=3, stride=1):
  """MACs of one 'same'-padded 2D convolution of one image.

  Args:
    height, width: the input's spatial size.
    in_channels, out_channels: C_in and C_out.
    kernel_size: k of a k x k kernel.
    stride: the stride in both directions (output `ceil(height / stride)` rows).

  Returns:
    `out_h * out_w * k * k * C_in * C_out` (int).
  """
  out_height = -(-height // stride)
  out_width = -(-width // stride)
  return out_height * out_width * kernel_size * kernel_size * in_channels * out_channels


def dense_macs(in_units, out_units, rows=1):
  """MACs of `[rows, in_units] x [in_units, out_units]` (int)."""
  return rows * in_units * out_units


@dataclasses.dataclass(frozen=True)
class Product:
  """One conv or matmul of a training step.

  Attributes:
    component: the part it belongs to (`detector`, `appearance_encoder`, `renderer`,
      `reconstructor`, `colour_decoder`, `dynamics`).
    name: the layer (and, for the GRU, which of its two products).
    kind: `conv` or `matmul`.
    macs: MACs of one call on one frame, one sequence or one sequence-step (see `per`).
    per: `frame`, `sequence` or `step` (a dynamics step of one sequence).
    calls: calls per training step (B T frames, B sequences or B T sequence-steps; B (T + 1)
      for the CNN-VRNN renderer, which also renders the first frame).
    input_gradient: whether the backward pass computes the gradient of its input.
  """
  component: str
  name: str
  kind: str
  macs: int
  per: str
  calls: int
  input_gradient: bool = True

  @property
  def forward_macs(self):
    return self.macs * self.calls

  @property
  def backward_macs(self):
    """Weight gradient, plus the input gradient where it is needed (each = forward)."""
    return self.forward_macs * (2 if self.input_gradient else 1)


@dataclasses.dataclass(frozen=True)
class StepCount:
  """The conv and matmul arithmetic of one training step (`training_step`)."""
  products: tuple

  @property
  def forward_macs(self):
    return sum(p.forward_macs for p in self.products)

  @property
  def backward_macs(self):
    return sum(p.backward_macs for p in self.products)

  @property
  def macs(self):
    """Forward + backward MACs of the step."""
    return self.forward_macs + self.backward_macs

  @property
  def flops(self):
    """FLOPs of the step: 2 x MACs."""
    return 2 * self.macs

  def by_component(self):
    """{component: {"forward_macs", "backward_macs", "macs"}} in the order of the forward pass."""
    result = {}
    for product in self.products:
      entry = result.setdefault(product.component,
                                {"forward_macs": 0, "backward_macs": 0, "macs": 0})
      entry["forward_macs"] += product.forward_macs
      entry["backward_macs"] += product.backward_macs
      entry["macs"] += product.forward_macs + product.backward_macs
    return result

  def as_dict(self):
    """A JSON-ready summary: totals and the per-component breakdown."""
    return {"forward_macs": self.forward_macs, "backward_macs": self.backward_macs,
            "macs": self.macs, "flops": self.flops, "components": self.by_component()}


def image_encoder_products(component, image_size, output_size, initial_filters,
                           layers_per_scale, in_channels, calls, per):
  """The convs of a `vision.ImageEncoder` (3x3: one at `initial_filters` plus
  `layers_per_scale` more, then per halving a stride-2 conv doubling the filters and
  `layers_per_scale` stride-1 convs). The first conv's input is the frame: no input gradient.

  Returns:
    (list of `Product`, the output's channel count F).
  """
  products = []
  size, filters, channels = image_size, initial_filters, in_channels

  def add(name, stride):
    products.append(Product(component, name, "conv",
                            conv_macs(size, size, channels, filters, 3, stride), per, calls,
                            input_gradient=bool(products)))

  add("conv_0_0", 1)
  channels = filters
  for i in range(layers_per_scale):
    add(f"conv_0_{i + 1}", 1)
  level = 0
  while size > output_size:
    level += 1
    filters *= 2
    add(f"conv_{level}_0", 2)
    size //= 2
    channels = filters
    for i in range(layers_per_scale):
      add(f"conv_{level}_{i + 1}", 1)
  return products, filters


def training_step(config, recipe=None):
  """The conv and matmul products of one training step of `config` (module docstring).

  Args:
    config: a model `Config` (`representation` keypoints or features, `dynamics` vrnn or rnn).
    recipe: the run's `CpuRecipeConfig`, or None. Only its foreground colour decoder adds
      compute (a 1x1 conv on the detector's features, keypoint representation only).

  Returns:
    A `StepCount`.
  """
  cfg = config
  batch, steps = cfg.batch_size, cfg.sequence_length
  frames = batch * steps
  size, cells, keypoints = cfg.image_size, cfg.heatmap_size, cfg.num_keypoints
  # The detector sees the frame plus two coordinate channels; the appearance encoder the frame.
  detector, features = image_encoder_products(
      "detector", size, cells, cfg.initial_filters, cfg.layers_per_scale, 3 + 2, frames,
      "frame")
  appearance, _ = image_encoder_products(
      "appearance_encoder", size, cells, cfg.initial_filters, cfg.layers_per_scale, 3, batch,
      "sequence")
  products = detector
  if cfg.representation == "features":
    products.append(Product("detector", "feature_head", "matmul",
                            dense_macs(cells * cells * features, 3 * keypoints), "frame", frames))
  else:
    products.append(Product("detector", "heatmap_head", "conv",
                            conv_macs(cells, cells, features, keypoints, 1), "frame", frames))
  products += appearance
  if cfg.representation == "features":
    products.append(Product("renderer", "projection", "matmul",
                            dense_macs(3 * keypoints, cells * cells * keypoints), "frame",
                            frames + batch))
  products += _reconstructor_products(cfg, features, frames)
  if (recipe is not None and recipe.foreground_colour_weight
      and cfg.representation == "keypoints"):
    pool = size // cells
    products.append(Product("colour_decoder", "foreground_colour_decoder", "conv",
                            conv_macs(cells, cells, features, 3 * pool * pool, 1), "frame",
                            frames))
  products += _dynamics_products(cfg, frames)
  return StepCount(tuple(products))


def _reconstructor_products(cfg, appearance_filters, frames):
  """The convs of `vision.ImageReconstructor` on each of the `frames` frames."""
  size, keypoints = cfg.heatmap_size, cfg.num_keypoints
  filters = appearance_filters
  # [maps(kp_t), appearance(v_1), maps(kp_1)] plus two coordinate channels.
  channels = 2 * keypoints + appearance_filters + 2
  products = [Product("reconstructor", "input_projection", "conv",
                      conv_macs(size, size, channels, filters, 1), "frame", frames)]
  level = 0
  while size < cfg.image_size:
    channels, filters, size = filters, filters // 2, size * 2
    for i in range(cfg.layers_per_scale):
      products.append(Product("reconstructor", f"conv_{level}_{i}", "conv",
                              conv_macs(size, size, channels, filters, 3), "frame", frames))
      channels = filters
    level += 1
  products.append(Product("reconstructor", "output_head", "conv",
                          conv_macs(size, size, filters, 3, 1), "frame", frames))
  return products


def _dynamics_products(cfg, steps):
  """The matmuls of `dynamics.KeypointVRNN.rollout` in training: `steps` = B T sequence-steps
  (the rollout runs one step per frame of the window)."""
  units, keypoint_dim = cfg.rnn_units, 3 * cfg.num_keypoints
  vrnn = cfg.dynamics == "vrnn"
  latent = cfg.latent_size if vrnn else 0
  samples = cfg.num_samples if vrnn else 1  # The rollout draws one "sample" without a latent.
  layers = []
  if vrnn:
    layers += [("prior_hidden", units, cfg.prior_net_size, 1),
               ("prior_mean", cfg.prior_net_size, latent, 1),
               ("prior_std", cfg.prior_net_size, latent, 1),
               ("posterior_hidden", units + keypoint_dim, cfg.posterior_net_size, 1),
               ("posterior_mean", cfg.posterior_net_size, latent, 1),
               ("posterior_std", cfg.posterior_net_size, latent, 1)]
  layers += [("decoder_hidden", units + latent, cfg.decoder_net_size, samples),
             ("decoder_output", cfg.decoder_net_size, keypoint_dim, samples),
             # GRUCell: [x_t] W (3 gates) and h R (3 gates).
             ("gru_cell/input", keypoint_dim + latent + cfg.action_size, 3 * units, 1),
             ("gru_cell/recurrent", units, 3 * units, 1)]
  return [Product("dynamics", name, "matmul", dense_macs(inputs, outputs, rows), "step", steps)
          for name, inputs, outputs, rows in layers]


# The machine. ---------------------------------------------------------------------------------

def cpu_info(cpuinfo_path="/proc/cpuinfo", environ=None):
  """The CPU and what decides its conv / matmul speed.

  Returns:
    dict with `model` (the model name of /proc/cpuinfo, else `platform.processor()`),
    `cores` (`os.cpu_count()`), `flags` ({flag: bool} for `SPEED_FLAGS`) and `onednn` (the
    `TF_ENABLE_ONEDNN_OPTS` and `ONEDNN_MAX_CPU_ISA` environment values, None where unset).
  """
  environ = os.environ if environ is None else environ
  model = None
  try:
    with open(cpuinfo_path) as f:
      for line in f:
        if line.startswith("model name"):
          model = line.partition(":")[2].strip()
          break
  except OSError:
    pass
  flags = precision_lib.cpu_flags(cpuinfo_path)
  return {"model": model or platform.processor() or platform.machine(),
          "cores": os.cpu_count(),
          "flags": {flag: flag in flags for flag in SPEED_FLAGS},
          "onednn": {name: environ.get(name)
                     for name in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA")}}


def describe_cpu(info):
  """One line for `cpu_info()`: model, cores and which speed flags it has."""
  present = [flag for flag, has in info["flags"].items() if has]
  absent = [flag for flag, has in info["flags"].items() if not has]
  text = f"{info['model']}, {info['cores']} cores; {' '.join(present) or 'none of'}"
  if absent:
    text += f" (not: {' '.join(absent)})"
  settings = [f"{name}={value}" for name, value in info["onednn"].items() if value is not None]
  return text + (f"; {' '.join(settings)}" if settings else "")


def peak_conv_macs():
  """MACs of one call of the peak microbenchmark's conv (`PEAK_CONV`)."""
  shape = PEAK_CONV
  return shape["batch"] * conv_macs(shape["size"], shape["size"], shape["in_channels"],
                                    shape["out_channels"], shape["kernel_size"])


def peak_matmul_macs():
  """MACs of one call of the peak microbenchmark's matmul (`PEAK_MATMUL_SIZE` cubed)."""
  return PEAK_MATMUL_SIZE ** 3


def measure_peak(dtype="float32", seconds=2.0, warmup=2, min_iterations=3):
  """This machine's conv and matmul speed in GFLOP/s, measured now.

  A 3x3 'same' conv (`PEAK_CONV`) and a square matmul (`PEAK_MATMUL_SIZE`) in `dtype`, each a
  `tf.function`, called `warmup` times and then timed call by call for about `seconds` (at
  least `min_iterations` calls). FLOPs are counted as for the model (2 x MACs, `conv_macs`).

  Args:
    dtype: `float32` or `bfloat16`.
    seconds: timed seconds per kernel (about 2 x (seconds + warm-up) in all).
    warmup: untimed calls first (tracing, oneDNN primitive creation).
    min_iterations: timed calls at least.

  Returns:
    dict with `dtype`, `conv_gflops` and `matmul_gflops` (the fastest call: the peak),
    `conv_gflops_median` and `matmul_gflops_median`, and the timed `conv_calls`,
    `matmul_calls`.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel  (the count needs no TF)
  tf_dtype = tf.as_dtype(dtype)
  shape = PEAK_CONV
  generator = tf.random.Generator.from_seed(0)
  images = tf.cast(generator.normal([shape["batch"], shape["size"], shape["size"],
                                     shape["in_channels"]]), tf_dtype)
  kernel = tf.cast(generator.normal([shape["kernel_size"], shape["kernel_size"],
                                     shape["in_channels"], shape["out_channels"]]) * 0.05,
                   tf_dtype)
  side = PEAK_MATMUL_SIZE
  left = tf.cast(generator.normal([side, side]), tf_dtype)
  right = tf.cast(generator.normal([side, side]) * 0.05, tf_dtype)
  conv = tf.function(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"))
  matmul = tf.function(tf.linalg.matmul)
  result = {"dtype": tf_dtype.name}
  for name, function, arguments, macs in (("conv", conv, (images, kernel), peak_conv_macs()),
                                          ("matmul", matmul, (left, right), peak_matmul_macs())):
    for _ in range(warmup):
      function(*arguments).numpy()
    durations = []
    start = time.perf_counter()
    while len(durations) < min_iterations or time.perf_counter() - start < seconds:
      begin = time.perf_counter()
      # Eager CPU calls return when done; .numpy() of one element makes sure of it.
      function(*arguments)[0, 0].numpy()
      durations.append(time.perf_counter() - begin)
    durations.sort()
    result[f"{name}_gflops"] = 2 * macs / durations[0] / 1e9
    result[f"{name}_gflops_median"] = 2 * macs / durations[len(durations) // 2] / 1e9
    result[f"{name}_calls"] = len(durations)
  return result
