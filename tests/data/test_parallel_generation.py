"""Chunks made in worker processes (`video_structure/data/parallel_generation.py`): the same
examples in the same order for any number of workers, frames encoded in the workers stored as
TFDS would store them, errors in a worker raised here (not a hang), and the --num_workers
setting checked."""

import argparse
import functools
import os
import subprocess
import sys
import threading
import zlib

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from isal import isal_zlib

from video_structure.data import parallel_generation as pg
from tests.data.generation_helpers import (CHUNKS, dying_chunk, failing_chunk,
                                          record_started_workers, toy_chunk)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_with_timeout(function, seconds=60):
  """function() in a thread; fails the test instead of hanging if it does not return."""
  outcome = {}

  def target():
    try:
      outcome["result"] = function()
    except BaseException as error:  # pylint: disable=broad-except
      outcome["error"] = error

  thread = threading.Thread(target=target, daemon=True)
  thread.start()
  thread.join(seconds)
  assert not thread.is_alive(), f"did not return within {seconds} s"
  if "error" in outcome:
    raise outcome["error"]
  return outcome["result"]


# ----------------------------------------------------------------------------- num_workers


def test_num_workers_default_is_every_core_and_bad_values_are_refused():
  assert pg.resolve_num_workers(None) == pg.available_cores() >= 1
  assert pg.resolve_num_workers(3) == 3
  assert pg.resolve_num_workers(np.int64(2)) == 2
  for bad in (0, -1, 1.5, True, "2"):
    with pytest.raises(ValueError, match=r"^--num_workers must be a whole number of worker "
                                         r"processes >= 1 \(1 generates in this process\), got "
                                         + repr(bad).replace("(", r"\(").replace(")", r"\)")
                                         + r"; leave it out to use every core \(\d+ here\)\.$"):
      pg.resolve_num_workers(bad, "--num_workers")


def test_num_workers_flag():
  parser = argparse.ArgumentParser()
  pg.add_num_workers_argument(parser)
  assert parser.parse_args([]).num_workers is None
  assert parser.parse_args(["--num_workers", "2"]).num_workers == 2


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_num_workers_flag_names_the_flag_and_the_fix(value, capsys):
  parser = argparse.ArgumentParser(prog="generate")
  pg.add_num_workers_argument(parser)
  with pytest.raises(SystemExit) as exit_info:
    parser.parse_args(["--num_workers", value])
  assert exit_info.value.code == 2
  error = capsys.readouterr().err.strip().splitlines()[-1]
  assert error == (f"generate: error: argument --num_workers: expected a whole number of worker "
                   f"processes >= 1 (1 generates in this process), got {value!r}; leave "
                   f"--num_workers out to use every core ({pg.available_cores()} here).")


def test_builders_check_num_workers():
  from video_structure.data.builders import basketball  # pylint: disable=import-outside-toplevel
  with pytest.raises(ValueError, match=r"^num_workers must be a whole number .* got 0;"):
    basketball.Builder(config="tiny", num_workers=0)


# ----------------------------------------------------------------------------- order


@pytest.mark.slow  # Starts worker processes.
def test_any_number_of_workers_gives_the_same_examples_in_order():
  in_process = list(pg.generate_in_workers(CHUNKS, toy_chunk, num_workers=1))
  assert [key for key, _ in in_process] == list(range(15))
  make_chunk = functools.partial(toy_chunk, scale=2)
  expected = list(pg.generate_in_workers(CHUNKS, make_chunk, num_workers=1))
  for num_workers in (2, 3, 8):  # 8: more workers than chunks (only 4 are started).
    got = list(pg.generate_in_workers(CHUNKS, make_chunk, num_workers=num_workers))
    assert [key for key, _ in got] == list(range(15))
    for (key, example), (expected_key, expected_example) in zip(got, expected):
      assert key == expected_key and example["value"] == expected_example["value"] == 2 * key
      np.testing.assert_array_equal(example["frames"], expected_example["frames"])


def test_one_chunk_or_one_worker_runs_in_this_process(monkeypatch):
  monkeypatch.setattr(pg, "_Worker", None)  # Starting a worker would fail.
  assert [k for k, _ in pg.generate_in_workers([(0, 3)], toy_chunk, num_workers=4)] == [0, 1, 2]
  assert len(list(pg.generate_in_workers(CHUNKS, toy_chunk, num_workers=1))) == 15


# ----------------------------------------------------------------------------- encoding


def _frames_feature():
  return pg.PreEncodableTensor(shape=(2, 3), dtype=np.uint8,
                               encoding=tfds.features.Encoding.ZLIB)


@pytest.mark.slow  # Starts worker processes.
def test_frames_encoded_in_the_workers_are_the_bytes_written_here():
  feature = _frames_feature()
  examples = list(pg.generate_in_workers(CHUNKS, toy_chunk, num_workers=2,
                                         encoders={"frames": feature}))
  for key, example in examples:
    assert isinstance(example["frames"], pg.PreEncoded)
    frames = np.full((2, 3), key, dtype=np.uint8)
    # What the feature writes for raw frames in this process: ISA-L's zlib stream.
    assert feature.encode_example(example["frames"]) == feature.encode_example(frames)
    assert feature.encode_example(frames) == isal_zlib.compress(frames.tobytes(), pg.ISAL_LEVEL)


@pytest.mark.parametrize("shape", [(2, 3), (None, None)], ids=["static", "dynamic"])
def test_isal_compressed_frames_decode_as_tfds_zlib_tensors(shape):
  feature = pg.PreEncodableTensor(shape=shape, dtype=np.uint8,
                                  encoding=tfds.features.Encoding.ZLIB)
  plain = tfds.features.Tensor(shape=shape, dtype=np.uint8, encoding=tfds.features.Encoding.ZLIB)
  frames = np.random.default_rng(0).integers(0, 256, (2, 3), dtype=np.uint8)
  encoded, tfds_encoded = feature.encode_example(frames), plain.encode_example(frames)
  if shape[0] is None:  # TFDS stores the shape beside the bytes.
    assert encoded["shape"] == tfds_encoded["shape"] == (2, 3)
    encoded, tfds_encoded = encoded["value"], tfds_encoded["value"]
  # Not TFDS' own bytes (zlib level 6), but the same zlib format: Python's zlib and TFDS'
  # reader (tf.io.decode_compressed) give back the frames.
  assert encoded != tfds_encoded
  assert zlib.decompress(encoded) == frames.tobytes()
  assert tf.io.decode_compressed(encoded, compression_type="ZLIB").numpy() == frames.tobytes()
  if shape[0] is not None:
    np.testing.assert_array_equal(plain.decode_example(tf.constant(encoded)).numpy(), frames)
    # TFDS' own checks still apply.
    with pytest.raises(ValueError, match="does not match"):
      feature.encode_example(np.zeros((2, 4), np.uint8))


def test_pre_encodable_tensor_is_stored_as_a_plain_tensor():
  feature = _frames_feature()
  plain = tfds.features.Tensor(shape=(2, 3), dtype=np.uint8,
                               encoding=tfds.features.Encoding.ZLIB)
  assert feature.to_json() == plain.to_json()
  assert feature.to_proto() == plain.to_proto()
  assert feature.to_json()["type"] == "tensorflow_datasets.core.features.tensor_feature.Tensor"
  restored = tfds.features.FeatureConnector.from_json(feature.to_json())
  assert type(restored) is tfds.features.Tensor  # pylint: disable=unidiomatic-typecheck


def test_a_value_encoded_for_another_feature_is_refused():
  encoded = pg.pre_encode(_frames_feature(), np.zeros((2, 3), np.uint8))
  other = pg.PreEncodableTensor(shape=(3, 2), dtype=np.uint8,
                                encoding=tfds.features.Encoding.ZLIB)
  with pytest.raises(ValueError, match=r"encoded in a worker for feature .* was given to "
                                       r"feature .*; the builder's encoders must be its own"):
    other.encode_example(encoded)


# ----------------------------------------------------------------------------- errors


@pytest.mark.slow  # Starts worker processes.
def test_an_error_in_a_worker_is_raised_here_naming_the_chunk():
  with pytest.raises(ValueError) as error_info:
    _run_with_timeout(lambda: list(pg.generate_in_workers(
        CHUNKS, failing_chunk, num_workers=2, label="toy train")))
  assert str(error_info.value) == "bad item 5"  # The worker's own exception, type and message.
  note = "\n".join(error_info.value.__notes__)
  assert note.startswith("(raised in a generation worker process while making toy train items "
                         "4..7; --num_workers 1 makes the examples in this process; the "
                         "worker's traceback:\n")
  assert "in failing_chunk" in note and 'raise ValueError(f"bad item {start + 1}")' in note


def test_a_chunk_function_that_does_not_pickle_is_refused_before_any_worker_starts(monkeypatch):
  monkeypatch.setattr(pg, "_Worker", None)  # Starting a worker would fail.
  with pytest.raises(TypeError, match=r"^make_chunk and encoders must be picklable to run in "
                                      r"worker processes \(.*\): use a module-level function "
                                      r"or a functools.partial of one, or num_workers=1\.$"):
    list(pg.generate_in_workers(CHUNKS, lambda start, size: [], num_workers=2))


@pytest.mark.slow  # Starts worker processes.
def test_a_worker_that_dies_is_reported_not_waited_for():
  with pytest.raises(RuntimeError, match=r"^A generation worker process exited \(code 3\) while "
                                         r"making toy train items 4\.\.7: killed, out of "
                                         r"memory, or a crash in native code; .* Generate with "
                                         r"--num_workers 1 "):
    _run_with_timeout(lambda: list(pg.generate_in_workers(
        CHUNKS, dying_chunk, num_workers=2, label="toy train")))


@pytest.mark.slow  # Starts worker processes.
def test_workers_are_stopped_when_the_writer_stops_early(monkeypatch):
  started = record_started_workers(monkeypatch)
  examples = pg.generate_in_workers(CHUNKS * 20, toy_chunk, num_workers=2)
  assert next(examples)[0] == 0
  examples.close()  # E.g. an error while writing, or Ctrl-C in this process.
  assert len(started) == 2
  assert all(process.returncode is not None for process in started)


@pytest.mark.slow  # A subprocess that generates with worker processes.
def test_a_script_without_a_main_guard_is_not_run_again_by_the_workers(tmp_path):
  """Workers are fresh interpreters that do not import the parent's __main__ script."""
  script = tmp_path / "script.py"
  script.write_text(
      "from video_structure.data import parallel_generation as pg\n"
      "from tests.data.generation_helpers import CHUNKS, toy_chunk\n"
      "print('script ran', flush=True)\n"
      "examples = list(pg.generate_in_workers(CHUNKS, toy_chunk, num_workers=2))\n"
      "print(len(examples), 'examples', flush=True)\n")
  result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=REPO_ROOT))
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.splitlines() == ["script ran", "15 examples"]
