"""Does a trained model track the objects, and do its dynamics help? (paper section 5.2)

1. Tracking: a linear regression from the detected keypoints (x, y, mu of all K) to the
   ground-truth object positions, fitted on training windows, measured on test windows.
2. Prediction: observe `num_observed` frames, sample `num_samples` futures, map the predicted
   keypoints through the same regression and keep, per example and object, the sample with the
   lowest mean error over the predicted steps (the paper's Basketball rule); compared with
   repeating the last observed keypoints.
Errors are distances in coordinate units, pixels and percent of the frame width.
"""

import numpy as np
import tensorflow as tf

from video_structure import tracking


def collect_windows(windows_dataset, max_windows=None):
  """Materialises an eval windows dataset into arrays.

  Args:
    windows_dataset: batches of `{"image": [B, L, H, W, 3], "true_object_pos": [B, L, M, 2]}`.
    max_windows: stop after this many windows.

  Returns:
    (frames float32 `[N, L, H, W, 3]`, positions float32 `[N, L, M, 2]`).
  """
  frames, positions, count = [], [], 0
  for batch in windows_dataset:
    if "true_object_pos" not in batch:
      raise ValueError("Tracking evaluation needs ground-truth `true_object_pos` in the data.")
    frames.append(batch["image"].numpy())
    positions.append(batch["true_object_pos"].numpy())
    count += len(frames[-1])
    if max_windows and count >= max_windows:
      break
  if not frames:
    raise ValueError("Tracking evaluation got an empty dataset.")
  frames, positions = np.concatenate(frames), np.concatenate(positions)
  if max_windows:
    frames, positions = frames[:max_windows], positions[:max_windows]
  return frames, positions


def detect_keypoints(model, frames, batch_size=32):
  """`[N, T, H, W, 3]` float32 -> `[N, T, K, 3]` detected keypoints (numpy)."""
  return np.concatenate([model.detect(tf.constant(frames[i:i + batch_size]))[0].numpy()
                         for i in range(0, len(frames), batch_size)])


def evaluate(model, train_frames, train_positions, test_frames, test_positions,
             num_observed=8, num_samples=20, seed=0, object_names=None, batch_size=32):
  """Runs both measurements; returns a JSON-serialisable dict.

  Args:
    model: a trained `StructVRNN`.
    train_frames, train_positions: windows `[N, L, H, W, 3]`, `[N, L, M, 2]` for the fit.
    test_frames, test_positions: held-out windows of the same shapes (L > num_observed).
    num_observed: observed steps n; the remaining L - n steps are predicted.
    num_samples: stochastic samples per test window.
  """
  image_size = test_frames.shape[2]
  num_objects = test_positions.shape[2]
  window_length = test_frames.shape[1]
  if not 0 < num_observed < window_length:
    raise ValueError(f"num_observed must be in [1, {window_length - 1}] for windows of "
                     f"{window_length} frames, got {num_observed}.")
  num_predicted = window_length - num_observed

  train_keypoints = detect_keypoints(model, train_frames, batch_size)
  test_keypoints = detect_keypoints(model, test_frames, batch_size)
  regressor = tracking.fit_keypoint_regressor(train_keypoints, train_positions)
  detected_positions = tracking.predict_positions(regressor, test_keypoints, num_objects)
  report = {"tracking": tracking.tracking_report(detected_positions, test_positions,
                                                 image_size, object_names)}

  best_errors, repeat_errors = [], []
  for start in range(0, len(test_frames), batch_size):
    stop = start + batch_size
    prediction = model.predict_future(
        tf.constant(test_frames[start:stop, :num_observed]), num_predicted, num_samples,
        decode_frames=False, seed=tf.constant([seed, start], tf.int32))
    future_keypoints = prediction["keypoints"].numpy()[:, :, num_observed:]  # [S, B, m, K, 3]
    future_positions = tracking.predict_positions(regressor, future_keypoints, num_objects)
    errors = tracking.object_errors(future_positions, np.broadcast_to(
        test_positions[None, start:stop, num_observed:], future_positions.shape))
    best_errors.append(tracking.best_of_samples(errors, per_object=True))
    repeated = tracking.repeat_last_observed(test_keypoints[start:stop, :num_observed],
                                             num_predicted)
    repeat_errors.append(tracking.object_errors(
        tracking.predict_positions(regressor, repeated, num_objects),
        test_positions[start:stop, num_observed:]))
  best_errors, repeat_errors = np.concatenate(best_errors), np.concatenate(repeat_errors)
  pixels = tracking.pixels_per_unit(image_size)
  report["prediction"] = {
      "num_observed": num_observed, "num_predicted": num_predicted,
      "num_samples": num_samples, "num_test_windows": int(len(test_frames)),
      "best_of_samples_px_per_step": (best_errors.mean(axis=(0, 2)) * pixels).tolist(),
      "repeat_last_px_per_step": (repeat_errors.mean(axis=(0, 2)) * pixels).tolist(),
      "best_of_samples_px_last_step_per_object": (best_errors[:, -1].mean(0) * pixels).tolist(),
      "repeat_last_px_last_step_per_object": (repeat_errors[:, -1].mean(0) * pixels).tolist(),
  }
  report["prediction"]["best_of_samples_px_last_step"] = float(best_errors[:, -1].mean() * pixels)
  report["prediction"]["repeat_last_px_last_step"] = float(repeat_errors[:, -1].mean() * pixels)
  report["regressor"] = regressor.to_dict()
  return report


def summary_lines(report):
  """Human-readable lines of an `evaluate` report."""
  tracking_report = report["tracking"]
  lines = [f"Tracking error (test, regression from keypoints): mean "
           f"{tracking_report['mean_error']['pixels']:.2f} px = "
           f"{tracking_report['mean_error']['percent_of_width']:.2f}% of the frame width"]
  for name, error in tracking_report["per_object"].items():
    lines.append(f"  {name:>10}: {error['pixels']:.2f} px ({error['percent_of_width']:.2f}%)")
  prediction = report["prediction"]
  lines.append(
      f"Prediction {prediction['num_predicted']} steps ahead after {prediction['num_observed']} "
      f"observed: best of {prediction['num_samples']} samples "
      f"{prediction['best_of_samples_px_last_step']:.2f} px vs repeat-last "
      f"{prediction['repeat_last_px_last_step']:.2f} px")
  return lines


def evaluate_on_builder(model, builder, config, num_train_windows=480, num_test_windows=600,
                        num_samples=20, object_names=None):
  """`evaluate` on windows of a prepared TFDS builder's train and test splits.

  Fits the regression on up to `num_train_windows` consecutive training windows and measures
  on up to `num_test_windows` test windows (both in stored order, so the result is
  deterministic for a given model).
  """
  from video_structure import data  # Local import: data pulls in TFDS.
  window_length = config.sequence_length

  def windows(split, count):
    return collect_windows(data.make_windows_dataset(
        data.load_split(builder, split), window_length, 32, training=False,
        drop_remainder=False, name=f"{config.dataset}/{split}"), max_windows=count)

  train_frames, train_positions = windows("train", num_train_windows)
  test_frames, test_positions = windows("test", num_test_windows)
  report = evaluate(model, train_frames, train_positions, test_frames, test_positions,
                    config.observed_steps, num_samples=num_samples, seed=config.seed,
                    object_names=object_names)
  report["step"] = int(model.optimizer.iterations.numpy()) if model.optimizer else None
  return report, test_frames
