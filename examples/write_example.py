"""Writes examples/bassline.mid: 8 bars at 96 bpm in E minor, for `make demo` and the README.

Tracks: a finger bass playing eighth notes (root, fifth, octave), a synth bass
holding notes of two bars (5 s and longer: sustained past the model's 3 s hold),
and drums (skipped unless --drums).

  python examples/write_example.py [OUT.mid]
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


def main(path="examples/bassline.mid") -> None:
  song = pretty_midi.PrettyMIDI(initial_tempo=BPM)
  song.instruments += [bass_line(), pads(), drums()]
  song.write(path)
  print(f"{path}: {song.get_end_time():.1f} s, "
        f"{sum(len(i.notes) for i in song.instruments)} notes")


if __name__ == "__main__":
  main(*sys.argv[1:])
