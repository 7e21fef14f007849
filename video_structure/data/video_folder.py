"""A folder of the user's own videos as a sequence dataset (built once into TFRecords).

Input: a folder (searched recursively; hidden files and folders, and the cache folder if
it is inside, are ignored) of
  * video files: .mp4, .avi, .mov, .mkv, .webm, .m4v (decoded with PyAV, `av`),
  * animated .gif files (decoded with imageio),
  * per-sequence .npz files with `image` uint8 [T, H, W, 3] and optionally
    `true_object_pos` float [T, N, 2] ((x, y) in [-1, 1] of the full frame, x right, y up;
    other keys are ignored).
Every file must hold at least `min_frames` frames (after `frame_step`). Files that cannot be
read, are too short, have another extension or malformed contents are errors, all reported
together by name; `skip_bad_files=True` instead prints the list and leaves them out.

Frames: each frame is centre-cropped to a square (the central min(H, W) x min(H, W) pixels;
for odd size differences the crop starts at floor((H - side) / 2) / floor((W - side) / 2))
and resized to image_size x image_size with PIL's antialiased bilinear filter (frames already
of that size are kept as they are). `true_object_pos` is mapped through the same crop and
resize exactly (`crop_resize_positions`); objects outside the crop get coordinates outside
[-1, 1]. `frame_step` k keeps frames 0, k, 2k, ... (temporal subsampling). Reading one file is
`video_files.read_sequence_file`.

Splits: if all files lie under top-level `train/` and `test/` folders, those are the splits.
Otherwise files are ordered by the SHA-1 of their relative path (deterministic, independent
of listing order and of the other files) and the first round(test_fraction * num_files)
(at least 1 when test_fraction > 0 and there are >= 2 files) form the test split.

Long videos are cut into consecutive sequences of at most `max_frames_per_sequence` frames of
near-equal length (all frames kept), so that a training window does not need the whole video
decoded.

Cache: the decoded, resized sequences are written once to
  <cache_dir>/<folder name>-<key>/{train,test}.tfrecord + metadata.json
where key hashes the file list (relative paths, sizes, modification times) and all settings;
a later call with the same files and settings reads the TFRecords without decoding anything.
Changing a file, adding one or changing a setting builds a new cache entry (old entries are
left in place; delete them by hand).
"""


from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import zlib
from typing import Optional

import numpy as np
import tensorflow as tf

from video_structure.data import video_files

CACHE_FORMAT_VERSION = 1
DEFAULT_CACHE_DIR_NAME = ".video_structure_cache"
SPLITS = ("train", "test")
_ZLIB_LEVEL = 6

# ----------------------------------------------------------------------------------------
# Folder scanning and splits
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _FileEntry:
  relative_path: str
  size: int
  mtime_ns: int


def _scan_folder(folder: str, exclude: str) -> list[_FileEntry]:
  """All non-hidden files under folder (recursively) except under `exclude` (the cache),
  sorted by relative path."""
  entries = []
  exclude = os.path.abspath(exclude)
  for root, directories, files in os.walk(folder):
    directories[:] = sorted(d for d in directories if not d.startswith(".")
                            and os.path.abspath(os.path.join(root, d)) != exclude)
    for name in sorted(files):
      if name.startswith("."):
        continue
      path = os.path.join(root, name)
      stat = os.stat(path)
      relative = os.path.relpath(path, folder).replace(os.sep, "/")
      entries.append(_FileEntry(relative, int(stat.st_size), int(stat.st_mtime_ns)))
  return sorted(entries, key=lambda entry: entry.relative_path)


def _path_hash(relative_path: str) -> str:
  return hashlib.sha1(relative_path.encode("utf-8")).hexdigest()


def assign_splits(relative_paths, test_fraction: float) -> dict[str, str]:
  """Maps each relative path to "train" or "test" (see the module docstring).

  Files under top-level train/ and test/ folders (when every file is under one of them) keep
  that split; otherwise the first round(test_fraction * N) files in SHA-1 order of their
  relative paths (at least one if test_fraction > 0 and N >= 2) go to "test".
  """
  relative_paths = list(relative_paths)
  top_levels = {path.split("/", 1)[0] for path in relative_paths if "/" in path}
  if relative_paths and all("/" in path for path in relative_paths) and top_levels <= set(SPLITS):
    return {path: path.split("/", 1)[0] for path in relative_paths}
  if not 0.0 <= test_fraction < 1.0:
    raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}.")
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


# ----------------------------------------------------------------------------------------
# The cache
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VideoFolderCache:
  """A built cache of one folder (returned by `prepare_video_folder`).

  Attributes:
    directory: the cache entry's directory (holds train.tfrecord, test.tfrecord,
      metadata.json).
    image_size: S of the stored frames.
    num_objects: N of `true_object_pos`, or None if the sequences have no positions.
    num_sequences: {"train": ..., "test": ...} stored sequences per split.
    files: {"train": [relative paths], "test": [...]} files per split.
    skipped_files: {relative path: reason} files left out (only with skip_bad_files=True).
  """

  directory: str
  image_size: int
  num_objects: Optional[int]
  num_sequences: dict
  files: dict
  skipped_files: dict

  def tfrecord_path(self, split: str) -> str:
    return os.path.join(self.directory, f"{split}.tfrecord")


def _serialize(images: np.ndarray, positions: Optional[np.ndarray], source: str,
               first_frame: int) -> bytes:
  def int_feature(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

  def bytes_feature(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

  features = {
      "image": bytes_feature(zlib.compress(np.ascontiguousarray(images).tobytes(), _ZLIB_LEVEL)),
      "num_frames": int_feature(images.shape[0]),
      "source": bytes_feature(source.encode("utf-8")),
      "first_frame": int_feature(first_frame),
  }
  if positions is not None:
    features["true_object_pos"] = bytes_feature(
        np.ascontiguousarray(positions, dtype="<f4").tobytes())
  return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _settings(image_size, frame_step, min_frames, max_frames_per_sequence, test_fraction,
              skip_bad_files, use_positions):
  return {
      "format_version": CACHE_FORMAT_VERSION, "image_size": int(image_size),
      "frame_step": int(frame_step), "min_frames": int(min_frames),
      "max_frames_per_sequence": (None if max_frames_per_sequence is None
                                  else int(max_frames_per_sequence)),
      "test_fraction": float(test_fraction), "skip_bad_files": bool(skip_bad_files),
      "use_positions": use_positions,
  }


def _validate_arguments(image_size, frame_step, min_frames, max_frames_per_sequence,
                        use_positions):
  for name, value, minimum in (("image_size", image_size, 8), ("min_frames", min_frames, 1)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
      raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
  video_files.check_frame_step(frame_step)
  if max_frames_per_sequence is not None:
    if (isinstance(max_frames_per_sequence, bool)
        or not isinstance(max_frames_per_sequence, (int, np.integer))
        or max_frames_per_sequence < 2 * min_frames):
      raise ValueError(
          f"max_frames_per_sequence must be None or an integer >= 2 * min_frames = "
          f"{2 * min_frames} (so that every piece of a cut video keeps >= min_frames frames), "
          f"got {max_frames_per_sequence!r}.")
  if use_positions not in (None, True, False):
    raise ValueError(f"use_positions must be None (auto), True or False, got {use_positions!r}.")


def prepare_video_folder(folder, cache_dir=None, image_size: int = 64, frame_step: int = 1,
                         min_frames: int = 16, max_frames_per_sequence: Optional[int] = 256,
                         test_fraction: float = 0.1, skip_bad_files: bool = False,
                         use_positions: Optional[bool] = None,
                         verbose: bool = True) -> VideoFolderCache:
  """Decodes a folder of videos / .npz files once into TFRecords (or finds the cache).

  Args:
    folder: the folder (see the module docstring for what it may contain).
    cache_dir: where cache entries live; default <folder>/.video_structure_cache.
    image_size: S, frames are stored as S x S (centre crop + resize).
    frame_step: keep every frame_step-th frame (temporal subsampling).
    min_frames: files with fewer frames (after frame_step) are errors; use the model's
      window length (observed + predicted steps).
    max_frames_per_sequence: cut longer videos into near-equal consecutive pieces of at most
      this many frames (None: one sequence per file); must be >= 2 * min_frames.
    test_fraction: fraction of files in the test split (ignored with train/ test/ folders).
    skip_bad_files: False: any bad file raises ValueError listing all bad files. True: they
      are left out and listed on stdout.
    use_positions: None: store `true_object_pos` if every file has it (an error if only some
      do); True: require it; False: ignore it.
    verbose: print what is being built / reused.

  Returns:
    A `VideoFolderCache`; read a split with `load_split`.

  Raises:
    FileNotFoundError if the folder does not exist; ValueError for an empty folder, bad
    files (named), inconsistent positions or bad arguments.
  """
  _validate_arguments(image_size, frame_step, min_frames, max_frames_per_sequence,
                      use_positions)
  folder = os.path.abspath(os.fspath(folder))
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"Video folder {folder!r} does not exist (or is not a folder).")
  cache_root = (os.path.join(folder, DEFAULT_CACHE_DIR_NAME) if cache_dir is None
                else os.path.abspath(os.fspath(cache_dir)))
  entries = _scan_folder(folder, exclude=cache_root)
  if not entries:
    raise ValueError(
        f"Video folder {folder!r} contains no files; expected video files "
        f"({', '.join(video_files.SUPPORTED_EXTENSIONS)}) or .npz files with an 'image' array.")
  split_of = assign_splits([entry.relative_path for entry in entries], test_fraction)
  settings = _settings(image_size, frame_step, min_frames, max_frames_per_sequence,
                       test_fraction, skip_bad_files, use_positions)
  key_source = json.dumps({"settings": settings,
                           "files": [dataclasses.astuple(entry) for entry in entries]},
                          sort_keys=True)
  key = hashlib.sha256(key_source.encode("utf-8")).hexdigest()[:16]
  directory = os.path.join(cache_root, f"{os.path.basename(folder) or 'videos'}-{key}")
  metadata_path = os.path.join(directory, "metadata.json")
  if os.path.isfile(metadata_path):
    cache = _cache_from_metadata(directory, metadata_path)
    if verbose:
      print(f"Video folder {folder}: reusing cache {directory} "
            f"({cache.num_sequences['train']} train / {cache.num_sequences['test']} test "
            f"sequences).", flush=True)
      _print_skipped(cache.skipped_files)
    return cache
  if verbose:
    print(f"Video folder {folder}: decoding {len(entries)} files into {directory} ...",
          flush=True)
  return _build_cache(folder, entries, split_of, settings, directory, verbose)


def _print_skipped(skipped):
  if skipped:
    print(f"Skipped {len(skipped)} bad files (skip_bad_files=True):", flush=True)
    for path, reason in sorted(skipped.items()):
      print(f"  {path}: {reason}", flush=True)


def _build_cache(folder, entries, split_of, settings, directory, verbose):
  os.makedirs(os.path.dirname(directory), exist_ok=True)
  staging = tempfile.mkdtemp(prefix=".building-", dir=os.path.dirname(directory))
  try:
    writers = {split: tf.io.TFRecordWriter(os.path.join(staging, f"{split}.tfrecord"))
               for split in SPLITS}
    errors, files, counts = {}, {split: [] for split in SPLITS}, {split: 0 for split in SPLITS}
    with_positions, without_positions, num_objects = [], [], set()
    try:
      for entry in entries:
        path = os.path.join(folder, entry.relative_path)
        try:
          images, positions = video_files.read_sequence_file(path, settings["image_size"],
                                                             settings["frame_step"])
        except ValueError as error:
          errors[entry.relative_path] = str(error)
          continue
        if images.shape[0] < settings["min_frames"]:
          errors[entry.relative_path] = (
              f"{path}: too short: {images.shape[0]} frames (after frame_step="
              f"{settings['frame_step']}), need at least min_frames={settings['min_frames']}.")
          continue
        if settings["use_positions"] is False:
          positions = None
        elif settings["use_positions"] is True and positions is None:
          errors[entry.relative_path] = (
              f"{path}: has no 'true_object_pos' but use_positions=True.")
          continue
        (with_positions if positions is not None else without_positions).append(
            entry.relative_path)
        if positions is not None:
          num_objects.add(positions.shape[1])
        split = split_of[entry.relative_path]
        files[split].append(entry.relative_path)
        first = 0
        for length in split_lengths(images.shape[0], settings["max_frames_per_sequence"]):
          piece_positions = None if positions is None else positions[first:first + length]
          writers[split].write(_serialize(images[first:first + length], piece_positions,
                                          entry.relative_path, first))
          counts[split] += 1
          first += length
    finally:
      for writer in writers.values():
        writer.close()
    if errors and not settings["skip_bad_files"]:
      listing = "\n".join(f"  {path}: {reason}" for path, reason in sorted(errors.items()))
      raise ValueError(
          f"Video folder {folder!r}: {len(errors)} of {len(entries)} files could not be used "
          f"(pass skip_bad_files=True to leave them out):\n{listing}")
    if with_positions and without_positions:
      raise ValueError(
          f"Video folder {folder!r}: some files have 'true_object_pos' "
          f"({', '.join(with_positions[:5])}{' ...' if len(with_positions) > 5 else ''}) and "
          f"some do not ({', '.join(without_positions[:5])}"
          f"{' ...' if len(without_positions) > 5 else ''}); give it for all files or pass "
          f"use_positions=False.")
    if len(num_objects) > 1:
      raise ValueError(
          f"Video folder {folder!r}: 'true_object_pos' has different numbers of objects "
          f"across files ({sorted(num_objects)}); all files need the same N.")
    if not any(counts.values()):
      raise ValueError(f"Video folder {folder!r}: no usable files (all {len(errors)} were bad).")
    metadata = {
        "settings": settings, "folder": folder, "files": files, "num_sequences": counts,
        "num_objects": (num_objects.pop() if with_positions else None),
        "skipped_files": errors,
    }
    with open(os.path.join(staging, "metadata.json"), "w", encoding="utf-8") as stream:
      json.dump(metadata, stream, indent=1, sort_keys=True)
    # Publish atomically: a half-built cache is never seen as complete.
    try:
      os.rename(staging, directory)
    except OSError:
      if not os.path.isfile(os.path.join(directory, "metadata.json")):
        raise
      # Another process built the same entry meanwhile; use theirs.
  finally:
    if os.path.isdir(staging):
      shutil.rmtree(staging, ignore_errors=True)
  cache = _cache_from_metadata(directory, os.path.join(directory, "metadata.json"))
  if verbose:
    print(f"Built {directory}: {counts['train']} train / {counts['test']} test sequences "
          f"from {len(files['train'])} / {len(files['test'])} files.", flush=True)
    _print_skipped(cache.skipped_files)
  return cache


def _cache_from_metadata(directory, metadata_path) -> VideoFolderCache:
  with open(metadata_path, encoding="utf-8") as stream:
    metadata = json.load(stream)
  return VideoFolderCache(
      directory=directory, image_size=metadata["settings"]["image_size"],
      num_objects=metadata["num_objects"], num_sequences=metadata["num_sequences"],
      files=metadata["files"], skipped_files=metadata["skipped_files"])


def load_split(cache: VideoFolderCache, split: str):
  """Reads one split of a built cache as a sequence dataset.

  Args:
    cache: as returned by `prepare_video_folder`.
    split: "train" or "test".

  Returns:
    tf.data.Dataset of {"image": uint8 [T, S, S, 3]} plus "true_object_pos": float32
    [T, N, 2] if the files had positions; T varies between sequences. Stored order (files in
    relative-path order, pieces of a video in time order).

  Raises:
    ValueError for an unknown or empty split.
  """
  if split not in SPLITS:
    raise ValueError(f"Unknown split {split!r} of video folder cache {cache.directory}; "
                     f"known splits: {', '.join(SPLITS)}.")
  if cache.num_sequences[split] == 0:
    raise ValueError(
        f"Split {split!r} of video folder cache {cache.directory} is empty (files per split: "
        f"{ {s: len(cache.files[s]) for s in SPLITS} }); add files, use test_fraction > 0 or "
        f"train/ and test/ subfolders.")
  size = cache.image_size
  num_objects = cache.num_objects
  feature_spec = {
      "image": tf.io.FixedLenFeature([], tf.string),
      "num_frames": tf.io.FixedLenFeature([], tf.int64),
  }
  if num_objects is not None:
    feature_spec["true_object_pos"] = tf.io.FixedLenFeature([], tf.string)

  def parse(record):
    example = tf.io.parse_single_example(record, feature_spec)
    num_frames = tf.cast(example["num_frames"], tf.int32)
    raw = tf.io.decode_raw(tf.io.decode_compressed(example["image"], "ZLIB"), tf.uint8)
    out = {"image": tf.ensure_shape(tf.reshape(raw, [num_frames, size, size, 3]),
                                    [None, size, size, 3])}
    if num_objects is not None:
      positions = tf.io.decode_raw(example["true_object_pos"], tf.float32, little_endian=True)
      out["true_object_pos"] = tf.ensure_shape(
          tf.reshape(positions, [num_frames, num_objects, 2]), [None, num_objects, 2])
    return out

  dataset = tf.data.TFRecordDataset(cache.tfrecord_path(split))
  return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def load_video_folder(folder, split: str = "train", **kwargs):
  """`prepare_video_folder(folder, **kwargs)` then `load_split(cache, split)`."""
  return load_split(prepare_video_folder(folder, **kwargs), split)
