"""Build the offline demo data set and its dataloader config: `python -m examples.make_demo_data [--out DIR] [--force]`.

Creates, deterministically and without network access:

- `photos/`: a Hub-style Parquet dataset (two shards under `data/`, a README.md card with `configs:`)
  of ~120 rows: an `image` column (real JPEG/PNG/WebP bytes; crops of a real photograph plus synthetic
  scenes; portrait, landscape, square, 3:1 panoramas, tiny images, EXIF-rotated JPEGs, RGBA PNGs and
  3 corrupt rows), displayed `width`/`height`, `caption`, `tags`, `metadata`, `quality_assessment`,
  `collection` and `description`.
- `grids/`: ~16 horizontal strips of 4 distinct tiles (for `composite_image_config`).
- `local_images/`: ~24 image files with `.txt` caption sidecars (one missing, one empty).
- `clips/`: a Hub-style video dataset: short H.264/MPEG-4 clips of several sizes, lengths and frame rates
  (encoded by PyAV) with captions and `fps`/`frame_count` columns, plus bad clips (undecodable frames, an
  unknown codec, a truncated file, an empty row, one too short).
- `tiny-sdxl-pipeline/`, `tiny-wan-pipeline/`: tiny diffusers pipelines with RANDOM weights (an SDXL layout
  for the image backends, a Wan layout for the clips), each named by its backends'
  `pretrained_model_name_or_path`, so every backend encodes with the right kind of VAE from one config.
- `dataloader.json`: a SimpleTuner-style config using all of them, plus a disabled backend and a
  text-embeds entry.

Re-running is a no-op while the folder carries a marker of this generator version (`--force` rebuilds).
Only the generated entries are replaced; anything else in the folder (e.g. `cache/`) is left alone.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image as PILImage
from PIL import ImageDraw

from examples import demo_images as di

# 4: the tiny pipelines, named per backend by pretrained_model_name_or_path; 5: local-folder's generated canny dataset
GENERATOR_VERSION = "5"
MARKER = ".demo_data_version"
DEFAULT_OUT = Path(__file__).resolve().parent / "demo_data"
CONFIG_NAME = "dataloader.json"
# folder -> the pipeline family built there (hf_assets.testing.tiny_pipelines); image backends name the first
PIPELINES = {"tiny-sdxl-pipeline": "sdxl", "tiny-wan-pipeline": "wan"}
IMAGE_MODEL, VIDEO_MODEL = (f"./{name}" for name in PIPELINES)
GENERATED = ("photos", "grids", "local_images", "local_edges", "clips", *PIPELINES, CONFIG_NAME)

PHOTO_ROWS = 120
PHOTO_SHARDS = 2
GRID_ROWS = 16
LOCAL_FILES = 24

# (generator, collection, how many rows). Corrupt rows are added separately.
PHOTO_MIX = [
    ("photo", "photo", 48),
    ("terrain", "photo", 8),
    ("landscape", "artwork", 12),
    ("abstract", "artwork", 10),
    ("texture", "artwork", 6),
    ("poster", "artwork", 4),
    ("sticker", "artwork", 5),
    ("diagram", "diagram", 12),
    ("screenshot", "screenshot", 12),
]
CORRUPT_ROWS = 3

# Displayed sizes by shape; a row draws one size from its shape.
SHAPES = {
    "portrait": [(768, 1024), (600, 800), (512, 683), (832, 1216), (640, 960)],
    "landscape": [(1024, 768), (800, 600), (1216, 832), (960, 640), (1024, 576)],
    "square": [(512, 512), (640, 640), (768, 768), (1024, 1024)],
    "panorama": [(1536, 512), (1200, 400), (960, 320)],
    "tiny": [(128, 128), (200, 150), (96, 160), (240, 180), (64, 64), (180, 240)],
}

SUBJECTS = {
    "photo": [
        "a portrait of Grace Hopper",
        "a woman in a naval uniform",
        "a vintage portrait photograph",
        "a close-up portrait of a computer scientist",
        "an officer in dress uniform, studio photo",
    ],
    "terrain": [
        "a shaded relief map of a fault line",
        "an aerial view of eroded hills",
        "a topographic render of rolling terrain",
    ],
    "landscape": [
        "a painted mountain landscape at dusk",
        "layered hills under a pastel sky",
        "a minimalist landscape with a low sun",
    ],
    "abstract": [
        "an abstract painting of overlapping shapes",
        "colourful translucent geometric forms",
        "a soft abstract composition",
    ],
    "texture": ["a marbled texture", "a swirling cloud pattern", "a fractal noise texture"],
    "poster": ["a typographic poster", "bold lettering on a gradient", "a poster with one big word"],
    "sticker": ["a sticker cut-out on a transparent background", "a round blob sticker with a pattern"],
    "diagram": ["a flow chart with labelled boxes", "a pipeline diagram with arrows", "a block diagram"],
    "screenshot": ["a screenshot of an application window", "a dark mode app screenshot", "a settings page"],
}
TAGS = {
    "photo": ["portrait", "woman", "uniform", "navy", "vintage", "photograph", "person"],
    "terrain": ["map", "terrain", "relief", "aerial", "elevation"],
    "landscape": ["landscape", "mountains", "sky", "painting", "sunset"],
    "abstract": ["abstract", "shapes", "colourful", "modern art"],
    "texture": ["texture", "pattern", "marble", "noise"],
    "poster": ["typography", "poster", "text", "gradient"],
    "sticker": ["sticker", "transparent", "cutout"],
    "diagram": ["diagram", "flowchart", "boxes", "arrows"],
    "screenshot": ["screenshot", "ui", "window", "app"],
}


def build_demo_data(out_dir: Path = DEFAULT_OUT, force: bool = False) -> Path:
    """Create the demo data under `out_dir` (unless already current) and return the config path."""
    out_dir = Path(out_dir).expanduser().resolve()
    config_path = out_dir / CONFIG_NAME
    marker = out_dir / MARKER
    if not force and marker.is_file() and marker.read_text().strip() == GENERATOR_VERSION and config_path.is_file():
        return config_path
    out_dir.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)  # written last: a crash mid-build leaves no marker, so the next run rebuilds
    for name in GENERATED:
        target = out_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    write_photos(out_dir / "photos")
    write_grids(out_dir / "grids")
    write_local_images(out_dir / "local_images")
    write_local_edges(out_dir / "local_images", out_dir / "local_edges")
    write_clips(out_dir / "clips")
    write_pipelines(out_dir)
    config_path.write_text(json.dumps(dataloader_config(), indent=2) + "\n")
    marker.write_text(GENERATOR_VERSION + "\n")
    return config_path


def write_pipelines(out_dir: Path) -> None:
    """The demo's tiny pipelines with random weights, each marked RANDOM_WEIGHTS (the encoders warn about it)."""
    from hf_assets.testing.tiny_pipelines import build_tiny_pipeline

    for name, family in PIPELINES.items():
        folder = out_dir / name
        if not (folder / "RANDOM_WEIGHTS").is_file():
            build_tiny_pipeline(folder, family)
            (folder / "RANDOM_WEIGHTS").write_text(
                "Tiny models with random weights, built for the demo. Their outputs mean nothing.\n"
            )


# --- photos ---------------------------------------------------------------------------------------


def photo_plan(rng: np.random.Generator) -> list[dict]:
    """One spec per row: generator, collection, displayed size, format, EXIF orientation."""
    kinds = [(k, c) for k, c, n in PHOTO_MIX for _ in range(n)] + [("corrupt", "photo")] * CORRUPT_ROWS
    assert len(kinds) == PHOTO_ROWS, len(kinds)
    order = rng.permutation(len(kinds))
    kinds = [kinds[i] for i in order]
    # Shapes: a fixed number of tiny and panoramic rows; the rest spread over portrait/landscape/square.
    shapes = ["tiny"] * 9 + ["panorama"] * 7
    shapes += [("portrait", "landscape", "square")[i % 3] for i in range(PHOTO_ROWS - len(shapes))]
    shapes = [shapes[i] for i in rng.permutation(PHOTO_ROWS)]
    plan = []
    exif_left = {6: 2, 8: 2, 3: 1}
    for (kind, collection), shape in zip(kinds, shapes):
        options = SHAPES[shape]
        width, height = options[int(rng.integers(len(options)))]
        if kind in ("sticker", "screenshot", "diagram") and shape != "tiny":
            width, height = width * 2 // 3, height * 2 // 3  # keep the PNG encoder quick
        fmt = "JPEG"
        if kind == "sticker":
            fmt = "PNG" if rng.random() < 0.8 else "WEBP"
        elif kind in ("diagram", "screenshot"):
            fmt = "PNG" if rng.random() < 0.7 else "WEBP"
        elif rng.random() < 0.18:
            fmt = "WEBP"
        orientation = None
        if kind == "photo" and fmt == "JPEG" and shape != "tiny":
            for value, left in exif_left.items():
                if left:
                    orientation, exif_left[value] = value, left - 1
                    break
        plan.append(
            dict(kind=kind, collection=collection, width=width, height=height, fmt=fmt, orientation=orientation)
        )
    return plan


def _caption_fields(rng: np.random.Generator, kind: str, i: int) -> dict:
    subject = str(rng.choice(SUBJECTS.get(kind, SUBJECTS["photo"])))
    pool = TAGS.get(kind, TAGS["photo"])
    tags = [str(t) for t in rng.choice(pool, size=int(rng.integers(0, min(5, len(pool)) + 1)), replace=False)]
    caption = subject
    roll = rng.random()
    if roll < 0.08:
        caption = ""
    elif roll < 0.14:
        caption = str(rng.choice(["   ", "\t", " \n "]))
    alt = f"{subject}, row {i}" if rng.random() < 0.8 else None
    if i % 40 == 7:  # a few rows with nothing at all to caption them
        caption, tags, alt = "", [], None
    return dict(
        caption=caption,
        tags=tags,
        metadata={
            "caption": alt,
            "source": "matplotlib sample_data" if kind in ("photo", "terrain") else f"synthetic:{kind}",
        },
        description={
            "short": subject,
            "detailed": None if rng.random() < 0.1 else f"{subject}; {', '.join(tags) or 'no tags'}; demo row {i}.",
        },
    )


def _quality(rng: np.random.Generator) -> dict | None:
    if rng.random() < 0.08:
        return None
    q = {
        "clip_score": round(float(rng.uniform(0.15, 0.42)), 4),
        "aesthetic_score": round(float(rng.uniform(3.0, 8.0)), 3),
        "technical_quality": round(float(rng.uniform(0.3, 1.0)), 3),
    }
    if rng.random() < 0.05:
        q["aesthetic_score"] = None
    return q


def photo_rows() -> list[dict]:
    rng = np.random.default_rng(20240601)
    rows = []
    corrupt_style = 0
    for i, spec in enumerate(photo_plan(rng)):
        row_rng = np.random.default_rng([20240601, i])
        w, h = spec["width"], spec["height"]
        if spec["kind"] == "corrupt":
            data = di.corrupt(row_rng, corrupt_style)
            corrupt_style += 1
            w, h = (640, 480)  # what the (lying) metadata claims
        else:
            img = di.GENERATORS[spec["kind"]](row_rng, w, h)
            stored = di.stored_for_orientation(img, spec["orientation"])
            data = di.encode(
                stored, spec["fmt"], quality=int(row_rng.integers(75, 95)), exif_orientation=spec["orientation"]
            )
        row = {
            "image": {"bytes": data, "path": None},
            "width": w,
            "height": h,
            **_caption_fields(row_rng, spec["kind"], i),
            "quality_assessment": _quality(row_rng),
            "collection": spec["collection"],
        }
        rows.append(row)
    return rows


def photo_features():
    """The `datasets.Features` of `photos/` (datasets is imported lazily: a no-op run stays instant)."""
    from datasets import Features, Image, List, Value

    return Features(
        {
            "image": Image(),
            "width": Value("int32"),
            "height": Value("int32"),
            "caption": Value("string"),
            "tags": List(Value("string")),
            "metadata": {"caption": Value("string"), "source": Value("string")},
            "quality_assessment": {
                "clip_score": Value("float32"),
                "aesthetic_score": Value("float32"),
                "technical_quality": Value("float32"),
            },
            "collection": Value("string"),
            "description": {"short": Value("string"), "detailed": Value("string")},
        }
    )


def grid_features():
    from datasets import Features, Image, List, Value

    return Features({"image": Image(), "caption": Value("string"), "tile_captions": List(Value("string"))})


def write_hub_parquet(out: Path, rows: list[dict], features, shards: int, pretty_name: str, description: str) -> None:
    """Rows as `data/train-0000k-of-0000n.parquet` shards plus a dataset card with `configs:`."""
    import datasets

    (out / "data").mkdir(parents=True, exist_ok=True)
    ds = datasets.Dataset.from_list(rows, features=features)
    files = [out / "data" / f"train-{k:05d}-of-{shards:05d}.parquet" for k in range(shards)]
    bars_were_off = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        for k, path in enumerate(files):
            ds.shard(num_shards=shards, index=k, contiguous=True).to_parquet(str(path))
    finally:
        if not bars_were_off:
            datasets.enable_progress_bars()
    download_size = sum(f.stat().st_size for f in files)
    card = {
        "pretty_name": pretty_name,
        "license": "other",
        "task_categories": ["text-to-image"],
        "size_categories": ["n<1K"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
        "dataset_info": {
            "features": features._to_yaml_list(),
            "splits": [{"name": "train", "num_bytes": ds.data.nbytes, "num_examples": len(rows)}],
            "download_size": download_size,
            "dataset_size": ds.data.nbytes,
        },
    }
    front = yaml.safe_dump(card, sort_keys=False, allow_unicode=True)
    (out / "README.md").write_text(f"---\n{front}---\n\n# {pretty_name}\n\n{description}\n")


def write_photos(out: Path) -> None:
    write_hub_parquet(
        out,
        photo_rows(),
        photo_features(),
        PHOTO_SHARDS,
        "hf_assets demo photos",
        "Offline demo data generated by `python -m examples.make_demo_data`. Photographic rows are crops of "
        "`grace_hopper.jpg` and renders of `jacksboro_fault_dem.npz` from matplotlib's sample data; the rest "
        "is synthetic. `width`/`height` are the displayed size (after EXIF orientation). Three rows hold "
        "corrupt image bytes on purpose.",
    )


# --- grids ----------------------------------------------------------------------------------------

GRID_TILES = [(256, 256), (192, 256), (320, 240), (384, 384), (240, 320), (301, 200)]
GRID_TRAILING_MARGIN = {(301, 200): 3}  # a strip 4*301+3 wide: its tile width is W // 4, not W / 4
TILE_KINDS = ["photo", "landscape", "abstract", "texture", "terrain", "poster", "diagram"]


def _badge(img, index: int):
    d = ImageDraw.Draw(img)
    size = max(12, min(img.size) // 6)
    d.rectangle((0, 0, size * 1.4, size * 1.4), fill=(0, 0, 0))
    d.text((size * 0.7, size * 0.7), str(index + 1), fill=(255, 255, 255), font=di.font(size, bold=True), anchor="mm")
    return img


def grid_rows() -> list[dict]:
    rows = []
    for i in range(GRID_ROWS):
        rng = np.random.default_rng([777, i])
        tw, th = GRID_TILES[i % len(GRID_TILES)]
        kinds = [str(k) for k in rng.choice(TILE_KINDS, size=4, replace=False)]
        strip = PILImage.new("RGB", (tw * 4 + GRID_TRAILING_MARGIN.get((tw, th), 0), th), (255, 255, 255))
        tile_captions = []
        for t, kind in enumerate(kinds):
            strip.paste(_badge(di.GENERATORS[kind](rng, tw, th), t), (t * tw, 0))
            tile_captions.append(str(rng.choice(SUBJECTS[kind])))
        fmt = ("JPEG", "JPEG", "PNG", "WEBP")[i % 4]
        rows.append(
            {
                "image": {"bytes": di.encode(strip, fmt, quality=88), "path": None},
                "caption": tile_captions[1],  # describes tile select_index=1
                "tile_captions": tile_captions,
            }
        )
    return rows


def write_grids(out: Path) -> None:
    write_hub_parquet(
        out,
        grid_rows(),
        grid_features(),
        1,
        "hf_assets demo grids",
        "Horizontal strips of 4 tiles, numbered 1-4 in their corners. `caption` describes tile 2 "
        "(select_index 1); `tile_captions` describes all four. No width/height columns: sizes come from headers.",
    )


# --- video clips -----------------------------------------------------------------------------------

# (width, height, frames, fps, codec): landscape, portrait, square and wide clips, 9 to 33 frames
CLIP_PLAN = [
    (96, 64, 17, 24, "libx264"),
    (64, 96, 21, 30, "libx264"),
    (80, 80, 25, 12, "mpeg4"),
    (128, 72, 33, 24, "libx264"),
    (96, 64, 13, 24, "libx264"),
    (64, 96, 9, 30, "mpeg4"),
    (80, 80, 17, 24, "libx264"),
    (128, 72, 19, 25, "libx264"),
]


def clip_rows() -> list[dict]:
    """Good clips of CLIP_PLAN, then one of each bad kind a video dataset holds."""
    from examples.demo_clips import damaged_payload_clip, encode_clip, truncated_clip, unsupported_codec_clip

    subjects = ["waves rolling", "a drifting gradient", "light sweeping over stripes", "a slow pan"]
    rows = []
    for i, (w, h, n, fps, codec) in enumerate(CLIP_PLAN):
        rows.append(
            {
                "video": {"bytes": encode_clip(w, h, n, fps=fps, seed=i, codec=codec), "path": None},
                "caption": f"{subjects[i % len(subjects)]}, clip {i}",
                "fps": float(fps),
                "frame_count": n,
            }
        )
    bad = [
        (damaged_payload_clip(encode_clip(96, 64, 17, seed=90)), 17, "frames that do not decode"),
        (unsupported_codec_clip(96, 64, 9), 9, "a codec FFmpeg does not know"),
        (truncated_clip(encode_clip(96, 64, 17, seed=91)), 17, "a truncated file"),
        (b"", 0, "an empty row"),
        (encode_clip(96, 64, 5, seed=92), 5, "too short for min_frames"),
    ]
    for data, n, what in bad:
        rows.append(
            {"video": {"bytes": data, "path": None}, "caption": f"a bad clip: {what}", "fps": 24.0, "frame_count": n}
        )
    return rows


def clip_features():
    from datasets import Features, Value, Video

    return Features(
        {"video": Video(), "caption": Value("string"), "fps": Value("float32"), "frame_count": Value("int32")}
    )


def write_clips(out: Path) -> None:
    write_hub_parquet(
        out,
        clip_rows(),
        clip_features(),
        1,
        "hf_assets demo clips",
        "Short generated clips (H.264 and MPEG-4 in MP4) of several sizes, lengths and frame rates, with "
        "`fps` and `frame_count` columns and no size columns (sizes come from the stream headers); the last "
        "five rows are bad clips, each dropped with its own reason.",
    )


# --- local folder ---------------------------------------------------------------------------------


def write_local_images(out: Path) -> None:
    rng = np.random.default_rng(4242)
    (out / "sketches").mkdir(parents=True, exist_ok=True)
    kinds = ["photo", "landscape", "abstract", "texture", "terrain", "poster", "diagram", "sticker"]
    sizes = [(512, 512), (384, 512), (512, 384), (640, 360), (360, 640), (300, 300), (768, 512), (200, 260)]
    for i in range(LOCAL_FILES):
        kind = kinds[i % len(kinds)]
        w, h = sizes[int(rng.integers(len(sizes)))]
        fmt, ext = [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("JPEG", "jpeg")][i % 4]
        if kind == "sticker":
            fmt, ext = "PNG", "png"
        orientation = 6 if i == 3 else None
        folder = out / "sketches" if i >= 18 else out
        stem = f"{kind}_{i:03d}"
        img = di.GENERATORS[kind](rng, w, h)
        data = di.encode(
            di.stored_for_orientation(img, orientation),
            fmt if orientation is None else "JPEG",
            quality=85,
            exif_orientation=orientation,
        )
        if orientation is not None:
            ext = "jpg"
        (folder / f"{stem}.{ext}").write_bytes(data)
        if i == 5:
            continue  # no caption sidecar
        caption = "" if i == 9 else str(rng.choice(SUBJECTS[kind]))
        (folder / f"{stem}.txt").write_text(caption + ("\n" if caption else ""))


def write_local_edges(images: Path, out: Path) -> None:
    """A ControlNet dataset for local_images: each image's canny edges (OpenCV, SimpleTuner's default thresholds
    50/100) at its full, EXIF-oriented size, as a PNG under the same relative path (paired by name, the stem)."""
    from PIL import ImageOps

    from hf_assets.encode.generators import canny_edges

    for path in sorted(p for p in images.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}):
        with PILImage.open(path) as img:
            pixels = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
        target = out / path.relative_to(images).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        PILImage.fromarray(canny_edges(pixels, low_threshold=50, high_threshold=100)).save(target)


# --- config ---------------------------------------------------------------------------------------


def dataloader_config() -> list[dict]:
    return [
        {
            "id": "photos",
            "type": "huggingface",
            "dataset_name": "./photos",
            "split": "train",
            "caption_strategy": "huggingface",
            "metadata_backend": "huggingface",
            "image_column": "image",
            "huggingface": {
                "caption_column": ["caption", "tags"],
                "fallback_caption_column": "metadata.caption",
                "description_column": "description.detailed",
                "width_column": "width",
                "height_column": "height",
                "filter_func": {
                    "quality_column": "quality_assessment",
                    "quality_thresholds": {"clip_score": 0.2, "aesthetic_score": 4.0, "technical_quality": 0.4},
                    "collection": ["photo", "artwork", "diagram"],
                },
            },
            "probability": 0.6,
            "repeats": 0,
            "resolution": 512,
            "resolution_type": "pixel_area",
            "minimum_image_size": 256,
            "crop": False,
            "train_batch_size": 4,
            "cache_dir": "cache/photos",
            "pretrained_model_name_or_path": IMAGE_MODEL,
            "max_drop_rate": 0.6,  # the quality filter drops about half of the photos on purpose
        },
        {
            "id": "grids",
            "type": "huggingface",
            "dataset_name": "./grids",
            "caption_strategy": "huggingface",
            "metadata_backend": "huggingface",
            "huggingface": {
                "caption_column": "caption",
                "composite_image_config": {"enabled": True, "image_count": 4, "select_index": 1},
            },
            "probability": 0.2,
            "resolution": 256,
            "resolution_type": "pixel",
            "crop": True,
            "crop_aspect": "square",
            "crop_style": "center",
            "cache_dir": "cache/grids",
            "pretrained_model_name_or_path": IMAGE_MODEL,
        },
        {
            "id": "local-folder",
            "type": "local",
            "instance_data_dir": "local_images",
            "caption_strategy": "textfile",
            "probability": 0.2,
            "repeats": 1,
            "resolution": 256,
            "resolution_type": "pixel_area",
            "crop": True,
            "crop_aspect": "closest",
            "crop_aspect_buckets": [0.75, 1.0, 1.33],
            "crop_style": "random",
            "aspect_bucket_alignment": 64,
            "cache_dir": "cache/local-folder",
            "pretrained_model_name_or_path": IMAGE_MODEL,
            "conditioning": [CANNY_CONDITIONING],
        },
        LOCAL_EDGES_ENTRY,
        {
            # SimpleTuner's dreambooth shape: every sample captioned by one instance prompt (encoded once), and a
            # stable subset of the photos (max_num_samples keeps the same rows on every run)
            "id": "sks-photos",
            "type": "huggingface",
            "dataset_name": "./photos",
            "caption_strategy": "instanceprompt",
            "instance_prompt": "a photo of sks",
            "metadata_backend": "huggingface",
            "huggingface": {"width_column": "width", "height_column": "height"},
            "max_num_samples": 12,
            "probability": 0.1,
            "resolution": 256,
            "resolution_type": "pixel_area",
            "cache_dir": "cache/sks-photos",
            "pretrained_model_name_or_path": IMAGE_MODEL,
        },
        {
            "id": "photos-hires",
            "type": "huggingface",
            "dataset_name": "./photos",
            "disabled": True,
            "caption_strategy": "huggingface",
            "metadata_backend": "huggingface",
            "caption_column": "caption",
            "resolution": 1024,
            "resolution_type": "pixel_area",
            "cache_dir": "cache/photos-hires",
            "pretrained_model_name_or_path": IMAGE_MODEL,
        },
        CLIPS_ENTRY,
        {"id": "text-embeds", "dataset_type": "text_embeds", "type": "local", "cache_dir": "cache/text_embeds"},
    ]


# SimpleTuner's ControlNet dataset shape: control images in a folder of their own, paired with local-folder's images
# by file name; they take each image's bucket, resize and crop, and its captions.
LOCAL_EDGES_ENTRY = {
    "id": "local-edges",
    "type": "local",
    "dataset_type": "conditioning",
    "conditioning_type": "controlnet",
    "source_dataset_id": "local-folder",
    "instance_data_dir": "local_edges",
    "cache_dir": "cache/local-edges",
}

# SimpleTuner's generated ControlNet dataset: canny edges made from each local-folder crop (partition
# local-folder_conditioning_canny), encoded beside its source; no image file is written (no instance_data_dir).
CANNY_CONDITIONING = {"type": "canny", "conditioning_type": "controlnet", "low_threshold": 50, "high_threshold": 100}

CLIPS_ENTRY = {
    "id": "clips",
    "type": "huggingface",
    "dataset_type": "video",
    "dataset_name": "./clips",
    "caption_strategy": "huggingface",
    "metadata_backend": "huggingface",
    "image_column": "video",
    "huggingface": {"caption_column": "caption", "num_frames_column": "frame_count", "fps_column": "fps"},
    "video": {"num_frames": 13, "min_frames": 9, "max_frames": 64},
    "resolution": 64,
    "resolution_type": "pixel",
    "aspect_bucket_alignment": 16,
    "cache_dir": "cache/clips",
    "pretrained_model_name_or_path": VIDEO_MODEL,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--force", action="store_true", help="rebuild even if the folder is current")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    config = build_demo_data(args.out, force=args.force)
    print(f"demo data ready in {time.perf_counter() - start:.1f}s; config: {config}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
