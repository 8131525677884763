"""The offline demo data (examples/make_demo_data.py) and the bench dataset writer (bench/make_bench_dataset.py)."""

import io
import json
import shutil
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageOps

from bench.make_bench_dataset import build_bench_dataset
from examples import make_demo_data as demo
from hf_assets.config.loader import DEMO_CONFIG, load_config

ALLOWED_ENTRY_KEYS = {
    # the spec's keys
    "id",
    "type",
    "dataset_name",
    "split",
    "revision",
    "caption_strategy",
    "metadata_backend",
    "caption_column",
    "image_column",
    "fallback_caption_column",
    "description_column",
    "width_column",
    "height_column",
    "filter_func",
    "composite_image_config",
    "huggingface",
    "num_proc",
    "dataset_type",
    # the trainer keys the demo may use
    "probability",
    "repeats",
    "resolution",
    "resolution_type",
    "minimum_image_size",
    "crop",
    "crop_aspect",
    "crop_aspect_buckets",
    "crop_style",
    "cache_dir",
    "disabled",
    "train_batch_size",
    "instance_data_dir",
    "aspect_bucket_alignment",
    "video",
    # SimpleTuner's dreambooth keys
    "instance_prompt",
    "max_num_samples",
    # SimpleTuner's ControlNet keys
    "conditioning_type",
    "source_dataset_id",
    "conditioning",
    # hf_assets's extensions: the model that encodes each backend, the drop-rate check's bound
    "pretrained_model_name_or_path",
    "max_drop_rate",
}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    demo.build_demo_data(out)
    return out


def _load(folder: Path, cache: Path) -> datasets.Dataset:
    return datasets.load_dataset(str(folder), split="train", cache_dir=str(cache))


def _open(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.fixture(scope="module")
def photos(demo_dir, tmp_path_factory) -> datasets.Dataset:
    return _load(demo_dir / "photos", tmp_path_factory.mktemp("hf_cache"))


def test_photos_is_a_hub_style_parquet_dataset(demo_dir, photos):
    files = sorted(p.name for p in (demo_dir / "photos" / "data").iterdir())
    assert files == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    card = (demo_dir / "photos" / "README.md").read_text()
    assert card.startswith("---\n") and "configs:" in card and "path: data/train-*" in card
    assert photos.num_rows == demo.PHOTO_ROWS
    assert isinstance(photos.features["image"], datasets.Image)
    schema = pq.read_schema(demo_dir / "photos" / "data" / files[0])
    assert b"huggingface" in schema.metadata
    assert json.loads(schema.metadata[b"huggingface"])["info"]["features"]["image"] == {"_type": "Image"}


def test_sizes_match_columns_and_exactly_three_rows_are_corrupt(photos):
    raw = photos.cast_column("image", datasets.Image(decode=False))
    corrupt, formats, orientations, modes, shapes = [], Counter(), Counter(), Counter(), Counter()
    for i, row in enumerate(raw):
        try:
            img = _open(row["image"]["bytes"])
        except Exception:  # noqa: BLE001 - whatever Pillow raises on a corrupt row counts it as corrupt
            corrupt.append(i)
            continue
        formats[img.format] += 1
        modes[img.mode] += 1
        orientations[img.getexif().get(0x0112)] += 1
        shown = ImageOps.exif_transpose(img)
        assert shown.size == (row["width"], row["height"]), f"row {i}"
        w, h = shown.size
        shapes[
            "tiny"
            if max(w, h) < 256
            else "panorama"
            if w >= 3 * h
            else "portrait"
            if h > w
            else "landscape"
            if w > h
            else "square"
        ] += 1
    assert len(corrupt) == 3
    assert set(formats) == {"JPEG", "PNG", "WEBP"}
    assert orientations[6] >= 2 and orientations[8] >= 2
    assert modes["RGBA"] >= 3
    assert all(shapes[s] >= 3 for s in ("tiny", "panorama", "portrait", "landscape", "square")), shapes


def test_photo_columns_have_the_awkward_cases(photos):
    rows = photos.remove_columns("image").to_list()
    captions = [r["caption"] for r in rows]
    assert any(c == "" for c in captions) and any(c and not c.strip() for c in captions)
    assert any(r["tags"] == [] for r in rows) and any(len(r["tags"]) >= 2 for r in rows)
    assert any(r["metadata"]["caption"] is None for r in rows) and any(r["metadata"]["caption"] for r in rows)
    assert any(r["quality_assessment"] is None for r in rows)
    scored = [r["quality_assessment"] for r in rows if r["quality_assessment"]]
    assert all(set(q) == {"clip_score", "aesthetic_score", "technical_quality"} for q in scored)
    assert {r["collection"] for r in rows} == {"photo", "artwork", "diagram", "screenshot"}
    assert all(set(r["description"]) == {"short", "detailed"} for r in rows)
    # some rows have no caption at all, anywhere
    assert any(not r["caption"].strip() and not r["tags"] and r["metadata"]["caption"] is None for r in rows)


def test_grids_are_strips_of_four_tiles(demo_dir, tmp_path):
    grids = _load(demo_dir / "grids", tmp_path)
    assert grids.num_rows == demo.GRID_ROWS
    assert isinstance(grids.features["image"], datasets.Image)
    for row in grids:
        w, h = row["image"].size
        assert w // 4 >= h // 2 and len(row["tile_captions"]) == 4
        assert row["caption"] == row["tile_captions"][1]
    assert any(row["image"].size[0] % 4 for row in grids)  # W // 4 really differs from W / 4 somewhere


def test_local_images_have_sidecars_except_one(demo_dir):
    root = demo_dir / "local_images"
    images = [p for p in root.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}]
    assert len(images) == demo.LOCAL_FILES
    assert any(p.parent != root for p in images)
    sidecars = [p.with_suffix(".txt") for p in images]
    assert sum(not s.exists() for s in sidecars) == 1
    assert sum(s.exists() and s.read_text() == "" for s in sidecars) == 1
    assert {p.suffix for p in images} >= {".jpg", ".png", ".webp"}
    for p in images:
        _open(p.read_bytes())


def test_each_local_image_has_its_canny_control_image_under_the_same_name(demo_dir):
    images = sorted(p for p in (demo_dir / "local_images").rglob("*") if p.is_file() and p.suffix.lower() != ".txt")
    for image in images:
        control = demo_dir / "local_edges" / image.relative_to(demo_dir / "local_images").with_suffix(".png")
        with Image.open(image) as source, Image.open(control) as edges:
            shown = ImageOps.exif_transpose(source).size
            assert edges.size == shown and edges.mode == "RGB"
            assert set(np.unique(np.asarray(edges))) <= {0, 255}


def test_dataloader_json_describes_the_backends(demo_dir):
    config_path = demo_dir / "dataloader.json"
    entries = {e["id"]: e for e in json.loads(config_path.read_text())}
    assert set(entries) == {
        "photos",
        "grids",
        "local-folder",
        "local-edges",
        "sks-photos",
        "photos-hires",
        "clips",
        "text-embeds",
    }
    for entry in entries.values():
        assert set(entry) <= ALLOWED_ENTRY_KEYS, set(entry) - ALLOWED_ENTRY_KEYS
    config = load_config(config_path)
    for backend in config.backends:  # every backend's own kind of pipeline, built beside the data
        family = "wan" if backend.dataset_type == "video" else "sdxl"
        assert backend.model == str(demo_dir / f"tiny-{family}-pipeline"), backend.id
        assert (Path(backend.model) / "model_index.json").is_file() and (
            Path(backend.model) / "RANDOM_WEIGHTS"
        ).is_file()

    photos = entries["photos"]
    hf = photos["huggingface"]
    assert photos["type"] == "huggingface" and (demo_dir / photos["dataset_name"]).is_dir()
    assert hf["caption_column"] == ["caption", "tags"] and hf["fallback_caption_column"] == "metadata.caption"
    assert (hf["width_column"], hf["height_column"]) == ("width", "height")
    assert hf["filter_func"]["quality_column"] == "quality_assessment"
    assert hf["filter_func"]["collection"] == ["photo", "artwork", "diagram"]
    assert (photos["resolution"], photos["resolution_type"], photos["minimum_image_size"]) == (512, "pixel_area", 256)
    assert photos["crop"] is False and photos["train_batch_size"] == 4 and photos["cache_dir"] == "cache/photos"

    grids = entries["grids"]
    assert grids["huggingface"]["composite_image_config"] == {"enabled": True, "image_count": 4, "select_index": 1}
    assert (grids["resolution"], grids["resolution_type"], grids["crop_aspect"], grids["crop_style"]) == (
        256,
        "pixel",
        "square",
        "center",
    )

    local = entries["local-folder"]
    assert local["type"] == "local" and (demo_dir / local["instance_data_dir"]).is_dir()
    assert local["caption_strategy"] == "textfile" and local["crop_aspect_buckets"] == [0.75, 1.0, 1.33]
    assert local["conditioning"] == [
        {"type": "canny", "conditioning_type": "controlnet", "low_threshold": 50, "high_threshold": 100}
    ]
    canny = config.backend("local-folder_conditioning_canny")  # generated from local-folder's crops
    assert canny.conditioning.source == "local-folder" and canny.conditioning.generator.kind == "canny"
    assert canny.conditioning.strict and canny.conditioning.output_dir is None  # no image files written

    edges = entries["local-edges"]
    assert edges["dataset_type"] == "conditioning" and edges["source_dataset_id"] == "local-folder"
    assert (demo_dir / edges["instance_data_dir"]).is_dir()

    sks = entries["sks-photos"]
    assert sks["caption_strategy"] == "instanceprompt" and sks["instance_prompt"] == "a photo of sks"
    assert entries["photos-hires"]["disabled"] is True
    assert entries["text-embeds"] == {
        "id": "text-embeds",
        "dataset_type": "text_embeds",
        "type": "local",
        "cache_dir": "cache/text_embeds",
    }


def test_clips_are_pyav_encoded_videos_of_several_sizes_and_lengths_plus_bad_ones(demo_dir, tmp_path):
    from hf_assets.data.video_header import UnreadableVideo, read_header

    table = pq.read_table(next((demo_dir / "clips" / "data").glob("*.parquet")))
    assert {"video", "caption", "fps", "frame_count"} <= set(table.column_names)
    headers, reasons = [], []
    for row in table.to_pylist():
        try:
            headers.append(read_header(row["video"]["bytes"]))
        except UnreadableVideo as exc:
            reasons.append(exc.reason)
    assert len({(h.width, h.height) for h in headers}) >= 4 and len({h.frames for h in headers}) >= 5
    assert {h.codec for h in headers} == {"h264", "mpeg4"}
    assert sorted(reasons) == ["unreadable_video", "unreadable_video", "unsupported_codec"]
    entry = json.loads((demo_dir / "dataloader.json").read_text())
    clips = next(e for e in entry if e["id"] == "clips")
    assert clips["dataset_type"] == "video" and clips["video"]["min_frames"] == 9


def test_the_project_config_loader_accepts_it(demo_dir):
    from hf_assets.config.loader import load_config

    config = load_config(demo_dir / "dataloader.json")
    assert config.backend_ids == [
        "photos",
        "grids",
        "local-folder",
        "local-edges",
        "local-folder_conditioning_canny",
        "sks-photos",
        "clips",
    ]
    assert config.conditioning_of("local-folder") == ("local-edges", "local-folder_conditioning_canny")
    bundled = load_config(DEMO_CONFIG)  # examples/dataloader.json, which `make demo` and `make ui` load
    assert bundled.backend_ids == config.backend_ids and not bundled.warnings
    assert bundled.conditioning_of("local-folder") == config.conditioning_of("local-folder")
    canny, bundled_canny = (c.backend("local-folder_conditioning_canny").conditioning for c in (config, bundled))
    assert canny.generator == bundled_canny.generator and canny.type == bundled_canny.type == "controlnet"
    assert not config.warnings
    assert config.backend("photos").dataset_name == str(demo_dir / "photos")
    assert config.text_embeds_dir == demo_dir / "cache" / "text_embeds"


def test_rebuild_is_skipped_unless_forced_and_keeps_caches(demo_dir, tmp_path, monkeypatch):
    demo_dir = Path(shutil.copytree(demo_dir, tmp_path / "demo"))  # leave the shared build intact
    config = demo_dir / "dataloader.json"
    shard = demo_dir / "photos" / "data" / "train-00000-of-00002.parquet"
    before = shard.stat().st_mtime_ns
    assert demo.build_demo_data(demo_dir) == config
    assert shard.stat().st_mtime_ns == before

    written = []
    for name in ("write_photos", "write_grids", "write_local_images"):  # a forced rebuild, minus the slow part
        monkeypatch.setattr(demo, name, lambda out, name=name: (written.append(name), out.mkdir()))
    keep = demo_dir / "cache" / "photos" / "keep.txt"
    keep.parent.mkdir(parents=True, exist_ok=True)
    keep.write_text("cached")
    assert demo.build_demo_data(demo_dir, force=True) == config
    assert written == ["write_photos", "write_grids", "write_local_images"]
    assert not shard.exists()  # the old data was replaced ...
    assert keep.read_text() == "cached"  # ... and the cache left alone
    assert (demo_dir / demo.MARKER).read_text().strip() == demo.GENERATOR_VERSION


def test_rebuild_happens_when_the_marker_is_missing_or_stale(tmp_path, monkeypatch):
    calls = []
    for name in ("write_photos", "write_grids", "write_local_images"):
        monkeypatch.setattr(demo, name, lambda out, name=name: (calls.append(name), out.mkdir()))
    demo.build_demo_data(tmp_path)
    demo.build_demo_data(tmp_path)
    assert len(calls) == 3
    (tmp_path / demo.MARKER).write_text("0\n")
    demo.build_demo_data(tmp_path)
    assert len(calls) == 6


def test_generation_is_deterministic(tmp_path):
    """Every generator and encoder (JPEG, PNG, WebP, EXIF) gives the same bytes twice."""
    demo.write_local_images(tmp_path / "a")
    demo.write_local_images(tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert demo.photo_plan(demo.np.random.default_rng(1)) == demo.photo_plan(demo.np.random.default_rng(1))


@pytest.mark.parametrize("with_size_columns", [True, False])
def test_bench_dataset_loads_with_an_image_feature(tmp_path, with_size_columns):
    out = build_bench_dataset(
        tmp_path / "bench", rows=5000, with_size_columns=with_size_columns, shards=3, row_group_size=1000
    )
    assert len(list((out / "data").glob("train-*-of-00003.parquet"))) == 3
    ds = _load(out, tmp_path / "hf_cache")
    assert ds.num_rows == 5000
    assert isinstance(ds.features["image"], datasets.Image)
    assert ("width" in ds.features) is with_size_columns
    raw = ds.cast_column("image", datasets.Image(decode=False))
    sample = raw.select(range(0, 5000, 97))
    blobs = [row["image"]["bytes"] for row in sample]
    assert len(set(blobs)) == len(blobs)  # every row's bytes are distinct
    assert 800 <= sum(map(len, blobs)) / len(blobs) <= 1200
    for row in sample:
        img = _open(row["image"]["bytes"])
        assert img.format == "JPEG"
        if with_size_columns:  # declared size keeps the JPEG's aspect ratio, scaled up
            assert row["width"] * img.size[1] == row["height"] * img.size[0]
            assert row["width"] >= img.size[0]
    assert {r["collection"] for r in raw.select_columns(["collection"])} == {
        "photo",
        "artwork",
        "diagram",
        "screenshot",
    }
