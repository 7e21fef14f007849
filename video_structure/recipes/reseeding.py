"""Re-seeding of redundant keypoints (part of the CPU recipe).

On a small budget the keypoints crowd onto the objects that are found first: a heatmap can
only grow where it already has mass, so a keypoint that sits on an object already explained by
another never moves to an object that nobody explains. Re-seeding is the keypoint counterpart
of the dead-code restarts of vector quantisers: every `reseed_every_steps` steps (until
`reseed_until_step`), the keypoints that duplicate another keypoint are pointed at the worst
reconstructed moving pixels of a training batch. No labels are used.

One re-seeding event, on a batch of training windows:
1. detect keypoints; a keypoint is *redundant* if its mean distance (over the batch's frames)
   to a keypoint with larger mean intensity mu is below `reseed_distance`, or if its mean mu
   is below 0.05 (it draws nothing);
2. score every heatmap cell of every frame by the reconstruction error (squared, summed over
   channels, mean over the cell's pixels) times the foreground mask of
   `recipes.losses.foreground_mask`; a window's target is its best cell in every frame that
   scores at least half the window's best (the worst explained moving object, followed through the
   window), and the best windows give one target per redundant keypoint (at most
   `reseed_max_keypoints`, the lowest-numbered redundant ones);
3. give the keypoint a new 1x1 heatmap head (`head_weights_for_target`): a least-squares fit
   of its pre-activation to +`RESEED_LOGIT` at the target cells and -`RESEED_LOGIT` at every
   cell more than one cell away from them, on the window's detector features;
4. zero the optimizer's first moments of those weights (the second moments are kept so the
   next steps are not oversized).

The head can only fire on an object that the detector's features represent; on Basketball the
features represent only the objects some keypoint already explains unless the foreground-colour
decoder (recipe setting `foreground_colour_weight`) trains them on every moving object
(docs/cpu_preset.md).
"""

import keras
import numpy as np
import tensorflow as tf

from video_structure.model import ops
from video_structure.recipes import losses
from video_structure.recipes import optimizer_slots

# Pre-activation of a re-seeded head at its targets (minus that elsewhere); of the order of the
# peaks of trained heads (30-160 in a Basketball CPU run at step 500), so that the softplus map
# is one sharp blob.
RESEED_LOGIT = 60.0
RESEED_WINDOWS = 32  # Training windows scored per event (more candidate targets than a batch).
DEAD_INTENSITY = 0.05  # Mean mu below which a keypoint counts as drawing nothing.


def redundant_keypoints(keypoints, distance):
  """Indices of keypoints that duplicate a stronger keypoint, or draw nothing.

  Args:
    keypoints: `[B, T, K, 3]` (x, y, mu), x and y in [-1, 1].
    distance: mean distance (keypoint units, over B and T) below which two keypoints are
      duplicates.

  Returns:
    Sorted list of keypoint indices. Keypoints are visited by decreasing mean mu; one is kept
    unless it is within `distance` of a kept one or its mean mu is below `DEAD_INTENSITY`.
  """
  keypoints = np.asarray(keypoints, np.float64)
  xy = keypoints[..., :2]
  mean_mu = keypoints[..., 2].mean(axis=(0, 1))
  pair_distance = np.linalg.norm(xy[:, :, :, None] - xy[:, :, None], axis=-1).mean(axis=(0, 1))
  kept, redundant = [], []
  for k in np.argsort(-mean_mu, kind="stable"):
    if mean_mu[k] < DEAD_INTENSITY or any(pair_distance[k, j] < distance for j in kept):
      redundant.append(int(k))
    else:
      kept.append(int(k))
  return sorted(redundant)


def reseed_targets(scores, count):
  """Targets for up to `count` keypoints: the best-scoring windows, one target each.

  A window's target is, in every frame whose best cell scores at least half the window's best,
  that best cell: the worst explained moving object of the window, followed through its
  frames.

  Args:
    scores: `[B, T, S, S]` non-negative cell scores.
    count: number of targets wanted.

  Returns:
    List of up to `count` (b, [(t, row, column), ...]) by decreasing best score; windows whose
    best score is 0 give none.
  """
  scores = np.asarray(scores)
  batch_size, num_frames, rows, columns = scores.shape
  per_frame = scores.reshape(batch_size, num_frames, -1)
  best_cell = per_frame.argmax(axis=2)  # [B, T]
  best_in_frame = per_frame.max(axis=2)  # [B, T]
  best_in_window = best_in_frame.max(axis=1)  # [B]
  targets = []
  for b in np.argsort(-best_in_window, kind="stable")[:count]:
    if best_in_window[b] <= 0:
      break
    cells = [(t, int(best_cell[b, t]) // columns, int(best_cell[b, t]) % columns)
             for t in range(num_frames) if best_in_frame[b, t] >= 0.5 * best_in_window[b]]
    targets.append((int(b), cells))
  return targets


def head_weights_for_target(features, cells, logit=RESEED_LOGIT, ridge=1e-3):
  """Weights and bias of a 1x1 head that fires at given cells of a window's feature maps.

  A linear least-squares fit of the pre-activation to +logit at the target cells and -logit at
  every cell more than one cell away from the frame's target (the target's neighbours, which
  the object may overlap, are left out), positives and negatives weighted equally in total,
  with a small ridge penalty on the weights.

  Args:
    features: `[T, S, S, F]` detector features of one window.
    cells: list of (t, row, column) target cells, at most one per frame.
    logit: pre-activation wanted at the targets.
    ridge: ridge penalty, relative to the mean squared feature.

  Returns:
    (`[F]` weights, scalar bias).
  """
  features = np.asarray(features, np.float64)
  num_frames, rows, columns, num_features = features.shape
  positive = np.zeros([num_frames, rows, columns], bool)
  negative = np.zeros([num_frames, rows, columns], bool)
  row_index, column_index = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
  for t, row, column in cells:
    positive[t, row, column] = True
    negative[t] = np.maximum(abs(row_index - row), abs(column_index - column)) > 1
  weight = 0.5 * positive / positive.sum() + 0.5 * negative / negative.sum()
  target = logit * (positive.astype(np.float64) - negative)
  design = np.concatenate([features.reshape(-1, num_features),
                           np.ones([features[..., 0].size, 1])], axis=1)
  w = weight.reshape(-1)
  gram = design.T @ (design * w[:, None])
  penalty = ridge * float(np.mean(np.square(features))) * np.eye(num_features + 1)
  penalty[-1, -1] = 0.0  # No penalty on the bias.
  solution = np.linalg.solve(gram + penalty, design.T @ (w * target.reshape(-1)))
  return solution[:-1], float(solution[-1])


def reseed(model, frames, distance, max_keypoints, foreground_threshold, match_lighting=False):
  """One re-seeding event on a batch of training windows (see the module docstring).

  Args:
    model: a built `StructVRNN` with a keypoint detector.
    frames: `[B, T, H, W, 3]` float32 training windows in [-0.5, 0.5].
    distance: `reseed_distance`.
    max_keypoints: `reseed_max_keypoints`.
    foreground_threshold: the recipe's `foreground_threshold`.
    match_lighting: the recipe's `match_lighting`.

  Returns:
    List of (keypoint, b, [(t, row, column), ...]) for the keypoints that were re-seeded.
  """
  cfg = model.config
  if cfg.representation != "keypoints":
    raise ValueError(f"reseeding.reseed: the {cfg.representation!r} representation has no "
                     f"keypoint heatmap heads to re-seed.")
  frames = tf.convert_to_tensor(frames, tf.float32)
  batch_size, num_frames = frames.shape[0], frames.shape[1]
  keypoints, heatmaps, features = model.detect_with_features(frames)
  redundant = redundant_keypoints(keypoints.numpy(), distance)[:max_keypoints]
  if not redundant:
    return []
  reconstruction = model.reconstruct(keypoints, frames[:, 0], keypoints[:, 0])
  cells = heatmaps.shape[2]
  pool = cfg.image_size // cells
  error = tf.reduce_sum(tf.square(reconstruction - frames), axis=-1, keepdims=True)
  error = tf.nn.avg_pool2d(ops.fold_time(error), pool, pool, "VALID")
  error = tf.reshape(error, [batch_size, num_frames, cells, cells])
  mask = losses.foreground_mask(frames, foreground_threshold, cells, match_lighting)[..., 0]
  targets = reseed_targets((error * mask).numpy(), len(redundant))
  features = features.numpy()
  head = model.keypoint_detector.heatmap_head
  kernel = head.kernel.numpy()  # [1, 1, F, K]
  bias = head.bias.numpy()  # [K]
  reseeded = []
  for k, (b, target_cells) in zip(redundant, targets):
    kernel[0, 0, :, k], bias[k] = head_weights_for_target(features[b], target_cells)
    reseeded.append((k, b, target_cells))
  if reseeded:  # Empty when no window has an unexplained moving cell.
    head.kernel.assign(kernel)
    head.bias.assign(bias)
    optimizer_slots.zero_first_moments(model.optimizer, [head.kernel, head.bias],
                                       [k for k, *_ in reseeded])
  return reseeded


class KeypointReseeding(keras.callbacks.Callback):
  """Runs `reseed` every `reseed_every_steps` training steps up to `reseed_until_step` (the
  settings of the model's `CpuRecipe`).

  The batch of an event at step s is the first batch of `make_windows(config.seed + s)`, so a
  resumed run re-seeds exactly as an uninterrupted one, and under a multi-worker strategy every
  worker (given the same unsharded windows) assigns the same weights.

  Args:
    make_windows: callable, seed -> iterable of training batches (dicts with `image`
      `[B, T, H, W, 3]`).
    log: callable taking one line of text, or None.
  """

  def __init__(self, make_windows, log=print):
    super().__init__()
    self.make_windows = make_windows
    self.log = log

  def on_train_batch_end(self, batch, logs=None):
    settings = self.model.recipe.settings
    step = int(self.model.optimizer.iterations.numpy())
    if (not settings.reseed_every_steps or step > settings.reseed_until_step
        or step % settings.reseed_every_steps):
      return
    frames = next(iter(self.make_windows(self.model.config.seed + step)))["image"]
    reseeded = reseed(self.model, frames, settings.reseed_distance,
                      settings.reseed_max_keypoints, settings.foreground_threshold,
                      settings.match_lighting)
    if self.log is not None:
      self.log(f"Step {step}: re-seeded keypoints {[k for k, *_ in reseeded]} "
               f"(duplicates or drawing nothing) at the worst reconstructed moving objects.")
