"""Typed training configs: YAML bases, strict keys and types, the shipped model's config."""

import json

import pytest
import yaml

from reverbsynth import paths
from reverbsynth.errors import UserError
from reverbsynth.runs import config as config_lib, files

SHIPPED = ("tiny", "cpu", "reverbsynth", "gansynth")


@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_configs_load_and_round_trip(name):
  config = config_lib.load(name)
  assert config.name == name
  assert config_lib.Config.from_dict(config.to_dict()) == config
  assert isinstance(config.schedule.batch_size, tuple) and config.spectral_config().bins > 0


def test_a_config_lists_only_what_differs_from_its_base(tmp_path):
  path = tmp_path / "mine.yaml"
  path.write_text("base: tiny\nname: mine\nschedule: {images_per_stage: 48}\n")
  mine, tiny = config_lib.load(str(path)).to_dict(), config_lib.load("tiny").to_dict()
  assert mine["schedule"] == {**tiny["schedule"], "images_per_stage": 48}
  assert {k: v for k, v in mine.items() if k not in ("name", "schedule")} == \
      {k: v for k, v in tiny.items() if k not in ("name", "schedule")}
  # The shipped ones too: cpu names only what differs from reverbsynth.
  cpu = yaml.safe_load((paths.CONFIG_DIR / "cpu.yaml").read_text())
  assert cpu["base"] == "reverbsynth" and "seed" not in cpu and "beta_1" not in cpu["optimizer"]


@pytest.mark.parametrize("text, message", [
    ("base: tiny\nschedule: {images_per_stag: 48}\n", "'schedule.images_per_stag' does not exist"),
    ("base: tiny\nloss: {ac_weight: heavy}\n", "'loss.ac_weight' takes a float"),
    ("base: tiny\nmodel: {start_shape: 8}\n", "'model.start_shape' takes a list"),
    ("base: tiny\nschedule: {batch_size: [8, 8]}\n", "one size per level (3)"),
    ("name: bare\n", "missing 'seed'"),
    ("base: loop.yaml\n", "is its own base"),
    ("base: ./loop.yaml\n", "is its own base"),
])
def test_a_bad_yaml_is_refused_with_the_key(tmp_path, text, message):
  path = tmp_path / "loop.yaml"
  path.write_text(text)
  with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
    config_lib.load(str(path))


def test_overrides_keep_the_types_of_the_config():
  config = config_lib.load("tiny", ["optimizer.learning_rate=1e-3", "schedule.images_per_stage=64",
                                    "model.start_shape=[4, 16]", "train.xla=true",
                                    "schedule.batch_size=[4, 4, 4]",
                                    "train.checkpoint_minutes=1e1"])
  assert config.optimizer.learning_rate == 1e-3 and config.model.start_shape == (4, 16)
  assert config.schedule.images_per_stage == 64 and config.train.xla is True
  assert config.schedule.batch_size == (4, 4, 4) and config.train.checkpoint_minutes == 10
  for bad, message in [("optimizer.learning_rate=fast", "takes a float"),
                       ("schedule.images_per_stage=1.5", "takes a int"),
                       ("train.xla=maybe", "takes a bool"), ("model=3", "takes a dict"),
                       ("schedule.batch_size=[4, 4.5, 4]", "takes a int"),
                       ("train.sample_pitches=36", "takes a list"),
                       ("nope.key=1", "does not exist"), ("train.precision=3", "takes a str"),
                       ("train.backend=torch", "not one of tensorflow, jax"),
                       ("spectral.mel_bands=htk", "not one of gansynth, separate"),
                       ("ddsp.harmonic_scale=sigmoid", "not one of exp_sigmoid, softmax"),
                       ("loss.spectral_sizes=[]", "needs at least one FFT size"),
                       ("loss.spectral_sizes=[2048, 2]", "each from 4 to"),
                       ("loss.spectral_sizes=[1000000]", "each from 4 to"),
                       ("ddsp.nope=1", "does not exist")]:
    with pytest.raises(UserError, match=message):
      config_lib.load("tiny", [bad])


def _within(saved: dict, full: dict) -> bool:
  """Whether every key of `saved` is in `full` with the same value, section by section."""
  return all(_within(value, full[key]) if isinstance(value, dict) else
             key in full and full[key] == value for key, value in saved.items())


def test_the_shipped_model_was_trained_with_the_shipped_ddsp_config():
  with open(f"{files.PRETRAINED}/{files.GENERATOR_JSON}") as f:
    saved = json.load(f)["config"]
  config = config_lib.Config.from_dict(saved)
  # Every key it was trained with is read back as it was (keys added since take defaults).
  assert _within(saved, config.to_dict())
  # configs/ddsp.yaml is what trained it: a change to the config without a new model fails
  # here (retrain and ship, or say in the config what it used).
  assert config.to_dict() == config_lib.load("ddsp").to_dict()
  assert config.model.generator == "ddsp" and config.ddsp.detune_cents > 0


def test_a_config_saved_before_the_ddsp_family_and_the_jax_backend_loads_with_defaults():
  # What the 2 kHz model shipped before wrote (git history: reverbsynth/pretrained): no
  # train.backend, model.generator, ddsp section, ddsp loss weights or spectral.mel_bands
  # (its mel matrix, had it used mel, was the one widened apart).
  current = config_lib.load("cpu").to_dict()
  assert current["spectral"]["mel_bands"] == "gansynth"
  current["spectral"]["mel_bands"] = "separate"
  saved = {**{k: v for k, v in current.items() if k != "ddsp"},
           "spectral": {k: v for k, v in current["spectral"].items() if k != "mel_bands"},
           "model": {k: v for k, v in current["model"].items() if k != "generator"},
           "train": {**{k: v for k, v in current["train"].items() if k != "backend"},
                     "shuffle_buffer": 512},  # Retired: read past.
           "loss": {k: current["loss"][k] for k in ("gp_weight", "drift", "ac_weight",
                                                    "projection", "envelope")}}
  config = config_lib.Config.from_dict(saved)
  assert config.train.backend == "tensorflow" and config.model.generator == "progressive"
  assert config.loss.adversarial == 1.0 and config.loss.reconstruction == 0.0
  assert config.to_dict() == current


def test_overrides_may_set_keys_that_an_older_saved_config_lacks(tmp_path):
  # A run trained before loss.spectral_sizes and the ddsp section saved a config.yaml
  # without them; fine-tuning it with those keys set is asked of the dataclasses' keys.
  saved = config_lib.load("tiny").to_dict()
  del saved["ddsp"], saved["loss"]["spectral_sizes"]
  path = tmp_path / "config.yaml"
  path.write_text(yaml.safe_dump(saved))
  config = config_lib.load(str(path), ["ddsp.harmonic_scale=softmax",
                                       "loss.spectral_sizes=[512, 128]"])
  assert config.ddsp.harmonic_scale == "softmax" and config.loss.spectral_sizes == (512, 128)
  assert config.ddsp.detune_cents == config_lib.Ddsp().detune_cents
  for bad, message in [("ddsp=3", "takes a dict"), ("ddsp.nope=1", "does not exist")]:
    with pytest.raises(UserError, match=message):
      config_lib.load(str(path), [bad])
