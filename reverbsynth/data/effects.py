"""The effect catalogue: pedalboard effects, their parameter ranges, presets, chains.

An effect spec is what a user types after --effect: a preset or type name,
optionally with fixed parameters, chained with '+':

    reverb                    the 'reverb' preset from configs/effects.yaml
    hall(room_size=0.95)      a preset with one parameter fixed
    reverb(damping=0.2..0.6)  a range to draw from with --randomize (else its middle)
    chorus+delay              a chain, applied left to right

Every value and range is checked against LIMITS when a spec is parsed, so that
a bad one is a UserError before any work, not an error inside a worker.

Effects are plain data (picklable); `Effect.board` builds the pedalboard objects
where they are used, since those cannot be pickled.
"""

import dataclasses
import hashlib
import math
import os
import pathlib
import re
from collections.abc import Callable, Mapping

import numpy as np
import pedalboard
import yaml

from reverbsynth import paths, storage
from reverbsynth.data.labels import DRY
from reverbsynth.data.notes.note import NUM_SAMPLES, SAMPLE_RATE, to_mono
from reverbsynth.errors import UserError

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

INF = math.inf
_UNIT = (0.0, 1.0)
# The values each parameter may take: pedalboard's own checks where it has them
# (Reverb 0..1; Delay up to 30 s, feedback and mix 0..1; Chorus rate up to
# 100 Hz, mix 0..1; Compressor ratio >= 1; Bitcrush 0..32 bits; LadderFilter
# resonance 0..1, drive >= 1), else the ranges JUCE documents for the DSP under
# them (Chorus depth 0..1, centre delay 1..100 ms, feedback -1..1; Phaser rate
# below 100 Hz, depth and mix 0..1, feedback -1..1, centre below Nyquist;
# ladder cutoff above 0 Hz; compressor times >= 0; dry/wet mix 0..1). Outside
# them pedalboard raises, or returns NaN (phaser or chorus feedback 1.5,
# negative cutoff) or meaningless sound. Gains in dB take any finite value.
LIMITS = {
    "reverb": {k: _UNIT for k in ("room_size", "damping", "wet_level", "dry_level", "width")},
    "delay": {"delay_seconds": (0.0, 30.0), "feedback": _UNIT, "mix": _UNIT},
    "chorus": {"rate_hz": (0.0, 100.0), "depth": _UNIT, "centre_delay_ms": (1.0, 100.0),
               "feedback": (-1.0, 1.0), "mix": _UNIT},
    "phaser": {"rate_hz": (0.0, 100.0), "depth": _UNIT,
               "centre_frequency_hz": (0.0, SAMPLE_RATE / 2), "feedback": (-1.0, 1.0),
               "mix": _UNIT},
    "distortion": {"drive_db": (-INF, INF), "output_db": (-INF, INF)},
    "compressor": {"threshold_db": (-INF, INF), "ratio": (1.0, INF), "attack_ms": (0.0, INF),
                   "release_ms": (0.0, INF), "makeup_db": (-INF, INF)},
    "bitcrush": {"bit_depth": (0.0, 32.0)},
    "ladder_filter": {"cutoff_hz": (0.0, SAMPLE_RATE / 2), "resonance": _UNIT,
                      "drive": (1.0, INF)},
    "convolution": {"mix": _UNIT},
}


def describe_limits(low: float, high: float) -> str:
  """A valid range for people: '0..1', '>= 1' or 'any finite number'."""
  if high == INF:
    return f">= {low:g}" if low > -INF else "any finite number"
  return f"{low:g}..{high:g}"


def _within(value: float, limits: tuple) -> bool:
  return math.isfinite(value) and limits[0] <= value <= limits[1]


def _settings(who: str, kind: str, params: dict, ranges: dict) -> tuple:
  """(params, ranges) of a `kind` stage, checked against LIMITS[kind].

  `params` and `ranges` are the values and (low, high) ranges given, as
  numbers or text; a parameter without a value takes the middle of its range.
  """
  names = list(TYPES[kind].ranges)
  unknown = sorted((set(params) | set(ranges)) - set(names))
  if unknown:
    known = names + ["ir"] if kind == "convolution" else names
    raise UserError(f"{who} has no parameter {unknown[0]!r}; valid: {', '.join(known)}")
  ranges = {**TYPES[kind].ranges,
            **{k: tuple(_number(who, k, v) for v in span) for k, span in ranges.items()}}
  params = ({k: (lo + hi) / 2 for k, (lo, hi) in ranges.items()}
            | {k: _number(who, k, v) for k, v in params.items()})
  for name in names:
    limits, (low, high) = LIMITS[kind][name], ranges[name]
    valid = f"the valid range of {kind} {name} is {describe_limits(*limits)}"
    if not (_within(low, limits) and _within(high, limits)):
      raise UserError(f"{who}: range {name}={low:g}..{high:g} is out of range; {valid}")
    if low > high:
      raise UserError(f"{who}: range {name}={low:g}..{high:g} is empty; write LOW..HIGH "
                      "with LOW <= HIGH")
    if not _within(params[name], limits):
      raise UserError(f"{who}: {name}={params[name]:g} is out of range; {valid}")
  return params, ranges


def _number(who: str, name: str, value) -> float:
  try:
    return float(value)
  except (TypeError, ValueError):
    raise UserError(f"{who}: {name}={value!r} is not a number") from None


@dataclasses.dataclass(frozen=True)
class Plugin:
  """One effect of a chain (a pedalboard plugin): its type, parameters and their sampling ranges.

  `fixed` names the parameters given on the command line, which --randomize
  leaves alone. `impulse_response` is the IR (float32 [n] at 16 kHz) of a
  convolution, and `impulse_response_path` where it was read from.
  """
  type: str
  params: tuple  # ((name, value), ...) in the type's order.
  ranges: tuple  # ((name, (low, high)), ...)
  fixed: frozenset = frozenset()
  impulse_response: np.ndarray | None = dataclasses.field(
      default=None, compare=False, repr=False)
  impulse_response_path: str | None = None

  def describe(self) -> dict:
    out = {"type": self.type, "params": dict(self.params),
           "ranges": {k: list(v) for k, v in self.ranges}}
    if self.impulse_response_path:
      out["impulse_response"] = self.impulse_response_path
    return out


@dataclasses.dataclass(frozen=True)
class Effect:
  """A vocabulary entry: a name and a chain of plugins (empty for dry)."""
  name: str
  plugins: tuple = ()

  def param_names(self) -> list:
    return [f"{s.type}.{k}" for s in self.plugins for k, _ in s.params]

  def params(self, randomize: bool = False, seed: int = 0,
             key: str = "") -> np.ndarray:
    """Parameter values float32 [num_params], in `param_names` order.

    With `randomize`, every parameter not fixed on the command line is drawn
    uniformly from its range, from a generator seeded by (seed, key, name):
    the same note always gets the same values, whatever order notes come in.
    """
    values = [v for s in self.plugins for _, v in s.params]
    if randomize:
      digest = hashlib.blake2b(f"{seed}/{key}/{self.name}".encode(),
                               digest_size=8).digest()
      rng = np.random.default_rng(int.from_bytes(digest, "little"))
      values = []
      for s in self.plugins:
        ranges = dict(s.ranges)
        for name, value in s.params:
          draw = rng.uniform(*ranges[name])
          values.append(value if name in s.fixed else draw)
    return np.asarray(values, np.float32)

  def board(self, values: np.ndarray) -> pedalboard.Pedalboard:
    """The pedalboard chain for parameter `values` (from `params`)."""
    plugins, i = [], 0
    for s in self.plugins:
      kwargs = {name: float(values[i + j]) for j, (name, _) in enumerate(s.params)}
      i += len(s.params)
      if s.impulse_response is not None:
        kwargs["impulse_response"] = s.impulse_response
      plugins.extend(TYPES[s.type].build(**kwargs))
    return pedalboard.Pedalboard(plugins)

  def apply(self, audio: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Wet audio float32 [NUM_SAMPLES] from dry `audio` float32 [NUM_SAMPLES]."""
    if not self.plugins:
      return audio
    padded = np.pad(audio, (0, int(TAIL_PAD_SECONDS * SAMPLE_RATE)))
    wet = self.board(values)(padded, SAMPLE_RATE, reset=True)
    return np.ascontiguousarray(wet[:NUM_SAMPLES], np.float32)

  def describe(self) -> dict:
    return {"name": self.name, "chain": [s.describe() for s in self.plugins]}


def load_presets(path=None) -> dict:
  """Presets from configs/effects.yaml, checked against LIMITS.

  Returns {name: {type, params, ranges, [impulse_response]}} with every
  parameter's value and (low, high) range filled in; an impulse_response is
  resolved against the preset file's folder.
  """
  path = pathlib.Path(path or paths.CONFIG_DIR / "effects.yaml")
  try:
    with open(path) as f:
      loaded = yaml.safe_load(f)
  except (OSError, yaml.YAMLError) as e:
    raise UserError(f"cannot read effect presets {path} ({str(e).splitlines()[0]})") from None
  if not isinstance(loaded, dict):
    raise UserError(f"{path} must map preset names to presets")
  presets = {}
  for name, preset in loaded.items():
    who = f"preset {name!r} in {path}"
    if not isinstance(preset, dict) or preset.get("type") not in TYPES:
      raise UserError(f"{who} needs a type, one of {', '.join(TYPES)}")
    ranges = preset.get("ranges") or {}
    for key, span in ranges.items():
      if not isinstance(span, list) or len(span) != 2:
        raise UserError(f"{who}: write the range of {key} as [low, high]")
    params, ranges = _settings(who, preset["type"], preset.get("params") or {}, ranges)
    presets[name] = {"type": preset["type"], "params": params, "ranges": ranges}
    if preset.get("impulse_response"):
      presets[name]["impulse_response"] = str(
          path.parent / os.path.expanduser(preset["impulse_response"]))
  return presets


def catalogue() -> str:
  """The presets with their parameters, and each type's ranges for --randomize (with the
  values a parameter may take), as `reverbsynth effects` lists them."""
  lines = ["Presets (configs/effects.yaml):"]
  for name, preset in load_presets().items():
    params = ", ".join(f"{k}={v}" for k, v in preset.get("params", {}).items())
    lines.append(f"  {name:<14} {preset['type']:<14} {params}")
  lines.append("Types: each parameter's range for --randomize [and the values it may take]:")
  for name, kind in TYPES.items():
    ranges = ", ".join(f"{k} {lo:g}..{hi:g} [{describe_limits(*LIMITS[name][k])}]"
                       for k, (lo, hi) in kind.ranges.items())
    lines.append(f"  {name:<14} {ranges}")
  return "\n".join(lines)


def _read_impulse_response(path: str) -> np.ndarray:
  """The IR at `path`, mono float32 at 16 kHz; UserError unless it holds sound."""
  import soundfile as sf
  if not os.path.isfile(path):
    raise UserError(f"impulse response {path} does not exist")
  try:
    audio, rate = sf.read(path, dtype="float32")
  except (OSError, RuntimeError) as e:
    raise UserError(f"cannot read impulse response {path} ({e})") from None
  ir = to_mono(audio, rate)[0]
  if not (ir.size and np.isfinite(ir).all() and np.abs(ir).max() > 0):
    raise UserError(f"impulse response {path} is empty, silent or not finite")
  return ir


_TERM = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*(?:\((.*)\))?\s*$")


def _parse_overrides(text: str, term: str) -> dict:
  overrides = {}
  for item in filter(None, (s.strip() for s in (text or "").split(","))):
    key, sep, value = item.partition("=")
    if not sep:
      raise UserError(f"effect {term!r}: write parameters as name=value or name=low..high")
    if key.strip() in overrides:
      raise UserError(f"effect {term!r} gives {key.strip()} twice")
    overrides[key.strip()] = value.strip()
  return overrides


def _plugin(term: str, presets: dict) -> Plugin:
  match = _TERM.match(term)
  if not match:
    raise UserError(f"cannot read effect {term!r}: write NAME or NAME(param=value,...)")
  name, overrides = match.group(1), _parse_overrides(match.group(2), term)
  if name in presets:
    preset = presets[name]
  elif name in TYPES:
    preset = {"type": name, "params": {}, "ranges": {}}
  else:
    raise UserError(f"unknown effect {name!r}; valid: "
                    f"{', '.join(sorted(set(presets) | set(TYPES)))}")
  kind, who = preset["type"], f"effect {name!r}"
  ir_path = preset.get("impulse_response")
  if kind == "convolution" and "ir" in overrides:
    ir_path = storage.resolve(overrides.pop("ir"))
  values, ranges = {}, {}
  for key, text in overrides.items():
    low, dots, high = text.partition("..")
    if dots:
      ranges[key] = (low, high)
    else:
      values[key] = text
  kept = {k: v for k, v in preset["params"].items() if k not in ranges}
  params, ranges = _settings(who, kind, kept | values, {**preset["ranges"], **ranges})
  ir = None
  if kind == "convolution":
    if not ir_path:
      raise UserError(f"effect {name!r} needs an impulse response: {name}(ir=PATH.wav)")
    ir = _read_impulse_response(ir_path)
  names = TYPES[kind].ranges
  return Plugin(type=kind, params=tuple((k, float(params[k])) for k in names),
               ranges=tuple((k, tuple(map(float, ranges[k]))) for k in names),
               fixed=frozenset(values), impulse_response=ir,
               impulse_response_path=ir_path)


def parse(spec: str, presets: dict | None = None) -> Effect:
  """The Effect that an --effect spec names; raises UserError if it names none."""
  presets = load_presets() if presets is None else presets
  name = re.sub(r"\s+", "", spec)
  if name == DRY:
    return Effect(DRY)
  terms = re.split(r"\+(?![^(]*\))", spec)
  if not all(t.strip() for t in terms):
    raise UserError(f"effect {spec!r}: a chain needs an effect on each side of every '+'")
  plugins = tuple(_plugin(t, presets) for t in terms)
  types = [s.type for s in plugins]
  if len(set(types)) != len(types):
    raise UserError(f"effect {spec!r} uses one type twice; use one stage per type")
  return Effect(name, plugins)


def from_manifest(entry: dict) -> Effect:
  """The Effect of a manifest's effect entry ({"name", "chain": [{"type", "params"}]}), with
  the parameters it was rendered with (a convolution's impulse response is not in the
  manifest's parameters: such an entry is refused as its spec would be)."""
  if not entry["chain"]:
    return Effect(entry["name"])
  spec = "+".join(f"{stage['type']}(" + ", ".join(
      f"{k}={v}" for k, v in stage["params"].items()) + ")" for stage in entry["chain"])
  return dataclasses.replace(parse(spec, {}), name=entry["name"])


def vocabulary(specs, keep_dry: bool = True, presets: dict | None = None) -> list:
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
