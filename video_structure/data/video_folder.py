"""A folder of the user's own videos as a sequence dataset (built once into TFRecords).

Input: a folder (searched recursively; hidden files and folders, and the cache folder if
it is inside, are ignored) of
  * video files: .mp4, .avi, .mov, .mkv, .webm, .m4v (decoded with PyAV, `av`),
  * animated .gif files (decoded with imageio),
  * per-sequence .npz files with `image` uint8 [T, H, W, 3] and optionally
    `true_object_pos` float [T, N, 2] ((x, y) in [-1, 1] of the full frame, x right, y up;
    other keys are ignored).
Other files (readme.txt, thumbnails, subtitles, ...) are ignored, named in one warning line:
they are no sequences, and refusing the folder for a readme would only be in the way.
Every file must hold at least `min_frames` frames (after `frame_step`). Files that cannot be
read, are too short or have malformed contents are errors, all reported together by name;
`skip_bad_files=True` instead prints the list and leaves them out.

Truncated videos (fewer frames decode than the container announces, beyond a margin of two
frames, or decoding stops at an error; `video_files.DecodedFile.is_truncated`) are bad files
too, reported with both counts: a careful user should not train on half a video without
knowing. `keep_truncated_videos=True` keeps the frames that decoded and names each such file in
a warning at every start.

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
where key hashes the list of video / .gif / .npz files (relative paths, sizes, modification
times) and all settings; a later call with the same files and settings reads the TFRecords
without decoding anything. Changing a file, adding one or changing a setting builds a new cache
entry (old entries are left in place; delete them by hand). metadata.json records each
TFRecord file's size and SHA-256, checked whenever the entry is reused (~0.6 GB/s): a corrupt
entry is deleted (it is derived data, rebuilt from the videos; a damaged copy has nothing worth
keeping) and built again, with a one-line message.

Folder options (`FOLDER_OPTION_DEFAULTS`: test_fraction, skip_bad_files, keep_truncated_videos,
use_positions) are flags of train.py and evaluate.py (`add_folder_arguments`; use_positions is
`--positions auto|require|ignore`), and the messages here name those flags. A flag not given
takes the value the folder's existing cache entry was built with (`resolve_folder_options`), so
that evaluate.py and a resumed run read the same split as the training run without repeating
its flags.
"""


from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import uuid
import zlib
from typing import Optional

import numpy as np

from video_structure.data import folder_listing
from video_structure.data import video_files

# 2: metadata records checksums, truncated files and the digest of the file list.
CACHE_FORMAT_VERSION = 2
DEFAULT_CACHE_DIR_NAME = ".video_structure_cache"
DEFAULT_MAX_FRAMES_PER_SEQUENCE = 256
SPLITS = folder_listing.SPLITS
_ZLIB_LEVEL = 6
# Names listed in one message before "... and N more".
_MAX_LISTED = 10

# The options a user chooses for a folder (see the module docstring) and their defaults.
FOLDER_OPTION_DEFAULTS = {
    "test_fraction": 0.1, "skip_bad_files": False, "keep_truncated_videos": False,
    "use_positions": None,
}
# `--positions` values -> use_positions.
POSITIONS_CHOICES = {"auto": None, "require": True, "ignore": False}


def _tensorflow():
  """TensorFlow, imported on first use: the CLIs add this module's flags before they load it,
  so that --help answers at once."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf


def _listing(names) -> str:
  names = list(names)
  more = len(names) - _MAX_LISTED
  return ", ".join(names[:_MAX_LISTED]) + (f" ... and {more} more" if more > 0 else "")


# ----------------------------------------------------------------------------------------
# Folder options: flags, and the values of an existing cache
# ----------------------------------------------------------------------------------------


def add_folder_arguments(parser):
  """Adds the folder options' flags (default None: not given, see `resolve_folder_options`)."""
  group = parser.add_argument_group(
      "video folders (datasets of your own videos)",
      "A flag not given keeps the value the folder's cache was built with, else its default:\n"
      "evaluate.py and a resumed run read the training run's split without repeating them.")
  group.add_argument("--test_fraction", type=float, default=None,
                     help="Fraction of the files in the test split (default "
                          f"{FOLDER_OPTION_DEFAULTS['test_fraction']}; folders with train/ and "
                          "test/ subfolders use those).")
  group.add_argument("--skip_bad_files", action=argparse.BooleanOptionalAction, default=None,
                     help="Leave out (and list) the files that cannot be used instead of "
                          "stopping with an error naming them (default: stop).")
  group.add_argument("--keep_truncated_videos", action=argparse.BooleanOptionalAction,
                     default=None,
                     help="Keep the frames that decode of truncated videos (fewer frames than "
                          "the container announces), with a warning, instead of treating them "
                          "as bad files (default: bad files).")
  group.add_argument("--positions", choices=sorted(POSITIONS_CHOICES), default=None,
                     help="The .npz files' `true_object_pos`: auto (default; used when every "
                          "file has it), require, or ignore.")
  return parser


def folder_options_from_args(args) -> dict:
  """The folder options given on the command line (`add_folder_arguments`), by option name."""
  given = {name: getattr(args, name, None)
           for name in ("test_fraction", "skip_bad_files", "keep_truncated_videos")}
  given = {name: value for name, value in given.items() if value is not None}
  positions = getattr(args, "positions", None)
  if positions is not None:  # `auto` gives None, a value like the others.
    given["use_positions"] = POSITIONS_CHOICES[positions]
  return given


def describe_options(options: dict) -> str:
  """Folder options as the flags that set them, e.g. `--test_fraction 0.2 --skip_bad_files`."""
  words = []
  for name, value in options.items():
    if name == "use_positions":
      words.append("--positions " + next(choice for choice, meaning in POSITIONS_CHOICES.items()
                                         if meaning is value))
    elif isinstance(value, bool):
      words.append(f"--{'' if value else 'no-'}{name}")
    else:
      words.append(f"--{name} {value:g}")
  return " ".join(words)


def _cache_root(folder, cache_dir):
  return (os.path.join(folder, DEFAULT_CACHE_DIR_NAME) if cache_dir is None
          else os.path.abspath(os.fspath(cache_dir)))


def _frame_settings(image_size, frame_step, min_frames, max_frames_per_sequence):
  return {
      "format_version": CACHE_FORMAT_VERSION, "image_size": int(image_size),
      "frame_step": int(frame_step), "min_frames": int(min_frames),
      "max_frames_per_sequence": (None if max_frames_per_sequence is None
                                  else int(max_frames_per_sequence)),
  }


def _existing_options(cache_root, folder, files_digest, frame_settings) -> list[dict]:
  """The folder options of the cache entries under cache_root built from these files with
  these frame settings (distinct, in a fixed order)."""
  found = []
  if not os.path.isdir(cache_root):
    return found
  for name in sorted(os.listdir(cache_root)):
    if name.startswith("."):
      continue  # Entries being built or deleted.
    try:
      with open(os.path.join(cache_root, name, "metadata.json"), encoding="utf-8") as stream:
        metadata = json.load(stream)
      settings = metadata["settings"]
      if (metadata["folder"] != folder or metadata["files_digest"] != files_digest
          or any(settings[key] != value for key, value in frame_settings.items())):
        continue
      options = {key: settings[key] for key in FOLDER_OPTION_DEFAULTS}
    except (OSError, ValueError, KeyError, TypeError):
      continue  # Not an entry of this format (a corrupt one is rebuilt when it is opened).
    if options not in found:
      found.append(options)
  return found


def resolve_folder_options(folder, given: Optional[dict] = None, cache_dir=None,
                           image_size: int = 64, frame_step: int = 1, min_frames: int = 16,
                           max_frames_per_sequence: Optional[int] = DEFAULT_MAX_FRAMES_PER_SEQUENCE,
                           verbose: bool = True) -> dict:
  """The folder options to prepare `folder` with: the given ones, the rest as last time.

  An option not in `given` takes the value of the folder's existing cache entries (built from
  the same files with the same frame settings) that agree with `given`, or its default if
  there is none; so evaluate.py and a resumed train.py read the split the run was trained on.

  Args:
    folder, cache_dir, image_size, frame_step, min_frames, max_frames_per_sequence: as for
      `prepare_video_folder`.
    given: options the user set (`folder_options_from_args`); None: none.
    verbose: print the options taken from an existing entry when they are not the defaults.

  Returns:
    {option: value} for every key of FOLDER_OPTION_DEFAULTS.

  Raises:
    ValueError (naming the flags that differ) if entries built with different options match.
  """
  given = dict(given or {})
  unknown = sorted(set(given) - set(FOLDER_OPTION_DEFAULTS))
  if unknown:
    raise ValueError(f"Unknown folder options {unknown}; known: {sorted(FOLDER_OPTION_DEFAULTS)}.")
  folder = os.path.abspath(os.fspath(folder))
  if not os.path.isdir(folder):
    return dict(FOLDER_OPTION_DEFAULTS, **given)  # prepare_video_folder reports it.
  cache_root = _cache_root(folder, cache_dir)
  entries, _ = folder_listing.scan_folder(folder, exclude=cache_root)
  candidates = [options for options in _existing_options(
      cache_root, folder, folder_listing.files_digest(entries),
      _frame_settings(image_size, frame_step, min_frames, max_frames_per_sequence))
                if all(options[name] == value for name, value in given.items())]
  if not candidates:
    return dict(FOLDER_OPTION_DEFAULTS, **given)
  if len(candidates) > 1:
    differing = [name for name in FOLDER_OPTION_DEFAULTS
                 if len({repr(options[name]) for options in candidates}) > 1]
    choices = " | ".join(sorted(describe_options({name: options[name] for name in differing})
                                for options in candidates))
    raise ValueError(f"Video folder {folder} has caches built with different options "
                     f"({choices}); pass the ones the run was trained with.")
  (options,) = candidates
  remembered = {name: value for name, value in options.items()
                if name not in given and value != FOLDER_OPTION_DEFAULTS[name]}
  if verbose and remembered:
    print(f"Video folder {folder}: using the options its cache was built with: "
          f"{describe_options(remembered)}.", flush=True)
  return options


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
    truncated_files: {relative path: description} truncated videos kept (only with
      keep_truncated_videos=True).
  """

  directory: str
  image_size: int
  num_objects: Optional[int]
  num_sequences: dict
  files: dict
  skipped_files: dict
  truncated_files: dict = dataclasses.field(default_factory=dict)

  def tfrecord_path(self, split: str) -> str:
    return os.path.join(self.directory, f"{split}.tfrecord")


class CorruptCacheError(Exception):
  """A cache entry whose files do not match its metadata (found when it is opened)."""


def _serialize(images: np.ndarray, positions: Optional[np.ndarray], source: str,
               first_frame: int) -> bytes:
  tf = _tensorflow()

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


def _file_checksum(path) -> dict:
  digest = hashlib.sha256()
  with open(path, "rb") as stream:
    for block in iter(lambda: stream.read(1 << 22), b""):
      digest.update(block)
  return {"bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def prepare_video_folder(folder, cache_dir=None, image_size: int = 64, frame_step: int = 1,
                         min_frames: int = 16,
                         max_frames_per_sequence: Optional[int] = DEFAULT_MAX_FRAMES_PER_SEQUENCE,
                         test_fraction: float = 0.1, skip_bad_files: bool = False,
                         keep_truncated_videos: bool = False,
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
    keep_truncated_videos: False: truncated videos are bad files. True: their decoded frames
      are used, and a warning names them.
    use_positions: None: store `true_object_pos` if every file has it (an error if only some
      do); True: require it; False: ignore it.
    verbose: print what is being built / reused (warnings are printed in any case).

  Returns:
    A `VideoFolderCache`; read a split with `load_split`.

  Raises:
    FileNotFoundError if the folder does not exist; ValueError for a folder without videos,
    bad files (named), inconsistent positions or bad arguments.
  """
  _validate_arguments(image_size, frame_step, min_frames, max_frames_per_sequence,
                      use_positions)
  folder = os.path.abspath(os.fspath(folder))
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"Video folder {folder!r} does not exist (or is not a folder).")
  cache_root = _cache_root(folder, cache_dir)
  entries, others = folder_listing.scan_folder(folder, exclude=cache_root)
  kinds = "video, .gif or .npz"
  if not entries:
    raise ValueError(
        f"Video folder {folder!r} contains no files" if not others else
        f"Video folder {folder!r} contains no {kinds} files, only {_listing(others)}.")
  if others:
    print(f"Warning: video folder {folder}: ignoring {len(others)} "
          f"{'file' if len(others) == 1 else 'files'} (not {kinds}): {_listing(others)}",
          flush=True)
  split_of = folder_listing.assign_splits([entry.relative_path for entry in entries], test_fraction)
  settings = dict(_frame_settings(image_size, frame_step, min_frames, max_frames_per_sequence),
                  test_fraction=float(test_fraction), skip_bad_files=bool(skip_bad_files),
                  keep_truncated_videos=bool(keep_truncated_videos), use_positions=use_positions)
  files_digest = folder_listing.files_digest(entries)
  key_source = json.dumps({"settings": settings, "files": files_digest}, sort_keys=True)
  key = hashlib.sha256(key_source.encode("utf-8")).hexdigest()[:16]
  directory = os.path.join(cache_root, f"{os.path.basename(folder) or 'videos'}-{key}")
  if os.path.exists(directory):
    try:
      cache = _open_cache(directory, verify=True)
    except CorruptCacheError as error:
      _delete_entry(directory)
      print(f"Video folder cache {directory} was corrupt ({error}); deleted it, decoding the "
            f"folder again.", flush=True)
    else:
      if verbose:
        print(f"Video folder {folder}: reusing cache {directory} "
              f"({cache.num_sequences['train']} train / {cache.num_sequences['test']} test "
              f"sequences).", flush=True)
      _print_left_out(folder, cache)
      return cache
  if verbose:
    print(f"Video folder {folder}: decoding {len(entries)} files into {directory} ...",
          flush=True)
  return _build_cache(folder, entries, files_digest, split_of, settings, directory, verbose)


def _print_left_out(folder, cache):
  """The warnings every start repeats: truncated videos kept, bad files skipped."""
  if cache.truncated_files:
    described = [f"{path} ({description})"
                 for path, description in sorted(cache.truncated_files.items())]
    print(f"Warning: video folder {folder}: using {len(described)} truncated "
          f"{'video' if len(described) == 1 else 'videos'} (--keep_truncated_videos): "
          f"{_listing(described)}", flush=True)
  if cache.skipped_files:
    print(f"Skipped {len(cache.skipped_files)} bad files (--skip_bad_files):", flush=True)
    for path, reason in sorted(cache.skipped_files.items()):
      print(f"  {path}: {reason}", flush=True)


def _delete_entry(directory):
  """Removes a cache entry: first renamed (atomic, so no reader sees it half deleted)."""
  doomed = os.path.join(os.path.dirname(directory), f".deleting-{uuid.uuid4().hex}")
  try:
    os.rename(directory, doomed)
  except OSError:
    if os.path.exists(directory):
      raise
    return  # Another process removed it first.
  shutil.rmtree(doomed, ignore_errors=True)


def _bad_files_error(folder, errors, num_files):
  """The ValueError for unusable files: the problem and the fix, then one line per file."""
  if len(errors) < num_files:
    fix = "fix or remove them, or pass --skip_bad_files to leave them out"
  else:
    fix = "fix or replace them"
  if any(reason.startswith("truncated") for reason in errors.values()):
    fix += " (--keep_truncated_videos keeps what decodes of truncated videos)"
  lines = [f"  {path}: {reason}" for path, reason in sorted(errors.items())]
  if len(lines) > _MAX_LISTED:
    lines[_MAX_LISTED:] = [f"  ... and {len(lines) - _MAX_LISTED} more"]
  return ValueError(f"Video folder {folder}: {len(errors)} of {num_files} files cannot be used; "
                    f"{fix}:\n" + "\n".join(lines))


def _build_cache(folder, entries, files_digest, split_of, settings, directory, verbose):
  tf = _tensorflow()
  os.makedirs(os.path.dirname(directory), exist_ok=True)
  staging = tempfile.mkdtemp(prefix=".building-", dir=os.path.dirname(directory))
  try:
    writers = {split: tf.io.TFRecordWriter(os.path.join(staging, f"{split}.tfrecord"))
               for split in SPLITS}
    errors, files, counts = {}, {split: [] for split in SPLITS}, {split: 0 for split in SPLITS}
    truncated = {}
    with_positions, without_positions, num_objects = [], [], set()
    try:
      for entry in entries:
        path = os.path.join(folder, entry.relative_path)
        try:
          decoded = video_files.read_sequence_file(path, settings["image_size"],
                                                   settings["frame_step"])
        except ValueError as error:
          # The listing names the file already.
          errors[entry.relative_path] = str(error).removeprefix(f"{path}: ")
          continue
        images, positions = decoded.images, decoded.positions
        if decoded.is_truncated:
          if not settings["keep_truncated_videos"]:
            errors[entry.relative_path] = f"truncated: {decoded.truncation()}"
            continue
          truncated[entry.relative_path] = decoded.truncation()
        if images.shape[0] < settings["min_frames"]:
          step = settings["frame_step"]
          errors[entry.relative_path] = (
              f"too short: {images.shape[0]} frames{'' if step == 1 else f' (frame_step {step})'}"
              f", a training window needs {settings['min_frames']}")
          continue
        if settings["use_positions"] is False:
          positions = None
        elif settings["use_positions"] is True and positions is None:
          errors[entry.relative_path] = "no 'true_object_pos' (--positions require)"
          continue
        (with_positions if positions is not None else without_positions).append(
            entry.relative_path)
        if positions is not None:
          num_objects.add(positions.shape[1])
        split = split_of[entry.relative_path]
        files[split].append(entry.relative_path)
        first = 0
        for length in folder_listing.split_lengths(images.shape[0],
                                                   settings["max_frames_per_sequence"]):
          piece_positions = None if positions is None else positions[first:first + length]
          writers[split].write(_serialize(images[first:first + length], piece_positions,
                                          entry.relative_path, first))
          counts[split] += 1
          first += length
    finally:
      for writer in writers.values():
        writer.close()
    if errors and (not settings["skip_bad_files"] or len(errors) == len(entries)):
      raise _bad_files_error(folder, errors, len(entries))
    if with_positions and without_positions:
      raise ValueError(
          f"Video folder {folder}: some files have 'true_object_pos' "
          f"({_listing(with_positions)}) and some do not ({_listing(without_positions)}); "
          f"give it for all files or pass --positions ignore.")
    if len(num_objects) > 1:
      raise ValueError(
          f"Video folder {folder}: 'true_object_pos' has different numbers of objects "
          f"across files ({sorted(num_objects)}); all files need the same N.")
    metadata = {
        "settings": settings, "folder": folder, "files_digest": files_digest, "files": files,
        "num_sequences": counts, "num_objects": (num_objects.pop() if with_positions else None),
        "skipped_files": errors if settings["skip_bad_files"] else {},
        "truncated_files": truncated,
        "records": {split: _file_checksum(os.path.join(staging, f"{split}.tfrecord"))
                    for split in SPLITS},
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
  cache = _open_cache(directory, verify=False)
  if verbose:
    print(f"Built {directory}: {counts['train']} train / {counts['test']} test sequences "
          f"from {len(files['train'])} / {len(files['test'])} files.", flush=True)
  _print_left_out(folder, cache)
  return cache


def _open_cache(directory, verify: bool) -> VideoFolderCache:
  """The cache entry in `directory`; with verify, its TFRecord files are checked against the
  sizes and checksums in its metadata.

  Raises:
    CorruptCacheError saying what is wrong.
  """
  try:
    with open(os.path.join(directory, "metadata.json"), encoding="utf-8") as stream:
      metadata = json.load(stream)
    cache = VideoFolderCache(
        directory=directory, image_size=metadata["settings"]["image_size"],
        num_objects=metadata["num_objects"], num_sequences=metadata["num_sequences"],
        files=metadata["files"], skipped_files=metadata["skipped_files"],
        truncated_files=metadata["truncated_files"])
    records = metadata["records"]
  except FileNotFoundError as error:
    raise CorruptCacheError("metadata.json is missing") from error
  except (OSError, ValueError, KeyError, TypeError) as error:
    raise CorruptCacheError(f"unreadable metadata.json: {error}") from error
  if verify:
    for split in SPLITS:
      path = cache.tfrecord_path(split)
      if not os.path.isfile(path):
        raise CorruptCacheError(f"{split}.tfrecord is missing")
      if os.path.getsize(path) != records[split]["bytes"]:
        raise CorruptCacheError(f"{split}.tfrecord has {os.path.getsize(path)} bytes, "
                                f"{records[split]['bytes']} were written")
      if _file_checksum(path) != records[split]:
        raise CorruptCacheError(f"{split}.tfrecord does not match its checksum")
  return cache


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
  tf = _tensorflow()
  if split not in SPLITS:
    raise ValueError(f"Unknown split {split!r} of video folder cache {cache.directory}; "
                     f"known splits: {', '.join(SPLITS)}.")
  if cache.num_sequences[split] == 0:
    raise ValueError(
        f"Split {split!r} of video folder cache {cache.directory} is empty (files per split: "
        f"{ {s: len(cache.files[s]) for s in SPLITS} }); add files, pass --test_fraction > 0 "
        f"or use train/ and test/ subfolders.")
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
