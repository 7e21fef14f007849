"""Which files of a video folder are used, and in which split (`data/video_folder.py`).

Pure functions of the folder's listing: the files found (`scan_folder`), a digest that changes
when any of them does (`files_digest`), the split rule (`split_rule`: by folders, by files or in
time), the files' train/test assignment (`assign_splits`), the parts of a video split in time
(`time_split_parts`) and how a file's frames are cut into sequences at shot cuts and split
boundaries (`cut_sequences`, `split_lengths`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Optional

from video_structure.data import video_files

SPLITS = ("train", "test")
# `--split_by` values; `split_rule` resolves "auto".
SPLIT_BY_CHOICES = ("auto", "files", "time")


@dataclasses.dataclass(frozen=True)
class FileEntry:
  relative_path: str
  size: int
  mtime_ns: int


def scan_folder(folder: str, exclude: str) -> tuple[list[FileEntry], list[str]]:
  """(video / .gif / .npz files, other files) under folder (recursively), both sorted by
  relative path; hidden files and folders and anything under `exclude` (the cache) are left
  out."""
  entries, others = [], []
  exclude = os.path.abspath(exclude)
  for root, directories, files in os.walk(folder):
    directories[:] = sorted(d for d in directories if not d.startswith(".")
                            and os.path.abspath(os.path.join(root, d)) != exclude)
    for name in sorted(files):
      if name.startswith("."):
        continue
      path = os.path.join(root, name)
      relative = os.path.relpath(path, folder).replace(os.sep, "/")
      if os.path.splitext(name)[1].lower() not in video_files.SUPPORTED_EXTENSIONS:
        others.append(relative)
        continue
      stat = os.stat(path)
      entries.append(FileEntry(relative, int(stat.st_size), int(stat.st_mtime_ns)))
  return sorted(entries, key=lambda entry: entry.relative_path), sorted(others)


def files_digest(entries) -> str:
  """Identifies a folder's current list of files (paths, sizes, modification times)."""
  source = json.dumps([dataclasses.astuple(entry) for entry in entries])
  return hashlib.sha256(source.encode("utf-8")).hexdigest()


def _path_hash(relative_path: str) -> str:
  return hashlib.sha1(relative_path.encode("utf-8")).hexdigest()


def has_split_folders(relative_paths) -> bool:
  """Whether every file lies under a top-level train/ or test/ folder (those are the splits)."""
  relative_paths = list(relative_paths)
  top_levels = {path.split("/", 1)[0] for path in relative_paths if "/" in path}
  return bool(relative_paths) and all("/" in path for path in relative_paths) and (
      top_levels <= set(SPLITS))


def split_rule(relative_paths, split_by: str, test_fraction: float) -> str:
  """How a folder's files are split (see video_folder's module docstring).

  Args:
    relative_paths: the folder's files.
    split_by: "auto", "files" or "time" (`--split_by`).
    test_fraction: `--test_fraction`.

  Returns:
    "folders" (train/ and test/ subfolders), "files" (whole files, `assign_splits`) or "time"
    (each file's first frames train, its last test). "auto" is "time" exactly when a split by
    files would leave the test split empty although test_fraction > 0: a single file outside
    train/ and test/ subfolders; otherwise a split by folders or files. "time" is returned
    even with train/ and test/ subfolders (the caller refuses that).
  """
  relative_paths = list(relative_paths)
  if split_by not in SPLIT_BY_CHOICES:
    raise ValueError(f"--split_by must be one of {', '.join(SPLIT_BY_CHOICES)}, "
                     f"got {split_by!r}.")
  if split_by == "time":
    return "time"
  if has_split_folders(relative_paths):
    return "folders"
  if split_by == "auto" and len(relative_paths) == 1 and test_fraction > 0:
    return "time"
  return "files"


def assign_splits(relative_paths, test_fraction: float) -> dict[str, str]:
  """Maps each relative path to "train" or "test" (see video_folder's module docstring).

  Files under top-level train/ and test/ folders (when every file is under one of them) keep
  that split; otherwise the first round(test_fraction * N) files in SHA-1 order of their
  relative paths (at least one if test_fraction > 0 and N >= 2) go to "test".
  """
  relative_paths = list(relative_paths)
  if has_split_folders(relative_paths):
    return {path: path.split("/", 1)[0] for path in relative_paths}
  if not 0.0 <= test_fraction < 1.0:
    raise ValueError(f"--test_fraction must be in [0, 1), got {test_fraction!r}.")
  ordered = sorted(relative_paths, key=_path_hash)
  num_test = int(round(test_fraction * len(ordered)))
  if test_fraction > 0 and len(ordered) >= 2:
    num_test = min(max(num_test, 1), len(ordered) - 1)
  return {path: ("test" if rank < num_test else "train") for rank, path in enumerate(ordered)}


def split_lengths(num_frames: int, max_frames_per_sequence: Optional[int]) -> list[int]:
  """Lengths of the consecutive near-equal pieces a video of num_frames frames is cut into."""
  if max_frames_per_sequence is None or num_frames <= max_frames_per_sequence:
    return [num_frames]
  pieces = -(-num_frames // max_frames_per_sequence)
  base, extra = divmod(num_frames, pieces)
  return [base + 1] * extra + [base] * (pieces - extra)


def time_split_parts(num_frames: int, test_fraction: float) -> list[tuple[str, int, int]]:
  """A file split in time: [("train", 0, b), ("test", b, num_frames)] with b = num_frames -
  round(test_fraction * num_frames) (an empty part is left out)."""
  boundary = num_frames - int(round(test_fraction * num_frames))
  return [(split, start, stop) for split, start, stop in
          (("train", 0, boundary), ("test", boundary, num_frames)) if stop > start]


@dataclasses.dataclass(frozen=True)
class Stretch:
  """Frames [start, stop) of one file (indices of the kept frames) in one split."""
  split: str
  start: int
  stop: int

  @property
  def length(self) -> int:
    return self.stop - self.start


def cut_sequences(parts, cuts, min_frames: int, max_frames_per_sequence: Optional[int]
                  ) -> tuple[list[Stretch], list[Stretch]]:
  """Cuts a file's frames into the sequences that are stored.

  Each part (the whole file in its split, or the two parts of a time split) is divided at the
  shot cuts inside it; a stretch shorter than min_frames is dropped (it cannot hold a training
  window), a longer one is cut into the near-equal pieces of `split_lengths`. No sequence spans
  a cut or the boundary between the parts.

  Args:
    parts: [(split, start, stop)] in frame order (e.g. `time_split_parts`).
    cuts: frame indices that start a new shot (`video_files.detect_cuts`).
    min_frames: the shortest stretch kept.
    max_frames_per_sequence: as for `split_lengths`.

  Returns:
    (sequences, dropped): `Stretch`es in frame order.
  """
  sequences, dropped = [], []
  for split, start, stop in parts:
    bounds = [start] + sorted(cut for cut in set(cuts) if start < cut < stop) + [stop]
    for first, end in zip(bounds[:-1], bounds[1:]):
      if end - first < min_frames:
        dropped.append(Stretch(split, first, end))
        continue
      for length in split_lengths(end - first, max_frames_per_sequence):
        sequences.append(Stretch(split, first, first + length))
        first += length
  return sequences, dropped
