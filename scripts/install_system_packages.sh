#!/usr/bin/env bash
# Installs the Debian packages for headless MuJoCo rendering with EGL (MUJOCO_GL=egl), used by
# the DeepMind Control Suite generator (video_structure/data/dmcs.py). Without a GPU, EGL renders
# with Mesa's software rasteriser (llvmpipe).
#
# Idempotent: prints nothing and changes nothing when the packages are already installed.
# Runs apt-get directly (as root, no sudo). Debian 12 package names.
#
#   libegl1          the EGL loader (libEGL.so.1, glvnd)
#   libegl-mesa0     Mesa's EGL implementation (surfaceless platform, no display needed)
#   libgl1-mesa-dri  Mesa's drivers, including llvmpipe (swrast_dri.so)
#   libopengl0       libOpenGL.so.0, which PyOpenGL loads for the GL calls with EGL
#
# These four are what a rendering process loads (checked in /proc/<pid>/maps); apt pulls in
# their dependencies (libglvnd0, libgbm1, libglapi-mesa, libllvm15, ...).
#
# Optional fallback backend (MUJOCO_GL=osmesa): pass --osmesa to also install libosmesa6.
set -euo pipefail

packages=(libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0)
for argument in "$@"; do
  case "$argument" in
    --osmesa) packages+=(libosmesa6) ;;
    *) echo "install_system_packages.sh: unknown argument '$argument' (expected --osmesa)" >&2
       exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install_system_packages.sh: dpkg-query not found; this script is for Debian/Ubuntu." \
       "Install EGL and Mesa (libEGL, Mesa EGL, Mesa DRI drivers, libOpenGL) yourself." >&2
  exit 1
fi

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  if [ "$status" != "install ok installed" ]; then
    missing+=("$package")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install_system_packages.sh: missing packages ${missing[*]}; run this script as root" \
       "(apt-get install needs it)." >&2
  exit 1
fi

echo "Installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
# The package lists may be absent (fresh image) or stale; update once before installing.
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
