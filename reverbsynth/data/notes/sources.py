"""What every note source provides, so that the pipeline treats them alike.

A source is split up front into small picklable `partitions` (a chunk of record
offsets, a SoundFont program, ...). Workers turn a partition into note
references (`refs`: metadata + a locator, no audio), which are filtered and
sampled cheaply, and then `load` the audio of the notes that were kept.
"""

import dataclasses
from collections.abc import Iterator
from typing import Any

from reverbsynth.data.notes.note import Note


@dataclasses.dataclass(frozen=True)
class Skipped:
  """A note or input that could not be used, and why (counted in the manifest)."""
  reason: str
  what: str


class SkipNote(Exception):
  """Raised by `load` when a note cannot be used; the message is the reason."""


@dataclasses.dataclass
class NoteRef:
  """A note's metadata (audio None) and where its audio comes from."""
  note: Note
  locator: Any


class NoteSource:
  """Interface of the note sources."""

  # True when `refs` needs no reading of audio, so the launcher may list them.
  lists_refs_cheaply = False

  def describe(self) -> dict:
    """JSON-able description for the manifest."""
    raise NotImplementedError

  def partitions(self) -> list:
    """Small picklable work items; raises UserError for unusable input."""
    raise NotImplementedError

  def refs(self, partition) -> Iterator[NoteRef | Skipped]:
    raise NotImplementedError

  def load(self, ref: NoteRef) -> tuple:
    """(audio float32 [n] or [n, channels], sample_rate); raises SkipNote."""
    raise NotImplementedError
