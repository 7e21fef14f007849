"""Tests of the full evaluation (`video_structure/evaluation.py`, `evaluate.py`).

Most tests drive the evaluation with test doubles of the model (exact numbers, no training):
* `LinearFakeModel`: its frames carry the object positions in their first pixel row; `detect`
  returns keypoints that are an exact affine function of them, and `predict_future`
  extrapolates the positions linearly (plus a known per-sample offset), so every tracking
  error is known in closed form.
* `OracleCalls`: returns the true future frames plus a known brightness offset per sample, so
  PSNR is known in closed form.
The FVD uses a tiny stand-in embedding (no I3D). One module fixture trains a tiny run for 2
steps with train.py and evaluates it through evaluate.py (checkpoint and SavedModel).
"""

import contextlib
import io
import json
import math
import os
import types

import numpy as np
import pytest
import tensorflow as tf

import evaluate
import train
from video_structure import data as data_lib
from video_structure import evaluation
from video_structure import export
from video_structure import fvd
from video_structure import tracking

IMAGE_SIZE, WINDOW, NUM_OBSERVED, NUM_OBJECTS, NUM_KEYPOINTS = 16, 16, 8, 2, 3
NUM_PREDICTED = WINDOW - NUM_OBSERVED


# Test doubles. ------------------------------------------------------------------------------

def code_to_position(codes):
  """uint8 code u -> coordinate (u / 255 - 0.5) * 4: exactly what the fake model decodes from
  a frame value u / 255 - 0.5, so positions survive the uint8 round trip exactly."""
  return (np.asarray(codes, np.float64) / 255.0 - 0.5) * 4.0


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
    return values * 4.0  # [B, T, 2M]

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
      frames[:, :, :, 0, :NUM_OBJECTS * 2, 0] = np.clip(positions / 4.0, -0.5, 0.5)
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
    truth = evaluation.frames_to_model_input(self.windows[index])  # [B, L, H, W, 3]
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
  return evaluation.EvaluationData(train_frames, train_positions, test_frames, test_positions,
                                   ("ball", "player"), "test", "per_object")


def small_settings(**overrides):
  values = dict(num_observed=NUM_OBSERVED, num_video_windows=4, num_video_samples=3,
                num_tracking_samples=3, fvd_clips=0, num_diversity_examples=2,
                num_diversity_samples=3, num_figure_examples=2, batch_size=4,
                sequences_per_call=64)
  values.update(overrides)
  return evaluation.EvaluationSettings(**values)


def quiet_run(*args, **kwargs):
  stream = io.StringIO()
  report = evaluation.run_evaluation(*args, stream=stream, **kwargs)
  return report, stream.getvalue()


# Pure helpers. -------------------------------------------------------------------------------

def test_closest_and_furthest_choose_whole_samples_by_the_selected_steps():
  # [S=3, B=2, T=3]; the choice uses steps 1 and 2 only.
  scores = np.array([
      [[9.0, 0.1, 0.2], [0.0, 0.5, 0.5]],
      [[0.0, 0.4, 0.3], [0.0, 0.5, 0.5]],
      [[0.0, 0.9, 0.0], [9.0, 0.2, 0.1]],
  ])
  result = evaluation.closest_and_furthest(scores, slice(1, None))
  # Example 0: means over steps 1-2 are 0.15, 0.35, 0.45 -> closest 2, furthest 0.
  # Example 1: 0.5, 0.5 (tie -> lowest index 0), 0.15 -> closest 0, furthest 2.
  assert result["closest_index"].tolist() == [2, 0]
  assert result["furthest_index"].tolist() == [0, 2]
  np.testing.assert_array_equal(result["closest"], [[0.0, 0.9, 0.0], [0.0, 0.5, 0.5]])
  np.testing.assert_array_equal(result["furthest"], [[9.0, 0.1, 0.2], [9.0, 0.2, 0.1]])
  # Selecting on all steps changes example 0 (sample 0's 9.0 counts).
  assert evaluation.closest_and_furthest(scores)["closest_index"].tolist() == [0, 2]


def test_metric_curves_report_both_reductions():
  scores = np.array([[[1.0, 4.0]], [[3.0, 2.0]]])  # [S=2, B=1, T=2]
  curves, selection = evaluation.metric_curves(scores, num_observed=1)
  assert selection["closest_index"].tolist() == [0]  # Step 1 (predicted): 4 > 2.
  assert curves["closest"] == [1.0, 4.0] and curves["furthest"] == [3.0, 2.0]
  assert curves["closest_per_step"] == [3.0, 4.0] and curves["furthest_per_step"] == [1.0, 2.0]
  assert curves["sample_mean"] == [2.0, 3.0]


def test_closest_and_furthest_bad_input():
  with pytest.raises(ValueError, match=r"scores must have shape \[S, B, T\]"):
    evaluation.closest_and_furthest(np.zeros([2, 3]))
  with pytest.raises(ValueError, match="NaN"):
    evaluation.closest_and_furthest(np.full([1, 1, 1], np.nan))
  with pytest.raises(ValueError, match="selection_steps must select at least one"):
    evaluation.closest_and_furthest(np.zeros([1, 1, 2]), slice(5, None))


def test_evenly_spaced_indices_and_uint8_round_trip():
  indices = evaluation.evenly_spaced_indices(600, 128)
  assert len(indices) == 128 and indices[0] == 0 and indices[-1] == 599
  assert len(np.unique(indices)) == 128
  assert evaluation.evenly_spaced_indices(5, 10).tolist() == [0, 1, 2, 3, 4]
  assert evaluation.evenly_spaced_indices(7, 3).tolist() == [0, 3, 6]
  codes = np.arange(256, dtype=np.uint8)
  np.testing.assert_array_equal(
      evaluation.frames_to_uint8_exact(evaluation.frames_to_model_input(codes)), codes)


def test_match_keypoints_to_objects():
  positions = np.array([[[[0.5, 0.5], [-0.5, 0.0]]]])  # [N=1, T=1, M=2, 2]
  keypoints = np.array([[[[-0.4, 0.1, 1.0], [0.9, 0.9, 1.0], [0.5, 0.4, 0.0]]]])  # K=3
  assert evaluation.match_keypoints_to_objects(keypoints, positions).tolist() == [2, 0]


def test_phase_progress_prints_quarters_and_times_phases():
  stream = io.StringIO()
  progress = evaluation.PhaseProgress(["a", "b"], stream)
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
  with pytest.raises(ValueError, match="best_sample_rule must be one of"):
    small_settings(best_sample_rule="best").validate()
  with pytest.raises(ValueError, match=r"num_diversity_samples \(5\) must be <= "
                                       r"num_tracking_samples \(3\)"):
    small_settings(num_diversity_samples=5).validate()
  with pytest.raises(ValueError, match="vgg_layers must be names from"):
    small_settings(vgg_layers=("fc1",)).validate()


def test_dataset_sources_choose_the_best_sample_rule_by_dataset():
  basketball_source = evaluation.get_dataset_source("basketball")
  assert basketball_source.best_sample_rule == "per_object"
  assert basketball_source.object_names[0] == "ball"
  assert evaluation.DATASET_EVALUATION_DEFAULTS["human36m"] == dict(
      best_sample_rule="mean", num_video_samples=100)
  with pytest.raises(ValueError, match="already registered"):
    evaluation.register_dataset_source("basketball", lambda *a: None)
  with pytest.raises(ValueError, match="best_sample_rule must be one of"):
    evaluation.register_dataset_source("x_test", lambda *a: None, best_sample_rule="max")
  with pytest.raises(ValueError, match="make_windows must be callable"):
    evaluation.register_dataset_source("x_test", None)


def test_a_registered_source_feeds_the_evaluation_data():
  frames, positions = make_windows(5)

  def make(config, data_dir, split, batch_size):
    dataset = data_lib.dataset_from_arrays(frames, positions)
    windows = data_lib.make_windows_dataset(dataset, config.sequence_length, batch_size,
                                            training=False, drop_remainder=False)
    return windows, windows

  source = evaluation.register_dataset_source("arrays_test", make, ("a", "b"),
                                              best_sample_rule="mean", replace=True)
  config = types.SimpleNamespace(dataset="arrays_test", sequence_length=WINDOW)
  loaded = evaluation.load_evaluation_data(config, "unused", num_train_windows=3,
                                           num_test_windows=10, source=source, batch_size=2)
  assert loaded.train_frames.shape == (3, WINDOW, IMAGE_SIZE, IMAGE_SIZE, 3)
  assert loaded.test_frames.dtype == np.uint8 and len(loaded.test_frames) == 5
  np.testing.assert_array_equal(loaded.test_frames, frames)  # uint8 -> float -> uint8 exact.
  np.testing.assert_allclose(loaded.test_positions, positions)
  assert loaded.object_names == ("a", "b") and loaded.best_sample_rule == "mean"


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
                             vgg_features=None, fvd_model=None)
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
  assert "Tracking error at the last step" in "\n".join(evaluation.full_summary_lines(report))
  assert "[3/6] tracking" in output


@pytest.mark.parametrize("rule, expected", [("per_object", 0.0), ("mean", 0.1)])
def test_best_sample_rule_per_object_or_by_mean(tmp_path, rule, expected):
  # Sample 0 is 0.1 off for both objects; sample 1 exact for object 0, 0.3 off for object 1;
  # sample 2 0.2 off for object 0, exact for object 1. Per object: 0 for both. By the mean:
  # samples 0 and 2 tie at 0.1 -> sample 0 (lowest index), 0.1 for both objects.
  offsets = np.array([[0.1, 0.1], [0.0, 0.3], [0.2, 0.0]])
  data = fake_data()
  calls = evaluation.ModelCalls(LinearFakeModel(offsets))
  train_keypoints = calls.detect(data.train_frames)
  test_keypoints = calls.detect(data.test_frames)
  regressor = tracking.fit_keypoint_regressor(train_keypoints, data.train_positions)
  report, kept = evaluation.tracking_evaluation(
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
  whole = evaluation.ModelCalls(LinearFakeModel(offsets)).predict(
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
  chunked = evaluation.ModelCalls(model, max_sequences=4).predict(
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
    results.append(evaluation.video_evaluation(
        OracleCalls(frames, offsets), frames, NUM_OBSERVED, 3,
        sequences_per_call=sequences_per_call, fvd_clip_count=4, fvd_context="truth",
        figure_examples=2))
  video = results[0]
  for name in ("ssim", "psnr"):
    np.testing.assert_allclose(results[1]["scores"][name], video["scores"][name])
  psnr = video["scores"]["psnr"]  # [S, V, T]
  for s, offset in enumerate(offsets):
    np.testing.assert_allclose(psnr[s], -20 * math.log10(offset), atol=2e-3)
  curves, selection = evaluation.metric_curves(psnr, NUM_OBSERVED)
  assert selection["closest_index"].tolist() == [1, 1, 1]
  assert selection["furthest_index"].tolist() == [2, 2, 2]
  np.testing.assert_allclose(curves["closest"], 40.0, atol=2e-3)
  np.testing.assert_allclose(curves["furthest"], -20 * math.log10(0.04), atol=2e-3)
  ssim_selection = evaluation.closest_and_furthest(video["scores"]["ssim"],
                                                   slice(NUM_OBSERVED, None))
  assert ssim_selection["closest_index"].tolist() == [1, 1, 1]
  # FVD clips in sample-major order: (s0, w0), (s0, w1), (s0, w2), (s1, w0); observed steps
  # are the true frames.
  expected = []
  for s, w in ((0, 0), (0, 1), (0, 2), (1, 0)):
    clip = np.round((evaluation.frames_to_model_input(frames[w]) + offsets[s] + 0.5) * 255)
    clip = clip.astype(np.uint8)
    clip[:NUM_OBSERVED] = frames[w, :NUM_OBSERVED]
    expected.append(clip)
  np.testing.assert_array_equal(video["fvd_clips"], np.stack(expected))
  np.testing.assert_array_equal(results[1]["fvd_clips"], video["fvd_clips"])
  assert video["figure_frames"].shape == (2, 3, WINDOW, IMAGE_SIZE, IMAGE_SIZE, 3)


def test_vgg_is_computed_on_the_first_vgg_windows_only():
  frames, _ = make_windows(3)
  vgg_standin = lambda images: [tf.nn.relu(tf.convert_to_tensor(images) - 0.3)]
  calls = OracleCalls(frames, [0.02, 0.01, 0.04])
  full = evaluation.video_evaluation(calls, frames, NUM_OBSERVED, 3, sequences_per_call=3,
                                     vgg_features=vgg_standin)
  part = evaluation.video_evaluation(calls, frames, NUM_OBSERVED, 3, sequences_per_call=3,
                                     vgg_features=vgg_standin, vgg_windows=2)
  assert full["scores"]["vgg_cosine"].shape == (3, 3, WINDOW)
  assert part["scores"]["vgg_cosine"].shape == (3, 2, WINDOW)
  np.testing.assert_allclose(part["scores"]["vgg_cosine"], full["scores"]["vgg_cosine"][:, :2])
  assert np.all(full["scores"]["vgg_cosine"][1] >= full["scores"]["vgg_cosine"][2])


def test_fvd_with_a_standin_embedding_matches_the_frechet_distance():
  real, _ = make_windows(4, seed=3)
  generated, _ = make_windows(5, seed=4)
  result = evaluation.fvd_evaluation(real, generated, standin_embedding, batch_size=2)
  embed = lambda clips: standin_embedding(fvd.preprocess_for_i3d(clips.astype(np.float32)))
  expected = fvd.frechet_distance(embed(real).numpy(), embed(generated).numpy())
  assert result["fvd"] == pytest.approx(expected, rel=1e-6)
  assert result["num_real_clips"] == 4 and result["num_generated_clips"] == 5
  assert evaluation.fvd_evaluation(real, real, standin_embedding)["fvd"] == pytest.approx(
      0.0, abs=1e-6)


def test_run_evaluation_writes_json_and_figures_with_standins(tmp_path):
  vgg_standin = lambda frames: [tf.nn.relu(tf.convert_to_tensor(frames) - 0.3)]
  report, output = quiet_run(LinearFakeModel(np.array([[0.0, 0.0], [0.2, 0.1], [0.3, 0.3]])),
                             fake_data(), small_settings(fvd_clips=0, num_vgg_windows=2),
                             str(tmp_path),
                             vgg_features=vgg_standin, fvd_model=standin_embedding,
                             run_info={"checkpoint": "fake"})
  with open(tmp_path / "evaluation.json") as f:
    written = json.load(f)
  assert set(written) == {"schema_version", "run", "settings", "data", "tracking", "video",
                          "fvd", "figures", "diversity", "skipped", "timing"}
  assert written["run"] == {"checkpoint": "fake", "model_type": "struct_vrnn"}
  assert written["video"]["vgg_cosine"]["num_windows"] == 2  # num_vgg_windows=2.
  assert written["video"]["ssim"]["num_windows"] == 4
  for name in ("ssim", "psnr", "vgg_cosine"):
    for key in ("closest", "furthest", "closest_per_step", "furthest_per_step", "sample_mean"):
      assert len(written["video"][name][key]) == WINDOW, (name, key)
    assert np.all(np.array(written["video"][name]["closest"]) >= np.array(
        written["video"][name]["furthest"]) - 1e-9)
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


def test_vgg_and_fvd_are_skipped_with_a_message_without_weights(tmp_path, monkeypatch):
  monkeypatch.setenv("VIDEO_STRUCTURE_CACHE", str(tmp_path / "empty_cache"))
  monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras"))
  report, output = quiet_run(LinearFakeModel(), fake_data(), small_settings(fvd_clips=4),
                             str(tmp_path / "out"))
  assert "fetch_i3d_weights.py" in report["fvd"]["skipped"]
  assert report["fvd"]["skipped"].startswith("FVD skipped: The I3D Kinetics-400 weights")
  assert "VGG16 weights" in report["video"]["vgg_cosine"]["skipped"]
  assert "never computed from random weights" in report["video"]["vgg_cosine"]["skipped"]
  assert len(report["skipped"]) == 2
  assert "FVD skipped" in output and "VGG cosine similarity skipped" in output
  assert "ssim" in report["video"] and "closest" in report["video"]["ssim"]


def test_a_given_but_missing_vgg_weights_file_is_an_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="VGG16 weights_path .*missing.h5.* does not exist"):
    quiet_run(LinearFakeModel(), fake_data(),
              small_settings(vgg_weights=str(tmp_path / "missing.h5")), str(tmp_path))


def test_cnn_vrnn_uses_regressed_trajectories(tmp_path):
  model = LinearFakeModel()
  model.config.representation = "features"
  assert evaluation.model_type(model) == "cnn_vrnn"
  report, _ = quiet_run(model, fake_data(), small_settings(), str(tmp_path), vgg_features=None,
                        fvd_model=None)
  assert report["run"]["model_type"] == "cnn_vrnn"
  assert report["diversity"]["source"] == "regression"
  model.config.model_type = "other"
  with pytest.raises(ValueError, match="model_type must be one of"):
    evaluation.model_type(model)


def test_no_positions_skips_tracking(tmp_path):
  data = fake_data()
  data.train_positions = data.test_positions = None
  report, _ = quiet_run(LinearFakeModel(), data, small_settings(), str(tmp_path),
                        vgg_features=None, fvd_model=None)
  assert report["tracking"] == {"skipped": "Tracking skipped: the data have no ground-truth "
                                           "object positions."}
  assert "diversity" not in report and (tmp_path / "video_metrics.png").exists()


# evaluate.py on a tiny trained run. ------------------------------------------------------------

TINY_FLAGS = [
    "--preset", "cpu", "--dataset_config", "tiny", "--batch_size", "2",
    "--initial_filters", "4", "--rnn_units", "16", "--num_samples", "3",
    "--prior_net_size", "4", "--posterior_net_size", "8", "--decoder_net_size", "8",
    "--latent_size", "4", "--num_keypoints", "4", "--mixed_precision", "false",
    "--log_every_steps", "2", "--checkpoint_every_steps", "2",
    "--image_summary_every_steps", "2", "--num_steps", "2", "--skip_final"]
EVAL_FLAGS = ["--num_train_windows", "6", "--num_test_windows", "8", "--num_video_windows", "3",
              "--num_samples", "2", "--num_tracking_samples", "3",
              "--num_diversity_examples", "2", "--num_diversity_samples", "2",
              "--num_figure_examples", "2", "--fvd_clips", "4"]


def run_quietly(function, argv):
  output = io.StringIO()
  with contextlib.redirect_stdout(output):
    result = function(argv)
  return result, output.getvalue()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """A 2-step tiny run (train.py), its SavedModel, and its data."""
  root = tmp_path_factory.mktemp("evaluate")
  data_dir, run_dir = root / "data", root / "run"
  model, _ = run_quietly(train.main, ["--run_dir", str(run_dir), "--data_dir", str(data_dir)]
                         + TINY_FLAGS)
  export.export_saved_model(model, str(run_dir / "saved_model"))
  return dict(root=root, data_dir=data_dir, run_dir=run_dir)


@pytest.fixture(scope="module")
def evaluated(tiny_run):
  """evaluate.py on the checkpoint and on the SavedModel (empty I3D cache: FVD skipped)."""
  environment = os.environ.get("VIDEO_STRUCTURE_CACHE")
  os.environ["VIDEO_STRUCTURE_CACHE"] = str(tiny_run["root"] / "empty_cache")
  try:
    results = {}
    for name, extra in (("checkpoint", []), ("saved_model", ["--saved_model"])):
      output_dir = tiny_run["root"] / f"out_{name}"
      report, printed = run_quietly(evaluate.main, [
          "--run_dir", str(tiny_run["run_dir"]), "--data_dir", str(tiny_run["data_dir"]),
          "--output", str(output_dir)] + EVAL_FLAGS + extra)
      results[name] = dict(report=report, printed=printed, output_dir=output_dir)
  finally:
    if environment is None:
      del os.environ["VIDEO_STRUCTURE_CACHE"]
    else:
      os.environ["VIDEO_STRUCTURE_CACHE"] = environment
  return results


def test_evaluate_script_writes_json_pngs_and_gifs(evaluated):
  result = evaluated["checkpoint"]
  output_dir = result["output_dir"]
  with open(output_dir / "evaluation.json") as f:
    report = json.load(f)
  assert report["schema_version"] == evaluation.SCHEMA_VERSION
  assert report["run"]["step"] == 2 and report["run"]["checkpoint"].endswith(
      "ckpt-0000002.keras")
  assert report["settings"]["best_sample_rule"] == "per_object"  # Basketball's rule.
  assert report["data"]["num_test_windows"] == 8 and report["data"]["num_train_windows"] == 6
  assert report["tracking"]["object_names"][0] == "ball"
  assert len(report["tracking"]["best_of_samples"]["per_time_step"]["pixels"]) == 16
  assert len(report["video"]["ssim"]["closest"]) == 16
  assert "fetch_i3d_weights.py" in report["fvd"]["skipped"]
  assert set(report["timing"]["seconds_per_phase"]) == set(evaluation.PHASES)
  for name in ("video_metrics.png", "tracking_error.png", "sample_diversity.png",
               "examples/example_0.png", "examples/example_0.gif", "examples/example_1.png",
               "examples/example_1.gif"):
    assert (output_dir / name).stat().st_size > 100, name
  printed = result["printed"]
  assert "[1/6] load" in printed and "[6/6] figures done" in printed
  assert "Time per phase: load" in printed and "FVD skipped" in printed


def test_evaluate_script_on_the_saved_model_agrees_with_the_checkpoint(evaluated):
  checkpoint, saved = evaluated["checkpoint"]["report"], evaluated["saved_model"]["report"]
  assert saved["run"]["saved_model"].endswith("saved_model") and saved["run"]["step"] is None
  # Detection sees the same uint8 frames and the keypoint samples use the same seeds.
  for which in ("detected", "best_of_samples", "repeat_last"):
    np.testing.assert_allclose(saved["tracking"][which]["per_time_step"]["coords"],
                               checkpoint["tracking"][which]["per_time_step"]["coords"],
                               rtol=1e-3, atol=1e-4, err_msg=which)
  # The SavedModel returns frames quantised to uint8: the image metrics agree closely.
  np.testing.assert_allclose(saved["video"]["psnr"]["closest"],
                             checkpoint["video"]["psnr"]["closest"], atol=0.05)


def test_saved_model_adapter_needs_a_saved_model(tmp_path):
  with pytest.raises(FileNotFoundError, match="is not a SavedModel directory"):
    evaluation.SavedModelAdapter(str(tmp_path), None)


@pytest.mark.parametrize("flags, message", [
    (["--num_samples", "0"], "--num_samples must be >= 1, got 0"),
    (["--fvd_clips", "1"], "--fvd_clips must be 0 (all) or >= 2"),
    (["--num_video_windows", "0"], "--num_video_windows must be >= 1, got 0"),
    (["--num_figure_examples", "-1"], "--num_figure_examples must be >= 0, got -1"),
    (["--checkpoint", "/nonexistent/ckpt.keras"], "--checkpoint /nonexistent/ckpt.keras does "
                                                  "not exist"),
    (["--saved_model", "/nonexistent/sm"], "--saved_model /nonexistent/sm is not a SavedModel "
                                           "directory"),
    (["--vgg_weights", "/nonexistent/vgg.h5"], "--vgg_weights /nonexistent/vgg.h5 does not "
                                               "exist"),
    (["--checkpoint", "a", "--saved_model", "b"], "not allowed with argument"),
    (["--best_sample_rule", "max"], "invalid choice: 'max'"),
    (["--vgg_layers", "fc1"], "vgg_layers must be names from"),
])
def test_evaluate_script_bad_arguments(tiny_run, capsys, flags, message):
  with pytest.raises(SystemExit) as exit_info:
    evaluate.main(["--run_dir", str(tiny_run["run_dir"]), "--data_dir",
                   str(tiny_run["data_dir"])] + flags)
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


def test_evaluate_script_needs_a_run_directory(tmp_path, capsys):
  with pytest.raises(SystemExit):
    evaluate.main(["--run_dir", str(tmp_path)])
  assert f"{tmp_path}/config.json does not exist" in capsys.readouterr().err
