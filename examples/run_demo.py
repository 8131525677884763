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
REAL_MODEL_HINT = (
    "The demo's backends name tiny pipelines with RANDOM weights (pretrained_model_name_or_path in\n"
    "  examples/dataloader.json). To encode with real models, name them there per backend, e.g.\n"
    "  stabilityai/stable-diffusion-xl-base-1.0 for the images and Wan-AI/Wan2.1-T2V-1.3B-Diffusers for the clips\n"
    "  (hub ids need network access or a filled hub cache), or remove the keys and set HF_ASSETS_MODEL\n"
    "  (HF_ASSETS_VIDEO_MODEL for the clips)."
)


def main() -> int:
    from examples.make_demo_data import build_demo_data

    build_demo_data(ROOT / "examples" / "demo_data")
    os.environ.setdefault(env.DATALOADER_CONFIG, str(DEMO_CONFIG))
    os.environ.setdefault("DAGSTER_HOME", str(ROOT / ".dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)

    from hf_assets.config import load_config
    from hf_assets.definitions import defs
    from hf_assets.resources.encoders import EncodersResource

    config = load_config(os.environ[env.DATALOADER_CONFIG])
    selection = ",".join(sorted(k.to_user_string() for k in defs.resolve_all_asset_keys() if _materializable(defs, k)))
    dg = shutil.which("dg", path=str(Path(sys.executable).parent)) or "dg"
    encoders = EncodersResource.from_environment()
    for backend in config.backends:
        started = time.time()
        cmd = [dg, "launch", "--assets", selection, "--partition", backend.id]
        model = encoders.model_choice(backend).describe()
        print(f"\n=== {backend.id}: {' '.join(cmd[1:])}\n    encodes with {model}", flush=True)
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
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
