"""The training loop: progressive stages, WGAN-GP steps, generator EMA, checkpoints, summaries.

Besides the files of runs.files (config, labels, normalizer, the exported EMA generator),
a run directory holds:
  checkpoints/     latest (every few minutes) and stage-NN (each finished stage)
  logs/            TensorBoard: every loss term, spectrogram images, audio
  samples/         stage-NN.wav + .png: one row per effect, columns across pitches

Randomness (latents, fake labels, penalty mixing) is drawn from (seed, step) and the
data stream skips what earlier steps consumed, so a resumed run continues exactly
where the interrupted one stood.
"""

import contextlib
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from reverbsynth import spectral
from reverbsynth.data import manifest as manifest_lib
from reverbsynth.data.labels import Labels, label_prior
from reverbsynth.runs import files
from reverbsynth.runs.config import Config, Optimizer
from reverbsynth.synthesis import outputs
from reverbsynth.synthesis.synthesizer import Synthesizer
from reverbsynth.training import inputs as train_input
from reverbsynth.progress import Progress
from reverbsynth.errors import Failure, UserError
from reverbsynth.model import layers as L, losses, networks, schedule

GAP_SECONDS = 0.25


class NaNLossError(Failure):
  """A loss became NaN; the last good checkpoint is kept."""


def _check_shapes(config: Config) -> None:
  sc = config.spectral_config()
  mc = config.model
  top = [s * 2 ** (mc.num_levels - 1) for s in mc.start_shape]
  if top != [sc.frames, sc.bins]:
    raise UserError(f"model.start_shape x 2^(num_levels-1) = {top} must equal the spectra's "
                    f"[frames, nfft/2] = {[sc.frames, sc.bins]}")
  sc.pad_left  # Raises if the frames cannot hold the audio.


def checkpoint_variables(model: keras.Model) -> dict:
  """{index: tf.Variable} of every weight of `model`, for tf.train.Checkpoint.

  A Keras 3 model's layers in nested lists are not TensorFlow-trackable: a
  checkpoint of the model itself would miss them.
  """
  return {f"{i:04d}": v.value for i, v in enumerate(model.weights)}


class Trainer:
  """Trains `config` on the dataset `data_dir` into `run_dir`."""

  def __init__(self, config: Config, data_dir: str, run_dir: str, resume: bool = False):
    _check_shapes(config)
    # First of all: tf.data's shuffles and the initial weights depend on the global seed.
    keras.utils.set_random_seed(config.seed)
    if config.train.deterministic:
      _deterministic_ops()
    self.config, self.data_dir, self.run_dir = config, data_dir, run_dir
    manifest = manifest_lib.read(data_dir)
    os.makedirs(run_dir, exist_ok=True)
    self.labels = Labels.from_manifest(manifest, config.model.pitch_min,
                                       config.model.num_pitches)
    files.start(run_dir, config, self.labels, resume)
    self.pitch_prior, self.effect_prior = label_prior(manifest, self.labels)
    self.normalizer = self._normalizer()
    self.model_config = files.model_config(config, self.labels)
    self.loss_config = config.loss
    # Counters live on the host, outside the strategy: the loop reads them every step.
    self.step = tf.Variable(0, dtype=tf.int64)
    self.stage = tf.Variable(0, dtype=tf.int64)
    self.images_in_stage = tf.Variable(0, dtype=tf.int64)
    self.images_total = tf.Variable(0, dtype=tf.int64)
    self.strategy = _strategy(config.train.distribute)
    with self.strategy.scope(), _dtype_policy(config.train.precision):
      self._build_state(config.optimizer, config.train.precision)
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, os.path.join(run_dir, "checkpoints"), max_to_keep=2,
        checkpoint_name="latest")
    if resume and self.manager.latest_checkpoint:
      self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
    self.writer = tf.summary.create_file_writer(os.path.join(run_dir, "logs"))
    self._steps = {}
    self.input_seconds = 0.0  # Waiting for real batches, since this object was made.
    self.step_seconds = 0.0   # Running training steps.

  def _build_state(self, opt: Optimizer, precision: str) -> None:
    """Networks, EMA, optimizers and the checkpoint (in the strategy's scope)."""
    self.generator, self.discriminator = networks.build(self.model_config)
    self.ema = networks.Generator(self.model_config, name="generator_ema")
    networks.build_generator(self.ema)
    self.ema.set_weights(self.generator.get_weights())

    def make_adam():
      adam = keras.optimizers.Adam(opt.learning_rate, beta_1=opt.beta_1,
                                   beta_2=opt.beta_2, epsilon=1e-8)
      return keras.optimizers.LossScaleOptimizer(adam) if precision == "mixed_float16" else adam

    self.g_opt, self.d_opt = make_adam(), make_adam()
    self.g_opt.build(self.generator.trainable_variables)
    self.d_opt.build(self.discriminator.trainable_variables)
    self.checkpoint = tf.train.Checkpoint(
        generator=checkpoint_variables(self.generator),
        discriminator=checkpoint_variables(self.discriminator),
        ema=checkpoint_variables(self.ema),
        g_opt=self.g_opt, d_opt=self.d_opt, step=self.step, stage=self.stage,
        images_in_stage=self.images_in_stage, images_total=self.images_total)

  def _normalizer(self) -> spectral.Normalizer:
    """The run's normalizer; computed from the dataset and saved at its start."""
    normalizer = files.read_normalizer(self.run_dir)
    if normalizer is None:
      normalizer = train_input.compute_normalizer(self.data_dir, self.config, self.labels,
                                                  self.config.seed)
      files.write_normalizer(self.run_dir, normalizer)
    return normalizer

  # --- one step --------------------------------------------------------------

  def _fake_inputs(self, batch: int, seeds):
    """Latents [B, latent] and one-hot labels drawn from the dataset's label prior."""
    z = tf.random.stateless_normal([batch, self.model_config.latent_size], seeds[0])
    log_prior = lambda p: tf.math.log(tf.constant(p[None], tf.float32) + 1e-12)
    pitch = tf.random.stateless_categorical(log_prior(self.pitch_prior), batch, seeds[1])[0]
    effect = tf.random.stateless_categorical(log_prior(self.effect_prior), batch, seeds[2])[0]
    return (z, tf.one_hot(pitch, self.model_config.num_pitches),
            tf.one_hot(effect, self.model_config.num_effects))

  def _real_at(self, spectra, level: int, alpha):
    """Full-size real spectra [B, T, F, 2] brought to `level`, faded like the fakes."""
    factor = 2 ** (self.model_config.num_levels - level)
    x = L.downsample(spectra, factor) if factor > 1 else spectra
    if level == 1:
      return x
    return L.lerp(L.upsample(L.downsample(x)), x, alpha)

  def _make_step(self, level: int, batch: int):
    """A tf.function: one D and one G update on a global batch, split over the replicas."""
    g, d, cfg = self.generator, self.discriminator, self.loss_config
    decay = ema_decay(self.config, batch)
    replicas = self.strategy.num_replicas_in_sync
    if batch % replicas:
      raise UserError(f"batch size {batch} does not split over {replicas} replicas: "
                      f"make schedule.batch_size a multiple of {replicas}")
    per_replica = batch // replicas
    upsampling = 2 ** (self.model_config.num_levels - level)  # GANSynth's D sees full size.

    def apply(optimizer, loss, variables):
      # tf.gradients, not a GradientTape: a tape adds the uses of a weight in an order
      # set by process-wide tensor ids, so the same step traced later in a process (a
      # resumed run) rounds differently; tf.gradients adds them in the graph's own order.
      grads = tf.gradients(optimizer.scale_loss(loss / replicas), [v.value for v in variables])
      pairs = [(gr, v) for gr, v in zip(grads, variables) if gr is not None]
      optimizer.apply([p[0] for p in pairs], [p[1] for p in pairs])

    def replica_step(real, pitch, effect, alpha, seed):
      # Optimizers sum gradients over replicas: each replica's loss is divided by their number.
      replica = tf.distribute.get_replica_context().replica_id_in_sync_group
      seeds = tf.random.experimental.stateless_split(
          tf.random.experimental.stateless_fold_in(seed, replica), 8)
      real = self._real_at(real, level, alpha)
      z, fake_pitch, fake_effect = self._fake_inputs(per_replica, seeds[:3])
      if cfg.projection:  # The penalty's mixes of a real and a fake share their labels.
        fake_pitch, fake_effect = pitch, effect
      u = tf.random.stateless_uniform([per_replica, 1, 1, 1], seeds[3])
      fake = g(z, fake_pitch, fake_effect, level=level, alpha=alpha)
      penalty = losses.gradient_penalty(
          lambda x: losses.critic(d(x, level=level, alpha=alpha), pitch, effect, cfg),
          real, fake, u, self.normalizer.scale, upsampling)
      d_terms = losses.discriminator_loss(d(real, level=level, alpha=alpha),
                                          d(fake, level=level, alpha=alpha),
                                          penalty, pitch, effect, cfg,
                                          fake_labels=(fake_pitch, fake_effect))
      apply(self.d_opt, d_terms["d_loss"], d.trainable_variables)
      z, fake_pitch, fake_effect = self._fake_inputs(per_replica, seeds[4:7])
      fake = g(z, fake_pitch, fake_effect, level=level, alpha=alpha)
      envelope = losses.envelope_loss(
          real, fake, effect, fake_effect, self.normalizer.scale[0],
          self.normalizer.offset[0]) if cfg.envelope else None
      g_terms = losses.generator_loss(d(fake, level=level, alpha=alpha),
                                      fake_pitch, fake_effect, cfg, envelope)
      apply(self.g_opt, g_terms["g_loss"], g.trainable_variables)
      return {**d_terms, **g_terms}

    def step(real, pitch, effect, alpha, seed):
      terms = self.strategy.run(replica_step, args=(real, pitch, effect, alpha, seed))
      terms = {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
               for k, v in terms.items()}
      for averaged, current in zip(self.ema.weights, g.weights):
        averaged.assign(decay * averaged + (1.0 - decay) * current)
      return terms

    return tf.function(step, jit_compile=bool(self.config.train.xla))

  # --- the loop --------------------------------------------------------------

  def train(self, stages: int, progress: bool = True, max_steps=None) -> dict:
    """Trains through the first `stages` stages; returns the last losses.

    `max_steps` stops early after that many steps of this call (for tests and
    bounded demos), leaving a checkpoint to resume from.
    """
    levels = self.model_config.num_levels
    total_stages = schedule.num_stages(levels)
    if not 1 <= stages <= total_stages:
      raise UserError(f"--stages must be 1..{total_stages} for {levels} levels")
    per_stage = self.config.schedule.images_per_stage
    last_save, steps_done, terms = time.monotonic(), 0, {}
    bar = _ProgressBar(progress, stages, per_stage, int(self.stage))
    while int(self.stage) < stages:
      st = schedule.stage(int(self.stage), levels)
      batch = self.config.schedule.batch_size[st.level - 1]
      key = (st.level, batch)
      if key not in self._steps:
        self._steps[key] = self._make_step(*key)
      if int(self.images_in_stage) == 0:
        _reset_optimizer(self.g_opt)  # Each stage starts with fresh Adam moments (GANSynth).
        _reset_optimizer(self.d_opt)
      data = iter(self.strategy.experimental_distribute_dataset(train_input.dataset(
          self.data_dir, self.config, self.labels, self.normalizer, batch,
          self.config.seed, skip=int(self.images_total))))
      while int(self.images_in_stage) < per_stage:
        if max_steps is not None and steps_done >= max_steps:
          self.manager.save()
          bar.close()
          return terms
        started = time.perf_counter()
        real, pitch, effect = next(data)
        fetched = time.perf_counter()
        alpha = tf.constant(st.alpha(int(self.images_in_stage), per_stage), tf.float32)
        seed = tf.stack([tf.constant(self.config.seed, tf.int64), self.step.value()])
        terms = {k: float(v) for k, v in self._steps[key](real, pitch, effect, alpha,
                                                           seed).items()}
        self.input_seconds += fetched - started
        self.step_seconds += time.perf_counter() - fetched
        if not all(math.isfinite(v) for v in terms.values()):
          bad = ", ".join(k for k, v in terms.items() if not math.isfinite(v))
          raise NaNLossError(f"loss became NaN at step {int(self.step)} ({bad}); the last good "
                             f"checkpoint in {self.manager.directory} is kept: lower "
                             "optimizer.learning_rate and resume")
        self.step.assign_add(1)
        self.images_in_stage.assign_add(batch)
        self.images_total.assign_add(batch)
        steps_done += 1
        self._summaries(terms, st, float(alpha))
        bar.update(st, int(self.images_in_stage), batch, terms)
        if time.monotonic() - last_save > 60 * self.config.train.checkpoint_minutes:
          self.manager.save()
          last_save = time.monotonic()
      self._finish_stage(st)
    bar.close()
    return terms

  def _summaries(self, terms: dict, st, alpha: float) -> None:
    if int(self.step) % self.config.train.summary_steps:
      return
    with self.writer.as_default(step=int(self.images_total)):
      for name, value in terms.items():
        tf.summary.scalar(f"loss/{name}", value)
      tf.summary.scalar("progress/level", st.level)
      tf.summary.scalar("progress/alpha", alpha)
      busy = self.input_seconds + self.step_seconds
      if busy:
        tf.summary.scalar("progress/input_wait_share", self.input_seconds / busy)

  def _finish_stage(self, st) -> None:
    """Sample grid, summaries, stage checkpoint, exported generator; then the next stage."""
    audio, image = self.sample_grid(st.level)
    samples = os.path.join(self.run_dir, "samples")
    outputs.write_wav(os.path.join(samples, f"stage-{st.index:02d}.wav"), audio,
                      self.config.audio.sample_rate)
    outputs.write_png(os.path.join(samples, f"stage-{st.index:02d}.png"), image)
    real = next(iter(train_input.dataset(self.data_dir, self.config, self.labels,
                                         self.normalizer, 4, self.config.seed)))[0]
    with self.writer.as_default(step=int(self.images_total)):
      tf.summary.image("spectra/generated", tf.cast(image, tf.float32)[None] / 255.0)
      tf.summary.image("spectra/real", outputs.spectra_image(real.numpy()))
      tf.summary.audio("audio/generated", audio.reshape(1, -1, 1),
                       self.config.audio.sample_rate)
    files.write_generator(os.path.join(self.run_dir, files.GENERATOR_DIR),
                          self._synthesizer(st.level))
    self.stage.assign_add(1)
    self.images_in_stage.assign(0)
    self.checkpoint.write(os.path.join(self.run_dir, "checkpoints", f"stage-{st.index:02d}"))
    self.manager.save()

  def _synthesizer(self, level: int) -> Synthesizer:
    """The EMA generator playing at `level`."""
    return Synthesizer(self.ema, self.config, self.labels, self.normalizer, level)

  def sample_grid(self, level: int):
    """(audio float32 [N_total], PNG image uint8 [H, W, 1]): effects down, pitches across."""
    synth = self._synthesizer(level)
    pitches = [p for p in self.config.train.sample_pitches if p in synth.pitches]
    rows, cols = len(self.labels.effects), len(pitches)
    z = np.repeat(synth.latents(1, self.config.seed), rows * cols, axis=0)
    pitch, effect = np.tile(pitches, rows), np.repeat(np.arange(rows), cols)
    spectra = synth.spectra(z, pitch, effect)
    gap = np.zeros(int(GAP_SECONDS * synth.sample_rate), np.float32)
    audio = outputs.normalize(np.concatenate(
        [np.concatenate([n, gap]) for n in synth.to_audio(spectra)]))
    tiles = outputs.spectra_image(spectra.numpy())[..., 0]  # [R*C, F, T]
    grid = tiles.reshape(rows, cols, *tiles.shape[1:]).transpose(0, 2, 1, 3)
    grid = grid.reshape(rows * tiles.shape[1], cols * tiles.shape[2])
    return audio, (grid[..., None] * 255).astype(np.uint8)


def ema_decay(config: Config, batch: int) -> float:
  """The generator EMA's decay per step of `batch` images.

  `optimizer.ema_half_life` is a fraction of a stage's images: GANSynth's 0.999 is a
  half-life of 0.7 % of its 800k-image stages; the same decay over a 4k-image stage
  would leave the top level's EMA mostly its random init.
  """
  half_life = config.optimizer.ema_half_life * config.schedule.images_per_stage
  return 0.5 ** (batch / max(half_life, 1e-9))


def _reset_optimizer(optimizer) -> None:
  """Zeroes Adam's moments and step count (its learning rate stays)."""
  inner = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer keeps its scale.
  for variable in inner.variables:
    if variable.name != "learning_rate":
      variable.assign(keras.ops.zeros_like(variable))


def _deterministic_ops() -> None:
  """Bit-exact reruns and resumes, for the rest of the process.

  Besides op determinism, grappler's arithmetic optimizer is off: it regroups sums
  by node names, which differ when the same step is traced later in a process
  (a resumed run), so the same step rounded differently (by 1e-6, which GAN
  training grows to 1e-4 in a dozen steps).
  """
  tf.config.experimental.enable_op_determinism()
  tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})


def _strategy(distribute: bool) -> tf.distribute.Strategy:
  """MirroredStrategy over all visible GPUs (the CPU when there are none), or no strategy."""
  return tf.distribute.MirroredStrategy() if distribute else tf.distribute.get_strategy()


@contextlib.contextmanager
def _dtype_policy(precision: str):
  """Keras layers made inside compute in `precision`; variables stay float32."""
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(precision)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


class _ProgressBar:
  """Stage, images, images/s and the main losses: a bar on a terminal, a line per stage in a log."""

  def __init__(self, enabled: bool, stages: int, per_stage: int, start_stage: int):
    self.progress = Progress(enabled, (stages - start_stage) * per_stage, "image")
    self.stages = stages

  def update(self, st, images_in_stage, batch, terms):
    kind = "fade-in" if st.transition else "stable"
    self.progress.update(batch, f"stage {st.index + 1}/{self.stages} ({kind} level {st.level})",
                         d=terms["d_loss"], g=terms["g_loss"])

  def close(self):
    self.progress.close()
