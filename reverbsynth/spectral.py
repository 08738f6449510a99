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
  mel_bands: str = "gansynth"  # spectral.MEL_BANDS: how mel_matrix widens narrow bands.

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


MEL_BANDS = ("gansynth", "separate")


def _widened(edges: np.ndarray, min_width_hz: float, shared: bool) -> tuple:
  """(lower, center, upper) mel edges of the bands of `edges` [M + 2], each band narrower
  than `min_width_hz` widened to that width (in mel) around its centre.

  `shared`: as GANSynth's code does, the bands share one array of edges, widened in
  place in band order: widening band i moves edge i (band i-1's centre, band i-2's upper
  edge) and edge i + 2 (band i+1's centre, band i+2's lower edge), and later bands read
  the moved edges. Otherwise each band is widened on its own copy of its edges.
  """
  half_width = lambda center: _MEL_Q * np.arcsinh(
      0.5 * min_width_hz / (mel_to_hz(center) + _MEL_BREAK_HZ))
  narrow = lambda lo, hi: mel_to_hz(hi) - mel_to_hz(lo) < min_width_hz
  if shared:
    edges = edges.copy()
    for i in range(len(edges) - 2):
      if narrow(edges[i], edges[i + 2]):
        width = half_width(edges[i + 1])
        edges[i], edges[i + 2] = edges[i + 1] - width, edges[i + 1] + width
    return edges[:-2], edges[1:-1], edges[2:]
  lower, center, upper = edges[:-2].copy(), edges[1:-1], edges[2:].copy()
  widen = narrow(lower, upper)
  lower[widen] = center[widen] - half_width(center[widen])
  upper[widen] = center[widen] + half_width(center[widen])
  return lower, center, upper


@functools.lru_cache(maxsize=8)
def mel_matrix(bins: int, sample_rate: int, bands: str = "gansynth") -> np.ndarray:
  """HTK triangular filters [bins (linear, no DC), bins (mel)] over 0..Nyquist.

  GANSynth's: the linear bins are taken as evenly spaced over 0..Nyquist, the first
  one carries no weight, and a band narrower than 1.5 linear bins is widened to that
  width. `bands` "gansynth" widens them as GANSynth's code does (shared edges, moved in
  place); "separate" each on its own (what that code seems to intend; reverbsynth's
  matrix before 2026-12-04, kept for runs trained with it: README, IF-Mel).
  """
  if bands not in MEL_BANDS:
    raise ValueError(f"mel bands {bands!r} is not one of {', '.join(MEL_BANDS)}")
  nyquist = sample_rate / 2
  linear_hz = np.linspace(0.0, nyquist, bins)[1:, None]
  edges = np.linspace(hz_to_mel(0.0), hz_to_mel(nyquist), bins + 2)
  lower, center, upper = _widened(edges, 1.5 * nyquist / bins, bands == "gansynth")
  lo, mid, hi = (mel_to_hz(x)[None, :] for x in (lower, center, upper))
  rising = (linear_hz - lo) / (mid - lo)
  falling = (hi - linear_hz) / (hi - mid)
  weights = np.maximum(0.0, np.minimum(rising, falling))
  matrix = np.pad(weights, [[1, 0], [0, 0]]).astype(np.float32)
  matrix.setflags(write=False)
  return matrix


def mel_filters(sample_rate: int, nfft: int, mels: int) -> np.ndarray:
  """HTK-mel triangular filters [nfft / 2 + 1 (linear, with DC), mels], each peaking at 1,
  their centres evenly spaced in mel over 0..Nyquist (for pictures and features that need no
  inverse)."""
  linear_hz = np.linspace(0.0, sample_rate / 2, nfft // 2 + 1)[:, None]
  lo, mid, hi = (mel_to_hz(e)[None, :] for e in (lambda x: (x[:-2], x[1:-1], x[2:]))(
      np.linspace(0.0, hz_to_mel(sample_rate / 2), mels + 2)))
  return np.maximum(0.0, np.minimum((linear_hz - lo) / (mid - lo),
                                    (hi - linear_hz) / (hi - mid))).astype(np.float32)


def mel_inverse(matrix: np.ndarray) -> np.ndarray:
  """Maps mel back to linear [mel, linear]: the transpose, columns rescaled by M M^T's column
  sums."""
  sums = (matrix @ matrix.T).sum(axis=0)
  nonzero = np.abs(sums) > 1e-8
  scale = np.where(nonzero, 1.0 / np.where(nonzero, sums, 1.0), sums)
  return (matrix.T * scale[None, :]).astype(np.float32)


class ArrayOps:
  """The array operations of `Spectral` in a numpy-like module `xp` (numpy, or jax.numpy).

  The STFT frames the audio by gathering and overlap-adds its inverse by shifted sums,
  so that both modules run the same code; the inverse needs nfft a multiple of hop.
  """

  def __init__(self, xp=np):
    self.xp = xp

  def __getattr__(self, name):
    return getattr(self.xp, name)

  def constant(self, value):
    return self.xp.asarray(value, self.xp.float32)

  def hann(self, n: int):
    """Periodic Hann window [n] (tf.signal.hann_window's)."""
    return self.constant(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n))

  def stft(self, audio, nfft: int, hop: int):
    """float32 [B, N] -> complex64 [B, T, nfft/2 + 1], T = 1 + (N - nfft) // hop."""
    xp = self.xp
    frames = 1 + (audio.shape[-1] - nfft) // hop
    index = hop * np.arange(frames)[:, None] + np.arange(nfft)[None]
    return xp.fft.rfft(audio[:, index] * self.hann(nfft), axis=-1).astype(xp.complex64)

  def inverse_stft(self, stft, nfft: int, hop: int):
    """complex [B, T, nfft/2 + 1] -> float32 [B, hop (T - 1) + nfft]: windowed frames
    overlap-added (no window normalization, as tf.signal.inverse_stft)."""
    xp = self.xp
    frames = xp.fft.irfft(stft, nfft, axis=-1).astype(xp.float32) * self.hann(nfft)
    batch, count, _ = frames.shape
    parts = nfft // hop
    chunks = frames.reshape(batch, count, parts, hop)
    total = sum(xp.pad(chunks[:, :, j], ((0, 0), (j, parts - 1 - j), (0, 0)))
                for j in range(parts))
    return total.reshape(batch, -1)

  def complex(self, real, imaginary):
    return (real + 1j * imaginary).astype(self.xp.complex64)

  def floormod(self, x, y):
    return self.xp.mod(x, y)

  def clip(self, x, low, high):
    return self.xp.clip(x, low, high)


class TensorFlowOps:
  """The array operations of `Spectral` in TensorFlow (graph-safe: for tf.data)."""

  def __init__(self):
    import tensorflow as tf
    self.tf = tf

  def __getattr__(self, name):
    return getattr(self.tf.math, name, None) or getattr(self.tf, name)

  def constant(self, value):
    return self.tf.constant(value, self.tf.float32)

  def hann(self, n: int):
    return self.tf.signal.hann_window(n)

  def stft(self, audio, nfft: int, hop: int):
    return self.tf.signal.stft(audio, nfft, hop, nfft, pad_end=False)

  def inverse_stft(self, stft, nfft: int, hop: int):
    return self.tf.signal.inverse_stft(stft, nfft, hop, nfft,
                                       window_fn=self.tf.signal.hann_window)

  def concatenate(self, values, axis):
    return self.tf.concat(values, axis=axis)

  def pad(self, x, widths):
    return self.tf.pad(x, widths)

  def clip(self, x, low, high):
    return self.tf.clip_by_value(x, low, high)


def ops_for(name: str):
  """Spectral's array operations by name: tensorflow, numpy or jax (jax.numpy)."""
  if name == "tensorflow":
    return TensorFlowOps()
  if name == "jax":
    import jax.numpy as jnp
    return ArrayOps(jnp)
  return ArrayOps(np)


def _along(x, axis: int, start=None, stop=None):
  """x[..., start:stop, ...] on `axis` (negative)."""
  return x[(Ellipsis, slice(start, stop)) + (slice(None),) * (-axis - 1)]


class Spectral:
  """Batched conversions between audio float32 [B, N] and spectra float32 [B, T, F, 2],
  in TensorFlow (`ops` "tensorflow", the default), numpy or jax.numpy: the same numbers
  to float32 rounding (tests/test_spectral.py states by how much)."""

  def __init__(self, config: SpectralConfig = SpectralConfig(), ops="tensorflow"):
    self.config = config
    self.ops = ops_for(ops) if isinstance(ops, str) else ops
    self._pad = config.pad_left

  @functools.cached_property
  def _to_mel(self):
    return self.ops.constant(self._mel_matrix)

  @functools.cached_property
  def _from_mel(self):
    return self.ops.constant(mel_inverse(self._mel_matrix))

  @property
  def _mel_matrix(self) -> np.ndarray:
    c = self.config
    return mel_matrix(c.bins, c.sample_rate, c.mel_bands)

  def unwrap(self, phase, axis: int = -2):
    """Phase with 2*pi jumps along `axis` removed (numpy.unwrap)."""
    o = self.ops
    step = _along(phase, axis, 1) - _along(phase, axis, None, -1)
    wrapped = o.floormod(step + np.pi, 2 * np.pi) - np.pi
    wrapped = o.where((wrapped == -np.pi) & (step > 0), np.pi * o.ones_like(wrapped), wrapped)
    correction = o.cumsum(wrapped - step, axis=axis)
    return phase + o.concatenate([o.zeros_like(_along(phase, axis, 0, 1)), correction],
                                 axis=axis)

  def instantaneous_frequency(self, phase, axis: int = -2):
    """Unwrapped phase differenced along time, over pi; the first frame keeps its phase."""
    unwrapped = self.unwrap(phase, axis)
    step = _along(unwrapped, axis, 1) - _along(unwrapped, axis, None, -1)
    return self.ops.concatenate([_along(unwrapped, axis, 0, 1), step], axis=axis) / np.pi

  def stft(self, audio):
    """audio float32 [B, N] -> complex64 [B, T, F] (DC bin dropped)."""
    c = self.config
    padded = self.ops.pad(audio, [[0, 0], [self._pad, 0]])
    return self.ops.stft(padded, c.nfft, c.hop)[:, :, 1:]

  @functools.cached_property
  def _window_overlap(self):
    """Overlap-added squared Hann windows [pad + N]: what synthesis must divide by."""
    c = self.config
    window = np.asarray(self.ops.hann(c.nfft)) ** 2
    total = np.zeros(c.hop * (c.frames - 1) + c.nfft, np.float32)
    for i in range(c.frames):
      total[i * c.hop:i * c.hop + c.nfft] += window
    return self.ops.constant(np.maximum(total, 1e-3))

  def istft(self, stft):
    """complex64 [B, T, F] -> audio float32 [B, N].

    Divides by the actual overlap of the windows, so that the last samples, which
    fewer frames cover, come back as exactly as the rest.
    """
    c, o = self.config, self.ops
    full = o.pad(stft, [[0, 0], [0, 0], [1, 0]])
    audio = o.inverse_stft(full, c.nfft, c.hop) / self._window_overlap
    return audio[:, self._pad:self._pad + c.num_samples]

  def stft_to_linear(self, stft):
    """complex [B, T, F] -> [B, T, F, 2]: log magnitude, IF."""
    o = self.ops
    logmag = o.log(o.abs(stft) + EPS)
    return o.stack([logmag, self.instantaneous_frequency(o.angle(stft))], axis=-1)

  def linear_to_stft(self, spectra):
    """[B, T, F, 2] log magnitude + IF -> complex [B, T, F] (exact inverse of stft_to_linear)."""
    o = self.ops
    magnitude = o.maximum(o.exp(spectra[..., 0]) - EPS, 0.0)
    phase = o.cumsum(spectra[..., 1] * np.pi, axis=-2)
    return o.complex(magnitude * o.cos(phase), magnitude * o.sin(phase))

  def linear_to_mel(self, spectra):
    """Linear [B, T, F, 2] -> mel [B, T, F, 2]: log mel power, mel IF."""
    o = self.ops
    power = o.exp(2.0 * spectra[..., 0])
    phase = o.cumsum(spectra[..., 1] * np.pi, axis=-2)
    log_mel_power = o.log(o.tensordot(power, self._to_mel, 1) + EPS)
    mel_if = self.instantaneous_frequency(o.tensordot(phase, self._to_mel, 1))
    return o.stack([log_mel_power, mel_if], axis=-1)

  def mel_to_linear(self, spectra):
    """Mel [B, T, F, 2] -> linear [B, T, F, 2] (approximate: mel loses resolution)."""
    o = self.ops
    power = o.tensordot(o.exp(spectra[..., 0]), self._from_mel, 1)
    logmag = 0.5 * o.log(power + EPS)
    mel_phase = o.cumsum(spectra[..., 1] * np.pi, axis=-2)
    phase_if = self.instantaneous_frequency(o.tensordot(mel_phase, self._from_mel, 1))
    return o.stack([logmag, phase_if], axis=-1)

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

  def normalize(self, spectra, ops=None):
    """Spectra [..., C] mapped and clipped to [-1, 1]; `ops` as Spectral's (default TensorFlow)."""
    ops = ops or ops_for("tensorflow")
    return ops.clip(spectra * np.asarray(self.scale, np.float32)
                    + np.asarray(self.offset, np.float32), -1.0, 1.0)

  def denormalize(self, spectra):
    return (spectra - np.asarray(self.offset, np.float32)) / np.asarray(self.scale, np.float32)

  @classmethod
  def fit(cls, spectra: np.ndarray, margin: float) -> "Normalizer":
    """Maps the 0.1 and 99.9 percentiles of each channel of spectra [..., C] to -/+ `margin`
    (GANSynth: 0.8), so that tanh reaches silence unsaturated."""
    scale, offset = [], []
    for channel in range(spectra.shape[-1]):
      lo, hi = np.percentile(spectra[..., channel], [0.1, 99.9])
      scale.append(float(2.0 * margin / max(hi - lo, 1e-6)))
      offset.append(float(-margin - lo * scale[-1]))
    return cls(tuple(scale), tuple(offset))

  def to_json(self) -> dict:
    return {"scale": list(self.scale), "offset": list(self.offset)}

  @classmethod
  def from_json(cls, data: dict) -> "Normalizer":
    return cls(tuple(data["scale"]), tuple(data["offset"]))
