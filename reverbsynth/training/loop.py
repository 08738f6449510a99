"""The training loop: progressive stages, WGAN-GP steps, generator EMA, checkpoints, summaries.

Besides the files of runs.files (config, labels, normalizer, the exported EMA generator,
the checkpoints), a run directory holds:
  logs/            TensorBoard: every loss term, spectrogram images, audio
  samples/         stage-NN.wav + .png: one row per effect, columns across pitches

The steps themselves belong to the Keras backend (training.steps_tensorflow,
training.steps_jax); everything here is the same for both.

Randomness (latents, fake labels, penalty mixing) is drawn from (seed, step) and the
data stream skips what earlier steps consumed, so a resumed run continues exactly
where the interrupted one stood.
"""

import math
import os
import time

import keras
import numpy as np

from reverbsynth import spectral
from reverbsynth.data import manifest as manifest_lib, records
from reverbsynth.data.labels import Labels, label_prior
from reverbsynth.errors import Failure, UserError
from reverbsynth.model import latent_prior, schedule
from reverbsynth.progress import Progress
from reverbsynth.runs import files
from reverbsynth.runs.config import Config
from reverbsynth.synthesis import outputs
from reverbsynth.synthesis.synthesizer import Synthesizer
from reverbsynth.training import inputs, summaries

GAP_SECONDS = 0.25


class NaNLossError(Failure):
  """A loss became NaN; the last good checkpoint is kept."""


def _check_shapes(config: Config) -> None:
  if config.model.generator == "ddsp":
    mc = config.model
    frames = mc.start_shape[0] * 2 ** (mc.num_levels - 1)
    if config.audio.num_samples % frames:
      raise UserError(f"model.start_shape[0] x 2^(num_levels-1) = {frames} control frames "
                      f"must divide audio.num_samples ({config.audio.num_samples})")
    return
  sc = config.spectral_config()
  mc = config.model
  top = [s * 2 ** (mc.num_levels - 1) for s in mc.start_shape]
  if top != [sc.frames, sc.bins]:
    raise UserError(f"model.start_shape x 2^(num_levels-1) = {top} must equal the spectra's "
                    f"[frames, nfft/2] = {[sc.frames, sc.bins]}")
  sc.pad_left  # noqa: B018 (the property raises if the frames cannot hold the audio.)


def _steps_class(backend: str):
  """The Steps of a Keras backend (the one Keras runs on: see reverbsynth.backend)."""
  if keras.backend.backend() != backend:
    raise UserError(f"train.backend is {backend} but Keras runs on {keras.backend.backend()}: "
                    f"give --backend {backend} to reverbsynth train (or set KERAS_BACKEND)")
  if backend == "jax":
    from reverbsynth.training.steps_jax import JaxSteps
    return JaxSteps
  from reverbsynth.training.steps_tensorflow import TensorFlowSteps
  return TensorFlowSteps


class Trainer:
  """Trains `config` on the dataset `data_dir` into `run_dir`, on `config.train.backend`."""

  def __init__(self, config: Config, data_dir: str, run_dir: str, resume: bool = False):
    _check_shapes(config)
    steps_class = _steps_class(config.train.backend)
    self.config, self.data_dir, self.run_dir = config, data_dir, run_dir
    manifest = manifest_lib.read(data_dir)
    os.makedirs(run_dir, exist_ok=True)
    self.labels = Labels.from_manifest(manifest, config.model.pitch_min,
                                       config.model.num_pitches, config.model.conditions)
    latest = files.checkpoint_path(run_dir, files.LATEST)
    if resume and not os.path.exists(latest) and os.path.exists(
        os.path.join(run_dir, files.CHECKPOINTS, "checkpoint")):
      raise UserError(f"{run_dir} holds TensorFlow checkpoints of an older reverbsynth, which "
                      "this version cannot resume: give another --out, or remove that run")
    files.start(run_dir, config, self.labels, resume)
    priors = label_prior(manifest, self.labels)  # Refuses a pitch range without notes.
    self.normalizer = self._normalizer()
    self.model_config = files.model_config(config, self.labels)
    self.steps = steps_class(config, self.model_config, self.normalizer, priors)
    self.step = self.stage = self.images_in_stage = self.images_total = 0
    if resume and os.path.exists(latest):
      self._restore(latest)
    self.summaries = summaries.Writer(os.path.join(run_dir, "logs"))
    self.input_seconds = 0.0  # Waiting for real batches, since this object was made.
    self.step_seconds = 0.0   # Running training steps.
    self._dry_notes = None    # What a ddsp run's latent prior is fitted to, read once.

  def _normalizer(self) -> spectral.Normalizer:
    """The run's normalizer; computed from the dataset and saved at its start."""
    normalizer = files.read_normalizer(self.run_dir)
    if normalizer is None and self.config.model.generator == "ddsp":
      normalizer = files.identity_normalizer()  # Its networks see audio features.
      files.write_normalizer(self.run_dir, normalizer)
    if normalizer is None:
      normalizer = inputs.compute_normalizer(self.data_dir, self.config, self.labels,
                                             self.config.seed)
      files.write_normalizer(self.run_dir, normalizer)
    return normalizer

  # --- checkpoints -------------------------------------------------------------

  def save(self, *names: str) -> None:
    """Writes checkpoints/<name>.npz for each of `names` (default: latest): every weight and
    the counters, read from the backend once."""
    values = self.steps.values()
    counters = {c: getattr(self, c) for c in files.COUNTERS}
    for name in names or (files.LATEST,):
      files.write_checkpoint(files.checkpoint_path(self.run_dir, name), values, counters)

  def _restore(self, path) -> None:
    try:
      groups, counters = files.read_checkpoint(path)
      self.steps.assign(groups)
    except (OSError, ValueError, KeyError) as e:
      raise UserError(f"the checkpoint {path} is damaged or of another model ({e}): give "
                      "another --out, or remove that run") from None
    for name in files.COUNTERS:
      setattr(self, name, counters[name])

  # --- the loop --------------------------------------------------------------

  def report(self, stages: int, terms: dict) -> str:
    """What `reverbsynth train` prints when done: where the run is, how far it got."""
    losses = f"; d_loss {terms['d_loss']:.3f}, g_loss {terms['g_loss']:.3f}" if terms else ""
    return (f"Run: {self.run_dir}\n  stage {self.stage} of {stages} done, {self.images_total} "
            f"images, step {self.step} ({self.config.train.backend}){losses}"
            f"\n  generator  {os.path.join(self.run_dir, 'generator')}"
            f"\n  samples    {os.path.join(self.run_dir, 'samples')}"
            f"\n  tensorboard --logdir {os.path.join(self.run_dir, 'logs')}")

  def train(self, stages: int, progress: bool = True, max_steps=None) -> dict:
    """Trains through the first `stages` stages; returns the last losses.

    `max_steps` stops early after that many steps of this call (for tests and
    bounded demos), leaving a checkpoint to resume from.
    """
    levels = self.model_config.num_levels
    schedule.stages_to_train(stages, levels, self.config.name)
    per_stage = self.config.schedule.images_per_stage
    last_save, steps_done, terms = time.monotonic(), 0, {}
    bar = _ProgressBar(progress, stages, per_stage, self.stage)
    while self.stage < stages:
      st = schedule.stage(self.stage, levels)
      batch = self.config.schedule.batch_size[st.level - 1]
      if self.images_in_stage == 0:
        self.steps.reset_optimizers()
      stream = self.steps.batches(self.data_dir, self.labels, batch, skip=self.images_total)
      data = self.steps.feed(stream)
      try:
        while self.images_in_stage < per_stage:
          if max_steps is not None and steps_done >= max_steps:
            self.save()
            bar.close()
            return terms
          started = time.perf_counter()
          inputs = next(data)
          fetched = time.perf_counter()
          alpha = st.alpha(self.images_in_stage, per_stage)
          terms = self.steps.run(st.level, batch, inputs, alpha, self.step)
          self.input_seconds += fetched - started
          self.step_seconds += time.perf_counter() - fetched
          if not all(math.isfinite(v) for v in terms.values()):
            bad = ", ".join(k for k, v in terms.items() if not math.isfinite(v))
            raise NaNLossError(
                f"loss became NaN at step {self.step} ({bad}); the last good checkpoint in "
                f"{os.path.join(self.run_dir, files.CHECKPOINTS)} is kept: lower "
                "optimizer.learning_rate and resume")
          self.step += 1
          self.images_in_stage += batch
          self.images_total += batch
          steps_done += 1
          self._summaries(terms, st, alpha)
          bar.update(st, self.images_in_stage, batch, terms)
          if time.monotonic() - last_save > 60 * self.config.train.checkpoint_minutes:
            self.save()
            last_save = time.monotonic()
      finally:
        stream.close()
      self._finish_stage(st)
    bar.close()
    return terms

  def _summaries(self, terms: dict, st, alpha: float) -> None:
    if self.step % self.config.train.summary_steps:
      return
    busy = self.input_seconds + self.step_seconds
    self.summaries.scalars(self.images_total, {
        **{f"loss/{name}": value for name, value in terms.items()},
        "progress/level": st.level, "progress/alpha": alpha,
        **({"progress/input_wait_share": self.input_seconds / busy} if busy else {})})

  def _finish_stage(self, st) -> None:
    """Sample grid, summaries, stage checkpoint, exported generator; then the next stage."""
    self.steps.sync()
    synth = self._synthesizer(st.level)
    audio, image = self.sample_grid(synth)
    samples = os.path.join(self.run_dir, "samples")
    outputs.write_wav(os.path.join(samples, f"stage-{st.index:02d}.wav"), audio,
                      self.config.audio.sample_rate)
    outputs.write_png(os.path.join(samples, f"stage-{st.index:02d}.png"), image)
    self.summaries.samples(self.images_total, image, self._real_image(), audio,
                           self.config.audio.sample_rate)
    files.write_generator(os.path.join(self.run_dir, files.GENERATOR_DIR), synth)
    self.stage += 1
    self.images_in_stage = 0
    self.save(f"stage-{st.index:02d}", files.LATEST)

  def _real_image(self) -> np.ndarray:
    """Images [4, H, W, 1] of four real training notes, as the sample grid draws them."""
    audio = self.config.audio
    if self.config.model.generator == "ddsp":
      real = records.read_split(self.data_dir, "train", audio.num_samples, limit=4,
                                sample_rate=audio.sample_rate, pitches=self.labels.pitch_range)
      return outputs.audio_images(real["audio"], audio.sample_rate)
    data = inputs.Batches(self.data_dir, self.config, self.labels, self.normalizer, 4,
                          self.config.seed, workers=1)
    real = next(data)[0]
    data.close()
    return outputs.spectra_image(real)

  def _synthesizer(self, level: int) -> Synthesizer:
    """The EMA generator playing at `level`; a ddsp one from the latent prior fitted to its
    encoder on dry training notes (model.latent_prior)."""
    prior = None
    if self.config.model.generator == "ddsp":
      if self._dry_notes is None:
        self._dry_notes = latent_prior.dry_notes(self.data_dir, self.config.audio, self.labels)
      prior = latent_prior.fit_to_notes(self.steps.ema, self._dry_notes)
    return Synthesizer(self.steps.ema, self.config, self.labels, self.normalizer, level, prior)

  def sample_grid(self, synth: Synthesizer):
    """(audio float32 [N_total], PNG image uint8 [H, W, 1]) of `synth`: effects down,
    pitches across; for a model conditioned on families, each family's notes through the
    first effect, then the first family through each other effect (at velocity 100's label
    for one conditioned on velocity)."""
    pitches = [p for p in self.config.train.sample_pitches if p in synth.pitches]
    effects, families = self.labels.effects, self.labels.families
    labels = ([(f, effects[0]) for f in families] + [(families[0], e) for e in effects[1:]]
              if families else [(None, e) for e in effects])
    rows, cols = len(labels), len(pitches)
    z = np.repeat(synth.latents(1, self.config.seed), rows * cols, axis=0)
    family, effect = (np.repeat(column, cols).tolist() for column in zip(*labels))
    notes, tiles = synth.notes_and_images(z, np.tile(pitches, rows), effect,
                                          families=family if families else None,
                                          velocities=[100] * rows * cols)
    gap = np.zeros(int(GAP_SECONDS * synth.sample_rate), np.float32)
    audio = outputs.normalize(np.concatenate([np.concatenate([n, gap]) for n in notes]))
    tiles = tiles[..., 0]  # [R*C, F, T] in [0, 1]
    grid = tiles.reshape(rows, cols, *tiles.shape[1:]).transpose(0, 2, 1, 3)
    grid = grid.reshape(rows * tiles.shape[1], cols * tiles.shape[2])
    return audio, (grid[..., None] * 255).astype(np.uint8)


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
