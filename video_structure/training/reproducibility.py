"""Bit-reproducible training: the same seed and flags give the same weights, run after run.

`train.py` calls `make_training_reproducible()` first thing (right after creating its strategy,
before any model is built or any step is traced). With it, a run killed at any moment and
resumed ends with exactly the weights and logged losses of an uninterrupted run (see
tests/training/test_fault_injection.py and scripts/fault_injection.py); the other parts of
that guarantee are the seed state in the checkpoints (`model.dynamics`) and the training data
stream, a function of (seed, step) (`data.windows.make_windows_dataset(first_step=...)`).
How the two grappler passes below were found: docs/architecture.md, "Reproducible training".
"""

import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow.core.protobuf import rewriter_config_pb2
from tensorflow.python.eager import context


def make_training_reproducible():
  """Turns off the two grappler passes that make training irreproducible on CPU.

  - The `remapper` fails on this model's train step at a node that varies from run to run
    ("remapper failed ... LeakyReluGrad"), so which ops get fused (and the rounding) varies.
  - The memory optimizer's scheduling pass rewrites a large `AddN` (the detector's gradient
    summed over the loss terms) into in-place `AssignAdd`s that run in whatever order their
    inputs arrive, and it does so only when its peak-memory estimate exceeds 80% of the RAM
    that is free when the step is traced. Gradients of one batch then differ from call to
    call, and between a run and its resumption on a busier machine.

  `tf.config.experimental.enable_op_determinism()` fixes neither (the graph differs, not the
  kernels). TensorFlow has no public switch for the memory optimizer (`tf.config.optimizer`
  omits it), so it is set on the eager context's ConfigProto, which tf.function reads when it
  optimises a graph. Must run before the first train step is traced; affects the process.
  """
  ctx = context.context()
  config = config_pb2.ConfigProto()
  if ctx._config is not None:  # pylint: disable=protected-access
    config.CopyFrom(ctx._config)  # pylint: disable=protected-access
  config.graph_options.rewrite_options.memory_optimization = (
      rewriter_config_pb2.RewriterConfig.NO_MEM_OPT)
  ctx._config = config  # pylint: disable=protected-access
  # Public; also drops the cached function-call options, so that the next traced function is
  # optimised with the config above.
  tf.config.optimizer.set_experimental_options({"remapping": False})

