"""Model-free measures of notes, for generated and real audio alike.

f0 error: the median pYIN f0 over the held part of a note against the asked
MIDI pitch, in cents. Tail ratio: the energy of the released tail (the last
second) against the whole note's, in dB; an effect that rings on (reverb,
delay) raises it over the dry note's.
"""

import librosa
import numpy as np

HELD_SECONDS = 3.0   # NSynth notes: held 3 s, released for the last second.
TAIL_SECONDS = 1.0


def f0_error_cents(audio: np.ndarray, sample_rate: int, pitches) -> np.ndarray:
  """Cents [N] from the asked MIDI pitches [N] to the median f0 of audio [N, S] (nan: unvoiced).

  pYIN searches one octave either side of the asked pitches, so octave errors count.
  """
  pitches = np.asarray(pitches)
  fmin = librosa.midi_to_hz(pitches.min() - 12)
  fmax = min(librosa.midi_to_hz(pitches.max() + 12), sample_rate / 4)
  held = audio[:, :int(HELD_SECONDS * sample_rate)]
  f0, voiced, _ = librosa.pyin(held, fmin=fmin, fmax=fmax, sr=sample_rate,
                               frame_length=2048, hop_length=512)
  errors = np.full(len(audio), np.nan)
  for i in range(len(audio)):
    if voiced[i].any():
      errors[i] = 1200 * np.log2(np.median(f0[i][voiced[i]]) / librosa.midi_to_hz(pitches[i]))
  return errors


def pitch_accuracy(audio: np.ndarray, sample_rate: int, pitches, cents: float = 50.0) -> float:
  """Share of notes in audio [N, S] whose f0 lies within `cents` of the asked pitch."""
  errors = f0_error_cents(audio, sample_rate, pitches)
  return float(np.mean(np.abs(np.nan_to_num(errors, nan=np.inf)) <= cents))


def tail_ratio_db(audio: np.ndarray, sample_rate: int) -> np.ndarray:
  """Energy of the last TAIL_SECONDS against the whole note, dB [N], for audio [N, S]."""
  energy = np.sum(np.square(audio, dtype=np.float64), axis=1)
  tail = np.sum(np.square(audio[:, -int(TAIL_SECONDS * sample_rate):], dtype=np.float64), axis=1)
  return 10 * np.log10((tail + 1e-12) / (energy + 1e-12))


def tail_sign_share(wet: np.ndarray, dry: np.ndarray, sample_rate: int) -> float:
  """Share of pairs (wet [N, S], dry [N, S]) whose wet note keeps more energy in its tail."""
  return float(np.mean(tail_ratio_db(wet, sample_rate) > tail_ratio_db(dry, sample_rate)))
