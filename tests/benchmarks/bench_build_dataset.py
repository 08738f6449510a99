"""build-dataset speed against a naive loop, and its peak memory at N and 4N notes.

Input: N dry notes (rendered once from the built-in SoundFont, cached in
.bench-cache/) as an NSynth TFRecord; 4N is the same audio under 4x as many
distinct note names, so that the work per note is the same.

Baseline: one process, for each note: tf.train.Example.FromString, reverb with
pedalboard, tf.train.FloatList(value=ndarray) for the dry and the wet record,
tf.io.TFRecordWriter. The pipeline: `reverbsynth build-dataset --source ...
--effect reverb` as a user runs it, start-up included.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import psutil

from reverbsynth.data import example_proto, tfrecord
from reverbsynth.data.notes import note as note_lib
from reverbsynth.data.notes.soundfont import GM_PROGRAMS, default_soundfont, render_note

REPO = pathlib.Path(__file__).resolve().parents[2]
CACHE = REPO / ".bench-cache"
N = int(os.environ.get("BENCH_NOTES", 1000))
SPEED_TARGET, MEMORY_TARGET = 3.0, 1.2


def _note_features(family, source, program, pitch, velocity, audio):
  instrument_str, note_str = note_lib.nsynth_names(family, source, program, pitch, velocity)
  return {
      "note_str": note_str, "pitch": pitch, "velocity": velocity, "audio": audio,
      "sample_rate": 16000, "instrument": program, "instrument_str": instrument_str,
      "instrument_family": family, "instrument_family_str": note_lib.FAMILIES[family],
      "instrument_source": source, "instrument_source_str": note_lib.SOURCES[source],
      "qualities": np.zeros(10, np.int64), "qualities_str": [],
  }


def dry_notes(n):
  """n distinct rendered notes [(family, source, program, pitch, velocity, audio)], cached."""
  cache = CACHE / f"notes-{n}.npz"
  if cache.exists():
    data = np.load(cache)
    return list(zip(*[data[k].tolist() for k in ("family", "source", "program", "pitch",
                                                 "velocity")], data["audio"]))
  combos = [(p, pitch, v) for p in sorted(GM_PROGRAMS) for pitch in range(36, 72, 3)
            for v in (50, 100, 127)]
  rng = np.random.default_rng(0)
  picks = [combos[i] for i in sorted(rng.choice(len(combos), n, replace=False))]
  print(f"rendering {n} notes for the benchmark input (cached in {CACHE})...", flush=True)
  notes = []
  for program, pitch, velocity in picks:
    family, source = GM_PROGRAMS[program]
    notes.append((note_lib.FAMILIES.index(family), note_lib.SOURCES.index(source),
                  program, pitch, velocity,
                  render_note(default_soundfont(), program, pitch, velocity)))
  CACHE.mkdir(exist_ok=True)
  cols = list(zip(*notes))
  np.savez(cache, family=cols[0], source=cols[1], program=cols[2], pitch=cols[3],
           velocity=cols[4], audio=np.stack(cols[5]))
  return notes


def write_input(path, notes, copies):
  """An NSynth TFRecord of `notes` x `copies`, copies told apart by instrument id."""
  with open(path, "wb") as f:
    for copy in range(copies):
      for family, source, program, pitch, velocity, audio in notes:
        f.write(tfrecord.frame(example_proto.encode(
            _note_features(family, source, program + 1000 * copy, pitch, velocity, audio))))


def naive(input_path, output_path):
  """The single-process loop that a first attempt would write."""
  import pedalboard
  import tensorflow as tf
  reverb = pedalboard.Pedalboard([pedalboard.Reverb(room_size=0.75)])
  with tf.io.TFRecordWriter(str(output_path)) as writer:
    for serialized in tf.data.TFRecordDataset(str(input_path)).as_numpy_iterator():
      example = tf.train.Example.FromString(serialized)
      audio = np.array(example.features.feature["audio"].float_list.value, np.float32)
      for effect, wet in enumerate((audio, reverb(audio, 16000, reset=True))):
        out = tf.train.Example()
        out.CopyFrom(example)
        out.features.feature["audio"].float_list.value[:] = []
        out.features.feature["audio"].CopyFrom(
            tf.train.Feature(float_list=tf.train.FloatList(value=wet)))
        out.features.feature["effect"].int64_list.value.append(effect)
        writer.write(out.SerializeToString())


def run_pipeline(input_path, out):
  """(seconds, peak RSS in bytes of the whole process tree) of one build-dataset run."""
  command = [sys.executable, "-m", "reverbsynth", "build-dataset", "--source", str(input_path),
             "--effect", "reverb", "--out", str(out), "--no-progress", "--pitch-min", "0",
             "--pitch-max", "127"]
  start = time.perf_counter()
  proc = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
  peak = [0]

  def sample():
    while proc.poll() is None:
      try:
        tree = [proc] + proc.children(recursive=True)
        peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree if p.is_running()))
      except psutil.Error:
        pass
      time.sleep(0.05)

  sampler = threading.Thread(target=sample)
  sampler.start()
  _, err = proc.communicate()
  sampler.join()
  seconds = time.perf_counter() - start
  if proc.returncode:
    raise SystemExit(f"build-dataset failed:\n{err.decode()[-3000:]}")
  return seconds, peak[0]


def main():
  notes = dry_notes(N)
  work = pathlib.Path(tempfile.mkdtemp(prefix="reverbsynth-bench-"))
  try:
    small, large = work / "n.tfrecord", work / "4n.tfrecord"
    write_input(small, notes, 1)
    write_input(large, notes, 4)

    start = time.perf_counter()
    naive(small, work / "naive.tfrecord")
    naive_s = time.perf_counter() - start
    pipeline_s, peak_n = run_pipeline(small, work / "out-n")
    _, peak_4n = run_pipeline(large, work / "out-4n")
  finally:
    shutil.rmtree(work, ignore_errors=True)

  speedup = naive_s / pipeline_s
  growth = peak_4n / peak_n
  print(f"\nbuild-dataset, {N} dry notes -> dry + reverb records, {os.cpu_count()} cores")
  print(f"  naive loop     {N / naive_s:8.1f} notes/s  ({naive_s:.1f} s)")
  print(f"  build-dataset  {N / pipeline_s:8.1f} notes/s  ({pipeline_s:.1f} s, start-up included)")
  print(f"  speed ratio    {speedup:8.2f}x  (target >= {SPEED_TARGET}x)  "
        f"{'met' if speedup >= SPEED_TARGET else 'NOT MET'}")
  print(f"  peak memory    {peak_n / 2**20:8.0f} MiB at {N} notes, "
        f"{peak_4n / 2**20:.0f} MiB at {4 * N} notes")
  print(f"  memory ratio   {growth:8.2f}x  (target <= {MEMORY_TARGET}x)  "
        f"{'met' if growth <= MEMORY_TARGET else 'NOT MET'}")


if __name__ == "__main__":
  main()
