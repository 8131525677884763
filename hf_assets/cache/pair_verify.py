"""Whether a conditioning dataset's stored caches complete its source's pairs, read from what both sides stored.

Every source sample that was kept (in the source's bucket table and not dropped by its own encoder) must have, in
each of its conditioning datasets, either a partner with a cached latent, or a recorded reason on both sides:
- no partner: the pairing lists the source sample on its "source" side (`dropped_pairs`, e.g. `no_conditioning_pair`);
- a partner without a latent: the conditioning cache's drop record names the partner (e.g. a corrupt control image).
A strict partner (controlnet, mask, reference_strict) must also still have its source sample's bucket, resize and
crop, and every pair must name a source sample the source's table still holds: otherwise one side was rebuilt
without the other. Columnar: masks over Arrow columns, no Python object per row but the few examples.
"""

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.data.pairing import PARTNER, SOURCE_GEOMETRY

EXAMPLES = 5


@dataclass(frozen=True)
class PairTables:
    """What one conditioning dataset and its source stored, as the check reads it."""

    source: pa.Table  # the source's aspect_buckets (filename and geometry)
    pairs: pa.Table  # the conditioning dataset's aspect_buckets: filename, source_filename, geometry
    unpaired: pa.Table  # its dropped_pairs: side, row, filename, reason
    encoded: pa.Array  # the file names its latent cache holds
    dropped: frozenset[str] = frozenset()  # the file names its encoder dropped, with a reason
    source_dropped: frozenset[str] = frozenset()  # the file names the source's encoder dropped
    strict: bool = True


@dataclass
class PairFinding:
    """The broken pairs of one conditioning dataset: how many of each kind, and a few named rows."""

    conditioning_id: str
    source_id: str
    counts: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    @property
    def passed(self) -> bool:
        return self.count == 0

    def add(self, kind: str, mask: np.ndarray, describe) -> None:
        """Count the rows `mask` selects as `kind`; `describe(i)` names row i (only the first few are named)."""
        rows = np.flatnonzero(mask)
        if len(rows):
            self.counts[kind] = self.counts.get(kind, 0) + len(rows)
            room = EXAMPLES - len(self.examples)
            self.examples += [describe(int(i)) for i in rows[: max(room, 0)]]

    def describe(self) -> str:
        """One line for the check's description: what is broken, and a few of the rows."""
        if self.passed:
            return f"every kept sample of '{self.source_id}' has its partner in '{self.conditioning_id}' or a reason"
        kinds = ", ".join(f"{n} {kind}" for kind, n in self.counts.items())
        return f"'{self.conditioning_id}' (source '{self.source_id}'): {kinds}; e.g. " + "; ".join(self.examples)


def broken_pairs(conditioning_id: str, source_id: str, t: PairTables) -> PairFinding:
    """The source samples of `t` whose pair with `conditioning_id` is neither complete nor recorded as lost."""
    finding = PairFinding(conditioning_id, source_id)
    names = _strings(t.source.column("filename"))
    partners_of = _strings(t.pairs.column(PARTNER))
    pair_names = _strings(t.pairs.column("filename"))
    kept = ~_in(names, t.source_dropped)
    at = _index_in(names, partners_of)
    has_partner = at >= 0
    side = t.unpaired.filter(pc.equal(t.unpaired.column("side"), "source")).column("filename")
    recorded = _in(names, _strings(side))
    finding.add(
        "source samples without a partner or a drop reason",
        kept & ~has_partner & ~recorded,
        lambda i: f"'{names[i].as_py()}' has no partner and dropped_pairs gives no reason",
    )
    partner = pair_names.take(pa.array(np.where(has_partner, at, 0))) if len(pair_names) else names
    encoded = _in(partner, _strings(t.encoded))
    excused = _in(partner, t.dropped)
    finding.add(
        "partners without a latent or a drop reason",
        kept & has_partner & ~encoded & ~excused,
        lambda i: f"'{names[i].as_py()}': its partner '{partner[i].as_py()}' has no latent and no drop reason",
    )
    if t.strict and has_partner.any():
        differs = np.zeros(len(names), bool)
        rows = pa.array(at[has_partner])
        for column in SOURCE_GEOMETRY:
            mine = t.pairs.column(column).take(rows).to_numpy(zero_copy_only=False)
            theirs = t.source.column(column).filter(pa.array(has_partner)).to_numpy(zero_copy_only=False)
            differs[has_partner] |= mine != theirs
        finding.add(
            "strict partners whose bucket or crop differs from their source sample's",
            differs,
            lambda i: f"'{partner[i].as_py()}' is not cropped as its source '{names[i].as_py()}'",
        )
    stale = ~_in(partners_of, names)
    finding.add(
        "pairs naming a source sample the source's table no longer holds",
        stale,
        lambda i: f"'{pair_names[i].as_py()}' pairs with '{partners_of[i].as_py()}', absent from '{source_id}'",
    )
    return finding


def _strings(values) -> pa.Array:
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return values.cast(pa.string())


def _in(values: pa.Array, value_set) -> np.ndarray:
    """Whether each value is in `value_set` (an Arrow array or a set of strings)."""
    if not isinstance(value_set, pa.Array):
        value_set = pa.array(sorted(value_set), pa.string())
    if len(values) == 0:
        return np.zeros(0, bool)
    return pc.is_in(values, value_set=value_set).to_numpy(zero_copy_only=False).astype(bool)


def _index_in(values: pa.Array, value_set: pa.Array) -> np.ndarray:
    """Each value's index in `value_set`, -1 when absent."""
    found = pc.index_in(values, options=pc.SetLookupOptions(value_set=value_set, skip_nulls=True))
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
