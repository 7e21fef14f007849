"""Tests of `training/flops.py`: the analytic conv / matmul count of a training step, checked by
hand for single layers and against TensorFlow's own count (the tfprof profiler) for tiny models.

What TensorFlow's profiler (`tf.compat.v1.profiler.profile` / `model_analyzer.profile` with
`ProfileOptionBuilder.float_operation()`) counts, found in TF 2.21's sources
(`python/profiler/tfprof_logger.py`, `python/profiler/internal/flops_registry.py`,
`python/ops/nn_ops.py`) and checked here:
  * only ops with a registered "flops" statistic: Conv2D (2 x output values x k x k x C_in,
    also at a 'same'-padded border), Conv2DBackpropInput and Conv2DBackpropFilter (each the
    forward conv's count), MatMul and BatchMatMul(V2, V3) (2 x contracted dim x output values),
    DepthwiseConv2dNative, pooling, BiasAdd / BiasAddGrad, and element-wise arithmetic and
    reductions (Add, Mul, Sub, RealDiv, Square, Sum, Mean, ...; one FLOP per value). It does
    not count activations (LeakyRelu, Relu, Softplus, Tanh, Sigmoid, Exp), ResizeBilinear, the
    random ops, gathers, nor grappler's fused ops (it reads the graph as traced, unoptimised);
  * each op of the graph it is given once: the ops of nested functions are not in that graph.
    The dynamics' rollout is a `tf.while_loop`, whose body (and its gradient loop's body) is
    such a function, so the profiler counts none of the dynamics; `tf.cond` branches likewise;
  * an op whose shapes are not all static is skipped, with only a count on stderr ("N ops no
    flops stats due to incomplete shapes"). Inside the loop bodies the batch dimension is
    unknown (the rollout's shape invariants), so even a loop body's own graph, profiled
    directly, gets no count for its matmuls;
  * ops that nothing uses are counted too: TensorFlow builds the input gradient of the first
    conv of the detector and of the appearance encoder (whose input is the frame) and prunes
    it when the function runs.
So the comparisons below are like with like: the conv and matmul ops only (element-wise work is
not in the analytic count either), only ops that reach the traced function's outputs, and the
dynamics through one VRNN step made of the layer's own heads (which the profiler can count),
plus the loop bodies' matmuls per row of their unknown batch dimension. Tolerance: none. Both
sides are integer formulas over the same shapes, so they agree exactly; a 1% tolerance could
hide a missing small layer (a prior head is < 0.01% of the paper preset's dynamics).
"""

import collections

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.profiler import model_analyzer
from tensorflow.python.profiler import option_builder

from tests import helpers
from video_structure import presets
from video_structure.training import builder
from video_structure.training import flops

PRODUCT_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul", "BatchMatMul",
               "BatchMatMulV2", "BatchMatMulV3")
# Tiny models (helpers.TINY_MODEL) whose counts are compared with the profiler's: the CPU
# preset (keypoints, colour decoder), its CNN-VRNN and Struct-RNN variants, and the paper preset
# (no recipe) with two convs per scale, a 32x32 image and actions.
TINY_VARIANTS = {
    "cpu": ("cpu", {}),
    "cnn_vrnn": ("cpu", {"representation": "features"}),
    "struct_rnn": ("cpu", {"dynamics": "rnn", "num_samples": 1}),
    "paper_wide": ("paper", {"layers_per_scale": 2, "image_size": 32, "action_size": 2}),
}
VISION = ["detector", "appearance_encoder", "reconstructor"]
COMPONENTS = {
    "cpu": VISION + ["colour_decoder", "dynamics"],
    "cnn_vrnn": ["detector", "appearance_encoder", "renderer", "reconstructor", "dynamics"],
    "struct_rnn": VISION + ["colour_decoder", "dynamics"],
    "paper_wide": VISION + ["dynamics"],
}


# The count by hand. ---------------------------------------------------------------------------

def test_conv_and_dense_macs_by_hand():
  # 3x3 conv, 5 -> 4 channels, 8x8: 64 output pixels x 4 filters x (3 x 3 x 5) = 11,520.
  assert flops.conv_macs(8, 8, 5, 4, 3) == 11_520
  # Stride 2 'same': 4x4 outputs (also from 7x7: ceil(7 / 2) = 4).
  assert flops.conv_macs(8, 8, 5, 4, 3, stride=2) == 2_880
  assert flops.conv_macs(7, 7, 5, 4, 3, stride=2) == 2_880
  assert flops.conv_macs(16, 16, 16, 4, 1) == 16_384  # 1x1 head: 256 x 16 x 4.
  assert flops.dense_macs(16, 48, rows=2) == 1_536


def test_the_tiny_detector_layer_by_layer():
  # helpers.TINY_MODEL on the CPU preset: 4 initial filters, one extra conv per scale, 64 -> 16.
  count = flops.training_step(helpers.tiny_config().model)
  detector = [(p.name, p.macs, p.calls, p.input_gradient) for p in count.products
              if p.component == "detector"]
  assert detector == [
      ("conv_0_0", 64 * 64 * 9 * 5 * 4, 32, False),  # frame + 2 coordinate channels
      ("conv_0_1", 64 * 64 * 9 * 4 * 4, 32, True),
      ("conv_1_0", 32 * 32 * 9 * 4 * 8, 32, True),  # stride 2
      ("conv_1_1", 32 * 32 * 9 * 8 * 8, 32, True),
      ("conv_2_0", 16 * 16 * 9 * 8 * 16, 32, True),
      ("conv_2_1", 16 * 16 * 9 * 16 * 16, 32, True),
      ("heatmap_head", 16 * 16 * 16 * 4, 32, True)]
  assert sum(macs for _, macs, _, _ in detector) == 3_112_960


def test_the_paper_and_cpu_presets():
  paper = flops.training_step(presets.get_config("basketball", "paper").model)
  assert (paper.forward_macs, paper.backward_macs) == (167_904_280_576, 332_675_416_064)
  assert paper.flops == 1_001_159_393_280
  assert {name: entry["macs"] for name, entry in paper.by_component().items()} == {
      "detector": 238_572_011_520, "appearance_encoder": 14_722_007_040,
      "reconstructor": 240_283_287_552, "dynamics": 7_002_390_528}
  # Dynamics per sequence-step: prior 8,704 + posterior 74,240 + 50 samples x decoder 72,192
  # + GRU 866,304 MACs.
  assert sum(p.macs for p in paper.products if p.component == "dynamics") == 4_558_848
  cpu_config = presets.get_config("basketball", "cpu")
  cpu = flops.training_step(cpu_config.model, cpu_config.recipe)
  assert (cpu.forward_macs, cpu.backward_macs) == (10_925_572_096, 21_459_501_056)
  assert cpu.flops == 64_770_146_304
  assert {name: entry["macs"] for name, entry in cpu.by_component().items()} == {
      "detector": 15_401_484_288, "appearance_encoder": 934_281_216,
      "reconstructor": 15_288_238_080, "colour_decoder": 301_989_888,
      "dynamics": 459_079_680}
  # Without the recipe, the CPU preset's model has no colour decoder.
  assert flops.training_step(cpu_config.model).macs == cpu.macs - 301_989_888


def test_the_variants():
  cnn_vrnn = flops.training_step(
      presets.get_config("basketball", "paper", representation="features").model)
  assert cnn_vrnn.macs == 501_968_142_336
  # Dense feature head (16 x 16 x 128 -> 36) per frame; dense renderer (36 -> 16 x 16 x 12)
  # per frame and per first frame.
  assert cnn_vrnn.by_component()["renderer"]["forward_macs"] == 36 * 3072 * (512 + 32)
  cpu_features = presets.get_config("basketball", "cpu", representation="features")
  cnn_cpu = flops.training_step(cpu_features.model, cpu_features.recipe)
  assert "colour_decoder" not in cnn_cpu.by_component()  # The recipe's decoder: keypoints only.
  assert cnn_cpu.macs == 32_565_559_296
  struct_rnn = flops.training_step(
      presets.get_config("basketball", "paper", dynamics="rnn", num_samples=1).model)
  assert struct_rnn.by_component()["dynamics"]["forward_macs"] == 466_878_464
  # Backward = 2 x forward but for the input gradients of the two first convs.
  first_convs = 512 * 64 * 64 * 9 * 5 * 32 + 32 * 64 * 64 * 9 * 3 * 32
  paper = flops.training_step(presets.get_config("basketball", "paper").model)
  assert paper.backward_macs == 2 * paper.forward_macs - first_convs


# TensorFlow's count. ----------------------------------------------------------------------------

def _profiler_flops(graph):
  """{op name: FLOPs} of every op of `graph` the profiler gives a FLOP count."""
  options = option_builder.ProfileOptionBuilder(
      option_builder.ProfileOptionBuilder.float_operation()).with_empty_output().build()
  root = model_analyzer.profile(graph, cmd="scope", options=options)
  counts, stack = {}, [root]
  while stack:
    node = stack.pop()
    stack.extend(node.children)
    if node.float_ops:
      counts[node.name] = node.float_ops
  return counts


def _reaching_outputs(function):
  """Names of the ops of a concrete function's graph that its outputs depend on."""
  seen, stack = set(), [tensor.op for tensor in function.outputs]
  while stack:
    op = stack.pop()
    if op.name not in seen:
      seen.add(op.name)
      stack.extend([tensor.op for tensor in op.inputs] + list(op.control_inputs))
  return seen


def _product_flops(function):
  """({op type: FLOPs} of the conv and matmul ops reaching the outputs, the same of the others)
  as the profiler counts them; fails if it skipped any such op."""
  counts = _profiler_flops(function.graph)
  reaching = _reaching_outputs(function)
  used, unused = collections.Counter(), collections.Counter()
  for op in function.graph.get_operations():
    if op.type in PRODUCT_OPS:
      assert op.name in counts, f"the profiler skipped {op.name} ({op.type})"
      (used if op.name in reaching else unused)[op.type] += counts[op.name]
  return dict(used), dict(unused)


@pytest.fixture(scope="module", params=sorted(TINY_VARIANTS))
def tiny(request):
  """(variant name, RunConfig, built model, analytic StepCount) of a tiny model."""
  preset, overrides = TINY_VARIANTS[request.param]
  run_config = helpers.tiny_config(preset=preset, **overrides)
  model = builder.build_model(run_config)
  return request.param, run_config, model, flops.training_step(run_config.model,
                                                               run_config.recipe)


def _component_functions(model, config):
  """{component: concrete function of its forward pass on one training batch}."""
  batch, steps, size = config.batch_size, config.sequence_length, config.image_size
  cells, keypoints = config.heatmap_size, config.num_keypoints
  width = model.appearance_encoder.output_filters
  spec = lambda *shape: tf.TensorSpec(shape, tf.float32)
  trace = lambda function, *specs: tf.function(function).get_concrete_function(*specs)
  functions = {
      "detector": trace(model.keypoint_detector, spec(batch * steps, size, size, 3)),
      "appearance_encoder": trace(model.appearance_encoder, spec(batch, size, size, 3)),
      "reconstructor": trace(model.image_reconstructor,
                             spec(batch * steps, cells, cells, keypoints),  # maps(kp_t)
                             spec(batch * steps, cells, cells, width),  # appearance(v_1)
                             spec(batch * steps, cells, cells, keypoints),  # maps(kp_1)
                             spec(batch * steps, size, size, 3))}  # v_1
  if config.representation == "features":
    functions["renderer"] = trace(model.keypoint_renderer,
                                  spec(batch * (steps + 1), keypoints, 3))
  if model.recipe is not None and model.recipe.needs_detector_features:
    functions["colour_decoder"] = trace(model.recipe.predict_foreground_colours,
                                        spec(batch, steps, cells, cells, width))
  return functions


def test_each_component_matches_the_profiler(tiny):
  variant, run_config, model, count = tiny
  components = count.by_component()
  functions = _component_functions(model, run_config.model)
  assert list(components) == COMPONENTS[variant]
  assert sorted(functions) == sorted(set(components) - {"dynamics"})
  for component, function in functions.items():
    used, unused = _product_flops(function)
    assert unused == {}
    assert sum(used.values()) == 2 * components[component]["forward_macs"], component


def test_the_training_step_matches_the_profiler(tiny):
  """The traced gradient of the training loss: convs forward, input and filter gradients (and
  the CNN-VRNN's dense layers); the dynamics' loops are checked below."""
  _, run_config, model, count = tiny
  config = run_config.model
  batch, steps = config.batch_size, config.sequence_length
  specs = [tf.TensorSpec([batch, steps, config.image_size, config.image_size, 3])]
  if config.action_size:
    specs.append(tf.TensorSpec([batch, steps, config.action_size]))

  @tf.function
  def gradients(frames, actions=None):
    with tf.GradientTape() as tape:
      loss_terms, _ = model.compute_losses(frames, actions, training=True,
                                           seed=tf.constant([1, 2]))
    return tape.gradient(loss_terms["total"], model.trainable_variables)

  used, unused = _product_flops(gradients.get_concrete_function(*specs))
  vision = [p for p in count.products if p.component != "dynamics"]
  convs = sum(p.forward_macs for p in vision if p.kind == "conv")
  assert used["Conv2D"] == used["Conv2DBackpropFilter"] == 2 * convs
  assert sum(used.values()) == 2 * sum(p.forward_macs + p.backward_macs for p in vision)
  # Traced but pruned: the input gradients of the first convs (their input is the frame).
  assert unused == {"Conv2DBackpropInput": 2 * sum(p.forward_macs for p in vision
                                                   if not p.input_gradient)}
  assert [(p.component, p.name) for p in count.products if not p.input_gradient] == [
      ("detector", "conv_0_0"), ("appearance_encoder", "conv_0_0")]


def _macs_per_row(op, batch):
  """MACs of a MatMul op of a loop body per row of its batch: the loop's batch dimension is
  unknown (None) in the body, or static where an input fixes it (B); the decoder's rows are
  B N, unknown, so this gives its MACs per sample."""
  a, b, out = (op.inputs[0].shape, op.inputs[1].shape, op.outputs[0].shape)
  a_k = a[0] if op.get_attr("transpose_a") else a[1]
  b_k = b[1] if op.get_attr("transpose_b") else b[0]
  dims = [out[0], a_k if a_k is not None else b_k, out[1]]  # m, k, n
  assert dims.count(None) <= 1 and (None in dims or batch in dims), (op.name, a, b, out)
  return int(np.prod([batch if d is None else d for d in dims])) // batch


def test_the_dynamics_match_the_profiler_and_the_rollout_loops(tiny):
  _, run_config, model, count = tiny
  config = run_config.model
  batch, steps = config.batch_size, config.sequence_length
  dynamics = model.dynamics
  products = [p for p in count.products if p.component == "dynamics"]
  units, keypoint_dim = config.rnn_units, 3 * config.num_keypoints
  latent = dynamics.latent_size
  samples = config.num_samples if latent else 1

  # One step of the rollout from the layer's own heads, with static shapes: the profiler counts
  # it (batch rows B, decoder rows B N).
  def one_step(state, target, noise, actions):
    latents, prior = noise, []
    if latent:
      prior = dynamics._prior(state)  # pylint: disable=protected-access
      prior = [prior.loc, prior.scale]
      posterior = dynamics._posterior(state, target)  # pylint: disable=protected-access
      latents = posterior.loc[:, tf.newaxis] + posterior.scale[:, tf.newaxis] * noise
    decoded = dynamics._decode(  # pylint: disable=protected-access
        tf.repeat(state[:, tf.newaxis], samples, axis=1), latents)
    new_state, _ = dynamics.gru_cell(
        tf.concat([decoded[:, 0], latents[:, 0], actions], axis=-1), [state])
    return [decoded, new_state] + prior

  step_function = tf.function(one_step).get_concrete_function(
      tf.TensorSpec([batch, units]), tf.TensorSpec([batch, keypoint_dim]),
      tf.TensorSpec([batch, samples, latent]), tf.TensorSpec([batch, config.action_size]))
  used, unused = _product_flops(step_function)
  assert unused == {}
  assert sum(used.values()) == 2 * sum(p.forward_macs for p in products) // steps

  # The rollout itself: its forward loop holds exactly these matmuls, its gradient loop two of
  # the same size per forward matmul (input and weight gradients), each per row of the batch.
  @tf.function
  def rollout_gradient(detected, actions=None):
    with tf.GradientTape() as tape:
      result = dynamics.rollout(detected, config.observed_steps, actions=actions,
                                num_samples=config.num_samples, select_best=True,
                                seed=tf.constant([1, 2]))
      loss = tf.reduce_sum(result["keypoints"]) + tf.reduce_sum(result["kl"])
    return tape.gradient(loss, dynamics.trainable_variables), result["keypoints"]

  specs = [tf.TensorSpec([batch, steps, config.num_keypoints, 3])]
  if config.action_size:
    specs.append(tf.TensorSpec([batch, steps, config.action_size]))
  function = rollout_gradient.get_concrete_function(*specs)
  loops = [op for op in function.graph.get_operations() if op.type in ("While", "StatelessWhile")]
  assert len(loops) == 2
  per_row = {}
  for loop in loops:
    body = loop._body_graph  # pylint: disable=protected-access
    matmuls = [op for op in body.get_operations() if op.type == "MatMul"]
    per_row[loop.name] = sorted(_macs_per_row(op, batch) for op in matmuls)
    # The profiler, given the body itself, skips every matmul with an unknown (batch)
    # dimension: all but the GRU's input products when actions fix their batch.
    counted = set(_profiler_flops(body))
    unknown = [op for op in matmuls
               if not all(t.shape.is_fully_defined() for t in list(op.inputs) + op.outputs)]
    assert unknown and not counted & {op.name for op in unknown}
  forward, gradient = [per_row[name] for name in sorted(per_row, key=lambda n: "grad" in n)]
  per_step = {p.name: p.macs // (samples if p.name.startswith("decoder") else 1)
              for p in products}
  assert forward == sorted(per_step.values())
  assert gradient == sorted(2 * list(per_step.values()))
  # One loop iteration per frame of the window (`calls` = B T): one output step each.
  assert function.outputs[-1].shape[1] == steps
  assert all(p.calls == batch * steps for p in products)


# The machine. ---------------------------------------------------------------------------------

def test_cpu_info_reads_the_model_and_the_speed_flags(tmp_path):
  cpuinfo = tmp_path / "cpuinfo"
  cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU @ 2.0GHz\n"
                     "flags\t\t: fpu avx2 fma avx512f amx_tile amx_bf16\n\nprocessor\t: 1\n")
  info = flops.cpu_info(str(cpuinfo), environ={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"})
  assert info["model"] == "Test CPU @ 2.0GHz"
  assert info["flags"] == {"avx2": True, "fma": True, "avx512f": True, "avx512_vnni": False,
                           "avx512_bf16": False, "amx_tile": True, "amx_bf16": True}
  assert info["onednn"] == {"TF_ENABLE_ONEDNN_OPTS": None, "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}
  info["cores"] = 2
  assert flops.describe_cpu(info) == (
      "Test CPU @ 2.0GHz, 2 cores; avx2 fma avx512f amx_tile amx_bf16 (not: avx512_vnni "
      "avx512_bf16); ONEDNN_MAX_CPU_ISA=AVX512_CORE")


def test_the_peak_kernels():
  assert flops.peak_conv_macs() == 32 * 32 * 32 * 9 * 128 * 128 == 4_831_838_208
  assert flops.peak_matmul_macs() == 8_589_934_592
  # One call of each, no warm-up (not a measurement: the result's form only).
  peak = flops.measure_peak("float32", seconds=0.0, warmup=0, min_iterations=1)
  assert peak["dtype"] == "float32" and peak["conv_calls"] == peak["matmul_calls"] == 1
  assert np.isfinite(peak["conv_gflops"]) and peak["conv_gflops"] > 0
  assert peak["matmul_gflops"] == peak["matmul_gflops_median"]
