"""What a training config costs: multiply-adds per image and time on this machine."""

import logging
import os
import time

import numpy as np

from reverbsynth.model import ddsp, networks, schedule
from reverbsynth.runs.config import Config

_MAX_HOURS_WITHOUT_WARNING = 24


def macs_per_image(config: Config, level: int) -> float:
  """Multiply-adds of one G forward + one D forward at `level` (convs and dense; ddsp: its
  networks, oscillator products and the critic's convolutions)."""
  m = config.model
  if m.generator == "ddsp":
    c, frames = config.ddsp.channels, m.start_shape[0]
    total = m.latent_size * frames * c + 2 * config.audio.num_samples * 2 * config.ddsp.harmonics
    total += sum(2 * 3 * c * c * frames * 2 ** (lvl - 1) for lvl in range(1, level + 1))
    critic_frames = config.audio.num_samples // ddsp.CRITIC_HOP  # Its mel matmul, then convs.
    mel = critic_frames * (ddsp.CRITIC_FFT // 2 + 1) * config.ddsp.critic_mels
    return float(total + 8 * 3 * c * c * critic_frames // 2 + mel)
  model = networks.ModelConfig.from_config(m)
  filters = model.filters
  h0, w0, _ = model.shape(1)
  total = m.latent_size * h0 * w0 * filters(1)  # G's first dense.
  for lvl in range(1, level + 1):
    pixels = h0 * w0 * 4 ** (lvl - 1)
    convs = [(filters(1), filters(1))] if lvl == 1 else [(filters(lvl - 1), filters(lvl)),
                                                         (filters(lvl), filters(lvl))]
    g = sum(9 * cin * cout for cin, cout in convs)
    total += 2 * pixels * g  # G and its mirror in D.
  return float(total)


def _macs_per_second() -> float:
  """Measured float32 matrix multiply throughput of this machine (numpy, all cores)."""
  a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
  start = time.perf_counter()
  for _ in range(4):
    a @ a
  return 4 * 1024 ** 3 / (time.perf_counter() - start)


def _has_gpu() -> bool:
  import keras
  if keras.backend.backend() == "jax":
    import jax
    return any(d.platform != "cpu" for d in jax.local_devices())
  import tensorflow as tf
  return bool(tf.config.list_physical_devices("GPU"))


def estimate_hours(config: Config, stages: int) -> float:
  """Rough hours for `stages` stages: a D step with its gradient penalty and a G step
  cost ~10 forward passes; CPU convolutions reach about a third of matmul speed."""
  levels = config.model.num_levels
  per_stage = config.schedule.images_per_stage
  macs = sum(macs_per_image(config, schedule.stage(i, levels).level) * per_stage * 10
             for i in range(stages))
  return macs / (_macs_per_second() / 3) / 3600


def warn(config: Config, stages: int) -> None:
  """Says on stderr when the config is far too big for this machine."""
  if os.environ.get("REVERBSYNTH_NO_COST_CHECK") or _has_gpu():
    return
  hours = estimate_hours(config, stages)
  if hours >= _MAX_HOURS_WITHOUT_WARNING:
    logging.getLogger(__name__).warning(
        f"warning: config '{config.name}' needs about {hours / 24:.0f} days for {stages} "
        "stages on this CPU; on a CPU, use --config ddsp (the 16 kHz generator that trains on "
        "one), or a machine with a GPU")
