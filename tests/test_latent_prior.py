"""The latent prior a ddsp generator is played from: a Gaussian fitted to its encoder's
posteriors of real notes, carried by its export, mapping a seed's draws the same way each
time (model.latent_prior; README, bug hunt 20)."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np

from reverbsynth import storage
from reverbsynth.data.labels import Labels
from reverbsynth.model.latent_prior import LatentPrior
from reverbsynth.runs import config as config_lib, files
from reverbsynth.synthesis import synthesizer


def test_the_fit_is_the_gaussian_of_the_mixture_of_posteriors():
  rng = np.random.default_rng(42)  # Not the fit's own seed (0): its draws would be these.
  size, notes = 4, 4000
  centre = np.array([1.0, -2.0, 0.5, 0.0])
  mixing = np.array([[1.0, 0, 0, 0], [0.8, 0.6, 0, 0], [0, 0, 0.3, 0], [0, 0, 0, 0.1]])
  means = centre + rng.standard_normal((notes, size)) @ mixing.T
  log_variances = np.log(np.full((notes, size), 0.25))
  prior = LatentPrior.fit(means, log_variances)
  # The mixture's covariance: the means' own plus each posterior's variance (0.25).
  expected = mixing @ mixing.T + 0.25 * np.eye(size)
  np.testing.assert_allclose(prior.mean, centre, atol=0.1)
  np.testing.assert_allclose(prior.scale @ prior.scale.T, expected, atol=0.1)
  assert np.allclose(prior.scale, np.tril(prior.scale))
  draws = prior.draw(rng.standard_normal((20000, size)).astype(np.float32))
  np.testing.assert_allclose(np.cov(draws, rowvar=False), expected, atol=0.1)


def _export(tmp_path, prior):
  config = config_lib.load("tiny-ddsp")
  labels = Labels(24, 61, ("dry", "reverb"))
  generator = files.new_generator(files.model_config(config, labels))
  exported = files.Exported(generator, config, labels, files.identity_normalizer(),
                            config.model.num_levels, prior)
  files.write_generator(tmp_path / "model", exported, float16=True)
  return tmp_path / "model"


def test_an_export_carries_its_prior_and_plays_a_seed_through_it(tmp_path):
  size = config_lib.load("tiny-ddsp").model.latent_size
  prior = LatentPrior(np.full(size, 3.0, np.float32), 0.5 * np.eye(size, dtype=np.float32))
  synth = synthesizer.load(_export(tmp_path, prior))
  np.testing.assert_array_equal(synth.latent_prior.mean, prior.mean)
  np.testing.assert_array_equal(synth.latent_prior.scale, prior.scale)
  standard = np.random.default_rng(7).standard_normal((5, size)).astype(np.float32)
  np.testing.assert_allclose(synth.latents(5, 7), 3.0 + 0.5 * standard, rtol=1e-6)
  np.testing.assert_array_equal(synth.latents(5, 7), synth.latents(5, 7))


def test_an_export_from_before_the_prior_plays_from_n_0_i(tmp_path):
  directory = _export(tmp_path, None)
  info = storage.read_json(directory / files.GENERATOR_JSON)
  assert "latent_prior" not in info
  synth = synthesizer.load(directory)
  size = synth.model_config.latent_size
  np.testing.assert_array_equal(
      synth.latents(3, 1),
      np.random.default_rng(1).standard_normal((3, size)).astype(np.float32))
