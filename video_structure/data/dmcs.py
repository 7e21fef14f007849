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

Simulation: each control step is `control.Environment.step` without its observation: the
task's `before_step` (sets the action), `n_sub_steps` physics steps (the control timestep over
the physics timestep: 10 for the walker, 1 for the other tasks), `after_step`, and the reward.
The task's observation is never computed (nothing stores it), and warm-up steps skip the reward
too; the physics, and so the frames and rewards, are those of `Environment.step`.

Rendering: the task's default camera (camera 0: fixed or tracking, as in the task's XML),
RGB only (no depth or segmentation), drawn directly at image_size x image_size into an offscreen
framebuffer of that size, by one `mujoco.Renderer` per task (its own EGL context, made once per
rendering process and reused for every sequence and frame of the task). The default look is kept
(4x multisampling, skybox, floor reflections, shadows), with cheaper settings (`RENDER_DETAILS`)
chosen by `render_detail`:

  "fast" (the default; data version 1.1.0): a 256^2 shadow map, MuJoCo's built-in meshes
      (capsules, spheres, cylinders) with 12 slices x 6 stacks instead of 28 x 16, and for the
      two tasks whose fixed camera sees their whole floor (FLOOR_GRID_TASKS: acrobot, cartpole)
      floor grid cells of 0.4 m instead of 0.2 m (MuJoCo lights per vertex: the grid is drawn).
  "fine" (version 1.0.0's frames, exactly): a 512^2 shadow map and 28 x 16 meshes.

Where the time goes: Mesa's software rasteriser (llvmpipe) spends it on triangles, not on
pixels. The scene is drawn several times (mirrored in the floor, lit, into the shadow map with
both faces, shadow-lit), with 4x multisampling, and at 64x64 a 28 x 16 capsule is ~1,800 mostly
sub-pixel triangles: "fine" frames take 6-16 ms to draw here (85-92% of a frame), against
~0.05 ms for the Python around the GL calls; "fast" ones 2-4 ms, 0.2-0.5 grey levels apart from
"fine" ones on average, at body outlines and their shading (scripts/dmcs_render_profile.py;
docs/scaling.md, "DMCS generation"). The XML's 2048^2 shadow map would change pixels by < 0.05
grey levels on average against 512^2 and take 1.5-3x longer. `shadows=False` is faster still but
visibly different (no shadows).

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

Speed: `python scripts/dmcs_render_profile.py` (frames/s per task and the time of a frame,
stage by stage, in a rendering process) and `python -m video_structure.data.dmcs_generator`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import time
import traceback
import weakref
import zlib
from typing import Dict, Optional

# Must happen before dm_control is imported (it picks the GL backend at import time).
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from video_structure.data import worker_pipe  # noqa: E402

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
MIN_NUM_FRAMES = 2  # At least one transition.

# Rendering settings (see "Rendering" in the module docstring), set in the model before its
# renderer is made: the shadow map's size and the tessellation of MuJoCo's built-in meshes
# (slices around their axis, stacks along it), whose defaults (and the XMLs') are 2048, 28, 16;
# and the spacing in metres of the grid the floor is drawn with (per-vertex lighting), in the
# tasks whose fixed camera sees their whole floor (0.2 in their XMLs; None: the XML's).
RENDER_DETAILS = {
    "fast": {"shadowsize": 256, "numslices": 12, "numstacks": 6, "floor_grid": 0.4},
    "fine": {"shadowsize": 512, "numslices": 28, "numstacks": 16, "floor_grid": None},
}
DEFAULT_RENDER_DETAIL = "fast"
FLOOR_GRID_TASKS = ("acrobot_swingup", "cartpole_balance")

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


def check_render_detail(render_detail: str, caller: str = "dmcs") -> str:
  """Returns `render_detail` if it names RENDER_DETAILS, else raises ValueError."""
  if not isinstance(render_detail, str) or render_detail not in RENDER_DETAILS:
    raise ValueError(f"{caller}: render_detail must be one of {', '.join(RENDER_DETAILS)}, "
                     f"got {render_detail!r}.")
  return render_detail


def _configure_rendering(physics, image_size: int, render_detail: str,
                         task: Optional[str]) -> None:
  """Offscreen framebuffer of the frame's size, shadow map, mesh tessellation and floor grid.

  MuJoCo reads them when a renderer's context is made from the model (`mujoco.MjrContext`).
  A plane's third size is its grid's spacing, used only for drawing it.
  """
  model = physics.model
  model.vis.global_.offwidth = image_size
  model.vis.global_.offheight = image_size
  detail = RENDER_DETAILS[render_detail]
  for name in ("shadowsize", "numslices", "numstacks"):
    setattr(model.vis.quality, name, detail[name])
  if detail["floor_grid"] is not None and task in FLOOR_GRID_TASKS:
    model.geom_size[model.name2id("floor", "geom"), 2] = detail["floor_grid"]


def _check_rendering_allowed(caller: str) -> None:
  """Raises instead of letting Mesa crash the process (see "TensorFlow" in the docstring)."""
  if "tensorflow" in sys.modules:
    raise RuntimeError(
        f"{caller}: cannot render in a process that has imported TensorFlow: Mesa's software "
        "renderer would call TensorFlow's copy of LLVM and crash (segmentation fault). Use "
        "dmcs_generator.DmcsGenerator(in_process=False) (the default), which renders in a "
        "worker process.")


class _Camera:
  """Camera 0 of a physics, drawn by its own `mujoco.Renderer` (own EGL and MuJoCo contexts).

  Made once and reused: a renderer costs ~0.1 s to make (context, textures, meshes) and a
  frame 2-16 ms to draw. Not in a process that has imported TensorFlow.
  """

  def __init__(self, physics, image_size: int, shadows: bool, render_detail: str,
               task: Optional[str] = None):
    import mujoco  # pylint: disable=import-outside-toplevel
    _configure_rendering(physics, image_size, render_detail, task)
    self._model = physics.model.ptr
    self._data = physics.data.ptr
    self.renderer = mujoco.Renderer(self._model, height=image_size, width=image_size)
    self.renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = bool(shadows)
    self._camera = mujoco.MjvCamera()
    self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
    self._camera.fixedcamid = CAMERA_ID
    _OPEN_CAMERAS.add(self)
    _register_exit_hook()

  def update_scene(self) -> None:
    """Copies the physics' current state into the scene (`mujoco.mjv_updateScene`)."""
    self.renderer.update_scene(self._data, camera=self._camera)

  def draw(self, out: np.ndarray) -> np.ndarray:
    """Draws the scene into out, uint8 [S, S, 3] (rendering and reading the pixels back)."""
    return self.renderer.render(out=out)

  def render(self, out: Optional[np.ndarray] = None) -> np.ndarray:
    """The physics' current state: uint8 [S, S, 3] (into `out` if given)."""
    if out is None:
      out = np.empty((self.renderer.height, self.renderer.width, 3), np.uint8)
    self.update_scene()
    return self.draw(out)

  def close(self) -> None:
    # mujoco.Renderer.close (and its __del__) frees its MuJoCo context (textures, framebuffers,
    # meshes) in whatever GL context is current: make that its own, not another renderer's
    # (whose objects have the same names and would be deleted instead).
    gl_context = getattr(self.renderer, "_gl_context", None)
    if gl_context is not None and getattr(self.renderer, "_mjr_context", None) is not None:
      gl_context.make_current()
    self.renderer.close()
    _OPEN_CAMERAS.discard(self)

  def __del__(self):
    # Before the renderer's own __del__ (see close).
    with contextlib.suppress(Exception):
      self.close()


# Cameras not closed yet, closed at exit before mujoco's EGL display is terminated: atexit runs
# its callbacks in reverse order, and mujoco registers the display's when it makes the first
# renderer, before `_register_exit_hook` is first called. (Freeing a context after that fails.)
_OPEN_CAMERAS: "weakref.WeakSet[_Camera]" = weakref.WeakSet()
_EXIT_HOOK_REGISTERED = False


def _close_open_cameras() -> None:
  for camera in list(_OPEN_CAMERAS):
    camera.close()


def _register_exit_hook() -> None:
  global _EXIT_HOOK_REGISTERED  # pylint: disable=global-statement
  if not _EXIT_HOOK_REGISTERED:
    atexit.register(_close_open_cameras)
    _EXIT_HOOK_REGISTERED = True


class _TaskRenderer:
  """One environment of a task with its camera, reused across sequences.

  `step` and `reward` are `environment.step` without the observation (see "Simulation" in the
  module docstring).
  """

  def __init__(self, task: str, image_size: int, shadows: bool, render_detail: str):
    self.environment = load_environment(task)  # Imports dm_control.
    from dm_control.rl import control  # pylint: disable=import-outside-toplevel
    self.physics = self.environment.physics
    self.task = self.environment.task
    self.n_sub_steps = control.compute_n_steps(self.environment.control_timestep(),
                                               self.physics.timestep())
    self.camera = _Camera(self.physics, image_size, shadows, render_detail, task)
    action_spec = self.environment.action_spec()
    self.action_minimum = np.asarray(action_spec.minimum, np.float64)
    self.action_maximum = np.asarray(action_spec.maximum, np.float64)

  def reset(self, environment_seed_value: Optional[int] = None) -> None:
    """A new episode; reseeding the task's RandomState in place first makes it identical to
    the first episode of a fresh environment created with that seed."""
    if environment_seed_value is not None:
      self.task.random.seed(environment_seed_value)
    self.environment.reset()

  def step(self, action: np.ndarray) -> None:
    """One control step with `action` ([A]): `environment.step` up to its reward."""
    self.task.before_step(action, self.physics)
    self.physics.step(self.n_sub_steps)
    self.task.after_step(self.physics)

  def reward(self) -> float:
    """The task's reward in the current state (what `environment.step` returns with it)."""
    return self.task.get_reward(self.physics)

  def render(self, out: Optional[np.ndarray] = None) -> np.ndarray:
    """The current state drawn by camera 0: uint8 [H, W, 3] (into `out` if given)."""
    return self.camera.render(out)

  def close(self) -> None:
    self.camera.close()
    self.environment.close()


def render_frame(physics, task: Optional[str] = None, image_size: int = IMAGE_SIZE,
                 shadows: bool = True, render_detail: str = DEFAULT_RENDER_DETAIL) -> np.ndarray:
  """Renders a physics state the way the generator does: uint8 [image_size, image_size, 3].

  In-process (not in a process that has imported TensorFlow), with a renderer made for this
  call (~0.1 s); the physics' model gets the generator's rendering settings, those of `task`
  (its floor's grid, `RENDER_DETAILS`) when given.
  """
  _check_rendering_allowed("render_frame")
  image_size = _check_int("image_size", image_size, 8, "render_frame")
  check_render_detail(render_detail, "render_frame")
  if task is not None:
    check_task(task, "render_frame")
  camera = _Camera(physics, image_size, shadows, render_detail, task)
  try:
    return camera.render()
  finally:
    camera.close()


def replay_frames(task: str, environment_seed_value: int, actions, action_repeat: int,
                  image_size: int = IMAGE_SIZE, shadows: bool = True,
                  render_detail: str = DEFAULT_RENDER_DETAIL) -> np.ndarray:
  """Replays actions in a fresh environment and renders every state, in-process.

  Independent of the generator's loop (a new environment and renderer per call, and
  `environment.step` with its observations), for checking stored data: the environment is
  created with `environment_seed_value`, reset, and each action is held for `action_repeat`
  control steps.

  Args:
    actions: [N, A] actions (e.g. a sequence's warm-up actions followed by its actions).

  Returns:
    uint8 [N + 1, S, S, 3]: the state after reset, then the state after each action.
  """
  _check_rendering_allowed("replay_frames")
  actions = _check_actions(actions, task, "replay_frames")
  image_size = _check_int("image_size", image_size, 8, "replay_frames")
  check_render_detail(render_detail, "replay_frames")
  environment = load_environment(task, int(environment_seed_value))
  camera = None
  try:
    camera = _Camera(environment.physics, image_size, shadows, render_detail, task)
    environment.reset()
    frames = np.empty((len(actions) + 1, image_size, image_size, 3), np.uint8)
    camera.render(frames[0])
    for t, action in enumerate(actions):
      for _ in range(action_repeat):
        environment.step(action)
      camera.render(frames[t + 1])
  finally:
    if camera is not None:
      camera.close()
    environment.close()
  return frames


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


class Stopwatch:
  """Seconds spent per stage of a loop: `lap(stage)` adds the time since the previous lap."""

  def __init__(self):
    self.seconds: Dict[str, float] = {}
    self._last = time.perf_counter()

  def start(self) -> None:
    """The next lap starts now."""
    self._last = time.perf_counter()

  def lap(self, stage: str) -> None:
    now = time.perf_counter()
    self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
    self._last = now


def _no_lap(stage: str) -> None:
  del stage


class _LocalGenerator:
  """The in-process generator: one environment and renderer per task, reset and reseeded per
  sequence.

  Reusing them gives exactly the data of fresh ones and avoids rebuilding the model and its
  GL context per sequence (~0.5 s).
  """

  def __init__(self, image_size: int, shadows: bool,
               render_detail: str = DEFAULT_RENDER_DETAIL):
    _check_rendering_allowed("DmcsGenerator(in_process=True)")
    self.image_size = image_size
    self.shadows = shadows
    self.render_detail = check_render_detail(render_detail, "DmcsGenerator")
    self._renderers: Dict[str, _TaskRenderer] = {}

  def close(self) -> None:
    for renderer in self._renderers.values():
      renderer.close()
    self._renderers.clear()

  def task_renderer(self, task: str) -> _TaskRenderer:
    """The task's environment and camera, made at the task's first sequence."""
    if task not in self._renderers:
      self._renderers[task] = _TaskRenderer(task, self.image_size, self.shadows,
                                            self.render_detail)
    return self._renderers[task]

  def generate(self, task, index, seed, num_frames, action_repeat, max_warmup_steps,
               stopwatch: Optional[Stopwatch] = None) -> dict:
    """See DmcsGenerator.generate (arguments already validated). With a `stopwatch`, the
    time of each stage is added to it: setup (the task's environment and renderer, at its first
    sequence), reset, actions (drawing them), warmup, scene (`mjv_updateScene`), draw (rendering
    and reading the pixels back), physics and reward (`_TaskRenderer.step`, `.reward`)."""
    lap = _no_lap
    if stopwatch is not None:
      stopwatch.start()
      lap = stopwatch.lap
    renderer = self.task_renderer(task)
    lap("setup")
    renderer.reset(environment_seed(seed, index, task))
    lap("reset")

    rng = action_generator(seed, index, task)
    warmup_steps = int(rng.integers(0, max_warmup_steps + 1))
    low, high = renderer.action_minimum, renderer.action_maximum
    # Warm-up actions are drawn first, then the recorded ones, so a longer sequence with
    # the same key extends a shorter one. Cast to float32 before use: the stored actions are
    # exactly the applied ones.
    warmup_actions = rng.uniform(low, high, size=(warmup_steps, low.size)).astype(np.float32)
    actions = rng.uniform(low, high, size=(num_frames, low.size)).astype(np.float32)
    lap("actions")
    for action in warmup_actions:
      for _ in range(action_repeat):
        renderer.step(action)
    lap("warmup")

    camera = renderer.camera
    frames = np.empty((num_frames, self.image_size, self.image_size, 3), np.uint8)
    rewards = np.zeros(num_frames, np.float64)
    for t in range(num_frames):
      camera.update_scene()
      lap("scene")
      camera.draw(frames[t])
      lap("draw")
      for _ in range(action_repeat):
        renderer.step(actions[t])
        lap("physics")
        rewards[t] += renderer.reward()
        lap("reward")
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
def _worker_main() -> None:
  """Serves ("generate" | "replay_frames", kwargs) requests until stdin closes: messages
  (`worker_pipe`) over stdin (requests) and a duplicate of the original stdout (replies)."""
  replies = os.fdopen(os.dup(1), "wb")
  # Anything else printed (by Python or C code) goes to stderr, not into the replies.
  os.dup2(2, 1)
  sys.stdout = sys.stderr
  requests = sys.stdin.buffer
  local = None
  while True:
    try:
      method, kwargs = worker_pipe.receive(requests)
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
    worker_pipe.send(replies, reply)
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
