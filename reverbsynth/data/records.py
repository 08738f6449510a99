"""The dataset's tf.train.Example schema: encode, decode, and a tf.data dataset.

One record per note and effect, NSynth-compatible plus effect labels:
note_str, pitch, velocity, audio float[64000], sample_rate, instrument,
instrument_str, instrument_family(_str), instrument_source(_str), qualities
int64[10], qualities_str; effect, effect_str, effect_params float[P],
effect_param_names bytes[P], source_note.
"""

import itertools

import numpy as np

from reverbsynth.data import example_proto, manifest as manifest_lib, tfrecord
from reverbsynth import storage
from reverbsynth.data.notes.note import NUM_SAMPLES, Note, resample


def encode(note: Note, effect_id: int, effect_str: str, param_names,
           param_values: np.ndarray, audio: np.ndarray) -> bytes:
  """Serialized Example for `note` with `audio` float32 [NUM_SAMPLES] through effect `effect_id`."""
  suffix = "" if effect_id == 0 and not param_names else f"-{effect_str}"
  return example_proto.encode({
      "note_str": note.note_str + suffix,
      "source_note": note.note_str,
      "pitch": note.pitch,
      "velocity": note.velocity,
      "audio": np.asarray(audio, np.float32),
      "sample_rate": note.sample_rate,
      "instrument": note.instrument,
      "instrument_str": note.instrument_str,
      "instrument_family": note.instrument_family,
      "instrument_family_str": note.instrument_family_str,
      "instrument_source": note.instrument_source,
      "instrument_source_str": note.instrument_source_str,
      "qualities": np.asarray(note.qualities, np.int64),
      "qualities_str": note.qualities_str,
      "effect": effect_id,
      "effect_str": effect_str,
      "effect_params": np.asarray(param_values, np.float32),
      "effect_param_names": list(param_names),
  })


def decode(serialized: bytes) -> dict:
  """A record as plain Python/numpy: strings decoded, scalars unwrapped."""
  out = {}
  for key, value in example_proto.decode(serialized).items():
    if key in ("qualities_str", "effect_param_names"):
      out[key] = [v.decode() for v in value]
    elif isinstance(value, list):
      out[key] = value[0].decode() if value else ""
    elif key in ("audio", "effect_params", "qualities"):
      out[key] = value
    else:
      out[key] = int(value[0]) if value.dtype.kind == "i" else float(value[0])
  return out


def feature_spec(num_samples: int = NUM_SAMPLES) -> dict:
  """tf.io feature spec of a record."""
  import tensorflow as tf
  scalar = lambda dtype: tf.io.FixedLenFeature([], dtype)
  return {
      "note_str": scalar(tf.string), "source_note": scalar(tf.string),
      "pitch": scalar(tf.int64), "velocity": scalar(tf.int64),
      "audio": tf.io.FixedLenFeature([num_samples], tf.float32),
      "sample_rate": scalar(tf.int64), "instrument": scalar(tf.int64),
      "instrument_str": scalar(tf.string),
      "instrument_family": scalar(tf.int64),
      "instrument_family_str": scalar(tf.string),
      "instrument_source": scalar(tf.int64),
      "instrument_source_str": scalar(tf.string),
      "qualities": tf.io.FixedLenFeature([10], tf.int64),
      "qualities_str": tf.io.VarLenFeature(tf.string),
      "effect": scalar(tf.int64), "effect_str": scalar(tf.string),
      "effect_params": tf.io.VarLenFeature(tf.float32),
      "effect_param_names": tf.io.VarLenFeature(tf.string),
  }


def dataset(data_dir, split: str = "train", shuffle_files: bool = False,
            seed: int = 0):
  """tf.data.Dataset of parsed records of one split of a built dataset.

  Each element is a dict of dense tensors named as in `feature_spec` (audio
  float32 [64000]; effect_params float32 [P]). The shard list comes from the
  manifest, so an incomplete directory (no manifest) is refused.
  """
  import tensorflow as tf
  manifest = manifest_lib.read(data_dir)
  files = manifest_lib.shard_paths(data_dir, manifest, split)
  if not files:
    raise ValueError(f"{data_dir} has no records in split {split!r}")
  files = tf.data.Dataset.from_tensor_slices(files)
  if shuffle_files:
    files = files.shuffle(len(files), seed=seed)
  records = files.interleave(tf.data.TFRecordDataset,
                             num_parallel_calls=tf.data.AUTOTUNE,
                             deterministic=not shuffle_files)
  spec = feature_spec()

  def parse(serialized):
    parsed = tf.io.parse_single_example(serialized, spec)
    return {k: tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v
            for k, v in parsed.items()}

  return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def read_split(data_dir, split: str, num_samples: int = NUM_SAMPLES, limit=None,
               sample_rate=None, pitches=None) -> dict:
  """A split (its first `limit` records, if given, of MIDI `pitches` (a range) if given) in
  memory, in shard order, without TensorFlow.

  Returns audio float32 [N, num_samples] (resampled to `sample_rate` when given, then
  cropped), pitch, effect, velocity int [N],
  source_note and effect_str str [N]. Shards are in hashed order, so the first
  records are a fair sample. Meant for held-out splits (a few thousand notes).
  """
  manifest = manifest_lib.read(data_dir)
  rate = manifest["audio"]["sample_rate"]
  columns = {k: [] for k in ("audio", "pitch", "effect", "velocity", "source_note",
                             "effect_str")}

  def serialized():
    for path in manifest_lib.shard_paths(data_dir, manifest, split):
      with storage.open_read(path) as f:
        yield from tfrecord.iterate(f)

  decoded = (decode(r) for r in serialized())
  if pitches is not None:
    decoded = (r for r in decoded if r["pitch"] in pitches)
  for record in itertools.islice(decoded, limit):
    for key, column in columns.items():
      if key == "audio":
        column.append(resample(record[key], rate, sample_rate or rate)[:num_samples])
      else:
        column.append(record[key])
  audio = np.stack(columns.pop("audio")) if columns["pitch"] else np.zeros((0, num_samples))
  return {"audio": audio.astype(np.float32),
          **{k: np.asarray(v) for k, v in columns.items()}}
