"""The README's "Your own data" route, run as written on a generated folder of images: its config block with the
folder's path filled in, then its shell block with the config's path filled in (nothing else changed), with no model
set in the environment: the model-free assets run, `make ui` serves them, and their checks pass."""

import json
import os
import re
import subprocess

import dagster as dg
import pytest

from hf_assets import env as env_names
from hf_assets_tests.demo_workspace import ROOT
from hf_assets_tests.imagegen import corrupt_bytes, encode_image
from hf_assets_tests.test_webserver import free_port, stop, wait_for

SCAN = ["raw_split", "filtered_index", "aspect_buckets", "bucket_previews"]
# (width, height, format): landscape, portrait, square, wide, in the formats a camera or an export gives
IMAGES = [(1024, 768, "JPEG"), (768, 1024, "PNG"), (800, 800, "WEBP"), (1280, 544, "JPEG"), (900, 1200, "JPEG")]


def own_data_blocks() -> tuple[str, str]:
    """The JSON config block and the bash block of the README's "Your own data" section."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"\n## Your own data\n(.*?)(?=\n## )", text, re.S)
    assert match, "README has no '## Your own data' section"
    config = re.search(r"```json\n(.*?)```", match.group(1), re.S)
    commands = re.search(r"```bash\n(.*?)```", match.group(1), re.S)
    assert config and commands, "'Your own data' needs a json config block and a bash block"
    return config.group(1), commands.group(1)


def image_folder(folder):
    """Real JPEG/PNG/WebP files with .txt captions beside them, and one file no codec reads."""
    folder.mkdir(parents=True)
    for i, (w, h, fmt) in enumerate(IMAGES):
        suffix = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[fmt]
        (folder / f"shot_{i}.{suffix}").write_bytes(encode_image(w, h, fmt, seed=i))
        (folder / f"shot_{i}.txt").write_text(f"a photo of my subject, take {i}\n")
    (folder / "broken.jpg").write_bytes(corrupt_bytes(7))
    (folder / "broken.txt").write_text("a file that is not an image")
    return folder


def latest_metadata(instance, asset: str, partition: str) -> dict | None:
    """The metadata of the asset's latest materialization for the partition; None when it has none."""
    found = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    return found[0].asset_materialization.metadata if found else None


@pytest.mark.slow
def test_the_readme_own_data_block_runs_as_written_and_needs_no_model(tmp_path):
    config_block, commands = own_data_blocks()
    images = image_folder(tmp_path / "images")
    assert "/path/to/images" in config_block and "/path/to/dataloader.json" in commands
    config = tmp_path / "dataloader.json"
    config.write_text(config_block.replace("/path/to/images", str(images)))
    (partition,) = [entry["id"] for entry in json.loads(config.read_text())]
    script = commands.replace("/path/to/dataloader.json", str(config))

    home, port, log = tmp_path / "dagster_home", free_port(), tmp_path / "own_data.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(env_names.PREFIX) and k != "HOST"}
    env.update({"DAGSTER_HOME": str(home), "PORT": str(port), "HF_HUB_OFFLINE": "1"})
    # The block as one shell script, stopped as a user stops `make ui` (Ctrl-C) once it serves.
    server = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        nodes = wait_for(port, server, log, timeout=600)["assetNodes"]
        assert {"/".join(n["assetKey"]["path"]) for n in nodes} >= {*SCAN, "vae_latents", "text_embeds"}
    finally:
        stop(server)
    output = log.read_text()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        latest = {asset: latest_metadata(instance, asset, partition) for asset in SCAN}
        assert all(m is not None for m in latest.values()), f"not all of {SCAN} materialized:\n{output[-3000:]}"
        index = latest["filtered_index"]
        assert index["kept"].value == len(IMAGES) and index["dropped"].value == 1  # the broken file, with a reason
        for asset, check in [("raw_split", "split_current"), ("filtered_index", "drop_rate")]:
            key = dg.AssetCheckKey(dg.AssetKey(asset), check)
            (latest,) = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
            assert latest.partition == partition and latest.event.dagster_event.asset_check_evaluation_data.passed
        assert not instance.fetch_materializations(dg.AssetKey("vae_latents"), limit=1).records  # nothing encoded
    assert "no model configured" not in output and "Traceback" not in output
