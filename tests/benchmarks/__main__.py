"""`make bench`: every benchmark, each printing ratios against a baseline measured in the same
run."""

from tests.benchmarks import bench_build_dataset, bench_generators, bench_render, bench_training

if __name__ == "__main__":
  bench_build_dataset.main()
  bench_training.main()
  bench_generators.main()
  bench_render.main()
