"""Which notes go into a dataset: family, source, pitch, velocity, qualities."""

import dataclasses
from collections.abc import Sequence

from reverbsynth.data.notes.note import FAMILIES, QUALITIES, SOURCES, Note
from reverbsynth.errors import UserError

DEFAULT_PITCH_RANGE = (24, 84)  # GANSynth's 61 pitches.


def _ids(names: Sequence[str], vocabulary: Sequence[str], what: str) -> tuple:
  unknown = [n for n in names if n not in vocabulary]
  if unknown:
    raise UserError(f"unknown {what} {', '.join(map(repr, unknown))}; "
                    f"valid: {', '.join(vocabulary)}")
  return tuple(sorted(vocabulary.index(n) for n in set(names)))


@dataclasses.dataclass(frozen=True)
class NoteFilter:
  """Keeps a note when every set criterion holds; empty tuples mean 'any'."""
  families: tuple = ()
  sources: tuple = ()
  pitch_min: int = DEFAULT_PITCH_RANGE[0]
  pitch_max: int = DEFAULT_PITCH_RANGE[1]
  velocities: tuple = ()
  exclude_qualities: tuple = ()

  @classmethod
  def from_names(cls, families=(), sources=(), pitch_min=DEFAULT_PITCH_RANGE[0],
                 pitch_max=DEFAULT_PITCH_RANGE[1], velocities=(),
                 exclude_qualities=()) -> "NoteFilter":
    """Validates user-given names; raises UserError listing the valid ones."""
    if not 0 <= pitch_min <= pitch_max <= 127:
      raise UserError(f"pitch range {pitch_min}..{pitch_max} is empty or outside "
                      "MIDI 0..127: give --pitch-min <= --pitch-max")
    bad_velocity = [v for v in velocities if not 1 <= v <= 127]
    if bad_velocity:
      raise UserError(f"velocity {bad_velocity[0]} is outside MIDI 1..127")
    return cls(_ids(families, FAMILIES, "family"),
               _ids(sources, SOURCES, "instrument source"),
               pitch_min, pitch_max, tuple(sorted(set(velocities))),
               _ids(exclude_qualities, QUALITIES, "quality"))

  def rejection(self, note: Note) -> str | None:
    """Why `note` is filtered out, or None when it is kept."""
    if self.families and note.instrument_family not in self.families:
      return "family"
    if self.sources and note.instrument_source not in self.sources:
      return "instrument_source"
    if not self.pitch_min <= note.pitch <= self.pitch_max:
      return "pitch"
    if self.velocities and note.velocity not in self.velocities:
      return "velocity"
    if any(note.qualities[q] for q in self.exclude_qualities):
      return "quality"
    return None

  def describe(self) -> dict:
    return {
        "families": [FAMILIES[i] for i in self.families] or "any",
        "instrument_sources": [SOURCES[i] for i in self.sources] or "any",
        "pitch_range": [self.pitch_min, self.pitch_max],
        "velocities": list(self.velocities) or "any",
        "exclude_qualities": [QUALITIES[i] for i in self.exclude_qualities],
    }
