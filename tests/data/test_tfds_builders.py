"""Tests of the TFDS helper (`tfds_builders`: prepare, check, read) on the Basketball builder."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests import helpers
from tests.data import generation_helpers
from video_structure.data import basketball
from video_structure.data import basketball_plays
from video_structure.data import tfds_builders
from video_structure.data import windows
from video_structure.data.builders import basketball as basketball_builder

TINY_TRAIN, TINY_TEST, TINY_FRAMES = 16, 8, 20


def _prepare(data_dir, config):
  return tfds_builders.prepare(basketball_builder.Builder, data_dir, config)


@pytest.fixture(scope="module")
def tiny_builder(tmp_path_factory):
  return _prepare(tmp_path_factory.mktemp("tiny_a") / "tfds", "tiny")


@pytest.fixture(scope="module")
def tiny_arrays(tiny_builder):
  return {split: helpers.split_arrays(tiny_builder, split) for split in ("train", "test")}


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
    expected_trajectories = basketball_plays.simulate_plays(
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
  other = _prepare(tmp_path / "tfds", "tiny")
  for split in ("train", "test"):
    other_arrays = helpers.split_arrays(other, split)
    for key, value in tiny_arrays[split].items():
      np.testing.assert_array_equal(other_arrays[key], value, err_msg=f"{split}/{key}")


@pytest.mark.slow  # Starts worker processes.
def test_workers_give_the_same_stored_data(tmp_path, monkeypatch):
  """1 and 2 worker processes store the same records (frames compressed in the workers) in the
  same order, equal to the Basketball module's sequences."""
  monkeypatch.setattr(basketball_builder, "GENERATION_CHUNK_SIZE", 4)  # 3 + 2 chunks.
  config = basketball_builder.BasketballConfig(name="small", num_train=10, num_test=6,
                                               num_frames=6, image_size=16, seed=3)
  started = generation_helpers.record_started_workers(monkeypatch)
  one = tfds_builders.prepare(basketball_builder.Builder, tmp_path / "one", config,
                              num_workers=1)
  assert started == []
  two = tfds_builders.prepare(basketball_builder.Builder, tmp_path / "two", config,
                              num_workers=2)
  assert len(started) == 4  # Two per split.
  assert two.info.features.to_json() == one.info.features.to_json()
  for split, count, first_index in (("train", 10, 0),
                                    ("test", 6, basketball_builder.TEST_FIRST_INDEX)):
    records = generation_helpers.stored_records(two, split)
    assert len(records) == count
    assert records == generation_helpers.stored_records(one, split)
    arrays = helpers.split_arrays(two, split)
    np.testing.assert_array_equal(arrays["sequence_index"], np.arange(count))
    trajectories = basketball_plays.simulate_plays(count, num_frames=6, seed=3,
                                                   first_index=first_index)
    np.testing.assert_array_equal(arrays["trajectories_feet"], trajectories)
    np.testing.assert_array_equal(arrays["image"],
                                  basketball.render_frames(trajectories, image_size=16))


def test_prepare_checks_num_workers(tmp_path):
  with pytest.raises(ValueError, match=r"^num_workers must be a whole number of worker "
                                       r"processes >= 1 \(1 generates in this process\), got 0; "
                                       r"leave it out to use every core"):
    tfds_builders.prepare(basketball_builder.Builder, tmp_path / "tfds", "tiny", num_workers=0)
  assert not (tmp_path / "tfds").exists()  # Checked before anything is written.


def test_prepare_reuses_existing_data(tiny_builder, capsys):
  again = _prepare(tiny_builder.data_dir_root, "tiny")
  assert "Generating" not in capsys.readouterr().out
  assert again.data_dir == tiny_builder.data_dir


def test_importer_renders_given_trajectories(tmp_path):
  train_trajectories = basketball_plays.simulate_plays(3, num_frames=12, seed=7)
  test_trajectories = basketball_plays.simulate_plays(2, num_frames=12, seed=8)
  np.save(tmp_path / "train.npy", train_trajectories)
  np.save(tmp_path / "test.npy", test_trajectories)
  config = basketball_builder.BasketballConfig(
      name="imported", num_frames=12, train_trajectories=str(tmp_path / "train.npy"),
      test_trajectories=str(tmp_path / "test.npy"))
  builder = _prepare(tmp_path / "tfds", config)
  for split, trajectories in (("train", train_trajectories), ("test", test_trajectories)):
    arrays = helpers.split_arrays(builder, split)
    np.testing.assert_array_equal(arrays["trajectories_feet"], trajectories)
    np.testing.assert_array_equal(arrays["image"], basketball.render_frames(trajectories))
    np.testing.assert_allclose(
        arrays["true_object_pos"], basketball.object_positions(trajectories), rtol=0,
        atol=1e-6)


def test_importer_errors_name_the_setting(tmp_path):
  np.save(tmp_path / "train.npy", basketball_plays.simulate_plays(2, num_frames=12, seed=1))
  wrong_frames = basketball_builder.BasketballConfig(
      name="wrong_frames", num_frames=10, num_test=1,
      train_trajectories=str(tmp_path / "train.npy"))
  with pytest.raises(ValueError, match=r"train_trajectories.*12 frames.*num_frames=10"):
    _prepare(tmp_path / "tfds", wrong_frames)
  wrong_count = basketball_builder.BasketballConfig(
      name="wrong_count", num_frames=12, num_train=5, num_test=1,
      train_trajectories=str(tmp_path / "train.npy"))
  with pytest.raises(ValueError, match=r"2 sequences but num_train=5"):
    _prepare(tmp_path / "tfds", wrong_count)
  missing = basketball_builder.BasketballConfig(
      name="missing", num_frames=12, num_test=1,
      train_trajectories=str(tmp_path / "nope.npy"))
  with pytest.raises(FileNotFoundError, match=r"train_trajectories.*nope\.npy"):
    _prepare(tmp_path / "tfds", missing)
  no_count = basketball_builder.BasketballConfig(name="no_count", num_train=2)
  with pytest.raises(ValueError, match=r"num_test must be set"):
    _prepare(tmp_path / "tfds", no_count)


def test_prepare_errors(tmp_path):
  with pytest.raises(ValueError, match=r"'huge'.*cpu.*paper.*tiny"):
    _prepare(tmp_path / "tfds", "huge")
  with pytest.raises(FileNotFoundError, match=r"no_such_parent"):
    _prepare(tmp_path / "no_such_parent" / "tfds", "tiny")
  small = basketball_builder.BasketballConfig(name="custom", num_train=2, num_test=1,
                                              num_frames=4)
  _prepare(tmp_path / "tfds", small)
  # Same name, other settings: must not silently read the old data.
  changed = basketball_builder.BasketballConfig(name="custom", num_train=3, num_test=1,
                                                num_frames=4)
  with pytest.raises(ValueError, match=r"different|differ"):
    _prepare(tmp_path / "tfds", changed)
  with pytest.raises(TypeError, match=r"config must be a config name or a BasketballConfig"):
    _prepare(tmp_path / "tfds", 3)
  assert tfds_builders.known_configs(basketball_builder.Builder) == ("cpu", "paper", "tiny")


def test_load_split(tiny_builder, tiny_arrays):
  dataset = tfds_builders.load_split(tiny_builder, "test")
  assert set(dataset.element_spec) == {"image", "true_object_pos"}
  elements = list(tfds.as_numpy(dataset))
  assert len(elements) == TINY_TEST
  np.testing.assert_array_equal(
      np.stack([e["image"] for e in elements]), tiny_arrays["test"]["image"])
  with pytest.raises(ValueError, match=r"'validation'.*train.*test|'validation'.*test.*train"):
    tfds_builders.load_split(tiny_builder, "validation")


def test_load_split_selects_and_renames_features(tiny_builder, tiny_arrays):
  listed = tfds_builders.load_split(tiny_builder, "test[:3]", ["sequence_index", "image"])
  assert set(listed.element_spec) == {"sequence_index", "image"}
  elements = list(tfds.as_numpy(listed))
  assert [int(e["sequence_index"]) for e in elements] == [0, 1, 2]
  renamed = list(tfds.as_numpy(tfds_builders.load_split(
      tiny_builder, "test[:3]", {"frames": "image", "feet": "trajectories_feet"})))
  np.testing.assert_array_equal(np.stack([e["frames"] for e in renamed]),
                                tiny_arrays["test"]["image"][:3])
  np.testing.assert_array_equal(np.stack([e["feet"] for e in renamed]),
                                tiny_arrays["test"]["trajectories_feet"][:3])


def test_windows_from_tiny_basketball(tiny_builder):
  train = windows.make_windows_dataset(tfds_builders.load_split(tiny_builder, "train"),
                                       window_length=8, batch_size=4, training=True, seed=0,
                                       shuffle_buffer=8)
  batch = next(iter(tfds.as_numpy(train)))
  assert batch["image"].shape == (4, 8, 64, 64, 3)
  assert batch["true_object_pos"].shape == (4, 8, 6, 2)
  assert -0.5 <= batch["image"].min() and batch["image"].max() <= 0.5
  test = windows.make_windows_dataset(tfds_builders.load_split(tiny_builder, "test"),
                                      window_length=8, batch_size=4, training=False)
  num_windows = sum(b["image"].shape[0] for b in tfds.as_numpy(test))
  assert num_windows == TINY_TEST * (TINY_FRAMES // 8)
