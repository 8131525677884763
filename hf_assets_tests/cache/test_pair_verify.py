"""The conditioning pairs' check on tables as the pairing and the encoders store them: a source bucketed for real,
a given dataset paired with it by file name, and latent manifests that lack what a broken run lost."""

import pyarrow as pa
import pyarrow.compute as pc

from hf_assets.cache.pair_verify import PairTables, broken_pairs
from hf_assets.config import parse_config
from hf_assets.data.backend_buckets import bucket_backend
from hf_assets.data.pairing import pair_generated, pair_given

SIZES = [(640, 480), (480, 640), (512, 512), (800, 600), (600, 800), (512, 384)]


def source_table(tmp_path) -> pa.Table:
    config = parse_config(
        [
            {
                "id": "photos",
                "type": "local",
                "instance_data_dir": "photos",
                "resolution": 256,
                "resolution_type": "pixel_area",
                "crop": True,
                "crop_style": "random",
                "crop_aspect": "square",
            }
        ],
        tmp_path / "dataloader.json",
    )
    index = pa.table(
        {
            "row": pa.array(range(len(SIZES)), pa.int64()),
            "filename": [f"{i}.jpg" for i in range(len(SIZES))],
            "width": [w for w, _ in SIZES],
            "height": [h for _, h in SIZES],
            "caption": [f"photo {i}" for i in range(len(SIZES))],
        }
    )
    return bucket_backend(index, config.backend("photos")).table


def given(source: pa.Table, skip: int) -> tuple[pa.Table, pa.Table]:
    """A control dataset with a PNG per source image but `skip`'s, paired by name: its table and dropped_pairs."""
    names = [n for n in source.column("filename").to_pylist() if n != f"{skip}.jpg"]
    widths = dict(zip(source.column("filename").to_pylist(), source.column("width").to_pylist()))
    heights = dict(zip(source.column("filename").to_pylist(), source.column("height").to_pylist()))
    own = pa.table(
        {
            "row": pa.array(range(len(names)), pa.int64()),
            "filename": [n.replace(".jpg", ".png") for n in names],
            "width": [widths[n] // 2 for n in names],
            "height": [heights[n] // 2 for n in names],
        }
    )
    pairing = pair_given(source, own, True, "control")
    sides = ["source"] * pairing.source_dropped.num_rows + ["conditioning"] * pairing.dropped.num_rows
    lost = pa.concat_tables([pairing.source_dropped, pairing.dropped]).add_column(0, "side", pa.array(sides))
    return pairing.table, lost


def tables(source, pairs, lost, encoded=None, **kwargs) -> PairTables:
    names = pairs.column("filename") if encoded is None else pa.array(encoded, pa.string())
    return PairTables(source=source, pairs=pairs, unpaired=lost, encoded=names, **kwargs)


def test_complete_pairs_and_recorded_losses_pass(tmp_path):
    source = source_table(tmp_path)
    pairs, lost = given(source, skip=3)
    finding = broken_pairs("control", "photos", tables(source, pairs, lost))
    assert finding.passed and finding.count == 0, finding.describe()
    assert "every kept sample of 'photos'" in finding.describe()


def test_a_partner_without_its_latent_fails_naming_both_rows(tmp_path):
    source = source_table(tmp_path)
    pairs, lost = given(source, skip=3)
    encoded = [n for n in pairs.column("filename").to_pylist() if n != "4.png"]
    finding = broken_pairs("control", "photos", tables(source, pairs, lost, encoded))
    assert not finding.passed and finding.counts == {"partners without a latent or a drop reason": 1}
    assert finding.examples == ["'4.jpg': its partner '4.png' has no latent and no drop reason"]
    assert "'control' (source 'photos')" in finding.describe() and "4.png" in finding.describe()
    # ... unless the conditioning cache's drop record gives its reason (a corrupt control image)
    assert broken_pairs("control", "photos", tables(source, pairs, lost, encoded, dropped=frozenset({"4.png"}))).passed
    # ... or the source's own encoder dropped the source sample: the pair never trains
    excused = tables(source, pairs, lost, encoded, source_dropped=frozenset({"4.jpg"}))
    assert broken_pairs("control", "photos", excused).passed


def test_a_source_sample_without_a_partner_needs_a_drop_reason(tmp_path):
    source = source_table(tmp_path)
    pairs, lost = given(source, skip=3)
    unrecorded = lost.filter(pc.not_equal(lost.column("filename"), "3.jpg"))
    finding = broken_pairs("control", "photos", tables(source, pairs, unrecorded))
    assert finding.counts == {"source samples without a partner or a drop reason": 1}
    assert finding.examples == ["'3.jpg' has no partner and dropped_pairs gives no reason"]


def test_a_strict_partner_cropped_otherwise_or_a_pair_naming_a_lost_source_sample_fails(tmp_path):
    source = source_table(tmp_path)
    pairs = pair_generated(source, ())
    empty = pa.table({"side": pa.array([], pa.string()), "row": pa.array([], pa.int64()), "filename": [], "reason": []})
    at = pairs.column("filename").to_pylist().index("2.jpg")
    crops = pairs.column("crop_left").to_pylist()
    crops[at] += 8
    moved = pairs.set_column(pairs.column_names.index("crop_left"), "crop_left", pa.array(crops, pa.int64()))
    finding = broken_pairs("photos_conditioning_canny", "photos", tables(source, moved, empty))
    assert finding.counts == {"strict partners whose bucket or crop differs from their source sample's": 1}
    assert finding.examples == ["'2.jpg' is not cropped as its source '2.jpg'"]
    loose = tables(source, moved, empty, strict=False)  # a loose reference keeps its own crop
    assert broken_pairs("photos_conditioning_canny", "photos", loose).passed
    rebuilt = source.filter(pc.not_equal(source.column("filename"), "5.jpg"))  # the source lost a sample since
    finding = broken_pairs("photos_conditioning_canny", "photos", tables(rebuilt, pairs, empty))
    assert finding.counts == {"pairs naming a source sample the source's table no longer holds": 1}
    assert "'5.jpg' pairs with '5.jpg', absent from 'photos'" in finding.examples[0]
