"""Shared fixtures: realistic Hub-style datasets and dataloader configs, generated per test."""

import json
import os
from pathlib import Path

import pytest

from hf_assets_tests.demo_workspace import demo_data, demo_workspace  # noqa: F401 - fixtures for the demo tests
from hf_assets_tests.imagegen import corrupt_bytes, encode_image
from hf_assets_tests.s3_server import s3_server  # noqa: F401 - a real S3 server on 127.0.0.1 for type aws tests

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_ASSETS_RETRY_DELAY", "0")  # retried steps and fetches never sleep on a backoff in tests
# The dagster processes the tests start encode tiny models beside another pytest worker: one torch thread each, and
# OpenMP threads that sleep when idle instead of spinning on a core the other worker needs.
os.environ.setdefault("HF_ASSETS_CPU_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# The longest test starts first: `make test` runs several workers (pytest-xdist), and a long test picked up last would
# leave one of them idle at the end.
FIRST = ("test_browser.py",)
TESTS = Path(__file__).resolve().parent
GRAPH_TESTS = TESTS / "assets"  # every test there materializes the asset graph through Dagster: slow


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.path.name not in FIRST)  # stable: every other test keeps its place
    for item in items:
        if GRAPH_TESTS in item.path.parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """The models under test are tiny: one torch thread avoids oversubscribing small CI machines."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# (stored width, stored height, format, EXIF orientation): landscape, portrait, square, panorama, tiny, rotated.
PHOTO_SPECS = [
    (640, 480, "JPEG", None),
    (480, 640, "PNG", None),
    (512, 512, "WEBP", None),
    (900, 300, "JPEG", None),
    (120, 90, "JPEG", None),
    (600, 400, "JPEG", 6),
    (333, 517, "WEBP", None),
    (1024, 576, "PNG", None),
]


def photo_rows(n: int = 24, corrupt: tuple[int, ...] = (5,)) -> list[dict]:
    """Rows of a realistic captioned photo dataset; rows in `corrupt` hold bytes no codec accepts."""
    rows = []
    for i in range(n):
        w, h, fmt, orientation = PHOTO_SPECS[i % len(PHOTO_SPECS)]
        data = corrupt_bytes(i) if i in corrupt else encode_image(w, h, fmt, seed=i, exif_orientation=orientation)
        shown_w, shown_h = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
        rows.append(
            {
                "image": {"bytes": data, "path": None},
                "width": shown_w,
                "height": shown_h,
                "caption": [f"a photo of item {i}", "  ", "", None][i % 4],
                "tags": [["outdoor", "sunny"], [], ["studio"], None][i % 4],
                "metadata": {"caption": f"nested caption {i}", "source": "camera"},
                "quality_assessment": None if i % 7 == 3 else {"aesthetic_score": 4.0 + (i % 4), "clip_score": 0.31},
                "collection": ["photo", "artwork", "diagram", "screenshot"][i % 4],
            }
        )
    return rows


def write_hub_dataset(folder: Path, rows: list[dict], shards: int = 2) -> Path:
    """Write rows as a Hub-style Parquet dataset folder (data/train-0000K-of-0000N.parquet) with an Image feature."""
    import datasets

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "width": datasets.Value("int32"),
            "height": datasets.Value("int32"),
            "caption": datasets.Value("string"),
            "tags": datasets.Sequence(datasets.Value("string")),
            "metadata": {"caption": datasets.Value("string"), "source": datasets.Value("string")},
            "quality_assessment": {
                "aesthetic_score": datasets.Value("float32"),
                "clip_score": datasets.Value("float32"),
            },
            "collection": datasets.Value("string"),
        }
    )
    ds = datasets.Dataset.from_list(rows, features=features)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        ds.shard(shards, k, contiguous=True).to_parquet(str(folder / "data" / f"train-{k:05d}-of-{shards:05d}.parquet"))
    return folder


def write_config(path: Path, entries: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=2))
    return path


@pytest.fixture
def hub_dataset(tmp_path) -> Path:
    """A 24-row Hub-style Parquet dataset with one corrupt image, under tmp_path/data/photos."""
    return write_hub_dataset(tmp_path / "data" / "photos", photo_rows())


PHOTOS_ENTRY = {
    "id": "photos",
    "type": "huggingface",
    "dataset_name": "data/photos",
    "caption_strategy": "huggingface",
    "metadata_backend": "huggingface",
    "caption_column": ["caption", "tags"],
    "fallback_caption_column": "metadata.caption",
    "resolution": 256,
    "resolution_type": "pixel_area",
    "cache_dir": "cache/photos",
}


@pytest.fixture
def photos_entry() -> dict:
    """A SimpleTuner backend entry for the `hub_dataset` fixture (relative paths)."""
    return dict(PHOTOS_ENTRY)


@pytest.fixture(scope="session")
def tiny_pipelines(tmp_path_factory) -> dict:
    """family -> folder of a tiny image pipeline (sd, sdxl, sd3, flux) written with save_pretrained."""
    from hf_assets.testing.tiny_pipelines import build_tiny_pipeline

    root = tmp_path_factory.mktemp("pipelines")
    return {family: build_tiny_pipeline(root / family, family) for family in ("sd", "sdxl", "sd3", "flux")}


@pytest.fixture(scope="session")
def tiny_wan(tmp_path_factory) -> Path:
    """A diffusers-layout Wan pipeline folder with a tiny random-weight video VAE and text encoder."""
    from hf_assets.testing.tiny_pipelines import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny-wan", "wan")


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory) -> Path:
    """A diffusers-layout SDXL pipeline folder with tiny random-weight VAE and text encoders."""
    from hf_assets.testing.tiny_pipelines import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny-sdxl", "sdxl")
