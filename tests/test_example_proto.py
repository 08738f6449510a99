"""The hand-written Example codec against TensorFlow's own."""

import numpy as np
import tensorflow as tf

from reverbsynth.data import example_proto


def _tf_example(features):
  feature = {}
  for key, (kind, values) in features.items():
    if kind == "bytes":
      feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    elif kind == "float":
      feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    else:
      feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  return tf.train.Example(features=tf.train.Features(feature=feature))


def test_encoded_example_parses_in_tensorflow_as_written():
  audio = np.random.default_rng(0).standard_normal(64000).astype(np.float32)
  data = example_proto.encode({
      "audio": audio, "pitch": 60, "negative": np.asarray([-3, 2**40], np.int64),
      "note_str": "bass_acoustic_032-060-100", "names": ["a", b"b"],
      "empty_floats": np.zeros(0, np.float32), "gain": 0.5})
  spec = {
      "audio": tf.io.FixedLenFeature([64000], tf.float32),
      "pitch": tf.io.FixedLenFeature([], tf.int64),
      "negative": tf.io.FixedLenFeature([2], tf.int64),
      "note_str": tf.io.FixedLenFeature([], tf.string),
      "names": tf.io.VarLenFeature(tf.string),
      "empty_floats": tf.io.VarLenFeature(tf.float32),
      "gain": tf.io.FixedLenFeature([], tf.float32),
  }
  parsed = tf.io.parse_single_example(data, spec)
  np.testing.assert_array_equal(parsed["audio"].numpy(), audio)
  assert parsed["pitch"].numpy() == 60
  assert parsed["negative"].numpy().tolist() == [-3, 2**40]
  assert parsed["note_str"].numpy() == b"bass_acoustic_032-060-100"
  assert parsed["names"].values.numpy().tolist() == [b"a", b"b"]
  assert parsed["empty_floats"].values.shape == (0,)
  assert parsed["gain"].numpy() == 0.5
  # And the protobuf library reads it as the same message.
  message = tf.train.Example.FromString(data)
  assert list(message.features.feature["negative"].int64_list.value) == [-3, 2**40]


def test_decode_reads_tensorflow_serialized_examples():
  values = np.linspace(-1, 1, 1000, dtype=np.float32)
  example = _tf_example({"audio": ("float", values), "pitch": ("int", [-7, 127]),
                         "s": ("bytes", [b"x", b"yz"])})
  decoded = example_proto.decode(example.SerializeToString())
  np.testing.assert_array_equal(decoded["audio"], values)
  assert decoded["pitch"].tolist() == [-7, 127]
  assert decoded["s"] == [b"x", b"yz"]


def test_encoding_is_deterministic_and_independent_of_key_order():
  a = example_proto.encode({"x": 1, "y": "two", "z": np.ones(3, np.float32)})
  b = example_proto.encode({"z": np.ones(3, np.float32), "y": "two", "x": 1})
  assert a == b
  assert example_proto.decode(a)["x"].tolist() == [1]
