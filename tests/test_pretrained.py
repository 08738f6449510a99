"""The model shipped in the package plays pitched notes at 16 kHz over GANSynth's 61 pitches
(MIDI 24-84), dry and with reverb, from its float16 weights of at most 10 MB; its notes carry
harmonics above 1 kHz; its reverb notes ring on after the release longer than its dry ones,
and its learned reverb decays as the real preset's."""

import os

import numpy as np
import pytest

from reverbsynth.data import effects
from reverbsynth.data.notes.note import SAMPLE_RATE
from reverbsynth.evaluation import metrics, responses
from reverbsynth.runs import files
from reverbsynth.synthesis import synthesizer

PITCHES = np.arange(24, 85, 3)  # 21 of the 61: pYIN is slow.


@pytest.fixture(scope="module")
def shipped():
  """(directory, Synthesizer) of the model in the package."""
  directory = files.PRETRAINED
  assert os.path.exists(os.path.join(directory, "generator.json")), "no model in the package"
  return directory, synthesizer.load(directory)


@pytest.fixture(scope="module")
def notes(shipped):
  """{effect: audio [21, S]}: one latent per pitch, shared by the effects."""
  synth = shipped[1]
  z = synth.latents(len(PITCHES), seed=0)
  return {e: synth.audio(z, PITCHES, [e] * len(PITCHES)) for e in ("dry", "reverb")}


def test_the_shipped_model_is_small_and_plays_16_khz_over_gansynths_pitches(shipped):
  directory, synth = shipped
  size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
  assert size <= 10 * 2 ** 20
  assert synth.sample_rate == SAMPLE_RATE and synth.num_samples == 64000
  assert list(synth.pitches) == list(range(24, 85))
  assert {"dry", "reverb"} <= set(synth.labels.effects)


def test_the_shipped_model_plays_the_asked_pitch_with_harmonics_above_1_khz(shipped, notes):
  rate = shipped[1].sample_rate
  for effect, audio in notes.items():
    cents = metrics.f0_error_cents(audio, rate, PITCHES)
    # Measured when shipped: every note within 10 cents (README, Results).
    assert np.mean(np.abs(np.nan_to_num(cents, nan=1e9)) <= 50) >= 0.9, (effect, cents)
    spectrum = np.abs(np.fft.rfft(audio[:, :3 * rate], axis=1)) ** 2
    freqs = np.fft.rfftfreq(3 * rate, 1 / rate)
    above = spectrum[:, freqs > 1000].sum(1) / spectrum.sum(1)
    # The 2 kHz model had none. The SoundFont's real bass notes below MIDI 33 keep a median
    # 0.1 % of their energy there, a quarter of them under 0.005 % (its darkest programs at
    # low velocity, which the model's prior draws too).
    low = above[PITCHES < 60]
    assert np.median(low) > 1e-4 and np.all(low > 1e-5), (effect, above)


def test_the_shipped_models_reverb_notes_ring_longer_than_its_dry_ones(shipped, notes):
  rate = shipped[1].sample_rate  # The released part: the last second.
  share = metrics.tail_sign_share(notes["reverb"], notes["dry"], rate)
  assert share >= 0.9, share


def test_the_shipped_models_learned_reverb_decays_as_the_preset(shipped):
  synth = shipped[1]
  # The dataset's reverb is the preset of configs/effects.yaml.
  real = responses.real_response(effects.parse("reverb"))
  learned = responses.learned_response(synth, "reverb")
  rt60 = metrics.rt60(real, SAMPLE_RATE), metrics.rt60(learned, SAMPLE_RATE)
  assert abs(rt60[1] / rt60[0] - 1) <= 0.1, rt60
  assert metrics.error_to_signal(real, learned) < 0.01, metrics.error_to_signal(real, learned)
