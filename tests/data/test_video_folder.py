"""Tests of reading a folder of the user's own videos / .npz files (`video_folder`,
`video_files`)."""

import os

import av
import imageio.v3 as iio
import numpy as np
import pytest
import tensorflow as tf

from video_structure.data import video_files
from video_structure.data import video_folder as vf
from video_structure.data import windows as windows_lib

# Codec tolerance for solid colours: YUV 4:2:0 conversion and compression change a colour by a
# few levels (measured max 2 for these files).
COLOUR_TOLERANCE = 6


def write_video(path, frames, codec, fps=25):
  """Writes uint8 [T, H, W, 3] frames (H, W even) with PyAV."""
  with av.open(os.fspath(path), "w") as container:
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = "yuv420p"
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)


def solid_frames(num_frames, height, width, colour):
  frames = np.empty((num_frames, height, width, 3), np.uint8)
  frames[:] = colour
  return frames


@pytest.fixture()
def mixed_folder(tmp_path):
  """Two mp4, one avi, one gif, two npz (no positions); returns (folder, expected per file)."""
  folder = tmp_path / "videos"
  folder.mkdir()
  expected = {}
  write_video(folder / "a_red.mp4", solid_frames(20, 48, 80, (200, 30, 40)), "libx264")
  expected["a_red.mp4"] = ("solid", (200, 30, 40), 20)
  write_video(folder / "b_blue.mp4", solid_frames(18, 64, 64, (20, 40, 210)), "libx264")
  expected["b_blue.mp4"] = ("solid", (20, 40, 210), 18)
  write_video(folder / "c_green.avi", solid_frames(17, 96, 64, (30, 180, 60)), "mpeg4")
  expected["c_green.avi"] = ("solid", (30, 180, 60), 17)
  # GIF writers merge identical frames, so every GIF frame has its own grey level.
  gif = np.stack([np.full((40, 40, 3), 10 * i, np.uint8) for i in range(16)])
  iio.imwrite(folder / "d_grey.gif", gif, duration=100, loop=0)
  expected["d_grey.gif"] = ("grey_ramp", None, 16)
  rng = np.random.default_rng(0)
  for name, length in (("e_noise.npz", 16), ("f_noise.npz", 24)):
    images = rng.integers(0, 256, (length, 64, 64, 3), dtype=np.uint8)
    np.savez(folder / name, image=images)
    expected[name] = ("exact", images, length)
  return folder, expected


def sequences(cache, split):
  return [{key: value.numpy() for key, value in element.items()}
          for element in vf.load_split(cache, split)]


def test_mixed_folder_round_trip(mixed_folder, tmp_path):
  folder, expected = mixed_folder
  cache = vf.prepare_video_folder(folder, cache_dir=tmp_path / "cache", min_frames=8,
                                  test_fraction=0.0, verbose=False)
  assert cache.num_sequences == {"train": 6, "test": 0}
  assert cache.files["train"] == sorted(expected) and cache.num_objects is None
  stored = sequences(cache, "train")
  for name, sequence in zip(sorted(expected), stored):
    kind, value, length = expected[name]
    assert set(sequence) == {"image"}
    images = sequence["image"]
    assert images.shape == (length, 64, 64, 3) and images.dtype == np.uint8, name
    if kind == "solid":
      error = np.abs(images.astype(int) - np.array(value)).max()
      assert error <= COLOUR_TOLERANCE, (name, error)
    elif kind == "grey_ramp":
      np.testing.assert_array_equal(images[:, 10, 10, 0], 10 * np.arange(16))
      assert np.all(images == images[:, :1, :1, :1])  # Each frame uniform grey.
    else:
      np.testing.assert_array_equal(images, value)


def test_compatible_with_windows_pipeline(mixed_folder, tmp_path):
  folder, _ = mixed_folder
  cache = vf.prepare_video_folder(folder, cache_dir=tmp_path / "cache", min_frames=8,
                                  test_fraction=0.0, verbose=False)
  dataset = vf.load_split(cache, "train")
  assert dataset.element_spec["image"].shape.as_list() == [None, 64, 64, 3]
  windows_lib.validate_example_spec(dataset, 16, "videos")
  batch = next(iter(windows_lib.make_windows_dataset(dataset, window_length=16, batch_size=4,
                                                     seed=0, name="videos")))
  assert batch["image"].shape == (4, 16, 64, 64, 3)
  assert -0.5 <= float(tf.reduce_min(batch["image"])) <= float(tf.reduce_max(batch["image"])) <= 0.5
  windows = list(windows_lib.make_windows_dataset(dataset, window_length=8, batch_size=1,
                                                  training=False, name="videos"))
  # T // 8 windows per sequence: 20, 18, 17, 16, 16, 24 frames.
  assert len(windows) == 2 + 2 + 2 + 2 + 2 + 3


def test_cache_is_reused_and_invalidated(mixed_folder, tmp_path, capsys):
  folder, _ = mixed_folder
  kwargs = dict(cache_dir=tmp_path / "cache", min_frames=8, test_fraction=0.0)
  before = video_files.decoded_file_count()
  first = vf.prepare_video_folder(folder, **kwargs)
  assert video_files.decoded_file_count() - before == 6
  record = first.tfrecord_path("train")
  mtime = os.stat(record).st_mtime_ns
  second = vf.prepare_video_folder(folder, **kwargs)
  assert video_files.decoded_file_count() - before == 6  # Nothing decoded again.
  assert second == first and os.stat(record).st_mtime_ns == mtime
  assert "reusing cache" in capsys.readouterr().out
  # A changed setting or a new file gives a new cache entry.
  third = vf.prepare_video_folder(folder, **dict(kwargs, image_size=32), verbose=False)
  assert third.directory != first.directory and video_files.decoded_file_count() - before == 12
  np.savez(folder / "g_new.npz", image=np.zeros((10, 64, 64, 3), np.uint8))
  fourth = vf.prepare_video_folder(folder, **kwargs, verbose=False)
  assert fourth.directory != first.directory and fourth.num_sequences["train"] == 7


def test_default_cache_dir_is_hidden_inside_folder(mixed_folder):
  folder, _ = mixed_folder
  cache = vf.prepare_video_folder(folder, min_frames=8, verbose=False)
  assert os.path.dirname(cache.directory) == os.path.join(folder, vf.DEFAULT_CACHE_DIR_NAME)
  # The cache folder is hidden, so it is not scanned as input the second time.
  again = vf.prepare_video_folder(folder, min_frames=8, verbose=False)
  assert again.directory == cache.directory
  # A visible cache folder inside the input folder is not scanned either.
  inside = vf.prepare_video_folder(folder, cache_dir=folder / "cache", min_frames=8,
                                   verbose=False)
  assert vf.prepare_video_folder(folder, cache_dir=folder / "cache", min_frames=8,
                                 verbose=False).directory == inside.directory


def test_bad_files_are_reported_by_name(mixed_folder, tmp_path, capsys):
  folder, _ = mixed_folder
  (folder / "broken.mp4").write_bytes(b"this is not a video" * 20)
  write_video(folder / "short.mp4", solid_frames(3, 32, 32, (0, 0, 0)), "libx264")
  (folder / "notes.txt").write_text("hello")
  kwargs = dict(cache_dir=tmp_path / "cache", min_frames=8, test_fraction=0.0)
  with pytest.raises(ValueError) as error:
    vf.prepare_video_folder(folder, **kwargs, verbose=False)
  message = str(error.value)
  assert "3 of 9 files" in message and "skip_bad_files=True" in message
  assert "broken.mp4: cannot open as a video" in message
  assert "short.mp4: too short: 3 frames" in message and "min_frames=8" in message
  assert "notes.txt: unsupported extension '.txt'" in message
  # Nothing was left in the cache (no half-built entry is ever taken as complete).
  assert not any(names for _, _, names in os.walk(tmp_path / "cache"))
  cache = vf.prepare_video_folder(folder, **kwargs, skip_bad_files=True)
  printed = capsys.readouterr().out
  assert "Skipped 3 bad files" in printed
  for name in ("broken.mp4", "short.mp4", "notes.txt"):
    assert name in printed and name in cache.skipped_files
  assert cache.num_sequences["train"] == 6


def test_empty_and_missing_folders(tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="contains no files"):
    vf.prepare_video_folder(tmp_path / "empty")
  with pytest.raises(FileNotFoundError, match="does not exist"):
    vf.prepare_video_folder(tmp_path / "nowhere")


def test_npz_positions_follow_crop_and_resize(tmp_path):
  """A bright block at a known place: its stored position lands on it after crop + resize."""
  folder = tmp_path / "npz"
  folder.mkdir()
  height, width, length = 48, 96, 10
  images = np.zeros((length, height, width, 3), np.uint8)
  positions = np.zeros((length, 2, 2), np.float32)
  for t in range(length):
    row, column = 10 + 2 * t, 30 + 3 * t  # Inside the central 48 x 48 square (columns 24-71).
    images[t, row - 2:row + 3, column - 2:column + 3] = 255
    positions[t, 0] = (-1 + 2 * column / (width - 1), 1 - 2 * row / (height - 1))
    positions[t, 1] = (0.0, 0.0)
  np.savez(folder / "block.npz", image=images, true_object_pos=positions)
  np.savez(folder / "block2.npz", image=images, true_object_pos=positions)
  cache = vf.prepare_video_folder(folder, cache_dir=tmp_path / "cache", min_frames=4,
                                  test_fraction=0.5, verbose=False)
  assert cache.num_objects == 2 and cache.num_sequences == {"train": 1, "test": 1}
  (sequence,) = sequences(cache, "test")
  assert sequence["true_object_pos"].shape == (length, 2, 2)
  grid = np.linspace(-1, 1, 64)
  for t in range(length):
    weights = sequence["image"][t, ..., 0].astype(np.float64)
    centroid_x = (weights.sum(0) * grid).sum() / weights.sum()
    centroid_y = (weights.sum(1) * grid[::-1]).sum() / weights.sum()
    x, y = sequence["true_object_pos"][t, 0]
    assert abs(centroid_x - x) < 0.02 and abs(centroid_y - y) < 0.02  # < 0.7 px.


def test_crop_resize_positions_exact():
  # Square input of the output size: identity.
  points = np.array([[-1.0, 1.0], [1.0, -1.0], [0.3, -0.7]])
  np.testing.assert_allclose(video_files.crop_resize_positions(points, 64, 64, 64), points,
                             atol=1e-6)
  # 48 x 96 -> central 48 x 48 (columns 24..71) -> 64 x 64.
  # Column 24 (x = -1 + 48/95) is the crop's first pixel centre: output (0.5 * 64/48 - 0.5).
  x_in = -1 + 2 * 24 / 95
  out = video_files.crop_resize_positions([[x_in, 1.0]], 48, 96, 64)
  expected_column = 0.5 * 64 / 48 - 0.5
  np.testing.assert_allclose(out[0], [-1 + 2 * expected_column / 63, 1 - 2 * expected_column / 63],
                             atol=1e-6)
  # The centre stays the centre.
  np.testing.assert_allclose(video_files.crop_resize_positions([[0.0, 0.0]], 48, 96, 64),
                             [[0.0, 0.0]], atol=1e-6)
  assert video_files.centre_crop_box(48, 97) == (0, 24, 48)


def test_mixed_positions_are_an_error(tmp_path):
  folder = tmp_path / "mixed"
  folder.mkdir()
  np.savez(folder / "with.npz", image=np.zeros((8, 64, 64, 3), np.uint8),
           true_object_pos=np.zeros((8, 3, 2), np.float32))
  np.savez(folder / "without.npz", image=np.zeros((8, 64, 64, 3), np.uint8))
  with pytest.raises(ValueError, match=r"with.npz.*without.npz.*use_positions=False"):
    vf.prepare_video_folder(folder, cache_dir=tmp_path / "cache", min_frames=4, verbose=False)
  cache = vf.prepare_video_folder(folder, cache_dir=tmp_path / "cache", min_frames=4,
                                  use_positions=False, test_fraction=0.0, verbose=False)
  assert cache.num_objects is None and cache.num_sequences["train"] == 2


def test_bad_npz_contents_are_named(tmp_path):
  folder = tmp_path / "bad"
  folder.mkdir()
  np.savez(folder / "float.npz", image=np.zeros((8, 64, 64, 3), np.float32))
  np.savez(folder / "noimage.npz", frames=np.zeros((8, 64, 64, 3), np.uint8))
  np.savez(folder / "badpos.npz", image=np.zeros((8, 64, 64, 3), np.uint8),
           true_object_pos=np.zeros((7, 3, 2), np.float32))
  with pytest.raises(ValueError) as error:
    vf.prepare_video_folder(folder, cache_dir=tmp_path / "cache", min_frames=4, verbose=False)
  message = str(error.value)
  assert "float.npz: 'image' must be uint8 [T, H, W, 3]" in message
  assert "noimage.npz: expected an array 'image'" in message and "frames" in message
  assert "badpos.npz: 'true_object_pos' must be float [T, N, 2] with T = 8" in message


def test_long_videos_are_cut_and_frame_step(tmp_path):
  folder = tmp_path / "long"
  folder.mkdir()
  images = np.arange(50, dtype=np.uint8)[:, None, None, None] * np.ones((1, 64, 64, 3), np.uint8)
  np.savez(folder / "ramp.npz", image=images)
  assert vf.split_lengths(50, 20) == [17, 17, 16] and vf.split_lengths(50, None) == [50]
  cache = vf.prepare_video_folder(folder, cache_dir=tmp_path / "cache", min_frames=8,
                                  max_frames_per_sequence=20, test_fraction=0.0, verbose=False)
  pieces = [sequence["image"][:, 0, 0, 0] for sequence in sequences(cache, "train")]
  assert [len(piece) for piece in pieces] == [17, 17, 16]
  np.testing.assert_array_equal(np.concatenate(pieces), np.arange(50))
  stepped = vf.prepare_video_folder(folder, cache_dir=tmp_path / "cache", min_frames=8,
                                    frame_step=3, test_fraction=0.0, verbose=False)
  (sequence,) = sequences(stepped, "train")
  np.testing.assert_array_equal(sequence["image"][:, 0, 0, 0], np.arange(0, 50, 3))
  # Video files are subsampled the same way.
  write_video(folder / "clip.mp4", np.stack([solid_frames(1, 32, 32, (8 * i,) * 3)[0]
                                             for i in range(24)]), "libx264")
  frames = list(video_files.iter_video_frames(folder / "clip.mp4", frame_step=5))
  assert len(frames) == 5  # Frames 0, 5, 10, 15, 20.
  np.testing.assert_allclose([frame[16, 16, 0] for frame in frames], [0, 40, 80, 120, 160],
                             atol=COLOUR_TOLERANCE)


def test_splits(tmp_path):
  names = [f"clip_{i:02d}.mp4" for i in range(20)]
  splits = vf.assign_splits(names, 0.25)
  assert sum(split == "test" for split in splits.values()) == 5
  assert vf.assign_splits(list(reversed(names)), 0.25) == splits  # Order-independent.
  assert list(vf.assign_splits(["a.mp4", "b.mp4"], 0.1).values()).count("test") == 1
  assert set(vf.assign_splits(names, 0.0).values()) == {"train"}
  folders = vf.assign_splits(["train/a.mp4", "train/b/c.mp4", "test/d.gif"], 0.5)
  assert folders == {"train/a.mp4": "train", "train/b/c.mp4": "train", "test/d.gif": "test"}
  with pytest.raises(ValueError, match="test_fraction"):
    vf.assign_splits(names, 1.0)
  # A folder with train/ and test/ subfolders.
  for split, count in (("train", 2), ("test", 1)):
    (tmp_path / "data" / split).mkdir(parents=True)
    for i in range(count):
      np.savez(tmp_path / "data" / split / f"{i}.npz", image=np.zeros((8, 64, 64, 3), np.uint8))
  cache = vf.prepare_video_folder(tmp_path / "data", cache_dir=tmp_path / "cache", min_frames=4,
                                  verbose=False)
  assert cache.files == {"train": ["train/0.npz", "train/1.npz"], "test": ["test/0.npz"]}
  only_train = vf.prepare_video_folder(tmp_path / "data" / "train", cache_dir=tmp_path / "cache",
                                       min_frames=4, test_fraction=0.0, verbose=False)
  with pytest.raises(ValueError, match="Split 'test' .* is empty"):
    vf.load_split(only_train, "test")
  with pytest.raises(ValueError, match="Unknown split 'validation'"):
    vf.load_split(only_train, "validation")


@pytest.mark.parametrize("kwargs, name", [
    (dict(image_size=4), "image_size"), (dict(min_frames=0), "min_frames"),
    (dict(frame_step=0), "frame_step"), (dict(min_frames=16, max_frames_per_sequence=20),
                                         "max_frames_per_sequence"),
    (dict(use_positions="yes"), "use_positions")])
def test_bad_arguments(tmp_path, kwargs, name):
  with pytest.raises(ValueError, match=name):
    vf.prepare_video_folder(tmp_path, **kwargs)
