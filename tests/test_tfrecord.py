"""TFRecord framing without TensorFlow, checked against TensorFlow's reader and writer."""

import io

import pytest
import tensorflow as tf

from reverbsynth.data import tfrecord


def test_framed_records_read_back_in_tensorflow(tmp_path):
  path = tmp_path / "x.tfrecord"
  payloads = [b"first", b"", bytes(range(256)) * 100]
  path.write_bytes(b"".join(tfrecord.frame(p) for p in payloads))
  assert [r.numpy() for r in tf.data.TFRecordDataset(str(path))] == payloads


def test_scan_and_read_tensorflow_written_file(tmp_path):
  path = tmp_path / "y.tfrecord"
  payloads = [f"record {i}".encode() * (i + 1) for i in range(5)]
  with tf.io.TFRecordWriter(str(path)) as w:
    for p in payloads:
      w.write(p)
  with open(path, "rb") as f:
    index = tfrecord.scan(f)
    assert len(index) == 5
    assert [tfrecord.read_at(f, o, s) for o, s in index] == payloads
    f.seek(0)
    assert list(tfrecord.iterate(f)) == payloads


def test_corruption_is_detected():
  framed = bytearray(tfrecord.frame(b"payload bytes"))
  framed[15] ^= 0xFF  # Inside the data.
  with pytest.raises(tfrecord.CorruptRecordError, match="data checksum"):
    tfrecord.unframe(bytes(framed))
  with pytest.raises(tfrecord.CorruptRecordError, match="truncated"):
    tfrecord.scan(io.BytesIO(tfrecord.frame(b"abc")[:-2]))
  with pytest.raises(tfrecord.CorruptRecordError, match="length checksum"):
    tfrecord.scan(io.BytesIO(b"this is not a tfrecord file at all"))
