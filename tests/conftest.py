"""Shared pytest setup: import path, quiet TensorFlow, and a clean Keras dtype policy per test."""

import os
import sys

# Must be set before TensorFlow is imported anywhere (test modules import it at collection).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO_ROOT not in sys.path:
  sys.path.insert(0, _REPO_ROOT)

import keras  # noqa: E402  (after the environment variable above)
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def float32_dtype_policy():
  """Restores the global Keras dtype policy to float32 after each test, so a test that turns
  on mixed precision cannot change the layers built by the next one."""
  yield
  keras.mixed_precision.set_global_policy("float32")
