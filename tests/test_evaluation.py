"""`evaluate`: real held-out notes score near-ideal, noise and an untrained generator poorly."""

import json
import logging
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from reverbsynth.data import manifest as manifest_lib, records
from reverbsynth.data.labels import Labels
from reverbsynth.evaluation import judge as classifier, scores as evaluation
from reverbsynth.runs import config as config_lib
from reverbsynth.synthesis import synthesizer
from reverbsynth.training import inputs as train_input
from tests.conftest import assert_refused, run_cli

PITCHES = (40, 47)


@pytest.fixture(scope="module")
def soundfont_dataset(tmp_path_factory):
  """SoundFont bass notes of 8 pitches, dry and reverb, with a test split."""
  out = tmp_path_factory.mktemp("eval") / "data"
  result = run_cli("build-dataset", "--family", "bass", "--pitch-min", PITCHES[0],
                   "--pitch-max", PITCHES[1], "--valid-fraction", 0, "--test-fraction", 0.2,
                   "--out", out, "--no-progress")
  assert result.returncode == 0, result.stderr
  return out


@pytest.fixture(scope="module")
def early_run(tmp_path_factory, soundfont_dataset):
  """A tiny run after its first stage only: a generator close to its initialization."""
  out = tmp_path_factory.mktemp("eval") / "run"
  result = run_cli("train", "--data", soundfont_dataset, "--config", "tiny", "--stages", 1,
                   "--out", out, "--no-progress")
  assert result.returncode == 0, result.stderr
  return out


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, early_run, soundfont_dataset):
  out = tmp_path_factory.mktemp("eval") / "report"
  result = run_cli("evaluate", "--run", early_run, "--data", soundfont_dataset, "--out", out,
                   "--classifier-epochs", 3, "--ndb-bins", 10, "--per-stage")
  assert result.returncode == 0, result.stderr
  return out, result


def test_report_has_a_near_ideal_real_row_and_a_poor_model_row(evaluated):
  out, result = evaluated
  for name in ("report.md", "report.json", "spectrograms.png", "rainbowgram.png", "metrics.png"):
    assert (out / name).is_file(), name
  report = json.loads((out / "report.json").read_text())
  real, fake = report["rows"]["real (test split)"], report["rows"]["generated"]
  assert report["judge_accuracy"]["pitch"] >= 0.9 and report["judge_accuracy"]["effect"] >= 0.9
  assert real["pitch_accuracy"] == report["judge_accuracy"]["pitch"]  # The same notes.
  assert real["pitch_entropy"] < 0.3 and real["inception_score_pitch"] > 6  # 8 pitches.
  assert real["ndb"] <= 2 and fake["ndb"] >= 6
  assert real["frechet_distance"] < fake["frechet_distance"] / 3
  assert real["f0_within_50_cents"] >= 0.9 > 0.3 > fake["f0_within_50_cents"]
  assert fake["pitch_accuracy"] < 0.5 and fake["pitch_entropy"] > real["pitch_entropy"]
  assert real["tail_db"]["reverb"] > real["tail_db"]["dry"]  # Reverb rings on after note-off.
  # --per-stage: the stage checkpoint, its EMA and its raw generator, as learning curves.
  assert "stage 1" in report["rows"] and "stage 1 raw" in report["rows"]
  assert report["curve"] == [{"row": "stage 1", "stage": 1, "images": 32, "generator": "ema"},
                             {"row": "stage 1 raw", "stage": 1, "images": 32, "generator": "raw"}]
  assert (out / "learning-curves.png").stat().st_size > 1000
  assert report["rows"]["stage 1 raw"] != report["rows"]["stage 1"]
  assert "| real (test split) (" in (out / "report.md").read_text()
  assert "training the judge" in result.stderr
  # Not a terminal: one line for the judge's training instead of a progress bar.
  assert re.search(r"^training the judge: \d+ steps in [\d.]+ s .*, loss [\d.e+-]+$",
                   result.stderr, re.M), result.stderr
  assert "\r" not in result.stderr + result.stdout and "━" not in result.stdout


def _chromium():
  """The headless browser's command, or a skip (outside root, where make cannot install it)."""
  found = shutil.which("chromium") or shutil.which("chromium-browser")
  if found is None and os.geteuid() != 0:
    pytest.skip("chromium is not installed (make system-deps installs it when run as root)")
  assert found, "chromium is missing: run `make system-deps` (as root it installs chromium)"
  return found


def test_report_page_plays_every_note_in_a_real_browser(evaluated, tmp_path):
  """report.html, opened by headless Chromium: every <audio> loads its WAV (duration > 0),
  no script error, and each effect shows the real and generated note of each pitch picked."""
  out, result = evaluated
  page = out / "report.html"
  assert f"to listen: {page}" in result.stdout
  command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--mute-audio",
             "--allow-file-access-from-files", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=20000", "--dump-dom", page.as_uri()]
  dom = subprocess.run(command, capture_output=True, text=True, timeout=300).stdout
  body = re.search(r"<body([^>]*)>", dom)
  assert body, dom[:2000]
  attributes = dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1)))
  players = len(re.findall(r"<audio ", page.read_text()))
  assert players >= 2 * 2 and attributes.get("players") == str(players), attributes
  assert attributes["loaded"] == str(players) and attributes["failed"] == "0", attributes
  assert attributes["errors"] == "", attributes
  for effect in ("dry", "reverb"):
    assert f"<h2>{effect}</h2>" in dom
  figures = re.findall(r'<audio[^>]*\ssrc="(notes/[^"]+)"', dom)
  assert len(figures) == players and all((out / f).stat().st_size > 44 for f in figures)
  assert "<td>" in dom and "learning-curves.png" in dom


def test_white_noise_scores_poorly_and_the_judge_is_cached(evaluated, early_run,
                                                           soundfont_dataset, caplog):
  synth = synthesizer.load(early_run)
  with caplog.at_level(logging.INFO, "reverbsynth"):
    judge = classifier.load_or_train(str(soundfont_dataset), synth.config, synth.labels, 3)
  assert not caplog.messages, f"retrained: {caplog.messages}"
  test = records.read_split(soundfont_dataset, "test", synth.num_samples)
  settings = evaluation.Settings(ndb_bins=10)
  train = records.read_split(soundfont_dataset, "train", synth.num_samples)
  reference = evaluation.references(judge, train["audio"])
  noise = np.random.default_rng(0).standard_normal(test["audio"].shape).astype(np.float32) * 0.1
  labels = (test["pitch"], test["effect"], test["family"], test["velocity"])
  scores = {name: evaluation.score(evaluation.Notes(name, audio, *labels), judge, reference,
                                   settings, synth.sample_rate, 1024, synth.labels.effects)
            for name, audio in (("real", test["audio"]), ("noise", noise))}
  assert scores["noise"]["pitch_accuracy"] < 0.3 < 0.9 < scores["real"]["pitch_accuracy"]
  assert scores["noise"]["f0_within_50_cents"] < 0.2
  assert scores["noise"]["ndb"] >= 8 >= 2 >= scores["real"]["ndb"]
  # Real test notes are not at 0 either (a few dozen notes against the training reference);
  # the factor between them depends on the judge's training, 8-10x on the machines tried.
  assert scores["noise"]["frechet_distance"] > 3 * scores["real"]["frechet_distance"]
  # The SoundFont's velocities change a note's level only (about 28 dB over 25..127): real
  # notes' level follows velocity, white noise of one level does not.
  assert scores["real"]["level_follows_velocity"] > 0.8
  assert abs(scores["noise"]["level_follows_velocity"]) < 0.5


def test_the_judge_does_not_hear_below_the_16_bit_floor(soundfont_dataset):
  """A SoundFont's dry notes end in exact digital silence, whose instantaneous frequency
  is a constant; noise far below anything audible makes it random. Without the judge's
  dither its effect head keyed on that: -160 dB of noise made it call 78 % of real dry
  notes "reverb" (README, bug hunt 12). What the judge sees of a dry note must not change
  with -140 dB of noise (measured: mean IF change 0.005 with the dither, 0.21 without)."""
  config = config_lib.load("ddsp", ["train.normalizer_examples=32"])
  labels = Labels.from_manifest(manifest_lib.read(soundfont_dataset), PITCHES[0],
                                PITCHES[1] - PITCHES[0] + 1)
  normalizer = train_input.compute_normalizer(soundfont_dataset, config, labels, 0,
                                              classifier.heard)
  judge = classifier.Judge(None, config, labels, normalizer, {})  # Its inputs need no model.
  test = records.read_split(soundfont_dataset, "test", config.audio.num_samples)
  dry = test["audio"][test["effect"] == labels.effects.index("dry")][:8]
  assert len(dry) == 8 and np.all(dry[:, -4000:] == 0)  # What a judge could key on.
  noise = np.random.default_rng(0).standard_normal(dry.shape).astype(np.float32) * 1e-7
  change = np.abs(np.asarray(judge.inputs(dry)) - np.asarray(judge.inputs(dry + noise)))
  magnitude, instantaneous_frequency = change.mean(axis=(0, 1, 2))
  assert magnitude < 0.01 and instantaneous_frequency < 0.03, change.mean(axis=(0, 1, 2))


def test_evaluate_bad_inputs(tmp_path, early_run, dataset, nsynth_tfrecord, run_here):
  assert_refused(run_here("evaluate", "--run", early_run, "--data", dataset, "--out",
                         tmp_path / "r"),
           "has no test split")
  other = tmp_path / "delay"
  assert run_cli("build-dataset", "--source", nsynth_tfrecord, "--out", other, "--effect",
                 "delay", "--no-progress").returncode == 0
  assert_refused(run_here("evaluate", "--run", early_run, "--data", other, "--out", tmp_path / "r"),
           "trained on effects ['dry', 'reverb'] but the dataset has ['dry', 'delay']")
  assert not (tmp_path / "r").exists()


def test_the_judges_embedding_cannot_die_whole():
  # Every embedding unit's input pushed far negative (what killed a Dense + ReLU embedding
  # in one training: constant for every note, bug hunt 21): about half stay active per note.
  model = classifier.build((16, 32, 2), Labels(0, 8, ("dry", "reverb")))
  projection = next(layer for layer in model.layers if layer.name.startswith("dense"))
  projection.bias.assign(np.full(classifier.EMBEDDING, -100.0, np.float32))
  x = np.random.default_rng(0).standard_normal((6, 16, 32, 2)).astype(np.float32)
  embedding = np.asarray(model(x)[0])
  assert 0.3 < (embedding > 0).mean() < 0.7
  assert np.ptp(embedding, axis=0).max() > 0  # Not the same for every note.
