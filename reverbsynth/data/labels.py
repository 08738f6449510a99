"""The label vocabularies a model is trained with, and how often the dataset has each label."""

import dataclasses

import numpy as np

from reverbsynth.data.notes.note import FAMILIES
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


# The conditions a model may have beyond pitch and effect (config model.conditions), each a
# class label with the vocabulary of the dataset's training split: the instrument family
# (data.notes.note.FAMILIES names) and the MIDI velocity. Velocity is a class, not a scalar:
# NSynth and SoundFonts record five velocity layers, and a layer changes a note's colour
# in steps (another sample), not along a line; a MIDI velocity between them plays the
# nearest one (Labels.velocity_ids).
ATTRIBUTES = ("family", "velocity")


@dataclasses.dataclass(frozen=True)
class Labels:
  """MIDI pitches pitch_min .. pitch_min + num_pitches - 1, effect names in label order, and
  the vocabularies of the model's other conditions (empty when it has not that condition):
  family names in data.notes.note.FAMILIES order, velocities ascending."""
  pitch_min: int
  num_pitches: int
  effects: tuple
  # The effects that are linear and time-invariant (data.effects.is_linear), learned as
  # impulse responses by the ddsp generator. Runs from before have none recorded.
  linear: tuple = dataclasses.field(default=(), compare=False)
  families: tuple = ()
  velocities: tuple = ()

  @property
  def dry_ids(self) -> tuple:
    """Indices of the dry effect labels (the note as it is)."""
    return tuple(i for i, name in enumerate(self.effects) if name == DRY)

  @property
  def pitch_range(self) -> range:
    """The MIDI pitches of the labels."""
    return range(self.pitch_min, self.pitch_min + self.num_pitches)

  @property
  def attributes(self) -> tuple:
    """((name, vocabulary), ...) of the model's conditions beyond pitch and effect, in
    ATTRIBUTES order."""
    vocabularies = {"family": self.families, "velocity": self.velocities}
    return tuple((name, vocabularies[name]) for name in ATTRIBUTES if vocabularies[name])

  @property
  def conditions(self) -> tuple:
    """The names of every condition, in the order of the model's label inputs."""
    return ("pitch", "effect", *(name for name, _ in self.attributes))

  @property
  def sizes(self) -> tuple:
    """The number of classes of each condition, in `conditions` order."""
    return (self.num_pitches, len(self.effects), *(len(v) for _, v in self.attributes))

  def family_ids(self, families) -> np.ndarray:
    """Family names [N] -> label indices [N]; UserError for a family the labels lack."""
    unknown = [f for f in families if f not in self.families]
    if unknown and not self.families:
      raise UserError("the model is not conditioned on the instrument family "
                      "(model.conditions): it plays every note with one timbre; leave out "
                      "--family")
    if unknown:
      raise UserError(f"the model knows no family {unknown[0]!r}; it was trained on "
                      f"{', '.join(self.families)}")
    return np.asarray([self.families.index(f) for f in families], int)

  def velocity_ids(self, velocities) -> np.ndarray:
    """MIDI velocities [N] -> indices [N] of the nearest velocity labels (the lower on a tie)."""
    layers = np.asarray(self.velocities)
    return np.argmin(np.abs(np.asarray(velocities)[:, None] - layers[None, :]), axis=1)

  def attribute_ids(self, families=None, velocities=None) -> tuple:
    """Label indices [N] of each attribute condition for family names [N] and MIDI
    velocities [N] (those of a condition the labels lack are not read)."""
    given = {"family": (families, self.family_ids),
             "velocity": (velocities, self.velocity_ids)}
    out = []
    for name, _ in self.attributes:
      values, ids = given[name]
      if values is None:
        raise ValueError(f"the labels have the {name} condition: give its values")
      out.append(ids(values))
    return tuple(out)

  def attribute_one_hots(self, families=None, velocities=None) -> tuple:
    """One-hots [N, C] of each attribute condition (attribute_ids)."""
    return tuple(np.eye(len(vocabulary), dtype=np.float32)[ids] for (_, vocabulary), ids
                 in zip(self.attributes, self.attribute_ids(families, velocities)))

  def to_json(self) -> dict:
    return {"pitch_min": self.pitch_min, "num_pitches": self.num_pitches,
            "effects": list(self.effects), "linear": list(self.linear),
            "families": list(self.families), "velocities": list(self.velocities)}

  @classmethod
  def from_json(cls, data: dict) -> "Labels":
    return cls(data["pitch_min"], data["num_pitches"], tuple(data["effects"]),
               tuple(data.get("linear", ())), tuple(data.get("families", ())),
               tuple(data.get("velocities", ())))

  @classmethod
  def from_manifest(cls, manifest: dict, pitch_min: int, num_pitches: int,
                    conditions=("pitch", "effect")) -> "Labels":
    """A model's pitch range with the effects of a dataset's manifest and, for the
    `conditions` beyond pitch and effect, the values its training split holds."""
    train = manifest["counts"]["per_split"].get("train", {})
    vocabularies = {}
    for name in ATTRIBUTES:
      if name not in conditions:
        continue
      counts = train.get(f"per_{name}")
      if not counts:
        raise UserError(f"the dataset's manifest has no {name} counts (it was built by an "
                        f"older reverbsynth): rebuild it to train with the {name} condition")
      vocabularies[name] = (tuple(f for f in FAMILIES if f in counts) if name == "family"
                            else tuple(sorted(int(v) for v in counts)))
    return cls(pitch_min, num_pitches, tuple(e["name"] for e in manifest["effects"]),
               tuple(e["name"] for e in manifest["effects"] if is_linear(e["chain"])),
               vocabularies.get("family", ()), vocabularies.get("velocity", ()))


def label_prior(manifest: dict, labels: Labels) -> tuple:
  """The training split's label frequencies, one array per condition in labels.conditions
  order: pitch [P], effect [E], then family [F] and velocity [V] where the labels have them."""
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
  attributes = [np.array([train[f"per_{name}"][str(v)] for v in vocabulary], float)
                for name, vocabulary in labels.attributes]
  return tuple(p / p.sum() for p in (pitch, effect, *attributes))
