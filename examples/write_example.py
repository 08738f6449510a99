"""Writes the example songs, 8 bars at 96 bpm in E minor, for `make demo` and the README.

examples/bassline.mid: a finger bass playing eighth notes (root, fifth, octave), a synth
bass holding notes of two bars (5 s and longer: sustained past the model's 3 s hold), and
drums (skipped unless --drums).

examples/ensemble.mid: the same bass line under one track per instrument family that a
General MIDI arrangement has (electric piano, vibraphone, organ, nylon guitar, strings,
choir, trumpet, alto sax, flute, a square lead), at velocities from 40 to 120, and drums:
for a model conditioned on families and velocity (`render` plays each track as its
program's family).

  python examples/write_example.py [BASSLINE.mid [ENSEMBLE.mid]]
"""

import sys

import pretty_midi

BPM = 96
BEAT = 60.0 / BPM
CHORDS = [40, 36, 43, 38, 40, 36, 38, 35]  # E2 C2 G2 D2 E2 C2 D2 B1: one per bar.


def bass_line() -> pretty_midi.Instrument:
  bass = pretty_midi.Instrument(33, name="Finger bass")
  pattern = [0, 0, 7, 0, 12, 0, 7, 5]  # Semitones above the root, one per eighth.
  for bar, root in enumerate(CHORDS):
    for i, step in enumerate(pattern):
      start = (bar * 4 + i / 2) * BEAT
      velocity = 110 if i % 2 == 0 else 80
      bass.notes.append(pretty_midi.Note(velocity, root + step, start, start + 0.45 * BEAT))
  return bass


def pads() -> pretty_midi.Instrument:
  synth = pretty_midi.Instrument(38, name="Synth bass pad")
  for bar in range(0, len(CHORDS), 2):
    start = bar * 4 * BEAT
    length = 8 * BEAT if bar < len(CHORDS) - 2 else 10 * BEAT  # The last one rings on.
    synth.notes.append(pretty_midi.Note(70, CHORDS[bar] + 12, start, start + length))
  return synth


def drums() -> pretty_midi.Instrument:
  kit = pretty_midi.Instrument(0, is_drum=True, name="Drums")
  for beat in range(len(CHORDS) * 4):
    kit.notes.append(pretty_midi.Note(100, 36 if beat % 2 == 0 else 38,
                                      beat * BEAT, beat * BEAT + 0.1))
  return kit


MINOR_TRIAD = (0, 3, 7)
MAJOR_TRIAD = (0, 4, 7)
QUALITY = [MINOR_TRIAD, MAJOR_TRIAD, MAJOR_TRIAD, MAJOR_TRIAD] * 2  # Em C G D, twice.


def chords(program: int, name: str, octave: int, beats: list, velocity: int,
           length: float) -> pretty_midi.Instrument:
  """The bars' chords from MIDI octave `octave`, struck on `beats` of each bar."""
  track = pretty_midi.Instrument(program, name=name)
  for bar, (root, quality) in enumerate(zip(CHORDS, QUALITY)):
    for beat in beats:
      start = (bar * 4 + beat) * BEAT
      for step in quality:
        track.notes.append(pretty_midi.Note(velocity, root % 12 + 12 * octave + step, start,
                                            start + length * BEAT))
  return track


def melody(program: int, name: str, bars: range, transpose: int,
           velocities: tuple) -> pretty_midi.Instrument:
  """A tune of quarter and half notes over `bars`, each bar's velocity from `velocities`."""
  tune = [(0, 1), (3, 1), (7, 2), (5, 1), (3, 1), (2, 2)]  # (semitones above E, beats)
  track = pretty_midi.Instrument(program, name=name)
  for bar in bars:
    beat = 0.0
    for step, beats in tune[(bar % 2) * 3:(bar % 2) * 3 + 3]:
      start = (bar * 4 + beat) * BEAT
      track.notes.append(pretty_midi.Note(velocities[bar % len(velocities)],
                                          64 + transpose + step, start,
                                          start + 0.9 * beats * BEAT))
      beat += beats
  return track


def ensemble() -> list:
  """One track per family over the bass line, entering a family or two at a time."""
  return [
      bass_line(),
      chords(4, "Electric piano", 4, [0, 2], 70, 1.5),
      chords(11, "Vibraphone", 5, [1, 3], 60, 0.5),
      chords(16, "Organ", 4, [0], 50, 4.0),
      chords(24, "Nylon guitar", 3, [0.5, 1.5, 2.5, 3.5], 80, 0.4),
      chords(48, "Strings", 3, [0], 40, 4.0),
      chords(52, "Choir", 4, [0], 45, 4.0),
      melody(56, "Trumpet", range(0, 2), 0, (120, 100)),
      melody(65, "Alto sax", range(2, 4), -12, (90, 70)),
      melody(73, "Flute", range(4, 6), 12, (60, 80)),
      melody(80, "Square lead", range(6, 8), 0, (100, 127)),
      drums(),
  ]


def main(path="examples/bassline.mid", ensemble_path="examples/ensemble.mid") -> None:
  for out, instruments in ((path, [bass_line(), pads(), drums()]),
                           (ensemble_path, ensemble())):
    song = pretty_midi.PrettyMIDI(initial_tempo=BPM)
    song.instruments += instruments
    song.write(out)
    print(f"{out}: {song.get_end_time():.1f} s, "
          f"{sum(len(i.notes) for i in song.instruments)} notes")


if __name__ == "__main__":
  main(*sys.argv[1:])
