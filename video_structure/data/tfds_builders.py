"""The one helper behind the project's TFDS builders: prepare, check, read.

`prepare(builder_class, data_dir, config)` returns the builder of one config, generating its
data if missing (offline: nothing is downloaded) and refusing data that were generated with
other settings; `load_split(builder, split)` reads one split in the common sequence format
(`sources` module docstring). The builder classes (`builders/`) provide what this needs:

  Builder.SEQUENCE_FEATURES   {sequence feature: stored feature} read by `load_split`.
  config.settings()           the settings that determine the data (stored in the metadata).
  config.validate()           raises ValueError naming the first bad setting.
  config.needs_manual_dir     (optional) the config imports data the user downloads.
"""

from __future__ import annotations

import os
import time
from typing import Mapping, Optional, Sequence, Union

import tensorflow as tf
import tensorflow_datasets as tfds

from video_structure.data import parallel_generation


def check_data_dir_parent(data_dir):
  """Raises FileNotFoundError unless the parent of `data_dir` exists (data_dir itself is
  created by TFDS)."""
  parent = os.path.dirname(os.path.abspath(os.fspath(data_dir)))
  if not os.path.isdir(parent):
    raise FileNotFoundError(
        f"data_dir {os.fspath(data_dir)!r}: its parent directory {parent!r} does not exist.")


def check_split(builder, split):
  """Raises ValueError unless `split` (e.g. "train", "test[:100]") names a non-empty split of
  the prepared `builder`."""
  try:
    num_examples = builder.info.splits[split].num_examples
  except (KeyError, ValueError) as error:
    raise ValueError(
        f"Unknown split {split!r} of {builder.info.full_name}; known splits: "
        f"{', '.join(builder.info.splits.keys())}.") from error
  if num_examples == 0:
    raise ValueError(f"Split {split!r} of {builder.info.full_name} is empty.")


def known_configs(builder_class) -> tuple:
  """Names of the predefined configs of a builder class."""
  return tuple(config.name for config in builder_class.BUILDER_CONFIGS)


def prepare(builder_class, data_dir, config, manual_dir=None, num_workers=None):
  """Returns the builder of `config`, generating its data if missing.

  Args:
    builder_class: a builder class of `builders/` (e.g. `builders.basketball.Builder`).
    data_dir: directory holding TFDS datasets (created if missing; its parent must exist).
      Data go to data_dir/<builder name>/<config name>/<version>/.
    config: the name of a predefined config of the builder (`known_configs`), or a config
      object of the builder's config class.
    manual_dir: the folder of data the user downloaded, for configs that import such data
      (`config.needs_manual_dir`, e.g. human motion's `h36m`).
    num_workers: worker processes that make the examples when they are generated (None: every
      core; 1: in this process). The data do not depend on it.

  Returns:
    A prepared `tfds.core.DatasetBuilder`; read it with `load_split`.

  Raises:
    ValueError for an unknown config name, bad settings or num_workers, or stored data
    generated with other settings; TypeError for a config of another class; FileNotFoundError
    for a missing data_dir parent or manual_dir.
  """
  name = builder_class.name
  config_class = type(builder_class.BUILDER_CONFIGS[0])
  num_workers = parallel_generation.resolve_num_workers(num_workers)
  data_dir = os.fspath(data_dir)
  check_data_dir_parent(data_dir)
  if isinstance(config, str):
    known = known_configs(builder_class)
    if config not in known:
      raise ValueError(
          f"Unknown {name} config {config!r}; known configs: {', '.join(known)} (or pass a "
          f"{config_class.__name__}).")
  elif not isinstance(config, config_class):
    raise TypeError(f"config must be a config name or a {config_class.__name__}, got "
                    f"{type(config).__name__}.")
  if manual_dir is not None and not os.path.isdir(os.fspath(manual_dir)):
    raise FileNotFoundError(
        f"manual_dir {os.fspath(manual_dir)!r} does not exist; it should be the folder of "
        f"your own copy of the data:\n{builder_class.MANUAL_DOWNLOAD_INSTRUCTIONS or ''}")
  os.makedirs(data_dir, exist_ok=True)
  builder = builder_class(data_dir=data_dir, config=config, num_workers=num_workers)
  builder_config = builder.builder_config
  builder_config.validate()
  if not builder.is_prepared():
    if manual_dir is None and getattr(builder_config, "needs_manual_dir", False):
      raise FileNotFoundError(
          f"{name} config {builder_config.name!r} imports data you download yourself: pass "
          f"manual_dir, the folder of your copy:\n{builder_class.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    print(f"Generating {name} config {builder_config.name!r} ({builder_config.settings()}) "
          f"into {builder.data_dir} (num_workers={num_workers}) ...", flush=True)
    start = time.time()
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            try_download_gcs=False,  # Offline: never look for a prebuilt copy.
            manual_dir=None if manual_dir is None else os.fspath(manual_dir),
            compute_stats=tfds.download.ComputeStatsMode.SKIP))
    print(f"Generated {name} {builder_config.name!r} in {time.time() - start:.1f} s: "
          f"{builder.info.splits['train'].num_examples} train / "
          f"{builder.info.splits['test'].num_examples} test sequences.", flush=True)
  stored_settings = dict(builder.info.metadata.get("config", {}))
  if stored_settings != builder_config.settings():
    # A custom config reusing a name would otherwise silently read stale data.
    raise ValueError(
        f"{name} data in {builder.data_dir} were generated with settings {stored_settings}, "
        f"which differ from config {builder_config.name!r} {builder_config.settings()}; give "
        f"the config a new name or delete that directory.")
  return builder


def load_split(builder, split: str,
               features: Optional[Union[Mapping[str, str], Sequence[str]]] = None
               ) -> tf.data.Dataset:
  """Reads one split of a prepared builder as a sequence dataset.

  Args:
    builder: as returned by `prepare`.
    split: "train", "test", or a TFDS sub-split such as "train[:100]".
    features: {name in the returned elements: stored feature name}, or a list of stored
      feature names kept under their own names; default the builder's SEQUENCE_FEATURES
      (the common sequence format, see the `sources` module docstring).

  Returns:
    tf.data.Dataset of dicts of those features, one per stored sequence, in the stored
    (deterministic) order.
  """
  check_split(builder, split)
  if features is None:
    features = builder.SEQUENCE_FEATURES
  if not isinstance(features, Mapping):
    features = {feature: feature for feature in features}
  features = dict(features)
  dataset = builder.as_dataset(
      split=split, shuffle_files=False,
      # Autocache would keep the *decoded* videos in RAM (1.2 GB for Basketball `cpu`); use
      # make_windows_dataset(cache=...) to choose that explicitly.
      read_config=tfds.ReadConfig(try_autocache=False))
  return dataset.map(lambda example: {new: example[old] for new, old in features.items()},
                     num_parallel_calls=tf.data.AUTOTUNE)
