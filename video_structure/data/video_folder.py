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

Frames: `crop` (LEFT, TOP, WIDTH, HEIGHT in source pixels; default None, the whole frame) is cut
out of each frame first (a box that does not fit a file's frames makes it a bad file); then the
frame is centre-cropped to a square (the central min(H, W) x min(H, W) pixels; for odd size
differences the crop starts at floor((H - side) / 2) / floor((W - side) / 2)) and resized to
image_size x image_size with PIL's antialiased bilinear filter (frames already of that size are
kept as they are). `true_object_pos` is mapped through the same crops and resize exactly
(`video_files.crop_resize_positions`); objects outside the crop get coordinates outside
[-1, 1]. `frame_step` k keeps frames 0, k, 2k, ... (temporal subsampling). Reading one file is
`video_files.read_sequence_file`.

Splits (`split_by`, `folder_listing.split_rule`):
  * folders: if all files lie under top-level `train/` and `test/` folders, those are the
    splits (`split_by` "auto" or "files"; "time" is refused there).
  * files: files are ordered by the SHA-1 of their relative path (deterministic, independent
    of listing order and of the other files) and the first round(test_fraction * num_files)
    (at least 1 when test_fraction > 0 and there are >= 2 files) form the test split.
  * time: each file's first T - round(test_fraction * T) frames (T after frame_step) give
    training sequences and the rest test sequences; no sequence spans the boundary.
`split_by` "auto" (the default) splits by time exactly when a split by files would leave the
test split empty although test_fraction > 0, that is for a folder holding a single file; a
folder of several files splits by file as before. "time" forces the split in time (use it for a
few long videos, where a split by file would make whole videos the test split). The rule used
is recorded in metadata.json ("split_by") and, when it is "time", is part of the cache key.

Shot cuts: in video and .gif files, cuts are detected at the source frame rate, in the region
that is stored (`video_files.detect_cuts`: an 8 x 8 greyscale thumbnail difference far above
the larger of its medians over the 3 frames before and after) when `cut_threshold` > 0 (default
2; 0 turns detection off); a cut before source frame c starts a new shot at the first kept
frame >= c. .npz files are sequences the user made and are never cut. No sequence spans a
cut: a file is divided at its cuts (and at the boundary of a time split), and a stretch shorter
than `min_frames` is left out with a message naming the file and its frame range (source frame
numbers, counted from 0 before frame_step), at build and at every later start; a file of which
nothing is left is a bad file. The frames where cuts were found are recorded in metadata.json.

Long stretches are cut into consecutive sequences of at most `max_frames_per_sequence` frames
(`frames_per_sequence` when given) of near-equal length (all frames kept), so that a training
window does not need the whole video decoded.

Cache: the decoded, resized sequences are written once to
  <cache_dir>/<folder name>-<key>/{train,test}.tfrecord + metadata.json
where key hashes the list of video / .gif / .npz files (relative paths, sizes, modification
times) and all settings; a later call with the same files and settings reads the TFRecords
without decoding anything. Changing a file, adding one or changing a setting builds a new cache
entry (old entries are left in place; delete them by hand). metadata.json records each
TFRecord file's size and SHA-256, checked whenever the entry is reused (~0.6 GB/s): a corrupt
entry is deleted (it is derived data, rebuilt from the videos; a damaged copy has nothing worth
keeping) and built again, with a one-line message. The settings the key hashes are
`folder_options.cache_settings` (which options enter it, and how entries built before an option
existed keep their keys).

Folder options (test_fraction, skip_bad_files, keep_truncated_videos, use_positions, split_by,
crop, frame_step, frames_per_sequence, cut_threshold) are flags of train.py and evaluate.py, and
the messages here name those flags. Their defaults, flags and checks, their resolution from the
folder's existing cache entries (a flag not given keeps the value the cache was built with) and
the settings they give a cache entry are `data/folder_options.py`.
"""


from __future__ import annotations

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
from video_structure.data import folder_options
from video_structure.data import video_files

SPLITS = folder_listing.SPLITS
_ZLIB_LEVEL = 6
# Names listed in one message before "... and N more".
_MAX_LISTED = 10


def _tensorflow():
  """TensorFlow, imported on first use: importing this module loads none."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf


def _listing(names) -> str:
  names = list(names)
  more = len(names) - _MAX_LISTED
  return ", ".join(names[:_MAX_LISTED]) + (f" ... and {more} more" if more > 0 else "")


def _plural(count: int, word: str, plural: Optional[str] = None) -> str:
  return f"{count} {word if count == 1 else plural or word + 's'}"


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
    split_by: the split rule used: "folders", "files" or "time" (module docstring).
    cuts: {relative path: [frame, ...]} the source frames (counted from 0, before frame_step)
      that start a new shot, for the files in which cuts were found.
    dropped_segments: {relative path: [{"split": ..., "frames": [first, last], "num_frames":
      ...}, ...]} the stretches between cuts or split boundaries left out as shorter than
      min_frames (first and last are source frames, like `cuts`).
  """

  directory: str
  image_size: int
  num_objects: Optional[int]
  num_sequences: dict
  files: dict
  skipped_files: dict
  truncated_files: dict = dataclasses.field(default_factory=dict)
  split_by: str = "files"
  cuts: dict = dataclasses.field(default_factory=dict)
  dropped_segments: dict = dataclasses.field(default_factory=dict)

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


def _file_checksum(path) -> dict:
  digest = hashlib.sha256()
  with open(path, "rb") as stream:
    for block in iter(lambda: stream.read(1 << 22), b""):
      digest.update(block)
  return {"bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def prepare_video_folder(folder, cache_dir=None, image_size: int = 64, frame_step: int = 1,
                         min_frames: int = 16,
                         max_frames_per_sequence: Optional[int] = (
                             folder_options.DEFAULT_MAX_FRAMES_PER_SEQUENCE),
                         test_fraction: float = 0.1, skip_bad_files: bool = False,
                         keep_truncated_videos: bool = False,
                         use_positions: Optional[bool] = None, split_by: str = "auto",
                         crop=None,
                         cut_threshold: float = video_files.DEFAULT_CUT_THRESHOLD,
                         frames_per_sequence: Optional[int] = None,
                         verbose: bool = True) -> VideoFolderCache:
  """Decodes a folder of videos / .npz files once into TFRecords (or finds the cache).

  Args:
    folder: the folder (see the module docstring for what it may contain).
    cache_dir: where cache entries live; default <folder>/.video_structure_cache.
    image_size: S, frames are stored as S x S (centre crop + resize).
    frame_step: keep every frame_step-th frame (temporal subsampling; `--frame_step`).
    min_frames: files with fewer frames (after frame_step) are errors, and shorter stretches
      between cuts are left out; use the model's window length (observed + predicted steps).
    max_frames_per_sequence: cut longer stretches into near-equal consecutive pieces of at
      most this many frames (None: one sequence per stretch); must be >= 2 * min_frames.
    test_fraction: fraction of the files (split by files) or of each file's frames (split in
      time) in the test split (ignored with train/ test/ folders).
    skip_bad_files: False: any bad file raises ValueError listing all bad files. True: they
      are left out and listed on stdout.
    keep_truncated_videos: False: truncated videos are bad files. True: their decoded frames
      are used, and a warning names them.
    use_positions: None: store `true_object_pos` if every file has it (an error if only some
      do); True: require it; False: ignore it.
    split_by: "auto", "files" or "time" (module docstring; `--split_by`).
    crop: None or (left, top, width, height) in source pixels, cut out of every frame before
      the centre crop (`--crop`).
    cut_threshold: shot-cut detection threshold in video and .gif files (0: off;
      `video_files.detect_cuts`).
    frames_per_sequence: the user's `--frames_per_sequence`, which replaces
      max_frames_per_sequence when given (>= 2 * min_frames).
    verbose: print what is being built / reused (warnings are printed in any case).

  Returns:
    A `VideoFolderCache`; read a split with `load_split`.

  Raises:
    FileNotFoundError if the folder does not exist; ValueError for a folder without videos,
    bad files (named), inconsistent positions or bad arguments (naming the flag).
  """
  options = {"test_fraction": test_fraction, "skip_bad_files": skip_bad_files,
             "keep_truncated_videos": keep_truncated_videos, "use_positions": use_positions,
             "split_by": split_by, "crop": crop, "frame_step": frame_step,
             "frames_per_sequence": frames_per_sequence, "cut_threshold": cut_threshold}
  folder_options.validate_arguments(image_size, min_frames, max_frames_per_sequence, options)
  folder = os.path.abspath(os.fspath(folder))
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"Video folder {folder!r} does not exist (or is not a folder).")
  cache_root = folder_options.cache_root_dir(folder, cache_dir)
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
  paths = [entry.relative_path for entry in entries]
  effective = folder_options.effective_options(options, paths, max_frames_per_sequence)
  if effective["split_by"] == "time" and folder_listing.has_split_folders(paths):
    raise ValueError(f"Video folder {folder}: its train/ and test/ subfolders are the splits; "
                     f"drop --split_by time, or move the files out of train/ and test/.")
  split_of = (folder_listing.assign_splits(paths, test_fraction)
              if effective["split_by"] != "time" else None)
  settings = folder_options.cache_settings(image_size, min_frames, effective)
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
      _print_left_out(folder, cache, min_frames)
      return cache
  if verbose:
    print(f"Video folder {folder}: decoding {_plural(len(entries), 'file')} into {directory} "
          f"...", flush=True)
  return _build_cache(folder, entries, files_digest, split_of, settings, effective, directory,
                      verbose)


def _frame_range(stretch: dict) -> str:
  """A left-out stretch (as recorded in metadata.json): `frames 242-249 (8 frames, test)`."""
  first, last = stretch["frames"]
  return f"frames {first}-{last} ({_plural(stretch['num_frames'], 'frame')}, {stretch['split']})"


def _print_left_out(folder, cache, min_frames):
  """The warnings every start repeats: truncated videos kept, bad files skipped, stretches too
  short for a training window left out."""
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
  if cache.dropped_segments:
    described = [f"{path} {_frame_range(stretch)}"
                 for path, stretches in sorted(cache.dropped_segments.items())
                 for stretch in stretches]
    print(f"Note: video folder {folder}: left out {_plural(len(described), 'stretch', 'stretches')}"
          f" shorter than a training window ({min_frames} frames) between shot cuts or split "
          f"boundaries: {_listing(described)}", flush=True)


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


def _file_sequences(relative_path, decoded, split_of, settings, effective, cuts_found,
                    dropped_segments):
  """The `folder_listing.Stretch`es of one file to store (in frame order), recording its cuts
  and left-out stretches; raises ValueError (the reason, for the bad-file list) if none is
  left.

  Cuts are found at the source frame rate (`decoded.cut_thumbnails`); a cut before source frame
  c starts the new shot at kept frame ceil(c / frame_step).
  """
  step, min_frames = settings["frame_step"], settings["min_frames"]
  num_frames = decoded.images.shape[0]
  source_cuts = []
  if decoded.cut_thumbnails is not None:
    source_cuts = video_files.detect_cuts(decoded.cut_thumbnails, effective["cut_threshold"])
  cuts = sorted({-(-cut // step) for cut in source_cuts} & set(range(1, num_frames)))
  if split_of is None:
    parts = folder_listing.time_split_parts(num_frames, settings["test_fraction"])
  else:
    parts = [(split_of[relative_path], 0, num_frames)]
  sequences, dropped = folder_listing.cut_sequences(parts, cuts, min_frames,
                                                    settings["max_frames_per_sequence"])
  stretches = [{"split": stretch.split, "num_frames": stretch.length,
                "frames": [stretch.start * step, (stretch.stop - 1) * step]} for stretch in dropped]
  if not sequences:
    where = []
    if cuts:
      where.append(f"its shot cuts ({'frame' if len(source_cuts) == 1 else 'frames'} "
                   f"{', '.join(map(str, source_cuts))})")
    if split_of is None and len(parts) == 2:
      where.append(f"the train/test boundary (frame {parts[1][1] * step})")
    fix = " (--cut_threshold 0 turns cut detection off)" if cuts else ""
    described = _listing(_frame_range(stretch) for stretch in stretches)
    raise ValueError(f"divided at {' and '.join(where)}, no stretch holds a training window of "
                     f"{min_frames} frames ({described}){fix}")
  if source_cuts:
    cuts_found[relative_path] = source_cuts
  if stretches:
    dropped_segments[relative_path] = stretches
  return sequences


def _build_cache(folder, entries, files_digest, split_of, settings, effective, directory,
                 verbose):
  """Decodes the files into a new cache entry in `directory` (published atomically).

  Args:
    split_of: {relative path: split} (a split by folders or files), or None (in time).
    settings: the entry's settings (`folder_options.cache_settings`).
    effective: the folder options as they determine what is stored
      (`folder_options.effective_options`).
  """
  tf = _tensorflow()
  os.makedirs(os.path.dirname(directory), exist_ok=True)
  staging = tempfile.mkdtemp(prefix=".building-", dir=os.path.dirname(directory))
  try:
    writers = {split: tf.io.TFRecordWriter(os.path.join(staging, f"{split}.tfrecord"))
               for split in SPLITS}
    errors, files, counts = {}, {split: [] for split in SPLITS}, {split: 0 for split in SPLITS}
    truncated, cuts_found, dropped_segments = {}, {}, {}
    with_positions, without_positions, num_objects = [], [], set()
    try:
      for entry in entries:
        path = os.path.join(folder, entry.relative_path)
        detect = (bool(effective["cut_threshold"])
                  and path.lower().endswith(folder_options.CUT_EXTENSIONS))
        try:
          decoded = video_files.read_sequence_file(path, settings["image_size"],
                                                   settings["frame_step"], effective["crop"],
                                                   cut_thumbnails=detect)
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
        try:
          sequences = _file_sequences(entry.relative_path, decoded, split_of, settings,
                                      effective, cuts_found, dropped_segments)
        except ValueError as error:
          errors[entry.relative_path] = str(error)
          continue
        (with_positions if positions is not None else without_positions).append(
            entry.relative_path)
        if positions is not None:
          num_objects.add(positions.shape[1])
        for split in SPLITS:
          if any(sequence.split == split for sequence in sequences):
            files[split].append(entry.relative_path)
        for sequence in sequences:
          piece = slice(sequence.start, sequence.stop)
          writers[sequence.split].write(_serialize(
              images[piece], None if positions is None else positions[piece],
              entry.relative_path, sequence.start))
          counts[sequence.split] += 1
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
        "truncated_files": truncated, "split_by": effective["split_by"], "cuts": cuts_found,
        "dropped_segments": dropped_segments,
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
    if cuts_found:
      described = [f"{path} at frames {', '.join(map(str, frames))}"
                   for path, frames in sorted(cuts_found.items())]
      print(f"Shot cuts (--cut_threshold {effective['cut_threshold']:g}) in "
            f"{len(cuts_found)} of {_plural(len(entries), 'file')}: {_listing(described)}",
            flush=True)
    print(f"Built {directory}: {counts['train']} train / {counts['test']} test sequences "
          f"from {len(files['train'])} / {len(files['test'])} files (split by "
          f"{effective['split_by']}).", flush=True)
  _print_left_out(folder, cache, settings["min_frames"])
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
        truncated_files=metadata["truncated_files"],
        split_by=metadata.get("split_by", metadata["settings"].get("split_by", "files")),
        cuts=metadata.get("cuts", {}), dropped_segments=metadata.get("dropped_segments", {}))
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
    if cache.split_by == "time":
      fix = ("each video's test part is shorter than a training window; pass a larger "
             "--test_fraction or add videos")
    else:
      fix = ("pass --split_by time (to test on the end of each video), --test_fraction > 0, "
             "or use train/ and test/ subfolders")
    raise ValueError(
        f"Split {split!r} of video folder cache {cache.directory} is empty "
        f"({len(cache.files['train'])} train / {len(cache.files['test'])} test files, split by "
        f"{cache.split_by}); {fix}.")
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
