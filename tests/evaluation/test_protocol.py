"""Tests of the evaluation protocol (`evaluation/protocol.py` and the modules it drives) with
test doubles of the model (exact numbers, no training):
* `LinearFakeModel`: its frames carry the object positions in their first pixel row; `detect`
  returns keypoints that are an exact affine function of them, and `predict_future`
  extrapolates the positions linearly (plus a known per-sample offset), so every tracking
  error is known in closed form.
* `OracleCalls`: returns the true future frames plus a known brightness offset per sample, so
  PSNR is known in closed form.
The FVD uses a tiny stand-in embedding (no I3D). evaluate.py on a trained run:
test_evaluate_script.py.
"""

import io
import json
import math
import os
import types

import numpy as np
import pytest
import tensorflow as tf

from video_structure.data import sources
from video_structure.data import windows
from video_structure.evaluation import data as data_lib
from video_structure.evaluation import feature_metric
from video_structure.evaluation import frame_metrics
from video_structure.evaluation import fvd
from video_structure.evaluation import model_calls
from video_structure.evaluation import protocol
from video_structure.evaluation import report as report_lib
from video_structure.evaluation import tracking
from video_structure.model import ops

IMAGE_SIZE, WINDOW, NUM_OBSERVED, NUM_OBJECTS, NUM_KEYPOINTS = 16, 16, 8, 2, 3
NUM_PREDICTED = WINDOW - NUM_OBSERVED


# Test doubles. ------------------------------------------------------------------------------

def code_to_position(codes):
  """uint8 code u -> coordinate (u / 255 - 0.5) * 2 (inside the frame, [-1, 1]): exactly what
  the fake model decodes from a frame value u / 255 - 0.5, so positions survive the uint8 round
  trip exactly."""
  return (np.asarray(codes, np.float64) / 255.0 - 0.5) * 2.0


def make_windows(num_windows, seed=0):
  """uint8 frames `[N, 16, 16, 16, 3]` and float positions `[N, 16, 2, 2]`: objects moving
  linearly by an integer number of codes per step; row 0, pixels 0..3 of channel 0 hold the
  codes of (x0, y0, x1, y1); the rest is a static random texture in [50, 200]."""
  rng = np.random.default_rng(seed)
  start = rng.integers(70, 186, [num_windows, 1, NUM_OBJECTS * 2])
  velocity = rng.integers(-3, 4, [num_windows, 1, NUM_OBJECTS * 2])
  codes = start + velocity * np.arange(WINDOW)[None, :, None]  # [N, T, 2M], in [25, 231]
  frames = np.repeat(rng.integers(50, 201, [num_windows, 1, IMAGE_SIZE, IMAGE_SIZE, 3]),
                     WINDOW, axis=1).astype(np.uint8)
  frames[:, :, 0, :NUM_OBJECTS * 2, 0] = codes
  positions = code_to_position(codes).reshape(num_windows, WINDOW, NUM_OBJECTS, 2)
  return frames, positions.astype(np.float32)


class LinearFakeModel:
  """The inference interface with keypoints = affine(positions) (see the module docstring).

  `sample_offsets[s, m]` is added to the x coordinate of object m at every predicted step of
  sample s.
  """

  def __init__(self, sample_offsets=None, seed=1):
    rng = np.random.default_rng(seed)
    self.weights = rng.normal(size=[NUM_OBJECTS * 2, NUM_KEYPOINTS * 3])  # rank 4: invertible
    self.bias = rng.normal(size=[NUM_KEYPOINTS * 3])
    self.sample_offsets = sample_offsets
    self.config = types.SimpleNamespace(observed_steps=NUM_OBSERVED, image_size=IMAGE_SIZE,
                                        representation="keypoints")

  def positions(self, frames):
    values = np.asarray(frames, np.float64)[:, :, 0, :NUM_OBJECTS * 2, 0]
    return values * 2.0  # [B, T, 2M]

  def keypoints(self, flat_positions):
    keypoints = flat_positions @ self.weights + self.bias
    return keypoints.reshape(keypoints.shape[:-1] + (NUM_KEYPOINTS, 3)).astype(np.float32)

  def detect(self, frames):
    return tf.constant(self.keypoints(self.positions(frames))), None

  def predict_future(self, observed_frames, num_predicted, num_samples=1, actions=None,
                     decode_frames=True, seed=None):
    observed = self.positions(observed_frames)  # [B, n, 2M]
    velocity = observed[:, -1] - observed[:, -2]
    steps = np.arange(1, num_predicted + 1)[None, :, None]
    future = observed[:, -1:] + steps * velocity[:, None]
    offsets = (np.zeros([num_samples, NUM_OBJECTS]) if self.sample_offsets is None
               else np.asarray(self.sample_offsets, np.float64)[:num_samples])
    positions = np.repeat(np.concatenate([observed, future], axis=1)[None], num_samples, 0)
    for m in range(NUM_OBJECTS):
      positions[:, :, observed.shape[1]:, 2 * m] += offsets[:, m, None, None]
    result = {"keypoints": tf.constant(self.keypoints(positions))}
    if decode_frames:
      last = np.asarray(observed_frames)[:, -1:]
      frames = np.repeat(np.repeat(last, observed.shape[1] + num_predicted, 1)[None],
                         num_samples, 0).copy()
      frames[:, :, :, 0, :NUM_OBJECTS * 2, 0] = np.clip(positions / 2.0, -0.5, 0.5)
      result["frames"] = tf.constant(frames.astype(np.float32))
    return result


class OracleCalls:
  """`ModelCalls` double whose samples are the true windows plus `offsets[s]` in every pixel
  (model range). The sample index within the whole set is recovered from the seed, so sample
  chunks of several calls line up (see `video_evaluation`)."""

  def __init__(self, windows_uint8, offsets):
    self.windows = windows_uint8
    self.offsets = np.asarray(offsets, np.float32)

  def predict(self, observed_uint8, num_predicted, num_samples, decode_frames, seed):
    index = [int(np.flatnonzero(np.all(self.windows[:, :len(observed)] == observed[None],
                                       axis=(1, 2, 3, 4)))[0]) for observed in observed_uint8]
    truth = ops.frames_to_model(self.windows[index]).numpy()  # [B, L, H, W, 3]
    first = int(seed[1]) % 1000
    offsets = self.offsets[first:first + num_samples]
    frames = truth[None] + offsets[:, None, None, None, None, None]
    keypoints = np.zeros(frames.shape[:3] + (1, 3), np.float32)
    return {"keypoints": keypoints, "frames": frames}


def standin_embedding(frames, training=False):
  """A tiny FVD embedding: per-clip mean colour of every frame, `[B, T * 3]`."""
  del training
  means = tf.reduce_mean(frames, axis=[2, 3])
  return tf.reshape(means, [tf.shape(frames)[0], -1])


def fake_data(num_train=12, num_test=10):
  train_frames, train_positions = make_windows(num_train, seed=0)
  test_frames, test_positions = make_windows(num_test, seed=1)
  return data_lib.EvaluationData(train_frames, train_positions, test_frames, test_positions,
                                   ("ball", "player"), "test", "per_object")


def small_settings(**overrides):
  values = dict(num_observed=NUM_OBSERVED, num_video_windows=4, num_video_samples=3,
                num_tracking_samples=3, fvd_clips=0, num_diversity_examples=2,
                num_diversity_samples=3, num_figure_examples=2, batch_size=4,
                sequences_per_call=64)
  values.update(overrides)
  return protocol.EvaluationSettings(**values)


def quiet_run(*args, **kwargs):
  stream = io.StringIO()
  report = protocol.run_evaluation(*args, stream=stream, **kwargs)
  return report, stream.getvalue()


# Pure helpers. -------------------------------------------------------------------------------

def test_closest_and_furthest_choose_whole_samples_by_the_selected_steps():
  # [S=3, B=2, T=3]; the choice uses steps 1 and 2 only.
  scores = np.array([
      [[9.0, 0.1, 0.2], [0.0, 0.5, 0.5]],
      [[0.0, 0.4, 0.3], [0.0, 0.5, 0.5]],
      [[0.0, 0.9, 0.0], [9.0, 0.2, 0.1]],
  ])
  result = frame_metrics.closest_and_furthest(scores, slice(1, None))
  # Example 0: means over steps 1-2 are 0.15, 0.35, 0.45 -> closest 2, furthest 0.
  # Example 1: 0.5, 0.5 (tie -> lowest index 0), 0.15 -> closest 0, furthest 2.
  assert result["closest_index"].tolist() == [2, 0]
  assert result["furthest_index"].tolist() == [0, 2]
  np.testing.assert_array_equal(result["closest"], [[0.0, 0.9, 0.0], [0.0, 0.5, 0.5]])
  np.testing.assert_array_equal(result["furthest"], [[9.0, 0.1, 0.2], [9.0, 0.2, 0.1]])
  # Selecting on all steps changes example 0 (sample 0's 9.0 counts).
  assert frame_metrics.closest_and_furthest(scores)["closest_index"].tolist() == [0, 2]


def test_metric_curves_report_both_reductions():
  scores = np.array([[[1.0, 4.0]], [[3.0, 2.0]]])  # [S=2, B=1, T=2]
  curves, selection = frame_metrics.metric_curves(scores, num_observed=1)
  assert selection["closest_index"].tolist() == [0]  # Step 1 (predicted): 4 > 2.
  assert curves["closest"] == [1.0, 4.0] and curves["furthest"] == [3.0, 2.0]
  assert curves["closest_per_step"] == [3.0, 4.0] and curves["furthest_per_step"] == [1.0, 2.0]
  assert curves["sample_mean"] == [2.0, 3.0]


def test_closest_and_furthest_bad_input():
  with pytest.raises(ValueError, match=r"scores must have shape \[S, B, T\]"):
    frame_metrics.closest_and_furthest(np.zeros([2, 3]))
  with pytest.raises(ValueError, match="NaN"):
    frame_metrics.closest_and_furthest(np.full([1, 1, 1], np.nan))
  with pytest.raises(ValueError, match="selection_steps must select at least one"):
    frame_metrics.closest_and_furthest(np.zeros([1, 1, 2]), slice(5, None))


def test_evenly_spaced_indices():
  indices = protocol.evenly_spaced_indices(600, 128)
  assert len(indices) == 128 and indices[0] == 0 and indices[-1] == 599
  assert len(np.unique(indices)) == 128
  assert protocol.evenly_spaced_indices(5, 10).tolist() == [0, 1, 2, 3, 4]
  assert protocol.evenly_spaced_indices(7, 3).tolist() == [0, 3, 6]


def test_uint8_frames_survive_the_model_range_round_trip():
  # The evaluation holds windows as uint8 and hands the model u / 255 - 0.5 (ops): exact.
  codes = np.arange(256, dtype=np.uint8)
  np.testing.assert_array_equal(ops.frames_to_uint8(ops.frames_to_model(codes)).numpy(), codes)
  # Decoded frames: clipped, then rounded half to even (0.0 -> 127.5 -> 128; 0.1 -> 153).
  frames = np.array([-0.5, 0.5, 0.0, -1.0, 2.0, 0.1], np.float32)
  np.testing.assert_array_equal(ops.frames_to_uint8(frames).numpy(), [0, 255, 128, 0, 255, 153])


def test_match_keypoints_to_objects():
  positions = np.array([[[[0.5, 0.5], [-0.5, 0.0]]]])  # [N=1, T=1, M=2, 2]
  keypoints = np.array([[[[-0.4, 0.1, 1.0], [0.9, 0.9, 1.0], [0.5, 0.4, 0.0]]]])  # K=3
  assert tracking.match_keypoints_to_objects(keypoints, positions).tolist() == [2, 0]


def test_phase_progress_prints_quarters_and_times_phases():
  stream = io.StringIO()
  progress = report_lib.PhaseProgress(["a", "b"], stream)
  progress.start("b", 8, "eight steps")
  for done in range(1, 9):
    progress.update(done)
  progress.end("finished")
  lines = stream.getvalue().splitlines()
  assert lines[0] == "[2/2] b: eight steps"
  assert [line.split("| ")[1].split()[0] for line in lines[1:-1]] == ["2/8", "4/8", "6/8",
                                                                      "8/8"]
  assert lines[-1].startswith("[2/2] b done in 0:00: finished")
  assert set(progress.seconds) == {"b"}
  with pytest.raises(ValueError, match="Unknown phase 'c'"):
    progress.start("c")


def test_settings_validation_names_the_setting():
  with pytest.raises(ValueError, match="num_video_samples must be an integer >= 1, got 0"):
    small_settings(num_video_samples=0).validate()
  with pytest.raises(ValueError, match="fvd_clips must be 0 \\(all\\) or >= 2"):
    small_settings(fvd_clips=1).validate()
  with pytest.raises(ValueError, match="best_sample_rule must be None or one of"):
    small_settings(best_sample_rule="best").validate()
  with pytest.raises(ValueError, match=r"num_diversity_samples \(5\) must be <= "
                                       r"num_tracking_samples \(3\)"):
    small_settings(num_diversity_samples=5).validate()
  with pytest.raises(ValueError, match="vgg_layers must be names from"):
    small_settings(vgg_layers=("fc1",)).validate()
  with pytest.raises(ValueError, match="lpips_nets must be distinct names from"):
    small_settings(lpips_nets=("vgg",)).validate()
  with pytest.raises(ValueError, match="lpips_nets must be distinct names from"):
    small_settings(lpips_nets=("alexnet", "alexnet")).validate()


def test_a_data_source_feeds_the_evaluation_data():
  frames, positions = make_windows(5)
  sequences = windows.dataset_from_arrays(frames, positions)
  source = sources.DataSource("arrays", sequences, sequences, ("a", "b"),
                              best_of_samples_per_object=False, num_video_samples=7)
  config = types.SimpleNamespace(dataset="arrays", sequence_length=WINDOW)
  loaded = data_lib.load_evaluation_data(config, "unused", num_train_windows=3,
                                         num_test_windows=10, source=source, batch_size=2)
  assert loaded.train_frames.shape == (3, WINDOW, IMAGE_SIZE, IMAGE_SIZE, 3)
  assert loaded.test_frames.dtype == np.uint8 and len(loaded.test_frames) == 5
  np.testing.assert_array_equal(loaded.test_frames, frames)  # uint8 -> float -> uint8 exact.
  np.testing.assert_allclose(loaded.test_positions, positions)
  assert loaded.object_names == ("a", "b") and loaded.best_sample_rule == "mean"
  # The dataset's rule and number of decoded samples fill the settings left to the data.
  resolved = small_settings(num_video_samples=None).resolve(loaded)
  assert resolved.best_sample_rule == "mean" and resolved.num_video_samples == 7
  assert small_settings(best_sample_rule="per_object").resolve(loaded).best_sample_rule == \
      "per_object"


def test_evaluation_data_validation():
  data = fake_data()
  data.test_positions = data.test_positions[:, :, :1]
  with pytest.raises(ValueError, match="object_names has 2 names for 1 objects"):
    data.validate()
  data = fake_data()
  data.train_frames = data.train_frames.astype(np.float32)
  with pytest.raises(ValueError, match="train_frames must be a non-empty uint8 array"):
    data.validate()
  data = fake_data()
  data.train_positions = None
  with pytest.raises(ValueError, match="both the train and the test windows, or for neither"):
    data.validate()


# Tracking through the evaluation path. ------------------------------------------------------

def expected_repeat_last_coords(positions):
  """Per time step: mean over windows and objects of |p_t - p_{n-1}| (0 at observed steps)."""
  distance = np.linalg.norm(positions - positions[:, NUM_OBSERVED - 1:NUM_OBSERVED], axis=-1)
  distance[:, :NUM_OBSERVED] = 0.0
  return distance.mean(axis=(0, 2))


def test_regression_error_is_zero_for_keypoints_linear_in_the_positions(tmp_path):
  data = fake_data()
  report, output = quiet_run(LinearFakeModel(), data, small_settings(), str(tmp_path),
                             feature_metrics=None, fvd_model=None)
  tracking_report = report["tracking"]
  for which in ("detected", "best_of_samples"):
    np.testing.assert_allclose(tracking_report[which]["per_time_step"]["coords"],
                               np.zeros(WINDOW), atol=1e-5, err_msg=which)
  np.testing.assert_allclose(tracking_report["repeat_last"]["per_time_step"]["coords"],
                             expected_repeat_last_coords(data.test_positions.astype(np.float64)),
                             atol=1e-5)
  pixels = tracking_report["repeat_last"]["per_time_step"]["pixels"]
  np.testing.assert_allclose(pixels, np.array(tracking_report["repeat_last"]["per_time_step"][
      "coords"]) * (IMAGE_SIZE - 1) / 2)
  assert tracking_report["num_samples"] == 3 and tracking_report["object_names"] == ["ball",
                                                                                      "player"]
  repeat_last_pixels = expected_repeat_last_coords(
      data.test_positions.astype(np.float64))[-1] * (IMAGE_SIZE - 1) / 2
  assert (f"Prediction {NUM_PREDICTED} steps ahead after {NUM_OBSERVED} observed: best of 3 "
          f"samples 0.00 px vs repeat-last {repeat_last_pixels:.2f} px") in \
      report_lib.summary_lines(report)
  assert "[3/6] tracking" in output


@pytest.mark.parametrize("rule, expected", [("per_object", 0.0), ("mean", 0.1)])
def test_best_sample_rule_per_object_or_by_mean(tmp_path, rule, expected):
  # Sample 0 is 0.1 off for both objects; sample 1 exact for object 0, 0.3 off for object 1;
  # sample 2 0.2 off for object 0, exact for object 1. Per object: 0 for both. By the mean:
  # samples 0 and 2 tie at 0.1 -> sample 0 (lowest index), 0.1 for both objects.
  offsets = np.array([[0.1, 0.1], [0.0, 0.3], [0.2, 0.0]])
  data = fake_data()
  calls = model_calls.ModelCalls(LinearFakeModel(offsets))
  train_keypoints = calls.detect(data.train_frames)
  test_keypoints = calls.detect(data.test_frames)
  regressor = tracking.fit_keypoint_regressor(train_keypoints, data.train_positions)
  report, kept = tracking.tracking_evaluation(
      calls, regressor, data.test_frames, test_keypoints, data.test_positions, NUM_OBSERVED, 3,
      rule, batch_size=4, keep_examples=5, keep_samples=2)
  per_step = np.array(report["best_of_samples"]["per_time_step"]["coords"])
  np.testing.assert_allclose(per_step[:NUM_OBSERVED], 0.0, atol=1e-5)
  np.testing.assert_allclose(per_step[NUM_OBSERVED:], expected, atol=1e-5)
  assert kept.shape == (2, 5, WINDOW, NUM_KEYPOINTS, 3)  # Kept across two batches of 4.
  assert report["best_sample_rule"] == rule


def test_model_calls_chunk_a_model_that_always_decodes_frames():
  frames, _ = make_windows(5)
  offsets = np.arange(7)[:, None] * np.array([[0.1, 0.2]])
  whole = model_calls.ModelCalls(LinearFakeModel(offsets)).predict(
      frames[:, :NUM_OBSERVED], NUM_PREDICTED, 7, True, (0, 0))
  model = LinearFakeModel(offsets)
  model.always_decodes_frames = True
  seeds = []
  original = model.predict_future

  def recording(*args, **kwargs):
    seeds.append(tuple(int(v) for v in kwargs["seed"].numpy()))
    return original(*args, **kwargs)

  model.predict_future = recording
  # At most 4 sequences per call: samples in chunks of 4 (+3), windows one at a time; the fake
  # gives every chunk the same offsets, so compare chunk by chunk.
  chunked = model_calls.ModelCalls(model, max_sequences=4).predict(
      frames[:, :NUM_OBSERVED], NUM_PREDICTED, 7, True, (5, 9))
  assert chunked["keypoints"].shape == whole["keypoints"].shape == (7, 5, WINDOW,
                                                                    NUM_KEYPOINTS, 3)
  np.testing.assert_allclose(chunked["keypoints"][:4], whole["keypoints"][:4], atol=1e-6)
  np.testing.assert_allclose(chunked["keypoints"][4:], whole["keypoints"][:3], atol=1e-6)
  assert chunked["frames"].shape == (7, 5, WINDOW, IMAGE_SIZE, IMAGE_SIZE, 3)
  assert len(seeds) == 10 and seeds[0] == (5, 9) and seeds[1] == (5 + 100003, 9)


# Video metrics, FVD, VGG. -------------------------------------------------------------------

def test_video_metrics_closest_furthest_and_fvd_clips_with_exact_psnr():
  frames, _ = make_windows(3)
  offsets = [0.02, 0.01, 0.04]  # Sample 1 closest, sample 2 furthest.
  results = []
  for sequences_per_call in (64, 2):  # One call, or samples split over several calls.
    results.append(protocol.video_evaluation(
        OracleCalls(frames, offsets), frames, NUM_OBSERVED, 3,
        sequences_per_call=sequences_per_call, fvd_clip_count=4, fvd_context="truth",
        figure_examples=2))
  video = results[0]
  for name in ("ssim", "psnr"):
    np.testing.assert_allclose(results[1]["scores"][name], video["scores"][name])
  psnr = video["scores"]["psnr"]  # [S, V, T]
  for s, offset in enumerate(offsets):
    np.testing.assert_allclose(psnr[s], -20 * math.log10(offset), atol=2e-3)
  curves, selection = frame_metrics.metric_curves(psnr, NUM_OBSERVED)
  assert selection["closest_index"].tolist() == [1, 1, 1]
  assert selection["furthest_index"].tolist() == [2, 2, 2]
  np.testing.assert_allclose(curves["closest"], 40.0, atol=2e-3)
  np.testing.assert_allclose(curves["furthest"], -20 * math.log10(0.04), atol=2e-3)
  ssim_selection = frame_metrics.closest_and_furthest(video["scores"]["ssim"],
                                                   slice(NUM_OBSERVED, None))
  assert ssim_selection["closest_index"].tolist() == [1, 1, 1]
  # FVD clips in sample-major order: (s0, w0), (s0, w1), (s0, w2), (s1, w0); observed steps
  # are the true frames.
  expected = []
  for s, w in ((0, 0), (0, 1), (0, 2), (1, 0)):
    clip = np.round((ops.frames_to_model(frames[w]).numpy() + offsets[s] + 0.5) * 255)
    clip = clip.astype(np.uint8)
    clip[:NUM_OBSERVED] = frames[w, :NUM_OBSERVED]
    expected.append(clip)
  np.testing.assert_array_equal(video["fvd_clips"], np.stack(expected))
  np.testing.assert_array_equal(results[1]["fvd_clips"], video["fvd_clips"])
  assert video["figure_frames"].shape == (2, 3, WINDOW, IMAGE_SIZE, IMAGE_SIZE, 3)


class CosineStandin(feature_metric.FeatureMetric):
  """A stand-in VGG: features are the frames minus 0.3 through a ReLU; compared by cosine."""

  def features(self, frames):
    return [tf.nn.relu(tf.convert_to_tensor(frames, tf.float32) - 0.3)]

  compare = staticmethod(frame_metrics.vgg_cosine_from_features)


class SquaredDistanceStandin(CosineStandin):
  """A stand-in LPIPS: mean squared difference of the features (a distance)."""

  @staticmethod
  def compare(features_1, features_2):
    return tf.reduce_mean(tf.square(features_1[0] - features_2[0]), axis=[1, 2, 3])


def test_a_feature_metric_is_computed_on_its_first_windows_only():
  frames, _ = make_windows(3)
  calls = OracleCalls(frames, [0.02, 0.01, 0.04])
  metrics = {"vgg_cosine": CosineStandin(), "lpips_alex": SquaredDistanceStandin()}
  full = protocol.video_evaluation(calls, frames, NUM_OBSERVED, 3, sequences_per_call=3,
                                   feature_metrics=metrics)
  part = protocol.video_evaluation(calls, frames, NUM_OBSERVED, 3, sequences_per_call=3,
                                   feature_metrics=metrics, feature_windows={"vgg_cosine": 2})
  assert full["scores"]["vgg_cosine"].shape == (3, 3, WINDOW)
  assert part["scores"]["vgg_cosine"].shape == (3, 2, WINDOW)
  assert part["scores"]["lpips_alex"].shape == (3, 3, WINDOW)
  np.testing.assert_allclose(part["scores"]["vgg_cosine"], full["scores"]["vgg_cosine"][:, :2])
  # Sample 1 (offset 0.01) is closer to the truth than sample 2 (offset 0.04) by both.
  assert np.all(full["scores"]["vgg_cosine"][1] >= full["scores"]["vgg_cosine"][2])
  assert np.all(full["scores"]["lpips_alex"][1] <= full["scores"]["lpips_alex"][2])
  # The true frames' features, computed once per window, give the per-pair numbers.
  predicted = np.stack([np.clip(ops.frames_to_model(frames).numpy() + offset + 0.5, 0, 1)
                        for offset in (0.02, 0.01, 0.04)])
  truth = np.broadcast_to(frames.astype(np.float32) / 255.0, predicted.shape)
  expected = np.stack([frame_metrics.vgg_cosine_similarity_per_frame(
      predicted[s], truth[s], CosineStandin().features) for s in range(3)])
  np.testing.assert_allclose(full["scores"]["vgg_cosine"], expected, rtol=1e-5, atol=1e-6)
  squared = ((np.maximum(predicted - 0.3, 0) - np.maximum(truth - 0.3, 0)) ** 2).mean(
      axis=(3, 4, 5))
  np.testing.assert_allclose(full["scores"]["lpips_alex"], squared, rtol=1e-4, atol=1e-9)


def test_the_repeat_last_frame_baseline_scores_the_last_observed_frame():
  frames, _ = make_windows(3)
  calls = OracleCalls(frames, [0.02, 0.01])
  video = protocol.video_evaluation(calls, frames, NUM_OBSERVED, 2, sequences_per_call=2,
                                    feature_metrics={"lpips_alex": SquaredDistanceStandin()},
                                    feature_windows={"lpips_alex": 2})
  baseline = video["repeat_last"]
  assert baseline["ssim"].shape == (3, WINDOW) and baseline["lpips_alex"].shape == (2, WINDOW)
  assert np.all(np.isnan(baseline["psnr"][:, :NUM_OBSERVED]))
  truth = frames.astype(np.float32) / 255.0
  last = truth[:, NUM_OBSERVED - 1]
  for step in range(NUM_OBSERVED, WINDOW):
    mse = ((last - truth[:, step]) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(baseline["psnr"][:, step], -10 * np.log10(mse), rtol=1e-4)
    squared = ((np.maximum(last[:2] - 0.3, 0) - np.maximum(truth[:2, step] - 0.3, 0)) ** 2)
    np.testing.assert_allclose(baseline["lpips_alex"][:, step], squared.mean(axis=(1, 2, 3)),
                               rtol=1e-4, atol=1e-9)
  # Only the code pixels move, so the first predicted step's frame differs in a few pixels.
  assert np.all(baseline["ssim"][:, NUM_OBSERVED:] > 0.9)


def test_fvd_with_a_standin_embedding_matches_the_frechet_distance():
  real, _ = make_windows(4, seed=3)
  generated, _ = make_windows(5, seed=4)
  result = protocol.fvd_evaluation(real, generated, standin_embedding, batch_size=2)
  embed = lambda clips: standin_embedding(fvd.preprocess_for_i3d(clips.astype(np.float32)))
  expected = fvd.frechet_distance(embed(real).numpy(), embed(generated).numpy())
  assert result["fvd"] == pytest.approx(expected, rel=1e-6)
  assert result["num_real_clips"] == 4 and result["num_generated_clips"] == 5
  assert protocol.fvd_evaluation(real, real, standin_embedding)["fvd"] == pytest.approx(
      0.0, abs=1e-6)


def test_run_evaluation_writes_json_and_figures_with_standins(tmp_path):
  report, output = quiet_run(LinearFakeModel(np.array([[0.0, 0.0], [0.2, 0.1], [0.3, 0.3]])),
                             fake_data(), small_settings(fvd_clips=0, num_vgg_windows=2),
                             str(tmp_path),
                             feature_metrics={"vgg_cosine": CosineStandin(),
                                              "lpips_vgg": SquaredDistanceStandin(),
                                              "lpips_alex": SquaredDistanceStandin()},
                             fvd_model=standin_embedding,
                             run_info={"checkpoint": "fake"})
  with open(tmp_path / "evaluation.json") as f:
    written = json.load(f)
  assert set(written) == {"schema_version", "run", "settings", "data", "keypoints_on_motion",
                          "tracking", "video", "fvd", "figures", "diversity", "skipped",
                          "timing"}
  assert 0.0 <= written["keypoints_on_motion"]["share_on_motion"] <= 1.0
  assert written["run"] == {"checkpoint": "fake", "model_type": "struct_vrnn"}
  # num_vgg_windows=2 limits the VGG16 metrics; LPIPS-AlexNet covers every video window.
  assert written["video"]["vgg_cosine"]["num_windows"] == 2
  assert written["video"]["lpips_vgg"]["num_windows"] == 2
  assert written["video"]["lpips_alex"]["num_windows"] == 4
  assert written["video"]["vgg_cosine"]["weights"] == "injected feature extractor"
  assert written["video"]["ssim"]["num_windows"] == 4
  for name in ("ssim", "psnr", "vgg_cosine", "lpips_vgg", "lpips_alex"):
    assert written["video"][name]["repeat_last"][:NUM_OBSERVED] == [None] * NUM_OBSERVED
    assert all(isinstance(value, float)
               for value in written["video"][name]["repeat_last"][NUM_OBSERVED:]), name
    for key in ("closest", "furthest", "closest_per_step", "furthest_per_step", "sample_mean",
                "repeat_last"):
      assert len(written["video"][name][key]) == WINDOW, (name, key)
    # Similarities: closest >= furthest; distances (LPIPS): closest <= furthest.
    sign = -1.0 if name.startswith("lpips") else 1.0
    assert np.all(sign * np.array(written["video"][name]["closest"]) >= sign * np.array(
        written["video"][name]["furthest"]) - 1e-9), name
    assert np.any(np.array(written["video"][name]["closest"]) != np.array(
        written["video"][name]["furthest"])), name
  # fvd_clips 0: every test window (10) against every sample (4 windows x 3 samples).
  assert written["fvd"]["num_real_clips"] == 10 and written["fvd"]["num_generated_clips"] == 12
  assert written["fvd"]["embedding"] == "injected" and np.isfinite(written["fvd"]["fvd"])
  assert written["video"]["window_indices"] == [0, 3, 6, 9]
  assert written["diversity"]["source"] == "matched_keypoint"
  assert written["skipped"] == []
  assert set(written["timing"]["seconds_per_phase"]) == {"detect", "tracking", "video", "fvd",
                                                         "figures"}
  files = ["video_metrics.png", "tracking_error.png", "sample_diversity.png",
           "examples/example_0.png", "examples/example_0.gif", "examples/example_1.gif"]
  for name in files:
    assert (tmp_path / name).stat().st_size > 100, name
  assert written["figures"]["examples"][0]["png"] == os.path.join("examples", "example_0.png")
  assert "FVD" in output


class _NamedVGGStandin(CosineStandin):
  """A stand-in feature extractor that says which weights it has, like `VGGFeatures`."""
  weights_info = {"name": "stand-in", "short_name": "stand-in weights"}


def test_the_json_and_the_figure_say_which_vgg_weights_were_used(tmp_path):
  report, _ = quiet_run(LinearFakeModel(np.array([[0.0, 0.0], [0.2, 0.1], [0.3, 0.3]])),
                        fake_data(), small_settings(num_vgg_windows=1), str(tmp_path),
                        feature_metrics={"vgg_cosine": _NamedVGGStandin()}, fvd_model=None)
  assert report["video"]["vgg_cosine"]["weights"] == _NamedVGGStandin.weights_info
  assert (tmp_path / "video_metrics.png").stat().st_size > 100


def test_vgg_and_fvd_are_skipped_with_a_message_without_weights(tmp_path, monkeypatch):
  monkeypatch.setenv("VIDEO_STRUCTURE_CACHE", str(tmp_path / "empty_cache"))
  monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras"))
  report, output = quiet_run(LinearFakeModel(), fake_data(), small_settings(fvd_clips=4),
                             str(tmp_path / "out"))
  assert "fetch_weights.py" in report["fvd"]["skipped"]
  assert report["fvd"]["skipped"].startswith("FVD skipped: The I3D Kinetics-400 weights")
  assert "VGG16 weights" in report["video"]["vgg_cosine"]["skipped"]
  assert "never computed from random weights" in report["video"]["vgg_cosine"]["skipped"]
  for name, net in (("lpips_vgg", "vgg16"), ("lpips_alex", "alexnet")):
    assert report["video"][name]["skipped"].startswith(f"LPIPS ({net}) skipped:")
    assert "fetch_weights.py" in report["video"][name]["skipped"]
  assert len(report["skipped"]) == 4
  assert "FVD skipped" in output and "VGG cosine similarity skipped" in output
  assert "LPIPS (alexnet) skipped" in output
  assert "ssim" in report["video"] and "closest" in report["video"]["ssim"]


def test_a_bad_vgg_precision_is_refused():
  # "auto" is evaluate.py's to resolve (by the hardware), not the protocol's.
  with pytest.raises(ValueError, match="vgg_precision must be one of"):
    small_settings(vgg_precision="auto").validate()


def test_a_given_but_missing_vgg_weights_file_is_an_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="VGG16 weights_path .*missing.h5.* does not exist"):
    quiet_run(LinearFakeModel(), fake_data(),
              small_settings(vgg_weights=str(tmp_path / "missing.h5")), str(tmp_path))


def test_cnn_vrnn_uses_regressed_trajectories(tmp_path):
  model = LinearFakeModel()
  model.config.representation = "features"
  assert model_calls.model_type(model.config) == "cnn_vrnn"
  report, _ = quiet_run(model, fake_data(), small_settings(), str(tmp_path), feature_metrics=None,
                        fvd_model=None)
  assert report["run"]["model_type"] == "cnn_vrnn"
  assert report["diversity"]["source"] == "regression"


def test_model_type_names_the_variant_of_a_config():
  config = types.SimpleNamespace
  assert model_calls.model_type(None) == "struct_vrnn"
  assert model_calls.model_type(config(representation="keypoints", dynamics="rnn")) == \
      "struct_rnn"
  assert model_calls.model_type(config(representation="features", dynamics="vrnn",
                                       supervised_weight=0.5)) == "cnn_vrnn_supervised"
  assert not model_calls.has_keypoints(config(representation="features"))


def test_no_positions_skips_tracking(tmp_path):
  data = fake_data()
  data.train_positions = data.test_positions = None
  report, _ = quiet_run(LinearFakeModel(), data, small_settings(), str(tmp_path),
                        feature_metrics=None, fvd_model=None)
  assert report["tracking"] == {"skipped": "Tracking skipped: the data have no ground-truth "
                                           "object positions."}
  assert "diversity" not in report and (tmp_path / "video_metrics.png").exists()
