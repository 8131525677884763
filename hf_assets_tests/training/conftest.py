"""One materialization of the whole graph for the trainer's-door tests: a tiny SDXL pipeline, generated photos."""

from types import SimpleNamespace

import dagster as dg
import pytest

from hf_assets.definitions import build_definitions
from hf_assets.training import CachedSamples
from hf_assets_tests.conftest import PHOTOS_ENTRY, photo_rows, write_config, write_hub_dataset
from hf_assets_tests.imagegen import truncated_jpeg

TRUNCATED = "3.jpg"  # its header reads (so it is bucketed), its pixels do not (so the encoder drops it)


@pytest.fixture(scope="session")
def prepared_graph(tmp_path_factory, tiny_sdxl):
    """The photos backend of conftest at resolution 96, materialized once: config, DAGSTER_HOME, instance, defs."""
    root = tmp_path_factory.mktemp("training")
    rows = photo_rows()
    rows[3]["image"]["bytes"] = truncated_jpeg(900, 300)
    write_hub_dataset(root / "data" / "photos", rows)
    entry = {**PHOTOS_ENTRY, "resolution": 96, "aspect_bucket_alignment": 32}
    home = root / "home"
    home.mkdir()
    instance = dg.DagsterInstance.local_temp(str(home))
    config = write_config(root / "dataloader.json", [entry])
    with pytest.MonkeyPatch.context() as mp:  # session scope: the function-scoped monkeypatch fixture cannot serve
        mp.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))  # read when the Definitions are built and when the run starts
        defs = build_definitions(config)
        defs.resolve_job_def("prepare_datasets").execute_in_process(partition_key="photos", instance=instance)
    return SimpleNamespace(config=config, home=home, instance=instance, defs=defs, model=tiny_sdxl)


@pytest.fixture(scope="session")
def prepared(prepared_graph):
    """(CachedSamples with seed 7, the aspect_buckets table) loaded once."""
    defs, instance = prepared_graph.defs, prepared_graph.instance
    loaded = CachedSamples.from_definitions(defs, "photos", instance=instance, seed=7)
    buckets = defs.load_asset_value("aspect_buckets", partition_key="photos", instance=instance)
    return loaded, buckets
