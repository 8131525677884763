"""Pair a conditioning dataset with its source dataset, row by row, on Arrow columns.

- A **given** conditioning dataset (its own images) is matched to its source by file name, as SimpleTuner finds a
  conditioning image: the same path relative to the dataset's root (for Hub datasets, the virtual name "{row}.jpg",
  so row i pairs with row i). Where a name has no exact match, the same path without its extension pairs when that
  stem is unique on both sides ("cat.png" with "cat.jpg"); SimpleTuner would miss those.
- A **generated** dataset has one sample per kept source row, named as the source row.
- **Strict** types (controlnet, mask, reference_strict) take the source sample's bucket, target, resize and crop box
  exactly: a given image is resized to the source's resize size and cropped by the source's box, so a trainer can
  stack the two. Its aspect must match the source's (within `ASPECT_TOLERANCE`), or the pair is dropped.
- **Loose** references (reference_loose) keep their own bucket and crop.
- A row without a partner is dropped with its reason on both sides: `no_conditioning_pair` (the source row; the
  detail names the conditioning dataset), `no_source_sample` (the conditioning row) and
  `conditioning_aspect_mismatch` (both).
"""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.data.buckets import BUCKET_COLUMNS
from hf_assets.data.dropped import DROPPED_SCHEMA
from hf_assets.data.lineage import carry

ASPECT_TOLERANCE = 0.02  # relative difference of width/height between a strict pair's images
# The source sample's columns a strict conditioning sample takes: what decides its training pixels and time ids.
SOURCE_GEOMETRY = ("bucket", *BUCKET_COLUMNS)
PARTNER = "source_filename"  # the column naming a conditioning sample's source sample
CAPTION_COLUMNS = ("caption", "captions")
NO_PAIR = "no_conditioning_pair"
NO_SOURCE = "no_source_sample"
ASPECT_MISMATCH = "conditioning_aspect_mismatch"


@dataclass(frozen=True)
class Pairing:
    """A conditioning dataset's paired table and what each side lost."""

    table: pa.Table  # the conditioning samples, each with its partner's file name in `source_filename`
    source_dropped: pa.Table  # row, filename, reason: source samples without a partner
    dropped: pa.Table  # row, filename, reason: conditioning samples without a source sample

    @property
    def source_keep(self) -> pa.Array:
        """The file names of the source samples that kept a partner."""
        return self.table.column(PARTNER).combine_chunks()


def match_names(source_names: pa.Array, names: pa.Array) -> np.ndarray:
    """For each name, the index of its source name (exact, else the unique same stem), -1 when none."""
    source_names, names = _flat(source_names).cast(pa.string()), _flat(names).cast(pa.string())
    found = _index_in(names, source_names)
    taken = np.zeros(len(source_names), bool)
    taken[found[found >= 0]] = True
    loose = found < 0
    if loose.any() and not taken.all():
        by_stem = _index_in(_unique_stems(names, loose), _unique_stems(source_names, ~taken))
        found[loose] = by_stem[loose]
    return found


def pair_given(
    source: pa.Table,
    conditioning: pa.Table,
    strict: bool,
    conditioning_id: str,
    captions: str | tuple[str, ...] = "own",
) -> Pairing:
    """Pair a given conditioning table (its filtered_index when strict, its aspect_buckets when loose) with the
    source's aspect_buckets. `captions`: "own" (the conditioning dataset's), "source", or fixed captions."""
    index = match_names(source.column("filename"), conditioning.column("filename"))
    paired = index >= 0
    mismatch = np.zeros(len(index), bool)
    if strict and paired.any():
        own = _aspect(conditioning)[paired]
        theirs = _aspect(source)[index[paired]]
        mismatch[np.flatnonzero(paired)] = np.abs(own - theirs) > ASPECT_TOLERANCE * theirs
    keep = paired & ~mismatch
    kept = conditioning.filter(pa.array(keep))
    partners = source.take(pa.array(index[keep]))
    if strict:
        for name in SOURCE_GEOMETRY:
            kept = _put(kept, name, partners.column(name))
    kept = _put(kept, PARTNER, partners.column("filename"))
    kept = _with_captions(kept, partners, captions)
    reasons = np.where(mismatch, ASPECT_MISMATCH, NO_SOURCE)
    dropped = _dropped(conditioning.filter(pa.array(~keep)), reasons[~keep])
    lost = np.ones(source.num_rows, bool)
    lost[index[keep]] = False
    source_reasons = np.full(source.num_rows, f"{NO_PAIR}: {conditioning_id}", dtype=object)
    source_reasons[index[mismatch]] = f"{ASPECT_MISMATCH}: {conditioning_id}"
    source_dropped = _dropped(source.filter(pa.array(lost)), source_reasons[lost])
    return Pairing(carry(conditioning, kept), source_dropped, dropped)


def pair_generated(source: pa.Table, captions: str | tuple[str, ...] = "source") -> pa.Table:
    """The table of a dataset generated from `source` (its aspect_buckets): one sample per source sample, same name,
    geometry and split rows, with `captions` ("source" or fixed captions; () for none)."""
    table = _put(source, PARTNER, source.column("filename"))
    return carry(source, _with_captions(table, source, captions))


def _with_captions(table: pa.Table, partners: pa.Table, captions: str | tuple[str, ...]) -> pa.Table:
    """`table` with the caption columns its policy gives: its own, its partners', or the same fixed list for all."""
    if captions == "own":
        return table
    if captions == "source":
        for name in CAPTION_COLUMNS:
            if name in partners.column_names:
                table = _put(table, name, partners.column(name))
        return table
    fixed = list(captions)
    table = _put(table, "caption", pa.array([fixed[0] if fixed else None] * table.num_rows, pa.string()))
    return _put(table, "captions", pa.array([fixed] * table.num_rows, pa.list_(pa.string())))


def _put(table: pa.Table, name: str, values) -> pa.Table:
    """`table` with column `name` set to `values` (replaced where it exists)."""
    values = _flat(values)
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), pa.field(name, values.type), values)
    return table.append_column(pa.field(name, values.type), values)


def _aspect(table: pa.Table) -> np.ndarray:
    """width / height of each sample's image (after EXIF and the composite split)."""
    width = table.column("width").to_numpy(zero_copy_only=False).astype(np.float64)
    return width / table.column("height").to_numpy(zero_copy_only=False).astype(np.float64)


def _dropped(table: pa.Table, reasons) -> pa.Table:
    """Drop rows (row, filename, reason) of `table`'s rows."""
    return pa.table(
        {
            "row": table.column("row").cast(pa.int64()),
            "filename": table.column("filename").cast(pa.string()),
            "reason": pa.array(list(reasons), pa.string()),
        },
        schema=DROPPED_SCHEMA,
    )


def _unique_stems(names: pa.Array, eligible: np.ndarray) -> pa.Array:
    """Each name without its extension; null where the stem is not unique among `names` or the name not eligible."""
    stems = pc.replace_substring_regex(names, r"\.[^./]*$", "")
    counts = pc.value_counts(stems)
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    unique = pc.and_(pc.invert(pc.is_in(stems, value_set=repeated)), pa.array(eligible))
    return pc.if_else(unique, stems, pa.scalar(None, pa.string()))


def _index_in(values: pa.Array, value_set: pa.Array) -> np.ndarray:
    """Each value's index in `value_set`, -1 when absent or null (nulls never match)."""
    found = pc.index_in(values, options=pc.SetLookupOptions(value_set=value_set, skip_nulls=True))
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _flat(values) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
