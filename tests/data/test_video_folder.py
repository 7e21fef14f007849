"""Tests of reading a folder of the user's own videos / .npz files (`video_folder`,
`video_files`)."""

import hashlib
import json
import os
import re
import shutil
import types

import av
import imageio.v3 as iio
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from video_structure.cli import evaluate as evaluate_cli
from video_structure.cli import train as train_cli
from video_structure.data import folder_listing
from video_structure.data import folder_options
from video_structure.data import sources
from video_structure.data import video_files
from video_structure.data import video_folder as vf
from video_structure.data import windows as windows_lib

# Codec tolerance for solid colours: YUV 4:2:0 conversion and compression change a colour by a
# few levels (measured max 2 for these files).
COLOUR_TOLERANCE = 6


def write_video(path, frames, codec, fps=25, options=None):
  """Writes uint8 [T, H, W, 3] frames (H, W even) with PyAV (options: the muxer's)."""
  with av.open(os.fspath(path), "w", options=options or {}) as container:
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
  assert os.path.dirname(cache.directory) == os.path.join(
      folder, folder_options.DEFAULT_CACHE_DIR_NAME)
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
  (folder / "notes.txt").write_text("hello")  # Not a video: ignored, see the next test.
  kwargs = dict(cache_dir=tmp_path / "cache", min_frames=8, test_fraction=0.0)
  with pytest.raises(ValueError) as error:
    vf.prepare_video_folder(folder, **kwargs, verbose=False)
  message = str(error.value)
  assert message.startswith(f"Video folder {folder}: 2 of 8 files cannot be used; fix or "
                            f"remove them, or pass --skip_bad_files to leave them out:\n")
  assert "\n  broken.mp4: cannot open as a video" in message
  assert message.endswith("\n  short.mp4: too short: 3 frames, a training window needs 8")
  assert "notes.txt" not in message
  # Nothing was left in the cache (no half-built entry is ever taken as complete).
  assert not any(names for _, _, names in os.walk(tmp_path / "cache"))
  cache = vf.prepare_video_folder(folder, **kwargs, skip_bad_files=True)
  printed = capsys.readouterr().out
  assert "Skipped 2 bad files (--skip_bad_files):" in printed
  assert sorted(cache.skipped_files) == ["broken.mp4", "short.mp4"]
  for name in cache.skipped_files:
    assert f"\n  {name}: " in printed
  assert cache.num_sequences["train"] == 6


def test_other_files_are_ignored_with_one_warning(tmp_path, capsys):
  """A readme, thumbnails and subtitles next to the videos are named once and left out (they
  do not break the train/ test/ layout either); hidden files are left out silently."""
  folder = tmp_path / "clips"
  for split, count in (("train", 2), ("test", 1)):
    (folder / split).mkdir(parents=True)
    for index in range(count):
      np.savez(folder / split / f"{index}.npz", image=np.full((8, 64, 64, 3), index, np.uint8))
  (folder / "readme.txt").write_text("my clips")
  (folder / "train" / "0.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
  (folder / "thumbs").mkdir()
  iio.imwrite(folder / "thumbs" / "cover.jpg", np.zeros((8, 8, 3), np.uint8))
  (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
  kwargs = dict(cache_dir=tmp_path / "cache", min_frames=4)
  cache = vf.prepare_video_folder(folder, **kwargs, verbose=False)
  warnings = [line for line in capsys.readouterr().out.splitlines() if "Warning" in line]
  assert warnings == [f"Warning: video folder {folder}: ignoring 3 files (not video, .gif or "
                      f".npz): readme.txt, thumbs/cover.jpg, train/0.srt"]
  assert cache.files == {"train": ["train/0.npz", "train/1.npz"], "test": ["test/0.npz"]}
  assert cache.num_sequences == {"train": 2, "test": 1}
  # Editing the readme does not invalidate the cache.
  (folder / "readme.txt").write_text("my clips, edited")
  before = video_files.decoded_file_count()
  assert vf.prepare_video_folder(folder, **kwargs, verbose=False) == cache
  assert video_files.decoded_file_count() == before
  # A folder with nothing usable says what it found.
  (tmp_path / "docs").mkdir()
  (tmp_path / "docs" / "readme.txt").write_text("no videos")
  with pytest.raises(ValueError, match=r"contains no video, .gif or .npz files, only "
                                       r"readme.txt\.$"):
    vf.prepare_video_folder(tmp_path / "docs", **kwargs)


def _cut_after_packets(path, cut_path, num_packets):
  """Copies the bytes of `path` up to the end of its num_packets-th video packet (a download
  or recording that stopped there)."""
  with av.open(os.fspath(path)) as container:
    ends = [packet.pos + packet.size for packet in container.demux(container.streams.video[0])
            if packet.size]
  with open(path, "rb") as source, open(cut_path, "wb") as target:
    target.write(source.read(ends[num_packets - 1]))


def _ramp_frames(num_frames):
  return np.stack([solid_frames(1, 32, 32, (4 * i, 100, 255 - 4 * i))[0]
                   for i in range(num_frames)])


@pytest.mark.parametrize("name, codec, options, announced, decoded", [
    # The mp4 index at the front (as cameras and web downloads have it): the container
    # announces 60 frames, 19 decode without a decoder error.
    ("cut.mp4", "libx264", {"movflags": "faststart"}, "60", "19"),
    ("cut.avi", "mpeg4", None, "60", "19"),
    # Matroska stores no frame count: duration x frame rate; its last cut block is lost.
    ("cut.mkv", "libx264", None, "~60", "18"),
])
def test_truncated_videos_are_reported_with_both_counts(tmp_path, capsys, name, codec, options,
                                                        announced, decoded):
  folder = tmp_path / "videos"
  folder.mkdir()
  frames = _ramp_frames(60)
  write_video(tmp_path / f"whole{os.path.splitext(name)[1]}", frames, codec, options=options)
  _cut_after_packets(tmp_path / f"whole{os.path.splitext(name)[1]}", folder / name, 19)
  write_video(folder / "good.mp4", frames[:20], "libx264")
  kwargs = dict(cache_dir=tmp_path / "cache", min_frames=8, test_fraction=0.0, verbose=False)
  with pytest.raises(ValueError) as error:
    vf.prepare_video_folder(folder, **kwargs)
  assert str(error.value) == (
      f"Video folder {folder}: 1 of 2 files cannot be used; fix or remove them, or pass "
      f"--skip_bad_files to leave them out (--keep_truncated_videos keeps what decodes of "
      f"truncated videos):\n  {name}: truncated: {decoded} of {announced} frames decoded")
  # Kept on request, with a warning naming it and both counts at every start.
  capsys.readouterr()
  kept = vf.prepare_video_folder(folder, **kwargs, keep_truncated_videos=True)
  warning = (f"Warning: video folder {folder}: using 1 truncated video "
             f"(--keep_truncated_videos): {name} ({decoded} of {announced} frames decoded)")
  assert warning in capsys.readouterr().out.splitlines()
  assert kept.truncated_files == {name: f"{decoded} of {announced} frames decoded"}
  lengths = {sequence["image"].shape[0] for sequence in sequences(kept, "train")}
  assert lengths == {20, int(decoded)}
  assert vf.prepare_video_folder(folder, **kwargs, keep_truncated_videos=True) == kept
  assert warning in capsys.readouterr().out.splitlines()
  # Or left out with the other bad files.
  skipped = vf.prepare_video_folder(folder, **kwargs, skip_bad_files=True)
  assert skipped.skipped_files == {name: f"truncated: {decoded} of {announced} frames decoded"}
  assert skipped.files["train"] == ["good.mp4"] and skipped.num_sequences["train"] == 1


def test_video_cut_inside_a_frame_is_truncated(tmp_path):
  """Cut in the middle of a frame's bytes: the frames before the cut decode (the decoder may
  or may not raise an error, depending on its threading), and the file is truncated."""
  folder = tmp_path / "videos"
  folder.mkdir()
  noise = np.random.default_rng(0).integers(0, 256, (60, 64, 64, 3), dtype=np.uint8)
  write_video(tmp_path / "whole.mp4", noise, "libx264", options={"movflags": "faststart"})
  data = (tmp_path / "whole.mp4").read_bytes()
  (folder / "cut.mp4").write_bytes(data[:len(data) // 2])
  decoded = video_files.read_sequence_file(folder / "cut.mp4", 32)
  assert decoded.frames_announced == 60 and decoded.is_truncated
  assert 0 < decoded.frames_decoded == len(decoded.images) < 60
  with pytest.raises(ValueError, match=r"\n  cut.mp4: truncated: \d+ of 60 frames decoded"):
    vf.prepare_video_folder(folder, cache_dir=tmp_path / "cache", min_frames=8, verbose=False)
  # Complete files are not truncated.
  whole = video_files.read_sequence_file(tmp_path / "whole.mp4", 32)
  assert (whole.frames_announced, whole.frames_decoded, whole.is_truncated) == (60, 60, False)


def test_truncation_rule():
  def decoded_file(announced, decoded, estimate=False, error=None):
    return video_files.DecodedFile(np.zeros((decoded, 8, 8, 3), np.uint8), None, announced,
                                   estimate, decoded, error)

  # A stored count: up to TRUNCATION_TOLERANCE_FRAMES (2) missing frames are fine.
  assert not decoded_file(60, 58).is_truncated and decoded_file(60, 57).is_truncated
  assert not decoded_file(60, 61).is_truncated
  # An estimated count (duration x rate): 5% more, here 3 frames.
  assert not decoded_file(60, 55, estimate=True).is_truncated
  assert decoded_file(60, 54, estimate=True).is_truncated
  assert not decoded_file(None, 5).is_truncated  # The container does not say.
  stopped = decoded_file(60, 59, error="Invalid data found")
  assert stopped.is_truncated
  assert stopped.truncation() == (
      "59 of 60 frames decoded, then a decoding error (Invalid data found)")
  assert decoded_file(None, 5, error="x").truncation() == (
      "5 of an unknown number of frames decoded, then a decoding error (x)")
  assert decoded_file(60, 18, estimate=True).truncation() == "18 of ~60 frames decoded"


@pytest.mark.parametrize("damage", ["flipped bytes", "cut short", "garbled metadata"])
def test_corrupt_cache_is_rebuilt(mixed_folder, tmp_path, capsys, damage):
  folder, _ = mixed_folder
  kwargs = dict(cache_dir=tmp_path / "cache", min_frames=8, test_fraction=0.0)
  cache = vf.prepare_video_folder(folder, **kwargs, verbose=False)
  stored = sequences(cache, "train")
  record = cache.tfrecord_path("train")
  size = os.path.getsize(record)
  if damage == "flipped bytes":
    with open(record, "r+b") as stream:
      stream.seek(size // 2)
      byte = stream.read(1)
      stream.seek(size // 2)
      stream.write(bytes([byte[0] ^ 0xFF]))
    reason = "train.tfrecord does not match its checksum"
    # This is what every later start met before: TensorFlow's bare error while reading.
    with pytest.raises(tf.errors.DataLossError):
      sequences(cache, "train")
  elif damage == "cut short":
    os.truncate(record, size - 100)
    reason = f"train.tfrecord has {size - 100} bytes, {size} were written"
  else:
    with open(os.path.join(cache.directory, "metadata.json"), "w") as stream:
      stream.write('{"settings": ')
    reason = "unreadable metadata.json: "
  capsys.readouterr()
  before = video_files.decoded_file_count()
  rebuilt = vf.prepare_video_folder(folder, **kwargs, verbose=False)
  assert video_files.decoded_file_count() - before == 6  # Decoded again.
  (line,) = capsys.readouterr().out.splitlines()
  assert line.startswith(f"Video folder cache {cache.directory} was corrupt ({reason}")
  assert line.endswith("); deleted it, decoding the folder again.")
  assert rebuilt == cache  # The same entry, with the same numbers.
  for got, expected in zip(sequences(rebuilt, "train"), stored, strict=True):
    np.testing.assert_array_equal(got["image"], expected["image"])
  assert os.listdir(tmp_path / "cache") == [os.path.basename(cache.directory)]
  # The next start finds it sound.
  assert vf.prepare_video_folder(folder, **kwargs, verbose=False) == cache
  assert video_files.decoded_file_count() - before == 6


def _folder_config(folder, sequence_length=4):
  """The fields of a model `Config` that `sources.prepare` reads for a video folder."""
  return types.SimpleNamespace(dataset="video_folder", dataset_config="default",
                               dataset_path=str(folder), image_size=64,
                               sequence_length=sequence_length)


def _npz_folder(path, num_files=4):
  path.mkdir()
  for index in range(num_files):
    np.savez(path / f"clip_{index}.npz", image=np.full((8, 64, 64, 3), index, np.uint8))
  return path


def test_folder_options_are_remembered(tmp_path, capsys):
  """Flags not given take the values the folder's cache was built with: evaluate.py and a
  resumed run read the training run's split."""
  folder = _npz_folder(tmp_path / "clips")
  data_dir = tmp_path / "data"
  config = _folder_config(folder)
  source = sources.prepare(config, data_dir, folder_options={"test_fraction": 0.5})
  assert len(list(source.test)) == 2
  capsys.readouterr()
  again = sources.prepare(config, data_dir)  # No flags: those of the cache.
  assert len(list(again.test)) == 2
  assert (f"Video folder {folder}: using the options its cache was built with: "
          f"--test_fraction 0.5.") in capsys.readouterr().out
  assert len(os.listdir(data_dir / "video_folders")) == 1
  # Two caches with different options: the user has to say which.
  sources.prepare(config, data_dir, folder_options={"test_fraction": 0.25})
  with pytest.raises(ValueError) as error:
    sources.prepare(config, data_dir)
  assert str(error.value) == (
      f"Video folder {folder} has caches built with different options (--test_fraction 0.25 | "
      f"--test_fraction 0.5); pass the ones the run was trained with.")
  assert len(list(sources.prepare(config, data_dir,
                                  folder_options={"test_fraction": 0.25}).test)) == 1
  # Other frame settings or other files: the defaults.
  assert folder_options.resolve_folder_options(
      folder, {}, data_dir / "video_folders", min_frames=5) == folder_options.FOLDER_OPTION_DEFAULTS
  np.savez(folder / "clip_new.npz", image=np.zeros((8, 64, 64, 3), np.uint8))
  assert folder_options.resolve_folder_options(
      folder, {}, data_dir / "video_folders", min_frames=4) == folder_options.FOLDER_OPTION_DEFAULTS


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
  with pytest.raises(ValueError, match=r"with.npz.*without.npz.*pass --positions ignore\.$"):
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


def test_train_and_test_subfolders_are_the_splits(tmp_path):
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


def _messages_naming_flags(tmp_path):
  """The messages of this module that advise a flag."""
  messages = []

  def error_of(function, *args, **kwargs):
    with pytest.raises(ValueError) as error:
      function(*args, **kwargs)
    messages.append(str(error.value))

  folder = _npz_folder(tmp_path / "clips", num_files=2)
  (folder / "short.npz").write_bytes(b"not an archive")
  frames = _ramp_frames(60)
  write_video(tmp_path / "whole.avi", frames, "mpeg4")
  _cut_after_packets(tmp_path / "whole.avi", folder / "cut.avi", 19)
  error_of(vf.prepare_video_folder, folder, cache_dir=tmp_path / "cache", min_frames=4)
  mixed = _npz_folder(tmp_path / "mixed", num_files=1)
  np.savez(mixed / "with.npz", image=np.zeros((8, 64, 64, 3), np.uint8),
           true_object_pos=np.zeros((8, 1, 2), np.float32))
  error_of(vf.prepare_video_folder, mixed, cache_dir=tmp_path / "cache", min_frames=4)
  only_train = vf.prepare_video_folder(mixed, cache_dir=tmp_path / "cache", min_frames=4,
                                       test_fraction=0.0, use_positions=False)
  error_of(vf.load_split, only_train, "test")
  error_of(folder_listing.assign_splits, ["a.mp4"], 1.5)
  for test_fraction in (0.25, 0.5):
    vf.prepare_video_folder(mixed, cache_dir=tmp_path / "cache", min_frames=4,
                            use_positions=False, test_fraction=test_fraction)
  error_of(folder_options.resolve_folder_options, mixed, {}, tmp_path / "cache", min_frames=4)
  # Real footage: shots too short, a crop too large, a split in time, bad values.
  shots = tmp_path / "shots"
  shots.mkdir()
  _shots_video(shots / "flicker.mp4", [(6, (200, 30, 40)), (6, (20, 40, 210))])
  error_of(vf.prepare_video_folder, shots, cache_dir=tmp_path / "cache", min_frames=8)
  error_of(vf.prepare_video_folder, mixed, cache_dir=tmp_path / "cache", min_frames=4,
           use_positions=False, crop=(0, 0, 65, 64))
  single = tmp_path / "single"
  single.mkdir()
  _ramp_npz(single / "ramp.npz", 20)
  error_of(vf.load_split, vf.prepare_video_folder(single, cache_dir=tmp_path / "cache",
                                                  min_frames=8), "test")
  split_folders = tmp_path / "split_folders"
  split_folders.mkdir()
  for split in vf.SPLITS:
    _npz_folder(split_folders / split)
  error_of(vf.prepare_video_folder, split_folders, cache_dir=tmp_path / "cache", min_frames=4,
           split_by="time")
  error_of(vf.prepare_video_folder, single, min_frames=8, frame_step=0)
  error_of(vf.prepare_video_folder, single, min_frames=8, frames_per_sequence=8)
  return messages


def test_every_flag_a_message_advises_is_accepted(tmp_path):
  messages = _messages_naming_flags(tmp_path)
  advised = {flag for message in messages for flag in re.findall(r"--[a-z][a-z_-]*", message)}
  assert advised == {"--skip_bad_files", "--keep_truncated_videos", "--positions",
                     "--test_fraction", "--split_by", "--cut_threshold", "--crop", "--frame_step",
                     "--frames_per_sequence"}
  # The first line of each message says what is wrong and the fix; the rest name the files.
  # (Measured without the temporary directory, whose length depends on the test runner.)
  assert all(len(message.replace(str(tmp_path), "<tmp>").splitlines()[0]) < 300
             for message in messages)
  values = {"--positions": ["ignore"], "--test_fraction": ["0.25"], "--split_by": ["time"],
            "--cut_threshold": ["0"], "--crop": ["0,0,32,32"], "--frame_step": ["2"],
            "--frames_per_sequence": ["64"]}
  for flag in sorted(advised):
    argv = ["--dataset", str(tmp_path / "clips"), flag] + values.get(flag, [])
    train_args = train_cli.parse_args(argv)
    evaluate_args = evaluate_cli.build_parser().parse_args(["--run_dir", "run"] + argv[2:])
    for args in (train_args, evaluate_args):
      assert folder_options.folder_options_from_args(args) == {
          "--skip_bad_files": {"skip_bad_files": True},
          "--keep_truncated_videos": {"keep_truncated_videos": True},
          "--positions": {"use_positions": False},
          "--test_fraction": {"test_fraction": 0.25},
          "--split_by": {"split_by": "time"},
          "--cut_threshold": {"cut_threshold": 0.0},
          "--crop": {"crop": (0, 0, 32, 32)},
          "--frame_step": {"frame_step": 2},
          "--frames_per_sequence": {"frames_per_sequence": 64}}[flag]
    assert train_args.folder_options == folder_options.folder_options_from_args(train_args)
  # The --no- forms undo a remembered value.
  assert train_cli.parse_args(["--no-skip_bad_files", "--positions", "auto"]).folder_options == {
      "skip_bad_files": False, "use_positions": None}


# ----------------------------------------------------------------------------------------
# Real footage: a split in time, crops, shot cuts (issue 16)
# ----------------------------------------------------------------------------------------


def _ramp_npz(path, num_frames, size=64):
  """An .npz whose frame t is uniformly t (so every stored frame names its source frame)."""
  images = np.arange(num_frames, dtype=np.uint8)[:, None, None, None] * np.ones(
      (1, size, size, 3), np.uint8)
  np.savez(path, image=images)
  return images


def _frame_ids(cache, split):
  return [sequence["image"][:, 0, 0, 0].tolist() for sequence in sequences(cache, split)]


def test_a_folder_of_one_video_is_split_in_time(tmp_path):
  """The issue: a folder holding one video stopped with "Split 'test' ... is empty". Now, read
  the way train.py reads it, its first 90% of frames train and its last 10% test."""
  folder = tmp_path / "street"
  folder.mkdir()
  write_video(folder / "street.mp4",
              np.stack([solid_frames(1, 64, 64, (40 + 2 * t,) * 3)[0] for t in range(80)]),
              "libx264")
  source = sources.prepare(_folder_config(folder, sequence_length=8), tmp_path / "data")
  train = [element["image"].numpy() for element in source.train]
  test = [element["image"].numpy() for element in source.test]
  assert [len(images) for images in train] == [72] and [len(images) for images in test] == [8]
  # The test split is the end of the video: its first frame is frame 72.
  assert abs(float(test[0][0].mean()) - (40 + 2 * 72)) <= COLOUR_TOLERANCE
  assert abs(float(train[0][-1].mean()) - (40 + 2 * 71)) <= COLOUR_TOLERANCE


def test_time_split_puts_exactly_these_frames_in_each_split(tmp_path, capsys):
  folder = tmp_path / "one"
  folder.mkdir()
  _ramp_npz(folder / "ramp.npz", 50)
  kwargs = dict(cache_dir=tmp_path / "cache", min_frames=8, max_frames_per_sequence=20,
                verbose=False)
  cache = vf.prepare_video_folder(folder, test_fraction=0.2, **kwargs)
  assert cache.split_by == "time"
  assert _frame_ids(cache, "train") == [list(range(0, 20)), list(range(20, 40))]
  assert _frame_ids(cache, "test") == [list(range(40, 50))]
  assert cache.files == {"train": ["ramp.npz"], "test": ["ramp.npz"]}
  with open(os.path.join(cache.directory, "metadata.json"), encoding="utf-8") as stream:
    metadata = json.load(stream)
  assert metadata["split_by"] == "time" and metadata["settings"]["split_by"] == "time"
  # After frame_step 2: 25 kept frames, the last round(0.4 * 25) = 10 test.
  stepped = vf.prepare_video_folder(folder, test_fraction=0.4, frame_step=2, **kwargs)
  assert _frame_ids(stepped, "train") == [list(range(0, 30, 2))]
  assert _frame_ids(stepped, "test") == [list(range(30, 50, 2))]
  # Forced on a folder of several files: each file is split in time.
  _ramp_npz(folder / "second.npz", 20)
  forced = vf.prepare_video_folder(folder, test_fraction=0.5, split_by="time", **kwargs)
  assert _frame_ids(forced, "train") == [list(range(0, 13)), list(range(13, 25)),
                                         list(range(0, 10))]
  assert _frame_ids(forced, "test") == [list(range(25, 38)), list(range(38, 50)),
                                        list(range(10, 20))]
  # A test part shorter than a window is left out, named, and the empty split says why.
  capsys.readouterr()
  short = vf.prepare_video_folder(folder, test_fraction=0.1, split_by="time", **kwargs)
  assert (f"Note: video folder {folder}: left out 2 stretches shorter than a training window "
          f"(8 frames) between shot cuts or split boundaries: ramp.npz frames 45-49 (5 frames, "
          f"test), second.npz frames 18-19 (2 frames, test)") in capsys.readouterr().out
  with pytest.raises(ValueError, match=r"split by time\); each video's test part is shorter "
                                       r"than a training window; pass a larger --test_fraction"):
    vf.load_split(short, "test")


def test_split_by_time_is_refused_with_train_and_test_subfolders(tmp_path):
  for split in ("train", "test"):
    (tmp_path / "data" / split).mkdir(parents=True)
    _ramp_npz(tmp_path / "data" / split / "clip.npz", 10)
  with pytest.raises(ValueError) as error:
    vf.prepare_video_folder(tmp_path / "data", cache_dir=tmp_path / "cache", min_frames=4,
                            split_by="time", verbose=False)
  assert str(error.value) == (
      f"Video folder {tmp_path / 'data'}: its train/ and test/ subfolders are the splits; drop "
      f"--split_by time, or move the files out of train/ and test/.")


def _legacy_key(folder, settings):
  """The cache key as computed before split_by, crop and cut_threshold existed."""
  entries, _ = folder_listing.scan_folder(str(folder), exclude=str(folder / "none"))
  source = json.dumps({"settings": settings, "files": folder_listing.files_digest(entries)},
                      sort_keys=True)
  return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def test_folders_that_split_by_file_keep_their_split_and_cache_key(tmp_path, mixed_folder,
                                                                   capsys):
  folder = _npz_folder(tmp_path / "clips", num_files=4)
  legacy = {"format_version": 2, "image_size": 64, "frame_step": 1, "min_frames": 4,
            "max_frames_per_sequence": 256, "test_fraction": 0.5, "skip_bad_files": False,
            "keep_truncated_videos": False, "use_positions": None}
  kwargs = dict(cache_dir=tmp_path / "cache", min_frames=4, test_fraction=0.5, verbose=False)
  cache = vf.prepare_video_folder(folder, **kwargs)
  assert os.path.basename(cache.directory) == f"clips-{_legacy_key(folder, legacy)}"
  expected = folder_listing.assign_splits([f"clip_{i}.npz" for i in range(4)], 0.5)
  assert cache.split_by == "files"
  assert cache.files == {split: sorted(path for path, value in expected.items() if value == split)
                         for split in vf.SPLITS}
  # --split_by files, a cut threshold (not applicable to .npz) and `--crop none` change nothing.
  for options in (dict(split_by="files"), dict(cut_threshold=5.0), dict(crop=None)):
    assert vf.prepare_video_folder(folder, **kwargs, **options) == cache
  # A folder of videos: the same key without cut detection; with it (the default) a new entry.
  videos, _ = mixed_folder
  legacy_videos = dict(legacy, min_frames=8, test_fraction=0.5)
  video_kwargs = dict(cache_dir=tmp_path / "cache", min_frames=8, test_fraction=0.5,
                      verbose=False)
  plain = vf.prepare_video_folder(videos, cut_threshold=0, **video_kwargs)
  assert os.path.basename(plain.directory) == f"videos-{_legacy_key(videos, legacy_videos)}"
  assert vf.prepare_video_folder(videos, **video_kwargs).directory != plain.directory
  # An entry written before these options (no split_by / cuts in its metadata) is still read,
  # and remembered as built without cut detection.
  metadata_path = os.path.join(plain.directory, "metadata.json")
  with open(metadata_path, encoding="utf-8") as stream:
    metadata = json.load(stream)
  for key in ("split_by", "cuts", "dropped_segments"):
    del metadata[key]
  with open(metadata_path, "w", encoding="utf-8") as stream:
    json.dump(metadata, stream)
  shutil.rmtree(vf.prepare_video_folder(videos, **video_kwargs).directory)
  capsys.readouterr()
  options = folder_options.resolve_folder_options(videos, {}, tmp_path / "cache", min_frames=8)
  assert options["cut_threshold"] == 0.0 and options["split_by"] == "files"
  assert capsys.readouterr().out == (f"Video folder {videos}: using the options its cache was "
                                     f"built with: --test_fraction 0.5 --cut_threshold 0.\n")
  before = video_files.decoded_file_count()
  reused = vf.prepare_video_folder(videos, cache_dir=tmp_path / "cache", min_frames=8,
                                   verbose=False, **options)
  assert reused.directory == plain.directory and reused.split_by == "files"
  assert video_files.decoded_file_count() == before


def test_an_entry_with_an_empty_split_is_not_remembered(tmp_path, capsys):
  """Before the split in time, a folder of one video was cached with an empty test split (and
  train.py stopped). That entry is not taken as the options to use: the default now splits the
  video in time."""
  folder = tmp_path / "street"
  folder.mkdir()
  _ramp_npz(folder / "street.npz", 40)
  data_dir = tmp_path / "data"
  old = vf.prepare_video_folder(folder, cache_dir=data_dir / "video_folders", min_frames=4,
                                split_by="files", verbose=False)
  assert old.num_sequences == {"train": 1, "test": 0}
  capsys.readouterr()
  source = sources.prepare(_folder_config(folder), data_dir)
  assert "using the options its cache was built with" not in capsys.readouterr().out
  assert [len(element["image"]) for element in source.test] == [4]
  assert len(os.listdir(data_dir / "video_folders")) == 2


def test_crop_resize_positions_through_a_crop_box_exact():
  height, width, box = 100, 200, (50, 10, 80, 60)
  # The box is 80 x 60; its central 60 x 60 square is columns 60-119, rows 10-69 of the frame,
  # resized to 30 x 30 (scale 1/2).
  frame = (np.arange(height)[:, None, None] * 1000 + np.arange(width)[None, :, None]
           + np.zeros((1, 1, 3)))
  np.testing.assert_array_equal(
      video_files.crop_resize_frame(frame.astype(np.int64).astype(np.uint8), 60, box),
      frame.astype(np.int64).astype(np.uint8)[10:70, 60:120])
  columns = np.array([60, 119, 90, 0, 199])
  rows = np.array([10, 69, 40, 0, 99])
  points = np.stack([-1 + 2 * columns / (width - 1), 1 - 2 * rows / (height - 1)], axis=-1)
  out_columns = (columns - 60 + 0.5) * 0.5 - 0.5
  out_rows = (rows - 10 + 0.5) * 0.5 - 0.5
  expected = np.stack([-1 + 2 * out_columns / 29, 1 - 2 * out_rows / 29], axis=-1)
  mapped = video_files.crop_resize_positions(points, height, width, 30, box)
  np.testing.assert_allclose(mapped, expected, atol=1e-5)
  # The square's corner pixel centres lie half an output pixel outside [-1, 1] (a downscale);
  # pixels outside the box lie far outside.
  np.testing.assert_allclose(np.abs(mapped[:2]), 1 + 0.5 / 29, atol=1e-5)
  assert np.all(np.abs(mapped[2]) < 0.1) and np.all(np.abs(mapped[3:]) > 1.3)
  # No box: as before.
  np.testing.assert_allclose(video_files.crop_resize_positions(points, height, width, 30),
                             video_files.crop_resize_positions(points, height, width, 30,
                                                               (0, 0, width, height)), atol=1e-6)


def test_npz_positions_follow_a_crop(tmp_path):
  """A bright block moving through a cropped, resized region stays under its position."""
  folder = tmp_path / "npz"
  folder.mkdir()
  height, width, length, box = 120, 160, 8, (40, 20, 100, 90)  # Square 90 x 90 at (45, 20).
  images = np.zeros((length, height, width, 3), np.uint8)
  positions = np.zeros((length, 1, 2), np.float32)
  for t in range(length):
    row, column = 40 + 4 * t, 60 + 5 * t
    images[t, row - 3:row + 4, column - 3:column + 4] = 255
    positions[t, 0] = (-1 + 2 * column / (width - 1), 1 - 2 * row / (height - 1))
  np.savez(folder / "block.npz", image=images, true_object_pos=positions)
  cache = vf.prepare_video_folder(folder, cache_dir=tmp_path / "cache", min_frames=4,
                                  test_fraction=0.0, crop=box, verbose=False)
  (sequence,) = sequences(cache, "train")
  grid = np.linspace(-1, 1, 64)
  for t in range(length):
    weights = sequence["image"][t, ..., 0].astype(np.float64)
    x, y = sequence["true_object_pos"][t, 0]
    assert abs((weights.sum(0) * grid).sum() / weights.sum() - x) < 0.02
    assert abs((weights.sum(1) * grid[::-1]).sum() / weights.sum() - y) < 0.02


def _texture(seed, size=256):
  """A smooth random colour image (a scene)."""
  small = np.random.default_rng(seed).uniform(0, 255, (12, 12, 3)).astype(np.uint8)
  return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC),
                    np.float32)


def _camera(scene, num_frames, start=(0.0, 0.0), velocity=(0.0, 0.0), gain=None, size=64):
  """A 64 x 64 window moving over a scene (a pan), optionally brightened by gain(t)."""
  frames = []
  for t in range(num_frames):
    top = int(round(start[0] + velocity[0] * t))
    left = int(round(start[1] + velocity[1] * t))
    frame = scene[top:top + size, left:left + size] * (1.0 if gain is None else gain(t))
    frames.append(np.clip(frame, 0, 255).astype(np.uint8))
  return np.stack(frames)


def test_cut_detector_finds_known_cuts_and_no_false_ones():
  first, second, third = _texture(0), _texture(1), _texture(2)

  def cuts(frames, **kwargs):
    return video_files.detect_cuts(video_files.frame_thumbnails(frames), **kwargs)

  # Three shots: a slow pan, a diagonal pan, a still view: new shots at frames 40 and 70.
  clip = np.concatenate([_camera(first, 40, velocity=(0, 1)),
                         _camera(second, 30, velocity=(1, 2)), _camera(third, 30)])
  assert cuts(clip) == [40, 70]
  scores = video_files.cut_scores(video_files.frame_thumbnails(clip))
  assert scores.shape == (99,) and min(scores[39], scores[69]) > 3 > 1 > max(np.delete(
      scores, [39, 69]))
  assert cuts(clip, threshold=0) == []  # Off.
  # A slow pan while the light drifts from 60% to 110%.
  drift = _camera(first, 120, velocity=(0.3, 0.5), gain=lambda t: 0.6 + 0.5 * t / 120)
  assert cuts(drift) == []
  assert video_files.cut_scores(video_files.frame_thumbnails(drift)).max() < 1
  # A still camera that starts a fast pan (3, 5 pixels per frame) and keeps panning.
  assert cuts(np.concatenate([_camera(first, 30), _camera(first, 30, velocity=(3, 5))[1:]])) == []
  # Sensor noise on a still scene.
  noise = np.random.default_rng(3).normal(0, 4, (60, 64, 64, 3))
  assert cuts(np.clip(_camera(first, 60) + noise, 0, 255).astype(np.uint8)) == []
  # Too short to have a boundary.
  assert cuts(clip[:1]) == [] and video_files.cut_scores(np.zeros((1, 8, 8))).size == 0


def test_cut_thumbnails_cover_the_stored_region_of_every_frame(tmp_path):
  """Thumbnails are block means of what is stored (the crop box's central square), for every
  decoded frame before frame_step, the same for a video's grey frames and RGB arrays."""
  frame = np.zeros((48, 96, 3), np.uint8)
  # The central 48 x 48 square is columns 24-71, in blocks of 6; columns 42-53 are its blocks 3
  # and 4.
  frame[:, 42:54] = 200
  (thumbnail,) = video_files.frame_thumbnails(frame[None])
  np.testing.assert_allclose(thumbnail, np.tile([0, 0, 0, 200, 200, 0, 0, 0], (8, 1)),
                             atol=1e-4)
  np.testing.assert_allclose(video_files.grey_thumbnail(frame[..., 0]), thumbnail, atol=1e-3)
  # A box of columns 42-53: its central 12 x 12 square (rows 18-29) is all bright.
  assert video_files.stored_region(48, 96, (42, 0, 12, 48)) == (18, 42, 12)
  (boxed,) = video_files.frame_thumbnails(frame[None], (42, 0, 12, 48))
  np.testing.assert_allclose(boxed, 200, atol=1e-4)
  # A video: one thumbnail per decoded frame, whatever the frame_step.
  write_video(tmp_path / "ramp.mp4", np.stack([solid_frames(1, 64, 64, (4 * i,) * 3)[0]
                                               for i in range(30)]), "libx264")
  decoded = video_files.read_sequence_file(tmp_path / "ramp.mp4", 32, frame_step=4,
                                           cut_thumbnails=True)
  assert decoded.images.shape[0] == 8 and decoded.cut_thumbnails.shape == (30, 8, 8)
  np.testing.assert_allclose(decoded.cut_thumbnails.mean(axis=(1, 2)), 4 * np.arange(30),
                             atol=COLOUR_TOLERANCE)
  assert video_files.read_sequence_file(tmp_path / "ramp.mp4", 32).cut_thumbnails is None


def _shots_video(path, shots, size=64):
  """An .mp4 of solid-colour shots [(num_frames, colour), ...]."""
  write_video(path, np.concatenate([solid_frames(length, size, size, colour)
                                    for length, colour in shots]), "libx264")


def test_no_sequence_spans_a_cut_and_short_stretches_are_named(tmp_path, capsys):
  folder = tmp_path / "shots"
  folder.mkdir()
  # New shots at frames 25 (5 frames of green) and 30.
  _shots_video(folder / "clip.mp4", [(25, (200, 30, 40)), (5, (30, 180, 60)),
                                     (30, (20, 40, 210))])
  kwargs = dict(cache_dir=tmp_path / "cache", min_frames=8)
  cache = vf.prepare_video_folder(folder, test_fraction=0.0, **kwargs)
  printed = capsys.readouterr().out
  assert "Shot cuts (--cut_threshold 2) in 1 of 1 file: clip.mp4 at frames 25, 30\n" in printed
  note = (f"Note: video folder {folder}: left out 1 stretch shorter than a training window "
          f"(8 frames) between shot cuts or split boundaries: clip.mp4 frames 25-29 (5 frames, "
          f"train)")
  assert note in printed.splitlines()
  assert cache.cuts == {"clip.mp4": [25, 30]}
  assert cache.dropped_segments == {
      "clip.mp4": [{"split": "train", "frames": [25, 29], "num_frames": 5}]}
  stored = sequences(cache, "train")
  assert [len(sequence["image"]) for sequence in stored] == [25, 30]
  for sequence, colour in zip(stored, ((200, 30, 40), (20, 40, 210))):  # One shot each.
    assert np.abs(sequence["image"].astype(int) - colour).max() <= COLOUR_TOLERANCE
  # Every later start says it again.
  vf.prepare_video_folder(folder, test_fraction=0.0, **kwargs)
  assert note in capsys.readouterr().out.splitlines()
  # With a split in time: nothing spans the cuts or the boundary at frame 48.
  timed = vf.prepare_video_folder(folder, test_fraction=0.2, verbose=False, **kwargs)
  assert [len(sequence["image"]) for sequence in sequences(timed, "train")] == [25, 18]
  assert [len(sequence["image"]) for sequence in sequences(timed, "test")] == [12]
  # Cuts are found at the source frame rate and named by source frame; after frame_step 2 the
  # kept frames 13 (source 26) and 15 (source 30) start the shots.
  stepped = vf.prepare_video_folder(folder, test_fraction=0.0, frame_step=2, verbose=False,
                                    **kwargs)
  assert stepped.cuts == {"clip.mp4": [25, 30]}
  assert [len(sequence["image"]) for sequence in sequences(stepped, "train")] == [13, 15]
  assert stepped.dropped_segments == {
      "clip.mp4": [{"split": "train", "frames": [26, 28], "num_frames": 2}]}
  # Off: one sequence.
  off = vf.prepare_video_folder(folder, test_fraction=0.0, cut_threshold=0, verbose=False,
                                **kwargs)
  assert [len(sequence["image"]) for sequence in sequences(off, "train")] == [60]
  assert off.cuts == {} and off.dropped_segments == {}


def test_a_file_of_short_shots_is_a_bad_file(tmp_path):
  folder = tmp_path / "short_shots"
  folder.mkdir()
  _shots_video(folder / "flicker.mp4", [(6, (200, 30, 40)), (6, (20, 40, 210))])
  with pytest.raises(ValueError) as error:
    vf.prepare_video_folder(folder, cache_dir=tmp_path / "cache", min_frames=8,
                            test_fraction=0.0, verbose=False)
  assert str(error.value) == (
      f"Video folder {folder}: 1 of 1 files cannot be used; fix or replace them:\n"
      f"  flicker.mp4: divided at its shot cuts (frame 6), no stretch holds a training window "
      f"of 8 frames (frames 0-5 (6 frames, train), frames 6-11 (6 frames, train)) "
      f"(--cut_threshold 0 turns cut detection off)")
  # In time as well: divided at the boundary too.
  with pytest.raises(ValueError, match=r"flicker.mp4: divided at its shot cuts \(frame 6\) and "
                                       r"the train/test boundary \(frame 6\), no stretch"):
    vf.prepare_video_folder(folder, cache_dir=tmp_path / "cache", min_frames=8,
                            test_fraction=0.5, verbose=False)


def test_a_crop_beyond_the_frame_names_the_file(tmp_path):
  folder = tmp_path / "small"
  folder.mkdir()
  _ramp_npz(folder / "ramp.npz", 10)
  with pytest.raises(ValueError) as error:
    vf.prepare_video_folder(folder, cache_dir=tmp_path / "cache", min_frames=4,
                            crop=(10, 0, 60, 64), verbose=False)
  assert str(error.value).endswith(
      "\n  ramp.npz: --crop 10,0,60,64 reaches beyond the 64x64 frame (LEFT + WIDTH must be "
      "<= 64 and TOP + HEIGHT <= 64).")


@pytest.mark.parametrize("kwargs, message", [
    (dict(test_fraction=1.0), "--test_fraction must be in [0, 1), got 1.0."),
    (dict(test_fraction="0.1"), "--test_fraction must be in [0, 1), got '0.1'."),
    (dict(split_by="frames"), "--split_by must be one of auto, files, time, got 'frames'."),
    (dict(crop=(0, 0, 1, 64)), "--crop must be LEFT,TOP,WIDTH,HEIGHT: four integers in source "
                               "pixels (LEFT, TOP >= 0; WIDTH, HEIGHT >= 2), e.g. "
                               "336,96,384,384, or none; got (0, 0, 1, 64)."),
    (dict(crop=(-1, 0, 8, 8)), "--crop must be LEFT,TOP,WIDTH,HEIGHT"),
    (dict(crop=(0, 0, 8)), "--crop must be LEFT,TOP,WIDTH,HEIGHT"),
    (dict(frame_step=0), "--frame_step must be a positive integer, got 0."),
    (dict(frame_step=1.5), "--frame_step must be a positive integer, got 1.5."),
    (dict(frames_per_sequence=20), "--frames_per_sequence must be >= 2 x the training window "
                                   "= 32 (so that every piece of a cut video keeps a window), "
                                   "got 20."),
    (dict(cut_threshold=0.5), "--cut_threshold must be 0 (no cut detection) or a number > 1, "
                              "got 0.5."),
    (dict(cut_threshold=-2), "--cut_threshold must be 0 (no cut detection)"),
])
def test_folder_option_checks_name_the_flag(tmp_path, kwargs, message):
  with pytest.raises(ValueError) as error:
    vf.prepare_video_folder(tmp_path, min_frames=16, **kwargs)
  assert str(error.value).startswith(message)
  if "frames_per_sequence" not in kwargs:  # Checked against the window only when preparing.
    with pytest.raises(ValueError) as error:
      folder_options.resolve_folder_options(tmp_path, kwargs)
    assert str(error.value).startswith(message)


def test_new_folder_options_are_remembered(tmp_path, capsys):
  folder = tmp_path / "clips"
  folder.mkdir()
  for index in range(3):
    np.savez(folder / f"clip_{index}.npz", image=np.full((16, 48, 64, 3), index, np.uint8))
  data_dir = tmp_path / "data"
  config = _folder_config(folder)
  args = train_cli.parse_args(["--crop", "8,0,40,40", "--frame_step", "2", "--split_by", "time",
                               "--frames_per_sequence", "300", "--cut_threshold", "3"])
  assert args.folder_options == {"crop": (8, 0, 40, 40), "frame_step": 2, "split_by": "time",
                                 "frames_per_sequence": 300, "cut_threshold": 3.0}
  given = {"crop": (8, 0, 40, 40), "frame_step": 2, "split_by": "time", "test_fraction": 0.5}
  source = sources.prepare(config, data_dir, folder_options=given)
  # 8 frames kept of each file: 4 train, 4 test.
  assert [len(element["image"]) for element in source.train] == [4, 4, 4]
  assert [len(element["image"]) for element in source.test] == [4, 4, 4]
  capsys.readouterr()
  sources.prepare(config, data_dir)
  assert (f"Video folder {folder}: using the options its cache was built with: --test_fraction "
          f"0.5 --split_by time --crop 8,0,40,40 --frame_step 2.") in capsys.readouterr().out
  # `--crop none` undoes the crop (the other remembered options are not taken with it).
  assert train_cli.parse_args(["--crop", "none"]).folder_options == {"crop": None}
  sources.prepare(config, data_dir, folder_options={"crop": None})
  with pytest.raises(ValueError) as error:
    sources.prepare(config, data_dir)
  assert str(error.value) == (
      f"Video folder {folder} has caches built with different options (--test_fraction 0.1 "
      f"--split_by files --crop none --frame_step 1 | --test_fraction 0.5 --split_by time --crop "
      f"8,0,40,40 --frame_step 2); pass the ones the run was trained with.")
