"""Tests of the windowing input pipeline (`video_structure.data.windows`)."""

import hashlib

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tests import helpers
from video_structure.data import windows as windows_lib

# ----------------------------------------------------------------------------------------
# Windows
# ----------------------------------------------------------------------------------------

NUM_SEQUENCES, NUM_FRAMES, WINDOW = 3, 20, 8


def _labelled_arrays():
  """Frames whose every pixel is n * NUM_FRAMES + t, so a window reveals (n, offset)."""
  labels = (np.arange(NUM_SEQUENCES)[:, None] * NUM_FRAMES + np.arange(NUM_FRAMES)[None])
  images = np.broadcast_to(labels[:, :, None, None, None],
                           (NUM_SEQUENCES, NUM_FRAMES, 4, 5, 3)).astype(np.uint8)
  positions = np.stack([labels / 100.0, -labels / 100.0], axis=-1)[:, :, None, :]
  positions = np.repeat(positions, 2, axis=2).astype(np.float32)  # [N, T, 2, 2]
  return images, positions


def _window_label(window_image):
  value = int(round((window_image[0, 0, 0, 0] + 0.5) * 255.0))
  return value // NUM_FRAMES, value % NUM_FRAMES


def test_training_windows_random_offsets_and_content():
  images, positions = _labelled_arrays()
  dataset = windows_lib.dataset_from_arrays(images, positions)
  windows = windows_lib.make_windows_dataset(dataset, window_length=WINDOW, batch_size=3,
                                      training=True, seed=1, shuffle_buffer=3)
  offsets_seen = {n: [] for n in range(NUM_SEQUENCES)}
  for batch in tfds.as_numpy(windows.take(12)):
    assert batch["image"].shape == (3, WINDOW, 4, 5, 3)
    assert batch["image"].dtype == np.float32
    assert batch["true_object_pos"].shape == (3, WINDOW, 2, 2)
    assert batch["image"].min() >= -0.5 and batch["image"].max() <= 0.5
    for window_image, window_positions in zip(batch["image"], batch["true_object_pos"]):
      n, offset = _window_label(window_image)
      assert 0 <= offset <= NUM_FRAMES - WINDOW
      offsets_seen[n].append(offset)
      source = images[n, offset:offset + WINDOW].astype(np.float32) / 255.0 - 0.5
      np.testing.assert_allclose(window_image, source, rtol=0, atol=1e-6)
      np.testing.assert_array_equal(window_positions, positions[n, offset:offset + WINDOW])
  for n, offsets in offsets_seen.items():
    assert len(offsets) >= 6, (n, offsets)  # Every sequence keeps coming back.
    assert len(set(offsets)) >= 4, (n, offsets)  # With fresh offsets.


def test_training_windows_reproducible_with_seed():
  images, _ = _labelled_arrays()
  first, second = (
      [b["image"] for b in tfds.as_numpy(windows_lib.make_windows_dataset(
          windows_lib.dataset_from_arrays(images), window_length=WINDOW, batch_size=2,
          training=True, seed=5, shuffle_buffer=4).take(5))]
      for _ in range(2))
  np.testing.assert_array_equal(np.stack(first), np.stack(second))


def test_eval_windows_are_consecutive_and_cover_every_sequence():
  images, positions = _labelled_arrays()
  windows = windows_lib.make_windows_dataset(
      windows_lib.dataset_from_arrays(images, positions), window_length=WINDOW, batch_size=4,
      training=False, drop_remainder=False)
  batches = list(tfds.as_numpy(windows))
  assert [b["image"].shape[0] for b in batches] == [4, 2]
  all_images = np.concatenate([b["image"] for b in batches])
  all_positions = np.concatenate([b["true_object_pos"] for b in batches])
  windows_per_sequence = NUM_FRAMES // WINDOW
  assert all_images.shape == (NUM_SEQUENCES * windows_per_sequence, WINDOW, 4, 5, 3)
  expected_labels = [(n, k * WINDOW) for n in range(NUM_SEQUENCES)
                     for k in range(windows_per_sequence)]
  assert [_window_label(w) for w in all_images] == expected_labels
  for window_image, window_positions, (n, offset) in zip(
      all_images, all_positions, expected_labels):
    np.testing.assert_allclose(
        window_image, images[n, offset:offset + WINDOW] / 255.0 - 0.5, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(window_positions, positions[n, offset:offset + WINDOW])


# ----------------------------------------------------------------------------------------
# The training stream: a function of (seed, step)
# ----------------------------------------------------------------------------------------


def _digest(batches, num_batches):
  """sha256 (16 hex digits) of the first batches' values, every key in sorted order."""
  digest = hashlib.sha256()
  for batch in batches.take(num_batches):
    for key in sorted(batch):
      digest.update(key.encode())
      digest.update(batch[key].numpy().tobytes())
  return digest.hexdigest()[:16]


def _random_arrays():
  """5 random sequences of 12 frames of 8x8 pixels, with 2 positions per frame."""
  rng = np.random.default_rng(0)
  return windows_lib.dataset_from_arrays(
      rng.integers(0, 256, [5, 12, 8, 8, 3], dtype=np.uint8),
      rng.uniform(-1, 1, [5, 12, 2, 2]).astype(np.float32))


@pytest.fixture(scope="module")
def tiny_source(tiny_basketball_dir):
  """The tiny Basketball data (`sources.DataSource`, with `train_encoded`)."""
  return helpers.prepare_tiny_basketball(tiny_basketball_dir)


def _assert_same_batches(first, second):
  assert len(first) == len(second)
  for a, b in zip(first, second):
    assert sorted(a) == sorted(b)
    for key in a:
      np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())


# The first batches of a fresh stream as the code before the stream became a function of
# (seed, step) computed them with TensorFlow's global seed equal to `seed` (as in a fresh
# train.py run, whose builder sets it to config.seed): (window, batch, seed, shuffle buffer)
# -> digest of 5 batches.
TODAYS_ARRAY_STREAMS = {(4, 3, 0, 512): "f149c4dbda1710c2", (4, 3, 7, 4): "7e01c9cdb319323a"}
TODAYS_TINY_STREAMS = {(6, 4, 0, 512): "3f806ad05120726c", (6, 4, 5, 7): "2ccbf0042830f1c3"}


@pytest.mark.parametrize("global_seed", [None, 123])
def test_fresh_stream_is_the_stream_of_earlier_versions(tiny_source, global_seed):
  if global_seed is not None:
    tf.random.set_seed(global_seed)  # Must not matter any more.
  for (window, batch, seed, buffer), expected in TODAYS_ARRAY_STREAMS.items():
    assert _digest(windows_lib.make_windows_dataset(
        _random_arrays(), window, batch, training=True, seed=seed, shuffle_buffer=buffer),
        5) == expected
  for (window, batch, seed, buffer), expected in TODAYS_TINY_STREAMS.items():
    for sequences in (tiny_source.train, tiny_source.train_encoded):
      assert _digest(windows_lib.make_windows_dataset(
          sequences, window, batch, training=True, seed=seed, shuffle_buffer=buffer),
          5) == expected


def test_seed_pair_gives_the_windows_of_that_global_and_operation_seed(tiny_source):
  # train.py's re-seeding batches: (config.seed, config.seed + step), as the earlier code drew
  # them in a fresh run (global seed 0, operation seed 100: 2 batches).
  assert _digest(windows_lib.make_windows_dataset(
      _random_arrays(), 4, 3, training=True, seed=(0, 100)), 2) == "e3ddc6eac6c8962d"
  assert _digest(windows_lib.make_windows_dataset(
      tiny_source.train_encoded, 6, 4, training=True, seed=(0, 100)), 2) == "855711e65354992f"
  assert _digest(windows_lib.make_windows_dataset(
      _random_arrays(), 4, 3, training=True, seed=(3, 3)), 3) == _digest(
          windows_lib.make_windows_dataset(_random_arrays(), 4, 3, training=True, seed=3), 3)


@pytest.mark.parametrize("first_step", [1, 3, 10])
def test_stream_at_a_step_is_the_fresh_stream_skipped_by_that_many_batches(tiny_source,
                                                                           first_step):
  for sequences, window, batch in ((_random_arrays(), 4, 3),
                                   (tiny_source.train_encoded, 6, 4),
                                   (tiny_source.train, 6, 4)):
    for buffer in (512, 5):
      settings = dict(window_length=window, batch_size=batch, training=True, seed=2,
                      shuffle_buffer=buffer)
      fresh = list(windows_lib.make_windows_dataset(sequences, **settings).take(first_step + 3))
      resumed = list(windows_lib.make_windows_dataset(
          sequences, first_step=first_step, **settings).take(3))
      _assert_same_batches(fresh[first_step:], resumed)


def test_encoded_sequences_give_the_windows_of_the_decoded_ones(tiny_source):
  encoded = tiny_source.train_encoded
  assert encoded.encoded.element_spec["image"].dtype == tf.string  # Really still encoded.
  for settings in (dict(training=True, seed=4), dict(training=True, seed=4, cache=True),
                   dict(training=False)):
    _assert_same_batches(
        list(windows_lib.make_windows_dataset(tiny_source.train, 6, 4, **settings).take(4)),
        list(windows_lib.make_windows_dataset(encoded, 6, 4, **settings).take(4)))
  _assert_same_batches(
      [{key: tf.constant(value) for key, value in element.items()}
       for element in tfds.as_numpy(encoded.decoded())],
      [{key: tf.constant(value) for key, value in element.items()}
       for element in tfds.as_numpy(tiny_source.train)])


def test_sequence_sharded_worker_skips_its_share_of_the_batches():
  # 2 workers, each with its own stream, consume batch_size / 2 windows of it per step.
  settings = dict(window_length=4, batch_size=4, training=True, seed=1, num_workers=2,
                  worker_index=1, shard_policy="sequences")
  fresh = windows_lib.make_windows_dataset(_random_arrays(), **settings).unbatch()
  resumed = windows_lib.make_windows_dataset(_random_arrays(), first_step=3, **settings)
  _assert_same_batches(list(fresh.skip(3 * 2).take(8)), list(resumed.unbatch().take(8)))


def test_first_step_needs_a_seeded_training_stream():
  with pytest.raises(ValueError, match=r"first_step=2 needs training=True and a seed"):
    windows_lib.make_windows_dataset(_random_arrays(), 4, 3, training=True, first_step=2)
  with pytest.raises(ValueError, match=r"first_step=2 needs training=True and a seed"):
    windows_lib.make_windows_dataset(_random_arrays(), 4, 3, training=False, seed=1,
                                     first_step=2)
  with pytest.raises(ValueError, match=r"first_step must be a non-negative int"):
    windows_lib.make_windows_dataset(_random_arrays(), 4, 3, seed=1, first_step=-1)
  with pytest.raises(ValueError, match=r"seed must be an int or a pair of ints"):
    windows_lib.make_windows_dataset(_random_arrays(), 4, 3, seed=(1, 2, 3))


# ----------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------


def test_dataset_from_arrays_errors():
  images, positions = _labelled_arrays()
  with pytest.raises(ValueError, match=r"clips: images must be uint8.*float32"):
    windows_lib.dataset_from_arrays(images.astype(np.float32), name="clips")
  with pytest.raises(ValueError, match=r"images must have shape \[N, T, H, W, 3\]"):
    windows_lib.dataset_from_arrays(images[..., 0])
  with pytest.raises(ValueError, match=r"images are empty"):
    windows_lib.dataset_from_arrays(images[:0])
  with pytest.raises(ValueError, match=r"true_object_pos must have shape"):
    windows_lib.dataset_from_arrays(images, positions[:, :5])
  with pytest.raises(ValueError, match=r"true_object_pos must be a float array"):
    windows_lib.dataset_from_arrays(images, positions.astype(np.int32))


def test_validate_example_spec_errors():
  images, _ = _labelled_arrays()
  short = windows_lib.dataset_from_arrays(images[:, :5])
  with pytest.raises(ValueError, match=r"'short_clips'.*5 frames.*window_length=8"):
    windows_lib.make_windows_dataset(short, window_length=8, name="short_clips")
  empty = windows_lib.dataset_from_arrays(images).filter(lambda element: False)
  with pytest.raises(ValueError, match=r"'empty_clips' is empty"):
    windows_lib.validate_example_spec(empty, 8, "empty_clips")
  floats = tf.data.Dataset.from_tensor_slices({"image": images.astype(np.float32)})
  with pytest.raises(ValueError, match=r"'float_clips'.*uint8.*float32"):
    windows_lib.validate_example_spec(floats, 8, "float_clips")
  gray = tf.data.Dataset.from_tensor_slices({"image": images[..., :1]})
  with pytest.raises(ValueError, match=r"'gray_clips'.*\[T, H, W, 3\]"):
    windows_lib.validate_example_spec(gray, 8, "gray_clips")
  # Unknown static length: the first element is checked.
  dynamic = tf.data.Dataset.from_generator(
      lambda: iter([{"image": images[0, :5]}]),
      output_signature={"image": tf.TensorSpec([None, 4, 5, 3], tf.uint8)})
  with pytest.raises(ValueError, match=r"'dynamic_clips'.*first sequence has 5 frames"):
    windows_lib.validate_example_spec(dynamic, 8, "dynamic_clips")
