"""The IO manager stores each value by its type and loads back what was stored: a split as raw_split stored it, a
table as written; an encoder cache is the asset's own files; any other value is refused."""

import dagster as dg
import pyarrow as pa
import pytest

from hf_assets.config import parse_config
from hf_assets.data.sources import open_split
from hf_assets.resources.io_manager import HFAssetsIOManager
from hf_assets_tests.conftest import write_config

PARTITIONS = dg.StaticPartitionsDefinition(["photos"])


@pytest.fixture
def manager(tmp_path, hub_dataset, photos_entry):
    entry = {**photos_entry, "split": "train[2:20]"}
    path = write_config(tmp_path / "dataloader.json", [entry])
    return HFAssetsIOManager(config_path=str(path)), parse_config([entry], path).backends[0]


def output(name: str):
    return dg.build_output_context(asset_key=name, partition_key="photos", asset_partitions_def=PARTITIONS)


def load(manager, name: str, dagster_type=None):
    upstream = output(name)
    return manager.load_input(
        dg.build_input_context(
            asset_key=name,
            partition_key="photos",
            asset_partitions_def=PARTITIONS,
            upstream_output=upstream,
            dagster_type=dagster_type,
        )
    )


def test_a_split_loads_as_stored_without_listing_its_source_again(manager, tmp_path):
    io, backend = manager
    split = open_split(backend)
    io.handle_output(output("raw_split"), split)
    columns = ["image", "caption", "width"]
    (tmp_path / "data" / "photos" / "data" / "train-zz-broken.parquet").write_bytes(
        b"not parquet"
    )  # a listing would read it
    with pytest.raises(Exception, match="magic bytes"):
        open_split(backend)

    loaded = load(io, "raw_split")  # no declared type: the stored manifest says it is a split

    assert (loaded.fingerprint, loaded.num_rows) == (split.fingerprint, 18)
    assert loaded.read(columns).equals(split.read(columns))
    assert load(io, "raw_split", dg.PythonObjectDagsterType(type(split))).fingerprint == split.fingerprint


def test_a_table_loads_as_written_and_other_values_are_refused(manager):
    io, _ = manager
    table = pa.table({"filename": ["a.jpg", "b.png"], "width": [640, 320]})
    io.handle_output(output("filtered_index"), table)

    assert load(io, "filtered_index").equals(table)
    with pytest.raises(TypeError, match="filtered_index: cannot store a dict"):
        io.handle_output(output("filtered_index"), {"a": 1})
