"""Benchmark helpers: `python -m bench.make_bench_dataset` writes a large synthetic Parquet dataset."""
