"""Generating the Basketball TFDS data on Apache Beam (`video_structure/data/beam.py`).

The Beam path must give exactly the plain path's dataset: a small config is built both ways
(Beam's DirectRunner with two threads, chunks of 4 sequences so several chunks run in any order)
and every feature of every example is compared by sequence_index; the same for the DMCS builder.

"""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from video_structure.data import basketball_plays
from video_structure.data import beam as beam_lib
from video_structure.data.builders import basketball as basketball_builder
from video_structure.data.builders import dmcs as dmcs_builder
from video_structure.data.builders import human_motion as human_builder
from tests.data import generation_helpers

CHUNK_SIZE = 4
SMALL = dict(num_train=10, num_test=6, num_frames=6, image_size=16, seed=3)


def _build(data_dir, beam_options=None, use_beam=False, name="small"):
  config = basketball_builder.BasketballConfig(name=name, use_beam=use_beam, **SMALL)
  builder = basketball_builder.Builder(data_dir=str(data_dir), config=config)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      try_download_gcs=False, compute_stats=tfds.download.ComputeStatsMode.SKIP,
      beam_options=beam_options))
  return builder


def _build_tiny_both_ways(builder_class, tmp_path):
  """A builder's `tiny` config generated plainly and on the DirectRunner (two threads)."""
  def build(directory, beam_options=None):
    builder = builder_class(data_dir=str(directory), config="tiny")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        try_download_gcs=False, compute_stats=tfds.download.ComputeStatsMode.SKIP,
        beam_options=beam_options))
    return builder
  return build(tmp_path / "plain"), build(tmp_path / "beam", beam_lib.direct_runner_options(
      2, running_mode="multi_threading"))


def _read(builder, split):
  return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


# Pure helpers (no Beam needed). ----------------------------------------------------------------

def test_chunk_ranges_cover_the_items_in_order():
  assert beam_lib.chunk_ranges(10, 4) == [(0, 4), (4, 4), (8, 2)]
  assert beam_lib.chunk_ranges(8, 4) == [(0, 4), (4, 4)]
  assert beam_lib.chunk_ranges(0, 4) == []


@pytest.mark.parametrize("num_items, chunk_size, message", [
    (-1, 4, r"num_items must be an int >= 0, got -1"),
    (10, 0, r"chunk_size must be a positive int, got 0"),
    (10, 2.5, r"chunk_size must be a positive int, got 2.5"),
])
def test_bad_chunking_is_refused(num_items, chunk_size, message):
  with pytest.raises(ValueError, match=message):
    beam_lib.chunk_ranges(num_items, chunk_size)


def test_plain_generation_chains_the_chunks():
  calls = []

  def make_chunk(start, size):
    calls.append((start, size))
    return [(start + i, f"item {start + i}") for i in range(size)]

  examples = list(beam_lib.generate_examples(7, 3, make_chunk))
  assert examples == [(i, f"item {i}") for i in range(7)]
  assert calls == [(0, 3), (3, 3), (6, 1)]


@pytest.mark.slow  # Starts worker processes.
def test_plain_generation_in_workers_gives_the_same_items_in_order():
  toy_chunk = generation_helpers.toy_chunk
  in_process = list(beam_lib.generate_examples(7, 3, toy_chunk))
  in_workers = list(beam_lib.generate_examples(7, 3, toy_chunk, num_workers=2))
  assert [key for key, _ in in_workers] == [key for key, _ in in_process] == list(range(7))
  assert [e["value"] for _, e in in_workers] == [e["value"] for _, e in in_process]


def test_chunk_examples_depend_only_on_their_indices():
  """Sequences 4..7 made as one chunk equal the same sequences inside a bigger chunk."""
  make_chunk = basketball_builder._make_chunk  # pylint: disable=protected-access
  make = lambda start, size: dict(make_chunk(
      start, size, num_frames=6, image_size=16, seed=3, first_index=0, trajectories_path=None))
  alone, inside = make(4, 4), make(0, 10)
  assert sorted(alone) == [4, 5, 6, 7]
  for index, example in alone.items():
    for feature, value in example.items():
      np.testing.assert_array_equal(value, inside[index][feature], err_msg=f"{index} {feature}")


def test_the_beam_switch_is_not_a_data_setting():
  plain = basketball_builder.BasketballConfig(name="a", **SMALL)
  with_beam = basketball_builder.BasketballConfig(name="a", use_beam=True, **SMALL)
  assert plain.settings() == with_beam.settings()


# Beam's DirectRunner. --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def builds(tmp_path_factory):
  import apache_beam  # noqa: F401  (pinned in requirements.txt: a missing install fails)
  chunk_size = basketball_builder.GENERATION_CHUNK_SIZE
  basketball_builder.GENERATION_CHUNK_SIZE = CHUNK_SIZE  # Several chunks per split.
  try:
    plain = _build(tmp_path_factory.mktemp("plain"))
    beam = _build(tmp_path_factory.mktemp("beam"), beam_options=beam_lib.direct_runner_options(
        2, running_mode="multi_threading"))
  finally:
    basketball_builder.GENERATION_CHUNK_SIZE = chunk_size
  return plain, beam


@pytest.mark.slow  # End-to-end generation on Beam's DirectRunner.
@pytest.mark.parametrize("split", ["train", "test"])
def test_beam_generation_equals_plain_generation(builds, split):
  plain, beam = (_read(builder, split) for builder in builds)
  count = SMALL[f"num_{split}"]
  # Stored in sequence_index order both ways (the builder disables TFDS' shuffling).
  assert [int(e["sequence_index"]) for e in plain] == list(range(count))
  assert [int(e["sequence_index"]) for e in beam] == list(range(count))
  for expected, actual in zip(plain, beam):
    assert sorted(expected) == sorted(actual)
    for feature in expected:
      np.testing.assert_array_equal(actual[feature], expected[feature],
                                    err_msg=f"{split} {int(expected['sequence_index'])} {feature}")


@pytest.mark.slow  # End-to-end generation on Beam's DirectRunner.
def test_beam_generation_stores_the_same_metadata(builds):
  plain, beam = builds
  assert beam.info.metadata["config"] == plain.info.metadata["config"]
  for split in ("train", "test"):
    assert beam.info.splits[split].num_examples == SMALL[f"num_{split}"]
  first = _read(beam, "train")[0]
  np.testing.assert_array_equal(first["trajectories_feet"], basketball_plays.simulate_plays(
      1, num_frames=SMALL["num_frames"], seed=SMALL["seed"])[0])


@pytest.mark.slow  # End-to-end generation on Beam's DirectRunner.
def test_use_beam_config_selects_beam_without_runner_options(tmp_path):
  import apache_beam  # noqa: F401  (pinned in requirements.txt: a missing install fails)
  builder = _build(tmp_path, use_beam=True, name="config_switch")
  assert builder._use_beam  # pylint: disable=protected-access
  assert [int(e["sequence_index"]) for e in _read(builder, "test")] == list(range(6))


def test_direct_runner_options_are_checked(monkeypatch):
  import apache_beam  # noqa: F401  (pinned in requirements.txt: a missing install fails)
  monkeypatch.setenv("PYTHONPATH", "")  # Restored after the test.
  with pytest.raises(ValueError, match=r"num_workers must be a positive int, got 0"):
    beam_lib.direct_runner_options(0)
  with pytest.raises(ValueError, match=r"running_mode must be in_memory, multi_threading or "
                                       r"multi_processing, got 'cluster'"):
    beam_lib.direct_runner_options(2, running_mode="cluster")
  options = beam_lib.direct_runner_options(2).get_all_options()
  assert options["direct_num_workers"] == 2
  assert options["direct_running_mode"] == "multi_processing"
  # The folder holding the video_structure package (the workers import the builders from it).
  project_root = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(beam_lib.__file__))))
  assert os.path.isfile(os.path.join(project_root, "video_structure", "data", "beam.py"))
  assert project_root in os.environ.get("PYTHONPATH", "").split(os.pathsep)


def test_pipeline_options_string_is_parsed():
  import apache_beam  # noqa: F401  (pinned in requirements.txt: a missing install fails)
  options = beam_lib.beam_options_from_string(
      "runner=DirectRunner, direct_num_workers=3,direct_running_mode=multi_threading")
  values = options.get_all_options()
  assert values["runner"] == "DirectRunner" and values["direct_num_workers"] == 3
  with pytest.raises(ValueError, match=r"--beam_pipeline_options: expected key=value items "
                                       r"separated by commas, got 'DataflowRunner'"):
    beam_lib.beam_options_from_string("DataflowRunner")


@pytest.mark.slow  # End-to-end generation on Beam's DirectRunner.
def test_dmcs_beam_generation_equals_plain_generation(tmp_path, monkeypatch):
  """DMCS on Beam: chunks rendered in any order by their own rendering processes give exactly
  the plain builder's examples (every sequence depends only on (seed, task, index))."""
  import apache_beam  # noqa: F401
  monkeypatch.setattr(dmcs_builder, "GENERATION_CHUNK_SIZE", 4)  # 6 sequences: two chunks.
  plain, beam = _build_tiny_both_ways(dmcs_builder.Builder, tmp_path)
  plain_examples, beam_examples = _read(plain, "train"), _read(beam, "train")
  assert [int(e["sequence_index"]) for e in beam_examples] == list(range(6))
  for expected, actual in zip(plain_examples, beam_examples):
    for feature in ("image", "action", "reward", "task_label"):
      np.testing.assert_array_equal(actual[feature], expected[feature])


@pytest.mark.slow  # End-to-end generation on Beam's DirectRunner.
def test_human_motion_beam_generation_equals_plain_generation(tmp_path, monkeypatch):
  """The generated human-motion stand-in on Beam gives the plain builder's examples."""
  import apache_beam  # noqa: F401
  monkeypatch.setattr(human_builder, "GENERATION_CHUNK_SIZE", 5)  # Several chunks per split.
  plain, beam = _build_tiny_both_ways(human_builder.Builder, tmp_path)
  for split in ("train", "test"):
    plain_examples, beam_examples = _read(plain, split), _read(beam, split)
    assert len(beam_examples) == len(plain_examples) > 5
    by_index = {int(e["sequence_index"]): e for e in beam_examples}
    for expected in plain_examples:
      actual = by_index[int(expected["sequence_index"])]
      for feature in ("image", "true_object_pos", "action", "video_name"):
        np.testing.assert_array_equal(actual[feature], expected[feature])


# The builders' command line (`python -m datasets.<name>`). -------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--num_workers", "0"], "argument --num_workers: expected a whole number of worker "
                             "processes >= 1 (1 generates in this process), got '0'; leave "
                             "--num_workers out to use every core"),
    (["--num_workers", "2", "--beam_pipeline_options", "runner=DirectRunner"],
     "--num_workers sets the worker processes of generation without Beam; with "
     "--beam_pipeline_options give the runner's workers instead (e.g. direct_num_workers=2), "
     "or leave --beam_pipeline_options out."),
    (["--config", "huge"], "argument --config: invalid choice: 'huge'"),
])
def test_command_line_refuses_bad_flags(argv, message, capsys, tmp_path):
  with pytest.raises(SystemExit) as exit_info:
    basketball_builder.main(argv + ["--data_dir", str(tmp_path)])
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err
  assert list(tmp_path.iterdir()) == []


def test_command_line_generates_a_config(tmp_path, capsys):
  builder = human_builder.main(["--config", "tiny", "--data_dir", str(tmp_path),
                                "--num_workers", "2"])
  assert builder.num_workers == 2
  last = capsys.readouterr().out.strip().splitlines()[-1]
  assert last.startswith(f"human_motion 'tiny' in {builder.data_dir}: 16 train / 8 test "
                         f"sequences (")
  assert last.endswith(" s, num_workers=2).")
  assert [int(e["sequence_index"]) for e in _read(builder, "test")] == list(range(8))
