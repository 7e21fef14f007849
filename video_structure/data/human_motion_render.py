"""Draws the animated human-motion figures (`human_motion.simulate`) into videos (numpy only).

Steps 4 and 5 of the `human_motion` module docstring: perspective projection and framing,
then rendering of every limb as an anti-aliased, shaded capsule, back to front. `generate`
is the whole generator (animation + drawing) used by the TFDS builder.
"""

from __future__ import annotations

import numpy as np

# The animation (and the helpers and constants it shares with the drawing).
from video_structure.data.human_motion import (JOINT_NAMES, NUM_JOINTS, _P, _TEXTURE_GRID,
                                               _check_count, _uniform, simulate)

# Capsule radii (fractions of height) before the per-sequence thickness factor.
_RADIUS = {
    "torso": 0.068, "upper_arm": 0.026, "forearm": 0.021, "hand": 0.028, "thigh": 0.037,
    "shin": 0.027, "foot": 0.02, "neck": 0.024, "hair": 0.062, "face": 0.058, "hips": 0.05,
    "shoulders": 0.03,
}
# Part colours: indices into the per-sequence palette.
_SHIRT, _TROUSERS, _SKIN, _HAIR, _SHOES, _LOWER_ARM, _LOWER_LEG = range(7)

# Render segments (capsules; a disk is a capsule whose two ends coincide):
# (name, start point, end point, radius key, palette index). Points index
# `human_motion._RENDER_POINTS`.
_SEGMENTS = (
    ("left_thigh", "left_hip", "left_knee", "thigh", _TROUSERS),
    ("left_shin", "left_knee", "left_ankle", "shin", _LOWER_LEG),
    ("left_foot", "left_heel", "left_toe", "foot", _SHOES),
    ("right_thigh", "right_hip", "right_knee", "thigh", _TROUSERS),
    ("right_shin", "right_knee", "right_ankle", "shin", _LOWER_LEG),
    ("right_foot", "right_heel", "right_toe", "foot", _SHOES),
    ("hips", "left_hip", "right_hip", "hips", _TROUSERS),
    ("torso", "torso_bottom", "thorax", "torso", _SHIRT),
    ("shoulders", "left_shoulder", "right_shoulder", "shoulders", _SHIRT),
    ("neck", "neck_base", "neck_nose", "neck", _SKIN),
    ("hair", "hair_centre", "hair_centre", "hair", _HAIR),
    ("face", "face_centre", "face_centre", "face", _SKIN),
    ("left_upper_arm", "left_shoulder", "left_elbow", "upper_arm", _SHIRT),
    ("left_forearm", "left_elbow", "left_wrist", "forearm", _LOWER_ARM),
    ("left_hand", "left_hand", "left_hand", "hand", _SKIN),
    ("right_upper_arm", "right_shoulder", "right_elbow", "upper_arm", _SHIRT),
    ("right_forearm", "right_elbow", "right_wrist", "forearm", _LOWER_ARM),
    ("right_hand", "right_hand", "right_hand", "hand", _SKIN),
)
_SEGMENT_START = np.array([_P[s[1]] for s in _SEGMENTS])
_SEGMENT_END = np.array([_P[s[2]] for s in _SEGMENTS])
_SEGMENT_RADIUS = np.array([_RADIUS[s[3]] for s in _SEGMENTS])
_SEGMENT_COLOUR = np.array([s[4] for s in _SEGMENTS])

# Camera and framing.
_CAMERA_TARGET_HEIGHT_M = 0.9
_FIGURE_HEIGHT_FRACTION_RANGE = (0.5, 0.85)  # Standing height / frame height, before fitting.
_FRAME_MARGIN = 0.04  # Keypoint units kept free between the figure and the frame border.


def _hsv_to_rgb(hue, saturation, value):
  """Vectorised HSV -> RGB; all inputs [...] in [0, 1]; returns [..., 3] in [0, 255]."""
  hue = np.mod(hue, 1.0) * 6.0
  chroma = value * saturation
  x = chroma * (1.0 - np.abs(np.mod(hue, 2.0) - 1.0))
  zero = np.zeros_like(hue)
  sector = np.floor(hue).astype(np.int64) % 6
  candidates = np.stack([
      np.stack([chroma, x, zero], -1), np.stack([x, chroma, zero], -1),
      np.stack([zero, chroma, x], -1), np.stack([zero, x, chroma], -1),
      np.stack([x, zero, chroma], -1), np.stack([chroma, zero, x], -1)], axis=-2)
  rgb = np.take_along_axis(candidates, sector[..., None, None], axis=-2)[..., 0, :]
  return 255.0 * (rgb + (value - chroma)[..., None])


def _project(points_3d, camera):
  """Perspective projection. points [N, T, P, 3] (m) -> image-plane xy [N, T, P, 2], depth.

  The camera looks along the world's +z at the point (0, _CAMERA_TARGET_HEIGHT_M, 0) from
  `distance` metres, tilted down by `elevation`. Image x points to the world's -x (so a
  figure facing the camera shows its left hand on the viewer's right), image y up.
  """
  distance = camera["distance"][:, None, None]
  elevation = camera["elevation"][:, None, None]
  relative_y = points_3d[..., 1] - _CAMERA_TARGET_HEIGHT_M
  relative_z = points_3d[..., 2]
  # Camera axes: forward (0, -sin e, cos e), up (0, cos e, sin e), right (-1, 0, 0).
  depth = distance - np.sin(elevation) * relative_y + np.cos(elevation) * relative_z
  camera_y = np.cos(elevation) * relative_y + np.sin(elevation) * relative_z
  camera_x = -points_3d[..., 0]
  return np.stack([camera_x / depth, camera_y / depth], -1), depth


def _framing(projected, radii, height, distance, uniforms):
  """Per-sequence scale and offset putting the whole figure inside the frame.

  Args:
    projected: [N, T, P, 2] image-plane positions of the render points.
    radii: [N, T, S] image-plane radii of the segments.
    height: [N] standing height (m); distance: [N] camera distance (m).
    uniforms: [N, 3] draws for the size and the offsets.

  Returns:
    scale [N], offset [N, 2]: keypoint = scale * projected + offset.
  """
  starts = projected[:, :, _SEGMENT_START]  # [N, T, S, 2]
  ends = projected[:, :, _SEGMENT_END]
  low = np.minimum(starts, ends) - radii[..., None]
  high = np.maximum(starts, ends) + radii[..., None]
  low = low.min(axis=(1, 2))  # [N, 2]
  high = high.max(axis=(1, 2))
  extent = np.maximum(high - low, 1e-6)
  usable = 2.0 - 2.0 * _FRAME_MARGIN
  desired = _uniform(uniforms[:, 0], *_FIGURE_HEIGHT_FRACTION_RANGE) * 2.0 / (height / distance)
  scale = np.minimum(desired, np.min(usable / extent, axis=1))
  offset_low = -1.0 + _FRAME_MARGIN - low * scale[:, None]
  offset_high = 1.0 - _FRAME_MARGIN - high * scale[:, None]
  offset = offset_low + uniforms[:, 1:3] * np.maximum(offset_high - offset_low, 0.0)
  return scale, offset


def _palette(uniforms):
  """Per-sequence colours [N, 7, 3] (0-255) in the order of the _SHIRT... indices."""
  u = uniforms
  shirt = _hsv_to_rgb(u[:, 20], _uniform(u[:, 21], 0.45, 0.9), _uniform(u[:, 22], 0.35, 0.95))
  trousers = _hsv_to_rgb(u[:, 23], _uniform(u[:, 24], 0.1, 0.7), _uniform(u[:, 25], 0.15, 0.6))
  light_skin, dark_skin = np.array([236.0, 198.0, 168.0]), np.array([92.0, 58.0, 40.0])
  skin = light_skin + u[:, 26:27] * (dark_skin - light_skin)
  hair_colours = np.array([[25.0, 20.0, 18.0], [70.0, 45.0, 25.0], [150.0, 110.0, 60.0],
                           [200.0, 170.0, 110.0], [120.0, 120.0, 120.0]])
  hair = hair_colours[np.minimum((u[:, 27] * 5).astype(np.int64), 4)]
  shoes = np.repeat(_uniform(u[:, 28:29], 20.0, 90.0), 3, axis=1)
  long_sleeves = (u[:, 29] < 0.5)[:, None]
  shorts = (u[:, 30] < 0.3)[:, None]
  lower_arm = np.where(long_sleeves, shirt, skin)
  lower_leg = np.where(shorts, skin, trousers)
  return np.stack([shirt, trousers, skin, hair, shoes, lower_arm, lower_leg], axis=1)


def _backgrounds(uniforms, texture, floor_y, image_size):
  """Lightly textured backgrounds [N, S, S, 3] float32 (0-255): wall above a floor line.

  floor_y: [N] keypoint y of the wall/floor boundary.
  """
  u = uniforms
  n = u.shape[0]
  wall = _hsv_to_rgb(u[:, 31], _uniform(u[:, 32], 0.0, 0.25), _uniform(u[:, 33], 0.55, 0.92))
  floor = _hsv_to_rgb(u[:, 34], _uniform(u[:, 35], 0.0, 0.3), _uniform(u[:, 36], 0.3, 0.65))
  grid = np.linspace(1.0, -1.0, image_size)  # y of each row.
  pixels_per_unit = (image_size - 1) / 2.0
  floor_cover = np.clip(0.5 + (floor_y[:, None] - grid[None, :]) * pixels_per_unit, 0.0, 1.0)
  gradient = 1.0 + 0.08 * grid[None, :] * (2.0 * u[:, 37:38] - 1.0)  # Light from above/below.
  rows = (wall[:, None, :] + floor_cover[..., None] * (floor - wall)[:, None, :])
  rows = rows * gradient[..., None]  # [N, S, 3]
  # Texture: an 8 x 8 random grid, bilinearly upsampled, +-8 grey levels.
  coords = np.linspace(0.0, _TEXTURE_GRID - 1.0, image_size)
  low = np.minimum(np.floor(coords).astype(np.int64), _TEXTURE_GRID - 2)
  frac = coords - low
  tex = texture[:, low] * (1.0 - frac)[None, :, None] + texture[:, low + 1] * frac[None, :, None]
  tex = tex[:, :, low] * (1.0 - frac) + tex[:, :, low + 1] * frac  # [N, S, S]
  amplitude = _uniform(u[:, 38], 4.0, 10.0)[:, None, None]
  image = rows[:, :, None, :] + (amplitude * (2.0 * tex - 1.0))[..., None]
  return np.clip(image, 0.0, 255.0).astype(np.float32).reshape(n, image_size, image_size, 3)


def _render(backgrounds, starts, ends, radii, colours, depth_order, image_size):
  """Draws capsules back to front (painter's algorithm).

  Each capsule's coverage of a pixel is clip(radius + 0.5 - distance_px, 0, 1), where
  distance_px is the distance from the pixel centre to the segment start-end. Only a window
  around each capsule is evaluated: per depth rank, the window is the largest bounding box of
  that rank's capsules over the frames, placed around each frame's capsule and kept inside
  the image (it always contains the in-image part of the capsule).

  Args:
    backgrounds: [F, S, S, 3] float32 canvases (0-255).
    starts, ends: [F, K, 2] capsule end points in pixels (column, row).
    radii: [F, K] radii in pixels.
    colours: [F, K, 3] colours (0-255).
    depth_order: [F, K] segment indices, farthest first.

  Returns:
    uint8 [F, S, S, 3].
  """
  num_frames = backgrounds.shape[0]
  canvas = backgrounds.reshape(-1, 3).astype(np.float32)  # [F * S * S, 3]
  frames = np.arange(num_frames)
  frame_offset = (frames * image_size * image_size)[:, None, None]
  for rank in range(depth_order.shape[1]):
    segment = depth_order[:, rank]
    start = starts[frames, segment].astype(np.float32)  # [F, 2]
    end = ends[frames, segment].astype(np.float32)
    radius = radii[frames, segment].astype(np.float32)  # [F]
    colour = colours[frames, segment].astype(np.float32)  # [F, 3]
    low = np.floor(np.minimum(start, end) - radius[:, None] - 1.0).astype(np.int64)  # [F, 2]
    high = np.ceil(np.maximum(start, end) + radius[:, None] + 1.0).astype(np.int64)
    window = np.minimum(np.max(high - low, axis=0) + 1, image_size)  # [2] (columns, rows)
    origin = np.clip(low, 0, image_size - window)  # [F, 2]
    columns = origin[:, :1] + np.arange(window[0])  # [F, wx]
    rows = origin[:, 1:] + np.arange(window[1])  # [F, wy]
    flat_index = frame_offset + rows[:, :, None] * image_size + columns[:, None, :]
    direction = end - start
    length_sq = np.maximum(np.sum(direction * direction, axis=1), 1e-12)
    dx = columns.astype(np.float32)[:, None, :] - start[:, 0, None, None]  # [F, 1, wx]
    dy = rows.astype(np.float32)[:, :, None] - start[:, 1, None, None]  # [F, wy, 1]
    t = np.clip((dx * direction[:, 0, None, None] + dy * direction[:, 1, None, None])
                / length_sq[:, None, None], 0.0, 1.0)  # [F, wy, wx]
    dx = dx - t * direction[:, 0, None, None]
    dy = dy - t * direction[:, 1, None, None]
    distance = np.sqrt(dx * dx + dy * dy)
    coverage = np.clip(radius[:, None, None] + 0.5 - distance, 0.0, 1.0)
    # Cylinder-like shading: full colour on the axis, 25% darker at the rim.
    shade = 1.0 - 0.25 * np.minimum(distance / np.maximum(radius, 0.5)[:, None, None], 1.0) ** 2
    patch = canvas[flat_index]  # [F, wy, wx, 3]
    shaded = colour[:, None, None, :] * shade[..., None]
    canvas[flat_index] = patch + coverage[..., None] * (shaded - patch)
  return np.rint(canvas).astype(np.uint8).reshape(num_frames, image_size, image_size, 3)


def _frame_geometry(motion):
  """Keypoint-space geometry of the simulated sequences.

  Returns:
    keypoints [N, T, P, 2] (x, y) of the render points in [-1, 1], radii [N, T, K] of the
    segments (keypoint units), segment_depth [N, T, K] (m), floor_y [N] keypoint y of the
    wall/floor line.
  """
  params, camera = motion["params"], motion["camera"]
  n = motion["action"].shape[0]
  projected, depth = _project(motion["points_3d"], camera)  # [N, T, P, 2], [N, T, P]
  segment_depth = 0.5 * (depth[:, :, _SEGMENT_START] + depth[:, :, _SEGMENT_END])  # [N, T, K]
  radii_m = (_SEGMENT_RADIUS[None, :] * (params["height"] * params["thickness"])[:, None])
  radii = radii_m[:, None, :] / segment_depth  # image-plane units [N, T, K]
  scale, offset = _framing(projected, radii, params["height"], camera["distance"],
                           params["uniforms"][:, 45:48])
  keypoints = projected * scale[:, None, None, None] + offset[:, None, None, :]
  radii = radii * scale[:, None, None]
  # Floor line: the projection of the floor 2 m behind the scene centre.
  floor_point = np.zeros((n, 1, 1, 3))
  floor_point[..., 2] = 2.0
  floor_xy, _ = _project(floor_point, camera)
  floor_y = np.clip(floor_xy[:, 0, 0, 1] * scale + offset[:, 1], -0.95, 0.6)
  return keypoints, radii, segment_depth, floor_y


def generate(num_sequences, num_frames, seed=0, first_index=0, image_size=64, render=True,
             return_backgrounds=False):
  """Synthetic human-motion videos with joint positions and action labels.

  Args:
    num_sequences: N.
    num_frames: T (6.25 Hz).
    seed: sequence i depends only on (seed, first_index + i) (and T: the 3D motion of a
      longer sequence extends a shorter one, but the framing is fitted to all T frames).
    first_index: index of the first sequence.
    image_size: S, height and width of the frames (>= 16).
    render: False skips drawing (much faster) and returns no "image".
    return_backgrounds: also return each sequence's empty background.

  Returns:
    dict with
      "image": uint8 [N, T, S, S, 3] videos (if render),
      "true_object_pos": float32 [N, T, 17, 2] joint (x, y) in [-1, 1] (JOINT_NAMES order),
      "action": int64 [N] index into ACTION_NAMES,
      "background": uint8 [N, S, S, 3] (if return_backgrounds).
  """
  _check_count("image_size", image_size, 16)
  motion = simulate(num_sequences, num_frames, seed=seed, first_index=first_index)
  n, t = num_sequences, num_frames
  result = {"action": motion["action"]}
  if n == 0:
    result["true_object_pos"] = np.zeros((0, t, NUM_JOINTS, 2), np.float32)
    if render:
      result["image"] = np.zeros((0, t, image_size, image_size, 3), np.uint8)
    if return_backgrounds:
      result["background"] = np.zeros((0, image_size, image_size, 3), np.uint8)
    return result
  keypoints, radii, segment_depth, floor_y = _frame_geometry(motion)
  result["true_object_pos"] = keypoints[:, :, :NUM_JOINTS].astype(np.float32)
  if not (render or return_backgrounds):
    return result
  u = motion["params"]["uniforms"]
  backgrounds = _backgrounds(u, motion["params"]["texture"], floor_y, image_size)
  if return_backgrounds:
    result["background"] = np.rint(backgrounds).astype(np.uint8)
  if not render:
    return result
  pixels_per_unit = (image_size - 1) / 2.0
  columns = (keypoints[..., 0] + 1.0) * pixels_per_unit
  rows = (1.0 - keypoints[..., 1]) * pixels_per_unit
  pixel_points = np.stack([columns, rows], -1)  # [N, T, P, 2]
  colours = _palette(u)[:, _SEGMENT_COLOUR]  # [N, K, 3]
  # Back to front; ties broken by segment order (stable sort) so rendering is deterministic.
  depth_order = np.argsort(-segment_depth, axis=-1, kind="stable")  # [N, T, K]
  images = np.empty((n, t, image_size, image_size, 3), np.uint8)
  # Small chunks keep each depth rank's window tight (measured fastest at ~250 frames).
  frames_per_chunk = 256
  flat_points = pixel_points.reshape(n * t, -1, 2)
  flat_radii = (radii * pixels_per_unit).reshape(n * t, -1)
  flat_order = depth_order.reshape(n * t, -1)
  flat_colours = np.repeat(colours, t, axis=0)
  flat_sequence = np.repeat(np.arange(n), t)
  flat_images = images.reshape(n * t, image_size, image_size, 3)
  for start in range(0, n * t, frames_per_chunk):
    stop = min(start + frames_per_chunk, n * t)
    chunk_points = flat_points[start:stop]
    flat_images[start:stop] = _render(
        backgrounds[flat_sequence[start:stop]],
        chunk_points[:, _SEGMENT_START], chunk_points[:, _SEGMENT_END],
        flat_radii[start:stop], flat_colours[start:stop], flat_order[start:stop], image_size)
  result["image"] = images
  return result


def normalized_pose_features(joints):
  """Simple hand-made features of joint trajectories, for checking that actions differ.

  Positions are taken relative to the pelvis and divided by the sequence's mean pelvis-to-head
  distance (removing position and size); the features are the per-coordinate mean and
  standard deviation of these positions and the standard deviation of their frame-to-frame
  differences.

  Args:
    joints: [N, T, 17, 2] keypoints.

  Returns:
    float64 [N, 17 * 2 * 3].
  """
  joints = np.asarray(joints, np.float64)
  relative = joints - joints[:, :, :1]
  size = np.linalg.norm(joints[:, :, JOINT_NAMES.index("head_top")] - joints[:, :, 0], axis=-1)
  relative = relative / np.maximum(size.mean(axis=1), 1e-6)[:, None, None, None]
  velocity = np.diff(relative, axis=1)
  n = joints.shape[0]
  return np.concatenate([relative.mean(1).reshape(n, -1), relative.std(1).reshape(n, -1),
                         velocity.std(1).reshape(n, -1)], axis=1)
