"""Training speed per stage on this machine, TensorFlow and JAX side by side, and the share of
time spent waiting for input.

For each stage and backend: a few warm-up steps (tracing / jit), then timed steps, on the
dataset `make demo` builds (or $BENCH_DATA). Each backend runs in its own process (Keras
picks its backend once per process). The input share is the time blocked on the next real
batch over the time of the whole step (target < 5 %: data must never starve the model).
reverbsynth (the paper's config) is left to bench_generators, which times its top level on a
few steps: its whole schedule here took over 20 minutes. Stages whose first step exceeds
$BENCH_MAX_STEP_SECONDS (60) are reported, not timed. The ratio column is JAX's images/s
over TensorFlow's, both measured in this run.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

INPUT_TARGET = 0.05
TIMED_STEPS = int(os.environ.get("BENCH_TIMED_STEPS", 20))
MAX_STEP_SECONDS = float(os.environ.get("BENCH_MAX_STEP_SECONDS", 60))
BACKENDS = ("tensorflow", "jax")


def measure(config_name: str, data_dir: str, backend: str, overrides=(), stages=None) -> list:
  """[{"stage", "level", "transition", "images_per_second" or None, "input_share"}] for each
  of `stages` (default: all) of `config_name` with `overrides`, trained on `backend` (call
  in a process of that backend; tools/gpu.py calls it on a GPU)."""
  from reverbsynth import backend as backends
  backends.use(backend)
  from reverbsynth.model import schedule
  from reverbsynth.runs import config as config_lib
  from reverbsynth.training import loop as training
  config = config_lib.load(config_name, [f"train.backend={backend}", *overrides])
  run_dir = tempfile.mkdtemp(prefix=f"reverbsynth-bench-{config_name}-")
  rows = []
  try:
    trainer = training.Trainer(config, data_dir, run_dir)
    levels = config.model.num_levels
    for index in stages or range(schedule.num_stages(levels)):
      st = schedule.stage(index, levels)
      batch = config.schedule.batch_size[st.level - 1]
      trainer.stage, trainer.images_in_stage = index, 0
      trainer.images_total = 0  # No skipping: steady-state input.
      row = {"stage": index, "level": st.level, "transition": st.transition,
             "images_per_second": None, "input_share": None}
      rows.append(row)
      started = time.perf_counter()
      trainer.train(index + 1, progress=False, max_steps=2)  # Traces / compiles the step.
      if time.perf_counter() - started > 2 * MAX_STEP_SECONDS:
        continue
      trainer.input_seconds = trainer.step_seconds = 0.0
      trainer.train(index + 1, progress=False, max_steps=TIMED_STEPS)
      busy = trainer.input_seconds + trainer.step_seconds
      row.update(images_per_second=TIMED_STEPS * batch / busy,
                 input_share=trainer.input_seconds / busy)
  finally:
    shutil.rmtree(run_dir, ignore_errors=True)
  return rows


def bench(config_name: str, data_dir: str) -> None:
  results = {}
  for backend in BACKENDS:
    env = {**os.environ, "REVERBSYNTH_NO_COST_CHECK": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-m", "tests.benchmarks.bench_training", config_name,
                           data_dir, backend], capture_output=True, text=True, env=env)
    if done.returncode:
      raise SystemExit(f"bench_training {config_name} {backend} failed:\n{done.stderr[-3000:]}")
    results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
  print(f"\ntraining speed, config '{config_name}' ({os.cpu_count()} cores; "
        f"{TIMED_STEPS} timed steps a stage)")
  print(f"  {'stage':>5}  {'level':>5}  {'kind':<8}" + "".join(
      f"  {b + ' images/s':>20} {'input wait':>10}" for b in BACKENDS) + f"  {'jax / tf':>8}")
  for tf_row, jax_row in zip(*(results[b] for b in BACKENDS)):
    line = (f"  {tf_row['stage']:>5}  {tf_row['level']:>5}  "
            f"{'fade-in' if tf_row['transition'] else 'stable':<8}")
    for row in (tf_row, jax_row):
      if row["images_per_second"] is None:
        line += f"  {'> ' + str(int(MAX_STEP_SECONDS)) + ' s/step: not timed':>31}"
      else:
        met = "" if row["input_share"] < INPUT_TARGET else " (!)"
        line += f"  {row['images_per_second']:>20.1f} {row['input_share']:>9.1%}{met}"
    if tf_row["images_per_second"] and jax_row["images_per_second"]:
      line += f"  {jax_row['images_per_second'] / tf_row['images_per_second']:>8.2f}"
    print(line)
  print("  (!) input wait over the 5 % target")


def main():
  from reverbsynth import paths
  data_dir = os.environ.get("BENCH_DATA") or paths.latest_dataset()
  if data_dir is None:
    raise SystemExit("no dataset: run 'make demo' (or set BENCH_DATA) first")
  for name in os.environ.get("BENCH_CONFIGS", "tiny,cpu,ddsp").split(","):
    bench(name, str(data_dir))


if __name__ == "__main__":
  if len(sys.argv) == 4:  # One backend's measurements, in its own process.
    print(json.dumps(measure(*sys.argv[1:])))
  else:
    main()
