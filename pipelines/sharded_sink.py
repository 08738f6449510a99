"""A deterministic, memory-bounded sharded TFRecord sink with an atomic commit.

Records stream into one part file per bundle while only small index rows
(sort key, part file, offset, size, labels) travel on; shards are then
assembled from the parts in sort-key order, so that the same records give
byte-identical shards whatever the parallelism. The pipeline ends by writing
what it made to a summary file in the staging folder; `commit`, run once on the
launcher after the pipeline has finished, renames the shards into place and
writes manifest.json last: a directory without a manifest is not a dataset.
Every step inside the pipeline may run again (a runner retries a failed
bundle) and gives the same files when it does.
"""

import collections
import hashlib
import json
import os
import time
import uuid

import apache_beam as beam
from apache_beam.io.filesystems import CompressionTypes, FileSystems

from reverbsynth import storage
from reverbsynth.data import manifest as manifest_lib, tfrecord

PROGRESS_DIR = "progress"
SUMMARY = "summary.json"
# The labels each split's records are counted by in the manifest (counts.per_split[split]
# ["per_pitch"], ...), in the order a record's `labels` tuple holds them.
COUNTED = ("pitch", "family", "velocity", "instrument")


def unit_hash(*parts) -> float:
  """A deterministic number in [0, 1) from `parts`."""
  digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8)
  return int.from_bytes(digest.digest(), "little") / 2.0**64


def split_of(seed: int, source_note: str, fractions) -> str:
  """The split of every version of `source_note`: deterministic from the seed."""
  u, total = unit_hash("split", seed, source_note), 0.0
  for name, fraction in fractions:
    total += fraction
    if u < total:
      return name
  return fractions[-1][0]


class WriteParts(beam.DoFn):
  """Appends each record to this bundle's part file; emits ((split, shard), index row).

  Input: (sort_key, source_note, effect_id, labels (values of COUNTED), peak, serialized
  example).
  Side input `num_notes`: notes selected, which sets the shards per split.
  """

  def __init__(self, staging: str, seed: int, fractions, records_per_shard: int,
               num_effects: int):
    self.staging = staging
    self.seed = seed
    self.fractions = tuple(fractions)
    self.records_per_shard = records_per_shard
    self.num_effects = num_effects

  def start_bundle(self):
    self._file = None
    self._count = 0
    self._last_progress = 0.0
    self._id = uuid.uuid4().hex

  def _open(self):
    self._part = FileSystems.join(self.staging, "parts", f"{self._id}.tfrecord")
    self._file = FileSystems.create(
        self._part, compression_type=CompressionTypes.UNCOMPRESSED)
    self._offset = 0

  def _report_progress(self, force=False):
    now = time.monotonic()
    if "://" in self.staging or not (force or now - self._last_progress > 1.0):
      return
    self._last_progress = now
    storage.write_text(os.path.join(self.staging, PROGRESS_DIR, self._id), str(self._count))

  def process(self, record, num_notes):
    sort_key, source_note, effect_id, labels, peak, data = record
    split = split_of(self.seed, source_note, self.fractions)
    fraction = dict(self.fractions)[split]
    shards = max(1, -(-int(num_notes * fraction * self.num_effects)
                      // self.records_per_shard))
    shard = int(unit_hash("shard", sort_key) * shards)
    if self._file is None:
      self._open()
    framed = tfrecord.frame(data)
    self._file.write(framed)
    yield (split, shard), (sort_key, self._part, self._offset, len(framed),
                           effect_id, labels, peak)
    self._offset += len(framed)
    self._count += 1
    self._report_progress()

  def finish_bundle(self):
    if self._file is not None:
      self._file.close()
      self._report_progress(force=True)


class WriteShard(beam.DoFn):
  """Assembles one shard from the parts, in sort-key order; emits its summary."""

  def __init__(self, staging: str):
    self.staging = staging

  def process(self, keyed_rows):
    (split, shard), rows = keyed_rows
    rows = sorted(rows)
    path = FileSystems.join(self.staging, "shards", f"{split}-{shard:05d}.tfrecord")
    digest, size = hashlib.sha256(), 0
    per_effect = collections.Counter()
    per_label = {name: collections.Counter() for name in COUNTED}
    peaks = collections.defaultdict(lambda: [0.0, 0])
    handles = {}
    try:
      with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as out:
        for _, part, offset, length, effect_id, labels, peak in rows:
          if part not in handles:
            handles[part] = FileSystems.open(
                part, compression_type=CompressionTypes.UNCOMPRESSED)
          handles[part].seek(offset)
          framed = handles[part].read(length)
          out.write(framed)
          digest.update(framed)
          size += length
          per_effect[effect_id] += 1
          for name, value in zip(COUNTED, labels):
            per_label[name][value] += 1
          peaks[effect_id][0] = max(peaks[effect_id][0], peak)
          peaks[effect_id][1] += peak > 1.0
    finally:
      for handle in handles.values():
        handle.close()
    yield {"split": split, "shard": shard, "staged": path, "records": len(rows),
           "bytes": size, "sha256": digest.hexdigest(),
           "per_effect": sorted(per_effect.items()),
           **{f"per_{name}": sorted(per_label[name].items()) for name in COUNTED},
           "peaks": sorted((k, *v) for k, v in peaks.items())}


def _final_names(shards: list, splits) -> list:
  """Shard summaries sorted by split then shard, with their final file names."""
  order = {name: i for i, name in enumerate(splits)}
  shards = sorted(shards, key=lambda s: (order[s["split"]], s["shard"]))
  counts = collections.Counter(s["split"] for s in shards)
  index = collections.Counter()
  for s in shards:
    i, n = index[s["split"]], counts[s["split"]]
    index[s["split"]] += 1
    s["file"] = f"{s['split']}-{i:05d}-of-{n:05d}.tfrecord"
  return shards


def summarize(shards: list, effect_names: list, splits) -> tuple:
  """(counts, peaks) for the manifest from the shard summaries.

  A summary's per_effect and per_<label> (COUNTED) are [(id or value, count)], its peaks
  [(effect id, max, records over 1.0)]: pairs, so that they survive JSON. Older summaries
  without a label count it as empty.
  """
  counts = {"records": 0, "per_effect": {e: 0 for e in effect_names},
            "per_split": {}}
  peaks = {e: {"max": 0.0, "records_over_1": 0} for e in effect_names}
  for split in splits:
    mine = [s for s in shards if s["split"] == split]
    per_effect = collections.Counter()
    per_label = {name: collections.Counter() for name in COUNTED}
    for s in mine:
      per_effect.update({effect_names[k]: v for k, v in s["per_effect"]})
      for name in COUNTED:
        per_label[name].update({value: n for value, n in s.get(f"per_{name}", ())})
    counts["per_split"][split] = {
        "records": sum(s["records"] for s in mine),
        "per_effect": {e: per_effect[e] for e in effect_names},
        **{f"per_{name}": {str(v): per_label[name][v] for v in sorted(per_label[name])}
           for name in COUNTED},
    }
    counts["records"] += counts["per_split"][split]["records"]
    for e in effect_names:
      counts["per_effect"][e] += per_effect[e]
  for s in shards:
    for k, peak, over in s["peaks"]:
      entry = peaks[effect_names[k]]
      entry["max"] = round(max(entry["max"], float(peak)), 6)
      entry["records_over_1"] += int(over)
  return counts, peaks


class WriteSummary(beam.DoFn):
  """Writes what the pipeline made to SUMMARY in the staging folder.

  Input: the list of shard summaries. Side inputs: counted log events
  [((kind, reason), n)], examples of skipped notes, and the selected notes.
  """

  def __init__(self, staging: str):
    self.staging = staging

  def process(self, shards, events, skipped_examples, num_notes):
    log = collections.defaultdict(dict)
    for (kind, reason), n in sorted(events):
      log[kind][reason] = n
    storage.write_json(FileSystems.join(self.staging, SUMMARY), {
        "shards": shards, "log": log, "notes_selected": num_notes,
        "skipped_examples": [{"what": what, "reason": reason}
                             for what, reason in skipped_examples]})


def commit(out: str, staging: str, header: dict, effect_names: list, splits,
           overwrite: bool):
  """Moves the staged shards into `out`, writes manifest.json last and returns it.

  Runs on the launcher once the pipeline has finished. Returns None when the
  pipeline made no shards. With `overwrite`, the old manifest goes first, then
  the old shards.
  """
  with FileSystems.open(FileSystems.join(staging, SUMMARY),
                        compression_type=CompressionTypes.UNCOMPRESSED) as f:
    made = json.loads(f.read())
  if not made["shards"]:
    return None
  shards = _final_names(made["shards"], splits)
  old_manifest = FileSystems.join(out, manifest_lib.FILENAME)
  if overwrite and FileSystems.exists(old_manifest):
    with FileSystems.open(old_manifest, compression_type=CompressionTypes.UNCOMPRESSED) as f:
      old = json.loads(f.read())
    FileSystems.delete([old_manifest])
    stale = [FileSystems.join(out, s["file"]) for s in old.get("shards", ())]
    FileSystems.delete([p for p in stale if FileSystems.exists(p)])
  FileSystems.rename([s["staged"] for s in shards],
                     [FileSystems.join(out, s["file"]) for s in shards])
  counts, peaks = summarize(shards, effect_names, splits)
  counts["notes_selected"] = made["notes_selected"]
  manifest = dict(header)
  manifest.update({
      "counts": counts,
      "peaks": peaks,
      "log": made["log"],
      "skipped_examples": made["skipped_examples"],
      "shards": [{k: s[k] for k in ("file", "split", "records", "bytes", "sha256")}
                 for s in shards],
  })
  storage.write_json(old_manifest, manifest)
  return manifest
