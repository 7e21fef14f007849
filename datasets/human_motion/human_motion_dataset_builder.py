"""TFDS builder for human-motion videos (the paper's Human3.6M experiments).

Configs:
  tiny / cpu / paper   generated offline by `video_structure.human_motion` (articulated
                       figures performing 8 actions; 17 joints; 6.25 Hz). Nothing downloaded.
  h36m                 imports a user's licensed Human3.6M copy from the manual folder
                       (videos + 2D poses; subjects S1, S5, S6, S7, S8 train, S9, S11 test;
                       subsampled 50 -> 6.25 Hz; cropped around the person and resized to
                       64x64). See docs/human36m.md for the download and folder layout.

Features of one example (T = frames, S = image_size, J = 17):
  image:            uint8   [T, S, S, 3]  zlib-compressed tensor on disk (as Basketball).
  true_object_pos:  float32 [T, 17, 2]    joint (x, y) in [-1, 1] (x right, y up), in
                                          `human_motion.JOINT_NAMES` order.
  action:           ClassLabel            `human_motion.ACTION_NAMES` (generated) or
                                          `H36M_ACTIONS` (h36m).
  sequence_index:   int64   []            index of the sequence within its split.
  video_name:       string                "generated/<split>/<index>" or "S9/Walking 1.54138969".
h36m only (T varies per video there):
  all_joints_pos:   float32 [T, 32, 2]    all 32 Human3.6M points, same coordinates.
  subject, camera:  string                e.g. "S9", "54138969".

Read a split with `load_split` (or `video_structure.data.load_split`, which keeps only image
and true_object_pos); `prepare` builds the data if missing.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import time
from typing import Iterator, Optional

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import gcs_utils

from video_structure import beam_support
from video_structure import data
from video_structure import human_motion
from video_structure import video_folder

# Offline: never look for a prebuilt copy of the dataset on GCS.
gcs_utils._is_gcs_disabled = True  # pylint: disable=protected-access

# Sequences generated per call (vectorised rendering amortises Python overhead).
GENERATION_CHUNK_SIZE = 32
# Test sequences use indices from here on, so train and test never share a sequence.
TEST_FIRST_INDEX = 1_000_000_000

GENERATED, H36M = "generated", "h36m"

# ----------------------------------------------------------------------------------------
# Human3.6M conventions
# ----------------------------------------------------------------------------------------

H36M_ACTIONS = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing",
    "Purchases", "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking",
    "WalkTogether",
)
# File names use a few spellings for the same action (e.g. S1 vs. the other subjects).
H36M_ACTION_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog",
                       "WalkingTogether": "WalkTogether"}
H36M_TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")  # Paper, Sec. 5.1.
H36M_TEST_SUBJECTS = ("S9", "S11")
H36M_VIDEO_DIR = "Videos"
H36M_POSE_DIR = os.path.join("MyPoseFeatures", "D2_Positions")
H36M_FRAME_RATE_HZ = 50.0
H36M_FRAME_STEP = 8  # 50 Hz / 8 = 6.25 Hz (paper).
H36M_NUM_POINTS = 32
POSE_EXTENSIONS = (".cdf", ".npy", ".npz")
# Left out on purpose (and reported): this video is damaged in the official release; without
# it S9 + S11 have 239 videos, the paper's test-set count.
H36M_KNOWN_BROKEN = {("S11", "Directions.54138969"): "known damaged video in the official release"}
_H36M_NAME = re.compile(r"^(?P<action>[A-Za-z]+)(?: (?P<take>\d+))?\.(?P<camera>\d+)$")

MANUAL_INSTRUCTIONS = """\
Human3.6M is licensed: download it yourself from its website (registration required) and
extract, for each of the subjects S1, S5, S6, S7, S8, S9, S11, the "Videos" and the
"D2_Positions" (2D poses) archives into one folder, giving

  <manual_dir>/S1/Videos/Walking 1.54138969.mp4             (and all other videos)
  <manual_dir>/S1/MyPoseFeatures/D2_Positions/Walking 1.54138969.cdf
  <manual_dir>/S5/...

.cdf pose files are read with `cdflib` (pip install cdflib==1.3.16); .npy / .npz copies of
the `Pose` arrays ([N, 64] or [N, 32, 2], pixels) work too. Then build with
  prepare(data_dir, "h36m", manual_dir=<manual_dir>)
(`datasets.human_motion.human_motion_dataset_builder.prepare`).
Step-by-step instructions: docs/human36m.md.
"""


def parse_h36m_name(stem: str) -> tuple[str, str, str]:
  """Splits a Human3.6M file stem like "Walking 1.54138969" into (action, take, camera).

  The action is mapped to its `H36M_ACTIONS` name (aliases such as "TakingPhoto" -> "Photo");
  take is "" when the stem has no number ("Walking.54138969").

  Raises:
    ValueError naming the stem if it does not have the form "<Action>[ <n>].<camera>" or the
    action is unknown.
  """
  match = _H36M_NAME.match(stem)
  if not match:
    raise ValueError(f"{stem!r} is not a Human3.6M file name of the form "
                     f"'<Action>[ <take>].<camera>' (e.g. 'Walking 1.54138969').")
  action = H36M_ACTION_ALIASES.get(match["action"], match["action"])
  if action not in H36M_ACTIONS:
    raise ValueError(f"{stem!r}: unknown action {match['action']!r}; known: "
                     f"{', '.join(H36M_ACTIONS)} (aliases {H36M_ACTION_ALIASES}).")
  return action, match["take"] or "", match["camera"]


def load_h36m_pose_file(path) -> np.ndarray:
  """Reads the 2D poses of one Human3.6M video: float64 [N, 32, 2] pixel (column, row).

  Accepts the original `.cdf` (variable "Pose", shape [1, N, 64] or [N, 64]; needs cdflib),
  or `.npy` / `.npz` (key "Pose" or a single array) holding the same array, [N, 64] or
  [N, 32, 2] or [1, N, 64].

  Raises:
    FileNotFoundError / ValueError naming the file.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Human3.6M pose file not found: {path}")
  extension = os.path.splitext(path)[1].lower()
  if extension not in POSE_EXTENSIONS:
    raise ValueError(f"{path}: unsupported pose file extension {extension!r}; expected "
                     f"{', '.join(POSE_EXTENSIONS)}.")
  if extension == ".cdf":
    try:
      import cdflib  # pylint: disable=import-outside-toplevel
    except ImportError as error:
      raise ImportError(
          f"{path}: reading Human3.6M .cdf pose files needs cdflib "
          f"(pip install cdflib==1.3.16), or convert them to .npy.") from error
  keys = None
  try:
    if extension == ".cdf":
      array = np.asarray(cdflib.CDF(path).varget("Pose"))
    elif extension == ".npy":
      array = np.load(path, allow_pickle=False)
    else:
      with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.keys())
        name = "Pose" if "Pose" in keys else keys[0] if len(keys) == 1 else None
        array = None if name is None else archive[name]
  except Exception as error:  # Corrupt or foreign files: report which one.
    raise ValueError(f"{path}: cannot read pose file ({type(error).__name__}: {error}).") from error
  if array is None:
    raise ValueError(f"{path}: expected a key 'Pose' or a single array, found keys {keys}.")
  array = np.asarray(array)
  if array.ndim == 3 and array.shape[0] == 1 and array.shape[2] == 2 * H36M_NUM_POINTS:
    array = array[0]
  if array.ndim == 2 and array.shape[1] == 2 * H36M_NUM_POINTS:
    array = array.reshape(-1, H36M_NUM_POINTS, 2)
  if array.ndim != 3 or array.shape[1:] != (H36M_NUM_POINTS, 2) or array.shape[0] < 1:
    raise ValueError(f"{path}: expected 2D poses [N, 64] or [N, 32, 2] (pixels), found shape "
                     f"{array.shape}.")
  if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
    raise ValueError(f"{path}: pose values must be finite numbers (pixels).")
  return array.astype(np.float64)


def find_h36m_videos(root, subjects, verbose: bool = True) -> list[dict]:
  """Lists the (video, pose file) pairs of the given subjects in a Human3.6M folder.

  Every pose file needs its video (same stem, .mp4). Videos without a pose file, "_ALL"
  recordings (whole sessions, no action label) and H36M_KNOWN_BROKEN videos are left out and
  printed.

  Returns:
    list of dicts with subject, stem, action, take, camera, video_path, pose_path; sorted
    by subject (in the given order) then stem.

  Raises:
    FileNotFoundError naming missing folders or videos; ValueError for unknown file names or
    a stem with pose files in several formats.
  """
  root = os.fspath(root)
  if not os.path.isdir(root):
    raise FileNotFoundError(
        f"Human3.6M folder {root!r} does not exist; see docs/human36m.md for its layout.")
  found, ignored = [], []
  for subject in subjects:
    video_dir = os.path.join(root, subject, H36M_VIDEO_DIR)
    pose_dir = os.path.join(root, subject, H36M_POSE_DIR)
    for directory, what in ((video_dir, "videos (*.mp4)"), (pose_dir, "2D poses (*.cdf)")):
      if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"Human3.6M subject {subject}: missing folder {directory!r} with its {what}; "
            f"see docs/human36m.md for the expected layout.")
    poses = {}
    for name in sorted(os.listdir(pose_dir)):
      stem, extension = os.path.splitext(name)
      if name.startswith(".") or extension.lower() not in POSE_EXTENSIONS:
        continue
      if stem in poses:
        raise ValueError(f"{os.path.join(pose_dir, name)}: pose file of {stem!r} given twice "
                         f"(also {poses[stem]}); keep one format.")
      poses[stem] = os.path.join(pose_dir, name)
    if not poses:
      raise FileNotFoundError(
          f"Human3.6M subject {subject}: no pose files ({', '.join(POSE_EXTENSIONS)}) in "
          f"{pose_dir!r}.")
    videos = {os.path.splitext(name)[0]: os.path.join(video_dir, name)
              for name in sorted(os.listdir(video_dir))
              if os.path.splitext(name)[1].lower() == ".mp4" and not name.startswith(".")}
    for stem, video_path in videos.items():
      if stem not in poses:
        ignored.append((video_path, "no matching pose file"))
    for stem, pose_path in sorted(poses.items()):
      if (subject, stem) in H36M_KNOWN_BROKEN:
        ignored.append((pose_path, H36M_KNOWN_BROKEN[(subject, stem)]))
        continue
      if stem.startswith("_ALL"):
        ignored.append((pose_path, "'_ALL' recordings are not one of the 15 actions"))
        continue
      action, take, camera = parse_h36m_name(stem)
      if stem not in videos:
        raise FileNotFoundError(
            f"Human3.6M: pose file {pose_path!r} has no video; expected "
            f"{os.path.join(video_dir, stem + '.mp4')!r}.")
      found.append({"subject": subject, "stem": stem, "action": action, "take": take,
                    "camera": camera, "video_path": videos[stem], "pose_path": pose_path})
  if verbose and ignored:
    print(f"Human3.6M: left out {len(ignored)} files:", flush=True)
    for path, reason in ignored:
      print(f"  {path}: {reason}", flush=True)
  return found


def crop_boxes(points_px, frame_width: int, frame_height: int, margin: float = 0.1,
               mode: str = "video") -> np.ndarray:
  """Square crop boxes around a person, in continuous pixel coordinates.

  Pixel (column u, row v) of the frame covers [u, u + 1) x [v, v + 1); the 2D poses give
  pixel centres, i.e. continuous positions (u + 0.5, v + 0.5).

  mode "video": one box for the whole video: centred on the bounding box of all joints over
  all frames, side = (1 + 2 margin) * its longer edge. mode "frame": a box per frame centred
  on that frame's joints, all of the same side ((1 + 2 margin) * the longest per-frame edge).
  The side is capped at min(W, H) and boxes are shifted to lie inside the frame.

  Args:
    points_px: [N, J, 2] pixel (column, row) of the joints in N frames.
    frame_width, frame_height: W and H of the video.
    margin: extra space on each side, as a fraction of the box.
    mode: "video" or "frame".

  Returns:
    float64 [N, 3] (left, top, side) per frame.
  """
  points = np.asarray(points_px, np.float64) + 0.5
  if mode not in ("video", "frame"):
    raise ValueError(f"crop mode must be 'video' or 'frame', got {mode!r}.")
  if mode == "video":
    low = points.reshape(-1, 2).min(axis=0)[None].repeat(points.shape[0], 0)
    high = points.reshape(-1, 2).max(axis=0)[None].repeat(points.shape[0], 0)
    side = np.max(high[0] - low[0])
  else:
    low, high = points.min(axis=1), points.max(axis=1)  # [N, 2]
    side = np.max(high - low)
  side = min(max((1.0 + 2.0 * margin) * side, 8.0), float(frame_width), float(frame_height))
  centre = 0.5 * (low + high)
  left = np.clip(centre[:, 0] - side / 2.0, 0.0, frame_width - side)
  top = np.clip(centre[:, 1] - side / 2.0, 0.0, frame_height - side)
  return np.stack([left, top, np.full_like(left, side)], axis=1)


def pixels_to_keypoints(points_px, boxes, image_size: int) -> np.ndarray:
  """Maps pixel (column, row) positions into keypoint (x, y) of the cropped S x S frame.

  The crop-resize maps output pixel j to the continuous input position left + (j + 0.5) *
  side / S (as PIL's resize with a box does); output pixel j has x = -1 + 2 j / (S - 1), row
  i has y = 1 - 2 i / (S - 1).

  Args:
    points_px: [N, J, 2] pixel centres (column, row) in the full frame.
    boxes: [N, 3] (left, top, side) from `crop_boxes`.
    image_size: S.

  Returns:
    float32 [N, J, 2].
  """
  points = np.asarray(points_px, np.float64)
  boxes = np.asarray(boxes, np.float64)
  left, top, side = boxes[:, None, 0], boxes[:, None, 1], boxes[:, None, 2]
  column = (points[..., 0] + 0.5 - left) * image_size / side - 0.5
  row = (points[..., 1] + 0.5 - top) * image_size / side - 0.5
  return np.stack([-1.0 + 2.0 * column / (image_size - 1),
                   1.0 - 2.0 * row / (image_size - 1)], axis=-1).astype(np.float32)


def import_h36m_video(video_path, pose_path, image_size: int = 64,
                      frame_step: int = H36M_FRAME_STEP, crop_margin: float = 0.1,
                      crop_mode: str = "video", max_frame_mismatch: int = 50) -> dict:
  """Reads one Human3.6M video with its 2D poses, subsampled, cropped and resized.

  Frames 0, frame_step, 2 frame_step, ... of the video and of the poses are kept, up to the
  shorter of the two (video and pose counts of Human3.6M differ by a few frames; more than
  max_frame_mismatch frames difference is an error).

  Returns:
    dict with "image" uint8 [T, S, S, 3], "true_object_pos" float32 [T, 17, 2],
    "all_joints_pos" float32 [T, 32, 2].

  Raises:
    ValueError naming the files for unreadable videos/poses or mismatched lengths.
  """
  from PIL import Image  # pylint: disable=import-outside-toplevel
  poses = load_h36m_pose_file(pose_path)
  kept_poses = poses[::frame_step]
  frames, boxes = [], None
  num_video_frames = 0  # Kept (subsampled) video frames.
  for frame in video_folder.iter_video_frames(video_path, frame_step):
    if boxes is None:
      boxes = crop_boxes(kept_poses, frame.shape[1], frame.shape[0], crop_margin, crop_mode)
    if num_video_frames < len(kept_poses):
      left, top, side = boxes[num_video_frames]
      frames.append(np.asarray(Image.fromarray(frame).resize(
          (image_size, image_size), Image.Resampling.BILINEAR,
          box=(left, top, left + side, top + side))))
    num_video_frames += 1
  tolerance = -(-max_frame_mismatch // frame_step)
  if num_video_frames == 0:
    raise ValueError(f"{video_path}: no frames could be decoded.")
  if abs(num_video_frames - len(kept_poses)) > tolerance:
    raise ValueError(
        f"{video_path} has {num_video_frames} frames after subsampling by {frame_step} but "
        f"{pose_path} has {len(kept_poses)} poses; they differ by more than "
        f"max_frame_mismatch={max_frame_mismatch} frames at the original rate.")
  num_frames = min(num_video_frames, len(kept_poses))
  keypoints = pixels_to_keypoints(kept_poses[:num_frames], boxes[:num_frames], image_size)
  return {"image": np.stack(frames[:num_frames]),
          "true_object_pos": keypoints[:, list(human_motion.H36M_32_TO_17)],
          "all_joints_pos": keypoints}


# ----------------------------------------------------------------------------------------
# Configs and builder
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class HumanMotionConfig(tfds.core.BuilderConfig):
  """Settings of one version of the human-motion data.

  Attributes:
    source: "generated" (offline stand-in) or "h36m" (a user's Human3.6M copy).
    num_train, num_test: generated sequences per split (generated only).
    num_frames: frames per generated sequence (6.25 Hz); h36m keeps whole videos.
    image_size: S.
    seed: generator seed; sequence i of a split depends only on (seed, i).
    frame_step: h36m: keep every frame_step-th frame (8: 50 Hz -> 6.25 Hz).
    crop_mode: h36m: "video" (one box per video, the camera stays still) or "frame".
    crop_margin: h36m: space around the person's joint bounding box (fraction of the box).
    train_subjects, test_subjects: h36m subjects per split.
    max_frame_mismatch: h36m: tolerated video / pose length difference (50 Hz frames).
  """

  source: str = GENERATED
  num_train: Optional[int] = None
  num_test: Optional[int] = None
  num_frames: Optional[int] = 50
  image_size: int = 64
  seed: int = 0
  frame_step: int = H36M_FRAME_STEP
  crop_mode: str = "video"
  crop_margin: float = 0.1
  train_subjects: tuple = H36M_TRAIN_SUBJECTS
  test_subjects: tuple = H36M_TEST_SUBJECTS
  max_frame_mismatch: int = 50

  def settings(self) -> dict:
    """The settings that determine the data (stored in the dataset metadata)."""
    common = {"source": self.source, "image_size": self.image_size}
    if self.source == GENERATED:
      return dict(common, num_train=self.num_train, num_test=self.num_test,
                  num_frames=self.num_frames, seed=self.seed)
    return dict(common, frame_step=self.frame_step, crop_mode=self.crop_mode,
                crop_margin=self.crop_margin, train_subjects=list(self.train_subjects),
                test_subjects=list(self.test_subjects),
                max_frame_mismatch=self.max_frame_mismatch)

  def validate(self) -> None:
    """Raises ValueError naming the first bad setting."""
    def positive_int(field, minimum=1):
      value = getattr(self, field)
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"HumanMotionConfig {self.name!r}: {field} must be an int >= "
                         f"{minimum}, got {value!r}.")

    if self.source not in (GENERATED, H36M):
      raise ValueError(f"HumanMotionConfig {self.name!r}: source must be {GENERATED!r} or "
                       f"{H36M!r}, got {self.source!r}.")
    positive_int("image_size", 16)
    if self.source == GENERATED:
      for field in ("num_train", "num_test", "num_frames"):
        positive_int(field)
      positive_int("seed", 0)
      if self.num_train > TEST_FIRST_INDEX:
        raise ValueError(f"HumanMotionConfig {self.name!r}: num_train={self.num_train} "
                         f"exceeds {TEST_FIRST_INDEX}, where test indices start.")
    else:
      positive_int("frame_step")
      positive_int("max_frame_mismatch", 0)
      if self.crop_mode not in ("video", "frame"):
        raise ValueError(f"HumanMotionConfig {self.name!r}: crop_mode must be 'video' or "
                         f"'frame', got {self.crop_mode!r}.")
      if not 0.0 <= self.crop_margin <= 1.0:
        raise ValueError(f"HumanMotionConfig {self.name!r}: crop_margin must be in [0, 1], "
                         f"got {self.crop_margin!r}.")
      if not self.train_subjects or not self.test_subjects:
        raise ValueError(f"HumanMotionConfig {self.name!r}: train_subjects and "
                         f"test_subjects must not be empty.")
      overlap = set(self.train_subjects) & set(self.test_subjects)
      if overlap:
        raise ValueError(f"HumanMotionConfig {self.name!r}: subjects {sorted(overlap)} are in "
                         f"both train_subjects and test_subjects.")


PREDEFINED_CONFIGS = (
    HumanMotionConfig(
        name="cpu",
        description="CPU-sized default: 1,200 train / 240 test generated sequences of 50 "
                    "frames (8 actions, 17 joints, 6.25 Hz).",
        num_train=1200, num_test=240, num_frames=50),
    HumanMotionConfig(
        name="paper",
        description="Human3.6M-sized stand-in: 600 train / 239 test generated videos of 384 "
                    "frames (about 61 s at 6.25 Hz, like Human3.6M's videos).",
        num_train=600, num_test=239, num_frames=384),
    HumanMotionConfig(
        name="tiny",
        description="For tests: 16 train / 8 test generated sequences of 20 frames.",
        num_train=16, num_test=8, num_frames=20),
    HumanMotionConfig(
        name="h36m",
        description="A user's licensed Human3.6M copy (manual_dir): S1, S5-S8 train, S9, S11 "
                    "test, 6.25 Hz, cropped around the person to 64x64.",
        source=H36M, num_frames=None),
)


class Builder(tfds.core.GeneratorBasedBuilder):
  """Human motion: videos of people performing actions, with 2D joints and action labels."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = list(PREDEFINED_CONFIGS)
  DEFAULT_CONFIG_NAME = "cpu"
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    config: HumanMotionConfig = self.builder_config
    size = config.image_size
    num_frames = config.num_frames if config.source == GENERATED else None
    features = {
        "image": tfds.features.Tensor(shape=(num_frames, size, size, 3), dtype=np.uint8,
                                      encoding=tfds.features.Encoding.ZLIB),
        "true_object_pos": tfds.features.Tensor(
            shape=(num_frames, human_motion.NUM_JOINTS, 2), dtype=np.float32),
        "action": tfds.features.ClassLabel(
            names=list(human_motion.ACTION_NAMES if config.source == GENERATED
                       else H36M_ACTIONS)),
        "sequence_index": tfds.features.Scalar(dtype=np.int64),
        "video_name": tfds.features.Text(),
    }
    if config.source == H36M:
      features["all_joints_pos"] = tfds.features.Tensor(
          shape=(None, H36M_NUM_POINTS, 2), dtype=np.float32)
      features["subject"] = tfds.features.Text()
      features["camera"] = tfds.features.Text()
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(features),
        supervised_keys=None,
        disable_shuffling=True,  # Keep sequence_index order; readers shuffle themselves.
        homepage="https://arxiv.org/abs/1906.07889",
        metadata=tfds.core.MetadataDict(config=config.settings()),
    )

  def _split_generators(self, dl_manager):
    config: HumanMotionConfig = self.builder_config
    config.validate()
    if config.source == GENERATED:
      return {
          "train": self._generate_examples(config.num_train, 0, "train"),
          "test": self._generate_examples(config.num_test, TEST_FIRST_INDEX, "test"),
      }
    try:
      root = os.fspath(dl_manager.manual_dir)
    except (AssertionError, ValueError) as error:
      raise FileNotFoundError(
          f"Human3.6M config {config.name!r} needs the folder of your Human3.6M copy: pass "
          f"manual_dir (prepare(..., manual_dir=...)). TFDS said: "
          f"{error}") from error
    videos = {split: find_h36m_videos(root, subjects)
              for split, subjects in (("train", config.train_subjects),
                                      ("test", config.test_subjects))}
    return {split: self._import_examples(entries) for split, entries in videos.items()}

  def _download_and_prepare(self, dl_manager, download_config=None):
    # Beam when the download config names a runner or options (docs/scaling.md).
    self._use_beam = bool(download_config is not None and (
        download_config.beam_runner is not None or download_config.beam_options is not None))
    return super()._download_and_prepare(dl_manager, download_config)

  def _generate_examples(self, num_sequences: int, first_index: int, split: str):
    """(sequence_index, example) pairs, GENERATION_CHUNK_SIZE per chunk: an iterator, or a Beam
    PTransform when generating on Beam (each sequence depends only on (seed, index))."""
    config: HumanMotionConfig = self.builder_config
    make_chunk = functools.partial(_make_generated_chunk, num_frames=config.num_frames,
                                   image_size=config.image_size, seed=config.seed,
                                   first_index=first_index, split=split)
    return beam_support.generate_examples(num_sequences, GENERATION_CHUNK_SIZE, make_chunk,
                                          use_beam=getattr(self, "_use_beam", False))

  def _import_examples(self, entries: list[dict]) -> Iterator[tuple[str, dict]]:
    config: HumanMotionConfig = self.builder_config
    for index, entry in enumerate(entries):
      imported = import_h36m_video(
          entry["video_path"], entry["pose_path"], image_size=config.image_size,
          frame_step=config.frame_step, crop_margin=config.crop_margin,
          crop_mode=config.crop_mode, max_frame_mismatch=config.max_frame_mismatch)
      name = f"{entry['subject']}/{entry['stem']}"
      yield name, {
          "image": imported["image"],
          "true_object_pos": imported["true_object_pos"],
          "all_joints_pos": imported["all_joints_pos"],
          "action": entry["action"],
          "sequence_index": index,
          "video_name": name,
          "subject": entry["subject"],
          "camera": entry["camera"],
      }


def _make_generated_chunk(chunk_start: int, chunk_size: int, *, num_frames: int, image_size: int,
                          seed: int, first_index: int, split: str) -> Iterator[tuple[int, dict]]:
  """The examples of generated sequences chunk_start .. chunk_start + chunk_size - 1."""
  batch = human_motion.generate(chunk_size, num_frames, seed=seed,
                                first_index=first_index + chunk_start, image_size=image_size)
  for offset in range(chunk_size):
    index = chunk_start + offset
    yield index, {
        "image": batch["image"][offset],
        "true_object_pos": batch["true_object_pos"][offset],
        "action": int(batch["action"][offset]),
        "sequence_index": index,
        "video_name": f"generated/{split}/{index:08d}",
    }


# ----------------------------------------------------------------------------------------
# Entry points for the training scripts
# ----------------------------------------------------------------------------------------

KNOWN_CONFIGS = tuple(config.name for config in PREDEFINED_CONFIGS)


def prepare(data_dir, config="cpu", manual_dir=None):
  """Returns the human-motion TFDS builder for `config`, building the data if missing.

  Args:
    data_dir: directory holding TFDS datasets (created if missing; its parent must exist).
      Data go to data_dir/human_motion/<config name>/<version>/.
    config: a predefined config name (KNOWN_CONFIGS) or a `HumanMotionConfig`.
    manual_dir: the folder of a Human3.6M copy (needed to build config "h36m" only).

  Returns:
    A prepared `tfds.core.DatasetBuilder`; read it with `load_split`.
  """
  data_dir = os.fspath(data_dir)
  data.check_data_dir_parent(data_dir)
  if isinstance(config, str):
    if config not in KNOWN_CONFIGS:
      raise ValueError(f"Unknown human_motion config {config!r}; known configs: "
                       f"{', '.join(KNOWN_CONFIGS)} (or pass a HumanMotionConfig).")
  elif not isinstance(config, HumanMotionConfig):
    raise TypeError(f"config must be a config name or a HumanMotionConfig, got "
                    f"{type(config).__name__}.")
  if manual_dir is not None and not os.path.isdir(os.fspath(manual_dir)):
    raise FileNotFoundError(f"manual_dir {os.fspath(manual_dir)!r} does not exist; it should "
                            f"be the folder of your Human3.6M copy (docs/human36m.md).")
  os.makedirs(data_dir, exist_ok=True)
  builder = Builder(data_dir=data_dir, config=config)
  builder_config: HumanMotionConfig = builder.builder_config
  builder_config.validate()
  if not builder.is_prepared():
    if builder_config.source == H36M and manual_dir is None:
      raise FileNotFoundError(
          f"human_motion config {builder_config.name!r} imports Human3.6M: pass manual_dir, "
          f"the folder of your licensed copy (see docs/human36m.md).")
    print(f"Building human_motion config {builder_config.name!r} "
          f"({builder_config.settings()}) into {builder.data_dir} ...", flush=True)
    start = time.time()
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            try_download_gcs=False, manual_dir=(None if manual_dir is None
                                                else os.fspath(manual_dir)),
            compute_stats=tfds.download.ComputeStatsMode.SKIP))
    print(f"Built human_motion {builder_config.name!r} in {time.time() - start:.1f} s: "
          f"{builder.info.splits['train'].num_examples} train / "
          f"{builder.info.splits['test'].num_examples} test sequences.", flush=True)
  stored_settings = dict(builder.info.metadata.get("config", {}))
  if stored_settings != builder_config.settings():
    raise ValueError(
        f"human_motion data in {builder.data_dir} were built with settings {stored_settings}, "
        f"which differ from config {builder_config.name!r} {builder_config.settings()}; give "
        f"the config a new name or delete that directory.")
  return builder


def load_split(builder, split: str, with_labels: bool = False):
  """Reads one split of a prepared human-motion builder as a sequence dataset.

  Args:
    builder: as returned by `prepare`.
    split: "train", "test" or a TFDS sub-split such as "train[:100]".
    with_labels: also return "action" (int64 []) and "video_name" (string []).

  Returns:
    tf.data.Dataset of {"image": uint8 [T, S, S, 3], "true_object_pos": float32 [T, 17, 2]}
    (+ labels), in the stored order.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  data.check_split(builder, split)
  keys = ["image", "true_object_pos"] + (["action", "video_name"] if with_labels else [])
  dataset = builder.as_dataset(split=split, shuffle_files=False,
                               read_config=tfds.ReadConfig(try_autocache=False))
  return dataset.map(lambda example: {key: example[key] for key in keys},
                     num_parallel_calls=tf.data.AUTOTUNE)
