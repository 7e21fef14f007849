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


@pytest.mark.parametrize("paths, split_by, test_fraction, rule", [
    (["long.mp4"], "auto", 0.1, "time"),        # One file: a split by files leaves test empty.
    (["a/long.mp4"], "auto", 0.1, "time"),
    (["long.mp4"], "auto", 0.0, "files"),       # No test split asked for: as before.
    (["long.mp4"], "files", 0.1, "files"),      # Forced.
    (["a.mp4", "b.mp4"], "auto", 0.1, "files"),  # Several files split by file, as before.
    (["a.mp4", "b.mp4"], "time", 0.1, "time"),
    (["train/a.mp4", "test/b.mp4"], "auto", 0.1, "folders"),
    (["train/a.mp4"], "auto", 0.1, "folders"),  # The user's layout, even with an empty test/.
    (["train/a.mp4", "test/b.mp4"], "files", 0.1, "folders"),
    (["train/a.mp4", "test/b.mp4"], "time", 0.1, "time"),  # The folder reader refuses it.
])
def test_split_rule(paths, split_by, test_fraction, rule):
  assert folder_listing.split_rule(paths, split_by, test_fraction) == rule


def test_split_rule_names_the_flag():
  with pytest.raises(ValueError, match=r"^--split_by must be one of auto, files, time, got "
                                       r"'frames'\.$"):
    folder_listing.split_rule(["a.mp4"], "frames", 0.1)


def test_time_split_parts_exact():
  assert folder_listing.time_split_parts(100, 0.1) == [("train", 0, 90), ("test", 90, 100)]
  # vtest.avi: 795 frames, round(79.5) = 80 test frames.
  assert folder_listing.time_split_parts(795, 0.1) == [("train", 0, 715), ("test", 715, 795)]
  assert folder_listing.time_split_parts(250, 0.25) == [("train", 0, 188), ("test", 188, 250)]
  assert folder_listing.time_split_parts(10, 0.0) == [("train", 0, 10)]
  assert folder_listing.time_split_parts(3, 0.1) == [("train", 0, 3)]  # round(0.3) = 0.


def _stretches(pairs, split):
  return [folder_listing.Stretch(split, start, stop) for start, stop in pairs]


def test_cut_sequences_never_span_cuts_or_the_split_boundary():
  parts = folder_listing.time_split_parts(100, 0.1)  # train 0-89, test 90-99.
  sequences, dropped = folder_listing.cut_sequences(parts, [30, 95], min_frames=8,
                                                    max_frames_per_sequence=40)
  # 0-29 whole; 30-89 (60 frames) in two pieces of 30; test 90-94 and 95-99 too short.
  assert sequences == _stretches([(0, 30), (30, 60), (60, 90)], "train")
  assert dropped == _stretches([(90, 95), (95, 100)], "test")
  # A cut on the boundary or outside the frames changes nothing; duplicates are merged.
  assert folder_listing.cut_sequences(parts, [90, 90, 0, 100, 250], 8, 40) == (
      _stretches([(0, 30), (30, 60), (60, 90)], "train") + _stretches([(90, 100)], "test"), [])
  # A file split: one part.
  sequences, dropped = folder_listing.cut_sequences([("test", 0, 50)], [10, 45], 12, None)
  assert sequences == _stretches([(10, 45)], "test")
  assert dropped == _stretches([(0, 10), (45, 50)], "test")
  assert [stretch.length for stretch in dropped] == [10, 5]
  # Exactly min_frames is kept.
  assert folder_listing.cut_sequences([("train", 0, 16)], [8], 8, None) == (
      _stretches([(0, 8), (8, 16)], "train"), [])
