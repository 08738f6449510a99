"""WGAN-GP with drift and auxiliary classifier terms, GANSynth's weights.

D: E[D(fake)] - E[D(real)] + gp_weight * GP + drift * E[D(real)^2]
   + ac_weight * (CE(pitch | real) + CE(effect | real))
G: -E[D(fake)] + ac_weight * (CE(pitch | fake) + CE(effect | fake))

With `projection`, D(x) is the conditional critic of Miyato & Koyama (2018): the score
plus the logits of the labels x is shown with (pitch and effect heads as the label
embeddings), so that the labels' logits are trained on fakes too and held to the
penalty's slope; the auxiliary heads alone can be fooled (a critic whose pitch head
generalizes to held-out notes called 91-99 % of fakes the asked pitch while their f0 was
wrong for ~90 % of them).
"""

import dataclasses

from keras import ops


@dataclasses.dataclass(frozen=True)
class LossConfig:
  gp_weight: float = 10.0
  drift: float = 0.001
  ac_weight: float = 10.0
  projection: bool = False


def _cross_entropy(logits, one_hot):
  """Mean softmax cross-entropy of logits [B, K] against one-hot labels [B, K]."""
  return ops.mean(ops.categorical_crossentropy(one_hot, logits, from_logits=True))


def critic(outputs, pitch, effect, config: LossConfig):
  """Critic scores [B, 1] from D's (score, pitch logits, effect logits) for labels shown."""
  if not config.projection:
    return outputs[0]
  return outputs[0] + ops.sum(outputs[1] * pitch, axis=-1, keepdims=True) + ops.sum(
      outputs[2] * effect, axis=-1, keepdims=True)


def discriminator_loss(real, fake, penalty, pitch, effect, config: LossConfig,
                       fake_labels=None) -> dict:
  """Terms of D's loss; `real`/`fake` are D's (score, pitch logits, effect logits),
  `pitch`/`effect` the reals' labels, `fake_labels` the fakes' (default: the same)."""
  fake_pitch, fake_effect = fake_labels or (pitch, effect)
  real_score = critic(real, pitch, effect, config)
  terms = {
      "d_wasserstein": (ops.mean(critic(fake, fake_pitch, fake_effect, config))
                        - ops.mean(real_score)),
      "gradient_penalty": penalty,
      "drift": ops.mean(ops.square(real_score)),
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
      "g_wasserstein": -ops.mean(critic(fake, pitch, effect, config)),
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
