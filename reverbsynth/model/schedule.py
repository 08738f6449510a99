"""The growth schedule: 2R - 1 stages, even = stable, odd = a level fading in."""

import dataclasses

from reverbsynth.errors import UserError


@dataclasses.dataclass(frozen=True)
class Stage:
  index: int
  level: int        # Resolution level trained (1-based).
  transition: bool  # True while `level` fades in over the previous one.

  def alpha(self, images_seen: int, images_per_stage: int) -> float:
    """Blend weight of the new level: 0 -> 1 over a transition, 1 when stable."""
    if not self.transition:
      return 1.0
    return min(1.0, images_seen / max(1, images_per_stage))


def num_stages(num_levels: int) -> int:
  return 2 * num_levels - 1


def stages_to_train(stages, num_levels: int, config_name: str) -> int:
  """`stages` (None: all of them), checked against a config of `num_levels` levels."""
  total = num_stages(num_levels)
  if stages is not None and not 1 <= stages <= total:
    raise UserError(f"--stages {stages}: config '{config_name}' has {total} stages "
                    f"({num_levels} levels)")
  return total if stages is None else stages


def stage(index: int, num_levels: int) -> Stage:
  if not 0 <= index < num_stages(num_levels):
    raise ValueError(f"stage {index} outside 0..{num_stages(num_levels) - 1}")
  return Stage(index, index // 2 + 1 + index % 2, bool(index % 2))
