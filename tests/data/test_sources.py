"""Tests of the dataset dispatcher (`video_structure.data.sources`)."""

import os
import types

import numpy as np
import pytest
import tensorflow_datasets as tfds

from video_structure.data import basketball
from video_structure.data import sources
from video_structure.data import tfds_builders
from video_structure.data.builders import basketball as basketball_builder


def _config(dataset, dataset_config="tiny", dataset_path=""):
  """The fields of a model `Config` that `sources.prepare` reads."""
  return types.SimpleNamespace(dataset=dataset, dataset_config=dataset_config,
                               dataset_path=dataset_path, image_size=64, sequence_length=8)


def test_evaluation_defaults_per_dataset():
  assert sources.evaluation_defaults("basketball") == sources.EvaluationDefaults("per_object", 20)
  assert sources.evaluation_defaults("human36m") == sources.EvaluationDefaults("mean", 100)
  for name in sources.DATASETS:
    defaults = sources.evaluation_defaults(name)
    assert defaults.best_sample_rule in sources.BEST_SAMPLE_RULES
    assert defaults.num_video_samples > 0
  with pytest.raises(ValueError, match=r"Unknown dataset 'mnist'; known: basketball, human36m"):
    sources.evaluation_defaults("mnist")
  assert set(sources.TFDS_BUILDERS) == set(sources.TFDS_DATASETS)


def test_data_source_best_sample_rule():
  assert sources.DataSource("a", None, None).best_sample_rule == "per_object"
  assert sources.DataSource("a", None, None, None, False).best_sample_rule == "mean"


def test_dataset_for_argument(tmp_path):
  assert sources.dataset_for_argument("basketball") == ("basketball", "")
  assert sources.dataset_for_argument(str(tmp_path)) == ("video_folder", str(tmp_path))
  with pytest.raises(FileNotFoundError, match="no such folder"):
    sources.dataset_for_argument(os.path.join(str(tmp_path), "missing"))
  with pytest.raises(ValueError, match="expected one of basketball, human36m, dmcs"):
    sources.dataset_for_argument("mnist")


def test_prepare_basketball_reads_the_builder(tmp_path):
  source = sources.prepare(_config("basketball"), tmp_path / "tfds", test_split="test[:3]")
  assert source.name == "basketball/tiny"
  assert tuple(source.object_names) == basketball.OBJECT_NAMES
  assert source.best_sample_rule == "per_object" and source.num_video_samples == 20
  assert source.label_names is None
  builder = tfds_builders.prepare(basketball_builder.Builder, tmp_path / "tfds", "tiny")
  for sequences, split in ((source.train, "train"), (source.test, "test[:3]")):
    expected = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
    actual = list(tfds.as_numpy(sequences))
    assert len(actual) == len(expected) and set(actual[0]) == {"image", "true_object_pos"}
    for got, stored in zip(actual, expected):
      np.testing.assert_array_equal(got["image"], stored["image"])
      np.testing.assert_array_equal(got["true_object_pos"], stored["true_object_pos"])


def test_prepare_errors(tmp_path):
  with pytest.raises(ValueError, match=r"unknown dataset 'mnist'; known: basketball, human36m, "
                                       r"dmcs, video_folder"):
    sources.prepare(_config("mnist"), tmp_path)
  with pytest.raises(ValueError, match="needs `dataset_path`"):
    sources.prepare(_config("video_folder"), tmp_path)
