"""The options of a video folder (`data/video_folder.py`): flags, checks, the values of the
folder's existing cache entries, and the settings they give a cache entry.

An option is a choice the user makes about how a folder of videos becomes sequences, given as a
flag of train.py and evaluate.py (`add_folder_arguments`) or as an argument of
`video_folder.prepare_video_folder`. `FOLDER_OPTION_DEFAULTS` lists them with their defaults:
test_fraction, skip_bad_files, keep_truncated_videos, use_positions (`--positions
auto|require|ignore`, `POSITIONS_CHOICES`), split_by, crop, frame_step, frames_per_sequence and
cut_threshold. The other settings of a cache entry (image_size, min_frames = the training
window, max_frames_per_sequence) are the model's, not options. Messages about an option name its
flag.

How options flow:
  1. flags -> the options given (`folder_options_from_args`): a flag not given is left out
     (`--crop none` is given: no crop); argparse checks each flag's form (`parse_crop`,
     `_positive_int`, `_cut_threshold`).
  2. given -> every option (`resolve_folder_options`): an option not given takes the value the
     folder's existing cache entries (the same files, image_size and min_frames) were built
     with, else its default, so that evaluate.py and a resumed run read the same split as the
     training run without repeating its flags. Options are compared by their effect
     (`effective_options`: the split rule resolved, the sequence length in frames, the crop as a
     tuple, cut_threshold only where there are video or .gif files).
  3. every option -> checked (`validate_arguments`, `_check_options`) and the settings a cache
     entry is keyed by and records (`cache_settings`; `_options_of_settings` reads the options
     back for step 2). The options split_by, crop and cut_threshold enter the key only when they
     change what is stored (a split in time, a crop, cut detection in a folder with video or
     .gif files), so that entries built before they existed keep their keys and are found as
     built with `--split_by files --crop none --cut_threshold 0`; `resolve_folder_options` keeps
     using such an entry (saying so) until other flags are given.

Nothing here loads TensorFlow: the CLIs add these flags before they load it, so that --help
answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Optional

import numpy as np

from video_structure.data import folder_listing
from video_structure.data import video_files

# 2: metadata records checksums, truncated files and the digest of the file list. Entries of
# this version may also record a split in time, a crop and shot cuts (new keys of the settings
# only when used, so that the keys of older entries stay valid).
CACHE_FORMAT_VERSION = 2
DEFAULT_CACHE_DIR_NAME = ".video_structure_cache"
DEFAULT_MAX_FRAMES_PER_SEQUENCE = 256

# The options a user chooses for a folder (see the module docstring) and their defaults.
# frames_per_sequence None: the caller's max_frames_per_sequence.
FOLDER_OPTION_DEFAULTS = {
    "test_fraction": 0.1, "skip_bad_files": False, "keep_truncated_videos": False,
    "use_positions": None, "split_by": "auto", "crop": None, "frame_step": 1,
    "frames_per_sequence": None, "cut_threshold": video_files.DEFAULT_CUT_THRESHOLD,
}
# `--positions` values -> use_positions.
POSITIONS_CHOICES = {"auto": None, "require": True, "ignore": False}
# Files in which shot cuts are detected (.npz files are sequences the user made).
CUT_EXTENSIONS = video_files.VIDEO_EXTENSIONS + video_files.GIF_EXTENSIONS


def _is_int(value) -> bool:
  return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def _is_number(value) -> bool:
  return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


_CROP_FORM = ("LEFT,TOP,WIDTH,HEIGHT: four integers in source pixels (LEFT, TOP >= 0; WIDTH, "
              "HEIGHT >= 2), e.g. 336,96,384,384, or none")


def parse_crop(text: str):
  """`--crop` LEFT,TOP,WIDTH,HEIGHT -> (left, top, width, height); `none` -> () (no crop, given
  explicitly: it undoes the crop a cache was built with).

  Raises:
    argparse.ArgumentTypeError (argparse names the flag) for anything else.
  """
  if text.strip().lower() == "none":
    return ()
  try:
    box = tuple(int(part) for part in text.split(","))
  except ValueError:
    box = ()
  if len(box) != 4 or box[0] < 0 or box[1] < 0 or box[2] < 2 or box[3] < 2:
    raise argparse.ArgumentTypeError(f"expected {_CROP_FORM}; got {text!r}.")
  return box


def _positive_int(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    value = 0
  if value < 1:
    raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}.")
  return value


def _cut_threshold(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    value = -1.0
  if not (value == 0 or value > 1):
    raise argparse.ArgumentTypeError(
        f"expected 0 (no cut detection) or a number > 1, got {text!r}.")
  return value


def add_folder_arguments(parser):
  """Adds the folder options' flags (default None: not given, see `resolve_folder_options`)."""
  group = parser.add_argument_group(
      "video folders (datasets of your own videos)",
      "A flag not given keeps the value the folder's cache was built with, else its default:\n"
      "evaluate.py and a resumed run read the training run's split without repeating them.")
  group.add_argument("--test_fraction", type=float, default=None,
                     help="Fraction of the files (--split_by files) or of each video's frames "
                          "(--split_by time) in the test split (default "
                          f"{FOLDER_OPTION_DEFAULTS['test_fraction']}; folders with train/ and "
                          "test/ subfolders use those).")
  group.add_argument("--split_by", choices=folder_listing.SPLIT_BY_CHOICES, default=None,
                     help="files: whole files go to the train or test split; time: each video's "
                          "first frames train, its last --test_fraction test; auto (default): "
                          "time for a folder of a single file, else files.")
  group.add_argument("--crop", type=parse_crop, default=None, metavar="LEFT,TOP,WIDTH,HEIGHT",
                     help="Cut this box (source pixels) out of every frame before the square "
                          "centre crop and resize, e.g. the busy part of a wide shot; `none` "
                          "(default) keeps the whole frame.")
  group.add_argument("--frame_step", type=_positive_int, default=None, metavar="N",
                     help="Keep every N-th frame (temporal subsampling; default 1).")
  group.add_argument("--frames_per_sequence", type=_positive_int, default=None, metavar="N",
                     help="Cut longer stretches of video into near-equal sequences of at most N "
                          f"frames, >= 2 x the training window (default "
                          f"{DEFAULT_MAX_FRAMES_PER_SEQUENCE}, or 2 windows if longer).")
  group.add_argument("--cut_threshold", type=_cut_threshold, default=None, metavar="RATIO",
                     help="Shot-cut detection in video and .gif files: a frame difference RATIO "
                          "times above its neighbours' starts a new shot; no sequence spans a "
                          "cut (default "
                          f"{FOLDER_OPTION_DEFAULTS['cut_threshold']:g}; 0 turns it off).")
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


_FLAG_OPTIONS = ("test_fraction", "skip_bad_files", "keep_truncated_videos", "split_by",
                 "frame_step", "frames_per_sequence", "cut_threshold")


def folder_options_from_args(args) -> dict:
  """The folder options given on the command line (`add_folder_arguments`), by option name."""
  given = {name: getattr(args, name, None) for name in _FLAG_OPTIONS}
  given = {name: value for name, value in given.items() if value is not None}
  positions = getattr(args, "positions", None)
  if positions is not None:  # `auto` gives None, a value like the others.
    given["use_positions"] = POSITIONS_CHOICES[positions]
  crop = getattr(args, "crop", None)
  if crop is not None:  # `--crop none` gives (): no crop, given explicitly.
    given["crop"] = tuple(crop) or None
  return given


def describe_options(options: dict) -> str:
  """Folder options as the flags that set them, e.g. `--test_fraction 0.2 --skip_bad_files`."""
  words = []
  for name, value in options.items():
    if name == "use_positions":
      words.append("--positions " + next(choice for choice, meaning in POSITIONS_CHOICES.items()
                                         if meaning is value))
    elif name == "crop":
      words.append("--crop " + ("none" if value is None else video_files.describe_box(value)))
    elif isinstance(value, bool):
      words.append(f"--{'' if value else 'no-'}{name}")
    elif value is None or isinstance(value, str):
      words.append(f"--{name} {'default' if value is None else value}")
    else:
      words.append(f"--{name} {value:g}")
  return " ".join(words)


def _check_options(options: dict):
  """Raises ValueError naming the flag for a folder option of the wrong type or range."""
  if not _is_number(options["test_fraction"]) or not 0 <= options["test_fraction"] < 1:
    raise ValueError(f"--test_fraction must be in [0, 1), got {options['test_fraction']!r}.")
  for name in ("skip_bad_files", "keep_truncated_videos"):
    if not isinstance(options[name], (bool, np.bool_)):
      raise ValueError(f"--{name} must be True or False, got {options[name]!r}.")
  if options["use_positions"] not in (None, True, False):
    raise ValueError(f"use_positions (--positions) must be None (auto), True (require) or False "
                     f"(ignore), got {options['use_positions']!r}.")
  if options["split_by"] not in folder_listing.SPLIT_BY_CHOICES:
    raise ValueError(f"--split_by must be one of {', '.join(folder_listing.SPLIT_BY_CHOICES)}, "
                     f"got {options['split_by']!r}.")
  crop = options["crop"]
  if crop is not None and (
      not isinstance(crop, (tuple, list)) or len(crop) != 4 or not all(map(_is_int, crop))
      or crop[0] < 0 or crop[1] < 0 or crop[2] < 2 or crop[3] < 2):
    raise ValueError(f"--crop must be {_CROP_FORM}; got {crop!r}.")
  if not _is_int(options["frame_step"]) or options["frame_step"] < 1:
    raise ValueError(f"--frame_step must be a positive integer, got {options['frame_step']!r}.")
  if options["frames_per_sequence"] is not None and not _is_int(options["frames_per_sequence"]):
    raise ValueError(f"--frames_per_sequence must be an integer, got "
                     f"{options['frames_per_sequence']!r}.")
  threshold = options["cut_threshold"]
  if not _is_number(threshold) or not (threshold == 0 or threshold > 1):
    raise ValueError(f"--cut_threshold must be 0 (no cut detection) or a number > 1, got "
                     f"{threshold!r}.")


def validate_arguments(image_size, min_frames, max_frames_per_sequence, options):
  """Raises ValueError for bad arguments (naming the flag for folder options)."""
  for name, value, minimum in (("image_size", image_size, 8), ("min_frames", min_frames, 1)):
    if not _is_int(value) or value < minimum:
      raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
  _check_options(options)
  given = options["frames_per_sequence"]
  if given is not None:
    if given < 2 * min_frames:
      raise ValueError(
          f"--frames_per_sequence must be >= 2 x the training window = {2 * min_frames} (so "
          f"that every piece of a cut video keeps a window), got {given!r}.")
  elif max_frames_per_sequence is not None and (
      not _is_int(max_frames_per_sequence) or max_frames_per_sequence < 2 * min_frames):
    raise ValueError(
        f"max_frames_per_sequence must be None or an integer >= 2 * min_frames = "
        f"{2 * min_frames} (so that every piece of a cut video keeps >= min_frames frames), "
        f"got {max_frames_per_sequence!r}.")


def _has_cut_files(relative_paths) -> bool:
  return any(os.path.splitext(path)[1].lower() in CUT_EXTENSIONS for path in relative_paths)


def effective_options(options: dict, relative_paths, max_frames_per_sequence) -> dict:
  """The options as they determine what is stored: the split rule resolved, the sequence length
  in frames, the crop as a tuple, and cut_threshold None where it does not apply (no video or
  .gif files). Two option sets with equal effective options build the same cache entry."""
  effective = dict(options)
  effective["split_by"] = folder_listing.split_rule(relative_paths, options["split_by"],
                                                    options["test_fraction"])
  if options["frames_per_sequence"] is None:
    effective["frames_per_sequence"] = max_frames_per_sequence
  effective["crop"] = None if options["crop"] is None else tuple(int(v) for v in options["crop"])
  effective["cut_threshold"] = (float(options["cut_threshold"])
                                if _has_cut_files(relative_paths) else None)
  return effective


def cache_root_dir(folder, cache_dir):
  return (os.path.join(folder, DEFAULT_CACHE_DIR_NAME) if cache_dir is None
          else os.path.abspath(os.fspath(cache_dir)))


def cache_settings(image_size, min_frames, effective: dict) -> dict:
  """The settings a cache entry is keyed by (and records): those of the first format as they
  were, plus split_by, crop and cut_threshold (with the detector's version) only when they
  change what is stored."""
  settings = {
      "format_version": CACHE_FORMAT_VERSION, "image_size": int(image_size),
      "frame_step": int(effective["frame_step"]), "min_frames": int(min_frames),
      "max_frames_per_sequence": (None if effective["frames_per_sequence"] is None
                                  else int(effective["frames_per_sequence"])),
      "test_fraction": float(effective["test_fraction"]),
      "skip_bad_files": bool(effective["skip_bad_files"]),
      "keep_truncated_videos": bool(effective["keep_truncated_videos"]),
      "use_positions": effective["use_positions"],
  }
  if effective["split_by"] == "time":
    settings["split_by"] = "time"
  if effective["crop"] is not None:
    settings["crop"] = list(effective["crop"])
  if effective["cut_threshold"]:
    settings["cut_threshold"] = effective["cut_threshold"]
    settings["cut_detector"] = video_files.CUT_DETECTOR_VERSION
  return settings


def _options_of_settings(settings: dict) -> dict:
  """The folder options a cache entry was built with (its recorded settings)."""
  return {
      "test_fraction": settings["test_fraction"], "skip_bad_files": settings["skip_bad_files"],
      "keep_truncated_videos": settings["keep_truncated_videos"],
      "use_positions": settings["use_positions"],
      "split_by": settings.get("split_by", "files"),
      "crop": tuple(settings["crop"]) if settings.get("crop") is not None else None,
      "frame_step": settings["frame_step"],
      "frames_per_sequence": settings["max_frames_per_sequence"],
      "cut_threshold": settings.get("cut_threshold", 0.0),
  }


def _existing_options(cache_root, folder, files_digest, matched: dict) -> list:
  """The folder options of the cache entries under cache_root built from these files with
  these `matched` settings (in a fixed order); None for an entry with an empty split."""
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
          or any(settings[key] != value for key, value in matched.items())):
        continue
      options = _options_of_settings(settings)
      if not all(metadata["num_sequences"][split] for split in folder_listing.SPLITS):
        options = None
    except (OSError, ValueError, KeyError, TypeError):
      continue  # Not an entry of this format (a corrupt one is rebuilt when it is opened).
    found.append(options)
  return found


def resolve_folder_options(folder, given: Optional[dict] = None, cache_dir=None,
                           image_size: int = 64, min_frames: int = 16,
                           max_frames_per_sequence: Optional[int] = DEFAULT_MAX_FRAMES_PER_SEQUENCE,
                           verbose: bool = True) -> dict:
  """The folder options to prepare `folder` with: the given ones, the rest as last time.

  An option not in `given` takes the value of the folder's existing cache entries (built from
  the same files with the same image_size and min_frames) that agree with `given`, or its
  default if there is none; so evaluate.py and a resumed train.py read the split the run was
  trained on. Options are compared by their effect (e.g. `--split_by auto` agrees with an
  entry split in time if auto means time for this folder). Entries with an empty split are
  passed over: train.py and evaluate.py read both splits, so no run was trained on them (and
  a folder of one video built before the split in time existed gets one now).

  Args:
    folder, cache_dir, image_size, min_frames, max_frames_per_sequence: as for
      `video_folder.prepare_video_folder`.
    given: options the user set (`folder_options_from_args`); None: none.
    verbose: print the options taken from an existing entry when they are not the defaults.

  Returns:
    {option: value} for every key of FOLDER_OPTION_DEFAULTS.

  Raises:
    ValueError (naming the flags that differ) if entries built with different options match,
    or for given options of the wrong type or range.
  """
  given = dict(given or {})
  unknown = sorted(set(given) - set(FOLDER_OPTION_DEFAULTS))
  if unknown:
    raise ValueError(f"Unknown folder options {unknown}; known: {sorted(FOLDER_OPTION_DEFAULTS)}.")
  defaults = dict(FOLDER_OPTION_DEFAULTS, **given)
  _check_options(defaults)
  folder = os.path.abspath(os.fspath(folder))
  if not os.path.isdir(folder):
    return defaults  # prepare_video_folder reports it.
  cache_root = cache_root_dir(folder, cache_dir)
  entries, _ = folder_listing.scan_folder(folder, exclude=cache_root)
  paths = [entry.relative_path for entry in entries]

  def effective(options):
    return effective_options(options, paths, max_frames_per_sequence)

  matched = {"format_version": CACHE_FORMAT_VERSION, "image_size": int(image_size),
             "min_frames": int(min_frames)}
  candidates = []
  for options in _existing_options(cache_root, folder, folder_listing.files_digest(entries),
                                   matched):
    if options is None:
      continue  # An empty split: train.py and evaluate.py cannot have used it.
    if options["frames_per_sequence"] is None and max_frames_per_sequence is not None:
      continue  # Built through the API without a sequence length; no flag gives that.
    if (effective(dict(options, **given)) == effective(options)
        and all(effective(options) != effective(other) for other in candidates)):
      candidates.append(options)
  if not candidates:
    return defaults
  if len(candidates) > 1:
    described = [effective(options) for options in candidates]
    differing = [name for name in FOLDER_OPTION_DEFAULTS
                 if len({repr(options[name]) for options in described}) > 1]
    choices = " | ".join(sorted(describe_options({name: options[name] for name in differing})
                                for options in described))
    raise ValueError(f"Video folder {folder} has caches built with different options "
                     f"({choices}); pass the ones the run was trained with.")
  options = dict(candidates[0], **given)
  remembered = {name: value for name, value in effective(options).items()
                if name not in given and value != effective(defaults)[name]}
  if verbose and remembered:
    print(f"Video folder {folder}: using the options its cache was built with: "
          f"{describe_options(remembered)}.", flush=True)
  return options
