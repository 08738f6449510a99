"""NSynth notes from its TFRecord files or its json/wav directories."""

import json

import numpy as np
import soundfile as sf

from reverbsynth import storage
from reverbsynth.data import example_proto, tfrecord
from reverbsynth.data.notes.note import FAMILIES, QUALITIES, SAMPLE_RATE, SOURCES, Note
from reverbsynth.data.notes.sources import NoteRef, NoteSource, SkipNote, Skipped
from reverbsynth.errors import UserError

METADATA_FEATURES = ("note_str", "pitch", "velocity", "instrument",
                     "instrument_str", "instrument_family", "instrument_source")
RECORDS_PER_PARTITION = 256


def note_from_metadata(meta: dict) -> Note:
  """A Note (no audio) from NSynth fields given as plain Python values."""
  family, source = int(meta["instrument_family"]), int(meta["instrument_source"])
  if not 0 <= family < len(FAMILIES) or not 0 <= source < len(SOURCES):
    raise ValueError(f"family {family} or source {source} out of range")
  qualities = tuple(int(q) for q in meta.get("qualities", ())) or (0,) * len(QUALITIES)
  return Note(
      note_str=meta["note_str"],
      pitch=int(meta["pitch"]),
      velocity=int(meta["velocity"]),
      instrument=int(meta["instrument"]),
      instrument_str=meta["instrument_str"],
      instrument_family=family,
      instrument_source=source,
      qualities=qualities,
      sample_rate=int(meta.get("sample_rate", SAMPLE_RATE)))


def _example_metadata(features: dict) -> dict:
  missing = [k for k in METADATA_FEATURES if not len(features.get(k, ()))]
  if missing:
    raise ValueError(f"missing feature {', '.join(missing)}")
  meta = {}
  for key in (*METADATA_FEATURES, "sample_rate", "qualities"):
    value = features.get(key)
    if value is None or not len(value):
      continue
    if isinstance(value, list):
      meta[key] = value[0].decode()
    else:
      meta[key] = value.tolist() if key == "qualities" else int(value[0])
  return meta


def tfrecord_files(path: str) -> list:
  """NSynth TFRecord files named by a file, a glob or a directory (local or remote)."""
  if storage.is_dir(path):
    return storage.glob(storage.join(path, "*.tfrecord*"))
  return storage.glob(path)


class TFRecordSource(NoteSource):
  """NSynth tf.train.Example records, with exactly the NSynth feature names."""

  def __init__(self, path: str):
    self.path = path
    self.files = tfrecord_files(path)
    if not self.files:
      raise UserError(f"no TFRecord files at {path!r}: give an NSynth .tfrecord "
                      "file, a glob, or a directory that holds them")
    self._index = None

  def _scan(self) -> dict:
    if self._index is None:
      self._index = {}
      for path in self.files:
        try:
          with storage.open_read(path) as f:
            self._index[path] = tfrecord.scan(f)
        except tfrecord.CorruptRecordError as e:
          raise UserError(f"{path} is not a readable TFRecord file ({e}): "
                          "re-download it or leave it out of --source") from None
    return self._index

  def describe(self) -> dict:
    return {"kind": "nsynth-tfrecord", "path": self.path,
            "files": [storage.basename(f) for f in self.files]}


  def partitions(self) -> list:
    parts = []
    for path, index in self._scan().items():
      for i in range(0, len(index), RECORDS_PER_PARTITION):
        parts.append((path, index[i:i + RECORDS_PER_PARTITION]))
    return parts

  def refs(self, partition):
    path, index = partition
    with storage.open_read(path) as f:
      for offset, size in index:
        where = f"{storage.basename(path)}@{offset}"
        try:
          features = example_proto.decode(tfrecord.read_at(f, offset, size))
          note = note_from_metadata(_example_metadata(features))
        except tfrecord.CorruptRecordError as e:
          yield Skipped(f"corrupt record ({e})", where)
          continue
        except (ValueError, KeyError, IndexError) as e:
          yield Skipped(f"unreadable example ({e})", where)
          continue
        yield NoteRef(note, (path, offset, size))

  def load(self, ref: NoteRef) -> tuple:
    path, offset, size = ref.locator
    try:
      with storage.open_read(path) as f:
        features = example_proto.decode(tfrecord.read_at(f, offset, size))
    except (OSError, tfrecord.CorruptRecordError) as e:
      raise SkipNote(f"unreadable record ({e})") from None
    audio = features.get("audio")
    if audio is None or not isinstance(audio, np.ndarray) or not audio.size:
      raise SkipNote("no audio feature")
    return audio, ref.note.sample_rate


class JsonWavSource(NoteSource):
  """NSynth json/wav: `examples.json` keyed by note_str, `audio/<note_str>.wav`."""

  lists_refs_cheaply = True

  def __init__(self, directory: str):
    self.directory = str(directory)
    self.examples_path = storage.join(self.directory, "examples.json")
    try:
      with storage.open_read(self.examples_path) as f:
        self.examples = json.loads(f.read())
    except OSError:
      raise UserError(f"{directory} has no examples.json: give an NSynth json/wav "
                      "directory (examples.json + audio/*.wav)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise UserError(f"{self.examples_path} is not valid JSON ({e})") from None
    if not isinstance(self.examples, dict):
      raise UserError(f"{self.examples_path} must map note_str to note metadata")

  def describe(self) -> dict:
    return {"kind": "nsynth-json-wav", "path": self.directory}


  def partitions(self) -> list:
    items = sorted(self.examples.items())
    return [items[i:i + RECORDS_PER_PARTITION]
            for i in range(0, len(items), RECORDS_PER_PARTITION)]

  def refs(self, partition):
    for note_str, meta in partition:
      try:
        note = note_from_metadata({"note_str": note_str, **meta})
      except (ValueError, KeyError, TypeError) as e:
        yield Skipped(f"bad examples.json entry ({e})", note_str)
        continue
      yield NoteRef(note, storage.join(self.directory, "audio", f"{note_str}.wav"))

  def load(self, ref: NoteRef) -> tuple:
    try:
      with storage.open_read(ref.locator) as f:
        audio, sample_rate = sf.read(f, dtype="float32")
    except (OSError, RuntimeError, sf.LibsndfileError) as e:
      raise SkipNote(f"unreadable wav ({type(e).__name__})") from None
    return audio, sample_rate
