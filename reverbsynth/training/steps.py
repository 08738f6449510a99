"""What both backends' training steps share: the networks, the generator EMA, Adam, the real
batches and each step's draws; the losses are training.objectives'.

A backend's `Steps` (steps_tensorflow, steps_jax) adds `run` (one D and one G update on a
global batch, by differentiating objectives.critic_loss and generator_loss) and, where it
keeps the weights apart from the Keras variables while it trains (JAX), `sync` and
`reload`.
"""

import contextlib

import keras
import numpy as np

from reverbsynth import spectral
from reverbsynth.model import ddsp, networks
from reverbsynth.runs import files
from reverbsynth.runs.config import Config
from reverbsynth.training import inputs, objectives


def ema_decay(config: Config, batch: int) -> float:
  """The generator EMA's decay per step of `batch` images.

  `optimizer.ema_half_life` is a fraction of a stage's images: GANSynth's 0.999 is a
  half-life of 0.7 % of its 800k-image stages; the same decay over a 4k-image stage
  would leave the top level's EMA mostly its random init.
  """
  half_life = config.optimizer.ema_half_life * config.schedule.images_per_stage
  return 0.5 ** (batch / max(half_life, 1e-9))


@contextlib.contextmanager
def dtype_policy(precision: str):
  """Keras layers made inside compute in `precision`; variables stay float32."""
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(precision)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


class Steps:
  """G, D, the EMA of G and their Adams, built for `config` and `model_config`."""

  def __init__(self, config: Config, model_config: networks.ModelConfig,
               normalizer: spectral.Normalizer, priors):
    """`priors`: the dataset's label frequencies, one array per condition
    (data.labels.label_prior)."""
    self.config, self.model_config, self.normalizer = config, model_config, normalizer
    self.priors = tuple(np.asarray(prior, np.float64) for prior in priors)

  @property
  def ddsp(self) -> bool:
    """Whether the generator is of the ddsp family (audio out) rather than spectra out."""
    return self.config.model.generator == "ddsp"

  def build(self) -> None:
    """The networks, the EMA (a copy of G) and the optimizers (call in a strategy's scope)."""
    opt = self.config.optimizer
    family = ddsp if self.ddsp else networks
    with dtype_policy(self.config.train.precision):
      self.generator, self.discriminator = family.build(self.model_config)
      self.ema = files.new_generator(self.model_config, name="generator_ema")
    networks.initialize(self.generator, self.config.seed)
    networks.initialize(self.discriminator, self.config.seed + 1)
    self.ema.set_weights(self.generator.get_weights())
    self.g_opt, self.d_opt = self.make_adam(opt), self.make_adam(opt)
    self.g_opt.build(self.generator.trainable_variables)
    self.d_opt.build(self.discriminator.trainable_variables)
    inner = lambda o: getattr(o, "inner_optimizer", o)
    self._groups = {"generator": files.weights_by_path(self.generator),
                    "discriminator": files.weights_by_path(self.discriminator),
                    "ema": files.weights_by_path(self.ema)}
    for group, adam, network in (("g_opt", inner(self.g_opt), self.generator),
                                 ("d_opt", inner(self.d_opt), self.discriminator)):
      self._groups[group] = dict(zip(files.adam_paths(adam, network), adam.variables))

  def make_adam(self, opt):
    return keras.optimizers.Adam(opt.learning_rate, beta_1=opt.beta_1, beta_2=opt.beta_2,
                                 epsilon=1e-8)

  def batches(self, data_dir, labels, batch: int, skip: int = 0):
    """The real batches after `skip` images that `run` takes, as numpy: inputs.Pairs' audio
    for the ddsp family, inputs.Batches' spectra for the spectral one (the same stream on
    both backends)."""
    kind = inputs.Pairs if self.ddsp else inputs.Batches
    return kind(data_dir, self.config, labels, self.normalizer, batch, self.config.seed, skip)

  def feed(self, stream):
    """An iterator of what `run` takes, from a stream of `batches` (which its caller closes):
    the numpy batches themselves, unless the backend says otherwise."""
    return stream

  def draws(self, batch: int, step: int) -> objectives.Draws:
    """A step's randomness, drawn on the host from (seed, step), so that both backends take
    the same step from the same weights and batch, and a resumed run the same as an
    uninterrupted one; each condition's labels from the dataset's label prior, each
    independently. All float32 numpy."""
    rng = np.random.default_rng([self.config.seed, step])
    latent = lambda: rng.standard_normal((batch, self.model_config.latent_size)).astype(
        np.float32)

    def fakes():
      z = latent()
      return z, tuple(np.eye(len(prior), dtype=np.float32)[
          rng.choice(len(prior), batch, p=prior)] for prior in self.priors)

    (z, labels), u = fakes(), rng.random((batch, 1, 1, 1), dtype=np.float32)
    z_g, labels_g = fakes()
    return objectives.Draws(z, labels, u, z_g, labels_g, latent())

  def at(self, level: int, alpha) -> objectives.Level:
    """Where a step at `level` and fade-in `alpha` trains, for training.objectives."""
    return objectives.Level(level, alpha, self.config, self.model_config, self.normalizer)

  def _variables(self) -> dict:
    """{group: {path: Keras variable}}, in each network's weights' order (made by `build`):
    the networks' by files.weights_by_path, each Adam's (its own, not a loss scaler's) by
    files.adam_paths."""
    return self._groups

  def sync(self) -> None:
    """Brings the Keras variables up to date with training (a no-op where they are its state)."""

  def reload(self) -> None:
    """Takes the Keras variables as training's state (after they were assigned)."""

  def values(self) -> dict:
    """{group: {path: numpy array}}: what a checkpoint holds."""
    self.sync()
    return {g: {p: keras.ops.convert_to_numpy(v.value) for p, v in vs.items()}
            for g, vs in self._variables().items()}

  def assign(self, values: dict) -> None:
    """Sets every variable from `values` (as `values` returns); ValueError on a mismatch."""
    for group, variables in self._variables().items():
      for variable, array in files.matched(group, variables, values.get(group, {})):
        variable.assign(array.astype(variable.dtype))
    self.reload()

  def reset_optimizers(self) -> None:
    """Zeroes both Adams' moments and step counts (their learning rates stay): each stage
    starts with fresh moments, as GANSynth's."""
    self.sync()
    for group in ("g_opt", "d_opt"):
      for path, variable in self._variables()[group].items():
        if path != "learning_rate":
          variable.assign(np.zeros(variable.shape, variable.dtype))
    self.reload()
