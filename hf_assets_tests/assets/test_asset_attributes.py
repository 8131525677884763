"""What every asset shows in the UI beyond its values: owners, a link to its source, a code version that means code
and settings (not a run id), described columns, sizes people read, and paths as paths."""

import re
from pathlib import Path

import dagster as dg
import pytest

from hf_assets.assets.asset_attributes import source_digest
from hf_assets.assets.metadata import human_size
from hf_assets.definitions import build_definitions
from hf_assets_tests.conftest import write_config

ASSETS = ["raw_split", "filtered_index", "aspect_buckets", "bucket_previews", "vae_latents", "text_embeds"]


def specs(defs) -> dict[str, dg.AssetSpec]:
    return {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}


@pytest.fixture
def config(tmp_path, hub_dataset, photos_entry) -> Path:
    return write_config(tmp_path / "dataloader.json", [photos_entry])


def test_every_asset_has_owners_and_a_code_reference_to_its_function(config, monkeypatch):
    monkeypatch.delenv("HF_ASSETS_OWNERS", raising=False)
    found = specs(build_definitions(config))
    assert sorted(found) == sorted(ASSETS)
    for name, spec in found.items():
        assert spec.owners == ["team:hf_assets"]
        (reference,) = spec.metadata["dagster/code_references"].code_references
        lines = Path(reference.file_path).read_text().splitlines()
        near = "\n".join(lines[reference.line_number - 1 : reference.line_number + 15])  # decorators, then def
        assert Path(reference.file_path).parent.name == "assets" and f"def {name}(" in near, (name, near)
    monkeypatch.setenv("HF_ASSETS_OWNERS", "team:ml-data, ana@example.com")
    assert specs(build_definitions(config))["vae_latents"].owners == ["team:ml-data", "ana@example.com"]
    monkeypatch.setenv("HF_ASSETS_OWNERS", "ana")
    with pytest.raises(
        ValueError, match="HF_ASSETS_OWNERS='ana': give comma-separated e-mail addresses or team:<name>"
    ):
        build_definitions(config)


def test_the_code_version_follows_the_settings_not_the_run(config, photos_entry, monkeypatch):
    first = {k: s.code_version for k, s in specs(build_definitions(config)).items()}
    assert all(re.fullmatch(r"[0-9a-f]{16}", v) for v in first.values())
    assert {k: s.code_version for k, s in specs(build_definitions(config)).items()} == first  # loaded again
    write_config(config, [{**photos_entry, "resolution": 512}])  # one setting of the backend
    resized = {k: s.code_version for k, s in specs(build_definitions(config)).items()}
    assert all(resized[k] != first[k] for k in ASSETS)
    monkeypatch.setenv("HF_ASSETS_LATENT_DTYPE", "fp32")  # an encoder setting: the encoders' versions only
    dtype = {k: s.code_version for k, s in specs(build_definitions(config)).items()}
    assert {k for k in ASSETS if dtype[k] != resized[k]} == {"vae_latents", "text_embeds"}


def test_the_code_version_follows_the_source(tmp_path):
    module = tmp_path / "step.py"
    module.write_text("def step():\n    return 1\n")
    before = source_digest((str(module),))
    source_digest.cache_clear()
    module.write_text("def step():\n    return 2\n")
    assert source_digest((str(module),)) != before


def test_a_scan_records_the_code_version_described_columns_sizes_and_paths(config, tmp_path):
    defs = build_definitions(config)
    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    result = defs.resolve_job_def("scan_datasets").execute_in_process(partition_key="photos", instance=instance)
    versions = {k: s.code_version for k, s in specs(defs).items()}
    events = {e.asset_key.to_user_string(): e for e in result.get_asset_materialization_events()}
    for name, event in events.items():
        assert event.materialization.tags["dagster/code_version"] == versions[name] != result.run_id
    meta = {name: event.materialization.metadata for name, event in events.items()}

    for name in ("filtered_index", "aspect_buckets"):
        columns = meta[name]["dagster/column_schema"].schema.columns
        assert all(c.description for c in columns), [c.name for c in columns if not c.description]
    raw = {c.name: c.description for c in meta["raw_split"]["dagster/column_schema"].schema.columns}
    assert raw["image"].endswith("(image_column)") and raw["caption"] == "a caption column (caption_column)"

    assert meta["raw_split"]["file_size"].value == human_size(meta["raw_split"]["file_bytes"].value)
    assert re.fullmatch(r"\d+\.\d (kB|MB)", meta["raw_split"]["file_size"].value)
    for name in ("raw_split", "filtered_index", "aspect_buckets"):
        path = meta[name]["path"]
        assert isinstance(path, dg.PathMetadataValue) and Path(path.path).is_file(), name


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (7539048, "7.5 MB"), (3 * 10**9, "3.0 GB"), (None, "unknown")],
)
def test_sizes_read_as_people_read_them(size, shown):
    assert human_size(size) == shown
