"""Notes from a trained generator: latents + MIDI pitch + effect name (+ instrument family
and velocity, for a model conditioned on them) -> audio.

`Synthesizer` is an exported generator (runs.files: the EMA weights with the training
config, label vocabularies, normalizer and the level it was trained up to) that turns
labels into one-hot inputs, brings spectra from that level to full size and inverts
them to audio. `generate_files` plays every combination of labels into WAVs, as
`reverbsynth generate` does.
"""

import dataclasses
import os
import typing

import keras
import numpy as np

from reverbsynth import spectral, storage
from reverbsynth.data.notes.note import HOLD_SECONDS, NUM_SAMPLES, SAMPLE_RATE
from reverbsynth.errors import UserError
from reverbsynth.model import layers as L
from reverbsynth.runs import files
from reverbsynth.synthesis import outputs

HELD_FRACTION = HOLD_SECONDS * SAMPLE_RATE / NUM_SAMPLES  # Of a dataset note: 3 s of 4.


@dataclasses.dataclass
class Synthesizer(files.Exported):
  """An exported generator that plays: labels in, spectra and audio out."""

  def __post_init__(self):
    # Audio in the array library of the Keras backend that runs the generator.
    self.spectral = spectral.Spectral(
        self.config.spectral_config(),
        "tensorflow" if keras.backend.backend() == "tensorflow" else "numpy")
    self.model_config = self.generator.config

  @property
  def sample_rate(self) -> int:
    return self.config.audio.sample_rate

  @property
  def num_samples(self) -> int:
    return self.config.audio.num_samples

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
    """[count, latent_size] latents from the export's prior (standard normal without one),
    the same for the same seed."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((count, self.model_config.latent_size)).astype(np.float32)
    return self.latent_prior.draw(z) if self.latent_prior else z

  @property
  def plays_audio(self) -> bool:
    """Whether the generator draws audio itself (ddsp) rather than spectra."""
    return self.config.model.generator == "ddsp"

  @property
  def conditioned_on_velocity(self) -> bool:
    """Whether velocity is one of the model's labels (else it only scales a note's gain)."""
    return bool(self.labels.velocities)

  def _generate(self, z, pitches, effects, families=None, velocities=None):
    """The generator's output for latents [N, L], MIDI pitches [N], effects [N] (and family
    names [N], MIDI velocities [N] where the model has those conditions): audio [N, S]
    (ddsp), or normalized spectra [N, T, F, 2] at its level."""
    pitch = np.eye(self.model_config.num_pitches, dtype=np.float32)[self.pitch_ids(pitches)]
    effect = np.eye(self.model_config.num_effects, dtype=np.float32)[self.effect_ids(effects)]
    attributes = self.labels.attribute_one_hots(families, velocities)
    return self.generator(np.asarray(z, np.float32), pitch, effect, level=self.level,
                          **({"attributes": attributes} if attributes else {}))

  def spectra(self, z, pitches, effects):
    """Normalized full-size spectra [N, T, F, 2] for latents [N, L], MIDI pitches [N], effects [N]
    (a spectral generator only)."""
    x = self._generate(z, pitches, effects)
    factor = 2 ** (self.model_config.num_levels - self.level)
    return keras.ops.convert_to_numpy(L.upsample(x, factor) if factor > 1 else x)

  def to_audio(self, spectra) -> np.ndarray:
    """Audio [N, num_samples] float32 of normalized spectra [N, T, F, 2]."""
    return np.asarray(self.spectral.spectra_to_audio(self.normalizer.denormalize(spectra)))

  def _audio(self, z, pitches, effects, families=None, velocities=None) -> np.ndarray:
    if self.plays_audio:
      return keras.ops.convert_to_numpy(
          self._generate(z, pitches, effects, families, velocities)).astype(np.float32)
    return self.to_audio(self.spectra(z, pitches, effects))

  def audio(self, z, pitches, effects, batch_size: int = 32, families=None,
            velocities=None) -> np.ndarray:
    """Audio [N, num_samples] float32 for latents [N, L], MIDI pitches [N], effects [N] (and
    family names [N], MIDI velocities [N] where the model has those conditions)."""
    out = []
    part = lambda values, i: None if values is None else values[i:i + batch_size]
    for i in range(0, len(z), batch_size):
      out.append(self._audio(z[i:i + batch_size], pitches[i:i + batch_size],
                             effects[i:i + batch_size], part(families, i),
                             part(velocities, i)))
    if not out:
      return np.zeros((0, self.num_samples), np.float32)
    return np.concatenate(out)

  def notes_and_images(self, z, pitches, effects, families=None, velocities=None):
    """(audio [N, S], images [N, F, T, 1] in [0, 1]): the generated spectra of a spectral
    generator, the log-mel spectrogram of the audio of one that draws audio."""
    if self.plays_audio:
      notes = self.audio(z, pitches, effects, families=families, velocities=velocities)
      return notes, outputs.audio_images(notes, self.sample_rate)
    spectra = self.spectra(z, pitches, effects)
    return self.to_audio(spectra), outputs.spectra_image(spectra)


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


def choose_latents(synth: "Synthesizer", seeds=(), latents_file=None,
                   interpolate=None) -> np.ndarray:
  """The latents [K, L] that `generate` plays: a .npy file's, else one per seed (default
  0); with `interpolate`, that many steps of slerp from the first to the second."""
  if latents_file:
    z = load_latents(latents_file, synth.model_config.latent_size)
  else:
    z = np.concatenate([synth.latents(1, s) for s in seeds or (0,)])
  if interpolate:
    if len(z) < 2:
      raise UserError("--interpolate needs two latents: give two --seed or a --latents file "
                      "with two rows")
    z = slerp(z[0], z[1], interpolate)
  return z


def load(directory) -> Synthesizer:
  """The Synthesizer of an exported generator, or of a run directory holding one."""
  exported = files.read_generator(directory)
  return Synthesizer(**{f.name: getattr(exported, f.name)
                        for f in dataclasses.fields(files.Exported)})


def velocity_gain(velocity: int) -> float:
  """Amplitude for a MIDI velocity: (v / 127)^2, about 40 dB from 1 to 127."""
  return (velocity / 127.0) ** 2


def velocity_gains(synth: Synthesizer, velocities) -> np.ndarray:
  """Amplitudes [N] for MIDI velocities [N]: velocity_gain, or for a model conditioned on
  velocity (which plays the nearest velocity label's loudness and colour) the gain from that
  label's velocity to the note's."""
  gains = np.array([velocity_gain(v) for v in velocities], np.float32)
  if synth.conditioned_on_velocity:
    layers = np.asarray(synth.labels.velocities)[synth.labels.velocity_ids(velocities)]
    gains /= np.array([velocity_gain(v) for v in layers], np.float32)
  return gains


class GridNote(typing.NamedTuple):
  """One note of `generate`'s grid: its labels and the index of its latent."""
  pitch: int
  effect: str
  velocity: int
  latent: int
  family: str | None = None  # For a model conditioned on the instrument family.


def generate_grid(synth: Synthesizer, pitches, effects, velocities, z: np.ndarray,
                  families=()):
  """Every combination of families (a model conditioned on them), MIDI pitches, effects,
  velocities and latents z [K, L].

  Returns (grid: [GridNote] of G notes, audio [G, S]), each note scaled by its velocity
  (velocity_gains), then all by one gain that keeps the loudest peak at most -1 dBFS (so
  loudness stays comparable across notes). Bad labels fail before any work.
  """
  synth.pitch_ids(pitches), synth.effect_ids(effects), synth.labels.family_ids(families)
  grid = [GridNote(p, e, v, i, f) for f in families or (None,) for p in pitches
          for e in effects for v in velocities for i in range(len(z))]
  audio = synth.audio(z[[g.latent for g in grid]], [g.pitch for g in grid],
                      [g.effect for g in grid],
                      families=[g.family for g in grid] if families else None,
                      velocities=[g.velocity for g in grid])
  audio *= velocity_gains(synth, [g.velocity for g in grid])[:, None]
  return grid, outputs.normalize(audio, only_down=True)


@dataclasses.dataclass(frozen=True)
class GenerateOptions:
  """What generate_files plays: every combination of `families` (a model conditioned on
  them; default: all the model's), `pitches` (default 36 48 60), `effects` (default: all
  the model's), `velocities` (default 100) and latents (one per seed, default 0, or a .npy
  file's; `interpolate` steps of slerp from the first to the second), written as WAVs of
  `bits` (and spectrogram PNGs with `png`); the latents themselves to `save_latents`."""
  families: tuple = ()
  pitches: tuple = ()
  effects: tuple = ()
  velocities: tuple = ()
  seeds: tuple = ()
  latents_file: str | None = None
  interpolate: int | None = None
  save_latents: str | None = None
  bits: str = "float"
  png: bool = False


def generate_files(synth: Synthesizer, out, options: GenerateOptions) -> str:
  """Writes the notes `options` asks for into the folder `out` (outputs.write_notes);
  returns what was written, as a line."""
  o = options
  pitches, velocities = o.pitches or (36, 48, 60), o.velocities or (100,)
  effects, families = o.effects or synth.labels.effects, o.families or synth.labels.families
  z = choose_latents(synth, o.seeds, o.latents_file, o.interpolate)
  grid, audio = generate_grid(synth, pitches, effects, velocities, z, families)
  outputs.write_notes(grid, audio, synth.sample_rate, out, o.bits, o.png)
  if o.save_latents:
    with storage.atomic_path(o.save_latents) as tmp, open(tmp, "wb") as f:
      np.save(f, z)  # To the open file: given a name, np.save would add .npy to it.
  return (f"{len(grid)} notes ({f'{len(families)} families x ' if families else ''}"
          f"{len(pitches)} pitches x {len(effects)} effects x "
          f"{len(velocities)} velocities x {len(z)} latents) in {out}")
