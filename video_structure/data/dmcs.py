"""DeepMind Control Suite videos driven by random actions (offline generator).

The paper (Minderer et al. 2019, Sec. 4.4 and S2.3) records 64x64 pixel observations, the
actions and the rewards of six dense-reward DMCS tasks under random actions, and trains one
action-conditional model on all of them. This module generates such sequences with
`dm_control` (MuJoCo), rendering headless with EGL (Mesa's software rasteriser when there is
no GPU). Nothing is downloaded: the task models ship inside the `dm_control` wheel.
`dmcs_generator.DmcsGenerator` is the generator to use; this module holds the simulation and
in-process rendering, and is also the script its worker subprocess runs (it imports nothing
of the project).

Time alignment (one sequence of T steps):

    frame[0]      state after reset (and after `warmup_steps` unrecorded random steps)
    action[t]     applied after frame[t] (held for `action_repeat` control steps); it is the
                  action that produced frame[t + 1] (the paper's a_{t-1} for frame t is
                  action[t - 1] here)
    reward[t]     reward received for action[t]: the sum of the task's per-control-step
                  rewards over those `action_repeat` steps, each computed from the physics
                  state after that control step (so the last term depends on the state drawn
                  in frame[t + 1]; for t = T - 1 on the state after the last stored frame,
                  which is simulated but not rendered)

Random actions: i.i.d. uniform in the task's action bounds ([-1, 1] for all six tasks), one
draw per agent step, held for `action_repeat` control steps. The paper does not say how
actions were drawn or repeated; the per-task repeats below follow PlaNet (Hafner et al.
2019), the usual convention for 64x64 DMCS pixel data (acrobot, absent there, gets 4), so
that consecutive frames show visible motion (0.04-0.08 s apart instead of 0.01-0.025 s).

Determinism: a sequence depends only on (seed, task, sequence index) and the settings, not on
what was generated before it in the same process: the task's RandomState (initial state,
reacher target) and the action generator are both seeded from
SeedSequence([seed, index, crc32(task), stream]), and each environment is reset before every
sequence. Sequences with the same key but a larger `num_frames` extend shorter ones.

Rendering: the task's default camera (camera 0: fixed or tracking, as in the task's XML),
RGB only (no depth or segmentation), drawn directly at image_size x image_size with the
offscreen framebuffer shrunk to that size. The default look is kept (4x multisampling,
skybox, floor reflections, shadows), except that the shadow map is 512^2 instead of the
XML's 4096^2: on 64x64 frames that changes pixels by < 0.05 grey levels on average (a few
shadow-edge pixels by more) and renders about twice as fast on the CPU. `shadows=False` is
faster still but visibly different (no shadows).

TensorFlow: Mesa's software renderer (llvmpipe, what EGL uses without a GPU) crashes with a
segmentation fault in a process that has imported TensorFlow, because TensorFlow exports its
own copy of LLVM's symbols globally and Mesa's calls into LLVM resolve to it. So
`dmcs_generator.DmcsGenerator` renders in a worker subprocess (this file run as a script,
which never imports TensorFlow) and receives the arrays through a pipe; `in_process=True`
renders in the calling process, which is refused when TensorFlow is loaded. Simulation alone
(`load_environment`, stepping) is fine anywhere: in a TensorFlow process dm_control is
imported with rendering disabled, since even importing its EGL backend there makes the
process abort at exit. (Importing TensorFlow after dm_control's EGL backend has the same
exit problem; avoid it.)

Environment variables (set with os.environ.setdefault when this module is imported, so a
user's own value wins; the worker inherits them; for in-process rendering they must be set
before dm_control / MuJoCo / Mesa are loaded, so import this module before `dm_control`):
  MUJOCO_GL=egl       headless rendering (dm_control's other headless backend, `osmesa`,
                      needs libosmesa6; not tested here).
  LP_NUM_THREADS=1    Mesa's software rasteriser on one thread: measured as fast as two
                      threads on 64x64 frames, and it leaves the other core free.

Speed (one process, 2 shared cores, no GPU): see `dmcs_generator.generation_benchmark` and
run `python -m video_structure.data.dmcs_generator` (add --no_shadows to compare).
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import traceback
import zlib
from typing import Dict, Optional

# Must happen before dm_control is imported (it picks the GL backend at import time).
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

# The six dense-reward tasks of the paper, as "<domain>_<task>" (dm_control's names).
TASKS = ("acrobot_swingup", "cartpole_balance", "cheetah_run", "reacher_easy",
         "walker_stand", "walker_walk")
_DOMAIN_AND_TASK = {
    "acrobot_swingup": ("acrobot", "swingup"),
    "cartpole_balance": ("cartpole", "balance"),
    "cheetah_run": ("cheetah", "run"),
    "reacher_easy": ("reacher", "easy"),
    "walker_stand": ("walker", "stand"),
    "walker_walk": ("walker", "walk"),
}
# Action dimensions (all bounded in [-1, 1]); the TFDS builder pads actions to MAX_ACTION_DIM.
ACTION_DIMS = {"acrobot_swingup": 1, "cartpole_balance": 1, "cheetah_run": 6,
               "reacher_easy": 2, "walker_stand": 6, "walker_walk": 6}
MAX_ACTION_DIM = 6
# Seconds per control step in dm_control's task definitions (for reference / docs).
CONTROL_TIMESTEP_S = {"acrobot_swingup": 0.01, "cartpole_balance": 0.01, "cheetah_run": 0.01,
                      "reacher_easy": 0.02, "walker_stand": 0.025, "walker_walk": 0.025}
# Control steps per recorded frame (PlaNet's repeats; see the module docstring).
DEFAULT_ACTION_REPEAT = {"acrobot_swingup": 4, "cartpole_balance": 8, "cheetah_run": 4,
                         "reacher_easy": 4, "walker_stand": 2, "walker_walk": 2}
IMAGE_SIZE = 64
CAMERA_ID = 0  # The task's default camera in its XML.
SHADOW_MAP_SIZE = 512
MIN_NUM_FRAMES = 2  # At least one transition.

# Streams of SeedSequence([seed, index, crc32(task), stream]).
_ENVIRONMENT_STREAM = 0
_ACTION_STREAM = 1


def _check_int(name: str, value, minimum: int, caller: str) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f"{caller}: {name} must be an integer >= {minimum}, got {value!r}.")
  return int(value)


def check_task(task: str, caller: str = "dmcs") -> str:
  """Returns `task` if it is one of TASKS, else raises ValueError listing the known tasks."""
  if task not in _DOMAIN_AND_TASK:
    raise ValueError(f"{caller}: unknown task {task!r}; expected one of {', '.join(TASKS)}.")
  return task


def _seed_words(seed: int, index: int, task: str, stream: int) -> list:
  # crc32 of the name (not its position in TASKS) so that adding or reordering tasks
  # never changes the data of the others.
  return [int(seed), int(index), zlib.crc32(task.encode("utf-8")), stream]


def environment_seed(seed: int, index: int, task: str) -> int:
  """Seed (uint32) of the task's RandomState for sequence `index`: initial state, targets."""
  words = _seed_words(seed, index, check_task(task, "environment_seed"), _ENVIRONMENT_STREAM)
  return int(np.random.SeedSequence(words).generate_state(1)[0])


def action_generator(seed: int, index: int, task: str) -> np.random.Generator:
  """The generator from which sequence `index` draws its warm-up length and its actions."""
  words = _seed_words(seed, index, check_task(task, "action_generator"), _ACTION_STREAM)
  return np.random.default_rng(np.random.SeedSequence(words))


def _import_suite():
  """dm_control.suite, imported lazily so that the rest of the project works without it.

  In a process that has imported TensorFlow, dm_control is imported with rendering disabled
  (MUJOCO_GL=disable for the import only): its EGL backend opens a Mesa display at import,
  and Mesa's LLVM then aborts the process at exit ("free(): invalid pointer"), see the module
  docstring. Simulation needs no renderer; the worker process renders.
  """
  disable_rendering = "tensorflow" in sys.modules and "dm_control._render" not in sys.modules
  saved_backend = os.environ.get("MUJOCO_GL")
  if disable_rendering:
    os.environ["MUJOCO_GL"] = "disable"
  try:
    from dm_control import suite  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise ImportError(
        "The DMCS generator needs dm_control and mujoco (see requirements.txt: "
        "dm-control==1.0.50, mujoco==3.17.0) and, for headless rendering, the EGL packages "
        "installed by scripts/install_system_packages.sh.") from error
  finally:
    if disable_rendering:  # The worker inherits the environment: restore the user's value.
      if saved_backend is None:
        del os.environ["MUJOCO_GL"]
      else:
        os.environ["MUJOCO_GL"] = saved_backend
  return suite


def load_environment(task: str, random_seed: Optional[int] = None):
  """A dm_control environment of `task` that never ends (no time limit).

  The six tasks have no termination condition, so with an infinite time limit `step` never
  starts a new episode in the middle of a sequence.
  """
  domain_name, task_name = _DOMAIN_AND_TASK[check_task(task, "load_environment")]
  suite = _import_suite()
  return suite.load(domain_name, task_name,
                    task_kwargs={"random": random_seed, "time_limit": float("inf")})


def _configure_rendering(physics, image_size: int) -> None:
  """Offscreen framebuffer of the frame's size and a smaller shadow map (module docstring).

  MuJoCo reads both when the physics' GL context is created, at its first render.
  """
  physics.model.vis.global_.offwidth = image_size
  physics.model.vis.global_.offheight = image_size
  physics.model.vis.quality.shadowsize = SHADOW_MAP_SIZE


class _TaskRenderer:
  """One environment of a task with its offscreen camera, reused across sequences."""

  def __init__(self, task: str, image_size: int, shadows: bool):
    self.environment = load_environment(task)  # Imports dm_control (see _import_suite).
    from dm_control.mujoco import engine  # pylint: disable=import-outside-toplevel
    physics = self.environment.physics
    _configure_rendering(physics, image_size)
    # One Camera per environment: creating it per frame allocates a new scene (~2 ms).
    self.camera = engine.Camera(physics, height=image_size, width=image_size,
                                camera_id=CAMERA_ID)
    self.render_flags = {} if shadows else {"shadow": False}
    action_spec = self.environment.action_spec()
    self.action_minimum = np.asarray(action_spec.minimum, np.float64)
    self.action_maximum = np.asarray(action_spec.maximum, np.float64)

  def render(self) -> np.ndarray:
    """The current state drawn by camera 0: uint8 [H, W, 3]."""
    return np.array(self.camera.render(render_flag_overrides=dict(self.render_flags)),
                    dtype=np.uint8)

  def close(self) -> None:
    self.environment.close()


def _check_rendering_allowed(caller: str) -> None:
  """Raises instead of letting Mesa crash the process (see "TensorFlow" in the docstring)."""
  if "tensorflow" in sys.modules:
    raise RuntimeError(
        f"{caller}: cannot render in a process that has imported TensorFlow: Mesa's software "
        "renderer would call TensorFlow's copy of LLVM and crash (segmentation fault). Use "
        "dmcs_generator.DmcsGenerator(in_process=False) (the default), which renders in a "
        "worker process.")


def render_frame(physics, image_size: int = IMAGE_SIZE, shadows: bool = True) -> np.ndarray:
  """Renders a physics state the way the generator does: uint8 [image_size, image_size, 3].

  In-process (not in a process that has imported TensorFlow). Call it on a physics that has
  not rendered before (see `_configure_rendering`), e.g. `load_environment(task).physics`.
  """
  _check_rendering_allowed("render_frame")
  from dm_control.mujoco import engine  # pylint: disable=import-outside-toplevel
  image_size = _check_int("image_size", image_size, 8, "render_frame")
  _configure_rendering(physics, image_size)
  camera = engine.Camera(physics, height=image_size, width=image_size, camera_id=CAMERA_ID)
  flags = {} if shadows else {"shadow": False}
  return np.array(camera.render(render_flag_overrides=flags), dtype=np.uint8)


def replay_frames(task: str, environment_seed_value: int, actions, action_repeat: int,
                  image_size: int = IMAGE_SIZE, shadows: bool = True) -> np.ndarray:
  """Replays actions in a fresh environment and renders every state, in-process.

  Independent of the generator's loop (a new environment per call), for checking stored
  data: the environment is created with `environment_seed_value`, reset, and each action is
  held for `action_repeat` control steps.

  Args:
    actions: [N, A] actions (e.g. a sequence's warm-up actions followed by its actions).

  Returns:
    uint8 [N + 1, S, S, 3]: the state after reset, then the state after each action.
  """
  _check_rendering_allowed("replay_frames")
  actions = _check_actions(actions, task, "replay_frames")
  environment = load_environment(task, int(environment_seed_value))
  try:
    environment.reset()
    frames = [render_frame(environment.physics, image_size, shadows)]
    for action in actions:
      for _ in range(action_repeat):
        environment.step(action)
      frames.append(render_frame(environment.physics, image_size, shadows))
  finally:
    environment.close()
  return np.stack(frames)


def _check_actions(actions, task: str, caller: str) -> np.ndarray:
  """actions as float32 [N, ACTION_DIMS[task]], finite and within [-1, 1], else ValueError."""
  array = np.asarray(actions, np.float32)
  dim = ACTION_DIMS[check_task(task, caller)]
  if array.ndim != 2 or array.shape[1] != dim:
    raise ValueError(f"{caller}: actions of {task} must have shape (N, {dim}), got "
                     f"{array.shape}.")
  if not np.all(np.isfinite(array)) or np.any(np.abs(array) > 1.0):
    raise ValueError(f"{caller}: actions must be finite and within the bounds [-1, 1].")
  return array


class _LocalGenerator:
  """The in-process generator: one environment per task, reset and reseeded per sequence.

  Reusing an environment gives exactly the data of a fresh one and avoids rebuilding the
  model and its GL context per sequence (~0.5 s).
  """

  def __init__(self, image_size: int, shadows: bool):
    _check_rendering_allowed("DmcsGenerator(in_process=True)")
    self.image_size = image_size
    self.shadows = shadows
    self._renderers: Dict[str, _TaskRenderer] = {}

  def close(self) -> None:
    for renderer in self._renderers.values():
      renderer.close()
    self._renderers.clear()

  def generate(self, task, index, seed, num_frames, action_repeat, max_warmup_steps) -> dict:
    """See DmcsGenerator.generate (arguments already validated)."""
    if task not in self._renderers:
      self._renderers[task] = _TaskRenderer(task, self.image_size, self.shadows)
    renderer = self._renderers[task]
    environment = renderer.environment
    # Reseeding the task's own RandomState in place makes the reset below identical to that
    # of a fresh environment created with this seed.
    environment.task.random.seed(environment_seed(seed, index, task))
    environment.reset()

    rng = action_generator(seed, index, task)
    warmup_steps = int(rng.integers(0, max_warmup_steps + 1))
    low, high = renderer.action_minimum, renderer.action_maximum
    # Warm-up actions are drawn first, then the recorded ones, so a longer sequence with
    # the same key extends a shorter one. Cast to float32 before use: the stored actions are
    # exactly the applied ones.
    warmup_actions = rng.uniform(low, high, size=(warmup_steps, low.size)).astype(np.float32)
    actions = rng.uniform(low, high, size=(num_frames, low.size)).astype(np.float32)
    for action in warmup_actions:
      for _ in range(action_repeat):
        environment.step(action)

    frames = np.empty((num_frames, self.image_size, self.image_size, 3), np.uint8)
    rewards = np.zeros(num_frames, np.float64)
    for t in range(num_frames):
      frames[t] = renderer.render()
      for _ in range(action_repeat):
        rewards[t] += environment.step(actions[t]).reward
    return {
        "image": frames,
        "action": actions,
        "reward": rewards.astype(np.float32),
        "task": task,
        "task_label": TASKS.index(task),
        "warmup_steps": warmup_steps,
        "action_repeat": action_repeat,
    }


# ----------------------------------------------------------------------------- worker process
# Messages are length-prefixed pickles of builtins and numpy arrays, over the worker's
# stdin (requests) and a duplicate of its original stdout (replies).

_HEADER = struct.Struct("<Q")


def _send(stream, message) -> None:
  payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
  stream.write(_HEADER.pack(len(payload)))
  stream.write(payload)
  stream.flush()


def _receive(stream):
  header = stream.read(_HEADER.size)
  if len(header) < _HEADER.size:
    raise EOFError("stream closed")
  (size,) = _HEADER.unpack(header)
  payload = stream.read(size)
  if len(payload) < size:
    raise EOFError("stream closed in the middle of a message")
  return pickle.loads(payload)


def _worker_main() -> None:
  """Serves ("generate" | "replay_frames", kwargs) requests until stdin closes."""
  replies = os.fdopen(os.dup(1), "wb")
  # Anything else printed (by Python or C code) goes to stderr, not into the replies.
  os.dup2(2, 1)
  sys.stdout = sys.stderr
  requests = sys.stdin.buffer
  local = None
  while True:
    try:
      method, kwargs = _receive(requests)
    except EOFError:
      break
    try:
      if method == "start":
        local = _LocalGenerator(**kwargs)
        result = None
      elif method == "generate":
        result = local.generate(**kwargs)
      elif method == "replay_frames":
        result = replay_frames(**kwargs)
      else:
        raise ValueError(f"unknown request {method!r}")
      reply = ("ok", result)
    except Exception as error:  # pylint: disable=broad-except
      reply = ("error", type(error).__name__, str(error), traceback.format_exc())
    _send(replies, reply)
  if local is not None:
    local.close()


# The script the generator's worker subprocess runs (`dmcs_generator._WorkerClient`).
WORKER_SCRIPT = os.path.abspath(__file__)

if __name__ == "__main__":
  if sys.argv[1:] != ["--worker"]:
    sys.exit("dmcs.py runs as the rendering worker of dmcs_generator.DmcsGenerator "
             "(argument --worker); the speed benchmark is "
             "`python -m video_structure.data.dmcs_generator`.")
  _worker_main()
