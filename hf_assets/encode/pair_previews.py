"""Preview tiles of a conditioning dataset: each source sample as the encoder gets it, beside its conditioning image
(generated from those very pixels, or the given image cropped by the source's box)."""

from collections.abc import Iterator

import pyarrow as pa

from hf_assets.data.pairing import PARTNER
from hf_assets.encode.bucket_drawing import Sample, bucket_labels, pick_kept
from hf_assets.encode.conditioning_pixels import ConditioningPixels


def paired_samples(
    pairs: pa.Table,
    source: pa.Table,
    source_split,
    source_column: str,
    pixels: ConditioningPixels,
    split=None,
    column: str | None = None,
    count: int = 4,
) -> Iterator[Sample]:
    """Two tiles per pair, for up to `count` pairs: the source sample's encoded pixels, then its partner's.

    `pairs` is the conditioning dataset's bucket table, `source` the source's; a given dataset's images come from
    `split` (its own), a generated dataset's from the source's pixels through `pixels`.
    """
    from hf_assets.encode.image_source import iter_images

    chosen = pick_kept(pairs, count)
    if chosen.num_rows == 0:
        return
    by_name = {name: i for i, name in enumerate(source.column("filename").to_pylist())}
    partners = [by_name[name] for name in chosen.column(PARTNER).to_pylist()]
    source_rows = source.take(pa.array(partners, pa.int64()))
    labels = bucket_labels(pairs)
    theirs = iter_images(source_split, source_column, source_rows.column("row").to_numpy())
    mine = iter_images(split, column, chosen.column("row").to_numpy()) if split is not None else None
    for index, (record, partner) in enumerate(zip(chosen.to_pylist(), source_rows.to_pylist())):
        original = next(theirs)
        own = next(mine) if mine is not None else None
        label = labels.get(str(record["bucket"]), str(record["bucket"]))
        try:
            source_pixels = _encoded(original, partner)
            if own is not None:
                conditioning = _encoded(own, record)
                note = "given, cropped by the source's box" if pixels.conditioning_type != "reference_loose" else ""
            elif pixels.batched:
                conditioning, note = None, "depth maps are drawn when vae_latents runs (it loads the model)"
            else:
                conditioning, note = pixels.sample(record["filename"], source_pixels), "generated from these pixels"
        except Exception as exc:  # noqa: BLE001 - shown as what the encoder will drop
            yield Sample(f"{record['filename']}: will be dropped", f"{type(exc).__name__}: {exc}", None)
            continue
        yield Sample(f"source {partner['filename']} · bucket {label}", partner.get("caption") or "", source_pixels)
        caption = record.get("caption") or ""
        yield Sample(f"{pixels.conditioning_type} {record['filename']}", note or caption, conditioning)
        if index + 1 >= count:
            return


def _encoded(source, record: dict):
    """The pixels the encoder gets for a bucket-table row (its tile, resize and crop box)."""
    from hf_assets.encode.images import load_pixels

    tile = (record["tile_left"], record["tile_top"], record["tile_right"], record["tile_bottom"])
    resize = (record["resize_width"], record["resize_height"])
    crop = (
        record["crop_left"],
        record["crop_top"],
        record["crop_left"] + record["target_width"],
        record["crop_top"] + record["target_height"],
    )
    expected = (record["source_width"], record["source_height"]) if record.get("source_width") else None
    return load_pixels(source, tile, resize, crop, expected_size=expected)
