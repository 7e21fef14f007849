"""Tests of video_structure/evaluation/tracking.py (numpy only)."""

import json

import numpy as np
import pytest

from video_structure.evaluation import tracking


def test_keypoints_to_features_order_and_shape():
  keypoints = np.arange(2 * 3 * 3, dtype=float).reshape(2, 3, 3)  # (N=2, K=3, 3)
  features = tracking.keypoints_to_features(keypoints)
  assert features.shape == (2, 9)
  np.testing.assert_array_equal(features[0], [0, 1, 2, 3, 4, 5, 6, 7, 8])
  assert tracking.keypoints_to_features(np.zeros((4, 5, 6, 3))).shape == (4, 5, 18)


def test_keypoints_to_features_bad_shape():
  with pytest.raises(ValueError, match="keypoints"):
    tracking.keypoints_to_features(np.zeros((4, 2)))


def _keypoints_from_positions(positions, mixing, offset):
  """Keypoints (N, T, K, 3) that are an exact affine function of positions (N, T, M, 2);
  mu is a constant 1, collinear with the bias on purpose."""
  num_examples, num_steps = positions.shape[:2]
  xy = positions.reshape(num_examples, num_steps, -1) @ mixing + offset
  xy = xy.reshape(num_examples, num_steps, -1, 2)
  return np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1)


def test_regression_recovers_exact_linear_map():
  rng = np.random.default_rng(0)
  num_objects, num_keypoints = 2, 4
  mixing = rng.normal(size=(2 * num_objects, 2 * num_keypoints))
  offset = rng.normal(size=(2 * num_keypoints,))
  train_positions = rng.uniform(-1, 1, size=(6, 5, num_objects, 2))
  train_keypoints = _keypoints_from_positions(train_positions, mixing, offset)
  regressor = tracking.fit_keypoint_regressor(train_keypoints, train_positions)
  assert regressor.weights.shape == (3 * num_keypoints + 1, 2 * num_objects)

  test_positions = rng.uniform(-1, 1, size=(3, 5, num_objects, 2))
  test_keypoints = _keypoints_from_positions(test_positions, mixing, offset)
  predicted = tracking.predict_positions(regressor, test_keypoints, num_objects=num_objects)
  assert predicted.shape == (3, 5, num_objects, 2)
  assert np.max(tracking.object_errors(predicted, test_positions)) < 1e-6
  train_predicted = tracking.predict_positions(regressor, train_keypoints, num_objects=num_objects)
  assert np.max(np.abs(train_predicted - train_positions)) < 1e-6


def test_regression_exact_without_ridge():
  rng = np.random.default_rng(3)
  features = rng.normal(size=(20, 3))
  true_weights = np.array([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]])
  targets = features @ true_weights + np.array([0.25, -1.5])
  regressor = tracking.LinearRegressor.fit(features, targets, ridge=0.0)
  np.testing.assert_allclose(regressor.weights[:-1], true_weights, atol=1e-12)
  np.testing.assert_allclose(regressor.weights[-1], [0.25, -1.5], atol=1e-12)


def test_predict_shapes():
  rng = np.random.default_rng(1)
  regressor = tracking.LinearRegressor.fit(rng.normal(size=(30, 6)), rng.normal(size=(30, 4)))
  assert regressor.predict(np.zeros(6)).shape == (4,)
  assert regressor.predict(np.zeros((7, 6))).shape == (7, 4)
  assert regressor.predict(np.zeros((2, 3, 6))).shape == (2, 3, 4)
  # K=2 keypoints (6 features), M=2 objects (4 targets).
  assert tracking.predict_positions(regressor, np.zeros((5, 2, 3)), 2).shape == (5, 2, 2)
  assert tracking.predict_positions(regressor, np.zeros((4, 5, 2, 3)), 2).shape == (4, 5, 2, 2)


def test_predict_bad_shapes():
  rng = np.random.default_rng(1)
  regressor = tracking.LinearRegressor.fit(rng.normal(size=(30, 6)), rng.normal(size=(30, 4)))
  with pytest.raises(ValueError, match="features"):
    regressor.predict(np.zeros((3, 5)))
  with pytest.raises(ValueError, match="num_objects"):
    tracking.predict_positions(regressor, np.zeros((5, 2, 3)), 3)
  with pytest.raises(ValueError, match="keypoints"):
    tracking.predict_positions(regressor, np.zeros((5, 3, 3)), 2)


def test_regressor_dict_round_trip_through_json():
  rng = np.random.default_rng(2)
  regressor = tracking.LinearRegressor.fit(rng.normal(size=(10, 3)), rng.normal(size=(10, 2)),
                                           ridge=1e-3)
  restored = tracking.LinearRegressor.from_dict(json.loads(json.dumps(regressor.to_dict())))
  np.testing.assert_array_equal(restored.weights, regressor.weights)
  assert restored.ridge == 1e-3
  features = rng.normal(size=(4, 3))
  np.testing.assert_array_equal(restored.predict(features), regressor.predict(features))
  bad = regressor.to_dict()
  bad["num_features"] = 5
  with pytest.raises(ValueError, match="num_features"):
    tracking.LinearRegressor.from_dict(bad)


def test_fit_too_few_samples_raises_only_without_ridge():
  features = np.zeros((3, 4))  # 3 rows < 4 features + 1 bias
  targets = np.zeros((3, 2))
  with pytest.raises(ValueError, match="too few samples"):
    tracking.LinearRegressor.fit(features, targets, ridge=0.0)
  regressor = tracking.LinearRegressor.fit(features, targets, ridge=1e-6)
  assert regressor.weights.shape == (5, 2)


def test_fit_bad_inputs():
  with pytest.raises(ValueError, match="same number of rows"):
    tracking.LinearRegressor.fit(np.zeros((5, 2)), np.zeros((4, 1)))
  with pytest.raises(ValueError, match="features"):
    tracking.LinearRegressor.fit(np.zeros(5), np.zeros((5, 1)))
  with pytest.raises(ValueError, match="ridge"):
    tracking.LinearRegressor.fit(np.zeros((5, 2)), np.zeros((5, 1)), ridge=-1.0)
  with pytest.raises(ValueError, match="non-finite"):
    tracking.LinearRegressor.fit(np.full((5, 2), np.nan), np.zeros((5, 1)))
  with pytest.raises(ValueError, match=r"\(N, T\)"):
    tracking.fit_keypoint_regressor(np.zeros((2, 3, 4, 3)), np.zeros((2, 4, 1, 2)))
  with pytest.raises(ValueError, match="positions"):
    tracking.fit_keypoint_regressor(np.zeros((2, 3, 4, 3)), np.zeros((2, 3, 1, 3)))
  with pytest.raises(ValueError, match="keypoints"):
    tracking.fit_keypoint_regressor(np.zeros((2, 3, 4, 2)), np.zeros((2, 3, 1, 2)))


def test_object_errors_exact():
  predicted = np.array([[[0.0, 0.0], [1.0, 1.0]]])
  true = np.array([[[3.0, 4.0], [1.0, 1.0]]])
  np.testing.assert_array_equal(tracking.object_errors(predicted, true), [[5.0, 0.0]])
  with pytest.raises(ValueError, match="same shape"):
    tracking.object_errors(np.zeros((2, 2)), np.zeros((3, 2)))


def test_error_summary_of_a_constant_offset():
  rng = np.random.default_rng(0)
  true = rng.uniform(-0.8, 0.8, size=(3, 4, 2, 2))
  predicted = true.copy()
  predicted[..., 0] += 0.1
  errors = tracking.object_errors(predicted, true)  # [N=3, T=4, M=2]
  summary = tracking.error_summary(errors, image_size=64, object_names=["ball", "player"],
                                   num_observed=2)
  json.dumps(summary)  # serialisable
  assert tracking.pixels_per_unit(64) == 31.5
  assert summary["mean"]["coords"] == pytest.approx(0.1, abs=1e-12)
  assert summary["mean"]["pixels"] == pytest.approx(3.15, abs=1e-12)
  assert summary["mean"]["percent_of_width"] == pytest.approx(4.921875, abs=1e-12)
  assert set(summary["per_object_mean"]) == {"ball", "player"}
  assert summary["per_object_mean"]["ball"]["pixels"] == pytest.approx(3.15, abs=1e-12)
  assert len(summary["per_time_step"]["pixels"]) == 4
  np.testing.assert_allclose(summary["per_time_step"]["percent_of_width"], [4.921875] * 4,
                             atol=1e-12)
  np.testing.assert_allclose(summary["per_object_per_time_step"]["player"]["coords"],
                             [0.1] * 4, atol=1e-12)
  assert summary["mean_observed"]["coords"] == pytest.approx(0.1, abs=1e-12)
  assert summary["mean_predicted"]["pixels"] == pytest.approx(3.15, abs=1e-12)


def test_error_summary_per_object_and_time():
  true = np.zeros((1, 2, 2, 2))
  predicted = np.zeros((1, 2, 2, 2))
  predicted[0, 0, 0] = [0.3, 0.4]  # error 0.5 for object 0 at t=0
  predicted[0, 1, 1] = [0.0, 1.0]  # error 1.0 for object 1 at t=1
  summary = tracking.error_summary(tracking.object_errors(predicted, true), image_size=3,
                                   object_names=["object_0", "object_1"],
                                   num_observed=1)  # 1 unit = 1 px
  assert summary["per_object_mean"]["object_0"]["coords"] == pytest.approx(0.25)
  assert summary["per_object_mean"]["object_1"]["pixels"] == pytest.approx(0.5)
  assert summary["per_time_step"]["coords"] == pytest.approx([0.25, 0.5])
  assert summary["mean"]["percent_of_width"] == pytest.approx(0.375 / 3 * 100)
  assert summary["mean_observed"]["coords"] == pytest.approx(0.25)
  assert summary["mean_predicted"]["coords"] == pytest.approx(0.5)
  assert summary["per_object_mean_predicted"]["object_1"]["pixels"] == pytest.approx(1.0)
  # No predicted steps: no predicted means.
  assert "mean_predicted" not in tracking.error_summary(np.ones((1, 2, 1)), 3, ["a"], 2)


def test_error_summary_bad_inputs():
  with pytest.raises(ValueError, match="object_names must have M=2 entries"):
    tracking.error_summary(np.zeros((1, 2, 2)), 64, ["a"], 1)
  with pytest.raises(ValueError, match="object_names must be unique"):
    tracking.error_summary(np.zeros((1, 2, 2)), 64, ["a", "a"], 1)
  with pytest.raises(ValueError, match="image_size must be an integer >= 2"):
    tracking.error_summary(np.zeros((1, 2, 2)), 1, ["a", "b"], 1)
  with pytest.raises(ValueError, match=r"errors must have shape \(N, T, M\)"):
    tracking.error_summary(np.zeros((2, 2)), 64, ["a", "b"], 1)


def test_prediction_summary_in_pixels():
  best = np.zeros((2, 3, 2))
  best[:, -1, 1] = 1.0  # Object 1 one unit off at the last predicted step.
  repeat = np.full((2, 3, 2), 2.0)
  summary = tracking.prediction_summary(best, repeat, image_size=5)  # 1 unit = 2 px
  assert summary["best_of_samples_px_per_step"] == [0.0, 0.0, 1.0]
  assert summary["best_of_samples_px_last_step_per_object"] == [0.0, 2.0]
  assert summary["best_of_samples_px_last_step"] == 1.0
  assert summary["repeat_last_px_per_step"] == [4.0] * 3
  assert summary["repeat_last_px_last_step"] == 4.0


def _hand_made_errors():
  # errors[s, n, t, m] with S=3, N=2, T=2, M=2.
  errors = np.zeros((3, 2, 2, 2))
  # example 0
  errors[0, 0] = [[1.0, 9.0], [1.0, 9.0]]  # object 0 good, object 1 bad; mean 5
  errors[1, 0] = [[8.0, 2.0], [8.0, 2.0]]  # object 0 bad, object 1 good; mean 5
  errors[2, 0] = [[4.0, 4.0], [4.0, 4.0]]  # mean 4: best overall
  # example 1: per time step the minimum comes from different samples
  errors[0, 1] = [[0.0, 3.0], [6.0, 3.0]]  # object 0 mean 3, object 1 mean 3; mean 3
  errors[1, 1] = [[2.0, 1.0], [2.0, 5.0]]  # object 0 mean 2, object 1 mean 3; mean 2.5
  errors[2, 1] = [[5.0, 5.0], [0.0, 0.0]]  # object 0 mean 2.5, object 1 mean 2.5; mean 3
  return errors


def test_best_of_samples_per_object():
  best = tracking.best_of_samples(_hand_made_errors(), per_object=True)
  assert best.shape == (2, 2, 2)
  # example 0: object 0 from sample 0, object 1 from sample 1.
  np.testing.assert_array_equal(best[0], [[1.0, 2.0], [1.0, 2.0]])
  # example 1: object 0 from sample 1 (mean 2), object 1 from sample 2 (mean 2.5); whole
  # trajectories are kept, not per-time-step minima.
  np.testing.assert_array_equal(best[1], [[2.0, 5.0], [2.0, 0.0]])


def test_best_of_samples_joint():
  best = tracking.best_of_samples(_hand_made_errors(), per_object=False)
  np.testing.assert_array_equal(best[0], [[4.0, 4.0], [4.0, 4.0]])  # sample 2
  np.testing.assert_array_equal(best[1], [[2.0, 1.0], [2.0, 5.0]])  # sample 1


def test_best_of_samples_time_steps_of_interest_and_ties():
  errors = _hand_made_errors()
  # Score only t=1: example 1 -> sample 2 (mean 0) for both rules.
  joint = tracking.best_of_samples(errors, per_object=False, time_steps=[1])
  np.testing.assert_array_equal(joint[1], [[5.0, 5.0], [0.0, 0.0]])
  same = tracking.best_of_samples(errors, per_object=False, time_steps=np.array([False, True]))
  np.testing.assert_array_equal(same, joint)
  sliced = tracking.best_of_samples(errors, per_object=True, time_steps=slice(1, None))
  np.testing.assert_array_equal(sliced[1], [[5.0, 5.0], [0.0, 0.0]])
  # Ties (equal mean error) go to the lowest sample index.
  tied = np.array([[[[1.0], [3.0]]], [[[3.0], [1.0]]]])  # (S=2, N=1, T=2, M=1), both mean 2
  np.testing.assert_array_equal(tracking.best_of_samples(tied, per_object=True), [[[1.0], [3.0]]])
  np.testing.assert_array_equal(tracking.best_of_samples(tied, per_object=False), [[[1.0], [3.0]]])


def test_best_of_samples_bad_inputs():
  with pytest.raises(ValueError, match="errors"):
    tracking.best_of_samples(np.zeros((3, 2, 2)), per_object=True)
  with pytest.raises(ValueError, match="per_object"):
    tracking.best_of_samples(np.zeros((3, 2, 2, 2)), per_object="yes")
  with pytest.raises(ValueError, match="time_steps"):
    tracking.best_of_samples(np.zeros((3, 2, 2, 2)), per_object=True, time_steps=[5])
  with pytest.raises(ValueError, match="time_steps"):
    tracking.best_of_samples(np.zeros((3, 2, 2, 2)), per_object=True, time_steps=[])


def test_repeat_last_observed_exact():
  keypoints = np.arange(2 * 3 * 2 * 3, dtype=float).reshape(2, 3, 2, 3)
  future = tracking.repeat_last_observed(keypoints, 4)
  assert future.shape == (2, 4, 2, 3)
  for t in range(4):
    np.testing.assert_array_equal(future[:, t], keypoints[:, 2])
  np.testing.assert_array_equal(future[1, 3, 1], [33.0, 34.0, 35.0])
  with pytest.raises(ValueError, match="num_future"):
    tracking.repeat_last_observed(keypoints, 0)
  with pytest.raises(ValueError, match="keypoints"):
    tracking.repeat_last_observed(keypoints[0], 2)


# ---------------------------------------------------------------------------
# Objects out of view: fitted and scored on the frames where they are in view.


def test_in_view_exact():
  positions = np.array([[[0.0, 0.0], [1.0, -1.0], [1.01, 0.0], [0.0, -1.5]]])
  np.testing.assert_array_equal(tracking.in_view(positions), [[True, True, False, False]])


def _leaving_object_data(seed=0):
  """Two objects; the second is out of view (|x| > 1) in a third of the frames, where the
  keypoints follow a clipped copy of it (what a detector sees of an object that left)."""
  rng = np.random.default_rng(seed)
  positions = rng.uniform(-0.9, 0.9, size=(12, 6, 2, 2))
  positions[:4, :, 1, 0] = rng.uniform(1.2, 2.0, size=(4, 6))
  seen = np.clip(positions, -1.0, 1.0)
  mixing = rng.normal(size=(4, 6))
  return positions, _keypoints_from_positions(seen, mixing, rng.normal(size=(6,)))


def test_regression_fits_each_object_on_its_frames_in_view():
  positions, keypoints = _leaving_object_data()
  regressor = tracking.fit_keypoint_regressor(keypoints, positions)
  predicted = tracking.predict_positions(regressor, keypoints, num_objects=2)
  visible = tracking.in_view(positions)
  errors = tracking.object_errors(predicted, positions)
  assert visible.mean() == pytest.approx(1 - 4 / 12 / 2)
  # Exact where in view (the map is linear there), for both objects.
  assert np.max(errors[visible]) < 1e-5
  # Pooling every frame, as the plain protocol would, spoils the fit of the leaving object
  # even on its frames in view.
  features = tracking.keypoints_to_features(keypoints).reshape(-1, 9)
  pooled = tracking.LinearRegressor.fit(features, positions.reshape(-1, 4))
  pooled_errors = tracking.object_errors(pooled.predict(features).reshape(positions.shape),
                                         positions)
  assert np.mean(pooled_errors[visible]) > 1e-2 > 1e3 * np.mean(errors[visible])


def test_regression_all_in_view_is_the_single_pooled_fit():
  rng = np.random.default_rng(5)
  positions = rng.uniform(-1, 1, size=(5, 4, 3, 2))
  keypoints = np.concatenate([rng.normal(size=(5, 4, 4, 2)), rng.uniform(size=(5, 4, 4, 1))],
                             axis=-1)
  regressor = tracking.fit_keypoint_regressor(keypoints, positions)
  pooled = tracking.LinearRegressor.fit(tracking.keypoints_to_features(keypoints).reshape(-1, 12),
                                        positions.reshape(-1, 6))
  np.testing.assert_array_equal(regressor.weights, pooled.weights)


def test_regression_raises_for_an_object_never_in_view():
  positions, keypoints = _leaving_object_data()
  positions[:, :, 1, 0] = 3.0
  with pytest.raises(ValueError, match="object 1 is never in view"):
    tracking.fit_keypoint_regressor(keypoints, positions)


def test_error_summary_skips_frames_out_of_view():
  errors = np.array([[[1.0, 2.0], [3.0, 4.0]]])  # N=1, T=2, M=2
  visible = np.array([[[True, False], [True, True]]])
  summary = tracking.error_summary(tracking.masked_errors(errors, visible), image_size=3,
                                   object_names=["a", "b"], num_observed=1)
  # One coordinate unit is one pixel at image_size 3.
  assert summary["mean"]["pixels"] == pytest.approx((1 + 3 + 4) / 3)
  assert summary["per_object_mean"]["b"]["pixels"] == pytest.approx(4.0)
  assert summary["per_time_step"]["pixels"] == pytest.approx([1.0, 3.5])
  assert summary["mean_observed"]["pixels"] == pytest.approx(1.0)
  # No frame in view at all: NaN (null in the JSON), not an error.
  never = tracking.error_summary(tracking.masked_errors(errors, np.zeros_like(visible)), 3,
                                 ["a", "b"], 1)
  assert np.isnan(never["mean"]["pixels"])


def test_best_of_samples_scores_only_frames_in_view():
  errors = np.array([[[[1.0], [9.0]]], [[[2.0], [3.0]]]])  # S=2, N=1, T=2, M=1
  # Scored over both frames sample 1 wins (2.5 < 5); with the second frame out of view,
  # sample 0 (1 < 2).
  np.testing.assert_array_equal(tracking.best_of_samples(errors, per_object=True), [[[2.0], [3.0]]])
  masked = tracking.masked_errors(errors, np.array([[[True], [False]]]))
  best = tracking.best_of_samples(masked, per_object=True)
  assert best[0, 0, 0] == 1.0 and np.isnan(best[0, 1, 0])
  with pytest.raises(ValueError, match="infinite"):
    tracking.best_of_samples(np.full((2, 1, 2, 1), np.inf), per_object=True)


def test_keypoint_matching_ignores_frames_out_of_view():
  positions = np.array([[[[0.5, 0.0]], [[3.0, 0.0]]]])  # N=1, T=2, M=1; out of view at t=1
  keypoints = np.array([[[[0.5, 0.0, 1.0], [1.0, 0.0, 1.0]],
                         [[-1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]]])  # K=2
  # Over both frames keypoint 1 is closer on average (1.25 vs 2.0); in view only, 0 (0 vs 0.5).
  np.testing.assert_array_equal(tracking.match_keypoints_to_objects(keypoints, positions), [0])
