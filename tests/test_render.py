"""`generate` and `render`: real MIDI files (pretty_midi, mido) played by a trained tiny run."""

import json
import re
import shutil
import struct
import time

import mido
import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from reverbsynth import cli
from reverbsynth.runs import files
from reverbsynth.synthesis import outputs, songs, synthesizer
from tests.conftest import assert_refused

RATE = 16000


def write_midi(path, tracks, tempo=120.0):
  """tracks: [(program, is_drum, name, [(pitch, start s, end s, velocity)])]."""
  song = pretty_midi.PrettyMIDI(initial_tempo=tempo)
  for program, is_drum, name, notes in tracks:
    inst = pretty_midi.Instrument(program, is_drum=is_drum, name=name)
    inst.notes = [pretty_midi.Note(v, p, s, e) for p, s, e, v in notes]
    song.instruments.append(inst)
  song.write(str(path))
  return path


@pytest.fixture(scope="module")
def synth(tiny_run):
  return synthesizer.load(tiny_run[0])


def _expected(synth, placements, seed=0):
  """The song built by hand: [(track number, pitch, effect, start s, length s, velocity)]."""
  latents = synth.latents(max(p[0] for p in placements), seed)
  held = synth.held_samples
  starts = [round(p[3] * RATE) for p in placements]
  lengths = [round(p[4] * RATE) for p in placements]
  song = np.zeros(max(s + n for s, n in zip(starts, lengths)) + synth.num_samples, np.float32)
  for (track, pitch, effect, _, _, velocity), start, length in zip(placements, starts, lengths):
    note = synth.audio(latents[[track - 1]], [pitch], [effect])[0]
    sound = songs.shape_note(note, held, length, RATE) * (velocity / 127) ** 2
    song[start:start + len(sound)] += sound
  return song[:np.flatnonzero(song)[-1] + 1]


def test_notes_land_on_their_samples_across_a_tempo_change(tmp_path, synth):
  # 120 bpm for two beats, then 60 bpm: ticks 0, 480, 1440, 1920 are 0, 0.5, 2.0 and 3.0 s.
  mid = mido.MidiFile(ticks_per_beat=480)
  meta, notes = mido.MidiTrack(), mido.MidiTrack()
  meta += [mido.MetaMessage("set_tempo", tempo=500000, time=0),
           mido.MetaMessage("set_tempo", tempo=1000000, time=960)]
  notes.append(mido.Message("program_change", program=33, time=0))
  previous = 0
  for tick in (0, 480, 1440, 1920):
    notes.append(mido.Message("note_on", note=40, velocity=100, time=tick - previous))
    notes.append(mido.Message("note_off", note=40, velocity=0, time=240))
    previous = tick + 240
  mid.tracks += [meta, notes]
  mid.save(tmp_path / "tempo.mid")
  tracks = songs.read(tmp_path / "tempo.mid")
  song, summary = songs.render(synth, tracks, {t.number: "reverb" for t in tracks})
  expected = _expected(synth, [(1, 40, "reverb", 0.0, 0.25, 100), (1, 40, "reverb", 0.5, 0.25, 100),
                               (1, 40, "reverb", 2.0, 0.5, 100), (1, 40, "reverb", 3.0, 0.5, 100)])
  tail = (synth.num_samples - synth.held_samples) / RATE
  assert 3.5 + tail - songs.SEARCH_SECONDS <= len(song) / RATE <= 3.5 + tail + songs.SEARCH_SECONDS
  np.testing.assert_allclose(song, expected, atol=1e-5)
  assert (summary.notes, summary.unique) == (4, 1)
  assert np.flatnonzero(song)[0] == 0 and np.abs(song[2 * RATE - 40:2 * RATE]).max() == 0


def test_per_track_effects_velocity_octaves_and_drums(tmp_path, synth):
  path = write_midi(tmp_path / "band.mid", [
      (33, False, "Bass", [(40, 0.0, 0.3, 120), (40, 1.0, 1.3, 30), (12, 2.0, 2.1, 100)]),
      (0, False, "Lead", [(100, 0.5, 0.6, 100), (60, 1.5, 1.7, 64)]),
      (0, True, "Drums", [(36, 0.0, 0.1, 100), (38, 0.5, 0.6, 100)])])
  tracks = songs.read(path)
  plan = songs.plan_effects(["dry", "bass=reverb"], tracks, synth.labels.effects, "reverb")
  assert plan == {1: "reverb", 2: "dry", 3: "dry"}
  counted = []
  generate = synth.audio
  synth.audio = lambda z, p, e, **labels: counted.append(len(z)) or generate(z, p, e, **labels)
  try:
    song, summary = songs.render(synth, tracks, plan)
  finally:
    del synth.audio
  # 12 -> 24 and 100 -> 88 -> 76: moved by octaves, reported. The bass's two E2s are one note.
  assert (summary.transposed, summary.skipped, summary.notes) == (2, 2, 5)
  assert summary.unique == sum(counted) == 4
  expected = _expected(synth, [(1, 40, "reverb", 0.0, 0.3, 120), (1, 40, "reverb", 1.0, 0.3, 30),
                               (1, 24, "reverb", 2.0, 0.1, 100), (2, 76, "dry", 0.5, 0.1, 100),
                               (2, 60, "dry", 1.5, 0.2, 64)])
  np.testing.assert_allclose(song, expected, atol=1e-5)
  loud, soft = song[:int(0.3 * RATE)], song[RATE:int(1.3 * RATE)]
  np.testing.assert_allclose(np.abs(loud).max() / np.abs(soft).max(), (120 / 30) ** 2, rtol=1e-4)
  with_drums, summary = songs.render(synth, tracks, plan, drums=True)
  assert (summary.notes, summary.skipped) == (7, 0) and not np.allclose(with_drums, song)


def test_long_notes_sustain_without_gaps_and_short_notes_release():
  t = np.arange(4 * RATE) / RATE
  note = (0.5 * np.sin(2 * np.pi * 113.3 * t)).astype(np.float32)  # No whole periods in a loop.
  note[3 * RATE:] *= np.exp(-5 * t[:RATE])                  # Released after 3 s of 4.
  long = songs.shape_note(note, 3 * RATE, 7 * RATE, RATE)      # 7 s held.
  assert abs(len(long) - 8 * RATE) <= songs.SEARCH_SECONDS * RATE
  frames = long[:7 * RATE].reshape(-1, RATE // 100)           # 10 ms frames.
  rms = np.sqrt(np.mean(frames ** 2, axis=1))
  assert rms.min() > 0.6 * rms.max()                          # No gap, no dip.
  assert np.abs(np.diff(long)).max() < 4 * np.abs(np.diff(note)).max()  # No click.
  short = songs.shape_note(note, 3 * RATE, RATE // 10, RATE)   # 100 ms: cut, then the release.
  assert abs(len(short) - (RATE // 10 + RATE)) <= songs.SEARCH_SECONDS * RATE
  assert np.abs(short[-10:]).max() < 1e-3                     # Faded to silence at the end.


def test_render_cli_is_deterministic_never_clips_and_reports(tmp_path, tiny_run, run_here):
  chord = [(p, 0.1 * i, 2.0, 127) for i, p in enumerate((36, 40, 43, 48, 52, 55))]
  path = write_midi(tmp_path / "chord.mid", [(33, False, "Bass", chord),
                                              (0, True, "Drums", [(36, 0.0, 0.1, 90)])])
  run = str(tiny_run[0])
  result = run_here("render", path, "--run", run, "--no-progress", "--bits", "24")
  assert result.returncode == 0, result.stderr
  assert "6 notes played, 6 unique notes generated, 0 transposed by octaves, 1 drum notes " \
         "skipped" in result.stdout and "skipped (drums" in result.stdout
  first, rate = sf.read(tmp_path / "chord.wav")
  assert (tmp_path / "chord.wav").stat().st_mode & 0o044 == 0o044  # Readable like any file.
  assert sf.info(tmp_path / "chord.wav").subtype == "PCM_24" and rate == RATE
  assert np.abs(first).max() <= outputs.PEAK + 1e-6 and np.abs(first).max() > 0.5
  again = run_here("render", path, "--run", run, "--no-progress", "--out", tmp_path / "a.wav",
                  "--bits", "24")
  other = run_here("render", path, "--run", run, "--no-progress", "--out", tmp_path / "b.wav",
                  "--bits", "24", "--seed", 1)
  assert again.returncode == other.returncode == 0
  assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "chord.wav").read_bytes()
  other_song = sf.read(tmp_path / "b.wav")[0]
  assert len(other_song) != len(first) or not np.allclose(other_song, first)
  resampled = run_here("render", path, "--run", run, "--no-progress", "--out", tmp_path / "c.wav",
                      "--sample-rate", 44100, "--png")
  assert resampled.returncode == 0, resampled.stderr
  audio, rate = sf.read(tmp_path / "c.wav")
  assert rate == 44100 and abs(len(audio) / rate - len(first) / RATE) < 0.01
  assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_generate_cli_writes_the_grid_and_reuses_latents(tmp_path, tiny_run, run_here):
  run = str(tiny_run[0])
  result = run_here("generate", "--run", run, "--pitch", 40, "--pitch", 52, "--effect", "reverb",
                   "--seed", 1, "--seed", 2, "--interpolate", 4, "--save-latents",
                   tmp_path / "z.npy", "--out", tmp_path / "notes", "--bits", 16)
  assert result.returncode == 0, result.stderr
  wavs = sorted(p.name for p in (tmp_path / "notes").glob("*.wav"))
  assert wavs == [f"{p}-reverb-v100-z{i}.wav" for p in (40, 52) for i in range(4)]
  assert sf.info(tmp_path / "notes" / wavs[0]).subtype == "PCM_16"
  z = np.load(tmp_path / "z.npy")
  synth = synthesizer.load(run)
  np.testing.assert_allclose(z[[0, -1]], np.concatenate([synth.latents(1, 1),
                                                         synth.latents(1, 2)]), atol=1e-6)
  norms = np.linalg.norm(z, axis=1)
  assert np.all(norms[1:-1] > np.minimum(norms[0], norms[-1]) * 0.9)  # Along the sphere.
  # The same grid again (one peak gain for all its notes), its latents from the file.
  result = run_here("generate", "--run", run, "--pitch", 40, "--pitch", 52, "--effect", "reverb",
                   "--latents", tmp_path / "z.npy", "--out", tmp_path / "again", "--bits", 16,
                   "--png")
  assert result.returncode == 0, result.stderr
  for i in range(4):  # Other batches round differently: within one 16-bit step.
    np.testing.assert_allclose(sf.read(tmp_path / "again" / f"52-reverb-v100-z{i}.wav")[0],
                               sf.read(tmp_path / "notes" / f"52-reverb-v100-z{i}.wav")[0],
                               atol=1.01 / 2 ** 15)
  assert (tmp_path / "again" / "52-reverb-v100-z0.png").is_file()


def test_bad_inputs_fail_with_one_line_and_leave_nothing(tmp_path, tiny_run, run_here):
  run = str(tiny_run[0])
  (tmp_path / "notes.mid").write_text("not a midi file")
  empty = write_midi(tmp_path / "empty.mid", [(33, False, "Bass", [])])
  drums = write_midi(tmp_path / "drums.mid", [(0, True, "Drums", [(36, 0.0, 0.1, 100)])])
  good = write_midi(tmp_path / "good.mid", [(33, False, "Bass", [(40, 0.0, 0.5, 100)])])
  assert_refused(run_here("render", tmp_path / "notes.mid", "--run", run), "is not a readable MIDI")
  assert_refused(run_here("render", empty, "--run", run), "holds no notes")
  assert_refused(run_here("render", drums, "--run", run), "only drum tracks: give --drums")
  assert_refused(run_here("render", good, "--run", tmp_path / "nowhere"),
           "holds no exported generator")
  assert_refused(run_here("render", good, "--run", run, "--effect", "chorus"),
           "not trained on effect 'chorus'; it knows dry, reverb")
  assert_refused(run_here("render", good, "--run", run, "--effect", "piano=dry"),
           "no track is 'piano'; the tracks are 1 'Bass'")
  broken = tmp_path / "broken" / "generator"
  broken.mkdir(parents=True)
  (broken / "generator.json").write_text((tiny_run[0] / "generator" / "generator.json").read_text())
  assert_refused(run_here("render", good, "--run", broken.parent), "is incomplete or damaged")
  np.save(tmp_path / "z.npy", np.zeros((2, 7), np.float32))
  assert_refused(run_here("generate", "--run", run, "--latents", tmp_path / "z.npy", "--out",
                   tmp_path / "out"), "shape (2, 7); the run needs latents of shape [N, 16]")
  assert_refused(run_here("generate", "--run", run, "--pitch", 100, "--out", tmp_path / "out"),
           "pitch 100 is outside the model's range 24..84")
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      "broken", "drums.mid", "empty.mid", "good.mid", "notes.mid", "z.npy"]


def test_the_example_song_is_what_its_script_writes(tmp_path):
  import runpy
  script = runpy.run_path("examples/write_example.py")
  script["main"](str(tmp_path / "bassline.mid"))
  assert (tmp_path / "bassline.mid").read_bytes() == open("examples/bassline.mid", "rb").read()
  tracks = songs.read("examples/bassline.mid")
  assert [t.is_drum for t in tracks] == [False, False, True]
  assert max(n.end - n.start for n in tracks[1].notes) > 3.0  # Sustained past the hold.


def test_without_run_the_latest_exported_run_plays_else_the_shipped_model(tmp_path, tiny_run,
                                                                         home, run_here,
                                                                         monkeypatch):
  song = write_midi(tmp_path / "one.mid", [(33, False, "Bass", [(40, 0.0, 0.5, 100)])])
  monkeypatch.setenv("REVERBSYNTH_PRETRAINED", "")
  assert_refused(run_here("render", song, "--no-progress"), "no trained run under")
  shipped = tmp_path / "shipped"
  result = run_here("export", "--run", tiny_run[0], "--out", shipped)
  assert result.returncode == 0, result.stderr
  h5 = (tiny_run[0] / "generator" / "generator.weights.h5").stat().st_size
  assert (shipped / files.COMPACT_WEIGHTS).stat().st_size < 0.6 * h5  # float16.
  monkeypatch.setenv("REVERBSYNTH_PRETRAINED", str(shipped))
  result = run_here("render", song, "--no-progress", "--out", tmp_path / "shipped.wav")
  assert result.returncode == 0, result.stderr
  assert "playing the generator of the model shipped with reverbsynth" in result.stderr
  assert run_here("render", song, "--no-progress", "--run", tiny_run[0], "--out",
                    tmp_path / "run.wav").returncode == 0
  played, full = sf.read(tmp_path / "shipped.wav")[0], sf.read(tmp_path / "run.wav")[0]
  assert np.corrcoef(played, full)[0, 1] > 0.99  # The same notes from float16 weights.
  assert not np.array_equal(played, full)
  shutil.copytree(tiny_run[0] / "generator", home / "runs" / "tiny-fixture" / "generator")
  result = run_here("render", song, "--no-progress")
  assert result.returncode == 0, result.stderr
  assert f"playing the generator of {home / 'runs' / 'tiny-fixture'}" in result.stderr
  assert (tmp_path / "one.wav").is_file()


def relabelled(tmp_path, tiny_run, effects):
  """A copy of the tiny run's generator whose two effect labels are renamed to `effects`."""
  out = tmp_path / "relabelled"
  shutil.copytree(tiny_run[0] / "generator", out / "generator")
  path = out / "generator" / "generator.json"
  info = json.loads(path.read_text())
  info["labels"]["effects"] = effects
  path.write_text(json.dumps(info))
  return out


def test_effects_with_parameters_are_chosen_per_song_and_per_track(tmp_path, tiny_run, capsys):
  hall = "hall(room_size=0.95)"
  assert songs.split_effect_spec(f"bass={hall}") == ("bass", hall)
  assert songs.split_effect_spec(hall) == ("", hall)
  assert songs.split_effect_spec(f"Electric Bass (finger)={hall}") == ("Electric Bass (finger)",
                                                                      hall)
  run = relabelled(tmp_path, tiny_run, ["dry", hall])
  song = write_midi(tmp_path / "band.mid", [(33, False, "Bass", [(40, 0.0, 0.5, 100)]),
                                             (0, False, "Lead", [(60, 0.0, 0.5, 100)])])
  for specs, bass, lead in [([hall], hall, hall), (["dry", f"bass={hall}"], hall, "dry"),
                            (["dry", f"Electric Bass (finger)={hall}"], hall, "dry"),
                            ([f"2={hall}", "1=dry"], "dry", hall)]:
    args = [a for spec in specs for a in ("--effect", spec)]
    assert cli.run(["render", str(song), "--run", str(run), "--no-progress", *args]) == 0
    out = capsys.readouterr().out
    assert f"track 1 'Bass' (Electric Bass (finger), 1 notes): {bass}\n" in out, out
    assert f"track 2 'Lead' (Acoustic Grand Piano, 1 notes): {lead}\n" in out, out


def test_generate_file_names_are_safe_and_distinct_and_out_expands_home(tmp_path, tiny_run,
                                                                        monkeypatch, capsys):
  labels = ["convolution(ir=/abs/x.wav)", "convolution(ir=/abs-x.wav)"]
  run = relabelled(tmp_path, tiny_run, labels)
  monkeypatch.setenv("HOME", str(tmp_path / "user"))
  assert cli.run(["generate", "--run", str(run), "--pitch", "40", "--out", "~/notes"]) == 0
  notes = tmp_path / "user" / "notes"
  assert sorted(p.relative_to(notes).as_posix() for p in notes.rglob("*")) == [
      "40-convolution-ir-abs-x.wav-0-v100-z0.wav", "40-convolution-ir-abs-x.wav-1-v100-z0.wav"]
  assert f"2 notes (1 pitches x 2 effects x 1 velocities x 1 latents) in {notes}" in \
      capsys.readouterr().out


def test_song_picture_of_a_long_song_fits_a_screen(tmp_path, tiny_run, capsys):
  notes = [(40 + 5 * (i % 3), 2.0 * i, 2.0 * i + 1.0, 100) for i in range(90)]  # 3 minutes.
  song = write_midi(tmp_path / "long.mid", [(33, False, "Bass", notes)])
  assert cli.run(["render", str(song), "--run", str(tiny_run[0]), "--png"]) == 0
  png = (tmp_path / "long.png").read_bytes()
  width, height = struct.unpack(">II", png[16:24])  # The PNG header's IHDR chunk.
  assert 1000 <= width <= 2000 and height >= 600
  err = capsys.readouterr().err  # Not a terminal: one line for the phase, no bar.
  assert re.search(r"^generating: 3 notes in [\d.]+ s", err, re.M) and "\r" not in err


def test_a_model_below_16_khz_renders_at_16_khz_by_default(tmp_path, dataset, monkeypatch,
                                                            run_here):
  from reverbsynth.runs import config as config_lib
  from reverbsynth.training import loop as training
  monkeypatch.setenv("REVERBSYNTH_NO_COST_CHECK", "1")
  config = config_lib.load("tiny", ["audio.sample_rate=8000", "audio.num_samples=2048",
                                    "spectral.nfft=128", "spectral.hop=64",
                                    "model.start_shape=[8, 16]"])
  training.Trainer(config, str(dataset), str(tmp_path / "run")).train(1, progress=False)
  path = write_midi(tmp_path / "two.mid", [(33, False, "Bass", [(40, 0.0, 0.5, 100),
                                                                (45, 0.5, 1.0, 100)])])
  for given, expected in ((None, RATE), (8000, 8000)):
    out = tmp_path / f"two-{expected}.wav"
    result = run_here("render", path, "--run", tmp_path / "run", "--no-progress", "--out", out,
                     *(["--sample-rate", given] if given else []))
    assert result.returncode == 0, result.stderr
    audio, rate = sf.read(out)
    assert rate == expected and 1.0 < len(audio) / rate < 2.0


def test_the_same_audio_gives_the_same_wav_bytes(tmp_path):
  # A float WAV's PEAK chunk holds the time it was written (libsndfile), so the same song
  # written a second later differed in its header; write_wav leaves the chunk out.
  audio = np.sin(np.arange(1600) / 10).astype(np.float32) * 0.5
  for bits in ("float", "24"):
    outputs.write_wav(tmp_path / f"a-{bits}.wav", audio, RATE, bits)
  time.sleep(1.1)
  for bits in ("float", "24"):
    outputs.write_wav(tmp_path / f"b-{bits}.wav", audio, RATE, bits)
    assert (tmp_path / f"a-{bits}.wav").read_bytes() == (tmp_path / f"b-{bits}.wav").read_bytes()
  np.testing.assert_array_equal(sf.read(tmp_path / "a-float.wav", dtype="float32")[0], audio)
