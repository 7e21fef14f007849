"""Where training and test sequences come from: the only code that knows the datasets by name.

`prepare(config, data_dir)` builds the data if missing (the TFDS builders in `builders/`, or
the TFRecord cache of a user's video folder) and returns a `DataSource`: the train and test
sequence datasets in one common format, plus what evaluation needs to know about them
(`evaluation_defaults(name)` gives the latter without opening the data).

Common sequence format (one element per video; `windows.make_windows_dataset` cuts windows):
  image:            uint8   [T, H, W, 3]
  true_object_pos:  float32 [T, N, 2]   (when the dataset has positions; (x, y), y up)
  actions:          float32 [T, A]      (DMCS; actions[t] is applied after frame t)
  reward:           float32 [T]         (DMCS; reward[t] is earned while actions[t] is held)
  label:            int64   []          (human motion: action class; DMCS: task)
"""

import dataclasses
import os
from typing import Optional, Sequence

import tensorflow as tf
import tensorflow_datasets as tfds

from video_structure.data import basketball
from video_structure.data import dmcs
from video_structure.data import folder_options as folder_options_lib
from video_structure.data import human_motion
from video_structure.data import tfds_builders
from video_structure.data import video_folder
from video_structure.data import windows
from video_structure.data.builders import basketball as basketball_builder
from video_structure.data.builders import dmcs as dmcs_builder
from video_structure.data.builders import human_motion as human_motion_builder

TFDS_DATASETS = ("basketball", "human36m", "dmcs")
VIDEO_FOLDER = "video_folder"
DATASETS = TFDS_DATASETS + (VIDEO_FOLDER,)

# The TFDS builder class of each TFDS dataset (`config.dataset` -> builder).
TFDS_BUILDERS = {
    "basketball": basketball_builder.Builder,
    "human36m": human_motion_builder.Builder,
    "dmcs": dmcs_builder.Builder,
}

# Tracking's best-of-samples rules (see `tracking.best_of_samples`).
BEST_SAMPLE_RULES = ("per_object", "mean")


@dataclasses.dataclass(frozen=True)
class EvaluationDefaults:
  """What evaluation needs to know about a dataset before opening its data.

  Attributes:
    best_sample_rule: "per_object" (the best sample is picked per object: Basketball, paper
      Fig. 4) or "mean" (by the mean over all objects: Human3.6M).
    num_video_samples: default number of decoded samples per evaluated test window.
  """
  best_sample_rule: str
  num_video_samples: int


# Per-dataset evaluation defaults (paper section 5.2, footnote 3, and Figure 3 / S1).
# Human3.6M: 100 samples as in the paper. Basketball: 20 samples (the paper does not say; 20
# keeps the CPU run under 15 minutes, see docs/evaluation.md). DMCS (no positions) and video
# folders: Basketball's rule and 20 samples.
EVALUATION_DEFAULTS = {
    "basketball": EvaluationDefaults("per_object", 20),
    "human36m": EvaluationDefaults("mean", 100),
    "dmcs": EvaluationDefaults("per_object", 20),
    VIDEO_FOLDER: EvaluationDefaults("per_object", 20),
}


def evaluation_defaults(dataset: str) -> EvaluationDefaults:
  """The `EvaluationDefaults` of dataset `dataset` (a `config.dataset` value).

  Raises:
    ValueError naming the known datasets.
  """
  if dataset not in EVALUATION_DEFAULTS:
    raise ValueError(f"Unknown dataset {dataset!r}; known: {', '.join(DATASETS)}.")
  return EVALUATION_DEFAULTS[dataset]


@dataclasses.dataclass
class DataSource:
  """The sequences of one dataset and what evaluation needs to know about them.

  Attributes:
    name: for messages, e.g. `basketball/cpu` or the folder path.
    train: tf.data.Dataset of training sequences (module docstring format).
    test: tf.data.Dataset of test sequences.
    object_names: names of the `true_object_pos` entries, or None without positions.
    best_of_samples_per_object: tracking picks the best sample per object (Basketball,
      paper Fig. 4) rather than by the mean over all objects (Human3.6M).
    label_names: names of the `label` classes, or None.
    num_video_samples: default number of decoded samples per evaluated test window.
    train_encoded: the training sequences still encoded (`windows.EncodedSequences`; TFDS
      datasets), or None when `train` has no decoding worth deferring; training windows cut
      from it equal those cut from `train`, and a resumed run skips its first windows cheaply.
  """
  name: str
  train: tf.data.Dataset
  test: tf.data.Dataset
  object_names: Optional[Sequence[str]] = None
  best_of_samples_per_object: bool = True
  label_names: Optional[Sequence[str]] = None
  num_video_samples: int = 20
  train_encoded: Optional[windows.EncodedSequences] = None

  @property
  def training_sequences(self):
    """What training windows are cut from: `train_encoded` if there is one, else `train`."""
    return self.train_encoded if self.train_encoded is not None else self.train

  @property
  def best_sample_rule(self) -> str:
    """`best_of_samples_per_object` as a rule name of BEST_SAMPLE_RULES."""
    return "per_object" if self.best_of_samples_per_object else "mean"


def dataset_for_argument(value):
  """`train.py --dataset` value -> (preset name, folder path or ""): a known dataset name, or a
  folder of videos (anything that is an existing directory or contains a path separator)."""
  if value in TFDS_DATASETS or value == VIDEO_FOLDER:
    return value, ""
  if os.path.isdir(value) or os.sep in value:
    if not os.path.isdir(value):
      raise FileNotFoundError(f"--dataset {value!r}: no such folder (expected one of "
                              f"{', '.join(TFDS_DATASETS)} or a folder of videos).")
    return VIDEO_FOLDER, os.path.abspath(value)
  raise ValueError(f"--dataset {value!r}: expected one of {', '.join(TFDS_DATASETS)} or a "
                   f"folder of videos / .npz files.")


# Sequence features that `load_encoded_split` leaves encoded: the frames (zlib-compressed in
# every builder, ~2 ms to decode a Basketball sequence); the others are small and stored raw.
LATE_DECODED_FEATURES = ("image",)


def load_encoded_split(builder, split):
  """One split of a prepared TFDS builder with its frames still encoded.

  Args:
    builder: as returned by `tfds_builders.prepare`.
    split: "train", "test", or a TFDS sub-split such as "train[:100]".

  Returns:
    A `windows.EncodedSequences` whose `decoded()` is `tfds_builders.load_split(builder,
    split)`, element for element (TFDS's own decoding, run later).
  """
  tfds_builders.check_split(builder, split)
  features = dict(builder.SEQUENCE_FEATURES)
  late = {name: features[name] for name in LATE_DECODED_FEATURES if name in features}
  encoded = builder.as_dataset(
      split=split, shuffle_files=False,
      decoders={stored: tfds.decode.SkipDecoding() for stored in late.values()},
      # As in `tfds_builders.load_split`: no autocache (the caller chooses what to cache).
      read_config=tfds.ReadConfig(try_autocache=False))
  encoded = encoded.map(lambda example: {new: example[old] for new, old in features.items()},
                        num_parallel_calls=tf.data.AUTOTUNE)

  def decode(element):
    element = dict(element)
    for name, stored in late.items():
      element[name] = builder.info.features[stored].decode_example(element[name])
    return element

  return windows.EncodedSequences(encoded, decode)


def prepare(config, data_dir="data", manual_dir=None, test_split="test", folder_options=None,
            num_workers=None):
  """Builds (if missing) and opens the data of `config.dataset`.

  Args:
    config: the model `Config` (`model.config`); `dataset`, `dataset_config`, `dataset_path`,
      `image_size` and `sequence_length` (video folders) are used.
    data_dir: where TFDS datasets and video-folder caches live.
    manual_dir: a Human3.6M copy (human36m with dataset_config `h36m` only).
    test_split: the split evaluation reads (`test`, or a sub-split such as `test[:100]`).
    folder_options: video folders: the folder options the user gave ({option: value},
      `folder_options.folder_options_from_args` of the flags `folder_options.add_folder_arguments`
      adds); the others are those the folder's cache was built with, else the defaults.
    num_workers: worker processes that generate a TFDS dataset that is missing (None: every
      core; 1: in this process); the data do not depend on it.

  Returns:
    A `DataSource`.
  """
  name = config.dataset
  if name not in DATASETS:
    raise ValueError(f"config: unknown dataset {name!r}; known: {', '.join(DATASETS)}.")
  defaults = EVALUATION_DEFAULTS[name]
  per_object = defaults.best_sample_rule == "per_object"
  if name in TFDS_BUILDERS:
    builder = tfds_builders.prepare(TFDS_BUILDERS[name], data_dir, config.dataset_config,
                                    manual_dir=manual_dir if name == "human36m" else None,
                                    num_workers=num_workers)
    train = tfds_builders.load_split(builder, "train")
    test = tfds_builders.load_split(builder, test_split)
    if name == "basketball":
      object_names, label_names = basketball.OBJECT_NAMES, None
    elif name == "human36m":
      object_names, label_names = human_motion.JOINT_NAMES, builder.info.features["action"].names
    else:
      object_names, label_names = None, dmcs.TASKS
    return DataSource(f"{builder.name}/{config.dataset_config}", train, test, object_names,
                      per_object, label_names, defaults.num_video_samples,
                      train_encoded=load_encoded_split(builder, "train"))
  if not config.dataset_path:
    raise ValueError("config: dataset `video_folder` needs `dataset_path` (train.py "
                     "--dataset path/to/folder sets it).")
  folder_settings = dict(
      cache_dir=os.path.join(data_dir, "video_folders"), image_size=config.image_size,
      min_frames=config.sequence_length,
      # Every piece of a cut video must hold a window, so pieces may be up to two windows long
      # (more than the default for windows over 128 frames).
      max_frames_per_sequence=max(folder_options_lib.DEFAULT_MAX_FRAMES_PER_SEQUENCE,
                                  2 * config.sequence_length))
  options = folder_options_lib.resolve_folder_options(config.dataset_path, folder_options,
                                                      **folder_settings)
  cache = video_folder.prepare_video_folder(config.dataset_path, **folder_settings, **options)
  num_objects = cache.num_objects
  object_names = (None if not num_objects else
                  tuple(f"object_{i + 1}" for i in range(num_objects)))
  return DataSource(config.dataset_path, video_folder.load_split(cache, "train"),
                    video_folder.load_split(cache, "test"), object_names, per_object,
                    None, defaults.num_video_samples)
