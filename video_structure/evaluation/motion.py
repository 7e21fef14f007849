"""Where the keypoints sit: on what moves, or on the static background.

For data without object positions (a user's footage) tracking cannot be measured, but one can
still ask whether the keypoints follow the moving things. A pixel of a window is *moving* when
its colour differs from the window's temporal median by more than `threshold` (max over the
channels, frames in [0, 1]; the foreground definition of the CPU recipe's losses). An active
keypoint (mu >= `mu_threshold`, the threshold the figures draw with) is *on motion* when a
moving pixel lies within `radius` pixels (Chebyshev distance) of its rounded position. Chance
level is the share of pixels with a moving pixel within `radius`: a keypoint placed at random
lands on motion that often.
"""

import numpy as np

from video_structure.evaluation import drawing

DEFAULT_THRESHOLD = 0.1
DEFAULT_RADIUS = 1
DEFAULT_MU_THRESHOLD = 0.2


def moving_masks(frames_uint8, threshold=DEFAULT_THRESHOLD):
  """uint8 `[N, T, H, W, 3]` -> bool `[N, T, H, W]`: the pixels that differ from their window's
  temporal median by more than `threshold` (in [0, 1] units) in some channel."""
  frames = np.asarray(frames_uint8, np.float32) / 255.0
  if frames.ndim != 5 or frames.shape[-1] != 3:
    raise ValueError(f"frames must be [N, T, H, W, 3], got shape {frames.shape}.")
  median = np.median(frames, axis=1, keepdims=True)
  return np.abs(frames - median).max(axis=-1) > threshold


def _dilate(masks, radius):
  """Max filter of a bool `[..., H, W]` mask over a (2 radius + 1)^2 square."""
  if radius == 0:
    return masks
  height, width = masks.shape[-2:]
  padded = np.pad(masks, [(0, 0)] * (masks.ndim - 2) + [(radius, radius)] * 2)
  grown = np.zeros_like(masks)
  for dy in range(2 * radius + 1):
    for dx in range(2 * radius + 1):
      grown |= padded[..., dy:dy + height, dx:dx + width]
  return grown


def keypoints_on_motion(keypoints, frames_uint8, threshold=DEFAULT_THRESHOLD,
                        radius=DEFAULT_RADIUS, mu_threshold=DEFAULT_MU_THRESHOLD):
  """How many active keypoints sit on moving pixels, against chance.

  Args:
    keypoints: `[N, T, K, 3]` (x, y, mu) detected on `frames_uint8`.
    frames_uint8: uint8 `[N, T, H, W, 3]` windows.
    threshold, radius, mu_threshold: see the module docstring.

  Returns:
    dict: `share_on_motion` (active keypoint-frames on motion / active keypoint-frames),
    `chance` (share of pixels with a moving pixel within `radius`), `moving_pixel_share`,
    `per_keypoint_share` (`[K]`, None for a keypoint never active), `active_share` (active
    keypoint-frames / all), and the settings.
  """
  keypoints = np.asarray(keypoints, np.float64)
  masks = moving_masks(frames_uint8, threshold)
  if keypoints.ndim != 4 or keypoints.shape[:2] != masks.shape[:2] or keypoints.shape[3] != 3:
    raise ValueError(f"keypoints must be [N, T, K, 3] for frames {masks.shape[:2]}, got "
                     f"{keypoints.shape}.")
  height, width = masks.shape[2:]
  near = _dilate(masks, radius)
  pixels = np.rint(drawing.keypoints_to_pixels(keypoints, (height, width))).astype(int)
  columns = np.clip(pixels[..., 0], 0, width - 1)
  rows = np.clip(pixels[..., 1], 0, height - 1)
  n, t = np.meshgrid(np.arange(masks.shape[0]), np.arange(masks.shape[1]), indexing="ij")
  on_motion = near[n[..., None], t[..., None], rows, columns]  # [N, T, K]
  active = keypoints[..., 2] >= mu_threshold
  count = active.sum(axis=(0, 1))
  per_keypoint = [None if c == 0 else float(v / c)
                  for v, c in zip((on_motion & active).sum(axis=(0, 1)), count)]
  total = int(active.sum())
  return {"share_on_motion": float((on_motion & active).sum() / total) if total else None,
          "chance": float(near.mean()), "moving_pixel_share": float(masks.mean()),
          "per_keypoint_share": per_keypoint, "active_share": float(active.mean()),
          "threshold": threshold, "radius": radius, "mu_threshold": mu_threshold}
