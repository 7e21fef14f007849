"""Figures of a trained model's predictions: the PNG and GIF files written at the end of training
and the example image of the TensorBoard summaries."""

import os

import numpy as np
import tensorflow as tf

from video_structure.evaluation import drawing
from video_structure.model import ops


def example_images(model, frames, num_observed=None, num_samples=2, seed=(0, 0), actions=None):
  """A figure (uint8 `[H', W', 3]`) of ground truth with detected keypoints and open-loop
  predictions (observed frames with a green border, predicted with a red one) for the first
  sequence of `frames` (`[B, T, H, W, 3]` float32); `actions` `[B, T, A]` drive an
  action-conditional model's predictions (the window's true actions)."""
  num_observed = num_observed or model.config.observed_steps
  frames = frames[:1]
  if actions is not None:
    actions = actions[:1]
  detected = model.detect(frames)[0]
  prediction = model.predict_future(frames[:, :num_observed],
                                    int(frames.shape[1]) - num_observed, num_samples,
                                    actions=actions, seed=tf.constant(seed, tf.int32))
  return drawing.prediction_figure(
      ops.frames_to_uint8(frames[0]).numpy(),
      ops.frames_to_uint8(prediction["frames"][:, 0]).numpy(),
      keypoints=detected[0].numpy(), predicted_keypoints=prediction["keypoints"][:, 0].numpy(),
      num_observed=num_observed, scale=2)


def write_prediction_figures(model, frames, output_dir, num_samples=3, seed=0):
  """Draws observed and predicted frames with keypoints for a few test windows.

  For each window i of `frames` (`[N, L, H, W, 3]` float32) writes `sequence_<i>.png` (rows:
  ground truth with detected keypoints, then `num_samples` sampled futures with their
  keypoints; green borders mark observed frames, red ones predicted) and `sequence_<i>.gif`
  (the same rows side by side, one GIF frame per time step). Returns the written paths.
  """
  num_observed = model.config.observed_steps
  num_predicted = int(frames.shape[1]) - num_observed
  detected = model.detect(tf.constant(frames))[0].numpy()
  prediction = model.predict_future(tf.constant(frames[:, :num_observed]), num_predicted,
                                    num_samples, seed=tf.constant([seed, 0], tf.int32))
  predicted_frames = ops.frames_to_uint8(prediction["frames"]).numpy()  # [S, N, L, ...]
  predicted_keypoints = prediction["keypoints"].numpy()
  true_frames = ops.frames_to_uint8(frames).numpy()
  paths = []
  for i in range(len(frames)):
    figure = drawing.prediction_figure(
        true_frames[i], predicted_frames[:, i], keypoints=detected[i],
        predicted_keypoints=predicted_keypoints[:, i], num_observed=num_observed, scale=2)
    paths.append(os.path.join(output_dir, f"sequence_{i}.png"))
    drawing.save_png(paths[-1], figure)
    rows = [drawing.draw_keypoints(true_frames[i], detected[i], scale=4, trails=4)]
    rows += [drawing.draw_keypoints(predicted_frames[s, i], predicted_keypoints[s, i],
                                    scale=4, trails=4) for s in range(num_samples)]
    gif_frames = []
    for t in range(frames.shape[1]):
      color = (drawing.OBSERVED_BORDER_COLOR if t < num_observed
               else drawing.PREDICTED_BORDER_COLOR)
      tiles = [np.pad(row[t], ((3, 3), (3, 3), (0, 0)), constant_values=0) for row in rows]
      for tile in tiles:
        tile[:3], tile[-3:], tile[:, :3], tile[:, -3:] = color, color, color, color
      gif_frames.append(np.concatenate(tiles, axis=1))
    paths.append(os.path.join(output_dir, f"sequence_{i}.gif"))
    drawing.save_gif(paths[-1], np.stack(gif_frames))
  return paths
