"""The wire format of tf.train.Example, encoded and decoded with numpy.

Example  = {1: Features};  Features = {1: repeated map entry {1: key, 2: Feature}}
Feature  = oneof {1: BytesList, 2: FloatList, 3: Int64List}, each {1: repeated value}

Encoding a float[64000] feature this way is a byte copy (tf.train.FloatList
spends ~3-10 ms on it), and features are written in sorted key order, so the
same example always gives the same bytes. TensorFlow parses the result as any
other tf.train.Example (tested against tf.io.parse_single_example).
"""

from collections.abc import Mapping, Sequence

import numpy as np

FeatureValue = bytes | str | int | float | np.ndarray | Sequence
_BYTES, _FLOAT, _INT64 = 1, 2, 3


def varint(n: int) -> bytes:
  """A base-128 varint (int64 two's complement for negatives)."""
  n &= 0xFFFFFFFFFFFFFFFF  # Negative int64s are ten-byte two's complement.
  out = bytearray()
  while n > 0x7F:
    out.append((n & 0x7F) | 0x80)
    n >>= 7
  out.append(n)
  return bytes(out)


def field(number: int, payload: bytes) -> bytes:
  """A length-delimited field."""
  return varint(number << 3 | 2) + varint(len(payload)) + payload


def _feature(value) -> bytes:
  """Serialized Feature: bytes/str -> BytesList, floats -> FloatList, ints -> Int64List."""
  if isinstance(value, (bytes, str)):
    value = [value]
  elif np.isscalar(value):
    value = np.asarray([value])
  if isinstance(value, np.ndarray):
    if value.dtype.kind == "f":
      packed = np.ascontiguousarray(value, "<f4").tobytes()
      return field(_FLOAT, field(1, packed) if packed else b"")
    if value.dtype.kind in "iub":
      packed = b"".join(varint(int(v)) for v in value.ravel())
      return field(_INT64, field(1, packed) if packed else b"")
    value = list(value)
  if all(isinstance(v, (bytes, str)) for v in value):
    items = b"".join(
        field(1, v.encode() if isinstance(v, str) else v) for v in value)
    return field(_BYTES, items)
  return _feature(np.asarray(value))


def encode(features: Mapping[str, FeatureValue]) -> bytes:
  """Serialized tf.train.Example of `features`, keys in sorted order.

  An empty list is written as an empty BytesList; pass an empty float or int
  ndarray to give an empty feature its type.
  """
  entries = b"".join(
      field(1, field(1, key.encode()) + field(2, _feature(features[key])))
      for key in sorted(features))
  return field(1, entries)


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
  result = shift = 0
  while True:
    b = buf[pos]
    pos += 1
    result |= (b & 0x7F) << shift
    if b < 0x80:
      return result, pos
    shift += 7


def _fields(buf: memoryview):
  """Yields (field number, wire type, value) of a message's top-level fields."""
  pos, end = 0, len(buf)
  while pos < end:
    tag, pos = _read_varint(buf, pos)
    number, wire = tag >> 3, tag & 7
    if wire == 0:
      value, pos = _read_varint(buf, pos)
    elif wire == 1:
      value, pos = buf[pos:pos + 8], pos + 8
    elif wire == 2:
      length, pos = _read_varint(buf, pos)
      value, pos = buf[pos:pos + length], pos + length
    elif wire == 5:
      value, pos = buf[pos:pos + 4], pos + 4
    else:
      raise ValueError(f"unsupported protobuf wire type {wire}")
    yield number, wire, value


def _signed(n: int) -> int:
  return n - (1 << 64) if n >= 1 << 63 else n


def _decode_feature(buf: memoryview):
  for kind, _, payload in _fields(buf):
    if kind == _BYTES:
      return [bytes(v) for _, _, v in _fields(payload)]
    if kind == _FLOAT:
      parts = [np.frombuffer(v, "<f4") for _, _, v in _fields(payload)]
      return np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if kind == _INT64:
      values = []
      for _, wire, v in _fields(payload):
        if wire == 0:
          values.append(_signed(v))
        else:  # Packed varints.
          pos = 0
          while pos < len(v):
            n, pos = _read_varint(v, pos)
            values.append(_signed(n))
      return np.asarray(values, np.int64)
  return []


def decode(serialized: bytes) -> dict:
  """Features of a serialized tf.train.Example.

  Returns {name: list of bytes | float32 ndarray | int64 ndarray}; float
  arrays are read-only views of `serialized`.
  """
  features = {}
  for _, _, feats in _fields(memoryview(serialized)):
    for _, _, entry in _fields(feats):
      key, value = None, memoryview(b"")
      for number, _, v in _fields(entry):
        if number == 1:
          key = bytes(v).decode()
        elif number == 2:
          value = v
      features[key] = _decode_feature(value)
  return features
