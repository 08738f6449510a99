"""Training steps on the JAX backend: a jitted step per (level, batch) that differentiates
training.objectives with the weights bound as traced values, stateless Adam updates, the
batch sharded over a mesh of the local devices (all of them when `train.distribute` is
set), input from training.inputs (no TensorFlow anywhere on this path).

The weights live in `self.state` (jax arrays) while training runs; `sync` writes them to
the Keras variables (for samples, exports and checkpoints), `reload` reads them back.
"""

import jax
import jax.numpy as jnp
import keras
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from reverbsynth.errors import UserError
from reverbsynth.training import objectives
from reverbsynth.training.steps import Steps, ema_decay


class JaxSteps(Steps):

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
        {g: [v.value for v in vs.values()] for g, vs in self._variables().items()},
        self.replicated)

  def sync(self) -> None:
    for group, variables in self._variables().items():
      for variable, value in zip(variables.values(), self.state[group]):
        variable.assign(value)

  def run(self, level: int, batch: int, inputs: tuple, alpha: float, step: int) -> dict:
    """One D and one G update and the EMA on a batch of `batches`; returns the loss terms
    as floats."""
    if (level, batch) not in self._steps:
      if batch % self.mesh.size:
        raise UserError(f"batch size {batch} does not split over {self.mesh.size} devices: "
                        f"make schedule.batch_size a multiple of {self.mesh.size}")
      self._steps[level, batch] = self._make_step(level, batch)
    inputs, draws = jax.device_put((tuple(inputs), self.draws(batch, step)), self.sharded)
    self.state, terms = self._steps[level, batch](self.state, inputs, draws,
                                                  jnp.float32(alpha))
    return {k: float(v) for k, v in terms.items()}

  def _make_step(self, level: int, batch: int):
    """A jitted step (state, real batch, draws, alpha) -> (state, loss terms): one D update
    by objectives.critic_loss, then one G update by objectives.generator_loss against the
    updated D, then the EMA."""
    g, d = self.generator, self.discriminator
    decay = ema_decay(self.config, batch)

    def bound(g_weights, d_weights):
      """The networks computing with these weights (traced values) instead of their own."""
      return keras.StatelessScope(state_mapping=[*zip(g.weights, g_weights),
                                                 *zip(d.weights, d_weights)])

    def step(state, real, draws, alpha):
      at = self.at(level, alpha)

      def d_loss(weights):
        with bound(state["generator"], weights):
          return objectives.critic_loss(g, d, real, draws, at)

      def g_loss(weights):
        with bound(weights, discriminator):
          return objectives.generator_loss(g, d, real, draws, at)

      grads, d_terms = jax.grad(d_loss, has_aux=True)(state["discriminator"])
      discriminator, d_opt = self.d_opt.stateless_apply(state["d_opt"], grads,
                                                        state["discriminator"])
      grads, g_terms = jax.grad(g_loss, has_aux=True)(state["generator"])
      generator, g_opt = self.g_opt.stateless_apply(state["g_opt"], grads, state["generator"])
      ema = [decay * a + (1.0 - decay) * c for a, c in zip(state["ema"], generator)]
      return ({"generator": generator, "discriminator": discriminator, "ema": ema,
               "g_opt": g_opt, "d_opt": d_opt}, {**d_terms, **g_terms})

    return jax.jit(step, donate_argnums=0)
