"""Tests of video_structure/recipes/reseeding.py: exact values of the pure functions, one event
on a tiny model, and the callback's timing."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from video_structure.recipes import reseeding
from video_structure.training import builder


def _keypoints(positions, mu):
  """`[T, K, 2]` positions and `[K]` mu -> `[1, T, K, 3]` keypoints."""
  positions = np.asarray(positions, np.float32)
  mu = np.broadcast_to(np.asarray(mu, np.float32), positions.shape[:2])[..., None]
  return np.concatenate([positions, mu], axis=-1)[None]


def test_redundant_keypoints_keeps_the_strongest_of_a_group_and_drops_dead_ones():
  # Keypoints 0 and 2 move together 0.05 apart; 2 is stronger, so 0 goes. Keypoint 1 is alone
  # but draws nothing (mu 0.01); keypoint 3 is alone and kept.
  track = np.linspace(-0.5, 0.5, 4)[:, None] * np.ones(2)
  positions = np.stack([track, track + [0.8, 0.0], track + [0.05, 0.0], track - [0.8, 0.0]],
                       axis=1)
  keypoints = _keypoints(positions, [0.5, 0.01, 0.9, 0.4])
  assert reseeding.redundant_keypoints(keypoints, 0.1) == [0, 1]
  assert reseeding.redundant_keypoints(keypoints, 0.04) == [1]
  # With a distance of 0.9, keypoint 3 (0.85 from keypoint 2) is a duplicate too.
  assert reseeding.redundant_keypoints(keypoints, 0.9) == [0, 1, 3]


def test_reseed_targets_one_per_window_best_first():
  scores = np.zeros([3, 2, 4, 4], np.float32)
  scores[0, 0, 1, 2] = 1.0
  scores[0, 1, 1, 3] = 0.6   # >= half of window 0's best: followed.
  scores[1, 1, 3, 0] = 2.0
  scores[1, 0, 0, 0] = 0.9   # < half of window 1's best: not followed.
  # Window 2 scores 0 everywhere: no target.
  assert reseeding.reseed_targets(scores, 5) == [(1, [(1, 3, 0)]),
                                                  (0, [(0, 1, 2), (1, 1, 3)])]
  assert reseeding.reseed_targets(scores, 1) == [(1, [(1, 3, 0)])]


def test_head_weights_for_target_fire_at_the_target():
  # Features: one-hot "colour" channel 0 at the target cell of both frames, channel 1 noise.
  rng = np.random.default_rng(0)
  features = np.zeros([2, 4, 4, 2])
  features[..., 1] = rng.uniform(0, 1, [2, 4, 4])
  cells = [(0, 1, 1), (1, 2, 3)]
  for t, row, column in cells:
    features[t, row, column, 0] = 1.0
  weights, bias = reseeding.head_weights_for_target(features, cells, logit=5.0, ridge=0.0)
  pre_activation = features @ weights + bias
  for t, row, column in cells:
    assert pre_activation[t, row, column] == pytest.approx(5.0, abs=1e-6)
  # The negatives are fitted exactly too: the noise channel gets no weight.
  assert weights[1] == pytest.approx(0.0, abs=1e-9)
  assert bias == pytest.approx(-5.0)


def test_reseed_points_a_duplicate_keypoint_at_an_unexplained_object():
  keras.mixed_precision.set_global_policy("float32")
  keras.utils.set_random_seed(0)
  model = builder.build_model(helpers.tiny_config(num_keypoints=3))
  config = model.config
  size, cells = config.image_size, config.heatmap_size
  # A red square moves along the diagonal on a black floor, one heatmap cell per frame.
  pool = size // cells
  frames = np.zeros([2, config.sequence_length, size, size, 3], np.float32)
  for t in range(config.sequence_length):
    frames[:, t, pool * t:pool * (t + 1), pool * t:pool * (t + 1), 0] = 0.5
  # Non-zero Adam moments for every weight: one eager update with small random gradients.
  rng = np.random.default_rng(0)
  model.optimizer.apply_gradients([(tf.constant(rng.normal(scale=1e-3, size=v.shape), tf.float32),
                                    v) for v in model.trainable_variables])
  # Make keypoint 1 an exact copy of keypoint 0; at equal mu the lower index is kept, so 1 is
  # the duplicate.
  head = model.keypoint_detector.heatmap_head
  kernel, bias = head.kernel.numpy(), head.bias.numpy()
  kernel[..., 1], bias[1] = kernel[..., 0], bias[0]
  head.kernel.assign(kernel)
  head.bias.assign(bias)
  momentum = model.optimizer._momentums[model.optimizer._get_variable_index(head.kernel)]
  assert np.abs(momentum.numpy()[..., 1]).max() > 0
  reseeded = reseeding.reseed(model, tf.constant(frames), distance=0.1, max_keypoints=4,
                              foreground_threshold=0.1)
  assert [k for k, *_ in reseeded] == [1]
  target_cells = reseeded[0][2]
  # The targets follow the square (the reconstruction misses it: the model is untrained).
  assert all(row == column for _, row, column in target_cells)
  # The head now fires at its targets and is low elsewhere: the least-squares fit puts the
  # targets' mean pre-activation above the frame's mean by most of 2 x RESEED_LOGIT.
  features = model.keypoint_detector.detect_with_features(tf.constant(frames[reseeded[0][1]]))[2]
  pre_activation = (features.numpy() @ head.kernel.numpy()[0, 0, :, 1]) + head.bias.numpy()[1]
  at_targets = np.mean([pre_activation[t, row, column] for t, row, column in target_cells])
  assert at_targets - pre_activation.mean() > reseeding.RESEED_LOGIT
  # Only keypoint 1's first moments are reset.
  assert np.abs(momentum.numpy()[..., 1]).max() == 0
  assert np.abs(momentum.numpy()[..., 0]).max() > 0


def test_reseed_refuses_the_features_representation():
  keras.mixed_precision.set_global_policy("float32")
  model = builder.build_model(helpers.tiny_config(representation="features"))
  frames = np.zeros([1, model.config.sequence_length, model.config.image_size,
                     model.config.image_size, 3], np.float32)
  with pytest.raises(ValueError, match="'features' representation has no keypoint heatmap"):
    reseeding.reseed(model, frames, distance=0.1, max_keypoints=4, foreground_threshold=0.1)


class _Windows:
  """`make_windows` of the callback: records the seeds it is called with."""

  def __init__(self, frames):
    self.frames = frames
    self.seeds = []

  def __call__(self, seed):
    self.seeds.append(seed)
    return iter([{"image": self.frames}])


@pytest.fixture(scope="module")
def callback_model():
  keras.mixed_precision.set_global_policy("float32")
  return builder.build_model(helpers.tiny_config(reseed_every_steps=100, reseed_until_step=300,
                                                 reseed_distance=0.2, reseed_max_keypoints=2,
                                                 foreground_threshold=0.3, match_lighting=True,
                                                 seed=7))


@pytest.mark.parametrize("step, event", [(50, False), (99, False), (100, True), (300, True),
                                         (301, False), (400, False)])
def test_callback_reseeds_every_n_steps_until_the_last(callback_model, monkeypatch, step, event):
  model = callback_model
  calls = []
  monkeypatch.setattr(reseeding, "reseed", lambda *args: calls.append(args) or [(1, 0, [])])
  frames = np.zeros([1, 16, 64, 64, 3], np.float32)
  windows, lines = _Windows(frames), []
  callback = reseeding.KeypointReseeding(windows, log=lines.append)
  callback.set_model(model)
  model.optimizer.iterations.assign(step)
  callback.on_train_batch_end(0)
  if not event:
    assert (calls, windows.seeds, lines) == ([], [], [])
    return
  assert windows.seeds == [7 + step]  # config.seed + step: a resumed run re-seeds the same.
  ((called_model, called_frames, distance, max_keypoints, threshold, lighting),) = calls
  assert called_model is model and called_frames is frames
  assert (distance, max_keypoints, threshold, lighting) == (0.2, 2, 0.3, True)
  assert lines == [f"Step {step}: re-seeded keypoints [1] (duplicates or drawing nothing) at "
                   f"the worst reconstructed moving objects."]

