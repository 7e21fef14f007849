"""Bit-reproducible training: the same seed and flags give the same weights, run after run.

`train.py` calls `make_training_reproducible()` first thing (right after creating its strategy,
before any model is built or any step is traced). With it, a run killed at any moment and
resumed ends with exactly the weights and logged losses of an uninterrupted run (see
tests/training/test_fault_injection.py and scripts/fault_injection.py); the other parts of
that guarantee are the seed state in the checkpoints (`model.dynamics`) and the training data
stream, a function of (seed, step) (`data.windows.make_windows_dataset(first_step=...)`).
"""

import tensorflow as tf


def make_training_reproducible():
  """Turns off TensorFlow's grappler `remapper` pass, which makes training irreproducible.

  On TensorFlow 2.21 (CPU) the remapper fails on every train-step graph of this model with
  "remapper failed: INVALID_ARGUMENT: Mutation::Apply error: fanout '.../LeakyRelu/
  LeakyReluGrad' exist for missing node", at a node that varies from run to run, so that the
  optimised graph (which ops are fused) varies too: 2 of 8 runs of 100 steps of the CPU preset
  (`train.py --dataset basketball --num_steps 100 --skip_final`) ended with different weights
  (largest difference ~150). With the remapper off, 4 of 4 runs were bit-identical and the
  speed was the same (2.06 vs 1.96 steps/s, measured under load).
  `tf.config.experimental.enable_op_determinism()` alone does not fix it (the optimised graph
  differs, not the kernels); with the remapper off, the runs above were bit-identical without
  it.

  Must run before the first train step is traced (grappler reads the option when it optimises
  a graph); it affects the whole process.
  """
  tf.config.optimizer.set_experimental_options({"remapping": False})
