"""A first run of the whole graph over HTTP fetches each kept image once, whatever the shard count.

A Parquet file of real JPEGs, written with pyarrow's defaults (each row group's images in one snappy page), is served
with Range requests (the server counts every body byte it sends); a filter keeps about half of its rows, scattered
through every row group. The whole graph runs with a tiny pipeline and the default shard count, and the bytes
sent must stay within 1.1 times the kept rows' image bytes plus the metadata column chunks and the footers, while
the caches equal those of the same run over the local file.
"""

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_assets.cache.latents import LatentCache
from hf_assets.definitions import build_definitions
from hf_assets_tests.conftest import write_config
from hf_assets_tests.imagegen import encode_image
from hf_assets_tests.range_server import serve

ROWS, GROUP_ROWS = 240, 80  # three row groups
SIZES = [(320, 240), (240, 320), (288, 288), (400, 200)]
# The footer: raw_split and the raw_split:split_current check each read the file's last 64 KiB (pyarrow's footer read).
FOOTER_READS = 2 * (64 << 10)
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def kept(i: int) -> bool:
    """About half the rows are photos, scattered: no run of kept rows fills a page."""
    return (i * 7919) % 13 < 7


KEPT = sum(map(kept, range(ROWS)))


def dataset(root, changed: int | None = None) -> tuple[int, int]:
    """Write data/train.parquet under `root` (row `changed` with another picture); (image bytes of the kept rows,
    bytes of the metadata column chunks)."""
    images = [encode_image(*SIZES[i % 4], "JPEG", seed=i + (1000 if i == changed else 0)) for i in range(ROWS)]
    table = pa.table(
        {
            "image": pa.array([{"bytes": b, "path": None} for b in images], IMAGE),
            "width": pa.array([SIZES[i % 4][0] for i in range(ROWS)], pa.int32()),
            "height": pa.array([SIZES[i % 4][1] for i in range(ROWS)], pa.int32()),
            "caption": pa.array([f"a photo, number {i}" for i in range(ROWS)]),
            "collection": pa.array(["photo" if kept(i) else "artwork" for i in range(ROWS)]),
        }
    )
    (root / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / "data" / "train.parquet", row_group_size=GROUP_ROWS)
    meta = pq.ParquetFile(root / "data" / "train.parquet").metadata
    chunks = [meta.row_group(g).column(c) for g in range(meta.num_row_groups) for c in range(meta.num_columns)]
    metadata_bytes = sum(c.total_compressed_size for c in chunks if not c.path_in_schema.startswith("image."))
    return sum(len(b) for i, b in enumerate(images) if kept(i)), metadata_bytes


def entries(dataset_name: str) -> list[dict]:
    return [
        {
            "id": "photos",
            "type": "huggingface",
            "dataset_name": dataset_name,
            "caption_column": "caption",
            "width_column": "width",
            "height_column": "height",
            "filter_func": {"collection": ["photo"]},
            "resolution": 96,
            "aspect_bucket_alignment": 32,
            "cache_dir": "cache",
        },
        {"id": "te", "type": "local", "dataset_type": "text_embeds", "cache_dir": "cache/text"},
    ]


def materialize(folder, dataset_name: str):
    """Run every asset of the photos partition into `folder` (its own config, caches and instance)."""
    defs = build_definitions(write_config(folder / "dataloader.json", entries(dataset_name)))
    (folder / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(folder / "home"))
    return defs, instance, again(defs, instance)


def again(defs, instance):
    result = defs.resolve_job_def("prepare_datasets").execute_in_process(partition_key="photos", instance=instance)
    assert result.success
    return result


def encoded(result) -> int:
    for event in result.get_asset_materialization_events():
        if event.materialization.asset_key.to_user_string() == "vae_latents":
            return event.materialization.metadata["encoded"].value
    raise AssertionError("vae_latents was not materialized")


@pytest.mark.slow
def test_a_remote_first_run_fetches_each_kept_image_once(tmp_path, tiny_sdxl, monkeypatch):
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    monkeypatch.delenv("HF_ASSETS_SHARDS", raising=False)  # the default shard count (8)
    kept_image_bytes, metadata_bytes = dataset(tmp_path / "served")
    local_defs, local_instance, local = materialize(tmp_path / "local", str(tmp_path / "served" / "data"))

    with serve(tmp_path / "served") as (url, traffic):
        remote_defs, remote_instance, remote = materialize(tmp_path / "remote", f"{url}/data/train.parquet")
        sent = traffic.total
        print(f"sent {sent} bytes: {sent / kept_image_bytes:.2f}x the {kept_image_bytes} image bytes of the kept rows")
        assert encoded(remote) == encoded(local) == KEPT
        # Each kept image once, the metadata chunks and the footer (previews may add 5% of the kept image bytes).
        assert sent <= 1.1 * kept_image_bytes + metadata_bytes + FOOTER_READS

        # The caches equal those of the local run: the same keys for the same files, the same latents.
        remote_latents, local_latents = (
            defs.load_asset_value("vae_latents", partition_key="photos", instance=instance)
            for defs, instance in ((remote_defs, remote_instance), (local_defs, local_instance))
        )
        assert isinstance(remote_latents, LatentCache) and sorted(remote_latents) == sorted(local_latents)
        remote_keys, local_keys = ({n: c.entry(n)["key"] for n in c} for c in (remote_latents, local_latents))
        assert remote_keys == local_keys and len(remote_keys) == KEPT
        for name in sorted(remote_latents)[:: ROWS // 16]:  # batched otherwise (shards of row groups): float noise
            assert np.allclose(remote_latents[name].numpy(), local_latents[name].numpy(), rtol=1e-4, atol=1e-5)

        # A rerun with nothing changed encodes nothing and reads no image: the hashes the shards computed are kept.
        traffic.reset()
        assert encoded(again(remote_defs, remote_instance)) == 0
        print(f"rerun sent {traffic.total} bytes")
        assert traffic.total <= metadata_bytes + FOOTER_READS
        # A changed image is encoded again (its file changed: the others are fetched and found in the cache).
        dataset(tmp_path / "served", changed=0)
        assert encoded(again(remote_defs, remote_instance)) == 1
