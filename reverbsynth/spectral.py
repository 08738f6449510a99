"""Audio <-> spectra: log-magnitude + instantaneous frequency, linear or mel (GANSynth's IF-Mel).

For 16 kHz, 64000-sample notes: STFT with a 2048 Hann window, hop 512, the audio
padded on the left by 512 * 127 + 2048 - 64000 = 3072 samples, the DC bin dropped:
128 frames x 1024 bins. Channel 0 is log magnitude (linear) or log mel power
(mel), channel 1 the instantaneous frequency: the phase unwrapped and differenced
along time, divided by pi (mel: the unwrapped phase is mel-warped first). Every
size comes from `SpectralConfig`, so tests can use a smaller variant.
"""

import dataclasses
import functools

import numpy as np
import tensorflow as tf

EPS = 1e-6
_MEL_BREAK_HZ = 700.0
_MEL_Q = 1127.0


@dataclasses.dataclass(frozen=True)
class SpectralConfig:
  sample_rate: int = 16000
  num_samples: int = 64000
  nfft: int = 2048
  hop: int = 512
  frames: int = 128
  mel: bool = True

  @property
  def bins(self) -> int:
    return self.nfft // 2

  @property
  def pad_left(self) -> int:
    """Samples of silence before the audio, so that `frames` frames cover it exactly."""
    pad = self.hop * (self.frames - 1) + self.nfft - self.num_samples
    if pad < 0:
      raise ValueError(f"{self.frames} frames of hop {self.hop} cannot hold "
                       f"{self.num_samples} samples")
    return pad

  @property
  def shape(self) -> tuple:
    return (self.frames, self.bins, 2)


def hz_to_mel(hz):
  return _MEL_Q * np.log1p(np.asarray(hz, np.float64) / _MEL_BREAK_HZ)


def mel_to_hz(mel):
  return _MEL_BREAK_HZ * np.expm1(np.asarray(mel, np.float64) / _MEL_Q)


def mel_matrix(bins: int, sample_rate: int) -> np.ndarray:
  """HTK triangular filters [bins (linear, no DC), bins (mel)] over 0..Nyquist.

  As GANSynth's: the linear bins are taken as evenly spaced over 0..Nyquist, the
  first one carries no weight, and a band narrower than 1.5 linear bins is
  widened to that width (in mel) around its centre, so that no mel bin is empty.
  """
  nyquist = sample_rate / 2
  linear_hz = np.linspace(0.0, nyquist, bins)[1:, None]
  edges = np.linspace(hz_to_mel(0.0), hz_to_mel(nyquist), bins + 2)
  lower, center, upper = edges[:-2].copy(), edges[1:-1], edges[2:].copy()
  min_width = 1.5 * nyquist / bins
  narrow = mel_to_hz(upper) - mel_to_hz(lower) < min_width
  half_width = _MEL_Q * np.arcsinh(0.5 * min_width / (mel_to_hz(center) + _MEL_BREAK_HZ))
  lower[narrow] = center[narrow] - half_width[narrow]
  upper[narrow] = center[narrow] + half_width[narrow]
  lo, mid, hi = (mel_to_hz(x)[None, :] for x in (lower, center, upper))
  rising = (linear_hz - lo) / (mid - lo)
  falling = (hi - linear_hz) / (hi - mid)
  weights = np.maximum(0.0, np.minimum(rising, falling))
  return np.pad(weights, [[1, 0], [0, 0]]).astype(np.float32)


def mel_inverse(matrix: np.ndarray) -> np.ndarray:
  """Maps mel back to linear [mel, linear]: the transpose, columns rescaled by M M^T's column sums."""
  sums = (matrix @ matrix.T).sum(axis=0)
  nonzero = np.abs(sums) > 1e-8
  scale = np.where(nonzero, 1.0 / np.where(nonzero, sums, 1.0), sums)
  return (matrix.T * scale[None, :]).astype(np.float32)


def unwrap(phase, axis: int = -2):
  """Phase with 2*pi jumps along `axis` removed (numpy.unwrap for tensors)."""
  step = _diff(phase, axis)
  wrapped = tf.math.floormod(step + np.pi, 2 * np.pi) - np.pi
  wrapped = tf.where((wrapped == -np.pi) & (step > 0), np.pi * tf.ones_like(wrapped), wrapped)
  correction = tf.cumsum(wrapped - step, axis=axis)
  return phase + tf.concat([tf.zeros_like(tf.gather(phase, [0], axis=axis)), correction],
                           axis=axis)


def _diff(x, axis):
  n = x.shape[axis]
  return tf.gather(x, tf.range(1, n), axis=axis) - tf.gather(x, tf.range(0, n - 1), axis=axis)


def instantaneous_frequency(phase, axis: int = -2):
  """Unwrapped phase differenced along time, over pi; the first frame keeps its phase."""
  unwrapped = unwrap(phase, axis)
  first = tf.gather(unwrapped, [0], axis=axis)
  return tf.concat([first, _diff(unwrapped, axis)], axis=axis) / np.pi


class Spectral:
  """Batched conversions between audio float32 [B, N] and spectra float32 [B, T, F, 2]."""

  def __init__(self, config: SpectralConfig = SpectralConfig()):
    self.config = config
    self._pad = config.pad_left

  @functools.cached_property
  def _to_mel(self):
    return tf.constant(mel_matrix(self.config.bins, self.config.sample_rate))

  @functools.cached_property
  def _from_mel(self):
    return tf.constant(mel_inverse(mel_matrix(self.config.bins, self.config.sample_rate)))

  def stft(self, audio):
    """audio float32 [B, N] -> complex64 [B, T, F] (DC bin dropped)."""
    c = self.config
    padded = tf.pad(audio, [[0, 0], [self._pad, 0]])
    return tf.signal.stft(padded, c.nfft, c.hop, c.nfft, pad_end=False)[:, :, 1:]

  @functools.cached_property
  def _window_overlap(self):
    """Overlap-added squared Hann windows [pad + N]: what synthesis must divide by."""
    c = self.config
    window = tf.signal.hann_window(c.nfft).numpy() ** 2
    total = np.zeros(c.hop * (c.frames - 1) + c.nfft, np.float32)
    for i in range(c.frames):
      total[i * c.hop:i * c.hop + c.nfft] += window
    return tf.constant(np.maximum(total, 1e-3))

  def istft(self, stft):
    """complex64 [B, T, F] -> audio float32 [B, N].

    Divides by the actual overlap of the windows, so that the last samples, which
    fewer frames cover, come back as exactly as the rest.
    """
    c = self.config
    full = tf.pad(stft, [[0, 0], [0, 0], [1, 0]])
    audio = tf.signal.inverse_stft(full, c.nfft, c.hop, c.nfft,
                                   window_fn=tf.signal.hann_window)
    audio = audio / self._window_overlap
    return audio[:, self._pad:self._pad + c.num_samples]

  def stft_to_linear(self, stft):
    """complex [B, T, F] -> [B, T, F, 2]: log magnitude, IF."""
    logmag = tf.math.log(tf.abs(stft) + EPS)
    return tf.stack([logmag, instantaneous_frequency(tf.math.angle(stft))], axis=-1)

  def linear_to_stft(self, spectra):
    """[B, T, F, 2] log magnitude + IF -> complex [B, T, F] (exact inverse of stft_to_linear)."""
    magnitude = tf.maximum(tf.exp(spectra[..., 0]) - EPS, 0.0)
    phase = tf.cumsum(spectra[..., 1] * np.pi, axis=-2)
    return tf.complex(magnitude * tf.cos(phase), magnitude * tf.sin(phase))

  def linear_to_mel(self, spectra):
    """Linear [B, T, F, 2] -> mel [B, T, F, 2]: log mel power, mel IF."""
    power = tf.exp(2.0 * spectra[..., 0])
    phase = tf.cumsum(spectra[..., 1] * np.pi, axis=-2)
    log_mel_power = tf.math.log(tf.tensordot(power, self._to_mel, 1) + EPS)
    mel_if = instantaneous_frequency(tf.tensordot(phase, self._to_mel, 1))
    return tf.stack([log_mel_power, mel_if], axis=-1)

  def mel_to_linear(self, spectra):
    """Mel [B, T, F, 2] -> linear [B, T, F, 2] (approximate: mel loses resolution)."""
    power = tf.tensordot(tf.exp(spectra[..., 0]), self._from_mel, 1)
    logmag = 0.5 * tf.math.log(power + EPS)
    mel_phase = tf.cumsum(spectra[..., 1] * np.pi, axis=-2)
    phase_if = instantaneous_frequency(tf.tensordot(mel_phase, self._from_mel, 1))
    return tf.stack([logmag, phase_if], axis=-1)

  def audio_to_spectra(self, audio):
    """audio float32 [B, N] -> [B, T, F, 2]: IF-Mel, or linear when config.mel is off."""
    linear = self.stft_to_linear(self.stft(audio))
    return self.linear_to_mel(linear) if self.config.mel else linear

  def spectra_to_audio(self, spectra):
    """[B, T, F, 2] (IF-Mel, or linear) -> audio float32 [B, N]."""
    linear = self.mel_to_linear(spectra) if self.config.mel else spectra
    return self.istft(self.linear_to_stft(linear))


@dataclasses.dataclass(frozen=True)
class Normalizer:
  """Per-channel affine map of spectra to about [-1, 1]: x * scale + offset, clipped."""
  scale: tuple
  offset: tuple

  def normalize(self, spectra):
    return tf.clip_by_value(spectra * self.scale + self.offset, -1.0, 1.0)

  def denormalize(self, spectra):
    return (spectra - np.asarray(self.offset, np.float32)) / np.asarray(self.scale, np.float32)

  def to_json(self) -> dict:
    return {"scale": list(self.scale), "offset": list(self.offset)}

  @classmethod
  def from_json(cls, data: dict) -> "Normalizer":
    return cls(tuple(data["scale"]), tuple(data["offset"]))
