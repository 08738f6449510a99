"""Training steps on the TensorFlow backend: a tf.function per (level, batch), the shared
input stream through tf.data, MirroredStrategy over the local GPUs when `train.distribute`
is set."""

import keras
import tensorflow as tf

from reverbsynth.errors import UserError
from reverbsynth.training import inputs, objectives
from reverbsynth.training.steps import Steps, ema_decay


class TensorFlowSteps(Steps):

  def __init__(self, *args):
    super().__init__(*args)
    if self.config.train.deterministic:
      _deterministic_ops()
    self.strategy = _strategy(self.config.train.distribute)
    with self.strategy.scope():
      self.build()
    self._steps = {}

  def make_adam(self, opt):
    adam = super().make_adam(opt)
    return (keras.optimizers.LossScaleOptimizer(adam)
            if self.config.train.precision == "mixed_float16" else adam)

  def feed(self, stream):
    """`stream`'s batches as the strategy's distributed tensors."""
    return iter(self.strategy.experimental_distribute_dataset(inputs.tf_dataset(stream)))

  def run(self, level: int, batch: int, inputs: tuple, alpha: float, step: int) -> dict:
    """One D and one G update and the EMA on a batch of `batches`; returns the loss terms
    as floats."""
    if (level, batch) not in self._steps:
      self._steps[level, batch] = self._make_step(level, batch)
    draws = tf.nest.map_structure(tf.constant, self.draws(batch, step))
    terms = self._steps[level, batch](tuple(inputs), tf.constant(alpha, tf.float32), draws)
    return {k: float(v) for k, v in terms.items()}

  def _apply(self, optimizer, loss, variables, replicas: int) -> None:
    # tf.gradients, not a GradientTape: a tape adds the uses of a weight in an order
    # set by process-wide tensor ids, so the same step traced later in a process (a
    # resumed run) rounds differently; tf.gradients adds them in the graph's own order.
    # Optimizers sum gradients over replicas: each replica's loss is divided by their number.
    grads = tf.gradients(optimizer.scale_loss(loss / replicas), [v.value for v in variables])
    pairs = [(gr, v) for gr, v in zip(grads, variables) if gr is not None]
    optimizer.apply([p[0] for p in pairs], [p[1] for p in pairs])

  def _update_ema(self, decay: float) -> None:
    for averaged, current in zip(self.ema.weights, self.generator.weights):
      averaged.assign(decay * averaged + (1.0 - decay) * current)

  def _make_step(self, level: int, batch: int):
    """A tf.function (real batch, alpha, draws) -> loss terms: one D and one G update
    (training.objectives) on a global batch split over the replicas, then the EMA."""
    g, d = self.generator, self.discriminator
    decay = ema_decay(self.config, batch)
    replicas = self.strategy.num_replicas_in_sync
    if self.ddsp and replicas > 1:
      raise UserError("train.distribute with model.generator ddsp runs on the JAX backend "
                      "only: give --backend jax")
    if batch % replicas:
      raise UserError(f"batch size {batch} does not split over {replicas} replicas: "
                      f"make schedule.batch_size a multiple of {replicas}")
    per_replica = batch // replicas

    def replica_step(real, alpha, draws):
      replica = tf.distribute.get_replica_context().replica_id_in_sync_group
      draws = tf.nest.map_structure(
          lambda x: x[replica * per_replica:(replica + 1) * per_replica], draws)
      at = self.at(level, alpha)
      d_loss, d_terms = objectives.critic_loss(g, d, real, draws, at)
      self._apply(self.d_opt, d_loss, d.trainable_variables, replicas)
      g_loss, g_terms = objectives.generator_loss(g, d, real, draws, at)
      self._apply(self.g_opt, g_loss, g.trainable_variables, replicas)
      return {**d_terms, **g_terms}

    def step(real, alpha, draws):
      terms = self.strategy.run(replica_step, args=(real, alpha, draws))
      terms = {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
               for k, v in terms.items()}
      self._update_ema(decay)
      return terms

    return tf.function(step, jit_compile=bool(self.config.train.xla))


def _strategy(distribute: bool) -> tf.distribute.Strategy:
  """MirroredStrategy over all visible GPUs (the CPU when there are none), or no strategy."""
  return tf.distribute.MirroredStrategy() if distribute else tf.distribute.get_strategy()


def _deterministic_ops() -> None:
  """Bit-exact reruns and resumes, for the rest of the process.

  Besides op determinism, grappler's arithmetic optimizer is off: it regroups sums
  by node names, which differ when the same step is traced later in a process
  (a resumed run), so the same step rounded differently (by 1e-6, which GAN
  training grows to 1e-4 in a dozen steps).
  """
  tf.config.experimental.enable_op_determinism()
  tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
