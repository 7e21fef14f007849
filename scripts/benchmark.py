"""Speed benchmark: training steps/s, frames/s, achieved GFLOP/s against this machine's measured
conv peak, and peak memory per preset and precision, and the Basketball generator's frames/s.

  python scripts/benchmark.py                 # all rows; writes docs/benchmarks.md
  python scripts/benchmark.py --presets cpu --precisions float32 --steps 5
  python scripts/benchmark.py --peak_only     # the conv / matmul peak and the CPU alone (~10 s)
  python scripts/benchmark.py --tiny          # smoke test: tiny model, 1 step, writes nothing
  python scripts/benchmark.py --scaling       # 1 vs 2 replicas and Beam workers (own section)

Each (preset, precision) row runs in its own process so that its peak resident memory
(`ru_maxrss`) is its own. Steps are timed after two warm-up steps (graph tracing), on random
frames of the preset's batch shape; the input pipeline is measured separately (it is never the
bottleneck: see the `pipeline` row).

GFLOP/s: the FLOPs of a training step, counted analytically from the preset's config
(`video_structure/training/flops.py`: every conv and matmul, forward and backward, 2 FLOPs per
multiply-add), divided by its measured seconds. Before the rows, a separate process measures
this machine's peak (`flops.measure_peak`: a large 3x3 conv and a matmul, float32, and bfloat16
when a bfloat16 row is measured), so each row is also a percentage of the conv peak of its
precision (the mixed_bfloat16 rows run their convs in bfloat16). The CPU model and the flags
that decide conv speed (AVX-512, AVX512_BF16, AMX) are in the output and the JSON.

`--scaling` measures data parallelism instead (docs/scaling.md): the cpu preset trained with
`fit` on 1 and 2 logical CPU devices (MirroredStrategy) at the global batch of each row, and the
Basketball generation on one machine, plain and on Beam's DirectRunner with 1 and 2 worker
processes (skipped without apache-beam). It rewrites only its own section of docs/benchmarks.md,
and the default mode keeps that section.
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

from video_structure import io_utils
from video_structure.training import flops

# Run with the project installed (`pip install -e .`, scripts/setup.sh does it) or the
# repository on PYTHONPATH.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# `--tiny`: the tests' tiny model (tests/helpers.py, TINY_MODEL) on top of each preset.
TINY_OVERRIDES = dict(batch_size=2, initial_filters=4, rnn_units=16, num_samples=3,
                      prior_net_size=4, posterior_net_size=8, decoder_net_size=8, latent_size=4,
                      num_keypoints=4)
# The dtype of a precision's convs, whose peak its training rows are compared with.
PEAK_DTYPES = {"float32": "float32", "mixed_bfloat16": "bfloat16"}


def measure_training(preset, precision, steps, tiny=False):
  import tensorflow as tf
  from video_structure import presets
  from video_structure.training import builder
  run_config = presets.get_config("basketball", preset,
                                  mixed_precision=precision == "mixed_bfloat16",
                                  **(TINY_OVERRIDES if tiny else {}))
  config = run_config.model
  count = flops.training_step(config, run_config.recipe)
  model = builder.build_model(run_config)
  frames = tf.random.uniform([config.batch_size, config.sequence_length, config.image_size,
                              config.image_size, 3], -0.5, 0.5)
  batch = {"image": frames}
  for _ in range(2):
    model.train_on_batch(batch)
  start = time.perf_counter()
  for _ in range(steps):
    model.train_on_batch(batch)
  seconds = (time.perf_counter() - start) / steps
  return {"preset": preset, "precision": precision, "tiny": tiny, "batch": config.batch_size,
          "frames_per_step": config.batch_size * config.sequence_length,
          "seconds_per_step": seconds, "steps_per_second": 1.0 / seconds,
          "frames_per_second": config.batch_size * config.sequence_length / seconds,
          "flops_per_step": count.flops, "gflops_per_second": count.flops / seconds / 1e9,
          "macs": count.as_dict(),
          "parameters": model.count_params(),
          "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure_machine(precisions, seconds):
  """The CPU and its conv / matmul peak in the dtype of each precision (`flops.measure_peak`)."""
  dtypes = sorted({PEAK_DTYPES[precision] for precision in precisions},
                  key=list(PEAK_DTYPES.values()).index)
  return {"cpu": flops.cpu_info(),
          "peaks": {dtype: flops.measure_peak(dtype, seconds=seconds) for dtype in dtypes}}


def machine_lines(machine):
  """Console lines of `measure_machine`'s result."""
  lines = [f"CPU: {flops.describe_cpu(machine['cpu'])}"]
  for dtype, peak in machine["peaks"].items():
    lines.append(f"Measured peak, {dtype}: conv {peak['conv_gflops']:.1f} GFLOP/s (median "
                 f"{peak['conv_gflops_median']:.1f}), matmul {peak['matmul_gflops']:.1f} GFLOP/s "
                 f"(median {peak['matmul_gflops_median']:.1f})")
  return lines


def add_peak(row, machine):
  """Adds the conv peak of the row's precision and the row's share of it."""
  peak = machine["peaks"][PEAK_DTYPES[row["precision"]]]["conv_gflops"]
  row["conv_peak_gflops"] = peak
  row["percent_of_conv_peak"] = 100 * row["gflops_per_second"] / peak
  return row


def training_line(row):
  return (f"  training step: {row['gflops_per_second']:.1f} GFLOP/s = "
          f"{row['percent_of_conv_peak']:.0f}% of this machine's measured conv peak "
          f"{row['conv_peak_gflops']:.1f} GFLOP/s ({PEAK_DTYPES[row['precision']]}; "
          f"{row['flops_per_step'] / 1e9:.2f} GFLOP per step)")


def peak_section(machine):
  """The markdown of the measured peak: one line on the CPU and a table of the kernels."""
  conv = flops.PEAK_CONV
  dtypes = list(machine["peaks"])
  lines = [
      f"CPU: {flops.describe_cpu(machine['cpu'])}. Measured peak in the same run "
      f"(`python scripts/benchmark.py --peak_only`): the fastest of repeated calls after two "
      f"warm-up calls.",
      "",
      "| kernel | " + " | ".join(f"{dtype} GFLOP/s" for dtype in dtypes) + " |",
      "|---|" + "---|" * len(dtypes),
      f"| conv {conv['kernel_size']}x{conv['kernel_size']}, {conv['in_channels']} -> "
      f"{conv['out_channels']} channels, {conv['size']}x{conv['size']}, batch {conv['batch']} | "
      + " | ".join(f"{machine['peaks'][dtype]['conv_gflops']:.1f}" for dtype in dtypes) + " |",
      f"| matmul {flops.PEAK_MATMUL_SIZE} x {flops.PEAK_MATMUL_SIZE} x "
      f"{flops.PEAK_MATMUL_SIZE} | "
      + " | ".join(f"{machine['peaks'][dtype]['matmul_gflops']:.1f}" for dtype in dtypes) + " |"]
  return lines


def measure_generator(num_sequences=500, num_frames=50):
  from video_structure.data import basketball
  from video_structure.data import basketball_plays
  start = time.perf_counter()
  trajectories = basketball_plays.simulate_plays(num_sequences, num_frames, seed=0)
  simulate = time.perf_counter() - start
  start = time.perf_counter()
  basketball.render_frames(trajectories)
  render = time.perf_counter() - start
  frames = num_sequences * num_frames
  return {"sequences": num_sequences, "frames": frames,
          "simulate_frames_per_second": frames / simulate,
          "render_frames_per_second": frames / render,
          "generator_frames_per_second": frames / (simulate + render)}


def measure_human_generator(num_sequences=64, num_frames=50):
  """Frames per second of the human-motion stand-in (animate + render 64x64)."""
  from video_structure.data import human_motion_render
  human_motion_render.generate(2, 5)  # Warm-up (first-call set-up).
  start = time.perf_counter()
  human_motion_render.generate(num_sequences, num_frames, seed=0)
  return {"frames": num_sequences * num_frames,
          "frames_per_second": num_sequences * num_frames / (time.perf_counter() - start)}


def measure_dmcs_generator(num_sequences=2, num_frames=50):
  """Frames per second per DMCS task (physics + headless EGL rendering in the worker)."""
  from video_structure.data import dmcs_generator
  return dmcs_generator.generation_benchmark(num_sequences=num_sequences, num_frames=num_frames)


def measure_pipeline(data_dir, batches=40):
  from video_structure.data import tfds_builders
  from video_structure.data import windows as windows_lib
  from video_structure.data.builders import basketball as basketball_builder
  builder = tfds_builders.prepare(basketball_builder.Builder, data_dir, "cpu")
  windows = windows_lib.make_windows_dataset(tfds_builders.load_split(builder, "train"), 16, 32,
                                             training=True, seed=0)
  iterator = iter(windows)
  next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  seconds = time.perf_counter() - start
  return {"batch": 32, "window": 16, "batches_per_second": batches / seconds,
          "frames_per_second": batches * 32 * 16 / seconds}


SCALING_BEGIN = "<!-- scaling: written by `python scripts/benchmark.py --scaling` -->"
SCALING_END = "<!-- scaling: end -->"


def measure_replicas(num_devices, global_batch, steps):
  """steps/s of the cpu preset trained with fit under MirroredStrategy on `num_devices` logical
  CPU devices at `global_batch` (runs in a fresh process: the CPU split precedes TF's init)."""
  from video_structure.training import strategies
  strategy = strategies.make_strategy("mirrored", num_cpu_devices=num_devices)
  import tensorflow as tf
  from video_structure import presets
  from video_structure.training import builder
  run_config = presets.get_config("basketball", "cpu", batch_size=global_batch)
  config = run_config.model
  with strategy.scope():
    model = builder.build_model(run_config)
  frames = tf.random.uniform([global_batch, config.sequence_length, config.image_size,
                              config.image_size, 3], -0.5, 0.5, seed=0)
  dataset = tf.data.Dataset.from_tensors(frames).repeat()
  model.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0)  # Tracing and warm-up.
  start = time.perf_counter()
  model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
  seconds = (time.perf_counter() - start) / steps
  frames_per_step = global_batch * config.sequence_length
  return {"devices": num_devices, "replicas": strategy.num_replicas_in_sync,
          "global_batch": global_batch, "per_replica_batch": global_batch // num_devices,
          "seconds_per_step": seconds, "steps_per_second": 1.0 / seconds,
          "frames_per_second": frames_per_step / seconds}


def measure_generation(mode, workers, num_train, num_test, work_dir):
  """Seconds to generate a Basketball config of paper settings with `num_train` / `num_test`
  sequences: `plain` with `workers` worker processes, or `beam` on the DirectRunner with
  `workers` processes."""
  import shutil
  import tensorflow_datasets as tfds
  from video_structure.data import beam
  from video_structure.data.builders import basketball as builder_lib
  name = f"timing_{num_train}_{num_test}"
  config = builder_lib.BasketballConfig(name=name, num_train=num_train, num_test=num_test,
                                        num_frames=50, image_size=64)
  directory = os.path.join(work_dir, f"{mode}_{workers}")
  shutil.rmtree(directory, ignore_errors=True)
  options = beam.direct_runner_options(workers) if mode == "beam" else None
  builder = builder_lib.Builder(data_dir=directory, config=config,
                                num_workers=workers if mode == "plain" else None)
  start = time.perf_counter()
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      try_download_gcs=False, compute_stats=tfds.download.ComputeStatsMode.SKIP,
      beam_options=options))
  seconds = time.perf_counter() - start
  shutil.rmtree(directory, ignore_errors=True)
  return {"mode": mode, "workers": workers, "sequences": num_train + num_test,
          "seconds": seconds}


def _run_json(arguments):
  command = [sys.executable, os.path.abspath(__file__)] + [str(a) for a in arguments]
  output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
  return json.loads(output.strip().splitlines()[-1])


def scaling_section(replica_rows, generation_rows, paper_sequences):
  """The markdown of the scaling section (between SCALING_BEGIN and SCALING_END)."""
  lines = [
      SCALING_BEGIN,
      "## Scaling",
      "",
      f"Measured {datetime.date.today()} with `python scripts/benchmark.py --scaling` on "
      f"{os.cpu_count()} CPU cores. Training: the cpu preset, `fit` under MirroredStrategy on "
      f"logical CPU devices (`--num_cpu_devices`), random frames, after two warm-up steps. The "
      f"logical devices share the same cores, so this shows the cost of replication, not a "
      f"speed-up (docs/scaling.md).",
      "",
      "| devices (replicas) | global batch | per-replica batch | s/step | steps/s | frames/s |",
      "|---|---|---|---|---|---|"]
  for row in replica_rows:
    lines.append(f"| {row['devices']} | {row['global_batch']} | {row['per_replica_batch']} | "
                 f"{row['seconds_per_step']:.2f} | {row['steps_per_second']:.3f} | "
                 f"{row['frames_per_second']:.0f} |")
  lines.append("")
  if generation_rows:
    lines += [
        "Basketball generation (64x64, 50 frames, paper settings), simulate + render + encode + "
        "write, at two sizes; `seconds = fixed + per_sequence x sequences` fitted through both "
        f"and extrapolated to the paper size ({paper_sequences:,} sequences).",
        "",
        "| generator | workers | sequences | seconds | fixed s | ms / sequence | paper size |",
        "|---|---|---|---|---|---|---|"]
    by_setting = {}
    for row in generation_rows:
      by_setting.setdefault((row["mode"], row["workers"]), []).append(row)
    for (mode, workers), rows in by_setting.items():
      rows = sorted(rows, key=lambda r: r["sequences"])
      small, large = rows[0], rows[-1]
      per_sequence = (large["seconds"] - small["seconds"]) / max(
          large["sequences"] - small["sequences"], 1)
      fixed = small["seconds"] - per_sequence * small["sequences"]
      paper_minutes = (fixed + per_sequence * paper_sequences) / 60
      label = "plain (worker processes)" if mode == "plain" else "Beam DirectRunner"
      for row in rows:
        lines.append(f"| {label} | {workers} | {row['sequences']:,} | {row['seconds']:.1f} | "
                     f"{fixed:.1f} | {1000 * per_sequence:.2f} | {paper_minutes:.0f} min |")
  else:
    lines.append("Basketball generation on Beam: not measured (apache-beam is not installed).")
  lines += ["", SCALING_END]
  return "\n".join(lines)


def _read_scaling_section(path):
  if not os.path.exists(path):
    return None
  with open(path) as f:
    text = f.read()
  if SCALING_BEGIN in text and SCALING_END in text:
    return text[text.index(SCALING_BEGIN):text.index(SCALING_END) + len(SCALING_END)]
  return None


def run_scaling(args):
  rows = []
  for devices, batch in ((1, 8), (2, 8), (2, 16)):
    print(f"Training on {devices} logical CPU device(s), global batch {batch} ...", flush=True)
    rows.append(_run_json(["--replicas_one", devices, batch, "--steps", args.steps or 10]))
    print(f"  {rows[-1]['steps_per_second']:.3f} steps/s, "
          f"{rows[-1]['frames_per_second']:.0f} frames/s", flush=True)
  generation = []
  try:
    import apache_beam  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    have_beam = True
  except ImportError:
    have_beam = False
    print("apache-beam is not installed: skipping the Beam generation rows.", flush=True)
  if have_beam:
    import tempfile
    with tempfile.TemporaryDirectory() as work_dir:
      for mode, workers in (("plain", 1), ("plain", 2), ("beam", 1), ("beam", 2)):
        for num_train, num_test in args.generation_sizes:
          print(f"Generating {num_train} + {num_test} sequences, {mode}, {workers} worker(s) ...",
                flush=True)
          generation.append(_run_json(["--generation_one", mode, workers, num_train, num_test,
                                       work_dir]))
          print(f"  {generation[-1]['seconds']:.1f} s", flush=True)
  from video_structure.data.builders import basketball as builder_lib
  paper = next(c for c in builder_lib.PREDEFINED_CONFIGS if c.name == "paper")
  section = scaling_section(rows, generation, paper.num_train + paper.num_test)
  print(section)
  text = ""
  if os.path.exists(args.output):
    with open(args.output) as f:
      text = f.read()
  old = _read_scaling_section(args.output)
  if old is not None:
    text = text.replace(old, section)
  else:
    text = text.rstrip("\n") + ("\n\n" if text else "") + section + "\n"
  io_utils.atomic_write_text(args.output, text)


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
  parser.add_argument("--scaling", action="store_true",
                      help="Measure 1 vs 2 replicas and Beam workers (see the docstring).")
  parser.add_argument("--generation_sizes", type=lambda text: tuple(map(int, text.split("+"))),
                      nargs="+", default=[(448, 64), (1792, 256)], metavar="TRAIN+TEST",
                      help="--scaling: the two Basketball sizes timed (train+test sequences).")
  parser.add_argument("--peak_only", action="store_true",
                      help="Measure only this machine's conv / matmul peak (the dtypes of "
                           "--precisions) and print it with the CPU; writes nothing.")
  parser.add_argument("--peak_seconds", type=float, default=None,
                      help="Timed seconds per peak kernel and dtype (default: 2; 0 with --tiny).")
  parser.add_argument("--tiny", action="store_true",
                      help="Smoke test: the tests' tiny model on each preset, 1 timed step, a "
                           "short peak, no data rows; prints and writes nothing.")
  parser.add_argument("--replicas_one", nargs=2, type=int, help=argparse.SUPPRESS)
  parser.add_argument("--generation_one", nargs=5, help=argparse.SUPPRESS)
  args = parser.parse_args()
  peak_seconds = args.peak_seconds if args.peak_seconds is not None else (
      0.0 if args.tiny else 2.0)

  if args.peak_only:
    machine = measure_machine(args.precisions, peak_seconds)
    print("\n".join(machine_lines(machine)))
    print(json.dumps(machine))
    return
  if args.replicas_one:
    print(json.dumps(measure_replicas(*args.replicas_one, steps=args.steps or 10)))
    return
  if args.generation_one:
    mode, workers, num_train, num_test, work_dir = args.generation_one
    print(json.dumps(measure_generation(mode, int(workers), int(num_train), int(num_test),
                                        work_dir)))
    return
  if args.scaling:
    run_scaling(args)
    return

  if args.one:
    preset, precision = args.one
    steps = args.steps or (1 if args.tiny else 10 if preset == "cpu" else 3)
    print(json.dumps(measure_training(preset, precision, steps, tiny=args.tiny)))
    return

  print("Measuring this machine's conv / matmul peak ...", flush=True)
  machine = _run_json(["--peak_only", "--peak_seconds", peak_seconds, "--precisions",
                       *args.precisions])
  print("\n".join(machine_lines(machine)), flush=True)
  rows = []
  for preset in args.presets:
    for precision in args.precisions:
      arguments = ["--one", preset, precision] + (["--tiny"] if args.tiny else [])
      if args.steps:
        arguments += ["--steps", args.steps]
      print(f"Measuring {preset} / {precision}{' (tiny model)' if args.tiny else ''} ...",
            flush=True)
      rows.append(add_peak(_run_json(arguments), machine))
      print(f"  {rows[-1]['steps_per_second']:.3f} steps/s, "
            f"{rows[-1]['frames_per_second']:.1f} frames/s, "
            f"{rows[-1]['peak_memory_mb']:.0f} MB", flush=True)
      print(training_line(rows[-1]), flush=True)
  if args.tiny:
    print(json.dumps({"machine": machine, "rows": rows}))
    return
  generator = measure_generator()
  human = measure_human_generator()
  dmcs_rates = measure_dmcs_generator()
  pipeline = measure_pipeline(args.data_dir)

  lines = [
      "# Benchmarks",
      "",
      f"Measured {datetime.date.today()} with `python scripts/benchmark.py` on "
      f"{os.cpu_count()} CPU cores ({machine['cpu']['model'] or platform.machine()}), "
      f"no GPU. Training rows: one train step (vision + dynamics + losses + Adam) on the "
      f"preset's batch, after two warm-up steps; peak memory is the process's resident peak. "
      f"GFLOP/step: the step's convs and matmuls, forward and backward, counted from the "
      f"config (`video_structure/training/flops.py`); GFLOP/s: that over the measured time; "
      f"% of conv peak: of the conv peak below in the precision of the row's convs.",
      "",
      "| preset | precision | batch x frames | s/step | steps/s | frames/s | GFLOP/step | "
      "GFLOP/s | % of conv peak | parameters | peak memory |",
      "|---|---|---|---|---|---|---|---|---|---|---|"]
  for row in rows:
    lines.append(
        f"| {row['preset']} | {row['precision']} | {row['batch']} x "
        f"{row['frames_per_step'] // row['batch']} | {row['seconds_per_step']:.2f} | "
        f"{row['steps_per_second']:.3f} | {row['frames_per_second']:.0f} | "
        f"{row['flops_per_step'] / 1e9:.1f} | {row['gflops_per_second']:.1f} | "
        f"{row['percent_of_conv_peak']:.0f}% | "
        f"{row['parameters']:,} | {row['peak_memory_mb']:.0f} MB |")
  lines += [""] + peak_section(machine)
  lines += [
      "",
      "| data | frames/s |",
      "|---|---|",
      f"| Basketball generator: simulate ({generator['sequences']} sequences x 50 frames) | "
      f"{generator['simulate_frames_per_second']:,.0f} |",
      f"| Basketball generator: render 64x64 | {generator['render_frames_per_second']:,.0f} |",
      f"| Basketball generator: simulate + render | "
      f"{generator['generator_frames_per_second']:,.0f} |",
      f"| Human-motion generator: animate + render 64x64 ({human['frames']} frames) | "
      f"{human['frames_per_second']:,.0f} |"]
  for task, rate in dmcs_rates.items():
    lines.append(f"| DMCS generator: {task} (physics + EGL rendering 64x64, "
                 f"{rate['frames']} frames) | {rate['frames_per_second']:,.0f} |")
  lines += [
      f"| Input pipeline: decode + random windows + batch (32 x 16) | "
      f"{pipeline['frames_per_second']:,.0f} |",
      ""]
  text = "\n".join(lines)
  print(text)
  scaling = _read_scaling_section(args.output)  # Written by --scaling; kept.
  if scaling is not None:
    text += "\n" + scaling + "\n"
  io_utils.atomic_write_text(args.output, text)


if __name__ == "__main__":
  main()
