"""`make demo`: build the demo data if missing, materialize every asset for every backend, say where things are."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hf_assets import env

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "examples" / "dataloader.json"
DEMO_MODEL = ROOT / "examples" / "demo_data" / "tiny-sdxl-pipeline"
DEMO_VIDEO_MODEL = ROOT / "examples" / "demo_data" / "tiny-wan-pipeline"
REAL_MODEL_HINT = (
    "To encode with a real model: HF_ASSETS_MODEL=stabilityai/stable-diffusion-xl-base-1.0 make demo\n"
    "  (a hub id, or a local diffusers pipeline folder; HF_ASSETS_VAE overrides the VAE, e.g.\n"
    "  madebyollin/sdxl-vae-fp16-fix; the hub id needs network access or a filled hub cache);\n"
    "  video backends use HF_ASSETS_VIDEO_MODEL, e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers (default: a tiny Wan)"
)


def demo_pipeline(folder: Path, family: str) -> Path:
    """A tiny pipeline of `family`'s layout with random weights, built once under the demo data folder."""
    from hf_assets.testing.tiny_pipelines import build_tiny_pipeline

    marker = folder / "RANDOM_WEIGHTS"
    if not marker.is_file():
        build_tiny_pipeline(folder, family)
        marker.write_text("Tiny models with random weights, built by `make demo`. Their outputs mean nothing.\n")
    return folder


def demo_model() -> Path:
    """The demo's tiny SDXL-layout pipeline."""
    return demo_pipeline(DEMO_MODEL, "sdxl")


def demo_video_model() -> Path:
    """The demo's tiny Wan-layout video pipeline (AutoencoderKLWan, UMT5)."""
    return demo_pipeline(DEMO_VIDEO_MODEL, "wan")


def backend_env(backend) -> dict:
    """The environment of one backend's run: video backends encode with the video model (a video VAE)."""
    environ = dict(os.environ)
    if backend.dataset_type == "video":
        environ[env.MODEL] = os.environ.get(env.VIDEO_MODEL) or str(demo_video_model())
    return environ


def main() -> int:
    from examples.make_demo_data import build_demo_data

    build_demo_data(ROOT / "examples" / "demo_data")
    os.environ.setdefault(env.DATALOADER_CONFIG, str(DEMO_CONFIG))
    if not os.environ.get(env.MODEL):
        os.environ[env.MODEL] = str(demo_model())
        print(f"{env.MODEL} is not set: using {DEMO_MODEL} (tiny models, RANDOM weights, demo only)")
    print(f"model: {os.environ[env.MODEL]}", flush=True)
    os.environ.setdefault("DAGSTER_HOME", str(ROOT / ".dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)

    from hf_assets.config import load_config
    from hf_assets.definitions import defs

    config = load_config(os.environ[env.DATALOADER_CONFIG])
    selection = ",".join(sorted(k.to_user_string() for k in defs.resolve_all_asset_keys() if _materializable(defs, k)))
    dg = shutil.which("dg", path=str(Path(sys.executable).parent)) or "dg"
    for backend in config.backends:
        started = time.time()
        cmd = [dg, "launch", "--assets", selection, "--partition", backend.id]
        environ = backend_env(backend)
        own_model = environ[env.MODEL] != os.environ[env.MODEL]
        model = f" ({env.MODEL}={environ[env.MODEL]})" if own_model else ""
        print(f"\n=== {backend.id}: {' '.join(cmd[1:])}{model}", flush=True)
        result = subprocess.run(cmd, cwd=ROOT, env=environ, capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stdout[-4000:], result.stderr[-8000:], sep="\n")
            print(f"FAILED: {backend.id}", file=sys.stderr)
            return result.returncode
        print(f"    done in {time.time() - started:.1f}s", flush=True)
    report(config)
    return 0


def _materializable(defs, key) -> bool:
    return defs.resolve_assets_def(key).is_executable


def report(config) -> None:
    """Print where each backend's caches are and how to look at them."""
    import pyarrow.parquet as pq

    print("\nCaches:")
    for backend in config.backends:
        buckets = backend.metadata_dir / "aspect_buckets.parquet"
        rows = pq.read_metadata(buckets).num_rows if buckets.exists() else 0
        print(f"  {backend.id}: {rows} samples")
        print(f"    metadata     {backend.metadata_dir}")
        for label, path in (("vae latents", backend.vae_dir), ("text embeds", backend.text_dir)):
            if path.exists():
                print(f"    {label:<12} {path}")
    print("\n" + REAL_MODEL_HINT)
    print(
        "\nOpen the UI:   make ui   (then http://127.0.0.1:3000)"
        f"\nDAGSTER_HOME:  {os.environ['DAGSTER_HOME']}"
        "\nYour own data: HF_ASSETS_DATALOADER_CONFIG=/path/to/dataloader.json make ui"
    )


if __name__ == "__main__":
    sys.exit(main())
