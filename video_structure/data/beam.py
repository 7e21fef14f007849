"""Chunked example generation for TFDS builders, on one machine or on Apache Beam.

A builder's `_generate_examples` returns `generate_examples(num_items, chunk_size, make_chunk,
use_beam)`: the item range [0, num_items) is cut into chunks, and `make_chunk(start, size)` yields
the (key, example) pairs of items start .. start + size - 1. Without Beam that is a plain iterator
(TFDS writes it on this machine); with Beam it is the PTransform

  beam.Create(chunks) | beam.Reshuffle() | beam.FlatMapTuple(make_chunk)

which TFDS runs on the runner of its DownloadConfig (DirectRunner here; Dataflow, Flink or Spark
on a cluster, see docs/scaling.md). Both give the same dataset as long as `make_chunk` is a pure
function of (start, size): every random draw must be seeded per item (or per chunk), never from
state carried over between chunks, because Beam runs chunks in any order on any worker. The
builder's keys decide the stored order (with `disable_shuffling`, TFDS sorts by key).

`make_chunk` must be picklable for Beam: a module-level function, or `functools.partial` of one
with plain arguments (no open files, no builder object). Its module must be importable on the
workers (PYTHONPATH, or `--setup_file` / `--extra_package` for a cluster runner).
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Callable, Iterable, Iterator, Optional

# make_chunk(start, size) -> iterable of (key, example).
ChunkFn = Callable[[int, int], Iterable[tuple[Any, Any]]]


def chunk_ranges(num_items: int, chunk_size: int) -> list[tuple[int, int]]:
  """[(start, size), ...] covering [0, num_items) in order; the last chunk may be shorter.

  Raises:
    ValueError: num_items < 0 or chunk_size < 1 (not ints).
  """
  if isinstance(num_items, bool) or not isinstance(num_items, int) or num_items < 0:
    raise ValueError(f"num_items must be an int >= 0, got {num_items!r}.")
  if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
    raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}.")
  return [(start, min(chunk_size, num_items - start))
          for start in range(0, num_items, chunk_size)]


def import_beam():
  """Imports apache_beam, or raises ImportError saying how to get it."""
  try:
    import apache_beam  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise ImportError(
        "Generating with Apache Beam needs the `apache-beam` package (see docs/scaling.md for "
        "the version that fits this project's pins); without it, generate without Beam "
        "(the default).") from error
  return apache_beam


def generate_examples(num_items: int, chunk_size: int, make_chunk: ChunkFn,
                      use_beam: bool = False, label: Optional[str] = None):
  """The examples of items [0, num_items), made chunk by chunk.

  Args:
    num_items: number of items (e.g. sequences of a split).
    chunk_size: items per `make_chunk` call (also the unit of work of a Beam worker).
    make_chunk: `make_chunk(start, size)` -> iterable of (key, example); pure in its arguments.
    use_beam: return a Beam PTransform instead of an iterator.
    label: optional prefix of the Beam step names (readable pipeline graphs).

  Returns:
    An iterator of (key, example) (plain), or a `beam.PTransform` producing them (Beam).
  """
  chunks = chunk_ranges(num_items, chunk_size)
  if not callable(make_chunk):
    raise TypeError(f"make_chunk must be callable, got {type(make_chunk).__name__}.")
  if not use_beam:
    return _iterate(chunks, make_chunk)
  beam = import_beam()
  prefix = f"{label}/" if label else ""
  # Reshuffle stops runners from fusing the chunks onto the worker that created the list.
  return (beam.Create(chunks)
          | f"{prefix}DistributeChunks" >> beam.Reshuffle()
          | f"{prefix}MakeChunk" >> beam.FlatMapTuple(make_chunk))


def _iterate(chunks, make_chunk) -> Iterator[tuple[Any, Any]]:
  return itertools.chain.from_iterable(make_chunk(start, size) for start, size in chunks)


# The folder holding the `video_structure` package (video_structure/data/beam.py -> ../../).
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def direct_runner_options(num_workers: int = 1, running_mode: str = "multi_processing"):
  """`PipelineOptions` for Beam's DirectRunner on this machine with `num_workers` processes
  (threads with running_mode="multi_threading"). Pass them as
  `tfds.download.DownloadConfig(beam_options=...)`.

  With worker processes, the project root is added to this process's PYTHONPATH, which the
  workers inherit, so that they can import the builders' chunk functions.
  """
  if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
    raise ValueError(f"num_workers must be a positive int, got {num_workers!r}.")
  if running_mode not in ("in_memory", "multi_threading", "multi_processing"):
    raise ValueError(f"running_mode must be in_memory, multi_threading or multi_processing, "
                     f"got {running_mode!r}.")
  beam = import_beam()
  if running_mode == "multi_processing":
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if PROJECT_ROOT not in paths:
      os.environ["PYTHONPATH"] = os.pathsep.join(paths + [PROJECT_ROOT])
  return beam.options.pipeline_options.PipelineOptions(
      runner="DirectRunner", direct_num_workers=num_workers, direct_running_mode=running_mode)


def beam_options_from_string(text: str):
  """`"runner=DataflowRunner,project=p,region=r"` -> Beam `PipelineOptions` (the format of TFDS'
  `tfds build --beam_pipeline_options`)."""
  flags = []
  for item in filter(None, (part.strip() for part in text.split(","))):
    if "=" not in item:
      raise ValueError(f"--beam_pipeline_options: expected key=value items separated by commas, "
                       f"got {item!r} in {text!r}.")
    flags.append(f"--{item}")
  return import_beam().options.pipeline_options.PipelineOptions(flags=flags)
