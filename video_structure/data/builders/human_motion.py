"""TFDS builder for human-motion videos (the paper's Human3.6M experiments).

Configs:
  tiny / cpu / paper   generated offline by `human_motion_render.generate` (articulated
                       figures performing 8 actions; 17 joints; 6.25 Hz). Nothing downloaded.
  h36m                 imports a user's licensed Human3.6M copy from the manual folder
                       (`human36m`: videos + 2D poses; subjects S1, S5, S6, S7, S8 train, S9,
                       S11 test; subsampled 50 -> 6.25 Hz; cropped around the person and
                       resized to 64x64). See docs/human36m.md for the download and layout.

Features of one example (T = frames, S = image_size, J = 17):
  image:            uint8   [T, S, S, 3]  zlib-compressed tensor on disk (as Basketball).
  true_object_pos:  float32 [T, 17, 2]    joint (x, y) in [-1, 1] (x right, y up), in
                                          `human_motion.JOINT_NAMES` order.
  action:           ClassLabel            `human_motion.ACTION_NAMES` (generated) or
                                          `human36m.H36M_ACTIONS` (h36m).
  sequence_index:   int64   []            index of the sequence within its split.
  video_name:       string                "generated/<split>/<index>" or "S9/Walking 1.54138969".
h36m only (T varies per video there):
  all_joints_pos:   float32 [T, 32, 2]    all 32 Human3.6M points, same coordinates.
  subject, camera:  string                e.g. "S9", "54138969".

`tfds_builders.prepare` builds the data if missing; `tfds_builders.load_split` reads a split
(by default image, true_object_pos and the action as `label`). The generated configs are made in
chunks of GENERATION_CHUNK_SIZE sequences by `Builder(num_workers=...)` worker processes
(default: every core; `parallel_generation`), or on Beam (docs/scaling.md); the data do not
depend on either. `main` is the command line behind `python -m datasets.human_motion`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Iterator, Optional

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import gcs_utils

from video_structure.data import beam
from video_structure.data import human36m
from video_structure.data import human_motion
from video_structure.data import human_motion_render
from video_structure.data import parallel_generation

# Offline: never look for a prebuilt copy of the dataset on GCS.
gcs_utils._is_gcs_disabled = True  # pylint: disable=protected-access

# Sequences generated per call (vectorised rendering amortises Python overhead).
GENERATION_CHUNK_SIZE = 32
# Test sequences use indices from here on, so train and test never share a sequence.
TEST_FIRST_INDEX = 1_000_000_000

GENERATED, H36M = "generated", "h36m"


@dataclasses.dataclass(eq=False)
class HumanMotionConfig(tfds.core.BuilderConfig):
  """Settings of one version of the human-motion data.

  Attributes:
    source: "generated" (offline stand-in) or "h36m" (a user's Human3.6M copy).
    num_train, num_test: generated sequences per split (generated only).
    num_frames: frames per generated sequence (6.25 Hz); h36m keeps whole videos.
    image_size: S.
    seed: generator seed; sequence i of a split depends only on (seed, i).
    frame_step: h36m: keep every frame_step-th frame (8: 50 Hz -> 6.25 Hz).
    crop_mode: h36m: "video" (one box per video, the camera stays still) or "frame".
    crop_margin: h36m: space around the person's joint bounding box (fraction of the box).
    train_subjects, test_subjects: h36m subjects per split.
    max_frame_mismatch: h36m: tolerated video / pose length difference (50 Hz frames).
  """

  source: str = GENERATED
  num_train: Optional[int] = None
  num_test: Optional[int] = None
  num_frames: Optional[int] = 50
  image_size: int = 64
  seed: int = 0
  frame_step: int = human36m.H36M_FRAME_STEP
  crop_mode: str = "video"
  crop_margin: float = 0.1
  train_subjects: tuple = human36m.H36M_TRAIN_SUBJECTS
  test_subjects: tuple = human36m.H36M_TEST_SUBJECTS
  max_frame_mismatch: int = 50

  def settings(self) -> dict:
    """The settings that determine the data (stored in the dataset metadata)."""
    common = {"source": self.source, "image_size": self.image_size}
    if self.source == GENERATED:
      return dict(common, num_train=self.num_train, num_test=self.num_test,
                  num_frames=self.num_frames, seed=self.seed)
    return dict(common, frame_step=self.frame_step, crop_mode=self.crop_mode,
                crop_margin=self.crop_margin, train_subjects=list(self.train_subjects),
                test_subjects=list(self.test_subjects),
                max_frame_mismatch=self.max_frame_mismatch)

  @property
  def needs_manual_dir(self) -> bool:
    """Whether building needs the user's Human3.6M copy (`tfds_builders.prepare(manual_dir)`)."""
    return self.source == H36M

  def validate(self) -> None:
    """Raises ValueError naming the first bad setting."""
    def positive_int(field, minimum=1):
      value = getattr(self, field)
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"HumanMotionConfig {self.name!r}: {field} must be an int >= "
                         f"{minimum}, got {value!r}.")

    if self.source not in (GENERATED, H36M):
      raise ValueError(f"HumanMotionConfig {self.name!r}: source must be {GENERATED!r} or "
                       f"{H36M!r}, got {self.source!r}.")
    positive_int("image_size", 16)
    if self.source == GENERATED:
      for field in ("num_train", "num_test", "num_frames"):
        positive_int(field)
      positive_int("seed", 0)
      if self.num_train > TEST_FIRST_INDEX:
        raise ValueError(f"HumanMotionConfig {self.name!r}: num_train={self.num_train} "
                         f"exceeds {TEST_FIRST_INDEX}, where test indices start.")
    else:
      positive_int("frame_step")
      positive_int("max_frame_mismatch", 0)
      if self.crop_mode not in ("video", "frame"):
        raise ValueError(f"HumanMotionConfig {self.name!r}: crop_mode must be 'video' or "
                         f"'frame', got {self.crop_mode!r}.")
      if not 0.0 <= self.crop_margin <= 1.0:
        raise ValueError(f"HumanMotionConfig {self.name!r}: crop_margin must be in [0, 1], "
                         f"got {self.crop_margin!r}.")
      if not self.train_subjects or not self.test_subjects:
        raise ValueError(f"HumanMotionConfig {self.name!r}: train_subjects and "
                         f"test_subjects must not be empty.")
      overlap = set(self.train_subjects) & set(self.test_subjects)
      if overlap:
        raise ValueError(f"HumanMotionConfig {self.name!r}: subjects {sorted(overlap)} are in "
                         f"both train_subjects and test_subjects.")


PREDEFINED_CONFIGS = (
    HumanMotionConfig(
        name="cpu",
        description="CPU-sized default: 1,200 train / 240 test generated sequences of 50 "
                    "frames (8 actions, 17 joints, 6.25 Hz).",
        num_train=1200, num_test=240, num_frames=50),
    HumanMotionConfig(
        name="paper",
        description="Human3.6M-sized stand-in: 600 train / 239 test generated videos of 384 "
                    "frames (about 61 s at 6.25 Hz, like Human3.6M's videos).",
        num_train=600, num_test=239, num_frames=384),
    HumanMotionConfig(
        name="tiny",
        description="For tests: 16 train / 8 test generated sequences of 20 frames.",
        num_train=16, num_test=8, num_frames=20),
    HumanMotionConfig(
        name="h36m",
        description="A user's licensed Human3.6M copy (manual_dir): S1, S5-S8 train, S9, S11 "
                    "test, 6.25 Hz, cropped around the person to 64x64.",
        source=H36M, num_frames=None),
)


class Builder(parallel_generation.GenerationWorkersMixin, tfds.core.GeneratorBasedBuilder):
  """Human motion: videos of people performing actions, with 2D joints and action labels.

  `Builder(data_dir=..., config=..., num_workers=None)`: num_workers worker processes make the
  generated configs' examples without Beam (None: every core; 1: in this process).
  """

  # Explicit: TFDS would otherwise name a class called `Builder` after its package.
  name = "human_motion"
  # The common sequence format (`sources`): what `tfds_builders.load_split` reads.
  SEQUENCE_FEATURES = {"image": "image", "true_object_pos": "true_object_pos",
                       "label": "action"}
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = list(PREDEFINED_CONFIGS)
  DEFAULT_CONFIG_NAME = "cpu"
  MANUAL_DOWNLOAD_INSTRUCTIONS = human36m.MANUAL_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    config: HumanMotionConfig = self.builder_config
    size = config.image_size
    num_frames = config.num_frames if config.source == GENERATED else None
    features = {
        # A zlib Tensor (stored as tfds.features.Tensor) that the workers may encode.
        "image": parallel_generation.PreEncodableTensor(
            shape=(num_frames, size, size, 3), dtype=np.uint8,
            encoding=tfds.features.Encoding.ZLIB),
        "true_object_pos": tfds.features.Tensor(
            shape=(num_frames, human_motion.NUM_JOINTS, 2), dtype=np.float32),
        "action": tfds.features.ClassLabel(
            names=list(human_motion.ACTION_NAMES if config.source == GENERATED
                       else human36m.H36M_ACTIONS)),
        "sequence_index": tfds.features.Scalar(dtype=np.int64),
        "video_name": tfds.features.Text(),
    }
    if config.source == H36M:
      features["all_joints_pos"] = tfds.features.Tensor(
          shape=(None, human36m.H36M_NUM_POINTS, 2), dtype=np.float32)
      features["subject"] = tfds.features.Text()
      features["camera"] = tfds.features.Text()
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(features),
        supervised_keys=None,
        disable_shuffling=True,  # Keep sequence_index order; readers shuffle themselves.
        homepage="https://arxiv.org/abs/1906.07889",
        metadata=tfds.core.MetadataDict(config=config.settings()),
    )

  def _split_generators(self, dl_manager):
    config: HumanMotionConfig = self.builder_config
    config.validate()
    if config.source == GENERATED:
      return {
          "train": self._generate_examples(config.num_train, 0, "train"),
          "test": self._generate_examples(config.num_test, TEST_FIRST_INDEX, "test"),
      }
    try:
      root = os.fspath(dl_manager.manual_dir)
    except (AssertionError, ValueError) as error:
      raise FileNotFoundError(
          f"Human3.6M config {config.name!r} needs the folder of your Human3.6M copy: pass "
          f"manual_dir (tfds_builders.prepare(..., manual_dir=...)). TFDS said: "
          f"{error}") from error
    videos = {split: human36m.find_h36m_videos(root, subjects)
              for split, subjects in (("train", config.train_subjects),
                                      ("test", config.test_subjects))}
    return {split: self._import_examples(entries) for split, entries in videos.items()}

  def _download_and_prepare(self, dl_manager, download_config=None):
    # Beam when the download config names a runner or options (docs/scaling.md).
    self._use_beam = bool(download_config is not None and (
        download_config.beam_runner is not None or download_config.beam_options is not None))
    return super()._download_and_prepare(dl_manager, download_config)

  def _generate_examples(self, num_sequences: int, first_index: int, split: str):
    """(sequence_index, example) pairs, GENERATION_CHUNK_SIZE per chunk: an iterator (chunks made
    by `num_workers` processes, which also encode the frames), or a Beam PTransform when
    generating on Beam (each sequence depends only on (seed, index))."""
    config: HumanMotionConfig = self.builder_config
    make_chunk = functools.partial(_make_generated_chunk, num_frames=config.num_frames,
                                   image_size=config.image_size, seed=config.seed,
                                   first_index=first_index, split=split)
    return beam.generate_examples(num_sequences, GENERATION_CHUNK_SIZE, make_chunk,
                                  use_beam=getattr(self, "_use_beam", False),
                                  label=f"{self.name} {split}", num_workers=self.num_workers,
                                  encoders={"image": self.info.features["image"]})

  def _import_examples(self, entries: list[dict]) -> Iterator[tuple[str, dict]]:
    config: HumanMotionConfig = self.builder_config
    for index, entry in enumerate(entries):
      imported = human36m.import_h36m_video(
          entry["video_path"], entry["pose_path"], image_size=config.image_size,
          frame_step=config.frame_step, crop_margin=config.crop_margin,
          crop_mode=config.crop_mode, max_frame_mismatch=config.max_frame_mismatch)
      name = f"{entry['subject']}/{entry['stem']}"
      yield name, {
          "image": imported["image"],
          "true_object_pos": imported["true_object_pos"],
          "all_joints_pos": imported["all_joints_pos"],
          "action": entry["action"],
          "sequence_index": index,
          "video_name": name,
          "subject": entry["subject"],
          "camera": entry["camera"],
      }


def _make_generated_chunk(chunk_start: int, chunk_size: int, *, num_frames: int, image_size: int,
                          seed: int, first_index: int, split: str) -> Iterator[tuple[int, dict]]:
  """The examples of generated sequences chunk_start .. chunk_start + chunk_size - 1."""
  batch = human_motion_render.generate(chunk_size, num_frames, seed=seed,
                                first_index=first_index + chunk_start, image_size=image_size)
  for offset in range(chunk_size):
    index = chunk_start + offset
    yield index, {
        "image": batch["image"][offset],
        "true_object_pos": batch["true_object_pos"][offset],
        "action": int(batch["action"][offset]),
        "sequence_index": index,
        "video_name": f"generated/{split}/{index:08d}",
    }


def main(argv=None):
  """Generates one human-motion config (docs/human36m.md; docs/scaling.md for Beam):

    python -m datasets.human_motion --config paper --data_dir data [--num_workers 2]
    python -m datasets.human_motion --config h36m --data_dir data --manual_dir /path/to/H36M
  """
  return beam.generation_main(Builder, argv, description=main.__doc__)
