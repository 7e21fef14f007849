"""Fixtures of the training tests."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from video_structure.training import builder


@pytest.fixture(scope="module")
def model():
  """A tiny model whose Adam moments are non-zero (two eager updates with random gradients)."""
  keras.mixed_precision.set_global_policy("float32")
  model = builder.build_model(helpers.tiny_config())
  rng = np.random.default_rng(0)
  for _ in range(2):
    gradients = [tf.constant(rng.normal(size=v.shape), tf.float32)
                 for v in model.trainable_variables]
    model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
  return model
