"""The label vocabularies a model is trained with, and how often the dataset has each label."""

import dataclasses

import numpy as np

from reverbsynth.errors import UserError

# Effect types (data.effects.TYPES) that are linear and time-invariant: a note through them
# is the note convolved with one impulse response, which the ddsp generator learns as such
# (model.ddsp.Responses).
LINEAR_TYPES = frozenset({"reverb", "delay", "convolution"})
DRY = "dry"  # The label of notes through no effect.


def is_linear(chain) -> bool:
  """Whether an effect chain (the manifest's [{"type", ...}], empty for dry) is linear and
  time-invariant, so that one impulse response and a dry gain are all of it."""
  return all(stage["type"] in LINEAR_TYPES for stage in chain)


@dataclasses.dataclass(frozen=True)
class Labels:
  """MIDI pitches pitch_min .. pitch_min + num_pitches - 1, and effect names in label order."""
  pitch_min: int
  num_pitches: int
  effects: tuple
  # The effects that are linear and time-invariant (data.effects.is_linear), learned as
  # impulse responses by the ddsp generator. Runs from before have none recorded.
  linear: tuple = dataclasses.field(default=(), compare=False)

  @property
  def dry_ids(self) -> tuple:
    """Indices of the dry effect labels (the note as it is)."""
    return tuple(i for i, name in enumerate(self.effects) if name == DRY)

  @property
  def pitch_range(self) -> range:
    """The MIDI pitches of the labels."""
    return range(self.pitch_min, self.pitch_min + self.num_pitches)

  def to_json(self) -> dict:
    return {"pitch_min": self.pitch_min, "num_pitches": self.num_pitches,
            "effects": list(self.effects), "linear": list(self.linear)}

  @classmethod
  def from_json(cls, data: dict) -> "Labels":
    return cls(data["pitch_min"], data["num_pitches"], tuple(data["effects"]),
               tuple(data.get("linear", ())))

  @classmethod
  def from_manifest(cls, manifest: dict, pitch_min: int, num_pitches: int) -> "Labels":
    """A model's pitch range with the effects of a dataset's manifest."""
    return cls(pitch_min, num_pitches, tuple(e["name"] for e in manifest["effects"]),
               tuple(e["name"] for e in manifest["effects"] if is_linear(e["chain"])))


def label_prior(manifest: dict, labels: Labels) -> tuple:
  """(pitch probabilities [P], effect probabilities [E]) of the training split."""
  train = manifest["counts"]["per_split"].get("train", {})
  pitch = np.zeros(labels.num_pitches)
  for p, n in train.get("per_pitch", {}).items():
    i = int(p) - labels.pitch_min
    if 0 <= i < labels.num_pitches:
      pitch[i] += n
  effect = np.array([train.get("per_effect", {}).get(e, 0) for e in labels.effects], float)
  if pitch.sum() == 0 or effect.sum() == 0:
    raise UserError("the dataset's training split has no notes in the model's pitch range "
                    f"{labels.pitch_min}..{labels.pitch_min + labels.num_pitches - 1}")
  return pitch / pitch.sum(), effect / effect.sum()
