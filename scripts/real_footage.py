"""Real footage in one command: fetch two street clips, train the default on each, evaluate.

  python scripts/real_footage.py                   # vtest (pedestrians), then bikes
  python scripts/real_footage.py --clips vtest

For each clip: `scripts/fetch_footage.py` (once; hash-checked), `train.py --dataset
data/footage/<clip>` with the clip's folder flags below (the default CPU preset otherwise; a
one-video folder is split in time, shot cuts are detected), then `evaluate.py` on the test
clips. Printed per clip: reconstruction SSIM / PSNR (the observed steps), prediction at the last
predicted step (closest of the samples against repeating the last observed frame, also LPIPS),
and the share of keypoints on moving pixels against chance; the figures with the keypoints on
the frames are in `<root>/<clip>/evaluation/examples/`. Stopped, it resumes where it was.
"""

import argparse
import json
import os
import sys

import numpy as np

from video_structure.cli import studies

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Folder flags per clip (docs/own_videos.md): vtest's people are 7-12 px tall in the full frame
# at 64x64, so the busy road part is cropped; bikes.mp4 is 250 frames in six shots, so a
# quarter of each video's frames are held out to get more than one test window.
CLIP_FLAGS = {
    "vtest": ["--crop", "336,96,384,384"],
    "bikes": ["--test_fraction", "0.25"],
}


def plan(root, clips, footage_dir, python=sys.executable):
  """The commands still to run: [(label, argv)]."""
  commands = []
  missing = [clip for clip in clips if not os.path.isdir(os.path.join(footage_dir, clip))]
  for clip in missing:
    commands.append((f"fetch {clip}", [python, os.path.join(ROOT, "scripts", "fetch_footage.py"),
                                       "--only", clip, "--output_dir", footage_dir]))
  for clip in clips:
    directory = os.path.join(root, clip)
    commands += studies.remaining_commands(
        directory,
        (f"train on {clip}", [python, os.path.join(ROOT, "train.py"), "--dataset",
                              os.path.join(footage_dir, clip), "--run_dir", directory]
         + CLIP_FLAGS[clip]),
        (f"evaluate {clip}", [python, os.path.join(ROOT, "evaluate.py"), "--run_dir",
                              directory]))
  return commands


def summary_lines(clip, report):
  """What a clip's evaluation.json says, in a few lines."""
  video, observed = report["video"], report["data"]["num_observed"]
  lines = [f"{clip}: {video['num_windows']} test windows x {video['num_samples']} samples"]
  for name, label in (("ssim", "SSIM"), ("psnr", "PSNR")):
    curves = video[name]
    lines.append(f"  reconstruction {label} (observed steps, mean of samples) "
                 f"{np.mean(curves['sample_mean'][:observed]):.3f}; last predicted step: "
                 f"closest {curves['closest'][-1]:.3f}, repeat-last frame "
                 f"{curves['repeat_last'][-1]:.3f}")
  for name in ("lpips_alex", "lpips_vgg"):
    curves = video.get(name, {})
    if "closest" in curves:
      lines.append(f"  {name} at the last predicted step (lower is closer): closest "
                   f"{curves['closest'][-1]:.3f}, repeat-last frame "
                   f"{curves['repeat_last'][-1]:.3f}")
  placement = report.get("keypoints_on_motion")
  if placement and placement["share_on_motion"] is not None:
    lines.append(f"  keypoints on moving pixels: {100 * placement['share_on_motion']:.0f}% "
                 f"(chance {100 * placement['chance']:.0f}%)")
  return lines


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--clips", default=",".join(CLIP_FLAGS),
                      help="Comma-separated clips (default: vtest,bikes).")
  parser.add_argument("--root", default="runs/footage", help="Where the runs go.")
  parser.add_argument("--footage_dir", default="data/footage",
                      help="Where the clips are (fetched there when missing).")
  parser.add_argument("--dry_run", action="store_true", help="Print the commands only.")
  args = parser.parse_args(argv)
  try:
    clips = studies.parse_names(args.clips, list(CLIP_FLAGS), "--clips")
  except ValueError as error:
    parser.error(str(error))
  root, footage_dir = os.path.abspath(args.root), os.path.abspath(args.footage_dir)
  status, _ = studies.run_commands(plan(root, clips, footage_dir), ROOT, args.dry_run)
  if status or args.dry_run:
    return status
  for clip in clips:
    path = studies.evaluation_json(os.path.join(root, clip))
    with open(path) as f:
      print("\n".join(summary_lines(clip, json.load(f))))
    print(f"  figures: {os.path.join(os.path.dirname(path), 'examples')}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
