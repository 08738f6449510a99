"""The dataset's tf.train.Example schema: encode, decode, and a tf.data dataset.

One record per note and effect, NSynth-compatible plus effect labels:
note_str, pitch, velocity, audio float[64000], sample_rate, instrument,
instrument_str, instrument_family(_str), instrument_source(_str), qualities
int64[10], qualities_str; effect, effect_str, effect_params float[P],
effect_param_names bytes[P], source_note.
"""

import itertools

import numpy as np

from reverbsynth import storage
from reverbsynth.data import example_proto, manifest as manifest_lib, tfrecord
from reverbsynth.data.notes.note import NUM_SAMPLES, Note, resample

# The schema, once: name -> (kind, shape). Kinds: "bytes" (str in Python), "int", "float";
# shape () is one value, (n,) n values (AUDIO: the note's samples), None any number.
AUDIO = "audio"
SCHEMA = {
    "note_str": ("bytes", ()), "source_note": ("bytes", ()),
    "pitch": ("int", ()), "velocity": ("int", ()),
    AUDIO: ("float", (NUM_SAMPLES,)), "sample_rate": ("int", ()),
    "instrument": ("int", ()), "instrument_str": ("bytes", ()),
    "instrument_family": ("int", ()), "instrument_family_str": ("bytes", ()),
    "instrument_source": ("int", ()), "instrument_source_str": ("bytes", ()),
    "qualities": ("int", (10,)), "qualities_str": ("bytes", None),
    "effect": ("int", ()), "effect_str": ("bytes", ()),
    "effect_params": ("float", None), "effect_param_names": ("bytes", None),
}
_NUMPY = {"int": np.int64, "float": np.float32}


def encode(note: Note, effect_id: int, effect_str: str, param_names,
           param_values: np.ndarray, audio: np.ndarray) -> bytes:
  """Serialized Example for `note` with `audio` float32 [NUM_SAMPLES] through effect `effect_id`."""
  suffix = "" if effect_id == 0 and not param_names else f"-{effect_str}"
  values = {
      "note_str": note.note_str + suffix, "source_note": note.note_str,
      "pitch": note.pitch, "velocity": note.velocity, AUDIO: audio,
      "sample_rate": note.sample_rate, "instrument": note.instrument,
      "instrument_str": note.instrument_str, "instrument_family": note.instrument_family,
      "instrument_family_str": note.instrument_family_str,
      "instrument_source": note.instrument_source,
      "instrument_source_str": note.instrument_source_str, "qualities": note.qualities,
      "qualities_str": note.qualities_str, "effect": effect_id, "effect_str": effect_str,
      "effect_params": param_values, "effect_param_names": param_names,
  }
  return example_proto.encode({
      name: list(values[name]) if kind == "bytes" and shape is None
      else values[name] if kind == "bytes" or shape == ()
      else np.asarray(values[name], _NUMPY[kind])
      for name, (kind, shape) in SCHEMA.items()})


def decode(serialized: bytes) -> dict:
  """A record as plain Python/numpy: strings decoded, single values unwrapped."""
  out = {}
  for key, value in example_proto.decode(serialized).items():
    kind, shape = SCHEMA[key]
    if kind == "bytes":
      strings = [v.decode() for v in value]
      out[key] = strings if shape is None else (strings[0] if strings else "")
    elif shape == ():
      out[key] = int(value[0]) if kind == "int" else float(value[0])
    else:
      out[key] = value
  return out


def feature_spec(num_samples: int = NUM_SAMPLES, names=None) -> dict:
  """tf.io feature spec of a record's features `names` (default: all), audio [num_samples]."""
  import tensorflow as tf
  dtypes = {"bytes": tf.string, "int": tf.int64, "float": tf.float32}
  spec = {}
  for name in names or SCHEMA:
    kind, shape = SCHEMA[name]
    if shape is None:
      spec[name] = tf.io.VarLenFeature(dtypes[kind])
    else:
      spec[name] = tf.io.FixedLenFeature([num_samples] if name == AUDIO else list(shape),
                                         dtypes[kind])
  return spec


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
  cropped), pitch, effect, velocity int [N], source_note, effect_str and family (the
  instrument family's name) str [N]. Shards are in hashed order, so the first
  records are a fair sample. Meant for held-out splits (a few thousand notes).
  """
  manifest = manifest_lib.read(data_dir)
  rate = manifest["audio"]["sample_rate"]
  fields = {"audio": "audio", "pitch": "pitch", "effect": "effect", "velocity": "velocity",
            "source_note": "source_note", "effect_str": "effect_str",
            "family": "instrument_family_str"}  # Column: the record's feature.
  columns = {k: [] for k in fields}

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
        column.append(record[fields[key]])
  audio = np.stack(columns.pop("audio")) if columns["pitch"] else np.zeros((0, num_samples))
  return {"audio": audio.astype(np.float32),
          **{k: np.asarray(v) for k, v in columns.items()}}
