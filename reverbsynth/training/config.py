"""Training configs: YAML files in configs/, plus `key.path=value` overrides."""

import copy
import os

import yaml

from reverbsynth import paths
from reverbsynth.errors import UserError

DEFAULT = "reverbsynth.yaml"


def _resolve_path(name) -> str:
  if name is None:
    return str(paths.CONFIG_DIR / DEFAULT)
  if os.path.isfile(name):
    return name
  candidate = paths.CONFIG_DIR / (name if name.endswith(".yaml") else f"{name}.yaml")
  if candidate.is_file():
    return str(candidate)
  known = sorted(p.stem for p in paths.CONFIG_DIR.glob("*.yaml") if p.stem != "effects")
  raise UserError(f"config {name!r} not found; give a YAML file or one of: {', '.join(known)}")


def _override(config: dict, item: str) -> None:
  key, sep, text = item.partition("=")
  if not sep:
    raise UserError(f"override {item!r}: write key.path=value, e.g. schedule.images_per_stage=1000")
  node, parts = config, key.strip().split(".")
  for depth, part in enumerate(parts):
    if not isinstance(node, dict) or part not in node:
      where = ".".join(parts[:depth]) or "the top level"
      valid = ", ".join(sorted(node)) if isinstance(node, dict) else "none"
      raise UserError(f"config key {key!r} does not exist (valid under {where}: {valid})")
    if depth == len(parts) - 1:
      node[part] = _typed(key, yaml.safe_load(text), node[part])
    node = node[part]


def _typed(key: str, value, old):
  """`value` as the type of the value it replaces: numbers stay numbers, and so on."""
  if isinstance(old, bool) or old is None:
    ok = isinstance(value, bool) or old is None
  elif isinstance(old, (int, float)):
    if isinstance(value, str):
      try:
        value = float(value)  # YAML reads 1e30 (no dot) as a string.
      except ValueError:
        pass
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and isinstance(old, int) and not isinstance(old, bool):
      ok = float(value).is_integer()
      value = int(value) if ok else value
  else:
    ok = isinstance(value, type(old))
  if not ok:
    raise UserError(f"config key {key!r} takes a {type(old).__name__}, not {value!r}")
  return value


def load(name=None, overrides=()) -> dict:
  """The config named `name` (file or configs/ stem; default reverbsynth) with overrides."""
  path = _resolve_path(name)
  with open(path) as f:
    config = yaml.safe_load(f)
  config = copy.deepcopy(config)
  for item in overrides:
    _override(config, item)
  levels = config["model"]["num_levels"]
  if len(config["schedule"]["batch_size"]) != levels:
    raise UserError(f"schedule.batch_size needs one size per level ({levels})")
  return config
