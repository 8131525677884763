"""filtered_index's scan with one thread against one per usable core, side by side in one process: a first run (no
scan cache, no index) and a warm rerun (every piece answered by the scan cache), each repeated, alternating order.

Run: HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_scan_workers [--rows 1000000] [--repeats 3]
         [--out bench/out/bench_metadata_cli]

The dataset is bench_metadata_cli's (built there once and reused). Timed: `write_filtered_index` then `publish`,
the core of the filtered_index step. The whole step through the CLI, in a fresh process with its peak RSS, is
bench_metadata_cli's figure.
"""

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from bench.bench_metadata import entry
from bench.bench_metadata_cli import ROOT, dataset_for
from hf_assets.config.loader import parse_config
from hf_assets.cores import usable_cores
from hf_assets.data.index_writer import publish, write_filtered_index
from hf_assets.data.scan_cache import scan_cache_for
from hf_assets.data.sources import open_split


def timed_index(split, backend, workers: int) -> tuple[float, int]:
    """Seconds to write and publish the index; pieces scanned (0 on a warm rerun)."""
    cache = scan_cache_for(split, backend)
    start = time.perf_counter()
    write_filtered_index(split, backend, backend.metadata_dir, cache, workers=workers)
    publish(backend.metadata_dir)
    return time.perf_counter() - start, cache.read


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "bench_metadata_cli")
    args = parser.parse_args()
    dataset = dataset_for(args.rows, 1000, 8, 10_000, args.out)
    work = args.out / "scan_workers"
    config = work / "dataloader.json"
    work.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps([entry(dataset, work / "cache")]))
    backend = parse_config(json.loads(config.read_text()), config).backends[0]
    split = open_split(backend)
    sides = sorted({1, usable_cores()})
    times: dict[tuple[int, str], list[float]] = {}
    for repeat in range(args.repeats):
        for workers in sides if repeat % 2 == 0 else sides[::-1]:
            shutil.rmtree(work / "cache", ignore_errors=True)
            cold, scanned = timed_index(split, backend, workers)
            warm, rescanned = timed_index(split, backend, workers)
            assert scanned == len(split.pieces) and rescanned == 0
            times.setdefault((workers, "first run"), []).append(cold)
            times.setdefault((workers, "warm rerun"), []).append(warm)
    shutil.rmtree(work, ignore_errors=True)
    print(f"{args.rows:,} rows in {len(split.pieces)} pieces; median of {args.repeats} (min-max), seconds")
    print("| run | " + " | ".join(f"{w} scan thread(s)" for w in sides) + " | ratio (1 thread ÷ the last) |")
    print("|---|" + "---|" * (len(sides) + 1))
    for run in ("first run", "warm rerun"):
        cells = [times[(w, run)] for w in sides]
        shown = [f"{statistics.median(c):.3f} ({min(c):.3f}-{max(c):.3f})" for c in cells]
        ratio = statistics.median(cells[0]) / statistics.median(cells[-1])
        print(f"| {run} | " + " | ".join(shown) + f" | {ratio:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
