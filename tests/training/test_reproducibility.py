"""Tests of `video_structure/training/reproducibility.py`: the same seed and flags give the same
weights (across processes and kills: tests/training/test_fault_injection.py)."""

import contextlib
import io

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow.core.protobuf import rewriter_config_pb2
from tensorflow.python.eager import context

from tests import helpers
from video_structure.cli import train as train_cli
from video_structure.training import callbacks
from video_structure.training import reproducibility


def test_turns_the_remapper_and_the_memory_optimizer_off():
  reproducibility.make_training_reproducible()
  assert tf.config.optimizer.get_experimental_options()["remapping"] is False
  # What tf.function reads when it optimises a graph (the memory optimizer's AddN rewrite sums
  # gradients in arrival order; it has no public switch).
  rewrite_options = context.context().config.graph_options.rewrite_options
  assert rewrite_options.memory_optimization == rewriter_config_pb2.RewriterConfig.NO_MEM_OPT
  assert rewrite_options.remapping == rewriter_config_pb2.RewriterConfig.OFF


def test_keeps_the_rest_of_the_context_config():
  ctx = context.context()
  saved = ctx._config  # pylint: disable=protected-access
  try:
    earlier = config_pb2.ConfigProto()
    earlier.graph_options.rewrite_options.constant_folding = (
        rewriter_config_pb2.RewriterConfig.OFF)
    ctx._config = earlier  # pylint: disable=protected-access
    reproducibility.make_training_reproducible()
    rewrite_options = ctx.config.graph_options.rewrite_options
    assert rewrite_options.constant_folding == rewriter_config_pb2.RewriterConfig.OFF
    assert rewrite_options.memory_optimization == rewriter_config_pb2.RewriterConfig.NO_MEM_OPT
  finally:
    ctx._config = saved  # pylint: disable=protected-access
    reproducibility.make_training_reproducible()


@pytest.mark.slow
def test_two_tiny_trainings_give_bit_identical_weights(tmp_path, tiny_basketball_dir):
  models = []
  for name in ("first", "second"):
    with contextlib.redirect_stdout(io.StringIO()):
      models.append(train_cli.main(
          ["--run_dir", str(tmp_path / name), "--data_dir", str(tiny_basketball_dir),
           "--num_steps", "6", "--skip_final"] + helpers.tiny_train_flags()))
  first, second = models
  assert int(second.optimizer.iterations.numpy()) == 6
  # Every weight, the optimizer's moments and the dynamics' seed state.
  pairs = list(zip(first.weights + first.optimizer.variables + [
      first.dynamics.seed_generator.state], second.weights + second.optimizer.variables + [
          second.dynamics.seed_generator.state]))
  assert len(pairs) > 100
  for a, b in pairs:
    np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
  first_log, second_log = (
      (tmp_path / name / callbacks.LOSS_LOG_FILE).read_text() for name in ("first", "second"))
  assert first_log == second_log and first_log.count("\n") == 3
