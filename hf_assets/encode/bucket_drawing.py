"""Pictures of a bucket table for people: labelled histograms and a grid of samples as the encoder will see them.

Kept samples go through `encode.images.load_pixels` with the same tile, resize and crop boxes and the same size
check as the latent encoder, so the grid shows exactly the pixels that will be encoded. No Dagster here.
"""

import base64
import io
import textwrap
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

INLINE_LIMIT = 1000  # the Dagster UI shows markdown metadata inline only below this many characters
THUMB = 160


def bucket_labels(table: pa.Table) -> dict[str, str]:
    """bucket -> "aspect · WxH" with its most common target size ("+N" when the bucket holds other sizes too)."""
    if table.num_rows == 0:
        return {}
    grouped = table.group_by(["bucket", "target_width", "target_height"]).aggregate([("bucket", "count")])
    sizes = {(r["bucket"], r["target_width"], r["target_height"]): r["bucket_count"] for r in grouped.to_pylist()}
    return bucket_labels_of(sizes)


def bucket_labels_of(sizes: dict[tuple[str, int, int], int]) -> dict[str, str]:
    """`bucket_labels` from samples counted per (bucket, target width, target height)."""
    options: dict[str, list[tuple[int, int, int]]] = {}
    for (bucket, width, height), count in sizes.items():
        options.setdefault(str(bucket), []).append((count, width, height))
    labels = {}
    for bucket, found in options.items():
        _, width, height = max(found)
        extra = f" +{len(found) - 1}" if len(found) > 1 else ""
        labels[bucket] = f"{bucket} · {width}×{height}{extra}"
    return labels


def histogram_svg(histogram: list[tuple[str, int]], labels: dict[str, str]) -> str:
    """A compact SVG bar chart labelled with each bucket's target size (which implies its aspect) and count."""
    if not histogram:
        return ""
    bar, step, top, height = 30, 44, 12, 56
    peak = max(n for _, n in histogram) or 1
    path, texts = [], []
    for i, (bucket, count) in enumerate(histogram):
        x = 4 + i * step
        h = max(1, round(height * count / peak))
        size = labels.get(bucket, bucket).split(" · ")[-1].split(" +")[0].replace("×", "x")
        path.append(f"M{x} {top + height}v-{h}h{bar}v{h}z")
        texts.append(
            f"<text x='{x}' y='{top + height - h - 2}'>{count}</text><text x='{x}' y='{top + height + 10}'>"
            f"{size}</text>"
        )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{4 + len(histogram) * step}' height='{top + height + 13}' "
        f"font-size='9'><path fill='#4C72B0' d='{''.join(path)}'/>{''.join(texts)}</svg>"
    )


def svg_markdown(svg: str, alt: str) -> str:
    """The SVG as an inline markdown image (base64 data URI)."""
    return f"![{alt}](data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()})"


def png_data_markdown(png: bytes, alt: str) -> str:
    """A PNG as a markdown image with a base64 data URI."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


@dataclass(frozen=True)
class Sample:
    """One tile of the preview grid."""

    title: str
    caption: str
    pixels: np.ndarray | None  # uint8 (H, W, 3); None when there is nothing to show
    crop: tuple[int, int, int, int] | None = None  # a box to draw on `pixels` (the crop inside the resized image)


def pick_kept(table: pa.Table, count: int) -> pa.Table:
    """Up to `count` samples taking each bucket in turn, so the grid shows several shapes."""
    if table.num_rows == 0:
        return table
    buckets = table.column("bucket").to_pylist()
    order: dict[str, list[int]] = {}
    for i, bucket in enumerate(buckets):
        order.setdefault(bucket, []).append(i)
    chosen, depth = [], 0
    while len(chosen) < count and any(depth < len(v) for v in order.values()):
        chosen += [rows[depth] for rows in order.values() if depth < len(rows)][: count - len(chosen)]
        depth += 1
    return table.take(pa.array(chosen, pa.int64()))


def kept_samples(chosen: pa.Table, sources: list, labels: dict[str, str]) -> Iterator[Sample]:
    """For each chosen bucket-table row and its image source: the resized image with its crop box drawn, then the
    exact pixels the encoder gets."""
    from hf_assets.encode.images import load_pixels

    for record, source in zip(chosen.to_pylist(), sources):
        tile = (record["tile_left"], record["tile_top"], record["tile_right"], record["tile_bottom"])
        resize = (record["resize_width"], record["resize_height"])
        left, top = record["crop_left"], record["crop_top"]
        crop = (left, top, left + record["target_width"], top + record["target_height"])
        expected = (record["source_width"], record["source_height"]) if record.get("source_width") else None
        caption = record.get("caption") or ""
        label = labels.get(str(record["bucket"]), str(record["bucket"]))
        try:
            whole = load_pixels(source, tile, resize, (0, 0, *resize), expected_size=expected)
            encoded = load_pixels(source, tile, resize, crop, expected_size=expected)
        except Exception as exc:  # noqa: BLE001 - shown as what the encoder will drop
            yield Sample(f"{record['filename']}: will be dropped", f"{type(exc).__name__}: {exc}", None)
            continue
        yield Sample(f"{record['filename']} resized {resize[0]}×{resize[1]}", "crop box in red", whole, crop)
        yield Sample(f"encoded · bucket {label}", caption, encoded)


def dropped_samples(names: list[str], reasons: list[str], sources: list) -> Iterator[Sample]:
    """Dropped rows with their reason and a thumbnail (an empty tile when the image does not decode)."""
    from hf_assets.encode.image_source import read_source

    for name, reason, source in zip(names, reasons, sources):
        yield Sample(f"{name}: dropped", reason, _thumbnail(read_source(source)))


def _thumbnail(data: bytes | None) -> np.ndarray | None:
    from PIL import Image, ImageOps

    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            img.thumbnail((THUMB, THUMB))
            return np.asarray(img)
    except Exception:  # noqa: BLE001 - an undecodable image is shown as an empty tile
        return None


def preview_grid_png(
    kept: list[Sample], dropped: list[Sample], title: str, columns: int = 4, image_format: str = "png"
) -> bytes:
    """A PNG grid: kept samples (resized with crop box, then as encoded) and dropped rows with their reasons."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    tiles = [("kept", s) for s in kept] + [("dropped", s) for s in dropped]
    rows = max(1, -(-len(tiles) // columns))
    fig = Figure(figsize=(3.2 * columns, 3.4 * rows), dpi=80)
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=12)
    for i, (kind, sample) in enumerate(tiles):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.set_xticks([])
        ax.set_yticks([])
        if sample.pixels is not None:
            ax.imshow(sample.pixels)
            if sample.crop is not None:
                left, top, right, bottom = sample.crop
                ax.add_patch(
                    Rectangle(
                        (left - 0.5, top - 0.5), right - left, bottom - top, fill=False, edgecolor="red", linewidth=2
                    )
                )
        else:
            ax.text(0.5, 0.5, "no picture", ha="center", va="center", transform=ax.transAxes, color="gray")
        color = "#b00020" if kind == "dropped" else "black"
        ax.set_title(textwrap.shorten(sample.title, 44), fontsize=8, color=color)
        ax.set_xlabel("\n".join(textwrap.wrap(sample.caption, 40)[:3]), fontsize=7, color=color)
    if not tiles:
        fig.text(0.5, 0.5, "no samples", ha="center")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # A caption's emoji or script that the bundled font lacks is drawn as a box; the run's log is no place for it.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        fig.tight_layout()
        fig.savefig(buffer, format=image_format, **({"pil_kwargs": {"quality": 80}} if image_format == "jpeg" else {}))
    return buffer.getvalue()


def jpeg_data_markdown(jpeg: bytes, alt: str) -> str:
    """A JPEG as a markdown image with a base64 data URI."""
    return f"![{alt}](data:image/jpeg;base64,{base64.b64encode(jpeg).decode()})"
