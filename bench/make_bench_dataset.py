"""Write a large Hub-style Parquet image dataset fast: `python -m bench.make_bench_dataset [--rows N] [--out DIR]`.

Every row holds real, decodable JPEG bytes. About 200 distinct small JPEGs (varied sizes and aspect
ratios) are encoded once and reused cyclically; each row's copy gets a JPEG comment segment carrying its
row number (plus padding to reach `image_bytes_per_row`), so every row's bytes are distinct, as in a real
dataset, and Parquet cannot dictionary-encode the column away.

The optional `width`/`height` columns declare a size with exactly the aspect ratio of the row's JPEG,
scaled up by a per-row factor (so bucketing has work and most rows pass a size floor); the JPEG header
itself holds the small stored size. Without size columns, a reader must take sizes from the headers.

Columns: image (datasets Image feature), width, height (int32, optional), caption (string, ~2% empty),
metadata (struct: caption (sometimes null), source), quality_assessment (struct of float32; ~1% null),
collection (photo / artwork / diagram / screenshot). The schema carries the `huggingface` metadata that
`datasets` reads, so `load_dataset(out_dir)` sees `image` as an Image feature.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from examples import demo_images

DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "bench_dataset"
TEMPLATES = 200
COLLECTIONS = ["photo", "artwork", "diagram", "screenshot"]
ADJECTIVES = [
    "a bright",
    "a dark",
    "a quiet",
    "a vivid",
    "an old",
    "a misty",
    "a colourful",
    "a minimalist",
    "a detailed",
    "a blurry",
    "a sunny",
    "a snowy",
    "a neon",
    "a faded",
    "a sharp",
    "a dreamy",
]
NOUNS = [
    "street",
    "portrait",
    "forest",
    "harbour",
    "kitchen",
    "mountain",
    "city skyline",
    "cat",
    "dog",
    "bicycle",
    "garden",
    "desert",
    "library",
    "train station",
    "lighthouse",
    "market",
    "bridge",
    "river",
]
STYLES = ["photograph", "oil painting", "watercolour", "sketch", "3d render", "film still", "poster", "diagram"]
SOURCES = ["crawl-2023", "crawl-2024", "curated", "synthetic"]
ASPECTS = [1 / 3, 0.5, 9 / 16, 2 / 3, 0.75, 0.8, 1.0, 1.0, 1.25, 4 / 3, 1.5, 16 / 9, 2.0, 3.0]


def bench_features(with_size_columns: bool = True):
    """The `datasets.Features` of the bench dataset (imported lazily: it costs about a second)."""
    from datasets import Features, Value
    from datasets import Image as ImageFeature

    cols = {"image": ImageFeature()}
    if with_size_columns:
        cols |= {"width": Value("int32"), "height": Value("int32")}
    cols |= {
        "caption": Value("string"),
        "metadata": {"caption": Value("string"), "source": Value("string")},
        "quality_assessment": {
            "clip_score": Value("float32"),
            "aesthetic_score": Value("float32"),
            "technical_quality": Value("float32"),
        },
        "collection": Value("string"),
    }
    return Features(cols)


def _small_jpeg(rng: np.random.Generator, width: int, height: int, max_bytes: int) -> bytes:
    """A real JPEG of one of the shared generator's abstract pictures, at the best quality that fits max_bytes."""
    picture = demo_images.abstract(rng, width, height)
    for quality in (80, 65, 50, 35, 20, 10):
        data = demo_images.encode(picture, "JPEG", quality=quality)
        if len(data) <= max_bytes:
            break
    return data


def _with_comment(rng: np.random.Generator, jpeg: bytes, total: int) -> tuple[bytes, int]:
    """`jpeg` with a COM segment after its APP0 header, padded so the result is `total` bytes long.

    The padding is random (as incompressible as JPEG data, so file sizes stay realistic). Returns the
    bytes and the offset of the COM payload (where the row number goes).
    """
    pos = 2
    if jpeg[2:4] == b"\xff\xe0":  # keep JFIF's APP0 first
        pos = 4 + int.from_bytes(jpeg[4:6], "big")
    payload = max(8, total - len(jpeg) - 4)
    filler = rng.integers(0, 256, payload, dtype=np.uint8).tobytes()
    segment = b"\xff\xfe" + (payload + 2).to_bytes(2, "big") + filler
    return jpeg[:pos] + segment + jpeg[pos:], pos + 4


def _compression(schema: pa.Schema, stored_images: bool) -> str | dict[str, str]:
    """Snappy for every column; with stored_images, none for the image bytes (they hold as many bytes as they say)."""
    if not stored_images:
        return "snappy"
    leaves = []
    for field in schema:
        is_struct = pa.types.is_struct(field.type)
        leaves += [f"{field.name}.{child.name}" for child in field.type] if is_struct else [field.name]
    return {leaf: "none" if leaf == "image.bytes" else "snappy" for leaf in leaves}


class _ImageTemplates:
    """The distinct JPEGs, laid out so any run of consecutive rows is one slice of a tiled buffer."""

    def __init__(self, rng: np.random.Generator, image_bytes_per_row: int, max_rows: int):
        sizes, blobs, payload_at = [], [], []
        for k in range(TEMPLATES):
            aspect = ASPECTS[k % len(ASPECTS)]
            short = int(rng.integers(16, 48))
            w, h = (round(short * aspect), short) if aspect >= 1 else (short, round(short / aspect))
            target = max(64, int(image_bytes_per_row * rng.uniform(0.8, 1.2)))
            data, at = _with_comment(rng, _small_jpeg(rng, w, h, max(64, target - 16)), target)
            sizes.append((w, h))
            blobs.append(data)
            payload_at.append(at)
        self.sizes = np.array(sizes, dtype=np.int32)
        self.lengths = np.array([len(b) for b in blobs], dtype=np.int64)
        self.payload_at = np.array(payload_at, dtype=np.int64)
        self.block_offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        block = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        self.tiled = np.tile(block, max_rows // TEMPLATES + 2)

    def chunk(self, start: int, n: int) -> pa.Array:
        """The binary image bytes of rows start .. start+n-1 (row r uses template r % TEMPLATES)."""
        k = (start + np.arange(n)) % TEMPLATES
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(self.lengths[k], out=offsets[1:])
        first = self.block_offsets[start % TEMPLATES]
        data = self.tiled[first : first + offsets[-1]].copy()
        where = offsets[:-1] + self.payload_at[k]
        ids = np.arange(start, start + n, dtype=np.uint64)
        for j in range(8):  # the row number, little-endian, in the COM payload: every row's bytes differ
            data[where + j] = ((ids >> np.uint64(8 * j)) & np.uint64(0xFF)).astype(np.uint8)
        return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)])


def _table(
    schema: pa.Schema, templates: _ImageTemplates, start: int, n: int, rng: np.random.Generator, with_size_columns: bool
) -> pa.Table:
    k = (start + np.arange(n)) % TEMPLATES
    ids = pa.array(np.arange(start, start + n))
    image = pa.StructArray.from_arrays(
        [templates.chunk(start, n), pa.nulls(n, pa.string())], fields=list(schema.field("image").type)
    )
    take = lambda words, size: pc.take(pa.array(words), pa.array(rng.integers(0, len(words), size)))  # noqa: E731
    number = pc.binary_join_element_wise("#", pc.cast(ids, pa.string()), "")  # unique captions, like real data
    caption = pc.binary_join_element_wise(take(ADJECTIVES, n), take(NOUNS, n), "as a", take(STYLES, n), number, " ")
    caption = pc.if_else(pa.array(rng.random(n) < 0.02), pa.scalar(""), caption)
    meta_caption = pc.binary_join_element_wise(take(NOUNS, n), take(STYLES, n), ", ")
    meta_caption = pc.if_else(pa.array(rng.random(n) < 0.1), pa.scalar(None, pa.string()), meta_caption)
    metadata = pa.StructArray.from_arrays([meta_caption, take(SOURCES, n)], fields=list(schema.field("metadata").type))
    quality = pa.StructArray.from_arrays(
        [
            pa.array(rng.uniform(0.15, 0.42, n).astype(np.float32)),
            pa.array(rng.uniform(3.0, 8.0, n).astype(np.float32)),
            pa.array(rng.uniform(0.3, 1.0, n).astype(np.float32)),
        ],
        fields=list(schema.field("quality_assessment").type),
        mask=pa.array(rng.random(n) < 0.01),
    )
    columns = {"image": image}
    if with_size_columns:
        scale = rng.integers(8, 41, n).astype(np.int32)  # declared size: the JPEG's aspect, scaled up
        columns["width"] = pa.array(templates.sizes[k, 0] * scale)
        columns["height"] = pa.array(templates.sizes[k, 1] * scale)
    columns |= {
        "caption": caption,
        "metadata": metadata,
        "quality_assessment": quality,
        "collection": take(COLLECTIONS, n),
    }
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def build_bench_dataset(
    out_dir: Path | str = DEFAULT_OUT,
    rows: int = 1_000_000,
    with_size_columns: bool = True,
    image_bytes_per_row: int = 1000,
    shards: int = 8,
    row_group_size: int = 10_000,
    seed: int = 0,
    stored_images: bool = False,
) -> Path:
    """Write `rows` rows as `data/train-0000k-of-0000n.parquet` plus a dataset card; returns `out_dir`.

    With `stored_images` the image bytes are not compressed again (as real JPEG bytes would not shrink): the file
    holds about `image_bytes_per_row` a row, although the cyclically reused templates would compress."""
    out = Path(out_dir).expanduser().resolve()
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for old in data_dir.glob("train-*.parquet"):
        old.unlink()
    shards = max(1, min(shards, rows))
    features = bench_features(with_size_columns)
    schema = features.arrow_schema  # carries b"huggingface": {"info": {"features": ...}}
    rng = np.random.default_rng(seed)
    templates = _ImageTemplates(rng, image_bytes_per_row, row_group_size)
    bounds = np.linspace(0, rows, shards + 1).astype(np.int64)
    for s in range(shards):
        path = data_dir / f"train-{s:05d}-of-{shards:05d}.parquet"
        with pq.ParquetWriter(
            path,
            schema,
            compression=_compression(schema, stored_images),
            use_dictionary=["collection", "metadata.source"],
            write_statistics=["width", "height"] if with_size_columns else False,
        ) as writer:
            for start in range(int(bounds[s]), int(bounds[s + 1]), row_group_size):
                n = min(row_group_size, int(bounds[s + 1]) - start)
                writer.write_table(
                    _table(schema, templates, start, n, np.random.default_rng([seed, start]), with_size_columns)
                )
    _write_card(out, features, rows, sum(p.stat().st_size for p in data_dir.glob("train-*.parquet")))
    return out


def _write_card(out: Path, features, rows: int, download_size: int) -> None:
    card = {
        "pretty_name": "hf_assets benchmark dataset",
        "license": "other",
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
        "dataset_info": {"features": features._to_yaml_list(), "download_size": download_size},
    }
    (out / "README.md").write_text(
        "---\n" + yaml.safe_dump(card, sort_keys=False) + "---\n\n# hf_assets benchmark dataset\n\n"
        f"{rows} synthetic rows written by `python -m bench.make_bench_dataset`. Image bytes are {TEMPLATES} small "
        "real JPEGs reused cyclically, each copy made unique by a comment segment holding its row number.\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument(
        "--no-size-columns", action="store_true", help="omit width/height: sizes must come from headers"
    )
    parser.add_argument("--image-bytes", type=int, default=1000, help="approximate image bytes per row")
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = build_bench_dataset(args.out, args.rows, not args.no_size_columns, args.image_bytes, args.shards)
    size = sum(p.stat().st_size for p in (out / "data").glob("*.parquet"))
    print(f"wrote {args.rows} rows ({size / 1e6:.0f} MB) to {out} in {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
