"""What a run tells its user: progress numbers in the metadata, one unit per count, "none" for no drops, and
one warning per problem (a corrupt image an earlier run reported is not warned about again)."""

import dagster as dg
import pytest

from hf_assets.definitions import build_definitions
from hf_assets_tests.assets.test_encoder_graph import metadata, run
from hf_assets_tests.conftest import photo_rows, write_config, write_hub_dataset
from hf_assets_tests.imagegen import truncated_jpeg


@pytest.fixture
def graph(tmp_path, photos_entry, tiny_sdxl, monkeypatch):
    rows = photo_rows(12)
    rows[3]["image"]["bytes"] = truncated_jpeg(640, 480)  # its header scans, its pixels do not decode
    write_hub_dataset(tmp_path / "data" / "photos", rows)
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    entries = [{**photos_entry, "resolution": 96, "aspect_bucket_alignment": 32}]
    defs = build_definitions(write_config(tmp_path / "dataloader.json", entries))
    (tmp_path / "home").mkdir()
    return defs, dg.DagsterInstance.local_temp(str(tmp_path / "home"))


def warning_messages(instance, run_id) -> list[str]:
    records = instance.all_logs(run_id)
    return [r.user_message for r in records if r.level >= 30 and r.dagster_event is None]


def test_metadata_carries_progress_numbers_consistent_units_and_drops(graph):
    defs, instance = graph
    result = run(defs, instance)
    scanned = metadata(result, "filtered_index")
    assert scanned["scan_images"] == 12 and scanned["scan_images_per_s"] > 0
    latents = metadata(result, "vae_latents")
    assert latents["encode_images"] == latents["encoded"] > 0
    assert latents["hash_images"] == latents["encoded"] + latents["dropped"]
    assert latents["commit_entries"] == latents["encoded"]
    assert latents["dropped"] == 1
    texts = metadata(result, "text_embeds")
    assert texts["encoded"] + texts["reused"] == texts["distinct_captions"] < texts["variants"]
    assert texts["encode_captions"] == texts["encoded"]


def test_a_corrupt_image_is_warned_about_in_the_run_that_finds_it_only(graph):
    defs, instance = graph
    first = run(defs, instance)
    second = run(defs, instance)
    first_warnings = [m for m in warning_messages(instance, first.run_id) if "could not be encoded" in m]
    assert len(first_warnings) == 1 and "3.jpg" in first_warnings[0]
    assert not [m for m in warning_messages(instance, second.run_id) if "3.jpg" in m]
    assert metadata(second, "vae_latents")["dropped"] == 1  # still reported, as a count


def test_no_drops_reads_none_not_an_empty_table():
    from hf_assets.assets.metadata import counts_table

    assert counts_table({"corrupt_image": 0, "too_small": 0}).value == "none"
    assert counts_table({}).value == "none"
    table = counts_table({"corrupt_image": 2, "too_small": 0})
    assert [r.data for r in table.records] == [
        {"reason": "corrupt_image", "rows": 2},
        {"reason": "too_small", "rows": 0},
    ]
