"""Evaluate a trained run: do the keypoints track the objects, and do the dynamics help?

  python evaluate.py --run_dir runs/basketball_cpu
  python evaluate.py --run_dir runs/basketball_cpu --checkpoint runs/.../ckpt-0001000.keras

Fits a linear regression from the detected keypoints to the ground-truth object positions on
training windows and reports on test windows the error per object (pixels and percent of the
frame width); then observes 8 frames, samples futures and compares the best sample with
repeating the last observed keypoints. Writes <run_dir>/evaluation.json (or --output).
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--run_dir", required=True, help="A run directory written by train.py.")
  parser.add_argument("--checkpoint", default=None,
                      help="Checkpoint to evaluate (default: the run's latest).")
  parser.add_argument("--data_dir", default="data", help="Where the TFDS datasets live.")
  parser.add_argument("--num_samples", type=int, default=20,
                      help="Sampled futures per test window.")
  parser.add_argument("--num_test_windows", type=int, default=600)
  parser.add_argument("--num_train_windows", type=int, default=480,
                      help="Training windows used to fit the keypoint-to-object regression.")
  parser.add_argument("--output", default=None, help="JSON path (default run_dir/evaluation.json).")
  args = parser.parse_args(argv)
  for name in ("num_samples", "num_test_windows", "num_train_windows"):
    if getattr(args, name) < 1:
      parser.error(f"--{name} must be >= 1, got {getattr(args, name)}.")

  from video_structure import basketball
  from video_structure import config as config_lib
  from video_structure import data
  from video_structure import evaluation
  from video_structure import training

  config_path = os.path.join(args.run_dir, "config.json")
  if not os.path.exists(config_path):
    parser.error(f"{config_path} does not exist: --run_dir must be a directory written by "
                 f"train.py.")
  config = config_lib.Config.load(config_path)
  checkpoint = args.checkpoint or training.latest_checkpoint(args.run_dir)
  if checkpoint is None:
    parser.error(f"No checkpoint in {args.run_dir}/checkpoints; train first.")
  if not os.path.exists(checkpoint):
    parser.error(f"--checkpoint {checkpoint} does not exist.")
  model = training.load_checkpoint(checkpoint, config)
  builder = data.prepare_basketball(args.data_dir, config.dataset_config)
  report, _ = evaluation.evaluate_on_builder(
      model, builder, config, args.num_train_windows, args.num_test_windows, args.num_samples,
      object_names=basketball.OBJECT_NAMES)
  report["checkpoint"] = checkpoint
  output = args.output or os.path.join(args.run_dir, "evaluation.json")
  with open(output + ".tmp", "w") as f:
    json.dump(report, f, indent=1)
  os.replace(output + ".tmp", output)
  print("\n".join(evaluation.summary_lines(report)))
  print(f"Wrote {output}")
  return report


if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  main()
