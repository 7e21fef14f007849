"""Measuring whether learned keypoints track objects (paper section 5.2, Figure 4).

A linear regression maps keypoints (x, y, mu for every keypoint) to ground-truth object
positions. It is fitted on training sequences, then applied to held-out (observed or
predicted) keypoints; the error is the Euclidean distance between regressed and true
positions, per object and per time step. `tracking_evaluation` is the tracking measurement of
the evaluation protocol (`protocol.py`): best of several sampled futures against repeating the
last observed keypoints.

Numpy only (no TensorFlow), float64 throughout; the model is reached through the `predict` of a
`model_calls.ModelCalls`.

Coordinates follow the project convention: x, y in [-1, 1], x = -1 is the left pixel
column, y = +1 the top pixel row. For an image of width W, one coordinate unit is
(W - 1) / 2 pixels (the W pixel centres span 2 units); errors are also reported in percent
of the frame width: pixels / W * 100.

Objects out of view. An object is in view in a frame when its true centre lies inside the
frame (x and y in [-1, 1]; `in_view`). Where objects leave the frame, the regression of an
object is fitted on the training frames where it is in view and its errors are scored only on
the test frames where it is in view: no keypoint can sit on an object outside the picture, so
frames without it would measure the regression's guess, not the tracking. Errors of frames out
of view are NaN and every mean skips them. When every object is always in view (Basketball),
the fit and the scores are exactly those of the plain protocol.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


# ---------------------------------------------------------------------------
# Validation helpers


def _as_float_array(value, name: str, allow_nan: bool = False) -> np.ndarray:
  try:
    array = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError) as error:
    raise ValueError(f"{name} must be a numeric array, got {type(value).__name__}: "
                     f"{error}") from None
  if allow_nan:
    if np.any(np.isinf(array)):
      raise ValueError(f"{name} contains infinite values; expected finite numbers or NaN "
                       f"(not scored).")
  elif not np.all(np.isfinite(array)):
    raise ValueError(f"{name} contains non-finite values (NaN or inf); expected finite numbers.")
  return array


def _check_points(points, name, width, layout, what, ndim=None) -> np.ndarray:
  """Returns points as float64 (..., N, width), raising if the shape is wrong."""
  array = _as_float_array(points, name)
  if array.ndim < 2 or array.shape[-1] != width:
    raise ValueError(f"{name} must have shape (..., {what[0]}, {width}) with {layout} last, got "
                     f"shape {array.shape}.")
  if ndim is not None and array.ndim != ndim:
    raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}.")
  if array.shape[-2] < 1:
    raise ValueError(f"{name} must contain at least one {what[1]} ({what[0]} >= 1), got shape "
                     f"{array.shape}.")
  return array


def _check_keypoints(keypoints, name: str = "keypoints", ndim: int | None = None) -> np.ndarray:
  """Returns keypoints as float64 (..., K, 3), raising if the shape is wrong."""
  return _check_points(keypoints, name, 3, "(x, y, mu)", ("K", "keypoint"), ndim)


def _check_positions(positions, name: str, ndim: int | None = None) -> np.ndarray:
  """Returns positions as float64 (..., M, 2), raising if the shape is wrong."""
  return _check_points(positions, name, 2, "(x, y)", ("M", "object"), ndim)


def _check_positive_int(value, name: str, minimum: int = 1) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
  if value < minimum:
    raise ValueError(f"{name} must be an integer >= {minimum}, got {value}.")
  return int(value)


# ---------------------------------------------------------------------------
# Features and regression


def keypoints_to_features(keypoints) -> np.ndarray:
  """Flattens keypoints into regression features.

  Args:
    keypoints: (..., K, 3) array of (x, y, mu).

  Returns:
    (..., 3K) float64 array ordered [x_0, y_0, mu_0, x_1, y_1, mu_1, ...].
  """
  array = _check_keypoints(keypoints)
  return array.reshape(array.shape[:-2] + (3 * array.shape[-2],))


class LinearRegressor:
  """Affine least-squares regression: targets ~= features @ weights[:-1] + weights[-1].

  Fitting minimises  ||X W + 1 b - Y||^2 + ridge * ||W||^2  (the bias row b is not
  penalised). The ridge term keeps the problem well posed when features are collinear
  (e.g. a keypoint whose mu is constant duplicates the bias, or x/y of several keypoints
  are linearly dependent) or when there are fewer rows than parameters; with the default
  ridge=1e-6 it biases an exact linear fit only at the ~1e-6 relative level. It is solved
  as an augmented least-squares problem ([X 1; sqrt(ridge) I 0]) with np.linalg.lstsq,
  which avoids squaring the condition number as the normal equations would.

  With ridge == 0 the fit is ordinary least squares (minimum-norm solution if the features
  are rank deficient) and at least F + 1 rows are required, otherwise ValueError.

  Attributes:
    weights: (F + 1, D) float64; the last row is the bias.
    ridge: the ridge strength used for fitting.
  """

  def __init__(self, weights, ridge: float = 0.0):
    weights = _as_float_array(weights, "weights")
    if weights.ndim != 2 or weights.shape[0] < 2 or weights.shape[1] < 1:
      raise ValueError(
          f"weights must have shape (F + 1, D) with F >= 1 and D >= 1 (last row = bias), got "
          f"{weights.shape}."
      )
    self.weights = weights
    self.ridge = float(ridge)

  @property
  def num_features(self) -> int:
    return self.weights.shape[0] - 1

  @property
  def num_targets(self) -> int:
    return self.weights.shape[1]

  @classmethod
  def fit(cls, features, targets, ridge: float = 1e-6) -> "LinearRegressor":
    """Fits the regressor.

    Args:
      features: (N, F) array.
      targets: (N, D) array.
      ridge: non-negative ridge strength on the (non-bias) weights.

    Returns:
      A fitted LinearRegressor with weights (F + 1, D).
    """
    features = _as_float_array(features, "features")
    targets = _as_float_array(targets, "targets")
    if features.ndim != 2:
      raise ValueError(f"features must have shape (N, F), got {features.shape}.")
    if targets.ndim != 2:
      raise ValueError(f"targets must have shape (N, D), got {targets.shape}.")
    if features.shape[0] != targets.shape[0]:
      raise ValueError(
          f"features and targets must have the same number of rows N, got {features.shape[0]} "
          f"(features {features.shape}) and {targets.shape[0]} (targets {targets.shape})."
      )
    num_rows, num_features = features.shape
    if num_rows < 1 or num_features < 1 or targets.shape[1] < 1:
      raise ValueError(
          f"features and targets must be non-empty, got features {features.shape}, targets "
          f"{targets.shape}."
      )
    if not isinstance(ridge, (int, float, np.floating, np.integer)) or isinstance(ridge, bool):
      raise ValueError(f"ridge must be a non-negative number, got {ridge!r}.")
    ridge = float(ridge)
    if not math.isfinite(ridge) or ridge < 0:
      raise ValueError(f"ridge must be a finite non-negative number, got {ridge}.")
    if ridge == 0 and num_rows < num_features + 1:
      raise ValueError(
          f"too few samples to fit: features has {num_rows} rows but {num_features} features "
          f"+ 1 bias need at least {num_features + 1} rows when ridge == 0 (use ridge > 0 or "
          f"more data)."
      )

    design = np.concatenate([features, np.ones((num_rows, 1))], axis=1)
    if ridge > 0:
      penalty = np.zeros((num_features, num_features + 1))
      penalty[:, :num_features] = math.sqrt(ridge) * np.eye(num_features)
      design = np.concatenate([design, penalty], axis=0)
      targets = np.concatenate([targets, np.zeros((num_features, targets.shape[1]))], axis=0)
    weights, _, _, _ = np.linalg.lstsq(design, targets, rcond=None)
    return cls(weights, ridge=ridge)

  def predict(self, features) -> np.ndarray:
    """Applies the regression.

    Args:
      features: (..., F) array.

    Returns:
      (..., D) float64 array.
    """
    features = _as_float_array(features, "features")
    if features.ndim < 1 or features.shape[-1] != self.num_features:
      raise ValueError(
          f"features must have shape (..., {self.num_features}) to match the fitted regressor, "
          f"got {features.shape}."
      )
    return features @ self.weights[:-1] + self.weights[-1]

  def to_dict(self) -> dict[str, Any]:
    """JSON-serialisable representation (nested lists of floats)."""
    return {
        "type": "LinearRegressor",
        "num_features": self.num_features,
        "num_targets": self.num_targets,
        "ridge": self.ridge,
        "weights": self.weights.tolist(),
    }

  @classmethod
  def from_dict(cls, data: dict[str, Any]) -> "LinearRegressor":
    """Inverse of to_dict."""
    if not isinstance(data, dict) or "weights" not in data:
      raise ValueError(f"data must be a dict from LinearRegressor.to_dict() with a 'weights' "
                       f"key, got {data!r:.200}.")
    regressor = cls(data["weights"], ridge=data.get("ridge", 0.0))
    for key, actual in (("num_features", regressor.num_features),
                        ("num_targets", regressor.num_targets)):
      if key in data and data[key] != actual:
        raise ValueError(f"data[{key!r}] = {data[key]} does not match the weights shape "
                         f"{regressor.weights.shape}.")
    return regressor


def in_view(positions) -> np.ndarray:
  """Whether each object's centre is inside the frame.

  Args:
    positions: (..., M, 2) true positions (x, y).

  Returns:
    bool (..., M): both coordinates in [-1, 1].
  """
  positions = _check_positions(positions, "positions")
  return np.all(np.abs(positions) <= 1.0, axis=-1)


def fit_keypoint_regressor(keypoints, positions, ridge: float = 1e-6) -> LinearRegressor:
  """Fits a linear map from keypoints to object positions, pooling all frames.

  Every object is fitted on the frames where it is in view (`in_view`). Objects in view in the
  same frames share one least-squares solve; when all objects are always in view that is the
  single solve over all frames of the plain protocol.

  Args:
    keypoints: (N, T, K, 3) array of (x, y, mu).
    positions: (N, T, M, 2) array of ground-truth object positions (x, y).
    ridge: see LinearRegressor.fit.

  Returns:
    LinearRegressor with 3K features and 2M targets ordered [x_0, y_0, x_1, y_1, ...].
  """
  keypoints = _check_keypoints(keypoints, "keypoints", ndim=4)
  positions = _check_positions(positions, "positions", ndim=4)
  if keypoints.shape[:2] != positions.shape[:2]:
    raise ValueError(
        f"keypoints and positions must agree on (N, T), got keypoints {keypoints.shape} "
        f"and positions {positions.shape}."
    )
  features = keypoints_to_features(keypoints).reshape(-1, 3 * keypoints.shape[2])
  num_objects = positions.shape[2]
  targets = positions.reshape(-1, 2 * num_objects)
  visible = in_view(positions).reshape(-1, num_objects)  # [N * T, M]
  if visible.all():
    return LinearRegressor.fit(features, targets, ridge=ridge)
  weights = np.zeros((features.shape[1] + 1, 2 * num_objects))
  groups = {}
  for m in range(num_objects):
    groups.setdefault(visible[:, m].tobytes(), []).append(m)
  for objects in groups.values():
    rows = visible[:, objects[0]]
    if not rows.any():
      raise ValueError(f"object {objects[0]} is never in view (centre inside [-1, 1]) in the "
                       f"training windows; its regression cannot be fitted. Use more training "
                       f"windows or drop the object from true_object_pos.")
    columns = np.ravel([[2 * m, 2 * m + 1] for m in objects])
    weights[:, columns] = LinearRegressor.fit(features[rows], targets[rows][:, columns],
                                              ridge=ridge).weights
  return LinearRegressor(weights, ridge=ridge)


def masked_errors(errors, visible) -> np.ndarray:
  """Errors with NaN where the object is out of view (so that the means skip them).

  Args:
    errors: (..., M) distances.
    visible: bool (..., M), broadcastable to errors.

  Returns:
    (..., M) float64.
  """
  errors = np.asarray(errors, np.float64)
  return np.where(np.broadcast_to(visible, errors.shape), errors, np.nan)


def _nanmean(array, axis=None):
  """Mean over the entries that are not NaN; NaN (null in JSON) where there is none."""
  array = np.asarray(array, np.float64)
  if not np.isnan(array).any():
    return array.mean(axis=axis)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.nansum(array, axis=axis) / np.sum(~np.isnan(array), axis=axis)


def predict_positions(regressor: LinearRegressor, keypoints, num_objects: int) -> np.ndarray:
  """Regresses object positions from keypoints.

  Args:
    regressor: fitted by fit_keypoint_regressor.
    keypoints: (..., K, 3) array.
    num_objects: M; the regressor must have 2M targets.

  Returns:
    (..., M, 2) float64 array of (x, y).
  """
  num_objects = _check_positive_int(num_objects, "num_objects")
  if regressor.num_targets != 2 * num_objects:
    raise ValueError(
        f"num_objects={num_objects} needs a regressor with {2 * num_objects} targets, "
        f"but the regressor has {regressor.num_targets}."
    )
  keypoints = _check_keypoints(keypoints)
  if 3 * keypoints.shape[-2] != regressor.num_features:
    raise ValueError(
        f"keypoints has K={keypoints.shape[-2]} keypoints (shape {keypoints.shape}) but the "
        f"regressor was fitted on {regressor.num_features // 3} keypoints "
        f"({regressor.num_features} features)."
    )
  predicted = regressor.predict(keypoints_to_features(keypoints))
  return predicted.reshape(predicted.shape[:-1] + (num_objects, 2))


# ---------------------------------------------------------------------------
# Errors and reports


def object_errors(predicted, true) -> np.ndarray:
  """Euclidean distance between predicted and true positions.

  Args:
    predicted: (..., M, 2) array.
    true: (..., M, 2) array of the same shape.

  Returns:
    (..., M) float64 distances in coordinate units.
  """
  predicted = _check_positions(predicted, "predicted")
  true = _check_positions(true, "true")
  if predicted.shape != true.shape:
    raise ValueError(f"predicted and true must have the same shape, got {predicted.shape} and "
                     f"{true.shape}.")
  return np.sqrt(np.sum((predicted - true) ** 2, axis=-1))


def pixels_per_unit(image_size: int) -> float:
  """Pixels per coordinate unit for an image of width image_size: (W - 1) / 2."""
  image_size = _check_positive_int(image_size, "image_size", minimum=2)
  return (image_size - 1) / 2.0


def error_in_units(errors_in_coords, image_size: int) -> dict:
  """{coords, pixels, percent_of_width} of an error array (as lists) or scalar (as floats).

  One coordinate unit is `pixels_per_unit(image_size)` pixels; percent of the frame width is
  pixels / image_size * 100.
  """
  coords = np.asarray(errors_in_coords, dtype=np.float64)
  pixels = coords * pixels_per_unit(image_size)
  percent = pixels / image_size * 100.0
  if coords.ndim == 0:
    return {"coords": float(coords), "pixels": float(pixels), "percent_of_width": float(percent)}
  return {"coords": coords.tolist(), "pixels": pixels.tolist(),
          "percent_of_width": percent.tolist()}


def error_summary(errors, image_size: int, object_names: Sequence[str],
                  num_observed: int) -> dict:
  """JSON summary of tracking errors `[N, T, M]` (coordinate units; NaN: not scored, the
  object out of view; every mean skips them).

  Returns:
    dict, each entry in coords, pixels and percent of the frame width (`error_in_units`):
      mean: over N, T and M;
      per_object_mean: {name: mean over N and T};
      per_time_step: mean over N and M, length T (the paper's Figure 4 curve);
      per_object_per_time_step: {name: mean over N, length T};
      mean_observed: over the observed steps, N and M;
      mean_predicted, per_object_mean_predicted ({name: ...}): over the predicted steps (only
        when there are predicted steps).
  """
  errors = np.asarray(errors, np.float64)
  if errors.ndim != 3 or min(errors.shape) < 1:
    raise ValueError(f"errors must have shape (N, T, M) with N, T, M >= 1, got "
                     f"{errors.shape}.")
  object_names = [str(name) for name in object_names]
  if len(object_names) != errors.shape[2]:
    raise ValueError(f"object_names must have M={errors.shape[2]} entries, got "
                     f"{len(object_names)}.")
  if len(set(object_names)) != len(object_names):
    raise ValueError(f"object_names must be unique, got {object_names}.")
  observed = errors[:, :num_observed]
  predicted = errors[:, num_observed:]
  per_object_mean = _nanmean(errors, axis=(0, 1))
  summary = {
      "mean": error_in_units(_nanmean(errors), image_size),
      "per_object_mean": {name: error_in_units(per_object_mean[m], image_size)
                          for m, name in enumerate(object_names)},
      "per_time_step": error_in_units(_nanmean(errors, axis=(0, 2)), image_size),
      "per_object_per_time_step": {name: error_in_units(_nanmean(errors[:, :, m], axis=0),
                                                        image_size)
                                   for m, name in enumerate(object_names)},
      "mean_observed": error_in_units(_nanmean(observed), image_size),
  }
  if predicted.shape[1]:
    summary["mean_predicted"] = error_in_units(_nanmean(predicted), image_size)
    summary["per_object_mean_predicted"] = {
        name: error_in_units(_nanmean(predicted[:, :, m]), image_size)
        for m, name in enumerate(object_names)}
  return summary


def prediction_summary(best_errors, repeat_errors, image_size: int) -> dict:
  """Pixel errors over the predicted steps alone (what train.py has always printed).

  Args:
    best_errors: `[N, m, M]` errors of the best samples at the m predicted steps.
    repeat_errors: `[N, m, M]` errors of repeating the last observed keypoints.
    (NaN entries, objects out of view, are skipped.)

  Returns:
    dict of pixel errors: `*_px_per_step` (mean over N and M, length m), `*_px_last_step`
    (mean over N and M at the last step) and `*_px_last_step_per_object` (length M), for
    `best_of_samples` and `repeat_last`.
  """
  pixels = pixels_per_unit(image_size)
  summary = {
      "best_of_samples_px_per_step": (_nanmean(best_errors, axis=(0, 2)) * pixels).tolist(),
      "repeat_last_px_per_step": (_nanmean(repeat_errors, axis=(0, 2)) * pixels).tolist(),
      "best_of_samples_px_last_step_per_object": (_nanmean(best_errors[:, -1], axis=0) * pixels).tolist(),
      "repeat_last_px_last_step_per_object": (_nanmean(repeat_errors[:, -1], axis=0) * pixels).tolist(),
  }
  summary["best_of_samples_px_last_step"] = float(_nanmean(best_errors[:, -1]) * pixels)
  summary["repeat_last_px_last_step"] = float(_nanmean(repeat_errors[:, -1]) * pixels)
  return summary


def best_of_samples(errors, per_object: bool, time_steps=None) -> np.ndarray:
  """Picks the best of S stochastic samples (paper section 5.2, footnote 3).

  A sample is a whole predicted trajectory, so the choice is made once per trajectory
  (not independently at every time step); the score of a sample is its mean error over
  the time steps of interest.

  per_object=True (Basketball rule, "best sample separately for each player"): for every
    example n and object m independently, choose s* = argmin_s mean_{t in time_steps}
    errors[s, n, t, m], and return errors[s*, n, :, m].
  per_object=False (Human3.6M rule, "best sample based on the average error of all
    coordinates"): for every example n, choose s* = argmin_s mean_{t in time_steps, m}
    errors[s, n, t, m], and return errors[s*, n, :, :].
  Ties go to the lowest sample index. NaN errors (an object out of view) are skipped in the
  scores; a sample with nothing to score keeps the lowest index.

  Args:
    errors: (S, N, T, M) per-sample errors (e.g. from object_errors).
    per_object: which rule to use (see above).
    time_steps: optional selection of time steps used to score samples (an int array of
      indices, a boolean mask of length T, or a slice), e.g. only the predicted steps.
      Default: all T steps. The returned errors always cover all T steps.

  Returns:
    (N, T, M) errors of the chosen samples.
  """
  errors = _as_float_array(errors, "errors", allow_nan=True)
  if errors.ndim != 4:
    raise ValueError(f"errors must have shape (S, N, T, M), got {errors.shape}.")
  if min(errors.shape) < 1:
    raise ValueError(f"errors must be non-empty in every dimension (S, N, T, M), got "
                     f"{errors.shape}.")
  if not isinstance(per_object, (bool, np.bool_)):
    raise ValueError(f"per_object must be True or False, got {per_object!r}.")
  num_time_steps = errors.shape[2]
  if time_steps is None:
    scored = errors
  else:
    if isinstance(time_steps, slice):
      selection = np.arange(num_time_steps)[time_steps]
    else:
      selection = np.asarray(time_steps)
      if selection.dtype == bool:
        if selection.shape != (num_time_steps,):
          raise ValueError(
              f"time_steps as a boolean mask must have length T={num_time_steps}, got shape "
              f"{selection.shape}."
          )
        selection = np.flatnonzero(selection)
      elif selection.ndim != 1 or not np.issubdtype(selection.dtype, np.integer):
        raise ValueError(f"time_steps must be a 1-D array of integer indices, a boolean mask or "
                         f"a slice, got {time_steps!r}.")
      elif np.any(selection < -num_time_steps) or np.any(selection >= num_time_steps):
        raise ValueError(f"time_steps indices must be in [0, {num_time_steps}), got "
                         f"{selection.tolist()}.")
    if selection.size == 0:
      raise ValueError("time_steps selects no time step; at least one is needed to score samples.")
    scored = errors[:, :, selection]

  if per_object:
    score = _nanmean(scored, axis=2)  # (S, N, M)
    best = np.argmin(np.where(np.isnan(score), np.inf, score), axis=0)  # (N, M)
    # gather errors[best[n, m], n, :, m] -> (N, T, M)
    index = np.broadcast_to(best[None, :, None, :], (1,) + errors.shape[1:])
    return np.take_along_axis(errors, index, axis=0)[0]
  score = _nanmean(scored, axis=(2, 3))  # (S, N)
  best = np.argmin(np.where(np.isnan(score), np.inf, score), axis=0)  # (N,)
  return errors[best, np.arange(errors.shape[1])]


def repeat_last_observed(keypoints, num_future: int) -> np.ndarray:
  """The "repeat the last observed keypoints" baseline.

  Args:
    keypoints: (N, T_obs, K, 3) observed keypoints, T_obs >= 1.
    num_future: number of future steps to predict (>= 1).

  Returns:
    (N, num_future, K, 3) float64: keypoints[:, -1] repeated num_future times.
  """
  keypoints = _check_keypoints(keypoints, "keypoints", ndim=4)
  if keypoints.shape[1] < 1:
    raise ValueError(f"keypoints must contain at least one observed step (T_obs >= 1), got "
                     f"shape {keypoints.shape}.")
  num_future = _check_positive_int(num_future, "num_future")
  return np.repeat(keypoints[:, -1:], num_future, axis=1)


def match_keypoints_to_objects(keypoints, positions) -> np.ndarray:
  """For every object, the keypoint closest to it on average (paper Figure S3).

  Args:
    keypoints: `[N, T, K, 3]` detected keypoints (x, y, mu).
    positions: `[N, T, M, 2]` true object positions.

  Returns:
    int `[M]`: keypoint index per object (argmin over k of the mean distance over the frames
    where the object is in view).
  """
  keypoints = np.asarray(keypoints, np.float64)
  positions = np.asarray(positions, np.float64)
  distance = np.linalg.norm(keypoints[:, :, None, :, :2] - positions[:, :, :, None, :], axis=-1)
  distance = masked_errors(distance, in_view(positions)[..., None])  # [N, T, M, K]
  mean = _nanmean(distance, axis=(0, 1))
  return np.argmin(np.where(np.isnan(mean), np.inf, mean), axis=-1)  # [M]


# ---------------------------------------------------------------------------
# The tracking measurement of the evaluation protocol


def tracking_evaluation(calls, regressor, test_frames, test_keypoints, test_positions,
                        num_observed, num_samples, best_sample_rule, seed=0, batch_size=32,
                        object_names=None, keep_examples=0, keep_samples=0, progress=None):
  """Tracking error per time step (paper Figure 4) of the best of `num_samples` samples, of
  the regression from the detected keypoints, and of the repeat-last baseline.

  Args:
    calls: `model_calls.ModelCalls` (or anything with its `predict`).
    regressor: `LinearRegressor` fitted on training windows.
    test_frames: uint8 `[N, L, H, W, 3]`.
    test_keypoints: `[N, L, K, 3]` detected in `test_frames`.
    test_positions: `[N, L, M, 2]`.
    num_observed: n; the remaining L - n steps are predicted.
    num_samples: samples per window.
    best_sample_rule: "per_object" or "mean" (see `best_of_samples`); the sample is scored by
      its mean error over the predicted steps and its errors at all L steps are reported.
    keep_examples, keep_samples: also return the keypoints of the first `keep_samples` samples
      of the first `keep_examples` windows (for the diversity figure).

  Returns:
    (report dict, kept keypoints `[keep_samples, keep_examples, L, K, 3]` float32). The report
    has the `error_summary` of `best_of_samples`, `repeat_last` and `detected` over all L
    steps, and `prediction` (`prediction_summary`): the errors over the predicted steps of
    positions regressed from the predicted keypoints alone; errors are scored on the frames
    where the object is in view (`in_view_fraction` per object: the share of test frames).
  """
  num_windows, window_length, image_size = test_frames.shape[0], test_frames.shape[1], \
      test_frames.shape[2]
  num_objects = test_positions.shape[2]
  num_predicted = window_length - num_observed
  if num_predicted < 1:
    raise ValueError(f"num_observed ({num_observed}) must be smaller than the window length "
                     f"({window_length}).")
  object_names = list(object_names or [f"object_{m}" for m in range(num_objects)])
  per_object = best_sample_rule == "per_object"
  visible = in_view(test_positions)  # [N, L, M]
  best, kept, best_predicted, repeat_predicted = [], [], [], []
  for index, start in enumerate(range(0, num_windows, batch_size)):
    stop = min(start + batch_size, num_windows)
    prediction = calls.predict(test_frames[start:stop, :num_observed], num_predicted,
                               num_samples, decode_frames=False, seed=(seed, start))
    sample_keypoints = prediction["keypoints"]  # [S, b, L, K, 3]
    sample_positions = predict_positions(regressor, sample_keypoints, num_objects)
    errors = masked_errors(object_errors(sample_positions, np.broadcast_to(
        test_positions[None, start:stop], sample_positions.shape)),
        visible[None, start:stop])  # [S, b, L, M]
    best.append(best_of_samples(errors, per_object=per_object,
                                time_steps=slice(num_observed, None)))
    # The same samples regressed over the predicted steps only (a separate matrix product:
    # its rounding can differ in the last bit from the one over all L steps).
    future_positions = predict_positions(regressor, sample_keypoints[:, :, num_observed:],
                                         num_objects)
    future_errors = masked_errors(object_errors(future_positions, np.broadcast_to(
        test_positions[None, start:stop, num_observed:], future_positions.shape)),
        visible[None, start:stop, num_observed:])
    best_predicted.append(best_of_samples(future_errors, per_object=per_object))
    repeated = repeat_last_observed(test_keypoints[start:stop, :num_observed], num_predicted)
    repeat_predicted.append(masked_errors(
        object_errors(predict_positions(regressor, repeated, num_objects),
                      test_positions[start:stop, num_observed:]),
        visible[start:stop, num_observed:]))
    if start < keep_examples:
      kept.append(sample_keypoints[:keep_samples, :keep_examples - start])
    if progress is not None:
      progress.update(index + 1)
  best = np.concatenate(best)
  detected = masked_errors(object_errors(predict_positions(regressor, test_keypoints,
                                                           num_objects), test_positions), visible)
  repeated = np.concatenate([test_keypoints[:, :num_observed], repeat_last_observed(
      test_keypoints[:, :num_observed], num_predicted)], axis=1)
  repeat_last = masked_errors(object_errors(predict_positions(regressor, repeated, num_objects),
                                            test_positions), visible)
  report = {
      "num_test_windows": int(num_windows), "num_samples": int(num_samples),
      "num_observed": int(num_observed), "num_predicted": int(num_predicted),
      "best_sample_rule": best_sample_rule,
      "image_size": int(image_size), "pixels_per_unit": pixels_per_unit(image_size),
      "object_names": object_names,
      "in_view_fraction": {name: float(visible[:, :, m].mean())
                           for m, name in enumerate(object_names)},
      "best_of_samples": error_summary(best, image_size, object_names, num_observed),
      "repeat_last": error_summary(repeat_last, image_size, object_names, num_observed),
      "detected": error_summary(detected, image_size, object_names, num_observed),
      "prediction": prediction_summary(np.concatenate(best_predicted),
                                       np.concatenate(repeat_predicted), image_size),
  }
  kept = np.concatenate(kept, axis=1) if kept else np.zeros((0, 0) + test_keypoints.shape[1:],
                                                            np.float32)
  return report, kept
