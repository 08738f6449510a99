"""Real spectra for training: tf.data from a built dataset, and the normalizer's statistics.

Elements are (spectra [B, T, F, 2] normalized to about [-1, 1], pitch one-hot
[B, P], effect one-hot [B, E]). The order is fixed by the seed, and a stream
can start after any number of examples, so a resumed run sees what an
uninterrupted one would have.
"""

import tensorflow as tf

from reverbsynth import spectral
from reverbsynth.data import manifest as manifest_lib, records
from reverbsynth.data.labels import Labels
from reverbsynth.data.notes.note import resample
from reverbsynth.errors import UserError
from reverbsynth.runs.config import Config


def _epoch(files: list, block: int, seed: int, index):
  """Serialized records of epoch `index` (a tensor): files in a permuted order, records
  shuffled within blocks of `block`; stateless, so any epoch can be made directly."""
  key = lambda i: tf.stack([tf.constant(seed, tf.int64), index * 1_000_003 + i])
  order = tf.random.experimental.stateless_shuffle(tf.constant(files), key(0))
  serialized = tf.data.Dataset.from_tensor_slices(order).flat_map(tf.data.TFRecordDataset)
  return serialized.batch(block).enumerate().map(
      lambda i, b: tf.random.experimental.stateless_shuffle(b, key(i + 1))).unbatch()


def _examples(data_dir, config: Config, labels: Labels, seed: int, skip: int):
  """Shuffled, repeated (audio [N], pitch index, effect index), after `skip` examples.

  Each epoch has its own stateless order, so the stream restarts after any count by
  reading at most one epoch, however long the run has been.
  """
  manifest = manifest_lib.read(data_dir)
  files = manifest_lib.shard_paths(data_dir, manifest, "train")
  if not files:
    raise UserError(f"{data_dir} has no training split; rebuild it with a train fraction")
  n = config.audio.num_samples
  spec = records.feature_spec(manifest["audio"]["num_samples"], ("audio", "pitch", "effect"))
  low, high = labels.pitch_min, labels.pitch_min + labels.num_pitches - 1
  per_pitch = manifest["counts"]["per_split"]["train"]["per_pitch"]
  per_epoch = sum(c for p, c in per_pitch.items() if low <= int(p) <= high)
  first_epoch, within = divmod(skip, max(per_epoch, 1))

  rates = (manifest["audio"]["sample_rate"], config.audio.sample_rate)

  def parse(record):
    x = tf.io.parse_single_example(record, spec)
    audio = x["audio"]
    if rates[0] != rates[1]:  # A config may train at a lower rate than the dataset's.
      audio = tf.numpy_function(lambda a: resample(a, *rates), [audio], tf.float32,
                                stateful=False)
      audio.set_shape([manifest["audio"]["num_samples"] * rates[1] // rates[0]])
    return audio[:n], tf.cast(x["pitch"] - low, tf.int32), tf.cast(x["effect"], tf.int32)

  block = config.train.shuffle_buffer
  ds = tf.data.Dataset.range(first_epoch, 2 ** 62).flat_map(
      lambda e: _epoch(files, block, seed, e))
  ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.filter(lambda a, p, e: (p >= 0) & (p <= high - low))
  return ds.skip(within)


def dataset(data_dir, config: Config, labels: Labels, normalizer: spectral.Normalizer, batch: int,
            seed: int = 0, skip: int = 0, prepare=None) -> tf.data.Dataset:
  """Batches of (spectra, pitch one-hot, effect one-hot) starting after `skip` examples;
  `prepare` (audio [B, S] -> [B, S]), when given, is applied before the spectra."""
  sp = spectral.Spectral(config.spectral_config())
  prepare = prepare or (lambda audio: audio)

  def to_spectra(audio, pitch, effect):
    x = normalizer.normalize(sp.audio_to_spectra(prepare(audio)))
    return (x, tf.one_hot(pitch, labels.num_pitches),
            tf.one_hot(effect, len(labels.effects)))

  ds = _examples(data_dir, config, labels, seed, skip).batch(batch, drop_remainder=True)
  return ds.map(to_spectra, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True).prefetch(tf.data.AUTOTUNE)


def compute_normalizer(data_dir, config: Config, labels: Labels, seed: int = 0,
                       prepare=None) -> spectral.Normalizer:
  """spectral.Normalizer.fit over the first `train.normalizer_examples` training examples
  (through `prepare`, audio [N, S] -> [N, S], when given)."""
  sp = spectral.Spectral(config.spectral_config())
  count = config.train.normalizer_examples
  audio = tf.stack([a for a, _, _ in _examples(data_dir, config, labels, seed, 0).take(count)])
  audio = prepare(audio) if prepare else audio
  return spectral.Normalizer.fit(sp.audio_to_spectra(audio).numpy(),
                                 config.train.normalizer_margin)
