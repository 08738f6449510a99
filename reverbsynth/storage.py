"""Paths that may be local or remote (gs://, s3://, hdfs://, ...).

Local paths use the standard library; remote ones go through Apache Beam's
FileSystems, so that sources and outputs work on Dataflow, Flink and Spark.
"""

import glob as glob_lib
import os


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
