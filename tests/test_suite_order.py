"""The test suite's own scheduling (tests/conftest.py): the files it sends to the workers first
must exist, or a renamed slow file would silently fall back to the end of the queue."""

import os

from tests import conftest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_slowest_files_first_names_existing_test_files():
  missing = [path for path in conftest.SLOWEST_FILES_FIRST
             if not os.path.isfile(os.path.join(REPO_ROOT, path))]
  assert not missing, f"tests/conftest.py SLOWEST_FILES_FIRST names missing files: {missing}"
  assert len(set(conftest.SLOWEST_FILES_FIRST)) == len(conftest.SLOWEST_FILES_FIRST)
