"""Note sources: SoundFont rendering, NSynth TFRecord and json/wav readers, filters."""

import numpy as np
import pytest

from reverbsynth.data.notes import nsynth, soundfont
from reverbsynth.data.notes.filters import NoteFilter
from reverbsynth.data.notes.note import NUM_SAMPLES, conform
from reverbsynth.data.notes.sources import NoteRef, SkipNote, Skipped
from reverbsynth.errors import UserError


def test_soundfont_notes_are_held_then_released_and_do_not_depend_on_order():
  sf2 = soundfont.default_soundfont()
  first = soundfont.render_note(sf2, 33, 40, 100)
  soundfont.render_note(sf2, 0, 72, 127)
  again = soundfont.render_note(sf2, 33, 40, 100)
  np.testing.assert_array_equal(first, again)
  assert first.shape == (NUM_SAMPLES,)
  held = np.abs(first[16000:48000]).max()
  assert held > 0.01
  assert np.abs(first[-4000:]).max() < 0.5 * held  # Released.
  louder = soundfont.render_note(sf2, 33, 40, 127)
  assert np.abs(louder).max() > np.abs(soundfont.render_note(sf2, 33, 40, 25)).max()


def test_soundfont_refs_carry_gm_families_and_nsynth_names():
  source = soundfont.SoundFontSource()
  refs = list(source.refs(38))
  assert len(refs) == 128 * 5
  note = refs[0].note
  assert note.instrument_family_str == "bass" and note.instrument_source_str == "synthetic"
  assert note.note_str == "bass_synthetic_038-000-025"
  assert {soundfont.GM_PROGRAMS[p][0] for p in range(32, 40)} == {"bass"}


def test_soundfont_errors(tmp_path):
  with pytest.raises(UserError, match="not found"):
    soundfont.SoundFontSource(str(tmp_path / "missing.sf2"))
  (tmp_path / "fake.sf2").write_bytes(b"RIFF\0\0\0\0WAVE")
  with pytest.raises(UserError, match="not a SoundFont"):
    soundfont.SoundFontSource(str(tmp_path / "fake.sf2"))


def test_tfrecord_source_reads_nsynth_fields(nsynth_tfrecord, fixture_notes):
  source = nsynth.TFRecordSource(str(nsynth_tfrecord.parent))
  refs = [r for p in source.partitions() for r in source.refs(p)]
  assert [r.note.note_str for r in refs] == [m["note_str"] for m, _ in fixture_notes]
  assert refs[4].note.qualities_str == ["reverb"]
  audio, rate = source.load(refs[3])
  np.testing.assert_array_equal(audio, fixture_notes[3][1])
  assert rate == 16000


def test_tfrecord_source_skips_a_corrupt_record(tmp_path, nsynth_tfrecord):
  data = bytearray(nsynth_tfrecord.read_bytes())
  data[len(data) // 2] ^= 0xFF
  (tmp_path / "bad.tfrecord").write_bytes(bytes(data))
  source = nsynth.TFRecordSource(str(tmp_path / "bad.tfrecord"))
  items = [r for p in source.partitions() for r in source.refs(p)]
  skipped = [i for i in items if isinstance(i, Skipped)]
  assert len(skipped) == 1 and "corrupt record" in skipped[0].reason
  assert sum(isinstance(i, NoteRef) for i in items) == len(items) - 1


def test_tfrecord_source_refuses_a_file_that_is_not_a_tfrecord(tmp_path):
  (tmp_path / "x.tfrecord").write_text("hello, I am text")
  with pytest.raises(UserError, match="not a readable TFRecord"):
    nsynth.TFRecordSource(str(tmp_path / "x.tfrecord")).partitions()


def test_jsonwav_source_resamples_and_skips_unreadable(nsynth_jsonwav):
  source = nsynth.JsonWavSource(str(nsynth_jsonwav))
  refs = [r for p in source.partitions() for r in source.refs(p)]
  assert len(refs) == 5
  outcomes = {}
  for ref in refs:
    try:
      audio, rate = source.load(ref)
      outcomes[ref.note.note_str] = conform(audio, rate)[1]
    except SkipNote as e:
      outcomes[ref.note.note_str] = str(e)
  assert sorted(map(str, outcomes.values())).count("[]") == 3
  assert ["resampled", "padded"] in outcomes.values()
  assert "unreadable wav" in outcomes["bass_acoustic_032-050-100"]


def test_filter_rejections_name_the_reason(fixture_notes):
  notes = [nsynth.note_from_metadata(m) for m, _ in fixture_notes]
  f = NoteFilter.from_names(families=["bass"], sources=["acoustic", "electronic"],
                            pitch_min=32, pitch_max=84, exclude_qualities=["reverb"])
  reasons = [f.rejection(n) for n in notes]
  assert reasons[:5] == [None, None, None, "instrument_source", "pitch"]
  assert reasons[5] == "family"
  f2 = NoteFilter.from_names(velocities=[100], exclude_qualities=["reverb"], pitch_min=0)
  assert f2.rejection(notes[1]) == "velocity" and f2.rejection(notes[4]) == "velocity"
  assert NoteFilter.from_names(exclude_qualities=["reverb"],
                               pitch_min=0).rejection(notes[4]) == "quality"


@pytest.mark.parametrize("kwargs, message", [
    ({"families": ["bas"]}, "unknown family 'bas'; valid: bass, brass"),
    ({"sources": ["analog"]}, "valid: acoustic, electronic, synthetic"),
    ({"exclude_qualities": ["wet"]}, "unknown quality 'wet'; valid: bright"),
    ({"pitch_min": 90, "pitch_max": 80}, "pitch range"),
])
def test_filter_names_are_validated(kwargs, message):
  with pytest.raises(UserError, match=message):
    NoteFilter.from_names(**kwargs)
