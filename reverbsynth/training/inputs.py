"""Real notes for training and for the judge, one stream for both backends.

One index per dataset: each epoch is a permutation of all training records drawn from
(seed, epoch), the model's pitch window applied after it, so that a stream can start
after any number of examples by reading at most one epoch, and a run resumed under the
other backend goes on with the same notes. The shards are read with the package's own
TFRecord and Example readers, the notes resampled, turned into IF-Mel (or linear)
spectra in numpy and normalized by background threads, `prefetch` batches ahead of the
step. Batches are numpy: spectra [B, T, F, 2] about [-1, 1], then a one-hot per condition
(Labels.conditions): pitch [B, P], effect [B, E], family [B, F], velocity [B, V]; the
TensorFlow backend and the judge feed them to tf.data.
"""

import concurrent.futures
import functools
import itertools
import os
import queue
import threading

import numpy as np

from reverbsynth import spectral, storage
from reverbsynth.data import manifest as manifest_lib, records, tfrecord
from reverbsynth.data.labels import Labels
from reverbsynth.data.notes.note import resample
from reverbsynth.errors import UserError
from reverbsynth.runs.config import Config


def _label_ids(record: dict, labels: Labels) -> tuple:
  """A record's index in each condition's vocabulary (Labels.conditions order)."""
  attributes = labels.attribute_ids([record["instrument_family_str"]], [record["velocity"]])
  return (record["pitch"] - labels.pitch_min, record["effect"], *(int(a[0]) for a in attributes))


def _one_hots(ids, labels: Labels) -> tuple:
  """One-hots [B, C] per condition of label indices [B, conditions]."""
  ids = np.asarray(ids).reshape(len(ids), len(labels.sizes))
  return tuple(np.eye(n, dtype=np.float32)[ids[:, i]] for i, n in enumerate(labels.sizes))


def _examples(data_dir, config: Config, labels: Labels, seed: int, skip: int):
  """Shuffled, repeated (audio [N] at the dataset's rate, label indices per condition) of
  the model's pitch range, after `skip` of them."""
  manifest = manifest_lib.read(data_dir)
  files = manifest_lib.shard_paths(data_dir, manifest, "train")
  if not files:
    raise UserError(f"{data_dir} has no training split; rebuild it with a train fraction")
  low, high = labels.pitch_min, labels.pitch_min + labels.num_pitches - 1
  per_pitch = manifest["counts"]["per_split"]["train"]["per_pitch"]
  per_epoch = sum(c for p, c in per_pitch.items() if low <= int(p) <= high)
  if not per_epoch:
    raise UserError(f"{data_dir} has no training notes in the pitch range {low}..{high}")
  first_epoch, within = divmod(skip, per_epoch)
  handles = [storage.open_read(path) for path in files]
  try:
    index = [(f, offset, size) for f in handles for offset, size in tfrecord.scan(f)]
    for epoch in itertools.count(first_epoch):
      for i in np.random.default_rng([seed, epoch]).permutation(len(index)):
        record = records.decode(tfrecord.read_at(*index[i]))
        if not low <= record["pitch"] <= high:
          continue
        if within:
          within -= 1
          continue
        yield record[records.AUDIO], _label_ids(record, labels)
  finally:
    for f in handles:
      f.close()


def _model_audio(data_dir, config: Config):
  """A function: the dataset's notes [N] -> float32 [K, num_samples] at the config's rate."""
  rates = (manifest_lib.read(data_dir)["audio"]["sample_rate"], config.audio.sample_rate)
  return lambda notes: np.stack([resample(a, *rates)[:config.audio.num_samples]
                                 for a in notes])


class Batches:
  """An iterator of normalized batches made by `workers` threads (default: the cores);
  `prepare` (audio [B, S] -> [B, S]), when given, is applied before the spectra."""

  def __init__(self, data_dir, config: Config, labels: Labels,
               normalizer: spectral.Normalizer, batch: int, seed: int = 0, skip: int = 0,
               workers: int | None = None, prefetch: int = 4, prepare=None):
    self.spectral = spectral.Spectral(config.spectral_config(), "numpy")
    self.normalizer, self.labels = normalizer, labels
    self.prepare = prepare or (lambda audio: audio)
    self.audio = _model_audio(data_dir, config)
    examples = self._examples(data_dir, config, labels, seed, skip)
    chunks = iter(lambda: list(itertools.islice(examples, batch)), None)
    self._pool = concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 1)
    self._ready = queue.Queue(maxsize=prefetch)
    self._stop = threading.Event()
    self._feeder = threading.Thread(target=self._feed, args=(chunks,), daemon=True)
    self._feeder.start()

  def _feed(self, chunks) -> None:
    """Reads and decodes records in order; the pool makes their batches, at most `prefetch`
    + 1 ahead of the consumer (each chunk submitted once, then queued when there is room)."""
    try:
      for chunk in chunks:
        made = self._pool.submit(self._make, chunk)
        while not self._stop.is_set():
          try:
            self._ready.put(made, timeout=0.1)
            break
          except queue.Full:
            continue
        if self._stop.is_set():
          made.cancel()
          return
    except Exception as e:  # Raised to the consumer by __next__ (unless it has closed).
      if not self._stop.is_set():
        self._ready.put(e)

  _examples = staticmethod(_examples)

  def _make(self, chunk):
    audio = self.prepare(self.audio([a for a, _ in chunk]))
    x = self.normalizer.normalize(self.spectral.audio_to_spectra(audio), self.spectral.ops)
    return (x.astype(np.float32), *_one_hots([ids for _, ids in chunk], self.labels))

  def __iter__(self):
    return self

  def __next__(self):
    item = self._ready.get()
    if isinstance(item, Exception):
      raise item
    return item.result()

  def close(self) -> None:
    """Stops the threads (the iterator is done)."""
    self._stop.set()
    self._pool.shutdown(wait=False, cancel_futures=True)


@functools.lru_cache(maxsize=4)
def _pair_index(data_dir, shards: tuple, low: int, high: int) -> dict:
  """{source note: {effect index: (shard path, offset, size)}} of the training records of
  MIDI low..high in the shards [(path, sha256)] (the key: a rebuilt dataset is read again).
  Every record is decoded once (3 s for the bass set): cached, not redone at each stage."""
  versions = {}
  for path, _ in shards:
    with storage.open_read(path) as f:
      for offset, size in tfrecord.scan(f):
        record = records.decode(tfrecord.read_at(f, offset, size))
        if low <= record["pitch"] <= high:
          versions.setdefault(record["source_note"], {})[record["effect"]] = (path, offset, size)
  return versions


def _pairs(data_dir, config: Config, labels: Labels, seed: int, skip: int):
  """Shuffled, repeated (dry audio [N], audio [N] of the same source note through an effect
  drawn uniformly from its versions (dry too), label indices per condition) at the
  dataset's rate, after `skip` of them. Each epoch is a permutation of the source notes from
  (seed, epoch); the effect of each from (seed, epoch, position)."""
  shards = tuple((storage.join(data_dir, s["file"]), s["sha256"])
                 for s in manifest_lib.read(data_dir)["shards"] if s["split"] == "train")
  if not shards:
    raise UserError(f"{data_dir} has no training split; rebuild it with a train fraction")
  low, high = labels.pitch_min, labels.pitch_min + labels.num_pitches - 1
  versions = _pair_index(str(data_dir), shards, low, high)
  sources = sorted(s for s, v in versions.items() if 0 in v)
  if not sources:
    raise UserError(f"{data_dir} has no dry training notes in the pitch range {low}..{high}: "
                    "the ddsp generator learns its effects from dry/wet pairs (build the "
                    "dataset with --keep-dry)")
  handles = {path: storage.open_read(path) for path, _ in shards}
  read = lambda where: records.decode(tfrecord.read_at(handles[where[0]], *where[1:]))
  try:
    first_epoch, within = divmod(skip, len(sources))
    for epoch in itertools.count(first_epoch):
      order = np.random.default_rng([seed, epoch]).permutation(len(sources))
      for position in range(within, len(sources)):
        source = versions[sources[order[position]]]
        effect = sorted(source)[np.random.default_rng([seed, epoch, position]).integers(
            len(source))]
        dry = read(source[0])
        wet = dry if effect == 0 else read(source[effect])
        yield dry[records.AUDIO], wet[records.AUDIO], _label_ids(wet, labels)
      within = 0
  finally:
    for f in handles.values():
      f.close()


class Pairs(Batches):
  """Batches of real audio for the ddsp generator: (dry [B, S], the same notes through their
  effects [B, S], then a one-hot per condition: pitch [B, P], effect [B, E], ...), float32
  numpy."""

  _examples = staticmethod(_pairs)

  def _make(self, chunk):
    return (self.audio([c[0] for c in chunk]), self.audio([c[1] for c in chunk]),
            *_one_hots([c[2] for c in chunk], self.labels))


def compute_normalizer(data_dir, config: Config, labels: Labels, seed: int = 0,
                       prepare=None) -> spectral.Normalizer:
  """spectral.Normalizer.fit over the first `train.normalizer_examples` training examples
  of the stream (through `prepare`, audio [N, S] -> [N, S], when given)."""
  sp = spectral.Spectral(config.spectral_config(), "numpy")
  examples = itertools.islice(_examples(data_dir, config, labels, seed, 0),
                              config.train.normalizer_examples)
  audio = _model_audio(data_dir, config)([a for a, _ in examples])
  audio = prepare(audio) if prepare else audio
  return spectral.Normalizer.fit(sp.audio_to_spectra(audio), config.train.normalizer_margin)


def tf_dataset(batches: Batches):
  """`batches` as a tf.data.Dataset of the same (spectra, one-hots...) tensors, for the
  TensorFlow backend's strategy and Keras' fit (imports TensorFlow)."""
  import tensorflow as tf
  first = next(batches)
  signature = tuple(tf.TensorSpec(a.shape, tf.float32) for a in first)
  return tf.data.Dataset.from_generator(lambda: itertools.chain([first], batches),
                                        output_signature=signature)
