"""Tests of `video_structure/training/run_lock.py`: one trainer per run directory."""

import json
import os
import signal
import socket
import subprocess
import sys
import warnings

import pytest

from video_structure.training import run_lock

# Holds the lock of the run directory argv[1] the way train.py does, then waits to be killed.
_HOLDER_SCRIPT = """
import sys, time
from video_structure.training import run_lock
run_lock.RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def test_lock_records_its_holder_and_refuses_a_second_one(tmp_path):
  run_dir = str(tmp_path / "run")
  with run_lock.RunLock(run_dir) as lock:
    assert lock.held
    holder = run_lock.holder(run_dir)
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert holder["started"]  # ISO time with its UTC offset.
    with open(os.path.join(run_dir, ".lock")) as f:
      assert json.load(f) == holder
    # flock is per open file: a second RunLock is refused even within this process.
    with pytest.raises(run_lock.RunLockedError,
                       match=rf"--run_dir {run_dir} is in use by another training \(process "
                             rf"{os.getpid()}, started .*\); wait for it to finish or stop it "
                             rf"\(kill {os.getpid()}\), or pass another --run_dir\."):
      run_lock.RunLock(run_dir).acquire()
  assert not lock.held
  assert run_lock.holder(run_dir) is None
  assert os.path.exists(os.path.join(run_dir, ".lock"))  # Left behind, harmless.
  with run_lock.RunLock(run_dir):  # Free again.
    assert run_lock.holder(run_dir)["pid"] == os.getpid()


def test_lock_is_released_when_its_block_raises(tmp_path):
  run_dir = str(tmp_path / "run")
  with pytest.raises(KeyError):
    with run_lock.RunLock(run_dir):
      raise KeyError("training failed")
  assert run_lock.holder(run_dir) is None


def test_stale_lock_file_is_not_held(tmp_path):
  run_dir = tmp_path / "run"
  run_dir.mkdir()
  (run_dir / ".lock").write_text(json.dumps({"pid": 999999, "host": "elsewhere",
                                             "started": "2026-01-01T00:00:00+00:00"}))
  assert run_lock.holder(str(run_dir)) is None
  assert run_lock.holder(str(tmp_path / "no_run")) is None
  with run_lock.RunLock(str(run_dir)):
    assert run_lock.holder(str(run_dir))["pid"] == os.getpid()  # Its own entries replace them.


def test_other_hosts_holder_is_named_with_its_host(tmp_path, monkeypatch):
  run_dir = str(tmp_path / "run")
  with run_lock.RunLock(run_dir):
    monkeypatch.setattr(run_lock, "_read_holder",
                        lambda handle: {"pid": 4242, "host": "gpu-node-7"})
    with pytest.raises(run_lock.RunLockedError,
                       match=r"\(process 4242 on gpu-node-7\); wait for it to finish or stop it "
                             r"\(kill 4242 on gpu-node-7\)"):
      run_lock.RunLock(run_dir).acquire()


def test_filesystem_without_flock_warns_once_and_goes_on(tmp_path, monkeypatch):
  def no_flock(handle):
    raise OSError(37, "No locks available")

  monkeypatch.setattr(run_lock, "_lock", no_flock)
  monkeypatch.setattr(run_lock, "_warned_unsupported", False)
  with pytest.warns(run_lock.RunLockWarning, match=r"Cannot lock .*run_a.*No locks available"):
    lock = run_lock.RunLock(str(tmp_path / "run_a")).acquire()
  assert not lock.held
  lock.release()  # A no-op.
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # Only once per process.
    run_lock.RunLock(str(tmp_path / "run_b")).acquire()
  assert run_lock.holder(str(tmp_path / "run_a")) is None


@pytest.mark.slow
def test_lock_of_another_process_refuses_and_dies_with_it(tmp_path):
  run_dir = str(tmp_path / "run")
  process = subprocess.Popen([sys.executable, "-c", _HOLDER_SCRIPT, run_dir],
                             stdout=subprocess.PIPE, text=True)
  try:
    assert process.stdout.readline() == "locked\n"
    assert run_lock.holder(run_dir)["pid"] == process.pid
    with pytest.raises(run_lock.RunLockedError, match=rf"\(process {process.pid}, started "):
      run_lock.RunLock(run_dir).acquire()
  finally:
    process.send_signal(signal.SIGKILL)
    process.wait()
  # The kernel released it: the lock file is still there, and free.
  assert os.path.exists(os.path.join(run_dir, ".lock"))
  assert run_lock.holder(run_dir) is None
  with run_lock.RunLock(run_dir) as lock:
    assert lock.held
