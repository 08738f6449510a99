"""Training steps on the JAX backend: a jitted WGAN-GP + drift + AC step per (level, batch),
stateless model calls and Adam updates, the batch sharded over a mesh of the local devices
(all of them when `train.distribute` is set), input from training.numpy_inputs (no
TensorFlow anywhere on this path).

The weights live in `self.state` (jax arrays) while training runs; `sync` writes them to
the Keras variables (for samples, exports and checkpoints), `reload` reads them back.
"""

import jax
import jax.numpy as jnp
import keras
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from reverbsynth.errors import UserError
from reverbsynth.model import losses
from reverbsynth.training import numpy_inputs, objectives
from reverbsynth.training.steps import Steps, ema_decay


class JaxSteps(Steps):

  inputs = numpy_inputs

  def __init__(self, *args):
    super().__init__(*args)
    devices = jax.local_devices() if self.config.train.distribute else jax.local_devices()[:1]
    self.mesh = Mesh(np.asarray(devices), ("batch",))
    self.replicated = NamedSharding(self.mesh, PartitionSpec())
    self.sharded = NamedSharding(self.mesh, PartitionSpec("batch"))
    self.build()
    self._steps = {}
    self.reload()

  def reload(self) -> None:
    self.state = jax.device_put(
        {g: [v.value for v in vs] for g, vs in self._variables().items()}, self.replicated)

  def sync(self) -> None:
    for group, variables in self._variables().items():
      for variable, value in zip(variables, self.state[group]):
        variable.assign(value)

  def spectra_batches(self, data_dir, labels, batch: int, skip: int = 0):
    """(spectra [B, T, F, 2], pitch one-hot [B, P], effect one-hot [B, E]) after `skip`,
    as numpy from background threads; `run` shards them over the mesh."""
    return numpy_inputs.Batches(data_dir, self.config, labels, self.normalizer, batch,
                                self.config.seed, skip)

  def run(self, level: int, batch: int, inputs: tuple, alpha: float, step: int) -> dict:
    """One D and one G update and the EMA on a batch of `batches`; returns the loss terms
    as floats."""
    if (level, batch) not in self._steps:
      if batch % self.mesh.size:
        raise UserError(f"batch size {batch} does not split over {self.mesh.size} devices: "
                        f"make schedule.batch_size a multiple of {self.mesh.size}")
      make = self._make_ddsp_step if self.ddsp else self._make_step
      self._steps[level, batch] = make(level, batch)
    inputs, draws = jax.device_put((tuple(inputs), self.draws(batch, step)), self.sharded)
    self.state, terms = self._steps[level, batch](self.state, inputs, draws,
                                                  jnp.float32(alpha))
    return {k: float(v) for k, v in terms.items()}

  def _make_ddsp_step(self, level: int, batch: int):
    """A jitted step of the ddsp family (training.objectives): (state, real batch, draws,
    alpha) -> (state, loss terms)."""
    g, d = self.generator, self.discriminator
    decay = ema_decay(self.config, batch)

    def bound(g_weights, d_weights):
      """The networks computing with these weights (traced values) instead of their own."""
      return keras.StatelessScope(state_mapping=[*zip(g.weights, g_weights),
                                                 *zip(d.weights, d_weights)])

    def step(state, real, draws, alpha):
      at = (level, alpha, self.config, self.model_config)

      def d_loss(weights):
        with bound(state["generator"], weights):
          return objectives.critic_loss(g, d, real, draws, *at)

      def g_loss(weights, discriminator):
        with bound(weights, discriminator):
          return objectives.generator_loss(g, d, real, draws, *at)

      return self._alternate(state, d_loss, g_loss, decay)

    return jax.jit(step, donate_argnums=0)

  def _alternate(self, state, d_loss, g_loss, decay: float):
    """One D update by d_loss(D weights) -> (loss, terms), then one G update by
    g_loss(G weights, updated D weights), and the EMA: (state, loss terms)."""
    grads, d_terms = jax.grad(d_loss, has_aux=True)(state["discriminator"])
    discriminator, d_opt = self.d_opt.stateless_apply(state["d_opt"], grads,
                                                      state["discriminator"])
    grads, g_terms = jax.grad(lambda w: g_loss(w, discriminator), has_aux=True)(
        state["generator"])
    generator, g_opt = self.g_opt.stateless_apply(state["g_opt"], grads, state["generator"])
    ema = [decay * a + (1.0 - decay) * c for a, c in zip(state["ema"], generator)]
    return ({"generator": generator, "discriminator": discriminator, "ema": ema,
             "g_opt": g_opt, "d_opt": d_opt}, {**d_terms, **g_terms})

  def _make_step(self, level: int, batch: int):
    """A jitted step (state, (real, pitch, effect), draws, alpha) -> (state, loss terms)."""
    g, d, cfg = self.generator, self.discriminator, self.config.loss
    decay = ema_decay(self.config, batch)
    upsampling = 2 ** (self.model_config.num_levels - level)  # GANSynth's D sees full size.
    scale, offset = self.normalizer.scale, self.normalizer.offset

    def step(state, inputs, draws, alpha):
      real, pitch, effect = inputs
      generate = lambda weights, *labels: g.stateless_call(
          weights, [], *labels, level=level, alpha=alpha)[0]
      critic_of = lambda weights: lambda x: d.stateless_call(
          weights, [], x, level=level, alpha=alpha)[0]
      z, fake_pitch, fake_effect, u, z_g, pitch_g, effect_g = draws
      real = self.real_at(real, level, alpha)
      if cfg.projection:  # The penalty's mixes of a real and a fake share their labels.
        fake_pitch, fake_effect = pitch, effect
      fake = generate(state["generator"], z, fake_pitch, fake_effect)

      def d_loss(weights):
        critic = critic_of(weights)
        penalty = losses.gradient_penalty(
            lambda x: losses.critic(critic(x), pitch, effect, cfg),
            real, fake, u, scale, upsampling)
        terms = losses.discriminator_loss(critic(real), critic(fake), penalty, pitch, effect,
                                          cfg, fake_labels=(fake_pitch, fake_effect))
        return terms["d_loss"], terms

      def g_loss(weights, discriminator):
        fake = generate(weights, z_g, pitch_g, effect_g)
        envelope_of = lambda x: losses.energy_envelope(x, scale[0], offset[0])
        envelope = losses.envelope_loss(envelope_of(real), envelope_of(fake), effect,
                                        effect_g) if cfg.envelope else None
        terms = losses.generator_loss(critic_of(discriminator)(fake), pitch_g, effect_g,
                                      cfg, envelope)
        return terms["g_loss"], terms

      return self._alternate(state, d_loss, g_loss, decay)

    return jax.jit(step, donate_argnums=0)
