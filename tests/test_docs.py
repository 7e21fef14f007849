"""The layout described in docs/architecture.md is the one on disk, and imports follow it."""

import ast
import os
import re

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# docs/architecture.md: "a package imports only those to its left".
PACKAGE_ORDER = ("io_utils", "model", "recipes", "presets", "data", "evaluation", "training",
                 "downstream", "cli")


def _tree_lines():
  with open(os.path.join(REPO_ROOT, "docs", "architecture.md")) as f:
    text = f.read()
  block = re.search(r"## The tree\n.*?```text\n(.*?)```", text, re.S)
  assert block, "docs/architecture.md must open with a '## The tree' section and a text block"
  return [line.split()[0] for line in block.group(1).splitlines() if line.strip()]


def _python_files(top):
  found = set()
  for root, _, files in os.walk(os.path.join(REPO_ROOT, top)):
    for name in files:
      if name.endswith(".py") and name != "__init__.py":
        found.add(os.path.relpath(os.path.join(root, name), REPO_ROOT))
  return found


def _packages(top):
  return {os.path.relpath(root, REPO_ROOT) + "/"
          for root, _, files in os.walk(os.path.join(REPO_ROOT, top))
          if "__init__.py" in files and os.path.relpath(root, REPO_ROOT) != top}


def test_architecture_tree_lists_every_module_once():
  listed = _tree_lines()
  assert len(listed) == len(set(listed)), "a module is listed twice"
  on_disk = (_python_files("video_structure") | _python_files("datasets") | _packages(
      "video_structure") | {"train.py", "evaluate.py", "compare.py"})
  assert sorted(set(listed) - on_disk) == [], "listed in docs/architecture.md but not on disk"
  assert sorted(on_disk - set(listed)) == [], "on disk but missing from docs/architecture.md"


def _is_main_block(node):
  """`if __name__ == "__main__":`, a module's command-line entry point (may use the cli)."""
  test = node.test if isinstance(node, ast.If) else None
  return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
          and test.left.id == "__name__" and len(test.comparators) == 1
          and isinstance(test.comparators[0], ast.Constant)
          and test.comparators[0].value == "__main__")


def _imported_packages(path):
  """The `video_structure.<name>` packages or modules a file imports (outside its
  `if __name__ == "__main__":` block)."""
  with open(path) as f:
    tree = ast.parse(f.read())
  tree.body = [node for node in tree.body if not _is_main_block(node)]
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      parts = node.module.split(".")
      if parts[0] == "video_structure":
        names.update([parts[1]] if len(parts) > 1 else [alias.name for alias in node.names])
    elif isinstance(node, ast.Import):
      names.update(alias.name.split(".")[1] for alias in node.names
                   if alias.name.startswith("video_structure."))
  return names


def test_packages_import_only_the_packages_before_them():
  violations = []
  for path in sorted(_python_files("video_structure")):
    parts = path.split(os.sep)
    own = parts[1][:-3] if parts[1].endswith(".py") else parts[1]
    for imported in _imported_packages(os.path.join(REPO_ROOT, path)):
      if PACKAGE_ORDER.index(imported) > PACKAGE_ORDER.index(own):
        violations.append(f"{path} imports video_structure.{imported}")
  assert violations == []


def test_model_imports_nothing_else_of_the_package():
  for path in sorted(_python_files(os.path.join("video_structure", "model"))):
    assert _imported_packages(os.path.join(REPO_ROOT, path)) <= {"model"}, path
