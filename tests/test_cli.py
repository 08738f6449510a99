"""The command line: help on every verb, the effect listing matching what --effect accepts, a
quiet start-up (library log lines only with --verbose), progress fit for a terminal or a log."""

import io
import os
import re
import select
import shutil
import sys
import threading

import pytest

from reverbsynth import console
from reverbsynth.data import effects
from reverbsynth.progress import Progress
from tests.conftest import run_cli

# What TensorFlow, absl, CUDA and oneDNN print: absl/glog lines and their notices.
LIBRARY_LINE = re.compile(r"^[IWEF]\d{4} |cuda|onednn|absl|grappler|remapper", re.I | re.M)


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
    assert effects.parse(name).plugins


def test_training_in_a_log_shows_no_library_lines_and_one_line_per_stage(tmp_path, dataset,
                                                                         home):
  shutil.copytree(dataset, home / "datasets" / "ds")
  result = run_cli("train", "--config", "tiny", "--stages", 2, "--out", tmp_path / "run")
  assert result.returncode == 0, result.stderr
  assert not LIBRARY_LINE.search(result.stderr), result.stderr
  assert "\r" not in result.stderr
  number = r"[-+\d.e]+"
  assert re.fullmatch(
      rf"reverbsynth: training on {re.escape(str(home / 'datasets' / 'ds'))} \(the latest "
      r"dataset; --data to choose\)\n"
      rf"stage 1/2 \(stable level 1\): 32 images in {number} s \({number} images/s\), "
      rf"d {number}, g {number}\n"
      rf"stage 2/2 \(fade-in level 2\): 32 images in {number} s \({number} images/s\), "
      rf"d {number}, g {number}\n", result.stderr), result.stderr


@pytest.mark.parametrize("verbose", [False, True])
def test_library_lines_show_only_with_verbose(tmp_path, tiny_run, verbose):
  result = run_cli(*["--verbose"] * verbose, "generate", "--run", tiny_run[0], "--pitch", 40,
                   "--effect", "reverb", "--out", tmp_path)
  assert result.returncode == 0, result.stderr
  assert bool(LIBRARY_LINE.search(result.stderr)) == verbose, result.stderr


class _Terminal(io.StringIO):
  def isatty(self):
    return True


@pytest.mark.parametrize("stream", [io.StringIO, _Terminal])
def test_progress_is_a_bar_on_a_terminal_and_a_line_per_phase_in_a_log(monkeypatch, stream):
  for enabled in (True, False):
    monkeypatch.setattr(sys, "stderr", stream())
    with Progress(enabled, 8, "note", "first") as bar:
      for i in range(8):
        bar.update(1, "first" if i < 3 else "second", loss=0.25)
    text = sys.stderr.getvalue()
    if not enabled:
      assert text == ""
    elif stream is _Terminal:
      assert "\r" in text and "8/8" in text and " in " not in text
    else:
      assert re.fullmatch(r"first: 3 notes in [\d.]+ s \([\d.e+]+ notes/s\), loss 0.25\n"
                          r"second: 5 notes in [\d.]+ s \([\d.e+]+ notes/s\), loss 0.25\n",
                          text), text


def test_native_log_filter_drops_library_lines_and_passes_the_rest_at_once():
  source, into = os.pipe()
  out, sink = os.pipe()
  copier = threading.Thread(target=console.copy_lines, args=(source, sink))
  copier.start()
  os.write(into, b"\rbuild-dataset:  50%")  # A bar's update: no newline, and not held back.
  assert select.select([out], [], [], 10)[0]
  assert os.read(out, 1024) == b"\rbuild-dataset:  50%"
  os.write(into, b"WARNING: All log messages before absl::InitializeLog() is called are "
                 b"written to STDERR\n"
                 b"I0000 00:00:1795442682.659939    4639 port.cc:153] oneDNN custom operations\n"
                 b"E0000 00:00:1795442688.299550    4639 cuda_platform.cc:52] failed call to "
                 b"cuInit: INTERNAL: CUDA error\n"
                 b"W0412 10:01:02.123456 77 meta_optimizer.cc:967] remapper failed\n"
                 b"reverbsynth: a line of ours\n"
                 b"F0000 00:00:17.1 4639 check.cc:1] Check failed: fatal lines stay\n"
                 b"Important: ends without a newline")
  os.close(into)
  copier.join()
  os.close(sink)
  assert os.read(out, 4096) == (
      b"reverbsynth: a line of ours\n"
      b"F0000 00:00:17.1 4639 check.cc:1] Check failed: fatal lines stay\n"
      b"Important: ends without a newline")
  os.close(source)
  os.close(out)
