"""Tests of `video_structure/io_utils.py`, the one helper behind every atomic write."""

import json
import os

import pytest

from video_structure import io_utils


def _names(directory):
  return sorted(os.listdir(directory))


def test_text_json_and_bytes_land_complete_and_leave_no_temporary(tmp_path):
  path = tmp_path / "new" / "deeper" / "file.txt"  # Missing parents are created.
  assert io_utils.atomic_write_text(path, "héllo\n") == os.fspath(path)
  assert path.read_text(encoding="utf-8") == "héllo\n"
  io_utils.atomic_write_text(path, "replaced")
  assert path.read_text() == "replaced"
  report = {"b": [1, 2.5], "a": None}
  io_utils.atomic_write_json(tmp_path / "report.json", report, indent=1, sort_keys=True)
  # Byte for byte what json.dump writes with the same arguments.
  assert (tmp_path / "report.json").read_text() == json.dumps(report, indent=1, sort_keys=True)
  io_utils.atomic_write_bytes(tmp_path / "data.bin", b"\x00\x01")
  assert (tmp_path / "data.bin").read_bytes() == b"\x00\x01"
  assert _names(tmp_path) == ["data.bin", "new", "report.json"]
  assert _names(path.parent) == ["file.txt"]


def test_save_function_gets_a_temporary_path_with_the_extension(tmp_path):
  seen = []

  def save(temporary):
    seen.append(temporary)
    assert os.path.dirname(temporary) == str(tmp_path)  # Same directory: rename is atomic.
    assert os.path.exists(temporary) and not os.path.exists(tmp_path / "model.keras")
    with open(temporary, "wb") as f:
      f.write(b"weights")

  io_utils.atomic_save(tmp_path / "model.keras", save)
  name = os.path.basename(seen[0])
  assert name.startswith(".model.keras.") and name.endswith(".tmp.keras")
  assert io_utils.is_temporary(name)
  assert (tmp_path / "model.keras").read_bytes() == b"weights"
  assert _names(tmp_path) == ["model.keras"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
  path = tmp_path / "config.json"
  io_utils.atomic_write_text(path, "old")

  def fail(temporary):
    with open(temporary, "w") as f:
      f.write("half")
    raise KeyboardInterrupt  # Even an interrupt leaves no half-written file.

  with pytest.raises(KeyboardInterrupt):
    io_utils.atomic_save(path, fail)
  with pytest.raises(TypeError):
    io_utils.atomic_write_json(path, {"not serialisable": object()})
  assert path.read_text() == "old"
  assert _names(tmp_path) == ["config.json"]


def test_directory_is_swapped_in_whole(tmp_path):
  path = tmp_path / "saved_model"

  def write(marker):
    def save(temporary):
      os.makedirs(temporary)
      with open(os.path.join(temporary, "saved_model.pb"), "w") as f:
        f.write(marker)
    return save

  assert io_utils.atomic_save_directory(path, write("first")) == str(path)
  # A killed earlier export left a half-written temporary directory: it is replaced.
  os.makedirs(str(path) + ".tmp")
  io_utils.atomic_save_directory(path, write("second"))
  assert (path / "saved_model.pb").read_text() == "second"
  assert _names(tmp_path) == ["saved_model"]
