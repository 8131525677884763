"""examples/train_tiny.py: a tiny SDXL-layout diffusers UNet learns from the cached latents and embeddings."""

import pytest
import torch
from diffusers import UNet2DConditionModel

from examples import train_tiny
from hf_assets.training import BucketBatchSampler, CachedSamples


def fresh_samples(prepared, seed=0):
    loaded, buckets = prepared
    return CachedSamples(buckets, loaded.latents, loaded.text_embeds, seed=seed)


def test_the_unet_has_the_sdxl_layout_sized_from_the_caches(prepared):
    dataset = fresh_samples(prepared)
    item = dataset[0]
    unet = train_tiny.tiny_sdxl_unet(4, item["prompt_embeds"].shape[-1], item["pooled_prompt_embeds"].shape[-1])
    assert unet.config.addition_embed_type == "text_time"
    assert unet.config.cross_attention_dim == 80  # the tiny SDXL's two encoders' states joined: 32 + 48
    assert unet.config.projection_class_embeddings_input_dim == 40 + 6 * 8  # pooled width + 6 time ids x 8
    assert unet.add_embedding.linear_1.in_features == 88


def test_the_loss_goes_down_within_twenty_steps(prepared):
    dataset = fresh_samples(prepared)
    sampler = BucketBatchSampler.from_samples(dataset, 4, seed=0)
    lines = []
    unet, losses = train_tiny.train(dataset, sampler, steps=20, lr=2e-3, seed=0, log=lines.append)
    assert len(losses) == len(lines) == 20 and all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, losses  # about 1.0 -> 0.5 on this seed
    assert isinstance(unet, UNet2DConditionModel)


def test_main_reads_the_caches_through_the_definitions_and_saves_a_loadable_unet(
    prepared_graph, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DAGSTER_HOME", str(prepared_graph.home))
    monkeypatch.setenv("HF_ASSETS_MODEL", str(prepared_graph.model))
    argv = ["--config", str(prepared_graph.config), "--steps", "3", "--save", str(tmp_path / "unet")]
    assert train_tiny.main(argv) == 0
    out = capsys.readouterr().out
    assert "22 samples" in out and "short buckets: repeat" in out and out.count("\nstep ") == 3
    loaded = UNet2DConditionModel.from_pretrained(tmp_path / "unet")
    assert loaded.config.addition_embed_type == "text_time"
    assert train_tiny.main(["--config", str(prepared_graph.config), "--partition", "nope"]) == 2


def test_caches_of_another_family_are_refused_with_the_fix():
    batch = {"latents": torch.zeros(1, 4, 8, 8), "prompt_embeds": torch.zeros(1, 77, 32), "time_ids": torch.zeros(1, 6)}
    with pytest.raises(ValueError, match="pooled_prompt_embeds.*SDXL pipeline"):
        train_tiny.sdxl_inputs(batch)
