"""Fixtures: small NSynth inputs in the exact NSynth formats, and a CLI runner."""

import json
import os
import pathlib
import subprocess
import sys

import filelock
import pytest
import soundfile as sf

from reverbsynth.data.notes import note as note_lib
from reverbsynth.data.notes.soundfont import render_note

REPO = pathlib.Path(__file__).resolve().parent.parent

# JAX's persistent compilation cache, shared by the suite's processes (both xdist workers and
# every CLI subprocess, which inherit the environment), set before anything imports JAX (the
# data modules above do not). Each process compiles the tiny configs' steps and eager ops
# again otherwise: a tiny-ddsp run of 2 stages takes 79 s cold and 25 s from the cache on 2
# cores. The size bound turns on the cache's file lock (filelock), so that no process reads
# another's half-written entry.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".pytest_cache" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(1 << 30))

# (family, source, GM program, pitch, velocity, qualities set) of the fixture notes.
FIXTURE_NOTES = [
    ("bass", "acoustic", 32, 36, 100, ()),
    ("bass", "acoustic", 32, 43, 127, ()),
    ("bass", "electronic", 33, 40, 75, ()),
    ("bass", "synthetic", 38, 48, 100, ()),
    ("bass", "electronic", 34, 31, 50, ("reverb",)),
    ("keyboard", "acoustic", 0, 60, 100, ()),
    ("keyboard", "acoustic", 0, 72, 50, ("reverb", "bright")),
    ("guitar", "acoustic", 24, 52, 100, ()),
    ("string", "acoustic", 40, 67, 127, ()),
    ("flute", "acoustic", 73, 79, 100, ()),
]


def _metadata(family, source, program, pitch, velocity, qualities):
  fam, src = note_lib.FAMILIES.index(family), note_lib.SOURCES.index(source)
  instrument_str, note_str = note_lib.nsynth_names(fam, src, program, pitch, velocity)
  return {
      "note_str": note_str, "pitch": pitch, "velocity": velocity,
      "sample_rate": 16000, "instrument": program, "instrument_str": instrument_str,
      "instrument_family": fam, "instrument_family_str": family,
      "instrument_source": src, "instrument_source_str": source,
      "qualities": [int(q in qualities) for q in note_lib.QUALITIES],
      "qualities_str": [q for q in note_lib.QUALITIES if q in qualities],
  }


@pytest.fixture(scope="session")
def fixture_notes():
  """[(NSynth metadata dict, audio float32 [64000])], rendered by FluidSynth."""
  return [(_metadata(*n), render_note(_default_sf2(), n[2], n[3], n[4]))
          for n in FIXTURE_NOTES]


def _default_sf2():
  from reverbsynth.data.notes.soundfont import default_soundfont
  return default_soundfont()


def write_nsynth_tfrecord(path, notes):
  """Writes notes as NSynth does, with TensorFlow's own Example and writer."""
  import tensorflow as tf
  with tf.io.TFRecordWriter(str(path)) as writer:
    for i, (meta, audio) in enumerate(notes):
      feature = {
          "note": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
          "audio": tf.train.Feature(float_list=tf.train.FloatList(value=audio.tolist())),
      }
      for key, value in meta.items():
        values = value if isinstance(value, list) else [value]
        if key == "qualities_str" or isinstance(value, str):
          feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[v.encode() for v in values]))
        else:
          feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
      example = tf.train.Example(features=tf.train.Features(feature=feature))
      writer.write(example.SerializeToString())


@pytest.fixture(scope="session")
def nsynth_tfrecord(tmp_path_factory, fixture_notes):
  path = tmp_path_factory.mktemp("nsynth") / "nsynth-test.tfrecord"
  write_nsynth_tfrecord(path, fixture_notes)
  return path


@pytest.fixture(scope="session")
def nsynth_jsonwav(tmp_path_factory, fixture_notes):
  """An NSynth json/wav directory; one note at 22.05 kHz and 2 s long, one unreadable wav."""
  import librosa
  root = tmp_path_factory.mktemp("nsynth-json")
  (root / "audio").mkdir()
  examples = {}
  for i, (meta, audio) in enumerate(fixture_notes[:4]):
    meta = dict(meta)
    note_str = meta.pop("note_str")
    meta["note"] = i
    if i == 1:
      audio = librosa.resample(audio[:32000], orig_sr=16000, target_sr=22050)
      meta["sample_rate"] = 22050
    examples[note_str] = meta
    sf.write(root / "audio" / f"{note_str}.wav", audio, meta["sample_rate"], subtype="PCM_16")
  broken = dict(_metadata("bass", "acoustic", 32, 50, 100, ()), note=99)
  examples[broken.pop("note_str")] = broken
  (root / "audio" / "bass_acoustic_032-050-100.wav").write_bytes(b"not a wav file")
  (root / "examples.json").write_text(json.dumps(examples))
  return root


def run_cli(*args, env=None, timeout=600):
  """Runs `reverbsynth ARGS` in a subprocess; returns the CompletedProcess."""
  return subprocess.run([sys.executable, "-m", "reverbsynth", *map(str, args)],
                        capture_output=True, text=True, timeout=timeout,
                        env={**os.environ, **(env or {})}, cwd=REPO)


def in_process(capsys, *args):
  """`reverbsynth ARGS` run by cli.run in this process (no interpreter start-up), as a
  CompletedProcess."""
  from reverbsynth import cli
  code = cli.run([str(a) for a in args])
  out, err = capsys.readouterr()
  return subprocess.CompletedProcess(args, code, out, err)


@pytest.fixture
def run_here(capsys):
  """run_cli's twin for commands whose process does not matter: in_process, no start-up
  (an interpreter importing TensorFlow costs seconds a call)."""
  return lambda *args: in_process(capsys, *args)


def assert_refused(result, *fragments: str) -> None:
  """`result` (of run_cli) failed as bad input must: exit 2, one error line holding `fragments`."""
  assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
  errors = [line for line in result.stderr.splitlines() if line.startswith("reverbsynth: error:")]
  assert len(errors) == 1, result.stderr
  assert "Traceback" not in result.stderr
  for fragment in fragments:
    assert fragment in errors[0], errors[0]


@pytest.fixture
def home(tmp_path, monkeypatch):
  """A private $REVERBSYNTH_HOME."""
  monkeypatch.setenv("REVERBSYNTH_HOME", str(tmp_path / "home"))
  return tmp_path / "home"


def _built_once(tmp_path_factory, name: str, *args):
  """(directory, stdout) of `reverbsynth ARGS --out DIR`, run once for the whole test run:
  xdist workers share it (the first runs it under a file lock, the others wait), so that a
  session fixture is not built again by each worker. Tests only read what it holds."""
  root = tmp_path_factory.getbasetemp()
  if "PYTEST_XDIST_WORKER" in os.environ:
    root = root.parent  # This run's, above every worker's own.
  out, stdout = root / name, root / f"{name}.stdout"
  with filelock.FileLock(str(root / f"{name}.lock")):
    if not stdout.exists():
      result = run_cli(*args, "--out", out)
      assert result.returncode == 0, result.stderr
      stdout.write_text(result.stdout)
  return out, stdout.read_text()


@pytest.fixture(scope="session")
def dataset(tmp_path_factory, nsynth_tfrecord):
  """The fixture notes, dry and reverb, all in the training split."""
  return _built_once(tmp_path_factory, "train-data", "build-dataset", "--source",
                     nsynth_tfrecord, "--effect", "reverb", "--valid-fraction", 0,
                     "--test-fraction", 0, "--no-progress")[0]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, dataset):
  """(directory, stdout) of a configs/tiny.yaml run trained for 3 stages (level 2 of 3)
  through the CLI."""
  return _built_once(tmp_path_factory, "tiny-run", "train", "--data", dataset, "--config",
                     "tiny", "--stages", 3, "--no-progress")
