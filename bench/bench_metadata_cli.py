"""The metadata half through the real CLI, first run: `dagster asset materialize --select raw_split,filtered_index,
aspect_buckets --partition bench` in a child process with a fresh DAGSTER_HOME and fresh caches.

Run: HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_metadata_cli [--rows 1000000] [--image-bytes 1000]
         [--base-rows 1000] [--shards 8] [--row-group-rows 10000] [--remote] [--baselines idiomatic loop]
         [--loop-rows 20000] [--out bench/out/bench_metadata_cli]

The dataset is bench/make_bench_dataset.py's with its image bytes stored uncompressed (each row holds about
--image-bytes of JPEG bytes in the file, as real JPEGs would). For each size (--base-rows, then --rows) the CLI
runs once on a fresh instance and cache. Recorded per run:
- wall: the child's whole life (Python start, Dagster's imports and the run);
- steps: each step's time from the run's own event log (STEP_START to STEP_SUCCESS);
- peak RSS: the largest process's (os.wait4's ru_maxrss) and the whole process tree's (VmRSS summed, sampled
  every 50 ms);
- with --remote: the dataset is served by hf_assets_tests/range_server.py (HTTP with Range requests) as
  `<url>/data/*.parquet`, bucket_previews is selected too, and the bytes, GETs and HEADs the server answered are
  counted;
- CPU seconds (user + system of the child and its children): on a shared machine, where wall time also counts the
  waits for a core, the figure that load disturbs least;
- aspect_buckets' core once more in the bench's own process (write_backend_buckets on the stored index): its CPU
  and wall seconds;
- load: the 1-minute load average before and after (the machine may be shared).
Rows/s is marginal: (rows - base rows) / (time at rows - time at base rows), which removes fixed start-up costs;
it is given on the wall time and on the run's own time (RUN_START to RUN_SUCCESS in its event log, which leaves
out the noise of Python and Dagster starting on a busy machine), and on CPU seconds against the baselines' own
CPU seconds.
The baselines (bench/bench_metadata.py's idiomatic `datasets` and per-row loop sides) run at the same two sizes,
side by side, and their rows/s is marginal the same way.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model, ram_gb  # noqa: E402

SELECT = "raw_split,filtered_index,aspect_buckets"
PARTITION = "bench"


def dataset_for(rows: int, image_bytes: int, shards: int, group_rows: int, out: Path) -> Path:
    """The bench dataset of this shape under `out` (built once, reused while its marker is there)."""
    from bench.make_bench_dataset import build_bench_dataset

    path = out / f"dataset-r{rows}-b{image_bytes}-s{shards}-g{group_rows}-stored"
    if not (path / "bench_complete.json").is_file():  # image bytes stored uncompressed: a row holds what it says
        build_bench_dataset(path, rows, True, image_bytes, shards, group_rows, stored_images=True)
        (path / "bench_complete.json").write_text("{}")
    return path


def parquet_bytes(dataset: Path) -> int:
    return sum(p.stat().st_size for p in (dataset / "data").glob("*.parquet"))


class TreeSampler(threading.Thread):
    """Samples the summed VmRSS of a process and its descendants; `peak_mb` is the largest sum seen."""

    def __init__(self, pid: int, every: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak_mb = pid, every, 0.0
        self.stopped = threading.Event()

    def tree(self) -> list[int]:
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    todo += [int(c) for c in (task / "children").read_text().split()]
                except OSError:
                    pass
        return pids

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            total = 0
            for pid in self.tree():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                except OSError:
                    pass
            self.peak_mb = max(self.peak_mb, total / 1024)


def step_times(home: Path) -> dict:
    """Each step's seconds, the run's status and chosen materialization metadata, from the run's event log."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(limit=1)[0]
        starts, steps, metadata, run_times = {}, {}, {}, {}
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is None:
                continue
            if event.event_type in (dg.DagsterEventType.RUN_START, dg.DagsterEventType.RUN_SUCCESS):
                run_times[event.event_type] = record.timestamp
            if event.event_type_value == "STEP_START":
                starts[event.step_key] = record.timestamp
            elif event.event_type_value == "STEP_SUCCESS":
                steps[event.step_key] = record.timestamp - starts.get(event.step_key, record.timestamp)
            elif event.event_type_value == "ASSET_MATERIALIZATION":
                mat = event.event_specific_data.materialization
                for key in ("samples", "preview_bytes_fetched", "kept"):
                    if key in mat.metadata:
                        metadata[f"{mat.asset_key.to_user_string()}.{key}"] = mat.metadata[key].value
        nan = float("nan")
        run_s = run_times.get(dg.DagsterEventType.RUN_SUCCESS, nan) - run_times.get(dg.DagsterEventType.RUN_START, nan)
        return {"status": run.status.value, "run_s": run_s, "steps": steps, "metadata": metadata}


def bucketing_cpu(work: Path) -> dict:
    """aspect_buckets' core (`write_backend_buckets` on the index the run stored) once more, in this process: its
    CPU seconds (all threads) and wall seconds, a figure of the step's own work that a busy machine disturbs less."""
    from hf_assets.cache.tables import open_table_file
    from hf_assets.config.loader import parse_config
    from hf_assets.data.backend_buckets import write_backend_buckets

    backend = parse_config(json.loads((work / "dataloader.json").read_text()), work / "dataloader.json").backends[0]
    index = open_table_file(backend.metadata_dir, "filtered_index")
    cpu, wall = time.process_time(), time.perf_counter()
    write_backend_buckets(index, backend, work / "bucketing_again", "aspect_buckets")
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall, "kept": index.num_rows}


def run_cli(dataset_name: str, work: Path, select: str) -> dict:
    """One first run of the CLI on a fresh instance and cache under `work`."""
    from bench.bench_metadata import entry

    shutil.rmtree(work, ignore_errors=True)
    home = work / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    config = work / "dataloader.json"
    config.write_text(json.dumps([{**entry(Path("."), work / "cache"), "dataset_name": dataset_name}], indent=1))
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "HF_ASSETS_DATALOADER_CONFIG": str(config),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }
    cmd = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "hf_assets.definitions"]
    cmd += ["--select", select, "--partition", PARTITION]
    load = os.getloadavg()[0]
    with open(work / "cli.log", "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        sampler.stopped.set()
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"the CLI failed ({proc.returncode}); see {work / 'cli.log'}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "tree_rss_mb": sampler.peak_mb,
        "load_before": load,
        "load_after": os.getloadavg()[0],
        **step_times(home),
        "bucketing_again": bucketing_cpu(work),
        "command": " ".join(["dagster", *cmd[1:]]),
    }


def run_baseline(side: str, dataset: Path, work: Path, loop_rows: int) -> dict:
    from bench.bench_metadata import run_side

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    load = os.getloadavg()[0]
    result = run_side(side, dataset, work, SimpleNamespace(loop_rows=loop_rows))
    shutil.rmtree(work, ignore_errors=True)  # its Arrow cache holds every image byte
    return {**result, "load_before": load, "load_after": os.getloadavg()[0]}


def measure(rows: int, args) -> dict:
    dataset = dataset_for(rows, args.image_bytes, args.shards, args.row_group_rows, args.out)
    size = parquet_bytes(dataset)
    work = args.out / f"run-r{rows}-b{args.image_bytes}{'-remote' if args.remote else ''}"
    result = {"rows": rows, "parquet_bytes": size}
    if args.remote:
        from hf_assets_tests.range_server import serve

        with serve(dataset) as (url, traffic):
            result["cli"] = run_cli(f"{url}/data/*.parquet", work, SELECT + ",bucket_previews")
            result["cli"]["sent_bytes"] = traffic.total
            result["cli"]["gets"] = sum(1 for method, _ in traffic.calls if method == "GET")
            result["cli"]["heads"] = sum(1 for method, _ in traffic.calls if method == "HEAD")
            result["cli"]["listings"] = traffic.listings()
            result["cli"]["ranges"] = sorted(traffic.ranges)
    else:
        result["cli"] = run_cli(str(dataset), work, SELECT)
    shown = {k: v for k, v in result["cli"].items() if k != "ranges"}
    print(f"  cli r={rows}: {json.dumps(shown)}", file=sys.stderr, flush=True)
    for side in args.baselines:
        result[side] = run_baseline(side, dataset, args.out / f"baseline-{side}", args.loop_rows)
    return result


def marginal(big: dict, small: dict | None, seconds) -> float | None:
    """Rows per second over the extra rows of `big` (all rows without `small`); None where the extra time is not
    positive (noise larger than the work)."""
    if small is None:
        return big["rows"] / seconds(big)
    extra = seconds(big) - seconds(small)
    return (big["rows"] - small["rows"]) / extra if extra > 0 else None


def rate_text(rate: float | None) -> str:
    return f"{rate:,.0f}" if rate else "n/a"


def ratio_text(ours: float | None, side: float | None) -> str:
    return f"{ours / side:.1f}x" if ours and side else "n/a"


def report(small: dict | None, big: dict, args) -> str:
    cli = big["cli"]
    where = "over HTTP (range server)" if args.remote else "local files"
    lines = [
        f"{big['rows']:,} rows, ~{args.image_bytes:,} image bytes a row, {args.shards} file(s), row groups of "
        f"{args.row_group_rows:,}; {big['parquet_bytes'] / 1e6:,.0f} MB of Parquet, {where}",
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {ram_gb():.0f} GiB RAM (shared: see load)",
        "",
        "| side | rows | wall s | run s (event log) | CPU s | marginal rows/s (wall) | marginal rows/s (run) | "
        "marginal rows/CPU-s | ours ÷ side (wall) | ours ÷ side (run) | ours ÷ side (CPU) | "
        "peak RSS MB (largest process) | peak RSS MB (tree) | load 1-min (before→after) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    sizes = [small, big] if small else [big]
    ours_wall = marginal(big, small, lambda r: r["cli"]["wall_s"])
    ours_run = marginal(big, small, lambda r: r["cli"]["run_s"])
    ours_cpu = marginal(big, small, lambda r: r["cli"]["cpu_s"])
    for res in sizes:
        c = res["cli"]
        rates = (
            " |  | " if res is not big else f"{rate_text(ours_wall)} | {rate_text(ours_run)} | {rate_text(ours_cpu)}"
        )
        lines.append(
            f"| CLI (ours) | {res['rows']:,} | {c['wall_s']:.2f} | {c['run_s']:.2f} | {c['cpu_s']:.2f} | {rates} "
            "|  |  |  | "
            f"{c['peak_rss_mb']:,.0f} | {c['tree_rss_mb']:,.0f} | {c['load_before']:.1f}→{c['load_after']:.1f} |"
        )
    for side in args.baselines:
        rate = marginal(big, small, lambda x, s=side: x[s]["seconds"])
        cpu = marginal(big, small, lambda x, s=side: x[s]["cpu_s"])
        for res in sizes:
            r = res[side]
            cells = (
                f"{rate_text(rate)} | {rate_text(rate)} | {rate_text(cpu)} | {ratio_text(ours_wall, rate)} | "
                f"{ratio_text(ours_run, rate)} | {ratio_text(ours_cpu, cpu)}"
                if res is big
                else " |  |  |  |  | "
            )
            lines.append(
                f"| {side} (in-process, imports excluded) | {res['rows']:,} | {r['seconds']:.2f} | "
                f"{r['seconds']:.2f} | {r['cpu_s']:.2f} | {cells} | {r['peak_rss_mb']:,.0f} |  | "
                f"{r['load_before']:.1f}→{r['load_after']:.1f} |"
            )
    lines += ["", "| step (at the larger size) | seconds |", "|---|---|"]
    lines += [f"| {step} | {sec:.2f} |" for step, sec in cli["steps"].items()]
    again = cli["bucketing_again"]
    lines += [
        "",
        f"aspect_buckets' core again in the bench's process (write_backend_buckets on the stored index of "
        f"{again['kept']:,} kept rows): {again['cpu_s']:.2f} CPU s, {again['wall_s']:.2f} s wall",
    ]
    if args.remote:
        share = cli["sent_bytes"] / big["parquet_bytes"]
        lines += [
            "",
            f"HTTP: the server sent {cli['sent_bytes']:,} bytes = {share:.2%} of the {big['parquet_bytes']:,} "
            f"file bytes (bucket_previews included); {cli['gets']} GETs, {cli['heads']} HEADs, "
            f"{cli['listings']} folder listing(s); preview bytes fetched (its metadata): "
            f"{cli['metadata'].get('bucket_previews.preview_bytes_fetched', 'n/a')}",
        ]
    lines += ["", f"command: `{cli['command']}` (DAGSTER_HOME, cache and config fresh per run)"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--image-bytes", type=int, default=1000)
    parser.add_argument("--base-rows", type=int, default=1000, help="the small run for marginal rates (0: none)")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--row-group-rows", type=int, default=10_000)
    parser.add_argument("--remote", action="store_true", help="serve the dataset over HTTP with Range requests")
    parser.add_argument("--baselines", nargs="*", default=["idiomatic", "loop"], choices=["idiomatic", "loop"])
    parser.add_argument("--loop-rows", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "bench_metadata_cli")
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    small = measure(args.base_rows, args) if args.base_rows else None
    big = measure(args.rows, args)
    table = report(small, big, args)
    print(table)
    name = f"results-r{args.rows}-b{args.image_bytes}{'-remote' if args.remote else ''}.json"
    (args.out / name).write_text(json.dumps({"small": small, "big": big, "table": table}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
