"""manifest.json beside a dataset's shards: what went in, what came out, checksums.

A directory is a complete dataset exactly when its manifest.json exists: the
manifest is written last, under a temporary name, then renamed.
"""

import collections
import json

from reverbsynth import storage
from reverbsynth.errors import UserError

FILENAME = "manifest.json"
FORMAT = "reverbsynth-dataset/1"


def exists(data_dir) -> bool:
  return storage.exists(storage.join(data_dir, FILENAME))


def read(data_dir) -> dict:
  """The manifest of a built dataset; UserError if `data_dir` is not one."""
  path = storage.join(data_dir, FILENAME)
  try:
    with storage.open_read(path) as f:
      manifest = json.loads(f.read())
  except OSError:
    raise UserError(f"{data_dir} is not a reverbsynth dataset (no {FILENAME}); "
                    "build one with 'reverbsynth build-dataset'") from None
  except json.JSONDecodeError as e:
    raise UserError(f"{path} is not valid JSON ({e}); rebuild the dataset") from None
  if manifest.get("format") != FORMAT:
    raise UserError(f"{path} is not a {FORMAT} manifest; rebuild the dataset")
  return manifest


def shard_paths(data_dir, manifest: dict, split: str) -> list:
  return [storage.join(data_dir, s["file"]) for s in manifest["shards"]
          if s["split"] == split]


def verify(data_dir, manifest: dict | None = None) -> None:
  """Checks every shard's size and sha256; UserError naming the first bad one."""
  manifest = manifest or read(data_dir)
  for shard in manifest["shards"]:
    path = storage.join(data_dir, shard["file"])
    if not storage.exists(path):
      raise UserError(f"shard {path} is missing; rebuild the dataset")
    if storage.sha256(path) != shard["sha256"]:
      raise UserError(f"shard {path} is corrupt (size or sha256 differs from "
                      f"{FILENAME}); rebuild the dataset")


def _human_bytes(n: int) -> str:
  """n bytes as B, KB, MB or GB (powers of 1000)."""
  power = next(i for i in range(4) if n < 1000 ** (i + 1) or i == 3)
  unit = ("B", "KB", "MB", "GB")[power]
  return f"{n} B" if power == 0 else f"{n / 1000 ** power:.1f} {unit}"


def summary(manifest: dict, data_dir, counters: dict | None = None) -> str:
  """What a built dataset holds, for people: where, what, how many."""
  counts = manifest["counts"]
  per_effect = ", ".join(f"{e} {n}" for e, n in counts["per_effect"].items())
  per_family: collections.Counter = collections.Counter()
  for split in counts["per_split"].values():
    per_family.update(split.get("per_family", {}))
  order = ["train", "valid", "test"]
  def shards(split):
    n = sum(s["split"] == split for s in manifest["shards"])
    return f"{n} shard{'s' if n != 1 else ''}"

  splits = ", ".join(
      f"{name} {c['records']} ({shards(name)})"
      for name, c in sorted(counts["per_split"].items(),
                            key=lambda kv: order.index(kv[0]) if kv[0] in order else 3))
  skipped = manifest["log"].get("skipped", {})
  filters = manifest["filters"]
  names = lambda v: v if isinstance(v, str) else ", ".join(map(str, v)) or "none"
  lines = [
      f"Dataset: {data_dir}",
      f"  source    {manifest['source']['kind']} {manifest['source']['path']}",
      f"  filters   families {names(filters['families'])}; sources "
      f"{names(filters['instrument_sources'])}; pitches "
      f"{filters['pitch_range'][0]}..{filters['pitch_range'][1]}; velocities "
      f"{names(filters['velocities'])}; excluded qualities {names(filters['exclude_qualities'])}",
      f"  notes     {counts['notes_selected']} selected, {sum(skipped.values())} skipped"
      + (f" ({'; '.join(f'{r}: {n}' for r, n in skipped.items())})" if skipped else ""),
      f"  records   {counts['records']}: {per_effect}",
      *([f"  families  {', '.join(f'{f} {n}' for f, n in sorted(per_family.items()))} records"]
        if len(per_family) > 1 else []),
      f"  splits    {splits}; "
      f"{_human_bytes(sum(s['bytes'] for s in manifest['shards']))} in all",
      "  peaks     " + ", ".join(f"{e} {p['max']:.2f}" for e, p in manifest["peaks"].items())
      + f" ({sum(p['records_over_1'] for p in manifest['peaks'].values())} records over 1.0)",
  ]
  if counters:
    lines.append("  counters  " + ", ".join(f"{k} {v}" for k, v in sorted(counters.items())))
  lines.append(f"  manifest  {storage.join(data_dir, FILENAME)}")
  return "\n".join(lines)
