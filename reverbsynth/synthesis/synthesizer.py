"""Notes from a trained generator: latents + MIDI pitch + effect name -> audio.

An exported generator (a run's generator/ directory) holds the EMA weights and
generator.json: the training config, label vocabularies, the normalizer and the
level it was trained up to. `Synthesizer` turns labels into one-hot inputs,
brings spectra from that level to full size and inverts them to audio.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from reverbsynth.synthesis import outputs
from reverbsynth import spectral
from reverbsynth.training import inputs as train_input
from reverbsynth.errors import UserError
from reverbsynth.model import layers as L, networks
from reverbsynth.data.notes.note import HOLD_SECONDS, NUM_SAMPLES, SAMPLE_RATE

GENERATOR_DIR = "generator"
COMPACT_WEIGHTS = "generator.float16.npz"  # save_compact's weights, in generator.weights order.
# The generator shipped with the package (save_compact of a cpu run; its README says how).
PRETRAINED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")
HELD_FRACTION = HOLD_SECONDS * SAMPLE_RATE / NUM_SAMPLES  # Of a dataset note: 3 s of 4.


def model_config(config: dict, labels: train_input.Labels) -> networks.ModelConfig:
  """The network shapes of a training config, with its label vocabularies' sizes."""
  return networks.ModelConfig.from_config(config["model"], labels.num_pitches,
                                         len(labels.effects))


@dataclasses.dataclass
class Synthesizer:
  """A generator with what it needs to play: labels, normalizer, spectral settings."""
  generator: networks.Generator
  config: dict
  labels: train_input.Labels
  normalizer: train_input.Normalizer
  level: int

  def __post_init__(self):
    self.spectral = spectral.Spectral(train_input.spectral_config(self.config))
    self.model_config = self.generator.config

  @property
  def sample_rate(self) -> int:
    return self.config["audio"]["sample_rate"]

  @property
  def num_samples(self) -> int:
    return self.config["audio"]["num_samples"]

  @property
  def held_samples(self) -> int:
    """Samples of a note before its note-off; the rest is its release (and effect tail)."""
    return int(self.num_samples * HELD_FRACTION)

  @property
  def pitches(self) -> range:
    """The MIDI pitches the model was trained to play."""
    return self.labels.pitch_range

  def pitch_ids(self, pitches) -> np.ndarray:
    """MIDI pitches [N] -> label indices [N]; raises UserError outside the model's range."""
    pitches = np.asarray(pitches, int)
    bad = pitches[(pitches < self.pitches.start) | (pitches >= self.pitches.stop)]
    if bad.size:
      raise UserError(f"pitch {bad[0]} is outside the model's range "
                      f"{self.pitches.start}..{self.pitches.stop - 1}")
    return pitches - self.labels.pitch_min

  def effect_ids(self, effects) -> np.ndarray:
    """Effect names (or label indices) [N] -> label indices [N]."""
    ids = []
    for e in effects:
      if isinstance(e, (int, np.integer)) and 0 <= e < len(self.labels.effects):
        ids.append(int(e))
      elif e in self.labels.effects:
        ids.append(self.labels.effects.index(e))
      else:
        raise UserError(f"the model knows no effect {e!r}; it was trained on "
                        f"{', '.join(self.labels.effects)}")
    return np.asarray(ids, int)

  def latents(self, count: int, seed: int) -> np.ndarray:
    """[count, latent_size] standard normal latents, the same for the same seed."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, self.model_config.latent_size)).astype(np.float32)

  def spectra(self, z, pitches, effects):
    """Normalized full-size spectra [N, T, F, 2] for latents [N, L], MIDI pitches [N], effects [N]."""
    pitch = tf.one_hot(self.pitch_ids(pitches), self.model_config.num_pitches)
    effect = tf.one_hot(self.effect_ids(effects), self.model_config.num_effects)
    x = self.generator(tf.convert_to_tensor(z, tf.float32), pitch, effect, level=self.level)
    factor = 2 ** (self.model_config.num_levels - self.level)
    return L.upsample(x, factor) if factor > 1 else x

  def audio(self, z, pitches, effects, batch_size: int = 32) -> np.ndarray:
    """Audio [N, num_samples] float32 for latents [N, L], MIDI pitches [N], effects [N]."""
    out = []
    for i in range(0, len(z), batch_size):
      x = self.spectra(z[i:i + batch_size], pitches[i:i + batch_size],
                       effects[i:i + batch_size])
      out.append(self.spectral.spectra_to_audio(self.normalizer.denormalize(x)).numpy())
    if not out:
      return np.zeros((0, self.num_samples), np.float32)
    return np.concatenate(out)


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
  """`steps` latents [steps, L] on the great circle from a [L] to b [L], both ends included."""
  t = np.linspace(0.0, 1.0, steps)[:, None]
  cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
  omega = np.arccos(np.clip(cos, -1.0, 1.0))
  if omega < 1e-6:
    return ((1 - t) * a + t * b).astype(np.float32)
  return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)


def load_latents(path, latent_size: int) -> np.ndarray:
  """Latents [N, latent_size] from a .npy file; UserError when it holds anything else."""
  if not os.path.isfile(path):
    raise UserError(f"latents file {path} does not exist")
  try:
    z = np.load(path, allow_pickle=False)
  except (OSError, ValueError):
    raise UserError(f"{path} is not a .npy array file (write one with numpy.save, or with "
                    "generate --save-latents)") from None
  z = z[None] if z.ndim == 1 else z
  if z.ndim != 2 or z.shape[1] != latent_size or not len(z):
    raise UserError(f"{path} holds an array of shape {z.shape}; the run needs latents of "
                    f"shape [N, {latent_size}]")
  return z.astype(np.float32)


def load(directory) -> Synthesizer:
  """The Synthesizer of an exported generator, or of a run directory holding one."""
  directory = str(directory)
  if not os.path.exists(os.path.join(directory, "generator.json")):
    inner = os.path.join(directory, GENERATOR_DIR)
    if not os.path.exists(os.path.join(inner, "generator.json")):
      raise UserError(f"{directory} holds no exported generator (no generator.json): give a "
                      "run directory that finished at least one stage")
    directory = inner
  try:
    info = train_input.load_json(os.path.join(directory, "generator.json"))
    labels = train_input.Labels.from_json(info["labels"])
    generator = networks.Generator(model_config(info["config"], labels))
    networks.build_generator(generator)
    compact = os.path.join(directory, COMPACT_WEIGHTS)
    if os.path.exists(compact):
      with np.load(compact) as weights:
        generator.set_weights([weights[f"{i:04d}"].astype(np.float32)
                               for i in range(len(weights.files))])
    else:
      generator.load_weights(os.path.join(directory, "generator.weights.h5"))
  except (OSError, ValueError, KeyError) as e:
    raise UserError(f"the exported generator in {directory} is incomplete or damaged "
                    f"({type(e).__name__}: {e}); export it again by resuming the run") from None
  return Synthesizer(generator, info["config"], labels,
                     train_input.Normalizer.from_json(info["normalizer"]), info["level"])


def save_compact(synth: Synthesizer, directory) -> None:
  """Writes `synth` as a directory that `load` reads: generator.json and the weights in
  float16 (half the size of the float32 h5; the generator still computes in float32)."""
  os.makedirs(directory, exist_ok=True)
  with outputs.atomic_path(os.path.join(directory, COMPACT_WEIGHTS)) as tmp:
    with open(tmp, "wb") as f:
      np.savez_compressed(f, **{f"{i:04d}": w.astype(np.float16)
                                for i, w in enumerate(synth.generator.get_weights())})
  with outputs.atomic_path(os.path.join(directory, "generator.json")) as tmp:
    train_input.save_json(tmp, {"config": synth.config, "labels": synth.labels.to_json(),
                                "normalizer": synth.normalizer.to_json(),
                                "level": synth.level})


def pretrained() -> str | None:
  """The directory of the generator shipped with the package (or $REVERBSYNTH_PRETRAINED's;
  empty: none), if it holds one."""
  directory = os.environ.get("REVERBSYNTH_PRETRAINED", PRETRAINED)
  return directory if directory and os.path.exists(
      os.path.join(directory, "generator.json")) else None
