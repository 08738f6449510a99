"""The two generator families side by side at 16 kHz: training images/s of configs/ddsp.yaml
at its top level against configs/reverbsynth.yaml's (the paper's spectral GAN, 128 x 1024
IF-Mel) at its top level, both on this machine's CPU and the JAX backend, in one run.

The spectral GAN's top level takes tens of seconds a step on 2 cores: it is timed on
BENCH_SPECTRAL_STEPS (2) steps of batch BENCH_SPECTRAL_BATCH (4) after one warm-up step
(images/s hardly depends on the batch on a CPU); ddsp on 10 steps of its own batch (16).
"""

import json
import os
import subprocess
import sys

SPECTRAL_STEPS = int(os.environ.get("BENCH_SPECTRAL_STEPS", 2))
SPECTRAL_BATCH = int(os.environ.get("BENCH_SPECTRAL_BATCH", 4))


def _measure(config_name: str, data_dir: str, steps: int, overrides) -> dict:
  env = {**os.environ, "REVERBSYNTH_NO_COST_CHECK": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
         "BENCH_TIMED_STEPS": str(steps), "BENCH_MAX_STEP_SECONDS": "600"}
  done = subprocess.run([sys.executable, "-c", (
      "import json, sys; from tests.benchmarks import bench_training as b; "
      "print(json.dumps(b.measure(sys.argv[1], sys.argv[2], 'jax', sys.argv[4:], "
      "[int(sys.argv[3])])))"), config_name, data_dir, str(_top_stage(config_name)),
      *overrides], capture_output=True, text=True, env=env)
  if done.returncode:
    raise SystemExit(f"bench_generators {config_name} failed:\n{done.stderr[-3000:]}")
  return json.loads(done.stdout.strip().splitlines()[-1])[0]


def _top_stage(config_name: str) -> int:
  from reverbsynth.runs import config as config_lib
  return 2 * config_lib.load(config_name).model.num_levels - 2


def main():
  from reverbsynth import paths
  data_dir = os.environ.get("BENCH_DATA") or paths.latest_dataset()
  if data_dir is None:
    raise SystemExit("no dataset: run 'make demo' (or set BENCH_DATA) first")
  spectral = _measure("reverbsynth", str(data_dir), SPECTRAL_STEPS,
                      [f"schedule.batch_size=[{', '.join([str(SPECTRAL_BATCH)] * 7)}]"])
  ddsp = _measure("ddsp", str(data_dir), 10, [])
  print(f"\n16 kHz generators, top level, JAX on {os.cpu_count()} cores")
  print(f"  {'config':<12} {'level':>5} {'images/s':>10} {'input wait':>10}")
  for name, row in (("reverbsynth", spectral), ("ddsp", ddsp)):
    print(f"  {name:<12} {row['level']:>5} {row['images_per_second']:>10.2f} "
          f"{row['input_share']:>10.1%}")
  print(f"  ddsp / reverbsynth: {ddsp['images_per_second'] / spectral['images_per_second']:.0f}x "
        "(issue 23's target: >= 50x)")


if __name__ == "__main__":
  main()
