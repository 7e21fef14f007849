"""Run directories written before the recipe became a plug-in (video_structure 85e9fe4).

tests/reference/legacy_run/ is a 4-step tiny CPU-preset run written by that version's train.py
(flat config.json, old checkpoint layout); tests/reference/legacy_run_outputs.npz holds what
that version's model computed from it (tests/reference/README.md says how).
"""

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile

import h5py
import numpy as np
import pytest
import tensorflow as tf

from tests import helpers
from video_structure.cli import train as train_cli
from video_structure.model import dynamics
from video_structure.model import ops
from video_structure.training import builder
from video_structure.training import checkpoints
from video_structure.training import legacy
from video_structure.training import run_dir as run_dir_lib

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "reference")
LEGACY_RUN = os.path.join(REFERENCE, "legacy_run")
LEGACY_CHECKPOINT = os.path.join(LEGACY_RUN, "checkpoints", "ckpt-0000004.keras")


@pytest.fixture(scope="module")
def legacy_run(tmp_path_factory):
  """A copy of the legacy run directory (tests must not write into tests/reference)."""
  copy = tmp_path_factory.mktemp("legacy") / "run"
  shutil.copytree(LEGACY_RUN, copy)
  return copy


@pytest.fixture(scope="module")
def loaded(legacy_run):
  return run_dir_lib.load_run(str(legacy_run))


@pytest.fixture(scope="module")
def reference():
  return np.load(os.path.join(REFERENCE, "legacy_run_outputs.npz"))


def _h5_layout(path):
  """{dataset path: shape} of a .keras file's weights."""
  with tempfile.TemporaryDirectory() as scratch:
    with zipfile.ZipFile(path) as archive:
      archive.extract("model.weights.h5", scratch)
    layout = {}
    with h5py.File(os.path.join(scratch, "model.weights.h5"), "r") as weights:
      weights.visititems(lambda name, item: layout.__setitem__(name, item.shape)
                         if isinstance(item, h5py.Dataset) else None)
  return layout


def test_legacy_checkpoint_is_recognised(tmp_path):
  model = builder.build_model(helpers.tiny_config())
  new_path = str(tmp_path / "new.keras")
  model.save(new_path)
  assert legacy.is_legacy_checkpoint(LEGACY_CHECKPOINT)
  assert not legacy.is_legacy_checkpoint(new_path)
  (tmp_path / "junk.keras").write_bytes(b"not a zip")
  assert not legacy.is_legacy_checkpoint(str(tmp_path / "junk.keras"))


def test_converted_layout_is_todays(tmp_path, loaded):
  converted = legacy.convert_checkpoint(LEGACY_CHECKPOINT, str(tmp_path / "converted.keras"))
  fresh = str(tmp_path / "fresh.keras")
  builder.build_model(loaded.run_config).save(fresh)
  # Today's checkpoints also hold the SeedGenerator's state, which legacy ones lack (they load
  # with the initial state; see KeypointVRNN.load_own_variables).
  fresh_layout = _h5_layout(fresh)
  assert fresh_layout.pop(f"dynamics/vars/{dynamics.SEED_STATE_KEY}") == (2,)
  assert _h5_layout(converted) == fresh_layout
  assert len(_h5_layout(converted)) == 166


def test_legacy_run_loads_with_its_step_and_recipe(legacy_run, loaded):
  assert loaded.step == 4
  assert loaded.run_config.recipe is not None
  assert loaded.run_config.recipe.foreground_colour_weight == 1.0
  assert loaded.run_config.recipe.reseed_every_steps == 100
  assert loaded.config.num_keypoints == 4 and loaded.config.initial_filters == 4
  # The Adam state came along: 2 slots per trainable variable plus the step counter.
  assert len(loaded.model.optimizer.variables) == 2 * len(loaded.model.trainable_variables) + 1
  assert int(loaded.model.optimizer.iterations.numpy()) == 4


def test_legacy_file_is_not_modified(loaded):
  with open(LEGACY_CHECKPOINT, "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  checkpoints.load_checkpoint(LEGACY_CHECKPOINT, loaded.config)
  with open(LEGACY_CHECKPOINT, "rb") as f:
    assert hashlib.sha256(f.read()).hexdigest() == digest
  with open(os.path.join(LEGACY_RUN, "config.json")) as f:
    assert "model" not in json.load(f)  # Still the flat legacy format.


def _frames(seed, length):
  rng = np.random.RandomState(seed)
  return tf.constant(rng.randint(0, 256, (2, length, 64, 64, 3)).astype(np.float32) / 255.0 - 0.5)


def _old_code_mu(heatmaps):
  """mu as 85e9fe4 computed it, `[B, T, S, S, K]` -> `[B, T, K]`: eps added to the map before
  its mean as well (issue 17 moved to the authors' formula, eps in the denominator only)."""
  means = heatmaps.astype(np.float64).mean(axis=(2, 3)) + ops.HEATMAP_EPSILON
  return means / (ops.HEATMAP_EPSILON + means.max(axis=-1, keepdims=True))


def test_detections_and_reconstructions_match_the_old_code(loaded, reference):
  # The stored keypoints hold the old code's mu (up to 7e-6 from today's), so the network's
  # heatmaps are checked through the old formula and the reconstruction is rendered from the old
  # keypoints; today's keypoints are those of ops.maps_to_keypoints on the same heatmaps.
  model = loaded.model
  frames = _frames(0, 8)
  keypoints, heatmaps = model.detect(frames)
  np.testing.assert_allclose(keypoints.numpy()[..., :2], reference["keypoints"][..., :2],
                             atol=1e-6)
  np.testing.assert_allclose(_old_code_mu(heatmaps.numpy()), reference["keypoints"][..., 2],
                             atol=1e-6)
  np.testing.assert_array_equal(
      keypoints.numpy(), ops.unfold_time(ops.maps_to_keypoints(ops.fold_time(heatmaps)), 2))
  old_keypoints = tf.constant(reference["keypoints"])
  reconstruction = model.reconstruct(old_keypoints, frames[:, 0], old_keypoints[:, 0])
  np.testing.assert_allclose(reconstruction.numpy()[:, ::4], reference["reconstruction"],
                             atol=1e-5)


def test_losses_match_the_old_code(loaded, reference):
  losses = loaded.model.compute_losses(_frames(1, 16), training=False,
                                       seed=tf.constant([3, 4]))[0]
  old = dict(zip(reference["loss_names"].tolist(), reference["loss_values"].tolist()))
  assert old.pop("concentration") == 0.0  # A term that this version removed (it was off).
  assert set(losses) == set(old)
  for name, value in old.items():
    # KL now comes from tfp.distributions: the same formula, rounded differently (~1e-7); mu
    # now has eps in its denominator only (issue 17), which moves these by less than 1e-5.
    # foreground_attention is 1 minus a sum of ~1: one float32 step of 1 (1.2e-7) either way
    # with the CPU's summation order (an AVX2-only AMD EPYC gives -1.2e-7 for 0).
    np.testing.assert_allclose(float(losses[name]), value, rtol=1e-5, atol=2.5e-7,
                               err_msg=name)


@pytest.mark.slow
def test_legacy_run_resumes(legacy_run, tmp_path):
  data_dir = tmp_path / "tfds"
  helpers.prepare_tiny_basketball(data_dir)
  argv = ["--run_dir", str(legacy_run), "--data_dir", str(data_dir), "--num_steps", "6",
          "--skip_final"] + helpers.tiny_train_flags(image_summary_every_steps=4,
                                                     num_eval_sequences=4)
  with contextlib.redirect_stdout(io.StringIO()):
    model = train_cli.main(argv)
  assert int(model.optimizer.iterations.numpy()) == 6
  assert checkpoints.latest_checkpoint(str(legacy_run)).endswith("ckpt-0000006.keras")
  with open(legacy_run / "config.json") as f:
    assert json.load(f)["format_version"] == 2  # Recorded in today's format on resume.
