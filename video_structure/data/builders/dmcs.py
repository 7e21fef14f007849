"""TFDS builder for the DeepMind Control Suite dataset (Minderer et al. 2019, Sec. 4.4, S2.3).

Each example is one sequence of one of six dense-reward DMCS tasks (acrobot swingup,
cartpole balance, cheetah run, reacher easy, walker stand, walker walk) driven by uniform
random actions: 64x64 frames from the task's default camera, the actions and the rewards.
Generated offline with dm_control (`dmcs_generator.DmcsGenerator`; the `dmcs` module documents
the time alignment, action repeats and seeding); nothing is ever downloaded.

Features of one example (T = sequence_length, S = image_size):
  image:          uint8   [T, S, S, 3]  frames (zlib-compressed tensor on disk).
  action:         float32 [T, 6]        action[t] is applied after frame[t] and produced
                                        frame[t + 1]; columns beyond the task's action size
                                        (dmcs.ACTION_DIMS: 1, 1, 6, 2, 6, 6) are zero.
  reward:         float32 [T]           reward[t] is received for action[t] (sum over the
                                        action_repeat control steps; in [0, action_repeat]).
  task:           string                e.g. "walker_walk".
  task_label:     int64 (ClassLabel)    index of the task in dmcs.TASKS (all six, whatever
                                        subset a config generates).
  sequence_index: int64 []              index of the example within its split.
  warmup_steps:   int64 []              unrecorded random agent steps before frame[0].

Example k of a split is task tasks[k % len(tasks)] with per-task index k // len(tasks), so
every prefix of a split is balanced over the tasks. A sequence depends only on (seed, task,
per-task index) and the settings, never on generation order.

Chunks of GENERATION_CHUNK_SIZE sequences are made by `Builder(num_workers=...)` worker
processes (default: every core; `parallel_generation`) or on Beam (docs/scaling.md); the data do
not depend on either. Each process (each thread) that makes chunks renders them in one rendering
process of its own (its own EGL context and one environment and renderer per task), started at
its first chunk and kept for the next ones: starting it and building the six tasks costs 2-4 s,
about as much as rendering a chunk. `main` is the command line behind `python -m datasets.dmcs`.

Versions: 1.1.0 renders with `render_detail="fast"` (dmcs.RENDER_DETAILS: coarser meshes, a
smaller shadow map and, for cartpole and acrobot, a coarser floor grid; generation 2.4-3.9x
faster, frames 0.2-0.5 grey levels apart from 1.0.0's on average); `DmcsConfig(render_detail=
"fine")` gives exactly the frames of 1.0.0. Actions, rewards and warm-up lengths are the same in
both (docs/scaling.md, "DMCS generation").
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import threading
from typing import Dict, Iterator, Optional, Tuple

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import gcs_utils

# Imported before anything that imports dm_control: it sets the MUJOCO_GL=egl default.
from video_structure.data import dmcs
from video_structure.data import beam  # pylint: disable=wrong-import-order
from video_structure.data import dmcs_generator  # pylint: disable=wrong-import-order
from video_structure.data import parallel_generation  # pylint: disable=wrong-import-order

# This machine (and users' machines) may be offline: never look for a prebuilt copy
# of the dataset on GCS. (TFDS 4.9 already defaults to this; keep it explicit.)
gcs_utils._is_gcs_disabled = True  # pylint: disable=protected-access

# Test sequences use per-task indices starting here, so that train (indices
# [0, num_train_per_task)) and test never share a sequence for any seed.
TEST_FIRST_INDEX = 1_000_000_000

# Sequences per generation chunk (one rendering subprocess per chunk); the unit of work of a
# worker process or a Beam worker.
GENERATION_CHUNK_SIZE = 24


def _is_int(value) -> bool:
  return not isinstance(value, bool) and isinstance(value, (int, np.integer))


@dataclasses.dataclass(eq=False)
class DmcsConfig(tfds.core.BuilderConfig):
  """Settings of one version of the DMCS data.

  Attributes:
    tasks: tasks to generate (a subset of dmcs.TASKS, no repeats), interleaved in this order.
    num_train_per_task: training sequences per task.
    num_test_per_task: test sequences per task.
    sequence_length: frames per sequence (T), >= dmcs.MIN_NUM_FRAMES.
    image_size: frame height and width (S).
    seed: dataset seed; sequence i of a task depends only on (seed, task, i).
    action_repeat: control steps per frame for every task; None = dmcs.DEFAULT_ACTION_REPEAT.
    max_warmup_steps: each sequence starts after a number of random agent steps drawn
      uniformly from [0, max_warmup_steps] (not recorded).
    shadows: draw shadows (the default DMCS look); False renders faster.
    render_detail: a key of dmcs.RENDER_DETAILS: "fast" (version 1.1.0's default) or "fine"
      (version 1.0.0's frames).
  """

  tasks: Tuple[str, ...] = dmcs.TASKS
  num_train_per_task: int = 0
  num_test_per_task: int = 0
  sequence_length: int = 20
  image_size: int = dmcs.IMAGE_SIZE
  seed: int = 0
  action_repeat: Optional[int] = None
  max_warmup_steps: int = 0
  shadows: bool = True
  render_detail: str = dmcs.DEFAULT_RENDER_DETAIL

  def settings(self) -> dict:
    """The settings that determine the generated data (stored in the dataset metadata)."""
    return {
        "tasks": list(self.tasks),
        "num_train_per_task": self.num_train_per_task,
        "num_test_per_task": self.num_test_per_task,
        "sequence_length": self.sequence_length,
        "image_size": self.image_size,
        "seed": self.seed,
        "action_repeat": self.action_repeat,
        "max_warmup_steps": self.max_warmup_steps,
        "shadows": self.shadows,
        "render_detail": self.render_detail,
    }

  def validate(self) -> None:
    """Raises ValueError naming the first bad setting and what was expected."""
    prefix = f"DmcsConfig {self.name!r}"
    if isinstance(self.tasks, str) or not self.tasks:
      raise ValueError(f"{prefix}: tasks must be a non-empty tuple of task names "
                       f"from {dmcs.TASKS}, got {self.tasks!r}.")
    for task in self.tasks:
      if task not in dmcs.TASKS:
        raise ValueError(f"{prefix}: tasks contains unknown task {task!r}; expected names "
                         f"from {', '.join(dmcs.TASKS)}.")
    if len(set(self.tasks)) != len(self.tasks):
      raise ValueError(f"{prefix}: tasks must not repeat a task, got {self.tasks!r}.")
    minimums = {"num_train_per_task": 1, "num_test_per_task": 1,
                "sequence_length": dmcs.MIN_NUM_FRAMES, "image_size": 8, "seed": 0,
                "max_warmup_steps": 0}
    for field, minimum in minimums.items():
      value = getattr(self, field)
      if not _is_int(value) or value < minimum:
        raise ValueError(f"{prefix}: {field} must be an integer >= {minimum}, got {value!r}.")
    if self.action_repeat is not None and (not _is_int(self.action_repeat)
                                           or self.action_repeat < 1):
      raise ValueError(f"{prefix}: action_repeat must be None (per-task defaults) or an "
                       f"integer >= 1, got {self.action_repeat!r}.")
    if self.num_train_per_task > TEST_FIRST_INDEX:
      raise ValueError(f"{prefix}: num_train_per_task={self.num_train_per_task} exceeds "
                       f"{TEST_FIRST_INDEX}, where the test sequence indices start.")
    if not isinstance(self.shadows, bool):
      raise ValueError(f"{prefix}: shadows must be True or False, got {self.shadows!r}.")
    dmcs.check_render_detail(self.render_detail, prefix)


PREDEFINED_CONFIGS = (
    DmcsConfig(
        name="cpu",
        description=("CPU-sized default: 40 train / 20 test sequences of 20 frames per task "
                     "(7,200 frames; 28 s to generate here on one core shared with a training "
                     "run, 12 MB)."),
        num_train_per_task=40, num_test_per_task=20, sequence_length=20,
        max_warmup_steps=100),
    DmcsConfig(
        name="cpu_reward",
        description=("Reward-prediction data for models trained on `cpu` (S2.3): 250 test "
                     "sequences of 20 frames per task (1 train sequence per task, unused), "
                     "rendered with `cpu`'s settings and seed, so its test split begins with "
                     "`cpu`'s (30,120 frames; about 2 minutes to generate here on one core "
                     "shared with other jobs, 49 MB)."),
        num_train_per_task=1, num_test_per_task=250, sequence_length=20,
        max_warmup_steps=100),
    DmcsConfig(
        name="paper",
        description=("Paper-sized: 10,000 test sequences of 20 frames per task, as used for "
                     "reward prediction (S2.3); 10,000 train sequences per task (the paper "
                     "gives no training-set size)."),
        num_train_per_task=10000, num_test_per_task=10000, sequence_length=20,
        max_warmup_steps=100),
    DmcsConfig(
        name="tiny",
        description="For tests: 1 train / 1 test sequence of 4 frames per task.",
        num_train_per_task=1, num_test_per_task=1, sequence_length=4, max_warmup_steps=3),
)


class Builder(parallel_generation.GenerationWorkersMixin, tfds.core.GeneratorBasedBuilder):
  """DMCS: random-action videos of six control tasks with actions and rewards.

  `Builder(data_dir=..., config=..., num_workers=None)`: num_workers worker processes make the
  examples without Beam, each chunk rendered by its own rendering process (None: every core;
  1: one chunk at a time).
  """

  # Explicit: TFDS would otherwise name a class called `Builder` after its package.
  name = "dmcs"
  # The common sequence format (`sources`): what `tfds_builders.load_split` reads.
  SEQUENCE_FEATURES = {"image": "image", "actions": "action", "reward": "reward",
                       "label": "task_label"}
  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release.",
      "1.1.0": ("Frames rendered 3-4x faster (DmcsConfig.render_detail='fast'): built-in "
                "meshes of 12 slices x 6 stacks instead of MuJoCo's 28 x 16, a 256^2 shadow "
                "map instead of 512^2, and 0.4 m floor grid cells instead of 0.2 m for "
                "cartpole and acrobot. Frames 0.2-0.5 grey levels apart from 1.0.0's on "
                "average (the cpu config: 0.35), at most 127 at a few body outlines (0.6% of "
                "pixels differ by more than 16); actions, rewards and warm-up lengths "
                "unchanged. render_detail='fine' gives 1.0.0's frames exactly. The config's "
                "settings in the metadata gain render_detail. One rendering process per "
                "generation process instead of one per chunk."),
  }
  BUILDER_CONFIGS = list(PREDEFINED_CONFIGS)
  DEFAULT_CONFIG_NAME = "cpu"

  def _info(self) -> tfds.core.DatasetInfo:
    config: DmcsConfig = self.builder_config
    num_frames, size = config.sequence_length, config.image_size
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            # A zlib Tensor (stored as tfds.features.Tensor) that the workers may encode.
            "image": parallel_generation.PreEncodableTensor(
                shape=(num_frames, size, size, 3), dtype=np.uint8,
                encoding=tfds.features.Encoding.ZLIB),
            "action": tfds.features.Tensor(
                shape=(num_frames, dmcs.MAX_ACTION_DIM), dtype=np.float32),
            "reward": tfds.features.Tensor(shape=(num_frames,), dtype=np.float32),
            "task": tfds.features.Text(),
            "task_label": tfds.features.ClassLabel(names=list(dmcs.TASKS)),
            "sequence_index": tfds.features.Scalar(dtype=np.int64),
            "warmup_steps": tfds.features.Scalar(dtype=np.int64),
        }),
        supervised_keys=None,
        # Store examples in sequence_index order (TFDS would otherwise permute them by
        # key hash); readers shuffle for training themselves.
        disable_shuffling=True,
        homepage="https://arxiv.org/abs/1906.07889",
        metadata=tfds.core.MetadataDict(config=config.settings()),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing is downloaded.
    config: DmcsConfig = self.builder_config
    config.validate()
    return {
        "train": self._generate_examples(num_per_task=config.num_train_per_task,
                                         first_index=0, split="train"),
        "test": self._generate_examples(num_per_task=config.num_test_per_task,
                                        first_index=TEST_FIRST_INDEX, split="test"),
    }

  def _download_and_prepare(self, dl_manager, download_config=None):
    # Beam when the download config names a runner or options (docs/scaling.md); each Beam
    # worker renders its chunks in its own rendering subprocess.
    self._use_beam = bool(download_config is not None and (
        download_config.beam_runner is not None or download_config.beam_options is not None))
    try:
      return super()._download_and_prepare(dl_manager, download_config)
    finally:
      # Chunks made in this process (num_workers=1, a single chunk, an in-process Beam
      # runner) leave no idle rendering process behind.
      close_shared_generators()

  def _generate_examples(self, num_per_task: int, first_index: int, split: str):
    """(sequence_index, example) for num_per_task * len(tasks) sequences, GENERATION_CHUNK_SIZE
    per chunk: an iterator (chunks made by `num_workers` processes, which also encode the
    frames), or a Beam PTransform when generating on Beam. Every sequence depends only on
    (seed, task, index), so every path gives the same examples."""
    config: DmcsConfig = self.builder_config
    make_chunk = functools.partial(
        _make_chunk, tasks=tuple(config.tasks), first_index=first_index,
        image_size=config.image_size, shadows=config.shadows,
        render_detail=config.render_detail, seed=config.seed,
        sequence_length=config.sequence_length, action_repeat=config.action_repeat,
        max_warmup_steps=config.max_warmup_steps)
    return beam.generate_examples(num_per_task * len(config.tasks), GENERATION_CHUNK_SIZE,
                                  make_chunk, use_beam=getattr(self, "_use_beam", False),
                                  label=f"{self.name} {split}", num_workers=self.num_workers,
                                  encoders={"image": self.info.features["image"]})


# This process's rendering processes, one per thread and rendering settings (a generator talks
# to its rendering process through one pipe: not thread-safe), kept across chunks.
_SHARED_GENERATORS: Dict[tuple, dmcs_generator.DmcsGenerator] = {}


def shared_generator(image_size: int, shadows: bool,
                     render_detail: str) -> dmcs_generator.DmcsGenerator:
  """This thread's generator for these settings, started at the first call and kept until
  `close_shared_generators` (or the end of the process): its rendering process keeps the
  environment and renderer of every task it has rendered (~0.5 s each to build)."""
  key = (threading.get_ident(), image_size, shadows, render_detail)
  if key not in _SHARED_GENERATORS:
    _SHARED_GENERATORS[key] = dmcs_generator.DmcsGenerator(
        image_size=image_size, shadows=shadows, render_detail=render_detail)
  return _SHARED_GENERATORS[key]


def close_shared_generators(this_thread_only: bool = False) -> None:
  """Stops this process's rendering processes (`shared_generator`), or this thread's."""
  for key in list(_SHARED_GENERATORS):
    if not this_thread_only or key[0] == threading.get_ident():
      _SHARED_GENERATORS.pop(key).close()


atexit.register(close_shared_generators)


def _make_chunk(chunk_start: int, chunk_size: int, *, tasks, first_index: int, image_size: int,
                shadows: bool, render_detail: str, seed: int, sequence_length: int,
                action_repeat, max_warmup_steps: int) -> Iterator[tuple[int, dict]]:
  """The examples of sequences chunk_start .. chunk_start + chunk_size - 1 of a split
  (sequence k is task tasks[k % len(tasks)], its (k // len(tasks))-th sequence), rendered by
  this thread's shared generator."""
  generator = shared_generator(image_size, shadows, render_detail)
  for sequence_index in range(chunk_start, chunk_start + chunk_size):
    task = tasks[sequence_index % len(tasks)]
    try:
      sequence = generator.generate(
          task, index=first_index + sequence_index // len(tasks), seed=seed,
          num_frames=sequence_length, action_repeat=action_repeat,
          max_warmup_steps=max_warmup_steps)
    except Exception:
      # E.g. the rendering process died: a retried or later chunk starts a new one.
      close_shared_generators(this_thread_only=True)
      raise
    yield sequence_index, example_from_sequence(sequence, sequence_index)


def example_from_sequence(sequence: dict, sequence_index: int) -> dict:
  """A TFDS example from a `DmcsGenerator.generate` output (actions zero-padded to 6)."""
  actions = sequence["action"]
  padded = np.zeros((actions.shape[0], dmcs.MAX_ACTION_DIM), np.float32)
  padded[:, :actions.shape[1]] = actions
  return {
      "image": sequence["image"],
      "action": padded,
      "reward": sequence["reward"],
      "task": sequence["task"],
      "task_label": sequence["task_label"],
      "sequence_index": sequence_index,
      "warmup_steps": sequence["warmup_steps"],
  }


def main(argv=None):
  """Generates one DMCS config (rendered headless with MUJOCO_GL=egl; docs/scaling.md):

    python -m datasets.dmcs --config cpu --data_dir data [--num_workers 2]
  """
  return beam.generation_main(Builder, argv, description=main.__doc__)
