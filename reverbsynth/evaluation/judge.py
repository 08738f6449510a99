"""The judge: a small CNN on IF-Mel spectra that tells a note's pitch and effect (and its
instrument family and velocity, for labels that have those conditions).

Trained on a dataset's training split with the spectral settings of the run it
judges, and cached in <data>/classifier/<key>/ (key: a hash of those settings and
the labels), with its held-out accuracy on the test split: the ceiling for any
generator judged by it.

The judge hears a note as a 16-bit file plays it (`heard`): a fixed dither of one 16-bit
step is added to every note it trains on or judges. Without it, the effect head told
dry from reverb by whether a note's tail was exact digital silence (a SoundFont's dry
notes are): white noise at -160 dB, far below anything audible, made it call 78 % of
real dry notes "reverb" (README, bug hunt 12).
"""

import dataclasses
import functools
import hashlib
import json
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from reverbsynth import spectral, storage
from reverbsynth.data import manifest as manifest_lib, records
from reverbsynth.data.labels import Labels
from reverbsynth.errors import Failure
from reverbsynth.model import layers as L
from reverbsynth.progress import Progress
from reverbsynth.runs.config import Config
from reverbsynth.training import inputs

logger = logging.getLogger(__name__)

CLASSIFIER_DIR = "classifier"
EMBEDDING = 128
MIN_STEPS = 300  # Small datasets still get enough updates.
VERSION = 5      # Of the architecture, its training and its test figures: part of the cache key.
DITHER_SEED = 0


@functools.lru_cache(maxsize=4)
def _dither(samples: int) -> np.ndarray:
  """[samples] float32 triangular dither of one 16-bit step (rms -98 dBFS), fixed."""
  rng = np.random.default_rng(DITHER_SEED)
  step = 2.0 ** -15
  return ((rng.uniform(size=samples) - rng.uniform(size=samples)) * step).astype(np.float32)


def heard(audio):
  """Audio [N, S] (numpy or a tensor) as the judge hears it: with the fixed dither added,
  so that nothing below the 16-bit floor can tell notes apart."""
  return audio + _dither(int(audio.shape[-1]))


def build(shape: tuple, labels: Labels) -> keras.Model:
  """spectra [B, T, F, 2] -> (embedding [B, EMBEDDING], then logits [B, C] of each of the
  labels' conditions: pitch, effect, family, velocity).

  Strided convolutions, then a mean over time only: frequency position (pitch)
  survives into the embedding.
  """
  inputs = keras.Input(shape)
  x = inputs
  for filters in (16, 32, 64, 128):
    x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.LayerNormalization()(x)  # No running statistics to lag behind.
  x = keras.layers.Flatten()(keras.ops.mean(x, axis=1))
  # Normalized across its units before the ReLU, so that about half of them are active for
  # every note: a plain Dense + ReLU here died whole in one training (every unit negative
  # for every note: a constant embedding, chance accuracy, Frechet distance 0; bug hunt 21).
  x = keras.layers.LayerNormalization()(keras.layers.Dense(EMBEDDING)(x))
  embedding = keras.layers.Activation("relu", name="embedding")(x)
  heads = [keras.layers.Dense(n, name=name)(embedding)
           for name, n in zip(labels.conditions, labels.sizes)]
  return keras.Model(inputs, [embedding, *heads])


@dataclasses.dataclass
class Judge:
  """A trained classifier with its input settings and held-out accuracy."""
  model: keras.Model
  config: Config                   # The training config whose audio/spectral settings it reads.
  labels: Labels
  normalizer: spectral.Normalizer
  accuracy: dict                 # {condition: float} on the test split.

  def __post_init__(self):
    self.spectral = spectral.Spectral(self.config.spectral_config())

  def inputs(self, audio: np.ndarray):
    """What the judge sees of audio [N, S]: the normalized spectra [N, T, F, 2] of the
    audio as heard (with the dither)."""
    return self.normalizer.normalize(self.spectral.audio_to_spectra(
        heard(np.asarray(audio, np.float32))))

  def outputs(self, audio: np.ndarray, batch_size: int = 64) -> dict:
    """What the judge makes of audio [N, S], from one pass over its spectra:
    "embedding" [N, D], each condition's probabilities ("pitch" [N, P], "effect" [N, E],
    ...), and "spectra": its normalized log magnitudes pooled 4 x 4 and flattened
    [N, T/4 * F/4]."""
    parts = []
    for i in range(0, len(audio), batch_size):
      x = self.inputs(audio[i:i + batch_size])
      embedding, *heads = self.model(x, training=False)
      pooled = tf.reshape(L.downsample(x[..., :1], 4), [len(x), -1])
      parts.append({"embedding": embedding.numpy(), "spectra": pooled.numpy(),
                    **{name: tf.nn.softmax(logits).numpy()
                       for name, logits in zip(self.labels.conditions, heads)}})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  def accuracy_on(self, audio, pitches, effects, families=None, velocities=None) -> dict:
    """{condition: share of audio [N, S] given the right label}, for MIDI pitches, effect
    indices, family names and MIDI velocities [N] (the last two where the labels have them)."""
    return self.accuracy_of(self.outputs(audio), pitches, effects, families, velocities)

  def accuracy_of(self, out: dict, pitches, effects, families=None, velocities=None) -> dict:
    """accuracy_on, of the judge's outputs already made for the notes."""
    truths = {"pitch": np.asarray(pitches) - self.labels.pitch_min, "effect": effects}
    truths.update(zip((name for name, _ in self.labels.attributes),
                      self.labels.attribute_ids(families, velocities)))
    return {name: float(np.mean(out[name].argmax(1) == np.asarray(truth)))
            for name, truth in truths.items()}


class _StepProgress(keras.callbacks.Callback):
  """Feeds an Progress from keras' fit: one unit and the loss per step."""

  def __init__(self, bar: Progress):
    super().__init__()
    self.bar = bar

  def on_train_batch_end(self, batch, logs=None):
    self.bar.update(1, loss=float(logs["loss"]))


def _key(config: Config, labels: Labels, epochs: int) -> str:
  sections = config.to_dict()
  settings = {"audio": sections["audio"], "spectral": sections["spectral"],
              "labels": labels.to_json(), "epochs": epochs, "version": VERSION}
  return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def load_or_train(data_dir, config: Config, labels: Labels, epochs: int = 5,
                  retrain: bool = False, progress: bool = True) -> Judge:
  """The judge cached for these settings in `data_dir`, trained first when there is none."""
  directory = os.path.join(data_dir, CLASSIFIER_DIR, _key(config, labels, epochs))
  info_path = os.path.join(directory, "judge.json")
  shape = config.spectral_config().shape
  model = build(shape, labels)
  if os.path.exists(info_path) and not retrain:
    info = storage.read_json(info_path)
    model.load_weights(os.path.join(directory, "judge.weights.h5"))
    return Judge(model, config, labels, spectral.Normalizer.from_json(info["normalizer"]),
                 info["accuracy"])
  logger.info(f"training the judge (classifier) on {data_dir}, {epochs} epochs; cached for reuse")
  keras.utils.set_random_seed(config.seed)
  normalizer = inputs.compute_normalizer(data_dir, config, labels, config.seed, heard)
  manifest = manifest_lib.read(data_dir)
  batch = 32
  steps = max(MIN_STEPS, epochs * manifest["counts"]["per_split"]["train"]["records"] // batch)
  stream = inputs.Batches(data_dir, config, labels, normalizer, batch, config.seed,
                          prepare=heard)
  names = labels.conditions
  data = inputs.tf_dataset(stream).map(lambda x, *one_hots: (x, dict(zip(names, one_hots))))
  trainer = keras.Model(model.inputs, dict(zip(names, model.outputs[1:])))
  trainer.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss={name: keras.losses.CategoricalCrossentropy(from_logits=True)
                        for name in names})
  try:
    with Progress(progress, steps, "step", "training the judge") as bar:
      trainer.fit(data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0,
                  callbacks=[_StepProgress(bar)])
  finally:
    stream.close()
  judge = Judge(model, config, labels, normalizer, {})
  test = records.read_split(data_dir, "test", config.audio.num_samples,
                            sample_rate=config.audio.sample_rate,
                            pitches=labels.pitch_range)
  found = judge.outputs(test["audio"])
  judge.accuracy = judge.accuracy_of(found, test["pitch"], test["effect"], test["family"],
                                     test["velocity"])
  if np.ptp(found["embedding"], axis=0).max() == 0:
    raise Failure("the judge's training failed: its embedding is the same for every test "
                  "note, so its figures would mean nothing; nothing was cached")
  os.makedirs(directory, exist_ok=True)
  with storage.atomic_path(os.path.join(directory, "judge.weights.h5")) as tmp:
    model.save_weights(tmp)
  storage.write_json(info_path, {"normalizer": normalizer.to_json(), "accuracy": judge.accuracy,
                                 "epochs": epochs, "labels": labels.to_json()})
  return judge
