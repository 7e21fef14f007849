"""Evaluation modules that must stay free of TensorFlow (numpy-only tools load fast)."""

import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("module", ["drawing", "tracking"])
def test_module_does_not_import_tensorflow(module):
  # A fresh interpreter: in this one other tests have imported TensorFlow already.
  code = (f"import sys; from video_structure.evaluation import {module}; "
          f"assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
  subprocess.run([sys.executable, "-c", code], check=True)
