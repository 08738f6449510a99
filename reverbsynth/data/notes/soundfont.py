"""Notes rendered NSynth-style from a SoundFont with FluidSynth.

Each note is held for 3 s and released for 1 s, rendered at 16 kHz in float
(no dither), downmixed to mono, with FluidSynth's own reverb and chorus off so
that dry means dry. Every note gets a fresh synth: a reused one carries state
from earlier notes, which would make renders depend on their order.
"""

import ctypes
import functools
import os

import numpy as np

from reverbsynth import storage
from reverbsynth.data.notes.note import (
  FAMILIES,
  HOLD_SECONDS,
  NUM_SAMPLES,
  SAMPLE_RATE,
  SOURCES,
  VELOCITIES,
  Note,
  nsynth_names,
)
from reverbsynth.data.notes.sources import NoteRef, NoteSource, SkipNote
from reverbsynth.errors import UserError

# General MIDI program -> (family, source). Programs left out (synth pads and
# effects, percussion, sound effects, orchestra hit) have no NSynth family.
_A, _E, _S = "acoustic", "electronic", "synthetic"
_GM_TABLE = {
    "keyboard": {0: _A, 1: _A, 2: _E, 3: _A, 4: _E, 5: _E, 6: _A, 7: _E},
    "mallet": {8: _A, 9: _A, 10: _A, 11: _A, 12: _A, 13: _A, 14: _A, 15: _A,
               47: _A, 108: _A, 112: _A, 114: _A},
    "organ": {16: _E, 17: _E, 18: _E, 19: _A, 20: _A},
    "reed": {21: _A, 22: _A, 23: _A, 64: _A, 65: _A, 66: _A, 67: _A, 68: _A,
             69: _A, 70: _A, 71: _A, 109: _A, 111: _A},
    "guitar": {24: _A, 25: _A, 26: _E, 27: _E, 28: _E, 29: _E, 30: _E, 31: _E,
               104: _A, 105: _A, 106: _A, 107: _A},
    "bass": {32: _A, 33: _E, 34: _E, 35: _E, 36: _E, 37: _E, 38: _S, 39: _S},
    "string": {40: _A, 41: _A, 42: _A, 43: _A, 44: _A, 45: _A, 46: _A, 48: _A,
               49: _A, 50: _S, 51: _S, 110: _A},
    "vocal": {52: _A, 53: _A, 54: _S},
    "brass": {56: _A, 57: _A, 58: _A, 59: _A, 60: _A, 61: _A, 62: _S, 63: _S},
    "flute": {72: _A, 73: _A, 74: _A, 75: _A, 76: _A, 77: _A, 78: _A, 79: _A},
    "synth_lead": {p: _S for p in range(80, 88)},
}
GM_PROGRAMS = {program: (family, source)
               for family, programs in _GM_TABLE.items()
               for program, source in programs.items()}
_PEAK_SILENT = 1e-4


def default_soundfont() -> str:
  """The General MIDI SoundFont that pretty_midi ships (TimGM6mb.sf2)."""
  import pretty_midi
  return os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2")


@functools.cache
def _fluidsynth():
  """The fluidsynth module and a binding of fluid_synth_write_float."""
  try:
    import fluidsynth
  except ImportError as e:
    raise UserError("the FluidSynth library is missing: install it with "
                    "'apt-get install libfluidsynth3' (Debian/Ubuntu) or "
                    f"'brew install fluid-synth' (macOS) ({e})") from None
  write_float = fluidsynth.cfunc(
      "fluid_synth_write_float", ctypes.c_int,
      ("synth", ctypes.c_void_p, 1), ("len", ctypes.c_int, 1),
      ("lout", ctypes.c_void_p, 1), ("loff", ctypes.c_int, 1),
      ("lincr", ctypes.c_int, 1), ("rout", ctypes.c_void_p, 1),
      ("roff", ctypes.c_int, 1), ("rincr", ctypes.c_int, 1))
  return fluidsynth, write_float


def render_note(sf2_path: str, program: int, pitch: int, velocity: int,
                gain: float = 0.5) -> np.ndarray:
  """One note, float32 [NUM_SAMPLES]: held HOLD_SECONDS, then released."""
  fluidsynth, write_float = _fluidsynth()
  synth = fluidsynth.Synth(samplerate=float(SAMPLE_RATE), gain=gain)
  try:
    synth.setting("synth.reverb.active", 0)
    synth.setting("synth.chorus.active", 0)
    sfid = synth.sfload(sf2_path)
    if sfid < 0:
      raise SkipNote("SoundFont could not be loaded")
    synth.program_select(0, sfid, 0, program)
    stereo = np.zeros((NUM_SAMPLES, 2), np.float32)
    held = int(HOLD_SECONDS * SAMPLE_RATE)
    synth.noteon(0, pitch, velocity)
    write_float(synth.synth, held, stereo.ctypes.data, 0, 2,
                stereo.ctypes.data, 1, 2)
    synth.noteoff(0, pitch)
    tail = stereo[held:]
    write_float(synth.synth, NUM_SAMPLES - held, tail.ctypes.data, 0, 2,
                tail.ctypes.data, 1, 2)
  finally:
    synth.delete()
  return stereo.mean(axis=1)


class SoundFontSource(NoteSource):
  """Every General MIDI program with a family, at every MIDI pitch and NSynth velocity."""

  lists_refs_cheaply = True

  def __init__(self, path: str | None = None):
    self.path = os.path.abspath(path) if path else default_soundfont()
    if not os.path.isfile(self.path):
      raise UserError(f"SoundFont not found: {self.path} (give soundfont:PATH "
                      "to an existing .sf2 file)")
    with open(self.path, "rb") as f:
      header = f.read(12)
    if header[:4] != b"RIFF" or header[8:12] != b"sfbk":
      raise UserError(f"{self.path} is not a SoundFont 2 file (.sf2)")
    _fluidsynth()

  def describe(self) -> dict:
    builtin = self.path == default_soundfont()
    return {"kind": "soundfont",
            "path": "TimGM6mb.sf2 (built into pretty_midi)" if builtin else self.path,
            "sha256": storage.sha256(self.path)}


  def partitions(self) -> list:
    return sorted(GM_PROGRAMS)

  def refs(self, program: int):
    family, source = GM_PROGRAMS[program]
    family_id, source_id = FAMILIES.index(family), SOURCES.index(source)
    for pitch in range(128):
      for velocity in VELOCITIES:
        instrument_str, note_str = nsynth_names(family_id, source_id, program,
                                                pitch, velocity)
        note = Note(note_str=note_str, pitch=pitch, velocity=velocity,
                    instrument=program, instrument_str=instrument_str,
                    instrument_family=family_id, instrument_source=source_id)
        yield NoteRef(note, program)

  def load(self, ref: NoteRef) -> tuple:
    audio = render_note(self.path, ref.locator, ref.note.pitch, ref.note.velocity)
    if np.abs(audio).max() < _PEAK_SILENT:
      raise SkipNote("silent render (the SoundFont has no sample there)")
    return audio, SAMPLE_RATE
