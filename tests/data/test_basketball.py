"""Tests for the synthetic Basketball simulator (`basketball_plays`), renderer and importer
(`basketball`); numpy only."""

import itertools

import numpy as np
import pytest

from video_structure.data import basketball as bb
from video_structure.data import basketball_plays as plays_lib

DT = 1.0 / bb.FRAME_RATE_HZ


@pytest.fixture(scope="module")
def plays():
  """60 plays of 50 frames with their ball events."""
  return plays_lib.simulate_plays(60, 50, seed=7, return_events=True)


def _feet_at_pixel(row, column, image_size=64):
  """Feet coordinates of a pixel centre (inverse of the documented mapping)."""
  x_keypoint = -1.0 + 2.0 * column / (image_size - 1)
  y_keypoint = 1.0 - 2.0 * row / (image_size - 1)
  return 23.5 + 26.0 * x_keypoint, 25.0 + 26.0 * y_keypoint


def _trajectory_row(object_feet, defender_feet=None):
  """[22] row from 6 (x, y) object positions in feet (defenders default to the basket area)."""
  row = np.zeros(bb.TRAJECTORY_DIM, np.float32)
  row[:12] = np.asarray(object_feet, np.float32).reshape(12)
  row[12:] = defender_feet if defender_feet is not None else np.tile([10.0, 25.0], 5)
  return row


# ----------------------------------------------------------------------------- constants / API


def test_constants():
  assert bb.FRAME_RATE_HZ == 6.25
  assert (bb.COURT_LENGTH_FT, bb.COURT_WIDTH_FT) == (47.0, 50.0)
  assert bb.NUM_OBJECTS == 6 and bb.TRAJECTORY_DIM == 22
  assert bb.OBJECT_NAMES == ("ball", "player_1", "player_2", "player_3", "player_4", "player_5")


# ----------------------------------------------------------------------------- simulation


def test_shapes_and_dtypes(plays):
  trajectories, events = plays
  assert trajectories.shape == (60, 50, 22) and trajectories.dtype == np.float32
  assert events["ball_state"].shape == (60, 50) and events["ball_owner"].shape == (60, 50)
  assert plays_lib.simulate_plays(0, 5).shape == (0, 5, 22)


def test_determinism_and_chunking():
  first = plays_lib.simulate_plays(6, 20, seed=3)
  np.testing.assert_array_equal(first, plays_lib.simulate_plays(6, 20, seed=3))
  assert not np.array_equal(first, plays_lib.simulate_plays(6, 20, seed=4))
  chunks = np.concatenate([plays_lib.simulate_plays(2, 20, seed=3, first_index=0),
                           plays_lib.simulate_plays(3, 20, seed=3, first_index=2),
                           plays_lib.simulate_plays(1, 20, seed=3, first_index=5)])
  np.testing.assert_array_equal(first, chunks)
  # Sequences differ from each other.
  assert not np.array_equal(first[0], first[1])


@pytest.mark.parametrize("kwargs", [dict(num_sequences=-1), dict(num_sequences=2.0),
                                    dict(num_sequences=2, num_frames=0),
                                    dict(num_sequences=2, seed=-1),
                                    dict(num_sequences=2, first_index=-3)])
def test_simulate_bad_arguments(kwargs):
  name = [k for k in kwargs if k != "num_sequences"] or ["num_sequences"]
  with pytest.raises(ValueError, match=name[-1]):
    plays_lib.simulate_plays(**kwargs)


def test_everyone_stays_on_the_half_court(plays):
  trajectories, _ = plays
  x, y = trajectories[..., 0::2], trajectories[..., 1::2]
  assert x.min() >= 0.0 and x.max() <= 47.0
  assert y.min() >= 0.0 and y.max() <= 50.0
  # validate_trajectories accepts the generator's output unchanged.
  np.testing.assert_array_equal(bb.validate_trajectories(trajectories, "sim"), trajectories)


def test_speed_and_acceleration_bounds(plays):
  trajectories, _ = plays
  players = trajectories[..., 2:].reshape(60, 50, 10, 2).astype(np.float64)
  velocity = np.diff(players, axis=1) / DT
  speed = np.linalg.norm(velocity, axis=-1)
  acceleration = np.linalg.norm(np.diff(velocity, axis=1) / DT, axis=-1)
  assert speed.max() <= plays_lib.MAX_PLAYER_SPEED_FT_S + 1e-2
  assert acceleration.max() <= plays_lib.MAX_PLAYER_ACCELERATION_FT_S2 + 1e-2
  # Not trivially static: players run (some fast cuts) and change velocity.
  assert speed.mean() > 3.0
  assert np.percentile(speed, 99) > 12.0
  assert acceleration.mean() > 3.0


def test_defenders_shadow_their_man(plays):
  trajectories, _ = plays
  offense = trajectories[..., 2:12].reshape(60, 50, 5, 2)
  defense = trajectories[..., 12:22].reshape(60, 50, 5, 2)
  basket = np.array(bb.BASKET_FT, np.float32)
  man_distance = np.linalg.norm(defense - offense, axis=-1)
  assert np.median(man_distance) < 7.0
  closer_to_basket = (np.linalg.norm(defense - basket, axis=-1)
                      < np.linalg.norm(offense - basket, axis=-1))
  assert closer_to_basket.mean() > 0.9


def test_ball_events(plays):
  trajectories, events = plays
  state, owner = events["ball_state"], events["ball_owner"].astype(np.int64)
  ball = trajectories[..., :2].astype(np.float64)
  offense = trajectories[..., 2:12].reshape(60, 50, 5, 2).astype(np.float64)
  owner_distance = np.linalg.norm(
      ball - np.take_along_axis(offense, owner[..., None, None], axis=2)[:, :, 0], axis=-1)
  # Dribbled: the ball stays in the handler's hand (side + ahead + bounce offset <= sqrt(2) ft).
  assert owner_distance[state == plays_lib.BALL_DRIBBLE].max() <= 1.42
  # Over the batch there are passes, shots and rebounds.
  def starts(kind):
    return int(np.sum((state[:, 1:] == kind) & (state[:, :-1] != kind)))
  assert starts(plays_lib.BALL_PASS) >= 30
  assert starts(plays_lib.BALL_SHOT) >= 10
  assert starts(plays_lib.BALL_REBOUND) >= 10
  # Passes fly in a straight line at pass speed toward the receiver.
  in_pass = (state[:, 1:] == plays_lib.BALL_PASS) & (state[:, :-1] == plays_lib.BALL_PASS)
  in_pass &= owner[:, 1:] == owner[:, :-1]
  step = np.linalg.norm(np.diff(ball, axis=1), axis=-1)[in_pass] / DT
  assert step.size > 10
  assert step.min() >= plays_lib.PASS_SPEED_RANGE_FT_S[0] - 1e-2
  assert step.max() <= plays_lib.PASS_SPEED_RANGE_FT_S[1] + 1e-2
  # A shot ends at the rim (the frame the rebound starts).
  at_rim = (state[:, 1:] == plays_lib.BALL_REBOUND) & (state[:, :-1] == plays_lib.BALL_SHOT)
  np.testing.assert_allclose(ball[:, 1:][at_rim], np.broadcast_to(bb.BASKET_FT, (at_rim.sum(), 2)),
                             atol=1e-5)
  # Without event labels: ball near a player most of the time, away from all in flight.
  nearest = np.linalg.norm(offense - ball[:, :, None], axis=-1).min(axis=-1)
  assert np.median(nearest) < 1.5
  assert np.mean(nearest > 3.0) > 0.03


# ----------------------------------------------------------------------------- rendering


def test_object_positions_mapping():
  corners = _trajectory_row([(23.5, 25.0), (49.5, 51.0), (-2.5, -1.0), (0.0, 0.0),
                             (47.0, 50.0), (10.0, 30.0)])
  positions = bb.object_positions(corners)
  assert positions.shape == (6, 2) and positions.dtype == np.float32
  expected = [(0, 0), (1, 1), (-1, -1), (-23.5 / 26, -25 / 26), (23.5 / 26, 25 / 26),
              (-13.5 / 26, 5 / 26)]
  np.testing.assert_allclose(positions, expected, atol=1e-6)
  batch = bb.object_positions(np.zeros((2, 3, 22)))
  assert batch.shape == (2, 3, 6, 2)


def test_render_shapes():
  trajectories = plays_lib.simulate_plays(2, 4, seed=1)
  frames = bb.render_frames(trajectories)
  assert frames.shape == (2, 4, 64, 64, 3) and frames.dtype == np.uint8
  single = bb.render_frames(trajectories[1])
  assert single.shape == (4, 64, 64, 3)
  np.testing.assert_array_equal(single, frames[1])
  assert bb.render_frames(trajectories, image_size=32).shape == (2, 4, 32, 32, 3)
  assert bb.render_empty_court().shape == (64, 64, 3)
  # Chunking of the frames does not change the result.
  np.testing.assert_array_equal(bb.render_frames(trajectories, frames_per_chunk=3), frames)


def test_court_is_drawn():
  court = bb.render_empty_court(64).astype(np.int64)
  centre_row, centre_column = 31, 35  # Plain floor right of the arc top.
  np.testing.assert_array_equal(court[centre_row, centre_column], bb.FLOOR_COLOUR)
  # Line pixels (close to white) exist: boundary, arc, key.
  bright = np.all(court > 235, axis=-1)
  assert bright.sum() > 100
  # The out-of-bounds margin on the left is the dark surround.
  np.testing.assert_array_equal(court[31, 0], bb.OUT_OF_BOUNDS_COLOUR)


def test_colours_are_distinct():
  colours = np.array(bb.OBJECT_COLOURS + (bb.FLOOR_COLOUR, bb.PAINT_COLOUR, bb.LINE_COLOUR),
                     np.float64)
  for i, j in itertools.combinations(range(len(colours)), 2):
    if i >= 6 and j >= 6:
      continue  # Court colours among themselves.
    assert np.linalg.norm(colours[i] - colours[j]) > 100, (i, j)


def test_dot_lands_on_the_exact_pixel():
  row, column = 20, 40
  x_feet, y_feet = _feet_at_pixel(row, column)
  objects = [(35.0, 8.0), (x_feet, y_feet), (25.0, 42.0), (40.0, 44.0), (42.0, 8.0), (30.0, 4.0)]
  frame = bb.render_frames(_trajectory_row(objects)[None])[0].astype(np.int64)
  court = bb.render_empty_court().astype(np.int64)
  np.testing.assert_array_equal(frame[row, column], bb.PLAYER_COLOURS[0])
  # Coverage clip(2.75 + 0.5 - d): full at d <= 2.25, partial at d = 3, none at d = 4.
  np.testing.assert_array_equal(frame[row, column + 2], bb.PLAYER_COLOURS[0])
  expected_partial = np.rint(court[row + 3, column] + 0.25 * (
      np.array(bb.PLAYER_COLOURS[0]) - court[row + 3, column]))
  # (+-1: the float32 feet round trip moves the centre by ~1e-5 px.)
  np.testing.assert_allclose(frame[row + 3, column], expected_partial, atol=1)
  assert np.all(frame[row + 3, column] != court[row + 3, column])
  np.testing.assert_array_equal(frame[row, column + 4], court[row, column + 4])
  np.testing.assert_array_equal(frame[row - 4, column], court[row - 4, column])
  positions = bb.object_positions(_trajectory_row(objects))
  np.testing.assert_allclose(positions[1], [-1 + 2 * column / 63, 1 - 2 * row / 63], atol=1e-6)


def test_object_positions_match_rendered_centroids():
  # Fractional positions on plain floor (away from court lines), well separated.
  objects = [(35.3, 12.7), (28.1, 40.6), (40.2, 30.3), (11.7, 8.9), (33.9, 24.2), (23.3, 3.9)]
  trajectory = _trajectory_row(objects)
  frame = bb.render_frames(trajectory[None])[0].astype(np.float64)
  court = bb.render_empty_court().astype(np.float64)
  difference = np.abs(frame - court).sum(axis=-1)  # [H, W] intensity of the change.
  positions = bb.object_positions(trajectory)
  rows, columns = np.mgrid[0:64, 0:64]
  for obj in range(6):
    column = (positions[obj, 0] + 1) * 63 / 2
    row = (1 - positions[obj, 1]) * 63 / 2
    near = (rows - row) ** 2 + (columns - column) ** 2 <= 5.0**2
    weights = difference * near
    centroid = np.array([(weights * columns).sum(), (weights * rows).sum()]) / weights.sum()
    assert np.linalg.norm(centroid - [column, row]) < 0.3, (obj, centroid, column, row)
    # The pixel nearest the centre has the object's own colour.
    np.testing.assert_array_equal(frame[int(round(row)), int(round(column))],
                                  bb.OBJECT_COLOURS[obj])


def test_ball_is_drawn_on_top_and_defenders_are_not_drawn():
  objects = [(30.0, 20.0)] * 6  # Everything at one spot: the ball must be visible.
  trajectory = _trajectory_row(objects)
  frame = bb.render_frames(trajectory[None])[0]
  x_keypoint, y_keypoint = bb.object_positions(trajectory)[0]
  row, column = round((1 - y_keypoint) * 63 / 2), round((x_keypoint + 1) * 63 / 2)
  np.testing.assert_array_equal(frame[row, column], bb.BALL_COLOUR)
  moved_defenders = _trajectory_row(objects, defender_feet=np.tile([40.0, 40.0], 5))
  np.testing.assert_array_equal(bb.render_frames(moved_defenders[None])[0], frame)


def test_dots_beyond_the_frame_edge_are_clipped_not_lost():
  # Positions at the importer's tolerance (3 ft beyond the lines) put dot centres outside the
  # frame; in the last frame of a render call this used to index past the canvas.
  column = 20
  x_feet, _ = _feet_at_pixel(0, column)
  inside = [(35.0, 8.0), (25.0, 42.0), (40.0, 44.0), (42.0, 8.0), (30.0, 4.0), (30.0, 30.0)]
  edge = [(x_feet, -3.0),  # Ball 2.42 px below the bottom row.
          (50.0, 25.0),  # Player 1, 1.21 px right of the last column.
          (x_feet, 53.0),  # Player 2, 2.42 px above the top row.
          (-3.0, 25.0),  # Player 3, 0.61 px left of the first column.
          (1e4, 1e4), (-1e4, 25.0)]  # Players 4 and 5 far away: not drawn.
  frames = bb.render_frames(np.stack([_trajectory_row(inside), _trajectory_row(edge)])[None])[0]
  frame = frames[1].astype(np.float64)
  court = bb.render_empty_court().astype(np.float64)
  positions = bb.object_positions(_trajectory_row(edge))
  rows, columns = np.mgrid[0:64, 0:64]
  expected = court.copy()
  for obj in (1, 2, 3, 0):  # Drawing order: players, then the ball.
    centre_column = (positions[obj, 0] + 1) * 63 / 2
    centre_row = (1 - positions[obj, 1]) * 63 / 2
    distance = np.hypot(columns - centre_column, rows - centre_row)
    coverage = np.clip(bb.object_radii_px()[obj] + 0.5 - distance, 0, 1)[..., None]
    expected = np.rint(expected + coverage * (np.array(bb.OBJECT_COLOURS[obj]) - expected))
  np.testing.assert_allclose(frame, expected, atol=1)  # (float32 feet round trip)
  # Each edge dot shows where it overlaps the frame: the ball's coverage is 0.08 at
  # (63, 20), player 1 fills (31, 63), player 3 fills (31, 0).
  assert 0 < np.abs(frame[63, column] - court[63, column]).max() < 30
  np.testing.assert_array_equal(frame[31, 63], bb.PLAYER_COLOURS[0])
  np.testing.assert_array_equal(frame[31, 0], bb.PLAYER_COLOURS[2])
  assert np.abs(frame[0, column] - court[0, column]).max() > 0  # Player 2 at the top row.


def test_render_rejects_bad_input():
  with pytest.raises(ValueError, match="22"):
    bb.render_frames(np.zeros((3, 21)))
  with pytest.raises(ValueError, match="NaN"):
    bb.render_frames(np.full((3, 22), np.nan))
  with pytest.raises(ValueError, match="image_size"):
    bb.render_frames(np.zeros((3, 22)), image_size=0)


# ----------------------------------------------------------------------------- validation / I/O


def _valid(num_sequences=2, num_frames=5):
  return np.tile(np.float32([20.0, 25.0]), (num_sequences, num_frames, 11))


@pytest.mark.parametrize("bad, expected", [
    (np.zeros((2, 5, 21)), r"\(N, T, 22\).*\(2, 5, 21\)"),
    (np.zeros((5, 22)), r"\(5, 22\)"),
    (np.zeros((2, 1, 22)), r"T >= 2"),
    (np.full((2, 5, 22), "a"), "real numbers"),
])
def test_validate_rejects_shape_and_dtype(bad, expected):
  with pytest.raises(ValueError, match="my_source") as error:
    bb.validate_trajectories(bad, "my_source")
  assert error.match(expected)


def test_validate_rejects_nan_and_out_of_court():
  trajectories = _valid()
  trajectories[1, 3, 7] = np.nan
  with pytest.raises(ValueError, match=r"my_source.*NaN.*\(1, 3, 7\)"):
    bb.validate_trajectories(trajectories, "my_source")
  far_x = _valid()
  far_x[0, 0, 4] = 94.0  # Full-court coordinates are not accepted.
  with pytest.raises(ValueError, match=r"my_source.*x positions.*94\.000"):
    bb.validate_trajectories(far_x, "my_source")
  far_y = _valid()
  far_y[0, 0, 5] = -4.0
  with pytest.raises(ValueError, match=r"my_source.*y positions.*-4\.000"):
    bb.validate_trajectories(far_y, "my_source")
  # Within the 3 ft tolerance is fine; ints are converted.
  near = _valid()
  near[0, 0, 0] = -2.5
  assert bb.validate_trajectories(near, "s").dtype == np.float32
  assert bb.validate_trajectories(np.full((1, 2, 22), 10), "s").dtype == np.float32


def test_load_round_trip_npy_and_npz(tmp_path):
  trajectories = plays_lib.simulate_plays(3, 6, seed=2)
  npy_path = tmp_path / "plays.npy"
  np.save(npy_path, trajectories.astype(np.float64))
  loaded = bb.load_trajectories(npy_path)
  assert loaded.dtype == np.float32
  np.testing.assert_array_equal(loaded, trajectories)
  single = tmp_path / "single.npz"
  np.savez(single, anything=trajectories)
  np.testing.assert_array_equal(bb.load_trajectories(str(single)), trajectories)
  keyed = tmp_path / "keyed.npz"
  np.savez(keyed, trajectories=trajectories, other=np.zeros(3))
  np.testing.assert_array_equal(bb.load_trajectories(keyed), trajectories)


def test_load_errors_name_the_path(tmp_path):
  missing = tmp_path / "missing.npy"
  with pytest.raises(FileNotFoundError, match="missing.npy"):
    bb.load_trajectories(missing)
  ambiguous = tmp_path / "ambiguous.npz"
  np.savez(ambiguous, a=_valid(), b=_valid())
  with pytest.raises(ValueError, match=r"ambiguous\.npz.*'trajectories'"):
    bb.load_trajectories(ambiguous)
  wrong_shape = tmp_path / "wrong_shape.npy"
  np.save(wrong_shape, np.zeros((4, 22)))
  with pytest.raises(ValueError, match=r"wrong_shape\.npy.*\(N, T, 22\)"):
    bb.load_trajectories(wrong_shape)
  nan_file = tmp_path / "nan.npy"
  values = _valid()
  values[0, 0, 0] = np.nan
  np.save(nan_file, values)
  with pytest.raises(ValueError, match=r"nan\.npy.*NaN"):
    bb.load_trajectories(nan_file)
  text = tmp_path / "plays.csv"
  text.write_text("1,2\n")
  with pytest.raises(ValueError, match=r"plays\.csv.*\.npy or \.npz"):
    bb.load_trajectories(text)
  corrupt = tmp_path / "corrupt.npy"
  corrupt.write_bytes(b"not a numpy file")
  with pytest.raises(ValueError, match=r"corrupt\.npy"):
    bb.load_trajectories(corrupt)
