"""Tests of the Basketball TFDS builder and the windowing input pipeline."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from datasets.basketball import basketball_dataset_builder as basketball_builder
from video_structure import basketball
from video_structure import data

TINY_TRAIN, TINY_TEST, TINY_FRAMES = 16, 8, 20


def _split_arrays(builder, split):
  """All examples of a split as numpy arrays, in stored order."""
  examples = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
  return {key: np.stack([example[key] for example in examples]) for key in examples[0]}


@pytest.fixture(scope="module")
def tiny_builder(tmp_path_factory):
  return data.prepare_basketball(tmp_path_factory.mktemp("tiny_a") / "tfds", "tiny")


@pytest.fixture(scope="module")
def tiny_arrays(tiny_builder):
  return {split: _split_arrays(tiny_builder, split) for split in ("train", "test")}


# ----------------------------------------------------------------------------------------
# Builder
# ----------------------------------------------------------------------------------------


def test_tiny_builder_counts_shapes_dtypes_ranges(tiny_builder, tiny_arrays):
  assert tiny_builder.name == "basketball"
  assert tiny_builder.info.splits["train"].num_examples == TINY_TRAIN
  assert tiny_builder.info.splits["test"].num_examples == TINY_TEST
  for split, count in (("train", TINY_TRAIN), ("test", TINY_TEST)):
    arrays = tiny_arrays[split]
    assert arrays["image"].shape == (count, TINY_FRAMES, 64, 64, 3)
    assert arrays["image"].dtype == np.uint8
    assert arrays["true_object_pos"].shape == (count, TINY_FRAMES, 6, 2)
    assert arrays["true_object_pos"].dtype == np.float32
    assert arrays["trajectories_feet"].shape == (count, TINY_FRAMES, 22)
    assert arrays["trajectories_feet"].dtype == np.float32
    np.testing.assert_array_equal(arrays["sequence_index"], np.arange(count))
    assert np.all(np.abs(arrays["true_object_pos"]) <= 1.0)
    assert arrays["image"].std() > 1.0  # Not a blank video.


def test_tiny_builder_content_matches_basketball_module(tiny_arrays):
  for split, first_index in (("train", 0), ("test", basketball_builder.TEST_FIRST_INDEX)):
    arrays = tiny_arrays[split]
    count = arrays["image"].shape[0]
    expected_trajectories = basketball.simulate_plays(
        count, num_frames=TINY_FRAMES, seed=0, first_index=first_index)
    np.testing.assert_array_equal(arrays["trajectories_feet"], expected_trajectories)
    np.testing.assert_allclose(
        arrays["true_object_pos"], basketball.object_positions(arrays["trajectories_feet"]),
        rtol=0, atol=1e-6)
    np.testing.assert_array_equal(
        arrays["image"], basketball.render_frames(arrays["trajectories_feet"]))


def test_train_and_test_are_disjoint(tiny_arrays):
  train = tiny_arrays["train"]["trajectories_feet"]
  test = tiny_arrays["test"]["trajectories_feet"]
  for test_sequence in test:
    assert not np.any(np.all(np.isclose(train, test_sequence), axis=(1, 2)))


def test_builder_is_deterministic_across_directories(tmp_path, tiny_arrays):
  other = data.prepare_basketball(tmp_path / "tfds", "tiny")
  for split in ("train", "test"):
    other_arrays = _split_arrays(other, split)
    for key, value in tiny_arrays[split].items():
      np.testing.assert_array_equal(other_arrays[key], value, err_msg=f"{split}/{key}")


def test_prepare_reuses_existing_data(tiny_builder, capsys):
  again = data.prepare_basketball(tiny_builder.data_dir_root, "tiny")
  assert "Generating" not in capsys.readouterr().out
  assert again.data_dir == tiny_builder.data_dir


def test_importer_renders_given_trajectories(tmp_path):
  train_trajectories = basketball.simulate_plays(3, num_frames=12, seed=7)
  test_trajectories = basketball.simulate_plays(2, num_frames=12, seed=8)
  np.save(tmp_path / "train.npy", train_trajectories)
  np.save(tmp_path / "test.npy", test_trajectories)
  config = data.BasketballConfig(
      name="imported", num_frames=12, train_trajectories=str(tmp_path / "train.npy"),
      test_trajectories=str(tmp_path / "test.npy"))
  builder = data.prepare_basketball(tmp_path / "tfds", config)
  for split, trajectories in (("train", train_trajectories), ("test", test_trajectories)):
    arrays = _split_arrays(builder, split)
    np.testing.assert_array_equal(arrays["trajectories_feet"], trajectories)
    np.testing.assert_array_equal(arrays["image"], basketball.render_frames(trajectories))
    np.testing.assert_allclose(
        arrays["true_object_pos"], basketball.object_positions(trajectories), rtol=0,
        atol=1e-6)


def test_importer_errors_name_the_setting(tmp_path):
  np.save(tmp_path / "train.npy", basketball.simulate_plays(2, num_frames=12, seed=1))
  wrong_frames = data.BasketballConfig(
      name="wrong_frames", num_frames=10, num_test=1,
      train_trajectories=str(tmp_path / "train.npy"))
  with pytest.raises(ValueError, match=r"train_trajectories.*12 frames.*num_frames=10"):
    data.prepare_basketball(tmp_path / "tfds", wrong_frames)
  wrong_count = data.BasketballConfig(
      name="wrong_count", num_frames=12, num_train=5, num_test=1,
      train_trajectories=str(tmp_path / "train.npy"))
  with pytest.raises(ValueError, match=r"2 sequences but num_train=5"):
    data.prepare_basketball(tmp_path / "tfds", wrong_count)
  missing = data.BasketballConfig(
      name="missing", num_frames=12, num_test=1,
      train_trajectories=str(tmp_path / "nope.npy"))
  with pytest.raises(FileNotFoundError, match=r"train_trajectories.*nope\.npy"):
    data.prepare_basketball(tmp_path / "tfds", missing)
  no_count = data.BasketballConfig(name="no_count", num_train=2)
  with pytest.raises(ValueError, match=r"num_test must be set"):
    data.prepare_basketball(tmp_path / "tfds", no_count)


def test_prepare_errors(tmp_path):
  with pytest.raises(ValueError, match=r"'huge'.*cpu.*paper.*tiny"):
    data.prepare_basketball(tmp_path / "tfds", "huge")
  with pytest.raises(FileNotFoundError, match=r"no_such_parent"):
    data.prepare_basketball(tmp_path / "no_such_parent" / "tfds", "tiny")
  small = data.BasketballConfig(name="custom", num_train=2, num_test=1, num_frames=4)
  data.prepare_basketball(tmp_path / "tfds", small)
  # Same name, other settings: must not silently read the old data.
  changed = data.BasketballConfig(name="custom", num_train=3, num_test=1, num_frames=4)
  with pytest.raises(ValueError, match=r"different|differ"):
    data.prepare_basketball(tmp_path / "tfds", changed)


def test_load_split(tiny_builder, tiny_arrays):
  dataset = data.load_split(tiny_builder, "test")
  assert set(dataset.element_spec) == {"image", "true_object_pos"}
  elements = list(tfds.as_numpy(dataset))
  assert len(elements) == TINY_TEST
  np.testing.assert_array_equal(
      np.stack([e["image"] for e in elements]), tiny_arrays["test"]["image"])
  with pytest.raises(ValueError, match=r"'validation'.*train.*test|'validation'.*test.*train"):
    data.load_split(tiny_builder, "validation")


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
  dataset = data.dataset_from_arrays(images, positions)
  windows = data.make_windows_dataset(dataset, window_length=WINDOW, batch_size=3,
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
      [b["image"] for b in tfds.as_numpy(data.make_windows_dataset(
          data.dataset_from_arrays(images), window_length=WINDOW, batch_size=2,
          training=True, seed=5, shuffle_buffer=4).take(5))]
      for _ in range(2))
  np.testing.assert_array_equal(np.stack(first), np.stack(second))


def test_eval_windows_are_consecutive_and_cover_every_sequence():
  images, positions = _labelled_arrays()
  windows = data.make_windows_dataset(
      data.dataset_from_arrays(images, positions), window_length=WINDOW, batch_size=4,
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


def test_windows_from_tiny_basketball(tiny_builder):
  train = data.make_windows_dataset(data.load_split(tiny_builder, "train"), window_length=8,
                                    batch_size=4, training=True, seed=0, shuffle_buffer=8)
  batch = next(iter(tfds.as_numpy(train)))
  assert batch["image"].shape == (4, 8, 64, 64, 3)
  assert batch["true_object_pos"].shape == (4, 8, 6, 2)
  assert -0.5 <= batch["image"].min() and batch["image"].max() <= 0.5
  test = data.make_windows_dataset(data.load_split(tiny_builder, "test"), window_length=8,
                                   batch_size=4, training=False)
  num_windows = sum(b["image"].shape[0] for b in tfds.as_numpy(test))
  assert num_windows == TINY_TEST * (TINY_FRAMES // 8)


# ----------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------


def test_dataset_from_arrays_errors():
  images, positions = _labelled_arrays()
  with pytest.raises(ValueError, match=r"clips: images must be uint8.*float32"):
    data.dataset_from_arrays(images.astype(np.float32), name="clips")
  with pytest.raises(ValueError, match=r"images must have shape \[N, T, H, W, 3\]"):
    data.dataset_from_arrays(images[..., 0])
  with pytest.raises(ValueError, match=r"images are empty"):
    data.dataset_from_arrays(images[:0])
  with pytest.raises(ValueError, match=r"true_object_pos must have shape"):
    data.dataset_from_arrays(images, positions[:, :5])
  with pytest.raises(ValueError, match=r"true_object_pos must be a float array"):
    data.dataset_from_arrays(images, positions.astype(np.int32))


def test_validate_example_spec_errors():
  images, _ = _labelled_arrays()
  short = data.dataset_from_arrays(images[:, :5])
  with pytest.raises(ValueError, match=r"'short_clips'.*5 frames.*window_length=8"):
    data.make_windows_dataset(short, window_length=8, name="short_clips")
  empty = data.dataset_from_arrays(images).filter(lambda element: False)
  with pytest.raises(ValueError, match=r"'empty_clips' is empty"):
    data.validate_example_spec(empty, 8, "empty_clips")
  floats = tf.data.Dataset.from_tensor_slices({"image": images.astype(np.float32)})
  with pytest.raises(ValueError, match=r"'float_clips'.*uint8.*float32"):
    data.validate_example_spec(floats, 8, "float_clips")
  gray = tf.data.Dataset.from_tensor_slices({"image": images[..., :1]})
  with pytest.raises(ValueError, match=r"'gray_clips'.*\[T, H, W, 3\]"):
    data.validate_example_spec(gray, 8, "gray_clips")
  # Unknown static length: the first element is checked.
  dynamic = tf.data.Dataset.from_generator(
      lambda: iter([{"image": images[0, :5]}]),
      output_signature={"image": tf.TensorSpec([None, 4, 5, 3], tf.uint8)})
  with pytest.raises(ValueError, match=r"'dynamic_clips'.*first sequence has 5 frames"):
    data.validate_example_spec(dynamic, 8, "dynamic_clips")
