"""Tests of the DeepMind Control Suite generator and its TFDS builder (tiny sizes)."""

import functools
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests import helpers
from video_structure.data import dmcs
from video_structure.data import dmcs_generator
from video_structure.data import tfds_builders
from video_structure.data.builders import dmcs as dmcs_builder
from tests.data import generation_helpers

NUM_FRAMES = 5
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def generator():
  """One generator (one cached environment per task) shared by the module's tests."""
  with dmcs_generator.DmcsGenerator() as shared:
    yield shared


@pytest.fixture(scope="module")
def sequences(generator):
  """Sequence index 3 (seed 0, no warm-up) of every task."""
  return {task: generator.generate(task, index=3, seed=0, num_frames=NUM_FRAMES)
          for task in dmcs.TASKS}


# ----------------------------------------------------------------------------- constants


def test_constants_match_the_environments():
  assert dmcs.TASKS == ("acrobot_swingup", "cartpole_balance", "cheetah_run", "reacher_easy",
                        "walker_stand", "walker_walk")
  assert dmcs.MAX_ACTION_DIM == max(dmcs.ACTION_DIMS.values()) == 6
  for task in dmcs.TASKS:
    environment = dmcs.load_environment(task, 0)
    spec = environment.action_spec()
    assert spec.shape == (dmcs.ACTION_DIMS[task],), task
    np.testing.assert_array_equal(spec.minimum, -1.0)
    np.testing.assert_array_equal(spec.maximum, 1.0)
    assert environment.control_timestep() == pytest.approx(dmcs.CONTROL_TIMESTEP_S[task])
    environment.close()


@pytest.mark.slow
def test_mujoco_gl_default_respects_the_users_value():
  code = ("import os; from video_structure.data import dmcs; "
          "print(os.environ['MUJOCO_GL'], os.environ['LP_NUM_THREADS'])")
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  environment = {key: value for key, value in os.environ.items()
                 if key not in ("MUJOCO_GL", "LP_NUM_THREADS")}
  default = subprocess.run([sys.executable, "-c", code], cwd=root, env=environment,
                           capture_output=True, text=True, check=True)
  assert default.stdout.split() == ["egl", "1"]
  users = subprocess.run([sys.executable, "-c", code], cwd=root,
                         env=dict(environment, MUJOCO_GL="osmesa", LP_NUM_THREADS="2"),
                         capture_output=True, text=True, check=True)
  assert users.stdout.split() == ["osmesa", "2"]


# ----------------------------------------------------------------------------- generator


@pytest.mark.slow
@pytest.mark.parametrize("task", dmcs.TASKS)
def test_shapes_dtypes_and_ranges(sequences, task):
  sequence = sequences[task]
  repeat = dmcs.DEFAULT_ACTION_REPEAT[task]
  assert sequence["image"].shape == (NUM_FRAMES, 64, 64, 3)
  assert sequence["image"].dtype == np.uint8
  assert sequence["action"].shape == (NUM_FRAMES, dmcs.ACTION_DIMS[task])
  assert sequence["action"].dtype == np.float32
  assert sequence["reward"].shape == (NUM_FRAMES,)
  assert sequence["reward"].dtype == np.float32
  assert sequence["task"] == task
  assert dmcs.TASKS[sequence["task_label"]] == task
  assert sequence["warmup_steps"] == 0 and sequence["action_repeat"] == repeat
  # Actions within the bounds [-1, 1], and actually random (not constant).
  assert np.all(np.abs(sequence["action"]) <= 1.0)
  assert np.all(np.std(sequence["action"], axis=0) > 0.05)
  # Per-control-step rewards are in [0, 1]; the stored reward sums `repeat` of them.
  assert np.all(sequence["reward"] >= 0.0) and np.all(sequence["reward"] <= repeat)
  # A real picture (not blank) that changes from frame to frame.
  assert sequence["image"].std() > 10.0
  assert np.abs(np.diff(sequence["image"].astype(np.int64), axis=0)).sum(axis=(1, 2, 3)).min() > 0


@pytest.mark.slow
def test_dense_rewards_are_nonzero_where_expected(sequences):
  # Right after a reset, cartpole balance starts near upright and the walker near standing
  # height, so their dense rewards are clearly positive.
  assert sequences["cartpole_balance"]["reward"].min() > 0.5
  assert sequences["walker_stand"]["reward"].min() > 0.05


@pytest.mark.slow
def test_deterministic_and_independent_of_generation_order(generator, sequences):
  # A fresh generator that makes only this sequence gives exactly the shared generator's
  # result (which had generated other sequences of the same task before).
  again = dmcs_generator.generate_sequence("reacher_easy", index=3, seed=0, num_frames=NUM_FRAMES)
  for key in ("image", "action", "reward"):
    np.testing.assert_array_equal(again[key], sequences["reacher_easy"][key], err_msg=key)
  other_seed = generator.generate("reacher_easy", index=3, seed=1, num_frames=NUM_FRAMES)
  other_index = generator.generate("reacher_easy", index=4, seed=0, num_frames=NUM_FRAMES)
  for other in (other_seed, other_index):
    assert not np.array_equal(other["action"], sequences["reacher_easy"]["action"])
    assert not np.array_equal(other["image"][0], sequences["reacher_easy"]["image"][0])
  # The same (seed, index) in two tasks is seeded differently (the task name is in the key).
  assert not np.array_equal(sequences["walker_stand"]["action"],
                            sequences["walker_walk"]["action"])


@pytest.mark.slow
def test_longer_sequence_extends_shorter(generator, sequences):
  longer = generator.generate("cheetah_run", index=3, seed=0, num_frames=NUM_FRAMES + 2)
  for key in ("image", "action", "reward"):
    np.testing.assert_array_equal(longer[key][:NUM_FRAMES], sequences["cheetah_run"][key])


@pytest.mark.slow
@pytest.mark.parametrize("task", ["cartpole_balance", "walker_walk"])
def test_alignment_by_replay_in_a_fresh_environment(generator, sequences, task):
  """frame[t + 1] is the state after action[t]; reward[t] is received for action[t]."""
  sequence = sequences[task]
  repeat = dmcs.DEFAULT_ACTION_REPEAT[task]
  seed_value = dmcs.environment_seed(0, 3, task)
  # Rewards: stepping a fresh environment here (simulation needs no rendering).
  environment = dmcs.load_environment(task, seed_value)
  environment.reset()
  rewards = [sum(environment.step(action).reward for _ in range(repeat))
             for action in sequence["action"]]
  environment.close()
  np.testing.assert_array_equal(np.float32(rewards), sequence["reward"])
  # Frames: a fresh environment in the worker renders the state after each action.
  replayed = generator.replay_frames(task, seed_value, sequence["action"], repeat)
  assert replayed.shape == (NUM_FRAMES + 1, 64, 64, 3)
  np.testing.assert_array_equal(replayed[:NUM_FRAMES], sequence["image"])
  # Off by one frame would not match.
  assert not np.array_equal(replayed[1:NUM_FRAMES + 1], sequence["image"])


@pytest.mark.slow
def test_warmup_steps_and_action_draw_order(generator):
  task, seed, index, max_warmup = "acrobot_swingup", 2, 7, 20
  sequence = generator.generate(task, index=index, seed=seed, num_frames=3,
                                max_warmup_steps=max_warmup)
  # The documented draw order: warm-up length, warm-up actions, recorded actions.
  rng = dmcs.action_generator(seed, index, task)
  warmup_steps = int(rng.integers(0, max_warmup + 1))
  warmup_actions = rng.uniform(-1.0, 1.0, size=(warmup_steps, 1)).astype(np.float32)
  np.testing.assert_array_equal(sequence["action"],
                                rng.uniform(-1.0, 1.0, size=(3, 1)).astype(np.float32))
  assert sequence["warmup_steps"] == warmup_steps == 11  # This key's draw (exact value).
  # Replaying the warm-up and the actions reaches the same frames.
  replayed = generator.replay_frames(
      task, dmcs.environment_seed(seed, index, task),
      np.concatenate([warmup_actions, sequence["action"]]), dmcs.DEFAULT_ACTION_REPEAT[task])
  np.testing.assert_array_equal(replayed[warmup_steps:warmup_steps + 3], sequence["image"])
  no_warmup = generator.generate(task, index=index, seed=seed, num_frames=3)
  assert not np.array_equal(no_warmup["image"][0], sequence["image"][0])


def test_in_process_rendering_is_refused_when_tensorflow_is_loaded():
  import tensorflow  # noqa: F401  (already imported by conftest; explicit here)
  with pytest.raises(RuntimeError, match=r"TensorFlow.*in_process=False"):
    dmcs_generator.DmcsGenerator(in_process=True)
  environment = dmcs.load_environment("reacher_easy", 0)
  with pytest.raises(RuntimeError, match=r"render_frame: cannot render.*TensorFlow"):
    dmcs.render_frame(environment.physics, "reacher_easy")
  environment.close()


@pytest.mark.slow
def test_worker_errors_come_back_as_clear_exceptions(generator):
  # Arguments are checked before the worker is asked.
  with pytest.raises(ValueError, match=r"unknown task 'cartpole_swingup'"):
    generator.replay_frames("cartpole_swingup", 0, np.zeros((1, 1)), 1)
  with pytest.raises(ValueError, match=r"actions of cartpole_balance must have shape \(N, 1\)"):
    generator.replay_frames("cartpole_balance", 0, np.zeros((1, 3)), 1)
  # A failure inside the worker comes back with the worker's traceback.
  with pytest.raises(ValueError, match=r"(?s)unknown request 'no_such_request'.*DMCS worker"):
    generator._started_backend().call("no_such_request")  # pylint: disable=protected-access


@pytest.mark.slow
def test_action_repeat_setting(generator):
  single = generator.generate("walker_stand", index=0, seed=0, num_frames=3, action_repeat=1)
  assert single["action_repeat"] == 1
  assert np.all(single["reward"] <= 1.0)


@pytest.mark.slow
def test_no_shadows_option_renders_the_same_scene_differently():
  with dmcs_generator.DmcsGenerator(shadows=False) as flat:
    unshadowed = flat.generate("walker_stand", index=3, seed=0, num_frames=2)
  with dmcs_generator.DmcsGenerator(shadows=True) as shaded:
    shadowed = shaded.generate("walker_stand", index=3, seed=0, num_frames=2)
  np.testing.assert_array_equal(unshadowed["action"], shadowed["action"])
  difference = np.abs(unshadowed["image"].astype(np.int64) - shadowed["image"])
  assert 0.5 < difference.mean() < 30.0


@pytest.mark.slow
@pytest.mark.parametrize("kwargs, message", [
    (dict(task="walker_run"), r"unknown task 'walker_run'.*acrobot_swingup"),
    (dict(num_frames=1), r"num_frames must be an integer >= 2, got 1"),
    (dict(action_repeat=0), r"action_repeat must be an integer >= 1"),
    (dict(seed=-1), r"seed must be an integer >= 0"),
    (dict(index=2.0), r"index must be an integer >= 0"),
    (dict(max_warmup_steps=-5), r"max_warmup_steps must be an integer >= 0"),
])
def test_generate_rejects_bad_arguments(generator, kwargs, message):
  arguments = dict(task="cartpole_balance", index=0, seed=0, num_frames=3)
  arguments.update(kwargs)
  with pytest.raises(ValueError, match=message):
    generator.generate(**arguments)


def test_render_details():
  assert dmcs.DEFAULT_RENDER_DETAIL == "fast"
  assert dmcs.RENDER_DETAILS == {
      "fast": {"shadowsize": 256, "numslices": 12, "numstacks": 6, "floor_grid": 0.4},
      "fine": {"shadowsize": 512, "numslices": 28, "numstacks": 16, "floor_grid": None},
  }
  assert dmcs.FLOOR_GRID_TASKS == ("acrobot_swingup", "cartpole_balance")
  with pytest.raises(ValueError, match=r"DmcsGenerator: render_detail must be one of fast, "
                                       r"fine, got 'high'"):
    dmcs_generator.DmcsGenerator(render_detail="high")


def test_configure_rendering_sets_the_models_settings():
  # Simulation only (no renderer is made here): the settings land in the model.
  for task, detail, floor_grid in (("cartpole_balance", "fast", 0.4),
                                   ("cartpole_balance", "fine", 0.2),
                                   ("walker_walk", "fast", 0.2)):
    environment = dmcs.load_environment(task, 0)
    model = environment.physics.model
    # pylint: disable-next=protected-access
    dmcs._configure_rendering(environment.physics, 32, detail, task)
    assert (model.vis.global_.offwidth, model.vis.global_.offheight) == (32, 32)
    quality = model.vis.quality
    expected = dmcs.RENDER_DETAILS[detail]
    assert (quality.shadowsize, quality.numslices, quality.numstacks) == (
        expected["shadowsize"], expected["numslices"], expected["numstacks"])
    assert model.geom_size[model.name2id("floor", "geom"), 2] == pytest.approx(floor_grid)
    environment.close()


def test_stopwatch_adds_the_time_since_the_previous_lap(monkeypatch):
  clock = iter([10.0, 11.5, 12.0, 14.5, 20.0, 20.25])
  monkeypatch.setattr(dmcs.time, "perf_counter", lambda: next(clock))
  stopwatch = dmcs.Stopwatch()  # 10.0
  stopwatch.lap("draw")  # 11.5
  stopwatch.lap("physics")  # 12.0
  stopwatch.lap("draw")  # 14.5
  stopwatch.start()  # 20.0: the time in between counts nowhere.
  stopwatch.lap("physics")  # 20.25
  assert stopwatch.seconds == {"draw": 4.0, "physics": 0.75}


def _run_without_tensorflow(code: str) -> str:
  """Runs `code` in a fresh interpreter (renders in-process: no TensorFlow there)."""
  result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  return result.stdout


@pytest.mark.slow  # Renders in a subprocess.
def test_fine_render_detail_gives_the_frames_of_version_1_0_0():
  """Version 1.0.0 rendered with dm_control's Camera on a 512^2 shadow map: `fine` is exactly
  that, through one mujoco.Renderer per task (cartpole: a task whose floor `fast` changes)."""
  output = _run_without_tensorflow("""
      import numpy as np
      from video_structure.data import dmcs
      from dm_control.mujoco import engine
      for task in ("cartpole_balance", "walker_walk"):
        states, frames = [], []
        environment = dmcs.load_environment(task, 5)
        environment.reset()
        rng = np.random.default_rng(0)
        for _ in range(4):
          for _ in range(3):
            environment.step(rng.uniform(-1, 1, dmcs.ACTION_DIMS[task]))
          states.append(environment.physics.get_state().copy())
        # Version 1.0.0's rendering: dm_control's camera on the XML's meshes, 512^2 shadows.
        physics = environment.physics
        physics.model.vis.global_.offwidth = physics.model.vis.global_.offheight = 64
        physics.model.vis.quality.shadowsize = 512
        camera = engine.Camera(physics, height=64, width=64, camera_id=0)
        for state in states:
          with physics.reset_context():
            physics.set_state(state)
          frames.append(np.array(camera.render()))
        # (Replacing the previous task's renderers frees them while these exist: each must
        # free its own GL objects, not these.)
        renderers = {detail: dmcs._TaskRenderer(task, 64, True, detail)
                     for detail in ("fine", "fast")}
        rendered = {detail: [] for detail in renderers}
        for state in states:
          for detail, renderer in renderers.items():
            with renderer.physics.reset_context():
              renderer.physics.set_state(state)
            rendered[detail].append(renderer.render())
        difference = np.abs(np.int64(rendered["fast"]) - frames)
        print(task, np.array_equal(rendered["fine"], frames), difference.max() > 0,
              difference.mean() < 1.0)
      """)
  assert output.split("\n")[:2] == ["cartpole_balance True True True",
                                     "walker_walk True True True"]


@pytest.mark.slow
def test_fast_and_fine_share_everything_but_the_look():
  with dmcs_generator.DmcsGenerator(render_detail="fine") as fine:
    detailed = fine.generate("reacher_easy", index=3, seed=0, num_frames=3, max_warmup_steps=4)
  with dmcs_generator.DmcsGenerator() as fast:
    default = fast.generate("reacher_easy", index=3, seed=0, num_frames=3, max_warmup_steps=4)
  for key in ("action", "reward"):
    np.testing.assert_array_equal(default[key], detailed[key])
  assert default["warmup_steps"] == detailed["warmup_steps"] == 3  # This key's draw.
  difference = np.abs(default["image"].astype(np.int64) - detailed["image"])
  assert 0.05 < difference.mean() < 1.0


@pytest.mark.slow  # Renders in a subprocess.
def test_render_profile_script_prints_a_row_per_task():
  result = subprocess.run(
      [sys.executable, os.path.join("scripts", "dmcs_render_profile.py"), "--tasks",
       "reacher_easy", "walker_walk", "--num_sequences", "1", "--num_frames", "3",
       "--max_warmup_steps", "2"],
      cwd=ROOT, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert "render_detail 'fast': shadow map 256^2, meshes 12 slices x 6 stacks" in lines[0]
  assert "walker_walk       control step 25.0 ms = 10 x 2.50 ms physics steps, 2 control " \
         "steps per frame" in lines[2]
  header = lines[4].split()
  assert header[:4] == ["task", "worker", "f/s", "setup"]
  assert header[-11:] == ["reset", "warmup", "physics", "reward", "scene", "draw", "other",
                          "sum", "transfer", "encode", "obs."]
  for line, task in zip(lines[5:], ("reacher_easy", "walker_walk")):
    fields = line.split()
    assert fields[0] == task and fields[3] == "|"
    values = [float(field) for field in fields[1:3] + fields[4:]]
    assert len(values) == 13
    frames_per_second, setup, stages, total, extras = (values[0], values[1], values[2:9],
                                                       values[9], values[10:])
    assert frames_per_second > 0 and setup > 0
    assert all(value >= 0.0 for value in stages[:6] + extras)  # "other" is a difference.
    assert total == pytest.approx(sum(stages), abs=0.004)  # Rounded to 0.001 each.
    assert stages[5] > 0.3  # Drawing a 64x64 frame takes a while on llvmpipe.


def test_bad_image_size_and_unknown_task_helpers():
  with pytest.raises(ValueError, match=r"image_size must be an integer >= 8, got 4"):
    dmcs_generator.DmcsGenerator(image_size=4)
  with pytest.raises(ValueError, match=r"unknown task 'pendulum_swingup'"):
    dmcs.environment_seed(0, 0, "pendulum_swingup")


@pytest.mark.slow
def test_generation_benchmark_reports_per_task_rates():
  results = dmcs_generator.generation_benchmark(tasks=("reacher_easy",), num_sequences=1,
                                                num_frames=3, max_warmup_steps=5)
  row = results["reacher_easy"]
  assert row["frames"] == 3
  assert row["frames_per_second"] == pytest.approx(3 / row["seconds"])
  assert row["setup_seconds"] > 0


# ----------------------------------------------------------------------------- builder


def _prepare(data_dir, config):
  return tfds_builders.prepare(dmcs_builder.Builder, data_dir, config)


@pytest.fixture(scope="module")
def tiny_builder(tmp_path_factory):
  builder = _prepare(tmp_path_factory.mktemp("dmcs_tiny"), "tiny")
  assert builder.name == "dmcs"
  return builder


@pytest.fixture(scope="module")
def tiny_arrays(tiny_builder):
  return {split: helpers.split_arrays(tiny_builder, split) for split in ("train", "test")}


@pytest.mark.slow
def test_tiny_builder_reads_in_the_common_sequence_format(tiny_builder, tiny_arrays):
  sequences = list(tfds.as_numpy(tfds_builders.load_split(tiny_builder, "train")))
  assert set(sequences[0]) == {"image", "actions", "reward", "label"}
  arrays = tiny_arrays["train"]
  for key, stored in (("image", "image"), ("actions", "action"), ("reward", "reward"),
                      ("label", "task_label")):
    np.testing.assert_array_equal(np.stack([s[key] for s in sequences]), arrays[stored])


@pytest.mark.slow
def test_tiny_builder_shapes_dtypes_and_task_order(tiny_arrays):
  config = dmcs_builder.Builder.builder_configs["tiny"]
  length = config.sequence_length
  for split in ("train", "test"):
    arrays = tiny_arrays[split]
    assert arrays["image"].shape == (6, length, 64, 64, 3) and arrays["image"].dtype == np.uint8
    assert arrays["action"].shape == (6, length, 6) and arrays["action"].dtype == np.float32
    assert arrays["reward"].shape == (6, length) and arrays["reward"].dtype == np.float32
    np.testing.assert_array_equal(arrays["sequence_index"], np.arange(6))
    np.testing.assert_array_equal(arrays["task_label"], np.arange(6))
    assert [name.decode() for name in arrays["task"]] == list(dmcs.TASKS)
    assert np.all((arrays["warmup_steps"] >= 0) & (arrays["warmup_steps"] <= 3))
    for row, task in enumerate(dmcs.TASKS):
      dim = dmcs.ACTION_DIMS[task]
      assert np.all(np.abs(arrays["action"][row, :, :dim]) <= 1.0)
      assert np.all(arrays["action"][row, :, :dim] != 0.0)
      np.testing.assert_array_equal(arrays["action"][row, :, dim:], 0.0)


@pytest.mark.slow
def test_tiny_builder_content_matches_the_generator(tiny_arrays, generator):
  config = dmcs_builder.Builder.builder_configs["tiny"]
  for split, first_index in (("train", 0), ("test", dmcs_builder.TEST_FIRST_INDEX)):
    for row in (1, 4):  # cartpole_balance, walker_stand
      task = dmcs.TASKS[row]
      expected = generator.generate(task, index=first_index, seed=0,
                                    num_frames=config.sequence_length,
                                    max_warmup_steps=config.max_warmup_steps)
      arrays = tiny_arrays[split]
      np.testing.assert_array_equal(arrays["image"][row], expected["image"])
      np.testing.assert_array_equal(arrays["reward"][row], expected["reward"])
      np.testing.assert_array_equal(arrays["action"][row, :, :dmcs.ACTION_DIMS[task]],
                                    expected["action"])
      assert arrays["warmup_steps"][row] == expected["warmup_steps"]
  assert not np.array_equal(tiny_arrays["train"]["image"], tiny_arrays["test"]["image"])


@pytest.mark.slow  # Renders in several processes.
def test_workers_give_the_same_stored_data(tmp_path, monkeypatch):
  """1 and 2 worker processes (each chunk rendered by its own rendering process, with its own
  EGL context) store the same records in the same order."""
  monkeypatch.setattr(dmcs_builder, "GENERATION_CHUNK_SIZE", 2)
  config = dmcs_builder.DmcsConfig(name="small", tasks=("cartpole_balance", "reacher_easy"),
                                   num_train_per_task=2, num_test_per_task=1,
                                   sequence_length=3, max_warmup_steps=2, image_size=32)
  started = generation_helpers.record_started_workers(monkeypatch)
  one = _prepare_with_workers(tmp_path / "one", config, 1)
  two = _prepare_with_workers(tmp_path / "two", config, 2)
  assert len(started) == 2  # Train: 2 chunks; test: 1 chunk, made in this process.
  for split, count in (("train", 4), ("test", 2)):
    records = generation_helpers.stored_records(two, split)
    assert len(records) == count
    assert records == generation_helpers.stored_records(one, split)
    arrays = helpers.split_arrays(two, split)
    np.testing.assert_array_equal(arrays["sequence_index"], np.arange(count))
    assert [task.decode() for task in arrays["task"]] == ["cartpole_balance", "reacher_easy"] * (
        count // 2)
  assert not np.array_equal(helpers.split_arrays(two, "train")["image"][0],
                            helpers.split_arrays(two, "train")["image"][2])


def _record_rendering_processes(monkeypatch) -> list:
  """Makes DmcsGenerator record the rendering processes it starts; returns that list."""
  started = []

  class RecordingClient(dmcs_generator._WorkerClient):  # pylint: disable=protected-access
    def __init__(self, *args):
      super().__init__(*args)
      started.append(args)

  monkeypatch.setattr(dmcs_generator, "_WorkerClient", RecordingClient)
  return started


@pytest.mark.slow  # Renders in several processes.
def test_chunks_made_in_one_thread_share_one_rendering_process(monkeypatch, generator):
  started = _record_rendering_processes(monkeypatch)
  make_chunk = functools.partial(
      dmcs_builder._make_chunk,  # pylint: disable=protected-access
      tasks=("cartpole_balance", "reacher_easy"), first_index=0, image_size=64, shadows=True,
      render_detail="fast", seed=0, sequence_length=3, action_repeat=None, max_warmup_steps=2)
  try:
    examples = list(make_chunk(0, 3)) + list(make_chunk(3, 1))
    assert started == [(64, True, "fast")]
    # Another thread gets its own (a generator's pipe is not thread-safe).
    thread = threading.Thread(target=lambda: examples.extend(make_chunk(4, 1)))
    thread.start()
    thread.join()
    assert started == [(64, True, "fast")] * 2
    assert len(dmcs_builder._SHARED_GENERATORS) == 2  # pylint: disable=protected-access
  finally:
    dmcs_builder.close_shared_generators()
  assert not dmcs_builder._SHARED_GENERATORS  # pylint: disable=protected-access
  assert [key for key, _ in examples] == [0, 1, 2, 3, 4]
  # The same sequences as a generator of their own (the module's) makes.
  for key, example in examples:
    task = ("cartpole_balance", "reacher_easy")[key % 2]
    expected = generator.generate(task, index=key // 2, seed=0, num_frames=3,
                                  max_warmup_steps=2)
    np.testing.assert_array_equal(example["image"], expected["image"])
    np.testing.assert_array_equal(example["reward"], expected["reward"])


@pytest.mark.slow  # Renders.
def test_builder_stops_its_rendering_process_after_preparing(tmp_path, monkeypatch):
  started = _record_rendering_processes(monkeypatch)
  config = dmcs_builder.DmcsConfig(name="two_chunks", tasks=("acrobot_swingup",),
                                   num_train_per_task=3, num_test_per_task=1,
                                   sequence_length=2, image_size=16)
  monkeypatch.setattr(dmcs_builder, "GENERATION_CHUNK_SIZE", 2)
  _prepare_with_workers(tmp_path, config, 1)
  # Train (2 chunks) and test (1 chunk), made in this process: one rendering process.
  assert started == [(16, True, "fast")]
  assert not dmcs_builder._SHARED_GENERATORS  # pylint: disable=protected-access


def _prepare_with_workers(data_dir, config, num_workers):
  return tfds_builders.prepare(dmcs_builder.Builder, data_dir, config, num_workers=num_workers)


def test_version_and_release_notes():
  assert str(dmcs_builder.Builder.VERSION) == "1.1.0"
  assert set(dmcs_builder.Builder.RELEASE_NOTES) == {"1.0.0", "1.1.0"}
  assert "render_detail='fine' gives 1.0.0's frames exactly" in (
      dmcs_builder.Builder.RELEASE_NOTES["1.1.0"])


def test_predefined_configs():
  configs = dmcs_builder.Builder.builder_configs
  assert dmcs_builder.Builder.DEFAULT_CONFIG_NAME == "cpu"
  assert set(configs) == {"tiny", "cpu", "cpu_reward", "paper"}
  for config in configs.values():
    config.validate()
    assert tuple(config.tasks) == dmcs.TASKS
    assert config.settings()["render_detail"] == "fast"
  paper = configs["paper"]
  assert (paper.num_test_per_task, paper.sequence_length) == (10000, 20)
  # `cpu_reward` is `cpu` with more test sequences: same seed and rendering, so its test
  # split starts with `cpu`'s test sequences (per-task index TEST_FIRST_INDEX + i).
  cpu, reward = configs["cpu"].settings(), configs["cpu_reward"].settings()
  assert (reward["num_train_per_task"], reward["num_test_per_task"]) == (1, 250)
  for key in ("num_train_per_task", "num_test_per_task"):
    cpu.pop(key), reward.pop(key)
  assert cpu == reward


@pytest.mark.parametrize("settings, message", [
    (dict(tasks=("walker_walk", "humanoid_run")), r"unknown task 'humanoid_run'"),
    (dict(tasks=()), r"tasks must be a non-empty tuple"),
    (dict(tasks=("walker_walk", "walker_walk")), r"must not repeat"),
    (dict(sequence_length=1), r"sequence_length must be an integer >= 2, got 1"),
    (dict(num_train_per_task=0), r"num_train_per_task must be an integer >= 1"),
    (dict(action_repeat=0), r"action_repeat must be None .* or an integer >= 1"),
    (dict(max_warmup_steps=-1), r"max_warmup_steps must be an integer >= 0"),
    (dict(render_detail="high"), r"render_detail must be one of fast, fine, got 'high'"),
])
def test_bad_config_raises_a_clear_error(tmp_path, settings, message):
  arguments = dict(name="bad", num_train_per_task=1, num_test_per_task=1, sequence_length=3)
  arguments.update(settings)
  config = dmcs_builder.DmcsConfig(**arguments)
  with pytest.raises(ValueError, match=r"DmcsConfig 'bad': .*" + message):
    config.validate()
  # The builder checks the config before generating anything.
  with pytest.raises(ValueError, match=message):
    _prepare(tmp_path, config)
