"""Where the time of a DMCS frame goes: frames/s per task and the time of a frame, stage by stage.

  python scripts/dmcs_render_profile.py                        # render_detail "fast" (default)
  python scripts/dmcs_render_profile.py --render_detail fine   # version 1.0.0's frames
  python scripts/dmcs_render_profile.py --max_warmup_steps 0 --num_frames 50   # as the benchmark

For each task, `--num_sequences` sequences of `--num_frames` frames, each after a random number
of unrecorded warm-up steps in [0, --max_warmup_steps] (the builder's configs: 20 frames, 100):

  worker f/s   frames per second through `dmcs_generator.DmcsGenerator`: the rendering worker
               process and the pipe, what the builder's chunks get (after the task's setup).
  ms/frame     the same sequences made by the generator's own loop in this process
               (`dmcs._LocalGenerator.generate` with a `dmcs.Stopwatch`), per recorded frame:
                 reset     seeding and resetting the task (initial state, targets)
                 warmup    the unrecorded warm-up steps (physics only)
                 physics   the recorded control steps (the task's before_step, n_sub_steps
                           physics steps, after_step)
                 reward    the task's reward after each recorded control step
                 scene     copying the state into the renderer's scene (mjv_updateScene)
                 draw      rendering and reading the 64x64 pixels back (mjr_render,
                           mjr_readPixels: Mesa's llvmpipe through EGL, in this thread and one
                           rasteriser thread)
                 other     drawing the actions, the loop itself
               and, measured apart:
                 transfer  a sequence pickled, through a pipe and unpickled (the worker's reply)
                 encode    zlib of the frames as TFDS stores them (done by the builder's worker
                           process, not the rendering process)
                 obs.      the task's observation, which `environment.step` would compute at
                           every control step (warm-up too) and the generator skips
  setup s      building the task's environment and renderer, once per rendering process.

The header lists the settings behind these numbers: the control and physics timesteps
(n_sub_steps physics steps per control step), the action repeat, the offscreen framebuffer,
multisampling, shadow map and mesh tessellation of the renderer (one `mujoco.Renderer` per task,
made once and reused for every frame).

Runs like the generator's rendering worker: MUJOCO_GL=egl (the dmcs module's default) in a
process that does not import TensorFlow (Mesa's llvmpipe crashes there). On a machine shared
with other jobs the times are high and noisy: compare runs made back to back.
"""

import argparse
import os
import sys
import threading
import time
import zlib

import numpy as np

# Before dm_control is imported (the dmcs module sets MUJOCO_GL=egl and LP_NUM_THREADS=1).
from video_structure.data import dmcs
from video_structure.data import dmcs_generator
from video_structure.data import worker_pipe

# Stages of the generator's loop (`dmcs.Stopwatch` laps; "other" is the rest of its time) and
# the costs measured apart.
STAGES = ("reset", "warmup", "physics", "reward", "scene", "draw", "other")
EXTRAS = ("transfer", "encode", "obs.")


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--tasks", nargs="+", default=list(dmcs.TASKS), choices=dmcs.TASKS)
  parser.add_argument("--num_sequences", type=int, default=6, help="Sequences per task.")
  parser.add_argument("--num_frames", type=int, default=20, help="Frames per sequence.")
  parser.add_argument("--max_warmup_steps", type=int, default=100,
                      help="Warm-up steps before a sequence are drawn from [0, this].")
  parser.add_argument("--render_detail", choices=list(dmcs.RENDER_DETAILS),
                      default=dmcs.DEFAULT_RENDER_DETAIL)
  parser.add_argument("--no_shadows", action="store_true")
  parser.add_argument("--seed", type=int, default=0)
  return parser.parse_args(argv)


def transfer_seconds(sequence: dict) -> float:
  """Seconds to send `sequence` as the worker replies (pickle, pipe, unpickle)."""
  read_end, write_end = os.pipe()
  with os.fdopen(read_end, "rb") as reader, os.fdopen(write_end, "wb") as writer:
    start = time.perf_counter()
    # The pipe holds 64 kB: the reply (~250 kB for 20 frames) is written while it is read.
    sender = threading.Thread(target=worker_pipe.send, args=(writer, ("ok", sequence)))
    sender.start()
    received = worker_pipe.receive(reader)
    seconds = time.perf_counter() - start
    sender.join()
  assert np.array_equal(received[1]["image"], sequence["image"])
  return seconds


def observation_seconds(renderer, num_control_steps: int) -> float:
  """Seconds of the task's observation at `num_control_steps` states, as environment.step."""
  start = time.perf_counter()
  for _ in range(num_control_steps):
    renderer.task.get_observation(renderer.physics)
  return time.perf_counter() - start


def profile_task(task: str, args) -> dict:
  """Stage seconds per recorded frame of `task` in this process, and its setup seconds."""
  repeat = dmcs.DEFAULT_ACTION_REPEAT[task]
  # pylint: disable-next=protected-access
  local = dmcs._LocalGenerator(dmcs.IMAGE_SIZE, not args.no_shadows, args.render_detail)
  try:
    stopwatch = dmcs.Stopwatch()
    local.generate(task, 0, args.seed, dmcs.MIN_NUM_FRAMES, repeat, 0, stopwatch=stopwatch)
    setup = stopwatch.seconds["setup"]
    renderer = local.task_renderer(task)
    stopwatch = dmcs.Stopwatch()
    extra = {name: 0.0 for name in EXTRAS}
    total = 0.0
    for index in range(1, args.num_sequences + 1):
      start = time.perf_counter()
      sequence = local.generate(task, index, args.seed, args.num_frames, repeat,
                                args.max_warmup_steps, stopwatch=stopwatch)
      total += time.perf_counter() - start
      extra["transfer"] += transfer_seconds(sequence)
      start = time.perf_counter()
      zlib.compress(sequence["image"].tobytes())  # TFDS' Tensor(encoding=zlib).
      extra["encode"] += time.perf_counter() - start
      steps = (sequence["warmup_steps"] + args.num_frames) * repeat
      extra["obs."] += observation_seconds(renderer, steps)
    stages = {name: stopwatch.seconds.get(name, 0.0) for name in STAGES[:-1]}
    stages["other"] = total - sum(stages.values())  # Drawing the actions, the loop.
    frames = args.num_sequences * args.num_frames
    return {"ms": {name: 1000 * seconds / frames for name, seconds in {**stages, **extra}.items()},
            "setup": setup}
  finally:
    local.close()


def worker_frames_per_second(task: str, args) -> float:
  """Frames/s of `task` through the rendering worker, after its setup."""
  with dmcs_generator.DmcsGenerator(shadows=not args.no_shadows,
                                    render_detail=args.render_detail) as generator:
    generator.generate(task, 0, seed=args.seed, num_frames=dmcs.MIN_NUM_FRAMES)
    start = time.perf_counter()
    for index in range(1, args.num_sequences + 1):
      generator.generate(task, index, seed=args.seed, num_frames=args.num_frames,
                         max_warmup_steps=args.max_warmup_steps)
    return args.num_sequences * args.num_frames / (time.perf_counter() - start)


def describe_settings(args) -> str:
  """The simulation and rendering settings of every task (the header)."""
  lines = []
  detail = dmcs.RENDER_DETAILS[args.render_detail]
  lines.append(
      f"Rendering: one mujoco.Renderer per task (its own EGL context, made once per rendering "
      f"process), {dmcs.IMAGE_SIZE}x{dmcs.IMAGE_SIZE} offscreen framebuffer, render_detail "
      f"{args.render_detail!r}: shadow map {detail['shadowsize']}^2, meshes "
      f"{detail['numslices']} slices x {detail['numstacks']} stacks, shadows "
      f"{'off' if args.no_shadows else 'on'}; MUJOCO_GL={os.environ.get('MUJOCO_GL')}, "
      f"LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS')}.")
  for task in args.tasks:
    environment = dmcs.load_environment(task, 0)
    physics = environment.physics
    quality = physics.model.vis.quality
    sub_steps = round(environment.control_timestep() / physics.timestep())
    lines.append(
        f"  {task:17s} control step {environment.control_timestep() * 1000:4.1f} ms = "
        f"{sub_steps:2d} x {physics.timestep() * 1000:.2f} ms physics steps, "
        f"{dmcs.DEFAULT_ACTION_REPEAT[task]} control steps per frame; XML: "
        f"{quality.offsamples}x multisampling, shadow map {quality.shadowsize}^2, meshes "
        f"{quality.numslices} x {quality.numstacks}, {physics.model.ngeom} geoms, "
        f"{physics.model.nlight} light")
    environment.close()
  return "\n".join(lines)


def main(argv=None):
  args = parse_args(argv)
  if "tensorflow" in sys.modules:
    sys.exit("dmcs_render_profile.py must run in a process without TensorFlow.")
  print(describe_settings(args))
  print(f"{args.num_sequences} sequences of {args.num_frames} frames per task, warm-up in "
        f"[0, {args.max_warmup_steps}] steps; load average "
        f"{', '.join(f'{load:.1f}' for load in os.getloadavg())} on {os.cpu_count()} cores.")
  stages, extras = STAGES, EXTRAS
  print(f"{'task':17s} {'worker f/s':>10s} {'setup s':>7s} | ms/frame: "
        + " ".join(f"{name:>7s}" for name in stages + ("sum",) + extras))
  for task in args.tasks:
    profile = profile_task(task, args)
    frames_per_second = worker_frames_per_second(task, args)
    ms = profile["ms"]
    total = sum(ms[name] for name in stages)
    print(f"{task:17s} {frames_per_second:10.1f} {profile['setup']:7.2f} |           "
          + " ".join(f"{ms[name]:7.3f}" for name in stages) + f" {total:7.3f} "
          + " ".join(f"{ms[name]:7.3f}" for name in extras), flush=True)


if __name__ == "__main__":
  main()
