"""Training configs, typed: YAML files in configs/ (each may name a `base` and list only what
differs from it), plus `section.key=value` overrides checked against the types here."""

import dataclasses
import logging
import os
import typing

import yaml

from reverbsynth import backend, paths, spectral
from reverbsynth.data import labels
from reverbsynth.errors import UserError
from reverbsynth.spectral import SpectralConfig

DEFAULT = "reverbsynth"
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class Audio:
  """Notes as the model hears them: resampled to `sample_rate`, the first `num_samples`."""
  sample_rate: int
  num_samples: int


@dataclasses.dataclass(frozen=True)
class Spectral:
  """STFT size and hop, frames per note, mel (IF-Mel) or linear bins, and how the mel
  matrix widens its narrow bands (spectral.mel_matrix)."""
  nfft: int
  hop: int
  frames: int
  mel: bool
  mel_bands: str = "separate"  # Saved configs from before the key have the matrix of then.


GENERATORS = ("progressive", "ddsp")
HARMONIC_SCALES = ("exp_sigmoid", "softmax")


@dataclasses.dataclass(frozen=True)
class Model:
  """Network shapes. `progressive`: spectra [start_shape * 2^(num_levels-1), 2] at the top
  level. `ddsp`: synth controls of start_shape[0] * 2^(num_levels-1) frames (fmap_* unused)."""
  latent_size: int
  num_pitches: int
  pitch_min: int
  start_shape: tuple[int, ...]
  num_levels: int
  fmap_base: int
  fmap_max: int
  generator: str = "progressive"  # Saved configs from before the ddsp family have none.
  # What G and D are conditioned on: pitch and effect, then any of data.labels.ATTRIBUTES
  # (family, velocity: the ddsp generator only), each with the dataset's vocabulary.
  conditions: tuple[str, ...] = ("pitch", "effect")


@dataclasses.dataclass(frozen=True)
class Ddsp:
  """The ddsp generator's synths and networks (model.ddsp): harmonics and noise bands per
  frame, the effects' learned impulse responses' length, the networks' channels, the mel
  bands that the critic and the encoder see; `noise_follows_amplitude` scales the noise
  bands by the note's amplitude (its floor falls with the note; saved configs from before
  the key play free noise); `detune_cents` lets each note's f0 deviate from its pitch by a
  learned amount within +- that many cents (0: the pitch's exact f0, as in saved configs
  from before the key); `response_step` scales how fast the responses' taps and dry gains
  move against the network's weights (1: as in saved configs from before the key);
  `harmonic_scale` makes the harmonic distribution from the network's logits: `exp_sigmoid`
  (DDSP's, normalized to sum 1; saved configs from before the key) or `softmax`."""
  harmonics: int = 100
  noise_bands: int = 65
  response_seconds: float = 2.5
  channels: int = 128
  critic_mels: int = 128
  noise_follows_amplitude: bool = False
  detune_cents: float = 0.0
  response_step: float = 1.0
  harmonic_scale: str = "exp_sigmoid"


@dataclasses.dataclass(frozen=True)
class Loss:
  """WGAN-GP penalty, drift and auxiliary-classifier weights, projection critic, envelope
  loss weight (model.losses says what each term is)."""
  gp_weight: float
  drift: float
  ac_weight: float
  projection: bool
  envelope: float
  reconstruction: float = 0.0  # ddsp: multi-scale spectral loss of encoded real notes.
  kl: float = 0.0              # ddsp: the encoder's KL divergence to the prior N(0, 1).
  response: float = 0.0        # ddsp: multi-scale spectral loss of real dry notes through the
                               # responses.
  adversarial: float = 1.0     # ddsp: weight of G's critic and auxiliary-classifier terms.
  spectral_sizes: tuple[int, ...] = (2048, 1024, 512, 256, 128, 64)  # ddsp: the multi-scale
                               # spectral loss's FFT sizes.


@dataclasses.dataclass(frozen=True)
class Optimizer:
  """Adam's settings; the generator EMA's half-life as a fraction of a stage's images."""
  learning_rate: float
  beta_1: float
  beta_2: float
  ema_half_life: float


@dataclasses.dataclass(frozen=True)
class Schedule:
  """Images per stage (a stable or a fade-in stage) and the batch size per level."""
  images_per_stage: int
  batch_size: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Train:
  """How the loop runs: checkpoints, summaries, input, samples, precision, devices, and the
  Keras backend that trains (runs of either backend render, resume and evaluate under both)."""
  checkpoint_minutes: int
  summary_steps: int
  normalizer_margin: float
  normalizer_examples: int
  sample_pitches: tuple[int, ...]
  xla: bool
  deterministic: bool
  precision: str
  distribute: bool
  backend: str = "tensorflow"  # Saved configs from before the JAX backend have none.


@dataclasses.dataclass(frozen=True)
class Config:
  """A whole training config; `to_dict` is its YAML (a run's config.yaml, generator.json)."""
  name: str
  seed: int
  audio: Audio
  spectral: Spectral
  model: Model
  loss: Loss
  optimizer: Optimizer
  schedule: Schedule
  train: Train
  ddsp: Ddsp = Ddsp()

  def __post_init__(self):
    if len(self.schedule.batch_size) != self.model.num_levels:
      raise UserError(f"schedule.batch_size needs one size per level ({self.model.num_levels})")
    for key, value, choices in [("model.generator", self.model.generator, GENERATORS),
                                ("ddsp.harmonic_scale", self.ddsp.harmonic_scale, HARMONIC_SCALES),
                                ("spectral.mel_bands", self.spectral.mel_bands, spectral.MEL_BANDS),
                                ("train.backend", self.train.backend, backend.NAMES),
                                ("train.precision", self.train.precision, PRECISIONS)]:
      if value not in choices:
        raise UserError(f"{key} {value!r} is not one of {', '.join(choices)}")
    conditions = self.model.conditions
    if (conditions[:2] != ("pitch", "effect") or len(set(conditions)) != len(conditions)
        or not set(conditions[2:]) <= set(labels.ATTRIBUTES)):
      raise UserError(f"model.conditions {list(conditions)} must be pitch, effect, then any "
                      f"of {', '.join(labels.ATTRIBUTES)} (each once)")
    if conditions[2:] and self.model.generator != "ddsp":
      raise UserError(f"model.conditions {', '.join(conditions[2:])} need model.generator "
                      "ddsp (the progressive generator is conditioned on pitch and effect)")
    sizes = self.loss.spectral_sizes
    if not sizes or min(sizes) < 4 or max(sizes) > self.audio.num_samples:
      raise UserError(f"loss.spectral_sizes {list(sizes)} needs at least one FFT size, each "
                      f"from 4 to audio.num_samples ({self.audio.num_samples})")
    if self.train.backend == "jax" and self.train.precision == "mixed_float16":
      raise UserError("train.precision mixed_float16 needs loss scaling, which the JAX "
                      "backend does not do: use mixed_bfloat16 (or float32)")

  def spectral_config(self) -> SpectralConfig:
    return spectral.SpectralConfig(self.audio.sample_rate, self.audio.num_samples,
                                   self.spectral.nfft, self.spectral.hop, self.spectral.frames,
                                   self.spectral.mel, self.spectral.mel_bands)

  def to_dict(self) -> dict:
    """Plain YAML/JSON values: sections as dicts, tuples as lists."""
    def plain(value):
      if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
      return list(value) if isinstance(value, tuple) else value
    return plain(self)

  @classmethod
  def from_dict(cls, data: dict) -> "Config":
    """The config of `data` (as to_dict writes it); UserError for an unknown, missing or
    mistyped key."""
    return _build(cls, data, "")


# Keys that configs saved by older versions hold and that mean nothing now: read past.
# train.shuffle_buffer: tf.data's shuffle block, before both backends shared one stream
# whose every epoch permutes all the records (training.inputs).
RETIRED = ("train.shuffle_buffer",)


def _build(kind, data, where: str):
  """An instance of the dataclass `kind` from the dict `data` at key path `where`."""
  if not isinstance(data, dict):
    raise UserError(f"config key {where!r} takes a dict, not {data!r}")
  data = {k: v for k, v in data.items() if _join(where, k) not in RETIRED}
  fields = {f.name: f for f in dataclasses.fields(kind)}
  hints = typing.get_type_hints(kind)
  for key in data:
    if key not in fields:
      raise UserError(f"config key {_join(where, key)!r} does not exist (valid under "
                      f"{where or 'the top level'}: {', '.join(fields)})")
  missing = [k for k, f in fields.items() if k not in data
             and f.default is dataclasses.MISSING]
  if missing:
    raise UserError(f"config is missing {_join(where, missing[0])!r}: give it in the YAML "
                    "or its base")
  values = {}
  for key in fields:
    if key not in data:
      continue  # A default.
    hint, path = hints[key], _join(where, key)
    if dataclasses.is_dataclass(hint):
      values[key] = _build(hint, data[key], path)
    else:
      values[key] = _typed(path, data[key], hint)
  return kind(**values)


def _join(where: str, key: str) -> str:
  return f"{where}.{key}" if where else key


def _typed(key: str, value, hint):
  """`value` as a `hint` (int, float, bool, str or Tuple[int, ...]); UserError if it is not one."""
  if typing.get_origin(hint) is tuple:
    if not isinstance(value, (list, tuple)):
      raise UserError(f"config key {key!r} takes a list, not {value!r}")
    return tuple(_typed(key, v, typing.get_args(hint)[0]) for v in value)
  if hint in (int, float) and isinstance(value, str):
    try:
      value = float(value)  # YAML reads 1e30 (no dot) as a string.
    except ValueError:
      pass
  if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
    return value
  if hint is int and isinstance(value, (int, float)) and not isinstance(value, bool) \
      and float(value).is_integer():
    return int(value)
  if hint in (bool, str) and isinstance(value, hint):
    return value
  raise UserError(f"config key {key!r} takes a {hint.__name__}, not {value!r}")


def _path(name, relative_to=None) -> str:
  """The YAML file of a config name (in configs/) or path (against `relative_to`'s folder)."""
  name = os.path.expanduser(str(name))
  for candidate in (os.path.join(os.path.dirname(relative_to or ""), name), name):
    if os.path.isfile(candidate):
      return candidate
  candidate = paths.CONFIG_DIR / (name if name.endswith(".yaml") else f"{name}.yaml")
  if candidate.is_file():
    return str(candidate)
  known = sorted(p.stem for p in paths.CONFIG_DIR.glob("*.yaml") if p.stem != "effects")
  raise UserError(f"config {name!r} not found; give a YAML file or one of: {', '.join(known)}")


def _merge(base: dict, over: dict) -> dict:
  """`base` with `over`'s keys, sections merged key by key."""
  out = dict(base)
  for key, value in over.items():
    out[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(
        base.get(key), dict) else value
  return out


def _read(path: str, seen=()) -> dict:
  """The YAML at `path` over its `base` (recursively), as a dict."""
  real = os.path.realpath(path)  # A cycle is one however its paths are spelled.
  if real in seen:
    raise UserError(f"config {path} is its own base (through {', '.join(seen)})")
  with open(path) as f:
    data = yaml.safe_load(f) or {}
  if not isinstance(data, dict):
    raise UserError(f"config {path} is not a YAML mapping")
  base = data.pop("base", None)
  return _merge(_read(_path(base, path), (*seen, real)), data) if base else data


def _override(data: dict, item: str) -> dict:
  """`data` with one `section.key=value` set; the key must exist (types are checked later)."""
  key, sep, text = item.partition("=")
  if not sep:
    raise UserError(f"override {item!r}: write key.path=value, e.g. schedule.images_per_stage=1000")
  parts = key.strip().split(".")
  node, kind = data, typing.cast(type | None, Config)  # The dataclass at node.
  for depth, part in enumerate(parts):
    # A key of the dataclasses counts even where an older YAML (a run's saved config) lacks it.
    fields = {f.name for f in dataclasses.fields(kind)} if kind is not None else set()
    if not isinstance(node, dict) or part not in set(node) | fields:
      where = ".".join(parts[:depth]) or "the top level"
      valid = ", ".join(sorted(set(node) | fields)) if isinstance(node, dict) else "none"
      raise UserError(f"config key {key!r} does not exist (valid under {where}: {valid})")
    hint = typing.get_type_hints(kind).get(part) if kind is not None else None
    kind = hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None
    if depth < len(parts) - 1:
      node = node.setdefault(part, {}) if kind is not None else node[part]
  value = yaml.safe_load(text)
  if (kind is not None or isinstance(node.get(parts[-1]), dict)) and not isinstance(value, dict):
    raise UserError(f"config key {key!r} takes a dict, not {value!r}")
  node[parts[-1]] = value
  return data


def load(name=None, overrides=()) -> Config:
  """The config named `name` (a YAML file, or a name in configs/; default reverbsynth) with
  `section.key=value` overrides."""
  data = _read(_path(name or DEFAULT))
  for item in overrides:
    data = _override(data, item)
  return Config.from_dict(data)


def fitting(accelerator: bool) -> str:
  """The name of the config that fits the machine (said on stderr, with why): the paper's
  spectral GAN with an accelerator, the 16 kHz ddsp generator without."""
  name, why = ("reverbsynth", "the paper's spectral GAN, for this machine's GPU") if accelerator \
      else ("ddsp", "the 16 kHz ddsp generator, which trains on this machine's CPU (--config "
                    "reverbsynth for the paper's spectral GAN, about a GPU-week)")
  logging.getLogger(__name__).info(f"config {name}: {why}")
  return name
