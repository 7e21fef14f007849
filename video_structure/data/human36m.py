"""The Human3.6M importer: a user's licensed copy -> 64x64 videos with 2D joints (6.25 Hz).

Human3.6M (Ionescu et al., PAMI 2014) cannot be downloaded here; a user who holds it extracts
its videos and 2D poses into one folder (`MANUAL_INSTRUCTIONS`, docs/human36m.md) and the
human-motion builder's config `h36m` imports it with these functions: `find_h36m_videos` lists
the (video, pose file) pairs of the subjects, `import_h36m_video` decodes one video,
subsamples it 50 -> 6.25 Hz, crops a square around the person (`crop_boxes`), resizes it and
maps the joints into the crop (`pixels_to_keypoints`).
"""

from __future__ import annotations

import os
import re

import numpy as np
from PIL import Image

from video_structure.data import human_motion
from video_structure.data import video_files

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
  train.py --dataset human36m --dataset_config h36m --manual_dir <manual_dir>
or tfds_builders.prepare(builders.human_motion.Builder, data_dir, "h36m",
manual_dir=<manual_dir>) (video_structure.data). Step-by-step instructions: docs/human36m.md.
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
  poses = load_h36m_pose_file(pose_path)
  kept_poses = poses[::frame_step]
  frames, boxes = [], None
  num_video_frames = 0  # Kept (subsampled) video frames.
  for frame in video_files.iter_video_frames(video_path, frame_step):
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
