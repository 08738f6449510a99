"""The progressive networks: shapes at every stage, fade-in continuity, conditioning, losses."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from reverbsynth.model import layers, losses, networks, schedule
from reverbsynth.runs import config as config_lib

TINY = networks.ModelConfig(latent_size=8, num_pitches=5, num_effects=3, start_shape=(2, 4),
                            num_levels=4, fmap_base=64, fmap_max=16)


@pytest.fixture(scope="module")
def nets():
  return networks.build(TINY)


def _loss(**changes):
  """The reverbsynth config's loss section (GANSynth's weights), with `changes`."""
  return dataclasses.replace(config_lib.load().loss, **changes)


def _inputs(batch=4, effect=0, seed=0):
  rng = np.random.default_rng(seed)
  z = rng.standard_normal((batch, TINY.latent_size)).astype(np.float32)
  pitch = ops.one_hot(np.arange(batch) % TINY.num_pitches, TINY.num_pitches)
  fx = ops.one_hot(np.full(batch, effect), TINY.num_effects)
  return z, pitch, fx


def test_shapes_at_every_stage(nets):
  g, d = nets
  assert schedule.num_stages(TINY.num_levels) == 7
  for index in range(7):
    st = schedule.stage(index, TINY.num_levels)
    out = g(*_inputs(), level=st.level, alpha=0.5 if st.transition else 1.0)
    assert tuple(out.shape) == (4, *TINY.shape(st.level))
    assert float(ops.max(ops.abs(out))) <= 1.0
    score, pitch, effect = d(out, level=st.level, alpha=0.5 if st.transition else 1.0)
    assert (score.shape, pitch.shape, effect.shape) == ((4, 1), (4, 5), (4, 3))
  assert TINY.shape(4) == (16, 32, 2)
  full = networks.ModelConfig()
  assert full.shape(7) == (128, 1024, 2)
  assert [full.filters(level) for level in (1, 5, 7)] == [256, 128, 32]


def test_schedule_alternates_stable_and_transition():
  stages = [schedule.stage(i, 7) for i in range(13)]
  assert [(s.level, s.transition) for s in stages[:4]] == [(1, False), (2, True), (2, False),
                                                           (3, True)]
  assert stages[-1].level == 7 and not stages[-1].transition
  assert stages[1].alpha(250, 1000) == 0.25 and stages[2].alpha(0, 1000) == 1.0


def test_fade_in_at_alpha_zero_equals_previous_level(nets):
  g, d = nets
  inputs = _inputs()
  for level in range(2, TINY.num_levels + 1):
    previous = g(*inputs, level=level - 1)
    fading = g(*inputs, level=level, alpha=ops.convert_to_tensor(0.0))
    np.testing.assert_allclose(fading, layers.upsample(previous), atol=1e-6)
    x = g(*inputs, level=level)
    expected = d(layers.downsample(x), level=level - 1)
    for a, b in zip(d(x, level=level, alpha=ops.convert_to_tensor(0.0)), expected):
      np.testing.assert_allclose(a, b, atol=1e-5)


def test_effect_label_changes_the_generated_spectra(nets):
  g, _ = nets
  z, pitch, dry = _inputs(effect=0)
  _, _, wet = _inputs(effect=1)
  a, b = g(z, pitch, dry), g(z, pitch, wet)
  assert float(ops.mean(ops.abs(a - b))) > 1e-3
  np.testing.assert_allclose(g(z, pitch, dry), a, atol=1e-6)  # Deterministic for fixed inputs.


def test_gradient_penalty_on_a_linear_critic_in_raw_units_at_full_resolution():
  # GANSynth's D sees raw spectra at full size. A critic of normalized spectra (x * 2 + b)
  # has a raw gradient twice its own; one at half size, upsampled by 2, half its own.
  w = tf.constant(np.full((1, 2, 2, 1), 0.25, np.float32))  # ||w|| = 0.5
  critic = lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])
  real, fake = tf.zeros([3, 2, 2, 1]), tf.ones([3, 2, 2, 1])
  u = tf.constant(np.linspace(0.1, 0.9, 3, dtype=np.float32).reshape(3, 1, 1, 1))
  penalty = tf.function(lambda *units: losses.gradient_penalty(critic, real, fake, u, *units))
  assert float(penalty()) == pytest.approx(0.25, abs=1e-5)  # (0.5 - 1)^2
  assert float(penalty([2.0], 1)) == pytest.approx(0.0, abs=1e-5)  # ||2w|| = 1
  assert float(penalty([2.0], 2)) == pytest.approx(0.25, abs=1e-5)  # ||2w|| / 2 = 0.5
  assert float(penalty([4.0], 1)) == pytest.approx(1.0, abs=1e-5)  # ||4w|| = 2


def test_losses_combine_terms_with_gansynth_weights():
  cfg = _loss()
  real = (ops.ones((2, 1)), ops.zeros((2, 5)), ops.zeros((2, 3)))
  fake = (-ops.ones((2, 1)), ops.zeros((2, 5)), ops.zeros((2, 3)))
  pitch, effect = ops.one_hot([0, 1], 5), ops.one_hot([0, 2], 3)
  d = losses.discriminator_loss(real, fake, 0.5, (pitch, effect), cfg)
  assert float(d["d_wasserstein"]) == pytest.approx(-2.0)
  expected = -2.0 + 10 * 0.5 + 0.001 * 1.0 + 10 * (np.log(5) + np.log(3))
  assert float(d["d_loss"]) == pytest.approx(expected, rel=1e-5)
  g = losses.generator_loss(fake, (pitch, effect), cfg)
  assert float(g["g_loss"]) == pytest.approx(1.0 + 10 * (np.log(5) + np.log(3)), rel=1e-5)
  # A third condition (instrument family, 4 classes) adds its own classifier terms.
  family = ops.one_hot([3, 1], 4)
  d = losses.discriminator_loss(real + (ops.zeros((2, 4)),), fake + (ops.zeros((2, 4)),), 0.5,
                                (pitch, effect, family), cfg, ("pitch", "effect", "family"))
  assert float(d["ac_family_real"]) == pytest.approx(np.log(4), rel=1e-5)
  assert float(d["d_loss"]) == pytest.approx(expected + 10 * np.log(4), rel=1e-5)


def test_projection_critic_adds_the_logits_of_the_labels_shown():
  # A fake that D's pitch head calls "pitch 1" scores higher when shown with pitch 1,
  # so that D learns to push down that logit on fakes (the auxiliary head alone cannot).
  cfg = _loss(projection=True)
  fake = (ops.zeros((2, 1)), ops.convert_to_tensor([[0.0, 3.0], [0.0, 3.0]]),
          ops.convert_to_tensor([[1.0, 0.0], [1.0, 0.0]]))
  pitch, effect = ops.one_hot([1, 0], 2), ops.one_hot([0, 0], 2)
  assert np.allclose(losses.critic(fake, (pitch, effect), cfg)[:, 0], [4.0, 1.0])
  assert np.allclose(losses.critic(fake, (pitch, effect), _loss())[:, 0], [0.0, 0.0])
  g = losses.generator_loss(fake, (pitch, effect), cfg)
  assert float(g["g_wasserstein"]) == pytest.approx(-2.5)
  real = (ops.ones((2, 1)),) + fake[1:]
  d = losses.discriminator_loss(real, fake, 0.0, (pitch, effect), cfg,
                                fake_labels=(ops.one_hot([0, 0], 2), effect))
  assert float(d["d_wasserstein"]) == pytest.approx(1.0 - 3.5)  # mean(1, 1) - mean(5, 2)


def _spectra_with_frame_energies(energies, bins=4):
  """Spectra [B, T, bins, 2] (scale 1, offset 0) whose frames hold `energies` [B, T]."""
  log_magnitude = 0.5 * np.log(np.maximum(np.asarray(energies, np.float32), 1e-30) / bins)
  return np.stack([np.repeat(log_magnitude[..., None], bins, -1),
                   np.zeros(log_magnitude.shape + (bins,), np.float32)], -1)


def test_envelope_loss_compares_the_mean_energy_envelope_of_each_effect():
  # Reals: a dry note stops after frame 1, a wet one rings on. Fakes: both ring on.
  real = _spectra_with_frame_energies([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.5, 0.5]])
  fake = _spectra_with_frame_energies([[1.0, 1.0, 0.5, 0.5], [1.0, 1.0, 0.5, 0.5]])
  effect = ops.one_hot([0, 1], 2)
  shares = losses.energy_envelope(real, 1.0, 0.0)
  assert np.allclose(shares, [[0.5, 0.5, 0, 0], [1 / 3, 1 / 3, 1 / 6, 1 / 6]], atol=1e-6)
  loss = lambda f, fe=effect: float(losses.envelope_loss(
      shares, losses.energy_envelope(f, 1.0, 0.0), effect, fe))
  assert loss(real) == pytest.approx(0.0, abs=1e-9)
  # Only the dry note differs: its last two frames by log(1/6 + 1e-6) - log(1e-6), its
  # first two by log(1/3) - log(1/2); the mean over 4 frames, then over 2 effects.
  dry = (2 * np.log((1 / 6 + 1e-6) / 1e-6) ** 2 + 2 * np.log((1 / 3 + 1e-6) / (0.5 + 1e-6)) ** 2)
  assert loss(fake) == pytest.approx(dry / 4 / 2, rel=1e-4)
  # A fake batch of wet notes only is compared with the wet reals only.
  assert loss(fake, ops.one_hot([1, 1], 2)) == pytest.approx(0.0, abs=1e-9)
  g = losses.generator_loss((ops.zeros((2, 1)), ops.zeros((2, 2)), effect * 0), (effect, effect),
                            _loss(envelope=2.0), envelope=loss(fake))
  assert float(g["g_loss"]) == pytest.approx(10 * 2 * np.log(2) + 2 * loss(fake), rel=1e-5)


def test_audio_envelope_is_each_frames_share_of_the_notes_energy():
  # Frames of 4 samples: amplitudes 1, 1, 0.5 and silence; energies 4, 4, 1, 0.
  audio = np.repeat([[1.0, -1.0, 0.5, 0.0]], 4, axis=1).astype(np.float32)
  shares = ops.convert_to_numpy(losses.audio_envelope(audio, 4))
  assert np.allclose(shares, [[4 / 9, 4 / 9, 1 / 9, 0.0]], atol=1e-6)
  # The ddsp objective counts shares down to 1e-10 (-100 dB): a tail at -80 dB costs.
  tail = np.concatenate([audio[:, :12], np.full((1, 4), 1e-4, np.float32)], axis=1)
  env = lambda x: losses.audio_envelope(x, 4)
  effect = ops.one_hot([0], 1)
  assert float(losses.envelope_loss(env(audio), env(tail), effect, effect, 1e-10)) > 1.0
  assert float(losses.envelope_loss(env(audio), env(tail), effect, effect, 1e-6)) < 1e-3


def test_envelope_loss_gradient_silences_a_dry_fakes_release_and_keeps_the_wet_tail():
  # Descending the loss alone: the ringing dry fake falls silent after its release,
  # the wet fake keeps its tail. Breaks if the loss compared effects crosswise.
  real = _spectra_with_frame_energies([[1.0, 1.0, 1e-7, 1e-7], [1.0, 1.0, 0.5, 0.5]])
  fake = tf.Variable(_spectra_with_frame_energies([[1.0, 1.0, 0.5, 0.5]] * 2))
  effect = ops.one_hot([0, 1], 2)
  opt = keras.optimizers.SGD(0.5)
  for _ in range(200):
    with tf.GradientTape() as tape:
      loss = losses.envelope_loss(losses.energy_envelope(real, 1.0, 0.0),
                                  losses.energy_envelope(fake, 1.0, 0.0), effect, effect)
    opt.apply([tape.gradient(loss, fake)], [fake])
  shares = losses.energy_envelope(fake, 1.0, 0.0).numpy()
  assert shares[0, 2:].sum() < 1e-4 and shares[1, 2:].sum() == pytest.approx(1 / 3, abs=0.02)
