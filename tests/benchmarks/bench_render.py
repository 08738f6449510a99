"""Song rendering speed: `songs.render` against playing every note on its own.

The song is examples/bassline.mid three times over (over a minute, two pitched
tracks). The generator has configs/cpu.yaml's shapes at its full level, freshly
initialized: its cost does not depend on its weights. The baseline generates
each played note separately (batch 1, no reuse), then shapes and overlap-adds
it the same way. Target: >= 5x. Also the real-time factor (render seconds per
second of audio; below 1 is faster than real time).
"""

import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pretty_midi

from reverbsynth import spectral
from reverbsynth.data.labels import Labels
from reverbsynth.model import networks
from reverbsynth.runs import (
  config as config_lib,
  files,
)
from reverbsynth.synthesis import songs, synthesizer

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "bassline.mid"
TARGET = 5.0
REPEATS = 3


def cpu_synthesizer() -> synthesizer.Synthesizer:
  config = config_lib.load("cpu")
  labels = Labels(24, 61, ("dry", "reverb"))
  generator = networks.Generator(files.model_config(config, labels))
  networks.build_generator(generator)
  return synthesizer.Synthesizer(generator, config, labels,
                               spectral.Normalizer((1.0, 1.0), (0.0, 0.0)),
                               config.model.num_levels)


def long_song(path) -> None:
  """The example piece REPEATS times in a row, written to `path`."""
  piece = pretty_midi.PrettyMIDI(str(EXAMPLE))
  length = piece.get_end_time()
  song = pretty_midi.PrettyMIDI(initial_tempo=96)
  for inst in piece.instruments:
    copy = pretty_midi.Instrument(inst.program, is_drum=inst.is_drum, name=inst.name)
    copy.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start + k * length, n.end + k * length)
                  for k in range(REPEATS) for n in inst.notes]
    song.instruments.append(copy)
  song.write(str(path))


def note_by_note(synth, tracks, effects) -> np.ndarray:
  """The baseline: every played note generated on its own, then placed."""
  latents = synth.latents(max(t.number for t in tracks), 0)
  rate, held = synth.sample_rate, synth.held_samples
  placed = []
  for track in tracks:
    if track.is_drum:
      continue
    for note in track.notes:
      pitch = songs.fit_pitch(note.pitch, synth.pitches)
      audio = synth.audio(latents[[track.number - 1]], [pitch], [effects[track.number]])[0]
      start = int(round(note.start * rate))
      length = max(int(round(note.end * rate)) - start, 1)
      placed.append((start, synthesizer.velocity_gain(note.velocity)
                     * songs.shape_note(audio, held, length, rate)))
  song = np.zeros(max(s + len(a) for s, a in placed), np.float32)
  for start, sound in placed:
    song[start:start + len(sound)] += sound
  return song


def main() -> None:
  import tempfile
  synth = cpu_synthesizer()
  with tempfile.TemporaryDirectory() as tmp:
    path = pathlib.Path(tmp) / "long.mid"
    long_song(path)
    tracks = songs.read(path)
  effects = {t.number: "reverb" for t in tracks}
  songs.render(synth, tracks[:1], effects)  # Warm-up: traces the generator.
  started = time.perf_counter()
  song, summary = songs.render(synth, tracks, effects)
  fast = time.perf_counter() - started
  started = time.perf_counter()
  note_by_note(synth, tracks, effects)
  slow = time.perf_counter() - started
  ratio = slow / fast
  print(f"\nrender, examples/bassline.mid x{REPEATS} ({summary.seconds:.0f} s, {summary.notes} "
        f"notes, {summary.unique} unique), configs/cpu.yaml generator, {os.cpu_count()} cores")
  print(f"  note by note (batch 1, no reuse)  {slow:7.2f} s")
  print(f"  reverbsynth render                {fast:7.2f} s")
  print(f"  speed ratio                       {ratio:7.2f}x  "
        f"(target >= {TARGET:g}x: {'met' if ratio >= TARGET else 'NOT MET'})")
  print(f"  real-time factor                  {fast / summary.seconds:7.3f}  "
        f"({summary.seconds / fast:.0f}x faster than real time)")


if __name__ == "__main__":
  main()
