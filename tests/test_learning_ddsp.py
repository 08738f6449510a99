"""The ddsp generator learns: on a toy set of two pitches three octaves apart (MIDI 48 and 84),
short plucks (0.15 s in a 0.256 s window) of two instrument families, a bright one
(harmonics 2-4 at 0.6-0.8^k of the fundamental) and a dark one (near-sine), at velocities 25
and 127 (14 dB apart), dry and through a long reverb, a seeded, deterministic run
conditioned on pitch, effect, family and velocity must play the pluck at the asked pitch
and fall silent after it when dry, let the reverb label ring on where the dry one is quiet
(about as loud as the real wet notes: the effect's learned response), make the bright
family's notes brighter than the dark family's and velocity 127's louder than 25's, from
latents of its prior (which know neither family nor velocity: the labels must).

Measured on this run (2026-12-08, 2 cores): pitch margins 57-88 dB (20 asked), dry tails
under -86 dB, wet tails -4.7 and -8.5 dB against the real -7.0; the bright family 9.8-14.6 dB
brighter than the dark one (5 asked; real: about 40 dB), velocity 127 12-20 dB louder than
25 (4 asked; real 14). Broken on purpose once (the same day): with the family and velocity
inputs cut from the generator (zeros in their place, in training and in playing) every
family and velocity played the same colour and level (0.0 dB apart) and the pitch-48
margin fell to 15.7 dB. The pitch and effect labels were each cut once on the earlier toy
of one family (2026-12-04): the pitch margin and the tail test failed.
"""

import numpy as np
import pytest
from conftest import _metadata, run_cli, write_nsynth_tfrecord
from test_learning import PITCHES, PLUCK, SAMPLE_RATE, WINDOW, _pluck

from reverbsynth.data import records
from reverbsynth.runs import config as config_lib
from reverbsynth.synthesis import synthesizer
from reverbsynth.training import loop as training

TAIL = slice(int(0.2 * SAMPLE_RATE), WINDOW)   # After the pluck (0.15 s) has died away.
HELD = slice(0, PLUCK)
FAMILIES = {"keyboard": (0.6, 0.7, 0.8), "flute": (0.0, 0.02, 0.05)}  # Brightness per program.
VELOCITIES = (25, 127)


@pytest.fixture(scope="module")
def families_toy(tmp_path_factory):
  """A dataset: 2 families x 3 programs x 2 pitches x 2 velocities x 2 takes, dry and
  through a long reverb, all in the training split."""
  root = tmp_path_factory.mktemp("families-toy")
  rng = np.random.default_rng(0)
  notes = [(_metadata(family, "synthetic", 10 * program + take, pitch, velocity, ()),
            _pluck(pitch, brightness, rng) * velocity / 127)
           for family, programs in FAMILIES.items()
           for program, brightness in enumerate(programs)
           for take in range(2) for pitch in PITCHES for velocity in VELOCITIES]
  write_nsynth_tfrecord(root / "toy.tfrecord", notes)
  result = run_cli("build-dataset", "--source", root / "toy.tfrecord", "--out", root / "ds",
                   "--effect", "reverb(room_size=0.9,wet_level=0.6)", "--valid-fraction", 0,
                   "--test-fraction", 0, "--no-progress")
  assert result.returncode == 0, result.stderr
  return root / "ds"


def _band_db(audio, f0, harmonics=(1,)):
  """Energy (dB) within a semitone of the harmonics of f0 over the pluck (Hann window), per
  note [N]."""
  spectrum = np.abs(np.fft.rfft(audio[:, HELD] * np.hanning(PLUCK), axis=1)) ** 2
  semitones = 12 * np.log2(np.maximum(np.fft.rfftfreq(PLUCK, 1 / SAMPLE_RATE), 1) / f0)
  near = np.any([np.abs(semitones - 12 * np.log2(k)) < 1 for k in harmonics], axis=0)
  return 10 * np.log10(spectrum[:, near].sum(1) + 1e-12)


def _tail_db(audio):
  """Energy of the tail against the pluck's, dB [N]."""
  energy = lambda part: np.sum(np.square(part, dtype=np.float64), axis=1) + 1e-12
  return 10 * np.log10(energy(audio[:, TAIL]) / energy(audio[:, HELD]))


def test_ddsp_generator_learns_pitch_effect_family_and_velocity(tmp_path, families_toy,
                                                                 monkeypatch):
  monkeypatch.setenv("REVERBSYNTH_NO_COST_CHECK", "1")
  config = config_lib.load("tiny-ddsp", [
      "train.deterministic=true", "name=toy-ddsp", f"audio.num_samples={WINDOW}",
      "model.start_shape=[8]", "model.num_levels=2", "ddsp.response_seconds=0.256",
      "ddsp.channels=32", "optimizer.learning_rate=0.002",
      "schedule.images_per_stage=4000", "schedule.batch_size=[16, 16]",
      f"train.sample_pitches={list(PITCHES)}", "train.xla=true",
      "model.conditions=[pitch, effect, family, velocity]"])
  run = tmp_path / "run"
  training.Trainer(config, str(families_toy), str(run)).train(3, progress=False)
  synth = synthesizer.load(run / "generator")
  assert synth.labels.families == ("flute", "keyboard") and synth.labels.velocities == VELOCITIES
  z = synth.latents(12, 0)
  f0 = [440 * 2 ** ((p - 69) / 12) for p in PITCHES]
  real = records.read_split(families_toy, "train", WINDOW)
  real_tail = {e: _tail_db(real["audio"][real["effect"] == e]).mean() for e in (0, 1)}
  play = lambda pitch, effect, family="keyboard", velocity=127: synth.audio(
      z, [pitch] * 12, [effect] * 12, families=[family] * 12, velocities=[velocity] * 12)
  report = {}
  for i, pitch in enumerate(PITCHES):
    dry, wet = play(pitch, "dry"), play(pitch, 1)
    margin = _band_db(dry, f0[i]) - _band_db(dry, f0[1 - i])
    assert (margin > 20).all(), (pitch, margin)
    # Dry: silent after the pluck, as the real dry notes are (their tail: real_tail[0] dB).
    assert (_tail_db(dry) < -30).all(), (pitch, _tail_db(dry), real_tail)
    # Wet: rings on where the dry note is silent, on average as loud as the real wet notes'
    # tail within 8 dB.
    assert (_tail_db(wet) > _tail_db(dry) + 20).all(), (pitch, _tail_db(wet), _tail_db(dry))
    assert abs(_tail_db(wet).mean() - real_tail[1]) < 8, (pitch, _tail_db(wet), real_tail)
    for family in FAMILIES:
      for velocity in VELOCITIES:
        note = play(pitch, "dry", family, velocity)
        report[pitch, family, velocity] = (
            (_band_db(note, f0[i], (2, 3, 4)) - _band_db(note, f0[i])).mean(),
            _band_db(note, f0[i], (1, 2, 3, 4)).mean())
  brightness = {k: round(v[0], 1) for k, v in report.items()}
  level = {k: round(v[1], 1) for k, v in report.items()}
  for pitch in PITCHES:
    for velocity in VELOCITIES:
      # Real: the bright family's harmonics 2-4 at -4 to -1 dB of its fundamental, the dark
      # family's under -26 dB.
      assert brightness[pitch, "keyboard", velocity] > brightness[pitch, "flute", velocity] + 5, \
          brightness
    for family in FAMILIES:
      # Real: velocity 127 is 14 dB louder than 25.
      assert level[pitch, family, 127] > level[pitch, family, 25] + 4, level
