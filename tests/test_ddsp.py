"""The ddsp generator family: its synths and learned responses against numpy, and the whole
chain (train under both backends, resume, export, generate, render, apply) on tiny-ddsp."""

import dataclasses
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import pytest
import soundfile as sf
import yaml
from conftest import FIXTURE_NOTES, assert_refused, in_process, run_cli

from reverbsynth.data.labels import Labels
from reverbsynth.model import ddsp
from reverbsynth.runs import config as config_lib, files

CONFIG = ddsp.DdspConfig(num_samples=16000, start_frames=8, num_levels=4, harmonics=60,
                         noise_bands=33, response_samples=800, channels=16, critic_mels=32)


def _one_hot(index, size):
  return np.eye(size, dtype=np.float32)[np.atleast_1d(index)]


def _np(x):
  from keras import ops
  return ops.convert_to_numpy(x)


@pytest.mark.parametrize("pitch", [24, 57, 84])
def test_the_oscillator_bank_plays_exact_harmonics_at_the_asked_pitch(pitch):
  # Harmonics 1 and 3 at amplitudes that ramp from frame to frame: the matrix-product bank
  # must equal sines summed sample by sample, amplitudes cross-faded linearly.
  c, t = CONFIG, np.arange(CONFIG.num_samples)
  ramp = np.linspace(0.1, 0.5, c.frames, dtype=np.float32)
  amplitudes = np.zeros((1, c.frames, c.harmonics), np.float32)
  amplitudes[0, :, 0], amplitudes[0, :, 2] = ramp, 0.25
  out = _np(ddsp.harmonic_synth(amplitudes, c, _one_hot(pitch - c.pitch_min, c.num_pitches)))[0]
  f0 = 440 * 2 ** ((pitch - 69) / 12)
  envelope = np.interp(t, np.arange(c.frames) * c.hop, ramp)
  envelope[(c.frames - 1) * c.hop:] = ramp[-1]
  expected = envelope * np.sin(2 * np.pi * f0 * t / c.sample_rate) + 0.25 * np.sin(
      2 * np.pi * 3 * f0 * t / c.sample_rate)
  assert np.abs(out - expected).max() < 1e-4


@pytest.mark.parametrize("cents", [-20.0, 3.0])
def test_a_detuned_note_plays_its_harmonics_at_the_detuned_f0(cents):
  # Harmonics 1 and 5 of MIDI 40 raised by `cents`: sines at the detuned frequencies, sample
  # by sample to the last one (a 3-cent error would be a quarter cycle off at the end).
  c, t, pitch = dataclasses.replace(CONFIG, detune_cents=20.0), np.arange(CONFIG.num_samples), 40
  amplitudes = np.zeros((1, c.frames, c.harmonics), np.float32)
  amplitudes[0, :, 0], amplitudes[0, :, 4] = 0.5, 0.25
  out = _np(ddsp.harmonic_synth(amplitudes, c, _one_hot(pitch - c.pitch_min, c.num_pitches),
                                np.full((1, 1), cents, np.float32)))[0]
  f0 = 440 * 2 ** ((pitch - 69) / 12 + cents / 1200)
  expected = 0.5 * np.sin(2 * np.pi * f0 * t / c.sample_rate) + 0.25 * np.sin(
      2 * np.pi * 5 * f0 * t / c.sample_rate)
  assert np.abs(out - expected).max() < 1e-3


def test_a_learned_detune_stays_within_its_bound_and_plays_through_the_generator():
  c = dataclasses.replace(CONFIG, detune_cents=20.0)
  generator = ddsp.DdspGenerator(c)
  ddsp.build_generator(generator)
  z = 3 * np.random.default_rng(2).standard_normal((4, c.latent_size)).astype(np.float32)
  labels = (_one_hot([0, 10, 20, 30], c.num_pitches), _one_hot([0, 1, 0, 1], 2))
  detune = _np(generator.controls(z, *labels)["detune"])
  assert detune.shape == (4, 1) and np.all(np.abs(detune) <= 20.0) and np.ptp(detune) > 0
  assert np.isfinite(_np(generator(z, *labels))).all()
  # A harmonic just below Nyquist at the exact f0 but above it at +20 cents is silenced.
  f = np.arange(1, c.harmonics + 1)[None, :] * c.f0()[:, None]
  pitch, k = np.argwhere((f < c.sample_rate / 2) & (f * 2 ** (20 / 1200) >= c.sample_rate / 2))[0]
  for config, silenced in [(c, True), (CONFIG, False)]:
    model = generator if silenced else ddsp.DdspGenerator(config)
    ddsp.build_generator(model)
    distribution = _np(model.controls(z[:1], _one_hot([pitch], c.num_pitches), _one_hot([0], 2))[
        "harmonic_distribution"])
    assert np.all(distribution[0, :, k] == 0) == silenced


@pytest.mark.parametrize("scale", ["exp_sigmoid", "softmax"])
def test_harmonics_above_nyquist_are_silenced_and_the_rest_sum_to_one(scale):
  c = dataclasses.replace(CONFIG, harmonic_scale=scale)
  generator = ddsp.DdspGenerator(c)
  ddsp.build_generator(generator)
  z = np.random.default_rng(0).standard_normal((2, c.latent_size)).astype(np.float32)
  pitches = [24 - c.pitch_min, 84 - c.pitch_min]
  controls = generator.controls(z, _one_hot(pitches, c.num_pitches), _one_hot([0, 1], 2))
  distribution = _np(controls["harmonic_distribution"])
  f0 = c.f0()[pitches]
  for row, f in enumerate(f0):
    above = np.arange(1, c.harmonics + 1) * f >= c.sample_rate / 2
    assert above.any() == (row == 1)  # MIDI 84's 8th harmonic is above 8 kHz; 24's 60th is not.
    assert np.all(distribution[row][:, above] == 0)
    np.testing.assert_allclose(distribution[row].sum(-1), 1.0, atol=1e-5)


def test_a_softmax_distribution_follows_its_logits_where_exp_sigmoid_saturates():
  # Harmonics 1-3 at logits 8, 6, 0: as log-amplitudes (softmax) harmonic 2 sits 2 nepers
  # (17.4 dB) below the fundamental; through exp_sigmoid both are near its ceiling, within 1 dB.
  logits = np.full((1, 1, 4), -1e3, np.float32)
  logits[0, 0, :3] = 8.0, 6.0, 0.0
  audible = np.array([[[1, 1, 1, 0]]], np.float32)
  db = lambda d: 20 * np.log10(d[0, 0, 0] / d[0, 0, 1])
  softmax = _np(ddsp.harmonic_distribution(logits, audible, "softmax"))
  saturated = _np(ddsp.harmonic_distribution(logits, audible, "exp_sigmoid"))
  assert abs(db(softmax) - 20 * 2 / np.log(10)) < 0.01 and softmax[0, 0, 3] == 0
  assert db(saturated) < 1.0


def test_noise_that_follows_the_amplitude_falls_with_the_note():
  # The same weights with and without the key: the noise bands are scaled by the note's
  # amplitude, so where the note fades out its noise floor fades with it.
  free = ddsp.DdspGenerator(CONFIG)
  ddsp.build_generator(free)
  follows = ddsp.DdspGenerator(dataclasses.replace(CONFIG, noise_follows_amplitude=True))
  ddsp.build_generator(follows)
  follows.set_weights(free.get_weights())
  z = np.random.default_rng(1).standard_normal((2, CONFIG.latent_size)).astype(np.float32)
  labels = (_one_hot([0, 30], CONFIG.num_pitches), _one_hot([0, 1], 2))
  a, b = free.controls(z, *labels), follows.controls(z, *labels)
  np.testing.assert_allclose(_np(b["noise_magnitudes"]),
                             _np(a["noise_magnitudes"] * a["amplitude"]), rtol=1e-5, atol=1e-12)
  assert np.abs(_np(b["noise_magnitudes"]) - _np(a["noise_magnitudes"])).max() > 1e-6


def test_saved_configs_from_before_the_noise_detune_and_step_keys_play_as_they_were_trained(
    tmp_path):
  # Free noise, the exact f0 and the responses' first scale (the model shipped before).
  saved = config_lib.load("ddsp").to_dict()
  for key in ("noise_follows_amplitude", "detune_cents", "response_step"):
    del saved["ddsp"][key]
  path = tmp_path / "old.yaml"
  path.write_text(yaml.safe_dump(saved))
  ddsp_config = config_lib.load(str(path)).ddsp
  assert (ddsp_config.noise_follows_amplitude, ddsp_config.detune_cents,
          ddsp_config.response_step) == (False, 0.0, 1.0)


def test_filtered_noise_puts_its_energy_in_the_asked_band():
  c = CONFIG
  magnitudes = np.zeros((1, c.frames, c.noise_bands), np.float32)
  magnitudes[..., 8] = 1.0  # Band 8 of 33 over 0..8 kHz: 2 kHz.
  out = _np(ddsp.noise_synth(magnitudes, c))[0]
  spectrum = np.abs(np.fft.rfft(out)) ** 2
  freqs = np.fft.rfftfreq(len(out), 1 / c.sample_rate)
  inside = spectrum[np.abs(freqs - 2000) < 250].mean()
  outside = spectrum[np.abs(freqs - 2000) > 1000].mean()
  assert 10 * np.log10(inside / outside) > 30
  assert out.std() > 0.01 and out.shape == (c.num_samples,)


@pytest.mark.parametrize("step", [1.0, 0.15])
def test_a_response_is_a_dry_gain_plus_a_convolution_that_starts_as_the_dry_note(step):
  c = CONFIG
  rng = np.random.default_rng(1)
  audio = rng.standard_normal((2, c.num_samples)).astype(np.float32)
  layer = ddsp.Responses(2, c.response_samples, step=step)
  layer.build(None)
  effect = _one_hot([0, 1], 2)
  np.testing.assert_allclose(_np(layer(audio, effect)), audio, atol=1e-5)  # Zero at the start.
  taps = rng.standard_normal(c.response_samples - 1).astype(np.float32) * np.exp(
      -np.arange(c.response_samples - 1) / 200).astype(np.float32)
  layer.taps[1].assign(taps)
  layer.dry.assign(np.array([0.0, -0.03], np.float32))
  response = np.concatenate([[0.0], taps * layer.TAP_SCALE * step])
  expected = ((1 - 0.03 * layer.DRY_SCALE * step) * audio[1]
              + np.convolve(audio[1], response)[:c.num_samples])
  out = _np(layer(audio, effect))
  np.testing.assert_allclose(out[1], expected, atol=2e-4)
  np.testing.assert_allclose(out[0], audio[0], atol=1e-5)


def test_the_dry_effects_response_is_the_identity_whatever_its_weights():
  # Learned, the dry label's taps kept Adam's step noise and rang on at -96 dB after the
  # release of every dry note (bug hunt 12).
  c = CONFIG
  audio = np.random.default_rng(2).standard_normal((2, c.num_samples)).astype(np.float32)
  layer = ddsp.Responses(2, c.response_samples, dry=(0,))
  layer.build(None)
  for taps in layer.taps:
    taps.assign(np.full(c.response_samples - 1, 1e-3, np.float32))
  layer.dry.assign(np.array([0.05, 0.05], np.float32))
  out = _np(layer(audio, _one_hot([0, 1], 2)))
  assert np.array_equal(out[0], audio[0])
  assert np.abs(out[1] - audio[1]).max() > 0.1
  labels = Labels(24, 61, ("dry", "reverb", "delay"))
  assert files.model_config(config_lib.load("ddsp"), labels).dry_effects == (0,)


@pytest.fixture(scope="module")
def ddsp_run(tmp_path_factory, dataset):
  """tiny-ddsp trained by the CLI on JAX for 2 stages, resumed on TensorFlow for a third."""
  out = tmp_path_factory.mktemp("runs") / "tiny-ddsp"
  first = run_cli("train", "--data", dataset, "--config", "tiny-ddsp", "--backend", "jax",
                  "--stages", 2, "--out", out, "--no-progress")
  assert first.returncode == 0, first.stderr
  second = run_cli("train", "--data", dataset, "--config", "tiny-ddsp", "--backend",
                   "tensorflow", "--stages", 3, "--out", out, "--resume", "--no-progress")
  assert second.returncode == 0, second.stderr
  return out, first, second


def test_tiny_ddsp_trains_on_jax_and_resumes_on_tensorflow(ddsp_run):
  out, first, second = ddsp_run
  assert "stage 2 of 2 done, 64 images, step 8 (jax)" in first.stdout
  assert "stage 3 of 3 done, 96 images, step 12 (tensorflow)" in second.stdout
  for stage in range(3):
    assert (out / "checkpoints" / f"stage-{stage:02d}.npz").exists()
    assert (out / "samples" / f"stage-{stage:02d}.wav").exists()
  audio, rate = sf.read(out / "samples" / "stage-02.wav")
  assert rate == 16000 and np.abs(audio).max() > 0.1


def test_a_ddsp_runs_notes_are_drawn_from_a_prior_fitted_to_its_encoder(ddsp_run, dataset):
  from reverbsynth.model import latent_prior
  from reverbsynth.synthesis import synthesizer
  synth = synthesizer.load(ddsp_run[0])
  dry = latent_prior.dry_notes(dataset, synth.config.audio, synth.labels)
  assert len(dry) == len(FIXTURE_NOTES)  # Every fixture note, dry.
  again = latent_prior.fit_to_notes(synth.generator, dry)
  np.testing.assert_allclose(synth.latent_prior.mean, again.mean, atol=1e-5)
  np.testing.assert_allclose(synth.latent_prior.scale, again.scale, atol=1e-5)
  assert not np.allclose(again.mean, 0.0, atol=1e-3)  # Not N(0, I) by another name.


def test_a_ddsp_run_exports_generates_renders_and_applies_its_reverb(ddsp_run, tmp_path, run_here):
  from reverbsynth.synthesis import synthesizer
  out = ddsp_run[0]
  compact = tmp_path / "compact"
  result = run_here("export", "--run", out, "--out", compact)
  assert result.returncode == 0, result.stderr
  np.testing.assert_array_equal(synthesizer.load(compact).latent_prior.scale,
                                synthesizer.load(out).latent_prior.scale)
  notes = tmp_path / "notes"
  result = run_here("generate", "--run", compact, "--pitch", 24, "--pitch", 84, "--out", notes)
  assert result.returncode == 0, result.stderr
  for pitch in (24, 84):
    for effect in ("dry", "reverb"):
      audio, rate = sf.read(notes / f"{pitch}-{effect}-v100-z0.wav")
      assert rate == 16000 and len(audio) == 4096 and np.abs(audio).max() > 0.01
  song = tmp_path / "song.wav"
  result = run_here("render", "examples/bassline.mid", "--run", compact, "--out", song,
                   "--no-progress")
  assert result.returncode == 0, result.stderr
  # A stereo 44.1 kHz file through the learned reverb: its tail (0.1 s at 16 kHz) is kept.
  clip = np.zeros((4410, 2), np.float32)
  clip[0] = [0.5, -0.25]
  sf.write(tmp_path / "click.wav", clip, 44100)
  result = run_here("apply", tmp_path / "click.wav", "--effect", "reverb", "--run", compact,
                   "--out", tmp_path / "wet.wav")
  assert result.returncode == 0, result.stderr
  wet, rate = sf.read(tmp_path / "wet.wav")
  assert rate == 44100 and wet.shape[1] == 2
  assert len(wet) == 4410 + round(1600 * 44100 / 16000) - 1
  np.testing.assert_allclose(wet[:, 1], -0.5 * wet[:, 0], atol=1e-6)


def test_export_fits_the_prior_again_on_a_dataset_and_refuses_a_spectral_run(
    ddsp_run, tiny_run, dataset, tmp_path, capsys):
  from reverbsynth.synthesis import synthesizer
  refit = tmp_path / "refit"
  result = in_process(capsys, "export", "--run", ddsp_run[0], "--out", refit, "--prior-from",
                      dataset)
  assert result.returncode == 0, result.stderr
  # The same notes and encoder as at the end of training: the same prior.
  np.testing.assert_allclose(synthesizer.load(refit).latent_prior.scale,
                             synthesizer.load(ddsp_run[0]).latent_prior.scale, atol=1e-5)
  assert_refused(in_process(capsys, "export", "--run", tiny_run[0], "--out", tmp_path / "s",
                            "--prior-from", dataset), "only a ddsp generator")
  assert_refused(in_process(capsys, "export", "--run", ddsp_run[0], "--out", tmp_path / "m",
                            "--prior-from", tmp_path / "nowhere"), "nowhere")
  assert not (tmp_path / "s").exists() and not (tmp_path / "m").exists()


def test_apply_refuses_what_it_cannot_do(ddsp_run, tiny_run, tmp_path, run_here):
  out = ddsp_run[0]
  sf.write(tmp_path / "in.wav", np.zeros(100, np.float32), 16000)
  assert_refused(run_here("apply", tmp_path / "in.wav", "--effect", "hall", "--run", out),
                 "knows no effect 'hall'")
  assert_refused(run_here("apply", tmp_path / "in.wav", "--effect", "reverb", "--run",
                         tiny_run[0]), "learns no effect responses")
  (tmp_path / "bad.wav").write_bytes(b"not audio")
  assert_refused(run_here("apply", tmp_path / "bad.wav", "--effect", "reverb", "--run", out),
                 "not an audio file")
  assert_refused(run_here("apply", tmp_path / "in.wav", "--effect", "reverb", "--run", out,
                         "--out", tmp_path / "in.wav"), "is the input file")
  assert not (tmp_path / "in-reverb.wav").exists()


def test_train_without_a_config_picks_ddsp_on_a_machine_without_a_gpu(dataset, tmp_path):
  result = run_cli("train", "--data", dataset, "--out", tmp_path / "run", "--max-steps", 1,
                   "--no-progress", env={"CUDA_VISIBLE_DEVICES": ""})
  assert result.returncode == 0, result.stderr
  assert "config ddsp: the 16 kHz ddsp generator" in result.stderr
  assert "step 1 (jax)" in result.stdout  # The ddsp config trains on JAX.
