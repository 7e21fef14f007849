"""The top-level `datasets/` folder never shadows an installed `datasets` package (Hugging Face),
the package never imports it, and `tfds build datasets/<name>` still finds the builders."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / "video_structure"


def test_datasets_folder_is_not_a_regular_package():
  assert (REPO_ROOT / "datasets" / "basketball" / "basketball_dataset_builder.py").is_file()
  assert not list((REPO_ROOT / "datasets").rglob("__init__.py"))


@pytest.mark.slow
def test_an_installed_datasets_package_is_not_shadowed(tmp_path):
  """A regular package `datasets` later on sys.path (a stand-in for Hugging Face's) wins over
  our folder when Python runs from the repository root (sys.path[0] is the repository)."""
  fake = tmp_path / "site" / "datasets"
  fake.mkdir(parents=True)
  (fake / "__init__.py").write_text("MARKER = 'the installed datasets package'\n")
  environment = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
  result = subprocess.run(
      [sys.executable, "-c",
       "import sys, datasets; print(sys.path[0] == ''); print(datasets.MARKER); "
       "print(datasets.__file__)"],
      cwd=REPO_ROOT, env=environment, capture_output=True, text=True, check=True)
  first_on_path, marker, location = result.stdout.strip().splitlines()
  assert first_on_path == "True"  # The repository (cwd) comes before the fake on sys.path.
  assert marker == "the installed datasets package"
  assert pathlib.Path(location) == fake / "__init__.py"


def _imported_top_level_modules(path):
  tree = ast.parse(path.read_text(), filename=str(path))
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name.split(".")[0]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      yield node.module.split(".")[0]


def test_no_module_of_the_package_imports_datasets():
  modules = sorted(PACKAGE_DIR.rglob("*.py"))
  assert len(modules) > 20
  importers = [str(path.relative_to(REPO_ROOT)) for path in modules
               if "datasets" in set(_imported_top_level_modules(path))]
  assert not importers


@pytest.mark.slow
def test_tfds_build_finds_the_builders_in_the_datasets_folder(tmp_path):
  """`tfds build datasets/<name>` (TFDS' own lookup, run from the repository root) finds the
  builder of that name defined in datasets/<name>/<name>_dataset_builder.py, and it
  generates the same data as the package's builder."""
  code = f"""
import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.scripts.cli import build
from video_structure.data import tfds_builders
from video_structure.data.builders import basketball
for name in ("basketball", "human_motion", "dmcs"):
  builder_class, _ = build._get_builder_cls_and_kwargs(f"datasets/{{name}}", has_imports=False)
  print(name, builder_class.name, builder_class.__module__, builder_class.__mro__[1].__module__)
cli = build._get_builder_cls_and_kwargs("datasets/basketball", has_imports=False)[0](
    data_dir={str(tmp_path / "cli")!r}, config="tiny")
cli.download_and_prepare(download_config=tfds.download.DownloadConfig(
    try_download_gcs=False, compute_stats=tfds.download.ComputeStatsMode.SKIP))
package = tfds_builders.prepare(basketball.Builder, {str(tmp_path / "package")!r}, "tiny")
for split in ("train", "test"):
  a, b = (list(tfds.as_numpy(x.as_dataset(split=split, shuffle_files=False)))
          for x in (cli, package))
  assert len(a) == len(b) > 0
  assert all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in x)
print("same data")
"""
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert result.returncode == 0, result.stderr[-3000:]
  lines = [line for line in result.stdout.splitlines()
           if line.split(" ")[0] in ("basketball", "human_motion", "dmcs", "same")]
  assert lines == [
      "basketball basketball basketball.basketball_dataset_builder "
      "video_structure.data.builders.basketball",
      "human_motion human_motion human_motion.human_motion_dataset_builder "
      "video_structure.data.builders.human_motion",
      "dmcs dmcs dmcs.dmcs_dataset_builder video_structure.data.builders.dmcs",
      "same data"]
