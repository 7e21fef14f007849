"""Synthetic human-motion videos: a procedural stand-in for Human3.6M (numpy only).

Human3.6M (Ionescu et al., PAMI 2014) is licensed and cannot be shipped or downloaded here, so
this module animates articulated human-like figures offline, with the same kinds of labels:
2D joint positions per frame (the 17-joint Human3.6M layout, `JOINT_NAMES`) and one action
label per sequence (`ACTION_NAMES`). A user's licensed copy of the real data is read by
`builders/human_motion` (config `h36m`, importer `human36m`); see docs/human36m.md.

How a sequence is made (all vectorised over sequences and frames). This module animates (steps
1-3, `simulate`); `human_motion_render` draws (steps 4-5) (its `generate`: whole videos):
  1. Per-sequence parameters from `np.random.default_rng([seed, index])` (a fixed number of
     draws, so sequence `index` depends only on (seed, index)): action, body size and
     proportions, clothing colours, limb thickness, speed (period), phase, amplitude, facing
     direction and its slow drift, position, camera distance/elevation, figure size and
     placement in the frame, background colours and texture, and smooth per-angle noise.
  2. Joint angles as periodic functions of the action's phase (walking, waving, ...), plus
     the noise; frames are 1 / 6.25 s apart (the paper's subsampled Human3.6M frame rate).
  3. Forward kinematics of a 3D skeleton (metres; body frame x = the figure's left, y up,
     z forward), feet kept on the floor, then placement in the world (walkers follow a
     circle, others stand and turn slowly).
  4. Perspective projection by a camera looking at the scene from the front, slightly from
     above; one similarity transform per sequence then scales and shifts the figure so that
     it is fully inside the frame at a random size and position.
  5. Rendering at S x S: every limb is an anti-aliased capsule (a thick line with round
     ends) with cylinder-like shading, the head a disk (hair and face), drawn back to front.

Coordinates (project convention): (x, y) in [-1, 1], x to the right, y up; pixel column j
has x = -1 + 2 j / (W - 1), pixel row i has y = 1 - 2 i / (H - 1). Returned joints are the
exact projected joint positions used for drawing (occluded joints included, as in
Human3.6M's 2D poses).
"""

from __future__ import annotations

import numpy as np

FRAME_RATE_HZ = 6.25  # Human3.6M's 50 Hz subsampled by 8, as in the paper.
TIME_STEP_S = 1.0 / FRAME_RATE_HZ

# The 17-joint Human3.6M 2D layout (a subset of its 32 motion-capture points, see
# H36M_32_TO_17), in the order most Human3.6M 2D tools use.
JOINT_NAMES = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
    "left_ankle", "spine", "thorax", "neck_nose", "head_top", "left_shoulder",
    "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)
# Rows of Human3.6M's 32-point `Pose` arrays that give the 17 joints above.
H36M_32_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
# The paper evaluates on 12 of the 32 points without listing them; we use the 12 limb joints
# (hips, knees, ankles, shoulders, elbows, wrists), as indices into JOINT_NAMES.
EVALUATION_JOINTS = (1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16)
# Bones of the 17-joint skeleton (pairs of JOINT_NAMES indices), for plotting.
SKELETON_EDGES = (
    (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
    (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16),
)

ACTION_NAMES = (
    "walking", "waving", "jumping_jacks", "squatting", "boxing", "sitting_down",
    "bending", "kicking",
)
NUM_ACTIONS = len(ACTION_NAMES)
# Period ranges (s) of one action cycle; each sequence draws its own period in the range.
# All stay well above the Nyquist limit of 2 frames (0.32 s) at 6.25 Hz.
ACTION_PERIOD_RANGE_S = {
    "walking": (0.95, 1.3),
    "waving": (0.8, 1.2),
    "jumping_jacks": (1.0, 1.5),
    "squatting": (2.0, 3.2),
    "boxing": (1.0, 1.6),
    "sitting_down": (4.5, 7.0),
    "bending": (3.0, 4.5),
    "kicking": (1.4, 2.2),
}

# Body proportions as fractions of the standing height (after Winter's anthropometric table).
_THIGH = 0.245
_SHIN = 0.246
_UPPER_ARM = 0.186
_FOREARM = 0.146
_TORSO = 0.29  # Pelvis (hip-joint centre) to thorax (neck base).
_NECK = 0.06  # Thorax to the nose / head base.
_HEAD_TOP = 0.155  # Thorax to the top of the head.
_SHOULDER_HALF_WIDTH = 0.115
_HIP_HALF_WIDTH = 0.055
_ANKLE_HEIGHT = 0.039

# The 3D points the skeleton computes: the 17 joints, then points the renderer needs
# (`human_motion_render` draws its segments between them).
_RENDER_POINTS = JOINT_NAMES + (
    "torso_bottom", "left_hand", "right_hand", "left_heel", "left_toe", "right_heel",
    "right_toe", "hair_centre", "face_centre", "neck_base",
)
_P = {name: i for i, name in enumerate(_RENDER_POINTS)}

# Joint-angle channels (degrees; limb angles are (abduction, flexion) pairs, see
# `_limb_direction`). Arms are relative to the torso, legs relative to the pelvis.
_ANGLE_CHANNELS = (
    "torso_bend", "torso_roll", "torso_twist", "head_bend",
    "left_upper_arm_abd", "left_upper_arm_flex", "left_forearm_abd", "left_forearm_flex",
    "right_upper_arm_abd", "right_upper_arm_flex", "right_forearm_abd", "right_forearm_flex",
    "left_thigh_abd", "left_thigh_flex", "left_shin_abd", "left_shin_flex",
    "right_thigh_abd", "right_thigh_flex", "right_shin_abd", "right_shin_flex",
)
_DEFAULT_ANGLES = {
    "torso_bend": 2.0, "torso_roll": 0.0, "torso_twist": 0.0, "head_bend": 0.0,
    "left_upper_arm_abd": 8.0, "left_upper_arm_flex": 0.0,
    "left_forearm_abd": 8.0, "left_forearm_flex": 12.0,
    "right_upper_arm_abd": 8.0, "right_upper_arm_flex": 0.0,
    "right_forearm_abd": 8.0, "right_forearm_flex": 12.0,
    "left_thigh_abd": 4.0, "left_thigh_flex": 0.0, "left_shin_abd": 4.0, "left_shin_flex": -2.0,
    "right_thigh_abd": 4.0, "right_thigh_flex": 0.0, "right_shin_abd": 4.0,
    "right_shin_flex": -2.0,
}
# Smooth random perturbation of every angle (amplitude in degrees), so no two performances
# of an action are the same and future frames are not a pure function of the past cycle.
_ANGLE_NOISE_DEGREES = 5.0
_ANGLE_NOISE_FREQUENCY_RANGE_HZ = (0.08, 0.6)

# Per-sequence random draws (fixed counts; see the module docstring).
_NUM_PARAMETER_DRAWS = 64
_TEXTURE_GRID = 8  # Background texture: bilinear upsampling of an 8 x 8 random grid.

# Camera and framing.
_CAMERA_DISTANCE_RANGE_M = (4.5, 7.0)
_CAMERA_ELEVATION_RANGE_DEG = (0.0, 20.0)
_WALK_RADIUS_RANGE_M = (0.7, 1.3)


def _check_count(name, value, minimum):
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def _uniform(u, low, high):
  return low + (high - low) * u


def _smoothstep(x):
  x = np.clip(x, 0.0, 1.0)
  return x * x * (3.0 - 2.0 * x)


def _draw_parameters(num_sequences, seed, first_index):
  """Random draws of each sequence from its own generator.

  Returns:
    uniforms [N, _NUM_PARAMETER_DRAWS], angle_noise [N, C, 4] (C = angle channels), texture
    [N, _TEXTURE_GRID, _TEXTURE_GRID], all in [0, 1).
  """
  uniforms = np.empty((num_sequences, _NUM_PARAMETER_DRAWS))
  angle_noise = np.empty((num_sequences, len(_ANGLE_CHANNELS), 4))
  texture = np.empty((num_sequences, _TEXTURE_GRID, _TEXTURE_GRID))
  for i in range(num_sequences):
    rng = np.random.default_rng([int(seed), int(first_index) + i])
    uniforms[i] = rng.random(_NUM_PARAMETER_DRAWS)
    angle_noise[i] = rng.random((len(_ANGLE_CHANNELS), 4))
    texture[i] = rng.random((_TEXTURE_GRID, _TEXTURE_GRID))
  return uniforms, angle_noise, texture


def _action_angles(action_name, phase, amplitude, side, both, u_extra):
  """Joint angles of one action (degrees) as functions of its phase.

  Args:
    action_name: one of ACTION_NAMES.
    phase: [n, T] radians (2 pi per cycle).
    amplitude: [n, 1] style factor (~1) scaling the motion.
    side: [n, 1] +1 for the left or -1 for the right limb (waving arm, kicking leg).
    both: [n, 1] bool, waving with both arms.
    u_extra: [n, 4] further uniforms for style variants.

  Returns:
    dict channel -> [n, T] angles overriding the defaults (only the channels it sets), plus
    "lift" (m, extra root height: jumps) and "back_shift" (m, pelvis moved backward).
  """
  s, c = np.sin(phase), np.cos(phase)
  a = amplitude
  zeros = np.zeros_like(phase)
  out = {}

  def both_sides(name, left, right):
    out[f"left_{name}"], out[f"right_{name}"] = left, right

  if action_name == "walking":
    thigh = 24.0 * a
    both_sides("thigh_flex", thigh * s + 4.0, thigh * np.sin(phase + np.pi) + 4.0)
    # The knee bends most in early swing (thigh moving forward, cos > 0).
    knee_left = 6.0 + 50.0 * a * np.maximum(0.0, np.cos(phase - 0.5)) ** 2
    knee_right = 6.0 + 50.0 * a * np.maximum(0.0, np.cos(phase + np.pi - 0.5)) ** 2
    both_sides("shin_flex", out["left_thigh_flex"] - knee_left,
               out["right_thigh_flex"] - knee_right)
    both_sides("upper_arm_flex", -20.0 * a * s, 20.0 * a * s)
    both_sides("forearm_flex", out["left_upper_arm_flex"] + 18.0 + 8.0 * np.maximum(0.0, -s),
               out["right_upper_arm_flex"] + 18.0 + 8.0 * np.maximum(0.0, s))
    out["torso_bend"] = 5.0 + zeros
    out["torso_twist"] = -6.0 * a * s
  elif action_name == "waving":
    # The waving forearm points up and swings sideways; the upper arm is raised to the side.
    wave_upper_abd = 95.0 + 10.0 * s
    wave_forearm_abd = 155.0 + 28.0 * a * s
    wave_forearm_flex = 12.0 + 8.0 * u_extra[:, :1] + zeros
    for limb_side, sign in (("left", 1.0), ("right", -1.0)):
      active = both | (side == sign)
      out[f"{limb_side}_upper_arm_abd"] = np.where(active, wave_upper_abd, 8.0)
      out[f"{limb_side}_upper_arm_flex"] = np.where(active, 15.0, 0.0) + zeros
      out[f"{limb_side}_forearm_abd"] = np.where(active, wave_forearm_abd, 8.0)
      out[f"{limb_side}_forearm_flex"] = np.where(active, wave_forearm_flex, 12.0)
    out["torso_roll"] = -4.0 * side * ~both + 1.5 * s
  elif action_name == "jumping_jacks":
    spread = 0.5 - 0.5 * c  # 0: arms down, feet together; 1: arms up, feet apart.
    both_sides("upper_arm_abd", 10.0 + 155.0 * a * spread, 10.0 + 155.0 * a * spread)
    both_sides("forearm_abd", 10.0 + 165.0 * a * spread, 10.0 + 165.0 * a * spread)
    both_sides("forearm_flex", 8.0 + zeros, 8.0 + zeros)
    legs = 3.0 + 16.0 * a * spread
    both_sides("thigh_abd", legs, legs)
    both_sides("shin_abd", legs, legs)
    knee = 12.0 * (1.0 - np.abs(np.sin(phase))) * a  # Soft landing at both turning points.
    both_sides("thigh_flex", knee, knee)
    both_sides("shin_flex", -knee, -knee)
    out["lift"] = 0.12 * a * np.abs(np.sin(phase))  # Two hops per cycle.
  elif action_name == "squatting":
    depth = (0.5 - 0.5 * c) * np.minimum(a, 1.1)
    thigh = 95.0 * depth
    both_sides("thigh_flex", thigh, thigh)
    # Knees go forward over the toes: the shin tilts forward by ~40% of the thigh angle.
    both_sides("shin_flex", -0.4 * thigh, -0.4 * thigh)
    out["torso_bend"] = 5.0 + 35.0 * depth
    # Style: arms reach forward for balance, or hands stay near the hips.
    reach = np.where(u_extra[:, :1] < 0.6, 90.0 * depth, 10.0 * depth)
    both_sides("upper_arm_flex", reach + out["torso_bend"] * 0.5,
               reach + out["torso_bend"] * 0.5)
    both_sides("forearm_flex", out["left_upper_arm_flex"] + 10.0,
               out["right_upper_arm_flex"] + 10.0)
    out["back_shift"] = 0.12 * depth
  elif action_name == "boxing":
    # Guard: upper arms down-forward, forearms up toward the chin; alternate straight punches.
    punch_left = np.maximum(0.0, c) ** 2
    punch_right = np.maximum(0.0, -c) ** 2
    for limb_side, punch in (("left", punch_left), ("right", punch_right)):
      out[f"{limb_side}_upper_arm_abd"] = 25.0 - 15.0 * punch
      out[f"{limb_side}_upper_arm_flex"] = 40.0 + 50.0 * a * punch
      out[f"{limb_side}_forearm_abd"] = 10.0 + zeros
      out[f"{limb_side}_forearm_flex"] = 150.0 - 60.0 * a * punch
    bounce = 10.0 + 5.0 * np.cos(2.0 * phase)
    both_sides("thigh_flex", 12.0 + bounce, -8.0 + bounce)
    both_sides("shin_flex", 12.0 - bounce * 1.6, -8.0 - bounce * 1.6)
    out["torso_twist"] = 18.0 * a * (punch_right - punch_left) * side
    out["torso_bend"] = 8.0 + zeros
    out["head_bend"] = 10.0 + zeros
  elif action_name == "sitting_down":
    # Stand, sit down, stay seated, stand up (dwelling at both ends).
    seated = _smoothstep(1.7 * (0.5 - 0.5 * c) - 0.35)
    transition = 4.0 * seated * (1.0 - seated)
    both_sides("thigh_flex", 90.0 * seated, 90.0 * seated)
    both_sides("shin_flex", -5.0 * seated, -5.0 * seated)
    both_sides("thigh_abd", 4.0 + 8.0 * seated, 4.0 + 8.0 * seated)
    both_sides("shin_abd", 4.0 + 4.0 * seated, 4.0 + 4.0 * seated)
    out["torso_bend"] = 3.0 + 35.0 * a * transition + 5.0 * seated
    # Hands come to rest on the thighs.
    both_sides("upper_arm_flex", 25.0 * seated + 15.0 * transition,
               25.0 * seated + 15.0 * transition)
    both_sides("forearm_flex", 12.0 + 60.0 * seated, 12.0 + 60.0 * seated)
    out["back_shift"] = 0.08 * transition
  elif action_name == "bending":
    # Bend forward at the hips (as if picking something up), pause, straighten up.
    bent = _smoothstep(1.6 * (0.5 - 0.5 * c) - 0.3) * np.minimum(a, 1.1)
    out["torso_bend"] = 2.0 + 80.0 * bent
    both_sides("thigh_flex", 12.0 * bent, 12.0 * bent)
    both_sides("shin_flex", -8.0 * bent, -8.0 * bent)
    # Arms hang (flexion relative to the torso follows the bend) and reach a little.
    hang = out["torso_bend"] + 10.0 * bent
    both_sides("upper_arm_flex", hang, hang)
    both_sides("forearm_flex", hang + 10.0, hang + 10.0)
    out["head_bend"] = -20.0 * bent
    out["back_shift"] = 0.15 * bent
  elif action_name == "kicking":
    # Front kicks with one leg: chamber (knee up), extend, retract; the other leg supports.
    kick = np.maximum(0.0, s) ** 1.5
    extend = np.maximum(0.0, np.sin(phase - 0.35)) ** 3
    kick_thigh = 80.0 * a * kick
    kick_shin = kick_thigh - 95.0 * kick * (1.0 - extend)
    for limb_side, sign in (("left", 1.0), ("right", -1.0)):
      active = side == sign
      out[f"{limb_side}_thigh_flex"] = np.where(active, kick_thigh, 6.0 + 4.0 * kick)
      out[f"{limb_side}_shin_flex"] = np.where(active, kick_shin, -4.0 - 4.0 * kick)
    both_sides("upper_arm_abd", 25.0 + 15.0 * kick, 25.0 + 15.0 * kick)
    both_sides("upper_arm_flex", 35.0 + zeros, 35.0 + zeros)
    both_sides("forearm_flex", 120.0 + zeros, 120.0 + zeros)
    out["torso_bend"] = 4.0 - 12.0 * kick
  else:
    raise ValueError(f"Unknown action {action_name!r}; known: {ACTION_NAMES}.")
  return out


def _rotation_x(angle):
  """[...] radians -> [..., 3, 3]; turns the up axis (y) toward forward (z)."""
  c, s = np.cos(angle), np.sin(angle)
  one, zero = np.ones_like(angle), np.zeros_like(angle)
  return np.stack([np.stack([one, zero, zero], -1), np.stack([zero, c, -s], -1),
                   np.stack([zero, s, c], -1)], -2)


def _rotation_y(angle):
  """[...] radians -> [..., 3, 3]; turns forward (z) toward the left (x) (yaw)."""
  c, s = np.cos(angle), np.sin(angle)
  one, zero = np.ones_like(angle), np.zeros_like(angle)
  return np.stack([np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1),
                   np.stack([-s, zero, c], -1)], -2)


def _rotation_z(angle):
  """[...] radians -> [..., 3, 3]; tilts up (y) toward the right (-x) (sideways lean)."""
  c, s = np.cos(angle), np.sin(angle)
  one, zero = np.ones_like(angle), np.zeros_like(angle)
  return np.stack([np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1),
                   np.stack([zero, zero, one], -1)], -2)


def _limb_direction(abduction_deg, flexion_deg, side):
  """Unit limb direction [..., 3] in its parent frame (x = the figure's left, y up, z forward).

  Zero angles point straight down; flexion swings the limb forward (90 = horizontal forward,
  180 = up), abduction swings it outward to its own side (side +1 left, -1 right; 90 =
  horizontal sideways, 180 = up).
  """
  a, f = np.radians(abduction_deg), np.radians(flexion_deg)
  return np.stack([side * np.sin(a), -np.cos(a) * np.cos(f), np.cos(a) * np.sin(f)], -1)


def _apply(rotation, vector):
  """rotation [..., 3, 3] @ vector [..., 3] -> [..., 3]."""
  return np.einsum("...ij,...j->...i", rotation, vector)


def _skeleton(angles, height, build, lift, back_shift):
  """3D positions of the render points relative to the floor point under the pelvis.

  Args:
    angles: dict channel -> [n, T] degrees.
    height: [n, 1] standing height (m).
    build: [n, 1] shoulder/hip width factor.
    lift: [n, T] extra height of the body above the floor (m).
    back_shift: [n, T] pelvis displacement backward (m).

  Returns:
    [n, T, len(_RENDER_POINTS), 3] in the body frame (x left, y up, z forward), metres, with
    the lower ankle _ANKLE_HEIGHT * height (+ lift) above the floor (y = 0).
  """
  h = height[..., None]  # [n, 1, 1] for broadcasting against [n, T, 3].
  points = {}
  pelvis = np.zeros(angles["torso_bend"].shape + (3,))
  pelvis[..., 2] = -back_shift
  torso = _rotation_y(np.radians(angles["torso_twist"])) @ _rotation_z(
      np.radians(angles["torso_roll"])) @ _rotation_x(np.radians(angles["torso_bend"]))
  # The pelvis turns a little against the shoulders (as in walking and punching).
  pelvis_frame = _rotation_y(np.radians(-0.3 * angles["torso_twist"]))
  head = torso @ _rotation_x(np.radians(angles["head_bend"]))

  def in_torso(vector):
    return _apply(torso, np.broadcast_to(vector, pelvis.shape))

  up = np.array([0.0, 1.0, 0.0])
  forward = np.array([0.0, 0.0, 1.0])
  points["pelvis"] = pelvis
  points["spine"] = pelvis + in_torso(up) * (0.5 * _TORSO) * h
  points["thorax"] = pelvis + in_torso(up) * _TORSO * h
  points["torso_bottom"] = pelvis + in_torso(up) * (0.35 * _TORSO) * h
  points["neck_base"] = points["thorax"] - in_torso(up) * 0.01 * h
  head_up = _apply(head, np.broadcast_to(up, pelvis.shape))
  head_forward = _apply(head, np.broadcast_to(forward, pelvis.shape))
  points["neck_nose"] = points["thorax"] + (_NECK * head_up + 0.03 * head_forward) * h
  points["head_top"] = points["thorax"] + (_HEAD_TOP * head_up) * h
  head_centre = points["thorax"] + (0.098 * head_up + 0.005 * head_forward) * h
  points["hair_centre"] = head_centre + (0.008 * head_up - 0.012 * head_forward) * h
  points["face_centre"] = head_centre + (-0.006 * head_up + 0.012 * head_forward) * h
  for side_name, side in (("left", 1.0), ("right", -1.0)):
    shoulder = points["thorax"] + in_torso(
        np.array([side * _SHOULDER_HALF_WIDTH, -0.025, 0.0])) * h * build[..., None]
    upper = _apply(torso, _limb_direction(angles[f"{side_name}_upper_arm_abd"],
                                          angles[f"{side_name}_upper_arm_flex"], side))
    lower = _apply(torso, _limb_direction(angles[f"{side_name}_forearm_abd"],
                                          angles[f"{side_name}_forearm_flex"], side))
    points[f"{side_name}_shoulder"] = shoulder
    points[f"{side_name}_elbow"] = shoulder + upper * _UPPER_ARM * h
    points[f"{side_name}_wrist"] = points[f"{side_name}_elbow"] + lower * _FOREARM * h
    points[f"{side_name}_hand"] = points[f"{side_name}_wrist"] + lower * 0.035 * h
    hip = pelvis + _apply(pelvis_frame, np.broadcast_to(
        np.array([side * _HIP_HALF_WIDTH, 0.0, 0.0]), pelvis.shape)) * h * build[..., None]
    thigh = _apply(pelvis_frame, _limb_direction(angles[f"{side_name}_thigh_abd"],
                                                 angles[f"{side_name}_thigh_flex"], side))
    shin = _apply(pelvis_frame, _limb_direction(angles[f"{side_name}_shin_abd"],
                                                angles[f"{side_name}_shin_flex"], side))
    points[f"{side_name}_hip"] = hip
    points[f"{side_name}_knee"] = hip + thigh * _THIGH * h
    points[f"{side_name}_ankle"] = points[f"{side_name}_knee"] + shin * _SHIN * h
    # The foot stays level, pointing forward.
    foot_forward = _apply(pelvis_frame, np.broadcast_to(forward, pelvis.shape))
    points[f"{side_name}_heel"] = points[f"{side_name}_ankle"] + (
        -0.025 * foot_forward - 0.02 * up) * h
    points[f"{side_name}_toe"] = points[f"{side_name}_ankle"] + (
        0.11 * foot_forward - 0.03 * up) * h
  stacked = np.stack([points[name] for name in _RENDER_POINTS], axis=-2)  # [n, T, P, 3]
  # Feet on the floor: the lower ankle at ankle height (plus any jump).
  lowest_ankle = np.minimum(stacked[..., _P["left_ankle"], 1], stacked[..., _P["right_ankle"], 1])
  stacked[..., 1] += (_ANKLE_HEIGHT * height - lowest_ankle + lift)[..., None]
  return stacked


def simulate(num_sequences, num_frames, seed=0, first_index=0):
  """Animates the 3D skeletons and places them in front of the camera (no rendering).

  Args:
    num_sequences: N, number of sequences.
    num_frames: T, frames per sequence (6.25 Hz).
    seed: seed; sequence i depends only on (seed, first_index + i).
    first_index: index of the first sequence.

  Returns:
    dict with
      "action": int64 [N] index into ACTION_NAMES.
      "points_3d": float64 [N, T, P, 3] world positions (m) of the render points
        (`_RENDER_POINTS`; the first 17 are the JOINT_NAMES joints); y up, floor at y = 0.
      "camera": dict of per-sequence camera parameters [N] ("distance", "elevation").
      "params": dict of per-sequence draws used by `render` (colours, sizes, placement).
  """
  _check_count("num_sequences", num_sequences, 0)
  _check_count("num_frames", num_frames, 1)
  _check_count("seed", seed, 0)
  _check_count("first_index", first_index, 0)
  uniforms, angle_noise, texture = _draw_parameters(num_sequences, seed, first_index)
  u = uniforms
  n = num_sequences
  time = np.arange(num_frames) * TIME_STEP_S  # [T]
  action = np.minimum((u[:, 0] * NUM_ACTIONS).astype(np.int64), NUM_ACTIONS - 1)
  height = _uniform(u[:, 1:2], 1.55, 1.95)
  build = _uniform(u[:, 2:3], 0.9, 1.12)
  amplitude = _uniform(u[:, 6:7], 0.8, 1.2)
  side = np.where(u[:, 7:8] < 0.5, 1.0, -1.0)
  both = u[:, 8:9] < 0.25
  phase0 = 2.0 * np.pi * u[:, 5:6]

  # Period per sequence from its action's range.
  period_low = np.array([ACTION_PERIOD_RANGE_S[name][0] for name in ACTION_NAMES])[action]
  period_high = np.array([ACTION_PERIOD_RANGE_S[name][1] for name in ACTION_NAMES])[action]
  period = _uniform(u[:, 4], period_low, period_high)[:, None]
  phase = phase0 + 2.0 * np.pi * time[None, :] / period  # [N, T]

  angles = {name: np.full((n, num_frames), value) for name, value in _DEFAULT_ANGLES.items()}
  lift = np.zeros((n, num_frames))
  back_shift = np.zeros((n, num_frames))
  for action_index, action_name in enumerate(ACTION_NAMES):
    rows = np.flatnonzero(action == action_index)
    if rows.size == 0:
      continue
    overrides = _action_angles(action_name, phase[rows], amplitude[rows], side[rows],
                               both[rows], u[rows, 40:44])
    for name, value in overrides.items():
      target = lift if name == "lift" else back_shift if name == "back_shift" else angles[name]
      target[rows] = value
  # Smooth noise: per channel two sinusoids of random frequency and phase.
  frequency = _uniform(angle_noise[..., :2], *_ANGLE_NOISE_FREQUENCY_RANGE_HZ)  # [N, C, 2]
  noise_phase = 2.0 * np.pi * angle_noise[..., 2:]
  noise = np.sin(2.0 * np.pi * frequency[..., None] * time + noise_phase[..., None]).sum(-2)
  noise *= _ANGLE_NOISE_DEGREES / np.sqrt(2.0)  # [N, C, T]
  for channel, name in enumerate(_ANGLE_CHANNELS):
    angles[name] = angles[name] + noise[:, channel]
  # Knees do not hyperextend: the shin never flexes further forward than the thigh.
  for side_name in ("left", "right"):
    angles[f"{side_name}_shin_flex"] = np.minimum(angles[f"{side_name}_shin_flex"],
                                                  angles[f"{side_name}_thigh_flex"])

  body = _skeleton(angles, height, build, lift, back_shift)  # [N, T, P, 3]

  # Placement in the world. Walkers go round a circle (as Human3.6M actors walk round the
  # capture area), facing along it; everyone else stands, turning and drifting slowly.
  walking = action == ACTION_NAMES.index("walking")
  stride_speed = 4.0 * (_THIGH + _SHIN) * height[:, 0] * np.sin(
      np.radians(24.0 * amplitude[:, 0])) / period[:, 0]  # m/s: two steps per cycle.
  radius = _uniform(u[:, 13], *_WALK_RADIUS_RANGE_M)
  direction = np.where(u[:, 14] < 0.5, 1.0, -1.0)
  circle_angle = 2.0 * np.pi * u[:, 15:16] + direction[:, None] * (
      stride_speed / radius)[:, None] * time
  walk_x = radius[:, None] * np.cos(circle_angle)
  walk_z = radius[:, None] * np.sin(circle_angle)
  # Velocity direction (dx, dz) along the circle -> yaw = atan2(dx, dz).
  walk_yaw = np.arctan2(-direction[:, None] * np.sin(circle_angle),
                        direction[:, None] * np.cos(circle_angle))
  stand_yaw = 2.0 * np.pi * u[:, 9:10] + np.radians(
      _uniform(u[:, 10:11], -12.0, 12.0)) * time  # Slow turn (deg/s).
  drift = 0.08 * np.sin(2.0 * np.pi * time / _uniform(u[:, 16:17], 6.0, 12.0)
                        + 2.0 * np.pi * u[:, 17:18])
  stand_x = _uniform(u[:, 11:12], -0.5, 0.5) + drift
  stand_z = _uniform(u[:, 12:13], -0.5, 0.5) + 0.5 * drift
  yaw = np.where(walking[:, None], walk_yaw, stand_yaw)
  root_x = np.where(walking[:, None], walk_x, stand_x)
  root_z = np.where(walking[:, None], walk_z, stand_z)
  world = _apply(_rotation_y(yaw)[:, :, None], body)
  world[..., 0] += root_x[..., None]
  world[..., 2] += root_z[..., None]

  camera = {
      "distance": _uniform(u[:, 18], *_CAMERA_DISTANCE_RANGE_M),
      "elevation": np.radians(_uniform(u[:, 19], *_CAMERA_ELEVATION_RANGE_DEG)),
  }
  params = {"height": height[:, 0], "build": build[:, 0], "thickness": _uniform(u[:, 3], 0.8, 1.25),
            "uniforms": u, "texture": texture}
  return {"action": action, "points_3d": world, "camera": camera, "params": params}

