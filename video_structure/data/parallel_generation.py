"""Generating a split's chunks in worker processes, in order (the builders' plain, non-Beam path).

A builder's examples are made chunk by chunk by `make_chunk(start, size)`, a pure function of
its arguments (`beam` module docstring). `generate_in_workers` runs the chunks in a pool of
worker processes and yields their (key, example) pairs in chunk order, so the stored records
are the same (every feature's stored bytes) whatever the number of workers. TFDS writes the
examples in this process as before (its progress bar, its `incomplete.*` directory that only
becomes the dataset once every example is written); only making them moves to the workers.

Where the time goes (Basketball, 50 frames of 64x64, docs/scaling.md): with TFDS' own zlib
more than half of it was compressing the frames, which TFDS does in the process that writes.
So `PreEncodableTensor` (the builders' frame feature) compresses with ISA-L instead (same zlib
format, about 14x faster), and the workers also encode the frames with the feature's own
`encode_example` and hand them over as `PreEncoded` values, which it stores unchanged: the
bytes the parent would have written, computed in parallel.

Each worker is a fresh interpreter (`python -c`, with this process's sys.path) that talks to
this process through its stdin and stdout: not a fork (the parent has usually imported
TensorFlow, whose threads make `fork` unsafe), and unlike multiprocessing's `spawn` it does not
import the parent's __main__ script, so a script that prepares data at its top level works
without an `if __name__ == "__main__":` guard. Workers run in their own session (Ctrl-C
reaches the parent, which stops them) and exit when the parent does. An error in a worker is
raised in the parent, with a note naming the chunk and the worker's traceback.

`resolve_num_workers` checks the `num_workers` setting (None: every core this process may use)
and `add_num_workers_argument` adds the `--num_workers` flag to a command line.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import pickle
import subprocess
import sys
import traceback
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Optional, Sequence

import numpy as np
import tensorflow_datasets as tfds
from isal import isal_zlib

from video_structure.data import worker_pipe

# make_chunk(start, size) -> iterable of (key, example).
ChunkFn = Callable[[int, int], Iterable[tuple[Any, Any]]]

# ISA-L's compression level (0-3) for zlib-encoded frames: on Basketball frames levels 1 and 2
# take the same time, and 2 stores slightly less (36.9 against 37.2 kB per sequence).
ISAL_LEVEL = 2

# Chunks submitted to the pool ahead of the one being written, per worker: enough to keep
# every worker busy while the parent writes, few enough to bound the memory held.
CHUNKS_AHEAD_PER_WORKER = 2


# How a stored `tfds.features.Tensor` names its class in features.json.
_TENSOR_CLASS_NAME = f"{tfds.features.Tensor.__module__}.{tfds.features.Tensor.__name__}"


def available_cores() -> int:
  """The number of cores this process may run on (its CPU affinity; else os.cpu_count())."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # Not on Linux.
    return os.cpu_count() or 1


def resolve_num_workers(num_workers: Optional[int], name: str = "num_workers") -> int:
  """`num_workers` as an int: None means every core (`available_cores`).

  Raises:
    ValueError naming `name` (e.g. "--num_workers") unless num_workers is None or an int >= 1.
  """
  if num_workers is None:
    return available_cores()
  if (isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer))
      or num_workers < 1):
    raise ValueError(
        f"{name} must be a whole number of worker processes >= 1 (1 generates in this "
        f"process), got {num_workers!r}; leave it out to use every core "
        f"({available_cores()} here).")
  return int(num_workers)


def _num_workers_type(text: str) -> int:
  """argparse type of --num_workers (argparse names the flag in its error line)."""
  try:
    return resolve_num_workers(int(text), "it")
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"expected a whole number of worker processes >= 1 (1 generates in this process), "
        f"got {text!r}; leave --num_workers out to use every core "
        f"({available_cores()} here).") from None


def add_num_workers_argument(parser: argparse.ArgumentParser) -> None:
  """Adds `--num_workers` (default None: every core) to a command line."""
  parser.add_argument(
      "--num_workers", type=_num_workers_type, default=None,
      help=f"worker processes that make the examples (default: every core, "
           f"{available_cores()} here; 1 generates in this process). The data do not depend "
           f"on it.")


class PreEncoded(NamedTuple):
  """A feature value already encoded by the feature's `encode_example` (in a worker).

  Attributes:
    value: what `encode_example` returned (for a zlib Tensor: the compressed bytes).
    spec: `feature_spec` of the feature that encoded it (checked where it is stored).
  """
  value: Any
  spec: bytes


def feature_spec(feature) -> bytes:
  """What identifies a feature's encoding: its serialized shape, dtype and encoding."""
  return feature.to_json_content().SerializeToString(deterministic=True)


def pre_encode(feature, value) -> PreEncoded:
  """`value` encoded by `feature` (as TFDS would when writing), for `PreEncodableTensor`."""
  return PreEncoded(feature.encode_example(value), feature_spec(feature))


class PreEncodableTensor(tfds.features.Tensor):
  """`tfds.features.Tensor` that also takes values its twin encoded in a worker (`PreEncoded`),
  and compresses zlib-encoded values with ISA-L.

  A zlib value is checked and turned into bytes by a plain `tfds.features.Tensor` of the same
  shape and dtype with `encoding="bytes"`, then compressed by ISA-L's zlib (`isal.isal_zlib`,
  level `ISAL_LEVEL`): the same zlib format as TFDS' `zlib.compress` (it decodes with
  `tf.io.decode_compressed(..., "ZLIB")` as before, to the same arrays), about 14x faster on
  Basketball frames for 20% more bytes (docs/scaling.md). Everything else is the Tensor's:
  decoding, and its entry in features.json and the dataset info, which name
  `tfds.features.Tensor`, so that datasets written with it are read as before by any TFDS
  reader (`tfds.builder_from_directory` too) and data written before it are read by it.
  """

  def encode_example(self, example_data):
    if isinstance(example_data, PreEncoded):
      spec = self.__dict__.get("_pre_encoded_spec")
      if spec is None:
        spec = self.__dict__["_pre_encoded_spec"] = feature_spec(self)
      if example_data.spec != spec:
        raise ValueError(
            f"A value encoded in a worker for feature {example_data.spec!r} was given to "
            f"feature {spec!r}; the builder's encoders must be its own features.")
      return example_data.value
    if self._encoding != tfds.features.Encoding.ZLIB:
      return super().encode_example(example_data)
    encoded = self._raw_bytes_feature.encode_example(example_data)
    if encoded is None:  # An optional feature's missing value.
      return None
    if isinstance(encoded, dict):  # A dynamic shape: {"value": bytes, "shape": shape}.
      return dict(encoded, value=isal_zlib.compress(encoded["value"], ISAL_LEVEL))
    return isal_zlib.compress(encoded, ISAL_LEVEL)

  @functools.cached_property
  def _raw_bytes_feature(self):
    """A plain Tensor of this shape and dtype that checks a value and makes its raw bytes."""
    return tfds.features.Tensor(shape=self.shape, dtype=self.np_dtype,
                                encoding=tfds.features.Encoding.BYTES, optional=self._optional)

  @property
  def _fully_qualified_class_name(self):
    # Stored (features.json, dataset_info.json) as the plain Tensor it encodes and decodes as.
    return _TENSOR_CLASS_NAME


def make_encoded_chunk(make_chunk: ChunkFn, start: int, size: int,
                       encoders: Optional[Mapping[str, Any]] = None) -> list[tuple[Any, Any]]:
  """`make_chunk(start, size)` as a list, with the features of `encoders` ({feature name:
  feature}) encoded by those features (`PreEncoded`). What a worker runs."""
  examples = []
  for key, example in make_chunk(start, size):
    if encoders:
      example = dict(example)
      for name, feature in encoders.items():
        example[name] = pre_encode(feature, example[name])
    examples.append((key, example))
  return examples


def _describe(label: Optional[str], start: int, size: int) -> str:
  items = f"items {start}..{start + size - 1}"
  return f"{label} {items}" if label else items


def _error_reply(error: BaseException) -> tuple:
  """("error", the exception if it pickles else None, its type name, message, traceback)."""
  try:
    pickle.dumps(error)
    picklable = error
  except Exception:  # pylint: disable=broad-except
    picklable = None
  return ("error", picklable, type(error).__name__, str(error), traceback.format_exc())


def worker_main() -> None:
  """A worker process: receives (make_chunk, encoders), then serves (start, size) requests
  with `make_encoded_chunk` until its input closes."""
  replies = os.fdopen(os.dup(1), "wb")
  # Anything else printed (by Python or C code) goes to stderr, not into the replies.
  os.dup2(2, 1)
  sys.stdout = sys.stderr
  requests = sys.stdin.buffer
  job, job_error = None, None
  try:
    job = pickle.loads(worker_pipe.receive_bytes(requests))
  except EOFError:
    return
  except Exception as error:  # pylint: disable=broad-except
    job_error = _error_reply(error)  # E.g. make_chunk's module does not import here.
  while True:
    try:
      start, size = worker_pipe.receive(requests)
    except EOFError:
      return
    if job_error is not None:
      reply = job_error
    else:
      try:
        reply = ("ok", make_encoded_chunk(job[0], start, size, job[1]))
      except Exception as error:  # pylint: disable=broad-except
        reply = _error_reply(error)
    try:
      worker_pipe.send(replies, reply)
    except BrokenPipeError:  # The parent is gone.
      return


class _Worker:
  """One worker process (`worker_main`), started with this process's interpreter and sys.path.

  It is a fresh interpreter (not a fork: TensorFlow's threads in this process make forking
  unsafe) that does not import this process's __main__ script, in its own session, so that
  Ctrl-C reaches only this process, which stops it.
  """

  def __init__(self, job: bytes):
    """Starts the worker and sends it `job`, the pickled (make_chunk, encoders)."""
    path = [entry for entry in sys.path if isinstance(entry, str)]
    code = (f"import sys; sys.path[:] = {path!r}; "
            f"from video_structure.data import parallel_generation; "
            f"parallel_generation.worker_main()")
    self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, start_new_session=True)
    # A worker that died (e.g. could not import this module) is reported by `reply`.
    with contextlib.suppress(BrokenPipeError):
      worker_pipe.send_bytes(self.process.stdin, job)

  def request(self, chunk) -> None:
    with contextlib.suppress(BrokenPipeError):  # Reported by `reply`, with its exit code.
      worker_pipe.send(self.process.stdin, chunk)

  def reply(self):
    return worker_pipe.receive(self.process.stdout)

  def stop(self, kill: bool) -> None:
    """Lets the worker exit at the end of its input, or kills it (its chunk is not needed)."""
    if kill and self.process.poll() is None:
      self.process.kill()
    with contextlib.suppress(OSError):
      self.process.stdin.close()
    try:
      self.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
      self.process.kill()
      self.process.wait()
    self.process.stdout.close()


def generate_in_workers(chunks: Sequence[tuple[int, int]], make_chunk: ChunkFn,
                        num_workers: int, encoders: Optional[Mapping[str, Any]] = None,
                        label: Optional[str] = None) -> Iterator[tuple[Any, Any]]:
  """The (key, example) pairs of `chunks`, in chunk order, made by `num_workers` processes.

  Chunk i is made by worker i % num_workers, which gets its next chunks while this process
  writes (CHUNKS_AHEAD_PER_WORKER each).

  Args:
    chunks: [(start, size), ...] (`beam.chunk_ranges`).
    make_chunk: `make_chunk(start, size)` -> iterable of (key, example); pure in its arguments
      and picklable (a module-level function or a `functools.partial` of one), from a module
      that the workers can import (this process's sys.path is theirs).
    num_workers: worker processes; with 1 (or a single chunk) the chunks are made in this
      process, as TFDS would without workers. Never more workers than chunks are started.
    encoders: {feature name: feature} encoded in the workers (`PreEncoded`); the builder's
      features must be `PreEncodableTensor`s. Unused in this process.
    label: names the items in error messages (e.g. "basketball train").

  Yields:
    The pairs of chunk 0, then chunk 1, ...: the same sequence for any num_workers.

  Raises:
    The exception of a failed `make_chunk`, with a note naming its chunk and the worker's
    traceback; RuntimeError if a worker process died. The workers are stopped either way, and
    when the consumer stops early (an error while writing, Ctrl-C).
  """
  num_workers = min(resolve_num_workers(num_workers), len(chunks))
  if num_workers <= 1:
    for start, size in chunks:
      yield from make_chunk(start, size)
    return
  try:
    job = pickle.dumps((make_chunk, dict(encoders or {})), protocol=pickle.HIGHEST_PROTOCOL)
  except Exception as error:  # pylint: disable=broad-except
    raise TypeError(
        f"make_chunk and encoders must be picklable to run in worker processes ({error}): use "
        f"a module-level function or a functools.partial of one, or num_workers=1.") from error
  workers = []
  finished = False
  try:
    for _ in range(num_workers):
      workers.append(_Worker(job))
    sent = 0

    def send_until(limit: int) -> None:
      nonlocal sent
      while sent < min(limit, len(chunks)):
        workers[sent % num_workers].request(chunks[sent])
        sent += 1

    send_until(num_workers * CHUNKS_AHEAD_PER_WORKER)
    for index, (start, size) in enumerate(chunks):
      worker = workers[index % num_workers]
      try:
        reply = worker.reply()
      except EOFError:
        code = worker.process.wait()
        raise RuntimeError(
            f"A generation worker process exited (code {code}) while making "
            f"{_describe(label, start, size)}: killed, out of memory, or a crash in native "
            f"code; its error output, if any, is above. Generate with --num_workers 1 to make "
            f"the examples in this process, or with fewer workers if memory ran out.") from None
      if reply[0] == "error":
        _, error, name, message, worker_traceback = reply
        if error is None:
          error = RuntimeError(f"{name}: {message}")
        error.add_note(f"(raised in a generation worker process while making "
                       f"{_describe(label, start, size)}; --num_workers 1 makes the examples "
                       f"in this process; the worker's traceback:\n{worker_traceback})")
        raise error
      send_until(index + 1 + num_workers * CHUNKS_AHEAD_PER_WORKER)
      yield from reply[1]
    finished = True
  finally:
    for worker in workers:
      worker.stop(kill=not finished)


class GenerationWorkersMixin:
  """Adds `num_workers` to a builder's constructor: the worker processes that make its examples
  without Beam (None: every core). Not a data setting: the examples do not depend on it."""

  def __init__(self, *, num_workers: Optional[int] = None, **kwargs):
    self._num_workers = resolve_num_workers(num_workers)
    super().__init__(**kwargs)

  @property
  def num_workers(self) -> int:
    """Worker processes used by generation without Beam."""
    return self._num_workers
