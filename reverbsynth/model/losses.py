"""WGAN-GP with drift and auxiliary classifier terms, GANSynth's weights.

D: E[D(fake)] - E[D(real)] + gp_weight * GP + drift * E[D(real)^2]
   + ac_weight * (CE(pitch | real) + CE(effect | real))
G: -E[D(fake)] + ac_weight * (CE(pitch | fake) + CE(effect | fake))
"""

import dataclasses

from keras import ops


@dataclasses.dataclass(frozen=True)
class LossConfig:
  gp_weight: float = 10.0
  drift: float = 0.001
  ac_weight: float = 10.0


def _cross_entropy(logits, one_hot):
  """Mean softmax cross-entropy of logits [B, K] against one-hot labels [B, K]."""
  return ops.mean(ops.categorical_crossentropy(one_hot, logits, from_logits=True))


def discriminator_loss(real, fake, penalty, pitch, effect, config: LossConfig) -> dict:
  """Terms of D's loss; `real`/`fake` are D's (score, pitch logits, effect logits)."""
  terms = {
      "d_wasserstein": ops.mean(fake[0]) - ops.mean(real[0]),
      "gradient_penalty": penalty,
      "drift": ops.mean(ops.square(real[0])),
      "ac_pitch_real": _cross_entropy(real[1], pitch),
      "ac_effect_real": _cross_entropy(real[2], effect),
  }
  terms["d_loss"] = (terms["d_wasserstein"] + config.gp_weight * penalty
                     + config.drift * terms["drift"]
                     + config.ac_weight * (terms["ac_pitch_real"] + terms["ac_effect_real"]))
  return terms


def generator_loss(fake, pitch, effect, config: LossConfig) -> dict:
  """Terms of G's loss; `pitch`/`effect` are the labels the fakes were asked for."""
  terms = {
      "g_wasserstein": -ops.mean(fake[0]),
      "ac_pitch_fake": _cross_entropy(fake[1], pitch),
      "ac_effect_fake": _cross_entropy(fake[2], effect),
  }
  terms["g_loss"] = terms["g_wasserstein"] + config.ac_weight * (
      terms["ac_pitch_fake"] + terms["ac_effect_fake"])
  return terms


def gradient_penalty(score_fn, real, fake, u, channel_scale=None, upsampling: int = 1):
  """E[(||d score / d x||_2 - 1)^2] at x = real + u (fake - real), u [B, 1, 1, 1].

  GANSynth takes this gradient in raw spectral units at full resolution: D sees
  full-size images that it normalizes and box-downsamples itself. Here D sees
  normalized spectra [B, H, W, C] at the current level, so the gradient is brought
  to those units: each channel's by the normalizer's `channel_scale` [C] (raw ->
  normalized), and by 1 / `upsampling` (a box upsampling by f spreads each pixel's
  gradient over f^2 pixels, each 1/f^2 of it: the norm shrinks by f).

  TensorFlow graphs only (inside a tf.function): tf.gradients.
  """
  import tensorflow as tf
  mixed = real + u * (fake - real)
  grad = tf.gradients(tf.reduce_sum(score_fn(mixed)), mixed)[0]
  if channel_scale is not None:
    grad = grad * tf.constant(channel_scale, grad.dtype)
  norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]) + 1e-10) / upsampling
  return tf.reduce_mean(tf.square(norm - 1.0))
