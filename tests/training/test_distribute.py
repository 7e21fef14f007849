"""Training beyond one device: `video_structure/training/strategies.py`, the distributed parts of
`StructVRNN.train_step`, the workers' data sharding and `train.py --strategy` (chief-only
writing: test_checkpoints.py and test_run_dir.py).

Logical CPU devices must be configured before TensorFlow initialises, so every run with more than
one replica is a subprocess: a script splitting the CPU into two devices (`mirrored`), and two
`train.py` workers talking over loopback (`multi_worker`). Both are compared with one device at
the same global batch. To make that comparison exact up to float summation order, the model is
the deterministic Struct-RNN (`dynamics=rnn`, no latent samples) with scheduled sampling off, the
seeds are fixed, and the weights are compared after a few Adam steps.

Tolerances: |w_replicas - w_one_device| <= 1e-4 for every weight, and logged losses within a
relative 1e-5. Measured (docs/scaling.md, "Verification"): 2.4e-6 after 3 steps, while one Adam
step moves weights by up to ~2e-3; without the loss scaling and clipping order of `train_step`
the difference was 1.1e-2.
"""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import train
from tests import helpers
from video_structure.data import windows
from video_structure.training import checkpoints
from video_structure.training import strategies

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_SCRIPT = os.path.join(REPO_ROOT, "train.py")
WEIGHT_TOLERANCE = 1e-4
LOSS_RELATIVE_TOLERANCE = 1e-5
SUBPROCESS_TIMEOUT = 300  # Seconds; a hung collective must never hang the suite.

# A tiny deterministic model (see the module docstring): global batch 4 = 2 replicas x 2.
DETERMINISTIC = dict(batch_size=4, num_samples=1, dynamics="rnn",
                     scheduled_sampling_observed=0.0, scheduled_sampling_predicted=0.0)
NUM_STEPS = 2


def tiny_flags():
  return helpers.tiny_train_flags(num_steps=NUM_STEPS, **DETERMINISTIC) + ["--skip_final"]


def subprocess_environment(**extra):
  """The test's environment for a subprocess: unbuffered, quiet TensorFlow, no inherited
  TF_CONFIG, and the repository on PYTHONPATH (so that `video_structure` and `tests` import
  without an installed package)."""
  path = os.pathsep.join(p for p in [REPO_ROOT, os.environ.get("PYTHONPATH")] if p)
  environment = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2",
                     PYTHONPATH=path)
  environment.pop("TF_CONFIG", None)
  environment.update(extra)
  return environment


def run_subprocess(command, cwd, timeout=SUBPROCESS_TIMEOUT, **environment):
  """Runs `command`; kills it after `timeout` seconds. Returns (return code, output)."""
  process = subprocess.Popen(command, cwd=str(cwd), env=subprocess_environment(**environment),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  try:
    output, _ = process.communicate(timeout=timeout)
  finally:
    if process.poll() is None:
      process.kill()
      process.communicate()
  return process.returncode, output


def free_loopback_ports(count):
  sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
  try:
    for sock in sockets:
      sock.bind(("127.0.0.1", 0))
    return [sock.getsockname()[1] for sock in sockets]
  finally:
    for sock in sockets:
      sock.close()


def checkpoint_weights(path):
  model = checkpoints.load_checkpoint(path, helpers.tiny_config(**DETERMINISTIC).model)
  return model, [weight.numpy() for weight in model.weights]


def read_scalars(log_dir):
  scalars = {}
  for name in os.listdir(log_dir):
    for event in tf.compat.v1.train.summary_iterator(os.path.join(log_dir, name)):
      for value in event.summary.value:
        if value.tag.startswith("loss/"):
          scalars[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
  return scalars


# Strategy construction. ------------------------------------------------------------------------

def test_unknown_strategy_is_refused():
  with pytest.raises(ValueError, match=r"--strategy must be one of default, mirrored, "
                                       r"multi_worker, tpu, got 'horovod'"):
    strategies.make_strategy("horovod")


def test_num_cpu_devices_needs_a_replicating_strategy():
  with pytest.raises(ValueError, match=r"--num_cpu_devices applies to --strategy mirrored or "
                                       r"multi_worker, not 'default'"):
    strategies.make_strategy("default", num_cpu_devices=2)


def test_tpu_needs_an_address():
  with pytest.raises(ValueError, match=r"--strategy tpu needs --tpu"):
    strategies.make_strategy("tpu")
  with pytest.raises(ValueError, match=r"--tpu applies to --strategy tpu only"):
    strategies.make_strategy("mirrored", tpu="grpc://10.0.0.2:8470")


def test_default_strategy_is_one_chief_replica():
  strategy = strategies.make_strategy("default")
  assert strategy.num_replicas_in_sync == 1
  assert strategies.is_chief(strategy)
  assert strategies.num_workers(strategy) == 1 and strategies.worker_index(strategy) == 0
  assert strategies.describe(strategy) == "one device (default strategy)"


@pytest.mark.parametrize("text, message", [
    (None, r"--strategy multi_worker needs the TF_CONFIG environment variable"),
    ("{not json", r"TF_CONFIG is not valid JSON"),
    ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', r"TF_CONFIG needs a 'cluster'"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
     r"TF_CONFIG 'task' must name a type of the cluster \(\['worker'\]\)"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
     r"TF_CONFIG task index must be in \[0, 2\) for type 'worker', got 2"),
])
def test_malformed_tf_config_is_refused(text, message):
  environ = {} if text is None else {"TF_CONFIG": text}
  with pytest.raises(ValueError, match=message):
    strategies.parse_tf_config(environ)


def test_tf_config_is_parsed():
  environ = {"TF_CONFIG": json.dumps({"cluster": {"worker": ["h1:5000", "h2:5000"]},
                                      "task": {"type": "worker", "index": 1}})}
  assert strategies.parse_tf_config(environ) == ({"worker": ["h1:5000", "h2:5000"]}, "worker", 1)


def test_train_multi_worker_without_tf_config_stops(tmp_path, monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(ValueError, match=r"needs the TF_CONFIG environment variable"):
    train.main(["--run_dir", str(tmp_path / "run"), "--data_dir", str(tmp_path / "data"),
                "--strategy", "multi_worker"] + tiny_flags())
  assert not os.path.exists(tmp_path / "run")


# Data sharding between workers. ----------------------------------------------------------------

def _indexed_sequences(count=10, num_frames=20):
  """Sequence i: every pixel of every frame has value i + 1 (so a window names its sequence)."""
  images = np.zeros([count, num_frames, 8, 8, 3], np.uint8)
  for i in range(count):
    images[i] = i + 1
  return windows.dataset_from_arrays(images)


def _sequence_ids(batches, count):
  ids = []
  for batch in batches.take(count):
    ids += [int(round((float(v) + 0.5) * 255)) - 1 for v in batch["image"][:, 0, 0, 0, 0]]
  return ids


def test_sequence_sharding_gives_workers_disjoint_sequences():
  seen = []
  for index in range(2):
    batches = windows.make_windows_dataset(_indexed_sequences(), 4, 5, training=False,
                                           num_workers=2, worker_index=index,
                                           shard_policy="sequences")
    policy = batches.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.OFF
    seen.append(_sequence_ids(batches, 100))
  # 10 sequences of 20 frames, 5 windows of 4 each, batches of 5: worker 0 reads the even ones.
  assert sorted(set(seen[0])) == [0, 2, 4, 6, 8] and sorted(set(seen[1])) == [1, 3, 5, 7, 9]
  assert len(seen[0]) == len(seen[1]) == 25


def test_data_sharding_keeps_the_one_device_pipeline():
  one = windows.make_windows_dataset(_indexed_sequences(), 4, 4, training=True, seed=3)
  worker = windows.make_windows_dataset(_indexed_sequences(), 4, 4, training=True, seed=3,
                                        num_workers=2, worker_index=1)
  assert (worker.options().experimental_distribute.auto_shard_policy
          == tf.data.experimental.AutoShardPolicy.DATA)
  # Every worker draws the same seeded windows; tf.distribute keeps its slice of each batch.
  assert _sequence_ids(one, 6) == _sequence_ids(worker, 6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(shard_policy="files"), r"shard_policy must be one of \('data', 'sequences'\)"),
    (dict(num_workers=0), r"num_workers must be a positive int, got 0"),
    (dict(num_workers=2, worker_index=2), r"worker_index must be an int in \[0, 2\), got 2"),
    (dict(num_workers=2, worker_index=0, seed=None),
     r"shard_policy 'data' with 2 workers needs a seed"),
])
def test_bad_sharding_arguments_are_refused(kwargs, message):
  kwargs = dict(dict(training=True, seed=0), **kwargs)
  with pytest.raises(ValueError, match=message):
    windows.make_windows_dataset(_indexed_sequences(), 4, 4, **kwargs)


# Two logical CPU devices under `mirrored`. -----------------------------------------------------

MIRRORED_SCRIPT = r'''
import json, sys
from video_structure.training import strategies
strategies.configure_cpu_devices(2)  # Before TensorFlow initialises.
import numpy as np
import tensorflow as tf
from tests import helpers
from video_structure.data import windows as windows_lib
from video_structure.model import replicas
from video_structure.training import builder, checkpoints

overrides, steps, work_dir = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
run_config = helpers.tiny_config(**overrides)
config = run_config.model
images = np.random.default_rng(0).integers(0, 256, [8, 20, 64, 64, 3], dtype=np.uint8)

def train(strategy):
  with strategy.scope():
    model = builder.build_model(run_config)
  windows = windows_lib.make_windows_dataset(
      windows_lib.dataset_from_arrays(images), config.sequence_length, config.batch_size,
      training=True, seed=0)
  initial = [w.numpy() for w in model.weights]
  history = model.fit(windows.map(lambda batch: batch["image"]), epochs=1,
                      steps_per_epoch=steps, verbose=0)
  return model, initial, {k: float(v[-1]) for k, v in history.history.items()}

single, initial, single_logs = train(tf.distribute.get_strategy())
strategy = strategies.make_strategy("mirrored")
mirrored, _, mirrored_logs = train(strategy)
local = lambda variable: [v.numpy() for v in strategy.experimental_local_results(
    getattr(variable, "value", variable))]
# Every mirrored variable (weights, optimizer slots, step, seed state) equal on both replicas.
state = mirrored.weights + mirrored.optimizer.variables + [mirrored.dynamics.seed_generator.state]
replica_difference = max(float(np.max(np.abs(copies[1].astype(np.float64) - copies[0])))
                         for copies in map(local, state))
replica_copies = min(len(local(v)) for v in state)
weight_difference = max(float(np.max(np.abs(a.numpy() - local(b)[0])))
                        for a, b in zip(single.weights, mirrored.weights))
update_size = max(float(np.max(np.abs(a.numpy() - b))) for a, b in zip(single.weights, initial))

# Per-replica seeds: two replicas and two successive steps all differ; the generator's copies
# stay equal.
seeds = []
for _ in range(2):
  per_replica = strategy.run(tf.function(
      lambda: replicas.replica_seed(mirrored.dynamics.seed_generator)))
  seeds += [s.numpy().tolist() for s in strategy.experimental_local_results(per_replica)]
seed_states = [s.tolist() for s in local(mirrored.dynamics.seed_generator.state)]

# A one-device checkpoint restored on two replicas.
path = checkpoints.save_checkpoint(single, work_dir)
with strategy.scope():
  restored = checkpoints.load_checkpoint(path, config)
restored_copies = min(len(local(v)) for v in restored.weights)
restored_difference = max(float(np.max(np.abs(local(b)[1] - a.numpy())))
                          for a, b in zip(single.weights, restored.weights))
print(json.dumps(dict(
    replicas=strategy.num_replicas_in_sync, replica_copies=replica_copies,
    replica_difference=replica_difference, weight_difference=weight_difference,
    update_size=update_size, single_logs=single_logs, mirrored_logs=mirrored_logs,
    steps=[int(single.optimizer.iterations.numpy()), int(mirrored.optimizer.iterations.numpy())],
    seeds=seeds, seed_states=seed_states, restored_copies=restored_copies,
    restored_step=int(restored.optimizer.iterations.numpy()),
    restored_difference=restored_difference)))
'''


@pytest.fixture(scope="module")
def mirrored_run(tmp_path_factory):
  """One device and two logical CPU devices trained on the same windows in one subprocess."""
  work_dir = tmp_path_factory.mktemp("mirrored")
  script = work_dir / "mirrored.py"
  script.write_text(MIRRORED_SCRIPT)
  code, output = run_subprocess(
      [sys.executable, str(script), json.dumps(DETERMINISTIC), str(NUM_STEPS),
       str(work_dir / "run")], cwd=work_dir)
  assert code == 0, output[-5000:]
  return json.loads(output.strip().splitlines()[-1])


@pytest.mark.slow
def test_mirrored_replicas_keep_identical_weights(mirrored_run):
  assert mirrored_run["replicas"] == 2 and mirrored_run["replica_copies"] == 2
  assert mirrored_run["replica_difference"] == 0.0
  assert mirrored_run["steps"] == [NUM_STEPS, NUM_STEPS]


@pytest.mark.slow
def test_mirrored_matches_one_device_at_the_same_global_batch(mirrored_run):
  assert mirrored_run["update_size"] > 10 * WEIGHT_TOLERANCE  # The steps moved the weights.
  assert mirrored_run["weight_difference"] <= WEIGHT_TOLERANCE
  single, mirrored = mirrored_run["single_logs"], mirrored_run["mirrored_logs"]
  assert sorted(single) == sorted(mirrored)
  for name, value in single.items():  # Logged losses: global-batch means on both.
    assert mirrored[name] == pytest.approx(value, rel=LOSS_RELATIVE_TOLERANCE, abs=1e-7), name


@pytest.mark.slow
def test_mirrored_replicas_draw_different_random_numbers(mirrored_run):
  seeds = [tuple(seed) for seed in mirrored_run["seeds"]]  # 2 steps x 2 replicas.
  assert len(set(seeds)) == 4
  first, second = mirrored_run["seed_states"]
  assert first == second  # The SeedGenerator advanced identically on both replicas.


@pytest.mark.slow
def test_one_device_checkpoint_restores_on_two_replicas(mirrored_run):
  assert mirrored_run["restored_copies"] == 2
  assert mirrored_run["restored_step"] == NUM_STEPS
  assert mirrored_run["restored_difference"] == 0.0


@pytest.mark.slow
def test_batch_size_must_split_evenly_over_replicas(tmp_path):
  code, output = run_subprocess(
      [sys.executable, TRAIN_SCRIPT, "--run_dir", str(tmp_path / "run"), "--data_dir",
       str(tmp_path / "data"), "--strategy", "mirrored", "--num_cpu_devices", "2"]
      + tiny_flags() + ["--batch_size", "3"], cwd=tmp_path, timeout=120)
  assert code != 0
  assert ("--batch_size (3) is the global batch and must be a multiple of the number of "
          "replicas (2") in output
  assert not os.path.exists(tmp_path / "run")


# Two workers on loopback under `multi_worker`. -------------------------------------------------

@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory, tiny_basketball_dir):
  run_dir = tmp_path_factory.mktemp("one_device") / "run"
  train.main(["--run_dir", str(run_dir), "--data_dir", str(tiny_basketball_dir)] + tiny_flags())
  return run_dir


@pytest.mark.slow
def test_two_workers_on_loopback_match_one_device(tmp_path, tiny_basketball_dir, one_device_run):
  run_dir = tmp_path / "run"
  ports = free_loopback_ports(2)
  cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
  command = [sys.executable, TRAIN_SCRIPT, "--run_dir", str(run_dir), "--data_dir",
             str(tiny_basketball_dir), "--strategy", "multi_worker"] + tiny_flags()
  processes, logs = [], []
  try:
    for index in range(2):
      logs.append(open(tmp_path / f"worker{index}.txt", "w+"))
      tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
      processes.append(subprocess.Popen(
          command, cwd=str(tmp_path), env=subprocess_environment(TF_CONFIG=tf_config),
          stdout=logs[-1], stderr=subprocess.STDOUT, text=True))
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    for process in processes:
      process.wait(timeout=max(1.0, deadline - time.monotonic()))
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
        process.wait()
    outputs = []
    for log in logs:
      log.seek(0)
      outputs.append(log.read())
      log.close()
  for index, process in enumerate(processes):
    assert process.returncode == 0, f"worker {index}:\n{outputs[index][-5000:]}"
  assert "2 replicas on 2 workers; this is worker 0 (chief)" in outputs[0]
  assert "2 replicas on 2 workers; this is worker 1;" in outputs[1]
  for output in outputs:
    assert f"Training done at step {NUM_STEPS}" in output

  # Only the chief wrote: one checkpoint series and the chief's TensorBoard files.
  name = f"ckpt-{NUM_STEPS:07d}.keras"
  assert sorted(os.listdir(run_dir / "checkpoints")) == [name, "latest"]
  reference, reference_weights = checkpoint_weights(str(one_device_run / "checkpoints" / name))
  restored, weights = checkpoint_weights(str(run_dir / "checkpoints" / name))  # On 1 device.
  assert int(restored.optimizer.iterations.numpy()) == NUM_STEPS
  difference = max(float(np.max(np.abs(a - b))) for a, b in zip(weights, reference_weights))
  assert difference <= WEIGHT_TOLERANCE
  scalars, reference_scalars = (read_scalars(run_dir / "tensorboard"),
                                read_scalars(one_device_run / "tensorboard"))
  assert sorted(scalars) == sorted(reference_scalars)
  for key, value in reference_scalars.items():
    assert scalars[key] == pytest.approx(value, rel=LOSS_RELATIVE_TOLERANCE, abs=1e-7), key
