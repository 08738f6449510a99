"""The package as users get it: a wheel of the checkout, installed in a fresh venv, run elsewhere.

The fresh venv gets reverbsynth only from the wheel. To stay fast and offline, its
dependencies are those of the project's .venv, seen through a .pth file: first without the
`train` extra (what Dataflow/Flink/Spark workers install), then with it, to train.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "reverbsynth", "pipelines", "configs")
# Top-level names in site-packages that only the `train` extra brings.
TRAIN_ONLY = ("tensorflow", "tensorboard", "keras", "jax", "matplotlib", "mpl_toolkits", "pylab")
TRAIN_MODULES = ("tensorflow", "keras", "tensorboard", "matplotlib", "jax")


def _run(args, cwd, env=None, timeout=600):
  result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
  assert result.returncode == 0, (args, result.stdout, result.stderr)
  return result


def _wheel(tmp_path) -> pathlib.Path:
  """A wheel built from a copy of the checkout (the build leaves nothing in the checkout)."""
  src, dist = tmp_path / "src", tmp_path / "dist"
  src.mkdir()
  for name in BUILD_INPUTS:
    if (REPO / name).is_dir():
      shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    else:
      shutil.copy2(REPO / name, src / name)
  _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        "-w", dist, src], cwd=tmp_path)
  (wheel,) = dist.glob("reverbsynth-*.whl")
  return wheel


def _worker_site(tmp_path) -> pathlib.Path:
  """.venv's site-packages less what only `train` brings, as a folder of links."""
  site, farm = pathlib.Path(sysconfig.get_paths()["purelib"]), tmp_path / "worker-site"
  farm.mkdir()
  for entry in site.iterdir():
    if not entry.name.lower().startswith(TRAIN_ONLY) and not entry.name.endswith(".pth") \
        and "reverbsynth" not in entry.name:
      (farm / entry.name).symlink_to(entry)
  return farm


@pytest.mark.install
def test_the_wheel_installs_anywhere_builds_on_a_worker_install_and_trains(tmp_path):
  """`pip install reverbsynth-*.whl` in a fresh venv; effects and build-dataset without the
  train extra (tensorflow not importable), every verb that runs a model refused in one line
  there, then train --config tiny with it."""
  venv = tmp_path / "venv"
  _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
  python = venv / "bin" / "python"
  site = pathlib.Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                            "['purelib'])"], cwd=tmp_path).stdout.strip())
  (site / "deps.pth").write_text(f"{_worker_site(tmp_path)}\n")
  _run([python, "-m", "pip", "install", "-q", "--no-deps", _wheel(tmp_path)], cwd=tmp_path)

  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
  env["REVERBSYNTH_HOME"] = str(tmp_path / "home")
  where = _run([python, "-c", "import reverbsynth, reverbsynth.pipelines\n"
                "from reverbsynth import paths\n"
                "print(reverbsynth.__file__, reverbsynth.pipelines.__file__, paths.CONFIG_DIR)"],
               cwd=elsewhere, env=env).stdout.split()
  assert all(p.startswith(str(site)) for p in where), where
  shipped = site / "reverbsynth" / "pretrained"  # The model render plays when no run exists.
  assert {f.name for f in shipped.iterdir()} >= {"generator.json", "generator.float16.npz"}
  with pytest.raises(subprocess.CalledProcessError):
    subprocess.run([python, "-c", "import tensorflow"], cwd=elsewhere, env=env, check=True,
                   capture_output=True)

  reverbsynth = venv / "bin" / "reverbsynth"
  listing = _run([reverbsynth, "effects"], cwd=elsewhere, env=env).stdout
  assert "plate" in listing and "ladder_filter" in listing
  _run([reverbsynth, "build-dataset", "--family", "bass", "--pitch-min", 40, "--pitch-max", 41,
        "--velocity", 100, "--max-notes", 4, "--effect", "reverb", "--effect", "plate",
        "--valid-fraction", 0, "--test-fraction", 0, "--out", "ds", "--no-progress"],
       cwd=elsewhere, env=env)
  counts = json.loads((elsewhere / "ds" / "manifest.json").read_text())["counts"]
  assert counts["notes_selected"] == 4 and counts["records"] == 12
  assert counts["per_effect"] == {"dry": 4, "reverb": 4, "plate": 4}
  assert counts["per_split"]["train"]["records"] == 12

  (elsewhere / "song.mid").write_bytes(b"MThd")
  (elsewhere / "in.wav").write_bytes(b"RIFF")
  for verb, *args in (("train",), ("generate",), ("render", "song.mid"), ("export", "--out", "x"),
                      ("apply", "in.wav", "--effect", "reverb"), ("evaluate",)):
    refused = subprocess.run([reverbsynth, verb, *args], cwd=elsewhere, env=env, timeout=120,
                             capture_output=True, text=True)
    assert refused.returncode == 2, (verb, refused.stderr)
    assert refused.stderr.splitlines() == [
        f"reverbsynth: error: 'reverbsynth {verb}' needs the train extra (tensorflow, keras, "
        "jax, tensorboard, tensorboardX, matplotlib not installed): pip install "
        "'reverbsynth[train]'"], verb
  assert not (elsewhere / "x").exists()

  (site / "train.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n")
  _run([reverbsynth, "train", "--config", "tiny", "--stages", 1, "--data", "ds", "--out", "run",
        "--no-progress"], cwd=elsewhere, env=env)
  run = elsewhere / "run"
  assert (run / "generator" / "generator.json").is_file()
  assert "name: tiny" in (run / "config.yaml").read_text()


def test_the_dataset_pipeline_never_imports_tensorflow():
  """What Beam workers import to build a dataset works without the train extra."""
  code = ("import sys\n"
          "import reverbsynth.pipelines.build_dataset, reverbsynth.pipelines.sharded_sink\n"
          "import reverbsynth.cli\n"
          "import reverbsynth.data.notes.nsynth, reverbsynth.data.notes.soundfont, "
          "reverbsynth.data.effects\n"
          f"print(*[m for m in {TRAIN_MODULES} if m in sys.modules])")
  result = _run([sys.executable, "-c", code], cwd=REPO)
  assert result.stdout.strip() == ""
