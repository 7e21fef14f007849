"""Where training and test sequences come from, for every dataset the project knows.

`prepare(config, data_dir)` builds the data if missing (TFDS builders in `datasets/`, or the
TFRecord cache of a user's video folder) and returns a `DataSource`: the train and test
sequence datasets in one common format, plus what evaluation needs to know about them.

Common sequence format (one element per video; `data.make_windows_dataset` cuts windows):
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

TFDS_DATASETS = ("basketball", "human36m", "dmcs")
VIDEO_FOLDER = "video_folder"


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
  """
  name: str
  train: tf.data.Dataset
  test: tf.data.Dataset
  object_names: Optional[Sequence[str]] = None
  best_of_samples_per_object: bool = True
  label_names: Optional[Sequence[str]] = None


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


def _select(dataset, mapping):
  """Keeps and renames features: `mapping` is {new name: stored name}."""
  return dataset.map(lambda example: {new: example[old] for new, old in mapping.items()},
                     num_parallel_calls=tf.data.AUTOTUNE)


def prepare_dmcs(data_dir, config_name="cpu"):
  """The DMCS TFDS builder for `config_name`, generated if missing (minutes; see the builder)."""
  import tensorflow_datasets as tfds
  from datasets.dmcs import dmcs_dataset_builder
  known = [config.name for config in dmcs_dataset_builder.PREDEFINED_CONFIGS]
  if config_name not in known:
    raise ValueError(f"Unknown DMCS config {config_name!r}; known configs: {', '.join(known)}.")
  os.makedirs(data_dir, exist_ok=True)
  builder = dmcs_dataset_builder.Builder(data_dir=os.fspath(data_dir), config=config_name)
  if not builder.is_prepared():
    print(f"Generating DMCS config {config_name!r} into {builder.data_dir} ...", flush=True)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        try_download_gcs=False, compute_stats=tfds.download.ComputeStatsMode.SKIP))
  stored = dict(builder.info.metadata.get("config", {}))
  if stored != builder.builder_config.settings():
    raise ValueError(f"DMCS data in {builder.data_dir} were generated with settings {stored}, "
                     f"which differ from config {config_name!r}; delete that directory.")
  return builder


def load_dmcs_split(builder, split):
  """DMCS sequences: image, actions, reward and the task as `label`."""
  import tensorflow_datasets as tfds
  from video_structure import data  # pylint: disable=import-outside-toplevel
  data.check_split(builder, split)
  dataset = builder.as_dataset(split=split, shuffle_files=False,
                               read_config=tfds.ReadConfig(try_autocache=False))
  return _select(dataset, {"image": "image", "actions": "action", "reward": "reward",
                           "label": "task_label"})


def prepare(config, data_dir="data", manual_dir=None, test_split="test"):
  """Builds (if missing) and opens the data of `config.dataset`.

  Args:
    config: a `config.Config`; `dataset`, `dataset_config` and `dataset_path` are used.
    data_dir: where TFDS datasets and video-folder caches live.
    manual_dir: a Human3.6M copy (human36m with dataset_config `h36m` only).
    test_split: the split evaluation reads (`test`, or a sub-split such as `test[:100]`).

  Returns:
    A `DataSource`.
  """
  from video_structure import data
  name = config.dataset
  if name == "basketball":
    from video_structure import basketball
    builder = data.prepare_basketball(data_dir, config.dataset_config)
    return DataSource(f"basketball/{config.dataset_config}", data.load_split(builder, "train"),
                      data.load_split(builder, test_split), basketball.OBJECT_NAMES, True)
  if name == "human36m":
    from datasets.human_motion import human_motion_dataset_builder as human_builder
    from video_structure import human_motion
    builder = human_builder.prepare(data_dir, config.dataset_config, manual_dir=manual_dir)
    def load(split):
      return _select(human_builder.load_split(builder, split, with_labels=True),
                     {"image": "image", "true_object_pos": "true_object_pos",
                      "label": "action"})
    label_names = builder.info.features["action"].names
    return DataSource(f"human_motion/{config.dataset_config}", load("train"), load(test_split),
                      human_motion.JOINT_NAMES, False, label_names)
  if name == "dmcs":
    from video_structure import dmcs
    builder = prepare_dmcs(data_dir, config.dataset_config)
    return DataSource(f"dmcs/{config.dataset_config}", load_dmcs_split(builder, "train"),
                      load_dmcs_split(builder, test_split), None, True, dmcs.TASKS)
  if name == VIDEO_FOLDER:
    from video_structure import video_folder
    if not config.dataset_path:
      raise ValueError("config: dataset `video_folder` needs `dataset_path` (train.py "
                       "--dataset path/to/folder sets it).")
    cache = video_folder.prepare_video_folder(
        config.dataset_path, cache_dir=os.path.join(data_dir, "video_folders"),
        image_size=config.image_size, min_frames=config.sequence_length)
    num_objects = cache.num_objects
    object_names = (None if not num_objects else
                    tuple(f"object_{i + 1}" for i in range(num_objects)))
    return DataSource(config.dataset_path, video_folder.load_split(cache, "train"),
                      video_folder.load_split(cache, "test"), object_names, True)
  raise ValueError(f"config: unknown dataset {name!r}; known: "
                   f"{', '.join(TFDS_DATASETS + (VIDEO_FOLDER,))}.")
