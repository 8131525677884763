"""The conditioning pairs' check through Dagster: it passes after a good run on the source and on each conditioning
partition, and run alone it fails, naming the rows, when a partner's latent is lost or a pair is broken on disk."""

import shutil

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from hf_assets.cache.manifest import read_manifest, write_manifest
from hf_assets.cache.tables import load_table, save_table
from hf_assets.definitions import build_definitions
from hf_assets_tests.conftest import photo_rows, write_config, write_hub_dataset
from hf_assets_tests.imagegen import encode_image

CHECK = dg.AssetCheckKey(dg.AssetKey("vae_latents"), "conditioning_pairs_complete")
PARTITIONS = ("photos", "control", "photos_conditioning_canny", "alone")


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, tiny_sdxl):
    """photos with a given control dataset (one source image without a control image, one stray control image)
    and a generated canny one, plus a backend with no conditioning, all encoded with the tiny SDXL pipeline."""
    root = tmp_path_factory.mktemp("pair_checks")
    rows = photo_rows(8)
    write_hub_dataset(root / "data" / "photos", rows)
    control = root / "data" / "control"
    control.mkdir(parents=True)
    for i, row in enumerate(rows[:-1]):  # row 7 gets no control image; row 5 is corrupt in the source
        (control / f"{i}.png").write_bytes(encode_image(row["width"] // 2, row["height"] // 2, "PNG", seed=50 + i))
    (control / "stray.png").write_bytes(encode_image(64, 64, "PNG", seed=9))
    photos = {
        "id": "photos",
        "type": "huggingface",
        "dataset_name": "data/photos",
        "caption_column": "metadata.caption",
        "resolution": 64,
        "resolution_type": "pixel",
        "crop": True,
        "crop_style": "random",
        "crop_aspect": "square",
        "conditioning_data": "control",
        "conditioning": {"type": "canny", "conditioning_type": "controlnet"},
        "cache_dir": "cache/photos",
    }
    given = {"id": "control", "type": "local", "dataset_type": "conditioning", "instance_data_dir": "data/control"}
    alone = {**photos, "id": "alone", "cache_dir": "cache/alone"}
    del alone["conditioning_data"], alone["conditioning"]
    text = {"id": "te", "type": "local", "dataset_type": "text_embeds", "cache_dir": "cache/text"}
    config = write_config(root / "dataloader.json", [photos, given, alone, text])
    (root / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(root / "home"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
        defs = build_definitions(config)
        prepare = defs.resolve_job_def("prepare_datasets")
        results = {p: prepare.execute_in_process(partition_key=p, instance=instance) for p in PARTITIONS}
        yield defs, instance, root, results


def evaluation(result):
    found = [e for e in result.get_asset_check_evaluations() if e.asset_check_key == CHECK]
    assert len(found) == 1
    return found[0]


def run_check_alone(defs, instance, partition):
    """The check alone on one partition, as "Execute" on its page in the UI launches it: nothing is encoded."""
    job = defs.resolve_job_def("prepare_datasets").get_subset(asset_selection=set(), asset_check_selection={CHECK})
    result = job.execute_in_process(partition_key=partition, instance=instance, raise_on_error=False)
    assert not result.get_asset_materialization_events()
    return evaluation(result)


def test_a_good_run_passes_on_every_partition_with_what_it_checked(encoded):
    defs, _, _, results = encoded
    spec = next(s for checks in defs.asset_checks for s in checks.check_specs if s.key == CHECK)
    assert spec.blocking is False  # a partner's state never holds back its source's caption embeddings
    first = evaluation(results["photos"])  # its partners were not encoded yet: they are checked when they are
    assert first.passed and "not encoded yet" in first.description and len(first.metadata["pending"].value) == 2
    for partition in ("control", "photos_conditioning_canny"):
        checked = evaluation(results[partition])
        assert checked.passed, checked.description
        assert checked.metadata["checked"].value == {partition: {}}
    assert "nothing to pair" in evaluation(results["alone"]).description
    again = run_check_alone(defs, encoded[1], "photos")  # both partners encoded now: the source checks them both
    assert again.passed and again.metadata["checked"].value == {"control": {}, "photos_conditioning_canny": {}}
    assert again.metadata["pending"].value == []


@pytest.fixture
def restored(encoded):
    """Files spoiled by a test are put back afterwards."""
    saved = []

    def keep(path):
        """Keep the table at `path` and its JSON sidecar."""
        for file in (path, path.with_suffix(".json")):
            copy = file.with_name(file.name + ".kept")
            shutil.copy2(file, copy)
            saved.append((file, copy))
        return path

    yield keep
    for path, copy in saved:
        shutil.move(copy, path)


def test_a_lost_partner_latent_fails_the_check_on_both_sides_naming_the_rows(encoded, restored):
    defs, instance, root, _ = encoded
    manifest_dir = root / "cache" / "control" / "vae" / "control"
    restored(manifest_dir / "manifest.parquet")
    manifest = read_manifest(manifest_dir)
    kept = manifest.table.filter(pc.not_equal(manifest.table["filename"], "2.png"))
    write_manifest(manifest_dir, kept, manifest.meta)
    for partition in ("control", "photos"):
        failed = run_check_alone(defs, instance, partition)
        assert not failed.passed and failed.metadata["failures"].value == 1
        assert "'2.jpg': its partner '2.png' has no latent and no drop reason" in failed.description
        assert failed.metadata["checked"].value["control"] == {"partners without a latent or a drop reason": 1}
    assert run_check_alone(defs, instance, "photos_conditioning_canny").passed  # the other partner is whole


def test_a_broken_pair_fails_the_check_naming_the_source_sample(encoded, restored):
    defs, instance, root, _ = encoded
    metadata = root / "cache" / "photos" / "huggingface_metadata"
    canny = restored(metadata / "photos_conditioning_canny" / "aspect_buckets.parquet").parent
    table = load_table(canny, "aspect_buckets")
    save_table(canny, "aspect_buckets", table.filter(pc.not_equal(table.column("filename"), "3.jpg")))
    failed = run_check_alone(defs, instance, "photos_conditioning_canny")
    assert not failed.passed
    assert "'3.jpg' has no partner and dropped_pairs gives no reason" in failed.description
    # a partner whose crop moved: no longer stackable with its source sample
    crops = table.column("crop_top").to_pylist()
    crops[0] += 4
    moved = table.set_column(table.column_names.index("crop_top"), "crop_top", pa.array(crops, pa.int64()))
    save_table(canny, "aspect_buckets", moved)
    failed = run_check_alone(defs, instance, "photos")
    first = table.column("filename")[0].as_py()
    assert not failed.passed and f"'{first}' is not cropped as its source '{first}'" in failed.description


def test_a_conditioning_partition_never_encoded_fails_naming_what_to_materialize(encoded, restored):
    defs, instance, root, _ = encoded
    manifest = restored(root / "cache" / "control" / "vae" / "control" / "manifest.parquet")
    manifest.unlink()
    failed = run_check_alone(defs, instance, "control")
    assert not failed.passed and "materialize vae_latents of 'control'" in failed.description
    pending = run_check_alone(defs, instance, "photos")  # from the source's side it is not encoded yet
    assert pending.passed and pending.metadata["pending"].value[0].startswith("control (")
