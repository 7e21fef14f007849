"""Tests of the DeepMind Control Suite generator and its TFDS builder (tiny sizes)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests import helpers
from video_structure.data import dmcs
from video_structure.data import dmcs_generator
from video_structure.data import tfds_builders
from video_structure.data.builders import dmcs as dmcs_builder
from tests.data import test_parallel_generation

NUM_FRAMES = 5


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
    dmcs.render_frame(environment.physics)
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


def test_bad_image_size_and_unknown_task_helpers():
  with pytest.raises(ValueError, match=r"image_size must be an integer >= 8, got 4"):
    dmcs_generator.DmcsGenerator(image_size=4)
  with pytest.raises(ValueError, match=r"unknown task 'pendulum_swingup'"):
    dmcs.environment_seed(0, 0, "pendulum_swingup")


@pytest.mark.slow
def test_generation_benchmark_reports_per_task_rates():
  results = dmcs_generator.generation_benchmark(tasks=("reacher_easy",), num_sequences=1,
                                                num_frames=3)
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
  started = test_parallel_generation.record_started_workers(monkeypatch)
  one = _prepare_with_workers(tmp_path / "one", config, 1)
  two = _prepare_with_workers(tmp_path / "two", config, 2)
  assert len(started) == 2  # Train: 2 chunks; test: 1 chunk, made in this process.
  for split, count in (("train", 4), ("test", 2)):
    records = test_parallel_generation.stored_records(two, split)
    assert len(records) == count
    assert records == test_parallel_generation.stored_records(one, split)
    arrays = helpers.split_arrays(two, split)
    np.testing.assert_array_equal(arrays["sequence_index"], np.arange(count))
    assert [task.decode() for task in arrays["task"]] == ["cartpole_balance", "reacher_easy"] * (
        count // 2)
  assert not np.array_equal(helpers.split_arrays(two, "train")["image"][0],
                            helpers.split_arrays(two, "train")["image"][2])


def _prepare_with_workers(data_dir, config, num_workers):
  return tfds_builders.prepare(dmcs_builder.Builder, data_dir, config, num_workers=num_workers)


def test_predefined_configs():
  configs = dmcs_builder.Builder.builder_configs
  assert dmcs_builder.Builder.DEFAULT_CONFIG_NAME == "cpu"
  assert set(configs) == {"tiny", "cpu", "cpu_reward", "paper"}
  for config in configs.values():
    config.validate()
    assert tuple(config.tasks) == dmcs.TASKS
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
