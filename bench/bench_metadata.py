"""The metadata half end to end (open_split -> build_filtered_index -> assign_buckets -> save_table) against
the reference trainer's per-row loop (`load_dataset`, then `dataset[i]` for every row), side by side in one run.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_metadata.py [--rows N] [--baseline-rows N]
                                                               [--image-bytes B] [--out DIR]

Each side runs in its own child process (this script re-invoked with --side), so each peak RSS is that
child's own (`os.wait4` rusage ru_maxrss). Datasets are generated once with bench/make_bench_dataset.py
and kept under --out, keyed by rows and image bytes. Every run rebuilds the main dataset's Arrow cache
to report the cold figures, then times the warm path in a fresh process. The operating system's page
cache is not dropped: "cold" means the Arrow cache does not exist yet, not that the disk is cold.
"""

import argparse
import json
import math
import os
import platform
import shlex
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

DEFAULT_OUT = ROOT / "bench" / "out"
BACKEND_ID = "bench"
QUALITY_THRESHOLDS = {"clip_score": 0.2, "aesthetic_score": 4.0, "technical_quality": 0.4}
COLLECTIONS = ["photo", "artwork", "diagram"]
RESOLUTION = 1024
MINIMUM_IMAGE_SIZE = 512  # pixel_area: width * height >= 512 ** 2
ALIGNMENT = 64
SAMPLE_SEED = 1234


# ----------------------------------------------------------------------------------------------------
# Shared set-up


def dataset_dir(out: Path, rows: int, image_bytes: int) -> Path:
    return out / "bench_metadata" / f"dataset-r{rows}-b{image_bytes}"


def cache_dir(out: Path, rows: int, image_bytes: int) -> Path:
    return out / "bench_metadata" / f"cache-r{rows}-b{image_bytes}"


def ensure_dataset(out: Path, rows: int, image_bytes: int) -> tuple[Path, float | None]:
    """The generated dataset folder, built unless a complete one is present; and the seconds it took (None: reused)."""
    from bench.make_bench_dataset import build_bench_dataset

    folder = dataset_dir(out, rows, image_bytes)
    marker = folder / "bench_complete.json"
    wanted = {"rows": rows, "image_bytes": image_bytes, "with_size_columns": True, "shards": 8}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return folder, None
    log(f"generating {rows:,} rows with ~{image_bytes} image bytes each in {folder} ...")
    start = time.perf_counter()
    build_bench_dataset(folder, rows=rows, with_size_columns=True, image_bytes_per_row=image_bytes, shards=8)
    marker.write_text(json.dumps(wanted))
    seconds = time.perf_counter() - start
    log(f"  generated in {seconds:.1f}s")
    return folder, seconds


def backend_entries(dataset: Path, cache: Path) -> list[dict]:
    """The dataloader JSON of the benchmark backend."""
    return [
        {
            "id": BACKEND_ID,
            "type": "huggingface",
            "dataset_name": str(dataset),
            "split": "train",
            "caption_strategy": "huggingface",
            "metadata_backend": "huggingface",
            "image_column": "image",
            "huggingface": {
                "caption_column": ["caption"],
                "fallback_caption_column": "metadata.caption",
                "width_column": "width",
                "height_column": "height",
                "filter_func": {
                    "quality_column": "quality_assessment",
                    "quality_thresholds": QUALITY_THRESHOLDS,
                    "collection": COLLECTIONS,
                },
            },
            "resolution": RESOLUTION,
            "resolution_type": "pixel_area",
            "minimum_image_size": MINIMUM_IMAGE_SIZE,
            "crop": False,
            "cache_dir": str(cache),
        }
    ]


def make_backend(dataset: Path, cache: Path):
    from hf_assets.config.loader import parse_config

    dataset, cache = Path(dataset).resolve(), Path(cache).resolve()
    return parse_config(backend_entries(dataset, cache), cache / "dataloader.json").backend(BACKEND_ID)


def baseline_indices(rows: int, sample: int):
    """The rows the baseline visits: all of them, or a seeded random sample spread over the whole split."""
    import numpy as np

    if sample >= rows:
        return np.arange(rows, dtype=np.int64)
    return np.sort(np.random.default_rng(SAMPLE_SEED).choice(rows, size=sample, replace=False)).astype(np.int64)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def proc_status_mb() -> dict[str, float]:
    """VmRSS, VmHWM, RssAnon and RssFile of this process, in MB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            values[key] = int(line.split()[1]) / 1024
    return values


class MemorySampler:
    """Samples RssAnon (the process's own heap) and RssFile (mapped file pages) every 10 ms; keeps the maxima.

    ru_maxrss / VmHWM count both together, and the file-backed part is mostly the memory-mapped Arrow cache:
    clean pages the kernel maps around every page touched (fault-around, large folios), reclaimable at any time.
    """

    def __init__(self, interval: float = 0.01):
        import threading

        self.peak_anon = self.peak_file = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        status = proc_status_mb()
        self.peak_anon = max(self.peak_anon, status.get("RssAnon", 0.0))
        self.peak_file = max(self.peak_file, status.get("RssFile", 0.0))

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._sample()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._sample()
        return {"peak_anon_mb": self.peak_anon, "peak_file_mb": self.peak_file, "vm_hwm_mb": proc_status_mb()["VmHWM"]}


# ----------------------------------------------------------------------------------------------------
# Child: our code path


def side_ours(args) -> dict:
    """open_split, build_filtered_index, assign_buckets, save_table x2, each timed (cold child: open_split twice)."""
    import datasets  # noqa: F401  (imported before timing, as in a running Dagster step)

    from hf_assets.cache.tables import save_table
    from hf_assets.data.buckets import assign_buckets
    from hf_assets.data.index import build_filtered_index
    from hf_assets.data.sources import open_split

    backend = make_backend(args.dataset, args.cache)
    arrow_cache_existed = (backend.cache_dir / "datasets").exists()
    t = {}
    start = time.perf_counter()
    split = open_split(backend)
    t["open_split"] = time.perf_counter() - start
    log(f"[{args.side}] open_split ({'warm' if arrow_cache_existed else 'cold'}, first call): {t['open_split']:.2f}s")

    if not arrow_cache_existed:
        # A second call once the Arrow cache exists. Only in the cold child, and its result is dropped at once:
        # a second live mapping of the cache would inflate the peak RSS of the process.
        start = time.perf_counter()
        again = open_split(backend)
        t["open_split_again"] = time.perf_counter() - start
        del again

    start = time.perf_counter()
    index, dropped = build_filtered_index(split, backend)
    t["build_filtered_index"] = time.perf_counter() - start

    start = time.perf_counter()
    buckets = assign_buckets(index, backend.buckets, backend.id)
    t["assign_buckets"] = time.perf_counter() - start

    start = time.perf_counter()
    save_table(backend.metadata_dir, "filtered_index", index, {"backend": backend.id})
    t["save_filtered_index"] = time.perf_counter() - start

    start = time.perf_counter()
    save_table(backend.metadata_dir, "aspect_buckets", buckets, {"backend": backend.id})
    t["save_aspect_buckets"] = time.perf_counter() - start

    t["end_to_end"] = sum(t[k] for k in ("open_split", "build_filtered_index", "assign_buckets",
                                         "save_filtered_index", "save_aspect_buckets"))
    log(f"[{args.side}] " + "  ".join(f"{k} {v:.2f}s" for k, v in t.items()))
    return {
        "rows": split.num_rows,
        "kept": index.num_rows,
        "dropped": dropped,
        "arrow_cache_existed": arrow_cache_existed,
        "times": t,
        "buckets_path": str(backend.metadata_dir / "aspect_buckets.parquet"),
    }


# ----------------------------------------------------------------------------------------------------
# Child: the reference trainer's way


def _align(v: float, m: int = ALIGNMENT) -> int:
    return max(m, int(round(v / m)) * m)


def side_baseline(args) -> dict:
    """load_dataset (image decoded by the Image feature), then dataset[i] per row with plain Python rules."""
    import datasets
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    backend = make_backend(args.dataset, args.cache)
    indices = baseline_indices(args.rows, args.baseline_rows).tolist()
    # Same float32 rounding of the threshold as the columnar filter, so "0.2" means the same on both sides.
    thresholds = {k: float(np.float32(v)) for k, v in QUALITY_THRESHOLDS.items()}
    collections = set(COLLECTIONS)
    min_area = MINIMUM_IMAGE_SIZE ** 2
    e = _align(RESOLUTION)

    start = time.perf_counter()
    dataset = datasets.load_dataset(str(args.dataset), split="train", cache_dir=str(backend.cache_dir / "datasets"))
    load_seconds = time.perf_counter() - start
    log(f"[baseline] load_dataset (warm): {load_seconds:.2f}s; looping over {len(indices):,} rows ...")

    out_rows, reasons, captions, bucket_keys, target_w, target_h = [], [], [], [], [], []
    decoded_pixels = 0
    start = time.perf_counter()
    for i in indices:
        row = dataset[i]  # decodes the image through the Image feature, as the reference does
        decoded_pixels += row["image"].width * row["image"].height
        w, h = row["width"], row["height"]
        variants = [c.strip() for c in (row["caption"],) if c is not None and c.strip()]
        if not variants:
            fallback = (row["metadata"] or {}).get("caption")
            if fallback is not None and fallback.strip():
                variants = [fallback.strip()]
        scores = row["quality_assessment"]
        if w is None or h is None:
            reason = "unreadable_image"
        elif w < 1 or h < 1 or w * h < min_area:
            reason = "too_small"
        elif scores is None or any(scores.get(m) is None or scores[m] < t for m, t in thresholds.items()):
            reason = "quality"
        elif row["collection"] not in collections:
            reason = "collection"
        elif not variants:
            reason = "no_caption"
        else:
            reason = None
        bucket = tw = th = None
        if reason is None:
            root = math.sqrt(w / h)
            tw, th = _align(e * root), _align(e / root)
            bucket = str(round(tw / th, 2))
        out_rows.append(i)
        reasons.append(reason)
        captions.append(variants[0] if variants else None)
        bucket_keys.append(bucket)
        target_w.append(tw)
        target_h.append(th)
    loop_seconds = time.perf_counter() - start
    log(f"[baseline] loop: {loop_seconds:.2f}s ({len(indices) / loop_seconds:,.0f} rows/s)")

    # Written after the clock stops: this file exists only to check agreement.
    result_path = args.cache / "baseline_result.parquet"
    pq.write_table(
        pa.table({
            "row": pa.array(out_rows, pa.int64()),
            "reason": pa.array(reasons, pa.string()),
            "caption": pa.array(captions, pa.string()),
            "bucket": pa.array(bucket_keys, pa.string()),
            "target_width": pa.array(target_w, pa.int32()),
            "target_height": pa.array(target_h, pa.int32()),
        }),
        result_path,
    )
    return {
        "rows": len(indices),
        "dataset_rows": len(dataset),
        "kept": sum(r is None for r in reasons),
        "times": {"load_dataset": load_seconds, "loop": loop_seconds},
        "decoded_megapixels": decoded_pixels / 1e6,
        "result_path": str(result_path),
    }


# ----------------------------------------------------------------------------------------------------
# Parent: orchestration, agreement check, report


def run_child(side: str, dataset: Path, cache: Path, rows: int, baseline_rows: int) -> dict:
    """Run one side in a fresh interpreter; its result plus its own peak RSS from wait4."""
    result_file = cache / f"result-{side}.json"
    result_file.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--dataset", str(dataset),
           "--cache", str(cache), "--rows", str(rows), "--baseline-rows", str(baseline_rows),
           "--result", str(result_file)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"side {side} failed with exit code {proc.returncode}")
    result = json.loads(result_file.read_text())
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux: kilobytes
    result["child_wall_s"] = wall
    return result


def compare(ours: dict, baseline: dict, rows: int) -> dict:
    """Kept rows and buckets of both sides over the rows the baseline visited; asserts they agree."""
    import numpy as np
    import pyarrow.parquet as pq

    mine = pq.read_table(ours["buckets_path"], columns=["row", "caption", "bucket", "target_width", "target_height"])
    ref = pq.read_table(baseline["result_path"])
    visited = ref.column("row").to_numpy()
    my_rows = mine.column("row").to_numpy()
    in_sample = np.isin(my_rows, visited)
    mine = mine.filter(in_sample)
    ref_kept = ref.filter(ref.column("reason").is_null())
    kept_ours, kept_ref = mine.num_rows, ref_kept.num_rows
    same_rows = kept_ours == kept_ref and bool(np.array_equal(mine.column("row").to_numpy(), ref_kept.column("row").to_numpy()))
    mismatches = {}
    if same_rows:
        for name in ("bucket", "target_width", "target_height", "caption"):
            a, b = mine.column(name).to_pylist(), ref_kept.column(name).to_pylist()
            mismatches[name] = sum(x != y for x, y in zip(a, b))
    dropped_ref = {}
    for reason in ref.column("reason").to_pylist():
        if reason is not None:
            dropped_ref[reason] = dropped_ref.get(reason, 0) + 1
    return {
        "visited": len(visited),
        "kept_ours": kept_ours,
        "kept_baseline": kept_ref,
        "same_kept_rows": same_rows,
        "mismatches": mismatches,
        "dropped_baseline": dropped_ref,
        "full": len(visited) == rows,
    }


def parquet_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in (folder / "data").glob("*.parquet")) / 1e6


def main_parent(args) -> int:
    import datasets
    import numpy as np
    import pyarrow as pa

    started = time.perf_counter()
    command = "HF_HUB_OFFLINE=1 " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable, ROOT), *sys.argv])
    out = args.out.resolve()
    rows = args.rows
    baseline_rows = min(args.baseline_rows or rows, rows)
    rss_bytes = args.image_bytes * 10
    rss_rows = args.rss_rows or rows

    main_ds, gen_main = ensure_dataset(out, rows, args.image_bytes)
    big_ds, gen_big = (None, None) if args.skip_rss_check else ensure_dataset(out, rss_rows, rss_bytes)

    main_cache = cache_dir(out, rows, args.image_bytes)
    main_cache.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(main_cache / "datasets", ignore_errors=True)  # cold: no Arrow cache
    log("ours, cold (Arrow cache built by the first load_dataset) ...")
    cold = run_child("ours-cold", main_ds, main_cache, rows, baseline_rows)
    log("ours, warm (fresh process, Arrow cache present) ...")
    warm = run_child("ours", main_ds, main_cache, rows, baseline_rows)
    log("baseline, warm (fresh process, same Arrow cache) ...")
    base = run_child("baseline", main_ds, main_cache, rows, baseline_rows)

    big_cold = big_warm = None
    if big_ds is not None:
        big_cache = cache_dir(out, rss_rows, rss_bytes)
        big_cache.mkdir(parents=True, exist_ok=True)
        if not (big_cache / "datasets").exists() or args.cold_rss_dataset:
            shutil.rmtree(big_cache / "datasets", ignore_errors=True)
            log(f"ours on {rss_bytes} image bytes per row, cold ...")
            big_cold = run_child("ours-cold", big_ds, big_cache, rss_rows, baseline_rows)
        log(f"ours on {rss_bytes} image bytes per row, warm ...")
        big_warm = run_child("ours", big_ds, big_cache, rss_rows, baseline_rows)

    check = compare(warm, base, rows)
    if check["full"]:
        assert warm["dropped"] == {**dict.fromkeys(warm["dropped"], 0), **check["dropped_baseline"]}, (
            f"drop counts differ: ours {warm['dropped']} baseline {check['dropped_baseline']}")

    # ---- figures
    wt, ct, bt = warm["times"], cold["times"], base["times"]
    sampled = base["rows"] < rows
    loop_rate = base["rows"] / bt["loop"]
    base_total = bt["load_dataset"] + (rows / loop_rate if sampled else bt["loop"])
    speedup_warm = base_total / wt["end_to_end"]
    speedup_cold = base_total / ct["end_to_end"]

    def mem(r: dict | None) -> str:
        return "(not measured) | (not measured)" if r is None else f"{r['peak_rss_mb']:,.0f} | {r['peak_anon_mb']:,.0f}"

    lines = []
    add = lines.append
    add(f"## Metadata half, end to end: {rows:,} rows, ~{args.image_bytes} image bytes per row")
    add("")
    add(f"- machine: {cpu_model()}, {os.cpu_count()} cores, {ram_gb():.1f} GB RAM ({platform.system()} {platform.release()})")
    add(f"- python {platform.python_version()}, pyarrow {pa.__version__}, datasets {datasets.__version__}, numpy {np.__version__}")
    add(f"- command: `{command}`")
    add(f"- dataset: {main_ds} ({parquet_mb(main_ds):,.0f} MB Parquet, 8 shards, real JPEG bytes)"
        + (f", generated in {gen_main:.0f}s (not timed below)" if gen_main else ", reused from an earlier run"))
    add("- config (parse_config): caption_column [caption], fallback_caption_column metadata.caption; width/height "
        f"columns; filter_func quality_thresholds {QUALITY_THRESHOLDS}, collection {COLLECTIONS}; resolution "
        f"{RESOLUTION} pixel_area, minimum_image_size {MINIMUM_IMAGE_SIZE}, crop false")
    add("- ours = open_split + build_filtered_index + assign_buckets + save_table(filtered_index) + "
        "save_table(aspect_buckets); baseline = load_dataset, then dataset[i] per row (image decoded by the Image "
        "feature), size from width/height, same caption rules, same filters, bucket with Python math")
    add("- each side runs in its own fresh process; warm = the Arrow cache exists (built by the cold run just before); "
        "cold = the first load_dataset builds it (OS page cache not dropped)")
    add("")
    if sampled:
        add(f"**The baseline ran on a SAMPLE of {base['rows']:,} of the {rows:,} rows** (seeded random rows spread over "
            f"the whole split). It measured {loop_rate:,.0f} rows/s; its time for all {rows:,} rows is EXTRAPOLATED: "
            f"load_dataset {bt['load_dataset']:.2f}s + {rows:,} rows / {loop_rate:,.0f} rows/s = {base_total:,.0f}s.")
        add("")
    add("| side | rows | seconds | rows/s | peak RSS MB | peak anon MB | speed-up (ours vs baseline) |")
    add("|---|---:|---:|---:|---:|---:|---:|")
    add(f"| ours, warm | {rows:,} | {wt['end_to_end']:.2f} | {rows / wt['end_to_end']:,.0f} | {mem(warm)} | "
        f"**{speedup_warm:,.0f}x** |")
    add(f"| ours, cold (builds the Arrow cache) | {rows:,} | {ct['end_to_end']:.2f} | {rows / ct['end_to_end']:,.0f} | "
        f"{mem(cold)} | {speedup_cold:,.0f}x |")
    if sampled:
        add(f"| baseline, warm, MEASURED on the sample | {base['rows']:,} | {bt['load_dataset'] + bt['loop']:.2f} | "
            f"{loop_rate:,.0f} (loop) | {mem(base)} | - |")
        add(f"| baseline, warm, EXTRAPOLATED to all rows | {rows:,} | {base_total:,.1f} | {rows / base_total:,.0f} | "
            f"{mem(None)} | 1x |")
    else:
        add(f"| baseline, warm | {rows:,} | {base_total:,.1f} | {rows / base_total:,.0f} | {mem(base)} | 1x |")
    if big_warm is not None:
        bw = big_warm["times"]
        add(f"| ours, warm, ~{rss_bytes} image bytes/row | {rss_rows:,} | {bw['end_to_end']:.2f} | "
            f"{rss_rows / bw['end_to_end']:,.0f} | {mem(big_warm)} | - |")
    if big_cold is not None:
        bc = big_cold["times"]
        add(f"| ours, cold, ~{rss_bytes} image bytes/row | {rss_rows:,} | {bc['end_to_end']:.2f} | "
            f"{rss_rows / bc['end_to_end']:,.0f} | {mem(big_cold)} | - |")
    add("")
    add("peak RSS = the child's ru_maxrss (os.wait4). It counts the pages of the memory-mapped Arrow cache that the "
        "kernel maps in around each page touched (clean, file-backed, reclaimable). peak anon = the highest RssAnon "
        "sampled every 10 ms: the process's own memory.")
    add("")
    add("Our steps, seconds:")
    add("")
    cols = [("cold", cold), ("warm", warm)]
    if big_cold is not None:
        cols.append((f"cold, {rss_bytes} B/row", big_cold))
    if big_warm is not None:
        cols.append((f"warm, {rss_bytes} B/row", big_warm))
    add("| step | " + " | ".join(name for name, _ in cols) + " |")
    add("|---|" + "---:|" * len(cols))
    labels = [
        ("open_split, first call in the process", "open_split"),
        ("open_split, second call once the cache exists", "open_split_again"),
        ("build_filtered_index", "build_filtered_index"),
        ("assign_buckets", "assign_buckets"),
        ("save_table filtered_index", "save_filtered_index"),
        ("save_table aspect_buckets", "save_aspect_buckets"),
        ("end to end (first open_split + the four steps)", "end_to_end"),
    ]
    for label, key in labels:
        cells = [f"{r['times'][key]:.3f}" if key in r["times"] else "-" for _, r in cols]
        add(f"| {label} | " + " | ".join(cells) + " |")
    add("")
    add(f"Baseline: load_dataset (warm) {bt['load_dataset']:.2f}s; per-row loop {bt['loop']:.1f}s over "
        f"{base['rows']:,} rows = {loop_rate:,.0f} rows/s ({base['decoded_megapixels']:,.1f} megapixels decoded).")
    add("")
    mm = check["mismatches"]
    scope = f"all {rows:,} rows" if check["full"] else f"the {check['visited']:,} sampled rows"
    add(f"Agreement over {scope}: kept ours {check['kept_ours']:,} / baseline {check['kept_baseline']:,}; same kept "
        f"rows: {'yes' if check['same_kept_rows'] else 'NO'}; mismatches: " + ", ".join(f"{k} {v}" for k, v in mm.items()))
    add(f"Ours over all {rows:,} rows: kept {warm['kept']:,}; dropped "
        + ", ".join(f"{k} {v:,}" for k, v in warm["dropped"].items() if v)
        + ("" if not check["full"] else "; baseline dropped "
           + ", ".join(f"{k} {v:,}" for k, v in check["dropped_baseline"].items())))
    if big_warm is not None:
        add("")
        add(f"Peak memory of our warm path, ~{args.image_bytes} vs ~{rss_bytes} image bytes/row "
            f"({parquet_mb(main_ds):,.0f} MB vs {parquet_mb(big_ds):,.0f} MB of Parquet; {rows:,} vs {rss_rows:,} rows): "
            f"RSS {warm['peak_rss_mb']:,.0f} MB vs {big_warm['peak_rss_mb']:,.0f} MB "
            f"(x{big_warm['peak_rss_mb'] / warm['peak_rss_mb']:.2f}), anon {warm['peak_anon_mb']:,.0f} MB vs "
            f"{big_warm['peak_anon_mb']:,.0f} MB (x{big_warm['peak_anon_mb'] / warm['peak_anon_mb']:.2f}).")
        if gen_big is not None:
            add(f"(The {rss_bytes} B/row dataset was generated in {gen_big:.0f}s, not timed.)")
        if big_cold is None:
            add(f"(The {rss_bytes} B/row Arrow cache was reused from an earlier run, so no cold figure for it; "
                "pass --cold-rss-dataset to rebuild it.)")
    add("")
    add(f"Whole benchmark: {time.perf_counter() - started:.0f}s wall.")
    report = "\n".join(lines)
    print(report)
    (out / "bench_metadata.md").write_text(report + "\n")

    ok = check["same_kept_rows"] and not any(mm.values())
    assert ok, f"ours and the baseline disagree: {check}"
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=None,
                        help="rows the per-row baseline visits (default: all); a smaller sample is extrapolated")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--image-bytes", type=int, default=1000, help="approximate image bytes per row")
    parser.add_argument("--rss-rows", type=int, default=None,
                        help="rows of the 10x-image-bytes dataset used for the RSS check (default: --rows)")
    parser.add_argument("--skip-rss-check", action="store_true", help="skip the 10x-image-bytes run")
    parser.add_argument("--cold-rss-dataset", action="store_true",
                        help="also rebuild the 10x dataset's Arrow cache (it is built only when missing otherwise)")
    parser.add_argument("--side", choices=["ours", "ours-cold", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side is None:
        return main_parent(args)
    sampler = MemorySampler()
    result = side_baseline(args) if args.side == "baseline" else side_ours(args)
    result.update(sampler.stop())
    args.result.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
