"""Tests of the downstream experiments (`video_structure/downstream/`).

Pure functions (null models, normalised MSE, splits, keypoint matching and manipulation) are
checked with exact numbers; each command-line entry point runs end to end on a tiny untrained
model saved as a run directory and on tiny sequences built in memory (injected as the
`DataSource`, so nothing is generated or rendered).
"""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from video_structure import downstream
from video_structure import presets
from video_structure.data import basketball
from video_structure.data import sources
from video_structure.downstream import action_recognition
from video_structure.downstream import counterfactual
from video_structure.downstream import reward_model
from video_structure.downstream import reward_prediction
from video_structure.training import builder
from video_structure.training import checkpoints
from video_structure.training import run_dir as run_dir_lib

# The tiny model on the sizes of the in-memory sequences below: 32 x 32 frames, windows of 4
# observed and 4 predicted steps.
IMAGE_SIZE = 32
DATA_SIZES = dict(image_size=IMAGE_SIZE, heatmap_size=16, observed_steps=4, predicted_steps=4)
NUM_KEYPOINTS = helpers.TINY_MODEL["num_keypoints"]
RNN_UNITS = helpers.TINY_MODEL["rnn_units"]


def tiny_config(dataset, **overrides):
  """The shared tiny `presets.RunConfig` (tests/helpers.py) on DATA_SIZES."""
  return helpers.tiny_config(dataset, **dict(DATA_SIZES, **overrides))


def write_run(run_dir, run_config, with_checkpoint=True):
  """A run directory like train.py's: config.json and (optionally) one checkpoint of an
  untrained model."""
  os.makedirs(run_dir, exist_ok=True)
  presets.save_run_config(run_config, os.path.join(run_dir, run_dir_lib.CONFIG_FILE))
  if with_checkpoint:
    keras.mixed_precision.set_global_policy("float32")
    checkpoints.save_checkpoint(builder.build_model(run_config), run_dir)
  return str(run_dir)


def _dataset(**arrays):
  return tf.data.Dataset.from_tensor_slices(arrays)


def fake_human_source(num_train=6, num_test=4, num_frames=8, num_classes=3, seed=0):
  rng = np.random.default_rng(seed)

  def split(count):
    return _dataset(
        image=rng.integers(0, 256, [count, num_frames, IMAGE_SIZE, IMAGE_SIZE, 3], np.uint8),
        true_object_pos=rng.uniform(-1, 1, [count, num_frames, 17, 2]).astype(np.float32),
        label=(np.arange(count) % num_classes).astype(np.int64))
  return sources.DataSource("fake_human", split(num_train), split(num_test),
                            tuple(f"joint_{j}" for j in range(17)), False,
                            tuple(f"action_{c}" for c in range(num_classes)))


def fake_dmcs_source(per_task=5, num_tasks=2, num_frames=4, seed=0):
  rng = np.random.default_rng(seed)

  def split(count):
    labels = (np.arange(count) % num_tasks).astype(np.int64)
    return _dataset(
        image=rng.integers(0, 256, [count, num_frames, IMAGE_SIZE, IMAGE_SIZE, 3], np.uint8),
        actions=rng.uniform(-1, 1, [count, num_frames, 6]).astype(np.float32),
        reward=(rng.uniform(0, 1, [count, num_frames]) + labels[:, None]).astype(np.float32),
        label=labels)
  return sources.DataSource("fake_dmcs", split(per_task * num_tasks),
                            split(per_task * num_tasks), None, True,
                            tuple(f"task_{i}" for i in range(num_tasks)))


def fake_basketball_source(num_sequences=2, num_frames=8, seed=0):
  rng = np.random.default_rng(seed)
  split = _dataset(
      image=rng.integers(0, 256, [num_sequences, num_frames, IMAGE_SIZE, IMAGE_SIZE, 3],
                         np.uint8),
      true_object_pos=rng.uniform(-0.8, 0.8, [num_sequences, num_frames, 6, 2]).astype(
          np.float32))
  return sources.DataSource("fake_basketball", split, split, basketball.OBJECT_NAMES, True)


# Shared helpers. ------------------------------------------------------------------------------

def test_decaying_learning_rate_runs_from_start_to_end():
  schedule = downstream.decaying_learning_rate(0.01, 1e-4, 200)
  assert float(schedule(0)) == pytest.approx(0.01, rel=1e-6)
  assert float(schedule(100)) == pytest.approx(1e-3, rel=1e-5)  # Geometric mean halfway.
  assert float(schedule(200)) == pytest.approx(1e-4, rel=1e-5)
  with pytest.raises(ValueError, match="0 < end <= start"):
    downstream.decaying_learning_rate(1e-4, 1e-2, 10)


def test_map_windows_cuts_consecutive_windows_and_keeps_labels():
  dataset = _dataset(image=np.arange(2 * 7).reshape(2, 7).astype(np.float32),
                     label=np.array([5, 6], np.int64))
  result = downstream.map_windows(
      dataset, 3, ["image"], lambda batch, i: {"sum": batch["image"].sum(axis=1)},
      scalar_keys=["label"], keep_keys=["label"], batch_size=3)
  # 7 // 3 = 2 windows per sequence; frame 6 of each sequence is not used.
  np.testing.assert_array_equal(result["sum"], [0 + 1 + 2, 3 + 4 + 5, 7 + 8 + 9, 10 + 11 + 12])
  np.testing.assert_array_equal(result["label"], [5, 5, 6, 6])
  np.testing.assert_array_equal(result["sequence_index"], [0, 0, 1, 1])
  np.testing.assert_array_equal(result["window_start"], [0, 3, 0, 3])


def test_map_windows_errors():
  dataset = _dataset(image=np.zeros([1, 2], np.float32))
  with pytest.raises(ValueError, match="fewer than the window length 3"):
    downstream.map_windows(dataset, 3, ["image"], lambda batch, i: {})
  with pytest.raises(ValueError, match=r"need the features \['image', 'label'\]"):
    downstream.map_windows(dataset, 1, ["image"], lambda batch, i: {}, scalar_keys=["label"])


# Action recognition. --------------------------------------------------------------------------

def test_majority_class_null_model_is_exact():
  assert action_recognition.null_model_accuracy([0, 1, 1, 2, 1], [1, 0, 1, 1], 3) == (1, 0.75)
  assert action_recognition.majority_class([2, 2, 0, 0], 3) == 0  # Ties: smallest index.
  assert action_recognition.null_model_accuracy([2], [0, 1], 3) == (2, 0.0)
  with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
    action_recognition.null_model_accuracy([0, 3], [0], 3)


def test_per_class_accuracy_is_exact():
  accuracy = action_recognition.per_class_accuracy([0, 1, 1, 2], [0, 1, 2, 2], 4)
  assert accuracy == [1.0, 1.0, 0.5, None]


def test_holdout_split_keeps_the_windows_of_a_sequence_together():
  sequence_index = np.repeat(np.arange(10), 3)
  train, test = action_recognition.holdout_split(sequence_index, 0.3, seed=0)
  assert not np.any(train & test) and np.all(train | test)
  assert len(np.unique(sequence_index[test])) == 3
  assert not set(sequence_index[test]) & set(sequence_index[train])
  again = action_recognition.holdout_split(sequence_index, 0.3, seed=0)
  np.testing.assert_array_equal(test, again[1])


def test_classifier_learns_a_separable_toy_problem_deterministically():
  rng = np.random.default_rng(0)

  def toy(count):
    labels = rng.integers(0, 3, count)
    features = rng.normal(0, 0.1, [count, 8, 4]).astype(np.float32)
    features[:, :, 0] += (labels == 1)[:, None]
    features[:, :, 1] += (labels == 2)[:, None]
    return features, labels

  train_x, train_y = toy(48)
  test_x, test_y = toy(30)
  settings = action_recognition.Settings(epochs=10, batch_size=16, units=16)
  first = action_recognition.train_classifier(train_x, train_y, test_x, test_y, 3, settings)
  second = action_recognition.train_classifier(train_x, train_y, test_x, test_y, 3, settings)
  _, null_accuracy = action_recognition.null_model_accuracy(train_y, test_y, 3)
  assert first["test_accuracy"] >= 0.9 > null_accuracy
  assert first["loss_per_epoch"] == second["loss_per_epoch"]
  np.testing.assert_array_equal(first["test_predictions"], second["test_predictions"])


@pytest.fixture(scope="module")
def human_run(tmp_path_factory):
  return write_run(tmp_path_factory.mktemp("human_run"), tiny_config("human36m"))


@pytest.mark.slow
def test_action_recognition_end_to_end(human_run, tmp_path):
  output = str(tmp_path / "ar.json")
  report = action_recognition.main(
      ["--run_dir", human_run, "--epochs", "1", "--batch_size", "8", "--output", output],
      source=fake_human_source())
  with open(output) as f:
    written = json.load(f)
  assert written["task"] == "action_recognition"
  for key in ("run", "dataset", "settings", "num_classes", "label_names", "num_train_windows",
              "num_test_windows", "class_counts", "null_model", "representation",
              "ground_truth", "timing", "figure"):
    assert key in written, key
  # 6 train / 4 test sequences of 8 frames -> 2 windows of 4 observed steps each.
  assert written["num_train_windows"] == 12 and written["num_test_windows"] == 8
  assert written["num_classes"] == 3
  assert written["representation"]["num_features"] == 3 * NUM_KEYPOINTS
  assert written["ground_truth"]["num_features"] == 34
  # Test labels 0, 1, 2, 0 (two windows each); training majority class 0.
  assert written["null_model"] == {"majority_class": 0, "majority_class_name": "action_0",
                                   "test_accuracy": 0.5}
  assert 0.0 <= written["representation"]["test_accuracy"] <= 1.0
  assert os.path.isfile(written["figure"])
  assert report["settings"]["window_length"] == 4


@pytest.mark.slow
def test_action_recognition_rnn_states_paper_protocol(human_run):
  report = action_recognition.main(
      ["--run_dir", human_run, "--epochs", "1", "--representation", "rnn_states",
       "--protocol", "paper", "--holdout_fraction", "0.25", "--skip_ground_truth"],
      source=fake_human_source())
  assert os.path.isfile(os.path.join(human_run, "action_recognition_rnn_states.json"))
  assert report["representation"]["num_features"] == RNN_UNITS
  assert report["ground_truth"] is None
  # 4 test sequences, one held out: 2 windows for testing, 6 for training.
  assert (report["num_train_windows"], report["num_test_windows"]) == (6, 2)


# Reward prediction. ---------------------------------------------------------------------------

def test_normalized_mse_of_the_mean_predictor_is_one_on_training_data():
  rewards = np.array([[0.0, 0.5, 2.0], [1.0, 3.0, 0.25]])
  mean = reward_model.null_prediction(rewards)
  assert mean == pytest.approx(6.75 / 6)
  assert reward_model.normalized_mse(np.full_like(rewards, mean), rewards, mean) == 1.0


def test_normalized_mse_is_exact():
  rewards = np.array([[0.0, 2.0], [4.0, 6.0]])  # Null (mean 3): MSE (9 + 1 + 1 + 9) / 4 = 5.
  predicted = np.array([[1.0, 2.0], [4.0, 5.0]])  # MSE (1 + 0 + 0 + 1) / 4 = 0.5.
  assert reward_model.mean_squared_error(predicted, rewards) == 0.5
  assert reward_model.normalized_mse(predicted, rewards, 3.0) == pytest.approx(0.1)
  assert reward_model.normalized_mse(rewards, rewards, 3.0) == 0.0
  assert reward_model.normalized_mse(predicted, np.full((2, 2), 3.0), 3.0) is None
  steps = reward_model.per_step_errors(predicted, rewards, 3.0)
  assert steps["model_mse"] == [0.5, 0.5] and steps["null_mse"] == [5.0, 5.0]
  assert steps["normalized_mse"] == [0.1, 0.1]
  # Per-sequence ratios at step 0: 1/5 and 0 -> std 0.1414, CI 1.96 * 0.1414 / sqrt(2).
  assert steps["normalized_mse_ci95"][0] == pytest.approx(1.96 * 0.1)
  # Paired per-sequence differences (model - null) / null MSE: both sequences (0.5 - 5) / 5.
  assert reward_model.normalized_mse_ci95(predicted, rewards, 3.0) == 0.0
  # (0 - 5) / 5 = -1 and (2 - 5) / 5 = -0.6: std 0.2828, CI 1.96 * 0.2828 / sqrt(2).
  assert reward_model.normalized_mse_ci95(
      np.array([[0.0, 2.0], [4.0, 4.0]]), rewards, 3.0) == pytest.approx(1.96 * 0.2)
  assert reward_model.normalized_mse_ci95(predicted[:1], rewards[:1], 3.0) is None
  with pytest.raises(ValueError, match="same shape"):
    reward_model.mean_squared_error(predicted, rewards[:1])


def test_align_pairs_states_with_rewards():
  states = np.arange(2 * 3 * 1).reshape(2, 3, 1)
  rewards = np.array([[10, 11, 12], [20, 21, 22]])
  inputs, targets = reward_model.align(states, rewards, "next_state")
  np.testing.assert_array_equal(inputs[..., 0], [[1, 2], [4, 5]])  # h_{t+1}
  np.testing.assert_array_equal(targets, [[10, 11], [20, 21]])  # reward[t]
  inputs, targets = reward_model.align(states, rewards, "same_step")
  np.testing.assert_array_equal(targets, rewards)
  with pytest.raises(ValueError, match="alignment"):
    reward_model.align(states, rewards, "previous")


def test_split_per_task_holds_out_a_fifth_of_each_task():
  labels = np.array([0] * 10 + [1] * 5)
  groups = np.arange(15)
  splits = reward_model.split_per_task(labels, groups, 0.2, seed=0)
  assert sorted(splits) == [0, 1]
  assert [len(splits[0][1]), len(splits[1][1])] == [2, 1]
  for task, (train, test) in splits.items():
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(np.flatnonzero(labels == task))
  with pytest.raises(ValueError, match="at least 2 are needed"):
    reward_model.split_per_task(np.array([0, 1, 1]), np.arange(3), 0.2, seed=0)


def test_reward_data_default_to_the_reward_sized_config():
  assert reward_prediction.resolve_dataset_config("cpu") == "cpu_reward"
  assert reward_prediction.resolve_dataset_config("cpu", "cpu") == "cpu"
  assert reward_prediction.resolve_dataset_config("paper") == "paper"
  assert reward_prediction.resolve_dataset_config("tiny") == "tiny"
  with pytest.raises(ValueError, match="--dataset_config 'huge' is not a DMCS builder config"):
    reward_prediction.resolve_dataset_config("cpu", "huge")
  # `tiny` warms up for at most 3 steps, `cpu` for 100: not the model's data distribution.
  with pytest.raises(ValueError, match=r"--dataset_config 'tiny' renders sequences "
                                       r"differently .*'max_warmup_steps': \(100, 3\)"):
    reward_prediction.resolve_dataset_config("cpu", "tiny")


def _reward_arrays(num_sequences, seed):
  rng = np.random.default_rng(seed)
  inputs = rng.normal(size=[num_sequences, 3, 2]).astype(np.float32)
  return inputs, inputs[..., 0] * 2.0 + 1.0  # Reward: a linear function of the state.


def test_early_stopping_keeps_the_best_validation_epoch():
  settings = reward_prediction.Settings(epochs=40, patience=3, units=4, batch_size=4)
  train, validation = _reward_arrays(8, 0), _reward_arrays(4, 1)
  _, history = reward_model.train_reward_model(*train, settings, *validation)
  assert len(history["loss"]) == len(history["val_loss"]) == history["epochs_run"]
  assert history["best_epoch"] == int(np.argmin(history["val_loss"])) + 1
  # Stopped `patience` epochs after the best one, unless the maximum came first.
  assert history["epochs_run"] == min(40, history["best_epoch"] + 3)
  _, history = reward_model.train_reward_model(*train, dataclasses.replace(
      settings, epochs=2))
  assert (history["epochs_run"], history["best_epoch"], history["val_loss"]) == (2, 2, [])
  with pytest.raises(ValueError, match=r"validation_inputs must be \[M, 3, 2\]"):
    reward_model.train_reward_model(*train, settings, validation[0][:, :2],
                                         validation[1][:, :2])


def test_validation_part_is_taken_from_the_training_sequences_only():
  settings = reward_prediction.Settings(epochs=1, units=4, validation_fraction=0.25)
  inputs, targets = _reward_arrays(12, 0)
  groups = np.repeat(np.arange(6), 2)  # Two windows per sequence.
  result = reward_model.evaluate_domain(inputs[:8], targets[:8], inputs[8:], targets[8:],
                                             settings, groups[:8])
  # 4 training sequences: one (both of its windows) for validation.
  assert (result["num_fit_sequences"], result["num_validation_sequences"]) == (6, 2)
  assert result["num_test_sequences"] == 4
  assert result["mean_training_reward"] == pytest.approx(float(np.mean(targets[:8])))
  result = reward_model.evaluate_domain(
      inputs[:8], targets[:8], inputs[8:], targets[8:],
      dataclasses.replace(settings, validation_fraction=0.0))
  assert (result["num_fit_sequences"], result["num_validation_sequences"]) == (8, 0)
  assert result["validation_normalized_mse"] is None
  with pytest.raises(ValueError,
                     match="validation_fraction must be 0 .* or a number strictly between"):
    dataclasses.replace(settings, validation_fraction=1.0).validate()


@pytest.fixture(scope="module")
def dmcs_runs(tmp_path_factory):
  struct = write_run(tmp_path_factory.mktemp("dmcs_struct"), tiny_config("dmcs"))
  cnn = write_run(tmp_path_factory.mktemp("dmcs_cnn"),
                  tiny_config("dmcs", representation="features"))
  return struct, cnn


@pytest.mark.slow
def test_reward_prediction_compares_two_runs_end_to_end(dmcs_runs, tmp_path):
  output = str(tmp_path / "comparison.json")
  result = reward_prediction.main(
      ["--run_dir", dmcs_runs[0], "--run_dir", dmcs_runs[1], "--sequence_length", "4",
       "--epochs", "1", "--output", output], source=fake_dmcs_source())
  with open(output) as f:
    written = json.load(f)
  assert written["task"] == "reward_prediction_comparison"
  assert len(written["runs"]) == 2
  assert written["runs"][0].startswith("struct_vrnn:") and written["runs"][1].startswith(
      "cnn_vrnn:")
  assert sorted(written["normalized_mse"]) == ["task_0", "task_1"]
  assert os.path.isfile(written["figure"])
  for run_dir in dmcs_runs:
    with open(os.path.join(run_dir, "reward_prediction.json")) as f:
      report = json.load(f)
    assert report["num_sequences"] == 10 and report["num_time_steps"] == 3
    assert report["rnn_units"] == RNN_UNITS
    domain = report["domains"]["task_0"]
    for key in ("num_train_sequences", "num_test_sequences", "mean_training_reward",
                "null_mse", "model_mse", "normalized_mse", "normalized_mse_ci95",
                "train_normalized_mse", "validation_normalized_mse", "per_time_step",
                "final_train_loss",
                "epochs_run", "best_epoch", "loss_per_epoch", "validation_loss_per_epoch",
                "label"):
      assert key in domain, key
    assert (domain["num_train_sequences"], domain["num_test_sequences"]) == (4, 1)
    # A fifth of the 4 training sequences (rounded, at least 1) chooses the epoch.
    assert (domain["num_fit_sequences"], domain["num_validation_sequences"]) == (3, 1)
    assert (domain["epochs_run"], domain["best_epoch"]) == (1, 1)
    # The run was trained on `cpu`: its reward data default to the larger `cpu_reward`.
    assert report["settings"]["dataset_config"] == "cpu_reward"
    assert domain["normalized_mse"] == pytest.approx(domain["model_mse"] / domain["null_mse"])
    assert len(domain["per_time_step"]["normalized_mse"]) == 3
  # Both runs are scored on the same held-out sequences: the null model's error agrees.
  reports = list(result["reports"].values())
  assert reports[0]["domains"]["task_1"]["null_mse"] == reports[1]["domains"]["task_1"][
      "null_mse"]


# Counterfactual. ------------------------------------------------------------------------------

def test_match_object_keypoints_picks_the_closest_keypoint_on_average():
  positions = np.array([[[0.5, 0.5], [-0.5, 0.0]], [[0.6, 0.5], [-0.5, 0.1]]])  # [T=2, M=2]
  keypoints = np.zeros([2, 3, 3])
  keypoints[:, 0, :2] = [[-0.45, 0.05], [-0.5, 0.1]]  # Follows object 1.
  keypoints[:, 1, :2] = [[0.0, 0.0], [0.0, 0.0]]
  keypoints[:, 2, :2] = [[0.5, 0.4], [0.6, 0.6]]  # Follows object 0 (0.1 away).
  indices, distance = counterfactual.match_object_keypoints(keypoints, positions)
  np.testing.assert_array_equal(indices, [2, 0])
  assert distance[0, 2] == pytest.approx(0.1)
  assert distance[1, 0] == pytest.approx(np.hypot(0.05, 0.05) / 2)
  with pytest.raises(ValueError, match="positions must be"):
    counterfactual.match_object_keypoints(keypoints, positions[:1])


def test_manipulate_keypoints_shift_and_ramp():
  keypoints = np.zeros([3, 2, 3], np.float32)
  keypoints[..., 2] = 0.7
  keypoints[:, 1, 0] = 0.9
  shifted = counterfactual.manipulate_keypoints(keypoints, 1, (0.2, -0.5), "shift")
  np.testing.assert_allclose(shifted[:, 1, :2], [[1.0, -0.5]] * 3)  # x clipped to 1.
  np.testing.assert_array_equal(shifted[:, 0], keypoints[:, 0])
  np.testing.assert_array_equal(shifted[..., 2], keypoints[..., 2])
  ramped = counterfactual.manipulate_keypoints(keypoints, 0, (0.4, 0.2), "ramp")
  np.testing.assert_allclose(ramped[:, 0, :2], [[0.0, 0.0], [0.2, 0.1], [0.4, 0.2]])
  with pytest.raises(ValueError, match="keypoint index"):
    counterfactual.manipulate_keypoints(keypoints, 2, (0.1, 0.1))


def test_displacements_and_sample_spread_are_exact():
  original = np.zeros([2, 1, 2, 3])
  manipulated = original.copy()
  manipulated[:, :, 0, :2] = [0.3, 0.4]
  np.testing.assert_allclose(counterfactual.displacements(original, manipulated),
                             [[[0.5, 0.0]], [[0.5, 0.0]]])
  np.testing.assert_allclose(counterfactual.sample_spread(manipulated), 0.0)
  samples = np.zeros([3, 1, 1, 3])
  samples[1, 0, 0, 0], samples[2, 0, 0, 0] = 1.0, 3.0  # Pairs: 1, 3, 2 -> mean 2.
  np.testing.assert_allclose(counterfactual.sample_spread(samples), [[2.0]])


@pytest.mark.slow
def test_counterfactual_end_to_end(tmp_path):
  run_dir = write_run(tmp_path / "basketball_run", tiny_config("basketball"))
  report = counterfactual.main(["--run_dir", run_dir, "--num_sequences", "2",
                                "--num_samples", "2", "--shift", "0.5", "0.0"],
                               source=fake_basketball_source())
  with open(os.path.join(run_dir, "counterfactual.json")) as f:
    written = json.load(f)
  assert written["task"] == "counterfactual"
  assert written["object_names"] == list(basketball.OBJECT_NAMES)
  assert len(written["sequences"]) == 2 and len(written["figures"]) == 2
  assert all(os.path.isfile(path) for path in written["figures"])
  sequence = written["sequences"][0]
  for key in ("manipulated_keypoint", "input_displacement_mean", "objects",
              "other_keypoints_predicted_mean_displacement", "sequence_index", "figure"):
    assert key in sequence, key
  player = sequence["objects"]["player_1"]
  assert player["keypoint"] == sequence["manipulated_keypoint"]
  assert len(player["displacement_per_step"]) == 8  # 4 observed + 4 predicted.
  summary = written["summary"]
  for key in ("manipulated_object", "other_objects_predicted_mean_displacement",
              "other_keypoints_predicted_mean_displacement",
              "per_object_predicted_mean_displacement", "per_object_predicted_sample_spread"):
    assert key in summary, key
  assert summary["manipulated_object"]["predicted_mean_displacement"] >= 0.0
  assert report["settings"]["shift"] == [0.5, 0.0]


# Bad arguments. -------------------------------------------------------------------------------

@pytest.mark.parametrize("module", [action_recognition, reward_prediction, counterfactual])
def test_missing_run_dir_is_a_clear_error(module, tmp_path):
  missing = str(tmp_path / "no_such_run")
  with pytest.raises(FileNotFoundError, match="--run_dir .*no_such_run.*no such directory"):
    module.main(["--run_dir", missing])
  os.makedirs(missing)
  with pytest.raises(FileNotFoundError, match="no config.json"):
    module.main(["--run_dir", missing])


def test_run_without_checkpoint_is_a_clear_error(tmp_path):
  run_dir = write_run(tmp_path / "untrained", tiny_config("basketball"), with_checkpoint=False)
  with pytest.raises(FileNotFoundError, match="no checkpoint"):
    counterfactual.main(["--run_dir", run_dir])


def test_wrong_dataset_or_model_is_a_clear_error(tmp_path):
  basketball_run = write_run(tmp_path / "b", tiny_config("basketball"), with_checkpoint=False)
  unconditional = write_run(tmp_path / "d", tiny_config("dmcs", action_size=0),
                            with_checkpoint=False)
  cnn = write_run(tmp_path / "c", tiny_config("basketball", representation="features"),
                  with_checkpoint=False)
  with pytest.raises(ValueError, match="trained on DMCS .*got dataset 'basketball'"):
    reward_prediction.main(["--run_dir", basketball_run])
  with pytest.raises(ValueError, match="action-conditional .*action_size 0"):
    reward_prediction.main(["--run_dir", unconditional])
  with pytest.raises(ValueError, match="human-motion data .*got dataset 'basketball'"):
    action_recognition.main(["--run_dir", basketball_run])
  with pytest.raises(ValueError, match="representation is 'features'"):
    counterfactual.main(["--run_dir", cnn])
  with pytest.raises(ValueError, match="--checkpoint was given 2 times for 1 --run_dir"):
    reward_prediction.main(["--run_dir", unconditional, "--checkpoint", "a", "--checkpoint",
                            "b"])


def test_bad_settings_are_clear_errors():
  with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
    action_recognition.Settings(epochs=0).validate()
  with pytest.raises(ValueError, match="holdout_fraction must be a number strictly between"):
    reward_prediction.Settings(holdout_fraction=1.0).validate()
  with pytest.raises(ValueError, match="shift must be two finite numbers"):
    counterfactual.Settings(shift=(0.1,)).validate()


def test_unknown_object_is_a_clear_error(tmp_path):
  run_config = tiny_config("basketball")
  keras.mixed_precision.set_global_policy("float32")
  model = builder.build_model(run_config)
  settings = counterfactual.Settings(object_name="referee", num_sequences=1)
  with pytest.raises(ValueError, match="--object 'referee' is not an object"):
    counterfactual.run_counterfactual(model, run_config.model, fake_basketball_source(),
                                      settings, str(tmp_path))
