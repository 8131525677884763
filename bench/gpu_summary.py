"""One table from the parts of `bench/gpu_check.sh`: every stage's images/s, the figures the GPU targets are stated
in, and a line for each part that failed or ran out of time.

    python -m bench.gpu_summary OUT_DIR PART [PART ...]     # reads OUT_DIR/PART.json, PART.exit, PART.log
"""

import json
import sys
from pathlib import Path

from bench.encode_report import STAGES

TARGETS = {  # part -> [(headline key, label, minimum)]
    "1024_mixed": [
        ("pipeline_images_per_s", "pipeline images/s", 55.0),
        ("pipeline_over_compiled_bare", "pipeline ÷ compiled bare", 0.9),
        ("pipeline_over_best_bare", "pipeline ÷ best bare", 0.9),
        ("pipeline_over_naive", "pipeline ÷ naive loop", 3.0),
    ],
    "512_square": [
        ("pipeline_over_best_bare", "pipeline ÷ best bare", 0.9),
        ("pipeline_over_naive", "pipeline ÷ naive loop", 3.0),
    ],
}


def rate(run: dict) -> float:
    return run["images"] / run["seconds"] if run.get("seconds") else 0.0


def part_rows(out: Path, part: str) -> list[str]:
    """The table rows of one part: its stages, its problems, its headline figures against their targets."""
    figures_file, exit_file = out / f"{part}.json", out / f"{part}.exit"
    code, seconds = (exit_file.read_text().split() + ["?", "?"])[:2] if exit_file.is_file() else ("?", "?")
    if not figures_file.is_file():
        tail = (out / f"{part}.log").read_text().strip().splitlines()[-1:] if (out / f"{part}.log").is_file() else []
        return [f"| {part} | no figures: exit {code} after {seconds} s; {' '.join(tail)[:200]} | | | | | |"]
    figures = json.loads(figures_file.read_text())
    settings, runs, problems = figures["settings"], figures["runs"], figures["settings"].get("problems", {})
    headline = figures.get("headline", {})
    best_bare = max(
        (rate(r) for s in ("bare_nchw", "bare_channels_last", "bare_compiled") for r in runs.get(s, [])), default=0
    )
    flops, peak = settings.get("flops_per_image") or 0.0, settings.get("peak_tflops") or 0.0
    rows = []
    if code not in ("0", "?"):
        stopped = f"**stopped: exit {code} after {seconds} s** (124/137: timeout); figures so far below"
        rows.append(f"| {part} | {stopped} | | | | | |")
    for stage, (what, decode) in STAGES.items():
        if runs.get(stage):
            best = max(runs[stage], key=rate)
            versus = f"{rate(best) / best_bare:.3f}" if best_bare and not stage.startswith(("decode", "null")) else ""
            vae = stage.startswith(("bare", "pipeline", "naive"))
            share = f"{100 * rate(best) * flops / 1e12 / peak:.1f}%" if vae and flops and peak else ""
            extra = f"; compile {best['compile_seconds']:.1f} s" if best.get("compile_seconds") else ""
            rows.append(f"| {part} | {what} {decode}{extra} | {rate(best):.2f} img/s | {versus} | {share} | | |")
        elif stage in problems:
            rows.append(f"| {part} | {what} {decode} | {problems[stage]} | | | | |")
    for key, label, minimum in TARGETS.get(part, []):
        value = headline.get(key)
        met = "n/a" if value is None else ("yes" if value >= minimum else "**no**")
        shown = "n/a" if value is None else f"{value:.3g}"
        rows.append(f"| {part} | **{label}** ({headline.get('pipeline', '')}) | {shown} | | | ≥ {minimum:g} | {met} |")
    if headline.get("flop_limit_images_per_s"):
        rows.append(
            f"| {part} | FLOP limit ({flops / 1e12:.3g} TFLOP/image, matmul peak {peak:.3g} TFLOP/s) "
            f"| {headline['flop_limit_images_per_s']:.0f} img/s | | | | |"
        )
    decode = settings.get("decode_agreement") or {}
    if decode:
        rows.append(
            f"| {part} | nvJPEG vs Pillow pixels, {decode['images']} images | PSNR {decode['psnr_db']:.1f} dB | | | | |"
        )
    for pair, d in (settings.get("latent_differences") or {}).items():
        rows.append(
            f"| {part} | latent means, {pair} | mean abs Δ {d['mean_abs']:.3g} ({100 * d['relative']:.2f}%) | | | | |"
        )
    return rows


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(args[0])
    print("| part | row | value | ÷ best bare | of FLOP peak | target | met |")
    print("|---|---|---:|---:|---:|---|---|")
    for part in args[1:]:
        try:
            rows = part_rows(out, part)
        except Exception as error:  # noqa: BLE001 - one unreadable part is a line, the others still print
            rows = [f"| {part} | unreadable figures: {type(error).__name__}: {error} | | | | | |"]
        print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
