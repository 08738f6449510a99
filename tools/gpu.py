"""The GPU parts of issues 13 and 23, as procedures for one device lease each.

Issue 23 (the ddsp generator), here:

    .venv/bin/python tools/gpu.py prepare-ddsp [DATASET]

  downloads the wheels (as below, and pedalboard) and packs the training split's dry notes
  as 16-bit FLAC with the labels of every training record into .gpu/ddsp.npz (the wet
  notes are rendered there again with pedalboard: the whole split as FLAC is over the
  64 MiB a lease carries). There, with GPU_SECONDS (default 540) in all:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
      && KERAS_BACKEND=jax PYTHONPATH=/tmp/site:$PWD python3 tools/gpu.py device-ddsp $OUT

  measures configs/ddsp.yaml's images/s and input wait at batch 64 on each stable level,
  trains all 9 stages at batch 64 with as many images per stage as the time left allows,
  and writes $OUT/gpu-report.json, $OUT/generator/ (float16) and the last sample grid
  (GPU_VARIANTS="NAME:KEY=VALUE,...;NAME:..." trains each variant instead, in equal shares of
  the time, into $OUT/NAME/), to score here with `reverbsynth evaluate --run` and `make quality`.

Issue 13 (the paper's spectral GAN): measure and train configs/reverbsynth.yaml with
the JAX backend on a GPU machine that has JAX but no TensorFlow, keras or network.

Here (a machine with the repo's .venv and network to PyPI):

    .venv/bin/python tools/gpu.py prepare [DATASET]

  downloads the wheels the GPU machine lacks (keras and its needs, the package's few
  training needs; Python 3.12, manylinux) into .whl/, and packs the bass dataset
  (build-dataset --effect reverb --family bass, 16 kHz; default: the latest one) as 16-bit
  FLAC plus its labels into .gpu/bass.npz (under 64 MiB with the wheels). Both folders
  are git-ignored here and carried there (device.run's carry: [".whl", ".gpu"]).

There, in one lease (device.run, timeout_s 600):

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \\
      && PYTHONPATH=/tmp/site:$PWD python3 tools/gpu.py device $OUT

  unpacks the records (the package's own TFRecord writer), measures images/s and the
  input-wait share per level (1-5) of configs/reverbsynth.yaml in mixed_bfloat16 and
  float32, prints the time of the ReverbSynth schedule (stages 0-8) on that GPU, trains
  stages 0-8 with as many images per stage as the time left allows (GPU_SECONDS in all,
  default 540) and writes $OUT/gpu-report.json and the compact generator $OUT/generator,
  to evaluate here with `reverbsynth evaluate --run`.
"""

import io
import json
import os
import subprocess
import sys
import time

import numpy as np

WHEELS = [
    "keras==3.15.1", "absl-py", "rich", "namex", "h5py", "optree", "ml-dtypes", "packaging",
    "markdown-it-py", "mdurl", "pygments", "pyyaml", "soundfile", "cffi", "pycparser",
    "google-crc32c", "click", "tqdm",
]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64", "any"]
BUNDLE = os.path.join(".gpu", "bass.npz")
DDSP_BUNDLE = os.path.join(".gpu", "ddsp.npz")
DDSP_BATCH = 64
# The device image has JAX, h5py, absl-py, rich, pyyaml, click, tqdm and ml-dtypes already
# (installing a second version of one stops the whole install).
DDSP_WHEELS = ["keras==3.15.1", "namex", "optree", "soundfile", "cffi", "pycparser",
               "google-crc32c"]


def _wheels(extra=(), only=False) -> None:
  for wheel in (*(() if only else WHEELS), *extra):
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
                    *[f"--platform={p}" for p in PLATFORMS], "-d", ".whl", wheel], check=True)


def _flac(audio: np.ndarray, rate: int) -> np.ndarray:
  import soundfile as sf
  buffer = io.BytesIO()
  sf.write(buffer, np.clip(audio, -1, 1), rate, format="FLAC", subtype="PCM_16")
  return np.frombuffer(buffer.getvalue(), np.uint8)


def prepare_ddsp(dataset=None) -> None:
  """.whl/ (with pedalboard) and .gpu/ddsp.npz: the training split, its dry notes as FLAC."""
  import pedalboard

  from reverbsynth import paths
  from reverbsynth.data import manifest as manifest_lib, records, tfrecord
  _wheels(DDSP_WHEELS + [f"pedalboard=={pedalboard.__version__}"], only=True)
  dataset = dataset or str(paths.latest_dataset())
  manifest = manifest_lib.read(dataset)
  manifest["shards"] = [s for s in manifest["shards"] if s["split"] == "train"]
  dry, labels = {}, []
  for shard in manifest["shards"]:
    with open(os.path.join(dataset, shard["file"]), "rb") as f:
      for record in map(records.decode, tfrecord.iterate(f)):
        audio = record.pop(records.AUDIO)
        if record["effect"] == 0:
          dry[record["source_note"]] = _flac(audio, manifest["audio"]["sample_rate"])
        labels.append({**{k: (v.tolist() if isinstance(v, np.ndarray) else v)
                          for k, v in record.items()}, "shard": shard["file"]})
  # What a lease carries is 64 MiB with the wheels and the tracked files: the dry notes of a
  # seeded share of the sources, as many as fit, and their records.
  tracked = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True).stdout
  budget = 63 * 2 ** 20 - sum(os.path.getsize(p) for p in tracked.decode().split("\0") if p) \
      - sum(os.path.getsize(os.path.join(".whl", w)) for w in os.listdir(".whl"))
  label_bytes = {}
  for label in labels:
    label_bytes[label["source_note"]] = label_bytes.get(label["source_note"], 0) + len(
        json.dumps(label))
  sources, size = [], 0
  for source in np.array(sorted(dry))[np.random.default_rng(0).permutation(len(dry))]:
    if size + len(dry[source]) + label_bytes[source] > budget:
      break
    sources.append(str(source))
    size += len(dry[source]) + label_bytes[source]
  sources.sort()
  labels = [label for label in labels if label["source_note"] in set(sources)]
  os.makedirs(".gpu", exist_ok=True)
  utf8 = lambda x: np.frombuffer(json.dumps(x).encode(), np.uint8)  # str arrays are UCS-4.
  np.savez(DDSP_BUNDLE, manifest=utf8(manifest), labels=utf8(labels), sources=utf8(sources),
           offsets=np.cumsum([0] + [len(dry[s]) for s in sources]),
           flac=np.concatenate([dry[s] for s in sources]))
  print(f"{DDSP_BUNDLE}: {len(labels)} records from {len(sources)} dry notes, "
        f"{os.path.getsize(DDSP_BUNDLE) / 2 ** 20:.1f} MiB")


def unpack_ddsp(out: str) -> str:
  """.gpu/ddsp.npz as the training split's shards, the wet notes rendered again through
  their effects with the parameters recorded."""
  import soundfile as sf

  from reverbsynth.data import effects, example_proto, tfrecord
  bundle = np.load(DDSP_BUNDLE)
  manifest, labels, sources = (json.loads(bundle[k].tobytes()) for k in
                               ("manifest", "labels", "sources"))
  offsets, flac = bundle["offsets"], bundle["flac"]
  dry = {s: sf.read(io.BytesIO(flac[offsets[i]:offsets[i + 1]].tobytes()), dtype="float32")[0]
         for i, s in enumerate(sources)}
  chains = {e["id"]: effects.from_manifest(e) for e in manifest["effects"]}
  shards = {}
  for label in labels:
    features = {k: np.asarray(v, np.float32) if k == "effect_params" else v
                for k, v in label.items() if k != "shard"}
    audio = chains[label["effect"]].apply(dry[label["source_note"]], features["effect_params"])
    shards.setdefault(label["shard"], []).append(
        tfrecord.frame(example_proto.encode({**features, "audio": audio})))
  return _write_shards(out, manifest, shards)


def device_ddsp(out: str) -> None:
  """Measures configs/ddsp.yaml at batch 64, then trains it for what is left of GPU_SECONDS."""
  started = time.monotonic()
  deadline = started + float(os.environ.get("GPU_SECONDS", 540))
  os.environ.setdefault("BENCH_TIMED_STEPS", "20")
  from reverbsynth import backend
  backend.use("jax")
  import jax

  from tests.benchmarks import bench_training
  data = unpack_ddsp(os.path.join("/tmp", "bass"))
  batch = [f"schedule.batch_size=[{', '.join([str(DDSP_BATCH)] * 5)}]"]
  report = {"devices": [str(d) for d in jax.devices()], "date": time.strftime("%Y-%m-%d"),
            "unpacked_seconds": time.monotonic() - started}
  print(json.dumps(report), flush=True)
  # GPU_VARIANTS: "NAME:KEY=VALUE,KEY=VALUE;NAME:..." trains each in an equal share of the
  # time at the speed GPU_SPEED (images/s) instead of measuring first.
  variants = [v.split(":", 1) for v in os.environ.get("GPU_VARIANTS", "").split(";") if v]
  if variants:
    speed = float(os.environ.get("GPU_SPEED", 850))
  else:
    rows = bench_training.measure("ddsp", data, "jax", batch, [0, 2, 4, 6, 8])
    report["ddsp_batch_64"] = rows
    print(json.dumps({"ddsp_batch_64": rows}), flush=True)
    speed = min(r["images_per_second"] for r in rows if r["images_per_second"])
    variants = [["generator", ""]]
  report["trained"] = {}
  for i, (name, overrides) in enumerate(variants):
    left = (deadline - time.monotonic() - 45) / (len(variants) - i)  # Export, writing back.
    per_stage = int(speed * left * 0.8 / 9 / DDSP_BATCH) * DDSP_BATCH  # 0.8: compiles, grids.
    run = os.path.join("/tmp", f"run-{name}")
    began = time.monotonic()
    try:
      returncode = subprocess.run(
          [sys.executable, "-m", "reverbsynth", "train", "--backend", "jax", "--config", "ddsp",
           "--data", data, "--out", run, "--stages", "9", "--no-progress",
           f"schedule.images_per_stage={per_stage}", *batch,
           *[o for o in overrides.split(",") if o]], timeout=max(left, 1),
          env={**os.environ, "REVERBSYNTH_NO_COST_CHECK": "1"}).returncode
    except subprocess.TimeoutExpired:
      returncode = "timed out (the last finished stage's generator is exported)"
    report["trained"][name] = {"stages": 9, "images_per_stage": per_stage, "batch": DDSP_BATCH,
                               "overrides": overrides, "seconds": time.monotonic() - began,
                               "returncode": returncode}
    print(json.dumps({name: report["trained"][name]}), flush=True)
    if os.path.exists(os.path.join(run, "generator")):
      subprocess.run([sys.executable, "-m", "reverbsynth", "export", "--run", run, "--out",
                      os.path.join(out, name)], check=True)
  grids = sorted(os.listdir(os.path.join(run, "samples"))) if os.path.isdir(
      os.path.join(run, "samples")) else []
  for name in [g for g in grids if g.endswith(".png")][-1:]:
    subprocess.run(["cp", os.path.join(run, "samples", name), os.path.join(out, name)])
  with open(os.path.join(out, "gpu-report.json"), "w") as f:
    json.dump(report, f, indent=1)


def prepare(dataset=None) -> None:
  from reverbsynth import paths
  from reverbsynth.data import manifest as manifest_lib, records, tfrecord
  _wheels()
  dataset = dataset or str(paths.latest_dataset())
  manifest = manifest_lib.read(dataset)
  flac, labels = [], []
  for shard in manifest["shards"]:
    with open(os.path.join(dataset, shard["file"]), "rb") as f:
      for record in map(records.decode, tfrecord.iterate(f)):
        audio = record.pop(records.AUDIO)
        flac.append(_flac(audio, manifest["audio"]["sample_rate"]))
        labels.append({**{k: (v.tolist() if isinstance(v, np.ndarray) else v)
                          for k, v in record.items()}, "shard": shard["file"]})
  os.makedirs(".gpu", exist_ok=True)
  np.savez(BUNDLE, manifest=json.dumps(manifest), labels=json.dumps(labels),
           offsets=np.cumsum([0] + [len(a) for a in flac]), flac=np.concatenate(flac))
  print(f"{BUNDLE}: {len(flac)} records, {os.path.getsize(BUNDLE) / 2 ** 20:.1f} MiB")


def _write_shards(out: str, manifest: dict, shards: dict) -> str:
  """Writes {shard file: [framed records]} and the manifest (sizes and hashes renewed) to out."""
  from reverbsynth import storage
  from reverbsynth.data import manifest as manifest_lib
  for shard in manifest["shards"]:
    path = os.path.join(out, shard["file"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
      f.write(b"".join(shards.get(shard["file"], [])))
    shard["sha256"], shard["bytes"] = storage.sha256(path), os.path.getsize(path)
  storage.write_json(os.path.join(out, manifest_lib.FILENAME), manifest)
  return out


def unpack(out: str) -> str:
  """The packed dataset as TFRecord shards and its manifest (sizes and hashes renewed)."""
  import soundfile as sf

  from reverbsynth.data import example_proto, tfrecord
  bundle = np.load(BUNDLE)
  manifest, labels = json.loads(str(bundle["manifest"])), json.loads(str(bundle["labels"]))
  offsets, flac = bundle["offsets"], bundle["flac"]
  shards = {}
  for i, label in enumerate(labels):
    audio, _ = sf.read(io.BytesIO(flac[offsets[i]:offsets[i + 1]].tobytes()), dtype="float32")
    features = {k: np.asarray(v, np.float32) if k == "effect_params" else v
                for k, v in label.items() if k != "shard"}
    shards.setdefault(label["shard"], []).append(
        tfrecord.frame(example_proto.encode({**features, "audio": audio})))
  return _write_shards(out, manifest, shards)


def device(out: str) -> None:
  """Measures, then trains for what is left of GPU_SECONDS (default 540: one 600 s call)."""
  deadline = time.monotonic() + float(os.environ.get("GPU_SECONDS", 540))
  os.environ.setdefault("BENCH_TIMED_STEPS", "10")
  from reverbsynth import backend
  backend.use("jax")
  import jax

  from tests.benchmarks import bench_training
  data = unpack(os.path.join("/tmp", "bass"))
  report = {"devices": [str(d) for d in jax.devices()], "date": time.strftime("%Y-%m-%d")}
  print(json.dumps(report), flush=True)
  # The stable stages of levels 1-5; a level's fade-in runs both its blocks, as its stable
  # stage does, so its speed stands for both in the schedule's time (stages 0-8).
  stable = [0, 2, 4, 6, 8]
  for precision in ("mixed_bfloat16", "float32"):
    rows = bench_training.measure("reverbsynth", data, "jax", [
        f"train.precision={precision}", "train.distribute=true"], stable)
    speed = {r["level"]: r["images_per_second"] for r in rows}
    hours = sum(800_000 / speed[min(i // 2 + 1 + i % 2, 5)] for i in range(9)) / 3600 \
        if all(speed.values()) else None
    report[precision] = {"rows": rows, "schedule_hours_stages_0_8": hours}
    print(json.dumps({precision: report[precision]}), flush=True)
  left = deadline - time.monotonic() - 60  # Export and writing back.
  speed = report["mixed_bfloat16"]["rows"][-1]["images_per_second"] or 0
  per_stage = int(speed * left * 0.6 / 9 / 64) * 64  # 0.6: compiling each level.
  if per_stage >= 64:
    run = os.path.join("/tmp", "run")
    trained = subprocess.run(
        [sys.executable, "-m", "reverbsynth", "train", "--backend", "jax", "--config",
         "reverbsynth", "--data", data, "--out", run, "--stages", "9", "--no-progress",
         f"schedule.images_per_stage={per_stage}", "train.precision=mixed_bfloat16",
         "train.distribute=true"], timeout=max(left, 1),
        env={**os.environ, "REVERBSYNTH_NO_COST_CHECK": "1"})
    report["trained"] = {"stages": 9, "images_per_stage": per_stage,
                         "returncode": trained.returncode}
    if os.path.exists(os.path.join(run, "generator")):
      subprocess.run([sys.executable, "-m", "reverbsynth", "export", "--run", run, "--out",
                      os.path.join(out, "generator")], check=True,
                     env={**os.environ, "KERAS_BACKEND": "jax"})  # No TensorFlow there.
  with open(os.path.join(out, "gpu-report.json"), "w") as f:
    json.dump(report, f, indent=1)


if __name__ == "__main__":
  {"prepare": prepare, "device": device, "unpack": unpack, "prepare-ddsp": prepare_ddsp,
   "device-ddsp": device_ddsp, "unpack-ddsp": unpack_ddsp}[sys.argv[1]](*sys.argv[2:])
