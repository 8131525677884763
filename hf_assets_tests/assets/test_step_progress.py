"""Every step that can run long logs its progress while it runs: read from the run's own log, with a progress interval
shorter than the steps of a small photo set (HF_ASSETS_PROGRESS_SECONDS), one shard and two images per VAE batch."""

import re
from collections import defaultdict

import dagster as dg
import pytest

from hf_assets.definitions import build_definitions
from hf_assets_tests.assets.test_encoder_graph import metadata, run
from hf_assets_tests.conftest import photo_rows, write_config, write_hub_dataset

RUNNING = r"{}: (\d+)/(\d+) {} \(\d+%\), [\d.,]+ {}/s, ETA \w+, elapsed \w+"


@pytest.fixture
def logged_run(tmp_path, photos_entry, tiny_sdxl, monkeypatch):
    write_hub_dataset(tmp_path / "data" / "photos", photo_rows(16))
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    monkeypatch.setenv("HF_ASSETS_PROGRESS_SECONDS", "0.02")
    monkeypatch.setenv("HF_ASSETS_SHARDS", "1")
    monkeypatch.setenv("HF_ASSETS_VAE_BATCH_SIZE", "2")
    entries = [{**photos_entry, "resolution": 96, "aspect_bucket_alignment": 32}]
    defs = build_definitions(write_config(tmp_path / "dataloader.json", entries))
    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    result = run(defs, instance)
    lines = defaultdict(list)  # step key -> its user messages, in order
    for record in instance.all_logs(result.run_id):
        if record.dagster_event is None and record.step_key:
            lines[record.step_key].append(record.user_message)
    return result, dict(lines)


def found(lines: list[str], pattern: str) -> list[re.Match]:
    return [m for m in (re.search(pattern, line) for line in lines) if m]


def test_every_long_step_logs_progress_while_it_runs(logged_run):
    result, lines = logged_run
    # raw_split lists the split (remote listings run long); its wait is announced and timed
    assert found(lines["raw_split"], r"photos: listing the split…$")
    assert found(lines["raw_split"], r"photos: listing the split: done in \w+$")
    # filtered_index counts scanned images; aspect_buckets counts the rows it buckets, totals in its metadata
    assert found(lines["filtered_index"], r"scan: \d+/16 images \(\d+%\)")
    kept = metadata(result, "aspect_buckets")["samples"]
    assert found(lines["aspect_buckets"], rf"bucket: {kept}/{kept} rows \(100%\), .* \(done\)$")
    assert metadata(result, "aspect_buckets")["bucket_rows"] == kept
    # bucket_previews: the histogram, the images fetched and the grid drawn, each announced and timed
    for what in ("drawing the bucket histogram", r"fetching \d+ preview images", "drawing the preview grid"):
        assert found(lines["bucket_previews"], rf"photos: {what}: done in \w+$"), what
    # the shard step: the VAE load, then count, rate and ETA while it encodes, and the final line
    shard = lines["vae_latents.encode_vae_shard_0"]
    assert found(shard, r"shard 0: loading the VAE: done in \w+$")
    running = found(shard, RUNNING.format("encode", "images", "images"))
    assert running and all(0 < int(m.group(1)) < int(m.group(2)) for m in running)
    assert found(shard, r"encode: (\d+)/\1 images \(100%\), [\d.,]+ images/s, elapsed \w+ \(done\)$")
    assert found(lines["vae_latents.plan_vae_latents"], r"hash: \d+/\d+ images")
    assert found(lines["vae_latents.commit_vae_latents"], r"commit: \d+ entries, .* \(done\)$")
    # text_embeds: the text encoders' load, the captions encoded and the manifest committed
    texts = lines["text_embeds"]
    assert found(texts, r"loading the text encoders: done in \w+$")
    assert found(texts, r"encode: (\d+)/\1 captions \(100%\), .* \(done\)$")
    assert found(texts, r"commit: \d+ entries, .* \(done\)$")
    # the checks' own steps: raw_split's lists the source again, the encoder checks read the stored caches
    assert found(lines["check_raw_split"], r"photos: comparing the stored split with its source: done in \w+$")
    # the checks' own steps read the stored caches: each check's read is announced and timed
    for step, check in (("check_vae_latents", "latents_finite"), ("check_text_embeds", "text_embeds_finite")):
        assert found(lines[step], rf"{check}: reading \d+ entries of .*: done in \w+$"), step
