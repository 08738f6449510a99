"""Where a generator's latents z are drawn from when it plays new notes.

A spectral generator is trained on z ~ N(0, I) alone, and plays from it. The ddsp generator
also decodes the encoder's posteriors of real notes (the reconstruction term), and those do
not fill N(0, I): its KL term (weight 0.01) leaves their aggregate off-centre and narrower
in some directions, and the decoder plays a prior sample as a note of middling loudness
(README, bug hunt 20). So a ddsp run's exported generator carries a Gaussian fitted to the
posteriors of real training notes (ex-post density estimation, as in two-stage VAEs), and
new notes are drawn from it. Either way a seed gives standard normal draws, and the prior
maps them: the same seed, the same notes.
"""

import dataclasses

import keras
import numpy as np

from reverbsynth.data import records
from reverbsynth.errors import UserError

POSTERIOR_DRAWS = 8  # Samples of each note's posterior in the fit.
FIT_NOTES = 512      # Dry training notes encoded for the fit.


@dataclasses.dataclass
class LatentPrior:
  """z = mean + scale @ e for standard normal e: mean [L], scale [L, L] lower-triangular."""
  mean: np.ndarray
  scale: np.ndarray

  @classmethod
  def fit(cls, means: np.ndarray, log_variances: np.ndarray, seed: int = 0) -> "LatentPrior":
    """The Gaussian of the mixture of posteriors N(means [N, L], exp(log_variances) [N, L])."""
    rng = np.random.default_rng(seed)
    std = np.exp(0.5 * log_variances)
    z = np.concatenate([means + std * rng.standard_normal(means.shape)
                        for _ in range(POSTERIOR_DRAWS)])
    cov = np.cov(z, rowvar=False) + 1e-6 * np.eye(z.shape[1])
    return cls(z.mean(axis=0).astype(np.float32), np.linalg.cholesky(cov).astype(np.float32))

  def draw(self, standard: np.ndarray) -> np.ndarray:
    """Latents [N, L] for standard normal draws [N, L]."""
    return (self.mean + standard @ self.scale.T).astype(np.float32)

  def to_json(self) -> dict:
    return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

  @classmethod
  def from_json(cls, data: dict) -> "LatentPrior":
    return cls(np.asarray(data["mean"], np.float32), np.asarray(data["scale"], np.float32))


def dry_notes(data_dir, audio, labels, count: int = FIT_NOTES) -> np.ndarray:
  """Up to `count` dry training notes [N, S] of the labels' pitches at the `audio` config's
  rate and length (the first records: a fair sample, records.read_split)."""
  notes = records.read_split(data_dir, "train", audio.num_samples,
                             limit=count * len(labels.effects), sample_rate=audio.sample_rate,
                             pitches=labels.pitch_range)
  dry = notes["audio"][np.isin(notes["effect"], labels.dry_ids)][:count]
  if not len(dry):
    raise UserError(f"{data_dir} has no dry training notes in the pitch range "
                    f"{labels.pitch_range.start}..{labels.pitch_range.stop - 1}: the latent "
                    "prior is fitted to the encoded dry notes of the dataset a run trained on")
  return dry


def fit_to_notes(generator, dry: np.ndarray, batch_size: int = 32) -> LatentPrior:
  """The prior fitted to `generator`'s encoder (a DdspGenerator) on real dry notes [N, S]."""
  means, log_variances = [], []
  for i in range(0, len(dry), batch_size):
    mean, log_variance = generator.encode(dry[i:i + batch_size])
    means.append(keras.ops.convert_to_numpy(mean))
    log_variances.append(keras.ops.convert_to_numpy(log_variance))
  return LatentPrior.fit(np.concatenate(means), np.concatenate(log_variances))
