"""build-dataset end to end: real Beam (multi-process), real TFRecords, real effects."""

import collections
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from reverbsynth import storage
from reverbsynth.data import manifest as manifest_lib, records, tfrecord
from tests.conftest import REPO, run_cli

SECOND = 16000


def read_records(data_dir):
  """{file: [decoded record]} of a built dataset, in file order."""
  manifest = manifest_lib.read(data_dir)
  out = {}
  for shard in manifest["shards"]:
    with open(os.path.join(data_dir, shard["file"]), "rb") as f:
      out[shard["file"]] = [records.decode(r) for r in tfrecord.iterate(f)]
  return out


def _build(out, *args):
  result = run_cli("build-dataset", "--out", out, "--no-progress", *args)
  assert result.returncode == 0, result.stderr
  return manifest_lib.read(out)


# The `built` dataset's options, but for its source: dry + reverb + delay, seed 3, 3 splits
# of several shards each.
BUILT = ("--effect", "reverb", "--effect", "delay", "--pitch-min", 32, "--pitch-max", 84,
         "--seed", 3, "--valid-fraction", 0.3, "--test-fraction", 0.3, "--records-per-shard", 4)


@pytest.fixture(scope="module")
def built(tmp_path_factory, nsynth_tfrecord):
  """A dataset from the NSynth TFRecord fixture (BUILT), by the local DirectRunner."""
  out = tmp_path_factory.mktemp("built") / "ds"
  return out, _build(out, "--source", nsynth_tfrecord, *BUILT)


def assert_same_shards(built, other) -> None:
  """The dataset in `other` has the `built` dataset's shards, byte for byte."""
  first_dir, first = built
  again = manifest_lib.read(other)
  assert [(s["file"], s["sha256"]) for s in again["shards"]] == \
         [(s["file"], s["sha256"]) for s in first["shards"]]
  for s in first["shards"]:
    assert (first_dir / s["file"]).read_bytes() == (other / s["file"]).read_bytes()


def test_counts_in_equal_counts_out_per_effect(built, fixture_notes):
  out, manifest = built
  kept = [m for m, _ in fixture_notes if 32 <= m["pitch"] <= 84]
  assert 0 < len(kept) < len(fixture_notes)
  assert manifest["counts"]["notes_selected"] == len(kept)
  assert manifest["counts"]["per_effect"] == {e: len(kept) for e in ("dry", "reverb", "delay")}
  assert manifest["log"]["filtered"] == {"pitch": len(fixture_notes) - len(kept)}
  written = collections.Counter(r["effect_str"] for rs in read_records(out).values() for r in rs)
  assert written == manifest["counts"]["per_effect"]
  assert sum(s["records"] for s in manifest["shards"]) == 3 * len(kept)


def test_labels_and_dry_wet_pairing(built, fixture_notes):
  out, manifest = built
  assert [e["name"] for e in manifest["effects"]] == ["dry", "reverb", "delay"]
  by_source = collections.defaultdict(dict)
  for rs in read_records(out).values():
    for r in rs:
      by_source[r["source_note"]][r["effect_str"]] = r
  originals = {m["note_str"]: (m, a) for m, a in fixture_notes}
  for source_note, versions in by_source.items():
    assert set(versions) == {"dry", "reverb", "delay"}
    meta, audio = originals[source_note]
    dry, reverb = versions["dry"], versions["reverb"]
    assert (dry["effect"], reverb["effect"], versions["delay"]["effect"]) == (0, 1, 2)
    np.testing.assert_array_equal(dry["audio"], audio)  # Dry is the source, untouched.
    for r in versions.values():
      for key in ("pitch", "velocity", "instrument_str", "instrument_family_str", "sample_rate"):
        assert r[key] == meta[key]
      assert r["qualities"].tolist() == meta["qualities"]
    assert reverb["note_str"] == f"{source_note}-reverb"
    assert reverb["effect_param_names"][0] == "reverb.room_size"
    assert reverb["effect_params"][0] == pytest.approx(0.75)
    assert dry["effect_params"].size == 0
    # The reverb still rings at the end of the released second, where the dry note has died away.
    late = lambda r: np.sum(np.square(r["audio"][-SECOND // 2:], dtype=np.float64))
    assert late(reverb) > 10 * late(dry) + 1e-9


def test_splits_keep_every_version_of_a_note_together(built):
  out, manifest = built
  split_of = collections.defaultdict(set)
  for shard in manifest["shards"]:
    with open(os.path.join(out, shard["file"]), "rb") as f:
      for r in tfrecord.iterate(f):
        split_of[records.decode(r)["source_note"]].add(shard["split"])
  assert all(len(s) == 1 for s in split_of.values())
  assert {s for ss in split_of.values() for s in ss} == {"train", "valid", "test"}
  for split, counts in manifest["counts"]["per_split"].items():
    assert counts["records"] == sum(s["records"] for s in manifest["shards"] if s["split"] == split)


def test_manifest_checksums_match_the_shards(built):
  out, manifest = built
  for shard in manifest["shards"]:
    path = os.path.join(out, shard["file"])
    assert storage.sha256(path) == shard["sha256"]
    assert os.path.getsize(path) == shard["bytes"]
  manifest_lib.verify(out)
  names = sorted(s["file"] for s in manifest["shards"])
  assert sorted(os.listdir(out)) == sorted(names + ["manifest.json"])  # No leftovers.


def test_tf_data_reads_the_dataset(built):
  out, manifest = built
  ds = records.dataset(out, "train")
  elements = list(ds.as_numpy_iterator())
  assert len(elements) == manifest["counts"]["per_split"]["train"]["records"]
  assert elements[0]["audio"].shape == (64000,)
  assert {int(e["effect"]) for e in elements} <= {0, 1, 2}


def test_same_seed_gives_byte_identical_shards(tmp_path, built, nsynth_tfrecord):
  _build(tmp_path / "again", "--source", nsynth_tfrecord, *BUILT,
         "--direct_num_workers=1")  # Other parallelism, same bytes.
  assert_same_shards(built, tmp_path / "again")


def test_randomized_params_follow_the_seed(tmp_path, nsynth_tfrecord):
  params = {}
  for seed in (1, 1, 2):
    out = tmp_path / f"seed{seed}-{len(params)}"
    _build(out, "--source", nsynth_tfrecord, "--effect", "reverb", "--no-dry",
           "--randomize", "--seed", seed, "--max-notes", 3)
    params[(seed, len(params))] = {
        r["source_note"]: r["effect_params"].tolist()
        for rs in read_records(out).values() for r in rs}
  (a, b, c) = params.values()
  assert a == b
  assert set(a) != set(c) or a != c
  values = [v for vs in a.values() for v in vs]
  assert len(set(values)) == len(values)  # Drawn per note, not one draw for all.


def test_max_notes_and_exclude_quality(tmp_path, nsynth_tfrecord, fixture_notes):
  manifest = _build(tmp_path / "ds", "--source", nsynth_tfrecord, "--family", "bass",
                    "--exclude-quality", "reverb", "--max-notes", 2, "--seed", 5,
                    "--pitch-min", 0, "--pitch-max", 127, "--no-dry", "--effect", "chorus")
  assert manifest["counts"]["notes_selected"] == 2
  assert manifest["log"]["filtered"] == {"family": 5, "quality": 1}
  sources = {r["source_note"] for rs in read_records(tmp_path / "ds").values() for r in rs}
  assert all(s.startswith("bass_") for s in sources) and len(sources) == 2
  assert "bass_electronic_034-031-050" not in sources  # Carries the reverb quality.


def test_jsonwav_source_counts_resampling_and_skips(tmp_path, nsynth_jsonwav):
  manifest = _build(tmp_path / "ds", "--source", nsynth_jsonwav, "--effect", "bitcrush",
                    "--pitch-min", 0, "--pitch-max", 127)
  assert manifest["log"]["conformed"] == {"padded": 1, "resampled": 1}
  assert manifest["log"]["skipped"] == {"unreadable wav (LibsndfileError)": 1}
  assert manifest["skipped_examples"] == [
      {"what": "bass_acoustic_032-050-100", "reason": "unreadable wav (LibsndfileError)"}]
  assert manifest["counts"]["per_effect"] == {"dry": 4, "bitcrush": 4}


def test_soundfont_default_source_and_default_output(home):
  result = run_cli("build-dataset", "--effect", "reverb", "--family", "bass",
                   "--pitch-min", 40, "--pitch-max", 41, "--velocity", 100, "--no-progress")
  assert result.returncode == 0, result.stderr
  assert "built-in General MIDI SoundFont" in result.stderr
  out = home / "datasets" / "reverb-bass"
  assert f"Dataset: {out}" in result.stdout
  manifest = manifest_lib.read(out)
  assert manifest["source"]["kind"] == "soundfont"
  assert manifest["counts"]["notes_selected"] == 16  # 8 GM bass programs x 2 pitches.
  families = {r["instrument_family_str"] for rs in read_records(out).values() for r in rs}
  assert families == {"bass"}


def test_notes_per_family_samples_each_family_with_the_seed(tmp_path):
  """The SoundFont's bass, keyboard and mallet programs at 3 pitches: 24, 24 and 36 notes to
  choose from; at most 3 of each family, a seeded choice, counted in the manifest."""
  narrow = ("--family", "bass", "--family", "keyboard", "--family", "mallet",
            "--pitch-min", 48, "--pitch-max", 50, "--velocity", 100, "--notes-per-family", 3)
  chosen, printed = {}, {}
  for seed, extra in ((1, ()), (2, ("--max-notes", 7))):
    result = run_cli("build-dataset", "--out", tmp_path / str(seed), "--no-progress",
                     *narrow, "--seed", seed, *extra)
    assert result.returncode == 0, result.stderr
    printed[seed] = result.stdout
    manifest = manifest_lib.read(tmp_path / str(seed))
    notes = {(r["instrument_family_str"], r["source_note"])
             for rs in read_records(tmp_path / str(seed)).values() for r in rs}
    per_family = collections.Counter(family for family, _ in notes)
    counted = collections.Counter()
    for split in manifest["counts"]["per_split"].values():
      counted.update(split["per_family"])
    assert counted == {f: 2 * n for f, n in per_family.items()}  # Dry and reverb.
    assert manifest["notes_per_family"] == 3
    chosen[seed] = notes
  assert collections.Counter(f for f, _ in chosen[1]) == {"bass": 3, "keyboard": 3, "mallet": 3}
  assert "families  bass 6, keyboard 6, mallet 6 records" in printed[1]
  assert len(chosen[2]) == 7 and max(collections.Counter(f for f, _ in chosen[2]).values()) <= 3
  assert chosen[1] != chosen[2]


def test_pipeline_module_runs_with_plain_beam_flags(tmp_path, nsynth_tfrecord):
  result = subprocess.run(
      [sys.executable, "-m", "reverbsynth", "build-dataset", "--source", str(nsynth_tfrecord),
       "--out", str(tmp_path / "ds"), "--effect", "phaser", "--no-progress",
       "--runner=DirectRunner", "--direct_running_mode=multi_threading",
       "--direct_num_workers=2"],
      capture_output=True, text=True, cwd=REPO, timeout=600)
  assert result.returncode == 0, result.stderr
  assert manifest_lib.read(tmp_path / "ds")["counts"]["per_effect"]["phaser"] == 10


def test_overwrite_replaces_and_removes_old_shards(tmp_path, nsynth_tfrecord):
  out = tmp_path / "ds"
  _build(out, "--source", nsynth_tfrecord, "--effect", "reverb", "--records-per-shard", 2)
  refused = run_cli("build-dataset", "--source", nsynth_tfrecord, "--out", out)
  assert refused.returncode == 2
  assert "already holds a dataset: give --overwrite" in refused.stderr
  new = _build(out, "--source", nsynth_tfrecord, "--effect", "delay", "--overwrite",
               "--max-notes", 2)
  assert sorted(os.listdir(out)) == sorted([s["file"] for s in new["shards"]] + ["manifest.json"])
  assert [e["name"] for e in new["effects"]] == ["dry", "delay"]


def test_interrupted_run_leaves_nothing_that_looks_like_a_dataset(tmp_path, home):
  out = tmp_path / "ds"
  proc = subprocess.Popen(
      [sys.executable, "-m", "reverbsynth", "build-dataset", "--family", "bass",
       "--out", str(out), "--no-progress"],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
  deadline = time.time() + 120
  while time.time() < deadline and not any(out.glob(".staging-*/parts/*")):
    time.sleep(0.2)
  assert any(out.glob(".staging-*/parts/*")), "the build never started writing"
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  assert not (out / "manifest.json").exists()
  assert not list(out.glob("*.tfrecord"))
  with pytest.raises(Exception, match="not a reverbsynth dataset"):
    manifest_lib.read(out)


def test_steps_may_run_again_and_only_the_launcher_commits(tmp_path, nsynth_tfrecord):
  """A runner may retry any step: the whole graph run twice on one staging folder makes
  the same summary, no step moves anything into `out`, and commit (after) makes the dataset."""
  import apache_beam as beam

  from reverbsynth.data import effects
  from reverbsynth.data.notes.filters import NoteFilter
  from reverbsynth.data.notes.nsynth import TFRecordSource
  from reverbsynth.pipelines import build_dataset, sharded_sink
  out = tmp_path / "ds"
  plan = build_dataset.BuildPlan(
      source=TFRecordSource(str(nsynth_tfrecord)), note_filter=NoteFilter(),
      effects=effects.vocabulary(["bitcrush"]), out=str(out), records_per_shard=4)
  staging = str(out / ".staging")
  made = []
  for _ in range(2):
    p = beam.Pipeline(options=build_dataset.pipeline_options(
        ["--direct_running_mode=in_memory", "--direct_num_workers=1"]))
    build_dataset.build(p, plan, staging)
    p.run().wait_until_finish()
    assert os.listdir(out) == [".staging"]
    summary = json.loads((out / ".staging" / sharded_sink.SUMMARY).read_text())
    summary["shards"].sort(key=lambda s: s["staged"])
    made.append(summary)
  assert made[0] == made[1]
  manifest = sharded_sink.commit(str(out), staging, plan.header(), ["dry", "bitcrush"],
                                 ["train", "valid", "test"], overwrite=False)
  assert manifest["counts"]["per_effect"] == {"dry": 10, "bitcrush": 10}
  manifest_lib.verify(out)


# --- other runners: the same graph on Beam's portable path and on Dask ---------------------


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_the_portable_runner_builds_the_same_shards(tmp_path, built, nsynth_tfrecord):
  """Beam's portable path, the one the Flink and Spark runners take, through a local job
  service (what a Flink or Spark job server is to it)."""
  port = _free_port()
  service = subprocess.Popen(
      [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
       "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 60
    while time.time() < deadline:
      with socket.socket() as s:
        if s.connect_ex(("localhost", port)) == 0:
          break
      time.sleep(0.2)
    _build(tmp_path / "portable", "--source", nsynth_tfrecord, *BUILT,
           "--runner", "PortableRunner", "--job_endpoint", f"localhost:{port}",
           "--environment_type", "LOOPBACK")
  finally:
    service.terminate()
    service.wait()
  assert_same_shards(built, tmp_path / "portable")


@pytest.fixture(scope="module")
def dask_cluster():
  """A local Dask cluster of two worker processes (each restarted by its nanny if killed)
  and a client of it."""
  import distributed  # The dask extra, which `make test` installs.
  with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                dashboard_address=None) as cluster:
    with distributed.Client(cluster) as client:
      yield cluster, client


def _dask_build(out, source, cluster, **popen):
  return subprocess.Popen(
      [sys.executable, "-m", "reverbsynth", "build-dataset", "--out", str(out), "--no-progress",
       "--source", str(source), *map(str, BUILT), "--runner", "DaskRunner",
       "--dask_client_address", cluster.scheduler_address],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_dask_builds_the_same_shards(tmp_path, built, nsynth_tfrecord, dask_cluster):
  build = _dask_build(tmp_path / "dask", nsynth_tfrecord, dask_cluster[0])
  _, stderr = build.communicate(timeout=600)
  assert build.returncode == 0, stderr
  assert_same_shards(built, tmp_path / "dask")


def test_a_dask_worker_killed_mid_build(tmp_path, built, nsynth_tfrecord, dask_cluster):
  """The build completes with the same shards (Dask reruns the lost tasks), or fails in one
  line and leaves nothing that looks like a dataset."""
  cluster, client = dask_cluster
  out = tmp_path / "dask"
  pids = client.run(os.getpid)
  build = _dask_build(out, nsynth_tfrecord, cluster)
  killed = None
  while build.poll() is None and killed is None:
    busy = [worker for worker, tasks in client.processing().items() if tasks]
    if busy:
      assert not (out / "manifest.json").exists()
      os.kill(pids[busy[0]], signal.SIGKILL)
      killed = busy[0]
    time.sleep(0.02)
  _, stderr = build.communicate(timeout=600)
  assert killed, "no worker was seen running a task of the build"
  if build.returncode == 0:
    assert_same_shards(built, out)
  else:
    assert len([line for line in stderr.splitlines()
                if line.startswith("reverbsynth: ")]) == 1, stderr
    assert "Traceback" not in stderr
    assert not (out / "manifest.json").exists() and not list(out.glob("*.tfrecord"))


def test_a_runner_that_is_not_installed_is_refused_in_one_line(tmp_path, monkeypatch):
  from reverbsynth.errors import UserError
  from reverbsynth.pipelines import build_dataset
  monkeypatch.setitem(build_dataset.RUNNERS, "NopeRunner", ("nope_beam_runner.NopeRunner", "nope"))
  with pytest.raises(UserError, match=r"--runner NopeRunner needs nope_beam_runner: "
                                      r"pip install 'reverbsynth\[nope\]'"):
    build_dataset.check_beam_args(["--runner", "NopeRunner"])
  assert build_dataset._runner_named(["--runner=DaskRunner", "--x"]) == [
      "--runner=reverbsynth.pipelines.dask_runner.DaskRunner", "--x"]


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_is_one_line_in_a_log_and_a_bar_on_a_terminal(tmp_path, terminal):
  """The CLI's stderr reaches the bar through its native-log filter (a pipe), so a terminal
  must be told from Python's stderr, not from file descriptor 2."""
  args = [sys.executable, "-m", "reverbsynth", "build-dataset", "--family", "bass",
          "--pitch-min", "40", "--pitch-max", "41", "--velocity", "100", "--max-notes", "4",
          "--effect", "reverb", "--valid-fraction", "0", "--test-fraction", "0",
          "--out", str(tmp_path / "ds")]
  if terminal:
    import fcntl
    import pty
    import struct
    import termios
    reader, writer = pty.openpty()
    fcntl.ioctl(writer, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 0 cols: no bar.
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=writer, cwd=REPO)
    os.close(writer)
    chunks = []
    while True:
      try:
        chunk = os.read(reader, 1 << 16)
      except OSError:  # EIO: every writer closed.
        break
      if not chunk:
        break
      chunks.append(chunk)
    os.close(reader)
    assert process.wait(timeout=600) == 0
    stderr = b"".join(chunks).decode()
  else:
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr
    stderr = result.stderr
  lines = [line for line in stderr.splitlines() if line.startswith("build-dataset")]
  if terminal:  # A pty ends lines in \r\n: the bar is told by its count and its absent summary.
    assert "8/8 [" in stderr and " records in " not in stderr, stderr
  else:
    assert "\r" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert re.fullmatch(r"build-dataset: 8 records in [\d.]+ s \([\d.e+]+ records/s\)",
                        lines[0]), lines

