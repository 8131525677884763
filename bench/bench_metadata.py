"""The metadata half on a first run (fresh caches), side by side with what else a user could run, in one process tree.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_metadata.py [--rows N] [--image-bytes B] [--scale 10]
                                                              [--loop-rows N] [--out DIR]

For the dataset at B image bytes a row, and again at scale x B, each side runs in its own child process (peak RSS
is that child's own VmHWM; bytes are its /proc/self/io rchar, i.e. bytes read through read calls):
- floor: pyarrow reads exactly the needed metadata columns of every file (nothing else can be faster);
- ours, first run: open_split -> build_filtered_index (empty scan cache) -> assign_buckets -> both tables saved;
- ours, warm: the same again with the scan cache filled (nothing changed);
- idiomatic datasets: load_dataset (fresh cache, so every image byte is converted) -> batched filter on the
  metadata columns -> batched caption map, as a user writes it in ten lines;
- loop: load_dataset (fresh cache) then dataset[i] per row, the reference trainer's way; the loop runs over
  --loop-rows rows spread over the split and is extrapolated to all rows (load time counted once).
Rows/s = dataset rows / seconds of the whole side. The OS page cache is not dropped between sides.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model, ram_gb  # noqa: E402

THRESHOLDS = {"clip_score": 0.2, "aesthetic_score": 4.0, "technical_quality": 0.4}
COLLECTIONS = ["photo", "artwork", "diagram"]
MINIMUM = 512  # pixel_area: width * height >= 512 ** 2
COLUMNS = ["width", "height", "caption", "metadata", "quality_assessment", "collection"]
SIDES = ["floor", "ours", "ours_warm", "idiomatic", "loop"]


def entry(dataset: Path, cache: Path) -> dict:
    return {
        "id": "bench",
        "type": "huggingface",
        "dataset_name": str(dataset),
        "caption_column": "caption",
        "fallback_caption_column": "metadata.caption",
        "width_column": "width",
        "height_column": "height",
        "filter_func": {
            "quality_column": "quality_assessment",
            "quality_thresholds": THRESHOLDS,
            "collection": COLLECTIONS,
        },
        "resolution": 1024,
        "resolution_type": "pixel_area",
        "minimum_image_size": MINIMUM,
        "cache_dir": str(cache),
    }


def io_counters() -> dict[str, float]:
    """Bytes read and written through read/write calls, and CPU seconds (user + system, all threads) so far."""
    import resource

    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"rchar": int(fields["rchar"]), "wchar": int(fields["wchar"]), "cpu_s": usage.ru_utime + usage.ru_stime}


def side_floor(dataset: Path, cache: Path, args) -> dict:
    import pyarrow.parquet as pq

    files = sorted(str(p) for p in (dataset / "data").glob("*.parquet"))
    table = pq.read_table(files, columns=COLUMNS)
    return {"rows": table.num_rows}


def side_ours(dataset: Path, cache: Path, args) -> dict:
    from hf_assets.cache.tables import save_table
    from hf_assets.config.loader import parse_config
    from hf_assets.data.buckets import assign_buckets
    from hf_assets.data.index import build_filtered_index
    from hf_assets.data.lineage import carry, stamp
    from hf_assets.data.scan_cache import scan_cache_for
    from hf_assets.data.sources import open_split

    backend = parse_config([entry(dataset, cache)], cache / "dataloader.json").backends[0]
    split = open_split(backend)
    scan = scan_cache_for(split, backend)
    index, dropped = build_filtered_index(split, backend, scan)
    index = stamp(index, split.fingerprint, "row")
    buckets = carry(index, assign_buckets(index, backend.buckets, backend.id))
    save_table(backend.metadata_dir, "filtered_index", index)
    save_table(backend.metadata_dir, "aspect_buckets", buckets)
    return {"rows": split.num_rows, "kept": index.num_rows, "files_scanned": scan.read, "files_reused": scan.reused}


def _keep(width, height, qa, collection):
    """The same rules as the backend above, written as a user would for a batched `datasets.filter`."""
    import numpy as np

    w, h = np.asarray(width, dtype=np.float64), np.asarray(height, dtype=np.float64)
    keep = (w * h >= MINIMUM**2) & np.isin(np.asarray(collection, dtype=object), COLLECTIONS)
    for metric, floor in THRESHOLDS.items():
        scores = np.array([q[metric] if q and q[metric] is not None else -np.inf for q in qa], dtype=np.float32)
        keep &= scores >= np.float32(floor)
    return keep.tolist()


def _captions(caption, metadata):
    out = []
    for text, meta in zip(caption, metadata):
        text = (text or "").strip() or ((meta or {}).get("caption") or "").strip()
        out.append(text or None)
    return {"final_caption": out}


def side_idiomatic(dataset: Path, cache: Path, args) -> dict:
    import datasets

    ds = datasets.load_dataset(str(dataset), split="train", cache_dir=str(cache / "datasets"))
    rows = len(ds)
    ds = ds.filter(_keep, batched=True, input_columns=["width", "height", "quality_assessment", "collection"])
    ds = ds.map(_captions, batched=True, input_columns=["caption", "metadata"])
    ds = ds.filter(lambda c: [x is not None for x in c], batched=True, input_columns=["final_caption"])
    return {"rows": rows, "kept": len(ds)}


def side_loop(dataset: Path, cache: Path, args) -> dict:
    import datasets
    import numpy as np

    start, cpu = time.perf_counter(), io_counters()["cpu_s"]
    ds = datasets.load_dataset(str(dataset), split="train", cache_dir=str(cache / "datasets"))
    load, load_cpu = time.perf_counter() - start, io_counters()["cpu_s"] - cpu
    sample = np.sort(np.random.default_rng(0).choice(len(ds), size=min(args.loop_rows, len(ds)), replace=False))
    start = time.perf_counter()
    kept = 0
    for i in sample.tolist():
        row = ds[int(i)]  # decodes the image, as the reference does
        qa, ok = row["quality_assessment"], row["width"] * row["height"] >= MINIMUM**2
        ok = (
            ok
            and row["collection"] in COLLECTIONS
            and bool(qa)
            and all(qa[m] is not None and np.float32(qa[m]) >= np.float32(t) for m, t in THRESHOLDS.items())
        )
        caption = (row["caption"] or "").strip() or ((row["metadata"] or {}).get("caption") or "").strip()
        kept += bool(ok and caption and row["image"].size)
    per_row = (time.perf_counter() - start) / len(sample)
    return {
        "rows": len(ds),
        "kept_in_sample": kept,
        "sample": len(sample),
        "load_s": load,
        "load_cpu_s": load_cpu,
        "extrapolated_s": load + per_row * len(ds),
    }


IMPORTS = {  # imported before the clock starts, as in a running Dagster step or a user's warm interpreter
    "floor": ["pyarrow.parquet"],
    "ours": [
        "pyarrow.parquet",
        "hf_assets.data.sources",
        "hf_assets.data.index",
        "hf_assets.data.buckets",
        "hf_assets.data.scan_cache",
        "hf_assets.cache.tables",
        "hf_assets.config.loader",
    ],
    "idiomatic": ["datasets"],
    "loop": ["datasets"],
}


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM; unlike a child's ru_maxrss, not inherited from the parent at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(args) -> None:
    import importlib

    dataset, cache = Path(args.dataset), Path(args.cache)
    for module in IMPORTS[args.side.removesuffix("_warm")]:
        importlib.import_module(module)
    before, start = io_counters(), time.perf_counter()
    result = globals()[f"side_{args.side.removesuffix('_warm')}"](dataset, cache, args)
    wall = time.perf_counter() - start
    after = io_counters()
    result.update({k: after[k] - before[k] for k in after})
    if "extrapolated_s" in result:  # the loop ran over a sample: scale its wall and CPU time to every row
        scale = (result["extrapolated_s"] - result["load_s"]) / (wall - result["load_s"])
        result["cpu_s"] = result["load_cpu_s"] + (result["cpu_s"] - result["load_cpu_s"]) * scale
        wall = result.pop("extrapolated_s")
    result["seconds"] = wall
    result["peak_rss_mb"] = peak_rss_mb()
    Path(args.result).write_text(json.dumps(result))


def run_side(side: str, dataset: Path, cache: Path, args) -> dict:
    result_file = cache.parent / f"{cache.name}-{side}.json"
    cmd = [
        sys.executable,
        __file__,
        "--side",
        side,
        "--dataset",
        str(dataset),
        "--cache",
        str(cache),
        "--result",
        str(result_file),
        "--loop-rows",
        str(args.loop_rows),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    if proc.wait() != 0:
        raise SystemExit(f"side {side} failed")
    result = json.loads(result_file.read_text())
    print(f"  {side:10s} {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def bench_one(rows: int, image_bytes: int, args) -> dict:
    from bench.make_bench_dataset import build_bench_dataset

    dataset = args.out / f"dataset-r{rows}-b{image_bytes}"
    if not (dataset / "bench_complete.json").is_file():
        build_bench_dataset(dataset, rows=rows, with_size_columns=True, image_bytes_per_row=image_bytes, shards=8)
        (dataset / "bench_complete.json").write_text("{}")
    size = sum(p.stat().st_size for p in (dataset / "data").glob("*.parquet"))
    results = {"rows": rows, "image_bytes": image_bytes, "parquet_bytes": size}
    for side in args.sides:
        cache = args.out / f"cache-{side.removesuffix('_warm')}-r{rows}-b{image_bytes}"
        if not side.endswith("_warm"):
            shutil.rmtree(cache, ignore_errors=True)  # a first run: no cache of any kind
        cache.mkdir(parents=True, exist_ok=True)
        results[side] = run_side(side, dataset, cache, args)
        if side in ("idiomatic", "loop"):
            shutil.rmtree(cache, ignore_errors=True)  # its Arrow cache holds every image byte: free the disk
    if "ours" in results and "idiomatic" in results:
        assert results["ours"]["kept"] == results["idiomatic"]["kept"], "ours and idiomatic disagree"
    return results


def report(all_results: list[dict], args) -> str:
    lines = [
        f"rows {args.rows:,}; machine: {cpu_model()}, {os.cpu_count()} cores, {ram_gb():.0f} GiB RAM",
        "",
        "| image bytes/row | side | wall s | rows/s | side / ours (wall) | CPU s | side / ours (CPU) | MB read "
        "(rchar) | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for res in all_results:
        ours = res.get("ours", {})
        for side in args.sides:
            r = res[side]
            wall = f"{r['seconds'] / ours['seconds']:.2f}x" if ours and side != "ours" else ""
            cpu = f"{r['cpu_s'] / ours['cpu_s']:.2f}x" if ours and side != "ours" else ""
            lines.append(
                f"| {res['image_bytes']:,} | {side} | {r['seconds']:.2f} | {res['rows'] / r['seconds']:,.0f} | "
                f"{wall} | {r['cpu_s']:.2f} | {cpu} | {r['rchar'] / 1e6:,.0f} | {r['peak_rss_mb']:,.0f} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--image-bytes", type=int, default=1000)
    parser.add_argument("--scale", type=int, default=10, help="the second run uses scale x image bytes (0: skip)")
    parser.add_argument("--loop-rows", type=int, default=20_000)
    parser.add_argument("--sides", nargs="+", default=SIDES, choices=SIDES)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "bench_metadata")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        child(args)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = [args.image_bytes] + ([args.image_bytes * args.scale] if args.scale else [])
    results = [bench_one(args.rows, b, args) for b in sizes]
    table = report(results, args)
    print(table)
    (args.out / f"results-r{args.rows}.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
