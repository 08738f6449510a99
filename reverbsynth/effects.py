"""The effect catalogue: pedalboard effects, their parameter ranges, presets, chains.

An effect spec is what a user types after --effect: a preset or type name,
optionally with fixed parameters, chained with '+':

    reverb                  the 'reverb' preset from configs/effects.yaml
    hall(room_size=0.95)    a preset with one parameter fixed
    chorus+delay            a chain, applied left to right

Effects are plain data (picklable); `Effect.board` builds the pedalboard objects
where they are used, since those cannot be pickled.
"""

import dataclasses
import hashlib
import re
from typing import Callable, Mapping, Optional

import numpy as np
import pedalboard
import yaml

from reverbsynth import paths
from reverbsynth.errors import UserError
from reverbsynth.notes.note import NUM_SAMPLES, SAMPLE_RATE, to_mono

DRY = "dry"
# Each note is processed with this much silence after it, so that effects
# with latency or look-ahead deliver all NUM_SAMPLES samples; then NUM_SAMPLES
# are kept. What rings inside the 4 s window (the released last second) stays.
TAIL_PAD_SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class EffectType:
  """A pedalboard effect: how to build it and each parameter's (low, high) range."""
  build: Callable[..., list]
  ranges: Mapping[str, tuple]


def _ladder(cutoff_hz, resonance, drive):
  return [pedalboard.LadderFilter(mode=pedalboard.LadderFilter.Mode.LPF24,
                                  cutoff_hz=cutoff_hz, resonance=resonance,
                                  drive=drive)]


def _distortion(drive_db, output_db):
  return [pedalboard.Distortion(drive_db=drive_db),
          pedalboard.Gain(gain_db=output_db)]


def _compressor(threshold_db, ratio, attack_ms, release_ms, makeup_db):
  return [pedalboard.Compressor(threshold_db=threshold_db, ratio=ratio,
                                attack_ms=attack_ms, release_ms=release_ms),
          pedalboard.Gain(gain_db=makeup_db)]


def _convolution(mix, impulse_response):
  return [pedalboard.Convolution(np.asarray(impulse_response, np.float32),
                                 mix=mix, sample_rate=SAMPLE_RATE)]


TYPES = {
    "reverb": EffectType(
        lambda **p: [pedalboard.Reverb(**p)],
        {"room_size": (0.3, 0.95), "damping": (0.1, 0.9),
         "wet_level": (0.15, 0.5), "dry_level": (0.3, 0.7), "width": (0.5, 1.0)}),
    "delay": EffectType(
        lambda **p: [pedalboard.Delay(**p)],
        {"delay_seconds": (0.08, 0.6), "feedback": (0.0, 0.6), "mix": (0.2, 0.5)}),
    "chorus": EffectType(
        lambda **p: [pedalboard.Chorus(**p)],
        {"rate_hz": (0.3, 3.0), "depth": (0.1, 0.6), "centre_delay_ms": (3.0, 12.0),
         "feedback": (0.0, 0.4), "mix": (0.3, 0.6)}),
    "phaser": EffectType(
        lambda **p: [pedalboard.Phaser(**p)],
        {"rate_hz": (0.2, 4.0), "depth": (0.2, 0.9),
         "centre_frequency_hz": (400.0, 3000.0), "feedback": (0.0, 0.6),
         "mix": (0.3, 0.7)}),
    "distortion": EffectType(
        _distortion, {"drive_db": (10.0, 40.0), "output_db": (-18.0, -6.0)}),
    "compressor": EffectType(
        _compressor, {"threshold_db": (-40.0, -10.0), "ratio": (2.0, 10.0),
                      "attack_ms": (1.0, 30.0), "release_ms": (50.0, 300.0),
                      "makeup_db": (0.0, 12.0)}),
    "bitcrush": EffectType(
        lambda **p: [pedalboard.Bitcrush(**p)], {"bit_depth": (3.0, 10.0)}),
    "ladder_filter": EffectType(
        _ladder, {"cutoff_hz": (200.0, 4000.0), "resonance": (0.0, 0.8),
                  "drive": (1.0, 3.0)}),
    "convolution": EffectType(_convolution, {"mix": (0.2, 0.8)}),
}


@dataclasses.dataclass(frozen=True)
class Stage:
  """One effect of a chain: its type, parameters and their sampling ranges.

  `fixed` names the parameters given on the command line, which --randomize
  leaves alone. `impulse_response` is the IR (float32 [n] at 16 kHz) of a
  convolution, and `impulse_response_path` where it was read from.
  """
  type: str
  params: tuple  # ((name, value), ...) in the type's order.
  ranges: tuple  # ((name, (low, high)), ...)
  fixed: frozenset = frozenset()
  impulse_response: Optional[np.ndarray] = dataclasses.field(
      default=None, compare=False, repr=False)
  impulse_response_path: Optional[str] = None

  def describe(self) -> dict:
    out = {"type": self.type, "params": dict(self.params),
           "ranges": {k: list(v) for k, v in self.ranges}}
    if self.impulse_response_path:
      out["impulse_response"] = self.impulse_response_path
    return out


@dataclasses.dataclass(frozen=True)
class Effect:
  """A vocabulary entry: a name and a chain of stages (empty for dry)."""
  name: str
  stages: tuple = ()

  def param_names(self) -> list:
    return [f"{s.type}.{k}" for s in self.stages for k, _ in s.params]

  def params(self, randomize: bool = False, seed: int = 0,
             key: str = "") -> np.ndarray:
    """Parameter values float32 [num_params], in `param_names` order.

    With `randomize`, every parameter not fixed on the command line is drawn
    uniformly from its range, from a generator seeded by (seed, key, name):
    the same note always gets the same values, whatever order notes come in.
    """
    values = [v for s in self.stages for _, v in s.params]
    if randomize:
      digest = hashlib.blake2b(f"{seed}/{key}/{self.name}".encode(),
                               digest_size=8).digest()
      rng = np.random.default_rng(int.from_bytes(digest, "little"))
      values = []
      for s in self.stages:
        ranges = dict(s.ranges)
        for name, value in s.params:
          draw = rng.uniform(*ranges[name])
          values.append(value if name in s.fixed else draw)
    return np.asarray(values, np.float32)

  def board(self, values: np.ndarray) -> pedalboard.Pedalboard:
    """The pedalboard chain for parameter `values` (from `params`)."""
    plugins, i = [], 0
    for s in self.stages:
      kwargs = {name: float(values[i + j]) for j, (name, _) in enumerate(s.params)}
      i += len(s.params)
      if s.impulse_response is not None:
        kwargs["impulse_response"] = s.impulse_response
      plugins.extend(TYPES[s.type].build(**kwargs))
    return pedalboard.Pedalboard(plugins)

  def apply(self, audio: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Wet audio float32 [NUM_SAMPLES] from dry `audio` float32 [NUM_SAMPLES]."""
    if not self.stages:
      return audio
    padded = np.pad(audio, (0, int(TAIL_PAD_SECONDS * SAMPLE_RATE)))
    wet = self.board(values)(padded, SAMPLE_RATE, reset=True)
    return np.ascontiguousarray(wet[:NUM_SAMPLES], np.float32)

  def describe(self) -> dict:
    return {"name": self.name, "chain": [s.describe() for s in self.stages]}


def load_presets(path=None) -> dict:
  """Presets from configs/effects.yaml: {name: {type, params, [ranges], [impulse_response]}}."""
  path = path or paths.CONFIG_DIR / "effects.yaml"
  with open(path) as f:
    presets = yaml.safe_load(f)
  for name, preset in presets.items():
    if preset.get("type") not in TYPES:
      raise ValueError(f"{path}: preset {name!r} has unknown type {preset.get('type')!r}")
  return presets


def _read_impulse_response(path: str) -> np.ndarray:
  import soundfile as sf
  try:
    audio, rate = sf.read(path, dtype="float32")
  except (OSError, RuntimeError) as e:
    raise UserError(f"cannot read impulse response {path} ({e})") from None
  return to_mono(audio, rate)[0]


_TERM = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*(?:\((.*)\))?\s*$")


def _parse_overrides(text: str, term: str) -> dict:
  overrides = {}
  for item in filter(None, (s.strip() for s in (text or "").split(","))):
    key, sep, value = item.partition("=")
    if not sep:
      raise UserError(f"effect {term!r}: write parameters as name=value")
    overrides[key.strip()] = value.strip()
  return overrides


def _stage(term: str, presets: dict) -> Stage:
  match = _TERM.match(term)
  if not match:
    raise UserError(f"cannot read effect {term!r}: write NAME or NAME(param=value,...)")
  name, overrides = match.group(1), _parse_overrides(match.group(2), term)
  if name in presets:
    preset = presets[name]
  elif name in TYPES:
    preset = {"type": name, "params": {}}
  else:
    raise UserError(f"unknown effect {name!r}; valid: "
                    f"{', '.join(sorted(set(presets) | set(TYPES)))}")
  kind = TYPES[preset["type"]]
  ranges = {**kind.ranges, **{k: tuple(v) for k, v in preset.get("ranges", {}).items()}}
  params = {k: (lo + hi) / 2 for k, (lo, hi) in kind.ranges.items()}
  params.update(preset.get("params", {}))
  ir_path = overrides.pop("ir", None) or preset.get("impulse_response")
  unknown = set(overrides) - set(kind.ranges)
  if unknown:
    raise UserError(f"effect {name!r} has no parameter {sorted(unknown)[0]!r}; valid: "
                    f"{', '.join(kind.ranges)}{', ir' if preset['type'] == 'convolution' else ''}")
  for key, value in overrides.items():
    try:
      params[key] = float(value)
    except ValueError:
      raise UserError(f"effect {name!r}: {key}={value!r} is not a number") from None
  ir = None
  if preset["type"] == "convolution":
    if not ir_path:
      raise UserError(f"effect {name!r} needs an impulse response: {name}(ir=PATH.wav)")
    resolved = paths.CONFIG_DIR / ir_path if not str(ir_path).startswith("/") else ir_path
    ir_path = str(resolved)
    ir = _read_impulse_response(ir_path)
  return Stage(type=preset["type"],
               params=tuple((k, float(params[k])) for k in kind.ranges),
               ranges=tuple((k, tuple(map(float, ranges[k]))) for k in kind.ranges),
               fixed=frozenset(overrides), impulse_response=ir,
               impulse_response_path=ir_path)


def parse(spec: str, presets: Optional[dict] = None) -> Effect:
  """The Effect that an --effect spec names; raises UserError if it names none."""
  presets = load_presets() if presets is None else presets
  name = re.sub(r"\s+", "", spec)
  if name == DRY:
    return Effect(DRY)
  terms = [t for t in re.split(r"\+(?![^(]*\))", spec)]
  stages = tuple(_stage(t, presets) for t in terms)
  types = [s.type for s in stages]
  if len(set(types)) != len(types):
    raise UserError(f"effect {spec!r} uses one type twice; use one stage per type")
  return Effect(name, stages)


def vocabulary(specs, keep_dry: bool = True, presets: Optional[dict] = None) -> list:
  """The dataset's effects in label order: dry first when kept, then `specs`."""
  effects = [Effect(DRY)] if keep_dry else []
  for spec in specs:
    effect = parse(spec, presets)
    if effect.name in [e.name for e in effects]:
      raise UserError(f"effect {effect.name!r} is given twice")
    effects.append(effect)
  if not effects:
    raise UserError("no effects: give --effect NAME, or keep the dry notes (--keep-dry)")
  return effects
