"""Refusals of train, generate, render and evaluate: exit 2, one line naming the problem, and
nothing left behind. A failure that is not the user's (NaN losses): exit 1, one line, the run
kept."""

import json
import shutil

import numpy as np
import pretty_midi
import pytest

from tests.conftest import assert_refused, in_process, run_cli


def tree(*roots) -> dict:
  """{path: size and mtime of a file, None for a directory} of everything under `roots`."""
  found = {}
  for root in roots:
    for path in [root, *root.rglob("*")]:
      if path.exists():
        found[path] = None if path.is_dir() else (path.stat().st_size, path.stat().st_mtime_ns)
  return found


def _midi(path, notes, is_drum=False):
  song = pretty_midi.PrettyMIDI()
  inst = pretty_midi.Instrument(33, is_drum=is_drum, name="Bass")
  inst.notes = [pretty_midi.Note(100, p, s, e) for p, s, e in notes]
  song.instruments.append(inst)
  song.write(str(path))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, dataset, tiny_run):
  """Inputs that each refusal needs, in one folder; {name: path}, with the tiny run and data."""
  ws = tmp_path_factory.mktemp("refusals")
  _midi(ws / "song.mid", [(40, 0.0, 0.5)])
  _midi(ws / "empty.mid", [])
  _midi(ws / "drums.mid", [(36, 0.0, 0.1)], is_drum=True)
  (ws / "text.mid").write_text("not a midi file")
  (ws / "file.txt").write_text("a file where a directory should be")
  np.save(ws / "z.npy", np.zeros((2, 7), np.float32))
  other_run = ws / "run-delay"  # The tiny run as if trained on other effects.
  shutil.copytree(tiny_run[0], other_run)
  labels = json.loads((other_run / "labels.json").read_text())
  (other_run / "labels.json").write_text(json.dumps({**labels, "effects": ["dry", "delay"]}))
  other_data = ws / "data-delay"  # The dataset as if built with other effects.
  shutil.copytree(dataset, other_data)
  manifest = json.loads((other_data / "manifest.json").read_text())
  manifest["effects"][1]["name"] = "delay"
  (other_data / "manifest.json").write_text(json.dumps(manifest))
  return {"ws": ws, "run": tiny_run[0], "data": dataset, "other_run": other_run,
          "other_data": other_data}


TINY = ["--config", "tiny", "--data", "{data}"]

# (command line with {placeholders} from `workspace` and {new}, a path that must stay absent;
#  fragments of the error line)
REFUSALS = {
    "train: unknown config": (["train", "--config", "nope", "--data", "{data}"],
                              ["config 'nope' not found"]),
    "train: bad override key": (["train", *TINY, "--out", "{new}", "model.latent_sise=8"],
                                ["config key 'model.latent_sise' does not exist"]),
    "train: bad override type": (["train", *TINY, "--out", "{new}",
                                  "optimizer.learning_rate=fast"], ["takes a float"]),
    "train: no dataset": (["train", "--config", "tiny", "--out", "{new}"],
                          ["no dataset under", "give --data"]),
    "train: not a dataset": (["train", "--config", "tiny", "--data", "{ws}", "--out", "{new}"],
                             ["is not a reverbsynth dataset"]),
    "train: --stages out of range": (["train", *TINY, "--out", "{new}", "--stages", 9],
                                     ["--stages 9: config 'tiny' has 5 stages (3 levels)"]),
    "train: run exists, no --resume": (["train", *TINY, "--out", "{run}"],
                                       ["already holds a run: give --resume"]),
    "train: resume with other labels": (["train", *TINY, "--out", "{other_run}", "--resume"],
                                        ["do not match the run's ['dry', 'delay']"]),
    "train: bad precision": (["train", *TINY, "--out", "{new}/run", "train.precision=half"],
                             ["train.precision 'half' is not one of float32"]),
    "train: bad backend": (["train", *TINY, "--out", "{new}/run", "train.backend=torch"],
                           ["train.backend 'torch' is not one of tensorflow, jax"]),
    "train: float16 on JAX": (["train", *TINY, "--out", "{new}/run", "--backend", "jax",
                               "train.precision=mixed_float16"],
                              ["mixed_float16 needs loss scaling, which the JAX backend"]),
    "train: no notes in the pitch range, found late": (
        ["train", *TINY, "--out", "{new}/run", "model.pitch_min=100"],
        ["training split has no notes in the model's pitch range 100..160"]),
    "train: --out is a file": (["train", *TINY, "--out", "{ws}/file.txt/run"],
                               ["file.txt is a file, not a directory"]),
    "train: conditions out of order": (["train", *TINY, "--out", "{new}/run",
                                        "model.conditions=[effect, pitch]"],
                                       ["model.conditions ['effect', 'pitch'] must be pitch, "
                                        "effect, then any of family, velocity"]),
    "train: families on the progressive generator": (
        ["train", *TINY, "--out", "{new}/run", "model.conditions=[pitch, effect, family]"],
        ["model.conditions family need model.generator ddsp"]),
    "generate: no run": (["generate", "--out", "{new}"], ["no trained run under"]),
    "generate: unknown effect": (["generate", "--run", "{run}", "--effect", "chorus", "--out",
                                  "{new}"], ["knows no effect 'chorus'; it was trained on dry"]),
    "generate: pitch out of range": (["generate", "--run", "{run}", "--pitch", 100, "--out",
                                      "{new}"], ["pitch 100 is outside the model's range 24..84"]),
    "generate: latents of another shape": (["generate", "--run", "{run}", "--latents",
                                            "{ws}/z.npy", "--out", "{new}"],
                                           ["shape (2, 7); the run needs latents of shape"]),
    "generate: latents not .npy": (["generate", "--run", "{run}", "--latents", "{ws}/text.mid",
                                    "--out", "{new}"], ["is not a .npy array file"]),
    "generate: no latents file": (["generate", "--run", "{run}", "--latents", "{ws}/none.npy",
                                   "--out", "{new}"], ["latents file", "none.npy does not exist"]),
    "generate: --interpolate, one latent": (["generate", "--run", "{run}", "--interpolate", 4,
                                             "--out", "{new}"],
                                            ["--interpolate needs two latents"]),
    "generate: --out is a file": (["generate", "--run", "{run}", "--out", "{ws}/file.txt"],
                                  ["file.txt is a file, not a directory"]),
    "generate: --family, a model without families": (
        ["generate", "--run", "{run}", "--family", "bass", "--out", "{new}"],
        ["not conditioned on the instrument family", "leave out --family"]),
    "render: no such MIDI file": (["render", "{ws}/none.mid", "--run", "{run}"],
                                  ["does not exist"]),
    "render: not a MIDI file": (["render", "{ws}/text.mid", "--run", "{run}", "--out", "{new}"],
                                ["is not a readable MIDI file"]),
    "render: MIDI with no notes": (["render", "{ws}/empty.mid", "--run", "{run}", "--out",
                                    "{new}"], ["holds no notes"]),
    "render: only drums": (["render", "{ws}/drums.mid", "--run", "{run}", "--out", "{new}"],
                           ["only drum tracks: give --drums"]),
    "render: no run": (["render", "{ws}/song.mid", "--out", "{new}"], ["no trained run under"]),
    "render: run without generator": (["render", "{ws}/song.mid", "--run", "{ws}", "--out",
                                       "{new}"], ["holds no exported generator"]),
    "render: unknown effect": (["render", "{ws}/song.mid", "--run", "{run}", "--effect",
                                "chorus", "--out", "{new}"],
                               ["not trained on effect 'chorus'; it knows dry, reverb"]),
    "render: unknown track": (["render", "{ws}/song.mid", "--run", "{run}", "--effect",
                               "piano=dry", "--out", "{new}"],
                              ["no track is 'piano'; the tracks are 1 'Bass'"]),
    "render: --family, a model without families": (
        ["render", "{ws}/song.mid", "--run", "{run}", "--family", "Bass=bass", "--out",
         "{new}"], ["not conditioned on the instrument family", "leave out --family"]),
    "render: bad --sample-rate": (["render", "{ws}/song.mid", "--run", "{run}", "--sample-rate",
                                   100, "--out", "{new}"], ["--sample-rate", "8000<=x<=384000"]),
    "render: --out is a directory": (["render", "{ws}/song.mid", "--run", "{run}", "--out",
                                      "{ws}"], ["is a directory: give a file name"]),
    "evaluate: no run": (["evaluate", "--data", "{data}", "--out", "{new}"],
                         ["no trained run under"]),
    "evaluate: no test split": (["evaluate", "--run", "{run}", "--data", "{data}", "--out",
                                 "{new}"], ["has no test split"]),
    "evaluate: other effects": (["evaluate", "--run", "{run}", "--data", "{other_data}", "--out",
                                 "{new}"], ["trained on effects ['dry', 'reverb'] but the "
                                            "dataset has ['dry', 'delay']"]),
    "evaluate: --out is a file": (["evaluate", "--run", "{run}", "--data", "{data}", "--out",
                                   "{ws}/file.txt"], ["file.txt is a file, not a directory"]),
}


def _args(template, places) -> list:
  return [str(a).format(**places) for a in template]


@pytest.mark.parametrize("case", REFUSALS)
def test_refusal_exits_2_with_one_line_and_leaves_nothing(case, workspace, tmp_path, home,
                                                          capsys, monkeypatch):
  template, fragments = REFUSALS[case]
  monkeypatch.setenv("REVERBSYNTH_PRETRAINED", "")  # "no run": no shipped model to fall back on.
  new = tmp_path / "new"
  places = {k: str(v) for k, v in workspace.items()} | {"new": str(new)}
  roots = [workspace["ws"], workspace["run"], workspace["data"], tmp_path]
  before = tree(*roots)
  result = in_process(capsys, *_args(template, places))
  assert_refused(result, *fragments)
  assert len(result.stderr.splitlines()) == 1, result.stderr
  assert tree(*roots) == before
  assert not new.exists() and not home.exists()


@pytest.mark.parametrize("case", ["render: not a MIDI file", "train: --stages out of range"])
def test_refusal_in_a_subprocess_is_the_only_line_on_stderr(case, workspace, tmp_path):
  template, fragments = REFUSALS[case]
  places = {k: str(v) for k, v in workspace.items()} | {"new": str(tmp_path / "new")}
  result = run_cli(*_args(template, places))
  assert_refused(result, *fragments)
  assert result.stderr.splitlines() == [line for line in result.stderr.splitlines()
                                        if line.startswith("reverbsynth: error:")]
  assert list(tmp_path.iterdir()) == []


def test_nan_loss_fails_with_exit_1_one_line_and_keeps_the_run(tmp_path, dataset):
  out = tmp_path / "nan"
  result = run_cli("train", "--data", dataset, "--config", "tiny", "--out", out, "--stages", 3,
                   "optimizer.learning_rate=1e30", "--no-progress")
  assert result.returncode == 1, (result.stdout, result.stderr)
  assert result.stderr.startswith("reverbsynth: failed: loss became NaN at step ")
  assert len(result.stderr.splitlines()) == 1, result.stderr
  assert "last good checkpoint" in result.stderr and "Traceback" not in result.stderr
  assert (out / "labels.json").is_file() and (out / "config.yaml").is_file()
