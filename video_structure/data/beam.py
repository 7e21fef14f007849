"""Chunked example generation for TFDS builders, on one machine or on Apache Beam.

A builder's `_generate_examples` returns `generate_examples(num_items, chunk_size, make_chunk,
use_beam, num_workers, encoders)`: the item range [0, num_items) is cut into chunks, and
`make_chunk(start, size)` yields the (key, example) pairs of items start .. start + size - 1.
Without Beam that is a plain iterator (TFDS writes it on this machine) over chunks made by
`num_workers` worker processes (`parallel_generation`), in chunk order; with Beam it is the
PTransform

  beam.Create(chunks) | beam.Reshuffle() | beam.FlatMapTuple(make_chunk)

which TFDS runs on the runner of its DownloadConfig (DirectRunner here; Dataflow, Flink or Spark
on a cluster, see docs/scaling.md). Both give the same dataset as long as `make_chunk` is a pure
function of (start, size): every random draw must be seeded per item (or per chunk), never from
state carried over between chunks, because Beam and the worker processes run chunks in any order
on any worker. The builder's keys decide the stored order (with `disable_shuffling`, TFDS sorts
by key).

`make_chunk` must be picklable for Beam and for worker processes: a module-level function, or
`functools.partial` of one with plain arguments (no open files, no builder object). Its module
must be importable on the workers (PYTHONPATH, or `--setup_file` / `--extra_package` for a
cluster runner) and should not import TensorFlow (each worker process would pay for it).

`generation_main(builder_class)` is the command line of the builders (`python -m
datasets.<name>`): one config, on this machine with `--num_workers` processes or on Beam with
`--beam_pipeline_options`.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

import tensorflow_datasets as tfds

from video_structure.data import parallel_generation

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
                      use_beam: bool = False, label: Optional[str] = None,
                      num_workers: int = 1, encoders: Optional[Mapping[str, Any]] = None):
  """The examples of items [0, num_items), made chunk by chunk.

  Args:
    num_items: number of items (e.g. sequences of a split).
    chunk_size: items per `make_chunk` call (the unit of work of a Beam worker or of a worker
      process).
    make_chunk: `make_chunk(start, size)` -> iterable of (key, example); pure in its arguments.
    use_beam: return a Beam PTransform instead of an iterator.
    label: optional prefix of the Beam step names (readable pipeline graphs) and name of the
      items in error messages.
    num_workers: without Beam, worker processes making the chunks (1: in this process); the
      examples and their order do not depend on it. Beam ignores it (its runner has workers).
    encoders: without Beam and with several workers, {feature name: feature} encoded in the
      workers (`parallel_generation.PreEncoded`; the features must be `PreEncodableTensor`s).

  Returns:
    An iterator of (key, example) (plain), or a `beam.PTransform` producing them (Beam).
  """
  chunks = chunk_ranges(num_items, chunk_size)
  if not callable(make_chunk):
    raise TypeError(f"make_chunk must be callable, got {type(make_chunk).__name__}.")
  if not use_beam:
    num_workers = parallel_generation.resolve_num_workers(num_workers)
    if num_workers == 1 or len(chunks) <= 1:
      return _iterate(chunks, make_chunk)
    return parallel_generation.generate_in_workers(chunks, make_chunk, num_workers,
                                                   encoders=encoders, label=label)
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


def generation_main(builder_class, argv=None, description: Optional[str] = None):
  """Generates one config of a TFDS builder of `builders/` from the command line.

  Flags: --config (a predefined config), --data_dir, --num_workers (without Beam; default every
  core), --beam_pipeline_options (generate on Beam instead), and --manual_dir for builders that
  import data the user downloads. Bad flags stop with argparse's message (exit status 2).

  Returns:
    The prepared builder.
  """
  configs = [config.name for config in builder_class.BUILDER_CONFIGS]
  parser = argparse.ArgumentParser(prog=f"python -m datasets.{builder_class.name}",
                                   description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default=builder_class.DEFAULT_CONFIG_NAME, choices=configs)
  parser.add_argument("--data_dir", default="data", help="TFDS data directory (or gs://...).")
  parallel_generation.add_num_workers_argument(parser)
  parser.add_argument("--beam_pipeline_options", default=None,
                      help="Generate on Beam with these comma-separated key=value pipeline "
                           "options (e.g. runner=DataflowRunner,project=...,region=...).")
  if builder_class.MANUAL_DOWNLOAD_INSTRUCTIONS:
    parser.add_argument("--manual_dir", default=None,
                        help="The folder of data you downloaded (configs that import it).")
  args = parser.parse_args(argv)
  options = None
  if args.beam_pipeline_options is not None:
    if args.num_workers is not None:
      parser.error("--num_workers sets the worker processes of generation without Beam; with "
                   "--beam_pipeline_options give the runner's workers instead (e.g. "
                   "direct_num_workers=2), or leave --beam_pipeline_options out.")
    options = beam_options_from_string(args.beam_pipeline_options)
    if options.get_all_options().get("direct_running_mode") == "multi_processing":
      direct_runner_options(  # Lets the worker processes import this project.
          max(1, int(options.get_all_options().get("direct_num_workers") or 1)))
  builder = builder_class(data_dir=args.data_dir, config=args.config,
                          num_workers=args.num_workers)
  start = time.time()
  manual_dir = getattr(args, "manual_dir", None)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      try_download_gcs=False, compute_stats=tfds.download.ComputeStatsMode.SKIP,
      beam_options=options, manual_dir=manual_dir))
  how = ("on Beam" if options is not None or getattr(builder, "_use_beam", False)
         else f"num_workers={builder.num_workers}")
  print(f"{builder.name} {args.config!r} in {builder.data_dir}: "
        f"{builder.info.splits['train'].num_examples} train / "
        f"{builder.info.splits['test'].num_examples} test sequences "
        f"({time.time() - start:.1f} s, {how}).", flush=True)
  return builder
