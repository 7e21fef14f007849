"""Pieces shared by the tests of generation in worker processes: toy chunk functions and
helpers to watch the workers and read what a builder stored.

Kept free of TensorFlow (numpy only at import): the worker processes import this module to
unpickle the toy chunk functions, and importing TensorFlow there would cost each worker several
seconds.
"""

import os

import numpy as np

from video_structure.data import parallel_generation as pg


def toy_chunk(start, size, scale=1):
  """Module-level (the workers import it by name): item i is (i, {"value": ..., "frames": ...})."""
  for index in range(start, start + size):
    yield index, {"value": index * scale,
                  "frames": np.full((2, 3), index % 256, dtype=np.uint8)}


def failing_chunk(start, size):
  if start == 4:
    raise ValueError(f"bad item {start + 1}")
  yield from toy_chunk(start, size)


def dying_chunk(start, size):
  if start == 4:
    os._exit(3)  # A worker that dies without a Python exception (like a native crash).
  yield from toy_chunk(start, size)


CHUNKS = [(0, 4), (4, 4), (8, 4), (12, 3)]


def record_started_workers(monkeypatch) -> list:
  """Makes `generate_in_workers` record the worker processes it starts; returns that list."""
  started = []

  class RecordingWorker(pg._Worker):  # pylint: disable=protected-access
    def __init__(self, job):
      super().__init__(job)
      started.append(self.process)

  monkeypatch.setattr(pg, "_Worker", RecordingWorker)
  return started


def stored_records(builder, split) -> list:
  """The stored records of a split, parsed (every feature's stored bytes: the zlib-compressed
  frames, not the frames they decode to). Compared parsed because TFDS does not serialize the
  features of an Example in a fixed order (two runs of the same code differ there)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  paths = [os.fspath(path) for path in builder.info.splits[split].filepaths]
  return [tf.train.Example.FromString(record.numpy())
          for record in tf.data.TFRecordDataset(paths)]
