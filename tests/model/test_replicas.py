"""Tests of video_structure/model/replicas.py on one replica (the default strategy and a
one-device MirroredStrategy). Two replicas and two workers need logical devices configured
before TensorFlow starts: tests/training/test_distribute.py runs them in subprocesses."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from video_structure.model import replicas


def test_one_process_is_one_worker():
  assert replicas.num_workers(tf.distribute.get_strategy()) == 1
  assert replicas.num_workers(tf.distribute.MirroredStrategy(["/cpu:0"])) == 1


def test_replica_seed_folds_the_replica_id_into_the_step_seed():
  generator, reference = keras.random.SeedGenerator(3), keras.random.SeedGenerator(3)
  seeds = [replicas.replica_seed(generator).numpy() for _ in range(2)]
  for seed in seeds:
    step_seed = tf.cast(reference.next(), tf.int32)
    expected = tf.random.experimental.stateless_fold_in(step_seed, 0).numpy()
    assert seed.dtype == np.int32 and seed.shape == (2,)
    np.testing.assert_array_equal(seed, expected)
  assert not np.array_equal(seeds[0], seeds[1])  # The generator advances once per call.
  np.testing.assert_array_equal(generator.state.numpy(), [3, 2])


def test_replica_seed_inside_a_strategy_is_that_of_replica_zero():
  strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
  with strategy.scope():
    generator = keras.random.SeedGenerator(5)
  seed = strategy.run(tf.function(lambda: replicas.replica_seed(generator)))
  expected = tf.random.experimental.stateless_fold_in(tf.constant([5, 0], tf.int32), 0)
  np.testing.assert_array_equal(seed.numpy(), expected.numpy())


@pytest.mark.parametrize("clipping, num_replicas, expected", [
    (dict(clipnorm=10.0), 1, False), (dict(clipnorm=10.0), 2, True),
    (dict(global_clipnorm=1.0), 4, True), (dict(clipvalue=0.5), 2, True), ({}, 2, False)])
def test_needs_global_clipping(clipping, num_replicas, expected):
  optimizer = keras.optimizers.Adam(1e-3, **clipping)
  assert replicas.needs_global_clipping(optimizer, num_replicas) is expected


GLOBAL_SCALE = 5.0 / np.sqrt(2500.25)


@pytest.mark.parametrize("clipping, expected", [
    # Per tensor: the norm-50 tensor to norm 10, the norm-0.5 one unchanged; then / R = 2.
    (dict(clipnorm=10.0), [[2.5, 2.5, 2.5, 2.5], [0.15, 0.2]]),
    # Globally: the norm sqrt(4 * 625 + 0.25) scaled to 5.
    (dict(global_clipnorm=5.0), [[25.0 * GLOBAL_SCALE / 2] * 4,
                                 [0.3 * GLOBAL_SCALE / 2, 0.4 * GLOBAL_SCALE / 2]]),
    # By value: every entry into [-0.35, 0.35].
    (dict(clipvalue=0.35), [[0.175] * 4, [0.15, 0.175]]),
])
def test_global_clipped_gradients_clip_the_sum_and_divide_by_the_replicas(clipping, expected):
  # One replica's context: the all-reduce sum is the gradient itself.
  optimizer = keras.optimizers.Adam(1e-3, **clipping)
  gradients = [tf.fill([4], 25.0), None, tf.constant([0.3, 0.4])]
  clipped = replicas.global_clipped_gradients(gradients, optimizer, num_replicas=2)
  assert clipped[1] is None
  np.testing.assert_allclose(clipped[0].numpy(), expected[0], rtol=1e-6)
  np.testing.assert_allclose(clipped[2].numpy(), expected[1], rtol=1e-6)


def test_one_replica_keeps_its_losses_and_logs():
  terms = {"image": tf.constant(1.5), "kl": tf.constant(0.25)}
  assert replicas.mean_over_replicas(terms) is terms
  assert replicas.logs_for_strategy(terms) is terms
  strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
  means = strategy.run(tf.function(lambda: replicas.mean_over_replicas(
      {"image": tf.constant(1.5), "kl": tf.constant(0.25)})))
  assert {name: float(value) for name, value in means.items()} == {"image": 1.5, "kl": 0.25}
