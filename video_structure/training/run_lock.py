"""One trainer per run directory: a lock on `<run_dir>/.lock`.

  with run_lock.RunLock(run_dir):  # RunLockedError if another process holds it
    ...                            # train, export, evaluate

The lock is `fcntl.flock` on the file, so the kernel releases it when its holder exits in any
way (even SIGKILL): a lock file left behind is harmless and is not held (`holder` returns None).
The file is never deleted (a process could be waiting on the old file while a new one is
created). The holder writes its pid, host and start time into it, for the message of the
trainer it refuses. Where flock is not available (Windows, some network filesystems) a warning
is given once per process and training goes on unlocked.
"""

import datetime
import json
import os
import socket
import warnings

try:
  import fcntl
except ImportError:  # Windows.
  fcntl = None

LOCK_FILE = ".lock"
_HOLDER_SIZE_LIMIT = 4096
_warned_unsupported = False


class RunLockedError(RuntimeError):
  """Another process trains in the run directory."""


class RunLockWarning(UserWarning):
  """The run directory cannot be locked (no flock here); training goes on unlocked."""


class RunLock:
  """The lock of one run directory, as a context manager (`acquire` / `release` by hand too).

  Args:
    run_dir: the run directory (created if missing).
  """

  def __init__(self, run_dir):
    self.run_dir = run_dir
    self.path = os.path.join(run_dir, LOCK_FILE)
    self._handle = None

  def acquire(self):
    """Takes the lock and writes this process' pid, host and start time into the file.

    Raises:
      RunLockedError: another process holds it (the message names its pid and host).
    """
    os.makedirs(self.run_dir, exist_ok=True)
    handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      _lock(handle)
    except BlockingIOError:
      holder_info = _read_holder(handle)
      os.close(handle)
      raise RunLockedError(_locked_message(self.run_dir, holder_info)) from None
    except OSError as error:  # No flock on this filesystem (ENOLCK, EOPNOTSUPP, ...).
      os.close(handle)
      _warn_unsupported(self.run_dir, error)
      return self
    self._handle = handle
    _write_holder(handle)
    return self

  def release(self):
    """Releases the lock (the file stays); a no-op if it is not held."""
    if self._handle is None:
      return
    handle, self._handle = self._handle, None
    try:
      fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
      os.close(handle)

  @property
  def held(self):
    return self._handle is not None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exception_info):
    self.release()


def holder(run_dir):
  """Who holds the lock of `run_dir`: `{"pid", "host", "started"}` (entries missing if the
  holder has not written them yet), or None if nobody does (no lock file, or a stale one)."""
  path = os.path.join(run_dir, LOCK_FILE)
  try:
    handle = os.open(path, os.O_RDWR)  # Writable: flock over NFS needs it.
  except FileNotFoundError:
    return None
  try:
    try:
      _lock(handle)
    except BlockingIOError:
      return _read_holder(handle)
    except OSError:  # No flock here: nobody can hold it.
      return None
    fcntl.flock(handle, fcntl.LOCK_UN)
    return None
  finally:
    os.close(handle)


def _lock(handle):
  """Non-blocking exclusive flock; BlockingIOError if held, OSError if unsupported."""
  if fcntl is None:
    raise OSError("fcntl.flock is not available on this system")
  fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _write_holder(handle):
  info = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
  os.ftruncate(handle, 0)
  os.pwrite(handle, (json.dumps(info) + "\n").encode("utf-8"), 0)
  os.fsync(handle)


def _read_holder(handle):
  try:
    info = json.loads(os.pread(handle, _HOLDER_SIZE_LIMIT, 0).decode("utf-8"))
  except (OSError, ValueError):  # Empty (the holder is just writing it) or not ours.
    return {}
  return info if isinstance(info, dict) else {}


def _locked_message(run_dir, holder_info):
  pid, host = holder_info.get("pid"), holder_info.get("host")
  if pid is None:
    who, stop = "another process", "stop it"
  elif host in (None, socket.gethostname()):
    who, stop = f"process {pid}", f"stop it (kill {pid})"
  else:
    who, stop = f"process {pid} on {host}", f"stop it (kill {pid} on {host})"
  since = f", started {holder_info['started']}" if holder_info.get("started") else ""
  return (f"--run_dir {run_dir} is in use by another training ({who}{since}); wait for it to "
          f"finish or {stop}, or pass another --run_dir.")


def _warn_unsupported(run_dir, error):
  global _warned_unsupported  # pylint: disable=global-statement
  if _warned_unsupported:
    return
  _warned_unsupported = True
  warnings.warn(f"Cannot lock {run_dir} ({error}); nothing stops a second training from "
                f"writing to it at the same time.", RunLockWarning, stacklevel=3)
