"""The GPU part of issue 13, as one procedure: measure and train configs/reverbsynth.yaml with
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


def prepare(dataset=None) -> None:
  from reverbsynth import paths
  from reverbsynth.data import manifest as manifest_lib, records, tfrecord
  import soundfile as sf
  for wheel in WHEELS:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
                    *[f"--platform={p}" for p in PLATFORMS], "-d", ".whl", wheel], check=True)
  dataset = dataset or str(paths.latest_dataset())
  manifest = manifest_lib.read(dataset)
  flac, labels = [], []
  for shard in manifest["shards"]:
    with open(os.path.join(dataset, shard["file"]), "rb") as f:
      for record in map(records.decode, tfrecord.iterate(f)):
        audio = record.pop(records.AUDIO)
        buffer = io.BytesIO()
        sf.write(buffer, np.clip(audio, -1, 1), manifest["audio"]["sample_rate"],
                 format="FLAC", subtype="PCM_16")
        flac.append(np.frombuffer(buffer.getvalue(), np.uint8))
        labels.append({**{k: (v.tolist() if isinstance(v, np.ndarray) else v)
                          for k, v in record.items()}, "shard": shard["file"]})
  os.makedirs(".gpu", exist_ok=True)
  np.savez(BUNDLE, manifest=json.dumps(manifest), labels=json.dumps(labels),
           offsets=np.cumsum([0] + [len(a) for a in flac]), flac=np.concatenate(flac))
  print(f"{BUNDLE}: {len(flac)} records, {os.path.getsize(BUNDLE) / 2 ** 20:.1f} MiB")


def unpack(out: str) -> str:
  """The packed dataset as TFRecord shards and its manifest (sizes and hashes renewed)."""
  from reverbsynth import storage
  from reverbsynth.data import example_proto, manifest as manifest_lib, tfrecord
  import soundfile as sf
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
  for shard in manifest["shards"]:
    path = os.path.join(out, shard["file"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
      f.write(b"".join(shards.get(shard["file"], [])))
    shard["sha256"], shard["bytes"] = storage.sha256(path), os.path.getsize(path)
  storage.write_json(os.path.join(out, manifest_lib.FILENAME), manifest)
  return out


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
  {"prepare": prepare, "device": device, "unpack": unpack}[sys.argv[1]](*sys.argv[2:])
