"""The benchmark suite behind `chainrule bench`: training throughput and achieved FLOP/s against a
matmul peak measured in the same run, peak memory, fast-vs-generic sampling, torch.compile
speed-ups, all-reduce cost with a 1-64 GPU scaling estimate, and resident memory when training
on a memory-mapped dataset. Results go to `benchmarks/results/bench_*.json`."""
