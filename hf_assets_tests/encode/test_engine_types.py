"""The engine's value types: settings that travel as JSON and refuse nonsense, keys that follow the dtypes."""

import ast
import json
from pathlib import Path

import pytest

import hf_assets.encode.engine_types as engine_types
from hf_assets.encode.engine_types import EncodeSettings, LatentSettings, ShardReport


def test_encode_settings_travel_as_json_and_back():
    settings = EncodeSettings(batch_size=3, decode_workers=2, shard_bytes=1 << 20, latent_dtype="torch.bfloat16")
    assert EncodeSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


@pytest.mark.parametrize("field", ["decode_workers", "shard_bytes"])
def test_encode_settings_refuse_less_than_one(field):
    with pytest.raises(ValueError, match=field):
        EncodeSettings(**{field: 0})


def test_a_batch_size_of_zero_is_automatic_and_decode_paths_are_checked():
    assert EncodeSettings(batch_size=0).batch_size == 0  # the most that fit each shape (vae_runner)
    with pytest.raises(ValueError, match="batch_size"):
        EncodeSettings(batch_size=-1)
    with pytest.raises(ValueError, match="decode='opencv'"):
        EncodeSettings(decode="opencv")


def test_the_latent_key_settings_carry_both_dtypes():
    settings = EncodeSettings(model_dtype="torch.bfloat16", latent_dtype="torch.float16")
    assert settings.latent_settings("vae@1") == LatentSettings("vae@1", "torch.bfloat16", "torch.float16")
    gpu = EncodeSettings(decode="nvjpeg", compile="default", memory_format="channels_last")
    assert gpu.latent_settings("vae@1") == LatentSettings("vae@1", gpu.model_dtype, gpu.latent_dtype, decode="nvjpeg")


def test_a_shard_report_survives_json():
    report = ShardReport(shard=2, encoded=5, failures={"abc": "corrupt_image: x"}, host="h", pid=7)
    assert ShardReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_the_types_module_imports_no_other_hf_assets_module():
    tree = ast.parse(Path(engine_types.__file__).read_text())
    imported = [
        name
        for node in ast.walk(tree)
        for name in (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    ]
    assert imported and not [name for name in imported if name.startswith("hf_assets")]
