"""The on-disk format of docs/cache-format.md: pyarrow and safetensors alone read what the hf_assets readers give."""

import json

import pyarrow.parquet as pq
import torch
from safetensors import safe_open


def read_entry(root, filename, variant=None):
    """The recipe of docs/cache-format.md: one manifest row by filename, its tensors from the shard it names."""
    rows = pq.read_table(root / "manifest.parquet", filters=[("filename", "=", filename)]).to_pylist()
    (row,) = [r for r in rows if variant is None or r["variant"] == variant]
    with safe_open(str(root / "shards" / row["shard"]), "pt") as shard:
        return row, {name: shard.get_tensor(f"{row['key']}/{name}") for name in row["tensor_names"]}


def test_latents_read_without_hf_assets_match_the_reader_and_its_normalisation(prepared):
    samples, _ = prepared
    root = samples.latents.directory
    meta = json.loads((root / "manifest.json").read_text())
    assert meta["format_version"] == 1 and meta["downscale"] == 8 and meta["latent_channels"] == 4
    for filename in samples.filenames[:5]:
        row, tensors = read_entry(root, filename)
        assert set(tensors) == {"mean", "std"}
        assert torch.equal(tensors["mean"], samples.latents[filename])
        assert list(tensors["mean"].shape) == [4, row["target_height"] // 8, row["target_width"] // 8]
        generator = torch.Generator().manual_seed(3)
        eps = torch.randn(tensors["mean"].shape, generator=torch.Generator().manual_seed(3))
        by_hand = (tensors["mean"] + tensors["std"] * eps - meta.get("shift_factor", 0.0)) * meta["scaling_factor"]
        assert torch.allclose(by_hand, samples.latents.sample(filename, generator))


def test_caption_embeddings_and_time_ids_read_without_hf_assets_match_the_dataset(prepared, prepared_graph):
    samples, _ = prepared
    (buckets_file,) = prepared_graph.config.parent.glob("**/huggingface_metadata/photos/aspect_buckets.parquet")
    columns = ["filename", "height", "width", "crop_top", "crop_left", "target_height", "target_width"]
    time_ids = {r.pop("filename"): list(r.values()) for r in pq.read_table(buckets_file, columns=columns).to_pylist()}
    samples.set_epoch(0)
    for index in range(5):
        item = samples[index]
        row, tensors = read_entry(samples.text_embeds.directory, item["filename"], variant=item["variant"])
        assert row["caption"] == item["caption"]
        assert tensors.keys() == {"prompt_embeds", "pooled_prompt_embeds"}
        assert all(torch.equal(tensors[name], item[name]) for name in tensors)
        assert time_ids[item["filename"]] == item["time_ids"].tolist()
