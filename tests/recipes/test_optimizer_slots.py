"""Tests of video_structure/recipes/optimizer_slots.py: zeroing rows of Adam's first moments."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from video_structure.recipes import optimizer_slots


def _trained(optimizer, shapes=((1, 1, 3, 5), (5,), (2, 4))):
  """Variables of `shapes` after two updates of `optimizer` with random gradients."""
  rng = np.random.default_rng(0)
  variables = [keras.Variable(rng.normal(size=shape).astype(np.float32), name=f"v{i}")
               for i, shape in enumerate(shapes)]
  for _ in range(2):
    gradients = [tf.constant(rng.normal(size=v.shape), tf.float32) for v in variables]
    optimizer.apply_gradients(zip(gradients, variables))
  return variables


def _slots(optimizer, variables):
  """Adam's (first moments, second moments) of `variables` as numpy arrays."""
  # pylint: disable=protected-access
  index = optimizer._get_variable_index
  first = [optimizer._momentums[index(v)].numpy() for v in variables]
  second = [optimizer._velocities[index(v)].numpy() for v in variables]
  return first, second


@pytest.mark.parametrize("make_optimizer", [lambda: keras.optimizers.Adam(1e-3),
                                            lambda: keras.optimizers.AdamW(1e-3)],
                         ids=["adam", "adamw"])
def test_zeroes_exactly_the_given_rows_of_the_first_moments(make_optimizer):
  optimizer = make_optimizer()
  variables = _trained(optimizer)
  first_before, second_before = _slots(optimizer, variables)
  assert all(np.all(m != 0) for m in first_before)  # Random gradients: no zero moment.
  optimizer_slots.zero_first_moments(optimizer, variables[:2], [1, 3])
  first, second = _slots(optimizer, variables)
  for before, after in zip(first_before[:2], first[:2]):
    np.testing.assert_array_equal(after[..., [1, 3]], 0.0)
    kept = [0, 2, 4]
    np.testing.assert_array_equal(after[..., kept], before[..., kept])
  np.testing.assert_array_equal(first[2], first_before[2])  # Not a given variable.
  for before, after in zip(second_before, second):  # The second moments are kept.
    np.testing.assert_array_equal(after, before)


def test_the_next_update_of_a_zeroed_row_is_a_fresh_adam_step():
  # With m = 0 the next first moment of the row is (1 - beta_1) g, the others beta_1 m + ...
  optimizer = keras.optimizers.Adam(1e-3, beta_1=0.9)
  (variable,) = _trained(optimizer, shapes=((3, 4),))
  first_before, _ = _slots(optimizer, [variable])
  optimizer_slots.zero_first_moments(optimizer, [variable], [2])
  gradient = np.full([3, 4], 0.5, np.float32)
  optimizer.apply_gradients([(tf.constant(gradient), variable)])
  first, _ = _slots(optimizer, [variable])
  np.testing.assert_allclose(first[0][:, 2], 0.1 * 0.5, rtol=1e-6)
  np.testing.assert_allclose(first[0][:, :2], 0.9 * first_before[0][:, :2] + 0.05, rtol=1e-6)


def test_no_optimizer_or_an_unbuilt_one_is_a_no_op():
  variable = keras.Variable(np.ones([2, 3], np.float32))
  optimizer_slots.zero_first_moments(None, [variable], [0])
  optimizer = keras.optimizers.SGD(1e-3, momentum=0.9)  # Unsupported, but not built yet.
  optimizer_slots.zero_first_moments(optimizer, [variable], [0])
  assert not optimizer.built


@pytest.mark.parametrize("make_optimizer, name", [
    (lambda: keras.optimizers.SGD(1e-3, momentum=0.9), "SGD"),
    (lambda: keras.optimizers.RMSprop(1e-3), "RMSprop"),
    (lambda: keras.optimizers.Adamax(1e-3), "Adamax"),
])
def test_a_non_adam_optimizer_raises_a_clear_error(make_optimizer, name):
  optimizer = make_optimizer()
  variables = _trained(optimizer, shapes=((2, 3),))
  with pytest.raises(NotImplementedError,
                     match=rf"optimizer_slots: supports Adam on Keras 3\.x, got {name} on Keras"):
    optimizer_slots.zero_first_moments(optimizer, variables, [0])
