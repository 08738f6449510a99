"""TFRecord framing, read and written without TensorFlow.

A record is: uint64 length, uint32 masked crc32c(length), data, uint32 masked
crc32c(data), all little-endian. Keeping this in plain Python lets Beam workers
skip importing TensorFlow, and gives random access to records by byte offset.
"""

import struct

import google_crc32c

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8


class CorruptRecordError(Exception):
  """A record whose framing or checksum does not match its bytes."""


def _masked_crc(data: bytes) -> int:
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
  """Returns `data` framed as one TFRecord record."""
  length = struct.pack("<Q", len(data))
  return (length + struct.pack("<I", _masked_crc(length)) + data +
          _FOOTER.pack(_masked_crc(data)))


def scan(f) -> list[tuple[int, int]]:
  """(offset, framed size) of every record in an open binary file.

  Reads only the 12-byte headers and seeks past the data, so it is cheap even
  for large files. Raises CorruptRecordError if the framing is broken.
  """
  index = []
  f.seek(0, 2)
  end = f.tell()
  offset = 0
  while offset < end:
    f.seek(offset)
    header = f.read(_HEADER.size)
    if len(header) < _HEADER.size:
      raise CorruptRecordError(f"truncated record header at byte {offset}")
    length, length_crc = _HEADER.unpack(header)
    if _masked_crc(header[:8]) != length_crc:
      raise CorruptRecordError(f"bad length checksum at byte {offset}")
    size = _HEADER.size + length + _FOOTER.size
    if offset + size > end:
      raise CorruptRecordError(f"truncated record at byte {offset}")
    index.append((offset, size))
    offset += size
  return index


def unframe(framed: bytes) -> bytes:
  """The data of one framed record; checks both checksums."""
  length, length_crc = _HEADER.unpack_from(framed)
  if _masked_crc(framed[:8]) != length_crc:
    raise CorruptRecordError("bad length checksum")
  data = framed[_HEADER.size:_HEADER.size + length]
  if len(data) != length or len(framed) < _HEADER.size + length + _FOOTER.size:
    raise CorruptRecordError("truncated record")
  (data_crc,) = _FOOTER.unpack_from(framed, _HEADER.size + length)
  if _masked_crc(data) != data_crc:
    raise CorruptRecordError("bad data checksum")
  return data


def read_at(f, offset: int, size: int) -> bytes:
  """The data of the record at `offset` of framed `size` in an open file."""
  f.seek(offset)
  return unframe(f.read(size))


def iterate(f):
  """Yields the data of every record of an open binary file, in order."""
  for offset, size in scan(f):
    yield read_at(f, offset, size)
