"""The Note record: one NSynth-style note, its labels and (once loaded) its audio."""

import dataclasses

import numpy as np

SAMPLE_RATE = 16000
NUM_SAMPLES = 64000  # 4 s: held 3 s, released for the last second.
HOLD_SECONDS = 3.0
VELOCITIES = (25, 50, 75, 100, 127)

FAMILIES = ("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ",
            "reed", "string", "synth_lead", "vocal")
SOURCES = ("acoustic", "electronic", "synthetic")
QUALITIES = ("bright", "dark", "distortion", "fast_decay", "long_release",
             "multiphonic", "nonlinear_env", "percussive", "reverb",
             "tempo-synced")


@dataclasses.dataclass
class Note:
  """A note with the NSynth fields.

  `audio` is float32 [NUM_SAMPLES] at `sample_rate`, or None while the note is
  only a reference (metadata and where to load it from) that can be filtered
  before its audio is read or rendered.
  """
  note_str: str
  pitch: int
  velocity: int
  instrument: int
  instrument_str: str
  instrument_family: int
  instrument_source: int
  qualities: tuple = (0,) * len(QUALITIES)
  sample_rate: int = SAMPLE_RATE
  audio: np.ndarray | None = None

  @property
  def instrument_family_str(self) -> str:
    return FAMILIES[self.instrument_family]

  @property
  def instrument_source_str(self) -> str:
    return SOURCES[self.instrument_source]

  @property
  def qualities_str(self) -> list:
    return [q for q, on in zip(QUALITIES, self.qualities) if on]

  def with_audio(self, audio: np.ndarray, sample_rate: int) -> "Note":
    return dataclasses.replace(self, audio=audio, sample_rate=sample_rate)


def nsynth_names(family: int, source: int, instrument: int, pitch: int,
                 velocity: int) -> tuple:
  """(instrument_str, note_str) in NSynth form: bass_synthetic_033-040-100."""
  instrument_str = f"{FAMILIES[family]}_{SOURCES[source]}_{instrument:03d}"
  return instrument_str, f"{instrument_str}-{pitch:03d}-{velocity:03d}"


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
  """float32 audio [..., S] at `from_rate` -> [..., S * to_rate / from_rate].

  Resampled with soxr, deterministic.
  """
  if from_rate == to_rate:
    return np.asarray(audio, np.float32)
  import librosa  # Slow to import; only needed here.
  return librosa.resample(np.asarray(audio, np.float32), orig_sr=from_rate, target_sr=to_rate,
                          axis=-1).astype(np.float32)


def to_mono(audio: np.ndarray, sample_rate: int) -> tuple:
  """Mono float32 audio at SAMPLE_RATE, and what was done ("downmixed", "resampled")."""
  changes = []
  audio = np.asarray(audio, np.float32)
  if audio.ndim > 1:
    audio = audio.mean(axis=1)
    changes.append("downmixed")
  if sample_rate != SAMPLE_RATE:
    audio = resample(audio, sample_rate, SAMPLE_RATE)
    changes.append("resampled")
  return np.ascontiguousarray(audio, np.float32), changes


def conform(audio: np.ndarray, sample_rate: int) -> tuple:
  """Mono audio at SAMPLE_RATE, exactly NUM_SAMPLES long, float32.

  Returns (audio [NUM_SAMPLES], what was done: "downmixed", "resampled",
  "padded", "trimmed"), so that the manifest can count it.
  """
  audio, changes = to_mono(audio, sample_rate)
  if len(audio) < NUM_SAMPLES:
    audio = np.pad(audio, (0, NUM_SAMPLES - len(audio)))
    changes.append("padded")
  elif len(audio) > NUM_SAMPLES:
    audio = audio[:NUM_SAMPLES]
    changes.append("trimmed")
  return audio, changes
