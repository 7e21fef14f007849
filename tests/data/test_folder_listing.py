"""Tests of `video_structure/data/folder_listing.py`: which files, which split, which pieces."""

import pytest

from video_structure.data import folder_listing


def test_split_lengths_cut_near_equal_pieces():
  assert folder_listing.split_lengths(50, 20) == [17, 17, 16]
  assert folder_listing.split_lengths(40, 20) == [20, 20]
  assert folder_listing.split_lengths(50, None) == [50]
  assert folder_listing.split_lengths(7, 20) == [7]


def test_assign_splits():
  names = [f"clip_{i:02d}.mp4" for i in range(20)]
  splits = folder_listing.assign_splits(names, 0.25)
  assert sum(split == "test" for split in splits.values()) == 5
  assert folder_listing.assign_splits(list(reversed(names)), 0.25) == splits  # Order-independent.
  assert list(folder_listing.assign_splits(["a.mp4", "b.mp4"], 0.1).values()).count("test") == 1
  assert set(folder_listing.assign_splits(names, 0.0).values()) == {"train"}
  folders = folder_listing.assign_splits(["train/a.mp4", "train/b/c.mp4", "test/d.gif"], 0.5)
  assert folders == {"train/a.mp4": "train", "train/b/c.mp4": "train", "test/d.gif": "test"}
  with pytest.raises(ValueError, match="test_fraction"):
    folder_listing.assign_splits(names, 1.0)


def test_scan_folder_sorts_and_separates_other_files(tmp_path):
  for name in ("b.npz", "a/c.mp4", "readme.txt", ".hidden.mp4", "cache/x.mp4"):
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_bytes(b"12345")
  entries, others = folder_listing.scan_folder(str(tmp_path), exclude=str(tmp_path / "cache"))
  assert [entry.relative_path for entry in entries] == ["a/c.mp4", "b.npz"]
  assert [entry.size for entry in entries] == [5, 5]
  assert others == ["readme.txt"]
  digest = folder_listing.files_digest(entries)
  (tmp_path / "b.npz").write_bytes(b"123456")
  changed, _ = folder_listing.scan_folder(str(tmp_path), exclude=str(tmp_path / "cache"))
  assert folder_listing.files_digest(changed) != digest
  assert len(digest) == 64  # sha256, hex
