"""Shared pytest setup: quiet TensorFlow and a clean Keras dtype policy per test.

The repository root is on the import path through `pythonpath = .` in pytest.ini (or the
package is installed with `pip install -e .`); shared test helpers are in tests/helpers.py.
"""

import os

# Must be set before TensorFlow is imported anywhere (test modules import it at collection).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Under pytest-xdist (scripts/test.sh) the workers share the cores: each TensorFlow (and the
# train.py processes it starts) gets its share of threads instead of all of them.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
  _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
  for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, _threads)

# The package sets its TensorFlow defaults (video_structure/__init__.py) before TensorFlow is
# imported, so the tests run TensorFlow as the commands do.
import video_structure  # noqa: E402,F401  pylint: disable=unused-import
import keras  # noqa: E402  (after the environment variables above)
import pytest  # noqa: E402

from tests import helpers  # noqa: E402


# The files that take longest (each 1.5-5 minutes of one worker on a 2-core AMD EPYC, measured
# with --durations on 2026-12-07), slowest first. They go to the workers first (scripts/test.sh
# passes --no-loadscope-reorder, so pytest-xdist hands files out in collection order), so that
# the suite does not end with one of them running alone; the other files keep their order.
SLOWEST_FILES_FIRST = (
    "tests/cli/test_train.py",
    "tests/training/test_distribute.py",
    "tests/training/test_fault_injection.py",
    "tests/cli/test_run_safety.py",
    "tests/evaluation/test_evaluate_script.py",
    "tests/training/test_export.py",
    "tests/training/test_reproducibility.py",
    "tests/downstream/test_downstream.py",
)


def pytest_collection_modifyitems(items):
  rank = {path: index for index, path in enumerate(SLOWEST_FILES_FIRST)}
  items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # Stable.


@pytest.fixture(autouse=True)
def float32_dtype_policy():
  """Restores the global Keras dtype policy to float32 after each test, so a test that turns
  on mixed precision cannot change the layers built by the next one."""
  yield
  keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def tiny_basketball_dir(tmp_path_factory):
  """The tiny Basketball data (16 train / 8 test sequences of 20 frames), generated once per
  test session (<1 s) for every test that trains through train.py."""
  directory = tmp_path_factory.mktemp("data") / "tfds"
  helpers.prepare_tiny_basketball(directory)
  return directory


@pytest.fixture(scope="module")
def frames():
  """`helpers.moving_squares()`: 2 windows of 16 frames, 64x64, three moving squares."""
  return helpers.moving_squares()
