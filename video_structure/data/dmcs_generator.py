"""`DmcsGenerator`: DMCS sequences rendered in a worker subprocess (see `dmcs`).

MuJoCo's software rendering crashes in a process that has imported TensorFlow (the `dmcs`
module docstring explains why), so by default a generator renders in one worker subprocess
that runs `dmcs.py` as a script (`dmcs._worker_main`) and sends the arrays back through a
pipe; `in_process=True` renders in the calling process instead. The TFDS builder
(`builders/dmcs.py`) generates its sequences with it.

Speed: `generation_benchmark`, or `python -m video_structure.data.dmcs_generator` (add
--render_detail fine or --no_shadows to compare); scripts/dmcs_render_profile.py splits the
time of a frame into its stages.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from typing import Dict, Iterable, Optional

import numpy as np

# Imported before anything that imports dm_control: it sets the MUJOCO_GL=egl default.
from video_structure.data.dmcs import (DEFAULT_ACTION_REPEAT, DEFAULT_RENDER_DETAIL, IMAGE_SIZE,
                                       MIN_NUM_FRAMES, RENDER_DETAILS, TASKS, WORKER_SCRIPT,
                                       _check_actions, _check_int, _LocalGenerator,
                                       check_render_detail, check_task, replay_frames)
from video_structure.data import worker_pipe


class _WorkerClient:
  """A worker subprocess running dmcs.py with _worker_main (no TensorFlow in it)."""

  def __init__(self, image_size: int, shadows: bool, render_detail: str):
    # -P: do not put video_structure/ on the worker's sys.path (its module names, e.g.
    # config.py, would shadow packages). The environment (MUJOCO_GL, ...) is inherited.
    self._process = subprocess.Popen(
        [sys.executable, "-P", WORKER_SCRIPT, "--worker"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    self.call("start", image_size=image_size, shadows=shadows, render_detail=render_detail)

  def call(self, method: str, **kwargs):
    try:
      worker_pipe.send(self._process.stdin, (method, kwargs))
      reply = worker_pipe.receive(self._process.stdout)
    except (EOFError, BrokenPipeError) as error:
      code = self._process.wait()
      raise RuntimeError(
          f"The DMCS worker process exited (code {code}) during {method!r}; its error output "
          "is above. Check that dm_control and mujoco are installed (requirements.txt) and "
          "that EGL works (scripts/install_system_packages.sh; MUJOCO_GL="
          f"{os.environ.get('MUJOCO_GL')!r}).") from error
    if reply[0] == "ok":
      return reply[1]
    _, name, message, worker_traceback = reply
    error_type = {"ValueError": ValueError, "ImportError": ImportError,
                  "ModuleNotFoundError": ImportError}.get(name, RuntimeError)
    raise error_type(f"{message}\n(DMCS worker process: {name}; its traceback:\n"
                     f"{worker_traceback})")

  def close(self) -> None:
    if self._process.poll() is None:
      self._process.stdin.close()  # The worker exits at end of input.
      try:
        self._process.wait(timeout=30)
      except subprocess.TimeoutExpired:
        self._process.kill()
        self._process.wait()
    self._process.stdout.close()


class DmcsGenerator:
  """Generates random-action DMCS sequences (see the `dmcs` module docstring).

  By default rendering happens in one worker subprocess (started at the first call, one
  environment per task kept there), because MuJoCo's software rendering crashes in a process
  that has imported TensorFlow. Not thread-safe. Call `close()` (or use it as a context
  manager) to stop the worker.

  Args:
    image_size: frame height and width (S), >= 8.
    shadows: draw shadows (the default DMCS look); False renders faster.
    render_detail: a key of dmcs.RENDER_DETAILS: "fast" (the default) or "fine" (version
      1.0.0's frames; generation 2.4-3.9x slower).
    in_process: render in this process instead (only where TensorFlow is not imported).
  """

  def __init__(self, image_size: int = IMAGE_SIZE, shadows: bool = True,
               render_detail: str = DEFAULT_RENDER_DETAIL, in_process: bool = False):
    self.image_size = _check_int("image_size", image_size, 8, "DmcsGenerator")
    self.shadows = bool(shadows)
    self.render_detail = check_render_detail(render_detail, "DmcsGenerator")
    self.in_process = bool(in_process)
    self._backend = None
    if self.in_process:
      self._backend = _LocalGenerator(self.image_size, self.shadows, self.render_detail)

  def __enter__(self) -> "DmcsGenerator":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  def __del__(self):
    with contextlib.suppress(Exception):
      self.close()

  def close(self) -> None:
    if self._backend is not None:
      self._backend.close()
      self._backend = None

  def _started_backend(self):
    if self._backend is None:
      self._backend = _WorkerClient(self.image_size, self.shadows, self.render_detail)
    return self._backend

  def generate(self, task: str, index: int, seed: int = 0, num_frames: int = 50,
               action_repeat: Optional[int] = None, max_warmup_steps: int = 0) -> dict:
    """One sequence of `task` (see the module docstring for the time alignment).

    Args:
      task: one of TASKS.
      index: sequence index (>= 0); with `seed` and `task` it determines the sequence.
      seed: dataset seed (>= 0).
      num_frames: frames per sequence T (>= MIN_NUM_FRAMES).
      action_repeat: control steps per frame; None = DEFAULT_ACTION_REPEAT[task].
      max_warmup_steps: before frame[0], a number of random-action agent steps drawn
        uniformly from [0, max_warmup_steps] is taken and not recorded, so that sequences
        start at different points of an episode rather than all right after a reset.

    Returns:
      dict with
        image:         uint8   [T, S, S, 3]
        action:        float32 [T, A]  A = ACTION_DIMS[task], within the action bounds
        reward:        float32 [T]     in [0, action_repeat] (per-step rewards are in [0, 1])
        task:          str
        task_label:    int             index of task in TASKS
        warmup_steps:  int             unrecorded agent steps before frame[0]
        action_repeat: int
    """
    caller = "DmcsGenerator.generate"
    check_task(task, caller)
    if action_repeat is None:
      action_repeat = DEFAULT_ACTION_REPEAT[task]
    kwargs = {
        "task": task,
        "index": _check_int("index", index, 0, caller),
        "seed": _check_int("seed", seed, 0, caller),
        "num_frames": _check_int("num_frames", num_frames, MIN_NUM_FRAMES, caller),
        "action_repeat": _check_int("action_repeat", action_repeat, 1, caller),
        "max_warmup_steps": _check_int("max_warmup_steps", max_warmup_steps, 0, caller),
    }
    backend = self._started_backend()
    if isinstance(backend, _LocalGenerator):
      return backend.generate(**kwargs)
    return backend.call("generate", **kwargs)

  def replay_frames(self, task: str, environment_seed_value: int, actions,
                    action_repeat: int) -> np.ndarray:
    """`replay_frames` (module function) with this generator's rendering settings.

    Runs in the worker unless in_process; a fresh environment per call.
    Returns uint8 [N + 1, S, S, 3] for N actions.
    """
    kwargs = {"task": task, "environment_seed_value": int(environment_seed_value),
              "actions": _check_actions(actions, task, "DmcsGenerator.replay_frames"),
              "action_repeat": _check_int("action_repeat", action_repeat, 1,
                                          "DmcsGenerator.replay_frames"),
              "image_size": self.image_size, "shadows": self.shadows,
              "render_detail": self.render_detail}
    backend = self._started_backend()
    if isinstance(backend, _LocalGenerator):
      return replay_frames(**kwargs)
    return backend.call("replay_frames", **kwargs)


def generate_sequence(task: str, index: int, seed: int = 0, num_frames: int = 50,
                      action_repeat: Optional[int] = None, max_warmup_steps: int = 0,
                      image_size: int = IMAGE_SIZE, shadows: bool = True,
                      render_detail: str = DEFAULT_RENDER_DETAIL,
                      in_process: bool = False) -> dict:
  """One sequence with a throw-away generator (see DmcsGenerator.generate for the output)."""
  with DmcsGenerator(image_size=image_size, shadows=shadows, render_detail=render_detail,
                     in_process=in_process) as gen:
    return gen.generate(task, index, seed=seed, num_frames=num_frames,
                        action_repeat=action_repeat, max_warmup_steps=max_warmup_steps)


def generation_benchmark(tasks: Iterable[str] = TASKS, num_sequences: int = 2,
                         num_frames: int = 50, seed: int = 0, image_size: int = IMAGE_SIZE,
                         shadows: bool = True, render_detail: str = DEFAULT_RENDER_DETAIL,
                         in_process: bool = False,
                         max_warmup_steps: int = 0) -> Dict[str, dict]:
  """Frames per second of generation per task, one rendering process.

  For each task: `setup_seconds` (building the environment and GL context and generating a
  2-frame sequence, paid once per task and process; the first task also pays for starting
  the worker), then `num_sequences` sequences of `num_frames` frames timed as a whole
  (random actions, simulation, rendering and, unless in_process, the transfer from the
  worker: what the TFDS builder sees), each after a random number of unrecorded warm-up
  steps in [0, max_warmup_steps] (the builder's configs use 100).

  Returns:
    {task: {"frames": int, "seconds": float, "frames_per_second": float,
            "setup_seconds": float}}
  """
  num_sequences = _check_int("num_sequences", num_sequences, 1, "generation_benchmark")
  num_frames = _check_int("num_frames", num_frames, MIN_NUM_FRAMES, "generation_benchmark")
  max_warmup_steps = _check_int("max_warmup_steps", max_warmup_steps, 0, "generation_benchmark")
  results = {}
  with DmcsGenerator(image_size=image_size, shadows=shadows, render_detail=render_detail,
                     in_process=in_process) as gen:
    for task in tasks:
      start = time.perf_counter()
      gen.generate(task, index=0, seed=seed, num_frames=MIN_NUM_FRAMES)
      setup = time.perf_counter() - start
      start = time.perf_counter()
      for index in range(1, num_sequences + 1):
        gen.generate(task, index=index, seed=seed, num_frames=num_frames,
                     max_warmup_steps=max_warmup_steps)
      seconds = time.perf_counter() - start
      frames = num_sequences * num_frames
      results[task] = {"frames": frames, "seconds": seconds,
                       "frames_per_second": frames / seconds, "setup_seconds": setup}
  return results


def _main() -> None:
  parser = argparse.ArgumentParser(description="Measures DMCS generation speed per task.")
  parser.add_argument("--num_sequences", type=int, default=2)
  parser.add_argument("--num_frames", type=int, default=50)
  parser.add_argument("--max_warmup_steps", type=int, default=0)
  parser.add_argument("--no_shadows", action="store_true")
  parser.add_argument("--render_detail", choices=list(RENDER_DETAILS),
                      default=DEFAULT_RENDER_DETAIL)
  parser.add_argument("--in_process", action="store_true")
  args = parser.parse_args()
  results = generation_benchmark(num_sequences=args.num_sequences, num_frames=args.num_frames,
                                 shadows=not args.no_shadows, render_detail=args.render_detail,
                                 in_process=args.in_process,
                                 max_warmup_steps=args.max_warmup_steps)
  for name, row in results.items():
    print(f"{name:18s} {row['frames_per_second']:6.1f} frames/s "
          f"({row['frames']} frames in {row['seconds']:.1f} s; "
          f"setup {row['setup_seconds']:.2f} s)", flush=True)


if __name__ == "__main__":
  _main()
