"""Conditions beyond pitch and effect (model.conditions: instrument family, velocity): their
vocabularies and prior from a real multi-family SoundFont build, the config's checks, and
`generate` and `render` of a tiny ddsp run conditioned on them (each MIDI track played as
its General MIDI program's family, or the nearest one the model has)."""

import json
import re

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from reverbsynth.data import manifest as manifest_lib
from reverbsynth.data.labels import Labels, label_prior
from reverbsynth.data.notes.note import FAMILIES
from reverbsynth.errors import UserError
from reverbsynth.evaluation import judge as classifier
from reverbsynth.runs import config as config_lib
from reverbsynth.synthesis import songs, synthesizer
from tests.conftest import assert_refused, run_cli

CONDITIONS = "model.conditions=[pitch, effect, family, velocity]"


@pytest.fixture(scope="module")
def families_data(tmp_path_factory):
  """The SoundFont's bass and keyboard programs at MIDI 40-41, velocities 25 and 127, 10
  notes of each family (seed 0), dry and reverb, 40 % of them held out."""
  out = tmp_path_factory.mktemp("families") / "ds"
  result = run_cli("build-dataset", "--out", out, "--no-progress", "--family", "bass",
                   "--family", "keyboard", "--pitch-min", 40, "--pitch-max", 41, "--velocity",
                   25, "--velocity", 127, "--notes-per-family", 10, "--test-fraction", 0.4)
  assert result.returncode == 0, result.stderr
  return out


@pytest.fixture(scope="module")
def families_run(tmp_path_factory, families_data):
  """A tiny-ddsp run conditioned on family and velocity, one stage."""
  out = tmp_path_factory.mktemp("families-run") / "run"
  result = run_cli("train", "--config", "tiny-ddsp", "--data", families_data, "--out", out,
                   "--stages", 1, "--no-progress", CONDITIONS)
  assert result.returncode == 0, result.stderr
  return out


def test_vocabularies_and_prior_come_from_the_training_split(families_data):
  manifest = manifest_lib.read(families_data)
  labels = Labels.from_manifest(manifest, 24, 61, ("pitch", "effect", "family", "velocity"))
  assert labels.families == ("bass", "keyboard") and labels.velocities == (25, 127)
  assert labels.conditions == ("pitch", "effect", "family", "velocity")
  assert labels.sizes == (61, 2, 2, 2)
  priors = label_prior(manifest, labels)
  train = manifest["counts"]["per_split"]["train"]
  families = np.array([train["per_family"][f] for f in labels.families], float)
  np.testing.assert_allclose(priors[2], families / families.sum())
  assert [p.shape for p in priors] == [(61,), (2,), (2,), (2,)]
  # Pitch and effect only: the manifest's families are not labels.
  assert Labels.from_manifest(manifest, 24, 61).conditions == ("pitch", "effect")
  del train["per_family"]  # A manifest from before the family counts.
  with pytest.raises(UserError, match="no family counts .* rebuild it"):
    Labels.from_manifest(manifest, 24, 61, ("pitch", "effect", "family"))


def test_a_velocity_plays_the_nearest_velocity_label():
  labels = Labels(24, 61, ("dry",), velocities=(25, 127))
  assert labels.velocity_ids([1, 60, 76, 77, 127]).tolist() == [0, 0, 0, 1, 1]  # 76: a tie.
  one_hots = Labels(24, 61, ("dry",), families=("bass", "flute"),
                    velocities=(25, 127)).attribute_one_hots(["flute", "bass"], [100, 30])
  assert [o.tolist() for o in one_hots] == [[[0, 1], [1, 0]], [[0, 1], [1, 0]]]


@pytest.mark.parametrize("conditions, message", [
    ("[effect, pitch]", "must be pitch, effect, then any of family, velocity"),
    ("[pitch, effect, family, family]", "(each once)"),
    ("[pitch, effect, timbre]", "must be pitch, effect"),
])
def test_conditions_are_checked(conditions, message):
  with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
    config_lib.load("tiny-ddsp", [f"model.conditions={conditions}"])


def test_the_progressive_generator_refuses_families():
  with pytest.raises(UserError, match="need model.generator ddsp"):
    config_lib.load("tiny", ["model.conditions=[pitch, effect, family]"])


def test_every_family_has_every_other_as_a_stand_in_and_programs_map_to_families():
  for family, stand_ins in songs.NEAREST_FAMILIES.items():
    assert sorted(stand_ins) == sorted(set(FAMILIES) - {family})
  assert songs.program_family(38) == "bass" and songs.program_family(0) == "keyboard"
  assert songs.program_family(88) == "string"      # A pad: no family; its block's.
  assert songs.program_family(47) == "mallet"      # Timpani, as the SoundFont notes say.
  assert songs.nearest_family("flute", ("bass", "keyboard")) == "keyboard"
  assert songs.nearest_family("bass", ("bass", "keyboard")) == "bass"


def test_generate_plays_each_family_and_names_the_files(tmp_path, families_run, run_here):
  result = run_here("generate", "--run", families_run, "--family", "keyboard", "--family",
                   "bass", "--pitch", 40, "--effect", "reverb", "--velocity", 30,
                   "--out", tmp_path / "notes")
  assert result.returncode == 0, result.stderr
  assert "2 families x 1 pitches" in result.stdout
  keyboard, rate = sf.read(tmp_path / "notes" / "keyboard-40-reverb-v30-z0.wav")
  bass, _ = sf.read(tmp_path / "notes" / "bass-40-reverb-v30-z0.wav")
  assert rate == 16000 and np.abs(keyboard - bass).max() > 1e-4  # The label changes the note.
  assert_refused(run_here("generate", "--run", families_run, "--family", "flute",
                          "--out", tmp_path / "x"),
                 "the model knows no family 'flute'; it was trained on bass, keyboard")
  # The shipped model has no family condition.
  assert_refused(run_here("generate", "--family", "bass", "--out", tmp_path / "y"),
                 "not conditioned on the instrument family")


def _song(path):
  song = pretty_midi.PrettyMIDI(initial_tempo=120)
  for program, name in ((33, "Bass"), (4, "Piano"), (73, "Flute"), (89, "Pad")):
    track = pretty_midi.Instrument(program, name=name)
    track.notes = [pretty_midi.Note(v, 45, 0.5 * i, 0.5 * i + 0.4)
                   for i, v in enumerate((30, 120))]
    song.instruments.append(track)
  song.write(str(path))
  return path


def test_render_plays_each_track_as_its_programs_family(tmp_path, families_run, run_here):
  song = _song(tmp_path / "song.mid")
  result = run_here("render", song, "--run", families_run, "--out", tmp_path / "a.wav",
                    "--family", "Pad=bass", "--no-progress")
  assert result.returncode == 0, result.stderr
  assert "'Bass' (Electric Bass (finger), 2 notes): reverb, bass (program)" in result.stdout
  assert "'Piano' (Electric Piano 1, 2 notes): reverb, keyboard (program)" in result.stdout
  assert ("'Flute' (Flute, 2 notes): reverb, keyboard (the model has no flute: nearest)"
          in result.stdout)
  assert "'Pad' (Pad 2 (warm), 2 notes): reverb, bass (--family)" in result.stdout
  # Each track (its own latent) at two velocity labels (30 -> 25, 120 -> 127).
  assert "8 unique notes generated" in result.stdout
  assert_refused(run_here("render", song, "--run", families_run, "--family", "Bass=flute",
                          "--out", tmp_path / "c.wav"),
                 "--family Bass=flute: the model knows no family 'flute'")
  assert_refused(run_here("render", song, "--run", families_run, "--family", "Oboe=bass",
                          "--out", tmp_path / "d.wav"), "no track is 'Oboe'")
  assert not (tmp_path / "c.wav").exists() and not (tmp_path / "d.wav").exists()


def test_a_track_plays_its_family_and_velocity_label(tmp_path, families_run):
  """A rendered note is the synthesizer's note of its track's family and its velocity label,
  scaled from that label's velocity to the note's."""
  synth = synthesizer.load(families_run)
  tracks = songs.read(_song(tmp_path / "song.mid"))[:1]  # The bass: velocity 30, then 120.
  plan = songs.plan_effects((), tracks, synth.labels.effects, "reverb")
  audio, _ = songs.render(synth, tracks, plan,
                          families=songs.plan_families((), tracks, synth.labels.families))
  note = synth.audio(synth.latents(1, 0), [45], ["reverb"], families=["bass"],
                     velocities=[25])[0]
  expected = songs.shape_note(note, synth.held_samples, round(0.4 * 16000), 16000)
  gain = synthesizer.velocity_gains(synth, [30])[0]
  assert gain == pytest.approx((30 / 25) ** 2)
  np.testing.assert_allclose(audio[:7000], gain * expected[:7000], atol=1e-5)  # Before 0.5 s.


def test_evaluate_reports_family_accuracy_and_how_notes_follow_velocity(
    tmp_path, families_run, families_data, run_here, monkeypatch):
  monkeypatch.setattr(classifier, "MIN_STEPS", 30)  # What is reported, not how well it judges.
  result = run_here("evaluate", "--run", families_run, "--data", families_data, "--out",
                    tmp_path / "report", "--classifier-epochs", 1, "--ndb-bins", 2,
                    "--reference-notes", 10, "--no-progress")
  assert result.returncode == 0, result.stderr
  assert "family acc." in result.stdout and "level ~ velocity" in result.stdout
  assert re.search(r"judge held-out accuracy: pitch [\d.]+%, effect [\d.]+%, family "
                   r"[\d.]+%, velocity [\d.]+%", result.stdout), result.stdout
  rows = json.loads((tmp_path / "report" / "report.json").read_text())["rows"]
  real = rows["real (test split)"]
  assert 0 <= real["family_accuracy"] <= 1 and 0 <= real["velocity_accuracy"] <= 1
  # TimGM6mb's velocity layers change a note's level (about 28 dB over 25..127).
  assert real["level_follows_velocity"] > 0.8, real
  assert set(real["family_brightness"]) == {"bass", "keyboard"}
