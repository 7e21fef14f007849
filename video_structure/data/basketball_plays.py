"""Simulated basketball plays in the SportVU trajectory layout (numpy only).

`simulate_plays` generates multi-agent plays (ball, five offensive players, five defenders)
as float arrays `(N, T, 22)` in feet on the left half court, 6.25 Hz, in the layout that
`basketball` (the court, the renderer and the real-data importer) documents and renders.
Sequence i depends only on (seed, first_index + i).
"""

import numpy as np

# The court and layout constants shared with the renderer.
from video_structure.data.basketball import (BASKET_FT, COURT_LENGTH_FT, COURT_WIDTH_FT,
                                             NUM_PLAYERS_PER_TEAM, TIME_STEP_S, TRAJECTORY_DIM)

# Motion limits of the simulated players (ft/s and ft/s^2). Elite sprint speed is ~20 ft/s;
# the acceleration bound is a typical human value, a bit above a sprint start.
MAX_PLAYER_SPEED_FT_S = 20.0
MAX_PLAYER_ACCELERATION_FT_S2 = 18.0
# Ball in-flight speeds (ft/s) in the top-down projection.
PASS_SPEED_RANGE_FT_S = (35.0, 50.0)
SHOT_SPEED_RANGE_FT_S = (28.0, 38.0)
REBOUND_SPEED_RANGE_FT_S = (15.0, 25.0)
# Ball states, as returned by simulate_plays(..., return_events=True).
BALL_DRIBBLE, BALL_PASS, BALL_SHOT, BALL_REBOUND = 0, 1, 2, 3

# Canonical offensive spots (ft): corners, short corners, wings, slots, top, elbows, blocks,
# mid-range and high post. Targets are these plus jitter.
_OFFENSE_SPOTS_FT = np.array(
    [
        (3.0, 3.0), (3.0, 47.0), (4.0, 12.0), (4.0, 38.0), (20.5, 6.5), (20.5, 43.5),
        (27.0, 15.0), (27.0, 35.0), (30.0, 25.0), (19.0, 17.0), (19.0, 33.0), (8.0, 18.0),
        (8.0, 32.0), (13.0, 12.0), (13.0, 38.0), (17.0, 25.0),
    ],
    dtype=np.float64,
)
# Players keep targets inside this box and brake so that they stay inside the court.
_TARGET_MARGIN_FT = 1.5
_WALL_MARGIN_FT = 0.75
_WALL_BRAKING_FT_S2 = 9.0
_VELOCITY_TIME_CONSTANT_S = 0.4
_SPACING_RADIUS_FT = 10.0
_SPACING_SPEED_FT_S = 8.0
# Dribble: ball held ~1 ft to the side and ~0.6 ft ahead of the handler, bouncing along the
# heading with a 4-frame (0.64 s) period. A fixed table keeps the simulation free of sin().
_DRIBBLE_SIDE_FT = 1.0
_DRIBBLE_AHEAD_FT = 0.6
_DRIBBLE_BOUNCE_FT = np.array([0.0, 0.4, 0.0, -0.4])
_MIN_DRIBBLE_FRAMES = 3  # A receiver holds the ball at least this long before passing/shooting.
_BURN_IN_FRAMES = 10  # Simulated before the first recorded frame, so plays start mid-motion.

# Random draws per sequence: a fixed block up front and a fixed block per frame, so a
# sequence depends only on its own generator (and a longer sequence extends a shorter one).
_NUM_INIT_DRAWS = 64
_NUM_STEP_DRAWS = 40


def _norm(vectors):
  """Euclidean norm over the last axis (length 2); sqrt is exactly rounded, so deterministic."""
  return np.sqrt(vectors[..., 0] * vectors[..., 0] + vectors[..., 1] * vectors[..., 1])


def _clip_norm(vectors, max_norm):
  """Scales vectors [..., 2] down to at most max_norm (broadcastable [...]) in length."""
  length = _norm(vectors)
  scale = np.minimum(1.0, max_norm / np.maximum(length, 1e-12))
  return vectors * scale[..., None]


def _choose(weights, uniforms):
  """Index sampled from non-negative weights [N, K] with uniforms [N] in [0, 1) -> [N] int."""
  cumulative = np.cumsum(weights, axis=1)
  threshold = uniforms * cumulative[:, -1]
  index = np.sum(cumulative <= threshold[:, None], axis=1)
  return np.minimum(index, weights.shape[1] - 1)


def _wall_limited(velocity, position, low, high):
  """Caps velocity components toward a wall so a player can brake before reaching it.

  velocity, position: [..., 2]; low, high: [2] bounds (ft). Returns the capped velocity
  [..., 2] and the per-component lower and upper limits [..., 2] (ft/s).
  """
  room_low = np.maximum(position - low, 0.0)
  room_high = np.maximum(high - position, 0.0)
  # Continuous stopping distance, and never more than the remaining room in one frame.
  limit_low = -np.minimum(np.sqrt(2.0 * _WALL_BRAKING_FT_S2 * room_low), room_low / TIME_STEP_S)
  limit_high = np.minimum(np.sqrt(2.0 * _WALL_BRAKING_FT_S2 * room_high),
                          room_high / TIME_STEP_S)
  return np.clip(velocity, limit_low, limit_high), limit_low, limit_high


def _accelerate(velocity, desired_velocity, limit_low, limit_high):
  """Velocity tracking with bounded acceleration and speed. [..., 2] -> [..., 2].

  Components moving toward a wall faster than the braking limit (limit_low/limit_high,
  [..., 2]) are corrected within one frame instead of with the usual lag, so players stop
  before the boundary; the acceleration bound still applies.
  """
  too_fast = (velocity < limit_low) | (velocity > limit_high)
  time_constant = np.where(too_fast, TIME_STEP_S, _VELOCITY_TIME_CONSTANT_S)
  acceleration = (desired_velocity - velocity) / time_constant
  # Braking components get the acceleration budget first; the other component gets the rest
  # (the two are orthogonal, so the total stays within the bound).
  braking = _clip_norm(np.where(too_fast, acceleration, 0.0), MAX_PLAYER_ACCELERATION_FT_S2)
  remaining = np.sqrt(np.maximum(
      MAX_PLAYER_ACCELERATION_FT_S2**2 - _norm(braking) * _norm(braking), 0.0))
  acceleration = braking + _clip_norm(np.where(too_fast, 0.0, acceleration), remaining)
  # Projection onto the speed ball is non-expansive, so |dv| <= a_max * dt still holds.
  return _clip_norm(velocity + acceleration * TIME_STEP_S, MAX_PLAYER_SPEED_FT_S)


class _PlaySimulator:
  """Vectorised state of N plays; all randomness comes from per-sequence draw tables."""

  def __init__(self, init_draws):
    """init_draws: [N, _NUM_INIT_DRAWS] uniforms in [0, 1)."""
    u = init_draws
    n = u.shape[0]
    self.rows = np.arange(n)
    self.basket = np.array(BASKET_FT)
    self.court_low = np.array([_WALL_MARGIN_FT, _WALL_MARGIN_FT])
    self.court_high = np.array([COURT_LENGTH_FT, COURT_WIDTH_FT]) - _WALL_MARGIN_FT
    # Per-play style, so plays differ in tempo, passing, shooting and defence.
    self.pace = 0.8 + 0.3 * u[:, 0]
    self.pass_rate = 0.04 + 0.08 * u[:, 1]
    self.shot_scale = 0.5 + 1.0 * u[:, 2]
    self.retarget_rate = 0.02 + 0.05 * u[:, 3]
    self.guard_distance = 2.5 + 2.0 * u[:, 4]
    self.help_sag = 0.05 + 0.2 * u[:, 5]
    self.defender_speed = 15.0 + 4.5 * u[:, 6]
    self.defender_gain = 1.5 + 1.5 * u[:, 7]
    # Offense starts on 5 distinct spots (random permutation of the spot list) with jitter.
    num_spots = len(_OFFENSE_SPOTS_FT)
    spot_order = np.argsort(u[:, 8:8 + num_spots], axis=1)[:, :NUM_PLAYERS_PER_TEAM]
    jitter = (u[:, 24:34].reshape(n, NUM_PLAYERS_PER_TEAM, 2) - 0.5) * 4.0
    self.offense_pos = self._clip_target(_OFFENSE_SPOTS_FT[spot_order] + jitter)
    self.offense_vel = np.zeros((n, NUM_PLAYERS_PER_TEAM, 2))
    self.offense_target = self.offense_pos.copy()
    # Ball starts dribbled by a random player; in ~30% of plays the handler is still bringing
    # the ball up from near the half-court line toward the spot.
    self.ball_owner = np.minimum((u[:, 44] * NUM_PLAYERS_PER_TEAM).astype(np.int64), 4)
    bring_up = u[:, 47] < 0.3
    bring_up_pos = np.stack([38.0 + 7.0 * u[:, 48], 12.0 + 26.0 * u[:, 49]], axis=1)
    handler_pos = self.offense_pos[self.rows, self.ball_owner]
    self.offense_pos[self.rows, self.ball_owner] = np.where(
        bring_up[:, None], bring_up_pos, handler_pos)
    self.offense_mode = np.zeros((n, NUM_PLAYERS_PER_TEAM), dtype=np.int64)  # 0 spot,1 cut,2 screen
    self.offense_speed = self.pace[:, None] * (8.0 + 8.0 * u[:, 34:39])
    self.screen_side = np.where(u[:, 39:44] < 0.5, -1.0, 1.0)
    to_basket = self.basket - self.offense_pos
    self.offense_heading = to_basket / np.maximum(_norm(to_basket), 1e-9)[..., None]
    # Defenders start on the line from their man to the basket.
    self.defense_pos = self._defender_targets(self.offense_pos, self.offense_pos[:, 0])
    self.defense_vel = np.zeros_like(self.defense_pos)
    self.ball_state = np.full(n, BALL_DRIBBLE, dtype=np.int64)
    self.ball_speed = np.zeros(n)
    self.hand_side = np.where(u[:, 45] < 0.5, -1.0, 1.0)
    self.bounce_phase = np.minimum((u[:, 46] * 4).astype(np.int64), 3)
    self.frames_held = np.full(n, _MIN_DRIBBLE_FRAMES, dtype=np.int64)
    self.ball_pos = self._dribble_position()
    self.num_wall_clips = 0  # Safety-net clips (expected to stay 0; the braking handles walls).

  def _clip_target(self, target):
    low = _TARGET_MARGIN_FT
    return np.clip(target, [low, low], [COURT_LENGTH_FT - low, COURT_WIDTH_FT - low])

  def _defender_targets(self, offense_pos, ball_pos):
    """Defenders stand between their man and the basket; off-ball defenders sag toward help.

    offense_pos: [N, 5, 2]; ball_pos: [N, 2] -> [N, 5, 2].
    """
    man_to_basket = self.basket - offense_pos
    man_basket_distance = _norm(man_to_basket)
    man_ball_distance = _norm(ball_pos[:, None, :] - offense_pos)
    gap = self.guard_distance[:, None] + self.help_sag[:, None] * man_ball_distance
    gap = np.minimum(np.minimum(gap, 12.0), 0.7 * man_basket_distance)
    direction = man_to_basket / np.maximum(man_basket_distance, 1e-9)[..., None]
    return offense_pos + gap[..., None] * direction

  def _dribble_position(self):
    """Ball position when dribbled by self.ball_owner: hand offset plus bounce. -> [N, 2]."""
    heading = self.offense_heading[self.rows, self.ball_owner]
    side = np.stack([-heading[:, 1], heading[:, 0]], axis=1)
    ahead = _DRIBBLE_AHEAD_FT + _DRIBBLE_BOUNCE_FT[self.bounce_phase]
    offset = (self.hand_side * _DRIBBLE_SIDE_FT)[:, None] * side + ahead[:, None] * heading
    return self.offense_pos[self.rows, self.ball_owner] + offset

  def _ball_decisions(self, u):
    """Dribbling handlers may pass or shoot. Returns [N, 5] bool 'just passed or shot'."""
    n = len(self.rows)
    handler = self.ball_owner
    handler_pos = self.offense_pos[self.rows, handler]
    can_act = (self.ball_state == BALL_DRIBBLE) & (self.frames_held >= _MIN_DRIBBLE_FRAMES)
    basket_distance = _norm(handler_pos - self.basket)
    shot_probability = np.where(
        basket_distance < 8.0, 0.08, np.where(basket_distance < 25.0, 0.015, 0.003)
    ) * self.shot_scale
    shoot = can_act & (u[:, 0] < shot_probability)
    passing = can_act & ~shoot & (u[:, 0] < shot_probability + self.pass_rate)
    # Receivers: nearer and more open teammates are preferred.
    teammate_distance = _norm(self.offense_pos - handler_pos[:, None, :])
    openness = np.minimum(_norm(self.offense_pos - self.defense_pos), 8.0)
    weights = (0.5 + openness / 4.0) / (1.0 + teammate_distance / 20.0)
    weights[self.rows, handler] = 0.0
    receiver = _choose(weights, u[:, 1])
    released = np.zeros((n, NUM_PLAYERS_PER_TEAM), dtype=bool)
    released[self.rows, handler] = passing | shoot
    pass_speed = PASS_SPEED_RANGE_FT_S[0] + np.diff(PASS_SPEED_RANGE_FT_S)[0] * u[:, 2]
    shot_speed = SHOT_SPEED_RANGE_FT_S[0] + np.diff(SHOT_SPEED_RANGE_FT_S)[0] * u[:, 2]
    self.ball_state = np.where(passing, BALL_PASS, np.where(shoot, BALL_SHOT, self.ball_state))
    self.ball_owner = np.where(passing, receiver, self.ball_owner)
    self.ball_speed = np.where(passing, pass_speed, np.where(shoot, shot_speed, self.ball_speed))
    return released

  def _retarget_offense(self, u, released):
    """Random new cuts: spots, basket cuts/drives, screens for the handler."""
    n = len(self.rows)
    dribbling = self.ball_state == BALL_DRIBBLE
    is_handler = np.zeros((n, NUM_PLAYERS_PER_TEAM), dtype=bool)
    is_handler[self.rows, self.ball_owner] = dribbling
    reached = _norm(self.offense_target - self.offense_pos) < 2.0
    hazard = self.retarget_rate[:, None] + np.where(reached, 0.2, 0.0)
    retarget = (u[:, 5:10] < hazard) | released
    mode_draw = u[:, 10:15]
    cut = np.where(is_handler, mode_draw < 0.35, mode_draw < 0.2)
    screen = ~is_handler & dribbling[:, None] & (mode_draw >= 0.2) & (mode_draw < 0.4)
    new_mode = np.where(cut, 1, np.where(screen, 2, 0))
    spot_index = np.minimum((u[:, 15:20] * len(_OFFENSE_SPOTS_FT)).astype(np.int64),
                            len(_OFFENSE_SPOTS_FT) - 1)
    jitter = u[:, 20:30].reshape(n, NUM_PLAYERS_PER_TEAM, 2) - 0.5
    spot_target = _OFFENSE_SPOTS_FT[spot_index] + 4.0 * jitter
    cut_target = self.basket + np.stack(
        [1.5 + 4.0 * u[:, 15:20], 10.0 * jitter[..., 1]], axis=-1)
    new_target = self._clip_target(np.where((new_mode == 1)[..., None], cut_target, spot_target))
    speed_draw = u[:, 30:35]
    new_speed = self.pace[:, None] * np.where(
        new_mode == 1, 14.0 + 5.0 * speed_draw,
        np.where(new_mode == 2, 8.0 + 6.0 * speed_draw, 8.0 + 8.0 * speed_draw))
    self.offense_mode = np.where(retarget, new_mode, self.offense_mode)
    self.offense_target = np.where(retarget[..., None], new_target, self.offense_target)
    self.offense_speed = np.where(retarget, new_speed, self.offense_speed)
    self.screen_side = np.where(retarget, np.where(u[:, 35:40] < 0.5, -1.0, 1.0),
                                self.screen_side)
    # Screeners track a spot beside the handler's defender while the ball is dribbled.
    handler_pos = self.offense_pos[self.rows, self.ball_owner]
    handler_defender = self.defense_pos[self.rows, self.ball_owner]
    away = handler_pos - handler_defender
    away = away / np.maximum(_norm(away), 1e-9)[:, None]
    beside = np.stack([-away[:, 1], away[:, 0]], axis=1)
    screen_spot = handler_defender[:, None, :] + 2.5 * self.screen_side[..., None] * beside[:, None]
    tracking = (self.offense_mode == 2) & ~is_handler & dribbling[:, None]
    self.offense_target = np.where(
        tracking[..., None], self._clip_target(screen_spot), self.offense_target)

  def _move_offense(self):
    target = self.offense_target.copy()
    speed = self.offense_speed.copy()
    # The rebounder goes to meet the ball.
    chasing = np.zeros(target.shape[:2], dtype=bool)
    chasing[self.rows, self.ball_owner] = self.ball_state == BALL_REBOUND
    target = np.where(chasing[..., None], self.ball_pos[:, None, :], target)
    speed = np.where(chasing, 16.0 * self.pace[:, None], speed)
    to_target = target - self.offense_pos
    distance = _norm(to_target)
    goal_speed = np.minimum(speed, 1.5 * distance)  # Slow down on arrival.
    desired = to_target * (goal_speed / np.maximum(distance, 1e-9))[..., None]
    # Spacing: teammates repel within _SPACING_RADIUS_FT, except a screener and the handler.
    offset = self.offense_pos[:, :, None, :] - self.offense_pos[:, None, :, :]  # [N, i, j, 2]
    pair_distance = _norm(offset)
    strength = _SPACING_SPEED_FT_S * np.maximum(0.0, 1.0 - pair_distance / _SPACING_RADIUS_FT)
    strength[:, np.arange(5), np.arange(5)] = 0.0
    screening = (self.offense_mode == 2) & (self.ball_state == BALL_DRIBBLE)[:, None]
    strength[self.rows, :, self.ball_owner] *= ~screening
    strength[self.rows, self.ball_owner, :] *= ~screening
    push = offset * (strength / np.maximum(pair_distance, 1e-9))[..., None]
    desired = desired + push.sum(axis=2)
    desired = _clip_norm(desired, MAX_PLAYER_SPEED_FT_S)
    desired, limit_low, limit_high = _wall_limited(
        desired, self.offense_pos, self.court_low, self.court_high)
    self.offense_vel = _accelerate(self.offense_vel, desired, limit_low, limit_high)
    self.offense_pos = self._step_inside(self.offense_pos, self.offense_vel)
    moving = _norm(self.offense_vel) > 2.0
    heading = self.offense_vel / np.maximum(_norm(self.offense_vel), 1e-9)[..., None]
    self.offense_heading = np.where(moving[..., None], heading, self.offense_heading)

  def _move_defense(self):
    target = self._defender_targets(self.offense_pos, self.ball_pos)
    desired = _clip_norm((target - self.defense_pos) * self.defender_gain[:, None, None],
                         self.defender_speed[:, None])
    offset = self.defense_pos[:, :, None, :] - self.defense_pos[:, None, :, :]
    pair_distance = _norm(offset)
    strength = 4.0 * np.maximum(0.0, 1.0 - pair_distance / 4.0)
    strength[:, np.arange(5), np.arange(5)] = 0.0
    desired = desired + (offset * (strength / np.maximum(pair_distance, 1e-9))[..., None]).sum(2)
    desired = _clip_norm(desired, MAX_PLAYER_SPEED_FT_S)
    desired, limit_low, limit_high = _wall_limited(
        desired, self.defense_pos, self.court_low, self.court_high)
    self.defense_vel = _accelerate(self.defense_vel, desired, limit_low, limit_high)
    self.defense_pos = self._step_inside(self.defense_pos, self.defense_vel)

  def _step_inside(self, position, velocity):
    new_position = position + velocity * TIME_STEP_S
    clipped = np.clip(new_position, 0.0, [COURT_LENGTH_FT, COURT_WIDTH_FT])
    self.num_wall_clips += int(np.count_nonzero(clipped != new_position))
    return clipped

  def _move_ball(self, u):
    self.bounce_phase = (self.bounce_phase + 1) % 4
    self.hand_side = np.where(u[:, 4] < 0.1, -self.hand_side, self.hand_side)  # Crossovers.
    self.frames_held += 1
    in_flight = self.ball_state != BALL_DRIBBLE
    flight_target = np.where(
        (self.ball_state == BALL_SHOT)[:, None], self.basket,
        self.offense_pos[self.rows, self.ball_owner])
    to_target = flight_target - self.ball_pos
    distance = _norm(to_target)
    step = self.ball_speed * TIME_STEP_S
    arrives = in_flight & (distance <= step)
    flying = self.ball_pos + to_target * (step / np.maximum(distance, 1e-9))[:, None]
    # A shot reaching the rim bounces off toward a rebounder (nearer the basket is likelier).
    shot_arrives = arrives & (self.ball_state == BALL_SHOT)
    catch = arrives & ~shot_arrives
    basket_distance = _norm(self.offense_pos - self.basket)
    rebounder = _choose(1.0 / (1.0 + basket_distance / 6.0), u[:, 3])
    rebound_speed = (REBOUND_SPEED_RANGE_FT_S[0]
                     + np.diff(REBOUND_SPEED_RANGE_FT_S)[0] * u[:, 2])
    self.ball_state = np.where(shot_arrives, BALL_REBOUND,
                               np.where(catch, BALL_DRIBBLE, self.ball_state))
    self.ball_owner = np.where(shot_arrives, rebounder, self.ball_owner)
    self.ball_speed = np.where(shot_arrives, rebound_speed, self.ball_speed)
    self.frames_held = np.where(catch, 0, self.frames_held)
    dribble_pos = self._dribble_position()
    ball_pos = np.where(in_flight[:, None], flying, dribble_pos)
    ball_pos = np.where(shot_arrives[:, None], self.basket, ball_pos)
    ball_pos = np.where(catch[:, None], dribble_pos, ball_pos)
    self.ball_pos = np.clip(ball_pos, 0.0, [COURT_LENGTH_FT, COURT_WIDTH_FT])

  def step(self, u):
    """Advances all plays by one frame; u: [N, _NUM_STEP_DRAWS] uniforms."""
    released = self._ball_decisions(u)
    self._retarget_offense(u, released)
    self._move_offense()
    self._move_defense()
    self._move_ball(u)

  def trajectory_row(self):
    """Current state as [N, 22] in the SportVU column layout."""
    n = len(self.rows)
    return np.concatenate(
        [self.ball_pos, self.offense_pos.reshape(n, 10), self.defense_pos.reshape(n, 10)], axis=1)


def simulate_plays(num_sequences, num_frames=50, seed=0, first_index=0, return_events=False):
  """Simulates basketball plays in the SportVU layout.

  Sequence i is generated from np.random.default_rng([seed, first_index + i]) alone, so any
  chunking or sharding of the index range gives identical sequences (deterministic given seed).

  Args:
    num_sequences: number of plays N (>= 0).
    num_frames: frames per play T (>= 1), 6.25 Hz.
    seed: non-negative integer seed.
    first_index: global index of the first sequence (>= 0).
    return_events: if True, also return a dict with 'ball_state' [N, T] int8 (BALL_DRIBBLE,
      BALL_PASS, BALL_SHOT, BALL_REBOUND) and 'ball_owner' [N, T] int8 (0-4: offensive player
      who dribbles the ball, or the pass receiver / rebounder while in flight; the shooter's
      former index is kept during a shot).

  Returns:
    trajectories [N, T, 22] float32 in feet (and the events dict if return_events).
  """
  for name, value, minimum in (("num_sequences", num_sequences, 0), ("num_frames", num_frames, 1),
                               ("seed", seed, 0), ("first_index", first_index, 0)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
      raise ValueError(f"simulate_plays: {name} must be an integer >= {minimum}, got {value!r}.")
  total_frames = _BURN_IN_FRAMES + num_frames
  init_draws = np.empty((num_sequences, _NUM_INIT_DRAWS))
  step_draws = np.empty((num_sequences, total_frames, _NUM_STEP_DRAWS))
  for i in range(num_sequences):
    rng = np.random.default_rng([int(seed), int(first_index) + i])
    init_draws[i] = rng.random(_NUM_INIT_DRAWS)
    step_draws[i] = rng.random((total_frames, _NUM_STEP_DRAWS))
  trajectories = np.empty((num_sequences, num_frames, TRAJECTORY_DIM), dtype=np.float32)
  ball_state = np.empty((num_sequences, num_frames), dtype=np.int8)
  ball_owner = np.empty((num_sequences, num_frames), dtype=np.int8)
  if num_sequences > 0:
    simulator = _PlaySimulator(init_draws)
    for t in range(total_frames):
      simulator.step(step_draws[:, t])
      frame = t - _BURN_IN_FRAMES
      if frame >= 0:
        trajectories[:, frame] = simulator.trajectory_row()
        ball_state[:, frame] = simulator.ball_state
        ball_owner[:, frame] = simulator.ball_owner
  if return_events:
    return trajectories, {"ball_state": ball_state, "ball_owner": ball_owner}
  return trajectories
