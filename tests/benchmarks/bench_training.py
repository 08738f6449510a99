"""Training speed per stage on this machine, and the share of time spent waiting for input.

For each stage: a few warm-up steps (tracing), then timed steps, on the dataset
`make demo` builds (or $BENCH_DATA). The input share is the time blocked on the
next real batch over the time of the whole step (target < 5 %: data must never
starve the model). reverbsynth's highest levels take minutes per step on a CPU;
stages whose first step exceeds $BENCH_MAX_STEP_SECONDS (60) are reported, not timed.
"""

import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["REVERBSYNTH_NO_COST_CHECK"] = "1"

from reverbsynth.runs import config as config_lib
from reverbsynth.training import loop as training
from reverbsynth import paths
from reverbsynth.model import schedule  # noqa: E402

INPUT_TARGET = 0.05
TIMED_STEPS = int(os.environ.get("BENCH_TIMED_STEPS", 20))
MAX_STEP_SECONDS = float(os.environ.get("BENCH_MAX_STEP_SECONDS", 60))


def bench(config_name: str, data_dir: str) -> None:
  config = config_lib.load(config_name)
  run_dir = tempfile.mkdtemp(prefix=f"reverbsynth-bench-{config_name}-")
  try:
    trainer = training.Trainer(config, data_dir, run_dir)
    levels = config.model.num_levels
    print(f"\ntraining speed, config '{config_name}' ({os.cpu_count()} cores)")
    print(f"  {'stage':>5}  {'level':>5}  {'kind':<10} {'images/s':>9}  {'input wait':>10}")
    for index in range(schedule.num_stages(levels)):
      st = schedule.stage(index, levels)
      batch = config.schedule.batch_size[st.level - 1]
      trainer.stage.assign(index)
      trainer.images_in_stage.assign(0)
      trainer.images_total.assign(0)  # No skipping: steady-state input.
      started = time.perf_counter()
      trainer.train(index + 1, progress=False, max_steps=1)  # Traces the step.
      if time.perf_counter() - started > MAX_STEP_SECONDS:
        print(f"  {index:>5}  {st.level:>5}  {'fade-in' if st.transition else 'stable':<10} "
              f"{'> ' + str(int(MAX_STEP_SECONDS)) + ' s/step: not timed':>22}")
        continue
      trainer.input_seconds = trainer.step_seconds = 0.0
      trainer.train(index + 1, progress=False, max_steps=TIMED_STEPS)
      busy = trainer.input_seconds + trainer.step_seconds
      share = trainer.input_seconds / busy
      print(f"  {index:>5}  {st.level:>5}  {'fade-in' if st.transition else 'stable':<10} "
            f"{TIMED_STEPS * batch / busy:>9.1f}  {share:>9.1%} "
            f"{'(target < 5 %: met)' if share < INPUT_TARGET else '(target < 5 %: NOT MET)'}")
  finally:
    shutil.rmtree(run_dir, ignore_errors=True)


def main():
  data_dir = os.environ.get("BENCH_DATA") or paths.latest_dataset()
  if data_dir is None:
    raise SystemExit("no dataset: run 'make demo' (or set BENCH_DATA) first")
  for name in ("tiny", "cpu", "reverbsynth"):
    bench(name, str(data_dir))


if __name__ == "__main__":
  main()
