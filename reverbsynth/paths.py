"""Where reverbsynth keeps things by default, and where its configs are."""

import logging
import os
import pathlib
import re
from importlib import resources

from reverbsynth.errors import UserError

# The package data reverbsynth.configs (the project's configs/ folder): presets, training
# configs, impulse responses. A directory on disk: reverbsynth is not installed zipped.
CONFIG_DIR = pathlib.Path(str(resources.files("reverbsynth.configs")))


def home() -> pathlib.Path:
  """Root of datasets and runs: $REVERBSYNTH_HOME, else ~/reverbsynth."""
  return pathlib.Path(
      os.environ.get("REVERBSYNTH_HOME", pathlib.Path.home() / "reverbsynth"))


def slug(text: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def default_dataset_dir(effect_names, families) -> pathlib.Path:
  """Default output of build-dataset, e.g. ~/reverbsynth/datasets/reverb-bass."""
  effects = "_".join(slug(e) for e in effect_names) or "dry"
  fams = "_".join(sorted(families)) if families else "all"
  return home() / "datasets" / f"{effects}-{fams}"


def latest_dataset() -> pathlib.Path | None:
  """The most recently built dataset under home()/datasets, if any."""
  manifests = sorted((home() / "datasets").glob("*/manifest.json"),
                     key=lambda p: p.stat().st_mtime)
  return manifests[-1].parent if manifests else None


def default_run_dir(config_name: str, data_dir) -> pathlib.Path:
  """Default run directory, e.g. ~/reverbsynth/runs/reverbsynth-reverb-bass."""
  return home() / "runs" / f"{slug(config_name)}-{pathlib.Path(data_dir).name}"


def latest_run() -> pathlib.Path | None:
  """The run under home()/runs whose generator was exported last, if any."""
  exported = sorted((home() / "runs").glob("*/generator/generator.json"),
                    key=lambda p: p.stat().st_mtime)
  return exported[-1].parent.parent if exported else None


def given_or_latest(given, found, what: str, option: str, maker: str, doing: str):
  """`given`, else `found` (the newest dataset or run, said on stderr); UserError when none."""
  if given is not None:
    return given
  if found is None:
    raise UserError(f"no {what} under {home()}: make one with 'reverbsynth {maker}', "
                    f"or give {option}")
  logging.getLogger(__name__).info(f"{doing} {found} (the latest {what}; {option} to choose)")
  return found


def dataset(given, doing: str):
  """--data, else the dataset build-dataset wrote last (said on stderr, as `doing` it)."""
  return given_or_latest(given, latest_dataset(), "dataset", "--data", "build-dataset", doing)
