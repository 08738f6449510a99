"""Measures of notes, for generated and real audio alike.

Model-free: f0 error, the median pYIN f0 over the held part of a note against
the asked MIDI pitch, in cents; tail ratio, the energy of the released tail (the
last second) against the whole note's, in dB (an effect that rings on, such as
reverb or delay, raises it over the dry note's). Distribution measures on a
judge's class probabilities or embeddings: entropy, inception score, Frechet
distance, and NDB on spectra. Colour and loudness: level and brightness (centroid in
harmonics) of the held part, and how they follow velocity (a rank correlation).
"""

import warnings

import librosa
import numpy as np
import scipy.stats

from reverbsynth.data.notes.note import HOLD_SECONDS, SAMPLE_RATE


def f0_error_cents(audio: np.ndarray, sample_rate: int, pitches) -> np.ndarray:
  """Cents [N] from the asked MIDI pitches [N] to the median f0 of audio [N, S] (nan: unvoiced).

  pYIN searches one octave either side of each note's asked pitch, so octave errors
  count (one search per distinct pitch: its Viterbi costs the square of the range).
  """
  pitches = np.asarray(pitches)
  held = audio[:, :int(HOLD_SECONDS * sample_rate)]
  frame = 2048 * sample_rate // SAMPLE_RATE  # 128 ms frames at any rate.
  errors = np.full(len(audio), np.nan)
  for pitch in np.unique(pitches):
    rows = np.flatnonzero(pitches == pitch)
    f0, voiced, _ = librosa.pyin(held[rows], fmin=librosa.midi_to_hz(pitch - 12),
                                 fmax=min(librosa.midi_to_hz(pitch + 12), sample_rate / 4),
                                 sr=sample_rate, frame_length=frame, hop_length=frame // 4)
    for row, f, v in zip(rows, f0, voiced):
      if v.any():
        errors[row] = 1200 * np.log2(np.median(f[v]) / librosa.midi_to_hz(pitch))
  return errors


def pitch_accuracy(audio: np.ndarray, sample_rate: int, pitches, cents: float = 50.0) -> float:
  """Share of notes in audio [N, S] whose f0 lies within `cents` of the asked pitch."""
  errors = f0_error_cents(audio, sample_rate, pitches)
  return float(np.mean(np.abs(np.nan_to_num(errors, nan=np.inf)) <= cents))


def tail_ratio_db(audio: np.ndarray, tail: int) -> np.ndarray:
  """Energy of the last `tail` samples against the whole note, dB [N], for audio [N, S]."""
  energy = np.sum(np.square(audio, dtype=np.float64), axis=1)
  released = np.sum(np.square(audio[:, audio.shape[1] - tail:], dtype=np.float64), axis=1)
  return 10 * np.log10((released + 1e-12) / (energy + 1e-12))


def tail_sign_share(wet: np.ndarray, dry: np.ndarray, tail: int) -> float:
  """Share of pairs (wet [N, S], dry [N, S]) whose wet note keeps more energy in its last `tail`
  samples."""
  return float(np.mean(tail_ratio_db(wet, tail) > tail_ratio_db(dry, tail)))


# --- Colour and loudness: how notes follow velocity and family -------------------------------


def level_db(audio: np.ndarray, held: int) -> np.ndarray:
  """Energy of each note's first `held` samples (its held part), dB [N], for audio [N, S]."""
  return 10 * np.log10(np.mean(np.square(audio[:, :held], dtype=np.float64), axis=1) + 1e-12)


def brightness(audio: np.ndarray, sample_rate: int, pitches, held: int) -> np.ndarray:
  """Spectral centroid of each note's held part in harmonics of its asked pitch (centroid /
  f0, so that a pitch's own height does not count), log2 [N]."""
  spectrum = np.abs(np.fft.rfft(audio[:, :held] * np.hanning(held), axis=1)) ** 2
  freqs = np.fft.rfftfreq(held, 1 / sample_rate)
  centroid = spectrum @ freqs / (spectrum.sum(axis=1) + 1e-20)
  f0 = 440.0 * 2.0 ** ((np.asarray(pitches) - 69) / 12)
  return np.log2(np.maximum(centroid, 1.0) / f0)


def follows(values: np.ndarray, velocities, groups) -> float:
  """Spearman rank correlation of notes' MIDI velocities [N] with their `values` [N] (level,
  brightness) less the mean of their group's (`groups` [N]: e.g. family and effect), so that
  what differs between groups does not count; nan with fewer than two velocities."""
  groups = np.asarray(groups)
  centred = np.asarray(values, np.float64).copy()
  for group in np.unique(groups):
    centred[groups == group] -= centred[groups == group].mean()
  if len(np.unique(velocities)) < 2:
    return float("nan")
  return float(scipy.stats.spearmanr(velocities, centred).statistic)


def rank_correlation(a, b) -> float:
  """Spearman rank correlation of two sequences of the same length (e.g. families' mean
  brightness, real against generated)."""
  return float(scipy.stats.spearmanr(a, b).statistic)


# --- Impulse responses -------------------------------------------------------------------


def energy_decay_db(response: np.ndarray) -> np.ndarray:
  """Schroeder's backward-integrated energy decay curve of an impulse response [R], dB [R]
  (0 at the start)."""
  energy = np.cumsum(np.square(response[::-1], dtype=np.float64))[::-1]
  return 10 * np.log10(energy / max(energy[0], 1e-30) + 1e-30)


def rt60(response: np.ndarray, sample_rate: int) -> float:
  """Seconds for the response [R] to decay by 60 dB, from a line fitted to its Schroeder
  curve between -5 and -25 dB (T20, extrapolated); nan when it never decays by 25 dB."""
  curve = energy_decay_db(response)
  span = np.flatnonzero((curve <= -5) & (curve >= -25))
  if len(span) < 2 or curve.min() > -25:
    return float("nan")
  t = span / sample_rate
  slope = np.polyfit(t, curve[span], 1)[0]  # dB per second, negative.
  return float(-60.0 / slope) if slope < 0 else float("nan")


def direct_to_reverberant_db(response: np.ndarray, sample_rate: int,
                             direct_ms: float = 2.5) -> float:
  """Energy within `direct_ms` of the response's [R] strongest tap against the energy after, dB."""
  peak = int(np.argmax(np.abs(response)))
  edge = peak + max(1, int(direct_ms * 1e-3 * sample_rate))
  direct = np.sum(np.square(response[:edge], dtype=np.float64))
  return float(10 * np.log10((direct + 1e-30) / (np.sum(np.square(response[edge:],
                                                                 dtype=np.float64)) + 1e-30)))


def error_to_signal(reference: np.ndarray, estimate: np.ndarray) -> float:
  """Sum of squared differences over the reference's energy (Neural Amp Modeler's ESR)."""
  n = min(len(reference), len(estimate))
  return float(np.sum(np.square(reference[:n] - estimate[:n], dtype=np.float64))
               / max(np.sum(np.square(reference[:n], dtype=np.float64)), 1e-30))


# --- Distribution measures (on a judge's outputs, or on spectra) ------------------------


def mean_entropy(probs: np.ndarray) -> float:
  """Mean entropy (nats) of class distributions probs [N, K]: low when the judge is sure."""
  p = np.clip(probs, 1e-12, 1.0)
  return float(np.mean(-np.sum(p * np.log(p), axis=1)))


def inception_score(probs: np.ndarray) -> float:
  """exp E_x[KL(p(y|x) || p(y))] of probs [N, K]: from 1 up to K (sure and diverse)."""
  p = np.clip(probs, 1e-12, 1.0)
  marginal = np.clip(p.mean(axis=0, keepdims=True), 1e-12, 1.0)
  return float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1))))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
  """Frechet distance between Gaussians fitted to embeddings a [N, D] and b [M, D]."""
  import scipy.linalg
  mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
  eye = np.eye(a.shape[1]) * 1e-6  # Dead units make covariances singular; FID code does the same.
  cov_a, cov_b = np.cov(a, rowvar=False) + eye, np.cov(b, rowvar=False) + eye
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
  distance = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * np.real(root))
  return float(max(distance, 0.0))


def ndb(reference: np.ndarray, samples: np.ndarray, bins: int = 50, alpha: float = 0.05,
        seed: int = 0) -> int:
  """Number of statistically different bins (Richardson & Weiss, 2018).

  k-means with `bins` clusters on reference [N, D]; each of samples [M, D] goes to
  its nearest centre; a bin counts when a two-proportion z-test rejects equal shares.
  """
  import scipy.stats
  from sklearn.cluster import KMeans
  kmeans = KMeans(n_clusters=bins, n_init=4, random_state=seed).fit(reference)
  p = np.bincount(kmeans.labels_, minlength=bins) / len(reference)
  q = np.bincount(kmeans.predict(samples), minlength=bins) / len(samples)
  pooled = (p * len(reference) + q * len(samples)) / (len(reference) + len(samples))
  se = np.sqrt(pooled * (1 - pooled) * (1 / len(reference) + 1 / len(samples)))
  z = np.divide(np.abs(p - q), se, out=np.zeros(bins), where=se > 0)
  return int(np.sum(z > scipy.stats.norm.ppf(1 - alpha / 2)))
