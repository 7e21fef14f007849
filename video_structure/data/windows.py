"""Input pipeline: per-sequence videos -> batches of fixed-length training/eval windows.

A *sequence dataset* yields dicts
  {"image": uint8 [T, H, W, 3], "true_object_pos": float32 [T, N, 2] (optional)}
one per video (from a TFDS builder via `tfds_builders.load_split`, from any dataset via
`sources.prepare`, or from arrays in memory via `dataset_from_arrays`); `EncodedSequences` is
the same still encoded (decoded only after the training shuffle). `make_windows_dataset` turns
either into batches
  {"image": float32 [B, L, H, W, 3] in [-0.5, 0.5], "true_object_pos": float32 [B, L, N, 2]}.
Positions use the project convention: (x, y) in [-1, 1], x to the right, y up.

The training stream is a function of (seed, step): `make_windows_dataset(..., seed=s,
first_step=k)` yields exactly batches k, k+1, ... of the stream of seed s, whatever TensorFlow's
global seed is, so that a resumed run trains on the batches an uninterrupted run would.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, Optional, Tuple, Union

import numpy as np
import tensorflow as tf
# The eager context holds TensorFlow's global seed (see `_global_seed`).
from tensorflow.python.eager import context as tf_context  # pylint: disable=no-name-in-module

from video_structure.model import ops

# Windows kept in the training shuffle buffer. A 16-frame 64x64 window is 196 kB of
# uint8, so the default costs ~100 MB of RAM.
DEFAULT_SHUFFLE_BUFFER = 512

# How a multi-worker run (tf.distribute) splits the windows between workers:
#   "data": every worker runs the whole (seeded, deterministic) pipeline and keeps its own slice
#     of each global batch (tf.data auto-shard policy DATA): the global batches are exactly those
#     of one device; each worker decodes all sequences (cheap for Basketball).
#   "sequences": worker i reads only sequences i, i + W, i + 2W, ... (explicit shard, auto-shard
#     OFF) and draws its windows from them: less decoding per worker, other batches than one
#     device.
# Either way the workers' windows are disjoint: together they consume one stream of windows
# (one window per sequence per epoch), as one device would.
SHARD_POLICIES = ("data", "sequences")


# ----------------------------------------------------------------------------------------
# Encoded sequences
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EncodedSequences:
  """A sequence dataset read still encoded, decoded only where windows need it.

  `make_windows_dataset` shuffles the encoded sequences and decodes them after the shuffle, so
  that a resumed run skips the windows it has trained on (`first_step`) by reading, not
  decoding, their sequences (the shuffle's permutation does not depend on the elements). The
  windows are exactly those of `decoded()`.

  Attributes:
    encoded: tf.data.Dataset of encoded elements (e.g. a TFDS split read with
      `tfds.decode.SkipDecoding()` for its frames; `sources.load_encoded_split`).
    decode: element of `encoded` -> element of the sequence format (module docstring); a
      deterministic function of the element, traced by `tf.data`.
  """
  encoded: tf.data.Dataset
  decode: Callable[[dict], dict]

  def decoded(self) -> tf.data.Dataset:
    """The sequence dataset: `encoded` decoded, in order."""
    return self.encoded.map(self.decode, num_parallel_calls=tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------------------
# Arrays in memory
# ----------------------------------------------------------------------------------------


def dataset_from_arrays(images, true_object_pos=None, name: str = "arrays") -> tf.data.Dataset:
  """Sequence dataset from arrays in memory.

  Args:
    images: uint8 [N, T, H, W, 3] videos.
    true_object_pos: optional float [N, T, M, 2] object (x, y) positions in [-1, 1].
    name: how errors refer to these arrays.

  Returns:
    tf.data.Dataset of {"image": uint8 [T, H, W, 3]} plus, if given,
    "true_object_pos": float32 [T, M, 2].
  """
  images = np.asarray(images)
  if images.dtype != np.uint8:
    raise ValueError(f"{name}: images must be uint8 [N, T, H, W, 3], got dtype {images.dtype}.")
  if images.ndim != 5 or images.shape[-1] != 3:
    raise ValueError(f"{name}: images must have shape [N, T, H, W, 3], got {images.shape}.")
  if images.shape[0] == 0 or images.shape[1] == 0:
    raise ValueError(f"{name}: images are empty (shape {images.shape}).")
  tensors = {"image": images}
  if true_object_pos is not None:
    true_object_pos = np.asarray(true_object_pos)
    if not np.issubdtype(true_object_pos.dtype, np.floating):
      raise ValueError(
          f"{name}: true_object_pos must be a float array [N, T, M, 2], got dtype "
          f"{true_object_pos.dtype}.")
    if (true_object_pos.ndim != 4 or true_object_pos.shape[-1] != 2
        or true_object_pos.shape[:2] != images.shape[:2]):
      raise ValueError(
          f"{name}: true_object_pos must have shape [N, T, M, 2] = "
          f"[{images.shape[0]}, {images.shape[1]}, M, 2] to match images, got "
          f"{true_object_pos.shape}.")
    tensors["true_object_pos"] = true_object_pos.astype(np.float32)
  return tf.data.Dataset.from_tensor_slices(tensors)


# ----------------------------------------------------------------------------------------
# Windows
# ----------------------------------------------------------------------------------------


def validate_example_spec(dataset: tf.data.Dataset, window_length: int, name: str) -> None:
  """Checks that `dataset` is a non-empty sequence dataset long enough for the windows.

  Raises ValueError naming `name` if the elements are not dicts with "image" uint8
  [T, H, W, 3] (and optional "true_object_pos" float32 [T, N, 2]), if sequences are
  shorter than `window_length` (static shape, else the first element), or if the
  dataset is empty (checked on its first element).
  """
  if not isinstance(window_length, (int, np.integer)) or window_length < 1:
    raise ValueError(f"window_length must be a positive int, got {window_length!r}.")
  spec = dataset.element_spec
  if not isinstance(spec, dict) or "image" not in spec:
    raise ValueError(
        f"Dataset {name!r}: elements must be dicts with an 'image' entry, got {spec}.")
  image_spec = spec["image"]
  if image_spec.dtype != tf.uint8:
    raise ValueError(
        f"Dataset {name!r}: 'image' must be uint8 [T, H, W, 3], got dtype "
        f"{image_spec.dtype.name}.")
  if image_spec.shape.rank != 4 or image_spec.shape[-1] != 3:
    raise ValueError(
        f"Dataset {name!r}: 'image' must have shape [T, H, W, 3], got {image_spec.shape}.")
  if "true_object_pos" in spec:
    pos_spec = spec["true_object_pos"]
    if (pos_spec.dtype != tf.float32 or pos_spec.shape.rank != 3
        or pos_spec.shape[-1] != 2):
      raise ValueError(
          f"Dataset {name!r}: 'true_object_pos' must be float32 [T, N, 2], got "
          f"{pos_spec.dtype.name} {pos_spec.shape}.")
  num_frames = image_spec.shape[0]
  if num_frames is not None and num_frames < window_length:
    raise ValueError(
        f"Dataset {name!r}: sequences have {num_frames} frames, shorter than "
        f"window_length={window_length}.")
  first = next(iter(dataset.take(1)), None)
  if first is None:
    raise ValueError(f"Dataset {name!r} is empty.")
  if first["image"].shape[0] < window_length:
    raise ValueError(
        f"Dataset {name!r}: the first sequence has {first['image'].shape[0]} frames, "
        f"shorter than window_length={window_length}.")


def _to_model_input(batch: dict) -> dict:
  """uint8 frames -> float32 in [-0.5, 0.5]; done once per batch (vectorised)."""
  batch = dict(batch)
  batch["image"] = ops.frames_to_model(batch["image"])
  return batch


# Per-frame features that windows keep (cut at the same offsets as the frames); anything else
# in a sequence (labels, names) is per-sequence and dropped here.
WINDOW_KEYS = ("image", "true_object_pos", "actions", "reward")

# `make_windows_dataset`'s seed: an int, or a (global seed, operation seed) pair.
Seed = Union[int, Tuple[int, int]]


@contextlib.contextmanager
def _global_seed(seed: Optional[int]):
  """TensorFlow's global seed is `seed` inside the block (no change for None).

  A seeded tf.data op takes its seeds from its own seed and the global seed
  (`tf.random.set_seed`), which `training.builder` sets before a fresh run trains but which a run
  resumed from a checkpoint leaves unset; fixing it here makes the windows a function of
  `make_windows_dataset`'s arguments alone. Only the value those ops read is swapped:
  `tf.random.set_seed` would also reset the seeds that later unseeded ops draw.
  """
  if seed is None:
    yield
    return
  eager_context = tf_context.context()
  saved = eager_context._seed  # pylint: disable=protected-access
  eager_context._seed = seed  # pylint: disable=protected-access
  try:
    yield
  finally:
    eager_context._seed = saved  # pylint: disable=protected-access


def _seed_pair(seed: Optional[Seed]) -> Tuple[Optional[int], Optional[int]]:
  """`make_windows_dataset`'s `seed` -> (global seed, operation seed) of its random ops."""
  if seed is None:
    return None, None
  if isinstance(seed, (tuple, list)):
    if len(seed) != 2 or not all(isinstance(s, (int, np.integer)) for s in seed):
      raise ValueError(f"seed must be an int or a pair of ints, got {seed!r}.")
    return int(seed[0]), int(seed[1])
  if not isinstance(seed, (int, np.integer)):
    raise ValueError(f"seed must be an int or a pair of ints, got {seed!r}.")
  return int(seed), int(seed)


def make_windows_dataset(dataset: Union[tf.data.Dataset, EncodedSequences],
                         window_length: int = 16, batch_size: int = 32, training: bool = True,
                         seed: Optional[Seed] = None, cache: Union[bool, str] = False,
                         drop_remainder: bool = True,
                         shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
                         name: str = "dataset", num_workers: int = 1, worker_index: int = 0,
                         shard_policy: str = "data", first_step: int = 0) -> tf.data.Dataset:
  """Batches of fixed-length windows cut from a sequence dataset.

  Args:
    dataset: sequence dataset of {"image": uint8 [T, H, W, 3],
      "true_object_pos": float32 [T, N, 2] (optional), "actions": float32 [T, A] (optional),
      "reward": float32 [T] (optional)}; other (per-sequence) features are dropped. Or the
      same as `EncodedSequences`: the same windows, but a training stream that starts at
      `first_step` skips the earlier windows without decoding their sequences.
    window_length: frames per window (L).
    batch_size: windows per batch (B).
    training: True: repeat forever, one window at a uniformly random offset per
      sequence per epoch (fresh offsets every epoch), shuffled. False: every sequence
      cut into its T // L consecutive non-overlapping windows, in order, once (the
      last T % L frames of each sequence are not used).
    seed: makes the training order and offsets reproducible (None: random). The stream depends
      on the arguments only, not on TensorFlow's global seed: an int s stands for (s, s), a
      pair (g, o) seeds the random ops as the global seed g and the operation seed o would
      (an int s gives the windows that earlier versions gave a run whose global seed was s, as
      `training.builder` sets it to `config.seed` before a fresh run).
    cache: True caches the decoded sequences in RAM (N * T * H * W * 3 bytes), a str
      caches them in that file; False decodes every epoch (cheap for Basketball).
    drop_remainder: drop the last partial batch (gives static batch shapes). With
      training=False and True, the last len % B windows are not seen.
    shuffle_buffer: windows held in the training shuffle buffer (sequences, still encoded,
      for `EncodedSequences`).
    name: how errors refer to `dataset`.
    num_workers, worker_index: the worker processes of a multi-worker run and this one's index
      (`training.strategies.num_workers` / `worker_index`); 1, 0 on one machine.
    shard_policy: how workers split the windows, one of SHARD_POLICIES (see there). `batch_size`
      stays the global batch: tf.distribute gives each replica batch_size / replicas windows.
    first_step: training steps already taken (a resumed run): the stream starts at global
      batch `first_step` of the stream of `seed`, bit for bit. Skipping costs reading (not
      decoding, for `EncodedSequences`) `first_step * batch_size` sequences; with
      shard_policy "sequences", each of W workers has its own stream and skips
      `first_step * batch_size / W` windows of it (its share of each global batch).

  Returns:
    tf.data.Dataset of {"image": float32 [B, L, H, W, 3] in [-0.5, 0.5],
    "true_object_pos": float32 [B, L, N, 2]} (the latter only if the input has it).
  """
  if shard_policy not in SHARD_POLICIES:
    raise ValueError(f"shard_policy must be one of {SHARD_POLICIES}, got {shard_policy!r}.")
  if not isinstance(num_workers, (int, np.integer)) or num_workers < 1:
    raise ValueError(f"num_workers must be a positive int, got {num_workers!r}.")
  if not isinstance(worker_index, (int, np.integer)) or not 0 <= worker_index < num_workers:
    raise ValueError(f"worker_index must be an int in [0, {num_workers}), got {worker_index!r}.")
  if num_workers > 1 and shard_policy == "data" and training and seed is None:
    raise ValueError(
        f"Dataset {name!r}: shard_policy 'data' with {num_workers} workers needs a seed, so "
        f"that every worker draws the same windows and keeps its own slice of them.")
  if not isinstance(first_step, (int, np.integer)) or first_step < 0:
    raise ValueError(f"first_step must be a non-negative int, got {first_step!r}.")
  if first_step and (not training or seed is None):
    raise ValueError(f"Dataset {name!r}: first_step={first_step} needs training=True and a seed "
                     f"(only a seeded training stream can be resumed).")
  global_seed, op_seed = _seed_pair(seed)
  if isinstance(dataset, EncodedSequences):
    encoded, decode = dataset.encoded, dataset.decode
  else:
    encoded, decode = dataset, None
  if num_workers > 1 and shard_policy == "sequences":
    encoded = encoded.shard(num_workers, worker_index)
    name = f"{name} (worker {worker_index} of {num_workers})"
  sequences = encoded if decode is None else EncodedSequences(encoded, decode).decoded()
  validate_example_spec(sequences, window_length, name)
  if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
    raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
  if training and (not isinstance(shuffle_buffer, (int, np.integer)) or shuffle_buffer < 1):
    raise ValueError(f"shuffle_buffer must be a positive int, got {shuffle_buffer!r}.")
  windows_per_step = batch_size
  if num_workers > 1 and shard_policy == "sequences" and first_step:
    # A resumed worker skips its share of each global batch, which must be whole.
    if batch_size % num_workers:
      raise ValueError(f"batch_size ({batch_size}) must be a multiple of num_workers "
                       f"({num_workers}) to resume a run at step {first_step}.")
    windows_per_step = batch_size // num_workers
  window_specs = {
      key: tf.TensorShape([window_length]).concatenate(spec.shape[1:])
      for key, spec in sequences.element_spec.items() if key in WINDOW_KEYS}

  def select(element):
    return {key: element[key] for key in window_specs}

  # Training windows of EncodedSequences are decoded after the shuffle (unless cached decoded).
  decode_late = training and decode is not None and not cache
  if not decode_late:
    sequences = sequences.map(select)
    if cache:
      sequences = sequences.cache(cache if isinstance(cache, str) else "")

  def check_length(num_frames):
    return tf.debugging.assert_greater_equal(
        num_frames, window_length,
        message=f"Dataset {name!r}: a sequence is shorter than window_length={window_length}")

  if training:
    def random_window(random_value, element):
      num_frames = tf.shape(element["image"])[0]
      with tf.control_dependencies([check_length(num_frames)]):
        offset = tf.random.stateless_uniform(
            [], seed=tf.stack([random_value, tf.constant(0, tf.int64)]),
            minval=0, maxval=num_frames - window_length + 1, dtype=tf.int32)
      return {key: tf.ensure_shape(value[offset:offset + window_length], window_specs[key])
              for key, value in element.items()}

    # The random stream is zipped after repeat(), so every epoch draws new offsets.
    with _global_seed(global_seed):
      random_values = tf.data.Dataset.random(seed=op_seed)
    if decode_late:
      windows = tf.data.Dataset.zip((random_values, encoded.repeat()))
    else:
      windows = tf.data.Dataset.zip((random_values, sequences.repeat()))
      # Cut before the shuffle: the buffer holds windows, not whole sequences.
      windows = windows.map(random_window, num_parallel_calls=tf.data.AUTOTUNE)
    # The same order on every iteration of this dataset object: under a tf.distribute strategy
    # Keras 3 takes a first batch from a throwaway iterator before training, and the training
    # iterator must start the same stream as on one device (the stream is infinite anyway).
    # The permutation does not depend on the elements, so shuffling (random value, encoded
    # sequence) pairs and cutting the windows afterwards gives the same windows.
    with _global_seed(global_seed):
      windows = windows.shuffle(shuffle_buffer, seed=op_seed, reshuffle_each_iteration=False)
    windows = windows.skip(first_step * windows_per_step)
    if decode_late:
      windows = windows.map(
          lambda random_value, element: random_window(random_value, select(decode(element))),
          num_parallel_calls=tf.data.AUTOTUNE)
  else:
    def consecutive_windows(element):
      num_frames = tf.shape(element["image"])[0]
      with tf.control_dependencies([check_length(num_frames)]):
        num_windows = num_frames // window_length
      split = {}
      for key, value in element.items():
        value = value[:num_windows * window_length]
        split[key] = tf.reshape(
            value, tf.concat([[num_windows, window_length], tf.shape(value)[1:]], axis=0))
        split[key] = tf.ensure_shape(split[key], [None] + window_specs[key].as_list())
      return tf.data.Dataset.from_tensor_slices(split)

    windows = sequences.flat_map(consecutive_windows)

  batches = windows.batch(batch_size, drop_remainder=drop_remainder,
                          num_parallel_calls=tf.data.AUTOTUNE)
  batches = batches.map(_to_model_input, num_parallel_calls=tf.data.AUTOTUNE)
  options = tf.data.Options()
  # Unseeded training needs no reproducible order; let parallel stages run out of order.
  options.deterministic = (not training) or seed is not None
  # tf.distribute's default (AUTO) would shard the TFDS files between workers but not the
  # random offsets zipped onto them; set the policy explicitly (see SHARD_POLICIES).
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.OFF if shard_policy == "sequences"
      else tf.data.experimental.AutoShardPolicy.DATA)
  batches = batches.with_options(options)
  return batches.prefetch(tf.data.AUTOTUNE)
