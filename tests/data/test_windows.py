"""Tests of the windowing input pipeline (`video_structure.data.windows`)."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

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
