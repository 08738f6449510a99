"""Refusals of build-dataset and effects: exit 2, one line on stderr, nothing left behind.

Each case runs through the command line (cli.run), in the working directory
`workdir` (which holds the inputs the cases refer to), and the directory tree
must be the same afterwards. A pipeline that fails for a reason not the user's
is exit 1 and one line, and keeps what was there.
"""

import glob
import os
import pathlib
import stat
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import soundfile as sf

from reverbsynth import cli
from tests.conftest import assert_refused

BEAM_LOGS = os.path.join(tempfile.gettempdir(), "reverbsynth-beam-*")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
  """The working directory, with a file, bad inputs and an existing dataset."""
  (tmp_path / "afile.txt").write_text("a file, not a folder\n")
  (tmp_path / "not-a-wav.wav").write_text("not a wav file\n")
  sf.write(tmp_path / "silent.wav", np.zeros(800, np.float32), 16000)
  (tmp_path / "corrupt.tfrecord").write_bytes(bytes(range(100)))
  (tmp_path / "broken-json").mkdir()
  (tmp_path / "broken-json" / "examples.json").write_text("{not json")
  (tmp_path / "old").mkdir()
  (tmp_path / "old" / "manifest.json").write_text("{}\n")
  (tmp_path / "old" / "train-00000-of-00001.tfrecord").write_bytes(b"old shard")
  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv("REVERBSYNTH_HOME", str(tmp_path / "home"))
  return tmp_path


def tree(root: pathlib.Path) -> dict:
  """{relative path: (size, mtime) of a file, or None for a folder} under `root`."""
  return {str(p.relative_to(root)): None if p.is_dir() else (p.stat().st_size,
                                                             p.stat().st_mtime_ns)
          for p in root.rglob("*")}




BUILD = ("build-dataset", "--out", "ds", "--no-progress")  # A later --out wins.
CASES = {
    "unknown effect": ([*BUILD, "--effect", "reverbb"], ["unknown effect 'reverbb'; valid:"]),
    "unknown parameter": ([*BUILD, "--effect", "reverb(size=1)"],
                          ["effect 'reverb' has no parameter 'size'; valid: room_size"]),
    "parameter out of range": ([*BUILD, "--effect", "reverb(room_size=5)"],
                               ["effect 'reverb': room_size=5", "reverb room_size is 0..1"]),
    "parameter not a number": ([*BUILD, "--effect", "delay(mix=lots)"],
                               ["effect 'delay': mix='lots' is not a number"]),
    "randomize range out of range": (
        [*BUILD, "--randomize", "--effect", "chorus(feedback=0..1.5)"],
        ["effect 'chorus': range feedback=0..1.5", "chorus feedback is -1..1"]),
    "randomize range empty": ([*BUILD, "--randomize", "--effect", "room(damping=0.9..0.1)"],
                              ["effect 'room': range damping=0.9..0.1 is empty"]),
    "chain with an empty stage": ([*BUILD, "--effect", "reverb+"],
                                  ["effect 'reverb+': a chain needs an effect"]),
    "chain using a type twice": ([*BUILD, "--effect", "reverb+hall"], ["one type twice"]),
    "unreadable spec": ([*BUILD, "--effect", "reverb(room_size=0.5"],
                        ["cannot read effect 'reverb(room_size=0.5'"]),
    "effect given twice": ([*BUILD, "--effect", "delay", "--effect", "delay"],
                           ["effect 'delay' is given twice"]),
    "missing impulse response": ([*BUILD, "--effect", "convolution(ir=missing.wav)"],
                                 ["impulse response {cwd}/missing.wav does not exist"]),
    "unreadable impulse response": ([*BUILD, "--effect", "convolution(ir=not-a-wav.wav)"],
                                    ["cannot read impulse response {cwd}/not-a-wav.wav"]),
    "silent impulse response": ([*BUILD, "--effect", "plate(ir=silent.wav)"],
                                ["impulse response {cwd}/silent.wav is empty, silent"]),
    "--out is a file": ([*BUILD, "--out", "afile.txt"],
                        ["--out {cwd}/afile.txt: {cwd}/afile.txt is a file, not a directory"]),
    "--out under a file": ([*BUILD, "--out", "afile.txt/ds"],
                           ["--out {cwd}/afile.txt/ds: {cwd}/afile.txt is a file"]),
    "existing dataset": ([*BUILD, "--out", "old"],
                         ["{cwd}/old already holds a dataset: give --overwrite"]),
    "missing source": ([*BUILD, "--source", "nowhere.tfrecord"],
                       ["source '{cwd}/nowhere.tfrecord' does not exist"]),
    "corrupt tfrecord": ([*BUILD, "--source", "corrupt.tfrecord"],
                         ["{cwd}/corrupt.tfrecord is not a readable TFRecord file"]),
    "broken examples.json": ([*BUILD, "--source", "broken-json"],
                             ["{cwd}/broken-json/examples.json is not valid JSON"]),
    "missing SoundFont": ([*BUILD, "--source", "soundfont:nowhere.sf2"],
                          ["SoundFont not found: {cwd}/nowhere.sf2"]),
    "not a SoundFont": ([*BUILD, "--source", "soundfont:afile.txt"],
                        ["{cwd}/afile.txt is not a SoundFont 2 file"]),
    "unknown family": ([*BUILD, "--family", "drums"], ["unknown family 'drums'; valid: bass"]),
    "unknown instrument source": ([*BUILD, "--instrument-source", "analog"],
                                  ["unknown instrument source 'analog'"]),
    "unknown quality": ([*BUILD, "--exclude-quality", "wet"], ["unknown quality 'wet'"]),
    "pitch-min above pitch-max": ([*BUILD, "--pitch-min", "60", "--pitch-max", "40"],
                                  ["pitch range 60..40 is empty"]),
    "velocity outside MIDI": ([*BUILD, "--velocity", "200"],
                              ["velocity 200 is outside MIDI 1..127"]),
    "fractions leave no train": ([*BUILD, "--valid-fraction", "0.6", "--test-fraction", "0.5"],
                                 ["leave room for train"]),
    "fraction out of range": ([*BUILD, "--test-fraction", "1.5"], ["'--test-fraction'"]),
    "no notes wanted": ([*BUILD, "--max-notes", "0"], ["'--max-notes'"]),
    "filters select nothing": ([*BUILD, "--family", "bass", "--velocity", "26"],
                               ["the filters select no notes"]),
    "filters select nothing, found by the pipeline": (
        [*BUILD, "--source", "{nsynth}", "--family", "vocal",
         "--direct_running_mode=in_memory", "--direct_num_workers=1"],
        ["the filters selected no notes from {nsynth}"]),
    "unknown option": ([*BUILD, "--famliy", "bass"], ["unknown option --famliy"]),
    "bad Beam value": ([*BUILD, "--direct_num_workers=two"],
                       ["bad Beam option", "--direct_num_workers", "'two'"]),
    "unknown Beam runner": ([*BUILD, "--family", "bass", "--runner=NoSuchRunner"],
                            ["Unexpected pipeline runner: NoSuchRunner"]),
    "stray argument": ([*BUILD, "song.mid"], ["unexpected argument 'song.mid'"]),
    "effects: unknown option": (["effects", "--all"], ["No such option '--all'"]),
    "effects: stray argument": (["effects", "reverb"], ["unexpected extra argument (reverb)"]),
}


@pytest.mark.parametrize("args, fragments", CASES.values(), ids=CASES.keys())
def test_refusal_is_one_line_and_leaves_nothing(workdir, capsys, request, args, fragments):
  places = {"cwd": workdir}
  if "{nsynth}" in args:
    places["nsynth"] = request.getfixturevalue("nsynth_tfrecord")
  args = [a.format(**places) for a in args]
  before, logs = tree(workdir), set(glob.glob(BEAM_LOGS))
  code = cli.run(args)
  err = capsys.readouterr().err
  assert_refused(subprocess.CompletedProcess(args, code, "", err),
                 *(f.format(**places) for f in fragments))
  assert len(err.splitlines()) == 1, err
  assert tree(workdir) == before
  assert set(glob.glob(BEAM_LOGS)) == logs


@pytest.mark.parametrize("args, fragment", [
    (["--effect", "reverb(room_size=5)"], "the valid range of reverb room_size is 0..1"),
    (["--out", "afile.txt"], "afile.txt is a file, not a directory"),
])
def test_refusal_seen_as_a_user_does(workdir, args, fragment):
  """The installed command in a subprocess: stderr is that one line, nothing else."""
  before = tree(workdir)
  result = subprocess.run([str(pathlib.Path(sys.executable).parent / "reverbsynth"),
                           "build-dataset", "--out", "ds", *args],
                          capture_output=True, text=True, timeout=300, cwd=workdir)
  assert_refused(result, fragment)
  assert len(result.stderr.splitlines()) == 1, result.stderr
  assert tree(workdir) == before


def test_a_failing_pipeline_is_exit_1_one_line_and_keeps_the_old_dataset(
    workdir, capsys, monkeypatch):
  from reverbsynth.pipelines import build_dataset

  def crash(self, note):
    raise RuntimeError("worker crashed")

  monkeypatch.setattr(build_dataset.RenderRecords, "process", crash)
  before = tree(workdir)
  code = cli.run(["build-dataset", "--out", "old", "--overwrite", "--no-progress",
                  "--source", "soundfont", "--family", "bass", "--pitch-min", "40",
                  "--pitch-max", "40", "--velocity", "100",
                  "--direct_running_mode=in_memory", "--direct_num_workers=1"])
  err = capsys.readouterr().err
  assert code == 1
  assert len(err.splitlines()) == 1 and "Traceback" not in err, err
  assert err.startswith("reverbsynth: failed: in the pipeline: worker crashed"), err
  log = err.strip().rsplit("(Beam log: ", 1)[1].rstrip(")")
  try:
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600  # Private to its user.
    assert "worker crashed" in pathlib.Path(log).read_text()
  finally:
    os.remove(log)
  assert tree(workdir) == before
