"""Atomic file writes: a reader never sees a half-written file, even after a crash.

Every writer of the project goes through these helpers: the content is written to a temporary
file in the destination's directory (so that the final rename stays on one filesystem), flushed
and fsync'ed, renamed onto the destination with `os.replace` (atomic on POSIX and Windows), and
the directory is fsync'ed so that the rename itself survives a power loss. On any error the
temporary file is removed and the destination is left as it was. Missing parent directories are
created.

A directory (a SavedModel) is written by `atomic_save_directory`: built as `<path>.tmp`, then
swapped in for the old one (kept as `<path>.old` for the instant between two renames).

Temporary files are named `.<name>.<random>.tmp<extension>` (hidden, unique per call, so that
concurrent writers never share one; the destination's extension is kept for writers that choose
the format from the file name, such as Keras' `model.save`).
"""

import json
import os
import shutil
import tempfile

TEMPORARY_MARKER = ".tmp"


def atomic_save(path, save_function):
  """Writes `path` atomically through `save_function(temporary_path)`.

  Args:
    path: the destination file.
    save_function: called once with the path of a temporary file in the same directory (it
      already exists, empty, and has the destination's extension); it must write the complete
      content there (by path, e.g. `model.save(temporary)` or `image.save(temporary)`).

  Returns:
    `path`.
  """
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  name = os.path.basename(path)
  extension = os.path.splitext(name)[1]
  handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.",
                                       suffix=TEMPORARY_MARKER + extension)
  os.close(handle)
  try:
    save_function(temporary)
    _fsync_file(temporary)
    os.replace(temporary, path)
  except BaseException:
    if os.path.exists(temporary):
      os.remove(temporary)
    raise
  fsync_directory(directory)
  return path


def atomic_write_bytes(path, data):
  """Writes the bytes `data` to `path` atomically; returns `path`."""

  def write(temporary):
    with open(temporary, "wb") as stream:
      stream.write(data)

  return atomic_save(path, write)


def atomic_write_text(path, text, encoding="utf-8"):
  """Writes the string `text` to `path` atomically; returns `path`."""
  return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path, obj, **json_kwargs):
  """Writes `json.dumps(obj, **json_kwargs)` to `path` atomically; returns `path`."""
  return atomic_write_text(path, json.dumps(obj, **json_kwargs))


def atomic_save_directory(path, save_function):
  """Writes the directory `path` through `save_function(temporary_directory)` and swaps it in.

  `save_function` gets `<path>.tmp` (not yet existing; a leftover of a killed earlier write is
  removed first) and must create the complete directory there. An existing `path` is renamed
  to `<path>.old`, the new directory renamed to `path`, then the old one deleted. Returns the
  absolute path.
  """
  path = os.path.abspath(os.fspath(path))
  temporary = f"{path}.tmp"
  shutil.rmtree(temporary, ignore_errors=True)
  save_function(temporary)
  previous = f"{path}.old"
  if os.path.exists(path):
    shutil.rmtree(previous, ignore_errors=True)
    os.replace(path, previous)
  os.replace(temporary, path)
  shutil.rmtree(previous, ignore_errors=True)
  fsync_directory(os.path.dirname(path))
  return path


def rename_durably(source, destination):
  """Renames `source` to `destination` (same filesystem) so that both the file's content and
  the rename survive a power loss: the file is fsync'ed before, its directory after."""
  _fsync_file(source)
  os.replace(source, destination)
  fsync_directory(os.path.dirname(os.path.abspath(destination)))
  return destination


def is_temporary(name):
  """True for the file name of a temporary file these helpers (or an older version of this
  project, which used `<name>.tmp`) may have left behind when a process was killed."""
  return TEMPORARY_MARKER in name


def _fsync_file(path):
  """Flushes a written file to disk (a directory, such as a SavedModel, is skipped)."""
  if os.path.isdir(path):
    return
  with open(path, "rb+") as stream:
    os.fsync(stream.fileno())


def fsync_directory(directory):
  """Makes a rename in `directory` durable; a no-op where directories cannot be opened
  (Windows) or synced (some network filesystems)."""
  try:
    handle = os.open(directory, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(handle)
  except OSError:
    pass
  finally:
    os.close(handle)
