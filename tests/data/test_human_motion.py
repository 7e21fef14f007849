"""Tests of the synthetic human-motion generator, its TFDS builder and the Human3.6M importer
(`human_motion`, `human_motion_render`, `builders/human_motion`, `human36m`)."""

import os

import av
import numpy as np
import pytest
import tensorflow_datasets as tfds

from video_structure.data import human36m
from video_structure.data import human_motion as hm
from video_structure.data import human_motion_render as hmr
from video_structure.data import tfds_builders
from video_structure.data import windows
from video_structure.data.builders import human_motion as hmb
from tests.data import generation_helpers


# ----------------------------------------------------------------------------- generator


def test_constants():
  assert hm.FRAME_RATE_HZ == 6.25 and hm.NUM_JOINTS == 17 and len(hm.JOINT_NAMES) == 17
  assert hm.H36M_32_TO_17 == (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
  assert len(set(hm.EVALUATION_JOINTS)) == 12
  assert [hm.JOINT_NAMES[i] for i in hm.EVALUATION_JOINTS[:3]] == [
      "right_hip", "right_knee", "right_ankle"]
  assert hm.NUM_ACTIONS == len(hm.ACTION_NAMES) == 8
  assert set(hm.ACTION_PERIOD_RANGE_S) == set(hm.ACTION_NAMES)
  # Every cycle spans more than 2 frames at 6.25 Hz (no aliasing).
  assert min(low for low, _ in hm.ACTION_PERIOD_RANGE_S.values()) > 2 * hm.TIME_STEP_S


def test_shapes_dtypes_and_empty():
  out = hmr.generate(3, 7, seed=1, image_size=32, return_backgrounds=True)
  assert out["image"].shape == (3, 7, 32, 32, 3) and out["image"].dtype == np.uint8
  assert out["true_object_pos"].shape == (3, 7, 17, 2)
  assert out["true_object_pos"].dtype == np.float32
  assert out["action"].shape == (3,) and out["action"].dtype == np.int64
  assert out["background"].shape == (3, 32, 32, 3)
  empty = hmr.generate(0, 5)
  assert empty["image"].shape == (0, 5, 64, 64, 3)
  assert empty["true_object_pos"].shape == (0, 5, 17, 2)


def test_determinism_and_chunking():
  first = hmr.generate(6, 12, seed=3)
  again = hmr.generate(6, 12, seed=3)
  for key in ("image", "true_object_pos", "action"):
    np.testing.assert_array_equal(first[key], again[key])
  chunks = [hmr.generate(2, 12, seed=3, first_index=0), hmr.generate(3, 12, seed=3, first_index=2),
            hmr.generate(1, 12, seed=3, first_index=5)]
  for key in ("image", "true_object_pos", "action"):
    np.testing.assert_array_equal(first[key], np.concatenate([c[key] for c in chunks]))
  other = hmr.generate(6, 12, seed=4)
  assert not np.array_equal(first["true_object_pos"], other["true_object_pos"])
  assert not np.array_equal(first["image"][0], first["image"][1])
  # Joints without rendering are the same joints.
  np.testing.assert_array_equal(hmr.generate(6, 12, seed=3, render=False)["true_object_pos"],
                                first["true_object_pos"])
  assert "image" not in hmr.generate(2, 3, render=False)


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_sequences=-1, num_frames=5), "num_sequences"),
    (dict(num_sequences=2.0, num_frames=5), "num_sequences"),
    (dict(num_sequences=2, num_frames=0), "num_frames"),
    (dict(num_sequences=2, num_frames=5, seed=-1), "seed"),
    (dict(num_sequences=2, num_frames=5, first_index=-2), "first_index"),
    (dict(num_sequences=2, num_frames=5, image_size=8), "image_size")])
def test_bad_arguments(kwargs, name):
  with pytest.raises(ValueError, match=name):
    hmr.generate(**kwargs)


@pytest.fixture(scope="module")
def many_joints():
  """Joints and actions of 1,200 sequences of 16 frames (no rendering; ~1 s)."""
  train = hmr.generate(800, 16, seed=0, render=False)
  test = hmr.generate(400, 16, seed=0, first_index=10**6, render=False)
  return train, test


def test_all_joints_inside_the_frame(many_joints):
  for split in many_joints:
    joints = split["true_object_pos"]
    assert np.all(np.abs(joints) <= 1.0 - 0.04 + 1e-6)  # _FRAME_MARGIN keeps the border free.
    assert np.all(np.isfinite(joints))


def test_actions_balanced_and_varied(many_joints):
  train, _ = many_joints
  counts = np.bincount(train["action"], minlength=hm.NUM_ACTIONS)
  assert counts.min() >= 60  # ~100 each of 800.
  joints = train["true_object_pos"]
  height = joints[..., 1].max(axis=(1, 2)) - joints[..., 1].min(axis=(1, 2))
  centre_x = joints[..., 0].mean(axis=(1, 2))
  # Sizes and positions vary: figure heights span > 1.5x (the standing height is drawn from
  # 50-85% of the frame), centres cover much of the width.
  assert np.percentile(height, 95) / np.percentile(height, 5) > 1.5
  assert np.percentile(centre_x, 95) - np.percentile(centre_x, 5) > 0.8


def _ridge_accuracy(train_features, train_labels, test_features, test_labels):
  """Accuracy of a ridge-regression one-vs-all classifier (numpy only)."""
  mean, std = train_features.mean(0), train_features.std(0) + 1e-9
  a = np.hstack([(train_features - mean) / std, np.ones((len(train_features), 1))])
  b = np.hstack([(test_features - mean) / std, np.ones((len(test_features), 1))])
  targets = np.eye(hm.NUM_ACTIONS)[train_labels]
  weights = np.linalg.solve(a.T @ a + 0.01 * len(a) * np.eye(a.shape[1]), a.T @ targets)
  return float(np.mean(np.argmax(b @ weights, axis=1) == test_labels))


def test_actions_are_distinguishable_from_joint_trajectories(many_joints):
  train, test = many_joints
  features = [hmr.normalized_pose_features(s["true_object_pos"][:, :8]) for s in (train, test)]
  accuracy = _ridge_accuracy(features[0], train["action"], features[1], test["action"])
  assert accuracy > 0.9  # Measured 0.98 with 8 frames (chance 0.125).


def test_appearance_does_not_give_the_action_away():
  train = hmr.generate(400, 1, seed=0)
  test = hmr.generate(200, 1, seed=0, first_index=10**6)
  features = [s["image"][:, 0].reshape(len(s["image"]), -1, 3).astype(np.float64) for s in
              (train, test)]
  colour = [np.concatenate([f.mean(1), f.std(1)], axis=1) for f in features]
  accuracy = _ridge_accuracy(colour[0], train["action"], colour[1], test["action"])
  assert accuracy < 0.3  # Mean/std colour of a frame: near chance (0.125).


def test_joints_lie_on_the_drawn_figure():
  out = hmr.generate(24, 10, seed=2, return_backgrounds=True)
  images = out["image"].astype(int)
  changed = np.any(images != out["background"][:, None].astype(int), axis=-1)  # [N, T, S, S]
  joints = out["true_object_pos"]
  columns = np.rint((joints[..., 0] + 1) * 63 / 2).astype(int)
  rows = np.rint((1 - joints[..., 1]) * 63 / 2).astype(int)
  n, t = np.meshgrid(np.arange(24), np.arange(10), indexing="ij")
  for joint in ("pelvis", "spine", "thorax"):
    index = hm.JOINT_NAMES.index(joint)
    assert changed[n, t, rows[..., index], columns[..., index]].mean() > 0.99
  # Every changed pixel is near a bone of the skeleton (limbs are drawn around the bones).
  grid_x = np.linspace(-1, 1, 64)[None, None, None, :]
  grid_y = np.linspace(1, -1, 64)[None, None, :, None]
  nearest = np.full(changed.shape, np.inf)
  for a, b in hm.SKELETON_EDGES:
    start, end = joints[:, :, a], joints[:, :, b]
    direction = end - start
    length_sq = np.maximum((direction ** 2).sum(-1), 1e-12)[..., None, None]
    dx = grid_x - start[..., 0, None, None]
    dy = grid_y - start[..., 1, None, None]
    u = np.clip((dx * direction[..., 0, None, None] + dy * direction[..., 1, None, None])
                / length_sq, 0, 1)
    distance = np.hypot(dx - u * direction[..., 0, None, None],
                        dy - u * direction[..., 1, None, None])
    nearest = np.minimum(nearest, distance)
  nearest_px = nearest * 63 / 2
  assert changed.mean() > 0.02
  assert np.all(nearest_px[changed] < 9.0)  # Feet, hands, hair stick out a few pixels.


def test_geometry_conventions():
  np.testing.assert_allclose(hm._limb_direction(0.0, 0.0, 1.0), [0, -1, 0], atol=1e-12)
  np.testing.assert_allclose(hm._limb_direction(90.0, 0.0, 1.0), [1, 0, 0], atol=1e-12)
  np.testing.assert_allclose(hm._limb_direction(90.0, 0.0, -1.0), [-1, 0, 0], atol=1e-12)
  np.testing.assert_allclose(hm._limb_direction(0.0, 90.0, 1.0), [0, 0, 1], atol=1e-12)
  np.testing.assert_allclose(hm._limb_direction(180.0, 0.0, 1.0), [0, 1, 0], atol=1e-12)
  camera = {"distance": np.array([5.0]), "elevation": np.array([0.0])}
  # The camera looks at (0, 0.9, 0): that point projects to the centre.
  points = np.array([[[[0.0, 0.9, 0.0], [1.0, 0.9, 0.0], [0.0, 1.9, 0.0]]]])
  xy, depth = hmr._project(points, camera)
  np.testing.assert_allclose(xy[0, 0], [[0, 0], [-0.2, 0], [0, 0.2]], atol=1e-12)
  np.testing.assert_allclose(depth[0, 0], [5, 5, 5])
  # A figure turned to face the camera (yaw pi) has its left hand (+x body) on the image right.
  left_hand_world = hm._apply(hm._rotation_y(np.array(np.pi)), np.array([0.3, 0.0, 0.0]))
  xy, _ = hmr._project(left_hand_world[None, None, None] + [0, 0.9, 0], camera)
  assert xy[0, 0, 0, 0] > 0


# ----------------------------------------------------------------------------- TFDS builder


def _prepare(data_dir, config, manual_dir=None):
  return tfds_builders.prepare(hmb.Builder, data_dir, config, manual_dir=manual_dir)


@pytest.fixture(scope="module")
def tiny_builder(tmp_path_factory):
  return _prepare(tmp_path_factory.mktemp("human_tiny") / "tfds", "tiny")


def test_tiny_builder_matches_generator(tiny_builder):
  assert tiny_builder.name == "human_motion"
  info = tiny_builder.info
  assert info.splits["train"].num_examples == 16 and info.splits["test"].num_examples == 8
  assert info.features["action"].names == list(hm.ACTION_NAMES)
  for split, first_index, count in (("train", 0, 16), ("test", hmb.TEST_FIRST_INDEX, 8)):
    examples = list(tfds.as_numpy(tiny_builder.as_dataset(split=split, shuffle_files=False)))
    expected = hmr.generate(count, 20, seed=0, first_index=first_index)
    np.testing.assert_array_equal(np.stack([e["image"] for e in examples]), expected["image"])
    np.testing.assert_array_equal(np.stack([e["true_object_pos"] for e in examples]),
                                  expected["true_object_pos"])
    np.testing.assert_array_equal([e["action"] for e in examples], expected["action"])
    assert [e["sequence_index"] for e in examples] == list(range(count))
    assert examples[3]["video_name"] == f"generated/{split}/00000003".encode()


@pytest.mark.slow  # Starts worker processes.
def test_workers_give_the_same_stored_data(tmp_path, monkeypatch):
  """1 and 2 worker processes store the same records in the same order."""
  monkeypatch.setattr(hmb, "GENERATION_CHUNK_SIZE", 4)  # 3 + 2 chunks.
  config = hmb.HumanMotionConfig(name="small", num_train=10, num_test=5, num_frames=4,
                                 image_size=32, seed=2)
  started = generation_helpers.record_started_workers(monkeypatch)
  one = tfds_builders.prepare(hmb.Builder, tmp_path / "one", config, num_workers=1)
  two = tfds_builders.prepare(hmb.Builder, tmp_path / "two", config, num_workers=2)
  assert len(started) == 4  # Two per split, none for num_workers=1.
  for split, count, first_index in (("train", 10, 0), ("test", 5, hmb.TEST_FIRST_INDEX)):
    records = generation_helpers.stored_records(two, split)
    assert len(records) == count
    assert records == generation_helpers.stored_records(one, split)
    examples = list(tfds.as_numpy(two.as_dataset(split=split, shuffle_files=False)))
    expected = hmr.generate(count, 4, seed=2, first_index=first_index, image_size=32)
    np.testing.assert_array_equal(np.stack([e["image"] for e in examples]), expected["image"])
    assert [e["video_name"] for e in examples] == [
        f"generated/{split}/{index:08d}".encode() for index in range(count)]


def test_tiny_builder_feeds_the_windows_pipeline(tiny_builder):
  sequences = tfds_builders.load_split(tiny_builder, "train")
  assert set(sequences.element_spec) == {"image", "true_object_pos", "label"}
  batch = next(iter(windows.make_windows_dataset(sequences, window_length=16, batch_size=4,
                                                 seed=0)))
  assert set(batch) == {"image", "true_object_pos"}  # The per-sequence label is dropped.
  assert batch["image"].shape == (4, 16, 64, 64, 3)
  assert batch["true_object_pos"].shape == (4, 16, 17, 2)
  labelled = next(iter(tfds_builders.load_split(tiny_builder, "test")))
  assert labelled["label"].dtype.name == "int64"
  stored = next(iter(tfds_builders.load_split(tiny_builder, "test", ["action", "video_name"])))
  assert stored["action"].dtype.name == "int64" and stored["video_name"].dtype.name == "string"
  assert int(stored["action"]) == int(labelled["label"])
  # Only image and positions, as for Basketball.
  assert set(tfds_builders.load_split(tiny_builder, "test", ["image", "true_object_pos"])
             .element_spec) == {"image", "true_object_pos"}


def test_prepare_errors(tmp_path):
  with pytest.raises(ValueError, match="Unknown human_motion config 'huge'"):
    _prepare(tmp_path / "tfds", "huge")
  with pytest.raises(FileNotFoundError, match="pass manual_dir"):
    _prepare(tmp_path / "tfds", "h36m")
  with pytest.raises(FileNotFoundError, match="manual_dir .*nowhere.* does not exist"):
    _prepare(tmp_path / "tfds", "h36m", manual_dir=tmp_path / "nowhere")
  with pytest.raises(ValueError, match="num_frames must be an int >= 1"):
    _prepare(tmp_path / "tfds", hmb.HumanMotionConfig(name="bad", num_train=2, num_test=2,
                                                      num_frames=0))
  with pytest.raises(ValueError, match="subjects .*S9.* in both"):
    hmb.HumanMotionConfig(name="x", source="h36m", train_subjects=("S1", "S9"),
                          test_subjects=("S9",)).validate()
  with pytest.raises(ValueError, match="crop_mode"):
    hmb.HumanMotionConfig(name="x", source="h36m", crop_mode="person").validate()


# ----------------------------------------------------------------------------- Human3.6M importer


def test_parse_h36m_name():
  assert human36m.parse_h36m_name("Walking 1.54138969") == ("Walking", "1", "54138969")
  assert human36m.parse_h36m_name("TakingPhoto.58860488") == ("Photo", "", "58860488")
  assert human36m.parse_h36m_name("WalkDog 1.55011271") == ("WalkDog", "1", "55011271")
  assert human36m.parse_h36m_name("SittingDown.60457274")[0] == "SittingDown"
  with pytest.raises(ValueError, match="unknown action 'Dancing'"):
    human36m.parse_h36m_name("Dancing.54138969")
  with pytest.raises(ValueError, match="not a Human3.6M file name"):
    human36m.parse_h36m_name("Walking_1")


def test_crop_boxes_and_keypoints_exact():
  points = np.array([[[10.0, 20.0], [49.0, 59.0]]])  # Pixel centres; continuous +0.5.
  boxes = human36m.crop_boxes(points, frame_width=100, frame_height=80, margin=0.1)
  np.testing.assert_allclose(boxes, [[30.0 - 23.4, 40.0 - 23.4, 46.8]])
  # The box centre (continuous (30, 40), i.e. pixel centre (29.5, 39.5)) maps to (0, 0); the
  # box's left/top edge maps half a pixel outside the first pixel centre.
  keypoints = human36m.pixels_to_keypoints([[[29.5, 39.5], [6.6 - 0.5, 16.6 - 0.5]]], boxes, 64)
  np.testing.assert_allclose(keypoints[0, 0], [0, 0], atol=1e-6)
  np.testing.assert_allclose(keypoints[0, 1], [-1 - 1 / 63, 1 + 1 / 63], atol=1e-6)
  # Boxes stay inside the frame and are at most min(W, H) large.
  near_edge = human36m.crop_boxes(np.array([[[2.0, 3.0], [30.0, 40.0]]]), 100, 80, margin=0.2)
  assert near_edge[0, 0] == 0.0 and near_edge[0, 1] == 0.0
  huge = human36m.crop_boxes(np.array([[[0.0, 0.0], [99.0, 79.0]]]), 100, 80, margin=0.1)
  np.testing.assert_allclose(huge[0, 2], 80.0)
  # Per-frame boxes follow the person with one side length.
  moving = np.array([[[10.0, 10.0], [19.0, 29.0]], [[50.0, 10.0], [59.0, 19.0]]])
  per_frame = human36m.crop_boxes(moving, 100, 80, margin=0.0, mode="frame")
  np.testing.assert_allclose(per_frame[:, 2], [19.0, 19.0])  # The taller first frame: 19 px.
  np.testing.assert_allclose(per_frame[:, 0], [15.0 - 9.5, 55.0 - 9.5])
  with pytest.raises(ValueError, match="crop mode"):
    human36m.crop_boxes(moving, 100, 80, mode="person")


def test_pose_file_formats(tmp_path):
  poses = np.random.default_rng(0).uniform(0, 900, (5, 64)).astype(np.float32)
  np.save(tmp_path / "a.npy", poses)
  np.savez(tmp_path / "b.npz", Pose=poses[None])
  np.save(tmp_path / "c.npy", poses.reshape(5, 32, 2))
  for name in ("a.npy", "b.npz", "c.npy"):
    np.testing.assert_array_equal(human36m.load_h36m_pose_file(tmp_path / name),
                                  poses.reshape(5, 32, 2))
  cdflib = pytest.importorskip("cdflib")
  from cdflib.cdfwrite import CDF  # pylint: disable=import-outside-toplevel
  with CDF(str(tmp_path / "d.cdf")) as cdf:  # The original layout: Pose [1, N, 64].
    cdf.write_var({"Variable": "Pose", "Data_Type": CDF.CDF_FLOAT, "Num_Elements": 1,
                   "Rec_Vary": True, "Dim_Sizes": [5, 64]}, var_attrs={}, var_data=poses[None])
  del cdflib
  np.testing.assert_array_equal(human36m.load_h36m_pose_file(tmp_path / "d.cdf"),
                                poses.reshape(5, 32, 2))
  np.save(tmp_path / "bad.npy", np.zeros((5, 17, 2)))
  with pytest.raises(ValueError, match=r"bad.npy: expected 2D poses \[N, 64\]"):
    human36m.load_h36m_pose_file(tmp_path / "bad.npy")
  (tmp_path / "corrupt.cdf").write_bytes(b"garbage" * 10)
  with pytest.raises(ValueError, match="corrupt.cdf: cannot read pose file"):
    human36m.load_h36m_pose_file(tmp_path / "corrupt.cdf")
  with pytest.raises(FileNotFoundError, match="missing.npy"):
    human36m.load_h36m_pose_file(tmp_path / "missing.npy")


FAKE_WIDTH, FAKE_HEIGHT, FAKE_FRAMES = 160, 120, 44  # 44 frames at 50 Hz -> 6 at 6.25 Hz.


def _write_fake_h36m_video(root, subject, stem, seed):
  """A white disk moving on a dark frame; pose point 0 on the disk, the others spread around.

  Returns the poses [FAKE_FRAMES, 32, 2] (pixels).
  """
  rng = np.random.default_rng(seed)
  video_dir = root / subject / "Videos"
  pose_dir = root / subject / "MyPoseFeatures" / "D2_Positions"
  video_dir.mkdir(parents=True, exist_ok=True)
  pose_dir.mkdir(parents=True, exist_ok=True)
  rows, columns = np.mgrid[:FAKE_HEIGHT, :FAKE_WIDTH]
  poses = np.empty((FAKE_FRAMES, 32, 2))
  frames = np.full((FAKE_FRAMES, FAKE_HEIGHT, FAKE_WIDTH, 3), 20, np.uint8)
  start = rng.uniform([50, 40], [70, 60])
  for t in range(FAKE_FRAMES):
    centre = start + t * np.array([1.0, 0.5])
    frames[t][np.hypot(columns - centre[0], rows - centre[1]) <= 4.0] = 255
    poses[t, 0] = centre
    poses[t, 1:] = centre + rng.uniform(-25, 25, (31, 2))
  with av.open(str(video_dir / f"{stem}.mp4"), "w") as container:
    stream = container.add_stream("libx264", rate=50)
    stream.width, stream.height, stream.pix_fmt = FAKE_WIDTH, FAKE_HEIGHT, "yuv420p"
    stream.options = {"crf": "10"}
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  np.save(pose_dir / f"{stem}.npy", poses.reshape(FAKE_FRAMES, 64).astype(np.float32))
  return poses


@pytest.fixture(scope="module")
def fake_h36m(tmp_path_factory):
  """A Human3.6M-like folder: one video per subject, plus files the importer must leave out."""
  root = tmp_path_factory.mktemp("h36m")
  videos = {}
  for seed, (subject, stem) in enumerate([
      ("S1", "Walking 1.54138969"), ("S5", "TakingPhoto.55011271"), ("S6", "Eating.58860488"),
      ("S7", "Sitting 2.60457274"), ("S8", "WalkDog.54138969"), ("S9", "Greeting 1.55011271"),
      ("S11", "Phoning.58860488"), ("S11", "Directions.54138969")]):
    videos[(subject, stem)] = _write_fake_h36m_video(root, subject, stem, seed)
  # A video without poses, and an "_ALL" recording (no action label), are left out.
  extra = root / "S1" / "Videos" / "Extra.54138969.mp4"
  extra.write_bytes((root / "S1" / "Videos" / "Walking 1.54138969.mp4").read_bytes())
  _write_fake_h36m_video(root, "S5", "_ALL 1.55011271", 99)
  return root, videos


def test_import_one_video_aligns_joints_with_pixels(fake_h36m):
  root, videos = fake_h36m
  poses = videos[("S9", "Greeting 1.55011271")]
  imported = human36m.import_h36m_video(root / "S9" / "Videos" / "Greeting 1.55011271.mp4",
                                   root / "S9" / "MyPoseFeatures" / "D2_Positions" /
                                   "Greeting 1.55011271.npy")
  assert imported["image"].shape == (6, 64, 64, 3)  # Frames 0, 8, ..., 40 of 44.
  assert imported["all_joints_pos"].shape == (6, 32, 2)
  np.testing.assert_array_equal(imported["true_object_pos"],
                                imported["all_joints_pos"][:, list(hm.H36M_32_TO_17)])
  boxes = human36m.crop_boxes(poses[::8], FAKE_WIDTH, FAKE_HEIGHT)
  np.testing.assert_allclose(imported["all_joints_pos"],
                             human36m.pixels_to_keypoints(poses[::8], boxes, 64), atol=1e-6)
  # The disk (pose point 0) is where the keypoint says, to within 0.6 px.
  grid = np.linspace(-1, 1, 64)
  for t in range(6):
    weights = np.maximum(imported["image"][t, ..., 0].astype(np.float64) - 40.0, 0.0)
    centroid = ((weights.sum(0) * grid).sum() / weights.sum(),
                (weights.sum(1) * grid[::-1]).sum() / weights.sum())
    np.testing.assert_allclose(centroid, imported["all_joints_pos"][t, 0], atol=0.02)


@pytest.mark.slow  # End-to-end import of a (fake) Human3.6M folder.
def test_h36m_config_builds_from_the_manual_folder(fake_h36m, tmp_path, capsys):
  root, _ = fake_h36m
  builder = _prepare(tmp_path / "tfds", "h36m", manual_dir=root)
  printed = capsys.readouterr().out
  assert "Extra.54138969.mp4: no matching pose file" in printed
  assert "_ALL 1.55011271.npy: '_ALL' recordings are not one of the 15 actions" in printed
  assert "Directions.54138969.npy: known damaged video" in printed
  assert builder.info.splits["train"].num_examples == 5
  assert builder.info.splits["test"].num_examples == 2
  examples = list(tfds.as_numpy(builder.as_dataset(split="train", shuffle_files=False)))
  assert [e["video_name"].decode() for e in examples] == [
      "S1/Walking 1.54138969", "S5/TakingPhoto.55011271", "S6/Eating.58860488",
      "S7/Sitting 2.60457274", "S8/WalkDog.54138969"]
  names = builder.info.features["action"].names
  assert names == list(human36m.H36M_ACTIONS)
  assert [names[e["action"]] for e in examples] == ["Walking", "Photo", "Eating", "Sitting",
                                                    "WalkDog"]
  assert examples[0]["image"].shape == (6, 64, 64, 3)
  assert examples[0]["true_object_pos"].shape == (6, 17, 2)
  assert examples[0]["subject"] == b"S1" and examples[0]["camera"] == b"54138969"
  test = list(tfds.as_numpy(tfds_builders.load_split(builder, "test", ["video_name"])))
  assert [e["video_name"].decode() for e in test] == ["S9/Greeting 1.55011271",
                                                      "S11/Phoning.58860488"]
  batch = next(iter(windows.make_windows_dataset(tfds_builders.load_split(builder, "train"),
                                                 window_length=4, batch_size=2, seed=0)))
  assert batch["image"].shape == (2, 4, 64, 64, 3)


def test_h36m_missing_files_are_named(fake_h36m, tmp_path):
  root, _ = fake_h36m
  with pytest.raises(FileNotFoundError, match=r"S3.*missing folder .*S3.*Videos"):
    human36m.find_h36m_videos(root, ["S1", "S3"], verbose=False)
  broken = tmp_path / "broken"
  _write_fake_h36m_video(broken, "S1", "Eating.54138969", 0)
  os.remove(broken / "S1" / "Videos" / "Eating.54138969.mp4")
  with pytest.raises(FileNotFoundError, match=r"Eating.54138969.npy.* has no video; expected "
                                              r".*Eating.54138969.mp4"):
    human36m.find_h36m_videos(broken, ["S1"], verbose=False)
  renamed = tmp_path / "renamed"
  _write_fake_h36m_video(renamed, "S1", "Dancing.54138969", 0)
  with pytest.raises(ValueError, match="unknown action 'Dancing'"):
    human36m.find_h36m_videos(renamed, ["S1"], verbose=False)
  with pytest.raises(FileNotFoundError, match="does not exist"):
    human36m.find_h36m_videos(tmp_path / "nowhere", ["S1"])
