"""Bad input: one clear line on stderr, exit status 2, no traceback, nothing written."""

import pytest

from tests.conftest import assert_refused, run_cli


@pytest.mark.parametrize("args, fragments", [
    (["--source", "/no/such/nsynth.tfrecord"], ["does not exist"]),
    (["--effect", "reverbb"], ["unknown effect 'reverbb'", "valid:", "reverb"]),
    (["--family", "drums"], ["unknown family 'drums'", "valid: bass, brass"]),
    (["--exclude-quality", "wet"], ["unknown quality 'wet'", "valid: bright"]),
    (["--instrument-source", "analog"], ["unknown instrument source", "acoustic"]),
    (["--family", "bass", "--velocity", "26"],
     ["filters select no notes"]),
    (["--famliy", "bass"], ["unknown option --famliy"]),
    (["--max-notes", "0"], ["--max-notes"]),
    (["--valid-fraction", "0.6", "--test-fraction", "0.5"], ["leave room for train"]),
    (["--source", "soundfont:/no/such.sf2"], ["SoundFont not found"]),
])
def test_bad_arguments_are_refused_before_any_work(tmp_path, args, fragments):
  out = tmp_path / "ds"
  assert_refused(run_cli("build-dataset", "--out", out, *args), *fragments)
  assert not out.exists()


def test_corrupt_input_shard_is_refused(tmp_path, nsynth_tfrecord):
  bad = tmp_path / "nsynth-bad.tfrecord"
  bad.write_bytes(nsynth_tfrecord.read_bytes()[:-100])  # Truncated mid-record.
  out = tmp_path / "ds"
  assert_refused(run_cli("build-dataset", "--source", bad, "--out", out),
                  "not a readable TFRecord file", "truncated record")
  assert not out.exists()


def test_filters_selecting_nothing_from_tfrecords_leave_nothing(tmp_path, nsynth_tfrecord):
  out = tmp_path / "ds"
  assert_refused(run_cli("build-dataset", "--source", nsynth_tfrecord, "--out", out,
                          "--family", "vocal", "--no-progress"),
                  "selected no notes")
  assert not out.exists()


def test_json_directory_without_examples_is_refused(tmp_path):
  (tmp_path / "nsynth").mkdir()
  (tmp_path / "nsynth" / "examples.json").write_text("{not json")
  assert_refused(run_cli("build-dataset", "--source", tmp_path / "nsynth",
                          "--out", tmp_path / "ds"), "not valid JSON")
