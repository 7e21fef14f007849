"""Which files of a video folder are used, and in which split (`data/video_folder.py`).

Pure functions of the folder's listing: the files found (`scan_folder`), a digest that changes
when any of them does (`files_digest`), their train/test assignment (`assign_splits`) and how a
long video is cut into sequences (`split_lengths`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Optional

from video_structure.data import video_files

SPLITS = ("train", "test")


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


def assign_splits(relative_paths, test_fraction: float) -> dict[str, str]:
  """Maps each relative path to "train" or "test" (see video_folder's module docstring).

  Files under top-level train/ and test/ folders (when every file is under one of them) keep
  that split; otherwise the first round(test_fraction * N) files in SHA-1 order of their
  relative paths (at least one if test_fraction > 0 and N >= 2) go to "test".
  """
  relative_paths = list(relative_paths)
  top_levels = {path.split("/", 1)[0] for path in relative_paths if "/" in path}
  if relative_paths and all("/" in path for path in relative_paths) and top_levels <= set(SPLITS):
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
