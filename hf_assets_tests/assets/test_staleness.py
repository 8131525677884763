"""Bucket tables number the rows of one scan of the split: steps read the scan raw_split stored, and encoding against
another scan must fail, not mislabel."""

import json

import dagster as dg
import pytest

from hf_assets.cache.hashing import content_hash
from hf_assets.definitions import build_definitions
from hf_assets_tests.conftest import write_config
from hf_assets_tests.imagegen import encode_image

BACKEND = "shots"
# Sorted file names: a file added as "a.jpg" shifts every later row number by one.
PICTURES = [("img_0.jpg", 300, 200), ("img_1.png", 200, 300), ("img_2.jpg", 256, 256), ("img_3.webp", 320, 160)]


@pytest.fixture
def graph(tmp_path, tiny_sdxl, monkeypatch):
    """A local-folder backend of four captioned pictures, and the whole graph over it with the tiny SDXL."""
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))  # read by build_definitions
    folder = tmp_path / "data" / "shots"
    folder.mkdir(parents=True)
    for i, (name, w, h) in enumerate(PICTURES):
        fmt = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}[name.rsplit(".", 1)[1]]
        (folder / name).write_bytes(encode_image(w, h, fmt, seed=i))
        (folder / name).with_suffix(".txt").write_text(f"a holiday snapshot number {i}")
    entries = [
        {
            "id": BACKEND,
            "type": "local",
            "instance_data_dir": "data/shots",
            "caption_strategy": "textfile",
            "resolution": 96,
            "resolution_type": "pixel_area",
            "aspect_bucket_alignment": 32,
            "cache_dir": "cache/shots",
        },
        {"id": "te", "type": "local", "dataset_type": "text_embeds", "cache_dir": "cache/text"},
    ]
    defs = build_definitions(write_config(tmp_path / "dataloader.json", entries))
    (tmp_path / "home").mkdir()
    return defs, dg.DagsterInstance.local_temp(str(tmp_path / "home")), tmp_path


def materialize(defs, instance, *assets: str):
    """Materialize only the named assets of the backend's partition; failures are returned, not raised."""
    job = defs.resolve_job_def("prepare_datasets")
    return job.execute_in_process(
        partition_key=BACKEND,
        instance=instance,
        raise_on_error=False,
        asset_selection=[dg.AssetKey(a) for a in assets],
    )


def scan(defs, instance):
    result = defs.resolve_job_def("scan_datasets").execute_in_process(partition_key=BACKEND, instance=instance)
    assert result.success
    return result


def manifest(tmp_path, name: str) -> dict:
    return json.loads((tmp_path / "cache" / "shots" / "huggingface_metadata" / BACKEND / f"{name}.json").read_text())


def add_picture(tmp_path, name: str = "a.jpg"):
    """A new picture that sorts before every other one, so every existing row number moves."""
    path = tmp_path / "data" / "shots" / name
    path.write_bytes(encode_image(640, 480, "JPEG", seed=99))
    path.with_suffix(".txt").write_text("a newly added picture of a harbour")


def failure_message(result) -> str:
    assert not result.success
    failures = result.get_step_failure_events()
    assert failures, "the run failed without a step failure"
    data = failures[0].step_failure_data
    return (data.user_failure_data.description if data.user_failure_data else None) or data.error.message


def latent_shards(tmp_path):
    return list((tmp_path / "cache" / "shots" / "vae" / BACKEND).rglob("*.safetensors"))


def warnings_of(instance, result) -> list[str]:
    return [e.user_message for e in instance.all_logs(result.run_id) if e.level == 30]  # logging.WARNING


def test_table_manifests_record_the_fingerprint_of_the_split_they_were_built_from(graph):
    defs, instance, tmp_path = graph
    scan(defs, instance)
    fingerprint = manifest(tmp_path, "raw_split")["fingerprint"]
    assert fingerprint
    assert manifest(tmp_path, "filtered_index")["source_fingerprint"] == fingerprint
    assert manifest(tmp_path, "aspect_buckets")["source_fingerprint"] == fingerprint


def test_vae_latents_encodes_the_stored_scan_until_the_split_is_scanned_again(graph):
    # Steps load the split raw_split stored (an image folder's listing), not the folder as it is now: a picture
    # added since is not seen, and no row number moves under the buckets.
    defs, instance, tmp_path = graph
    scan(defs, instance)
    add_picture(tmp_path)

    result = materialize(defs, instance, "vae_latents")

    assert result.success
    latents = defs.load_asset_value("vae_latents", partition_key=BACKEND, instance=instance)
    assert sorted(latents) == [name for name, _, _ in PICTURES]
    assert not [w for w in warnings_of(instance, result) if "the dataset changed" in w]


def test_vae_latents_fails_when_raw_split_was_rescanned_since_aspect_buckets_and_writes_no_latent(graph):
    defs, instance, tmp_path = graph
    scan(defs, instance)
    before = manifest(tmp_path, "raw_split")["fingerprint"]
    add_picture(tmp_path)
    assert materialize(defs, instance, "raw_split").success

    result = materialize(defs, instance, "vae_latents")

    message = failure_message(result)
    assert message.startswith(
        f"backend '{BACKEND}': the dataset changed since aspect_buckets was built (fingerprint {before} -> "
    )
    assert message.endswith(
        "materialize raw_split, filtered_index and aspect_buckets for this partition first (job scan_datasets)"
    )
    assert latent_shards(tmp_path) == []
    assert not result.get_asset_materialization_events()


def test_vae_latents_succeeds_once_scan_datasets_has_rebuilt_the_buckets(graph):
    defs, instance, tmp_path = graph
    scan(defs, instance)
    add_picture(tmp_path)
    assert materialize(defs, instance, "raw_split").success
    assert not materialize(defs, instance, "vae_latents").success

    scan(defs, instance)
    result = materialize(defs, instance, "vae_latents")

    assert result.success
    latents = defs.load_asset_value("vae_latents", partition_key=BACKEND, instance=instance)
    assert sorted(latents) == ["a.jpg"] + [name for name, _, _ in PICTURES]
    # Every file name holds the latent of its own bytes: the rows were renumbered, not reused.
    folder = tmp_path / "data" / "shots"
    for name in latents:
        assert latents.entry(name)["content_hash"] == content_hash((folder / name).read_bytes()), name


def drop_stored_listing(tmp_path):
    """Remove the stored listing, as a store written before listings were kept lacks it: the split is opened
    from the source again."""
    for suffix in ("parquet", "json"):
        (tmp_path / "cache" / "shots" / "huggingface_metadata" / BACKEND / f"raw_split_listing.{suffix}").unlink()


def test_a_split_opened_again_warns_with_the_same_fix_when_it_changed(graph):
    defs, instance, tmp_path = graph
    scan(defs, instance)
    before = manifest(tmp_path, "raw_split")["fingerprint"]
    add_picture(tmp_path)
    drop_stored_listing(tmp_path)

    result = materialize(defs, instance, "vae_latents")

    warned = [w for w in warnings_of(instance, result) if "the dataset changed since raw_split was materialized" in w]
    assert len(warned) == 1
    assert warned[0].startswith(
        f"backend '{BACKEND}': the dataset changed since raw_split was materialized (fingerprint {before} -> "
    )
    assert warned[0].endswith(
        "materialize raw_split, filtered_index and aspect_buckets for this partition first "
        "(job scan_datasets); until then this run reads the current data"
    )


def test_the_changed_split_is_warned_about_once_per_run_though_several_steps_load_it(graph):
    defs, instance, tmp_path = graph
    scan(defs, instance)
    add_picture(tmp_path)
    drop_stored_listing(tmp_path)

    result = materialize(defs, instance, "filtered_index", "aspect_buckets")  # both steps load raw_split

    warned = [w for w in warnings_of(instance, result) if "the dataset changed since raw_split was materialized" in w]
    assert len(warned) == 1


def test_aspect_buckets_rebuilt_alone_keeps_the_fingerprint_of_the_filtered_index_it_read(graph):
    # raw_split alone, then aspect_buckets alone: raw_split.json is current but the buckets still number the old rows.
    defs, instance, tmp_path = graph
    scan(defs, instance)
    before = manifest(tmp_path, "raw_split")["fingerprint"]
    add_picture(tmp_path)
    assert materialize(defs, instance, "raw_split").success
    assert materialize(defs, instance, "aspect_buckets").success
    assert manifest(tmp_path, "raw_split")["fingerprint"] != before

    assert manifest(tmp_path, "aspect_buckets")["source_fingerprint"] == before
    assert "the dataset changed since aspect_buckets was built" in failure_message(
        materialize(defs, instance, "vae_latents")
    )
    assert latent_shards(tmp_path) == []


def test_filtered_index_built_without_raw_split_reads_the_split_raw_split_stored(graph):
    defs, instance, tmp_path = graph
    scan(defs, instance)
    before = manifest(tmp_path, "raw_split")["fingerprint"]
    add_picture(tmp_path)

    assert materialize(defs, instance, "filtered_index", "aspect_buckets").success

    assert manifest(tmp_path, "filtered_index")["source_fingerprint"] == before
    assert manifest(tmp_path, "aspect_buckets")["source_fingerprint"] == before
    assert materialize(defs, instance, "vae_latents").success  # its rows do index the stored split


def test_vae_latents_fails_on_buckets_that_record_no_source_fingerprint(graph):
    # aspect_buckets written before source fingerprints were recorded: which scan it numbers is unknown.
    defs, instance, tmp_path = graph
    scan(defs, instance)
    path = tmp_path / "cache" / "shots" / "huggingface_metadata" / BACKEND / "aspect_buckets.json"
    legacy = manifest(tmp_path, "aspect_buckets")
    del legacy["source_fingerprint"]
    path.write_text(json.dumps(legacy))

    message = failure_message(materialize(defs, instance, "vae_latents"))

    assert "the dataset changed since aspect_buckets was built (no source fingerprint recorded -> " in message
    assert "(job scan_datasets)" in message
    assert latent_shards(tmp_path) == []
