"""The command line: help on every verb, and the effect listing matching what --effect accepts."""

import re

import pytest

from reverbsynth import effects
from tests.conftest import run_cli


@pytest.mark.parametrize("verb", [[], ["build-dataset"], ["effects"]])
def test_every_verb_has_help(verb):
  result = run_cli(*verb, "--help")
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith("Usage: reverbsynth")


def test_build_dataset_help_names_its_options():
  text = run_cli("build-dataset", "--help").stdout
  for option in ("--source", "--effect", "--family", "--randomize", "--keep-dry / --no-dry",
                 "--exclude-quality", "--max-notes", "--overwrite"):
    assert option in text


def test_effects_lists_every_preset_and_each_one_parses():
  result = run_cli("effects")
  assert result.returncode == 0, result.stderr
  listed = re.findall(r"^  (\w+)\s", result.stdout, flags=re.M)
  presets = effects.load_presets()
  assert set(presets) | set(effects.TYPES) == set(listed)
  for name in listed:
    assert effects.parse(name).stages
