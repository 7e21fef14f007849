"""Tests of the synthetic development suite (`synthetic_scenes`): positions, identity, the
sets' properties, the files and the folder reader's view of them."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from video_structure.data import synthetic_scenes as ss
from video_structure.data import video_folder as vf

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PX = ss.PX_PER_UNIT  # 31.5 px per coordinate unit at 64x64.
BLACK = (0, 0, 0)


def flat_spec(shape="disc", size=9.0, **overrides):
  """A flat black floor, a white object (0) of `shape` and a small red disc (1)."""
  values = dict(name="test", description="a test set", objects=(
      ss.ObjectSpec(shape, size, (255, 255, 255), 1.5),
      ss.ObjectSpec("disc", 5, (255, 0, 0), 2.0)), background="flat", background_colour=BLACK)
  values.update(overrides)
  return ss.SceneSetSpec(**values)


def to_pixels(positions, image_size=64):
  """(column, row) of (x, y) coordinates: the project's convention, written out here.

  Args:
    positions: [..., 2] (x, y), x right, y up.
    image_size: S.

  Returns:
    [..., 2] (column, row) pixel centres.
  """
  positions = np.asarray(positions, np.float64)
  return np.stack([(positions[..., 0] + 1.0) * (image_size - 1) / 2.0,
                   (1.0 - positions[..., 1]) * (image_size - 1) / 2.0], axis=-1)


def centroids(weights):
  """(column, row) centroids of weights [T, H, W] -> [T, 2]."""
  weights = np.asarray(weights, np.float64)
  total = weights.sum(axis=(1, 2))
  rows = (weights.sum(axis=2) * np.arange(weights.shape[1])).sum(axis=1) / total
  columns = (weights.sum(axis=1) * np.arange(weights.shape[2])).sum(axis=1) / total
  return np.stack([columns, rows], axis=-1)


def planned(spec, world_positions, seed=0):
  """A plan of spec with the given world positions [T, N, 2]."""
  world_positions = np.asarray(world_positions, np.float64)
  plan = ss.plan_sequence(spec, np.random.default_rng(seed), world_positions.shape[0])
  return dataclasses.replace(plan, world_positions=world_positions)


# Object 0 at these points, each a frame; wholly inside the frame for sizes up to 13 px.
POINTS = np.array([(0.0, 0.0), (0.5, 0.5), (-0.7, 0.3), (0.31, -0.62), (-0.45, -0.8),
                   (0.75, -0.7), (-0.78, 0.77)])
FAR_AWAY = (5.0, 5.0)  # Object 1 out of view.


# ----------------------------------------------------------------------------- positions


@pytest.mark.parametrize("shape", ss.SHAPES)
@pytest.mark.parametrize("size", [4, 9, 13])
def test_object_centroid_is_its_position(shape, size):
  spec = flat_spec(shape, size)
  world = np.zeros((len(POINTS), 2, 2))
  world[:, 0], world[:, 1] = POINTS, FAR_AWAY
  images, positions = ss.render_plan(spec, planned(spec, world))
  np.testing.assert_array_equal(positions[:, 0], POINTS.astype(np.float32))
  assert images.shape == (len(POINTS), 64, 64, 3) and images.dtype == np.uint8
  assert np.all(images[..., 1] == images[..., 0])  # Only white drawn: object 1 is out of view.
  error = np.abs(centroids(images[..., 0]) - to_pixels(POINTS))
  assert error.max() < 0.15, error  # A half-pixel convention error would be up to 0.4 px.


@pytest.mark.parametrize("image_size", [64, 37, 128])
def test_y_is_up_and_sizes_scale(image_size):
  spec = flat_spec("disc", 8)
  world = np.zeros((len(POINTS), 2, 2))
  world[:, 0], world[:, 1] = POINTS, FAR_AWAY
  images, _ = ss.render_plan(spec, planned(spec, world), image_size)
  assert images.shape == (len(POINTS), image_size, image_size, 3)
  found = centroids(images[..., 0])
  np.testing.assert_allclose(found, to_pixels(POINTS, image_size), atol=0.1)
  # Frame 1 is at y = +0.5: the object is in the upper half of the image.
  assert found[1, 1] < (image_size - 1) / 2.0
  # The disc covers pi (4 S / 64)^2 pixels.
  area = images[..., 0].astype(np.float64).sum(axis=(1, 2)) / 255.0
  np.testing.assert_allclose(area, np.pi * (4.0 * image_size / 64) ** 2, rtol=0.03)


def test_rendered_sequences_put_objects_at_their_shaken_positions():
  """render_sequence's positions (with camera shake) are where the objects are drawn."""
  spec = flat_spec(jitter_px=2.0, occlusions=False, objects=(
      ss.ObjectSpec("square", 8, (255, 0, 0), 2.0), ss.ObjectSpec("disc", 9, (0, 0, 255), 2.5)))
  radius = np.array([4.0, 4.5])
  checked = 0
  seen = set()
  for index in range(6):
    rng = np.random.default_rng(index)
    plan = ss.plan_sequence(spec, np.random.default_rng(index), 30)
    images, positions = ss.render_sequence(spec, rng, 30)
    np.testing.assert_array_equal(positions, plan.positions)
    pixels = to_pixels(positions)
    gap = np.linalg.norm(pixels[:, 0] - pixels[:, 1], axis=-1) - radius.sum()
    apart = gap > 1.5  # Skip the frames in which the two are close.
    for channel, m in ((0, 0), (2, 1)):
      error = np.abs(centroids(images[apart, :, :, channel]) - pixels[apart, m])
      assert error.max() < 0.1, (index, m, error.max())
    checked += apart.sum()
    seen |= {tuple(q) for q in np.sign(positions[apart, 0]).astype(int)}
  assert checked > 150 and len(seen) == 4  # Object 0 in all four quadrants.
  # Inside the frame (leave_frame_px = 0), shaken or not (the last sequence).
  assert np.all(np.abs(positions) <= 1.0 - radius[None, :, None] / PX + 1e-6)


def test_camera_shake_moves_background_and_is_in_the_positions():
  spec = ss.SCENE_SETS["shaky_checker"]
  plan = ss.plan_sequence(spec, ss.sequence_rng(0, "train", 0), 40)
  shake_px = plan.camera_offsets * PX
  assert np.abs(shake_px).max() <= spec.jitter_px and np.abs(shake_px).max() > 1.5
  assert np.all(np.abs(np.diff(shake_px, axis=0)).max(axis=1) > 0)
  np.testing.assert_allclose(plan.positions, plan.world_positions
                             + plan.camera_offsets[:, None, :], atol=1e-6)
  # With the objects out of view: shaken, every frame differs from the next; still, none.
  world = np.full(plan.world_positions.shape, 5.0)
  shaken, _ = ss.render_plan(spec, dataclasses.replace(plan, world_positions=world))
  changed = np.any(shaken[1:] != shaken[:-1], axis=-1).mean(axis=(1, 2))
  assert changed.min() > 0.2
  still_spec = dataclasses.replace(spec, jitter_px=0.0)
  still_plan = dataclasses.replace(plan, world_positions=world,
                                   camera_offsets=np.zeros_like(plan.camera_offsets))
  still, _ = ss.render_plan(still_spec, still_plan)
  assert np.all(still == still[:1])
  # A shake of 3 px right and 2 px down moves the whole picture by exactly that.
  offsets = np.array([[0.0, 0.0], [3.0, -2.0]]) / PX
  two = dataclasses.replace(plan, world_positions=world[:2], camera_offsets=offsets,
                            background_offsets=plan.background_offsets[:2],
                            gain=plan.gain[:2], contrast=plan.contrast[:2])
  frames, _ = ss.render_plan(spec, two)
  difference = frames[1, 2:, 3:].astype(int) - frames[0, :-2, :-3]
  assert np.abs(difference).max() <= 1 and not np.array_equal(frames[0], frames[1])


def test_drifting_background_moves_slowly():
  spec = ss.SCENE_SETS["drifting_noise"]
  plan = ss.plan_sequence(spec, ss.sequence_rng(0, "train", 0), 20)
  step = np.linalg.norm(np.diff(plan.background_offsets, axis=0), axis=-1) * PX
  np.testing.assert_allclose(step, spec.background_drift_px)
  world = np.full(plan.world_positions.shape, 5.0)  # Objects out of view.
  images, _ = ss.render_plan(spec, dataclasses.replace(plan, world_positions=world))
  change = np.abs(np.diff(images.astype(int), axis=0)).mean(axis=(1, 2, 3))
  assert change.min() > 0.5 and change.max() < 10  # Changes, but slowly.
  static = dataclasses.replace(plan, world_positions=world,
                               background_offsets=plan.background_offsets[:1].repeat(20, 0))
  images, _ = ss.render_plan(dataclasses.replace(spec, background_drift_px=0.0), static)
  assert np.all(images == images[:1])


def test_objects_leave_and_come_back():
  spec = ss.SCENE_SETS["exits_and_entries"]
  radius = np.array([item.size_px for item in spec.objects]) / 2.0 / PX
  came_back = 0
  for index in range(8):
    _, positions = ss.render_sequence(spec, ss.sequence_rng(0, "train", index), 40)
    outside = np.any(np.abs(positions) > 1.0, axis=-1)  # [T, N]
    assert outside.any() and not outside.all()
    for m in range(spec.num_objects):
      track = outside[:, m]
      left_at = np.flatnonzero(track)
      came_back += left_at.size > 0 and not track[left_at[0]:].all()
    # No further out than the walls: the edge + the radius + leave_frame_px.
    assert np.abs(positions).max() <= 1.0 + (radius.max() * PX + spec.leave_frame_px) / PX + 1e-6
  assert came_back >= 8
  for name in ("drifting_noise", "occluding_crowd", "grey_flicker"):
    _, positions = ss.render_sequence(ss.SCENE_SETS[name], ss.sequence_rng(0, "train", 0), 40)
    assert np.abs(positions).max() < 1.0


def test_an_object_out_of_view_is_not_drawn():
  spec = flat_spec("disc", 10, leave_frame_px=10.0)
  world = np.array([[(1.0 + 6.0 / PX, 0.0), FAR_AWAY], [(0.0, -1.0 - 6.0 / PX), FAR_AWAY],
                    [(1.0 + 4.0 / PX, 0.0), FAR_AWAY]])
  images, positions = ss.render_plan(spec, planned(spec, world))
  assert images[:2].max() == 0  # Beyond the edge by more than the radius.
  assert images[2, :, 60:].max() == 255 and positions[2, 0, 0] > 1.0  # Half in view.


# ----------------------------------------------------------------------------- appearance


def test_front_object_hides_the_one_behind():
  spec = flat_spec(objects=(ss.ObjectSpec("disc", 12, (255, 0, 0), 1.0),
                            ss.ObjectSpec("square", 6, (0, 0, 255), 1.0)))
  images, _ = ss.render_plan(spec, planned(spec, [[(0.0, 0.0), (0.0, 0.0)]]))
  np.testing.assert_array_equal(images[0, 31:33, 31:33], np.full((2, 2, 3), (0, 0, 255)))
  np.testing.assert_array_equal(images[0, 31, 28], (255, 0, 0))  # The disc around it.


@pytest.mark.parametrize("name", ["pair_collide", "drifting_noise", "shaky_checker",
                                  "occluding_crowd", "small_camouflage"])
def test_object_identity_is_the_same_in_every_sequence(name):
  """Object m has the spec's colour (at its centre pixel, when not covered) in every
  sequence."""
  spec = ss.SCENE_SETS[name]
  assert spec.lighting == 0 and not spec.greyscale
  reach = np.array([item.size_px for item in spec.objects]) / np.sqrt(2.0)  # Square corners.
  seen = np.zeros(spec.num_objects, int)
  for index in range(4):
    images, positions = ss.render_sequence(spec, ss.sequence_rng(3, "test", index), 10)
    pixels = to_pixels(positions)
    for t in range(10):
      for m, item in enumerate(spec.objects):
        distance = np.linalg.norm(pixels[t, m + 1:] - pixels[t, m], axis=-1)
        if item.shape == "ring" or np.any(distance < reach[m + 1:] + 1.0):
          continue  # Hollow, or possibly covered by an object in front.
        column, row = np.floor(pixels[t, m] + 0.5).astype(int)
        np.testing.assert_array_equal(images[t, row, column], item.colour)
        seen[m] += 1
  assert np.all(seen[[m for m, item in enumerate(spec.objects) if item.shape != "ring"]] > 0)


def test_greyscale_sets_have_equal_channels():
  for name, spec in ss.SCENE_SETS.items():
    images, _ = ss.render_sequence(spec, ss.sequence_rng(0, "train", 1), 8)
    grey = np.array_equal(images[..., 0], images[..., 1]) and np.array_equal(
        images[..., 1], images[..., 2])
    assert grey == spec.greyscale, name
  assert any(spec.greyscale for spec in ss.SCENE_SETS.values())


def test_lighting_changes_smoothly():
  spec = ss.SCENE_SETS["grey_flicker"]
  plan = ss.plan_sequence(spec, ss.sequence_rng(0, "train", 0), 40)
  assert np.ptp(plan.gain) > 0.2 and np.abs(np.diff(plan.gain)).max() < 0.05
  assert np.ptp(plan.contrast) > 0.1 and np.abs(np.diff(plan.contrast)).max() < 0.025
  world = np.full(plan.world_positions.shape, 5.0)  # Only the (static) floor in view.
  images, _ = ss.render_plan(spec, dataclasses.replace(plan, world_positions=world))
  brightness = images[..., 0].mean(axis=(1, 2))
  assert np.ptp(brightness) > 20 and np.abs(np.diff(brightness)).max() < 6
  unlit, _ = ss.render_plan(dataclasses.replace(spec, lighting=0.0),
                            dataclasses.replace(plan, world_positions=world))
  assert np.all(unlit == unlit[:1])


def test_collisions_keep_objects_apart_and_occlusions_overlap():
  def overlap_share(spec):
    radius = np.array([item.size_px for item in spec.objects]) / 2.0
    upper = np.triu_indices(spec.num_objects, 1)
    shares, deepest = [], 0.0
    for index in range(20):
      plan = ss.plan_sequence(spec, ss.sequence_rng(0, "train", index), 40)
      pixels = plan.world_positions * PX
      distance = np.linalg.norm(pixels[:, :, None] - pixels[:, None], axis=-1)[:, upper[0],
                                                                               upper[1]]
      depth = (radius[:, None] + radius[None, :])[upper] - distance
      shares.append(np.mean(np.any(depth > 0, axis=1)))
      deepest = max(deepest, depth.max())
    return np.mean(shares), deepest

  share, deepest = overlap_share(ss.SCENE_SETS["pair_collide"])
  assert share < 0.05 and deepest < 1.0
  share, deepest = overlap_share(ss.SCENE_SETS["occluding_crowd"])
  assert share > 0.5 and deepest > 5.0


def test_motion_models():
  bounce = ss.SCENE_SETS["pair_collide"]
  momentum = ss.SCENE_SETS["drifting_noise"]
  for spec, constant in ((bounce, True), (momentum, False)):
    plan = ss.plan_sequence(spec, ss.sequence_rng(0, "train", 2), 40)
    speed = np.linalg.norm(np.diff(plan.world_positions * PX, axis=0), axis=-1)  # [T-1, N]
    typical = np.array([item.speed_px for item in spec.objects])
    np.testing.assert_array_less(np.median(speed, axis=0), 1.5 * typical)
    np.testing.assert_array_less(0.3 * typical, np.median(speed, axis=0))
    assert (np.median(np.abs(np.diff(speed, axis=0))) < 1e-6) == constant


# ----------------------------------------------------------------------------- the suite


def test_suite_covers_what_it_should():
  sets = list(ss.SCENE_SETS.values())
  assert len(sets) >= 6 and list(ss.SCENE_SETS) == [spec.name for spec in sets]
  assert {spec.background for spec in sets} == set(ss.BACKGROUNDS)
  assert {spec.num_objects for spec in sets} >= {2, 8}
  assert {spec.motion for spec in sets} == set(ss.MOTIONS)
  assert {spec.occlusions for spec in sets} == {True, False}
  for feature in ("background_drift_px", "jitter_px", "leave_frame_px", "lighting",
                  "greyscale"):
    assert any(getattr(spec, feature) for spec in sets), feature
  assert {item.shape for spec in sets for item in spec.objects} == set(ss.SHAPES)
  for spec in sets:
    assert min(item.size_px for item in spec.objects) >= 4, spec.name
    contrasts = [ss.object_contrast(spec, m) for m in range(spec.num_objects)]
    assert min(contrasts) >= (40 if spec.greyscale else 50), (spec.name, contrasts)
    assert ss.SceneSetSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_determinism_and_seed_streams():
  spec = ss.SCENE_SETS["everything"]
  first = ss.render_sequence(spec, ss.sequence_rng(0, "train", 0), 12)
  again = ss.render_sequence(spec, ss.sequence_rng(0, "train", 0), 12)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)
  for other in (ss.sequence_rng(1, "train", 0), ss.sequence_rng(0, "test", 0),
                ss.sequence_rng(0, "train", 1)):
    images, positions = ss.render_sequence(spec, other, 12)
    assert not np.array_equal(images, first[0]) and not np.array_equal(positions, first[1])


def test_make_random_spec():
  specs = [ss.make_random_spec(seed) for seed in range(60)]
  assert ss.make_random_spec(7) == specs[7] and ss.get_spec("random_7") == specs[7]
  assert len({json.dumps(spec.to_dict()) for spec in specs}) == 60
  assert {spec.background for spec in specs} == set(ss.BACKGROUNDS)
  assert {spec.num_objects for spec in specs} == set(range(2, 9))
  assert {spec.motion for spec in specs} == set(ss.MOTIONS)
  for feature in ("greyscale", "jitter_px", "leave_frame_px", "lighting", "background_drift_px",
                  "occlusions"):
    assert 0 < sum(bool(getattr(spec, feature)) for spec in specs) < 60, feature
  for spec in specs:
    assert spec.name.startswith("random_")
    minimum = (ss.RANDOM_MIN_CONTRAST_LUMA if spec.greyscale else ss.RANDOM_MIN_CONTRAST_RGB)
    assert min(ss.object_contrast(spec, m) for m in range(spec.num_objects)) >= minimum
    assert min(item.size_px for item in spec.objects) >= 5
  with pytest.raises(ValueError, match="seed must be a non-negative integer"):
    ss.make_random_spec(-1)
  for spec in specs[:10]:
    images, positions = ss.render_sequence(spec, np.random.default_rng(0), 3)
    assert images.shape == (3, 64, 64, 3) and positions.shape == (3, spec.num_objects, 2)


BASE = flat_spec()


@pytest.mark.parametrize("field, value, message", [
    ("name", "Bad Name", r"SceneSetSpec\.name must be lower-case"),
    ("description", "two\nlines", r"SceneSetSpec\.description must be a string of one line"),
    ("objects", BASE.objects[:1], r"SceneSetSpec\.objects must be 2 to 8 ObjectSpec"),
    ("objects", BASE.objects * 5, r"SceneSetSpec\.objects must be 2 to 8 ObjectSpec"),
    ("objects", ("disc", "disc"), r"SceneSetSpec\.objects must be 2 to 8 ObjectSpec"),
    ("background", "plaid", r"SceneSetSpec\.background must be one of flat, noise"),
    ("background_colour", (0, 0, 256), r"SceneSetSpec\.background_colour must be 3 integers"),
    ("background_colour", (0, 0), r"SceneSetSpec\.background_colour must be 3 integers"),
    ("texture_colour", (9, 9, 9), r"SceneSetSpec\.texture_colour must be None for a flat"),
    ("texture_scale_px", 1.0, r"SceneSetSpec\.texture_scale_px must be in \[2, 64\]"),
    ("background_drift_px", 0.5, r"SceneSetSpec\.background_drift_px must be 0 for a flat"),
    ("jitter_px", 4.5, r"SceneSetSpec\.jitter_px must be in \[0, 4\]"),
    ("jitter_px", float("nan"), r"SceneSetSpec\.jitter_px must be in \[0, 4\]"),
    ("jitter_px", "1", r"SceneSetSpec\.jitter_px must be a number"),
    ("occlusions", 1, r"SceneSetSpec\.occlusions must be True or False"),
    ("leave_frame_px", -1, r"SceneSetSpec\.leave_frame_px must be in \[0, 32\]"),
    ("lighting", 0.6, r"SceneSetSpec\.lighting must be in \[0, 0\.5\]"),
    ("greyscale", "yes", r"SceneSetSpec\.greyscale must be True or False"),
    ("motion", "teleport", r"SceneSetSpec\.motion must be one of bounce, momentum"),
])
def test_spec_validation(field, value, message):
  with pytest.raises(ValueError, match=message):
    dataclasses.replace(BASE, **{field: value})


@pytest.mark.parametrize("field, value, message", [
    ("texture_colour", None, r"SceneSetSpec\.texture_colour must be 3 integers"),
    ("background_drift_px", 3.5, r"SceneSetSpec\.background_drift_px must be in \[0, 3\]"),
])
def test_textured_spec_validation(field, value, message):
  textured = dataclasses.replace(BASE, background="noise", texture_colour=(9, 9, 9))
  with pytest.raises(ValueError, match=message):
    dataclasses.replace(textured, **{field: value})


@pytest.mark.parametrize("field, value, message", [
    ("shape", "star", r"ObjectSpec\.shape must be one of disc, square, triangle, ring, cross"),
    ("size_px", 3.5, r"ObjectSpec\.size_px must be in \[4, 24\]"),
    ("size_px", True, r"ObjectSpec\.size_px must be a number"),
    ("colour", (1.0, 2.0, 3.0), r"ObjectSpec\.colour must be 3 integers"),
    ("speed_px", 0, r"ObjectSpec\.speed_px must be in \(0, 6\]"),
    ("speed_px", 7, r"ObjectSpec\.speed_px must be in \(0, 6\]"),
])
def test_object_spec_validation(field, value, message):
  with pytest.raises(ValueError, match=message):
    dataclasses.replace(BASE.objects[0], **{field: value})


# ----------------------------------------------------------------------------- files


def test_written_set_is_read_back_by_the_folder_reader(tmp_path):
  spec = ss.SCENE_SETS["occluding_crowd"]
  output = tmp_path / "crowd"
  result = ss.write_scene_set("occluding_crowd", output, num_train=4, num_test=2, num_frames=12,
                              seed=5)
  assert result["written"] == 6 and result["complete"] is True
  with open(output / "scene_set.json") as stream:
    description = json.load(stream)
  assert description == {key: value for key, value in result.items() if key != "written"}
  assert description["spec"] == spec.to_dict() and description["seed"] == 5
  assert (description["num_train"], description["num_test"], description["num_frames"]) == (
      4, 2, 12)
  assert sorted(os.listdir(output)) == ["scene_set.json", "test", "train"]
  assert sorted(os.listdir(output / "train")) == [f"seq_0000{i}.npz" for i in range(4)]
  expected = {}
  for split, count in (("train", 4), ("test", 2)):
    expected[split] = []
    for index in range(count):
      with np.load(output / split / f"seq_{index:05d}.npz") as archive:
        assert sorted(archive.keys()) == ["image", "true_object_pos"]
        images, positions = archive["image"], archive["true_object_pos"]
      assert images.shape == (12, 64, 64, 3) and images.dtype == np.uint8
      assert positions.shape == (12, 8, 2) and positions.dtype == np.float32
      rendered = ss.render_sequence(spec, ss.sequence_rng(5, split, index), 12)
      np.testing.assert_array_equal(images, rendered[0])
      np.testing.assert_array_equal(positions, rendered[1])
      expected[split].append((images, positions))
  cache = vf.prepare_video_folder(output, cache_dir=tmp_path / "cache", min_frames=8,
                                  verbose=False)
  assert cache.num_sequences == {"train": 4, "test": 2} and cache.num_objects == 8
  for split in ("train", "test"):
    stored = [{key: value.numpy() for key, value in element.items()}
              for element in vf.load_split(cache, split)]
    assert len(stored) == len(expected[split])
    for sequence, (images, positions) in zip(stored, expected[split]):
      np.testing.assert_array_equal(sequence["image"], images)
      np.testing.assert_array_equal(sequence["true_object_pos"], positions)


def test_rewriting_is_a_no_op_and_a_different_set_is_refused(tmp_path):
  output = tmp_path / "pair"
  kwargs = dict(num_train=2, num_test=1, num_frames=6, seed=1)
  assert ss.write_scene_set("pair_collide", output, **kwargs)["written"] == 3
  files = sorted(str(path) for path in output.rglob("*"))
  stamps = {path: os.stat(path).st_mtime_ns for path in files}
  assert ss.write_scene_set(ss.SCENE_SETS["pair_collide"], output, **kwargs)["written"] == 0
  assert {path: os.stat(path).st_mtime_ns for path in files} == stamps
  for changed, differs in (({"seed": 2}, "seed"), ({"num_train": 3}, "num_train"),
                           ({"num_frames": 7}, "num_frames")):
    with pytest.raises(FileExistsError, match=(
        rf"already holds a different scene set \('pair_collide'; differs in {differs}\)\. "
        r"Nothing was written: choose another output directory, or delete .*pair to replace")):
      ss.write_scene_set("pair_collide", output, **dict(kwargs, **changed))
  with pytest.raises(FileExistsError, match=r"differs in spec\)"):
    ss.write_scene_set("drifting_noise", output, **kwargs)
  other = dataclasses.replace(ss.SCENE_SETS["pair_collide"], jitter_px=1.0)
  with pytest.raises(FileExistsError, match=r"differs in spec\)"):
    ss.write_scene_set(other, output, **kwargs)
  assert {path: os.stat(path).st_mtime_ns for path in files} == stamps
  assert sorted(str(path) for path in output.rglob("*")) == files


def test_interrupted_set_is_completed(tmp_path):
  output = tmp_path / "pair"
  kwargs = dict(num_train=3, num_test=2, num_frames=5, seed=0)
  ss.write_scene_set("pair_collide", output, **kwargs)
  with np.load(output / "test" / "seq_00001.npz") as archive:
    original = archive["image"]
  os.remove(output / "test" / "seq_00001.npz")
  with open(output / "scene_set.json") as stream:
    description = json.load(stream)
  with open(output / "scene_set.json", "w") as stream:
    json.dump(dict(description, complete=False), stream)
  assert ss.write_scene_set("pair_collide", output, **kwargs)["written"] == 1
  with np.load(output / "test" / "seq_00001.npz") as archive:
    np.testing.assert_array_equal(archive["image"], original)
  with open(output / "scene_set.json") as stream:
    assert json.load(stream) == description


def test_other_directories_are_refused(tmp_path):
  (tmp_path / "videos").mkdir()
  (tmp_path / "videos" / "clip.mp4").write_bytes(b"x")
  with pytest.raises(FileExistsError, match=r"videos is not empty and holds no scene_set.json "
                                            r"\(found clip.mp4\): it is not a scene set"):
    ss.write_scene_set("pair_collide", tmp_path / "videos", num_train=1, num_test=0)
  (tmp_path / "empty").mkdir()
  assert ss.write_scene_set("pair_collide", tmp_path / "empty", num_train=1, num_test=0,
                            num_frames=3)["written"] == 1
  for name, value, message in (("num_train", 0, "num_train must be an integer >= 1"),
                               ("num_frames", 1, "num_frames must be an integer >= 2"),
                               ("seed", -3, "seed must be an integer >= 0")):
    with pytest.raises(ValueError, match=message):
      ss.write_scene_set("pair_collide", tmp_path / "new", **{name: value})
  with pytest.raises(ValueError, match=r"Unknown scene set 'nope'; known: pair_collide, "):
    ss.write_scene_set("nope", tmp_path / "new")
  assert not (tmp_path / "new").exists()


def test_command_line(tmp_path, capsys):
  ss.main(["--list"])
  listed = capsys.readouterr().out.splitlines()
  assert [line.split()[0] for line in listed] == list(ss.SCENE_SETS)
  output = tmp_path / "set"
  ss.main(["--set", "random_3", "--output", str(output), "--seed", "4", "--num_train", "2",
           "--num_test", "1", "--num_frames", "4"])
  assert "Wrote 3 sequences" in capsys.readouterr().out
  with open(output / "scene_set.json") as stream:
    description = json.load(stream)
  assert description["spec"] == ss.make_random_spec(3).to_dict() and description["seed"] == 4
  ss.main(["--set", "random_3", "--output", str(output), "--seed", "4", "--num_train", "2",
           "--num_test", "1", "--num_frames", "4"])
  assert "nothing to do" in capsys.readouterr().out
  with pytest.raises(SystemExit):
    ss.main(["--set", "pair_collide"])
  assert "--set and --output are required" in capsys.readouterr().err


def test_module_entry_point_reports_errors_briefly(tmp_path):
  (tmp_path / "other").mkdir()
  (tmp_path / "other" / "notes.txt").write_text("mine")
  command = [sys.executable, "-m", "video_structure.data.synthetic_scenes", "--set",
             "pair_collide", "--output", str(tmp_path / "other")]
  result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, VIDEO_STRUCTURE_CACHE=str(tmp_path / "cache")))
  assert result.returncode == 2, result.stderr
  assert result.stderr.startswith(
      "python -m video_structure.data.synthetic_scenes: error: ") and "not a scene set" in (
          result.stderr)
