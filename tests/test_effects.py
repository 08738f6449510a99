"""The effect catalogue on real pedalboard: what each effect does to sound."""

import numpy as np
import pytest

from reverbsynth import effects
from reverbsynth.errors import UserError
from reverbsynth.notes.note import NUM_SAMPLES, SAMPLE_RATE

SECOND = SAMPLE_RATE


def _apply(spec, audio):
  effect = effects.parse(spec)
  return effect.apply(audio.astype(np.float32), effect.params())


def _energy(x):
  return float(np.sum(np.square(x, dtype=np.float64)))


def test_reverb_rings_into_the_released_second(fixture_notes):
  for _, dry in fixture_notes:
    wet = _apply("reverb", dry)
    assert wet.shape == (NUM_SAMPLES,) and wet.dtype == np.float32
    # A larger share of the note's energy lies in the released last second...
    assert _energy(wet[-SECOND:]) / _energy(wet) >= _energy(dry[-SECOND:]) / _energy(dry)
    # ...and its end still rings where the dry note has died away.
    assert _energy(wet[-SECOND // 2:]) > 10 * _energy(dry[-SECOND // 2:]) + 1e-9


def test_delay_echoes_at_the_delay_time():
  burst = np.zeros(NUM_SAMPLES, np.float32)
  burst[1000:1160] = np.hanning(160)
  wet = _apply("delay(delay_seconds=0.25,feedback=0,mix=0.5)", burst)
  delay = int(0.25 * SAMPLE_RATE)
  echo = wet[1000 + delay:1160 + delay]
  assert _energy(echo) > 0.1 * _energy(burst)
  assert _energy(wet[1200:1000 + delay - 100]) < 1e-6 * _energy(burst)


def _harmonic_share(x, f0):
  spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
  bin_of = lambda f: int(round(f * len(x) / SAMPLE_RATE))
  fundamental = spectrum[bin_of(f0) - 2:bin_of(f0) + 3].sum()
  harmonics = sum(spectrum[bin_of(k * f0) - 2:bin_of(k * f0) + 3].sum() for k in range(2, 8))
  return harmonics / fundamental


def test_distortion_adds_harmonics():
  t = np.arange(NUM_SAMPLES) / SAMPLE_RATE
  sine = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
  wet = _apply("distortion", sine)
  assert _harmonic_share(wet, 220) > 100 * _harmonic_share(sine, 220) + 0.01
  assert np.abs(wet).max() < 1.0


@pytest.mark.parametrize("spec", ["chorus", "phaser", "compressor", "bitcrush",
                                  "ladder_filter", "plate", "room", "hall", "slapback"])
def test_every_preset_changes_the_note_and_stays_finite(fixture_notes, spec):
  _, dry = fixture_notes[2]
  wet = _apply(spec, dry)
  assert np.isfinite(wet).all()
  assert np.abs(wet - dry).max() > 1e-3
  assert np.abs(wet).max() < 1.0


def test_chain_applies_stages_in_order(fixture_notes):
  _, dry = fixture_notes[0]
  chain = effects.parse("reverb+delay")
  assert chain.param_names()[:1] == ["reverb.room_size"]
  assert chain.param_names()[-1] == "delay.mix"
  by_hand = _apply("delay", _apply("reverb", dry))
  np.testing.assert_allclose(chain.apply(dry, chain.params()), by_hand, atol=1e-6)


def test_randomized_params_are_seeded_per_note_and_within_range():
  effect = effects.parse("reverb(room_size=0.9)+delay")
  a = effect.params(randomize=True, seed=1, key="note-a")
  np.testing.assert_array_equal(a, effect.params(randomize=True, seed=1, key="note-a"))
  assert not np.array_equal(a, effect.params(randomize=True, seed=2, key="note-a"))
  assert not np.array_equal(a, effect.params(randomize=True, seed=1, key="note-b"))
  names = effect.param_names()
  assert a[names.index("reverb.room_size")] == pytest.approx(0.9)  # Fixed stays fixed.
  ranges = {f"{s.type}.{k}": r for s in effect.stages for k, r in s.ranges}
  for name, value in zip(names, a):
    lo, hi = ranges[name]
    assert lo <= value <= hi or name == "reverb.room_size"


def test_convolution_reads_a_user_impulse_response(tmp_path, fixture_notes):
  import soundfile as sf
  ir = np.zeros(8000, np.float32)
  ir[0], ir[4000] = 1.0, 0.5  # Direct sound and one reflection at 0.25 s.
  sf.write(tmp_path / "ir.wav", ir, 32000)  # Resampled to 16 kHz on read.
  effect = effects.parse(f"convolution(ir={tmp_path / 'ir.wav'},mix=1)")
  burst = np.zeros(NUM_SAMPLES, np.float32)
  burst[100:120] = 1.0
  wet = effect.apply(burst, effect.params())
  peak_region = np.abs(wet[2000 + 60:2000 + 180]).max()
  assert peak_region > 0.2 * np.abs(wet[60:180]).max()


@pytest.mark.parametrize("spec, message", [
    ("reverbb", "unknown effect 'reverbb'; valid: .*bitcrush.*reverb"),
    ("reverb(size=1)", "no parameter 'size'; valid: room_size"),
    ("reverb(room_size=big)", "not a number"),
    ("reverb+reverb", "one type twice"),
    ("convolution(ir=/nonexistent.wav)", "cannot read impulse response"),
])
def test_bad_effect_specs_say_what_is_valid(spec, message):
  with pytest.raises(UserError, match=message):
    effects.parse(spec)
