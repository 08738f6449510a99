"""The effect catalogue on real pedalboard: what each effect does to sound."""

import numpy as np
import pytest

from reverbsynth.data import effects
from reverbsynth.data.notes.note import NUM_SAMPLES, SAMPLE_RATE
from reverbsynth.errors import UserError

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
  ranges = {f"{s.type}.{k}": r for s in effect.plugins for k, r in s.ranges}
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
    ("convolution(ir=/nonexistent.wav)", "impulse response /nonexistent.wav does not exist"),
    ("reverb(room_size=5)", "effect 'reverb': room_size=5 is out of range; "
                            "the valid range of reverb room_size is 0..1"),
    ("hall(room_size=nan)", "effect 'hall': room_size=nan is out of range"),
    ("chorus+delay(feedback=1.5)", "effect 'delay': feedback=1.5 .* is 0..1"),
    ("compressor(ratio=0.5)", "ratio=0.5 .* compressor ratio is >= 1"),
    ("distortion(drive_db=inf)", "drive_db=inf .* is any finite number"),
    ("reverb(room_size=0.5..1.5)", "range room_size=0.5..1.5 is out of range; .* 0..1"),
    ("reverb(damping=0.9..0.1)", "range damping=0.9..0.1 is empty"),
    ("reverb(room_size=0.5,room_size=0.6)", "gives room_size twice"),
    ("reverb(ir=x.wav)", "effect 'reverb' has no parameter 'ir'"),
    ("reverb+", "a chain needs an effect on each side"),
])
def test_bad_effect_specs_say_what_is_valid(spec, message):
  with pytest.raises(UserError, match=message):
    effects.parse(spec)


def test_limits_cover_every_parameter_and_hold_the_randomize_ranges():
  assert effects.LIMITS.keys() == effects.TYPES.keys()
  for name, kind in effects.TYPES.items():
    assert effects.LIMITS[name].keys() == kind.ranges.keys()
    for param, (lo, hi) in kind.ranges.items():
      low, high = effects.LIMITS[name][param]
      assert low <= lo <= hi <= high, (name, param)


def test_every_value_at_a_limit_gives_finite_sound():
  sine = (0.5 * np.sin(2 * np.pi * 220 * np.arange(NUM_SAMPLES) / SAMPLE_RATE)).astype(np.float32)
  for name, limits in effects.LIMITS.items():
    for param, bounds in limits.items():
      for value in filter(np.isfinite, bounds):
        effect = effects.parse(f"{'plate' if name == 'convolution' else name}({param}={value})")
        assert np.isfinite(effect.apply(sine, effect.params())).all(), (name, param, value)


def test_a_range_in_a_spec_is_what_randomize_draws_from():
  effect = effects.parse("hall(damping=0.2..0.4)")
  stage = effect.plugins[0]
  assert dict(stage.ranges)["damping"] == (0.2, 0.4)
  assert dict(stage.params)["damping"] == pytest.approx(0.3)  # The middle, without --randomize.
  assert "damping" not in stage.fixed
  damping = effect.param_names().index("reverb.damping")
  drawn = [effect.params(randomize=True, key=str(i))[damping] for i in range(20)]
  assert all(0.2 <= d <= 0.4 for d in drawn) and len(set(drawn)) == 20


def _write_presets(folder, text):
  path = folder / "effects.yaml"
  path.write_text(text)
  return path


@pytest.mark.parametrize("text, message", [
    ("wide: {type: reverb, params: {room_size: 1.5}}",
     "preset 'wide' in .*effects.yaml: room_size=1.5 is out of range; .* is 0..1"),
    ("wide: {type: reverb, ranges: {width: [0.5, 2]}}",
     "preset 'wide' in .*: range width=0.5..2 is out of range"),
    ("wide: {type: reverb, ranges: {width: 0.5}}", "write the range of width as \\[low, high\\]"),
    ("wide: {type: reverb, params: {size: 1}}", "preset 'wide' .* has no parameter 'size'"),
    ("wide: {type: echo}", "preset 'wide' .* needs a type, one of reverb"),
    ("wide: [", "cannot read effect presets"),
])
def test_bad_presets_are_refused_with_their_name_and_file(tmp_path, text, message):
  path = _write_presets(tmp_path, text)
  with pytest.raises(UserError, match=message):
    effects.load_presets(path)


def _write_ir(path):
  import soundfile as sf
  ir = np.zeros(800, np.float32)
  ir[0] = 1.0
  path.parent.mkdir(parents=True, exist_ok=True)
  sf.write(path, ir, SAMPLE_RATE)


def test_a_presets_impulse_response_resolves_against_its_preset_file(tmp_path, monkeypatch):
  _write_ir(tmp_path / "presets" / "irs" / "room.wav")
  path = _write_presets(tmp_path / "presets",
                        "mine: {type: convolution, impulse_response: irs/room.wav}")
  monkeypatch.chdir(tmp_path)  # Not where the preset file is.
  stage = effects.parse("mine", effects.load_presets(path)).plugins[0]
  assert stage.impulse_response_path == str(tmp_path / "presets" / "irs" / "room.wav")


def test_an_impulse_response_on_the_command_line_resolves_against_the_working_directory(
    tmp_path, monkeypatch):
  _write_ir(tmp_path / "work" / "room.wav")
  _write_ir(tmp_path / "home" / "hall.wav")
  monkeypatch.chdir(tmp_path / "work")
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  relative = effects.parse("convolution(ir=room.wav)").plugins[0]
  assert relative.impulse_response_path == str(tmp_path / "work" / "room.wav")
  home = effects.parse("plate(ir=~/hall.wav)").plugins[0]
  assert home.impulse_response_path == str(tmp_path / "home" / "hall.wav")


@pytest.mark.parametrize("content, message", [
    (b"not a wav file", "cannot read impulse response"),
    (None, "is empty, silent or not finite"),
])
def test_unusable_impulse_responses_are_refused(tmp_path, content, message):
  import soundfile as sf
  path = tmp_path / "ir.wav"
  if content is None:
    sf.write(path, np.zeros(800, np.float32), SAMPLE_RATE)
  else:
    path.write_bytes(content)
  with pytest.raises(UserError, match=message):
    effects.parse(f"convolution(ir={path})")
