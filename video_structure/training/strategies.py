"""Training beyond one device: the `tf.distribute` strategy of a run (`train.py --strategy`).

  default       one device (the default strategy; no replication).
  mirrored      synchronous data parallelism over all local GPUs; on a machine without GPU,
                `num_cpu_devices` splits the CPU into that many logical devices (for tests).
  multi_worker  synchronous data parallelism over several hosts (`MultiWorkerMirroredStrategy`),
                the cluster read from the `TF_CONFIG` environment variable; every worker runs the
                same `train.py` command.
  tpu           `TPUStrategy` on the TPU at `tpu` (an address such as `grpc://10.0.0.2:8470`, or a
                Cloud TPU name). Documented, not tested here (no TPU).

`--batch_size` is the *global* batch: each of the R replicas gets batch_size / R windows per step
and the model's train step makes the update equal to one device's update on the whole batch
(see `StructVRNN.train_step`). docs/scaling.md has the commands for several GPUs and hosts.
"""

import json
import os

import tensorflow as tf

from video_structure.model import replicas

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def configure_cpu_devices(num_devices):
  """Splits the (first) physical CPU into `num_devices` logical CPU devices.

  Must run before TensorFlow initialises its devices (before the first op or strategy), which is
  why tests that need it run in a subprocess.

  Raises:
    ValueError: `num_devices` is not a positive int.
    RuntimeError: TensorFlow has already initialised its devices.
  """
  if isinstance(num_devices, bool) or not isinstance(num_devices, int) or num_devices < 1:
    raise ValueError(f"--num_cpu_devices must be a positive integer, got {num_devices!r}.")
  cpu = tf.config.list_physical_devices("CPU")[0]
  current = tf.config.get_logical_device_configuration(cpu)
  if current is not None and len(current) == num_devices:
    return
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])
  except RuntimeError as error:
    raise RuntimeError(
        f"--num_cpu_devices {num_devices}: TensorFlow has already initialised its devices; "
        f"split the CPU before any TensorFlow op runs (start a new process).") from error


def parse_tf_config(environ=None):
  """The cluster of a multi-worker run from the `TF_CONFIG` environment variable.

  Returns:
    (cluster dict {task type: [host:port, ...]}, task type, task index).

  Raises:
    ValueError naming TF_CONFIG and what is expected when it is missing or malformed.
  """
  environ = os.environ if environ is None else environ
  example = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
             '"task": {"type": "worker", "index": 0}}')
  text = environ.get("TF_CONFIG")
  if not text:
    raise ValueError(f"--strategy multi_worker needs the TF_CONFIG environment variable, e.g. "
                     f"TF_CONFIG='{example}' (one entry per worker; the same cluster on every "
                     f"worker and each worker's own task index).")
  try:
    tf_config = json.loads(text)
  except json.JSONDecodeError as error:
    raise ValueError(f"TF_CONFIG is not valid JSON ({error}); expected e.g. {example}.") from None
  cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
  task = tf_config.get("task") if isinstance(tf_config, dict) else None
  if not isinstance(cluster, dict) or not cluster or not all(
      isinstance(hosts, list) and hosts for hosts in cluster.values()):
    raise ValueError(f"TF_CONFIG needs a 'cluster' mapping task types to non-empty lists of "
                     f"host:port, got {text!r}; expected e.g. {example}.")
  if not isinstance(task, dict) or task.get("type") not in cluster:
    raise ValueError(f"TF_CONFIG 'task' must name a type of the cluster ({sorted(cluster)}), "
                     f"got {task!r}; expected e.g. {example}.")
  index = task.get("index", 0)
  if isinstance(index, bool) or not isinstance(index, int) or not (
      0 <= index < len(cluster[task["type"]])):
    raise ValueError(f"TF_CONFIG task index must be in [0, {len(cluster[task['type']])}) for "
                     f"type {task['type']!r}, got {index!r}.")
  return cluster, task["type"], index


def make_strategy(name="default", num_cpu_devices=None, tpu=None):
  """Creates the strategy of a run; call it first thing (before other TensorFlow ops).

  Args:
    name: one of STRATEGIES.
    num_cpu_devices: `mirrored` / `multi_worker` on a machine without GPU: split the CPU into
      this many logical devices (replicas per worker). None: one device per GPU, else one CPU.
    tpu: `tpu` only: the TPU address or name (required).

  Returns:
    A `tf.distribute.Strategy`; build and compile the model inside its `scope()`.
  """
  if name not in STRATEGIES:
    raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}.")
  if num_cpu_devices is not None and name not in ("mirrored", "multi_worker"):
    raise ValueError(f"--num_cpu_devices applies to --strategy mirrored or multi_worker, not "
                     f"{name!r}.")
  if tpu is not None and name != "tpu":
    raise ValueError(f"--tpu applies to --strategy tpu only, not {name!r}.")
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "tpu":
    if not tpu:
      raise ValueError("--strategy tpu needs --tpu (the TPU's address, e.g. grpc://10.0.0.2:8470, "
                       "or its Cloud TPU name; 'local' on a TPU VM).")
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)

  gpus = tf.config.list_physical_devices("GPU")
  if num_cpu_devices is not None:
    if gpus:
      raise ValueError(f"--num_cpu_devices splits the CPU on a machine without GPU, but "
                       f"{len(gpus)} GPU(s) are visible; drop --num_cpu_devices to use them.")
    configure_cpu_devices(num_cpu_devices)
  if name == "mirrored":
    if gpus:
      return tf.distribute.MirroredStrategy()  # Every local GPU.
    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)
  parse_tf_config()  # A clear error before TensorFlow's own.
  return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy):
  """True on the one process that writes checkpoints, summaries and the final outputs: the only
  process for default / mirrored / tpu, the chief (or worker 0) for multi_worker."""
  return bool(strategy.extended.should_checkpoint)


# One definition, shared with the train step.
num_workers = replicas.num_workers


def worker_index(strategy):
  """This worker's input pipeline index in [0, num_workers): the chief first, then the workers
  in TF_CONFIG order (0 on one machine)."""
  if num_workers(strategy) == 1:
    return 0
  resolver = strategy.cluster_resolver
  if resolver.task_type == "chief":
    return 0
  if resolver.task_type != "worker":
    raise ValueError(f"TF_CONFIG task type {resolver.task_type!r} does not train; use 'chief' or "
                     f"'worker'.")
  has_chief = bool(resolver.cluster_spec().as_dict().get("chief"))
  return resolver.task_id + (1 if has_chief else 0)


def describe(strategy):
  """One line for the log: the strategy, its replicas and this process's role."""
  if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
    return "one device (default strategy)"
  name = ("MultiWorkerMirroredStrategy"
          if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
          else type(strategy).__name__)
  text = f"{name}: {strategy.num_replicas_in_sync} replicas"
  workers = num_workers(strategy)
  if workers > 1:
    resolver = strategy.cluster_resolver
    text += (f" on {workers} workers; this is {resolver.task_type} {resolver.task_id}"
             f"{' (chief)' if is_chief(strategy) else ''}")
  elif hasattr(strategy.extended, "worker_devices"):
    text += f" on {', '.join(strategy.extended.worker_devices)}"
  return text


def check_same_on_all_workers(strategy, value, what):
  """Raises RuntimeError unless every worker passes the same integer `value` (e.g. the step it
  resumes from). A no-op with one worker. Every worker must call it (it is a collective)."""
  if num_workers(strategy) == 1:
    return
  gather = tf.function(lambda: strategy.gather(  # Traced: eager collectives warn of overhead.
      strategy.run(lambda: tf.constant([value], tf.int64)), axis=0))
  values = gather().numpy().tolist()
  if len(set(values)) != 1:
    raise RuntimeError(
        f"Workers disagree on {what}: {values} (one entry per replica). Every worker must see "
        f"the same --run_dir (a shared filesystem) and get the same flags.")


def wait_for_all_workers(strategy):
  """A barrier: returns once every worker has called it (a no-op with one worker)."""
  check_same_on_all_workers(strategy, 0, "a barrier")


def local_copy(model, build_copy):
  """An undistributed copy of a model trained under a strategy: `build_copy()` (a new model of
  the same run) outside any strategy scope, then the weights and the step counter copied over.
  Used for the export and evaluation after training (plain variables; no collective op)."""
  if tf.distribute.in_cross_replica_context() and tf.distribute.has_strategy():
    raise RuntimeError("local_copy must be called outside strategy.scope().")
  copy = build_copy()
  copy.set_weights([weight.numpy() for weight in model.weights])
  copy.optimizer.iterations.assign(int(model.optimizer.iterations.numpy()))
  return copy
