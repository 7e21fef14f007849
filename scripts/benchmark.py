"""Speed benchmark: training steps/s, frames/s and peak memory per preset and precision, and the
Basketball generator's frames/s.

  python scripts/benchmark.py                 # all rows; writes docs/benchmarks.md
  python scripts/benchmark.py --presets cpu --precisions float32 --steps 5

Each (preset, precision) row runs in its own process so that its peak resident memory
(`ru_maxrss`) is its own. Steps are timed after two warm-up steps (graph tracing), on random
frames of the preset's batch shape; the input pipeline is measured separately (it is never the
bottleneck: see the `pipeline` row).
"""

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def measure_training(preset, precision, steps):
  import tensorflow as tf
  from video_structure import config as config_lib
  from video_structure import model as model_lib
  config = config_lib.get_config("basketball", preset,
                                 mixed_precision=precision == "mixed_bfloat16")
  model = model_lib.build_model(config)
  frames = tf.random.uniform([config.batch_size, config.sequence_length, config.image_size,
                              config.image_size, 3], -0.5, 0.5)
  batch = {"image": frames}
  for _ in range(2):
    model.train_on_batch(batch)
  start = time.perf_counter()
  for _ in range(steps):
    model.train_on_batch(batch)
  seconds = (time.perf_counter() - start) / steps
  return {"preset": preset, "precision": precision, "batch": config.batch_size,
          "frames_per_step": config.batch_size * config.sequence_length,
          "seconds_per_step": seconds, "steps_per_second": 1.0 / seconds,
          "frames_per_second": config.batch_size * config.sequence_length / seconds,
          "parameters": model.count_params(),
          "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure_generator(num_sequences=500, num_frames=50):
  from video_structure import basketball
  start = time.perf_counter()
  trajectories = basketball.simulate_plays(num_sequences, num_frames, seed=0)
  simulate = time.perf_counter() - start
  start = time.perf_counter()
  basketball.render_frames(trajectories)
  render = time.perf_counter() - start
  frames = num_sequences * num_frames
  return {"sequences": num_sequences, "frames": frames,
          "simulate_frames_per_second": frames / simulate,
          "render_frames_per_second": frames / render,
          "generator_frames_per_second": frames / (simulate + render)}


def measure_pipeline(data_dir, batches=40):
  from video_structure import data
  builder = data.prepare_basketball(data_dir, "cpu")
  windows = data.make_windows_dataset(data.load_split(builder, "train"), 16, 32, training=True,
                                      seed=0)
  iterator = iter(windows)
  next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  seconds = time.perf_counter() - start
  return {"batch": 32, "window": 16, "batches_per_second": batches / seconds,
          "frames_per_second": batches * 32 * 16 / seconds}


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--presets", nargs="+", default=["cpu", "paper"])
  parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"],
                      choices=["float32", "mixed_bfloat16"])
  parser.add_argument("--steps", type=int, default=None,
                      help="Timed steps per row (default: 10 for cpu, 3 for paper).")
  parser.add_argument("--data_dir", default=os.path.join(ROOT, "data"))
  parser.add_argument("--output", default=os.path.join(ROOT, "docs", "benchmarks.md"))
  parser.add_argument("--one", nargs=2, metavar=("PRESET", "PRECISION"), help=argparse.SUPPRESS)
  args = parser.parse_args()

  if args.one:
    preset, precision = args.one
    steps = args.steps or (10 if preset == "cpu" else 3)
    print(json.dumps(measure_training(preset, precision, steps)))
    return

  rows = []
  for preset in args.presets:
    for precision in args.precisions:
      command = [sys.executable, os.path.abspath(__file__), "--one", preset, precision]
      if args.steps:
        command += ["--steps", str(args.steps)]
      print(f"Measuring {preset} / {precision} ...", flush=True)
      output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
      rows.append(json.loads(output.strip().splitlines()[-1]))
      print(f"  {rows[-1]['steps_per_second']:.3f} steps/s, "
            f"{rows[-1]['frames_per_second']:.1f} frames/s, "
            f"{rows[-1]['peak_memory_mb']:.0f} MB", flush=True)
  generator = measure_generator()
  pipeline = measure_pipeline(args.data_dir)

  lines = [
      "# Benchmarks",
      "",
      f"Measured {datetime.date.today()} with `python scripts/benchmark.py` on "
      f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
      f"no GPU. Training rows: one train step (vision + dynamics + losses + Adam) on the "
      f"preset's batch, after two warm-up steps; peak memory is the process's resident peak.",
      "",
      "| preset | precision | batch x frames | s/step | steps/s | frames/s | parameters | "
      "peak memory |",
      "|---|---|---|---|---|---|---|---|"]
  for row in rows:
    lines.append(
        f"| {row['preset']} | {row['precision']} | {row['batch']} x "
        f"{row['frames_per_step'] // row['batch']} | {row['seconds_per_step']:.2f} | "
        f"{row['steps_per_second']:.3f} | {row['frames_per_second']:.0f} | "
        f"{row['parameters']:,} | {row['peak_memory_mb']:.0f} MB |")
  lines += [
      "",
      "| data | frames/s |",
      "|---|---|",
      f"| Basketball generator: simulate ({generator['sequences']} sequences x 50 frames) | "
      f"{generator['simulate_frames_per_second']:,.0f} |",
      f"| Basketball generator: render 64x64 | {generator['render_frames_per_second']:,.0f} |",
      f"| Basketball generator: simulate + render | "
      f"{generator['generator_frames_per_second']:,.0f} |",
      f"| Input pipeline: decode + random windows + batch (32 x 16) | "
      f"{pipeline['frames_per_second']:,.0f} |",
      ""]
  text = "\n".join(lines)
  print(text)
  os.makedirs(os.path.dirname(args.output), exist_ok=True)
  with open(args.output + ".tmp", "w") as f:
    f.write(text)
  os.replace(args.output + ".tmp", args.output)


if __name__ == "__main__":
  main()
