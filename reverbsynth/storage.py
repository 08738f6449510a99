"""Files that may be local or remote (gs://, s3://, hdfs://, ...), and the one way to write
them: complete or not there at all (a temporary name beside the target, renamed when done).

Local paths use the standard library; remote ones go through Apache Beam's
FileSystems, so that sources and outputs work on Dataflow, Flink and Spark.
"""

import contextlib
import glob as glob_lib
import hashlib
import json
import os
import shutil
import tempfile
import uuid

from reverbsynth.errors import UserError


def is_remote(path) -> bool:
  return "://" in str(path)


def _filesystems():
  from apache_beam.io.filesystems import FileSystems
  return FileSystems


def resolve(path) -> str:
  """A path the user gave: a local one absolute, against the working directory, with
  ~ expanded; a remote one as it is."""
  return str(path) if is_remote(path) else os.path.abspath(os.path.expanduser(path))


def open_read(path):
  """A seekable binary reader."""
  if not is_remote(path):
    return open(path, "rb")
  from apache_beam.io.filesystems import CompressionTypes
  return _filesystems().open(str(path), compression_type=CompressionTypes.UNCOMPRESSED)


def exists(path) -> bool:
  return _filesystems().exists(str(path)) if is_remote(path) else os.path.exists(path)


def join(base, *parts) -> str:
  return _filesystems().join(str(base), *parts) if is_remote(base) else os.path.join(base, *parts)


def glob(pattern) -> list:
  """Sorted files matching `pattern` (a file name is a pattern that matches itself)."""
  if not is_remote(pattern):
    return sorted(p for p in glob_lib.glob(os.path.expanduser(str(pattern)))
                  if os.path.isfile(p))
  results = _filesystems().match([str(pattern)])[0].metadata_list
  return sorted(m.path for m in results)


def is_dir(path) -> bool:
  """True for a local directory, or a remote prefix that has files under it."""
  if not is_remote(path):
    return os.path.isdir(path)
  return bool(glob(join(path, "*")))


def basename(path) -> str:
  return str(path).rstrip("/").rsplit("/", 1)[-1]


def sha256(path) -> str:
  """Hex digest of a file's bytes."""
  digest = hashlib.sha256()
  with open_read(path) as f:
    while chunk := f.read(1 << 20):
      digest.update(chunk)
  return digest.hexdigest()


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary local name beside `path`; renames it to `path` only if the block
  succeeds (for libraries that write to a file name: soundfile, Keras, numpy)."""
  path = os.fspath(path)
  directory, name = os.path.split(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  suffix = name[name.find("."):] if "." in name else ""  # Whole: Keras wants .weights.h5.
  fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=directory)
  os.close(fd)
  try:
    yield tmp
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a finished file is not.
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


@contextlib.contextmanager
def atomic_dir(directory):
  """Yields an empty local directory beside `directory`; when the block succeeds it replaces
  `directory` (and what it held) as a whole."""
  directory = os.path.abspath(os.fspath(directory))
  tmp = f"{directory}.tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  try:
    yield tmp
    old = f"{directory}.old"
    if os.path.isdir(directory):
      os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def write_text(path, text: str) -> None:
  """Writes `text` (UTF-8) to a local or remote `path`, complete or not at all."""
  if not is_remote(path):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
      f.write(text)
    return
  from apache_beam.io.filesystems import CompressionTypes
  tmp = f"{path}.tmp-{uuid.uuid4().hex}"
  with _filesystems().create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as f:
    f.write(text.encode())
  _filesystems().rename([tmp], [str(path)])


def dumps_json(data) -> str:
  """The JSON text of every file reverbsynth writes: indented, keys sorted, a final newline."""
  return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_json(path, data) -> None:
  write_text(path, dumps_json(data))


def read_json(path):
  with open_read(path) as f:
    return json.load(f)


# --- the user's local paths, checked before work starts -----------------------------------


def check_writable_dir(path: str, option: str) -> None:
  """UserError unless the directory `path` exists or can be made (no file in the way)."""
  existing = os.path.abspath(path)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise UserError(f"{option} {path}: {existing} is a file, not a directory")
  if not os.access(existing, os.W_OK | os.X_OK):
    raise UserError(f"{option} {path}: cannot write in {existing}")


def check_writable_file(path: str, option: str) -> None:
  """UserError unless the file `path` can be written (not a directory; its folder can be made)."""
  if os.path.isdir(path):
    raise UserError(f"{option} {path} is a directory: give a file name")
  check_writable_dir(os.path.dirname(path), option)


@contextlib.contextmanager
def removed_on_error(path: str):
  """Removes what the block made of the directory `path` (and of its missing parents) if it
  raises: a refused or broken set-up leaves nothing behind."""
  top, path = None, os.path.abspath(path)
  while not os.path.exists(path):
    top, path = path, os.path.dirname(path)
  try:
    yield
  except BaseException:
    if top:
      shutil.rmtree(top, ignore_errors=True)
    raise
