"""The `ddsp` generator family: a small network draws synth controls, DSP makes the waveform.

(z [B, L], pitch one-hot [B, P], effect one-hot [B, E], and one-hots [B, C] of any other
 conditions: instrument family, velocity)
  -> controls at frame rate: amplitude [B, T, 1], harmonic distribution [B, T, K],
     noise-band magnitudes [B, T, N]
  -> harmonic synth (f0 exactly from the pitch label) + filtered noise: dry audio [B, S]
  -> the effect label's learned response (dry gain + impulse response): audio [B, S].

The controls' frame rate grows by level as the spectral family's resolution does:
level r draws start_frames * 2^(r-1) frames; the synths always run at the top rate
(the controls are held per frame up to it, then cross-faded sample by sample).

Cost: a note's f0 is constant, so the phase of harmonic k at sample t*hop + n is
a_tk + b_kn, and sin(a + b) = sin a cos b + cos a sin b turns the oscillator bank into
two matrix products [B, T, 2K] x [B, 2K, hop] over tables computed once per pitch in
float64 (no per-sample sines, exact phase). The noise is shaped in the STFT domain of a
fixed noise signal. The effect's convolution is one FFT product.
"""

import dataclasses
import functools
import math

import keras
import numpy as np
from keras import ops

from reverbsynth import spectral
from reverbsynth.model import layers as L

CRITIC_FFT = 1024
CRITIC_HOP = 256
LOG_EPS = 1e-5


@dataclasses.dataclass(frozen=True)
class DdspConfig:
  sample_rate: int = 16000
  num_samples: int = 64000
  latent_size: int = 64
  num_pitches: int = 61
  pitch_min: int = 24
  num_effects: int = 2
  start_frames: int = 16
  num_levels: int = 5
  harmonics: int = 100
  noise_bands: int = 65
  response_samples: int = 40000
  channels: int = 128
  critic_mels: int = 128
  noise_follows_amplitude: bool = False
  detune_cents: float = 0.0  # A learned per-note f0 deviation within +-this (0: exact pitch).
  response_step: float = 1.0  # The responses' step relative to the network's (Responses).
  dry_effects: tuple = ()  # Effect labels that are the note as it is: no response to learn.
  harmonic_scale: str = "exp_sigmoid"  # Or "softmax" (config.Ddsp).
  attribute_sizes: tuple = ()  # Classes of each condition beyond pitch and effect.

  @classmethod
  def from_config(cls, config, num_pitches: int, num_effects: int, dry_effects=(),
                  attribute_sizes=()):
    """From a training config (runs.config.Config), the label vocabularies' sizes (those of
    the conditions beyond pitch and effect last) and the dry labels' indices."""
    d = config.ddsp
    return cls(sample_rate=config.audio.sample_rate, num_samples=config.audio.num_samples,
               latent_size=config.model.latent_size, num_pitches=num_pitches,
               pitch_min=config.model.pitch_min, num_effects=num_effects,
               start_frames=config.model.start_shape[0], num_levels=config.model.num_levels,
               harmonics=d.harmonics, noise_bands=d.noise_bands,
               response_samples=int(round(d.response_seconds * config.audio.sample_rate)),
               channels=d.channels, critic_mels=d.critic_mels,
               noise_follows_amplitude=d.noise_follows_amplitude,
               detune_cents=d.detune_cents, response_step=d.response_step,
               dry_effects=tuple(dry_effects), harmonic_scale=d.harmonic_scale,
               attribute_sizes=tuple(attribute_sizes))

  @property
  def frames(self) -> int:
    """Control frames at the top level."""
    return self.start_frames * 2 ** (self.num_levels - 1)

  @property
  def hop(self) -> int:
    """Samples per control frame at the top level."""
    return self.num_samples // self.frames

  @property
  def controls(self) -> int:
    """Raw control channels: amplitude, harmonics, noise bands (and detune when learned)."""
    return 1 + self.harmonics + self.noise_bands + (1 if self.detune_cents else 0)

  def f0(self) -> np.ndarray:
    """Hz of each pitch label [P]."""
    return 440.0 * 2.0 ** ((np.arange(self.num_pitches) + self.pitch_min - 69) / 12.0)

  def check(self) -> None:
    if self.frames * self.hop != self.num_samples:
      raise ValueError(f"{self.frames} control frames do not divide {self.num_samples} "
                       "samples: choose model.start_shape and num_levels so that they do")


def exp_sigmoid(x, exponent: float = 10.0, max_value: float = 2.0, threshold: float = 1e-7):
  """DDSP's positive scaling of network outputs: max * sigmoid(x)^ln(exponent) + threshold."""
  return max_value * ops.sigmoid(x) ** math.log(exponent) + threshold


def harmonic_distribution(logits, audible, scale: str):
  """Harmonic distribution [B, T, K] summing to 1 over the audible harmonics (audible
  [B, 1, K], 1 or 0) from logits [B, T, K]: `exp_sigmoid` (DDSP's, then normalized; each
  harmonic's level has a ceiling, and a logit near it barely moves) or `softmax` (levels are
  free log-amplitudes relative to each other)."""
  if scale == "softmax":  # One of runs.config.HARMONIC_SCALES.
    logits = logits + (audible - 1.0) * 1e9
    return ops.softmax(logits, axis=-1) * audible
  distribution = exp_sigmoid(logits) * audible
  return distribution / (ops.sum(distribution, axis=-1, keepdims=True) + 1e-7)


# --- synths -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _harmonic_tables(config: DdspConfig):
  """float32 tables per pitch: frame-start phases [P, T, 2K] (sin | cos), within-frame
  phases [P, 2K, hop] (cos | sin), each harmonic's place below Nyquist [P, K] (at the
  highest f0 a detune allows, so that no detuned harmonic aliases), and, with
  `detune_cents`, the fundamental's cycles at each frame's start [P, T] and its
  within-frame phase [P, hop] in radians (None without)."""
  c = config
  k = np.arange(1, c.harmonics + 1, dtype=np.float64)
  cycles = c.f0()[:, None] * k[None, :] / c.sample_rate  # [P, K] per sample
  start_cycles = cycles[:, None, :] * (np.arange(c.frames) * c.hop)[None, :, None]
  start = 2 * np.pi * np.mod(start_cycles, 1)
  within = 2 * np.pi * cycles[:, :, None] * np.arange(c.hop)[None, None, :]
  frame_start = np.concatenate([np.sin(start), np.cos(start)], axis=-1)
  frame_within = np.concatenate([np.cos(within), np.sin(within)], axis=1)
  audible = (cycles * 2.0 ** (abs(c.detune_cents) / 1200.0) < 0.5).astype(np.float64)
  tables = [frame_start, frame_within, audible]
  tables += [start_cycles[..., 0], within[:, 0]] if c.detune_cents else [None, None]
  return tuple(None if t is None else t.astype(np.float32) for t in tables)


def _harmonic_phasors(angle, count: int):
  """cos and sin of k * angle for k = 1..count, each [..., count], from angle [...]: by
  angle addition, doubling the harmonics each step (one sin and cos, then products)."""
  cos, sin = ops.cos(angle)[..., None], ops.sin(angle)[..., None]
  while cos.shape[-1] < count:
    cos_m, sin_m = cos[..., -1:], sin[..., -1:]  # Of m * angle, m the harmonics so far.
    cos, sin = (ops.concatenate([cos, cos * cos_m - sin * sin_m], -1),
                ops.concatenate([sin, sin * cos_m + cos * sin_m], -1))
  return cos[..., :count], sin[..., :count]


def harmonic_synth(amplitudes, config: DdspConfig, pitch, detune=None):
  """Audio [B, S] of per-harmonic amplitudes [B, T, K] at the top frame rate (linearly
  cross-faded from frame to frame) for pitch one-hot [B, P], each note's f0 raised by
  `detune` cents [B, 1] if given (only with `config.detune_cents` set).

  Detuned by a ratio r, harmonic k's phase is r times the tabled one: at a frame's start
  the exact (float64) phase plus 2 pi (r - 1) k fundamental cycles, within a frame r times
  its phase; harmonic k's of both from the fundamental's (_harmonic_phasors)."""
  c = config
  start, within, _, start_cycles, within_phase = _harmonic_tables(c)
  select = lambda table: ops.reshape(
      ops.matmul(pitch, ops.reshape(table, (c.num_pitches, -1))), (-1, *table.shape[1:]))
  start, within = select(start), select(within)       # [B, T, 2K], [B, 2K, hop]
  if detune is not None:
    raised = ops.expm1(detune * (math.log(2.0) / 1200.0))  # r - 1 [B, 1]
    cos_d, sin_d = _harmonic_phasors(2 * np.pi * raised * select(start_cycles), c.harmonics)
    sin_a, cos_a = start[..., :c.harmonics], start[..., c.harmonics:]   # [B, T, K] each
    start = ops.concatenate([sin_a * cos_d + cos_a * sin_d, cos_a * cos_d - sin_a * sin_d], -1)
    cos_w, sin_w = _harmonic_phasors((1.0 + raised) * select(within_phase), c.harmonics)
    within = ops.transpose(ops.concatenate([cos_w, sin_w], -1), (0, 2, 1))  # [B, 2K, hop]
  following = ops.concatenate([amplitudes[:, 1:], amplitudes[:, -1:]], axis=1)
  now = ops.matmul(ops.tile(amplitudes, (1, 1, 2)) * start, within)   # [B, T, hop]
  after = ops.matmul(ops.tile(following, (1, 1, 2)) * start, within)
  fade = ops.convert_to_tensor(np.arange(c.hop, dtype=np.float32) / c.hop)
  return ops.reshape(now + (after - now) * fade, (-1, c.num_samples))


@functools.lru_cache(maxsize=4)
def _noise_tables(config: DdspConfig, seed: int = 0):
  """A fixed noise signal's Hann-windowed frames of 2 * hop samples in the FFT domain
  (real, imag) [T, F], and band magnitudes [N] -> FFT bins [F] linear interpolation [N, F]."""
  c = config
  size = 2 * c.hop
  fft = 1 << (size - 1).bit_length()
  noise = np.random.default_rng(seed).uniform(-1, 1, (c.frames + 1) * c.hop)
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)
  frames = np.stack([noise[t * c.hop:t * c.hop + size] * window for t in range(c.frames)])
  spectrum = np.fft.rfft(frames, fft)
  bins = np.linspace(0, c.noise_bands - 1, fft // 2 + 1)
  interp = np.maximum(0, 1 - np.abs(np.arange(c.noise_bands)[:, None] - bins[None, :]))
  return (spectrum.real.astype(np.float32), spectrum.imag.astype(np.float32),
          interp.astype(np.float32), fft)


def noise_synth(magnitudes, config: DdspConfig):
  """Audio [B, S] of a fixed noise filtered by band magnitudes [B, T, N] (bands evenly
  spaced over 0..Nyquist, interpolated linearly between them)."""
  c = config
  real, imag, interp, fft = _noise_tables(c)
  gain = ops.matmul(magnitudes, interp)                 # [B, T, F]
  frames = ops.irfft((real * gain, imag * gain), fft)[..., :2 * c.hop]  # [B, T, 2 hop]
  halves = ops.reshape(frames, (-1, c.frames, 2, c.hop))
  zero = ops.zeros_like(halves[:, :1, 0])
  out = (ops.concatenate([halves[:, :, 0], zero], axis=1)
         + ops.concatenate([zero, halves[:, :, 1]], axis=1))  # [B, T + 1, hop]
  out = ops.reshape(out, (-1, (c.frames + 1) * c.hop))
  return out[:, c.hop // 2:c.hop // 2 + c.num_samples]


def fft_convolve(audio, response):
  """audio [B, S] convolved with responses [B, R], the first S samples [B, S]."""
  s = audio.shape[-1]
  fft = 1 << (s + response.shape[-1] - 2).bit_length()
  pad = lambda x: ops.pad(x, [(0, 0), (0, fft - x.shape[-1])])
  ar, ai = ops.rfft(pad(audio))
  rr, ri = ops.rfft(pad(response))
  return ops.irfft((ar * rr - ai * ri, ar * ri + ai * rr), fft)[:, :s]


# --- learned effect responses ---------------------------------------------------------------


class Responses(keras.layers.Layer):
  """Each effect label's learned linear response: a dry gain and an impulse response.

  (audio [B, S], effect one-hot [B, E]) -> dry_gain * audio + audio * response.
  The response's first tap is the dry path's, so it is left out (the taps start one
  sample late). Weights are 1-D per effect (zero at the start: every effect begins as the
  dry note), scaled at run time as the equalized layers are. The `dry` effects' response
  is the identity whatever their weights: learned, its taps' noise (Adam's steps) rang on
  at -96 dB after a dry note's release, where real dry notes are silent (README, bug
  hunt 12). `step` scales how fast taps and gains move against the network's weights.
  """

  TAP_SCALE = 0.1   # Adam moves a weight by about its learning rate a step: these scales
  DRY_SCALE = 10.0  # set how fast taps and gains move (equalized learning rate).

  def __init__(self, num_effects: int, samples: int, dry=(), step: float = 1.0, **kwargs):
    super().__init__(**kwargs)
    self.num_effects, self.samples = num_effects, samples
    self.tap_scale, self.dry_scale = self.TAP_SCALE * step, self.DRY_SCALE * step
    self.learned = np.ones(num_effects, np.float32)  # [E]: 0 for the dry effects.
    self.learned[list(dry)] = 0.0

  def build(self, *shapes):
    self.dry = self.add_weight(shape=(self.num_effects,), initializer="zeros", name="dry")
    self.taps = [self.add_weight(shape=(self.samples - 1,), initializer="zeros",
                                 name=f"taps_{e}") for e in range(self.num_effects)]

  def impulse_responses(self):
    """[E, R]: each effect's response without its dry path (tap 0 is zero)."""
    taps = ops.stack([t.value for t in self.taps]) * (self.tap_scale * self.learned[:, None])
    return ops.pad(taps, [(0, 0), (1, 0)])

  def dry_gains(self):
    """[E]: each effect's gain of the dry signal."""
    return 1.0 + self.dry_scale * self.dry.value * self.learned

  def call(self, audio, effect, frozen=False):
    """With `frozen`, no gradient reaches the responses (only the audio's)."""
    freeze = ops.stop_gradient if frozen else (lambda x: x)
    gain = ops.matmul(effect, ops.expand_dims(freeze(self.dry_gains()), -1))   # [B, 1]
    response = ops.matmul(effect, freeze(self.impulse_responses()))            # [B, R]
    return gain * audio + fft_convolve(audio, response)


# --- networks -------------------------------------------------------------------------------


def _act(x):
  return ops.leaky_relu(x, 0.2)


def _upsample_frames(x, factor: int):
  return ops.repeat(x, factor, axis=1) if factor > 1 else x


def log_mel(audio, mels):
  """Log mel power [B, frames, M] of audio [B, S] through a mel matrix [F, M]
  (CRITIC_FFT window, CRITIC_HOP hop, centered frames)."""
  real, imag = ops.stft(audio, CRITIC_FFT, CRITIC_HOP, CRITIC_FFT, "hann", center=True)
  return ops.log(ops.matmul(real * real + imag * imag, mels) + LOG_EPS)


@functools.lru_cache(maxsize=4)
def mel_matrix(sample_rate: int, mels: int) -> np.ndarray:
  """[CRITIC_FFT / 2 + 1, mels] float32 mel filters."""
  return spectral.mel_filters(sample_rate, CRITIC_FFT, mels)


class FrameStack(keras.layers.Layer):
  """Log-mel frames -> features [B, T', C]: 1x1 in, then per block conv, conv, /2 in time."""

  def __init__(self, channels: int, blocks: int, **kwargs):
    super().__init__(**kwargs)
    self.inner = L.EqualizedConv1D(channels, 1)
    self.convs = [[L.EqualizedConv1D(channels), L.EqualizedConv1D(channels)]
                  for _ in range(blocks)]

  def call(self, x):
    x = _act(self.inner(x))
    for pair in self.convs:
      for conv in pair:
        x = _act(conv(x))
      x = ops.average_pool(x, 2, 2, padding="valid")
    return x


def critic_features(audio, config: DdspConfig):
  """What the critic and the encoder see: log mel power [B, frames, M, 1], frames padded to
  a multiple of 16 with silence."""
  x = log_mel(audio, mel_matrix(config.sample_rate, config.critic_mels))
  frames = x.shape[1]
  pad = -frames % 16
  x = ops.pad(x, [(0, 0), (0, pad), (0, 0)], constant_values=math.log(LOG_EPS))
  return ops.expand_dims((x - math.log(LOG_EPS)) / 8.0 - 1.0, -1)


class DdspGenerator(keras.Model):
  """(z [B, L], pitch one-hot [B, P], effect one-hot [B, E], attributes: a one-hot [B, C]
  per condition beyond pitch and effect) -> audio [B, S].

  Also `controls` (the synth controls at the top frame rate), `dry` (the synths' audio
  before the effect), `encode` (real audio -> posterior mean and log variance of z) and
  `responses` (the learned effects, also applied to any audio by `respond`).
  """

  def __init__(self, config: DdspConfig, **kwargs):
    super().__init__(**kwargs)
    config.check()
    self.config = c = config
    self.embed = L.EqualizedDense(c.latent_size, gain=1.0)
    self.dense = L.EqualizedDense(c.start_frames * c.channels, gain=math.sqrt(2) / 4)
    self.convs = [[L.EqualizedConv1D(c.channels)]] + [
        [L.EqualizedConv1D(c.channels), L.EqualizedConv1D(c.channels)]
        for _ in range(2, c.num_levels + 1)]
    self.to_controls = [L.EqualizedConv1D(c.controls, 1, gain=1.0)
                        for _ in range(c.num_levels)]
    self.responses = Responses(c.num_effects, c.response_samples, c.dry_effects,
                               c.response_step)
    self.encoder = FrameStack(c.channels, 4)
    self.posterior = L.EqualizedDense(2 * c.latent_size, gain=1.0)

  def build(self, *shapes):
    """Sublayers are built on first use (build_ddsp uses every level)."""

  def _raw_controls(self, z, pitch, effect, attributes, level, alpha):
    """Unscaled controls [B, T_level, 1 + K + N], the level faded in by `alpha`."""
    c = self.config
    if len(attributes) != len(c.attribute_sizes):
      raise ValueError(f"the generator takes {len(c.attribute_sizes)} conditions beyond pitch "
                       f"and effect; {len(attributes)} given")
    labels = self.embed(ops.concatenate([pitch, effect, *attributes], axis=-1))
    x = ops.concatenate([L.pixel_norm(z), L.pixel_norm(labels)], axis=-1)
    x = L.pixel_norm(_act(ops.reshape(self.dense(x), (-1, c.start_frames, c.channels))))
    previous = None
    for i in range(level):
      if i:
        previous, x = x, _upsample_frames(x, 2)
      for conv in self.convs[i]:
        x = L.pixel_norm(_act(conv(x)))
    out = self.to_controls[level - 1](x)
    if previous is not None and not (isinstance(alpha, float) and alpha >= 1.0):
      out = L.lerp(_upsample_frames(self.to_controls[level - 2](previous), 2), out, alpha)
    return out

  def controls(self, z, pitch, effect, level=None, alpha=1.0, attributes=()) -> dict:
    """Synth controls at the top frame rate (`attributes`: one-hots [B, C] of the conditions
    beyond pitch and effect, DdspConfig.attribute_sizes): amplitude [B, T, 1], harmonic distribution
    [B, T, K] (sums to 1 over the harmonics below Nyquist), noise magnitudes [B, T, N]
    (relative to the amplitude with `noise_follows_amplitude`); with `detune_cents`, the
    note's f0 deviation in cents [B, 1] (the mean of a channel over the frames)."""
    c = self.config
    level = level or c.num_levels
    raw = _upsample_frames(ops.cast(self._raw_controls(z, pitch, effect, attributes, level,
                                                       alpha), "float32"),
                           2 ** (c.num_levels - level))
    audible = ops.expand_dims(ops.matmul(pitch, _harmonic_tables(c)[2]), 1)  # [B, 1, K]
    distribution = harmonic_distribution(raw[..., 1:1 + c.harmonics], audible, c.harmonic_scale)
    amplitude = exp_sigmoid(raw[..., :1])
    noise = exp_sigmoid(raw[..., 1 + c.harmonics:1 + c.harmonics + c.noise_bands] - 5.0)
    controls = {"amplitude": amplitude, "harmonic_distribution": distribution,
                "noise_magnitudes": noise * amplitude if c.noise_follows_amplitude else noise}
    if c.detune_cents:
      controls["detune"] = c.detune_cents * ops.tanh(ops.mean(raw[:, :, -1:], axis=1))
    return controls

  def dry(self, z, pitch, effect, level=None, alpha=1.0, attributes=()):
    """The synths' audio [B, S] before the effect's response."""
    controls = self.controls(z, pitch, effect, level, alpha, attributes)
    harmonic = harmonic_synth(controls["amplitude"] * controls["harmonic_distribution"],
                              self.config, pitch, controls.get("detune"))
    return harmonic + noise_synth(controls["noise_magnitudes"], self.config)

  def respond(self, audio, effect, frozen=False):
    """Audio [B, S] through the learned responses of effect one-hot [B, E] (`frozen`: as
    constants, so that only the audio's gradient flows)."""
    return self.responses(audio, effect, frozen=frozen)

  def call(self, z, pitch, effect, level=None, alpha=1.0, frozen_responses=False,
           attributes=()):
    """Audio [B, S]; `frozen_responses` keeps the responses out of the gradient (they learn
    from real dry/wet pairs alone: training.objectives)."""
    return self.respond(self.dry(z, pitch, effect, level, alpha, attributes), effect,
                        frozen=frozen_responses)

  def encode(self, audio):
    """(mean, log variance) [B, L] of the latent of real notes [B, S]."""
    x = self.encoder(critic_features(audio, self.config)[..., 0])
    x = self.posterior(ops.mean(x, axis=1))
    return x[:, :self.config.latent_size], x[:, self.config.latent_size:]


class DdspCritic(keras.Model):
  """Audio features [B, frames, M, 1] (critic_features) -> (score [B, 1], pitch logits
  [B, P], effect logits [B, E], then logits [B, C] of each other condition)."""

  def __init__(self, config: DdspConfig, **kwargs):
    super().__init__(**kwargs)
    self.config = c = config
    self.frames = FrameStack(c.channels, 4)
    self.final_dense = L.EqualizedDense(c.channels)
    self.score = L.EqualizedDense(1, gain=1.0)
    self.pitch = L.EqualizedDense(c.num_pitches, gain=1.0)
    self.effect = L.EqualizedDense(c.num_effects, gain=1.0)
    self.attributes = [L.EqualizedDense(n, gain=1.0) for n in c.attribute_sizes]

  def build(self, *shapes):
    """Sublayers are built on first use."""

  def call(self, features, level=None, alpha=1.0):
    x = self.frames(features[..., 0])
    x = L.minibatch_stddev(ops.expand_dims(x, 2))[:, :, 0]
    x = _act(self.final_dense(ops.reshape(x, (ops.shape(x)[0], -1))))
    heads = (self.score, self.pitch, self.effect, *self.attributes)
    return tuple(ops.cast(head(x), "float32") for head in heads)


def build_generator(generator: DdspGenerator, batch: int = 4) -> None:
  """Builds every layer of every level of `generator` (so that weights can be loaded)."""
  c = generator.config
  z, pitch, effect = (keras.KerasTensor((batch, c.latent_size)),
                      keras.KerasTensor((batch, c.num_pitches)),
                      keras.KerasTensor((batch, c.num_effects)))
  attributes = tuple(keras.KerasTensor((batch, n)) for n in c.attribute_sizes)
  for level in range(1, c.num_levels + 1):
    generator(z, pitch, effect, level=level, alpha=0.5 if level > 1 else 1.0,
              attributes=attributes)
  generator.encode(keras.KerasTensor((batch, c.num_samples)))


def build(config: DdspConfig, batch: int = 4):
  """A generator and a critic with every layer built."""
  generator, critic = DdspGenerator(config), DdspCritic(config)
  build_generator(generator, batch)
  critic(critic_features(keras.KerasTensor((batch, config.num_samples)), config))
  return generator, critic
