"""TFDS builder for the Basketball dataset (Minderer et al. 2019, Sec. 4.1).

Each example is one play seen from above: the ball and the five offensive players
drawn as coloured dots on a half court, 64x64 pixels, 6.25 Hz.

By default the plays are simulated offline (`basketball_plays.simulate_plays`);
users who hold the real SportVU trajectories (Zhan et al. 2019; arrays `(N, 50, 22)` in
feet) point `BasketballConfig.train_trajectories` / `test_trajectories` at `.npy` / `.npz`
files and those trajectories are rendered instead. Nothing is ever downloaded.

Features of one example (T = num_frames, S = image_size):
  image:             uint8   [T, S, S, 3]  video frames (zlib-compressed tensor on disk).
  true_object_pos:   float32 [T, 6, 2]     (x, y) in [-1, 1] of ball, player_1..player_5.
  trajectories_feet: float32 [T, 22]       court coordinates in feet (SportVU layout).
  sequence_index:    int64   []            index of the sequence within its split.

Generation runs on this machine by default, in chunks of GENERATION_CHUNK_SIZE sequences (each a
pure function of its index range) made by `Builder(num_workers=...)` worker processes (default:
every core; `video_structure.data.parallel_generation`), which also zlib-compress the frames
(with ISA-L's compressor: TFDS' zlib format, about 14x faster than Python's zlib);
TFDS writes them here in order, so the data do not depend on the number of workers. With
`BasketballConfig.use_beam`, or a `tfds.download.DownloadConfig` naming a `beam_runner` or
`beam_options`, it runs on Apache Beam (`video_structure.data.beam`) and gives the same examples;
docs/scaling.md has the cluster commands. `main` is the command line behind
`python -m datasets.basketball` (datasets/basketball/).

Why a zlib `Tensor` rather than a PNG `tfds.features.Video`: measured on rendered
50x64x64x3 Basketball videos, zlib encodes 7x faster (5.3 vs 36.3 ms per sequence),
decodes 4x faster (2.0 vs 8.1 ms per sequence on one core) and is 2.9x smaller
(31 vs 88 kB per sequence; 37 kB with ISA-L).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Iterator, Optional

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import gcs_utils

from video_structure.data import basketball
from video_structure.data import basketball_plays
from video_structure.data import beam
from video_structure.data import parallel_generation

# This machine (and users' machines) may be offline: never look for a prebuilt copy
# of the dataset on GCS. (TFDS 4.9 already defaults to this; keep it explicit.)
gcs_utils._is_gcs_disabled = True  # pylint: disable=protected-access

# Sequences simulated / rendered per call; vectorised calls amortise numpy's per-call overhead
# (simulation on the AMD EPYC: 2.1 ms per sequence in chunks of 64, 1.0 ms in chunks of 256).
# A chunk's frames take 157 MB at paper settings.
GENERATION_CHUNK_SIZE = 256

# Test sequences are simulated with indices starting here, so that train
# (indices [0, num_train)) and test never share a sequence for any seed.
TEST_FIRST_INDEX = 1_000_000_000


@dataclasses.dataclass(eq=False)
class BasketballConfig(tfds.core.BuilderConfig):
  """Settings of one version of the Basketball data.

  Attributes:
    num_train: number of simulated training sequences. Must be None (= all rows of
      the file) or equal to the file's row count when `train_trajectories` is set.
    num_test: the same for the test split.
    num_frames: frames per sequence (T).
    image_size: height and width of the rendered frames (S).
    seed: seed of the simulator; sequence i of a split depends only on (seed, i).
    train_trajectories: optional path of a `.npy` / `.npz` file with real trajectories
      `(N, num_frames, 22)` in feet; when set they are rendered instead of simulated.
    test_trajectories: the same for the test split.
    use_beam: generate on Apache Beam (the DownloadConfig's runner; Beam's DirectRunner if it
      names none). Not a data setting: the examples are the same either way.
  """

  num_train: Optional[int] = None
  num_test: Optional[int] = None
  num_frames: int = 50
  image_size: int = 64
  seed: int = 0
  train_trajectories: Optional[str] = None
  test_trajectories: Optional[str] = None
  use_beam: bool = False

  def settings(self) -> dict:
    """The settings that determine the generated data (stored in the dataset metadata)."""
    return {
        "num_train": self.num_train,
        "num_test": self.num_test,
        "num_frames": self.num_frames,
        "image_size": self.image_size,
        "seed": self.seed,
        "train_trajectories": (
            None if self.train_trajectories is None
            else os.path.abspath(os.fspath(self.train_trajectories))),
        "test_trajectories": (
            None if self.test_trajectories is None
            else os.path.abspath(os.fspath(self.test_trajectories))),
    }

  def validate(self) -> None:
    """Raises ValueError naming the first bad setting."""
    for field in ("num_frames", "image_size"):
      value = getattr(self, field)
      if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            f"BasketballConfig {self.name!r}: {field} must be a positive int, got {value!r}.")
    for split, count_field, path_field in (("train", "num_train", "train_trajectories"),
                                           ("test", "num_test", "test_trajectories")):
      count, path = getattr(self, count_field), getattr(self, path_field)
      if path is None and count is None:
        raise ValueError(
            f"BasketballConfig {self.name!r}: {count_field} must be set (number of "
            f"simulated {split} sequences) when {path_field} is not given.")
      if count is not None and (not isinstance(count, (int, np.integer)) or count < 1):
        raise ValueError(
            f"BasketballConfig {self.name!r}: {count_field} must be a positive int, "
            f"got {count!r}.")
    if self.num_train is not None and self.train_trajectories is None:
      if self.num_train > TEST_FIRST_INDEX:
        raise ValueError(
            f"BasketballConfig {self.name!r}: num_train={self.num_train} exceeds "
            f"{TEST_FIRST_INDEX}, where the test sequence indices start.")


PREDEFINED_CONFIGS = (
    BasketballConfig(
        name="cpu",
        description="CPU-sized default: 2,000 train / 200 test simulated plays of 50 frames.",
        num_train=2000, num_test=200, num_frames=50),
    BasketballConfig(
        name="paper",
        description="Paper-sized: 107,146 train / 13,845 test simulated plays of 50 frames.",
        num_train=107146, num_test=13845, num_frames=50),
    BasketballConfig(
        name="tiny",
        description="For tests: 16 train / 8 test simulated plays of 20 frames.",
        num_train=16, num_test=8, num_frames=20),
)


class Builder(parallel_generation.GenerationWorkersMixin, tfds.core.GeneratorBasedBuilder):
  """Basketball: top-down videos of multi-agent plays with object positions.

  `Builder(data_dir=..., config=..., num_workers=None)`: num_workers worker processes make the
  examples without Beam (None: every core; 1: in this process).
  """

  # Explicit: TFDS would otherwise name a class called `Builder` after its package.
  name = "basketball"
  # The common sequence format (`sources`): what `tfds_builders.load_split` reads.
  SEQUENCE_FEATURES = {"image": "image", "true_object_pos": "true_object_pos"}
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = list(PREDEFINED_CONFIGS)
  DEFAULT_CONFIG_NAME = "cpu"

  def _info(self) -> tfds.core.DatasetInfo:
    config: BasketballConfig = self.builder_config
    num_frames, size = config.num_frames, config.image_size
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            # A zlib Tensor (stored as tfds.features.Tensor) that the workers may encode.
            "image": parallel_generation.PreEncodableTensor(
                shape=(num_frames, size, size, 3), dtype=np.uint8,
                encoding=tfds.features.Encoding.ZLIB),
            "true_object_pos": tfds.features.Tensor(
                shape=(num_frames, basketball.NUM_OBJECTS, 2), dtype=np.float32),
            "trajectories_feet": tfds.features.Tensor(
                shape=(num_frames, basketball.TRAJECTORY_DIM), dtype=np.float32),
            "sequence_index": tfds.features.Scalar(dtype=np.int64),
        }),
        supervised_keys=None,
        # Store examples in sequence_index order (TFDS would otherwise permute them by
        # key hash); readers shuffle for training themselves.
        disable_shuffling=True,
        homepage="https://arxiv.org/abs/1906.07889",
        metadata=tfds.core.MetadataDict(config=config.settings()),
    )

  def _download_and_prepare(self, dl_manager, download_config=None):
    # Beam when the config asks for it or the download config names a runner or options.
    self._use_beam = bool(self.builder_config.use_beam or (download_config is not None and (
        download_config.beam_runner is not None or download_config.beam_options is not None)))
    return super()._download_and_prepare(dl_manager, download_config)

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing is downloaded.
    config: BasketballConfig = self.builder_config
    config.validate()
    return {
        "train": self._generate_examples(
            num_sequences=config.num_train, first_index=0,
            trajectories_path=config.train_trajectories, path_field="train_trajectories",
            count_field="num_train", split="train"),
        "test": self._generate_examples(
            num_sequences=config.num_test, first_index=TEST_FIRST_INDEX,
            trajectories_path=config.test_trajectories, path_field="test_trajectories",
            count_field="num_test", split="test"),
    }

  def _load_imported(self, path, path_field: str, count_field: str,
                     num_sequences: Optional[int]) -> np.ndarray:
    """Loads real trajectories float32 [N, T, 22] and checks them against the config."""
    config: BasketballConfig = self.builder_config
    path = os.fspath(path)
    if not os.path.isfile(path):
      raise FileNotFoundError(
          f"BasketballConfig.{path_field}: no such file {path!r} (expected a .npy / .npz "
          f"of trajectories (N, {config.num_frames}, {basketball.TRAJECTORY_DIM}) in feet).")
    trajectories = _cached_trajectories(os.path.abspath(path))
    if trajectories.shape[1] != config.num_frames:
      raise ValueError(
          f"BasketballConfig.{path_field}={path!r} has {trajectories.shape[1]} frames per "
          f"sequence but num_frames={config.num_frames}; set num_frames to match.")
    if num_sequences is not None and num_sequences != trajectories.shape[0]:
      raise ValueError(
          f"BasketballConfig.{path_field}={path!r} has {trajectories.shape[0]} sequences "
          f"but {count_field}={num_sequences}; set {count_field}=None to use all of them.")
    return trajectories

  def _generate_examples(self, num_sequences: Optional[int], first_index: int,
                         trajectories_path, path_field: str, count_field: str, split: str):
    """(sequence_index, example) pairs, GENERATION_CHUNK_SIZE sequences per chunk: an iterator
    (chunks made by `num_workers` processes, which also encode the frames), or a Beam PTransform
    when generating on Beam."""
    config: BasketballConfig = self.builder_config
    if trajectories_path is not None:
      imported = self._load_imported(trajectories_path, path_field, count_field, num_sequences)
      num_sequences = imported.shape[0]
      trajectories_path = os.path.abspath(os.fspath(trajectories_path))
    make_chunk = functools.partial(
        _make_chunk, num_frames=config.num_frames, image_size=config.image_size,
        seed=config.seed, first_index=first_index, trajectories_path=trajectories_path)
    return beam.generate_examples(num_sequences, GENERATION_CHUNK_SIZE, make_chunk,
                                  use_beam=getattr(self, "_use_beam", False),
                                  label=f"{self.name} {split}", num_workers=self.num_workers,
                                  encoders={"image": self.info.features["image"]})


def _cached_trajectories(path: str) -> np.ndarray:
  """Real trajectories float32 [N, T, 22], read once per process (also on each Beam worker) and
  again only if the file changed."""
  stat = os.stat(path) if os.path.isfile(path) else None
  return _load_trajectories_once(path, stat and (stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=2)
def _load_trajectories_once(path: str, version) -> np.ndarray:
  del version  # Part of the cache key only.
  return basketball.load_trajectories(path)


def _make_chunk(chunk_start: int, chunk_size: int, *, num_frames: int, image_size: int,
                seed: int, first_index: int,
                trajectories_path: Optional[str]) -> Iterator[tuple[int, dict]]:
  """The examples of sequences chunk_start .. chunk_start + chunk_size - 1 of a split: simulated
  from (seed, first_index + i) alone, or rows of the trajectories file; rendered together."""
  if trajectories_path is None:
    trajectories = basketball_plays.simulate_plays(
        chunk_size, num_frames=num_frames, seed=seed, first_index=first_index + chunk_start)
  else:
    trajectories = _cached_trajectories(trajectories_path)[chunk_start:chunk_start + chunk_size]
  trajectories = np.asarray(trajectories, dtype=np.float32)
  frames = basketball.render_frames(trajectories, image_size=image_size)
  positions = basketball.object_positions(trajectories, image_size=image_size)
  for offset in range(chunk_size):
    sequence_index = chunk_start + offset
    yield sequence_index, {
        "image": frames[offset],
        "true_object_pos": positions[offset].astype(np.float32),
        "trajectories_feet": trajectories[offset],
        "sequence_index": sequence_index,
    }


def main(argv=None):
  """Generates one Basketball config, on this machine or on Apache Beam (docs/scaling.md):

    python -m datasets.basketball --config paper --data_dir data [--num_workers 2]
    python -m datasets.basketball --config paper --data_dir data \\
        --beam_pipeline_options \\
        "runner=DirectRunner,direct_num_workers=2,direct_running_mode=multi_processing"
  """
  return beam.generation_main(Builder, argv, description=main.__doc__)
