"""Where reverbsynth keeps things by default, and where the repo's configs are."""

import os
import pathlib

CONFIG_DIR = pathlib.Path(
    os.environ.get("REVERBSYNTH_CONFIGS",
                   pathlib.Path(__file__).resolve().parent.parent / "configs"))


def home() -> pathlib.Path:
  """Root of datasets and runs: $REVERBSYNTH_HOME, else ~/reverbsynth."""
  return pathlib.Path(
      os.environ.get("REVERBSYNTH_HOME", pathlib.Path.home() / "reverbsynth"))


def default_dataset_dir(effect_names, families) -> pathlib.Path:
  """Default output of build-dataset, e.g. ~/reverbsynth/datasets/reverb-bass."""
  effects = "_".join(e.replace("+", "-") for e in effect_names) or "dry"
  fams = "_".join(sorted(families)) if families else "all"
  return home() / "datasets" / f"{effects}-{fams}"
