"""IF-Mel and linear log-magnitude/IF spectra, GANSynth's representation."""

import os

import numpy as np
import pytest
import tensorflow as tf

from reverbsynth import spectral

SR, N = 16000, 64000


def _snr_db(reference, estimate):
  return 10 * np.log10(np.sum(reference ** 2) / np.sum((reference - estimate) ** 2))


@pytest.fixture(scope="module")
def sp():
  return spectral.Spectral()


def _tones():
  t = np.arange(N) / SR
  return np.stack([0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1234.5 * t + 1),
                   0.2 * np.sin(2 * np.pi * 3000 * t)]).astype(np.float32)


def test_shapes_and_ranges(sp, fixture_notes):
  audio = tf.constant(np.stack([a for _, a in fixture_notes[:3]]))
  assert sp.config.pad_left == 3072
  ifmel = sp.audio_to_spectra(audio).numpy()
  assert ifmel.shape == (3, 128, 1024, 2)
  assert np.all(np.abs(ifmel[..., 1]) <= 1.0 + 1e-5)
  assert ifmel[..., 0].min() >= np.log(spectral.EPS) - 1e-3
  small = spectral.Spectral(spectral.SpectralConfig(num_samples=16384, nfft=512, hop=128))
  assert small.audio_to_spectra(tf.zeros([2, 16384])).shape == (2, 128, 256, 2)


def test_linear_round_trip_is_almost_exact(sp, fixture_notes):
  tones = _tones()
  back = sp.istft(sp.linear_to_stft(sp.stft_to_linear(sp.stft(tf.constant(tones))))).numpy()
  for a, b in zip(tones, back):
    # All but the last 128 samples, where the last analysis window is ~0.
    assert _snr_db(a[:-128], b[:-128]) > 60
  # On real notes, the spectra -> STFT step is exact to float precision.
  stft = sp.stft(tf.constant(np.stack([a for _, a in fixture_notes[:3]])))
  again = sp.linear_to_stft(sp.stft_to_linear(stft))
  assert float(tf.abs(tf.norm(again - stft) / tf.norm(stft))) < 1e-4


def test_ifmel_round_trip_error_on_real_notes_is_bounded(sp, fixture_notes):
  notes = np.stack([a for _, a in fixture_notes])
  back = sp.spectra_to_audio(sp.audio_to_spectra(tf.constant(notes))).numpy()
  magnitude = lambda x: np.abs(sp.stft(tf.constant(x)).numpy())
  ref, est = magnitude(notes), magnitude(back)
  convergence = [np.linalg.norm(r - e) / np.linalg.norm(r) for r, e in zip(ref, est)]
  # Measured 0.12-0.46 (mean 0.24) on these notes with GANSynth's mel matrix, 0.08-0.43
  # (mean 0.21) with bands widened apart: the mel warp loses high-frequency detail.
  assert max(convergence) < 0.5 and np.mean(convergence) < 0.3, convergence


def test_pure_tone_if_is_flat_at_its_frequency(sp):
  f = 1010.0  # 32.32 cycles per hop: the phase advances 0.64 pi per frame.
  tone = 0.5 * np.sin(2 * np.pi * f * np.arange(N) / SR).astype(np.float32)
  linear = sp.stft_to_linear(sp.stft(tf.constant(tone[None]))).numpy()[0]
  peak = int(np.argmax(linear[64, :, 0]))
  assert abs((peak + 1) * SR / 2048 - f) < SR / 2048  # DC dropped: bin i is frequency i + 1.
  steady = linear[8:120, peak, 1]
  assert np.allclose(steady, 0.64, atol=2e-3)
  ifmel = sp.audio_to_spectra(tf.constant(tone[None])).numpy()[0]
  mel_peak = int(np.argmax(ifmel[64, :, 0]))
  assert np.std(ifmel[8:120, mel_peak, 1]) < 2e-3


def test_mel_matrix_is_htk_and_covers_every_bin():
  m = spectral.mel_matrix(1024, SR)
  assert m.shape == (1024, 1024)
  assert np.all(m[0] == 0)  # The first (lowest) linear bin carries no weight.
  # Only the lowest mel band is empty (it spans just the zeroed bin, as in GANSynth);
  # every other one has weight, thanks to the widening of narrow bands.
  assert m[:, 0].sum() == 0 and np.all(m[:, 1:].sum(axis=0) > 0)
  assert spectral.hz_to_mel(700.0) == pytest.approx(1127 * np.log(2))
  assert spectral.mel_to_hz(spectral.hz_to_mel(4321.0)) == pytest.approx(4321.0)


@pytest.mark.parametrize("bins, rate", [(1024, 16000), (128, 16000)])
def test_mel_matrix_is_the_one_gansynths_code_computes(bins, rate):
  # tests/data/gansynth_mel.npz: computed once by GANSynth's own code (how: its script).
  stored = np.load(os.path.join(os.path.dirname(__file__), "data", "gansynth_mel.npz"))
  key = f"{bins}_{rate}"
  expected = np.zeros((bins, bins))
  expected[stored[f"{key}_rows"], stored[f"{key}_cols"]] = stored[f"{key}_values"]
  assert np.abs(spectral.mel_matrix(bins, rate, "gansynth") - expected).max() < 1e-6
  # Its widening moves the shared edges: at 1024 bins mel bins 1-3 spread over linear bins
  # 1, 1-2, 2-3; widened apart ("separate", runs from before), all three weigh linear bin 1.
  separate = spectral.mel_matrix(bins, rate, "separate")
  if bins == 1024:
    support = lambda m: [list(np.flatnonzero(m[:, j])) for j in (1, 2, 3)]
    assert support(expected) == [[1], [1, 2], [2, 3]] and support(separate) == [[1]] * 3
  assert np.sum(np.abs(separate - expected).max(axis=0) > 1e-6) > bins * 0.4


def test_a_config_says_which_mel_matrix_it_uses(fixture_notes):
  notes = tf.constant(np.stack([a for _, a in fixture_notes[:2]]))
  spectra = {bands: spectral.Spectral(spectral.SpectralConfig(mel_bands=bands))
             for bands in spectral.MEL_BANDS}
  ifmel = {bands: sp.audio_to_spectra(notes).numpy() for bands, sp in spectra.items()}
  assert np.abs(ifmel["gansynth"][..., 0] - ifmel["separate"][..., 0]).max() > 1.0
  back = spectra["gansynth"].spectra_to_audio(ifmel["gansynth"]).numpy()
  ref, est = (np.abs(spectra["gansynth"].stft(tf.constant(x)).numpy()) for x in (notes, back))
  assert np.linalg.norm(ref - est) / np.linalg.norm(ref) < 0.5
  with pytest.raises(ValueError, match="mel bands 'htk' is not one of gansynth, separate"):
    spectral.mel_matrix(16, SR, "htk")


# The JAX backend's input path computes spectra without TensorFlow. Stated tolerance, where
# the note sounds (log magnitude above -10, 20-66 % of the pixels here; the floor is
# log 1e-6 = -13.8): both channels within 5e-3 of tf.signal's (measured: under 1e-3, and
# 1e-5 above -6). In silent bins the phase is rounding
# noise, so an unwrap may differ by 2 pi there (IF by 2, in ~9 % of mel pixels) and the
# log magnitude by up to 0.05 (measured 0.014). Audio back within 1e-5 of tf.signal's.
@pytest.mark.parametrize("ops", ["numpy", "jax"])
@pytest.mark.parametrize("config", [spectral.SpectralConfig(),
                                    spectral.SpectralConfig(2000, 8000, 256, 128, 64, False)],
                         ids=["ifmel-16k", "linear-2k"])
def test_numpy_and_jax_spectra_match_tensorflow(fixture_notes, ops, config):
  import librosa
  notes = np.stack([librosa.resample(a, orig_sr=SR, target_sr=config.sample_rate)
                    [:config.num_samples] for _, a in fixture_notes[:3]]).astype(np.float32)
  reference = spectral.Spectral(config)
  other = spectral.Spectral(config, ops)
  expected = reference.audio_to_spectra(notes).numpy()
  got = np.asarray(other.audio_to_spectra(notes))
  assert got.shape == expected.shape and got.dtype == np.float32
  sounding = expected[..., 0] > -10.0
  assert sounding.mean() > 0.1
  assert np.abs(got - expected)[sounding].max() < 5e-3
  assert np.abs(got - expected)[..., 0].max() < 0.05
  audio = np.asarray(other.spectra_to_audio(expected))
  assert np.abs(audio - reference.spectra_to_audio(expected).numpy()).max() < 1e-5
  normalizer = spectral.Normalizer((0.2, 0.9), (1.0, 0.0))
  normalized = np.asarray(normalizer.normalize(expected, other.ops))
  assert np.abs(normalized - normalizer.normalize(expected).numpy()).max() < 1e-6
  assert normalized.min() == -1.0 and normalized.max() <= 1.0
