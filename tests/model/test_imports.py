"""`video_structure.model` is the paper's model alone: importing it (every module) in a fresh
process loads nothing else of the package (data, training, evaluation, recipes, ...)."""

import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_MODULES = sorted(name[:-3] for name in os.listdir(
    os.path.join(REPO_ROOT, "video_structure", "model")) if name.endswith(".py"))


@pytest.mark.slow
def test_model_package_imports_nothing_else_of_video_structure():
  imports = "; ".join(f"import video_structure.model.{name}" for name in MODEL_MODULES
                      if name != "__init__")
  code = (f"import json, sys; import video_structure.model; {imports}; "
          "print(json.dumps(sorted(m for m in sys.modules if m.startswith('video_structure'))))")
  environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, check=True, env=environment)
  modules = json.loads(result.stdout.strip().splitlines()[-1])
  expected = {"video_structure", "video_structure.model"} | {
      f"video_structure.model.{name}" for name in MODEL_MODULES if name != "__init__"}
  assert set(modules) == expected
