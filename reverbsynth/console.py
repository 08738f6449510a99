"""The console: the package's log lines on stderr, the native log lines of TensorFlow and
the libraries under it kept off it, and a command's errors as one line and an exit status
(the CLI's plumbing, below every room that logs)."""

import itertools
import logging
import os
import re
import signal
import sys

import click

from reverbsynth.errors import Failure, UserError


class StderrHandler(logging.StreamHandler):
  """Log lines to sys.stderr as it is at each line, 'reverbsynth: ...' for the package's own;
  less a warning Beam logs at import on every machine without GCP extras."""

  def __init__(self):
    super().__init__()
    self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

  @property
  def stream(self):
    return sys.stderr

  @stream.setter
  def stream(self, _):
    pass

  def filter(self, record):
    return not record.getMessage().startswith("apitools not found")

  def format(self, record):
    if record.name.split(".")[0] == "reverbsynth":
      return f"reverbsynth: {record.getMessage()}"
    return super().format(record)


def show_logs(libraries: int) -> None:
  """The package's messages (logging, INFO and above) on stderr; the libraries' at `libraries`."""
  root = logging.getLogger()
  if not any(isinstance(h, StderrHandler) for h in root.handlers):
    root.addHandler(StderrHandler())
  root.setLevel(libraries)
  logging.getLogger("reverbsynth").setLevel(logging.INFO)


# A line of the C++ libraries under TensorFlow (absl/glog format: severity I, W or E, date,
# time, thread, file:line]) or absl's notice before its first one. Fatal (F) lines stay.
NATIVE_LOG = re.compile(rb"[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\] "
                         rb"|WARNING: All log messages before absl::InitializeLog\(\)")


def copy_lines(source: int, sink: int) -> None:
  """Copies file descriptor `source` to `sink` until its end, less whole lines that match
  NATIVE_LOG. A partial line (a progress bar's, ended by \\r) goes on at once unless it may
  become one of those."""
  out = open(sink, "wb", closefd=False)
  pending = b""
  while chunk := os.read(source, 1 << 16):
    *lines, pending = re.split(rb"(?<=[\r\n])", pending + chunk)
    if pending[:1] not in (b"I", b"W", b"E"):
      lines.append(pending)
      pending = b""
    out.write(b"".join(line for line in lines if not NATIVE_LOG.match(line)))
    out.flush()
  if not NATIVE_LOG.match(pending):
    out.write(pending)
    out.flush()


def hide_native_logs() -> None:
  """Keeps the C++ log lines of TensorFlow and the libraries under it (start-up, CUDA, oneDNN,
  grappler) off stderr, for this process and those it starts.

  TF_CPP_MIN_LOG_LEVEL=3 silences the part that reads it (set here: --verbose is the switch).
  The rest write to file descriptor 2 whatever the environment says, so it becomes a pipe
  into a forked filter (copy_lines), which outlives a crash of this process: a fatal message
  still shows. Python's sys.stderr keeps the real stderr, so progress bars find the terminal.
  """
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
  if not hasattr(os, "fork") or sys.stderr is None:
    return
  sys.stderr.flush()
  stderr = os.dup(2)
  source, sink = os.pipe()
  if os.fork() == 0:
    try:
      os.close(sink)
      os.close(1)  # Readers of stdout see its end when the command's own ends.
      signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the command.
      copy_lines(source, stderr)
    finally:
      os._exit(0)
  os.close(source)
  os.dup2(sink, 2)
  os.close(sink)
  sys.stderr = open(stderr, "w", buffering=1, encoding=sys.stderr.encoding,
                    errors="backslashreplace")


def say(message: str) -> None:
  """One line 'reverbsynth: message' on stderr."""
  click.echo(f"reverbsynth: {message}", err=True)


def run(group: click.Group, args) -> int:
  """Runs the command line `args` of `group` in this process; returns its exit status: 0
  done, 2 refused (bad input), 1 failed through no fault of the user's, 130 interrupted.
  Each error is one line on stderr."""
  try:
    code = group.main(args=list(args), prog_name="reverbsynth", standalone_mode=False)
  except click.UsageError as e:
    say(f"error: {e.format_message()} (see --help)")
    return 2
  except UserError as e:
    say(f"error: {e}")
    return 2
  except Failure as e:
    say(f"failed: {e}")
    return 1
  except (click.Abort, KeyboardInterrupt):
    say("interrupted")
    return 130
  return code if isinstance(code, int) else 0


def main(group: click.Group, argv=None) -> None:
  """Hides the libraries' native log lines unless --verbose comes before the command, runs
  `group` on `argv` (default: sys.argv) and exits with its status."""
  args = sys.argv[1:] if argv is None else list(argv)
  if "--verbose" not in itertools.takewhile(lambda a: a.startswith("-"), args):
    hide_native_logs()
  sys.exit(run(group, args))
