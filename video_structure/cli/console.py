"""The console side of the commands: short error lines, a quiet TensorFlow start-up, --debug.

The console entry points (the `run()` functions of pyproject.toml [project.scripts], also run by
the top-level train.py and evaluate.py) call `run_command(main, "train")`; `main(argv)` itself
raises its exceptions for Python callers and tests.

  * A user error (see below) prints its message and the path of the log file that holds the
    traceback: two lines, exit status 2. An argparse error prints one line, exit status 2.
  * Any other exception is taken for a bug: its type and first line, then the log path; exit
    status 1.
  * Ctrl-C prints one line; exit status 130. A closed output pipe (`... | head`) ends quietly.
  * TensorFlow's start-up messages are hidden: TF_CPP_MIN_LOG_LEVEL defaults to 3 (a value the
    user set wins), the C++ lines that TensorFlow writes while it is imported (before it reads
    that variable; "oneDNN custom operations are on", "Could not find cuda drivers") are
    filtered by the same level, and absl's Python warnings (TFDS's deprecation notes) are
    hidden.
  * `--debug`, accepted by every command (removed from the arguments before `main` sees them),
    shows every log and prints the traceback of an error as well.

User errors are problems the person at the console fixes, reported by a message written for
them: `UserError` and its subclasses (including argparse's errors); the exceptions about files
and directories (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
PermissionError); ValueError and FloatingPointError (bad values, a diverged loss) when raised by
the project's own code (the innermost traceback frame is in `video_structure/`: from inside a
library they more likely mean a bug of ours); and the classes named in USER_ERROR_CLASS_NAMES,
for modules that should not import the command-line package (training/run_lock.py's
RunLockedError).

The log file is `$VIDEO_STRUCTURE_CACHE/logs/<command>-error.log` (default
`~/.cache/video_structure/logs/`, the cache of the I3D weights): the run directory is unknown
when the arguments are wrong, and unlike a shared /tmp the cache is per user and survives a
reboot, so the file can still be attached to a bug report later. Each error of a command
overwrites its file; if the cache is not writable the file goes to the temporary directory.
"""

import argparse
import contextlib
import datetime
import importlib.abc
import importlib.util
import os
import re
import select
import shlex
import sys
import tempfile
import traceback
import warnings

DEBUG_FLAG = "--debug"
EXIT_USER_ERROR = 2
EXIT_BUG = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a process ended by Ctrl-C.
TF_LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# Read when this module is imported, i.e. when the `video_structure.cli` package is, before the
# command modules set their own default: a value the user set wins over ours.
USER_TF_LOG_LEVEL = os.environ.get(TF_LOG_LEVEL_VARIABLE)
QUIET_TF_LOG_LEVEL = "3"  # 2 still shows "failed call to cuInit" on every machine without GPU.
# Exceptions of modules that should not import this package, matched by class name.
USER_ERROR_CLASS_NAMES = frozenset({"RunLockedError"})
USER_OS_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                  PermissionError)
VALIDATION_ERRORS = (ValueError, FloatingPointError)
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# absl's C++ log line: severity letter, date (MMDD), time, thread, file:line]. Before absl is
# initialised the time reads 00:00:<seconds since 1970>.
_ABSL_LOG_LINE = re.compile(r"([IWEF])\d{4} [\d:.]+ +\d+ \S+:\d+\] ")
_ABSL_SEVERITIES = "IWEF"  # Index = the TF_CPP_MIN_LOG_LEVEL that hides the severity.
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to"


class UserError(Exception):
  """Base of the exceptions that the person at the console fixes: the console prints only the
  message (which says what is wrong, with which file or flag, and how to fix it)."""


class UsageError(UserError):
  """A command-line argument error found by argparse (one line on the console)."""

  def __init__(self, prog, message):
    super().__init__(message)
    self.prog = prog


def is_user_error(error):
  """Whether `error` is a user error (see the module docstring) rather than a bug."""
  if isinstance(error, (UserError,) + USER_OS_ERRORS):
    return True
  if any(cls.__name__ in USER_ERROR_CLASS_NAMES for cls in type(error).__mro__):
    return True
  return isinstance(error, VALIDATION_ERRORS) and _raised_in_project(error)


def _raised_in_project(error):
  frames = traceback.extract_tb(error.__traceback__)
  return bool(frames) and os.path.abspath(frames[-1].filename).startswith(PACKAGE_DIR + os.sep)


def error_log_path(command):
  """Where `run_command` writes the traceback of an error of `command`."""
  # The same cache directory as evaluation/i3d.default_cache_dir (not imported: TensorFlow).
  cache_dir = os.environ.get("VIDEO_STRUCTURE_CACHE") or "~/.cache/video_structure"
  return os.path.join(os.path.expanduser(cache_dir), "logs", f"{command}-error.log")


def write_error_log(command, error):
  """Writes the command line and the traceback of `error`; returns the file's path, or None if
  neither the cache nor the temporary directory is writable."""
  text = (f"{datetime.datetime.now().isoformat(timespec='seconds')}  {shlex.join(sys.argv)}\n"
          f"working directory: {os.getcwd()}\n\n"
          + "".join(traceback.format_exception(error)))
  fallback = os.path.join(tempfile.gettempdir(), f"video_structure-{command}-error.log")
  for path in (error_log_path(command), fallback):
    try:
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path, "w", encoding="utf-8") as log:
        log.write(text)
      return path
    except OSError:
      continue
  return None


def run_command(main, command, argv=None, prog=None, interrupted_hint=None):
  """Runs `main(argv)` for the console and returns the exit status (see the module docstring).

  Args:
    main: The command's `main(argv)`.
    command: Short name of the command, for the log file ("train").
    argv: The arguments (default `sys.argv[1:]`); `--debug` is removed from them.
    prog: Name printed before the error (default: the script's name, as argparse does).
    interrupted_hint: What to do after Ctrl-C, appended to "interrupted".
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  debug = DEBUG_FLAG in argv
  argv = [argument for argument in argv if argument != DEBUG_FLAG]
  prog = prog or os.path.basename(sys.argv[0])
  with _console_settings(debug):
    try:
      main(argv)
      return 0
    except KeyboardInterrupt:
      if debug:
        traceback.print_exc()
      _print_lines(f"{prog}: interrupted" + (f"; {interrupted_hint}" if interrupted_hint
                                             else "") + ".")
      return EXIT_INTERRUPTED
    except UsageError as error:  # Raised only without --debug (argparse prints its own then).
      _print_lines(f"{error.prog}: error: {str(error).rstrip('.')}; see --help.")
      return EXIT_USER_ERROR
    except Exception as error:  # pylint: disable=broad-except
      if isinstance(error, BrokenPipeError) and _stdout_closed():
        # The reader of our output left (`... | head`): nothing to report. Python would
        # otherwise complain again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BUG
      return _report_error(error, command, prog, debug)


def run_module(main, module_name):
  """`run_command` for a module run as `python -m <module_name>` (its `if __name__ ==
  "__main__":` block); the command is the module's last name."""
  return run_command(main, module_name.rsplit(".", 1)[-1], prog=f"python -m {module_name}")


def _report_error(error, command, prog, debug):
  """Prints the short lines of `error`, writes its log; returns the exit status."""
  if debug:
    traceback.print_exc()
  log_path = write_error_log(command, error)
  where = f"traceback in {log_path}" if log_path else "no log file could be written"
  debug_hint = "" if debug else f"; {DEBUG_FLAG} prints it here"
  if is_user_error(error):
    _print_lines(f"{prog}: error: {str(error) or type(error).__name__}",
                 f"({where}{debug_hint})")
    return EXIT_USER_ERROR
  first_line = next(iter(str(error).strip().splitlines()), "")
  _print_lines(f"{prog}: unexpected error, probably a bug: {type(error).__name__}"
               + (f": {first_line}" if first_line else ""),
               f"({where}, for a bug report{debug_hint})")
  return EXIT_BUG


def _stdout_closed():
  """Whether the reading end of standard output was closed."""
  try:
    poller = select.poll()
    poller.register(sys.stdout.fileno(), select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))
  except (AttributeError, OSError, ValueError):  # No poll (Windows), no file descriptor.
    return False


def _print_lines(*lines):
  sys.stdout.flush()  # The error comes after everything printed before it.
  sys.stderr.write("".join(line + "\n" for line in lines))
  sys.stderr.flush()


@contextlib.contextmanager
def _console_settings(debug):
  """Quiet (or, with `debug`, verbose) logging and one-line argparse errors while it lasts."""
  saved_level = os.environ.get(TF_LOG_LEVEL_VARIABLE)
  saved_error = argparse.ArgumentParser.error
  import_filter = None
  if "tensorflow" not in sys.modules:  # Otherwise TensorFlow has read the level already.
    level = "0" if debug else (USER_TF_LOG_LEVEL or QUIET_TF_LOG_LEVEL)
    os.environ[TF_LOG_LEVEL_VARIABLE] = level
    if level.isdigit() and int(level) > 0:
      import_filter = _QuietTensorFlowImport(int(level))
      sys.meta_path.insert(0, import_filter)
  # Imported here: the commands import absl anyway (TensorFlow, TFDS), `--help` does not need it.
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  saved_verbosity = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.INFO if debug else absl_logging.ERROR)
  saved_format = warnings.formatwarning
  if not debug:
    argparse.ArgumentParser.error = _raise_usage_error
    warnings.formatwarning = _format_project_warning
  try:
    yield
  finally:
    warnings.formatwarning = saved_format
    argparse.ArgumentParser.error = saved_error
    absl_logging.set_verbosity(saved_verbosity)
    if import_filter in sys.meta_path:
      sys.meta_path.remove(import_filter)
    if saved_level is None:
      os.environ.pop(TF_LOG_LEVEL_VARIABLE, None)
    else:
      os.environ[TF_LOG_LEVEL_VARIABLE] = saved_level


def _format_project_warning(message, category, filename, lineno, line=None):
  """Our own warnings (checkpoint set aside, lock unsupported, ignored files) as one
  "warning: ..." line; other libraries' warnings keep Python's format."""
  if category.__module__.startswith("video_structure"):
    return f"warning: {message}\n"
  return _PYTHON_FORMAT_WARNING(message, category, filename, lineno, line)


_PYTHON_FORMAT_WARNING = warnings.formatwarning


def _raise_usage_error(parser, message):
  # argparse.ArgumentParser.error would print the whole usage (50 lines for train.py) first.
  raise UsageError(parser.prog, message)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
  """Filters the C++ log lines written while `tensorflow` is imported by `min_level`.

  TensorFlow's libraries log a few lines ("oneDNN custom operations are on", "Could not find
  cuda drivers") through absl before absl is initialised, when TF_CPP_MIN_LOG_LEVEL is not yet
  applied; only redirecting file descriptor 2 during the import keeps them off the console.
  """

  def __init__(self, min_level):
    self.min_level = min_level

  def find_spec(self, fullname, path=None, target=None):  # pylint: disable=unused-argument
    if fullname != "tensorflow":
      return None
    sys.meta_path.remove(self)  # Once: the remaining finders locate the package.
    spec = importlib.util.find_spec(fullname)
    if spec is None or spec.loader is None:
      return spec
    exec_module = spec.loader.exec_module
    min_level = self.min_level

    def quiet_exec_module(module):
      with _filtered_native_stderr(min_level):
        exec_module(module)

    spec.loader.exec_module = quiet_exec_module
    return spec


@contextlib.contextmanager
def _filtered_native_stderr(min_level):
  """Captures what anything in the process writes to file descriptor 2 while it lasts, then
  writes it back without absl's lines below `min_level` and without absl's banner."""
  sys.stderr.flush()
  try:
    saved_fd = os.dup(2)
  except OSError:  # No standard error to filter.
    yield
    return
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved_fd, 2)
      os.close(saved_fd)
      captured.seek(0)
      lines = captured.read().decode("utf-8", errors="replace").splitlines(keepends=True)
      kept = [line for line in lines if not _is_hidden_log_line(line, min_level)]
      if kept:
        sys.stderr.write("".join(kept))
        sys.stderr.flush()


def _is_hidden_log_line(line, min_level):
  if line.startswith(_ABSL_BANNER):
    return True
  match = _ABSL_LOG_LINE.match(line)
  return bool(match) and _ABSL_SEVERITIES.index(match.group(1)) < min_level
