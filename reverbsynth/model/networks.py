"""The progressive generator and discriminator (GANSynth "mel_prog_hires", extended).

Resolution level r = 1..R has spectra of shape [start_h * 2^(r-1), start_w * 2^(r-1), 2]
(2x16 up to 128x1024 for R = 7) and filters min(fmap_base / 2^r, fmap_max).
While a level fades in (`alpha` 0 -> 1), the new block's output is blended with
the previous level's, upsampled (G) or downsampled (D): at alpha 0 the networks
are exactly those of the previous level.
"""

import dataclasses
import math

import keras
import numpy as np
from keras import ops

from reverbsynth.model import layers as L


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  latent_size: int = 256
  num_pitches: int = 61
  num_effects: int = 2
  start_shape: tuple = (2, 16)
  num_levels: int = 7
  fmap_base: int = 4096
  fmap_max: int = 256
  channels: int = 2

  @classmethod
  def from_config(cls, model, num_pitches: int = 61, num_effects: int = 2):
    """From a training config's `model` section (runs.config.Model) and the label
    vocabularies' sizes."""
    return cls(latent_size=model.latent_size, num_pitches=num_pitches,
               num_effects=num_effects, start_shape=tuple(model.start_shape),
               num_levels=model.num_levels, fmap_base=model.fmap_base,
               fmap_max=model.fmap_max)

  def filters(self, level: int) -> int:
    return min(int(self.fmap_base / 2 ** level), self.fmap_max)

  def shape(self, level: int) -> tuple:
    h, w = self.start_shape
    return (h * 2 ** (level - 1), w * 2 ** (level - 1), self.channels)


def _act(x):
  return ops.leaky_relu(x, 0.2)


class Generator(keras.Model):
  """(z [B, latent], pitch one-hot [B, P], effect one-hot [B, E]) -> spectra [B, H, W, 2].

  The spectra are in [-1, 1].
  """

  def __init__(self, config: ModelConfig, **kwargs):
    super().__init__(**kwargs)
    self.config = config
    c = config
    h, w, _ = c.shape(1)
    self.embed = L.EqualizedDense(c.latent_size, gain=1.0)
    self.dense = L.EqualizedDense(h * w * c.filters(1), gain=math.sqrt(2) / 4)
    self.convs = [[L.EqualizedConv2D(c.filters(1))]] + [
        [L.EqualizedConv2D(c.filters(level)), L.EqualizedConv2D(c.filters(level))]
        for level in range(2, c.num_levels + 1)]
    self.to_rgb = [L.EqualizedConv2D(c.channels, 1, gain=1.0)
                   for _ in range(c.num_levels)]

  def build(self, *shapes):
    """Sublayers are built on first use (see `build` below, which uses every level)."""

  def _features(self, z, pitch, effect, level):
    """Features at `level` [B, H, W, filters] and, for fading, those at level - 1."""
    c = self.config
    # The labels' embedding is normalized apart from z: a one-hot label pixel-normalized
    # together with z holds 1/latent_size of the input's energy, and its weights move
    # ~lr a step, too slowly for the pitch to matter early (README, bug hunts).
    labels = self.embed(ops.concatenate([pitch, effect], axis=-1))
    x = ops.concatenate([L.pixel_norm(z), L.pixel_norm(labels)], axis=-1)
    h, w, _ = c.shape(1)
    x = ops.reshape(self.dense(x), (-1, h, w, c.filters(1)))
    x = L.pixel_norm(_act(x))
    previous = None
    for i in range(level):
      if i:
        previous, x = x, L.upsample(x)
      for conv in self.convs[i]:
        x = L.pixel_norm(_act(conv(x)))
    return x, previous

  def call(self, z, pitch, effect, level=None, alpha=1.0):
    """Spectra at `level` (default: the highest); `alpha` < 1 fades in that level."""
    level = level or self.config.num_levels
    x, previous = self._features(z, pitch, effect, level)
    out = ops.tanh(self.to_rgb[level - 1](x))
    if previous is not None and not (isinstance(alpha, float) and alpha >= 1.0):
      faded = L.upsample(ops.tanh(self.to_rgb[level - 2](previous)))
      out = L.lerp(faded, out, alpha)
    return ops.cast(out, "float32")  # Losses and spectra stay float32 under mixed precision.


class Discriminator(keras.Model):
  """spectra [B, H, W, 2] -> (score [B, 1], pitch logits [B, P], effect logits [B, E])."""

  def __init__(self, config: ModelConfig, **kwargs):
    super().__init__(**kwargs)
    self.config = config
    c = config
    self.from_rgb = [L.EqualizedConv2D(c.filters(level), 1)
                     for level in range(1, c.num_levels + 1)]
    self.convs = [None] + [
        [L.EqualizedConv2D(c.filters(level)), L.EqualizedConv2D(c.filters(level - 1))]
        for level in range(2, c.num_levels + 1)]
    self.final_conv = L.EqualizedConv2D(c.filters(1))
    self.final_dense = L.EqualizedDense(c.filters(1))
    self.score = L.EqualizedDense(1, gain=1.0)
    self.pitch = L.EqualizedDense(c.num_pitches, gain=1.0)
    self.effect = L.EqualizedDense(c.num_effects, gain=1.0)

  def build(self, *shapes):
    """Sublayers are built on first use (see `build` below, which uses every level)."""

  def _block(self, level, x):
    """Features at `level` -> features at level - 1."""
    for conv in self.convs[level - 1]:
      x = _act(conv(x))
    return L.downsample(x)

  def call(self, spectra, level=None, alpha=1.0):
    level = level or self.config.num_levels
    x = _act(self.from_rgb[level - 1](spectra))
    if level > 1:
      x = self._block(level, x)
      if not (isinstance(alpha, float) and alpha >= 1.0):
        faded = _act(self.from_rgb[level - 2](L.downsample(spectra)))
        x = L.lerp(faded, x, alpha)
      for lower in range(level - 1, 1, -1):
        x = self._block(lower, x)
    x = L.minibatch_stddev(x)
    x = _act(self.final_conv(x))
    x = _act(self.final_dense(ops.reshape(x, (ops.shape(x)[0], -1))))
    return tuple(ops.cast(head(x), "float32") for head in (self.score, self.pitch, self.effect))


def _symbolic_inputs(config: ModelConfig, batch: int):
  """Shapes only (KerasTensors): calling the networks on them builds every layer without
  computing anything (eager calls of every level are slow on JAX)."""
  return (keras.KerasTensor((batch, config.latent_size)),
          keras.KerasTensor((batch, config.num_pitches)),
          keras.KerasTensor((batch, config.num_effects)))


def build_generator(generator: Generator, batch: int = 4) -> None:
  """Builds every layer of every level of `generator` (so that weights can be loaded)."""
  inputs = _symbolic_inputs(generator.config, batch)
  for level in range(1, generator.config.num_levels + 1):
    generator(*inputs, level=level, alpha=0.5 if level > 1 else 1.0)


def initialize(model: keras.Model, seed: int) -> None:
  """Draws `model`'s weights from a numpy generator seeded by `seed`, as its layers' own
  initializers would (N(0, 1) kernels, zero biases; equalized learning rate scales them at
  run time), so that every Keras backend starts training from the same weights."""
  rng = np.random.default_rng(seed)
  model.set_weights([rng.standard_normal(w.shape).astype(np.float32) if len(w.shape) > 1
                     else np.zeros(w.shape, np.float32) for w in model.weights])


def build(config: ModelConfig, batch: int = 4):
  """A generator and a discriminator with every layer of every level built."""
  generator, discriminator = Generator(config), Discriminator(config)
  build_generator(generator, batch)
  inputs = _symbolic_inputs(config, batch)
  for level in range(1, config.num_levels + 1):
    alpha = 0.5 if level > 1 else 1.0
    discriminator(generator(*inputs, level=level, alpha=alpha), level=level, alpha=alpha)
  return generator, discriminator
