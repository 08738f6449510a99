"""WGAN-GP with drift and auxiliary classifier terms, GANSynth's weights.

D: E[D(fake)] - E[D(real)] + gp_weight * GP + drift * E[D(real)^2]
   + ac_weight * (CE(pitch | real) + CE(effect | real) + CE of any other condition)
G: -E[D(fake)] + ac_weight * (CE(pitch | fake) + CE(effect | fake) + ...) + envelope * ENV

With `projection`, D(x) is the conditional critic of Miyato & Koyama (2018): the score
plus the logits of the labels x is shown with (each condition's head as its label
embedding), so that the labels' logits are trained on fakes too and held to the
penalty's slope; the auxiliary heads alone can be fooled (a critic whose pitch head
generalizes to held-out notes called 91-99 % of fakes the asked pitch while their f0 was
wrong for ~90 % of them).

ENV (`envelope`, feature matching on the energy envelope): for each effect, the squared
log difference of the reals' and the fakes' mean share of a note's energy in each frame.
The critic sees log magnitudes, where a harmonic's few pixels are a small part of the
image; in energy they are most of it. Without this term the dry notes' harmonics rang
on for 2-3 frames after the release and put -22 dB of their energy into the released
second (real: -40 dB).

`config` is the training config's `loss` section (runs.config.Loss): gp_weight, drift,
ac_weight, projection, envelope.
"""

import keras
import numpy as np
from keras import ops


def _cross_entropy(logits, one_hot):
  """Mean softmax cross-entropy of logits [B, K] against one-hot labels [B, K]."""
  return ops.mean(ops.categorical_crossentropy(one_hot, logits, from_logits=True))


def critic(outputs, labels, config):
  """Critic scores [B, 1] from D's (score, logits of each condition) for the labels shown
  (one-hots, one per condition: pitch, effect, ...)."""
  if not config.projection:
    return outputs[0]
  return outputs[0] + sum(ops.sum(logits * one_hot, axis=-1, keepdims=True)
                          for logits, one_hot in zip(outputs[1:], labels))


def _classifier_terms(outputs, labels, names, which: str) -> dict:
  """{ac_<name>_<which>: cross-entropy} of each condition's logits against its labels."""
  return {f"ac_{name}_{which}": _cross_entropy(logits, one_hot)
          for name, logits, one_hot in zip(names, outputs[1:], labels)}


def discriminator_loss(real, fake, penalty, labels, config, names=("pitch", "effect"),
                       fake_labels=None) -> dict:
  """Terms of D's loss; `real`/`fake` are D's (score, logits of each condition), `labels`
  the reals' one-hots per condition (called `names`), `fake_labels` the fakes' (default:
  the same)."""
  real_score = critic(real, labels, config)
  classifiers = _classifier_terms(real, labels, names, "real")
  terms = {
      "d_wasserstein": (ops.mean(critic(fake, fake_labels or labels, config))
                        - ops.mean(real_score)),
      "gradient_penalty": penalty,
      "drift": ops.mean(ops.square(real_score)),
      **classifiers,
  }
  terms["d_loss"] = (terms["d_wasserstein"] + config.gp_weight * penalty
                     + config.drift * terms["drift"]
                     + config.ac_weight * sum(classifiers.values()))
  return terms


def generator_loss(fake, labels, config, names=("pitch", "effect"), envelope=None) -> dict:
  """Terms of G's loss; `labels` are the one-hots per condition (called `names`) the fakes
  were asked for, `envelope` the fakes' envelope_loss (added with weight config.envelope
  when given)."""
  classifiers = _classifier_terms(fake, labels, names, "fake")
  terms = {"g_wasserstein": -ops.mean(critic(fake, labels, config)), **classifiers}
  terms["g_loss"] = terms["g_wasserstein"] + config.ac_weight * sum(classifiers.values())
  if envelope is not None:
    terms["envelope"] = envelope
    terms["g_loss"] = terms["g_loss"] + config.envelope * envelope
  return terms


def _shares(energies):
  """Each frame's share of its note's energy [B, T] from frame energies [B, T]."""
  return energies / (ops.sum(energies, axis=-1, keepdims=True) + 1e-12)


def energy_envelope(spectra, scale: float, offset: float):
  """Each frame's share of its note's energy [B, T], for normalized spectra [B, T, F, C]
  whose channel 0 is log magnitude mapped as x * scale + offset."""
  log_magnitude = (ops.cast(spectra[..., 0], "float32") - offset) / scale
  return _shares(ops.sum(ops.exp(2.0 * log_magnitude), axis=-1))


def audio_envelope(audio, hop: int):
  """Each frame's share of its note's energy [B, S / hop] for audio [B, S]."""
  frames = ops.reshape(ops.cast(audio, "float32"), (ops.shape(audio)[0], -1, hop))
  return _shares(ops.sum(ops.square(frames), axis=-1))


def envelope_loss(real, fake, real_effect, fake_effect, floor: float = 1e-6):
  """Scalar: mean over effects present in both batches and frames of the squared log
  difference of the mean energy envelopes (energy_envelope or audio_envelope) of reals
  [B, T] and fakes [B', T] of that effect (one-hot effects [B, K], [B', K]); shares
  below `floor` (default -60 dB) count as the floor."""
  def mean_per_effect(envelope, effect):  # -> [K, T], counts [K]
    effect = ops.cast(effect, "float32")
    counts = ops.sum(effect, axis=0)
    total = ops.matmul(ops.transpose(effect), envelope)
    return total / ops.maximum(counts, 1.0)[:, None], counts

  real_mean, real_counts = mean_per_effect(ops.stop_gradient(real), real_effect)
  fake_mean, fake_counts = mean_per_effect(fake, fake_effect)
  both = ops.cast(ops.logical_and(real_counts > 0, fake_counts > 0), "float32")
  error = ops.mean(ops.square(ops.log(fake_mean + floor) - ops.log(real_mean + floor)), axis=1)
  return ops.sum(error * both) / ops.maximum(ops.sum(both), 1.0)


def _input_gradient(score_fn, x):
  """d sum(score_fn(x)) / d x [B, H, W, C], by the Keras backend's own autodiff
  (TensorFlow: tf.gradients, inside a tf.function; JAX: jax.grad, so that the loss
  holding it can be differentiated again)."""
  if keras.backend.backend() == "jax":
    import jax
    return jax.grad(lambda y: ops.sum(score_fn(y)))(x)
  import tensorflow as tf
  return tf.gradients(tf.reduce_sum(score_fn(x)), x)[0]


def gradient_penalty(score_fn, real, fake, u, channel_scale=None, upsampling: int = 1):
  """E[(||d score / d x||_2 - 1)^2] at x = real + u (fake - real), u [B, 1, 1, 1].

  GANSynth takes this gradient in raw spectral units at full resolution: D sees
  full-size images that it normalizes and box-downsamples itself. Here D sees
  normalized spectra [B, H, W, C] at the current level, so the gradient is brought
  to those units: each channel's by the normalizer's `channel_scale` [C] (raw ->
  normalized), and by 1 / `upsampling` (a box upsampling by f spreads each pixel's
  gradient over f^2 pixels, each 1/f^2 of it: the norm shrinks by f).
  """
  mixed = real + u * (fake - real)
  grad = _input_gradient(score_fn, mixed)
  if channel_scale is not None:
    grad = grad * ops.convert_to_tensor(np.asarray(channel_scale, np.float32), grad.dtype)
  norm = ops.sqrt(ops.sum(ops.square(grad), axis=[1, 2, 3]) + 1e-10) / upsampling
  return ops.mean(ops.square(norm - 1.0))


def multiscale_spectral_loss(target, audio, sizes):
  """DDSP's multi-scale spectral loss of audio [B, S] against target [B, S]: per FFT size
  in `sizes` (config.Loss.spectral_sizes; hop a quarter of it, Hann), mean L1 of the
  magnitudes plus mean L1 of their logs."""
  total = 0.0
  for size in sizes:
    mags = []
    for x in (target, audio):
      real, imag = ops.stft(x, size, size // 4, size, "hann", center=True)
      mags.append(ops.sqrt(real * real + imag * imag + 1e-12))
    total = total + ops.mean(ops.abs(mags[0] - mags[1])) + ops.mean(
        ops.abs(ops.log(mags[0] + 1e-5) - ops.log(mags[1] + 1e-5)))
  return total


def kl_divergence(mean, log_variance):
  """Mean over the batch of KL(N(mean, var) || N(0, 1)), summed over the latent [B, L]."""
  return ops.mean(0.5 * ops.sum(ops.square(mean) + ops.exp(log_variance) - 1.0 - log_variance,
                                axis=-1))
